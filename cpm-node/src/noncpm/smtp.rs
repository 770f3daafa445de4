//! Email: the converted message submitted to the configured SMTP server
//! (lettre's async client, STARTTLS when the server offers it), its reply
//! mapped to the delivery REPORT status that
//! `cpm_roles::interworking::smtp_reply_status` defines.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use super::NonCpmError;
use cpm_roles::interworking::{smtp_reply_status, MailEnvelope};
use lettre::address::{Address, Envelope};
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

/// The REPORT status when the server could not be reached or did not
/// answer in time (RFC 4975 s.10.4: 408, the sender may try again).
const UNREACHABLE: u16 = 408;

/// Submits converted email to one SMTP server.
pub struct SmtpSubmitter {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    timeout: Duration,
}

impl std::fmt::Debug for SmtpSubmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSubmitter").finish_non_exhaustive()
    }
}

impl SmtpSubmitter {
    /// A client of the SMTP server at `target` (`host:port`), greeting as
    /// `hello` (RFC 5321 s.4.1.1.1: the client's domain, or an address
    /// literal). With `ca`, STARTTLS (RFC 3207) is required and the
    /// server's certificate must chain to that CA alone; without, the
    /// session is upgraded when the server offers STARTTLS, checked against
    /// the public roots. Each submission gives up after `timeout`, whatever
    /// the server does.
    ///
    /// # Errors
    ///
    /// [`NonCpmError`] for a target that is not `host:port`, or a CA that
    /// cannot be read.
    pub fn new(target: &str, hello: &str, ca: Option<&Path>, timeout: Duration) -> Result<Self, NonCpmError> {
        let (host, port) = target
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host.trim_matches(['[', ']']), port.parse::<u16>().ok()?)))
            .ok_or_else(|| NonCpmError::Target(target.to_owned()))?;
        let mut tls = TlsParameters::builder(host.to_owned());
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).map_err(|e| NonCpmError::Ca(format!("{}: {e}", ca.display())))?;
            let certificate = Certificate::from_pem(&pem).map_err(|e| NonCpmError::Ca(e.to_string()))?;
            tls = tls.certificate_store(CertificateStore::None).add_root_certificate(certificate);
        }
        let parameters = tls.build_rustls().map_err(|e| NonCpmError::Ca(e.to_string()))?;
        // RFC 3207 s.4: a client that needs TLS must not go on without it
        // (an attacker can strip an offered STARTTLS).
        let tls = if ca.is_some() { Tls::Required(parameters) } else { Tls::Opportunistic(parameters) };
        let hello = match hello.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => ClientId::Ipv4(ip),
            Ok(IpAddr::V6(ip)) => ClientId::Ipv6(ip),
            Err(_) => ClientId::Domain(hello.to_owned()),
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .hello_name(hello)
            .tls(tls)
            .timeout(Some(timeout))
            .build();
        Ok(Self { transport, timeout })
    }

    /// Submits `message` with `envelope`; the delivery REPORT status: the
    /// server's final reply through `smtp_reply_status` (2yz 200, 4yz 408,
    /// 5yz 403), 408 when it could not be reached or did not answer in
    /// time, 403 for an envelope address SMTP cannot carry.
    pub async fn submit(&self, envelope: &MailEnvelope, message: &[u8]) -> u16 {
        let (Ok(from), Ok(to)) = (envelope.from.parse::<Address>(), envelope.to.parse::<Address>()) else {
            tracing::warn!(?envelope, "an envelope address SMTP cannot carry");
            return smtp_reply_status(550);
        };
        let Ok(envelope) = Envelope::new(Some(from), vec![to]) else { return smtp_reply_status(550) };
        // RFC 5321 s.4.1.1.4: the data ends with "<CRLF>.<CRLF>", "where the
        // first <CRLF> is actually the terminator of the previous line";
        // lettre writes that whole sequence after the message, so a message
        // ending with CRLF goes without it (else it would gain an empty line).
        let message = message.strip_suffix(b"\r\n").unwrap_or(message);
        // lettre's own timeout bounds the connect only: a server that stalls
        // later is given up here.
        let Ok(sent) = tokio::time::timeout(self.timeout, self.transport.send_raw(&envelope, message)).await else {
            tracing::warn!(after = ?self.timeout, "the SMTP server did not answer in time");
            return UNREACHABLE;
        };
        match sent {
            Ok(reply) => smtp_reply_status(u16::from(reply.code())),
            Err(error) => match error.status() {
                Some(code) => {
                    tracing::info!(%error, "the SMTP server refused the message");
                    smtp_reply_status(u16::from(code))
                }
                None => {
                    tracing::warn!(%error, "the SMTP server could not take the message");
                    UNREACHABLE
                }
            },
        }
    }
}
