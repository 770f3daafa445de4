//! The encoder: frames into a reusable buffer, head, body and end-line apart.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::chars::{check_token, check_utf8text};
use super::head::{ByteRange, FailureReport, Flag, FrameHead};
use crate::id::{IdSource, MessageId, TransactionId};
use crate::uri::MsrpUri;

/// The start line of a frame to encode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartLine {
    /// A request with its method name (`SEND`, `REPORT`, `AUTH`, or an extension in `1*UPALPHA`).
    Request {
        /// The method name.
        method: String,
    },
    /// A response.
    Response {
        /// The three-digit status code.
        status: u16,
        /// The comment after the code; `Some("")` writes a bare SP.
        comment: Option<String>,
    },
}

/// A frame as owned values: what the [`Encoder`] writes and what
/// [`Frame::from_head`] rebuilds from a parsed frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The transaction id; `None` lets the encoder pick a fresh one.
    pub transaction_id: Option<TransactionId>,
    /// Request or response line.
    pub start: StartLine,
    /// To-Path URIs, next hop first.
    pub to_path: Vec<MsrpUri>,
    /// From-Path URIs, previous hop first.
    pub from_path: Vec<MsrpUri>,
    /// Every header between From-Path and Content-Type, in order, as `(name, value)`.
    pub headers: Vec<(String, String)>,
    /// Content-Type, present exactly when `body` is.
    pub content_type: Option<String>,
    /// The body (chunk data), shared, never copied.
    pub body: Option<Bytes>,
    /// The continuation flag.
    pub flag: Flag,
}

/// Why a [`Frame`] cannot be encoded (a caller's mistake, never the peer's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A method that is not `1*UPALPHA`, or a status code outside 100..=999.
    #[error("invalid start line")]
    StartLine,
    /// To-Path or From-Path is empty.
    #[error("To-Path and From-Path need at least one URI each")]
    EmptyPath,
    /// A header name that is not a token, or a value that is not UTF-8 text on one line.
    #[error("invalid header at index {index}")]
    Header {
        /// Index in [`Frame::headers`].
        index: usize,
    },
    /// A body without Content-Type, Content-Type or MIME headers without a body, or a response with a body.
    #[error("a body and Content-Type must come together, and responses have none")]
    BodyContentType,
    /// An invalid Content-Type value.
    #[error("invalid Content-Type")]
    ContentType,
    /// The caller's transaction id occurs in the body as an end-line.
    #[error("the body contains the transaction's end-line")]
    EndLineInBody,
}

/// An encoded frame: three pieces for one vectored write, in this order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The frame's transaction id (the caller's, or the fresh one picked).
    pub transaction_id: TransactionId,
    /// Start line and headers, and the blank line when a body follows.
    pub head: Bytes,
    /// The body exactly as given (the caller's `Bytes`, not a copy); empty when bodiless.
    pub body: Bytes,
    /// The end-line, with the CRLF that precedes it when there is a body.
    pub end_line: Bytes,
}

impl Transmit {
    /// Total length on the wire.
    #[must_use]
    pub fn len(&self) -> usize {
        self.head.len() + self.body.len() + self.end_line.len()
    }

    /// Whether nothing is to be written (never true for an encoded frame).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Frame {
    /// A SEND carrying a whole message in one chunk: fresh ids are picked at
    /// encoding time, Byte-Range `1-N/N`.
    #[must_use]
    pub fn send(to_path: Vec<MsrpUri>, from_path: Vec<MsrpUri>, content_type: &str, body: Bytes) -> Self {
        let n = body.len() as u64;
        let range = ByteRange { start: 1, end: Some(n), total: Some(n) };
        Self {
            transaction_id: None,
            start: StartLine::Request { method: "SEND".into() },
            to_path,
            from_path,
            headers: vec![("Byte-Range".into(), range.to_string())],
            content_type: Some(content_type.into()),
            body: Some(body),
            flag: Flag::End,
        }
    }

    /// A bodiless request (for example the SEND an active endpoint writes to bind a connection).
    #[must_use]
    pub fn bodiless(method: &str, to_path: Vec<MsrpUri>, from_path: Vec<MsrpUri>) -> Self {
        Self {
            transaction_id: None,
            start: StartLine::Request { method: method.into() },
            to_path,
            from_path,
            headers: Vec::new(),
            content_type: None,
            body: None,
            flag: Flag::End,
        }
    }

    /// A response to a request: paths reversed to the request's sender (RFC 4975 s.7.2:
    /// the To-Path is the request's From-Path, the From-Path this hop's URI).
    #[must_use]
    pub fn response(
        transaction_id: TransactionId,
        status: u16,
        comment: Option<&str>,
        to_path: Vec<MsrpUri>,
        from_path: Vec<MsrpUri>,
    ) -> Self {
        Self {
            transaction_id: Some(transaction_id),
            start: StartLine::Response { status, comment: comment.map(Into::into) },
            to_path,
            from_path,
            headers: Vec::new(),
            content_type: None,
            body: None,
            flag: Flag::End,
        }
    }

    /// Adds a header (kept before Content-Type, in call order).
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds a Message-ID header.
    #[must_use]
    pub fn with_message_id(self, id: &MessageId) -> Self {
        self.with_header("Message-ID", id.as_str())
    }

    /// Sets the Byte-Range header (replacing one already present).
    #[must_use]
    pub fn with_byte_range(mut self, range: ByteRange) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("Byte-Range"));
        self.with_header("Byte-Range", &range.to_string())
    }

    /// Adds Success-Report.
    #[must_use]
    pub fn with_success_report(self, yes: bool) -> Self {
        self.with_header("Success-Report", if yes { "yes" } else { "no" })
    }

    /// Adds Failure-Report.
    #[must_use]
    pub fn with_failure_report(self, value: FailureReport) -> Self {
        self.with_header("Failure-Report", value.as_str())
    }

    /// Rebuilds the owned frame of a parsed head, its body and flag.
    #[must_use]
    pub fn from_head(head: &FrameHead, body: Option<Bytes>, flag: Flag) -> Self {
        let start = match (head.method_name(), head.status_code()) {
            (Some(method), _) => StartLine::Request { method: method.into() },
            (None, status) => {
                StartLine::Response { status: status.unwrap_or_default(), comment: head.comment().map(Into::into) }
            }
        };
        let headers = head
            .headers()
            .skip(2)
            .filter(|h| !h.name.eq_ignore_ascii_case("Content-Type"))
            .map(|h| (h.name.into(), h.value.into()))
            .collect();
        Self {
            transaction_id: Some(head.transaction_id()),
            start,
            to_path: head.to_path_uris().collect(),
            from_path: head.from_path_uris().collect(),
            headers,
            content_type: head.content_type().map(Into::into),
            body: if head.has_body() { Some(body.unwrap_or_default()) } else { None },
            flag,
        }
    }

    fn validate(&self) -> Result<(), EncodeError> {
        match &self.start {
            StartLine::Request { method } => {
                if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(EncodeError::StartLine);
                }
            }
            StartLine::Response { status, comment } => {
                if !(100..=999).contains(status)
                    || comment.as_deref().is_some_and(|c| check_utf8text(c.as_bytes()).is_err())
                {
                    return Err(EncodeError::StartLine);
                }
                if self.body.is_some() {
                    return Err(EncodeError::BodyContentType);
                }
            }
        }
        if self.to_path.is_empty() || self.from_path.is_empty() {
            return Err(EncodeError::EmptyPath);
        }
        let mut mime = false;
        for (index, (name, value)) in self.headers.iter().enumerate() {
            let name_ok =
                name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic()) && check_token(name.as_bytes()).is_ok();
            let reserved = ["To-Path", "From-Path", "Content-Type"].iter().any(|r| name.eq_ignore_ascii_case(r));
            if !name_ok || reserved || check_utf8text(value.as_bytes()).is_err() {
                return Err(EncodeError::Header { index });
            }
            mime |= name.len() > 8 && name.as_bytes()[..8].eq_ignore_ascii_case(b"Content-");
        }
        match (&self.content_type, &self.body) {
            (Some(ct), Some(_)) => super::check_media_type(ct.as_bytes()).map_err(|_| EncodeError::ContentType),
            // RFC 4975 s.7.1: no body, no Content-Type nor other MIME header.
            (None, None) if !mime => Ok(()),
            _ => Err(EncodeError::BodyContentType),
        }
    }
}

/// Writes frames into a reusable buffer (RFC 4975 s.7.1).
#[derive(Debug, Default)]
pub struct Encoder {
    buf: BytesMut,
}

impl Encoder {
    /// A new encoder.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Encodes `frame`. A frame without a transaction id gets a fresh one from
    /// `ids`, chosen so that its end-line does not occur in the body.
    ///
    /// # Errors
    /// [`EncodeError`] when the frame breaks RFC 4975 s.7.1 or s.9.
    pub fn encode(&mut self, frame: &Frame, ids: &mut dyn IdSource) -> Result<Transmit, EncodeError> {
        frame.validate()?;
        let body = frame.body.clone().unwrap_or_default();
        let transaction_id = match &frame.transaction_id {
            Some(id) => {
                if ends_body_early(&body, id) {
                    return Err(EncodeError::EndLineInBody);
                }
                id.clone()
            }
            None => loop {
                // RFC 4975 s.7.1: the sender "MUST ensure that the end-line [...]
                // does not appear in the body"; a fresh id whose dashed form is
                // nowhere in the body does it, whatever the body's flags and CRLFs.
                let id = TransactionId::generate(ids);
                if !contains_dashed_id(&body, &id) {
                    break id;
                }
            },
        };
        Ok(self.write(frame, &transaction_id, body))
    }

    fn write(&mut self, frame: &Frame, transaction_id: &TransactionId, body: Bytes) -> Transmit {
        let head = self.head(frame, transaction_id);
        let end_line = self.end_line(transaction_id, frame.flag, frame.body.is_some());
        Transmit { transaction_id: transaction_id.clone(), head, body, end_line }
    }

    /// Writes the start line and headers of `frame` (and, when it has a
    /// Content-Type, the blank line that opens the body). The caller is
    /// responsible for a valid frame; [`Encoder::encode`] checks it.
    pub(crate) fn head(&mut self, frame: &Frame, transaction_id: &TransactionId) -> Bytes {
        let buf = &mut self.buf;
        buf.put_slice(b"MSRP ");
        buf.put_slice(transaction_id.as_bytes());
        buf.put_u8(b' ');
        match &frame.start {
            StartLine::Request { method } => buf.put_slice(method.as_bytes()),
            StartLine::Response { status, comment } => {
                buf.put_slice(status.to_string().as_bytes());
                if let Some(comment) = comment {
                    buf.put_u8(b' ');
                    buf.put_slice(comment.as_bytes());
                }
            }
        }
        buf.put_slice(b"\r\n");
        for (name, uris) in [("To-Path: ", &frame.to_path), ("From-Path: ", &frame.from_path)] {
            buf.put_slice(name.as_bytes());
            for (i, uri) in uris.iter().enumerate() {
                if i > 0 {
                    buf.put_u8(b' ');
                }
                buf.put_slice(uri.as_str().as_bytes());
            }
            buf.put_slice(b"\r\n");
        }
        for (name, value) in &frame.headers {
            buf.put_slice(name.as_bytes());
            buf.put_slice(b": ");
            buf.put_slice(value.as_bytes());
            buf.put_slice(b"\r\n");
        }
        if let Some(ct) = &frame.content_type {
            // content-stuff = *(Other-Mime-header CRLF) Content-Type 2CRLF data CRLF
            buf.put_slice(b"Content-Type: ");
            buf.put_slice(ct.as_bytes());
            buf.put_slice(b"\r\n\r\n");
        }
        buf.split().freeze()
    }

    /// Writes an end-line; `after_body` adds the CRLF that ends the body
    /// (RFC 4975 s.7.1: "the end-line MUST be preceded by a CRLF that is not part of the body").
    pub(crate) fn end_line(&mut self, transaction_id: &TransactionId, flag: Flag, after_body: bool) -> Bytes {
        let buf = &mut self.buf;
        if after_body {
            buf.put_slice(b"\r\n");
        }
        buf.put_slice(b"-------");
        buf.put_slice(transaction_id.as_bytes());
        buf.put_u8(flag.as_byte());
        buf.put_slice(b"\r\n");
        buf.split().freeze()
    }
}

pub(crate) fn dashed_id(id: &TransactionId) -> ([u8; 9 + 32], usize) {
    let mut needle = [0u8; 9 + 32];
    needle[..9].copy_from_slice(b"\r\n-------");
    let n = id.as_bytes().len().min(32);
    needle[9..9 + n].copy_from_slice(&id.as_bytes()[..n]);
    (needle, 9 + n)
}

/// Whether `"-------" transaction-id` occurs anywhere in `body`.
fn contains_dashed_id(body: &[u8], id: &TransactionId) -> bool {
    let (needle, n) = dashed_id(id);
    memchr::memmem::find(body, &needle[2..n]).is_some()
}

/// Whether a receiver would end the frame inside `body` (followed by CRLF and
/// the real end-line): CRLF "-------" id, a flag, then CRLF or the body's end.
fn ends_body_early(body: &[u8], id: &TransactionId) -> bool {
    let (needle, n) = dashed_id(id);
    memchr::memmem::find_iter(body, &needle[..n]).any(|at| {
        let rest = &body[at + n..];
        rest.first().is_some_and(|&f| Flag::from_byte(f).is_some())
            && (rest.len() == 1 || rest[1..].starts_with(b"\r\n"))
    })
}

/// Generates frames that are valid by construction (RFC 4975 s.9), so that
/// fuzzing campaigns reach past the grammar.
#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Frame {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        const METHODS: &[&str] = &["SEND", "SEND", "SEND", "REPORT", "AUTH", "NICKNAME"];
        const TYPES: &[&str] =
            &["text/plain", "message/cpim", "text/plain;charset=utf-8", "application/im-iscomposing+xml"];
        const EXT_NAMES: &[&str] = &["X-Trace", "Use-Nickname", "Priority", "x-lower"];
        let is_request = u.ratio(4, 5)?;
        let start = if is_request {
            StartLine::Request { method: (*u.choose(METHODS)?).to_string() }
        } else {
            let comment = match u.int_in_range(0..=2u8)? {
                0 => None,
                1 => Some(String::new()),
                _ => Some("OK".to_string()),
            };
            StartLine::Response { status: u.int_in_range(100..=999)?, comment }
        };
        let paths = |u: &mut arbitrary::Unstructured<'a>| -> arbitrary::Result<Vec<MsrpUri>> {
            let n = u.int_in_range(1..=3usize)?;
            (0..n).map(|_| MsrpUri::arbitrary(u)).collect()
        };
        let to_path = paths(u)?;
        let from_path = paths(u)?;
        let mut headers = Vec::new();
        if u.ratio(3, 4)? {
            headers.push(("Message-ID".to_string(), MessageId::arbitrary(u)?.to_string()));
        }
        if u.ratio(1, 2)? {
            let start = u.int_in_range(1..=1u64 << 40)?;
            let len = u.int_in_range(0..=1u64 << 20)?;
            let end = start + len - 1;
            let range = ByteRange {
                start,
                end: if u.ratio(1, 5)? { None } else { Some(end) },
                total: if u.ratio(1, 5)? { None } else { Some(end + u.int_in_range(0..=1000u64)?) },
            };
            headers.push(("Byte-Range".to_string(), range.to_string()));
        }
        if u.ratio(1, 3)? {
            headers.push(("Success-Report".to_string(), if u.arbitrary()? { "yes" } else { "no" }.to_string()));
        }
        if u.ratio(1, 3)? {
            headers.push(("Failure-Report".to_string(), FailureReport::arbitrary(u)?.as_str().to_string()));
        }
        for _ in 0..u.int_in_range(0..=2u8)? {
            let value: String = String::arbitrary(u)?.chars().filter(|c| !c.is_control()).take(40).collect();
            headers.push(((*u.choose(EXT_NAMES)?).to_string(), value));
        }
        let (content_type, body) = if is_request && u.ratio(2, 3)? {
            let body: Vec<u8> = u.arbitrary()?;
            (Some((*u.choose(TYPES)?).to_string()), Some(Bytes::from(body)))
        } else {
            (None, None)
        };
        Ok(Self { transaction_id: None, start, to_path, from_path, headers, content_type, body, flag: u.arbitrary()? })
    }
}
