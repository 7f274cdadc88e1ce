//! The TLS client of pops/imaps: like stock (IO::Socket::SSL without verification), the
//! server's certificate is not verified — a health check asks "does the service answer",
//! and self-signed certificates are the norm on real servers behind a director. The
//! handshake signatures are still checked, so a broken TLS stack is still caught. No SNI:
//! the target is an IP address.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::io_reason;

/// One client configuration for the process. Built with an explicit provider so it works
/// whether or not the binary installed a process-wide default.
pub(crate) fn config() -> Arc<ClientConfig> {
    crate::tls::accept_any()
}

/// TLS handshake on `tcp` with the server at `ip`.
pub(crate) async fn connect(tcp: TcpStream, ip: IpAddr) -> Result<TlsStream<TcpStream>, String> {
    TlsConnector::from(config())
        .connect(ServerName::IpAddress(ip.into()), tcp)
        .await
        .map_err(|e| format!("TLS handshake failed: {}", io_reason(&e)))
}
