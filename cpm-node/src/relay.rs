//! `cpm-node run` with `role = "relay"`: msrp-core's RFC 4976 relay
//! ([`msrp_core::rfc4976::Relay`]) on its MSRP listeners.
//!
//! One task owns the machine. Each connection has a reader task, which
//! reads while the machine lets it (`PauseReading`, `ResumeReading`), and a
//! writer task, which writes what is queued with vectored writes and
//! acknowledges it (`Written`), and gives up on a peer that does not take
//! its bytes within the write deadline. Connections the relay opens toward
//! next hops are connected on their own tasks under the handshake deadline.
//! Timers come from the machine's `poll_timeout`.
//!
//! `[relay] websocket_listen` adds MSRP over WebSocket (RFC 7977): the
//! handshake must ask for the `msrp` subprotocol (s.4.1), each message read
//! (binary or text, s.4.2) is MSRP bytes, and each chunk the relay writes
//! goes as one binary message (s.5.1: the machine cuts chunks to fit).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use msrp_core::rfc4976::{self, ChallengeMode, CloseReason, Relay, RelayConfig, Users};
use msrp_core::router::ConnId;
use msrp_core::uri::Scheme;
use msrp_core::MsrpUri;
use rand_core::OsRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::config::{NodeConfig, RelayChallenge};
use crate::host::now;
use crate::serve::ServeError;
use crate::transport::{connect, Conn, ConnReader, ConnWriter, Listener, TlsMode, TlsServerConfig, Transport};

/// Bytes asked of the socket per read.
const READ_SIZE: usize = 64 * 1024;
/// How long a write may wait for the peer to take it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Events waiting for the machine.
const QUEUE: usize = 1024;
/// The largest WebSocket message (one MSRP chunk) a client may send.
const MAX_WEBSOCKET_MESSAGE: usize = 1 << 20;
/// WebSocket handshakes under way at once; past it a new connection is closed.
const MAX_WEBSOCKET_HANDSHAKES: usize = 64;
/// Pieces gathered into one vectored write (Linux takes 1024 at most).
const MAX_PARTS: usize = 512;

/// What the tasks tell the machine's task.
enum Event {
    Accepted { conn: Conn, listener: usize },
    AcceptedWebSocket { ws: Box<WebSocketStream<Conn>>, listener: usize },
    Connected { conn: ConnId, result: Result<Conn, String> },
    Read { conn: ConnId, data: Bytes },
    Written { conn: ConnId, bytes: usize },
    Closed { conn: ConnId },
}

/// A connection's tasks, as the machine's task holds them.
struct Link {
    /// Pieces to write, each with whether it ends an MSRP frame.
    writer: mpsc::UnboundedSender<(Bytes, bool)>,
    reading: watch::Sender<bool>,
    reader: tokio::task::AbortHandle,
}

/// The relay's URIs: one per listener, on the identity's host (RFC 4976
/// s.4.2: Use-Path URIs carry "an explicit port number"), the WebSocket
/// ones (the last `websockets`) with the `ws` transport (RFC 7977 s.5.2.1).
fn listener_uris(config: &NodeConfig, listeners: &[Listener], websockets: usize) -> Result<Vec<MsrpUri>, ServeError> {
    let streams = listeners.len() - websockets;
    listeners
        .iter()
        .enumerate()
        .map(|(k, l)| {
            let addr = l.local_addr();
            let scheme = if addr.transport == Transport::Tls { Scheme::Msrps } else { Scheme::Msrp };
            let transport = if k < streams { "tcp" } else { "ws" };
            MsrpUri::new(scheme, &config.identity.host, Some(addr.addr.port()), None, transport)
                .map_err(|e| ServeError::Incomplete(format!("identity.host cannot make an MSRP URI: {e}")))
        })
        .collect()
}

/// The machine's configuration from the node's.
fn relay_config(config: &NodeConfig, uris: Vec<MsrpUri>) -> Result<(RelayConfig, Users), ServeError> {
    let relay = config.relay.as_ref().ok_or_else(|| ServeError::Incomplete("a relay needs [relay]".into()))?;
    let mut machine = RelayConfig::new(uris, &relay.realm);
    machine.challenge = match relay.challenge {
        RelayChallenge::Digest => ChallengeMode::Digest,
        RelayChallenge::None => ChallengeMode::NoChallenge,
    };
    machine.auth_over_tcp = relay.auth_over_tcp;
    machine.probation = relay.probation;
    machine.transaction_timeout = config.limits.transaction_timeout;
    machine.idle_timeout = config.limits.idle_timeout.max(Duration::from_secs(1));
    machine.write_window = usize::try_from(config.limits.window.get()).unwrap_or(usize::MAX).max(1024);
    let mut users = Users::new();
    for user in &relay.users {
        users.add(&user.name, &relay.realm, &user.password);
    }
    Ok((machine, users))
}

/// A running relay: its listeners' addresses, and how to stop it.
#[derive(Debug)]
pub struct RelayNode {
    addrs: Vec<SocketAddr>,
    uris: Vec<MsrpUri>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RelayNode {
    /// The address of listener `k`.
    #[must_use]
    pub fn addr(&self, k: usize) -> Option<SocketAddr> {
        self.addrs.get(k).copied()
    }

    /// The relay's URI on listener `k` (what clients AUTH to).
    #[must_use]
    pub fn uri(&self, k: usize) -> Option<&MsrpUri> {
        self.uris.get(k)
    }

    /// Stops it: listeners and connections close.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Starts the relay of `config` on its MSRP listeners.
///
/// # Errors
///
/// [`ServeError`] when a listener cannot be bound or `[tls]` or `[relay]`
/// cannot be used.
pub async fn start(config: &NodeConfig) -> Result<RelayNode, ServeError> {
    let server = match config.tls.as_ref().map(|t| (&t.cert, &t.key)) {
        Some((Some(cert), Some(key))) => {
            Some(Arc::new(TlsServerConfig::from_pem_files(cert, key, config.limits.handshake_timeout)?))
        }
        _ => None,
    };
    let mut listeners = Vec::new();
    let websocket = config.relay.as_ref().map_or(&[][..], |r| &r.websocket_listen[..]);
    for addr in config.msrp_listen.iter().chain(websocket) {
        listeners.push(Listener::bind(addr, server.clone()).await?);
    }
    let uris = listener_uris(config, &listeners, websocket.len())?;
    let first_websocket = config.msrp_listen.len();
    let (machine, users) = relay_config(config, uris.clone())?;
    let tls = crate::serve::tls_client(config.tls.as_ref())?;
    let addrs = listeners.iter().map(|l| l.local_addr().addr).collect();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let handshake = config.limits.handshake_timeout;
    let max_connections = config.relay.as_ref().map_or(4096, |r| r.max_connections);
    let machine = Relay::new(machine, Box::new(users));
    let task = tokio::spawn(run(machine, listeners, first_websocket, tls, handshake, max_connections, stopped));
    Ok(RelayNode { addrs, uris, stop: Some(stop), task })
}

/// Serves the relay of `config` until `stop`.
///
/// # Errors
///
/// As [`start`].
pub async fn serve(config: &NodeConfig, stop: impl std::future::Future<Output = ()>) -> Result<(), ServeError> {
    let node = start(config).await?;
    tracing::info!(node = %config.identity.name, role = "relay", uris = ?node.uris.iter().map(MsrpUri::as_str).collect::<Vec<_>>(), "serving");
    stop.await;
    tracing::info!(node = %config.identity.name, "stopping");
    node.stop().await;
    Ok(())
}

/// The machine's task.
async fn run(
    mut relay: Relay,
    listeners: Vec<Listener>,
    first_websocket: usize,
    tls: TlsMode,
    connect_timeout: Duration,
    max_connections: usize,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let (queue, mut events) = mpsc::channel(QUEUE);
    let mut accepting = tokio::task::JoinSet::new();
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_WEBSOCKET_HANDSHAKES));
    for (k, mut listener) in listeners.into_iter().enumerate() {
        let queue = queue.clone();
        let websocket = k >= first_websocket;
        let handshakes = Arc::clone(&handshakes);
        accepting.spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((conn, _)) if websocket => {
                        let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
                            tracing::warn!("WebSocket handshakes at their bound: connection closed");
                            continue;
                        };
                        let queue = queue.clone();
                        tokio::spawn(async move {
                            let _permit = permit;
                            match tokio::time::timeout(connect_timeout, accept_websocket(conn)).await {
                                Ok(Ok(ws)) => {
                                    let event = Event::AcceptedWebSocket { ws: Box::new(ws), listener: k };
                                    let _ = queue.send(event).await;
                                }
                                Ok(Err(error)) => tracing::info!(%error, "WebSocket handshake refused"),
                                Err(_) => tracing::info!("WebSocket handshake timed out"),
                            }
                        });
                    }
                    Ok((conn, _)) => {
                        if queue.send(Event::Accepted { conn, listener: k }).await.is_err() {
                            return;
                        }
                    }
                    Err(error) => tracing::debug!(%error, "MSRP accept failed"),
                }
            }
        });
    }
    let next_conn = AtomicU64::new(1);
    let mut links: HashMap<ConnId, Link> = HashMap::new();
    let mut ids = cpm_roles::CryptoIds::new(OsRng);
    loop {
        let deadline = relay.poll_timeout().map(tokio::time::Instant::from_std);
        let input = tokio::select! {
            _ = &mut stopped => break,
            () = async { tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)).await }, if deadline.is_some() => rfc4976::Input::Timeout,
            event = events.recv() => match event {
                None => break,
                // Past the bound a new connection is let go at once (dropping it closes it).
                Some(Event::Accepted { .. } | Event::AcceptedWebSocket { .. }) if links.len() >= max_connections => {
                    tracing::warn!(max_connections, "MSRP relay: connection refused, at the bound");
                    continue;
                }
                Some(Event::Accepted { conn, listener }) => {
                    let id = ConnId::new(next_conn.fetch_add(1, Ordering::Relaxed) % rfc4976::OPENED_CONN_BASE);
                    links.insert(id, open(conn, id, &queue));
                    rfc4976::Input::Accepted { conn: id, listener }
                }
                Some(Event::AcceptedWebSocket { ws, listener }) => {
                    let id = ConnId::new(next_conn.fetch_add(1, Ordering::Relaxed) % rfc4976::OPENED_CONN_BASE);
                    links.insert(id, open_websocket(*ws, id, &queue));
                    rfc4976::Input::Accepted { conn: id, listener }
                }
                // A next hop the relay let go of while it was connecting: the stream is dropped.
                Some(Event::Connected { conn, result: Ok(_) }) if !relay.has_connection(conn) => continue,
                Some(Event::Connected { conn, result: Ok(stream) }) => {
                    links.insert(conn, open(stream, conn, &queue));
                    rfc4976::Input::Connected { conn }
                }
                Some(Event::Connected { conn, result: Err(error) }) => {
                    tracing::warn!(%conn, %error, "MSRP relay: next hop not reached");
                    rfc4976::Input::Closed { conn }
                }
                Some(Event::Read { conn, data }) => rfc4976::Input::Received { conn, data },
                Some(Event::Written { conn, bytes }) => rfc4976::Input::Written { conn, bytes },
                Some(Event::Closed { conn }) => {
                    // The writer's close (a peer that does not take its bytes) stops the reader too.
                    let Some(link) = links.remove(&conn) else { continue };
                    link.reader.abort();
                    rfc4976::Input::Closed { conn }
                }
            },
        };
        relay.handle(input, now(), &mut ids);
        while let Some(output) = relay.poll_output() {
            match output {
                rfc4976::Output::Write { conn, data, frame_end } => {
                    if let Some(link) = links.get(&conn) {
                        let _ = link.writer.send((data, frame_end));
                    }
                }
                rfc4976::Output::PauseReading { conn } | rfc4976::Output::ResumeReading { conn } => {
                    let resume = matches!(output, rfc4976::Output::ResumeReading { .. });
                    if let Some(link) = links.get(&conn) {
                        let _ = link.reading.send(resume);
                    }
                }
                rfc4976::Output::Close { conn, reason } => {
                    log_close(conn, &reason);
                    if let Some(link) = links.remove(&conn) {
                        link.reader.abort();
                    }
                }
                rfc4976::Output::Connect { conn, link } => {
                    let queue = queue.clone();
                    let mode = if link.is_tls() { tls.clone() } else { TlsMode::Plain };
                    tokio::spawn(async move {
                        let result =
                            open_next_hop(link.host(), link.port(), link.is_tls(), &mode, connect_timeout).await;
                        let _ = queue.send(Event::Connected { conn, result }).await;
                    });
                }
                rfc4976::Output::Authenticated { conn, username, use_path } => {
                    tracing::info!(%conn, %username, use_path = use_path.as_str(), "AUTH granted");
                }
                _ => {}
            }
        }
    }
    accepting.abort_all();
    for (_, link) in links {
        link.reader.abort();
    }
}

fn log_close(conn: ConnId, reason: &CloseReason) {
    match reason {
        CloseReason::Idle => tracing::debug!(%conn, "MSRP relay: idle connection closed"),
        other => tracing::info!(%conn, reason = ?other, "MSRP relay: connection closed"),
    }
}

/// Connects to a next hop: its name resolved, TLS for `msrps` (verified as
/// `[tls]` says; without a CA or pins there is no TLS client, and the hop fails).
async fn open_next_hop(host: &str, port: u16, tls: bool, mode: &TlsMode, deadline: Duration) -> Result<Conn, String> {
    if tls && matches!(mode, TlsMode::Plain) {
        return Err("an msrps next hop needs [tls] ca or fingerprints".into());
    }
    let addr = tokio::time::timeout(deadline, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| format!("resolving {host} timed out"))?
        .map_err(|e| format!("resolving {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    connect(addr, host, mode, deadline).await.map_err(|e| e.to_string())
}

/// Starts the reader and writer of a connection.
fn open(conn: Conn, id: ConnId, queue: &mpsc::Sender<Event>) -> Link {
    let (reader, writer) = conn.into_split();
    let (reading, allowed) = watch::channel(true);
    let reader = tokio::spawn(read(reader, id, allowed, queue.clone())).abort_handle();
    let (bytes, rx) = mpsc::unbounded_channel();
    tokio::spawn(write(writer, id, rx, queue.clone()));
    Link { writer: bytes, reading, reader }
}

/// Reads while allowed, then tells the close.
async fn read(mut reader: ConnReader, conn: ConnId, mut reading: watch::Receiver<bool>, queue: mpsc::Sender<Event>) {
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    loop {
        if reading.wait_for(|read| *read).await.is_err() {
            return;
        }
        buf.reserve(READ_SIZE);
        match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if queue.send(Event::Read { conn, data: buf.split().freeze() }).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = queue.send(Event::Closed { conn }).await;
}

/// Writes what comes, everything queued at once in one vectored write, and
/// acknowledges it; ends when the machine lets go of the connection.
async fn write(
    mut writer: ConnWriter,
    conn: ConnId,
    mut bytes: mpsc::UnboundedReceiver<(Bytes, bool)>,
    queue: mpsc::Sender<Event>,
) {
    let mut parts = Vec::new();
    while let Some((first, _)) = bytes.recv().await {
        parts.clear();
        parts.push(first);
        while parts.len() < MAX_PARTS {
            match bytes.try_recv() {
                Ok((more, _)) => parts.push(more),
                Err(_) => break,
            }
        }
        let total: usize = parts.iter().map(Bytes::len).sum();
        let written = tokio::time::timeout(WRITE_TIMEOUT, async {
            writer.write_all_parts(&parts).await?;
            if bytes.is_empty() {
                writer.flush().await?;
            }
            Ok::<(), io::Error>(())
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            let _ = queue.send(Event::Closed { conn }).await;
            return;
        }
        if queue.send(Event::Written { conn, bytes: total }).await.is_err() {
            return;
        }
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, writer.shutdown()).await;
}

/// The server side of the WebSocket handshake: the client must offer the
/// `msrp` subprotocol, which the 101 names (RFC 7977 s.4.1: "The 101 reply
/// from the Server MUST contain "msrp" in its corresponding
/// Sec-WebSocket-Protocol header"); anything else is refused with 400.
async fn accept_websocket(conn: Conn) -> Result<WebSocketStream<Conn>, tokio_tungstenite::tungstenite::Error> {
    fn msrp_subprotocol(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
        let offered = request
            .headers()
            .get_all("Sec-WebSocket-Protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim().eq_ignore_ascii_case("msrp"));
        if !offered {
            let mut refusal = ErrorResponse::new(Some("the msrp subprotocol is required (RFC 7977 s.4.1)".into()));
            *refusal.status_mut() = StatusCode::BAD_REQUEST;
            return Err(refusal);
        }
        response.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("msrp"));
        Ok(response)
    }
    // One message is one MSRP chunk (RFC 7977 s.5.1): the library's 64 MiB default would let a
    // peer make the relay buffer that much before the machine sees a byte.
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_WEBSOCKET_MESSAGE))
        .max_frame_size(Some(MAX_WEBSOCKET_MESSAGE));
    tokio_tungstenite::accept_hdr_async_with_config(conn, msrp_subprotocol, Some(config)).await
}

/// The reader and writer of a WebSocket connection.
fn open_websocket(ws: WebSocketStream<Conn>, id: ConnId, queue: &mpsc::Sender<Event>) -> Link {
    let (sink, stream) = ws.split();
    let (reading, allowed) = watch::channel(true);
    let reader = tokio::spawn(read_websocket(stream, id, allowed, queue.clone())).abort_handle();
    let (bytes, rx) = mpsc::unbounded_channel();
    tokio::spawn(write_websocket(sink, id, rx, queue.clone()));
    Link { writer: bytes, reading, reader }
}

/// Reads messages while allowed: binary and text alike are MSRP bytes (RFC
/// 7977 s.4.2: "The content of text frames MUST be interpreted as binary").
async fn read_websocket(
    mut stream: futures_util::stream::SplitStream<WebSocketStream<Conn>>,
    conn: ConnId,
    mut reading: watch::Receiver<bool>,
    queue: mpsc::Sender<Event>,
) {
    loop {
        if reading.wait_for(|read| *read).await.is_err() {
            return;
        }
        let data = match stream.next().await {
            Some(Ok(Message::Binary(data))) => data,
            Some(Ok(Message::Text(text))) => Bytes::from(text),
            // Pings are answered by the library; pongs and raw frames carry no MSRP.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(_)) | Err(_)) | None => break,
        };
        if queue.send(Event::Read { conn, data }).await.is_err() {
            return;
        }
    }
    let _ = queue.send(Event::Closed { conn }).await;
}

/// Gathers each MSRP frame's pieces into one binary message (RFC 7977 s.5.1:
/// "Each MSRP chunk MUST be carried within a single WebSocket message").
/// Pieces are acknowledged as they are gathered, except while a message is
/// being sent, so the machine keeps handing out the chunk it started (at
/// most the relay's WebSocket chunk size is held here) and stops when the
/// peer does not take its messages.
async fn write_websocket(
    mut sink: futures_util::stream::SplitSink<WebSocketStream<Conn>, Message>,
    conn: ConnId,
    mut pieces: mpsc::UnboundedReceiver<(Bytes, bool)>,
    queue: mpsc::Sender<Event>,
) {
    let mut message = BytesMut::new();
    while let Some((piece, frame_end)) = pieces.recv().await {
        message.extend_from_slice(&piece);
        if !frame_end {
            if queue.send(Event::Written { conn, bytes: piece.len() }).await.is_err() {
                return;
            }
            continue;
        }
        let sent = tokio::time::timeout(WRITE_TIMEOUT, sink.send(Message::Binary(message.split().freeze()))).await;
        if !matches!(sent, Ok(Ok(()))) {
            let _ = queue.send(Event::Closed { conn }).await;
            return;
        }
        if queue.send(Event::Written { conn, bytes: piece.len() }).await.is_err() {
            return;
        }
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.close()).await;
}
