//! PostgreSQL read balancing on a real three-node Pacemaker cluster, the lvsdr setup of
//! cluster-integration §1.1 (issue 12), on the harness of `fixtures/cluster/pacemaker/`:
//!
//! ```text
//!   LAN (the clients: psql) 10.250.2.254
//!     ├─ node1 10.250.2.1 ┐ PostgreSQL 15 each, one promotable clone `pgsql`
//!     ├─ node2 10.250.2.2 ├ (ocf:heartbeat:pgsql, rep_mode=async, master_ip = writer VIP)
//!     └─ node3 10.250.2.3 ┘
//!   writer VIP 10.250.2.101 (IPaddr2) with the Promoted instance, after its promotion;
//!   group `reader`: reader VIP 10.250.2.102 (IPaddr2) then `lb` (ldirectord-rs, the
//!   userspace engine: this kernel has no IPVS), with an Unpromoted instance.
//! ```
//!
//! The director's pool is the standbys that stream: nodes running `pgsql` whose
//! `pgsql-status` (written by the pgsql agent itself) is `HS:sync|HS:potential|HS:async`,
//! or, when none streams (every standby `HS:alone` while a primary is elected), the hot
//! standbys (`realfallback=`); in the configfile form each is checked with
//! `pgsqlrole=standby` (and `pgsqlmaxlag=5s` for the lag scenario). Reads are real `psql` sessions from the LAN to
//! the reader VIP, relayed by the director; each asks the server it reached
//! `pg_is_in_recovery()` and `inet_server_addr()`.
//!
//! PostgreSQL: one `initdb` on the host (a template, cleanly shut down, so every node's
//! copy is a valid base backup of the same cluster), copied into each node's private
//! `/run` (a tmpfs of the node: gone with it). Every server listens on its node's address,
//! loopback and the writer VIP (`ip_nonlocal_bind` in the node's network namespace), so
//! the director alone owns the reader VIP's port 5432 on its node. Trust authentication:
//! nothing outside the test's namespaces can reach these servers.
//!
//! Figures (printed): reads during steady state (all on standbys); for a primary's failure
//! (its node, or its PostgreSQL): the promotion, the reads that failed or reached the
//! promoted node and until when, when every read reaches the remaining standby; a standby
//! refused or lagging: when it leaves and comes back; `crm_resource` failing or slow: reads,
//! warnings, the longest gap between two checks; the director's node: when reads are served
//! again and what the new instance added or removed. One cluster per test: about 4 min for
//! the configfile form, 2.5 min for the inline form.

#[path = "fixtures/cluster/support.rs"]
mod cluster;
#[path = "fixtures/cluster/lan.rs"]
mod lan;
#[path = "fixtures/cluster/pacemaker/cluster.rs"]
mod pcmk;
#[path = "fixtures/cluster/heartbeat/sandbox.rs"]
mod sandbox;
#[path = "fixtures/daemon/support.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pcmk::{BIN, Cluster, Node, install_heartbeat_agent, nv};
use sandbox::run_host;

const WRITER_VIP: &str = "10.250.2.101";
const READER_VIP: &str = "10.250.2.102";
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// Each node's PostgreSQL files, in its private `/run`.
const PG_RUN: &str = "/run/pgsql";
const REGEX: &str = "HS:sync|HS:potential|HS:async";
/// The pool while no standby streams (`realfallback=`): the hot standbys, `HS:alone` while
/// a primary is elected.
const FALLBACK: &str = "HS:alone";
/// Where the agent writes the daemon's configuration (`HA_RSCTMP`/ldirectord-rs/INSTANCE.cf).
const GENERATED: &str = "/run/resource-agents/ldirectord-rs/lb.cf";

/// One cluster at a time (three nodes and three PostgreSQL servers are enough load).
static ONE_CLUSTER: Mutex<()> = Mutex::new(());

fn attrs(id: &str, pairs: &[(&str, &str)]) -> String {
    let inner: String = pairs.iter().map(|(k, v)| nv(id, k, v)).collect();
    format!("<instance_attributes id=\"{id}-ia\">{inner}</instance_attributes>")
}

/// The PostgreSQL template: `initdb` as postgres, the settings streaming replication and
/// the agent need, shut down cleanly (never started, so there is nothing to recover).
fn template(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("pgtemplate");
    std::fs::create_dir(&data).unwrap();
    let chown = run_host(&["chown", "postgres:postgres", data.to_str().unwrap()], 30);
    assert!(chown.status.success(), "chown the template: {chown:?}");
    let r = run_host(
        &[
            "runuser",
            "-u",
            "postgres",
            "--",
            &format!("{PG_BIN}/initdb"),
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ],
        120,
    );
    assert!(r.status.success(), "initdb: {r:?}");
    let conf = format!(
        "listen_addresses = '127.0.0.1,{WRITER_VIP},%NODE%'\n\
         cluster_name = '%NAME%'\n\
         port = 5432\n\
         unix_socket_directories = '{PG_RUN}'\n\
         wal_level = replica\n\
         max_wal_senders = 10\n\
         wal_keep_size = 256MB\n\
         hot_standby = on\n\
         wal_receiver_status_interval = 1s\n\
         fsync = off\n\
         synchronous_commit = off\n\
         shared_buffers = 16MB\n"
    );
    std::fs::write(data.join("ldrs-base.conf"), conf).unwrap();
    let hba = "local all all trust\n\
               host all all 127.0.0.1/32 trust\n\
               host all all 10.250.2.0/24 trust\n\
               host replication all 10.250.2.0/24 trust\n\
               host replication all 127.0.0.1/32 trust\n";
    std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
    data
}

/// Pacemaker 2.1.5's `crm_attribute` takes `-p -v -INFINITY` (what resource-agents 4.12's
/// `ocf_promotion_score` runs for "cannot promote") apart as `-I -N FINITY` and fails, so
/// the pgsql agent's start retries forever; `--update=-INFINITY` is the same request and
/// parses. Inside each node only (its own mount namespace), this wrapper over
/// `/usr/sbin/crm_attribute` passes every `-v VALUE` as `--update=VALUE` to the real one.
const CRM_ATTRIBUTE_FIX: &str = "#!/bin/sh
    # -v VALUE as --update=VALUE (Pacemaker 2.1.5 misreads -p -v -INFINITY)
    n=$#
value=
    for a in \"$@\"; do
    \tif [ -n \"$value\" ]; then set -- \"$@\" \"--update=$a\"; value=
    \telif [ \"$a\" = -v ]; then value=1
    \telse set -- \"$@\" \"$a\"; fi
    done
shift \"$n\"
exec /run/crm_attribute.real \"$@\"
";

/// Copy the template into `node`'s `/run/pgsql/data`, with its own listen address.
fn install_pg(node: &Node, template: &Path) {
    let fix = sandbox::script(&node.path("crm_attribute"), CRM_ATTRIBUTE_FIX);
    let data = format!("{PG_RUN}/data");
    let script = format!(
        "set -e\nsysctl -qw net.ipv4.ip_nonlocal_bind=1\n\
         touch /run/crm_attribute.real\n\
         mount --bind /usr/sbin/crm_attribute /run/crm_attribute.real\n\
         mount --bind '{fix}' /usr/sbin/crm_attribute\n\
         mkdir -p {PG_RUN}/tmp\ncp -a '{t}' {data}\n\
         sed -e 's/%NODE%/{addr}/' -e 's/%NAME%/{name}/' '{t}/ldrs-base.conf' >> {data}/postgresql.conf\n\
         chown -R postgres:postgres {PG_RUN}\nchmod 700 {data} {PG_RUN}/tmp\n",
        t = template.display(),
        addr = node.addr,
        name = node.name,
        fix = fix.display(),
    );
    node.ns().ok(&["sh", "-c", &script]);
}

/// The promotable clone of `ocf:heartbeat:pgsql`, async replication to the writer VIP.
fn pgsql_clone() -> String {
    let ia = attrs(
        "pgsql",
        &[
            ("pgctl", &format!("{PG_BIN}/pg_ctl")),
            ("psql", &format!("{PG_BIN}/psql")),
            ("pgdata", &format!("{PG_RUN}/data")),
            ("socketdir", PG_RUN),
            ("tmpdir", &format!("{PG_RUN}/tmp")),
            ("logfile", &format!("{PG_RUN}/postgres.log")),
            ("rep_mode", "async"),
            ("node_list", "node1 node2 node3"),
            ("master_ip", WRITER_VIP),
            (
                "primary_conninfo_opt",
                "connect_timeout=2 keepalives_idle=5",
            ),
            ("check_wal_receiver", "true"),
            ("stop_escalate", "5"),
        ],
    );
    let op = |name: &str, interval: &str, role: &str| {
        let role_attr = if role.is_empty() {
            String::new()
        } else {
            format!(" role=\"{role}\"")
        };
        format!(
            "<op id=\"pgsql-{name}-{interval}\" name=\"{name}\" interval=\"{interval}\" \
             timeout=\"60s\"{role_attr}/>"
        )
    };
    let meta: String = [
        ("promotable", "true"),
        ("promoted-max", "1"),
        ("promoted-node-max", "1"),
        ("clone-node-max", "1"),
        ("notify", "true"),
    ]
    .iter()
    .map(|(k, v)| nv("pgsql-clone", k, v))
    .collect();
    let ops: String = [
        ("start", "0s", ""),
        ("stop", "0s", ""),
        ("promote", "0s", ""),
        ("demote", "0s", ""),
        ("notify", "0s", ""),
        ("monitor", "3s", "Unpromoted"),
        ("monitor", "2s", "Promoted"),
    ]
    .iter()
    .map(|(name, interval, role)| op(name, interval, role))
    .collect();
    format!(
        "<clone id=\"pgsql-clone\"><meta_attributes id=\"pgsql-clone-meta\">{meta}\
         </meta_attributes>\
         <primitive id=\"pgsql\" class=\"ocf\" provider=\"heartbeat\" type=\"pgsql\">{ia}\
         <operations>{ops}</operations></primitive></clone>"
    )
}

fn ipaddr2(id: &str, ip: &str) -> String {
    format!(
        "<primitive id=\"{id}\" class=\"ocf\" provider=\"heartbeat\" type=\"IPaddr2\">{}\
         <operations><op id=\"{id}-monitor\" name=\"monitor\" interval=\"10s\" \
         timeout=\"20s\"/></operations></primitive>",
        attrs(id, &[("ip", ip), ("cidr_netmask", "24"), ("nic", "eth0")])
    )
}

/// How the director is configured: a `configfile=` with `realsource=` directives, or the
/// lvsdr-style parameters of the agent.
#[derive(Clone, Copy, Debug)]
enum Form {
    ConfigFile,
    Inline,
}

/// The director's `ldirectord.cf` (configfile form): the pool from the cluster, each
/// member checked as a standby; with `max_lag`, also a standby whose lag is known and
/// below 5 s.
fn director_cf(max_lag: bool) -> String {
    let lag = if max_lag { "\tpgsqlmaxlag=5s\n" } else { "" };
    format!(
        "checkinterval=1\nchecktimeout=3\nnegotiatetimeout=3\nquiescent=no\n\
         logfile=\"/run/ldirectord-rs.log\"\n\
         nodeaddress=node1 10.250.2.1\nnodeaddress=node2 10.250.2.2\n\
         nodeaddress=node3 10.250.2.3\n\
         virtual={READER_VIP}:5432\n\
         \tprotocol=tcp\n\tscheduler=rr\n\
         \trealsource=resource pgsql-clone\n\
         \trealfilter=attribute pgsql-status {REGEX}\n\
         \trealfallback=attribute pgsql-status {FALLBACK}\n\
         \tservice=pgsql\n\tchecktype=negotiate\n\
         \tlogin=\"postgres\"\n\tdatabase=\"postgres\"\n\
         \tpgsqlrole=standby\n{lag}"
    )
}

fn director(c: &Cluster, form: Form) -> String {
    let ia = match form {
        Form::ConfigFile => attrs(
            "lb",
            &[
                ("configfile", c.path("lb.cf").to_str().unwrap()),
                ("engine", "userspace"),
                ("ldirectord", BIN),
            ],
        ),
        Form::Inline => attrs(
            "lb",
            &[
                ("vip", READER_VIP),
                ("port", "5432"),
                ("virtual_service_options", "-s rr"),
                ("realserver_dependent_resource", "pgsql-clone"),
                ("realserver_dependent_attribute_name", "pgsql-status"),
                ("realserver_dependent_attribute_value", REGEX),
                ("realserver_dependent_attribute_fallback_value", FALLBACK),
                (
                    "node_address_map",
                    "node1=10.250.2.1 node2=10.250.2.2 node3=10.250.2.3",
                ),
                ("engine", "userspace"),
                ("ldirectord", BIN),
            ],
        ),
    };
    format!(
        "<primitive id=\"lb\" class=\"ocf\" provider=\"ldirectord-rs\" type=\"ldirectord\">\
         {ia}<operations><op id=\"lb-monitor\" name=\"monitor\" interval=\"2s\" \
         timeout=\"20s\"/></operations></primitive>"
    )
}

/// The whole §1.1 setup on a fresh three-node cluster, returned once a primary is
/// promoted, both standbys stream and the director serves reads.
fn setup(form: Form) -> Cluster {
    let c = Cluster::start(3, |d| {
        install_heartbeat_agent(d, "IPaddr2");
        install_heartbeat_agent(d, "pgsql");
    });
    let t = template(&c.path(""));
    for n in &c.nodes {
        install_pg(n, &t);
    }
    std::fs::write(c.path("lb.cf"), director_cf(false)).unwrap();
    c.rsc_default("resource-stickiness", "100");
    c.create("resources", &pgsql_clone());
    c.create("resources", &ipaddr2("wvip", WRITER_VIP));
    c.create(
        "resources",
        &format!(
            "<group id=\"reader\">{}{}</group>",
            ipaddr2("rvip", READER_VIP),
            director(&c, form)
        ),
    );
    for xml in [
        "<rsc_colocation id=\"wvip-with-primary\" rsc=\"wvip\" with-rsc=\"pgsql-clone\" \
         with-rsc-role=\"Promoted\" score=\"INFINITY\"/>",
        "<rsc_order id=\"promote-then-wvip\" first=\"pgsql-clone\" first-action=\"promote\" \
         then=\"wvip\" then-action=\"start\" symmetrical=\"false\" score=\"INFINITY\"/>",
        "<rsc_order id=\"demote-then-stop-wvip\" first=\"pgsql-clone\" \
         first-action=\"demote\" then=\"wvip\" then-action=\"stop\" symmetrical=\"false\" \
         score=\"0\"/>",
        // influence=false: the reader group follows a standby and never steers which
        // node is promoted (with influence, its stickiness once made Pacemaker demote a
        // just promoted standby to keep the group where it was: that node's pgsql then
        // refused to start over PGSQL.lock).
        "<rsc_colocation id=\"reader-with-standby\" rsc=\"reader\" with-rsc=\"pgsql-clone\" \
         with-rsc-role=\"Unpromoted\" score=\"INFINITY\" influence=\"false\"/>",
        "<rsc_order id=\"pgsql-then-reader\" first=\"pgsql-clone\" then=\"reader\" \
         score=\"0\"/>",
    ] {
        c.create("constraints", xml);
    }
    wait(
        &c,
        "a primary, two streaming standbys, reads served",
        || {
            let s = statuses(&c);
            s.iter().filter(|(_, v)| v == "PRI").count() == 1
                && s.iter().filter(|(_, v)| v == "HS:async").count() == 2
                && read(&c).is_some_and(|r| r.standby)
        },
    );
    c
}

/// [`Cluster::wait`], explaining a timeout with PostgreSQL's and the agents' logs too.
fn wait(c: &Cluster, what: &str, cond: impl FnMut() -> bool) {
    sandbox::wait_for(pcmk::WAIT, what, cond, || {
        let mut out = c.explain();
        for n in c.live() {
            let log = n.log();
            let agents: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("pgsql(") || l.contains("ldirectord"))
                .collect();
            out.push_str(&format!(
                "--- {} agents' lines (tail):\n{}\n--- {} postgres.log (tail):\n{}\n\
                 --- {} ldirectord-rs.log (tail):\n{}\n",
                n.name,
                agents[agents.len().saturating_sub(30)..].join("\n"),
                n.name,
                tail_of(n.read(&format!("{PG_RUN}/postgres.log"))),
                n.name,
                tail_of(n.read("/run/ldirectord-rs.log")),
            ));
        }
        out.push_str(&format!("statuses: {:?}\n", statuses(c)));
        out
    });
}

fn tail_of(text: Option<String>) -> String {
    let text = text.unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Each live node's `pgsql-status`, as the cluster has it.
fn statuses(c: &Cluster) -> Vec<(String, String)> {
    c.live()
        .map(|n| {
            let r = c.any().tool(&[
                "crm_attribute",
                "-N",
                &n.name,
                "-l",
                "reboot",
                "-n",
                "pgsql-status",
                "-G",
                "-q",
            ]);
            (n.name.clone(), r.stdout.trim().to_owned())
        })
        .collect()
}

fn primary(c: &Cluster) -> Option<String> {
    statuses(c)
        .into_iter()
        .find(|(_, v)| v == "PRI")
        .map(|(n, _)| n)
}

/// What one read through the reader VIP reached.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Read {
    standby: bool,
    /// The server's node.
    server: String,
}

/// The server's recovery flag and its node (`cluster_name` is the node's name).
const READ_SQL: &str = "select pg_is_in_recovery()::text || ' ' || current_setting('cluster_name')";

fn psql_args(host: &str, sql: &str) -> Vec<String> {
    vec![
        "psql".into(),
        format!("host={host} port=5432 user=postgres dbname=postgres connect_timeout=2"),
        "-XtAc".into(),
        sql.into(),
    ]
}

fn parse_read(out: &str) -> Option<Read> {
    let (recovery, server) = out.trim().lines().last()?.split_once(' ')?;
    let standby = match recovery {
        "true" => true,
        "false" => false,
        _ => return None, // psql's error message
    };
    Some(Read {
        standby,
        server: server.to_owned(),
    })
}

/// One read from the LAN through the reader VIP; `None` when it failed.
fn read(c: &Cluster) -> Option<Read> {
    let args = psql_args(READER_VIP, READ_SQL);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = c.lan.run(&args, 30);
    r.status.success().then(|| parse_read(&r.stdout)).flatten()
}

/// A write through the writer VIP: the server's recovery flag and address.
fn write(c: &Cluster) -> Option<Read> {
    let sql = "create table if not exists w (t timestamptz); insert into w values (now()); \
               select pg_is_in_recovery()::text || ' ' || current_setting('cluster_name')";
    let args = psql_args(WRITER_VIP, sql);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = c.lan.run(&args, 30);
    r.status.success().then(|| parse_read(&r.stdout)).flatten()
}

/// Queries in a loop in the LAN (reads through the reader VIP, or writes through the writer
/// VIP), each line `EPOCH_SECONDS RESULT` (RESULT empty or an error when it failed), until
/// `stop` exists.
struct Reader {
    out: std::path::PathBuf,
    stop: std::path::PathBuf,
}

impl Reader {
    fn start(c: &mut Cluster, name: &str) -> Reader {
        Reader::query(c, name, READER_VIP, READ_SQL)
    }

    fn query(c: &mut Cluster, name: &str, host: &str, sql: &str) -> Reader {
        let out = c.lan.path(&format!("{name}.reads"));
        let stop = c.lan.path(&format!("{name}.stop"));
        let args = psql_args(host, sql);
        let script = format!(
            "while [ ! -e '{stop}' ]; do t=$(date +%s.%N); \
             r=$(psql '{}' -XtAc \"{}\" 2>&1 | tr '\\n' ' '); \
             echo \"$t $r\" >> '{out}'; sleep 0.1; done",
            args[1],
            args[3],
            stop = stop.display(),
            out = out.display(),
        );
        c.lan.spawn(name, &["sh", "-c", &script]);
        Reader { out, stop }
    }

    /// (time, read) for every read so far.
    fn reads(&self) -> Vec<(f64, Option<Read>)> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (t, rest) = l.split_once(' ')?;
                Some((t.parse().ok()?, parse_read(rest)))
            })
            .collect()
    }

    fn stop(&self) {
        std::fs::write(&self.stop, "").unwrap();
    }
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The primary and the other live nodes (the standbys).
fn standbys(c: &Cluster) -> (String, BTreeSet<String>) {
    let primary = primary(c).expect("a primary");
    let others = c
        .live()
        .filter(|n| n.name != primary)
        .map(|n| n.name.clone())
        .collect();
    (primary, others)
}

/// Scenario 1: the pool is the streaming standbys, every read reaches one of them, both
/// of them serve, writes reach the primary. Returns the primary's name.
fn steady_state(c: &Cluster, form: Form) -> String {
    let (primary, standbys) = standbys(c);
    // The pool fills in one refresh after both stream; give it that.
    wait(c, "both standbys serving reads", || {
        let seen: BTreeSet<String> = (0..6).filter_map(|_| read(c)).map(|r| r.server).collect();
        seen == standbys
    });
    let reads: Vec<Option<Read>> = (0..40).map(|_| read(c)).collect();
    let failed = reads.iter().filter(|r| r.is_none()).count();
    let wrong = reads
        .iter()
        .flatten()
        .filter(|r| !r.standby || !standbys.contains(&r.server))
        .count();
    let seen: BTreeSet<String> = reads.iter().flatten().map(|r| r.server.clone()).collect();
    println!(
        "{form:?} steady state: 40 reads, {failed} failed, {wrong} on a non-standby, \
         servers {seen:?} (standbys {standbys:?}, primary {primary})"
    );
    assert_eq!((failed, wrong), (0, 0), "{reads:?}");
    assert_eq!(seen, standbys, "rr over both standbys");
    let w = write(c).expect("a write through the writer VIP");
    assert!(
        !w.standby && w.server == primary,
        "the write reached {w:?}, not the primary {primary}"
    );
    let lb = director_node(c).expect("the director runs");
    assert!(
        standbys.contains(&lb),
        "the director runs on {lb}, not a standby"
    );
    primary
}

/// How the primary fails in scenario 2.
#[derive(Clone, Copy, Debug)]
enum PrimaryFailure {
    /// Its node dies (corosync, Pacemaker, PostgreSQL and all).
    Node,
    /// Only its PostgreSQL dies (`kill -9` of the postmaster); the node stays.
    Postgres,
}

/// Scenario 2: the primary fails. Pacemaker promotes a standby; while every standby is
/// `HS:alone` (the election) the pool is the hot standbys (`realfallback=`), then the
/// remaining standby once it streams from the new primary. Measures, from the failure:
/// the promotion, the reads that failed, the reads that reached the promoted node (between
/// its promotion and the director dropping it: by the role check in the configfile form,
/// by `pgsql-status` at the agent's next monitor in the inline form) and until when, and
/// when every read reaches the remaining standby. Returns the new primary.
fn primary_dies(c: &mut Cluster, form: Form, old_primary: &str, how: PrimaryFailure) -> String {
    let lb_before = director_node(c);
    let reader = Reader::start(c, "failover");
    std::thread::sleep(Duration::from_secs(2));
    let killed_at = now_epoch();
    match how {
        PrimaryFailure::Node => {
            let _ = c.kill(old_primary);
        }
        PrimaryFailure::Postgres => {
            c.node(old_primary).ns().ok(&[
                "sh",
                "-c",
                &format!("kill -9 $(head -1 {PG_RUN}/data/postmaster.pid)"),
            ]);
        }
    }
    let started = Instant::now();
    wait(c, "a new primary", || {
        primary(c).is_some_and(|p| p != old_primary)
    });
    let new_primary = primary(c).unwrap();
    let promoted = started.elapsed();
    let standby: String = c
        .live()
        .find(|n| n.name != new_primary && n.name != old_primary)
        .map(|n| n.name.clone())
        .unwrap();
    // The remaining standby streams from the new primary and is the whole pool.
    wait(
        c,
        "the remaining standby streaming and serving every read",
        || {
            let s = statuses(c);
            s.iter().any(|(n, v)| *n == standby && v == "HS:async")
                && (0..4).all(|_| read(c).is_some_and(|r| r.standby && r.server == standby))
        },
    );
    let streaming = started.elapsed();
    std::thread::sleep(Duration::from_secs(5));
    reader.stop();
    std::thread::sleep(Duration::from_millis(500));
    let reads = reader.reads();
    let after: Vec<(f64, Option<Read>)> = reads
        .into_iter()
        .filter(|(t, _)| *t >= killed_at)
        .map(|(t, r)| (t - killed_at, r))
        .collect();
    let good = |r: &Option<Read>| r.as_ref().is_some_and(|r| r.standby && r.server == standby);
    let on_primary: Vec<f64> = after
        .iter()
        .filter(|(_, r)| r.as_ref().is_some_and(|r| !r.standby))
        .map(|(t, _)| *t)
        .collect();
    let failed: Vec<f64> = after
        .iter()
        .filter(|(_, r)| r.is_none())
        .map(|(t, _)| *t)
        .collect();
    // The pool is complete from the first read after which every read is good.
    let settled = after
        .iter()
        .rposition(|(_, r)| !good(r))
        .map_or(0, |i| i + 1);
    let complete_at = after.get(settled).map(|(t, _)| *t);
    let span = |v: &[f64]| match (v.first(), v.last()) {
        (Some(a), Some(b)) => format!("{a:.2}-{b:.2} s"),
        _ => "none".into(),
    };
    println!(
        "{form:?} primary {old_primary} failed ({how:?}): promoted {new_primary} after {:.2} s \
         (director on {} before); {} reads from the failure on: {} failed ({}), {} on the \
         promoted node ({}), pool complete ({standby} only) at {}, {} good reads after; \
         {standby} streaming from the new primary (seen) at {:.2} s",
        promoted.as_secs_f64(),
        lb_before.as_deref().unwrap_or("?"),
        after.len(),
        failed.len(),
        span(&failed),
        on_primary.len(),
        span(&on_primary),
        complete_at.map_or("never".into(), |t| format!("{t:.2} s")),
        after.len() - settled,
        streaming.as_secs_f64(),
    );
    assert!(
        after
            .iter()
            .flat_map(|(_, r)| r)
            .all(|r| r.standby || r.server == new_primary),
        "a read reached the failed primary: {after:?}"
    );
    // Reads reach the promoted node only between its promotion and the director's next
    // look at it (1 s checks, 2 s monitors), never before the failure was handled.
    let promoted_at = promoted.as_secs_f64();
    assert!(
        on_primary.iter().all(|t| *t <= promoted_at + 10.0),
        "reads on the promoted node long after its promotion ({promoted_at:.2} s): {after:?}"
    );
    // The standbys serve all along (realfallback=); reads fail only while the reader group
    // moves, when the director ran on the node that was promoted.
    if lb_before.as_deref() != Some(new_primary.as_str()) {
        assert!(failed.len() <= 1, "reads failed: {after:?}");
    }
    assert!(complete_at.is_some(), "the pool never settled: {after:?}");
    assert!(
        after.len() - settled >= 10,
        "too few reads after the pool settled: {after:?}"
    );
    let w = write(c).expect("a write through the writer VIP after the failover");
    assert!(
        !w.standby && w.server == new_primary,
        "the write reached {w:?}, not the new primary {new_primary}"
    );
    new_primary
}

/// The old primary back as a standby after its PostgreSQL died (scenario 2, `Postgres`):
/// what an operator does. The agent refuses to start over its `PGSQL.lock` ("my data may be
/// inconsistent"), so: a fresh base backup from the new primary (its own listen address
/// and name appended), the lock removed, the failure cleaned up. Measures the time from
/// the cleanup until reads reach it.
fn rejoin_as_standby(c: &Cluster, name: &str) {
    let node = c.node(name);
    let script = format!(
        "set -e\nrm -rf {PG_RUN}/data {PG_RUN}/tmp/PGSQL.lock\n\
         runuser -u postgres -- {PG_BIN}/pg_basebackup -h {WRITER_VIP} -U postgres \
         -D {PG_RUN}/data -X stream\n\
         printf \"listen_addresses = '127.0.0.1,{WRITER_VIP},{addr}'\\ncluster_name = '{name}'\\n\" \
         >> {PG_RUN}/data/postgresql.conf\n\
         chown -R postgres:postgres {PG_RUN}\nchmod 700 {PG_RUN}/data\n",
        addr = node.addr,
    );
    node.ns().ok(&["sh", "-c", &script]);
    let t0 = Instant::now();
    c.any()
        .tool(&["crm_resource", "--cleanup", "-r", "pgsql-clone", "-N", name]);
    wait(c, "the old primary streaming and back in the pool", || {
        statuses(c)
            .iter()
            .any(|(n, v)| n == name && v == "HS:async")
            && servers(c, 4).iter().any(|s| s == name)
    });
    println!(
        "old primary {name} resynchronised (pg_basebackup) and cleaned up: streaming and in \
         the pool after {:.2} s",
        t0.elapsed().as_secs_f64()
    );
}

/// The node running the director (`lb`), as the cluster says; `None` while it runs
/// nowhere (moving).
fn director_node(c: &Cluster) -> Option<String> {
    let r = c
        .any()
        .tool(&["crm_resource", "-r", "lb", "--locate", "-Q"]);
    r.stdout.split_whitespace().next().map(str::to_owned)
}

/// The primary, the director's node (a standby), and the other standby if one runs.
fn roles(c: &Cluster) -> (String, String, Option<String>) {
    let primary = primary(c).expect("a primary");
    let lb = director_node(c).expect("the director runs");
    let other = c
        .live()
        .find(|n| n.name != primary && n.name != lb)
        .map(|n| n.name.clone());
    (primary, lb, other)
}

/// SQL as postgres on `node`'s own server (its Unix socket).
fn local_sql(node: &Node, sql: &str) -> String {
    let r = node.ns().run(
        &[
            "psql", "-h", PG_RUN, "-U", "postgres", "-d", "postgres", "-XtAc", sql,
        ],
        30,
    );
    assert!(r.status.success(), "{} psql {sql}: {r:?}", node.name);
    r.stdout
}

/// `n` reads; the nodes they reached (failed reads left out).
fn servers(c: &Cluster, n: usize) -> Vec<String> {
    (0..n).filter_map(|_| read(c)).map(|r| r.server).collect()
}

/// Scenario 3: a standby stops streaming (the primary's `pg_hba` refuses its replication
/// connection and its walsender is ended): it leaves the pool (by `pgsql-status`, which
/// the primary's agent sets to `HS:alone`, and, in the configfile form, by the role
/// check's `pgsqlmaxlag`: an unknown lag is not below it), then comes back when it
/// streams again. Measures both times.
fn standby_stops_streaming(c: &Cluster, form: Form) {
    let (primary, lb, other) = roles(c);
    // The standby that does not run the director (so only its membership changes).
    let victim = other.unwrap_or_else(|| lb.clone());
    let p = c.node(&primary);
    let hba = format!("{PG_RUN}/data/pg_hba.conf");
    let refuse = format!("host replication all {}/32 reject", c.node(&victim).addr);
    let t0 = Instant::now();
    p.ns().ok(&["sed", "-i", &format!("1i {refuse}"), &hba]);
    local_sql(p, "select pg_reload_conf()");
    local_sql(
        p,
        &format!(
            "select pg_terminate_backend(pid) from pg_stat_replication \
             where application_name = '{victim}'"
        ),
    );
    wait(
        c,
        "the standby that stopped streaming to leave the pool",
        || !servers(c, 4).contains(&victim),
    );
    let left = t0.elapsed();
    let status = statuses(c);
    let after: Vec<Option<Read>> = (0..20).map(|_| read(c)).collect();
    let failed_after = after.iter().filter(|r| r.is_none()).count();
    assert!(
        after
            .iter()
            .flatten()
            .all(|r| r.standby && r.server != victim),
        "reads after {victim} left: {after:?}\n{}",
        tail_of(c.node(&lb).read("/run/ldirectord-rs.log"))
    );
    // Both ways out before it may stream again, so that its way back is whole too.
    let status_of = |c: &Cluster| {
        statuses(c)
            .into_iter()
            .find(|(n, _)| *n == victim)
            .map(|(_, v)| v)
    };
    wait(c, "the primary's agent to mark it not streaming", || {
        status_of(c).is_some_and(|v| !v.starts_with("HS:") || v == "HS:alone")
    });
    let attribute_left = t0.elapsed();
    let t1 = Instant::now();
    p.ns().ok(&["sed", "-i", "1d", &hba]);
    local_sql(p, "select pg_reload_conf()");
    wait(c, "the standby streaming and back in the pool", || {
        status_of(c).as_deref() == Some("HS:async") && servers(c, 4).contains(&victim)
    });
    let back = t1.elapsed();
    let log = c
        .node(&lb)
        .read("/run/ldirectord-rs.log")
        .unwrap_or_default();
    let addr = format!("{}:5432", c.node(&victim).addr);
    // The configfile form logs to /run/ldirectord-rs.log: a failed check deletes the
    // real ("Deleted real server"), a changed source purges it on the reload. The inline
    // form has no check (checktype=on): pgsql-status alone.
    let first = match form {
        Form::Inline => Some("pgsql-status"),
        Form::ConfigFile => log
            .lines()
            .find(|l| {
                l.contains(&addr) && (l.contains("Deleted real") || l.contains("Purged real"))
            })
            .map(|l| {
                if l.contains("Deleted real") {
                    "the role check"
                } else {
                    "pgsql-status"
                }
            }),
    };
    println!(
        "{form:?} standby {victim} refused by the primary: out of the pool after {:.2} s \
         (first by {}; statuses then {status:?}; pgsql-status not streaming after {:.2} s), \
         20 reads after: none on it, {failed_after} failed; streaming again: back after \
         {:.2} s",
        left.as_secs_f64(),
        first.unwrap_or("?"),
        attribute_left.as_secs_f64(),
        back.as_secs_f64()
    );
}

/// The daemon's own view on `node` (`status --json` on the file the agent generated).
fn daemon_status(node: &Node) -> Option<serde_json::Value> {
    let r = node.ns().run(&[BIN, GENERATED, "status", "--json"], 10);
    serde_json::from_str(&r.stdout).ok()
}

/// Each real's last check time, as the daemon on `node` reports it.
fn checked_at(node: &Node) -> Vec<(String, String)> {
    let Some(s) = daemon_status(node) else {
        return Vec::new();
    };
    s["virtuals"][0]["reals"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some((
                r["server"].as_str()?.to_owned(),
                r["check"]["checked_at"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// How Pacemaker's tools misbehave in scenario 5.
#[derive(Clone, Copy, Debug)]
enum Hiccup {
    /// `crm_resource` exits 102 at once, as when the controller cannot be reached.
    Failing,
    /// `crm_resource` answers only after 15 s, past the agent's 10 s limit per command.
    Slow,
}

/// Scenario 5: Pacemaker's tools misbehave on the director's node for a while (its
/// `crm_resource` replaced, in that node's mount namespace only): the pool stays as it
/// was, reads keep reaching both standbys, the agent (which selects the pool on each
/// monitor) warns once, and says when the source works again; its monitors keep returning
/// 0 (no restart), and the daemon's checks (its own timers, not the agent's) keep their
/// 1 s pace: the longest time between two checks of a real is measured.
fn pacemaker_hiccup(c: &Cluster, form: Form, how: Hiccup) {
    let lb = director_node(c).expect("the director runs");
    let node = c.node(&lb);
    let (_, standbys) = standbys(c);
    wait(c, "both standbys in the pool before the hiccup", || {
        servers(c, 6).into_iter().collect::<BTreeSet<_>>() == standbys
    });
    let (text, window) = match how {
        Hiccup::Failing => (
            "#!/bin/sh\necho 'crm_resource: could not connect to the controller' >&2\nexit 102\n",
            8,
        ),
        Hiccup::Slow => (
            "#!/bin/sh\nsleep 15\nexec /run/crm_resource.real \"$@\"\n",
            24,
        ),
    };
    let fake = sandbox::script(&node.path(&format!("crm_resource.{how:?}")), text);
    // Under Pacemaker the agent selects the pool on every monitor and hands the daemon
    // the result; its stderr lands in the node's cluster log.
    let log_before = node.log().len();
    let mark = c.mark();
    node.ns().ok(&[
        "sh",
        "-c",
        &format!(
            "touch /run/crm_resource.real && \
             mount --bind /usr/sbin/crm_resource /run/crm_resource.real && \
             mount --bind '{}' /usr/sbin/crm_resource",
            fake.display()
        ),
    ]);
    let t0 = Instant::now();
    let mut reads = Vec::new();
    // When each real's check time changed, as seen by polling between reads.
    let mut changes: BTreeMap<String, (String, Vec<f64>)> = BTreeMap::new();
    while t0.elapsed() < Duration::from_secs(window) {
        reads.push(read(c));
        let at = t0.elapsed().as_secs_f64();
        for (real, when) in checked_at(node) {
            let e = changes
                .entry(real)
                .or_insert_with(|| (String::new(), Vec::new()));
            if e.0 != when {
                e.0 = when;
                e.1.push(at);
            }
        }
    }
    node.ns().ok(&[
        "sh",
        "-c",
        // Lazily: an agent's monitor may be running the fake right now.
        "umount -l /usr/sbin/crm_resource && umount -l /run/crm_resource.real",
    ]);
    wait(c, "the agent to say its source works again", || {
        node.log()
            .get(log_before..)
            .is_some_and(|l| l.contains("the source works again"))
    });
    let log = node.log()[log_before..].to_owned();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("keeping the last good set"))
        .collect();
    let failed = reads.iter().filter(|r| r.is_none()).count();
    let seen: BTreeSet<String> = reads.iter().flatten().map(|r| r.server.clone()).collect();
    let wrong = reads.iter().flatten().filter(|r| !r.standby).count();
    let monitors = c.results(&mark, "lb");
    let longest_gap = changes
        .values()
        .flat_map(|(_, times)| times.windows(2).map(|w| w[1] - w[0]))
        .fold(0.0_f64, f64::max);
    let checks: usize = changes.values().map(|(_, t)| t.len()).sum();
    println!(
        "{form:?} crm_resource {how:?} on {lb} for {window} s: {} reads, {failed} failed, \
         {wrong} on a non-standby, servers {seen:?}; {} warning(s) in the cluster log {:?}; \
         checks seen {checks} over {} reals, longest time between two checks of a real \
         {longest_gap:.2} s (checkinterval 1 s); lb's results meanwhile: {:?}",
        reads.len(),
        warnings.len(),
        warnings
            .iter()
            .map(|w| w.rsplit("WARNING: ").next().unwrap_or(w))
            .collect::<Vec<_>>(),
        changes.len(),
        monitors
            .iter()
            .map(|r| format!("{} {}", r.op, r.rc))
            .collect::<Vec<_>>(),
    );
    assert_eq!((failed, wrong), (0, 0), "{reads:?}");
    assert_eq!(seen, standbys, "the pool changed during the hiccup");
    assert_eq!(warnings.len(), 1, "{log}");
    if let Hiccup::Slow = how {
        assert!(
            warnings[0].contains("did not finish within"),
            "{}",
            warnings[0]
        );
    }
    assert_eq!(changes.len(), 2, "both reals checked: {changes:?}");
    // The checks run on the daemon's timers: a slow agent delays none of them (a check
    // takes a few hundred ms here; 3 s leaves room for a loaded machine).
    assert!(longest_gap < 3.0, "a check was delayed: {changes:?}");
    assert!(
        monitors.iter().all(|r| r.rc == "0"),
        "lb failed an operation: {monitors:?}"
    );
}

/// Rewrite the director's file with or without `pgsqlmaxlag=5s` and wait until the daemon
/// runs on it: the agent notices the change at its next monitor, rewrites the daemon's file
/// and reloads it (no restart).
fn set_max_lag(c: &Cluster, on: bool) {
    std::fs::write(c.path("lb.cf"), director_cf(on)).unwrap();
    let lb = director_node(c).expect("the director runs");
    let node = c.node(&lb);
    wait(c, "the daemon running on the new file", || {
        let generated = node.read(GENERATED).unwrap_or_default();
        let md5 = node.ns().run(&["md5sum", GENERATED], 10).stdout;
        generated.contains("pgsqlmaxlag") == on
            && daemon_status(node).is_some_and(|s| {
                s["daemon"]["state"] == "running"
                    && md5.split_whitespace().next() == s["daemon"]["config_md5"].as_str()
            })
    });
}

/// Scenario 3, lag: with `pgsqlmaxlag=5s` (set under the running director, a reload), a
/// standby that keeps streaming but replays nothing (`pg_wal_replay_pause()`) while writes
/// go to the primary leaves the pool once its replay is 5 s behind (by the role check:
/// `pgsql-status` still says `HS:async`), and comes back when it replays again. Measures
/// both times.
fn standby_lags(c: &mut Cluster, form: Form) {
    set_max_lag(c, true);
    let (_, lb, other) = roles(c);
    let victim = other.unwrap_or_else(|| lb.clone());
    // One statement, so the loop's one-line result parses as a read does.
    let insert = "with i as (insert into w values (now()) returning 1) \
                  select 'false ' || current_setting('cluster_name') from i";
    let writer = Reader::query(c, "lag-writes", WRITER_VIP, insert);
    wait(c, "both standbys in the pool with pgsqlmaxlag", || {
        servers(c, 6).contains(&victim)
    });
    let t0 = Instant::now();
    local_sql(c.node(&victim), "select pg_wal_replay_pause()");
    wait(c, "the lagging standby to leave the pool", || {
        !servers(c, 4).contains(&victim)
    });
    let left = t0.elapsed();
    let status = statuses(c);
    let addr = format!("{}:5432", c.node(&victim).addr);
    let reason = daemon_status(c.node(&lb))
        .and_then(|s| {
            s["virtuals"][0]["reals"]
                .as_array()?
                .iter()
                .find(|r| r["server"] == addr.as_str())
                .and_then(|r| r["check"]["reason"].as_str().map(str::to_owned))
        })
        .unwrap_or_default();
    let after: Vec<Option<Read>> = (0..20).map(|_| read(c)).collect();
    let failed_after = after.iter().filter(|r| r.is_none()).count();
    let t1 = Instant::now();
    local_sql(c.node(&victim), "select pg_wal_replay_resume()");
    wait(c, "the standby replaying and back in the pool", || {
        servers(c, 4).contains(&victim)
    });
    let back = t1.elapsed();
    writer.stop();
    let writes = writer.reads();
    println!(
        "{form:?} standby {victim} replay paused under writes ({} writes, {} failed): out of \
         the pool after {:.2} s (statuses then {status:?}; check: {reason}), 20 reads after: none \
         on it, {failed_after} failed; replaying again: back after {:.2} s",
        writes.len(),
        writes.iter().filter(|(_, w)| w.is_none()).count(),
        left.as_secs_f64(),
        back.as_secs_f64()
    );
    assert!(
        after
            .iter()
            .flatten()
            .all(|r| r.standby && r.server != victim),
        "reads after {victim} left: {after:?}"
    );
    assert!(
        status.iter().any(|(n, v)| *n == victim && v == "HS:async"),
        "{victim} left by pgsql-status, not by its lag: {status:?}"
    );
    assert!(
        left >= Duration::from_secs(5) && reason.contains("pgsqlmaxlag"),
        "out before its lag could reach 5 s, or not by its lag: {reason}"
    );
    set_max_lag(c, false);
}

/// The real servers the daemon's log (configfile form) on `node` added, deleted or purged
/// after byte `from`, by address.
fn table_changes(node: &Node, from: usize) -> (Vec<String>, Vec<String>) {
    let log = node.read("/run/ldirectord-rs.log").unwrap_or_default();
    let mut added = Vec::new();
    let mut removed = Vec::new();
    for l in log.get(from..).unwrap_or_default().lines() {
        let real = |after: &str| {
            l.split(after)
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_owned)
        };
        if let Some(r) = real("Added real server: ") {
            added.push(r);
        } else if let Some(r) = real("Deleted real server: ").or_else(|| {
            l.contains("Purged real server")
                .then(|| real("): "))
                .flatten()
        }) {
            removed.push(r);
        }
    }
    (added, removed)
}

/// Scenario 4: the director's node dies. The director and the reader VIP move to the
/// other standby, whose instance builds the pool (that standby alone now) from the
/// cluster. Measures the time until reads are served again and counts the reads in
/// between. With the userspace engine the table dies with its node, so "adopts the pool
/// without churn" is measured from the new instance's log (configfile form): its first
/// pool is the old pool less the dead node, each real added once and none removed.
fn director_dies(c: &mut Cluster, form: Form) {
    let (_, lb, other) = roles(c);
    let other = other.expect("another standby");
    let old_pool: BTreeSet<String> = servers(c, 6).into_iter().collect();
    let log_from = c
        .node(&other)
        .read("/run/ldirectord-rs.log")
        .map_or(0, |l| l.len());
    let reader = Reader::start(c, "director-dies");
    std::thread::sleep(Duration::from_secs(2));
    let killed_at = now_epoch();
    let _ = c.kill(&lb);
    wait(
        c,
        "the director on the other standby, serving every read",
        || {
            director_node(c).as_ref() == Some(&other)
                && (0..4).all(|_| read(c).is_some_and(|r| r.standby && r.server == other))
        },
    );
    std::thread::sleep(Duration::from_secs(5));
    reader.stop();
    std::thread::sleep(Duration::from_millis(500));
    let after: Vec<(f64, Option<Read>)> = reader
        .reads()
        .into_iter()
        .filter(|(t, _)| *t >= killed_at)
        .collect();
    let good = |r: &Option<Read>| r.as_ref().is_some_and(|r| r.standby && r.server == other);
    let settled = after
        .iter()
        .rposition(|(_, r)| !good(r))
        .map_or(0, |i| i + 1);
    let failed = after.iter().filter(|(_, r)| r.is_none()).count();
    let non_standby = after
        .iter()
        .filter(|(_, r)| r.as_ref().is_some_and(|r| !r.standby))
        .count();
    let served_at = after.get(settled).map(|(t, _)| t - killed_at);
    println!(
        "{form:?} director's node {lb} killed: director on {other}, reads served again at {} \
         ({} reads from the kill: {failed} failed, {non_standby} on a non-standby; {} good \
         after)",
        served_at.map_or("never".into(), |t| format!("{t:.2} s")),
        after.len(),
        after.len() - settled,
    );
    assert_eq!(non_standby, 0, "{after:?}");
    assert!(after.len() - settled >= 10, "{after:?}");
    if let Form::ConfigFile = form {
        let (added, removed) = table_changes(c.node(&other), log_from);
        let want: Vec<String> = old_pool
            .iter()
            .filter(|n| **n != lb)
            .map(|n| format!("{}:5432", c.node(n).addr))
            .collect();
        println!(
            "{form:?} new director on {other}: old pool {old_pool:?}; added {added:?}, \
             removed {removed:?}"
        );
        assert_eq!(
            (added, removed),
            (want, Vec::new()),
            "the new instance's table churned"
        );
    }
}

/// Configfile form: steady state; a standby refused, then one lagging (`pgsqlmaxlag` set
/// for it); `crm_resource` failing, then slow; the primary's PostgreSQL killed (and the old
/// primary resynchronised as a standby); the director's node killed.
#[test]
fn s1_s3_s5_s2_s4_configfile_pool_follows_the_cluster() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = setup(Form::ConfigFile);
    let primary = steady_state(&c, Form::ConfigFile);
    standby_stops_streaming(&c, Form::ConfigFile);
    standby_lags(&mut c, Form::ConfigFile);
    pacemaker_hiccup(&c, Form::ConfigFile, Hiccup::Failing);
    pacemaker_hiccup(&c, Form::ConfigFile, Hiccup::Slow);
    primary_dies(&mut c, Form::ConfigFile, &primary, PrimaryFailure::Postgres);
    rejoin_as_standby(&c, &primary);
    director_dies(&mut c, Form::ConfigFile);
}

/// Inline form: steady state; a standby refused; the primary's node killed.
#[test]
fn s1_s3_s2_inline_parameters_pool_follows_the_cluster() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = setup(Form::Inline);
    let primary = steady_state(&c, Form::Inline);
    standby_stops_streaming(&c, Form::Inline);
    primary_dies(&mut c, Form::Inline, &primary, PrimaryFailure::Node);
}
