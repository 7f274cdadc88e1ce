//! The OCF resource-agent contract as Pacemaker 2.1 uses it: exit codes, the parameters
//! in `OCF_RESKEY_*`, probes, and `ocf-exit-reason:` lines (reference
//! cluster-integration §2).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

/// `OCF_SUCCESS`.
pub const SUCCESS: i32 = 0;
/// `OCF_ERR_GENERIC`: failed, or the state cannot be determined.
pub const ERR_GENERIC: i32 = 1;
/// `OCF_ERR_ARGS`: a parameter is invalid on this host.
pub const ERR_ARGS: i32 = 2;
/// `OCF_ERR_UNIMPLEMENTED`: unknown action.
pub const ERR_UNIMPLEMENTED: i32 = 3;
/// `OCF_ERR_PERM`.
pub const ERR_PERM: i32 = 4;
/// `OCF_ERR_INSTALLED`: a file or program is missing on this host.
pub const ERR_INSTALLED: i32 = 5;
/// `OCF_ERR_CONFIGURED`: the parameters are wrong everywhere (fatal for Pacemaker).
pub const ERR_CONFIGURED: i32 = 6;
/// `OCF_NOT_RUNNING`: cleanly stopped (monitor only).
pub const NOT_RUNNING: i32 = 7;

/// An action's failure: the OCF code and the reason given to the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    pub code: i32,
    pub reason: String,
}

impl Fail {
    pub fn new(code: i32, reason: impl Into<String>) -> Fail {
        Fail {
            code,
            reason: reason.into(),
        }
    }
    pub fn configured(reason: impl Into<String>) -> Fail {
        Fail::new(ERR_CONFIGURED, reason)
    }
    pub fn generic(reason: impl Into<String>) -> Fail {
        Fail::new(ERR_GENERIC, reason)
    }
}

/// The environment an agent runs in, captured once (tests build it by hand).
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars().collect(),
        }
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// Set `OCF_RESKEY_<name>` (an option on the agent's command line wins).
    pub fn set_param(&mut self, name: &str, value: &str) {
        self.vars
            .insert(format!("OCF_RESKEY_{name}"), value.to_owned());
    }

    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// `OCF_RESKEY_<name>`, `None` when unset or empty (Pacemaker passes no defaults).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.var(&format!("OCF_RESKEY_{name}"))
            .filter(|v| !v.trim().is_empty())
    }

    /// A probe is a monitor without a recurring interval. Pacemaker 2.1 leaves
    /// `CRM_meta_interval` out entirely for probes (ocf-tester sets it to 0).
    pub fn is_probe(&self) -> bool {
        match self.param("CRM_meta_interval") {
            None => true,
            Some(v) => v.trim() == "0",
        }
    }

    /// The primitive's id (`OCF_RESOURCE_INSTANCE`), made safe as a file name: clone
    /// instances' `:N` and path separators become `-`.
    pub fn instance(&self) -> String {
        let raw = self.var("OCF_RESOURCE_INSTANCE").unwrap_or("default");
        raw.chars()
            .map(|c| match c {
                ':' | '/' => '-',
                c => c,
            })
            .collect()
    }

    /// The operation timeout (`CRM_meta_timeout`, milliseconds).
    pub fn timeout(&self) -> Option<Duration> {
        self.param("CRM_meta_timeout")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_millis)
    }
}

/// Write `ocf-exit-reason:TEXT` on stderr (the prefix Pacemaker passes, or the standard one).
pub fn exit_reason(env: &Env, err: &mut dyn Write, text: &str) {
    let prefix = env
        .var("OCF_EXIT_REASON_PREFIX")
        .unwrap_or("ocf-exit-reason:");
    // One line: Pacemaker keeps the first line as the reason.
    let text = text.replace('\n', " ");
    let _ = writeln!(err, "{prefix}{text}");
}

/// The `vip` parameter: an IPv4 or IPv6 address, brackets allowed.
pub fn vip(text: &str) -> Result<IpAddr, Fail> {
    text.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| Fail::configured(format!("vip={text}: not an IP address")))
}

/// The actions every agent answers alike: `meta-data` prints `metadata()`, `usage` and
/// `help` print `usage`, and an action not in `actions` prints `usage` and is
/// unimplemented. `None` when the agent has to act on `action` itself.
pub fn answer_fixed(
    action: &str,
    actions: &[&str],
    metadata: fn() -> String,
    usage: &str,
    out: &mut dyn Write,
) -> Option<i32> {
    let (text, code) = match action {
        "meta-data" => (metadata(), SUCCESS),
        "usage" | "help" => (usage.to_owned(), SUCCESS),
        a if actions.contains(&a) => return None,
        _ => (usage.to_owned(), ERR_UNIMPLEMENTED),
    };
    let _ = out.write_all(text.as_bytes());
    Some(code)
}

/// Report an action's result: the code, and the reason on stderr for failures.
pub fn finish(env: &Env, err: &mut dyn Write, result: Result<i32, Fail>) -> i32 {
    match result {
        Ok(code) => code,
        Err(Fail { code, reason }) => {
            exit_reason(env, err, &reason);
            code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_monitors_without_an_interval() {
        assert!(Env::from_pairs([]).is_probe());
        assert!(Env::from_pairs([("OCF_RESKEY_CRM_meta_interval", "0")]).is_probe());
        assert!(!Env::from_pairs([("OCF_RESKEY_CRM_meta_interval", "10000")]).is_probe());
    }

    #[test]
    fn instances_are_file_names() {
        let e = Env::from_pairs([("OCF_RESOURCE_INSTANCE", "lvs-clone:1")]);
        assert_eq!(e.instance(), "lvs-clone-1");
        assert_eq!(Env::from_pairs([]).instance(), "default");
    }

    #[test]
    fn exit_reasons_are_one_line_with_the_prefix() {
        let mut err = Vec::new();
        exit_reason(&Env::from_pairs([]), &mut err, "bad\nthing");
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "ocf-exit-reason:bad thing\n"
        );
    }
}
