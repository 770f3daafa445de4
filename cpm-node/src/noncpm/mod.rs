//! The IWF's non-CPM systems, as a node reaches them: email submitted to
//! an SMTP server ([`SmtpSubmitter`]), SMS submitted to an SMSC over SMPP
//! v3.4 ([`SmppClient`]), MMS posted to an MMSC over HTTP
//! ([`MmscClient`]). Each system's answer becomes the delivery REPORT
//! status that `cpm_roles::interworking` defines.

mod mms;
mod smpp;
mod smtp;

pub use mms::MmscClient;
pub use smpp::{Bind, SmppClient};
pub use smtp::SmtpSubmitter;

use thiserror::Error;

/// Why a non-CPM client cannot be set up.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NonCpmError {
    /// `target` is not of the system's form (`host:port`, or an MMSC's
    /// `http://` URL).
    #[error("target {0:?} is not of the form this system needs (host:port, or an http:// URL for an MMSC)")]
    Target(String),
    /// The CA file for STARTTLS cannot be used.
    #[error("the CA for STARTTLS: {0}")]
    Ca(String),
}
