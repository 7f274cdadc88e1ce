//! Did the configuration file change on disk? Stock's rule (reference §4.7): `stat` it on
//! every loop pass; only when the mtime moved, hash the content and compare with the last
//! hash. A touch without a content change is therefore nothing, and an unchanged mtime
//! costs one `stat`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use md5::{Digest, Md5};

/// The last seen state of one file.
#[derive(Debug, Clone)]
pub struct FileWatch {
    path: PathBuf,
    mtime: Option<SystemTime>,
    digest: Option<[u8; 16]>,
}

fn digest_of(bytes: &[u8]) -> [u8; 16] {
    Md5::digest(bytes).into()
}

impl FileWatch {
    /// Start watching `path` as it is now.
    pub fn new(path: &Path) -> FileWatch {
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let digest = std::fs::read(path).ok().map(|b| digest_of(&b));
        FileWatch {
            path: path.to_path_buf(),
            mtime,
            digest,
        }
    }

    /// Remember `content` as the state the daemon runs with (after a reload read it), so
    /// the same content is not reported again.
    pub fn accept(&mut self, content: &[u8]) {
        self.mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        self.digest = Some(digest_of(content));
    }

    /// One poll: `true` when the content differs from the last seen one. The new state is
    /// remembered either way, so a change is reported once.
    pub fn changed(&mut self) -> bool {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if mtime == self.mtime {
            return false;
        }
        self.mtime = mtime;
        let digest = std::fs::read(&self.path).ok().map(|b| digest_of(&b));
        if digest == self.digest {
            return false;
        }
        self.digest = digest;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Write `content` (unless `None`: a touch) and set the mtime to a fixed instant
    /// (`secs` after an arbitrary epoch), so two calls with the same value give the same
    /// mtime.
    fn write(path: &Path, content: Option<&str>, secs: u64) {
        if let Some(content) = content {
            std::fs::write(path, content).unwrap();
        }
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs))
            .unwrap();
    }

    /// A file `l.cf` in a fresh directory with `content` and mtime 100, and its watch.
    fn watched(content: &str) -> (tempfile::TempDir, PathBuf, FileWatch) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.cf");
        write(&path, Some(content), 100);
        let watch = FileWatch::new(&path);
        (dir, path, watch)
    }

    #[test]
    fn touch_is_nothing_content_change_is_once() {
        let (_dir, path, mut w) = watched("checktimeout=3\n");
        assert!(!w.changed());
        write(&path, None, 50); // touch
        assert!(!w.changed());
        write(&path, Some("checktimeout=4\n"), 10);
        assert!(w.changed());
        assert!(!w.changed());
        // Same mtime, different content: stock does not look (mtime first).
        write(&path, Some("checktimeout=5\n"), 10);
        assert!(!w.changed());
    }

    #[test]
    fn accepted_content_is_not_reported() {
        let (_dir, path, mut w) = watched("a\n");
        write(&path, Some("b\n"), 5);
        w.accept(b"b\n");
        assert!(!w.changed());
    }
}
