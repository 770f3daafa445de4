//! The IWF's non-CPM systems, as a node reaches them: email submitted to
//! an SMTP server ([`SmtpSubmitter`]), SMS submitted to an SMSC over SMPP
//! v3.4 ([`SmppClient`]). Each system's answer becomes the delivery REPORT
//! status that `cpm_roles::interworking` defines.
//!
//! MMS posted to an MMSC is not here yet: a node configured for it refuses
//! to start and says so.

mod smpp;
mod smtp;

pub use smpp::{Bind, SmppClient};
pub use smtp::SmtpSubmitter;

use thiserror::Error;

/// Why a non-CPM client cannot be set up.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NonCpmError {
    /// `target` is not `host:port`.
    #[error("target {0:?} is not host:port")]
    Target(String),
    /// The CA file for STARTTLS cannot be used.
    #[error("the CA for STARTTLS: {0}")]
    Ca(String),
}
