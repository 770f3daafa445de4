//! A deterministic network in virtual time for the SIP machines: datagram
//! links that drop, duplicate, reorder and delay (seeded), and reliable
//! stream links (in order, no loss). The clock jumps to the next delivery or
//! the earliest `poll_timeout`.
#![allow(dead_code, unreachable_pub, reason = "each test binary uses part of the harness")]

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip_lite::b2bua::{self, B2bua};
use sip_lite::ids::{FlowId, IdSource};
use sip_lite::proxy::{self, Proxy};
use sip_lite::sip::{Framer, FramerEvent, Limits};
use sip_lite::transaction::Transport;
use sip_lite::ua::{self, UserAgent};

/// xorshift64*, seeded.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

impl IdSource for Rng {
    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            *b = self.next() as u8;
        }
    }
}

/// The test epoch.
pub fn epoch() -> Instant {
    #[expect(clippy::disallowed_methods, reason = "the test's virtual clock needs one real Instant as its epoch")]
    Instant::now()
}

/// Prints the seed when the test fails.
pub struct SeedGuard(pub u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("failing seed: SIM_SEED={}", self.0);
        }
    }
}

/// The seeds to run: `SIM_SEED` alone when set, else `0..n`.
pub fn seeds(n: u64) -> Vec<u64> {
    match std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => (0..n).collect(),
    }
}

/// Faults of datagram links.
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    pub drop: f64,
    pub duplicate: f64,
    pub min_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Faults {
    pub const NONE: Self = Self { drop: 0.0, duplicate: 0.0, min_delay_ms: 10, max_delay_ms: 10 };
    pub const LOSSY: Self = Self { drop: 0.2, duplicate: 0.1, min_delay_ms: 5, max_delay_ms: 400 };
}

/// One machine on the network.
#[expect(clippy::large_enum_variant, reason = "a handful of test entities")]
pub enum Entity {
    Ua(UserAgent),
    B2bua(B2bua),
    Proxy(Proxy),
}

/// What an entity reported, with the time.
#[derive(Clone, Debug)]
pub enum Report {
    Ua(ua::Event),
    B2bua(b2bua::Event),
    Proxy(proxy::Event),
}

impl Entity {
    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Self::Ua(m) => m.poll_timeout(),
            Self::B2bua(m) => m.poll_timeout(),
            Self::Proxy(m) => m.poll_timeout(),
        }
    }
    fn receive(&mut self, now: Instant, flow: FlowId, transport: Transport, bytes: Bytes, framer: &mut Framer) {
        match transport {
            Transport::Unreliable => {
                let _ = match self {
                    Self::Ua(m) => m.handle(now, ua::Input::Datagram { flow, bytes }).is_ok(),
                    Self::B2bua(m) => m.handle(now, b2bua::Input::Datagram { flow, bytes }).is_ok(),
                    Self::Proxy(m) => m.handle(now, proxy::Input::Datagram { flow, bytes }).is_ok(),
                };
            }
            Transport::Reliable => {
                framer.handle_segment(bytes);
                while let Some(event) = framer.poll_event() {
                    let Ok(FramerEvent::Message(message)) = event else { panic!("framing error") };
                    let _ = match self {
                        Self::Ua(m) => m.handle(now, ua::Input::Received { flow, transport, message }).is_ok(),
                        Self::B2bua(m) => m.handle(now, b2bua::Input::Received { flow, transport, message }).is_ok(),
                        Self::Proxy(m) => m.handle(now, proxy::Input::Received { flow, transport, message }).is_ok(),
                    };
                }
            }
        }
    }
    fn timeout(&mut self, now: Instant) {
        let _ = match self {
            Self::Ua(m) => m.handle(now, ua::Input::Timeout).is_ok(),
            Self::B2bua(m) => m.handle(now, b2bua::Input::Timeout).is_ok(),
            Self::Proxy(m) => m.handle(now, proxy::Input::Timeout).is_ok(),
        };
    }
    /// Drains outputs: transmissions and reports.
    fn drain(&mut self) -> (Vec<(FlowId, Bytes)>, Vec<Report>) {
        let mut sent = Vec::new();
        let mut reports = Vec::new();
        match self {
            Self::Ua(m) => {
                while let Some(output) = m.poll_output() {
                    match output {
                        ua::Output::Transmit { flow, bytes, .. } => sent.push((flow, bytes)),
                        ua::Output::Event(e) => reports.push(Report::Ua(e)),
                    }
                }
            }
            Self::B2bua(m) => {
                while let Some(output) = m.poll_output() {
                    match output {
                        b2bua::Output::Transmit { flow, bytes, .. } => sent.push((flow, bytes)),
                        b2bua::Output::Event(e) => reports.push(Report::B2bua(e)),
                    }
                }
            }
            Self::Proxy(m) => {
                while let Some(output) = m.poll_output() {
                    match output {
                        proxy::Output::Transmit { flow, bytes, .. } => sent.push((flow, bytes)),
                        proxy::Output::Event(e) => reports.push(Report::Proxy(e)),
                    }
                }
            }
        }
        (sent, reports)
    }
}

#[derive(Clone, Copy, Debug)]
struct Link {
    to: usize,
    flow: FlowId,
    transport: Transport,
}

/// The network: entities, links, the clock and a transcript.
pub struct Net {
    pub now: Instant,
    pub start: Instant,
    pub rng: Rng,
    pub faults: Faults,
    pub entities: Vec<Entity>,
    links: HashMap<(usize, FlowId), Link>,
    framers: HashMap<(usize, FlowId), Framer>,
    /// Last delivery time per direction of a reliable link (keeps order).
    stream_tail: HashMap<(usize, FlowId), Instant>,
    queue: BTreeMap<(Instant, u64), (usize, FlowId, Transport, Bytes)>,
    seq: u64,
    /// Every report: (seconds since start, entity, report).
    pub reports: Vec<(Duration, usize, Report)>,
    /// Every transmission: (time since start, from entity, first line).
    pub wire: Vec<(Duration, usize, String)>,
}

impl Net {
    pub fn new(seed: u64, faults: Faults) -> Self {
        let start = epoch();
        Self {
            now: start,
            start,
            rng: Rng::new(seed),
            faults,
            entities: Vec::new(),
            links: HashMap::new(),
            framers: HashMap::new(),
            stream_tail: HashMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            reports: Vec::new(),
            wire: Vec::new(),
        }
    }

    pub fn add(&mut self, entity: Entity) -> usize {
        self.entities.push(entity);
        self.entities.len() - 1
    }

    /// Links `a`'s `flow_a` with `b`'s `flow_b`.
    pub fn link(&mut self, a: usize, flow_a: FlowId, b: usize, flow_b: FlowId, transport: Transport) {
        self.links.insert((a, flow_a), Link { to: b, flow: flow_b, transport });
        self.links.insert((b, flow_b), Link { to: a, flow: flow_a, transport });
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn ua(&mut self, i: usize) -> &mut UserAgent {
        match &mut self.entities[i] {
            Entity::Ua(m) => m,
            _ => panic!("entity {i} is not a UA"),
        }
    }
    pub fn b2bua(&mut self, i: usize) -> &mut B2bua {
        match &mut self.entities[i] {
            Entity::B2bua(m) => m,
            _ => panic!("entity {i} is not a B2BUA"),
        }
    }
    pub fn proxy(&mut self, i: usize) -> &mut Proxy {
        match &mut self.entities[i] {
            Entity::Proxy(m) => m,
            _ => panic!("entity {i} is not a proxy"),
        }
    }

    /// Drains entity `i` after the caller fed it.
    pub fn settle(&mut self, i: usize) {
        let (sent, reports) = self.entities[i].drain();
        let at = self.elapsed();
        for report in reports {
            self.reports.push((at, i, report));
        }
        for (flow, bytes) in sent {
            let line = String::from_utf8_lossy(&bytes).lines().next().unwrap_or_default().to_owned();
            self.wire.push((at, i, line));
            let Some(link) = self.links.get(&(i, flow)).copied() else { continue };
            match link.transport {
                Transport::Reliable => {
                    let tail = self.stream_tail.entry((link.to, link.flow)).or_insert(self.now);
                    let at = (*tail).max(self.now + Duration::from_millis(10));
                    *tail = at;
                    self.enqueue(at, link, bytes);
                }
                Transport::Unreliable => {
                    let copies = if self.rng.chance(self.faults.duplicate) { 2 } else { 1 };
                    for _ in 0..copies {
                        if self.rng.chance(self.faults.drop) {
                            continue;
                        }
                        let delay = self.rng.range(self.faults.min_delay_ms, self.faults.max_delay_ms);
                        self.enqueue(self.now + Duration::from_millis(delay), link, bytes.clone());
                    }
                }
            }
        }
    }

    fn enqueue(&mut self, at: Instant, link: Link, bytes: Bytes) {
        self.seq += 1;
        self.queue.insert((at, self.seq), (link.to, link.flow, link.transport, bytes));
    }

    /// Runs until `deadline` (since start) or until nothing is left to do.
    pub fn run_for(&mut self, duration: Duration) {
        let deadline = self.now + duration;
        loop {
            let delivery = self.queue.keys().next().map(|&(at, _)| at);
            let timer = self.entities.iter().filter_map(Entity::poll_timeout).min();
            let next = match (delivery, timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next > deadline {
                break;
            }
            self.now = self.now.max(next);
            if delivery.is_some_and(|d| d <= next) {
                let (_, (to, flow, transport, bytes)) = self.queue.pop_first().expect("a delivery");
                let framer = self.framers.entry((to, flow)).or_insert_with(|| Framer::new(Limits::default()));
                self.entities[to].receive(self.now, flow, transport, bytes, framer);
                self.settle(to);
            } else {
                for i in 0..self.entities.len() {
                    if self.entities[i].poll_timeout().is_some_and(|t| t <= self.now) {
                        self.entities[i].timeout(self.now);
                        self.settle(i);
                    }
                }
            }
        }
        self.now = self.now.max(deadline);
    }

    /// The UA events of entity `i`, with their times.
    pub fn ua_events(&self, i: usize) -> Vec<(Duration, ua::Event)> {
        self.reports
            .iter()
            .filter(|(_, e, _)| *e == i)
            .filter_map(|(t, _, r)| match r {
                Report::Ua(e) => Some((*t, e.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn b2bua_events(&self, i: usize) -> Vec<(Duration, b2bua::Event)> {
        self.reports
            .iter()
            .filter(|(_, e, _)| *e == i)
            .filter_map(|(t, _, r)| match r {
                Report::B2bua(e) => Some((*t, e.clone())),
                _ => None,
            })
            .collect()
    }

    /// Prints the transcript (on failure, with `--nocapture`).
    pub fn dump(&self) {
        for (t, i, line) in &self.wire {
            eprintln!("{:>9.3} #{i} {line}", t.as_secs_f64());
        }
        for (t, i, r) in &self.reports {
            eprintln!("{:>9.3} #{i} {r:?}", t.as_secs_f64());
        }
    }
}
