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
    Ok(Some(checker))
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
