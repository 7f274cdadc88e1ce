//! Real servers from the cluster, lvsdr style (cluster-integration §1.4, §1.10): the real
//! servers of a virtual service come from the cluster instead of `real=` lines. The daemon
//! (`daemon::dynamic`) and the OCF agent (`cluster::agent`) both select them here.
//!
//! A [`RealSources`] (the model of the `realsource=` directives, or built from the OCF
//! agent's lvsdr-style parameters) names one *candidate* source (nodes running a
//! resource, the partition's members, a command's output, or a static list) and any
//! number of *filters* (a node attribute matching a regular expression, a per-candidate
//! command printing `t`).
//!
//! - this module: [`select`], pure over a [`ClusterQuery`], so it is tested without a
//!   cluster; the lvsdr parameter lists ([`parse_weights`], [`parse_node_map`]);
//! - [`query`]: what the selection asks the cluster, and [`SystemQuery`], which asks
//!   Pacemaker's tools (they honour `CIB_file`, which the tests use), each command
//!   bounded by a timeout;
//! - [`generate`]: the selected servers as `real=` lines or as the daemon's
//!   configuration.
//!
//! Names become addresses once per refresh (the node map, a literal address, or the
//! resolver), and everything downstream compares addresses: the lvsdr bug of comparing
//! reverse-resolved names, which re-added servers on every monitor, cannot happen.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use ldirectord_parsers::config::{Family, RealCandidates, RealFilter, RealSources};

pub mod generate;
pub mod query;

pub use query::{ClusterQuery, SystemQuery};

/// Why a source gave no set (the daemon and the agent then keep the last good one). The
/// text is what the operator reads after `real servers of VIRTUAL: `.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} did not finish within {} s (killed)", .timeout.as_secs())]
    Timeout { program: String, timeout: Duration },
    /// A cluster tool failed; `tool` is its command line as an operator would type it.
    #[error("{tool} exited {code}: {stderr}")]
    ToolFailed {
        tool: String,
        code: i32,
        stderr: String,
    },
    #[error("the real-server command exited {code}: {command}: {stderr}")]
    CommandFailed {
        command: String,
        code: i32,
        stderr: String,
    },
    #[error("the real-server command printed nothing: {0}")]
    PrintedNothing(String),
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} has no address of the virtual service's family")]
    NoAddressOfFamily(String),
    #[error("{host} is {address}, not of the virtual service's address family")]
    WrongFamily { host: String, address: IpAddr },
    /// The daemon's bound on one whole refresh (`daemon::dynamic`).
    #[error("the refresh did not finish within {} s", .0.as_secs())]
    RefreshTimeout(Duration),
    #[error("the refresh failed: {0}")]
    RefreshFailed(#[source] tokio::task::JoinError),
}

/// Why an lvsdr parameter list (`weight_of_realservers`, `node_address_map`) is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("bad weight in {0:?}: HOST,WEIGHT with WEIGHT a number")]
    Weight(String),
    /// An item not of the form `expected` (`HOST,WEIGHT` or `NODE=ADDRESS`).
    #[error("bad item {item:?}: {expected}")]
    Item {
        item: String,
        expected: &'static str,
    },
    #[error("bad address in {0:?}")]
    Address(String),
}

/// Parse `HOST[,WEIGHT] ...` (lvsdr's `weight_of_realservers`); a missing weight is
/// `default`.
pub fn parse_weights(text: &str, default: u32) -> Result<Vec<(String, u32)>, ListError> {
    text.split_whitespace()
        .map(|item| match item.split_once(',') {
            None => Ok((item.to_owned(), default)),
            Some((h, w)) if !h.is_empty() => w
                .parse::<u32>()
                .map(|w| (h.to_owned(), w))
                .map_err(|_| ListError::Weight(item.to_owned())),
            Some(_) => Err(ListError::Item {
                item: item.to_owned(),
                expected: "HOST,WEIGHT",
            }),
        })
        .collect()
}

/// Parse `NODE=ADDRESS ...` (`node_address_map`).
pub fn parse_node_map(text: &str) -> Result<BTreeMap<String, IpAddr>, ListError> {
    text.split_whitespace()
        .map(|item| {
            let (n, a) = item.split_once('=').ok_or_else(|| ListError::Item {
                item: item.to_owned(),
                expected: "NODE=ADDRESS",
            })?;
            let a = a
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map_err(|_| ListError::Address(item.to_owned()))?;
            Ok((n.to_owned(), a))
        })
        .collect()
}

/// One selected real server.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    pub address: IpAddr,
    pub weight: u32,
    /// The name it was selected by (node name, or the address as written).
    pub host: String,
}

/// Select the real servers of `spec`: candidates, then filters (the fallback filters when
/// the filters keep none), then addresses. Sorted by address, one entry per address. An `Err` means the source failed (keep the last set):
/// a command that fails or prints nothing, a cluster tool that fails, a name that does not
/// resolve. Candidates that the filters all drop are an empty set, not an error.
pub fn select(
    spec: &RealSources,
    nodes: &BTreeMap<String, IpAddr>,
    family: Family,
    q: &dyn ClusterQuery,
) -> Result<Vec<Member>, SourceError> {
    let candidates = match &spec.candidates {
        RealCandidates::Resource(r) => q.locate(r)?,
        RealCandidates::Partition => q.partition()?,
        RealCandidates::Command(c) => {
            let list = q.list_command(c)?;
            if list.is_empty() {
                return Err(SourceError::PrintedNothing(c.clone()));
            }
            list
        }
        RealCandidates::List(items) => items.iter().map(|(h, _)| h.clone()).collect(),
    };
    let mut kept = passing(&candidates, &spec.filters, q)?;
    if kept.is_empty() && !spec.fallback_filters.is_empty() {
        kept = passing(&candidates, &spec.fallback_filters, q)?;
    }
    let mut out: BTreeMap<IpAddr, Member> = BTreeMap::new();
    for host in kept {
        let address = match nodes.get(&host) {
            Some(a) => *a,
            None => match host.trim_start_matches('[').trim_end_matches(']').parse() {
                Ok(a) => a,
                Err(_) => q.resolve(&host, family)?,
            },
        };
        let fits = matches!(
            (family, address),
            (Family::Inet, IpAddr::V4(_)) | (Family::Inet6, IpAddr::V6(_))
        );
        if !fits {
            return Err(SourceError::WrongFamily { host, address });
        }
        let weight = spec.weight_of(&host);
        out.entry(address).or_insert(Member {
            address,
            weight,
            host,
        });
    }
    Ok(out.into_values().collect())
}

/// The candidates that every one of `filters` keeps, in order.
fn passing(
    candidates: &[String],
    filters: &[RealFilter],
    q: &dyn ClusterQuery,
) -> Result<Vec<String>, SourceError> {
    let mut kept = Vec::new();
    'candidate: for host in candidates {
        for f in filters {
            let keep = match f {
                RealFilter::Attribute { name, pattern } => match q.attribute(host, name)? {
                    Some(value) => pattern.is_match(&value),
                    None => false,
                },
                RealFilter::Command(c) => q.check_command(c, host),
            };
            if !keep {
                continue 'candidate;
            }
        }
        kept.push(host.clone());
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A cluster in a table.
    #[derive(Default)]
    struct Fake {
        running: BTreeMap<String, Vec<String>>,
        attrs: BTreeMap<(String, String), String>,
        list: Option<Vec<String>>,
    }

    impl ClusterQuery for Fake {
        fn locate(&self, r: &str) -> Result<Vec<String>, SourceError> {
            self.running
                .get(r)
                .cloned()
                .ok_or_else(|| SourceError::ToolFailed {
                    tool: format!("crm_resource --locate -r {r}"),
                    code: 6,
                    stderr: "not found".into(),
                })
        }
        fn partition(&self) -> Result<Vec<String>, SourceError> {
            Ok(vec!["node1".into(), "node2".into(), "node3".into()])
        }
        fn attribute(&self, n: &str, a: &str) -> Result<Option<String>, SourceError> {
            Ok(self.attrs.get(&(n.to_owned(), a.to_owned())).cloned())
        }
        fn list_command(&self, c: &str) -> Result<Vec<String>, SourceError> {
            self.list.clone().ok_or_else(|| SourceError::CommandFailed {
                command: c.to_owned(),
                code: 1,
                stderr: String::new(),
            })
        }
        fn check_command(&self, _: &str, c: &str) -> bool {
            c != "node3"
        }
        fn resolve(&self, h: &str, _: Family) -> Result<IpAddr, SourceError> {
            Err(SourceError::Resolve {
                host: h.to_owned(),
                source: std::io::Error::other("no such host"),
            })
        }
    }

    fn sources(candidates: RealCandidates) -> RealSources {
        RealSources {
            spans: Vec::new(),
            candidates,
            filters: Vec::new(),
            fallback_filters: Vec::new(),
            weights: Vec::new(),
            default_weight: 1,
            forward: ldirectord_parsers::config::Forward::Gate,
        }
    }

    fn attribute(name: &str, regex: &str) -> RealFilter {
        RealFilter::Attribute {
            name: name.into(),
            pattern: ldirectord_parsers::config::ValuePattern::new(regex).unwrap(),
        }
    }

    fn nodes() -> BTreeMap<String, IpAddr> {
        parse_node_map("node1=10.0.0.1 node2=10.0.0.2 node3=10.0.0.3").unwrap()
    }

    fn pgsql() -> Fake {
        let mut f = Fake::default();
        f.running
            .insert("realsvr".into(), vec!["node2".into(), "node3".into()]);
        for (n, v) in [
            ("node1", "PRI"),
            ("node2", "HS:sync"),
            ("node3", "HS:async"),
        ] {
            f.attrs.insert((n.into(), "pgsql-status".into()), v.into());
        }
        f
    }

    fn addrs(m: &[Member]) -> Vec<(String, u32)> {
        m.iter()
            .map(|m| (m.address.to_string(), m.weight))
            .collect()
    }

    #[test]
    fn resource_then_attribute_is_the_pha4pgsql_setup() {
        let mut spec = sources(RealCandidates::Resource("realsvr".into()));
        spec.filters
            .push(attribute("pgsql-status", "HS:sync|HS:potential|HS:async"));
        let mut f = pgsql();
        let got = select(&spec, &nodes(), Family::Inet, &f).unwrap();
        assert_eq!(
            addrs(&got),
            [("10.0.0.2".into(), 1), ("10.0.0.3".into(), 1)]
        );
        f.attrs
            .insert(("node3".into(), "pgsql-status".into()), "HS:alone".into());
        let got = select(&spec, &nodes(), Family::Inet, &f).unwrap();
        assert_eq!(addrs(&got), [("10.0.0.2".into(), 1)]);
    }

    /// While a primary is elected every standby is `HS:alone`: the fallback filter keeps
    /// them; once one streams again, the filters choose alone.
    #[test]
    fn the_fallback_filters_choose_when_the_filters_keep_none() {
        let mut spec = sources(RealCandidates::Resource("realsvr".into()));
        spec.filters
            .push(attribute("pgsql-status", "HS:sync|HS:potential|HS:async"));
        spec.fallback_filters
            .push(attribute("pgsql-status", "HS:alone"));
        let mut f = pgsql();
        f.running.insert(
            "realsvr".into(),
            vec!["node1".into(), "node2".into(), "node3".into()],
        );
        let got = select(&spec, &nodes(), Family::Inet, &f).unwrap();
        assert_eq!(addrs(&got).len(), 2, "no fallback while one streams");
        for (n, v) in [("node2", "HS:alone"), ("node3", "HS:alone")] {
            f.attrs.insert((n.into(), "pgsql-status".into()), v.into());
        }
        let got = select(&spec, &nodes(), Family::Inet, &f).unwrap();
        assert_eq!(
            addrs(&got),
            [("10.0.0.2".into(), 1), ("10.0.0.3".into(), 1)],
            "both hot standbys while none streams"
        );
        f.attrs
            .insert(("node3".into(), "pgsql-status".into()), "HS:async".into());
        let got = select(&spec, &nodes(), Family::Inet, &f).unwrap();
        assert_eq!(
            addrs(&got),
            [("10.0.0.3".into(), 1)],
            "the streaming one only"
        );
        for n in ["node2", "node3"] {
            f.attrs
                .insert((n.into(), "pgsql-status".into()), "STOP".into());
        }
        let got = select(&spec, &nodes(), Family::Inet, &f).unwrap();
        assert!(got.is_empty(), "neither keeps a stopped one: {got:?}");
    }

    #[test]
    fn lists_weights_and_literal_addresses() {
        let mut spec = sources(RealCandidates::List(
            parse_weights("node2,5 192.168.0.234,0 node1", 3)
                .unwrap()
                .into_iter()
                .map(|(h, w)| (h, (w != 3).then_some(w)))
                .collect(),
        ));
        spec.default_weight = 3;
        let got = select(&spec, &nodes(), Family::Inet, &Fake::default()).unwrap();
        assert_eq!(
            addrs(&got),
            [
                ("10.0.0.1".into(), 3),
                ("10.0.0.2".into(), 5),
                ("192.168.0.234".into(), 0)
            ]
        );
    }

    #[test]
    fn failing_or_empty_commands_are_errors_an_empty_filter_result_is_not() {
        let command = sources(RealCandidates::Command("x".into()));
        assert!(select(&command, &nodes(), Family::Inet, &Fake::default()).is_err());
        let empty = Fake {
            list: Some(vec![]),
            ..Fake::default()
        };
        assert!(select(&command, &nodes(), Family::Inet, &empty).is_err());
        let mut spec = sources(RealCandidates::Partition);
        spec.filters.push(attribute("pgsql-status", "HS:sync"));
        let none = select(&spec, &nodes(), Family::Inet, &Fake::default()).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn check_commands_filter_and_unknown_names_fail() {
        let mut spec = sources(RealCandidates::Partition);
        spec.filters.push(RealFilter::Command("check".into()));
        let got = select(&spec, &nodes(), Family::Inet, &Fake::default()).unwrap();
        assert_eq!(addrs(&got).len(), 2);
        let got = select(&spec, &BTreeMap::new(), Family::Inet, &Fake::default());
        assert!(
            got.unwrap_err()
                .to_string()
                .contains("cannot resolve node1")
        );
        let spec = sources(RealCandidates::Resource("nosuch".into()));
        assert!(select(&spec, &nodes(), Family::Inet, &Fake::default()).is_err());
        let no_list = sources(RealCandidates::List(Vec::new()));
        let got = select(&no_list, &nodes(), Family::Inet6, &Fake::default());
        assert!(got.unwrap().is_empty());
    }

    #[test]
    fn weights_and_maps_reject_garbage() {
        assert!(parse_weights("node1,x", 1).is_err());
        assert!(parse_weights(",2", 1).is_err());
        assert!(parse_node_map("node1").is_err());
        assert!(parse_node_map("node1=nope").is_err());
        assert_eq!(
            parse_node_map("n=[2001:db8::1]").unwrap()["n"].to_string(),
            "2001:db8::1"
        );
    }
}
