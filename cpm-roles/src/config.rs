//! What an entity is told about itself: identity, strategy preset and
//! policies ([`EntityConfig`]), the interworking function's system and report
//! mode ([`IwfConfig`]), and how a controlling function routes members
//! ([`AddressRule`], [`Downstream`]).

use std::time::{Duration, Instant};

use cpm_negotiation::{AckPolicy, AnswerPolicy, Capabilities, Hop, MediaType, Preset};
use sip_lite::capabilities::Capabilities as SipCapabilities;
use sip_lite::transaction::Transport;

use crate::ids::FlowId;
use crate::interworking::ConversionConfig;

/// What an entity needs to know about itself and the policies it follows.
#[derive(Clone, Debug)]
pub struct EntityConfig {
    /// Its name in traces and events (`A`, `PF-A`, `CF`, `PF-B1`, ...).
    pub name: String,
    /// Host of its SIP Via/Contact and of its MSRP URIs.
    pub host: String,
    /// The user's address of record: the From of the INVITEs a sender
    /// originates, the sender's identity at an IWF (default
    /// `sip:<name>@<host>`, the name lower-cased).
    pub aor: String,
    /// Port of its MSRP URIs (every hop of the entity listens here; the
    /// passive side tells hops apart by the To-Path, RFC 4975 s.5.4).
    pub msrp_port: u16,
    /// Link-establishment strategy, openers and triggers (seed 001).
    pub preset: Preset,
    /// Media capabilities written into offers and answers. Its `max_size`
    /// (the SDP `a=max-size`, RFC 4975 s.8.6; 16 MiB by default) is the one
    /// size knob: an offer announcing a larger message is refused 488, and
    /// the entity's MSRP sessions reassemble (and may hold) at most that.
    pub capabilities: Capabilities,
    /// B2BUA only: when the downstream ACK is generated. A preset carries
    /// one per B2BUA: `preset.ack_policy[0]` for PF(A), `[1]` for the CF,
    /// `[2]` for PF(B) (the source documents, ACK policy table); [`EntityConfig::new`]
    /// takes `[0]`, so set it for the CF and PF(B).
    pub ack_policy: AckPolicy,
    /// Controlling function only: when the upstream 200 is sent.
    pub answer_policy: AnswerPolicy,
    /// Chunk size of the MSRP sessions (RFC 4975 s.7.1.1 suggests 2048):
    /// chunks up to this size are sent whole with a known range-end.
    pub chunk_size: usize,
    /// Largest chunk body of the MSRP sessions. `None` (the default) sends a
    /// message in as few chunks as possible (RFC 4975 s.7.1.1: "strongly
    /// RECOMMENDED"); `Some(2048)` sends 2048-octet chunks (the RFC's other
    /// strategy: a 5000-byte message goes as 2048 + 2048 + 904). Relays use it
    /// too, so the chunks keep their boundaries hop by hop.
    pub max_chunk_size: Option<usize>,
    /// The SIP transport of each flow that is not reliable (a stream is the
    /// default): on [`Transport::Unreliable`] flows the SIP transactions
    /// retransmit (RFC 3261 s.17: Timers A, E, G) and the Via says UDP.
    /// Set with [`EntityConfig::set_flow_transport`].
    pub flow_transports: Vec<(FlowId, Transport)>,
    /// Controlling function: drop a member whose link stays full too long
    /// (`None`, the default: never; the member is then as slow as its link).
    pub slow_member: Option<SlowMember>,
    /// Reuse a link this entity opened when a new hop (of this or another of
    /// its sessions) leads to the same scheme, host, port and transport
    /// (RFC 4975 s.5.4: "SHOULD reuse"; seed 000 paragraph 0040). On by default.
    pub reuse_links: bool,
    /// The most SIP sessions the entity runs at once; a request that would
    /// start one more is answered 503 (RFC 3261 s.21.5.4). 10 000 by default.
    pub max_sessions: usize,
    /// The most entries an ad-hoc group's recipient list (RFC 5366) may
    /// have; a longer one is refused 403 before anyone is invited
    /// (`sip_lite::resource_lists::DEFAULT_MAX_ENTRIES`, 100, by default).
    pub max_list_members: usize,
    /// How long an MSRP request waits for its response before it fails
    /// (RFC 4975 s.7.1.1: "If a 200 response to the transaction is not
    /// received within 30 seconds ... the element MUST inform the user";
    /// 30 s by default).
    pub transaction_timeout: Duration,
    /// How long a link a peer opened may stay unused by this entity's
    /// sessions (before its first frame for one, RFC 4975 s.5.4, or after
    /// the last one using it ended, s.4) before it is closed. 30 s by
    /// default.
    pub bind_timeout: Duration,
    /// How long a message that asked for success REPORTs waits, after its
    /// last byte, for REPORTs covering it before its outcome is
    /// [`crate::Outcome::TimedOut`] (RFC 4975 s.7.1.1 leaves the value
    /// open). A sender's REPORT comes from the controlling function once
    /// every member's outcome is known, which can take a member's whole
    /// INVITE timeout (3 min 1 s): 5 minutes by default.
    pub report_timeout: Duration,
    /// MSRP bytes handed to the runtime per link and not yet acknowledged
    /// with [`crate::Input::MsrpWritten`] (64 KiB by default): what does not
    /// fit waits in the sessions, as shared buffers.
    pub link_window: usize,
    /// Whether its MSRP URIs are `msrps:` (RFC 4975 s.6: the session runs
    /// over TLS, and a runtime opens its links with TLS); `msrp:` by
    /// default.
    pub msrp_tls: bool,
    /// The `a=fingerprint` value (`SHA-256 AB:CD:..`) of the certificate
    /// its TLS listener presents, written into every SDP it sends so that
    /// peers without a common CA can pin it (RFC 4975 s.14.4); `None` by
    /// default.
    pub msrp_fingerprint: Option<String>,
    /// A relay (PF, CF) whose slowest downstream session has more than this
    /// many bytes queued stops reading its upstream link
    /// ([`crate::Output::PauseReading`]) until that session has half of it
    /// left (1 MiB by default): a slow member, or a runtime that writes
    /// slowly, bounds what the relay holds instead of growing it.
    pub relay_window: usize,
}

/// When the controlling function gives up on a slow member: its hop's
/// window (the MSRP transactions sent to it and not yet answered) stays full
/// for longer than `after`. The member's leg then ends (BYE) and its outcome
/// is a failure; the other members are not held by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlowMember {
    /// Open transactions that make the window full (each carries at most
    /// one chunk: [`EntityConfig::max_chunk_size`] sets the bytes).
    pub window: usize,
    /// How long the window may stay full.
    pub after: Duration,
}

impl EntityConfig {
    /// A configuration with the defaults of `preset`: capabilities accepting
    /// `text/plain` and `message/cpim` up to 16 MiB, chunks of 2048 bytes,
    /// after-ACK and immediate answer (set the policies per entity).
    #[must_use]
    pub fn new(name: &str, host: &str, msrp_port: u16, preset: Preset) -> Self {
        let types = ["text/plain", "message/cpim"].iter().filter_map(|t| MediaType::parse_str(t).ok()).collect();
        Self {
            name: name.to_owned(),
            host: host.to_owned(),
            aor: format!("sip:{}@{host}", name.to_ascii_lowercase()),
            msrp_port,
            preset,
            capabilities: Capabilities {
                accept_types: types,
                accept_wrapped_types: Vec::new(),
                max_size: Some(16 * 1024 * 1024),
                cema: false,
            },
            ack_policy: preset.ack_policy[0],
            answer_policy: preset.answer_policy,
            chunk_size: 2048,
            max_chunk_size: None,
            flow_transports: Vec::new(),
            slow_member: None,
            reuse_links: true,
            max_sessions: 10_000,
            max_list_members: sip_lite::resource_lists::DEFAULT_MAX_ENTRIES,
            transaction_timeout: Duration::from_secs(30),
            bind_timeout: Duration::from_secs(30),
            report_timeout: Duration::from_secs(300),
            link_window: 64 * 1024,
            msrp_tls: false,
            msrp_fingerprint: None,
            relay_window: 1 << 20,
        }
    }

    /// Says that SIP flow `flow` is `transport` (a runtime MUST tell each
    /// entity which of its flows are datagram flows).
    pub fn set_flow_transport(&mut self, flow: FlowId, transport: Transport) -> &mut Self {
        self.flow_transports.retain(|(f, _)| *f != flow);
        self.flow_transports.push((flow, transport));
        self
    }

    /// The SIP transport of `flow` (reliable unless set otherwise).
    #[must_use]
    pub fn transport(&self, flow: FlowId) -> Transport {
        self.flow_transports.iter().find(|(f, _)| *f == flow).map_or(Transport::Reliable, |(_, t)| *t)
    }
}

/// The non-CPM system behind an IWF; its format is what
/// [`crate::interworking::convert`] produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NonCpmSystem {
    /// SMS: SMPP v3.4 `submit_sm` PDUs, one per concatenated segment.
    Sms,
    /// MMS: one `m-send-req` PDU.
    Mms,
    /// Email: one RFC 5322 message.
    Email,
}

impl NonCpmSystem {
    /// The format name in traces (`sms`, `mms`, `email`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Mms => "mms",
            Self::Email => "email",
        }
    }
}

/// When the IWF sends its delivery REPORT (seed 000, SPEC "Acknowledgements").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IwfReport {
    /// When the non-CPM system acknowledges ([`crate::Input::NonCpmAck`]).
    AfterNonCpmAck,
    /// As soon as the whole message arrived (seed 000 paragraph 0111).
    AtMediaEnd,
}

/// What an IWF does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IwfConfig {
    /// The non-CPM system it converts to.
    pub system: NonCpmSystem,
    /// When it reports delivery.
    pub report: IwfReport,
    /// Whether it sends BYE after its REPORT (our reading of seed 000 paragraph 0102).
    pub bye_after_report: bool,
    /// How content becomes the system's format (text rules, SMS, Email, MMS options).
    pub conversion: ConversionConfig,
    /// The wall-clock time (seconds since the Unix epoch) at an instant of the
    /// runtime's clock, for the Email and MMS `Date`; without it the Date is
    /// the epoch. The IWF reads no clock itself.
    pub wall_clock: Option<(Instant, u64)>,
}

impl IwfConfig {
    /// An IWF towards `system` reporting as `report`, no BYE of its own,
    /// default conversion rules and no wall clock.
    #[must_use]
    pub fn new(system: NonCpmSystem, report: IwfReport) -> Self {
        Self { system, report, bye_after_report: false, conversion: ConversionConfig::default(), wall_clock: None }
    }
}

/// How the controlling function routes a member of an ad-hoc list: the
/// first rule whose `suffix` ends the member's URI wins (a CPM member's
/// terminating PF, or the ISF for a non-CPM member).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressRule {
    /// The end of the member URIs this rule takes (`@example.com`, or a whole URI).
    pub suffix: String,
    /// SIP flow to the next entity.
    pub flow: FlowId,
    /// [`Hop::L3`] for a CPM member, [`Hop::L3Iwf`] for a non-CPM one.
    pub hop: Hop,
    /// The hop's name in traces.
    pub label: String,
}

/// One downstream destination of a relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Downstream {
    /// Request-URI of the outbound INVITE; empty: the inbound INVITE's
    /// Request-URI (what PF(A) forwards to the CF).
    pub target: String,
    /// SIP flow towards the next entity.
    pub flow: FlowId,
    /// The hop of seed 001 (for the preset opener and trigger).
    pub hop: Hop,
    /// Its name in traces (`L3`, `L3/B2`, ...).
    pub label: String,
}

/// What every CPM entity serves over SIP: INVITE sessions (and their ACK,
/// CANCEL, BYE, OPTIONS), with SDP or a multipart/mixed body carrying the
/// SDP and an RFC 5366 recipient list. Every other method is answered by the
/// user agent (405, 501).
pub(crate) fn entity_capabilities() -> SipCapabilities {
    let mut capabilities = SipCapabilities::serving(&[]);
    capabilities.set_accept(&["application/sdp", "multipart/mixed"]);
    capabilities
}

/// The Retry-After of an entity's 503 at `max_sessions` (RFC 3261 s.21.5.4).
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(10);
