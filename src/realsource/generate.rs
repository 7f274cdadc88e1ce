//! What the daemon runs on, when the cluster supplies the real servers: a configuration
//! generated from the agent's parameters (`vip`, `port`, ...), or from an `ldirectord.cf`
//! that uses the ldirectord-rs `realsource=` directives, with the selected real servers
//! written out as ordinary `real=` lines. The daemon's reload then applies only the
//! difference to IPVS.
//!
//! The directives (inside a `virtual=` block, `nodeaddress=` at the top level):
//!
//! ```text
//! realsource=resource RSC          the nodes where RSC runs (crm_resource --locate)
//! realsource=partition             the partition's members (crm_node -p)
//! realsource=command CMD ARGS...   the words CMD prints (failure or nothing: keep the last)
//! realsource=list HOST[,W] ...     a fixed list
//! realfilter=attribute NAME REGEX  keep nodes whose transient attribute NAME matches REGEX
//! realfilter=command CMD ARGS...   keep candidates for which `CMD ARGS... CANDIDATE` prints t
//! realweights=HOST,W ...           weights by host
//! realdefault=FORWARD [WEIGHT]     gate|masq|ipip and the weight of unlisted hosts (gate 1)
//! nodeaddress=NODE ADDRESS         the address of a node (else the resolver)
//! ```
//!
//! The parser reads these directives into [`VirtualService::real_sources`] and
//! [`Globals::node_addresses`](ldirectord_parsers::config::Globals). Two consumers:
//!
//! - the daemon ([`with_members`]): the selected real servers join the block's static
//!   `real=` lines in the configuration handed to the director;
//! - the OCF agent ([`from_config`], [`expand`]): the file it hands the daemon is the
//!   operator's file with the block directives commented out (line numbers kept) and the
//!   selected real servers written as `real=` lines, so the daemon does not select again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use ldirectord_parsers::config::{
    Config, Family, Forward, NetmaskSetting, RealServer, RealSources, VirtualAddress,
    VirtualService,
};

use super::Member;

/// The prefix that turns an extension line into a comment for the parser.
pub const COMMENTED: &str = "#ldirectord-rs: ";

/// The dynamic real servers of one `virtual=` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSources {
    /// Line of the block's `virtual=` (1-based), and its text (the key of the last good set).
    pub virtual_line: usize,
    pub virtual_text: String,
    /// Line of the block's first extension directive: the `real=` lines go there.
    pub first_line: usize,
    pub spec: RealSources,
}

/// The dynamic real servers of a file, for the OCF agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    pub blocks: Vec<BlockSources>,
    pub nodes: BTreeMap<String, IpAddr>,
    /// The file with every block directive of [`Extensions::blocks`] commented out, same
    /// line numbers (`nodeaddress=` lines stay: the parser takes them, the daemon then has
    /// nothing to look up).
    pub sanitized: String,
}

const WORDS: [&str; 5] = [
    "realsource",
    "realfilter",
    "realweights",
    "realdefault",
    "nodeaddress",
];

/// Whether the text mentions any of the directives (a quick look, not a parse: it decides
/// where the daemon's file lives even when the file does not parse).
pub fn uses_extensions(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim_start();
        WORDS.iter().any(|w| {
            l.strip_prefix(w)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
    })
}

/// The blocks of a parsed file that have dynamic real servers, and the file's `text` with
/// their directive lines commented out.
pub fn from_config(text: &str, config: &Config) -> Extensions {
    let mut commented = BTreeSet::new();
    let mut blocks = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for v in &config.virtuals {
        let Some(spec) = &v.real_sources else {
            continue;
        };
        commented.extend(spec.spans.iter().map(|s| s.line));
        let virtual_line = v.span.line;
        blocks.push(BlockSources {
            virtual_line,
            virtual_text: lines
                .get(virtual_line.wrapping_sub(1))
                .map(|l| l.trim().to_owned())
                .unwrap_or_else(|| v.id()),
            first_line: spec
                .spans
                .iter()
                .map(|s| s.line)
                .min()
                .unwrap_or(virtual_line + 1),
            spec: spec.clone(),
        });
    }
    let mut sanitized = String::with_capacity(text.len() + 64);
    for (i, line) in lines.iter().enumerate() {
        if commented.contains(&(i + 1)) {
            sanitized.push_str(COMMENTED);
            sanitized.push_str(line.trim_start());
        } else {
            sanitized.push_str(line);
        }
        sanitized.push('\n');
    }
    Extensions {
        blocks,
        nodes: config.globals.node_addresses.clone(),
        sanitized,
    }
}

/// The real server of `member` in `v` (whose sources are `spec`): the virtual's port (none
/// for a firewall mark), the sources' forwarding method, no thresholds.
pub fn dynamic_real(v: &VirtualService, spec: &RealSources, member: &Member) -> RealServer {
    RealServer {
        span: spec.spans.first().copied().unwrap_or(v.span),
        ip: member.address,
        port: v.port(),
        forward: spec.forward,
        weight: member.weight,
        request: None,
        receive: None,
        lower: 0,
        upper: 0,
    }
}

/// The configuration the director runs on: `config` with the selected members of each
/// virtual (by [`VirtualService::id`]) added after its static `real=` lines. A member at
/// the address and port of a static real is left out: the `real=` line wins.
pub fn with_members(config: &Config, members: &HashMap<String, Vec<Member>>) -> Config {
    let mut out = config.clone();
    for v in &mut out.virtuals {
        let (Some(spec), Some(selected)) = (&v.real_sources, members.get(&v.id())) else {
            continue;
        };
        let port = v.port();
        let added: Vec<RealServer> = selected
            .iter()
            .filter(|m| !v.reals.iter().any(|r| r.ip == m.address && r.port == port))
            .map(|m| dynamic_real(v, spec, m))
            .collect();
        v.reals.extend(added);
    }
    out
}

/// One `real=` line for a member of `v`.
pub fn real_line(v: &VirtualService, m: &Member, forward: Forward) -> String {
    let (word, addr) = match (v.family, m.address) {
        (Family::Inet6, a) => ("real6", format!("[{a}]")),
        (_, a) => ("real", a.to_string()),
    };
    let port = match v.address {
        VirtualAddress::Inet { port, .. } => format!(":{port}"),
        VirtualAddress::Fwmark { .. } => String::new(),
    };
    format!("\t{word}={addr}{port} {} {}", forward.as_str(), m.weight)
}

/// The file the daemon runs on: the sanitized text with each block's selected real
/// servers where its first extension line was.
pub fn expand(sanitized: &str, header: &str, inserts: &BTreeMap<usize, Vec<String>>) -> String {
    let mut out = String::with_capacity(sanitized.len() + 256);
    let _ = writeln!(out, "{header}");
    for (i, line) in sanitized.lines().enumerate() {
        if let Some(reals) = inserts.get(&(i + 1)) {
            for r in reals {
                out.push_str(r);
                out.push('\n');
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Why `virtual_service_options` cannot be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceOptionsError {
    #[error("{0} needs a value")]
    NeedsValue(&'static str),
    #[error("virtual_service_options: unsupported {0:?} (-s, -p, -M, -b, -o)")]
    Unsupported(String),
    #[error("virtual_service_options: bad scheduler {0:?}")]
    Scheduler(String),
    #[error(
        "virtual_service_options: bad netmask {0:?} (IPv4: a dotted quad; IPv6: a prefix length)"
    )]
    Netmask(String),
}

/// `virtual_service_options` (ipvsadm -A style) as block directives, for a virtual
/// service of `family`.
pub fn service_options(text: &str, family: Family) -> Result<Vec<String>, ServiceOptionsError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = Vec::new();
    let mut scheduler = "rr".to_owned();
    let mut i = 0;
    let arg = |i: &mut usize, opt: &'static str| -> Result<String, ServiceOptionsError> {
        *i += 1;
        words
            .get(*i)
            .map(|s| (*s).to_owned())
            .ok_or(ServiceOptionsError::NeedsValue(opt))
    };
    while i < words.len() {
        match words[i] {
            "-s" | "--scheduler" => scheduler = arg(&mut i, "-s")?,
            "-p" | "--persistent" => {
                let timeout = match words.get(i + 1) {
                    Some(t) if t.parse::<u32>().is_ok() => {
                        i += 1;
                        (*t).to_owned()
                    }
                    _ => "300".to_owned(),
                };
                out.push(format!("persistent={timeout}"));
            }
            "-M" | "--netmask" => {
                // The config parser's rule for netmask= in this family (found by fuzzing:
                // any word was passed on, and the generated configuration refused).
                let mask = arg(&mut i, "-M")?;
                if NetmaskSetting::parse(&mask, family).is_none() {
                    return Err(ServiceOptionsError::Netmask(mask));
                }
                out.push(format!("netmask={mask}"));
            }
            "-b" | "--sched-flags" => out.push(format!("schedflags={}", arg(&mut i, "-b")?)),
            "-o" | "--ops" => out.push("ops=yes".into()),
            other => return Err(ServiceOptionsError::Unsupported(other.to_owned())),
        }
        i += 1;
    }
    // The config parser's rule for scheduler= (lowercase letters), so that parameters
    // accepted here never make a configuration it refuses (found by fuzzing: "-s 0").
    if scheduler.is_empty() || !scheduler.chars().all(|c| c.is_ascii_lowercase()) {
        return Err(ServiceOptionsError::Scheduler(scheduler));
    }
    out.insert(0, format!("scheduler={scheduler}"));
    Ok(out)
}

/// The virtual service of the `vip`/`port` parameters, as an `ldirectord.cf` (without its
/// real servers; [`expand`] puts them at line 3... via the returned insertion line).
pub fn inline_config(
    vip: IpAddr,
    port: u16,
    protocol: &str,
    options: &[String],
) -> (String, usize) {
    let mut text = String::new();
    let six = if vip.is_ipv6() { "6" } else { "" };
    let _ = writeln!(text, "virtual{six}={}", SocketAddr::new(vip, port));
    let _ = writeln!(text, "\tprotocol={protocol}");
    // The cluster decides who serves; the director does not check on top of it.
    let _ = writeln!(text, "\tchecktype=on");
    for o in options {
        let _ = writeln!(text, "\t{o}");
    }
    let insert_at = text.lines().count() + 1;
    let _ = writeln!(text, "{COMMENTED}real servers from the cluster");
    (text, insert_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldirectord_parsers::config::{ParseOptions, RealCandidates, parse_with};
    use std::path::Path;

    const CF: &str = "\
checkinterval=5
nodeaddress=node2 10.0.0.2
nodeaddress=node3 10.0.0.3
virtual=192.168.0.237:5432
\tchecktype=on
\trealsource=resource lvsdr-realsvr-clone
\trealfilter=attribute pgsql-status HS:sync|HS:potential|HS:async
\treal=10.0.0.7:5432 masq 3
\trealweights=node2,2
\trealdefault=gate 1
virtual=192.168.0.238:80
\treal=10.0.0.9:80 masq
";

    fn parse(text: &str) -> Config {
        let opts = ParseOptions {
            check_files: false,
            ..ParseOptions::default()
        };
        parse_with(text, Path::new("t.cf"), &opts).unwrap().config
    }

    fn member(a: &str, weight: u32) -> Member {
        Member {
            address: a.parse().unwrap(),
            weight,
            host: a.into(),
        }
    }

    #[test]
    fn the_agents_file_comments_the_block_directives_in_place() {
        let config = parse(CF);
        let ext = from_config(CF, &config);
        assert_eq!(ext.nodes.len(), 2);
        assert_eq!(ext.blocks.len(), 1);
        let b = &ext.blocks[0];
        assert_eq!((b.virtual_line, b.first_line), (4, 6));
        assert_eq!(b.virtual_text, "virtual=192.168.0.237:5432");
        assert_eq!(
            b.spec.candidates,
            RealCandidates::Resource("lvsdr-realsvr-clone".into())
        );
        assert_eq!(ext.sanitized.lines().count(), CF.lines().count());
        let commented: Vec<usize> = ext
            .sanitized
            .lines()
            .enumerate()
            .filter(|(_, l)| l.starts_with(COMMENTED))
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(commented, [6, 7, 9, 10]);
        // What the daemon gets parses without sources, static reals kept.
        let daemon = parse(&ext.sanitized);
        assert_eq!(daemon.virtuals[0].real_sources, None);
        assert_eq!(daemon.virtuals[0].reals.len(), 1);
        assert!(uses_extensions(CF));
        assert!(uses_extensions(
            "virtual=1.2.3.4:80\n\trealsource = bogus\n"
        ));
        assert!(!uses_extensions(
            "virtual=1.2.3.4:80\n\treal=1.2.3.5 gate\n"
        ));
    }

    #[test]
    fn members_join_the_static_reals_and_a_static_real_wins() {
        let config = parse(CF);
        let id = config.virtuals[0].id();
        let mut members = HashMap::new();
        members.insert(id, vec![member("10.0.0.2", 2), member("10.0.0.7", 9)]);
        let derived = with_members(&config, &members);
        let reals: Vec<(String, u16, Forward, u32)> = derived.virtuals[0]
            .reals
            .iter()
            .map(|r| (r.ip.to_string(), r.port, r.forward, r.weight))
            .collect();
        assert_eq!(
            reals,
            [
                ("10.0.0.7".into(), 5432, Forward::Masq, 3),
                ("10.0.0.2".into(), 5432, Forward::Gate, 2)
            ]
        );
        assert_eq!(derived.virtuals[1], config.virtuals[1]);
        assert_eq!(with_members(&config, &HashMap::new()), config);
    }

    #[test]
    fn service_options_translate_ipvsadm_flags() {
        assert_eq!(service_options("", Family::Inet).unwrap(), ["scheduler=rr"]);
        assert_eq!(
            service_options("-s wlc -p -o", Family::Inet).unwrap(),
            ["scheduler=wlc", "persistent=300", "ops=yes"]
        );
        assert_eq!(
            service_options("-p 60 -M 255.255.255.0", Family::Inet).unwrap(),
            ["scheduler=rr", "persistent=60", "netmask=255.255.255.0"]
        );
        assert!(service_options("-x", Family::Inet).is_err());
        assert!(service_options("-s", Family::Inet).is_err());
        assert!(service_options("-s 0", Family::Inet).is_err());
        assert!(service_options("-s Wrr", Family::Inet).is_err());
        assert!(service_options("-M ,x", Family::Inet).is_err());
        assert!(service_options("-M 64", Family::Inet).is_err());
        assert_eq!(
            service_options("-M 64", Family::Inet6).unwrap(),
            ["scheduler=rr", "netmask=64"]
        );
    }
}
