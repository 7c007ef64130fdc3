//! TLS setup with rustls and the ring provider: PEM loading, the server's certificate
//! (X.509 v1 included, as the Python tool's script makes them), and the client's two
//! trust modes:
//!
//! - **pinned** (default, like the Python client): the server must present exactly the
//!   certificate in the client's `cert.pem`, compared as DER; handshake signatures are
//!   verified with that certificate's own key, taken out by `x509` because
//!   webpki refuses v1 certificates. No host name check, since the pin is exact.
//! - **known** (trust on first use, when no pin file is found): the server's
//!   certificate must have one of the SHA-256 fingerprints recorded for it in the
//!   client's `known_servers`; handshake signatures are verified with the key of the
//!   certificate presented, which that fingerprint identifies.
//! - **CA** (`--ca`): ordinary WebPKI verification against the webpki roots or a CA
//!   file, with host name checking.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::x509;

/// Errors of the TLS setup layer.
#[derive(Debug)]
pub enum Error {
    /// A PEM file could not be read or holds nothing usable.
    Pem(PathBuf, String),
    /// The certificate could not be parsed by fos's DER walker.
    BadCertificate(PathBuf),
    /// The private key does not belong to the certificate.
    KeyMismatch,
    /// rustls refused the configuration.
    Rustls(rustls::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Pem(p, why) => write!(f, "{}: {why}", p.display()),
            Error::BadCertificate(p) => {
                write!(f, "{}: not a parsable X.509 certificate", p.display())
            }
            Error::KeyMismatch => write!(f, "the private key does not match the certificate"),
            Error::Rustls(e) => write!(f, "tls: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rustls::Error> for Error {
    fn from(e: rustls::Error) -> Self {
        Error::Rustls(e)
    }
}

/// The crypto provider fos uses everywhere: ring, chosen by name.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate from a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem_err = |why: String| Error::Pem(path.to_path_buf(), why);
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(pem_message(e)))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err(pem_message(e)))?;
    if certs.is_empty() {
        return Err(pem_err("no CERTIFICATE block found".into()));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) from a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| Error::Pem(path.to_path_buf(), pem_message(e)))
}

fn pem_message(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM block of the expected type".into(),
        other => format!("bad PEM: {other:?}"),
    }
}

/// Serves one fixed certificate chain. rustls's `with_single_cert` would parse the
/// certificate with webpki and refuse a v1 one; a resolver sends it as it is.
#[derive(Debug)]
struct FixedCert(Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// Builds the server's TLS configuration from a certificate chain and key, checking
/// that they belong together. ALPN `fos/1` is offered to clients that ask for it; a
/// client that offers no ALPN (the Python tool) is still served.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: &Path,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let provider = provider();
    let signing = provider.key_provider.load_private_key(key)?;
    let info =
        x509::parse(&certs[0]).ok_or_else(|| Error::BadCertificate(cert_path.to_path_buf()))?;
    match signing.public_key() {
        Some(spki) if spki.as_ref() != info.spki => return Err(Error::KeyMismatch),
        _ => {}
    }
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(FixedCert(Arc::new(CertifiedKey::new(
            certs, signing,
        )))));
    config.alpn_protocols = vec![crate::protocol::ALPN.to_vec()];
    // one ticket is plenty for a LAN tool; resumption saves a round trip on reconnect
    config.send_tls13_tickets = 1;
    Ok(Arc::new(config))
}

/// How the client decides to trust a server.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Exactly this certificate (DER).
    Pinned(CertificateDer<'static>),
    /// WebPKI verification with these roots, and this name checked.
    Ca(Arc<rustls::RootCertStore>),
    /// A certificate with one of these SHA-256 fingerprints (as [`x509::fingerprint`]
    /// writes them), from the client's `known_servers`.
    Known(Vec<String>),
}

impl Trust {
    /// Pins the first certificate of a PEM file.
    pub fn pinned_file(path: &Path) -> Result<Trust, Error> {
        let cert = load_certs(path)?.swap_remove(0);
        if x509::parse(&cert).is_none() {
            return Err(Error::BadCertificate(path.to_path_buf()));
        }
        Ok(Trust::Pinned(cert))
    }

    /// CA mode: the webpki roots, or the certificates of `cafile` instead.
    pub fn ca(cafile: Option<&Path>) -> Result<Trust, Error> {
        let mut roots = rustls::RootCertStore::empty();
        match cafile {
            Some(path) => {
                for cert in load_certs(path)? {
                    roots.add(cert)?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        Ok(Trust::Ca(Arc::new(roots)))
    }
}

/// Builds a client configuration. With `alpn`, `fos/1` is offered (a Python server
/// ignores it, which is how the client notices it is talking to one).
pub fn client_config(trust: &Trust, alpn: bool) -> Result<Arc<rustls::ClientConfig>, Error> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let ours = |accepts| Arc::new(Verifier::new(accepts, &provider));
    let mut config = match trust {
        Trust::Pinned(cert) => builder
            .dangerous()
            .with_custom_certificate_verifier(ours(Accepts::Pinned(cert.clone())))
            .with_no_client_auth(),
        Trust::Ca(roots) => builder
            .with_root_certificates(Arc::clone(roots))
            .with_no_client_auth(),
        Trust::Known(fingerprints) => builder
            .dangerous()
            .with_custom_certificate_verifier(ours(Accepts::Known(fingerprints.clone())))
            .with_no_client_auth(),
    };
    if alpn {
        config.alpn_protocols = vec![crate::protocol::ALPN.to_vec()];
    }
    Ok(Arc::new(config))
}

/// The certificate presented was not the pinned one. Carried inside the rustls error so
/// the client can say which certificate it saw.
#[derive(Debug)]
pub struct PinMismatch {
    /// SHA-256 fingerprint of the certificate the server presented.
    pub presented: String,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server's certificate is not the pinned one (it presented SHA-256 fingerprint {})",
            self.presented
        )
    }
}

impl std::error::Error for PinMismatch {}

/// Which server certificates one of our verifiers accepts, and with which key it
/// checks the handshake signatures.
#[derive(Debug)]
enum Accepts {
    /// Exactly this certificate (compared as DER); signatures are verified with its
    /// key, whatever certificate comes with them.
    Pinned(CertificateDer<'static>),
    /// A certificate whose SHA-256 fingerprint is one of these (the client's
    /// `known_servers`); signatures are verified with the key of the certificate
    /// presented, which that fingerprint identifies.
    Known(Vec<String>),
    /// Any certificate, signatures unchecked: only to ask an untrusted server found by
    /// discovery for its name ([`any_cert_client_config`]).
    Anyone,
}

/// The client's own certificate verifier: the rustls plumbing once, what it accepts
/// in [`Accepts`].
#[derive(Debug)]
struct Verifier {
    accepts: Accepts,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Verifier {
    /// Accepts what `accepts` says, verifying signatures with `provider`'s algorithms.
    fn new(accepts: Accepts, provider: &CryptoProvider) -> Verifier {
        Verifier {
            accepts,
            algorithms: provider.signature_verification_algorithms,
        }
    }

    /// Whether the server may present `cert`; a refusal carries its fingerprint
    /// ([`PinMismatch`]).
    fn check(&self, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let accepted = match &self.accepts {
            Accepts::Pinned(pin) => cert.as_ref() == pin.as_ref(),
            Accepts::Known(fingerprints) => fingerprints.contains(&x509::fingerprint(cert)),
            Accepts::Anyone => true,
        };
        if accepted {
            return Ok(());
        }
        let mismatch = PinMismatch {
            presented: x509::fingerprint(cert),
        };
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Other(rustls::OtherError(Arc::new(mismatch))),
        ))
    }

    /// Verifies a handshake signature sent with `cert`.
    fn verify(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match &self.accepts {
            // the key that must have signed is the pinned certificate's own
            Accepts::Pinned(pin) => verify_signature(pin, &self.algorithms, message, dss, tls13),
            // the certificate whose key signs is the one the fingerprint identified
            Accepts::Known(_) => {
                self.check(cert)?;
                verify_signature(cert, &self.algorithms, message, dss, tls13)
            }
            Accepts::Anyone => Ok(HandshakeSignatureValid::assertion()),
        }
    }
}

/// Verifies a handshake signature with the key of `cert`, which the verifier has
/// already accepted (X.509 v1 included: the key is taken out by [`x509`]).
fn verify_signature(
    cert: &CertificateDer<'_>,
    algorithms: &WebPkiSupportedAlgorithms,
    message: &[u8],
    dss: &DigitallySignedStruct,
    tls13: bool,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let bad = || rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature);
    let info = x509::parse(cert).ok_or(rustls::Error::InvalidCertificate(
        rustls::CertificateError::BadEncoding,
    ))?;
    let candidates = algorithms
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == dss.scheme)
        .map(|(_, algs)| *algs)
        .ok_or_else(|| {
            rustls::Error::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            )
        })?;
    // TLS 1.3 binds the scheme to one algorithm (the first); TLS 1.2 may try each
    let candidates = if tls13 {
        &candidates[..1.min(candidates.len())]
    } else {
        candidates
    };
    for alg in candidates {
        if alg.public_key_alg_id().as_ref() != info.key_algorithm {
            continue;
        }
        return alg
            .verify_signature(info.public_key, message, dss.signature())
            .map(|()| HandshakeSignatureValid::assertion())
            .map_err(|_| bad());
    }
    Err(bad())
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // expiry is deliberately not checked: a pin or a fingerprint is exact, and the
        // client warns about an expired pin before connecting
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify(message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify(message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// If `err` (from a handshake) is a pin mismatch, the presented certificate's fingerprint.
pub fn pin_mismatch(err: &std::io::Error) -> Option<String> {
    let inner = err.get_ref()?.downcast_ref::<rustls::Error>()?;
    match inner {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => other
            .0
            .downcast_ref::<PinMismatch>()
            .map(|m| m.presented.clone()),
        _ => None,
    }
}

/// Whether an I/O error came out of TLS itself (handshake or record layer) rather than
/// the network.
pub fn is_tls_error(err: &std::io::Error) -> bool {
    err.get_ref().is_some_and(|e| e.is::<rustls::Error>())
}

/// A client configuration that accepts any certificate. Used for one thing only: to
/// ask an untrusted server found by discovery for its display name, so it can be
/// listed as untrusted instead of hidden. Nothing else is ever sent on it.
pub fn any_cert_client_config(alpn: bool) -> Result<Arc<rustls::ClientConfig>, Error> {
    let provider = provider();
    let verifier = Arc::new(Verifier::new(Accepts::Anyone, &provider));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    if alpn {
        config.alpn_protocols = vec![crate::protocol::ALPN.to_vec()];
    }
    Ok(Arc::new(config))
}

/// How a TLS handshake failed: the peer closed its end before it was done, or I/O (a
/// timeout, a refused certificate, a reset) failed underneath it.
#[derive(Debug)]
pub enum HandshakeFailed {
    /// The peer closed the connection during the handshake.
    Closed,
    /// Reading or writing failed; rustls's own refusals come as `InvalidData`.
    Io(std::io::Error),
}

impl From<HandshakeFailed> for std::io::Error {
    fn from(e: HandshakeFailed) -> Self {
        match e {
            HandshakeFailed::Closed => {
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed during handshake")
            }
            HandshakeFailed::Io(e) => e,
        }
    }
}

/// Runs a handshake to its end over `io`, the one loop both sides use. The caller sets
/// the socket's timeouts first (a deadline is its business, not this loop's).
pub fn complete_handshake<D>(
    conn: &mut rustls::ConnectionCommon<D>,
    io: &mut (impl std::io::Read + std::io::Write),
) -> Result<(), HandshakeFailed> {
    while conn.is_handshaking() {
        let (read, wrote) = conn.complete_io(io).map_err(HandshakeFailed::Io)?;
        if read == 0 && wrote == 0 && conn.is_handshaking() {
            return Err(HandshakeFailed::Closed);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V3: &[u8] = include_bytes!("../tests/data/cert.pem");
    const V1: &[u8] = include_bytes!("../tests/data/v1-cert.pem");
    const EXPIRED: &[u8] = include_bytes!("../tests/data/expired-cert.pem");

    fn der(pem: &[u8]) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem).unwrap()
    }

    #[test]
    fn walker_reads_v1_and_v3() {
        let v3 = der(V3);
        let info = x509::parse(&v3).unwrap();
        assert_eq!(info.version, 3);
        assert_eq!(
            info.key_algorithm,
            rustls::pki_types::alg_id::ECDSA_P256.as_ref()
        );
        let v1 = der(V1);
        let info = x509::parse(&v1).unwrap();
        assert_eq!(info.version, 1);
        assert_eq!(
            info.key_algorithm,
            rustls::pki_types::alg_id::RSA_ENCRYPTION.as_ref()
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(info.not_after.unwrap() > now);
        assert!(x509::parse(&der(EXPIRED)).unwrap().not_after.unwrap() < now);
    }

    #[test]
    fn key_must_match_certificate() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let certs = load_certs(&dir.join("cert.pem")).unwrap();
        assert!(
            server_config(certs.clone(), load_key(&dir.join("key.pem")).unwrap(), &dir).is_ok()
        );
        let wrong = load_key(&dir.join("other-key.pem")).unwrap();
        assert!(matches!(
            server_config(certs, wrong, &dir),
            Err(Error::KeyMismatch)
        ));
        // a v1 certificate is served as it is
        let v1 = load_certs(&dir.join("v1-cert.pem")).unwrap();
        assert!(server_config(v1, load_key(&dir.join("v1-key.pem")).unwrap(), &dir).is_ok());
        assert!(matches!(
            load_certs(&dir.join("key.pem")),
            Err(Error::Pem(..))
        ));
    }
}
