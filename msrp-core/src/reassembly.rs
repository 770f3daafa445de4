//! Receiver-side reassembly of chunked messages (RFC 4975 s.5.1, s.7.1.1,
//! s.7.3.1).
//!
//! One [`Reassembler`] serves one MSRP session. The session feeds it what the
//! framer produced for each SEND: [`Reassembler::begin_chunk`] for the head,
//! [`Reassembler::chunk_data`] for every body piece and
//! [`Reassembler::end_chunk`] for the end-line. It answers with
//! [`Delivery`] values and, for a chunk the session must refuse, a
//! [`ReassemblyError`] that knows its response code.
//!
//! # Decisions where the RFC leaves room
//!
//! - **Positions.** Byte-Range counts from 1; deliveries count from 0. A
//!   missing Byte-Range means `1-*/*`: with `$` the chunk is the whole
//!   message (s.7.3.1), with `+` it is a first chunk that omitted the header
//!   (s.7.1.1 makes it only a SHOULD there).
//! - **Actual length governs.** A chunk covers the bytes that came, from its
//!   range-start; a body shorter than its range-end is accepted (s.7.3.1).
//!   Data past an explicit range-end or past a known total is a
//!   [`ReassemblyError::BadRange`].
//! - **Completion.** The chunk ended with `$` fixes the message's length at
//!   its actual end, even below a declared total (s.7.3.1 "the chunk that has
//!   a termination character of "$" defines the total length"; RFC 4975's own
//!   s.11.4 example sends 10 bytes for `138-148/148`). The message completes
//!   when a chunk ends (`$` or `+`) and every byte before that length has
//!   arrived; a declared total alone never completes it. Holes keep it
//!   incomplete until more chunks fill them or the session discards it.
//! - **Overlaps.** Buffered mode: the chunk received last wins, in the body
//!   and among held out-of-order data alike (s.7.3.1). Streaming mode:
//!   delivered bytes stay delivered; a rewrite that is known to differ raises
//!   [`Delivery::Conflict`]. The last 64 KiB delivered are compared exactly;
//!   older bytes through one 64-bit fingerprint per aligned KiB, so a change
//!   confined to a KiB the rewrite covers only in part, older than that
//!   window, goes unreported.
//! - **Failures end the message.** Every error about a message frees what it
//!   held; chunks still open for it are ignored from then on. The id is
//!   remembered (with the last 64 finished ids), so later chunks of it get
//!   [`ReassemblyError::Discarded`] (413, s.10.5). Later chunks of a message
//!   that completed or was aborted are duplicates (s.7.3.1): accepted and
//!   ignored.
//! - **Codes.** Size and resource limits answer 413, the only code whose
//!   meaning (s.10.5: "the receiver wishes the sender to stop sending the
//!   particular message") fits; inconsistent ranges answer 400 (s.10.2).
//!
//! ```
//! use bytes::Bytes;
//! use msrp_core::reassembly::{Delivery, ReassemblyConfig, Reassembler};
//! use msrp_core::{ByteRange, Flag, MessageId};
//!
//! let mut reassembler = Reassembler::new(ReassemblyConfig::default());
//! let id = MessageId::from_text("4564dpWd").unwrap();
//! let mut out = Vec::new();
//! // RFC 4975 s.5.1, Figure 3, second chunk first.
//! let range = ByteRange { start: 5, end: Some(8), total: Some(8) };
//! let chunk = reassembler.begin_chunk(&id, Some(range), Some("text/plain")).unwrap();
//! reassembler.chunk_data(chunk, Bytes::from_static(b"EFGH"), &mut out).unwrap();
//! reassembler.end_chunk(chunk, Flag::End, &mut out).unwrap();
//! assert_eq!(reassembler.held_bytes(), 4);
//! let range = ByteRange { start: 1, end: None, total: Some(8) };
//! let chunk = reassembler.begin_chunk(&id, Some(range), Some("text/plain")).unwrap();
//! reassembler.chunk_data(chunk, Bytes::from_static(b"abcd"), &mut out).unwrap();
//! reassembler.end_chunk(chunk, Flag::Continue, &mut out).unwrap();
//! assert!(matches!(&out[..], [Delivery::Complete { body, total: 8, .. }] if body == "abcdEFGH"));
//! assert_eq!(reassembler.held_bytes(), 0);
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;

use bytes::{Bytes, BytesMut};

use crate::id::MessageId;
use crate::wire::{ByteRange, Flag};

/// Finished message ids remembered to refuse or ignore late chunks.
const FINISHED_MEMORY: usize = 64;
/// Open chunks kept at most; past it the oldest is dropped as if ended with `+`.
const MAX_OPEN_CHUNKS: usize = 64;
/// Streaming mode: delivered bytes kept (as shared `Bytes`) for exact overlap checks.
const WINDOW: usize = 64 * 1024;
/// Streaming mode: delivered bytes per fingerprint.
const BLOCK: u64 = 1024;
/// Buffered mode: growth beyond what arrived, never past a known total.
const SLACK: usize = 64 * 1024;
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// How a [`Reassembler`] hands message content to the application.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum DeliveryMode {
    /// Collect the message and deliver it whole in [`Delivery::Complete`].
    #[default]
    Buffered,
    /// Deliver bytes as soon as they are in order ([`Delivery::Data`]); hold
    /// only out-of-order data.
    Streaming,
}

/// Limits and mode of a [`Reassembler`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ReassemblyConfig {
    /// Buffered or streaming delivery.
    pub mode: DeliveryMode,
    /// Largest message accepted, in bytes (default 16 MiB).
    pub max_message_size: u64,
    /// Messages in progress at once (default 16).
    pub max_incomplete: usize,
    /// Bytes held across all incomplete messages of the session (default
    /// 32 MiB): the bodies being collected in buffered mode, the out-of-order
    /// data in both modes.
    pub max_held_bytes: usize,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        Self {
            mode: DeliveryMode::Buffered,
            max_message_size: 16 * 1024 * 1024,
            max_incomplete: 16,
            max_held_bytes: 32 * 1024 * 1024,
        }
    }
}

/// Names one chunk (one SEND) between [`Reassembler::begin_chunk`] and
/// [`Reassembler::end_chunk`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId(u64);

impl ChunkId {
    /// The raw number, unique within its reassembler.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chunk#{}", self.0)
    }
}

/// What a [`Reassembler`] hands to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// Streaming mode: bytes `[offset, offset + data.len())` of the message
    /// (offset counted from 0), in order, never delivered twice. `data` is the
    /// framer's `Bytes` (or a slice of it), not a copy.
    Data {
        /// The message.
        id: MessageId,
        /// Position of `data`'s first byte in the message, from 0.
        offset: u64,
        /// The bytes.
        data: Bytes,
    },
    /// Streaming mode: a chunk rewrote bytes already delivered with different
    /// content (s.7.3.1 overlap); the old bytes stay delivered. The span runs
    /// from the first to the last byte of one piece known to differ.
    Conflict {
        /// The message.
        id: MessageId,
        /// First byte of the span, from 0.
        offset: u64,
        /// Length of the span.
        len: u64,
    },
    /// The whole message: buffered mode gives the body; streaming mode gives
    /// an empty body (already delivered) and the total.
    Complete {
        /// The message.
        id: MessageId,
        /// The Content-Type of the first chunk that carried one.
        content_type: Option<String>,
        /// The body (buffered mode), empty in streaming mode.
        body: Bytes,
        /// The message's length in bytes.
        total: u64,
    },
    /// The sender aborted the message with `#` (s.7.1); all it held is freed.
    Aborted {
        /// The message.
        id: MessageId,
        /// Distinct bytes of the message received before the abort.
        received: u64,
    },
}

/// Why a chunk cannot be taken. Every variant but
/// [`ReassemblyError::UnknownChunk`] is the peer's doing and ends the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReassemblyError {
    /// A declared total, a range-end, or the data itself goes past
    /// [`ReassemblyConfig::max_message_size`].
    #[error("message size {size} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The size declared or reached.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A chunk of a new message arrived while
    /// [`ReassemblyConfig::max_incomplete`] messages are in progress.
    #[error("more than {limit} messages in progress")]
    TooManyIncomplete {
        /// The configured limit.
        limit: usize,
    },
    /// Holding the data would pass [`ReassemblyConfig::max_held_bytes`].
    #[error("holding the data would exceed {limit} bytes")]
    HeldBytesExceeded {
        /// The configured limit.
        limit: usize,
    },
    /// The Byte-Range values contradict each other or the data.
    #[error("bad Byte-Range: {reason}")]
    BadRange {
        /// What was wrong.
        reason: &'static str,
    },
    /// A chunk of a message discarded or refused earlier.
    #[error("the message was discarded")]
    Discarded,
    /// Local mistake: the chunk id was never issued by this reassembler.
    #[error("unknown chunk")]
    UnknownChunk,
}

impl ReassemblyError {
    /// The status code of the response the session sends for the chunk.
    ///
    /// [`ReassemblyError::UnknownChunk`] is no peer's fault; it maps to 400 so
    /// that the transaction still gets an answer.
    #[must_use]
    pub const fn status_code(&self) -> u16 {
        match self {
            // RFC 4975 s.10.5: "A 413 response indicates that the receiver
            // wishes the sender to stop sending the particular message." MSRP
            // has no resource-exhaustion code, and 413 makes the sender stop
            // this message while leaving the session usable.
            Self::TooLarge { .. }
            | Self::TooManyIncomplete { .. }
            | Self::HeldBytesExceeded { .. }
            | Self::Discarded => 413,
            // RFC 4975 s.10.2: "A 400 response indicates that a request was unintelligible."
            Self::BadRange { .. } | Self::UnknownChunk => 400,
        }
    }

    /// Whether the peer caused the error (all but [`ReassemblyError::UnknownChunk`]).
    #[must_use]
    pub const fn is_peer_fault(&self) -> bool {
        !matches!(self, Self::UnknownChunk)
    }
}

/// Reassembles the chunked messages of one MSRP session.
///
/// The caller MUST feed each SEND with a body as `begin_chunk`, its body
/// pieces in order through `chunk_data`, then `end_chunk`. A chunk cut off by
/// a lost connection SHOULD be ended with [`Flag::Continue`], which keeps what
/// arrived (s.7.3.1); at most 64 chunks stay open, the oldest being dropped
/// that way beyond.
#[derive(Debug)]
pub struct Reassembler {
    config: ReassemblyConfig,
    messages: HashMap<MessageId, Message>,
    chunks: BTreeMap<u64, Chunk>,
    next_chunk: u64,
    /// 0 names no message: chunks with it are ignored.
    next_serial: u64,
    held: usize,
    finished: VecDeque<(MessageId, Finished)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Finished {
    /// Completed or aborted: late chunks are duplicates and ignored.
    Done,
    /// Discarded or failed: late chunks are refused.
    Refused,
}

#[derive(Debug)]
struct Chunk {
    message: MessageId,
    serial: u64,
    /// Position of the chunk's next byte in the message, from 0.
    pos: u64,
    /// Bound from an explicit range-end (1-based inclusive = 0-based exclusive).
    end: Option<u64>,
    /// Streaming mode: fingerprint of this chunk's bytes since the start of
    /// the aligned block it is in, when it covered that block from its start.
    cmp: Option<BlockHash>,
}

#[derive(Debug)]
struct Message {
    id: MessageId,
    serial: u64,
    content_type: Option<String>,
    /// The total declared by a Byte-Range.
    total: Option<u64>,
    /// The length fixed by the chunk ended with `$`.
    end: Option<u64>,
    /// One past the highest byte received.
    high: u64,
    /// Length of the in-order prefix (collected or delivered).
    next: u64,
    /// Out-of-order data past `next`, non-overlapping, by position.
    pending: BTreeMap<u64, Bytes>,
    pending_bytes: usize,
    sink: Sink,
}

#[derive(Debug)]
enum Sink {
    Buffered(Body),
    Streaming(Delivered),
}

#[derive(Debug)]
enum Body {
    Empty,
    /// A single piece so far: delivered as-is if nothing follows.
    One(Bytes),
    Many(BytesMut),
}

/// What streaming mode remembers of the bytes it delivered.
#[derive(Debug)]
struct Delivered {
    /// The fingerprint of each complete aligned block.
    blocks: Vec<u64>,
    /// The fingerprint of the delivered part of the current block.
    partial: BlockHash,
    /// A copy of the last `WINDOW` bytes delivered (at most). A copy, not
    /// the delivered `Bytes`: a 1-byte piece must not keep the whole read
    /// segment it was sliced from alive.
    recent: VecDeque<u8>,
    /// One past the position of the last byte delivered.
    recent_end: u64,
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The fingerprint of one aligned block, fed in any split: FNV-style over
/// the block's little-endian 8-byte words, in four lanes (word `k` goes to
/// lane `k % 4`), so that a relay hashes what it streams at memory speed.
/// Blocks are a multiple of 32 bytes long and aligned, so every word lies
/// inside one block and the lanes line up in every split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BlockHash {
    lanes: [u64; 4],
    /// The bytes of the word being filled, at their little-endian places.
    word: u64,
}

impl BlockHash {
    const fn new() -> Self {
        Self { lanes: [FNV_OFFSET, FNV_OFFSET ^ 1, FNV_OFFSET ^ 2, FNV_OFFSET ^ 3], word: 0 }
    }

    /// Mixes `word`, the one that ends just before position `end`.
    fn mix(&mut self, end: u64, word: u64) {
        let lane = &mut self.lanes[to_usize((end / 8 + 3) % 4)];
        *lane = (*lane ^ word).wrapping_mul(FNV_PRIME);
    }

    /// Feeds `data`, whose first byte is at position `pos` of the message
    /// and which does not cross the end of the block.
    fn feed(&mut self, mut pos: u64, mut data: &[u8]) {
        // The rest of a word a previous piece began.
        while pos % 8 != 0 {
            let Some((&byte, rest)) = data.split_first() else { return };
            self.word |= u64::from(byte) << (8 * (pos % 8));
            pos += 1;
            data = rest;
            if pos % 8 == 0 {
                let word = std::mem::take(&mut self.word);
                self.mix(pos, word);
            }
        }
        // Whole runs of four words, one per lane, while they are aligned.
        while pos % 32 != 0 && data.len() >= 8 {
            let (word, rest) = data.split_at(8);
            pos += 8;
            self.mix(pos, le_word(word));
            data = rest;
        }
        let mut quads = data.chunks_exact(32);
        for quad in &mut quads {
            for (lane, word) in self.lanes.iter_mut().zip(quad.chunks_exact(8)) {
                *lane = (*lane ^ le_word(word)).wrapping_mul(FNV_PRIME);
            }
        }
        pos += to_u64(data.len() - quads.remainder().len());
        let mut words = quads.remainder().chunks_exact(8);
        for word in &mut words {
            pos += 8;
            self.mix(pos, le_word(word));
        }
        for (i, &byte) in words.remainder().iter().enumerate() {
            self.word |= u64::from(byte) << (8 * i);
        }
    }

    /// The fingerprint of a complete block (its last word is mixed).
    fn finish(self) -> u64 {
        self.lanes.iter().fold(FNV_OFFSET, |hash, lane| (hash ^ lane).wrapping_mul(FNV_PRIME))
    }
}

/// Eight bytes as a little-endian word.
fn le_word(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(word)
}

/// Copies an id so a stored id does not pin the frame it was sliced from.
fn owned(id: &MessageId) -> MessageId {
    id.detached()
}

fn widen(span: &mut Option<(u64, u64)>, from: u64, to: u64) {
    *span = Some(span.map_or((from, to), |(a, b)| (a.min(from), b.max(to))));
}

/// Capacity for `need` bytes: room to grow, never past a known total.
fn capacity_for(need: usize, limit: Option<u64>) -> usize {
    let grown = need.saturating_mul(2).max(need.saturating_add(SLACK));
    limit.map_or(grown, |limit| grown.min(to_usize(limit)).max(need))
}

impl Reassembler {
    /// A reassembler with nothing in progress.
    #[must_use]
    pub fn new(config: ReassemblyConfig) -> Self {
        Self {
            config,
            messages: HashMap::new(),
            chunks: BTreeMap::new(),
            next_chunk: 0,
            next_serial: 1,
            held: 0,
            finished: VecDeque::new(),
        }
    }

    /// A SEND's head arrived: start a chunk of message `id` covering `range`
    /// (`None`: no Byte-Range header, the chunk starts the message and, ended
    /// with `$`, is all of it; s.7.3.1).
    ///
    /// # Errors
    /// The response code comes from [`ReassemblyError::status_code`]. No
    /// chunk was begun: the caller skips the rest of this SEND's body. The
    /// message is forgotten and later chunks of it are refused.
    pub fn begin_chunk(
        &mut self,
        id: &MessageId,
        range: Option<ByteRange>,
        content_type: Option<&str>,
    ) -> Result<ChunkId, ReassemblyError> {
        // RFC 4975 s.7.3.1: "If the request contains no Byte-Range header
        // field, or contains one with a range-start value of "1", and the
        // closing line continuation flag has a value of "$", then the request
        // contained the entire message."
        let range = range.unwrap_or(ByteRange { start: 1, end: None, total: None });
        match self.finished.iter().find(|(known, _)| known == id).map(|(_, how)| *how) {
            Some(Finished::Refused) => return Err(ReassemblyError::Discarded),
            // RFC 4975 s.7.3.1: "In certain cases of connection failure, it
            // is possible for information to be duplicated."
            Some(Finished::Done) => return Ok(self.open_chunk(owned(id), 0, 0, None)),
            None => {}
        }
        if let Err(error) = self.check_range(id, &range) {
            self.fail(id);
            return Err(error);
        }
        let offset = range.start.saturating_sub(1);
        let (key, serial) = if let Some(message) = self.messages.get_mut(id) {
            message.total = message.total.or(range.total);
            if message.content_type.is_none() {
                message.content_type = content_type.map(str::to_owned);
            }
            (message.id.clone(), message.serial)
        } else {
            let serial = self.next_serial;
            self.next_serial += 1;
            let key = owned(id);
            let message = Message::new(key.clone(), serial, self.config.mode, content_type, range.total);
            self.messages.insert(key.clone(), message);
            (key, serial)
        };
        Ok(self.open_chunk(key, serial, offset, range.end))
    }

    /// The next body piece of `chunk`, as the framer produced it. In streaming
    /// mode, data now in order is pushed to `out` as [`Delivery::Data`].
    ///
    /// A piece for a chunk whose message has since finished or failed is
    /// ignored, as is one for a chunk already ended.
    ///
    /// # Errors
    /// [`ReassemblyError::UnknownChunk`] for an id this reassembler never
    /// issued. Any other error ends the message (see the module docs); later
    /// pieces of this chunk are ignored.
    pub fn chunk_data(&mut self, chunk: ChunkId, piece: Bytes, out: &mut Vec<Delivery>) -> Result<(), ReassemblyError> {
        let Some(state) = self.chunks.get_mut(&chunk.0) else {
            return self.ended_chunk(chunk);
        };
        if piece.is_empty() {
            return Ok(());
        }
        let Some(message) = self.messages.get_mut(&state.message).filter(|m| m.serial == state.serial) else {
            return Ok(());
        };
        let others = self.held.saturating_sub(message.held());
        let result = message.write(state, &piece, &self.config, others, out);
        self.held = others + message.held();
        if let Err(error) = result {
            let id = state.message.clone();
            self.fail(&id);
            return Err(error);
        }
        Ok(())
    }

    /// `chunk` ended with `flag`. Pushes [`Delivery::Complete`] when the
    /// message is now whole, [`Delivery::Aborted`] for `#`.
    ///
    /// # Errors
    /// [`ReassemblyError::UnknownChunk`] for an id this reassembler never
    /// issued (an id already ended is ignored).
    /// [`ReassemblyError::BadRange`] when a `$` contradicts data received;
    /// the message is then forgotten.
    pub fn end_chunk(&mut self, chunk: ChunkId, flag: Flag, out: &mut Vec<Delivery>) -> Result<(), ReassemblyError> {
        let Some(state) = self.chunks.remove(&chunk.0) else {
            return self.ended_chunk(chunk);
        };
        let Some(message) = self.messages.get_mut(&state.message).filter(|m| m.serial == state.serial) else {
            return Ok(());
        };
        match flag {
            Flag::Abort => {
                // RFC 4975 s.7.1: "If the sender is aborting an incomplete
                // message, and intends to send no further chunks in that
                // message, the flag MUST be a "#"."
                let received = message.received();
                self.finish(&state.message, Finished::Done);
                out.push(Delivery::Aborted { id: state.message, received });
                return Ok(());
            }
            Flag::End => {
                // RFC 4975 s.7.3.1: "It is worth noting that the chunk that has
                // a termination character of "$" defines the total length of
                // the message." Its actual end counts, not its range-end.
                let end = state.pos;
                let reason = if end < message.high {
                    Some("data was received past the end of the chunk flagged $")
                } else if message.end.is_some_and(|known| known != end) {
                    Some("two chunks flagged $ end the message at different bytes")
                } else {
                    None
                };
                if let Some(reason) = reason {
                    self.fail(&state.message);
                    return Err(ReassemblyError::BadRange { reason });
                }
                message.end = Some(end);
            }
            Flag::Continue => {}
        }
        if message.end != Some(message.next) {
            // The message waits for more chunks: a body of one piece stops
            // being a slice of the segment it came in.
            if let Sink::Buffered(Body::One(piece)) = &mut message.sink {
                *piece = Bytes::copy_from_slice(piece);
            }
        }
        if message.end == Some(message.next) {
            if let Some(message) = self.finish(&state.message, Finished::Done) {
                let body = match message.sink {
                    Sink::Buffered(body) => body.freeze(),
                    Sink::Streaming(_) => Bytes::new(),
                };
                out.push(Delivery::Complete {
                    id: message.id,
                    content_type: message.content_type,
                    body,
                    total: message.next,
                });
            }
        }
        Ok(())
    }

    /// Forgets message `id` (after the session answered 413, or the user
    /// aborted it) and frees what it held. Later chunks of it are refused with
    /// [`ReassemblyError::Discarded`] while the id is remembered.
    pub fn discard(&mut self, id: &MessageId) {
        self.fail(id);
    }

    /// Bytes held now, bounded by [`ReassemblyConfig::max_held_bytes`]:
    /// bodies being collected (buffered mode) and out-of-order data (both
    /// modes). Counted as data, not capacity; what is held is owned (copied
    /// out of the read segments once its chunk ends, or at once for
    /// out-of-order data), so no small piece keeps a large segment alive
    /// behind this count.
    ///
    /// Not counted here: [`Reassembler::window_bytes`], and 8 bytes per KiB
    /// delivered per streamed message in progress (the overlap check's
    /// fingerprints).
    #[must_use]
    pub const fn held_bytes(&self) -> usize {
        self.held
    }

    /// Streaming mode: the copies of the last bytes delivered that the
    /// overlap check compares rewrites with, at most 64 KiB per message in
    /// progress (so at most 64 KiB times
    /// [`ReassemblyConfig::max_incomplete`]).
    #[must_use]
    pub fn window_bytes(&self) -> usize {
        self.messages
            .values()
            .map(|m| match &m.sink {
                Sink::Streaming(delivered) => delivered.recent.len(),
                Sink::Buffered(_) => 0,
            })
            .sum()
    }

    /// Messages in progress.
    #[must_use]
    pub fn incomplete(&self) -> usize {
        self.messages.len()
    }

    /// Entries kept: messages, open chunks, remembered ids and held pieces
    /// (a heap bound allows each a fixed overhead).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn entries(&self) -> usize {
        let pieces: usize = self.messages.values().map(|m| m.pending.len()).sum();
        self.messages.len() + self.chunks.len() + self.finished.len() + pieces
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &ReassemblyConfig {
        &self.config
    }

    fn ended_chunk(&self, chunk: ChunkId) -> Result<(), ReassemblyError> {
        if chunk.0 < self.next_chunk {
            Ok(())
        } else {
            Err(ReassemblyError::UnknownChunk)
        }
    }

    fn open_chunk(&mut self, message: MessageId, serial: u64, pos: u64, end: Option<u64>) -> ChunkId {
        while self.chunks.len() >= MAX_OPEN_CHUNKS {
            // A caller that lost a connection may never end its chunk; what
            // the chunk delivered stays, as if it had ended with `+`.
            self.chunks.pop_first();
        }
        let id = self.next_chunk;
        self.next_chunk += 1;
        self.chunks.insert(id, Chunk { message, serial, pos, end, cmp: None });
        ChunkId(id)
    }

    fn check_range(&self, id: &MessageId, range: &ByteRange) -> Result<(), ReassemblyError> {
        let bad = |reason| Err(ReassemblyError::BadRange { reason });
        // RFC 4975 s.7.1.1: "The first octet in the message has a position of one, rather than a zero."
        let Some(offset) = range.start.checked_sub(1) else {
            return bad("range-start is 0");
        };
        let limit = self.config.max_message_size;
        // RFC 4975 s.10.5: 413 "indicates that the receiver wishes the sender
        // to stop sending the particular message."
        for size in [range.total, range.end, Some(offset)].into_iter().flatten() {
            if size > limit {
                return Err(ReassemblyError::TooLarge { size, limit });
            }
        }
        if range.end.is_some_and(|end| end < offset) {
            return bad("range-end is before range-start");
        }
        if let (Some(end), Some(total)) = (range.end, range.total) {
            if end > total {
                return bad("range-end is past the total");
            }
        }
        let Some(message) = self.messages.get(id) else {
            if self.messages.len() >= self.config.max_incomplete {
                return Err(ReassemblyError::TooManyIncomplete { limit: self.config.max_incomplete });
            }
            return Ok(());
        };
        if let (Some(known), Some(total)) = (message.total, range.total) {
            if known != total {
                return bad("the total changed between chunks");
            }
        }
        if let Some(total) = range.total {
            if total < message.high || message.end.is_some_and(|end| total < end) {
                return bad("the total is smaller than the data received");
            }
        }
        if let (Some(total), Some(end)) = (message.total, range.end) {
            if end > total {
                return bad("range-end is past the total");
            }
        }
        Ok(())
    }

    /// Removes the message (if any) and its open chunks, remembering the id.
    fn finish(&mut self, id: &MessageId, how: Finished) -> Option<Message> {
        let message = self.messages.remove(id);
        if let Some(message) = &message {
            self.held = self.held.saturating_sub(message.held());
            let serial = message.serial;
            self.chunks.retain(|_, chunk| chunk.serial != serial);
        }
        self.finished.retain(|(known, _)| known != id);
        let key = message.as_ref().map_or_else(|| owned(id), |m| m.id.clone());
        self.finished.push_back((key, how));
        if self.finished.len() > FINISHED_MEMORY {
            self.finished.pop_front();
        }
        message
    }

    fn fail(&mut self, id: &MessageId) {
        self.finish(id, Finished::Refused);
    }
}

impl Message {
    fn new(id: MessageId, serial: u64, mode: DeliveryMode, content_type: Option<&str>, total: Option<u64>) -> Self {
        let sink = match mode {
            DeliveryMode::Buffered => Sink::Buffered(Body::Empty),
            DeliveryMode::Streaming => Sink::Streaming(Delivered {
                blocks: Vec::new(),
                partial: BlockHash::new(),
                recent: VecDeque::new(),
                recent_end: 0,
            }),
        };
        Self {
            id,
            serial,
            content_type: content_type.map(str::to_owned),
            total,
            end: None,
            high: 0,
            next: 0,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            sink,
        }
    }

    fn held(&self) -> usize {
        match &self.sink {
            Sink::Buffered(body) => self.pending_bytes + body.len(),
            Sink::Streaming(_) => self.pending_bytes,
        }
    }

    fn received(&self) -> u64 {
        self.next.saturating_add(to_u64(self.pending_bytes))
    }

    /// The length known so far: fixed by `$`, else declared.
    fn limit(&self) -> Option<u64> {
        self.end.or(self.total)
    }

    fn write(
        &mut self,
        chunk: &mut Chunk,
        piece: &Bytes,
        config: &ReassemblyConfig,
        others: usize,
        out: &mut Vec<Delivery>,
    ) -> Result<(), ReassemblyError> {
        let from = chunk.pos;
        let limit = config.max_message_size;
        let Some(to) = from.checked_add(to_u64(piece.len())) else {
            return Err(ReassemblyError::TooLarge { size: u64::MAX, limit });
        };
        // RFC 4975 s.10.5: "Typically, a 413 is sent in response to a chunk of an undesired message."
        if to > limit {
            return Err(ReassemblyError::TooLarge { size: to, limit });
        }
        // RFC 4975 s.7.1.1: "The range-end field SHOULD indicate the position
        // of the last byte in the body, if known." A shorter body is fine
        // (s.7.3.1); a longer one contradicts the header.
        if chunk.end.is_some_and(|end| to > end) {
            return Err(ReassemblyError::BadRange { reason: "the body is longer than its range" });
        }
        if self.limit().is_some_and(|total| to > total) {
            return Err(ReassemblyError::BadRange { reason: "data past the message's total" });
        }
        let fresh = from.max(self.next);
        let grows = fresh < to && (matches!(self.sink, Sink::Buffered(_)) || fresh > self.next);
        if grows {
            let added = to_usize(to - fresh).saturating_sub(self.pending_overlap(fresh, to));
            if others.saturating_add(self.held()).saturating_add(added) > config.max_held_bytes {
                return Err(ReassemblyError::HeldBytesExceeded { limit: config.max_held_bytes });
            }
        }

        chunk.pos = to;
        self.high = self.high.max(to);
        let seam = to.min(self.next);
        if from < seam {
            let old = piece.slice(..to_usize(seam - from).min(piece.len()));
            self.rewrite(chunk, from, &old, out);
        }
        if fresh < to {
            let new = piece.slice(to_usize(fresh - from).min(piece.len())..);
            // The chunk's block fingerprint only serves bytes already delivered.
            chunk.cmp = None;
            if fresh == self.next {
                self.append(new, out);
            } else {
                self.hold(fresh, new);
            }
        }
        Ok(())
    }

    /// `data` lands on `[at, at + len)`, all before `next`.
    fn rewrite(&mut self, chunk: &mut Chunk, at: u64, data: &[u8], out: &mut Vec<Delivery>) {
        let limit = self.limit();
        match &mut self.sink {
            // RFC 4975 s.7.3.1: "If chunk data is received that overlaps
            // already received data for the same message, the last chunk
            // received SHOULD take precedence".
            Sink::Buffered(body) => body.overwrite(to_usize(at), data, limit),
            // RFC 4975 s.7.3.1: "If a new chunk arrives that overlaps with a
            // previously rendered chunk, it would be too late to "take back"
            // any conflicting data from the first chunk."
            Sink::Streaming(delivered) => {
                if let Some((from, to)) = delivered.compare(&mut chunk.cmp, at, data) {
                    out.push(Delivery::Conflict { id: self.id.clone(), offset: from, len: to - from });
                }
            }
        }
    }

    /// `data` starts at `next`: it becomes in order, and so may held data after it.
    fn append(&mut self, data: Bytes, out: &mut Vec<Delivery>) {
        let end = self.next.saturating_add(to_u64(data.len()));
        // Held data there came earlier: the newer chunk wins (s.7.3.1).
        self.cut(self.next, end);
        self.take(data, out);
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() != self.next {
                break;
            }
            let data = entry.remove();
            self.pending_bytes = self.pending_bytes.saturating_sub(data.len());
            self.take(data, out);
        }
    }

    /// Adds in-order `data` at `next`.
    fn take(&mut self, data: Bytes, out: &mut Vec<Delivery>) {
        let at = self.next;
        self.next = at.saturating_add(to_u64(data.len()));
        let limit = self.limit();
        match &mut self.sink {
            Sink::Buffered(body) => body.push(data, limit),
            Sink::Streaming(delivered) => {
                delivered.record(at, &data);
                out.push(Delivery::Data { id: self.id.clone(), offset: at, data });
            }
        }
    }

    /// Holds out-of-order `data` at `at` (past `next`), replacing older data there.
    fn hold(&mut self, at: u64, data: Bytes) {
        self.cut(at, at.saturating_add(to_u64(data.len())));
        self.pending_bytes += data.len();
        // A copy: held data may wait long, and a slice would keep its whole
        // read segment alive while counting only its own bytes.
        self.pending.insert(at, Bytes::copy_from_slice(&data));
    }

    /// Held segments overlapping `[from, to)`, as (start, length).
    fn overlapping(&self, from: u64, to: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.pending
            .range(..to)
            .rev()
            .map(|(start, data)| (*start, to_u64(data.len())))
            .take_while(move |(start, len)| start.saturating_add(*len) > from)
    }

    fn pending_overlap(&self, from: u64, to: u64) -> usize {
        self.overlapping(from, to)
            .map(|(start, len)| to_usize(start.saturating_add(len).min(to).saturating_sub(start.max(from))))
            .sum()
    }

    /// Drops held bytes in `[from, to)`, keeping the parts of segments outside it.
    fn cut(&mut self, from: u64, to: u64) {
        let hits: Vec<u64> = self.overlapping(from, to).map(|(start, _)| start).collect();
        for start in hits {
            let Some(data) = self.pending.remove(&start) else { continue };
            self.pending_bytes = self.pending_bytes.saturating_sub(data.len());
            let end = start.saturating_add(to_u64(data.len()));
            // What is kept of a cut segment is copied too, so that it does
            // not pin the part that went.
            if start < from {
                let left = Bytes::copy_from_slice(data.get(..to_usize(from - start)).unwrap_or_default());
                self.pending_bytes += left.len();
                self.pending.insert(start, left);
            }
            if end > to {
                let right = Bytes::copy_from_slice(data.get(to_usize(to - start)..).unwrap_or_default());
                self.pending_bytes += right.len();
                self.pending.insert(to, right);
            }
        }
    }
}

impl Body {
    fn len(&self) -> usize {
        match self {
            Self::Empty => 0,
            Self::One(bytes) => bytes.len(),
            Self::Many(buf) => buf.len(),
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Self::Empty => &[],
            Self::One(bytes) => bytes,
            Self::Many(buf) => buf,
        }
    }

    fn push(&mut self, data: Bytes, limit: Option<u64>) {
        match self {
            Self::Empty => *self = Self::One(data),
            Self::One(first) => {
                let need = first.len().saturating_add(data.len());
                let mut buf = BytesMut::with_capacity(capacity_for(need, limit));
                buf.extend_from_slice(first);
                buf.extend_from_slice(&data);
                *self = Self::Many(buf);
            }
            Self::Many(buf) => {
                if buf.capacity() - buf.len() < data.len() {
                    // Grow by what arrived, not by what a header declared.
                    let need = buf.len().saturating_add(data.len());
                    let mut grown = BytesMut::with_capacity(capacity_for(need, limit));
                    grown.extend_from_slice(buf);
                    *buf = grown;
                }
                buf.extend_from_slice(&data);
            }
        }
    }

    fn overwrite(&mut self, at: usize, data: &[u8], limit: Option<u64>) {
        let range = at..at.saturating_add(data.len());
        if self.as_slice().get(range.clone()) == Some(data) {
            // A duplicate: nothing to copy.
            return;
        }
        if let Self::One(first) = self {
            let mut buf = BytesMut::with_capacity(capacity_for(first.len(), limit));
            buf.extend_from_slice(first);
            *self = Self::Many(buf);
        }
        if let Self::Many(buf) = self {
            if let Some(old) = buf.get_mut(range) {
                old.copy_from_slice(data);
            }
        }
    }

    fn freeze(self) -> Bytes {
        match self {
            Self::Empty => Bytes::new(),
            Self::One(bytes) => bytes,
            Self::Many(buf) => buf.freeze(),
        }
    }
}

impl Delivered {
    /// Position of the first byte of the window.
    fn window_start(&self) -> u64 {
        self.recent_end.saturating_sub(to_u64(self.recent.len()))
    }

    /// Notes bytes delivered at `at` (always the end of what was delivered).
    fn record(&mut self, at: u64, data: &Bytes) {
        let mut pos = at;
        let mut rest: &[u8] = data;
        while !rest.is_empty() {
            let in_block = usize::try_from(BLOCK - pos % BLOCK).unwrap_or(usize::MAX).min(rest.len());
            let (piece, after) = rest.split_at(in_block);
            self.partial.feed(pos, piece);
            pos += to_u64(in_block);
            rest = after;
            if pos % BLOCK == 0 {
                self.blocks.push(self.partial.finish());
                self.partial = BlockHash::new();
            }
        }
        let tail = data.get(data.len().saturating_sub(WINDOW)..).unwrap_or_default();
        let excess = (self.recent.len() + tail.len()).saturating_sub(WINDOW);
        self.recent.drain(..excess.min(self.recent.len()));
        self.recent.extend(tail);
        self.recent_end = at.saturating_add(to_u64(data.len()));
    }

    /// Compares `data`, a rewrite of delivered `[at, at + len)`, with what was
    /// delivered; returns the span from the first to the last byte known to differ.
    fn compare(&self, cmp: &mut Option<BlockHash>, at: u64, data: &[u8]) -> Option<(u64, u64)> {
        let mut differs = None;
        let end = at.saturating_add(to_u64(data.len()));
        // Exact, over the recent window.
        let window = self.window_start();
        let (from, to) = (at.max(window), end.min(self.recent_end));
        if from < to {
            let old = self.recent.range(to_usize(from - window)..to_usize(to - window));
            let new = data.get(to_usize(from - at)..to_usize(to - at)).unwrap_or_default();
            let mut first = None;
            let mut last = 0;
            for (i, (a, b)) in old.zip(new).enumerate() {
                if a != b {
                    first = first.or(Some(i));
                    last = i;
                }
            }
            if let Some(first) = first {
                widen(&mut differs, from + to_u64(first), from + to_u64(last) + 1);
            }
        }
        // Coarse, over whole blocks older than the window.
        if at >= window {
            *cmp = None;
            return differs;
        }
        let mut pos = at;
        let mut rest = data;
        while !rest.is_empty() {
            if pos % BLOCK == 0 {
                *cmp = Some(BlockHash::new());
            }
            let in_block = usize::try_from(BLOCK - pos % BLOCK).unwrap_or(usize::MAX).min(rest.len());
            let (piece, after) = rest.split_at(in_block);
            if let Some(state) = cmp.as_mut() {
                state.feed(pos, piece);
            }
            pos += to_u64(in_block);
            rest = after;
            if pos % BLOCK == 0 {
                if let Some(state) = cmp.take() {
                    let block = pos - BLOCK;
                    if pos <= window && self.blocks.get(to_usize(block / BLOCK)) != Some(&state.finish()) {
                        widen(&mut differs, block, pos);
                    }
                }
            }
        }
        differs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block's fingerprint is the same however its bytes are split, and
    /// differs when one byte does.
    #[test]
    fn a_block_fingerprint_does_not_depend_on_the_split() {
        let block: Vec<u8> = (0..BLOCK).map(|i| (i * 37 % 251) as u8).collect();
        let base = 5 * BLOCK;
        let mut whole = BlockHash::new();
        whole.feed(base, &block);
        for cuts in [vec![1], vec![7, 8, 9], vec![3, 500, 501, 1023], (1..1024).step_by(13).collect::<Vec<usize>>()] {
            let mut split = BlockHash::new();
            let mut from = 0;
            for &cut in cuts.iter().chain(std::iter::once(&block.len())) {
                split.feed(base + from as u64, &block[from..cut]);
                from = cut;
            }
            assert_eq!(split.finish(), whole.finish(), "{cuts:?}");
        }
        let mut changed = block.clone();
        changed[700] ^= 1;
        let mut other = BlockHash::new();
        other.feed(base, &changed);
        assert_ne!(other.finish(), whole.finish());
    }
}
