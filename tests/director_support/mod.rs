//! Shared harness for the director tests: configs written as `ldirectord.cf` text (parsed
//! with a fixed resolver, no file system), a simulated kernel table, and a trace that
//! renders every action as one line so tests compare exact sequences:
//! `ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 1`, `log: Added …`,
//! `run: /fb start 10.0.0.100:80 tcp`, `mail: SUBJECT [state]`, `monitor PATH: LINE`.
//! Golden transcripts live in `tests/fixtures/director/scenarios.txt` (its header says how
//! to read it) and are played by [`Harness::scenario`] and [`Harness::play`].
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use ldirectord::director::{Action, CheckResult, Director, DrainTarget, Health, apply_op};
use ldirectord::engine::{
    DestEntry, DestSpec, IpProto, Op, ServiceEntry, ServiceKey, ServiceSpec, Table,
};
use ldirectord_checks::CheckSpec;
use ldirectord_parsers::config::resolve::StaticResolver;
use ldirectord_parsers::config::{Config, Family, Forward, ParseOptions, parse_with};

/// Parse `text` as `/etc/ha.d/ldirectord.cf`; panics with the diagnostic on error.
pub fn config(text: &str) -> Config {
    let mut resolver = StaticResolver::default();
    resolver
        .hosts
        .insert("localhost".into(), vec!["127.0.0.1".parse().unwrap()]);
    for (name, port) in [("http", 80u16), ("https", 443), ("domain", 53)] {
        for proto in ["tcp", "udp", ""] {
            resolver.services.insert((name.into(), proto.into()), port);
        }
    }
    let opts = ParseOptions {
        resolver: &resolver,
        check_files: false,
        hostname: Some("lb1".into()),
    };
    match parse_with(text, Path::new("/etc/ha.d/ldirectord.cf"), &opts) {
        Ok(parsed) => parsed.config,
        Err(e) => panic!("config does not parse: {e:?}"),
    }
}

pub fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

pub fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Inet {
        proto: IpProto::Tcp,
        ip: ip(addr),
        port,
    }
}

pub fn fwmark(mark: u32, family: Family) -> ServiceKey {
    ServiceKey::Fwmark { mark, family }
}

/// A kernel service with wrr and no persistence.
pub fn service(key: ServiceKey, dests: &[(&str, u16, Forward, u32)]) -> ServiceEntry {
    ServiceEntry {
        spec: ServiceSpec::new(key, "wrr"),
        pe: None,
        dests: dests
            .iter()
            .map(|&(a, port, forward, weight)| DestEntry {
                spec: DestSpec {
                    ip: ip(a),
                    port,
                    forward,
                    weight,
                    upper: 0,
                    lower: 0,
                },
                local: false,
                active_conns: 0,
                inactive_conns: 0,
            })
            .collect(),
    }
}

/// ipvsadm's words for an operation (§4.6), so expectations read like stock's logs.
pub fn render_op(op: &Op) -> String {
    let svc = |s: &ServiceSpec| {
        let mut t = format!("{} ", s.key);
        if s.ops {
            t.push_str("-o ");
        }
        t.push_str(&format!("-s {}", s.scheduler));
        if let Some(p) = s.persistent {
            t.push_str(&format!(" -p {p}"));
            match s.netmask {
                Some(ldirectord::engine::Netmask::V4(m)) => t.push_str(&format!(" -M {m}")),
                Some(ldirectord::engine::Netmask::V6(m)) => t.push_str(&format!(" -M {m}")),
                None => {}
            }
        }
        if !s.sched_flags.is_empty() {
            t.push_str(&format!(" -b {}", s.sched_flags));
        }
        t
    };
    let r = |d: &DestSpec| format!("-r {} {}", d.addr(), d.forward.ipvsadm_flag());
    match op {
        Op::AddService(s) => format!("-A {}", svc(s)),
        Op::EditService(s) => format!("-E {}", svc(s)),
        Op::DelService(k) => format!("-D {k}"),
        Op::AddDest(k, d) => format!(
            "-a {k} -x {} -y {} {} -w {}",
            d.upper,
            d.lower,
            r(d),
            d.weight
        ),
        Op::EditDest(k, d) => format!(
            "-e {k} -x {} -y {} {} -w {}",
            d.upper,
            d.lower,
            r(d),
            d.weight
        ),
        Op::QuiesceDest(k, d) => format!("-e {k} {} -w {}", r(d), d.weight),
        Op::ReaddQuiescedDest(k, d) => format!("-a {k} {} -w {}", r(d), d.weight),
        Op::DelDest { service, ip, port } => {
            format!("-d {service} -r {}", SocketAddr::new(*ip, *port))
        }
    }
}

pub fn render(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Apply(op) => format!("ipvsadm {}", render_op(op)),
            Action::Log(line) => format!("log: {line}"),
            Action::RunFallbackCommand(cmd) => format!("run: {}", cmd.shell_line()),
            Action::Alert(alert) => format!(
                "mail {}: {} [{}]",
                alert.recipients,
                alert.subject(),
                alert.state.as_str()
            ),
            Action::Monitor { path, line } => format!("monitor {}: {line}", path.display()),
        })
        .collect()
}

/// Only the engine operations of a trace.
pub fn ops(actions: &[Action]) -> Vec<Op> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Apply(op) => Some(op.clone()),
            _ => None,
        })
        .collect()
}

/// The table as `ipvsadm -L -n` would list it, in a stable order.
pub fn listing(table: &Table) -> Vec<String> {
    let mut services: Vec<&ServiceEntry> = table.services.iter().collect();
    services.sort_by_key(|s| s.spec.key);
    let mut out = Vec::new();
    for s in services {
        out.push(format!("{} {}", s.spec.key, s.spec.scheduler));
        let mut dests: Vec<&DestEntry> = s.dests.iter().collect();
        dests.sort_by_key(|d| (d.spec.ip, d.spec.port));
        for d in dests {
            let fwd = match d.spec.forward {
                Forward::Gate => "Route",
                Forward::Masq => "Masq",
                Forward::Ipip => "Tunnel",
            };
            out.push(format!("  -> {} {fwd} {}", d.spec.addr(), d.spec.weight));
        }
    }
    out
}

/// A director driving a simulated kernel: every operation it emits is applied.
pub struct Harness {
    pub director: Director,
    pub kernel: Table,
    pub now: Duration,
}

impl Harness {
    pub fn start(cfg: &str, kernel: Table) -> (Harness, Vec<String>) {
        let (director, actions) = Director::start(config(cfg), &kernel);
        let mut h = Harness {
            director,
            kernel,
            now: Duration::ZERO,
        };
        h.apply(&actions);
        (h, render(&actions))
    }

    fn apply(&mut self, actions: &[Action]) {
        for op in ops(actions) {
            apply_op(&mut self.kernel, &op);
        }
    }

    /// The check of real `real` (0-based, file order) of virtual `virt`.
    pub fn spec(&self, virt: usize, real: usize) -> CheckSpec {
        let vs = &self.director.config().virtuals[virt];
        CheckSpec::for_real(vs, &vs.reals[real])
    }

    /// Advance the clock by a second and report one result.
    pub fn result(&mut self, virt: usize, real: usize, result: CheckResult<'_>) -> Vec<String> {
        self.now += Duration::from_secs(1);
        let spec = self.spec(virt, real);
        let actions = self.director.on_check(&spec, result, self.now);
        self.apply(&actions);
        render(&actions)
    }

    pub fn up(&mut self, virt: usize, real: usize) -> Vec<String> {
        self.result(virt, real, CheckResult::Up("-"))
    }

    pub fn down(&mut self, virt: usize, real: usize) -> Vec<String> {
        self.result(virt, real, CheckResult::Down("Connection refused"))
    }

    pub fn reload(&mut self, cfg: &str) -> Vec<String> {
        let actions = self
            .director
            .reload(config(cfg), &self.kernel.clone(), self.now);
        self.apply(&actions);
        render(&actions)
    }

    /// Give the director a fresh dump of the (simulated) kernel.
    pub fn dump(&mut self) -> Vec<String> {
        let actions = self.director.on_table(&self.kernel.clone());
        self.apply(&actions);
        render(&actions)
    }

    pub fn stop(&mut self) -> Vec<String> {
        let actions = self.director.stop();
        self.apply(&actions);
        render(&actions)
    }

    /// Put operators' drains in force.
    pub fn drains(&mut self, drains: Vec<DrainTarget>) -> Vec<String> {
        let actions = self.director.set_drains(drains);
        self.apply(&actions);
        render(&actions)
    }

    pub fn tick(&mut self, secs: u64) -> Vec<String> {
        self.now += Duration::from_secs(secs);
        let actions = self.director.tick(self.now);
        render(&actions)
    }

    pub fn listing(&self) -> Vec<String> {
        listing(&self.kernel)
    }

    /// Start on `kernel` with the block `name` of the golden transcripts, whose first step
    /// is `start CONFIG`, and play the rest of it.
    pub fn scenario(name: &str, kernel: Table) -> Harness {
        let steps = golden(name);
        let Some((first, want)) = steps.first() else {
            panic!("{name}: empty block");
        };
        let (checked, first) = match first.strip_prefix("ignore ") {
            Some(step) => (false, step),
            None => (true, first.as_str()),
        };
        let Some(cfg) = first.strip_prefix("start ") else {
            panic!("{name}: the first step is not `start CONFIG`");
        };
        let (mut h, got) = Harness::start(&unescape(cfg), kernel);
        if checked {
            assert_eq!(got, *want, "{name}: {first}");
        }
        h.run(name, &steps[1..]);
        h
    }

    /// Play the block `name` of the golden transcripts on this harness.
    pub fn play(&mut self, name: &str) {
        self.run(name, &golden(name));
    }

    fn run(&mut self, name: &str, steps: &[(String, Vec<String>)]) {
        for (step, want) in steps {
            let (checked, step) = match step.strip_prefix("ignore ") {
                Some(step) => (false, step),
                None => (true, step.as_str()),
            };
            let got = self.step(step);
            if checked {
                assert_eq!(got, *want, "{name}: {step}");
            }
        }
    }

    /// One step of a golden block; returns what it produced.
    fn step(&mut self, step: &str) -> Vec<String> {
        let (word, rest) = step.split_once(' ').unwrap_or((step, ""));
        let mut args = rest.splitn(3, ' ');
        let mut index = || -> usize {
            let arg = args.next().unwrap_or_default();
            arg.parse()
                .unwrap_or_else(|_| panic!("{step}: {arg:?} is no index"))
        };
        match word {
            "up" => self.up(index(), index()),
            "down" => {
                let (v, r) = (index(), index());
                match args.next() {
                    Some(text) => self.result(v, r, CheckResult::Down(&unescape(text))),
                    None => self.down(v, r),
                }
            }
            "maintenance" => self.result(index(), index(), CheckResult::Maintenance),
            "reload" => self.reload(&unescape(rest)),
            "dump" => self.dump(),
            "stop" => self.stop(),
            "listing" => self.listing(),
            _ => panic!("unknown step {step:?}"),
        }
    }

    /// Up flags by `virtual-id real`.
    pub fn health(&self) -> HashMap<String, bool> {
        self.director
            .status()
            .into_iter()
            .flat_map(|v| {
                v.reals.into_iter().map(move |r| {
                    (
                        format!("{} {}", v.virtual_id, r.real),
                        r.health == Health::Up,
                    )
                })
            })
            .collect()
    }
}

/// The steps of block `name` of `tests/fixtures/director/scenarios.txt`, each with the
/// lines it must produce.
pub fn golden(name: &str) -> Vec<(String, Vec<String>)> {
    const GOLDEN: &str = include_str!("../fixtures/director/scenarios.txt");
    let header = format!("== {name}");
    let mut lines = GOLDEN.lines();
    if !lines.any(|l| l == header) {
        panic!("no block {header:?} in the golden transcripts");
    }
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    for line in lines.take_while(|l| !l.starts_with("== ")) {
        if let Some(want) = line.strip_prefix("| ") {
            match steps.last_mut() {
                Some((_, lines)) => lines.push(want.to_owned()),
                None => panic!("{name}: {line:?} before any step"),
            }
        } else if !line.is_empty() && !line.starts_with('#') {
            steps.push((line.to_owned(), Vec::new()));
        }
    }
    steps
}

/// A one-line CONFIG or TEXT of the golden transcripts: `\n` a newline, `\t` a tab.
fn unescape(text: &str) -> String {
    text.replace("\\n", "\n").replace("\\t", "\t")
}

/// Lines as owned strings, for `assert_eq!(trace, lines(&[...]))`.
pub fn lines(expected: &[&str]) -> Vec<String> {
    expected.iter().map(|s| s.to_string()).collect()
}
