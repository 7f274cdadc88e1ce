//! TLS for health checks, in one place. Like stock ldirectord (LWP with
//! `verify_hostname => 0`, IO::Socket::SSL, libpq's `sslmode=prefer`), a check does not
//! verify the server's certificate by default: it asks "does the service answer", and
//! self-signed certificates are the norm on real servers behind a director. The handshake
//! signatures are still verified against the presented certificate, so a broken TLS peer
//! is still caught. `tlsverify=yes` (https) opts in to verification ([`Verify`]).
//!
//! Users: https ([`verifying`]), pgsql and ldap ([`accept_any`]), pops/imaps ([`connect`]:
//! TLS from the first byte, no SNI since the target is an IP address).

use std::net::IpAddr;
use std::sync::{Arc, LazyLock, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
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

/// How an https server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Verify {
    /// Not at all (stock's intent).
    Off,
    /// Chain against the system roots, any name (stock's practice on Debian 12).
    Chain,
    /// Chain and name (the SNI name).
    Full,
}

/// The client configuration of an https check that verifies as `verify` says, built once
/// per setting and shared by every check that uses it.
pub(crate) fn verifying(verify: Verify) -> Result<Arc<ClientConfig>, String> {
    static CONFIGS: [OnceLock<Arc<ClientConfig>>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = &CONFIGS[verify as usize];
    if let Some(config) = slot.get() {
        return Ok(config.clone());
    }
    let verifier: Arc<dyn ServerCertVerifier> = match verify {
        Verify::Off => Arc::new(AcceptAnyCertificate::new()),
        Verify::Chain => Arc::new(AnyName(system_verifier()?)),
        Verify::Full => system_verifier()?,
    };
    Ok(slot
        .get_or_init(|| Arc::new(client_config(verifier)))
        .clone())
}

/// The system-roots verifier, loaded once (reading the CA bundle is not free).
fn system_verifier() -> Result<Arc<dyn ServerCertVerifier>, String> {
    static VERIFIER: LazyLock<Result<Arc<dyn ServerCertVerifier>, String>> = LazyLock::new(|| {
        rustls_platform_verifier::Verifier::new(provider())
            .map(|v| Arc::new(v) as Arc<dyn ServerCertVerifier>)
            .map_err(|e| format!("cannot load the system CA certificates: {e}"))
    });
    VERIFIER.clone()
}

/// The chain must verify, the name need not match. webpki checks the chain before the
/// name, so a name error means the chain was good.
#[derive(Debug)]
struct AnyName(Arc<dyn ServerCertVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// TLS handshake on `tcp` with the server at `ip`, verifying nothing but signatures.
pub(crate) async fn connect(tcp: TcpStream, ip: IpAddr) -> std::io::Result<TlsStream<TcpStream>> {
    TlsConnector::from(accept_any())
        .connect(ServerName::IpAddress(ip.into()), tcp)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A verifier that fails with a fixed certificate error.
    #[derive(Debug)]
    struct Failing(CertificateError);

    impl ServerCertVerifier for Failing {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Err(rustls::Error::InvalidCertificate(self.0.clone()))
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            Vec::new()
        }
    }

    #[test]
    fn chain_only_verification_ignores_just_the_name() {
        let verify = |e: CertificateError| {
            AnyName(Arc::new(Failing(e))).verify_server_cert(
                &CertificateDer::from(vec![0u8]),
                &[],
                &ServerName::try_from("127.0.0.1").unwrap(),
                &[],
                UnixTime::now(),
            )
        };
        assert!(verify(CertificateError::NotValidForName).is_ok());
        assert!(verify(CertificateError::UnknownIssuer).is_err());
        assert!(verify(CertificateError::Expired).is_err());
    }
}
