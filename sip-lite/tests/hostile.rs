//! A hostile SIP peer against the machines: no transaction or dialog lives
//! forever, and what a peer can make them keep has a cap answered with 503.
//! Each test plays the far side by hand in virtual time.
#![allow(clippy::unwrap_used, reason = "test code")]

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use sip_lite::ids::{FlowId, LegId};
use sip_lite::machine::Output;
use sip_lite::proxy::{self, Proxy, ProxyConfig};
use sip_lite::sip::{Message, MessageBuilder};
use sip_lite::transaction::{self, TransactionConfig, TransactionLayer, Transport};
use sip_lite::ua::{self, EndReason, UaConfig, UserAgent};
use support::{epoch, Rng};

const UP: FlowId = FlowId::new(1);
const DOWN: FlowId = FlowId::new(2);

/// One SIP machine seen from its flows.
trait Machine {
    type Event: std::fmt::Debug + Clone;
    fn received(&mut self, now: Instant, flow: FlowId, message: Message);
    fn timeout(&mut self, now: Instant);
    fn poll_output(&mut self) -> Option<Output<Self::Event>>;
    fn poll_timeout(&self) -> Option<Instant>;
}

/// The three machines take the same inputs, each from its own module.
macro_rules! machine {
    ($machine:ty, $module:ident) => {
        impl Machine for $machine {
            type Event = $module::Event;
            fn received(&mut self, now: Instant, flow: FlowId, message: Message) {
                let input = $module::Input::Received { flow, transport: Transport::Reliable, message };
                self.handle(now, input).unwrap();
            }
            fn timeout(&mut self, now: Instant) {
                self.handle(now, $module::Input::Timeout).unwrap();
            }
            fn poll_output(&mut self) -> Option<Output<Self::Event>> {
                Self::poll_output(self)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                Self::poll_timeout(self)
            }
        }
    };
}

machine!(TransactionLayer, transaction);
machine!(UserAgent, ua);
machine!(Proxy, proxy);

/// Drives a machine in virtual time and keeps what it sent and said, with
/// the seconds since the start.
struct Peer<M: Machine> {
    start: Instant,
    now: Instant,
    machine: M,
    sent: Vec<(u64, FlowId, Message)>,
    events: Vec<(u64, M::Event)>,
}

impl<M: Machine> Peer<M> {
    fn new(start: Instant, machine: M) -> Self {
        Self { start, now: start, machine, sent: vec![], events: vec![] }
    }
    fn secs(&self) -> u64 {
        (self.now - self.start).as_secs()
    }
    fn drain(&mut self) {
        while let Some(output) = self.machine.poll_output() {
            match output {
                Output::Transmit { flow, bytes, .. } => {
                    let at = self.secs();
                    self.sent.push((at, flow, Message::parse(bytes).unwrap()));
                }
                Output::Event(event) => self.events.push((self.secs(), event)),
            }
        }
    }
    fn feed(&mut self, flow: FlowId, message: Message) {
        self.machine.received(self.now, flow, message);
        self.drain();
    }
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(at) = self.machine.poll_timeout().filter(|t| *t <= until) {
            self.now = self.now.max(at);
            self.machine.timeout(self.now);
            self.drain();
        }
        self.now = until;
    }
    /// The first line of each message sent on `flow`, with its second.
    fn lines(&self, flow: FlowId) -> Vec<(u64, String)> {
        self.sent
            .iter()
            .filter(|(_, f, _)| *f == flow)
            .map(|(at, _, m)| (*at, String::from_utf8_lossy(m.as_bytes()).lines().next().unwrap().to_owned()))
            .collect()
    }
    /// The last message sent on `flow` whose first line starts with `start`.
    fn last(&self, flow: FlowId, start: &str) -> Message {
        let found = self.sent.iter().rev().find(|(_, f, m)| *f == flow && m.as_bytes().starts_with(start.as_bytes()));
        found.map(|(_, _, m)| m.clone()).unwrap_or_else(|| panic!("no {start} on {flow}"))
    }
}

fn msg(text: &str) -> Message {
    Message::parse(Bytes::from(text.replace('\n', "\r\n"))).unwrap()
}

fn request(method: &str, branch: &str, call_id: &str) -> Message {
    msg(&format!(
        "{method} sip:b@b.example.com SIP/2.0
Via: SIP/2.0/TCP a.example.com;branch={branch}
Max-Forwards: 70
From: <sip:a@a.example.com>;tag=1
To: <sip:b@b.example.com>
Call-ID: {call_id}
CSeq: 1 {method}
Contact: <sip:a@a.example.com>
Content-Length: 0

"
    ))
}

fn reply(request: &Message, code: u16) -> Message {
    MessageBuilder::response_to(request, code, "R", Some("callee")).build().unwrap()
}

fn status(message: &Message) -> Option<u16> {
    message.status_code()
}

/// RFC 3261 s.21.5.4: past its cap the layer answers 503 with Retry-After,
/// statelessly (the same To tag for a retransmission, s.8.2.7), and keeps
/// nothing; a CANCEL of a live INVITE still gets its transaction.
#[test]
fn server_transactions_beyond_the_cap_get_503_and_leave_no_state() {
    let start = epoch();
    let mut config = TransactionConfig::default();
    config.set_max_server_transactions(3).set_retry_after(Duration::from_secs(7));
    let mut peer = Peer::new(start, TransactionLayer::new(config, start));
    peer.feed(UP, request("INVITE", "z9hG4bKi", "c0"));
    for n in 1..=2 {
        peer.feed(UP, request("MESSAGE", &format!("z9hG4bKm{n}"), &format!("c{n}")));
    }
    assert_eq!(peer.machine.server_count(), 3);
    // A flood of new requests: each answered 503, none kept.
    for n in 3..10_000 {
        peer.feed(UP, request("MESSAGE", &format!("z9hG4bKm{n}"), &format!("c{n}")));
    }
    assert_eq!(peer.machine.server_count(), 3);
    let refusals: Vec<&Message> = peer.sent.iter().map(|(_, _, m)| m).filter(|m| status(m) == Some(503)).collect();
    assert_eq!(refusals.len(), 9_997);
    let first = refusals[0].clone();
    assert_eq!(first.header_values("Retry-After").next(), Some("7"));
    assert_eq!(first.cseq().unwrap().method, "MESSAGE");
    assert!(first.to_tag().is_some(), "s.8.2.6.2: a final response has a To tag");
    // The same request again gets the same answer, byte for byte (s.8.2.7).
    peer.feed(UP, request("MESSAGE", "z9hG4bKm3", "c3"));
    assert_eq!(peer.sent.last().unwrap().2.as_bytes(), first.as_bytes());
    // The INVITE can still be CANCELled.
    peer.feed(UP, request("CANCEL", "z9hG4bKi", "c0"));
    assert_eq!(peer.machine.server_count(), 4);
    let cancel = peer.events.iter().rev().find_map(|(_, e)| match e {
        transaction::Event::RequestReceived { cancels, .. } => Some(*cancels),
        _ => None,
    });
    assert!(matches!(cancel, Some(Some(_))), "the CANCEL reached the core, related to its INVITE");
    // Every refusal was reported.
    let reported = peer.events.iter().filter(|(_, e)| matches!(e, transaction::Event::PeerError { .. })).count();
    assert_eq!(reported, 9_998);
}

fn ua(config: UaConfig, start: Instant) -> Peer<UserAgent> {
    Peer::new(start, UserAgent::new(config, start, Box::new(Rng::new(7))))
}

fn ended(peer: &Peer<UserAgent>) -> Vec<(u64, LegId, EndReason)> {
    peer.events
        .iter()
        .filter_map(|(at, e)| match e {
            ua::Event::Ended { leg, reason } => Some((*at, *leg, *reason)),
            _ => None,
        })
        .collect()
}

fn invite_command(leg: u64) -> ua::Command {
    ua::Command::Invite {
        leg: LegId::new(leg),
        flow: DOWN,
        transport: Transport::Reliable,
        target: "sip:b@b.example.com".into(),
        from: "sip:a@a.example.com".into(),
        body: Bytes::new(),
        content_type: None,
    }
}

/// A callee that sends 180 and then nothing: the caller CANCELs when the
/// INVITE timeout runs out (restarted by each 101-199), and the leg ends
/// TimedOut on the 487, or 64*T1 after the CANCEL when none comes.
#[test]
fn a_callee_that_rings_forever_is_cancelled_and_reported_as_a_timeout() {
    for answers_the_cancel in [true, false] {
        let start = epoch();
        let mut config = UaConfig::new("a.example.com", "sip:a@a.example.com");
        config.set_invite_timeout(Duration::from_secs(200));
        let mut caller = ua(config, start);
        caller.machine.handle(start, ua::Input::Command(invite_command(1))).unwrap();
        caller.drain();
        let invite = caller.last(DOWN, "INVITE");
        caller.feed(DOWN, reply(&invite, 100));
        caller.advance(Duration::from_secs(50));
        caller.feed(DOWN, reply(&invite, 180));
        // 100 started the wait; the 180 at 50 s restarted it: nothing until 250 s.
        caller.advance(Duration::from_secs(199));
        assert_eq!(caller.lines(DOWN).len(), 1, "only the INVITE so far");
        assert!(ended(&caller).is_empty());
        caller.advance(Duration::from_secs(1));
        let cancel = caller.last(DOWN, "CANCEL");
        assert_eq!(caller.lines(DOWN).last().unwrap().0, 250);
        assert_eq!(cancel.top_via().unwrap().branch(), invite.top_via().unwrap().branch(), "s.9.1");
        if answers_the_cancel {
            caller.feed(DOWN, reply(&cancel, 200));
            caller.feed(DOWN, reply(&invite, 487));
            assert_eq!(ended(&caller), [(250, LegId::new(1), EndReason::TimedOut)]);
        } else {
            caller.advance(Duration::from_secs(31));
            assert!(ended(&caller).is_empty());
            caller.advance(Duration::from_secs(1));
            // s.9.1: given up 64*T1 after the CANCEL.
            assert_eq!(ended(&caller), [(282, LegId::new(1), EndReason::TimedOut)]);
        }
        caller.advance(Duration::from_secs(64));
        assert!(caller.machine.is_idle(), "nothing left: {:?}", caller.machine);
        assert_eq!(caller.machine.poll_timeout(), None);
    }
}

/// A 2xx that crosses the timeout's CANCEL is ACKed and BYEd, and the leg
/// still ends as a timeout.
#[test]
fn an_answer_crossing_the_timeout_cancel_is_acked_and_ended() {
    let start = epoch();
    let mut caller = ua(UaConfig::new("a.example.com", "sip:a@a.example.com"), start);
    caller.machine.handle(start, ua::Input::Command(invite_command(1))).unwrap();
    caller.drain();
    let invite = caller.last(DOWN, "INVITE");
    caller.feed(DOWN, reply(&invite, 180));
    caller.advance(Duration::from_secs(181));
    let cancel = caller.last(DOWN, "CANCEL");
    assert_eq!(caller.lines(DOWN).last().unwrap().0, 181, "the default is 3 min 1 s");
    let mut ok = MessageBuilder::response_to(&invite, 200, "OK", Some("callee"));
    ok.header("Contact", "<sip:b@b.example.com>");
    caller.feed(DOWN, ok.build().unwrap());
    caller.feed(DOWN, reply(&cancel, 200));
    let lines: Vec<String> = caller.lines(DOWN).into_iter().map(|(_, l)| l).collect();
    assert!(lines.iter().any(|l| l.starts_with("ACK")) && lines.last().unwrap().starts_with("BYE"), "{lines:?}");
    let bye = caller.last(DOWN, "BYE");
    caller.feed(DOWN, reply(&bye, 200));
    assert_eq!(ended(&caller), [(181, LegId::new(1), EndReason::TimedOut)]);
}

/// Past its dialog cap a user agent answers a new INVITE 503 with
/// Retry-After, and makes no leg of it.
#[test]
fn inbound_invites_beyond_the_dialog_cap_get_503() {
    let start = epoch();
    let mut transactions = TransactionConfig::default();
    transactions.set_retry_after(Duration::from_secs(30));
    let mut config = UaConfig::new("b.example.com", "sip:b@b.example.com");
    config
        .set_max_dialogs(2)
        .set_transaction(transactions)
        .set_capabilities(sip_lite::capabilities::Capabilities::serving(&[]));
    let mut callee = ua(config, start);
    for n in 0..1000 {
        callee.feed(UP, request("INVITE", &format!("z9hG4bKi{n}"), &format!("c{n}")));
    }
    assert_eq!(callee.machine.leg_count(), 2);
    let calls = callee.events.iter().filter(|(_, e)| matches!(e, ua::Event::IncomingCall { .. })).count();
    assert_eq!(calls, 2);
    let busy: Vec<&Message> = callee.sent.iter().map(|(_, _, m)| m).filter(|m| status(m) == Some(503)).collect();
    assert_eq!(busy.len(), 998);
    assert_eq!(busy[0].header_values("Retry-After").next(), Some("30"));
    // s.11.2: an OPTIONS inside a live dialog gets 200, not the 503 a new
    // INVITE would get.
    let leg = callee.events.iter().find_map(|(_, e)| match e {
        ua::Event::IncomingCall { leg, .. } => Some(*leg),
        _ => None,
    });
    let respond = ua::Command::Respond { leg: leg.unwrap(), code: 180, body: Bytes::new(), content_type: None };
    callee.machine.handle(callee.now, ua::Input::Command(respond)).unwrap();
    callee.drain();
    let ringing = callee.last(UP, "SIP/2.0 180");
    let options = String::from_utf8_lossy(request("OPTIONS", "z9hG4bKindialog", "c0").as_bytes())
        .replace("To: <sip:b@b.example.com>", &format!("To: <sip:b@b.example.com>;tag={}", ringing.to_tag().unwrap()))
        .replace("CSeq: 1 OPTIONS", "CSeq: 2 OPTIONS");
    callee.feed(UP, msg(&options.replace("\r\n", "\n")));
    assert_eq!(status(&callee.sent.last().unwrap().2), Some(200));
    // Refused INVITE transactions end with their ACK or Timer H (64*T1):
    // only the two legs' transactions stay.
    callee.advance(Duration::from_secs(33));
    assert_eq!(callee.machine.transactions().server_count(), 2);
}

fn proxy(timer_c: Option<Duration>, start: Instant) -> Peer<Proxy> {
    let mut config = ProxyConfig::new("core.example.com");
    config.add_route("b.example.com", DOWN, Transport::Reliable).add_route("a.example.com", UP, Transport::Reliable);
    if let Some(timer_c) = timer_c {
        config.set_timer_c(timer_c);
    }
    Peer::new(start, Proxy::new(config, start, Box::new(Rng::new(3))))
}

/// The final responses to the INVITE the proxy sent upstream, with their second.
fn upstream_finals(peer: &Peer<Proxy>) -> Vec<(u64, u16)> {
    peer.sent
        .iter()
        .filter(|(_, f, m)| *f == UP && status(m) >= Some(200) && m.cseq().is_some_and(|c| c.method == "INVITE"))
        .map(|(at, _, m)| (*at, status(m).unwrap()))
        .collect()
}

/// RFC 3261 s.16.6 step 11, s.16.7, s.16.8: Timer C. Restarted by a 180
/// (not by a 100), it CANCELs a ringing INVITE; when the callee ignores the
/// CANCEL too, the proxy answers 408 upstream 64*T1 later and keeps nothing.
#[test]
fn timer_c_cancels_a_ringing_invite_and_answers_408_when_nothing_follows() {
    let start = epoch();
    let mut core = proxy(None, start);
    core.feed(UP, request("INVITE", "z9hG4bKup", "c1"));
    let forwarded = core.last(DOWN, "INVITE");
    core.feed(DOWN, reply(&forwarded, 100));
    core.advance(Duration::from_secs(100));
    core.feed(DOWN, reply(&forwarded, 180));
    core.advance(Duration::from_secs(150));
    core.feed(DOWN, reply(&forwarded, 100));
    // 180 at 100 s: Timer C (3 min 1 s) runs out at 281 s; the later 100 does not restart it.
    core.advance(Duration::from_secs(30));
    assert!(core.lines(DOWN).iter().all(|(_, l)| !l.starts_with("CANCEL")));
    core.advance(Duration::from_secs(1));
    let cancel = core.last(DOWN, "CANCEL");
    assert_eq!(core.lines(DOWN).last().unwrap().0, 281);
    assert_eq!(cancel.top_via().unwrap().branch(), forwarded.top_via().unwrap().branch());
    core.feed(DOWN, reply(&cancel, 200));
    assert!(upstream_finals(&core).is_empty());
    // The caller CANCELs too, later: answered, no second CANCEL goes down,
    // and the wait still counts from the first.
    core.advance(Duration::from_secs(19));
    core.feed(UP, request("CANCEL", "z9hG4bKup", "c1"));
    assert_eq!(core.lines(DOWN).iter().filter(|(_, l)| l.starts_with("CANCEL")).count(), 1);
    // No 487 comes: s.9.1, given up 64*T1 after the CANCEL.
    core.advance(Duration::from_secs(13));
    assert_eq!(upstream_finals(&core), [(313, 408)]);
    // The caller ACKs the 408 (the server transaction ends); nothing is left.
    core.feed(UP, request("ACK", "z9hG4bKup", "c1"));
    core.advance(Duration::from_secs(64));
    assert!(core.machine.is_idle(), "{:?}", core.machine);
    assert_eq!(core.machine.poll_timeout(), None);
}

/// A callee that answers the Timer C CANCEL with 487: the 487 goes upstream.
#[test]
fn timer_c_cancel_answered_487_goes_upstream() {
    let start = epoch();
    let mut core = proxy(Some(Duration::from_secs(200)), start);
    core.feed(UP, request("INVITE", "z9hG4bKup", "c1"));
    let forwarded = core.last(DOWN, "INVITE");
    core.feed(DOWN, reply(&forwarded, 183));
    core.advance(Duration::from_secs(200));
    let cancel = core.last(DOWN, "CANCEL");
    core.feed(DOWN, reply(&cancel, 200));
    core.feed(DOWN, reply(&forwarded, 487));
    assert_eq!(upstream_finals(&core), [(200, 487)]);
    // Nothing more: the give-up deadline went with the final response.
    core.advance(Duration::from_secs(100));
    assert_eq!(upstream_finals(&core), [(200, 487)]);
}

/// s.16.8: Timer C with no provisional response acts as a 408 at once.
#[test]
fn timer_c_without_a_provisional_response_acts_as_408() {
    let start = epoch();
    let mut core = proxy(Some(Duration::from_secs(10)), start);
    core.feed(UP, request("INVITE", "z9hG4bKup", "c1"));
    core.advance(Duration::from_secs(10));
    assert_eq!(upstream_finals(&core), [(10, 408)]);
    assert!(core.lines(DOWN).iter().all(|(_, l)| !l.starts_with("CANCEL")), "s.9.1: no CANCEL before a 1xx");
    let refused = core.events.iter().any(|(_, e)| matches!(e, proxy::Event::Refused { status: 408, .. }));
    assert!(refused);
    // A late answer matches nothing the proxy keeps: it goes nowhere.
    let forwarded = core.last(DOWN, "INVITE");
    let sent_before = core.sent.len();
    core.feed(DOWN, reply(&forwarded, 486));
    assert_eq!(core.sent.len(), sent_before, "nothing forwarded upstream");
    core.advance(Duration::from_secs(64));
    assert!(core.machine.is_idle(), "{:?}", core.machine);
}

/// RFC 3261 s.8.2.1, s.11.2, s.21.5.2: a user agent whose caller serves no
/// extra method answers OPTIONS, 405s a known method, 501s an unknown one,
/// and keeps nothing of any of them, however many come.
#[test]
fn requests_the_caller_does_not_serve_are_answered_by_the_user_agent() {
    let start = epoch();
    let mut config = UaConfig::new("b.example.com", "sip:b@b.example.com");
    config.set_capabilities(sip_lite::capabilities::Capabilities::serving(&[])).set_max_dialogs(1);
    let mut callee = ua(config, start);
    for n in 0..10_000 {
        for method in ["OPTIONS", "SUBSCRIBE", "FROBNICATE"] {
            callee.feed(UP, request(method, &format!("z9hG4bK{method}{n}"), &format!("{method}{n}")));
        }
    }
    // Each request answered once, with the status its method gets.
    let answers = |callee: &Peer<UserAgent>, method: &str| -> (usize, Vec<u16>) {
        let mut codes: Vec<u16> = callee
            .sent
            .iter()
            .filter(|(_, _, m)| m.cseq().is_some_and(|c| c.method == method))
            .map(|(_, _, m)| status(m).unwrap())
            .collect();
        let count = codes.len();
        codes.dedup();
        (count, codes)
    };
    assert_eq!(answers(&callee, "OPTIONS"), (10_000, vec![200]));
    assert_eq!(answers(&callee, "SUBSCRIBE"), (10_000, vec![405]));
    assert_eq!(answers(&callee, "FROBNICATE"), (10_000, vec![501]));
    assert!(callee.events.is_empty(), "nothing reached the caller");
    assert!(callee.machine.is_idle(), "{:?}", callee.machine);
    // At its dialog cap, OPTIONS gets what an INVITE would: 503.
    callee.feed(UP, request("INVITE", "z9hG4bKinv", "inv"));
    callee.feed(UP, request("OPTIONS", "z9hG4bKbusy", "busy"));
    assert_eq!(status(&callee.sent.last().unwrap().2), Some(503));
}

/// A configured wait too long to add to the clock (`Duration::MAX`) means
/// "about never", not a panic.
#[test]
fn endless_configured_waits_do_not_panic() {
    let start = epoch();
    let mut core = proxy(Some(Duration::MAX), start);
    core.feed(UP, request("INVITE", "z9hG4bKup", "c1"));
    let forwarded = core.last(DOWN, "INVITE");
    core.feed(DOWN, reply(&forwarded, 180));
    assert!(core.machine.poll_timeout().is_some_and(|at| at > start + Duration::from_secs(86_400)));
    let mut config = UaConfig::new("a.example.com", "sip:a@a.example.com");
    let mut transactions = TransactionConfig::default();
    transactions.set_t1(Duration::MAX);
    config.set_invite_timeout(Duration::MAX).set_transaction(transactions);
    let mut caller = ua(config, start);
    caller.machine.handle(start, ua::Input::Command(invite_command(1))).unwrap();
    caller.drain();
    let invite = caller.last(DOWN, "INVITE");
    caller.feed(DOWN, reply(&invite, 180));
    caller.advance(Duration::from_secs(3600));
    assert!(ended(&caller).is_empty());
}

/// A caller learns each outbound leg's Call-ID (RFC 3261 s.8.1.1.4) from its
/// user agent, not by parsing the INVITE it sent.
#[test]
fn the_call_id_of_an_outbound_leg_is_the_one_its_invite_carries() {
    let start = epoch();
    let mut ua = UserAgent::new(UaConfig::new("a.example.com", "sip:a@a.example.com"), start, Box::new(Rng::new(7)));
    assert_eq!(ua.call_id(LegId::new(1)), None);
    ua.handle(start, ua::Input::Command(invite_command(1))).unwrap();
    let sent = std::iter::from_fn(|| ua.poll_output())
        .find_map(|o| match o {
            Output::Transmit { bytes, .. } => Message::parse(bytes).ok(),
            Output::Event(_) => None,
        })
        .expect("the INVITE");
    assert_eq!(ua.call_id(LegId::new(1)), sent.call_id());
    assert_eq!(ua.call_id(LegId::new(2)), None);
}
