//! Dynamic real servers (extension): the values of `realsource=`, `realfilter=`,
//! `realfallback=`, `realweights=` and `realdefault=` in a block, collected until the block is complete,
//! and the global `nodeaddress=`.

use std::net::IpAddr;

use crate::config::diag::Diagnostic;
use crate::config::lex;
use crate::config::model::{Forward, RealCandidates, RealFilter, RealSources, Span, ValuePattern};

use super::state::Res;

/// The `realsource=`/`realfilter=`/`realfallback=`/`realweights=`/`realdefault=` lines of a block
/// (extension), resolved when the block is complete (weights default to `realdefault=`'s).
#[derive(Default)]
pub(super) struct SourcesTodo {
    pub(super) spans: Vec<Span>,
    pub(super) candidates: Option<RealCandidates>,
    pub(super) filters: Vec<RealFilter>,
    pub(super) fallback_filters: Vec<(RealFilter, Span)>,
    pub(super) weights: Vec<(String, Option<u32>)>,
    pub(super) default: Option<(Forward, Option<u32>)>,
}

const REALSOURCE_HELP: &str = "realsource=resource RSC (nodes where a Pacemaker resource runs), realsource=partition (the partition's members), realsource=command CMD ARGS... (the words it prints), or realsource=list HOST[,WEIGHT] ...";

/// `"..."` around a whole value is removed (commands and expressions may be quoted).
fn unquote(v: &str) -> &str {
    let v = v.trim_matches(lex::is_space);
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// The first word of `v` and the rest, trimmed.
fn word_and_rest(v: &str) -> (&str, &str) {
    match v.split_once(lex::is_space) {
        Some((w, r)) => (w, r.trim_matches(lex::is_space)),
        None => (v, ""),
    }
}

pub(super) fn real_candidates(v: &str, span: Span) -> Res<RealCandidates> {
    Ok(match word_and_rest(v) {
        ("resource", r) if !r.is_empty() && !r.contains(lex::is_space) => {
            RealCandidates::Resource(r.to_owned())
        }
        ("partition", "") => RealCandidates::Partition,
        ("command", c) if !unquote(c).is_empty() => RealCandidates::Command(unquote(c).to_owned()),
        ("list", l) if !l.is_empty() => {
            RealCandidates::List(host_weights(l, span, "realsource=list")?)
        }
        _ => {
            return Err(Diagnostic::error(
                span,
                format!("realsource={v}: expected resource RSC, partition, command CMD... or list HOST[,WEIGHT]..."),
            )
            .extension()
            .help(REALSOURCE_HELP));
        }
    })
}

/// `realfilter=` or `realfallback=` (`directive`): the same two forms.
pub(super) fn real_filter(directive: &str, v: &str, span: Span) -> Res<RealFilter> {
    let help = format!(
        "{directive}=attribute NAME REGEX (keep nodes whose transient attribute NAME matches REGEX as a whole), or {directive}=command CMD ARGS... (keep a candidate when CMD ARGS... CANDIDATE prints t)"
    );
    match word_and_rest(v) {
        ("attribute", rest) => {
            let (name, regex) = word_and_rest(rest);
            let regex = unquote(regex);
            if name.is_empty() || regex.is_empty() {
                return Err(Diagnostic::error(
                    span,
                    format!("{directive}={v}: expected attribute NAME REGEX"),
                )
                .extension()
                .help(help));
            }
            let pattern = ValuePattern::new(regex).map_err(|e| {
                Diagnostic::error(span, format!("invalid {directive} regular expression: {e}"))
                    .extension()
                    .help("REGEX is a Perl-compatible regular expression matched against the whole attribute value, e.g. HS:sync|HS:potential|HS:async")
            })?;
            Ok(RealFilter::Attribute {
                name: name.to_owned(),
                pattern,
            })
        }
        ("command", c) if !unquote(c).is_empty() => Ok(RealFilter::Command(unquote(c).to_owned())),
        _ => Err(Diagnostic::error(
            span,
            format!("{directive}={v}: expected attribute NAME REGEX or command CMD..."),
        )
        .extension()
        .help(help)),
    }
}

/// `HOST[,WEIGHT] ...` (lvsdr's `weight_of_realservers`).
pub(super) fn host_weights(v: &str, span: Span, what: &str) -> Res<Vec<(String, Option<u32>)>> {
    let bad = |item: &str| {
        Diagnostic::error(span, format!("{what}: bad item \"{item}\""))
            .extension()
            .help("a space-separated list of HOST or HOST,WEIGHT, WEIGHT a whole number (e.g. node2,3 10.0.0.9,0)")
    };
    let items: Vec<&str> = v.split(lex::is_space).filter(|s| !s.is_empty()).collect();
    if items.is_empty() {
        return Err(bad(v));
    }
    items
        .into_iter()
        .map(|item| match item.split_once(',') {
            None => Ok((item.to_owned(), None)),
            Some((h, w))
                if !h.is_empty() && !w.is_empty() && w.bytes().all(|c| c.is_ascii_digit()) =>
            {
                let n = lex::number(w);
                u32::try_from(n)
                    .map(|n| (h.to_owned(), Some(n)))
                    .map_err(|_| bad(item))
            }
            Some(_) => Err(bad(item)),
        })
        .collect()
}

pub(super) fn real_default(v: &str, span: Span) -> Res<(Forward, Option<u32>)> {
    let err = || {
        Diagnostic::error(span, format!("realdefault={v}: expected FORWARD [WEIGHT]"))
            .extension()
            .help("FORWARD is gate, masq or ipip (the forwarding method of the dynamic real servers, default gate); WEIGHT the weight of a host without one (default 1)")
    };
    let mut words = v.split(lex::is_space).filter(|s| !s.is_empty());
    let forward = match words.next() {
        Some("gate") => Forward::Gate,
        Some("masq") => Forward::Masq,
        Some("ipip") => Forward::Ipip,
        _ => return Err(err()),
    };
    let weight = match words.next() {
        None => None,
        Some(w) if w.bytes().all(|c| c.is_ascii_digit()) => {
            Some(u32::try_from(lex::number(w)).map_err(|_| err())?)
        }
        Some(_) => return Err(err()),
    };
    if words.next().is_some() {
        return Err(err());
    }
    Ok((forward, weight))
}

pub(super) fn real_sources(todo: SourcesTodo) -> Res<Option<RealSources>> {
    let Some(candidates) = todo.candidates else {
        return match todo.spans.first() {
            None => Ok(None),
            Some(span) => Err(Diagnostic::error(
                *span,
                "realfilter=, realfallback=, realweights= and realdefault= need a realsource= in the same virtual block",
            )
            .extension()
            .help(REALSOURCE_HELP)),
        };
    };
    if let Some((_, span)) = todo.fallback_filters.first()
        && todo.filters.is_empty()
    {
        return Err(Diagnostic::error(*span, "realfallback= needs a realfilter=")
            .extension()
            .help("realfallback= chooses the pool when the realfilter= lines keep no candidate; without a realfilter= every candidate is kept"));
    }
    let (forward, default_weight) = todo.default.unwrap_or((Forward::Gate, None));
    let default_weight = default_weight.unwrap_or(1);
    Ok(Some(RealSources {
        spans: todo.spans,
        candidates,
        filters: todo.filters,
        fallback_filters: todo.fallback_filters.into_iter().map(|(f, _)| f).collect(),
        weights: todo
            .weights
            .into_iter()
            .map(|(h, w)| (h, w.unwrap_or(default_weight)))
            .collect(),
        default_weight,
        forward,
    }))
}

/// `nodeaddress=NODE ADDRESS`.
pub(super) fn node_address(v: &str, span: Span) -> Res<(String, IpAddr)> {
    let err = |m: String| {
        Diagnostic::error(span, m)
            .extension()
            .help("nodeaddress=NODE ADDRESS, e.g. nodeaddress=node2 10.0.0.2 (one line per node)")
    };
    let words: Vec<&str> = v.split(lex::is_space).filter(|s| !s.is_empty()).collect();
    let [node, addr] = words[..] else {
        return Err(err(format!("nodeaddress={v}: expected NODE ADDRESS")));
    };
    let ip = addr
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map_err(|_| err(format!("nodeaddress: \"{addr}\" is not an IP address")))?;
    Ok((node.to_owned(), ip))
}
