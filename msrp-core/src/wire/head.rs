//! The frame head (start line and headers) as a validated, zero-copy view, and
//! the line-by-line parser that builds it.

use std::fmt;

use bytes::Bytes;

use super::chars::{
    check_ident, check_token, check_utf8text, ident_len, leading_u64, parse_u64, plain_text_len, run_len,
    MEDIA_TYPE_PLAIN, TOKEN,
};
use crate::error::ParseError;
use crate::id::{MessageId, TransactionId};
use crate::uri::{self, MsrpUri};

/// The continuation flag of an end-line (RFC 4975 s.7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Flag {
    /// `$`: the last chunk of the message.
    End,
    /// `+`: more chunks follow.
    Continue,
    /// `#`: the sender aborted the message.
    Abort,
}

impl Flag {
    /// Maps a flag byte; `None` for anything but `$`, `+`, `#`.
    #[must_use]
    pub const fn from_byte(b: u8) -> Option<Self> {
        match b {
            b'$' => Some(Self::End),
            b'+' => Some(Self::Continue),
            b'#' => Some(Self::Abort),
            _ => None,
        }
    }

    /// The flag's byte on the wire.
    #[must_use]
    pub const fn as_byte(self) -> u8 {
        match self {
            Self::End => b'$',
            Self::Continue => b'+',
            Self::Abort => b'#',
        }
    }
}

/// A request method (RFC 4975 s.9 `method`, RFC 4976 AUTH).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Method {
    /// `SEND`.
    Send,
    /// `REPORT`.
    Report,
    /// `AUTH` (RFC 4976).
    Auth,
    /// Any other `1*UPALPHA`; its name is [`FrameHead::method_name`].
    Other,
}

impl Method {
    fn from_name(name: &[u8]) -> Self {
        match name {
            b"SEND" => Self::Send,
            b"REPORT" => Self::Report,
            b"AUTH" => Self::Auth,
            _ => Self::Other,
        }
    }
}

/// A Byte-Range value (RFC 4975 s.7.1.1): `start-end/total`, `*` as `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ByteRange {
    /// Index of the chunk's first byte in the message, from 1.
    pub start: u64,
    /// Index of its last byte, `None` for `*` (unknown yet).
    pub end: Option<u64>,
    /// Size of the whole message, `None` for `*`.
    pub total: Option<u64>,
}

impl ByteRange {
    /// Parses `range-start "-" range-end "/" total`.
    ///
    /// Beyond the grammar it rejects what no sender can mean: a start of 0
    /// (s.7.1.1: "The first octet of a message has a byte index of 1"), an
    /// end before `start - 1`, and an end past a known total.
    ///
    /// # Errors
    /// `Err(())` when the value is not such a range or a number overflows u64.
    #[allow(clippy::result_unit_err, reason = "the framer attaches the offset")]
    pub fn parse(value: &[u8]) -> Result<Self, ()> {
        match Self::parse_leading(value)? {
            (range, []) => Ok(range),
            _ => Err(()),
        }
    }

    /// Parses the range that starts `value` (as [`ByteRange::parse`]) and
    /// returns it with the bytes after it.
    fn parse_leading(value: &[u8]) -> Result<(Self, &[u8]), ()> {
        // RFC 4975 s.9: Byte-Range = "Byte-Range:" SP range-start "-" range-end "/" total;
        // range-start = 1*DIGIT; range-end = 1*DIGIT / "*"; total = 1*DIGIT / "*"
        let (start, rest) = leading_u64(value).ok_or(())?;
        let rest = rest.strip_prefix(b"-").ok_or(())?;
        let (end, rest) = leading_star_or_u64(rest)?;
        let rest = rest.strip_prefix(b"/").ok_or(())?;
        let (total, rest) = leading_star_or_u64(rest)?;
        let range = Self { start, end, total };
        if range.is_coherent() {
            Ok((range, rest))
        } else {
            Err(())
        }
    }

    /// Whether the numbers can describe a chunk (see [`ByteRange::parse`]).
    #[must_use]
    pub fn is_coherent(&self) -> bool {
        if self.start == 0 {
            return false;
        }
        if let Some(end) = self.end {
            if end < self.start - 1 {
                return false;
            }
            if let Some(total) = self.total {
                if end > total {
                    return false;
                }
            }
        }
        true
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-", self.start)?;
        match self.end {
            Some(end) => write!(f, "{end}/")?,
            None => f.write_str("*/")?,
        }
        match self.total {
            Some(total) => write!(f, "{total}"),
            None => f.write_str("*"),
        }
    }
}

/// Parses the `"*" / 1*DIGIT` that starts `s`; returns it and the bytes after it.
fn leading_star_or_u64(s: &[u8]) -> Result<(Option<u64>, &[u8]), ()> {
    match s.strip_prefix(b"*") {
        Some(rest) => Ok((None, rest)),
        None => leading_u64(s).map(|(n, rest)| (Some(n), rest)).ok_or(()),
    }
}

/// A Failure-Report value (RFC 4975 s.7.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum FailureReport {
    /// `yes` (the default when absent).
    Yes,
    /// `no`.
    No,
    /// `partial`: only failures produce a REPORT.
    Partial,
}

impl FailureReport {
    /// The value's wire word.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Yes => "yes",
            Self::No => "no",
            Self::Partial => "partial",
        }
    }
}

/// A Status header value (RFC 4975 s.7.1.2): `namespace SP status-code [SP comment]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Status {
    /// The namespace, `000` for RFC 4975 codes.
    pub namespace: u16,
    /// The status code.
    pub code: u16,
}

/// One header line, name and value as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// The name as on the wire (case preserved).
    pub name: &'a str,
    /// The value after `": "`.
    pub value: &'a str,
}

/// A range of a head's bytes: the start in the low 32 bits, the end in the
/// high 32, one word (written with one store when a head is built).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Span(u64);

impl Span {
    fn new(start: usize, end: usize) -> Self {
        // Heads are bounded by `Limits::max_head`, itself capped below u32::MAX.
        Self(u64::from(start as u32) | (u64::from(end as u32) << 32))
    }
    const fn start(self) -> usize {
        self.0 as u32 as usize
    }
    const fn end(self) -> usize {
        (self.0 >> 32) as usize
    }
    fn range(self) -> std::ops::Range<usize> {
        self.start()..self.end()
    }
    /// `None` for the default span, which marks an absent value: every value
    /// ends after the start line, so a present span never ends at 0.
    fn present(self) -> Option<Self> {
        (self.end() != 0).then_some(self)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StartKind {
    Request {
        method: Method,
        name: Span,
    },
    /// `comment` is absent ([`Span::present`]) when no SP follows the code.
    Response {
        status: u16,
        comment: Span,
    },
}

/// The validated head of a frame: start line and headers, a view over the
/// received bytes (nothing copied). Accessors never fail and never panic.
#[derive(Clone, PartialEq, Eq)]
// In this order: the bytes first and the one-byte fields last, so that an
// event enum finds its tag at the end of a head and puts a body piece at
// its start, written and read back whole.
#[repr(C)]
pub struct FrameHead {
    // Kept small (it is moved with every head event): spans of `raw`, with
    // the default span for an absent header, and Byte-Range and Status
    // validated when parsed but read again from their spans on access.
    raw: Bytes,
    offset: u64,
    to_path: Span,
    from_path: Span,
    message_id: Span,
    byte_range: Span,
    status: Span,
    content_type: Span,
    start: StartKind,
    /// The headers run from here to the end of `raw`.
    headers_start: u32,
    header_count: u16,
    /// The transaction id is `raw[5..5 + txid_len]`, after "MSRP ".
    txid_len: u8,
    success_report: Option<bool>,
    failure_report: Option<FailureReport>,
    has_body: bool,
}

impl fmt::Debug for FrameHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameHead")
            .field("offset", &self.offset)
            .field("raw", &String::from_utf8_lossy(&self.raw))
            .field("has_body", &self.has_body)
            .finish()
    }
}

impl FrameHead {
    fn text(&self, span: Span) -> &str {
        // Every span was checked to be UTF-8 text when the head was parsed.
        self.raw.get(span.range()).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default()
    }

    /// A copy that shares nothing with the segment it was read from: a head
    /// kept for long must not keep its whole read alive.
    #[must_use]
    pub fn detached(&self) -> Self {
        let mut head = self.clone();
        head.raw = Bytes::copy_from_slice(&self.raw);
        head
    }

    /// The head's bytes: start line through the last header's CRLF.
    #[must_use]
    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }

    /// Absolute offset of the frame's first byte in the connection's stream.
    #[must_use]
    pub const fn offset(&self) -> u64 {
        self.offset
    }

    fn txid_span(&self) -> Span {
        Span::new(5, 5 + usize::from(self.txid_len))
    }

    /// The transaction id as text.
    #[must_use]
    pub fn txid(&self) -> &str {
        self.text(self.txid_span())
    }

    /// The transaction id's bytes (ASCII, validated).
    pub(crate) fn txid_bytes(&self) -> &[u8] {
        self.raw.get(self.txid_span().range()).unwrap_or_default()
    }

    /// The transaction id, sharing the received bytes.
    #[must_use]
    pub fn transaction_id(&self) -> TransactionId {
        TransactionId::from_validated(self.raw.slice(self.txid_span().range()))
    }

    /// Whether this is a request.
    #[must_use]
    pub const fn is_request(&self) -> bool {
        matches!(self.start, StartKind::Request { .. })
    }

    /// The method of a request.
    #[must_use]
    pub const fn method(&self) -> Option<Method> {
        match self.start {
            StartKind::Request { method, .. } => Some(method),
            StartKind::Response { .. } => None,
        }
    }

    /// The method name of a request as written (`SEND`, `NICKNAME` ...).
    #[must_use]
    pub fn method_name(&self) -> Option<&str> {
        match self.start {
            StartKind::Request { name, .. } => Some(self.text(name)),
            StartKind::Response { .. } => None,
        }
    }

    /// The status code of a response.
    #[must_use]
    pub const fn status_code(&self) -> Option<u16> {
        match self.start {
            StartKind::Response { status, .. } => Some(status),
            StartKind::Request { .. } => None,
        }
    }

    /// The comment of a response: `Some("")` when the code is followed by a
    /// bare SP, `None` when no SP follows it or for a request.
    #[must_use]
    pub fn comment(&self) -> Option<&str> {
        match self.start {
            StartKind::Response { comment, .. } => comment.present().map(|span| self.text(span)),
            StartKind::Request { .. } => None,
        }
    }

    /// Every header line in wire order, To-Path and From-Path included.
    pub fn headers(&self) -> impl Iterator<Item = Header<'_>> + '_ {
        let block = self.text(Span::new(self.headers_start as usize, self.raw.len()));
        block.split_terminator("\r\n").map(|line| {
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            Header { name, value: value.strip_prefix(' ').unwrap_or(value) }
        })
    }

    /// The number of header lines.
    #[must_use]
    pub const fn header_count(&self) -> usize {
        self.header_count as usize
    }

    /// The value of the first header named `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value)
    }

    /// The To-Path value as written.
    #[must_use]
    pub fn to_path_str(&self) -> &str {
        self.text(self.to_path)
    }

    /// The From-Path value as written.
    #[must_use]
    pub fn from_path_str(&self) -> &str {
        self.text(self.from_path)
    }

    /// The To-Path URIs as written on the wire, leftmost (next hop) first.
    pub fn to_path(&self) -> impl Iterator<Item = &str> + '_ {
        self.to_path_str().split(' ')
    }

    /// The From-Path URIs as written on the wire, leftmost (previous hop) first.
    pub fn from_path(&self) -> impl Iterator<Item = &str> + '_ {
        self.from_path_str().split(' ')
    }

    fn uris(&self, span: Span) -> impl Iterator<Item = MsrpUri> + '_ {
        let value = self.raw.slice(span.range());
        let text = self.text(span);
        text.split(' ').filter_map(move |u| MsrpUri::parse(value.slice_ref(u.as_bytes())).ok())
    }

    /// The To-Path as parsed URIs, sharing the received bytes.
    pub fn to_path_uris(&self) -> impl Iterator<Item = MsrpUri> + '_ {
        self.uris(self.to_path)
    }

    /// The From-Path as parsed URIs, sharing the received bytes.
    pub fn from_path_uris(&self) -> impl Iterator<Item = MsrpUri> + '_ {
        self.uris(self.from_path)
    }

    /// The Message-ID value.
    #[must_use]
    pub fn message_id_str(&self) -> Option<&str> {
        self.message_id.present().map(|s| self.text(s))
    }

    /// The Message-ID, sharing the received bytes.
    #[must_use]
    pub fn message_id(&self) -> Option<MessageId> {
        self.message_id.present().map(|s| MessageId::from_validated(self.raw.slice(s.range())))
    }

    /// The Byte-Range.
    #[must_use]
    pub fn byte_range(&self) -> Option<ByteRange> {
        // Validated by the same parse when the head was parsed.
        let value = self.raw.get(self.byte_range.present()?.range())?;
        ByteRange::parse(value).ok()
    }

    /// The Success-Report value (`yes` is `true`).
    #[must_use]
    pub const fn success_report(&self) -> Option<bool> {
        self.success_report
    }

    /// The Failure-Report value.
    #[must_use]
    pub const fn failure_report(&self) -> Option<FailureReport> {
        self.failure_report
    }

    /// The Status value, parsed (it was validated by the same parse).
    fn status_value(&self) -> Option<(Status, Option<Span>)> {
        let span = self.status.present()?;
        parse_status(self.raw.get(span.range())?, span.start())
    }

    /// The Status header of a REPORT (or any frame that carries one).
    #[must_use]
    pub fn status(&self) -> Option<Status> {
        self.status_value().map(|(status, _)| status)
    }

    /// The comment of the Status header.
    #[must_use]
    pub fn status_comment(&self) -> Option<&str> {
        self.status_value().and_then(|(_, comment)| comment).map(|s| self.text(s))
    }

    /// The full Content-Type value (media type and parameters).
    #[must_use]
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.present().map(|s| self.text(s))
    }

    /// The media type of Content-Type without parameters (`text/plain`).
    #[must_use]
    pub fn media_type(&self) -> Option<&str> {
        self.content_type().map(|v| v.split(';').next().unwrap_or(v).trim_end())
    }

    /// The parameters of Content-Type as `(name, value)` pairs, quotes kept.
    pub fn content_type_params(&self) -> impl Iterator<Item = (&str, Option<&str>)> + '_ {
        self.content_type().into_iter().flat_map(|v| {
            v.split(';').skip(1).map(|p| {
                let p = p.trim_start();
                match p.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (p, None),
                }
            })
        })
    }

    /// Whether a body section follows the head (possibly empty).
    #[must_use]
    pub const fn has_body(&self) -> bool {
        self.has_body
    }

    /// The Use-Path URIs (RFC 4976 s.5.1).
    pub fn use_path(&self) -> impl Iterator<Item = &str> + '_ {
        self.header("Use-Path").into_iter().flat_map(|v| v.split(' '))
    }

    /// The Expires value in seconds (RFC 4976 s.5.1).
    #[must_use]
    pub fn expires(&self) -> Option<u32> {
        self.header_u32("Expires")
    }

    /// The Min-Expires value in seconds (RFC 4976 s.5.1).
    #[must_use]
    pub fn min_expires(&self) -> Option<u32> {
        self.header_u32("Min-Expires")
    }

    /// The Max-Expires value in seconds (RFC 4976 s.5.1).
    #[must_use]
    pub fn max_expires(&self) -> Option<u32> {
        self.header_u32("Max-Expires")
    }

    /// The WWW-Authenticate challenge (RFC 4976 s.5.1), as written.
    #[must_use]
    pub fn www_authenticate(&self) -> Option<&str> {
        self.header("WWW-Authenticate")
    }

    /// The Authorization credentials (RFC 4976 s.5.1), as written.
    #[must_use]
    pub fn authorization(&self) -> Option<&str> {
        self.header("Authorization")
    }

    /// The Authentication-Info value (RFC 4976 s.5.1), as written.
    #[must_use]
    pub fn authentication_info(&self) -> Option<&str> {
        self.header("Authentication-Info")
    }

    fn header_u32(&self, name: &str) -> Option<u32> {
        self.header(name).and_then(|v| v.parse().ok())
    }
}

/// Where the head parser is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    StartLine,
    ToPath,
    FromPath,
    Headers,
    AfterContentType,
}

/// What a completed head line did. [`HeadParser::step`] returns the head as
/// its length ([`HeadLen`]); [`HeadStep::built`] makes it a [`FrameHead`].
#[derive(Debug)]
pub(crate) enum HeadStep<H = FrameHead> {
    /// Need more bytes (no complete line at `line_start`).
    NeedMore,
    /// The head ended with a blank line: a body follows. `consumed` counts the blank line.
    Body { head: H, consumed: usize },
    /// The head ended with the end-line: the frame is complete.
    Bodiless { head: H, flag: Flag, consumed: usize },
    /// A recoverable error on a complete header line ending at `consumed`: the
    /// framer skips to the end-line (its search starts at the CRLF at `consumed - 2`).
    Skip { rejected: Rejection, consumed: usize },
    /// A recoverable error found at the end-line: the frame ends at `consumed`.
    Ended { rejected: Rejection, consumed: usize },
}

/// A parsed head not yet built: the length of its bytes from the frame's
/// first byte. The framer builds the [`FrameHead`] where it returns it
/// ([`HeadParser::head`]): a head built inside the parser would be moved out
/// of it through every caller, field by field.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadLen(pub(crate) usize);

impl HeadStep<HeadLen> {
    /// This step with its head built over `raw(0..len)` (the frame's bytes),
    /// by the parser that took the step.
    pub(crate) fn built(self, parser: &HeadParser, raw: impl FnOnce(std::ops::Range<usize>) -> Bytes) -> HeadStep {
        match self {
            Self::NeedMore => HeadStep::NeedMore,
            Self::Body { head: HeadLen(len), consumed } => {
                HeadStep::Body { head: parser.head(raw(0..len), true), consumed }
            }
            Self::Bodiless { head: HeadLen(len), flag, consumed } => {
                HeadStep::Bodiless { head: parser.head(raw(0..len), false), flag, consumed }
            }
            Self::Skip { rejected, consumed } => HeadStep::Skip { rejected, consumed },
            Self::Ended { rejected, consumed } => HeadStep::Ended { rejected, consumed },
        }
    }
}

/// A frame rejected without losing the framing.
#[derive(Debug)]
pub(crate) struct Rejection {
    pub(crate) transaction_id: TransactionId,
    pub(crate) is_request: bool,
    pub(crate) is_report: bool,
    pub(crate) error: ParseError,
}

/// Bits of headers that may appear once.
mod seen {
    pub(super) const MESSAGE_ID: u16 = 1;
    pub(super) const BYTE_RANGE: u16 = 1 << 1;
    pub(super) const SUCCESS_REPORT: u16 = 1 << 2;
    pub(super) const FAILURE_REPORT: u16 = 1 << 3;
    pub(super) const STATUS: u16 = 1 << 4;
    pub(super) const USE_PATH: u16 = 1 << 5;
    pub(super) const EXPIRES: u16 = 1 << 6;
    pub(super) const MIN_EXPIRES: u16 = 1 << 7;
    pub(super) const MAX_EXPIRES: u16 = 1 << 8;
}

/// Room for the To-Path and From-Path lines that [`HeadCache`] remembers.
const PATH_ROOM: usize = 256;
/// Room for the Content-Type value (and its CRLF) that [`HeadCache`] remembers.
const CONTENT_TYPE_ROOM: usize = 64;

/// Header lines of the latest heads that took the one-pass path, to accept
/// the same bytes again by comparing them instead of parsing them.
///
/// Every frame of a session carries the same paths (RFC 4975 s.7.1: To-Path
/// and From-Path name the session's URIs), and every chunk of a message the
/// same Content-Type, so most heads repeat these bytes. Bytes the one-pass
/// path accepted once it accepts again (its outcome depends only on them and
/// on the limits, which are checked again), so a hit changes nothing but the
/// work done.
#[derive(Clone)]
pub(crate) struct HeadCache {
    /// The To-Path and From-Path lines, CRLFs included.
    paths: [u8; PATH_ROOM],
    /// Length of the two lines, 0 when empty.
    len: u16,
    /// Length of the To-Path value.
    to_len: u16,
    /// Length of the From-Path value.
    from_len: u16,
    /// A Content-Type value and its CRLF.
    content_type: [u8; CONTENT_TYPE_ROOM],
    /// Length of the value and its CRLF, 0 when empty.
    content_type_len: u8,
}

impl fmt::Debug for HeadCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeadCache")
            .field("paths", &String::from_utf8_lossy(self.paths.get(..usize::from(self.len)).unwrap_or_default()))
            .field(
                "content_type",
                &String::from_utf8_lossy(
                    self.content_type.get(..usize::from(self.content_type_len)).unwrap_or_default(),
                ),
            )
            .finish()
    }
}

impl Default for HeadCache {
    fn default() -> Self {
        Self {
            paths: [0; PATH_ROOM],
            len: 0,
            to_len: 0,
            from_len: 0,
            content_type: [0; CONTENT_TYPE_ROOM],
            content_type_len: 0,
        }
    }
}

impl HeadCache {
    /// The length of the remembered Content-Type value when `value` starts
    /// with it and its CRLF.
    #[inline(always)]
    fn content_type_at(&self, value: &[u8]) -> Option<usize> {
        let n = usize::from(self.content_type_len);
        let (Some(got), Some(want)) = (value.get(..n), self.content_type.get(..n)) else { return None };
        // Up to 16 bytes (as "text/plain" and its CRLF), two overlapping
        // words compare them all without a call.
        let same =
            match (got.first_chunk::<8>(), got.last_chunk::<8>(), want.first_chunk::<8>(), want.last_chunk::<8>()) {
                (Some(a), Some(b), Some(c), Some(d)) if n <= 16 => a == c && b == d,
                _ => got == want,
            };
        (n != 0 && same).then(|| n - 2)
    }

    /// Whether `data` starts with the remembered To-Path and From-Path lines.
    #[inline(always)]
    fn paths_at(&self, data: &[u8]) -> bool {
        let len = usize::from(self.len);
        data.get(..len) == self.paths.get(..len)
    }

    /// Remembers the To-Path and From-Path lines `data[start..end]`, whose
    /// values are `to_path` and `from_path`, if they fit.
    fn remember_paths(&mut self, data: &[u8], start: usize, end: usize, to_path: Span, from_path: Span) {
        let lines = end - start;
        if let (Some(src), Some(dst)) = (data.get(start..end), self.paths.get_mut(..lines)) {
            dst.copy_from_slice(src);
            // Both fit the cache, so every length below fits u16.
            self.len = lines as u16;
            self.to_len = to_path.range().len() as u16;
            self.from_len = from_path.range().len() as u16;
        }
    }

    /// Remembers the Content-Type value `value[..len]`, followed by CRLF, if it fits.
    fn remember_content_type(&mut self, value: &[u8], len: usize) {
        if let (Some(src), Some(dst)) = (value.get(..len + 2), self.content_type.get_mut(..len + 2)) {
            dst.copy_from_slice(src);
            // It fits the cache, so its length fits u8.
            self.content_type_len = (len + 2) as u8;
        }
    }
}

/// `"To-Path: "`, the start of the To-Path line.
const TO_PATH: &[u8] = b"To-Path: ";
/// `"From-Path: "`, the start of the From-Path line.
const FROM_PATH: &[u8] = b"From-Path: ";

/// Parses a head line by line, over bytes that start at the frame's first byte.
#[derive(Debug)]
pub(crate) struct HeadParser {
    frame_offset: u64,
    line_start: usize,
    stage: Stage,
    txid: Span,
    start: StartKind,
    headers_start: usize,
    header_count: u16,
    to_path: Span,
    from_path: Span,
    message_id: Span,
    byte_range: Span,
    success_report: Option<bool>,
    failure_report: Option<FailureReport>,
    status: Span,
    content_type: Span,
    first_mime: Option<usize>,
    seen: u16,
    /// Whether [`HeadParser::step`] ran since [`HeadParser::new`]: a parser
    /// only [`HeadParser::fast_head`] read is as new.
    stepped: bool,
}

/// Result of looking for a line at the parser's cursor.
enum Line {
    /// A complete line `[start, end)`, its CRLF at `end`; `true` when every
    /// byte of it is HTAB or %x20-7E (so any part of it is `utf8text`).
    Complete(usize, bool),
    NeedMore,
}

impl HeadParser {
    pub(crate) fn new(frame_offset: u64) -> Self {
        Self {
            frame_offset,
            line_start: 0,
            stage: Stage::StartLine,
            txid: Span::default(),
            start: StartKind::Response { status: 0, comment: Span::default() },
            headers_start: 0,
            header_count: 0,
            to_path: Span::default(),
            from_path: Span::default(),
            message_id: Span::default(),
            byte_range: Span::default(),
            success_report: None,
            failure_report: None,
            status: Span::default(),
            content_type: Span::default(),
            first_mime: None,
            seen: 0,
            stepped: false,
        }
    }

    /// Makes this the parser of the frame that starts at `frame_offset`, as
    /// [`HeadParser::new`] does, writing only the offset when no step ran.
    #[inline]
    pub(crate) fn restart(&mut self, frame_offset: u64) {
        if self.stepped {
            *self = Self::new(frame_offset);
        } else {
            self.frame_offset = frame_offset;
        }
    }

    /// Absolute offset of the frame's first byte.
    pub(crate) const fn frame_offset(&self) -> u64 {
        self.frame_offset
    }

    fn rejection(&self, error: ParseError, raw: &impl Fn(std::ops::Range<usize>) -> Bytes) -> Rejection {
        Rejection {
            transaction_id: TransactionId::from_validated(raw(self.txid.range())),
            is_request: self.is_request(),
            is_report: matches!(self.start, StartKind::Request { method: Method::Report, .. }),
            error,
        }
    }

    /// Bytes of the frame already taken as complete lines.
    pub(crate) const fn line_start(&self) -> usize {
        self.line_start
    }

    fn at(&self, i: usize) -> u64 {
        self.frame_offset + i as u64
    }

    /// The transaction id's bytes once the start line was parsed.
    pub(crate) fn txid<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        data.get(self.txid.range()).unwrap_or_default()
    }

    /// Whether the frame is a request whose method is not SEND.
    pub(crate) fn is_non_send_request(&self) -> bool {
        matches!(self.start, StartKind::Request { method, .. } if method != Method::Send)
    }

    /// Finds the line at the cursor in `data`, enforcing line and head limits
    /// and CRLF-only line endings. The outcome depends only on the bytes, never
    /// on how much of them is available beyond what decides it.
    fn find_line(&self, data: &[u8], limits: &super::Limits) -> Result<Line, ParseError> {
        let start = self.line_start;
        let line_cap = start.saturating_add(limits.max_line());
        // The CRLF must end within the head limit: CR at most at max_head - 2.
        let head_cap = limits.max_head().saturating_sub(2);
        let cap = line_cap.min(head_cap);
        let window_end = (cap + 1).min(data.len());
        let window = data.get(start..window_end).unwrap_or_default();
        // CR and LF are not plain text, so the first CR or LF is at or after
        // the plain prefix, and usually right at its end.
        let plain = plain_text_len(window);
        let found = match window.get(plain) {
            Some(b'\r' | b'\n') => Some(plain),
            Some(_) => memchr::memchr2(b'\r', b'\n', &window[plain..]).map(|i| plain + i),
            None => None,
        };
        match found {
            Some(i) => {
                let p = start + i;
                if window[i] == b'\n' {
                    // RFC 4975 s.9: lines end with CRLF; a bare LF is not one.
                    return Err(ParseError::LineEnding { at: self.at(p) });
                }
                match data.get(p + 1) {
                    None => Ok(Line::NeedMore),
                    Some(b'\n') => Ok(Line::Complete(p, i == plain)),
                    Some(_) => Err(ParseError::LineEnding { at: self.at(p) }),
                }
            }
            None if data.len() > cap => {
                if line_cap <= head_cap {
                    Err(ParseError::LineTooLong { at: self.at(start), limit: limits.max_line() })
                } else {
                    Err(ParseError::HeadTooLong { at: self.at(limits.max_head()), limit: limits.max_head() })
                }
            }
            None => Ok(Line::NeedMore),
        }
    }

    /// Takes every complete line of `data` (the frame's bytes from its first
    /// byte) until the head ends, more bytes are needed, or an error.
    pub(crate) fn step(
        &mut self,
        data: &[u8],
        raw: impl Fn(std::ops::Range<usize>) -> Bytes,
        limits: &super::Limits,
        cache: &mut HeadCache,
    ) -> Result<HeadStep<HeadLen>, ParseError> {
        self.step_with(data, raw, limits, Some(cache))
    }

    /// [`HeadParser::step`], with the one-pass line paths on (given their
    /// cache) or, for the tests that check they agree with the general path,
    /// off.
    fn step_with(
        &mut self,
        data: &[u8],
        raw: impl Fn(std::ops::Range<usize>) -> Bytes,
        limits: &super::Limits,
        mut cache: Option<&mut HeadCache>,
    ) -> Result<HeadStep<HeadLen>, ParseError> {
        self.stepped = true;
        let one_pass = cache.is_some();
        if self.stage == Stage::StartLine {
            // Garbage where a frame should start is refused at its first byte,
            // not after a whole line of it.
            if !data.starts_with(b"MSRP ") {
                let seen = data.len().min(5);
                if let Some(bad) = data[..seen].iter().zip(b"MSRP ").position(|(a, b)| a != b) {
                    return Err(ParseError::StartLine { at: self.at(bad) });
                }
            }
        }
        loop {
            let fast = match (cache.as_deref_mut(), self.stage) {
                (None, _) => None,
                (Some(_), Stage::StartLine) => self.fast_start_line(data, limits),
                (Some(cache), Stage::ToPath) => self.fast_paths(data, limits, cache),
                (Some(cache), _) => self.fast_header(data, limits, cache),
            };
            if let Some(next) = fast {
                self.line_start = next;
                continue;
            }
            // The blank line that ends the headers of a frame with a body, taken
            // as `find_line` would: its CR within the head limit.
            let start = self.line_start;
            if one_pass
                && self.stage != Stage::StartLine
                && data.get(start..start + 2) == Some(b"\r\n")
                && start <= limits.max_head().saturating_sub(2)
            {
                return Ok(self.blank_line(start, &raw));
            }
            let (end, plain) = match self.find_line(data, limits)? {
                Line::NeedMore => return Ok(HeadStep::NeedMore),
                Line::Complete(end, plain) => (end, plain),
            };
            let start = self.line_start;
            let line = &data[start..end];
            let next = end + 2;
            match self.stage {
                Stage::StartLine => {
                    self.start_line(line)?;
                    self.headers_start = next;
                    self.stage = Stage::ToPath;
                }
                _ if line.first() == Some(&b'-') => return self.bodiless(data, line, start, &raw),
                _ if line.is_empty() => return Ok(self.blank_line(start, &raw)),
                _ => {
                    self.header_count += 1;
                    if usize::from(self.header_count) > limits.max_headers() {
                        return Err(ParseError::TooManyHeaders { at: self.at(start), limit: limits.max_headers() });
                    }
                    if let Err(error) = self.header_line(line, start, plain) {
                        // A header-level error leaves the framing intact: the
                        // transaction id is known, so skip to its end-line.
                        self.line_start = next;
                        return Ok(HeadStep::Skip { rejected: self.rejection(error, &raw), consumed: next });
                    }
                }
            }
            self.line_start = next;
        }
    }

    /// Takes a complete, valid start line in one pass when its transaction id
    /// and method or status code are followed by nothing unusual, and returns
    /// where the headers start. `None` (nothing changed) leaves the line to
    /// the general path, which also locates every error; see
    /// [`HeadParser::fast_header`] for why both agree.
    #[inline(always)]
    fn fast_start_line(&mut self, data: &[u8], limits: &super::Limits) -> Option<usize> {
        let cap = limits.max_line().min(limits.max_head().saturating_sub(2));
        let line = data.get(..(cap + 2).min(data.len()))?;
        // RFC 4975 s.9: req-start = pMSRP SP transact-id SP method CRLF
        let rest = line.strip_prefix(b"MSRP ")?;
        // transact-id = ident = ALPHANUM 3*31ident-char
        let id_len = ident_len(rest)?;
        if rest.get(id_len) != Some(&b' ') {
            return None;
        }
        let after = 5 + id_len + 1;
        let tail = line.get(after..)?;
        let (start, end) = match tail.first()? {
            // method = mSEND / mREPORT / other-method; other-method = 1*UPALPHA
            b'S' if tail.starts_with(b"SEND\r\n") => {
                (StartKind::Request { method: Method::Send, name: Span::new(after, after + 4) }, after + 4)
            }
            b'A'..=b'Z' => {
                let n = tail.iter().position(|b| !b.is_ascii_uppercase())?;
                let name = Span::new(after, after + n);
                (StartKind::Request { method: Method::from_name(tail.get(..n)?), name }, after + n)
            }
            // resp-start = pMSRP SP transact-id SP status-code [SP comment] CRLF
            b'0'..=b'9' => {
                let code = tail.get(..3).filter(|c| c.iter().all(u8::is_ascii_digit))?;
                let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
                match tail.get(3)? {
                    b' ' => {
                        // comment = utf8text; plain text is utf8text.
                        let comment = tail.get(4..)?;
                        let n = plain_text_len(comment);
                        let span = Span::new(after + 4, after + 4 + n);
                        (StartKind::Response { status, comment: span }, after + 4 + n)
                    }
                    _ => (StartKind::Response { status, comment: Span::default() }, after + 3),
                }
            }
            _ => return None,
        };
        // RFC 4975 s.9: the line ends with CRLF.
        if line.get(end..end + 2)? != b"\r\n" {
            return None;
        }
        self.txid = Span::new(5, 5 + id_len);
        self.start = start;
        self.headers_start = end + 2;
        self.stage = Stage::ToPath;
        Some(end + 2)
    }

    /// Takes the header line at the cursor in one pass when it is a complete,
    /// valid To-Path, From-Path, Message-ID, Byte-Range or Content-Type line
    /// of the common shape, and returns where the next line starts. `None`
    /// (nothing changed) leaves the line to [`HeadParser::find_line`] and
    /// [`HeadParser::header_line`], which also locate every error.
    ///
    /// Each value scanner stops at the first byte outside its grammar, which
    /// must be the CR of a CRLF within the line and head limits; every byte
    /// before it is then HTAB or %x20-7E, so the general path would have found
    /// the same line, called it plain, and accepted it with the same effects.
    /// The scanners see the bytes past the limits too: a line they accept is
    /// refused after all when its CR lies beyond them.
    #[inline(always)]
    fn fast_header(&mut self, data: &[u8], limits: &super::Limits, cache: &mut HeadCache) -> Option<usize> {
        if usize::from(self.header_count) >= limits.max_headers() {
            return None;
        }
        let start = self.line_start;
        // RFC 4975 s.9: ext-header = hname ":" SP hval. Only the names as RFC
        // 4975 spells them take this path; any other spelling (header names are
        // case-insensitive) takes the general one.
        let next = match (data.get(start)?, self.stage) {
            (b'T', Stage::ToPath) => {
                let (span, next) = path_line(data, start, TO_PATH, limits)?;
                self.to_path = span;
                self.stage = Stage::FromPath;
                next
            }
            (b'F', Stage::FromPath) => {
                let (span, next) = path_line(data, start, FROM_PATH, limits)?;
                self.from_path = span;
                self.stage = Stage::Headers;
                next
            }
            (b'M', Stage::Headers) if self.seen & seen::MESSAGE_ID == 0 => {
                let (span, next) = message_id_line(data, start, limits)?;
                self.seen |= seen::MESSAGE_ID;
                self.message_id = span;
                next
            }
            (b'B', Stage::Headers) if self.seen & seen::BYTE_RANGE == 0 => {
                let (span, next) = byte_range_line(data, start, limits)?;
                self.seen |= seen::BYTE_RANGE;
                self.byte_range = span;
                next
            }
            (b'C', Stage::Headers) => {
                let (span, next) = content_type_line(data, start, limits, cache)?;
                self.content_type = span;
                self.stage = Stage::AfterContentType;
                next
            }
            _ => return None,
        };
        self.header_count += 1;
        Some(next)
    }

    /// Takes the To-Path line and the From-Path line at the cursor as
    /// [`HeadParser::fast_header`] does, comparing them with `cache` first and
    /// remembering them there; returns where the next line starts, `None`
    /// (nothing changed) when not even the To-Path line takes the one-pass path.
    #[inline(always)]
    fn fast_paths(&mut self, data: &[u8], limits: &super::Limits, cache: &mut HeadCache) -> Option<usize> {
        let start = self.line_start;
        if let Some((to_path, from_path, next)) = cached_paths(data, start, limits, cache) {
            self.to_path = to_path;
            self.from_path = from_path;
            self.header_count = 2;
            self.stage = Stage::Headers;
            return Some(next);
        }
        let to_end = self.fast_header(data, limits, cache)?;
        self.line_start = to_end;
        let Some(from_end) = self.fast_header(data, limits, cache) else { return Some(to_end) };
        cache.remember_paths(data, start, from_end, self.to_path, self.from_path);
        Some(from_end)
    }

    /// The whole head at the start of `data`, in one pass, when it is a SEND
    /// request of the common shape: the start line, To-Path, From-Path, then
    /// Message-ID and Byte-Range in any order (each at most once, both
    /// optional), then Content-Type, each as [`HeadParser::fast_header`]
    /// takes it, and the blank line. The parser must be at the frame's first
    /// byte, and stays there: `None` leaves the head to [`HeadParser::step`].
    ///
    /// Every line is one the line-by-line paths accept with the same effects,
    /// under the same limits, so the head is the one `step` would build: this
    /// path only spares the parser's state, written and read back line by
    /// line, for the usual chunk of a message.
    #[inline(always)]
    pub(crate) fn fast_head(&self, input: &Bytes, limits: &super::Limits, cache: &mut HeadCache) -> Option<FrameHead> {
        let data: &[u8] = input;
        // RFC 4975 s.9: req-start = pMSRP SP transact-id SP method CRLF, with
        // transact-id = ident = ALPHANUM 3*31ident-char, and method SEND.
        let rest = data.strip_prefix(b"MSRP ")?;
        let id_len = ident_len(rest)?;
        if rest.get(id_len..id_len + 7)? != b" SEND\r\n" {
            return None;
        }
        let name_at = 5 + id_len + 1;
        let headers_start = name_at + 6;
        // The start line's CR within the line and head limits, as `find_line` wants it.
        if name_at + 4 > limits.max_line().min(limits.max_head().saturating_sub(2)) {
            return None;
        }
        let (to_path, from_path, mut at) = match cached_paths(data, headers_start, limits, cache) {
            Some(paths) => paths,
            None => {
                if limits.max_headers() < 2 {
                    return None;
                }
                let (to_path, from_at) = path_line(data, headers_start, TO_PATH, limits)?;
                let (from_path, end) = path_line(data, from_at, FROM_PATH, limits)?;
                cache.remember_paths(data, headers_start, end, to_path, from_path);
                (to_path, from_path, end)
            }
        };
        let (mut message_id, mut byte_range) = (Span::default(), Span::default());
        let mut header_count = 2u16;
        loop {
            if usize::from(header_count) >= limits.max_headers() {
                return None;
            }
            header_count += 1;
            match data.get(at)? {
                b'M' if message_id.present().is_none() => (message_id, at) = message_id_line(data, at, limits)?,
                b'B' if byte_range.present().is_none() => (byte_range, at) = byte_range_line(data, at, limits)?,
                b'C' => break,
                _ => return None,
            }
        }
        let (content_type, end) = content_type_line(data, at, limits, cache)?;
        // RFC 4975 s.9: the blank line that ends the headers, its CR within
        // the head limit, as `find_line` wants it.
        if data.get(end..end + 2)? != b"\r\n" || end > limits.max_head().saturating_sub(2) {
            return None;
        }
        // The head's bytes start the input: a clone cut short is their slice.
        let mut raw = input.clone();
        raw.truncate(end);
        Some(FrameHead {
            raw,
            offset: self.frame_offset,
            // 4 to 32 bytes (`ident_len`).
            txid_len: id_len as u8,
            start: StartKind::Request { method: Method::Send, name: Span::new(name_at, name_at + 4) },
            headers_start: headers_start as u32,
            header_count,
            to_path,
            from_path,
            message_id,
            byte_range,
            success_report: None,
            failure_report: None,
            status: Span::default(),
            content_type,
            has_body: true,
        })
    }

    fn start_line(&mut self, line: &[u8]) -> Result<(), ParseError> {
        // RFC 4975 s.9: req-start = pMSRP SP transact-id SP method CRLF;
        // pMSRP = %x4D.53.52.50 ; MSRP in caps
        if !line.starts_with(b"MSRP ") {
            let bad = line.iter().zip(b"MSRP ").position(|(a, b)| a != b).unwrap_or(line.len());
            return Err(ParseError::StartLine { at: self.at(bad) });
        }
        let rest = &line[5..];
        let sp = memchr::memchr(b' ', rest).unwrap_or(rest.len());
        let txid = &rest[..sp];
        // transact-id = ident = ALPHANUM 3*31ident-char
        check_ident(txid).map_err(|i| ParseError::TransactionId { at: self.at(5 + i) })?;
        self.txid = Span::new(5, 5 + sp);
        let after = 5 + sp + 1;
        let tail = line.get(after..).ok_or(ParseError::StartLine { at: self.at(line.len()) })?;
        if tail.first().is_some_and(u8::is_ascii_digit) {
            // resp-start = pMSRP SP transact-id SP status-code [SP comment] CRLF
            let code = tail.get(..3).filter(|c| c.iter().all(u8::is_ascii_digit));
            let Some(code) = code else {
                let bad = tail.iter().position(|b| !b.is_ascii_digit()).unwrap_or(tail.len());
                return Err(ParseError::StartLine { at: self.at(after + bad) });
            };
            let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
            let comment = match tail.get(3) {
                None => Span::default(),
                Some(b' ') => {
                    check_utf8text(&tail[4..]).map_err(|i| ParseError::StartLine { at: self.at(after + 4 + i) })?;
                    Span::new(after + 4, line.len())
                }
                Some(_) => return Err(ParseError::StartLine { at: self.at(after + 3) }),
            };
            self.start = StartKind::Response { status, comment };
        } else {
            // method = mSEND / mREPORT / other-method; other-method = 1*UPALPHA
            if let Some(bad) = tail.iter().position(|b| !b.is_ascii_uppercase()) {
                return Err(ParseError::StartLine { at: self.at(after + bad) });
            }
            if tail.is_empty() {
                return Err(ParseError::StartLine { at: self.at(after) });
            }
            self.start = StartKind::Request { method: Method::from_name(tail), name: Span::new(after, line.len()) };
        }
        Ok(())
    }

    fn end_line(&self, data: &[u8], line: &[u8], start: usize) -> Result<Flag, ParseError> {
        // RFC 4975 s.9: end-line = "-------" transact-id continuation-flag CRLF
        let bad = ParseError::EndLine { at: self.at(start) };
        let rest = line.strip_prefix(b"-------").ok_or(bad)?;
        let (&flag, id) = rest.split_last().ok_or(bad)?;
        if id != self.txid(data) {
            return Err(bad);
        }
        Flag::from_byte(flag).ok_or(bad)
    }

    /// The head over `raw`, the frame's bytes up to the line that ends the
    /// headers, once [`HeadParser::step`] returned its [`HeadLen`].
    #[inline(always)]
    pub(crate) fn head(&self, raw: Bytes, has_body: bool) -> FrameHead {
        FrameHead {
            raw,
            offset: self.frame_offset,
            // The transaction id was validated: 4 to 32 bytes.
            txid_len: u8::try_from(self.txid.range().len()).unwrap_or(u8::MAX),
            start: self.start,
            headers_start: self.headers_start as u32,
            header_count: self.header_count,
            to_path: self.to_path,
            from_path: self.from_path,
            message_id: self.message_id,
            byte_range: self.byte_range,
            success_report: self.success_report,
            failure_report: self.failure_report,
            status: self.status,
            content_type: self.content_type,
            has_body,
        }
    }

    fn end_of_headers(&self, start: usize) -> Result<(), ParseError> {
        match self.stage {
            // RFC 4975 s.9: headers = To-Path CRLF From-Path CRLF ...
            Stage::StartLine | Stage::ToPath | Stage::FromPath => Err(ParseError::PathOrder { at: self.at(start) }),
            _ => Ok(()),
        }
    }

    fn bodiless(
        &self,
        data: &[u8],
        line: &[u8],
        start: usize,
        raw: &impl Fn(std::ops::Range<usize>) -> Bytes,
    ) -> Result<HeadStep<HeadLen>, ParseError> {
        let flag = self.end_line(data, line, start)?;
        let consumed = start + line.len() + 2;
        let ended = |error| Ok(HeadStep::Ended { rejected: self.rejection(error, raw), consumed });
        if let Err(error) = self.end_of_headers(start) {
            return ended(error);
        }
        if self.stage == Stage::AfterContentType {
            // RFC 4975 s.7.1: "If a request has no body, it MUST NOT include a
            // Content-Type or any other MIME-specific header fields."
            return ended(ParseError::BodyContentType { at: self.at(start) });
        }
        if let Some(mime) = self.first_mime {
            return ended(ParseError::MimeHeaders { at: self.at(mime) });
        }
        Ok(HeadStep::Bodiless { head: HeadLen(start), flag, consumed })
    }

    fn blank_line(&self, start: usize, raw: &impl Fn(std::ops::Range<usize>) -> Bytes) -> HeadStep<HeadLen> {
        let consumed = start + 2;
        let skip = |error| HeadStep::Skip { rejected: self.rejection(error, raw), consumed };
        if let Err(error) = self.end_of_headers(start) {
            return skip(error);
        }
        if !self.is_request() {
            // RFC 4975 s.9: msrp-response = resp-start headers end-line
            return skip(ParseError::ResponseBody { at: self.at(start) });
        }
        if self.stage != Stage::AfterContentType {
            // RFC 4975 s.7.1: "[a body] MUST include a Content-Type header field."
            return skip(ParseError::BodyContentType { at: self.at(start) });
        }
        HeadStep::Body { head: HeadLen(start), consumed }
    }

    pub(crate) fn is_request(&self) -> bool {
        matches!(self.start, StartKind::Request { .. })
    }

    fn once(&mut self, bit: u16, start: usize) -> Result<(), ParseError> {
        if self.seen & bit != 0 {
            return Err(ParseError::DuplicateHeader { at: self.at(start) });
        }
        self.seen |= bit;
        Ok(())
    }

    fn header_line(&mut self, line: &[u8], start: usize, plain: bool) -> Result<(), ParseError> {
        // RFC 4975 s.9: ext-header = hname ":" SP hval; hname = ALPHA *token
        // (RFC 4976 s.5: MSRP has no line folding, so a leading SP is an error.)
        let header_err = |i: usize| ParseError::Header { at: self.at(start + i) };
        if !line.first().is_some_and(u8::is_ascii_alphabetic) {
            return Err(header_err(0));
        }
        let colon = line.iter().position(|&b| !TOKEN[usize::from(b)]).unwrap_or(line.len());
        if line.get(colon) != Some(&b':') {
            return Err(header_err(colon));
        }
        if line.get(colon + 1) != Some(&b' ') {
            return Err(header_err(colon + 1));
        }
        let (name, value) = line.split_at(colon);
        let value = value.get(2..).unwrap_or_default();
        let at = start + colon + 2;
        if !plain {
            check_utf8text(value).map_err(|i| header_err(colon + 2 + i))?;
        }
        let value_err = self.at(at);
        let known = KnownHeader::of(name);

        match self.stage {
            Stage::ToPath | Stage::FromPath => {
                let (want, span) = if self.stage == Stage::ToPath {
                    (KnownHeader::ToPath, &mut self.to_path)
                } else {
                    (KnownHeader::FromPath, &mut self.from_path)
                };
                if known != want {
                    return Err(ParseError::PathOrder { at: self.at(start) });
                }
                *span = Span::new(at, at + value.len());
                check_path(value).map_err(|i| ParseError::Path { at: self.at(at + i) })?;
                self.stage = if self.stage == Stage::ToPath { Stage::FromPath } else { Stage::Headers };
                return Ok(());
            }
            Stage::AfterContentType => {
                // content-stuff = *(Other-Mime-header CRLF) Content-Type 2CRLF data CRLF
                return Err(ParseError::MimeHeaders { at: self.at(start) });
            }
            Stage::StartLine | Stage::Headers => {}
        }

        match known {
            KnownHeader::ToPath | KnownHeader::FromPath => {
                return Err(ParseError::DuplicateHeader { at: self.at(start) });
            }
            KnownHeader::MessageId => {
                self.once(seen::MESSAGE_ID, start)?;
                // Message-ID = "Message-ID:" SP ident
                check_ident(value).map_err(|_| ParseError::MessageId { at: value_err })?;
                self.message_id = Span::new(at, at + value.len());
            }
            KnownHeader::ByteRange => {
                self.once(seen::BYTE_RANGE, start)?;
                ByteRange::parse(value).map_err(|()| ParseError::ByteRange { at: value_err })?;
                self.byte_range = Span::new(at, at + value.len());
            }
            KnownHeader::SuccessReport => {
                self.once(seen::SUCCESS_REPORT, start)?;
                // Success-Report = "Success-Report:" SP ("yes" / "no"), case-insensitive (RFC 5234 s.2.3)
                self.success_report = Some(match value {
                    v if v.eq_ignore_ascii_case(b"yes") => true,
                    v if v.eq_ignore_ascii_case(b"no") => false,
                    _ => return Err(ParseError::ReportPolicy { at: value_err }),
                });
            }
            KnownHeader::FailureReport => {
                self.once(seen::FAILURE_REPORT, start)?;
                // Failure-Report = "Failure-Report:" SP ("yes" / "no" / "partial")
                self.failure_report = Some(match value {
                    v if v.eq_ignore_ascii_case(b"yes") => FailureReport::Yes,
                    v if v.eq_ignore_ascii_case(b"no") => FailureReport::No,
                    v if v.eq_ignore_ascii_case(b"partial") => FailureReport::Partial,
                    _ => return Err(ParseError::ReportPolicy { at: value_err }),
                });
            }
            KnownHeader::Status => {
                self.once(seen::STATUS, start)?;
                parse_status(value, at).ok_or(ParseError::Status { at: value_err })?;
                self.status = Span::new(at, at + value.len());
            }
            KnownHeader::ContentType => {
                // Content-Type = "Content-Type:" SP media-type
                check_media_type(value).map_err(|i| ParseError::ContentType { at: self.at(at + i) })?;
                self.content_type = Span::new(at, at + value.len());
                self.stage = Stage::AfterContentType;
            }
            KnownHeader::UsePath => {
                self.once(seen::USE_PATH, start)?;
                check_path(value).map_err(|i| ParseError::Path { at: self.at(at + i) })?;
            }
            KnownHeader::Expires | KnownHeader::MinExpires | KnownHeader::MaxExpires => {
                let bit = match known {
                    KnownHeader::Expires => seen::EXPIRES,
                    KnownHeader::MinExpires => seen::MIN_EXPIRES,
                    _ => seen::MAX_EXPIRES,
                };
                self.once(bit, start)?;
                // RFC 4976 s.10: Expires = "Expires:" SP 1*DIGIT (a u32 number of seconds)
                if !parse_u64(value).is_some_and(|n| n <= u64::from(u32::MAX)) {
                    return Err(ParseError::Expires { at: value_err });
                }
            }
            KnownHeader::Other => {
                if name.len() > 8
                    && name.get(..8).is_some_and(|p| token_eq_lower(p, b"content-"))
                    && self.first_mime.is_none()
                {
                    // Other-Mime-header: only meaningful with a body (checked at the end of the head).
                    self.first_mime = Some(start);
                }
            }
        }
        Ok(())
    }
}

/// The header names the parser acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KnownHeader {
    ToPath,
    FromPath,
    MessageId,
    ByteRange,
    SuccessReport,
    FailureReport,
    Status,
    ContentType,
    UsePath,
    Expires,
    MinExpires,
    MaxExpires,
    Other,
}

impl KnownHeader {
    /// Classifies a header name (all `token` bytes, compared case-insensitively):
    /// its length and first letter pick one candidate, compared once.
    fn of(name: &[u8]) -> Self {
        let (want, known): (&[u8], Self) = match (name.len(), name.first().map_or(0, |b| b | 0x20)) {
            (7, b't') => (b"to-path", Self::ToPath),
            (9, b'f') => (b"from-path", Self::FromPath),
            (10, b'm') => (b"message-id", Self::MessageId),
            (10, b'b') => (b"byte-range", Self::ByteRange),
            (14, b's') => (b"success-report", Self::SuccessReport),
            (14, b'f') => (b"failure-report", Self::FailureReport),
            (6, b's') => (b"status", Self::Status),
            (12, b'c') => (b"content-type", Self::ContentType),
            (8, b'u') => (b"use-path", Self::UsePath),
            (7, b'e') => (b"expires", Self::Expires),
            (11, b'm') if name.get(1).is_some_and(|b| b | 0x20 == b'i') => (b"min-expires", Self::MinExpires),
            (11, b'm') => (b"max-expires", Self::MaxExpires),
            _ => return Self::Other,
        };
        if token_eq_lower(name, want) {
            known
        } else {
            Self::Other
        }
    }
}

/// Case-insensitive equality of `name`, made of `token` bytes, with `lower`,
/// made of lowercase letters and "-". Setting bit 0x20 maps a letter of either
/// case to its lowercase and keeps "-"; the only other byte it maps onto one of
/// them is CR (onto "-"), which is not a `token` byte. Folded without an early
/// exit so that it compiles to a few word operations.
fn token_eq_lower(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len() && name.iter().zip(lower).fold(0u8, |diff, (&a, &b)| diff | ((a | 0x20) ^ b)) == 0
}

/// The span of the value of `len` bytes that follows `name` in the line at
/// `start`, and where the next line starts, when CRLF follows the value
/// within the line and head limits.
#[inline(always)]
fn value_line(data: &[u8], start: usize, name: &[u8], len: usize, limits: &super::Limits) -> Option<(Span, usize)> {
    let end = name.len() + len;
    // RFC 4975 s.9: the line ends with CRLF. As in `find_line`, its CR
    // lies within the line limit and the head limit.
    if data.get(start + end..start + end + 2)? != b"\r\n"
        || end > limits.max_line()
        || start + end > limits.max_head().saturating_sub(2)
    {
        return None;
    }
    Some((Span::new(start + name.len(), start + end), start + end + 2))
}

/// The value of the To-Path or From-Path line (`name` is [`TO_PATH`] or
/// [`FROM_PATH`]) at `start` and where the next line starts, for a value of
/// the common shape ([`path_len`]).
#[inline(always)]
fn path_line(data: &[u8], start: usize, name: &[u8], limits: &super::Limits) -> Option<(Span, usize)> {
    // To-Path = "To-Path:" SP MSRP-URI *( SP MSRP-URI )
    // From-Path = "From-Path:" SP MSRP-URI *( SP MSRP-URI )
    let value = data.get(start..)?.strip_prefix(name)?;
    value_line(data, start, name, path_len(value)?, limits)
}

/// The value of the Message-ID line at `start` and where the next line starts.
#[inline(always)]
fn message_id_line(data: &[u8], start: usize, limits: &super::Limits) -> Option<(Span, usize)> {
    // Message-ID = "Message-ID:" SP ident
    const NAME: &[u8] = b"Message-ID: ";
    let value = data.get(start..)?.strip_prefix(NAME)?;
    value_line(data, start, NAME, ident_len(value)?, limits)
}

/// The value of the Byte-Range line at `start` and where the next line starts.
#[inline(always)]
fn byte_range_line(data: &[u8], start: usize, limits: &super::Limits) -> Option<(Span, usize)> {
    // Byte-Range = "Byte-Range:" SP range-start "-" range-end "/" total
    const NAME: &[u8] = b"Byte-Range: ";
    let value = data.get(start..)?.strip_prefix(NAME)?;
    let len = match short_byte_range_len(value) {
        Some(n) => n,
        None => {
            let (_, rest) = ByteRange::parse_leading(value).ok()?;
            value.len() - rest.len()
        }
    };
    value_line(data, start, NAME, len, limits)
}

/// The value of the Content-Type line at `start` (without quoted strings)
/// and where the next line starts, comparing it with the one in `cache`
/// first and remembering it there.
#[inline(always)]
fn content_type_line(
    data: &[u8],
    start: usize,
    limits: &super::Limits,
    cache: &mut HeadCache,
) -> Option<(Span, usize)> {
    // Content-Type = "Content-Type:" SP media-type
    const NAME: &[u8] = b"Content-Type: ";
    let value = data.get(start..)?.strip_prefix(NAME)?;
    let len = match cache.content_type_at(value) {
        Some(n) => n,
        None => {
            let n = match bare_media_type_len(value) {
                Some(n) => n,
                None => {
                    let n = run_len(value, &MEDIA_TYPE_PLAIN);
                    check_media_type(value.get(..n)?).ok()?;
                    n
                }
            };
            // A valid value followed by CRLF: the same bytes are valid again.
            if value.get(n..n + 2) == Some(b"\r\n") {
                cache.remember_content_type(value, n);
            }
            n
        }
    };
    value_line(data, start, NAME, len, limits)
}

/// The To-Path and From-Path values at `start` and where the next line
/// starts, when the two lines are those `cache` remembers and fit the limits
/// as [`path_line`] would take them (each CR within the line limit, the last
/// within the head limit, two headers allowed).
#[inline(always)]
fn cached_paths(data: &[u8], start: usize, limits: &super::Limits, cache: &HeadCache) -> Option<(Span, Span, usize)> {
    let len = usize::from(cache.len);
    let to_line = TO_PATH.len() + usize::from(cache.to_len) + 2;
    let from_line = len.wrapping_sub(to_line);
    if len == 0
        || to_line - 2 > limits.max_line()
        || from_line - 2 > limits.max_line()
        || start + len > limits.max_head()
        || limits.max_headers() < 2
        || !cache.paths_at(data.get(start..)?)
    {
        return None;
    }
    let to_at = start + TO_PATH.len();
    let from_at = start + to_line + FROM_PATH.len();
    Some((
        Span::new(to_at, to_at + usize::from(cache.to_len)),
        Span::new(from_at, from_at + usize::from(cache.from_len)),
        start + len,
    ))
}

/// Checks `MSRP-URI *( SP MSRP-URI )`; returns the index of the first bad byte.
fn check_path(value: &[u8]) -> Result<(), usize> {
    let mut pos = 0;
    loop {
        let rest = value.get(pos..).unwrap_or_default();
        let len = memchr::memchr(b' ', rest).unwrap_or(rest.len());
        let uri = &rest[..len];
        uri::validate(uri).map_err(|e| pos + e.offset().min(uri.len()))?;
        if len == rest.len() {
            return Ok(());
        }
        pos += len + 1;
    }
}

/// The length of the `MSRP-URI *( SP MSRP-URI )` that starts `value` when
/// every URI has the common shape of [`uri::common_len`] and the last one is
/// followed by CR; `None` otherwise ([`check_path`] then decides).
fn path_len(value: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        pos += uri::common_len(value.get(pos..)?)?;
        match value.get(pos) {
            Some(b' ') => pos += 1,
            Some(b'\r') => return Some(pos),
            _ => return None,
        }
    }
}

/// The length of the `type "/" subtype` (RFC 4975 s.9 `media-type` without
/// parameters, both `token`s) that starts `value` and is followed by CR;
/// `None` otherwise. `Some(n)` is what the `run_len` over
/// [`MEDIA_TYPE_PLAIN`] and [`check_media_type`] accept: both tokens and "/"
/// are in that class, and CR is not.
#[inline]
fn bare_media_type_len(value: &[u8]) -> Option<usize> {
    // The index of the first byte at or after `from` that is not a `token` byte.
    let token_end = |from: usize| -> Option<(usize, u8)> {
        let mut i = from;
        loop {
            let b = *value.get(i)?;
            if !TOKEN[usize::from(b)] {
                return Some((i, b));
            }
            i += 1;
        }
    };
    let (slash, b'/') = token_end(0)? else { return None };
    let (end, b'\r') = token_end(slash + 1)? else { return None };
    (slash != 0 && end > slash + 1).then_some(end)
}

/// The length of the Byte-Range value that starts `value` when it is
/// `range-start "-" range-end "/" total` with numbers of at most 18 digits
/// (no `*`), coherent, and followed by CR; `None` otherwise. `Some(n)` is what
/// [`ByteRange::parse_leading`] accepts, with the same numbers.
#[inline]
fn short_byte_range_len(value: &[u8]) -> Option<usize> {
    // RFC 4975 s.9: range-start = 1*DIGIT; range-end = 1*DIGIT; total = 1*DIGIT
    let (start, i) = short_number(value, 0, b'-')?;
    let (end, i) = short_number(value, i + 1, b'/')?;
    let (total, i) = short_number(value, i + 1, b'\r')?;
    let range = ByteRange { start, end: Some(end), total: Some(total) };
    range.is_coherent().then_some(i)
}

/// The `1*18DIGIT` number at `value[at..]` and the index of the byte after
/// it, which must be `sep`; `None` otherwise (18 digits always fit a u64).
#[inline(always)]
fn short_number(value: &[u8], at: usize, sep: u8) -> Option<(u64, usize)> {
    let digits = value.get(at..)?;
    let (mut n, mut len) = (0u64, 0);
    // Nineteen digits are too many already: no need to look further.
    for &b in digits.iter().take(19) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        n = n.wrapping_mul(10).wrapping_add(u64::from(d));
        len += 1;
    }
    ((1..=18).contains(&len) && digits.get(len) == Some(&sep)).then_some((n, at + len))
}

/// Parses `namespace SP status-code [SP comment]`, offsets relative to the value at `at`.
fn parse_status(value: &[u8], at: usize) -> Option<(Status, Option<Span>)> {
    let digits = |s: &[u8]| -> Option<u16> {
        (s.len() == 3 && s.iter().all(u8::is_ascii_digit))
            .then(|| s.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0')))
    };
    let namespace = digits(value.get(..3)?)?;
    if value.get(3) != Some(&b' ') {
        return None;
    }
    let code = digits(value.get(4..7)?)?;
    let comment = match value.get(7) {
        None => None,
        Some(b' ') => Some(Span::new(at + 8, at + value.len())),
        Some(_) => return None,
    };
    Some((Status { namespace, code }, comment))
}

/// Checks `media-type = type "/" subtype *( ";" gen-param )`; returns the index
/// of the first bad byte. One SP after each ";" is accepted, as RFC 8591's
/// examples and most senders write it.
pub(crate) fn check_media_type(value: &[u8]) -> Result<(), usize> {
    let token_end =
        |from: usize| from + value[from..].iter().position(|&b| !TOKEN[usize::from(b)]).unwrap_or(value.len() - from);
    let slash = token_end(0);
    check_token(&value[..slash]).map_err(|_| 0usize)?;
    if value.get(slash) != Some(&b'/') {
        return Err(slash);
    }
    let mut pos = token_end(slash + 1);
    if pos == slash + 1 {
        return Err(pos);
    }
    while pos < value.len() {
        if value[pos] != b';' {
            return Err(pos);
        }
        pos += 1;
        if value.get(pos) == Some(&b' ') {
            pos += 1;
        }
        // gen-param = pname [ "=" pval ]; pname = token
        let name_end = token_end(pos);
        if name_end == pos {
            return Err(pos);
        }
        pos = name_end;
        if value.get(pos) == Some(&b'=') {
            pos += 1;
            // pval = token / quoted-string
            if value.get(pos) == Some(&b'"') {
                pos += 1;
                loop {
                    match value.get(pos) {
                        None => return Err(pos),
                        Some(b'"') => {
                            pos += 1;
                            break;
                        }
                        Some(b'\\') => match value.get(pos + 1) {
                            Some(b'\\' | b'"') => pos += 2,
                            _ => return Err(pos),
                        },
                        Some(&b) if b == b'\t' || b >= 0x20 => pos += 1,
                        Some(_) => return Err(pos),
                    }
                }
            } else {
                let end = token_end(pos);
                if end == pos {
                    return Err(pos);
                }
                pos = end;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::chars::TOKEN;

    const NAMES: [&[u8]; 12] = [
        b"to-path",
        b"from-path",
        b"message-id",
        b"byte-range",
        b"success-report",
        b"failure-report",
        b"status",
        b"content-type",
        b"use-path",
        b"expires",
        b"min-expires",
        b"max-expires",
    ];

    #[test]
    fn token_eq_lower_matches_eq_ignore_ascii_case() {
        for name in NAMES.iter().chain([&&b"content-"[..]]) {
            for (i, &want) in name.iter().enumerate() {
                for byte in (0..=255u8).filter(|&b| TOKEN[usize::from(b)]) {
                    let mut probe = name.to_vec();
                    probe[i] = byte;
                    assert_eq!(token_eq_lower(&probe, name), probe.eq_ignore_ascii_case(name), "{probe:?}");
                    assert_eq!(byte | 0x20 == want, byte.eq_ignore_ascii_case(&want));
                }
            }
        }
    }

    #[test]
    fn known_headers_are_classified_in_any_case() {
        for name in NAMES {
            let upper = name.to_ascii_uppercase();
            let known = KnownHeader::of(name);
            assert_ne!(known, KnownHeader::Other, "{name:?}");
            assert_eq!(KnownHeader::of(&upper), known);
            assert_eq!(KnownHeader::of(&name[..name.len() - 1]), KnownHeader::Other);
        }
        assert_eq!(KnownHeader::of(b"Min-Expires"), KnownHeader::MinExpires);
        assert_eq!(KnownHeader::of(b"MAX-EXPIRES"), KnownHeader::MaxExpires);
        assert_eq!(KnownHeader::of(b"Mox-Expires"), KnownHeader::Other);
        assert_eq!(KnownHeader::of(b"To-Pat"), KnownHeader::Other);
        assert_eq!(KnownHeader::of(b"X-Path"), KnownHeader::Other);
    }

    /// A seeded xorshift64 source of numbers below its argument, the same
    /// sequence in every run.
    fn below() -> impl FnMut(usize) -> usize {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % n as u64).unwrap_or(0)
        }
    }

    /// What a step produced, in a comparable form.
    fn outcome(step: Result<HeadStep, ParseError>) -> String {
        let head = |h: &FrameHead| {
            format!(
                "{h:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                h.txid(),
                h.start,
                h.headers().collect::<Vec<_>>(),
                h.header_count,
                h.to_path_str(),
                h.from_path_str(),
                h.message_id_str(),
                h.byte_range(),
                h.success_report,
                h.failure_report,
                h.status(),
                h.status_comment(),
                h.content_type(),
                h.comment(),
                h.has_body,
                h.offset
            )
        };
        let rejected = |r: &Rejection| format!("{:?} {} {:?}", r.transaction_id, r.is_request, r.error);
        match step {
            Err(e) => format!("error {e:?}"),
            Ok(HeadStep::NeedMore) => "more".into(),
            Ok(HeadStep::Body { head: h, consumed }) => format!("body {} {consumed}", head(&h)),
            Ok(HeadStep::Bodiless { head: h, flag, consumed }) => format!("bodiless {} {flag:?} {consumed}", head(&h)),
            Ok(HeadStep::Skip { rejected: r, consumed }) => format!("skip {} {consumed}", rejected(&r)),
            Ok(HeadStep::Ended { rejected: r, consumed }) => format!("ended {} {consumed}", rejected(&r)),
        }
    }

    /// The one-pass line paths give exactly what the general path gives, on
    /// valid heads and on mutated ones, whole or growing piece by piece, under
    /// default and tight limits.
    #[test]
    fn one_pass_lines_agree_with_general_path() {
        let heads: &[&[u8]] = &[
            b"MSRP a786hjs2dke93kd0 SEND\r\nTo-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n\
              From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\nMessage-ID: 87652491dke93kd0\r\n\
              Byte-Range: 1-200/200\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbody",
            b"MSRP d93kswow 200 OK\r\nTo-Path: msrp://a.example.com:7777/iau39;tcp\r\n\
              From-Path: msrp://r.example.net:9/x msrps://b.example.com:8888/9di4ea;tcp\r\n-------d93kswow$\r\n",
            b"MSRP dkei38sd REPORT\r\nTo-Path: msrp://a.example.com:7777/iau39;tcp\r\n\
              From-Path: msrp://b.example.com:8888/9di4ea;tcp\r\nMessage-ID: 12339sdqwer\r\n\
              Byte-Range: 1-106/106\r\nStatus: 000 200 OK\r\n-------dkei38sd$\r\n",
            b"MSRP 1234 200\r\nto-path: MSRP://[2001:db8::1]:80/s;tcp\r\nFROM-PATH: msrp://u@10.0.0.1:1/s;tcp;a=b\r\n\
              Message-ID: abcd\r\nSuccess-Report: yes\r\nX-Y: \xc3\xa9\r\n-------1234+\r\n",
            b"MSRP abcd SEND\r\nTo-Path: msrp://h:1;tcp\r\nFrom-Path: msrp://h;tcp\r\nByte-Range: 1-*/*\r\n\
              Content-Type: a/b;p=\"q\"\r\n\r\n",
            b"MSRP abcd 400 \r\nTo-Path: msrp://h%41:1/s;tcp\r\nFrom-Path: msrp://h/s;tcp\r\n-------abcd#\r\n",
            b"MSRP abcd SEND\r\nTo-Path: msrp://h:1/s;tcp\r\nFrom-Path: msrp://h/s;tcp\r\nMessage-ID: abcd\r\n\
              Message-ID: abce\r\nByte-Range: 1-2/2\r\nByte-Range: 1-2/2\r\n\r\n",
            b"MSRP abcd SEND\r\nTo-Path: msrp://h:1/s;tcp\r\nFrom-Path: msrp://h/s;tcp\r\n\
              Content-Type: text/plain\r\nContent-Type: text/plain\r\n\r\n",
            b"MSRP abcd SEND\r\nFrom-Path: msrp://h:1/s;tcp\r\nTo-Path: msrp://h/s;tcp\r\nTo-Path: msrp://h/s;tcp\r\n\r\n",
            b"MSRP abcd NICKNAME\r\nTo-Path: msrp://h:99999/s;tcp\r\nFrom-Path: msrp://1.2.3.4/s;tcp\r\n\
              Use-Path: msrp://h/s;tcp\r\nContent-Type: text/plain\r\nX: y\r\n\r\n",
            b"MSRP a786hjs2dke93kd0 SEND\r\nTo-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n\
              From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\nMessage-ID: 87652491dke93kd0\r\n\
              Byte-Range: 1-200/200\r\nContent-Type: text/plain\r\n\r\nbody",
            b"MSRP Z9b SEND\r\nTo-Path: msrp://h:1/s;tcp\r\nFrom-Path: msrp://r:2/t;tcp msrp://h/s;tcp\r\n\
              Byte-Range: 10-*/*\r\nMessage-ID: m1234\r\nContent-Type: message/cpim\r\n\r\n",
            b"MSRP Z9bq SEND\r\nTo-Path: msrp://h:1/s;tcp\r\nFrom-Path: msrp://h/s;tcp\r\nContent-Type: a/b\r\n\r\n",
        ];
        let noise: &[u8] = b"\r\n :/;%@[]0919aZz-*+=\"\t\x7f\x80\xffMSRPTFBCmsrp.";
        let mut tight = super::super::Limits::default();
        tight.set_max_line(40).set_max_head(150).set_max_headers(3);
        let mut unbounded_lines = super::super::Limits::default();
        unbounded_lines.set_max_line(usize::MAX);
        let mut one_header = super::super::Limits::default();
        one_header.set_max_headers(1);
        let limits = [super::super::Limits::default(), tight, unbounded_lines, one_header];
        let mut next = below();
        let mut cache = HeadCache::default();
        let mut fast_heads = 0;
        for round in 0..20_000 {
            let mut data = heads[round % heads.len()].to_vec();
            for _ in 0..round % 4 {
                let at = next(data.len());
                match next(4) {
                    0 => data[at] = noise[next(noise.len())],
                    1 => data.insert(at, noise[next(noise.len())]),
                    2 => {
                        data.remove(at);
                    }
                    _ => data[at] = data[at].to_ascii_lowercase(),
                }
            }
            let limits = &limits[(round / 7) % limits.len()];
            let raw = |range: std::ops::Range<usize>| Bytes::copy_from_slice(data.get(range).unwrap_or_default());
            let mut one_pass = HeadParser::new(7);
            // A fresh cache, the one the previous round left, or one filled
            // by the unmutated head (under default limits).
            match (round / 3) % 3 {
                0 => cache = HeadCache::default(),
                1 => {}
                _ => {
                    let whole = heads[round % heads.len()];
                    let warm = |range: std::ops::Range<usize>| Bytes::copy_from_slice(&whole[range]);
                    let defaults = super::super::Limits::default();
                    let _ = HeadParser::new(0).step_with(whole, warm, &defaults, Some(&mut cache));
                }
            }
            let mut general = HeadParser::new(7);
            // The whole head at once, as a segment usually brings it.
            let (mut whole_one_pass, mut whole_general) = (HeadParser::new(7), HeadParser::new(7));
            let step = whole_one_pass.step_with(&data, raw, limits, Some(&mut cache));
            let whole_a = outcome(step.map(|step| step.built(&whole_one_pass, raw)));
            let step = whole_general.step_with(&data, raw, limits, None);
            let whole_b = outcome(step.map(|step| step.built(&whole_general, raw)));
            // The whole-head path builds the head the general path builds, or none.
            if let Some(head) = HeadParser::new(7).fast_head(&Bytes::copy_from_slice(&data), limits, &mut cache) {
                let consumed = head.as_bytes().len() + 2;
                assert_eq!(
                    outcome(Ok(HeadStep::Body { head, consumed })),
                    whole_b,
                    "{:?}",
                    String::from_utf8_lossy(&data)
                );
                fast_heads += 1;
            }
            assert_eq!(whole_a, whole_b, "{:?}", String::from_utf8_lossy(&data));
            let mut cut = 0;
            loop {
                cut = (cut + 1 + next(24)).min(data.len());
                let prefix = &data[..cut];
                let step = one_pass.step_with(prefix, raw, limits, Some(&mut cache));
                let a = outcome(step.map(|step| step.built(&one_pass, raw)));
                let step = general.step_with(prefix, raw, limits, None);
                let b = outcome(step.map(|step| step.built(&general, raw)));
                assert_eq!(a, b, "{:?}", String::from_utf8_lossy(prefix));
                if a != "more" || cut == data.len() {
                    break;
                }
            }
        }
        // Unmutated and lightly mutated SEND heads take the whole-head path.
        assert!(fast_heads > 1_000, "{fast_heads} heads took the whole-head path");
    }

    /// The shortcut scanners accept only what the general ones accept, with
    /// the same lengths, and the common values.
    #[test]
    fn shortcut_scanners_agree_with_general_ones() {
        let mut next = below();
        let range_alphabet = b"0123456789-/*\r\n 0000000";
        let type_alphabet = b"az/;=+-. \r\n\"*AZ09";
        for _ in 0..50_000 {
            let len = next(30);
            let value: Vec<u8> = (0..len).map(|_| range_alphabet[next(range_alphabet.len())]).collect();
            if let Some(n) = short_byte_range_len(&value) {
                let (_, rest) = ByteRange::parse_leading(&value).unwrap();
                assert_eq!(value.len() - rest.len(), n, "{value:?}");
                assert_eq!(value.get(n), Some(&b'\r'));
            }
            let value: Vec<u8> = (0..len).map(|_| type_alphabet[next(type_alphabet.len())]).collect();
            if let Some(n) = bare_media_type_len(&value) {
                assert_eq!(run_len(&value, &MEDIA_TYPE_PLAIN), n, "{value:?}");
                assert_eq!(check_media_type(&value[..n]), Ok(()), "{value:?}");
            }
        }
        assert_eq!(short_byte_range_len(b"1-200/200\r\n"), Some(9));
        assert_eq!(short_byte_range_len(b"999999999999999999-1/1\r\n"), None);
        assert_eq!(short_byte_range_len(b"1-*/200\r\n"), None);
        assert_eq!(bare_media_type_len(b"text/plain\r\n"), Some(10));
        assert_eq!(bare_media_type_len(b"text/plain; charset=utf-8\r\n"), None);
    }

    #[test]
    fn byte_range_grammar() {
        let ok: &[(&[u8], ByteRange)] = &[
            (b"1-200/200", ByteRange { start: 1, end: Some(200), total: Some(200) }),
            (b"1-*/*", ByteRange { start: 1, end: None, total: None }),
            (b"5-4/*", ByteRange { start: 5, end: Some(4), total: None }),
            (b"01-02/03", ByteRange { start: 1, end: Some(2), total: Some(3) }),
            (b"18446744073709551615-*/*", ByteRange { start: u64::MAX, end: None, total: None }),
        ];
        for &(text, range) in ok {
            assert_eq!(ByteRange::parse(text), Ok(range), "{text:?}");
        }
        let bad: &[&[u8]] = &[
            b"",
            b"-",
            b"1-2",
            b"1/2-3",
            b"0-1/1",
            b"1-2/1",
            b"5-3/*",
            b"*-1/1",
            b"1-**/1",
            b"1-2/**",
            b"1-2/3 ",
            b" 1-2/3",
            b"1--2/3",
            b"1-2//3",
            b"1-2/3-4",
            b"1-2/3/4",
            b"+1-2/3",
            b"18446744073709551616-*/*",
            b"1-18446744073709551616/*",
            b"1-2/18446744073709551616",
        ];
        for &text in bad {
            assert_eq!(ByteRange::parse(text), Err(()), "{:?}", String::from_utf8_lossy(text));
        }
    }
}
