//! `service=ldap` / `service=ldaps` negotiate check (§3.4), with ldap3.
//!
//! Exchange: connect (a socket of ours, [`crate::route::tcp`], so a check through the
//! forwarding path carries its mark; `ldaps`: TLS from the first byte, certificate not verified, like
//! stock), bind — simple with `login`/`passwd` when both are set, else anonymous — then
//! search base = the request without its leading `/` (the default `/` gives the root
//! DSE), scope base, filter `(objectClass=*)`, no attributes, then unbind.
//!
//! Up when exactly one entry comes back and, if `receive` is set, its DN matches it.
//!
//! Timeout: stock bounds the connect by `negotiatetimeout` and the whole check by an
//! alarm of `checktimeout`, so its effective bound is the smaller of the two; ours bounds
//! the whole check by `min(checktimeout, negotiatetimeout)`, which is the same.
//!
//! Reasons: `Success`; `Connection failed: …`, `Bind failed: rc=49 (invalidCredentials)`,
//! `Search failed: rc=32 (noSuchObject)`, `Response mismatch: N entries instead of 1`,
//! `Response mismatch: <dn>`, `timed out after …`.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, StdStream};
use ldirectord_parsers::config::Service;

use crate::check::{BoxFuture, BuildError, Checker, Failure, Outcome, bounded};
use crate::proto::{self, quote};
use crate::spec::CheckSpec;

/// Build the check for `spec` (ldap or ldaps).
pub fn build(spec: &CheckSpec) -> Result<Arc<dyn Checker>, BuildError> {
    Ok(Arc::new(LdapCheck {
        spec: spec.clone(),
        timeout: spec.checktimeout.min(spec.negotiatetimeout),
    }))
}

#[derive(Debug)]
struct LdapCheck {
    spec: CheckSpec,
    timeout: Duration,
}

impl Checker for LdapCheck {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(bounded(self.timeout, self.run()))
    }
}

impl LdapCheck {
    async fn run(&self) -> Result<String, Failure> {
        let addr = proto::target(&self.spec)?;
        let scheme = if self.spec.service == Service::Ldaps {
            "ldaps"
        } else {
            "ldap"
        };
        let url = format!("{scheme}://{addr}");
        let failed =
            |e: &LdapError| Failure::connect(format!("Connection failed: {}", ldap_reason(e)));
        // The socket is ours (so a check through the forwarding path carries its mark);
        // ldap3 takes it as a std stream and does the rest (TLS for ldaps) on it. No
        // separate connect timeout: the bound of the whole check covers the connect.
        let stream = crate::route::tcp(addr)
            .await
            .and_then(|s| s.into_std())
            .map_err(|e| failed(&LdapError::Io { source: e }))?;
        let settings = LdapConnSettings::new()
            .set_config(crate::tls::accept_any())
            .set_std_stream(StdStream::Tcp(stream));
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &url)
            .await
            .map_err(|e| failed(&e))?;

        // The connection runs in its own task; the guard aborts it when the check ends or
        // is dropped on timeout, so nothing outlives the check.
        let _driver = AbortOnDrop(tokio::spawn(conn.drive()));

        let (dn, pw) = if !self.spec.login.is_empty() && !self.spec.passwd.is_empty() {
            (self.spec.login.as_str(), self.spec.passwd.as_str())
        } else {
            ("", "")
        };
        ldap.simple_bind(dn, pw)
            .await
            .and_then(|r| r.success())
            .map_err(|e| Failure::auth(format!("Bind failed: {}", ldap_reason(&e))))?;
        let (entries, _) = ldap
            .search(
                self.spec.request_body(),
                Scope::Base,
                "(objectClass=*)",
                ["1.1"],
            )
            .await
            .and_then(|r| r.success())
            .map_err(|e| Failure::protocol(format!("Search failed: {}", ldap_reason(&e))))?;
        let _ = ldap.unbind().await;
        if entries.len() != 1 {
            return Err(Failure::mismatch(format!(
                "Response mismatch: {} entries instead of 1",
                entries.len()
            )));
        }
        let dn = SearchEntry::construct(entries.into_iter().next().expect("one entry")).dn;
        match &self.spec.receive {
            Some(receive) if !receive.is_match(dn.as_bytes()) => Err(Failure::mismatch(format!(
                "Response mismatch: {}",
                quote(dn.as_bytes())
            ))),
            _ => Ok("Success".to_owned()),
        }
    }
}

/// An LDAP error for a reason: `rc=49 (invalidCredentials)` plus the server's diagnostic
/// text, or the transport error.
fn ldap_reason(e: &LdapError) -> String {
    let text = match e {
        LdapError::LdapResult { result } => {
            let full = result.to_string();
            let code = full.split(", dn:").next().unwrap_or(&full).to_owned();
            if result.text.is_empty() {
                code
            } else {
                format!("{code}: {}", result.text)
            }
        }
        other => other.to_string(),
    };
    quote(text.as_bytes())
}

/// Aborts the connection task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
