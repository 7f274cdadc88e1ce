//! Run N HTTP negotiate checks against one backend, for profiling the checker's CPU cost:
//! `cargo run --release -p ldirectord-checks --example http_profile -- 127.0.0.1:18080 5000`.
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldirectord_checks::{CheckSpec, build};
use ldirectord_parsers::config::{CheckType, Receive, Service};

fn main() {
    let mut args = std::env::args().skip(1);
    let addr: std::net::SocketAddr = args.next().expect("ADDR:PORT").parse().expect("an address");
    let n: usize = args
        .next()
        .map(|s| s.parse().expect("a count"))
        .unwrap_or(2000);
    let spec = CheckSpec::new(CheckType::Negotiate, Service::Http, addr.ip(), addr.port())
        .with_receive(Receive::new("OK").unwrap())
        .with_timeout(Duration::from_secs(2));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let checker = build(&spec).unwrap().unwrap();
    let start = Instant::now();
    let up = rt.block_on(async {
        let mut up = 0;
        for _ in 0..n {
            let c = Arc::clone(&checker);
            if c.check().await.is_up() {
                up += 1;
            }
        }
        up
    });
    println!("{up}/{n} up in {:?}", start.elapsed());
}
