//! The SIP transaction layer (RFC 3261 s.17) as a sans-IO machine.
//!
//! [`TransactionLayer`] holds every client and server transaction of one SIP
//! element: INVITE and non-INVITE, each with the RFC's timers
//! (A B D E F G H I J K, and L M of RFC 6026). The transaction user (a user
//! agent core, a proxy core) feeds it [`Input`]s and drains [`Output`]s:
//!
//! - `handle(now, input)`, then `poll_output()` until `None`, then
//!   `poll_timeout()` (the drain contract every machine of this workspace has);
//! - bad peer input never returns `Err`: it is dropped and reported as
//!   [`Event::PeerError`]; [`UsageError`] is only for the caller's mistakes.
//!
//! Decisions:
//! - **RFC 6026 is implemented**: a 2xx moves an INVITE client transaction
//!   to *Accepted* (Timer M = 64*T1; every further 2xx goes to the
//!   transaction user) and an INVITE server transaction to *Accepted*
//!   (Timer L = 64*T1; retransmitted INVITEs are absorbed, matching ACKs and
//!   the core's 2xx retransmissions pass through). The 2xx and its ACK are
//!   end to end, so the user agent core retransmits the 2xx (s.13.3.1.4) and
//!   sends the ACK ([`Command::Stateless`]).
//! - **Matching** (s.17.1.3, s.17.2.3): a response matches the client
//!   transaction of its top Via branch and CSeq method. A request whose branch
//!   starts with the magic cookie matches by branch, sent-by and method (ACK
//!   matching INVITE); any other request falls back to the RFC 2543 rule:
//!   Request-URI, From tag, Call-ID, CSeq number, method and top Via. The
//!   To tag is not compared (it differs between an INVITE and its ACK, and
//!   the RFC 2543 element's request is absorbed either way). A CANCEL is
//!   related to the INVITE it cancels by the same keys with the method
//!   INVITE (s.9.2), see [`Event::RequestReceived::cancels`].
//! - **Reliable flows** (s.17.1.1.2, s.17.1.2.2, s.17.2.1, s.17.2.2): no
//!   retransmission timers (A, E, G), Timers D, K, I, J are zero; Timers B, F,
//!   H, L, M still apply.
//! - The INVITE server transaction sends 100 Trying after
//!   [`TransactionConfig::set_trying_delay`] (200 ms) unless the core
//!   responded first (s.17.2.1).
//! - Responses go back on the flow the request came from (s.18.2.2 reduced
//!   to flows: the runtime maps a flow to its socket).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;

use crate::ids::{stateless_token, MAGIC_COOKIE};
pub use crate::ids::{ClientId, FlowId, ServerId};
use crate::sip::{parse_datagram, Limits, Message, MessageBuilder};

/// Whether a flow delivers reliably (TCP, TLS, SCTP, WS) or not (UDP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Transport {
    /// A reliable, ordered stream: no retransmissions.
    Reliable,
    /// Datagrams that may be lost, duplicated or reordered.
    Unreliable,
}

impl Transport {
    /// The Via transport token this stack writes (`TCP` or `UDP`).
    #[must_use]
    pub const fn via_token(self) -> &'static str {
        match self {
            Self::Reliable => "TCP",
            Self::Unreliable => "UDP",
        }
    }
}

/// The timer values of RFC 3261 s.17 (Table 4 of Appendix A).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionConfig {
    t1: Duration,
    t2: Duration,
    t4: Duration,
    trying_delay: Duration,
    limits: Limits,
    max_server_transactions: usize,
    retry_after: Duration,
}

impl Default for TransactionConfig {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            trying_delay: Duration::from_millis(200),
            limits: Limits::default(),
            max_server_transactions: 4096,
            retry_after: Duration::from_secs(10),
        }
    }
}

impl TransactionConfig {
    /// T1, the RTT estimate (default 500 ms; at least 1 ms).
    pub fn set_t1(&mut self, t1: Duration) -> &mut Self {
        self.t1 = t1.max(Duration::from_millis(1));
        self
    }
    /// T2, the longest retransmit interval of non-INVITE requests and INVITE
    /// responses (default 4 s; at least T1 when used).
    pub fn set_t2(&mut self, t2: Duration) -> &mut Self {
        self.t2 = t2;
        self
    }
    /// T4, the longest time a message stays in the network (default 5 s).
    pub fn set_t4(&mut self, t4: Duration) -> &mut Self {
        self.t4 = t4;
        self
    }
    /// How long an INVITE server transaction waits for the core before it sends
    /// 100 Trying itself (default 200 ms, s.17.2.1).
    pub fn set_trying_delay(&mut self, delay: Duration) -> &mut Self {
        self.trying_delay = delay;
        self
    }
    /// Parser limits for [`Input::Datagram`].
    pub fn set_limits(&mut self, limits: Limits) -> &mut Self {
        self.limits = limits;
        self
    }
    /// Most server transactions alive at once, whatever their state
    /// (default 4096). A new request beyond it is answered 503 with
    /// Retry-After ([`TransactionConfig::set_retry_after`]) and no
    /// transaction is made; a CANCEL of a live INVITE transaction is still
    /// taken (there is at most one per INVITE).
    pub fn set_max_server_transactions(&mut self, count: usize) -> &mut Self {
        self.max_server_transactions = count;
        self
    }
    /// The Retry-After of the 503s an overloaded element sends (default 10 s;
    /// written in whole seconds, at least 1).
    pub fn set_retry_after(&mut self, after: Duration) -> &mut Self {
        self.retry_after = after;
        self
    }
    /// See [`TransactionConfig::set_t1`].
    #[must_use]
    pub const fn t1(&self) -> Duration {
        self.t1
    }
    /// See [`TransactionConfig::set_t2`].
    #[must_use]
    pub fn t2(&self) -> Duration {
        self.t2.max(self.t1)
    }
    /// See [`TransactionConfig::set_t4`].
    #[must_use]
    pub const fn t4(&self) -> Duration {
        self.t4
    }
    /// See [`TransactionConfig::set_trying_delay`].
    #[must_use]
    pub const fn trying_delay(&self) -> Duration {
        self.trying_delay
    }
    /// See [`TransactionConfig::set_limits`].
    #[must_use]
    pub const fn limits(&self) -> &Limits {
        &self.limits
    }
    /// See [`TransactionConfig::set_max_server_transactions`].
    #[must_use]
    pub const fn max_server_transactions(&self) -> usize {
        self.max_server_transactions
    }
    /// See [`TransactionConfig::set_retry_after`].
    #[must_use]
    pub const fn retry_after(&self) -> Duration {
        self.retry_after
    }
    /// 64*T1: Timers B, F, H, J, L, M.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

/// What the transaction user asks of the layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Start a client transaction. The request's top Via MUST carry a fresh
    /// branch starting with `z9hG4bK` (s.8.1.1.7); ACK is never a transaction
    /// (use [`Command::Stateless`]).
    Request {
        /// The caller's name for the transaction.
        id: ClientId,
        /// Where to send it.
        flow: FlowId,
        /// The flow's transport.
        transport: Transport,
        /// The request.
        request: Message,
    },
    /// Send a response through a server transaction: a provisional one, a
    /// final one, or (in the RFC 6026 Accepted state) a 2xx retransmission.
    Respond {
        /// The server transaction.
        server: ServerId,
        /// The response; its Via, From, To, Call-ID and CSeq MUST be those of
        /// the request ([`MessageBuilder::response_to`]).
        response: Message,
    },
    /// Destroy a client transaction without a timeout event: RFC 3261 s.9.1 lets
    /// the TU do so when a CANCELled INVITE has no final response in 64*T1.
    /// Unknown ids are ignored.
    Terminate {
        /// The client transaction.
        client: ClientId,
    },
    /// Send a message outside any transaction: an ACK for a 2xx (s.13.2.2.4),
    /// a 2xx retransmitted after its transaction ended, a proxied ACK.
    Stateless {
        /// Where to send it.
        flow: FlowId,
        /// The flow's transport.
        transport: Transport,
        /// The message.
        message: Message,
    },
}

/// What comes into the layer.
pub type Input = crate::machine::Input<Command>;

/// What the layer asks of the runtime, or tells the transaction user.
pub type Output = crate::machine::Output<Event>;

/// What the layer tells the transaction user.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A new request (not a retransmission, not an ACK): a server transaction
    /// now waits for [`Command::Respond`].
    RequestReceived {
        /// Its server transaction.
        server: ServerId,
        /// The flow it came on.
        flow: FlowId,
        /// The flow's transport.
        transport: Transport,
        /// The request.
        request: Message,
        /// For a CANCEL: the INVITE server transaction it cancels, if any (s.9.2).
        cancels: Option<ServerId>,
    },
    /// An ACK no transaction absorbed: the ACK of a 2xx (a new transaction,
    /// s.17.1.1.3), or one matching an INVITE server transaction in the
    /// RFC 6026 Accepted state (`server` is then set).
    AckReceived {
        /// The flow it came on.
        flow: FlowId,
        /// The flow's transport.
        transport: Transport,
        /// The ACK.
        request: Message,
        /// The Accepted INVITE server transaction it matched.
        server: Option<ServerId>,
    },
    /// A response for a client transaction: each provisional, the final, and
    /// in the Accepted state each further 2xx (the core ACKs them).
    ResponseReceived {
        /// The client transaction.
        client: ClientId,
        /// The flow it came on.
        flow: FlowId,
        /// The flow's transport.
        transport: Transport,
        /// The response.
        response: Message,
    },
    /// A response that matches no client transaction (s.18.1.2: "passed to the
    /// core"), e.g. a 2xx retransmission after Timer M.
    StrayResponse {
        /// The flow it came on.
        flow: FlowId,
        /// The flow's transport.
        transport: Transport,
        /// The response.
        response: Message,
    },
    /// Timer B or F fired: no final response. The transaction ended (s.8.1.3.1:
    /// treat as 408).
    ClientTimedOut {
        /// The client transaction.
        client: ClientId,
    },
    /// Timer H fired: the non-2xx final response of an INVITE was never ACKed.
    ServerTimedOut {
        /// The server transaction.
        server: ServerId,
    },
    /// A peer message was dropped.
    PeerError {
        /// The flow it came on.
        flow: FlowId,
        /// Why.
        reason: &'static str,
    },
}

/// A caller's mistake; the layer's state is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UsageError {
    /// A client transaction with this id or branch is still running.
    #[error("a client transaction with this id or branch exists")]
    DuplicateClient,
    /// No server transaction has this id (it may have ended).
    #[error("unknown server transaction")]
    UnknownServer,
    /// The message is not what the command needs (a response for a request,
    /// an ACK as a transaction, no Via branch with the magic cookie).
    #[error("the message does not fit the command")]
    BadMessage,
    /// The server transaction cannot send this response in its state.
    #[error("the server transaction cannot send this response now")]
    WrongState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimerSlot {
    /// A, E, G.
    Retransmit = 0,
    /// B, F, H, L, M.
    Timeout = 1,
    /// D, I, J, K.
    Wait = 2,
    /// The 200 ms before 100 Trying.
    Trying = 3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Owner {
    Client(ClientId),
    Server(ServerId),
}

type TimerKey = (Instant, u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientState {
    /// INVITE: Calling; non-INVITE: Trying.
    Calling,
    Proceeding,
    Completed,
    /// RFC 6026.
    Accepted,
}

#[derive(Debug)]
struct Client {
    invite: bool,
    key: (String, String),
    flow: FlowId,
    transport: Transport,
    request: Message,
    state: ClientState,
    interval: Duration,
    /// The ACK of a non-2xx final response, sent again for its retransmissions.
    ack: Option<Bytes>,
    timers: [Option<TimerKey>; 4],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerState {
    /// Non-INVITE only: nothing sent yet.
    Trying,
    Proceeding,
    Completed,
    /// INVITE: ACK received.
    Confirmed,
    /// RFC 6026.
    Accepted,
}

#[derive(Debug)]
struct Server {
    invite: bool,
    key: String,
    flow: FlowId,
    transport: Transport,
    request: Message,
    state: ServerState,
    last_response: Option<Bytes>,
    interval: Duration,
    timers: [Option<TimerKey>; 4],
}

/// The client and server transactions of one SIP element. See the module docs.
pub struct TransactionLayer {
    config: TransactionConfig,
    last_now: Instant,
    clients: HashMap<ClientId, Client>,
    client_keys: HashMap<(String, String), ClientId>,
    servers: HashMap<ServerId, Server>,
    server_keys: HashMap<String, ServerId>,
    next_server: u64,
    timers: BTreeMap<TimerKey, (Owner, TimerSlot)>,
    timer_seq: u64,
    ready: VecDeque<Output>,
}

impl fmt::Debug for TransactionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransactionLayer")
            .field("clients", &self.clients.len())
            .field("servers", &self.servers.len())
            .field("timers", &self.timers.len())
            .finish_non_exhaustive()
    }
}

/// The key of a response: top Via branch and CSeq method (s.17.1.3).
fn client_key(message: &Message) -> Option<(String, String)> {
    let branch = message.top_via()?.branch()?;
    Some((branch.to_owned(), message.cseq()?.method.to_owned()))
}

/// The key of a request (s.17.2.3), with the method replaced by `method`
/// (ACK and CANCEL look for their INVITE).
fn server_key(request: &Message, method: &str) -> Option<String> {
    let via = request.top_via()?;
    let sent_by = format!("{}:{}", via.host().to_ascii_lowercase(), via.port().unwrap_or(0));
    match via.branch() {
        Some(branch) if branch.starts_with(MAGIC_COOKIE) => Some(format!("3261 {branch} {sent_by} {method}")),
        branch => {
            // RFC 3261 s.17.2.3: the RFC 2543 rule.
            let cseq = request.cseq()?;
            Some(format!(
                "2543 {} {} {} {} {method} {sent_by} {}",
                request.request_uri_str()?,
                request.from_tag().unwrap_or_default(),
                request.call_id()?,
                cseq.seq,
                branch.unwrap_or_default(),
            ))
        }
    }
}

/// A Retry-After value: whole seconds, at least 1 (RFC 3261 s.20.33:
/// "delta-seconds").
pub(crate) fn retry_after_seconds(after: Duration) -> u64 {
    after.as_secs().max(1)
}

/// The ACK of a non-2xx final response (RFC 3261 s.17.1.1.3).
///
/// # Errors
/// When `invite` or `response` lack what the ACK copies.
pub fn ack_for_non_2xx(invite: &Message, response: &Message) -> Option<Message> {
    let mut ack = MessageBuilder::request("ACK", invite.request_uri_str()?);
    // "The ACK MUST contain a single Via header field, and this MUST be equal
    // to the top Via header field of the original request."
    let via = invite.header_values("Via").next()?;
    ack.header("Via", via);
    ack.header("Max-Forwards", "70");
    ack.header("From", &invite.headers_named("From").next()?.value());
    // "The To header field in the ACK MUST equal the To header field in the response being acknowledged"
    ack.header("To", &response.headers_named("To").next()?.value());
    ack.header("Call-ID", invite.call_id()?);
    // "the CSeq header field in the ACK MUST contain the same value for the
    // sequence number as was present in the original request, but the method
    // parameter MUST be equal to "ACK"."
    ack.header("CSeq", &format!("{} ACK", invite.cseq()?.seq));
    // "If the INVITE request whose response is being acknowledged had Route
    // header fields, those header fields MUST appear in the ACK."
    for route in invite.headers_named("Route") {
        ack.header("Route", &route.value());
    }
    ack.build().ok()
}

impl TransactionLayer {
    /// An empty layer.
    #[must_use]
    pub fn new(config: TransactionConfig, now: Instant) -> Self {
        Self {
            config,
            last_now: now,
            clients: HashMap::new(),
            client_keys: HashMap::new(),
            servers: HashMap::new(),
            server_keys: HashMap::new(),
            next_server: 0,
            timers: BTreeMap::new(),
            timer_seq: 0,
            ready: VecDeque::new(),
        }
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &TransactionConfig {
        &self.config
    }

    /// Client transactions not yet terminated.
    #[must_use]
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Server transactions not yet terminated.
    #[must_use]
    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    /// Whether no transaction is left (and so no timer is armed).
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.clients.is_empty() && self.servers.is_empty()
    }

    /// Whether a client transaction is still running.
    #[must_use]
    pub fn has_client(&self, client: ClientId) -> bool {
        self.clients.contains_key(&client)
    }

    /// The request a server transaction received.
    #[must_use]
    pub fn server_request(&self, server: ServerId) -> Option<&Message> {
        self.servers.get(&server).map(|s| &s.request)
    }

    /// The flow and transport of a server transaction.
    #[must_use]
    pub fn server_flow(&self, server: ServerId) -> Option<(FlowId, Transport)> {
        self.servers.get(&server).map(|s| (s.flow, s.transport))
    }

    /// Whether a server transaction has sent a final response.
    #[must_use]
    pub fn is_server_final(&self, server: ServerId) -> bool {
        self.servers.get(&server).is_some_and(|s| !matches!(s.state, ServerState::Trying | ServerState::Proceeding))
    }

    /// Feeds one input. Bad peer input never returns `Err`: it is dropped and
    /// reported with [`Event::PeerError`].
    ///
    /// # Errors
    /// [`UsageError`] for a command that cannot be carried out.
    pub fn handle(&mut self, now: Instant, input: Input) -> Result<(), UsageError> {
        // Time never goes back: an earlier `now` is taken as the last one.
        self.last_now = self.last_now.max(now);
        match input {
            Input::Received { flow, transport, message } => self.received(flow, transport, message),
            Input::Datagram { flow, bytes } => match parse_datagram(bytes, &self.config.limits) {
                Ok(message) => self.received(flow, Transport::Unreliable, message),
                Err(_) => self.peer_error(flow, "unparsable datagram"),
            },
            Input::Timeout => self.timeout(),
            Input::Command(command) => return self.command(command),
        }
        Ok(())
    }

    /// The next output, `None` when there is nothing more to do now.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.ready.pop_front()
    }

    /// When [`Input::Timeout`] is next due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.keys().next().map(|&(at, _)| at)
    }

    // ----- helpers ---------------------------------------------------------

    fn transmit(&mut self, flow: FlowId, transport: Transport, bytes: Bytes) {
        self.ready.push_back(Output::Transmit { flow, transport, bytes });
    }

    fn event(&mut self, event: Event) {
        self.ready.push_back(Output::Event(event));
    }

    fn peer_error(&mut self, flow: FlowId, reason: &'static str) {
        self.event(Event::PeerError { flow, reason });
    }

    fn arm(&mut self, owner: Owner, slot: TimerSlot, after: Duration) {
        self.disarm(owner, slot);
        let key = (crate::machine::later(self.last_now, after), self.timer_seq);
        self.timer_seq += 1;
        let timers = match owner {
            Owner::Client(id) => self.clients.get_mut(&id).map(|c| &mut c.timers),
            Owner::Server(id) => self.servers.get_mut(&id).map(|s| &mut s.timers),
        };
        if let Some(timers) = timers {
            timers[slot as usize] = Some(key);
            self.timers.insert(key, (owner, slot));
        }
    }

    fn disarm(&mut self, owner: Owner, slot: TimerSlot) {
        let timers = match owner {
            Owner::Client(id) => self.clients.get_mut(&id).map(|c| &mut c.timers),
            Owner::Server(id) => self.servers.get_mut(&id).map(|s| &mut s.timers),
        };
        if let Some(key) = timers.and_then(|t| t[slot as usize].take()) {
            self.timers.remove(&key);
        }
    }

    fn remove_client(&mut self, id: ClientId) {
        if let Some(client) = self.clients.remove(&id) {
            for key in client.timers.into_iter().flatten() {
                self.timers.remove(&key);
            }
            self.client_keys.remove(&client.key);
        }
    }

    fn remove_server(&mut self, id: ServerId) {
        if let Some(server) = self.servers.remove(&id) {
            for key in server.timers.into_iter().flatten() {
                self.timers.remove(&key);
            }
            self.server_keys.remove(&server.key);
        }
    }

    /// Arms a wait timer, or ends the transaction at once when it is zero
    /// (reliable flows: D, I, J, K are 0).
    fn wait_or_end(&mut self, owner: Owner, wait: Duration) {
        if wait.is_zero() {
            match owner {
                Owner::Client(id) => self.remove_client(id),
                Owner::Server(id) => self.remove_server(id),
            }
        } else {
            self.arm(owner, TimerSlot::Wait, wait);
        }
    }

    // ----- commands --------------------------------------------------------

    fn command(&mut self, command: Command) -> Result<(), UsageError> {
        match command {
            Command::Request { id, flow, transport, request } => self.start_client(id, flow, transport, request),
            Command::Respond { server, response } => self.respond(server, &response),
            Command::Terminate { client } => {
                self.remove_client(client);
                Ok(())
            }
            Command::Stateless { flow, transport, message } => {
                self.transmit(flow, transport, message.as_bytes().clone());
                Ok(())
            }
        }
    }

    fn start_client(
        &mut self,
        id: ClientId,
        flow: FlowId,
        transport: Transport,
        request: Message,
    ) -> Result<(), UsageError> {
        let method = request.method().ok_or(UsageError::BadMessage)?;
        if method == "ACK" {
            return Err(UsageError::BadMessage);
        }
        let key = client_key(&request).ok_or(UsageError::BadMessage)?;
        if !key.0.starts_with(MAGIC_COOKIE) {
            return Err(UsageError::BadMessage);
        }
        if self.clients.contains_key(&id) || self.client_keys.contains_key(&key) {
            return Err(UsageError::DuplicateClient);
        }
        let invite = method == "INVITE";
        let bytes = request.as_bytes().clone();
        self.client_keys.insert(key.clone(), id);
        self.clients.insert(
            id,
            Client {
                invite,
                key,
                flow,
                transport,
                request,
                state: ClientState::Calling,
                interval: self.config.t1,
                ack: None,
                timers: [None; 4],
            },
        );
        self.transmit(flow, transport, bytes);
        let owner = Owner::Client(id);
        if transport == Transport::Unreliable {
            // s.17.1.1.2: "If an unreliable transport is being used, the client
            // transaction MUST start timer A with a value of T1." s.17.1.2.2: Timer E.
            self.arm(owner, TimerSlot::Retransmit, self.config.t1);
        }
        // "For any transport, the client transaction MUST start timer B with a
        // value of 64*T1 seconds" (Timer F likewise for non-INVITE).
        self.arm(owner, TimerSlot::Timeout, self.config.timeout());
        Ok(())
    }

    fn respond(&mut self, id: ServerId, response: &Message) -> Result<(), UsageError> {
        let code = response.status_code().ok_or(UsageError::BadMessage)?;
        let server = self.servers.get(&id).ok_or(UsageError::UnknownServer)?;
        let (invite, state, flow, transport) = (server.invite, server.state, server.flow, server.transport);
        let reliable = transport == Transport::Reliable;
        let owner = Owner::Server(id);
        let bytes = response.as_bytes().clone();
        match (invite, state, code) {
            (_, ServerState::Trying | ServerState::Proceeding, 100..=199) => {
                self.disarm(owner, TimerSlot::Trying);
                self.set_server(id, ServerState::Proceeding, bytes.clone());
                self.transmit(flow, transport, bytes);
            }
            (true, ServerState::Proceeding, 200..=299) => {
                self.disarm(owner, TimerSlot::Trying);
                self.set_server(id, ServerState::Accepted, bytes.clone());
                self.transmit(flow, transport, bytes);
                // RFC 6026 s.7.1: "the server transaction MUST transition to the
                // "Accepted" state" and start Timer L = 64*T1.
                self.arm(owner, TimerSlot::Timeout, self.config.timeout());
            }
            (true, ServerState::Accepted, 200..=299) => {
                // RFC 6026 s.8.7: 2xx retransmissions from the core pass to the transport.
                self.transmit(flow, transport, bytes);
            }
            (true, ServerState::Proceeding, _) => {
                self.disarm(owner, TimerSlot::Trying);
                self.set_server(id, ServerState::Completed, bytes.clone());
                self.transmit(flow, transport, bytes);
                if !reliable {
                    // s.17.2.1: "For unreliable transports, timer G is set to fire in T1 seconds"
                    self.arm(owner, TimerSlot::Retransmit, self.config.t1);
                }
                // "When the "Completed" state is entered, timer H MUST be set to fire
                // in 64*T1 seconds for all transports."
                self.arm(owner, TimerSlot::Timeout, self.config.timeout());
            }
            (false, ServerState::Trying | ServerState::Proceeding, _) => {
                self.set_server(id, ServerState::Completed, bytes.clone());
                self.transmit(flow, transport, bytes);
                // s.17.2.2: Timer J "64*T1 seconds for unreliable transports, and zero
                // seconds for reliable transports".
                let wait = if reliable { Duration::ZERO } else { self.config.timeout() };
                self.wait_or_end(owner, wait);
            }
            _ => return Err(UsageError::WrongState),
        }
        Ok(())
    }

    fn set_server(&mut self, id: ServerId, state: ServerState, response: Bytes) {
        if let Some(server) = self.servers.get_mut(&id) {
            server.state = state;
            server.last_response = Some(response);
        }
    }

    // ----- received messages -----------------------------------------------

    fn received(&mut self, flow: FlowId, transport: Transport, message: Message) {
        if message.is_request() {
            self.received_request(flow, transport, message);
        } else {
            self.received_response(flow, transport, message);
        }
    }

    fn received_response(&mut self, flow: FlowId, transport: Transport, response: Message) {
        let Some(code) = response.status_code() else { return };
        let Some(id) = client_key(&response).and_then(|k| self.client_keys.get(&k).copied()) else {
            self.event(Event::StrayResponse { flow, transport, response });
            return;
        };
        let Some(client) = self.clients.get(&id) else { return };
        let (invite, state) = (client.invite, client.state);
        let reliable = client.transport == Transport::Reliable;
        let owner = Owner::Client(id);
        match (invite, state, code) {
            (_, ClientState::Calling | ClientState::Proceeding, 100..=199) => {
                if invite {
                    // s.17.1.1.2: in Proceeding the INVITE is no longer retransmitted,
                    // and Timer B only runs in Calling.
                    self.disarm(owner, TimerSlot::Retransmit);
                    self.disarm(owner, TimerSlot::Timeout);
                }
                // Non-INVITE: Timer E keeps its schedule; once in Proceeding it is
                // reset to T2 each time it fires (s.17.1.2.2).
                self.set_client(id, ClientState::Proceeding);
                self.event(Event::ResponseReceived { client: id, flow, transport, response });
            }
            (_, ClientState::Completed | ClientState::Accepted, 100..=199) => {}
            (true, ClientState::Calling | ClientState::Proceeding, 200..=299) => {
                self.disarm(owner, TimerSlot::Retransmit);
                // RFC 6026 s.7.2: "the client transaction MUST transition to the
                // "Accepted" state, and Timer M MUST be started with a value of 64*T1."
                self.set_client(id, ClientState::Accepted);
                self.arm(owner, TimerSlot::Timeout, self.config.timeout());
                self.event(Event::ResponseReceived { client: id, flow, transport, response });
            }
            (true, ClientState::Accepted, 200..=299) => {
                // RFC 6026 s.8.4: "Any 2xx responses that match this client transaction
                // and that are received while in the "Accepted" state MUST be passed up".
                self.event(Event::ResponseReceived { client: id, flow, transport, response });
            }
            (true, ClientState::Calling | ClientState::Proceeding, _) => {
                let Some(ack) = ack_for_non_2xx(&client.request, &response) else {
                    self.peer_error(flow, "final response without the headers an ACK copies");
                    return;
                };
                let (flow, transport) = (client.flow, client.transport);
                let bytes = ack.as_bytes().clone();
                if let Some(client) = self.clients.get_mut(&id) {
                    client.ack = Some(bytes.clone());
                }
                self.disarm(owner, TimerSlot::Retransmit);
                self.disarm(owner, TimerSlot::Timeout);
                self.set_client(id, ClientState::Completed);
                // s.17.1.1.2: "the client transaction MUST generate an ACK request".
                self.transmit(flow, transport, bytes);
                self.event(Event::ResponseReceived { client: id, flow, transport, response });
                // Timer D: "at least 32 seconds for unreliable transports, and ... zero
                // seconds for reliable transports".
                let wait = if reliable { Duration::ZERO } else { Duration::from_secs(32).max(self.config.timeout()) };
                self.wait_or_end(owner, wait);
            }
            (true, ClientState::Completed, 300..=699) => {
                // "Any retransmissions of the final response that are received while in
                // the "Completed" state MUST cause the ACK to be re-passed to the transport layer"
                if let Some(ack) = client.ack.clone() {
                    let (flow, transport) = (client.flow, client.transport);
                    self.transmit(flow, transport, ack);
                }
            }
            (false, ClientState::Calling | ClientState::Proceeding, _) => {
                self.disarm(owner, TimerSlot::Retransmit);
                self.disarm(owner, TimerSlot::Timeout);
                self.set_client(id, ClientState::Completed);
                self.event(Event::ResponseReceived { client: id, flow, transport, response });
                // s.17.1.2.2: Timer K is "T4 for unreliable transports, and zero for reliable".
                let wait = if reliable { Duration::ZERO } else { self.config.t4 };
                self.wait_or_end(owner, wait);
            }
            // A retransmitted final response in Completed, or a non-2xx after a
            // 2xx (RFC 6026: discarded), is absorbed.
            _ => {}
        }
    }

    fn set_client(&mut self, id: ClientId, state: ClientState) {
        if let Some(client) = self.clients.get_mut(&id) {
            client.state = state;
        }
    }

    fn received_request(&mut self, flow: FlowId, transport: Transport, request: Message) {
        let Some(method) = request.method() else { return };
        let is_ack = method == "ACK";
        let lookup = if is_ack { "INVITE" } else { method };
        let Some(key) = server_key(&request, lookup) else {
            // No top Via: there is nowhere to send a response.
            self.peer_error(flow, "request without a Via");
            return;
        };
        if let Some(&id) = self.server_keys.get(&key) {
            self.retransmitted_request(id, is_ack, flow, transport, request);
            return;
        }
        if is_ack {
            self.event(Event::AckReceived { flow, transport, request, server: None });
            return;
        }
        let cancels = if method == "CANCEL" {
            server_key(&request, "INVITE").and_then(|k| self.server_keys.get(&k).copied())
        } else {
            None
        };
        if self.servers.len() >= self.config.max_server_transactions && cancels.is_none() {
            self.overloaded(flow, transport, &request, &key);
            return;
        }
        let invite = method == "INVITE";
        let id = ServerId::new(self.next_server);
        self.next_server += 1;
        self.server_keys.insert(key.clone(), id);
        self.servers.insert(
            id,
            Server {
                invite,
                key,
                flow,
                transport,
                request: request.clone(),
                state: if invite { ServerState::Proceeding } else { ServerState::Trying },
                last_response: None,
                interval: self.config.t1,
                timers: [None; 4],
            },
        );
        if invite {
            // s.17.2.1: "the server transaction MUST generate a 100 (Trying) response
            // unless it knows that the TU will generate a provisional or final
            // response within 200 ms".
            self.arm(Owner::Server(id), TimerSlot::Trying, self.config.trying_delay);
        }
        self.event(Event::RequestReceived { server: id, flow, transport, request, cancels });
    }

    /// Answers a request beyond [`TransactionConfig::set_max_server_transactions`]
    /// statelessly and keeps nothing of it.
    fn overloaded(&mut self, flow: FlowId, transport: Transport, request: &Message, key: &str) {
        // RFC 3261 s.8.2.7: a stateless response's To tag "MUST be generated ...
        // in a manner that will generate the same tag for the same request
        // consistently", so a retransmission gets the same 503.
        let tag = stateless_token(&[key]);
        let mut reply = MessageBuilder::response_to(request, 503, "Service Unavailable", Some(&tag));
        // s.21.5.4: "The server MAY indicate when the client should retry the
        // request in a Retry-After header field."
        reply.header("Retry-After", &retry_after_seconds(self.config.retry_after).to_string());
        if let Ok(reply) = reply.build() {
            self.transmit(flow, transport, reply.as_bytes().clone());
        }
        self.peer_error(flow, "over the server transaction limit: answered 503");
    }

    fn retransmitted_request(
        &mut self,
        id: ServerId,
        is_ack: bool,
        flow: FlowId,
        transport: Transport,
        request: Message,
    ) {
        let Some(server) = self.servers.get(&id) else { return };
        let (state, resend) = (server.state, server.last_response.clone());
        let (sflow, stransport, reliable) = (server.flow, server.transport, server.transport == Transport::Reliable);
        match (is_ack, state) {
            (true, ServerState::Completed) if server.invite => {
                // s.17.2.1: "If an ACK is received while the server transaction is in the
                // "Completed" state, the server transaction MUST transition to the
                // "Confirmed" state." Timer I: "T4 seconds for unreliable transports,
                // and zero seconds for reliable transports".
                let owner = Owner::Server(id);
                self.disarm(owner, TimerSlot::Retransmit);
                self.disarm(owner, TimerSlot::Timeout);
                if let Some(server) = self.servers.get_mut(&id) {
                    server.state = ServerState::Confirmed;
                }
                let wait = if reliable { Duration::ZERO } else { self.config.t4 };
                self.wait_or_end(owner, wait);
            }
            (true, ServerState::Accepted) => {
                // RFC 6026 s.8.7: an ACK matching the Accepted transaction goes to the TU.
                self.event(Event::AckReceived { flow, transport, request, server: Some(id) });
            }
            // ACK in other states (Confirmed: absorbed; non-INVITE: nonsense) is dropped.
            (true, _) => {}
            // RFC 6026 s.8.7: in Accepted, "request retransmissions are absorbed".
            (false, ServerState::Accepted | ServerState::Trying) => {}
            (false, _) => {
                // s.17.2.1 / s.17.2.2: a retransmission gets the last response again.
                if let Some(bytes) = resend {
                    self.transmit(sflow, stransport, bytes);
                }
            }
        }
    }

    // ----- timers ----------------------------------------------------------

    fn timeout(&mut self) {
        while let Some(entry) = self.timers.first_entry() {
            let &key = entry.key();
            if key.0 > self.last_now {
                break;
            }
            let (owner, slot) = entry.remove();
            let timers = match owner {
                Owner::Client(id) => self.clients.get_mut(&id).map(|c| &mut c.timers),
                Owner::Server(id) => self.servers.get_mut(&id).map(|s| &mut s.timers),
            };
            if let Some(timers) = timers {
                if timers[slot as usize] == Some(key) {
                    timers[slot as usize] = None;
                }
            }
            match owner {
                Owner::Client(id) => self.client_timer(id, slot),
                Owner::Server(id) => self.server_timer(id, slot),
            }
        }
    }

    fn client_timer(&mut self, id: ClientId, slot: TimerSlot) {
        let Some(client) = self.clients.get_mut(&id) else { return };
        match slot {
            TimerSlot::Retransmit => {
                let bytes = client.request.as_bytes().clone();
                let (flow, transport) = (client.flow, client.transport);
                let next = if client.invite {
                    // s.17.1.1.2: Timer A doubles each time.
                    client.interval * 2
                } else if client.state == ClientState::Proceeding {
                    // s.17.1.2.2: in Proceeding, E is T2.
                    self.config.t2()
                } else {
                    // "the interval ... doubles ... until it reaches T2".
                    (client.interval * 2).min(self.config.t2())
                };
                client.interval = next;
                self.transmit(flow, transport, bytes);
                self.arm(Owner::Client(id), TimerSlot::Retransmit, next);
            }
            TimerSlot::Timeout => {
                let timed_out = matches!(client.state, ClientState::Calling | ClientState::Proceeding);
                self.remove_client(id);
                if timed_out {
                    self.event(Event::ClientTimedOut { client: id });
                }
            }
            TimerSlot::Wait | TimerSlot::Trying => self.remove_client(id),
        }
    }

    fn server_timer(&mut self, id: ServerId, slot: TimerSlot) {
        let Some(server) = self.servers.get_mut(&id) else { return };
        match slot {
            TimerSlot::Trying => {
                if server.state == ServerState::Proceeding && server.last_response.is_none() {
                    if let Ok(trying) = MessageBuilder::response_to(&server.request, 100, "Trying", None).build() {
                        let bytes = trying.as_bytes().clone();
                        server.last_response = Some(bytes.clone());
                        let (flow, transport) = (server.flow, server.transport);
                        self.transmit(flow, transport, bytes);
                    }
                }
            }
            TimerSlot::Retransmit => {
                if server.state == ServerState::Completed {
                    // s.17.2.1: Timer G "is reset with a value of MIN(2*T1, T2)" each time.
                    server.interval = (server.interval * 2).min(self.config.t2());
                    let next = server.interval;
                    let (flow, transport) = (server.flow, server.transport);
                    if let Some(bytes) = server.last_response.clone() {
                        self.transmit(flow, transport, bytes);
                    }
                    self.arm(Owner::Server(id), TimerSlot::Retransmit, next);
                }
            }
            TimerSlot::Timeout => {
                let unacked = server.state == ServerState::Completed;
                self.remove_server(id);
                if unacked {
                    // s.17.2.1: Timer H: "the server transaction MUST transition to the
                    // "Terminated" state, and MUST indicate to the TU that a transaction
                    // failure has occurred."
                    self.event(Event::ServerTimedOut { server: id });
                }
            }
            TimerSlot::Wait => self.remove_server(id),
        }
    }
}

/// The fuzz entry `sip_transaction`: an arbitrary sequence of datagrams, time
/// steps and commands drives a [`TransactionLayer`]; it never panics, every
/// `UsageError` leaves it consistent, and once the virtual clock has run past
/// every timer no transaction is left.
#[cfg(any(test, feature = "fuzzing"))]
pub fn sip_transaction(data: &[u8]) {
    use crate::sip::parse_message;

    // A few valid messages for the fuzzer to start from; the rest of `data`
    // picks and mutates.
    const SEEDS: [&str; 4] = [
        "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        "ACK sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        "MESSAGE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK2\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 2 MESSAGE\r\nContent-Length: 0\r\n\r\n",
    ];
    let Some(start) = epoch() else { return };
    let mut now = start;
    let mut layer = TransactionLayer::new(TransactionConfig::default(), now);
    let mut received: Vec<ServerId> = Vec::new();
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        let arg = rest.first().copied().unwrap_or(0);
        let transport = if op & 0x80 == 0 { Transport::Unreliable } else { Transport::Reliable };
        let flow = FlowId::new(u64::from(arg & 3));
        let input = match op & 0x07 {
            0 => {
                // Time step: up to 25.5 s.
                now += Duration::from_millis(u64::from(arg) * 100);
                Input::Timeout
            }
            1 | 2 => {
                // A seed message with the branch, code or method replaced.
                let mut text = SEEDS[usize::from(arg) % SEEDS.len()].to_owned();
                text = text.replace("z9hG4bK1", &format!("z9hG4bK{}", arg >> 4));
                if op & 0x40 != 0 {
                    text = text.replace("180 Ringing", &format!("{} X", 100 + u16::from(arg) * 2));
                }
                if op & 0x20 != 0 {
                    text = text.replace(";branch=z9hG4bK", ";branch=");
                }
                let Ok(Status::Complete((message, _))) = parse_message(&Bytes::from(text), &Limits::default()) else {
                    continue;
                };
                if op & 0x07 == 1 {
                    Input::Received { flow, transport, message }
                } else {
                    let id = ClientId::new(u64::from(arg));
                    Input::Command(Command::Request { id, flow, transport, request: message })
                }
            }
            3 => {
                let Some(&server) = received.get(usize::from(arg) % received.len().max(1)) else { continue };
                let Some(request) = layer.server_request(server) else { continue };
                let code = [100, 180, 200, 486, 603][usize::from(arg >> 3) % 5];
                let Ok(response) = MessageBuilder::response_to(request, code, "R", Some("t")).build() else { continue };
                Input::Command(Command::Respond { server, response })
            }
            4 => {
                // Raw bytes as a datagram.
                let len = usize::from(arg).min(rest.len());
                let bytes = Bytes::copy_from_slice(&rest[..len]);
                rest = &rest[len..];
                Input::Datagram { flow, bytes }
            }
            _ => Input::Timeout,
        };
        let _ = layer.handle(now, input);
        while let Some(output) = layer.poll_output() {
            if let Output::Event(Event::RequestReceived { server, .. }) = output {
                received.push(server);
            }
        }
    }
    // Every transaction ends: with no new input, the timers run out.
    for _ in 0..1000 {
        let Some(at) = layer.poll_timeout() else { break };
        now = now.max(at);
        let _ = layer.handle(now, Input::Timeout);
        while layer.poll_output().is_some() {}
    }
    // An INVITE server transaction in Proceeding waits for its core forever
    // (s.17.2.1); the core here never answers, so answer each with 500.
    let pending: Vec<ServerId> = layer.servers.keys().copied().collect();
    for server in pending {
        if let Some(response) =
            layer.server_request(server).and_then(|r| MessageBuilder::response_to(r, 500, "E", Some("t")).build().ok())
        {
            let _ = layer.handle(now, Input::Command(Command::Respond { server, response }));
        }
    }
    // A client INVITE in Proceeding waits forever too (the TU CANCELs it).
    let proceeding: Vec<ClientId> = layer
        .clients
        .iter()
        .filter(|(_, c)| c.invite && c.state == ClientState::Proceeding)
        .map(|(&id, _)| id)
        .collect();
    for id in proceeding {
        layer.remove_client(id);
    }
    for _ in 0..1000 {
        let Some(at) = layer.poll_timeout() else { break };
        now = now.max(at);
        let _ = layer.handle(now, Input::Timeout);
        while layer.poll_output().is_some() {}
    }
    assert!(layer.is_idle(), "transactions left: {layer:?}");
    assert!(layer.timers.is_empty());
}

#[cfg(any(test, feature = "fuzzing"))]
use crate::sip::Status;

/// A fixed epoch for the fuzz entry (no clock read): `Instant` has no
/// constructor, so one is derived from a `Duration` via `checked_add` on a
/// value obtained once per process.
#[cfg(any(test, feature = "fuzzing"))]
fn epoch() -> Option<Instant> {
    use std::sync::OnceLock;
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    #[expect(clippy::disallowed_methods, reason = "the fuzz entry needs one Instant as its virtual epoch")]
    let epoch = *EPOCH.get_or_init(Instant::now);
    Some(epoch)
}
