//! The real servers of the check-load benchmark (`benches/check_load.rs`), as a separate
//! process so its CPU and memory are not counted as the director's.
//!
//! It listens on the wildcard address, which answers for every 127.0.0.0/8 address; the
//! benchmark runs it inside a private network namespace, so nothing outside can reach it.
//!
//! - `--http PORT`: an HTTP/1.1 server answering every request `200 OK` with body `OK`,
//!   then closing (the check sends `Connection: close`).
//! - `--tcp PORT`: accepts and closes (for connect checks).
//! - `--hung PORT`: accepts and never answers, holding the socket until the client leaves.
//!
//! Prints `ready` on stdout once every listener is bound.
//!
//! `cargo run --release -p ldirectord-checks --example bench_backend -- --http 8080`

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK";

#[derive(Debug, Clone, Copy)]
pub enum Role {
    Http,
    Tcp,
    Hung,
}

/// Parse `--http P --tcp P --hung P` into listeners to run.
pub fn parse_args(args: &[String]) -> Result<Vec<(Role, u16)>, String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let role = match flag.as_str() {
            "--http" => Role::Http,
            "--tcp" => Role::Tcp,
            "--hung" => Role::Hung,
            other => return Err(format!("unknown argument {other}")),
        };
        let port = it
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or(format!("{flag} needs a port"))?;
        out.push((role, port));
    }
    if out.is_empty() {
        return Err("usage: bench_backend [--http PORT] [--tcp PORT] [--hung PORT]".into());
    }
    Ok(out)
}

/// Serve until killed.
pub fn serve(listeners: Vec<(Role, u16)>) -> ! {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        for (role, port) in listeners {
            let addr = SocketAddr::from(([0, 0, 0, 0], port));
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            socket
                .bind(addr)
                .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
            let listener = socket.listen(4096).unwrap();
            tokio::spawn(accept_loop(listener, role));
        }
        println!("ready");
        std::future::pending::<()>().await;
    });
    unreachable!()
}

async fn accept_loop(listener: TcpListener, role: Role) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            // EMFILE and friends: back off instead of spinning.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        match role {
            Role::Tcp => drop(stream),
            Role::Http => {
                tokio::spawn(http(stream));
            }
            Role::Hung => {
                tokio::spawn(hung(stream));
            }
        }
    }
}

async fn http(mut stream: TcpStream) {
    let mut buf = [0u8; 2048];
    let mut seen = 0;
    // Read the request head; the check sends no body.
    loop {
        match stream.read(&mut buf[seen..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen += n,
        }
        if buf[..seen].windows(4).any(|w| w == b"\r\n\r\n") || seen == buf.len() {
            break;
        }
    }
    let _ = stream.write_all(RESPONSE).await;
    let _ = stream.shutdown().await;
}

async fn hung(mut stream: TcpStream) {
    let mut buf = [0u8; 512];
    // Never answer; leave when the checker gives up and closes.
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

#[allow(dead_code)] // Unused when the benchmark includes this file as a module.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_args(&args) {
        Ok(listeners) => serve(listeners),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
}
