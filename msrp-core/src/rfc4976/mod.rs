//! An RFC 4976 relay as a sans-IO machine: it authenticates clients with
//! AUTH (HTTP Digest, s.6.3), hands out `Use-Path` URIs, and forwards
//! requests and responses by their To-Path (s.6.4), SEND bodies cut-through.
//!
//! Unlike the hop relay of [`crate::relay`] (a back-to-back endpoint of
//! CPM's network entities), this relay terminates no session: it reads each
//! frame's head, rewrites its paths (s.6.4.1: "the relay removes this URI
//! from the To-Path header and inserts this URI in the From-Path header
//! before any other URIs") and a fresh transaction id (s.6.4: "a relay will
//! generally need to construct a new transact-id value for any request that
//! it forwards"), and streams the body to the next hop as it comes.
//!
//! # What the relay enforces
//!
//! - **Probation** (s.6.1): an accepted connection that has no successful
//!   request within [`RelayConfig::probation`] (30 s), or that fails AUTH
//!   [`RelayConfig::max_failed_auth`] times before one succeeds, is closed.
//! - **Only requests for the relay** (s.6.2): a request whose first To-Path
//!   URI is not the relay's drops the connection at once.
//! - **Use-Path URIs** (s.6.3) carry 95 random bits, are valid only on the
//!   connection that authenticated (a frame for one that arrives elsewhere
//!   must go out on that connection toward the client, or it is refused),
//!   and end with their lifetime (`Expires`, bounded by
//!   [`RelayConfig::min_expires`] and [`RelayConfig::max_expires`], 423
//!   outside them).
//! - **AUTH only over TLS** (s.8), unless [`RelayConfig::auth_over_tcp`] is
//!   named for a test relay. [`ChallengeMode::NoChallenge`] grants every
//!   AUTH (tests and load benchmarks; off by default).
//! - **Forwarding** (s.6.4.1): a SEND is answered at once to the previous
//!   hop (Failure-Report `yes`), its body streamed to the next; a non-200
//!   from the next hop, or no answer within [`RelayConfig::transaction_timeout`]
//!   after the last byte, becomes a REPORT to the sender (s.6.4.1, s.6.4.3).
//!
//! # Memory a peer can make the relay hold
//!
//! | bound ([`RelayConfig`]) | default | when reached |
//! |---|---|---|
//! | `write_window`: bytes written to a connection and not acknowledged | 64 KiB | reading stops on the connection that feeds it ([`Output::PauseReading`]) |
//! | `stall_timeout`: a frame waiting for its next hop (busy, full or connecting) | 30 s | the frame is aborted (`#`), its sender gets a 408 REPORT |
//! | `max_owed_frames`: responses and REPORTs waiting on one connection | 1024 | the connection is closed |
//! | `max_grants`, `max_grants_per_connection` | 65 536, 64 | AUTH answered 403 |
//! | `max_failed_auth`: AUTHs not granted in a row on a client's connection (challenges included) | 3 | the connection is closed |
//! | `max_opened_links`: connections the relay opens toward next hops | 1024 | the request is refused (481) |
//! | `max_nonces`, each valid `nonce_lifetime` | 4096, 60 s | the oldest nonce is forgotten |
//! | `max_pending`: forwarded requests awaiting their response | 65 536 | new ones refused (413) |
//! | answers owed to a connection reach half of `max_owed_frames` | 512 | it is not read until they drain |
//! | a chunk whose sender stops sending, `stall_timeout` | 30 s | aborted (`#`), 408 REPORT to its sender |
//! | `idle_timeout` (s.6.5: "more than one hour") | 1 h | the connection is closed |
//! | framer [`Limits`](crate::Limits) | see there | the connection is closed |

mod config;
mod frames;
mod relay;

pub use config::{ChallengeMode, CredentialStore, RelayConfig, Users};
pub use relay::{CloseReason, Held, Input, Output, Relay, OPENED_CONN_BASE};
