//! TLS with rustls and its `ring` provider: the server's certificate and key
//! from PEM files, and two ways for a client to verify its peer (RFC 4975
//! s.5.4 against a CA, or s.14.4 by a pinned SDP fingerprint).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// The crypto provider of every configuration here: `ring` (no C build
/// tools beyond a C compiler), chosen explicitly so that no process-wide
/// default is needed.
#[expect(
    deprecated,
    reason = "rustls 0.23.48 deprecates the ring provider for lacking post-quantum key exchange; \
              aws-lc-rs needs a heavier native build, and the MSRP/SIP peers here negotiate classic groups"
)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A SHA-256 certificate fingerprint as carried in SDP `a=fingerprint`
/// (RFC 4572 s.5, used by RFC 4975 s.14.4): `SHA-256 AB:CD:...`, 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The SHA-256 digest of a certificate's DER form.
    ///
    /// RFC 4975 s.14.4: "A certificate fingerprint is the output of a one-way
    /// hash function computed over the Distinguished Encoding Rules (DER)
    /// form of the certificate."
    #[must_use]
    pub fn of_certificate(certificate: &CertificateDer<'_>) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, certificate.as_ref());
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest.as_ref());
        Self(bytes)
    }

    /// A fingerprint from its 32 digest bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 digest bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    /// The attribute value: `SHA-256 ` and upper-case hex pairs joined by `:`
    /// (RFC 4572 s.5: `fingerprint = 2UHEX *(":" 2UHEX)`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SHA-256 ")?;
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Why a string is not a [`Fingerprint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FingerprintError {
    /// No `hash-func SP` in front of the hex.
    #[error("expected `SHA-256 XX:XX:...` (hash function, space, hex pairs)")]
    MissingHashFunction,
    /// A hash function other than SHA-256.
    #[error("only SHA-256 fingerprints are supported")]
    UnsupportedHashFunction,
    /// Not `2HEX *(":" 2HEX)`.
    #[error("the fingerprint must be hex pairs separated by `:`")]
    BadHex,
    /// Not 32 bytes.
    #[error("a SHA-256 fingerprint has 32 hex pairs, this one has {pairs}")]
    WrongLength {
        /// How many pairs it has.
        pairs: usize,
    },
}

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    /// Parses the attribute value `hash-func SP fingerprint` (RFC 4572 s.5).
    /// The hash function's name is matched without regard to case, and so
    /// are the hex digits (RFC 4572 asks senders for upper case; a lower-case
    /// peer is still understood).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (hash, hex) = text.trim().split_once(' ').ok_or(FingerprintError::MissingHashFunction)?;
        if !hash.eq_ignore_ascii_case("sha-256") {
            return Err(FingerprintError::UnsupportedHashFunction);
        }
        let mut bytes = [0; 32];
        let mut pairs = 0;
        for pair in hex.trim().split(':') {
            if pair.len() != 2 || !pair.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(FingerprintError::BadHex);
            }
            let byte = u8::from_str_radix(pair, 16).map_err(|_| FingerprintError::BadHex)?;
            if let Some(slot) = bytes.get_mut(pairs) {
                *slot = byte;
            }
            pairs += 1;
        }
        if pairs != bytes.len() {
            return Err(FingerprintError::WrongLength { pairs });
        }
        Ok(Self(bytes))
    }
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read PEM file {}: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// A certificate file holds no certificate.
    #[error("no certificate in {}", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A key file holds no private key.
    #[error("no private key in {}", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// A pinned client was given no fingerprint.
    #[error("fingerprint pinning needs at least one fingerprint")]
    NoFingerprints,
    /// rustls refused the material (a key that does not match the
    /// certificate, an unparsable CA certificate).
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Reads every certificate of a PEM file (a chain: leaf first).
///
/// # Errors
///
/// [`TlsSetupError::Pem`] if the file cannot be read or parsed,
/// [`TlsSetupError::NoCertificate`] if it holds none.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem_error = |source| TlsSetupError::Pem { path: path.to_owned(), source };
    let certificates =
        CertificateDer::pem_file_iter(path).map_err(pem_error)?.collect::<Result<Vec<_>, _>>().map_err(pem_error)?;
    if certificates.is_empty() {
        return Err(TlsSetupError::NoCertificate { path: path.to_owned() });
    }
    Ok(certificates)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
///
/// # Errors
///
/// [`TlsSetupError::Pem`] if the file cannot be read or parsed,
/// [`TlsSetupError::NoPrivateKey`] if it holds none.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| match source {
        rustls_pki_types::pem::Error::NoItemsFound => TlsSetupError::NoPrivateKey { path: path.to_owned() },
        source => TlsSetupError::Pem { path: path.to_owned(), source },
    })
}

/// What a TLS listener presents: its certificate chain and key, and the
/// deadline of each handshake.
#[derive(Debug)]
pub struct TlsServerConfig {
    config: Arc<rustls::ServerConfig>,
    handshake_timeout: Duration,
    fingerprint: Fingerprint,
}

impl TlsServerConfig {
    /// A configuration presenting `chain` (leaf first) with `key`; each
    /// handshake MUST finish within `handshake_timeout` or the connection is
    /// dropped.
    ///
    /// # Errors
    ///
    /// [`TlsSetupError::NoCertificate`] for an empty chain,
    /// [`TlsSetupError::Rustls`] if the key does not fit the certificate.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        handshake_timeout: Duration,
    ) -> Result<Self, TlsSetupError> {
        let fingerprint = chain
            .first()
            .map(Fingerprint::of_certificate)
            .ok_or_else(|| TlsSetupError::NoCertificate { path: PathBuf::new() })?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Ok(Self { config: Arc::new(config), handshake_timeout, fingerprint })
    }

    /// A configuration from a certificate chain and a key in PEM files.
    ///
    /// # Errors
    ///
    /// As [`load_certificates`], [`load_private_key`] and [`TlsServerConfig::new`].
    pub fn from_pem_files(cert: &Path, key: &Path, handshake_timeout: Duration) -> Result<Self, TlsSetupError> {
        Self::new(load_certificates(cert)?, load_private_key(key)?, handshake_timeout)
    }

    /// The fingerprint of the leaf certificate: what this node puts in its
    /// SDP `a=fingerprint` for peers that pin it (RFC 4975 s.14.4).
    #[must_use]
    pub const fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The deadline of each handshake.
    #[must_use]
    pub const fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    pub(crate) fn rustls_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.config)
    }
}

/// How a TLS client verifies the server: against CA roots with the
/// certificate naming the host (RFC 4975 s.5.4), or by pinned fingerprints
/// (RFC 4975 s.14.4).
#[derive(Debug)]
pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
}

impl TlsClient {
    /// Verifies the server's chain up to one of `roots`, and its name.
    ///
    /// RFC 4975 s.5.4: "The SubjectAltName in the received certificate MUST
    /// match the hostname part of the URI and the certificate MUST be valid
    /// according to RFC 3280 \[16\], including having a date that is valid and
    /// being signed by an acceptable certification authority." rustls' WebPKI
    /// verifier does exactly this with the host given to
    /// [`connect`](super::connect) as the server name.
    ///
    /// # Errors
    ///
    /// [`TlsSetupError::NoCertificate`] for no roots,
    /// [`TlsSetupError::Rustls`] for a root that does not parse.
    pub fn with_roots(roots: Vec<CertificateDer<'static>>) -> Result<Self, TlsSetupError> {
        if roots.is_empty() {
            return Err(TlsSetupError::NoCertificate { path: PathBuf::new() });
        }
        let mut store = rustls::RootCertStore::empty();
        for root in roots {
            store.add(root)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(Self { config: Arc::new(config) })
    }

    /// [`TlsClient::with_roots`] with the roots of a PEM file (the config's
    /// `[tls] ca`).
    ///
    /// # Errors
    ///
    /// As [`load_certificates`] and [`TlsClient::with_roots`].
    pub fn with_ca_file(path: &Path) -> Result<Self, TlsSetupError> {
        Self::with_roots(load_certificates(path)?)
    }

    /// Accepts exactly a server certificate whose SHA-256 fingerprint is one
    /// of `pins` (from the peer's SDP `a=fingerprint`), self-signed or not,
    /// whatever names it holds; handshake signatures are still verified with
    /// the provider's algorithms, so the peer must hold the certificate's key.
    ///
    /// # Errors
    ///
    /// [`TlsSetupError::NoFingerprints`] for no pins.
    pub fn pinned(pins: Vec<Fingerprint>) -> Result<Self, TlsSetupError> {
        if pins.is_empty() {
            return Err(TlsSetupError::NoFingerprints);
        }
        let provider = provider();
        let verifier = Arc::new(PinnedVerifier { pins, provider: Arc::clone(&provider) });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Self { config: Arc::new(config) })
    }

    pub(crate) fn rustls_config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.config)
    }
}

/// The certificate error of a fingerprint mismatch, carried through rustls
/// as [`CertificateError::Other`] and turned back into
/// [`TransportError::FingerprintMismatch`](super::TransportError::FingerprintMismatch).
#[derive(Debug, thiserror::Error)]
#[error("certificate fingerprint {presented} is not pinned")]
pub(crate) struct NotPinned {
    pub(crate) presented: Fingerprint,
}

/// Peer-to-peer verification by fingerprint (RFC 4975 s.14.4).
#[derive(Debug)]
struct PinnedVerifier {
    pins: Vec<Fingerprint>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // RFC 4975 s.14.4: "when doing peer-to-peer TLS, the subjectAltName
        // is not an important component of the certificate verification."
        // and "The certificate presented during the TLS handshake needs to
        // match the fingerprint exchanged via the SDP".
        let presented = Fingerprint::of_certificate(end_entity);
        if self.pins.contains(&presented) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(NotPinned {
                presented,
            })))))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trips_and_rejects_bad_forms() {
        let text =
            "SHA-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3B:E2:DD:B5:7C:AB:3B:E2:DD:B5:7C:AB";
        let parsed: Fingerprint = text.parse().expect("a valid fingerprint");
        assert_eq!(parsed.to_string(), text);
        assert_eq!(text.to_ascii_lowercase().parse::<Fingerprint>(), Ok(parsed));
        let cases: [(&str, FingerprintError); 5] = [
            ("4A:AD", FingerprintError::MissingHashFunction),
            ("SHA-1 4A:AD", FingerprintError::UnsupportedHashFunction),
            ("SHA-256 4A:AD:", FingerprintError::BadHex),
            ("SHA-256 4A:ZZ", FingerprintError::BadHex),
            ("SHA-256 4A:AD", FingerprintError::WrongLength { pairs: 2 }),
        ];
        for (input, expected) in cases {
            assert_eq!(input.parse::<Fingerprint>(), Err(expected), "{input}");
        }
    }
}
