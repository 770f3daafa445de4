//! Errors: MSRP media rules broken by a peer's SDP, the reasons an offer or an
//! answer is refused, and the caller's mistakes.

use msrp_core::UriError;
use sip_lite::sdp::SdpError;
use thiserror::Error;

/// Why an `m=message` description breaks a rule of RFC 4975 s.8, RFC 6135,
/// RFC 6714 or RFC 5547 (the peer is at fault).
///
/// `at` is the byte offset, in the parsed SDP, of the offending line (the
/// `m=` line for a rule about the whole description).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MediaError {
    /// `<proto>` is neither `TCP/MSRP` nor `TCP/TLS/MSRP`.
    #[error("m= line at byte {at}: proto is not TCP/MSRP or TCP/TLS/MSRP (RFC 4975 s.8.1)")]
    Proto {
        /// Offset of the `m=` line.
        at: usize,
    },
    /// The format list is not exactly `*`.
    #[error("m= line at byte {at}: format list is not \"*\" (RFC 4975 s.8.1)")]
    Format {
        /// Offset of the `m=` line.
        at: usize,
    },
    /// An active stream without `a=path`.
    #[error("m= line at byte {at}: no a=path (RFC 4975 s.8.2)")]
    MissingPath {
        /// Offset of the `m=` line.
        at: usize,
    },
    /// An active stream without `a=accept-types`.
    #[error("m= line at byte {at}: no a=accept-types (RFC 4975 s.8.6)")]
    MissingAcceptTypes {
        /// Offset of the `m=` line.
        at: usize,
    },
    /// An `a=path` entry that is not an MSRP URI.
    #[error("a=path at byte {at}: not an MSRP-URI (RFC 4975 s.8.2 path-list): {reason}")]
    PathUri {
        /// Offset of the `a=` line.
        at: usize,
        /// What the URI parser found.
        reason: UriError,
    },
    /// An `a=path` URI without an explicit port, or with port 0.
    #[error("a=path at byte {at}: URI without an explicit, non-zero port (RFC 4975 s.8.2)")]
    PathPort {
        /// Offset of the `a=` line.
        at: usize,
    },
    /// An empty `a=path`.
    #[error("a=path at byte {at}: empty path-list (RFC 4975 s.8.2)")]
    PathEmpty {
        /// Offset of the `a=` line.
        at: usize,
    },
    /// An `a=accept-types` that is not a `format-list`.
    #[error("a=accept-types at byte {at}: not a format-list (RFC 4975 s.8.6)")]
    AcceptTypes {
        /// Offset of the `a=` line.
        at: usize,
    },
    /// An `a=accept-wrapped-types` that is not a `format-list`.
    #[error("a=accept-wrapped-types at byte {at}: not a format-list (RFC 4975 s.8.6)")]
    AcceptWrappedTypes {
        /// Offset of the `a=` line.
        at: usize,
    },
    /// An `a=max-size` that is not `1*DIGIT` (or past 2^64-1).
    #[error("a=max-size at byte {at}: not 1*DIGIT (RFC 4975 s.8.6 max-size-value)")]
    MaxSize {
        /// Offset of the `a=` line.
        at: usize,
    },
    /// An `a=setup` other than active, passive, actpass or holdconn.
    #[error("a=setup at byte {at}: not active/passive/actpass/holdconn (RFC 4145 s.4)")]
    Setup {
        /// Offset of the `a=` line.
        at: usize,
    },
    /// `a=msrp-cema` with a value.
    #[error("a=msrp-cema at byte {at}: takes no value (RFC 6714 s.5.2)")]
    Cema {
        /// Offset of the `a=` line.
        at: usize,
    },
    /// An attribute that may appear once per description appears again, or a
    /// second direction attribute.
    #[error("a={name} at byte {at}: repeated in one media description")]
    Repeated {
        /// Offset of the repeated `a=` line.
        at: usize,
        /// The attribute.
        name: &'static str,
    },
    /// An RFC 5547 attribute that breaks its grammar.
    #[error("a={name} at byte {at}: breaks the RFC 5547 s.6 grammar")]
    FileTransfer {
        /// Offset of the `a=` line.
        at: usize,
        /// The attribute.
        name: &'static str,
    },
    /// An `a=fingerprint` that is not `hash-func SP fingerprint`.
    #[error("a=fingerprint at byte {at}: breaks the RFC 8122 s.5 grammar")]
    Fingerprint {
        /// Offset of the `a=` line.
        at: usize,
    },
}

impl MediaError {
    /// Byte offset of the offending line.
    #[must_use]
    pub const fn offset(&self) -> usize {
        match *self {
            Self::Proto { at }
            | Self::Format { at }
            | Self::MissingPath { at }
            | Self::MissingAcceptTypes { at }
            | Self::PathUri { at, .. }
            | Self::PathPort { at }
            | Self::PathEmpty { at }
            | Self::AcceptTypes { at }
            | Self::AcceptWrappedTypes { at }
            | Self::MaxSize { at }
            | Self::Setup { at }
            | Self::Cema { at }
            | Self::Repeated { at, .. }
            | Self::FileTransfer { at, .. }
            | Self::Fingerprint { at } => at,
        }
    }

    /// A short, stable word naming the rule (used by `msrp_sdp`).
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Proto { .. } => "proto",
            Self::Format { .. } => "format",
            Self::MissingPath { .. } => "missing_path",
            Self::MissingAcceptTypes { .. } => "missing_accept_types",
            Self::PathUri { .. } => "path_uri",
            Self::PathPort { .. } => "path_port",
            Self::PathEmpty { .. } => "path_empty",
            Self::AcceptTypes { .. } => "accept_types",
            Self::AcceptWrappedTypes { .. } => "accept_wrapped_types",
            Self::MaxSize { .. } => "max_size",
            Self::Setup { .. } => "setup",
            Self::Cema { .. } => "msrp_cema",
            Self::Repeated { .. } => "repeated_attribute",
            Self::FileTransfer { .. } => "file_transfer",
            Self::Fingerprint { .. } => "fingerprint",
        }
    }
}

/// Why bytes are not an SDP body with valid MSRP media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SdpMediaError {
    /// Not a session description (RFC 8866).
    #[error(transparent)]
    Sdp(#[from] SdpError),
    /// An `m=message` description breaks an MSRP rule.
    #[error(transparent)]
    Media(#[from] MediaError),
}

impl SdpMediaError {
    /// Byte offset of the offending line or byte.
    #[must_use]
    pub const fn offset(&self) -> usize {
        match self {
            Self::Sdp(e) => e.offset(),
            Self::Media(e) => e.offset(),
        }
    }

    /// A short, stable word naming the rule.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Sdp(e) => e.kind(),
            Self::Media(e) => e.kind(),
        }
    }
}

/// Why a local entity cannot accept an offer (it answers `488 Not Acceptable
/// Here` with a `Warning` carrying [`Refusal::warning`]), or why an offerer
/// cannot use the answer it got in a 200 (it ACKs, then ends the dialog with
/// BYE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The SDP is not valid or breaks an MSRP media rule.
    #[error("invalid MSRP media: {0}")]
    Invalid(SdpMediaError),
    /// No `m=message` MSRP description with a non-zero port.
    #[error("no MSRP media stream offered")]
    NoMsrpMedia,
    /// The peer rejected the MSRP stream (port 0 in the answer).
    #[error("MSRP stream rejected (port 0)")]
    Rejected,
    /// The answer has a different number of media descriptions than the offer (RFC 3264 s.6).
    #[error("answer does not mirror the offer's media lines (RFC 3264 s.6)")]
    MediaCount,
    /// Nothing we can send is in the peer's accept-types (RFC 4975 s.8.6).
    #[error("no common content type (RFC 4975 s.8.6)")]
    NoCommonType,
    /// The message announced in the offer exceeds our max-size.
    #[error("message larger than our max-size (RFC 4975 s.8.6)")]
    TooLarge,
    /// RFC 6135 s.4.2.2: "The UA MUST NOT use the a=setup "passive" attribute value in an SDP offer."
    #[error("a=setup:passive in an offer (RFC 6135 s.4.2.2)")]
    PassiveOffer,
    /// The offer and answer `a=setup` values leave nobody (or both) to connect (RFC 4145 s.4.1).
    #[error("a=setup {offer} in the offer and {answer} in the answer do not agree (RFC 4145 s.4.1)")]
    SetupMismatch {
        /// The offer's value (`none` when absent).
        offer: &'static str,
        /// The answer's value.
        answer: &'static str,
    },
    /// RFC 6714 s.4.3: a non-CEMA offer whose c=/m= do not match its a=path.
    #[error("c=/m= do not match a=path in a non-CEMA offer (RFC 6714 s.4.3)")]
    CemaMismatch,
}

impl Refusal {
    /// The SIP status an answerer refuses the offer with.
    #[must_use]
    pub const fn status_code(&self) -> u16 {
        488
    }

    /// The text of the `Warning` header (RFC 3261 s.20.43), code 399 style:
    /// says why, in a few words.
    #[must_use]
    pub const fn warning(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid MSRP media description",
            Self::NoMsrpMedia => "no MSRP media stream",
            Self::Rejected => "MSRP stream rejected",
            Self::MediaCount => "media lines do not match the offer",
            Self::NoCommonType => "no common content type",
            Self::TooLarge => "message larger than max-size",
            Self::PassiveOffer => "a=setup:passive not allowed in an offer",
            Self::SetupMismatch { .. } => "a=setup values do not agree",
            Self::CemaMismatch => "c=/m= do not match a=path without msrp-cema",
        }
    }

    /// The whole `Warning` header value: `399 <agent> "<text>"`.
    #[must_use]
    pub fn warning_header(&self, agent: &str) -> String {
        format!("399 {agent} \"{}\"", self.warning())
    }
}

/// A caller's mistake (never caused by peer input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UsageError {
    /// A trigger that cannot apply to this side of the hop (for example an
    /// answerer waiting for a SEND that can only arrive once it connected).
    #[error("trigger {0} cannot start a connect on this side of the hop")]
    Trigger(&'static str),
    /// An input that does not belong to this side of the hop (an offerer
    /// told it received an offer, ...).
    #[error("input {0} does not belong to this side of the hop")]
    WrongSide(&'static str),
    /// A local value that cannot be written into SDP.
    #[error("local media parameter {0} cannot be written into SDP")]
    LocalMedia(&'static str),
}
