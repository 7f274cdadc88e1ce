//! The pgsql checker against real PostgreSQL 15 servers: a primary with a streaming standby
//! made by `pg_basebackup -R`, in temporary directories, on free ports of 127.0.0.1, run as
//! the unprivileged `postgres` user (the server refuses root) and stopped by a drop guard.
//!
//! A missing PostgreSQL makes these tests fail, not skip: `apt-get install postgresql-15`.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ldirectord_checks::{CheckSpec, Outcome, pgsql};
use ldirectord_parsers::config::{CheckType, PgRole, PgRoleCheck, Service, SyncState};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[allow(dead_code)] // this binary uses the forwarding-path stand-in only
mod common;

const BIN: &str = "/usr/lib/postgresql/15/bin";
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const CHECKER: &str = "checker";
const CHECKER_PW: &str = "check-pw";

/// One PostgreSQL server in a temporary directory.
struct Server {
    _dir: tempfile::TempDir,
    data: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    user: Option<(u32, u32)>,
    /// `listen_addresses`.
    listen: &'static str,
}

/// Who runs the server: `postgres` when we are root (it refuses to run as root).
fn server_user() -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("running as root needs the unprivileged user 'postgres' to run PostgreSQL");
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields[2].parse().unwrap(), fields[3].parse().unwrap()))
}

fn free_port() -> u16 {
    common::free_port("127.0.0.1")
}

fn tool(name: &str) -> PathBuf {
    let path = Path::new(BIN).join(name);
    assert!(
        path.exists(),
        "{} is missing: these tests need PostgreSQL 15 (apt-get install postgresql-15)",
        path.display()
    );
    path
}

impl Server {
    fn dir() -> (tempfile::TempDir, Option<(u32, u32)>) {
        let dir = tempfile::tempdir().unwrap();
        let user = server_user();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        (dir, user)
    }

    fn command(&self, name: &str) -> Command {
        command_as(self.user, name)
    }

    /// A fresh primary: superuser `postgres` over the unix socket (trust), everyone else
    /// with SCRAM passwords over TCP, TLS offered with a self-signed certificate.
    fn primary() -> Server {
        Server::primary_on("127.0.0.1")
    }

    /// A primary listening on `listen` (`*`: every address, in a namespace of the test's).
    /// Besides loopback it takes logins from the forwarding-path stand-in's real address.
    fn primary_on(listen: &'static str) -> Server {
        let (dir, user) = Server::dir();
        let data = dir.path().join("data");
        let socket_dir = dir.path().to_path_buf();
        let out = command_as(user, "initdb")
            .args([
                "-N",
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-D",
            ])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("openssl")
            .args([
                "req",
                "-new",
                "-x509",
                "-days",
                "2",
                "-nodes",
                "-subj",
                "/CN=pg-test",
                "-keyout",
            ])
            .arg(data.join("server.key"))
            .arg("-out")
            .arg(data.join("server.crt"))
            .output()
            .expect("openssl is needed to make the test server's certificate");
        assert!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some((uid, gid)) = user {
            for f in ["server.key", "server.crt"] {
                std::os::unix::fs::chown(data.join(f), Some(uid), Some(gid)).unwrap();
            }
        }
        append(
            &data.join("pg_hba.conf"),
            &format!(
                "host replication all 127.0.0.1/32 scram-sha-256\n\
                 host all all {}/32 scram-sha-256\n",
                common::FWD_REAL
            ),
        );
        let server = Server {
            _dir: dir,
            data,
            socket_dir,
            port: free_port(),
            user,
            listen,
        };
        server.configure("primary", "ssl = on\n");
        server.start();
        server
    }

    /// A streaming standby of `primary`, with `cluster_name` `name` (its application_name).
    fn standby_of(primary: &Server, name: &str) -> Server {
        let (dir, user) = Server::dir();
        let data = dir.path().join("data");
        let out = command_as(user, "pg_basebackup")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "repl",
                "-X",
                "stream",
                "-c",
                "fast",
                "-R",
                "-p",
            ])
            .arg(primary.port.to_string())
            .arg("-D")
            .arg(&data)
            .env("PGPASSWORD", "repl-pw")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_basebackup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let server = Server {
            socket_dir: dir.path().to_path_buf(),
            _dir: dir,
            data,
            port: free_port(),
            user,
            listen: "127.0.0.1",
        };
        server.configure(name, "");
        server.start();
        server
    }

    fn configure(&self, cluster_name: &str, extra: &str) {
        append(
            &self.data.join("postgresql.conf"),
            &format!(
                "listen_addresses = '{}'\nport = {}\nunix_socket_directories = '{}'\n\
                 cluster_name = '{cluster_name}'\nfsync = off\nhot_standby = on\nmax_wal_senders = 5\n\
                 wal_receiver_status_interval = 1s\n{extra}",
                self.listen,
                self.port,
                self.socket_dir.display()
            ),
        );
    }

    fn start(&self) {
        let out = self
            .command("pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(&self.data)
            .arg("-l")
            .arg(self.data.join("log"))
            .arg("start")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.data.join("log")).unwrap_or_default()
        );
    }

    fn postmaster(&self) -> Pid {
        let pidfile = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap();
        Pid::from_raw(pidfile.lines().next().unwrap().trim().parse().unwrap())
    }

    /// A superuser session over the unix socket.
    async fn admin(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::Config::new()
            .host_path(&self.socket_dir)
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .connect(tokio_postgres::NoTls)
            .await
            .expect("superuser session");
        tokio::spawn(connection);
        client
    }

    async fn sql(&self, sql: &str) {
        self.admin()
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    async fn value(&self, sql: &str) -> String {
        let rows = self.admin().await.simple_query(sql).await.unwrap();
        rows.iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some(r.get(0).unwrap_or("").to_owned())
                }
                _ => None,
            })
            .unwrap_or_default()
    }

    /// Poll until `sql` returns `want` (the server applies settings asynchronously).
    async fn wait_for(&self, sql: &str, want: &str) {
        for _ in 0..300 {
            if self.value(sql).await == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "`{sql}` never returned {want:?} (last: {:?})",
            self.value(sql).await
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A SIGSTOPped postmaster must be woken up, or pg_ctl would wait for it in vain.
        if let Ok(text) = std::fs::read_to_string(self.data.join("postmaster.pid"))
            && let Some(Ok(pid)) = text.lines().next().map(|l| l.trim().parse())
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
        }
        let _ = self
            .command("pg_ctl")
            .args(["-m", "immediate", "-w", "-D"])
            .arg(&self.data)
            .arg("stop")
            .output();
    }
}

fn command_as(user: Option<(u32, u32)>, name: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(tool(name));
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd.current_dir("/");
    cmd
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The roles and data every test uses.
async fn populate(primary: &Server) {
    primary
        .sql(&format!(
            "CREATE ROLE {CHECKER} LOGIN PASSWORD '{CHECKER_PW}' IN ROLE pg_monitor;
             CREATE ROLE nomonitor LOGIN PASSWORD 'nm-pw';
             CREATE ROLE repl LOGIN REPLICATION PASSWORD 'repl-pw';"
        ))
        .await;
    // Not in the batch above: CREATE DATABASE refuses to run inside a transaction block.
    primary
        .sql(&format!("CREATE DATABASE app OWNER {CHECKER}"))
        .await;
    let (client, connection) = tokio_postgres::Config::new()
        .host_path(&primary.socket_dir)
        .port(primary.port)
        .user("postgres")
        .dbname("app")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "CREATE TABLE health (ok int); INSERT INTO health VALUES (1); GRANT SELECT ON health TO {CHECKER};
             CREATE TABLE writes (n bigint);"
        ))
        .await
        .unwrap();
}

/// `synchronous_standby_names` on the primary (ALTER SYSTEM refuses a transaction block,
/// so it is sent alone).
async fn set_sync_standbys(primary: &Server, names: &str) {
    primary
        .sql(&format!(
            "ALTER SYSTEM SET synchronous_standby_names = '{names}'"
        ))
        .await;
    primary.sql("SELECT pg_reload_conf()").await;
}

fn spec(port: u16, login: &str, passwd: &str, request: &str) -> CheckSpec {
    CheckSpec {
        database: "app".to_owned(),
        ..CheckSpec::new(CheckType::Negotiate, Service::Pgsql, LOCALHOST, port)
            .with_login(login, passwd)
            .with_request(request)
    }
}

fn role(port: u16, role: PgRole, max_lag: Option<Duration>, sync: &[SyncState]) -> CheckSpec {
    CheckSpec {
        pgsql_role: Some(PgRoleCheck {
            role,
            max_lag,
            sync_states: sync.iter().copied().collect::<BTreeSet<_>>(),
        }),
        ..spec(port, CHECKER, CHECKER_PW, "/")
    }
}

/// Run the check built from `spec` through the registry, as the daemon does. A check that
/// ignores its own timeout fails the test instead of hanging it.
async fn run(spec: &CheckSpec) -> Outcome {
    let checker = ldirectord_checks::build(spec)
        .expect("builds")
        .expect("a checker");
    tokio::time::timeout(
        spec.negotiatetimeout + Duration::from_secs(10),
        checker.check(),
    )
    .await
    .expect("the check outlived its own timeout by 10 s")
}

#[track_caller]
fn assert_up(o: &Outcome) {
    assert!(o.is_up(), "expected up, got down: {}", o.reason);
}

#[track_caller]
fn assert_down(o: &Outcome, reason_contains: &str) {
    assert!(
        !o.is_up(),
        "expected down ({reason_contains}), got up: {}",
        o.reason
    );
    assert!(
        o.reason.contains(reason_contains),
        "reason {:?} lacks {reason_contains:?}",
        o.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_sql_check_counts_rows_over_tls_with_scram() {
    let primary = Server::primary();
    populate(&primary).await;
    let p = primary.port;

    let up = run(&spec(p, CHECKER, CHECKER_PW, "/SELECT ok FROM health")).await;
    assert_up(&up);
    assert_eq!(up.reason, "1 row");
    // The session was encrypted (sslmode=prefer against a server that offers TLS).
    assert_up(
        &run(&spec(
            p,
            CHECKER,
            CHECKER_PW,
            "/SELECT 1 FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl",
        ))
        .await,
    );
    // Several statements, as the simple protocol allows; rows of any of them count.
    assert_eq!(
        run(&spec(
            p,
            CHECKER,
            CHECKER_PW,
            "/SET search_path TO public; SELECT ok FROM health, generate_series(1,3)"
        ))
        .await
        .reason,
        "3 rows"
    );

    assert_down(
        &run(&spec(
            p,
            CHECKER,
            CHECKER_PW,
            "/SELECT ok FROM health WHERE ok = 2",
        ))
        .await,
        "query returned no rows",
    );
    assert_down(
        &run(&spec(p, CHECKER, CHECKER_PW, "/SELECT nope FROM missing")).await,
        "ERROR: relation \"missing\" does not exist",
    );
    assert_down(
        &run(&spec(p, CHECKER, "wrong", "/SELECT 1")).await,
        "password authentication failed for user \"checker\"",
    );
    assert_down(
        &run(&CheckSpec {
            database: "nodb".into(),
            ..spec(p, CHECKER, CHECKER_PW, "/SELECT 1")
        })
        .await,
        "database \"nodb\" does not exist",
    );

    // Stock's configuration error, reported as a down real, not a refusal to load.
    for s in [
        spec(p, "", CHECKER_PW, "/SELECT 1"),
        spec(p, CHECKER, CHECKER_PW, "/"),
    ] {
        let o = run(&s).await;
        assert!(!o.is_up());
        assert_eq!(o.reason, pgsql::MISSING_LOGIN_OR_REQUEST);
    }

    // Nothing listens: refused at once.
    let closed = free_port();
    assert_down(
        &run(&spec(closed, CHECKER, CHECKER_PW, "/SELECT 1")).await,
        "Connection refused",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_servers_fail_within_negotiatetimeout() {
    // A listener that accepts and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            sockets.push(s);
        }
    });
    let mut s = spec(silent, CHECKER, CHECKER_PW, "/SELECT 1");
    s.negotiatetimeout = Duration::from_millis(1500);
    assert_down(&run(&s).await, "timed out after 1500ms");
    s.pgsql_role = role(silent, PgRole::Standby, None, &[]).pgsql_role;
    assert_down(&run(&s).await, "timed out after 1500ms");
    held.abort();

    // A real server that stops answering mid-life (SIGSTOP: the kernel still accepts).
    let primary = Server::primary();
    populate(&primary).await;
    let mut s = spec(primary.port, CHECKER, CHECKER_PW, "/SELECT ok FROM health");
    s.negotiatetimeout = Duration::from_secs(2);
    assert_up(&run(&s).await);
    kill(primary.postmaster(), Signal::SIGSTOP).unwrap();
    let stopped = run(&s).await;
    kill(primary.postmaster(), Signal::SIGCONT).unwrap();
    assert_down(&stopped, "timed out after 2s");
    // And it comes back once the server does.
    assert_up(&run(&s).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_sync_states_and_lag_of_a_streaming_standby() {
    let primary = Server::primary();
    populate(&primary).await;
    let standby = Server::standby_of(&primary, "standby1");
    primary
        .wait_for(
            "SELECT state FROM pg_stat_replication WHERE application_name = 'standby1'",
            "streaming",
        )
        .await;
    let (p, s) = (primary.port, standby.port);

    // Roles.
    assert_eq!(
        run(&role(p, PgRole::Primary, None, &[])).await.reason,
        "primary (not in recovery)"
    );
    assert_down(
        &run(&role(s, PgRole::Primary, None, &[])).await,
        "standby (in recovery), wanted primary",
    );
    assert_down(
        &run(&role(p, PgRole::Standby, None, &[])).await,
        "primary (not in recovery), wanted standby",
    );
    let plain = run(&role(s, PgRole::Standby, None, &[])).await;
    assert_up(&plain);
    assert_eq!(
        plain.reason,
        "standby (in recovery, WAL receiver streaming)"
    );
    // The stock SQL check is unaffected by the role and works on the standby too.
    assert_up(&run(&spec(s, CHECKER, CHECKER_PW, "/SELECT ok FROM health")).await);

    // Sync states, as the primary reports them.
    let any = [
        SyncState::Sync,
        SyncState::Potential,
        SyncState::Async,
        SyncState::Quorum,
    ];
    let async_up = run(&role(s, PgRole::Standby, None, &[SyncState::Async])).await;
    assert_up(&async_up);
    assert!(
        async_up
            .reason
            .starts_with("standby, lag 0s, sync_state=async"),
        "{}",
        async_up.reason
    );
    assert_down(
        &run(&role(s, PgRole::Standby, None, &[SyncState::Sync])).await,
        "sync_state=async not in pgsqlsyncstate=sync",
    );

    let sync_state =
        "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'";
    set_sync_standbys(&primary, "standby1").await;
    primary.wait_for(sync_state, "sync").await;
    let sync_up = run(&role(
        s,
        PgRole::Standby,
        None,
        &[SyncState::Sync, SyncState::Potential],
    ))
    .await;
    assert_up(&sync_up);
    assert!(
        sync_up.reason.contains("sync_state=sync"),
        "{}",
        sync_up.reason
    );
    assert_down(
        &run(&role(s, PgRole::Standby, None, &[SyncState::Async])).await,
        "sync_state=sync not in pgsqlsyncstate=async",
    );

    // A higher-priority sync standby that is connected makes ours `potential`: pg_receivewal
    // streams under its own application_name and reports flushes at once.
    let wal_dir = tempfile::tempdir().unwrap();
    if let Some((uid, gid)) = primary.user {
        std::os::unix::fs::chown(wal_dir.path(), Some(uid), Some(gid)).unwrap();
    }
    let mut receivewal = command_as(primary.user, "pg_receivewal")
        .args(["-h", "127.0.0.1", "-U", "repl", "--synchronous", "-n", "-p"])
        .arg(p.to_string())
        .arg("-D")
        .arg(wal_dir.path())
        .env("PGPASSWORD", "repl-pw")
        .env("PGAPPNAME", "receiver")
        .spawn()
        .unwrap();
    set_sync_standbys(&primary, "FIRST 1 (receiver, standby1)").await;
    primary.wait_for(sync_state, "potential").await;
    let potential = run(&role(s, PgRole::Standby, None, &[SyncState::Potential])).await;
    receivewal.kill().unwrap();
    receivewal.wait().unwrap();
    assert_up(&potential);
    assert!(
        potential.reason.contains("sync_state=potential"),
        "{}",
        potential.reason
    );

    set_sync_standbys(&primary, "ANY 1 (standby1, other)").await;
    primary.wait_for(sync_state, "quorum").await;
    assert_up(&run(&role(s, PgRole::Standby, None, &[SyncState::Quorum])).await);
    assert_down(
        &run(&role(s, PgRole::Standby, None, &[SyncState::Sync])).await,
        "sync_state=quorum not in pgsqlsyncstate=sync",
    );
    set_sync_standbys(&primary, "").await;
    primary.wait_for(sync_state, "async").await;
    assert_up(&run(&role(s, PgRole::Standby, None, &any)).await);

    // Lag. An idle primary: the standby has replayed everything, so its lag is 0 however
    // long ago the last transaction was (2 s here, against a 1 s limit).
    let max = Some(Duration::from_secs(1));
    primary
        .sql("CREATE TABLE idle_probe (x int); INSERT INTO idle_probe VALUES (1);")
        .await;
    let flushed = "SELECT pg_current_wal_flush_lsn()::text";
    let position = primary.value(flushed).await;
    standby
        .wait_for(
            &format!("SELECT pg_last_wal_replay_lsn() >= '{position}'::pg_lsn"),
            "t",
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = run(&role(s, PgRole::Standby, max, &[])).await;
    assert_up(&idle);
    assert!(
        idle.reason.starts_with("standby, lag 0s"),
        "{}",
        idle.reason
    );

    // Replay paused while the primary keeps writing: the standby falls behind and its lag
    // grows past the limit.
    standby.sql("SELECT pg_wal_replay_pause()").await;
    standby
        .wait_for("SELECT pg_get_wal_replay_pause_state()", "paused")
        .await;
    primary
        .sql("CREATE TABLE lag_probe (x int); INSERT INTO lag_probe VALUES (1);")
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let lagging = run(&role(s, PgRole::Standby, max, &[])).await;
    eprintln!("lagging standby: {}", lagging.reason);
    assert_down(&lagging, "exceeds pgsqlmaxlag 1s");
    assert!(lagging.reason.contains(", lag "), "{}", lagging.reason);
    // The same standby is fine for a looser limit, and without a limit at all.
    assert_up(
        &run(&role(
            s,
            PgRole::Standby,
            Some(Duration::from_secs(3600)),
            &[],
        ))
        .await,
    );
    assert_up(&run(&role(s, PgRole::Standby, None, &[SyncState::Async])).await);
    // Resumed, it catches up and is back under the limit.
    standby.sql("SELECT pg_wal_replay_resume()").await;
    let position = primary.value(flushed).await;
    standby
        .wait_for(
            &format!("SELECT pg_last_wal_replay_lsn() >= '{position}'::pg_lsn"),
            "t",
        )
        .await;
    assert_up(&run(&role(s, PgRole::Standby, max, &[])).await);

    // Without pg_monitor the replication views hide what the check needs: say so.
    let mut unprivileged = role(s, PgRole::Standby, max, &[]);
    unprivileged.login = "nomonitor".into();
    unprivileged.passwd = "nm-pw".into();
    unprivileged.database = "postgres".into();
    assert_down(&run(&unprivileged).await, "grant pg_monitor to nomonitor");

    // A standby whose primary is gone: in recovery, but no sync state or lag to give.
    drop(primary);
    assert_up(&run(&role(s, PgRole::Standby, None, &[])).await);
    let orphan = run(&role(s, PgRole::Standby, max, &[])).await;
    eprintln!("orphaned standby: {}", orphan.reason);
    assert!(
        !orphan.is_up(),
        "a standby without its primary passed a lag check: {}",
        orphan.reason
    );
}

/// pgsql through the forwarding path (`checkpath=forwarding`): tokio-postgres runs on the
/// check's own socket, which carries the route's mark and the source towards the real, or
/// the namespace's rule refuses it (see `common::in_forwarding_netns`). The server itself
/// says where the session came from and went to.
#[test]
fn pgsql_goes_through_the_forwarding_path() {
    use common::{FWD_MARK, FWD_REAL, FWD_VIP, block_on, forwarded, in_forwarding_netns};
    use ldirectord_checks::route::DIRECT_ANSWERS;
    in_forwarding_netns(|| {
        block_on(async {
            let primary = Server::primary_on("*");
            populate(&primary).await;
            let at = |ip, request: &str| CheckSpec {
                ip,
                ..spec(primary.port, CHECKER, CHECKER_PW, request)
            };
            let vip_and_real = format!(
                "/SELECT 1 WHERE inet_server_addr() = '{FWD_VIP}' AND inet_client_addr() = '{FWD_REAL}'"
            );
            let mut refused = at(FWD_VIP, "/SELECT 1");
            refused.negotiatetimeout = Duration::from_secs(2);
            assert_down(&run(&refused).await, "Connection refused");
            let through = run(&forwarded(&at(FWD_REAL, &vip_and_real), FWD_MARK)).await;
            assert_up(&through);
            assert_eq!(through.reason, "1 row");
            let primary_role = CheckSpec {
                ip: FWD_REAL,
                ..role(primary.port, PgRole::Primary, None, &[])
            };
            assert_up(&run(&forwarded(&primary_role, FWD_MARK)).await);
            let other = run(&forwarded(&at(FWD_REAL, "/SELECT 1"), FWD_MARK + 1)).await;
            assert_down(&other, DIRECT_ANSWERS);
        });
    });
}
