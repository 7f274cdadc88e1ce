//! The Debian package, installed for real (issue 16): `compat/deb/build` makes it (from this
//! test build's binary, to stay within CI's time; the operator's command builds a release
//! one), and `tests/fixtures/deb/in-root.sh` installs it into a Debian bookworm root that
//! has Debian's `ldirectord` and `resource-agents` (debootstrapped once and cached, see
//! `tests/fixtures/deb/bookworm-root`), through a copy-on-write overlay in a private mount
//! namespace. It checks that the package replaces stock, `ldirectord --test` reads the
//! shipped config, both man pages render, the agent paths exist, the unit's enablement is
//! left alone, `dpkg -r` keeps the conffiles and `--purge` removes them. Then `lintian`
//! on the package: clean, apart from the overrides the package justifies.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn run(what: &str, cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn package_replaces_stock_and_removes_cleanly() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();

    let built = run(
        "compat/deb/build",
        Command::new(repo.join("compat/deb/build"))
            .arg(dir.path().join("out"))
            .env("LDRS_DEB_BINARY", env!("CARGO_BIN_EXE_ldirectord")),
    );
    let deb = built
        .lines()
        .last()
        .expect("compat/deb/build prints the .deb")
        .to_owned();
    let build_secs = started.elapsed().as_secs_f64();

    let lintian = Command::new("lintian")
        .args(["--fail-on", "warning"])
        .arg(&deb)
        .output()
        .expect("run lintian (compat/deb/apt-packages.txt)");
    let said = String::from_utf8_lossy(&lintian.stdout).into_owned();
    assert!(
        lintian.status.success() && said.trim().is_empty(),
        "lintian on {deb}:\n{said}{}",
        String::from_utf8_lossy(&lintian.stderr)
    );

    let rooted = Instant::now();
    let root = run(
        "tests/fixtures/deb/bookworm-root",
        &mut Command::new(repo.join("tests/fixtures/deb/bookworm-root")),
    );
    let root = root.trim().to_owned();
    let root_secs = rooted.elapsed().as_secs_f64();

    let work = dir.path().join("root");
    std::fs::create_dir(&work).unwrap();
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--pid",
            "--fork",
            "--propagation",
            "private",
            "sh",
        ])
        .arg(repo.join("tests/fixtures/deb/in-root.sh"))
        .args([&root, &deb])
        .arg(&work)
        .output()
        .expect("run unshare (util-linux)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    println!(
        "--- package: built in {build_secs:.0} s, bookworm root ready in \
         {root_secs:.0} s, whole test {:.0} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success() && text.contains("\nPASS"),
        "the package in a bookworm root:\n{text}"
    );
}
