//! The relay machine: connections, AUTH, grants, forwarding, timers.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

#[path = "relay_auth.rs"]
mod auth;

use super::config::{is_websocket, CredentialStore, RelayConfig};
use super::frames::{answer_to, reason, rewrite_head, EndLineGuard};
use crate::id::{IdSource, TransactionId};
use crate::link::{normalize_host, LinkKey};
use crate::router::ConnId;
use crate::uri::MsrpUri;
use crate::wire::{ByteRange, Encoder, FailureReport, Flag, Frame, FrameHead, Framer, FramerEvent, Limits, Method};
use crate::ParseError;

/// Where the relay's own connection ids start: the runtime names the
/// connections it accepts with ids below this, the relay names those it
/// opens ([`Output::Connect`]) from here on.
pub const OPENED_CONN_BASE: u64 = 1 << 63;

/// What the runtime tells the relay.
#[derive(Debug)]
#[non_exhaustive]
pub enum Input {
    /// A connection accepted on listener `listener` (an index of
    /// [`RelayConfig::listeners`]); its id is below [`OPENED_CONN_BASE`].
    Accepted {
        /// The connection.
        conn: ConnId,
        /// Its listener.
        listener: usize,
    },
    /// A connection asked for with [`Output::Connect`] is up.
    Connected {
        /// The connection.
        conn: ConnId,
    },
    /// Bytes read.
    Received {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        data: Bytes,
    },
    /// Bytes of [`Output::Write`]s written.
    Written {
        /// The connection.
        conn: ConnId,
        /// How many.
        bytes: usize,
    },
    /// The connection is gone (or could not be opened).
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// A deadline may have passed.
    Timeout,
}

/// Why the relay closes a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// No successful request within the probation (RFC 4976 s.6.1).
    Probation,
    /// Too many failed AUTHs (s.6.1, s.6.3).
    AuthFailures,
    /// A request not for the relay (s.6.2: "immediately drops the
    /// corresponding connection").
    NotForRelay,
    /// The peer broke the framing.
    Framing(ParseError),
    /// Nothing read or written for [`RelayConfig::idle_timeout`].
    Idle,
    /// More than [`RelayConfig::max_owed_frames`] answers waiting: the peer
    /// does not read.
    NotReading,
}

/// What the relay asks of the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Open a connection toward `link` (TLS for `msrps`) named `conn`.
    Connect {
        /// The id it gets (from [`OPENED_CONN_BASE`] on).
        conn: ConnId,
        /// Where to.
        link: LinkKey,
    },
    /// Write `data` (acknowledge it with [`Input::Written`]).
    Write {
        /// The connection.
        conn: ConnId,
        /// The bytes, in order after the previous ones.
        data: Bytes,
        /// Whether they end an MSRP frame: over WebSocket, where each chunk
        /// is one message (RFC 7977 s.5.1), the message goes when this is set.
        frame_end: bool,
    },
    /// Close the connection.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
    },
    /// Stop reading the connection.
    PauseReading {
        /// The connection.
        conn: ConnId,
    },
    /// Read it again.
    ResumeReading {
        /// The connection.
        conn: ConnId,
    },
    /// A client authenticated and got `use_path`.
    Authenticated {
        /// Its connection.
        conn: ConnId,
        /// The Digest user (empty without a challenge).
        username: String,
        /// The URI handed out.
        use_path: MsrpUri,
    },
}

/// What a [`Relay`] holds ([`Relay::held`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Held {
    /// Connections, accepted or opened.
    pub connections: usize,
    /// Use-Path URIs valid now (at most [`RelayConfig::max_grants`]).
    pub grants: usize,
    /// Forwarded requests awaiting a response (at most [`RelayConfig::max_pending`]).
    pub pending: usize,
    /// Nonces issued and not yet used (at most [`RelayConfig::max_nonces`]).
    pub nonces: usize,
    /// Deadlines kept, live or stale (about twice the live ones at most).
    pub timers: usize,
}

/// A Use-Path URI handed out (RFC 4976 s.6.3).
#[derive(Debug)]
struct Grant {
    /// The connection it was issued on, the only one it routes across.
    conn: ConnId,
    /// The previous hop toward the client (the AUTH's first From-Path URI).
    client: MsrpUri,
    expires_at: Instant,
}

/// A frame on its way to the next hop.
#[derive(Debug)]
struct Forward {
    out: ConnId,
    /// The transaction id it goes out with.
    tid: TransactionId,
    /// The request or response as it came in.
    original: FrameHead,
    /// The URI of the relay the frame was addressed to (moved to From-Path).
    moved: MsrpUri,
    /// The head to write.
    head: Bytes,
    /// Body bytes passed on.
    bytes: u64,
    /// Body bytes in the chunk being written (a connection with a largest
    /// chunk gets the body cut into chunks of at most that).
    chunk_bytes: usize,
    /// The check of the body against a new end-line, when the frame got a
    /// new transaction id.
    guard: Option<EndLineGuard>,
}

/// What a connection's reader is doing with the current frame.
#[derive(Debug)]
enum Reading {
    Idle,
    /// Waiting for its next hop (busy, connecting, or full).
    Waiting(Box<Forward>),
    /// Head written to the next hop; the body follows it.
    Streaming(Box<Forward>),
    /// A request to the relay itself (AUTH), handled at its end.
    Local(FrameHead),
    /// A frame read to its end and dropped; `answer` is owed then.
    Skipping {
        head: Option<FrameHead>,
        answer: Option<u16>,
    },
}

#[derive(Debug)]
struct Conn {
    framer: Framer,
    /// The listener it came in on; `None` for one the relay opened.
    listener: Option<usize>,
    /// The link it serves, for one the relay opened.
    link: Option<LinkKey>,
    up: bool,
    /// Until when it must have a successful request (RFC 4976 s.6.1).
    probation_until: Option<Instant>,
    failed_auth: u32,
    last_active: Instant,
    reading: Reading,
    /// Since when its reader has been held back, if it is.
    blocked_since: Option<Instant>,
    /// When its one live [`Timer::Conn`] fires.
    armed_at: Instant,
    paused: bool,
    /// Bytes written, not acknowledged.
    in_flight: usize,
    /// The connection whose frame is being written here.
    streamer: Option<ConnId>,
    /// Connections whose frames wait to be written here.
    waiting: VecDeque<ConnId>,
    /// Small frames (responses, REPORTs) to write between streamed ones.
    owed: VecDeque<Bytes>,
    /// Use-Path URIs valid on it.
    grants: usize,
    /// The largest chunk body written to it: a WebSocket connection takes
    /// each chunk as one message (RFC 7977 s.5.1).
    max_chunk: Option<usize>,
}

impl Conn {
    fn new(limits: Limits, listener: Option<usize>, link: Option<LinkKey>, now: Instant, probation: Duration) -> Self {
        Self {
            framer: Framer::new(limits),
            // Only accepted connections are on probation.
            probation_until: listener.map(|_| now + probation),
            up: listener.is_some(),
            listener,
            link,
            failed_auth: 0,
            last_active: now,
            reading: Reading::Idle,
            blocked_since: None,
            armed_at: now,
            paused: false,
            in_flight: 0,
            streamer: None,
            waiting: VecDeque::new(),
            owed: VecDeque::new(),
            max_chunk: None,
            grants: 0,
        }
    }
}

/// What reads the rest of a request whose forwarding was aborted: the hop
/// still answers a SEND when its chunk ends (RFC 4976 s.6.4.1: the 200
/// "indicates the successful receipt of a message fragment"; the failure
/// went as a REPORT).
fn skipping_after_abort(original: FrameHead) -> Reading {
    let answer = (original.method() == Some(Method::Send)).then_some(200);
    Reading::Skipping { head: Some(original), answer }
}

/// A forwarded request awaiting its response.
#[derive(Debug)]
struct Pending {
    /// Where the request came from.
    inbound: ConnId,
    forward: PendingKind,
    deadline: Instant,
}

#[derive(Debug)]
enum PendingKind {
    /// A SEND: a failure becomes a REPORT to its sender (RFC 4976 s.6.4.1).
    Send { original: FrameHead, moved: MsrpUri, bytes: u64 },
    /// Another request: its response goes back under its own id.
    EndToEnd { original_tid: TransactionId },
}

/// What a deadline is for. Entries go stale (a connection re-armed, a
/// transaction answered, a grant gone): each is checked when it fires, and
/// the heap is rebuilt from what is live when stale ones outnumber it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Conn(ConnId),
    Pending(ConnId, TransactionId),
    Grant(String),
    /// The oldest nonce's end.
    Nonces,
}

/// An RFC 4976 relay.
pub struct Relay {
    config: RelayConfig,
    /// The listeners' hosts, normalized, and ports.
    hosts: Vec<(String, Option<u16>)>,
    users: Box<dyn CredentialStore + Send>,
    conns: HashMap<ConnId, Conn>,
    links: HashMap<LinkKey, ConnId>,
    grants: HashMap<String, Grant>,
    nonces: HashMap<String, Instant>,
    nonce_order: VecDeque<String>,
    pending: HashMap<(ConnId, TransactionId), Pending>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    next_conn: u64,
    /// Connections the relay opened and holds.
    opened: usize,
    ready: VecDeque<ConnId>,
    /// Connections to close once the input at hand is handled.
    closing: VecDeque<(ConnId, CloseReason)>,
    out: VecDeque<Output>,
    encoder: Encoder,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("conns", &self.conns.len())
            .field("grants", &self.grants.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay for `config` whose users are in `users`.
    #[must_use]
    pub fn new(config: RelayConfig, users: Box<dyn CredentialStore + Send>) -> Self {
        let hosts = config.listeners.iter().map(|l| (normalize_host(l.host()), l.port())).collect();
        Self {
            config,
            hosts,
            users,
            conns: HashMap::new(),
            links: HashMap::new(),
            grants: HashMap::new(),
            nonces: HashMap::new(),
            nonce_order: VecDeque::new(),
            pending: HashMap::new(),
            timers: BinaryHeap::new(),
            next_conn: OPENED_CONN_BASE,
            opened: 0,
            ready: VecDeque::new(),
            closing: VecDeque::new(),
            out: VecDeque::new(),
            encoder: Encoder::new(),
        }
    }

    /// What the relay holds that peers could try to grow.
    #[must_use]
    pub fn held(&self) -> Held {
        Held {
            connections: self.conns.len(),
            grants: self.grants.len(),
            pending: self.pending.len(),
            nonces: self.nonces.len(),
            timers: self.timers.len(),
        }
    }

    /// Whether the relay holds `conn` (a connection it asked to open may be
    /// gone before it is up: the runtime then lets it go).
    #[must_use]
    pub fn has_connection(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }

    /// The next output; drain until `None` after every [`Relay::handle`].
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Input::Timeout`] is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: Input, now: Instant, ids: &mut dyn IdSource) {
        match input {
            Input::Accepted { conn, listener } => {
                let listener = listener.min(self.config.listeners.len().saturating_sub(1));
                let mut c = Conn::new(self.config.limits.clone(), Some(listener), None, now, self.config.probation);
                if self.config.listeners.get(listener).is_some_and(is_websocket) {
                    c.max_chunk = Some(self.config.websocket_chunk.max(1));
                }
                self.conns.insert(conn, c);
                // RFC 4976 s.6.1: "the server waits for up to 30 seconds to receive an MSRP request".
                self.arm(now + self.config.probation.min(self.config.idle_timeout), Timer::Conn(conn));
            }
            Input::Connected { conn } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.up = true;
                    c.last_active = now;
                    self.arm(now + self.config.idle_timeout, Timer::Conn(conn));
                    self.start_next(conn, now, ids);
                }
            }
            Input::Received { conn, data } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.last_active = now;
                    c.framer.handle_segment(data);
                    self.ready.push_back(conn);
                }
            }
            Input::Written { conn, bytes } => {
                let Some(c) = self.conns.get_mut(&conn) else { return self.run(now, ids) };
                c.in_flight = c.in_flight.saturating_sub(bytes);
                c.last_active = now;
                let (streamer, owed) = (c.streamer, !c.owed.is_empty());
                match streamer {
                    Some(streamer) => self.ready.push_back(streamer),
                    // What is owed goes out first, then the next frame waiting for it.
                    None if owed && self.flush_owed(conn) => self.start_next(conn, now, ids),
                    None => {}
                }
            }
            Input::Closed { conn } => self.lost(conn, now, ids),
            Input::Timeout => self.expire(now, ids),
        }
        self.run(now, ids);
    }

    fn arm(&mut self, at: Instant, timer: Timer) {
        if let Timer::Conn(conn) = &timer {
            match self.conns.get_mut(conn) {
                Some(c) => c.armed_at = at,
                None => return,
            }
        }
        self.timers.push(Reverse((at, timer)));
        let live = self.conns.len() + self.grants.len() + self.pending.len();
        if self.timers.len() > 2 * live + 1024 {
            self.rebuild_timers();
        }
    }

    /// The heap from the live deadlines only.
    fn rebuild_timers(&mut self) {
        let conns = self.conns.iter().map(|(id, c)| Reverse((c.armed_at, Timer::Conn(*id))));
        let grants = self.grants.iter().map(|(sid, g)| Reverse((g.expires_at, Timer::Grant(sid.clone()))));
        let pending =
            self.pending.iter().map(|((conn, tid), p)| Reverse((p.deadline, Timer::Pending(*conn, tid.clone()))));
        let nonces = self.nonce_order.front().and_then(|n| self.nonces.get(n)).map(|at| Reverse((*at, Timer::Nonces)));
        self.timers = conns.chain(grants).chain(pending).chain(nonces).collect();
    }

    /// Drives every connection that may have something to read.
    fn run(&mut self, now: Instant, ids: &mut dyn IdSource) {
        loop {
            while let Some(conn) = self.ready.pop_front() {
                self.drive(conn, now, ids);
            }
            let Some((conn, reason)) = self.closing.pop_front() else { return };
            self.close(conn, reason, now, ids);
        }
    }

    /// Reads `conn`'s frames until its reader is held back or has nothing.
    fn drive(&mut self, conn: ConnId, now: Instant, ids: &mut dyn IdSource) {
        loop {
            let Some(c) = self.conns.get(&conn) else { return };
            let window = self.config.write_window;
            // A peer whose answers pile up (it does not read them) is not read either.
            let answers_owed = c.owed.len() >= self.config.max_owed_frames / 2;
            let held = answers_owed
                || match &c.reading {
                    Reading::Waiting(_) => true,
                    Reading::Streaming(f) => self.conns.get(&f.out).map_or(true, |o| o.in_flight >= window),
                    _ => false,
                };
            let Some(c) = self.conns.get_mut(&conn) else { return };
            if held {
                if !c.paused {
                    c.paused = true;
                    self.out.push_back(Output::PauseReading { conn });
                }
                if c.blocked_since.is_none() {
                    c.blocked_since = Some(now);
                    let at = now + self.config.stall_timeout;
                    if at < c.armed_at {
                        self.arm(at, Timer::Conn(conn));
                    }
                }
                return;
            }
            c.blocked_since = None;
            let Some(event) = c.framer.poll_event() else {
                if c.paused {
                    c.paused = false;
                    self.out.push_back(Output::ResumeReading { conn });
                }
                // A chunk whose sender stops in the middle holds its next hop: it gets the
                // same deadline as a chunk the next hop does not take.
                if matches!(c.reading, Reading::Streaming(_)) {
                    c.blocked_since = Some(now);
                    let at = now + self.config.stall_timeout;
                    if at < c.armed_at {
                        self.arm(at, Timer::Conn(conn));
                    }
                }
                return;
            };
            match event {
                Ok(FramerEvent::Head(head)) => self.on_head(conn, head, now, ids),
                Ok(FramerEvent::Body(piece)) => self.on_body(conn, piece, now, ids),
                Ok(FramerEvent::End(flag)) => self.on_end(conn, flag, now, ids),
                // A frame whose head broke a rule has no paths we could trust to answer along
                // (or to forward on): it is dropped.
                Ok(FramerEvent::Rejected { .. }) => {}
                Err(error) => return self.close(conn, CloseReason::Framing(error), now, ids),
            }
        }
    }

    /// Whether `uri` names this relay (a listener's host, and port when it has one).
    fn is_ours(&self, uri: &MsrpUri) -> bool {
        let port_matches = |port: &Option<u16>| uri.port().map_or(true, |p| *port == Some(p));
        // As written first (no allocation on the path every frame takes), then normalized.
        self.hosts.iter().any(|(h, port)| h.eq_ignore_ascii_case(uri.host()) && port_matches(port)) || {
            let host = normalize_host(uri.host());
            self.hosts.iter().any(|(h, port)| *h == host && port_matches(port))
        }
    }

    fn on_head(&mut self, conn: ConnId, head: FrameHead, now: Instant, ids: &mut dyn IdSource) {
        if !head.is_request() {
            self.on_response(conn, head, ids);
            return;
        }
        let mut to_path = head.to_path_uris();
        let first = to_path.next();
        let next = to_path.next();
        drop(to_path);
        let Some(first) = first.filter(|u| self.is_ours(u)) else {
            // RFC 4976 s.6.2: "If the request is not addressed to the relay, the relay
            // immediately drops the corresponding connection over which the request was received."
            return self.close(conn, CloseReason::NotForRelay, now, ids);
        };
        let grant = first.session_id().and_then(|sid| self.grants.get(sid)).filter(|g| g.expires_at > now);
        let (grant, next) = match (grant, next) {
            (None, None) if head.method() == Some(Method::Auth) => {
                self.set_reading(conn, Reading::Local(head));
                return;
            }
            (Some(grant), Some(next)) => (grant, next),
            // A method the relay does not know, addressed to the relay itself: RFC 4975 s.10.9
            // (501): "the recipient does not understand the request method".
            (None, None) if head.method() == Some(Method::Other) => {
                return self.set_reading(conn, Reading::Skipping { head: Some(head), answer: Some(501) });
            }
            // RFC 4976 s.6.3: "If a relay is requested to forward a message for which the URI
            // is not valid, the relay MUST discard the message"; we answer it as an endpoint
            // answers a request for no session (RFC 4975 s.7.3: 481).
            _ => return self.set_reading(conn, Reading::Skipping { head: Some(head), answer: Some(481) }),
        };
        // RFC 4976 s.6.4: "it verifies that either 1) the next hop is the next hop back toward
        // the client that obtained this URI, or 2) the previous hop was the correct previous hop
        // coming from the client that obtained this URI."
        let out = if grant.conn == conn {
            match self.link_for(&next, now) {
                Some(out) => out,
                None => return self.set_reading(conn, Reading::Skipping { head: Some(head), answer: Some(481) }),
            }
        } else if next == grant.client {
            grant.conn
        } else {
            return self.set_reading(conn, Reading::Skipping { head: Some(head), answer: Some(403) });
        };
        // A request whose answer the relay must watch, when it watches as many as it may:
        // refused at once rather than forwarded unwatched (RFC 4975 s.10.5, 413: "the
        // recipient wishes the sender to stop sending the message").
        let watched = match head.method() {
            Some(Method::Send) => head.failure_report() != Some(FailureReport::No),
            Some(Method::Report | Method::Other) | None => false,
            Some(_) => true,
        };
        if watched && self.pending.len() >= self.config.max_pending {
            return self.set_reading(conn, Reading::Skipping { head: Some(head), answer: Some(413) });
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.probation_until = None;
        }
        // RFC 4976 s.6.4: "Since transact-id values are not allowed to conflict on a given
        // connection, a relay will generally need to construct a new transact-id value for any
        // request that it forwards." The request keeps its own when it conflicts with nothing
        // on the next hop's connection (its body cannot hold that end-line: the framer that read
        // it would have ended the frame there); else it gets a fresh one, and its body is
        // checked against the new end-line as it streams.
        let original = head.transaction_id();
        let (tid, guard) = if self.tid_in_use(out, &original) {
            let tid = TransactionId::generate(ids);
            let guard = EndLineGuard::new(&tid);
            (tid, Some(guard))
        } else {
            (original, None)
        };
        // Over WebSocket each chunk is one message (RFC 7977 s.5.1): a chunk longer than the
        // connection takes is cut, and its end is left open (`*`) from the first piece.
        let max_chunk = self.conns.get(&out).and_then(|o| o.max_chunk);
        let range = head.byte_range().filter(|r| {
            let len = r.end.map_or(u64::MAX, |end| end.saturating_sub(r.start).saturating_add(1));
            max_chunk.is_some_and(|max| len > max as u64)
        });
        let range = range.map(|r| ByteRange { end: None, ..r });
        let Some(rewritten) = rewrite_head(&head, tid.as_str(), first.as_str(), head.has_body(), range) else {
            return self.set_reading(conn, Reading::Skipping { head: Some(head), answer: Some(400) });
        };
        let forward = Box::new(Forward {
            out,
            tid,
            original: head,
            moved: first,
            head: rewritten,
            bytes: 0,
            chunk_bytes: 0,
            guard,
        });
        self.set_reading(conn, Reading::Waiting(forward));
        if let Some(o) = self.conns.get_mut(&out) {
            o.waiting.push_back(conn);
        }
        self.start_next(out, now, ids);
    }

    /// Whether a request on `out` already has transaction id `tid`: one
    /// awaiting its response, or one being written there or waiting to be.
    fn tid_in_use(&self, out: ConnId, tid: &TransactionId) -> bool {
        if self.pending.contains_key(&(out, tid.clone())) {
            return true;
        }
        let Some(o) = self.conns.get(&out) else { return false };
        o.streamer.iter().chain(&o.waiting).any(|inbound| match self.conns.get(inbound).map(|c| &c.reading) {
            Some(Reading::Streaming(f) | Reading::Waiting(f)) => f.tid == *tid,
            _ => false,
        })
    }

    fn set_reading(&mut self, conn: ConnId, reading: Reading) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.reading = reading;
        }
    }

    /// The connection toward `next`: reused, or opened.
    fn link_for(&mut self, next: &MsrpUri, now: Instant) -> Option<ConnId> {
        let link = LinkKey::of(next)?;
        if let Some(conn) = self.links.get(&link) {
            return Some(*conn);
        }
        if self.opened >= self.config.max_opened_links {
            return None;
        }
        self.opened += 1;
        let conn = ConnId::new(self.next_conn);
        self.next_conn = self.next_conn.wrapping_add(1).max(OPENED_CONN_BASE);
        self.conns.insert(conn, Conn::new(self.config.limits.clone(), None, Some(link.clone()), now, Duration::ZERO));
        self.links.insert(link.clone(), conn);
        self.out.push_back(Output::Connect { conn, link });
        Some(conn)
    }

    /// Lets the next waiting frame onto `out` when it is free and up.
    fn start_next(&mut self, out: ConnId, now: Instant, ids: &mut dyn IdSource) {
        let Some(o) = self.conns.get_mut(&out) else { return };
        if o.streamer.is_some() || !o.up {
            return;
        }
        if !self.flush_owed(out) {
            // What is owed goes first; the next frame when the window opens.
            return;
        }
        let Some(o) = self.conns.get_mut(&out) else { return };
        let Some(inbound) = o.waiting.pop_front() else { return };
        o.streamer = Some(inbound);
        let Some(c) = self.conns.get_mut(&inbound) else {
            self.release(out, now, ids);
            return;
        };
        let Reading::Waiting(forward) = std::mem::replace(&mut c.reading, Reading::Idle) else {
            self.release(out, now, ids);
            return;
        };
        c.reading = Reading::Streaming(forward);
        self.write_out(out, None, inbound, false);
        self.ready.push_back(inbound);
    }

    /// Writes the head of `inbound`'s frame (the first time), or `data`
    /// (`frame_end` when it ends the frame).
    fn write_out(&mut self, out: ConnId, data: Option<Bytes>, inbound: ConnId, frame_end: bool) {
        let data = match data {
            Some(data) => data,
            None => match self.conns.get(&inbound).map(|c| &c.reading) {
                Some(Reading::Streaming(f)) => f.head.clone(),
                _ => return,
            },
        };
        if let Some(o) = self.conns.get_mut(&out) {
            o.in_flight += data.len();
            self.out.push_back(Output::Write { conn: out, data, frame_end });
        }
    }

    /// `out` is free again.
    fn release(&mut self, out: ConnId, now: Instant, ids: &mut dyn IdSource) {
        if let Some(o) = self.conns.get_mut(&out) {
            o.streamer = None;
        }
        self.start_next(out, now, ids);
    }

    fn on_body(&mut self, conn: ConnId, mut piece: Bytes, now: Instant, ids: &mut dyn IdSource) {
        loop {
            let Some(c) = self.conns.get(&conn) else { return };
            let Reading::Streaming(forward) = &c.reading else { return };
            let out = forward.out;
            let max_chunk = self.conns.get(&out).and_then(|o| o.max_chunk);
            let Some(c) = self.conns.get_mut(&conn) else { return };
            let Reading::Streaming(forward) = &mut c.reading else { return };
            let room = max_chunk.map_or(usize::MAX, |max| max.saturating_sub(forward.chunk_bytes));
            let part = if piece.len() > room { piece.split_to(room) } else { std::mem::take(&mut piece) };
            if !part.is_empty() {
                if forward.guard.as_mut().map_or(Ok(()), |guard| guard.check(&part)).is_err() {
                    // The body holds the end-line of the id we chose: it cannot go on unchanged.
                    // RFC 4975 s.7.1.1 lets a chunk end early; this one is aborted.
                    if let Reading::Streaming(forward) = std::mem::replace(&mut c.reading, Reading::Idle) {
                        let end = self.encoder.end_line(&forward.tid, Flag::Abort, forward.original.has_body());
                        self.write_out(out, Some(end), conn, true);
                        if forward.original.failure_report().unwrap_or(FailureReport::Yes) != FailureReport::No {
                            // RFC 4976 s.6.4.1: "if there is a problem processing the SEND
                            // request ... the relay MUST respond with an appropriate error
                            // response in a REPORT back to the original source".
                            self.report(conn, &forward.original, &forward.moved, forward.bytes, 400, ids);
                        }
                        self.set_reading(conn, skipping_after_abort(forward.original));
                        self.release(out, now, ids);
                    }
                    return;
                }
                forward.bytes += part.len() as u64;
                forward.chunk_bytes += part.len();
                self.write_out(out, Some(part), conn, false);
            }
            if piece.is_empty() {
                return;
            }
            self.next_chunk(conn, now, ids);
        }
    }

    /// Ends the chunk being written for `conn`'s frame with `+` and starts
    /// the next under a fresh id, from the next byte: RFC 4976 s.6.4.1, "The
    /// MSRP relay MAY further break up the message fragment received in the
    /// SEND request into smaller fragments", which RFC 7977 s.5.1 requires
    /// toward WebSocket clients ("MSRP chunking ... MUST be used by the
    /// WebSocket MSRP Servers to split the message"). A failure of the chunk
    /// that ended becomes a REPORT like any other.
    fn next_chunk(&mut self, conn: ConnId, now: Instant, ids: &mut dyn IdSource) {
        let deadline = now + self.config.transaction_timeout;
        let Some(c) = self.conns.get_mut(&conn) else { return };
        let Reading::Streaming(forward) = &mut c.reading else { return };
        let out = forward.out;
        let end = self.encoder.end_line(&forward.tid, Flag::Continue, true);
        let tid = TransactionId::generate(ids);
        let original_range = forward.original.byte_range().unwrap_or(ByteRange { start: 1, end: None, total: None });
        let range =
            ByteRange { start: original_range.start.saturating_add(forward.bytes), end: None, ..original_range };
        let Some(head) = rewrite_head(&forward.original, tid.as_str(), forward.moved.as_str(), true, Some(range))
        else {
            return;
        };
        let ended = std::mem::replace(&mut forward.tid, tid);
        forward.guard = Some(EndLineGuard::new(&forward.tid));
        forward.chunk_bytes = 0;
        let watched =
            (forward.original.failure_report().unwrap_or(FailureReport::Yes) != FailureReport::No).then(|| {
                PendingKind::Send {
                    original: forward.original.detached(),
                    moved: forward.moved.clone(),
                    bytes: forward.bytes,
                }
            });
        self.write_out(out, Some(end), conn, true);
        self.write_out(out, Some(head), conn, false);
        if let Some(kind) = watched.filter(|_| self.pending.len() < self.config.max_pending) {
            self.arm(deadline, Timer::Pending(out, ended.clone()));
            self.pending.insert((out, ended), Pending { inbound: conn, forward: kind, deadline });
        }
    }

    fn on_end(&mut self, conn: ConnId, flag: Flag, now: Instant, ids: &mut dyn IdSource) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        match std::mem::replace(&mut c.reading, Reading::Idle) {
            Reading::Streaming(forward) => {
                let out = forward.out;
                let end = self.encoder.end_line(&forward.tid, flag, forward.original.has_body());
                self.write_out(out, Some(end), conn, true);
                self.forwarded(conn, *forward, now);
                self.release(out, now, ids);
            }
            Reading::Local(head) => self.auth(conn, &head, now, ids),
            Reading::Skipping { head: Some(head), answer: Some(status) } => {
                if let Some(answer) = answer_to(&head, status, Vec::new()) {
                    self.send_small(conn, answer);
                }
            }
            Reading::Waiting(_) | Reading::Idle | Reading::Skipping { .. } => {}
        }
    }

    /// A frame went to its next hop: answer the previous hop, watch the next.
    fn forwarded(&mut self, inbound: ConnId, forward: Forward, now: Instant) {
        // What waits for the response is copied out of the read it came in.
        let original = forward.original.detached();
        let tid = if forward.guard.is_none() { original.transaction_id() } else { forward.tid };
        let deadline = now + self.config.transaction_timeout;
        let kind = match original.method() {
            // RFC 4975 s.7.1.2: REPORTs are never answered; RFC 4976 s.6.4.2: unknown methods are
            // forwarded "as if they were REPORT requests".
            Some(Method::Report | Method::Other) | None => return,
            Some(Method::Send) => {
                // RFC 4976 s.6.4.1: "If an incoming SEND request contains a Failure-Report header
                // with a value of "yes", an MSRP relay that receives that SEND request MUST
                // respond with a final response immediately."
                let failure_report = original.failure_report().unwrap_or(FailureReport::Yes);
                if failure_report == FailureReport::Yes {
                    if let Some(ok) = answer_to(&original, 200, Vec::new()) {
                        self.send_small(inbound, ok);
                    }
                }
                if failure_report == FailureReport::No {
                    return;
                }
                PendingKind::Send { moved: forward.moved, bytes: forward.bytes, original }
            }
            Some(_) => PendingKind::EndToEnd { original_tid: original.transaction_id() },
        };
        if self.pending.len() >= self.config.max_pending {
            return;
        }
        self.arm(deadline, Timer::Pending(forward.out, tid.clone()));
        self.pending.insert((forward.out, tid), Pending { inbound, forward: kind, deadline });
    }

    fn on_response(&mut self, conn: ConnId, head: FrameHead, ids: &mut dyn IdSource) {
        self.set_reading(conn, Reading::Skipping { head: None, answer: None });
        let key = (conn, head.transaction_id());
        // RFC 4976 s.6.4.3: "Relays receiving a response first verify that the first URI in
        // the To-Path corresponds to itself; if not, the response SHOULD be dropped."
        let mut to_path = head.to_path();
        let first = to_path.next().and_then(|u| MsrpUri::parse_str(u).ok()).filter(|u| self.is_ours(u));
        let more = to_path.next().is_some();
        let Some(first) = first else { return };
        let Some(pending) = self.pending.remove(&key) else { return };
        let status = head.status_code().unwrap_or(0);
        let original_tid = match pending.forward {
            PendingKind::Send { original, moved, bytes } => {
                // RFC 4976 s.6.4.3: "If the response is a non 200 response, and the original
                // request was a SEND request that had a Failure-Report header with a value other
                // than "no", then the relay MUST send a REPORT indicating the nature of the failure."
                if status != 200 {
                    self.report(pending.inbound, &original, &moved, bytes, status, ids);
                }
                original.transaction_id()
            }
            PendingKind::EndToEnd { original_tid } => original_tid,
        };
        if !more {
            return;
        }
        // "If there are additional URIs in the To-Path header, the relay MUST then move its URI
        // from the To-Path header, insert its URI in front of any other URIs in the From-Path
        // header, and forward the response to the next URI in the To-Path header." (A SEND's
        // receiver that answers along the whole From-Path gets its 200 to the sender too.)
        if let Some(bytes) = rewrite_head(&head, original_tid.as_str(), first.as_str(), false, None) {
            let mut frame = BytesMut::from(bytes.as_ref());
            frame.put_slice(&self.encoder.end_line(&original_tid, Flag::End, false));
            self.send_small(pending.inbound, frame.freeze());
        }
    }

    /// A failure REPORT for a forwarded SEND, to its sender (RFC 4976 s.6.4.1).
    fn report(
        &mut self,
        inbound: ConnId,
        original: &FrameHead,
        moved: &MsrpUri,
        bytes: u64,
        status: u16,
        ids: &mut dyn IdSource,
    ) {
        let to_path: Vec<MsrpUri> = original.from_path_uris().collect();
        let mut frame = Frame::bodiless("REPORT", to_path, vec![moved.clone()]);
        if let Some(id) = original.message_id_str() {
            frame = frame.with_header("Message-ID", id);
        }
        if let Some(mut range) = original.byte_range() {
            if range.end.is_none() {
                range.end = Some(range.start.saturating_add(bytes).saturating_sub(1));
            }
            frame = frame.with_byte_range(range);
        }
        let frame = frame.with_header("Status", &format!("000 {status} {}", reason(status)));
        if let Ok(t) = self.encoder.encode(&frame, ids) {
            let mut data = BytesMut::with_capacity(t.len());
            data.put_slice(&t.head);
            data.put_slice(&t.end_line);
            self.send_small(inbound, data.freeze());
        }
    }

    /// Writes a small frame on `conn` now, or after the frame being streamed there.
    fn send_small(&mut self, conn: ConnId, data: Bytes) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        if c.streamer.is_none() && c.up && c.owed.is_empty() && c.in_flight < self.config.write_window {
            c.in_flight += data.len();
            self.out.push_back(Output::Write { conn, data, frame_end: true });
        } else if c.owed.len() < self.config.max_owed_frames {
            c.owed.push_back(data);
        } else {
            // Closed once the input at hand is handled.
            self.closing.push_back((conn, CloseReason::NotReading));
        }
    }

    /// Writes what `conn` owes while its window has room and no frame is
    /// being written there; `true` when nothing is left owed.
    fn flush_owed(&mut self, conn: ConnId) -> bool {
        let window = self.config.write_window;
        let Some(c) = self.conns.get_mut(&conn) else { return true };
        if c.streamer.is_some() || !c.up {
            return c.owed.is_empty();
        }
        while c.in_flight < window {
            let Some(small) = c.owed.pop_front() else { break };
            c.in_flight += small.len();
            self.out.push_back(Output::Write { conn, data: small, frame_end: true });
        }
        // Its reader may have stopped for the answers it was owed (see `drive`).
        self.ready.push_back(conn);
        c.owed.is_empty()
    }

    /// Deadlines that passed.
    fn expire(&mut self, now: Instant, ids: &mut dyn IdSource) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, timer))) = self.timers.pop() else { break };
            match timer {
                Timer::Grant(sid) => {
                    if self.grants.get(&sid).is_some_and(|g| g.expires_at <= now) {
                        if let Some(grant) = self.grants.remove(&sid) {
                            if let Some(c) = self.conns.get_mut(&grant.conn) {
                                c.grants = c.grants.saturating_sub(1);
                            }
                        }
                    }
                }
                Timer::Pending(conn, tid) => {
                    let key = (conn, tid);
                    if self.pending.get(&key).is_some_and(|p| p.deadline <= now) {
                        if let Some(pending) = self.pending.remove(&key) {
                            self.unanswered(pending, ids);
                        }
                    }
                }
                Timer::Nonces => {
                    // Issued in order with one lifetime: the oldest end first.
                    while let Some(oldest) = self.nonce_order.front() {
                        match self.nonces.get(oldest) {
                            Some(end) if *end > now => break,
                            _ => {
                                let oldest = self.nonce_order.pop_front();
                                if let Some(oldest) = oldest {
                                    self.nonces.remove(&oldest);
                                }
                            }
                        }
                    }
                    let next = self.nonce_order.front().and_then(|n| self.nonces.get(n)).copied();
                    if let Some(next) = next {
                        self.arm(next, Timer::Nonces);
                    }
                }
                Timer::Conn(conn) => {
                    if self.conns.get(&conn).is_some_and(|c| c.armed_at == at) {
                        self.check_conn(conn, now, ids);
                    }
                }
            }
        }
    }

    /// A forwarded request that will get no response: a SEND's sender hears 408
    /// (RFC 4976 s.6.4.1: "the relay MUST construct a REPORT with a status code of 408").
    fn unanswered(&mut self, pending: Pending, ids: &mut dyn IdSource) {
        if let PendingKind::Send { original, moved, bytes } = pending.forward {
            if original.failure_report().unwrap_or(FailureReport::Yes) == FailureReport::Yes {
                self.report(pending.inbound, &original, &moved, bytes, 408, ids);
            }
        }
    }

    fn check_conn(&mut self, conn: ConnId, now: Instant, ids: &mut dyn IdSource) {
        let Some(c) = self.conns.get(&conn) else { return };
        // RFC 4976 s.6.1: "If no successful requests are sent during this probationary period,
        // the server closes the connection."
        if c.probation_until.is_some_and(|at| at <= now) {
            return self.close(conn, CloseReason::Probation, now, ids);
        }
        let idle_at = c.last_active + self.config.idle_timeout;
        let stalled_at = c.blocked_since.map(|b| b + self.config.stall_timeout);
        let busy = c.streamer.is_some() || !c.waiting.is_empty() || !matches!(c.reading, Reading::Idle);
        if stalled_at.is_some_and(|at| at <= now) {
            self.abort_stalled(conn, now, ids);
        }
        // RFC 4976 s.6.5: "If a connection has not been used in a significant time (more than
        // one hour), it MAY be closed."
        if idle_at <= now && !busy {
            return self.close(conn, CloseReason::Idle, now, ids);
        }
        let Some(c) = self.conns.get(&conn) else { return };
        let stalled_at = c.blocked_since.map(|b| b + self.config.stall_timeout);
        let next = [Some(idle_at), stalled_at, c.probation_until].into_iter().flatten().filter(|at| *at > now).min();
        self.arm(next.unwrap_or(now + self.config.idle_timeout), Timer::Conn(conn));
    }

    /// `conn`'s frame waited too long for its next hop: aborted there, its
    /// sender told (408), the rest of it read and dropped.
    fn abort_stalled(&mut self, conn: ConnId, now: Instant, ids: &mut dyn IdSource) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        c.blocked_since = None;
        let forward = match std::mem::replace(&mut c.reading, Reading::Idle) {
            Reading::Streaming(forward) => {
                let out = forward.out;
                let end = self.encoder.end_line(&forward.tid, Flag::Abort, forward.original.has_body());
                self.write_out(out, Some(end), conn, true);
                self.release(out, now, ids);
                forward
            }
            Reading::Waiting(forward) => {
                if let Some(o) = self.conns.get_mut(&forward.out) {
                    o.waiting.retain(|w| *w != conn);
                }
                forward
            }
            other => {
                self.set_reading(conn, other);
                return;
            }
        };
        if forward.original.method() == Some(Method::Send)
            && forward.original.failure_report().unwrap_or(FailureReport::Yes) != FailureReport::No
        {
            self.report(conn, &forward.original, &forward.moved, forward.bytes, 408, ids);
        }
        self.set_reading(conn, skipping_after_abort(forward.original));
        self.ready.push_back(conn);
    }

    fn close(&mut self, conn: ConnId, reason: CloseReason, now: Instant, ids: &mut dyn IdSource) {
        if self.conns.contains_key(&conn) {
            self.out.push_back(Output::Close { conn, reason });
            self.lost(conn, now, ids);
        }
    }

    /// `conn` is gone: what it carried or waited for ends.
    fn lost(&mut self, conn: ConnId, now: Instant, ids: &mut dyn IdSource) {
        let Some(c) = self.conns.remove(&conn) else { return };
        if let Some(link) = &c.link {
            self.links.remove(link);
            self.opened = self.opened.saturating_sub(1);
        }
        // RFC 4976 s.6.3: "If the client's connection is closed and then reopened, the URI
        // MUST be invalidated."
        self.grants.retain(|_, g| g.conn != conn);
        // Its own frame, streaming or waiting elsewhere.
        match c.reading {
            Reading::Streaming(forward) => {
                let end = self.encoder.end_line(&forward.tid, Flag::Abort, forward.original.has_body());
                self.write_out(forward.out, Some(end), conn, true);
                self.release(forward.out, now, ids);
            }
            Reading::Waiting(forward) => {
                if let Some(o) = self.conns.get_mut(&forward.out) {
                    o.waiting.retain(|w| *w != conn);
                }
            }
            _ => {}
        }
        // Frames that were going to it.
        for inbound in c.streamer.into_iter().chain(c.waiting) {
            let Some(i) = self.conns.get_mut(&inbound) else { continue };
            if let Reading::Streaming(forward) | Reading::Waiting(forward) =
                std::mem::replace(&mut i.reading, Reading::Skipping { head: None, answer: None })
            {
                if forward.original.method() == Some(Method::Send)
                    && forward.original.failure_report().unwrap_or(FailureReport::Yes) != FailureReport::No
                {
                    self.report(inbound, &forward.original, &forward.moved, forward.bytes, 408, ids);
                }
                self.set_reading(inbound, skipping_after_abort(forward.original));
            }
            self.ready.push_back(inbound);
        }
        let lost: Vec<(ConnId, TransactionId)> = self.pending.keys().filter(|(out, _)| *out == conn).cloned().collect();
        for key in lost {
            if let Some(pending) = self.pending.remove(&key) {
                self.unanswered(pending, ids);
            }
        }
        self.pending.retain(|_, p| p.inbound != conn);
    }
}
