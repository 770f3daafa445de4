//! The runtime: `cpm-roles` entities on tokio.
//!
//! Each entity's machine runs on its own task and owns nothing but its
//! queue of inputs. Every connection has a reader task and a writer task
//! that never block the machine:
//!
//! - a reader reads into a fresh buffer and hands the bytes over as they
//!   come (SIP framed by `sip_lite::sip::Framer`); it stops reading while
//!   the machine asks it to ([`Output::PauseReading`]), and waits when the
//!   machine's queue is full (the kernel's window then holds the peer);
//! - a writer writes each MSRP frame's head, body and end-line with one
//!   vectored write and acknowledges the bytes ([`Input::MsrpWritten`]): the
//!   machine hands a link at most its window beyond what was written, so a
//!   writer's queue is bounded by the machine, not by the peer; a write a
//!   peer does not take within 30 s gives the connection up;
//! - connects and TLS handshakes run on their own tasks with a deadline;
//!   their result comes back as an input ([`Input::Connected`] or
//!   [`Input::ConnectFailed`]).
//!
//! Timers come from the machine's `poll_timeout`. A [`Topology`] (a
//! [`Network`] that a `cpm-roles` scenario fills) says which entities run
//! and how their SIP flows connect; [`Host::start`] binds an MSRP listener
//! per entity on loopback, links the SIP flows over TCP or UDP sockets, and
//! starts everything; [`Host::serve`] runs one deployable node on its own
//! listeners, with SIP peers outside (each stream, and each datagram
//! source, a bounded flow) and configured next hops. What the entities say
//! comes out of [`Host::next_output`], each with the entity that said it.
//!
//! `sip` holds the SIP flows, `msrp` the MSRP connections' readers and
//! writers.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cpm_roles::scenario::Network;
use cpm_roles::{ConnId, Entity, FlowId, HopId, Input, Output, SipTransport};
use msrp_core::Transmit;
use sip_lite::sip::{Framer, FramerEvent, Limits, Message};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::transport::{self, Conn, ConnReader, ConnWriter, ListenAddr, Listener, TlsMode};

mod msrp;
mod sip;

use msrp::Link;
use sip::{tcp_pair, udp_pair, SipFlow, PEER_FLOWS};

/// The wall clock the runtime hands to the entities.
#[expect(clippy::disallowed_methods, reason = "the runtime owns the clock it hands to the entities")]
#[must_use]
pub fn now() -> Instant {
    Instant::now()
}

/// The wall clock in seconds since the Unix epoch (what an IWF writes into
/// an email's `Date`).
#[expect(clippy::disallowed_methods, reason = "the runtime owns the clock it hands to the entities")]
#[must_use]
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

/// How much a reader asks the kernel for at a time.
const READ_SIZE: usize = 64 * 1024;
/// Inputs waiting for an entity's machine before its readers wait.
const QUEUE: usize = 1024;
/// Bytes one MSRP connection may have read and not yet handed to its
/// entity: past it the reader waits for the machine, so what a relay holds
/// is bounded by its windows, not by how fast its upstream writes.
const READ_BUDGET: usize = 4 * READ_SIZE;

/// How long a write may wait for a peer that does not read before the
/// connection is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How far away an entity's next timer must be for it to count as settled:
/// past RFC 3261's T2 (4 s, the longest retransmission interval), a timer
/// only waits out a finished transaction (Timer K = T4 = 5 s, Timer M ...).
pub const SETTLED_AFTER: Duration = Duration::from_millis(4500);

/// What [`Host::start`] needs besides the topology.
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// How long a connect (with its TLS handshake) may take.
    pub connect_timeout: Duration,
    /// How MSRP links are opened: plain TCP, or TLS ([`TlsMode`]).
    pub tls: TlsMode,
    /// The TLS configuration of every entity's MSRP listener (`None`: TCP).
    pub tls_server: Option<Arc<transport::TlsServerConfig>>,
    /// A SIP stream a peer opened that carries nothing for this long is
    /// closed (its flow freed for others); `None`: never.
    pub sip_idle_timeout: Option<Duration>,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(5), tls: TlsMode::Plain, tls_server: None, sip_idle_timeout: None }
    }
}

/// Entities and the SIP flows between them, before they run. A `cpm-roles`
/// [`Scenario`](cpm_roles::scenario::Scenario) fills it as a [`Network`].
#[derive(Default)]
pub struct Topology {
    entities: Vec<(String, Box<dyn Entity>)>,
    flows: Vec<SipLink>,
    inputs: Vec<(usize, Input)>,
}

/// A SIP flow between two entities of a [`Topology`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipLink {
    /// The entities at its ends.
    pub ends: [usize; 2],
    /// The flow number (the same at both ends).
    pub flow: FlowId,
    /// Its name in traces.
    pub hop: String,
    /// Streams or datagrams.
    pub transport: SipTransport,
}

impl Topology {
    /// An empty topology.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The entities' names, in the order they were added.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        self.entities.iter().map(|(_, e)| e.name().to_owned()).collect()
    }

    /// The host name each entity is reachable at, by index.
    #[must_use]
    pub fn hosts(&self) -> Vec<String> {
        self.entities.iter().map(|(host, _)| host.clone()).collect()
    }

    /// The SIP flows.
    #[must_use]
    pub fn sip_links(&self) -> &[SipLink] {
        &self.flows
    }

    /// Takes the inputs queued for the entities (a scenario's command to
    /// its sender), for a caller that hands them over itself
    /// ([`Host::input`]) once the entities run.
    pub fn take_inputs(&mut self) -> Vec<(usize, Input)> {
        std::mem::take(&mut self.inputs)
    }
}

impl Network for Topology {
    fn add(&mut self, host: &str, entity: Box<dyn Entity>) -> usize {
        self.entities.push((host.to_owned(), entity));
        self.entities.len() - 1
    }

    fn link_sip(&mut self, a: usize, b: usize, flow: FlowId, hop: &str) {
        self.link_sip_with(a, b, flow, hop, SipTransport::Reliable);
    }

    fn link_sip_with(&mut self, a: usize, b: usize, flow: FlowId, hop: &str, transport: SipTransport) {
        self.flows.push(SipLink { ends: [a, b], flow, hop: hop.to_owned(), transport });
    }

    fn input(&mut self, index: usize, input: Input) {
        self.inputs.push((index, input));
    }
}

/// What comes out of a running [`Host`]: something one entity said or
/// that happened to it.
#[derive(Debug)]
pub struct HostOutput {
    /// The entity (its index in the topology).
    pub entity: usize,
    /// When.
    pub at: Instant,
    /// What.
    pub event: HostEvent,
}

/// What a [`HostOutput`] reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum HostEvent {
    /// One of the entity's outputs, as it gave it (frames share the
    /// entity's buffers), after the runtime carried it out.
    Output(Output),
    /// An MSRP connection of the entity is up: one it asked for as `hop`,
    /// or (`None`) one a peer opened.
    LinkUp {
        /// The runtime's name for it.
        conn: ConnId,
        /// The hop of the [`Output::Connect`] it answers.
        hop: Option<HopId>,
        /// This end's address.
        local: SocketAddr,
        /// The other end's.
        peer: SocketAddr,
    },
    /// The entity read `bytes` MSRP bytes from `conn`.
    Read {
        /// The connection.
        conn: ConnId,
        /// How many.
        bytes: usize,
    },
    /// The entity has nothing left to do soon (no session and no link, or
    /// only timers more than [`SETTLED_AFTER`] away, such as a finished
    /// transaction lingering for retransmissions, RFC 6026 s.8.4), or
    /// (`false`) has again.
    Settled(bool),
}

/// What a task tells an entity's machine.
enum Ev {
    Input(Input),
    /// Bytes read from an MSRP connection, with the part of its
    /// [`READ_BUDGET`] they hold until the entity has them.
    MsrpRead {
        conn: ConnId,
        data: Bytes,
        budget: OwnedSemaphorePermit,
    },
    Sip {
        flow: FlowId,
        message: Message,
    },
    /// A datagram on listening socket `socket` from `from`.
    Datagram {
        socket: usize,
        from: SocketAddr,
        bytes: Bytes,
    },
    /// A peer opened a SIP stream to a listener.
    SipAccepted(Conn),
    /// A SIP stream ended (the peer closed it, or its framing was lost).
    SipClosed {
        flow: FlowId,
    },
    /// A SIP stream a route asked for failed to open.
    SipRouteFailed {
        flow: FlowId,
        address: ListenAddr,
    },
    Accepted(Conn),
    /// End every session (a stopping node).
    EndAll,
    /// Stop (or resume) reading every MSRP connection.
    Hold(bool),
    /// Tell the entity's stats.
    Stats(oneshot::Sender<cpm_roles::Stats>),
    /// Cut an MSRP connection once `after` more of its bytes were read.
    Cut {
        conn: ConnId,
        after: usize,
    },
    ConnectDone {
        hop: HopId,
        conn: Result<Conn, transport::TransportError>,
    },
    Stop,
}

/// Entities running on tokio.
pub struct Host {
    names: Vec<String>,
    msrp_addrs: Vec<SocketAddr>,
    queues: Vec<mpsc::Sender<Ev>>,
    outputs: mpsc::UnboundedReceiver<HostOutput>,
    tasks: JoinSet<()>,
}

impl Host {
    /// Binds, links and starts `topology` on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// A socket that cannot be bound or connected on loopback.
    pub async fn start(topology: Topology, options: HostOptions) -> io::Result<Self> {
        let Topology { entities, flows, inputs } = topology;
        let mut tasks = JoinSet::new();
        let (out_tx, outputs) = mpsc::unbounded_channel();
        let mut queues = Vec::new();
        let mut receivers = Vec::new();
        for _ in &entities {
            let (tx, rx) = mpsc::channel(QUEUE);
            queues.push(tx);
            receivers.push(rx);
        }
        // One MSRP listener per entity; a connect to an entity's host goes
        // to its listener.
        let mut hosts = HashMap::new();
        let mut listeners = Vec::new();
        for (index, (host, _)) in entities.iter().enumerate() {
            let addr: ListenAddr = if options.tls_server.is_some() { "tls://127.0.0.1:0" } else { "tcp://127.0.0.1:0" }
                .parse()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{e}")))?;
            let listener = Listener::bind(&addr, options.tls_server.clone()).await.map_err(io::Error::other)?;
            hosts.insert(host.clone(), listener.local_addr().addr);
            listeners.push((index, listener));
        }
        let msrp_addrs = listeners.iter().map(|(_, l)| l.local_addr().addr).collect();
        let hosts = Arc::new(hosts);
        for (index, mut listener) in listeners {
            let queue = queues[index].clone();
            tasks.spawn(async move {
                while let Some((conn, _)) = accept(&mut listener).await {
                    if queue.send(Ev::Accepted(conn)).await.is_err() {
                        return;
                    }
                }
            });
        }
        // SIP flows.
        let mut sip: Vec<HashMap<FlowId, SipFlow>> = entities.iter().map(|_| HashMap::new()).collect();
        for SipLink { ends: [a, b], flow, transport, .. } in flows {
            let (Some(queue_a), Some(queue_b)) = (queues.get(a), queues.get(b)) else { continue };
            let (end_a, end_b) = match transport {
                SipTransport::Unreliable => udp_pair(&mut tasks, [queue_a, queue_b], flow).await?,
                _ => tcp_pair(&mut tasks, [queue_a, queue_b], flow).await?,
            };
            sip[a].insert(flow, end_a);
            sip[b].insert(flow, end_b);
        }
        let names: Vec<String> = entities.iter().map(|(_, e)| e.name().to_owned()).collect();
        for (((index, (_, entity)), rx), flows) in entities.into_iter().enumerate().zip(receivers).zip(sip) {
            let machine = Machine {
                index,
                entity,
                queue: queues[index].clone(),
                sip: flows,
                conns: HashMap::new(),
                next_conn: Arc::new(AtomicU64::new(0)),
                hosts: Arc::clone(&hosts),
                options: options.clone(),
                outputs: out_tx.clone(),
                settled: false,
                started: false,
                udp: Vec::new(),
                by_addr: HashMap::new(),
                next_flow: 0,
                max_flows: usize::MAX,
                flow_used: HashMap::new(),
                held: false,
                routes: HashMap::new(),
                cuts: HashMap::new(),
            };
            tasks.spawn(machine.run(rx));
        }
        for (index, input) in inputs {
            if let Some(queue) = queues.get(index) {
                let _ = queue.send(Ev::Input(input)).await;
            }
        }
        Ok(Self { names, msrp_addrs, queues, outputs, tasks })
    }

    /// One deployable node: `entity` (index 0) served on its own sockets.
    /// SIP comes in on `sip_listen` (each stream a peer opens, and each
    /// peer address sending datagrams, is its own flow, up to
    /// `max_flows`); SIP the entity sends on flow `f` of `routes` goes to
    /// that next hop (a datagram from the first `udp://` listener, or a
    /// stream opened on first use); MSRP comes in on `msrp` and goes out
    /// to the address in each URI.
    ///
    /// # Errors
    ///
    /// A listener that cannot be bound.
    pub async fn serve(
        entity: Box<dyn Entity>,
        sip_listen: &[ListenAddr],
        msrp: Vec<Listener>,
        routes: Vec<(FlowId, ListenAddr)>,
        max_flows: usize,
        options: HostOptions,
    ) -> Result<Self, transport::TransportError> {
        let mut tasks = JoinSet::new();
        let (out_tx, outputs) = mpsc::unbounded_channel();
        let (queue, rx) = mpsc::channel(QUEUE);
        let mut udp = Vec::new();
        for addr in sip_listen {
            if addr.transport == transport::Transport::Udp {
                let socket = UdpSocket::bind(addr.addr)
                    .await
                    .map_err(|source| transport::TransportError::Bind { addr: *addr, source })?;
                let socket = Arc::new(socket);
                let (index, reader, queue) = (udp.len(), Arc::clone(&socket), queue.clone());
                tasks.spawn(async move {
                    let mut buf = vec![0u8; 65_535];
                    loop {
                        let Ok((n, from)) = reader.recv_from(&mut buf).await else { continue };
                        let bytes = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                        if queue.send(Ev::Datagram { socket: index, from, bytes }).await.is_err() {
                            return;
                        }
                    }
                });
                udp.push(socket);
            } else {
                let mut listener = Listener::bind(addr, options.tls_server.clone()).await?;
                let queue = queue.clone();
                tasks.spawn(async move {
                    while let Some((conn, _)) = accept(&mut listener).await {
                        if queue.send(Ev::SipAccepted(conn)).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
        let msrp_addrs = msrp.iter().map(|l| l.local_addr().addr).collect();
        for mut listener in msrp {
            let queue = queue.clone();
            tasks.spawn(async move {
                while let Some((conn, _)) = accept(&mut listener).await {
                    if queue.send(Ev::Accepted(conn)).await.is_err() {
                        return;
                    }
                }
            });
        }
        let names = vec![entity.name().to_owned()];
        let sip = routes.iter().map(|(flow, address)| (*flow, SipFlow::Route(*address))).collect();
        let routes = routes.into_iter().collect();
        let machine = Machine {
            index: 0,
            entity,
            queue: queue.clone(),
            sip,
            conns: HashMap::new(),
            next_conn: Arc::new(AtomicU64::new(0)),
            hosts: Arc::new(HashMap::new()),
            options,
            outputs: out_tx,
            settled: false,
            started: false,
            udp,
            by_addr: HashMap::new(),
            next_flow: 0,
            max_flows,
            flow_used: HashMap::new(),
            held: false,
            routes,
            cuts: HashMap::new(),
        };
        tasks.spawn(machine.run(rx));
        Ok(Self { names, msrp_addrs, queues: vec![queue], outputs, tasks })
    }

    /// What reads every entity's stats (for the metrics endpoint), while
    /// the host runs.
    #[must_use]
    pub fn stats_reader(&self) -> StatsReader {
        StatsReader { entities: self.names.iter().cloned().zip(self.queues.iter().cloned()).collect() }
    }

    /// The entities' names, by index.
    #[must_use]
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The address of entity `index`'s MSRP listener.
    #[must_use]
    pub fn msrp_addr(&self, index: usize) -> Option<SocketAddr> {
        self.msrp_addrs.get(index).copied()
    }

    /// Hands `input` to entity `index` (a command, typically).
    pub async fn input(&self, index: usize, input: Input) {
        if let Some(queue) = self.queues.get(index) {
            let _ = queue.send(Ev::Input(input)).await;
        }
    }

    /// Stops (`true`) or resumes reading every MSRP connection of entity
    /// `index`, whatever the entity asks: to its neighbours it is then a
    /// peer that stopped reading (an operator's or a test's lever; the
    /// entity's own pauses still hold when it resumes).
    pub async fn hold_reading(&self, index: usize, hold: bool) {
        if let Some(queue) = self.queues.get(index) {
            let _ = queue.send(Ev::Hold(hold)).await;
        }
    }

    /// A fault (a test's lever, like [`Host::hold_reading`]): MSRP
    /// connection `conn` of entity `index` is cut once the entity has read
    /// `after` more bytes from it (0: at once), in the middle of a frame if
    /// that is where the count ends, as by a network that fails. The bytes
    /// past the count are dropped, the connection is closed without a word
    /// (its peer finds it closed or reset) and the entity learns it is lost
    /// ([`Input::MsrpClosed`]).
    pub async fn cut_after(&self, index: usize, conn: ConnId, after: usize) {
        if let Some(queue) = self.queues.get(index) {
            let _ = queue.send(Ev::Cut { conn, after }).await;
        }
    }

    /// Ends every session of every entity (CANCEL, refusal or BYE, as each
    /// session's state asks): a node that stops.
    pub async fn end_all(&self) {
        for queue in &self.queues {
            let _ = queue.send(Ev::EndAll).await;
        }
    }

    /// The next thing an entity said; `None` once every entity stopped.
    pub async fn next_output(&mut self) -> Option<HostOutput> {
        self.outputs.recv().await
    }

    /// Stops every entity and closes every socket.
    pub async fn shutdown(mut self) {
        for queue in &self.queues {
            let _ = queue.try_send(Ev::Stop);
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// How a link to the peer of `params` is secured: plain for `msrp`; for
/// `msrps` (RFC 4975 s.6) as `configured` (a CA, or pinned fingerprints)
/// when the node has a TLS client configuration; else, between peers
/// without one, pinned to the certificates the peer's SDP named (RFC 4975
/// s.14.4: "The certificate presented during the TLS handshake needs to
/// match the fingerprint exchanged via the SDP"). A fingerprint is only as
/// trustworthy as the signalling that carried it, so it never overrides a
/// CA the operator chose. `None`: TLS with nothing to verify the peer by.
fn msrp_link_mode(params: &cpm_negotiation::ConnectParams, configured: &TlsMode) -> Option<TlsMode> {
    if !params.key.is_tls() {
        return Some(TlsMode::Plain);
    }
    if let TlsMode::Tls(_) = configured {
        return Some(configured.clone());
    }
    let pins: Vec<transport::Fingerprint> = params.fingerprints.iter().filter_map(|f| f.parse().ok()).collect();
    if pins.is_empty() && !params.fingerprints.is_empty() {
        tracing::warn!(fingerprints = ?params.fingerprints, "no SHA-256 fingerprint in the peer's SDP to pin");
    }
    transport::TlsClient::pinned(pins).ok().map(|client| TlsMode::Tls(Arc::new(client)))
}

/// Reads the stats of a [`Host`]'s entities, each from its own task.
#[derive(Clone, Debug)]
pub struct StatsReader {
    entities: Vec<(String, mpsc::Sender<Ev>)>,
}

impl StatsReader {
    /// Each running entity's name and [`cpm_roles::Stats`] now (an entity
    /// that has stopped is left out).
    pub async fn read(&self) -> Vec<(String, cpm_roles::Stats)> {
        let mut out = Vec::with_capacity(self.entities.len());
        for (name, queue) in &self.entities {
            let (reply, stats) = oneshot::channel();
            if queue.send(Ev::Stats(reply)).await.is_ok() {
                if let Ok(stats) = stats.await {
                    out.push((name.clone(), stats));
                }
            }
        }
        out
    }
}

/// The next connection of a listener; an error (out of file descriptors,
/// say) is logged and retried after a moment, so a listener never stops.
async fn accept(listener: &mut Listener) -> Option<(Conn, SocketAddr)> {
    loop {
        match listener.accept().await {
            Ok(accepted) => return Some(accepted),
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One entity's machine and what it owns.
struct Machine {
    index: usize,
    entity: Box<dyn Entity>,
    queue: mpsc::Sender<Ev>,
    sip: HashMap<FlowId, SipFlow>,
    conns: HashMap<ConnId, Link>,
    next_conn: Arc<AtomicU64>,
    hosts: Arc<HashMap<String, SocketAddr>>,
    options: HostOptions,
    outputs: mpsc::UnboundedSender<HostOutput>,
    /// Whether it was settled after its last input.
    settled: bool,
    /// Whether it said so once.
    started: bool,
    /// The SIP listening datagram sockets of a served node.
    udp: Vec<Arc<UdpSocket>>,
    /// The datagram flow of each peer address (a peer that sends from one
    /// address is one flow, RFC 3261 s.18.2.2: responses go back to it).
    by_addr: HashMap<SocketAddr, FlowId>,
    /// The next SIP flow number for a new peer.
    next_flow: u64,
    /// The most SIP flows peers may open (streams and datagram sources),
    /// and the most MSRP connections.
    max_flows: usize,
    /// Nothing is read from its MSRP connections ([`Host::hold_reading`]).
    held: bool,
    /// The configured next hops of a served node, by flow.
    routes: HashMap<FlowId, ListenAddr>,
    /// When each peer flow was last used (a counter, not a clock).
    flow_used: HashMap<FlowId, u64>,
    /// The bytes each connection to be cut may still read
    /// ([`Host::cut_after`]); 0: cut.
    cuts: HashMap<ConnId, usize>,
}

impl Machine {
    fn report(&self, at: Instant, event: HostEvent) {
        let _ = self.outputs.send(HostOutput { entity: self.index, at, event });
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Ev>) {
        self.check_settled(now());
        loop {
            let timer = self.entity.poll_timeout();
            let ev = match timer {
                Some(at) => {
                    tokio::select! {
                        ev = rx.recv() => ev,
                        () = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => Some(Ev::Input(Input::Timeout)),
                    }
                }
                None => rx.recv().await,
            };
            // Read bytes hold their connection's budget until handed over.
            let mut _budget = None;
            let input = match ev {
                None | Some(Ev::Stop) => return,
                Some(Ev::MsrpRead { conn, data, budget }) => {
                    _budget = Some(budget);
                    let Some(input) = self.count_cut(Input::MsrpReceived { conn, data }) else { continue };
                    input
                }
                Some(Ev::Input(input)) => {
                    let Some(input) = self.count_cut(input) else { continue };
                    if let Input::MsrpClosed { conn } = &input {
                        // The peer closed it: the writer has nothing more to do.
                        self.conns.remove(conn);
                    }
                    input
                }
                Some(Ev::Sip { flow, message }) => Input::SipReceived { flow, message },
                Some(Ev::Stats(reply)) => {
                    let _ = reply.send(self.entity.stats());
                    continue;
                }
                Some(Ev::Hold(held)) => {
                    self.held = held;
                    for link in self.conns.values() {
                        let _ = link.reading.send(!link.paused && !held);
                    }
                    continue;
                }
                // A connection already gone has nothing to cut.
                Some(Ev::Cut { conn, .. }) if !self.conns.contains_key(&conn) => continue,
                Some(Ev::Cut { conn, after }) => {
                    self.cuts.insert(conn, after);
                    if after > 0 {
                        continue;
                    }
                    self.cut(conn);
                    Input::MsrpClosed { conn }
                }
                Some(Ev::EndAll) => {
                    let at = now();
                    for session in self.entity.sessions() {
                        let _ = self.entity.handle(at, Input::Command(cpm_roles::Command::End { session }));
                        while let Some(output) = self.entity.poll_output() {
                            self.carry_out(at, output);
                        }
                    }
                    // Said even when unchanged: the caller waits for it.
                    self.started = false;
                    self.check_settled(at);
                    continue;
                }
                Some(Ev::Datagram { socket, from, bytes }) => {
                    let Some(flow) = self.datagram_flow(socket, from) else { continue };
                    Input::SipDatagram { flow, bytes }
                }
                Some(Ev::SipAccepted(conn)) => {
                    self.accept_sip(conn);
                    continue;
                }
                Some(Ev::SipClosed { flow }) => {
                    // A peer's stream is gone; a route's opens again on demand.
                    if let Some(address) = self.routes.get(&flow) {
                        self.sip.insert(flow, SipFlow::Route(*address));
                    } else if flow.get() >= PEER_FLOWS {
                        self.sip.remove(&flow);
                        self.flow_used.remove(&flow);
                    }
                    continue;
                }
                Some(Ev::SipRouteFailed { flow, address }) => {
                    // The messages queued for it are lost; their transactions
                    // time out (RFC 3261 s.17.1.1.2, s.17.1.2.2). The next
                    // message tries again.
                    tracing::warn!(entity = self.entity.name(), %flow, %address, "SIP route unreachable");
                    self.sip.insert(flow, SipFlow::Route(address));
                    continue;
                }
                Some(Ev::Accepted(conn)) => {
                    if self.conns.len() >= self.max_flows {
                        // Past the bound a peer's new connection is closed at
                        // once (dropped): open links cannot exhaust the node.
                        tracing::warn!(
                            entity = self.entity.name(),
                            links = self.conns.len(),
                            "MSRP link bound reached: closed"
                        );
                        continue;
                    }
                    let id = self.open(conn, None);
                    Input::Accepted { conn: id }
                }
                Some(Ev::ConnectDone { hop, conn: Ok(conn) }) => {
                    let id = self.open(conn, Some(hop));
                    Input::Connected { hop, conn: id }
                }
                Some(Ev::ConnectDone { hop, conn: Err(error) }) => {
                    tracing::warn!(entity = self.entity.name(), %error, "MSRP connect failed");
                    Input::ConnectFailed { hop }
                }
            };
            self.feed(input);
        }
    }

    /// Hands the entity `input` and carries out what it says.
    fn feed(&mut self, input: Input) {
        let at = now();
        if let Input::MsrpReceived { conn, data } = &input {
            self.report(at, HostEvent::Read { conn: *conn, bytes: data.len() });
        }
        if let Err(error) = self.entity.handle(at, input) {
            tracing::error!(entity = self.entity.name(), %error, "input refused");
        }
        while let Some(output) = self.entity.poll_output() {
            self.carry_out(at, output);
        }
        self.check_settled(at);
    }

    /// Reports whether the entity settled, when that changed (and at start).
    fn check_settled(&mut self, at: Instant) {
        let settled = self.entity.is_idle()
            || self.entity.poll_timeout().is_none_or(|t| t.saturating_duration_since(at) > SETTLED_AFTER);
        if settled != self.settled || !self.started {
            self.started = true;
            self.settled = settled;
            self.report(at, HostEvent::Settled(settled));
        }
    }

    fn carry_out(&mut self, at: Instant, output: Output) {
        match &output {
            Output::SipTransmit { flow, bytes } => match self.sip.get(flow) {
                Some(SipFlow::Stream(writer)) => {
                    // A peer that reads nothing while it makes us answer loses
                    // what does not fit (its transactions time out).
                    if writer.try_send(bytes.clone()).is_err() {
                        tracing::warn!(entity = self.entity.name(), %flow, "SIP stream not written: full or closed");
                    }
                }
                Some(SipFlow::Route(address)) => {
                    let address = *address;
                    self.open_route(*flow, address, bytes.clone());
                }
                Some(SipFlow::Datagram(socket, peer)) => {
                    // Lost if the socket buffer is full: the transaction retransmits.
                    let _ = socket.try_send_to(bytes, *peer);
                }
                None => tracing::warn!(entity = self.entity.name(), %flow, "no such SIP flow"),
            },
            Output::Connect { hop, params, .. } => {
                let host = params.key.host().to_owned();
                let addr = self.hosts.get(&host).copied().or_else(|| params.key.to_string().parse().ok());
                let (hop, queue, options) = (*hop, self.queue.clone(), self.options.clone());
                let mode = msrp_link_mode(params, &options.tls);
                let port = params.key.port();
                tokio::spawn(async move {
                    // A host name is looked up within the connect's deadline.
                    let addr = match addr {
                        Some(addr) => Some(addr),
                        None => tokio::time::timeout(
                            options.connect_timeout,
                            tokio::net::lookup_host((host.as_str(), port)),
                        )
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .and_then(|mut found| found.next()),
                    };
                    let conn = match (addr, mode) {
                        (Some(addr), Some(mode)) => {
                            transport::connect(addr, &host, &mode, options.connect_timeout).await
                        }
                        (None, _) => Err(transport::TransportError::Io(io::Error::new(
                            io::ErrorKind::NotFound,
                            format!("no address for MSRP host {host:?}"),
                        ))),
                        (Some(addr), None) => Err(transport::TransportError::Io(io::Error::new(
                            io::ErrorKind::Unsupported,
                            format!("msrps link to {addr}: no TLS client configuration"),
                        ))),
                    };
                    let _ = queue.send(Ev::ConnectDone { hop, conn }).await;
                });
            }
            Output::MsrpTransmit { conn, transmit } => {
                if let Some(link) = self.conns.get(conn) {
                    let _ = link.writer.send(transmit.clone());
                }
            }
            Output::CloseLink { conn } => {
                // The writer writes what it has, then closes; nothing more is read.
                if let Some(link) = self.conns.remove(conn) {
                    link.reader.abort();
                }
            }
            Output::PauseReading { conn } | Output::ResumeReading { conn } => {
                let held = self.held;
                if let Some(link) = self.conns.get_mut(conn) {
                    link.paused = matches!(output, Output::PauseReading { .. });
                    let _ = link.reading.send(!link.paused && !held);
                }
            }
            _ => {}
        }
        self.report(at, HostEvent::Output(output));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(uri: &str, fingerprints: &[&str]) -> cpm_negotiation::ConnectParams {
        let uri = msrp_core::uri::MsrpUri::parse_str(uri).unwrap_or_else(|e| panic!("{e:?}"));
        cpm_negotiation::ConnectParams {
            key: msrp_core::link::LinkKey::new(uri.scheme(), uri.host(), uri.port().unwrap_or(0), uri.transport()),
            path: vec![uri],
            cema: false,
            fingerprints: fingerprints.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    #[test]
    fn an_msrps_link_is_verified_as_configured_else_pinned_by_the_sdp() {
        let sha256 = format!("SHA-256 {}", ["AB"; 32].join(":"));
        let configured = TlsMode::Tls(Arc::new(
            transport::TlsClient::pinned(vec![sha256.parse().expect("valid")]).expect("a client"),
        ));
        let mode = |uri, prints: &[&str], configured: &TlsMode| msrp_link_mode(&params(uri, prints), configured);
        // Plain MSRP is plain whatever the SDP says.
        assert!(matches!(mode("msrp://h:1/s;tcp", &[&sha256], &configured), Some(TlsMode::Plain)));
        // A configured verification wins over what the SDP names.
        let tls = mode("msrps://h:1/s;tcp", &[&sha256], &configured);
        assert!(
            matches!(tls, Some(TlsMode::Tls(client)) if matches!(&configured, TlsMode::Tls(c) if Arc::ptr_eq(&client, c)))
        );
        // Without one, a SHA-256 fingerprint from the SDP pins the link.
        assert!(matches!(mode("msrps://h:1/s;tcp", &[&sha256], &TlsMode::Plain), Some(TlsMode::Tls(_))));
        // Nothing to verify the peer by: the link cannot be opened.
        assert!(mode("msrps://h:1/s;tcp", &["SHA-1 4A:AD"], &TlsMode::Plain).is_none());
        assert!(mode("msrps://h:1/s;tcp", &[], &TlsMode::Plain).is_none());
    }
}
