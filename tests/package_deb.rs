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
use std::process::{Command, ExitStatus};
use std::time::Instant;

/// Run `cmd`: its exit status, standard output, and both outputs together.
fn output(what: &str, cmd: &mut Command) -> (ExitStatus, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let both = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&both).into_owned(),
    )
}

/// Run `cmd`, insist on success, return its standard output.
fn run(what: &str, cmd: &mut Command) -> String {
    let (status, stdout, both) = output(what, cmd);
    assert!(status.success(), "{what} failed ({status}):\n{both}");
    stdout
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

    let (status, said, both) = output(
        "lintian (compat/deb/apt-packages.txt)",
        Command::new("lintian")
            .args(["--fail-on", "error,warning"])
            .arg(&deb),
    );
    assert!(
        status.success() && said.trim().is_empty(),
        "lintian on {deb}:\n{both}"
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
    let (status, _, text) = output(
        "unshare (util-linux)",
        Command::new("unshare")
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
            .arg(&work),
    );
    println!("{text}");
    println!(
        "--- package: built in {build_secs:.0} s, bookworm root ready in \
         {root_secs:.0} s, whole test {:.0} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        status.success() && text.contains("\nPASS"),
        "the package in a bookworm root:\n{text}"
    );
}
