//! What a [`Relay`](super::Relay) allows, and who may use it.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use crate::auth::digest;
use crate::uri::MsrpUri;
use crate::wire::Limits;

/// Who may use the relay: H(A1) of each user in a realm (RFC 2617
/// s.3.2.2.2), so a store need not keep passwords.
pub trait CredentialStore {
    /// H(A1) of `username` in `realm` ([`digest::ha1`]), `None` for a user
    /// the relay does not serve (answered 403, RFC 4976 s.6.3).
    fn ha1(&self, username: &str, realm: &str) -> Option<String>;
}

/// A [`CredentialStore`] in memory.
#[derive(Clone, Default)]
pub struct Users {
    ha1: HashMap<(String, String), String>,
}

impl Users {
    /// No users.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `username` with `password` in `realm`.
    pub fn add(&mut self, username: &str, realm: &str, password: &str) {
        self.ha1.insert((username.to_owned(), realm.to_owned()), digest::ha1(username, realm, password));
    }
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Users").field("count", &self.ha1.len()).finish()
    }
}

impl CredentialStore for Users {
    fn ha1(&self, username: &str, realm: &str) -> Option<String> {
        self.ha1.get(&(username.to_owned(), realm.to_owned())).cloned()
    }
}

/// How the relay authenticates AUTH.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChallengeMode {
    /// HTTP Digest (RFC 4976 s.6.3, s.9.1).
    #[default]
    Digest,
    /// Every AUTH is granted without a challenge: for tests and load
    /// benchmarks only, never a relay reachable by others.
    NoChallenge,
}

/// What a [`Relay`](super::Relay) allows and how long it waits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayConfig {
    /// The relay's URIs, one per listener ([`Input::Accepted`](super::Input::Accepted) names its
    /// index): a request's first To-Path URI with one of their hosts (and
    /// port, when it has one) is for the relay; Use-Path URIs are built on them.
    pub listeners: Vec<MsrpUri>,
    /// The Digest realm (RFC 4976 s.5.1: "not unreasonable to always use
    /// the relay's hostname as the realm").
    pub realm: String,
    /// Digest or no challenge.
    pub challenge: ChallengeMode,
    /// AUTH accepted on `msrp` (TCP) listeners too: a named test option
    /// (RFC 4976 s.8: "AUTH requests MUST only be sent over a TLS-protected channel").
    pub auth_over_tcp: bool,
    /// How long an accepted connection may go without a successful request
    /// (RFC 4976 s.6.1: "up to 30 seconds").
    pub probation: Duration,
    /// Failed AUTHs before a connection on probation is closed (s.6.1,
    /// s.6.3: "SHOULD terminate the corresponding connection"; default 3).
    pub max_failed_auth: u32,
    /// The lifetime of a Use-Path URI when AUTH asks for none (default 1800 s).
    pub default_expires: u32,
    /// The shortest lifetime the relay grants (`Min-Expires`, default 60 s).
    pub min_expires: u32,
    /// The longest (`Max-Expires`, default 86 400 s).
    pub max_expires: u32,
    /// How long a forwarded request waits for its response after its last
    /// byte went (RFC 4976 s.6.4.1: "after 30 seconds").
    pub transaction_timeout: Duration,
    /// How long a frame may wait for its next hop (busy, full or still
    /// connecting) before it is aborted (default 30 s).
    pub stall_timeout: Duration,
    /// How long a connection may carry nothing before it is closed
    /// (RFC 4976 s.6.5: "more than one hour").
    pub idle_timeout: Duration,
    /// Bytes written to a connection and not yet acknowledged with
    /// [`Input::Written`](super::Input::Written) before the connection feeding it stops being read
    /// (default 64 KiB).
    pub write_window: usize,
    /// Responses and REPORTs waiting to be written on one connection before
    /// it is closed (default 1024).
    pub max_owed_frames: usize,
    /// Use-Path URIs held at once (default 65 536).
    pub max_grants: usize,
    /// Use-Path URIs one connection may hold (default 64): one client
    /// cannot take every grant.
    pub max_grants_per_connection: usize,
    /// Connections the relay opens toward next hops and holds at once
    /// (default 1024): past it a request needing a new one is refused (481).
    pub max_opened_links: usize,
    /// Nonces held at once (default 4096).
    pub max_nonces: usize,
    /// How long a nonce is valid (default 60 s).
    pub nonce_lifetime: Duration,
    /// Forwarded requests awaiting their response (default 65 536).
    pub max_pending: usize,
    /// Framer limits of every connection.
    pub limits: Limits,
    /// The largest chunk body written to a WebSocket connection (default
    /// 64 KiB): each chunk is one WebSocket message (RFC 7977 s.5.1).
    pub websocket_chunk: usize,
}

impl RelayConfig {
    /// A Digest relay on `listeners` with the defaults above.
    #[must_use]
    pub fn new(listeners: Vec<MsrpUri>, realm: &str) -> Self {
        Self {
            listeners,
            realm: realm.to_owned(),
            challenge: ChallengeMode::Digest,
            auth_over_tcp: false,
            probation: Duration::from_secs(30),
            max_failed_auth: 3,
            default_expires: 1800,
            min_expires: 60,
            max_expires: 86_400,
            transaction_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(3600),
            write_window: 64 * 1024,
            max_owed_frames: 1024,
            max_grants: 65_536,
            max_grants_per_connection: 64,
            max_opened_links: 1024,
            max_nonces: 4096,
            nonce_lifetime: Duration::from_secs(60),
            max_pending: 65_536,
            limits: Limits::default(),
            websocket_chunk: 64 * 1024,
        }
    }
}

/// Whether a listener's URI names the WebSocket transport (RFC 7977 s.5.2.1:
/// `transport = "tcp" / "ws" / 1*ALPHANUM`).
pub(super) fn is_websocket(uri: &MsrpUri) -> bool {
    uri.transport().eq_ignore_ascii_case("ws")
}
