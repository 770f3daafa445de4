//! A runtime that drives `cpm-roles` entities on real sockets: SIP over TCP,
//! MSRP over TCP, timers from `poll_timeout`, vectored writes of each MSRP
//! frame's head, body and end-line, connects and accepts as the entities
//! ask. Shared by the demo, the loopback and interop tests and the e2e bench
//! (`#[path = "../examples/driver/mod.rs"] mod driver;`).
//!
//! Design: the entities live on one engine thread (the caller's, in
//! [`Driver::run`]): `Box<dyn Entity>` is not `Send`, and one thread keeps
//! the drain contract and the trace order trivial. Every socket has its own
//! reader thread that feeds one channel (SIP is framed by Content-Length in
//! the reader, with `sip_lite::sip::Framer`); every listener has an accept
//! thread. The engine waits on that channel with `recv_timeout` until the
//! earliest `poll_timeout`, and writes with blocking vectored writes (the
//! readers always drain, so a write cannot deadlock; a write timeout
//! bounds a stuck external peer).
//!
//! Each entity gets a SIP and an MSRP listener on 127.0.0.1 (ephemeral
//! ports). The scenario's hosts (`a.example.com` ...) stay in the SDP; an
//! [`Output::Connect`] to a known host goes to that entity's real MSRP port,
//! any other host is tried as a literal `ip:port`. The trace is the
//! simulator's ([`TraceRecorder`]).
//!
//! `DRIVER_READ_SIZE=N` changes the largest MSRP read handed to an entity
//! (64 KiB), to try other splits of the same stream.
#![allow(dead_code, reason = "shared by the demo, the tests and the bench: each uses a part")]

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cpm_roles::diagram::TraceRecorder;
use cpm_roles::scenario::Network;
use cpm_roles::sim::TraceEvent;
use cpm_roles::{Command, ConnId, Entity, Event, FlowId, Input, Output, SipTransport};
use sip_lite::sip::{Framer, FramerEvent, Limits, Message};

/// The wall clock of the runtime (the entities get it through `handle`).
#[expect(clippy::disallowed_methods, reason = "a socket runtime reads the clock it hands to the entities")]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// How long a connect to a host outside the driver may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A write that makes no progress for this long fails (a stuck peer).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest read handed to an entity.
const READ_SIZE: usize = 64 * 1024;

/// What the socket threads tell the engine.
enum Ev {
    Sip { entity: usize, flow: FlowId, message: Message },
    SipDatagram { entity: usize, flow: FlowId, bytes: Bytes, from: SocketAddr },
    SipError { entity: usize, flow: FlowId, error: String },
    SipAccepted { entity: usize, flow: FlowId, stream: TcpStream, reader: JoinHandle<()> },
    MsrpAccepted { entity: usize, conn: ConnId, stream: TcpStream, reader: JoinHandle<()> },
    Msrp { conn: ConnId, data: Bytes },
    MsrpClosed { conn: ConnId },
}

/// How a SIP flow is carried.
enum SipSocket {
    Tcp(TcpStream),
    /// A datagram socket and where to send (the peer's address; for an
    /// outside peer, the source of its last datagram).
    Udp(UdpSocket, Option<SocketAddr>),
}

/// One side of a SIP flow.
struct SipEnd {
    socket: SipSocket,
    /// The entity at the other end, when it is one of ours.
    peer: Option<usize>,
    hop: String,
    log: Option<File>,
}

/// One side of an MSRP connection.
struct Link {
    owner: usize,
    stream: TcpStream,
    label: String,
    peer: Option<usize>,
    /// Closed by its owner (`CloseLink`) or cut by a fault: reads after it
    /// are not reported as the peer's close.
    closed: bool,
    log: Option<File>,
    /// Request body bytes written so far (for [`Driver::cut_after`]).
    body_written: usize,
    /// A write failed: the connection is dead.
    broken: bool,
    /// Opened here: the hops on the link (label, first URI of the peer's
    /// path), more than one when the owner reuses it; and the key it matches.
    hops: Vec<(String, String)>,
    key: Option<cpm_negotiation::LinkKey>,
    /// Accepted here: the opener's side of the same connection (its hops).
    opener_conn: Option<ConnId>,
}

impl Link {
    fn new(owner: usize, stream: TcpStream, label: String, peer: Option<usize>, log: Option<File>) -> Self {
        Self {
            owner,
            stream,
            label,
            peer,
            closed: false,
            log,
            body_written: 0,
            broken: false,
            hops: Vec::new(),
            key: None,
            opener_conn: None,
        }
    }
}

/// Entities on real sockets. Build it like the simulator (it implements
/// [`Network`]), then [`Driver::run`] it.
pub(crate) struct Driver {
    entities: Vec<Box<dyn Entity>>,
    names: Vec<String>,
    hosts: HashMap<String, usize>,
    sip_listeners: Vec<TcpListener>,
    msrp_listeners: Vec<TcpListener>,
    sip: HashMap<(usize, FlowId), SipEnd>,
    links: HashMap<ConnId, Link>,
    /// Local address of each connection we opened: who opened it.
    opened: HashMap<SocketAddr, (usize, ConnId)>,
    /// Connection and flow ids, shared with the accept threads.
    next_conn: Arc<AtomicU64>,
    next_flow: Arc<AtomicU64>,
    pending: VecDeque<(usize, Input)>,
    tx: Sender<Ev>,
    rx: Receiver<Ev>,
    threads: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    started: bool,
    recorder: TraceRecorder,
    events: Vec<(Instant, usize, Event)>,
    errors: Vec<String>,
    write_failures: Vec<String>,
    received: Vec<u64>,
    dropped_writes: u64,
    wire_log: Option<PathBuf>,
    wire_files: Vec<PathBuf>,
    cut: Option<(String, usize)>,
    non_cpm_status: u16,
    /// The last socket event or entity output.
    last_activity: Option<Instant>,
    /// Largest MSRP read handed to an entity.
    read_size: usize,
}

impl Network for Driver {
    fn add(&mut self, host: &str, entity: Box<dyn Entity>) -> usize {
        let index = self.entities.len();
        self.names.push(entity.name().to_owned());
        self.entities.push(entity);
        self.hosts.insert(host.to_owned(), index);
        self.received.push(0);
        let bind = || TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind 127.0.0.1:0: {e}"));
        self.sip_listeners.push(bind());
        self.msrp_listeners.push(bind());
        index
    }

    fn link_sip(&mut self, a: usize, b: usize, flow: FlowId, hop: &str) {
        if let Err(error) = self.link_sip_tcp(a, b, flow, hop) {
            self.errors.push(format!("SIP link {hop}: {error}"));
        }
    }

    fn link_sip_with(&mut self, a: usize, b: usize, flow: FlowId, hop: &str, transport: SipTransport) {
        let linked = match transport {
            SipTransport::Unreliable => self.link_sip_udp(a, b, flow, hop),
            _ => self.link_sip_tcp(a, b, flow, hop),
        };
        if let Err(error) = linked {
            self.errors.push(format!("SIP link {hop}: {error}"));
        }
    }

    fn input(&mut self, index: usize, input: Input) {
        self.pending.push_back((index, input));
    }
}

impl Driver {
    /// An empty runtime.
    pub(crate) fn new() -> Self {
        let (tx, rx) = channel();
        Self {
            entities: Vec::new(),
            names: Vec::new(),
            hosts: HashMap::new(),
            sip_listeners: Vec::new(),
            msrp_listeners: Vec::new(),
            sip: HashMap::new(),
            links: HashMap::new(),
            opened: HashMap::new(),
            next_conn: Arc::new(AtomicU64::new(1)),
            next_flow: Arc::new(AtomicU64::new(1_000_000)),
            pending: VecDeque::new(),
            tx,
            rx,
            threads: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            started: false,
            recorder: TraceRecorder::new(),
            events: Vec::new(),
            errors: Vec::new(),
            write_failures: Vec::new(),
            received: Vec::new(),
            dropped_writes: 0,
            wire_log: None,
            wire_files: Vec::new(),
            cut: None,
            non_cpm_status: 200,
            last_activity: None,
            read_size: std::env::var("DRIVER_READ_SIZE").ok().and_then(|s| s.parse().ok()).unwrap_or(READ_SIZE),
        }
    }

    /// Writes every byte each side puts on each connection to its own file
    /// in `dir` (`NNN-ENTITY-sip-HOP.sip`, `NNN-ENTITY-msrp-HOP.msrp`).
    pub(crate) fn set_wire_log(&mut self, dir: PathBuf) -> io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        self.wire_log = Some(dir);
        Ok(())
    }

    /// The wire log files written so far.
    pub(crate) fn wire_files(&self) -> &[PathBuf] {
        &self.wire_files
    }

    /// A fault: the first MSRP link labelled `label` is cut (both directions
    /// shut down) once `bytes` request body bytes were written on it by one
    /// side, in the middle of a frame.
    pub(crate) fn cut_after(&mut self, label: &str, bytes: usize) {
        self.cut = Some((label.to_owned(), bytes));
    }

    /// The status the simulated non-CPM system acknowledges with (200).
    pub(crate) fn set_non_cpm_status(&mut self, status: u16) {
        self.non_cpm_status = status;
    }

    /// Entity names, by index.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// The index of the entity named `name`.
    pub(crate) fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Where entity `index` accepts SIP over TCP.
    pub(crate) fn sip_addr(&self, index: usize) -> Option<SocketAddr> {
        self.sip_listeners.get(index).and_then(|l| l.local_addr().ok())
    }

    /// Where entity `index` accepts MSRP over TCP.
    pub(crate) fn msrp_addr(&self, index: usize) -> Option<SocketAddr> {
        self.msrp_listeners.get(index).and_then(|l| l.local_addr().ok())
    }

    /// The trace so far (the simulator's schema).
    pub(crate) fn trace(&self) -> &[TraceEvent] {
        self.recorder.events()
    }

    /// When each trace event was recorded.
    pub(crate) fn trace_times(&self) -> &[Instant] {
        self.recorder.times()
    }

    /// Every entity event so far: when, which entity, what.
    pub(crate) fn events(&self) -> &[(Instant, usize, Event)] {
        &self.events
    }

    /// Errors seen (usage errors, unparsable SIP, failed writes).
    pub(crate) fn errors(&self) -> &[String] {
        &self.errors
    }

    /// MSRP writes that failed because the connection had died.
    pub(crate) fn write_failures(&self) -> &[String] {
        &self.write_failures
    }

    /// MSRP bytes read so far by entity `index`.
    pub(crate) fn received(&self, index: usize) -> u64 {
        self.received.get(index).copied().unwrap_or(0)
    }

    /// MSRP writes dropped because their link was closed.
    pub(crate) const fn dropped_writes(&self) -> u64 {
        self.dropped_writes
    }

    /// Whether every entity is idle with no timer armed.
    pub(crate) fn is_quiet(&self) -> bool {
        self.pending.is_empty() && self.entities.iter().all(|e| e.is_idle() && e.poll_timeout().is_none())
    }

    /// The entities that are not idle or have a timer armed, with the time
    /// left on the timer.
    pub(crate) fn busy(&self) -> Vec<(String, bool, Option<Duration>)> {
        let t = now();
        self.entities
            .iter()
            .zip(&self.names)
            .filter(|(e, _)| !e.is_idle() || e.poll_timeout().is_some())
            .map(|(e, n)| (n.clone(), e.is_idle(), e.poll_timeout().map(|at| at.saturating_duration_since(t))))
            .collect()
    }

    /// Whether entity `index` is idle with no timer armed.
    pub(crate) fn is_idle(&self, index: usize) -> bool {
        self.entities.get(index).is_some_and(|e| e.is_idle() && e.poll_timeout().is_none())
    }

    fn log_file(&mut self, entity: usize, kind: &str, hop: &str) -> Option<File> {
        let dir = self.wire_log.as_ref()?;
        let hop: String = hop.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let path = dir.join(format!("{:03}-{}-{kind}-{hop}.{kind}", self.wire_files.len(), self.names[entity]));
        match File::create(&path) {
            Ok(file) => {
                self.wire_files.push(path);
                Some(file)
            }
            Err(error) => {
                self.errors.push(format!("wire log {}: {error}", path.display()));
                None
            }
        }
    }

    /// A SIP flow over TCP between two of our entities: `a` connects to
    /// `b`'s SIP listener (before the accept threads run).
    fn link_sip_tcp(&mut self, a: usize, b: usize, flow: FlowId, hop: &str) -> io::Result<()> {
        let addr = self.sip_listeners[b].local_addr()?;
        let stream_a = TcpStream::connect(addr)?;
        let (stream_b, _) = self.sip_listeners[b].accept()?;
        for (owner, peer, stream) in [(a, b, stream_a), (b, a, stream_b)] {
            stream.set_nodelay(true)?;
            stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
            let log = self.log_file(owner, "sip", hop);
            self.spawn_sip_reader(owner, flow, stream.try_clone()?);
            self.sip.insert(
                (owner, flow),
                SipEnd { socket: SipSocket::Tcp(stream), peer: Some(peer), hop: hop.to_owned(), log },
            );
        }
        Ok(())
    }

    /// A SIP flow over UDP between two of our entities: one socket each on
    /// 127.0.0.1, each sending to the other.
    fn link_sip_udp(&mut self, a: usize, b: usize, flow: FlowId, hop: &str) -> io::Result<()> {
        let (socket_a, socket_b) = (UdpSocket::bind("127.0.0.1:0")?, UdpSocket::bind("127.0.0.1:0")?);
        let (addr_a, addr_b) = (socket_a.local_addr()?, socket_b.local_addr()?);
        for (owner, peer, socket, to) in [(a, b, socket_a, addr_b), (b, a, socket_b, addr_a)] {
            let log = self.log_file(owner, "sip", hop);
            self.spawn_udp_reader(owner, flow, socket.try_clone()?);
            let socket = SipSocket::Udp(socket, Some(to));
            self.sip.insert((owner, flow), SipEnd { socket, peer: Some(peer), hop: hop.to_owned(), log });
        }
        Ok(())
    }

    /// Entity `index` takes SIP over UDP from outside peers on a new socket
    /// (returned): every datagram is on flow `flow`, which the entity's
    /// configuration MUST declare unreliable; replies go to the source of
    /// the last datagram.
    pub(crate) fn listen_sip_udp(&mut self, index: usize, flow: FlowId) -> io::Result<SocketAddr> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        let addr = socket.local_addr()?;
        let log = self.log_file(index, "sip", "peer-udp");
        self.spawn_udp_reader(index, flow, socket.try_clone()?);
        self.sip.insert(
            (index, flow),
            SipEnd { socket: SipSocket::Udp(socket, None), peer: None, hop: "peer".to_owned(), log },
        );
        Ok(addr)
    }

    fn spawn_udp_reader(&mut self, entity: usize, flow: FlowId, socket: UdpSocket) {
        let (tx, stop) = (self.tx.clone(), Arc::clone(&self.stop));
        // A timeout, so that the thread sees the stop flag.
        let _ = socket.set_read_timeout(Some(Duration::from_millis(100)));
        self.threads.push(thread::spawn(move || {
            let mut buf = vec![0u8; 65_535];
            while !stop.load(Ordering::SeqCst) {
                match socket.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        let bytes = Bytes::copy_from_slice(&buf[..n]);
                        if tx.send(Ev::SipDatagram { entity, flow, bytes, from }).is_err() {
                            return;
                        }
                    }
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                    Err(_) => {}
                }
            }
        }));
    }

    /// Flow `flow` of entity `index` goes to an outside SIP peer at `addr`
    /// over TCP (named `hop` in the trace).
    pub(crate) fn connect_sip(&mut self, index: usize, flow: FlowId, addr: SocketAddr, hop: &str) -> io::Result<()> {
        let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let log = self.log_file(index, "sip", hop);
        self.spawn_sip_reader(index, flow, stream.try_clone()?);
        self.sip.insert((index, flow), SipEnd { socket: SipSocket::Tcp(stream), peer: None, hop: hop.to_owned(), log });
        Ok(())
    }

    fn spawn_sip_reader(&mut self, entity: usize, flow: FlowId, stream: TcpStream) {
        let handle = sip_reader(self.tx.clone(), entity, flow, stream);
        self.threads.push(handle);
    }

    fn spawn_msrp_reader(&mut self, conn: ConnId, stream: TcpStream) {
        let handle = msrp_reader(self.tx.clone(), conn, stream, self.read_size);
        self.threads.push(handle);
    }

    fn start(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        for index in 0..self.entities.len() {
            for sip in [true, false] {
                let listener = if sip { &self.sip_listeners[index] } else { &self.msrp_listeners[index] };
                let Ok(listener) = listener.try_clone() else { continue };
                let (tx, stop) = (self.tx.clone(), Arc::clone(&self.stop));
                let ids = Arc::clone(if sip { &self.next_flow } else { &self.next_conn });
                let read_size = self.read_size;
                self.threads.push(thread::spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let Ok(stream) = stream else { continue };
                        let Ok(clone) = stream.try_clone() else { continue };
                        let id = ids.fetch_add(1, Ordering::SeqCst);
                        // The reader starts here, not on the engine thread: the
                        // engine may be busy writing to this very connection.
                        // Its events queue behind the accept event below.
                        let (gate_tx, gate_rx) = channel::<()>();
                        let ev = if sip {
                            let flow = FlowId::new(id);
                            let reader = sip_reader_after(tx.clone(), gate_rx, index, flow, clone);
                            Ev::SipAccepted { entity: index, flow, stream, reader }
                        } else {
                            let conn = ConnId::new(id);
                            let reader = msrp_reader_after(tx.clone(), gate_rx, conn, clone, read_size);
                            Ev::MsrpAccepted { entity: index, conn, stream, reader }
                        };
                        if tx.send(ev).is_err() {
                            return;
                        }
                        let _ = gate_tx.send(());
                    }
                }));
            }
        }
    }

    /// Runs until `done` says so (checked after each batch of inputs), or
    /// fails after `limit`. `tick` is called about every 50 ms and at the end
    /// (progress display).
    ///
    /// # Errors
    /// A message when `limit` passed first.
    pub(crate) fn run(
        &mut self,
        limit: Duration,
        done: &mut dyn FnMut(&Self) -> bool,
        tick: &mut dyn FnMut(&Self),
    ) -> Result<(), String> {
        self.start();
        let start = now();
        let deadline = start + limit;
        let mut last_tick = start;
        loop {
            let t = now();
            while let Some((index, input)) = self.pending.pop_front() {
                self.deliver(t, index, input);
            }
            for index in 0..self.entities.len() {
                if self.entities[index].poll_timeout().is_some_and(|at| at <= t) {
                    self.deliver(t, index, Input::Timeout);
                }
            }
            if !self.pending.is_empty() {
                continue;
            }
            if done(self) {
                tick(self);
                return Ok(());
            }
            if t >= deadline {
                tick(self);
                return Err(format!("timed out after {limit:?}"));
            }
            if t.duration_since(last_tick) >= Duration::from_millis(50) {
                tick(self);
                last_tick = t;
            }
            let next_timer = self.entities.iter().filter_map(|e| e.poll_timeout()).min();
            let wake = next_timer.unwrap_or(deadline).min(deadline).min(t + Duration::from_millis(50));
            match self.rx.recv_timeout(wake.saturating_duration_since(t)) {
                Ok(ev) => {
                    self.event(ev);
                    self.flush_pending();
                    // A batch, so that timers and `done` are not checked per read.
                    for _ in 0..64 {
                        match self.rx.try_recv() {
                            Ok(ev) => {
                                self.event(ev);
                                // Connected / ConnectFailed / NonCpmAck first:
                                // a connect completes before the next read.
                                self.flush_pending();
                            }
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err("event channel closed".to_owned()),
            }
        }
    }

    fn flush_pending(&mut self) {
        while let Some((index, input)) = self.pending.pop_front() {
            let t = now();
            self.deliver(t, index, input);
        }
    }

    /// Runs until the scenario is over ([`Driver::is_settled`] with 200 ms
    /// of quiet).
    ///
    /// # Errors
    /// See [`Driver::run`].
    pub(crate) fn run_to_end(&mut self, limit: Duration, tick: &mut dyn FnMut(&Self)) -> Result<(), String> {
        self.run(limit, &mut |d: &Self| d.is_settled(Duration::from_millis(200)), tick)
    }

    /// Whether the work is over though timers may still run: no MSRP link
    /// open, nothing on any socket nor from any entity for `quiet`, and
    /// every entity idle or with its next timer more than 5 s away. (RFC 6026
    /// keeps every INVITE transaction 64*T1 = 32 s after its 2xx, on every
    /// transport: [`Driver::is_quiet`] is true only after that.)
    pub(crate) fn is_settled(&self, quiet: Duration) -> bool {
        let t = now();
        self.pending.is_empty()
            && self.links.values().all(|l| l.closed)
            && self.last_activity.is_some_and(|at| t.duration_since(at) >= quiet)
            && self.entities.iter().all(|e| {
                e.is_idle()
                    || e.poll_timeout().map_or(true, |at| at.saturating_duration_since(t) > Duration::from_secs(5))
            })
    }

    fn event(&mut self, ev: Ev) {
        let t = now();
        self.last_activity = Some(t);
        match ev {
            Ev::Sip { entity, flow, message } => self.deliver(t, entity, Input::SipReceived { flow, message }),
            Ev::SipDatagram { entity, flow, bytes, from } => {
                if let Some(SipEnd { socket: SipSocket::Udp(_, to), peer: None, .. }) =
                    self.sip.get_mut(&(entity, flow))
                {
                    *to = Some(from);
                }
                self.deliver(t, entity, Input::SipDatagram { flow, bytes });
            }
            Ev::SipError { entity, flow, error } => {
                self.errors.push(format!("{} flow {flow}: {error}", self.names[entity]));
            }
            Ev::SipAccepted { entity, flow, stream, reader } => {
                self.threads.push(reader);
                let _ = stream.set_nodelay(true);
                let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
                let log = self.log_file(entity, "sip", "peer");
                let socket = SipSocket::Tcp(stream);
                self.sip.insert((entity, flow), SipEnd { socket, peer: None, hop: "peer".to_owned(), log });
            }
            Ev::MsrpAccepted { entity, conn, stream, reader } => {
                self.threads.push(reader);
                let _ = stream.set_nodelay(true);
                let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
                let opener = stream.peer_addr().ok().and_then(|a| self.opened.get(&a).copied());
                let (peer, label) = match opener {
                    Some((index, opener_conn)) => {
                        let label = self.links.get(&opener_conn).map_or_else(String::new, |l| l.label.clone());
                        if let Some(link) = self.links.get_mut(&opener_conn) {
                            link.peer = Some(entity);
                        }
                        (Some((index, opener_conn)), label)
                    }
                    None => (None, "peer".to_owned()),
                };
                let opener_conn = peer.map(|(_, c)| c);
                let peer = peer.map(|(index, _)| index);
                let log = self.log_file(entity, "msrp", &label);
                self.links.insert(conn, Link { opener_conn, ..Link::new(entity, stream, label, peer, log) });
                self.deliver(t, entity, Input::Accepted { conn });
            }
            Ev::Msrp { conn, data } => {
                let Some(link) = self.links.get(&conn) else { return };
                if link.closed {
                    return;
                }
                let owner = link.owner;
                self.received[owner] += data.len() as u64;
                self.deliver(t, owner, Input::MsrpReceived { conn, data });
            }
            Ev::MsrpClosed { conn } => {
                let Some(link) = self.links.get(&conn) else { return };
                if link.closed {
                    return;
                }
                let owner = link.owner;
                self.links.remove(&conn);
                self.deliver(t, owner, Input::MsrpClosed { conn });
            }
        }
    }

    fn deliver(&mut self, t: Instant, index: usize, input: Input) {
        if let Input::Command(Command::SendMessage { body, .. }) = &input {
            let name = self.names[index].clone();
            self.recorder.submit(t, &name, body);
        }
        if let Err(error) = self.entities[index].handle(t, input) {
            self.errors.push(format!("{}: {error}", self.names[index]));
        }
        while let Some(output) = self.entities[index].poll_output() {
            self.output(t, index, output);
        }
    }

    fn output(&mut self, t: Instant, index: usize, output: Output) {
        self.last_activity = Some(t);
        let from = self.names[index].clone();
        match output {
            Output::SipTransmit { flow, bytes } => {
                let Some(end) = self.sip.get_mut(&(index, flow)) else {
                    self.errors.push(format!("{from}: no SIP flow {flow}"));
                    return;
                };
                let to = end.peer.map_or_else(|| "peer".to_owned(), |p| self.names[p].clone());
                let hop = end.hop.clone();
                let written = match &mut end.socket {
                    SipSocket::Tcp(stream) => write_parts(stream, end.log.as_mut(), &[&bytes]),
                    SipSocket::Udp(socket, Some(to)) => {
                        if let Some(log) = end.log.as_mut() {
                            let _ = log.write_all(&bytes);
                        }
                        socket.send_to(&bytes, *to).map(|_| ())
                    }
                    SipSocket::Udp(_, None) => Err(io::Error::new(io::ErrorKind::NotConnected, "no datagram peer yet")),
                };
                if let Err(error) = written {
                    self.errors.push(format!("{from}: SIP write on {hop}: {error}"));
                }
                if let Err(error) = self.recorder.sip(t, index, [&from, &to, &hop], &bytes) {
                    self.errors.push(format!("{from}: unparsable SIP: {error}"));
                }
            }
            Output::Connect { hop, label, params, trigger } => {
                let host = params.key.host().to_owned();
                let (peer, addr) = match self.hosts.get(&host) {
                    Some(&peer) => (Some(peer), self.msrp_addr(peer)),
                    None => (None, params.key.to_string().parse::<SocketAddr>().ok()),
                };
                let stream = addr.and_then(|addr| TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).ok());
                let Some(stream) = stream else {
                    self.pending.push_back((index, Input::ConnectFailed { hop }));
                    return;
                };
                let conn = ConnId::new(self.next_conn.fetch_add(1, Ordering::SeqCst));
                let _ = stream.set_nodelay(true);
                let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
                if let Ok(local) = stream.local_addr() {
                    self.opened.insert(local, (index, conn));
                }
                let Ok(reader) = stream.try_clone() else {
                    self.pending.push_back((index, Input::ConnectFailed { hop }));
                    return;
                };
                let to = peer.map_or_else(|| host.clone(), |p| self.names[p].clone());
                self.recorder.connect(t, &from, &to, &label, trigger, false);
                let log = self.log_file(index, "msrp", &label);
                self.links.insert(
                    conn,
                    Link {
                        hops: vec![(label.clone(), params.path.first().map(ToString::to_string).unwrap_or_default())],
                        key: Some(params.key.clone()),
                        ..Link::new(index, stream, label, peer, log)
                    },
                );
                self.spawn_msrp_reader(conn, reader);
                self.pending.push_back((index, Input::Connected { hop, conn }));
            }
            Output::MsrpTransmit { conn, transmit } => {
                // Writes here block until the kernel took them: the entity's
                // window opens by as much at once (lost bytes too).
                self.pending.push_back((index, Input::MsrpWritten { conn, bytes: transmit.len() }));
                let Some(link) = self.links.get_mut(&conn) else {
                    self.dropped_writes += 1;
                    return;
                };
                if link.closed {
                    self.dropped_writes += 1;
                    return;
                }
                let to = link.peer.map_or_else(|| "peer".to_owned(), |p| self.names[p].clone());
                let (label, opener) = (link.label.clone(), link.opener_conn.unwrap_or(conn));
                // On a link several hops share (reuse), the frame's own hop.
                let hop = match self.links.get(&opener) {
                    Some(l) if l.hops.len() > 1 => {
                        cpm_roles::sim::shared_link_hop(&l.hops, &transmit.head).unwrap_or(&label).to_owned()
                    }
                    _ => label,
                };
                let Some(link) = self.links.get_mut(&conn) else { return };
                self.recorder.msrp(t, index, conn, [&from, &to, &hop], &transmit);
                let mut body = transmit.body.clone();
                let mut cut = false;
                if let Some((label, after)) = &self.cut {
                    if *label == link.label && link.body_written + body.len() > *after {
                        body.truncate(after.saturating_sub(link.body_written));
                        cut = true;
                    }
                }
                link.body_written += body.len();
                let parts: Vec<&[u8]> =
                    if cut { vec![&transmit.head, &body] } else { vec![&transmit.head, &body, &transmit.end_line] };
                if link.broken {
                    self.dropped_writes += 1;
                } else if let Err(error) = write_parts(&mut link.stream, link.log.as_mut(), &parts) {
                    // The connection died (reset or cut): its reader tells
                    // the owner; later writes are dropped.
                    link.broken = true;
                    self.write_failures.push(format!("{from}: MSRP write on {hop}: {error}"));
                }
                if cut {
                    self.cut = None;
                    // Both sides see the connection die; the owner hears it
                    // from its own reader (the link is not marked closed).
                    let _ = link.stream.shutdown(Shutdown::Both);
                }
            }
            Output::CloseLink { conn } => {
                let Some(link) = self.links.get_mut(&conn) else { return };
                link.closed = true;
                let _ = link.stream.shutdown(Shutdown::Both);
                // The last hop on the link closes it.
                let hop = link.hops.first().map_or_else(|| link.label.clone(), |(label, _)| label.clone());
                self.recorder.close(t, &hop);
            }
            Output::Event { event, .. } => {
                match &event {
                    Event::MessageDelivered { body, .. } => self.recorder.deliver(t, &from, body),
                    // The entity reused one of its links (RFC 4975 s.5.4): no socket to open.
                    Event::LinkReused { hop, trigger, params, .. } => {
                        let uri = params.path.first().map(ToString::to_string).unwrap_or_default();
                        let reused =
                            self.links.values_mut().find(|l| l.owner == index && l.key == Some(params.key.clone()));
                        if let Some(link) = reused {
                            link.hops.push((hop.clone(), uri));
                        }
                        let host = params.key.host();
                        let to = self.hosts.get(host).map_or_else(|| host.to_owned(), |&p| self.names[p].clone());
                        self.recorder.connect(t, &from, &to, hop, *trigger, true);
                    }
                    Event::LinkReleased { hop, conn } => {
                        if let Some(link) = self.links.get_mut(conn) {
                            link.hops.retain(|(label, _)| label != hop);
                        }
                        self.recorder.close(t, hop);
                    }
                    Event::DeliverToNonCpm { delivery, format, parts, .. } => {
                        self.recorder.non_cpm(t, &from, format, parts.len());
                        // The non-CPM system acknowledges at once.
                        self.pending
                            .push_back((index, Input::NonCpmAck { delivery: *delivery, status: self.non_cpm_status }));
                    }
                    _ => {}
                }
                self.events.push((t, index, event));
            }
            // This test driver reads every socket as fast as it can (its
            // reader threads feed an unbounded channel); pacing reads is the
            // production runtime's (cpm-node).
            Output::PauseReading { .. } | Output::ResumeReading { .. } => {}
            other => self.errors.push(format!("{from}: unhandled output {other:?}")),
        }
    }

    /// Closes every socket and joins every thread.
    pub(crate) fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for end in self.sip.values() {
            if let SipSocket::Tcp(stream) = &end.socket {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        for link in self.links.values() {
            let _ = link.stream.shutdown(Shutdown::Both);
        }
        if self.started {
            // Wake each accept thread so it sees the stop flag.
            for listener in self.sip_listeners.iter().chain(&self.msrp_listeners) {
                if let Ok(addr) = listener.local_addr() {
                    let _ = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT);
                }
            }
        }
        self.sip.clear();
        self.links.clear();
        // Drain what the readers still send, so that none blocks.
        while self.rx.try_recv().is_ok() {}
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
        while self.rx.try_recv().is_ok() {}
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A SIP reader: frames the stream by Content-Length and sends whole messages.
fn sip_reader(tx: Sender<Ev>, entity: usize, flow: FlowId, stream: TcpStream) -> JoinHandle<()> {
    let (gate_tx, gate_rx) = channel();
    let _ = gate_tx.send(());
    sip_reader_after(tx, gate_rx, entity, flow, stream)
}

/// [`sip_reader`], reading once `gate` says so (or is dropped).
fn sip_reader_after(
    tx: Sender<Ev>,
    gate: Receiver<()>,
    entity: usize,
    flow: FlowId,
    mut stream: TcpStream,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let _ = gate.recv();
        let mut framer = Framer::new(Limits::default());
        let mut buf = vec![0u8; READ_SIZE];
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            framer.handle_segment(Bytes::copy_from_slice(&buf[..n]));
            while let Some(event) = framer.poll_event() {
                let ev = match event {
                    Ok(FramerEvent::Message(message)) => Ev::Sip { entity, flow, message },
                    Ok(FramerEvent::Rejected { error, .. }) => {
                        Ev::SipError { entity, flow, error: format!("rejected SIP message: {error}") }
                    }
                    Err(error) => Ev::SipError { entity, flow, error: format!("SIP framing lost: {error}") },
                };
                if tx.send(ev).is_err() {
                    return;
                }
            }
        }
    })
}

/// An MSRP reader: sends what it reads, then the close.
fn msrp_reader(tx: Sender<Ev>, conn: ConnId, stream: TcpStream, read_size: usize) -> JoinHandle<()> {
    let (gate_tx, gate_rx) = channel();
    let _ = gate_tx.send(());
    msrp_reader_after(tx, gate_rx, conn, stream, read_size)
}

/// [`msrp_reader`], reading once `gate` says so (or is dropped): its first
/// event then queues behind the accept event.
fn msrp_reader_after(
    tx: Sender<Ev>,
    gate: Receiver<()>,
    conn: ConnId,
    mut stream: TcpStream,
    read_size: usize,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let _ = gate.recv();
        loop {
            let mut buf = BytesMut::zeroed(read_size);
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(Ev::MsrpClosed { conn });
                    return;
                }
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Ev::Msrp { conn, data: buf.freeze() }).is_err() {
                        return;
                    }
                }
            }
        }
    })
}

/// Writes `parts` in order with vectored writes until all is written (and
/// copies them to `log`).
fn write_parts(stream: &mut TcpStream, log: Option<&mut File>, parts: &[&[u8]]) -> io::Result<()> {
    if let Some(log) = log {
        for part in parts {
            log.write_all(part)?;
        }
    }
    let mut slices: Vec<IoSlice<'_>> = parts.iter().filter(|p| !p.is_empty()).map(|p| IoSlice::new(p)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        match stream.write_vectored(slices) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "connection closed")),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Which SIP flows of a trace were retransmitted (a loopback TCP run has none).
pub(crate) fn retransmissions(trace: &[TraceEvent]) -> usize {
    trace.iter().filter(|e| matches!(e, TraceEvent::Sip { retransmission: true, .. })).count()
}

/// The names of the entities that delivered a message, with its length and CRC-32.
pub(crate) fn deliveries(trace: &[TraceEvent]) -> HashMap<String, (usize, u32)> {
    let mut out = HashMap::new();
    for event in trace {
        if let TraceEvent::Deliver { at, bytes, crc32 } = event {
            out.insert(at.clone(), (*bytes, *crc32));
        }
    }
    out
}

/// `n` pseudo-random bytes from `seed` (xorshift64*, as `SimulationIds`).
pub(crate) fn random_bytes(seed: u64, n: usize) -> Bytes {
    let mut ids = cpm_roles::SimulationIds::new(seed);
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        out.extend_from_slice(&ids.next_u64().to_le_bytes());
    }
    out.truncate(n);
    Bytes::from(out)
}
