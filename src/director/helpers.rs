//! `checkpath=forwarding`: which checks go through the forwarding path, their firewall
//! marks, and the helper services that carry them. Pure functions of the config model.
//!
//! A helper is a firewall-mark service (scheduler `rr`, no persistence) holding exactly
//! one real, with the real's forwarding method and weight 1 whatever its health: it
//! carries only the director's own check sockets (marked with `SO_MARK`, see
//! `ldirectord_checks::route`), never clients' traffic, so its weight never changes.
//!
//! Marks: the range `checkmarkbase` .. `checkmarkbase + CHECK_MARK_COUNT` belongs to the
//! director; [`check_routes`] (in the checks crate, which `--probe` shares) gives each
//! (virtual, real) its mark. Any fwmark service in the range that is not a wanted helper
//! is the director's leftover (a crash, an older config) and is deleted at start, reload
//! and resync.

use ldirectord_checks::CheckSpec;
pub use ldirectord_checks::route::check_routes;
use ldirectord_parsers::config::{CHECK_MARK_COUNT, Config, Family, Forward};

use crate::engine::{DestSpec, ServiceKey, ServiceSpec};

/// The helper service that carries `spec`'s checks, when it goes through the forwarding
/// path: the service of its mark and its one destination.
pub fn helper(spec: &CheckSpec, forward: Forward) -> Option<(ServiceSpec, DestSpec)> {
    let route = spec.route.filter(|_| spec.forwardable())?;
    let family = if spec.ip.is_ipv6() {
        Family::Inet6
    } else {
        Family::Inet
    };
    let key = ServiceKey::Fwmark {
        mark: route.mark,
        family,
    };
    Some((
        ServiceSpec::new(key, "rr"),
        DestSpec::new(spec.ip, 0, forward, 1),
    ))
}

/// Whether `key` is in the director's range of helper marks.
pub fn is_helper_key(config: &Config, key: &ServiceKey) -> bool {
    let base = config.globals.checkmarkbase;
    matches!(*key, ServiceKey::Fwmark { mark, .. } if mark >= base && mark - base < CHECK_MARK_COUNT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldirectord_parsers::config::resolve::StaticResolver;
    use ldirectord_parsers::config::{ParseOptions, parse_with};
    use std::collections::HashSet;
    use std::path::Path;

    fn config(text: &str) -> Config {
        let opts = ParseOptions {
            resolver: &StaticResolver::default(),
            check_files: false,
            hostname: Some("director".into()),
        };
        parse_with(text, Path::new("t.cf"), &opts).unwrap().config
    }

    const MIXED: &str = "checkpath=forwarding
virtual=192.0.2.10:80
\treal=10.0.0.1:80 gate
\treal=10.0.0.2:80 ipip
\treal=10.0.0.3:80 masq
\tchecktype=connect
virtual=192.0.2.10:53
\tprotocol=udp
\treal=10.0.0.1:53 gate
\tchecktype=negotiate
\tservice=dns
\tcheckpath=direct
virtual=7
\treal=10.0.0.1:80 gate
\tchecktype=connect
";

    #[test]
    fn only_gate_and_ipip_reals_of_forwarding_address_virtuals_get_a_route() {
        let c = config(MIXED);
        let routes = check_routes(&c);
        let has: Vec<Vec<bool>> = routes
            .iter()
            .map(|v| v.iter().map(Option::is_some).collect())
            .collect();
        assert_eq!(has, [vec![true, true, false], vec![false], vec![false]]);
        let vip: std::net::IpAddr = "192.0.2.10".parse().unwrap();
        for route in routes.iter().flatten().flatten() {
            assert_eq!(route.vip, vip);
            assert!(is_helper_key(
                &c,
                &ServiceKey::Fwmark {
                    mark: route.mark,
                    family: Family::Inet
                }
            ));
        }
        assert_ne!(routes[0][0], routes[0][1], "one mark per real");
    }

    #[test]
    fn a_real_keeps_its_mark_when_others_come_and_go() {
        let before = config(MIXED);
        let after = config(&MIXED.replace(
            "\treal=10.0.0.1:80 gate\n\treal=10.0.0.2",
            "\treal=10.0.0.9:80 gate\n\treal=10.0.0.2",
        ));
        assert_eq!(check_routes(&before)[0][1], check_routes(&after)[0][1]);
        assert_ne!(check_routes(&before)[0][0], check_routes(&after)[0][0]);
    }

    #[test]
    fn marks_stay_in_the_configured_range_and_never_repeat() {
        let mut text = "checkpath=forwarding\ncheckmarkbase=0x100\nvirtual=192.0.2.10:80\n\tchecktype=connect\n".to_owned();
        for i in 1..=200u32 {
            text.push_str(&format!("\treal=10.0.{}.{}:80 gate\n", i / 250, i % 250));
        }
        let c = config(&text);
        let marks: Vec<u32> = check_routes(&c)[0]
            .iter()
            .map(|r| r.unwrap().mark)
            .collect();
        assert_eq!(marks.iter().collect::<HashSet<_>>().len(), 200);
        assert!(
            marks
                .iter()
                .all(|&m| (0x100..0x100 + CHECK_MARK_COUNT).contains(&m))
        );
        assert!(!is_helper_key(
            &c,
            &ServiceKey::Fwmark {
                mark: 0xff,
                family: Family::Inet
            }
        ));
        assert!(!is_helper_key(
            &c,
            &ServiceKey::Fwmark {
                mark: 0x100 + CHECK_MARK_COUNT,
                family: Family::Inet
            }
        ));
    }

    #[test]
    fn a_helper_holds_the_real_alone_at_weight_one() {
        let c = config(MIXED);
        let routes = check_routes(&c);
        let vs = &c.virtuals[0];
        let cases = [(0, Forward::Gate, true), (1, Forward::Ipip, true)];
        for (r, forward, some) in cases {
            let spec = CheckSpec::for_real(vs, &vs.reals[r]).through(routes[0][r].unwrap());
            let (service, dest) = helper(&spec, forward).unwrap();
            assert!(some);
            assert_eq!(
                service.key,
                ServiceKey::Fwmark {
                    mark: routes[0][r].unwrap().mark,
                    family: Family::Inet
                }
            );
            assert_eq!(service.scheduler, "rr");
            assert_eq!(
                (dest.ip, dest.port, dest.forward, dest.weight),
                (vs.reals[r].ip, 0, forward, 1)
            );
        }
        // A check that cannot carry the mark gets no helper, even with a route.
        let mut ping = CheckSpec::for_real(vs, &vs.reals[0]).through(routes[0][0].unwrap());
        ping.checktype = ldirectord_parsers::config::CheckType::Ping;
        assert_eq!(helper(&ping, Forward::Gate), None);
        // Without a route there is no helper.
        assert_eq!(
            helper(&CheckSpec::for_real(vs, &vs.reals[0]), Forward::Gate),
            None
        );
    }

    /// The director's table after `actions`, starting from `table`.
    fn after(
        mut table: crate::engine::Table,
        actions: &[crate::director::Action],
    ) -> crate::engine::Table {
        for a in actions {
            if let crate::director::Action::Apply(op) = a {
                crate::director::apply_op(&mut table, op);
            }
        }
        table
    }

    fn helper_keys(table: &crate::engine::Table, c: &Config) -> Vec<ServiceKey> {
        let mut keys: Vec<ServiceKey> = table
            .services
            .iter()
            .map(|s| s.spec.key)
            .filter(|k| is_helper_key(c, k))
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn helpers_are_created_adopted_switched_off_by_reload_and_removed_at_stop() {
        use crate::director::Director;
        use crate::engine::Table;
        let c = config(MIXED);
        let (mut d, actions) = Director::start(c.clone(), &Table::default());
        let table = after(Table::default(), &actions);
        // Two helpers (gate and ipip real of the forwarding virtual), one real each.
        let keys = helper_keys(&table, &c);
        assert_eq!(keys.len(), 2);
        for k in &keys {
            let entry = table.service(k).unwrap();
            assert_eq!(entry.dests.len(), 1);
            assert_eq!(entry.dests[0].spec.weight, 1);
        }
        assert!(d.has_helpers());
        // The user-facing status lists configured virtuals only.
        assert_eq!(d.status().len(), 3);

        // A restart over the live table (a crash): nothing to do for the helpers; a
        // stray real in one and a leftover helper of an older configuration are fixed.
        let mut live = table.clone();
        let stray = crate::engine::DestSpec::new("10.9.9.9".parse().unwrap(), 0, Forward::Gate, 1);
        crate::director::apply_op(&mut live, &crate::engine::Op::AddDest(keys[0], stray));
        let old = ServiceKey::Fwmark {
            mark: c.globals.checkmarkbase + 3,
            family: Family::Inet,
        };
        if !keys.contains(&old) {
            crate::director::apply_op(
                &mut live,
                &crate::engine::Op::AddService(ServiceSpec::new(old, "rr")),
            );
        }
        let (_, actions) = Director::start(c.clone(), &live);
        let again = after(live, &actions);
        assert_eq!(helper_keys(&again, &c), keys);
        assert!(
            again
                .services
                .iter()
                .all(|s| !is_helper_key(&c, &s.spec.key) || s.dests.len() == 1)
        );
        let (_, actions) = Director::start(c.clone(), &again);
        let helper_ops = actions
            .iter()
            .filter(|a| matches!(a, crate::director::Action::Apply(_)))
            .count();
        assert_eq!(helper_ops, 0, "an adopted table needs nothing: {actions:?}");

        // A reload back to direct removes the helpers; forwarding again brings them back.
        let direct = config(&MIXED.replace("checkpath=forwarding\n", ""));
        let actions = d.reload(direct.clone(), &table, std::time::Duration::ZERO);
        let t2 = after(table.clone(), &actions);
        assert!(helper_keys(&t2, &c).is_empty());
        assert!(!d.has_helpers());
        let actions = d.reload(c.clone(), &t2, std::time::Duration::ZERO);
        let t3 = after(t2, &actions);
        assert_eq!(helper_keys(&t3, &c), keys);

        // Stop removes them even with cleanstop=no, and leaves other services alone.
        let keep = config(&MIXED.replace(
            "checkpath=forwarding\n",
            "checkpath=forwarding\ncleanstop=no\n",
        ));
        let (mut d, actions) = Director::start(keep.clone(), &t3);
        let t4 = after(t3, &actions);
        let actions = d.stop();
        let t5 = after(t4, &actions);
        assert!(helper_keys(&t5, &c).is_empty());
        assert_eq!(
            t5.services.len(),
            3,
            "the configured virtuals stay (cleanstop=no)"
        );
    }

    #[test]
    fn ipv6_virtuals_get_inet6_helpers_and_need_no_accept_local() {
        use crate::director::Director;
        use crate::engine::Table;
        let v6 = config(
            "checkpath=forwarding
virtual6=[fd10::100]:80
\treal6=[fd00::1]:80 gate
\treal6=[fd00::2]:80 ipip
\tchecktype=connect
",
        );
        let vip: std::net::IpAddr = "fd10::100".parse().unwrap();
        assert!(
            check_routes(&v6)[0]
                .iter()
                .all(|r| r.is_some_and(|r| r.vip == vip))
        );
        let (d, actions) = Director::start(v6.clone(), &Table::default());
        let keys = helper_keys(&after(Table::default(), &actions), &v6);
        assert_eq!(keys.len(), 2);
        assert!(keys.iter().all(|k| k.family() == Family::Inet6), "{keys:?}");
        assert!(d.has_helpers() && !d.has_ipv4_helpers());
        let (d, _) = Director::start(config(MIXED), &Table::default());
        assert!(d.has_ipv4_helpers());
    }
}
