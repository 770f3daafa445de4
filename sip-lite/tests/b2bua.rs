//! B2BUA legs (one inbound, three outbound) under each answer and ACK policy,
//! on a lossy datagram network and on reliable streams, and the proxy helper
//! as a "SIP/IP core" between two user agents.
#![allow(clippy::unwrap_used, reason = "test code")]

mod support;

use std::time::Duration;

use bytes::Bytes;
use sip_lite::b2bua::{self, AckPolicy, AnswerPolicy, B2bua, B2buaConfig, LastLegPolicy, Outbound};
use sip_lite::ids::{FlowId, LegId};
use sip_lite::proxy::{self, Proxy, ProxyConfig};
use sip_lite::sip::Message;
use sip_lite::transaction::Transport;
use sip_lite::ua::{self, EndReason, UaConfig, UserAgent};
use support::{seeds, Entity, Faults, Net, Report, Rng, SeedGuard};

const A_FLOW: FlowId = FlowId::new(1);
const X_IN: FlowId = FlowId::new(2);
const X_OUT: [FlowId; 3] = [FlowId::new(31), FlowId::new(32), FlowId::new(33)];
const M_FLOW: FlowId = FlowId::new(4);

struct Setup {
    net: Net,
    a: usize,
    x: usize,
    members: [usize; 3],
    handled: usize,
}

fn setup(
    seed: u64,
    faults: Faults,
    transport: Transport,
    answer: AnswerPolicy,
    ack: AckPolicy,
    last: LastLegPolicy,
) -> Setup {
    let x_ua = UaConfig::new("cf.example.com", "sip:conf@cf.example.com");
    setup_with(seed, faults, transport, B2buaConfig::new(x_ua, answer, ack, last))
}

fn setup_with(seed: u64, faults: Faults, transport: Transport, config: B2buaConfig) -> Setup {
    let mut net = Net::new(seed, faults);
    let now = net.now;
    let a = net.add(Entity::Ua(UserAgent::new(
        UaConfig::new("a.example.com", "sip:a@a.example.com"),
        now,
        Box::new(Rng::new(seed ^ 1)),
    )));
    let x = net.add(Entity::B2bua(B2bua::new(config, now, Box::new(Rng::new(seed ^ 2)))));
    net.link(a, A_FLOW, x, X_IN, transport);
    let mut members = [0; 3];
    for (i, m) in members.iter_mut().enumerate() {
        let host = format!("m{i}.example.com");
        *m = net.add(Entity::Ua(UserAgent::new(
            UaConfig::new(&host, &format!("sip:m@{host}")),
            now,
            Box::new(Rng::new(seed ^ (10 + i as u64))),
        )));
        net.link(x, X_OUT[i], *m, M_FLOW, transport);
    }
    Setup { net, a, x, members, handled: 0 }
}

fn ua_cmd(net: &mut Net, i: usize, command: ua::Command) {
    let now = net.now;
    net.ua(i).handle(now, ua::Input::Command(command)).unwrap();
    net.settle(i);
}

fn x_cmd(net: &mut Net, x: usize, command: b2bua::Command) {
    let now = net.now;
    if let Err(e) = net.b2bua(x).handle(now, b2bua::Input::Command(command.clone())) {
        net.dump();
        panic!("{e:?} for {command:?}");
    }
    net.settle(x);
}

/// Runs `steps` of 100 ms; members answer with `codes[i]` (0: never), and the
/// B2BUA accepts each call with three outbound legs.
fn drive(s: &mut Setup, transport: Transport, codes: [u16; 3], steps: usize) {
    let mut answered = [false; 3];
    for _ in 0..steps {
        s.net.run_for(Duration::from_millis(100));
        let reports: Vec<(usize, Report)> =
            s.net.reports[s.handled..].iter().map(|(_, i, r)| (*i, r.clone())).collect();
        s.handled = s.net.reports.len();
        for (i, report) in reports {
            match report {
                Report::B2bua(b2bua::Event::IncomingCall { inbound, request }) => {
                    let outbound = (0..3)
                        .map(|k| Outbound {
                            leg: LegId::new(k as u64),
                            flow: X_OUT[k],
                            transport,
                            target: format!("sip:m@m{k}.example.com"),
                            from: "sip:conf@cf.example.com".into(),
                            // Each hop's own offer (opaque here).
                            body: Bytes::from(format!("offer-{k}-{}", request.body().len())),
                            content_type: Some("application/sdp".into()),
                        })
                        .collect();
                    x_cmd(
                        &mut s.net,
                        s.x,
                        b2bua::Command::Accept {
                            inbound,
                            answer_body: Bytes::from_static(b"answer-x"),
                            content_type: Some("application/sdp".into()),
                            outbound,
                        },
                    );
                }
                Report::Ua(ua::Event::IncomingCall { leg, .. }) => {
                    let Some(k) = s.members.iter().position(|m| *m == i) else { continue };
                    if codes[k] != 0 && !answered[k] {
                        answered[k] = true;
                        let body = Bytes::from(format!("answer-{k}"));
                        ua_cmd(&mut s.net, i, ua::Command::Respond { leg, code: codes[k], body, content_type: None });
                    }
                }
                _ => {}
            }
        }
    }
}

fn call(s: &mut Setup, transport: Transport) {
    let a = s.a;
    ua_cmd(
        &mut s.net,
        a,
        ua::Command::Invite {
            leg: LegId::new(1),
            flow: A_FLOW,
            transport,
            target: "sip:conf@cf.example.com".into(),
            from: "sip:a@a.example.com".into(),
            body: Bytes::from_static(b"offer-a"),
            content_type: Some("application/sdp".into()),
        },
    );
}

fn x_events(s: &Setup) -> Vec<b2bua::Event> {
    s.net.b2bua_events(s.x).into_iter().map(|(_, e)| e).collect()
}

fn position(events: &[b2bua::Event], f: impl Fn(&b2bua::Event) -> bool) -> Option<usize> {
    events.iter().position(f)
}

/// The ordering rules of the source documents' answer and ACK policies, which hold on any network.
fn check_policies(events: &[b2bua::Event], answer: AnswerPolicy, ack: AckPolicy) {
    let inbound_answered = position(events, |e| matches!(e, b2bua::Event::InboundAnswered { .. }));
    let first_out = position(events, |e| matches!(e, b2bua::Event::OutboundAnswered { .. }));
    if let (Some(i), Some(o)) = (inbound_answered, first_out) {
        match answer {
            AnswerPolicy::Immediately => assert!(i < o, "answered at once"),
            AnswerPolicy::AfterFirstAnswer => assert!(o < i, "answered after the first outbound 2xx"),
        }
    }
    if answer == AnswerPolicy::AfterFirstAnswer && first_out.is_none() {
        assert!(inbound_answered.is_none());
    }
    let inbound_acked = position(events, |e| matches!(e, b2bua::Event::InboundAcked { .. }));
    for (n, event) in events.iter().enumerate() {
        if let b2bua::Event::OutboundAcked { leg, .. } = event {
            // Never before that leg's 2xx.
            let answered =
                position(events, |e| matches!(e, b2bua::Event::OutboundAnswered { leg: l, .. } if l == leg)).unwrap();
            assert!(answered < n, "ACK of {leg} before its 2xx");
            if ack == AckPolicy::AfterAck {
                assert!(inbound_acked.is_some_and(|i| i < n), "ACK of {leg} before the inbound ACK");
            } else {
                // On 200: sent while handling that 2xx (only the inbound answer may come between).
                assert!(
                    events[answered + 1..n].iter().all(|e| matches!(e, b2bua::Event::InboundAnswered { .. })),
                    "on-200: the ACK of {leg} waited"
                );
            }
        }
    }
}

fn ended(net: &Net, i: usize) -> Vec<EndReason> {
    net.ua_events(i)
        .iter()
        .filter_map(|(_, e)| match e {
            ua::Event::Ended { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

fn fan_out_flow(seed: u64, faults: Faults, transport: Transport, answer: AnswerPolicy, ack: AckPolicy) {
    let mut s = setup(seed, faults, transport, answer, ack, LastLegPolicy::EndInbound);
    call(&mut s, transport);
    // Members 0 and 1 answer, member 2 is busy.
    drive(&mut s, transport, [200, 200, 486], 150);
    let events = x_events(&s);
    check_policies(&events, answer, ack);
    let clean = faults.drop == 0.0;
    if clean {
        let failed: Vec<_> = events.iter().filter(|e| matches!(e, b2bua::Event::OutboundEnded { .. })).collect();
        assert_eq!(
            failed,
            [&b2bua::Event::OutboundEnded {
                inbound: inbound_of(&events),
                leg: LegId::new(2),
                reason: EndReason::Rejected { status: 486 }
            }]
        );
        let acked = events.iter().filter(|e| matches!(e, b2bua::Event::OutboundAcked { .. })).count();
        assert_eq!(acked, 2, "{events:?}");
        assert!(s
            .net
            .ua_events(s.a)
            .iter()
            .any(|(_, e)| matches!(e, ua::Event::Answered { response, .. } if response.body() == "answer-x")));
    }
    // The caller hangs up: every outbound leg ends with it.
    let a = s.a;
    if s.net.ua(a).leg_count() == 1 {
        ua_cmd(&mut s.net, a, ua::Command::End { leg: LegId::new(1) });
    }
    drive(&mut s, transport, [0; 3], 1500);
    let events = x_events(&s);
    check_policies(&events, answer, ack);
    if clean {
        assert!(events.iter().any(|e| matches!(e, b2bua::Event::InboundEnded { reason: EndReason::RemoteBye, .. })));
        assert_eq!(ended(&s.net, s.members[0]), [EndReason::RemoteBye]);
        assert_eq!(ended(&s.net, s.members[1]), [EndReason::RemoteBye]);
        assert_eq!(ended(&s.net, s.members[2]), [EndReason::Rejected { status: 486 }]);
    }
    // Whatever was lost, every leg and transaction ends. A member that never
    // heard the CANCEL or BYE still rings: its user ends it.
    for m in s.members {
        let legs: Vec<LegId> = s
            .net
            .ua_events(m)
            .iter()
            .filter_map(|(_, e)| match e {
                ua::Event::IncomingCall { leg, .. } => Some(*leg),
                _ => None,
            })
            .collect();
        for leg in legs {
            if s.net.ua(m).invite(leg).is_some() {
                ua_cmd(&mut s.net, m, ua::Command::End { leg });
            }
        }
    }
    drive(&mut s, transport, [0; 3], 1500);
    assert!(s.net.b2bua(s.x).is_idle(), "{:?}", s.net.b2bua(s.x));
    for i in [s.a, s.members[0], s.members[1], s.members[2]] {
        assert!(s.net.ua(i).is_idle(), "entity {i}: {:?}", s.net.ua(i));
    }
}

fn inbound_of(events: &[b2bua::Event]) -> LegId {
    events
        .iter()
        .find_map(|e| match e {
            b2bua::Event::IncomingCall { inbound, .. } => Some(*inbound),
            _ => None,
        })
        .unwrap()
}

const POLICIES: [(AnswerPolicy, AckPolicy); 4] = [
    (AnswerPolicy::Immediately, AckPolicy::On200),
    (AnswerPolicy::Immediately, AckPolicy::AfterAck),
    (AnswerPolicy::AfterFirstAnswer, AckPolicy::On200),
    (AnswerPolicy::AfterFirstAnswer, AckPolicy::AfterAck),
];

#[test]
fn fan_out_each_policy_clean_datagrams() {
    for (answer, ack) in POLICIES {
        fan_out_flow(0, Faults::NONE, Transport::Unreliable, answer, ack);
    }
}

#[test]
fn fan_out_each_policy_reliable() {
    for (answer, ack) in POLICIES {
        fan_out_flow(0, Faults::NONE, Transport::Reliable, answer, ack);
    }
}

#[test]
fn fan_out_each_policy_lossy() {
    for seed in seeds(8) {
        let _guard = SeedGuard(seed);
        for (answer, ack) in POLICIES {
            fan_out_flow(seed, Faults::LOSSY, Transport::Unreliable, answer, ack);
        }
    }
}

#[test]
fn last_outbound_failure_ends_inbound() {
    for last in [LastLegPolicy::EndInbound, LastLegPolicy::KeepInbound] {
        let mut s =
            setup(0, Faults::NONE, Transport::Unreliable, AnswerPolicy::AfterFirstAnswer, AckPolicy::AfterAck, last);
        call(&mut s, Transport::Unreliable);
        drive(&mut s, Transport::Unreliable, [486, 603, 480], 50);
        let events = x_events(&s);
        let failures = events.iter().filter(|e| matches!(e, b2bua::Event::OutboundEnded { .. })).count();
        assert_eq!(failures, 3);
        match last {
            // The inbound leg gets the last failure's status.
            LastLegPolicy::EndInbound => {
                let a_end = ended(&s.net, s.a);
                assert_eq!(a_end.len(), 1);
                assert!(matches!(a_end[0], EndReason::Rejected { status: 486 | 603 | 480 }));
            }
            LastLegPolicy::KeepInbound => {
                assert!(ended(&s.net, s.a).is_empty());
                let inbound = inbound_of(&events);
                x_cmd(&mut s.net, s.x, b2bua::Command::Hangup { inbound });
                drive(&mut s, Transport::Unreliable, [0; 3], 50);
                assert_eq!(ended(&s.net, s.a), [EndReason::Rejected { status: 480 }]);
            }
        }
        drive(&mut s, Transport::Unreliable, [0; 3], 1200);
        assert!(s.net.b2bua(s.x).is_idle());
    }
}

/// Members that ring and never answer: each outbound leg is CANCELled when
/// the INVITE timeout runs out and ends TimedOut, and the inbound leg then
/// gets 408 (the last leg's failure).
#[test]
fn members_that_ring_forever_time_out() {
    let mut x_ua = UaConfig::new("cf.example.com", "sip:conf@cf.example.com");
    x_ua.set_invite_timeout(Duration::from_secs(60));
    let config = B2buaConfig::new(x_ua, AnswerPolicy::AfterFirstAnswer, AckPolicy::AfterAck, LastLegPolicy::EndInbound);
    let mut s = setup_with(0, Faults::NONE, Transport::Reliable, config);
    call(&mut s, Transport::Reliable);
    drive(&mut s, Transport::Reliable, [180; 3], 590);
    assert!(ended(&s.net, s.a).is_empty(), "still ringing before the timeout");
    drive(&mut s, Transport::Reliable, [180; 3], 20);
    let timed_out = x_events(&s)
        .iter()
        .filter(|e| matches!(e, b2bua::Event::OutboundEnded { reason: EndReason::TimedOut, .. }))
        .count();
    assert_eq!(timed_out, 3);
    assert_eq!(ended(&s.net, s.a), [EndReason::Rejected { status: 408 }]);
    for m in s.members {
        assert_eq!(ended(&s.net, m), [EndReason::Cancelled], "each member got the CANCEL");
    }
    drive(&mut s, Transport::Reliable, [0; 3], 400);
    assert!(s.net.b2bua(s.x).is_idle());
}

#[test]
fn outbound_bye_ends_that_leg_alone_and_cancel_fans_out() {
    // A member hangs up: only its leg ends.
    let mut s = setup(
        0,
        Faults::NONE,
        Transport::Reliable,
        AnswerPolicy::Immediately,
        AckPolicy::On200,
        LastLegPolicy::EndInbound,
    );
    call(&mut s, Transport::Reliable);
    drive(&mut s, Transport::Reliable, [200, 200, 200], 20);
    let m0 = s.members[0];
    let leg = s
        .net
        .ua_events(m0)
        .iter()
        .find_map(|(_, e)| match e {
            ua::Event::IncomingCall { leg, .. } => Some(*leg),
            _ => None,
        })
        .unwrap();
    ua_cmd(&mut s.net, m0, ua::Command::End { leg });
    drive(&mut s, Transport::Reliable, [0; 3], 20);
    let events = x_events(&s);
    assert!(events.iter().any(
        |e| matches!(e, b2bua::Event::OutboundEnded { leg, reason: EndReason::RemoteBye, .. } if *leg == LegId::new(0))
    ));
    assert!(!events.iter().any(|e| matches!(e, b2bua::Event::InboundEnded { .. })));
    assert!(ended(&s.net, s.members[1]).is_empty());

    // CANCEL from the caller while every member rings: every outbound leg is CANCELled.
    let mut s = setup(
        0,
        Faults::NONE,
        Transport::Reliable,
        AnswerPolicy::AfterFirstAnswer,
        AckPolicy::AfterAck,
        LastLegPolicy::EndInbound,
    );
    call(&mut s, Transport::Reliable);
    drive(&mut s, Transport::Reliable, [180, 180, 180], 20);
    ua_cmd(&mut s.net, s.a, ua::Command::End { leg: LegId::new(1) });
    drive(&mut s, Transport::Reliable, [0; 3], 40);
    assert_eq!(ended(&s.net, s.a), [EndReason::Cancelled]);
    for m in s.members {
        assert_eq!(ended(&s.net, m), [EndReason::Cancelled]);
    }
    let events = x_events(&s);
    assert!(events.iter().any(|e| matches!(e, b2bua::Event::InboundEnded { reason: EndReason::Cancelled, .. })));
    assert_eq!(
        events.iter().filter(|e| matches!(e, b2bua::Event::OutboundEnded { reason: EndReason::Cancelled, .. })).count(),
        3
    );
    drive(&mut s, Transport::Reliable, [0; 3], 400);
    assert!(s.net.b2bua(s.x).is_idle());
}

// ----- proxy -----------------------------------------------------------------

const PA: FlowId = FlowId::new(71);
const PB: FlowId = FlowId::new(72);

fn proxied(seed: u64, faults: Faults, transport: Transport) -> (Net, usize, usize, usize) {
    let mut net = Net::new(seed, faults);
    let now = net.now;
    let a = net.add(Entity::Ua(UserAgent::new(
        UaConfig::new("a.example.com", "sip:a@a.example.com"),
        now,
        Box::new(Rng::new(seed ^ 1)),
    )));
    let b = net.add(Entity::Ua(UserAgent::new(
        UaConfig::new("b.example.com", "sip:b@b.example.com"),
        now,
        Box::new(Rng::new(seed ^ 2)),
    )));
    let mut config = ProxyConfig::new("core.example.com");
    config.add_route("a.example.com", PA, transport).add_route("b.example.com", PB, transport);
    // The selection function retargets the service URI to B.
    config.add_rewrite("sip:service@core.example.com", "sip:b@b.example.com");
    let p = net.add(Entity::Proxy(Proxy::new(config, now, Box::new(Rng::new(seed ^ 3)))));
    net.link(a, A_FLOW, p, PA, transport);
    net.link(b, M_FLOW, p, PB, transport);
    (net, a, b, p)
}

fn proxy_flow(seed: u64, faults: Faults, transport: Transport) {
    let (mut net, a, b, p) = proxied(seed, faults, transport);
    ua_cmd(
        &mut net,
        a,
        ua::Command::Invite {
            leg: LegId::new(1),
            flow: A_FLOW,
            transport,
            target: "sip:service@core.example.com".into(),
            from: "sip:a@a.example.com".into(),
            body: Bytes::new(),
            content_type: None,
        },
    );
    let mut answered = false;
    for _ in 0..200 {
        net.run_for(Duration::from_millis(100));
        let leg = net.ua_events(b).iter().find_map(|(_, e)| match e {
            ua::Event::IncomingCall { leg, request } => Some((*leg, request.clone())),
            _ => None,
        });
        if let (Some((leg, request)), false) = (leg, answered) {
            // Retargeted, Record-Routed, Via pushed, Max-Forwards decremented.
            assert_eq!(request.request_uri_str(), Some("sip:b@b.example.com"));
            assert_eq!(request.header_values("Record-Route").collect::<Vec<_>>(), ["<sip:core.example.com;lr>"]);
            assert_eq!(request.vias().count(), 2);
            assert_eq!(request.max_forwards(), Some(69));
            ua_cmd(&mut net, b, ua::Command::Respond { leg, code: 200, body: Bytes::new(), content_type: None });
            answered = true;
        }
    }
    let clean = faults.drop == 0.0;
    if clean {
        // A's dialog routes through the proxy.
        assert_eq!(net.ua(a).dialog(LegId::new(1)).unwrap().route_set(), ["<sip:core.example.com;lr>"]);
    }
    // B hangs up: the BYE goes through the proxy (Route) to A's Contact.
    let leg_b = net.ua_events(b).iter().find_map(|(_, e)| match e {
        ua::Event::IncomingCall { leg, .. } => Some(*leg),
        _ => None,
    });
    if let Some(leg_b) = leg_b {
        if net.ua(b).leg_count() == 1 {
            ua_cmd(&mut net, b, ua::Command::End { leg: leg_b });
        }
    }
    net.run_for(Duration::from_secs(120));
    let forwarded: Vec<String> = net
        .reports
        .iter()
        .filter_map(|(_, _, r)| match r {
            Report::Proxy(proxy::Event::Forwarded { method, .. }) => Some(method.clone()),
            _ => None,
        })
        .collect();
    if clean {
        assert_eq!(forwarded, ["INVITE", "ACK", "BYE"]);
        assert_eq!(ended(&net, a), [EndReason::RemoteBye]);
        assert_eq!(ended(&net, b), [EndReason::LocalBye]);
    }
    assert!(net.proxy(p).is_idle());
    assert!(net.ua(a).transactions().is_idle() && net.ua(b).transactions().is_idle());
}

#[test]
fn proxy_between_two_uas() {
    proxy_flow(0, Faults::NONE, Transport::Unreliable);
    proxy_flow(0, Faults::NONE, Transport::Reliable);
    for seed in seeds(10) {
        let _guard = SeedGuard(seed);
        proxy_flow(seed, Faults::LOSSY, Transport::Unreliable);
    }
}

#[test]
fn proxy_max_forwards_zero_gets_483() {
    let (mut net, _a, _b, p) = proxied(0, Faults::NONE, Transport::Reliable);
    let text = "MESSAGE sip:b@b.example.com SIP/2.0\r\nVia: SIP/2.0/TCP a.example.com;branch=z9hG4bKmf\r\n\
Max-Forwards: 0\r\nFrom: <sip:a@a.example.com>;tag=1\r\nTo: <sip:b@b.example.com>\r\nCall-ID: mf\r\n\
CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n";
    let message = Message::parse(Bytes::from_static(text.as_bytes())).unwrap();
    let now = net.now;
    net.proxy(p).handle(now, proxy::Input::Received { flow: PA, transport: Transport::Reliable, message }).unwrap();
    net.settle(p);
    assert_eq!(net.wire.last().unwrap().2, "SIP/2.0 483 Too Many Hops");
}
