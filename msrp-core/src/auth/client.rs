//! A client's AUTH to its relays (RFC 4976 s.5.1), as a sans-IO machine:
//! [`AuthClient`] writes the AUTH requests, reads their responses, answers
//! Digest challenges, and ends with the `Use-Path` the client's sessions
//! route through; it authenticates again before the URIs expire (s.4.6).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use msrp_core::auth::{AuthClient, AuthConfig, AuthEvent, RelayAccount};
//! use msrp_core::{IdSource, MsrpUri};
//!
//! struct Counter(u8);
//! impl IdSource for Counter {
//!     fn fill(&mut self, out: &mut [u8]) {
//!         for b in out { self.0 = self.0.wrapping_add(1); *b = self.0; }
//!     }
//! }
//!
//! let relay = MsrpUri::parse_str("msrps://relay.example.com:9000;tcp").unwrap();
//! let me = MsrpUri::parse_str("msrps://alice.example.com:9892/98cjs;tcp").unwrap();
//! let config = AuthConfig::new(me.clone(), vec![RelayAccount::new(relay, "alice", "secret")]);
//! let mut client = AuthClient::new(config).unwrap();
//! let now = Instant::now();
//! client.start(now, &mut Counter(0));
//! // The first AUTH goes to the relay, without credentials.
//! let auth = client.poll_transmit().unwrap();
//! assert_eq!(auth.to_path[0].host(), "relay.example.com");
//! assert!(auth.headers.is_empty());
//! assert!(client.poll_timeout().is_some()); // the answer is awaited 30 s at most
//! # let _ = (Duration::ZERO, AuthEvent::Failed);
//! ```
//!
//! The machine is driven like the others of this crate: after
//! [`AuthClient::start`], [`AuthClient::handle_response`] or
//! [`AuthClient::handle_timeout`], drain [`AuthClient::poll_transmit`]
//! (frames for the link to the first relay, to encode and write) and
//! [`AuthClient::poll_event`], then read [`AuthClient::poll_timeout`].

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::digest::{self, AuthenticationInfo, Challenge, Credentials, DigestError};
use crate::id::{IdSource, TransactionId};
use crate::uri::{MsrpUri, Scheme};
use crate::wire::{Frame, FrameHead};

/// RFC 4976 s.3: "Delivery over each hop should take no more than 30
/// seconds after the last byte of data is sent."
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// One relay of a client and the account it holds there.
#[derive(Clone, PartialEq, Eq)]
pub struct RelayAccount {
    /// The relay's URI (RFC 4976 s.5.1 example: `msrps://alice@intra.example.com;tcp`).
    pub uri: MsrpUri,
    /// The Digest `username`.
    pub username: String,
    password: String,
}

impl RelayAccount {
    /// The account `username`/`password` at the relay `uri`.
    #[must_use]
    pub fn new(uri: MsrpUri, username: &str, password: &str) -> Self {
        Self { uri, username: username.to_owned(), password: password.to_owned() }
    }
}

impl fmt::Debug for RelayAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayAccount").field("uri", &self.uri).field("username", &self.username).finish_non_exhaustive()
    }
}

/// Which connections AUTH may go over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthTransport {
    /// Only `msrps` relays (RFC 4976 s.8: "AUTH requests MUST only be sent
    /// over a TLS-protected channel").
    #[default]
    TlsOnly,
    /// `msrp` relays too: for test relays on a trusted host only, where the
    /// password crosses the connection in a digest an eavesdropper can attack.
    PlainTcpForTestRelays,
}

/// What an [`AuthClient`] does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthConfig {
    /// The client's own URI: the From-Path of its AUTH requests.
    pub local: MsrpUri,
    /// The relays that act for the client, the first (the one it connects
    /// to) first (RFC 4976 s.5.1: one AUTH "to each relay that will act on
    /// their behalf").
    pub relays: Vec<RelayAccount>,
    /// The lifetime asked for with `Expires` (RFC 4976 s.5.1: "The client
    /// MAY add an Expires header"); `None` lets each relay choose.
    pub expires: Option<u32>,
    /// How long an AUTH waits for its response (default 30 s).
    pub answer_timeout: Duration,
    /// Whether AUTH may go over plain TCP.
    pub transport: AuthTransport,
}

impl AuthConfig {
    /// AUTH from `local` to `relays`, TLS only, the relays' lifetimes.
    #[must_use]
    pub fn new(local: MsrpUri, relays: Vec<RelayAccount>) -> Self {
        Self { local, relays, expires: None, answer_timeout: ANSWER_TIMEOUT, transport: AuthTransport::TlsOnly }
    }
}

/// Why a client is not (or no longer) authenticated at its relays.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No relay configured.
    #[error("no relay configured")]
    NoRelays,
    /// An `msrp` relay while AUTH is TLS only (RFC 4976 s.8).
    #[error("AUTH to {relay} would go over plain TCP (RFC 4976 s.8 asks for TLS)")]
    NotTls {
        /// The relay.
        relay: MsrpUri,
    },
    /// 403: the relay does not let this client use it (RFC 4976 s.6.3).
    #[error("relay {relay} refused the client (403)")]
    Forbidden {
        /// The relay.
        relay: MsrpUri,
    },
    /// 423: the requested `Expires` is outside what the relay allows
    /// (RFC 4976 s.6.3), with the bounds it gave.
    #[error("relay {relay} refused the lifetime (423; min {min_expires:?}, max {max_expires:?})")]
    IntervalOutOfBounds {
        /// The relay.
        relay: MsrpUri,
        /// Its `Min-Expires`.
        min_expires: Option<u32>,
        /// Its `Max-Expires`.
        max_expires: Option<u32>,
    },
    /// A second 401 answered our credentials (not `stale`): wrong password.
    #[error("relay {relay} rejected the credentials")]
    Rejected {
        /// The relay.
        relay: MsrpUri,
    },
    /// A challenge MSRP cannot answer.
    #[error("relay {relay} sent an unusable challenge: {reason}")]
    Challenge {
        /// The relay.
        relay: MsrpUri,
        /// What is wrong with it.
        reason: DigestError,
    },
    /// A 200 whose `rspauth` is not what the relay holding our secret
    /// would send: the client did not reach the relay it trusts.
    #[error("relay {relay} did not prove it knows the credentials")]
    RelayNotAuthenticated {
        /// The relay.
        relay: MsrpUri,
    },
    /// A 200 without a usable `Use-Path` (RFC 4976 s.4.2).
    #[error("relay {relay} answered without a Use-Path")]
    NoUsePath {
        /// The relay.
        relay: MsrpUri,
    },
    /// Another error response.
    #[error("relay {relay} answered AUTH with {status}")]
    Status {
        /// The relay.
        relay: MsrpUri,
        /// The response's status code.
        status: u16,
    },
    /// No response within [`AuthConfig::answer_timeout`].
    #[error("relay {relay} did not answer AUTH")]
    Timeout {
        /// The relay.
        relay: MsrpUri,
    },
    /// The connection to the first relay is gone: an AUTH in flight fails,
    /// and a Use-Path it gave is no longer valid (RFC 4976 s.6.3).
    #[error("the connection to relay {relay} was lost")]
    LinkLost {
        /// The first relay.
        relay: MsrpUri,
    },
}

/// What an [`AuthClient`] tells its user.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthEvent {
    /// Every relay took the client; its sessions use `use_path` (after the
    /// first success, each refresh reports it again: a changed path needs
    /// the sessions' SDP updated).
    Authenticated {
        /// The outermost relay's `Use-Path` (RFC 4976 s.5.1).
        use_path: Vec<MsrpUri>,
        /// The shortest lifetime the relays gave (`Expires`), if any.
        expires: Option<Duration>,
    },
    /// Authentication failed; nothing more happens until [`AuthClient::start`].
    Failed(AuthError),
}

/// The AUTH in flight.
#[derive(Debug)]
struct Pending {
    transaction_id: TransactionId,
    deadline: Instant,
    /// The credentials it carries, with H(A1), when it answers a challenge.
    credentials: Option<(Credentials, String)>,
    /// Whether it answers a `stale` challenge (answered once, RFC 2617 s.3.2.1).
    stale_retry: bool,
}

/// A nonce to answer without a new challenge (`nextnonce`, RFC 2617 s.3.2.3).
#[derive(Clone, Debug)]
struct NextNonce {
    challenge: Challenge,
}

/// The client side of RFC 4976 AUTH for one session's relays (s.5.1:
/// "Each URI SHOULD be used for only one unique session", so each session
/// runs its own).
#[derive(Debug)]
pub struct AuthClient {
    config: AuthConfig,
    /// The relay being authenticated this round.
    hop: usize,
    /// The Use-Path of the round so far (the previous relay's).
    round_path: Vec<MsrpUri>,
    /// The shortest `Expires` of the round.
    round_expires: Option<u32>,
    /// The last complete round's Use-Path.
    use_path: Vec<MsrpUri>,
    pending: Option<Pending>,
    next_nonces: Vec<Option<NextNonce>>,
    refresh_at: Option<Instant>,
    transmit: VecDeque<Frame>,
    events: VecDeque<AuthEvent>,
}

impl AuthClient {
    /// A client for `config`.
    ///
    /// # Errors
    /// [`AuthError::NoRelays`], or [`AuthError::NotTls`] for an `msrp`
    /// relay when AUTH is TLS only.
    pub fn new(config: AuthConfig) -> Result<Self, AuthError> {
        if config.relays.is_empty() {
            return Err(AuthError::NoRelays);
        }
        if config.transport == AuthTransport::TlsOnly {
            // RFC 4976 s.8: "AUTH requests MUST only be sent over a TLS-protected channel."
            if let Some(relay) = config.relays.iter().find(|r| r.uri.scheme() != Scheme::Msrps) {
                return Err(AuthError::NotTls { relay: relay.uri.clone() });
            }
        }
        let next_nonces = vec![None; config.relays.len()];
        Ok(Self {
            config,
            hop: 0,
            round_path: Vec::new(),
            round_expires: None,
            use_path: Vec::new(),
            pending: None,
            next_nonces,
            refresh_at: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// The relay the client connects to: every AUTH goes on the link to it.
    #[must_use]
    pub fn first_relay(&self) -> &MsrpUri {
        // `new` refuses an empty list.
        &self.config.relays[0].uri
    }

    /// Starts (or restarts) a round: AUTH to the first relay, then to each
    /// next one through those before it (RFC 4976 s.5.1).
    pub fn start(&mut self, now: Instant, ids: &mut dyn IdSource) {
        self.hop = 0;
        self.round_path.clear();
        self.round_expires = None;
        self.refresh_at = None;
        self.send_auth(now, ids, None);
    }

    /// The Use-Path of the last successful round; empty before the first.
    #[must_use]
    pub fn use_path(&self) -> &[MsrpUri] {
        &self.use_path
    }

    /// Whether a round succeeded and no later one failed.
    #[must_use]
    pub fn is_authenticated(&self) -> bool {
        !self.use_path.is_empty()
    }

    /// The transaction id of the AUTH awaiting its response: a runtime
    /// routes a response with this id to [`AuthClient::handle_response`].
    #[must_use]
    pub fn pending_transaction(&self) -> Option<&TransactionId> {
        self.pending.as_ref().map(|p| &p.transaction_id)
    }

    /// The next AUTH to write on the link to [`AuthClient::first_relay`].
    pub fn poll_transmit(&mut self) -> Option<Frame> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<AuthEvent> {
        self.events.pop_front()
    }

    /// When [`AuthClient::handle_timeout`] is due: an answer's deadline, or
    /// the refresh before the relays' URIs expire.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (&self.pending, self.refresh_at) {
            (Some(p), _) => Some(p.deadline),
            (None, at) => at,
        }
    }

    /// Time passes: an unanswered AUTH fails, a due refresh starts a round.
    pub fn handle_timeout(&mut self, now: Instant, ids: &mut dyn IdSource) {
        if let Some(pending) = &self.pending {
            if now >= pending.deadline {
                self.pending = None;
                let relay = self.relay_uri();
                self.fail(AuthError::Timeout { relay });
            }
        } else if self.refresh_at.is_some_and(|at| now >= at) {
            // RFC 4976 s.6.3: "the relay MUST ensure that the URI is invalidated after the expiry
            // time", so the client authenticates again before then.
            self.start(now, ids);
        }
    }

    /// The link to the first relay is gone: a round in flight, or the
    /// Use-Path of the last one, ends ([`AuthError::LinkLost`]).
    pub fn link_lost(&mut self) {
        if self.pending.is_some() || !self.use_path.is_empty() || self.refresh_at.is_some() {
            let relay = self.first_relay().clone();
            self.fail(AuthError::LinkLost { relay });
        }
    }

    /// A response read on the link to the first relay. `false` (and
    /// nothing done) when it does not answer the pending AUTH.
    pub fn handle_response(&mut self, head: &FrameHead, now: Instant, ids: &mut dyn IdSource) -> bool {
        let Some(status) = head.status_code() else { return false };
        let Some(pending) = self.pending.take_if(|p| p.transaction_id.as_str() == head.txid()) else {
            return false;
        };
        let relay = self.relay_uri();
        match status {
            200..=299 => self.succeeded(head, pending, relay, now, ids),
            401 => {
                let challenge = match head.www_authenticate().map(Challenge::parse) {
                    Some(Ok(challenge)) => challenge,
                    Some(Err(reason)) => return self.failed(AuthError::Challenge { relay, reason }),
                    None => return self.failed(AuthError::Challenge { relay, reason: DigestError::Missing("header") }),
                };
                // RFC 4976 s.6.3: "an AUTH request containing an Authorization header that triggers a
                // 401 response without a "stale=TRUE" indication" is a failed AUTH. A stale nonce is
                // answered once more, with the new nonce.
                let answered = pending.credentials.is_some();
                if answered && (!challenge.stale || pending.stale_retry) {
                    return self.failed(AuthError::Rejected { relay });
                }
                self.send_auth(now, ids, Some(challenge));
                if let Some(p) = &mut self.pending {
                    p.stale_retry = answered;
                }
            }
            403 => self.fail(AuthError::Forbidden { relay }),
            423 => self.fail(AuthError::IntervalOutOfBounds {
                relay,
                min_expires: head.min_expires(),
                max_expires: head.max_expires(),
            }),
            _ => self.fail(AuthError::Status { relay, status }),
        }
        true
    }

    fn failed(&mut self, error: AuthError) -> bool {
        self.fail(error);
        true
    }

    fn succeeded(&mut self, head: &FrameHead, pending: Pending, relay: MsrpUri, now: Instant, ids: &mut dyn IdSource) {
        // RFC 4976 s.4.2: the Use-Path is a list of MSRP URIs.
        let use_path: Result<Vec<MsrpUri>, _> = head.use_path().map(MsrpUri::parse_str).collect();
        let use_path = match use_path {
            Ok(path) if !path.is_empty() => path,
            _ => return self.fail(AuthError::NoUsePath { relay }),
        };
        let info = head.authentication_info().and_then(|v| AuthenticationInfo::parse(v).ok());
        if let Some((credentials, ha1)) = &pending.credentials {
            // RFC 4976 s.9.1: "Relays MUST include rspauth ... in a "Authentication-Info" header for
            // all "200 OK" responses to an AUTH request". One that is there must be right; a relay
            // that sends none is taken on the strength of its TLS certificate.
            if let Some(info) = info.as_ref().filter(|i| i.rspauth.is_some()) {
                let uri = credentials.uri.as_deref().unwrap_or_default();
                if !info.verify(credentials, ha1, uri) {
                    return self.fail(AuthError::RelayNotAuthenticated { relay });
                }
            }
        }
        let realm = pending.credentials.as_ref().map(|(c, _)| (c.realm.clone(), c.opaque.clone()));
        let next = info
            .and_then(|i| i.nextnonce)
            .zip(realm)
            .map(|(nonce, (realm, opaque))| NextNonce { challenge: Challenge { realm, nonce, opaque, stale: false } });
        if let Some(slot) = self.next_nonces.get_mut(self.hop) {
            *slot = next;
        }
        // RFC 4976 s.5.1: "each server can return an independent expiration time".
        if let Some(expires) = head.expires() {
            self.round_expires = Some(self.round_expires.map_or(expires, |e| e.min(expires)));
        }
        self.round_path = use_path;
        self.hop += 1;
        if self.hop < self.config.relays.len() {
            self.send_auth(now, ids, None);
            return;
        }
        self.use_path = std::mem::take(&mut self.round_path);
        let expires = self.round_expires.map(|s| Duration::from_secs(u64::from(s)));
        // Refresh when three quarters of the lifetime have passed.
        // A lifetime of 0 leaves nothing to refresh before.
        self.refresh_at = expires.filter(|e| !e.is_zero()).map(|e| now + e.mul_f64(0.75));
        self.events.push_back(AuthEvent::Authenticated { use_path: self.use_path.clone(), expires });
    }

    fn fail(&mut self, error: AuthError) {
        self.pending = None;
        self.refresh_at = None;
        self.use_path.clear();
        self.transmit.clear();
        self.events.push_back(AuthEvent::Failed(error));
    }

    fn relay(&self) -> &RelayAccount {
        let last = self.config.relays.len() - 1;
        &self.config.relays[self.hop.min(last)]
    }

    fn relay_uri(&self) -> MsrpUri {
        self.relay().uri.clone()
    }

    /// Queues the AUTH to the current relay: through the relays before it
    /// (RFC 4976 s.5.1: "setting the To-Path to msrps://R1;tcp
    /// msrps://R2;tcp"), answering `challenge` (or the relay's `nextnonce`).
    fn send_auth(&mut self, now: Instant, ids: &mut dyn IdSource, challenge: Option<Challenge>) {
        let account = self.relay().clone();
        let mut to_path = self.round_path.clone();
        to_path.push(account.uri.clone());
        let challenge =
            challenge.or_else(|| self.next_nonces.get_mut(self.hop).and_then(Option::take).map(|n| n.challenge));
        let credentials = challenge.map(|challenge| {
            let ha1 = digest::ha1(&account.username, &challenge.realm, &account.password);
            // RFC 4976 s.9.1: "The request-URI to be used in calculating H(A2) is the rightmost
            // URI in the To-Path header."
            let uri = account.uri.as_str();
            let mut raw = [0u8; 8];
            ids.fill(&mut raw);
            let cnonce: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            // A nonce is used once per AUTH (they cannot be pipelined, s.9.1): the count is 1.
            (Credentials::answer(&challenge, &account.username, &ha1, uri, &cnonce, 1), ha1)
        });
        let transaction_id = TransactionId::generate(ids);
        let mut frame = Frame::bodiless("AUTH", to_path, vec![self.config.local.clone()]);
        frame.transaction_id = Some(transaction_id.clone());
        if let Some((credentials, _)) = &credentials {
            frame = frame.with_header("Authorization", &credentials.to_string());
        }
        if let Some(expires) = self.config.expires {
            frame = frame.with_header("Expires", &expires.to_string());
        }
        self.transmit.push_back(frame);
        self.pending = Some(Pending {
            transaction_id,
            deadline: now + self.config.answer_timeout,
            credentials,
            stale_retry: false,
        });
    }
}

/// The SDP `a=path` a client behind relays offers (RFC 4976 s.5.1: "the
/// client reverses the list of URIs in the Use-Path header (after the
/// outermost authentication), and appends the client's own URI").
#[must_use]
pub fn sdp_path(use_path: &[MsrpUri], own: &MsrpUri) -> Vec<MsrpUri> {
    use_path.iter().rev().chain(std::iter::once(own)).cloned().collect()
}

/// The To-Path of a client's requests (RFC 4976 s.5.1: "the client takes
/// the list of URIs in the Use-Path header after the outermost
/// authentication and appends the list of URIs provided in the path
/// attribute in the peer's session description").
#[must_use]
pub fn to_path(use_path: &[MsrpUri], peer_path: &[MsrpUri]) -> Vec<MsrpUri> {
    use_path.iter().chain(peer_path).cloned().collect()
}
