//! What several test crates share: test certificates made with rcgen at
//! test time, a scenario run on the host and observed ([`net`]), a node
//! served from a config and a sender routed to it ([`node`]), a real SMTP
//! server ([`smtp`]), a test SMSC ([`smsc`]) and MMSC ([`mmsc`]), and the
//! runtime's warnings and errors ([`logs`]).
#![allow(dead_code, reason = "each test crate uses a different part of this module")]

pub(crate) mod logs;
pub(crate) mod mmsc;
pub(crate) mod net;
pub(crate) mod node;
pub(crate) mod smsc;
pub(crate) mod smtp;

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedKey, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate with its key, in DER and PEM.
pub(crate) struct TestCert {
    pub(crate) der: CertificateDer<'static>,
    pub(crate) key_der: Vec<u8>,
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
}

impl TestCert {
    pub(crate) fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// A CA that signs leaf certificates.
pub(crate) struct TestCa {
    pub(crate) cert: rcgen::Certificate,
    pub(crate) key: KeyPair,
}

impl TestCa {
    pub(crate) fn new() -> Self {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "cpm-node test CA");
        let cert = params.self_signed(&key).expect("a self-signed CA");
        Self { cert, key }
    }

    pub(crate) fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    pub(crate) fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A leaf certificate whose SubjectAltNames are `names`, signed by this CA.
    pub(crate) fn issue(&self, names: &[&str]) -> TestCert {
        let key = KeyPair::generate().expect("a leaf key");
        let params =
            CertificateParams::new(names.iter().map(|name| (*name).to_owned()).collect::<Vec<_>>()).expect("params");
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("a signed leaf");
        TestCert {
            der: cert.der().clone(),
            key_der: key.serialize_der(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A self-signed certificate for peer-to-peer TLS (RFC 4975 s.14.4).
pub(crate) fn self_signed(names: &[&str]) -> TestCert {
    let CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(names.iter().map(|name| (*name).to_owned()).collect::<Vec<_>>())
            .expect("a self-signed certificate");
    TestCert {
        der: cert.der().clone(),
        key_der: key_pair.serialize_der(),
        cert_pem: cert.pem(),
        key_pem: key_pair.serialize_pem(),
    }
}

/// Host options with MSRP over TLS: a CA made now, and one leaf it signs
/// for `names` that every listener presents (links check it against the
/// host they connect to, RFC 4975 s.5.4).
pub(crate) fn tls_host_options(names: &[&str]) -> cpm_node::HostOptions {
    use std::sync::Arc;
    let ca = TestCa::new();
    let leaf = ca.issue(names);
    let handshake = std::time::Duration::from_secs(5);
    let server = cpm_node::TlsServerConfig::new(vec![leaf.der.clone()], leaf.key(), handshake).expect("a server");
    let client = cpm_node::TlsClient::with_roots(vec![ca.der()]).expect("a client");
    cpm_node::HostOptions {
        tls: cpm_node::TlsMode::Tls(Arc::new(client)),
        tls_server: Some(Arc::new(server)),
        ..cpm_node::HostOptions::default()
    }
}

/// `../shared/interop` beside the work tree (or `$INTEROP_DIR`).
pub(crate) fn interop_dir() -> PathBuf {
    std::env::var_os("INTEROP_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/interop"), PathBuf::from)
}

/// `name` on `$PATH`, if any.
pub(crate) fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// Says loudly that a test did not run, and why.
pub(crate) fn skip(test: &str, why: &str) {
    eprintln!("\n**************** SKIP {test}: {why} ****************\n");
}
