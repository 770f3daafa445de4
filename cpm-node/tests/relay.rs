//! RFC 4976 relays over real sockets. Our `relay` role: clients AUTH to it
//! with Digest ([`AuthClient`]) and exchange a 5 MiB message through it,
//! checked byte for byte, by their peer's Use-Path alone and by the full
//! path of RFC 4976 s.5.1 (their own Use-Path first); a wrong password is
//! refused; `../shared/interop/msrp_relay_probe.py`, a client written
//! independently of this project, passes through it. Kamailio's `msrp`
//! module as the relay: our clients AUTH to it (without and with Digest)
//! and exchange 5 MiB through it. Kamailio and python3 are installed by
//! `.ci/run`; without them those tests skip loudly.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cpm_node::relay;
use cpm_node::NodeConfig;
use msrp_core::auth::{AuthClient, AuthConfig, AuthError, AuthEvent, AuthTransport, RelayAccount};
use msrp_core::{ByteRange, Encoder, Frame, FrameHead, Framer, FramerEvent, IdSource, Limits, MessageId, MsrpUri};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use support::node::free_port;
use support::{interop_dir, skip, tool};

struct Counter(u64);
impl IdSource for Counter {
    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            *b = (self.0 >> 33) as u8;
        }
    }
}

const CONFIG: &str = r#"
role = "relay"
log = "warn"
msrp_listen = ["tcp://127.0.0.1:0"]
[identity]
name = "relay"
host = "127.0.0.1"
uri = "sip:relay@relay.example"
[relay]
realm = "relay.example"
auth_over_tcp = true
[[relay.user]]
name = "alice"
password = "alice-secret"
[[relay.user]]
name = "bob"
password = "bob-secret"
"#;

fn uri(text: &str) -> MsrpUri {
    MsrpUri::parse_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// One client connection: frames in, frames out.
struct Client {
    me: MsrpUri,
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    framer: Framer,
    ids: Counter,
}

/// A frame read whole.
struct Read {
    head: FrameHead,
    body: BytesMut,
}

impl Client {
    async fn connect(relay: std::net::SocketAddr, me: &str, seed: u64) -> Self {
        let (reader, writer) = TcpStream::connect(relay).await.expect("connected").into_split();
        Self { me: uri(me), reader, writer, framer: Framer::new(Limits::default()), ids: Counter(seed) }
    }

    async fn send(&mut self, frame: &Frame) {
        let t = Encoder::new().encode(frame, &mut self.ids).expect("encodes");
        let wire = [t.head, t.body, t.end_line].concat();
        self.writer.write_all(&wire).await.expect("written");
    }

    /// The next whole frame.
    async fn next(&mut self) -> Read {
        let mut head = None;
        let mut body = BytesMut::new();
        loop {
            while let Some(event) = self.framer.poll_event() {
                match event.expect("valid MSRP from the relay") {
                    FramerEvent::Head(h) => head = Some(h),
                    FramerEvent::Body(piece) => body.extend_from_slice(&piece),
                    FramerEvent::End(_) => return Read { head: head.take().expect("a head"), body },
                    FramerEvent::Rejected { error, .. } => panic!("rejected: {error:?}"),
                }
            }
            let mut buf = BytesMut::with_capacity(64 * 1024);
            let n = tokio::time::timeout(Duration::from_secs(10), self.reader.read_buf(&mut buf))
                .await
                .expect("the relay answers in time")
                .expect("read");
            assert!(n > 0, "the relay closed the connection");
            self.framer.handle_segment(buf.freeze());
        }
    }

    /// AUTH with `user`/`password`: the Use-Path, or why not.
    async fn authenticate(&mut self, relay: &MsrpUri, user: &str, password: &str) -> Result<Vec<MsrpUri>, AuthError> {
        let mut config = AuthConfig::new(self.me.clone(), vec![RelayAccount::new(relay.clone(), user, password)]);
        config.transport = AuthTransport::PlainTcpForTestRelays;
        let mut auth = AuthClient::new(config).expect("a client");
        let now = cpm_node::host::now();
        auth.start(now, &mut self.ids);
        loop {
            while let Some(frame) = auth.poll_transmit() {
                self.send(&frame).await;
            }
            match auth.poll_event() {
                Some(AuthEvent::Authenticated { use_path, .. }) => return Ok(use_path),
                Some(AuthEvent::Failed(error)) => return Err(error),
                _ => {}
            }
            let read = self.next().await;
            assert!(auth.handle_response(&read.head, now, &mut self.ids), "an answer to our AUTH");
        }
    }
}

async fn relay_node() -> relay::RelayNode {
    let config = NodeConfig::parse(CONFIG).unwrap_or_else(|e| panic!("{e}"));
    relay::start(&config).await.expect("the relay starts")
}

/// A sends `size` bytes in 4 KiB chunks to `to_path`; B reads them, answers
/// each, and returns what it got; A drains its answers meanwhile.
async fn transfer(a: Client, mut b: Client, to_path: Vec<MsrpUri>, size: usize) -> usize {
    let message: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let expected = crc32fast::hash(&message);
    let id = MessageId::from_text("relayed-5MiB").expect("an id");
    let sender = tokio::spawn(async move {
        let from = a.me.clone();
        let (mut reader, mut writer, mut ids) = (a.reader, a.writer, a.ids);
        // The relay's 200s (and any REPORT) are read and counted.
        let answers = tokio::spawn(async move {
            let mut framer = Framer::new(Limits::default());
            let mut oks = 0usize;
            let mut buf = BytesMut::with_capacity(64 * 1024);
            while reader.read_buf(&mut buf).await.is_ok_and(|n| n > 0) {
                framer.handle_segment(buf.split().freeze());
                while let Some(Ok(event)) = framer.poll_event() {
                    if let FramerEvent::Head(head) = event {
                        assert_ne!(head.method_name(), Some("REPORT"), "a failure REPORT: {head:?}");
                        if head.status_code() == Some(200) {
                            oks += 1;
                        }
                    }
                }
            }
            oks
        });
        let mut start = 0;
        for chunk in message.chunks(4096) {
            let range = ByteRange {
                start: start as u64 + 1,
                end: Some((start + chunk.len()) as u64),
                total: Some(size as u64),
            };
            let frame = Frame::send(
                to_path.clone(),
                vec![from.clone()],
                "application/octet-stream",
                Bytes::copy_from_slice(chunk),
            )
            .with_message_id(&id)
            .with_byte_range(range);
            let t = Encoder::new().encode(&frame, &mut ids).expect("encodes");
            writer.write_all(&[t.head, t.body, t.end_line].concat()).await.expect("written");
            start += chunk.len();
        }
        (writer, answers)
    });
    let mut got = vec![0u8; size];
    let mut received = 0;
    while received < size {
        let read = b.next().await;
        assert_eq!(read.head.method_name(), Some("SEND"));
        assert_eq!(read.head.to_path().collect::<Vec<_>>(), [b.me.as_str()]);
        let range = read.head.byte_range().expect("a Byte-Range");
        let at = usize::try_from(range.start - 1).expect("fits");
        got[at..at + read.body.len()].copy_from_slice(&read.body);
        received += read.body.len();
        let ok = Frame::response(
            read.head.transaction_id(),
            200,
            Some("OK"),
            read.head.from_path_uris().take(1).collect(),
            vec![b.me.clone()],
        );
        b.send(&ok).await;
    }
    let (writer, answers) = sender.await.expect("A sent");
    drop(writer);
    assert_eq!(crc32fast::hash(&got), expected, "the message arrived intact");
    drop(b);
    tokio::time::timeout(Duration::from_secs(10), answers).await.expect("A's answers end").expect("counted")
}

#[tokio::test]
async fn two_clients_exchange_5_mib_through_the_relay() {
    let node = relay_node().await;
    let addr = node.addr(0).expect("a listener");
    let relay = node.uri(0).expect("its URI").clone();
    let mut a = Client::connect(addr, "msrp://127.0.0.1:40001/alice;tcp", 1).await;
    let mut b = Client::connect(addr, "msrp://127.0.0.1:40002/bob;tcp", 2).await;
    let a_path = a.authenticate(&relay, "alice", "alice-secret").await.expect("alice is in");
    let b_path = b.authenticate(&relay, "bob", "bob-secret").await.expect("bob is in");
    assert_ne!(a_path, b_path);
    assert_eq!(a_path[0].port(), Some(addr.port()));
    // B's a=path (RFC 4976 s.5.1): its Use-Path reversed, then its own URI.
    let b_sdp_path = msrp_core::auth::sdp_path(&b_path, &b.me);
    let size = 5 << 20;
    // By B's path alone; every chunk answered once by the relay (B answers hop by hop).
    let oks = transfer(a, b, b_sdp_path.clone(), size).await;
    assert_eq!(oks, size.div_ceil(4096));

    // By the full path: A's Use-Path, then B's a=path (the relay reaches itself for the hop).
    let mut a = Client::connect(addr, "msrp://127.0.0.1:40003/alice2;tcp", 3).await;
    let mut b = Client::connect(addr, "msrp://127.0.0.1:40004/bob2;tcp", 4).await;
    let a_path = a.authenticate(&relay, "alice", "alice-secret").await.expect("alice is in");
    let b_path = b.authenticate(&relay, "bob", "bob-secret").await.expect("bob is in");
    let to_path = msrp_core::auth::to_path(&a_path, &msrp_core::auth::sdp_path(&b_path, &b.me));
    assert_eq!(to_path.len(), 3);
    assert_eq!(transfer(a, b, to_path, 1 << 20).await, (1 << 20) / 4096);
    node.stop().await;
}

#[tokio::test]
async fn a_wrong_password_is_refused() {
    let node = relay_node().await;
    let addr = node.addr(0).expect("a listener");
    let relay = node.uri(0).expect("its URI").clone();
    let mut mallory = Client::connect(addr, "msrp://127.0.0.1:40009/m;tcp", 9).await;
    let refused = mallory.authenticate(&relay, "alice", "guess").await;
    assert!(matches!(refused, Err(AuthError::Rejected { .. })), "{refused:?}");
    node.stop().await;
}

/// Runs a script of `../shared/interop/kamailio-msrp-relay/` for the relay on `port`.
fn kamailio_script(script: &str, port: u16, run_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(interop_dir().join("kamailio-msrp-relay").join(script))
        .args(args)
        .env("KAM_MSRP_PORT", port.to_string())
        .env("KAM_RUN_DIR", run_dir)
        .output()
        .expect("the script runs")
}

/// Stops the Kamailio relay of a test when the test ends, passed or not.
struct Kamailio {
    port: u16,
    run_dir: tempfile::TempDir,
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let _ = kamailio_script("stop.sh", self.port, self.run_dir.path(), &[]);
    }
}

/// Kamailio's RFC 4976 relay (its `msrp` module) between two of our
/// clients, AUTH over TCP (the named test option): first answered without a
/// challenge, then with Digest (realm msrp-test, password msrp-secret).
/// Kamailio forwards B's hop-by-hop 200 to A too, so A hears one or two
/// 200s per chunk.
#[tokio::test]
async fn two_clients_exchange_5_mib_through_kamailio() {
    const TEST: &str = "two_clients_exchange_5_mib_through_kamailio";
    if tool("kamailio").is_none() && !Path::new("/usr/sbin/kamailio").is_file() {
        return skip(TEST, "kamailio is not installed (apt-get install kamailio)");
    }
    if !interop_dir().join("kamailio-msrp-relay/start.sh").is_file() {
        return skip(TEST, "../shared/interop/kamailio-msrp-relay is absent");
    }
    for mode in [&[][..], &["--auth"][..]] {
        let kamailio = Kamailio { port: free_port(), run_dir: tempfile::tempdir().expect("a temp dir") };
        let started = kamailio_script("start.sh", kamailio.port, kamailio.run_dir.path(), mode);
        assert!(started.status.success(), "start.sh {mode:?}: {}", String::from_utf8_lossy(&started.stderr));
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], kamailio.port));
        let relay = uri(&format!("msrp://127.0.0.1:{};tcp", kamailio.port));
        let mut a = Client::connect(addr, "msrp://127.0.0.1:40011/alice;tcp", 11).await;
        let mut b = Client::connect(addr, "msrp://127.0.0.1:40012/bob;tcp", 12).await;
        let a_path = a.authenticate(&relay, "alice", "msrp-secret").await.expect("alice is in");
        let b_path = b.authenticate(&relay, "bob", "msrp-secret").await.expect("bob is in");
        assert_ne!(a_path, b_path, "{mode:?}");
        let size = 5 << 20;
        let chunks = size / 4096;
        let to_path = msrp_core::auth::sdp_path(&b_path, &b.me);
        let oks = transfer(a, b, to_path, size).await;
        assert!((chunks..=2 * chunks).contains(&oks), "{mode:?}: {oks} answers for {chunks} chunks");
    }
}

/// `../shared/interop/msrp_relay_probe.py` (Python's standard library only,
/// written apart from this project) through our relay node, Digest included.
#[tokio::test]
async fn the_independent_probe_passes_through_our_relay() {
    const TEST: &str = "the_independent_probe_passes_through_our_relay";
    let probe = interop_dir().join("msrp_relay_probe.py");
    let Some(python) = tool("python3") else { return skip(TEST, "python3 is not installed") };
    if !probe.is_file() {
        return skip(TEST, "../shared/interop/msrp_relay_probe.py is absent");
    }
    let config = CONFIG.replace("alice-secret", "msrp-secret").replace("bob-secret", "msrp-secret");
    let config = NodeConfig::parse(&config).unwrap_or_else(|e| panic!("{e}"));
    let node = relay::start(&config).await.expect("the relay starts");
    let port = node.addr(0).expect("a listener").port();
    let output = tokio::process::Command::new(python)
        .arg(&probe)
        .args(["--port", &port.to_string(), "--password", "msrp-secret"])
        .output()
        .await
        .expect("the probe runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    node.stop().await;
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.lines().last().is_some_and(|l| l.ends_with(" passed, 0 failed")), "{stdout}");
    assert!(!stdout.contains("FAIL "), "{stdout}");
}

/// RFC 7977: a WebSocket client written with Python's `websockets` package
/// (`tests/servers/ws_msrp_client.py`) AUTHs at our relay over WSS (Digest),
/// receives 200 000 bytes from a TCP client in chunks of at most 64 KiB (one
/// per WebSocket message, s.5.1), and sends them back through the TCP
/// client's Use-Path.
#[tokio::test]
async fn a_websocket_client_and_a_tcp_client_exchange_a_message() {
    const TEST: &str = "a_websocket_client_and_a_tcp_client_exchange_a_message";
    let Some(python) = tool("python3") else { return skip(TEST, "python3 is not installed") };
    let has_websockets = Command::new(&python).args(["-c", "import websockets"]).status().is_ok_and(|s| s.success());
    if !has_websockets {
        return skip(TEST, "python3 has no websockets package (apt-get install python3-websockets)");
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = support::TestCa::new();
    let leaf = ca.issue(&["127.0.0.1"]);
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("written");
        path
    };
    let (ca_pem, cert, key) =
        (write("ca.pem", &ca.pem()), write("relay.pem", &leaf.cert_pem), write("relay.key", &leaf.key_pem));
    let config = format!(
        "{}websocket_listen = [\"wss://127.0.0.1:0\"]\n{}\n[tls]\ncert = {:?}\nkey = {:?}\n",
        CONFIG.split("[[relay.user]]").next().expect("the head"),
        CONFIG.split_once("auth_over_tcp = true\n").expect("users").1,
        cert.to_str().expect("UTF-8"),
        key.to_str().expect("UTF-8"),
    );
    let config = NodeConfig::parse(&config).unwrap_or_else(|e| panic!("{e}\n{config}"));
    let node = relay::start(&config).await.expect("the relay starts");
    let (tcp, wss) = (node.addr(0).expect("tcp"), node.addr(1).expect("wss"));
    let relay_ws = node.uri(1).expect("its ws URI").clone();
    assert_eq!(relay_ws.transport(), "ws");

    let mut b = Client::connect(tcp, "msrp://127.0.0.1:40021/bob;tcp", 21).await;
    let b_path = b.authenticate(node.uri(0).expect("tcp URI"), "bob", "bob-secret").await.expect("bob is in");
    let me = "msrps://df7jal23ls0d.invalid:2855/98cjs;ws";
    let mut child = tokio::process::Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/ws_msrp_client.py"))
        .args([&format!("wss://127.0.0.1:{}/", wss.port()), ca_pem.to_str().expect("UTF-8"), relay_ws.as_str(), me])
        .args(["alice", "alice-secret", b_path[0].as_str(), b.me.as_str()])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the client runs");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let use_path = next_line(&mut lines).await;
    let use_path = uri(use_path.strip_prefix("USE-PATH ").expect("its Use-Path"));
    // The Use-Path a WebSocket client gets is the relay's stream URI (RFC 7977 s.8.1.2).
    assert_eq!(use_path.port(), Some(tcp.port()));

    let message: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let send = Frame::send(
        vec![use_path, uri(me)],
        vec![b.me.clone()],
        "application/octet-stream",
        Bytes::from(message.clone()),
    )
    .with_message_id(&MessageId::from_text("to-ws").expect("an id"));
    b.send(&send).await;
    assert_eq!(b.next().await.head.status_code(), Some(200));
    let got = next_line(&mut lines).await;
    let digest = {
        use std::fmt::Write as _;
        let hash = ring::digest::digest(&ring::digest::SHA256, &message);
        hash.as_ref().iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    };
    assert_eq!(got, format!("GOT {} {digest}", message.len()));
    assert_eq!(next_line(&mut lines).await, "SENT");
    let echo = b.next().await;
    assert_eq!(echo.head.method_name(), Some("SEND"));
    assert_eq!(&echo.body[..], &message[..], "the echo came back whole");
    let ok = Frame::response(
        echo.head.transaction_id(),
        200,
        Some("OK"),
        echo.head.from_path_uris().take(1).collect(),
        vec![b.me.clone()],
    );
    b.send(&ok).await;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("it ends").expect("status");
    assert!(status.success(), "{status}");
    node.stop().await;
}

/// The child's next line of output, within 20 s.
async fn next_line(lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("in time")
        .expect("read")
        .expect("a line")
}

/// A hostile peer against the relay node: connections past the bound are
/// closed at once, connections that never send a request are closed when
/// their probation ends (RFC 4976 s.6.1), and then the relay serves again.
#[tokio::test]
async fn silent_and_surplus_connections_are_closed() {
    let config =
        CONFIG.replace("auth_over_tcp = true", "auth_over_tcp = true\nprobation_secs = 1\nmax_connections = 3");
    let config = NodeConfig::parse(&config).unwrap_or_else(|e| panic!("{e}"));
    let node = relay::start(&config).await.expect("the relay starts");
    let addr = node.addr(0).expect("a listener");
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(TcpStream::connect(addr).await.expect("connected"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut surplus = TcpStream::connect(addr).await.expect("connected");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(1), surplus.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the fourth is closed at once: {read:?}");
    for mut conn in silent {
        let read = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "closed after its probation: {read:?}");
    }
    let mut a = Client::connect(addr, "msrp://127.0.0.1:40031/alice;tcp", 31).await;
    let relay = node.uri(0).expect("its URI").clone();
    a.authenticate(&relay, "alice", "alice-secret").await.expect("served again");
    node.stop().await;
}
