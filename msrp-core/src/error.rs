//! Errors of the wire layer.

use thiserror::Error;

/// Why a byte stream is not valid MSRP (RFC 4975 s.7.1, s.9).
///
/// `at` is the absolute offset, in the connection's byte stream, of the first
/// offending byte. The value is the same for every way the stream is split
/// into segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The start line is not `MSRP SP transact-id SP (method / status-code [SP comment])`.
    #[error("invalid start line at byte {at}")]
    StartLine {
        /// Offset of the first offending byte.
        at: u64,
    },
    /// The transaction id is not `ALPHANUM 3*31ident-char`.
    #[error("invalid transaction id at byte {at}")]
    TransactionId {
        /// Offset of the first offending byte.
        at: u64,
    },
    /// A CR not followed by LF, or an LF not preceded by CR, in the start line or headers.
    #[error("bare CR or LF at byte {at}")]
    LineEnding {
        /// Offset of the stray CR or LF.
        at: u64,
    },
    /// A line is longer than [`Limits::max_line`](crate::Limits).
    #[error("line at byte {at} exceeds {limit} bytes")]
    LineTooLong {
        /// Offset of the line's first byte.
        at: u64,
        /// The configured limit.
        limit: usize,
    },
    /// The start line and headers exceed [`Limits::max_head`](crate::Limits).
    #[error("header section at byte {at} exceeds {limit} bytes")]
    HeadTooLong {
        /// Offset of the first byte past the limit.
        at: u64,
        /// The configured limit.
        limit: usize,
    },
    /// More header lines than [`Limits::max_headers`](crate::Limits).
    #[error("header at byte {at} exceeds the limit of {limit} headers")]
    TooManyHeaders {
        /// Offset of the first header line past the limit.
        at: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A header line that is not `hname ":" SP hval`, or whose value is not UTF-8 text.
    #[error("malformed header line at byte {at}")]
    Header {
        /// Offset of the first offending byte.
        at: u64,
    },
    /// To-Path is not the first header, or From-Path not the second.
    #[error("To-Path and From-Path must be the first two headers (byte {at})")]
    PathOrder {
        /// Offset of the misplaced line.
        at: u64,
    },
    /// A To-Path, From-Path or Use-Path value that is not a list of MSRP URIs separated by single spaces.
    #[error("invalid MSRP URI in a path at byte {at}")]
    Path {
        /// Offset of the first offending byte.
        at: u64,
    },
    /// A Message-ID value that is not an `ident`.
    #[error("invalid Message-ID at byte {at}")]
    MessageId {
        /// Offset of the value.
        at: u64,
    },
    /// A Byte-Range value that is not `range-start "-" range-end "/" total`, overflows u64, or is incoherent.
    #[error("invalid Byte-Range at byte {at}")]
    ByteRange {
        /// Offset of the value.
        at: u64,
    },
    /// A Success-Report or Failure-Report value outside the allowed words.
    #[error("invalid report policy at byte {at}")]
    ReportPolicy {
        /// Offset of the value.
        at: u64,
    },
    /// A Status value that is not `namespace SP status-code [SP comment]`.
    #[error("invalid Status at byte {at}")]
    Status {
        /// Offset of the value.
        at: u64,
    },
    /// A Content-Type value that is not a media type.
    #[error("invalid Content-Type at byte {at}")]
    ContentType {
        /// Offset of the value.
        at: u64,
    },
    /// An Expires, Min-Expires or Max-Expires value that is not a decimal number.
    #[error("invalid expiry value at byte {at}")]
    Expires {
        /// Offset of the value.
        at: u64,
    },
    /// A header that may appear once appears twice.
    #[error("duplicate header at byte {at}")]
    DuplicateHeader {
        /// Offset of the second occurrence.
        at: u64,
    },
    /// Content-Type is followed by another header, or MIME headers appear without a body.
    #[error("Content-Type must be the last header, and MIME headers need a body (byte {at})")]
    MimeHeaders {
        /// Offset of the offending line.
        at: u64,
    },
    /// A body without Content-Type, or Content-Type without a body.
    #[error("a body and Content-Type must come together (byte {at})")]
    BodyContentType {
        /// Offset of the offending line.
        at: u64,
    },
    /// A response with a body.
    #[error("a response has no body (byte {at})")]
    ResponseBody {
        /// Offset of the blank line that starts the body.
        at: u64,
    },
    /// The body of a request other than SEND exceeds its limit (RFC 4975 s.7.1: 10240 octets).
    #[error("body at byte {at} exceeds {limit} bytes for a non-SEND request")]
    BodyTooLarge {
        /// Offset of the first byte past the limit.
        at: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A line where the end-line of the transaction was expected, which is not it.
    #[error("invalid end-line at byte {at}")]
    EndLine {
        /// Offset of the line.
        at: u64,
    },
    /// The input ended inside a frame.
    #[error("input ends inside a frame at byte {at}")]
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
            | Self::TransactionId { at }
            | Self::LineEnding { at }
            | Self::LineTooLong { at, .. }
            | Self::HeadTooLong { at, .. }
            | Self::TooManyHeaders { at, .. }
            | Self::Header { at }
            | Self::PathOrder { at }
            | Self::Path { at }
            | Self::MessageId { at }
            | Self::ByteRange { at }
            | Self::ReportPolicy { at }
            | Self::Status { at }
            | Self::ContentType { at }
            | Self::Expires { at }
            | Self::DuplicateHeader { at }
            | Self::MimeHeaders { at }
            | Self::BodyContentType { at }
            | Self::ResponseBody { at }
            | Self::BodyTooLarge { at, .. }
            | Self::EndLine { at }
            | Self::Incomplete { at } => at,
        }
    }

    /// A short, stable word naming the kind of error (used by `msrp_dump`).
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::StartLine { .. } => "start_line",
            Self::TransactionId { .. } => "transaction_id",
            Self::LineEnding { .. } => "line_ending",
            Self::LineTooLong { .. } => "line_too_long",
            Self::HeadTooLong { .. } => "head_too_long",
            Self::TooManyHeaders { .. } => "too_many_headers",
            Self::Header { .. } => "header",
            Self::PathOrder { .. } => "path_order",
            Self::Path { .. } => "path",
            Self::MessageId { .. } => "message_id",
            Self::ByteRange { .. } => "byte_range",
            Self::ReportPolicy { .. } => "report_policy",
            Self::Status { .. } => "status",
            Self::ContentType { .. } => "content_type",
            Self::Expires { .. } => "expires",
            Self::DuplicateHeader { .. } => "duplicate_header",
            Self::MimeHeaders { .. } => "mime_headers",
            Self::BodyContentType { .. } => "body_content_type",
            Self::ResponseBody { .. } => "response_body",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::EndLine { .. } => "end_line",
            Self::Incomplete { .. } => "incomplete",
        }
    }

    /// Whether the framing survived: the frame's transaction id is known and the
    /// framer skips to its end-line, so a session can answer 400 and go on.
    /// When this is `false` the connection MUST be closed.
    #[must_use]
    pub const fn is_recoverable(&self) -> bool {
        !matches!(
            self,
            Self::StartLine { .. }
                | Self::TransactionId { .. }
                | Self::LineEnding { .. }
                | Self::LineTooLong { .. }
                | Self::HeadTooLong { .. }
                | Self::TooManyHeaders { .. }
                | Self::EndLine { .. }
                | Self::Incomplete { .. }
        )
    }
}
