//! The streaming framer: owned segments in, frame events out, nothing copied.

use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem;

use super::head::{Flag, FrameHead, HeadCache, HeadLen, HeadParser, HeadStep, Method};
use crate::error::ParseError;
use crate::id::TransactionId;

/// Bounds on what one frame may make the framer hold.
///
/// Exceeding a bound is a typed [`ParseError`]; memory never grows past it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    max_head: usize,
    max_line: usize,
    max_headers: usize,
    max_non_send_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_head: 16 * 1024, max_line: 8 * 1024, max_headers: 64, max_non_send_body: 10240 }
    }
}

impl Limits {
    /// Largest head: start line, headers, and the blank line or end-line that
    /// closes them (default 16 KiB; capped at 1 GiB).
    pub fn set_max_head(&mut self, bytes: usize) -> &mut Self {
        self.max_head = bytes.min(1 << 30);
        self
    }
    /// Largest line of the head, CRLF excluded (default 8 KiB).
    pub fn set_max_line(&mut self, bytes: usize) -> &mut Self {
        self.max_line = bytes;
        self
    }
    /// Most header lines (default 64).
    pub fn set_max_headers(&mut self, count: usize) -> &mut Self {
        self.max_headers = count.min(usize::from(u16::MAX));
        self
    }
    /// Largest body of a request other than SEND (default 10240, RFC 4975
    /// s.7.1: "requests [other than SEND] MUST NOT contain bodies larger than 10240 octets").
    pub fn set_max_non_send_body(&mut self, bytes: usize) -> &mut Self {
        self.max_non_send_body = bytes;
        self
    }
    /// See [`Limits::set_max_head`].
    #[must_use]
    pub const fn max_head(&self) -> usize {
        self.max_head
    }
    /// See [`Limits::set_max_line`].
    #[must_use]
    pub const fn max_line(&self) -> usize {
        self.max_line
    }
    /// See [`Limits::set_max_headers`].
    #[must_use]
    pub const fn max_headers(&self) -> usize {
        self.max_headers
    }
    /// See [`Limits::set_max_non_send_body`].
    #[must_use]
    pub const fn max_non_send_body(&self) -> usize {
        self.max_non_send_body
    }
}

/// What the framer found in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FramerEvent {
    /// A frame's validated start line and headers.
    Head(FrameHead),
    /// The next piece of the current frame's body: a slice of an input segment.
    Body(Bytes),
    /// The current frame ended with this continuation flag.
    End(Flag),
    /// A frame whose head broke a rule without losing the framing
    /// ([`ParseError::is_recoverable`]): the framer skipped to its end-line.
    /// A session answers it with 400 (requests other than REPORT) or drops
    /// it (responses, and REPORTs: RFC 4975 s.7.1.2).
    Rejected {
        /// The frame's transaction id.
        transaction_id: TransactionId,
        /// Whether the frame is a request.
        is_request: bool,
        /// Whether the frame is a REPORT request, which is never answered.
        is_report: bool,
        /// What was wrong.
        error: ParseError,
    },
}

/// An event that follows the one just returned: small, unlike a head, so
/// that holding it back moves a few bytes.
#[derive(Debug)]
enum Queued {
    /// [`FramerEvent::End`].
    End(Flag),
    /// [`FramerEvent::Rejected`] of a request whose body broke the limit.
    Rejected { transaction_id: TransactionId, is_report: bool, error: ParseError },
}

impl Queued {
    fn into_event(self) -> FramerEvent {
        match self {
            Self::End(flag) => FramerEvent::End(flag),
            Self::Rejected { transaction_id, is_report, error } => {
                FramerEvent::Rejected { transaction_id, is_request: true, is_report, error }
            }
        }
    }
}

/// The end-line of one transaction, as a pattern: `CRLF "-------" transact-id`.
#[derive(Clone, Copy, Debug)]
struct EndLine {
    bytes: [u8; MAX_END_LINE - 3],
    len: u8,
}

const DASHES: &[u8] = b"\r\n-------";

/// CRLF, seven dashes, a 32-byte transaction id, the flag and CRLF.
const MAX_END_LINE: usize = 2 + 7 + 32 + 1 + 2;

impl EndLine {
    fn new(txid: &[u8]) -> Self {
        let mut bytes = [0u8; MAX_END_LINE - 3];
        bytes[..9].copy_from_slice(DASHES);
        // The txid was validated: 4 to 32 bytes.
        let n = txid.len().min(32);
        bytes[9..9 + n].copy_from_slice(&txid[..n]);
        Self { bytes, len: (9 + n) as u8 }
    }

    /// Makes this the end-line of the transaction of `head`, in place: the
    /// 32 bytes from its transaction id on are copied whole (a fixed-size
    /// copy), and only the id's own bytes are used.
    fn set_to_head(&mut self, head: &FrameHead) {
        self.set_to_frame(head.as_bytes(), head.txid_bytes().len());
    }

    /// [`EndLine::set_to_head`] from the bytes of a frame whose transaction
    /// id (validated) is `txid_len` bytes long.
    #[inline(always)]
    fn set_to_frame(&mut self, frame: &[u8], txid_len: usize) {
        // "MSRP " transact-id SP: the id starts at 5.
        match frame.get(5..5 + 32) {
            Some(from_id) if txid_len <= 32 => {
                self.bytes[..9].copy_from_slice(DASHES);
                self.bytes[9..].copy_from_slice(from_id);
                self.len = (9 + txid_len) as u8;
            }
            _ => *self = Self::new(frame.get(5..5 + txid_len).unwrap_or_default()),
        }
    }

    fn pattern(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
    /// The transaction id (copied: only a rejected frame needs it).
    fn transaction_id(&self) -> TransactionId {
        TransactionId::from_validated(Bytes::copy_from_slice(&self.bytes[9..usize::from(self.len)]))
    }

    /// The flag of the whole end-line (leading CRLF, dashes, this
    /// transaction id, flag, CRLF) when one starts at `data[at]`.
    #[inline]
    fn whole_at(&self, data: &[u8], at: usize) -> Option<Flag> {
        let pattern = self.pattern();
        let tail = data.get(at..)?.get(..self.full_len())?;
        let (dashed_id, rest) = tail.split_at(pattern.len());
        match rest {
            // RFC 4975 s.7.1: end-line = "-------" transact-id continuation-flag CRLF
            &[flag, b'\r', b'\n'] if dashed_id == pattern => Flag::from_byte(flag),
            _ => None,
        }
    }

    /// Length of the whole end-line with its leading CRLF: pattern, flag, CRLF.
    fn full_len(&self) -> usize {
        usize::from(self.len) + 3
    }
}

/// Outcome of a search for the end-line in a slice.
enum Found {
    /// The end-line starts (with its leading CRLF) at `at`.
    End { at: usize, flag: Flag },
    /// `data[at..]` may be the start of the end-line: undecided until more bytes come.
    Maybe { at: usize },
    /// No end-line can start in `data`.
    None,
}

/// The body (or a skipped frame) being scanned.
#[derive(Debug)]
struct BodyState {
    end_line: EndLine,
    /// Bytes of body delivered so far.
    len: u64,
    /// Absolute offset of the body's first byte.
    start: u64,
    /// Limit on the body, for requests other than SEND.
    limit: Option<usize>,
    /// Skipping a rejected frame: nothing more is delivered.
    discard: bool,
    /// The frame is a REPORT (known for requests other than SEND only).
    is_report: bool,
}

impl BodyState {
    /// The state before any body.
    fn idle() -> Self {
        Self { end_line: EndLine::new(&[]), len: 0, start: 0, limit: None, discard: false, is_report: false }
    }

    /// Starts a delivered body at `start`, of at most `limit` bytes, once
    /// its end-line is set.
    #[inline(always)]
    fn begin(&mut self, start: u64, limit: Option<usize>, is_report: bool) {
        self.len = 0;
        self.start = start;
        self.limit = limit;
        self.discard = false;
        self.is_report = is_report;
    }
}

/// What one step of the framer produced.
enum Progress {
    Event(FramerEvent),
    /// State changed; step again.
    Continue,
    /// Every byte handed over is used.
    NeedInput,
}

/// Which part of the stream the framer is in. The parser of each part is a
/// field of its own, updated in place: no state moves as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Between frames, or inside a head ([`Framer::head`]).
    Head,
    /// Inside a body, or skipping a rejected frame ([`Framer::body`]).
    Body,
    /// A fatal error was reported; nothing more is parsed.
    Failed,
}

/// Splits a connection's byte stream into MSRP frames (RFC 4975 s.7.1, s.9).
///
/// Hand each segment read from the socket to [`Framer::handle_segment`], then
/// drain [`Framer::poll_event`] until it returns `None`. Body pieces are
/// slices of the segments (nothing copied); only a head that straddles two
/// segments, or an end-line cut into pieces smaller than itself, is copied.
/// The events and errors are the same for every split of the same bytes.
///
/// ```
/// use bytes::Bytes;
/// use msrp_core::{Framer, FramerEvent, Flag, Limits};
///
/// let wire = b"MSRP a786hjs2 SEND\r\nTo-Path: msrp://b.example.com:8888/9di4;tcp\r\n\
/// From-Path: msrp://a.example.com:7777/iau39;tcp\r\nMessage-ID: 87652491\r\n\
/// Byte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\nHello\r\n-------a786hjs2$\r\n";
/// let mut framer = Framer::new(Limits::default());
/// let mut body = Vec::new();
/// for segment in wire.chunks(7) {
///     framer.handle_segment(Bytes::copy_from_slice(segment));
///     while let Some(event) = framer.poll_event() {
///         match event.unwrap() {
///             FramerEvent::Head(head) => assert_eq!(head.message_id_str(), Some("87652491")),
///             FramerEvent::Body(piece) => body.extend_from_slice(&piece),
///             FramerEvent::End(flag) => assert_eq!(flag, Flag::End),
///             other => panic!("{other:?}"),
///         }
///     }
/// }
/// assert_eq!(body, b"Hello");
/// assert!(framer.finish().is_ok());
/// ```
#[derive(Debug)]
pub struct Framer {
    limits: Limits,
    finder: Finder,
    /// Unconsumed bytes of the latest segment.
    input: Bytes,
    /// Absolute offset of `input[0]`.
    offset: u64,
    /// The frame's head so far, when it straddles segments.
    carry: BytesMut,
    /// Body bytes that may begin the end-line (held until decided).
    hold: Bytes,
    mode: Mode,
    /// The head being parsed, in [`Mode::Head`].
    head: HeadParser,
    /// The body being scanned, in [`Mode::Body`].
    body: BodyState,
    /// The end of the frame whose last body piece (or bodiless head) was
    /// just returned, to return next.
    end: Option<Flag>,
    /// An event to return before scanning further (after `end`).
    queued: Option<Queued>,
    /// Header lines of the latest heads, to accept the next ones by comparison.
    cache: HeadCache,
}

impl Framer {
    /// A framer for a new connection.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            finder: Finder::new(),
            input: Bytes::new(),
            offset: 0,
            carry: BytesMut::new(),
            hold: Bytes::new(),
            mode: Mode::Head,
            head: HeadParser::new(0),
            body: BodyState::idle(),
            end: None,
            queued: None,
            cache: HeadCache::default(),
        }
    }

    /// The limits in force.
    #[must_use]
    pub const fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Absolute offset of the first byte not yet consumed.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// Bytes the framer holds between segments: a head cut by a segment
    /// boundary (at most [`Limits::max_head`]), or the start of a possible
    /// end-line (at most 44 bytes). Body bytes are never held.
    #[must_use]
    pub fn buffered_len(&self) -> usize {
        self.carry.len() + self.hold.len()
    }

    /// Hands over the next segment of the stream.
    ///
    /// Callers SHOULD drain [`Framer::poll_event`] first; a segment handed
    /// over while bytes of the previous one are still unparsed is appended to
    /// them (a copy).
    #[inline]
    pub fn handle_segment(&mut self, segment: Bytes) {
        if self.mode == Mode::Failed || segment.is_empty() {
            return;
        }
        if self.input.is_empty() {
            self.input = segment;
        } else {
            self.append(&segment);
        }
    }

    /// Appends `segment` to the unparsed input (a copy).
    #[cold]
    #[inline(never)]
    fn append(&mut self, segment: &[u8]) {
        let mut joined = BytesMut::with_capacity(self.input.len() + segment.len());
        joined.extend_from_slice(&self.input);
        joined.extend_from_slice(segment);
        self.input = joined.freeze();
    }

    /// Declares the end of the stream.
    ///
    /// # Errors
    /// [`ParseError::Incomplete`] when the stream ends inside a frame (or
    /// with bytes not yet drained through [`Framer::poll_event`]).
    pub fn finish(&mut self) -> Result<(), ParseError> {
        let at = self.offset + self.input.len() as u64;
        let idle = match self.mode {
            Mode::Head => self.head.line_start() == 0 && self.carry.is_empty() && self.input.is_empty(),
            Mode::Body => false,
            Mode::Failed => return Ok(()),
        };
        if idle && self.end.is_none() && self.queued.is_none() {
            Ok(())
        } else {
            self.mode = Mode::Failed;
            Err(ParseError::Incomplete { at })
        }
    }

    /// The next event, `None` when more input is needed.
    ///
    /// An `Err` is fatal: the framing is lost, the connection MUST be closed,
    /// and every later call returns `None`.
    #[inline]
    pub fn poll_event(&mut self) -> Option<Result<FramerEvent, ParseError>> {
        // What most calls return, answered where they are made.
        if let Some(flag) = self.end.take() {
            return Some(Ok(FramerEvent::End(flag)));
        }
        if self.queued.is_some() {
            return self.take_queued();
        }
        // Every state needs input to make progress: a partial head is kept in
        // `carry`, a possible end-line start in `hold`.
        if self.input.is_empty() {
            return None;
        }
        match self.mode {
            Mode::Head if self.carry.is_empty() => self.poll_head_in_input(),
            Mode::Body if self.hold.is_empty() => self.poll_body_in_input(),
            _ => self.poll_slow(),
        }
    }

    /// The queued event (a rejection).
    #[cold]
    #[inline(never)]
    fn take_queued(&mut self) -> Option<Result<FramerEvent, ParseError>> {
        self.queued.take().map(|queued| Ok(queued.into_event()))
    }

    /// A body that goes on in the current input (nothing held), once per
    /// segment of the body: one search for the end-line over the new bytes,
    /// whose outcome is used as is.
    #[inline(never)]
    fn poll_body_in_input(&mut self) -> Option<Result<FramerEvent, ParseError>> {
        let body = &mut self.body;
        let found = find_end_line(&self.finder, &self.input, &body.end_line);
        if body.limit.is_none() && !body.discard {
            match found {
                Found::None => {
                    // The whole segment is body.
                    let piece = std::mem::take(&mut self.input);
                    self.offset += piece.len() as u64;
                    body.len += piece.len() as u64;
                    return Some(Ok(FramerEvent::Body(piece)));
                }
                Found::End { at, flag } if at != 0 => {
                    // The rest of the body, then its end-line (all of it in
                    // the input): as `take_input` and `deliver`.
                    let at = at.min(self.input.len());
                    let n = (at + body.end_line.full_len()).min(self.input.len());
                    let piece = if n == self.input.len() {
                        // The end-line ends the segment: the piece takes over
                        // the segment itself (no new reference).
                        let mut piece = std::mem::take(&mut self.input);
                        piece.truncate(at);
                        piece
                    } else {
                        let piece = self.input.slice(..at);
                        self.input.advance(n);
                        piece
                    };
                    self.offset += n as u64;
                    self.mode = Mode::Head;
                    self.head.restart(self.offset);
                    self.end = Some(flag);
                    return Some(Ok(FramerEvent::Body(piece)));
                }
                _ => {}
            }
        }
        self.poll_found(found)
    }

    /// A head that starts in the current input (nothing carried): the usual
    /// outcome, a head followed by a body, goes straight into its event; every
    /// other one as [`Framer::poll_head`] and [`Framer::poll_slow`] take it.
    #[inline(never)]
    fn poll_head_in_input(&mut self) -> Option<Result<FramerEvent, ParseError>> {
        if self.mode != Mode::Head {
            return self.poll_slow();
        }
        let parser = &mut self.head;
        let input = &self.input;
        if parser.line_start() == 0 {
            // The usual chunk of a message, its whole head in one pass.
            if let Some(head) = parser.fast_head(input, &self.limits, &mut self.cache) {
                // The frame's end-line, from the input the head starts (the
                // head itself goes straight into the event, never borrowed).
                let (head_len, txid_len) = (head.as_bytes().len(), head.txid_bytes().len());
                self.body.end_line.set_to_frame(input, txid_len);
                // The head and the blank line after it.
                self.advance(head_len + 2);
                self.mode = Mode::Body;
                self.body.begin(self.offset, None, false);
                return Some(Ok(FramerEvent::Head(head)));
            }
        }
        let step = parser.step(input, |range| input.slice(range), &self.limits, &mut self.cache);
        if let Ok(HeadStep::Body { head: HeadLen(len), consumed }) = step {
            let head = parser.head(input.slice(..len.min(input.len())), true);
            let frame_offset = parser.frame_offset();
            let is_non_send = parser.is_non_send_request();
            self.consume_head(frame_offset, consumed);
            self.enter_body(&head, is_non_send);
            return Some(Ok(FramerEvent::Head(head)));
        }
        let step = step.map(|step| step.built(parser, |range| input.slice(range)));
        let progress = step.map(|step| self.after_input_step(step));
        match self.resolve(progress) {
            Some(outcome) => outcome,
            None => self.poll_slow(),
        }
    }

    /// Goes on from a search over the whole input (with nothing held).
    #[inline(never)]
    fn poll_found(&mut self, found: Found) -> Option<Result<FramerEvent, ParseError>> {
        if self.mode != Mode::Body {
            return self.poll_slow();
        }
        let (piece, end) = self.take_input(found, self.body.end_line.full_len());
        match self.deliver(piece, end) {
            Progress::Event(event) => Some(Ok(event)),
            Progress::NeedInput => None,
            Progress::Continue => self.poll_slow(),
        }
    }

    #[inline(never)]
    fn poll_slow(&mut self) -> Option<Result<FramerEvent, ParseError>> {
        loop {
            let result = match self.mode {
                Mode::Failed => return None,
                Mode::Head => self.poll_head(),
                Mode::Body => self.poll_body(),
            };
            if let Some(outcome) = self.resolve(result) {
                return outcome;
            }
        }
    }

    /// What [`Framer::poll_event`] returns after a step, `None` to step again.
    fn resolve(&mut self, result: Result<Progress, ParseError>) -> Option<Option<Result<FramerEvent, ParseError>>> {
        match result {
            Ok(Progress::Event(event)) => Some(Some(Ok(event))),
            Ok(Progress::Continue) => None,
            Ok(Progress::NeedInput) => Some(None),
            Err(error) => {
                self.mode = Mode::Failed;
                self.input = Bytes::new();
                self.carry = BytesMut::new();
                self.hold = Bytes::new();
                Some(Some(Err(error)))
            }
        }
    }

    fn advance(&mut self, n: usize) {
        let n = n.min(self.input.len());
        self.input.advance(n);
        self.offset += n as u64;
    }

    fn poll_head(&mut self) -> Result<Progress, ParseError> {
        let parser = &mut self.head;
        let step = if self.carry.is_empty() {
            // Fast path: the head lies in the current segment; slice it from there.
            let input = &self.input;
            let step = parser.step(input, |range| input.slice(range), &self.limits, &mut self.cache)?;
            let step = step.built(parser, |range| input.slice(range));
            return Ok(self.after_input_step(step));
        } else {
            // The head straddles segments: move the next line (or all) into the carry.
            loop {
                if self.input.is_empty() {
                    return Ok(Progress::NeedInput);
                }
                let line = memchr::memchr(b'\n', &self.input).map_or(self.input.len(), |i| i + 1);
                // Never hold more than the head limit: the parser fails before that.
                let room = (self.limits.max_head() + 2).saturating_sub(self.carry.len()).max(1);
                let take = line.min(room);
                self.carry.extend_from_slice(&self.input[..take]);
                self.input.advance(take);
                self.offset += take as u64;
                let carry = &self.carry;
                let raw = |range: std::ops::Range<usize>| Bytes::copy_from_slice(&carry[range]);
                let step = parser.step(carry, raw, &self.limits, &mut self.cache)?.built(parser, raw);
                if !matches!(step, HeadStep::NeedMore) {
                    // The carry takes one line at a time, so the head ends at its end.
                    self.carry.clear();
                    break step;
                }
            }
        };
        let frame_offset = parser.frame_offset();
        let is_non_send = parser.is_non_send_request();
        Ok(self.after_head(frame_offset, is_non_send, step))
    }

    /// Goes on from a step over the current input (nothing carried).
    fn after_input_step(&mut self, step: HeadStep) -> Progress {
        if let HeadStep::NeedMore = step {
            // Keep the partial head (bounded by the head limit) for the next segment.
            self.carry.extend_from_slice(&self.input);
            self.offset += self.input.len() as u64;
            self.input = Bytes::new();
            return Progress::NeedInput;
        }
        let (frame_offset, is_non_send) = (self.head.frame_offset(), self.head.is_non_send_request());
        self.after_head(frame_offset, is_non_send, step)
    }

    /// Enters the body of the frame whose head is `head`, once its bytes are consumed.
    #[inline(always)]
    fn enter_body(&mut self, head: &FrameHead, is_non_send: bool) {
        self.mode = Mode::Body;
        self.body.end_line.set_to_head(head);
        let is_report = is_non_send && head.method() == Some(Method::Report);
        self.body.begin(self.offset, is_non_send.then_some(self.limits.max_non_send_body()), is_report);
    }

    /// Starts on the head of the next frame, at the current offset.
    fn begin_head(&mut self) {
        self.mode = Mode::Head;
        self.head.restart(self.offset);
    }

    fn after_head(&mut self, frame_offset: u64, is_non_send: bool, step: HeadStep) -> Progress {
        match step {
            HeadStep::NeedMore => Progress::NeedInput,
            HeadStep::Body { head, consumed } => {
                self.consume_head(frame_offset, consumed);
                self.enter_body(&head, is_non_send);
                Progress::Event(FramerEvent::Head(head))
            }
            HeadStep::Bodiless { head, flag, consumed } => {
                self.consume_head(frame_offset, consumed);
                self.begin_head();
                self.end = Some(flag);
                Progress::Event(FramerEvent::Head(head))
            }
            HeadStep::Skip { rejected, consumed } => {
                self.consume_head(frame_offset, consumed);
                // The search for the end-line starts at the CRLF that ended the offending line.
                self.hold = Bytes::from_static(b"\r\n");
                self.mode = Mode::Body;
                self.body = BodyState {
                    end_line: EndLine::new(rejected.transaction_id.as_bytes()),
                    len: 0,
                    start: self.offset,
                    limit: None,
                    discard: true,
                    is_report: rejected.is_report,
                };
                Progress::Event(FramerEvent::Rejected {
                    transaction_id: rejected.transaction_id,
                    is_request: rejected.is_request,
                    is_report: rejected.is_report,
                    error: rejected.error,
                })
            }
            HeadStep::Ended { rejected, consumed } => {
                self.consume_head(frame_offset, consumed);
                self.begin_head();
                Progress::Event(FramerEvent::Rejected {
                    transaction_id: rejected.transaction_id,
                    is_request: rejected.is_request,
                    is_report: rejected.is_report,
                    error: rejected.error,
                })
            }
        }
    }

    /// Consumes the head's bytes: `consumed` counts from the frame's first byte.
    fn consume_head(&mut self, frame_offset: u64, consumed: usize) {
        let end = frame_offset + consumed as u64;
        if end > self.offset {
            let n = usize::try_from(end - self.offset).unwrap_or(usize::MAX).min(self.input.len());
            self.advance(n);
        }
    }

    /// Takes the next body piece, up to what `found` (the search over the
    /// whole input) located; `end_line_len` is the length of the end-line
    /// with its leading CRLF.
    fn take_input(&mut self, found: Found, end_line_len: usize) -> (Bytes, Option<Flag>) {
        match found {
            Found::End { at, flag } => {
                let piece = self.input.slice(..at);
                self.advance(at + end_line_len);
                (piece, Some(flag))
            }
            Found::Maybe { at } => {
                let piece = self.input.slice(..at);
                self.hold = self.input.slice(at..);
                let n = self.input.len();
                self.advance(n);
                (piece, None)
            }
            Found::None => {
                let n = self.input.len();
                let piece = std::mem::take(&mut self.input);
                self.offset += n as u64;
                (piece, None)
            }
        }
    }

    /// Takes the next body piece: from the held bytes first, then from the input.
    fn next_piece(&mut self, end_line: EndLine) -> (Bytes, Option<Flag>) {
        if self.hold.is_empty() {
            let found = find_end_line(&self.finder, &self.input, &end_line);
            return self.take_input(found, end_line.full_len());
        }
        // The held bytes (shorter than an end-line) and the start of the new
        // segment, side by side.
        let hold_len = self.hold.len();
        let take = self.input.len().min(end_line.full_len());
        let mut joined = [0u8; 2 * MAX_END_LINE];
        joined[..hold_len].copy_from_slice(&self.hold);
        joined[hold_len..hold_len + take].copy_from_slice(&self.input[..take]);
        match find_end_line(&self.finder, &joined[..hold_len + take], &end_line) {
            Found::End { at, flag } if at < hold_len => {
                let piece = self.hold.slice(..at);
                self.hold = Bytes::new();
                self.advance(at + end_line.full_len() - hold_len);
                (piece, Some(flag))
            }
            Found::Maybe { at } if at < hold_len => {
                // The segment is shorter than the rest of the end-line: keep both.
                let piece = self.hold.slice(..at);
                let mut kept = BytesMut::with_capacity(hold_len - at + self.input.len());
                kept.extend_from_slice(&self.hold[at..]);
                kept.extend_from_slice(&self.input);
                self.hold = kept.freeze();
                let n = self.input.len();
                self.advance(n);
                (piece, None)
            }
            // No end-line starts in the held bytes: they are body.
            _ => (std::mem::take(&mut self.hold), None),
        }
    }

    fn poll_body(&mut self) -> Result<Progress, ParseError> {
        if self.input.is_empty() {
            return Ok(Progress::NeedInput);
        }
        let (piece, end) = self.next_piece(self.body.end_line);
        Ok(self.deliver(piece, end))
    }

    /// Delivers a body piece (and the end of the frame, `end`), enforcing
    /// the non-SEND body limit and dropping the pieces of a skipped frame.
    fn deliver(&mut self, mut piece: Bytes, end: Option<Flag>) -> Progress {
        let body = &mut self.body;
        let mut rejected = None;
        if body.discard {
            piece.clear();
        } else if let Some(limit) = body.limit {
            let allowed = (limit as u64).saturating_sub(body.len);
            if piece.len() as u64 > allowed {
                // RFC 4975 s.7.1: "Non-SEND request bodies MUST NOT be larger
                // than 10240 octets." Deliver up to the limit (the same bytes
                // for every split), then reject and skip the rest.
                piece.truncate(usize::try_from(allowed).unwrap_or(usize::MAX));
                body.discard = true;
                rejected = Some(Queued::Rejected {
                    transaction_id: body.end_line.transaction_id(),
                    is_report: body.is_report,
                    error: ParseError::BodyTooLarge { at: body.start + limit as u64, limit },
                });
            }
        }
        body.len += piece.len() as u64;
        let discard = body.discard;
        // What follows the piece: the rejection, or the end of a delivered frame.
        let after = match (rejected, end) {
            (Some(rejected), _) => Some(rejected),
            (None, Some(flag)) if !discard => Some(Queued::End(flag)),
            (None, _) => None,
        };
        if end.is_some() {
            self.begin_head();
        }
        if piece.is_empty() {
            return after.map_or(Progress::Continue, |queued| Progress::Event(queued.into_event()));
        }
        match after {
            Some(Queued::End(flag)) => self.end = Some(flag),
            rejected => self.queued = rejected,
        }
        Progress::Event(FramerEvent::Body(piece))
    }
}

/// False candidates (CRs that start no [`DASHES`]) a search for [`DASHES`]
/// checks one by one before it hands the rest to `memmem`, plus one for every
/// [`CR_SPACING`] bytes it skipped.
const CR_CANDIDATES: usize = 8;
/// See [`CR_CANDIDATES`].
const CR_SPACING: usize = 128;

/// The searchers for [`DASHES`], built once per framer.
#[derive(Clone, Debug)]
struct Finder {
    /// For data dense with CRs.
    dashes: memmem::Finder<'static>,
    /// For CR, when the CPU has AVX2: built once, it spares each search the
    /// dispatch and setup of `memchr::memchr`.
    #[cfg(target_arch = "x86_64")]
    cr: Option<memchr::arch::x86_64::avx2::memchr::One>,
}

impl Finder {
    fn new() -> Self {
        Self {
            dashes: memmem::Finder::new(DASHES),
            #[cfg(target_arch = "x86_64")]
            cr: memchr::arch::x86_64::avx2::memchr::One::new(b'\r'),
        }
    }

    /// The first CR in `data`.
    #[inline]
    fn find_cr(&self, data: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some(cr) = &self.cr {
            return cr.find(data);
        }
        memchr::memchr(b'\r', data)
    }
}

/// The first occurrence of [`DASHES`] in `data`.
///
/// A body has few CRs, or none (binary data: one byte in 256; text: one per
/// line), so the search goes from CR to CR with a one-byte search, the
/// fastest there is, and compares the rest at each. Where CRs come closer
/// than [`CR_SPACING`] bytes on average, the rest goes to the `memmem`
/// searcher, whose cost does not depend on them. Each byte is looked at
/// once either way.
#[inline(never)]
fn find_dashes(finder: &Finder, data: &[u8]) -> Option<usize> {
    let mut from = 0;
    let mut budget = CR_CANDIDATES;
    loop {
        let at = from + finder.find_cr(data.get(from..)?)?;
        if data.get(at..)?.starts_with(DASHES) {
            return Some(at);
        }
        budget = (budget + (at - from) / CR_SPACING).saturating_sub(1);
        from = at + 1;
        if budget == 0 {
            return finder.dashes.find(data.get(from..)?).map(|i| from + i);
        }
    }
}

/// Finds the first place in `data` where the end-line of `end_line` starts,
/// or may start if more bytes come.
#[inline(always)]
fn find_end_line(finder: &Finder, data: &[u8], end_line: &EndLine) -> Found {
    // The first CR, in line: usually that of the end-line itself, or none
    // at all (nor a possible start of one) in a segment of the body.
    let Some(cr) = finder.find_cr(data) else { return Found::None };
    let first = if data.get(cr..).is_some_and(|rest| rest.starts_with(DASHES)) {
        Some(cr)
    } else {
        let from = cr + 1;
        data.get(from..).and_then(|rest| find_dashes(finder, rest)).map(|i| from + i)
    };
    match first {
        // The common case on a body segment: no candidate at all.
        None => held_start(data, 0),
        Some(at) => match end_line.whole_at(data, at) {
            // The usual first candidate: the whole end-line, as `check_candidates` decides it.
            Some(flag) => Found::End { at, flag },
            None => check_candidates(finder, data, end_line, at),
        },
    }
}

/// [`find_end_line`] from its first candidate, the "\r\n-------" at `first`.
#[inline(never)]
fn check_candidates(finder: &Finder, data: &[u8], end_line: &EndLine, first: usize) -> Found {
    let pattern = end_line.pattern();
    let mut candidate = Some(first);
    let mut from = 0;
    while let Some(at) = candidate {
        // RFC 4975 s.7.1: the body ends at CRLF "-------" transact-id flag CRLF,
        // and only the end-line of this transaction ends it.
        let tail = &data[at..];
        let n = tail.len().min(end_line.full_len());
        let mut decided = false;
        let mut matches = tail[..n.min(pattern.len())] == pattern[..n.min(pattern.len())];
        if matches && n > pattern.len() {
            matches = Flag::from_byte(tail[pattern.len()]).is_some();
        }
        if matches && n > pattern.len() + 1 {
            matches = tail[pattern.len() + 1] == b'\r';
        }
        if matches && n > pattern.len() + 2 {
            matches = tail[pattern.len() + 2] == b'\n';
            decided = true;
        }
        if matches {
            if decided {
                let flag = Flag::from_byte(tail[pattern.len()]).unwrap_or(Flag::End);
                return Found::End { at, flag };
            }
            return Found::Maybe { at };
        }
        from = at + 1;
        candidate = find_dashes(finder, &data[from..]).map(|i| from + i);
    }
    held_start(data, from)
}

/// With no full "\r\n-------" in `data[from..]`: where a shorter prefix of it
/// ends the data, if one does.
#[inline]
fn held_start(data: &[u8], from: usize) -> Found {
    let tail_start = data.len().saturating_sub(DASHES.len() - 1).max(from);
    if let Ok(tail) = <[u8; 8]>::try_from(&data[tail_start..]) {
        // Eight bytes at once: no CR among them means nothing to hold.
        let x = u64::from_le_bytes(tail) ^ 0x0d0d_0d0d_0d0d_0d0d;
        if x.wrapping_sub(0x0101_0101_0101_0101) & !x & 0x8080_8080_8080_8080 == 0 {
            return Found::None;
        }
    }
    (tail_start..data.len())
        .find(|&at| data[at] == b'\r' && DASHES.starts_with(&data[at..]))
        .map_or(Found::None, |at| Found::Maybe { at })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The search finds what `memmem` finds, on haystacks dense with the
    /// pattern's bytes (past the switch to `memmem`) and on haystacks with
    /// few CRs and a planted pattern (CR to CR all the way).
    #[test]
    fn search_agrees_with_memmem() {
        let finder = Finder::new();
        let memmem = memmem::Finder::new(DASHES);
        let dense = b"\r\n--------x";
        let sparse = b"\r\n-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?";
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let len = round % 1200;
            let alphabet: &[u8] = if round % 2 == 0 { dense } else { sparse };
            let mut data: Vec<u8> = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            if round % 4 == 1 && len > DASHES.len() {
                let at = (next() % (len - DASHES.len()) as u64) as usize;
                data[at..at + DASHES.len()].copy_from_slice(DASHES);
            }
            assert_eq!(find_dashes(&finder, &data), memmem.find(&data), "{data:?}");
        }
    }
}
