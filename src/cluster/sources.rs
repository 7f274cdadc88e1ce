//! Dynamic real servers, lvsdr style (cluster-integration §1.4, §1.10): the real servers of
//! a virtual service come from the cluster instead of `real=` lines.
//!
//! A [`RealSources`] (the model of the `realsource=` directives, or built from the OCF
//! agent's lvsdr-style parameters) names one *candidate* source (nodes running a
//! resource, the partition's members, a command's output, or a static list) and any
//! number of *filters* (a node attribute matching a regular expression, a per-candidate
//! command printing `t`). The selection is pure over a [`ClusterQuery`], so it is tested
//! without a cluster; [`SystemQuery`] asks Pacemaker's tools (they honour `CIB_file`,
//! which the tests use), each command bounded by a timeout.
//!
//! Names become addresses once per refresh (the node map, a literal address, or the
//! resolver), and everything downstream compares addresses: the lvsdr bug of comparing
//! reverse-resolved names, which re-added servers on every monitor, cannot happen.

use std::collections::BTreeMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ldirectord_parsers::config::{Family, RealCandidates, RealFilter, RealSources};

/// How long one command of a source (`crm_resource`, `crm_node`, `crm_attribute`, a list
/// or filter command) may run before it is killed and the source counts as failed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

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
/// address, one entry per address. An `Err` means the source failed (keep the last set):
/// a command that fails or prints nothing, a cluster tool that fails, a name that does not
/// resolve. Candidates that the filters all drop are an empty set, not an error.
pub fn select(
    spec: &RealSources,
    nodes: &BTreeMap<String, IpAddr>,
    family: Family,
    q: &dyn ClusterQuery,
) -> Result<Vec<Member>, String> {
    let candidates = match &spec.candidates {
        RealCandidates::Resource(r) => q.locate(r)?,
        RealCandidates::Partition => q.partition()?,
        RealCandidates::Command(c) => {
            let list = q.list_command(c)?;
            if list.is_empty() {
                return Err(format!("the real-server command printed nothing: {c}"));
            }
            list
        }
        RealCandidates::List(items) => items.iter().map(|(h, _)| h.clone()).collect(),
    };
    let mut kept = Vec::new();
    'candidate: for host in candidates {
        for f in &spec.filters {
            let keep = match f {
                RealFilter::Attribute { name, pattern } => match q.attribute(&host, name)? {
                    Some(value) => pattern.is_match(&value),
                    None => false,
                },
                RealFilter::Command(c) => q.check_command(c, &host),
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

/// The real thing: Pacemaker's command-line tools, `sh`, and the resolver. Every command
/// runs in its own process group, killed with it after `timeout`.
#[derive(Debug, Clone, Copy)]
pub struct SystemQuery {
    pub timeout: Duration,
}

impl Default for SystemQuery {
    fn default() -> Self {
        SystemQuery {
            timeout: COMMAND_TIMEOUT,
        }
    }
}

fn drain(pipe: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Run `cmd` to completion, at most `timeout`: (exit code, stdout, stderr).
fn run(cmd: &mut Command, timeout: Duration) -> Result<(i32, String, String), String> {
    use std::os::unix::process::CommandExt as _;
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => break None,
        }
    };
    // What the command left behind (or the command itself, on a timeout) goes too, so
    // that nothing holds the pipes open.
    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    let Some(status) = status else {
        return Err(format!(
            "{program} did not finish within {} s (killed)",
            timeout.as_secs()
        ));
    };
    Ok((
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).trim().to_owned(),
    ))
}

impl ClusterQuery for SystemQuery {
    fn locate(&self, resource: &str) -> Result<Vec<String>, String> {
        let (rc, out, err) = run(
            Command::new("crm_resource").args(["--resource", resource, "--locate", "-Q"]),
            self.timeout,
        )?;
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
        let (rc, out, err) = run(Command::new("crm_node").arg("-p"), self.timeout)?;
        if rc != 0 {
            return Err(format!("crm_node -p exited {rc}: {err}"));
        }
        Ok(out.split_whitespace().map(str::to_owned).collect())
    }

    fn attribute(&self, node: &str, name: &str) -> Result<Option<String>, String> {
        let (rc, out, err) = run(
            Command::new("crm_attribute")
                .args(["-N", node, "-l", "reboot", "-n", name, "-G", "-q"]),
            self.timeout,
        )?;
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
        let (rc, out, err) = run(Command::new("/bin/sh").args(["-c", command]), self.timeout)?;
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
            run(Command::new("/bin/sh").args(["-c", &script, "sh", candidate]), self.timeout),
            Ok((_, out, _)) if out.trim() == "t"
        )
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
        fn resolve(&self, h: &str, _: Family) -> Result<IpAddr, String> {
            Err(format!("cannot resolve {h}"))
        }
    }

    fn sources(candidates: RealCandidates) -> RealSources {
        RealSources {
            spans: Vec::new(),
            candidates,
            filters: Vec::new(),
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
        assert!(got.unwrap_err().contains("cannot resolve node1"));
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

    #[test]
    fn system_commands_are_bounded_and_their_leftovers_killed() {
        let q = SystemQuery {
            timeout: Duration::from_millis(300),
        };
        let e = q.list_command("sleep 30 & echo node1; wait").unwrap_err();
        assert!(e.contains("did not finish"), "{e}");
        assert_eq!(
            q.list_command("echo node1 node2; (sleep 30 &)").unwrap(),
            ["node1", "node2"]
        );
        assert!(q.check_command("echo", "t"));
        assert!(!q.check_command("echo x", "t"));
        assert!(q.list_command("exit 3").unwrap_err().contains("exited 3"));
    }
}
