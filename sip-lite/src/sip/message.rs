//! The SIP message (RFC 3261 s.7) as a validated, zero-copy view, and the
//! stateless parser that builds it.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

use super::chars::{
    check_escaped_run, find_byte, is, is_lws, long_run_end, parse_u64, run_end, DIGIT, REASON, TEXT, TOKEN, WORD,
};
use super::error::ParseError;
use super::header::HeaderName;
use super::uri::{self, Uri, UriContext};
use super::value::{
    self, split_outside_quotes, CSeq, ContactPredicate, ContentDisposition, MediaType, NameAddr, Values, Via,
};

/// The outcome of a parse over bytes that may not hold a whole message yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status<T> {
    /// A whole message.
    Complete(T),
    /// More bytes are needed.
    Partial,
}

/// Bounds on what one message may make the parser hold.
///
/// Exceeding a bound is a typed [`ParseError`]; memory never grows past it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    max_head: usize,
    max_headers: usize,
    max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_head: 32 * 1024, max_headers: 128, max_body: 1024 * 1024 }
    }
}

impl Limits {
    /// Largest header section: start line, headers and the blank line
    /// (default 32 KiB; capped at 1 GiB).
    pub fn set_max_head(&mut self, bytes: usize) -> &mut Self {
        self.max_head = bytes.clamp(4, 1 << 30);
        self
    }
    /// Most header lines, continuation lines not counted (default 128).
    pub fn set_max_headers(&mut self, count: usize) -> &mut Self {
        self.max_headers = count.min(usize::from(u16::MAX) - 1);
        self
    }
    /// Largest body (default 1 MiB; capped at 1 GiB).
    pub fn set_max_body(&mut self, bytes: usize) -> &mut Self {
        self.max_body = bytes.min(1 << 30);
        self
    }
    /// See [`Limits::set_max_head`].
    #[must_use]
    pub const fn max_head(&self) -> usize {
        self.max_head
    }
    /// See [`Limits::set_max_headers`].
    #[must_use]
    pub const fn max_headers(&self) -> usize {
        self.max_headers
    }
    /// See [`Limits::set_max_body`].
    #[must_use]
    pub const fn max_body(&self) -> usize {
        self.max_body
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Self {
        // Messages are bounded by `Limits` (head and body each at most 1 GiB).
        Self { start: start as u32, end: end as u32 }
    }
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// One header line: name, trimmed value (folds included), classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    name: Span,
    value: Span,
    kind: HeaderName,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    Request { method: Span, uri: Span },
    Response { code: u16, reason: Span },
}

/// The headers that may appear once, and their index in `Head::singles`.
const SINGLES: [HeaderName; 10] = [
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
    HeaderName::MaxForwards,
    HeaderName::ContentLength,
    HeaderName::ContentType,
    HeaderName::ContentDisposition,
    HeaderName::Expires,
    HeaderName::Date,
];
const NONE: u16 = u16::MAX;

/// The index in `Head::singles` of each header, by discriminant (`u8::MAX` for a list header).
const SINGLE_INDEX: [u8; HeaderName::Other as usize + 1] = {
    let mut t = [u8::MAX; HeaderName::Other as usize + 1];
    let mut i = 0;
    while i < SINGLES.len() {
        t[SINGLES[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// The index of `kind` in `Head::singles`, when it may appear only once (a table
/// lookup: no branch on the header).
const fn single_index(kind: HeaderName) -> Option<usize> {
    match SINGLE_INDEX[kind as usize] {
        u8::MAX => None,
        i => Some(i as usize),
    }
}

/// The parsed header section, before it is joined to its bytes.
#[derive(Clone, Debug)]
pub(crate) struct Head {
    start: Start,
    slots: Vec<Slot>,
    singles: [u16; SINGLES.len()],
    cseq: u32,
    max_forwards: Option<u8>,
    content_length: Option<u64>,
}

impl Head {
    /// A head with its start line and no header yet.
    fn new(start: Start) -> Self {
        Self {
            start,
            slots: Vec::with_capacity(16),
            singles: [NONE; SINGLES.len()],
            cseq: 0,
            max_forwards: None,
            content_length: None,
        }
    }
}

/// Which transport rules apply (RFC 3261 s.18.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    Stream,
    Datagram,
}

/// One header line of a [`Message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// The name as on the wire (case and compact form preserved).
    pub name: &'a str,
    /// The header, compact forms folded into long ones.
    pub kind: HeaderName,
    /// The value as on the wire, surrounding white space trimmed; folded lines keep their CRLF.
    pub raw_value: &'a str,
}

impl<'a> Header<'a> {
    /// The value with each fold (CRLF and the white space around it... after
    /// it) replaced by one SP.
    #[must_use]
    pub fn value(&self) -> Cow<'a, str> {
        unfold(self.raw_value)
    }
}

fn is_named(h: &Header<'_>, kind: HeaderName, name: &str) -> bool {
    if kind == HeaderName::Other {
        h.kind == HeaderName::Other && h.name.eq_ignore_ascii_case(name)
    } else {
        h.kind == kind
    }
}

/// Replaces every `CRLF 1*WSP` with one SP.
pub(crate) fn unfold(v: &str) -> Cow<'_, str> {
    if !v.contains('\n') {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(i) = rest.find("\r\n") {
        out.push_str(&rest[..i]);
        out.push(' ');
        rest = rest[i + 2..].trim_start_matches([' ', '\t']);
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// A validated SIP message: start line, headers in wire order and body, a
/// view over the received bytes (nothing copied). Accessors never fail and
/// never panic; typed accessors parse the header's text on each call.
#[derive(Clone)]
pub struct Message {
    raw: Bytes,
    offset: u64,
    head: Head,
    body: Span,
}

impl PartialEq for Message {
    /// Two messages are equal when their bytes are (the offset is ignored).
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for Message {}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("offset", &self.offset)
            .field("head", &String::from_utf8_lossy(&self.raw[..self.body.start as usize]))
            .field("body_len", &self.body.range().len())
            .finish()
    }
}

impl Message {
    /// Parses exactly one whole message with the stream rules (RFC 3261 s.18.3:
    /// Content-Length required) and the default [`Limits`].
    ///
    /// # Errors
    /// Any [`ParseError`]; [`ParseError::Incomplete`] when `bytes` ends early,
    /// [`ParseError::TrailingData`] when bytes follow the body.
    pub fn parse(bytes: Bytes) -> Result<Self, ParseError> {
        let limits = Limits::default();
        // The usual message, whole and valid: parsed once, kept as it is.
        if let Some((head, head_len)) = parse_whole_head(&bytes, &limits, Transport::Stream) {
            if body_len(&head, head_len, &limits, 0).is_ok_and(|body| head_len + body == bytes.len()) {
                return Ok(Self::from_parts(bytes, 0, head, head_len));
            }
        }
        match parse_stream_head(&bytes, &limits)? {
            // The message takes all of `bytes`: keep them, no slice.
            Status::Complete((head, head_len, total)) if total == bytes.len() => {
                Ok(Self::from_parts(bytes, 0, head, head_len))
            }
            Status::Complete((_, _, total)) => Err(ParseError::TrailingData { at: total as u64 }),
            Status::Partial => Err(ParseError::Incomplete { at: bytes.len() as u64 }),
        }
    }

    pub(crate) fn from_parts(raw: Bytes, offset: u64, head: Head, head_len: usize) -> Self {
        let body = Span::new(head_len, raw.len());
        Self { raw, offset, head, body }
    }

    fn text(&self, span: Span) -> &str {
        // Every span was checked to be UTF-8 when the message was parsed.
        self.raw.get(span.range()).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default()
    }

    /// The whole message: header section and body.
    #[must_use]
    pub const fn as_bytes(&self) -> &Bytes {
        &self.raw
    }

    /// Absolute offset of the message's first byte in the connection's stream.
    #[must_use]
    pub const fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether this is a request.
    #[must_use]
    pub const fn is_request(&self) -> bool {
        matches!(self.head.start, Start::Request { .. })
    }

    /// The method of a request, as written (methods are case-sensitive).
    #[must_use]
    pub fn method(&self) -> Option<&str> {
        match self.head.start {
            Start::Request { method, .. } => Some(self.text(method)),
            Start::Response { .. } => None,
        }
    }

    /// The Request-URI of a request, as written.
    #[must_use]
    pub fn request_uri_str(&self) -> Option<&str> {
        match self.head.start {
            Start::Request { uri, .. } => Some(self.text(uri)),
            Start::Response { .. } => None,
        }
    }

    /// The Request-URI of a request.
    #[must_use]
    pub fn request_uri(&self) -> Option<Uri<'_>> {
        self.request_uri_str().and_then(|u| uri::parse(u, UriContext::RequestUri).ok())
    }

    /// The status code of a response (100-699).
    #[must_use]
    pub const fn status_code(&self) -> Option<u16> {
        match self.head.start {
            Start::Response { code, .. } => Some(code),
            Start::Request { .. } => None,
        }
    }

    /// The reason phrase of a response (`""` when empty).
    #[must_use]
    pub fn reason(&self) -> Option<&str> {
        match self.head.start {
            Start::Response { reason, .. } => Some(self.text(reason)),
            Start::Request { .. } => None,
        }
    }

    fn header_at(&self, slot: &Slot) -> Header<'_> {
        Header { name: self.text(slot.name), kind: slot.kind, raw_value: self.text(slot.value) }
    }

    /// Every header line in wire order.
    pub fn headers(&self) -> impl Iterator<Item = Header<'_>> + '_ {
        self.head.slots.iter().map(|s| self.header_at(s))
    }

    /// The number of header lines.
    #[must_use]
    pub fn header_count(&self) -> usize {
        self.head.slots.len()
    }

    /// Every header line named `name` (case-insensitive; a compact and a long
    /// form name the same header).
    pub fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = Header<'s>> + 's {
        let kind = HeaderName::from_bytes(name.as_bytes());
        self.headers().filter(move |h| is_named(h, kind, name))
    }

    /// The raw value of the first header named `name` (see [`Message::headers_named`]).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        let kind = HeaderName::from_bytes(name.as_bytes());
        self.headers().find(|h| is_named(h, kind, name)).map(|h| h.raw_value)
    }

    /// The comma-separated values of every header named `name`, split outside
    /// quoted strings and `<...>`, white space trimmed. For list headers only.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.headers_named(name).flat_map(|h| {
            split_outside_quotes(h.raw_value, b',')
                .map(|v| v.trim_matches(|c: char| c.is_ascii() && is_lws(c as u8)))
                .filter(|v| !v.is_empty())
        })
    }

    fn single(&self, kind: HeaderName) -> Option<&str> {
        let i = single_index(kind)?;
        let slot = self.head.slots.get(usize::from(self.head.singles[i]))?;
        Some(self.text(slot.value))
    }

    fn values_of<'s, T: 's>(&'s self, kind: HeaderName, item: value::Item<'s, T>) -> impl Iterator<Item = T> + 's {
        self.head.slots.iter().filter(move |s| s.kind == kind).flat_map(move |s| Values::new(self.text(s.value), item))
    }

    /// The Call-ID.
    #[must_use]
    pub fn call_id(&self) -> Option<&str> {
        self.single(HeaderName::CallId)
    }

    /// The CSeq.
    #[must_use]
    pub fn cseq(&self) -> Option<CSeq<'_>> {
        let v = self.single(HeaderName::CSeq)?;
        value::cseq(v).ok().map(|(c, _)| c)
    }

    /// The Max-Forwards value.
    #[must_use]
    pub const fn max_forwards(&self) -> Option<u8> {
        self.head.max_forwards
    }

    /// The Content-Length value (on a datagram it may be absent).
    #[must_use]
    pub const fn content_length(&self) -> Option<u64> {
        self.head.content_length
    }

    /// The From value.
    #[must_use]
    pub fn from(&self) -> Option<NameAddr<'_>> {
        self.single(HeaderName::From).and_then(|v| value::single(v, value::from_to_item()).ok())
    }

    /// The To value.
    #[must_use]
    pub fn to(&self) -> Option<NameAddr<'_>> {
        self.single(HeaderName::To).and_then(|v| value::single(v, value::from_to_item()).ok())
    }

    /// The From tag.
    #[must_use]
    pub fn from_tag(&self) -> Option<&str> {
        self.from().and_then(|f| f.tag())
    }

    /// The To tag.
    #[must_use]
    pub fn to_tag(&self) -> Option<&str> {
        self.to().and_then(|t| t.tag())
    }

    /// Every Via value, topmost first (comma-separated values split).
    pub fn vias(&self) -> impl Iterator<Item = Via<'_>> + '_ {
        self.values_of(HeaderName::Via, value::via_item())
    }

    /// The topmost Via value.
    #[must_use]
    pub fn top_via(&self) -> Option<Via<'_>> {
        self.vias().next()
    }

    /// Whether the Contact is `*` (REGISTER, RFC 3261 s.10.2.2).
    #[must_use]
    pub fn is_contact_star(&self) -> bool {
        self.headers_named("Contact").any(|h| h.raw_value == "*")
    }

    /// Every Contact value (none for `Contact: *`).
    pub fn contacts(&self) -> impl Iterator<Item = NameAddr<'_>> + '_ {
        self.head
            .slots
            .iter()
            .filter(|s| s.kind == HeaderName::Contact)
            .map(|s| self.text(s.value))
            .filter(|v| *v != "*")
            .flat_map(|v| Values::new(v, value::contact_item()))
    }

    /// Every Route value, in order.
    pub fn routes(&self) -> impl Iterator<Item = NameAddr<'_>> + '_ {
        self.values_of(HeaderName::Route, value::route_item())
    }

    /// Every Record-Route value, in order.
    pub fn record_routes(&self) -> impl Iterator<Item = NameAddr<'_>> + '_ {
        self.values_of(HeaderName::RecordRoute, value::route_item())
    }

    /// Every P-Asserted-Identity value (RFC 3325).
    pub fn p_asserted_identities(&self) -> impl Iterator<Item = NameAddr<'_>> + '_ {
        self.values_of(HeaderName::PAssertedIdentity, value::asserted_identity_item())
    }

    /// Every Accept-Contact value (RFC 3841).
    pub fn accept_contacts(&self) -> impl Iterator<Item = ContactPredicate<'_>> + '_ {
        self.values_of(HeaderName::AcceptContact, value::contact_predicate_item())
    }

    /// The option tags of every Require header.
    pub fn require(&self) -> impl Iterator<Item = &str> + '_ {
        self.values_of(HeaderName::Require, value::token_list_item())
    }

    /// The option tags of every Supported header.
    pub fn supported(&self) -> impl Iterator<Item = &str> + '_ {
        self.values_of(HeaderName::Supported, value::token_list_item())
    }

    /// The methods of every Allow header.
    pub fn allow(&self) -> impl Iterator<Item = &str> + '_ {
        self.values_of(HeaderName::Allow, value::token_list_item())
    }

    /// The full Content-Type value as written.
    #[must_use]
    pub fn content_type_str(&self) -> Option<&str> {
        self.single(HeaderName::ContentType)
    }

    /// The Content-Type.
    #[must_use]
    pub fn content_type(&self) -> Option<MediaType<'_>> {
        self.content_type_str().and_then(|v| MediaType::parse(v).ok())
    }

    /// The Content-Disposition.
    #[must_use]
    pub fn content_disposition(&self) -> Option<ContentDisposition<'_>> {
        self.single(HeaderName::ContentDisposition)
            .and_then(|v| value::single(v, value::content_disposition_item()).ok())
    }

    /// The Expires value in seconds.
    #[must_use]
    pub fn expires(&self) -> Option<u32> {
        self.single(HeaderName::Expires).and_then(|v| v.parse().ok())
    }

    /// The Date value (`rfc1123-date`, always GMT), as written.
    #[must_use]
    pub fn date(&self) -> Option<&str> {
        self.single(HeaderName::Date)
    }

    /// The body: a slice of the received bytes (empty when there is none).
    #[must_use]
    pub fn body(&self) -> Bytes {
        self.raw.slice(self.body.range())
    }

    /// The header section: start line through the blank line.
    #[must_use]
    pub fn head_bytes(&self) -> Bytes {
        self.raw.slice(..self.body.start as usize)
    }
}

/// Parses one message at the start of `buf` with the stream rules (RFC 3261
/// s.18.3: the body is Content-Length bytes, and Content-Length is required).
/// The message shares `buf`; `usize` is the number of bytes it takes.
/// Offsets in errors count from `buf[0]`.
///
/// # Errors
/// Any [`ParseError`] that does not depend on bytes beyond `buf`.
pub fn parse_message(buf: &Bytes, limits: &Limits) -> Result<Status<(Message, usize)>, ParseError> {
    Ok(match parse_stream_head(buf, limits)? {
        Status::Complete((head, head_len, total)) => {
            Status::Complete((Message::from_parts(buf.slice(..total), 0, head, head_len), total))
        }
        Status::Partial => Status::Partial,
    })
}

/// [`parse_message`] up to the message's bounds: the head, its length and the
/// message's length.
fn parse_stream_head(buf: &[u8], limits: &Limits) -> Result<Status<(Head, usize, usize)>, ParseError> {
    let (head, head_len) = match parse_whole_head(buf, limits, Transport::Stream) {
        Some(parsed) => parsed,
        None => {
            let mut lines = Lines::new();
            let Some(head_len) = scan_head_lines(buf, &mut Scan::default(), limits, 0, Some(&mut lines))? else {
                return Ok(Status::Partial);
            };
            (parse_scanned_head(buf, head_len, 0, Transport::Stream, lines.get())?, head_len)
        }
    };
    let body_len = body_len(&head, head_len, limits, 0)?;
    let total = head_len + body_len;
    if buf.len() < total {
        return Ok(Status::Partial);
    }
    Ok(Status::Complete((head, head_len, total)))
}

/// Parses one datagram: exactly one message (RFC 3261 s.18.3).
///
/// # Errors
/// Any [`ParseError`]; offsets count from the datagram's first byte.
pub fn parse_datagram(datagram: Bytes, limits: &Limits) -> Result<Message, ParseError> {
    let len = datagram.len();
    let (head, head_len) = match parse_whole_head(&datagram, limits, Transport::Datagram) {
        Some(parsed) => parsed,
        None => {
            let mut lines = Lines::new();
            let Some(head_len) = scan_head_lines(&datagram, &mut Scan::default(), limits, 0, Some(&mut lines))? else {
                return Err(ParseError::Incomplete { at: len as u64 });
            };
            (parse_scanned_head(&datagram, head_len, 0, Transport::Datagram, lines.get())?, head_len)
        }
    };
    let available = len - head_len;
    let body_len = match head.content_length {
        // RFC 3261 s.18.3: "If the transport packet ends before the end of the
        // message body, this is considered an error."
        Some(n) if n > available as u64 => return Err(ParseError::BodyTruncated { at: len as u64 }),
        // "If there are additional bytes in the transport packet beyond the end
        // of the body, they MUST be discarded."
        Some(n) => n as usize,
        // "If the message has no Content-Length header field, the message body is
        // assumed to end at the end of the transport packet."
        None => available,
    };
    if body_len > limits.max_body() {
        return Err(ParseError::BodyTooLarge { at: head_len as u64, limit: limits.max_body() });
    }
    let raw = datagram.slice(..head_len + body_len);
    Ok(Message::from_parts(raw, 0, head, head_len))
}

/// The body length of a stream message, checked against the limit.
pub(crate) fn body_len(head: &Head, head_len: usize, limits: &Limits, base: u64) -> Result<usize, ParseError> {
    // RFC 3261 s.18.3: "The Content-Length header field MUST be used with stream
    // oriented transports." (parse_head already refused its absence.)
    let n = head.content_length.unwrap_or(0);
    if n > limits.max_body() as u64 {
        return Err(ParseError::BodyTooLarge { at: base + head_len as u64, limit: limits.max_body() });
    }
    Ok(n as usize)
}

/// Where the search for the end of a header section stands, so that bytes
/// handed over later are not searched again.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Scan {
    line_start: usize,
    searched: usize,
    headers: usize,
    started: bool,
}

impl Scan {
    pub(crate) const fn is_fresh(&self) -> bool {
        !self.started && self.searched == 0
    }
}

/// The newlines a fresh scan found in a header section, so that the parse does not
/// search for them again. A section of more lines is searched again.
pub(crate) struct Lines {
    at: [u32; 64],
    len: usize,
}

impl Lines {
    const fn new() -> Self {
        Self { at: [0; 64], len: 0 }
    }
    fn push(&mut self, nl: usize) {
        if let Some(slot) = self.at.get_mut(self.len) {
            // Below `Limits::max_head`, itself at most 1 GiB.
            *slot = nl as u32;
        }
        self.len += 1;
    }
    /// Every newline, when they all fit.
    fn get(&self) -> Option<&[u32]> {
        self.at.get(..self.len)
    }
}

/// Finds the end of the header section in `data` (the message's bytes from its
/// first byte): `Some(len)` counts the blank line. Enforces the head and
/// header-count limits, before the content is validated.
pub(crate) fn scan_head(data: &[u8], scan: &mut Scan, limits: &Limits, base: u64) -> Result<Option<usize>, ParseError> {
    scan_head_lines(data, scan, limits, base, None)
}

/// [`scan_head`], recording the newlines it finds in `lines` (`scan` must be fresh).
fn scan_head_lines(
    data: &[u8],
    scan: &mut Scan,
    limits: &Limits,
    base: u64,
    mut lines: Option<&mut Lines>,
) -> Result<Option<usize>, ParseError> {
    let cap = data.len().min(limits.max_head());
    let from = scan.searched.max(scan.line_start);
    // One iterator over the window: memchr's setup is paid once, not per line.
    for i in memchr::memchr_iter(b'\n', data.get(from..cap).unwrap_or_default()) {
        let nl = from + i;
        if let Some(lines) = &mut lines {
            lines.push(nl);
        }
        let ls = scan.line_start;
        // A blank line ends the section; a bare LF one too, refused later by parse_head.
        let blank = nl == ls || (nl == ls + 1 && data[ls] == b'\r');
        if scan.started && blank {
            return Ok(Some(nl + 1));
        }
        if scan.started && !matches!(data[ls], b' ' | b'\t') {
            scan.headers += 1;
            if scan.headers > limits.max_headers() {
                return Err(ParseError::TooManyHeaders { at: base + ls as u64, limit: limits.max_headers() });
            }
        }
        scan.started = true;
        scan.line_start = nl + 1;
    }
    scan.searched = cap.max(from);
    if data.len() >= limits.max_head() {
        return Err(ParseError::HeadTooLong { at: base + limits.max_head() as u64, limit: limits.max_head() });
    }
    Ok(None)
}

/// The index of the CR that ends the line `[start, nl]`.
fn line_end(data: &[u8], start: usize, nl: usize, base: u64) -> Result<usize, ParseError> {
    // RFC 3261 s.7: lines end with CRLF; a bare LF (or CR) is not a line ending.
    if nl > start && data[nl - 1] == b'\r' {
        Ok(nl - 1)
    } else {
        Err(ParseError::LineEnding { at: base + nl as u64 })
    }
}

/// Parses and validates the header section `data[..head_len]`, which ends with
/// its blank line. Errors come in byte order: the first offending byte wins.
pub(crate) fn parse_head(data: &[u8], head_len: usize, base: u64, transport: Transport) -> Result<Head, ParseError> {
    parse_scanned_head(data, head_len, base, transport, None)
}

/// [`parse_head`] after a scan found the section's end (and maybe its newlines).
fn parse_scanned_head(
    data: &[u8],
    head_len: usize,
    base: u64,
    transport: Transport,
    lines: Option<&[u32]>,
) -> Result<Head, ParseError> {
    match parse_head_lines(data, head_len, base, transport, lines, Utf8::Exact)? {
        Some((head, _)) => Ok(head),
        // The scan ended the section with a blank line; one without CRLF was refused.
        None => Err(ParseError::LineEnding { at: base + head_len as u64 }),
    }
}

/// Parses a header section that is whole in `data`, valid and within the limits;
/// `None` otherwise, so that the incremental scan and an exact parse decide
/// between an error, a limit and a partial section, in that order.
///
/// The section ends at the first line that is just CRLF: when the section parses
/// (every line ends with CRLF) that is the blank line the scan would find, so only
/// the limits are left to check. Lines are found as the parse goes, and UTF-8 is
/// checked only where the grammar admits non-ASCII ([`Utf8::Deferred`]): the exact
/// parse that follows any failure reports errors in byte order.
fn parse_whole_head(data: &[u8], limits: &Limits, transport: Transport) -> Option<(Head, usize)> {
    let window = data.len().min(limits.max_head());
    let (head, head_len) = parse_head_deferred(data.get(..window).unwrap_or(data), transport)?;
    // Every header line is a slot; the scan counts the same lines.
    (head.slots.len() <= limits.max_headers()).then_some((head, head_len))
}

/// memchr's AVX2 searcher for a newline.
#[cfg(target_arch = "x86_64")]
type Avx2 = memchr::arch::x86_64::avx2::memchr::One;
/// No searcher but memchr's own.
#[cfg(not(target_arch = "x86_64"))]
type Avx2 = ();

/// The first newline at or after `from` in `data`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn find_newline(avx2: Option<&Avx2>, data: &[u8], from: usize) -> Option<usize> {
    let rest = data.get(from..)?;
    match avx2 {
        // memchr's AVX2 searcher, called directly: on lines this short the runtime
        // dispatch of `memchr` costs about as much as the search.
        Some(one) => one.find(rest),
        None => memchr::memchr(b'\n', rest),
    }
    .map(|i| from + i)
}

/// The first newline at or after `from` in `data`.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn find_newline(_: Option<&Avx2>, data: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(b'\n', data.get(from..)?).map(|i| from + i)
}

/// [`parse_head_lines`] with [`Utf8::Deferred`] over a window that may hold a whole
/// header section: the head and its length when the section is whole, valid and
/// ends with a blank line; `None` for anything else, which the exact parse then
/// decides (and that only it reports, in byte order).
///
/// Each line is read as the exact parse reads it, in a different order: the
/// header name first (a name is made of token bytes, and no CR or LF comes before
/// its colon), then the value. The values of the headers the parser reads itself
/// (Max-Forwards, Content-Length, Call-ID, CSeq and Content-Type) are, in their
/// usual form, read as far as their grammar goes, and must then end the line: no
/// newline search for them. Every other value is found as the exact parse finds
/// it (the line through its last fold) and checked by the same [`finish_header`].
fn parse_head_deferred(data: &[u8], transport: Transport) -> Option<(Head, usize)> {
    let (start, nl) = match request_line(data) {
        Some(read) => read,
        None => {
            let nl = memchr::memchr(b'\n', data)?;
            let end = line_end(data, 0, nl, 0).ok()?;
            (start_line(data.get(..end)?, 0).ok()?, nl)
        }
    };
    let mut head = Head::new(start);
    let mut pos = nl + 1;
    let head_len = loop {
        let rest = data.get(pos..)?;
        match rest {
            // The blank line ends the section.
            [b'\r', b'\n', ..] => break pos + 2,
            // A fold is read with the header it continues; a bare CR is no line end.
            [b' ' | b'\t' | b'\r', ..] | [] => return None,
            _ => {}
        }
        let (name_len, colon, kind) = header_name(rest).ok()?;
        let name = Span::new(pos, pos + name_len);
        let value = pos + colon + 1;
        // The value read by its grammar up to its line's end: the value of the exact
        // parse, valid, when only SP and HTAB then the line's CRLF follow, and the next
        // line does not fold it (see `simple_value` and `value::validate_line`).
        let s = skip_wsp(data, value);
        let rest = data.get(s..)?;
        let read = if matches!(
            kind,
            HeaderName::MaxForwards
                | HeaderName::ContentLength
                | HeaderName::CallId
                | HeaderName::CSeq
                | HeaderName::ContentType
        ) {
            simple_value(rest, kind, head.start, data)
        } else {
            value::validate_line(kind, rest).map(|len| (len, 0))
        };
        if let Some((len, n)) = read {
            let e = s + len;
            let t = skip_wsp(data, e);
            let single = single_index(kind);
            // RFC 3261 s.7.3.1: a header that is no list appears once (the exact parse
            // reports the duplicate).
            if data.get(t..t + 2) == Some(b"\r\n")
                && !matches!(data.get(t + 2), Some(b' ' | b'\t') | None)
                && single.map_or(true, |i| head.singles[i] == NONE)
            {
                if let Some(i) = single {
                    head.singles[i] = head.slots.len() as u16;
                }
                match kind {
                    HeaderName::MaxForwards => head.max_forwards = u8::try_from(n).ok(),
                    HeaderName::ContentLength => head.content_length = Some(n),
                    HeaderName::CSeq => head.cseq = u32::try_from(n).unwrap_or_default(),
                    _ => {}
                }
                head.slots.push(Slot { name, value: Span::new(s, e), kind });
                pos = t + 2;
                continue;
            }
        }
        pos = other_line(data, &mut head, Slot { name, value: Span::new(value, value), kind })?;
    };
    // The headers that `parse_head_lines` requires (see there).
    for kind in [HeaderName::To, HeaderName::From, HeaderName::CSeq, HeaderName::CallId] {
        if single_index(kind).is_some_and(|i| head.singles[i] == NONE) {
            return None;
        }
    }
    if transport == Transport::Stream && head.content_length.is_none() {
        return None;
    }
    Some((head, head_len))
}

/// Reads the usual Request-Line at the start of `data`, `Method SP Request-URI SP
/// "SIP/2.0" CRLF`, as [`start_line`] reads it, without a newline search (no CR or
/// LF comes before its CRLF): the start and the index of its LF. `None` for any
/// other line (a Status-Line, another spelling of the version, an error), left to
/// `start_line`.
#[inline(always)]
fn request_line(data: &[u8]) -> Option<(Start, usize)> {
    // Request-Line = Method SP Request-URI SP SIP-Version CRLF; Method = token (a
    // Status-Line's "SIP/" is no token followed by SP).
    let m = run_end(data, 0, TOKEN);
    if m == 0 || data.get(m) != Some(&b' ') {
        return None;
    }
    let u_end = uri::check_until(data, m + 1, b' ', UriContext::RequestUri)?;
    let v = u_end + 1;
    (data.get(v..v + 9) == Some(b"SIP/2.0\r\n"))
        .then_some((Start::Request { method: Span::new(0, m), uri: Span::new(m + 1, u_end) }, v + 8))
}

/// Reads the value of the header `slot` as the exact parse does, from `slot.value.start`
/// (just after the colon): the line (no CR or LF comes before the colon), then the
/// lines that fold it, checked by [`finish_header`]; returns where the next line starts.
#[cold]
#[inline(never)]
fn other_line(data: &[u8], head: &mut Head, mut slot: Slot) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    let avx2 = Avx2::new(b'\n');
    #[cfg(target_arch = "x86_64")]
    let avx2 = avx2.as_ref();
    #[cfg(not(target_arch = "x86_64"))]
    let avx2: Option<&Avx2> = None;
    let value = slot.value.start as usize;
    let mut nl = find_newline(avx2, data, value)?;
    let mut end = line_end(data, slot.name.start as usize, nl, 0).ok()?;
    while let Some(b' ' | b'\t') = data.get(nl + 1) {
        let from = nl + 1;
        nl = find_newline(avx2, data, from)?;
        end = line_end(data, from, nl, 0).ok()?;
    }
    slot.value = Span::new(value, end);
    finish_header(data, None, Utf8::Deferred, head, slot, 0).ok()?;
    Some(nl + 1)
}

/// The index of the first byte at or after `i` that is not SP or HTAB.
#[inline(always)]
fn skip_wsp(data: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t') = data.get(i) {
        i += 1;
    }
    i
}

/// Reads `v`, the rest of a header section from a value's first byte, as the value
/// of a header the parser reads itself, in its usual form (no white space inside):
/// the value's length and its number (Max-Forwards, Content-Length, the CSeq
/// sequence number; 0 for the others). `None` for another form, left to
/// [`finish_header`]. What it accepts, with the line's end right after it (which
/// the caller checks), `finish_header` accepts the same way: the same bytes, by
/// the same grammar.
#[inline(always)]
fn simple_value(v: &[u8], kind: HeaderName, start: Start, data: &[u8]) -> Option<(usize, u64)> {
    let digits = || run_end(v, 0, DIGIT);
    Some(match kind {
        // Max-Forwards = "Max-Forwards" HCOLON 1*DIGIT (RFC 3261 s.20.22: 0-255)
        HeaderName::MaxForwards => {
            let d = digits();
            let n = parse_u64(v.get(..d)?)?;
            u8::try_from(n).ok()?;
            (d, n)
        }
        // Content-Length = ( "Content-Length" / "l" ) HCOLON 1*DIGIT
        HeaderName::ContentLength => {
            let d = digits();
            (d, parse_u64(v.get(..d)?)?)
        }
        // callid = word [ "@" word ]
        HeaderName::CallId => {
            let word = long_run_end(v, 0, WORD);
            let end = if v.get(word) == Some(&b'@') { long_run_end(v, word + 1, WORD) } else { word };
            if word == 0 || end == word + 1 {
                return None;
            }
            (end, 0)
        }
        // CSeq = "CSeq" HCOLON 1*DIGIT LWS Method, the method the request's
        // (RFC 3261 s.8.1.1.5); here one SP between them.
        HeaderName::CSeq => {
            let d = digits();
            // RFC 3261 s.8.1.1.5: "The sequence number MUST be expressible as a 32-bit unsigned integer"
            let seq = parse_u64(v.get(..d)?).filter(|&n| u32::try_from(n).is_ok())?;
            let method_end = run_end(v, d + 1, TOKEN);
            if v.get(d) != Some(&b' ') || method_end == d + 1 {
                return None;
            }
            if let Start::Request { method, .. } = start {
                if data.get(method.range()) != v.get(d + 1..method_end) {
                    return None;
                }
            }
            (method_end, seq)
        }
        // Content-Type = ( "Content-Type" / "c" ) HCOLON media-type;
        // media-type = m-type SLASH m-subtype, here with no LWS and no parameters.
        HeaderName::ContentType => {
            let main = run_end(v, 0, TOKEN);
            let sub = run_end(v, main + 1, TOKEN);
            if main == 0 || v.get(main) != Some(&b'/') || sub == main + 1 {
                return None;
            }
            (sub, 0)
        }
        _ => return None,
    })
}

/// When a header parse checks that values are UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Utf8 {
    /// With each value, before its grammar, so the first offending byte is reported.
    Exact,
    /// Only where the grammar admits non-ASCII, with the grammar, which is checked on
    /// bytes: in the Reason-Phrase, in an untyped value, and in a typed value's quoted
    /// strings (`Cursor::quoted`). Names, the Request-URI, white space, line ends and
    /// the rest of typed values admit ASCII only, so the whole section is then UTF-8.
    /// The error may not be the first, so only [`parse_whole_head`] uses it.
    Deferred,
}

/// Where the newlines of a header section come from.
enum NewLines<'a> {
    /// Recorded by the scan that found the section's end.
    Recorded(std::slice::Iter<'a, u32>),
    /// Searched again.
    Search(memchr::Memchr<'a>),
    /// Searched again with memchr's AVX2 searcher, called directly: on lines this
    /// short the runtime dispatch of `memchr_iter` costs about as much as the search.
    #[cfg(target_arch = "x86_64")]
    Avx2(memchr::arch::x86_64::avx2::memchr::OneIter<'a, 'a>),
}

impl<'a> NewLines<'a> {
    /// The newlines of `data`, searched with `avx2` when the CPU has it.
    #[cfg(target_arch = "x86_64")]
    fn search(data: &'a [u8], avx2: Option<&'a memchr::arch::x86_64::avx2::memchr::One>) -> Self {
        match avx2 {
            Some(one) => Self::Avx2(one.iter(data)),
            None => Self::Search(memchr::memchr_iter(b'\n', data)),
        }
    }
}

impl Iterator for NewLines<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        match self {
            Self::Recorded(it) => it.next().map(|&nl| nl as usize),
            Self::Search(it) => it.next(),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2(it) => it.next(),
        }
    }
}

/// [`parse_head`] over `data[..window]`, with the newlines found before (or
/// searching them): the head and its length, or `None` when the window holds no
/// blank line ending the section.
fn parse_head_lines(
    data: &[u8],
    window: usize,
    base: u64,
    transport: Transport,
    lines: Option<&[u32]>,
    utf8: Utf8,
) -> Result<Option<(Head, usize)>, ParseError> {
    let at = |i: usize| base + i as u64;
    let data = data.get(..window).unwrap_or(data);
    #[cfg(target_arch = "x86_64")]
    let avx2 = memchr::arch::x86_64::avx2::memchr::One::new(b'\n');
    let mut newlines = match lines {
        Some(lines) => NewLines::Recorded(lines.iter()),
        #[cfg(target_arch = "x86_64")]
        None => NewLines::search(data, avx2.as_ref()),
        #[cfg(not(target_arch = "x86_64"))]
        None => NewLines::Search(memchr::memchr_iter(b'\n', data)),
    };
    // Exact: one UTF-8 check for the whole section (the usual case), values
    // sliced from it; when it fails, each value is checked alone to find the
    // first offending byte in order. Deferred: see `Utf8::Deferred`.
    let text = match utf8 {
        Utf8::Exact => std::str::from_utf8(data).ok(),
        Utf8::Deferred => None,
    };
    let Some(nl) = newlines.next() else { return Ok(None) };
    let end = line_end(data, 0, nl, base)?;
    let start = start_line(&data[..end], base)?;
    let mut head = Head::new(start);
    let mut pos = nl + 1;
    // The header being read (its value may go on over folded lines), when `open`.
    let mut current = Slot { name: Span::default(), value: Span::default(), kind: HeaderName::Other };
    let mut open = false;
    let head_len = loop {
        let Some(nl) = newlines.next() else { return Ok(None) };
        let end = line_end(data, pos, nl, base)?;
        let line = &data[pos..end];
        let first = line.first().copied();
        // RFC 3261 s.7.3.1: "Header fields can be extended over multiple lines by
        // preceding each extra line with at least one SP or horizontal tab (HT)."
        if let Some(b' ' | b'\t') = first {
            if !open {
                return Err(ParseError::Header { at: at(pos) });
            }
            current.value.end = end as u32;
            pos = nl + 1;
            continue;
        }
        // Any other line ends the header before it.
        if open {
            finish_header(data, text, utf8, &mut head, current, base)?;
        }
        if first.is_none() {
            break nl + 1;
        }
        let (name_len, colon, kind) = header_name(line).map_err(|i| ParseError::Header { at: at(pos + i) })?;
        current = Slot { name: Span::new(pos, pos + name_len), value: Span::new(pos + colon + 1, end), kind };
        open = true;
        pos = nl + 1;
    };
    let blank = at(pos);
    // RFC 3261 s.8.1.1: "A valid SIP request formulated by a UAC MUST, at a minimum,
    // contain the following header fields: To, From, CSeq, Call-ID, Max-Forwards, and
    // Via". The parser requires the four that identify a transaction and a dialog:
    // Max-Forwards may be absent (RFC 4475 s.3.4.1, RFC 2543 syntax, must be accepted)
    // and so may Via (RFC 5547 s.9.1 Figure 8 has none); the transaction layer
    // answers 400 to a request without Via.
    for kind in [HeaderName::To, HeaderName::From, HeaderName::CSeq, HeaderName::CallId] {
        if single_index(kind).is_some_and(|i| head.singles[i] == NONE) {
            return Err(ParseError::MissingHeader { at: blank, header: kind });
        }
    }
    if transport == Transport::Stream && head.content_length.is_none() {
        // RFC 3261 s.18.3: "The Content-Length header field MUST be used with stream
        // oriented transports."
        return Err(ParseError::MissingContentLength { at: blank });
    }
    Ok(Some((head, head_len)))
}

/// Reads `header-name HCOLON` at the start of a header line: the name's length,
/// the index of the colon, and the header. The error is the index of the first
/// offending byte.
#[inline(always)]
fn header_name(line: &[u8]) -> Result<(usize, usize, HeaderName), usize> {
    // message-header = header-name HCOLON header-value; header-name = token;
    // HCOLON = *( SP / HTAB ) ":" SWS
    // A token holds no ":", so the first ":" ends the name: find it a word at a time,
    // and classify the name. A named header is spelled with token bytes only, so
    // only another name needs its bytes checked.
    if let Some(colon) = find_byte(line, b':') {
        let mut name_len = colon;
        while name_len > 0 && matches!(line[name_len - 1], b' ' | b'\t') {
            name_len -= 1;
        }
        let kind = HeaderName::from_line(line, name_len);
        if kind != HeaderName::Other || (name_len > 0 && run_end(&line[..name_len], 0, TOKEN) == name_len) {
            return Ok((name_len, colon, kind));
        }
    }
    // Anything else is an error: find its first byte.
    let name_len = run_end(line, 0, TOKEN);
    if name_len == 0 {
        return Err(0);
    }
    let colon = name_len + line[name_len..].iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    if line.get(colon) != Some(&b':') {
        return Err(colon);
    }
    Ok((name_len, colon, HeaderName::from_bytes(&line[..name_len])))
}

/// Whether the header's grammar is checked byte by byte by its own parser.
const fn is_typed(kind: HeaderName) -> bool {
    matches!(
        kind,
        HeaderName::Via
            | HeaderName::From
            | HeaderName::To
            | HeaderName::CallId
            | HeaderName::CSeq
            | HeaderName::MaxForwards
            | HeaderName::Contact
            | HeaderName::Route
            | HeaderName::RecordRoute
            | HeaderName::ContentType
            | HeaderName::ContentLength
            | HeaderName::ContentDisposition
            | HeaderName::Require
            | HeaderName::Supported
            | HeaderName::Allow
            | HeaderName::Expires
            | HeaderName::Date
            | HeaderName::PAssertedIdentity
            | HeaderName::AcceptContact
            | HeaderName::RejectContact
    )
}

#[inline(always)]
fn finish_header(
    data: &[u8],
    text: Option<&str>,
    utf8: Utf8,
    head: &mut Head,
    mut slot: Slot,
    base: u64,
) -> Result<(), ParseError> {
    let at = |i: usize| base + i as u64;
    let kind = slot.kind;
    // Trim the white space of HCOLON's SWS and at the end of the value.
    let (mut s, mut e) = (slot.value.start as usize, slot.value.end as usize);
    // The usual value follows one SP and ends with a byte that is not white space.
    if matches!(data.get(s..e), Some([b' ', first, .., last]) if !is_lws(*first) && !is_lws(*last)) {
        s += 1;
    } else {
        while s < e && is_lws(data[s]) {
            s += 1;
        }
        while e > s && is_lws(data[e - 1]) {
            e -= 1;
        }
    }
    slot.value = Span::new(s, e);
    let raw = &data[s..e];
    if !is_typed(kind) {
        // header-value = *(TEXT-UTF8char / UTF8-CONT / LWS)
        let mut i = 0;
        while i < raw.len() {
            let b = raw[i];
            if !is(b, TEXT) {
                // Only the CRLF of a fold (checked by the line scan) may appear.
                let fold =
                    (b == b'\r' && raw.get(i + 1) == Some(&b'\n')) || (b == b'\n' && i > 0 && raw[i - 1] == b'\r');
                if !fold {
                    return Err(ParseError::Header { at: at(s + i) });
                }
            }
            i += 1;
        }
        if utf8 == Utf8::Deferred {
            // A typed value's grammar is ASCII but for quoted strings, which its
            // checker checks as UTF-8 itself; this value is checked here.
            std::str::from_utf8(raw).map_err(|e| ParseError::Header { at: at(s + e.valid_up_to()) })?;
        }
    }
    if utf8 == Utf8::Exact && text.and_then(|t| t.get(s..e)).is_none() {
        std::str::from_utf8(raw).map_err(|e| ParseError::Header { at: at(s + e.valid_up_to()) })?;
    }
    if let Some(i) = single_index(kind) {
        if head.singles[i] != NONE {
            if kind == HeaderName::ContentLength {
                // Two lengths leave the framing undecided.
                return Err(ParseError::ContentLength { at: at(slot.name.start as usize) });
            }
            // RFC 3261 s.7.3.1: "Multiple header field rows with the same field-name MAY be
            // present in a message if and only if the entire field-value for that header
            // field is defined as a comma-separated list" (RFC 4475 s.3.3.8).
            return Err(ParseError::DuplicateHeader { at: at(slot.name.start as usize), header: kind });
        }
        head.singles[i] = head.slots.len() as u16;
    }
    let bad = |i: usize| ParseError::HeaderValue { at: at(s + i), header: kind };
    match kind {
        HeaderName::CSeq => {
            let (seq, method_at) = value::check_cseq(raw).map_err(bad)?;
            if let Start::Request { method, .. } = head.start {
                // RFC 3261 s.8.1.1.5: "The method MUST match that of the request."
                // (The CSeq method takes the rest of the trimmed value.)
                if data.get(method.range()) != raw.get(method_at..) {
                    return Err(ParseError::CSeqMethod { at: at(s + method_at) });
                }
            }
            head.cseq = seq;
        }
        HeaderName::MaxForwards => {
            // Max-Forwards = "Max-Forwards" HCOLON 1*DIGIT; RFC 3261 s.20.22: "The
            // Max-Forwards value is an integer in the range 0-255" (RFC 4475 s.3.1.2.4).
            let n = parse_u64(raw).ok_or_else(|| bad(0))?;
            head.max_forwards = Some(u8::try_from(n).map_err(|_| bad(0))?);
        }
        HeaderName::ContentLength => {
            // Content-Length = ( "Content-Length" / "l" ) HCOLON 1*DIGIT
            // (RFC 4475 s.3.1.2.3: a negative value is invalid).
            head.content_length = Some(parse_u64(raw).ok_or(ParseError::ContentLength { at: at(s) })?);
        }
        _ => value::validate(kind, raw).map_err(bad)?,
    }
    head.slots.push(slot);
    Ok(())
}

fn start_line(line: &[u8], base: u64) -> Result<Start, ParseError> {
    let at = |i: usize| base + i as u64;
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF
        let sp = find_byte(line, b' ').ok_or(ParseError::StartLine { at: at(line.len()) })?;
        check_version(&line[..sp], base)?;
        let code = line.get(sp + 1..sp + 4).filter(|c| c.iter().all(u8::is_ascii_digit));
        let code = code.map(|c| c.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0')));
        // Status-Code = 3DIGIT; RFC 3261 s.7.2: "The Status-Code is a 3-digit integer";
        // s.21: classes 1xx to 6xx (RFC 4475 s.3.1.2.19).
        let code = code.filter(|c| (100..=699).contains(c)).ok_or(ParseError::StatusCode { at: at(sp + 1) })?;
        match line.get(sp + 4) {
            Some(b' ') => {}
            Some(b'0'..=b'9') => return Err(ParseError::StatusCode { at: at(sp + 1) }),
            _ => return Err(ParseError::StartLine { at: at(sp + 4) }),
        }
        // Reason-Phrase = *(reserved / unreserved / escaped / UTF8-NONASCII / UTF8-CONT / SP / HTAB)
        let reason = &line[sp + 5..];
        check_escaped_run(reason, REASON).map_err(|i| ParseError::StartLine { at: at(sp + 5 + i) })?;
        std::str::from_utf8(reason).map_err(|e| ParseError::StartLine { at: at(sp + 5 + e.valid_up_to()) })?;
        return Ok(Start::Response { code, reason: Span::new(sp + 5, line.len()) });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version CRLF; Method = token.
    // RFC 4475 s.3.1.2.9 and s.3.1.2.10: extra SP around the elements is invalid.
    let m = run_end(line, 0, TOKEN);
    if m == 0 || line.get(m) != Some(&b' ') {
        return Err(ParseError::StartLine { at: at(m) });
    }
    let u = m + 1;
    // The usual URI is read up to the SP in one pass; the others (and every error) as
    // the URI between the SPs.
    let u_end = match uri::check_until(line, u, b' ', UriContext::RequestUri) {
        Some(u_end) => u_end,
        None => {
            let u_end =
                find_byte(&line[u..], b' ').map(|i| u + i).ok_or(ParseError::StartLine { at: at(line.len()) })?;
            // RFC 4475 s.3.1.2.7, s.3.1.2.8, s.3.1.2.11: no "<>", no LWS, no headers.
            let uri_bytes = &line[u..u_end];
            if let Err(i) = uri::check(uri_bytes, UriContext::RequestUri) {
                // A URI is ASCII, so a valid one is UTF-8; a bad one reports bad UTF-8 first.
                let i = std::str::from_utf8(uri_bytes).map_or_else(|e| e.valid_up_to(), |_| i);
                return Err(ParseError::RequestUri { at: at(u + i) });
            }
            u_end
        }
    };
    check_version(&line[u_end + 1..], base + (u_end + 1) as u64)?;
    Ok(Start::Request { method: Span::new(0, m), uri: Span::new(u, u_end) })
}

/// Checks `SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT` and that it is 2.0.
fn check_version(v: &[u8], base: u64) -> Result<(), ParseError> {
    if v == b"SIP/2.0" {
        // The usual spelling; the general checks below accept it too.
        return Ok(());
    }
    let at = |i: usize| base + i as u64;
    // RFC 3261 s.7.1: "The SIP-Version string is case-insensitive, but
    // implementations MUST send upper-case."
    if v.len() < 4 || !v[..4].eq_ignore_ascii_case(b"SIP/") {
        let bad = v.iter().zip(b"SIP/").position(|(a, b)| !a.eq_ignore_ascii_case(b)).unwrap_or(v.len().min(4));
        return Err(ParseError::StartLine { at: at(bad) });
    }
    let major = v[4..].iter().take_while(|b| b.is_ascii_digit()).count();
    let dot = 4 + major;
    let minor = v.get(dot + 1..).unwrap_or_default().iter().take_while(|b| b.is_ascii_digit()).count();
    if major == 0 || v.get(dot) != Some(&b'.') {
        return Err(ParseError::StartLine { at: at(dot) });
    }
    if minor == 0 || dot + 1 + minor != v.len() {
        return Err(ParseError::StartLine { at: at(dot + 1 + minor) });
    }
    // RFC 3261 s.7.1: "applications sending SIP messages MUST include a SIP-Version
    // of "SIP/2.0"" (RFC 4475 s.3.1.2.16: others get 505).
    if &v[4..] != b"2.0" {
        return Err(ParseError::Version { at: at(0) });
    }
    Ok(())
}

/// Finds a usable Content-Length in a header section that failed to parse, so a
/// stream can skip the message: exactly one, and valid.
pub(crate) fn salvage_content_length(head: &[u8]) -> Option<u64> {
    let mut found = None;
    let mut lines = head.split(|&b| b == b'\n').skip(1);
    let mut pending: Option<Vec<u8>> = None;
    let mut take = |value: Option<Vec<u8>>| -> Option<()> {
        if let Some(v) = value {
            let v: Vec<u8> = v.into_iter().filter(|b| !is_lws(*b)).collect();
            if found.is_some() {
                return None;
            }
            found = Some(parse_u64(&v)?);
        }
        Some(())
    };
    for line in lines.by_ref() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if let Some(v) = &mut pending {
                v.extend_from_slice(line);
            }
            continue;
        }
        take(pending.take())?;
        if line.is_empty() {
            break;
        }
        let name_len = run_end(line, 0, TOKEN);
        if HeaderName::from_bytes(&line[..name_len]) == HeaderName::ContentLength {
            let colon = memchr::memchr(b':', line)?;
            pending = Some(line[colon + 1..].to_vec());
        }
    }
    take(pending.take())?;
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Head, ParseError> {
        let data = text.as_bytes();
        let mut scan = Scan::default();
        let n = scan_head(data, &mut scan, &Limits::default(), 0).unwrap().unwrap();
        parse_head(data, n, 0, Transport::Stream)
    }

    const TAIL: &str = "Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\nTo: <sip:b@example.com>\r\n\
From: <sip:a@example.com>;tag=1\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn start_lines() {
        for (line, want) in [
            ("OPTIONS sip:b@example.com SIP/2.0", Ok(())),
            ("OPTIONS sip:b@example.com sip/2.0", Ok(())),
            ("OPTIONS sip:b@example.com SIP/2.0 ", Err(ParseError::StartLine { at: 33 })),
            ("OPTIONS  sip:b@example.com SIP/2.0", Err(ParseError::RequestUri { at: 8 })),
            ("OPTIONS <sip:b@example.com> SIP/2.0", Err(ParseError::RequestUri { at: 8 })),
            ("OPTIONS sip:b@example.com SIP/7.0", Err(ParseError::Version { at: 26 })),
            ("OPTIONS sip:b@example.com SIP/2", Err(ParseError::StartLine { at: 31 })),
            ("OPTIONS sip:b@example.com HTTP/1.1", Err(ParseError::StartLine { at: 26 })),
            ("OPTIONS sip:b@example.com", Err(ParseError::StartLine { at: 25 })),
            ("OPT:IONS sip:b@example.com SIP/2.0", Err(ParseError::StartLine { at: 3 })),
            ("SIP/2.0 200 OK", Err(ParseError::CSeqMethod { at: 0 })),
            ("SIP/2.0 200 ", Err(ParseError::CSeqMethod { at: 0 })),
            ("SIP/2.0 200", Err(ParseError::StartLine { at: 11 })),
            ("SIP/2.0 099 Early", Err(ParseError::StatusCode { at: 8 })),
            ("SIP/2.0 700 Late", Err(ParseError::StatusCode { at: 8 })),
            ("SIP/2.0 4294967301 better not break the receiver", Err(ParseError::StatusCode { at: 8 })),
            ("SIP/2.0 OK", Err(ParseError::StatusCode { at: 8 })),
            ("SIP/2.0 200 \"OK\"", Err(ParseError::StartLine { at: 12 })),
            ("SIP/2.0 200 Caf\u{e9} %41", Err(ParseError::CSeqMethod { at: 0 })),
        ] {
            let text = format!("{line}\r\n{TAIL}");
            // Responses have no CSeq method rule: map Ok for them to the sentinel above.
            let got = head(&text).map(|_| ());
            let got = match (got, line.starts_with("SIP/")) {
                (Ok(()), true) => Err(ParseError::CSeqMethod { at: 0 }),
                (other, _) => other,
            };
            assert_eq!(got, want, "{line:?}");
        }
    }

    #[test]
    fn header_section_rules() {
        // Offsets are absolute: the Request-Line takes bytes 0..35, Via 35..83,
        // To 83..108, From 108..141, Call-ID 141..154, CSeq 154..171.
        let req = "OPTIONS sip:b@example.com SIP/2.0\r\n";
        for (headers, want) in [
            // RFC 4475 s.3.1.2.17 (mismatch01): CSeq method differs from the request method.
            (TAIL.replace("1 OPTIONS", "1 INVITE"), Err(ParseError::CSeqMethod { at: 162 })),
            (
                TAIL.replace("Call-ID: c1\r\n", "Call-ID: c1\r\ni: c2\r\n"),
                Err(ParseError::DuplicateHeader { at: 154, header: HeaderName::CallId }),
            ),
            (
                TAIL.replace("Content-Length: 0\r\n", "Content-Length: 0\r\nl: 0\r\n"),
                Err(ParseError::ContentLength { at: 190 }),
            ),
            (TAIL.replace("Content-Length: 0\r\n", ""), Err(ParseError::MissingContentLength { at: 171 })),
            (
                TAIL.replace("Call-ID: c1\r\n", ""),
                Err(ParseError::MissingHeader { at: 177, header: HeaderName::CallId }),
            ),
            (TAIL.replace("Call-ID: c1", "Call-ID c1"), Err(ParseError::Header { at: 149 })),
            (
                TAIL.replace("Call-ID: c1", " Call-ID: c1"),
                Err(ParseError::HeaderValue { at: 142, header: HeaderName::From }),
            ),
            (TAIL.replace("Call-ID: c1", "Call-ID: c1\r\nX: a\x01b"), Err(ParseError::Header { at: 158 })),
            (TAIL.replace("Call-ID: c1", "Call-ID: c1\r\nX: a\rb"), Err(ParseError::Header { at: 158 })),
            (TAIL.replace("Call-ID: c1", "Call-ID: c1\nX: y"), Err(ParseError::LineEnding { at: 152 })),
            (TAIL.replace("Content-Length: 0", "Content-Length: -1"), Err(ParseError::ContentLength { at: 187 })),
            (
                TAIL.replace("Call-ID: c1", "Call-ID: c1\r\nMax-Forwards: 256"),
                Err(ParseError::HeaderValue { at: 168, header: HeaderName::MaxForwards }),
            ),
            (TAIL.replace("Call-ID: c1", "Call-ID: c1\r\nX:\r\n\tfolded \r\n  value"), Ok(())),
        ] {
            let text = format!("{req}{headers}");
            assert_eq!(head(&text).map(|_| ()), want, "{headers:?}");
        }
        let bad_utf8 = [&b"OPTIONS sip:b@example.com SIP/2.0\r\nX: \xff\r\n"[..], TAIL.as_bytes()].concat();
        let mut scan = Scan::default();
        let n = scan_head(&bad_utf8, &mut scan, &Limits::default(), 0).unwrap().unwrap();
        assert_eq!(parse_head(&bad_utf8, n, 0, Transport::Stream).map(|_| ()), Err(ParseError::Header { at: 38 }));
    }

    #[test]
    fn folding_and_compact_forms() {
        let text = "INVITE sip:b@example.com SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\n  , SIP/2.0/TCP g\r\n\
t: <sip:b@example.com>\r\nf:\r\n <sip:a@example.com>\r\n ;tag=9\r\ni: abc\r\nCSeq: 2\r\n INVITE\r\nl: 3\r\n\
X-Long: a  \r\n\t b\r\n\r\nxyz";
        let message = Message::parse(Bytes::copy_from_slice(text.as_bytes())).unwrap();
        assert_eq!(message.vias().map(|v| v.host().to_owned()).collect::<Vec<_>>(), ["h", "g"]);
        assert_eq!(message.from_tag(), Some("9"));
        assert_eq!(message.cseq(), Some(CSeq { seq: 2, method: "INVITE" }));
        assert_eq!(message.call_id(), Some("abc"));
        assert_eq!(message.header("Call-ID"), Some("abc"));
        assert_eq!(message.header("i"), Some("abc"));
        let long = message.headers_named("x-long").next().unwrap();
        assert_eq!(long.value(), "a   b");
        assert_eq!(&message.body()[..], b"xyz");
    }

    #[test]
    fn single_headers() {
        for &kind in HeaderName::ALL.iter().chain(&[HeaderName::Other]) {
            let want = SINGLES.iter().position(|&single| single == kind);
            assert_eq!(single_index(kind), want, "{kind:?}");
            assert_eq!(want.is_some(), kind.is_single(), "{kind:?}");
        }
    }

    #[test]
    fn salvage() {
        assert_eq!(salvage_content_length(b"X\r\nA: b\r\nl: 5\r\n\r\n"), Some(5));
        assert_eq!(salvage_content_length(b"X\r\nContent-Length:\r\n 7\r\n\r\n"), Some(7));
        assert_eq!(salvage_content_length(b"X\r\nl: 5\r\nl: 5\r\n\r\n"), None);
        assert_eq!(salvage_content_length(b"X\r\nl: -5\r\n\r\n"), None);
        assert_eq!(salvage_content_length(b"X\r\nA: b\r\n\r\n"), None);
    }

    /// `parse_message` as it was before the one-pass fast path: scan, then parse.
    fn parse_message_scanned(buf: &Bytes, limits: &Limits) -> Result<Status<(Message, usize)>, ParseError> {
        let mut lines = Lines::new();
        let Some(head_len) = scan_head_lines(buf, &mut Scan::default(), limits, 0, Some(&mut lines))? else {
            return Ok(Status::Partial);
        };
        let head = parse_scanned_head(buf, head_len, 0, Transport::Stream, lines.get())?;
        let body_len = body_len(&head, head_len, limits, 0)?;
        let total = head_len + body_len;
        if buf.len() < total {
            return Ok(Status::Partial);
        }
        Ok(Status::Complete((Message::from_parts(buf.slice(..total), 0, head, head_len), total)))
    }

    #[test]
    fn one_pass_parse_matches_scan_then_parse() {
        let good = format!("OPTIONS sip:b@example.com SIP/2.0\r\n{TAIL}");
        let mut messages = vec![
            good.clone(),
            format!("{good}trailing"),
            good.replace("Content-Length: 0", "Content-Length: 3") + "abc",
            good.replace("Call-ID: c1", "Call-ID: c1\r\nX:\r\n\tfolded \r\n  value"),
            good.replace("Call-ID: c1", "Call-ID: c1\nX: y"),
            good.replace("Call-ID: c1", "Call-ID: c1\r\n\nX: y"),
            good.replace("Call-ID: c1", "Call-ID: c1\r\n\r\r\nX: y"),
            good.replace("Call-ID: c1", "Call-ID c1"),
            good.replace("1 OPTIONS", "1 INVITE"),
            good.replace("\r\n\r\n", "\r\n\n"),
            good.replace("\r\n\r\n", "\r\n"),
            good.replace("SIP/2.0\r\n", "SIP/2.0\r\n\r\n"),
            format!("\r\n{good}"),
            good.replace("To:", " To:"),
            good.replace("CSeq:", "C\u{e9}Seq:"),
            good.replace("Call-ID: c1", "Call-ID: c1\r\nSubject: caf\u{e9}"),
        ];
        messages.push(String::from_utf8_lossy(&[good.as_bytes(), b"\xff"].concat()).into_owned());
        messages.push(good.replace("To: <", "To: \"B\u{e9}b\" <"));
        let mut bad_utf8 = good.clone().into_bytes();
        bad_utf8.splice(40..40, [0xff]);
        // Bad UTF-8 in a quoted string, then a grammar error in a later header: the
        // exact parse reports the UTF-8 error, whatever the deferred check saw.
        let mut quoted_then_bad =
            good.replace("To: <", "To: \"\u{e9}\" <").replace("1 OPTIONS", "1 INVITE").into_bytes();
        let e_acute = quoted_then_bad.iter().position(|&b| b == 0xc3).unwrap();
        quoted_then_bad[e_acute] = 0xff;
        let mut strict = Limits::default();
        strict.set_max_headers(5);
        let mut short = Limits::default();
        short.set_max_head(good.len() - 2);
        let mut exact = Limits::default();
        exact.set_max_headers(6).set_max_head(good.len());
        for bytes in messages.iter().map(|m| m.as_bytes().to_vec()).chain([bad_utf8, quoted_then_bad]) {
            for limits in [Limits::default(), strict.clone(), short.clone(), exact.clone()] {
                for n in 0..=bytes.len() {
                    let buf = Bytes::copy_from_slice(&bytes[..n]);
                    let (fast, scanned) = (parse_message(&buf, &limits), parse_message_scanned(&buf, &limits));
                    let same = match (&fast, &scanned) {
                        (Ok(Status::Complete((a, n))), Ok(Status::Complete((b, m)))) => {
                            a == b && n == m && a.headers().eq(b.headers()) && a.body() == b.body()
                        }
                        (a, b) => a == b,
                    };
                    assert!(same, "{:?} at {n}, {limits:?}: {fast:?} != {scanned:?}", String::from_utf8_lossy(&bytes));
                    let datagram = parse_datagram(buf.clone(), &limits);
                    let scanned = match scan_head(&buf, &mut Scan::default(), &limits, 0) {
                        Ok(Some(head_len)) => parse_head(&buf, head_len, 0, Transport::Datagram).map(|_| ()),
                        Ok(None) => Err(ParseError::Incomplete { at: n as u64 }),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = scanned {
                        assert_eq!(
                            datagram.map(|_| ()),
                            Err(e),
                            "datagram {:?} at {n}",
                            String::from_utf8_lossy(&bytes)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn one_pass_parse_matches_scan_then_parse_on_mutations() {
        // Every byte of a message with typed headers, quoted strings and escapes,
        // replaced in turn by bytes that matter to the grammar or to UTF-8.
        let message = "INVITE sip:b%41@example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP h.example.com:5060;branch=z9hG4bK1;rport\r\nMax-Forwards: 70\r\n\
To: \"B\u{e9}b\" <sip:b@example.com>\r\nFrom: A <sip:a@example.com>;tag=1\r\nCall-ID: c1@h\r\n\
CSeq: 1 INVITE\r\nContact: <sip:a@192.0.2.1;transport=tcp>;+g.oma.sip-im\r\n\
Accept-Contact: *;+g.oma.sip-im.large-message\r\nSubject: caf\u{e9}\r\nContent-Length: 0\r\n\r\n";
        assert_mutations_agree(message);
        // Non-ASCII in the quoted strings of parameter values and media types, which
        // check their UTF-8 themselves in the one-pass parse.
        let message = "MESSAGE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1;x=\"\u{e9}\"\r\n\
To: <sip:b@example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\nCall-ID: c1\r\nCSeq: 1 MESSAGE\r\n\
Contact: <sip:a@h>;+g.3gpp.icsi-ref=\"urn\u{e9}\u{1f600}\"\r\nContent-Type: text/plain;x=\"\u{e9}\"\r\n\
Content-Length: 0\r\n\r\n";
        assert_mutations_agree(message);
    }

    fn assert_mutations_agree(message: &'static str) {
        let whole = Bytes::from_static(message.as_bytes());
        assert!(matches!(parse_message(&whole, &Limits::default()), Ok(Status::Complete(_))));
        let replacements =
            [0x00, b' ', b'\t', b'\r', b'\n', b'%', b'"', b';', b',', b'<', b':', b'@', 0x80, 0xc3, 0xff];
        for at in 0..message.len() {
            for &b in &replacements {
                let mut bytes = message.as_bytes().to_vec();
                bytes[at] = b;
                let buf = Bytes::from(bytes);
                let limits = Limits::default();
                let (fast, scanned) = (parse_message(&buf, &limits), parse_message_scanned(&buf, &limits));
                let same = match (&fast, &scanned) {
                    (Ok(Status::Complete((a, n))), Ok(Status::Complete((b, m)))) => {
                        a == b && n == m && a.headers().eq(b.headers())
                    }
                    (a, b) => a == b,
                };
                assert!(same, "byte {b:#x} at {at}: {fast:?} != {scanned:?}");
            }
        }
    }

    #[test]
    fn limits() {
        let text = format!("OPTIONS sip:b@example.com SIP/2.0\r\n{TAIL}");
        let mut limits = Limits::default();
        limits.set_max_headers(5);
        let mut scan = Scan::default();
        assert_eq!(
            scan_head(text.as_bytes(), &mut scan, &limits, 0),
            Err(ParseError::TooManyHeaders { at: 171, limit: 5 })
        );
        limits.set_max_headers(6).set_max_head(text.len());
        assert_eq!(scan_head(text.as_bytes(), &mut Scan::default(), &limits, 0), Ok(Some(text.len())));
        limits.set_max_head(text.len() - 1);
        assert_eq!(
            scan_head(text.as_bytes(), &mut Scan::default(), &limits, 0),
            Err(ParseError::HeadTooLong { at: text.len() as u64 - 1, limit: text.len() - 1 })
        );
    }
}
