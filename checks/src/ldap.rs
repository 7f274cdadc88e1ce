//! `service=ldap` / `service=ldaps` negotiate check (§3.4), with ldap3.
//!
//! Exchange: connect (`ldaps`: TLS from the first byte, certificate not verified, like
//! stock), bind — simple with `login`/`passwd` when both are set, else anonymous — then
//! search base = the request without its leading `/` (the default `/` gives the root
//! DSE), scope base, filter `(objectClass=*)`, no attributes, then unbind.
//!
//! Up when exactly one entry comes back and, if `receive` is set, its DN matches it.
//!
//! Timeout: stock bounds the connect by `negotiatetimeout` and the whole check by an
//! alarm of `checktimeout`, so its effective bound is the smaller of the two; ours bounds
//! the whole check by `min(checktimeout, negotiatetimeout)`, which is the same.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use ldirectord_parsers::config::{Service, ip_text};

use crate::smtp::proto::{self, quote};
use crate::{BoxFuture, BuildError, CheckSpec, Checker, Outcome, bounded};

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
    async fn run(&self) -> Result<String, String> {
        let addr = proto::target(&self.spec)?;
        let scheme = if self.spec.service == Service::Ldaps {
            "ldaps"
        } else {
            "ldap"
        };
        let url = format!("{scheme}://{}:{}", ip_text(addr.ip()), addr.port());
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_config(proto::tls::config());
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &url)
            .await
            .map_err(|e| format!("Connection failed: {}", quote(e.to_string().as_bytes())))?;

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
            .map_err(|e| format!("Bind failed: {}", quote(e.to_string().as_bytes())))?;
        let (entries, _) = ldap
            .search(
                self.spec.request_body(),
                Scope::Base,
                "(objectClass=*)",
                ["1.1"],
            )
            .await
            .and_then(|r| r.success())
            .map_err(|e| format!("Search failed: {}", quote(e.to_string().as_bytes())))?;
        let _ = ldap.unbind().await;
        if entries.len() != 1 {
            return Err(format!(
                "Response mismatch: {} entries instead of 1",
                entries.len()
            ));
        }
        let dn = SearchEntry::construct(entries.into_iter().next().expect("one entry")).dn;
        match &self.spec.receive {
            Some(receive) if !receive.is_match(dn.as_bytes()) => {
                Err(format!("Response mismatch: {}", quote(dn.as_bytes())))
            }
            _ => Ok("Success".to_owned()),
        }
    }
}

/// Aborts the connection task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
