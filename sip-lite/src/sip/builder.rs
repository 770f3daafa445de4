//! Owned messages for sending: start line, headers in order, body.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::ParseError;
use super::header::HeaderName;
use super::message::Message;

/// The start line of a [`MessageBuilder`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StartLine {
    /// `Method SP Request-URI SP SIP/2.0`.
    Request {
        /// The method (`INVITE`, `ACK`, `BYE` ...).
        method: Bytes,
        /// The Request-URI.
        uri: Bytes,
    },
    /// `SIP/2.0 SP Status-Code SP Reason-Phrase`.
    Response {
        /// The status code.
        code: u16,
        /// The reason phrase (may be empty).
        reason: Bytes,
    },
}

/// An owned SIP message to send: start line, headers in order, body.
///
/// [`MessageBuilder::encode`] writes the canonical form: one line per header
/// as `name ": " value CRLF`, and a Content-Length equal to the body length
/// (the value of a Content-Length header is replaced, or the header is added
/// last). It does not validate; [`MessageBuilder::build`] does, by parsing
/// the encoded bytes, so `build()?.to_builder()` gives back the builder
/// (with Content-Length added if it had none).
///
/// ```
/// use bytes::Bytes;
/// use sip_lite::sip::MessageBuilder;
///
/// let mut invite = MessageBuilder::request("INVITE", "sip:bob@biloxi.example.com");
/// invite
///     .header("Via", "SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9")
///     .header("Max-Forwards", "70")
///     .header("From", "Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl")
///     .header("To", "Bob <sip:bob@biloxi.example.com>")
///     .header("Call-ID", "3848276298220188511@atlanta.example.com")
///     .header("CSeq", "1 INVITE")
///     .header("Content-Type", "application/sdp")
///     .body(Bytes::from_static(b"v=0\r\n"));
/// let message = invite.build().unwrap();
/// assert_eq!(message.content_length(), Some(5));
/// let ok = MessageBuilder::response_to(&message, 200, "OK", Some("8321234356")).build().unwrap();
/// assert_eq!(ok.to_tag(), Some("8321234356"));
/// assert_eq!(ok.cseq(), message.cseq());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MessageBuilder {
    start: StartLine,
    headers: Vec<(Bytes, Bytes)>,
    body: Bytes,
}

impl MessageBuilder {
    /// A request with no headers and an empty body.
    #[must_use]
    pub fn request(method: &str, uri: &str) -> Self {
        Self::new(StartLine::Request {
            method: Bytes::copy_from_slice(method.as_bytes()),
            uri: Bytes::copy_from_slice(uri.as_bytes()),
        })
    }

    /// A response with no headers and an empty body.
    #[must_use]
    pub fn response(code: u16, reason: &str) -> Self {
        Self::new(StartLine::Response { code, reason: Bytes::copy_from_slice(reason.as_bytes()) })
    }

    /// A message with this start line.
    #[must_use]
    pub const fn new(start: StartLine) -> Self {
        Self { start, headers: Vec::new(), body: Bytes::new() }
    }

    /// A response to `request` (RFC 3261 s.8.2.6.2): Via, From, To, Call-ID and
    /// CSeq copied in order, and `to_tag` added to To when To has no tag.
    #[must_use]
    pub fn response_to(request: &Message, code: u16, reason: &str, to_tag: Option<&str>) -> Self {
        let mut response = Self::response(code, reason);
        let raw = request.as_bytes();
        for header in request.headers() {
            match header.kind {
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                    response.push(raw.slice_ref(header.name.as_bytes()), value_bytes(raw, &header.value()));
                }
                HeaderName::To => {
                    let mut value = header.value().into_owned();
                    // RFC 3261 s.8.2.6.2: "the UAS MUST add a tag to the To header field in
                    // the response" unless one is present.
                    if let (Some(tag), None) = (to_tag, request.to_tag()) {
                        value.push_str(";tag=");
                        value.push_str(tag);
                    }
                    response.push(raw.slice_ref(header.name.as_bytes()), Bytes::from(value));
                }
                _ => {}
            }
        }
        response
    }

    /// The start line.
    #[must_use]
    pub const fn start_line(&self) -> &StartLine {
        &self.start
    }

    /// The headers in order, as `(name, value)`.
    #[must_use]
    pub fn headers(&self) -> &[(Bytes, Bytes)] {
        &self.headers
    }

    /// The headers, to edit in place.
    pub fn headers_mut(&mut self) -> &mut Vec<(Bytes, Bytes)> {
        &mut self.headers
    }

    /// The body.
    #[must_use]
    pub const fn body_bytes(&self) -> &Bytes {
        &self.body
    }

    /// Appends a header. The value MUST be one line (no CR or LF).
    pub fn header(&mut self, name: &str, value: &str) -> &mut Self {
        self.push(Bytes::copy_from_slice(name.as_bytes()), Bytes::copy_from_slice(value.as_bytes()))
    }

    /// Appends a header without copying.
    pub fn push(&mut self, name: Bytes, value: Bytes) -> &mut Self {
        self.headers.push((name, value));
        self
    }

    /// Sets the body (its Content-Type is a header like any other).
    pub fn body(&mut self, body: Bytes) -> &mut Self {
        self.body = body;
        self
    }

    /// The canonical bytes: see the type's docs.
    #[must_use]
    pub fn encode(&self) -> Bytes {
        let head = 64 + self.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>();
        let mut out = BytesMut::with_capacity(head + self.body.len());
        self.encode_head(&mut out);
        out.extend_from_slice(&self.body);
        out.freeze()
    }

    /// Writes the header section (through the blank line) into `out`; the
    /// body is [`MessageBuilder::body_bytes`], ready for a vectored write.
    pub fn encode_head(&self, out: &mut BytesMut) {
        match &self.start {
            StartLine::Request { method, uri } => {
                out.extend_from_slice(method);
                out.put_u8(b' ');
                out.extend_from_slice(uri);
                out.extend_from_slice(b" SIP/2.0\r\n");
            }
            StartLine::Response { code, reason } => {
                out.extend_from_slice(format!("SIP/2.0 {code:03} ").as_bytes());
                out.extend_from_slice(reason);
                out.extend_from_slice(b"\r\n");
            }
        }
        let length = self.body.len().to_string();
        let mut has_length = false;
        for (name, value) in &self.headers {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            if HeaderName::from_bytes(name) == HeaderName::ContentLength {
                has_length = true;
                out.extend_from_slice(length.as_bytes());
            } else {
                out.extend_from_slice(value);
            }
            out.extend_from_slice(b"\r\n");
        }
        if !has_length {
            // RFC 3261 s.18.3: "The Content-Length header field MUST be used with
            // stream oriented transports."
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(length.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Encodes and parses the result: a message any peer's parser accepts.
    ///
    /// # Errors
    /// The [`ParseError`] the encoded bytes raise.
    pub fn build(&self) -> Result<Message, ParseError> {
        Message::parse(self.encode())
    }
}

/// A header value as `Bytes`: a slice of the message when unfolded, else a copy.
fn value_bytes(raw: &Bytes, value: &str) -> Bytes {
    let p = raw.as_ptr() as usize;
    let v = value.as_ptr() as usize;
    if v >= p && v + value.len() <= p + raw.len() {
        raw.slice_ref(value.as_bytes())
    } else {
        Bytes::copy_from_slice(value.as_bytes())
    }
}

impl Message {
    /// The message as an owned builder: start line, each header with its name
    /// as on the wire and its value unfolded and trimmed (slices of the message
    /// where no fold is undone), and the body.
    #[must_use]
    pub fn to_builder(&self) -> MessageBuilder {
        let raw = self.as_bytes();
        let slice = |s: &str| value_bytes(raw, s);
        let start = match (self.method(), self.request_uri_str(), self.status_code()) {
            (Some(method), Some(uri), _) => StartLine::Request { method: slice(method), uri: slice(uri) },
            (_, _, code) => {
                StartLine::Response { code: code.unwrap_or_default(), reason: slice(self.reason().unwrap_or_default()) }
            }
        };
        let headers = self.headers().map(|h| (slice(h.name), value_bytes(raw, &h.value()))).collect();
        MessageBuilder { start, headers, body: self.body() }
    }

    /// The canonical encoding of this message (see [`MessageBuilder::encode`]):
    /// folds undone, one SP after each colon, Content-Length equal to the body length.
    #[must_use]
    pub fn encode(&self) -> Bytes {
        self.to_builder().encode()
    }
}
