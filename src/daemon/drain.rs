//! Where operators' drains live, so they outlast checks, reloads and restarts.
//!
//! - With `maintenancedir=DIR`, DIR is the store, in stock's file convention (§3.8): a
//!   drain of `RIP:PORT` is the file `DIR/RIP:PORT`, of every port `DIR/RIP`. Its lines
//!   say it is a drain (`ldirectord-rs drain since=… virtual=… by=…`), which is how the
//!   daemon tells it from a maintenance file placed by hand (those keep stock's meaning:
//!   the real is forced down). Stock ldirectord reading the same directory sees any such
//!   file as maintenance, so switching back is safe. Removing the file by hand lifts the
//!   drain on the next pass.
//! - Without it, one JSON file beside the pid file (`ldirectord.NAME.drains`).
//!
//! The daemon is the only writer of drain records; it writes the whole set at once
//! (atomically for the JSON file).

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use ldirectord_parsers::config::ip_text;
use serde::{Deserialize, Serialize};

use crate::director::DrainTarget;

/// The first word of every line of a drain file in `maintenancedir`.
pub const MARKER: &str = "ldirectord-rs drain";

/// Drain files are small; anything bigger is not one.
const MAX_DRAIN_FILE: u64 = 64 * 1024;

/// One drain: what, who, since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainRecord {
    pub ip: IpAddr,
    pub port: Option<u16>,
    pub virtual_id: Option<String>,
    pub by: String,
    /// RFC 3339, UTC.
    pub since: String,
}

impl DrainRecord {
    pub fn target(&self) -> DrainTarget {
        DrainTarget {
            ip: self.ip,
            port: self.port,
            virtual_id: self.virtual_id.clone(),
        }
    }

    /// `RIP:PORT`, or `RIP` for every port (IPv6 bracketed): also the file name.
    pub fn real_text(&self) -> String {
        real_text(self.ip, self.port)
    }
}

/// `RIP:PORT` or `RIP` (IPv6 bracketed), the names stock's maintenance files use.
pub fn real_text(ip: IpAddr, port: Option<u16>) -> String {
    match port {
        Some(p) => SocketAddr::new(ip, p).to_string(),
        None => ip_text(ip),
    }
}

/// `RIP[:PORT]` as an operator types it (IPv6 in brackets when a port follows).
pub fn parse_real(text: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Some((sa.ip(), Some(sa.port())));
    }
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse::<IpAddr>().ok().map(|ip| (ip, None))
}

/// Whether the file at `path` is a drain file (rather than a maintenance file).
pub fn is_drain_file(path: &Path) -> bool {
    read_small(path).is_some_and(|text| parse_lines(&text).is_some())
}

fn read_small(path: &Path) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let mut text = String::new();
    file.take(MAX_DRAIN_FILE).read_to_string(&mut text).ok()?;
    Some(text)
}

/// The (virtual, by, since) of each line, if every non-empty line is a drain line.
fn parse_lines(text: &str) -> Option<Vec<(Option<String>, String, String)>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let rest = line.strip_prefix(MARKER)?;
        let (mut since, mut virt, mut by) = (None, None, None);
        for word in rest.split_whitespace() {
            match word.split_once('=')? {
                ("since", v) => since = Some(v.to_owned()),
                ("virtual", "*") => virt = Some(None),
                ("virtual", v) => virt = Some(Some(v.to_owned())),
                ("by", v) => by = Some(v.to_owned()),
                _ => {}
            }
        }
        out.push((virt?, by?, since?));
    }
    (!out.is_empty()).then_some(out)
}

/// Where drains are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainStore {
    /// `maintenancedir=`.
    Dir(PathBuf),
    /// The JSON file beside the pid file.
    File(PathBuf),
}

impl DrainStore {
    pub fn new(maintenancedir: Option<&Path>, state_file: &Path) -> DrainStore {
        match maintenancedir {
            Some(dir) => DrainStore::Dir(dir.to_path_buf()),
            None => DrainStore::File(state_file.to_path_buf()),
        }
    }

    /// The drains stored now (a missing directory or file holds none).
    pub fn load(&self) -> std::io::Result<Vec<DrainRecord>> {
        match self {
            DrainStore::File(path) => match std::fs::read(path) {
                Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(e),
            },
            DrainStore::Dir(dir) => {
                let entries = match std::fs::read_dir(dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(e),
                };
                let mut out = Vec::new();
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let Some((ip, port)) = parse_real(&name) else {
                        continue;
                    };
                    let Some(lines) = read_small(&entry.path()).and_then(|t| parse_lines(&t))
                    else {
                        continue;
                    };
                    for (virtual_id, by, since) in lines {
                        out.push(DrainRecord {
                            ip,
                            port,
                            virtual_id,
                            by,
                            since,
                        });
                    }
                }
                out.sort_by(|a, b| (&a.since, a.real_text()).cmp(&(&b.since, b.real_text())));
                Ok(out)
            }
        }
    }

    /// Store exactly `records`.
    pub fn save(&self, records: &[DrainRecord]) -> std::io::Result<()> {
        match self {
            DrainStore::File(path) => {
                let tmp = path.with_extension("drains.new");
                let text = serde_json::to_vec_pretty(records).map_err(std::io::Error::other)?;
                std::fs::write(&tmp, text)?;
                std::fs::rename(&tmp, path)
            }
            DrainStore::Dir(dir) => {
                let mut files: std::collections::BTreeMap<String, String> = Default::default();
                for r in records {
                    let line = format!(
                        "{MARKER} since={} virtual={} by={}\n",
                        r.since,
                        r.virtual_id.as_deref().unwrap_or("*"),
                        r.by
                    );
                    files.entry(r.real_text()).or_default().push_str(&line);
                }
                for entry in std::fs::read_dir(dir)?.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !files.contains_key(&name) && is_drain_file(&entry.path()) {
                        std::fs::remove_file(entry.path())?;
                    }
                }
                for (name, text) in files {
                    let path = dir.join(&name);
                    // A maintenance file placed by hand stays as it is: it already holds
                    // the real out of service.
                    if path.exists() && !is_drain_file(&path) {
                        continue;
                    }
                    std::fs::write(path, text)?;
                }
                Ok(())
            }
        }
    }

    /// With `maintenancedir=`: remove the maintenance file (placed by hand) named exactly
    /// `name`, if there is one. Returns whether one was removed.
    pub fn remove_maintenance_file(&self, name: &str) -> std::io::Result<bool> {
        let DrainStore::Dir(dir) = self else {
            return Ok(false);
        };
        let path = dir.join(name);
        if std::fs::symlink_metadata(&path).is_err() || is_drain_file(&path) {
            return Ok(false);
        }
        std::fs::remove_file(path)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(real: &str, virt: Option<&str>) -> DrainRecord {
        let (ip, port) = parse_real(real).unwrap();
        DrainRecord {
            ip,
            port,
            virtual_id: virt.map(str::to_owned),
            by: "root".into(),
            since: "2026-12-05T10:00:00Z".into(),
        }
    }

    #[test]
    fn reals_as_typed() {
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(parse_real("10.0.0.1:80"), Some((v4, Some(80))));
        assert_eq!(parse_real("10.0.0.1"), Some((v4, None)));
        assert_eq!(parse_real("[2001:db8::1]:80"), Some((v6, Some(80))));
        assert_eq!(parse_real("[2001:db8::1]"), Some((v6, None)));
        assert_eq!(parse_real("2001:db8::1"), Some((v6, None)));
        assert_eq!(parse_real("www:80"), None);
        assert_eq!(real_text(v6, None), "[2001:db8::1]");
    }

    #[test]
    fn the_directory_store_keeps_hand_made_files_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store = DrainStore::Dir(dir.path().to_path_buf());
        std::fs::write(dir.path().join("10.0.0.9:80"), "").unwrap();
        let records = vec![
            record("10.0.0.1:80", None),
            record("10.0.0.2", Some("tcp:10.0.0.100:80")),
            record("10.0.0.2", Some("udp:10.0.0.100:53")),
        ];
        store.save(&records).unwrap();
        let text = std::fs::read_to_string(dir.path().join("10.0.0.2")).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(is_drain_file(&dir.path().join("10.0.0.1:80")));
        assert!(!is_drain_file(&dir.path().join("10.0.0.9:80")));
        let mut back = store.load().unwrap();
        back.sort_by_key(|r| (r.real_text(), r.virtual_id.clone()));
        assert_eq!(back, records);
        store.save(&records[..1]).unwrap();
        assert!(!dir.path().join("10.0.0.2").exists());
        assert!(dir.path().join("10.0.0.9:80").exists());
        assert!(store.remove_maintenance_file("10.0.0.9:80").unwrap());
        assert!(!store.remove_maintenance_file("10.0.0.1:80").unwrap());
    }

    #[test]
    fn the_file_store_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = DrainStore::File(dir.path().join("ldirectord.x.drains"));
        assert_eq!(store.load().unwrap(), Vec::new());
        let records = vec![record("[2001:db8::1]:80", None)];
        store.save(&records).unwrap();
        assert_eq!(store.load().unwrap(), records);
    }
}
