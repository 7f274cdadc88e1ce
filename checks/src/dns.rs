//! `service=dns` negotiate check (§3.4): ask the real server itself.
//!
//! Exchange: one query to the real's check port — over UDP, or over TCP with the 2-byte
//! length prefix (RFC 1035 §4.2.2) when the virtual service is TCP. The query name is the
//! request without its leading `/`: an IP address becomes a PTR query of its reverse name
//! (`in-addr.arpa`/`ip6.arpa`), anything else an A query with recursion desired. The
//! name is taken as absolute: unlike stock (Net::DNS `search`), no resolv.conf search
//! list of the director is appended — a deliberate fix, the check must not depend on the
//! director's own resolver configuration. A truncated UDP answer is asked again over TCP.
//!
//! Up when some answer record is an A record whose address, or a PTR record whose name
//! (without the trailing dot, as Net::DNS prints it), matches `receive`. Without
//! `receive` the check is always down (`Response mismatch`), as in stock: configure one.
//!
//! UDP replies from elsewhere, with another ID or unparsable are ignored (the socket is
//! connected, so only the real's port can answer). The whole exchange is bounded by
//! `negotiatetimeout`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use ldirectord_parsers::config::{Protocol, Receive};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::check::{BoxFuture, BuildError, Checker, Failure, Outcome, bounded};
use crate::proto;
use crate::spec::CheckSpec;

/// Build the check for `spec`. The query is built once; each run gets a fresh ID.
pub fn build(spec: &CheckSpec) -> Result<Arc<dyn Checker>, BuildError> {
    let query = query_for(spec.request_body()).map_err(|e| {
        BuildError::Invalid(format!(
            "dns check: request {:?} is not a valid name: {e}",
            spec.request
        ))
    })?;
    Ok(Arc::new(DnsCheck {
        spec: spec.clone(),
        query,
    }))
}

/// PTR for an address, else A (absolute name).
fn query_for(request: &str) -> Result<Query, String> {
    if let Ok(ip) = request.parse::<IpAddr>() {
        return Ok(Query::query(Name::from(ip), RecordType::PTR));
    }
    let mut name = Name::from_ascii(request).map_err(|e| e.to_string())?;
    name.set_fqdn(true);
    Ok(Query::query(name, RecordType::A))
}

#[derive(Debug)]
struct DnsCheck {
    spec: CheckSpec,
    query: Query,
}

impl Checker for DnsCheck {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(bounded(self.spec.negotiatetimeout, self.run()))
    }
}

impl DnsCheck {
    async fn run(&self) -> Result<String, Failure> {
        let Some(receive) = &self.spec.receive else {
            return Err(Failure::mismatch(
                "Response mismatch (no receive= set: dns checks need one)",
            ));
        };
        let addr = proto::target(&self.spec)?;
        let mut message = Message::query();
        message.metadata.recursion_desired = true;
        message.add_query(self.query.clone());
        let id = message.metadata.id;
        let request = message
            .to_vec()
            .map_err(|e| format!("cannot encode query: {e}"))?;

        let response = if self.spec.protocol == Protocol::Tcp {
            ask_tcp(addr, &request, id).await?
        } else {
            let response = ask_udp(addr, &request, id).await?;
            if response.metadata.truncation {
                ask_tcp(addr, &request, id).await?
            } else {
                response
            }
        };

        judge(&response, receive)
    }
}

/// The verdict on the response that answers our query: up when an A or PTR answer
/// matches `receive`.
pub(crate) fn judge(response: &Message, receive: &Receive) -> Result<String, Failure> {
    let code = response.metadata.response_code;
    if code != ResponseCode::NoError {
        return Err(Failure::protocol(format!(
            "No answer received: {}",
            rcode_name(code)
        )));
    }
    if response.answers.is_empty() {
        return Err(Failure::mismatch("No answer received"));
    }
    let mut seen = Vec::new();
    for record in &response.answers {
        let text = match &record.data {
            RData::A(a) => a.0.to_string(),
            RData::PTR(ptr) => ptr.0.to_utf8().trim_end_matches('.').to_owned(),
            _ => continue,
        };
        if receive.is_match(text.as_bytes()) {
            return Ok("Success".to_owned());
        }
        seen.push(text);
    }
    Err(Failure::mismatch(format!(
        "Response mismatch: {}",
        proto::quote(seen.join(" ").as_bytes())
    )))
}

/// Send over a connected UDP socket and wait for the matching response.
async fn ask_udp(addr: SocketAddr, request: &[u8], id: u16) -> Result<Message, Failure> {
    let socket = proto::connect_udp(addr).await?;
    socket.send(request).await.map_err(proto::io_failure)?;
    let mut buf = vec![0u8; 65_535];
    loop {
        // An ICMP port unreachable surfaces here as `Connection refused`.
        let n = socket.recv(&mut buf).await.map_err(proto::io_failure)?;
        // Late answers to earlier runs, forgeries, garbage: keep waiting.
        if let Some(m) = udp_answer(&buf[..n], id) {
            return Ok(m);
        }
    }
}

/// The response in a UDP datagram, when it parses and answers query `id`.
pub(crate) fn udp_answer(datagram: &[u8], id: u16) -> Option<Message> {
    Message::from_vec(datagram)
        .ok()
        .filter(|m| m.metadata.id == id && m.metadata.message_type == MessageType::Response)
}

/// One query over TCP, length-prefixed both ways.
async fn ask_tcp(addr: SocketAddr, request: &[u8], id: u16) -> Result<Message, Failure> {
    let mut stream = proto::connect_tcp(addr).await?;
    let len = u16::try_from(request.len()).map_err(|_| "query too long".to_owned())?;
    let mut framed = Vec::with_capacity(request.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(request);
    stream.write_all(&framed).await.map_err(proto::io_failure)?;
    read_tcp_answer(&mut stream, id).await
}

/// The length-prefixed response to query `id` read from `stream`.
pub(crate) async fn read_tcp_answer<S: AsyncRead + Unpin>(
    stream: &mut S,
    id: u16,
) -> Result<Message, Failure> {
    let mut len = [0u8; 2];
    stream
        .read_exact(&mut len)
        .await
        .map_err(|e| Failure::connect(tcp_read_reason(&e)))?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream
        .read_exact(&mut buf)
        .await
        .map_err(|e| Failure::connect(tcp_read_reason(&e)))?;
    let message = Message::from_vec(&buf)
        .map_err(|e| Failure::protocol(format!("malformed response: {e}")))?;
    if message.metadata.id != id || message.metadata.message_type != MessageType::Response {
        return Err(Failure::protocol(
            "response does not answer the query (ID mismatch)",
        ));
    }
    Ok(message)
}

/// The mnemonic dig prints for a response code.
fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::FormErr => "FORMERR".to_owned(),
        ResponseCode::ServFail => "SERVFAIL".to_owned(),
        ResponseCode::NXDomain => "NXDOMAIN".to_owned(),
        ResponseCode::NotImp => "NOTIMP".to_owned(),
        ResponseCode::Refused => "REFUSED".to_owned(),
        other => format!("RCODE {}", u16::from(other)),
    }
}

fn tcp_read_reason(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        "connection closed by server".to_owned()
    } else {
        proto::io_reason(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        let q = query_for("www.example.com").unwrap();
        assert_eq!(q.query_type, RecordType::A);
        assert_eq!(q.name.to_utf8(), "www.example.com.");
        let q = query_for("192.0.2.10").unwrap();
        assert_eq!(q.query_type, RecordType::PTR);
        assert_eq!(q.name.to_utf8(), "10.2.0.192.in-addr.arpa.");
        let q = query_for("2001:db8::1").unwrap();
        assert_eq!(q.query_type, RecordType::PTR);
        assert!(q.name.to_utf8().ends_with(".8.b.d.0.1.0.0.2.ip6.arpa."));
        // Single-label names stay as written: no search list.
        assert_eq!(query_for("intranet").unwrap().name.to_utf8(), "intranet.");
        assert!(query_for("a..b").is_err());
    }
}
