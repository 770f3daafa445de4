//! RFC 3261 s.17 transactions and s.12-s.15 user agents in virtual time:
//! exact timer behaviour against a silent peer, then whole calls on a lossy
//! datagram network (many seeds) and on a reliable stream.
#![allow(clippy::unwrap_used, reason = "test code")]

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use sip_lite::ids::{ClientId, FlowId, LegId, RequestId};
use sip_lite::sip::{Message, MessageBuilder};
use sip_lite::transaction::{Command, Event, Input, Output, TransactionConfig, TransactionLayer, Transport};
use sip_lite::ua::{self, EndReason, UaConfig, UserAgent};
use support::{seeds, Entity, Faults, Net, Rng, SeedGuard};

const FLOW: FlowId = FlowId::new(1);

fn msg(text: &str) -> Message {
    Message::parse(Bytes::from(text.replace('\n', "\r\n"))).unwrap()
}

fn invite(branch: &str) -> Message {
    msg(&format!(
        "INVITE sip:b@h SIP/2.0
Via: SIP/2.0/UDP a.example.com;branch={branch}
Max-Forwards: 70
From: <sip:a@h>;tag=1
To: <sip:b@h>
Call-ID: c1
CSeq: 1 INVITE
Contact: <sip:a@a.example.com>
Content-Length: 0

"
    ))
}

fn request(method: &str, branch: &str) -> Message {
    let text = format!(
        "{method} sip:b@h SIP/2.0
Via: SIP/2.0/UDP a.example.com;branch={branch}
Max-Forwards: 70
From: <sip:a@h>;tag=1
To: <sip:b@h>
Call-ID: c1
CSeq: 1 {method}
Content-Length: 0

"
    );
    msg(&text)
}

fn reply(request: &Message, code: u16) -> Message {
    MessageBuilder::response_to(request, code, "R", Some("t9")).build().unwrap()
}

/// Drives one layer alone: what it sent and reported, with times.
struct Solo {
    start: Instant,
    now: Instant,
    layer: TransactionLayer,
    sent: Vec<(Duration, String)>,
    events: Vec<(Duration, Event)>,
}

impl Solo {
    fn new() -> Self {
        let start = support::epoch();
        Self {
            start,
            now: start,
            layer: TransactionLayer::new(TransactionConfig::default(), start),
            sent: vec![],
            events: vec![],
        }
    }
    fn input(&mut self, input: Input) {
        self.layer.handle(self.now, input).unwrap();
        self.drain();
    }
    fn drain(&mut self) {
        let at = self.now - self.start;
        while let Some(output) = self.layer.poll_output() {
            match output {
                Output::Transmit { bytes, .. } => {
                    let line = String::from_utf8_lossy(&bytes).lines().next().unwrap().to_owned();
                    self.sent.push((at, line));
                }
                Output::Event(event) => self.events.push((at, event)),
            }
        }
    }
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(at) = self.layer.poll_timeout().filter(|t| *t <= until) {
            self.now = at;
            self.layer.handle(self.now, Input::Timeout).unwrap();
            self.drain();
        }
        self.now = until;
    }
    fn sent_times(&self, starts: &str) -> Vec<u64> {
        self.sent.iter().filter(|(_, l)| l.starts_with(starts)).map(|(t, _)| t.as_millis() as u64).collect()
    }
}

fn ms(v: &[u64]) -> Vec<u64> {
    v.to_vec()
}

#[test]
fn invite_client_timer_a_and_b_unreliable() {
    let mut solo = Solo::new();
    let request = invite("z9hG4bKa");
    solo.input(Input::Command(Command::Request {
        id: ClientId::new(1),
        flow: FLOW,
        transport: Transport::Unreliable,
        request,
    }));
    solo.advance(Duration::from_secs(40));
    // s.17.1.1.2: A = T1 doubling; B = 64*T1 = 32 s.
    assert_eq!(solo.sent_times("INVITE"), ms(&[0, 500, 1500, 3500, 7500, 15500, 31500]));
    assert_eq!(solo.events, vec![(Duration::from_secs(32), Event::ClientTimedOut { client: ClientId::new(1) })]);
    assert!(solo.layer.is_idle());
    assert_eq!(solo.layer.poll_timeout(), None);
}

#[test]
fn invite_client_reliable_has_no_retransmissions() {
    let mut solo = Solo::new();
    let request = invite("z9hG4bKa");
    solo.input(Input::Command(Command::Request {
        id: ClientId::new(1),
        flow: FLOW,
        transport: Transport::Reliable,
        request,
    }));
    solo.advance(Duration::from_secs(40));
    assert_eq!(solo.sent_times("INVITE"), ms(&[0]));
    assert_eq!(solo.events, vec![(Duration::from_secs(32), Event::ClientTimedOut { client: ClientId::new(1) })]);
}

#[test]
fn non_invite_client_timer_e_and_f() {
    for (transport, want) in [
        (Transport::Unreliable, ms(&[0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500])),
        (Transport::Reliable, ms(&[0])),
    ] {
        let mut solo = Solo::new();
        let request = request("MESSAGE", "z9hG4bKm");
        solo.input(Input::Command(Command::Request { id: ClientId::new(2), flow: FLOW, transport, request }));
        solo.advance(Duration::from_secs(40));
        // s.17.1.2.2: E doubles up to T2 = 4 s; F = 32 s.
        assert_eq!(solo.sent_times("MESSAGE"), want);
        assert_eq!(solo.events, vec![(Duration::from_secs(32), Event::ClientTimedOut { client: ClientId::new(2) })]);
    }
}

#[test]
fn non_invite_client_proceeding_and_timer_k() {
    let mut solo = Solo::new();
    let request = request("MESSAGE", "z9hG4bKm");
    solo.input(Input::Command(Command::Request {
        id: ClientId::new(2),
        flow: FLOW,
        transport: Transport::Unreliable,
        request: request.clone(),
    }));
    solo.advance(Duration::from_millis(600));
    solo.input(Input::Received { flow: FLOW, transport: Transport::Unreliable, message: reply(&request, 100) });
    solo.advance(Duration::from_millis(5000));
    // E keeps its schedule (1.5 s) after the 1xx; fired in Proceeding it is T2.
    assert_eq!(solo.sent_times("MESSAGE"), ms(&[0, 500, 1500, 5500]));
    solo.input(Input::Received { flow: FLOW, transport: Transport::Unreliable, message: reply(&request, 200) });
    // A retransmitted final is absorbed; K = T4 = 5 s.
    solo.input(Input::Received { flow: FLOW, transport: Transport::Unreliable, message: reply(&request, 200) });
    let finals = solo.events.iter().filter(|(_, e)| matches!(e, Event::ResponseReceived { .. })).count();
    assert_eq!(finals, 2, "100 and one 200");
    solo.advance(Duration::from_millis(4999));
    assert!(!solo.layer.is_idle());
    solo.advance(Duration::from_millis(1));
    assert!(solo.layer.is_idle());
}

#[test]
fn invite_client_non_2xx_acks_and_timer_d() {
    for (transport, d) in [(Transport::Unreliable, 32_000), (Transport::Reliable, 0)] {
        let mut solo = Solo::new();
        let request = invite("z9hG4bKa");
        solo.input(Input::Command(Command::Request {
            id: ClientId::new(1),
            flow: FLOW,
            transport,
            request: request.clone(),
        }));
        solo.input(Input::Received { flow: FLOW, transport, message: reply(&request, 486) });
        // s.17.1.1.3: the transaction ACKs, with the To tag of the response.
        assert_eq!(solo.sent_times("ACK"), ms(&[0]));
        if transport == Transport::Unreliable {
            solo.advance(Duration::from_secs(1));
            solo.input(Input::Received { flow: FLOW, transport, message: reply(&request, 486) });
            assert_eq!(solo.sent_times("ACK"), ms(&[0, 1000]), "ACK again for the retransmitted 486");
            solo.advance(Duration::from_millis(d - 1001));
            assert!(!solo.layer.is_idle());
            solo.advance(Duration::from_millis(1));
        }
        assert!(solo.layer.is_idle());
        let passed = solo.events.iter().filter(|(_, e)| matches!(e, Event::ResponseReceived { .. })).count();
        assert_eq!(passed, 1);
    }
}

#[test]
fn invite_client_accepted_passes_every_2xx_and_timer_m() {
    let mut solo = Solo::new();
    let request = invite("z9hG4bKa");
    let t = Transport::Unreliable;
    solo.input(Input::Command(Command::Request {
        id: ClientId::new(1),
        flow: FLOW,
        transport: t,
        request: request.clone(),
    }));
    solo.input(Input::Received { flow: FLOW, transport: t, message: reply(&request, 200) });
    solo.input(Input::Received { flow: FLOW, transport: t, message: reply(&request, 200) });
    // RFC 6026: both 2xx go to the TU, no ACK from the transaction, no retransmission.
    assert_eq!(solo.events.len(), 2);
    assert!(solo.sent_times("ACK").is_empty());
    solo.advance(Duration::from_secs(31));
    assert_eq!(solo.sent_times("INVITE"), ms(&[0]));
    assert!(!solo.layer.is_idle());
    solo.advance(Duration::from_secs(1));
    assert!(solo.layer.is_idle());
    // After Timer M, a 2xx is a stray for the core.
    solo.input(Input::Received { flow: FLOW, transport: t, message: reply(&request, 200) });
    assert!(matches!(solo.events.last(), Some((_, Event::StrayResponse { .. }))));
}

#[test]
fn invite_server_trying_after_200ms() {
    let mut solo = Solo::new();
    let t = Transport::Unreliable;
    solo.input(Input::Received { flow: FLOW, transport: t, message: invite("z9hG4bKs") });
    solo.advance(Duration::from_millis(199));
    assert!(solo.sent.is_empty());
    solo.advance(Duration::from_millis(1));
    assert_eq!(solo.sent, vec![(Duration::from_millis(200), "SIP/2.0 100 Trying".to_owned())]);
    // A retransmitted INVITE gets the last provisional again.
    solo.input(Input::Received { flow: FLOW, transport: t, message: invite("z9hG4bKs") });
    assert_eq!(solo.sent.len(), 2);
    assert_eq!(solo.events.len(), 1, "the retransmission is absorbed");

    // Answered within 200 ms: no 100.
    let mut solo = Solo::new();
    solo.input(Input::Received { flow: FLOW, transport: t, message: invite("z9hG4bKs") });
    let Event::RequestReceived { server, request, .. } = solo.events[0].1.clone() else { panic!() };
    solo.advance(Duration::from_millis(100));
    solo.input(Input::Command(Command::Respond { server, response: reply(&request, 180) }));
    solo.advance(Duration::from_secs(1));
    assert_eq!(solo.sent, vec![(Duration::from_millis(100), "SIP/2.0 180 R".to_owned())]);
}

#[test]
fn invite_server_non_2xx_timer_g_h_and_ack_timer_i() {
    // No ACK: G = T1 doubling to T2, H = 32 s.
    let mut solo = Solo::new();
    let t = Transport::Unreliable;
    solo.input(Input::Received { flow: FLOW, transport: t, message: invite("z9hG4bKs") });
    let Event::RequestReceived { server, request, .. } = solo.events[0].1.clone() else { panic!() };
    solo.input(Input::Command(Command::Respond { server, response: reply(&request, 486) }));
    solo.advance(Duration::from_secs(40));
    assert_eq!(
        solo.sent_times("SIP/2.0 486"),
        ms(&[0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500])
    );
    assert_eq!(solo.events.last().unwrap(), &(Duration::from_secs(32), Event::ServerTimedOut { server }));
    assert!(solo.layer.is_idle());

    // ACK at 1 s: Confirmed, retransmissions stop, I = T4 = 5 s; the ACK is absorbed.
    let mut solo = Solo::new();
    solo.input(Input::Received { flow: FLOW, transport: t, message: invite("z9hG4bKs") });
    let Event::RequestReceived { server, request, .. } = solo.events[0].1.clone() else { panic!() };
    solo.input(Input::Command(Command::Respond { server, response: reply(&request, 486) }));
    solo.advance(Duration::from_secs(1));
    let ack = msg(&request.as_bytes().escape_ascii().to_string().replace("\\r\\n", "\n").replace("INVITE", "ACK"));
    solo.input(Input::Received { flow: FLOW, transport: t, message: ack.clone() });
    solo.input(Input::Received { flow: FLOW, transport: t, message: ack });
    solo.advance(Duration::from_millis(4999));
    assert_eq!(solo.sent_times("SIP/2.0 486"), ms(&[0, 500]));
    assert!(!solo.layer.is_idle());
    solo.advance(Duration::from_millis(1));
    assert!(solo.layer.is_idle());
    assert_eq!(solo.events.len(), 1, "ACKs of a non-2xx never reach the TU");
}

#[test]
fn invite_server_accepted_absorbs_and_passes_ack() {
    let mut solo = Solo::new();
    let t = Transport::Reliable;
    solo.input(Input::Received { flow: FLOW, transport: t, message: invite("z9hG4bKs") });
    let Event::RequestReceived { server, request: inv, .. } = solo.events[0].1.clone() else { panic!() };
    solo.input(Input::Command(Command::Respond { server, response: reply(&inv, 200) }));
    solo.input(Input::Received { flow: FLOW, transport: t, message: invite("z9hG4bKs") });
    // The core's 2xx retransmission passes through in Accepted.
    solo.input(Input::Command(Command::Respond { server, response: reply(&inv, 200) }));
    assert_eq!(solo.sent_times("SIP/2.0 200"), ms(&[0, 0]));
    assert_eq!(solo.events.len(), 1, "the retransmitted INVITE is absorbed");
    // An ACK with a new branch (the 2xx ACK) goes to the TU.
    let ack = request("ACK", "z9hG4bKnew");
    solo.input(Input::Received { flow: FLOW, transport: t, message: ack });
    assert!(matches!(solo.events.last(), Some((_, Event::AckReceived { server: None, .. }))));
    solo.advance(Duration::from_secs(32));
    assert!(solo.layer.is_idle(), "Timer L");
}

#[test]
fn non_invite_server_absorbs_and_timer_j() {
    for (transport, j) in [(Transport::Unreliable, 32_000), (Transport::Reliable, 0)] {
        let mut solo = Solo::new();
        solo.input(Input::Received { flow: FLOW, transport, message: request("MESSAGE", "z9hG4bKq") });
        solo.input(Input::Received { flow: FLOW, transport, message: request("MESSAGE", "z9hG4bKq") });
        assert!(solo.sent.is_empty(), "Trying absorbs retransmissions");
        let Event::RequestReceived { server, request, .. } = solo.events[0].1.clone() else { panic!() };
        solo.input(Input::Command(Command::Respond { server, response: reply(&request, 200) }));
        if transport == Transport::Unreliable {
            solo.input(Input::Received { flow: FLOW, transport, message: request.clone() });
            assert_eq!(solo.sent_times("SIP/2.0 200"), ms(&[0, 0]));
            solo.advance(Duration::from_millis(j - 1));
            assert!(!solo.layer.is_idle());
            solo.advance(Duration::from_millis(1));
        }
        assert!(solo.layer.is_idle());
        assert_eq!(solo.events.len(), 1);
    }
}

#[test]
fn cancel_matches_invite_and_rfc2543_fallback() {
    let mut solo = Solo::new();
    let t = Transport::Unreliable;
    solo.input(Input::Received { flow: FLOW, transport: t, message: invite("z9hG4bKs") });
    solo.input(Input::Received { flow: FLOW, transport: t, message: request("CANCEL", "z9hG4bKs") });
    let Event::RequestReceived { server: invite_server, .. } = solo.events[0].1 else { panic!() };
    let Event::RequestReceived { cancels, .. } = solo.events[1].1 else { panic!() };
    assert_eq!(cancels, Some(invite_server));

    // RFC 2543 (no magic cookie): the retransmission still matches.
    let mut solo = Solo::new();
    let old = invite("1234");
    solo.input(Input::Received { flow: FLOW, transport: t, message: old.clone() });
    solo.input(Input::Received { flow: FLOW, transport: t, message: old });
    assert_eq!(solo.events.len(), 1);
    // A request with no branch at all too.
    let mut solo = Solo::new();
    let text = String::from_utf8(invite("x").as_bytes().to_vec()).unwrap().replace(";branch=x", "");
    let bare = Message::parse(Bytes::from(text)).unwrap();
    solo.input(Input::Received { flow: FLOW, transport: t, message: bare.clone() });
    solo.input(Input::Received { flow: FLOW, transport: t, message: bare });
    assert_eq!(solo.events.len(), 1);
}

#[test]
fn usage_errors_and_clamped_time() {
    let start = support::epoch();
    let mut layer = TransactionLayer::new(TransactionConfig::default(), start + Duration::from_secs(10));
    let ack = request("ACK", "z9hG4bKa");
    let no_cookie = invite("abc");
    let c = |request| {
        Input::Command(Command::Request { id: ClientId::new(1), flow: FLOW, transport: Transport::Reliable, request })
    };
    assert!(layer.handle(start, c(ack)).is_err());
    assert!(layer.handle(start, c(no_cookie)).is_err());
    layer.handle(start, c(invite("z9hG4bKa"))).unwrap();
    assert!(layer.handle(start, c(invite("z9hG4bKb"))).is_err(), "duplicate id");
    // `now` before the last one is clamped: Timer B counts from 10 s.
    assert_eq!(layer.poll_timeout(), Some(start + Duration::from_secs(42)));
}

#[cfg(feature = "fuzzing")]
#[test]
fn fuzz_entry_smoke() {
    let mut rng = Rng::new(7);
    for _ in 0..300 {
        let len = rng.range(0, 200) as usize;
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        sip_lite::transaction::sip_transaction(&data);
    }
}

// ----- user agents on the simulated network -----------------------------------

const A_FLOW: FlowId = FlowId::new(10);
const B_FLOW: FlowId = FlowId::new(20);

fn two_uas(seed: u64, faults: Faults, transport: Transport) -> (Net, usize, usize) {
    let mut net = Net::new(seed, faults);
    let now = net.now;
    let a = net.add(Entity::Ua(UserAgent::new(
        UaConfig::new("a.example.com", "sip:alice@a.example.com"),
        now,
        Box::new(Rng::new(seed ^ 0xA)),
    )));
    let b = net.add(Entity::Ua(UserAgent::new(
        UaConfig::new("b.example.com", "sip:bob@b.example.com"),
        now,
        Box::new(Rng::new(seed ^ 0xB)),
    )));
    net.link(a, A_FLOW, b, B_FLOW, transport);
    (net, a, b)
}

fn ua_cmd(net: &mut Net, i: usize, command: ua::Command) {
    let now = net.now;
    net.ua(i).handle(now, ua::Input::Command(command)).unwrap();
    net.settle(i);
}

fn call(net: &mut Net, a: usize, transport: Transport) {
    ua_cmd(
        net,
        a,
        ua::Command::Invite {
            leg: LegId::new(1),
            flow: A_FLOW,
            transport,
            target: "sip:bob@b.example.com".into(),
            from: "sip:alice@a.example.com".into(),
            body: Bytes::from_static(b"offer"),
            content_type: Some("application/sdp".into()),
        },
    );
}

fn incoming(net: &Net, b: usize) -> Option<LegId> {
    net.ua_events(b).iter().find_map(|(_, e)| match e {
        ua::Event::IncomingCall { leg, .. } => Some(*leg),
        _ => None,
    })
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

/// Runs until `b` has an incoming call (the INVITE may be lost a few times).
fn until_incoming(net: &mut Net, b: usize) -> Option<LegId> {
    for _ in 0..400 {
        if let Some(leg) = incoming(net, b) {
            return Some(leg);
        }
        net.run_for(Duration::from_millis(100));
    }
    None
}

fn answer(net: &mut Net, b: usize, leg: LegId) {
    ua_cmd(net, b, ua::Command::Respond { leg, code: 200, body: Bytes::from_static(b"answer"), content_type: None });
}

fn assert_quiet(net: &mut Net, uas: &[usize]) {
    net.run_for(Duration::from_secs(120));
    for &i in uas {
        assert!(net.ua(i).is_idle(), "entity {i} not idle: {:?}", net.ua(i));
    }
}

fn bye_flow(seed: u64, faults: Faults, transport: Transport, caller_hangs_up: bool) {
    let (mut net, a, b) = two_uas(seed, faults, transport);
    call(&mut net, a, transport);
    let Some(leg_b) = until_incoming(&mut net, b) else {
        // Every INVITE copy lost: the call times out exactly at Timer B.
        assert_eq!(ended(&net, a), [EndReason::TimedOut]);
        return;
    };
    net.run_for(Duration::from_millis(300));
    answer(&mut net, b, leg_b);
    net.run_for(Duration::from_secs(40));
    let a_events = net.ua_events(a);
    let answered = a_events.iter().filter(|(_, e)| matches!(e, ua::Event::Answered { .. })).count();
    assert_eq!(answered, 1, "one Answered however many 2xx copies");
    if !net.ua_events(b).iter().any(|(_, e)| matches!(e, ua::Event::Acked { .. })) {
        // Every 2xx or ACK copy lost for 64*T1: B ends the session with BYE (s.13.3.1.4).
        net.run_for(Duration::from_secs(60));
        assert_eq!(ended(&net, b), [EndReason::NoAck]);
        assert_quiet(&mut net, &[a, b]);
        return;
    }
    if caller_hangs_up {
        ua_cmd(&mut net, a, ua::Command::End { leg: LegId::new(1) });
    } else {
        ua_cmd(&mut net, b, ua::Command::End { leg: leg_b });
    }
    net.run_for(Duration::from_secs(40));
    let (hanger, other) = if caller_hangs_up { (a, b) } else { (b, a) };
    let local = ended(&net, hanger);
    assert_eq!(local.len(), 1);
    // The BYE completes, or (every copy lost) times out at Timer F.
    assert!(matches!(local[0], EndReason::LocalBye), "{local:?}");
    let remote = ended(&net, other);
    assert!(remote.is_empty() || remote == [EndReason::RemoteBye], "{remote:?}");
    assert_quiet(&mut net, &[a, b]);
}

#[test]
fn call_and_bye_from_caller_lossy() {
    for seed in seeds(40) {
        let _guard = SeedGuard(seed);
        bye_flow(seed, Faults::LOSSY, Transport::Unreliable, true);
    }
}

#[test]
fn call_and_bye_from_callee_lossy() {
    for seed in seeds(40) {
        let _guard = SeedGuard(seed);
        bye_flow(seed, Faults::LOSSY, Transport::Unreliable, false);
    }
}

#[test]
fn call_and_bye_reliable() {
    for caller in [true, false] {
        let _guard = SeedGuard(0);
        bye_flow(0, Faults::NONE, Transport::Reliable, caller);
    }
}

#[test]
fn clean_call_transcript() {
    let (mut net, a, b) = two_uas(1, Faults::NONE, Transport::Unreliable);
    call(&mut net, a, Transport::Unreliable);
    let leg_b = until_incoming(&mut net, b).unwrap();
    ua_cmd(&mut net, b, ua::Command::Respond { leg: leg_b, code: 180, body: Bytes::new(), content_type: None });
    net.run_for(Duration::from_millis(100));
    answer(&mut net, b, leg_b);
    net.run_for(Duration::from_secs(1));
    ua_cmd(&mut net, a, ua::Command::End { leg: LegId::new(1) });
    net.run_for(Duration::from_secs(1));
    let lines: Vec<String> = net.wire.iter().map(|(_, i, l)| format!("{i} {l}")).collect();
    assert_eq!(
        lines,
        [
            "0 INVITE sip:bob@b.example.com SIP/2.0",
            // The 180 left within 200 ms of the INVITE: no 100 Trying (s.17.2.1).
            "1 SIP/2.0 180 Ringing",
            "1 SIP/2.0 200 OK",
            "0 ACK sip:bob@b.example.com SIP/2.0",
            "0 BYE sip:bob@b.example.com SIP/2.0",
            "1 SIP/2.0 200 OK",
        ]
    );
    // The dialogs agree (s.12): tags swapped, the UAC's CSeq went up for BYE.
    assert_eq!(ended(&net, a), [EndReason::LocalBye]);
    assert_eq!(ended(&net, b), [EndReason::RemoteBye]);
    assert!(net.ua_events(a).iter().any(|(_, e)| matches!(e, ua::Event::Progress { .. })));
    assert_quiet(&mut net, &[a, b]);
}

#[test]
fn two_xx_retransmitted_until_ack_and_acked_again() {
    // The ACK is lost once: B retransmits the 2xx at T1 and A ACKs it again.
    let (mut net, a, b) = two_uas(3, Faults::NONE, Transport::Unreliable);
    call(&mut net, a, Transport::Unreliable);
    let leg_b = until_incoming(&mut net, b).unwrap();
    answer(&mut net, b, leg_b);
    net.faults.drop = 1.0;
    net.run_for(Duration::from_millis(15));
    net.faults.drop = 0.0;
    net.run_for(Duration::from_secs(5));
    let ok_times: Vec<u128> = net
        .wire
        .iter()
        .filter(|(_, i, l)| *i == b && l.starts_with("SIP/2.0 200"))
        .map(|(t, _, _)| t.as_millis())
        .collect();
    let acks = net.wire.iter().filter(|(_, i, l)| *i == a && l.starts_with("ACK")).count();
    assert_eq!(ok_times.len(), 2, "the 2xx and one retransmission at T1: {ok_times:?}");
    assert_eq!(ok_times[1] - ok_times[0], 500);
    assert_eq!(acks, 2, "an ACK for each 2xx");
    assert_eq!(net.ua_events(b).iter().filter(|(_, e)| matches!(e, ua::Event::Acked { .. })).count(), 1);
}

#[test]
fn no_ack_ends_with_bye_after_64_t1() {
    let (mut net, a, b) = two_uas(4, Faults::NONE, Transport::Unreliable);
    call(&mut net, a, Transport::Unreliable);
    let leg_b = until_incoming(&mut net, b).unwrap();
    net.faults.drop = 1.0; // A never hears again.
    let answered_at = net.elapsed();
    answer(&mut net, b, leg_b);
    net.run_for(Duration::from_secs(100));
    let oks: Vec<u128> = net
        .wire
        .iter()
        .filter(|(_, i, l)| *i == b && l.starts_with("SIP/2.0 200"))
        .map(|(t, _, _)| (*t - answered_at).as_millis())
        .collect();
    // s.13.3.1.4: T1 doubling to T2.
    assert_eq!(oks, [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    let bye = net.wire.iter().find(|(_, i, l)| *i == b && l.starts_with("BYE")).unwrap();
    assert_eq!((bye.0 - answered_at).as_millis(), 32_000);
    // The BYE itself times out (Timer F) and the leg ends as NoAck.
    assert_eq!(ended(&net, b), [EndReason::NoAck]);
}

#[test]
fn cancel_pending_invite() {
    for (seed, transport, faults) in seeds(30).into_iter().map(|s| (s, Transport::Unreliable, Faults::LOSSY)).chain([(
        0,
        Transport::Reliable,
        Faults::NONE,
    )]) {
        let _guard = SeedGuard(seed);
        let (mut net, a, b) = two_uas(seed, faults, transport);
        call(&mut net, a, transport);
        let Some(leg_b) = until_incoming(&mut net, b) else { continue };
        ua_cmd(&mut net, b, ua::Command::Respond { leg: leg_b, code: 180, body: Bytes::new(), content_type: None });
        net.run_for(Duration::from_millis(500));
        ua_cmd(&mut net, a, ua::Command::End { leg: LegId::new(1) });
        net.run_for(Duration::from_secs(100));
        // s.9: 487 ends A's leg as Cancelled, or (CANCEL lost/no final) it is
        // given up after 64*T1 or ends with a timeout.
        let a_end = ended(&net, a);
        assert_eq!(a_end.len(), 1, "{a_end:?}");
        assert!(matches!(a_end[0], EndReason::Cancelled | EndReason::TimedOut), "{a_end:?}");
        if ended(&net, b) == [EndReason::Cancelled] {
            assert!(net.wire.iter().any(|(_, i, l)| *i == b && l.starts_with("SIP/2.0 487")));
        } else {
            // B never saw the CANCEL: its leg still waits for its user.
            ua_cmd(&mut net, b, ua::Command::End { leg: leg_b });
        }
        if transport == Transport::Reliable {
            assert_eq!(a_end, [EndReason::Cancelled]);
            assert_eq!(ended(&net, b), [EndReason::Cancelled]);
        }
        assert_quiet(&mut net, &[a, b]);
    }
}

#[test]
fn cancel_before_provisional_waits() {
    let (mut net, a, b) = two_uas(5, Faults::NONE, Transport::Reliable);
    call(&mut net, a, Transport::Reliable);
    // End at once: no provisional yet, so no CANCEL (s.9.1) until the 100 Trying.
    ua_cmd(&mut net, a, ua::Command::End { leg: LegId::new(1) });
    assert!(!net.wire.iter().any(|(_, _, l)| l.starts_with("CANCEL")));
    net.run_for(Duration::from_secs(2));
    let cancel = net.wire.iter().position(|(_, _, l)| l.starts_with("CANCEL")).unwrap();
    let trying = net.wire.iter().position(|(_, _, l)| l.starts_with("SIP/2.0 100")).unwrap();
    assert!(trying < cancel);
    assert_eq!(ended(&net, a), [EndReason::Cancelled]);
    assert_eq!(ended(&net, b), [EndReason::Cancelled]);
    assert_quiet(&mut net, &[a, b]);
}

#[test]
fn rejected_call_and_481() {
    let (mut net, a, b) = two_uas(6, Faults::NONE, Transport::Unreliable);
    call(&mut net, a, Transport::Unreliable);
    let leg_b = until_incoming(&mut net, b).unwrap();
    ua_cmd(&mut net, b, ua::Command::Respond { leg: leg_b, code: 486, body: Bytes::new(), content_type: None });
    net.run_for(Duration::from_secs(1));
    assert_eq!(ended(&net, a), [EndReason::Rejected { status: 486 }]);
    assert!(net.wire.iter().any(|(_, i, l)| *i == a && l.starts_with("ACK")), "the transaction ACKs the 486");
    // A BYE for no dialog gets 481 (s.12.2.2).
    let bye = msg("BYE sip:bob@b.example.com SIP/2.0
Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKzz
Max-Forwards: 70
From: <sip:a@h>;tag=1
To: <sip:b@h>;tag=nope
Call-ID: unknown
CSeq: 5 BYE
Content-Length: 0

");
    let now = net.now;
    net.ua(b)
        .handle(now, ua::Input::Received { flow: B_FLOW, transport: Transport::Unreliable, message: bye })
        .unwrap();
    net.settle(b);
    assert_eq!(net.wire.last().unwrap().2, "SIP/2.0 481 Call/Transaction Does Not Exist");
    assert_quiet(&mut net, &[a, b]);
}

#[test]
fn message_out_of_dialog_lossy() {
    for seed in seeds(30) {
        let _guard = SeedGuard(seed);
        let (mut net, a, b) = two_uas(seed, Faults::LOSSY, Transport::Unreliable);
        ua_cmd(
            &mut net,
            a,
            ua::Command::Request {
                request: RequestId::new(9),
                method: "MESSAGE".into(),
                flow: A_FLOW,
                transport: Transport::Unreliable,
                target: "sip:bob@b.example.com".into(),
                from: "sip:alice@a.example.com".into(),
                body: Bytes::from_static(b"hi"),
                content_type: Some("text/plain".into()),
            },
        );
        let mut answered = false;
        for _ in 0..400 {
            net.run_for(Duration::from_millis(100));
            let got = net.ua_events(b).iter().find_map(|(_, e)| match e {
                ua::Event::RequestReceived { incoming, .. } => Some(*incoming),
                _ => None,
            });
            if let (Some(incoming), false) = (got, answered) {
                ua_cmd(&mut net, b, ua::Command::RespondRequest { incoming, code: 200 });
                answered = true;
            }
        }
        let received = net.ua_events(b).iter().filter(|(_, e)| matches!(e, ua::Event::RequestReceived { .. })).count();
        assert!(received <= 1, "retransmissions are absorbed");
        let done: Vec<(Duration, u16)> = net
            .ua_events(a)
            .iter()
            .filter_map(|(t, e)| match e {
                ua::Event::RequestCompleted { status, .. } => Some((*t, *status)),
                _ => None,
            })
            .collect();
        assert_eq!(done.len(), 1);
        if done[0].1 == 408 {
            assert_eq!(done[0].0, Duration::from_secs(32), "Timer F");
        } else {
            assert_eq!(done[0].1, 200);
        }
        assert_quiet(&mut net, &[a, b]);
    }
}

#[test]
fn helpers_build_requests() {
    let mut ids = Rng::new(1);
    let params = ua::RequestParams {
        target: "sip:bob@b.example.com",
        from: "sip:alice@a.example.com",
        to: "sip:bob@b.example.com",
        contact: Some("sip:alice@a.example.com"),
        via_host: "a.example.com",
        transport: Transport::Reliable,
        body: Bytes::from_static(b"v=0\r\n"),
        content_type: Some("application/sdp"),
    };
    let invite = ua::new_request("INVITE", &params, &mut ids).build().unwrap();
    let again = ua::new_request("INVITE", &params, &mut ids).build().unwrap();
    assert!(invite.top_via().unwrap().branch().unwrap().starts_with("z9hG4bK"));
    assert_eq!(invite.top_via().unwrap().transport(), "TCP");
    assert_ne!(invite.top_via().unwrap().branch(), again.top_via().unwrap().branch());
    assert_ne!(invite.from_tag(), again.from_tag());
    assert_ne!(invite.call_id(), again.call_id());
    let cancel = ua::cancel(&invite).unwrap();
    assert_eq!(cancel.top_via().unwrap().branch(), invite.top_via().unwrap().branch());
    assert_eq!(cancel.cseq().unwrap().method, "CANCEL");
    assert_eq!(cancel.cseq().unwrap().seq, invite.cseq().unwrap().seq);
    let ok = ua::response(&invite, 200, Some("tt")).build().unwrap();
    assert_eq!(ok.to_tag(), Some("tt"));
    assert_eq!(ok.reason(), Some("OK"));
    let trying = ua::response(&invite, 100, Some("tt")).build().unwrap();
    assert_eq!(trying.to_tag(), None);
}
