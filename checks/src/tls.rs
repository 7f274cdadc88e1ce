//! TLS for health checks, in one place. Like stock ldirectord (LWP with
//! `verify_hostname => 0`, IO::Socket::SSL, libpq's `sslmode=prefer`), a check does not
//! verify the server's certificate by default: it asks "does the service answer", and
//! self-signed certificates are the norm on real servers behind a director. The handshake
//! signatures are still verified against the presented certificate, so a broken TLS peer
//! is still caught. `tlsverify=yes` (https) opts in to full verification elsewhere.
//!
//! Users: http (its own verifier choice on [`client_config`]), pgsql and ldap
//! ([`accept_any`]), pops/imaps ([`connect`]: TLS from the first byte, no SNI since the
//! target is an IP address).

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The crypto provider of every check (aws-lc-rs), passed explicitly so nothing depends on
/// a process-wide default being installed.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// Accepts any certificate chain and name; verifies handshake signatures.
#[derive(Debug)]
pub(crate) struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AcceptAnyCertificate {
    pub(crate) fn new() -> AcceptAnyCertificate {
        AcceptAnyCertificate {
            algorithms: provider().signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A client configuration with `verifier`, on the checks' provider and default versions.
pub(crate) fn client_config(verifier: Arc<dyn ServerCertVerifier>) -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

/// The shared configuration that verifies nothing but handshake signatures.
pub(crate) fn accept_any() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| Arc::new(client_config(Arc::new(AcceptAnyCertificate::new()))))
        .clone()
}

/// TLS handshake on `tcp` with the server at `ip`, verifying nothing but signatures.
pub(crate) async fn connect(tcp: TcpStream, ip: IpAddr) -> std::io::Result<TlsStream<TcpStream>> {
    TlsConnector::from(accept_any())
        .connect(ServerName::IpAddress(ip.into()), tcp)
        .await
}
