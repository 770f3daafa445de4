//! One MSRP session endpoint (RFC 4975 s.5, s.7): a chunking sender, a
//! reassembling receiver, transaction responses, REPORTs and the transaction
//! timer, as a sans-IO machine.
//!
//! The session is bound to one link (connection). The runtime feeds it what
//! the link carries for it ([`Input::Frame`], or raw bytes with
//! [`Input::Received`] when the session owns the link alone), link up/down
//! and timeouts, and drains [`Session::poll_output`] after every
//! [`Session::handle`]: transmits in the order they must be written, and
//! events for the user. Then it reads [`Session::poll_timeout`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;

use crate::coverage::Coverage;
use crate::deadline::later;
use crate::id::{random_ident, IdSource, MessageId, TransactionId};
use crate::reassembly::{ChunkId, Delivery, DeliveryMode, Reassembler, ReassemblyConfig};
use crate::uri::{MsrpUri, Scheme};
use crate::wire::{
    ByteRange, Encoder, FailureReport, Flag, Frame, FrameHead, Framer, FramerEvent, Limits, Method, StartLine, Transmit,
};
use crate::ParseError;

/// A message the user sends, named by the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct MessageHandle(u64);

impl MessageHandle {
    /// Wraps the caller's number.
    #[must_use]
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }
    /// The caller's number.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for MessageHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "msg#{}", self.0)
    }
}

/// Which side opens the link (RFC 4975 s.5.4, RFC 6135 `a=setup`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum LinkRole {
    /// Opens the connection and writes first.
    Active,
    /// Accepts the connection and writes nothing until the first request arrives.
    Passive,
}

/// How a session is set up.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// This endpoint's URI: the From-Path of what it sends, the To-Path it accepts.
    pub local_uri: MsrpUri,
    /// The peer's path (its SDP `a=path`), the To-Path of what this endpoint sends.
    pub remote_path: Vec<MsrpUri>,
    /// Active or passive side of the link.
    pub role: LinkRole,
    /// Chunks up to this size are sent whole with a known range-end; bigger
    /// ones are interruptible, and no chunk but a message's last is smaller
    /// (RFC 4975 s.7.1.1: 2048).
    pub chunk_size: usize,
    /// Body bytes per transmit of an interruptible chunk: how often the
    /// sender looks for other traffic to interleave.
    pub write_quantum: usize,
    /// Streamed content ([`Command::StreamData`]) that waits to be sent in
    /// pieces shorter than this is copied, coalesced with its neighbours;
    /// longer pieces wait as they came, shared with the caller (default
    /// 2048, the chunk size of RFC 4975 s.7.1.1, so that chunks of that size
    /// pass a relay uncopied). A piece sliced from a larger read keeps the
    /// whole read alive while it waits: with reads of `r` bytes, what waits
    /// keeps at most `r / min_shared_piece` times its size alive. 0 shares
    /// every piece.
    pub min_shared_piece: usize,
    /// Largest chunk body. `None` (the default) sends a message in as few
    /// chunks as possible, as RFC 4975 s.7.1.1 strongly recommends; `Some(n)`
    /// ends every chunk after `n` octets, the RFC's other strategy ("the
    /// sender MAY simply send chunks in 2048-octet increments"). Values
    /// below `chunk_size` are raised to it.
    pub max_chunk_size: Option<usize>,
    /// Time to wait for a transaction's response (RFC 4975 s.7.1.1: 30 s).
    pub transaction_timeout: Duration,
    /// Receiver: delivery mode and limits.
    pub reassembly: ReassemblyConfig,
    /// Media types accepted in SEND (`*`, `type/*` and `type/subtype`);
    /// empty accepts everything. Others get 415 (s.7.3.1).
    pub accept_types: Vec<String>,
    /// Most messages queued for sending at once.
    pub max_outgoing: usize,
    /// Framer limits, for [`Input::Received`].
    pub limits: Limits,
    /// Whether this endpoint sends the success REPORT a sender asks for
    /// with `Success-Report: yes` (RFC 4975 s.7.1.3; default `true`). A
    /// relay hop sets it to `false`: the final receiver reports, and the hop
    /// re-addresses that REPORT upstream ([`Command::Report`]).
    pub success_reports: bool,
    /// How long to wait, after the last byte of a message that asked for a
    /// success REPORT, for REPORTs covering all of it (default 30 s; RFC 4975
    /// s.7.1.1 leaves the value open). Then [`Event::ReportTimedOut`].
    pub report_timeout: Duration,
}

impl SessionConfig {
    /// A configuration with the RFC's defaults.
    #[must_use]
    pub fn new(local_uri: MsrpUri, remote_path: Vec<MsrpUri>, role: LinkRole) -> Self {
        Self {
            local_uri,
            remote_path,
            role,
            chunk_size: 2048,
            write_quantum: 16 * 1024,
            min_shared_piece: 2048,
            max_chunk_size: None,
            transaction_timeout: Duration::from_secs(30),
            reassembly: ReassemblyConfig::default(),
            accept_types: Vec::new(),
            max_outgoing: 1024,
            limits: Limits::default(),
            success_reports: true,
            report_timeout: Duration::from_secs(30),
        }
    }
}

/// A session-id of 16 alphanumeric characters: about 95 random bits
/// (RFC 4975 s.14.1: "at least 80 bits of randomness").
pub fn new_session_id(ids: &mut dyn IdSource) -> String {
    random_ident::<16>(ids).iter().map(|&b| char::from(b)).collect()
}

/// A local MSRP URI with a fresh session-id.
///
/// # Errors
/// When `host` or `transport` do not fit the URI grammar.
pub fn new_local_uri(
    scheme: Scheme,
    host: &str,
    port: u16,
    transport: &str,
    ids: &mut dyn IdSource,
) -> Result<MsrpUri, crate::UriError> {
    MsrpUri::new(scheme, host, Some(port), Some(&new_session_id(ids)), transport)
}

/// What the user asks of the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Send a whole message.
    Send {
        /// The caller's name for it.
        handle: MessageHandle,
        /// Its Content-Type.
        content_type: String,
        /// Its content, shared (chunks are slices of it).
        body: Bytes,
        /// Ask for a success REPORT (RFC 4975 s.7.1.1).
        success_report: bool,
        /// Failure-Report policy.
        failure_report: FailureReport,
    },
    /// Start a message whose content arrives with [`Command::StreamData`]
    /// (length unknown: `*` totals).
    SendStream {
        /// The caller's name for it.
        handle: MessageHandle,
        /// Its Content-Type.
        content_type: String,
        /// Ask for a success REPORT.
        success_report: bool,
        /// Failure-Report policy.
        failure_report: FailureReport,
    },
    /// More content of a streamed message; `last` closes it.
    StreamData {
        /// The message.
        handle: MessageHandle,
        /// The next bytes.
        data: Bytes,
        /// Whether these are the last bytes.
        last: bool,
    },
    /// More content of a streamed message, self-contained: the caller made
    /// sure `data` keeps no larger buffer alive (a relay copies a short
    /// piece once and hands the copy to every member), so it is never copied
    /// here, however short ([`SessionConfig::min_shared_piece`] does not
    /// apply). `last` closes the message.
    StreamOwned {
        /// The message.
        handle: MessageHandle,
        /// The next bytes.
        data: Bytes,
        /// Whether these are the last bytes.
        last: bool,
    },
    /// Abort a message: its current chunk ends with `#` and nothing more is sent.
    Abort {
        /// The message.
        handle: MessageHandle,
    },
    /// Start a message relayed from another hop: like [`Command::SendStream`],
    /// but it keeps the end-to-end Message-ID and may declare the total
    /// (chunks then carry `1-*/total`; still `*` while it is unknown). Its
    /// content arrives with [`Command::StreamData`].
    Forward {
        /// The caller's name for it.
        handle: MessageHandle,
        /// The Message-ID the message arrived with (RFC 4975 s.7.1.1).
        message_id: MessageId,
        /// Its Content-Type.
        content_type: String,
        /// Its size, when known.
        total: Option<u64>,
        /// Ask for a success REPORT.
        success_report: bool,
        /// Failure-Report policy.
        failure_report: FailureReport,
    },
    /// Send a REPORT about a message to the peer (a relay re-addressing a
    /// downstream REPORT, or reporting a downstream failure, upstream).
    Report {
        /// The message reported on.
        message_id: MessageId,
        /// The status code (namespace 000).
        status: u16,
        /// The range the REPORT covers.
        byte_range: Option<ByteRange>,
    },
}

/// What comes into the session.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Input {
    /// The link is up (active: connected; passive: accepted and assigned).
    LinkUp,
    /// The link is gone.
    LinkDown,
    /// A framer event of this session's link.
    Frame(FramerEvent),
    /// Raw bytes of a link this session owns alone (an internal framer splits them).
    Received(Bytes),
    /// A timer may have expired.
    Timeout,
    /// A user command.
    Command(Command),
}

/// What the session asks of the runtime, or tells the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Bytes to write to the link, in order (head, body, end-line; any may be empty).
    Transmit(Transmit),
    /// Something happened.
    Event(Event),
}

/// What the session tells the user.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The first request crossed the link: the session is bound to it (s.5.4).
    Bound,
    /// A whole message arrived (buffered mode; in streaming mode `body` is empty).
    MessageReceived {
        /// Its Message-ID.
        message_id: MessageId,
        /// Its Content-Type.
        content_type: Option<String>,
        /// Its content.
        body: Bytes,
        /// Its size.
        total: u64,
        /// For a `multipart/*` body (buffered mode), its parts as slices of
        /// `body` (RFC 4975 s.7.3.1: every endpoint MUST receive
        /// multipart/mixed and multipart/alternative); empty otherwise, or
        /// when the body does not split (RFC 2046 s.5.1).
        parts: Vec<crate::mime::MimePart>,
    },
    /// Streaming mode: the next bytes of a message, in order (offset from 0).
    ChunkReceived {
        /// The message.
        message_id: MessageId,
        /// Offset of `data` in the message.
        offset: u64,
        /// The bytes, shared with the received segment.
        data: Bytes,
    },
    /// Streaming mode: a chunk rewrote bytes already delivered (s.7.3.1).
    ChunkConflict {
        /// The message.
        message_id: MessageId,
        /// Offset of the conflicting bytes.
        offset: u64,
        /// Their count.
        len: u64,
    },
    /// Streaming mode: a message's first bytes (or its end, for an empty
    /// message) are about to be delivered; comes once per message, before
    /// its first [`Event::ChunkReceived`]. What a relay needs to pass it on.
    MessageStarted {
        /// The message.
        message_id: MessageId,
        /// The Content-Type of the chunk that started the delivery.
        content_type: Option<String>,
        /// The total that chunk declared (`None` for `*`).
        total: Option<u64>,
        /// Whether the sender asked for a success REPORT.
        success_report: bool,
        /// The sender's Failure-Report policy.
        failure_report: FailureReport,
    },
    /// Streaming mode: a started message was refused part way (a limit or
    /// a bad range: the chunk got `status`); nothing more of it is delivered.
    MessageDiscarded {
        /// The message.
        message_id: MessageId,
        /// The status the refused chunk was answered with.
        status: u16,
    },
    /// The peer aborted a message with `#`.
    MessageAborted {
        /// The message.
        message_id: MessageId,
    },
    /// A transaction response for one of our messages' chunks.
    ResponseReceived {
        /// The message.
        handle: MessageHandle,
        /// The status code.
        status: u16,
    },
    /// A REPORT about one of our messages (or an unknown one: `handle` is `None`).
    ReportReceived {
        /// The message, when recognised.
        handle: Option<MessageHandle>,
        /// Its Message-ID.
        message_id: MessageId,
        /// The reported status code (namespace 000).
        status: u16,
        /// The reported range.
        byte_range: Option<ByteRange>,
    },
    /// The peer's success REPORTs cover every byte of one of our messages
    /// (RFC 4975 s.7.1.3: one REPORT for the whole, or several for parts).
    MessageDelivered {
        /// The message.
        handle: MessageHandle,
    },
    /// A message that asked for a success REPORT was not covered by REPORTs
    /// within [`SessionConfig::report_timeout`] of its last byte: the wait
    /// ends and nothing more is kept for it.
    ReportTimedOut {
        /// The message.
        handle: MessageHandle,
    },
    /// Every chunk of a message was handed to the link (and, for
    /// `Failure-Report: yes`, acknowledged with 200).
    MessageSent {
        /// The message.
        handle: MessageHandle,
    },
    /// A message failed: error response, failure REPORT, timeout (408) or link loss.
    SendFailed {
        /// The message.
        handle: MessageHandle,
        /// The status that failed it (408 for a timeout, 0 for a lost link).
        status: u16,
        /// Why.
        reason: &'static str,
    },
    /// The peer broke the protocol; the session answered as the RFC says.
    PeerError {
        /// What was wrong.
        error: ParseError,
    },
}

/// A caller's mistake; the session's state is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UsageError {
    /// No message has this handle.
    #[error("unknown message handle")]
    UnknownHandle,
    /// A message with this handle is already in progress.
    #[error("duplicate message handle")]
    DuplicateHandle,
    /// StreamData for a message that is not streamed, or after its last data.
    #[error("the message takes no more data")]
    NotStreaming,
    /// Too many messages queued.
    #[error("too many messages queued")]
    QueueFull,
    /// The Content-Type is not a media type.
    #[error("invalid content type")]
    ContentType,
    /// A message with this Message-ID is already queued on the session.
    #[error("duplicate Message-ID")]
    DuplicateMessageId,
}

/// The report policies of a message (RFC 4975 s.7.1.1).
#[derive(Clone, Copy, Debug)]
struct Reports {
    success: bool,
    failure: FailureReport,
}

#[derive(Debug)]
struct Outgoing {
    handle: MessageHandle,
    message_id: MessageId,
    content_type: String,
    success_report: bool,
    failure_report: FailureReport,
    /// Content not yet handed to the link, in order.
    pending: Pending,
    /// Whether all content is known (`pending` holds the rest).
    complete: bool,
    /// Bytes handed to the link so far.
    offset: u64,
    /// Total size, when known.
    total: Option<u64>,
    /// Transactions of this message awaiting a response.
    awaiting: usize,
    /// All chunks handed to the link.
    all_sent: bool,
    /// Abort requested or failure received: end the current chunk with `#`.
    abort: bool,
}

impl Outgoing {
    fn available(&self) -> u64 {
        self.pending.len() as u64
    }
}

/// Content of an outgoing message not yet handed to the link, in order.
///
/// Pieces of at least `min_shared` bytes ([`SessionConfig::min_shared_piece`])
/// are kept as they came: the caller's `Bytes`, a reference count, no copy.
/// Shorter ones are copied into an owned buffer that coalesces them, since a
/// small slice of a large read would keep the whole read alive as long as it
/// waits. A piece the caller made self-contained ([`Command::StreamOwned`])
/// is kept as it came whatever its length. So nothing kept shared that may
/// hold a larger buffer is shorter than `min_shared`.
#[derive(Debug, Default)]
struct Pending {
    /// Each piece, and whether it is self-contained (holds no larger buffer).
    pieces: VecDeque<(Bytes, bool)>,
    /// Short pieces copied together; they follow `pieces`.
    tail: Vec<u8>,
    /// Bytes in `pieces` and `tail`.
    len: usize,
}

impl Pending {
    /// A whole message body, shared as it is (the caller's own buffer).
    fn body(body: Bytes) -> Self {
        let len = body.len();
        let pieces = if body.is_empty() { VecDeque::new() } else { VecDeque::from([(body, false)]) };
        Self { pieces, tail: Vec::new(), len }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pieces and coalescing buffers kept.
    #[cfg(any(test, feature = "fuzzing"))]
    fn entries(&self) -> usize {
        self.pieces.len() + usize::from(!self.tail.is_empty())
    }

    /// Appends streamed content (`owned`: self-contained, never copied).
    fn push(&mut self, data: Bytes, min_shared: usize, owned: bool) {
        self.len += data.len();
        if data.is_empty() {
            return;
        }
        if !owned && data.len() < min_shared {
            self.tail.extend_from_slice(&data);
            if self.tail.len() >= min_shared {
                self.seal();
            }
        } else {
            self.seal();
            self.pieces.push_back((data, owned));
        }
    }

    /// Puts content taken from the front back in front.
    fn push_front(&mut self, data: Bytes, owned: bool, min_shared: usize) {
        self.len += data.len();
        if !data.is_empty() {
            self.pieces.push_front(Self::kept(data, owned, min_shared));
        }
    }

    /// Takes up to `max` bytes from the front, in one piece, and whether it
    /// is self-contained.
    fn take(&mut self, max: usize, min_shared: usize) -> (Bytes, bool) {
        if self.pieces.is_empty() {
            self.seal();
        }
        let Some((front, owned)) = self.pieces.front_mut() else { return (Bytes::new(), true) };
        let owned = *owned;
        let piece = front.split_to(front.len().min(max));
        if front.is_empty() {
            self.pieces.pop_front();
        } else if !owned && front.len() < min_shared {
            // What is left of a long piece is short now: it stops keeping
            // the rest of its buffer alive.
            *front = Bytes::copy_from_slice(front);
            if let Some(entry) = self.pieces.front_mut() {
                entry.1 = true;
            }
        }
        self.len = self.len.saturating_sub(piece.len());
        (piece, owned)
    }

    fn clear(&mut self) {
        *self = Self::default();
    }

    /// Moves the coalesced copies behind the shared pieces.
    fn seal(&mut self) {
        if !self.tail.is_empty() {
            self.pieces.push_back((Bytes::from(std::mem::take(&mut self.tail)), true));
        }
    }

    /// `data` as kept: a copy when it may hold a larger buffer and is
    /// shorter than `min_shared`.
    fn kept(data: Bytes, owned: bool, min_shared: usize) -> (Bytes, bool) {
        if !owned && data.len() < min_shared {
            (Bytes::copy_from_slice(&data), true)
        } else {
            (data, owned)
        }
    }
}

/// The chunk being written.
#[derive(Debug)]
struct Chunk {
    handle: MessageHandle,
    transaction_id: TransactionId,
    /// Body bytes of this chunk handed over.
    written: u64,
    /// Where the chunk ends at the latest (its body length), `None` for no bound.
    limit: Option<u64>,
    /// Whether its range-end is `*`, so that it may end early.
    interruptible: bool,
}

/// What a timer of the session waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Timer {
    /// A transaction's response (RFC 4975 s.7.1.1).
    Transaction(TransactionId),
    /// The success REPORTs of a message (its Message-ID).
    Report(MessageId),
}

/// Success REPORTs owed for one of our messages.
#[derive(Debug)]
struct Expected {
    handle: MessageHandle,
    /// The message's size, once its last byte was handed to the link.
    total: Option<u64>,
    coverage: Coverage,
    /// Its key in the timer table, armed with the last byte.
    timer: Option<(Instant, u64)>,
}

#[derive(Debug)]
struct Transaction {
    handle: MessageHandle,
    /// `Failure-Report: partial`: silence means success.
    partial: bool,
    /// Its key in the timer table.
    timer: Option<(Instant, u64)>,
}

/// The current inbound SEND chunk.
#[derive(Debug)]
enum Inbound {
    None,
    /// Data goes to the reassembler.
    Chunk {
        chunk: ChunkId,
        head: FrameHead,
    },
    /// Body ignored (already answered with an error, or bodiless).
    Ignore {
        head: Option<FrameHead>,
    },
}

/// One MSRP session (RFC 4975).
pub struct Session {
    config: SessionConfig,
    ids: Box<dyn IdSource + Send>,
    encoder: Encoder,
    /// Only for [`Input::Received`]: boxed, so sessions on shared links stay small.
    framer: Option<Box<Framer>>,
    reassembler: Reassembler,
    last_now: Instant,
    link_up: bool,
    bound: bool,
    /// The peer wrote a request on the link (perhaps not for this session).
    heard: bool,
    /// Outgoing messages, in round-robin order.
    outgoing: VecDeque<Outgoing>,
    chunk: Option<Chunk>,
    /// Responses and REPORTs waiting for the link (they interrupt chunks).
    control: VecDeque<Transmit>,
    /// Ready outputs.
    ready: VecDeque<Output>,
    transactions: HashMap<TransactionId, Transaction>,
    timers: BTreeMap<(Instant, u64), Timer>,
    timer_seq: u64,
    /// Success REPORTs expected, by Message-ID.
    reports: HashMap<MessageId, Expected>,
    inbound: Inbound,
    /// The bodiless SEND that bound the link, if this side sent one.
    binding_transaction: Option<TransactionId>,
    stray_responses: u64,
    deliveries: Vec<Delivery>,
    /// Streaming mode: messages whose delivery started and has not ended.
    streams: Vec<MessageId>,
    /// Set for one [`Session::poll_transmit`]: other sessions wait for the link.
    contended: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("local_uri", &self.config.local_uri)
            .field("bound", &self.bound)
            .field("link_up", &self.link_up)
            .field("outgoing", &self.outgoing.len())
            .field("transactions", &self.transactions.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session, not yet on a link. Randomness (transaction ids,
    /// Message-IDs) comes from `ids`.
    pub fn new(config: SessionConfig, now: Instant, ids: Box<dyn IdSource + Send>) -> Self {
        let reassembler = Reassembler::new(config.reassembly.clone());
        Self {
            config,
            ids,
            encoder: Encoder::new(),
            framer: None,
            reassembler,
            last_now: now,
            link_up: false,
            bound: false,
            heard: false,
            outgoing: VecDeque::new(),
            chunk: None,
            control: VecDeque::new(),
            ready: VecDeque::new(),
            transactions: HashMap::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            reports: HashMap::new(),
            inbound: Inbound::None,
            binding_transaction: None,
            stray_responses: 0,
            deliveries: Vec::new(),
            streams: Vec::new(),
            contended: false,
        }
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Whether the first request crossed the link.
    #[must_use]
    pub const fn is_bound(&self) -> bool {
        self.bound
    }

    /// Responses that matched no transaction (ignored).
    #[must_use]
    pub const fn stray_responses(&self) -> u64 {
        self.stray_responses
    }

    /// Transactions awaiting a response.
    #[must_use]
    pub fn open_transactions(&self) -> usize {
        self.transactions.len()
    }

    /// Messages queued or in flight.
    #[must_use]
    pub fn outgoing_messages(&self) -> usize {
        self.outgoing.len()
    }

    /// Bytes the receiver holds for incomplete messages: what
    /// [`ReassemblyConfig::max_held_bytes`] bounds, plus the streaming
    /// overlap window ([`Reassembler::window_bytes`]).
    #[must_use]
    pub fn held_bytes(&self) -> usize {
        self.reassembler.held_bytes() + self.reassembler.window_bytes()
    }

    /// The receiver's reassembler.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) const fn reassembler(&self) -> &Reassembler {
        &self.reassembler
    }

    /// Entries kept in queues, maps and timers, the reassembler's included
    /// (a heap bound allows each a fixed overhead).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn entries(&self) -> usize {
        let pieces: usize = self.outgoing.iter().map(|m| m.pending.entries()).sum();
        self.outgoing.len()
            + pieces
            + self.control.len()
            + self.ready.len()
            + self.transactions.len()
            + self.timers.len()
            + self.reports.len()
            + self.streams.len()
            + self.deliveries.len()
            + self.reassembler.entries()
    }

    /// Body bytes given to the session (by [`Command::Send`] or
    /// [`Command::StreamData`]) and not yet handed out in a transmit: what a
    /// relay counts against a member's window.
    #[must_use]
    pub fn queued_bytes(&self) -> usize {
        self.outgoing.iter().map(|m| m.pending.len()).sum()
    }

    /// Responses and REPORTs waiting for the link: what this session owes
    /// the peer and has not handed out yet.
    #[must_use]
    pub fn owed_frames(&self) -> usize {
        self.control.len()
    }

    /// Whether the link is up (between [`Input::LinkUp`] and [`Input::LinkDown`]).
    #[must_use]
    pub const fn is_link_up(&self) -> bool {
        self.link_up
    }

    /// Whether the last transmit left a frame open (a chunk without its
    /// end-line): on a shared link nothing else may be written until it closes.
    #[must_use]
    pub const fn has_open_frame(&self) -> bool {
        self.chunk.is_some()
    }

    /// Whether [`Session::poll_transmit`] has something to write now.
    #[must_use]
    pub fn wants_link(&self) -> bool {
        if !self.may_write() {
            return false;
        }
        if let Some(chunk) = &self.chunk {
            return self
                .outgoing
                .iter()
                .find(|m| m.handle == chunk.handle)
                .map_or(true, |m| m.abort || m.complete || !m.pending.is_empty())
                || !self.control.is_empty();
        }
        !self.control.is_empty()
            || (!self.bound && self.config.role == LinkRole::Active && self.outgoing.is_empty())
            || (self.may_send_messages()
                && self.outgoing.iter().any(|m| !m.all_sent && (!m.pending.is_empty() || m.complete)))
    }

    /// The next event only, leaving transmits for [`Session::poll_transmit`]:
    /// for a caller that writes at the link's pace (a shared link with a
    /// window). Events and transmits are independent queues; draining both
    /// this way is equivalent to [`Session::poll_output`].
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        match self.ready.pop_front()? {
            Output::Event(event) => Some(event),
            Output::Transmit(transmit) => {
                // `ready` only ever holds events; keep the order if that changes.
                self.ready.push_front(Output::Transmit(transmit));
                None
            }
        }
    }

    /// The next transmit only (see [`Session::poll_event`]). `contended`
    /// says other traffic waits for the same link: an open chunk then ends
    /// with `+` at the next fair point (RFC 4975 s.7.1.1), at once if it is
    /// waiting for streamed data, so that the link is not held idle.
    pub fn poll_transmit(&mut self, contended: bool) -> Option<Transmit> {
        self.contended = contended;
        let transmit = self.next_transmit();
        self.contended = false;
        transmit
    }

    /// Feeds one input. Bad peer input never returns `Err`: it becomes an
    /// error response and [`Event::PeerError`].
    ///
    /// # Errors
    /// [`UsageError`] for a command that cannot be carried out.
    pub fn handle(&mut self, now: Instant, input: Input) -> Result<(), UsageError> {
        // Time never goes back: an earlier `now` is taken as the last one.
        self.last_now = self.last_now.max(now);
        match input {
            Input::LinkUp => self.link_up = true,
            Input::LinkDown => self.link_down(),
            Input::Frame(event) => self.frame(event),
            Input::Received(bytes) => {
                let limits = self.config.limits.clone();
                let framer = self.framer.get_or_insert_with(|| Box::new(Framer::new(limits)));
                framer.handle_segment(bytes);
                while let Some(event) = self.framer.as_mut().and_then(|f| f.poll_event()) {
                    match event {
                        Ok(event) => self.frame(event),
                        Err(error) => {
                            // The framing is lost: the link must close.
                            self.ready.push_back(Output::Event(Event::PeerError { error }));
                            self.link_down();
                            break;
                        }
                    }
                }
            }
            Input::Timeout => self.timeout(),
            Input::Command(command) => self.command(command)?,
        }
        Ok(())
    }

    /// The next output, `None` when there is nothing more to do now.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(output) = self.ready.pop_front() {
            return Some(output);
        }
        let transmit = self.next_transmit()?;
        Some(Output::Transmit(transmit))
    }

    /// When [`Input::Timeout`] is next due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.keys().next().map(|&(at, _)| at)
    }

    // ----- commands -------------------------------------------------------

    fn command(&mut self, command: Command) -> Result<(), UsageError> {
        let owned = matches!(command, Command::StreamOwned { .. });
        match command {
            Command::Send { handle, content_type, body, success_report, failure_report } => {
                let total = body.len() as u64;
                let pending = Pending::body(body);
                let reports = Reports { success: success_report, failure: failure_report };
                self.enqueue(handle, None, content_type, reports, pending, Some(total), true)
            }
            Command::SendStream { handle, content_type, success_report, failure_report } => {
                let reports = Reports { success: success_report, failure: failure_report };
                self.enqueue(handle, None, content_type, reports, Pending::default(), None, false)
            }
            Command::Forward { handle, message_id, content_type, total, success_report, failure_report } => {
                if self.outgoing.iter().any(|m| m.message_id == message_id) || self.reports.contains_key(&message_id) {
                    return Err(UsageError::DuplicateMessageId);
                }
                let reports = Reports { success: success_report, failure: failure_report };
                self.enqueue(handle, Some(message_id), content_type, reports, Pending::default(), total, false)
            }
            Command::Report { message_id, status, byte_range } => {
                self.send_report(&message_id, status, byte_range);
                Ok(())
            }
            Command::StreamData { handle, data, last } | Command::StreamOwned { handle, data, last } => {
                let min_shared = self.config.min_shared_piece;
                let message = self.message_mut(handle).ok_or(UsageError::UnknownHandle)?;
                if message.complete {
                    return Err(UsageError::NotStreaming);
                }
                message.pending.push(data, min_shared, owned);
                if last {
                    message.complete = true;
                }
                Ok(())
            }
            Command::Abort { handle } => {
                if self.message_mut(handle).is_none() {
                    return Err(UsageError::UnknownHandle);
                }
                self.fail(handle, 0, "aborted by the user");
                Ok(())
            }
        }
    }

    #[expect(clippy::too_many_arguments, reason = "one private constructor for the three ways a message starts")]
    fn enqueue(
        &mut self,
        handle: MessageHandle,
        message_id: Option<MessageId>,
        content_type: String,
        reports: Reports,
        pending: Pending,
        total: Option<u64>,
        complete: bool,
    ) -> Result<(), UsageError> {
        if self.outgoing.iter().any(|m| m.handle == handle) {
            return Err(UsageError::DuplicateHandle);
        }
        if self.outgoing.len() >= self.config.max_outgoing {
            return Err(UsageError::QueueFull);
        }
        if crate::wire::check_media_type(content_type.as_bytes()).is_err() {
            return Err(UsageError::ContentType);
        }
        // RFC 4975 s.7.1.1: "it first generates a new Message-ID" (a relayed
        // message keeps the one it arrived with).
        let message_id = message_id.unwrap_or_else(|| MessageId::generate(self.ids.as_mut()));
        if reports.success {
            let expected = Expected { handle, total: None, coverage: Coverage::default(), timer: None };
            self.reports.insert(message_id.clone(), expected);
        }
        self.outgoing.push_back(Outgoing {
            handle,
            message_id,
            content_type,
            success_report: reports.success,
            failure_report: reports.failure,
            pending,
            complete,
            offset: 0,
            total,
            awaiting: 0,
            all_sent: false,
            abort: false,
        });
        Ok(())
    }

    fn message_mut(&mut self, handle: MessageHandle) -> Option<&mut Outgoing> {
        self.outgoing.iter_mut().find(|m| m.handle == handle)
    }

    // ----- sending ---------------------------------------------------------

    /// Whether this side may write: RFC 4975 s.5.4 / RFC 6135 s.4.2.2: the
    /// passive side sends nothing until it has received the first request.
    /// Answers to the peer's requests may go out once it has written; our
    /// own requests only once a request for this session bound the link.
    fn may_write(&self) -> bool {
        self.link_up && (self.bound || self.heard || self.config.role == LinkRole::Active)
    }

    fn may_send_messages(&self) -> bool {
        self.bound || self.config.role == LinkRole::Active
    }

    fn next_transmit(&mut self) -> Option<Transmit> {
        if !self.may_write() {
            return None;
        }
        if self.chunk.is_some() {
            return self.continue_chunk();
        }
        if let Some(control) = self.control.pop_front() {
            return Some(control);
        }
        if !self.bound && self.config.role == LinkRole::Active && self.outgoing.is_empty() {
            // RFC 4975 s.5.4: the active side "MUST immediately issue a SEND
            // request"; with nothing to say, a bodiless one.
            return Some(self.binding_send());
        }
        if !self.may_send_messages() {
            return None;
        }
        self.start_chunk()
    }

    fn binding_send(&mut self) -> Transmit {
        self.bound = true;
        self.ready.push_back(Output::Event(Event::Bound));
        let message_id = MessageId::generate(self.ids.as_mut());
        let frame = Frame::bodiless("SEND", self.config.remote_path.clone(), vec![self.config.local_uri.clone()])
            .with_message_id(&message_id)
            .with_byte_range(ByteRange { start: 1, end: Some(0), total: Some(0) });
        let transaction_id = TransactionId::generate(self.ids.as_mut());
        let head = self.encoder.head(&frame, &transaction_id);
        let end_line = self.encoder.end_line(&transaction_id, Flag::End, false);
        // A bodiless SEND is still a transaction: its response is expected,
        // but it belongs to no message of the user's.
        self.binding_transaction = Some(transaction_id.clone());
        Transmit { transaction_id, head, body: Bytes::new(), end_line }
    }

    /// Picks the next message with something to send and opens a chunk.
    fn start_chunk(&mut self) -> Option<Transmit> {
        let index = self.outgoing.iter().position(|m| !m.all_sent && (!m.pending.is_empty() || m.complete))?;
        let message = self.outgoing.remove(index)?;
        self.outgoing.push_front(message);
        let chunk_size = self.config.chunk_size as u64;
        let message = self.outgoing.front_mut()?;
        let available = message.available();
        let start = message.offset + 1;
        let limit = self.config.max_chunk_size.map(|n| (n as u64).max(chunk_size));
        // A chunk whose whole body is known and at most 2048 octets goes out
        // with its range-end; with a chunk limit, so does each full chunk.
        let known = match limit {
            Some(limit) if available >= limit => Some(limit),
            _ if message.complete => Some(available),
            _ => None,
        };
        let whole = known.filter(|&n| n <= chunk_size);
        let transaction_id = TransactionId::generate(self.ids.as_mut());
        let range = if let Some(n) = whole {
            // RFC 4975 s.7.1.1: a chunk of at most 2048 octets may carry its range-end.
            let total = if message.complete { Some(message.offset + available) } else { message.total };
            ByteRange { start, end: Some(message.offset + n), total }
        } else {
            // "any chunk with a body of greater than 2048 octets will have a "*"
            // character in the range-end field"
            ByteRange { start, end: None, total: message.total }
        };
        let mut frame = Frame {
            transaction_id: None,
            start: StartLine::Request { method: "SEND".into() },
            to_path: self.config.remote_path.clone(),
            from_path: vec![self.config.local_uri.clone()],
            headers: Vec::with_capacity(4),
            content_type: Some(message.content_type.clone()),
            body: Some(Bytes::new()),
            flag: Flag::End,
        }
        .with_message_id(&message.message_id)
        .with_byte_range(range);
        // RFC 4975 s.7.1.1: "All chunks of the same message MUST use the same
        // Failure-Report and Success-Report values".
        if message.success_report {
            frame = frame.with_success_report(true);
        }
        if message.failure_report != FailureReport::Yes {
            frame = frame.with_failure_report(message.failure_report);
        }
        let handle = message.handle;
        let head = self.encoder.head(&frame, &transaction_id);
        self.bound_by_sending();
        self.chunk = Some(Chunk { handle, transaction_id, written: 0, limit, interruptible: whole.is_none() });
        let mut transmit = self.continue_chunk()?;
        transmit.head = head;
        Some(transmit)
    }

    fn bound_by_sending(&mut self) {
        if !self.bound {
            self.bound = true;
            self.ready.push_back(Output::Event(Event::Bound));
        }
    }

    /// Writes the next piece of the current chunk, or ends it.
    fn continue_chunk(&mut self) -> Option<Transmit> {
        let chunk_size = self.config.chunk_size as u64;
        let quantum = self.config.write_quantum.max(1);
        let min_shared = self.config.min_shared_piece;
        let others_waiting = self.contended
            || !self.control.is_empty()
            || self.outgoing.iter().skip(1).any(|m| !m.all_sent && (!m.pending.is_empty() || m.complete));
        let chunk = self.chunk.as_mut()?;
        let transaction_id = chunk.transaction_id.clone();
        let message = self.outgoing.iter_mut().find(|m| m.handle == chunk.handle)?;
        if message.abort {
            // RFC 4975 s.7.3.2: "the entire message corresponding to that
            // chunk SHOULD be aborted, by including the "#" character". Its
            // response, if any, no longer matters.
            let handle = message.handle;
            self.chunk = None;
            self.outgoing.retain(|m| m.handle != handle);
            let end_line = self.encoder.end_line(&transaction_id, Flag::Abort, true);
            return Some(Transmit { transaction_id, head: Bytes::new(), body: Bytes::new(), end_line });
        }
        let interrupt_now = chunk.interruptible
            && others_waiting
            && chunk.written >= chunk_size.max(if self.control.is_empty() { quantum as u64 } else { 0 });
        let stalled = message.pending.is_empty() && !message.complete;
        // A stream waiting for its next bytes never holds up other traffic.
        if interrupt_now || (stalled && (others_waiting || self.contended)) {
            // RFC 4975 s.7.1.1: "SEND requests larger than 2048 octets MUST be
            // interrupted if the sender needs to send pending responses or
            // REPORT requests"; concurrent messages alternate.
            let handle = message.handle;
            self.chunk = None;
            let end_line = self.encoder.end_line(&transaction_id, Flag::Continue, true);
            self.transaction_sent(handle, &transaction_id);
            if let Some(pos) = self.outgoing.iter().position(|m| m.handle == handle) {
                if let Some(m) = self.outgoing.remove(pos) {
                    self.outgoing.push_back(m);
                }
            }
            return Some(Transmit { transaction_id, head: Bytes::new(), body: Bytes::new(), end_line });
        }
        if stalled {
            return None;
        }
        // The next piece: at most a quantum, a slice of what waits (the
        // user's Bytes, or the copies of short streamed pieces).
        let room = chunk.limit.map_or(usize::MAX, |limit| usize::try_from(limit - chunk.written).unwrap_or(usize::MAX));
        let (mut body, owned) = message.pending.take(quantum.min(room), min_shared);
        // RFC 4975 s.7.1: the end-line must not appear in the body; scan as we
        // send and, on the (random, so improbable) event, cut the chunk there.
        if let Some(cut) = dashed_id_in(&body, &transaction_id) {
            let rest = body.split_off(cut);
            message.pending.push_front(rest, owned, min_shared);
        }
        message.offset += body.len() as u64;
        chunk.written += body.len() as u64;
        let finished = message.complete && message.pending.is_empty();
        if finished {
            message.all_sent = true;
            let handle = message.handle;
            let (message_id, total) = (message.message_id.clone(), message.offset);
            self.chunk = None;
            let end_line = self.encoder.end_line(&transaction_id, Flag::End, true);
            self.transaction_sent(handle, &transaction_id);
            self.await_reports(&message_id, total);
            self.finish_if_done(handle);
            return Some(Transmit { transaction_id, head: Bytes::new(), body, end_line });
        }
        if chunk.limit == Some(chunk.written) {
            // The chunk is full: end it with "+"; the next one resumes the message.
            let handle = message.handle;
            self.chunk = None;
            let end_line = self.encoder.end_line(&transaction_id, Flag::Continue, true);
            self.transaction_sent(handle, &transaction_id);
            return Some(Transmit { transaction_id, head: Bytes::new(), body, end_line });
        }
        Some(Transmit { transaction_id, head: Bytes::new(), body, end_line: Bytes::new() })
    }

    /// The last byte of a transaction was handed to the link.
    fn transaction_sent(&mut self, handle: MessageHandle, transaction_id: &TransactionId) {
        let Some(message) = self.outgoing.iter_mut().find(|m| m.handle == handle) else { return };
        // RFC 4975 s.7.1.1: for Failure-Report "yes" the sender runs a 30 s
        // timer "from the time the last byte of the transaction is sent";
        // "partial" needs no timer; "no" gets no response at all.
        let partial = match message.failure_report {
            FailureReport::Yes => false,
            // No timer is owed to the user, but an error response may still
            // come: keep the transaction as long as a response could, then
            // forget it as a success.
            FailureReport::Partial => true,
            FailureReport::No => return,
        };
        let deadline = Some(later(self.last_now, self.config.transaction_timeout));
        message.awaiting += usize::from(message.failure_report == FailureReport::Yes);
        let timer = deadline.map(|at| self.arm(at, Timer::Transaction(transaction_id.clone())));
        self.transactions.insert(transaction_id.clone(), Transaction { handle, partial, timer });
    }

    fn arm(&mut self, at: Instant, timer: Timer) -> (Instant, u64) {
        self.timer_seq += 1;
        self.timers.insert((at, self.timer_seq), timer);
        (at, self.timer_seq)
    }

    /// The last byte of a message that asked for success REPORTs was handed
    /// to the link: its size is known and the wait for REPORTs starts.
    fn await_reports(&mut self, message_id: &MessageId, total: u64) {
        let at = later(self.last_now, self.config.report_timeout);
        if !self.reports.contains_key(message_id) {
            return;
        }
        let timer = self.arm(at, Timer::Report(message_id.clone()));
        if let Some(expected) = self.reports.get_mut(message_id) {
            expected.total = Some(total);
            expected.timer = Some(timer);
        }
        // REPORTs may have come before the last byte was handed out.
        self.delivered_if_covered(message_id);
    }

    /// Ends the wait for a message's REPORTs once they cover all of it.
    fn delivered_if_covered(&mut self, message_id: &MessageId) {
        let covered =
            self.reports.get(message_id).is_some_and(|e| e.total.is_some_and(|total| e.coverage.covers(total)));
        if !covered {
            return;
        }
        if let Some(expected) = self.reports.remove(message_id) {
            if let Some(key) = expected.timer {
                self.timers.remove(&key);
            }
            self.ready.push_back(Output::Event(Event::MessageDelivered { handle: expected.handle }));
        }
    }

    /// Reports a message as sent when nothing more is owed on it.
    fn finish_if_done(&mut self, handle: MessageHandle) {
        let Some(pos) = self.outgoing.iter().position(|m| m.handle == handle) else { return };
        let message = &self.outgoing[pos];
        if !message.all_sent || message.awaiting > 0 {
            return;
        }
        let abort = message.abort;
        self.outgoing.remove(pos);
        if !abort {
            self.ready.push_back(Output::Event(Event::MessageSent { handle }));
        }
    }

    /// Fails a message once: it stops, its chunk in progress ends with `#`,
    /// its transactions and timers go.
    fn fail(&mut self, handle: MessageHandle, status: u16, reason: &'static str) {
        if let Some(message) = self.message_mut(handle) {
            if message.abort {
                return;
            }
            message.abort = true;
            message.pending.clear();
        }
        self.reports.retain(|_, expected| expected.handle != handle);
        self.ready.push_back(Output::Event(Event::SendFailed { handle, status, reason }));
        // The message stays only while its chunk is open, to end it with `#`.
        if self.chunk.as_ref().map_or(true, |c| c.handle != handle) {
            self.outgoing.retain(|m| m.handle != handle);
        }
        self.transactions.retain(|_, t| t.handle != handle);
        let (transactions, reports) = (&self.transactions, &self.reports);
        self.timers.retain(|_, timer| match timer {
            Timer::Transaction(id) => transactions.contains_key(id),
            Timer::Report(id) => reports.contains_key(id),
        });
    }

    fn timeout(&mut self) {
        while let Some(entry) = self.timers.first_entry() {
            let &(at, _) = entry.key();
            if at > self.last_now {
                break;
            }
            let transaction_id = match entry.remove() {
                Timer::Transaction(id) => id,
                Timer::Report(message_id) => {
                    if let Some(expected) = self.reports.remove(&message_id) {
                        let handle = expected.handle;
                        self.ready.push_back(Output::Event(Event::ReportTimedOut { handle }));
                    }
                    continue;
                }
            };
            if let Some(transaction) = self.transactions.remove(&transaction_id) {
                if transaction.partial {
                    continue;
                }
                // RFC 4975 s.7.1.1: "the element MUST inform the user that the
                // request probably failed"; s.10.4: 408.
                self.fail(transaction.handle, 408, "no response within the transaction timeout");
            }
        }
    }

    fn link_down(&mut self) {
        self.link_up = false;
        self.bound = false;
        self.heard = false;
        self.chunk = None;
        self.control.clear();
        // Transactions die with the link; the wait for REPORTs keeps its
        // deadline (a REPORT may still come on another link).
        self.timers.retain(|_, timer| matches!(timer, Timer::Report(_)));
        self.transactions.clear();
        self.framer = None;
        if let Inbound::Chunk { chunk, .. } = std::mem::replace(&mut self.inbound, Inbound::None) {
            // RFC 4975 s.7.3.1: a chunk cut off by the lost link keeps what arrived.
            let _ = self.reassembler.end_chunk(chunk, Flag::Continue, &mut self.deliveries);
            self.deliver(None);
        }
        let lost: Vec<MessageHandle> = self.outgoing.drain(..).map(|m| m.handle).collect();
        self.reports.retain(|_, expected| !lost.contains(&expected.handle));
        let reports = &self.reports;
        self.timers.retain(|_, timer| matches!(timer, Timer::Report(id) if reports.contains_key(id)));
        for handle in lost {
            self.ready.push_back(Output::Event(Event::SendFailed { handle, status: 0, reason: "the link was lost" }));
        }
    }

    // ----- receiving -------------------------------------------------------

    fn frame(&mut self, event: FramerEvent) {
        match event {
            FramerEvent::Head(head) => self.head(head),
            FramerEvent::Body(piece) => {
                if let Inbound::Chunk { chunk, head } = &self.inbound {
                    let chunk = *chunk;
                    let result = self.reassembler.chunk_data(chunk, piece, &mut self.deliveries);
                    // The head travels with a message's first delivery only.
                    let head = self.starts_message().then(|| head.clone());
                    self.deliver(head.as_ref());
                    if let Err(error) = result {
                        self.reassembly_failed(error.status_code());
                    }
                }
            }
            FramerEvent::End(flag) => self.end(flag),
            FramerEvent::Rejected { transaction_id, is_request, is_report, error } => {
                self.ready.push_back(Output::Event(Event::PeerError { error }));
                // RFC 4975 s.7.1.2: "MSRP nodes MUST NOT send MSRP responses to REPORT requests."
                if is_request && !is_report {
                    self.heard = true;
                    // RFC 4975 s.10.2: 400 "the request was unintelligible".
                    let to = self.config.remote_path.clone();
                    self.respond_to(transaction_id, to, 400, "Bad Request");
                }
            }
        }
    }

    fn head(&mut self, head: FrameHead) {
        let Some(method) = head.method() else {
            self.response(&head);
            self.inbound = Inbound::Ignore { head: None };
            return;
        };
        self.heard = true;
        // RFC 4975 s.7.3: "the To-Path will have exactly one URI, which MUST
        // map to an existing session [...] If this is not true, then the
        // receiver MUST generate a 481 error and ignore the request."
        let ours = {
            let mut to_path = head.to_path_uris();
            matches!((to_path.next(), to_path.next()), (Some(uri), None) if uri == self.config.local_uri)
        };
        if !ours {
            // s.7.1.2: "MSRP nodes MUST NOT send MSRP responses to REPORT requests."
            if method != Method::Report {
                self.error_response(&head, 481, "No Such Session");
            }
            self.inbound = Inbound::Ignore { head: None };
            return;
        }
        // Only a request for this session binds it (s.5.4): one refused
        // above leaves a passive session free to bind elsewhere.
        if !self.bound {
            self.bound = true;
            self.ready.push_back(Output::Event(Event::Bound));
        }
        match method {
            Method::Send => self.send_head(head),
            Method::Report => {
                self.report(&head);
                self.inbound = Inbound::Ignore { head: None };
            }
            Method::Auth | Method::Other => {
                // RFC 4975 s.10.9: 501 "the recipient does not understand the request method".
                self.error_response(&head, 501, "Not Implemented");
                self.inbound = Inbound::Ignore { head: None };
            }
        }
    }

    fn send_head(&mut self, head: FrameHead) {
        let Some(message_id) = head.message_id() else {
            if head.has_body() {
                // RFC 4975 s.7.1.1: "Each chunk of a message MUST contain a
                // Message-ID header field".
                self.error_response(&head, 400, "Bad Request: no Message-ID");
                self.inbound = Inbound::Ignore { head: None };
            } else {
                // A bodiless SEND (binding or keep-alive) carries no message.
                self.inbound = Inbound::Ignore { head: Some(head) };
            }
            return;
        };
        if !head.has_body() {
            self.inbound = Inbound::Ignore { head: Some(head) };
            return;
        }
        if !self.accepts(head.media_type().unwrap_or_default()) {
            // RFC 4975 s.7.3.1: "If the SEND request contained a Content-Type
            // header field indicating an unsupported media-type, and the
            // Failure-Report value is not "no", the receiver MUST generate a
            // response with a status code of 415."
            self.error_response(&head, 415, "Unsupported Media Type");
            self.inbound = Inbound::Ignore { head: None };
            return;
        }
        match self.reassembler.begin_chunk(&message_id, head.byte_range(), head.content_type()) {
            Ok(chunk) => self.inbound = Inbound::Chunk { chunk, head },
            Err(error) => {
                let status = error.status_code();
                self.error_response(&head, status, status_comment(status));
                self.reassembler.discard(&message_id);
                self.stream_discarded(&message_id, status);
                self.inbound = Inbound::Ignore { head: None };
            }
        }
    }

    fn accepts(&self, media_type: &str) -> bool {
        let types = &self.config.accept_types;
        if types.is_empty() {
            return true;
        }
        let major = media_type.split('/').next().unwrap_or_default();
        types.iter().any(|t| {
            t == "*"
                || t.eq_ignore_ascii_case(media_type)
                || t.strip_suffix("/*").is_some_and(|m| m.eq_ignore_ascii_case(major))
        })
    }

    fn end(&mut self, flag: Flag) {
        match std::mem::replace(&mut self.inbound, Inbound::None) {
            Inbound::None => {}
            Inbound::Ignore { head: Some(head) } => self.ok_response(&head),
            Inbound::Ignore { head: None } => {}
            Inbound::Chunk { chunk, head } => {
                let message_id = head.message_id();
                match self.reassembler.end_chunk(chunk, flag, &mut self.deliveries) {
                    Ok(()) => self.ok_response(&head),
                    Err(error) => {
                        let status = error.status_code();
                        self.error_response(&head, status, status_comment(status));
                        if let Some(id) = &message_id {
                            self.reassembler.discard(id);
                            self.stream_discarded(id, status);
                        }
                    }
                }
                let completed = self.deliver(Some(&head));
                // RFC 4975 s.7.1.3: with Success-Report "yes" the receiver "MUST
                // send a success report or reports covering all bytes that are
                // received successfully"; one REPORT once the message is whole.
                if head.success_report() == Some(true) && self.config.success_reports {
                    for (id, total) in completed {
                        if Some(&id) == message_id.as_ref() {
                            self.success_report(&head, total);
                        }
                    }
                }
            }
        }
    }

    /// Whether the pending deliveries start a message (streaming mode).
    fn starts_message(&self) -> bool {
        self.config.reassembly.mode == DeliveryMode::Streaming
            && self.deliveries.iter().any(|d| matches!(d, Delivery::Data { offset: 0, .. } | Delivery::Complete { .. }))
    }

    /// A started stream was refused part way: tell the user it ends here.
    fn stream_discarded(&mut self, message_id: &MessageId, status: u16) {
        if let Some(pos) = self.streams.iter().position(|id| id == message_id) {
            let message_id = self.streams.swap_remove(pos);
            self.ready.push_back(Output::Event(Event::MessageDiscarded { message_id, status }));
        }
    }

    /// Streaming mode: announces a message before its first delivery.
    fn start_stream(&mut self, id: &MessageId, head: Option<&FrameHead>) {
        if self.config.reassembly.mode != DeliveryMode::Streaming || self.streams.contains(id) {
            return;
        }
        self.streams.push(id.clone());
        self.ready.push_back(Output::Event(Event::MessageStarted {
            message_id: id.clone(),
            content_type: head.and_then(FrameHead::content_type).map(str::to_owned),
            total: head.and_then(FrameHead::byte_range).and_then(|r| r.total),
            success_report: head.and_then(FrameHead::success_report).unwrap_or(false),
            failure_report: head.and_then(FrameHead::failure_report).unwrap_or(FailureReport::Yes),
        }));
    }

    /// Turns reassembler deliveries into events; returns the messages
    /// completed. `head` is the current chunk's, for [`Event::MessageStarted`].
    fn deliver(&mut self, head: Option<&FrameHead>) -> Vec<(MessageId, u64)> {
        let mut completed = Vec::new();
        let mut deliveries = std::mem::take(&mut self.deliveries);
        for delivery in deliveries.drain(..) {
            match &delivery {
                Delivery::Data { id, offset: 0, .. } | Delivery::Complete { id, .. } => self.start_stream(id, head),
                _ => {}
            }
            if let Delivery::Complete { id, .. } | Delivery::Aborted { id, .. } = &delivery {
                self.streams.retain(|known| known != id);
            }
            let event = match delivery {
                Delivery::Data { id, offset, data } => Event::ChunkReceived { message_id: id, offset, data },
                Delivery::Conflict { id, offset, len } => Event::ChunkConflict { message_id: id, offset, len },
                Delivery::Complete { id, content_type, body, total } => {
                    completed.push((id.clone(), total));
                    let body = if self.config.reassembly.mode == DeliveryMode::Streaming { Bytes::new() } else { body };
                    let parts = match content_type.as_deref() {
                        Some(ct) if crate::mime::is_multipart(ct) && !body.is_empty() => {
                            crate::mime::parts(ct, &body).unwrap_or_default()
                        }
                        _ => Vec::new(),
                    };
                    Event::MessageReceived { message_id: id, content_type, body, total, parts }
                }
                Delivery::Aborted { id, .. } => Event::MessageAborted { message_id: id },
            };
            self.ready.push_back(Output::Event(event));
        }
        // Keep the vector's capacity for the next deliveries.
        self.deliveries = deliveries;
        completed
    }

    fn reassembly_failed(&mut self, status: u16) {
        if let Inbound::Chunk { head, .. } = std::mem::replace(&mut self.inbound, Inbound::None) {
            self.error_response(&head, status, status_comment(status));
            if let Some(id) = head.message_id() {
                self.reassembler.discard(&id);
                self.stream_discarded(&id, status);
            }
        }
        self.inbound = Inbound::Ignore { head: None };
    }

    fn report(&mut self, head: &FrameHead) {
        // RFC 4975 s.7.1.2: "MSRP nodes MUST NOT send MSRP responses to REPORT
        // requests"; a REPORT without Message-ID or Status is dropped.
        let (Some(message_id), Some(status)) = (head.message_id(), head.status()) else {
            self.ready.push_back(Output::Event(Event::PeerError { error: ParseError::Status { at: head.offset() } }));
            return;
        };
        if status.namespace != 0 {
            return;
        }
        let handle = self
            .reports
            .get(&message_id)
            .map(|expected| expected.handle)
            .or_else(|| self.outgoing.iter().find(|m| m.message_id == message_id).map(|m| m.handle));
        let byte_range = head.byte_range();
        self.ready.push_back(Output::Event(Event::ReportReceived {
            handle,
            message_id: message_id.clone(),
            status: status.code,
            byte_range,
        }));
        let Some(handle) = handle else { return };
        if status.code != 200 {
            // RFC 4975 s.7.3.2: a failure REPORT for a chunk being delivered
            // aborts the message with "#".
            self.reports.remove(&message_id);
            self.fail(handle, status.code, "failure REPORT");
            return;
        }
        let Some(expected) = self.reports.get_mut(&message_id) else { return };
        // RFC 4975 s.7.1.3: a success REPORT covers the range it names ("the
        // sending client cannot depend on the Byte-Range header field in a
        // given success report matching that of a particular SEND request").
        // One without a Byte-Range is taken to cover the whole message.
        let (start, end) = match byte_range {
            Some(range) => (range.start, range.end.or(range.total).or(expected.total).unwrap_or(u64::MAX)),
            None => (1, u64::MAX),
        };
        expected.coverage.add(start, end);
        self.delivered_if_covered(&message_id);
    }

    fn response(&mut self, head: &FrameHead) {
        let status = head.status_code().unwrap_or_default();
        if self.binding_transaction.as_ref() == Some(&head.transaction_id()) {
            self.binding_transaction = None;
            return;
        }
        if let Some(chunk) = self.chunk.as_ref().filter(|c| c.transaction_id == head.transaction_id()) {
            // A response to the chunk still being written. RFC 4975 s.10.5:
            // "If the sender receives the 413 while in the process of sending
            // a chunk, and the chunk is interruptible, the sender MUST
            // interrupt it." Any error stops the message the same way; an
            // early 200 is taken as stray, as before.
            if status != 200 {
                let handle = chunk.handle;
                self.ready.push_back(Output::Event(Event::ResponseReceived { handle, status }));
                self.fail(handle, status, "error response");
                return;
            }
        }
        let Some(transaction) = self.transactions.remove(&head.transaction_id()) else {
            // RFC 4975 s.7.2 leaves stray responses to the receiver: ignored, counted.
            self.stray_responses += 1;
            return;
        };
        if let Some(key) = transaction.timer {
            self.timers.remove(&key);
        }
        let handle = transaction.handle;
        self.ready.push_back(Output::Event(Event::ResponseReceived { handle, status }));
        if status == 200 {
            if let Some(message) = self.message_mut(handle) {
                message.awaiting = message.awaiting.saturating_sub(1);
            }
            self.finish_if_done(handle);
        } else {
            // RFC 4975 s.10.5 (413): the sender "MUST NOT send further chunks
            // of that message"; s.7.3.2: abort the chunk in progress with "#".
            self.fail(handle, status, "error response");
        }
    }

    // ----- responses and reports ------------------------------------------

    fn ok_response(&mut self, head: &FrameHead) {
        // RFC 4975 s.7.1.4: "partial" MUST NOT get a 200; "no" gets nothing.
        if head.failure_report().unwrap_or(FailureReport::Yes) == FailureReport::Yes {
            self.respond(head, 200, "OK");
        }
    }

    fn error_response(&mut self, head: &FrameHead, status: u16, comment: &str) {
        if head.failure_report() != Some(FailureReport::No) {
            self.respond(head, status, comment);
        }
    }

    fn respond(&mut self, head: &FrameHead, status: u16, comment: &str) {
        // RFC 4975 s.7.2: the response's To-Path is the request's From-Path
        // (its first URI when directly connected), From-Path our URI.
        let to_path: Vec<MsrpUri> = head.from_path_uris().take(1).collect();
        let to_path = if to_path.is_empty() { self.config.remote_path.clone() } else { to_path };
        self.respond_to(head.transaction_id(), to_path, status, comment);
    }

    fn respond_to(&mut self, transaction_id: TransactionId, to_path: Vec<MsrpUri>, status: u16, comment: &str) {
        // The answer may wait for the link (up to `max_owed_frames` per
        // link, `EndpointConfig`): it keeps a copy of the request's id, not
        // a slice that would keep the request's whole read alive.
        let transaction_id = transaction_id.detached();
        let frame = Frame::response(
            transaction_id.clone(),
            status,
            Some(comment),
            to_path,
            vec![self.config.local_uri.clone()],
        );
        let head = self.encoder.head(&frame, &transaction_id);
        let end_line = self.encoder.end_line(&transaction_id, Flag::End, false);
        self.control.push_back(Transmit { transaction_id, head, body: Bytes::new(), end_line });
    }

    /// A REPORT toward the peer (its path), not answered (RFC 4975 s.7.1.2).
    fn send_report(&mut self, message_id: &MessageId, status: u16, byte_range: Option<ByteRange>) {
        let mut frame = Frame::bodiless("REPORT", self.config.remote_path.clone(), vec![self.config.local_uri.clone()])
            .with_message_id(message_id);
        if let Some(range) = byte_range {
            frame = frame.with_byte_range(range);
        }
        let status = format!("000 {status:03} {}", status_comment(status));
        let frame = frame.with_header("Status", &status);
        let transaction_id = TransactionId::generate(self.ids.as_mut());
        let head = self.encoder.head(&frame, &transaction_id);
        let end_line = self.encoder.end_line(&transaction_id, Flag::End, false);
        self.control.push_back(Transmit { transaction_id, head, body: Bytes::new(), end_line });
    }

    fn success_report(&mut self, head: &FrameHead, total: u64) {
        let Some(message_id) = head.message_id() else { return };
        // RFC 4975 s.7.1.3: To-Path from the request's From-Path, Status
        // "000 200", Message-ID of the original, a Byte-Range of what arrived.
        let to_path: Vec<MsrpUri> = head.from_path_uris().collect();
        let frame = Frame::bodiless("REPORT", to_path, vec![self.config.local_uri.clone()])
            .with_message_id(&message_id)
            .with_byte_range(ByteRange { start: 1, end: Some(total), total: Some(total) })
            .with_header("Status", "000 200 OK");
        let transaction_id = TransactionId::generate(self.ids.as_mut());
        let head = self.encoder.head(&frame, &transaction_id);
        let end_line = self.encoder.end_line(&transaction_id, Flag::End, false);
        self.control.push_back(Transmit { transaction_id, head, body: Bytes::new(), end_line });
    }
}

/// The response refusing a request that no session takes (a [`crate::router::Route::Reject`]):
/// To-Path the request's first From-Path URI, From-Path the URI it was sent to.
/// `None` when the request asked for no failure response (RFC 4975 s.7.1.4:
/// `Failure-Report: no`) or is not a request, or a REPORT (s.7.1.2: never answered).
#[must_use]
pub fn refusal(head: &FrameHead, status: u16) -> Option<Transmit> {
    if !head.is_request() || head.method() == Some(Method::Report) || head.failure_report() == Some(FailureReport::No) {
        return None;
    }
    let to_path: Vec<MsrpUri> = head.from_path_uris().take(1).collect();
    let from_path: Vec<MsrpUri> = head.to_path_uris().take(1).collect();
    // A copy: the refusal may wait for the link, and a slice would keep the
    // request's whole read alive.
    let transaction_id = head.transaction_id().detached();
    let frame = Frame::response(transaction_id.clone(), status, Some(status_comment(status)), to_path, from_path);
    let mut encoder = Encoder::new();
    let head = encoder.head(&frame, &transaction_id);
    let end_line = encoder.end_line(&transaction_id, Flag::End, false);
    Some(Transmit { transaction_id, head, body: Bytes::new(), end_line })
}

fn status_comment(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        413 => "Message Too Large",
        415 => "Unsupported Media Type",
        423 => "Interval Out Of Bounds",
        481 => "No Such Session",
        501 => "Not Implemented",
        506 => "Wrong Connection",
        _ => "Error",
    }
}

/// Where `"-------" transaction-id` starts in `body`, if anywhere.
fn dashed_id_in(body: &[u8], transaction_id: &TransactionId) -> Option<usize> {
    let (needle, n) = crate::wire::dashed_id(transaction_id);
    memchr::memmem::find(body, &needle[2..n])
}
