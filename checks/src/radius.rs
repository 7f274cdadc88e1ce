//! `service=radius` negotiate check (§3.4): one RFC 2865 authentication.
//!
//! Exchange: an Access-Request over UDP to the real's check port with a random Identifier
//! and Request Authenticator, User-Name = `login`, User-Password = `passwd` hidden with
//! MD5(secret ‖ authenticator) (RFC 2865 §5.2), NAS-IP-Address = the local address of
//! the socket (NAS-IPv6-Address towards an IPv6 real), and a Message-Authenticator
//! (RFC 3579 §3.2; servers hardened against BlastRADIUS require it, older ones ignore it).
//!
//! Up only on an Access-Accept whose Identifier matches and whose Response Authenticator
//! (and Message-Authenticator, when present) verifies with `secret`. Access-Reject,
//! Access-Challenge, a reply that does not verify (usually a wrong `secret`), ICMP
//! unreachable or silence → down. Datagrams with another Identifier or malformed are
//! ignored.
//!
//! Timeout: stock waits `negotiatetimeout` for one reply inside an alarm of
//! `checktimeout`, so its bound is the smaller of the two. Ours bounds the whole check by
//! `min(checktimeout, negotiatetimeout)` too, and within it retransmits the identical
//! request (RFC 2865 §2.4: same Identifier and authenticator, so the server answers it
//! once) after a third of the bound, at least [`MIN_RETRANSMIT`] apart: one lost datagram
//! does not fail the check.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use md5::{Digest, Md5};

use crate::check::{BoxFuture, BuildError, Checker, Failure, Outcome, bounded};
use crate::proto;
use crate::spec::CheckSpec;

const ACCESS_REQUEST: u8 = 1;
const ACCESS_ACCEPT: u8 = 2;
const ACCESS_REJECT: u8 = 3;
const ACCESS_CHALLENGE: u8 = 11;

const USER_NAME: u8 = 1;
const USER_PASSWORD: u8 = 2;
const NAS_IP_ADDRESS: u8 = 4;
const MESSAGE_AUTHENTICATOR: u8 = 80;
const NAS_IPV6_ADDRESS: u8 = 95;

/// The shortest wait before a retransmission.
pub const MIN_RETRANSMIT: Duration = Duration::from_millis(500);

/// RFC 2865 §3: the largest RADIUS packet.
pub(crate) const MAX_PACKET: usize = 4096;
/// RFC 2865 §5.2: the hidden password is at most 128 octets.
const MAX_PASSWORD: usize = 128;

/// Build the check for `spec`. Values that cannot be encoded are configuration errors.
pub fn build(spec: &CheckSpec) -> Result<Arc<dyn Checker>, BuildError> {
    if spec.login.len() > 253 {
        return Err(BuildError::Invalid(
            "radius check: login is longer than 253 bytes".into(),
        ));
    }
    if spec.passwd.len() > MAX_PASSWORD {
        return Err(BuildError::Invalid(format!(
            "radius check: passwd is longer than {MAX_PASSWORD} bytes"
        )));
    }
    Ok(Arc::new(RadiusCheck { spec: spec.clone() }))
}

#[derive(Debug)]
struct RadiusCheck {
    spec: CheckSpec,
}

impl Checker for RadiusCheck {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(bounded(self.bound(), self.run()))
    }
}

impl RadiusCheck {
    fn bound(&self) -> Duration {
        self.spec.checktimeout.min(self.spec.negotiatetimeout)
    }

    async fn run(&self) -> Result<String, Failure> {
        let addr = proto::target(&self.spec)?;
        let socket = proto::connect_udp(addr).await?;
        let nas = socket.local_addr().map_err(proto::io_failure)?.ip();

        let identifier: u8 = rand::random();
        let authenticator: [u8; 16] = rand::random();
        let secret = self.spec.secret.as_bytes();
        let request = access_request(
            identifier,
            &authenticator,
            &self.spec.login,
            &self.spec.passwd,
            nas,
            secret,
        );

        let mut buf = vec![0u8; MAX_PACKET];
        loop {
            socket.send(&request).await.map_err(proto::io_failure)?;
            let wait = tokio::time::timeout((self.bound() / 3).max(MIN_RETRANSMIT), async {
                loop {
                    // ICMP port unreachable surfaces here as `Connection refused`.
                    let n = socket.recv(&mut buf).await.map_err(proto::io_failure)?;
                    if let Some(verdict) = judge(&buf[..n], identifier, &authenticator, secret) {
                        return verdict;
                    }
                }
            });
            match wait.await {
                Ok(verdict) => return verdict,
                // Retransmit; the outer bound ends the loop.
                Err(_) => continue,
            }
        }
    }
}

/// Encode the Access-Request.
fn access_request(
    identifier: u8,
    authenticator: &[u8; 16],
    login: &str,
    passwd: &str,
    nas: IpAddr,
    secret: &[u8],
) -> Vec<u8> {
    let mut packet = vec![ACCESS_REQUEST, identifier, 0, 0];
    packet.extend_from_slice(authenticator);
    push_attribute(&mut packet, USER_NAME, login.as_bytes());
    push_attribute(
        &mut packet,
        USER_PASSWORD,
        &hide_password(passwd.as_bytes(), secret, authenticator),
    );
    match nas {
        IpAddr::V4(v4) => push_attribute(&mut packet, NAS_IP_ADDRESS, &v4.octets()),
        IpAddr::V6(v6) => push_attribute(&mut packet, NAS_IPV6_ADDRESS, &v6.octets()),
    }
    // Message-Authenticator: HMAC-MD5 of the whole packet with this field zeroed.
    let at = packet.len() + 2;
    push_attribute(&mut packet, MESSAGE_AUTHENTICATOR, &[0u8; 16]);
    set_length(&mut packet);
    let mac = hmac_md5(secret, &packet);
    packet[at..at + 16].copy_from_slice(&mac);
    packet
}

fn push_attribute(packet: &mut Vec<u8>, kind: u8, value: &[u8]) {
    // Lengths are checked in build(): at most 253 bytes of value.
    packet.push(kind);
    packet.push((value.len() + 2) as u8);
    packet.extend_from_slice(value);
}

fn set_length(packet: &mut [u8]) {
    let len = packet.len() as u16;
    packet[2..4].copy_from_slice(&len.to_be_bytes());
}

/// RFC 2865 §5.2: pad to a multiple of 16 with NULs (an empty password is one block),
/// then c(i) = p(i) xor MD5(secret ‖ c(i-1)), with c(0) = the Request Authenticator.
fn hide_password(password: &[u8], secret: &[u8], authenticator: &[u8; 16]) -> Vec<u8> {
    let blocks = password.len().div_ceil(16).max(1);
    let mut hidden = password.to_vec();
    hidden.resize(blocks * 16, 0);
    let mut previous: [u8; 16] = *authenticator;
    for block in hidden.chunks_mut(16) {
        let mut md5 = Md5::new();
        md5.update(secret);
        md5.update(previous);
        let key = md5.finalize();
        for (b, k) in block.iter_mut().zip(key.iter()) {
            *b ^= k;
        }
        previous.copy_from_slice(block);
    }
    hidden
}

/// HMAC-MD5 (RFC 2104) with a 64-byte block.
fn hmac_md5(key: &[u8], data: &[u8]) -> [u8; 16] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..16].copy_from_slice(&Md5::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Md5::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(data);
    let inner = inner.finalize();
    let mut outer = Md5::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// The verdict on one datagram, `None` when it is not an answer to our request.
pub(crate) fn judge(
    reply: &[u8],
    identifier: u8,
    request_auth: &[u8; 16],
    secret: &[u8],
) -> Option<Result<String, Failure>> {
    if reply.len() < 20 || reply[1] != identifier {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([reply[2], reply[3]]));
    // RFC 2865 §3: octets past Length are padding; a shorter datagram is malformed.
    if !(20..=MAX_PACKET).contains(&len) || len > reply.len() {
        return None;
    }
    let reply = &reply[..len];

    // Response Authenticator = MD5(Code ‖ ID ‖ Length ‖ RequestAuth ‖ Attributes ‖ Secret).
    let mut md5 = Md5::new();
    md5.update(&reply[..4]);
    md5.update(request_auth);
    md5.update(&reply[20..]);
    md5.update(secret);
    if md5.finalize().as_slice() != &reply[4..20] {
        return Some(Err(Failure::auth(
            "invalid Response Authenticator (wrong secret?)",
        )));
    }
    if !message_authenticator_ok(reply, request_auth, secret) {
        return Some(Err(Failure::auth(
            "invalid Message-Authenticator (wrong secret?)",
        )));
    }
    Some(match reply[0] {
        ACCESS_ACCEPT => Ok("Access-Accept".to_owned()),
        ACCESS_REJECT => Err(Failure::auth("Access-Reject")),
        ACCESS_CHALLENGE => Err(Failure::auth("Access-Challenge")),
        other => Err(Failure::protocol(format!("unexpected RADIUS code {other}"))),
    })
}

/// What a server does to a reply before sending it: fill in the Message-Authenticator
/// (RFC 3579 §3.2, computed with the Request Authenticator in place), when the reply has
/// one, then the Response Authenticator (RFC 2865 §3). `reply` is the whole packet (at
/// least the 20-byte header) with its Length; used by the tests and the fuzz target.
pub(crate) fn sign_reply(reply: &mut [u8], request_auth: &[u8; 16], secret: &[u8]) {
    reply[4..20].copy_from_slice(request_auth);
    let mut at = 20;
    while at + 2 <= reply.len() {
        let alen = usize::from(reply[at + 1]);
        if alen < 2 || at + alen > reply.len() {
            break;
        }
        if reply[at] == MESSAGE_AUTHENTICATOR && alen == 18 {
            reply[at + 2..at + 18].fill(0);
            let mac = hmac_md5(secret, reply);
            reply[at + 2..at + 18].copy_from_slice(&mac);
            break;
        }
        at += alen;
    }
    let mut md5 = Md5::new();
    md5.update(&reply[..4]);
    md5.update(request_auth);
    md5.update(&reply[20..]);
    md5.update(secret);
    reply[4..20].copy_from_slice(&md5.finalize());
}

/// RFC 3579 §3.2: when the reply carries a Message-Authenticator it is the HMAC-MD5 of
/// the reply with the Request Authenticator in place of its own and the field zeroed.
/// Malformed attributes fail the check.
fn message_authenticator_ok(reply: &[u8], request_auth: &[u8; 16], secret: &[u8]) -> bool {
    let mut at = 20;
    while at < reply.len() {
        if at + 2 > reply.len() {
            return false;
        }
        let alen = usize::from(reply[at + 1]);
        if alen < 2 || at + alen > reply.len() {
            return false;
        }
        if reply[at] == MESSAGE_AUTHENTICATOR {
            if alen != 18 {
                return false;
            }
            let mut copy = reply.to_vec();
            copy[4..20].copy_from_slice(request_auth);
            copy[at + 2..at + 18].fill(0);
            return hmac_md5(secret, &copy) == reply[at + 2..at + 18];
        }
        at += alen;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hiding_round_trips() {
        let auth = [7u8; 16];
        for pw in [
            "",
            "short",
            "exactly16bytes!!",
            "a password longer than sixteen bytes",
        ] {
            let hidden = hide_password(pw.as_bytes(), b"s3cret", &auth);
            assert_eq!(hidden.len(), pw.len().div_ceil(16).max(1) * 16);
            // Reverse it the way a server does.
            let mut plain = Vec::new();
            let mut previous = auth.to_vec();
            for block in hidden.chunks(16) {
                let mut md5 = Md5::new();
                md5.update(b"s3cret");
                md5.update(&previous);
                let key = md5.finalize();
                plain.extend(block.iter().zip(key.iter()).map(|(c, k)| c ^ k));
                previous = block.to_vec();
            }
            while plain.last() == Some(&0) {
                plain.pop();
            }
            assert_eq!(plain, pw.as_bytes());
        }
    }

    #[test]
    fn hmac_md5_rfc2202_vector() {
        // RFC 2202 test case 2.
        let mac = hmac_md5(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "750c783e6ab0b503eaa86e310a5db738");
    }

    fn reply(code: u8, id: u8, request_auth: &[u8; 16], secret: &[u8]) -> Vec<u8> {
        let mut packet = vec![code, id, 0, 20];
        packet.extend_from_slice(&[0; 16]);
        sign_reply(&mut packet, request_auth, secret);
        packet
    }

    #[test]
    fn judging_replies() {
        let auth = [1u8; 16];
        assert_eq!(
            judge(&reply(2, 9, &auth, b"k"), 9, &auth, b"k"),
            Some(Ok("Access-Accept".into()))
        );
        assert_eq!(
            judge(&reply(3, 9, &auth, b"k"), 9, &auth, b"k"),
            Some(Err(Failure::auth("Access-Reject")))
        );
        assert!(
            judge(&reply(2, 9, &auth, b"other"), 9, &auth, b"k")
                .unwrap()
                .is_err()
        );
        assert_eq!(judge(&reply(2, 8, &auth, b"k"), 9, &auth, b"k"), None);
        assert_eq!(judge(&[2, 9, 0], 9, &auth, b"k"), None);
        let mut long = reply(2, 9, &auth, b"k");
        long[3] = 200;
        assert_eq!(judge(&long, 9, &auth, b"k"), None);
    }

    #[test]
    fn request_layout() {
        let auth = [3u8; 16];
        let p = access_request(
            5,
            &auth,
            "bob",
            "pw",
            IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            b"k",
        );
        assert_eq!(&p[..2], &[ACCESS_REQUEST, 5]);
        assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
        assert_eq!(&p[4..20], &auth);
        assert_eq!(&p[20..25], &[USER_NAME, 5, b'b', b'o', b'b']);
        // User-Password (18) + NAS-IP-Address (6) + Message-Authenticator (18).
        assert_eq!(p.len(), 20 + 5 + 18 + 6 + 18);
    }
}
