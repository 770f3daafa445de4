//! A run on the [`Host`](crate::Host) seen as the simulator sees it: every
//! SIP message by hop, every link opened or reused, every MSRP frame by hop,
//! every close and every delivery, in `cpm-roles`' trace schema (what
//! `trace.jsonl`, the ladder and `sequence.svg` are drawn from).
//!
//! The host reports each entity's outputs and connections as they happen,
//! from many tasks; the observer names the two ends of each MSRP connection
//! by matching the opener's local address with the accepter's peer address,
//! whichever end comes up first, and gives each frame on a link several
//! hops share the hop its To-Path names.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use cpm_negotiation::LinkKey;
use cpm_roles::diagram::TraceRecorder;
use cpm_roles::sim::{shared_link_hop, TraceEvent};
use cpm_roles::{ConnId, Event, HopId, Output};

use crate::host::{HostEvent, HostOutput, SipLink, Topology};

/// One MSRP connection as the trace names it.
struct TraceLink {
    /// The entity at the other end.
    peer: Option<usize>,
    /// The hop it was opened for.
    label: String,
    /// Opened here: the hops on it (label, first URI of the peer's path).
    /// Accepted here: the opener's end.
    hops: Vec<(String, String)>,
    opener: Option<(usize, ConnId)>,
    /// Accepted here: the opener's address (its end may come up later than
    /// this one).
    remote: Option<SocketAddr>,
}

/// Turns what a [`Host`](crate::Host) running a [`Topology`] reports into
/// the simulator's trace.
pub struct TraceObserver {
    names: Vec<String>,
    hosts: HashMap<String, usize>,
    sip: Vec<SipLink>,
    recorder: TraceRecorder,
    /// Connects asked for, by entity and hop: label, key, first path URI.
    asked: HashMap<(usize, HopId), (String, LinkKey, String)>,
    links: HashMap<(usize, ConnId), TraceLink>,
    /// Where each opened connection's local end is.
    by_addr: HashMap<SocketAddr, (usize, ConnId)>,
    /// Hops that joined a link still being opened: entity, key, hop and
    /// first path URI.
    joining: Vec<(usize, LinkKey, String, String)>,
    /// MSRP bytes each entity read.
    read: Vec<u64>,
    /// Each member's outcome at the controlling function: URI and status.
    member_reports: Vec<(String, u16)>,
    /// SIP an entity sent that does not parse.
    errors: Vec<String>,
}

impl TraceObserver {
    /// An observer of `topology` once it runs (its entities' names, hosts
    /// and SIP flows).
    #[must_use]
    pub fn new(topology: &Topology) -> Self {
        let names = topology.names();
        let hosts = topology.hosts().into_iter().enumerate().map(|(index, host)| (host, index)).collect();
        Self {
            read: vec![0; names.len()],
            names,
            hosts,
            sip: topology.sip_links().to_vec(),
            recorder: TraceRecorder::new(),
            asked: HashMap::new(),
            links: HashMap::new(),
            by_addr: HashMap::new(),
            joining: Vec::new(),
            member_reports: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// The recorder (to add the submitted message, say).
    pub fn recorder(&mut self) -> &mut TraceRecorder {
        &mut self.recorder
    }

    /// The trace so far.
    #[must_use]
    pub fn events(&self) -> &[TraceEvent] {
        self.recorder.events()
    }

    /// When each trace event happened.
    #[must_use]
    pub fn times(&self) -> &[Instant] {
        self.recorder.times()
    }

    /// The MSRP bytes entity `index` read so far.
    #[must_use]
    pub fn read(&self, index: usize) -> u64 {
        self.read.get(index).copied().unwrap_or(0)
    }

    /// Each member's outcome at the controlling function (URI, status).
    #[must_use]
    pub fn member_reports(&self) -> &[(String, u16)] {
        &self.member_reports
    }

    /// SIP an entity sent that does not parse.
    #[must_use]
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    fn name(&self, index: Option<usize>) -> String {
        index.and_then(|i| self.names.get(i)).cloned().unwrap_or_else(|| "peer".to_owned())
    }

    /// Records what an entity said.
    pub fn record(&mut self, said: &HostOutput) {
        let index = said.entity;
        match &said.event {
            HostEvent::Read { bytes, .. } => {
                if let Some(read) = self.read.get_mut(index) {
                    *read += *bytes as u64;
                }
            }
            HostEvent::LinkUp { conn, hop: Some(hop), local, .. } => {
                let Some((label, key, uri)) = self.asked.remove(&(index, *hop)) else { return };
                let peer = self.hosts.get(key.host()).copied();
                self.by_addr.insert(*local, (index, *conn));
                let mut hops = vec![(label.clone(), uri)];
                // The hops that joined it while it was being opened.
                let (joined, waiting) = std::mem::take(&mut self.joining)
                    .into_iter()
                    .partition(|(owner, k, _, _)| *owner == index && *k == key);
                self.joining = waiting;
                hops.extend(joined.into_iter().map(|(_, _, hop, uri)| (hop, uri)));
                let link = TraceLink { peer, label, hops, opener: None, remote: None };
                self.links.insert((index, *conn), link);
            }
            HostEvent::LinkUp { conn, hop: None, peer, .. } => {
                let link =
                    TraceLink { peer: None, label: String::new(), hops: Vec::new(), opener: None, remote: Some(*peer) };
                self.links.insert((index, *conn), link);
            }
            HostEvent::Output(output) => self.output(said.at, index, output),
            _ => {}
        }
    }

    /// Names connection `conn` that entity `index` accepted after its
    /// opener's end, once that is up.
    fn find_opener(&mut self, index: usize, conn: ConnId) {
        let Some(link) = self.links.get(&(index, conn)) else { return };
        let Some(opener) = link.remote.filter(|_| link.opener.is_none()).and_then(|a| self.by_addr.get(&a).copied())
        else {
            return;
        };
        let label = self.links.get(&opener).map(|l| l.label.clone()).unwrap_or_default();
        if let Some(link) = self.links.get_mut(&(index, conn)) {
            link.opener = Some(opener);
            link.peer = Some(opener.0);
            link.label = label;
        }
    }

    fn output(&mut self, at: Instant, index: usize, output: &Output) {
        let from = self.name(Some(index));
        match output {
            Output::SipTransmit { flow, bytes } => {
                let Some(link) = self.sip.iter().find(|l| l.flow == *flow && l.ends.contains(&index)) else { return };
                let peer = link.ends.iter().copied().find(|&e| e != index).unwrap_or(index);
                let (to, hop) = (self.name(Some(peer)), link.hop.clone());
                if let Err(error) = self.recorder.sip(at, index, [&from, &to, &hop], bytes) {
                    self.errors.push(format!("{from}: unparsable SIP on {hop}: {error}"));
                }
            }
            Output::Connect { hop, label, params, trigger } => {
                let uri = params.path.first().map(ToString::to_string).unwrap_or_default();
                let to = self
                    .hosts
                    .get(params.key.host())
                    .map_or_else(|| params.key.host().to_owned(), |&p| self.name(Some(p)));
                self.recorder.connect(at, &from, &to, label, *trigger, false);
                self.asked.insert((index, *hop), (label.clone(), params.key.clone(), uri));
            }
            Output::MsrpTransmit { conn, transmit } => {
                self.find_opener(index, *conn);
                let Some(link) = self.links.get(&(index, *conn)) else { return };
                let to = self.name(link.peer);
                let opener = link.opener.unwrap_or((index, *conn));
                // On a link several hops share (reuse), the frame's own hop.
                let hop = match self.links.get(&opener) {
                    Some(l) if l.hops.len() > 1 => {
                        shared_link_hop(&l.hops, &transmit.head).unwrap_or(&link.label).to_owned()
                    }
                    _ => link.label.clone(),
                };
                self.recorder.msrp(at, index, *conn, [&from, &to, &hop], transmit);
            }
            Output::CloseLink { conn } => {
                self.find_opener(index, *conn);
                if let Some(link) = self.links.get(&(index, *conn)) {
                    // The last hop on the link closes it.
                    let hop = link.hops.first().map_or_else(|| link.label.clone(), |(label, _)| label.clone());
                    self.recorder.close(at, &hop);
                }
            }
            Output::Event { event, .. } => self.event(at, index, &from, event),
            _ => {}
        }
    }

    fn event(&mut self, at: Instant, index: usize, from: &str, event: &Event) {
        match event {
            Event::MessageDelivered { body } => self.recorder.deliver(at, from, body),
            Event::LinkReused { hop, trigger, params, conn } => {
                let uri = params.path.first().map(ToString::to_string).unwrap_or_default();
                match conn.and_then(|conn| self.links.get_mut(&(index, conn))) {
                    Some(link) => link.hops.push((hop.clone(), uri)),
                    // It joins the link once that is up.
                    None => self.joining.push((index, params.key.clone(), hop.clone(), uri)),
                }
                let host = params.key.host();
                let to = self.hosts.get(host).map_or_else(|| host.to_owned(), |&p| self.name(Some(p)));
                self.recorder.connect(at, from, &to, hop, *trigger, true);
            }
            Event::LinkReleased { hop, conn } => {
                if let Some(link) = self.links.get_mut(&(index, *conn)) {
                    link.hops.retain(|(label, _)| label != hop);
                }
                self.recorder.close(at, hop);
            }
            Event::DeliverToNonCpm { format, parts, .. } => self.recorder.non_cpm(at, from, format, parts.len()),
            Event::MemberOutcome { member, outcome } => self.member_reports.push((member.clone(), outcome.status())),
            _ => {}
        }
    }
}
