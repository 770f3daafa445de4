//! The stream framer (RFC 3261 s.18.3): owned segments in, whole messages out.

use bytes::{Bytes, BytesMut};

use super::error::ParseError;
use super::message::{body_len, parse_head, salvage_content_length, scan_head, Head, Limits, Message, Scan, Transport};

/// What the framer found in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FramerEvent {
    /// A whole, valid message.
    Message(Message),
    /// A message that broke a rule without losing the framing
    /// ([`ParseError::is_recoverable`]): the framer skipped it, header section
    /// and body. A UAS answers a request with [`ParseError::status_code`]
    /// when it can read what a response needs; a response is dropped.
    Rejected {
        /// What was wrong.
        error: ParseError,
        /// The message's header section, for a best-effort response.
        head: Bytes,
    },
}

#[derive(Debug)]
enum State {
    /// Between messages or inside a header section.
    Head(Scan),
    /// The header section is parsed; waiting for the whole body.
    Body { head: Head, head_len: usize, total: usize },
    /// Dropping the body of a rejected message.
    Skip { remaining: u64 },
    /// A fatal error was reported; nothing more is parsed.
    Failed,
}

/// Splits a connection's byte stream into SIP messages by Content-Length
/// (RFC 3261 s.18.3), skipping CRLF keep-alives between them (s.7.5).
///
/// Hand each segment read from the socket to [`Framer::handle_segment`], then
/// drain [`Framer::poll_event`] until it returns `None`. A message that lies
/// within one segment is a slice of it (nothing copied); one that straddles
/// segments is gathered in a buffer first. The events and errors are the same
/// for every split of the same bytes.
///
/// ```
/// use bytes::Bytes;
/// use sip_lite::sip::{Framer, FramerEvent, Limits};
///
/// let wire = b"\r\n\r\nBYE sip:bob@192.0.2.4 SIP/2.0\r\nVia: SIP/2.0/TCP client.atlanta.example.com;branch=z9hG4bKnashds10\r\n\
/// Max-Forwards: 70\r\nFrom: <sip:alice@atlanta.example.com>;tag=1928301774\r\nTo: <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
/// Call-ID: a84b4c76e66710\r\nCSeq: 231 BYE\r\nContent-Length: 0\r\n\r\n";
/// let mut framer = Framer::new(Limits::default());
/// let mut messages = Vec::new();
/// for segment in wire.chunks(7) {
///     framer.handle_segment(Bytes::copy_from_slice(segment));
///     while let Some(event) = framer.poll_event() {
///         match event.unwrap() {
///             FramerEvent::Message(message) => messages.push(message),
///             other => panic!("{other:?}"),
///         }
///     }
/// }
/// assert!(framer.finish().is_ok());
/// assert_eq!(messages[0].method(), Some("BYE"));
/// assert_eq!(messages[0].cseq().unwrap().seq, 231);
/// assert_eq!(messages[0].offset(), 4);
/// ```
#[derive(Debug)]
pub struct Framer {
    limits: Limits,
    /// The latest segment, while nothing else is buffered (fast path).
    input: Bytes,
    /// Bytes gathered from several segments.
    buf: BytesMut,
    /// Absolute offset of the first unconsumed byte.
    offset: u64,
    state: State,
}

impl Framer {
    /// A framer for a new connection.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        Self { limits, input: Bytes::new(), buf: BytesMut::new(), offset: 0, state: State::Head(Scan::default()) }
    }

    /// The limits in force.
    #[must_use]
    pub const fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Absolute offset of the first byte not yet consumed.
    #[must_use]
    pub const fn position(&self) -> u64 {
        self.offset
    }

    /// Bytes held between segments (at most one message: head and body limits).
    #[must_use]
    pub fn buffered_len(&self) -> usize {
        self.input.len() + self.buf.len()
    }

    /// Hands over the next segment of the stream.
    pub fn handle_segment(&mut self, segment: Bytes) {
        if matches!(self.state, State::Failed) || segment.is_empty() {
            return;
        }
        if self.input.is_empty() && self.buf.is_empty() {
            self.input = segment;
        } else {
            if !self.input.is_empty() {
                self.buf.reserve(self.input.len() + segment.len());
                self.buf.extend_from_slice(&self.input);
                self.input = Bytes::new();
            }
            self.buf.extend_from_slice(&segment);
        }
    }

    /// Declares the end of the stream.
    ///
    /// # Errors
    /// [`ParseError::Incomplete`] when the stream ends inside a message (or
    /// with bytes not yet drained through [`Framer::poll_event`]).
    pub fn finish(&mut self) -> Result<(), ParseError> {
        let at = self.offset + self.buffered_len() as u64;
        let idle = match &self.state {
            State::Failed => return Ok(()),
            State::Head(scan) => scan.is_fresh() && self.buffered_len() == 0,
            State::Body { .. } | State::Skip { .. } => false,
        };
        if idle {
            Ok(())
        } else {
            self.state = State::Failed;
            Err(ParseError::Incomplete { at })
        }
    }

    fn data(&self) -> &[u8] {
        if self.input.is_empty() {
            &self.buf
        } else {
            &self.input
        }
    }

    fn consume(&mut self, n: usize) -> Bytes {
        self.offset += n as u64;
        if self.input.is_empty() {
            self.buf.split_to(n).freeze()
        } else {
            self.input.split_to(n)
        }
    }

    fn fail(&mut self, error: ParseError) -> Option<Result<FramerEvent, ParseError>> {
        self.state = State::Failed;
        self.input = Bytes::new();
        self.buf = BytesMut::new();
        Some(Err(error))
    }

    /// The next event, `None` when more input is needed.
    ///
    /// An `Err` is fatal: the framing is lost, the connection MUST be closed,
    /// and every later call returns `None`.
    pub fn poll_event(&mut self) -> Option<Result<FramerEvent, ParseError>> {
        loop {
            let available = self.data().len();
            match &mut self.state {
                State::Failed => return None,
                State::Skip { remaining } => {
                    let n = (*remaining).min(available as u64) as usize;
                    *remaining -= n as u64;
                    let done = *remaining == 0;
                    let _ = self.consume(n);
                    if !done {
                        return None;
                    }
                    self.state = State::Head(Scan::default());
                }
                State::Body { total, .. } => {
                    if available < *total {
                        return None;
                    }
                    let State::Body { head, head_len, total } =
                        std::mem::replace(&mut self.state, State::Head(Scan::default()))
                    else {
                        return None;
                    };
                    let offset = self.offset;
                    let raw = self.consume(total);
                    return Some(Ok(FramerEvent::Message(Message::from_parts(raw, offset, head, head_len))));
                }
                State::Head(scan) => {
                    if scan.is_fresh() {
                        // RFC 3261 s.7.5: "Implementations processing SIP messages over
                        // stream-oriented transports MUST ignore any CRLF appearing before
                        // the start-line" (RFC 5626 s.3.5.1 keep-alives).
                        let data = self.data();
                        let mut n = 0;
                        while data.get(n..n + 2) == Some(b"\r\n") {
                            n += 2;
                        }
                        let rest = &data[n..];
                        let bare_lf = rest.first() == Some(&b'\n');
                        let lone_cr = rest == b"\r";
                        let _ = self.consume(n);
                        if bare_lf {
                            let at = self.offset;
                            return self.fail(ParseError::LineEnding { at });
                        }
                        if lone_cr || self.data().is_empty() {
                            return None;
                        }
                    }
                    let State::Head(scan) = &mut self.state else { return None };
                    let data = if self.input.is_empty() { &self.buf[..] } else { &self.input[..] };
                    let head_len = match scan_head(data, scan, &self.limits, self.offset) {
                        Err(error) => return self.fail(error),
                        Ok(None) => return None,
                        Ok(Some(n)) => n,
                    };
                    let parsed = parse_head(data, head_len, self.offset, Transport::Stream)
                        .and_then(|head| body_len(&head, head_len, &self.limits, self.offset).map(|n| (head, n)));
                    match parsed {
                        Ok((head, n)) => self.state = State::Body { head, head_len, total: head_len + n },
                        Err(error) if error.is_recoverable() => {
                            // Skip the message if its length can still be read.
                            let Some(n) = salvage_content_length(&data[..head_len]) else {
                                let at = self.offset + head_len as u64 - 2;
                                return self.fail(ParseError::MissingContentLength { at });
                            };
                            let head = self.consume(head_len);
                            self.state = State::Skip { remaining: n };
                            return Some(Ok(FramerEvent::Rejected { error, head }));
                        }
                        Err(error) => return self.fail(error),
                    }
                }
            }
        }
    }
}
