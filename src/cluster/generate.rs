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
//! Until the parser knows them, the agent reads these lines from the file text and hands
//! the daemon a generated file in which they are comments (line numbers are kept for
//! diagnostics about the operator's file).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use ldirectord_parsers::config::{Family, Forward, VirtualAddress, VirtualService};

use super::sources::{Candidates, Filter, Member, Spec, parse_weights};

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
    pub spec: Spec,
}

/// The extension directives of a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    pub blocks: Vec<BlockSources>,
    pub nodes: BTreeMap<String, IpAddr>,
    /// The file with every extension line commented out, same line numbers.
    pub sanitized: String,
}

/// An error in an extension line: the line (1-based) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtError {
    pub line: usize,
    pub message: String,
}

const BLOCK_WORDS: [&str; 4] = ["realsource", "realfilter", "realweights", "realdefault"];

fn unquote(v: &str) -> &str {
    let v = v.trim();
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// Split `KEY=VALUE` of a directive line (stock allows spaces around `=`).
fn directive(line: &str) -> Option<(&str, &str)> {
    let (k, v) = line.trim().split_once('=')?;
    Some((k.trim(), v.trim()))
}

/// Whether the file uses any extension directive.
pub fn uses_extensions(text: &str) -> bool {
    text.lines()
        .any(|l| directive(l).is_some_and(|(k, _)| BLOCK_WORDS.contains(&k) || k == "nodeaddress"))
}

struct Partial {
    virtual_line: usize,
    virtual_text: String,
    first_line: usize,
    candidates: Option<Candidates>,
    filters: Vec<Filter>,
    weights: Vec<(String, u32)>,
    list_weights: Vec<(String, u32)>,
    default_weight: u32,
    forward: Forward,
}

impl Partial {
    fn finish(self) -> Result<BlockSources, ExtError> {
        let candidates = self.candidates.ok_or_else(|| ExtError {
            line: self.first_line,
            message: "realfilter=, realweights= and realdefault= need a realsource= in the \
                      same virtual block"
                .into(),
        })?;
        let mut weights = self.list_weights;
        weights.extend(self.weights);
        Ok(BlockSources {
            virtual_line: self.virtual_line,
            virtual_text: self.virtual_text,
            first_line: self.first_line,
            spec: Spec {
                candidates,
                filters: self.filters,
                weights,
                default_weight: self.default_weight,
                forward: self.forward,
            },
        })
    }
}

/// Read the extension directives of `text`.
pub fn parse_extensions(text: &str) -> Result<Extensions, ExtError> {
    let mut ext = Extensions::default();
    let mut sanitized = String::with_capacity(text.len() + 64);
    let mut current: Option<(usize, String)> = None;
    let mut partial: Option<Partial> = None;
    let flush = |partial: &mut Option<Partial>, ext: &mut Extensions| -> Result<(), ExtError> {
        if let Some(p) = partial.take() {
            ext.blocks.push(p.finish()?);
        }
        Ok(())
    };
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let indented = line.starts_with([' ', '\t']);
        let d = directive(line).filter(|_| !line.trim_start().starts_with('#'));
        if !indented && d.is_some_and(|(k, _)| k == "virtual" || k == "virtual6") {
            flush(&mut partial, &mut ext)?;
            current = Some((n, line.trim().to_owned()));
        } else if !indented && !line.trim().is_empty() && !line.trim_start().starts_with('#') {
            flush(&mut partial, &mut ext)?;
            current = None;
        }
        let Some((key, value)) = d else {
            sanitized.push_str(line);
            sanitized.push('\n');
            continue;
        };
        let err = |message: String| ExtError { line: n, message };
        if key == "nodeaddress" {
            if indented {
                return Err(err(
                    "nodeaddress= is a global directive (not indented)".into()
                ));
            }
            let mut words = value.split_whitespace();
            let (Some(node), Some(addr), None) = (words.next(), words.next(), words.next()) else {
                return Err(err("nodeaddress=NODE ADDRESS".into()));
            };
            let addr: IpAddr = addr
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| err(format!("{addr:?} is not an IP address")))?;
            ext.nodes.insert(node.to_owned(), addr);
        } else if BLOCK_WORDS.contains(&key) {
            let Some((vline, vtext)) = current.clone().filter(|_| indented) else {
                return Err(err(format!(
                    "{key}= belongs inside a virtual= block (indented)"
                )));
            };
            let p = partial.get_or_insert_with(|| Partial {
                virtual_line: vline,
                virtual_text: vtext,
                first_line: n,
                candidates: None,
                filters: Vec::new(),
                weights: Vec::new(),
                list_weights: Vec::new(),
                default_weight: 1,
                forward: Forward::Gate,
            });
            let (kind, rest) = match value.split_once(char::is_whitespace) {
                Some((k, r)) => (k, r.trim()),
                None => (value, ""),
            };
            match key {
                "realsource" => {
                    if p.candidates.is_some() {
                        return Err(err("only one realsource= per virtual block".into()));
                    }
                    p.candidates = Some(match (kind, rest) {
                        ("resource", r) if !r.is_empty() && !r.contains(' ') => {
                            Candidates::Resource(r.to_owned())
                        }
                        ("partition", "") => Candidates::Partition,
                        ("command", c) if !c.is_empty() => {
                            Candidates::Command(unquote(c).to_owned())
                        }
                        ("list", l) if !l.is_empty() => {
                            p.list_weights = parse_weights(l, p.default_weight).map_err(err)?;
                            Candidates::List
                        }
                        _ => {
                            return Err(err(format!(
                                "realsource={value}: expected resource RSC, partition, \
                                 command CMD... or list HOST[,WEIGHT]..."
                            )));
                        }
                    });
                }
                "realfilter" => p.filters.push(match kind {
                    "attribute" => {
                        let (name, regex) = rest
                            .split_once(char::is_whitespace)
                            .ok_or_else(|| err("realfilter=attribute NAME REGEX".into()))?;
                        Filter::Attribute {
                            name: name.to_owned(),
                            regex: unquote(regex).to_owned(),
                        }
                    }
                    "command" if !rest.is_empty() => Filter::Command(unquote(rest).to_owned()),
                    _ => {
                        return Err(err(format!(
                            "realfilter={value}: expected attribute NAME REGEX or command CMD..."
                        )));
                    }
                }),
                "realweights" => {
                    p.weights = parse_weights(value, p.default_weight).map_err(err)?;
                }
                _ => {
                    let mut words = value.split_whitespace();
                    p.forward = match words.next() {
                        Some("gate") => Forward::Gate,
                        Some("masq") => Forward::Masq,
                        Some("ipip") => Forward::Ipip,
                        _ => {
                            return Err(err(
                                "realdefault=FORWARD [WEIGHT], FORWARD gate, masq or ipip".into(),
                            ));
                        }
                    };
                    if let Some(w) = words.next() {
                        p.default_weight = w
                            .parse()
                            .map_err(|_| err(format!("{w:?} is not a weight")))?;
                    }
                }
            }
        } else {
            sanitized.push_str(line);
            sanitized.push('\n');
            continue;
        }
        sanitized.push_str(COMMENTED);
        sanitized.push_str(line.trim_start());
        sanitized.push('\n');
    }
    flush(&mut partial, &mut ext)?;
    ext.sanitized = sanitized;
    Ok(ext)
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

/// `virtual_service_options` (ipvsadm -A style) as block directives.
pub fn service_options(text: &str) -> Result<Vec<String>, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = Vec::new();
    let mut scheduler = "rr".to_owned();
    let mut i = 0;
    let arg = |i: &mut usize, opt: &str| -> Result<String, String> {
        *i += 1;
        words
            .get(*i)
            .map(|s| (*s).to_owned())
            .ok_or_else(|| format!("{opt} needs a value"))
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
            "-M" | "--netmask" => out.push(format!("netmask={}", arg(&mut i, "-M")?)),
            "-b" | "--sched-flags" => out.push(format!("schedflags={}", arg(&mut i, "-b")?)),
            "-o" | "--ops" => out.push("ops=yes".into()),
            other => {
                return Err(format!(
                    "virtual_service_options: unsupported {other:?} (-s, -p, -M, -b, -o)"
                ));
            }
        }
        i += 1;
    }
    if !scheduler.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "virtual_service_options: bad scheduler {scheduler:?}"
        ));
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
    match vip {
        IpAddr::V4(a) => {
            let _ = writeln!(text, "virtual={a}:{port}");
        }
        IpAddr::V6(a) => {
            let _ = writeln!(text, "virtual6=[{a}]:{port}");
        }
    }
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

    const CF: &str = "\
checkinterval=5
nodeaddress=node2 10.0.0.2
nodeaddress=node3 10.0.0.3
virtual=192.168.0.237:5432
\tchecktype=on
\trealsource=resource lvsdr-realsvr-clone
\trealfilter=attribute pgsql-status HS:sync|HS:potential|HS:async
\trealweights=node2,2
\trealdefault=gate 1
virtual=192.168.0.238:80
\treal=10.0.0.9:80 masq
";

    #[test]
    fn directives_are_read_and_commented_out_in_place() {
        let ext = parse_extensions(CF).unwrap();
        assert_eq!(ext.nodes.len(), 2);
        assert_eq!(ext.blocks.len(), 1);
        let b = &ext.blocks[0];
        assert_eq!((b.virtual_line, b.first_line), (4, 6));
        assert_eq!(b.virtual_text, "virtual=192.168.0.237:5432");
        assert_eq!(
            b.spec.candidates,
            Candidates::Resource("lvsdr-realsvr-clone".into())
        );
        assert_eq!(b.spec.weights, [("node2".to_owned(), 2)]);
        assert_eq!(ext.sanitized.lines().count(), CF.lines().count());
        assert!(ext.sanitized.lines().nth(5).unwrap().starts_with(COMMENTED));
        assert!(uses_extensions(CF));
        assert!(!uses_extensions(
            "virtual=1.2.3.4:80\n\treal=1.2.3.5 gate\n"
        ));
    }

    #[test]
    fn misplaced_or_malformed_directives_name_their_line() {
        let e = parse_extensions("realsource=partition\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse_extensions("virtual=1.2.3.4:80\n\trealsource=bogus\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse_extensions("virtual=1.2.3.4:80\n\trealweights=a,1\n").unwrap_err();
        assert!(e.message.contains("need a realsource="), "{e:?}");
        let e = parse_extensions("nodeaddress=n1 x\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse_extensions(
            "virtual=1.2.3.4:80\n\trealsource=partition\n\trealsource=partition\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
    }

    #[test]
    fn service_options_translate_ipvsadm_flags() {
        assert_eq!(service_options("").unwrap(), ["scheduler=rr"]);
        assert_eq!(
            service_options("-s wlc -p -o").unwrap(),
            ["scheduler=wlc", "persistent=300", "ops=yes"]
        );
        assert_eq!(
            service_options("-p 60 -M 255.255.255.0").unwrap(),
            ["scheduler=rr", "persistent=60", "netmask=255.255.255.0"]
        );
        assert!(service_options("-x").is_err());
        assert!(service_options("-s").is_err());
    }
}
