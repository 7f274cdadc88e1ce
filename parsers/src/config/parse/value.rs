//! Value helpers shared by the global and the virtual-block directives: stock's number,
//! yes/no, e-mail and fallback forms, each returning the typed value or the diagnostic
//! stock gives (its message, pointed at the value).

use std::time::Duration;

use crate::config::diag::Diagnostic;
use crate::config::lex;
use crate::config::model::{AlertStatus, CheckPath, Forward, Span};

use super::line::At;
use super::state::Res;

/// `^NAME\s*=\s*\"(.*)\"` or else `^NAME\s*=\s*(.*)`, given the value.
pub(super) fn quoted_or_all(v: &str) -> &str {
    lex::quoted_greedy(v).unwrap_or(v)
}

/// The leading word of a line: up to the first space or `=`.
pub(super) fn directive_name(line: &str) -> &str {
    let end = line
        .find(|c: char| c == '=' || lex::is_space(c))
        .unwrap_or(line.len());
    &line[..end]
}

/// Global `checktimeout`/`negotiatetimeout`: `$1 =~ /(\d+)/ && $1 && $1 > 0`.
pub(super) fn positive_timeout(v: &str) -> Option<u32> {
    let d = lex::first_digits(v)?;
    let n = lex::number(d);
    (n > 0).then(|| n.min(u64::from(u32::MAX)) as u32)
}

/// `$1 =~ /(\d+)/ && $1` with the value > 0 (globals).
pub(super) fn nonzero(v: &str) -> Option<u32> {
    positive_timeout(v)
}

/// Block counters: `$1 =~ /(\d+)/ && $1` — Perl's string truthiness lets "00" through.
pub(super) fn nonzero_any(v: &str) -> Option<u32> {
    let d = lex::first_digits(v)?;
    lex::truthy(d).then(|| lex::number(d).min(u64::from(u32::MAX)) as u32)
}

/// A value that must not be empty; the error points at the value.
pub(super) fn non_empty(at: &At<'_, '_>, v: &str, message: &str) -> Res<String> {
    if v.is_empty() {
        Err(Diagnostic::error(at.value(v), message))
    } else {
        Ok(v.to_owned())
    }
}

/// Exactly `yes` or `no`: stock compares the raw value, so trailing spaces fail.
pub(super) fn yes_no(at: &At<'_, '_>, v: &str) -> Res<bool> {
    lex::yes_no(v).ok_or_else(|| {
        Diagnostic::error(at.value(v), format!("{} must be 'yes' or 'no'", at.name))
            .label("not exactly yes or no")
            .help(yes_no_help(v))
    })
}

/// What to write instead of a value that is not exactly yes or no.
pub(super) fn yes_no_help(v: &str) -> String {
    let trimmed = v.trim_end_matches(|c: char| lex::is_space(c));
    if trimmed != v || v.contains('#') {
        "stock ldirectord compares this value exactly: remove trailing spaces, carriage returns (CRLF line ends) and inline # comments".to_owned()
    } else {
        "write yes or no".to_owned()
    }
}

/// An e-mail address, quotes around it removed.
pub(super) fn email(at: &At<'_, '_>, v: &str) -> Res<String> {
    let a = lex::strip_enclosing_quotes(v);
    if a.is_empty() {
        Err(Diagnostic::error(at.value(v), "no email address specified"))
    } else {
        Ok(a.to_owned())
    }
}

/// `^emailalertfreq\s*=\s*(\d*)`: digits must start the value.
pub(super) fn alert_freq(at: &At<'_, '_>, v: &str) -> Res<u32> {
    let d: String = v.chars().take_while(char::is_ascii_digit).collect();
    if d.is_empty() {
        return Err(
            Diagnostic::error(at.value(v), "invalid email alert frequency")
                .help("a number of seconds, 0 to disable reminders"),
        );
    }
    Ok(lex::number(&d).min(u64::from(u32::MAX)) as u32)
}

/// `emailalertstatus=`: a comma list of all, none, starting, running, stopping, reloading.
pub(super) fn alert_status(at: &At<'_, '_>, v: &str) -> Res<AlertStatus> {
    let items: Vec<&str> = split_commas(v);
    let none = items.iter().filter(|&&i| i == "none").count();
    let mut s = AlertStatus::NONE;
    for i in items {
        match i {
            "none" => continue,
            "all" => s = AlertStatus::ALL,
            "starting" => s.starting = true,
            "stopping" => s.stopping = true,
            "running" => s.running = true,
            "reloading" => s.reloading = true,
            other => {
                return Err(Diagnostic::error(
                    at.value(v),
                    format!("invalid email alert status at: \"{other}\""),
                )
                .help(
                    "a comma-separated list of all, none, starting, running, stopping, reloading",
                ));
            }
        }
        if none > 0 {
            return Err(Diagnostic::error(
                at.value(v),
                format!("invalid email alert status: \"{i}\" specified with \"none\""),
            ));
        }
    }
    Ok(s)
}

/// Perl's `split /\s*,\s*/` (trailing empty fields dropped).
pub(super) fn split_commas(v: &str) -> Vec<&str> {
    let mut items: Vec<&str> = v
        .split(',')
        .enumerate()
        .map(|(n, s)| {
            if n == 0 {
                s.trim_end_matches(lex::is_space)
            } else {
                s.trim_matches(lex::is_space)
            }
        })
        .collect();
    while items.last() == Some(&"") {
        items.pop();
    }
    items
}

/// An SMTP server: the leading run of host-name characters.
pub(super) fn smtp(at: &At<'_, '_>, v: &str) -> Res<String> {
    let host: String = v
        .chars()
        .take_while(|&c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
        .collect();
    if host.is_empty() {
        return Err(
            Diagnostic::error(at.value(v), "invalid SMTP server address")
                .help("a host name or IP address, without quotes"),
        );
    }
    Ok(host)
}

/// A `fallback=` value before name resolution (resolved per protocol once it is known).
pub(super) struct FallbackTodo {
    pub(super) host: String,
    pub(super) port: Option<String>,
    pub(super) forward: Forward,
    pub(super) span: Span,
}

/// `fallback=ADDRESS[:PORT] [gate|masq|ipip]`; a block's fallback inherits the virtual's port.
pub(super) fn parse_fallback(
    v: &str,
    inherit_port: Option<String>,
    span: Span,
) -> Res<FallbackTodo> {
    let (addr, fwd) = lex::fallback_tokens(v).unwrap_or((v, None));
    let forward = match fwd {
        None | Some("gate") => Forward::Gate,
        Some("masq") => Forward::Masq,
        Some("ipip") => Forward::Ipip,
        Some(_) => {
            return Err(
                Diagnostic::error(span, "forward method must be gate, masq or ipip")
                    .help("fallback=ADDRESS[:PORT] [gate|masq|ipip]"),
            );
        }
    };
    let (host, port) = lex::split_host_port(addr);
    Ok(FallbackTodo {
        host: host.to_owned(),
        port: port.map(str::to_owned).or(inherit_port),
        forward,
        span,
    })
}

/// Stock's warning for `checkcount=`, in either scope.
pub(super) fn checkcount_warning(span: Span) -> Diagnostic {
    Diagnostic::warning(
        span,
        "checkcount option is deprecated and slated for removal.  please see 'failurecount'",
    )
}

/// A duration such as `500ms` or `10s`; a bare number is seconds.
pub(super) fn parse_duration(v: &str) -> Option<Duration> {
    if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) {
        return Some(Duration::from_secs(lex::number(v)));
    }
    humantime::parse_duration(v).ok()
}

/// An I/O error as Perl's `$!` prints it.
pub(super) fn errno_text(e: &std::io::Error) -> String {
    // Perl's `$!` is the bare strerror text; std adds " (os error N)".
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// `connecttimeout=`, in either scope: stock refuses it.
pub(super) fn connecttimeout(at: &At<'_, '_>) -> Diagnostic {
    Diagnostic::error(
        at.whole(),
        "connecttimeout directive deprecated in favour of negotiatetimeout",
    )
    .help("use negotiatetimeout= (or checktimeout=)")
}

/// A value that must not be empty; stock points at the whole line.
pub(super) fn given(at: &At<'_, '_>, v: &str, message: &str) -> Res<String> {
    if v.is_empty() {
        return Err(Diagnostic::error(at.whole(), message));
    }
    Ok(v.to_owned())
}

/// Stores a directive's value into its setting (a plain one, or a block's `Option`).
pub(super) fn store<T, V: Into<T>>(setting: &mut T, value: Res<V>) -> Res {
    *setting = value?.into();
    Ok(())
}

/// `checkpath=direct|forwarding` (global or in a block).
pub(super) fn check_path(at: &At<'_, '_>, v: &str) -> Res<CheckPath> {
    CheckPath::from_word(v.trim_end()).ok_or_else(|| {
        Diagnostic::error(at.value(v), "invalid check path")
            .help("direct (check the real's own address, as stock) or forwarding (check VIP:port through the way IPVS sends the traffic, for gate and ipip reals)")
            .extension()
    })
}
