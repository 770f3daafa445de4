//! The link endpoint's session and link life cycle, through the public API:
//! sessions added before they connect, link reuse switched off, accepted
//! links that outlive their last session, and reading held back by the
//! caller. Every output is drained after every input, as the drain contract
//! asks.
#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]

use std::time::{Duration, Instant};

use bytes::Bytes;
use msrp_core::link::{self, Endpoint, EndpointConfig, LinkKey, LinkTimeout, SessionKey, UsageError};
use msrp_core::router::ConnId;
use msrp_core::session::{Command, LinkRole, MessageHandle, Session, SessionConfig};
use msrp_core::FailureReport;

#[path = "support/peers.rs"]
mod peers;
use peers::{epoch, uri, Counter, ME, PEER};

/// Another session of the same peer: same host, port, scheme and transport.
const PEER_TOO: &str = "msrp://peer.example.com:9000/theirsTHEIRS2;tcp";

/// A fresh session at `local` toward `peer`.
fn session(local: &str, peer: &str, role: LinkRole, now: Instant, seed: u64) -> Box<Session> {
    let config = SessionConfig::new(uri(local), vec![uri(peer)], role);
    Box::new(Session::new(config, now, Box::new(Counter(seed))))
}

/// Feeds one input and drains every output.
fn handle(endpoint: &mut Endpoint, now: Instant, input: link::Input) -> Result<Vec<link::Output>, UsageError> {
    let result = endpoint.handle(now, input);
    let out = outputs(endpoint);
    result.map(|()| out)
}

fn command(endpoint: &mut Endpoint, now: Instant, command: link::Command) -> Result<Vec<link::Output>, UsageError> {
    handle(endpoint, now, link::Input::Command(command))
}

fn outputs(endpoint: &mut Endpoint) -> Vec<link::Output> {
    std::iter::from_fn(|| endpoint.poll_output()).collect()
}

fn connects(out: &[link::Output]) -> Vec<(ConnId, LinkKey)> {
    out.iter()
        .filter_map(|o| match o {
            link::Output::Connect { conn, link } => Some((*conn, link.clone())),
            _ => None,
        })
        .collect()
}

fn transmits(out: &[link::Output], on: ConnId) -> usize {
    out.iter().filter(|o| matches!(o, link::Output::Transmit { conn, .. } if *conn == on)).count()
}

fn send(handle: u64) -> Command {
    Command::Send {
        handle: MessageHandle::new(handle),
        content_type: "text/plain".into(),
        body: Bytes::from_static(b"hello"),
        success_report: false,
        failure_report: FailureReport::No,
    }
}

/// A bodiless SEND from the peer to `to` (RFC 4975 s.7.1.1 lets it carry no Message-ID).
fn bodiless_send(n: u64, to: &str) -> Bytes {
    Bytes::from(format!("MSRP t{n:08} SEND\r\nTo-Path: {to}\r\nFrom-Path: {PEER}\r\n-------t{n:08}$\r\n"))
}

/// `Command::Add` puts a session in the endpoint and on no link; an active
/// one goes on a link only at `Command::Connect`, reusing an open link to
/// the same host and port (RFC 4975 s.5.4: "If the connection is to a
/// remote host and one associated with the same host, port, and URI scheme
/// already exists, the endpoint SHOULD reuse that connection") or asking
/// for one. Passive sessions and sessions on a link cannot be connected.
#[test]
fn an_added_session_waits_for_connect_and_then_reuses_or_opens_a_link() {
    let now = epoch();
    let mut endpoint = Endpoint::new(EndpointConfig::default(), now);
    let (one, two, three, four) = (SessionKey::new(1), SessionKey::new(2), SessionKey::new(3), SessionKey::new(4));

    // Added: no link is asked for, and what it sends waits.
    let added = session(ME, PEER, LinkRole::Active, now, 1);
    let out = command(&mut endpoint, now, link::Command::Add { key: one, session: added }).unwrap();
    assert!(connects(&out).is_empty(), "{out:?}");
    assert_eq!((endpoint.link_of(one), endpoint.link_count()), (None, 0));
    command(&mut endpoint, now, link::Command::Session { key: one, command: send(1) }).unwrap();
    assert_eq!(endpoint.link_count(), 0);

    // Another session opens the link to the same peer host and port.
    let shared = ConnId::new(7);
    let opened = session("msrp://me.example.com:7000/mineMINE0002;tcp", PEER_TOO, LinkRole::Active, now, 2);
    let out = command(&mut endpoint, now, link::Command::Open { key: two, session: opened, conn: shared }).unwrap();
    assert_eq!(connects(&out), [(shared, LinkKey::of(&uri(PEER)).unwrap())]);

    // Connected, the added session reuses that link: no second Connect, and
    // its queued message goes out once the link is up.
    let out = command(&mut endpoint, now, link::Command::Connect { key: one, conn: ConnId::new(8) }).unwrap();
    assert!(connects(&out).is_empty(), "reused: {out:?}");
    assert_eq!(endpoint.link_of(one), Some(shared));
    assert_eq!(endpoint.link_count(), 1);
    assert_eq!(endpoint.sessions_on(shared), [two, one]);
    let out = handle(&mut endpoint, now, link::Input::Connected { conn: shared }).unwrap();
    let queued = out
        .iter()
        .any(|o| matches!(o, link::Output::Transmit { conn, transmit } if *conn == shared && transmit.body == "hello"));
    assert!(queued, "the SEND queued before Connect went out: {out:?}");

    // On a link already: not connectable, and nothing changes.
    let again = link::Command::Connect { key: one, conn: ConnId::new(9) };
    assert_eq!(command(&mut endpoint, now, again), Err(UsageError::NotConnectable));
    assert_eq!(endpoint.link_of(one), Some(shared));
    assert_eq!(endpoint.link_count(), 1);

    // Passive: it waits for the peer's first request, never connects.
    let passive = session("msrp://me.example.com:7000/mineMINE0003;tcp", PEER, LinkRole::Passive, now, 3);
    command(&mut endpoint, now, link::Command::Add { key: three, session: passive }).unwrap();
    let connect = link::Command::Connect { key: three, conn: ConnId::new(10) };
    assert_eq!(command(&mut endpoint, now, connect), Err(UsageError::NotConnectable));
    assert_eq!((endpoint.link_of(three), endpoint.link_count()), (None, 1));

    // Toward another host: no link to reuse, one is asked for under the id given.
    let elsewhere = "msrp://other.example.com:9000/theirsTHEIRS4;tcp";
    let added = session("msrp://me.example.com:7000/mineMINE0004;tcp", elsewhere, LinkRole::Active, now, 4);
    let out = command(&mut endpoint, now, link::Command::Add { key: four, session: added }).unwrap();
    assert!(connects(&out).is_empty(), "{out:?}");
    let fresh = ConnId::new(11);
    let out = command(&mut endpoint, now, link::Command::Connect { key: four, conn: fresh }).unwrap();
    assert_eq!(connects(&out), [(fresh, LinkKey::of(&uri(elsewhere)).unwrap())]);
    assert_eq!(endpoint.link_of(four), Some(fresh));
    assert_eq!(endpoint.link_count(), 2);
}

/// RFC 4975 s.5.4 makes reuse a SHOULD: with `reuse_links` off, two active
/// sessions toward the same host and port get a link each, whether opened
/// at once or added and connected later; on (the default), they share one.
#[test]
fn with_reuse_off_each_session_toward_one_host_gets_its_own_link() {
    let peer_link = LinkKey::of(&uri(PEER)).unwrap();
    for reuse_links in [true, false] {
        let now = epoch();
        let mut endpoint = Endpoint::new(EndpointConfig { reuse_links, ..EndpointConfig::default() }, now);
        let mut asked = Vec::new();
        let first = session(ME, PEER, LinkRole::Active, now, 1);
        let open = link::Command::Open { key: SessionKey::new(1), session: first, conn: ConnId::new(1) };
        asked.extend(connects(&command(&mut endpoint, now, open).unwrap()));
        let second = session("msrp://me.example.com:7000/mineMINE0002;tcp", PEER_TOO, LinkRole::Active, now, 2);
        let open = link::Command::Open { key: SessionKey::new(2), session: second, conn: ConnId::new(2) };
        asked.extend(connects(&command(&mut endpoint, now, open).unwrap()));
        let third = session("msrp://me.example.com:7000/mineMINE0003;tcp", PEER, LinkRole::Active, now, 3);
        command(&mut endpoint, now, link::Command::Add { key: SessionKey::new(3), session: third }).unwrap();
        let connect = link::Command::Connect { key: SessionKey::new(3), conn: ConnId::new(3) };
        asked.extend(connects(&command(&mut endpoint, now, connect).unwrap()));

        let links: Vec<_> = (1..=3).map(|k| endpoint.link_of(SessionKey::new(k)).unwrap()).collect();
        if reuse_links {
            assert_eq!(asked, [(ConnId::new(1), peer_link.clone())]);
            assert_eq!(links, [ConnId::new(1); 3]);
            assert_eq!(endpoint.link_count(), 1);
        } else {
            let expected: Vec<_> = (1..=3).map(|c| (ConnId::new(c), peer_link.clone())).collect();
            assert_eq!(asked, expected, "one Connect per session");
            assert_eq!(links, [ConnId::new(1), ConnId::new(2), ConnId::new(3)]);
            assert_eq!(endpoint.link_count(), 3);
        }
    }
}

/// RFC 4975 s.4: a link the peer opened is the peer's to keep; the endpoint
/// MAY "close these connections when no sessions have used them for some
/// period of time". When its last session leaves, the accepted link stays
/// open, and closes `bind_timeout` after that moment (not after it was
/// accepted). A link this endpoint opened closes with its last session.
#[test]
fn an_accepted_link_outlives_its_last_session_until_the_bind_timeout() {
    let start = epoch();
    let config = EndpointConfig::default();
    let mut endpoint = Endpoint::new(config.clone(), start);
    let passive = SessionKey::new(1);
    let accepted = ConnId::new(5);
    let added = session(ME, PEER, LinkRole::Passive, start, 1);
    command(&mut endpoint, start, link::Command::Add { key: passive, session: added }).unwrap();
    handle(&mut endpoint, start, link::Input::Accepted { conn: accepted }).unwrap();

    // The peer's first request binds the session, within the probation.
    let bound_at = start + config.bind_timeout / 2;
    let out =
        handle(&mut endpoint, bound_at, link::Input::Received { conn: accepted, data: bodiless_send(1, ME) }).unwrap();
    assert_eq!(transmits(&out, accepted), 1, "the SEND was answered: {out:?}");
    assert_eq!(endpoint.link_of(passive), Some(accepted));
    let written = endpoint.in_flight(accepted);
    handle(&mut endpoint, bound_at, link::Input::Written { conn: accepted, bytes: written }).unwrap();

    // Its last session leaves: the link stays.
    let left_at = bound_at + Duration::from_secs(5);
    let out = command(&mut endpoint, left_at, link::Command::Close { key: passive }).unwrap();
    assert!(!out.contains(&link::Output::Close { conn: accepted }), "{out:?}");
    assert_eq!(endpoint.link_count(), 1);
    assert!(endpoint.sessions_on(accepted).is_empty());
    assert_eq!(endpoint.poll_timeout(), Some(left_at + config.bind_timeout), "counted from when it left");

    // The probation counted from the accept is over: still open.
    let out = handle(&mut endpoint, start + config.bind_timeout, link::Input::Timeout).unwrap();
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(endpoint.link_count(), 1);

    // Unused for bind_timeout since its last session left: closed.
    let out = handle(&mut endpoint, left_at + config.bind_timeout, link::Input::Timeout).unwrap();
    assert_eq!(
        out[..2],
        [
            link::Output::LinkTimedOut { conn: accepted, timeout: LinkTimeout::NeverBound },
            link::Output::Close { conn: accepted },
        ],
        "{out:?}"
    );
    assert_eq!(endpoint.link_count(), 0);

    // A link this endpoint opened closes as soon as its last session leaves.
    let now = left_at + config.bind_timeout;
    let active = SessionKey::new(2);
    let opened = ConnId::new(6);
    let open = link::Command::Open { key: active, session: session(ME, PEER, LinkRole::Active, now, 2), conn: opened };
    command(&mut endpoint, now, open).unwrap();
    handle(&mut endpoint, now, link::Input::Connected { conn: opened }).unwrap();
    let out = command(&mut endpoint, now, link::Command::Close { key: active }).unwrap();
    assert_eq!(out, [link::Output::Close { conn: opened }]);
    assert_eq!(endpoint.link_count(), 0);
}

/// The caller holds a link's reading back and lets it go: one
/// `PauseReading` or `ResumeReading` per change, none when nothing changes.
#[test]
fn set_reading_pauses_and_resumes_a_link_once_per_change() {
    let now = epoch();
    let mut endpoint = Endpoint::new(EndpointConfig::default(), now);
    let conn = ConnId::new(5);
    handle(&mut endpoint, now, link::Input::Accepted { conn }).unwrap();
    assert!(!endpoint.is_paused(conn));

    endpoint.set_reading(conn, false);
    assert_eq!(outputs(&mut endpoint), [link::Output::PauseReading { conn }]);
    assert!(endpoint.is_paused(conn));
    endpoint.set_reading(conn, false);
    assert_eq!(outputs(&mut endpoint), []);

    endpoint.set_reading(conn, true);
    assert_eq!(outputs(&mut endpoint), [link::Output::ResumeReading { conn }]);
    assert!(!endpoint.is_paused(conn));
    endpoint.set_reading(conn, true);
    assert_eq!(outputs(&mut endpoint), []);

    // An unknown link is ignored.
    endpoint.set_reading(ConnId::new(99), false);
    assert_eq!(outputs(&mut endpoint), []);
}
