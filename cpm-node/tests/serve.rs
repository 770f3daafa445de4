//! A deployable node on real sockets: the shipped receiver config served
//! (SIP over UDP, MSRP over TCP, or both over TLS) takes a large message
//! from a sender and reports it delivered; a stopping node ends its
//! sessions.

mod support;

use std::time::Duration;

use bytes::Bytes;
use cpm_node::NodeConfig;
use cpm_roles::Outcome;
use support::node::{free_port, outcome_of, send_to_bob, sender, shipped, ServedB};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_receiver_takes_a_large_message() {
    let b = ServedB::start("");

    // A sender on its own sockets, routed to the node over UDP.
    let mut host = sender(b.sip, 3).await;
    let body = Bytes::from(vec![b'x'; 300_000]);
    let session = send_to_bob(&host, body).await;
    let outcome = outcome_of(&mut host, session).await;
    assert_eq!(outcome, Outcome::Delivered);
    host.shutdown().await;
    b.stop().await;
}

/// An OPTIONS request from `port`'s socket, with its own Call-ID.
fn options(n: usize, port: u16) -> String {
    format!(
        "OPTIONS sip:bob@b.example SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKflood{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:x@x.example>;tag=f{n}\r\nTo: <sip:bob@b.example>\r\n\
         Call-ID: flood{n}@x.example\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// A flood of datagrams from many source addresses cannot lock a node out:
/// past its bound of peer flows, the peer heard from least recently is
/// forgotten, and every new peer is still answered (RFC 3261 s.11.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_datagram_peers_past_the_flow_bound_are_still_answered() {
    let b = ServedB::start("\n[limits]\nmax_sessions = 4\n");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // 4 sessions allow 16 peer flows; 40 peers each send one OPTIONS.
    let mut answered = 0;
    for n in 0..40 {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bound");
        let port = socket.local_addr().expect("an address").port();
        socket.send_to(options(n, port).as_bytes(), ("127.0.0.1", b.sip)).await.expect("sent");
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok((len, _))) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf)).await {
            answered += usize::from(buf[..len].starts_with(b"SIP/2.0 200"));
        }
    }
    assert_eq!(answered, 40, "every peer is answered");
    b.stop().await;
}

/// MSRP connections past the node's bound are closed at once: a peer that
/// opens connections and says nothing cannot exhaust the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msrp_connections_past_the_bound_are_closed() {
    use tokio::io::AsyncReadExt;
    let b = ServedB::start("\n[limits]\nmax_sessions = 4\n");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut open = Vec::new();
    for _ in 0..24 {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", b.msrp)).await.expect("connected");
        open.push(stream);
        // Accepted one by one, in order.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut closed = Vec::new();
    for stream in &mut open {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(100), stream.read(&mut byte)).await;
        closed.push(matches!(read, Ok(Ok(0) | Err(_))));
    }
    // 4 sessions allow 16 links: the first 16 wait for a request, the rest are closed.
    assert_eq!(closed.iter().filter(|c| **c).count(), 8, "{closed:?}");
    assert!(closed[..16].iter().all(|c| !c), "{closed:?}");
    b.stop().await;
}

/// A node told to stop while a message is on its way (here the sender
/// stops reading, so the transfer is stuck half way): it ends its session
/// with BYE, the sender learns the session ended before the message
/// arrived, and the node stops cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_during_a_transfer_ends_its_session() {
    let mut b = ServedB::start("");
    let mut host = sender(b.sip, 4).await;
    // A never reads B's answers: B stops reading once 1024 are owed, and
    // the 16 MiB message stays half way.
    host.hold_reading(0, true).await;
    let session = send_to_bob(&host, Bytes::from(vec![b'x'; 16 << 20])).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.tell_stop();
    let outcome = outcome_of(&mut host, session).await;
    assert_eq!(outcome, Outcome::SessionEnded, "B ended the session (BYE) before the message arrived");
    b.stop().await;
    host.shutdown().await;
}

/// SIP streams a peer opens and keeps silent are closed after the idle
/// timeout, which frees their flows: a peer holding connections cannot lock
/// others out for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sip_streams_are_closed_after_the_idle_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let b = ServedB::start("\n[limits]\nmax_sessions = 4\nidle_timeout_secs = 1\n");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // 16 silent streams fill the node's flows.
    let mut silent = Vec::new();
    for _ in 0..16 {
        silent.push(tokio::net::TcpStream::connect(("127.0.0.1", b.sip)).await.expect("connected"));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Past the idle timeout they are closed, and a new peer is served.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    for stream in &mut silent {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(0) | Err(_))), "a silent stream stays open: {read:?}");
    }
    let mut peer = tokio::net::TcpStream::connect(("127.0.0.1", b.sip)).await.expect("connected");
    let port = peer.local_addr().expect("an address").port();
    peer.write_all(options(99, port).replace("UDP", "TCP").as_bytes()).await.expect("sent");
    let mut buf = vec![0u8; 4096];
    let len =
        tokio::time::timeout(Duration::from_secs(2), peer.read(&mut buf)).await.expect("an answer").expect("read");
    assert!(buf[..len].starts_with(b"SIP/2.0 200"), "{}", String::from_utf8_lossy(&buf[..len]));
    b.stop().await;
}

/// A self-signed certificate and its key written into `dir`; the `[tls]`
/// lines naming them.
fn certificate_files(dir: &std::path::Path, name: &str) -> (support::TestCert, String) {
    let cert = support::self_signed(&[&format!("{name}.example")]);
    let (cert_path, key_path) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&cert_path, &cert.cert_pem).expect("written");
    std::fs::write(&key_path, &cert.key_pem).expect("written");
    let lines = format!("cert = {:?}\nkey = {:?}\n", cert_path.display().to_string(), key_path.display().to_string());
    (cert, lines)
}

/// `send` from the shipped sender config, changed by `edit`, to the node
/// at `b_sip`; the report.
async fn send_from_a(edit: impl Fn(String) -> String) -> cpm_node::serve::SendReport {
    let a = edit(shipped("a.toml", &[(5160, free_port()), (7160, free_port())], ""));
    let a = NodeConfig::parse(&a).unwrap_or_else(|e| panic!("{e}: {a}"));
    let body = Bytes::from(vec![b'x'; 300_000]);
    let mut out = Vec::new();
    cpm_node::serve::send(&a, "sip:bob@b.example", "text/plain", body, Duration::from_secs(20), &mut out)
        .await
        .expect("sent")
}

/// A node serving SIP and MSRP over TLS with a self-signed certificate
/// (RFC 4975 s.14.4 peer-to-peer TLS): a sender that pins the node's
/// certificate in its config reaches its SIP listener, and its MSRP link,
/// with the answer's `msrps` path and `a=fingerprint`, over TLS too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serves_sip_and_msrp_over_tls() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let (b_cert, b_tls) = certificate_files(dir.path(), "b");
    let (_, a_tls) = certificate_files(dir.path(), "a");
    let [sip, msrp] = [free_port(), free_port()];
    let b_config = shipped("b.toml", &[(5164, sip), (7164, msrp)], &format!("[tls]\n{b_tls}"))
        .replace(
            &format!("\"udp://127.0.0.1:{sip}\", \"tcp://127.0.0.1:{sip}\""),
            &format!("\"tls://127.0.0.1:{sip}\""),
        )
        .replace(&format!("tcp://127.0.0.1:{msrp}"), &format!("tls://127.0.0.1:{msrp}"));
    let b = ServedB::serve(sip, msrp, &b_config);

    let pin = cpm_node::Fingerprint::of_certificate(&b_cert.der);
    let report = send_from_a(|a| {
        a.replace("udp://127.0.0.1:5161", &format!("tls://127.0.0.1:{sip}"))
            .replace("tcp://127.0.0.1:", "tls://127.0.0.1:")
            + &format!("\n[tls]\n{a_tls}fingerprints = [\"{pin}\"]\n")
    })
    .await;
    assert_eq!(report.outcome, Some(Outcome::Delivered), "{report:?}");
    b.stop().await;
}

/// Between peers without a CA (RFC 4975 s.14.4), a sender opens its MSRP
/// link over TLS pinned to the certificate the node's SDP names; a sender
/// whose operator chose a CA keeps to it, and the node's self-signed
/// certificate is refused (a fingerprint is only as trustworthy as the
/// signalling that carried it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_msrps_link_is_pinned_to_the_fingerprint_in_the_peer_s_sdp() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let (_, b_tls) = certificate_files(dir.path(), "b");
    let [sip, msrp] = [free_port(), free_port()];
    let b_config = shipped("b.toml", &[(5164, sip), (7164, msrp)], &format!("[tls]\n{b_tls}"))
        .replace(&format!("tcp://127.0.0.1:{msrp}"), &format!("tls://127.0.0.1:{msrp}"));
    let b = ServedB::serve(sip, msrp, &b_config);
    let route = |a: String| a.replace("udp://127.0.0.1:5161", &format!("udp://127.0.0.1:{sip}"));

    let report = send_from_a(route).await;
    assert_eq!(report.outcome, Some(Outcome::Delivered), "{report:?}");

    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, support::TestCa::new().pem()).expect("written");
    let report = send_from_a(|a| route(a) + &format!("\n[tls]\nca = {:?}\n", other_ca.display().to_string())).await;
    assert!(report.outcome.is_some_and(|o| !o.is_delivered()), "{report:?}");
    b.stop().await;
}

/// One HTTP/1.1 request to `port`; the whole response (empty when the
/// connection was closed unanswered).
async fn http(port: u16, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connected");
    let _ = stream.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    assert!(read.is_ok(), "no answer to {request:?}");
    String::from_utf8_lossy(&response).into_owned()
}

/// The value of the sample line `name` in an exposition.
fn sample(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// `metrics_listen`: `GET /metrics` tells what the node's entity did, in
/// the Prometheus text format; another path is 404, another method 405;
/// scrapers that hold connections open cannot take more than the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serves_its_stats_as_prometheus_metrics() {
    let [sip, msrp, metrics] = [free_port(), free_port(), free_port()];
    let config = shipped("b.toml", &[(5164, sip), (7164, msrp)], "").replacen(
        "\n[identity]",
        &format!("metrics_listen = \"tcp://127.0.0.1:{metrics}\"\n\n[identity]"),
        1,
    );
    let b = ServedB::serve(sip, msrp, &config);
    let mut host = sender(sip, 5).await;
    let session = send_to_bob(&host, Bytes::from(vec![b'x'; 200_000])).await;
    assert_eq!(outcome_of(&mut host, session).await, Outcome::Delivered);

    let scrape = "GET /metrics HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n";
    let response = http(metrics, scrape).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("content-type: application/openmetrics-text"), "{response}");
    let received = sample(&response, "cpm_msrp_bytes_received_total{entity=\"b\"}").expect(&response);
    assert!(received >= 200_000, "{response}");
    assert!(sample(&response, "cpm_sip_messages_received_total{entity=\"b\"}").is_some_and(|n| n >= 2), "{response}");
    assert!(response.ends_with("# EOF\n"), "{response}");

    let other = http(metrics, "GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n").await;
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");
    let post =
        http(metrics, "POST /metrics HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
    assert!(post.starts_with("HTTP/1.1 405") && post.contains("allow: GET, HEAD"), "{post}");

    // Idle connections up to the bound; the next one is closed unanswered.
    let mut idle = Vec::new();
    for _ in 0..cpm_node::metrics::MAX_CONNECTIONS {
        idle.push(tokio::net::TcpStream::connect(("127.0.0.1", metrics)).await.expect("connected"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(http(metrics, scrape).await, "", "a connection past the bound was served");
    drop(idle);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(http(metrics, scrape).await.starts_with("HTTP/1.1 200"), "the bound was not given back");

    host.shutdown().await;
    b.stop().await;
}
