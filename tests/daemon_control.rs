//! The control socket end to end: the real `ldirectord` binary detached (`start`,
//! `reload`, `restart`, `stop`) with `--engine userspace`, a real nginx as the two real
//! servers (a `/health` file per server decides its check), traffic through the virtual
//! address. `status --json` against the documented schema (`compat/status-schema.md`),
//! `drain`/`ready` across checks, reloads and restarts, the maintenancedir convention, the
//! socket's mode, group and permission errors, bad clients, a stopped daemon, and
//! `fallbackcommandonstop=`.
//!
//! Waits are bounded; no assertion depends on how fast anything happens.

#[path = "../checks/tests/common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ldirectord");

fn free_port() -> u16 {
    common::free_port("127.0.0.1")
}

/// One nginx serving two real servers, `a` and `b`, on their own ports: `GET /` answers
/// the name, `GET /health` answers the file `NAME.health` (404 when it is missing).
struct Nginx {
    dir: tempfile::TempDir,
    ports: [u16; 2],
    child: Child,
}

const NAMES: [&str; 2] = ["a", "b"];

impl Nginx {
    fn start() -> Nginx {
        let nginx = common::require("nginx", "nginx-light");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let ports = [free_port(), free_port()];
        let servers: String = NAMES
            .iter()
            .zip(ports)
            .map(|(name, port)| {
                format!(
                    "server {{ listen 127.0.0.1:{port}; default_type text/plain; \
                     keepalive_timeout 300s; \
                     location = /health {{ alias {d}/{name}.health; }} \
                     location / {{ return 200 \"{name}\"; }} }}\n"
                )
            })
            .collect();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log;\nevents {{ worker_connections 256; }}\nhttp {{\n\
             access_log off;\nclient_body_temp_path {d}/body;\nproxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
             {servers}}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new(nginx)
            .args(["-p", &d, "-c", &format!("{d}/nginx.conf"), "-e"])
            .arg(format!("{d}/error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let n = Nginx { dir, ports, child };
        for name in NAMES {
            n.healthy(name, true);
        }
        for port in ports {
            let deadline = Instant::now() + Duration::from_secs(20);
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "nginx does not listen on {port}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        n
    }

    fn addr(&self, name: &str) -> String {
        let i = NAMES.iter().position(|n| *n == name).unwrap();
        format!("127.0.0.1:{}", self.ports[i])
    }

    /// Make `name`'s health check pass or fail.
    fn healthy(&self, name: &str, ok: bool) {
        let file = self.dir.path().join(format!("{name}.health"));
        if ok {
            std::fs::write(file, "OK\n").unwrap();
        } else {
            let _ = std::fs::remove_file(file);
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A detached daemon of one instance in a temporary run directory; stopped (and killed if
/// need be) when dropped.
struct Ld {
    dir: tempfile::TempDir,
    config: PathBuf,
    vip: SocketAddr,
}

impl Ld {
    /// Write the config: `globals`, then one virtual with nginx's two reals.
    fn new(nginx: &Nginx, globals: &str) -> Ld {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ha.d")).unwrap();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        let vip: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let ld = Ld {
            config: dir.path().join("ctl.cf"),
            dir,
            vip,
        };
        ld.write_config(nginx, globals);
        ld
    }

    fn write_config(&self, nginx: &Nginx, globals: &str) {
        let text = format!(
            "logfile=\"{}\"\ncheckinterval=1\nchecktimeout=2\nquiescent=no\n{globals}\n\
             virtual={}\n\treal={} masq 1\n\treal={} masq 1\n\tservice=http\n\
             \trequest=\"health\"\n\treceive=\"OK\"\n\tscheduler=rr\n",
            self.path("ld.log").display(),
            self.vip,
            nginx.addr("a"),
            nginx.addr("b"),
        );
        std::fs::write(&self.config, text).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn socket(&self) -> PathBuf {
        self.path("run/ldirectord.ctl.cf.sock")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--run-dir")
            .arg(self.path("run"))
            .args(["--engine", "userspace"])
            .arg(&self.config)
            .args(args)
            .env("LDIRECTORD_HA_DIR", self.path("ha.d"))
            .stdin(Stdio::null());
        cmd
    }

    fn ld(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Run an action that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.ld(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}{}\nlog:\n{}",
            text(&out.stdout),
            text(&out.stderr),
            self.log()
        );
        text(&out.stdout)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("ld.log")).unwrap_or_default()
    }

    /// `status --json`, parsed.
    fn status(&self) -> Value {
        serde_json::from_str(&self.ok(&["status", "--json"])).unwrap()
    }

    /// The real `addr` in the snapshot.
    fn real(&self, addr: &str) -> Value {
        let s = self.status();
        s["virtuals"][0]["reals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["server"] == addr)
            .cloned()
            .unwrap_or_else(|| panic!("{addr} not in {s:#}"))
    }

    fn state(&self, addr: &str) -> String {
        self.real(addr)["state"].as_str().unwrap().to_owned()
    }

    fn wait(&self, secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "timed out after {secs} s waiting for {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The names that answer `n` requests on new connections through the virtual address
    /// (`-` for a connection that failed).
    fn answers(&self, n: usize) -> BTreeSet<String> {
        (0..n)
            .map(|_| {
                let stream = TcpStream::connect(self.vip).ok();
                stream
                    .and_then(|s| try_request(&mut BufReader::new(s)))
                    .unwrap_or_else(|| "-".to_owned())
            })
            .collect()
    }
}

impl Drop for Ld {
    fn drop(&mut self) {
        let _ = self.ld(&["stop"]);
        let pid = std::fs::read_to_string(self.path("run/ldirectord.ctl.cf.pid"));
        if let Some(pid) = pid.ok().and_then(|p| p.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    BufReader::new(stream)
}

/// One keep-alive `GET /` on `conn`; the body (nginx answers with a Content-Length).
fn request(conn: &mut BufReader<TcpStream>) -> String {
    try_request(conn).expect("an answer on the connection")
}

fn try_request(conn: &mut BufReader<TcpStream>) -> Option<String> {
    let _ = conn
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(5)));
    conn.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .ok()?;
    let mut length = 0;
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).ok()?;
    Some(text(&body))
}

/// Every key path of a JSON document (`daemon.pid`, `virtuals[].reals[].check.reason`).
fn paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                paths(v, &p, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

/// The field paths `compat/status-schema.md` documents: its table rows' first cells.
fn documented_paths() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("compat/status-schema.md"),
    )
    .unwrap();
    doc.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(path, _)| path.to_owned())
        .collect()
}

#[test]
fn status_json_follows_a_real_going_down_and_matches_the_schema() {
    let nginx = Nginx::start();
    let ld = Ld::new(&nginx, "fallback=127.0.0.1:9 masq");
    ld.ok(&["start"]);
    let (a, b) = (nginx.addr("a"), nginx.addr("b"));
    ld.wait(20, "both reals up", || {
        ld.state(&a) == "up" && ld.state(&b) == "up"
    });

    nginx.healthy("b", false);
    ld.wait(20, "b down", || ld.state(&b) == "down");
    let s = ld.status();
    assert_eq!(s["schema"], 1);
    assert_eq!(s["running"], true);
    assert_eq!(s["daemon"]["engine"], "userspace");
    assert_eq!(s["daemon"]["config_path"], ld.config.display().to_string());
    assert_eq!(s["daemon"]["config_md5"].as_str().unwrap().len(), 32);
    let v = &s["virtuals"][0];
    assert_eq!(v["id"], format!("tcp:{}", ld.vip));
    assert_eq!(v["scheduler"], "rr");
    assert_eq!(v["fallback_active"], false);
    assert_eq!(v["fallback"]["state"], "standby");
    let real = ld.real(&b);
    assert_eq!(real["table_weight"], Value::Null, "{real:#}");
    assert_eq!(real["check"]["verdict"], "down");
    assert_eq!(real["check"]["failure_class"], "protocol", "{real:#}");
    assert!(
        real["check"]["reason"].as_str().unwrap().contains("404"),
        "{real:#}"
    );
    assert!(real["check"]["consecutive_failures"].as_u64().unwrap() >= 1);
    assert_eq!(real["check"]["consecutive_successes"], 0);
    assert_eq!(real["transitions"], 2, "unchecked → up → down: {real:#}");
    assert!(real["last_transition_at"].is_string());
    let up = ld.real(&a);
    assert_eq!(
        (up["weight"].as_u64(), up["table_weight"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(ld.answers(4), BTreeSet::from(["a".to_owned()]));

    // A reload is reported with its result; a broken file keeps the old config. (The
    // `reload` action parses the file first and exits 2 without signalling, as stock does,
    // so the broken one gets a plain HUP.)
    ld.ok(&["reload"]);
    ld.wait(10, "the reload", || {
        ld.status()["daemon"]["last_reload"]["result"] == "ok"
    });
    let pid = ld.status()["daemon"]["pid"].as_i64().unwrap() as i32;
    std::fs::write(
        &ld.config,
        "checkinterval=0
",
    )
    .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    ld.wait(10, "the failed reload", || {
        ld.log().contains("invalid check interval value")
    });
    ld.write_config(&nginx, "fallback=127.0.0.1:9 masq");
    let reload = &ld.status()["daemon"]["last_reload"];
    assert_eq!(reload["result"], "error", "{reload:#}");
    assert!(
        reload["error"]
            .as_str()
            .unwrap()
            .contains("invalid check interval value")
    );
    assert_eq!(ld.state(&b), "down", "the old configuration stays in force");

    // Every field the daemon printed is documented, and every documented one printed
    // (the drain fields after a drain).
    ld.ok(&["drain", &a]);
    let mut seen = BTreeSet::new();
    paths(&ld.status(), "", &mut seen);
    let documented = documented_paths();
    let undocumented: Vec<_> = seen.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "not in compat/status-schema.md: {undocumented:?}"
    );
    let missing: Vec<_> = documented
        .difference(&seen)
        .filter(|p| !p.starts_with("daemon.last_reload."))
        .collect();
    assert!(
        missing.is_empty(),
        "documented but not printed: {missing:?}"
    );

    // The table for a person: a header and one row per real and for the fallback.
    let table = ld.ok(&["status", "--verbose"]);
    assert!(table.contains("VIRTUAL"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains(&b) && l.contains(" down ")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains(&a) && l.contains("draining by root")),
        "{table}"
    );
}

#[test]
fn a_drain_outlasts_checks_reloads_and_restarts_until_ready() {
    let nginx = Nginx::start();
    let ld = Ld::new(&nginx, "");
    ld.ok(&["start"]);
    let (a, b) = (nginx.addr("a"), nginx.addr("b"));
    let both = BTreeSet::from(["a".to_owned(), "b".to_owned()]);
    ld.wait(20, "both reals serving", || ld.answers(4) == both);
    // A connection held by `a` before the drain.
    let mut held = connect(ld.vip);
    let mut first = request(&mut held);
    while first != "a" {
        held = connect(ld.vip);
        first = request(&mut held);
    }

    let said = ld.ok(&["drain", &a]);
    assert_eq!(said, format!("{a} in every virtual: drained\n"));
    let real = ld.real(&a);
    assert_eq!(real["state"], "draining");
    assert_eq!(real["table_weight"], 0);
    assert_eq!(real["drain"]["by"], "root");
    assert!(ld.log().contains(&format!("Drained real server: {a}")));
    // New connections avoid it; the held one is still served by it.
    assert_eq!(ld.answers(6), BTreeSet::from(["b".to_owned()]));
    assert_eq!(request(&mut held), "a");
    // Its checks go on (and pass) without giving the weight back.
    let checked = ld.real(&a)["check"]["checked_at"].clone();
    ld.wait(10, "a new check of a", || {
        ld.real(&a)["check"]["checked_at"] != checked
    });
    assert_eq!(ld.real(&a)["table_weight"], 0);
    // The state file beside the pid file holds it.
    let stored = std::fs::read_to_string(ld.path("run/ldirectord.ctl.cf.drains")).unwrap();
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(
        stored[0]["port"].as_u64(),
        Some(u64::from(nginx.ports[0])),
        "{stored:#}"
    );
    assert_eq!(stored[0]["by"], "root", "{stored:#}");

    ld.ok(&["reload"]);
    ld.wait(10, "the reload", || {
        ld.status()["daemon"]["last_reload"]["result"] == "ok"
    });
    assert_eq!(ld.state(&a), "draining");
    assert_eq!(ld.answers(6), BTreeSet::from(["b".to_owned()]));

    ld.ok(&["restart"]);
    // Both checked again: first runs are paced one after another (issue 17), so `b` can be
    // up before `a`'s first check has put it back in the table.
    ld.wait(20, "a and b checked after the restart", || {
        ld.state(&b) == "up" && !ld.real(&a)["check"]["checked_at"].is_null()
    });
    let real = ld.real(&a);
    assert_eq!(
        (real["state"].as_str(), real["table_weight"].as_u64()),
        (Some("draining"), Some(0))
    );
    assert_eq!(ld.answers(6), BTreeSet::from(["b".to_owned()]));

    // A drain limited to another virtual, or of an unknown real, is refused.
    let out = ld.ld(&["drain", "127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "ldirectord: no real server 127.0.0.1:1 is configured\n"
    );
    let out = ld.ld(&["drain", &b, "tcp:10.9.9.9:80"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "ldirectord: no virtual service tcp:10.9.9.9:80 is configured\n"
    );
    let out = ld.ld(&["drain", "www.example.com"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is not RIP or RIP:PORT"),
        "{}",
        text(&out.stderr)
    );
    let out = ld.ld(&["ready", &b]);
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(1), format!("ldirectord: {b} is not drained\n"))
    );
    assert_eq!(ld.ld(&["drain"]).status.code(), Some(255));

    // ready: the weight comes back, new connections reach it again.
    // (VIRTUAL as an address names the service too; the drain covered every virtual.)
    let out = ld.ld(&["ready", &a, &ld.vip.to_string()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a drain of every virtual is not lifted per virtual"
    );
    assert_eq!(
        text(&out.stderr),
        format!(
            "ldirectord: {a} is held by the drain of {a} in every virtual service: ready {a}\n"
        )
    );
    assert_eq!(
        ld.ok(&["ready", &a]),
        format!("{a} in every virtual: ready\n")
    );
    ld.wait(10, "a up", || ld.state(&a) == "up");
    assert_eq!(ld.real(&a)["table_weight"], 1);
    ld.wait(10, "a serving", || ld.answers(6) == both);
    assert_eq!(ld.status()["drains"], serde_json::json!([]));
}

#[test]
fn with_maintenancedir_drain_files_and_maintenance_files_agree() {
    let nginx = Nginx::start();
    let maint = tempfile::tempdir().unwrap();
    let ld = Ld::new(
        &nginx,
        &format!("maintenancedir={}", maint.path().display()),
    );
    ld.ok(&["start"]);
    let (a, b) = (nginx.addr("a"), nginx.addr("b"));
    ld.wait(20, "both up", || {
        ld.state(&a) == "up" && ld.state(&b) == "up"
    });

    // The command writes stock's file name, marked as a drain: the real is drained (weight
    // 0, still checked), not in maintenance.
    ld.ok(&["drain", &a]);
    let file = maint.path().join(&a);
    let content = std::fs::read_to_string(&file).unwrap();
    assert!(
        content.starts_with("ldirectord-rs drain since="),
        "{content}"
    );
    assert!(
        content.trim_end().ends_with("virtual=* by=root"),
        "{content}"
    );
    let checked = ld.real(&a)["check"]["checked_at"].clone();
    ld.wait(10, "a checked again", || {
        ld.real(&a)["check"]["checked_at"] != checked
    });
    let real = ld.real(&a);
    assert_eq!(
        (real["state"].as_str(), real["check"]["verdict"].as_str()),
        (Some("draining"), Some("up"))
    );

    // A file placed by hand is stock's maintenance: forced down, deleted (quiescent=no).
    std::fs::write(maint.path().join("127.0.0.1"), "").unwrap();
    ld.wait(10, "b in maintenance", || ld.state(&b) == "maintenance");
    assert_eq!(ld.real(&b)["table_weight"], Value::Null);
    // `ready` lifts it too: the file goes, the next check brings b back.
    let said = ld.ok(&["ready", "127.0.0.1"]);
    assert!(
        said.contains("127.0.0.1: maintenance file removed"),
        "{said}"
    );
    assert!(
        said.contains(&format!("{a} in every virtual: ready")),
        "{said}"
    );
    assert!(!maint.path().join("127.0.0.1").exists() && !file.exists());
    ld.wait(10, "both up again", || {
        ld.state(&a) == "up" && ld.state(&b) == "up"
    });

    // Removing a drain file by hand lifts the drain on the next pass.
    ld.ok(&["drain", &b]);
    assert_eq!(ld.state(&b), "draining");
    std::fs::remove_file(maint.path().join(&b)).unwrap();
    ld.wait(10, "b ready", || ld.state(&b) == "up");
    assert_eq!(ld.real(&b)["table_weight"], 1);
}

/// Send raw bytes to the socket; the answer line, parsed.
fn raw(socket: &Path, bytes: &[u8]) -> Value {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

#[test]
fn the_socket_is_root_or_controlgroup_only_and_bad_clients_get_an_error() {
    let nginx = Nginx::start();
    let ld = Ld::new(&nginx, "");
    // Let `nobody` reach the run directory and read the config: only the socket decides.
    for p in [ld.dir.path(), &ld.path("run"), &ld.path("ha.d")] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&ld.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    ld.ok(&["start"]);
    let meta = std::fs::metadata(ld.socket()).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.uid(), meta.gid()), (0o660, 0, 0));
    let setpriv = common::require("setpriv", "util-linux");
    let as_nobody = |args: &[&str]| {
        let cmd = ld.command(args);
        let program = cmd.get_program().to_owned();
        let argv: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
        Command::new(&setpriv)
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(program)
            .args(argv)
            .env("LDIRECTORD_HA_DIR", ld.path("ha.d"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = as_nobody(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no permission"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        as_nobody(&["drain", &nginx.addr("a")]).status.code(),
        Some(4)
    );

    // controlgroup= (here nogroup, nobody's group) opens it to that group, on reload too.
    ld.write_config(&nginx, "controlgroup=nogroup");
    ld.ok(&["reload"]);
    ld.wait(10, "the socket's new group", || {
        std::fs::metadata(ld.socket()).unwrap().gid() == 65534
    });
    let out = as_nobody(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["running"], true);

    // Garbage, too long, the wrong version, an unknown command: an error line each.
    let socket = ld.socket();
    let r = raw(&socket, b"hello\n");
    assert_eq!(
        (r["ok"].as_bool(), r["kind"].as_str()),
        (Some(false), Some("bad-request"))
    );
    let r = raw(&socket, &vec![b'x'; 100_000]);
    assert_eq!(r["error"], "request longer than 4096 bytes");
    let r = raw(&socket, b"{\"version\":7,\"command\":\"status\"}\n");
    assert_eq!(r["kind"], "version");
    let r = raw(&socket, b"{\"version\":1,\"command\":\"rm -rf\"}\n");
    assert_eq!(r["kind"], "bad-request");
    // A client that sends nothing holds only itself: others are answered meanwhile, and
    // it gets its error after the request timeout.
    let mut slow = UnixStream::connect(&socket).unwrap();
    slow.write_all(b"{\"version\":1,").unwrap();
    let started = Instant::now();
    let r = raw(&socket, b"{\"version\":1,\"command\":\"status\"}\n");
    assert_eq!(r["ok"], true);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered while the slow client waits"
    );
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(slow).read_line(&mut line).unwrap();
    assert!(
        line.contains("no complete request line within 2 s"),
        "{line}"
    );
    // The daemon is fine.
    assert_eq!(ld.status()["running"], true);

    // stop removes the socket.
    ld.ok(&["stop"]);
    assert!(!socket.exists());
}

#[test]
fn status_json_drain_and_ready_when_stopped() {
    let nginx = Nginx::start();
    let ld = Ld::new(&nginx, "");
    let out = ld.ld(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        s,
        serde_json::json!({"schema": 1, "running": false, "config_path": ld.config.display().to_string()})
    );
    let out = ld.ld(&["status", "--verbose"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        text(&out.stdout),
        format!("ldirectord is stopped for {}\n", ld.config.display())
    );
    for action in ["drain", "ready"] {
        let out = ld.ld(&[action, &nginx.addr("a")]);
        assert_eq!(out.status.code(), Some(3), "{action}");
        assert_eq!(
            text(&out.stderr),
            format!("ldirectord is stopped for {}\n", ld.config.display())
        );
    }
    // A pid file whose daemon is gone: status says stale (1), as plain status does.
    std::fs::write(ld.path("run/ldirectord.ctl.cf.pid"), "99999999\n").unwrap();
    assert_eq!(ld.ld(&["status", "--json"]).status.code(), Some(1));
    std::fs::remove_file(ld.path("run/ldirectord.ctl.cf.pid")).unwrap();
}

#[test]
fn fallbackcommandonstop_runs_the_fallback_command_at_shutdown() {
    let nginx = Nginx::start();
    let ld = Ld::new(&nginx, "");
    let record = ld.path("fallback.log");
    let script = ld.path("fb.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> '{}'\n", record.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    ld.write_config(
        &nginx,
        &format!(
            "fallbackcommand={}\nfallbackcommandonstop=yes",
            script.display()
        ),
    );
    ld.ok(&["start"]);
    let a = nginx.addr("a");
    ld.wait(20, "a up", || ld.state(&a) == "up");
    // `start` while no real was checked yet, `stop` once one came up.
    let stopped = format!("stop {} tcp\n", ld.vip);
    let read = || std::fs::read_to_string(&record).unwrap_or_default();
    ld.wait(10, "the fallback command's stop", || {
        read().ends_with(&stopped)
    });
    let before = read();
    ld.ok(&["stop"]);
    let after = std::fs::read_to_string(&record).unwrap_or_default();
    assert_eq!(after, format!("{before}start {} tcp\n", ld.vip));
}
