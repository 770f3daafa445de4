//! A runtime's SIP flows: streams framed by Content-Length (RFC 3261
//! s.18.3), datagrams, a served node's peers (each stream, and each
//! datagram source, a flow; bounded) and its configured next hops.

use super::*;

/// SIP messages waiting for a stream's writer.
pub(super) const SIP_QUEUE: usize = 256;

/// The first flow number a served node gives its peers (below it: the
/// configured routes).
pub(super) const PEER_FLOWS: u64 = 1 << 32;

/// One end of a SIP flow.
pub(super) enum SipFlow {
    /// The writer task's queue (messages are written whole, in order).
    Stream(mpsc::Sender<Bytes>),
    /// A configured next hop not reached yet: a stream is opened on the
    /// first message, a datagram goes from the first listening socket.
    Route(ListenAddr),
    /// A datagram socket and the peer's address (RFC 3261 s.18.1.1: a lost
    /// datagram is retransmitted by the transaction, so a full socket
    /// buffer drops it).
    Datagram(Arc<UdpSocket>, SocketAddr),
}

/// Two connected TCP ends of flow `flow`, with their readers and writers.
pub(super) async fn tcp_pair(
    tasks: &mut JoinSet<()>,
    queues: [&mpsc::Sender<Ev>; 2],
    flow: FlowId,
) -> io::Result<(SipFlow, SipFlow)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let (a, b) = tokio::join!(TcpStream::connect(listener.local_addr()?), listener.accept());
    let (a, (b, _)) = (a?, b?);
    let mut ends = Vec::new();
    for (stream, queue) in [a, b].into_iter().zip(queues) {
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        tasks.spawn(read_sip(read, flow, queue.clone(), None));
        let (tx, rx) = mpsc::channel::<Bytes>(SIP_QUEUE);
        tasks.spawn(write_sip(write, rx));
        ends.push(SipFlow::Stream(tx));
    }
    let b = ends.pop().ok_or_else(|| io::Error::other("no end"))?;
    let a = ends.pop().ok_or_else(|| io::Error::other("no end"))?;
    Ok((a, b))
}

/// Reads SIP messages from a stream (RFC 3261 s.18.3: framed by
/// Content-Length) for flow `flow`.
/// A stream silent for `idle` ends (its flow is freed).
pub(super) async fn read_sip<R: AsyncRead + Unpin>(
    read: R,
    flow: FlowId,
    queue: mpsc::Sender<Ev>,
    idle: Option<Duration>,
) {
    read_sip_messages(read, flow, &queue, idle).await;
    let _ = queue.send(Ev::SipClosed { flow }).await;
}

pub(super) async fn read_sip_messages<R: AsyncRead + Unpin>(
    mut read: R,
    flow: FlowId,
    queue: &mpsc::Sender<Ev>,
    idle: Option<Duration>,
) {
    let mut framer = Framer::new(Limits::default());
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    loop {
        buf.reserve(READ_SIZE);
        let read = match idle {
            Some(idle) => tokio::time::timeout(idle, read.read_buf(&mut buf)).await.unwrap_or(Ok(0)),
            None => read.read_buf(&mut buf).await,
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => framer.handle_segment(buf.split().freeze()),
        }
        while let Some(event) = framer.poll_event() {
            match event {
                Ok(FramerEvent::Message(message)) => {
                    if queue.send(Ev::Sip { flow, message }).await.is_err() {
                        return;
                    }
                }
                // A message that breaks the limits is dropped: nothing in it
                // can be trusted to answer (its transaction times out).
                Ok(FramerEvent::Rejected { error, .. }) => tracing::warn!(%flow, %error, "SIP message rejected"),
                // RFC 3261 s.18.3: with the framing lost, nothing more on the
                // stream can be read: it is closed.
                Err(error) => {
                    tracing::warn!(%flow, %error, "SIP stream framing lost: closed");
                    return;
                }
            }
        }
    }
}

/// Writes a stream flow's messages whole, in order.
pub(super) async fn write_sip<W: AsyncWrite + Unpin>(mut write: W, mut messages: mpsc::Receiver<Bytes>) {
    while let Some(bytes) = messages.recv().await {
        // A peer that does not read gets nothing more after the deadline.
        let written = tokio::time::timeout(WRITE_TIMEOUT, async {
            write.write_all(&bytes).await?;
            // A TLS stream's last records go out now (a no-op over TCP).
            if messages.is_empty() {
                write.flush().await?;
            }
            Ok::<(), io::Error>(())
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            return;
        }
    }
    let _ = write.shutdown().await;
}

/// Two UDP ends of flow `flow`, each sending to the other.
pub(super) async fn udp_pair(
    tasks: &mut JoinSet<()>,
    queues: [&mpsc::Sender<Ev>; 2],
    flow: FlowId,
) -> io::Result<(SipFlow, SipFlow)> {
    let a = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
    let b = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
    let (addr_a, addr_b) = (a.local_addr()?, b.local_addr()?);
    for (socket, queue) in [Arc::clone(&a), Arc::clone(&b)].into_iter().zip(queues) {
        let queue = queue.clone();
        tasks.spawn(async move {
            let mut buf = vec![0u8; 65_535];
            loop {
                let Ok((n, _)) = socket.recv_from(&mut buf).await else { return };
                let bytes = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                if queue.send(Ev::Input(Input::SipDatagram { flow, bytes })).await.is_err() {
                    return;
                }
            }
        });
    }
    Ok((SipFlow::Datagram(a, addr_b), SipFlow::Datagram(b, addr_a)))
}

impl Machine {
    /// The flow of datagrams from `from` on listening socket `socket`: the
    /// same for every datagram of that peer; `None` (dropped) past the
    /// flow bound.
    pub(super) fn datagram_flow(&mut self, socket: usize, from: SocketAddr) -> Option<FlowId> {
        if let Some(&flow) = self.by_addr.get(&from) {
            self.next_flow += 1;
            self.flow_used.insert(flow, self.next_flow);
            return Some(flow);
        }
        let socket = self.udp.get(socket)?.clone();
        let flow = self.new_peer_flow()?;
        self.by_addr.insert(from, flow);
        self.sip.insert(flow, SipFlow::Datagram(socket, from));
        Some(flow)
    }

    /// A flow number for a new peer. At the bound, the datagram peer heard
    /// from least recently is forgotten (a flood of new source addresses
    /// cannot lock the node out); `None` when every flow is a stream.
    pub(super) fn new_peer_flow(&mut self) -> Option<FlowId> {
        if self.sip.len() >= self.max_flows {
            let oldest = self
                .flow_used
                .iter()
                .filter(|(flow, _)| {
                    flow.get() >= PEER_FLOWS && matches!(self.sip.get(flow), Some(SipFlow::Datagram(..)))
                })
                .min_by_key(|(_, at)| **at)
                .map(|(flow, _)| *flow);
            let Some(oldest) = oldest else {
                tracing::warn!(entity = self.entity.name(), flows = self.sip.len(), "SIP flow bound reached: dropped");
                return None;
            };
            self.sip.remove(&oldest);
            self.flow_used.remove(&oldest);
            self.by_addr.retain(|_, flow| *flow != oldest);
        }
        let flow = FlowId::new(PEER_FLOWS + self.next_flow);
        self.next_flow += 1;
        self.flow_used.insert(flow, self.next_flow);
        Some(flow)
    }

    /// A peer opened a SIP stream: its own flow, read and written by tasks.
    pub(super) fn accept_sip(&mut self, conn: Conn) {
        let Some(flow) = self.new_peer_flow() else { return };
        let (read, write) = conn.into_split();
        tokio::spawn(read_sip(read, flow, self.queue.clone(), self.options.sip_idle_timeout));
        let (tx, rx) = mpsc::channel(SIP_QUEUE);
        tokio::spawn(write_sip(write, rx));
        self.sip.insert(flow, SipFlow::Stream(tx));
    }

    /// The first message on a configured next hop: a datagram from the first
    /// listening socket, or a stream opened for it (the message waits in
    /// the writer's queue until it is up).
    pub(super) fn open_route(&mut self, flow: FlowId, address: ListenAddr, first: Bytes) {
        if address.transport == transport::Transport::Udp {
            let Some(socket) = self.udp.first().cloned() else {
                tracing::warn!(entity = self.entity.name(), %address, "no datagram socket for the route");
                return;
            };
            let _ = socket.try_send_to(&first, address.addr);
            self.by_addr.insert(address.addr, flow);
            self.sip.insert(flow, SipFlow::Datagram(socket, address.addr));
            return;
        }
        let (tx, rx) = mpsc::channel(SIP_QUEUE);
        let _ = tx.try_send(first);
        self.sip.insert(flow, SipFlow::Stream(tx));
        let (queue, options) = (self.queue.clone(), self.options.clone());
        tokio::spawn(async move {
            let host = address.addr.ip().to_string();
            let mode =
                if address.transport == transport::Transport::Tls { options.tls.clone() } else { TlsMode::Plain };
            match transport::connect(address.addr, &host, &mode, options.connect_timeout).await {
                Ok(conn) => {
                    let (read, write) = conn.into_split();
                    tokio::spawn(read_sip(read, flow, queue, None));
                    write_sip(write, rx).await;
                }
                Err(error) => {
                    tracing::warn!(%flow, %error, "SIP route connect failed");
                    let _ = queue.send(Ev::SipRouteFailed { flow, address }).await;
                }
            }
        });
    }
}
