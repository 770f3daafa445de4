//! Seed 000 FIG1: a large message to a non-CPM receiver through the ISF and
//! the IWF, checked against SPEC.md "What every figure must show".
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, reason = "test code")]

use std::time::Instant;

use cpm_roles::sim::{Scenario, Sim, TraceEvent};
use cpm_roles::{Event, IwfReport};

#[expect(clippy::disallowed_methods, reason = "test epoch: the simulator's virtual clock starts here")]
fn epoch() -> Instant {
    Instant::now()
}

fn sip(sim: &Sim, hop: &str) -> Vec<String> {
    sim.trace()
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Sip { from, to, msg, hop: h, .. } if h == hop => Some(format!("{from}>{to} {msg}")),
            _ => None,
        })
        .collect()
}

fn index(sim: &Sim, wanted: impl Fn(&TraceEvent) -> bool) -> usize {
    sim.trace().iter().position(wanted).unwrap()
}

#[test]
fn seed_000_fig1() {
    let sim = Scenario::figure("000-fig1").unwrap().run(epoch()).unwrap();
    assert!(sim.errors().is_empty(), "{:?}", sim.errors());
    assert_eq!(sim.dropped_writes(), 0);
    // Steps 101-120: INVITE#1..#4 via PF(A), CF, ISF, IWF; 200s back; ACKs
    // forward; BYE from A after the acknowledgement reached it.
    assert_eq!(sip(&sim, "L1"), ["A>PF-A INVITE", "PF-A>A 200", "A>PF-A ACK", "A>PF-A BYE", "PF-A>A 200"]);
    assert_eq!(sip(&sim, "L2"), ["PF-A>CF INVITE", "CF>PF-A 200", "PF-A>CF ACK", "PF-A>CF BYE", "CF>PF-A 200"]);
    // The ISF is a proxy: the same INVITE, 200, ACK and BYE pass through it.
    assert_eq!(
        sip(&sim, "L3"),
        [
            "CF>ISF INVITE",
            "ISF>IWF INVITE",
            "IWF>ISF 200",
            "ISF>CF 200",
            "CF>ISF ACK",
            "ISF>IWF ACK",
            "CF>ISF BYE",
            "ISF>IWF BYE",
            "IWF>ISF 200",
            "ISF>CF 200"
        ]
    );
    // The CF answers after the destination's 200 (after-first) and holds ACK#3
    // until ACK#2 (after-ack, steps 110-112).
    let ok3 = index(&sim, |e| matches!(e, TraceEvent::Sip { from, msg, .. } if from == "ISF" && msg == "200"));
    let ok2 = index(&sim, |e| matches!(e, TraceEvent::Sip { from, msg, .. } if from == "CF" && msg == "200"));
    assert!(ok3 < ok2);
    let ack2 = index(&sim, |e| matches!(e, TraceEvent::Sip { from, msg, .. } if from == "PF-A" && msg == "ACK"));
    let ack3 = index(&sim, |e| matches!(e, TraceEvent::Sip { from, msg, .. } if from == "CF" && msg == "ACK"));
    assert!(ack2 < ack3);
    // Links: L1 by A after 200#1, L2 by PF(A) after 200#2, L3 by the CF after 200#3.
    let connects: Vec<(String, String, &str)> = sim
        .trace()
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Connect { from, hop, trigger, .. } => Some((hop.clone(), from.clone(), *trigger)),
            _ => None,
        })
        .collect();
    let mut sorted = connects.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            ("L1".to_owned(), "A".to_owned(), "200"),
            ("L2".to_owned(), "PF-A".to_owned(), "200"),
            ("L3".to_owned(), "CF".to_owned(), "200")
        ]
    );
    // SEND#1..#3 carry the content; the IWF converts the complete message,
    // then its REPORT goes back over L3, L2, L1.
    for hop in ["L1", "L2", "L3"] {
        let bytes: usize = sim
            .trace()
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Msrp { hop: h, msg, bytes, .. } if h == hop && msg == "SEND" => Some(*bytes),
                _ => None,
            })
            .sum();
        assert_eq!(bytes, 5000, "{hop}");
    }
    let submit = sim.trace().iter().find_map(|e| match e {
        TraceEvent::Submit { bytes, crc32, .. } => Some((*bytes, *crc32)),
        _ => None,
    });
    let deliver = sim.trace().iter().find_map(|e| match e {
        TraceEvent::Deliver { at, bytes, crc32 } if at == "IWF" => Some((*bytes, *crc32)),
        _ => None,
    });
    assert_eq!(submit, deliver);
    let noncpm =
        index(&sim, |e| matches!(e, TraceEvent::NonCpm { at, format, parts: 33 } if at == "IWF" && format == "SMS"));
    let report3 = index(&sim, |e| matches!(e, TraceEvent::Msrp { hop, msg, .. } if hop == "L3" && msg == "REPORT"));
    let report1 = index(&sim, |e| matches!(e, TraceEvent::Msrp { hop, msg, .. } if hop == "L1" && msg == "REPORT"));
    assert!(noncpm < report3 && report3 < report1);
    let bye = index(&sim, |e| matches!(e, TraceEvent::Sip { msg, .. } if msg == "BYE"));
    assert!(report1 < bye);
    let outcome = sim.events().iter().find(|(at, e)| at == "A" && matches!(e, Event::Outcome { .. }));
    assert!(matches!(outcome, Some((_, Event::Outcome { status: 200, .. }))));
    assert!(sim.is_quiet());
}

#[test]
fn iwf_reports_at_media_end_and_sends_bye() {
    let mut scenario = Scenario::figure("000-fig1").unwrap();
    scenario.iwf.report = IwfReport::AtMediaEnd;
    scenario.iwf.bye_after_report = true;
    let sim = scenario.run(epoch()).unwrap();
    assert!(sim.errors().is_empty(), "{:?}", sim.errors());
    // The REPORT comes from the session at media end, before the non-CPM
    // system's acknowledgement would have; then the IWF ends the session.
    let first_bye = sim.trace().iter().find_map(|e| match e {
        TraceEvent::Sip { from, msg, .. } if msg == "BYE" => Some(from.clone()),
        _ => None,
    });
    assert_eq!(first_bye.as_deref(), Some("IWF"));
    let l3 = sip(&sim, "L3");
    assert!(l3.contains(&"IWF>ISF BYE".to_owned()) && l3.contains(&"ISF>CF BYE".to_owned()), "{l3:?}");
    let outcome = sim.events().iter().find(|(at, e)| at == "A" && matches!(e, Event::Outcome { .. }));
    assert!(matches!(outcome, Some((_, Event::Outcome { status: 200, .. }))), "{outcome:?}");
    assert!(sim.trace().iter().any(|e| matches!(e, TraceEvent::Deliver { at, .. } if at == "IWF")));
    assert!(sim.is_quiet(), "{:?}", sim.trace().last());
}

#[test]
fn mixed_group_of_cpm_and_non_cpm_members() {
    let mut scenario = Scenario::figure("001-fig1").unwrap();
    scenario.members = 2;
    scenario.non_cpm = 1;
    let sim = scenario.run(epoch()).unwrap();
    assert!(sim.errors().is_empty(), "{:?}", sim.errors());
    let mut delivered: Vec<String> = sim
        .trace()
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Deliver { at, bytes: 5000, .. } => Some(at.clone()),
            _ => None,
        })
        .collect();
    delivered.sort();
    assert_eq!(delivered, ["B1", "B2", "IWF1"]);
    let members =
        sim.events().iter().filter(|(at, e)| at == "CF" && matches!(e, Event::MemberOutcome { status: 200, .. }));
    assert_eq!(members.count(), 3);
    assert!(sim.is_quiet());
}

/// Every figure's transcript against its committed golden file (regenerate
/// with `cargo run -p cpm-roles --features sim --example scenario -- NAME --json`
/// after an intended change, and review the diff).
#[test]
fn golden_transcripts() {
    for name in ["001-fig1", "001-fig2", "001-fig3", "001-fig4", "001-fig5", "001-fig6", "001-fig7", "000-fig1"] {
        let path = format!("{}/tests/golden/{name}.jsonl", env!("CARGO_MANIFEST_DIR"));
        let golden = std::fs::read_to_string(&path).unwrap();
        let sim = Scenario::figure(name).unwrap().run(epoch()).unwrap();
        let lines: Vec<String> = sim.trace().iter().enumerate().map(|(seq, e)| e.to_json(seq)).collect();
        let golden: Vec<&str> = golden.lines().collect();
        assert_eq!(lines, golden, "{name} differs from {path}");
    }
}

#[test]
fn slow_links_retransmit_the_200s_and_still_deliver_once() {
    // 400 ms one way: each UAS retransmits its 200 (T1 = 500 ms) before the
    // ACK arrives, and each UAC re-ACKs (RFC 3261 s.13.3.1.4, s.13.2.2.4).
    for name in ["001-fig1", "001-fig3", "001-fig6", "000-fig1"] {
        let mut sim = Scenario::figure(name).unwrap().build(epoch()).unwrap();
        sim.set_latency(std::time::Duration::from_millis(400));
        sim.run(100_000);
        assert!(sim.errors().is_empty(), "{name}: {:?}", sim.errors());
        let retransmissions =
            sim.trace().iter().filter(|e| matches!(e, TraceEvent::Sip { retransmission: true, .. })).count();
        assert!(retransmissions > 0, "{name}");
        let json = sim
            .trace()
            .iter()
            .enumerate()
            .find_map(|(seq, e)| matches!(e, TraceEvent::Sip { retransmission: true, .. }).then(|| e.to_json(seq)));
        assert!(json.unwrap().ends_with(",\"retransmission\":true}"));
        let delivered = sim.trace().iter().filter(|e| matches!(e, TraceEvent::Deliver { bytes: 5000, .. })).count();
        assert_eq!(delivered, 1, "{name}");
        let outcomes: Vec<_> =
            sim.events().iter().filter(|(at, e)| at == "A" && matches!(e, Event::Outcome { .. })).collect();
        assert_eq!(outcomes.len(), 1, "{name}");
        assert!(matches!(outcomes[0].1, Event::Outcome { status: 200, .. }), "{name}");
        assert!(sim.is_quiet(), "{name}");
    }
}

#[test]
fn ad_hoc_group_from_the_recipient_list() {
    // RFC 5366: A lists the members in its INVITE; PF(A) passes the list on;
    // the CF routes each member by its address rules (CPM: PF(B); non-CPM: ISF).
    for name in ["001-fig1", "001-fig4", "001-fig7"] {
        let mut scenario = Scenario::figure(name).unwrap();
        scenario.members = 2;
        scenario.non_cpm = 1;
        scenario.ad_hoc = true;
        let sim = scenario.run(epoch()).unwrap();
        assert!(sim.errors().is_empty(), "{name}: {:?}", sim.errors());
        let invites3: Vec<String> = sim
            .trace()
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Sip { from, to, msg, .. } if from == "CF" && msg == "INVITE" => Some(to.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(invites3, ["PF-B1", "PF-B2", "ISF"], "{name}");
        let mut delivered: Vec<String> = sim
            .trace()
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Deliver { at, bytes: 5000, .. } => Some(at.clone()),
                _ => None,
            })
            .collect();
        delivered.sort();
        assert_eq!(delivered, ["B1", "B2", "IWF1"], "{name}");
        assert!(sim.is_quiet(), "{name}");
    }
}

#[test]
fn a_second_message_on_one_client_is_a_usage_error() {
    let mut scenario = Scenario::figure("001-fig2").unwrap();
    scenario.ad_hoc = true;
    let mut sim = scenario.build(epoch()).unwrap();
    sim.input(
        0,
        cpm_roles::Input::Command(cpm_roles::Command::SendMessage {
            target: "sip:adhoc@cf.example.com".into(),
            recipients: vec!["sip:stranger@elsewhere.example".into()],
            content_type: "text/plain".into(),
            body: bytes::Bytes::from_static(b"x"),
        }),
    );
    sim.run(100_000);
    // One message per Client in this version; the first one is delivered.
    assert_eq!(sim.errors(), ["A: command in the wrong state"]);
    assert!(sim.trace().iter().any(|e| matches!(e, TraceEvent::Deliver { .. })));
    assert!(sim.is_quiet());
}

#[test]
fn ad_hoc_member_without_a_route_is_refused() {
    use cpm_negotiation::{Figure, Hop, Preset};
    use cpm_roles::{AddressRule, Client, Command, Controlling, EntityConfig, FlowId, Input, Output, SeededIds};
    let now = epoch();
    let preset = Preset::figure(Figure::Seed001Fig1);
    let mut a = Client::sender(
        EntityConfig::new("A", "a.example.com", 2855, preset),
        FlowId::new(1),
        Hop::L1,
        "L1",
        now,
        SeededIds::new(1),
    );
    a.handle(
        now,
        Input::Command(Command::SendMessage {
            target: "sip:adhoc@cf.example.com".into(),
            recipients: vec!["sip:b1@example.com".into(), "sip:stranger@elsewhere.example".into()],
            content_type: "text/plain".into(),
            body: bytes::Bytes::from_static(b"hello"),
        }),
    )
    .unwrap();
    let Some(Output::SipTransmit { bytes, .. }) = a.poll_output() else { panic!("no INVITE") };
    let invite = sip_lite::sip::Message::parse(bytes).unwrap();
    assert!(invite.content_type_str().unwrap().starts_with("multipart/mixed"));
    let rules =
        vec![AddressRule { suffix: "@example.com".into(), flow: FlowId::new(10), hop: Hop::L3, label: "L3".into() }];
    let config = EntityConfig::new("CF", "cf.example.com", 2855, preset);
    let mut cf = Controlling::with_directory(config, Hop::L2, "L2", Vec::new(), rules, now, SeededIds::new(2));
    cf.handle(now, Input::SipReceived { flow: FlowId::new(2), message: invite }).unwrap();
    let mut sent = Vec::new();
    while let Some(output) = cf.poll_output() {
        if let Output::SipTransmit { flow, bytes } = output {
            sent.push((flow.get(), String::from_utf8_lossy(&bytes).lines().next().unwrap_or_default().to_owned()));
        }
    }
    // No member is invited when one cannot be routed: the INVITE fails whole.
    assert_eq!(sent, [(2, "SIP/2.0 404 Not Found".to_owned())]);
}
