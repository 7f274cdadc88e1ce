//! Where log lines go, in stock ldirectord's formats (reference §4.9):
//!
//! - `-d`: stderr, the plain message;
//! - `supervised=yes`: stdout, `[CTIME] message`;
//! - `logfile="/path"`: appended as `[CTIME|CFGNAME|PID] message`, the file opened and closed
//!   for every line so logrotate needs no signal; if it cannot be written the line goes to
//!   stderr (as stock does);
//! - any other `logfile=`: syslog with that facility, ident `ldirectord`, the pid, priority
//!   `info`, written to `/dev/log` as glibc's `syslog(3)` does.
//!
//! Everything is logged through `tracing`; [`StockLayer`] renders events to the current
//! [`Destination`], which a reload may change ([`LogHandle::set`]).

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ldirectord_parsers::config::{Config, LogTarget};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `-d`: stderr, plain message.
    Stderr,
    /// `supervised=yes`: stdout, `[CTIME] message`.
    Stdout,
    /// `logfile="/path"`: `[CTIME|CFGNAME|PID] message` appended.
    File { path: PathBuf, instance: String },
    /// `logfile="facility"`: syslog.
    Syslog { facility: u8 },
}

impl Destination {
    /// The destination stock picks for this configuration.
    pub fn for_config(config: &Config, debug: bool, instance: &str) -> Destination {
        if debug {
            return Destination::Stderr;
        }
        if config.globals.supervised {
            return Destination::Stdout;
        }
        match &config.globals.logfile {
            LogTarget::File(path) => Destination::File {
                path: path.clone(),
                instance: instance.to_owned(),
            },
            LogTarget::Syslog(name) => Destination::Syslog {
                facility: facility_code(name).unwrap_or(3),
            },
        }
    }
}

/// The syslog facility number for a name as Sys::Syslog knows them (`daemon`, `local0`…).
pub fn facility_code(name: &str) -> Option<u8> {
    Some(match name {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" | "security" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        _ => {
            let n: u8 = name.strip_prefix("local")?.parse().ok()?;
            if n > 7 {
                return None;
            }
            16 + n
        }
    })
}

/// Perl's `localtime` string: `Sun Nov 22 00:47:51 2026` (day of month space-padded), in
/// local time.
pub fn ctime_now() -> String {
    jiff::Zoned::now()
        .strftime("%a %b %e %H:%M:%S %Y")
        .to_string()
}

/// One rendered line for `destination`, without the trailing newline.
pub fn render(destination: &Destination, message: &str, ctime: &str, pid: u32) -> String {
    match destination {
        Destination::Stderr => message.to_owned(),
        Destination::Stdout => format!("[{ctime}] {message}"),
        Destination::File { instance, .. } => format!("[{ctime}|{instance}|{pid}] {message}"),
        Destination::Syslog { facility } => {
            // glibc's syslog(3) format on /dev/log: <PRI>Mmm dd hh:mm:ss ident[pid]: msg
            let stamp = jiff::Zoned::now().strftime("%b %e %H:%M:%S").to_string();
            let pri = u16::from(*facility) * 8 + 6;
            format!("<{pri}>{stamp} ldirectord[{pid}]: {message}")
        }
    }
}

/// Shared, switchable destination. Clones share it.
#[derive(Debug, Clone)]
pub struct LogHandle {
    inner: Arc<Mutex<Destination>>,
}

impl LogHandle {
    /// Switch the destination (a reload changed `logfile=` or `supervised=`).
    pub fn set(&self, destination: Destination) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = destination;
    }

    pub fn get(&self) -> Destination {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Write one message now, bypassing `tracing` (used before the subscriber is installed
    /// and by tests).
    pub fn write(&self, message: &str) {
        let destination = self.get();
        emit(&destination, message);
    }
}

fn emit(destination: &Destination, message: &str) {
    let pid = std::process::id();
    let ctime = ctime_now();
    let line = render(destination, message, &ctime, pid);
    match destination {
        Destination::Stderr => {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
        Destination::Stdout => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        Destination::File { path, .. } => {
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
            if written.is_err() {
                let _ = writeln!(std::io::stderr().lock(), "{message}");
            }
        }
        Destination::Syslog { .. } => {
            let sent = UnixDatagram::unbound().and_then(|s| s.send_to(line.as_bytes(), "/dev/log"));
            if sent.is_err() {
                let _ = writeln!(std::io::stderr().lock(), "{message}");
            }
        }
    }
}

/// Renders `tracing` events (level INFO and above) to the current destination: the
/// message, then any other fields as ` key=value`.
pub struct StockLayer {
    handle: LogHandle,
}

struct MessageVisitor {
    message: String,
    fields: String,
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for StockLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if *event.metadata().level() > tracing::Level::INFO {
            return;
        }
        let mut visitor = MessageVisitor {
            message: String::new(),
            fields: String::new(),
        };
        event.record(&mut visitor);
        visitor.message.push_str(&visitor.fields);
        emit(&self.handle.get(), &visitor.message);
    }
}

/// Install the process-wide subscriber writing to `destination`; returns the handle to
/// switch it later. Installing twice keeps the first subscriber (and returns its handle's
/// twin pointing at a fresh destination that nothing reads), so call it once per process.
pub fn install(destination: Destination) -> LogHandle {
    let handle = LogHandle {
        inner: Arc::new(Mutex::new(destination)),
    };
    let layer = StockLayer {
        handle: handle.clone(),
    };
    let _ = tracing_subscriber::registry().with(layer).try_init();
    handle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_per_destination() {
        let ctime = "Sun Nov 22 00:47:51 2026";
        assert_eq!(render(&Destination::Stderr, "hello", ctime, 42), "hello");
        assert_eq!(
            render(&Destination::Stdout, "hello", ctime, 42),
            "[Sun Nov 22 00:47:51 2026] hello"
        );
        let file = Destination::File {
            path: "/x".into(),
            instance: "ldirectord.cf".into(),
        };
        assert_eq!(
            render(&file, "hello", ctime, 42),
            "[Sun Nov 22 00:47:51 2026|ldirectord.cf|42] hello"
        );
        let syslog = render(&Destination::Syslog { facility: 16 }, "hello", ctime, 42);
        assert!(syslog.starts_with("<134>"), "{syslog}");
        assert!(syslog.ends_with(" ldirectord[42]: hello"), "{syslog}");
    }

    #[test]
    fn ctime_has_perl_shape() {
        let t = ctime_now();
        // `Sun Nov  2 00:47:51 2026`: fixed width 24, day space-padded.
        assert_eq!(t.len(), 24, "{t}");
        assert_eq!(&t[3..4], " ");
        assert_eq!(&t[7..8], " ");
        assert_eq!(&t[13..14], ":");
    }

    #[test]
    fn facilities() {
        assert_eq!(facility_code("daemon"), Some(3));
        assert_eq!(facility_code("local0"), Some(16));
        assert_eq!(facility_code("local7"), Some(23));
        assert_eq!(facility_code("local8"), None);
        assert_eq!(facility_code("bogus"), None);
    }
}
