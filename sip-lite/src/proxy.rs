//! A transaction-stateful proxy helper (RFC 3261 s.16) on the transaction
//! layer: the interworking selection function, or a "SIP/IP core" between two
//! entities in tests.
//!
//! For each request it (s.16.3-s.16.6): answers 483 when Max-Forwards is 0
//! and decrements it otherwise; pops the top Route when it names this proxy
//! (loose routing, s.16.4); rewrites the Request-URI to the target the
//! configured rewrite rules choose; adds `Record-Route: <sip:host;lr>` to
//! INVITEs so the dialog's ACK and BYE pass through it; pushes its own Via with
//! a fresh branch; and forwards on the flow the configured routes give for the
//! next hop's host (the top remaining Route, else the Request-URI). A 100 is
//! not forwarded (s.16.7); every other response has its top Via popped and
//! goes back through the server transaction; a timeout becomes 408 (s.16.7
//! step 10 with one branch). The ACK of a 2xx is forwarded statelessly; a
//! CANCEL is answered 200 and CANCELs the forwarded INVITE (s.16.10, once
//! a provisional response has arrived, s.9.1).
//!
//! No forwarded INVITE waits forever: Timer C ([`ProxyConfig::set_timer_c`],
//! s.16.6 step 11, restarted by each 101-199 response) CANCELs it when a
//! provisional response came and answers 408 upstream otherwise (s.16.8);
//! a CANCELled INVITE with no final response 64*T1 later is given up and
//! answered 408 (s.9.1).
//!
//! The target of a new request (one without a To tag) comes first from the
//! owner's [`TargetSelector`], if any ([`Proxy::set_selector`]: rules on
//! anything in the request, such as an interworking selection function's
//! rules on content type, size and receiver address), then from the exact
//! Request-URI rewrites of [`ProxyConfig::add_rewrite`]; otherwise the
//! Request-URI is kept. In-dialog requests follow their Route set.
//!
//! With [`ProxyConfig::set_stateless`] it forwards statelessly instead
//! (s.16.11): no transactions, every request and response forwarded as it
//! comes, the branch a function of the incoming one, responses sent by their
//! second Via.
//!
//! One target per request (no forking).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;

use crate::ids::{new_branch, stateless_token, ClientId, ServerId, MAGIC_COOKIE};
pub use crate::ids::{FlowId, IdSource};
use crate::sip::{Message, MessageBuilder, StartLine, Uri};
use crate::transaction::{self, TransactionConfig, TransactionLayer, Transport};
use crate::ua::{cancel, response};

/// Chooses the target of each new request (RFC 3261 s.16.5, "Determining
/// Request Targets": "the proxy MAY use any information in the request"),
/// for rules a static table cannot express. Any
/// `FnMut(&Message) -> Option<String> + Send` is one.
pub trait TargetSelector: Send {
    /// The Request-URI `request` is retargeted to, or `None` to fall back to
    /// the configured rewrites (and then to the Request-URI itself).
    fn target(&mut self, request: &Message) -> Option<String>;
}

impl<F: FnMut(&Message) -> Option<String> + Send> TargetSelector for F {
    fn target(&mut self, request: &Message) -> Option<String> {
        self(request)
    }
}

/// Proxy settings: its host, where hosts are reached, and target rewrites.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    transaction: TransactionConfig,
    host: String,
    record_route: bool,
    routes: Vec<(String, FlowId, Transport)>,
    rewrites: Vec<(String, String)>,
    stateless: bool,
    timer_c: Duration,
}

impl ProxyConfig {
    /// A proxy at `host` (written in Via and Record-Route).
    #[must_use]
    pub fn new(host: &str) -> Self {
        Self {
            transaction: TransactionConfig::default(),
            host: host.to_owned(),
            record_route: true,
            routes: Vec::new(),
            rewrites: Vec::new(),
            stateless: false,
            // RFC 3261 s.16.6 step 11: "The timer MUST be larger than 3 minutes."
            timer_c: Duration::from_secs(3 * 60 + 1),
        }
    }
    /// Timer C (RFC 3261 s.16.6 step 11): how long a forwarded INVITE may go
    /// without a final response, restarted by every 101-199 response
    /// (s.16.7). On expiry the INVITE is CANCELled if a provisional response
    /// came, otherwise answered 408 upstream (s.16.8). Default 3 min 1 s (the
    /// RFC asks for more than 3 minutes; a shorter value is the caller's
    /// choice).
    pub fn set_timer_c(&mut self, timer_c: Duration) -> &mut Self {
        self.timer_c = timer_c;
        self
    }
    /// See [`ProxyConfig::set_timer_c`].
    #[must_use]
    pub const fn timer_c(&self) -> Duration {
        self.timer_c
    }
    /// Whether the proxy forwards statelessly (RFC 3261 s.16.11): no
    /// transactions, every request and response (retransmissions too)
    /// forwarded as it comes, a branch derived from the incoming one
    /// (default `false`: transaction-stateful).
    pub fn set_stateless(&mut self, on: bool) -> &mut Self {
        self.stateless = on;
        self
    }
    /// The transaction timers.
    pub fn set_transaction(&mut self, config: TransactionConfig) -> &mut Self {
        self.transaction = config;
        self
    }
    /// Whether INVITEs get a Record-Route (default `true`).
    pub fn set_record_route(&mut self, on: bool) -> &mut Self {
        self.record_route = on;
        self
    }
    /// Requests whose next hop is `host` go out on `flow`.
    pub fn add_route(&mut self, host: &str, flow: FlowId, transport: Transport) -> &mut Self {
        self.routes.push((host.to_ascii_lowercase(), flow, transport));
        self
    }
    /// A request whose Request-URI is `uri` is retargeted to `target`.
    pub fn add_rewrite(&mut self, uri: &str, target: &str) -> &mut Self {
        self.rewrites.push((uri.to_owned(), target.to_owned()));
        self
    }
    /// The proxy's host.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }
}

/// What comes into the proxy.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Input {
    /// A whole message read from a flow.
    Received {
        /// The flow.
        flow: FlowId,
        /// Its transport.
        transport: Transport,
        /// The message.
        message: Message,
    },
    /// One datagram read from an unreliable flow.
    Datagram {
        /// The flow.
        flow: FlowId,
        /// The datagram.
        bytes: Bytes,
    },
    /// A timer may have expired.
    Timeout,
}

/// What the proxy asks of the runtime, or tells the caller.
pub type Output = crate::machine::Output<Event>;

/// What the proxy tells the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A request was forwarded.
    Forwarded {
        /// Its method.
        method: String,
        /// The Request-URI it went out with.
        request_uri: String,
        /// The flow.
        flow: FlowId,
    },
    /// A request was answered by the proxy itself (404 no route, 483, 408).
    Refused {
        /// Its method.
        method: String,
        /// The status.
        status: u16,
    },
    /// A peer message was dropped.
    PeerError {
        /// The flow it came on.
        flow: FlowId,
        /// Why.
        reason: &'static str,
    },
}

/// A caller's mistake (the proxy takes no commands yet; kept for the machine shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UsageError {
    /// Not used yet.
    #[error("unsupported")]
    Unsupported,
}

#[derive(Debug)]
struct Forward {
    server: ServerId,
    request: Message,
    provisional: bool,
    cancel: bool,
    /// A CANCEL went out for it.
    cancel_sent: bool,
    flow: FlowId,
    transport: Transport,
    /// Timer C or the CANCEL's give-up time (INVITEs only).
    deadline: Option<TimerKey>,
}

/// What a forwarded INVITE waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Deadline {
    /// RFC 3261 s.16.6 step 11: Timer C, a final response.
    TimerC,
    /// RFC 3261 s.9.1: a final response within 64*T1 of its CANCEL.
    Cancelled,
}

type TimerKey = (Instant, u64);

/// The proxy. See the module docs.
pub struct Proxy {
    config: ProxyConfig,
    selector: Option<Box<dyn TargetSelector>>,
    ids: Box<dyn IdSource + Send>,
    layer: TransactionLayer,
    last_now: Instant,
    forwards: HashMap<ClientId, Forward>,
    by_server: HashMap<ServerId, ClientId>,
    timers: BTreeMap<TimerKey, (ClientId, Deadline)>,
    timer_seq: u64,
    next_client: u64,
    ready: VecDeque<Output>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("forwards", &self.forwards.len())
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

/// The host of a URI inside a Route/Record-Route value or bare.
fn host_of(value: &str) -> Option<String> {
    let inner = value.split_once('<').and_then(|(_, r)| r.split_once('>')).map_or(value, |(u, _)| u);
    Uri::parse(inner).ok().map(|u| u.host().to_ascii_lowercase())
}

/// Removes the first value of the first header named `name` (a header line
/// holding several comma-separated values keeps the others).
fn pop_first_value(builder: &mut MessageBuilder, name: &str) {
    let headers = builder.headers_mut();
    let Some(i) = headers.iter().position(|(n, _)| std::str::from_utf8(n).is_ok_and(|n| n.eq_ignore_ascii_case(name)))
    else {
        return;
    };
    let value = String::from_utf8_lossy(&headers[i].1).into_owned();
    match value.split_once(',') {
        Some((_, rest)) => headers[i].1 = Bytes::from(rest.trim().to_owned()),
        None => {
            headers.remove(i);
        }
    }
}

impl Proxy {
    /// A proxy with the routes and rewrites of `config`.
    pub fn new(config: ProxyConfig, now: Instant, ids: Box<dyn IdSource + Send>) -> Self {
        let layer = TransactionLayer::new(config.transaction.clone(), now);
        Self {
            config,
            selector: None,
            ids,
            layer,
            last_now: now,
            forwards: HashMap::new(),
            by_server: HashMap::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            next_client: 0,
            ready: VecDeque::new(),
        }
    }

    /// Chooses the target of every new request (one without a To tag) with
    /// `selector` before the configured rewrites apply.
    pub fn set_selector(&mut self, selector: Box<dyn TargetSelector>) -> &mut Self {
        self.selector = Some(selector);
        self
    }

    /// Whether no transaction is left.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.layer.is_idle()
    }

    /// Feeds one input. Bad peer input never returns `Err`.
    ///
    /// # Errors
    /// None yet (see [`UsageError`]).
    pub fn handle(&mut self, now: Instant, input: Input) -> Result<(), UsageError> {
        self.last_now = self.last_now.max(now);
        if self.config.stateless {
            match input {
                Input::Received { flow, message, .. } => self.stateless(flow, &message),
                Input::Datagram { flow, bytes } => match Message::parse(bytes) {
                    Ok(message) => self.stateless(flow, &message),
                    Err(_) => self.event(Event::PeerError { flow, reason: "unparsable datagram" }),
                },
                Input::Timeout => {}
            }
            self.pump();
            return Ok(());
        }
        let timeout = matches!(input, Input::Timeout);
        let input = match input {
            Input::Received { flow, transport, message } => transaction::Input::Received { flow, transport, message },
            Input::Datagram { flow, bytes } => transaction::Input::Datagram { flow, bytes },
            Input::Timeout => transaction::Input::Timeout,
        };
        let _ = self.layer.handle(self.last_now, input);
        self.pump();
        if timeout {
            self.deadlines();
        }
        // A forwarded INVITE's state lives as long as its client transaction
        // (2xx retransmissions pass through it in the RFC 6026 Accepted state).
        let gone: Vec<ClientId> = self.forwards.keys().filter(|c| !self.layer.has_client(**c)).copied().collect();
        for client in gone {
            self.forget(client);
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
        let own = self.timers.keys().next().map(|&(at, _)| at);
        match (own, self.layer.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sets the one deadline of a forwarded INVITE.
    fn arm(&mut self, client: ClientId, deadline: Deadline, after: Duration) {
        let key = (crate::machine::later(self.last_now, after), self.timer_seq);
        self.timer_seq += 1;
        let Some(forward) = self.forwards.get_mut(&client) else { return };
        if let Some(old) = forward.deadline.replace(key) {
            self.timers.remove(&old);
        }
        self.timers.insert(key, (client, deadline));
    }

    fn disarm(&mut self, client: ClientId) {
        if let Some(key) = self.forwards.get_mut(&client).and_then(|f| f.deadline.take()) {
            self.timers.remove(&key);
        }
    }

    /// Drops what the proxy keeps of a forwarded request.
    fn forget(&mut self, client: ClientId) -> Option<Forward> {
        self.disarm(client);
        let forward = self.forwards.remove(&client)?;
        self.by_server.remove(&forward.server);
        Some(forward)
    }

    /// Answers 408 upstream for a forwarded request that will get no final
    /// response (s.16.7 step 6: "If there are no final responses in the
    /// context, the proxy MUST send a 408 (Request Timeout) response to the
    /// server transaction"), and ends its client transaction.
    fn give_up(&mut self, client: ClientId) {
        let _ = self.layer_command(transaction::Command::Terminate { client });
        let Some(forward) = self.forget(client) else { return };
        if !self.layer.is_server_final(forward.server) {
            if let Some(request) = self.layer.server_request(forward.server).cloned() {
                self.refuse(forward.server, &request, 408);
            }
        }
    }

    fn deadlines(&mut self) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > self.last_now {
                break;
            }
            let (client, deadline) = entry.remove();
            let Some(forward) = self.forwards.get_mut(&client) else { continue };
            forward.deadline = None;
            match deadline {
                // s.16.8: "If the client transaction has received a provisional
                // response, the proxy MUST generate a CANCEL request matching that
                // transaction. If the client transaction has not received a
                // provisional response, the proxy MUST behave as if the
                // transaction received a 408 (Request Timeout) response."
                Deadline::TimerC if forward.provisional => self.send_cancel(client),
                Deadline::TimerC | Deadline::Cancelled => self.give_up(client),
            }
            self.pump();
        }
    }

    fn pump(&mut self) {
        while let Some(output) = self.layer.poll_output() {
            match output {
                transaction::Output::Transmit { flow, transport, bytes } => {
                    self.ready.push_back(Output::Transmit { flow, transport, bytes });
                }
                transaction::Output::Event(event) => self.layer_event(event),
            }
        }
    }

    fn event(&mut self, event: Event) {
        self.ready.push_back(Output::Event(event));
    }

    fn layer_command(&mut self, command: transaction::Command) -> Result<(), transaction::UsageError> {
        self.layer.handle(self.last_now, transaction::Input::Command(command))
    }

    fn refuse(&mut self, server: ServerId, request: &Message, status: u16) {
        if let Ok(reply) = response(request, status, None).build() {
            let _ = self.layer_command(transaction::Command::Respond { server, response: reply });
        }
        let method = request.method().unwrap_or_default().to_owned();
        self.event(Event::Refused { method, status });
    }

    /// s.16.3-s.16.6: the request as it leaves, and its flow.
    /// RFC 3261 s.16.11: a stateless proxy forwards each request and response
    /// as it comes.
    fn stateless(&mut self, flow: FlowId, message: &Message) {
        if message.method().is_some() {
            match self.prepare(message) {
                Ok((out, next, transport)) => {
                    self.event(Event::Forwarded {
                        method: message.method().unwrap_or_default().to_owned(),
                        request_uri: out.request_uri_str().unwrap_or_default().to_owned(),
                        flow: next,
                    });
                    let _ = self.layer_command(transaction::Command::Stateless { flow: next, transport, message: out });
                }
                // An ACK is never answered (s.17.1.1.3).
                Err(_) if message.method() == Some("ACK") => {}
                Err(status) => {
                    if let Ok(reply) = response(message, status, None).build() {
                        let transport = self.transport_of(flow);
                        let _ = self.layer_command(transaction::Command::Stateless { flow, transport, message: reply });
                    }
                    self.event(Event::Refused { method: message.method().unwrap_or_default().to_owned(), status });
                }
            }
            return;
        }
        // s.16.11: "the proxy MUST inspect the sent-by value in the first (topmost)
        // Via header field value. If that address matches the proxy, the proxy
        // MUST remove that value from the response and forward the result to the
        // location indicated in the next Via header field value."
        let ours = message.top_via().is_some_and(|v| v.host().eq_ignore_ascii_case(&self.config.host));
        let next = message.vias().nth(1).map(|v| v.host().to_ascii_lowercase());
        let route = next.and_then(|host| self.config.routes.iter().find(|(h, _, _)| *h == host).cloned());
        let (true, Some((_, next_flow, transport))) = (ours, route) else {
            self.event(Event::PeerError { flow, reason: "response with no Via to forward it by" });
            return;
        };
        let mut builder = message.to_builder();
        pop_first_value(&mut builder, "Via");
        if let Ok(out) = builder.build() {
            let _ = self.layer_command(transaction::Command::Stateless { flow: next_flow, transport, message: out });
        }
    }

    /// The transport of `flow` by the routes (reliable when no route names it).
    fn transport_of(&self, flow: FlowId) -> Transport {
        self.config.routes.iter().find(|(_, f, _)| *f == flow).map_or(Transport::Reliable, |(_, _, t)| *t)
    }

    fn prepare(&mut self, request: &Message) -> Result<(Message, FlowId, Transport), u16> {
        // s.16.3 step 3: "If the request has a Max-Forwards header field value of
        // zero, the element MUST NOT forward the request" (483).
        let max_forwards = request.max_forwards().unwrap_or(70);
        if max_forwards == 0 {
            return Err(483);
        }
        let mut builder = request.to_builder();
        // s.16.4: "If the first value in the Route header field indicates this
        // proxy, the proxy MUST remove that value from the request."
        if request
            .header_values("Route")
            .next()
            .and_then(host_of)
            .is_some_and(|h| h.eq_ignore_ascii_case(&self.config.host))
        {
            pop_first_value(&mut builder, "Route");
        }
        // s.16.5/s.16.6 step 2: the Request-URI becomes the chosen target.
        let uri = request.request_uri_str().unwrap_or_default().to_owned();
        // s.16.5: only a request outside a dialog gets new targets; one inside a
        // dialog (To tag) is routed by its Route set (s.16.4, s.16.6 step 6).
        let new_request = request.to().is_some_and(|to| to.tag().is_none());
        let selected = if new_request { self.selector.as_mut().and_then(|s| s.target(request)) } else { None };
        let target = match selected {
            Some(target) => target,
            None => self.config.rewrites.iter().find(|(from, _)| *from == uri).map_or(uri, |(_, to)| to.clone()),
        };
        if let StartLine::Request { method, .. } = builder.start_line().clone() {
            builder = {
                let mut b = MessageBuilder::new(StartLine::Request { method, uri: Bytes::from(target.clone()) });
                for (n, v) in builder.headers() {
                    b.push(n.clone(), v.clone());
                }
                b.body(builder.body_bytes().clone());
                b
            };
        }
        // s.16.6 step 3: "the proxy MUST decrement its value by one".
        let headers = builder.headers_mut();
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(b"Max-Forwards"));
        let method = request.method().unwrap_or_default();
        let mut front: Vec<(Bytes, Bytes)> = Vec::new();
        // The next hop: the top remaining Route, else the Request-URI.
        let remaining_route = builder
            .headers()
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(b"Route"))
            .map(|(_, v)| String::from_utf8_lossy(v).split(',').next().unwrap_or_default().to_owned());
        let hop = remaining_route.as_deref().and_then(host_of).or_else(|| host_of(&target)).ok_or(400u16)?;
        let (_, flow, transport) = self.config.routes.iter().find(|(h, _, _)| *h == hop).cloned().ok_or(404u16)?;
        // s.16.6 step 8: "The proxy MUST insert a Via header field value into the
        // copy before the existing Via header field values."
        let branch = if self.config.stateless {
            // s.16.11: a stateless proxy's branch is a function of the request, so
            // that a retransmission (and the CANCEL or non-2xx ACK of an INVITE,
            // which share its top Via branch) gets the same one.
            let incoming = request.top_via().and_then(|v| v.branch()).unwrap_or_default();
            format!("{MAGIC_COOKIE}{}", stateless_token(&[incoming, &self.config.host]))
        } else {
            new_branch(&mut self.ids)
        };
        front.push((
            Bytes::from_static(b"Via"),
            Bytes::from(format!("SIP/2.0/{} {};branch={branch}", transport.via_token(), self.config.host)),
        ));
        if method == "INVITE" && self.config.record_route {
            // s.16.6 step 4: Record-Route with lr, so the dialog's requests come back here.
            front.push((Bytes::from_static(b"Record-Route"), Bytes::from(format!("<sip:{};lr>", self.config.host))));
        }
        front.push((Bytes::from_static(b"Max-Forwards"), Bytes::from((max_forwards - 1).to_string())));
        let rest = std::mem::take(builder.headers_mut());
        builder.headers_mut().extend(front);
        builder.headers_mut().extend(rest);
        let message = builder.build().map_err(|_| 400u16)?;
        Ok((message, flow, transport))
    }

    fn layer_event(&mut self, event: transaction::Event) {
        use transaction::Event as E;
        match event {
            E::RequestReceived { server, request, cancels, .. } => {
                if request.method() == Some("CANCEL") {
                    self.cancel_received(server, &request, cancels);
                    return;
                }
                match self.prepare(&request) {
                    Err(status) => self.refuse(server, &request, status),
                    Ok((message, flow, transport)) => {
                        self.next_client += 1;
                        let client = ClientId::new(self.next_client);
                        let forwarded =
                            transaction::Command::Request { id: client, flow, transport, request: message.clone() };
                        if self.layer_command(forwarded).is_err() {
                            self.refuse(server, &request, 500);
                            return;
                        }
                        self.event(Event::Forwarded {
                            method: request.method().unwrap_or_default().to_owned(),
                            request_uri: message.request_uri_str().unwrap_or_default().to_owned(),
                            flow,
                        });
                        let invite = message.method() == Some("INVITE");
                        self.by_server.insert(server, client);
                        self.forwards.insert(
                            client,
                            Forward {
                                server,
                                request: message,
                                provisional: false,
                                cancel: false,
                                cancel_sent: false,
                                flow,
                                transport,
                                deadline: None,
                            },
                        );
                        if invite {
                            // s.16.6 step 11: "If the request is an INVITE, the proxy
                            // MUST set Timer C for that client transaction."
                            self.arm(client, Deadline::TimerC, self.config.timer_c);
                        }
                    }
                }
            }
            E::AckReceived { request, .. } => {
                // The ACK of a 2xx is its own transaction: forward it statelessly.
                if let Ok((message, flow, transport)) = self.prepare(&request) {
                    self.event(Event::Forwarded {
                        method: "ACK".to_owned(),
                        request_uri: message.request_uri_str().unwrap_or_default().to_owned(),
                        flow,
                    });
                    let _ = self.layer_command(transaction::Command::Stateless { flow, transport, message });
                }
            }
            E::ResponseReceived { client, response, .. } => self.response_received(client, &response),
            E::StrayResponse { flow, .. } => {
                // A 2xx after both transactions ended has no way back.
                self.event(Event::PeerError { flow, reason: "response matching no transaction" });
            }
            E::ClientTimedOut { client } => self.give_up(client),
            E::ServerTimedOut { server } => {
                self.by_server.remove(&server);
            }
            E::PeerError { flow, reason } => self.event(Event::PeerError { flow, reason }),
        }
    }

    fn response_received(&mut self, client: ClientId, received: &Message) {
        let Some(code) = received.status_code() else { return };
        let Some(forward) = self.forwards.get_mut(&client) else { return };
        let server = forward.server;
        let cancelling =
            matches!(forward.deadline.and_then(|key| self.timers.get(&key)), Some((_, Deadline::Cancelled)));
        if code < 200 {
            forward.provisional = true;
            if forward.cancel {
                forward.cancel = false;
                self.send_cancel(client);
            } else if code > 100 && !cancelling && forward.deadline.is_some() {
                // s.16.7 step 2: "if the response is a provisional response with
                // status codes 101 to 199 inclusive (i.e., anything but 100), the
                // proxy MUST reset timer C for that client transaction."
                self.arm(client, Deadline::TimerC, self.config.timer_c);
            }
        } else {
            self.disarm(client);
        }
        // s.16.7 step 5: a 100 is not forwarded.
        if code == 100 {
            return;
        }
        // s.16.7 step 9: "The proxy removes the topmost Via header field value from the response."
        let mut builder = received.to_builder();
        pop_first_value(&mut builder, "Via");
        let Ok(upstream) = builder.build() else { return };
        let _ = self.layer_command(transaction::Command::Respond { server, response: upstream });
        if code >= 300 {
            self.forget(client);
        }
    }

    fn send_cancel(&mut self, client: ClientId) {
        let Some(forward) = self.forwards.get_mut(&client) else { return };
        // One CANCEL per forwarded INVITE (Timer C's and the caller's may meet).
        if forward.cancel_sent {
            return;
        }
        forward.cancel_sent = true;
        let Some(request) = cancel(&forward.request) else { return };
        let (flow, transport) = (forward.flow, forward.transport);
        self.next_client += 1;
        let id = ClientId::new(self.next_client);
        let _ = self.layer_command(transaction::Command::Request { id, flow, transport, request });
        // s.9.1: "If there is no final response for the original request in
        // 64*T1 seconds ..., the client SHOULD then consider the original
        // transaction cancelled and SHOULD destroy the client transaction".
        self.arm(client, Deadline::Cancelled, self.config.transaction.timeout());
    }

    fn cancel_received(&mut self, server: ServerId, request: &Message, cancels: Option<ServerId>) {
        let Some(invite_server) = cancels else {
            // s.16.10: no matching transaction: this proxy has nothing to cancel.
            self.refuse(server, request, 481);
            return;
        };
        if let Ok(ok) = response(request, 200, None).build() {
            let _ = self.layer_command(transaction::Command::Respond { server, response: ok });
        }
        let Some(&client) = self.by_server.get(&invite_server) else { return };
        let Some(forward) = self.forwards.get_mut(&client) else { return };
        if forward.provisional {
            self.send_cancel(client);
        } else {
            forward.cancel = true;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    struct Counter(u8);
    impl IdSource for Counter {
        fn fill(&mut self, out: &mut [u8]) {
            for b in out {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
        }
    }

    fn invite(n: usize, to: &str, to_tag: Option<&str>, body: &'static str) -> Message {
        let tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let text = format!(
            "INVITE {to} SIP/2.0\r\nVia: SIP/2.0/TCP cf.example.com;branch=z9hG4bK{}\r\nMax-Forwards: 70\r\n\
             From: <sip:a@example.com>;tag=1\r\nTo: <{to}>{tag}\r\nCall-ID: c{}\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:cf.example.com>\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            n,
            n,
            body.len()
        );
        Message::parse(Bytes::from(text)).unwrap()
    }

    /// Where the proxy sent `request` (flow and Request-URI).
    fn forward(proxy: &mut Proxy, request: Message) -> (u64, String) {
        #[expect(clippy::disallowed_methods, reason = "test epoch")]
        let now = Instant::now();
        proxy
            .handle(now, Input::Received { flow: FlowId::new(1), transport: Transport::Reliable, message: request })
            .unwrap();
        while let Some(output) = proxy.poll_output() {
            if let Output::Transmit { flow, bytes, .. } = output {
                let sent = Message::parse(bytes).unwrap();
                if sent.method().is_some() {
                    return (flow.get(), sent.request_uri_str().unwrap().to_owned());
                }
            }
        }
        panic!("nothing forwarded");
    }

    /// RFC 3261 s.16.11: a stateless proxy forwards a retransmission the same
    /// way (same branch), and a response by its second Via.
    #[test]
    fn a_stateless_proxy_forwards_retransmissions_alike_and_responses_by_via() {
        #[expect(clippy::disallowed_methods, reason = "test epoch")]
        let now = Instant::now();
        let mut config = ProxyConfig::new("core.example.com");
        config.set_stateless(true).add_route("sms.example.com", FlowId::new(2), Transport::Unreliable).add_route(
            "cf.example.com",
            FlowId::new(1),
            Transport::Unreliable,
        );
        let mut proxy = Proxy::new(config, now, Box::new(Counter(0)));
        let mut sent = Vec::new();
        for _ in 0..2 {
            let request = invite(7, "sip:+1@sms.example.com", None, "x");
            proxy
                .handle(
                    now,
                    Input::Received { flow: FlowId::new(1), transport: Transport::Unreliable, message: request },
                )
                .unwrap();
            while let Some(output) = proxy.poll_output() {
                if let Output::Transmit { flow, bytes, .. } = output {
                    sent.push((flow.get(), bytes));
                }
            }
        }
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0], sent[1], "a retransmission is forwarded alike");
        assert!(proxy.is_idle(), "no transaction state");
        // The answer comes back with the proxy's Via on top: it goes out by the next one.
        let forwarded = Message::parse(sent[0].1.clone()).unwrap();
        let ok = response(&forwarded, 200, Some("t")).build().unwrap();
        proxy.handle(now, Input::Datagram { flow: FlowId::new(2), bytes: ok.as_bytes().clone() }).unwrap();
        let Some(Output::Transmit { flow, bytes, .. }) = proxy.poll_output() else { panic!("no response") };
        let back = Message::parse(bytes).unwrap();
        assert_eq!((flow.get(), back.status_code()), (1, Some(200)));
        assert_eq!(back.vias().count(), 1);
        assert_eq!(back.top_via().unwrap().host(), "cf.example.com");
    }

    #[test]
    fn a_selector_chooses_each_new_requests_target() {
        #[expect(clippy::disallowed_methods, reason = "test epoch")]
        let now = Instant::now();
        let mut config = ProxyConfig::new("isf.example.com");
        config
            .add_route("iwf1.example.com", FlowId::new(11), Transport::Reliable)
            .add_route("iwf2.example.com", FlowId::new(12), Transport::Reliable)
            .add_route("sms.example.com", FlowId::new(13), Transport::Reliable)
            .add_rewrite("sip:fixed@sms.example.com", "sip:iwf@iwf1.example.com");
        let mut proxy = Proxy::new(config, now, Box::new(Counter(0)));
        // Bodies over 4 bytes go to IWF2, except for a receiver the selector leaves alone.
        proxy.set_selector(Box::new(|request: &Message| {
            let uri = request.request_uri_str().unwrap_or_default();
            (request.body().len() > 4 && !uri.starts_with("sip:fixed")).then(|| "sip:iwf@iwf2.example.com".to_owned())
        }));
        let cases = [
            // (Request-URI, To tag, body) -> (flow, Request-URI out)
            ("sip:+1@sms.example.com", None, "large", (12, "sip:iwf@iwf2.example.com")),
            ("sip:+1@sms.example.com", None, "tiny", (13, "sip:+1@sms.example.com")),
            ("sip:fixed@sms.example.com", None, "large", (11, "sip:iwf@iwf1.example.com")),
            // In a dialog (To tag): never retargeted by the selector.
            ("sip:+1@sms.example.com", Some("x"), "large", (13, "sip:+1@sms.example.com")),
        ];
        for (n, (uri, tag, body, (flow, out))) in cases.into_iter().enumerate() {
            assert_eq!(forward(&mut proxy, invite(n, uri, tag, body)), (flow, out.to_owned()), "{uri} {tag:?} {body}");
        }
    }
}
