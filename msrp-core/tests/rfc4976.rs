//! RFC 4976 (MSRP relays) from the client's side: the RFC's example frames
//! read by our framer, and [`AuthClient`] through the two-relay AUTH flow of
//! s.5.1, its failures, and its refresh before the URIs expire.
//!
//! The RFC's examples fold long lines with a `\` that "is not included in
//! the actual request or response"; [`wire`] joins them. (The first line of
//! each `Authorization` example ends in a comma without the `\`: an erratum
//! we fix in our copy.)
#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]

use std::time::{Duration, Instant};

use bytes::Bytes;
use msrp_core::auth::digest::{self, AuthenticationInfo, Challenge, Credentials};
use msrp_core::auth::{sdp_path, to_path, AuthClient, AuthConfig, AuthError, AuthEvent, AuthTransport, RelayAccount};
use msrp_core::{Encoder, Frame, FrameHead, Framer, FramerEvent, IdSource, Limits, MsrpUri};

struct Counter(u8);
impl IdSource for Counter {
    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
    }
}

/// An example as written in the RFC (indented, `\` continuations, `$` end
/// flag) as the bytes on the wire.
fn wire(example: &str) -> Vec<u8> {
    let mut out = String::new();
    let mut joining = false;
    for line in example.lines() {
        let line = if joining { line.trim_start() } else { line.strip_prefix("    ").unwrap_or(line) };
        match line.strip_suffix('\\') {
            Some(head) => {
                out.push_str(head.trim_end());
                out.push(' ');
                joining = true;
            }
            None => {
                out.push_str(line);
                out.push_str("\r\n");
                joining = false;
            }
        }
    }
    out.into_bytes()
}

/// Every head, body and flag of `bytes`, all in one segment.
fn read(bytes: &[u8]) -> Vec<FramerEvent> {
    let mut framer = Framer::new(Limits::default());
    framer.handle_segment(Bytes::copy_from_slice(bytes));
    let mut events = Vec::new();
    while let Some(event) = framer.poll_event() {
        events.push(event.expect("the RFC's example is valid"));
    }
    events
}

fn head(bytes: &[u8]) -> FrameHead {
    match read(bytes).into_iter().next() {
        Some(FramerEvent::Head(head)) => head,
        other => panic!("not a head: {other:?}"),
    }
}

#[expect(clippy::disallowed_methods, reason = "the test's virtual clock needs one real epoch")]
fn epoch() -> Instant {
    Instant::now()
}

fn uri(text: &str) -> MsrpUri {
    MsrpUri::parse_str(text).expect("a URI")
}

const S3_SEND_ALICE: &str = "    MSRP 6aef SEND
    To-Path: msrps://a.example.org:9000/kjfjan;tcp \\
             msrps://b.example.net:9000/aeiug;tcp \\
             msrps://bob.example.net:8145/foo;tcp
    From-Path: msrps://alice.example.org:7965/bar;tcp
    Success-Report: yes
    Byte-Range: 1-*/*
    Message-ID: 87652
    Content-Type: text/plain

    Hi Bob, I'm about to send you file.mpeg
    -------6aef$";

const S3_REPORT_BOB: &str = "    MSRP yh67 REPORT
    To-Path: msrps://b.example.net:9000/aeiug;tcp \\
             msrps://a.example.org:9000/kjfjan;tcp \\
             msrps://alice.example.org:7965/bar;tcp
    From-Path: msrps://bob.example.net:8145/foo;tcp
    Message-ID: 87652
    Byte-Range: 1-39/39
    Status: 000 200 OK
    -------yh67$";

const S51_401: &str = "    MSRP 49fh 401 Unauthorized
    To-Path: msrps://alice.example.com:9892/98cjs;tcp
    From-Path: msrps://alice@intra.example.com;tcp
    WWW-Authenticate: Digest realm=\"intra.example.com\", qop=\"auth\", \\
                      nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\"
    -------49fh$";

const S51_AUTH_CREDENTIALS: &str = "    MSRP 49fi AUTH
    To-Path: msrps://alice@intra.example.com;tcp
    From-Path: msrps://alice.example.com:9892/98cjs;tcp
    Authorization: Digest username=\"Alice\", \\
                   realm=\"intra.example.com\", \\
                   nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \\
                   qop=auth, nc=00000001, cnonce=\"0a4f113b\", \\
                   response=\"6629fae49393a05397450978507c4ef1\"
    -------49fi$";

const S51_200_INTRA: &str = "    MSRP 49fi 200 OK
    To-Path: msrps://alice.example.com:9892/98cjs;tcp
    From-Path: msrps://alice@intra.example.com;tcp
    Use-Path: msrps://intra.example.com:9000/jui787s2f;tcp
    Authentication-Info: nextnonce=\"40f2e879449675f288476d772627370a\",\\
                         rspauth=\"7327570c586207eca2afae94fc20903d\", \\
                         cnonce=\"0a4f113b\", nc=00000001, qop=auth
    Expires: 900
    -------49fi$";

const S51_401_EXTRA: &str = "    MSRP mnbvw 401 Unauthorized
    To-Path: msrps://alice.example.com:9892/98cjs;tcp
    From-Path: msrps://intra.example.com:9000/jui787s2f;tcp \\
               msrps://extra.example.com;tcp
    WWW-Authenticate: Digest realm=\"extra.example.com\", qop=\"auth\", \\
                      nonce=\"Uumu8cAV38FGsEF31VLevIbNXj9HWO\"
    -------mnbvw$";

const S51_200_EXTRA: &str = "    MSRP m3nbvx 200 OK
    To-Path: msrps://alice.example.com:9892/98cjs;tcp
    From-Path: msrps://intra.example.com:9000/jui787s2f;tcp \\
               msrps://extra.example.com;tcp
    Use-Path: msrps://intra.example.com:9000/jui787s2f;tcp \\
              msrps://extra.example.com:9000/mywdEe1233;tcp
    Expires: 1800
    -------m3nbvx$";

/// The examples of s.3 and s.5.1, continuation lines joined, are frames our
/// framer reads, with the headers RFC 4976 adds.
#[test]
fn rfc_examples_are_read() {
    let events = read(&wire(S3_SEND_ALICE));
    let FramerEvent::Head(send) = &events[0] else { panic!("{events:?}") };
    assert_eq!(send.to_path().count(), 3);
    assert!(events.contains(&FramerEvent::Body(Bytes::from_static(b"Hi Bob, I'm about to send you file.mpeg"))));
    let report = head(&wire(S3_REPORT_BOB));
    assert_eq!(report.to_path().last(), Some("msrps://alice.example.org:7965/bar;tcp"));

    let challenge = head(&wire(S51_401));
    let challenge = Challenge::parse(challenge.www_authenticate().unwrap()).unwrap();
    assert_eq!(challenge.realm, "intra.example.com");
    let auth = head(&wire(S51_AUTH_CREDENTIALS));
    let credentials = Credentials::parse(auth.authorization().unwrap()).unwrap();
    assert_eq!((credentials.username.as_str(), credentials.nc), ("Alice", 1));
    let ok = head(&wire(S51_200_INTRA));
    assert_eq!(ok.use_path().collect::<Vec<_>>(), ["msrps://intra.example.com:9000/jui787s2f;tcp"]);
    assert_eq!(ok.expires(), Some(900));
    let info = AuthenticationInfo::parse(ok.authentication_info().unwrap()).unwrap();
    assert_eq!(info.nextnonce.as_deref(), Some("40f2e879449675f288476d772627370a"));
    assert_eq!(head(&wire(S51_200_EXTRA)).use_path().count(), 2);
}

/// s.5.1's example of paths: A behind B and C, F behind D and E.
#[test]
fn paths_of_a_client_behind_relays() {
    let [a, b, c, d, e, f] =
        ["a", "b", "c", "d", "e", "f"].map(|h| uri(&format!("msrps://{h}.example.com:9000/s;tcp")));
    let use_path = [b.clone(), c.clone()];
    // "path: attribute generated by A:   C B A"
    assert_eq!(sdp_path(&use_path, &a), [c.clone(), b.clone(), a]);
    // "To-Path header generated by A:    B C D E F"
    assert_eq!(to_path(&use_path, &[d.clone(), e.clone(), f.clone()]), [b, c, d, e, f]);
}

/// An example response re-addressed to the AUTH `frame` the client wrote
/// (its transaction id), with `extra` headers added before the end-line.
fn answer(example: &str, frame: &Frame, extra: &[(&str, String)]) -> FrameHead {
    let text = String::from_utf8(wire(example)).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let tid = frame.transaction_id.as_ref().unwrap().as_str();
    let mut start = lines[0].split(' ').map(str::to_owned).collect::<Vec<_>>();
    start[1] = tid.to_owned();
    lines[0] = start.join(" ");
    let end = lines.pop().unwrap();
    for (name, value) in extra {
        lines.push(format!("{name}: {value}"));
    }
    lines.push(format!("-------{tid}{}", end.chars().last().unwrap()));
    head(format!("{}\r\n", lines.join("\r\n")).as_bytes())
}

fn alice() -> MsrpUri {
    uri("msrps://alice.example.com:9892/98cjs;tcp")
}

fn two_relays() -> AuthConfig {
    AuthConfig::new(
        alice(),
        vec![
            RelayAccount::new(uri("msrps://alice@intra.example.com;tcp"), "Alice", "intra-secret"),
            RelayAccount::new(uri("msrps://extra.example.com;tcp"), "Alice", "extra-secret"),
        ],
    )
}

/// Encodes `frame` and reads it back: what the relay would read.
fn on_the_wire(frame: &Frame) -> FrameHead {
    let out = Encoder::new().encode(frame, &mut Counter(99)).expect("encodes");
    head(&[out.head.as_ref(), out.end_line.as_ref()].concat())
}

/// The checks a relay makes of the client's credentials.
fn check_credentials(auth: &FrameHead, realm: &str, password: &str) -> Credentials {
    let credentials = Credentials::parse(auth.authorization().expect("credentials")).unwrap();
    let rightmost = auth.to_path().last().unwrap();
    assert_eq!(credentials.realm, realm);
    assert_eq!(credentials.uri.as_deref(), Some(rightmost));
    assert!(credentials.verify(&digest::ha1("Alice", realm, password), rightmost), "digest over {rightmost}");
    credentials
}

/// s.5.1: AUTH to intra, challenged, answered; AUTH to extra through
/// intra, challenged, answered; the Use-Path and the shortest lifetime.
#[test]
fn two_relay_flow_of_section_5_1() {
    let t0 = epoch();
    let mut ids = Counter(0);
    let mut client = AuthClient::new(two_relays()).unwrap();
    client.start(t0, &mut ids);

    let bare = client.poll_transmit().expect("AUTH");
    let read = on_the_wire(&bare);
    assert_eq!(read.method_name(), Some("AUTH"));
    assert_eq!(read.to_path().collect::<Vec<_>>(), ["msrps://alice@intra.example.com;tcp"]);
    assert_eq!(read.from_path().collect::<Vec<_>>(), ["msrps://alice.example.com:9892/98cjs;tcp"]);
    assert!(read.authorization().is_none());
    assert!(client.handle_response(&answer(S51_401, &bare, &[]), t0, &mut ids));

    let with_credentials = client.poll_transmit().expect("AUTH with credentials");
    assert_ne!(with_credentials.transaction_id, bare.transaction_id);
    let read = on_the_wire(&with_credentials);
    let credentials = check_credentials(&read, "intra.example.com", "intra-secret");
    let info = AuthenticationInfo::answer(
        &credentials,
        &digest::ha1("Alice", "intra.example.com", "intra-secret"),
        "msrps://alice@intra.example.com;tcp",
        Some("40f2e879449675f288476d772627370a"),
    );
    // The example's own Authentication-Info (the RFC's digest of an unknown password) is replaced
    // by one for this password.
    let ok = answer(
        "    MSRP x 200 OK\n    To-Path: msrps://alice.example.com:9892/98cjs;tcp\n    From-Path: msrps://alice@intra.example.com;tcp\n    Use-Path: msrps://intra.example.com:9000/jui787s2f;tcp\n    -------x$",
        &with_credentials,
        &[("Authentication-Info", info.to_string()), ("Expires", "900".into())],
    );
    assert!(client.handle_response(&ok, t0, &mut ids));
    assert_eq!(client.poll_event(), None, "one relay of two");

    // "Alice now sends an AUTH request to her "external" relay through her "internal" relay"
    let through = client.poll_transmit().expect("AUTH to extra");
    let read = on_the_wire(&through);
    assert_eq!(
        read.to_path().collect::<Vec<_>>(),
        ["msrps://intra.example.com:9000/jui787s2f;tcp", "msrps://extra.example.com;tcp"]
    );
    assert!(client.handle_response(&answer(S51_401_EXTRA, &through, &[]), t0, &mut ids));
    let answered = client.poll_transmit().expect("AUTH to extra with credentials");
    let read = on_the_wire(&answered);
    // H(A2) over the rightmost To-Path URI: extra's, not intra's.
    check_credentials(&read, "extra.example.com", "extra-secret");
    assert!(client.handle_response(&answer(S51_200_EXTRA, &answered, &[]), t0, &mut ids));

    let use_path =
        vec![uri("msrps://intra.example.com:9000/jui787s2f;tcp"), uri("msrps://extra.example.com:9000/mywdEe1233;tcp")];
    assert_eq!(
        client.poll_event(),
        Some(AuthEvent::Authenticated { use_path: use_path.clone(), expires: Some(Duration::from_secs(900)) })
    );
    assert_eq!(client.use_path(), use_path);
    assert_eq!(sdp_path(client.use_path(), &alice()).first(), Some(&use_path[1]));

    // Before the 900 s run out, a new round; intra's nextnonce is answered at once.
    let refresh = client.poll_timeout().expect("a refresh");
    assert!(refresh > t0 + Duration::from_secs(600) && refresh < t0 + Duration::from_secs(900), "{refresh:?}");
    client.handle_timeout(refresh, &mut ids);
    let again = client.poll_transmit().expect("a new AUTH");
    let read = on_the_wire(&again);
    let credentials = check_credentials(&read, "intra.example.com", "intra-secret");
    assert_eq!(credentials.nonce, "40f2e879449675f288476d772627370a");
}

/// One relay, plain TCP allowed by name, and each way AUTH fails.
fn one_relay(transport: AuthTransport) -> Result<AuthClient, AuthError> {
    let mut config = AuthConfig::new(
        uri("msrp://127.0.0.1:7000/me;tcp"),
        vec![RelayAccount::new(uri("msrp://relay.example.com:9000;tcp"), "Alice", "pw")],
    );
    config.transport = transport;
    AuthClient::new(config)
}

fn response(frame: &Frame, status: &str, headers: &[&str]) -> FrameHead {
    let tid = frame.transaction_id.as_ref().unwrap().as_str();
    let mut text = format!(
        "MSRP {tid} {status}\r\nTo-Path: msrp://127.0.0.1:7000/me;tcp\r\nFrom-Path: msrp://relay.example.com:9000;tcp\r\n"
    );
    for h in headers {
        text.push_str(h);
        text.push_str("\r\n");
    }
    text.push_str(&format!("-------{tid}$\r\n"));
    head(text.as_bytes())
}

fn failure(client: &mut AuthClient) -> AuthError {
    match client.poll_event() {
        Some(AuthEvent::Failed(error)) => error,
        other => panic!("no failure: {other:?}"),
    }
}

const CHALLENGE: &str = "WWW-Authenticate: Digest realm=\"r\", nonce=\"n1\", qop=\"auth\"";

#[test]
fn auth_goes_over_tls_unless_named() {
    assert!(matches!(one_relay(AuthTransport::TlsOnly), Err(AuthError::NotTls { .. })));
    assert!(one_relay(AuthTransport::PlainTcpForTestRelays).is_ok());
    assert_eq!(AuthClient::new(AuthConfig::new(alice(), Vec::new())).err(), Some(AuthError::NoRelays));
}

#[test]
fn failures_are_typed() {
    let t0 = epoch();
    let mut ids = Counter(0);
    let mut client = one_relay(AuthTransport::PlainTcpForTestRelays).unwrap();

    // 403.
    client.start(t0, &mut ids);
    let auth = client.poll_transmit().unwrap();
    assert!(client.handle_response(&response(&auth, "403 Forbidden", &[]), t0, &mut ids));
    assert!(matches!(failure(&mut client), AuthError::Forbidden { .. }));
    assert_eq!(client.poll_timeout(), None, "nothing more after a failure");

    // 423 with the relay's bounds.
    client.start(t0, &mut ids);
    let auth = client.poll_transmit().unwrap();
    client.handle_response(&response(&auth, "423 Interval Out-of-Bounds", &["Min-Expires: 600"]), t0, &mut ids);
    assert!(matches!(
        failure(&mut client),
        AuthError::IntervalOutOfBounds { min_expires: Some(600), max_expires: None, .. }
    ));

    // A second 401, not stale: the password is wrong.
    client.start(t0, &mut ids);
    let auth = client.poll_transmit().unwrap();
    client.handle_response(&response(&auth, "401 Unauthorized", &[CHALLENGE]), t0, &mut ids);
    let answered = client.poll_transmit().unwrap();
    client.handle_response(&response(&answered, "401 Unauthorized", &[CHALLENGE]), t0, &mut ids);
    assert!(matches!(failure(&mut client), AuthError::Rejected { .. }));

    // Basic is refused (RFC 4976 s.9.1), and so is a 200 without Use-Path.
    client.start(t0, &mut ids);
    let auth = client.poll_transmit().unwrap();
    client.handle_response(
        &response(&auth, "401 Unauthorized", &["WWW-Authenticate: Basic realm=\"r\""]),
        t0,
        &mut ids,
    );
    assert!(matches!(failure(&mut client), AuthError::Challenge { .. }));
    client.start(t0, &mut ids);
    let auth = client.poll_transmit().unwrap();
    client.handle_response(&response(&auth, "200 OK", &[]), t0, &mut ids);
    assert!(matches!(failure(&mut client), AuthError::NoUsePath { .. }));

    // No answer.
    client.start(t0, &mut ids);
    let auth = client.poll_transmit().unwrap();
    let deadline = client.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + Duration::from_secs(30));
    client.handle_timeout(deadline - Duration::from_millis(1), &mut ids);
    assert_eq!(client.poll_event(), None);
    client.handle_timeout(deadline, &mut ids);
    assert!(matches!(failure(&mut client), AuthError::Timeout { .. }));
    // A late answer, or one to another transaction, is not taken.
    assert!(!client.handle_response(&response(&auth, "200 OK", &[]), deadline, &mut ids));
}

#[test]
fn a_stale_nonce_is_answered_once_more() {
    let t0 = epoch();
    let mut ids = Counter(0);
    let mut client = one_relay(AuthTransport::PlainTcpForTestRelays).unwrap();
    client.start(t0, &mut ids);
    let auth = client.poll_transmit().unwrap();
    client.handle_response(&response(&auth, "401 Unauthorized", &[CHALLENGE]), t0, &mut ids);
    let answered = client.poll_transmit().unwrap();
    let stale = "WWW-Authenticate: Digest realm=\"r\", nonce=\"n2\", qop=\"auth\", stale=true";
    client.handle_response(&response(&answered, "401 Unauthorized", &[stale]), t0, &mut ids);
    let retried = client.poll_transmit().expect("answered again");
    let credentials = Credentials::parse(on_the_wire(&retried).authorization().unwrap()).unwrap();
    assert_eq!(credentials.nonce, "n2");
    client.handle_response(
        &response(&retried, "200 OK", &["Use-Path: msrp://relay.example.com:9000/u1;tcp"]),
        t0,
        &mut ids,
    );
    assert!(matches!(client.poll_event(), Some(AuthEvent::Authenticated { expires: None, .. })));
    assert_eq!(client.poll_timeout(), None, "no Expires: nothing to refresh");
    // A relay whose rspauth is wrong has not proved it holds the secret.
    client.start(t0, &mut ids);
    let auth = client.poll_transmit().unwrap();
    client.handle_response(&response(&auth, "401 Unauthorized", &[CHALLENGE]), t0, &mut ids);
    let answered = client.poll_transmit().unwrap();
    let forged =
        "Authentication-Info: rspauth=\"00000000000000000000000000000000\", cnonce=\"x\", nc=00000001, qop=auth";
    client.handle_response(
        &response(&answered, "200 OK", &["Use-Path: msrp://relay.example.com:9000/u1;tcp", forged]),
        t0,
        &mut ids,
    );
    assert!(matches!(failure(&mut client), AuthError::RelayNotAuthenticated { .. }));
}
