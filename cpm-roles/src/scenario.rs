//! The figures of the seeds as entity networks: [`Scenario`] builds A,
//! PF-A, CF, PF-B.., B.., ISF and IWF.. with their configuration and SIP
//! flows into any [`Network`]: the simulator (`sim` feature) or a runtime
//! on real sockets.

use std::time::Instant;

use bytes::Bytes;
use cpm_negotiation::{AckPolicy, Figure, Hop, Preset};

use crate::{
    AddressRule, Client, Command, Controlling, Downstream, Entity, EntityConfig, FlowId, Input, Isf, IsfConfig, Iwf,
    IwfConfig, IwfReport, NonCpmSystem, Participating, SeededIds,
};

/// Where a [`Scenario`] puts its entities.
pub trait Network {
    /// Adds an entity reachable (for MSRP connects) at `host`; returns its index.
    fn add(&mut self, host: &str, entity: Box<dyn Entity>) -> usize;
    /// A reliable SIP flow `flow` between entities `a` and `b` (the same
    /// number at both ends), named `hop` in traces.
    fn link_sip(&mut self, a: usize, b: usize, flow: FlowId, hop: &str);
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

/// The pre-defined group of the scenarios.
const GROUP: &str = "sip:group@cf.example.com";

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
}

impl Scenario {
    /// The figure `name` with its defaults (SPEC.md "Scenario defaults").
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
            iwf: IwfConfig { system: NonCpmSystem::Sms, report: IwfReport::AfterNonCpmAck, bye_after_report: false },
            target: GROUP.to_owned(),
            ad_hoc: false,
        })
    }

    /// The message: `size` printable bytes derived from the seed.
    #[must_use]
    pub fn body(&self) -> Bytes {
        let mut ids = SeededIds::new(self.seed ^ 0xB0D7);
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
        let mut seeds = SeededIds::new(self.seed);
        let preset = self.preset;
        let config = |name: &str, host: &str, ack: AckPolicy| {
            let mut c = EntityConfig::new(name, host, 2855, preset);
            c.ack_policy = ack;
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
        net.link_sip(a, pfa, FlowId::new(1), "L1");
        let single = self.members + self.non_cpm == 1;
        let suffix = |k: usize| if single { String::new() } else { (k + 1).to_string() };
        let mut members: Vec<Downstream> = (0..self.members)
            .map(|k| {
                let s = suffix(k);
                Downstream {
                    target: format!("sip:b{}@example.com", k + 1),
                    flow: FlowId::new(10 + k as u64),
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
                flow: FlowId::new(50 + k as u64),
                hop: Hop::L3Iwf,
                label: iwf_label(k),
            });
        }
        let rules = members
            .iter()
            .map(|m| AddressRule { suffix: m.target.clone(), flow: m.flow, hop: m.hop, label: m.label.clone() })
            .collect();
        let cf = Controlling::with_directory(
            config("CF", "cf.example.com", preset.ack_policy[1]),
            Hop::L2,
            "L2",
            vec![(GROUP.to_owned(), members.clone())],
            rules,
            epoch,
            seeds.fork(),
        );
        let cf = net.add("cf.example.com", Box::new(cf));
        net.link_sip(pfa, cf, FlowId::new(2), "L2");
        if self.non_cpm > 0 {
            let mut routes: Vec<(String, FlowId)> =
                (0..self.non_cpm).map(|k| (format!("iwf{}.example.com", k + 1), FlowId::new(60 + k as u64))).collect();
            routes.push(("cf.example.com".to_owned(), FlowId::new(50)));
            let rules = (0..self.non_cpm)
                .map(|k| (format!("sip:+1555000{k}@sms.example.com"), format!("sip:iwf@iwf{}.example.com", k + 1)))
                .collect();
            let isf_config = IsfConfig { name: "ISF".to_owned(), host: "isf.example.com".to_owned(), routes, rules };
            let isf = net.add("isf.example.com", Box::new(Isf::new(isf_config, epoch, seeds.fork())));
            for k in 0..self.non_cpm {
                let label = iwf_label(k);
                let name = if single { "IWF".to_owned() } else { format!("IWF{}", k + 1) };
                let host = format!("iwf{}.example.com", k + 1);
                let iwf_config = config(&name, &host, AckPolicy::AfterUpstreamAck);
                let iwf = Iwf::new(iwf_config, Hop::L3Iwf, &label, self.iwf, epoch, seeds.fork());
                let iwf = net.add(&host, Box::new(iwf));
                net.link_sip(cf, isf, FlowId::new(50 + k as u64), &label);
                net.link_sip(isf, iwf, FlowId::new(60 + k as u64), &label);
            }
        }
        for (k, member) in members.iter().take(self.members).enumerate() {
            let s = suffix(k);
            let l4 = if s.is_empty() { "L4".to_owned() } else { format!("L4/B{s}") };
            let pfb_host = format!("pfb{}.example.com", k + 1);
            let b_host = format!("b{}.example.com", k + 1);
            let down = Downstream {
                target: member.target.clone(),
                flow: FlowId::new(100 + k as u64),
                hop: Hop::L4,
                label: l4.clone(),
            };
            let pfb = Participating::new(
                config(&format!("PF-B{s}"), &pfb_host, preset.ack_policy[2]),
                Hop::L3,
                &member.label,
                down,
                epoch,
                seeds.fork(),
            );
            let pfb = net.add(&pfb_host, Box::new(pfb));
            net.link_sip(cf, pfb, member.flow, &member.label);
            let b_config = config(&format!("B{s}"), &b_host, AckPolicy::AfterUpstreamAck);
            let b = if self.busy.contains(&k) {
                Client::rejecting_receiver(b_config, Hop::L4, &l4, 486, epoch, seeds.fork())
            } else {
                Client::receiver(b_config, Hop::L4, &l4, epoch, seeds.fork())
            };
            let b = net.add(&b_host, Box::new(b));
            net.link_sip(pfb, b, FlowId::new(100 + k as u64), &l4);
        }
        net.input(
            a,
            Input::Command(Command::SendMessage {
                recipients: if self.ad_hoc { members.iter().map(|m| m.target.clone()).collect() } else { Vec::new() },
                target: if self.ad_hoc { "sip:adhoc@cf.example.com".to_owned() } else { self.target.clone() },
                content_type: "text/plain".to_owned(),
                body,
            }),
        );
        Ok(())
    }
}
