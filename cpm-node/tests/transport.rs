//! Transports on loopback: TCP and UDP round trips, TLS verified by a CA
//! (RFC 4975 s.5.4) or by a pinned fingerprint (RFC 4975 s.14.4), and the
//! handshake deadline.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cpm_node::transport::{
    connect, write_all_parts, DatagramSocket, Fingerprint, ListenAddr, Listener, Security, TlsClient, TlsMode,
    TlsServerConfig, Transport, TransportError, MAX_DATAGRAM,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Generous for loopback, short enough that a failing test ends quickly.
const DEADLINE: Duration = Duration::from_secs(3);

fn loopback(transport: Transport) -> ListenAddr {
    ListenAddr::new(transport, SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// An MSRP SEND as the encoder hands it out: head, body, end-line.
fn frame_parts() -> [Bytes; 3] {
    [
        Bytes::from_static(b"MSRP a786hjs2 SEND\r\nTo-Path: msrp://b.example:7777/iau39;tcp\r\n\r\n"),
        Bytes::from(vec![b'x'; 100_000]),
        Bytes::from_static(b"\r\n-------a786hjs2$\r\n"),
    ]
}

fn joined(parts: &[Bytes]) -> Vec<u8> {
    parts.iter().flat_map(|part| part.iter().copied()).collect()
}

/// Accepts one connection and echoes everything back until the peer closes.
fn spawn_echo(mut listener: Listener) -> tokio::task::JoinHandle<Listener> {
    tokio::spawn(async move {
        let (conn, _peer) = listener.accept().await.expect("accepted");
        let (mut reader, mut writer) = conn.into_split();
        tokio::io::copy(&mut reader, &mut writer).await.expect("echoed");
        writer.shutdown().await.expect("shut down");
        listener
    })
}

/// Sends the frame on `mode`, reads the echo and checks it.
async fn echo_round_trip(addr: SocketAddr, host: &str, mode: &TlsMode) -> Result<Security, TransportError> {
    let conn = connect(addr, host, mode, DEADLINE).await?;
    let security = conn.security();
    let (mut reader, mut writer) = conn.into_split();
    let parts = frame_parts();
    writer.write_all_parts(&parts).await.expect("written");
    writer.shutdown().await.expect("shut down");
    let mut echoed = Vec::new();
    reader.read_to_end(&mut echoed).await.expect("read");
    assert_eq!(echoed, joined(&parts));
    Ok(security)
}

async fn tls_listener(cert: &support::TestCert, handshake_timeout: Duration) -> Listener {
    let config = TlsServerConfig::new(vec![cert.der.clone()], cert.key(), handshake_timeout).expect("server config");
    Listener::bind(&loopback(Transport::Tls), Some(Arc::new(config))).await.expect("bound")
}

#[tokio::test]
async fn tcp_echo_round_trip_with_vectored_parts() {
    let listener = Listener::bind(&loopback(Transport::Tcp), None).await.expect("bound");
    let addr = listener.local_addr();
    assert_eq!(addr.transport, Transport::Tcp);
    assert_ne!(addr.addr.port(), 0);
    let server = spawn_echo(listener);
    let security = echo_round_trip(addr.addr, "127.0.0.1", &TlsMode::Plain).await.expect("round trip");
    assert_eq!(security, Security::Plain);
    let listener = server.await.expect("server task");
    assert_eq!(listener.stats().accepted, 1);
}

#[tokio::test]
async fn udp_one_message_per_datagram() {
    let mut server = DatagramSocket::bind(&loopback(Transport::Udp)).await.expect("bound");
    let mut client = DatagramSocket::bind(&loopback(Transport::Udp)).await.expect("bound");
    let to = server.local_addr().addr;
    let head = Bytes::from_static(b"OPTIONS sip:b@b.example SIP/2.0\r\nContent-Length: 5\r\n\r\n");
    let body = Bytes::from_static(b"hello");
    client.send_to(&[head.clone(), body.clone()], to).await.expect("sent");
    client.send_to(&[Bytes::from_static(b"second")], to).await.expect("sent");

    let (first, from) = server.recv_from().await.expect("received");
    assert_eq!(first, Bytes::from(joined(&[head, body])));
    assert_eq!(from, client.local_addr().addr);
    let (second, _) = server.recv_from().await.expect("received");
    assert_eq!(second, Bytes::from_static(b"second"));

    server.send_to(&[Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n")], from).await.expect("answered");
    let (answer, _) = client.recv_from().await.expect("received");
    assert_eq!(answer, Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n"));

    let too_large = Bytes::from(vec![0; MAX_DATAGRAM + 1]);
    let error = client.send_to(&[too_large], to).await.expect_err("too large");
    assert!(matches!(error, TransportError::DatagramTooLarge { len } if len == MAX_DATAGRAM + 1), "{error}");
}

#[tokio::test]
async fn bind_rejects_the_wrong_transport() {
    let error = Listener::bind(&loopback(Transport::Udp), None).await.expect_err("udp is not a stream");
    assert!(matches!(error, TransportError::WrongTransport { .. }), "{error}");
    let error = Listener::bind(&loopback(Transport::Tls), None).await.expect_err("tls needs a certificate");
    assert!(matches!(error, TransportError::MissingTlsConfig { .. }), "{error}");
    let error = DatagramSocket::bind(&loopback(Transport::Tcp)).await.expect_err("tcp is not a datagram");
    assert!(matches!(error, TransportError::WrongTransport { .. }), "{error}");
}

#[tokio::test]
async fn connect_refused_is_a_connect_error() {
    // Bind, learn the port, close: nothing listens there any more.
    let addr = Listener::bind(&loopback(Transport::Tcp), None).await.expect("bound").local_addr().addr;
    let error = connect(addr, "127.0.0.1", &TlsMode::Plain, DEADLINE).await.expect_err("refused");
    assert!(matches!(error, TransportError::Connect { .. }), "{error}");
}

#[tokio::test]
async fn tls_with_a_ca_signed_certificate_for_localhost() {
    let ca = support::TestCa::new();
    let leaf = ca.issue(&["localhost"]);
    let listener = tls_listener(&leaf, DEADLINE).await;
    let addr = listener.local_addr().addr;
    let server = spawn_echo(listener);
    let client = Arc::new(TlsClient::with_roots(vec![ca.der()]).expect("client config"));
    let security = echo_round_trip(addr, "localhost", &TlsMode::Tls(client)).await.expect("TLS round trip");
    assert_eq!(security, Security::Tls { peer: Some(Fingerprint::of_certificate(&leaf.der)) });
    let listener = server.await.expect("server task");
    assert_eq!(listener.stats().accepted, 1);
}

#[tokio::test]
async fn tls_san_mismatch_is_a_name_mismatch() {
    let ca = support::TestCa::new();
    let leaf = ca.issue(&["localhost"]);
    let listener = tls_listener(&leaf, DEADLINE).await;
    let addr = listener.local_addr().addr;
    let client = Arc::new(TlsClient::with_roots(vec![ca.der()]).expect("client config"));
    let error = connect(addr, "b.example", &TlsMode::Tls(client), DEADLINE).await.expect_err("wrong name");
    match error {
        TransportError::NameMismatch { addr: peer, host } => {
            assert_eq!(peer, addr);
            assert_eq!(host, "b.example");
        }
        other => panic!("expected NameMismatch, got {other:?}"),
    }
    drop(listener);
}

#[tokio::test]
async fn tls_unknown_issuer_is_untrusted() {
    let leaf = support::TestCa::new().issue(&["localhost"]);
    let listener = tls_listener(&leaf, DEADLINE).await;
    let addr = listener.local_addr().addr;
    let other_ca = support::TestCa::new();
    let client = Arc::new(TlsClient::with_roots(vec![other_ca.der()]).expect("client config"));
    let error = connect(addr, "localhost", &TlsMode::Tls(client), DEADLINE).await.expect_err("unknown issuer");
    assert!(matches!(error, TransportError::UntrustedCertificate { .. }), "{error:?}");
    drop(listener);
}

#[tokio::test]
async fn pinned_fingerprint_accepts_exactly_that_certificate() {
    let cert = support::self_signed(&["alice.example"]);
    let fingerprint = Fingerprint::of_certificate(&cert.der);
    let server_config = TlsServerConfig::new(vec![cert.der.clone()], cert.key(), DEADLINE).expect("server config");
    assert_eq!(server_config.fingerprint(), fingerprint);
    // The SDP carries the attribute as text (RFC 4572 s.5); it round-trips.
    let from_sdp: Fingerprint = fingerprint.to_string().parse().expect("parsed");
    assert_eq!(from_sdp, fingerprint);

    let mut listener = Listener::bind(&loopback(Transport::Tls), Some(Arc::new(server_config))).await.expect("bound");
    let addr = listener.local_addr().addr;

    // The right fingerprint: accepted whatever the names (an IP here).
    let pinned = Arc::new(TlsClient::pinned(vec![from_sdp]).expect("pinned client"));
    let server = spawn_echo(listener);
    let security = echo_round_trip(addr, "127.0.0.1", &TlsMode::Tls(pinned)).await.expect("pinned round trip");
    assert_eq!(security, Security::Tls { peer: Some(fingerprint) });
    listener = server.await.expect("server task");

    // Another fingerprint: refused, naming the one presented.
    let other = Fingerprint::of_certificate(&support::self_signed(&["mallory.example"]).der);
    let wrong = Arc::new(TlsClient::pinned(vec![other]).expect("pinned client"));
    let error = connect(addr, "127.0.0.1", &TlsMode::Tls(wrong), DEADLINE).await.expect_err("not pinned");
    match error {
        TransportError::FingerprintMismatch { presented, .. } => assert_eq!(presented, fingerprint),
        other => panic!("expected FingerprintMismatch, got {other:?}"),
    }

    // The server saw one handshake fail; it hands out nothing for it.
    for _ in 0..200 {
        if listener.stats().handshake_failures == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(listener.stats().handshake_failures, 1);
    assert_eq!(listener.stats().accepted, 1);
}

#[tokio::test]
async fn a_peer_that_never_speaks_tls_hits_the_handshake_deadline() {
    // Accepts TCP, then holds the socket without a byte of TLS.
    let mut silent = Listener::bind(&loopback(Transport::Tcp), None).await.expect("bound");
    let addr = silent.local_addr().addr;
    let holder = tokio::spawn(async move {
        let (conn, _) = silent.accept().await.expect("accepted");
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(conn);
    });
    let client = Arc::new(TlsClient::pinned(vec![Fingerprint::from_bytes([7; 32])]).expect("pinned client"));
    let short = Duration::from_millis(200);
    let started = tokio::time::Instant::now();
    let error = connect(addr, "127.0.0.1", &TlsMode::Tls(client), short).await.expect_err("deadline");
    let took = started.elapsed();
    assert!(matches!(error, TransportError::HandshakeTimeout { after, .. } if after == short), "{error:?}");
    assert!(took >= short && took < Duration::from_secs(2), "took {took:?}");
    holder.abort();
}

#[tokio::test]
async fn a_silent_client_does_not_block_the_tls_listener() {
    let cert = support::self_signed(&["localhost"]);
    let listener = tls_listener(&cert, Duration::from_millis(200)).await;
    let addr = listener.local_addr().addr;
    // A client that connects and never sends a ClientHello.
    let silent = tokio::net::TcpStream::connect(addr).await.expect("connected");
    // A real client behind it still gets through at once.
    let server = spawn_echo(listener);
    let pinned = Arc::new(TlsClient::pinned(vec![Fingerprint::of_certificate(&cert.der)]).expect("pinned"));
    echo_round_trip(addr, "localhost", &TlsMode::Tls(pinned)).await.expect("round trip past the silent client");
    let listener = server.await.expect("server task");
    // The silent one's handshake is dropped at the server's deadline.
    for _ in 0..200 {
        if listener.stats().handshake_failures == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(listener.stats().handshake_failures, 1);
    drop(silent);
}

#[tokio::test]
async fn tls_server_and_client_configs_from_pem_files() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = support::TestCa::new();
    let leaf = ca.issue(&["localhost"]);
    let (cert_path, key_path, ca_path) =
        (dir.path().join("cert.pem"), dir.path().join("key.pem"), dir.path().join("ca.pem"));
    std::fs::write(&cert_path, &leaf.cert_pem).expect("written");
    std::fs::write(&key_path, &leaf.key_pem).expect("written");
    std::fs::write(&ca_path, ca.pem()).expect("written");

    let server = TlsServerConfig::from_pem_files(&cert_path, &key_path, DEADLINE).expect("server config");
    assert_eq!(server.fingerprint(), Fingerprint::of_certificate(&leaf.der));
    let listener = Listener::bind(&loopback(Transport::Tls), Some(Arc::new(server))).await.expect("bound");
    let addr = listener.local_addr().addr;
    let echo = spawn_echo(listener);
    let client = Arc::new(TlsClient::with_ca_file(&ca_path).expect("client config"));
    echo_round_trip(addr, "localhost", &TlsMode::Tls(client)).await.expect("round trip");
    drop(echo.await.expect("server task"));

    // A key file given as the certificate: no certificate in it.
    let error = TlsServerConfig::from_pem_files(&key_path, &key_path, DEADLINE).expect_err("no certificate");
    assert!(matches!(error, cpm_node::transport::TlsSetupError::NoCertificate { .. }), "{error}");
    // A certificate whose key is another one's.
    let other = ca.issue(&["localhost"]);
    let error = TlsServerConfig::new(vec![leaf.der.clone()], other.key(), DEADLINE).expect_err("mismatched key");
    assert!(matches!(error, cpm_node::transport::TlsSetupError::Rustls(_)), "{error}");
}

#[tokio::test]
async fn write_all_parts_skips_empty_parts() {
    let (mut near, mut far) = tokio::io::duplex(64);
    let parts = [Bytes::new(), Bytes::from_static(b"head "), Bytes::new(), Bytes::from(vec![b'b'; 500])];
    let writer = tokio::spawn(async move {
        write_all_parts(&mut near, &parts).await.expect("written");
    });
    let mut received = Vec::new();
    let mut buf = [0; 1000];
    while received.len() < 505 {
        let n = far.read(&mut buf).await.expect("read");
        assert_ne!(n, 0, "closed early");
        received.extend_from_slice(&buf[..n]);
    }
    writer.await.expect("writer task");
    assert!(received.starts_with(b"head b"));
    assert_eq!(received.len(), 505);
}
