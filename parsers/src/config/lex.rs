//! The small grammars of ldirectord.cf values, written with nom. Each function mirrors one
//! of stock ldirectord's matching rules (a Perl regex) exactly, including where that rule
//! is unanchored or greedy, because existing configs depend on those details.

use nom::bytes::complete::{tag, take_till, take_while, take_while1};
use nom::character::complete::{char, digit1};
use nom::combinator::{recognize, rest};
use nom::sequence::preceded;
use nom::{IResult, Parser};

type R<'a, T> = IResult<&'a str, T>;

/// Perl's `\s`.
pub fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// Perl's `\w` (ASCII).
pub fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn sp0(i: &str) -> R<'_, &str> {
    take_while(is_space).parse(i)
}

/// `^NAME\s*=\s*(.*)`: the value of directive `name` on `line`, if the line is that
/// directive.
pub fn directive<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let r: R<'a, &'a str> = preceded((tag(name), sp0, char('='), sp0), rest).parse(line);
    r.ok().map(|(_, v)| v)
}

/// `/(\d+)/`: the first run of digits anywhere in `v`.
pub fn first_digits(v: &str) -> Option<&str> {
    let r: R<'_, &str> = preceded(take_till(|c: char| c.is_ascii_digit()), digit1).parse(v);
    r.ok().map(|(_, d)| d)
}

/// Perl truthiness of a digit string used as a number test (`&& $1`): "0" is false,
/// anything else (even "00") true.
pub fn truthy(digits: &str) -> bool {
    digits != "0"
}

/// A digit string as a number, saturating (Perl would use a float).
pub fn number(digits: &str) -> u64 {
    digits.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    })
}

/// `/(\w+)/`: the first word anywhere in `v`.
pub fn first_word(v: &str) -> Option<&str> {
    let r: R<'_, &str> = preceded(take_till(is_word), take_while1(is_word)).parse(v);
    r.ok().map(|(_, w)| w)
}

/// `/([\w-]+)/`: the first run of word characters and dashes.
pub fn first_word_dash(v: &str) -> Option<&str> {
    let is = |c: char| is_word(c) || c == '-';
    let r: R<'_, &str> = preceded(take_till(is), take_while1(is)).parse(v);
    r.ok().map(|(_, w)| w)
}

/// `/([a-z]+)/`: the first run of lower-case letters.
pub fn first_lower(v: &str) -> Option<&str> {
    let is = |c: char| c.is_ascii_lowercase();
    let r: R<'_, &str> = preceded(take_till(is), take_while1(is)).parse(v);
    r.ok().map(|(_, w)| w)
}

/// `^\"(.*)\"`: a value that starts with a quote and has another one later; the content
/// runs to the LAST quote (greedy).
pub fn quoted_greedy(v: &str) -> Option<&str> {
    let inner = v.strip_prefix('"')?;
    let end = inner.rfind('"')?;
    Some(&inner[..end])
}

/// `\"?([^\"]*)\"?` (virtualhost): an optional opening quote, then up to the next quote.
pub fn optionally_quoted(v: &str) -> &str {
    let v = v.strip_prefix('"').unwrap_or(v);
    v.split('"').next().unwrap_or("")
}

/// `^\"([^"]*)\"$` stripped if present (emailalert).
pub fn strip_enclosing_quotes(v: &str) -> &str {
    match v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) if !inner.contains('"') => inner,
        _ => v,
    }
}

/// Characters of a port or service name: `[A-Za-z0-9_-]`.
pub fn is_port_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// `(:(\d+|[A-Za-z0-9-_]+))?$`, leftmost: split `host:port` at the first colon after
/// which only port characters follow. `(host, None)` when there is no such colon.
pub fn split_host_port(s: &str) -> (&str, Option<&str>) {
    for (i, c) in s.char_indices() {
        if c == ':' {
            let port = &s[i + 1..];
            if !port.is_empty() && port.chars().all(is_port_char) {
                return (&s[..i], Some(port));
            }
        }
    }
    (s, None)
}

/// Address forms at the start of a `virtual=` value.
#[derive(Debug, PartialEq, Eq)]
pub enum VirtualForm<'a> {
    /// `A.B.C.D:PORT` or `HOST:PORT` (host, port text).
    HostPort(&'a str, &'a str),
    /// `[IPv6]:PORT` (address without brackets, port text).
    Bracketed(&'a str, &'a str),
    /// A leading run of digits: a firewall mark.
    Fwmark(&'a str),
}

fn port_text(i: &str) -> R<'_, &str> {
    take_while1(is_port_char).parse(i)
}

fn dotted_quad(i: &str) -> R<'_, &str> {
    recognize((
        digit1,
        char('.'),
        digit1,
        char('.'),
        digit1,
        char('.'),
        digit1,
    ))
    .parse(i)
}

/// The `virtual=` alternatives in stock's order. `inet6` selects which apply.
pub fn virtual_form(v: &str, inet6: bool) -> Option<VirtualForm<'_>> {
    let host_chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-');
    if !inet6 {
        let r: R<'_, (&str, char, &str)> = (dotted_quad, char(':'), port_text).parse(v);
        if let Ok((_, (h, _, p))) = r {
            return Some(VirtualForm::HostPort(h, p));
        }
    }
    let r: R<'_, (&str, char, &str)> = (take_while1(host_chars), char(':'), port_text).parse(v);
    if let Ok((_, (h, _, p))) = r {
        return Some(VirtualForm::HostPort(h, p));
    }
    if let Ok((_, d)) = digit1::<&str, nom::error::Error<&str>>(v) {
        return Some(VirtualForm::Fwmark(d));
    }
    let hex6 = |c: char| c.is_ascii_hexdigit() || c == ':';
    let r: R<'_, (char, &str, char, char, &str)> = (
        char('['),
        take_while1(hex6),
        char(']'),
        char(':'),
        port_text,
    )
        .parse(v);
    if let Ok((_, (_, a, _, _, p))) = r {
        return Some(VirtualForm::Bracketed(a, p));
    }
    None
}

/// What stock's real-server regex captures from a `real=` value:
/// `(ADDR)(->(ADDR))?(:(PORT))?\s+(.*)`, searched unanchored with Perl's backtracking.
#[derive(Debug, PartialEq, Eq)]
pub struct RealParts<'a> {
    pub ip1: &'a str,
    pub ip2: Option<&'a str>,
    pub port: Option<&'a str>,
    /// Everything after the whitespace: forwarding method, weight, request/receive, ...
    pub flags: &'a str,
    /// Byte offset of `flags` in the value.
    pub flags_offset: usize,
}

/// Candidate ends of ADDR at `p`, in Perl's order of preference: a dotted quad, then a
/// host name (longest first), then a bracketed IPv6 address (the class stock wrote,
/// `[0-9A-fa-f:]`, also admits `]`, so the longest bracketed candidate comes first).
fn addr_ends(s: &str, p: usize) -> impl Iterator<Item = usize> + '_ {
    let b = s.as_bytes();
    let quad = dotted_quad(&s[p..]).ok().map(|(r, _)| s.len() - r.len());
    // The other alternatives are only computed if the dotted quad did not lead to a match.
    let host = std::iter::once_with(move || {
        let n = b[p..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-'))
            .count();
        (1..=n).rev().map(move |k| p + k)
    })
    .flatten();
    let bracketed = std::iter::once_with(move || {
        let class = |c: u8| c.is_ascii_digit() || (b'A'..=b'f').contains(&c) || c == b':';
        let run = if b.get(p) == Some(&b'[') {
            b[p + 1..].iter().take_while(|&&c| class(c)).count()
        } else {
            0
        };
        (1..=run)
            .rev()
            .filter(move |&k| b.get(p + 1 + k) == Some(&b']'))
            .map(move |k| p + k + 2)
    })
    .flatten();
    quad.into_iter().chain(host).chain(bracketed)
}

/// `(:(\d+|[A-Za-z0-9-_]+))?\s+(.*)` at `p`: the port (if any) and where the flags start.
fn real_tail(s: &str, p: usize) -> Option<(Option<(usize, usize)>, usize)> {
    let b = s.as_bytes();
    let ws_then = |q: usize| {
        let n = b[q..].iter().take_while(|&&c| is_space(c as char)).count();
        (n > 0).then_some(q + n)
    };
    if b.get(p) == Some(&b':') {
        let run = b[p + 1..]
            .iter()
            .take_while(|&&c| is_port_char(c as char))
            .count();
        if run > 0
            && let Some(flags) = ws_then(p + 1 + run)
        {
            return Some((Some((p + 1, p + 1 + run)), flags));
        }
    }
    ws_then(p).map(|flags| (None, flags))
}

/// Stock's real-server regex, searched leftmost-first like Perl.
pub fn real_parts(s: &str) -> Option<RealParts<'_>> {
    for start in s.char_indices().map(|(i, _)| i) {
        for e1 in addr_ends(s, start) {
            let ranged = s[e1..].starts_with("->");
            let with_range = ranged
                .then(|| addr_ends(s, e1 + 2))
                .into_iter()
                .flatten()
                .map(move |e2| (Some((e1 + 2, e2)), e2));
            for (ip2, end) in with_range.chain(std::iter::once((None, e1))) {
                if let Some((port, flags)) = real_tail(s, end) {
                    return Some(RealParts {
                        ip1: &s[start..e1],
                        ip2: ip2.map(|(a, b)| &s[a..b]),
                        port: port.map(|(a, b)| &s[a..b]),
                        flags: &s[flags..],
                        flags_offset: flags,
                    });
                }
            }
        }
    }
    None
}

/// `\s+(\d+)(.*)`, unanchored: the first whitespace run followed by digits.
/// Returns (digits, rest after them).
pub fn ws_digits(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if is_space(b[i] as char) {
            let ws = b[i..].iter().take_while(|&&c| is_space(c as char)).count();
            let d = b[i + ws..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if d > 0 {
                return Some((&s[i + ws..i + ws + d], &s[i + ws + d..]));
            }
            i += ws;
        } else {
            i += 1;
        }
    }
    None
}

/// A per-real `"REQUEST"<sep>"RECEIVE"` pair: `\s+\"(.*)\"[, ]\s*\"(.*)\"(.*)`,
/// unanchored and greedy like Perl. Returns (request, receive, rest, offset of request).
pub fn request_receive(s: &str) -> Option<(&str, &str, &str, usize)> {
    let b = s.as_bytes();
    let last_quote = s.rfind('"')?;
    let mut i = 0;
    while i < b.len() {
        if !is_space(b[i] as char) {
            i += 1;
            continue;
        }
        let ws = b[i..].iter().take_while(|&&c| is_space(c as char)).count();
        let q = i + ws;
        if b.get(q) == Some(&b'"') {
            // Greedy request: the rightmost separator that still leaves a closing quote.
            let mut j = last_quote;
            while j > q {
                if b[j] == b'"' && matches!(b.get(j + 1), Some(b',') | Some(b' ')) {
                    let k = j
                        + 2
                        + b[j + 2..]
                            .iter()
                            .take_while(|&&c| is_space(c as char))
                            .count();
                    if b.get(k) == Some(&b'"') && last_quote > k {
                        return Some((
                            &s[q + 1..j],
                            &s[k + 1..last_quote],
                            &s[last_quote + 1..],
                            q + 1,
                        ));
                    }
                }
                j -= 1;
            }
        }
        i = q.max(i + 1);
    }
    None
}

/// `l:N` then `u:N` after whitespace, in that order (both optional). Returns
/// (lower, upper, rest).
pub fn thresholds(s: &str) -> (Option<&str>, Option<&str>, &str) {
    fn one<'a>(s: &'a str, key: &'static str) -> Option<(&'a str, &'a str)> {
        let r: R<'a, (&str, &str, &str)> = (take_while1(is_space), tag(key), digit1).parse(s);
        r.ok().map(|(rest, (_, _, d))| (d, rest))
    }
    let (lower, s) = match one(s, "l:") {
        Some((d, rest)) => (Some(d), rest),
        None => (None, s),
    };
    let (upper, s) = match one(s, "u:") {
        Some((d, rest)) => (Some(d), rest),
        None => (None, s),
    };
    (lower, upper, s)
}

/// `(\S+)(\s+(\S+))?\s*$`, leftmost (fallback): the address part and the optional
/// forwarding word, i.e. the last one or two whitespace-separated tokens.
pub fn fallback_tokens(v: &str) -> Option<(&str, Option<&str>)> {
    let words: Vec<&str> = v.split(is_space).filter(|w| !w.is_empty()).collect();
    match words.as_slice() {
        [] => None,
        [one] => Some((one, None)),
        [.., a, b] => Some((a, Some(b))),
    }
}

/// A yes/no value compared exactly (`$1 eq "yes"`).
pub fn yes_no(v: &str) -> Option<bool> {
    match v {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Block lines: `^ {4,}(.+)` on the comment-stripped, tab-expanded line, with Perl's
/// backtracking (five or more spaces alone still match, leaving one space as the body).
/// Returns the body's byte offset.
pub fn block_body(expanded: &str) -> Option<usize> {
    let spaces = expanded.bytes().take_while(|&c| c == b' ').count();
    let rest_nonempty = spaces < expanded.len();
    if spaces >= 4 && rest_nonempty {
        Some(spaces)
    } else if spaces >= 5 {
        Some(spaces - 1)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_heads_allow_spaces_around_the_equals_sign() {
        assert_eq!(directive("checktimeout = 3", "checktimeout"), Some("3"));
        assert_eq!(
            directive("checktimeout=3 # s", "checktimeout"),
            Some("3 # s")
        );
        assert_eq!(directive("checktimeoutx=3", "checktimeout"), None);
        assert_eq!(directive("quiescent=no\r", "quiescent"), Some("no\r"));
    }

    #[test]
    fn value_extractors_follow_perl() {
        assert_eq!(first_digits("abc12def3"), Some("12"));
        assert_eq!(first_digits("none"), None);
        assert_eq!(first_word("  http_proxy x"), Some("http_proxy"));
        assert_eq!(first_lower("WRR rr"), Some("rr"));
        assert_eq!(quoted_greedy("\"a\"b\" c"), Some("a\"b"));
        assert_eq!(quoted_greedy("\"open"), None);
        assert_eq!(optionally_quoted("\"www.x\" y"), "www.x");
        assert_eq!(optionally_quoted("www.x "), "www.x ");
    }

    #[test]
    fn host_port_split_takes_the_leftmost_valid_colon() {
        assert_eq!(split_host_port("1.2.3.4:80"), ("1.2.3.4", Some("80")));
        assert_eq!(split_host_port("[::1]:http"), ("[::1]", Some("http")));
        assert_eq!(split_host_port("[::1]"), ("[::1]", None));
        assert_eq!(split_host_port("fe80::1:80"), ("fe80::1", Some("80")));
    }

    #[test]
    fn virtual_forms_in_stock_order() {
        let cases = [
            (
                "10.0.0.1:80",
                false,
                Some(VirtualForm::HostPort("10.0.0.1", "80")),
            ),
            (
                "localhost:https x",
                false,
                Some(VirtualForm::HostPort("localhost", "https")),
            ),
            ("192.168.1.1", false, Some(VirtualForm::Fwmark("192"))),
            (
                "[2001:db8::5]:80",
                true,
                Some(VirtualForm::Bracketed("2001:db8::5", "80")),
            ),
            ("[::1]:80", false, Some(VirtualForm::Bracketed("::1", "80"))),
            ("!x", false, None),
        ];
        for (text, inet6, want) in cases {
            assert_eq!(virtual_form(text, inet6), want, "{text}");
        }
    }

    #[test]
    fn real_lines_backtrack_like_perl() {
        let p = real_parts("10.0.0.1:80 gate 2").unwrap();
        assert_eq!(
            (p.ip1, p.ip2, p.port, p.flags),
            ("10.0.0.1", None, Some("80"), "gate 2")
        );
        let p = real_parts("10.0.0.1->10.0.0.3:80 gate 9").unwrap();
        assert_eq!(
            (p.ip1, p.ip2, p.port),
            ("10.0.0.1", Some("10.0.0.3"), Some("80"))
        );
        let p = real_parts("web-1->web-3:http masq").unwrap();
        assert_eq!(
            (p.ip1, p.ip2, p.port, p.flags),
            ("web-1", Some("web-3"), Some("http"), "masq")
        );
        let p = real_parts("[2001:db8::1]:80 masq 2").unwrap();
        assert_eq!((p.ip1, p.port), ("[2001:db8::1]", Some("80")));
        let p = real_parts("10.0.0.1 gate").unwrap();
        assert_eq!((p.ip1, p.port, p.flags), ("10.0.0.1", None, "gate"));
        assert_eq!(real_parts("10.0.0.1:80"), None);
        let p = real_parts("\"10.0.0.1:80 gate\"").unwrap();
        assert_eq!((p.ip1, p.flags), ("10.0.0.1", "gate\""));
    }

    #[test]
    fn weights_and_request_pairs_are_found_unanchored() {
        assert_eq!(ws_digits(" 5 \"x\""), Some(("5", " \"x\"")));
        assert_eq!(ws_digits(" l:10 u:100"), None);
        let (req, rec, rest, _) = request_receive(" \"/health\", \"OK\" l:1").unwrap();
        assert_eq!((req, rec, rest), ("/health", "OK", " l:1"));
        let (req, rec, _, _) = request_receive(" \"a\" \"b\"").unwrap();
        assert_eq!((req, rec), ("a", "b"));
        let (req, rec, _, _) = request_receive(" \"a\",\"b\", \"c\"").unwrap();
        assert_eq!((req, rec), ("a\",\"b", "c"));
        assert_eq!(request_receive(" \"only\""), None);
    }

    #[test]
    fn thresholds_in_order() {
        assert_eq!(thresholds(" l:10 u:100"), (Some("10"), Some("100"), ""));
        assert_eq!(thresholds(" u:100"), (None, Some("100"), ""));
        assert_eq!(thresholds(" u:1 l:2"), (None, Some("1"), " l:2"));
    }

    #[test]
    fn block_membership_matches_perl_backtracking() {
        assert_eq!(block_body("    real=x"), Some(4));
        assert_eq!(block_body("   real=x"), None);
        assert_eq!(block_body("    "), None);
        assert_eq!(block_body("        "), Some(7));
        assert_eq!(block_body(""), None);
    }

    #[test]
    fn fallback_takes_the_last_two_tokens() {
        assert_eq!(
            fallback_tokens("127.0.0.1:80 gate"),
            Some(("127.0.0.1:80", Some("gate")))
        );
        assert_eq!(fallback_tokens("127.0.0.1"), Some(("127.0.0.1", None)));
        assert_eq!(fallback_tokens("a b c"), Some(("b", Some("c"))));
        assert_eq!(fallback_tokens("  "), None);
    }
}
