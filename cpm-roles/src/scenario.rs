//! The figures of the seeds as entity networks: [`Scenario`] builds A,
//! PF-A, CF, PF-B.., B.., ISF and IWF.. with their configuration and SIP
//! flows into any [`Network`]: the simulator (`sim` feature) or a runtime
//! on real sockets.

use std::time::Instant;

use bytes::Bytes;
use cpm_negotiation::{AckPolicy, Figure, Hop, Preset};

use crate::{
    AddressRule, Client, Command, Controlling, Downstream, Entity, EntityConfig, FlowId, Input, Isf, IsfConfig, Iwf,
    IwfConfig, IwfReport, NonCpmSystem, Participating, SessionId, SimulationIds, SipTransport,
};

/// Where a [`Scenario`] puts its entities.
pub trait Network {
    /// Adds an entity reachable (for MSRP connects) at `host`; returns its index.
    fn add(&mut self, host: &str, entity: Box<dyn Entity>) -> usize;
    /// A reliable SIP flow `flow` between entities `a` and `b` (the same
    /// number at both ends), named `hop` in traces.
    fn link_sip(&mut self, a: usize, b: usize, flow: FlowId, hop: &str);
    /// A SIP flow as [`Network::link_sip`] over `transport`: a datagram flow
    /// for [`SipTransport::Unreliable`] (the scenario configured both
    /// entities' [`EntityConfig::set_flow_transport`] the same way). The
    /// default ignores the transport (a network of streams only).
    fn link_sip_with(&mut self, a: usize, b: usize, flow: FlowId, hop: &str, transport: SipTransport) {
        let _ = transport;
        self.link_sip(a, b, flow, hop);
    }
    /// Hands `input` to entity `index`.
    fn input(&mut self, index: usize, input: Input);
}

/// Why a scenario cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// Not a known figure name.
    #[error("unknown scenario {0:?} (001-fig1..001-fig7, 000-fig1)")]
    UnknownName(String),
    /// At least one member (CPM or not) is needed.
    #[error("a group needs at least one member")]
    NoMembers,
}

/// SIP flow numbers: `1` A-PF(A), `2` PF(A)-CF, then per member `k` (from
/// 0) CF-PF(Bk), PF(Bk)-Bk, CF-ISF and ISF-IWFk; a proxied hop's second half
/// adds [`PROXIED`]. Room for 10 000 members of each kind.
const FLOW_L3: u64 = 10_000;
const FLOW_L4: u64 = 20_000;
const FLOW_ISF: u64 = 30_000;
const FLOW_IWF: u64 = 40_000;
const PROXIED: u64 = 100_000;

/// The pre-defined group of the scenarios.
const GROUP: &str = "sip:group@cf.example.com";

/// The session A's message starts in every scenario.
pub const SCENARIO_SESSION: SessionId = SessionId::new(1);

/// One figure of the seeds, with the options of `scenario NAME [..]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// The figure name (`001-fig1` ..).
    pub name: String,
    /// Openers, triggers, answer and ACK policies (`[PF(A), CF, PF(B)]`).
    pub preset: Preset,
    /// CPM members.
    pub members: usize,
    /// Message size in bytes.
    pub size: usize,
    /// Seed of the entropy sources and of the message content.
    pub seed: u64,
    /// Members (0-based) whose client refuses the INVITE with 486 Busy Here.
    pub busy: Vec<usize>,
    /// Non-CPM members, reached through the ISF and one IWF each.
    pub non_cpm: usize,
    /// What the IWFs do.
    pub iwf: IwfConfig,
    /// A sends to an ad-hoc group: the members' URIs in a recipient list
    /// (RFC 5366) to `sip:adhoc@cf.example.com`, routed by the CF's address
    /// rules, instead of the pre-defined group.
    pub ad_hoc: bool,
    /// The Request-URI A invites (the CF's directory has one group:
    /// `sip:group@cf.example.com`).
    pub target: String,
    /// Every entity's [`EntityConfig::max_chunk_size`]: `Some(2048)` by
    /// default, so the 5000-byte message goes as three chunks (the source documents,
    /// "Scenario defaults"); `None` sends it in one.
    pub chunk_size: Option<usize>,
    /// The ISF's IWF selection rules (tried before its exact rules, which
    /// send non-CPM member k to `iwf{k+1}.example.com`); empty by default.
    pub iwf_selection: Vec<crate::IwfRule>,
    /// The transport of every SIP flow: streams by default; datagrams
    /// ([`SipTransport::Unreliable`]) make every SIP transaction retransmit
    /// (RFC 3261 s.17) and let a simulator lose, duplicate and reorder them.
    pub sip_transport: SipTransport,
    /// Hops (`L1` .. `L4`) whose SIP goes through a SIP/IP core proxy (the
    /// seeds' "manner 1" on every hop, "manner 2" on some; none by
    /// default, "manner 3"): a transaction-stateful, Record-Routing
    /// `sip-lite` proxy named `P-<hop>` per hop instance. On `L3` of a
    /// non-CPM member it sits between the CF and the ISF.
    pub sip_proxies: Vec<String>,
    /// Whether the proxies of [`Scenario::sip_proxies`] forward statelessly
    /// (RFC 3261 s.16.11) rather than through transactions.
    pub sip_proxies_stateless: bool,
    /// The CF's [`crate::EntityConfig::slow_member`] (none by default).
    pub slow_member: Option<crate::SlowMember>,
    /// One terminating participating function `PF-B` (host
    /// `pfb.example.com`) serves every CPM member, each INVITE as its own
    /// session ([`Participating::serving`]), instead of one `PF-Bk` per
    /// member. The L3 hops then lead to one host and port: the second and
    /// later connects on L3 reuse the first one's link (RFC 4975 s.5.4).
    pub shared_pf_b: bool,
    /// Every entity's [`EntityConfig::reuse_links`] (on by default).
    pub reuse_links: bool,
    /// The largest message every entity accepts (its `a=max-size`, RFC 4975
    /// s.8.6, and its reassembly limit); `None` keeps
    /// [`EntityConfig::new`]'s 16 MiB.
    pub max_size: Option<u64>,
    /// Every entity's [`EntityConfig::msrp_tls`] (MSRP over TLS, `msrps:`).
    pub msrp_tls: bool,
}

impl Scenario {
    /// The figure `name` with its defaults (the source documents, "Scenario defaults").
    ///
    /// # Errors
    /// [`ScenarioError`] for an unknown name, or one needing the ISF/IWF.
    pub fn figure(name: &str) -> Result<Self, ScenarioError> {
        let figure = match name {
            "001-fig1" => Figure::Seed001Fig1,
            "001-fig2" => Figure::Seed001Fig2,
            "001-fig3" => Figure::Seed001Fig3,
            "001-fig4" => Figure::Seed001Fig4,
            "001-fig5" => Figure::Seed001Fig5,
            "001-fig6" => Figure::Seed001Fig6,
            "001-fig7" => Figure::Seed001Fig7,
            "000-fig1" => Figure::Seed000Fig1,
            _ => return Err(ScenarioError::UnknownName(name.to_owned())),
        };
        let non_cpm = usize::from(figure == Figure::Seed000Fig1);
        Ok(Self {
            name: name.to_owned(),
            preset: Preset::figure(figure),
            members: 1 - non_cpm,
            size: 5000,
            seed: 1,
            busy: Vec::new(),
            non_cpm,
            iwf: IwfConfig::new(NonCpmSystem::Sms, IwfReport::AfterNonCpmAck),
            target: GROUP.to_owned(),
            ad_hoc: false,
            chunk_size: Some(2048),
            iwf_selection: Vec::new(),
            sip_transport: SipTransport::Reliable,
            sip_proxies: Vec::new(),
            sip_proxies_stateless: false,
            slow_member: None,
            shared_pf_b: false,
            reuse_links: true,
            max_size: None,
            msrp_tls: false,
        })
    }

    /// The URI the CF invites for member `name` (`B`, `B2`, `IWF1` ...), as
    /// [`crate::Event::MemberOutcome`] and the IMDNs name it.
    #[must_use]
    pub fn member_uri(&self, name: &str) -> Option<String> {
        let number = |rest: &str| if rest.is_empty() { Some(1) } else { rest.parse::<usize>().ok() };
        if let Some(rest) = name.strip_prefix("IWF") {
            let k = number(rest)?.checked_sub(1)?;
            return (k < self.non_cpm).then(|| format!("sip:+1555000{k}@sms.example.com"));
        }
        let k = number(name.strip_prefix('B')?)?;
        (1..=self.members).contains(&k).then(|| format!("sip:b{k}@example.com"))
    }

    /// The message: `size` printable bytes derived from the seed.
    #[must_use]
    pub fn body(&self) -> Bytes {
        let mut ids = SimulationIds::new(self.seed ^ 0xB0D7);
        Bytes::from((0..self.size).map(|_| b'a' + (ids.next_u64() % 26) as u8).collect::<Vec<u8>>())
    }

    /// Adds the entities (A, PF-A, CF, PF-B.., B.., ISF, IWF..) and their SIP
    /// flows to `net`, then hands A the command that sends `body`.
    ///
    /// # Errors
    /// [`ScenarioError::NoMembers`] for zero members.
    pub fn populate<N: Network>(&self, net: &mut N, epoch: Instant, body: Bytes) -> Result<(), ScenarioError> {
        if self.members + self.non_cpm == 0 {
            return Err(ScenarioError::NoMembers);
        }
        let mut seeds = SimulationIds::new(self.seed);
        let preset = self.preset;
        // Every SIP flow of the network (see the numbering below).
        let flows: Vec<FlowId> = [1, 2]
            .into_iter()
            .chain((0..self.members as u64).flat_map(|k| [FLOW_L3 + k, FLOW_L4 + k]))
            .chain((0..self.non_cpm as u64).flat_map(|k| [FLOW_ISF + k, FLOW_IWF + k]))
            // A proxied hop's second half is the same flow number plus PROXIED.
            .flat_map(|f| [FlowId::new(f), FlowId::new(f + PROXIED)])
            .collect();
        let transports: Vec<(FlowId, SipTransport)> = if self.sip_transport == SipTransport::Reliable {
            Vec::new()
        } else {
            flows.iter().map(|&f| (f, self.sip_transport)).collect()
        };
        let transport = self.sip_transport;
        let config = |name: &str, host: &str, ack: AckPolicy| {
            let mut c = EntityConfig::new(name, host, 2855, preset);
            c.ack_policy = ack;
            c.max_chunk_size = self.chunk_size;
            c.flow_transports.clone_from(&transports);
            c.reuse_links = self.reuse_links;
            if let Some(max_size) = self.max_size {
                c.capabilities.max_size = Some(max_size);
            }
            c.msrp_tls = self.msrp_tls;
            c
        };
        let a = Client::sender(
            config("A", "a.example.com", AckPolicy::AfterUpstreamAck),
            FlowId::new(1),
            Hop::L1,
            "L1",
            epoch,
            seeds.fork(),
        );
        let a = net.add("a.example.com", Box::new(a));
        let pfa_down = Downstream { target: String::new(), flow: FlowId::new(2), hop: Hop::L2, label: "L2".to_owned() };
        let pfa = Participating::new(
            config("PF-A", "pfa.example.com", preset.ack_policy[0]),
            Hop::L1,
            "L1",
            pfa_down,
            epoch,
            seeds.fork(),
        );
        let pfa = net.add("pfa.example.com", Box::new(pfa));
        let mut wire = Wiring { scenario: self, seeds: &mut seeds, epoch, transports: &transports };
        wire.link(net, (a, "a.example.com"), pfa, FlowId::new(1), "L1", &["cf.example.com", "pfa.example.com"]);
        let single = self.members + self.non_cpm == 1;
        let suffix = |k: usize| if single { String::new() } else { (k + 1).to_string() };
        let mut members: Vec<Downstream> = (0..self.members)
            .map(|k| {
                let s = suffix(k);
                Downstream {
                    target: format!("sip:b{}@example.com", k + 1),
                    flow: FlowId::new(FLOW_L3 + k as u64),
                    hop: Hop::L3,
                    label: if s.is_empty() { "L3".to_owned() } else { format!("L3/B{s}") },
                }
            })
            .collect();
        // The CF's address rule: non-CPM receivers go to the ISF.
        let iwf_label = |k: usize| if single { "L3".to_owned() } else { format!("L3/IWF{}", k + 1) };
        for k in 0..self.non_cpm {
            members.push(Downstream {
                target: format!("sip:+1555000{k}@sms.example.com"),
                flow: FlowId::new(FLOW_ISF + k as u64),
                hop: Hop::L3Iwf,
                label: iwf_label(k),
            });
        }
        let rules = members
            .iter()
            .map(|m| AddressRule { suffix: m.target.clone(), flow: m.flow, hop: m.hop, label: m.label.clone() })
            .collect();
        let mut cf_config = config("CF", "cf.example.com", preset.ack_policy[1]);
        cf_config.slow_member = self.slow_member;
        let cf = Controlling::with_directory(
            cf_config,
            Hop::L2,
            "L2",
            vec![(GROUP.to_owned(), members.clone())],
            rules,
            epoch,
            wire.seeds.fork(),
        );
        let cf = net.add("cf.example.com", Box::new(cf));
        wire.link(net, (pfa, "pfa.example.com"), cf, FlowId::new(2), "L2", &["cf.example.com"]);
        if self.non_cpm > 0 {
            let mut routes: Vec<(String, FlowId)> = (0..self.non_cpm)
                .map(|k| (format!("iwf{}.example.com", k + 1), FlowId::new(FLOW_IWF + k as u64)))
                .collect();
            let cf_flow = if self.proxied("L3") { FLOW_ISF + PROXIED } else { FLOW_ISF };
            routes.push(("cf.example.com".to_owned(), FlowId::new(cf_flow)));
            if self.proxied("L3") {
                // In-dialog requests from an IWF are routed back through its L3 proxy.
                for k in 0..self.non_cpm {
                    routes.push((proxy_host(&iwf_label(k)), FlowId::new(FLOW_ISF + PROXIED + k as u64)));
                }
            }
            let rules = (0..self.non_cpm)
                .map(|k| (format!("sip:+1555000{k}@sms.example.com"), format!("sip:iwf@iwf{}.example.com", k + 1)))
                .collect();
            let isf_config = IsfConfig {
                name: "ISF".to_owned(),
                host: "isf.example.com".to_owned(),
                routes,
                rules,
                selection: self.iwf_selection.clone(),
                flow_transports: transports.clone(),
                stateless: false,
            };
            let isf = net.add("isf.example.com", Box::new(Isf::new(isf_config, epoch, wire.seeds.fork())));
            for k in 0..self.non_cpm {
                let label = iwf_label(k);
                let name = if single { "IWF".to_owned() } else { format!("IWF{}", k + 1) };
                let host = format!("iwf{}.example.com", k + 1);
                let iwf_config = config(&name, &host, AckPolicy::AfterUpstreamAck);
                let iwf = Iwf::new(iwf_config, Hop::L3Iwf, &label, self.iwf.clone(), epoch, wire.seeds.fork());
                let iwf = net.add(&host, Box::new(iwf));
                let cf_end = (cf, "cf.example.com");
                wire.link(
                    net,
                    cf_end,
                    isf,
                    FlowId::new(FLOW_ISF + k as u64),
                    &label,
                    &["sms.example.com", "isf.example.com"],
                );
                net.link_sip_with(isf, iwf, FlowId::new(FLOW_IWF + k as u64), &label, transport);
            }
        }
        let shared_pf_b = (self.shared_pf_b && self.members > 0).then(|| {
            let pfb_host = "pfb.example.com";
            let users = members
                .iter()
                .take(self.members)
                .enumerate()
                .map(|(k, member)| (member.target.clone(), member.label.clone(), self.l4_down(k, member)))
                .collect();
            let config = config("PF-B", pfb_host, preset.ack_policy[2]);
            let pfb = Participating::serving(config, Hop::L3, users, epoch, wire.seeds.fork());
            (net.add(pfb_host, Box::new(pfb)), pfb_host.to_owned())
        });
        for (k, member) in members.iter().take(self.members).enumerate() {
            let s = suffix(k);
            let down = self.l4_down(k, member);
            let (pfb, pfb_host) = match &shared_pf_b {
                Some((pfb, host)) => (*pfb, host.clone()),
                None => {
                    let pfb_host = format!("pfb{}.example.com", k + 1);
                    let pfb = Participating::new(
                        config(&format!("PF-B{s}"), &pfb_host, preset.ack_policy[2]),
                        Hop::L3,
                        &member.label,
                        down.clone(),
                        epoch,
                        wire.seeds.fork(),
                    );
                    (net.add(&pfb_host, Box::new(pfb)), pfb_host)
                }
            };
            wire.link(net, (cf, "cf.example.com"), pfb, member.flow, &member.label, &["example.com", &pfb_host]);
            let b_host = format!("b{}.example.com", k + 1);
            let b_config = config(&format!("B{s}"), &b_host, AckPolicy::AfterUpstreamAck);
            let b = if self.busy.contains(&k) {
                Client::rejecting_receiver(b_config, Hop::L4, &down.label, 486, epoch, wire.seeds.fork())
            } else {
                Client::receiver(b_config, Hop::L4, &down.label, epoch, wire.seeds.fork())
            };
            let b = net.add(&b_host, Box::new(b));
            wire.link(net, (pfb, &pfb_host), b, down.flow, &down.label, &["example.com", &b_host]);
        }
        net.input(
            a,
            Input::Command(Command::SendMessage {
                session: SCENARIO_SESSION,
                recipients: if self.ad_hoc { members.iter().map(|m| m.target.clone()).collect() } else { Vec::new() },
                target: if self.ad_hoc { "sip:adhoc@cf.example.com".to_owned() } else { self.target.clone() },
                content_type: "text/plain".to_owned(),
                body,
            }),
        );
        Ok(())
    }

    /// The L4 route of CPM member `k` from its PF(B).
    fn l4_down(&self, k: usize, member: &Downstream) -> Downstream {
        let single = self.members + self.non_cpm == 1;
        let label = if single { "L4".to_owned() } else { format!("L4/B{}", k + 1) };
        Downstream { target: member.target.clone(), flow: FlowId::new(FLOW_L4 + k as u64), hop: Hop::L4, label }
    }

    /// Whether hop `hop` (`L3/B2` is `L3`) goes through a SIP proxy.
    fn proxied(&self, hop: &str) -> bool {
        let base = hop.split('/').next().unwrap_or(hop);
        self.sip_proxies.iter().any(|p| p == base)
    }
}

/// The host of the SIP proxy on hop `hop` (`L3/B2`: `p-l3-b2.example.com`).
fn proxy_host(hop: &str) -> String {
    format!("p-{}.example.com", hop.replace('/', "-").to_ascii_lowercase())
}

/// What [`Scenario::populate`] needs to wire SIP flows (with a proxy where asked).
struct Wiring<'a> {
    scenario: &'a Scenario,
    seeds: &'a mut SimulationIds,
    epoch: Instant,
    transports: &'a [(FlowId, SipTransport)],
}

impl Wiring<'_> {
    /// The SIP flow `flow` from `up` (an entity and its host) to `down`, named
    /// `hop`; with a proxy on the hop, `up` reaches the proxy on `flow` and
    /// the proxy reaches `down` on `flow + PROXIED`. `down_hosts` are the hosts
    /// the proxy reaches through `down` (Request-URIs and Contacts there).
    fn link<N: Network>(
        &mut self,
        net: &mut N,
        up: (usize, &str),
        down: usize,
        flow: FlowId,
        hop: &str,
        down_hosts: &[&str],
    ) {
        let transport = self.scenario.sip_transport;
        if !self.scenario.proxied(hop) {
            net.link_sip_with(up.0, down, flow, hop, transport);
            return;
        }
        let inner = FlowId::new(flow.get() + PROXIED);
        let host = proxy_host(hop);
        let mut routes: Vec<(String, FlowId)> = down_hosts.iter().map(|h| ((*h).to_owned(), inner)).collect();
        routes.push((up.1.to_owned(), flow));
        let config = IsfConfig {
            name: format!("P-{hop}"),
            host: host.clone(),
            routes,
            rules: Vec::new(),
            selection: Vec::new(),
            flow_transports: self.transports.to_vec(),
            stateless: self.scenario.sip_proxies_stateless,
        };
        let proxy = net.add(&host, Box::new(Isf::new(config, self.epoch, self.seeds.fork())));
        net.link_sip_with(up.0, proxy, flow, hop, transport);
        net.link_sip_with(proxy, down, inner, hop, transport);
    }
}
