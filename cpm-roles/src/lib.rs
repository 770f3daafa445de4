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
//! - Every policy of SPEC.md is configuration ([`EntityConfig`]): the
//!   strategy preset with its openers and triggers
//!   ([`cpm_negotiation::Preset`]), the CF answer policy, the B2BUA ACK
//!   policy, and the IWF's report mode ([`IwfConfig`]).
//! - Each hop has one [`HopLink`](cpm_negotiation::HopLink) (who opens, and
//!   when) and one MSRP session. The opener gets [`Output::Connect`]; the
//!   passive side gets [`Input::Accepted`] and binds the connection to a hop
//!   by the To-Path of the first request (RFC 4975 s.5.4).
//! - Relays (PF, CF) are back-to-back MSRP endpoints: each chunk received
//!   upstream is forwarded at once (streaming reassembly, cut-through), and
//!   the CF fans it out to every member sharing the same `Bytes`.
//! - Delivery status: the final receiver (B, or the IWF) sends the success
//!   REPORT; PFs re-address it upstream; the CF reports each member's
//!   outcome as [`Event::MemberOutcome`] and sends one success REPORT to A
//!   once every member's outcome is known, never a failure REPORT for one
//!   member. A surfaces [`Event::Outcome`].
//!
//! # Not yet
//!
//! IMDN delivery notifications per member to A (A sees one outcome, the CF
//! sees each member's), link reuse, one session per entity instance
//! only, ISF rules on content type and size (exact Request-URI only), SIP
//! over UDP, CEMA re-offers, a deadline for a hop's link (a connect that
//! never completes waits until the SIP session ends; a refused one is
//! [`Input::ConnectFailed`]), and MSRP chunking of a large message into
//! several SENDs (msrp-core sends one interruptible chunk when nothing else
//! waits on the link).
//!
//! # Sans-IO
//!
//! No sockets, clocks, threads or randomness live here. A runtime feeds each
//! entity SIP messages ([`Input::SipReceived`]), MSRP link events and bytes
//! ([`Input::Connected`], [`Input::Accepted`], [`Input::MsrpReceived`],
//! [`Input::MsrpClosed`]), timeouts and commands, and carries out what comes
//! back: SIP bytes to write on a flow, MSRP links to open
//! ([`Output::Connect`]) or close, MSRP frames to write, and events.
//! Entropy comes in as a [`SeededIds`] (tests) — a production runtime MUST
//! use a CSPRNG-backed source instead (planned: a generic `IdSource`).
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
//! use cpm_roles::{Client, Command, EntityConfig, FlowId, Input, Output, SeededIds};
//!
//! # #[expect(clippy::disallowed_methods, reason = "a doctest epoch")]
//! let now = Instant::now();
//! let config = EntityConfig::new("A", "a.example.com", 2855, Preset::figure(Figure::Seed001Fig1));
//! let mut a = Client::sender(config, FlowId::new(1), Hop::L1, "L1", now, SeededIds::new(7));
//! let body = Bytes::from(vec![b'x'; 5000]);
//! a.handle(now, Input::Command(Command::SendMessage {
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
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod entities;
mod error;
mod ids;
mod node;
pub mod scenario;

#[cfg(feature = "sim")]
pub mod sim;

use bytes::Bytes;
use cpm_negotiation::{ConnectParams, Trigger};
use msrp_core::Transmit;
use sip_lite::sip::Message;

pub use entities::{Client, Controlling, Entity, Isf, IsfConfig, Iwf, Participating};
pub use error::UsageError;
pub use ids::{ConnId, FlowId, HopId, SeededIds};
pub use node::{AddressRule, Downstream, EntityConfig, IwfConfig, IwfReport, NonCpmSystem};

/// What comes into an entity.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Input {
    /// A whole SIP message read from a flow (reliable transport).
    SipReceived {
        /// The flow.
        flow: FlowId,
        /// The message.
        message: Message,
    },
    /// The link asked for by [`Output::Connect`] is up (opened or reused).
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
    /// The peer closed an MSRP connection.
    MsrpClosed {
        /// The connection.
        conn: ConnId,
    },
    /// IWF: the non-CPM system acknowledged the oldest message handed over
    /// with [`Event::DeliverToNonCpm`]; `status` becomes the delivery REPORT
    /// (200: delivered). Ignored when the IWF reports at media end
    /// ([`IwfReport::AtMediaEnd`]).
    NonCpmAck {
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
    /// Client sender: INVITE `target` (a group or a user) and send `body`
    /// over MSRP once the hop is up. One message per Client in this version.
    SendMessage {
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
    /// Open (or reuse, when host, port and transport match a link the
    /// runtime already has) a connection to `params`, then answer with
    /// [`Input::Connected`].
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
    /// Close a connection this entity opened.
    CloseLink {
        /// The connection.
        conn: ConnId,
    },
    /// Something happened.
    Event(Event),
}

/// What an entity tells its user.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Client sender: the message was handed to its MSRP session.
    Submitted {
        /// The message.
        bytes: Bytes,
    },
    /// Client receiver: a whole message arrived.
    MessageDelivered {
        /// The hop it came on.
        hop: String,
        /// The message.
        body: Bytes,
    },
    /// IWF: a whole message, for the non-CPM system (the runtime sends it and
    /// answers with [`Input::NonCpmAck`]).
    DeliverToNonCpm {
        /// The system.
        system: NonCpmSystem,
        /// The message content (not transcoded in this version).
        payload: Bytes,
        /// How many parts the system's format needs.
        parts: usize,
    },
    /// Client sender: the delivery outcome (a REPORT's status, or the
    /// status that failed the send; 0 for a lost link).
    Outcome {
        /// The hop it came on.
        hop: String,
        /// The status (200: delivered).
        status: u16,
    },
    /// Controlling function: one member's outcome (from its REPORT).
    MemberOutcome {
        /// The member's hop.
        hop: String,
        /// The status.
        status: u16,
    },
    /// A hop could not be set up or failed.
    HopFailed {
        /// The hop.
        hop: String,
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
        /// Which protocol layer.
        reason: &'static str,
        /// Details.
        detail: String,
    },
}
