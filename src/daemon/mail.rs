//! E-mail alerts (reference §4.11): with `smtp=HOST` a small SMTP client to HOST:25
//! (greeting, EHLO falling back to HELO, MAIL FROM, one RCPT per recipient, DATA, QUIT);
//! without it the local mailer, `/usr/sbin/sendmail -oi -t`. Both are bounded by
//! [`SEND_TIMEOUT`] as a whole, and the daemon runs them in spawned tasks, so a slow or
//! dead mail server never delays a check or a table change (stock sends synchronously
//! inside its check loop).

use std::io;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long one alert may take to send, connection and all.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// The local mailer used when no `smtp=` is configured.
pub const SENDMAIL: &str = "/usr/sbin/sendmail";

/// Why an alert was not sent; the daemon logs it after `failed to send (SMTP) email
/// message: `.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("timed out after {}s", .0.as_secs())]
    Timeout(Duration),
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot resolve {0}")]
    NoAddress(String),
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("no recipient")]
    NoRecipient,
    #[error("write: {0}")]
    Write(#[source] io::Error),
    #[error("read: {0}")]
    Read(#[source] io::Error),
    #[error("connection closed before the {0} reply")]
    Closed(&'static str),
    #[error("over-long {0} reply")]
    OverLong(&'static str),
    #[error("bad {what} reply: {line}")]
    BadReply { what: &'static str, line: String },
    #[error("{what} refused: {line}")]
    Refused { what: &'static str, line: String },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("write to {program}: {source}")]
    Pipe {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("{program}: {source}")]
    Wait {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("{program} exited with {status}")]
    Exited { program: String, status: ExitStatus },
    #[error("{program} timed out after {}s", .timeout.as_secs())]
    MailerTimeout { program: String, timeout: Duration },
}

/// One message, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Envelope sender and default `From:`: `user@host` of the daemon.
    pub envelope_from: String,
    /// `From:` header (`emailalertfrom=` verbatim, else the envelope sender).
    pub from: String,
    /// `emailalert=` verbatim, for the `To:` header.
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl Message {
    /// The recipients, split on commas and whitespace (stock passes the whole list as one
    /// RCPT, which servers reject for more than one address).
    pub fn recipients(&self) -> Vec<String> {
        self.to
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(|s| s.trim_matches(|c| c == '<' || c == '>'))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Headers, blank line, body; LF line ends.
    pub fn text(&self) -> String {
        let date = jiff::Zoned::now()
            .strftime("%a, %d %b %Y %H:%M:%S %z")
            .to_string();
        format!(
            "From: {}\nTo: {}\nSubject: {}\nDate: {date}\n\n{}",
            self.from, self.to, self.subject, self.body
        )
    }
}

/// `user@host` of this process's real uid, stock's envelope sender.
pub fn default_sender() -> String {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "root".to_owned());
    format!("{user}@{}", hostname())
}

/// This host's name, for the alert body and the envelope sender.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Send through an SMTP server at `addr` (stock: `smtp=HOST`, port 25).
pub async fn send_smtp(addr: SocketAddr, message: &Message) -> Result<(), MailError> {
    match tokio::time::timeout(SEND_TIMEOUT, smtp_session(addr, message)).await {
        Ok(result) => result,
        Err(_) => Err(MailError::Timeout(SEND_TIMEOUT)),
    }
}

/// Resolve `smtp=HOST` to port 25 and send.
pub async fn send_smtp_host(host: &str, message: &Message) -> Result<(), MailError> {
    let addr = tokio::net::lookup_host((host, 25))
        .await
        .map_err(|source| MailError::Resolve {
            host: host.to_owned(),
            source,
        })?
        .next()
        .ok_or_else(|| MailError::NoAddress(host.to_owned()))?;
    send_smtp(addr, message).await
}

async fn smtp_session(addr: SocketAddr, message: &Message) -> Result<(), MailError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|source| MailError::Connect { addr, source })?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    expect(&mut read, 2, "greeting").await?;
    let me = hostname();
    command(&mut write, &format!("EHLO {me}")).await?;
    if expect(&mut read, 2, "EHLO").await.is_err() {
        command(&mut write, &format!("HELO {me}")).await?;
        expect(&mut read, 2, "HELO").await?;
    }
    command(
        &mut write,
        &format!("MAIL FROM:<{}>", message.envelope_from),
    )
    .await?;
    expect(&mut read, 2, "MAIL FROM").await?;
    let recipients = message.recipients();
    if recipients.is_empty() {
        return Err(MailError::NoRecipient);
    }
    for rcpt in &recipients {
        command(&mut write, &format!("RCPT TO:<{rcpt}>")).await?;
        expect(&mut read, 2, "RCPT TO").await?;
    }
    command(&mut write, "DATA").await?;
    expect(&mut read, 3, "DATA").await?;
    let mut data = String::new();
    for line in message.text().lines() {
        // Dot-stuffing (RFC 5321 §4.5.2).
        if line.starts_with('.') {
            data.push('.');
        }
        data.push_str(line);
        data.push_str("\r\n");
    }
    data.push_str(".\r\n");
    write
        .write_all(data.as_bytes())
        .await
        .map_err(MailError::Write)?;
    expect(&mut read, 2, "end of data").await?;
    let _ = command(&mut write, "QUIT").await;
    let _ = expect(&mut read, 2, "QUIT").await;
    Ok(())
}

async fn command(write: &mut tokio::net::tcp::OwnedWriteHalf, line: &str) -> Result<(), MailError> {
    write
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .map_err(MailError::Write)
}

/// Read one (possibly multi-line) reply; its code must start with `class`.
async fn expect(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    class: u8,
    what: &'static str,
) -> Result<(), MailError> {
    loop {
        let mut line = String::new();
        let n = read.read_line(&mut line).await.map_err(MailError::Read)?;
        if n == 0 {
            return Err(MailError::Closed(what));
        }
        if line.len() > 4096 {
            return Err(MailError::OverLong(what));
        }
        let bytes = line.as_bytes();
        if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
            let line = line.trim_end().to_owned();
            return Err(MailError::BadReply { what, line });
        }
        if bytes.get(3) == Some(&b'-') {
            continue;
        }
        if bytes[0] != b'0' + class {
            let line = line.trim_end().to_owned();
            return Err(MailError::Refused { what, line });
        }
        return Ok(());
    }
}

/// Send through a local mailer (`program -oi -t`, the message on stdin), bounded; the
/// mailer is killed and reaped on timeout.
pub async fn send_sendmail(program: &str, message: &Message) -> Result<(), MailError> {
    let mut child = ldirectord_checks::process::command(program)
        .args(["-oi", "-t"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| MailError::Spawn {
            program: program.to_owned(),
            source,
        })?;
    let text = message.text();
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(text.as_bytes())
                .await
                .map_err(|source| MailError::Pipe {
                    program: program.to_owned(),
                    source,
                })?;
        }
        child.wait().await.map_err(|source| MailError::Wait {
            program: program.to_owned(),
            source,
        })
    };
    let program = program.to_owned();
    match tokio::time::timeout(SEND_TIMEOUT, run).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(MailError::Exited { program, status }),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            let _ = child.kill().await;
            Err(MailError::MailerTimeout {
                program,
                timeout: SEND_TIMEOUT,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_split_on_commas_and_space() {
        let m = Message {
            envelope_from: "root@lb".into(),
            from: "root@lb".into(),
            to: "a@x, b@y,<c@z>  d@w".into(),
            subject: "s".into(),
            body: "b\n".into(),
        };
        assert_eq!(m.recipients(), ["a@x", "b@y", "c@z", "d@w"]);
        let text = m.text();
        assert!(text.starts_with("From: root@lb\nTo: a@x, b@y,<c@z>  d@w\nSubject: s\nDate: "));
        assert!(text.ends_with("\n\nb\n"));
    }
}
