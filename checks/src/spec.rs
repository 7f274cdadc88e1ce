//! [`CheckSpec`]: one check's identity and parameters as a value.

use std::net::IpAddr;
use std::time::Duration;

use ldirectord_parsers::config::{
    CheckType, Family, HttpMethod, PgRoleCheck, Protocol, RealServer, Receive, Service,
    VirtualAddress, VirtualService, ip_text,
};

/// Everything one check of one real server needs, and nothing else (no weight, no
/// forwarding method): two specs that compare equal are the same check and run once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckSpec {
    pub checktype: CheckType,
    pub service: Service,
    /// The virtual service's protocol (`udp` turns `connect` into ping, DNS/SIP/simpletcp
    /// into UDP).
    pub protocol: Protocol,
    /// The virtual service, for `external` checks' arguments. No other check looks at it,
    /// so for them [`CheckSpec::for_real`] sets it to [`CheckSpec::ANY_VIRTUAL`]: the same
    /// real in several virtual services is then one check (stock shares them, §3.3).
    pub virtual_address: VirtualAddress,
    /// The real server.
    pub ip: IpAddr,
    /// The real's own port (0 = none).
    pub real_port: u16,
    /// The port to check (§3.2), `None` when nothing gives one (the check then fails).
    pub port: Option<u16>,
    /// Request with its leading `/` (per-real if given and honoured, else the virtual's).
    pub request: String,
    pub receive: Option<Receive>,
    /// For http/https/http_proxy: the URL as ldirectord builds it (§3.6).
    pub url: Option<String>,
    pub httpmethod: HttpMethod,
    pub virtualhost: Option<String>,
    pub login: String,
    pub passwd: String,
    pub database: String,
    pub secret: String,
    pub checkcommand: String,
    pub checktimeout: Duration,
    pub negotiatetimeout: Duration,
    pub checkcount: u32,
    pub tls_verify: bool,
    pub tls_sni: bool,
    pub pgsql_role: Option<PgRoleCheck>,
}

impl CheckSpec {
    /// The placeholder virtual address of checks whose outcome does not depend on it.
    pub const ANY_VIRTUAL: VirtualAddress = VirtualAddress::Fwmark {
        mark: 0,
        family: Family::Inet,
    };

    /// The check ldirectord would run for `real` in `vs`.
    pub fn for_real(vs: &VirtualService, real: &RealServer) -> CheckSpec {
        let c = &vs.check;
        let port = vs.check_port(real);
        let (request, receive) = match (&real.request, &real.receive) {
            (Some(req), Some(rec)) => (req.clone(), Some(rec.clone())),
            (Some(req), None) => (req.clone(), c.receive.clone()),
            _ => (c.request.clone(), c.receive.clone()),
        };
        let url = match c.service {
            Service::Http | Service::Https | Service::HttpProxy => Some(http_url(vs, real, port)),
            _ => None,
        };
        CheckSpec {
            checktype: c.checktype,
            service: c.service,
            protocol: vs.protocol,
            virtual_address: match c.checktype {
                CheckType::External | CheckType::ExternalPerl => vs.address,
                _ => CheckSpec::ANY_VIRTUAL,
            },
            ip: real.ip,
            real_port: real.port,
            port,
            request,
            receive,
            url,
            httpmethod: c.httpmethod,
            virtualhost: c.virtualhost.clone(),
            login: c.login.clone(),
            passwd: c.passwd.clone(),
            database: c.database.clone(),
            secret: c.secret.clone(),
            checkcommand: c.checkcommand.clone(),
            checktimeout: c.checktimeout,
            negotiatetimeout: c.negotiatetimeout,
            checkcount: c.checkcount,
            tls_verify: c.tls_verify,
            tls_sni: c.tls_sni,
            pgsql_role: c.pgsql_role.clone(),
        }
    }

    /// The request without its leading `/` (what SQL, DNS, LDAP and simpletcp send).
    pub fn request_body(&self) -> &str {
        self.request.strip_prefix('/').unwrap_or(&self.request)
    }

    /// A short label for tables and logs: `negotiate:http`, `connect`, `external:/bin/x`.
    pub fn label(&self) -> String {
        match self.checktype {
            CheckType::Negotiate | CheckType::Combined(_) => {
                format!("{}:{}", self.checktype.name(), self.service.as_str())
            }
            CheckType::External | CheckType::ExternalPerl => {
                format!("{}:{}", self.checktype.name(), self.checkcommand)
            }
            other => other.name().to_owned(),
        }
    }
}

/// §3.6: the URL of an HTTP-family check.
fn http_url(vs: &VirtualService, real: &RealServer, port: Option<u16>) -> String {
    let scheme = if vs.check.service == Service::Https {
        "https"
    } else {
        "http"
    };
    let port = port.map(|p| p.to_string()).unwrap_or_default();
    let host = ip_text(real.ip);
    match (&real.request, &real.receive) {
        // A per-real pair: an absolute URL of the same scheme is used as it is.
        (Some(req), Some(_)) => {
            let uri = req.strip_prefix('/').unwrap_or(req);
            if req.contains(&format!("{scheme}://")) {
                uri.to_owned()
            } else {
                format!("{scheme}://{host}:{port}/{uri}")
            }
        }
        _ => {
            let uri = vs
                .check
                .request
                .strip_prefix('/')
                .unwrap_or(&vs.check.request);
            if vs.check.service == Service::HttpProxy {
                uri.to_owned()
            } else {
                format!("{scheme}://{host}:{port}/{uri}")
            }
        }
    }
}
