//! The userspace engine against real TCP backends on loopback: every backend answers each
//! line it receives with its own name, so a client sees which real served it. Schedulers
//! that are deterministic are asserted exactly; counters are read back through `dump()`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ldirectord::engine::userspace::UserspaceEngine;
use ldirectord::engine::{
    DestSpec, Engine, EngineError, IpProto, Netmask, Op, SchedFlags, ServiceKey, ServiceSpec,
};
use ldirectord_parsers::config::{Family, Forward};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// A backend that answers every line with `NAME\n` until the client closes.
struct Backend {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn backend(name: &'static str) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(_)) = lines.next_line().await {
                    if write
                        .write_all(format!("{name}\n").as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Backend { addr, task }
}

/// A client connection through the virtual service.
struct Client {
    lines: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    write: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    async fn connect(vip: SocketAddr) -> Client {
        Client::from(TcpStream::connect(vip).await.unwrap())
    }

    /// Connect from a chosen loopback source address (any of 127.0.0.0/8 works).
    async fn connect_from(source: Ipv4Addr, vip: SocketAddr) -> Client {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(source.into(), 0)).unwrap();
        Client::from(socket.connect(vip).await.unwrap())
    }

    fn from(stream: TcpStream) -> Client {
        let (read, write) = stream.into_split();
        Client {
            lines: BufReader::new(read).lines(),
            write,
        }
    }

    /// Send a line; the name of the backend that answered, or `None` if the connection
    /// was closed.
    async fn ask(&mut self) -> Option<String> {
        self.write.write_all(b"hello\n").await.ok()?;
        self.lines.next_line().await.ok().flatten()
    }
}

/// One request on a new connection.
async fn ask_once(vip: SocketAddr) -> Option<String> {
    Client::connect(vip).await.ask().await
}

/// `count` requests on new connections that stay open (kept in `held`); who answered.
async fn ask_and_hold(vip: SocketAddr, count: usize, held: &mut Vec<Client>) -> Vec<String> {
    let mut got = Vec::new();
    for _ in 0..count {
        let mut client = Client::connect(vip).await;
        got.push(client.ask().await.unwrap());
        held.push(client);
    }
    got
}

#[path = "fixtures/ports.rs"]
mod ports;
/// A loopback port nobody listens on right now.
use ports::free_loopback_port as free_port;

fn tcp(ip: IpAddr, port: u16) -> ServiceKey {
    ServiceKey::Inet {
        proto: IpProto::Tcp,
        ip,
        port,
    }
}

fn service(key: ServiceKey, scheduler: &str) -> ServiceSpec {
    ServiceSpec::new(key, scheduler)
}

fn real(addr: SocketAddr, weight: u32) -> DestSpec {
    DestSpec {
        ip: addr.ip(),
        port: addr.port(),
        forward: Forward::Masq,
        weight,
        upper: 0,
        lower: 0,
    }
}

/// A virtual on a fresh loopback port with the given reals; returns the engine and VIP.
async fn virtual_with(
    spec: impl FnOnce(ServiceKey) -> ServiceSpec,
    reals: &[DestSpec],
) -> (UserspaceEngine, SocketAddr) {
    let port = free_port();
    let key = tcp(Ipv4Addr::LOCALHOST.into(), port);
    let mut engine = UserspaceEngine::new();
    engine.apply(&Op::AddService(spec(key))).await.unwrap();
    for r in reals {
        engine.apply(&Op::AddDest(key, *r)).await.unwrap();
    }
    (engine, SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port))
}

fn key_of(vip: SocketAddr) -> ServiceKey {
    tcp(vip.ip(), vip.port())
}

/// (active, inactive) of the real at `addr`, as `dump()` reports them.
async fn conns(engine: &mut UserspaceEngine, vip: SocketAddr, addr: SocketAddr) -> (u32, u32) {
    let table = engine.dump().await.unwrap();
    let entry = table.service(&key_of(vip)).unwrap();
    let d = entry
        .dests
        .iter()
        .find(|d| d.spec.ip == addr.ip() && d.spec.port == addr.port())
        .unwrap();
    (d.active_conns, d.inactive_conns)
}

/// Wait (bounded, so a bug fails instead of hanging) until `addr` has no connections.
async fn until_idle(engine: &mut UserspaceEngine, vip: SocketAddr, addr: SocketAddr) {
    for _ in 0..500 {
        if conns(engine, vip, addr).await == (0, 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "{addr} still has connections: {:?}",
        conns(engine, vip, addr).await
    );
}

async fn sequence(vip: SocketAddr, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(ask_once(vip).await.expect("an answer"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrr_spreads_new_connections_by_weight() {
    let (a, b) = (backend("a").await, backend("b").await);
    let (_engine, vip) =
        virtual_with(|k| service(k, "wrr"), &[real(a.addr, 3), real(b.addr, 1)]).await;
    let got = sequence(vip, 40).await;
    // The kernel's interleaving: a a a b, repeated.
    for (i, name) in got.iter().enumerate() {
        assert_eq!(
            name,
            if i % 4 == 3 { "b" } else { "a" },
            "connection {i}: {got:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rr_alternates_and_skips_a_quiesced_real() {
    let (a, b, c) = (backend("a").await, backend("b").await, backend("c").await);
    let reals = [real(a.addr, 1), real(b.addr, 5), real(c.addr, 0)];
    let (_engine, vip) = virtual_with(|k| service(k, "rr"), &reals).await;
    assert_eq!(sequence(vip, 6).await, ["a", "b", "a", "b", "a", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lc_sends_new_connections_to_the_least_busy_real() {
    let (a, b) = (backend("a").await, backend("b").await);
    let (mut engine, vip) =
        virtual_with(|k| service(k, "lc"), &[real(a.addr, 1), real(b.addr, 1)]).await;
    let mut first = Client::connect(vip).await;
    assert_eq!(first.ask().await.as_deref(), Some("a")); // tie → table order
    let mut second = Client::connect(vip).await;
    assert_eq!(second.ask().await.as_deref(), Some("b"));
    let mut third = Client::connect(vip).await;
    assert_eq!(third.ask().await.as_deref(), Some("a")); // 1:1 again → first
    drop(first);
    drop(third);
    until_idle(&mut engine, vip, a.addr).await;
    // a is idle now and b still holds `second`: a wins as long as it is idle again.
    for _ in 0..3 {
        assert_eq!(ask_once(vip).await.as_deref(), Some("a"));
        until_idle(&mut engine, vip, a.addr).await;
    }
    assert_eq!(second.ask().await.as_deref(), Some("b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sed_and_nq_weigh_expected_delay() {
    let (a, b) = (backend("a").await, backend("b").await);
    let reals = [real(a.addr, 1), real(b.addr, 3)];
    // sed: (active+1)/weight: b (1/3 < 1), b (2/3 < 1), then a tie 1 = 3/3 → a.
    let (_sed, vip) = virtual_with(|k| service(k, "sed"), &reals).await;
    let mut held = Vec::new();
    assert_eq!(ask_and_hold(vip, 3, &mut held).await, ["b", "b", "a"]);
    // nq: an idle real first (a, then b), then as sed: 2/1 vs 2/3 → b.
    let (_nq, vip) = virtual_with(|k| service(k, "nq"), &reals).await;
    assert_eq!(ask_and_hold(vip, 3, &mut held).await, ["a", "b", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wlc_weighs_connections_by_weight() {
    let (a, b) = (backend("a").await, backend("b").await);
    let (_engine, vip) =
        virtual_with(|k| service(k, "wlc"), &[real(a.addr, 1), real(b.addr, 2)]).await;
    let mut held = Vec::new();
    let got = ask_and_hold(vip, 6, &mut held).await;
    // 0/1 vs 0/2 → a; 1/1 vs 0/2 → b; 1/1 vs 1/2 → b; 1/1 vs 2/2 tie → a; 2/1 vs 2/2 → b;
    // 2/1 vs 3/2 → b.
    assert_eq!(got, ["a", "b", "b", "a", "b", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sh_keeps_each_source_on_one_real_and_spreads_sources() {
    let (a, b) = (backend("a").await, backend("b").await);
    let (_engine, vip) =
        virtual_with(|k| service(k, "sh"), &[real(a.addr, 1), real(b.addr, 1)]).await;
    let mut per_real = std::collections::HashMap::new();
    for last in 1..=32u8 {
        let source = Ipv4Addr::new(127, 0, 1, last);
        let first = Client::connect_from(source, vip).await.ask().await.unwrap();
        for _ in 0..3 {
            let again = Client::connect_from(source, vip).await.ask().await.unwrap();
            assert_eq!(again, first, "source {source}");
        }
        *per_real.entry(first).or_insert(0) += 1;
    }
    assert_eq!(
        per_real.len(),
        2,
        "32 sources all hashed to one real: {per_real:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiescent_real_keeps_its_established_connections() {
    let (a, b) = (backend("a").await, backend("b").await);
    let (mut engine, vip) =
        virtual_with(|k| service(k, "wrr"), &[real(a.addr, 1), real(b.addr, 1)]).await;
    let mut established = Client::connect(vip).await;
    assert_eq!(established.ask().await.as_deref(), Some("a"));
    let mut quiesced = real(a.addr, 0);
    quiesced.upper = 0;
    engine
        .apply(&Op::QuiesceDest(key_of(vip), quiesced))
        .await
        .unwrap();
    assert!(sequence(vip, 10).await.iter().all(|n| n == "b"));
    // The quiesced real still serves the connection it had.
    for _ in 0..3 {
        assert_eq!(established.ask().await.as_deref(), Some("a"));
    }
    let table = engine.dump().await.unwrap();
    let dest = &table.service(&key_of(vip)).unwrap().dests[0];
    assert_eq!((dest.spec.weight, dest.active_conns), (0, 1));
    // Restoring the weight brings new connections back (wrr restarts its cycle at a).
    engine
        .apply(&Op::EditDest(key_of(vip), real(a.addr, 1)))
        .await
        .unwrap();
    assert_eq!(sequence(vip, 4).await, ["a", "b", "a", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_edit_applies_to_new_connections_only() {
    let (a, b) = (backend("a").await, backend("b").await);
    let (mut engine, vip) =
        virtual_with(|k| service(k, "wrr"), &[real(a.addr, 1), real(b.addr, 1)]).await;
    let mut established = Client::connect(vip).await;
    assert_eq!(established.ask().await.as_deref(), Some("a"));
    engine
        .apply(&Op::EditDest(key_of(vip), real(b.addr, 3)))
        .await
        .unwrap();
    assert_eq!(
        sequence(vip, 8).await,
        ["b", "b", "a", "b", "b", "b", "a", "b"]
    );
    assert_eq!(established.ask().await.as_deref(), Some("a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_real_closes_its_connections() {
    let (a, b) = (backend("a").await, backend("b").await);
    let (mut engine, vip) =
        virtual_with(|k| service(k, "rr"), &[real(a.addr, 1), real(b.addr, 1)]).await;
    let mut on_a = Client::connect(vip).await;
    assert_eq!(on_a.ask().await.as_deref(), Some("a"));
    let mut on_b = Client::connect(vip).await;
    assert_eq!(on_b.ask().await.as_deref(), Some("b"));
    engine
        .apply(&Op::DelDest {
            service: key_of(vip),
            ip: a.addr.ip(),
            port: a.addr.port(),
        })
        .await
        .unwrap();
    assert_eq!(
        on_a.ask().await,
        None,
        "the deleted real's connection must end"
    );
    assert_eq!(on_b.ask().await.as_deref(), Some("b"));
    assert!(sequence(vip, 4).await.iter().all(|n| n == "b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_serves_alone_and_hands_back() {
    let (real_a, fallback) = (backend("a").await, backend("fallback").await);
    // What the director leaves when no real is up: only the fallback, weight 1.
    let (mut engine, vip) = virtual_with(|k| service(k, "wlc"), &[real(fallback.addr, 1)]).await;
    assert!(sequence(vip, 3).await.iter().all(|n| n == "fallback"));
    // A real comes up: it is added, then the fallback is deleted.
    let key = key_of(vip);
    engine
        .apply(&Op::AddDest(key, real(real_a.addr, 1)))
        .await
        .unwrap();
    let (ip, port) = (fallback.addr.ip(), fallback.addr.port());
    engine
        .apply(&Op::DelDest {
            service: key,
            ip,
            port,
        })
        .await
        .unwrap();
    assert!(sequence(vip, 3).await.iter().all(|n| n == "a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistence_keeps_a_client_group_on_one_real() {
    let (a, b) = (backend("a").await, backend("b").await);
    let persistent = |k| ServiceSpec {
        persistent: Some(300),
        netmask: Some(Netmask::V4(Ipv4Addr::new(255, 255, 255, 0))),
        ..service(k, "rr")
    };
    let (mut engine, vip) = virtual_with(persistent, &[real(a.addr, 1), real(b.addr, 1)]).await;
    // Plain rr would alternate; clients of 127.0.2.0/24 stick to the first choice.
    let first = Client::connect_from(Ipv4Addr::new(127, 0, 2, 1), vip)
        .await
        .ask()
        .await
        .unwrap();
    for last in 2..=8 {
        let source = Ipv4Addr::new(127, 0, 2, last);
        let got = Client::connect_from(source, vip).await.ask().await.unwrap();
        assert_eq!(got, first, "source {source}");
    }
    // Another group is scheduled on its own: rr moves on to the other real.
    let other = Client::connect_from(Ipv4Addr::new(127, 0, 3, 1), vip)
        .await
        .ask()
        .await
        .unwrap();
    assert_ne!(other, first);
    // A quiesced real does not keep its persistent clients.
    let sticky = if first == "a" { a.addr } else { b.addr };
    engine
        .apply(&Op::QuiesceDest(key_of(vip), real(sticky, 0)))
        .await
        .unwrap();
    let moved = Client::connect_from(Ipv4Addr::new(127, 0, 2, 1), vip)
        .await
        .ask()
        .await
        .unwrap();
    assert_eq!(moved, other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upper_threshold_marks_a_real_overloaded() {
    let (a, b) = (backend("a").await, backend("b").await);
    let mut limited = real(a.addr, 1);
    limited.upper = 1;
    let (mut engine, vip) = virtual_with(|k| service(k, "rr"), &[limited, real(b.addr, 1)]).await;
    let mut on_a = Client::connect(vip).await;
    assert_eq!(on_a.ask().await.as_deref(), Some("a"));
    // a is at its threshold: rr skips it while that connection is open.
    assert_eq!(sequence(vip, 3).await, ["b", "b", "b"]);
    drop(on_a);
    until_idle(&mut engine, vip, a.addr).await;
    assert_eq!(sequence(vip, 2).await, ["a", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_returns_the_table_with_connection_counts() {
    let (a, b) = (backend("a").await, backend("b").await);
    let spec = |k| ServiceSpec {
        sched_flags: SchedFlags::parse("sh-fallback"),
        ..service(k, "rr")
    };
    let reals = [real(a.addr, 2), real(b.addr, 1)];
    let (mut engine, vip) = virtual_with(spec, &reals).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(vip).await;
        c.ask().await.unwrap();
        held.push(c);
    }
    let table = engine.dump().await.unwrap();
    assert_eq!(table.services.len(), 1);
    let entry = &table.services[0];
    assert_eq!(entry.spec, spec(key_of(vip)));
    let specs: Vec<DestSpec> = entry.dests.iter().map(|d| d.spec).collect();
    assert_eq!(specs, reals);
    let counts: Vec<(u32, u32)> = entry
        .dests
        .iter()
        .map(|d| (d.active_conns, d.inactive_conns))
        .collect();
    assert_eq!(counts, [(2, 0), (1, 0)]);
    drop(held);
    until_idle(&mut engine, vip, a.addr).await;
    until_idle(&mut engine, vip, b.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_virtual_stops_its_listener_and_connections() {
    let a = backend("a").await;
    let (mut engine, vip) = virtual_with(|k| service(k, "rr"), &[real(a.addr, 1)]).await;
    let mut established = Client::connect(vip).await;
    assert_eq!(established.ask().await.as_deref(), Some("a"));
    engine.apply(&Op::DelService(key_of(vip))).await.unwrap();
    assert_eq!(established.ask().await, None);
    assert!(TcpStream::connect(vip).await.is_err(), "still listening");
    assert_eq!(engine.dump().await.unwrap().services.len(), 0);
    // The address can be taken again at once (a restart or reload does that).
    engine
        .apply(&Op::AddService(service(key_of(vip), "rr")))
        .await
        .unwrap();
    engine
        .apply(&Op::AddDest(key_of(vip), real(a.addr, 1)))
        .await
        .unwrap();
    assert_eq!(ask_once(vip).await.as_deref(), Some("a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_virtual_refuses_connections() {
    let (_engine, vip) = virtual_with(|k| service(k, "wlc"), &[]).await;
    assert_eq!(ask_once(vip).await, None);
}

fn rejected_message(e: EngineError) -> (String, String, Option<i32>) {
    match e {
        EngineError::Rejected { op, message, errno } => {
            (op, message, errno.map(|errno| errno as i32))
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_address_not_on_this_host_is_a_clear_error() {
    let mut engine = UserspaceEngine::new();
    let key = tcp("192.0.2.10".parse().unwrap(), 80);
    let e = engine
        .apply(&Op::AddService(service(key, "wrr")))
        .await
        .unwrap_err();
    let (op, message, _) = rejected_message(e);
    assert_eq!(op, "add virtual service -t 192.0.2.10:80");
    assert_eq!(
        message,
        "cannot listen on 192.0.2.10:80: Cannot assign requested address (the userspace \
         engine needs the virtual address on this host)"
    );
    assert!(engine.dump().await.unwrap().services.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_only_features_are_refused_with_the_reason() {
    let mut engine = UserspaceEngine::new();
    let port = free_port();
    let lo: IpAddr = Ipv4Addr::LOCALHOST.into();
    let e = engine
        .apply(&Op::AddService(service(tcp(lo, port), "lblc")))
        .await
        .unwrap_err();
    assert_eq!(
        rejected_message(e).1,
        "scheduler lblc is not supported by the userspace engine; supported: rr, wrr, lc, \
         wlc, sh, sed, nq"
    );
    let udp = ServiceKey::Inet {
        proto: IpProto::Udp,
        ip: lo,
        port,
    };
    let e = engine
        .apply(&Op::AddService(service(udp, "wrr")))
        .await
        .unwrap_err();
    assert_eq!(
        rejected_message(e).1,
        "UDP virtual services are not supported by the userspace engine (it relays TCP); \
         use --engine netlink or --engine ipvsadm"
    );
    let fwmark = ServiceKey::Fwmark {
        mark: 5,
        family: Family::Inet,
    };
    let e = engine
        .apply(&Op::AddService(service(fwmark, "wrr")))
        .await
        .unwrap_err();
    assert!(
        rejected_message(e)
            .1
            .starts_with("fwmark virtual services are not supported")
    );
    assert!(engine.dump().await.unwrap().services.is_empty());
    // An edit to an unsupported scheduler is refused too and leaves the service alone.
    engine
        .apply(&Op::AddService(service(tcp(lo, port), "wrr")))
        .await
        .unwrap();
    let e = engine
        .apply(&Op::EditService(service(tcp(lo, port), "mh")))
        .await
        .unwrap_err();
    assert!(
        rejected_message(e)
            .1
            .starts_with("scheduler mh is not supported")
    );
    assert_eq!(
        engine.dump().await.unwrap().services[0].spec.scheduler,
        "wrr"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_errors_mirror_the_kernel() {
    let a = backend("a").await;
    let (mut engine, vip) = virtual_with(|k| service(k, "wrr"), &[real(a.addr, 1)]).await;
    let key = key_of(vip);
    let errno = |e: EngineError| rejected_message(e).2;
    let again = engine.apply(&Op::AddService(service(key, "wrr"))).await;
    assert_eq!(errno(again.unwrap_err()), Some(17)); // EEXIST
    let dup = engine.apply(&Op::AddDest(key, real(a.addr, 2))).await;
    assert_eq!(errno(dup.unwrap_err()), Some(17));
    let missing = tcp(vip.ip(), free_port());
    let no_service = engine.apply(&Op::AddDest(missing, real(a.addr, 1))).await;
    assert_eq!(errno(no_service.unwrap_err()), Some(3)); // ESRCH
    let other: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let no_real = engine.apply(&Op::EditDest(key, real(other, 1))).await;
    assert_eq!(errno(no_real.unwrap_err()), Some(2)); // ENOENT
    let mut bad = real(a.addr, 1);
    (bad.upper, bad.lower) = (5, 10);
    let range = engine.apply(&Op::EditDest(key, bad)).await;
    assert_eq!(errno(range.unwrap_err()), Some(34)); // ERANGE
    // None of that changed the table.
    let dests = &engine.dump().await.unwrap().services[0].dests;
    assert_eq!(
        dests.iter().map(|d| d.spec).collect::<Vec<_>>(),
        [real(a.addr, 1)]
    );
}
