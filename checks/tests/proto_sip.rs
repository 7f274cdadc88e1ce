//! sip negotiate checks. No SIP server in Debian answers OPTIONS from a throw-away
//! config in a test, so a small UAS inside the test does: it parses the request as a
//! SIP server would, checks that it is a well-formed OPTIONS (RFC 3261 §8.1.1: Via with
//! a magic-cookie branch, Max-Forwards, To, From with tag, Call-ID, CSeq, Contact,
//! Content-Length), and answers with the response the test asks for, echoing Via, From,
//! To, Call-ID and CSeq as RFC 3261 §8.2.6 requires.

mod proto_support;

use std::net::SocketAddr;

use ldirectord_checks::CheckSpec;
use ldirectord_parsers::config::{Protocol, Service};
use proto_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// Parse an OPTIONS request, check it and build the response with `status`.
fn answer(request: &str, peer: SocketAddr, status: &str) -> Result<String, String> {
    let (head, body) = request
        .split_once("\r\n\r\n")
        .ok_or("no blank line after the headers")?;
    if !body.is_empty() {
        return Err(format!("unexpected body {body:?}"));
    }
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, uri, version) = (parts.next(), parts.next(), parts.next());
    if method != Some("OPTIONS")
        || !uri.is_some_and(|u| u.starts_with("sip:"))
        || version != Some("SIP/2.0")
    {
        return Err(format!("bad request line {request_line:?}"));
    }
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (name, value) = l.split_once(':').ok_or(format!("bad header line {l:?}"))?;
            Ok((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect::<Result<_, String>>()?;
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or(format!("no {name} header"))
    };
    let via = get("via")?;
    let sent_by = via
        .strip_prefix("SIP/2.0/UDP ")
        .ok_or(format!("bad Via {via:?}"))?;
    let (host_port, params) = sent_by.split_once(';').ok_or("Via without parameters")?;
    if host_port != peer.to_string() {
        return Err(format!(
            "Via sent-by {host_port} is not the client's address {peer}"
        ));
    }
    if !params.starts_with("branch=z9hG4bK") {
        return Err(format!("Via branch without magic cookie: {params:?}"));
    }
    if get("max-forwards")? != "70" {
        return Err("Max-Forwards is not 70".into());
    }
    let from = get("from")?;
    if !from.contains(";tag=") {
        return Err("From without tag".into());
    }
    let call_id = get("call-id")?;
    if call_id.len() != 16 || !call_id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("Call-ID {call_id:?} is not 16 hex digits"));
    }
    let cseq = get("cseq")?;
    if cseq != "63104 OPTIONS" {
        return Err(format!("CSeq {cseq:?}"));
    }
    get("contact")?;
    if get("accept")? != "application/sdp" || get("content-length")? != "0" {
        return Err("Accept or Content-Length wrong".into());
    }
    let to = get("to")?;
    Ok(format!(
        "SIP/2.0 {status}\r\nVia: {via};received={ip}\r\nFrom: {from}\r\nTo: {to};tag=uas1\r\nCall-ID: {call_id}\r\n\
         CSeq: {cseq}\r\nAllow: INVITE, ACK, CANCEL, OPTIONS, BYE\r\nContent-Length: 0\r\n\r\n",
        ip = peer.ip(),
    ))
}

/// Serve one OPTIONS over UDP; the request check's verdict goes to the returned channel.
async fn udp_uas(status: &'static str) -> (u16, oneshot::Receiver<Result<String, String>>) {
    let socket = tokio::net::UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        let (n, peer) = socket.recv_from(&mut buf).await.unwrap();
        let request = String::from_utf8_lossy(&buf[..n]).into_owned();
        let verdict = answer(&request, peer, status);
        if let Ok(response) = &verdict {
            socket.send_to(response.as_bytes(), peer).await.unwrap();
        }
        let _ = tx.send(verdict.map(|_| request));
    });
    (port, rx)
}

/// Serve one OPTIONS over TCP.
async fn tcp_uas(status: &'static str) -> (u16, oneshot::Receiver<Result<String, String>>) {
    let listener = tokio::net::TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, peer) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let request = String::from_utf8_lossy(&request).into_owned();
        let verdict = answer(&request, peer, status);
        if let Ok(response) = &verdict {
            stream.write_all(response.as_bytes()).await.unwrap();
        }
        let _ = tx.send(verdict.map(|_| request));
    });
    (port, rx)
}

fn sip(port: u16, protocol: Protocol) -> CheckSpec {
    let mut spec = spec(Service::Sip, port);
    spec.protocol = protocol;
    spec.login = "ldirectord@lb1".to_owned();
    spec
}

#[tokio::test]
async fn up_on_200_ok_over_udp() {
    let (port, seen) = udp_uas("200 OK").await;
    let outcome = run(&sip(port, Protocol::Udp)).await;
    let request = seen.await.unwrap().expect("a well-formed OPTIONS");
    assert_up(&outcome);
    assert_eq!(outcome.reason, "SIP/2.0 200 OK");
    assert!(
        request.starts_with("OPTIONS sip:ldirectord@lb1 SIP/2.0\r\n"),
        "{request}"
    );
    assert!(
        request.contains("\r\nFrom: <sip:ldirectord@lb1>;tag=1928301774\r\n"),
        "{request}"
    );
}

#[tokio::test]
async fn up_on_200_ok_over_tcp() {
    let (port, seen) = tcp_uas("200 OK").await;
    let outcome = run(&sip(port, Protocol::Tcp)).await;
    seen.await.unwrap().expect("a well-formed OPTIONS");
    assert_up(&outcome);
}

#[tokio::test]
async fn down_on_an_error_response() {
    let (port, seen) = udp_uas("404 Not Found").await;
    let outcome = run(&sip(port, Protocol::Udp)).await;
    seen.await.unwrap().expect("a well-formed OPTIONS");
    assert_down(&outcome, "SIP/2.0 404 Not Found");
    let (port, _seen) = tcp_uas("503 Service Unavailable").await;
    assert_down(
        &run(&sip(port, Protocol::Tcp)).await,
        "SIP/2.0 503 Service Unavailable",
    );
}

#[tokio::test]
async fn down_on_closed_port() {
    assert_down(
        &run(&sip(free_port(), Protocol::Udp)).await,
        "Connection refused",
    );
    assert_down(
        &run(&sip(free_port(), Protocol::Tcp)).await,
        "Connection refused",
    );
}

#[tokio::test]
async fn down_within_timeout_when_server_hangs() {
    let udp = hung_udp();
    assert_timed_out(&run(&short(sip(udp.port, Protocol::Udp))).await);
    let tcp = hung_tcp();
    assert_timed_out(&run(&short(sip(tcp.port, Protocol::Tcp))).await);
}

#[tokio::test]
async fn down_on_garbage() {
    let listener = tokio::net::TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let _ = s.write_all(b"\x16\x03\x01 not sip at all\r\n").await;
    });
    let outcome = run(&short(sip(port, Protocol::Tcp))).await;
    assert!(
        !outcome.is_up() && !outcome.reason.contains("timed out"),
        "{}",
        outcome.reason
    );
}
