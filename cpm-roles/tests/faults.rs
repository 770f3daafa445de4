//! The entities under faults, in the simulator. Every run is
//! seeded; a failing assertion prints the seed and the options, so that
//! `SIM_SEED=<seed> cargo test -p cpm-roles --features sim --test faults`
//! replays it (`SIM_SEEDS=a..b` runs another range of seeds).
//!
//! The property every run checks: every member receives the
//! message exactly once and intact, or the sender gets a negative outcome
//! naming that member (an IMDN `failed`, or a failed session); no receiver
//! ever delivers wrong bytes; nothing (legs, links, timers, deliveries in
//! flight) is left at the end.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, reason = "test code")]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cpm_negotiation::imdn::DeliveryStatus;
use cpm_roles::sim::{Scenario, Sim, TraceEvent};
use cpm_roles::{Event, Outcome, SimulationIds, SipTransport};

#[expect(clippy::disallowed_methods, reason = "test epoch: the simulator's virtual clock starts here")]
fn epoch() -> Instant {
    Instant::now()
}

const FIGURES: [&str; 8] =
    ["001-fig1", "001-fig2", "001-fig3", "001-fig4", "001-fig5", "001-fig6", "001-fig7", "000-fig1"];

/// The members of a scenario: (receiver entity name, member URI).
fn members(scenario: &Scenario) -> Vec<(String, String)> {
    let single = scenario.members + scenario.non_cpm == 1;
    let mut out = Vec::new();
    for k in 0..scenario.members {
        let name = if single { "B".to_owned() } else { format!("B{}", k + 1) };
        out.push((name, format!("sip:b{}@example.com", k + 1)));
    }
    for k in 0..scenario.non_cpm {
        let name = if single { "IWF".to_owned() } else { format!("IWF{}", k + 1) };
        out.push((name, format!("sip:+1555000{k}@sms.example.com")));
    }
    out
}

/// The property of the module docs; `what` names the run (seed and options).
/// The IMDN status A got for `member` (the first, there is at most one).
fn delivery_at_a(sim: &Sim, member: &str) -> Option<DeliveryStatus> {
    sim.deliveries_at("A").into_iter().find(|(m, _)| m == member).map(|(_, status)| status)
}

fn check_property(scenario: &Scenario, sim: &Sim, what: &str) {
    if std::env::var_os("SIM_TRACE").is_some() {
        for (seq, event) in sim.trace().iter().enumerate() {
            eprintln!("{}", event.to_json(seq));
        }
        for (at, event) in sim.events() {
            eprintln!("{at}: {event:?}");
        }
    }
    assert!(sim.errors().is_empty(), "{what}: errors {:?}", sim.errors());
    let body = scenario.body();
    let crc = cpm_roles::sim::crc32(&body);
    let mut delivered: HashMap<String, usize> = HashMap::new();
    for event in sim.trace() {
        if let TraceEvent::Deliver { at, bytes, crc32 } = event {
            assert_eq!((*bytes, *crc32), (body.len(), crc), "{what}: {at} delivered wrong bytes");
            *delivered.entry(at.clone()).or_default() += 1;
        }
    }
    let outcomes: Vec<u16> = sim
        .events()
        .iter()
        .filter_map(|(at, e)| match e {
            Event::Outcome { outcome, .. } if at == "A" => Some(outcome.status()),
            _ => None,
        })
        .collect();
    assert_eq!(outcomes.len(), 1, "{what}: one outcome at A, got {outcomes:?}");
    let session_failed = outcomes[0] != 200;
    let imdns = sim.deliveries_at("A");
    for (name, uri) in members(scenario) {
        let count = delivered.get(&name).copied().unwrap_or(0);
        assert!(count <= 1, "{what}: {name} delivered {count} times");
        let failed = imdns.iter().any(|(m, s)| *m == uri && *s != DeliveryStatus::Delivered);
        assert!(count == 1 || failed || session_failed, "{what}: {name} neither delivered nor reported failed to A");
        // At most one IMDN per member.
        assert!(imdns.iter().filter(|(m, _)| *m == uri).count() <= 1, "{what}: several IMDNs for {uri}");
    }
    assert!(sim.is_quiet(), "{what}: something is left (names {:?})", quiet_report(sim));
}

fn quiet_report(sim: &Sim) -> Vec<(String, bool)> {
    sim.names().into_iter().enumerate().map(|(i, n)| (n, sim.is_entity_quiet(i))).collect()
}

/// Seeds from `SIM_SEED` (one seed), `SIM_SEEDS` (a range `a..b`), or `default`.
fn seeds(default: std::ops::Range<u64>) -> Vec<u64> {
    if let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![seed];
    }
    let range = std::env::var("SIM_SEEDS").ok().and_then(|s| {
        let (a, b) = s.split_once("..")?;
        Some(a.parse().ok()?..b.parse().ok()?)
    });
    range.unwrap_or(default).collect()
}

#[test]
fn every_figure_over_lossy_sip_datagrams() {
    let mut retransmissions = 0;
    let mut lost = 0;
    for seed in seeds(1..4) {
        for name in FIGURES {
            let mut scenario = Scenario::figure(name).unwrap();
            scenario.sip_transport = SipTransport::Unreliable;
            scenario.seed = seed;
            let mut sim = scenario.build(epoch()).unwrap();
            sim.set_seed(seed).set_jitter(Duration::from_millis(3)).set_datagram_faults(150, 100);
            sim.run(1_000_000);
            let what = format!("seed {seed} {name} over lossy datagrams");
            check_property(&scenario, &sim, &what);
            // No member is lost to SIP faults: the transactions retransmit.
            let delivered = sim.trace().iter().filter(|e| matches!(e, TraceEvent::Deliver { .. })).count();
            assert_eq!(delivered, 1, "{what}");
            retransmissions +=
                sim.trace().iter().filter(|e| matches!(e, TraceEvent::Sip { retransmission: true, .. })).count();
            lost += sim.lost_datagrams();
        }
    }
    assert!(lost > 0 && retransmissions > 0, "the faults did not happen ({lost} lost, {retransmissions} again)");
}

#[test]
fn a_member_link_reset_mid_message_fails_that_member_only() {
    for (name, hop) in [("001-fig1", "L3/B2"), ("001-fig3", "L4/B2"), ("001-fig6", "L3/B2")] {
        let mut scenario = Scenario::figure(name).unwrap();
        scenario.members = 3;
        let mut sim = scenario.build(epoch()).unwrap();
        sim.reset_link_at(hop, 3000);
        sim.run(1_000_000);
        let what = format!("{name}: {hop} reset at byte 3000");
        assert_eq!(sim.resets(), 1, "{what}");
        check_property(&scenario, &sim, &what);
        let delivered = sim.delivered_at();
        assert_eq!(delivered, ["B1", "B3"], "{what}");
        let b2 = delivery_at_a(&sim, "sip:b2@example.com");
        assert_eq!(b2, Some(DeliveryStatus::Failed), "{what}");
        let outcome = sim.events().iter().find(|(at, e)| at == "A" && matches!(e, Event::Outcome { .. }));
        assert!(
            matches!(outcome, Some((_, Event::Outcome { outcome: Outcome::Delivered, .. }))),
            "{what}: {outcome:?}"
        );
    }
}

#[test]
fn the_sender_cancels_before_the_answers() {
    // FIG2: the CF answers only after a member's 200; A gives up first. With
    // 100 ms per hop, PF(A)'s 100 Trying (after 200 ms, RFC 3261 s.17.2.1)
    // reaches A at 400 ms and 200#1 at 800 ms: A may CANCEL in between
    // (s.9.1: not before a provisional response).
    for (at_ms, transport) in
        [(450, SipTransport::Reliable), (550, SipTransport::Unreliable), (700, SipTransport::Reliable)]
    {
        let mut scenario = Scenario::figure("001-fig2").unwrap();
        scenario.members = 2;
        scenario.sip_transport = transport;
        let mut sim = scenario.build(epoch()).unwrap();
        sim.set_latency(Duration::from_millis(100));
        sim.end_sessions_at(0, Duration::from_millis(at_ms));
        sim.run(1_000_000);
        let what = format!("CANCEL at {at_ms} ms");
        let cancels = sim.trace().iter().filter(|e| matches!(e, TraceEvent::Sip { msg, .. } if msg == "CANCEL"));
        assert!(cancels.count() > 0, "{what}: no CANCEL");
        assert!(sim.trace().iter().all(|e| !matches!(e, TraceEvent::Deliver { .. })), "{what}");
        check_property(&scenario, &sim, &what);
        let outcome = sim.events().iter().find_map(|(at, e)| match e {
            Event::Outcome { outcome, .. } if at == "A" => Some(outcome.status()),
            _ => None,
        });
        assert!(outcome.is_some_and(|s| s != 200), "{what}: {outcome:?}");
    }
}

#[test]
fn bye_from_any_side_at_any_time() {
    let scenario = {
        let mut s = Scenario::figure("001-fig1").unwrap();
        s.members = 2;
        s.non_cpm = 1;
        s
    };
    let names = scenario.build(epoch()).unwrap().names();
    for (index, name) in names.iter().enumerate() {
        if name == "ISF" {
            continue; // a proxy has no session of its own
        }
        for at_ms in (0..24).step_by(3) {
            let mut sim = scenario.build(epoch()).unwrap();
            sim.end_sessions_at(index, Duration::from_millis(at_ms));
            sim.run(1_000_000);
            check_property(&scenario, &sim, &format!("{name} ends at {at_ms} ms"));
        }
    }
}

#[test]
fn a_slow_member_still_completes_and_the_others_are_not_held() {
    let mut scenario = Scenario::figure("001-fig1").unwrap();
    scenario.members = 3;
    scenario.size = 64 * 1024;
    let mut sim = scenario.build(epoch()).unwrap();
    sim.set_slow_host("b2.example.com", 64);
    sim.run(1_000_000);
    check_property(&scenario, &sim, "slow B2");
    let at = |who: &str| {
        sim.trace()
            .iter()
            .position(|e| matches!(e, TraceEvent::Deliver { at, .. } if at == who))
            .map(|i| sim.trace_times()[i])
    };
    let (b1, b2, b3) = (at("B1").unwrap(), at("B2").unwrap(), at("B3").unwrap());
    assert!(b2 > b1 + Duration::from_millis(500) && b2 > b3 + Duration::from_millis(500), "{b1:?} {b2:?} {b3:?}");
}

/// One randomized run: figure, members, transport, jitter, datagram faults,
/// busy members, a link reset and an early end, all from `seed`.
fn random_run(seed: u64) {
    let mut rng = SimulationIds::new(seed);
    let mut pick = |n: u64| rng.next_u64() % n;
    let name = FIGURES[pick(FIGURES.len() as u64) as usize];
    let mut scenario = Scenario::figure(name).unwrap();
    scenario.seed = seed;
    if name != "000-fig1" {
        scenario.members = 1 + pick(4) as usize;
        scenario.non_cpm = pick(2) as usize;
    } else {
        scenario.non_cpm = 1 + pick(2) as usize;
    }
    scenario.size = [1, 1000, 2048, 5000, 20_000][pick(5) as usize];
    let unreliable = pick(2) == 0;
    if unreliable {
        scenario.sip_transport = SipTransport::Unreliable;
    }
    if scenario.members > 1 && pick(3) == 0 {
        scenario.busy = vec![pick(scenario.members as u64) as usize];
    }
    if pick(3) == 0 {
        let mask = pick(16);
        scenario.sip_proxies = ["L1", "L2", "L3", "L4"]
            .iter()
            .enumerate()
            .filter(|(k, _)| mask & (1 << k) != 0)
            .map(|(_, h)| (*h).to_owned())
            .collect();
        scenario.sip_proxies_stateless = pick(2) == 0;
    }
    // Several members behind one PF(B), their L3 hops on one reused link.
    scenario.shared_pf_b = scenario.members > 1 && pick(3) == 0;
    let mut sim = scenario.build(epoch()).unwrap();
    sim.set_seed(seed).set_jitter(Duration::from_micros(pick(4000))).set_read_split(1 + pick(3000) as usize);
    if unreliable {
        sim.set_datagram_faults(pick(250) as u32, pick(150) as u32);
    }
    let mut what = format!(
        "seed {seed}: {name} members {} non-cpm {} proxies {:?} (stateless {}) shared PF-B {}",
        scenario.members, scenario.non_cpm, scenario.sip_proxies, scenario.sip_proxies_stateless, scenario.shared_pf_b
    );
    if pick(3) == 0 && scenario.members > 0 {
        let k = 1 + pick(scenario.members as u64);
        let hop = match (scenario.members + scenario.non_cpm, pick(4)) {
            (_, 0) => "L1".to_owned(),
            (_, 1) => "L2".to_owned(),
            (1, 2) => "L3".to_owned(),
            (1, _) => "L4".to_owned(),
            (_, 2) => format!("L3/B{k}"),
            (_, _) => format!("L4/B{k}"),
        };
        let byte = pick(scenario.size as u64 + 2000);
        sim.reset_link_at(&hop, byte);
        what.push_str(&format!(" reset {hop}@{byte}"));
    }
    if pick(4) == 0 {
        let names = sim.names();
        let index = pick(names.len() as u64) as usize;
        // A proxy (the ISF, a SIP/IP core proxy) has no session to end.
        if names[index] != "ISF" && !names[index].starts_with("P-") {
            let at = Duration::from_micros(pick(30_000));
            sim.end_sessions_at(index, at);
            what.push_str(&format!(" {} ends at {at:?}", names[index]));
        }
    }
    sim.run(2_000_000);
    check_property(&scenario, &sim, &what);
}

#[test]
fn property_over_random_faults() {
    for seed in seeds(0..40) {
        random_run(seed);
    }
}

/// The long sweep (at least 1000 seeds); run in release:
/// `cargo test --release -p cpm-roles --features sim --test faults -- --ignored`.
#[test]
#[ignore = "long: run in release from .ci/run"]
fn property_over_random_faults_1000_seeds() {
    for seed in seeds(0..1000) {
        random_run(seed);
    }
}

/// Every figure through a SIP/IP core proxy (a Record-Routing
/// `sip-lite` proxy, transaction-stateful or stateless) on every hop
/// ("manner 1") or on some ("manner 2"), over streams and over lossy datagrams.
#[test]
fn every_figure_through_sip_proxies() {
    let manners: [&[&str]; 2] = [&["L1", "L2", "L3", "L4"], &["L2", "L4"]];
    let modes = [
        (SipTransport::Reliable, false),
        (SipTransport::Unreliable, false),
        (SipTransport::Reliable, true),
        (SipTransport::Unreliable, true),
    ];
    for (m, manner) in manners.iter().enumerate() {
        for (transport, stateless) in modes {
            for (n, name) in FIGURES.iter().enumerate() {
                let seed = (m * 100 + n) as u64;
                let mut scenario = Scenario::figure(name).unwrap();
                scenario.sip_proxies = manner.iter().map(|h| (*h).to_owned()).collect();
                scenario.sip_proxies_stateless = stateless;
                scenario.sip_transport = transport;
                let mut sim = scenario.build(epoch()).unwrap();
                sim.set_seed(seed);
                if transport == SipTransport::Unreliable {
                    sim.set_jitter(Duration::from_millis(2)).set_datagram_faults(100, 50);
                }
                sim.run(1_000_000);
                let what = format!("seed {seed} {name} proxies {manner:?} {transport:?} stateless {stateless}");
                check_property(&scenario, &sim, &what);
                let delivered = sim.trace().iter().filter(|e| matches!(e, TraceEvent::Deliver { .. })).count();
                assert_eq!(delivered, 1, "{what}");
                let hops: &[&str] = if *name == "000-fig1" { &["L1", "L2", "L3"] } else { &["L1", "L2", "L3", "L4"] };
                for hop in hops {
                    // What the end entities sent on the hop, once each, in order.
                    let mut sent: Vec<&str> = Vec::new();
                    let mut via_proxy: Vec<&str> = Vec::new();
                    for event in sim.trace() {
                        let TraceEvent::Sip { from, msg, hop: h, retransmission, .. } = event else { continue };
                        if h != hop || *retransmission || msg == "100" {
                            continue;
                        }
                        if from.starts_with("P-") {
                            via_proxy.push(msg);
                        } else if from != "ISF" {
                            sent.push(msg);
                        }
                    }
                    sent.dedup();
                    assert_eq!(sent, ["INVITE", "200", "ACK", "BYE", "200"], "{what}: SIP on {hop}");
                    if manner.contains(hop) {
                        // Record-Route: ACK and BYE pass through the proxy too.
                        via_proxy.dedup();
                        if transport == SipTransport::Reliable {
                            let expected = ["INVITE", "200", "ACK", "BYE", "200"];
                            assert_eq!(via_proxy, expected, "{what}: through the proxy on {hop}");
                        } else {
                            // Datagrams may lose every copy of an ACK (the UAS then gives up
                            // its 200 retransmissions): the dialog still went through the proxy.
                            let through = via_proxy.contains(&"INVITE") && via_proxy.contains(&"BYE");
                            assert!(through, "{what}: {via_proxy:?}");
                        }
                    } else {
                        assert!(via_proxy.is_empty(), "{what}: no proxy on {hop}");
                    }
                }
            }
        }
    }
}

/// A 100-member group, CPM and non-CPM mixed, delivering a 1 MiB
/// message (run in release: `cargo test --release -p cpm-roles --features sim
/// --test faults -- --ignored`).
#[test]
#[ignore = "big: run in release from .ci/run"]
fn a_100_member_mixed_group_delivers_1_mib() {
    let mut scenario = Scenario::figure("001-fig1").unwrap();
    scenario.members = 80;
    scenario.non_cpm = 20;
    scenario.size = 1 << 20;
    // 1 MiB of text is over 255 concatenated SMS: the IWFs send it as Email.
    scenario.iwf.system = cpm_roles::NonCpmSystem::Email;
    let mut sim = scenario.build(epoch()).unwrap();
    sim.set_read_split(64 * 1024);
    sim.run(50_000_000);
    check_property(&scenario, &sim, "100 members, 1 MiB");
    let delivered = sim.trace().iter().filter(|e| matches!(e, TraceEvent::Deliver { bytes, .. } if *bytes == 1 << 20));
    assert_eq!(delivered.count(), 100);
    let imdns = sim
        .events()
        .iter()
        .filter(|(at, e)| at == "A" && matches!(e, Event::Delivery { status: DeliveryStatus::Delivered, .. }));
    assert_eq!(imdns.count(), 100, "one IMDN per member at A");
}

/// A slow member is dropped once its window stayed full past the
/// configured time; the others complete and A learns that member failed.
#[test]
fn a_slow_member_is_dropped_after_its_window_stays_full() {
    for name in ["001-fig1", "001-fig3", "001-fig7"] {
        let mut scenario = Scenario::figure(name).unwrap();
        scenario.members = 3;
        scenario.size = 256 * 1024;
        scenario.slow_member = Some(cpm_roles::SlowMember { window: 8, after: Duration::from_secs(2) });
        let mut sim = scenario.build(epoch()).unwrap();
        // The CF's link to PF(B2) drains at 16 bytes/ms: 256 KiB would take 16 s.
        sim.set_slow_host("pfb2.example.com", 16);
        sim.run(5_000_000);
        let what = format!("{name}: slow member B2");
        check_property(&scenario, &sim, &what);
        let delivered = sim.delivered_at();
        assert_eq!(delivered, ["B1", "B3"], "{what}");
        let b2 = delivery_at_a(&sim, "sip:b2@example.com");
        assert_eq!(b2, Some(DeliveryStatus::Failed), "{what}");
        // Dropped about `after` after the window filled, long before the link drained.
        let dropped = sim.events().iter().position(|(at, e)| {
            at == "CF" && matches!(e, Event::HopFailed { member: Some(m) } if m == "sip:b2@example.com")
        });
        assert!(dropped.is_some(), "{what}: not dropped");
    }
}

/// A member that never answers: its INVITE times out (Timer B, 408),
/// its leg ends alone and A learns that member failed; the others complete.
#[test]
fn a_member_that_never_answers_times_out_alone() {
    for (name, transport) in [("001-fig1", SipTransport::Reliable), ("001-fig2", SipTransport::Unreliable)] {
        let mut scenario = Scenario::figure(name).unwrap();
        scenario.members = 3;
        scenario.sip_transport = transport;
        let mut sim = scenario.build(epoch()).unwrap();
        sim.set_unresponsive("b2.example.com");
        sim.run(1_000_000);
        let what = format!("{name} {transport:?}: B2 never answers");
        check_property(&scenario, &sim, &what);
        let member = sim.events().iter().find_map(|(at, e)| match e {
            Event::MemberOutcome { member, outcome } if at == "CF" && member == "sip:b2@example.com" => Some(*outcome),
            _ => None,
        });
        assert_eq!(member, Some(Outcome::TimedOut), "{what}");
        let cf = sim.names().iter().position(|n| n == "CF").unwrap_or_default();
        assert_eq!(sim.stats(cf).timeouts, 1, "{what}");
        let b2 = delivery_at_a(&sim, "sip:b2@example.com");
        assert_eq!(b2, Some(DeliveryStatus::Failed), "{what}");
        let delivered = sim.trace().iter().filter(|e| matches!(e, TraceEvent::Deliver { .. })).count();
        assert_eq!(delivered, 2, "{what}");
    }
}

/// A runtime that writes slowly (here the link toward one member drains at
/// 1 MB/s) keeps every relay's memory under its bound: the CF hands that
/// member at most its link window, keeps at most
/// [`cpm_roles::EntityConfig::relay_window`] queued for it, and stops reading
/// upstream beyond that (`PauseReading`), which PF(A) and then A feel in
/// turn; the whole 3 MiB message still reaches both members intact.
#[test]
fn a_slow_writer_keeps_every_relay_under_its_queue_bound() {
    let mut scenario = Scenario::figure("001-fig1").unwrap();
    scenario.members = 2;
    scenario.non_cpm = 0;
    scenario.size = 3 << 20;
    let mut sim = scenario.build(epoch()).unwrap();
    sim.set_slow_host("pfb2.example.com", 1000);
    let names = sim.names();
    let relays: Vec<usize> = ["PF-A", "CF"].iter().map(|r| names.iter().position(|n| n == r).unwrap()).collect();
    let mut most_queued = vec![0; relays.len()];
    while sim.run(1) == 1 {
        for (most, &relay) in most_queued.iter_mut().zip(&relays) {
            *most = (*most).max(sim.stats(relay).bytes_queued);
        }
    }
    check_property(&scenario, &sim, "slow PF(B2) link");
    assert_eq!(sim.delivered_at(), ["B1", "B2"]);
    // Per downstream session, the relay window (1 MiB) plus what one read
    // and one chunk add; the CF's two members each count the pieces they
    // share (one buffer, two references).
    let per_member = (1 << 20) + 64 * 1024;
    for ((most, relay), members) in most_queued.iter().zip(["PF-A", "CF"]).zip([1, 2]) {
        assert!(*most <= members * per_member, "{relay} queued {most} bytes, over {members} x {per_member}");
    }
    assert!(most_queued[1] > 1 << 20, "the CF did queue for the slow member: {most_queued:?}");
}
