//! The control socket's protocol: one JSON object on one line each way. The client
//! writes a [`Request`] and a newline; the daemon answers one [`Response`] line and
//! closes. `version` is [`PROTOCOL_VERSION`]; a daemon refuses other versions with a
//! clear error rather than guessing.
//!
//! The daemon bounds every connection ([`MAX_REQUEST`] bytes, [`REQUEST_TIMEOUT`] to
//! send them): a client that is slow, sends too much or sends garbage gets an error line
//! and is closed, without delaying the daemon or other clients.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Snapshot;

pub const PROTOCOL_VERSION: u32 = 1;

/// The longest request line the daemon reads (bytes, newline included).
pub const MAX_REQUEST: usize = 4096;

/// How long a client has to send its whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the client waits for the daemon's answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest answer the client reads (a snapshot of 10,000 reals is about 4 MB).
pub const MAX_ANSWER: u64 = 64 << 20;

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub version: u32,
    #[serde(flatten)]
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "lowercase")]
pub enum Command {
    /// The daemon's [`Snapshot`].
    Status,
    /// Hold `real` (`RIP` or `RIP:PORT`) at weight 0, in `virtual` (an id or address) or
    /// in every virtual service.
    Drain {
        real: String,
        #[serde(default)]
        r#virtual: Option<String>,
    },
    /// Lift the drains (and, with `maintenancedir=`, the maintenance files) of `real`.
    Ready {
        real: String,
        #[serde(default)]
        r#virtual: Option<String>,
    },
}

/// Why a request failed, for the client's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Not one JSON request line, too long, too slow, or an unknown command.
    BadRequest,
    /// Another protocol version.
    Version,
    /// The real (or virtual) is not configured, or not drained for `ready`.
    NotFound,
    /// The drain could not be stored (maintenancedir or state file not writable).
    Store,
    /// Too many clients at once.
    Busy,
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub version: u32,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ErrorKind>,
    /// For `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Box<Snapshot>>,
    /// For `drain`/`ready`: what changed, one line each (`10.0.0.1:80 in tcp:…: drained`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
}

impl Response {
    pub fn failed(kind: ErrorKind, error: impl Into<String>) -> Response {
        Response {
            version: PROTOCOL_VERSION,
            ok: false,
            error: Some(error.into()),
            kind: Some(kind),
            status: None,
            changed: Vec::new(),
        }
    }

    pub fn status(snapshot: Snapshot) -> Response {
        Response {
            status: Some(Box::new(snapshot)),
            ..Response::done(Vec::new())
        }
    }

    pub fn done(changed: Vec<String>) -> Response {
        Response {
            version: PROTOCOL_VERSION,
            ok: true,
            error: None,
            kind: None,
            status: None,
            changed,
        }
    }
}

/// Why the client got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No socket, or nobody listening: the daemon is not running (or predates the socket).
    #[error("no daemon answers on {path}: {source}")]
    NotRunning {
        path: String,
        source: std::io::Error,
    },
    #[error("no permission to use {path}: root or the controlgroup= group only")]
    Permission { path: String },
    #[error("the daemon's answer on {path} is not readable: {why}")]
    Answer { path: String, why: String },
}

/// Send `command` to the daemon listening on `socket` and read its answer (bounded by
/// [`ANSWER_TIMEOUT`] and [`MAX_ANSWER`]).
pub fn request(socket: &Path, command: Command) -> Result<Response, ClientError> {
    let path = socket.display().to_string();
    let mut stream = UnixStream::connect(socket).map_err(|source| match source.kind() {
        std::io::ErrorKind::PermissionDenied => ClientError::Permission { path: path.clone() },
        _ => ClientError::NotRunning {
            path: path.clone(),
            source,
        },
    })?;
    let answer_error = |why: String| ClientError::Answer {
        path: path.clone(),
        why,
    };
    let _ = stream.set_read_timeout(Some(ANSWER_TIMEOUT));
    let _ = stream.set_write_timeout(Some(ANSWER_TIMEOUT));
    let mut line = serde_json::to_string(&Request {
        version: PROTOCOL_VERSION,
        command,
    })
    .map_err(|e| answer_error(e.to_string()))?;
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .map_err(|e| answer_error(e.to_string()))?;
    let mut answer = String::new();
    BufReader::new(stream.take(MAX_ANSWER))
        .read_line(&mut answer)
        .map_err(|e| answer_error(e.to_string()))?;
    serde_json::from_str(&answer).map_err(|e| answer_error(format!("{e}: {answer:.200}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_flat_object() {
        let r = Request {
            version: 1,
            command: Command::Drain {
                real: "10.0.0.1:80".into(),
                r#virtual: None,
            },
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"version":1,"command":"drain","real":"10.0.0.1:80","virtual":null}"#
        );
        let back: Request =
            serde_json::from_str(r#"{"version":1,"command":"ready","real":"10.0.0.1"}"#).unwrap();
        assert_eq!(
            back.command,
            Command::Ready {
                real: "10.0.0.1".into(),
                r#virtual: None
            }
        );
        assert!(serde_json::from_str::<Request>(r#"{"version":1,"command":"rm"}"#).is_err());
    }
}
