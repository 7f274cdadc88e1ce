//! The real-server side of LVS-DR and LVS-TUN (cluster-integration §4.2, §4.3):
//! `ldirectord realserver start|stop|status|monitor --vip ADDR [--mode dr|tun]`, and the
//! same as an OCF agent (`ldirectord realserver --ocf ACTION`, `OCF_RESKEY_vip`,
//! `OCF_RESKEY_mode`).
//!
//! start sets `arp_ignore=1` and `arp_announce=2` (on `all` and the device) *before* the
//! address appears, then adds VIP/32 (/128) to `lo` (DR) or to `tunl0` (TUN, with its
//! reverse-path filter relaxed). Nothing is bounced, and a VIP already there is left alone.
//! stop removes the address and leaves the sysctls (other VIPs may rely on them).
//! monitor is an exact address match: 10.0.0.23 is not 10.0.0.237.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use ldirectord_checks::process::blocking_command;

use super::metadata;
use super::ocf::{self, Env, Fail};

const USAGE: &str = "usage: ldirectord realserver start|stop|status|monitor --vip ADDR [--mode dr|tun]\n\
       ldirectord realserver --ocf start|stop|monitor|validate-all|meta-data (OCF_RESKEY_vip, OCF_RESKEY_mode)\n";

/// DR (VIP on `lo`) or TUN (VIP on `tunl0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Dr,
    Tun,
}

impl Mode {
    fn device(self) -> &'static str {
        match self {
            Mode::Dr => "lo",
            Mode::Tun => "tunl0",
        }
    }
}

/// One real server's VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vip {
    pub address: IpAddr,
    pub mode: Mode,
}

pub(crate) fn parse_vip(vip: Option<&str>, mode: Option<&str>) -> Result<Vip, Fail> {
    let text = vip.ok_or_else(|| Fail::configured("vip is required"))?;
    let address = ocf::vip(text)?;
    let mode = match mode.unwrap_or("dr") {
        "dr" | "gate" => Mode::Dr,
        "tun" | "ipip" => Mode::Tun,
        m => return Err(Fail::configured(format!("mode={m}: dr or tun"))),
    };
    if mode == Mode::Tun && address.is_ipv6() {
        return Err(Fail::configured(
            "mode=tun takes an IPv4 vip (tunl0 is IPv4 in IPv4)",
        ));
    }
    Ok(Vip { address, mode })
}

/// `ldirectord realserver ...`; returns the exit code.
pub fn run(args: &[String], env: &Env, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    if args.first().map(String::as_str) == Some("--ocf") {
        let action = args.get(1).map(String::as_str).unwrap_or("");
        return ocf_action(action, env, out, err);
    }
    let mut action = None;
    let mut vip = None;
    let mut mode = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--vip" => {
                i += 1;
                vip = args.get(i).cloned();
            }
            "--mode" => {
                i += 1;
                mode = args.get(i).cloned();
            }
            a if a.starts_with("--vip=") => vip = Some(a["--vip=".len()..].to_owned()),
            a if a.starts_with("--mode=") => mode = Some(a["--mode=".len()..].to_owned()),
            "-h" | "--help" => {
                let _ = out.write_all(USAGE.as_bytes());
                return 0;
            }
            a if action.is_none() && !a.starts_with('-') => action = Some(a.to_owned()),
            a => {
                let _ = writeln!(err, "ldirectord realserver: unexpected {a:?}");
                let _ = out.write_all(USAGE.as_bytes());
                return 255;
            }
        }
        i += 1;
    }
    let v = match parse_vip(vip.as_deref(), mode.as_deref()) {
        Ok(v) => v,
        Err(f) => {
            let _ = writeln!(err, "ldirectord realserver: {}", f.reason);
            let _ = out.write_all(USAGE.as_bytes());
            return 255;
        }
    };
    let result = match action.as_deref() {
        Some("start") => start(&v),
        Some("stop") => stop(&v),
        Some("monitor") => monitor(&v),
        Some("status") => {
            // LSB-style: stdout says it, 0 running, 3 stopped (heartbeat reads stdout).
            return match monitor(&v) {
                Ok(ocf::SUCCESS) => {
                    let _ = writeln!(out, "{} on {} is running", v.address, v.mode.device());
                    0
                }
                Ok(_) => {
                    let _ = writeln!(out, "{} on {} is stopped", v.address, v.mode.device());
                    3
                }
                Err(f) => {
                    let _ = writeln!(err, "ldirectord realserver: {}", f.reason);
                    1
                }
            };
        }
        _ => {
            let _ = out.write_all(USAGE.as_bytes());
            return 255;
        }
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            let _ = writeln!(err, "ldirectord realserver: {}", f.reason);
            f.code
        }
    }
}

fn ocf_action(action: &str, env: &Env, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    const ACTIONS: [&str; 5] = ["start", "stop", "monitor", "status", "validate-all"];
    if let Some(code) = ocf::answer_fixed(action, &ACTIONS, metadata::realserver, USAGE, out) {
        return code;
    }
    let vip = parse_vip(env.param("vip"), env.param("mode"));
    let result = match (action, vip) {
        // Nothing of ours can be there without a valid vip: stopped.
        ("stop", Err(_)) => Ok(ocf::SUCCESS),
        ("monitor" | "status", Err(_)) if env.is_probe() => Ok(ocf::NOT_RUNNING),
        (_, Err(f)) => Err(f),
        ("start", Ok(v)) => start(&v),
        ("stop", Ok(v)) => stop(&v),
        ("monitor" | "status", Ok(v)) => monitor(&v),
        (_, Ok(_)) => Ok(ocf::SUCCESS),
    };
    ocf::finish(env, err, result)
}

fn sysctl_path(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key.replace('.', "/"))
}

fn read_sysctl(key: &str) -> Option<i64> {
    std::fs::read_to_string(sysctl_path(key))
        .ok()
        .and_then(|t| t.trim().parse().ok())
}

fn write_sysctl(key: &str, value: &str) -> Result<(), Fail> {
    std::fs::write(sysctl_path(key), value)
        .map_err(|e| Fail::generic(format!("cannot set {key}={value}: {e}")))
}

fn ip(args: &[&str]) -> Result<String, Fail> {
    let out = blocking_command("ip")
        .args(args)
        .output()
        .map_err(|e| Fail::new(ocf::ERR_INSTALLED, format!("cannot run ip (iproute2): {e}")))?;
    if !out.status.success() {
        return Err(Fail::generic(format!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The prefixes `address` has on `dev` (exact address comparison).
fn prefixes_on(dev: &str, address: IpAddr) -> Result<Vec<u8>, Fail> {
    let family = if address.is_ipv4() { "-4" } else { "-6" };
    let listing = ip(&[family, "-o", "addr", "show", "dev", dev])?;
    Ok(addresses_in(&listing)
        .into_iter()
        .filter(|(a, _)| *a == address)
        .map(|(_, p)| p)
        .collect())
}

/// `ADDR/PREFIX` after each `inet`/`inet6` word of `ip -o addr` output.
fn addresses_in(listing: &str) -> Vec<(IpAddr, u8)> {
    let mut found = Vec::new();
    for line in listing.lines() {
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            if (w == "inet" || w == "inet6")
                && let Some((a, p)) = words.next().and_then(|c| c.split_once('/'))
                && let (Ok(a), Ok(p)) = (a.parse(), p.parse())
            {
                found.push((a, p));
            }
        }
    }
    found
}

fn device_exists(dev: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(dev).exists() || ip(&["link", "show", dev]).is_ok()
}

fn host_prefix(a: IpAddr) -> u8 {
    if a.is_ipv4() { 32 } else { 128 }
}

/// Make `v` served here. Idempotent.
pub fn start(v: &Vip) -> Result<i32, Fail> {
    let dev = v.mode.device();
    if v.mode == Mode::Tun && !device_exists(dev) {
        let _ = blocking_command("modprobe").arg("ipip").status();
        if !device_exists(dev) {
            return Err(Fail::new(
                ocf::ERR_INSTALLED,
                "tunl0 does not exist and modprobe ipip did not create it",
            ));
        }
    }
    if v.address.is_ipv4() {
        // ARP first, so the host never answers for the VIP in between.
        for scope in ["all", dev] {
            write_sysctl(&format!("net.ipv4.conf.{scope}.arp_ignore"), "1")?;
            write_sysctl(&format!("net.ipv4.conf.{scope}.arp_announce"), "2")?;
        }
    }
    if v.mode == Mode::Tun {
        write_sysctl(&format!("net.ipv4.conf.{dev}.rp_filter"), "0")?;
        // The kernel uses max(all, dev): strict on `all` would still drop decapsulated
        // packets; loose is enough.
        if read_sysctl("net.ipv4.conf.all.rp_filter") == Some(1) {
            write_sysctl("net.ipv4.conf.all.rp_filter", "2")?;
        }
        ip(&["link", "set", dev, "up"])?;
    }
    if prefixes_on(dev, v.address)?.is_empty() {
        let cidr = format!("{}/{}", v.address, host_prefix(v.address));
        ip(&["addr", "add", &cidr, "dev", dev])?;
    }
    Ok(ocf::SUCCESS)
}

/// Stop serving `v` here. Idempotent; succeeds when it was never there.
pub fn stop(v: &Vip) -> Result<i32, Fail> {
    let dev = v.mode.device();
    if !device_exists(dev) {
        return Ok(ocf::SUCCESS);
    }
    for prefix in prefixes_on(dev, v.address)? {
        let cidr = format!("{}/{prefix}", v.address);
        ip(&["addr", "del", &cidr, "dev", dev])?;
    }
    Ok(ocf::SUCCESS)
}

/// 0 when `v` is on its device and ARP is quiet for it, 7 when it is not there, 1 when it
/// is there but the host would answer ARP for it.
pub fn monitor(v: &Vip) -> Result<i32, Fail> {
    let dev = v.mode.device();
    if !device_exists(dev) || prefixes_on(dev, v.address)?.is_empty() {
        return Ok(ocf::NOT_RUNNING);
    }
    if v.address.is_ipv4() {
        let eff = |what: &str| {
            let all = read_sysctl(&format!("net.ipv4.conf.all.{what}")).unwrap_or(0);
            let d = read_sysctl(&format!("net.ipv4.conf.{dev}.{what}")).unwrap_or(0);
            all.max(d)
        };
        if eff("arp_ignore") < 1 || eff("arp_announce") < 2 {
            return Err(Fail::generic(format!(
                "{} is on {dev} but arp_ignore/arp_announce are not 1/2: the host may \
                 answer ARP for it",
                v.address
            )));
        }
    }
    Ok(ocf::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_is_parsed_exactly() {
        let l = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
                 1: lo    inet 10.0.0.237/32 scope global lo\\       valid_lft forever\n";
        let got = addresses_in(l);
        assert_eq!(got.len(), 2);
        let short: IpAddr = "10.0.0.23".parse().unwrap();
        assert!(!got.iter().any(|(a, _)| *a == short));
        assert_eq!(got[1], ("10.0.0.237".parse().unwrap(), 32));
    }

    #[test]
    fn vips_and_modes_are_checked() {
        assert!(parse_vip(None, None).is_err());
        assert!(parse_vip(Some("x"), None).is_err());
        assert!(parse_vip(Some("10.0.0.1"), Some("nat")).is_err());
        assert!(parse_vip(Some("2001:db8::1"), Some("tun")).is_err());
        let v = parse_vip(Some("2001:db8::1"), None).unwrap();
        assert_eq!((v.mode, host_prefix(v.address)), (Mode::Dr, 128));
    }
}
