//! Dynamic real servers, lvsdr style (cluster-integration §1.4, §1.10): the real servers of
//! a virtual service come from the cluster instead of `real=` lines.
//!
//! A [`Spec`] names one *candidate* source (nodes running a resource, the partition's
//! members, a command's output, or a static list) and any number of *filters* (a node
//! attribute matching a regular expression, a per-candidate command printing `t`). The
//! selection is pure over a [`ClusterQuery`], so it is tested without a cluster;
//! [`SystemQuery`] asks Pacemaker's tools (they honour `CIB_file`, which the tests use).
//!
//! Names become addresses once per refresh (the node map, a literal address, or the
//! resolver), and everything downstream compares addresses: the lvsdr bug of comparing
//! reverse-resolved names, which re-added servers on every monitor, cannot happen.

use std::collections::BTreeMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::process::{Command, Stdio};

use ldirectord_parsers::config::{Family, Forward};

/// Where the candidate real servers come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidates {
    /// The nodes where this resource runs (`crm_resource --locate`).
    Resource(String),
    /// The members of the cluster partition (`crm_node -p`).
    Partition,
    /// The words this shell command prints. Failing or printing nothing is an error
    /// (the last good set is kept).
    Command(String),
    /// The hosts listed in the weights.
    List,
}

/// A filter over the candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Keep a node whose transient attribute `name` matches `regex` (extended regular
    /// expression, whole value).
    Attribute { name: String, regex: String },
    /// Keep a candidate when `COMMAND CANDIDATE` prints exactly `t`.
    Command(String),
}

/// One virtual service's dynamic real servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub candidates: Candidates,
    pub filters: Vec<Filter>,
    /// Per-host weights, in the order given (also the list for [`Candidates::List`]).
    pub weights: Vec<(String, u32)>,
    /// The weight of a host not in `weights`. Default 1.
    pub default_weight: u32,
    /// Default gate (direct routing), as lvsdr.
    pub forward: Forward,
}

impl Spec {
    pub fn new(candidates: Candidates) -> Spec {
        Spec {
            candidates,
            filters: Vec::new(),
            weights: Vec::new(),
            default_weight: 1,
            forward: Forward::Gate,
        }
    }

    fn weight_of(&self, host: &str) -> u32 {
        self.weights
            .iter()
            .find(|(h, _)| h == host)
            .map(|(_, w)| *w)
            .unwrap_or(self.default_weight)
    }
}

/// Parse `HOST[,WEIGHT] ...` (lvsdr's `weight_of_realservers`); a missing weight is
/// `default`.
pub fn parse_weights(text: &str, default: u32) -> Result<Vec<(String, u32)>, String> {
    text.split_whitespace()
        .map(|item| match item.split_once(',') {
            None => Ok((item.to_owned(), default)),
            Some((h, w)) if !h.is_empty() => w
                .parse::<u32>()
                .map(|w| (h.to_owned(), w))
                .map_err(|_| format!("bad weight in {item:?}: HOST,WEIGHT with WEIGHT a number")),
            Some(_) => Err(format!("bad item {item:?}: HOST,WEIGHT")),
        })
        .collect()
}

/// Parse `NODE=ADDRESS ...` (`node_address_map`).
pub fn parse_node_map(text: &str) -> Result<BTreeMap<String, IpAddr>, String> {
    text.split_whitespace()
        .map(|item| {
            let (n, a) = item
                .split_once('=')
                .ok_or_else(|| format!("bad item {item:?}: NODE=ADDRESS"))?;
            let a = a
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map_err(|_| format!("bad address in {item:?}"))?;
            Ok((n.to_owned(), a))
        })
        .collect()
}

/// What the selection needs from the cluster and the host. Errors are reasons.
pub trait ClusterQuery {
    /// Nodes where `resource` runs.
    fn locate(&self, resource: &str) -> Result<Vec<String>, String>;
    /// Members of the partition.
    fn partition(&self) -> Result<Vec<String>, String>;
    /// A node's transient attribute; `Ok(None)` when the node has none.
    fn attribute(&self, node: &str, name: &str) -> Result<Option<String>, String>;
    /// The words a command prints; an error if it fails.
    fn list_command(&self, command: &str) -> Result<Vec<String>, String>;
    /// Whether `command candidate` prints exactly `t`.
    fn check_command(&self, command: &str, candidate: &str) -> bool;
    /// Whether `regex` (ERE) matches all of `value`.
    fn matches(&self, regex: &str, value: &str) -> Result<bool, String>;
    /// Resolve a host name in `family`.
    fn resolve(&self, host: &str, family: Family) -> Result<IpAddr, String>;
}

/// One selected real server.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    pub address: IpAddr,
    pub weight: u32,
    /// The name it was selected by (node name, or the address as written).
    pub host: String,
}

/// Select the real servers of `spec`: candidates, then filters, then addresses. Sorted by
/// address, one entry per address. An `Err` means the source failed (keep the last set).
pub fn select(
    spec: &Spec,
    nodes: &BTreeMap<String, IpAddr>,
    family: Family,
    q: &dyn ClusterQuery,
) -> Result<Vec<Member>, String> {
    let candidates = match &spec.candidates {
        Candidates::Resource(r) => q.locate(r)?,
        Candidates::Partition => q.partition()?,
        Candidates::Command(c) => {
            let list = q.list_command(c)?;
            if list.is_empty() {
                return Err(format!("the real-server command printed nothing: {c}"));
            }
            list
        }
        Candidates::List => spec.weights.iter().map(|(h, _)| h.clone()).collect(),
    };
    let mut kept = Vec::new();
    'candidate: for host in candidates {
        for f in &spec.filters {
            let keep = match f {
                Filter::Attribute { name, regex } => match q.attribute(&host, name)? {
                    Some(value) => q.matches(regex, &value)?,
                    None => false,
                },
                Filter::Command(c) => q.check_command(c, &host),
            };
            if !keep {
                continue 'candidate;
            }
        }
        kept.push(host);
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
            return Err(format!(
                "{host} is {address}, not of the virtual service's address family"
            ));
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

/// The real thing: Pacemaker's command-line tools, `sh`, `grep -E`, and the resolver.
pub struct SystemQuery;

fn run(cmd: &mut Command) -> Result<(i32, String, String), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    ))
}

impl ClusterQuery for SystemQuery {
    fn locate(&self, resource: &str) -> Result<Vec<String>, String> {
        let (rc, out, err) =
            run(Command::new("crm_resource").args(["--resource", resource, "--locate", "-Q"]))?;
        if rc != 0 {
            return Err(format!(
                "crm_resource --locate -r {resource} exited {rc}: {err}"
            ));
        }
        // -Q prints one node per line; a promoted instance may carry a role word after it.
        Ok(out
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect())
    }

    fn partition(&self) -> Result<Vec<String>, String> {
        let (rc, out, err) = run(Command::new("crm_node").arg("-p"))?;
        if rc != 0 {
            return Err(format!("crm_node -p exited {rc}: {err}"));
        }
        Ok(out.split_whitespace().map(str::to_owned).collect())
    }

    fn attribute(&self, node: &str, name: &str) -> Result<Option<String>, String> {
        let (rc, out, err) = run(Command::new("crm_attribute")
            .args(["-N", node, "-l", "reboot", "-n", name, "-G", "-q"]))?;
        match rc {
            0 => Ok(Some(out.trim().to_owned())),
            // CRM_EX_NOSUCH: the node has no such attribute.
            105 => Ok(None),
            _ => Err(format!(
                "crm_attribute -N {node} -n {name} exited {rc}: {err}"
            )),
        }
    }

    fn list_command(&self, command: &str) -> Result<Vec<String>, String> {
        let (rc, out, err) = run(Command::new("/bin/sh").args(["-c", command]))?;
        if rc != 0 {
            return Err(format!(
                "the real-server command exited {rc}: {command}: {err}"
            ));
        }
        Ok(out.split_whitespace().map(str::to_owned).collect())
    }

    fn check_command(&self, command: &str, candidate: &str) -> bool {
        // The candidate is one more argument, as lvsdr appends it.
        let script = format!("{command} \"$1\"");
        matches!(
            run(Command::new("/bin/sh").args(["-c", &script, "sh", candidate])),
            Ok((_, out, _)) if out.trim() == "t"
        )
    }

    fn matches(&self, regex: &str, value: &str) -> Result<bool, String> {
        ere_match(regex, value)
    }

    fn resolve(&self, host: &str, family: Family) -> Result<IpAddr, String> {
        let addrs = (host, 0)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?;
        addrs
            .map(|a| a.ip())
            .find(|a| a.is_ipv4() == (family == Family::Inet))
            .ok_or_else(|| format!("{host} has no address of the virtual service's family"))
    }
}

/// Whole-value extended regular expression match, with grep's dialect (lvsdr used
/// `grep -Ex`, so operators' expressions keep their meaning).
pub fn ere_match(regex: &str, value: &str) -> Result<bool, String> {
    use std::io::Write as _;
    let mut child = Command::new("grep")
        .args(["-Exq", "-e", regex])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run grep: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = writeln!(stdin, "{value}");
    }
    let out = child.wait_with_output().map_err(|e| format!("grep: {e}"))?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(format!(
            "bad regular expression {regex:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
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
        fn locate(&self, r: &str) -> Result<Vec<String>, String> {
            self.running
                .get(r)
                .cloned()
                .ok_or_else(|| "not found".into())
        }
        fn partition(&self) -> Result<Vec<String>, String> {
            Ok(vec!["node1".into(), "node2".into(), "node3".into()])
        }
        fn attribute(&self, n: &str, a: &str) -> Result<Option<String>, String> {
            Ok(self.attrs.get(&(n.to_owned(), a.to_owned())).cloned())
        }
        fn list_command(&self, _: &str) -> Result<Vec<String>, String> {
            self.list.clone().ok_or_else(|| "exited 1".into())
        }
        fn check_command(&self, _: &str, c: &str) -> bool {
            c != "node3"
        }
        fn matches(&self, re: &str, v: &str) -> Result<bool, String> {
            Ok(re.split('|').any(|alt| alt == v))
        }
        fn resolve(&self, h: &str, _: Family) -> Result<IpAddr, String> {
            Err(format!("cannot resolve {h}"))
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
        let mut spec = Spec::new(Candidates::Resource("realsvr".into()));
        spec.filters.push(Filter::Attribute {
            name: "pgsql-status".into(),
            regex: "HS:sync|HS:potential|HS:async".into(),
        });
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

    #[test]
    fn lists_weights_and_literal_addresses() {
        let mut spec = Spec::new(Candidates::List);
        spec.weights = parse_weights("node2,5 192.168.0.234,0 node1", 3).unwrap();
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
        let spec = Spec::new(Candidates::Command("x".into()));
        assert!(select(&spec, &nodes(), Family::Inet, &Fake::default()).is_err());
        let empty = Fake {
            list: Some(vec![]),
            ..Fake::default()
        };
        assert!(select(&spec, &nodes(), Family::Inet, &empty).is_err());
        let mut spec = Spec::new(Candidates::Partition);
        spec.filters.push(Filter::Attribute {
            name: "pgsql-status".into(),
            regex: "HS:sync".into(),
        });
        let none = select(&spec, &nodes(), Family::Inet, &Fake::default()).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn check_commands_filter_and_unknown_names_fail() {
        let mut spec = Spec::new(Candidates::Partition);
        spec.filters.push(Filter::Command("check".into()));
        let got = select(&spec, &nodes(), Family::Inet, &Fake::default()).unwrap();
        assert_eq!(addrs(&got).len(), 2);
        let got = select(&spec, &BTreeMap::new(), Family::Inet, &Fake::default());
        assert!(got.unwrap_err().contains("cannot resolve node1"));
        let spec = Spec::new(Candidates::Resource("nosuch".into()));
        assert!(select(&spec, &nodes(), Family::Inet, &Fake::default()).is_err());
        let no_list = Spec::new(Candidates::List);
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

    #[test]
    fn grep_dialect_matches_whole_values() {
        assert!(ere_match("HS:sync|HS:async", "HS:async").unwrap());
        assert!(!ere_match("HS:sync|HS:async", "HS:asyncX").unwrap());
        assert!(!ere_match("HS:sync", "xHS:sync").unwrap());
        assert!(ere_match("(", "x").is_err());
    }
}
