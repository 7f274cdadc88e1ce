//! Drives an engine against a real kernel and prints the table as ipvsadm lists it. The
//! real-IPVS VM (`tests/vm/`) runs it inside the guest to compare our engines with the
//! real `ipvsadm`:
//!
//! ```text
//! ipvs_probe [--engine netlink|ipvsadm] apply FILE   apply ipvsadm-style lines ("-" = stdin)
//! ipvs_probe [--engine netlink|ipvsadm] dump [--thresholds]
//! ipvs_probe [--engine netlink|ipvsadm] bench REALS [SERVICES]
//! ```
//!
//! `apply` reads one change per line in ipvsadm's own syntax (`-A -t 10.0.0.1:80 -s wrr -p
//! 300 -M 255.255.255.0`, `-a -f 5 -6 -r [2001:db8::2] -m -w 3 -x 100 -y 10`, `-e`, `-E`,
//! `-d`, `-D`, `-C`), so the same file can be fed to the real ipvsadm. A line starting with
//! `!` must be refused by the kernel; `#` starts a comment. Every change goes through the
//! engine's [`Engine::apply`]; the exit status is 1 if any line did not behave.
//!
//! `dump` prints [`Engine::dump`] through `ldirectord_parsers::ipvsadm::render`, sorted as
//! ipvsadm sorts, so `diff <(ipvs_probe dump) <(ipvsadm -Ln)` must be empty.
//!
//! `bench` programs REALS destinations spread over SERVICES virtual services (default
//! REALS/100) into an empty table, then a "reload" that changes the weight of 1% of them,
//! and prints the wall time of both.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Instant;

use ldirectord::engine::ipvsadm::IpvsadmEngine;
use ldirectord::engine::netlink::{NetlinkEngine, NetlinkOptions};
use ldirectord::engine::{
    DestSpec, Engine, Family, Forward, IpProto, Netmask, Op, SchedFlags, ServiceKey, ServiceSpec,
};
use ldirectord_parsers::ipvsadm::{self as listing, ListingHeader, ListingKind};

fn usage() -> ExitCode {
    eprintln!(
        "usage: ipvs_probe [--engine netlink|ipvsadm] [--ipvsadm PATH] \
         apply FILE | dump [--thresholds] | bench REALS [SERVICES]"
    );
    ExitCode::from(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut engine_name = "netlink".to_owned();
    let mut program = IpvsadmEngine::default_program();
    while args.first().is_some_and(|a| a.starts_with("--")) {
        let flag = args.remove(0);
        let Some(value) = (!args.is_empty()).then(|| args.remove(0)) else {
            return usage();
        };
        match flag.as_str() {
            "--engine" => engine_name = value,
            "--ipvsadm" => program = value.into(),
            _ => return usage(),
        }
    }
    let mut engine: Box<dyn Engine> = match engine_name.as_str() {
        "netlink" => match NetlinkEngine::connect(NetlinkOptions::default()).await {
            Ok(engine) => Box::new(engine),
            Err(e) => {
                eprintln!("ipvs_probe: {e}");
                return ExitCode::from(3);
            }
        },
        "ipvsadm" => Box::new(IpvsadmEngine::new(program)),
        _ => return usage(),
    };
    let Some(command) = args.first().cloned() else {
        return usage();
    };
    match command.as_str() {
        "apply" => {
            let Some(path) = args.get(1) else {
                return usage();
            };
            let text = if path == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(path)
            };
            match text {
                Ok(text) => apply_script(engine.as_mut(), &text).await,
                Err(e) => {
                    eprintln!("ipvs_probe: {path}: {e}");
                    ExitCode::from(2)
                }
            }
        }
        "dump" => {
            let kind = if args.get(1).is_some_and(|a| a == "--thresholds") {
                ListingKind::Thresholds
            } else {
                ListingKind::Plain
            };
            match engine.dump().await {
                Ok(mut table) => {
                    listing::sort_like_ipvsadm(&mut table);
                    print!(
                        "{}",
                        listing::render(&table, &ListingHeader::default(), kind)
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("ipvs_probe: dump: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        "bench" => {
            let reals = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(10_000);
            let services = args
                .get(2)
                .and_then(|n| n.parse().ok())
                .unwrap_or((reals / 100).max(1));
            bench(engine.as_mut(), reals, services).await
        }
        _ => usage(),
    }
}

/// Applies every line; reports and counts those that did not behave as the script says.
async fn apply_script(engine: &mut dyn Engine, text: &str) -> ExitCode {
    let mut bad = 0;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (must_fail, line) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        let ops = match parse_line(line) {
            Ok(Some(op)) => vec![op],
            // `-C`: delete every virtual service the engine lists.
            Ok(None) => match engine.dump().await {
                Ok(table) => table
                    .services
                    .iter()
                    .map(|s| Op::DelService(s.spec.key))
                    .collect(),
                Err(e) => {
                    println!("line {line_no}: {line}: dump failed: {e}");
                    bad += 1;
                    continue;
                }
            },
            Err(e) => {
                println!("line {line_no}: {line}: cannot parse: {e}");
                bad += 1;
                continue;
            }
        };
        for op in ops {
            match (engine.apply(&op).await, must_fail) {
                (Ok(()), false) => {}
                (Err(e), true) => println!("line {line_no}: refused as expected: {e}"),
                (Ok(()), true) => {
                    println!("line {line_no}: {line}: the kernel accepted it, expected a refusal");
                    bad += 1;
                }
                (Err(e), false) => {
                    println!("line {line_no}: {line}: {e}");
                    bad += 1;
                }
            }
        }
    }
    if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Parses one ipvsadm command line into an op; `Ok(None)` for `-C`.
fn parse_line(line: &str) -> Result<Option<Op>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut verb = None;
    let mut key = None;
    let mut ipv6_mark = false;
    let mut scheduler = "wlc".to_owned();
    let mut persistent = None;
    let mut netmask_text = None;
    let mut ops = false;
    let mut sched_flags = SchedFlags::default();
    let mut real = None;
    let mut forward = Forward::Gate;
    let (mut weight, mut upper, mut lower) = (1, 0, 0);
    let mut i = 0;
    let next = |i: &mut usize| -> Result<&str, String> {
        *i += 1;
        words
            .get(*i)
            .copied()
            .ok_or_else(|| format!("{} needs a value", words[*i - 1]))
    };
    while i < words.len() {
        let word = words[i];
        match word {
            "-A" | "-E" | "-D" | "-a" | "-e" | "-d" | "-C" => verb = Some(word),
            "-t" | "-u" | "--sctp-service" => {
                let value = next(&mut i)?;
                let (ip, port) = listing::parse_addr_port(value)
                    .ok_or_else(|| format!("bad service address {value:?}"))?;
                let proto = match word {
                    "-t" => IpProto::Tcp,
                    "-u" => IpProto::Udp,
                    _ => IpProto::Sctp,
                };
                key = Some(ServiceKey::Inet { proto, ip, port });
            }
            "-f" => {
                let value = next(&mut i)?;
                let mark = value.parse().map_err(|_| format!("bad mark {value:?}"))?;
                key = Some(ServiceKey::Fwmark {
                    mark,
                    family: Family::Inet,
                });
            }
            "-6" => ipv6_mark = true,
            "-s" => scheduler = next(&mut i)?.to_owned(),
            "-p" => persistent = Some(number(next(&mut i)?)?),
            "-M" => netmask_text = Some(next(&mut i)?.to_owned()),
            "-o" => ops = true,
            "-b" => sched_flags = SchedFlags::parse(next(&mut i)?),
            "-r" => real = Some(next(&mut i)?.to_owned()),
            "-g" => forward = Forward::Gate,
            "-m" => forward = Forward::Masq,
            "-i" => forward = Forward::Ipip,
            "-w" => weight = number(next(&mut i)?)?,
            "-x" => upper = number(next(&mut i)?)?,
            "-y" => lower = number(next(&mut i)?)?,
            other => return Err(format!("unknown word {other:?}")),
        }
        i += 1;
    }
    let verb = verb.ok_or("no command (-A -E -D -a -e -d -C)")?;
    if verb == "-C" {
        return Ok(None);
    }
    let mut key = key.ok_or("no service (-t -u -f)")?;
    if let (ServiceKey::Fwmark { family, .. }, true) = (&mut key, ipv6_mark) {
        *family = Family::Inet6;
    }
    let netmask = match netmask_text {
        None => None,
        Some(text) => Some(
            Netmask::parse(&text, key.family()).ok_or_else(|| format!("bad netmask {text:?}"))?,
        ),
    };
    let spec = || ServiceSpec {
        key,
        scheduler: scheduler.clone(),
        persistent,
        netmask,
        ops,
        sched_flags: sched_flags.clone(),
    };
    let dest = || -> Result<DestSpec, String> {
        let text = real.as_deref().ok_or("no real server (-r)")?;
        let (ip, port) = parse_real(text, &key)?;
        Ok(DestSpec {
            ip,
            port,
            forward,
            weight,
            upper,
            lower,
        })
    };
    Ok(Some(match verb {
        "-A" => Op::AddService(spec()),
        "-E" => Op::EditService(spec()),
        "-D" => Op::DelService(key),
        "-a" => Op::AddDest(key, dest()?),
        "-e" => Op::EditDest(key, dest()?),
        _ => {
            let d = dest()?;
            Op::DelDest {
                service: key,
                ip: d.ip,
                port: d.port,
            }
        }
    }))
}

fn number(text: &str) -> Result<u32, String> {
    text.parse().map_err(|_| format!("bad number {text:?}"))
}

/// `ADDR:PORT`, `[V6]:PORT`, or a bare address (the service's port, 0 for fwmarks), as
/// ipvsadm reads `-r`.
fn parse_real(text: &str, key: &ServiceKey) -> Result<(IpAddr, u16), String> {
    if let Some(found) = listing::parse_addr_port(text) {
        return Ok(found);
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = bare
        .parse()
        .map_err(|_| format!("bad real server {text:?}"))?;
    let port = match key {
        ServiceKey::Inet { port, .. } => *port,
        ServiceKey::Fwmark { .. } => 0,
    };
    Ok((ip, port))
}

/// Programs `reals` destinations over `services` virtual services (10.1.x.y:80 → 10.2.x.y),
/// then changes the weight of every 100th, and prints both times in milliseconds.
async fn bench(engine: &mut dyn Engine, reals: u32, services: u32) -> ExitCode {
    let service_key = |s: u32| ServiceKey::Inet {
        proto: IpProto::Tcp,
        ip: IpAddr::from([10, 1, (s >> 8) as u8, s as u8]),
        port: 80,
    };
    let dest = |r: u32, weight| {
        let ip = IpAddr::from([10, 2 + (r >> 16) as u8, (r >> 8) as u8, r as u8]);
        DestSpec::new(ip, 80, Forward::Gate, weight)
    };
    let mut program = Vec::new();
    for s in 0..services {
        program.push(Op::AddService(ServiceSpec::new(service_key(s), "wrr")));
    }
    for r in 0..reals {
        program.push(Op::AddDest(service_key(r % services), dest(r, 1)));
    }
    let reload: Vec<Op> = (0..reals)
        .step_by(100)
        .map(|r| Op::EditDest(service_key(r % services), dest(r, 2)))
        .collect();
    let mut timings = Vec::new();
    for (name, ops) in [("program", &program), ("reload-1pct", &reload)] {
        let start = Instant::now();
        for op in ops.iter() {
            if let Err(e) = engine.apply(op).await {
                eprintln!("ipvs_probe: bench {name}: {e}");
                return ExitCode::FAILURE;
            }
        }
        timings.push((name, ops.len(), start.elapsed()));
    }
    let start = Instant::now();
    let dumped = match engine.dump().await {
        Ok(table) => table.services.iter().map(|s| s.dests.len()).sum::<usize>(),
        Err(e) => {
            eprintln!("ipvs_probe: bench dump: {e}");
            return ExitCode::FAILURE;
        }
    };
    timings.push(("dump", dumped, start.elapsed()));
    for (name, ops, took) in timings {
        println!(
            "BENCH engine={} step={name} ops={ops} ms={}",
            engine.name(),
            took.as_millis()
        );
    }
    ExitCode::SUCCESS
}
