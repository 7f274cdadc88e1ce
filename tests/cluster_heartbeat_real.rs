//! heartbeat v1 for real (cluster-integration §3.5, §5.2): Debian's heartbeat 3.0.6 in
//! `haresources` mode on two nodes, each in its own namespaces (see
//! `fixtures/cluster/heartbeat/sandbox.rs`), talking ucast over a veth pair that exists only
//! between the two network namespaces. Each node has its own `/etc/ha.d`, made new: the package files
//! heartbeat runs plus `ha.cf`, `authkeys`, `haresources`, `ldirectord.cf`, and
//! `resource.d/ldirectord`, the binary wrapped to use the ipvsadm stand-in (this kernel has
//! no IPVS) and a pid directory of the test, and to record each call and its exit code.
//!
//! The group is `nodea IPaddr2::10.250.1.100/24/hb0 ldirectord::ldirectord.cf`, as an
//! operator writes it: heartbeat calls `ldirectord ldirectord.cf status|start|stop`, and
//! the binary finds `/etc/ha.d/ldirectord.cf` itself.

#[path = "fixtures/cluster/support.rs"]
mod cluster;
#[path = "fixtures/cluster/lan.rs"]
mod lan;
#[path = "fixtures/cluster/heartbeat/sandbox.rs"]
mod sandbox;
#[path = "fixtures/daemon/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cluster::{need, repo};
use lan::Lan;
use sandbox::{
    Sandbox, install_standin, new_file, open_tempdir, run_host, script, standin_table, tail,
};
use support::BIN;

const HEARTBEAT: &str = "/usr/libexec/heartbeat/heartbeat";
const VIP: &str = "10.250.1.100";
const SERVICE: &str = "TCP 10.250.1.100:80";
/// The group as the docs write it: the VIP (the group's key), then the director.
const HARESOURCES: &str = "nodea IPaddr2::10.250.1.100/24/hb0 ldirectord::ldirectord.cf\n";
const GOOD_CF: &str = "virtual=10.250.1.100:80\n\tchecktype=on\n\treal=10.250.1.11:80 gate 1\n";

/// Every bounded wait for heartbeat: initdead is 10 s, the failover ~1 s, and HB5's
/// standby comes 30 s after the stop retries; these leave room for a loaded CI machine.
const WAIT: u64 = 90;

fn tools() {
    need(HEARTBEAT, "heartbeat");
    need("cl_status", "heartbeat");
    need("unshare", "util-linux");
    need("nsenter", "util-linux");
    need("ip", "iproute2");
    need("python3", "python3");
    need("pkill", "procps");
    assert!(
        Path::new("/usr/lib/ocf/resource.d/heartbeat/IPaddr2").exists(),
        "IPaddr2 is missing: apt-get install -y resource-agents"
    );
}

/// How a node's `ldirectord` reaches its table.
#[derive(Clone, Copy)]
enum Engine {
    /// The recording ipvsadm stand-in in the node's directory, pid files there too.
    Standin,
    /// The userspace engine: the director listens on the VIP and relays to the real
    /// servers; pid files in the node's private `/run`, which a node's death clears.
    Userspace,
}

impl Engine {
    /// The options every `ldirectord` call on the node in `dir` carries.
    fn flags(self, dir: &Path) -> Vec<String> {
        let d = dir.display();
        match self {
            Engine::Standin => vec![
                "--engine".into(),
                "ipvsadm".into(),
                "--ipvsadm".into(),
                format!("{d}/ipvsadm"),
                "--run-dir".into(),
                format!("{d}/run"),
            ],
            Engine::Userspace => vec!["--engine".into(), "userspace".into()],
        }
    }
}

struct Node {
    name: &'static str,
    dir: PathBuf,
    /// `None` once the node was killed.
    ns: Option<Sandbox>,
    flags: Vec<String>,
}

impl Node {
    /// A node's files, all new in its own directory: a private `/etc/ha.d` holding only the
    /// package files heartbeat runs ([`HA_D_FILES`]) plus the test's, and an empty
    /// `/var/lib/heartbeat` (its own UUID is made at first start). Nothing is copied from
    /// the host as a tree: with Debian's `ldirectord` installed, the host's
    /// `resource.d/ldirectord` is a symlink to `/usr/sbin/ldirectord`, and writing the
    /// wrapper through a copy of it would overwrite the host's binary (and give both nodes
    /// one wrapper).
    fn prepare(dir: &Path, cf: &str, engine: Engine) {
        std::fs::create_dir_all(dir.join("run")).unwrap();
        for sub in ["rc.d", "resource.d"] {
            std::fs::create_dir_all(dir.join("ha.d").join(sub)).unwrap();
        }
        for file in HA_D_FILES {
            let from = Path::new("/etc/ha.d").join(file);
            let text = std::fs::read(&from).unwrap_or_else(|e| {
                panic!("{}: {e} (apt-get install -y heartbeat)", from.display())
            });
            new_file(&dir.join("ha.d").join(file), text, 0o755);
        }
        heartbeat_state_dir(&dir.join("lib"));
        let ha = dir.join("ha.d");
        let d = dir.display();
        new_file(
            &ha.join("ha.cf"),
            format!(
                "logfile {d}/ha-log\ndebugfile {d}/ha-debug\nkeepalive 1\nwarntime 3\n\
                 deadtime 5\ninitdead 10\nudpport 694\nucast hb0 10.250.1.1\n\
                 ucast hb0 10.250.1.2\nauto_failback off\nrealtime off\n\
                 node nodea nodeb\ncrm off\n"
            ),
            0o644,
        );
        new_file(
            &ha.join("authkeys"),
            "auth 1\n1 sha1 ldirectord-rs-test\n",
            0o600,
        );
        new_file(&ha.join("haresources"), HARESOURCES, 0o644);
        new_file(
            &ha.join("ldirectord.cf"),
            format!("logfile=\"{d}/ld.log\"\n{cf}"),
            0o644,
        );
        install_standin(&dir.join("ipvsadm"), &dir.join("standin"));
        // What `ln -s /usr/sbin/ldirectord /etc/ha.d/resource.d/ldirectord` does, plus the
        // test's engine (and pid directory), and a record of each call: this node's own file.
        let flags: String = engine
            .flags(dir)
            .iter()
            .map(|f| format!(" '{f}'"))
            .collect();
        new_file(
            &ha.join("resource.d/ldirectord"),
            format!(
                "#!/bin/sh\n'{BIN}'{flags} \"$@\"\n\
                 rc=$?\necho \"$* $rc\" >> '{d}/calls'\nexit $rc\n"
            ),
            0o755,
        );
        script(
            &dir.join("refuse-reboot"),
            "#!/bin/sh\necho \"test node: refusing $0 $*\" >&2\nexit 1\n",
        );
    }

    /// The node's namespaces (again, after a kill), linked to the LAN as `hb0`.
    fn boot(&mut self, lan: &Lan, addr: &str) {
        let _ = std::fs::remove_file(self.dir.join("ready"));
        let ns = Sandbox::start(
            &repo("tests/fixtures/cluster/heartbeat/node.sh"),
            &self.dir,
            &[self.name],
        );
        lan.attach(self.name, &ns, "hb0", addr);
        self.ns = Some(ns);
    }

    fn ns(&self) -> &Sandbox {
        self.ns
            .as_ref()
            .unwrap_or_else(|| panic!("{} is not running", self.name))
    }

    fn heartbeat(&self, args: &[&str]) {
        let mut a = vec![HEARTBEAT];
        a.extend_from_slice(args);
        let r = self.ns().run(&a, 60);
        assert!(
            r.status.success(),
            "{} {args:?}: {r:?}\n{}",
            self.name,
            self.log()
        );
    }

    /// `ldirectord.cf ACTION RC` lines, one per call heartbeat made.
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn services(&self) -> Vec<String> {
        standin_table(&self.dir.join("standin"))
            .into_iter()
            .map(|(s, _)| s)
            .collect()
    }

    fn has_vip(&self) -> bool {
        let r = self
            .ns()
            .run_net(&["ip", "-o", "addr", "show", "dev", "hb0"], 30);
        r.stdout.contains(&format!("inet {VIP}/24"))
    }

    /// heartbeat's log, with `/etc/ha.d//resource.d` (as some lines spell it) normalised.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("ha-log"))
            .unwrap_or_default()
            .replace("ha.d//", "ha.d/")
    }

    fn rscstatus(&self) -> String {
        self.ns()
            .run(&["cl_status", "rscstatus"], 30)
            .stdout
            .trim()
            .to_owned()
    }

    /// What an operator sees on the node: `ldirectord ldirectord.cf ACTION` (the binary
    /// itself, so the call is not recorded as heartbeat's).
    fn resource(&self, action: &str) -> sandbox::Run {
        let mut args = vec![BIN];
        args.extend(self.flags.iter().map(String::as_str));
        args.extend(["ldirectord.cf", action]);
        self.ns().run(&args, 30)
    }

    fn explain(&self) -> String {
        format!(
            "--- {0} calls:\n{1}\n--- {0} table: {2:?}\n--- {0} ha-log (tail):\n{3}\n--- {0} ld.log (tail):\n{4}",
            self.name,
            self.calls().join("\n"),
            standin_table(&self.dir.join("standin")),
            tail(&self.dir.join("ha-log"), 60),
            tail(&self.dir.join("ld.log"), 10),
        )
    }
}

/// Two nodes on a LAN (`hb0`: 10.250.1.1 and .2; the test's clients and real servers at
/// [`LAN_ADDR`]), heartbeat not yet started.
struct Pair {
    a: Node,
    b: Node,
    lan: Lan,
    _dir: tempfile::TempDir,
}

const LAN_ADDR: &str = "10.250.1.254";

impl Pair {
    fn new(cf_a: &str, cf_b: &str) -> Pair {
        Pair::with(cf_a, cf_b, Engine::Standin)
    }

    fn with(cf_a: &str, cf_b: &str, engine: Engine) -> Pair {
        tools();
        let dir = open_tempdir();
        let lan_dir = dir.path().join("lan");
        std::fs::create_dir(&lan_dir).unwrap();
        let lan = Lan::start(&lan_dir, &format!("{LAN_ADDR}/24"));
        let node = |sub: &str, name, cf| {
            let d = dir.path().join(sub);
            Node::prepare(&d, cf, engine);
            let flags = engine.flags(&d);
            Node {
                name,
                dir: d,
                ns: None,
                flags,
            }
        };
        let mut a = node("a", "nodea", cf_a);
        let mut b = node("b", "nodeb", cf_b);
        a.boot(&lan, Pair::addr("nodea"));
        b.boot(&lan, Pair::addr("nodeb"));
        Pair {
            a,
            b,
            lan,
            _dir: dir,
        }
    }

    fn addr(name: &str) -> &'static str {
        if name == "nodea" {
            "10.250.1.1/24"
        } else {
            "10.250.1.2/24"
        }
    }

    fn node_mut(&mut self, name: &str) -> &mut Node {
        if name == "nodea" {
            &mut self.a
        } else {
            &mut self.b
        }
    }

    /// The node's death: SIGKILL to its PID 1 kills heartbeat, the director and all of
    /// the node at once; its VIP and LAN link go with its network namespace.
    fn kill(&mut self, name: &str) -> Instant {
        let ns = self.node_mut(name).ns.take().expect("a running node");
        let at = Instant::now();
        ns.kill();
        at
    }

    /// A killed node back, heartbeat started (it rejoins; `auto_failback off` leaves the
    /// group where it is).
    fn restart(&mut self, name: &str) {
        let node = if name == "nodea" {
            &mut self.a
        } else {
            &mut self.b
        };
        node.boot(&self.lan, Pair::addr(name));
        node.heartbeat(&[]);
    }

    fn explain(&self) -> String {
        format!("{}\n{}", self.a.explain(), self.b.explain())
    }

    fn wait(&self, what: &str, cond: impl FnMut() -> bool) {
        sandbox::wait_for(WAIT, what, cond, || self.explain());
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.explain());
        }
    }
}

/// The files of Debian's heartbeat package that `haresources` mode runs: `harc` and its
/// `rc.d` scripts, `shellfuncs`, and the `IPaddr2` resource script with its helper.
const HA_D_FILES: &[&str] = &[
    "harc",
    "shellfuncs",
    "rc.d/ask_resources",
    "rc.d/hb_takeover",
    "rc.d/ip-request",
    "rc.d/ip-request-resp",
    "rc.d/status",
    "resource.d/IPaddr2",
    "resource.d/hto-mapfuncs",
];

/// An empty `/var/lib/heartbeat` laid out as the package ships it (owners and modes too).
fn heartbeat_state_dir(lib: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for (sub, owner, mode) in [
        ("api", "root:root", 0o755),
        ("casual", "root:root", 0o755),
        ("ccm", "hacluster:haclient", 0o750),
        ("ckpt", "root:root", 0o755),
        ("cores", "root:root", 0o755),
        ("cores/hacluster", "hacluster:root", 0o700),
        ("cores/nobody", "nobody:root", 0o700),
        ("cores/root", "root:root", 0o700),
        ("crm", "hacluster:haclient", 0o750),
        ("lrm", "root:root", 0o755),
        ("pengine", "hacluster:haclient", 0o750),
    ] {
        let path = lib.join(sub);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let r = run_host(&["chown", owner, path.to_str().unwrap()], 30);
        assert!(
            r.status.success(),
            "chown {owner} {}: {r:?}",
            path.display()
        );
    }
}

/// `calls` begins with one or more `status`, then `start`.
fn starts_after_status(calls: &[String], status: &str, start: &str) -> bool {
    calls
        .iter()
        .position(|c| c == start)
        .is_some_and(|i| i > 0 && calls[..i].iter().all(|c| c == status))
}

fn line_index(log: &str, needle: &str) -> Option<usize> {
    log.lines().position(|l| l.contains(needle))
}

/// HB1: nodea alone acquires its group after initdead (nodeb declared dead): IPaddr2, then
/// `ldirectord ldirectord.cf status` (3: not owned) and `start` (0), and the table is
/// built. HB2: nodeb joins and takes nothing; there ldirectord is stopped. HB3: a graceful
/// `heartbeat -k` on nodea stops ldirectord before IPaddr2 and cleans the table; nodeb
/// then acquires the group (status 3, start 0). HB4: nodea back, nodeb's heartbeat killed:
/// after deadtime nodea declares it dead and acquires the group (status 3, start 0).
#[test]
fn hb1_to_hb4_acquire_graceful_and_hard_failover() {
    let p = Pair::new(GOOD_CF, GOOD_CF);
    let (a, b) = (&p.a, &p.b);

    // HB1
    a.heartbeat(&[]);
    p.wait("nodea to start ldirectord", || {
        a.calls()
            .iter()
            .any(|c| c.starts_with("ldirectord.cf start"))
    });
    p.wait("nodea's table", || a.services() == [SERVICE]);
    assert_eq!(
        a.calls(),
        ["ldirectord.cf status 3", "ldirectord.cf start 0"],
        "{}",
        p.explain()
    );
    assert!(
        a.has_vip(),
        "IPaddr2 started before ldirectord\n{}",
        p.explain()
    );
    let log = a.log();
    assert!(log.contains("Resources being acquired from nodeb"), "{log}");
    assert!(
        log.contains(
            "Acquiring resource group: nodea IPaddr2::10.250.1.100/24/hb0 ldirectord::ldirectord.cf"
        ),
        "{log}"
    );
    let ip_start = line_index(&log, "resource.d/IPaddr2 10.250.1.100/24/hb0 start");
    let ld_start = line_index(&log, "resource.d/ldirectord ldirectord.cf start");
    assert!(
        ip_start.is_some() && ip_start < ld_start,
        "start order\n{log}"
    );
    let status = a.resource("status");
    assert_eq!(status.code(), Some(0), "{status:?}");

    // HB2
    b.heartbeat(&[]);
    p.wait("both nodes to settle (rscstatus all / none)", || {
        a.rscstatus() == "all" && b.rscstatus() == "none"
    });
    let status = b.resource("status");
    assert_eq!(status.code(), Some(3), "{status:?}");
    assert!(b.calls().is_empty(), "nodeb ran the group\n{}", p.explain());
    assert!(b.services().is_empty(), "nodeb's table\n{}", p.explain());

    // HB3
    let before = a.calls().len();
    a.heartbeat(&["-k"]);
    p.wait("nodeb to start ldirectord", || {
        b.calls()
            .iter()
            .any(|c| c.starts_with("ldirectord.cf start"))
    });
    p.wait("nodeb's table", || b.services() == [SERVICE]);
    assert_eq!(
        a.calls()[before..],
        ["ldirectord.cf stop 0"],
        "{}",
        p.explain()
    );
    assert!(
        a.services().is_empty(),
        "cleanstop on nodea\n{}",
        p.explain()
    );
    assert!(!a.has_vip(), "nodea released the VIP\n{}", p.explain());
    let log = a.log();
    let ld_stop = line_index(&log, "resource.d/ldirectord ldirectord.cf stop");
    let ip_stop = line_index(&log, "resource.d/IPaddr2 10.250.1.100/24/hb0 stop");
    assert!(
        ld_stop.is_some() && ld_stop < ip_stop,
        "stop order (reverse of start)\n{log}"
    );
    assert!(b.has_vip(), "nodeb holds the VIP\n{}", p.explain());
    // nodeb: status 3 then start 0; heartbeat may run a second takegroup, where status
    // again says "not owned" (the running line is on stderr) and start is a no-op.
    let calls = b.calls();
    assert_eq!(
        calls[..2],
        ["ldirectord.cf status 3", "ldirectord.cf start 0"],
        "{}",
        p.explain()
    );
    assert!(
        calls[2..]
            .iter()
            .all(|c| c == "ldirectord.cf status 0" || c == "ldirectord.cf start 0"),
        "{}",
        p.explain()
    );
    let status = b.resource("status");
    assert_eq!(status.code(), Some(0), "one daemon on nodeb: {status:?}");

    // HB4: nodea back, then nodeb's heartbeat killed (its namespace's processes only).
    a.heartbeat(&[]);
    p.wait("nodea to rejoin (rscstatus none / all)", || {
        a.rscstatus() == "none" && b.rscstatus() == "all"
    });
    let before = a.calls().len();
    b.ns().ok(&["pkill", "-9", "-x", "heartbeat"]);
    p.wait("nodea to declare nodeb dead and start ldirectord", || {
        a.log().contains("node nodeb: is dead")
            && a.calls()[before..].contains(&"ldirectord.cf start 0".to_owned())
    });
    assert!(
        starts_after_status(
            &a.calls()[before..],
            "ldirectord.cf status 3",
            "ldirectord.cf start 0"
        ),
        "{}",
        p.explain()
    );
    p.wait("nodea's table and VIP", || {
        a.services() == [SERVICE] && a.has_vip()
    });
}

/// HB5's first half, whatever the group: ldirectord's start fails on nodea (a syntax error
/// in its ldirectord.cf: exit 2). heartbeat logs the return code and gives the whole group
/// up in reverse order; ldirectord's stop exits 2 too (stock's behaviour for a broken
/// file), is retried, and since status says "not owned" heartbeat only warns, never
/// reboots.
fn start_fails_on_nodea(p: &Pair) {
    let (a, b) = (&p.a, &p.b);
    a.heartbeat(&[]);
    p.wait("nodea to give the group up", || {
        a.log()
            .contains("CRIT: Giving up resources due to failure of ldirectord::ldirectord.cf")
    });
    // nodeb comes up while nodea's stop retries run, in time for the standby.
    b.heartbeat(&[]);
    p.wait("nodea to finish releasing the group (VIP removed)", || {
        a.log().contains("WARN: Machine reboot narrowly avoided!")
            && a.log()
                .contains("resource.d/IPaddr2 10.250.1.100/24/hb0 stop")
            && !a.has_vip()
    });
    let log = a.log();
    assert!(
        log.contains("ERROR: Return code 2 from /etc/ha.d/resource.d/ldirectord"),
        "{log}"
    );
    assert!(!log.contains("Resource STOP failure"), "{log}");
    // status (not owned; more than once when ldirectord is the group's key, which
    // heartbeat also checks on its own), start, then the stop and its retries.
    let calls = a.calls();
    assert!(
        starts_after_status(&calls, "ldirectord.cf status 2", "ldirectord.cf start 2"),
        "{}",
        p.explain()
    );
    let start = calls
        .iter()
        .position(|c| c == "ldirectord.cf start 2")
        .unwrap();
    assert_eq!(calls[start + 1], "ldirectord.cf stop 2", "{}", p.explain());
    assert!(
        calls[start + 1..]
            .iter()
            .all(|c| c == "ldirectord.cf stop 2" || c == "ldirectord.cf status 2"),
        "{}",
        p.explain()
    );
    assert!(
        a.services().is_empty(),
        "nodea programmed IPVS\n{}",
        p.explain()
    );
}

/// HB5: the group is given up (see [`start_fails_on_nodea`]) with ldirectord's stop before
/// IPaddr2's. 30 s later ResourceManager runs `hb_standby`, but for the *failed* resource
/// rather than the group: `StandbyGroupType` compares it with `OurGroupKeys`, which prints
/// whole haresources lines, so it never matches and the standby is always `foreign`; nodeb
/// takes nothing and the group stays down. The operator's `hb_standby all` on nodea
/// then hands it to nodeb, which starts it (status 3, start 0). (compat/heartbeat/README.md)
#[test]
fn hb5_a_start_failure_gives_the_group_up() {
    let p = Pair::new(&format!("{GOOD_CF}\tnonsense=1\n"), GOOD_CF);
    let (a, b) = (&p.a, &p.b);
    start_fails_on_nodea(&p);
    let log = a.log();
    let ld_stop = line_index(&log, "resource.d/ldirectord ldirectord.cf stop");
    let ip_stop = line_index(&log, "resource.d/IPaddr2 10.250.1.100/24/hb0 stop");
    assert!(ld_stop.is_some() && ld_stop < ip_stop, "stop order\n{log}");
    p.wait("nodea's standby to complete", || {
        a.log()
            .contains("Other node completed standby takeover of foreign resources")
    });
    assert!(
        a.log().contains("Going standby [foreign]"),
        "{}",
        p.explain()
    );
    assert!(b.calls().is_empty(), "nodeb ran the group\n{}", p.explain());
    assert!(b.services().is_empty(), "{}", p.explain());
    assert!(!b.has_vip() && !a.has_vip(), "{}", p.explain());

    a.ns().ok(&["/usr/share/heartbeat/hb_standby", "all"]);
    p.wait("nodeb to take the group over", || {
        b.calls().iter().any(|c| c == "ldirectord.cf start 0") && b.services() == [SERVICE]
    });
    assert!(
        starts_after_status(
            &b.calls(),
            "ldirectord.cf status 3",
            "ldirectord.cf start 0"
        ),
        "{}",
        p.explain()
    );
    p.wait("nodeb's VIP", || b.has_vip());
}

/// What the LAN's real server answers.
const PAGE: &str = "served by the real server\n";

/// HB4 as a node's death, with traffic, timed: both nodes run the director with the
/// userspace engine (this kernel has no IPVS), serving the VIP with a real server on the
/// LAN. The node holding the group dies whole (SIGKILL to its PID 1: heartbeat, the
/// director, its VIP); after deadtime (5 s) the survivor declares it dead, takes the group
/// (status 3, start 0) and the VIP answers a LAN client again. `LDRS_HB_FAILOVERS` runs
/// (default 2; the dead node is restarted and rejoins in between), each printed with the
/// time from the death to the survivor's `start` exiting 0 and to the first answer.
///
/// Not here: IPVS connection synchronisation (no IPVS in this kernel, and the userspace
/// engine relays as a proxy, so no connection could outlive its director anyway); the VM
/// suite covers it.
#[test]
fn hb4_a_node_dies_the_group_moves_timed() {
    let cf = format!("virtual={VIP}:80\n\treal={LAN_ADDR}:8080 masq\n\tchecktype=connect\n");
    let mut p = Pair::with(&cf, &cf, Engine::Userspace);
    p.lan.web_server(LAN_ADDR, 8080, PAGE);
    p.a.heartbeat(&[]);
    p.b.heartbeat(&[]);
    // Started together, each node holds its "local" group: nodea the one haresources
    // gives it, nodeb nothing.
    p.wait("nodea to start the group, both nodes settled", || {
        p.a.calls().iter().any(|c| c == "ldirectord.cf start 0")
            && p.a.has_vip()
            && [&p.a, &p.b].iter().all(|n| n.rscstatus() == "local")
    });
    p.wait("the VIP to answer", || {
        p.lan.get(VIP).as_deref() == Some(PAGE)
    });

    let runs: usize = std::env::var("LDRS_HB_FAILOVERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let (mut to_start, mut to_answer) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let (dead, survivor) = if p.a.ns.is_some() && p.a.has_vip() {
            ("nodea", "nodeb")
        } else {
            ("nodeb", "nodea")
        };
        let node = |p: &Pair, name: &str| -> Vec<String> {
            if name == "nodea" {
                p.a.calls()
            } else {
                p.b.calls()
            }
        };
        let before = node(&p, survivor).len();
        let at = p.kill(dead);
        let deadline = at + Duration::from_secs(WAIT);
        let started = loop {
            let calls = node(&p, survivor);
            if calls[before..].iter().any(|c| c == "ldirectord.cf start 0") {
                break at.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "{survivor} did not start ldirectord within {WAIT} s\n{}",
                p.explain()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        while p.lan.get_within(VIP, 0.5).as_deref() != Some(PAGE) {
            assert!(
                Instant::now() < deadline,
                "the VIP did not answer through {survivor}\n{}",
                p.explain()
            );
        }
        let answered = at.elapsed();
        let calls = node(&p, survivor);
        assert!(
            starts_after_status(
                &calls[before..],
                "ldirectord.cf status 3",
                "ldirectord.cf start 0"
            ),
            "{}",
            p.explain()
        );
        eprintln!(
            "HB4 run {}: {dead} killed; {survivor}'s start exited 0 after {:.2} s, the VIP \
             answered after {:.2} s",
            run + 1,
            started.as_secs_f64(),
            answered.as_secs_f64()
        );
        to_start.push(started);
        to_answer.push(answered);
        if run + 1 < runs {
            p.restart(dead);
            p.wait("the dead node to rejoin without the group", || {
                let (d, s) = if dead == "nodea" {
                    (&p.a, &p.b)
                } else {
                    (&p.b, &p.a)
                };
                d.rscstatus() == "none" && s.rscstatus() == "all"
            });
        }
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64()
    };
    eprintln!(
        "HB4 (deadtime 5 s), median of {runs}: start 0 after {:.2} s, VIP answers after {:.2} s",
        median(to_start),
        median(to_answer)
    );
}
