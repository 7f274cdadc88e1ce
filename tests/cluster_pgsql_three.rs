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
//! each checked with `pgsqlrole=standby`. Reads are real `psql` sessions from the LAN to
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
//! Figures (printed): reads during steady state (all on standbys), and for a primary's
//! death: seconds until no read lands on a non-standby, until the pool is complete again,
//! and the reads that failed or reached a wrong node in between.

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

use std::collections::BTreeSet;
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
/// member checked as a standby.
fn director_cf() -> String {
    format!(
        "checkinterval=1\nchecktimeout=3\nnegotiatetimeout=3\nquiescent=no\n\
         logfile=\"/run/ldirectord-rs.log\"\n\
         nodeaddress=node1 10.250.2.1\nnodeaddress=node2 10.250.2.2\n\
         nodeaddress=node3 10.250.2.3\n\
         virtual={READER_VIP}:5432\n\
         \tprotocol=tcp\n\tscheduler=rr\n\
         \trealsource=resource pgsql-clone\n\
         \trealfilter=attribute pgsql-status {REGEX}\n\
         \tservice=pgsql\n\tchecktype=negotiate\n\
         \tlogin=\"postgres\"\n\tdatabase=\"postgres\"\n\
         \tpgsqlrole=standby\n\tpgsqlmaxlag=5s\n"
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
    std::fs::write(c.path("lb.cf"), director_cf()).unwrap();
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
        "<rsc_colocation id=\"reader-with-standby\" rsc=\"reader\" with-rsc=\"pgsql-clone\" \
         with-rsc-role=\"Unpromoted\" score=\"INFINITY\"/>",
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

/// Reads in a loop in the LAN, each line `EPOCH_SECONDS RESULT` (RESULT empty or an error
/// when it failed), until `stop` exists.
struct Reader {
    out: std::path::PathBuf,
    stop: std::path::PathBuf,
}

impl Reader {
    fn start(c: &mut Cluster, name: &str) -> Reader {
        let out = c.lan.path(&format!("{name}.reads"));
        let stop = c.lan.path(&format!("{name}.stop"));
        let args = psql_args(READER_VIP, READ_SQL);
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
    primary
}

/// Scenario 2: the primary's node dies. Measures, from the death: the last read that
/// reached a non-standby, the first read after which every read reaches the new pool,
/// and the reads that failed or were wrong after the pool settled.
fn primary_dies(c: &mut Cluster, form: Form, old_primary: &str) {
    let reader = Reader::start(c, "failover");
    std::thread::sleep(Duration::from_secs(2));
    let killed_at = now_epoch();
    let _ = c.kill(old_primary);
    let started = Instant::now();
    wait(c, "a new primary", || {
        primary(c).is_some_and(|p| p != old_primary)
    });
    let new_primary = primary(c).unwrap();
    let promoted = started.elapsed();
    let standby: String = c
        .live()
        .find(|n| n.name != new_primary)
        .map(|n| n.name.clone())
        .unwrap();
    // The remaining standby streams from the new primary and is the whole pool.
    wait(
        c,
        "the remaining standby streaming and serving every read",
        || {
            let s = statuses(c);
            s.iter().any(|(_, v)| v == "HS:async")
                && (0..4).all(|_| read(c).is_some_and(|r| r.standby && r.server == standby))
        },
    );
    std::thread::sleep(Duration::from_secs(5));
    reader.stop();
    std::thread::sleep(Duration::from_millis(500));
    let reads = reader.reads();
    let after: Vec<&(f64, Option<Read>)> = reads.iter().filter(|(t, _)| *t >= killed_at).collect();
    let good = |r: &Option<Read>| r.as_ref().is_some_and(|r| r.standby && r.server == standby);
    let last_non_standby = after
        .iter()
        .filter(|(_, r)| r.as_ref().is_some_and(|r| !r.standby))
        .map(|(t, _)| t - killed_at)
        .next_back();
    // The pool is complete from the first read after which every read is good.
    let settled = after
        .iter()
        .rposition(|(_, r)| !good(r))
        .map_or(0, |i| i + 1);
    let complete_at = after.get(settled).map(|(t, _)| t - killed_at);
    let failed = after.iter().filter(|(_, r)| r.is_none()).count();
    let non_standby = after
        .iter()
        .filter(|(_, r)| r.as_ref().is_some_and(|r| !r.standby))
        .count();
    println!(
        "{form:?} primary {old_primary} killed: promoted {new_primary} after {:.2} s; \
         {} reads from the kill on: {non_standby} on a non-standby (last at {}), {failed} \
         failed (the pool is empty while a primary is chosen and the reader group moves); \
         pool complete ({standby} only) at {}, {} good reads after",
        promoted.as_secs_f64(),
        after.len(),
        last_non_standby.map_or("none".into(), |t| format!("{t:.2} s")),
        complete_at.map_or("never".into(), |t| format!("{t:.2} s")),
        after.len() - settled,
    );
    assert_eq!(non_standby, 0, "reads reached a non-standby: {after:?}");
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

/// Scenario 5: Pacemaker's tools fail on the director's node for a while (its
/// `crm_resource` replaced, in that node's mount namespace only, by one that exits 102 as
/// when the controller cannot be reached): the pool stays as it was, reads keep reaching
/// both standbys, the agent (which selects the pool on each monitor) warns once, and says
/// when the source works again; its monitors keep returning 0 (no restart).
fn pacemaker_hiccup(c: &Cluster, form: Form) {
    let lb = director_node(c).expect("the director runs");
    let node = c.node(&lb);
    let (_, standbys) = standbys(c);
    wait(c, "both standbys in the pool before the hiccup", || {
        servers(c, 6).into_iter().collect::<BTreeSet<_>>() == standbys
    });
    let failing = sandbox::script(
        &node.path("crm_resource.failing"),
        "#!/bin/sh\necho 'crm_resource: could not connect to the controller' >&2\nexit 102\n",
    );
    // Under Pacemaker the agent selects the pool on every monitor and hands the daemon
    // the result; its stderr lands in the node's cluster log.
    let log_before = node.log().len();
    let mark = c.mark();
    node.ns().ok(&[
        "mount",
        "--bind",
        failing.to_str().unwrap(),
        "/usr/sbin/crm_resource",
    ]);
    let t0 = Instant::now();
    let mut reads = Vec::new();
    while t0.elapsed() < Duration::from_secs(8) {
        reads.push(read(c));
    }
    node.ns().ok(&["umount", "/usr/sbin/crm_resource"]);
    wait(c, "the agent to say its source works again", || {
        node.log()
            .get(log_before..)
            .is_some_and(|l| l.contains("the source works again"))
    });
    let log = node.log()[log_before..].to_owned();
    let warnings = log
        .lines()
        .filter(|l| l.contains("keeping the last good set"))
        .count();
    let failed = reads.iter().filter(|r| r.is_none()).count();
    let seen: BTreeSet<String> = reads.iter().flatten().map(|r| r.server.clone()).collect();
    let wrong = reads.iter().flatten().filter(|r| !r.standby).count();
    let monitors = c.results(&mark, "lb");
    println!(
        "{form:?} crm_resource failing on {lb} for 8 s: {} reads, {failed} failed, {wrong} on \
         a non-standby, servers {seen:?}; {warnings} warning(s) in the cluster log; lb's \
         results meanwhile: {:?}",
        reads.len(),
        monitors
            .iter()
            .map(|r| format!("{} {}", r.op, r.rc))
            .collect::<Vec<_>>(),
    );
    assert_eq!((failed, wrong), (0, 0), "{reads:?}");
    assert_eq!(seen, standbys, "the pool changed during the hiccup");
    assert_eq!(warnings, 1, "{log}");
    assert!(
        monitors.iter().all(|r| r.rc == "0"),
        "lb failed an operation: {monitors:?}"
    );
}

/// Scenario 4: the director's node dies. The director and the reader VIP move to the
/// other standby, whose instance builds the pool (that standby alone now) from the
/// cluster. Measures the time until reads are served again and counts the reads in
/// between.
fn director_dies(c: &mut Cluster, form: Form) {
    let (_, lb, other) = roles(c);
    let other = other.expect("another standby");
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
}

#[test]
fn s1_s3_s5_s2_configfile_pool_follows_the_cluster() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = setup(Form::ConfigFile);
    let primary = steady_state(&c, Form::ConfigFile);
    standby_stops_streaming(&c, Form::ConfigFile);
    pacemaker_hiccup(&c, Form::ConfigFile);
    primary_dies(&mut c, Form::ConfigFile, &primary);
}

#[test]
fn s1_s3_s4_inline_parameters_pool_follows_the_cluster() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = setup(Form::Inline);
    steady_state(&c, Form::Inline);
    standby_stops_streaming(&c, Form::Inline);
    director_dies(&mut c, Form::Inline);
}
