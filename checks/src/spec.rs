//! [`CheckSpec`]: one check's identity and parameters as a value.

use std::net::IpAddr;
use std::time::Duration;

use ldirectord_parsers::config::{
    CheckType, Family, HttpMethod, PgRoleCheck, Protocol, RealServer, Receive, ScriptUser, Service,
    VirtualAddress, VirtualService, ip_text,
};

/// Everything one check of one real server needs, and nothing else (no weight, no
/// forwarding method): two specs that compare equal are the same check and run once.
/// Its `Debug` shows `passwd` and `secret` as `***`.
#[derive(Clone, PartialEq, Eq, Hash)]
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
    /// `scriptuser=`, for `external` checks only (others run inside the daemon).
    pub scriptuser: Option<ScriptUser>,
    /// `checkpath=forwarding`: the check goes to the virtual's address through the
    /// helper service of this mark ([`CheckRoute`]); `None`: to the real's own address.
    pub route: Option<CheckRoute>,
}

/// The forwarding path of one (virtual, real): the check dials `vip` (at the check port)
/// with firewall mark `mark` on its socket, and the director's one-real helper service of
/// that mark hands it to the real the way IPVS hands it clients' traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckRoute {
    pub vip: IpAddr,
    pub mark: u32,
}

impl CheckSpec {
    /// The placeholder virtual address of checks whose outcome does not depend on it.
    pub const ANY_VIRTUAL: VirtualAddress = VirtualAddress::Fwmark {
        mark: 0,
        family: Family::Inet,
    };

    /// A check of `checktype` (`service` for negotiate and combined checks) against
    /// `ip:port`, with the parser's defaults for everything else: TCP, port `port` for both
    /// the real and the check, request `/` and no receive, `GET`, no virtualhost, empty
    /// login, passwd, database and secret, checkcommand `/bin/true`, 5 s check and
    /// negotiate timeouts, checkcount 1, no certificate verification or SNI, no pgsql role,
    /// no script user,
    /// and [`CheckSpec::ANY_VIRTUAL`]. An HTTP-family check gets its URL as
    /// [`CheckSpec::for_real`] builds it (`http://IP:PORT/`). For tests and tools; the
    /// daemon uses [`CheckSpec::for_real`].
    pub fn new(checktype: CheckType, service: Service, ip: IpAddr, port: u16) -> CheckSpec {
        let request = "/".to_owned();
        CheckSpec {
            checktype,
            service,
            protocol: Protocol::Tcp,
            virtual_address: CheckSpec::ANY_VIRTUAL,
            ip,
            real_port: port,
            port: Some(port),
            url: default_url(service, ip, Some(port), &request),
            request,
            receive: None,
            httpmethod: HttpMethod::Get,
            virtualhost: None,
            login: String::new(),
            passwd: String::new(),
            database: String::new(),
            secret: String::new(),
            checkcommand: "/bin/true".to_owned(),
            checktimeout: DEFAULT_TIMEOUT,
            negotiatetimeout: DEFAULT_TIMEOUT,
            checkcount: 1,
            tls_verify: false,
            tls_sni: false,
            pgsql_role: None,
            scriptuser: None,
            route: None,
        }
    }

    /// With `request` (starting with `/`, as the parser gives it); an HTTP-family check's
    /// URL follows.
    pub fn with_request(mut self, request: impl Into<String>) -> CheckSpec {
        self.request = request.into();
        self.url = default_url(self.service, self.ip, self.port, &self.request);
        self
    }

    /// With `receive=`.
    pub fn with_receive(mut self, receive: Receive) -> CheckSpec {
        self.receive = Some(receive);
        self
    }

    /// With `login=` and `passwd=`.
    pub fn with_login(mut self, login: impl Into<String>, passwd: impl Into<String>) -> CheckSpec {
        self.login = login.into();
        self.passwd = passwd.into();
        self
    }

    /// With `timeout` as both `checktimeout` and `negotiatetimeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> CheckSpec {
        self.checktimeout = timeout;
        self.negotiatetimeout = timeout;
        self
    }

    /// The check ldirectord would run for `real` in `vs`.
    pub fn for_real(vs: &VirtualService, real: &RealServer) -> CheckSpec {
        let c = &vs.check;
        let port = vs.check_port(real);
        let (request, receive) = match (&real.request, &real.receive) {
            (Some(req), Some(rec)) => (req.clone(), Some(rec.clone())),
            (Some(req), None) => (req.clone(), c.receive.clone()),
            _ => (c.request.clone(), c.receive.clone()),
        };
        let url = http_url(vs, real, port);
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
            scriptuser: match c.checktype {
                CheckType::External | CheckType::ExternalPerl => c.scriptuser.clone(),
                _ => None,
            },
            route: None,
        }
    }

    /// Through the forwarding path `route` (`checkpath=forwarding`).
    pub fn through(mut self, route: CheckRoute) -> CheckSpec {
        self.route = Some(route);
        self
    }

    /// Whether this kind of check can go through the forwarding path: it speaks TCP or
    /// UDP over a socket this crate opens, so the socket can carry the mark. `ping` (ICMP),
    /// `external` (another program), `on`/`off` (nothing sent) and `oracle` (no check)
    /// cannot, and are checked on the direct path. (`https`, `pgsql` and `ldap`/`ldaps`
    /// run their library over a socket of ours; `mysql`, whose driver opens its own,
    /// through a loopback relay whose upstream socket is ours: see `relay`.)
    pub fn forwardable(&self) -> bool {
        let speaks = |service: Service| !matches!(service, Service::None | Service::Oracle);
        match self.checktype {
            CheckType::Connect => self.protocol != Protocol::Udp,
            CheckType::Negotiate | CheckType::Combined(_) => speaks(self.service),
            CheckType::Ping
            | CheckType::External
            | CheckType::ExternalPerl
            | CheckType::On
            | CheckType::Off => false,
        }
    }

    /// The same check sent to the route's VIP instead of the real (the URL of an HTTP
    /// check follows, so its default Host is the VIP, as clients send it).
    pub(crate) fn via_vip(&self) -> Option<CheckSpec> {
        let route = self.route?;
        let mut spec = self.clone();
        spec.route = None;
        if let Some(url) = &spec.url {
            let (real, vip) = (ip_text(self.ip), ip_text(route.vip));
            spec.url = Some(url.replacen(&format!("://{real}:"), &format!("://{vip}:"), 1));
        }
        spec.ip = route.vip;
        Some(spec)
    }

    /// The same check on the direct path (the real's own address).
    pub(crate) fn direct(&self) -> CheckSpec {
        CheckSpec {
            route: None,
            ..self.clone()
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

impl std::fmt::Debug for CheckSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &str| {
            if s.is_empty() {
                ""
            } else {
                crate::registry::REDACTED
            }
        };
        f.debug_struct("CheckSpec")
            .field("checktype", &self.checktype)
            .field("service", &self.service)
            .field("protocol", &self.protocol)
            .field("virtual_address", &self.virtual_address)
            .field("ip", &self.ip)
            .field("real_port", &self.real_port)
            .field("port", &self.port)
            .field("request", &self.request)
            .field("receive", &self.receive)
            .field("url", &self.url)
            .field("httpmethod", &self.httpmethod)
            .field("virtualhost", &self.virtualhost)
            .field("login", &self.login)
            .field("passwd", &hidden(&self.passwd))
            .field("database", &self.database)
            .field("secret", &hidden(&self.secret))
            .field("checkcommand", &self.checkcommand)
            .field("checktimeout", &self.checktimeout)
            .field("negotiatetimeout", &self.negotiatetimeout)
            .field("checkcount", &self.checkcount)
            .field("tls_verify", &self.tls_verify)
            .field("tls_sni", &self.tls_sni)
            .field("pgsql_role", &self.pgsql_role)
            .field("scriptuser", &self.scriptuser)
            .field("route", &self.route)
            .finish()
    }
}

/// The parser's default for both timeouts when nothing sets them (§2.8).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// §3.6: the URL of an HTTP-family check, `None` for any other service.
fn http_url(vs: &VirtualService, real: &RealServer, port: Option<u16>) -> Option<String> {
    let service = vs.check.service;
    match (&real.request, &real.receive) {
        // A per-real pair: an absolute URL of the same scheme is used as it is.
        (Some(req), Some(_)) if is_http(service) => {
            let uri = req.strip_prefix('/').unwrap_or(req);
            Some(if req.contains(&format!("{}://", scheme(service))) {
                uri.to_owned()
            } else {
                direct_url(service, real.ip, port, uri)
            })
        }
        _ => default_url(service, real.ip, port, &vs.check.request),
    }
}

fn is_http(service: Service) -> bool {
    matches!(service, Service::Http | Service::Https | Service::HttpProxy)
}

/// The URL of an HTTP-family check for the virtual's `request` (`None` for any other
/// service): the proxy asks for the request as it is, the others for it on the real.
fn default_url(service: Service, ip: IpAddr, port: Option<u16>, request: &str) -> Option<String> {
    let uri = request.strip_prefix('/').unwrap_or(request);
    match service {
        Service::HttpProxy => Some(uri.to_owned()),
        Service::Http | Service::Https => Some(direct_url(service, ip, port, uri)),
        _ => None,
    }
}

/// `SCHEME://IP:PORT/URI` (an empty port when none is known).
fn direct_url(service: Service, ip: IpAddr, port: Option<u16>, uri: &str) -> String {
    let port = port.map(|p| p.to_string()).unwrap_or_default();
    format!("{}://{}:{port}/{uri}", scheme(service), ip_text(ip))
}

fn scheme(service: Service) -> &'static str {
    if service == Service::Https {
        "https"
    } else {
        "http"
    }
}
