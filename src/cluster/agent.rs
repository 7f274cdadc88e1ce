//! The director as an OCF resource agent (`ldirectord --ocf ACTION`).
//!
//! The agent drives the ordinary daemon: `start` runs `LDIRECTORD CONFIG start` (the same
//! argv as stock's agent, so `pgrep -f` and the pid file `ldirectord.NAME.pid` stay what
//! operators know), `monitor` reads the pid file, `stop` signals the daemon and waits for
//! its cleanup, `reload` sends SIGHUP. Exit codes follow cluster-integration §2.2 and §5.3.
//!
//! CONFIG is the operator's `configfile`, unless the real servers come from the cluster
//! (the `vip`/`port` parameters, or `realsource=` directives in the file): then the agent
//! generates the file the daemon runs on (see [`crate::realsource::generate`]), refreshes the real
//! servers on every recurring monitor, and when the result differs rewrites it and
//! reloads the daemon, whose reload applies only the difference to IPVS.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ldirectord_checks::process::blocking_command;
use ldirectord_parsers::config::{
    self, ConfigError, EngineName, Family, Forward, RealCandidates, RealFilter, RealSources,
    ValuePattern,
};
use nix::sys::signal::Signal;

use super::metadata;
use super::ocf::{self, Env, Fail};
use crate::instance::{self, PidState, STOP_TIMEOUT};
use crate::realsource::generate::{self, BlockSources, Extensions};
use crate::realsource::{self, ClusterQuery, SystemQuery};

const USAGE: &str = "usage: ldirectord --ocf {start|stop|monitor|reload|validate-all|meta-data|usage}\n\
Parameters come from OCF_RESKEY_* (see meta-data).\n";

/// Run one OCF action; returns the exit code.
pub fn run(action: &str, env: &Env, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    const ACTIONS: [&str; 7] = [
        "start",
        "stop",
        "monitor",
        "status",
        "reload",
        "reload-agent",
        "validate-all",
    ];
    if let Some(code) = ocf::answer_fixed(action, &ACTIONS, metadata::director, USAGE, out) {
        return code;
    }
    let result = Agent::new(env).and_then(|agent| {
        let q = SystemQuery::default();
        match action {
            "start" => agent.start(&q, err),
            "stop" => agent.stop(),
            "monitor" | "status" => agent.monitor(&q, err),
            "reload" | "reload-agent" => agent.reload(&q, err),
            _ => agent.validate().map(|_| ocf::SUCCESS),
        }
    });
    ocf::finish(env, err, result)
}

/// What the daemon runs on.
#[derive(Debug)]
enum Target {
    /// The operator's file as it is. `resolved` is `None` when it does not exist here.
    File {
        typed: String,
        resolved: Option<PathBuf>,
    },
    /// A generated file: the operator's file with `realsource=` directives, or the
    /// virtual service of the `vip`/`port` parameters.
    Generated(Box<Generated>),
}

#[derive(Debug)]
pub(crate) struct Generated {
    /// Where the definition came from, for messages (a path, or "the parameters").
    origin: String,
    /// The operator's file, when there is one.
    source: Option<PathBuf>,
    /// The definition without real servers from the cluster (extension lines commented).
    pub(crate) sanitized: String,
    blocks: Vec<BlockSources>,
    nodes: BTreeMap<String, IpAddr>,
    /// Why the operator's file does not parse (`PATH:LINE:COLUMN: message`), if it does
    /// not: every action but `stop` fails with it.
    broken: Option<String>,
}

impl Generated {
    /// The definition without the cluster's real servers, parsed; fails when the
    /// operator's file does not parse.
    fn parse(&self) -> Result<config::Parsed, Fail> {
        if let Some(reason) = &self.broken {
            return Err(Fail::configured(reason.clone()));
        }
        let path = self
            .source
            .clone()
            .unwrap_or_else(|| PathBuf::from("(parameters)"));
        config::parse_str(&self.sanitized, &path).map_err(|e| Fail::configured(config_reason(&e)))
    }
}

struct Agent<'e> {
    env: &'e Env,
    program: PathBuf,
    flags: Vec<String>,
    run_dir: PathBuf,
    state_dir: PathBuf,
    target: Target,
}

/// The parameters that only make sense with `vip`.
const INLINE_ONLY: [&str; 10] = [
    "port",
    "virtual_service_options",
    "default_weight",
    "weight_of_realservers",
    "realserver_dependent_resource",
    "realserver_dependent_attribute_name",
    "realserver_get_real_servers_script",
    "realserver_check_active_real_server_script",
    "node_address_map",
    "forwarding",
];

/// `PATH:LINE:COLUMN: message` for the exit reason (crm_mon shows it).
fn config_reason(e: &ConfigError) -> String {
    let d = &e.error;
    if d.span.line == 0 {
        format!("{}: {}", e.path.display(), d.message)
    } else {
        format!(
            "{}:{}:{}: {}",
            e.path.display(),
            d.span.line,
            d.span.column,
            d.message
        )
    }
}

impl<'e> Agent<'e> {
    fn new(env: &'e Env) -> Result<Agent<'e>, Fail> {
        let program = match env.param("ldirectord") {
            Some(p) => PathBuf::from(p),
            None => std::env::current_exe()
                .map_err(|e| Fail::new(ocf::ERR_INSTALLED, format!("cannot find myself: {e}")))?,
        };
        let run_dir = PathBuf::from(env.param("run_dir").unwrap_or(instance::DEFAULT_RUN_DIR));
        let mut flags = vec!["--run-dir".to_owned(), run_dir.display().to_string()];
        match (env.param("engine"), env.param("ipvsadm")) {
            // Neither: the configuration's engine= (default netlink).
            (None, None) => {}
            (None | Some("ipvsadm"), Some(path)) => {
                flags.extend(["--engine", "ipvsadm", "--ipvsadm", path].map(String::from));
            }
            (Some(e), None) if EngineName::from_word(e).is_some() => {
                flags.extend(["--engine".to_owned(), e.to_owned()]);
            }
            (Some(e), ipvsadm) => {
                return Err(Fail::configured(
                    match (EngineName::from_word(e), ipvsadm) {
                        (Some(_), Some(_)) => format!("ipvsadm= goes with engine=ipvsadm, not {e}"),
                        _ => format!("engine={e}: netlink, ipvsadm or userspace"),
                    },
                ));
            }
        }
        let state_dir = env
            .var("HA_RSCTMP")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/run/resource-agents"))
            .join("ldirectord-rs");
        let target = if env.param("vip").is_some() {
            if env.param("configfile").is_some() {
                return Err(Fail::configured(
                    "give either configfile or vip and port, not both",
                ));
            }
            Target::Generated(Box::new(inline(env)?))
        } else {
            if let Some(p) = INLINE_ONLY.iter().find(|p| env.param(p).is_some()) {
                return Err(Fail::configured(format!(
                    "{p} needs vip (in a configuration file, use the realsource= directives)"
                )));
            }
            let typed = env
                .param("configfile")
                .unwrap_or("/etc/ha.d/ldirectord.cf")
                .to_owned();
            let resolved = instance::resolve_config(&typed, &instance::ha_dir());
            match resolved
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
            {
                Some(text) if generate::uses_extensions(&text) => {
                    let path = resolved.clone().unwrap_or_default();
                    // A file that does not parse still names the daemon's file (stop
                    // must find it); the other actions report the error.
                    let (ext, broken) = match config::parse_str(&text, &path) {
                        Ok(parsed) => (generate::from_config(&text, &parsed.config), None),
                        Err(e) => (Extensions::default(), Some(config_reason(&e))),
                    };
                    Target::Generated(Box::new(Generated {
                        origin: path.display().to_string(),
                        source: Some(path),
                        sanitized: ext.sanitized,
                        blocks: ext.blocks,
                        nodes: ext.nodes,
                        broken,
                    }))
                }
                _ => Target::File { typed, resolved },
            }
        };
        Ok(Agent {
            env,
            program,
            flags,
            run_dir,
            state_dir,
            target,
        })
    }

    /// CONFIG as passed to the daemon.
    fn daemon_config(&self) -> String {
        match &self.target {
            Target::File { typed, .. } => typed.clone(),
            Target::Generated(_) => self.generated_path().display().to_string(),
        }
    }

    fn generated_path(&self) -> PathBuf {
        self.state_dir.join(format!("{}.cf", self.env.instance()))
    }

    fn last_good_path(&self) -> PathBuf {
        self.state_dir
            .join(format!("{}.reals.json", self.env.instance()))
    }

    /// The virtual services whose source failed at the last monitor (a failure streak
    /// warns once, as the daemon does, not on every monitor).
    fn failing_path(&self) -> PathBuf {
        self.state_dir
            .join(format!("{}.failing.json", self.env.instance()))
    }

    fn pid_state(&self) -> PidState {
        let name = instance::instance_name(Some(&self.daemon_config()));
        instance::pid_state(&instance::pid_file(&self.run_dir, &name))
    }

    /// Parse what the daemon would run on (without the cluster's real servers).
    fn validate(&self) -> Result<(), Fail> {
        match &self.target {
            Target::File { typed, resolved } => {
                let path = resolved.as_ref().ok_or_else(|| {
                    Fail::new(
                        ocf::ERR_INSTALLED,
                        format!("configuration file {typed} not found"),
                    )
                })?;
                config::load(path).map_err(|e| Fail::configured(config_reason(&e)))?;
            }
            Target::Generated(g) => {
                let parsed = g.parse()?;
                for b in &g.blocks {
                    if !parsed
                        .config
                        .virtuals
                        .iter()
                        .any(|v| v.span.line == b.virtual_line)
                    {
                        return Err(Fail::configured(format!(
                            "{}:{}: no virtual service for these real-server sources",
                            g.origin, b.first_line
                        )));
                    }
                }
            }
        }
        if !is_executable(&self.program) {
            return Err(Fail::new(
                ocf::ERR_INSTALLED,
                format!("{} is not an executable program", self.program.display()),
            ));
        }
        ours(&self.program).map_err(|why| Fail::new(ocf::ERR_INSTALLED, why))
    }

    /// Select the cluster's real servers and write the daemon's file. Returns whether it
    /// changed. A failing source keeps its last good set (and says so on stderr).
    fn refresh(&self, q: &dyn ClusterQuery, err: &mut dyn Write) -> Result<bool, Fail> {
        let Target::Generated(g) = &self.target else {
            return Ok(false);
        };
        let parsed = g.parse()?;
        let mut last_good: BTreeMap<String, Vec<(IpAddr, u32)>> =
            std::fs::read_to_string(self.last_good_path())
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
        let mut failing: BTreeSet<String> = std::fs::read_to_string(self.failing_path())
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let mut inserts = BTreeMap::new();
        for b in &g.blocks {
            let Some(v) = parsed
                .config
                .virtuals
                .iter()
                .find(|v| v.span.line == b.virtual_line)
            else {
                continue;
            };
            let members = match realsource::select(&b.spec, &g.nodes, v.family, q) {
                Ok(m) => {
                    if failing.remove(&b.virtual_text) {
                        let _ = writeln!(
                            err,
                            "real servers of {}: the source works again ({} real server{})",
                            b.virtual_text,
                            m.len(),
                            if m.len() == 1 { "" } else { "s" }
                        );
                    }
                    let set = m.iter().map(|m| (m.address, m.weight)).collect();
                    last_good.insert(b.virtual_text.clone(), set);
                    m
                }
                Err(why) => {
                    let kept = last_good.get(&b.virtual_text).cloned().unwrap_or_default();
                    if failing.insert(b.virtual_text.clone()) {
                        let _ = writeln!(
                            err,
                            "WARNING: real servers of {}: {why}; keeping the last good set ({} \
                             real server{})",
                            b.virtual_text,
                            kept.len(),
                            if kept.len() == 1 { "" } else { "s" }
                        );
                    }
                    kept.into_iter()
                        .map(|(address, weight)| realsource::Member {
                            address,
                            weight,
                            host: address.to_string(),
                        })
                        .collect()
                }
            };
            let lines = members
                .iter()
                .map(|m| generate::real_line(v, m, b.spec.forward))
                .collect::<Vec<_>>();
            inserts.insert(b.first_line, lines);
        }
        let header = format!(
            "# Generated by ldirectord-rs for OCF resource {} from {}; rewritten on every \
             monitor, do not edit.",
            self.env.instance(),
            g.origin
        );
        let text = generate::expand(&g.sanitized, &header, &inserts);
        std::fs::create_dir_all(&self.state_dir).map_err(|e| {
            Fail::generic(format!("cannot create {}: {e}", self.state_dir.display()))
        })?;
        write_atomically(
            &self.last_good_path(),
            &serde_json::to_string(&last_good).unwrap_or_default(),
        )?;
        write_atomically(
            &self.failing_path(),
            &serde_json::to_string(&failing).unwrap_or_default(),
        )?;
        let target = self.generated_path();
        if std::fs::read_to_string(&target).ok().as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        write_atomically(&target, &text)?;
        Ok(true)
    }

    fn start(&self, q: &dyn ClusterQuery, err: &mut dyn Write) -> Result<i32, Fail> {
        self.validate()?;
        if let PidState::Running(pid) = self.pid_state() {
            // Already running: leave the table alone, apply what changed.
            if self.refresh(q, err)? {
                hup(pid);
            }
            return Ok(ocf::SUCCESS);
        }
        self.refresh(q, err)?;
        let output = blocking_command(&self.program)
            .args(&self.flags)
            .arg(self.daemon_config())
            .arg("start")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Fail::generic(format!("cannot run {}: {e}", self.program.display())))?;
        let _ = err.write_all(&output.stderr);
        if !output.status.success() {
            let text = String::from_utf8_lossy(&output.stderr);
            let last = text.lines().last().unwrap_or("").trim();
            return Err(Fail::generic(format!(
                "{} {} start exited {}{}{last}",
                self.program.display(),
                self.daemon_config(),
                output.status.code().unwrap_or(-1),
                if last.is_empty() { "" } else { ": " },
            )));
        }
        self.director_sysctls(err);
        match self.pid_state() {
            PidState::Running(_) => Ok(ocf::SUCCESS),
            _ => Err(Fail::generic(
                "the daemon is not running after start (see its log)",
            )),
        }
    }

    /// The director-side kernel settings asked for by parameters. A setting that cannot
    /// be written (no ip_vs module yet, a read-only /proc) is a warning: the director
    /// works without it.
    fn director_sysctls(&self, err: &mut dyn Write) {
        let v6 = self.env.param("vip").is_some_and(|v| v.contains(':'));
        let mut wanted = Vec::new();
        if is_true(self.env.param("ip_forward")) {
            wanted.push("net/ipv4/ip_forward");
            if v6 {
                wanted.push("net/ipv6/conf/all/forwarding");
            }
        }
        if is_true(self.env.param("expire_nodest_conn")) {
            wanted.push("net/ipv4/vs/expire_nodest_conn");
        }
        if is_true(self.env.param("expire_quiescent_template")) {
            wanted.push("net/ipv4/vs/expire_quiescent_template");
        }
        for key in wanted {
            if let Err(e) = std::fs::write(Path::new("/proc/sys").join(key), "1") {
                let _ = writeln!(
                    err,
                    "WARNING: cannot set {} = 1: {e}",
                    key.replace('/', ".")
                );
            }
        }
    }

    fn stop(&self) -> Result<i32, Fail> {
        // No configuration needed: a stop on a node without (or with a broken) file must
        // succeed, or Pacemaker fences or blocks (cluster-integration §2.2).
        let PidState::Running(pid) = self.pid_state() else {
            return Ok(ocf::SUCCESS);
        };
        let bound = self
            .env
            .timeout()
            .map(|t| t.mul_f64(0.8))
            .unwrap_or(STOP_TIMEOUT)
            .min(STOP_TIMEOUT);
        if instance::stop(pid, bound) {
            return Ok(ocf::SUCCESS);
        }
        instance::signal(pid, Signal::SIGKILL);
        if instance::wait_gone(pid, Duration::from_secs(5)) {
            return Ok(ocf::SUCCESS);
        }
        Err(Fail::generic(format!(
            "the daemon (pid {pid}) survived SIGTERM and SIGKILL"
        )))
    }

    fn monitor(&self, q: &dyn ClusterQuery, err: &mut dyn Write) -> Result<i32, Fail> {
        let pid = match self.pid_state() {
            PidState::Running(pid) => pid,
            // Cleanly stopped, whatever the configuration says (a stale pid file too,
            // as stock's agent maps it).
            PidState::Absent | PidState::Stale(_) => return Ok(ocf::NOT_RUNNING),
        };
        // Running on a configuration that no longer parses: undetermined (stock: 1).
        self.validate().map_err(|f| Fail::generic(f.reason))?;
        if !self.env.is_probe() && self.refresh(q, err)? {
            hup(pid);
        }
        Ok(ocf::SUCCESS)
    }

    fn reload(&self, q: &dyn ClusterQuery, err: &mut dyn Write) -> Result<i32, Fail> {
        self.validate()?;
        let PidState::Running(pid) = self.pid_state() else {
            // ocf-tester reloads a stopped resource; the next start reads everything.
            return Ok(ocf::SUCCESS);
        };
        let changed = self.refresh(q, err)?;
        if changed || matches!(self.target, Target::File { .. }) {
            hup(pid);
        }
        Ok(ocf::SUCCESS)
    }
}

/// The virtual service of the `vip`/`port` parameters, with lvsdr's real-server sources.
pub(crate) fn inline(env: &Env) -> Result<Generated, Fail> {
    let vip = ocf::vip(env.param("vip").unwrap_or_default())?;
    let port = env
        .param("port")
        .ok_or_else(|| Fail::configured("port is required with vip"))?;
    let port: u16 = port
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| Fail::configured(format!("port={port}: not a port number")))?;
    let protocol = match env.param("protocol").unwrap_or("tcp") {
        p @ ("tcp" | "udp") => p,
        p => return Err(Fail::configured(format!("protocol={p}: tcp or udp"))),
    };
    let options = generate::service_options(
        env.param("virtual_service_options").unwrap_or("-s rr"),
        if vip.is_ipv6() {
            Family::Inet6
        } else {
            Family::Inet
        },
    )
    .map_err(|e| Fail::configured(e.to_string()))?;
    let default_weight = match env.param("default_weight") {
        None => 1,
        Some(w) => w
            .trim()
            .parse()
            .map_err(|_| Fail::configured(format!("default_weight={w}: not a number")))?,
    };
    let weights = realsource::parse_weights(
        env.param("weight_of_realservers").unwrap_or(""),
        default_weight,
    )
    .map_err(|e| Fail::configured(format!("weight_of_realservers: {e}")))?;
    let nodes = realsource::parse_node_map(env.param("node_address_map").unwrap_or(""))
        .map_err(|e| Fail::configured(format!("node_address_map: {e}")))?;
    let forward = match env.param("forwarding").unwrap_or("gate") {
        "gate" => Forward::Gate,
        "masq" => Forward::Masq,
        "ipip" => Forward::Ipip,
        f => {
            return Err(Fail::configured(format!(
                "forwarding={f}: gate, masq or ipip"
            )));
        }
    };
    let candidates = if let Some(c) = env.param("realserver_get_real_servers_script") {
        RealCandidates::Command(c.to_owned())
    } else if let Some(r) = env.param("realserver_dependent_resource") {
        RealCandidates::Resource(r.to_owned())
    } else if !weights.is_empty() {
        RealCandidates::List(weights.iter().map(|(h, w)| (h.clone(), Some(*w))).collect())
    } else {
        RealCandidates::Partition
    };
    let mut filters = Vec::new();
    let mut fallback_filters = Vec::new();
    if let Some(name) = env.param("realserver_dependent_attribute_name") {
        let attribute = |param: &str, regex: &str| {
            let pattern = ValuePattern::new(regex).map_err(|e| {
                Fail::configured(format!("{param}={regex}: bad regular expression: {e}"))
            })?;
            Ok::<_, Fail>(RealFilter::Attribute {
                name: name.to_owned(),
                pattern,
            })
        };
        let param = "realserver_dependent_attribute_value";
        filters.push(attribute(param, env.param(param).unwrap_or("1"))?);
        let param = "realserver_dependent_attribute_fallback_value";
        if let Some(regex) = env.param(param) {
            fallback_filters.push(attribute(param, regex)?);
        }
    }
    if let Some(c) = env.param("realserver_check_active_real_server_script") {
        filters.push(RealFilter::Command(c.to_owned()));
    }
    let (text, insert_at) = generate::inline_config(vip, port, protocol, &options);
    let virtual_text = text.lines().next().unwrap_or_default().to_owned();
    Ok(Generated {
        origin: "the resource parameters".into(),
        source: None,
        sanitized: text,
        blocks: vec![BlockSources {
            virtual_line: 1,
            virtual_text,
            first_line: insert_at,
            spec: RealSources {
                spans: Vec::new(),
                candidates,
                filters,
                fallback_filters,
                weights,
                default_weight,
                forward,
            },
        }],
        nodes,
        broken: None,
    })
}

/// OCF booleans (ocf_is_true): yes, true, 1, on.
fn is_true(v: Option<&str>) -> bool {
    matches!(
        v.map(|v| v.trim().to_ascii_lowercase()).as_deref(),
        Some("yes" | "true" | "1" | "on")
    )
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The daemon's program must be ldirectord-rs (this program, or one whose `--version`
/// says so): Debian's ldirectord may still be `/usr/sbin/ldirectord`, the `ldirectord`
/// parameter's default in stock's agent.
fn ours(program: &Path) -> Result<(), String> {
    let me = std::env::current_exe().ok();
    if me.is_some() && std::fs::canonicalize(program).ok() == me {
        return Ok(());
    }
    let output = blocking_command(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {} --version: {e}", program.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let first = text.lines().next().unwrap_or("").trim();
    if first.starts_with("ldirectord-rs ") {
        return Ok(());
    }
    Err(format!(
        "ldirectord={} is not ldirectord-rs (its --version says {first:?}); set the \
         ldirectord parameter to the ldirectord-rs program, or leave it unset",
        program.display()
    ))
}

fn write_atomically(path: &Path, text: &str) -> Result<(), Fail> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Fail::generic(format!("cannot write {}: {e}", path.display())))
}

fn hup(pid: i32) {
    instance::signal(pid, Signal::SIGHUP);
}
