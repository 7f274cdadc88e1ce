//! What the kernel should hold for a configured virtual service: its [`ServiceKey`],
//! [`ServiceSpec`] (everything `ipvsadm -A` sets) and the [`DestSpec`] of each real and of
//! the fallback. Pure functions of the config model, plus the comparisons that decide
//! whether an entry read back from the kernel already matches.

use std::net::Ipv4Addr;

use ldirectord_parsers::config::{
    Fallback, Family, Forward, Protocol, RealServer, VirtualAddress, VirtualService,
};

use crate::engine::{DestEntry, DestSpec, IpProto, Netmask, SchedFlags, ServiceKey, ServiceSpec};

/// The kernel identity of a virtual service.
pub fn service_key(vs: &VirtualService) -> ServiceKey {
    match vs.address {
        VirtualAddress::Fwmark { mark, family } => ServiceKey::Fwmark { mark, family },
        VirtualAddress::Inet { ip, port } => {
            // The parser only gives tcp/udp to address virtuals; anything else is read as
            // tcp, the same default ldirectord applies.
            let proto = if vs.protocol == Protocol::Udp {
                IpProto::Udp
            } else {
                IpProto::Tcp
            };
            ServiceKey::Inet { proto, ip, port }
        }
    }
}

/// The service as `ipvsadm -A` would create it. As in ldirectord, the netmask is only
/// used together with `persistent`, and `ops` only on UDP services.
pub fn service_spec(vs: &VirtualService) -> ServiceSpec {
    let netmask = match (vs.persistent, &vs.netmask) {
        (Some(_), Some(setting)) => setting.mask(),
        _ => None,
    };
    let sched_flags = SchedFlags::parse(vs.schedflags.as_deref().unwrap_or(""));
    ServiceSpec {
        key: service_key(vs),
        scheduler: vs.scheduler.clone(),
        persistent: vs.persistent,
        netmask,
        ops: vs.ops && vs.protocol == Protocol::Udp,
        sched_flags,
    }
}

/// A real server as configured (full weight and thresholds).
pub fn real_dest(real: &RealServer) -> DestSpec {
    DestSpec {
        ip: real.ip,
        port: real.port,
        forward: real.forward,
        weight: real.weight,
        upper: real.upper,
        lower: real.lower,
    }
}

/// The fallback server of `vs`: weight 1, no thresholds. A fallback without port takes the
/// virtual's port, which is 0 for a fwmark virtual: `-r FALLBACK:0` is what a fwmark
/// service needs, where stock ldirectord emits an address-less `-r :0` (defect 8).
pub fn fallback_dest(vs: &VirtualService, fallback: &Fallback) -> DestSpec {
    DestSpec::new(
        fallback.ip,
        fallback.port.unwrap_or(vs.port()),
        fallback.forward,
        1,
    )
}

/// Whether the kernel's service already is what `want` describes, so no `-E` is needed.
/// Without persistence the kernel still reports a netmask (all ones); with persistence a
/// missing `netmask=` means the kernel's default, all ones as well.
pub fn service_matches(have: &ServiceSpec, want: &ServiceSpec) -> bool {
    let mask = |s: &ServiceSpec| match (s.persistent, s.netmask) {
        (None, _) => None,
        (Some(_), Some(m)) => Some(m),
        (Some(_), None) => Some(full_mask(s.key)),
    };
    have.key == want.key
        && have.scheduler == want.scheduler
        && have.persistent == want.persistent
        && mask(have) == mask(want)
        && have.ops == want.ops
        && have.sched_flags == want.sched_flags
}

fn full_mask(key: ServiceKey) -> Netmask {
    let v6 = match key {
        ServiceKey::Inet { ip, .. } => ip.is_ipv6(),
        ServiceKey::Fwmark { family, .. } => family == Family::Inet6,
    };
    if v6 {
        Netmask::V6(128)
    } else {
        Netmask::V4(Ipv4Addr::BROADCAST)
    }
}

/// Whether a kernel destination already carries the configured weight, forwarding and
/// thresholds. The kernel reports `Local` forwarding for a real on a local address whatever
/// method was asked for, so the method is not compared then.
pub fn dest_matches(have: &DestEntry, want: &DestSpec) -> bool {
    have.spec.weight == want.weight
        && have.spec.upper == want.upper
        && have.spec.lower == want.lower
        && (have.local || have.spec.forward == want.forward)
}

/// Whether a kernel destination is already quiesced: weight 0, same forwarding. This is the
/// test stock ldirectord applies before `-e … -w 0` (thresholds are not compared).
pub fn dest_quiesced(have: &DestEntry, want: &DestSpec) -> bool {
    have.spec.weight == 0 && (have.local || have.spec.forward == want.forward)
}

/// The port under which the kernel may list a real instead of its own (§4.5): direct
/// routing and tunnelling cannot change the port, so `ipvsadm` stores such a real (and a
/// real without port) under the virtual's port. `None` when no mapping can happen.
pub fn mapped_port(key: ServiceKey, real: &DestSpec) -> Option<u16> {
    let ServiceKey::Inet { port: vport, .. } = key else {
        return None;
    };
    let maps = real.port == 0 || matches!(real.forward, Forward::Gate | Forward::Ipip);
    (maps && real.port != vport).then_some(vport)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv6Addr};

    /// The TCP service 10.0.0.100:80.
    fn web() -> ServiceKey {
        ServiceKey::Inet {
            proto: IpProto::Tcp,
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)),
            port: 80,
        }
    }

    #[test]
    fn mapping_only_for_gate_ipip_or_portless_reals_of_address_services() {
        let key = web();
        let fw = ServiceKey::Fwmark {
            mark: 5,
            family: Family::Inet,
        };
        let dest = |port, forward| DestSpec::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port, forward, 1);
        let cases = [
            (key, dest(8080, Forward::Gate), Some(80)),
            (key, dest(8080, Forward::Ipip), Some(80)),
            (key, dest(8080, Forward::Masq), None),
            (key, dest(80, Forward::Gate), None),
            (key, dest(0, Forward::Masq), Some(80)),
            (fw, dest(0, Forward::Gate), None),
            (fw, dest(8080, Forward::Gate), None),
        ];
        for (k, d, want) in cases {
            assert_eq!(mapped_port(k, &d), want, "{k} {d:?}");
        }
    }

    #[test]
    fn service_comparison_normalises_masks_and_flags() {
        let key = web();
        let base = ServiceSpec::new(key, "wrr");
        let with = |f: &dyn Fn(&mut ServiceSpec)| {
            let mut s = base.clone();
            f(&mut s);
            s
        };
        let full = Netmask::V4(Ipv4Addr::BROADCAST);
        let cases: Vec<(ServiceSpec, ServiceSpec, bool)> = vec![
            (base.clone(), base.clone(), true),
            (with(&|s| s.netmask = Some(full)), base.clone(), true),
            (with(&|s| s.scheduler = "rr".into()), base.clone(), false),
            (
                with(&|s| {
                    s.persistent = Some(300);
                    s.netmask = Some(full)
                }),
                with(&|s| s.persistent = Some(300)),
                true,
            ),
            (
                with(&|s| {
                    s.persistent = Some(300);
                    s.netmask = Some(full)
                }),
                with(&|s| {
                    s.persistent = Some(300);
                    s.netmask = Some(Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)))
                }),
                false,
            ),
            (
                with(&|s| s.persistent = Some(60)),
                with(&|s| s.persistent = Some(300)),
                false,
            ),
            (
                with(&|s| s.sched_flags = SchedFlags::parse("sh-port,sh-fallback")),
                with(&|s| s.sched_flags = SchedFlags::parse("sh-fallback,sh-port")),
                true,
            ),
            (with(&|s| s.ops = true), base.clone(), false),
        ];
        for (i, (have, want, same)) in cases.iter().enumerate() {
            assert_eq!(service_matches(have, want), *same, "case {i}");
        }
    }
}
