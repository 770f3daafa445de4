//! Sockets on tokio: SIP over UDP (one datagram per message), TCP and TLS;
//! MSRP over TCP and TLS (`msrps`).
//!
//! - [`Listener`] accepts stream connections (TCP, or TLS with a
//!   [`TlsServerConfig`]); TLS handshakes run concurrently in the background,
//!   each under the configured deadline, so a peer that connects and never
//!   speaks cannot stall the accept loop.
//! - [`connect`] opens a stream connection, plain or TLS ([`TlsMode`]), under
//!   one deadline for the TCP connect and the handshake together.
//! - [`Conn`] is a connected stream; it splits into a [`ConnReader`] and a
//!   [`ConnWriter`] for a reader task and a writer task, and writes a frame's
//!   head, body and end-line `Bytes` with one vectored write
//!   ([`write_all_parts`]), never concatenating the payload.
//! - [`DatagramSocket`] is SIP over UDP: each received datagram is exactly
//!   one message, and each send is exactly one datagram.
//!
//! Every failure is a [`TransportError`] variant a caller can match: a name
//! mismatch ([`TransportError::NameMismatch`]), a fingerprint mismatch
//! ([`TransportError::FingerprintMismatch`]) and a handshake that misses its
//! deadline ([`TransportError::HandshakeTimeout`]) are told apart.

mod tls;

use std::fmt;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub use tls::{
    load_certificates, load_private_key, Fingerprint, FingerprintError, TlsClient, TlsServerConfig, TlsSetupError,
};

/// How many accepted TLS connections may be in their handshake at once, per
/// listener; beyond it the listener stops accepting until one finishes (each
/// finishes by its deadline at the latest).
pub const MAX_PENDING_HANDSHAKES: usize = 256;

/// The largest payload of one UDP datagram over IPv4 (65,535 minus the IP and
/// UDP headers).
pub const MAX_DATAGRAM: usize = 65_507;

/// A transport protocol named by a listen or route address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP: SIP only, one message per datagram.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl Transport {
    /// The scheme of the address form (`udp`, `tcp`, `tls`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }

    /// Whether this is a stream transport (TCP or TLS).
    #[must_use]
    pub const fn is_stream(self) -> bool {
        matches!(self, Self::Tcp | Self::Tls)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transport and a socket address, written `udp://IP:PORT`,
/// `tcp://IP:PORT` or `tls://IP:PORT` (IPv6 as `tcp://[::1]:PORT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenAddr {
    /// The transport.
    pub transport: Transport,
    /// The IP address and port.
    pub addr: SocketAddr,
}

impl ListenAddr {
    /// An address from its parts.
    #[must_use]
    pub const fn new(transport: Transport, addr: SocketAddr) -> Self {
        Self { transport, addr }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.transport, self.addr)
    }
}

/// Why a string is not a [`ListenAddr`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListenAddrError {
    /// No `SCHEME://` in front.
    #[error("missing scheme: expected udp://IP:PORT, tcp://IP:PORT or tls://IP:PORT")]
    MissingScheme,
    /// A scheme other than `udp`, `tcp` or `tls`.
    #[error("unknown scheme: expected udp, tcp or tls")]
    UnknownScheme,
    /// The part after `://` is not `IP:PORT`.
    #[error("expected IP:PORT after the scheme (a numeric IP address, IPv6 in brackets, and a port)")]
    BadSocketAddr,
}

impl FromStr for ListenAddr {
    type Err = ListenAddrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = text.split_once("://").ok_or(ListenAddrError::MissingScheme)?;
        let transport = match scheme.to_ascii_lowercase().as_str() {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            _ => return Err(ListenAddrError::UnknownScheme),
        };
        let addr = rest.parse::<SocketAddr>().map_err(|_| ListenAddrError::BadSocketAddr)?;
        Ok(Self { transport, addr })
    }
}

/// A transport failure. Variants say whose fault it is: the peer's
/// (`NameMismatch`, `FingerprintMismatch`, `UntrustedCertificate`,
/// `HandshakeTimeout`), the network's (`Connect`, `Io`) or the caller's
/// (`WrongTransport`, `MissingTlsConfig`, `InvalidHost`, `DatagramTooLarge`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The local address could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: ListenAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The address names a transport this call does not serve (UDP for a
    /// stream listener, TCP/TLS for a datagram socket).
    #[error("{addr}: {expected}")]
    WrongTransport {
        /// The address.
        addr: ListenAddr,
        /// What the call serves.
        expected: &'static str,
    },
    /// A `tls://` listener was bound without a [`TlsServerConfig`].
    #[error("{addr}: a TLS listener needs a TLS server configuration (certificate and key)")]
    MissingTlsConfig {
        /// The address.
        addr: ListenAddr,
    },
    /// Accepting a connection failed (the listening socket's error).
    #[error("accept failed: {0}")]
    Accept(#[source] io::Error),
    /// The TCP connect failed (refused, unreachable).
    #[error("connect to {addr} failed: {source}")]
    Connect {
        /// The peer.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The TCP connect did not complete before the deadline.
    #[error("connect to {addr} timed out after {after:?}")]
    ConnectTimeout {
        /// The peer.
        addr: SocketAddr,
        /// The deadline.
        after: Duration,
    },
    /// The TLS handshake did not complete before the deadline (a peer that
    /// accepts TCP but never speaks TLS).
    #[error("TLS handshake with {addr} did not finish within {after:?}")]
    HandshakeTimeout {
        /// The peer.
        addr: SocketAddr,
        /// The deadline.
        after: Duration,
    },
    /// The peer's certificate does not name the host of the URI connected to
    /// (RFC 4975 s.5.4).
    #[error("certificate of {addr} is not valid for host {host:?} (RFC 4975 s.5.4: its SubjectAltName must match)")]
    NameMismatch {
        /// The peer.
        addr: SocketAddr,
        /// The host the certificate had to name.
        host: String,
    },
    /// The peer's certificate is not the one pinned by fingerprint (RFC 4975
    /// s.14.4).
    #[error("certificate of {addr} has fingerprint {presented}, which is not pinned (RFC 4975 s.14.4)")]
    FingerprintMismatch {
        /// The peer.
        addr: SocketAddr,
        /// The fingerprint of the certificate the peer presented.
        presented: Fingerprint,
    },
    /// The peer's certificate was rejected for another reason (unknown
    /// issuer, expired, malformed).
    #[error("certificate of {addr} rejected: {source}")]
    UntrustedCertificate {
        /// The peer.
        addr: SocketAddr,
        /// What rustls reported.
        #[source]
        source: rustls::Error,
    },
    /// The TLS handshake failed otherwise (an alert from the peer, no common
    /// cipher suite, the peer closed).
    #[error("TLS handshake with {addr} failed: {source}")]
    Handshake {
        /// The peer.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The host is not a valid DNS name or IP address for TLS.
    #[error("invalid TLS server name {host:?}")]
    InvalidHost {
        /// The host.
        host: String,
    },
    /// A datagram larger than UDP can carry.
    #[error("datagram of {len} bytes exceeds the UDP maximum of {MAX_DATAGRAM} bytes")]
    DatagramTooLarge {
        /// Its length.
        len: usize,
    },
    /// Another socket error.
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
}

/// The TLS side of a connection, when there is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// Plain TCP.
    Plain,
    /// TLS; the fingerprint of the certificate the peer presented, if it
    /// presented one (a server always does; a client only with mutual TLS).
    Tls {
        /// SHA-256 fingerprint of the peer's leaf certificate.
        peer: Option<Fingerprint>,
    },
}

/// A connected stream (TCP or TLS over TCP). Reads and writes through
/// [`AsyncRead`]/[`AsyncWrite`], or split it with [`Conn::into_split`].
#[derive(Debug)]
pub struct Conn {
    inner: ConnInner,
    local: SocketAddr,
    peer: SocketAddr,
    security: Security,
}

#[derive(Debug)]
enum ConnInner {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

impl Conn {
    fn tcp(stream: TcpStream, peer: SocketAddr) -> io::Result<Self> {
        // MSRP frames and SIP messages are written whole; Nagle would only
        // delay the last segment of each.
        stream.set_nodelay(true)?;
        let local = stream.local_addr()?;
        Ok(Self { inner: ConnInner::Tcp(stream), local, peer, security: Security::Plain })
    }

    fn tls(stream: tokio_rustls::TlsStream<TcpStream>, local: SocketAddr, peer: SocketAddr) -> Self {
        let (_, common) = stream.get_ref();
        let presented = common.peer_certificates().and_then(<[_]>::first).map(Fingerprint::of_certificate);
        Self { inner: ConnInner::Tls(Box::new(stream)), local, peer, security: Security::Tls { peer: presented } }
    }

    /// The peer's address.
    #[must_use]
    pub const fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The local address.
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// [`Transport::Tcp`] or [`Transport::Tls`].
    #[must_use]
    pub const fn transport(&self) -> Transport {
        match self.security {
            Security::Plain => Transport::Tcp,
            Security::Tls { .. } => Transport::Tls,
        }
    }

    /// Plain, or TLS with the peer certificate's fingerprint.
    #[must_use]
    pub const fn security(&self) -> Security {
        self.security
    }

    /// Splits into halves a reader task and a writer task can own.
    #[must_use]
    pub fn into_split(self) -> (ConnReader, ConnWriter) {
        match self.inner {
            ConnInner::Tcp(stream) => {
                let (read, write) = stream.into_split();
                (ConnReader(ReaderInner::Tcp(read)), ConnWriter(WriterInner::Tcp(write)))
            }
            ConnInner::Tls(stream) => {
                let (read, write) = tokio::io::split(*stream);
                (ConnReader(ReaderInner::Tls(read)), ConnWriter(WriterInner::Tls(write)))
            }
        }
    }

    /// Writes every part, in order, with vectored writes (see
    /// [`write_all_parts`]).
    ///
    /// # Errors
    ///
    /// The socket's error; the connection is then unusable.
    pub async fn write_all_parts(&mut self, parts: &[Bytes]) -> io::Result<()> {
        write_all_parts(self, parts).await
    }
}

/// The read half of a [`Conn`].
#[derive(Debug)]
pub struct ConnReader(ReaderInner);

#[derive(Debug)]
enum ReaderInner {
    Tcp(OwnedReadHalf),
    Tls(tokio::io::ReadHalf<tokio_rustls::TlsStream<TcpStream>>),
}

/// The write half of a [`Conn`].
#[derive(Debug)]
pub struct ConnWriter(WriterInner);

#[derive(Debug)]
enum WriterInner {
    Tcp(OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<tokio_rustls::TlsStream<TcpStream>>),
}

impl ConnWriter {
    /// Writes every part, in order, with vectored writes (see
    /// [`write_all_parts`]).
    ///
    /// # Errors
    ///
    /// The socket's error; the connection is then unusable.
    pub async fn write_all_parts(&mut self, parts: &[Bytes]) -> io::Result<()> {
        write_all_parts(self, parts).await
    }
}

/// Delegates `AsyncRead` to the variant's stream.
macro_rules! delegate_read {
    ($ty:ty, $($variant:path),+) => {
        impl AsyncRead for $ty {
            fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
                match self.get_mut().inner_mut() {
                    $($variant(s) => Pin::new(s).poll_read(cx, buf),)+
                }
            }
        }
    };
}

/// Delegates `AsyncWrite` (vectored writes included) to the variant's stream.
macro_rules! delegate_write {
    ($ty:ty, $($variant:path),+) => {
        impl AsyncWrite for $ty {
            fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                match self.get_mut().inner_mut() {
                    $($variant(s) => Pin::new(s).poll_write(cx, buf),)+
                }
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut().inner_mut() {
                    $($variant(s) => Pin::new(s).poll_write_vectored(cx, bufs),)+
                }
            }

            fn is_write_vectored(&self) -> bool {
                match self.inner_ref() {
                    $($variant(s) => s.is_write_vectored(),)+
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut().inner_mut() {
                    $($variant(s) => Pin::new(s).poll_flush(cx),)+
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut().inner_mut() {
                    $($variant(s) => Pin::new(s).poll_shutdown(cx),)+
                }
            }
        }
    };
}

impl Conn {
    fn inner_mut(&mut self) -> &mut ConnInner {
        &mut self.inner
    }

    const fn inner_ref(&self) -> &ConnInner {
        &self.inner
    }
}

impl ConnReader {
    fn inner_mut(&mut self) -> &mut ReaderInner {
        &mut self.0
    }
}

impl ConnWriter {
    fn inner_mut(&mut self) -> &mut WriterInner {
        &mut self.0
    }

    const fn inner_ref(&self) -> &WriterInner {
        &self.0
    }
}

delegate_read!(Conn, ConnInner::Tcp, ConnInner::Tls);
delegate_write!(Conn, ConnInner::Tcp, ConnInner::Tls);
delegate_read!(ConnReader, ReaderInner::Tcp, ReaderInner::Tls);
delegate_write!(ConnWriter, WriterInner::Tcp, WriterInner::Tls);

/// Writes every part, in order, with vectored writes: an MSRP frame's head,
/// body and end-line go out as they are, the body (the user's payload) never
/// copied into a joined buffer.
///
/// # Errors
///
/// The writer's error, or [`io::ErrorKind::WriteZero`] if it accepts no
/// bytes.
pub async fn write_all_parts<W: AsyncWrite + Unpin + ?Sized>(writer: &mut W, parts: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> =
        parts.iter().filter(|part| !part.is_empty()).map(|part| IoSlice::new(part)).collect();
    let mut rest: &mut [IoSlice<'_>] = &mut slices;
    while !rest.is_empty() {
        let written = writer.write_vectored(rest).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, written);
    }
    Ok(())
}

/// Counters of a [`Listener`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenerStats {
    /// Connections handed out by [`Listener::accept`] (TLS: after the handshake).
    pub accepted: u64,
    /// TLS handshakes that failed or missed their deadline (the connection
    /// was closed, nothing handed out).
    pub handshake_failures: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    handshake_failures: AtomicU64,
}

/// A stream listener: TCP, or TLS with handshakes in the background.
#[derive(Debug)]
pub struct Listener {
    local: ListenAddr,
    counters: Arc<Counters>,
    kind: ListenerKind,
}

type Handshaken = Result<(Conn, SocketAddr), TransportError>;

#[derive(Debug)]
enum ListenerKind {
    Tcp(TcpListener),
    Tls {
        incoming: mpsc::Receiver<Handshaken>,
        // Dropping the listener aborts the accept task and, with its JoinSet,
        // every handshake in progress.
        _task: AbortOnDrop,
    },
}

#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Listener {
    /// Binds a stream listener on `addr` (`tcp://` or `tls://`; port 0 picks
    /// a free port, see [`Listener::local_addr`]). A `tls://` listener needs
    /// `tls`; a `tcp://` one ignores it. MUST be called inside a tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// [`TransportError::WrongTransport`] for `udp://`,
    /// [`TransportError::MissingTlsConfig`] for `tls://` without `tls`,
    /// [`TransportError::Bind`] when the OS refuses the address.
    pub async fn bind(addr: &ListenAddr, tls: Option<Arc<TlsServerConfig>>) -> Result<Self, TransportError> {
        let tls = match (addr.transport, tls) {
            (Transport::Udp, _) => {
                return Err(TransportError::WrongTransport {
                    addr: *addr,
                    expected: "a stream listener takes tcp:// or tls://",
                })
            }
            (Transport::Tls, None) => return Err(TransportError::MissingTlsConfig { addr: *addr }),
            (Transport::Tls, Some(tls)) => Some(tls),
            (Transport::Tcp, _) => None,
        };
        let listener =
            TcpListener::bind(addr.addr).await.map_err(|source| TransportError::Bind { addr: *addr, source })?;
        let local = listener.local_addr().map_err(|source| TransportError::Bind { addr: *addr, source })?;
        let local = ListenAddr::new(addr.transport, local);
        let counters = Arc::new(Counters::default());
        let kind = match tls {
            None => ListenerKind::Tcp(listener),
            Some(tls) => {
                let (sender, incoming) = mpsc::channel(16);
                let task = tokio::spawn(tls_accept_loop(listener, tls, sender, Arc::clone(&counters)));
                ListenerKind::Tls { incoming, _task: AbortOnDrop(task) }
            }
        };
        Ok(Self { local, counters, kind })
    }

    /// The bound address (with the port the OS picked for port 0).
    #[must_use]
    pub const fn local_addr(&self) -> ListenAddr {
        self.local
    }

    /// Waits for the next connection (for TLS, the next one whose handshake
    /// succeeded) and its peer address. Cancel-safe.
    ///
    /// # Errors
    ///
    /// [`TransportError::Accept`] when the listening socket fails (for
    /// example, out of file descriptors); the listener stays usable.
    pub async fn accept(&mut self) -> Result<(Conn, SocketAddr), TransportError> {
        match &mut self.kind {
            ListenerKind::Tcp(listener) => {
                let (stream, peer) = listener.accept().await.map_err(TransportError::Accept)?;
                let conn = Conn::tcp(stream, peer)?;
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                Ok((conn, peer))
            }
            ListenerKind::Tls { incoming, .. } => {
                let next = incoming.recv().await;
                // The accept task only ends when this receiver is dropped.
                let accepted = next.ok_or_else(|| TransportError::Accept(io::ErrorKind::BrokenPipe.into()))?;
                if accepted.is_ok() {
                    self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                }
                accepted
            }
        }
    }

    /// Counters for an operator.
    #[must_use]
    pub fn stats(&self) -> ListenerStats {
        ListenerStats {
            accepted: self.counters.accepted.load(Ordering::Relaxed),
            handshake_failures: self.counters.handshake_failures.load(Ordering::Relaxed),
        }
    }
}

async fn tls_accept_loop(
    listener: TcpListener,
    tls: Arc<TlsServerConfig>,
    sender: mpsc::Sender<Handshaken>,
    counters: Arc<Counters>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.rustls_config());
    let deadline = tls.handshake_timeout();
    let mut pending = JoinSet::new();
    loop {
        tokio::select! {
            () = sender.closed() => return,
            Some(_) = pending.join_next(), if !pending.is_empty() => {}
            accepted = listener.accept(), if pending.len() < MAX_PENDING_HANDSHAKES => match accepted {
                Ok((stream, peer)) => {
                    let acceptor = acceptor.clone();
                    let sender = sender.clone();
                    let counters = Arc::clone(&counters);
                    pending.spawn(async move {
                        match accept_tls(&acceptor, stream, peer, deadline).await {
                            Ok(conn) => {
                                // A closed receiver means the listener is gone.
                                let _ = sender.send(Ok((conn, peer))).await;
                            }
                            Err(error) => {
                                counters.handshake_failures.fetch_add(1, Ordering::Relaxed);
                                tracing::debug!(%peer, %error, "TLS handshake failed");
                            }
                        }
                    });
                }
                Err(error) => {
                    if sender.send(Err(TransportError::Accept(error))).await.is_err() {
                        return;
                    }
                }
            },
        }
    }
}

async fn accept_tls(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    deadline: Duration,
) -> Result<Conn, TransportError> {
    let local = stream.local_addr()?;
    stream.set_nodelay(true)?;
    match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
        Err(_elapsed) => Err(TransportError::HandshakeTimeout { addr: peer, after: deadline }),
        Ok(Err(source)) => Err(TransportError::Handshake { addr: peer, source }),
        Ok(Ok(stream)) => Ok(Conn::tls(tokio_rustls::TlsStream::Server(stream), local, peer)),
    }
}

/// How [`connect`] secures a connection.
#[derive(Clone, Debug)]
pub enum TlsMode {
    /// Plain TCP (`msrp`, SIP over `tcp`).
    Plain,
    /// TLS (`msrps`, SIP over `tls`), verified by the client configuration:
    /// against a CA with the SubjectAltName matching the host, or by a pinned
    /// fingerprint.
    Tls(Arc<TlsClient>),
}

/// Opens a stream connection to `addr`, whose URI names `host` (the host
/// part of the MSRP or SIP URI, checked against the certificate in
/// [`TlsClient::with_roots`] mode), under one `deadline` for the TCP connect
/// and the TLS handshake together.
///
/// # Errors
///
/// [`TransportError::Connect`] or [`TransportError::ConnectTimeout`] for the
/// TCP connect; for TLS, [`TransportError::HandshakeTimeout`],
/// [`TransportError::NameMismatch`], [`TransportError::FingerprintMismatch`],
/// [`TransportError::UntrustedCertificate`], [`TransportError::Handshake`],
/// or [`TransportError::InvalidHost`] when `host` is no DNS name or IP
/// address.
pub async fn connect(addr: SocketAddr, host: &str, mode: &TlsMode, deadline: Duration) -> Result<Conn, TransportError> {
    let server_name = match mode {
        TlsMode::Plain => None,
        TlsMode::Tls(_) => Some(
            rustls_pki_types::ServerName::try_from(host.to_owned())
                .map_err(|_| TransportError::InvalidHost { host: host.to_owned() })?,
        ),
    };
    let until = tokio::time::Instant::now() + deadline;
    let stream = match tokio::time::timeout_at(until, TcpStream::connect(addr)).await {
        Err(_elapsed) => return Err(TransportError::ConnectTimeout { addr, after: deadline }),
        Ok(Err(source)) => return Err(TransportError::Connect { addr, source }),
        Ok(Ok(stream)) => stream,
    };
    stream.set_nodelay(true)?;
    let (TlsMode::Tls(client), Some(server_name)) = (mode, server_name) else {
        return Ok(Conn::tcp(stream, addr)?);
    };
    let local = stream.local_addr()?;
    let connector = tokio_rustls::TlsConnector::from(client.rustls_config());
    match tokio::time::timeout_at(until, connector.connect(server_name, stream)).await {
        Err(_elapsed) => Err(TransportError::HandshakeTimeout { addr, after: deadline }),
        Ok(Err(source)) => Err(classify_handshake_error(addr, host, source)),
        Ok(Ok(stream)) => Ok(Conn::tls(tokio_rustls::TlsStream::Client(stream), local, addr)),
    }
}

/// Turns the I/O error tokio-rustls reports into the variant saying why.
fn classify_handshake_error(addr: SocketAddr, host: &str, source: io::Error) -> TransportError {
    use rustls::CertificateError;
    let Some(error) = source.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else {
        return TransportError::Handshake { addr, source };
    };
    match error {
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => TransportError::NameMismatch { addr, host: host.to_owned() },
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            match other.0.downcast_ref::<tls::NotPinned>() {
                Some(not_pinned) => TransportError::FingerprintMismatch { addr, presented: not_pinned.presented },
                None => TransportError::UntrustedCertificate { addr, source: error.clone() },
            }
        }
        rustls::Error::InvalidCertificate(_) => TransportError::UntrustedCertificate { addr, source: error.clone() },
        _ => TransportError::Handshake { addr, source },
    }
}

/// SIP over UDP: one message per datagram, both ways (RFC 3261 s.18.1.1,
/// s.18.2.1).
#[derive(Debug)]
pub struct DatagramSocket {
    socket: UdpSocket,
    local: ListenAddr,
    receive_buffer: Vec<u8>,
}

impl DatagramSocket {
    /// Binds `addr` (`udp://`; port 0 picks a free port). MUST be called
    /// inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`TransportError::WrongTransport`] for `tcp://` or `tls://`,
    /// [`TransportError::Bind`] when the OS refuses the address.
    pub async fn bind(addr: &ListenAddr) -> Result<Self, TransportError> {
        if addr.transport != Transport::Udp {
            return Err(TransportError::WrongTransport { addr: *addr, expected: "a datagram socket takes udp://" });
        }
        let socket = UdpSocket::bind(addr.addr).await.map_err(|source| TransportError::Bind { addr: *addr, source })?;
        let local = socket.local_addr().map_err(|source| TransportError::Bind { addr: *addr, source })?;
        Ok(Self { socket, local: ListenAddr::new(Transport::Udp, local), receive_buffer: vec![0; MAX_DATAGRAM + 1] })
    }

    /// The bound address (with the port the OS picked for port 0).
    #[must_use]
    pub const fn local_addr(&self) -> ListenAddr {
        self.local
    }

    /// Receives one datagram: exactly one SIP message (or garbage), and who
    /// sent it. The bytes are copied out of a reused receive buffer into a
    /// `Bytes` of their own size, so a kept message pins only itself.
    ///
    /// # Errors
    ///
    /// The socket's error (on some systems, an ICMP error from an earlier
    /// send); the socket stays usable.
    pub async fn recv_from(&mut self) -> io::Result<(Bytes, SocketAddr)> {
        let (len, peer) = self.socket.recv_from(&mut self.receive_buffer).await?;
        Ok((Bytes::copy_from_slice(&self.receive_buffer[..len]), peer))
    }

    /// Sends `parts` (head and body of one SIP message) as one datagram.
    /// UDP has no vectored send in tokio: two or more non-empty parts are
    /// joined into one buffer first (SIP datagrams are small).
    ///
    /// # Errors
    ///
    /// [`TransportError::DatagramTooLarge`] beyond [`MAX_DATAGRAM`] bytes,
    /// or [`TransportError::Io`] with the socket's error.
    pub async fn send_to(&self, parts: &[Bytes], to: SocketAddr) -> Result<(), TransportError> {
        let len: usize = parts.iter().map(Bytes::len).sum();
        if len > MAX_DATAGRAM {
            return Err(TransportError::DatagramTooLarge { len });
        }
        let mut non_empty = parts.iter().filter(|part| !part.is_empty());
        let joined = match (non_empty.next(), non_empty.next()) {
            (None, _) => Bytes::new(),
            (Some(only), None) => only.clone(),
            (Some(_), Some(_)) => {
                let mut joined = BytesMut::with_capacity(len);
                for part in parts {
                    joined.extend_from_slice(part);
                }
                joined.freeze()
            }
        };
        let sent = self.socket.send_to(&joined, to).await?;
        if sent != joined.len() {
            return Err(TransportError::Io(io::ErrorKind::WriteZero.into()));
        }
        Ok(())
    }
}
