//! Errors of the SIP wire layer.

use thiserror::Error;

use super::header::HeaderName;

/// Why bytes are not a valid SIP message (RFC 3261 s.7, s.25).
///
/// `at` is the absolute offset, in the connection's byte stream (or in the
/// datagram), of the first offending byte. It is the same for every way a
/// stream is split into segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The start line is neither a Request-Line nor a Status-Line.
    #[error("invalid start line at byte {at}")]
    StartLine {
        /// Offset of the first offending byte.
        at: u64,
    },
    /// A well-formed SIP-Version other than `SIP/2.0` (a request gets 505).
    #[error("unsupported SIP version at byte {at}")]
    Version {
        /// Offset of the version.
        at: u64,
    },
    /// The Request-URI is not a valid URI, or holds what a Request-URI may not.
    #[error("invalid Request-URI at byte {at}")]
    RequestUri {
        /// Offset of the first offending byte.
        at: u64,
    },
    /// The Status-Code is not three digits in 100-699.
    #[error("invalid status code at byte {at}")]
    StatusCode {
        /// Offset of the code.
        at: u64,
    },
    /// A CR not followed by LF, or an LF not preceded by CR, in the start line or headers.
    #[error("bare CR or LF at byte {at}")]
    LineEnding {
        /// Offset of the stray CR or LF.
        at: u64,
    },
    /// The start line and headers exceed [`Limits::max_head`](super::Limits).
    #[error("header section at byte {at} exceeds {limit} bytes")]
    HeadTooLong {
        /// Offset of the first byte past the limit.
        at: u64,
        /// The configured limit.
        limit: usize,
    },
    /// More header lines than [`Limits::max_headers`](super::Limits).
    #[error("header at byte {at} exceeds the limit of {limit} headers")]
    TooManyHeaders {
        /// Offset of the first header line past the limit.
        at: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A header line that is not `header-name HCOLON header-value`, or whose value is not UTF-8 text.
    #[error("malformed header line at byte {at}")]
    Header {
        /// Offset of the first offending byte.
        at: u64,
    },
    /// A header value that breaks its header's grammar or range.
    #[error("invalid {header} value at byte {at}")]
    HeaderValue {
        /// Offset of the first offending byte.
        at: u64,
        /// The header.
        header: HeaderName,
    },
    /// A single-valued header appears twice.
    #[error("duplicate {header} header at byte {at}")]
    DuplicateHeader {
        /// Offset of the second occurrence.
        at: u64,
        /// The header.
        header: HeaderName,
    },
    /// A mandatory header is absent (RFC 3261 s.8.1.1; the parser requires To, From, CSeq, Call-ID).
    #[error("missing {header} header (header section ends at byte {at})")]
    MissingHeader {
        /// Offset of the blank line that ends the header section.
        at: u64,
        /// The header.
        header: HeaderName,
    },
    /// The CSeq method differs from the request method.
    #[error("CSeq method differs from the request method at byte {at}")]
    CSeqMethod {
        /// Offset of the CSeq method.
        at: u64,
    },
    /// A Content-Length that is not `1*DIGIT` or overflows, or appears twice.
    #[error("invalid Content-Length at byte {at}")]
    ContentLength {
        /// Offset of the value (or of the second header).
        at: u64,
    },
    /// No Content-Length on a stream transport (RFC 3261 s.18.3).
    #[error("Content-Length is required on a stream (header section ends at byte {at})")]
    MissingContentLength {
        /// Offset of the blank line that ends the header section.
        at: u64,
    },
    /// The body exceeds [`Limits::max_body`](super::Limits).
    #[error("body at byte {at} exceeds {limit} bytes")]
    BodyTooLarge {
        /// Offset of the body.
        at: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A datagram that ends before the body announced by Content-Length.
    #[error("datagram ends at byte {at}, before the end of the body")]
    BodyTruncated {
        /// The datagram's length.
        at: u64,
    },
    /// Bytes after the message where exactly one message was expected.
    #[error("unexpected bytes after the message at byte {at}")]
    TrailingData {
        /// Offset of the first extra byte.
        at: u64,
    },
    /// The input ended inside a message.
    #[error("input ends inside a message at byte {at}")]
    Incomplete {
        /// The input length.
        at: u64,
    },
}

impl ParseError {
    /// Absolute offset of the first offending byte.
    #[must_use]
    pub const fn offset(&self) -> u64 {
        match *self {
            Self::StartLine { at }
            | Self::Version { at }
            | Self::RequestUri { at }
            | Self::StatusCode { at }
            | Self::LineEnding { at }
            | Self::HeadTooLong { at, .. }
            | Self::TooManyHeaders { at, .. }
            | Self::Header { at }
            | Self::HeaderValue { at, .. }
            | Self::DuplicateHeader { at, .. }
            | Self::MissingHeader { at, .. }
            | Self::CSeqMethod { at }
            | Self::ContentLength { at }
            | Self::MissingContentLength { at }
            | Self::BodyTooLarge { at, .. }
            | Self::BodyTruncated { at }
            | Self::TrailingData { at }
            | Self::Incomplete { at } => at,
        }
    }

    /// A short, stable word naming the kind of error (used by `sip_dump`).
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::StartLine { .. } => "start_line",
            Self::Version { .. } => "version",
            Self::RequestUri { .. } => "request_uri",
            Self::StatusCode { .. } => "status_code",
            Self::LineEnding { .. } => "line_ending",
            Self::HeadTooLong { .. } => "head_too_long",
            Self::TooManyHeaders { .. } => "too_many_headers",
            Self::Header { .. } => "header",
            Self::HeaderValue { .. } => "header_value",
            Self::DuplicateHeader { .. } => "duplicate_header",
            Self::MissingHeader { .. } => "missing_header",
            Self::CSeqMethod { .. } => "cseq_method",
            Self::ContentLength { .. } => "content_length",
            Self::MissingContentLength { .. } => "missing_content_length",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::BodyTruncated { .. } => "body_truncated",
            Self::TrailingData { .. } => "trailing_data",
            Self::Incomplete { .. } => "incomplete",
        }
    }

    /// Whether a stream survives the error: the message's extent is known (its
    /// header section ended and its Content-Length was valid), so the
    /// [`Framer`](super::Framer) skips it and goes on with the next message.
    /// When this is `false` on a stream, the connection MUST be closed.
    /// (On a datagram transport every error is confined to its datagram.)
    #[must_use]
    pub const fn is_recoverable(&self) -> bool {
        !matches!(
            self,
            Self::StartLine { .. }
                | Self::LineEnding { .. }
                | Self::HeadTooLong { .. }
                | Self::TooManyHeaders { .. }
                | Self::ContentLength { .. }
                | Self::MissingContentLength { .. }
                | Self::TrailingData { .. }
                | Self::Incomplete { .. }
        )
    }

    /// The response a UAS sends when the rejected message is a request whose
    /// Via, From, To, Call-ID and CSeq it can still read (RFC 3261 s.8.2.6);
    /// `None` when no response can be built from the bytes.
    #[must_use]
    pub const fn status_code(&self) -> Option<u16> {
        match self {
            // RFC 3261 s.21.5.6: "505 Version Not Supported"
            Self::Version { .. } => Some(505),
            // RFC 3261 s.21.4.11: "413 Request Entity Too Large"
            Self::BodyTooLarge { .. } => Some(413),
            // RFC 3261 s.21.5.7: "513 Message Too Large"
            Self::HeadTooLong { .. } => Some(513),
            Self::StartLine { .. } | Self::LineEnding { .. } | Self::Incomplete { .. } | Self::StatusCode { .. } => {
                None
            }
            _ => Some(400),
        }
    }
}
