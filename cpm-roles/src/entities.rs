//! The public entities: thin, role-specific fronts over one shared machine.

use std::time::Instant;

use cpm_negotiation::Hop;

use crate::config::{AddressRule, Downstream, EntityConfig, IwfConfig};
use crate::error::UsageError;
use crate::ids::{FlowId, SessionId, SharedIds};
use crate::node::{Role, Routing};
use crate::server::Server;
use crate::stats::Stats;
use crate::{Input, Output};
use msrp_core::IdSource;

/// The machine shape every entity shares (every machine of this workspace has it), so that a runtime
/// or the simulator can drive any of them; every entity is `Send`, so a
/// runtime can run each on its own task or thread.
pub trait Entity: Send {
    /// The entity's name (from its [`EntityConfig`]).
    fn name(&self) -> &str;
    /// Feeds one input; then the caller MUST drain [`Entity::poll_output`]
    /// until `None` and read [`Entity::poll_timeout`].
    ///
    /// # Errors
    /// [`UsageError`] for a caller mistake; peer faults never return `Err`.
    fn handle(&mut self, now: Instant, input: Input) -> Result<(), UsageError>;
    /// The next output, `None` when there is nothing more to do now.
    fn poll_output(&mut self) -> Option<Output>;
    /// When [`Input::Timeout`] is next due.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Whether nothing is left: no SIP leg or transaction, no open link, no
    /// MSRP transaction waiting for a response.
    fn is_idle(&self) -> bool;
    /// The SIP sessions running now, for [`crate::Command::End`] (none for an
    /// entity that keeps no session, such as the ISF proxy).
    fn sessions(&self) -> Vec<SessionId>;
    /// Its counters and levels, cheap to read after every input.
    fn stats(&self) -> Stats;
}

macro_rules! entity {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name(Server);

        impl $name {
            /// See [`Entity::handle`].
            ///
            /// # Errors
            /// [`UsageError`] for a caller mistake.
            pub fn handle(&mut self, now: Instant, input: Input) -> Result<(), UsageError> {
                self.0.handle(now, input)
            }
            /// See [`Entity::poll_output`].
            #[must_use]
            pub fn poll_output(&mut self) -> Option<Output> {
                self.0.poll_output()
            }
            /// See [`Entity::poll_timeout`].
            #[must_use]
            pub fn poll_timeout(&self) -> Option<Instant> {
                self.0.poll_timeout()
            }
            /// Each hop of the sessions this entity is running now, with the
            /// trigger its [`cpm_negotiation::HopLink`] uses.
            #[must_use]
            pub fn hop_triggers(&self) -> Vec<(String, cpm_negotiation::Trigger)> {
                self.0.hop_triggers()
            }
            /// The SIP sessions this entity is serving now (each with its
            /// own legs, hops and MSRP sessions; links are shared).
            #[must_use]
            pub fn session_count(&self) -> usize {
                self.0.session_count()
            }
        }

        impl Entity for $name {
            fn name(&self) -> &str {
                self.0.name()
            }
            fn handle(&mut self, now: Instant, input: Input) -> Result<(), UsageError> {
                self.0.handle(now, input)
            }
            fn poll_output(&mut self) -> Option<Output> {
                self.0.poll_output()
            }
            fn poll_timeout(&self) -> Option<Instant> {
                self.0.poll_timeout()
            }
            fn is_idle(&self) -> bool {
                self.0.is_idle()
            }
            fn sessions(&self) -> Vec<SessionId> {
                self.0.sessions()
            }
            fn stats(&self) -> Stats {
                self.0.stats()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).field("name", &self.0.name()).finish_non_exhaustive()
            }
        }
    };
}

entity!(
    /// CPM Client: the sender (UAC: INVITE with an MSRP offer, ACK, opens or
    /// accepts its hop as negotiated, sends the message with
    /// `Success-Report: yes`, surfaces the outcome, BYE) or the receiver (UAS:
    /// answers, accepts or opens its hop, reassembles, sends the success
    /// REPORT, handles BYE).
    Client
);

impl Client {
    /// Client A: sends [`crate::Command::SendMessage`] on `flow` (towards its
    /// originating participating function) over hop `hop` (normally
    /// [`Hop::L1`]), named `label` in traces.
    #[must_use]
    pub fn sender(
        config: EntityConfig,
        flow: FlowId,
        hop: Hop,
        label: &str,
        now: Instant,
        ids: impl IdSource + Send + 'static,
    ) -> Self {
        Self(Server::new(config, Role::Sender { flow, hop, label: label.to_owned() }, now, SharedIds::new(ids)))
    }

    /// Client B: answers one INVITE; its hop is `hop` (normally [`Hop::L4`]).
    #[must_use]
    pub fn receiver(
        config: EntityConfig,
        hop: Hop,
        label: &str,
        now: Instant,
        ids: impl IdSource + Send + 'static,
    ) -> Self {
        Self(Server::new(
            config,
            Role::Receiver { hop, label: label.to_owned(), reject: None },
            now,
            SharedIds::new(ids),
        ))
    }

    /// Client B refusing every INVITE with `status` (486 Busy Here, 603
    /// Decline ...): a member whose outcome is a failure.
    #[must_use]
    pub fn rejecting_receiver(
        config: EntityConfig,
        hop: Hop,
        label: &str,
        status: u16,
        now: Instant,
        ids: impl IdSource + Send + 'static,
    ) -> Self {
        Self(Server::new(
            config,
            Role::Receiver { hop, label: label.to_owned(), reject: Some(status) },
            now,
            SharedIds::new(ids),
        ))
    }
}

entity!(
    /// Participating function (originating PF(A) or terminating PF(B)): a
    /// B2BUA between its user and the controlling function, and a
    /// back-to-back MSRP endpoint relaying chunks hop to hop as they arrive
    /// (cut-through). It answers upstream after the downstream 200, generates
    /// the downstream ACK by its [`EntityConfig::ack_policy`], opens its hops
    /// at the preset trigger, and re-addresses the REPORT upstream.
    Participating
);

impl Participating {
    /// A participating function whose upstream hop is `up` (`L1` for PF(A),
    /// `L3` for PF(B)) and whose single downstream destination is `down`.
    #[must_use]
    pub fn new(
        config: EntityConfig,
        up: Hop,
        up_label: &str,
        down: Downstream,
        now: Instant,
        ids: impl IdSource + Send + 'static,
    ) -> Self {
        let role = Role::Participating(Routing {
            up_hop: up,
            up_label: up_label.to_owned(),
            down: vec![down],
            groups: Vec::new(),
            rules: Vec::new(),
            user_labels: Vec::new(),
        });
        Self(Server::new(config, role, now, SharedIds::new(ids)))
    }
}

impl Participating {
    /// A participating function serving several users (a terminating PF(B)
    /// for every member of one domain): each entry is a user's address (the
    /// Request-URI of the INVITEs for that user), the name of that user's
    /// upstream hop in traces, and the route to the user. Every INVITE runs
    /// as its own session; an INVITE for no listed user is answered 404.
    /// The sessions share the PF's MSRP port, and the hops it opens toward
    /// one host share a link ([`EntityConfig::reuse_links`]).
    #[must_use]
    pub fn serving(
        config: EntityConfig,
        up: Hop,
        users: Vec<(String, String, Downstream)>,
        now: Instant,
        ids: impl IdSource + Send + 'static,
    ) -> Self {
        let up_label = users.first().map(|(_, label, _)| label.clone()).unwrap_or_default();
        let user_labels = users.iter().map(|(user, label, _)| (user.clone(), label.clone())).collect();
        let groups = users.into_iter().map(|(user, _, down)| (user, vec![down])).collect();
        let role = Role::Participating(Routing {
            up_hop: up,
            up_label,
            down: Vec::new(),
            groups,
            rules: Vec::new(),
            user_labels,
        });
        Self(Server::new(config, role, now, SharedIds::new(ids)))
    }
}

entity!(
    /// Controlling function: one outbound leg per group member, answering
    /// upstream at once or after the first member's 200
    /// ([`EntityConfig::answer_policy`]), holding each member's ACK until that
    /// member's 200, and an MSRP switch that fans each incoming chunk out to
    /// every member's hop sharing one body buffer. It reports every member's
    /// outcome as an event and sends one success REPORT upstream once every
    /// member's outcome is known (never a failure REPORT for one member).
    Controlling
);

impl Controlling {
    /// A controlling function for a pre-defined group whose members the
    /// caller resolved (each with its route: a terminating PF for a CPM
    /// member). `up` is normally [`Hop::L2`].
    #[must_use]
    pub fn new(
        config: EntityConfig,
        up: Hop,
        up_label: &str,
        members: Vec<Downstream>,
        now: Instant,
        ids: impl IdSource + Send + 'static,
    ) -> Self {
        let role = Role::Controlling(Routing {
            up_hop: up,
            up_label: up_label.to_owned(),
            down: members,
            groups: Vec::new(),
            rules: Vec::new(),
            user_labels: Vec::new(),
        });
        Self(Server::new(config, role, now, SharedIds::new(ids)))
    }

    /// A controlling function with a directory of pre-defined groups: the
    /// INVITE's Request-URI picks the group (exact match), whose members the
    /// caller resolved (route per member: a terminating PF for a CPM member,
    /// the ISF for a non-CPM one). An unknown group is answered 404.
    #[must_use]
    pub fn with_groups(
        config: EntityConfig,
        up: Hop,
        up_label: &str,
        groups: Vec<(String, Vec<Downstream>)>,
        now: Instant,
        ids: impl IdSource + Send + 'static,
    ) -> Self {
        Self::with_directory(config, up, up_label, groups, Vec::new(), now, ids)
    }

    /// A controlling function with a directory of pre-defined groups (see
    /// [`Controlling::with_groups`]) that also serves ad-hoc groups: an INVITE
    /// with a `multipart/mixed` body carrying a recipient list (RFC 5366) gets
    /// one outbound leg per listed member, routed by the first matching
    /// [`AddressRule`]; a member no rule routes makes the INVITE fail with 404.
    #[must_use]
    pub fn with_directory(
        config: EntityConfig,
        up: Hop,
        up_label: &str,
        groups: Vec<(String, Vec<Downstream>)>,
        rules: Vec<AddressRule>,
        now: Instant,
        ids: impl IdSource + Send + 'static,
    ) -> Self {
        let role = Role::Controlling(Routing {
            up_hop: up,
            up_label: up_label.to_owned(),
            down: Vec::new(),
            groups,
            rules,
            user_labels: Vec::new(),
        });
        Self(Server::new(config, role, now, SharedIds::new(ids)))
    }
}

entity!(
    /// Interworking function: a SIP UAS and MSRP endpoint that, once a whole
    /// message arrived, hands it to the non-CPM system
    /// ([`crate::Event::DeliverToNonCpm`]) and sends the delivery REPORT when
    /// that system acknowledges ([`crate::Input::NonCpmAck`]) or at once at
    /// media end, then BYE when configured ([`IwfConfig`]).
    Iwf
);

impl Iwf {
    /// An IWF whose hop is `hop` (normally [`Hop::L3Iwf`]), named `label` in traces.
    #[must_use]
    pub fn new(
        config: EntityConfig,
        hop: Hop,
        label: &str,
        iwf: IwfConfig,
        now: Instant,
        ids: impl IdSource + Send + 'static,
    ) -> Self {
        Self(Server::new(config, Role::Iwf { hop, label: label.to_owned(), iwf }, now, SharedIds::new(ids)))
    }
}

/// Settings of an [`Isf`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsfConfig {
    /// Its name in traces.
    pub name: String,
    /// Its host (Via, Record-Route).
    pub host: String,
    /// Next-hop host to flow (the IWFs, and the CF for in-dialog requests
    /// from an IWF).
    pub routes: Vec<(String, FlowId)>,
    /// Request-URI (a non-CPM receiver's address) to the IWF chosen for it
    /// (exact match; consulted after [`IsfConfig::selection`]).
    pub rules: Vec<(String, String)>,
    /// IWF selection rules on the receiver address, content type and size of
    /// a new INVITE; the first that matches chooses the IWF.
    pub selection: Vec<IwfRule>,
    /// The SIP transport of each flow that is not reliable (see
    /// [`crate::EntityConfig::flow_transports`]).
    pub flow_transports: Vec<(FlowId, sip_lite::transaction::Transport)>,
    /// Forward statelessly (RFC 3261 s.16.11) instead of through
    /// transactions (a plain SIP/IP core proxy; an ISF is transaction-stateful).
    pub stateless: bool,
}

impl IsfConfig {
    /// The SIP transport of `flow` (reliable unless set otherwise).
    #[must_use]
    pub fn transport(&self, flow: FlowId) -> sip_lite::transaction::Transport {
        self.flow_transports
            .iter()
            .find(|(f, _)| *f == flow)
            .map_or(sip_lite::transaction::Transport::Reliable, |(_, t)| *t)
    }
}

/// One IWF selection rule of an [`Isf`]: every condition given must hold
/// (an absent one always does). The content type and size are the
/// sender's, as its MSRP offer states them (`a=accept-types` and
/// `a=max-size` of a send-only offer, RFC 4975 s.8.6).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct IwfRule {
    /// The end of the receiver's address (the Request-URI): `@sms.example.com`.
    pub receiver_suffix: Option<String>,
    /// A media type, `type/*` or `*` covering the offered content type.
    pub content_type: Option<String>,
    /// The smallest size the rule takes (bytes).
    pub min_size: Option<u64>,
    /// The largest size the rule takes (bytes).
    pub max_size: Option<u64>,
    /// The Request-URI of the chosen IWF.
    pub iwf: String,
}

impl IwfRule {
    /// Whether the rule takes an INVITE to `receiver` offering `content_type`
    /// of `size` bytes (`None`: not stated in the offer, so a rule naming
    /// that condition does not match).
    #[must_use]
    pub fn matches(&self, receiver: &str, content_type: Option<&str>, size: Option<u64>) -> bool {
        let receiver_ok = self.receiver_suffix.as_deref().map_or(true, |s| receiver.ends_with(s));
        let type_ok = self.content_type.as_deref().map_or(true, |pattern| {
            let pattern = cpm_negotiation::MediaType::parse_str(pattern);
            content_type.is_some_and(|t| pattern.is_ok_and(|p| p.matches(t)))
        });
        let min_ok = self.min_size.map_or(true, |min| size.is_some_and(|s| s >= min));
        let max_ok = self.max_size.map_or(true, |max| size.is_some_and(|s| s <= max));
        receiver_ok && type_ok && min_ok && max_ok
    }
}

/// The IWF the first matching rule chooses for `request` (an INVITE with an
/// MSRP offer), `None` when none does.
fn select_iwf(rules: &[IwfRule], request: &sip_lite::sip::Message) -> Option<String> {
    let receiver = request.request_uri_str().unwrap_or_default();
    let sdp = cpm_negotiation::MsrpSdp::parse(request.body()).ok();
    let media = sdp.as_ref().and_then(cpm_negotiation::MsrpSdp::first_active);
    let content_type = media.and_then(|m| m.accept_types().first()).map(|t| t.essence().to_owned());
    let size = media.and_then(cpm_negotiation::MsrpMedia::max_size);
    rules.iter().find(|r| r.matches(receiver, content_type.as_deref(), size)).map(|r| r.iwf.clone())
}

/// Interworking selection function: a transaction-stateful proxy
/// ([`sip_lite::proxy::Proxy`]) that retargets an INVITE's Request-URI to the
/// IWF its rules choose and Record-Routes, so the same INVITE, 200, ACK and
/// BYE pass through it.
///
/// The IWF is chosen per INVITE by [`IsfConfig::selection`] (receiver
/// address, content type, size), then by the exact [`IsfConfig::rules`].
pub struct Isf {
    name: String,
    flow_transports: Vec<(FlowId, sip_lite::transaction::Transport)>,
    proxy: sip_lite::proxy::Proxy,
    out: std::collections::VecDeque<Output>,
    stats: Stats,
}

impl std::fmt::Debug for Isf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Isf").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Isf {
    /// An ISF.
    #[must_use]
    pub fn new(config: IsfConfig, now: Instant, ids: impl IdSource + Send + 'static) -> Self {
        let mut proxy_config = sip_lite::proxy::ProxyConfig::new(&config.host);
        proxy_config.set_stateless(config.stateless);
        for (host, flow) in &config.routes {
            let transport = config.transport(*flow);
            proxy_config.add_route(host, *flow, transport);
        }
        for (uri, iwf) in &config.rules {
            proxy_config.add_rewrite(uri, iwf);
        }
        let mut proxy = sip_lite::proxy::Proxy::new(proxy_config, now, Box::new(SharedIds::new(ids)));
        if !config.selection.is_empty() {
            let rules = config.selection.clone();
            // The ISF "rewrites the Request-URI to an IWF chosen by
            // configured rules on content type, size and receiver address".
            proxy.set_selector(Box::new(move |request: &sip_lite::sip::Message| select_iwf(&rules, request)));
        }
        Self {
            name: config.name,
            flow_transports: config.flow_transports,
            proxy,
            out: std::collections::VecDeque::new(),
            stats: Stats::default(),
        }
    }

    fn transport(&self, flow: FlowId) -> sip_lite::transaction::Transport {
        self.flow_transports
            .iter()
            .find(|(f, _)| *f == flow)
            .map_or(sip_lite::transaction::Transport::Reliable, |(_, t)| *t)
    }

    fn drain(&mut self) {
        while let Some(output) = self.proxy.poll_output() {
            match output {
                sip_lite::proxy::Output::Transmit { flow, bytes, .. } => {
                    let output = Output::SipTransmit { flow, bytes };
                    self.stats.output(&output);
                    self.out.push_back(output);
                }
                sip_lite::proxy::Output::Event(sip_lite::proxy::Event::PeerError { reason, .. }) => {
                    self.out.push_back(Output::Event {
                        session: None,
                        event: crate::Event::PeerError { error: crate::PeerError::Sip(reason) },
                    });
                }
                sip_lite::proxy::Output::Event(_) => {}
            }
        }
    }
}

impl Entity for Isf {
    fn name(&self) -> &str {
        &self.name
    }
    fn handle(&mut self, now: Instant, input: Input) -> Result<(), UsageError> {
        self.stats.input(&input);
        let input = match input {
            Input::SipReceived { flow, message } => {
                sip_lite::proxy::Input::Received { flow, transport: self.transport(flow), message }
            }
            Input::SipDatagram { flow, bytes } => sip_lite::proxy::Input::Datagram { flow, bytes },
            Input::Timeout => sip_lite::proxy::Input::Timeout,
            _ => return Err(UsageError::WrongRole),
        };
        self.proxy.handle(now, input).map_err(|_| UsageError::Sip)?;
        self.drain();
        Ok(())
    }
    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.proxy.poll_timeout()
    }
    fn is_idle(&self) -> bool {
        self.proxy.is_idle()
    }
    fn sessions(&self) -> Vec<SessionId> {
        Vec::new()
    }
    fn stats(&self) -> Stats {
        self.stats.clone()
    }
}
