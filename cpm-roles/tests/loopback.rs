//! The figures over real loopback TCP (the examples' socket driver): one
//! run per strategy with a small message, and a member whose MSRP
//! connection is cut in the middle of the message. Every run is bounded
//! (the driver's deadline), so a stuck entity fails the test instead of
//! hanging it.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, reason = "test code")]

#[path = "../examples/driver/mod.rs"]
mod driver;

use std::time::Duration;

use cpm_negotiation::imdn::DeliveryStatus;
use cpm_roles::sim::{crc32, Scenario, TraceEvent};
use cpm_roles::{Event, Outcome};
use driver::Driver;

const LIMIT: Duration = Duration::from_secs(10);

/// The events without the submitted body (for failure messages).
fn events(net: &Driver) -> Vec<String> {
    net.events()
        .iter()
        .filter(|(_, _, e)| !matches!(e, Event::Submitted { .. } | Event::MessageDelivered { .. }))
        .map(|(_, i, e)| format!("{}: {e:?}", net.names()[*i]))
        .collect()
}

/// Runs `scenario` on sockets; returns the driver after the run.
fn run(scenario: &Scenario) -> (Driver, Result<(), String>) {
    let mut net = Driver::new();
    let body = scenario.body();
    scenario.populate(&mut net, driver::now(), body).unwrap();
    let outcome = net.run_to_end(LIMIT, &mut |_| {});
    net.shutdown();
    (net, outcome)
}

/// Every receiver named in `receivers` delivered the scenario's body.
fn check_delivered(scenario: &Scenario, net: &Driver, receivers: &[&str]) {
    let body = scenario.body();
    let delivered = driver::deliveries(net.trace());
    for name in receivers {
        assert_eq!(
            delivered.get(*name),
            Some(&(body.len(), crc32(&body))),
            "{}: {name} did not deliver the message intact; errors {:?}",
            scenario.name,
            net.errors()
        );
    }
}

fn sip_count(trace: &[TraceEvent], method: &str) -> usize {
    trace.iter().filter(|e| matches!(e, TraceEvent::Sip { msg, .. } if msg == method)).count()
}

fn strategy(name: &str, members: usize, non_cpm: usize, receivers: &[&str]) {
    let mut scenario = Scenario::figure(name).unwrap();
    scenario.members = members;
    scenario.non_cpm = non_cpm;
    scenario.size = 20_000;
    let (net, outcome) = run(&scenario);
    assert!(outcome.is_ok(), "{name}: {outcome:?}; errors {:?}; trace {:#?}", net.errors(), net.trace());
    assert!(net.errors().is_empty(), "{name}: {:?}", net.errors());
    check_delivered(&scenario, &net, receivers);
    assert_eq!(driver::retransmissions(net.trace()), 0, "{name}: SIP retransmitted over TCP");
    // Every hop's session was set up and torn down.
    let hops = 2 + 2 * members + 2 * non_cpm;
    assert_eq!(sip_count(net.trace(), "INVITE"), hops, "{name}: INVITEs");
    assert_eq!(sip_count(net.trace(), "ACK"), hops, "{name}: ACKs");
    assert_eq!(sip_count(net.trace(), "BYE"), hops, "{name}: BYEs");
    // A learned the outcome.
    let outcome_at_a =
        net.events().iter().any(|(_, i, e)| *i == 0 && matches!(e, Event::Outcome { outcome: Outcome::Delivered, .. }));
    assert!(outcome_at_a, "{name}: no success outcome at A: {:?}", events(&net));
    let delivered = deliveries_at_a(&net).iter().filter(|(_, s)| *s == DeliveryStatus::Delivered).count();
    assert_eq!(delivered, members + non_cpm, "{name}: per-member outcomes at A: {:?}", events(&net));
}

#[test]
fn invite_initiator_001_fig1() {
    strategy("001-fig1", 2, 0, &["B1", "B2"]);
}

#[test]
fn invite_receiver_001_fig3() {
    strategy("001-fig3", 2, 0, &["B1", "B2"]);
}

#[test]
fn client_initiative_001_fig5() {
    strategy("001-fig5", 2, 0, &["B1", "B2"]);
}

#[test]
fn non_cpm_000_fig1() {
    strategy("000-fig1", 0, 1, &["IWF"]);
}

#[test]
fn sip_over_udp_001_fig1() {
    let mut scenario = Scenario::figure("001-fig1").unwrap();
    scenario.members = 2;
    scenario.non_cpm = 1;
    scenario.size = 20_000;
    scenario.sip_transport = cpm_roles::SipTransport::Unreliable;
    let (net, outcome) = run(&scenario);
    assert!(outcome.is_ok(), "{outcome:?}; errors {:?}; events {:?}", net.errors(), events(&net));
    assert!(net.errors().is_empty(), "{:?}", net.errors());
    check_delivered(&scenario, &net, &["B1", "B2", "IWF1"]);
    let delivered = deliveries_at_a(&net).iter().filter(|(_, s)| *s == DeliveryStatus::Delivered).count();
    assert_eq!(delivered, 3, "{:?}", events(&net));
}

/// Issue 8 over real TCP: three members behind one PF(B); the L3 opener
/// (the CF in 001-fig1, PF(B) in 001-fig3) opens one socket and carries the
/// three members' sessions on it (RFC 4975 s.5.4), frames never mixed.
#[test]
fn shared_pf_b_reuses_one_connection() {
    for (name, opener) in [("001-fig1", "CF"), ("001-fig3", "PF-B")] {
        let mut scenario = Scenario::figure(name).unwrap();
        scenario.members = 3;
        scenario.shared_pf_b = true;
        scenario.size = 20_000;
        let (net, outcome) = run(&scenario);
        assert!(outcome.is_ok(), "{name}: {outcome:?}; errors {:?}; events {:?}", net.errors(), events(&net));
        assert!(net.errors().is_empty(), "{name}: {:?}", net.errors());
        check_delivered(&scenario, &net, &["B1", "B2", "B3"]);
        let l3: Vec<(String, bool)> = net
            .trace()
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Connect { from, hop, reuse, .. } if hop.starts_with("L3/") => Some((from.clone(), *reuse)),
                _ => None,
            })
            .collect();
        let expected: Vec<(String, bool)> = [false, true, true].iter().map(|r| (opener.to_owned(), *r)).collect();
        assert_eq!(l3, expected, "{name}");
        let refused = net.trace().iter().any(|e| matches!(e, TraceEvent::Msrp { msg, .. } if msg.starts_with('4')));
        assert!(!refused, "{name}: an MSRP request was refused: {:?}", events(&net));
        let delivered = deliveries_at_a(&net).iter().filter(|(_, s)| *s == DeliveryStatus::Delivered).count();
        assert_eq!(delivered, 3, "{name}: {:?}", events(&net));
        // The trace names each frame's own hop on the shared link.
        for k in 1..=3 {
            let hop = format!("L3/B{k}");
            let content: usize = net
                .trace()
                .iter()
                .filter_map(|e| match e {
                    TraceEvent::Msrp { from, hop: h, msg, bytes, .. } if *h == hop && from == "CF" && msg == "SEND" => {
                        Some(*bytes)
                    }
                    _ => None,
                })
                .sum();
            assert_eq!(content, scenario.size, "{name}: content on {hop}");
            let closes = net.trace().iter().filter(|e| matches!(e, TraceEvent::Close { hop: h } if *h == hop)).count();
            assert_eq!(closes, 1, "{name}: closes of {hop}");
        }
    }
}

#[test]
fn group_of_cpm_and_non_cpm_members() {
    strategy("001-fig1", 3, 1, &["B1", "B2", "B3", "IWF1"]);
}

/// A's per-member delivery outcomes (IMDN), by member URI.
fn deliveries_at_a(net: &Driver) -> Vec<(String, DeliveryStatus)> {
    net.events()
        .iter()
        .filter_map(|(_, i, e)| match e {
            Event::Delivery { member, status } if *i == 0 => Some((member.clone(), *status)),
            _ => None,
        })
        .collect()
}

/// Three members; PF-B2's link to B2 is cut after 50 000 of 200 000 bytes.
fn cut_scenario() -> (Scenario, Driver) {
    let mut scenario = Scenario::figure("001-fig1").unwrap();
    scenario.members = 3;
    scenario.size = 200_000;
    let mut net = Driver::new();
    net.cut_after("L4/B2", 50_000);
    scenario.populate(&mut net, driver::now(), scenario.body()).unwrap();
    (scenario, net)
}

/// PF-B2's link to B2 dies mid-message: B1 and B3 still get the message,
/// A gets a failure outcome for B2 (and successes for the others), and the
/// session ends.
#[test]
fn member_link_cut_mid_message() {
    let (scenario, mut net) = cut_scenario();
    let outcome = net.run_to_end(LIMIT, &mut |_| {});
    net.shutdown();
    assert!(outcome.is_ok(), "{outcome:?}; errors {:?}; events {:?}", net.errors(), events(&net));
    check_delivered(&scenario, &net, &["B1", "B3"]);
    assert!(!driver::deliveries(net.trace()).contains_key("B2"), "B2 cannot have the whole message");
    let at_a = deliveries_at_a(&net);
    for member in ["sip:b1@example.com", "sip:b3@example.com"] {
        assert!(at_a.contains(&(member.to_owned(), DeliveryStatus::Delivered)), "{member}: {at_a:?}");
    }
    assert!(
        at_a.iter().any(|(m, s)| m == "sip:b2@example.com" && *s != DeliveryStatus::Delivered),
        "no failure outcome for B2 at A: {at_a:?}"
    );
    let member = |uri: &str| {
        net.events().iter().find_map(|(_, _, e)| match e {
            Event::MemberOutcome { member, outcome } if member == uri => Some(outcome.status()),
            _ => None,
        })
    };
    assert!(member("sip:b2@example.com").is_some_and(|s| s != 200), "B2's failure at the CF: {:?}", events(&net));
}

#[test]
fn svg_draws_every_message_once() {
    let mut scenario = Scenario::figure("001-fig2").unwrap();
    scenario.members = 2;
    let (net, outcome) = run(&scenario);
    assert!(outcome.is_ok(), "{outcome:?}");
    let columns = cpm_roles::diagram::columns(&scenario);
    let svg = cpm_roles::diagram::svg(&columns, net.trace());
    let messages = net
        .trace()
        .iter()
        .filter(|e| matches!(e, TraceEvent::Sip { .. } | TraceEvent::Connect { .. } | TraceEvent::Msrp { .. }))
        .count();
    // Well-formed XML; each message is in exactly one arrow group (a run of
    // MSRP frames of one kind on one hop shares one).
    let mut reader = quick_xml::Reader::from_str(&svg);
    let (mut arrows, mut drawn, mut depth, mut root) = (0, 0, 0i32, None);
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Start(e) => {
                if root.is_none() {
                    root = Some(String::from_utf8(e.name().as_ref().to_vec()).unwrap());
                }
                depth += 1;
                let class = e.try_get_attribute("class").unwrap().map(|a| a.unescape_value().unwrap().into_owned());
                if e.name().as_ref() == b"g" && class.is_some_and(|c| c.starts_with("arrow ")) {
                    arrows += 1;
                    let count = e.try_get_attribute("data-messages").unwrap().unwrap();
                    drawn += count.unescape_value().unwrap().parse::<usize>().unwrap();
                }
            }
            quick_xml::events::Event::End(_) => depth -= 1,
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "unbalanced SVG");
    assert_eq!(root.as_deref(), Some("svg"));
    assert_eq!(drawn, messages);
    assert!(arrows < messages, "runs of chunks share a row: {arrows} rows for {messages} messages");
    assert!(messages > 20);
}
