//! Seed 000 FIG1: a large message to a non-CPM receiver through the ISF and
//! the IWF, checked against the source documents, "What every figure must show".
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, reason = "test code")]

use std::time::Instant;

use cpm_roles::sim::{Scenario, Sim, TraceEvent};
use cpm_roles::{Event, IwfReport, Outcome};

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
                // Content goes downstream (IMDNs come back upstream).
                TraceEvent::Msrp { hop: h, msg, bytes, from, .. }
                    if h == hop
                        && msg == "SEND"
                        && from == ["A", "PF-A", "CF"][hop.as_bytes()[1] as usize - b'1' as usize] =>
                {
                    Some(*bytes)
                }
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
        index(&sim, |e| matches!(e, TraceEvent::NonCpm { at, format, parts: 33 } if at == "IWF" && format == "sms"));
    let report3 = index(&sim, |e| matches!(e, TraceEvent::Msrp { hop, msg, .. } if hop == "L3" && msg == "REPORT"));
    let report1 = index(&sim, |e| matches!(e, TraceEvent::Msrp { hop, msg, .. } if hop == "L1" && msg == "REPORT"));
    assert!(noncpm < report3 && report3 < report1);
    let bye = index(&sim, |e| matches!(e, TraceEvent::Sip { msg, .. } if msg == "BYE"));
    assert!(report1 < bye);
    let outcome = sim.events().iter().find(|(at, e)| at == "A" && matches!(e, Event::Outcome { .. }));
    assert!(matches!(outcome, Some((_, Event::Outcome { outcome: Outcome::Delivered, .. }))));
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
    assert!(matches!(outcome, Some((_, Event::Outcome { outcome: Outcome::Delivered, .. }))), "{outcome:?}");
    assert!(sim.trace().iter().any(|e| matches!(e, TraceEvent::Deliver { at, .. } if at == "IWF")));
    assert!(sim.is_quiet(), "{:?}", sim.trace().last());
}

/// A mixed group of three CPM members and one non-CPM
/// member in one session gives exactly one outcome per member at A (the source documents,
/// "Acknowledgements": IMDNs from the CF, then one success REPORT).
#[test]
fn mixed_group_one_outcome_per_member_at_a() {
    use cpm_negotiation::imdn::DeliveryStatus;
    for (name, busy) in [("001-fig1", vec![]), ("001-fig4", vec![2]), ("001-fig7", vec![0])] {
        let mut scenario = Scenario::figure(name).unwrap();
        scenario.members = 3;
        scenario.non_cpm = 1;
        scenario.busy.clone_from(&busy);
        let sim = scenario.run(epoch()).unwrap();
        assert!(sim.errors().is_empty(), "{name}: {:?}", sim.errors());
        let mut at_a = sim.deliveries_at("A");
        at_a.sort_by(|a, b| a.0.cmp(&b.0));
        let mut expected: Vec<(String, DeliveryStatus)> = (0..3)
            .map(|k| {
                let status = if busy.contains(&k) { DeliveryStatus::Failed } else { DeliveryStatus::Delivered };
                (format!("sip:b{}@example.com", k + 1), status)
            })
            .collect();
        expected.push(("sip:+15550000@sms.example.com".to_owned(), DeliveryStatus::Delivered));
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(at_a, expected, "{name}: one outcome per member at A");
        // Every IMDN reached A before the REPORT that ends its wait, and only one REPORT.
        let reports: Vec<_> =
            sim.events().iter().filter(|(at, e)| at == "A" && matches!(e, Event::Outcome { .. })).collect();
        assert_eq!(reports.len(), 1, "{name}");
        assert!(matches!(reports[0].1, Event::Outcome { outcome: Outcome::Delivered, .. }), "{name}: {reports:?}");
        let last_delivery = sim.events().iter().rposition(|(at, e)| at == "A" && matches!(e, Event::Delivery { .. }));
        let report = sim.events().iter().position(|(at, e)| at == "A" && matches!(e, Event::Outcome { .. }));
        assert!(last_delivery < report, "{name}: an IMDN came after the REPORT");
        assert!(sim.is_quiet(), "{name}");
    }
}

/// The IWF converts what it hands over: the trace names the
/// format and its number of PDUs for each system, and content the system
/// cannot take becomes that member's failed outcome at A, not a failed
/// session.
#[test]
fn the_iwf_converts_and_refuses_what_the_system_cannot_take() {
    use cpm_negotiation::imdn::DeliveryStatus;
    use cpm_roles::NonCpmSystem;
    for (system, format, parts) in
        [(NonCpmSystem::Sms, "sms", 33), (NonCpmSystem::Email, "email", 1), (NonCpmSystem::Mms, "mms", 1)]
    {
        let mut scenario = Scenario::figure("000-fig1").unwrap();
        scenario.iwf.system = system;
        let sim = scenario.run(epoch()).unwrap();
        assert!(sim.errors().is_empty(), "{format}: {:?}", sim.errors());
        let noncpm: Vec<_> = sim.trace().iter().filter(|e| matches!(e, TraceEvent::NonCpm { .. })).collect();
        assert!(
            matches!(noncpm.as_slice(), [TraceEvent::NonCpm { at, format: f, parts: p }] if at == "IWF" && f == format && *p == parts),
            "{format}: {noncpm:?}"
        );
        let handed: Vec<usize> = sim
            .events()
            .iter()
            .filter_map(|(_, e)| match e {
                Event::DeliverToNonCpm { format: f, parts, payload, .. } if *f == format => {
                    assert_eq!(payload.len(), 5000);
                    Some(parts.len())
                }
                _ => None,
            })
            .collect();
        assert_eq!(handed, [parts], "{format}");
    }
    // 5000 bytes need 33 SMS segments: an SMSC limit of 3 refuses the message (413).
    let mut scenario = Scenario::figure("000-fig1").unwrap();
    scenario.members = 1;
    scenario.iwf.conversion.sms.max_segments = 3;
    let sim = scenario.run(epoch()).unwrap();
    assert!(sim.errors().is_empty(), "{:?}", sim.errors());
    assert!(!sim.trace().iter().any(|e| matches!(e, TraceEvent::NonCpm { .. })));
    assert!(sim
        .events()
        .iter()
        .any(|(at, e)| at == "IWF1" && matches!(e, Event::PeerError { error: cpm_roles::PeerError::Interworking(_) })));
    let at_a = sim.deliveries_at("A");
    assert_eq!(
        at_a,
        [
            ("sip:+15550000@sms.example.com".to_owned(), DeliveryStatus::Failed),
            ("sip:b1@example.com".to_owned(), DeliveryStatus::Delivered)
        ],
        "one outcome per member at A"
    );
    assert!(sim.is_quiet());
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
    let members = sim
        .events()
        .iter()
        .filter(|(at, e)| at == "CF" && matches!(e, Event::MemberOutcome { outcome: Outcome::Delivered, .. }));
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
        assert!(matches!(outcomes[0].1, Event::Outcome { outcome: Outcome::Delivered, .. }), "{name}");
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

/// A's command to start session `session` with a `size`-byte text message
/// to `target`, every byte the session's digit.
fn send_message(session: u64, target: &str, size: usize) -> cpm_roles::Input {
    cpm_roles::Input::Command(cpm_roles::Command::SendMessage {
        session: cpm_roles::SessionId::new(session),
        target: target.to_owned(),
        recipients: Vec::new(),
        content_type: "text/plain".into(),
        body: bytes::Bytes::from(vec![b'0' + (session % 10) as u8; size]),
    })
}

/// A sender runs any number of sessions at once: three messages in flight
/// to the group, each its own SIP session, each outcome named by its
/// session; a session id in use is refused.
#[test]
fn a_sender_with_three_messages_in_flight() {
    use cpm_roles::UsageError;
    let scenario = Scenario::figure("001-fig1").unwrap();
    let mut sim = scenario.build(epoch()).unwrap();
    let send = |session: u64, size: usize| send_message(session, &scenario.target, size);
    sim.input(0, send(2, 3000));
    sim.input(0, send(3, 7000));
    sim.input(0, send(1, 10));
    let b = sim.names().iter().position(|n| n == "B").unwrap();
    let mut most_held_at_b = 0;
    while sim.run(1) == 1 {
        most_held_at_b = most_held_at_b.max(sim.stats(b).bytes_held);
    }
    // B held chunks of the messages it was reassembling, and holds nothing now.
    assert!(most_held_at_b >= 2048, "{most_held_at_b}");
    let (a_stats, b_stats) = (sim.stats(0), sim.stats(b));
    assert_eq!((b_stats.bytes_held, b_stats.bytes_queued, b_stats.sessions), (0, 0, 0));
    assert!(a_stats.msrp_bytes_out > (3000 + 5000 + 7000) as u64, "{a_stats:?}");
    assert!(b_stats.msrp_bytes_in > (3000 + 5000 + 7000) as u64, "{b_stats:?}");
    assert_eq!((a_stats.sip_out > 0, a_stats.sip_in > 0), (true, true));
    assert_eq!(sim.errors(), [format!("A: {}", UsageError::DuplicateSession)]);
    let mut outcomes: Vec<(u64, Outcome)> = sim
        .session_events()
        .filter_map(|(at, session, e)| match e {
            Event::Outcome { outcome, .. } if at == "A" => Some((session?.get(), *outcome)),
            _ => None,
        })
        .collect();
    outcomes.sort_by_key(|(session, _)| *session);
    assert_eq!(outcomes, [(1, Outcome::Delivered), (2, Outcome::Delivered), (3, Outcome::Delivered)]);
    let mut delivered: Vec<usize> = sim
        .trace()
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Deliver { bytes, .. } => Some(*bytes),
            _ => None,
        })
        .collect();
    delivered.sort_unstable();
    assert_eq!(delivered, [3000, scenario.size, 7000]);
    // B saw three sessions, each reported when it started.
    let started = sim.session_events().filter(|(at, _, e)| *at == "B" && matches!(e, Event::SessionStarted)).count();
    assert_eq!(started, 3);
    assert!(sim.is_quiet());
}

/// Two sessions through one PF and one CF, the CF's first one ended by its
/// id: that session ends at A without a delivery, the other completes.
#[test]
fn two_sessions_through_the_relays_end_one_at_a_time() {
    use cpm_roles::{Command, Input, SessionId};
    let scenario = Scenario::figure("001-fig1").unwrap();
    let mut sim = scenario.build(epoch()).unwrap();
    sim.input(0, send_message(2, &scenario.target, 4000));
    let cf = sim.names().iter().position(|n| n == "CF").unwrap();
    let cf_sessions = |sim: &Sim| -> Vec<SessionId> {
        sim.session_events()
            .filter(|(at, _, e)| *at == "CF" && matches!(e, Event::SessionStarted))
            .filter_map(|(_, session, _)| session)
            .collect()
    };
    // Until the CF has both sessions (each INVITE reached it).
    while cf_sessions(&sim).len() < 2 {
        assert!(sim.run(1) == 1, "the run ended before both sessions reached the CF");
    }
    let first = cf_sessions(&sim)[0];
    sim.input(cf, Input::Command(Command::End { session: first }));
    sim.run(1_000_000);
    assert!(sim.errors().is_empty(), "{:?}", sim.errors());
    let outcomes: Vec<(u64, Outcome)> = sim
        .session_events()
        .filter_map(|(at, session, e)| match e {
            Event::Outcome { outcome, .. } if at == "A" => Some((session?.get(), *outcome)),
            _ => None,
        })
        .collect();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|(_, o)| o.is_delivered()).count(), 1, "{outcomes:?}");
    assert_eq!(sim.delivered_at(), ["B"]);
    assert!(sim.is_quiet());
}

/// What a CF sends, as (flow, first line), when A invites the ad-hoc group
/// `recipients` (members of `@example.com` are routed on flow 10).
fn cf_answer_to_ad_hoc(recipients: Vec<String>) -> Vec<(u64, String)> {
    use cpm_negotiation::{Figure, Hop, Preset};
    use cpm_roles::{AddressRule, Client, Command, Controlling, EntityConfig, FlowId, Input, Output, SimulationIds};
    let now = epoch();
    let preset = Preset::figure(Figure::Seed001Fig1);
    let mut a = Client::sender(
        EntityConfig::new("A", "a.example.com", 2855, preset),
        FlowId::new(1),
        Hop::L1,
        "L1",
        now,
        SimulationIds::new(1),
    );
    a.handle(
        now,
        Input::Command(Command::SendMessage {
            session: cpm_roles::SessionId::new(1),
            target: "sip:adhoc@cf.example.com".into(),
            recipients,
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
    let mut cf = Controlling::with_directory(config, Hop::L2, "L2", Vec::new(), rules, now, SimulationIds::new(2));
    cf.handle(now, Input::SipReceived { flow: FlowId::new(2), message: invite }).unwrap();
    let mut sent = Vec::new();
    while let Some(output) = cf.poll_output() {
        if let Output::SipTransmit { flow, bytes } = output {
            sent.push((flow.get(), String::from_utf8_lossy(&bytes).lines().next().unwrap_or_default().to_owned()));
        }
    }
    sent
}

#[test]
fn ad_hoc_member_without_a_route_is_refused() {
    let sent = cf_answer_to_ad_hoc(vec!["sip:b1@example.com".into(), "sip:stranger@elsewhere.example".into()]);
    // No member is invited when one cannot be routed: the INVITE fails whole.
    assert_eq!(sent, [(2, "SIP/2.0 404 Not Found".to_owned())]);
}

/// A list naming one member 99 times (in spellings RFC 3261 s.19.1.4 holds
/// equal; 100 entries in all, the most a list may have) starts one leg to
/// that member, not 99.
#[test]
fn ad_hoc_list_naming_a_member_many_times_invites_it_once() {
    let spellings = ["sip:b1@example.com", "sip:b1@EXAMPLE.COM", "sip:%621@example.com"];
    let mut recipients: Vec<String> = (0..99).map(|n| spellings[n % 3].to_owned()).collect();
    recipients.push("sip:b2@example.com".into());
    let sent = cf_answer_to_ad_hoc(recipients);
    let invites: Vec<&str> = sent.iter().filter(|(flow, _)| *flow == 10).map(|(_, line)| line.as_str()).collect();
    assert_eq!(invites, ["INVITE sip:b1@example.com SIP/2.0", "INVITE sip:b2@example.com SIP/2.0"], "{sent:?}");
}

/// A list longer than the CF allows (`max_list_members`, 100 by default)
/// is refused 403 whole, before anyone is invited.
#[test]
fn ad_hoc_list_longer_than_allowed_is_refused_whole() {
    let recipients: Vec<String> = (0..101).map(|n| format!("sip:b{n}@example.com")).collect();
    let sent = cf_answer_to_ad_hoc(recipients);
    assert_eq!(sent, [(2, "SIP/2.0 403 Forbidden".to_owned())]);
}

/// The ISF chooses the IWF by rules on content type, size and
/// receiver address (before its exact Request-URI rules).
#[test]
fn isf_selects_the_iwf_by_content_type_size_and_receiver() {
    use cpm_roles::IwfRule;
    // Member 0 goes to IWF2 when the offer is text of at least 4096 bytes;
    // member 1 to IWF1 when it is that large, whatever its type. Otherwise the exact rules apply
    // (member k to IWF k+1).
    let rules = vec![
        IwfRule {
            receiver_suffix: Some("+15550000@sms.example.com".into()),
            content_type: Some("text/*".into()),
            min_size: Some(4096),
            max_size: None,
            iwf: "sip:iwf@iwf2.example.com".into(),
        },
        IwfRule {
            receiver_suffix: Some("+15550001@sms.example.com".into()),
            min_size: Some(4096),
            iwf: "sip:iwf@iwf1.example.com".into(),
            ..IwfRule::default()
        },
    ];
    for (size, swapped) in [(5000, true), (1000, false)] {
        let mut scenario = Scenario::figure("000-fig1").unwrap();
        scenario.non_cpm = 2;
        scenario.size = size;
        scenario.iwf_selection.clone_from(&rules);
        let sim = scenario.run(epoch()).unwrap();
        assert!(sim.errors().is_empty(), "{size}: {:?}", sim.errors());
        // The CF's INVITE for member 0 (hop L3/IWF1) leaves the ISF towards the chosen IWF.
        let first: Vec<String> = sim
            .trace()
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Sip { from, to, msg, .. } if from == "ISF" && msg == "INVITE" => Some(to.clone()),
                _ => None,
            })
            .collect();
        let expected = if swapped { ["IWF2", "IWF1"] } else { ["IWF1", "IWF2"] };
        assert_eq!(first, expected, "{size}");
        let mut delivered: Vec<String> = sim
            .trace()
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Deliver { at, bytes, .. } if *bytes == size => Some(at.clone()),
                _ => None,
            })
            .collect();
        delivered.sort();
        assert_eq!(delivered, ["IWF1", "IWF2"], "{size}");
        assert!(sim.is_quiet(), "{size}");
    }
    // The conditions one by one.
    let rule = IwfRule {
        receiver_suffix: Some("@sms.example.com".into()),
        content_type: Some("image/*".into()),
        min_size: Some(10),
        max_size: Some(20),
        iwf: "sip:iwf@mms.example.com".into(),
    };
    assert!(rule.matches("sip:+1@sms.example.com", Some("image/png"), Some(15)));
    assert!(!rule.matches("sip:+1@other.example.com", Some("image/png"), Some(15)));
    assert!(!rule.matches("sip:+1@sms.example.com", Some("text/plain"), Some(15)));
    assert!(!rule.matches("sip:+1@sms.example.com", Some("image/png"), Some(9)));
    assert!(!rule.matches("sip:+1@sms.example.com", Some("image/png"), Some(21)));
    assert!(!rule.matches("sip:+1@sms.example.com", None, Some(15)));
    assert!(!rule.matches("sip:+1@sms.example.com", Some("image/png"), None));
    assert!(IwfRule::default().matches("anything", None, None));
}

/// Seed 000 FIG1: every alternative trigger and opener
/// (the source documents: L1 by A after 200#1 or by PF(A) after ACK#1; L2 by PF(A) after
/// 200#2 / ACK#1 / SEND#1 or by the CF after ACK#2; L3 by the CF after
/// 200#3 / ACK#2 / SEND#2 or by the IWF after ACK#4).
#[test]
fn seed_000_fig1_every_alternative_trigger_and_opener() {
    use cpm_negotiation::{LinkStrategy, Side, Trigger};
    const TRIGGERS: [(Trigger, &str); 3] =
        [(Trigger::OnSuccessResponse, "200"), (Trigger::OnAck, "ACK"), (Trigger::OnFirstSend, "SEND")];
    // (strategy, l2 opener, l3 opener, pf trigger, cf trigger, expected (opener, trigger) of L1..L3)
    let mut cases = Vec::new();
    for (pf, (_, pf_name)) in TRIGGERS.iter().enumerate() {
        for (cf, (_, cf_name)) in TRIGGERS.iter().enumerate() {
            let links = [("A", "200"), ("PF-A", *pf_name), ("CF", *cf_name)];
            cases.push((LinkStrategy::InviteInitiator, Side::Offerer, Side::Offerer, pf, cf, links));
        }
    }
    let links = [("A", "200"), ("CF", "ACK"), ("IWF", "ACK")];
    cases.push((LinkStrategy::ClientInitiative, Side::Answerer, Side::Answerer, 0, 0, links));
    let links = [("PF-A", "ACK"), ("CF", "ACK"), ("IWF", "ACK")];
    cases.push((LinkStrategy::InviteReceiver, Side::Answerer, Side::Answerer, 1, 1, links));
    for (strategy, l2, l3, pf, cf, links) in cases {
        let mut scenario = Scenario::figure("000-fig1").unwrap();
        let (answer, acks) = (scenario.preset.answer_policy, scenario.preset.ack_policy);
        scenario.preset = cpm_negotiation::Preset::new(strategy);
        scenario.preset.answer_policy = answer;
        scenario.preset.ack_policy = acks;
        scenario.preset.l2_opener = l2;
        scenario.preset.l3_opener = l3;
        scenario.preset.pf_trigger = TRIGGERS[pf].0;
        scenario.preset.cf_trigger = TRIGGERS[cf].0;
        let what = format!("{strategy:?} l2={l2:?} l3={l3:?} pf={} cf={}", TRIGGERS[pf].1, TRIGGERS[cf].1);
        let sim = scenario.run(epoch()).unwrap();
        assert!(sim.errors().is_empty(), "{what}: {:?}", sim.errors());
        let mut connects: Vec<(String, String, &str)> = sim
            .trace()
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Connect { hop, from, trigger, .. } => Some((hop.clone(), from.clone(), *trigger)),
                _ => None,
            })
            .collect();
        connects.sort();
        let expected: Vec<(String, String, &str)> = ["L1", "L2", "L3"]
            .iter()
            .zip(links)
            .map(|(hop, (opener, trigger))| ((*hop).to_owned(), opener.to_owned(), trigger))
            .collect();
        assert_eq!(connects, expected, "{what}");
        let delivered = sim.trace().iter().filter(|e| matches!(e, TraceEvent::Deliver { at, .. } if at == "IWF"));
        assert_eq!(delivered.count(), 1, "{what}");
        let outcome = sim.events().iter().find(|(at, e)| at == "A" && matches!(e, Event::Outcome { .. }));
        assert!(
            matches!(outcome, Some((_, Event::Outcome { outcome: Outcome::Delivered, .. }))),
            "{what}: {outcome:?}"
        );
        assert!(sim.is_quiet(), "{what}");
    }
}

/// A stalled sender on a reused link does not hold the link's other
/// sessions (RFC 4975 s.7.1.1: "each concurrent request gets a chance to
/// send some fair portion of data"): A's two sessions share one link to
/// PF(A) (RFC 4975 s.5.4) that drains at 100 bytes/ms; the first carries
/// 1 MiB (ten seconds on that link), the second, started just after, 4000
/// bytes, which reach B within a second while the first is still going.
#[test]
fn a_stalled_sender_on_a_reused_link_does_not_hold_the_others() {
    use std::time::Duration;
    let mut scenario = Scenario::figure("001-fig1").unwrap();
    scenario.size = 1 << 20;
    let mut sim = scenario.build(epoch()).unwrap();
    sim.set_slow_host("a.example.com", 100);
    let start = epoch();
    sim.input(0, send_message(2, &scenario.target, 4000));
    sim.run(10_000_000);
    assert!(sim.errors().is_empty(), "{:?}", sim.errors());
    let reused = sim.events().iter().any(|(at, e)| at == "A" && matches!(e, Event::LinkReused { .. }));
    assert!(reused, "A's second session reuses its link to PF(A)");
    let delivered = |size: usize| {
        sim.trace().iter().zip(sim.trace_times()).find_map(|(e, at)| match e {
            TraceEvent::Deliver { at: who, bytes, .. } if who == "B" && *bytes == size => Some(*at),
            _ => None,
        })
    };
    let small = delivered(4000).expect("the small message arrived");
    let large = delivered(1 << 20).expect("the large message arrived");
    assert!(large > start + Duration::from_secs(10), "the link is slow: {:?}", large - start);
    assert!(small < start + Duration::from_secs(1), "the small message waited {:?}", small - start);
    assert!(sim.is_quiet());
}
