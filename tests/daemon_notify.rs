//! systemd's notify protocol against a real notify socket: the test binds a Unix datagram
//! socket, points `NOTIFY_SOCKET` at it and reads what the daemon sends. Detached
//! (`start`, as under `Type=notify` + `NotifyAccess=all`): `MAINPID=` with `READY=1`
//! before `start` returns, `STATUS=`, `WATCHDOG=1` every half `WATCHDOG_USEC` (though
//! systemd's `WATCHDOG_PID` names `start`, which the daemon replaces as main process),
//! `RELOADING=1` then `READY=1` around a reload, `STOPPING=1`, and children that never see
//! the socket. In the foreground: no `MAINPID=`, and no watchdog meant for another pid.

#[path = "fixtures/daemon/support.rs"]
mod support;

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{Backend, Mode, World, wait_until};

/// Every datagram the daemon sent, in order, read on a thread until the socket goes.
struct NotifySocket {
    messages: Arc<Mutex<Vec<String>>>,
}

impl NotifySocket {
    fn bind(path: &Path) -> NotifySocket {
        let sock = UnixDatagram::bind(path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let m = Arc::downgrade(&messages);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let got = sock.recv(&mut buf);
                let Some(m) = m.upgrade() else { return };
                if let Ok(n) = got {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    m.lock().unwrap().push(text);
                }
            }
        });
        NotifySocket { messages }
    }

    fn all(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    fn count(&self, message: &str) -> usize {
        self.all().iter().filter(|m| *m == message).count()
    }
}

fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
}

#[test]
fn a_detached_daemon_tells_systemd_its_pid_state_and_liveness() {
    let w = World::new();
    let sock = NotifySocket::bind(&w.path("notify"));
    let backend = Backend::start("127.0.0.1", Mode::Healthy);
    let dead = SocketAddr::from(([127, 0, 0, 1], support::free_port()));
    let env_dump = w.path("fallback-env");
    let fb = w.script(
        "fb",
        &format!("#!/bin/sh\nenv > '{}'\n", env_dump.display()),
    );
    let body = format!(
        "checkinterval=1\nchecktimeout=1\n\
         virtual=127.0.0.100:80\n\tservice=http\n\trequest=\"/\"\n\treceive=\"OK\"\n\treal={} masq 1\n\n\
         virtual=127.0.0.101:80\n\tfallbackcommand={}\n\treal={dead} masq 1\n",
        backend.addr,
        fb.display()
    );
    let cfg = w.config("n.cf", &body);
    // As systemd starts it: WATCHDOG_PID is the pid of the process it started (the shell
    // execs, keeping its pid), which is `start`, not the daemon it detaches.
    let start = w.command(&[cfg.to_str().unwrap(), "start"]);
    let out = Command::new("/bin/sh")
        .args(["-c", "export WATCHDOG_PID=$$; exec \"$@\"", "sh"])
        .arg(start.get_program())
        .args(start.get_args())
        .envs(start.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .current_dir(w.dir.path())
        .env("NOTIFY_SOCKET", w.path("notify"))
        .env("WATCHDOG_USEC", "600000")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = w.pid("n.cf").expect("pid file");
    // Sent before start returned (the datagram was queued; the reader may lag a little).
    wait_until(5, "MAINPID and READY", || sock.all().len() >= 2);
    assert_eq!(
        sock.all()[..2],
        [
            "STATUS=2 virtual services, 0/2 real servers up\n".to_owned(),
            format!("MAINPID={pid}\nREADY=1\n")
        ]
    );
    wait_until(30, "STATUS with the checks' verdicts", || {
        sock.count("STATUS=2 virtual services, 1/2 real servers up\n") == 1
    });
    wait_until(10, "watchdog pings every 0.3 s", || {
        sock.count("WATCHDOG=1\n") >= 4
    });

    // The fallback command ran (the dead real's virtual) without the notify protocol.
    wait_until(30, "fallbackcommand ran", || env_dump.exists());
    wait_until(5, "fallbackcommand env written", || {
        std::fs::read_to_string(&env_dump).is_ok_and(|t| t.contains("PATH="))
    });
    let env = std::fs::read_to_string(&env_dump).unwrap();
    assert!(
        !env.contains("NOTIFY_SOCKET") && !env.contains("WATCHDOG_"),
        "{env}"
    );

    signal(pid, nix::sys::signal::Signal::SIGHUP);
    wait_until(30, "RELOADING then READY", || {
        let all = sock.all();
        let reloading = all
            .iter()
            .position(|m| m.starts_with("RELOADING=1\nMONOTONIC_USEC=") && m.ends_with('\n'));
        reloading.is_some_and(|i| {
            all[i + 1..]
                .iter()
                .any(|m| *m == format!("MAINPID={pid}\nREADY=1\n"))
        })
    });
    assert_eq!(
        w.ld(&[cfg.to_str().unwrap(), "stop"]).status.code(),
        Some(0)
    );
    wait_until(5, "STOPPING", || sock.count("STOPPING=1\n") == 1);
}

#[test]
fn in_the_foreground_no_mainpid_and_no_watchdog_meant_for_another_process() {
    let w = World::new();
    let sock = NotifySocket::bind(&w.path("notify"));
    let cfg = w.config("f.cf", "checkinterval=1\n");
    let mut child = w
        .command(&["-d", cfg.to_str().unwrap(), "start"])
        .env("NOTIFY_SOCKET", w.path("notify"))
        .env("WATCHDOG_USEC", "200000")
        .env("WATCHDOG_PID", "1")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    wait_until(30, "READY", || sock.count("READY=1\n") == 1);
    assert_eq!(
        sock.all(),
        [
            "STATUS=0 virtual services, 0/0 real servers up\n",
            "READY=1\n"
        ]
    );
    // Ten watchdog periods: not one ping, WATCHDOG_PID names another process.
    std::thread::sleep(Duration::from_secs(2));
    signal(pid, nix::sys::signal::Signal::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    wait_until(5, "STOPPING", || sock.count("STOPPING=1\n") == 1);
    assert_eq!(sock.count("WATCHDOG=1\n"), 0, "{:?}", sock.all());
}
