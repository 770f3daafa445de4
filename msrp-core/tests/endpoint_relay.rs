//! Endpoints behind an RFC 4976 relay: each AUTHs through
//! [`link::Command::Authenticate`] on the link to the relay, then opens its
//! session on that same link with the peer's path of RFC 4976 s.5.1, and a
//! message crosses the relay ([`msrp_core::rfc4976::Relay`]) in memory.
//! A lost link fails the AUTH with its Use-Path.
#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use msrp_core::auth::{self, AuthClient, AuthConfig, AuthError, AuthEvent, AuthTransport, RelayAccount};
use msrp_core::link::{self, Authentication, Endpoint, EndpointConfig, SessionKey};
use msrp_core::rfc4976::{self, Relay, RelayConfig, Users};
use msrp_core::router::ConnId;
use msrp_core::session::{Command, Event, LinkRole, MessageHandle, Session, SessionConfig};
use msrp_core::MsrpUri;

#[path = "support/peers.rs"]
#[allow(dead_code, reason = "this test names its own URIs")]
mod peers;
use peers::{epoch, uri, Counter};

const RELAY: &str = "msrp://relay.example.com:9001;tcp";
const ALICE: &str = "msrp://alice.example.com:7001/aliceALICE01;tcp";
const BOB: &str = "msrp://bob.example.com:7002/bobBOB000001;tcp";
const KEY: SessionKey = SessionKey::new(1);

/// Two endpoints and a relay, wired in memory: endpoint `k`'s link `conn`
/// is the relay's connection `relay_side[(k, conn)]`.
struct Net {
    now: Instant,
    endpoints: [Endpoint; 2],
    relay: Relay,
    ids: Counter,
    relay_side: HashMap<(usize, ConnId), ConnId>,
    auth: [Vec<AuthEvent>; 2],
    events: [Vec<Event>; 2],
}

impl Net {
    fn new() -> Self {
        let now = epoch();
        let mut config = RelayConfig::new(vec![uri(RELAY)], "relay.example.com");
        config.auth_over_tcp = true;
        let mut users = Users::new();
        users.add("alice", "relay.example.com", "alice-pw");
        users.add("bob", "relay.example.com", "bob-pw");
        Self {
            now,
            endpoints: [Endpoint::new(EndpointConfig::default(), now), Endpoint::new(EndpointConfig::default(), now)],
            relay: Relay::new(config, Box::new(users)),
            ids: Counter(3),
            relay_side: HashMap::new(),
            auth: [Vec::new(), Vec::new()],
            events: [Vec::new(), Vec::new()],
        }
    }

    fn endpoint(&mut self, k: usize, input: link::Input) {
        self.endpoints[k].handle(self.now, input).unwrap();
        self.pump();
    }

    /// Moves every output until nothing moves.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            for k in 0..2 {
                while let Some(output) = self.endpoints[k].poll_output() {
                    moved = true;
                    match output {
                        link::Output::Connect { conn, .. } => {
                            let relay_conn = ConnId::new(10 * (k as u64 + 1) + conn.get());
                            self.relay_side.insert((k, conn), relay_conn);
                            self.relay.handle(
                                rfc4976::Input::Accepted { conn: relay_conn, listener: 0 },
                                self.now,
                                &mut self.ids,
                            );
                            self.endpoints[k].handle(self.now, link::Input::Connected { conn }).unwrap();
                        }
                        link::Output::Transmit { conn, transmit } => {
                            let bytes = transmit.len();
                            let data = Bytes::from([transmit.head, transmit.body, transmit.end_line].concat());
                            let relay_conn = self.relay_side[&(k, conn)];
                            self.relay.handle(
                                rfc4976::Input::Received { conn: relay_conn, data },
                                self.now,
                                &mut self.ids,
                            );
                            self.endpoints[k].handle(self.now, link::Input::Written { conn, bytes }).unwrap();
                        }
                        link::Output::Auth { event, .. } => self.auth[k].push(event),
                        link::Output::Event { event, .. } => self.events[k].push(event),
                        _ => {}
                    }
                }
            }
            while let Some(output) = self.relay.poll_output() {
                moved = true;
                if let rfc4976::Output::Write { conn, data, .. } = output {
                    let bytes = data.len();
                    let (&(k, endpoint_conn), _) = self.relay_side.iter().find(|(_, r)| **r == conn).unwrap();
                    self.endpoints[k].handle(self.now, link::Input::Received { conn: endpoint_conn, data }).unwrap();
                    self.relay.handle(rfc4976::Input::Written { conn, bytes }, self.now, &mut self.ids);
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Endpoint `k` (URI `me`) AUTHs as `user`: its Use-Path, or why not.
    fn authenticate(&mut self, k: usize, me: &str, user: &str, password: &str) -> Result<Vec<MsrpUri>, AuthError> {
        let mut config = AuthConfig::new(uri(me), vec![RelayAccount::new(uri(RELAY), user, password)]);
        config.transport = AuthTransport::PlainTcpForTestRelays;
        let client = AuthClient::new(config).unwrap();
        let auth = Box::new(Authentication { client, ids: Box::new(Counter(40 + k as u64)) });
        self.endpoint(k, link::Input::Command(link::Command::Authenticate { key: KEY, auth, conn: ConnId::new(1) }));
        match self.auth[k].pop() {
            Some(AuthEvent::Authenticated { use_path, .. }) => Ok(use_path),
            Some(AuthEvent::Failed(error)) => Err(error),
            other => panic!("endpoint {k}: {other:?}"),
        }
    }

    /// Endpoint `k` opens its session at `me` toward `to_path`.
    fn open(&mut self, k: usize, me: &str, to_path: Vec<MsrpUri>) {
        let config = SessionConfig::new(uri(me), to_path, LinkRole::Active);
        let session = Box::new(Session::new(config, self.now, Box::new(Counter(70 + k as u64))));
        self.endpoint(k, link::Input::Command(link::Command::Open { key: KEY, session, conn: ConnId::new(2) }));
    }
}

#[test]
fn two_endpoints_behind_one_relay_exchange_a_message() {
    let mut net = Net::new();
    let alice_path = net.authenticate(0, ALICE, "alice", "alice-pw").unwrap();
    let bob_path = net.authenticate(1, BOB, "bob", "bob-pw").unwrap();
    // Each session goes through the peer's Use-Path, on the link its own AUTH used.
    net.open(0, ALICE, auth::sdp_path(&bob_path, &uri(BOB)));
    net.open(1, BOB, auth::sdp_path(&alice_path, &uri(ALICE)));
    assert_eq!(net.endpoints[0].link_of(KEY), Some(ConnId::new(1)), "the AUTH's link is reused");
    let body = Bytes::from(vec![b'm'; 10_000]);
    let send = Command::Send {
        handle: MessageHandle::new(1),
        content_type: "text/plain".into(),
        body: body.clone(),
        success_report: false,
        failure_report: msrp_core::FailureReport::Yes,
    };
    net.endpoint(0, link::Input::Command(link::Command::Session { key: KEY, command: send }));
    let received: Vec<u8> = net.events[1]
        .iter()
        .filter_map(|e| match e {
            Event::MessageReceived { body, .. } => Some(body.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(received, body.to_vec(), "{:?}", net.events[1]);
    assert!(net.events[0].iter().any(|e| matches!(e, Event::MessageSent { .. })), "{:?}", net.events[0]);
}

#[test]
fn a_lost_link_ends_the_use_path() {
    let mut net = Net::new();
    net.authenticate(0, ALICE, "alice", "alice-pw").unwrap();
    net.endpoint(0, link::Input::Closed { conn: ConnId::new(1) });
    assert!(matches!(net.auth[0].pop(), Some(AuthEvent::Failed(AuthError::LinkLost { .. }))));
    // A wrong password comes back as the client's typed error.
    assert!(matches!(net.authenticate(1, BOB, "bob", "guess"), Err(AuthError::Rejected { .. })));
}
