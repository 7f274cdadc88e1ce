//! The one place that maps `checktype=`/`service=` to a checker ([`build`]).

use std::sync::Arc;
use std::time::Duration;

use ldirectord_parsers::config::{CheckType, Protocol, Service};

use crate::check::{BoxFuture, BuildError, Checker, Outcome};
use crate::spec::CheckSpec;
use crate::{
    combined, connect, dns, external, ftp, http, imap, ldap, mysql, nntp, pgsql, ping, pop, radius,
    route, simpletcp, sip, smtp,
};

/// Build the checker for `spec`. `Ok(None)` for `checktype=off`, which checks nothing and
/// changes nothing.
pub fn build(spec: &CheckSpec) -> Result<Option<Arc<dyn Checker>>, BuildError> {
    let Some(route) = spec.route else {
        return build_direct(spec);
    };
    let Some(direct) = build_direct(&spec.direct())? else {
        return Ok(None);
    };
    Ok(Some(match spec.via_vip() {
        Some(via) if spec.forwardable() => {
            let via = build_direct(&via)?.ok_or_else(|| {
                BuildError::Invalid("a forwarded check that checks nothing".to_owned())
            })?;
            Arc::new(route::Forwarding::new(route.mark, spec.ip, via, direct))
        }
        _ => Arc::new(route::DirectOnly::new(direct)),
    }))
}

/// The checker of `spec` on the direct path (its `route` is not looked at).
fn build_direct(spec: &CheckSpec) -> Result<Option<Arc<dyn Checker>>, BuildError> {
    let checker: Arc<dyn Checker> = match spec.checktype {
        CheckType::Off => return Ok(None),
        CheckType::On => Arc::new(AlwaysUp),
        // Stock: `connect` on a UDP virtual is an ICMP ping.
        CheckType::Connect if spec.protocol == Protocol::Udp => ping::build(spec)?,
        CheckType::Connect => connect::build(spec)?,
        CheckType::Ping => ping::build(spec)?,
        CheckType::External | CheckType::ExternalPerl => external::build(spec)?,
        CheckType::Negotiate => negotiate(spec)?,
        CheckType::Combined(n) => combined::build(spec, n, negotiate(spec)?)?,
    };
    Ok(Some(Redacted::wrap(spec, checker)))
}

/// What a reason shows instead of a `passwd=` or `secret=` value.
pub const REDACTED: &str = "***";

/// A checker whose reasons never hold the spec's `passwd=` or `secret=`: a reason quotes
/// what the server answered, and a server may echo what it was sent (a login error that
/// repeats the command). Reasons reach the log, the status, `--probe`, the monitorfile
/// and e-mails, so the values are cut out here, once for all of them.
struct Redacted {
    inner: Arc<dyn Checker>,
    secrets: Vec<String>,
}

impl Redacted {
    fn wrap(spec: &CheckSpec, inner: Arc<dyn Checker>) -> Arc<dyn Checker> {
        let mut secrets: Vec<String> = [&spec.passwd, &spec.secret]
            .into_iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect();
        if secrets.is_empty() {
            return inner;
        }
        // The longer first, so that one holding the other is cut out whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Arc::new(Redacted { inner, secrets })
    }
}

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redacted").finish_non_exhaustive()
    }
}

impl Checker for Redacted {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            let mut outcome = self.inner.check().await;
            for secret in &self.secrets {
                if outcome.reason.contains(secret.as_str()) {
                    outcome.reason = outcome.reason.replace(secret.as_str(), REDACTED);
                }
            }
            outcome
        })
    }
}

/// The negotiate checker for the spec's service.
fn negotiate(spec: &CheckSpec) -> Result<Arc<dyn Checker>, BuildError> {
    Ok(match spec.service {
        Service::None => Arc::new(AlwaysUp),
        Service::Http | Service::Https | Service::HttpProxy => http::build(spec)?,
        Service::Ftp => ftp::build(spec)?,
        Service::Smtp | Service::Submission => smtp::build(spec)?,
        Service::Pop | Service::Pops => pop::build(spec)?,
        Service::Imap | Service::Imaps => imap::build(spec)?,
        Service::Ldap | Service::Ldaps => ldap::build(spec)?,
        Service::Dns => dns::build(spec)?,
        Service::Mysql => mysql::build(spec)?,
        Service::Pgsql => pgsql::build(spec)?,
        Service::Oracle => return Err(BuildError::OracleUnsupported),
        Service::Radius => radius::build(spec)?,
        Service::Sip => sip::build(spec)?,
        Service::Simpletcp => simpletcp::build(spec)?,
        Service::Nntp => nntp::build(spec)?,
    })
}

/// `checktype=on` and `service=none`: always up, nothing sent.
#[derive(Debug)]
struct AlwaysUp;

impl Checker for AlwaysUp {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async { Outcome::up("-", Duration::ZERO) })
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::*;
    use crate::check::Failure;
    use ldirectord_parsers::config::CheckType;

    /// A server that echoes what it was sent into its error.
    #[derive(Debug)]
    struct Echo(String);

    impl Checker for Echo {
        fn check(&self) -> BoxFuture<'_, Outcome> {
            let reason = format!("-ERR bad login {}", self.0);
            Box::pin(async move { Outcome::failed(Failure::auth(reason), Duration::ZERO) })
        }
    }

    #[tokio::test]
    async fn reasons_and_debug_never_show_a_passwd_or_secret() {
        let mut spec = CheckSpec::new(
            CheckType::Negotiate,
            Service::Pop,
            "127.0.0.1".parse().unwrap(),
            110,
        );
        spec.passwd = "pw-s3cret".into();
        spec.secret = "radius-s3cret-pw-s3cret".into();
        let echo = Arc::new(Echo(format!("{} {}", spec.passwd, spec.secret)));
        let outcome = Redacted::wrap(&spec, echo).check().await;
        assert_eq!(outcome.reason, "-ERR bad login *** ***");
        let debug = format!("{spec:?} {:?}", build(&spec).unwrap().unwrap());
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("passwd: \"***\""), "{debug}");
        // Nothing to hide: the checker is not wrapped.
        let plain = CheckSpec::new(
            CheckType::Connect,
            Service::None,
            "127.0.0.1".parse().unwrap(),
            1,
        );
        assert!(!format!("{:?}", build(&plain).unwrap().unwrap()).contains("Redacted"));
    }
}
