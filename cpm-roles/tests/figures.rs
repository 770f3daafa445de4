//! The figures of seed 001 replayed in the simulator, each checked against
//! The source documents, "What every figure must show": every SIP message on every hop in
//! order, every link's opener and trigger, the CF answer and ACK policies,
//! every MSRP SEND and its response, delivered == submitted, and nothing
//! left at the end.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, reason = "test code")]

use std::time::Instant;

use cpm_negotiation::imdn::DeliveryStatus;
use cpm_roles::sim::{Scenario, Sim, TraceEvent};
use cpm_roles::{Event, Outcome};

#[expect(clippy::disallowed_methods, reason = "test epoch: the simulator's virtual clock starts here")]
fn epoch() -> Instant {
    Instant::now()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ack {
    /// Downstream ACK after the upstream ACK (and the downstream 200).
    After,
    /// Downstream ACK as soon as the downstream 200 arrives.
    On200,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Answer {
    Immediate,
    AfterFirst,
}

/// One figure's expectations, written from the source documents' tables (not from the
/// presets, so that the presets are checked too).
struct Expect {
    name: &'static str,
    /// Opener and trigger of L1..L4.
    links: [(&'static str, &'static str); 4],
    answer: Answer,
    /// PF(A), CF, PF(B).
    acks: [Ack; 3],
}

const FIGURES: [Expect; 7] = {
    use Ack::{After, On200};
    use Answer::{AfterFirst, Immediate};
    const INITIATOR: [(&str, &str); 4] = [("A", "200"), ("PF-A", "ACK"), ("CF", "200"), ("PF-B", "ACK")];
    const RECEIVER: [(&str, &str); 4] = [("PF-A", "ACK"), ("CF", "ACK"), ("PF-B", "ACK"), ("B", "ACK")];
    const CLIENT: [(&str, &str); 4] = [("A", "200"), ("PF-A", "ACK"), ("PF-B", "ACK"), ("B", "ACK")];
    [
        Expect { name: "001-fig1", links: INITIATOR, answer: Immediate, acks: [After, On200, After] },
        Expect { name: "001-fig2", links: INITIATOR, answer: AfterFirst, acks: [After, On200, After] },
        Expect { name: "001-fig3", links: RECEIVER, answer: Immediate, acks: [On200, On200, On200] },
        Expect { name: "001-fig4", links: RECEIVER, answer: AfterFirst, acks: [On200, On200, On200] },
        Expect { name: "001-fig5", links: CLIENT, answer: AfterFirst, acks: [On200, On200, On200] },
        Expect { name: "001-fig6", links: CLIENT, answer: AfterFirst, acks: [After, After, After] },
        Expect { name: "001-fig7", links: CLIENT, answer: Immediate, acks: [After, After, After] },
    ]
};

const HOPS: [&str; 4] = ["L1", "L2", "L3", "L4"];

/// Index in the trace of the `nth` SIP message `msg` on `hop`.
fn sip_at(trace: &[TraceEvent], hop: &str, msg: &str, nth: usize) -> usize {
    trace
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, TraceEvent::Sip { hop: h, msg: m, .. } if h == hop && m == msg))
        .nth(nth)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("no {msg} #{nth} on {hop}"))
}

fn check(expect: &Expect, sim: &Sim, size: usize) {
    let name = expect.name;
    let trace = sim.trace();
    assert!(sim.errors().is_empty(), "{name}: {:?}", sim.errors());
    assert_eq!(sim.dropped_writes(), 0, "{name}: MSRP written on a closed link");

    // Every SIP message on every hop, in order, no retransmission.
    for hop in HOPS {
        let msgs: Vec<&str> = trace
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Sip { hop: h, msg, retransmission, .. } if h == hop => {
                    assert!(!retransmission, "{name}: retransmission on {hop}");
                    Some(msg.as_str())
                }
                _ => None,
            })
            .collect();
        assert_eq!(msgs, ["INVITE", "200", "ACK", "BYE", "200"], "{name}: SIP on {hop}");
    }
    // INVITE#1..#4 go forward in order; BYE too (sender side first).
    for pair in HOPS.windows(2) {
        assert!(sip_at(trace, pair[0], "INVITE", 0) < sip_at(trace, pair[1], "INVITE", 0), "{name}: INVITE order");
        assert!(sip_at(trace, pair[0], "BYE", 0) < sip_at(trace, pair[1], "BYE", 0), "{name}: BYE order");
        // A B2BUA answers upstream only after its downstream 200 (PF(A), PF(B)).
        if pair[0] != "L2" {
            assert!(sip_at(trace, pair[1], "200", 0) < sip_at(trace, pair[0], "200", 0), "{name}: 200 order");
        }
    }
    // CF answer policy: 200#2 before or after 200#3.
    let (ok2, ok3) = (sip_at(trace, "L2", "200", 0), sip_at(trace, "L3", "200", 0));
    match expect.answer {
        Answer::Immediate => assert!(ok2 < ok3, "{name}: CF answers at once"),
        Answer::AfterFirst => assert!(ok2 > ok3, "{name}: CF answers after 200#3"),
    }
    // ACK policy of PF(A) (L1 -> L2), CF (L2 -> L3), PF(B) (L3 -> L4).
    for (k, policy) in expect.acks.iter().enumerate() {
        let (up, down) = (HOPS[k], HOPS[k + 1]);
        let ack_up = sip_at(trace, up, "ACK", 0);
        let ack_down = sip_at(trace, down, "ACK", 0);
        let ok_down = sip_at(trace, down, "200", 0);
        assert!(ack_down > ok_down, "{name}: ACK on {down} before its 200");
        // The trace is in send order; a message is received one latency later.
        let (t, lat) = (sim.trace_times(), sim.latency());
        match policy {
            // Sent once both the upstream ACK and the downstream 200 arrived.
            Ack::After => assert_eq!(t[ack_down], t[ack_up].max(t[ok_down]) + lat, "{name}: after-ack on {down}"),
            // Sent as soon as the downstream 200 arrived.
            Ack::On200 => assert_eq!(t[ack_down], t[ok_down] + lat, "{name}: on-200 on {down}"),
        }
    }

    // Every link's opener and trigger, once, after its trigger happened.
    for (k, (opener, trigger)) in expect.links.iter().enumerate() {
        let hop = HOPS[k];
        let connects: Vec<(usize, &TraceEvent)> = trace
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, TraceEvent::Connect { hop: h, .. } if h == hop))
            .collect();
        assert_eq!(connects.len(), 1, "{name}: one connect on {hop}");
        let (at, TraceEvent::Connect { from, trigger: t, reuse, .. }) = connects[0] else { unreachable!() };
        assert_eq!((from.as_str(), *t, *reuse), (*opener, *trigger, false), "{name}: opener of {hop}");
        let offerer_opens = ["A", "PF-A", "CF", "PF-B"][k] == *opener;
        let cause = match (*trigger, offerer_opens) {
            ("200", true) => sip_at(trace, hop, "200", 0),
            ("ACK", true) => sip_at(trace, HOPS[k - 1], "ACK", 0),
            ("ACK", false) => sip_at(trace, hop, "ACK", 0),
            other => panic!("{name}: unexpected trigger {other:?}"),
        };
        assert!(cause < at, "{name}: {hop} opened before its trigger");
        // Opened as soon as the trigger arrived (an offerer also needs the
        // 200 of its hop: "the peer always from the 200 SDP").
        let (t, lat) = (sim.trace_times(), sim.latency());
        let ready = if offerer_opens { t[cause].max(t[sip_at(trace, hop, "200", 0)]) } else { t[cause] };
        assert_eq!(t[at], ready + lat, "{name}: {hop} opened late");
        let closes = trace.iter().filter(|e| matches!(e, TraceEvent::Close { hop: h } if h == hop)).count();
        assert_eq!(closes, 1, "{name}: one close on {hop}");
    }

    // MSRP: every SEND answered by a 200 the other way; the content crosses
    // every hop whole, L1 first; the REPORT comes back L4 first.
    let mut first_data = Vec::new();
    let mut reports = Vec::new();
    let mut content_sends: Vec<Vec<usize>> = Vec::new();
    for hop in HOPS {
        let on_hop: Vec<(usize, &str, &str, usize)> = trace
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                TraceEvent::Msrp { hop: h, from, msg, bytes, .. } if h == hop => {
                    Some((i, from.as_str(), msg.as_str(), *bytes))
                }
                _ => None,
            })
            .collect();
        // Content goes downstream: the hop's offerer side is upstream.
        let upstream = ["A", "PF-A", "CF", "PF-B"][HOPS.iter().position(|h| *h == hop).unwrap()];
        let sends: Vec<_> = on_hop.iter().filter(|m| m.2 == "SEND" && m.1 == upstream).collect();
        let sent: usize = sends.iter().map(|m| m.3).sum();
        assert_eq!(sent, size, "{name}: SEND bytes on {hop}");
        // The source documents, "Scenario defaults": 2048-octet chunks (5000 bytes: SEND#1..#3
        // of 2048, 2048 and 904), each hop keeping the chunk boundaries.
        let chunks: Vec<usize> = sends.iter().map(|m| m.3).filter(|&b| b > 0).collect();
        let expected: Vec<usize> = (0..size).step_by(2048).map(|at| (size - at).min(2048)).collect();
        assert_eq!(chunks, expected, "{name}: chunks on {hop}");
        content_sends.push(sends.iter().filter(|m| m.3 > 0).map(|m| m.0).collect::<Vec<usize>>());
        for send in &sends {
            let answered = on_hop.iter().filter(|m| m.2 == "200" && m.1 != send.1).count();
            assert!(answered >= sends.iter().filter(|s| s.1 == send.1).count(), "{name}: SENDs on {hop} answered");
        }
        first_data.push(sends.iter().find(|m| m.3 > 0).unwrap().0);
        let report: Vec<_> = on_hop.iter().filter(|m| m.2 == "REPORT").collect();
        assert_eq!(report.len(), 1, "{name}: one REPORT on {hop}");
        reports.push(report[0].0);
    }
    assert!(first_data.windows(2).all(|w| w[0] < w[1]), "{name}: content relayed L1..L4");
    // SEND#k leaves hop n before it leaves hop n+1 (cut-through, in order).
    for pair in content_sends.windows(2) {
        assert!(pair[0].iter().zip(&pair[1]).all(|(a, b)| a < b), "{name}: SEND#k relayed hop by hop");
    }
    assert!(reports.windows(2).all(|w| w[0] > w[1]), "{name}: REPORT relayed L4..L1");

    // Delivered == submitted.
    let submit = trace.iter().find_map(|e| match e {
        TraceEvent::Submit { bytes, crc32, .. } => Some((*bytes, *crc32)),
        _ => None,
    });
    let delivered: Vec<_> = trace
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Deliver { at, bytes, crc32 } => Some((at.as_str(), *bytes, *crc32)),
            _ => None,
        })
        .collect();
    let (bytes, crc) = submit.unwrap();
    assert_eq!(bytes, size);
    assert_eq!(delivered, [("B", bytes, crc)], "{name}: delivered");
    // One outcome at A, a success.
    let outcomes: Vec<_> = sim.events().iter().filter(|(_, e)| matches!(e, Event::Outcome { .. })).collect();
    assert_eq!(outcomes.len(), 1, "{name}: one outcome");
    assert!(matches!(outcomes[0], (at, Event::Outcome { outcome: Outcome::Delivered, .. }) if at == "A"));
    // One delivery notification (IMDN) per member at A, naming the member.
    let deliveries: Vec<_> = sim
        .events()
        .iter()
        .filter_map(|(at, e)| match e {
            Event::Delivery { member, status } if at == "A" => Some((member.as_str(), *status)),
            _ => None,
        })
        .collect();
    assert_eq!(deliveries, [("sip:b1@example.com", DeliveryStatus::Delivered)], "{name}: IMDN at A");

    // Nothing left: no delivery in flight, no link, no timer, no leg.
    assert!(sim.is_quiet(), "{name}: something is left");
}

#[test]
fn seed_001_figures() {
    for expect in &FIGURES {
        let scenario = Scenario::figure(expect.name).unwrap();
        let sim = scenario.run(epoch()).unwrap();
        check(expect, &sim, 5000);
    }
}

#[test]
fn fig1_first_sip_exchange_is_the_seeds() {
    // Seed 001 FIG1 (S101-S111): INVITE#1..#4 forward, the CF answers 200#2 at
    // once, A opens L1 after 200#1, PF(A) opens L2 after ACK#1, the CF opens
    // L3 after 200#3 and PF(B) opens L4 after ACK#3.
    let sim = Scenario::figure("001-fig1").unwrap().run(epoch()).unwrap();
    let lines: Vec<String> = sim
        .trace()
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Sip { from, to, msg, .. } => Some(format!("{from}>{to} {msg}")),
            TraceEvent::Connect { from, hop, trigger, .. } => Some(format!("connect {hop} by {from} on {trigger}")),
            _ => None,
        })
        .take(16)
        .collect();
    assert_eq!(
        lines,
        [
            "A>PF-A INVITE",
            "PF-A>CF INVITE",
            "CF>PF-B INVITE",
            "CF>PF-A 200",
            "PF-B>B INVITE",
            "PF-A>A 200",
            "B>PF-B 200",
            "A>PF-A ACK",
            "connect L1 by A on 200",
            "PF-B>CF 200",
            "PF-A>CF ACK",
            "connect L2 by PF-A on ACK",
            "CF>PF-B ACK",
            "connect L3 by CF on 200",
            "PF-B>B ACK",
            "connect L4 by PF-B on ACK",
        ]
    );
}

#[test]
fn group_of_three_members() {
    for name in ["001-fig1", "001-fig3", "001-fig6"] {
        let mut scenario = Scenario::figure(name).unwrap();
        scenario.members = 3;
        let sim = scenario.run(epoch()).unwrap();
        assert!(sim.errors().is_empty(), "{name}: {:?}", sim.errors());
        let delivered: Vec<_> = sim
            .trace()
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Deliver { at, bytes, .. } => Some((at.clone(), *bytes)),
                _ => None,
            })
            .collect();
        assert_eq!(delivered.len(), 3, "{name}");
        assert!(delivered.iter().all(|(_, b)| *b == 5000));
        let members = sim
            .events()
            .iter()
            .filter(|(at, e)| at == "CF" && matches!(e, Event::MemberOutcome { outcome: Outcome::Delivered, .. }));
        assert_eq!(members.count(), 3, "{name}: one outcome per member at the CF");
        let outcomes = sim.events().iter().filter(|(at, e)| at == "A" && matches!(e, Event::Outcome { .. }));
        assert_eq!(outcomes.count(), 1, "{name}: one REPORT reaches A");
        assert!(sim.is_quiet(), "{name}: something is left");
    }
}

#[test]
fn options_change_triggers_and_openers() {
    use cpm_negotiation::{AckPolicy, Side, Trigger};
    // Invite-initiator with the PF trigger on the first SEND and the CF's on ACK#2.
    let mut scenario = Scenario::figure("001-fig1").unwrap();
    scenario.preset.pf_trigger = Trigger::OnFirstSend;
    scenario.preset.cf_trigger = Trigger::OnAck;
    scenario.preset.ack_policy = [AckPolicy::OnDownstreamSuccess; 3];
    let sim = scenario.run(epoch()).unwrap();
    let connects: Vec<(String, &str)> = sim
        .trace()
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Connect { hop, trigger, .. } => Some((hop.clone(), *trigger)),
            _ => None,
        })
        .collect();
    assert!(connects.contains(&("L2".to_owned(), "SEND")), "{connects:?}");
    assert!(connects.contains(&("L4".to_owned(), "SEND")), "{connects:?}");
    assert!(connects.contains(&("L3".to_owned(), "ACK")), "{connects:?}");
    assert!(sim.is_quiet() && sim.errors().is_empty());

    // Client-initiative with the CF opening L2 (after ACK#2) and L3 (after 200#3).
    let mut scenario = Scenario::figure("001-fig5").unwrap();
    scenario.preset.l2_opener = Side::Answerer;
    scenario.preset.l3_opener = Side::Offerer;
    let sim = scenario.run(epoch()).unwrap();
    let openers: Vec<(String, String)> = sim
        .trace()
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Connect { hop, from, .. } => Some((hop.clone(), from.clone())),
            _ => None,
        })
        .collect();
    assert!(openers.contains(&("L2".to_owned(), "CF".to_owned())), "{openers:?}");
    assert!(openers.contains(&("L3".to_owned(), "CF".to_owned())), "{openers:?}");
    assert!(sim.is_quiet() && sim.errors().is_empty());
}

#[test]
fn read_splits_and_sizes_do_not_change_the_outcome() {
    for (size, split) in [(1, 1), (2048, 7), (2049, 1500), (100_000, 333)] {
        let mut scenario = Scenario::figure("001-fig1").unwrap();
        scenario.size = size;
        let mut sim = scenario.build(epoch()).unwrap();
        sim.set_read_split(split);
        sim.run(1_000_000);
        let expect = &FIGURES[0];
        check(expect, &sim, size);
    }
}

#[test]
fn json_lines_follow_the_schema() {
    let sim = Scenario::figure("001-fig1").unwrap().run(epoch()).unwrap();
    for (seq, event) in sim.trace().iter().enumerate() {
        let value: serde_json::Value = serde_json::from_str(&event.to_json(seq)).unwrap();
        assert_eq!(value["seq"], seq);
        let kind = value["kind"].as_str().unwrap();
        let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        let expected: &[&str] = match kind {
            "sip" => &["from", "hop", "kind", "msg", "seq", "to"],
            "connect" => &["from", "hop", "kind", "reuse", "seq", "to", "trigger"],
            "msrp" => &["bytes", "from", "hop", "kind", "msg", "seq", "to"],
            "submit" | "deliver" => &["at", "bytes", "crc32", "kind", "seq"],
            "close" => &["hop", "kind", "seq"],
            other => panic!("unknown kind {other}"),
        };
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected, "{kind}");
    }
}

#[test]
fn a_busy_member_is_one_outcome_not_a_failed_session() {
    for name in ["001-fig1", "001-fig2", "001-fig3", "001-fig6"] {
        let mut scenario = Scenario::figure(name).unwrap();
        scenario.members = 3;
        scenario.busy = vec![1];
        let sim = scenario.run(epoch()).unwrap();
        assert!(sim.errors().is_empty(), "{name}: {:?}", sim.errors());
        let delivered: Vec<String> = sim
            .trace()
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Deliver { at, .. } => Some(at.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(delivered, ["B1", "B3"], "{name}");
        let mut members: Vec<(String, u16)> = sim
            .events()
            .iter()
            .filter_map(|(at, e)| match e {
                Event::MemberOutcome { member, outcome } if at == "CF" => Some((member.clone(), outcome.status())),
                _ => None,
            })
            .collect();
        members.sort();
        assert_eq!(
            members,
            [
                ("sip:b1@example.com".to_owned(), 200),
                ("sip:b2@example.com".to_owned(), 486),
                ("sip:b3@example.com".to_owned(), 200)
            ],
            "{name}"
        );
        // A learns each member's outcome from its IMDN, the busy one's too.
        let mut deliveries = sim.deliveries_at("A");
        deliveries.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            deliveries,
            [
                ("sip:b1@example.com".to_owned(), DeliveryStatus::Delivered),
                ("sip:b2@example.com".to_owned(), DeliveryStatus::Failed),
                ("sip:b3@example.com".to_owned(), DeliveryStatus::Delivered)
            ],
            "{name}"
        );
        // The sender's session is not failed for one member: one success REPORT.
        let outcomes: Vec<_> =
            sim.events().iter().filter(|(at, e)| at == "A" && matches!(e, Event::Outcome { .. })).collect();
        assert_eq!(outcomes.len(), 1, "{name}");
        assert!(matches!(outcomes[0].1, Event::Outcome { outcome: Outcome::Delivered, .. }), "{name}: {outcomes:?}");
        assert!(sim.is_quiet(), "{name}: something is left");
    }
}

#[test]
fn every_member_busy_before_the_answer_rejects_the_sender() {
    // FIG2: the CF answers only after a member's 200, so the refusal goes back.
    let mut scenario = Scenario::figure("001-fig2").unwrap();
    scenario.busy = vec![0];
    let sim = scenario.run(epoch()).unwrap();
    assert!(sim.errors().is_empty(), "{:?}", sim.errors());
    let refusals: Vec<(String, String)> = sim
        .trace()
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Sip { hop, msg, .. } if msg == "486" => Some((hop.clone(), msg.clone())),
            _ => None,
        })
        .collect();
    let hops: Vec<&str> = refusals.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(hops, ["L4", "L3", "L2", "L1"]);
    let outcome = sim.events().iter().find(|(at, e)| at == "A" && matches!(e, Event::Outcome { .. }));
    assert!(
        matches!(outcome, Some((_, Event::Outcome { outcome: Outcome::Refused { status: 486 }, .. }))),
        "{outcome:?}"
    );
    assert!(sim.trace().iter().all(|e| !matches!(e, TraceEvent::Connect { .. } | TraceEvent::Deliver { .. })));
    assert!(sim.is_quiet(), "something is left");
}

#[test]
fn every_member_busy_after_the_answer_ends_the_session() {
    // FIG1: the CF answered 200#2 at once; the member's refusal ends the session with BYE.
    let mut scenario = Scenario::figure("001-fig1").unwrap();
    scenario.busy = vec![0];
    let sim = scenario.run(epoch()).unwrap();
    assert!(sim.errors().is_empty(), "{:?}", sim.errors());
    let outcomes: Vec<_> =
        sim.events().iter().filter(|(at, e)| at == "A" && matches!(e, Event::Outcome { .. })).collect();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert!(!matches!(outcomes[0].1, Event::Outcome { outcome: Outcome::Delivered, .. }), "{outcomes:?}");
    assert!(sim.trace().iter().all(|e| !matches!(e, TraceEvent::Deliver { .. })));
    assert!(sim.is_quiet(), "something is left: {:?}", sim.trace().last());
}

#[test]
fn an_unknown_group_is_refused() {
    let mut scenario = Scenario::figure("001-fig1").unwrap();
    scenario.target = "sip:nosuchgroup@cf.example.com".to_owned();
    let sim = scenario.run(epoch()).unwrap();
    assert!(sim.errors().is_empty(), "{:?}", sim.errors());
    let sip: Vec<String> = sim
        .trace()
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Sip { from, to, msg, .. } => Some(format!("{from}>{to} {msg}")),
            _ => None,
        })
        .collect();
    // PF(A) forwards the Request-URI; the CF's directory does not know it
    // (each 404 is ACKed hop by hop by the transaction layer, RFC 3261 s.17.1.1.3).
    assert_eq!(sip, ["A>PF-A INVITE", "PF-A>CF INVITE", "CF>PF-A 404", "PF-A>CF ACK", "PF-A>A 404", "A>PF-A ACK"]);
    let outcome = sim.events().iter().find(|(at, e)| at == "A" && matches!(e, Event::Outcome { .. }));
    assert!(
        matches!(outcome, Some((_, Event::Outcome { outcome: Outcome::Refused { status: 404 }, .. }))),
        "{outcome:?}"
    );
    assert!(sim.is_quiet());
}

#[test]
fn the_switch_shares_one_body_buffer_between_members() {
    let mut scenario = Scenario::figure("001-fig1").unwrap();
    scenario.members = 3;
    let mut sim = scenario.build(epoch()).unwrap();
    sim.set_capture(true);
    sim.run(100_000);
    assert!(sim.is_quiet());
    let pieces = |hop: &str| -> Vec<bytes::Bytes> {
        sim.captured_bodies()
            .iter()
            .filter(|(from, h, _)| from == "CF" && h == hop)
            .map(|(_, _, b)| b.clone())
            .collect()
    };
    let (one, two, three) = (pieces("L3/B1"), pieces("L3/B2"), pieces("L3/B3"));
    assert_eq!(one.iter().map(bytes::Bytes::len).sum::<usize>(), 5000);
    assert_eq!(one.len(), two.len());
    assert_eq!(one.len(), three.len());
    for ((a, b), c) in one.iter().zip(&two).zip(&three) {
        // The same memory, not copies: a refcount per member.
        assert_eq!((a.as_ptr(), a.len()), (b.as_ptr(), b.len()));
        assert_eq!((a.as_ptr(), a.len()), (c.as_ptr(), c.len()));
    }
}

#[test]
fn a_member_whose_link_fails_is_one_failed_outcome() {
    // FIG1: the CF opens L3 after 200#3; PF(B2) refuses the connection.
    let mut scenario = Scenario::figure("001-fig1").unwrap();
    scenario.members = 3;
    let mut sim = scenario.build(epoch()).unwrap();
    sim.refuse_connections_to("pfb2.example.com");
    sim.run(100_000);
    assert!(sim.errors().is_empty(), "{:?}", sim.errors());
    assert_eq!(sim.refused_connects(), 1);
    let delivered = sim.delivered_at();
    assert_eq!(delivered, ["B1", "B3"]);
    let failed: Vec<_> = sim
        .events()
        .iter()
        .filter(|(at, e)| at == "CF" && matches!(e, Event::MemberOutcome { outcome, .. } if !outcome.is_delivered()))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(matches!(&failed[0].1, Event::MemberOutcome { member, .. } if member == "sip:b2@example.com"));
    let b2 = Some("sip:b2@example.com".to_owned());
    assert!(sim.events().iter().any(|(at, e)| at == "CF" && matches!(e, Event::HopFailed { member } if *member == b2)));
    let outcome = sim.events().iter().find(|(at, e)| at == "A" && matches!(e, Event::Outcome { .. }));
    assert!(matches!(outcome, Some((_, Event::Outcome { outcome: Outcome::Delivered, .. }))), "{outcome:?}");
    assert!(sim.is_quiet());
}

#[test]
fn a_sender_whose_link_fails_gets_a_failed_outcome() {
    let mut scenario = Scenario::figure("001-fig1").unwrap();
    scenario.members = 1;
    let mut sim = scenario.build(epoch()).unwrap();
    sim.refuse_connections_to("pfa.example.com");
    sim.run(100_000);
    assert!(sim.errors().is_empty(), "{:?}", sim.errors());
    let outcome = sim.events().iter().find(|(at, e)| at == "A" && matches!(e, Event::Outcome { .. }));
    assert!(matches!(outcome, Some((_, Event::Outcome { outcome, .. })) if !outcome.is_delivered()), "{outcome:?}");
    assert!(sim.trace().iter().all(|e| !matches!(e, TraceEvent::Deliver { .. })));
    assert!(sim.is_quiet());
}

/// What triggered a connect, checked in the trace: the connect follows the
/// named message on the named hop (`SEND` on the upstream hop: its first
/// content SEND arrived).
fn trigger_cause(trace: &[TraceEvent], hop: &str, trigger: &str, offerer_opens: bool) -> usize {
    let k = HOPS.iter().position(|h| *h == hop).unwrap();
    match (trigger, offerer_opens) {
        ("200", true) => sip_at(trace, hop, "200", 0),
        ("ACK", true) => sip_at(trace, HOPS[k - 1], "ACK", 0),
        ("ACK", false) => sip_at(trace, hop, "ACK", 0),
        ("SEND", true) => trace
            .iter()
            .position(|e| matches!(e, TraceEvent::Msrp { hop: h, msg, bytes, .. } if h == HOPS[k - 1] && msg == "SEND" && *bytes > 0))
            .unwrap(),
        other => panic!("unexpected trigger {other:?}"),
    }
}

/// One alternative: figure, L2 and L3 openers, PF and CF trigger (indices
/// into `TRIGGERS`), and the expected opener and trigger of L1..L4.
type Case =
    (&'static str, cpm_negotiation::Side, cpm_negotiation::Side, usize, usize, [(&'static str, &'static str); 4]);

/// Every alternative trigger and opener of each figure (the source documents,
/// strategy table), each run checked for its connects (opener, trigger, after
/// the triggering message), delivery and a clean end.
#[test]
fn every_alternative_trigger_and_opener() {
    use cpm_negotiation::{Side, Trigger};
    const TRIGGERS: [(Trigger, &str); 3] =
        [(Trigger::OnSuccessResponse, "200"), (Trigger::OnAck, "ACK"), (Trigger::OnFirstSend, "SEND")];
    // (figure, l2 opener, l3 opener, pf trigger, cf trigger) -> openers and triggers of L1..L4.
    let mut cases: Vec<Case> = Vec::new();
    // Invite-initiator: PF(A)/PF(B) after ACK, 200 or SEND (the same for L2 and L4); the CF's L3 trigger separately.
    for name in ["001-fig1", "001-fig2"] {
        for (pf, (_, pf_name)) in TRIGGERS.iter().enumerate() {
            for (cf, (_, cf_name)) in TRIGGERS.iter().enumerate() {
                let links = [("A", "200"), ("PF-A", *pf_name), ("CF", *cf_name), ("PF-B", *pf_name)];
                cases.push((name, Side::Offerer, Side::Offerer, pf, cf, links));
            }
        }
    }
    // Invite-receiver: every hop by its answerer after its ACK (no alternative).
    for name in ["001-fig3", "001-fig4"] {
        let links = [("PF-A", "ACK"), ("CF", "ACK"), ("PF-B", "ACK"), ("B", "ACK")];
        cases.push((name, Side::Answerer, Side::Answerer, 1, 1, links));
    }
    // Client-initiative: L2 by PF(A) after ACK#1/200#2/SEND#1 or by the CF after ACK#2;
    // L3 by PF(B) after ACK#3 or by the CF after 200#3/ACK#2/SEND#2.
    for name in ["001-fig5", "001-fig6", "001-fig7"] {
        for (pf, (_, pf_name)) in TRIGGERS.iter().enumerate() {
            for (cf, (_, cf_name)) in TRIGGERS.iter().enumerate() {
                for (l2, l2_links) in [(Side::Offerer, ("PF-A", *pf_name)), (Side::Answerer, ("CF", "ACK"))] {
                    for (l3, l3_links) in [(Side::Answerer, ("PF-B", "ACK")), (Side::Offerer, ("CF", *cf_name))] {
                        // Skip repeats: a trigger only matters for the offerer that uses it.
                        if (l2 == Side::Answerer && pf > 0) || (l3 == Side::Answerer && cf > 0) {
                            continue;
                        }
                        cases.push((name, l2, l3, pf, cf, [("A", "200"), l2_links, l3_links, ("B", "ACK")]));
                    }
                }
            }
        }
    }
    assert_eq!(cases.len(), 2 * 9 + 2 + 3 * (3 * 3 + 3 + 3 + 1));
    for (name, l2, l3, pf, cf, links) in cases {
        let mut scenario = Scenario::figure(name).unwrap();
        scenario.preset.l2_opener = l2;
        scenario.preset.l3_opener = l3;
        scenario.preset.pf_trigger = TRIGGERS[pf].0;
        scenario.preset.cf_trigger = TRIGGERS[cf].0;
        let what = format!("{name} l2={l2:?} l3={l3:?} pf={} cf={}", TRIGGERS[pf].1, TRIGGERS[cf].1);
        let sim = scenario.run(epoch()).unwrap();
        assert!(sim.errors().is_empty(), "{what}: {:?}", sim.errors());
        let trace = sim.trace();
        for (k, (opener, trigger)) in links.iter().enumerate() {
            let hop = HOPS[k];
            let connects: Vec<(usize, &str, &str)> = trace
                .iter()
                .enumerate()
                .filter_map(|(i, e)| match e {
                    TraceEvent::Connect { hop: h, from, trigger, .. } if h == hop => Some((i, from.as_str(), *trigger)),
                    _ => None,
                })
                .collect();
            assert_eq!(connects.len(), 1, "{what}: one connect on {hop}");
            let (at, from, t) = connects[0];
            assert_eq!((from, t), (*opener, *trigger), "{what}: opener of {hop}");
            let offerer_opens = ["A", "PF-A", "CF", "PF-B"][k] == *opener;
            assert!(trigger_cause(trace, hop, trigger, offerer_opens) < at, "{what}: {hop} opened before its trigger");
        }
        let delivered = trace.iter().filter(|e| matches!(e, TraceEvent::Deliver { at, bytes: 5000, .. } if at == "B"));
        assert_eq!(delivered.count(), 1, "{what}: delivered");
        let outcome = sim.events().iter().find(|(at, e)| at == "A" && matches!(e, Event::Outcome { .. }));
        assert!(
            matches!(outcome, Some((_, Event::Outcome { outcome: Outcome::Delivered, .. }))),
            "{what}: {outcome:?}"
        );
        assert!(sim.is_quiet(), "{what}: something is left");
    }
}

/// Connection reuse (RFC 4975 s.5.4; seed 000 [0040]: "a creator
/// selects an existing MSRP link with a matched host, port and/or MSRP
/// URI"): three members behind one PF(B). In every figure the L3 opener
/// (the CF, or PF(B)) connects once and reuses that link for the two other
/// members; the members' frames cross it without cutting into each other
/// (PF(B) would answer 400 otherwise) and take turns; every member gets the message; each
/// hop records its close once; nothing is left.
#[test]
fn every_figure_reuses_the_l3_link_to_a_shared_pf_b() {
    // Whether chunks took turns somewhere (where the message is streamed
    // through as the links come up; not where it is all there first).
    let mut interrupted = false;
    for name in ["001-fig1", "001-fig2", "001-fig3", "001-fig4", "001-fig5", "001-fig6", "001-fig7", "000-fig1"] {
        let mut scenario = Scenario::figure(name).unwrap();
        scenario.members = 3;
        scenario.shared_pf_b = true;
        let sim = scenario.run(epoch()).unwrap();
        let trace = sim.trace();
        assert!(sim.errors().is_empty(), "{name}: {:?}", sim.errors());
        assert!(sim.is_quiet(), "{name}: something is left");
        assert_eq!(sim.dropped_writes(), 0, "{name}");
        let l3: Vec<(&str, &str, bool)> = trace
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Connect { from, hop, reuse, to, .. } if hop.starts_with("L3/B") => {
                    Some((from.as_str(), to.as_str(), *reuse))
                }
                _ => None,
            })
            .collect();
        let opener = if ["001-fig1", "001-fig2", "000-fig1"].contains(&name) { "CF" } else { "PF-B" };
        let peer = if opener == "CF" { "PF-B" } else { "CF" };
        assert_eq!(l3, [(opener, peer, false), (opener, peer, true), (opener, peer, true)], "{name}: L3 connects");
        // Other hops lead to other hosts: never a reuse.
        let reused_elsewhere =
            trace.iter().any(|e| matches!(e, TraceEvent::Connect { hop, reuse: true, .. } if !hop.starts_with("L3/B")));
        assert!(!reused_elsewhere, "{name}");
        for k in 1..=3 {
            let at = format!("B{k}");
            let delivered = trace.iter().filter(|e| matches!(e, TraceEvent::Deliver { at: a, .. } if *a == at)).count();
            assert_eq!(delivered, 1, "{name}: {at}");
            // Each member's L3 carried its own three chunks from the CF (and
            // the member's IMDN the other way).
            let hop = format!("L3/B{k}");
            let sends: Vec<usize> = trace
                .iter()
                .filter_map(|e| match e {
                    TraceEvent::Msrp { hop: h, from, msg, bytes, .. }
                        if *h == hop && from == "CF" && msg == "SEND" && *bytes > 0 =>
                    {
                        Some(*bytes)
                    }
                    _ => None,
                })
                .collect();
            // RFC 4975 s.7.1.1: on the shared link a chunk whose rest has not
            // arrived yet ends early (`+`) when another member's session
            // waits, so each gets a fair turn; the message arrives whole.
            assert_eq!(sends.iter().sum::<usize>(), 5000, "{name}: content SENDs on {hop}: {sends:?}");
            assert!(sends.iter().all(|&n| n <= 2048), "{name}: {hop}: {sends:?}");
            interrupted |= sends.len() > 3;
            let closes = trace.iter().filter(|e| matches!(e, TraceEvent::Close { hop: h } if *h == hop)).count();
            assert_eq!(closes, 1, "{name}: closes of {hop}");
        }
        let refused = trace
            .iter()
            .any(|e| matches!(e, TraceEvent::Msrp { msg, .. } if msg.starts_with('4') || msg.starts_with('5')));
        assert!(!refused, "{name}: an MSRP request was refused");
        let delivered_at_a = sim.deliveries_at("A");
        assert_eq!(delivered_at_a.len(), 3 + scenario.non_cpm, "{name}: one IMDN per member at A");
        assert!(delivered_at_a.iter().all(|(_, s)| *s == DeliveryStatus::Delivered), "{name}");
        let outcome = sim.events().iter().find_map(|(at, e)| match e {
            Event::Outcome { outcome, .. } if at == "A" => Some(outcome.status()),
            _ => None,
        });
        assert_eq!(outcome, Some(200), "{name}");
    }
    assert!(interrupted, "the members' chunks take turns on the shared link");
}

/// Without reuse (separate PF(B)s, or `reuse_links` off at every entity),
/// each L3 hop opens its own link.
#[test]
fn no_reuse_without_a_shared_host_or_with_reuse_off() {
    for (shared, reuse) in [(false, true), (true, false)] {
        let mut scenario = Scenario::figure("001-fig1").unwrap();
        scenario.members = 3;
        scenario.shared_pf_b = shared;
        scenario.reuse_links = reuse;
        let sim = scenario.run(epoch()).unwrap();
        let connects: Vec<bool> = sim
            .trace()
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Connect { hop, reuse, .. } if hop.starts_with("L3/") => Some(*reuse),
                _ => None,
            })
            .collect();
        assert_eq!(connects, [false; 3], "shared {shared} reuse {reuse}");
        assert_eq!(sim.delivered_at().len(), 3, "shared {shared} reuse {reuse}");
        assert!(sim.errors().is_empty() && sim.is_quiet(), "shared {shared} reuse {reuse}");
    }
}
