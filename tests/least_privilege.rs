//! Least privilege (issue 14) through the real binary: `scriptuser=` runs external
//! checks, `fallbackcommand` and `callback` as that user while the daemon stays root
//! (with Debian's `nobody`/`nogroup`, so the machine is left as found), and an unknown
//! user is a configuration error `--test` reports at its column; the daemon keeps only
//! the capabilities it needs while root's scripts keep all of root's
//! (`keepcapabilities=yes` keeps them all); no secret in any output.

#[path = "fixtures/daemon/support.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;

use support::{Backend, Mode, World, sorted, wait_until};

const V: &str = "TCP 127.0.0.100:80";

/// A script that records `uid gid groups` (as `id` prints them) on its first line, then
/// its own `CapPrm:` and `CapEff:` lines; the record is written whole by a rename.
fn recorder(w: &World, name: &str, then: &str) -> std::path::PathBuf {
    let record = w.path(&format!("out/{name}.id"));
    w.script(
        name,
        &format!(
            "#!/bin/sh\n{{ echo \"$(id -u) $(id -g) $(id -G)\"; \
             grep -E '^Cap(Prm|Eff):' /proc/$$/status; }} > '{r}.$$'\n\
             mv '{r}.$$' '{r}'\n{then}\n",
            r = record.display()
        ),
    );
    record
}

/// The `CapPrm`/`CapEff` masks a [`recorder`] wrote.
fn recorded_caps(record: &std::path::Path) -> (u64, u64) {
    let text = std::fs::read_to_string(record).unwrap();
    (cap_field(&text, "CapPrm"), cap_field(&text, "CapEff"))
}

/// A `Cap…:` mask out of `/proc/…/status` text.
fn cap_field(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.split(':').next() == Some(field))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

/// `field` of this test process and of every thread of `pid`.
fn caps_of(pid: i32, field: &str) -> Vec<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .map(|status| cap_field(&status, field))
        .collect()
}

/// This test process's own `field` mask.
fn own(field: &str) -> u64 {
    cap_field(
        &std::fs::read_to_string("/proc/self/status").unwrap(),
        field,
    )
}

/// What the daemon keeps (`daemon::privilege::NEEDED`), by capability number.
const NEEDED: [(u32, &str); 7] = [
    (0, "CAP_CHOWN"),
    (5, "CAP_KILL"),
    (6, "CAP_SETGID"),
    (7, "CAP_SETUID"),
    (10, "CAP_NET_BIND_SERVICE"),
    (12, "CAP_NET_ADMIN"),
    (13, "CAP_NET_RAW"),
];

/// The part of [`NEEDED`] within `permitted`: its mask and names.
fn needed_within(permitted: u64) -> (u64, Vec<&'static str>) {
    let kept: Vec<_> = NEEDED
        .iter()
        .filter(|(bit, _)| permitted & 1 << bit != 0)
        .collect();
    (
        kept.iter().fold(0, |m, (bit, _)| m | 1 << bit),
        kept.iter().map(|(_, name)| *name).collect(),
    )
}

/// `GET /metrics` on `port` of 127.0.0.1: the whole answer, or `None` when nobody answers.
fn scrape(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text)
}

/// A port below 1024 free on 127.0.0.1 (bound, then released).
fn free_privileged_port() -> u16 {
    (600..1000)
        .rev()
        .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        .expect("a free port below 1024 on 127.0.0.1")
}

/// `status --json` of the config `c`, parsed.
fn status_json(w: &World, c: &str) -> serde_json::Value {
    let out = w.ld(&[c, "status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The `Uid:` line's real uid of `pid`.
fn uid_of(pid: i32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn scripts_run_as_the_script_user_and_the_daemon_stays_root() {
    assert_eq!(nix::unistd::getuid().as_raw(), 0, "run as root, as CI does");
    let w = World::new();
    // nobody must reach the scripts and write its records.
    std::fs::set_permissions(w.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(w.path("out")).unwrap();
    std::fs::set_permissions(w.path("out"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = Backend::start("127.0.0.1", Mode::Healthy);
    let check = recorder(&w, "check", "exit 0");
    let fb = recorder(&w, "fb", "exit 0");
    let cb = recorder(&w, "cb", "exit 0");
    // A check that outlives checktimeout: the daemon (root, with CAP_KILL kept) must
    // kill nobody's process group.
    let hung = Hung(w.path("out/hang.pids"));
    w.script(
        "hang",
        &format!(
            "#!/bin/sh\necho $$ >> '{}'\nexec sleep 300\n",
            hung.0.display()
        ),
    );
    let script = |name: &str| w.path(name).display().to_string();
    let dead = support::free_port();
    let body = format!(
        "checkinterval=1\nchecktimeout=2\nfallbackcommand={}\ncallback=\"{}\"\n\
         virtual=127.0.0.100:80\n\treal={} masq 1\n\tchecktype=external\n\tcheckcommand=\"{}\"\n\
         virtual=127.0.0.101:80\n\treal=127.0.0.1:{dead} masq 1\n\tchecktype=connect\n\
         virtual=127.0.0.103:80\n\treal={} masq 1\n\tchecktype=external\n\tcheckcommand=\"{}\"\n\
         scriptuser=nobody:nogroup\n",
        script("fb"),
        script("cb"),
        r.addr,
        script("check"),
        r.addr,
        script("hang"),
    );
    let cfg = w.config("priv.cf", &body);
    let c = cfg.to_str().unwrap();
    let pid = w.start(c);
    let a = r.addr.to_string();
    wait_until(30, "the external check brought the real up", || {
        w.reals(V) == sorted(vec![(a.clone(), 1)])
    });
    wait_until(30, "the fallbackcommand ran", || fb.exists());
    // A changed file runs the callback.
    std::fs::write(
        &cfg,
        format!("{}\n# edited\n", std::fs::read_to_string(&cfg).unwrap()),
    )
    .unwrap();
    wait_until(30, "the callback ran", || cb.exists());
    for record in [&check, &fb, &cb] {
        let text = std::fs::read_to_string(record).unwrap();
        // No supplementary group beyond nogroup (std clears them before setuid).
        assert_eq!(
            text.lines().next(),
            Some("65534 65534 65534"),
            "{}",
            record.display()
        );
        // No capability either: the daemon's kept ones end at setuid.
        assert_eq!(recorded_caps(record), (0, 0), "{}", record.display());
    }
    assert_eq!(uid_of(pid), 0, "the daemon itself stays root");
    wait_until(30, "a timed-out check of nobody's killed", || {
        hung.pids()
            .first()
            .is_some_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
    });
    assert_eq!(w.ld(&[c, "stop"]).status.code(), Some(0));
}

/// The pids a hanging check script appended to this file; any still running when the
/// test ends (it failed) are killed.
struct Hung(std::path::PathBuf);

impl Hung {
    fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(&self.0)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Drop for Hung {
    fn drop(&mut self) {
        for pid in self.pids() {
            // Only our own sleep: the pid may have gone and been reused.
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmdline != b"sleep\x00300\x00" {
                continue;
            }
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Started as root, the daemon keeps only what it needs (every thread of it), its bounding
/// set stays, and what it runs as root still gets all of root's capabilities; ping
/// checks, metrics, a reload to a metrics port below 1024 and a control group (chown),
/// the control socket and the fallbackcommand all work after the drop.
#[test]
fn the_daemon_keeps_only_the_capabilities_it_needs() {
    assert_eq!(nix::unistd::getuid().as_raw(), 0, "run as root, as CI does");
    let w = World::new();
    std::fs::create_dir(w.path("out")).unwrap();
    let r = Backend::start("127.0.0.1", Mode::Healthy);
    let check = recorder(&w, "check", "exit 0");
    let fb = recorder(&w, "fb", "exit 0");
    let (dead, metrics) = (support::free_port(), support::free_port());
    let body = |metrics: u16, extra: &str| {
        format!(
            "checkinterval=1\nchecktimeout=3\nmetrics=127.0.0.1:{metrics}\nfallbackcommand={}\n{extra}\
             virtual=127.0.0.100:80\n\treal={} masq 1\n\tchecktype=external\n\tcheckcommand=\"{}\"\n\
             virtual=127.0.0.102:80\n\treal=127.0.0.1:80 masq 1\n\tchecktype=ping\n\
             virtual=127.0.0.101:80\n\treal=127.0.0.1:{dead} masq 1\n\tchecktype=connect\n",
            w.path("fb").display(),
            r.addr,
            w.path("check").display(),
        )
    };
    let cfg = w.config("caps.cf", &body(metrics, ""));
    let c = cfg.to_str().unwrap();
    let pid = w.start(c);
    let a = r.addr.to_string();
    wait_until(30, "the external check brought its real up", || {
        w.reals(V) == sorted(vec![(a.clone(), 1)])
    });
    wait_until(30, "the ping check brought its real up", || {
        w.reals("TCP 127.0.0.102:80") == sorted(vec![("127.0.0.1:80".into(), 1)])
    });
    wait_until(30, "the fallbackcommand ran", || fb.exists());
    let (bounding, permitted) = (own("CapBnd"), own("CapPrm"));
    let (kept, names) = needed_within(permitted);
    let threads = |field: &str| caps_of(pid, field);
    let every_thread = |what: &str| {
        assert!(
            threads("CapEff").len() > 1,
            "the runtime's threads are listed"
        );
        for (field, want) in [
            ("CapEff", kept),
            ("CapPrm", kept),
            ("CapInh", 0),
            ("CapAmb", 0),
            ("CapBnd", bounding),
        ] {
            for got in threads(field) {
                assert_eq!(got, want, "{what}: {field} {got:#x}, want {want:#x}");
            }
        }
    };
    every_thread("after start");
    // Root's programs: permitted and effective are the bounding set again.
    for record in [&check, &fb] {
        assert_eq!(
            recorded_caps(record),
            (bounding, bounding),
            "{}",
            record.display()
        );
    }
    assert!(
        w.log().contains(&format!(
            "Keeping capabilities {} and dropping",
            names.join(",")
        )),
        "{}",
        w.log()
    );
    let json = status_json(&w, c);
    assert_eq!(json["daemon"]["capabilities"], serde_json::json!(names));
    assert!(scrape(metrics).is_some_and(|t| t.contains("ldirectord_")));
    // A reload moves metrics below 1024 and hands the control socket to nogroup.
    let low = free_privileged_port();
    std::fs::write(
        &cfg,
        format!(
            "logfile=\"{}\"\n{}",
            w.path("ld.log").display(),
            body(low, "controlgroup=nogroup\n")
        ),
    )
    .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    wait_until(30, "metrics served on the port below 1024", || {
        scrape(low).is_some_and(|t| t.contains("ldirectord_"))
    });
    let socket = w.path("run").join("ldirectord.caps.cf.sock");
    wait_until(30, "the control socket handed to nogroup", || {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&socket).is_ok_and(|m| m.gid() == 65534)
    });
    assert_eq!(status_json(&w, c)["daemon"]["last_reload"]["result"], "ok");
    every_thread("after the reload");
    assert!(!w.log().contains("Permission denied"), "{}", w.log());
    assert_eq!(w.ld(&[c, "stop"]).status.code(), Some(0));
}

/// `keepcapabilities=yes`: the daemon keeps every capability it started with.
#[test]
fn keepcapabilities_yes_keeps_them_all() {
    assert_eq!(nix::unistd::getuid().as_raw(), 0, "run as root, as CI does");
    let w = World::new();
    let r = Backend::start("127.0.0.1", Mode::Healthy);
    let cfg = w.config(
        "keep.cf",
        &format!(
            "checkinterval=1\nkeepcapabilities=yes\nvirtual=127.0.0.100:80\n\treal={} masq 1\n",
            r.addr
        ),
    );
    let c = cfg.to_str().unwrap();
    let pid = w.start(c);
    wait_until(30, "the real up", || {
        w.reals(V) == sorted(vec![(r.addr.to_string(), 1)])
    });
    for field in ["CapEff", "CapPrm", "CapBnd"] {
        for got in caps_of(pid, field) {
            assert_eq!(got, own(field), "{field}");
        }
    }
    assert!(
        w.log()
            .contains("keepcapabilities=yes: keeping all of root's capabilities"),
        "{}",
        w.log()
    );
    let json = status_json(&w, c);
    let listed = json["daemon"]["capabilities"].as_array().unwrap().len();
    assert_eq!(listed as u32, own("CapEff").count_ones());
    assert_eq!(w.ld(&[c, "stop"]).status.code(), Some(0));
}

/// Not root: nothing to drop, nothing said, no error (the userspace engine as `nobody`).
#[test]
fn a_daemon_not_run_as_root_changes_nothing() {
    use std::os::unix::process::CommandExt;
    assert_eq!(nix::unistd::getuid().as_raw(), 0, "run as root, as CI does");
    let w = World::new();
    std::fs::set_permissions(w.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let nobody = (
        nix::unistd::Uid::from_raw(65534),
        nix::unistd::Gid::from_raw(65534),
    );
    std::fs::write(w.path("ld.log"), "").unwrap();
    for owned in [w.path("run"), w.path("ld.log")] {
        nix::unistd::chown(&owned, Some(nobody.0), Some(nobody.1)).unwrap();
    }
    let r = Backend::start("127.0.0.1", Mode::Healthy);
    let vip = format!("127.0.0.100:{}", support::free_port());
    let cfg = w.config(
        "plain.cf",
        &format!("checkinterval=1\nvirtual={vip}\n\treal={} masq 1\n", r.addr),
    );
    let c = cfg.to_str().unwrap();
    let out = std::process::Command::new(support::BIN)
        .arg("--run-dir")
        .arg(w.path("run"))
        .args(["--engine", "userspace", c, "start"])
        .env("LDIRECTORD_HA_DIR", w.path("ha.d"))
        .current_dir("/")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let pid = w.pid("plain.cf").expect("pid file");
    wait_until(30, "the real in the userspace table", || {
        status_json(&w, c)["virtuals"][0]["reals"][0]["table_weight"] == 1
    });
    assert_eq!(
        status_json(&w, c)["daemon"]["capabilities"],
        serde_json::json!([])
    );
    assert_eq!(
        caps_of(pid, "CapEff"),
        vec![0; caps_of(pid, "CapEff").len()]
    );
    assert!(!w.log().to_lowercase().contains("capabilit"), "{}", w.log());
    assert_eq!(w.ld(&[c, "stop"]).status.code(), Some(0));
}

#[test]
fn an_unknown_script_user_is_a_configuration_error() {
    let w = World::new();
    let cfg = w.config(
        "u.cf",
        "checkinterval=1\nscriptuser=ldirectord-no-such-user\n",
    );
    let c = cfg.to_str().unwrap();
    let out = w.ld(&["--test", c]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The config file's first line is the logfile= the test support writes.
    let at = format!("{c}:3:12");
    assert!(stderr.contains(&at), "{stderr}");
    assert!(
        stderr.contains("unknown user ldirectord-no-such-user"),
        "{stderr}"
    );
    let start = w.ld(&[c, "start"]);
    assert_eq!(start.status.code(), Some(2), "start refuses it too");
    let group = w.config("g.cf", "scriptuser=nobody:ldirectord-no-such-group\n");
    let out = w.ld(&["--test", group.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown group ldirectord-no-such-group"),
        "{stderr}"
    );
}

/// A dovecot (Debian `dovecot-core`, `-pop3d`, `-imapd`) on loopback with one user,
/// `alice` with `password`, plain text logins; killed and reaped on drop.
struct Dovecot {
    child: std::process::Child,
    pop3: u16,
    imap: u16,
    dir: tempfile::TempDir,
}

impl Dovecot {
    /// Change alice's password (dovecot reads its passwd-file again when it changes).
    fn set_password(&self, password: &str) {
        let users = self.dir.path().join("users");
        let tmp = self.dir.path().join("users.tmp");
        std::fs::write(&tmp, format!("alice:{{PLAIN}}{password}::::::\n")).unwrap();
        std::fs::rename(tmp, users).unwrap();
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dovecot(password: &str) -> Dovecot {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mail = d.join("mail");
    std::fs::create_dir(&mail).unwrap();
    std::fs::set_permissions(&mail, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::write(
        d.join("users"),
        format!("alice:{{PLAIN}}{password}::::::\n"),
    )
    .unwrap();
    let (pop3, imap) = (support::free_port(), support::free_port());
    let conf = format!(
        "base_dir = {d}/run\nstate_dir = {d}/state\ninstance_name = ldsecret-{pop3}\n\
         protocols = pop3 imap\nlisten = 127.0.0.1\nlog_path = {d}/dovecot.log\n\
         ssl = no\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\n\
         auth_failure_delay = 0\ndefault_internal_user = dovecot\n\
         default_login_user = dovenull\n\
         passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/users\n}}\n\
         userdb {{\n  driver = static\n  args = uid=65534 gid=65534 home={mail}/%u\n}}\n\
         mail_location = maildir:~/Maildir\nfirst_valid_uid = 1\n\
         service pop3-login {{\n  inet_listener pop3 {{\n    port = {pop3}\n  }}\n}}\n\
         service imap-login {{\n  inet_listener imap {{\n    port = {imap}\n  }}\n}}\n\
         service anvil {{\n  chroot =\n}}\npop3_uidl_format = %08Xu%08Xv\n",
        d = d.display(),
        mail = mail.display(),
    );
    let conf_path = d.join("dovecot.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = std::process::Command::new("/usr/sbin/dovecot")
        .arg("-F")
        .arg("-c")
        .arg(&conf_path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dovecot (apt-get install dovecot-core dovecot-pop3d dovecot-imapd)");
    let server = Dovecot {
        child,
        pop3,
        imap,
        dir,
    };
    for port in [pop3, imap] {
        wait_until(30, "dovecot listens", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }
    server
}

/// A one-message-at-a-time SMTP sink on `addr`:25; every session's lines go to the channel.
fn smtp_sink(ip: &str) -> std::sync::mpsc::Receiver<String> {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind((ip, 25))
        .unwrap_or_else(|e| panic!("cannot bind {ip}:25 (root on a loopback /8): {e}"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let mut out = conn.try_clone().unwrap();
            let mut read = BufReader::new(conn);
            let _ = out.write_all(b"220 sink ESMTP\r\n");
            let (mut session, mut in_data) = (String::new(), false);
            loop {
                let mut line = String::new();
                if read.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                session.push_str(&line);
                let line = line.trim_end();
                let reply: &[u8] = match (in_data, line) {
                    (true, ".") => {
                        in_data = false;
                        b"250 queued\r\n"
                    }
                    (true, _) => continue,
                    (false, "DATA") => {
                        in_data = true;
                        b"354 go ahead\r\n"
                    }
                    (false, "QUIT") => b"221 bye\r\n",
                    _ => b"250 ok\r\n",
                };
                let _ = out.write_all(reply);
            }
            let _ = tx.send(session);
        }
    });
    rx
}

#[test]
fn no_secret_in_any_output() {
    const SECRETS: [&str; 5] = [
        "PopPw-5ecret",
        "ImapPw-5ecret",
        "RadPw-5ecret",
        "RadSh-5ecret",
        "BrokenPw-5ecret",
    ];
    let w = World::new();
    // POP logs in first (its real comes up), then fails with the same credentials once
    // the password changes (a down transition, so an alert e-mail); IMAP never logs in.
    let mail = dovecot(SECRETS[0]);
    let mails = smtp_sink("127.0.0.79");
    let metrics = support::free_port();
    let closed_udp = support::free_port();
    let monitor = w.path("monitor.log");
    let m = format!("\tmonitorfile=\"{}\"\n", monitor.display());
    let body = format!(
        "checkinterval=1\nchecktimeout=3\nemailalert=\"ops@example.com\"\nsmtp=127.0.0.79\n\
         metrics=127.0.0.1:{metrics}\n\
         virtual=127.0.0.100:110\n\treal=127.0.0.1:{pop3} masq\n\tservice=pop\n\
         \tlogin=\"alice\"\n\tpasswd=\"{}\"\n{m}\
         virtual=127.0.0.100:143\n\treal=127.0.0.1:{imap} masq\n\tservice=imap\n\
         \tlogin=\"alice\"\n\tpasswd=\"{}\"\n{m}\
         virtual=127.0.0.100:1812\n\tprotocol=udp\n\treal=127.0.0.1:{closed_udp} masq\n\
         \tservice=radius\n\tlogin=\"alice\"\n\tpasswd=\"{}\"\n\tsecret=\"{}\"\n{m}",
        SECRETS[0],
        SECRETS[1],
        SECRETS[2],
        SECRETS[3],
        pop3 = mail.pop3,
        imap = mail.imap,
    );
    let cfg = w.config("secret.cf", &body);
    let c = cfg.to_str().unwrap();
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut run = |what: &str, args: &[&str]| {
        let out = w.ld(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push((what.to_owned(), text.clone()));
        text
    };
    // The file is readable by others: --test warns, naming the directive, not the value.
    let test = run("--test", &["--test", c]);
    assert!(test.contains("holds a secret (passwd= at line"), "{test}");
    let probe = run("--probe", &["--probe", c]);
    assert!(
        probe.contains("Authentication failed"),
        "the logins were refused: {probe}"
    );
    run("--probe --json", &["--probe", "--json", c]);
    w.start(c);
    wait_until(30, "the POP real up", || {
        w.reals("TCP 127.0.0.100:110") == sorted(vec![(format!("127.0.0.1:{}", mail.pop3), 1)])
    });
    mail.set_password("changed");
    // Every real fails its login now. IMAP and RADIUS were down from the start and log a
    // down line per check, so wait for the POP real's own down line (its identity names
    // `pop tcp 127.0.0.1 PORT`): only then has the "Deleted" alert been sent.
    let pop_down = format!("pop tcp 127.0.0.1 {} ", mail.pop3);
    wait_until(60, "the POP real's down line in the monitorfile", || {
        std::fs::read_to_string(&monitor)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains(&pop_down) && l.contains("[down]"))
    });
    // The alerts: the POP real's "Added" came long ago; wait up to 30 s for its "Deleted",
    // then take whatever else arrives.
    let mut sessions = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !sessions
        .iter()
        .any(|s: &String| s.contains("Deleted real server"))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match mails.recv_timeout(left) {
            Ok(s) => sessions.push(s),
            Err(_) => break,
        }
    }
    while let Ok(s) = mails.recv_timeout(std::time::Duration::from_secs(2)) {
        sessions.push(s);
    }
    assert!(
        sessions.iter().any(|s| s.contains("Deleted real server")),
        "{sessions:?}"
    );
    // A refused login's reason in the status (on a loaded machine a check may time out
    // first: the next one gets the server's answer).
    let mut json = String::new();
    wait_until(60, "a refused login's reason in the status", || {
        json = run("status --json", &[c, "status", "--json"]);
        json.contains("Authentication failed")
    });
    run("status --verbose", &[c, "status", "--verbose"]);
    let scrape = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", metrics)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    assert!(scrape.contains("ldirectord_"), "{scrape}");
    // A reload of a file whose passwd= line is broken: stock's message quotes the line.
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{good}\tpasswd={}\n", SECRETS[4])).unwrap();
    run("--test (broken)", &["--test", c]);
    run(
        "--test --error-format stock (broken)",
        &["--error-format", "stock", "--test", c],
    );
    let pid = w.pid("secret.cf").unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    wait_until(30, "the broken reload logged", || {
        w.log().contains("Unknown command \"\tpasswd=***")
    });
    std::fs::write(&cfg, good).unwrap();
    assert_eq!(w.ld(&[c, "stop"]).status.code(), Some(0));
    outputs.push(("metrics".into(), scrape));
    outputs.push(("log".into(), w.log()));
    outputs.push((
        "monitorfile".into(),
        std::fs::read_to_string(&monitor).unwrap(),
    ));
    for (i, s) in sessions.into_iter().enumerate() {
        outputs.push((format!("e-mail {i}"), s));
    }
    for (what, text) in &outputs {
        for secret in SECRETS {
            assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
        }
    }
    assert!(outputs.len() >= 12, "{} outputs read", outputs.len());
}
