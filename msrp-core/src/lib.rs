//! Sans-IO MSRP (RFC 4975) for OMA CPM large message mode: URIs, a zero-copy
//! incremental framer and an encoder; sessions, links shared by sessions,
//! and relays, as machines. RFC 4976 relays: a client's AUTH ([`auth`]) and
//! the relay itself ([`rfc4976`]).
//!
//! No sockets, clocks, threads or randomness live here: the runtime hands
//! over the bytes it read ([`Framer::handle_segment`]), drains the events
//! ([`Framer::poll_event`]), and writes what the [`Encoder`] produced
//! (head and body as separate [`bytes::Bytes`], ready for vectored writes).
//! Randomness comes in through an [`IdSource`].
//!
//! ```
//! use bytes::Bytes;
//! use msrp_core::{Encoder, Frame, Framer, FramerEvent, IdSource, Limits, MsrpUri, Flag};
//!
//! struct Counter(u8);
//! impl IdSource for Counter {
//!     fn fill(&mut self, out: &mut [u8]) {
//!         for b in out { self.0 = self.0.wrapping_add(1); *b = self.0; }
//!     }
//! }
//!
//! let to = MsrpUri::parse_str("msrp://bob.example.com:8888/9di4eae923wzd;tcp").unwrap();
//! let from = MsrpUri::parse_str("msrp://alice.example.com:7777/iau39soe2843z;tcp").unwrap();
//! let frame = Frame::send(vec![to], vec![from], "text/plain", Bytes::from_static(b"Hi Bob"));
//! let mut encoder = Encoder::new();
//! let out = encoder.encode(&frame, &mut Counter(0)).unwrap();
//!
//! // The runtime writes head, body and end-line; the peer's framer reads them.
//! let mut framer = Framer::new(Limits::default());
//! for part in [out.head, out.body, out.end_line] {
//!     framer.handle_segment(part);
//! }
//! let mut events = Vec::new();
//! while let Some(event) = framer.poll_event() {
//!     events.push(event.unwrap());
//! }
//! assert!(matches!(&events[0], FramerEvent::Head(h) if h.method_name() == Some("SEND")));
//! assert_eq!(events[1], FramerEvent::Body(Bytes::from_static(b"Hi Bob")));
//! assert_eq!(events[2], FramerEvent::End(Flag::End));
//! ```
//!
//! # Limits: what a hostile peer meets
//!
//! Every queue, map and wait a peer can grow has a bound and a deadline.
//!
//! | limit | default | when exceeded |
//! |---|---|---|
//! | [`Limits`]: head, line, header count, non-SEND body | 16 KiB, 8 KiB, 64, 10 240 bytes | the frame is rejected (400) or, when the framing is lost, the link fails |
//! | [`ReassemblyConfig`](reassembly::ReassemblyConfig)`::max_message_size` | 16 MiB | 413, later chunks refused |
//! | `ReassemblyConfig::max_incomplete` | 16 messages | 413 |
//! | `ReassemblyConfig::max_held_bytes` (owned copies, not pinned segments) | 32 MiB | 413 |
//! | streaming overlap window | 64 KiB per message | oldest bytes compared by fingerprint only |
//! | `SessionConfig::min_shared_piece`, streamed pieces waiting to be sent | 2048 bytes | shorter pieces are copied (a relay copies one once for all its members, `Command::StreamOwned`), so what waits keeps at most read size / 2048 times its size alive |
//! | [`SessionConfig`](session::SessionConfig)`::max_outgoing` | 1024 messages | `UsageError::QueueFull` |
//! | `SessionConfig::transaction_timeout` | 30 s | `SendFailed` 408 |
//! | `SessionConfig::report_timeout`, after the last byte | 30 s | `ReportTimedOut` (relay: `Outcome::NoReport`), state freed |
//! | [`EndpointConfig`](link::EndpointConfig)`::link_window` | 64 KiB | nothing more handed out until `Written` |
//! | `EndpointConfig::max_owed_frames` per link | 1024 | `PauseReading` until half are written |
//! | `EndpointConfig::owed_timeout` | 30 s | link closed (`LinkTimeout::PeerNotReading`) |
//! | `EndpointConfig::bind_timeout`, accepted link with no session | 30 s | link closed (`LinkTimeout::NeverBound`) |
//! | `EndpointConfig::idle_timeout` | 30 min | link closed (`LinkTimeout::Idle`) |
//! | `EndpointConfig::max_queued_before_up` | 1 MiB | `UsageError::QueueFull` |
//! | [`RelayConfig`](relay::RelayConfig)`::window` / `max_backlog` per member | 256 KiB / 1 MiB | `PauseReading` on the inbound link |
//! | `RelayConfig::slow_member_timeout` | 10 s | member dropped (`#`, `Outcome::Dropped`) |
//! | [`rfc4976::RelayConfig`]: probation, failed AUTHs, grants, nonces, pending requests, answers owed, write window, stalls | see [`rfc4976`] | connection closed, 403, oldest nonce forgotten, chunk aborted with a 408 REPORT |
//! | [`auth::AuthConfig`]`::answer_timeout` | 30 s | `AuthError::Timeout` |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
mod coverage;
mod deadline;
mod error;
mod id;
pub mod link;
pub mod mime;
pub mod reassembly;
pub mod relay;
pub mod rfc4976;
pub mod router;
pub mod session;
pub mod uri;
pub mod wire;

#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;

pub use error::ParseError;
pub use id::{IdSource, MessageId, TransactionId};
pub use uri::{MsrpUri, UriError};
pub use wire::{
    ByteRange, EncodeError, Encoder, FailureReport, Flag, Frame, FrameHead, Framer, FramerEvent, Header, Limits,
    Method, StartLine, Status, Transmit,
};
