//! The figures on the runtime over loopback beyond what `host.rs` runs
//! (every figure over TCP): SIP over UDP, three members sharing one link,
//! a group of CPM and non-CPM members, a member whose MSRP connection is cut
//! in the middle of the message, and the sequence diagram of a run. Every
//! run is bounded, so a stuck entity fails its test instead of hanging it.

mod support;

use std::time::Duration;

use cpm_negotiation::imdn::DeliveryStatus;
use cpm_node::host::{HostEvent, HostOptions};
use cpm_roles::scenario::Scenario;
use cpm_roles::sim::TraceEvent;
use cpm_roles::{Event, SipTransport};
use support::net::Net;

const LIMIT: Duration = Duration::from_secs(20);

/// SIP over UDP on every hop (RFC 3261 s.17: the transactions run their
/// retransmission timers): two CPM members and a non-CPM one get the
/// message intact, A every member's delivered IMDN, and nothing complains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_over_udp_001_fig1() {
    let logs = support::logs::capture().await;
    let mut scenario = Scenario::figure("001-fig1").expect("a figure");
    scenario.members = 2;
    scenario.non_cpm = 1;
    scenario.size = 20_000;
    scenario.sip_transport = SipTransport::Unreliable;
    let mut net = Net::start(&scenario, HostOptions::default()).await;
    let ended = net.run_to_end(LIMIT, |_| {}).await;
    let ran = net.shutdown().await;
    assert!(ended.is_ok(), "{ended:?}; events {:?}", ran.described());
    assert!(ran.errors.is_empty(), "{:?}", ran.errors);
    assert!(logs.lines().is_empty(), "the runtime complained: {:#?}", logs.lines());
    ran.check_delivered("001-fig1 over UDP", &scenario.body(), &["B1", "B2", "IWF1"]);
    let delivered = ran.deliveries_at_a().iter().filter(|(_, s)| *s == DeliveryStatus::Delivered).count();
    assert_eq!(delivered, 3, "{:?}", ran.described());
}

/// Three members behind one PF(B): the L3 opener (the CF in 001-fig1, PF(B)
/// in 001-fig3) opens one connection and carries the three members'
/// sessions on it (RFC 4975 s.5.4), frames never mixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_pf_b_reuses_one_connection() {
    let logs = support::logs::capture().await;
    for (name, opener) in [("001-fig1", "CF"), ("001-fig3", "PF-B")] {
        let mut scenario = Scenario::figure(name).expect("a figure");
        scenario.members = 3;
        scenario.shared_pf_b = true;
        scenario.size = 20_000;
        let mut net = Net::start(&scenario, HostOptions::default()).await;
        let ended = net.run_to_end(LIMIT, |_| {}).await;
        let ran = net.shutdown().await;
        assert!(ended.is_ok(), "{name}: {ended:?}; events {:?}", ran.described());
        assert!(ran.errors.is_empty(), "{name}: {:?}", ran.errors);
        assert!(logs.lines().is_empty(), "{name}: the runtime complained: {:#?}", logs.lines());
        ran.check_delivered(name, &scenario.body(), &["B1", "B2", "B3"]);
        let l3: Vec<(String, bool)> = ran
            .trace()
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Connect { from, hop, reuse, .. } if hop.starts_with("L3/") => Some((from.clone(), *reuse)),
                _ => None,
            })
            .collect();
        let expected: Vec<(String, bool)> = [false, true, true].iter().map(|r| (opener.to_owned(), *r)).collect();
        assert_eq!(l3, expected, "{name}");
        let refused = ran.trace().iter().any(|e| matches!(e, TraceEvent::Msrp { msg, .. } if msg.starts_with('4')));
        assert!(!refused, "{name}: an MSRP request was refused: {:?}", ran.described());
        let delivered = ran.deliveries_at_a().iter().filter(|(_, s)| *s == DeliveryStatus::Delivered).count();
        assert_eq!(delivered, 3, "{name}: {:?}", ran.described());
        // The trace names each frame's own hop on the shared link.
        for k in 1..=3 {
            let hop = format!("L3/B{k}");
            let content: usize = ran
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
            let closes = ran.trace().iter().filter(|e| matches!(e, TraceEvent::Close { hop: h } if *h == hop)).count();
            assert_eq!(closes, 1, "{name}: closes of {hop}");
        }
    }
}

/// Three CPM members and a non-CPM one (its SMS system takes the message):
/// see [`support::net::assert_clean_delivery`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_of_cpm_and_non_cpm_members() {
    let logs = support::logs::capture().await;
    let mut scenario = Scenario::figure("001-fig1").expect("a figure");
    scenario.members = 3;
    scenario.non_cpm = 1;
    scenario.size = 20_000;
    support::net::assert_clean_delivery(&scenario, LIMIT, &logs).await;
}

/// B2's MSRP connection (L4, to PF-B2) is cut after B2 read 50 000 of the
/// message's 200 000 bytes, in the middle of a frame: B1 and B3 still get
/// the message, A gets a failure outcome for B2 (and successes for the
/// others), the CF reports B2 failed, and the session ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_link_cut_mid_message() {
    let _logs = support::logs::capture().await;
    let mut scenario = Scenario::figure("001-fig1").expect("a figure");
    scenario.members = 3;
    scenario.size = 200_000;
    let mut net = Net::prepare(&scenario, HostOptions::default()).await;
    let b2 = net.index("B2");
    // B2 reads nothing until the cut is armed on its connection (its only
    // one), so the count starts at the connection's first byte.
    net.host.hold_reading(b2, true).await;
    net.go().await;
    let deadline = tokio::time::Instant::now() + LIMIT;
    let conn = loop {
        let said = net.next(deadline).await.expect("B2's MSRP connection comes up");
        if let (true, HostEvent::LinkUp { conn, .. }) = (said.entity == b2, said.event) {
            break conn;
        }
    };
    net.host.cut_after(b2, conn, 50_000).await;
    net.host.hold_reading(b2, false).await;
    let ended = net.run_to_end(LIMIT, |_| {}).await;
    let ran = net.shutdown().await;
    assert!(ended.is_ok(), "{ended:?}; events {:?}", ran.described());
    ran.check_delivered("the cut", &scenario.body(), &["B1", "B3"]);
    assert!(!ran.deliveries().contains_key("B2"), "B2 cannot have the whole message");
    let at_a = ran.deliveries_at_a();
    for member in ["sip:b1@example.com", "sip:b3@example.com"] {
        assert!(at_a.contains(&(member.to_owned(), DeliveryStatus::Delivered)), "{member}: {at_a:?}");
    }
    assert!(
        at_a.iter().any(|(m, s)| m == "sip:b2@example.com" && *s != DeliveryStatus::Delivered),
        "no failure outcome for B2 at A: {at_a:?}"
    );
    let member = |uri: &str| {
        ran.events.iter().find_map(|(_, e)| match e {
            Event::MemberOutcome { member, outcome } if member == uri => Some(outcome.status()),
            _ => None,
        })
    };
    assert!(member("sip:b2@example.com").is_some_and(|s| s != 200), "B2's failure at the CF: {:?}", ran.described());
}

/// The sequence diagram of a run is well-formed SVG that draws every SIP
/// message, link opening and MSRP frame exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn svg_draws_every_message_once() {
    let mut scenario = Scenario::figure("001-fig2").expect("a figure");
    scenario.members = 2;
    let mut net = Net::start(&scenario, HostOptions::default()).await;
    let ended = net.run_to_end(LIMIT, |_| {}).await;
    let ran = net.shutdown().await;
    assert!(ended.is_ok(), "{ended:?}");
    let columns = cpm_roles::diagram::columns(&scenario);
    let svg = cpm_roles::diagram::svg(&columns, ran.trace());
    let messages = ran
        .trace()
        .iter()
        .filter(|e| matches!(e, TraceEvent::Sip { .. } | TraceEvent::Connect { .. } | TraceEvent::Msrp { .. }))
        .count();
    // Well-formed XML; each message is in exactly one arrow group (a run of
    // MSRP frames of one kind on one hop shares one).
    let mut reader = quick_xml::Reader::from_str(&svg);
    let (mut arrows, mut drawn, mut depth, mut root) = (0, 0, 0i32, None);
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Start(e) => {
                if root.is_none() {
                    root = Some(String::from_utf8(e.name().as_ref().to_vec()).expect("UTF-8"));
                }
                depth += 1;
                let class = e
                    .try_get_attribute("class")
                    .expect("an attribute")
                    .map(|a| a.unescape_value().expect("a value").into_owned());
                if e.name().as_ref() == b"g" && class.is_some_and(|c| c.starts_with("arrow ")) {
                    arrows += 1;
                    let count = e.try_get_attribute("data-messages").expect("an attribute").expect("data-messages");
                    drawn += count.unescape_value().expect("a value").parse::<usize>().expect("a count");
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
