//! The control socket: `RUNDIR/ldirectord.NAME.sock`, mode 0660, owner root and group
//! root or `controlgroup=`. One task accepts; each connection gets its own task, bounded
//! by the protocol's limits ([`crate::status::protocol`]), so a slow or broken client
//! only ever holds itself. Requests reach the main loop as [`Pending`] values; the loop
//! answers them with [`Control::answer`] between check results.
//!
//! The socket file appears under its final name only once its mode and group are set
//! (it is bound under a temporary name and renamed).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::drain::{DrainRecord, DrainStore, parse_real, real_text};
use super::observe::Observer;
use crate::director::{Action, Director, DrainTarget};
use crate::status::protocol::{
    Command, ErrorKind, MAX_REQUEST, PROTOCOL_VERSION, REQUEST_TIMEOUT, Request, Response,
};

/// Connections served at once; more are answered `busy` and closed.
const MAX_CLIENTS: usize = 16;

/// How long a connection waits for the main loop's answer, and to write it.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// A request on its way to the main loop.
#[derive(Debug)]
pub struct Pending {
    pub command: Command,
    /// Who asked: the peer's user name.
    pub peer: String,
    pub reply: oneshot::Sender<Response>,
}

/// The main loop's side: pending requests and the drains in force.
#[derive(Debug)]
pub struct Control {
    pub requests: mpsc::Receiver<Pending>,
    socket: Option<PathBuf>,
    /// `controlgroup=` the socket was given.
    group: Option<String>,
    state_file: PathBuf,
    store: DrainStore,
    records: Vec<DrainRecord>,
    /// The last error reading the store, logged once rather than on every pass.
    load_error: Option<String>,
    acceptor: Option<tokio::task::JoinHandle<()>>,
}

impl Control {
    /// Bind `socket` (group `group`, a name or number; root's when `None`) and load the
    /// drains from the store `maintenancedir` (or `state_file`) names. A socket that
    /// cannot be bound is logged and the daemon runs without one.
    pub fn start(
        socket: &Path,
        group: Option<&str>,
        maintenancedir: Option<&Path>,
        state_file: &Path,
    ) -> Control {
        let (tx, requests) = mpsc::channel(64);
        let bound = bind(socket, group).or_else(|e| match group {
            // An unknown group leaves the socket to root rather than to nobody.
            Some(_) => {
                tracing::info!("control socket: {e}; root only");
                bind(socket, None)
            }
            None => Err(e),
        });
        let (socket, acceptor) = match bound {
            Ok(listener) => (
                Some(socket.to_path_buf()),
                Some(tokio::spawn(accept_loop(listener, tx))),
            ),
            Err(e) => {
                tracing::info!("cannot open the control socket {}: {e}", socket.display());
                (None, None)
            }
        };
        let mut control = Control {
            requests,
            socket,
            group: group.map(str::to_owned),
            state_file: state_file.to_path_buf(),
            store: DrainStore::new(maintenancedir, state_file),
            records: Vec::new(),
            load_error: None,
            acceptor,
        };
        control.records = control.load();
        control
    }

    /// The stored drains; on an error (logged once) the ones in force stay.
    fn load(&mut self) -> Vec<DrainRecord> {
        match self.store.load() {
            Ok(records) => {
                self.load_error = None;
                records
            }
            Err(e) => {
                let text = format!("cannot read the drains from {:?}: {e}", self.store);
                if self.load_error.as_ref() != Some(&text) {
                    tracing::info!("{text}");
                    self.load_error = Some(text);
                }
                self.records.clone()
            }
        }
    }

    /// The drains in force, as the director takes them.
    pub fn targets(&self) -> Vec<DrainTarget> {
        let mut targets: Vec<DrainTarget> = self.records.iter().map(|r| r.target()).collect();
        targets.dedup();
        targets
    }

    /// Every pass: follow `maintenancedir=` and `controlgroup=` (after a reload) and drain
    /// files changed by hand.
    pub fn poll(&mut self, director: &mut Director) -> Vec<Action> {
        let globals = &director.config().globals;
        if globals.controlgroup != self.group {
            self.group = globals.controlgroup.clone();
            if let Some(path) = &self.socket
                && let Err(e) = set_group(path, self.group.as_deref())
            {
                tracing::info!("cannot set the control socket's group: {e}");
            }
        }
        self.store = DrainStore::new(globals.maintenancedir.as_deref(), &self.state_file);
        self.records = self.load();
        let targets = self.targets();
        if targets.as_slice() == director.drains() {
            return Vec::new();
        }
        director.set_drains(targets)
    }

    /// Answer one request: the response, and for drain/ready the actions the loop must
    /// perform before it replies (so the table has changed when the client hears back).
    pub fn answer(
        &mut self,
        pending: &Pending,
        director: &mut Director,
        observer: &Observer,
    ) -> (Response, Vec<Action>) {
        match &pending.command {
            Command::Status => (
                Response::status(observer.snapshot(director, &self.records)),
                Vec::new(),
            ),
            Command::Drain { real, r#virtual } => {
                self.drain(real, r#virtual.as_deref(), &pending.peer, director)
            }
            Command::Ready { real, r#virtual } => self.ready(real, r#virtual.as_deref(), director),
        }
    }

    fn drain(
        &mut self,
        real: &str,
        virt: Option<&str>,
        peer: &str,
        director: &mut Director,
    ) -> (Response, Vec<Action>) {
        let targets = match resolve(real, virt, director) {
            Ok(t) => t,
            Err(r) => return (r, Vec::new()),
        };
        let before = self.records.clone();
        let mut changed = Vec::new();
        for t in targets {
            let scope = t
                .virtual_id
                .clone()
                .unwrap_or_else(|| "every virtual".into());
            let text = real_text(t.ip, t.port);
            if self.records.iter().any(|r| r.target() == t) {
                changed.push(format!("{text} in {scope}: already drained"));
                continue;
            }
            self.records.push(DrainRecord {
                ip: t.ip,
                port: t.port,
                virtual_id: t.virtual_id,
                by: peer.to_owned(),
                since: jiff::Timestamp::now().to_string(),
            });
            changed.push(format!("{text} in {scope}: drained"));
        }
        self.commit(before, changed, director)
    }

    fn ready(
        &mut self,
        real: &str,
        virt: Option<&str>,
        director: &mut Director,
    ) -> (Response, Vec<Action>) {
        let Some((ip, port)) = parse_real(real) else {
            return (bad_real(real), Vec::new());
        };
        let virtual_ids = match virt.map(|v| virtual_ids(v, director)).transpose() {
            Ok(ids) => ids,
            Err(r) => return (r, Vec::new()),
        };
        let before = self.records.clone();
        let mut changed = Vec::new();
        self.records.retain(|r| {
            let covered = r.ip == ip
                && (port.is_none() || r.port == port)
                && virtual_ids
                    .as_ref()
                    .is_none_or(|ids| r.virtual_id.as_ref().is_some_and(|v| ids.contains(v)));
            if covered {
                let scope = r.virtual_id.as_deref().unwrap_or("every virtual");
                changed.push(format!("{} in {scope}: ready", r.real_text()));
            }
            !covered
        });
        let name = real_text(ip, port);
        if virt.is_none() {
            match self.store.remove_maintenance_file(&name) {
                Ok(true) => changed.push(format!("{name}: maintenance file removed")),
                Ok(false) => {}
                Err(e) => {
                    self.records = before;
                    let msg = format!("cannot remove the maintenance file {name}: {e}");
                    return (Response::failed(ErrorKind::Store, msg), Vec::new());
                }
            }
        }
        if changed.is_empty() {
            // Say which drain holds it when one does, and how to lift that one.
            let holder = self
                .records
                .iter()
                .find(|r| r.ip == ip && (r.port.is_none() || port.is_none() || r.port == port));
            let msg = match holder {
                Some(r) => {
                    let scope = r.virtual_id.as_deref().unwrap_or("every virtual service");
                    let again = match &r.virtual_id {
                        Some(v) => format!("{} {v}", r.real_text()),
                        None => r.real_text(),
                    };
                    format!(
                        "{name} is held by the drain of {} in {scope}: ready {again}",
                        r.real_text()
                    )
                }
                None => format!("{name} is not drained"),
            };
            return (Response::failed(ErrorKind::NotFound, msg), Vec::new());
        }
        self.commit(before, changed, director)
    }

    /// Store the new records (or go back to `before`) and put them in force.
    fn commit(
        &mut self,
        before: Vec<DrainRecord>,
        changed: Vec<String>,
        director: &mut Director,
    ) -> (Response, Vec<Action>) {
        if self.records != before
            && let Err(e) = self.store.save(&self.records)
        {
            self.records = before;
            let msg = format!("cannot store the drain in {:?}: {e}", self.store);
            return (Response::failed(ErrorKind::Store, msg), Vec::new());
        }
        let actions = director.set_drains(self.targets());
        (Response::done(changed), actions)
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        if let Some(task) = self.acceptor.take() {
            task.abort();
        }
        if let Some(path) = self.socket.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn bad_real(real: &str) -> Response {
    Response::failed(
        ErrorKind::BadRequest,
        format!("{real:?} is not RIP or RIP:PORT (IPv6 as [ADDR]:PORT)"),
    )
}

/// The virtual ids `text` names: an id (`tcp:10.0.0.100:80`, `fwm:33`) or an address
/// (`10.0.0.100:80`, `33`), which may name a TCP and a UDP service at once.
fn virtual_ids(text: &str, director: &Director) -> Result<Vec<String>, Response> {
    let ids: Vec<String> = director
        .config()
        .virtuals
        .iter()
        .filter(|v| v.id() == text || v.virtual_text() == text)
        .map(|v| v.id())
        .collect();
    if ids.is_empty() {
        return Err(Response::failed(
            ErrorKind::NotFound,
            format!("no virtual service {text} is configured"),
        ));
    }
    Ok(ids)
}

/// The drains `drain REAL [VIRTUAL]` asks for; each names at least one configured real.
pub(crate) fn resolve(
    real: &str,
    virt: Option<&str>,
    director: &Director,
) -> Result<Vec<DrainTarget>, Response> {
    let (ip, port) = parse_real(real).ok_or_else(|| bad_real(real))?;
    let scopes: Vec<Option<String>> = match virt {
        Some(v) => virtual_ids(v, director)?.into_iter().map(Some).collect(),
        None => vec![None],
    };
    let targets: Vec<DrainTarget> = scopes
        .into_iter()
        .map(|virtual_id| DrainTarget {
            ip,
            port,
            virtual_id,
        })
        .filter(|t| director.drain_matches(t))
        .collect();
    if targets.is_empty() {
        let place = virt.map_or(String::new(), |v| format!(" in {v}"));
        return Err(Response::failed(
            ErrorKind::NotFound,
            format!("no real server {real} is configured{place}"),
        ));
    }
    Ok(targets)
}

/// Mode 0660 and group `group` (root's when `None`) for the socket at `path`.
fn set_group(path: &Path, group: Option<&str>) -> io::Result<()> {
    let gid = match group {
        None => nix::unistd::Gid::from_raw(0),
        Some(g) => group_id(g).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("controlgroup={g}: no such group"),
            )
        })?,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    // Only root may hand a file to another group; a daemon run by another user keeps its
    // own group (tests, an unprivileged userspace engine).
    if nix::unistd::geteuid().is_root() {
        nix::unistd::chown(path, None, Some(gid)).map_err(io::Error::from)?;
    }
    Ok(())
}

/// Bind under a temporary name, set mode and group, then rename into place.
fn bind(path: &Path, group: Option<&str>) -> io::Result<UnixListener> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(
        ".{}.{}",
        name.unwrap_or_default(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let listener = std::os::unix::net::UnixListener::bind(&tmp)?;
    let prepared = set_group(&tmp, group).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = prepared {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener)
}

fn group_id(group: &str) -> Option<nix::unistd::Gid> {
    if let Ok(n) = group.parse::<u32>() {
        return Some(nix::unistd::Gid::from_raw(n));
    }
    nix::unistd::Group::from_name(group)
        .ok()
        .flatten()
        .map(|g| g.gid)
}

async fn accept_loop(listener: UnixListener, tx: mpsc::Sender<Pending>) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::debug!("control socket accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let tx = tx.clone();
        let slot = slots.clone().try_acquire_owned();
        tokio::spawn(async move {
            let mut stream = stream;
            let Ok(_slot) = slot else {
                let busy = Response::failed(ErrorKind::Busy, "too many clients, try again");
                let _ = write_response(&mut stream, &busy).await;
                return;
            };
            serve(stream, tx).await;
        });
    }
}

/// One connection: read one bounded request line, hand it to the loop, write the answer.
async fn serve(mut stream: UnixStream, tx: mpsc::Sender<Pending>) {
    let peer = peer_name(&stream);
    let response = match read_request(&mut stream).await {
        Err(response) => response,
        Ok(command) => {
            let (reply, answer) = oneshot::channel();
            let sent = tx.send(Pending {
                command,
                peer,
                reply,
            });
            match tokio::time::timeout(ANSWER_TIMEOUT, async {
                sent.await.ok()?;
                answer.await.ok()
            })
            .await
            {
                Ok(Some(r)) => r,
                _ => Response::failed(ErrorKind::Busy, "the daemon did not answer in time"),
            }
        }
    };
    let _ = write_response(&mut stream, &response).await;
}

async fn read_request(stream: &mut UnixStream) -> Result<Command, Response> {
    let mut line = Vec::new();
    let mut reader = BufReader::new(stream.take(MAX_REQUEST as u64));
    let read = tokio::time::timeout(REQUEST_TIMEOUT, reader.read_until(b'\n', &mut line)).await;
    match read {
        Err(_) => {
            return Err(Response::failed(
                ErrorKind::BadRequest,
                format!(
                    "no complete request line within {} s",
                    REQUEST_TIMEOUT.as_secs()
                ),
            ));
        }
        Ok(Err(e)) => return Err(Response::failed(ErrorKind::BadRequest, e.to_string())),
        Ok(Ok(_)) => {}
    }
    decode_request(&line)
}

/// One request line as read (at most [`MAX_REQUEST`] bytes, its newline included): the
/// command, or the answer that refuses it. Also what the `control_request` fuzz target
/// drives.
pub(crate) fn decode_request(line: &[u8]) -> Result<Command, Response> {
    if !line.ends_with(b"\n") {
        let why = if line.len() >= MAX_REQUEST {
            format!("request longer than {MAX_REQUEST} bytes")
        } else {
            "the request line does not end with a newline".to_owned()
        };
        return Err(Response::failed(ErrorKind::BadRequest, why));
    }
    let value: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| Response::failed(ErrorKind::BadRequest, format!("not a JSON request: {e}")))?;
    let version = value.get("version").and_then(|v| v.as_u64());
    if version != Some(u64::from(PROTOCOL_VERSION)) {
        return Err(Response::failed(
            ErrorKind::Version,
            match version {
                Some(v) => format!(
                    "protocol version {v} not spoken here (this daemon: {PROTOCOL_VERSION})"
                ),
                None => {
                    format!("no protocol version in the request (this daemon: {PROTOCOL_VERSION})")
                }
            },
        ));
    }
    serde_json::from_value::<Request>(value)
        .map(|r| r.command)
        .map_err(|e| Response::failed(ErrorKind::BadRequest, format!("bad request: {e}")))
}

async fn write_response(stream: &mut UnixStream, response: &Response) -> io::Result<()> {
    let mut text = serde_json::to_vec(response).map_err(io::Error::other)?;
    text.push(b'\n');
    tokio::time::timeout(ANSWER_TIMEOUT, stream.write_all(&text))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client does not read"))?
}

/// The peer's user name (or `uid N`), from the socket's credentials.
fn peer_name(stream: &UnixStream) -> String {
    let Ok(cred) = stream.peer_cred() else {
        return "unknown".to_owned();
    };
    let uid = nix::unistd::Uid::from_raw(cred.uid());
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => format!("uid-{uid}"),
    }
}
