//! OMA CPM large message mode entities as sans-IO machines: [`Client`]
//! (sender and receiver), [`Participating`] (originating and terminating),
//! [`Controlling`] (an MSRP switch for a group), [`Isf`] (interworking
//! selection, a proxy) and [`Iwf`] (interworking towards SMS/MMS/Email),
//! built on `sip-lite`'s [`UserAgent`](sip_lite::ua::UserAgent) and
//! [`Proxy`](sip_lite::proxy::Proxy), `msrp-core`'s
//! [`Session`](msrp_core::session::Session) and `cpm-negotiation`'s
//! offer/answer and [`HopLink`](cpm_negotiation::HopLink) machine. With the
//! `sim` feature, the `sim` module replays the figures of the seeds in a
//! deterministic in-memory network.
//!
//! # What each entity does
//!
//! - Every policy of the source documents is configuration ([`EntityConfig`]): the
//!   strategy preset with its openers and triggers
//!   ([`cpm_negotiation::Preset`]), the CF answer policy, the B2BUA ACK
//!   policy, and the IWF's report mode and conversion rules ([`IwfConfig`]); the
//!   IWF converts each whole message with [`interworking::convert`] into SMPP
//!   `submit_sm` PDUs, an RFC 5322 message or an MMS `m-send-req`.
//! - Each hop has one [`HopLink`](cpm_negotiation::HopLink) (who opens, and
//!   when) and one MSRP session. The opener gets [`Output::Connect`]; the
//!   passive side gets [`Input::Accepted`] and binds the connection to a hop
//!   by the To-Path of the first request (RFC 4975 s.5.4).
//! - Relays (PF, CF) are back-to-back MSRP endpoints: each chunk received
//!   upstream is forwarded at once (streaming reassembly, cut-through), and
//!   the CF fans it out to every member sharing the same `Bytes`.
//! - Delivery status: the final receiver (B, or the IWF) sends the success
//!   REPORT (B also an IMDN); PFs re-address REPORTs upstream and pass
//!   messages from downstream (IMDNs) on; the CF reports each member's
//!   outcome as [`Event::MemberOutcome`], sends A one IMDN delivery
//!   notification per member (RFC 5438 `message/imdn+xml` in CPIM, naming
//!   the member), and one success REPORT once every member's outcome is
//!   known, never a failure REPORT for one member (the source documents,
//!   "Acknowledgements"). A REPORT waits for the messages sent before it on
//!   its hop, so A sees every IMDN ([`Event::Delivery`]) before the REPORT
//!   ([`Event::Outcome`]).
//! - Chunking: [`EntityConfig::max_chunk_size`] (the scenarios use 2048: a
//!   5000-byte message goes as three SENDs, relayed chunk by chunk).
//! - SIP over streams or datagrams, per flow
//!   ([`EntityConfig::set_flow_transport`]; datagrams run the RFC 3261
//!   retransmission timers); [`Input::SipDatagram`] takes raw datagrams.
//! - Failures: a member refusing (4xx-6xx) or timing out, a hop whose link
//!   fails or drops before its work is done, a slow member
//!   ([`EntityConfig::slow_member`]), and [`Command::End`] (CANCEL or BYE
//!   from any entity at any time, for one session) end what they must: that
//!   member's leg with a failed outcome ([`Outcome`]), or the session.
//! - The ISF picks an IWF per INVITE by rules on receiver address, content
//!   type and size ([`IwfRule`]), through `sip-lite`'s proxy target selector.
//!
//! - Sessions and links: every entity serves many SIP sessions, each named
//!   by a [`SessionId`] in every event ([`Output::Event`]): the caller names
//!   the ones it starts ([`Command::SendMessage`]; a sender runs any number
//!   at once), the entity those a peer starts ([`Event::SessionStarted`]:
//!   each INVITE of a new Call-ID runs as its own session, up to
//!   [`EntityConfig::max_sessions`], 503 beyond; SIP is routed by Call-ID,
//!   MSRP frames by their To-Path), and a hop that is to connect
//!   reuses a link the entity opened before to the same scheme, host, port
//!   and transport (RFC 4975 s.5.4; seed 000 paragraph 0040;
//!   [`EntityConfig::reuse_links`], [`Event::LinkReused`]). The links are
//!   msrp-core's [`Endpoint`](msrp_core::link::Endpoint): frames of
//!   different sessions on one link never cut into each other, and take
//!   turns (a chunk ends early with `+` when another session waits, RFC 4975
//!   s.7.1.1); the link closes when its last hop lets go.
//!   [`Participating::serving`] is a PF(B) for several users, whose hops
//!   toward the CF share one link.
//! - Back-pressure: at most [`EntityConfig::link_window`] bytes per link are
//!   handed to the runtime beyond what it acknowledged with
//!   [`Input::MsrpWritten`]; the rest waits in the sessions as shared
//!   buffers. A relay whose slowest member has more than
//!   [`EntityConfig::relay_window`] bytes queued asks the runtime to stop
//!   reading upstream ([`Output::PauseReading`], then
//!   [`Output::ResumeReading`]).
//!
//! # Not yet
//!
//! CEMA re-offers, a deadline for a hop's link (a connect that never
//! completes waits until the SIP session ends, unless the runtime gives up
//! on it: a refused one is [`Input::ConnectFailed`]), one input for the
//! bytes of every kind of connection (a runtime frames SIP streams itself
//! and hands over whole messages, [`Input::SipReceived`]).
//!
//! # Sans-IO
//!
//! No sockets, clocks, threads or randomness live here. A runtime feeds each
//! entity SIP messages ([`Input::SipReceived`]), MSRP link events and bytes
//! ([`Input::Connected`], [`Input::Accepted`], [`Input::MsrpReceived`],
//! [`Input::MsrpWritten`], [`Input::MsrpClosed`]), timeouts and commands,
//! and carries out what comes back: SIP bytes to write on a flow, MSRP
//! links to open ([`Output::Connect`]) or close, MSRP frames to write,
//! reading to pause and resume, and events.
//! Entropy comes in through any [`IdSource`] given to the entity's
//! constructor (msrp-core's trait; the entity shares that one source with its
//! SIP user agent and every MSRP session it creates). A production runtime
//! MUST inject a CSPRNG-backed source (RFC 4975 s.14.1: at least 80 random
//! bits in a session-id): `CryptoIds` (the `rand` feature) takes any
//! `rand_core` cryptographic generator, the OS one in one line. Tests and
//! the simulator use [`SimulationIds`], whose ids can be predicted.
//!
//! # Drain contract
//!
//! After every `handle`, the caller MUST drain `poll_output` until it returns
//! `None`, then read `poll_timeout` and call `handle(now, Input::Timeout)`
//! when that instant is reached.
//!
//! ```
//! use std::time::Instant;
//! use bytes::Bytes;
//! use cpm_negotiation::{Figure, Hop, Preset};
//! use cpm_roles::{Client, Command, EntityConfig, FlowId, Input, Output, SessionId, SimulationIds};
//!
//! # #[expect(clippy::disallowed_methods, reason = "a doctest epoch")]
//! let now = Instant::now();
//! let config = EntityConfig::new("A", "a.example.com", 2855, Preset::figure(Figure::Seed001Fig1));
//! let mut a = Client::sender(config, FlowId::new(1), Hop::L1, "L1", now, SimulationIds::new(7));
//! let body = Bytes::from(vec![b'x'; 5000]);
//! a.handle(now, Input::Command(Command::SendMessage {
//!     session: SessionId::new(1),
//!     target: "sip:group@cf.example.com".into(),
//!     recipients: Vec::new(),
//!     content_type: "text/plain".into(),
//!     body,
//! }))
//! .unwrap();
//! let mut outputs = Vec::new();
//! while let Some(output) = a.poll_output() {
//!     outputs.push(output);
//! }
//! // INVITE#1 with the MSRP offer goes to PF(A) on flow 1.
//! assert!(matches!(&outputs[0], Output::SipTransmit { flow, bytes }
//!     if flow.get() == 1 && bytes.starts_with(b"INVITE sip:group@cf.example.com")));
//! // The INVITE transaction is the only timer (reliable transport: Timer B).
//! assert!(a.poll_timeout().is_some());
//! ```
//!
//! # A runtime loop
//!
//! A runtime owns the sockets and the clock; the entities own every
//! protocol decision. Here one loop hosts a sender A and a receiver B wired
//! back to back in memory, A runs two sessions at once, and every event
//! names its session. A socket runtime does the same with real reads and
//! writes: it acknowledges MSRP bytes once written ([`Input::MsrpWritten`])
//! and stops reading a connection while asked to ([`Output::PauseReading`]).
//!
//! ```
//! use std::collections::VecDeque;
//! use std::time::Instant;
//! use bytes::Bytes;
//! use cpm_negotiation::{Figure, Hop, Preset};
//! use cpm_roles::{Client, Command, ConnId, Entity, EntityConfig, Event, FlowId, Input, Outcome, Output, SessionId, SimulationIds};
//! use sip_lite::sip::Message;
//!
//! # #[expect(clippy::disallowed_methods, reason = "a doctest epoch")]
//! let mut now = Instant::now();
//! let preset = Preset::figure(Figure::Seed001Fig1);
//! let a = Client::sender(EntityConfig::new("A", "a.example.com", 2855, preset), FlowId::new(1), Hop::L1, "L1", now, SimulationIds::new(1));
//! let b = Client::receiver(EntityConfig::new("B", "b.example.com", 2855, preset), Hop::L1, "L1", now, SimulationIds::new(2));
//! let mut entities: [Box<dyn Entity>; 2] = [Box::new(a), Box::new(b)];
//! let mut inputs: VecDeque<(usize, Input)> = VecDeque::new();
//! for (session, size) in [(1, 5000), (2, 70_000)] {
//!     inputs.push_back((0, Input::Command(Command::SendMessage {
//!         session: SessionId::new(session),
//!         target: "sip:b@b.example.com".into(),
//!         recipients: Vec::new(),
//!         content_type: "text/plain".into(),
//!         body: Bytes::from(vec![b'x'; size]),
//!     })));
//! }
//! let (mut next_conn, mut outcomes, mut delivered) = (0, Vec::new(), Vec::new());
//! loop {
//!     while let Some((at, input)) = inputs.pop_front() {
//!         let peer = 1 - at;
//!         entities[at].handle(now, input).unwrap();
//!         // The drain contract: every output, after every input.
//!         while let Some(output) = entities[at].poll_output() {
//!             match output {
//!                 Output::SipTransmit { flow, bytes } => {
//!                     let message = Message::parse(bytes).unwrap();
//!                     inputs.push_back((peer, Input::SipReceived { flow, message }));
//!                 }
//!                 Output::Connect { hop, .. } => {
//!                     // One name for both ends of the in-memory connection.
//!                     let conn = ConnId::new(next_conn);
//!                     next_conn += 1;
//!                     inputs.push_back((peer, Input::Accepted { conn }));
//!                     inputs.push_back((at, Input::Connected { hop, conn }));
//!                 }
//!                 Output::MsrpTransmit { conn, transmit } => {
//!                     let bytes = transmit.len();
//!                     for data in [transmit.head, transmit.body, transmit.end_line] {
//!                         inputs.push_back((peer, Input::MsrpReceived { conn, data }));
//!                     }
//!                     // Written at once: the entity's window opens again.
//!                     inputs.push_back((at, Input::MsrpWritten { conn, bytes }));
//!                 }
//!                 Output::CloseLink { conn } => inputs.push_back((peer, Input::MsrpClosed { conn })),
//!                 Output::Event { session, event: Event::Outcome { outcome, .. } } => outcomes.push((session, outcome)),
//!                 Output::Event { session, event: Event::MessageDelivered { body, .. } } => delivered.push((session, body.len())),
//!                 // Reading is never paused here: what arrives is read at once.
//!                 _ => {}
//!             }
//!         }
//!     }
//!     // Nothing in flight: time moves to the next timer, if any.
//!     let Some((at, due)) = entities.iter().enumerate().filter_map(|(i, e)| Some((i, e.poll_timeout()?))).min_by_key(|(_, t)| *t) else { break };
//!     now = now.max(due);
//!     inputs.push_back((at, Input::Timeout));
//! }
//! outcomes.sort_by_key(|(session, _)| *session);
//! assert_eq!(outcomes, [(Some(SessionId::new(1)), Outcome::Delivered), (Some(SessionId::new(2)), Outcome::Delivered)]);
//! delivered.sort_by_key(|(_, len)| *len);
//! assert_eq!(delivered.iter().map(|(_, len)| *len).collect::<Vec<_>>(), [5000, 70_000]);
//! // B named each session it served with its own id.
//! assert_ne!(delivered[0].0, delivered[1].0);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod entities;
mod error;
mod ids;
pub mod interworking;
mod links;
mod node;
pub mod scenario;
mod server;
mod stats;

#[cfg(feature = "sim")]
pub mod diagram;

#[cfg(feature = "sim")]
pub mod sim;

#[cfg(feature = "sim")]
pub mod fuzzing;

use bytes::Bytes;
use cpm_negotiation::{ConnectParams, Trigger};
use msrp_core::Transmit;
use sip_lite::sip::Message;

pub use config::{AddressRule, Downstream, EntityConfig, IwfConfig, IwfReport, NonCpmSystem, SlowMember};
pub use entities::{Client, Controlling, Entity, Isf, IsfConfig, Iwf, IwfRule, Participating};
pub use error::{PeerError, UsageError};
#[cfg(feature = "rand")]
pub use ids::CryptoIds;
pub use ids::{ConnId, DeliveryId, FlowId, HopId, SessionId, SimulationIds};
pub use msrp_core::IdSource;
pub use sip_lite::transaction::Transport as SipTransport;
pub use stats::Stats;

/// What comes into an entity.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Input {
    /// A whole SIP message read from a flow: framed from a stream, or one
    /// datagram already parsed (its transport is the flow's, see
    /// [`EntityConfig::set_flow_transport`]).
    SipReceived {
        /// The flow.
        flow: FlowId,
        /// The message.
        message: Message,
    },
    /// One datagram read from a datagram SIP flow, unparsed (RFC 3261
    /// s.18.3: each datagram carries one message; bad bytes are dropped with
    /// [`Event::PeerError`]).
    SipDatagram {
        /// The flow.
        flow: FlowId,
        /// The datagram.
        bytes: Bytes,
    },
    /// The link asked for by [`Output::Connect`] is up.
    Connected {
        /// The hop of the request.
        hop: HopId,
        /// The connection the runtime chose.
        conn: ConnId,
    },
    /// The link asked for by [`Output::Connect`] could not be opened: the
    /// hop fails ([`Event::HopFailed`]) and its SIP leg ends (a relay then
    /// ends the other side when nothing is left to relay to).
    ConnectFailed {
        /// The hop of the request.
        hop: HopId,
    },
    /// A peer opened a connection to this entity's MSRP port; it is bound to
    /// a hop by the To-Path of its first request (RFC 4975 s.5.4).
    Accepted {
        /// The connection.
        conn: ConnId,
    },
    /// Bytes read from an MSRP connection (any split).
    MsrpReceived {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        data: Bytes,
    },
    /// The runtime wrote `bytes` more of the [`Output::MsrpTransmit`]s of a
    /// connection: its window opens by as much (a runtime that never says
    /// so gets at most [`EntityConfig::link_window`] bytes per link).
    MsrpWritten {
        /// The connection.
        conn: ConnId,
        /// How many bytes (head, body and end-line bytes alike).
        bytes: usize,
    },
    /// The peer closed an MSRP connection.
    MsrpClosed {
        /// The connection.
        conn: ConnId,
    },
    /// IWF: the non-CPM system acknowledged the message handed over with
    /// [`Event::DeliverToNonCpm`] as `delivery`; `status` becomes the delivery
    /// REPORT (200: delivered). Ignored when the IWF reports at media end
    /// ([`IwfReport::AtMediaEnd`]).
    NonCpmAck {
        /// The hand-over acknowledged.
        delivery: DeliveryId,
        /// The REPORT status.
        status: u16,
    },
    /// A timer may have expired.
    Timeout,
    /// A user command.
    Command(Command),
}

/// What the user asks of an entity.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Client sender: start the SIP session `session`: INVITE `target` (a
    /// group or a user) and send `body` over MSRP once the hop is up. Any
    /// number of sessions run at once, each with its own Call-ID; every
    /// event of this one names `session`.
    SendMessage {
        /// The caller's name for the session ([`SessionId::new`]).
        session: SessionId,
        /// The Request-URI: a pre-defined group, a user, or (with
        /// `recipients`) the CF's ad-hoc group factory.
        target: String,
        /// Ad-hoc group members (RFC 5366 recipient list in the INVITE);
        /// empty for a pre-defined group or a single user.
        recipients: Vec<String>,
        /// The MSRP Content-Type.
        content_type: String,
        /// The message.
        body: Bytes,
    },
    /// End one session now, whatever its state (any entity, any time): a
    /// pending outbound INVITE is CANCELled (RFC 3261 s.9.1), a pending
    /// inbound one refused, an established dialog ended with BYE (s.15); a
    /// relay then ends its other side. A sender whose outcome is still open
    /// gets [`Event::Outcome`] with what ended it. Other sessions go on.
    End {
        /// The session.
        session: SessionId,
    },
}

/// What an entity asks of the runtime, or tells the user.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// One whole SIP message to write on a flow.
    SipTransmit {
        /// The flow.
        flow: FlowId,
        /// The message.
        bytes: Bytes,
    },
    /// Open a new connection to `params`, then answer with
    /// [`Input::Connected`] (the entity reuses its own links itself:
    /// [`Event::LinkReused`]).
    Connect {
        /// The hop asking.
        hop: HopId,
        /// Its name in traces (`L1`, `L3/B2`, ...).
        label: String,
        /// Where to connect.
        params: ConnectParams,
        /// What triggered the connect (the preset's, or negotiation's default).
        trigger: Trigger,
    },
    /// MSRP bytes to write on a connection, in order (head, body, end-line).
    MsrpTransmit {
        /// The connection.
        conn: ConnId,
        /// The frame (its body is the sender's `Bytes`, not a copy).
        transmit: Transmit,
    },
    /// Close a connection: one this entity opened that no hop uses any more,
    /// or any link whose framing failed (nothing more on it can be read).
    CloseLink {
        /// The connection.
        conn: ConnId,
    },
    /// Stop reading from a connection: what was read from it waits to be
    /// written elsewhere (a relay's slow members), or the peer does not read
    /// the answers it is owed. Bytes already read may still be given.
    PauseReading {
        /// The connection.
        conn: ConnId,
    },
    /// Read from a connection again.
    ResumeReading {
        /// The connection.
        conn: ConnId,
    },
    /// Something happened: in session `session`, or (`None`) to the entity
    /// itself (a peer error no session owns).
    Event {
        /// The session it belongs to.
        session: Option<SessionId>,
        /// What happened.
        event: Event,
    },
}

/// How a message fared on its way to a recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// A success REPORT covered the whole message (RFC 4975 s.7.1.2).
    Delivered,
    /// The SIP session was refused with this final status (RFC 3261 s.21;
    /// 408 is [`Outcome::TimedOut`]).
    Refused {
        /// The SIP status (300-699).
        status: u16,
    },
    /// A failure REPORT or transaction response with this MSRP status
    /// (RFC 4975 s.10: 400, 403, 408, 413, 415, 481, 501, 506).
    Failed {
        /// The MSRP status.
        status: u16,
    },
    /// The MSRP link was lost before the outcome was known.
    LinkLost,
    /// No answer came in time: an INVITE or a transaction timed out here,
    /// or downstream (a 408, RFC 3261 s.21.4.9).
    TimedOut,
    /// The SIP session ended (BYE, CANCEL, [`Command::End`]) before the
    /// outcome was known.
    SessionEnded,
}

impl Outcome {
    /// The outcome of a REPORT with `status` (RFC 4975 s.7.1.2: 200 is
    /// success).
    #[must_use]
    pub const fn from_report(status: u16) -> Self {
        if status == 200 {
            Self::Delivered
        } else {
            Self::Failed { status }
        }
    }
    /// The status the traces write: 200 when delivered, the SIP or MSRP
    /// status of a refusal or failure, 408 for a timeout, 0 when a link or
    /// session ended first.
    #[must_use]
    pub const fn status(self) -> u16 {
        match self {
            Self::Delivered => 200,
            Self::Refused { status } | Self::Failed { status } => status,
            Self::TimedOut => 408,
            Self::LinkLost | Self::SessionEnded => 0,
        }
    }
    /// Whether the message arrived.
    #[must_use]
    pub const fn is_delivered(self) -> bool {
        matches!(self, Self::Delivered)
    }
}

/// What an entity tells its user.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A peer started a session (an INVITE of a new Call-ID): its events
    /// name `session`, and [`Command::End`] ends it.
    SessionStarted,
    /// Client sender: the message was handed to its MSRP session.
    Submitted {
        /// The message.
        bytes: Bytes,
    },
    /// Client receiver: a whole message arrived.
    MessageDelivered {
        /// The message.
        body: Bytes,
    },
    /// IWF: a whole message converted for the non-CPM system
    /// ([`interworking::convert`]). The runtime sends `parts` in order (SMPP
    /// `submit_sm` PDUs, one RFC 5322 message, or one MMS `m-send-req`), maps
    /// the system's acknowledgements with [`interworking::sms_ack_status`],
    /// [`interworking::smtp_reply_status`] or [`interworking::mms_conf_status`]
    /// and answers with [`Input::NonCpmAck`]. Content that cannot be
    /// converted is refused with a failure REPORT instead (and
    /// [`Event::PeerError`] with [`PeerError::Interworking`]).
    DeliverToNonCpm {
        /// Its name, for [`Input::NonCpmAck`].
        delivery: DeliveryId,
        /// The system.
        system: NonCpmSystem,
        /// The format of `parts` (`sms`, `email`, `mms`).
        format: &'static str,
        /// The message content as it arrived over MSRP.
        payload: Bytes,
        /// The converted PDUs, in sending order.
        parts: Vec<Bytes>,
        /// Email: the SMTP envelope to submit `parts` with.
        envelope: Option<interworking::MailEnvelope>,
    },
    /// Client sender: the delivery outcome (from a REPORT, or what failed
    /// the send).
    Outcome {
        /// The outcome.
        outcome: Outcome,
    },
    /// Client sender: one group member's delivery outcome, from the IMDN
    /// delivery notification the controlling function sent for that member
    /// (the source documents, "Acknowledgements": one per member).
    Delivery {
        /// The member (the IMDN's `<recipient-uri>`).
        member: String,
        /// The IMDN status (`Delivered`, or `Failed` ...).
        status: cpm_negotiation::imdn::DeliveryStatus,
    },
    /// Controlling function: one member's outcome (from its REPORT, or
    /// what ended its leg).
    MemberOutcome {
        /// The member (the Request-URI of its leg, as its IMDN names it).
        member: String,
        /// The outcome.
        outcome: Outcome,
    },
    /// A hop could not be set up or failed: its SIP leg ends.
    HopFailed {
        /// The member (or target) the failed hop leads to, the Request-URI of
        /// its leg; `None` for the upstream hop.
        member: Option<String>,
    },
    /// A hop of this entity that was to connect reuses a link the entity
    /// opened before to the same scheme, host, port and transport (RFC 4975
    /// s.5.4; [`EntityConfig::reuse_links`]); no [`Output::Connect`] follows.
    LinkReused {
        /// The hop reusing the link.
        hop: String,
        /// What triggered the connect.
        trigger: Trigger,
        /// Where the hop would have connected (its key matches the link's).
        params: ConnectParams,
        /// The link, `None` while it is still being opened (the hop joins it
        /// when [`Input::Connected`] comes).
        conn: Option<ConnId>,
    },
    /// A hop let go of a shared link that other hops still use (the last one
    /// to let go gets [`Output::CloseLink`] instead).
    LinkReleased {
        /// The hop.
        hop: String,
        /// The link.
        conn: ConnId,
    },
    /// The offer/answer forced the other opener than the preset wanted.
    PresetOverridden {
        /// The hop.
        hop: String,
    },
    /// The upstream (or, for a sender, the only) SIP session ended.
    SessionEnded,
    /// A peer broke a protocol; the entity answered as the RFC says.
    PeerError {
        /// What was wrong.
        error: PeerError,
    },
}
