//! A user agent (RFC 3261 s.8, s.12-s.15) on the transaction layer: INVITE
//! legs with their dialogs, BYE, CANCEL, and non-INVITE requests, plus the
//! helpers that build requests and responses.
//!
//! [`UserAgent`] has the machine shape every machine of this workspace has: `handle(now, input)`,
//! then drain `poll_output()`, then read `poll_timeout()`. It owns a
//! [`TransactionLayer`] and drains it into its own queue.
//!
//! What it does for the caller:
//! - builds INVITE, ACK, BYE, CANCEL and MESSAGE with fresh branches, tags and
//!   Call-IDs from the injected [`IdSource`];
//! - keeps one [`Dialog`] per leg: from the first 1xx with a To tag (early)
//!   or the 2xx (confirmed);
//! - as UAS, retransmits its 2xx from T1 doubling to T2 until the ACK
//!   arrives; after 64*T1 with no ACK it ends the leg with a BYE
//!   (s.13.3.1.4, [`EndReason::NoAck`]);
//! - as UAC, sends the ACK of a 2xx when the caller asks
//!   ([`Command::Ack`]) or at once ([`UaConfig::set_auto_ack`]), and sends
//!   the same ACK again for each retransmitted 2xx (s.13.2.2.4);
//! - answers 481 to a request with a To tag that matches no dialog
//!   (s.12.2.2), 500 to one out of CSeq order, 200 and 487 to a CANCEL
//!   (s.9.2), 200 to a BYE (s.15.1.2);
//! - defers a CANCEL until a provisional response arrives (s.9.1), and after
//!   64*T1 without a final response gives the INVITE up;
//! - bounds the wait for an outbound INVITE's final response after a
//!   provisional one ([`UaConfig::set_invite_timeout`]): on expiry it
//!   CANCELs and the leg ends [`EndReason::TimedOut`];
//! - answers 503 with Retry-After to an inbound INVITE beyond
//!   [`UaConfig::set_max_dialogs`] legs;
//! - ACKs and BYEs a 2xx that arrives after a CANCEL, and a second 2xx from
//!   another fork (s.13.2.2.4).
//!
//! Limits: one dialog per outbound leg (a 1xx from a second fork is passed
//! on but makes no dialog); a re-INVITE is answered 488 (no session
//! modification); in-dialog requests go out on the leg's flow (the runtime
//! maps the route set's first hop to a flow when it opens it).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;

use crate::capabilities::Capabilities;
use crate::dialog::{Dialog, DialogId};
use crate::ids::{new_branch, new_call_id, new_tag, ClientId, ServerId};
pub use crate::ids::{FlowId, IdSource, IncomingId, LegId, RequestId};
use crate::sip::{Message, MessageBuilder};
use crate::transaction::{self, TransactionConfig, TransactionLayer, Transport};

/// The reason phrase this stack writes for `code` (RFC 3261 s.21).
#[must_use]
pub const fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        603 => "Decline",
        101..=199 => "Provisional",
        201..=299 => "Success",
        300..=399 => "Redirection",
        401..=499 => "Client Error",
        501..=599 => "Server Error",
        _ => "Global Failure",
    }
}

/// How an outbound leg ends once we CANCELled it: by the caller's wish or
/// because the INVITE timeout ran out.
const fn cancelled_reason(timed_out: bool) -> EndReason {
    if timed_out {
        EndReason::TimedOut
    } else {
        EndReason::Cancelled
    }
}

/// What an out-of-dialog request needs (s.8.1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestParams<'a> {
    /// The Request-URI and To URI.
    pub target: &'a str,
    /// The From URI.
    pub from: &'a str,
    /// The To URI (often the target).
    pub to: &'a str,
    /// The Contact URI (INVITE: required, s.8.1.1.8).
    pub contact: Option<&'a str>,
    /// The host (and port) written as Via sent-by.
    pub via_host: &'a str,
    /// The transport of the first hop.
    pub transport: Transport,
    /// The body (empty for none).
    pub body: Bytes,
    /// Its Content-Type.
    pub content_type: Option<&'a str>,
}

/// An out-of-dialog request (INVITE, MESSAGE, OPTIONS ...) with a fresh
/// branch, From tag and Call-ID from `ids`, CSeq 1 and Max-Forwards 70
/// (s.8.1.1). The caller may add headers before building it.
pub fn new_request(method: &str, params: &RequestParams<'_>, ids: &mut dyn IdSource) -> MessageBuilder {
    let mut request = MessageBuilder::request(method, params.target);
    let branch = new_branch(ids);
    let tag = new_tag(ids);
    let call_id = new_call_id(ids, params.via_host);
    request
        .header("Via", &format!("SIP/2.0/{} {};branch={branch}", params.transport.via_token(), params.via_host))
        .header("Max-Forwards", "70")
        .header("From", &format!("<{}>;tag={tag}", params.from))
        .header("To", &format!("<{}>", params.to))
        .header("Call-ID", &call_id)
        .header("CSeq", &format!("1 {method}"));
    if let Some(contact) = params.contact {
        request.header("Contact", &format!("<{contact}>"));
    }
    if let Some(content_type) = params.content_type {
        request.header("Content-Type", content_type);
    }
    request.body(params.body.clone());
    request
}

/// A response to `request` with `to_tag` added when To has none (s.8.2.6.2),
/// and the reason phrase of [`reason_phrase`].
#[must_use]
pub fn response(request: &Message, code: u16, to_tag: Option<&str>) -> MessageBuilder {
    // s.8.2.6.2: "with the exception of the 100 (Trying) response, in which a tag MAY be present".
    let tag = if code == 100 { None } else { to_tag };
    MessageBuilder::response_to(request, code, reason_phrase(code), tag)
}

/// The CANCEL of a pending INVITE (s.9.1): same Request-URI, Call-ID, To,
/// From, CSeq number and top Via (so the same branch), the INVITE's Route
/// headers, method CANCEL.
#[must_use]
pub fn cancel(invite: &Message) -> Option<Message> {
    let mut request = MessageBuilder::request("CANCEL", invite.request_uri_str()?);
    request
        .header("Via", invite.header_values("Via").next()?)
        .header("Max-Forwards", "70")
        .header("From", &invite.headers_named("From").next()?.value())
        .header("To", &invite.headers_named("To").next()?.value())
        .header("Call-ID", invite.call_id()?)
        .header("CSeq", &format!("{} CANCEL", invite.cseq()?.seq));
    for route in invite.headers_named("Route") {
        request.header("Route", &route.value());
    }
    request.build().ok()
}

/// User agent settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UaConfig {
    transaction: TransactionConfig,
    via_host: String,
    contact: String,
    auto_ack: bool,
    invite_timeout: Duration,
    max_dialogs: usize,
    capabilities: Capabilities,
}

impl UaConfig {
    /// A user agent at `via_host` (Via sent-by) reachable at `contact` (a URI).
    #[must_use]
    pub fn new(via_host: &str, contact: &str) -> Self {
        Self {
            transaction: TransactionConfig::default(),
            via_host: via_host.to_owned(),
            contact: contact.to_owned(),
            auto_ack: true,
            // As a proxy's Timer C (RFC 3261 s.16.6 step 11): more than 3 minutes.
            invite_timeout: Duration::from_secs(3 * 60 + 1),
            max_dialogs: 4096,
            capabilities: Capabilities::default(),
        }
    }
    /// The non-INVITE methods the caller serves (default: all of them).
    /// Requests of other methods, in or out of a dialog, are answered here
    /// (OPTIONS 200 with Allow and Accept, or 503 past
    /// [`UaConfig::set_max_dialogs`]; 405 with Allow; 501) and never reach
    /// the caller.
    pub fn set_capabilities(&mut self, capabilities: Capabilities) -> &mut Self {
        self.capabilities = capabilities;
        self
    }
    /// See [`UaConfig::set_capabilities`].
    #[must_use]
    pub const fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }
    /// How long an outbound INVITE may wait for its final response once a
    /// provisional response has stopped Timer B (default 3 min 1 s, as a
    /// proxy's Timer C), restarted by every 101-199 response. On expiry the
    /// INVITE is CANCELled and the leg ends with [`EndReason::TimedOut`]
    /// (at once on the 487, at the latest 64*T1 later).
    pub fn set_invite_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.invite_timeout = timeout;
        self
    }
    /// Most legs (INVITE usages, each with at most one dialog) alive at once
    /// (default 4096). A new inbound INVITE beyond it is answered 503 with the
    /// transaction config's Retry-After
    /// ([`TransactionConfig::set_retry_after`]); the caller's own INVITEs are
    /// not refused, but count.
    pub fn set_max_dialogs(&mut self, count: usize) -> &mut Self {
        self.max_dialogs = count;
        self
    }
    /// See [`UaConfig::set_invite_timeout`].
    #[must_use]
    pub const fn invite_timeout(&self) -> Duration {
        self.invite_timeout
    }
    /// See [`UaConfig::set_max_dialogs`].
    #[must_use]
    pub const fn max_dialogs(&self) -> usize {
        self.max_dialogs
    }
    /// The transaction timers.
    pub fn set_transaction(&mut self, config: TransactionConfig) -> &mut Self {
        self.transaction = config;
        self
    }
    /// Whether a 2xx to an outbound INVITE is ACKed at once (default `true`);
    /// when `false` the caller sends [`Command::Ack`] (a B2BUA's ACK policy).
    pub fn set_auto_ack(&mut self, auto_ack: bool) -> &mut Self {
        self.auto_ack = auto_ack;
        self
    }
    /// See [`UaConfig::set_transaction`].
    #[must_use]
    pub const fn transaction(&self) -> &TransactionConfig {
        &self.transaction
    }
    /// The Via sent-by host.
    #[must_use]
    pub fn via_host(&self) -> &str {
        &self.via_host
    }
    /// The Contact URI.
    #[must_use]
    pub fn contact(&self) -> &str {
        &self.contact
    }
    /// See [`UaConfig::set_auto_ack`].
    #[must_use]
    pub const fn auto_ack(&self) -> bool {
        self.auto_ack
    }
}

/// What the caller asks of the user agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Start an outbound leg with an INVITE.
    Invite {
        /// The caller's name for the leg (an outbound [`LegId::new`]).
        leg: LegId,
        /// The first hop.
        flow: FlowId,
        /// Its transport.
        transport: Transport,
        /// The Request-URI (and To URI).
        target: String,
        /// The From URI.
        from: String,
        /// The body (an SDP offer; opaque here).
        body: Bytes,
        /// Its Content-Type.
        content_type: Option<String>,
    },
    /// Answer an inbound leg: 1xx (early dialog), 2xx (retransmitted until its
    /// ACK) or 300-699 (the leg ends).
    Respond {
        /// The inbound leg.
        leg: LegId,
        /// The status code.
        code: u16,
        /// The body (an SDP answer for a 2xx; opaque here).
        body: Bytes,
        /// Its Content-Type.
        content_type: Option<String>,
    },
    /// ACK the 2xx of an outbound leg (only with auto-ACK off; never before the 2xx).
    Ack {
        /// The outbound leg.
        leg: LegId,
    },
    /// End a leg whatever its state: CANCEL a pending outbound INVITE,
    /// reject a pending inbound one with 480, BYE an answered one (after its
    /// ACK, s.15). Ending a leg that already ends is a no-op.
    End {
        /// The leg.
        leg: LegId,
    },
    /// Send an out-of-dialog non-INVITE request (MESSAGE, OPTIONS ...).
    Request {
        /// The caller's name for it.
        request: RequestId,
        /// The method.
        method: String,
        /// The first hop.
        flow: FlowId,
        /// Its transport.
        transport: Transport,
        /// The Request-URI (and To URI).
        target: String,
        /// The From URI.
        from: String,
        /// The body.
        body: Bytes,
        /// Its Content-Type.
        content_type: Option<String>,
    },
    /// Send a non-INVITE request in the dialog of a leg (MESSAGE, INFO ...).
    RequestInDialog {
        /// The caller's name for it.
        request: RequestId,
        /// The leg.
        leg: LegId,
        /// The method (not INVITE, ACK, CANCEL or BYE).
        method: String,
        /// The body.
        body: Bytes,
        /// Its Content-Type.
        content_type: Option<String>,
    },
    /// Answer a request of [`Event::RequestReceived`].
    RespondRequest {
        /// The request.
        incoming: IncomingId,
        /// The status code.
        code: u16,
    },
}

/// What comes into the user agent.
pub type Input = crate::machine::Input<Command>;

/// What the user agent asks of the runtime, or tells the caller.
pub type Output = crate::machine::Output<Event>;

/// Why a leg ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndReason {
    /// A final response 300-699: received (outbound) or sent (inbound).
    Rejected {
        /// The status code.
        status: u16,
    },
    /// No final response (Timer B, or [`UaConfig::set_invite_timeout`] after
    /// a provisional one: the INVITE was CANCELled), or no response to the BYE.
    TimedOut,
    /// CANCELled (by us for an outbound leg, by the far side for an inbound one).
    Cancelled,
    /// The far side sent BYE.
    RemoteBye,
    /// We sent BYE ([`Command::End`]).
    LocalBye,
    /// Our 2xx was never ACKed (s.13.3.1.4); we sent BYE.
    NoAck,
}

/// What the user agent tells the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A new INVITE: an inbound leg waits for [`Command::Respond`].
    IncomingCall {
        /// The new leg.
        leg: LegId,
        /// The INVITE.
        request: Message,
    },
    /// A provisional response on an outbound leg.
    Progress {
        /// The leg.
        leg: LegId,
        /// The response.
        response: Message,
    },
    /// The 2xx of an outbound leg (once; retransmissions are handled here).
    Answered {
        /// The leg.
        leg: LegId,
        /// The response (its body is the SDP answer).
        response: Message,
    },
    /// The ACK of our 2xx on an inbound leg: the dialog is confirmed.
    Acked {
        /// The leg.
        leg: LegId,
        /// The ACK.
        request: Message,
    },
    /// A leg ended; it is forgotten.
    Ended {
        /// The leg.
        leg: LegId,
        /// Why.
        reason: EndReason,
    },
    /// A non-INVITE request (out of dialog, or in the dialog of `leg`) waits
    /// for [`Command::RespondRequest`].
    RequestReceived {
        /// Its name.
        incoming: IncomingId,
        /// The leg whose dialog it belongs to.
        leg: Option<LegId>,
        /// The request.
        request: Message,
    },
    /// A request of [`Command::Request`] or [`Command::RequestInDialog`] ended.
    RequestCompleted {
        /// The request.
        request: RequestId,
        /// The final status (408 on timeout).
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

/// A caller's mistake; the user agent's state is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UsageError {
    /// No leg, request or incoming request has this id.
    #[error("unknown id")]
    UnknownId,
    /// The id is in use.
    #[error("duplicate id")]
    DuplicateId,
    /// The command does not fit the leg's state or direction.
    #[error("the command does not fit the leg's state")]
    WrongState,
    /// The arguments do not make a valid SIP message.
    #[error("the arguments do not make a valid SIP message")]
    BadMessage,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// INVITE sent or received, no final response.
    Calling,
    /// 2xx sent or received, ACK not yet sent or received.
    Answered,
    /// ACKed.
    Confirmed,
    /// BYE sent, or (inbound) waiting for the ACK to send it.
    Ending,
}

#[derive(Debug)]
enum Side {
    Uac {
        client: ClientId,
        provisional: bool,
        cancel_requested: bool,
        cancel_sent: bool,
        /// The INVITE timeout CANCELled it.
        timed_out: bool,
        ack: Option<Message>,
    },
    Uas {
        server: ServerId,
        local_tag: String,
        ok: Option<Message>,
        interval: Duration,
        bye_when_acked: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LegTimer {
    /// UAS: the next 2xx retransmission.
    Retransmit = 0,
    /// UAS: 64*T1 without ACK; UAC: 64*T1 after CANCEL without a final response.
    GiveUp = 1,
    /// UAC: the INVITE timeout after a provisional response.
    Answer = 2,
}

type TimerKey = (Instant, u64);

#[derive(Debug)]
struct Leg {
    flow: FlowId,
    transport: Transport,
    invite: Message,
    side: Side,
    dialog: Option<Dialog>,
    phase: Phase,
    end_reason: EndReason,
    timers: [Option<TimerKey>; 3],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientPurpose {
    Invite(LegId),
    Bye(LegId),
    /// CANCEL, and ACK-less extras (BYE of a stray fork): nothing to report.
    Quiet,
    Request(RequestId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerPurpose {
    Invite(LegId),
    Incoming(IncomingId),
}

/// An ended outbound dialog: until when it is kept, its id, and its ACK.
type Retired = (Instant, DialogId, Option<(FlowId, Transport, Message)>);

/// A SIP user agent. See the module docs.
pub struct UserAgent {
    config: UaConfig,
    ids: Box<dyn IdSource + Send>,
    layer: TransactionLayer,
    last_now: Instant,
    legs: HashMap<LegId, Leg>,
    dialogs: HashMap<DialogId, LegId>,
    clients: HashMap<ClientId, ClientPurpose>,
    servers: HashMap<ServerId, ServerPurpose>,
    incoming: HashMap<IncomingId, ServerId>,
    requests: HashMap<RequestId, ClientId>,
    next_client: u64,
    next_inbound: u64,
    next_incoming: u64,
    timers: BTreeMap<TimerKey, (LegId, LegTimer)>,
    timer_seq: u64,
    /// Dialogs of ended outbound legs, kept 64*T1 so a late 2xx retransmission
    /// gets its ACK again instead of a new BYE.
    retired: VecDeque<Retired>,
    ready: VecDeque<Output>,
}

impl fmt::Debug for UserAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserAgent").field("legs", &self.legs.len()).field("layer", &self.layer).finish_non_exhaustive()
    }
}

impl UserAgent {
    /// A user agent with no legs. Branches, tags and Call-IDs come from `ids`.
    pub fn new(config: UaConfig, now: Instant, ids: Box<dyn IdSource + Send>) -> Self {
        let layer = TransactionLayer::new(config.transaction.clone(), now);
        Self {
            config,
            ids,
            layer,
            last_now: now,
            legs: HashMap::new(),
            dialogs: HashMap::new(),
            clients: HashMap::new(),
            servers: HashMap::new(),
            incoming: HashMap::new(),
            requests: HashMap::new(),
            next_client: 0,
            next_inbound: 0,
            next_incoming: 0,
            timers: BTreeMap::new(),
            timer_seq: 0,
            retired: VecDeque::new(),
            ready: VecDeque::new(),
        }
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &UaConfig {
        &self.config
    }

    /// The transaction layer (for its counts).
    #[must_use]
    pub const fn transactions(&self) -> &TransactionLayer {
        &self.layer
    }

    /// Legs not yet ended.
    #[must_use]
    pub fn leg_count(&self) -> usize {
        self.legs.len()
    }

    /// The dialog of a leg, once a 1xx with a To tag or a 2xx made one.
    #[must_use]
    pub fn dialog(&self, leg: LegId) -> Option<&Dialog> {
        self.legs.get(&leg).and_then(|l| l.dialog.as_ref())
    }

    /// The INVITE of a leg (sent or received).
    #[must_use]
    pub fn invite(&self, leg: LegId) -> Option<&Message> {
        self.legs.get(&leg).map(|l| &l.invite)
    }

    /// Whether nothing is left: no leg, no transaction, no pending request.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.legs.is_empty() && self.layer.is_idle() && self.requests.is_empty() && self.incoming.is_empty()
    }

    /// Feeds one input. Bad peer input never returns `Err`.
    ///
    /// # Errors
    /// [`UsageError`] for a command that cannot be carried out.
    pub fn handle(&mut self, now: Instant, input: Input) -> Result<(), UsageError> {
        self.last_now = self.last_now.max(now);
        while self.retired.front().is_some_and(|(until, _, _)| *until <= self.last_now) {
            self.retired.pop_front();
        }
        let result = match input {
            Input::Received { flow, transport, message } => {
                self.feed(transaction::Input::Received { flow, transport, message });
                Ok(())
            }
            Input::Datagram { flow, bytes } => {
                self.feed(transaction::Input::Datagram { flow, bytes });
                Ok(())
            }
            Input::Timeout => {
                self.feed(transaction::Input::Timeout);
                self.timeout();
                Ok(())
            }
            Input::Command(command) => self.command(command),
        };
        self.pump();
        result
    }

    /// The Call-ID of leg `leg` (RFC 3261 s.8.1.1.4: an outbound leg's is
    /// made here with its INVITE), `None` for no such leg.
    #[must_use]
    pub fn call_id(&self, leg: LegId) -> Option<&str> {
        self.legs.get(&leg).and_then(|l| l.invite.call_id())
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

    // ----- plumbing --------------------------------------------------------

    fn feed(&mut self, input: transaction::Input) {
        // Peer input and timeouts never fail in the layer.
        let _ = self.layer.handle(self.last_now, input);
        self.pump();
    }

    fn layer_command(&mut self, command: transaction::Command) -> Result<(), transaction::UsageError> {
        self.layer.handle(self.last_now, transaction::Input::Command(command))
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

    fn next_client(&mut self) -> ClientId {
        self.next_client += 1;
        ClientId::new(self.next_client)
    }

    fn arm(&mut self, leg: LegId, kind: LegTimer, after: Duration) {
        self.disarm(leg, kind);
        let key = (crate::machine::later(self.last_now, after), self.timer_seq);
        self.timer_seq += 1;
        if let Some(l) = self.legs.get_mut(&leg) {
            l.timers[kind as usize] = Some(key);
            self.timers.insert(key, (leg, kind));
        }
    }

    fn disarm(&mut self, leg: LegId, kind: LegTimer) {
        if let Some(key) = self.legs.get_mut(&leg).and_then(|l| l.timers[kind as usize].take()) {
            self.timers.remove(&key);
        }
    }

    fn end_leg(&mut self, id: LegId, reason: EndReason) {
        let Some(leg) = self.legs.remove(&id) else { return };
        for key in leg.timers.into_iter().flatten() {
            self.timers.remove(&key);
        }
        if let Some(dialog) = &leg.dialog {
            self.dialogs.remove(dialog.id());
        }
        if let Side::Uac { client, ack, .. } = leg.side {
            self.clients.remove(&client);
            if let Some(dialog) = leg.dialog {
                let until = crate::machine::later(self.last_now, self.config.transaction.timeout());
                let ack = ack.map(|ack| (leg.flow, leg.transport, ack));
                self.retired.push_back((until, dialog.id().clone(), ack));
            }
        }
        self.event(Event::Ended { leg: id, reason });
    }

    fn send_request(&mut self, purpose: ClientPurpose, flow: FlowId, transport: Transport, request: Message) -> bool {
        let client = self.next_client();
        if self.layer_command(transaction::Command::Request { id: client, flow, transport, request }).is_err() {
            return false;
        }
        self.clients.insert(client, purpose);
        true
    }

    fn stateless(&mut self, flow: FlowId, transport: Transport, message: Message) {
        let _ = self.layer_command(transaction::Command::Stateless { flow, transport, message });
    }

    fn respond_server(&mut self, server: ServerId, response: MessageBuilder) {
        if let Ok(response) = response.build() {
            let _ = self.layer_command(transaction::Command::Respond { server, response });
        }
    }

    // ----- commands --------------------------------------------------------

    fn command(&mut self, command: Command) -> Result<(), UsageError> {
        match command {
            Command::Invite { leg, flow, transport, target, from, body, content_type } => {
                if leg.is_inbound() || self.legs.contains_key(&leg) {
                    return Err(UsageError::DuplicateId);
                }
                let params = RequestParams {
                    target: &target,
                    from: &from,
                    to: &target,
                    contact: Some(&self.config.contact),
                    via_host: &self.config.via_host,
                    transport,
                    body,
                    content_type: content_type.as_deref(),
                };
                let invite =
                    new_request("INVITE", &params, &mut self.ids).build().map_err(|_| UsageError::BadMessage)?;
                let client = self.next_client();
                self.layer_command(transaction::Command::Request {
                    id: client,
                    flow,
                    transport,
                    request: invite.clone(),
                })
                .map_err(|_| UsageError::BadMessage)?;
                self.clients.insert(client, ClientPurpose::Invite(leg));
                let side = Side::Uac {
                    client,
                    provisional: false,
                    cancel_requested: false,
                    cancel_sent: false,
                    timed_out: false,
                    ack: None,
                };
                self.legs.insert(
                    leg,
                    Leg {
                        flow,
                        transport,
                        invite,
                        side,
                        dialog: None,
                        phase: Phase::Calling,
                        end_reason: EndReason::LocalBye,
                        timers: [None; 3],
                    },
                );
                Ok(())
            }
            Command::Respond { leg, code, body, content_type } => self.respond(leg, code, body, content_type),
            Command::Ack { leg } => {
                let l = self.legs.get(&leg).ok_or(UsageError::UnknownId)?;
                if !matches!(l.side, Side::Uac { ack: None, .. }) || l.phase != Phase::Answered {
                    return Err(UsageError::WrongState);
                }
                self.send_ack(leg);
                Ok(())
            }
            Command::End { leg } => self.end(leg),
            Command::Request { request, method, flow, transport, target, from, body, content_type } => {
                if self.requests.contains_key(&request) {
                    return Err(UsageError::DuplicateId);
                }
                if matches!(method.as_str(), "INVITE" | "ACK" | "CANCEL" | "BYE") {
                    return Err(UsageError::BadMessage);
                }
                let params = RequestParams {
                    target: &target,
                    from: &from,
                    to: &target,
                    contact: None,
                    via_host: &self.config.via_host,
                    transport,
                    body,
                    content_type: content_type.as_deref(),
                };
                let message =
                    new_request(&method, &params, &mut self.ids).build().map_err(|_| UsageError::BadMessage)?;
                self.start_request(request, flow, transport, message)
            }
            Command::RequestInDialog { request, leg, method, body, content_type } => {
                if self.requests.contains_key(&request) {
                    return Err(UsageError::DuplicateId);
                }
                if matches!(method.as_str(), "INVITE" | "ACK" | "CANCEL" | "BYE") {
                    return Err(UsageError::BadMessage);
                }
                let via_host = self.config.via_host.clone();
                let l = self.legs.get_mut(&leg).ok_or(UsageError::UnknownId)?;
                let (flow, transport) = (l.flow, l.transport);
                let dialog = l.dialog.as_mut().ok_or(UsageError::WrongState)?;
                let mut builder = dialog.request(&method, &mut self.ids, transport, &via_host);
                if let Some(content_type) = &content_type {
                    builder.header("Content-Type", content_type);
                }
                builder.body(body);
                let message = builder.build().map_err(|_| UsageError::BadMessage)?;
                self.start_request(request, flow, transport, message)
            }
            Command::RespondRequest { incoming, code } => {
                let server = *self.incoming.get(&incoming).ok_or(UsageError::UnknownId)?;
                let request = self.layer.server_request(server).ok_or(UsageError::UnknownId)?;
                let tag = new_tag(&mut self.ids);
                let response = response(request, code, Some(&tag)).build().map_err(|_| UsageError::BadMessage)?;
                self.layer_command(transaction::Command::Respond { server, response })
                    .map_err(|_| UsageError::WrongState)?;
                if code >= 200 {
                    self.incoming.remove(&incoming);
                    self.servers.remove(&server);
                }
                Ok(())
            }
        }
    }

    fn start_request(
        &mut self,
        request: RequestId,
        flow: FlowId,
        transport: Transport,
        message: Message,
    ) -> Result<(), UsageError> {
        let client = self.next_client();
        self.layer_command(transaction::Command::Request { id: client, flow, transport, request: message })
            .map_err(|_| UsageError::BadMessage)?;
        self.clients.insert(client, ClientPurpose::Request(request));
        self.requests.insert(request, client);
        Ok(())
    }

    fn respond(&mut self, id: LegId, code: u16, body: Bytes, content_type: Option<String>) -> Result<(), UsageError> {
        let contact = self.config.contact.clone();
        let t1 = self.config.transaction.t1();
        let timeout = self.config.transaction.timeout();
        let leg = self.legs.get_mut(&id).ok_or(UsageError::UnknownId)?;
        let Side::Uas { server, local_tag, .. } = &leg.side else { return Err(UsageError::WrongState) };
        if leg.phase != Phase::Calling || !(100..=699).contains(&code) {
            return Err(UsageError::WrongState);
        }
        let (server, local_tag) = (*server, local_tag.clone());
        let mut builder = response(&leg.invite, code, Some(&local_tag));
        if code < 300 && code > 100 {
            // s.12.1.1: "When a UAS responds to a request with a response that
            // establishes a dialog ..., the UAS MUST copy all Record-Route header
            // field values from the request into the response" and "MUST add a
            // Contact header field to the response".
            for record_route in leg.invite.headers_named("Record-Route") {
                builder.header("Record-Route", &record_route.value());
            }
            builder.header("Contact", &format!("<{contact}>"));
        }
        if let Some(content_type) = &content_type {
            builder.header("Content-Type", content_type);
        }
        builder.body(body);
        let message = builder.build().map_err(|_| UsageError::BadMessage)?;
        if (101..300).contains(&code) && leg.dialog.is_none() {
            if let Some(dialog) = Dialog::from_uas(&leg.invite, &local_tag, &contact, code >= 200) {
                self.dialogs.insert(dialog.id().clone(), id);
                leg.dialog = Some(dialog);
            }
        }
        self.layer_command(transaction::Command::Respond { server, response: message.clone() })
            .map_err(|_| UsageError::WrongState)?;
        match code {
            100..=199 => {}
            200..=299 => {
                let leg = self.legs.get_mut(&id).ok_or(UsageError::UnknownId)?;
                if let Some(dialog) = &mut leg.dialog {
                    dialog.confirm(None);
                }
                leg.phase = Phase::Answered;
                if let Side::Uas { ok, interval, .. } = &mut leg.side {
                    *ok = Some(message);
                    *interval = t1;
                }
                // s.13.3.1.4: "the 2xx response is passed to the transport with an
                // interval that starts at T1 seconds and doubles for each
                // retransmission until it reaches T2 seconds". "If the server
                // retransmits the 2xx response for 64*T1 seconds without receiving
                // an ACK, the dialog is confirmed, but the session SHOULD be
                // terminated."
                self.arm(id, LegTimer::Retransmit, t1);
                self.arm(id, LegTimer::GiveUp, timeout);
            }
            _ => {
                self.servers.remove(&server);
                self.end_leg(id, EndReason::Rejected { status: code });
            }
        }
        Ok(())
    }

    fn send_ack(&mut self, id: LegId) {
        let via_host = self.config.via_host.clone();
        let Some(leg) = self.legs.get_mut(&id) else { return };
        let Some(dialog) = &leg.dialog else { return };
        let Some(seq) = leg.invite.cseq().map(|c| c.seq) else { return };
        let Ok(ack) = dialog.ack(seq, &mut self.ids, leg.transport, &via_host).build() else { return };
        if let Side::Uac { ack: slot, .. } = &mut leg.side {
            *slot = Some(ack.clone());
        }
        leg.phase = Phase::Confirmed;
        let (flow, transport) = (leg.flow, leg.transport);
        // s.13.2.2.4: "The ACK MUST be passed to the client transport every time a
        // retransmission of the 2xx final response that triggered the ACK arrives."
        self.stateless(flow, transport, ack);
    }

    fn send_bye(&mut self, id: LegId, reason: EndReason) {
        let via_host = self.config.via_host.clone();
        let Some(leg) = self.legs.get_mut(&id) else { return };
        leg.phase = Phase::Ending;
        leg.end_reason = reason;
        let (flow, transport) = (leg.flow, leg.transport);
        let Some(dialog) = &mut leg.dialog else { return };
        let Ok(bye) = dialog.request("BYE", &mut self.ids, transport, &via_host).build() else { return };
        self.disarm(id, LegTimer::Retransmit);
        self.disarm(id, LegTimer::GiveUp);
        if !self.send_request(ClientPurpose::Bye(id), flow, transport, bye) {
            self.end_leg(id, reason);
        }
    }

    fn end(&mut self, id: LegId) -> Result<(), UsageError> {
        let leg = self.legs.get_mut(&id).ok_or(UsageError::UnknownId)?;
        match (&mut leg.side, leg.phase) {
            (_, Phase::Ending) => {}
            (Side::Uac { .. }, Phase::Calling) => self.send_cancel(id),
            (Side::Uac { .. }, Phase::Answered) => {
                // A held ACK goes out first: a dialog is ended by BYE after ACK.
                self.send_ack(id);
                self.send_bye(id, EndReason::LocalBye);
            }
            (Side::Uas { .. }, Phase::Calling) => {
                self.respond(id, 480, Bytes::new(), None)?;
            }
            (Side::Uas { bye_when_acked, .. }, Phase::Answered) => {
                // s.15: "the callee's UA MUST NOT send a BYE on a confirmed dialog
                // until it has received an ACK for its 2xx response or until the
                // server transaction times out."
                *bye_when_acked = true;
                leg.phase = Phase::Ending;
                leg.end_reason = EndReason::LocalBye;
            }
            (_, Phase::Confirmed) => self.send_bye(id, EndReason::LocalBye),
        }
        Ok(())
    }

    fn send_cancel(&mut self, id: LegId) {
        let timeout = self.config.transaction.timeout();
        let Some(leg) = self.legs.get_mut(&id) else { return };
        let Side::Uac { provisional, cancel_requested, cancel_sent, .. } = &mut leg.side else { return };
        *cancel_requested = true;
        // s.9.1: "If no provisional response has been received, the CANCEL request
        // MUST NOT be sent; rather, the client MUST wait for the arrival of a
        // provisional response before sending the request."
        if !*provisional || *cancel_sent {
            return;
        }
        *cancel_sent = true;
        let (flow, transport) = (leg.flow, leg.transport);
        let Some(cancel) = cancel(&leg.invite) else { return };
        self.send_request(ClientPurpose::Quiet, flow, transport, cancel);
        // s.9.1: "If there is no final response for the original request in 64*T1
        // seconds ..., the client SHOULD then consider the original transaction
        // cancelled and SHOULD destroy the client transaction".
        self.arm(id, LegTimer::GiveUp, timeout);
    }

    fn timeout(&mut self) {
        while let Some(entry) = self.timers.first_entry() {
            let &key = entry.key();
            if key.0 > self.last_now {
                break;
            }
            let (id, kind) = entry.remove();
            let Some(leg) = self.legs.get_mut(&id) else { continue };
            if leg.timers[kind as usize] == Some(key) {
                leg.timers[kind as usize] = None;
            }
            let t2 = self.config.transaction.t2();
            match (&mut leg.side, kind) {
                (Side::Uas { ok: Some(ok), interval, .. }, LegTimer::Retransmit) => {
                    *interval = (*interval * 2).min(t2);
                    let (next, ok, flow, transport) = (*interval, ok.clone(), leg.flow, leg.transport);
                    self.stateless(flow, transport, ok);
                    self.arm(id, LegTimer::Retransmit, next);
                }
                (Side::Uas { bye_when_acked, .. }, LegTimer::GiveUp) => {
                    // s.13.3.1.4: no ACK in 64*T1: "the dialog is confirmed, but the
                    // session SHOULD be terminated. This is accomplished with a BYE".
                    *bye_when_acked = false;
                    if let Some(dialog) = &mut leg.dialog {
                        dialog.confirm(None);
                    }
                    self.send_bye(id, EndReason::NoAck);
                }
                (Side::Uac { client, timed_out, .. }, LegTimer::GiveUp) => {
                    // s.9.1: the CANCELled INVITE had no final response in 64*T1.
                    let (client, reason) = (*client, cancelled_reason(*timed_out));
                    if leg.phase == Phase::Calling {
                        self.clients.remove(&client);
                        let _ = self.layer_command(transaction::Command::Terminate { client });
                        self.end_leg(id, reason);
                    }
                }
                (Side::Uac { timed_out, cancel_requested: false, .. }, LegTimer::Answer)
                    if leg.phase == Phase::Calling =>
                {
                    *timed_out = true;
                    self.send_cancel(id);
                }
                _ => {}
            }
        }
    }

    // ----- layer events ----------------------------------------------------

    fn layer_event(&mut self, event: transaction::Event) {
        use transaction::Event as E;
        match event {
            E::RequestReceived { server, flow, transport, request, cancels } => {
                self.request_received(server, flow, transport, request, cancels);
            }
            E::AckReceived { request, .. } => self.ack_received(request),
            E::ResponseReceived { client, flow, transport, response } => {
                self.response_received(client, flow, transport, response);
            }
            E::StrayResponse { flow, transport, response } => {
                // A 2xx retransmitted after Timer M: ACK it again (s.13.2.2.4).
                if response.status_code().is_some_and(|c| (200..300).contains(&c)) {
                    self.orphan_2xx(flow, transport, &response);
                }
            }
            E::ClientTimedOut { client } => match self.clients.remove(&client) {
                Some(ClientPurpose::Invite(leg)) => self.end_leg(leg, EndReason::TimedOut),
                Some(ClientPurpose::Bye(leg)) => {
                    let reason = self.legs.get(&leg).map_or(EndReason::LocalBye, |l| l.end_reason);
                    self.end_leg(leg, reason);
                }
                Some(ClientPurpose::Request(request)) => {
                    self.requests.remove(&request);
                    self.event(Event::RequestCompleted { request, status: 408 });
                }
                Some(ClientPurpose::Quiet) | None => {}
            },
            E::ServerTimedOut { server } => {
                self.servers.remove(&server);
            }
            E::PeerError { flow, reason } => self.event(Event::PeerError { flow, reason }),
        }
    }

    fn request_received(
        &mut self,
        server: ServerId,
        flow: FlowId,
        transport: Transport,
        request: Message,
        cancels: Option<ServerId>,
    ) {
        let method = request.method().unwrap_or_default().to_owned();
        let tag = new_tag(&mut self.ids);
        if method == "CANCEL" {
            let leg = cancels.and_then(|s| match self.servers.get(&s) {
                Some(ServerPurpose::Invite(leg)) => Some(*leg),
                _ => None,
            });
            // s.9.2: "If the UAS did not find a matching transaction for the CANCEL
            // ..., it SHOULD respond to the CANCEL with a 481".
            let code = if cancels.is_some() { 200 } else { 481 };
            self.respond_server(server, response(&request, code, Some(&tag)));
            if let (Some(leg), Some(invite_server)) = (leg, cancels) {
                let pending = self.legs.get(&leg).is_some_and(|l| l.phase == Phase::Calling);
                if pending && !self.layer.is_server_final(invite_server) {
                    // "the UAS SHOULD respond to the INVITE with a 487".
                    if let Some(invite) = self.layer.server_request(invite_server) {
                        let local_tag = match self.legs.get(&leg).map(|l| &l.side) {
                            Some(Side::Uas { local_tag, .. }) => local_tag.clone(),
                            _ => tag,
                        };
                        let reply = response(invite, 487, Some(&local_tag));
                        self.respond_server(invite_server, reply);
                    }
                    self.servers.remove(&invite_server);
                    self.end_leg(leg, EndReason::Cancelled);
                }
            }
            return;
        }
        if request.to_tag().is_some() {
            self.in_dialog_request(server, request, &method, &tag);
            return;
        }
        if method == "INVITE" && self.legs.len() >= self.config.max_dialogs {
            // RFC 3261 s.21.5.4: 503 "The server MAY indicate when the client
            // should retry the request in a Retry-After header field."
            let mut reply = response(&request, 503, Some(&tag));
            let after = transaction::retry_after_seconds(self.config.transaction.retry_after());
            reply.header("Retry-After", &after.to_string());
            self.respond_server(server, reply);
            self.event(Event::PeerError { flow, reason: "over the dialog limit: answered 503" });
            return;
        }
        if method == "INVITE" {
            self.next_inbound += 1;
            let leg = LegId::inbound(self.next_inbound);
            self.servers.insert(server, ServerPurpose::Invite(leg));
            let side = Side::Uas {
                server,
                local_tag: tag,
                ok: None,
                interval: self.config.transaction.t1(),
                bye_when_acked: false,
            };
            self.legs.insert(
                leg,
                Leg {
                    flow,
                    transport,
                    invite: request.clone(),
                    side,
                    dialog: None,
                    phase: Phase::Calling,
                    end_reason: EndReason::RemoteBye,
                    timers: [None; 3],
                },
            );
            self.event(Event::IncomingCall { leg, request });
            return;
        }
        if method == "BYE" {
            // A BYE outside any dialog.
            self.respond_server(server, response(&request, 481, Some(&tag)));
            return;
        }
        self.deliver(server, None, request);
    }

    fn deliver(&mut self, server: ServerId, leg: Option<LegId>, request: Message) {
        // s.11.2: OPTIONS gets what an INVITE would; in a live dialog that is
        // not a 503 for lack of room.
        let busy = (leg.is_none() && self.legs.len() >= self.config.max_dialogs)
            .then(|| self.config.transaction.retry_after());
        let tag = new_tag(&mut self.ids);
        if let Some(reply) = self.config.capabilities.answer(&request, &tag, busy) {
            self.respond_server(server, reply);
            return;
        }
        self.next_incoming += 1;
        let incoming = IncomingId::new(self.next_incoming);
        self.incoming.insert(incoming, server);
        self.servers.insert(server, ServerPurpose::Incoming(incoming));
        self.event(Event::RequestReceived { incoming, leg, request });
    }

    fn in_dialog_request(&mut self, server: ServerId, request: Message, method: &str, tag: &str) {
        let leg = DialogId::of_received_request(&request).and_then(|d| self.dialogs.get(&d).copied());
        let Some(id) = leg else {
            // s.12.2.2: "If the UAS wishes to reject the request because it does not
            // wish to recreate the dialog, it MUST respond to the request with a 481".
            self.respond_server(server, response(&request, 481, Some(tag)));
            return;
        };
        let checked = self.legs.get_mut(&id).and_then(|l| l.dialog.as_mut()).map(|d| d.check_remote_seq(&request));
        if let Some(Err(error)) = checked {
            self.respond_server(server, response(&request, error.status_code(), None));
            return;
        }
        match method {
            "BYE" => {
                // s.15.1.2: "the UAS MUST generate a 2xx response to the BYE".
                self.respond_server(server, response(&request, 200, None));
                // A pending inbound INVITE gets 487 (s.15.1.2).
                if let Some(Leg { side: Side::Uas { server: invite_server, .. }, phase: Phase::Calling, .. }) =
                    self.legs.get(&id)
                {
                    let invite_server = *invite_server;
                    if let Some(invite) = self.layer.server_request(invite_server) {
                        let reply = response(invite, 487, None);
                        self.respond_server(invite_server, reply);
                    }
                }
                if let Some(Leg { side: Side::Uac { client, .. }, phase: Phase::Calling, .. }) = self.legs.get(&id) {
                    let client = *client;
                    self.clients.remove(&client);
                    let _ = self.layer_command(transaction::Command::Terminate { client });
                }
                self.end_leg(id, EndReason::RemoteBye);
            }
            "INVITE" => {
                // Session modification is out of scope.
                self.respond_server(server, response(&request, 488, None));
            }
            _ => self.deliver(server, Some(id), request),
        }
    }

    fn ack_received(&mut self, request: Message) {
        let Some(id) = DialogId::of_received_request(&request).and_then(|d| self.dialogs.get(&d).copied()) else {
            return;
        };
        let Some(leg) = self.legs.get_mut(&id) else { return };
        let Side::Uas { bye_when_acked, ok, .. } = &leg.side else { return };
        let Some(seq) = ok.as_ref().and_then(|m| m.cseq()).map(|c| c.seq) else { return };
        if request.cseq().map(|c| c.seq) != Some(seq) {
            return;
        }
        let bye = *bye_when_acked;
        match leg.phase {
            Phase::Answered => {
                leg.phase = Phase::Confirmed;
                self.disarm(id, LegTimer::Retransmit);
                self.disarm(id, LegTimer::GiveUp);
                self.event(Event::Acked { leg: id, request });
            }
            Phase::Ending if bye => {
                if let Side::Uas { bye_when_acked, .. } = &mut leg.side {
                    *bye_when_acked = false;
                }
                self.event(Event::Acked { leg: id, request });
                self.send_bye(id, EndReason::LocalBye);
            }
            _ => {}
        }
    }

    fn resend_ack(&mut self, response: &Message) {
        let Some(id) = DialogId::of_received_response(response).and_then(|d| self.dialogs.get(&d).copied()) else {
            return;
        };
        if let Some(Leg { side: Side::Uac { ack: Some(ack), .. }, flow, transport, .. }) = self.legs.get(&id) {
            let (flow, transport, ack) = (*flow, *transport, ack.clone());
            self.stateless(flow, transport, ack);
        }
    }

    fn response_received(&mut self, client: ClientId, flow: FlowId, transport: Transport, response: Message) {
        let Some(code) = response.status_code() else { return };
        let purpose = self.clients.get(&client).copied();
        if code >= 200 && !matches!(purpose, Some(ClientPurpose::Invite(_))) {
            self.clients.remove(&client);
        }
        match purpose {
            Some(ClientPurpose::Invite(leg)) => self.invite_response(leg, client, (flow, transport), response, code),
            Some(ClientPurpose::Bye(leg)) if code >= 200 => {
                let reason = self.legs.get(&leg).map_or(EndReason::LocalBye, |l| l.end_reason);
                self.end_leg(leg, reason);
            }
            Some(ClientPurpose::Request(request)) if code >= 200 => {
                self.requests.remove(&request);
                self.event(Event::RequestCompleted { request, status: code });
            }
            None if (200..300).contains(&code) => self.orphan_2xx(flow, transport, &response),
            _ => {}
        }
    }

    fn invite_response(&mut self, id: LegId, client: ClientId, via: (FlowId, Transport), response: Message, code: u16) {
        let auto_ack = self.config.auto_ack;
        let Some(leg) = self.legs.get_mut(&id) else {
            // The leg is gone (BYE sent or received): a 2xx is still ACKed (s.13.2.2.4).
            if (200..300).contains(&code) {
                self.orphan_2xx(via.0, via.1, &response);
            }
            return;
        };
        let answer_armed = leg.timers[LegTimer::Answer as usize].is_some();
        let Side::Uac { provisional, cancel_requested, timed_out, .. } = &mut leg.side else { return };
        let (cancel_requested, cancelled) = (*cancel_requested, cancelled_reason(*timed_out));
        match code {
            100..=199 => {
                *provisional = true;
                if leg.dialog.is_none() && response.to_tag().is_some() && leg.phase == Phase::Calling {
                    if let Some(dialog) = Dialog::from_uac(&leg.invite, &response) {
                        self.dialogs.insert(dialog.id().clone(), id);
                        leg.dialog = Some(dialog);
                    }
                }
                if cancel_requested {
                    self.send_cancel(id);
                    return;
                }
                if code > 100 || !answer_armed {
                    // A provisional response stopped Timer B (s.17.1.1.2): the
                    // INVITE timeout bounds the wait for the final one, restarted
                    // like a proxy's Timer C by "anything but 100" (s.16.7 step 2).
                    self.arm(id, LegTimer::Answer, self.config.invite_timeout);
                }
                if code > 100 {
                    self.event(Event::Progress { leg: id, response });
                }
            }
            200..=299 => {
                let dialog_id = DialogId::of_received_response(&response);
                let same = match (&leg.dialog, &dialog_id) {
                    (Some(d), Some(r)) => d.id() == r,
                    (None, _) => true,
                    (Some(_), None) => false,
                };
                match leg.phase {
                    Phase::Calling if same => {
                        match &mut leg.dialog {
                            Some(dialog) => dialog.confirm(Some(&response)),
                            None => match Dialog::from_uac(&leg.invite, &response) {
                                Some(dialog) => {
                                    self.dialogs.insert(dialog.id().clone(), id);
                                    leg.dialog = Some(dialog);
                                }
                                None => {
                                    // A 2xx without To tag or Contact makes no dialog.
                                    let flow = leg.flow;
                                    self.event(Event::PeerError { flow, reason: "2xx without To tag or Contact" });
                                    return;
                                }
                            },
                        }
                        leg.phase = Phase::Answered;
                        self.disarm(id, LegTimer::GiveUp);
                        self.disarm(id, LegTimer::Answer);
                        if cancel_requested {
                            // s.15: a 2xx that crossed our CANCEL: ACK and BYE.
                            self.send_ack(id);
                            self.send_bye(id, cancelled);
                        } else {
                            self.event(Event::Answered { leg: id, response });
                            if auto_ack {
                                self.send_ack(id);
                            }
                        }
                    }
                    Phase::Calling => {}
                    _ if same => self.resend_ack(&response),
                    _ => self.orphan_2xx(via.0, via.1, &response),
                }
            }
            _ => {
                // The transaction sent the ACK (s.17.1.1.3).
                self.clients.remove(&client);
                if leg.phase == Phase::Calling {
                    let reason =
                        if cancel_requested && code == 487 { cancelled } else { EndReason::Rejected { status: code } };
                    self.end_leg(id, reason);
                }
            }
        }
    }

    /// A 2xx that belongs to no leg (a second fork, or after the leg ended):
    /// s.13.2.2.4 ACK it, and end the session it made with a BYE.
    fn orphan_2xx(&mut self, flow: FlowId, transport: Transport, response: &Message) {
        if response.cseq().map(|c| c.method) != Some("INVITE") {
            return;
        }
        let Some(dialog_id) = DialogId::of_received_response(response) else { return };
        if self.dialogs.contains_key(&dialog_id) {
            self.resend_ack(response);
            return;
        }
        if let Some((_, _, ack)) = self.retired.iter().find(|(_, d, _)| *d == dialog_id) {
            if let Some((flow, transport, ack)) = ack.clone() {
                self.stateless(flow, transport, ack);
            }
            return;
        }
        // The response carries the From, Call-ID and CSeq of its INVITE, so it
        // stands in for it.
        let Some(mut dialog) = Dialog::from_uac(response, response) else { return };
        let via_host = self.config.via_host.clone();
        let seq = response.cseq().map_or(1, |c| c.seq);
        if let Ok(ack) = dialog.ack(seq, &mut self.ids, transport, &via_host).build() {
            self.stateless(flow, transport, ack);
        }
        if let Ok(bye) = dialog.request("BYE", &mut self.ids, transport, &via_host).build() {
            self.send_request(ClientPurpose::Quiet, flow, transport, bye);
        }
    }
}
