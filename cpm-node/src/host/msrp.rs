//! A runtime's MSRP connections: a reader that reads while the machine
//! lets it, and a writer that writes each frame with one vectored write,
//! acknowledges it, and gives up on a peer that stops reading.

use bytes::BufMut;

use super::*;

/// One MSRP connection as the machine sees it.
pub(super) struct Link {
    /// The writer task's queue: frames, in order.
    pub(super) writer: mpsc::UnboundedSender<Transmit>,
    /// Whether the reader may read.
    pub(super) reading: watch::Sender<bool>,
    pub(super) reader: tokio::task::AbortHandle,
    /// The entity asked to stop reading it.
    pub(super) paused: bool,
}

impl Machine {
    /// Starts the reader and writer of a new connection and names it.
    pub(super) fn open(&mut self, conn: Conn, hop: Option<HopId>) -> ConnId {
        let id = ConnId::new(self.next_conn.fetch_add(1, Ordering::Relaxed));
        let (local, peer) = (conn.local_addr(), conn.peer_addr());
        self.report(now(), HostEvent::LinkUp { conn: id, hop, local, peer });
        let (reader, writer) = conn.into_split();
        let (reading, allowed) = watch::channel(!self.held);
        let budget = Arc::new(Semaphore::new(READ_BUDGET));
        let reader = tokio::spawn(read_msrp(reader, id, allowed, budget, self.queue.clone())).abort_handle();
        let (frames, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_msrp(writer, id, rx, self.queue.clone()));
        self.conns.insert(id, Link { writer: frames, reading, reader, paused: false });
        id
    }

    /// `input` as the cuts let it through ([`Host::cut_after`](super::Host::cut_after)):
    /// a connection's bytes up to its count (the read that reaches it is
    /// handed over cut short, then the connection is cut and the entity
    /// gets its close); nothing of a connection once cut.
    pub(super) fn count_cut(&mut self, input: Input) -> Option<Input> {
        let conn = match &input {
            Input::MsrpReceived { conn, .. } | Input::MsrpWritten { conn, .. } | Input::MsrpClosed { conn } => *conn,
            _ => return Some(input),
        };
        let Some(&left) = self.cuts.get(&conn) else { return Some(input) };
        if left == 0 {
            // The reader's own close of a cut connection is its last word.
            if matches!(input, Input::MsrpClosed { .. }) {
                self.cuts.remove(&conn);
            }
            return None;
        }
        let Input::MsrpReceived { conn, mut data } = input else { return Some(input) };
        if data.len() < left {
            self.cuts.insert(conn, left - data.len());
            return Some(Input::MsrpReceived { conn, data });
        }
        data.truncate(left);
        self.cuts.insert(conn, 0);
        self.feed(Input::MsrpReceived { conn, data });
        self.cut(conn);
        Some(Input::MsrpClosed { conn })
    }

    /// Lets go of `conn` at once: its reader stops, its writer ends after
    /// what it was handed, and the socket closes on whatever was not read
    /// (the peer sees a reset, or the end of the stream).
    pub(super) fn cut(&mut self, conn: ConnId) {
        if let Some(link) = self.conns.remove(&conn) {
            link.reader.abort();
        }
    }
}

/// Reads an MSRP connection while allowed, then tells its close.
pub(super) async fn read_msrp(
    mut reader: ConnReader,
    conn: ConnId,
    mut reading: watch::Receiver<bool>,
    budget: Arc<Semaphore>,
    queue: mpsc::Sender<Ev>,
) {
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    loop {
        if reading.wait_for(|read| *read).await.is_err() {
            return;
        }
        buf.reserve(READ_SIZE);
        // A read never exceeds what is left of the budget.
        let Ok(mut credit) = Arc::clone(&budget).acquire_many_owned(READ_SIZE as u32).await else { return };
        let data = match reader.read_buf(&mut (&mut buf).limit(READ_SIZE)).await {
            Ok(0) | Err(_) => break,
            Ok(_) => buf.split().freeze(),
        };
        // What the read did not use goes back at once.
        let unused = credit.num_permits().saturating_sub(data.len());
        drop(credit.split(unused));
        if queue.send(Ev::MsrpRead { conn, data, budget: credit }).await.is_err() {
            return;
        }
    }
    let _ = queue.send(Ev::Input(Input::MsrpClosed { conn })).await;
}

/// Writes an MSRP connection's frames as they come, acknowledging each; when
/// the machine lets go of the connection, closes it.
pub(super) async fn write_msrp(
    mut writer: ConnWriter,
    conn: ConnId,
    mut frames: mpsc::UnboundedReceiver<Transmit>,
    queue: mpsc::Sender<Ev>,
) {
    while let Some(transmit) = frames.recv().await {
        let bytes = transmit.len();
        let parts = [transmit.head, transmit.body, transmit.end_line];
        let written = tokio::time::timeout(WRITE_TIMEOUT, async {
            writer.write_all_parts(&parts).await?;
            // TLS keeps records it could not send yet: they go out when
            // nothing more is queued behind them (a no-op over TCP).
            if frames.is_empty() {
                writer.flush().await?;
            }
            Ok::<(), io::Error>(())
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            // The connection is dead, or its peer stopped reading: the
            // machine learns it is closed (its reader may be paused).
            let _ = queue.send(Ev::Input(Input::MsrpClosed { conn })).await;
            return;
        }
        if queue.send(Ev::Input(Input::MsrpWritten { conn, bytes })).await.is_err() {
            return;
        }
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, writer.shutdown()).await;
}
