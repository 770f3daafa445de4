//! Links (transport connections) shared by MSRP sessions: the registry with
//! reuse, one framer per link, routing by To-Path, and write pacing by a
//! window (RFC 4975 s.5.4, s.7.3), as one sans-IO machine, the [`Endpoint`].
//!
//! # Model
//!
//! - The endpoint owns [`Session`]s, each named by a caller-chosen
//!   [`SessionKey`] and added with [`Command::Open`].
//! - An *active* session needs a link toward the first URI of its peer's
//!   path. RFC 4975 s.5.4: "If the connection is to a remote host and one
//!   associated with the same host, port, and URI scheme already exists,
//!   the endpoint SHOULD reuse that connection" (the seeds: "choose an
//!   existing link with matching host, port and URI"). The registry is keyed
//!   by [`LinkKey`]; when no link matches, the endpoint asks the runtime to
//!   open one with [`Output::Connect`], under the [`ConnId`] the caller put
//!   in the command (the caller chooses the id of what a command creates).
//!   A caller whose negotiation decides when to connect adds the session
//!   with [`Command::Add`] and connects it later with [`Command::Connect`];
//!   [`EndpointConfig::reuse_links`] off, every connect opens its own link.
//!   Until [`Input::Connected`] the session queues: at most
//!   [`EndpointConfig::max_queued_before_up`] body bytes, and
//!   [`SessionConfig::max_outgoing`](crate::session::SessionConfig::max_outgoing) messages.
//! - A *passive* session waits. The runtime announces accepted links with
//!   [`Input::Accepted`]; the first request naming the session's URI in its
//!   To-Path binds the session to that link ([`Router`]). Requests nobody
//!   takes are refused with 481 or 506 ([`refusal`]).
//! - Every frame read on a link is routed by its To-Path: requests, and
//!   responses too (a response's To-Path is our URI, s.7.2).
//! - A session behind RFC 4976 relays first authenticates on the link to
//!   its first relay ([`Command::Authenticate`], an [`AuthClient`] run by
//!   the endpoint: its AUTHs written on that link, their answers routed to
//!   it by transaction id, [`Output::Auth`] with the Use-Path), then opens
//!   on that same link with the peer path of RFC 4976 s.5.1.
//! - Writing is paced: the endpoint hands the runtime at most
//!   [`EndpointConfig::link_window`] bytes per link beyond what the runtime
//!   acknowledged with [`Input::Written`]. What does not fit stays in the
//!   sessions (shared `Bytes`, never copied), which is what a relay's window
//!   accounting reads ([`Session::queued_bytes`]).
//! - Sessions of one link take turns: a chunk that is written stays alone on
//!   the link until its end-line, and ends early (`+`) when another session
//!   waits (s.7.1.1: "each concurrent request gets a chance to send some fair
//!   portion of data").
//! - A lost link ([`Input::Closed`], or a framing error, which closes it)
//!   takes its sessions down: their pending messages fail with
//!   [`Event::SendFailed`] (status 0), and [`Output::LinkDown`] names them.
//!   An active session can then be put on a new link with
//!   [`Command::Connect`].
//!
//! # What a peer cannot do
//!
//! | limit ([`EndpointConfig`]) | default | when exceeded |
//! |---|---|---|
//! | `link_window`: bytes handed out, not acknowledged | 64 KiB | nothing more is handed out on that link until [`Input::Written`] |
//! | `max_owed_frames`: responses and REPORTs owed on a link | 1024 | reading stops ([`Output::PauseReading`]; the framer keeps the rest of the segment) until half have been written |
//! | `owed_timeout`: time reading stays stopped for owed answers | 30 s | the link is closed ([`Output::LinkTimedOut`], [`LinkTimeout::PeerNotReading`]) |
//! | `bind_timeout`: an accepted link with no session (since it was accepted, or its last session left) | 30 s | closed ([`LinkTimeout::NeverBound`]) |
//! | `idle_timeout`: nothing read or written | 30 min | closed ([`LinkTimeout::Idle`]) |
//! | `max_queued_before_up`: body bytes queued before the link is up | 1 MiB | [`UsageError::QueueFull`] |
//! | framer [`Limits`] | see there | the link fails ([`Output::LinkError`]) and is closed |
//!
//! The drain contract is the session's: after every [`Endpoint::handle`],
//! drain [`Endpoint::poll_output`] until `None`, then read
//! [`Endpoint::poll_timeout`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;

use crate::auth::{AuthClient, AuthEvent};
use crate::deadline::later;
use crate::id::IdSource;
use crate::router::{ConnId, Route, Router};
use crate::session::{self, refusal, Event, LinkRole, Session};
use crate::uri::{MsrpUri, Scheme};
use crate::wire::{Encoder, Framer, FramerEvent, Limits, Transmit};
use crate::ParseError;

/// A session of an [`Endpoint`], named by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SessionKey(u64);

impl SessionKey {
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

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session#{}", self.0)
    }
}

/// What makes two links the same for reuse (RFC 4975 s.5.4: "the same
/// host, port, and URI scheme"; seed 001 claim 9: "an existing MSRP link
/// with matching host, port and/or MSRP URI"): scheme, host, port and
/// transport. The host is normalized: an IP literal to its canonical form
/// (IPv6 without brackets, RFC 5952), a name lower-cased (s.6.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkKey {
    scheme: Scheme,
    host: String,
    port: u16,
    transport: String,
}

impl LinkKey {
    /// The key of a link to `host`:`port` over `transport` (`tcp`, `ws` ...).
    #[must_use]
    pub fn new(scheme: Scheme, host: &str, port: u16, transport: &str) -> Self {
        Self { scheme, host: normalize_host(host), port, transport: transport.to_ascii_lowercase() }
    }
    /// The key of the link toward `uri` (the first URI of a peer's path).
    /// `None` when the URI has no port: MSRP has no default port.
    #[must_use]
    pub fn of(uri: &MsrpUri) -> Option<Self> {
        Some(Self::new(uri.scheme(), uri.host(), uri.port()?, uri.transport()))
    }
    /// `msrp` or `msrps` (the latter asks for TLS).
    #[must_use]
    pub const fn scheme(&self) -> Scheme {
        self.scheme
    }
    /// Whether the link runs over TLS (`msrps`).
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.scheme == Scheme::Msrps
    }
    /// The host, normalized.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }
    /// The port.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }
    /// The transport, lower-cased.
    #[must_use]
    pub fn transport(&self) -> &str {
        &self.transport
    }
}

impl fmt::Display for LinkKey {
    /// `host:port`, or `[v6]:port`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A host as [`LinkKey`] compares it: an IP literal in its canonical form
/// (IPv6 without brackets, RFC 5952), a name lower-cased (RFC 4975 s.6.1).
#[must_use]
pub fn normalize_host(host: &str) -> String {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => bare.to_ascii_lowercase(),
    }
}

/// Limits and pacing of an [`Endpoint`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Framer limits of every link.
    pub limits: Limits,
    /// Bytes handed to the runtime per link and not yet acknowledged with
    /// [`Input::Written`] (default 64 KiB). The endpoint may pass it by one
    /// transmit (at most a session's write quantum plus a head).
    pub link_window: usize,
    /// Body bytes a session may queue while its link is not up (default 1 MiB).
    pub max_queued_before_up: usize,
    /// Responses and REPORTs owed on one link (its refusals and its
    /// sessions' answers) at which the endpoint stops reading it (default
    /// 1024): a peer that writes requests and never reads the answers
    /// cannot make the endpoint queue them without limit.
    pub max_owed_frames: usize,
    /// How long a link may stay stopped for owed answers before it is
    /// closed (default 30 s).
    pub owed_timeout: Duration,
    /// How long an accepted link may carry no session before it is closed
    /// (default 30 s, the probation of RFC 4976 s.6.1).
    pub bind_timeout: Duration,
    /// How long a link may see nothing read or written before it is closed
    /// (default 30 minutes; `None` keeps quiet links open). MSRP has no
    /// keep-alive of its own: set this above the longest silence a session
    /// may legitimately have.
    pub idle_timeout: Option<Duration>,
    /// Whether an active session reuses a link this endpoint opened to the
    /// same [`LinkKey`] (default `true`; RFC 4975 s.5.4: "SHOULD reuse").
    /// Off, every connect opens its own link.
    pub reuse_links: bool,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            link_window: 64 * 1024,
            max_queued_before_up: 1 << 20,
            max_owed_frames: 1024,
            owed_timeout: Duration::from_secs(30),
            bind_timeout: Duration::from_secs(30),
            idle_timeout: Some(Duration::from_secs(30 * 60)),
            reuse_links: true,
        }
    }
}

/// Why the endpoint closed a link on a deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkTimeout {
    /// An accepted link carried no session within
    /// [`EndpointConfig::bind_timeout`].
    NeverBound,
    /// Nothing was read or written within [`EndpointConfig::idle_timeout`].
    Idle,
    /// The peer did not read the answers owed to it: reading stayed stopped
    /// for [`EndpointConfig::owed_timeout`].
    PeerNotReading,
}

/// What the user asks of the endpoint.
#[derive(Debug)]
#[non_exhaustive]
pub enum Command {
    /// Adds a fresh session (built with [`Session::new`]). An active session
    /// reuses a link with the same [`LinkKey`] or has one opened under
    /// `conn`; a passive one waits for its first request (`conn` unused).
    Open {
        /// The caller's name for it.
        key: SessionKey,
        /// The session, not yet on a link.
        session: Box<Session>,
        /// The id of the link to open when none can be reused.
        conn: ConnId,
    },
    /// A command for one session.
    Session {
        /// The session.
        key: SessionKey,
        /// The command.
        command: session::Command,
    },
    /// Adds a fresh session without putting it on a link: an active one
    /// waits for [`Command::Connect`] (a caller whose negotiation says when
    /// to connect), a passive one for its first request, as with `Open`.
    Add {
        /// The caller's name for it.
        key: SessionKey,
        /// The session, not yet on a link.
        session: Box<Session>,
    },
    /// Puts an active session that is on no link (added, or its link lost)
    /// on one: reused, or opened under `conn`.
    Connect {
        /// The session.
        key: SessionKey,
        /// The id of the link to open when none can be reused.
        conn: ConnId,
    },
    /// Removes a session (and the AUTH run for it). Its link closes when
    /// no session is left on it.
    Close {
        /// The session.
        key: SessionKey,
    },
    /// Authenticates to the relays of `client` for the session `key` will
    /// name (RFC 4976 s.5.1: "Each URI SHOULD be used for only one unique
    /// session"): on the link toward its first relay, reused or opened as
    /// `conn`, the link the session then uses (s.6.3: the Use-Path "MUST
    /// only be valid to route across the same connection over which the AUTH
    /// request was received"). [`Output::Auth`] reports the Use-Path; open
    /// the session after it, with its peer path made by
    /// [`to_path`](crate::auth::to_path). The client refreshes before the
    /// Use-Path expires as long as the key is not closed.
    Authenticate {
        /// The session it is for.
        key: SessionKey,
        /// The client, not started, and its randomness.
        auth: Box<Authentication>,
        /// The id of the link to open when none can be reused.
        conn: ConnId,
    },
}

/// A client's AUTH as [`Command::Authenticate`] hands it to the endpoint.
pub struct Authentication {
    /// The client, not started.
    pub client: AuthClient,
    /// Its randomness (transaction ids, `cnonce`).
    pub ids: Box<dyn IdSource + Send>,
}

impl fmt::Debug for Authentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authentication").field("client", &self.client).finish_non_exhaustive()
    }
}

/// What comes into the endpoint.
#[derive(Debug)]
#[non_exhaustive]
pub enum Input {
    /// A link asked for with [`Output::Connect`] is up.
    Connected {
        /// The link.
        conn: ConnId,
    },
    /// The runtime accepted a link (passive side).
    Accepted {
        /// The runtime's id for it.
        conn: ConnId,
    },
    /// Bytes read from a link.
    Received {
        /// The link.
        conn: ConnId,
        /// The bytes.
        data: Bytes,
    },
    /// The runtime wrote `bytes` more of what the link's transmits carried:
    /// the window opens by as much.
    Written {
        /// The link.
        conn: ConnId,
        /// How many bytes.
        bytes: usize,
    },
    /// The link is gone (closed, reset, or failed to connect).
    Closed {
        /// The link.
        conn: ConnId,
    },
    /// A timer may have expired.
    Timeout,
    /// A user command.
    Command(Command),
}

/// What the endpoint asks of the runtime, or tells the user.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Open a link toward `link` (TLS for `msrps`) and call it `conn`;
    /// answer with [`Input::Connected`] or [`Input::Closed`].
    Connect {
        /// The id the link gets.
        conn: ConnId,
        /// Where to.
        link: LinkKey,
    },
    /// Write these bytes to the link, in order (head, body, end-line), and
    /// acknowledge them with [`Input::Written`] once written.
    Transmit {
        /// The link.
        conn: ConnId,
        /// The bytes.
        transmit: Transmit,
    },
    /// Close the link (no session is left on it, or its framing is lost).
    Close {
        /// The link.
        conn: ConnId,
    },
    /// Stop reading from the link (its readers' windows are full).
    PauseReading {
        /// The link.
        conn: ConnId,
    },
    /// Read from the link again.
    ResumeReading {
        /// The link.
        conn: ConnId,
    },
    /// The link is gone; these sessions lost it (their events follow or
    /// came before: [`Event::SendFailed`] with status 0 for pending messages).
    LinkDown {
        /// The link.
        conn: ConnId,
        /// The sessions that were on it.
        sessions: Vec<SessionKey>,
    },
    /// A link's deadline passed: the link is closed ([`Output::Close`] and
    /// [`Output::LinkDown`] follow).
    LinkTimedOut {
        /// The link.
        conn: ConnId,
        /// Which deadline.
        timeout: LinkTimeout,
    },
    /// The peer's bytes on a link broke the framing: the link is closed.
    LinkError {
        /// The link.
        conn: ConnId,
        /// What was wrong.
        error: ParseError,
    },
    /// A session's event.
    Event {
        /// The session.
        session: SessionKey,
        /// What happened.
        event: Event,
    },
    /// What the AUTH run for a session came to ([`Command::Authenticate`]).
    Auth {
        /// The session it is for.
        session: SessionKey,
        /// Authenticated (with the Use-Path), or failed.
        event: AuthEvent,
    },
}

/// A caller's mistake; the endpoint's state is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UsageError {
    /// No session has this key.
    #[error("unknown session")]
    UnknownSession,
    /// A session with this key exists.
    #[error("duplicate session key")]
    DuplicateSession,
    /// No link has this id.
    #[error("unknown link")]
    UnknownConn,
    /// A link with this id exists.
    #[error("duplicate link id")]
    DuplicateConn,
    /// The peer's path is empty or its first URI has no port.
    #[error("the peer's path names no host and port to connect to")]
    NoRoute,
    /// The session is passive, or already on a link.
    #[error("the session cannot be connected: it is passive, or on a link")]
    NotConnectable,
    /// More bytes than allowed are queued before the link is up.
    #[error("too many bytes queued before the link is up")]
    QueueFull,
    /// The session refused the command.
    #[error("session: {0}")]
    Session(#[from] session::UsageError),
}

/// A client's AUTH to its relays, on one link.
struct AuthSlot {
    client: AuthClient,
    ids: Box<dyn IdSource + Send>,
    conn: ConnId,
}

impl fmt::Debug for AuthSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSlot").field("client", &self.client).field("conn", &self.conn).finish_non_exhaustive()
    }
}

/// Moves what `slot`'s client wants written onto its link's control queue
/// and its events to `ready`.
fn drain_auth(key: SessionKey, slot: &mut AuthSlot, links: &mut BTreeMap<ConnId, Link>, ready: &mut VecDeque<Output>) {
    while let Some(frame) = slot.client.poll_transmit() {
        let Ok(transmit) = Encoder::new().encode(&frame, slot.ids.as_mut()) else { continue };
        if let Some(link) = links.get_mut(&slot.conn) {
            link.control.push_back(transmit);
        }
    }
    while let Some(event) = slot.client.poll_event() {
        ready.push_back(Output::Auth { session: key, event });
    }
}

#[derive(Debug)]
struct Slot {
    session: Box<Session>,
    conn: Option<ConnId>,
}

/// Where the body of the frame being read goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    None,
    Session(SessionKey),
}

#[derive(Debug)]
struct Link {
    /// Registry key, for links this side opened.
    key: Option<LinkKey>,
    up: bool,
    framer: Framer,
    sessions: Vec<SessionKey>,
    /// Bytes handed out and not yet acknowledged.
    in_flight: usize,
    /// A session whose frame is open on the link.
    writer: Option<SessionKey>,
    /// Round-robin position among `sessions`.
    next: usize,
    /// Link-level responses (refusals).
    control: VecDeque<Transmit>,
    target: Target,
    /// Whether the runtime was told to stop reading (for either reason below).
    paused: bool,
    /// The relay asked to stop reading (its members' windows are full).
    held_back: bool,
    /// Reading stopped for answers owed to the peer, since then.
    owed_since: Option<Instant>,
    /// When the link was accepted, or its last session left it.
    unbound_since: Instant,
    /// When something was last read or written.
    active_at: Instant,
}

impl Link {
    fn new(key: Option<LinkKey>, up: bool, limits: Limits, now: Instant) -> Self {
        Self {
            key,
            up,
            framer: Framer::new(limits),
            sessions: Vec::new(),
            in_flight: 0,
            writer: None,
            next: 0,
            control: VecDeque::new(),
            target: Target::None,
            paused: false,
            held_back: false,
            owed_since: None,
            unbound_since: now,
            active_at: now,
        }
    }

    /// Answers owed to the peer: the link's refusals and its sessions' answers.
    fn owed(&self, sessions: &BTreeMap<SessionKey, Slot>) -> usize {
        let answers: usize =
            self.sessions.iter().filter_map(|k| sessions.get(k)).map(|s| s.session.owed_frames()).sum();
        self.control.len() + answers
    }

    /// The earliest deadline of the link, and which.
    fn deadline(&self, config: &EndpointConfig) -> Option<(Instant, LinkTimeout)> {
        let owed = self.owed_since.map(|since| (later(since, config.owed_timeout), LinkTimeout::PeerNotReading));
        let unbound = (self.key.is_none() && self.sessions.is_empty())
            .then(|| (later(self.unbound_since, config.bind_timeout), LinkTimeout::NeverBound));
        let idle = config.idle_timeout.map(|idle| (later(self.active_at, idle), LinkTimeout::Idle));
        [owed, unbound, idle].into_iter().flatten().min_by_key(|(at, _)| *at)
    }
}

/// Sessions, the links they share, and the registry that reuses links.
pub struct Endpoint {
    config: EndpointConfig,
    last_now: Instant,
    sessions: BTreeMap<SessionKey, Slot>,
    links: BTreeMap<ConnId, Link>,
    registry: HashMap<LinkKey, ConnId>,
    router: Router<SessionKey>,
    ready: VecDeque<Output>,
    /// Links that may have something to write (their window opened, or a
    /// session on them got input); flushing visits only these.
    dirty: Vec<ConnId>,
    /// Reused list of link ids, so flushing allocates nothing.
    scratch: Vec<ConnId>,
    /// AUTH runs, by the session they are for.
    auths: BTreeMap<SessionKey, AuthSlot>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("sessions", &self.sessions.len())
            .field("links", &self.links.len())
            .finish_non_exhaustive()
    }
}

fn drain_events(key: SessionKey, session: &mut Session, ready: &mut VecDeque<Output>) {
    while let Some(event) = session.poll_event() {
        ready.push_back(Output::Event { session: key, event });
    }
}

impl Endpoint {
    /// An endpoint with no session and no link.
    #[must_use]
    pub fn new(config: EndpointConfig, now: Instant) -> Self {
        Self {
            config,
            last_now: now,
            sessions: BTreeMap::new(),
            links: BTreeMap::new(),
            registry: HashMap::new(),
            router: Router::new(),
            ready: VecDeque::new(),
            dirty: Vec::new(),
            scratch: Vec::new(),
            auths: BTreeMap::new(),
        }
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// A session.
    #[must_use]
    pub fn session(&self, key: SessionKey) -> Option<&Session> {
        self.sessions.get(&key).map(|slot| &*slot.session)
    }

    /// The link a session is on.
    #[must_use]
    pub fn link_of(&self, key: SessionKey) -> Option<ConnId> {
        self.sessions.get(&key).and_then(|slot| slot.conn)
    }

    /// The links, open or opening.
    #[must_use]
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// Every session's key, in order.
    pub fn session_keys(&self) -> impl Iterator<Item = SessionKey> + '_ {
        self.sessions.keys().copied()
    }

    /// The sessions on a link.
    #[must_use]
    pub fn sessions_on(&self, conn: ConnId) -> &[SessionKey] {
        self.links.get(&conn).map_or(&[], |link| &link.sessions)
    }

    /// Bytes handed to the runtime on a link and not yet acknowledged.
    #[must_use]
    pub fn in_flight(&self, conn: ConnId) -> usize {
        self.links.get(&conn).map_or(0, |link| link.in_flight)
    }

    /// Whether the endpoint knows the link (open, or being opened).
    #[must_use]
    pub fn has_link(&self, conn: ConnId) -> bool {
        self.links.contains_key(&conn)
    }

    /// Whether the link is up.
    #[must_use]
    pub fn is_link_up(&self, conn: ConnId) -> bool {
        self.links.get(&conn).is_some_and(|link| link.up)
    }

    /// Whether reading from the link is paused.
    #[must_use]
    pub fn is_paused(&self, conn: ConnId) -> bool {
        self.links.get(&conn).is_some_and(|link| link.paused)
    }

    /// Entries kept in queues and maps, the sessions' included (a heap bound
    /// allows each a fixed overhead).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn entries(&self) -> usize {
        let links: usize = self.links.values().map(|link| 1 + link.sessions.len() + link.control.len()).sum();
        let sessions: usize = self.sessions.values().map(|slot| 1 + slot.session.entries()).sum();
        links + sessions + self.registry.len() + self.ready.len() + self.dirty.len()
    }

    /// Bytes the link framers hold (partial heads and end-lines only).
    #[must_use]
    pub fn framer_bytes(&self) -> usize {
        self.links.values().map(|link| link.framer.buffered_len()).sum()
    }

    /// Feeds one input. Bad peer bytes never return `Err`.
    ///
    /// # Errors
    /// [`UsageError`] for a command or id the endpoint cannot take.
    pub fn handle(&mut self, now: Instant, input: Input) -> Result<(), UsageError> {
        let result = self.process(now, input);
        self.flush_all();
        result
    }

    /// The next output, `None` when there is nothing more to do now.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.ready.pop_front()
    }

    /// Whether [`Endpoint::poll_output`] has something.
    #[must_use]
    pub fn has_output(&self) -> bool {
        !self.ready.is_empty()
    }

    /// When [`Input::Timeout`] is next due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sessions = self.sessions.values().filter_map(|slot| slot.session.poll_timeout());
        let links = self.links.values().filter_map(|link| link.deadline(&self.config)).map(|(at, _)| at);
        let auths = self.auths.values().filter_map(|slot| slot.client.poll_timeout());
        sessions.chain(links).chain(auths).min()
    }

    fn mark(&mut self, conn: Option<ConnId>) {
        if let Some(conn) = conn {
            if !self.dirty.contains(&conn) {
                self.dirty.push(conn);
            }
        }
    }

    /// Feeds one input without writing (the relay writes once per batch).
    pub(crate) fn process(&mut self, now: Instant, input: Input) -> Result<(), UsageError> {
        self.last_now = self.last_now.max(now);
        let now = self.last_now;
        match &input {
            Input::Connected { conn } | Input::Received { conn, .. } | Input::Written { conn, .. } => {
                self.mark(Some(*conn));
            }
            Input::Timeout => {
                let all: Vec<ConnId> = self.links.keys().copied().collect();
                for conn in all {
                    self.mark(Some(conn));
                }
            }
            Input::Command(Command::Session { key, .. } | Command::Connect { key, .. } | Command::Open { key, .. }) => {
                // Marked again after the command, when the link is known.
                let conn = self.link_of(*key);
                self.mark(conn);
            }
            _ => {}
        }
        let key = match &input {
            Input::Command(Command::Open { key, .. } | Command::Connect { key, .. }) => Some(*key),
            _ => None,
        };
        let result = self.process_inner(now, input);
        if let Some(key) = key {
            let conn = self.link_of(key);
            self.mark(conn);
        }
        result
    }

    fn process_inner(&mut self, now: Instant, input: Input) -> Result<(), UsageError> {
        match input {
            Input::Connected { conn } => {
                let link = self.links.get_mut(&conn).ok_or(UsageError::UnknownConn)?;
                link.active_at = now;
                if !link.up {
                    link.up = true;
                    for key in &link.sessions {
                        if let Some(slot) = self.sessions.get_mut(key) {
                            let _ = slot.session.handle(now, session::Input::LinkUp);
                            drain_events(*key, &mut slot.session, &mut self.ready);
                        }
                    }
                }
            }
            Input::Accepted { conn } => {
                if self.links.contains_key(&conn) {
                    return Err(UsageError::DuplicateConn);
                }
                self.links.insert(conn, Link::new(None, true, self.config.limits.clone(), now));
            }
            Input::Received { conn, data } => {
                let link = self.links.get_mut(&conn).ok_or(UsageError::UnknownConn)?;
                link.active_at = now;
                link.framer.handle_segment(data);
                self.read_frames(now, conn);
            }
            Input::Written { conn, bytes } => {
                let link = self.links.get_mut(&conn).ok_or(UsageError::UnknownConn)?;
                link.in_flight = link.in_flight.saturating_sub(bytes);
                link.active_at = now;
            }
            Input::Closed { conn } => self.link_lost(now, conn),
            Input::Timeout => {
                for (key, slot) in &mut self.sessions {
                    let _ = slot.session.handle(now, session::Input::Timeout);
                    drain_events(*key, &mut slot.session, &mut self.ready);
                }
                for (key, slot) in &mut self.auths {
                    if slot.client.poll_timeout().is_some_and(|at| at <= now) {
                        slot.client.handle_timeout(now, slot.ids.as_mut());
                        drain_auth(*key, slot, &mut self.links, &mut self.ready);
                    }
                }
                self.expire_links(now);
            }
            Input::Command(command) => self.command(now, command)?,
        }
        Ok(())
    }

    fn command(&mut self, now: Instant, command: Command) -> Result<(), UsageError> {
        match command {
            Command::Add { key, session } => {
                if self.sessions.contains_key(&key) {
                    return Err(UsageError::DuplicateSession);
                }
                self.router.add(session.config().local_uri.clone(), key);
                self.sessions.insert(key, Slot { session, conn: None });
            }
            Command::Open { key, session, conn } => {
                if self.sessions.contains_key(&key) {
                    return Err(UsageError::DuplicateSession);
                }
                let config = session.config();
                let active = config.role == LinkRole::Active;
                let link_key = if active {
                    Some(config.remote_path.first().and_then(LinkKey::of).ok_or(UsageError::NoRoute)?)
                } else {
                    None
                };
                if let Some(link_key) = &link_key {
                    if self.reusable(link_key).is_none() && self.links.contains_key(&conn) {
                        return Err(UsageError::DuplicateConn);
                    }
                }
                self.router.add(config.local_uri.clone(), key);
                self.sessions.insert(key, Slot { session, conn: None });
                if let Some(link_key) = link_key {
                    self.attach(now, key, link_key, conn);
                }
            }
            Command::Session { key, command } => {
                let slot = self.sessions.get_mut(&key).ok_or(UsageError::UnknownSession)?;
                let link_up = slot.session.is_link_up();
                let adds = match &command {
                    session::Command::Send { body, .. } => body.len(),
                    session::Command::StreamData { data, .. } | session::Command::StreamOwned { data, .. } => {
                        data.len()
                    }
                    _ => 0,
                };
                if !link_up && slot.session.queued_bytes().saturating_add(adds) > self.config.max_queued_before_up {
                    return Err(UsageError::QueueFull);
                }
                slot.session.handle(now, session::Input::Command(command))?;
                drain_events(key, &mut slot.session, &mut self.ready);
            }
            Command::Connect { key, conn } => {
                let slot = self.sessions.get(&key).ok_or(UsageError::UnknownSession)?;
                let config = slot.session.config();
                if slot.conn.is_some() || config.role != LinkRole::Active {
                    return Err(UsageError::NotConnectable);
                }
                let link_key = config.remote_path.first().and_then(LinkKey::of).ok_or(UsageError::NoRoute)?;
                if self.reusable(&link_key).is_none() && self.links.contains_key(&conn) {
                    return Err(UsageError::DuplicateConn);
                }
                self.attach(now, key, link_key, conn);
            }
            Command::Close { key } => {
                let auth = self.auths.remove(&key);
                let Some(slot) = self.sessions.remove(&key) else {
                    let auth = auth.ok_or(UsageError::UnknownSession)?;
                    // The AUTH's link, if nothing else uses it, closes with it.
                    let used = self.links.get(&auth.conn).is_some_and(|link| !link.sessions.is_empty())
                        || self.auths.values().any(|other| other.conn == auth.conn);
                    if !used && self.links.get(&auth.conn).is_some_and(|link| link.key.is_some()) {
                        self.ready.push_back(Output::Close { conn: auth.conn });
                        self.forget_link(auth.conn);
                    }
                    return Ok(());
                };
                self.router.remove(&slot.session.config().local_uri);
                if let Some(conn) = slot.conn {
                    self.detach(now, key, conn);
                }
            }
            Command::Authenticate { key, auth, conn } => {
                let Authentication { mut client, mut ids } = *auth;
                if self.auths.contains_key(&key) {
                    return Err(UsageError::DuplicateSession);
                }
                let link_key = LinkKey::of(client.first_relay()).ok_or(UsageError::NoRoute)?;
                if self.reusable(&link_key).is_none() && self.links.contains_key(&conn) {
                    return Err(UsageError::DuplicateConn);
                }
                let conn = self.link_toward(now, link_key, conn);
                client.start(now, ids.as_mut());
                let mut slot = AuthSlot { client, ids, conn };
                drain_auth(key, &mut slot, &mut self.links, &mut self.ready);
                self.auths.insert(key, slot);
                self.mark(Some(conn));
            }
        }
        Ok(())
    }

    /// The link toward `link_key`: reused, or opened as `conn`.
    fn link_toward(&mut self, now: Instant, link_key: LinkKey, conn: ConnId) -> ConnId {
        if let Some(existing) = self.reusable(&link_key) {
            return existing;
        }
        if self.config.reuse_links {
            self.registry.insert(link_key.clone(), conn);
        }
        let link = Link::new(Some(link_key.clone()), false, self.config.limits.clone(), now);
        self.links.insert(conn, link);
        self.ready.push_back(Output::Connect { conn, link: link_key });
        conn
    }

    /// Puts an active session on the link toward `link_key`: reused, or opened as `conn`.
    fn attach(&mut self, now: Instant, key: SessionKey, link_key: LinkKey, conn: ConnId) {
        let conn = self.link_toward(now, link_key, conn);
        let Some(slot) = self.sessions.get_mut(&key) else { return };
        let Some(link) = self.links.get_mut(&conn) else { return };
        link.sessions.push(key);
        slot.conn = Some(conn);
        self.router.bind(&slot.session.config().local_uri, conn);
        if link.up {
            let _ = slot.session.handle(now, session::Input::LinkUp);
            drain_events(key, &mut slot.session, &mut self.ready);
        }
    }

    /// The link this endpoint opened toward `link_key`, when links are reused.
    fn reusable(&self, link_key: &LinkKey) -> Option<ConnId> {
        self.registry.get(link_key).copied().filter(|_| self.config.reuse_links)
    }

    /// A session left a link.
    fn detach(&mut self, now: Instant, key: SessionKey, conn: ConnId) {
        // A link an AUTH still runs on stays (its Use-Path is bound to it, RFC 4976 s.6.3).
        let authenticated = self.auths.values().any(|slot| slot.conn == conn);
        let Some(link) = self.links.get_mut(&conn) else { return };
        link.sessions.retain(|k| *k != key);
        if link.target == Target::Session(key) {
            link.target = Target::None;
        }
        if link.writer == Some(key) {
            // Its frame is open on the wire: nothing else can follow it.
            link.writer = None;
            self.ready.push_back(Output::Close { conn });
            self.link_lost(now, conn);
        } else if link.sessions.is_empty() && link.key.is_none() {
            // A link the peer opened is the peer's to close; if it keeps it
            // open unused, it is closed after the probation (RFC 4975 s.4:
            // "close these connections when no sessions have used them for
            // some period of time").
            link.unbound_since = now;
        } else if link.sessions.is_empty() && !authenticated {
            self.ready.push_back(Output::Close { conn });
            self.forget_link(conn);
        }
    }

    fn forget_link(&mut self, conn: ConnId) -> Option<Link> {
        let link = self.links.remove(&conn)?;
        if let Some(key) = &link.key {
            if self.registry.get(key) == Some(&conn) {
                self.registry.remove(key);
            }
        }
        Some(link)
    }

    fn link_lost(&mut self, now: Instant, conn: ConnId) {
        let Some(link) = self.forget_link(conn) else { return };
        // RFC 4976 s.6.3: "If the client's connection is closed and then reopened, the URI
        // MUST be invalidated": an AUTH on it fails, and so does a Use-Path it gave.
        for (key, slot) in self.auths.iter_mut().filter(|(_, slot)| slot.conn == conn) {
            slot.client.link_lost();
            drain_auth(*key, slot, &mut self.links, &mut self.ready);
        }
        self.auths.retain(|_, slot| slot.conn != conn);
        self.router.connection_closed(conn);
        for key in &link.sessions {
            if let Some(slot) = self.sessions.get_mut(key) {
                slot.conn = None;
                let _ = slot.session.handle(now, session::Input::LinkDown);
                drain_events(*key, &mut slot.session, &mut self.ready);
            }
        }
        self.ready.push_back(Output::LinkDown { conn, sessions: link.sessions });
    }

    /// Closes the links whose deadline passed.
    fn expire_links(&mut self, now: Instant) {
        let expired: Vec<(ConnId, LinkTimeout)> = self
            .links
            .iter()
            .filter_map(|(conn, link)| {
                link.deadline(&self.config).filter(|(at, _)| *at <= now).map(|(_, why)| (*conn, why))
            })
            .collect();
        for (conn, timeout) in expired {
            self.ready.push_back(Output::LinkTimedOut { conn, timeout });
            self.ready.push_back(Output::Close { conn });
            self.link_lost(now, conn);
        }
    }

    /// Routes the frames the link's framer holds, until it needs more bytes
    /// or the answers owed on the link reach their bound.
    fn read_frames(&mut self, now: Instant, conn: ConnId) {
        loop {
            let Some(link) = self.links.get_mut(&conn) else { return };
            if link.owed_since.is_some() {
                return;
            }
            if link.owed(&self.sessions) >= self.config.max_owed_frames {
                // The peer writes requests faster than it reads the answers:
                // stop reading (the framer keeps the rest of the segment)
                // until the answers drain, and close the link at the deadline.
                link.owed_since = Some(now);
                self.update_reading(conn);
                return;
            }
            let Some(event) = link.framer.poll_event() else { return };
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    // The framing is lost: the link MUST close (framer docs).
                    self.ready.push_back(Output::LinkError { conn, error });
                    self.ready.push_back(Output::Close { conn });
                    self.link_lost(now, conn);
                    return;
                }
            };
            let current = link.target;
            let single = match link.sessions.as_slice() {
                [only] => Some(*only),
                _ => None,
            };
            let target = match &event {
                // The answer to an AUTH in flight on the link goes to its client.
                FramerEvent::Head(head) if !head.is_request() && self.auth_answered(now, conn, head) => Target::None,
                FramerEvent::Head(head) => {
                    // RFC 4975 s.7.3: requests (and our responses) are
                    // routed by their To-Path; the router binds a passive
                    // session to the link its first request came on.
                    let to_path: Vec<MsrpUri> = head.to_path_uris().collect();
                    let unbound = to_path.first().is_some_and(|uri| self.router.connection(uri).is_none());
                    if !head.is_request() && unbound {
                        // A response binds nothing (s.5.4: the first
                        // *request* does); with no session on the link there
                        // is no transaction it can answer.
                        Target::None
                    } else {
                        match self.router.route(conn, to_path.iter()) {
                            Route::Session(key) => {
                                self.bind_passive(now, key, conn);
                                Target::Session(key)
                            }
                            Route::Reject(status) => {
                                if let (Some(refused), Some(link)) = (refusal(head, status), self.links.get_mut(&conn))
                                {
                                    link.control.push_back(refused);
                                }
                                Target::None
                            }
                        }
                    }
                }
                // Its To-Path is unknown: only a link's single session can answer it.
                FramerEvent::Rejected { .. } => single.map_or(Target::None, Target::Session),
                FramerEvent::Body(_) | FramerEvent::End(_) => current,
            };
            let Some(link) = self.links.get_mut(&conn) else { return };
            // A head's target holds for its body and end; then nothing is open.
            link.target = match &event {
                FramerEvent::Head(_) | FramerEvent::Body(_) => target,
                FramerEvent::End(_) | FramerEvent::Rejected { .. } => Target::None,
            };
            if let Target::Session(key) = target {
                if let Some(slot) = self.sessions.get_mut(&key) {
                    let _ = slot.session.handle(now, session::Input::Frame(event));
                    drain_events(key, &mut slot.session, &mut self.ready);
                }
            }
        }
    }

    /// Hands `head` to the AUTH client on `conn` whose request it answers;
    /// `false` when it answers none.
    fn auth_answered(&mut self, now: Instant, conn: ConnId, head: &crate::wire::FrameHead) -> bool {
        let answers = |slot: &AuthSlot| {
            slot.conn == conn && slot.client.pending_transaction().is_some_and(|t| t.as_str() == head.txid())
        };
        let Some((key, slot)) = self.auths.iter_mut().find(|(_, slot)| answers(slot)) else { return false };
        slot.client.handle_response(head, now, slot.ids.as_mut());
        drain_auth(*key, slot, &mut self.links, &mut self.ready);
        self.mark(Some(conn));
        true
    }

    /// A routed frame's session is on `conn` (a passive one may be new to it).
    fn bind_passive(&mut self, now: Instant, key: SessionKey, conn: ConnId) {
        let Some(slot) = self.sessions.get_mut(&key) else { return };
        if slot.conn == Some(conn) {
            return;
        }
        let Some(link) = self.links.get_mut(&conn) else { return };
        slot.conn = Some(conn);
        link.sessions.push(key);
        if !self.dirty.contains(&conn) {
            self.dirty.push(conn);
        }
        if !slot.session.is_link_up() {
            let _ = slot.session.handle(now, session::Input::LinkUp);
        }
    }

    /// Writes what the windows allow on every link that may have changed.
    pub(crate) fn flush_all(&mut self) {
        loop {
            let mut conns = std::mem::replace(&mut self.dirty, std::mem::take(&mut self.scratch));
            conns.sort_unstable();
            for conn in &conns {
                self.flush(*conn);
            }
            let mut resumed = false;
            for conn in &conns {
                resumed |= self.resume_if_drained(*conn);
            }
            conns.clear();
            self.scratch = conns;
            if !resumed {
                break;
            }
        }
    }

    /// A link stopped for owed answers reads again once half of them are
    /// written; `true` when it did (its held frames were read: flush again).
    fn resume_if_drained(&mut self, conn: ConnId) -> bool {
        let low_water = self.config.max_owed_frames / 2;
        let Some(link) = self.links.get_mut(&conn) else { return false };
        if link.owed_since.is_none() || link.owed(&self.sessions) > low_water {
            return false;
        }
        link.owed_since = None;
        self.update_reading(conn);
        let now = self.last_now;
        self.read_frames(now, conn);
        self.mark(Some(conn));
        true
    }

    fn flush(&mut self, conn: ConnId) {
        let window = self.config.link_window;
        let Some(link) = self.links.get_mut(&conn) else { return };
        if !link.up {
            return;
        }
        let sessions = &mut self.sessions;
        while link.in_flight < window {
            let mut from = None;
            let transmit = if let Some(writer) = link.writer {
                let contended = !link.control.is_empty()
                    || link
                        .sessions
                        .iter()
                        .any(|k| *k != writer && sessions.get(k).is_some_and(|s| s.session.wants_link()));
                let Some(slot) = sessions.get_mut(&writer) else {
                    link.writer = None;
                    continue;
                };
                let transmit = slot.session.poll_transmit(contended);
                if !slot.session.has_open_frame() {
                    link.writer = None;
                }
                from = Some(writer);
                match transmit {
                    Some(transmit) => transmit,
                    None if link.writer.is_none() => continue,
                    None => break,
                }
            } else if let Some(control) = link.control.pop_front() {
                control
            } else {
                let n = link.sessions.len();
                let mut found = None;
                for i in 0..n {
                    let index = (link.next + i) % n;
                    let key = link.sessions[index];
                    if !sessions.get(&key).is_some_and(|s| s.session.wants_link()) {
                        continue;
                    }
                    let contended = link
                        .sessions
                        .iter()
                        .any(|k| *k != key && sessions.get(k).is_some_and(|s| s.session.wants_link()));
                    let Some(slot) = sessions.get_mut(&key) else { continue };
                    if let Some(transmit) = slot.session.poll_transmit(contended) {
                        link.next = (index + 1) % n;
                        if slot.session.has_open_frame() {
                            link.writer = Some(key);
                        }
                        found = Some((key, transmit));
                        break;
                    }
                }
                let Some((key, transmit)) = found else { break };
                from = Some(key);
                transmit
            };
            link.in_flight += transmit.len();
            self.ready.push_back(Output::Transmit { conn, transmit });
            if let Some(key) = from {
                if let Some(slot) = sessions.get_mut(&key) {
                    drain_events(key, &mut slot.session, &mut self.ready);
                }
            }
        }
    }

    /// Holds a link's reading back, or lets it go: a relay whose members'
    /// queues are full stops reading their source ([`Output::PauseReading`]
    /// once per change; owed answers may still keep it stopped).
    pub fn set_reading(&mut self, conn: ConnId, read: bool) {
        let Some(link) = self.links.get_mut(&conn) else { return };
        link.held_back = !read;
        self.update_reading(conn);
    }

    /// Tells the runtime to stop or resume reading a link, once per change.
    fn update_reading(&mut self, conn: ConnId) {
        let Some(link) = self.links.get_mut(&conn) else { return };
        let pause = link.held_back || link.owed_since.is_some();
        if link.paused != pause {
            link.paused = pause;
            self.ready.push_back(if pause { Output::PauseReading { conn } } else { Output::ResumeReading { conn } });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    /// RFC 4975 s.5.4 and s.6.1: one key for the same scheme, host (IP
    /// literals in canonical form, names in any case), port and transport.
    #[test]
    fn link_keys_normalize_the_host_and_keep_the_transport() {
        let key = |uri: &str| LinkKey::of(&MsrpUri::parse_str(uri).unwrap()).unwrap();
        assert_eq!(key("msrp://[2001:DB8:0::1]:7000/s;tcp"), key("msrp://[2001:db8::1]:7000/t;TCP"));
        assert_eq!(key("msrp://Relay.Example.com:7000/s;tcp").to_string(), "relay.example.com:7000");
        assert_eq!(key("msrp://[2001:db8::1]:7000/s;tcp").to_string(), "[2001:db8::1]:7000");
        assert_ne!(key("msrp://h:7000/s;tcp"), key("msrps://h:7000/s;tcp"));
        assert_ne!(key("msrp://h:7000/s;tcp"), key("msrp://h:7000/s;ws"));
        assert!(key("msrps://h:7000/s;tcp").is_tls());
    }
}
