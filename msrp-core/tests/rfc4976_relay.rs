//! The RFC 4976 relay ([`msrp_core::rfc4976::Relay`]) between clients in
//! memory: AUTH with Digest, forwarding both ways with the paths rewritten,
//! cut-through and windows, REPORTs for failures, the probation and the
//! other rules of s.6, and the two-relay AUTH of s.5.1 driven by
//! [`AuthClient`].
#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use msrp_core::auth::digest::{Challenge, Credentials};
use msrp_core::auth::{AuthClient, AuthConfig, AuthEvent, RelayAccount};
use msrp_core::link::LinkKey;
use msrp_core::rfc4976::{ChallengeMode, CloseReason, Input, Output, Relay, RelayConfig, Users};
use msrp_core::router::ConnId;
use msrp_core::{Encoder, Flag, Frame, FrameHead, Framer, FramerEvent, IdSource, Limits, MsrpUri, TransactionId};

#[derive(Clone)]
struct Counter(u64);
impl IdSource for Counter {
    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            *b = (self.0 >> 33) as u8;
        }
    }
}

#[expect(clippy::disallowed_methods, reason = "the test's virtual clock needs one real epoch")]
fn epoch() -> Instant {
    Instant::now()
}

fn uri(text: &str) -> MsrpUri {
    MsrpUri::parse_str(text).unwrap()
}

/// A frame a client read.
#[derive(Debug)]
struct Read {
    head: FrameHead,
    body: Vec<u8>,
    flag: Flag,
}

/// One connection's far end, as a client sees it.
struct Peer {
    framer: Framer,
    frames: Vec<Read>,
    /// Writes marked as ending a frame.
    frame_ends: usize,
    body: Vec<u8>,
    head: Option<FrameHead>,
}

impl Peer {
    fn new() -> Self {
        Self { framer: Framer::new(Limits::default()), frames: Vec::new(), frame_ends: 0, body: Vec::new(), head: None }
    }

    fn feed(&mut self, data: Bytes) {
        self.framer.handle_segment(data);
        while let Some(event) = self.framer.poll_event() {
            match event.expect("the relay writes valid frames") {
                FramerEvent::Head(head) => self.head = Some(head),
                FramerEvent::Body(piece) => self.body.extend_from_slice(&piece),
                FramerEvent::End(flag) => {
                    let head = self.head.take().unwrap();
                    self.frames.push(Read { head, body: std::mem::take(&mut self.body), flag });
                }
                FramerEvent::Rejected { error, .. } => panic!("rejected: {error:?}"),
            }
        }
    }
}

/// A relay and the client ends of its connections.
struct Net {
    relay: Relay,
    ids: Counter,
    now: Instant,
    /// The far end of each relay connection.
    peers: HashMap<ConnId, Peer>,
    /// Connections the relay asked to open, and where to.
    connects: Vec<(ConnId, LinkKey)>,
    closed: Vec<(ConnId, CloseReason)>,
    paused: HashMap<ConnId, bool>,
    /// Written bytes not yet acknowledged, per connection (acknowledged at once unless held).
    unacked: HashMap<ConnId, usize>,
    hold_acks: Vec<ConnId>,
    authenticated: Vec<MsrpUri>,
    next: u64,
}

const TLS: usize = 0;
const TCP: usize = 1;
const WSS: usize = 2;

fn config(challenge: ChallengeMode) -> RelayConfig {
    let mut config = RelayConfig::new(
        vec![
            uri("msrps://relay.example.com:9000;tcp"),
            uri("msrp://relay.example.com:9001;tcp"),
            uri("msrps://relay.example.com:443;ws"),
        ],
        "relay.example.com",
    );
    config.challenge = challenge;
    config
}

impl Net {
    fn new(config: RelayConfig) -> Self {
        let mut users = Users::new();
        users.add("alice", "relay.example.com", "alice-pw");
        Self::with_users(config, users)
    }

    fn with_users(config: RelayConfig, users: Users) -> Self {
        Self {
            relay: Relay::new(config, Box::new(users)),
            ids: Counter(7),
            now: epoch(),
            peers: HashMap::new(),
            connects: Vec::new(),
            closed: Vec::new(),
            paused: HashMap::new(),
            unacked: HashMap::new(),
            hold_acks: Vec::new(),
            authenticated: Vec::new(),
            next: 1,
        }
    }

    fn handle(&mut self, input: Input) {
        self.relay.handle(input, self.now, &mut self.ids);
        while let Some(output) = self.relay.poll_output() {
            match output {
                Output::Write { conn, data, frame_end } => {
                    let peer = self.peers.entry(conn).or_insert_with(Peer::new);
                    peer.feed(data.clone());
                    peer.frame_ends += usize::from(frame_end);
                    if self.hold_acks.contains(&conn) {
                        *self.unacked.entry(conn).or_default() += data.len();
                    } else {
                        self.relay.handle(Input::Written { conn, bytes: data.len() }, self.now, &mut self.ids);
                    }
                }
                Output::Connect { conn, link } => self.connects.push((conn, link)),
                Output::Close { conn, reason } => self.closed.push((conn, reason)),
                Output::PauseReading { conn } => {
                    self.paused.insert(conn, true);
                }
                Output::ResumeReading { conn } => {
                    self.paused.insert(conn, false);
                }
                Output::Authenticated { use_path, .. } => self.authenticated.push(use_path),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn accept(&mut self, listener: usize) -> ConnId {
        let conn = ConnId::new(self.next);
        self.next += 1;
        self.peers.insert(conn, Peer::new());
        self.handle(Input::Accepted { conn, listener });
        conn
    }

    fn send(&mut self, conn: ConnId, frame: &Frame) -> TransactionId {
        let t = Encoder::new().encode(frame, &mut Counter(self.next * 1000)).unwrap();
        self.next += 1;
        let tid = t.transaction_id.clone();
        self.handle(Input::Received { conn, data: Bytes::from([t.head, t.body, t.end_line].concat()) });
        tid
    }

    fn frames(&mut self, conn: ConnId) -> Vec<Read> {
        std::mem::take(&mut self.peers.entry(conn).or_insert_with(Peer::new).frames)
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.handle(Input::Timeout);
    }

    fn ack(&mut self, conn: ConnId) {
        let bytes = self.unacked.remove(&conn).unwrap_or(0);
        self.handle(Input::Written { conn, bytes });
    }
}

const ALICE: &str = "msrps://alice.example.com:9892/98cjs;tcp";
const BOB: &str = "msrps://bob.example.com:8145/foo;tcp";

fn auth(to: &str, from: &str) -> Frame {
    Frame::bodiless("AUTH", vec![uri(to)], vec![uri(from)])
}

/// Alice AUTHs on `conn` with Digest (401, then credentials); her Use-Path.
fn authenticate(net: &mut Net, conn: ConnId, password: &str) -> Result<MsrpUri, u16> {
    net.send(conn, &auth("msrps://relay.example.com:9000;tcp", ALICE));
    let challenge = net.frames(conn).pop().unwrap();
    assert_eq!(challenge.head.status_code(), Some(401));
    let challenge = Challenge::parse(challenge.head.www_authenticate().unwrap()).unwrap();
    let ha1 = msrp_core::auth::digest::ha1("alice", &challenge.realm, password);
    let credentials =
        Credentials::answer(&challenge, "alice", &ha1, "msrps://relay.example.com:9000;tcp", "0a4f113b", 1);
    let frame =
        auth("msrps://relay.example.com:9000;tcp", ALICE).with_header("Authorization", &credentials.to_string());
    net.send(conn, &frame);
    let answer = net.frames(conn).pop().unwrap();
    match answer.head.status_code() {
        Some(200) => {
            assert_eq!(answer.head.expires(), Some(1800));
            assert!(answer.head.authentication_info().is_some_and(|i| i.contains("rspauth=")));
            Ok(uri(answer.head.use_path().next().unwrap()))
        }
        other => Err(other.unwrap()),
    }
}

fn send(to: &[&MsrpUri], from: &str, body: &'static [u8]) -> Frame {
    Frame::send(to.iter().map(|u| (*u).clone()).collect(), vec![uri(from)], "text/plain", Bytes::from_static(body))
        .with_message_id(&msrp_core::MessageId::from_text("87652").unwrap())
}

#[test]
fn a_client_behind_the_relay_receives_and_sends() {
    let mut net = Net::new(config(ChallengeMode::Digest));
    let alice = net.accept(TLS);
    let use_path = authenticate(&mut net, alice, "alice-pw").unwrap();
    assert_eq!(use_path.host(), "relay.example.com");
    // RFC 4976 s.6.3: at least 64 random bits.
    assert!(use_path.session_id().unwrap().len() >= 11);
    assert_eq!(net.authenticated.len(), 1);
    assert_eq!(net.authenticated[0], use_path);

    // Bob (no relay of his own) connects to the relay and sends to Alice's Use-Path.
    let bob = net.accept(TLS);
    net.send(bob, &send(&[&use_path, &uri(ALICE)], BOB, b"Hi Alice"));
    let to_bob = net.frames(bob);
    assert_eq!(to_bob.len(), 1, "the relay answers the previous hop at once (s.6.4.1)");
    assert_eq!(to_bob[0].head.status_code(), Some(200));
    assert_eq!(to_bob[0].head.from_path().collect::<Vec<_>>(), [use_path.as_str()]);
    let to_alice = net.frames(alice);
    assert_eq!(to_alice.len(), 1);
    let forwarded = &to_alice[0];
    // s.6.4.1: the relay "removes this URI from the To-Path header and inserts this URI in the
    // From-Path header before any other URIs".
    assert_eq!(forwarded.head.to_path().collect::<Vec<_>>(), [ALICE]);
    assert_eq!(forwarded.head.from_path().collect::<Vec<_>>(), [use_path.as_str(), BOB]);
    assert_eq!(forwarded.body, b"Hi Alice");
    assert_eq!(forwarded.head.message_id_str(), Some("87652"));

    // Alice answers the relay; a 200 ends the transaction there.
    let ok =
        Frame::response(forwarded.head.transaction_id(), 200, Some("OK"), vec![use_path.clone()], vec![uri(ALICE)]);
    net.send(alice, &ok);
    assert_eq!(net.relay.held().pending, 0, "no transaction left");
    assert!(net.frames(bob).is_empty(), "a hop-by-hop 200 goes no further");
    // A 200 along the whole From-Path goes on to Bob under his own id (s.6.4.3: "If there are
    // additional URIs in the To-Path header, the relay MUST ... forward the response").
    let sent = net.send(bob, &send(&[&use_path, &uri(ALICE)], BOB, b"again"));
    assert_eq!(net.frames(bob).len(), 1, "the relay's own 200");
    let forwarded = net.frames(alice).pop().unwrap();
    let ok = Frame::response(
        forwarded.head.transaction_id(),
        200,
        Some("OK"),
        vec![use_path.clone(), uri(BOB)],
        vec![uri(ALICE)],
    );
    net.send(alice, &ok);
    let far = net.frames(bob).pop().expect("Alice's 200");
    assert_eq!(far.head.txid(), sent.as_str());
    assert_eq!(far.head.to_path().collect::<Vec<_>>(), [BOB]);
    assert_eq!(far.head.from_path().collect::<Vec<_>>(), [use_path.as_str(), ALICE]);

    // Alice sends to Bob: the relay opens a connection toward him.
    net.send(alice, &send(&[&use_path, &uri(BOB)], ALICE, b"Hi Bob"));
    let (out, link) = net.connects.pop().unwrap();
    assert_eq!(link.to_string(), "bob.example.com:8145");
    assert!(net.frames(out).is_empty(), "nothing before the connection is up");
    assert!(net.relay.has_connection(out), "a connection it asked for is its own before it is up");
    assert_eq!(net.paused.get(&alice), Some(&true), "Alice waits for it");
    net.handle(Input::Connected { conn: out });
    assert_eq!(net.frames(alice)[0].head.status_code(), Some(200));
    let to_bob = net.frames(out);
    assert_eq!(to_bob[0].head.to_path().collect::<Vec<_>>(), [BOB]);
    assert_eq!(to_bob[0].head.from_path().collect::<Vec<_>>(), [use_path.as_str(), ALICE]);
    assert_eq!(to_bob[0].body, b"Hi Bob");
    assert!(net.closed.is_empty(), "{:?}", net.closed);
    net.handle(Input::Closed { conn: out });
    assert!(!net.relay.has_connection(out), "a runtime that connects it now lets it go");
}

#[test]
fn failures_downstream_become_reports() {
    let mut net = Net::new(config(ChallengeMode::Digest));
    let alice = net.accept(TLS);
    let use_path = authenticate(&mut net, alice, "alice-pw").unwrap();
    let bob = net.accept(TLS);

    // RFC 4976 s.6.4.3: a non-200 from the next hop becomes a REPORT with that code.
    net.send(bob, &send(&[&use_path, &uri(ALICE)], BOB, b"one"));
    net.frames(bob);
    let forwarded = net.frames(alice).pop().unwrap();
    let refused = Frame::response(
        forwarded.head.transaction_id(),
        415,
        Some("Unsupported"),
        vec![use_path.clone()],
        vec![uri(ALICE)],
    );
    net.send(alice, &refused);
    let report = net.frames(bob).pop().expect("a REPORT");
    assert_eq!(report.head.method_name(), Some("REPORT"));
    assert_eq!(report.head.header("Status"), Some("000 415 Unsupported Media Type"));
    assert_eq!(report.head.to_path().collect::<Vec<_>>(), [BOB]);
    assert_eq!(report.head.message_id_str(), Some("87652"));
    assert_eq!(report.head.header("Byte-Range"), Some("1-3/3"));

    // s.6.4.1: no answer 30 s after the last byte: 408.
    net.send(bob, &send(&[&use_path, &uri(ALICE)], BOB, b"two"));
    net.frames(bob);
    net.advance(Duration::from_secs(29));
    assert!(net.frames(bob).is_empty());
    net.advance(Duration::from_secs(1));
    let report = net.frames(bob).pop().expect("a 408 REPORT");
    assert_eq!(report.head.header("Status"), Some("000 408 Request Timeout"));
    assert_eq!(net.relay.held().pending, 0);
}

#[test]
fn use_paths_are_bound_to_their_connection() {
    let mut net = Net::new(config(ChallengeMode::Digest));
    let alice = net.accept(TLS);
    let use_path = authenticate(&mut net, alice, "alice-pw").unwrap();
    let mallory = net.accept(TLS);
    // From another connection, the next hop must be Alice (s.6.4): refused otherwise.
    net.send(mallory, &send(&[&use_path, &uri(BOB)], ALICE, b"spoof"));
    assert_eq!(net.frames(mallory).pop().unwrap().head.status_code(), Some(403));
    assert!(net.connects.is_empty(), "no connection opened for it");
    // s.6.3: "If the client's connection is closed ... the URI MUST be invalidated."
    net.handle(Input::Closed { conn: alice });
    assert_eq!(net.relay.held().grants, 0);
    net.send(mallory, &send(&[&use_path, &uri(ALICE)], BOB, b"late"));
    assert_eq!(net.frames(mallory).pop().unwrap().head.status_code(), Some(481));
    // A method the relay does not know, addressed to it: 501 (RFC 4975 s.10.9).
    net.send(mallory, &Frame::bodiless("FOO", vec![uri("msrps://relay.example.com:9000;tcp")], vec![uri(BOB)]));
    assert_eq!(net.frames(mallory).pop().unwrap().head.status_code(), Some(501));
    // s.6.2: a request not for the relay drops the connection at once.
    net.send(mallory, &send(&[&uri(ALICE)], BOB, b"elsewhere"));
    assert_eq!(net.closed, [(mallory, CloseReason::NotForRelay)]);
}

#[test]
fn auth_rules() {
    let mut net = Net::new(config(ChallengeMode::Digest));
    // A wrong password: 401 again. Every AUTH not granted counts (the challenge too): the
    // third closes the connection (s.6.1, s.6.3: "SHOULD terminate the corresponding connection").
    let conn = net.accept(TLS);
    assert_eq!(authenticate(&mut net, conn, "wrong"), Err(401));
    assert!(net.closed.is_empty());
    net.send(conn, &auth("msrps://relay.example.com:9000;tcp", ALICE));
    assert_eq!(net.closed, [(conn, CloseReason::AuthFailures)]);
    // A grant starts the count again: rounds of challenge and answer go on.
    let good = net.accept(TLS);
    for _ in 0..3 {
        assert!(authenticate(&mut net, good, "alice-pw").is_ok());
    }
    assert_eq!(net.closed.len(), 1);

    // s.8: AUTH over TCP is refused unless the test option is named.
    let tcp = net.accept(TCP);
    net.send(tcp, &auth("msrp://relay.example.com:9001;tcp", ALICE));
    assert_eq!(net.frames(tcp).pop().unwrap().head.status_code(), Some(403));
    let mut config = config(ChallengeMode::NoChallenge);
    config.auth_over_tcp = true;
    let mut open = Net::new(config);
    let tcp = open.accept(TCP);
    open.send(tcp, &auth("msrp://relay.example.com:9001;tcp", ALICE));
    let ok = open.frames(tcp).pop().unwrap();
    assert_eq!(ok.head.status_code(), Some(200));
    assert!(ok.head.use_path().next().unwrap().starts_with("msrp://relay.example.com:9001/"));

    // s.6.3: an Expires outside the bounds is 423 with the bound.
    let conn = open.accept(TCP);
    open.send(conn, &auth("msrp://relay.example.com:9001;tcp", ALICE).with_header("Expires", "5"));
    let refused = open.frames(conn).pop().unwrap();
    assert_eq!((refused.head.status_code(), refused.head.min_expires()), (Some(423), Some(60)));
    open.send(conn, &auth("msrp://relay.example.com:9001;tcp", ALICE).with_header("Expires", "999999"));
    let refused = open.frames(conn).pop().unwrap();
    assert_eq!((refused.head.status_code(), refused.head.max_expires()), (Some(423), Some(86_400)));
}

#[test]
fn probation_and_expiry() {
    let mut net = Net::new(config(ChallengeMode::Digest));
    let idle = net.accept(TLS);
    net.advance(Duration::from_secs(29));
    assert!(net.closed.is_empty());
    net.advance(Duration::from_secs(1));
    assert_eq!(net.closed, [(idle, CloseReason::Probation)]);

    // A Use-Path URI ends with its lifetime (s.6.3).
    let alice = net.accept(TLS);
    let use_path = authenticate(&mut net, alice, "alice-pw").unwrap();
    net.advance(Duration::from_secs(1800));
    assert_eq!(net.relay.held().grants, 0, "the grant is gone");
    let bob = net.accept(TLS);
    net.send(bob, &send(&[&use_path, &uri(ALICE)], BOB, b"late"));
    assert_eq!(net.frames(bob).pop().unwrap().head.status_code(), Some(481));
}

/// A SEND fed in pieces goes out as it comes; a next hop that does not
/// acknowledge its bytes stops the reading of the sender's connection, and
/// one that stays stuck gets the chunk aborted and the sender a 408.
#[test]
fn cut_through_with_a_window() {
    let mut net = Net::new(config(ChallengeMode::NoChallenge));
    let alice = net.accept(TLS);
    net.send(alice, &auth("msrps://relay.example.com:9000;tcp", ALICE));
    let use_path = uri(net.frames(alice).pop().unwrap().head.use_path().next().unwrap());
    net.hold_acks.push(alice);
    let bob = net.accept(TLS);
    let body = vec![b'x'; 256 * 1024];
    let frame = Frame::send(vec![use_path, uri(ALICE)], vec![uri(BOB)], "text/plain", Bytes::from(body.clone()))
        .with_byte_range(msrp_core::ByteRange { start: 1, end: None, total: None });
    let t = Encoder::new().encode(&frame, &mut Counter(1)).unwrap();
    let first = t.head.len() + 16 * 1024;
    let wire = [t.head, t.body, t.end_line].concat();
    // The head and the first 16 KiB.
    net.handle(Input::Received { conn: bob, data: Bytes::copy_from_slice(&wire[..first]) });
    let passed = net.peers[&alice].body.len();
    assert!(passed > 16 * 1024 - 64, "the body goes out before its end came: {passed}");
    // The rest, read 16 KiB at a time as a runtime would, while the relay lets it: the window
    // (64 KiB) fills and the relay stops reading Bob.
    let mut at = first;
    let mut feed = |net: &mut Net| {
        while at < wire.len() && net.paused.get(&bob) != Some(&true) {
            let end = (at + 16 * 1024).min(wire.len());
            net.handle(Input::Received { conn: bob, data: Bytes::copy_from_slice(&wire[at..end]) });
            at = end;
        }
    };
    feed(&mut net);
    assert_eq!(net.paused.get(&bob), Some(&true));
    let written = net.peers[&alice].body.len();
    assert!((64 * 1024..=80 * 1024).contains(&written), "the window and one read at most: {written}");
    net.ack(alice);
    assert_eq!(net.paused.get(&bob), Some(&false), "acknowledged bytes open the window");
    feed(&mut net);
    assert!(net.peers[&alice].body.len() > written);
    for _ in 0..100 {
        feed(&mut net);
        net.ack(alice);
    }
    let to_alice = net.frames(alice);
    assert_eq!(to_alice.last().unwrap().body, body);
    assert_eq!(net.paused.get(&bob), Some(&false));

    // A next hop that never acknowledges: after 30 s the chunk is aborted (`#`), Bob hears 408.
    net.frames(bob);
    let t = Encoder::new().encode(&frame, &mut Counter(2)).unwrap();
    net.handle(Input::Received { conn: bob, data: Bytes::from([t.head, t.body, t.end_line].concat()) });
    net.advance(Duration::from_secs(30));
    net.ack(alice);
    let to_alice = net.frames(alice);
    assert_eq!(to_alice.last().unwrap().flag, Flag::Abort);
    let to_bob = net.frames(bob);
    assert!(to_bob.iter().any(|f| f.head.header("Status") == Some("000 408 Request Timeout")), "{to_bob:?}");
    assert_eq!(net.paused.get(&bob), Some(&false), "Bob's connection is read again");
}

/// A forwarded request keeps its transaction id unless another request on
/// the next hop's connection has it; then it gets a fresh one, and a body
/// that holds the end-line of that fresh id is cut there: the receiver
/// never reads a frame the sender forged.
#[test]
fn transaction_ids_are_kept_unless_they_collide() {
    let mut net = Net::new(config(ChallengeMode::NoChallenge));
    let alice = net.accept(TLS);
    net.send(alice, &auth("msrps://relay.example.com:9000;tcp", ALICE));
    let use_path = uri(net.frames(alice).pop().unwrap().head.use_path().next().unwrap());
    let tid = TransactionId::from_text("collide1").unwrap();
    let bob = net.accept(TLS);
    let mut first = Frame::send(vec![use_path.clone(), uri(ALICE)], vec![uri(BOB)], "text/plain", Bytes::from("one"));
    first.transaction_id = Some(tid.clone());
    net.send(bob, &first);
    let to_alice = net.frames(alice);
    assert_eq!(to_alice[0].head.txid(), "collide1", "kept: nothing else on Alice's connection has it");

    // Carol's SEND with the same id while Bob's awaits Alice's answer: a fresh id, which the
    // test knows from the relay's id source, and whose end-line Carol's body holds.
    let carol = net.accept(TLS);
    let next = TransactionId::generate(&mut net.ids.clone());
    let forged = format!("a\r\n-------{next}$\r\nMSRP evil SEND\r\n");
    let mut second = Frame::send(vec![use_path, uri(ALICE)], vec![uri(BOB)], "text/plain", Bytes::from(forged));
    second.transaction_id = Some(tid);
    net.send(carol, &second);
    let to_alice = net.frames(alice);
    assert_eq!(to_alice.len(), 1);
    assert_eq!(to_alice[0].head.txid(), next.as_str());
    assert_eq!(to_alice[0].flag, Flag::Abort);
    assert!(!to_alice[0].body.windows(4).any(|w| w == b"evil"));
}

/// RFC 4976 s.5.1 with two of our relays: Alice AUTHs at intra, then at
/// extra through intra; a peer's SEND to her Use-Path crosses both.
#[test]
fn two_relays_and_the_auth_client() {
    let relay = |host: &str, password: &str| {
        let mut users = Users::new();
        users.add("Alice", host, password);
        let config = RelayConfig::new(vec![uri(&format!("msrps://{host}:9000;tcp"))], host);
        Net::with_users(config, users)
    };
    let mut intra = relay("intra.example.com", "intra-pw");
    let mut extra = relay("extra.example.com", "extra-pw");

    let config = AuthConfig::new(
        uri(ALICE),
        vec![
            RelayAccount::new(uri("msrps://intra.example.com:9000;tcp"), "Alice", "intra-pw"),
            RelayAccount::new(uri("msrps://extra.example.com:9000;tcp"), "Alice", "extra-pw"),
        ],
    );
    let mut client = AuthClient::new(config).unwrap();
    let mut ids = Counter(99);
    client.start(intra.now, &mut ids);
    let alice = intra.accept(0);
    // intra's connection to extra, once intra asks for it.
    let mut bridge: Option<(ConnId, ConnId)> = None;
    let mut event = None;
    for _ in 0..20 {
        while let Some(frame) = client.poll_transmit() {
            intra.send(alice, &frame);
        }
        // intra -> extra
        if bridge.is_none() {
            if let Some((out, _)) = intra.connects.pop() {
                let accepted = extra.accept(0);
                intra.handle(Input::Connected { conn: out });
                bridge = Some((out, accepted));
            }
        }
        if let Some((out, accepted)) = bridge {
            for read in intra.frames(out) {
                let frame = Frame::from_head(&read.head, None, read.flag);
                let data = Encoder::new().encode(&frame, &mut Counter(5)).unwrap();
                extra
                    .handle(Input::Received { conn: accepted, data: Bytes::from([data.head, data.end_line].concat()) });
            }
            for read in extra.frames(accepted) {
                let frame = Frame::from_head(&read.head, None, read.flag);
                let data = Encoder::new().encode(&frame, &mut Counter(5)).unwrap();
                intra.handle(Input::Received { conn: out, data: Bytes::from([data.head, data.end_line].concat()) });
            }
        }
        for read in intra.frames(alice) {
            assert!(client.handle_response(&read.head, intra.now, &mut ids), "{:?}", read.head);
        }
        if let Some(e) = client.poll_event() {
            event = Some(e);
            break;
        }
    }
    let Some(AuthEvent::Authenticated { use_path, expires }) = event else { panic!("{event:?}") };
    assert_eq!(use_path.len(), 2);
    assert_eq!(use_path[0].host(), "intra.example.com");
    assert_eq!(use_path[1].host(), "extra.example.com");
    assert_eq!(expires, Some(Duration::from_secs(1800)));
    assert_eq!(intra.authenticated.len(), 1);
    assert_eq!(extra.authenticated.len(), 1);
}

/// A connection that never reads cannot make the relay queue answers for
/// it without end: they wait behind the frame being written there, and past
/// the bound the connection is closed.
#[test]
fn owed_answers_are_bounded() {
    let mut config = config(ChallengeMode::NoChallenge);
    config.max_owed_frames = 4;
    let mut net = Net::new(config);
    let alice = net.accept(TLS);
    net.send(alice, &auth("msrps://relay.example.com:9000;tcp", ALICE));
    let use_path = uri(net.frames(alice).pop().unwrap().head.use_path().next().unwrap());
    net.hold_acks.push(alice);
    // A long SEND from Bob holds Alice's connection: its window fills and is never acknowledged.
    let bob = net.accept(TLS);
    let big = Frame::send(vec![use_path, uri(ALICE)], vec![uri(BOB)], "text/plain", Bytes::from(vec![b'y'; 200_000]));
    net.send(bob, &big);
    assert_eq!(net.paused.get(&bob), Some(&true));
    // Alice's own AUTHs are answered on her connection, behind that frame: once half the
    // bound is owed to her, she is not read any more (what she sends waits in the framer).
    for _ in 0..6 {
        net.send(alice, &auth("msrps://relay.example.com:9000;tcp", ALICE));
    }
    assert_eq!(net.paused.get(&alice), Some(&true));
    assert!(net.closed.is_empty());
    // Bob's frame stalls behind Alice's full window: after the stall deadline it is aborted
    // (`#`), he hears 408, and is read again.
    net.advance(Duration::from_secs(30));
    let to_bob = net.frames(bob);
    assert!(to_bob.iter().any(|f| f.head.header("Status") == Some("000 408 Request Timeout")), "{to_bob:?}");
    assert_eq!(net.paused.get(&bob), Some(&false));
    // When Alice reads again, what she was owed goes out and she is read again.
    net.hold_acks.clear();
    net.ack(alice);
    assert_eq!(net.paused.get(&alice), Some(&false));
    let answers = net.frames(alice).iter().filter(|f| f.head.status_code() == Some(200)).count();
    assert_eq!(answers, 6, "every AUTH answered");
    assert!(net.closed.is_empty());
}

/// Ten thousand connections that ask for a challenge and go quiet: the
/// nonces stay under their bound, the probation closes every one, and
/// nothing is left.
#[test]
fn a_flood_of_challenges_leaves_nothing() {
    let mut net = Net::new(config(ChallengeMode::Digest));
    for _ in 0..10_000 {
        let conn = net.accept(TLS);
        net.send(conn, &auth("msrps://relay.example.com:9000;tcp", ALICE));
        net.peers.remove(&conn);
        let held = net.relay.held();
        assert!(held.nonces <= 4096, "{held:?}");
        assert!(held.timers <= 2 * held.connections + 1024 + 1, "{held:?}");
    }
    net.advance(Duration::from_secs(30));
    let held = net.relay.held();
    assert_eq!((held.connections, held.grants, held.pending), (0, 0, 0), "{held:?}");
    assert_eq!(net.closed.len(), 10_000);
    assert!(net.closed.iter().all(|(_, reason)| *reason == CloseReason::Probation));
    net.advance(Duration::from_secs(3600));
    assert_eq!(net.relay.held().nonces, 0);
    assert_eq!(net.relay.poll_timeout(), None);
}

/// RFC 7977 s.5.1: toward a WebSocket client every chunk is one message of
/// at most the configured size, so a long chunk from a TCP peer is cut into
/// chunks (`+` on all but the last) with their own Byte-Ranges; the client's
/// Use-Path is the relay's stream URI.
#[test]
fn chunks_toward_a_websocket_client_are_cut() {
    let mut config = config(ChallengeMode::NoChallenge);
    config.websocket_chunk = 64 * 1024;
    let mut net = Net::new(config);
    let ws_client = "msrps://df7jal23ls0d.invalid:2855/98cjs;ws";
    let alice = net.accept(WSS);
    net.send(alice, &auth("msrps://relay.example.com:443;ws", ws_client));
    let use_path = uri(net.frames(alice).pop().unwrap().head.use_path().next().unwrap());
    assert!(use_path.as_str().starts_with("msrps://relay.example.com:9000/"), "{use_path}");
    let bob = net.accept(TLS);
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let frame = Frame::send(vec![use_path, uri(ws_client)], vec![uri(BOB)], "text/plain", Bytes::from(body.clone()));
    let ends_before = net.peers[&alice].frame_ends;
    net.send(bob, &frame);
    let chunks = net.frames(alice);
    assert_eq!(chunks.len(), 4, "200 000 bytes in chunks of 64 KiB at most");
    assert_eq!(net.peers[&alice].frame_ends - ends_before, 4, "one frame per message");
    let mut next = 1;
    for (k, chunk) in chunks.iter().enumerate() {
        assert!(chunk.body.len() <= 64 * 1024);
        let range = chunk.head.byte_range().unwrap();
        assert_eq!((range.start, range.end, range.total), (next, None, Some(200_000)));
        next += chunk.body.len() as u64;
        assert_eq!(chunk.flag, if k == 3 { Flag::End } else { Flag::Continue });
    }
    assert_eq!(chunks.iter().flat_map(|c| c.body.clone()).collect::<Vec<u8>>(), body);
    assert_eq!(net.frames(bob).pop().unwrap().head.status_code(), Some(200), "Bob's one chunk answered once");
}
