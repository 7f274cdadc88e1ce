//! Name and service resolution as stock ldirectord does it: host names through the
//! system resolver (getaddrinfo) in the block's address family, first address only;
//! service names through the services database (`/etc/services`). Numeric addresses and
//! ports never touch the resolver, so large numeric configurations parse fast. Users and
//! groups (`scriptuser=`) through the system's user database (NSS, `getpwnam_r`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::sync::OnceLock;

use super::model::Family;

/// Resolves host and service names. The default is the system's; tests can supply their
/// own so they do not depend on the machine's `/etc/hosts` or `/etc/services`.
pub trait Resolver: Sync {
    /// The first address of `name` in `family`, like `getaddrinfo` with that hint.
    fn host(&self, name: &str, family: Family) -> Option<IpAddr>;
    /// The port of service `name` for `proto` (`tcp`, `udp`, or `""` for any).
    fn service(&self, name: &str, proto: &str) -> Option<u16>;
    /// A user's id and primary group, by name or number.
    fn user(&self, name: &str) -> Option<(u32, u32)>;
    /// A group's id, by name or number.
    fn group(&self, name: &str) -> Option<u32>;
}

/// The system resolver and `/etc/services`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn host(&self, name: &str, family: Family) -> Option<IpAddr> {
        if let Some(ip) = numeric_host(name, family) {
            return Some(ip);
        }
        // getaddrinfo: std asks for both families; keep the first of the wanted one.
        let addrs = (name, 0u16).to_socket_addrs().ok()?;
        addrs.map(|a| a.ip()).find(|ip| {
            matches!(
                (ip, family),
                (IpAddr::V4(_), Family::Inet) | (IpAddr::V6(_), Family::Inet6)
            )
        })
    }

    fn service(&self, name: &str, proto: &str) -> Option<u16> {
        services()
            .get(&(name.to_owned(), proto.to_owned()))
            .copied()
    }

    fn user(&self, name: &str) -> Option<(u32, u32)> {
        use nix::unistd::{Uid, User};
        let user = match name.parse::<u32>() {
            Ok(n) => User::from_uid(Uid::from_raw(n)),
            Err(_) => User::from_name(name),
        };
        user.ok()
            .flatten()
            .map(|u| (u.uid.as_raw(), u.gid.as_raw()))
    }

    fn group(&self, name: &str) -> Option<u32> {
        use nix::unistd::{Gid, Group};
        let group = match name.parse::<u32>() {
            Ok(n) => Group::from_gid(Gid::from_raw(n)),
            Err(_) => Group::from_name(name),
        };
        group.ok().flatten().map(|g| g.gid.as_raw())
    }
}

/// A numeric address of the family, without the resolver.
pub fn numeric_host(name: &str, family: Family) -> Option<IpAddr> {
    match family {
        Family::Inet => name.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        Family::Inet6 => name.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
    }
}

/// `/etc/services`, keyed by (name or alias, protocol) and by (name, "") for any protocol
/// (the first entry in file order wins, as getservbyname does).
fn services() -> &'static HashMap<(String, String), u16> {
    static SERVICES: OnceLock<HashMap<(String, String), u16>> = OnceLock::new();
    SERVICES.get_or_init(|| {
        let text = std::fs::read_to_string("/etc/services").unwrap_or_default();
        parse_services(&text)
    })
}

/// Parse the services database format: `name port/proto [aliases…] [# comment]`.
pub fn parse_services(text: &str) -> HashMap<(String, String), u16> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(name), Some(port_proto)) = (words.next(), words.next()) else {
            continue;
        };
        let Some((port, proto)) = port_proto.split_once('/') else {
            continue;
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        for n in std::iter::once(name).chain(words) {
            map.entry((n.to_owned(), proto.to_owned())).or_insert(port);
            map.entry((n.to_owned(), String::new())).or_insert(port);
        }
    }
    map
}

/// A resolver from fixed tables, for tests and tools that must not depend on the host.
#[derive(Debug, Default, Clone)]
pub struct StaticResolver {
    pub hosts: HashMap<String, Vec<IpAddr>>,
    pub services: HashMap<(String, String), u16>,
    /// User name -> (uid, primary gid).
    pub users: HashMap<String, (u32, u32)>,
    pub groups: HashMap<String, u32>,
}

impl Resolver for StaticResolver {
    fn host(&self, name: &str, family: Family) -> Option<IpAddr> {
        numeric_host(name, family).or_else(|| {
            self.hosts.get(name)?.iter().copied().find(|ip| {
                matches!(
                    (ip, family),
                    (IpAddr::V4(_), Family::Inet) | (IpAddr::V6(_), Family::Inet6)
                )
            })
        })
    }
    fn service(&self, name: &str, proto: &str) -> Option<u16> {
        self.services
            .get(&(name.to_owned(), proto.to_owned()))
            .copied()
    }
    fn user(&self, name: &str) -> Option<(u32, u32)> {
        self.users.get(name).copied()
    }
    fn group(&self, name: &str) -> Option<u32> {
        self.groups.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_database_by_name_alias_and_any_protocol() {
        let db = parse_services(
            "http\t80/tcp www # WorldWideWeb\ndomain 53/tcp\ndomain 53/udp\nsyslog 514/udp\n",
        );
        assert_eq!(db[&("www".into(), "tcp".into())], 80);
        assert_eq!(db[&("http".into(), "".into())], 80);
        assert_eq!(db[&("domain".into(), "udp".into())], 53);
        assert_eq!(db.get(&("syslog".into(), "tcp".into())), None);
        assert_eq!(db[&("syslog".into(), "".into())], 514);
    }

    #[test]
    fn numeric_hosts_need_the_right_family() {
        assert_eq!(
            numeric_host("10.0.0.1", Family::Inet),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(numeric_host("10.0.0.1", Family::Inet6), None);
        assert_eq!(
            numeric_host("::1", Family::Inet6),
            Some("::1".parse().unwrap())
        );
    }
}
