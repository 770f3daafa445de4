//! SMS: the IWF's SMPP v3.4 session with its SMSC, as an ESME transmitter.
//!
//! One task owns the TCP connection: it binds (`bind_transmitter`, SMPP
//! v3.4 s.4.1.1), keeps the bind alive with `enquire_link` (s.4.11) when
//! nothing else went for a while, answers the SMSC's own `enquire_link`
//! and `unbind`, submits each message's `submit_sm` PDUs under its own
//! sequence numbers (s.3.2: the ESME numbers its requests), and binds again
//! after the connection is lost. PDUs are read and written with `rusmpp`'s
//! codec; the conversion's `submit_sm` PDUs are decoded with it before they
//! go (a PDU it cannot read never reaches the SMSC).
//!
//! Each message's REPORT status folds its segments' `submit_sm_resp`
//! statuses (`smpp_status`, `combine_statuses`); a segment not answered
//! within the deadline, or lost with the connection, is 408.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cpm_roles::interworking::{combine_statuses, smpp_status};
use rusmpp::pdus::BindTransmitter;
use rusmpp::tokio_codec::CommandCodec;
use rusmpp::types::COctetString;
use rusmpp::values::InterfaceVersion;
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::codec::{Decoder, Encoder};

/// The REPORT status of a segment the SMSC did not answer (RFC 4975
/// s.10.4: 408, the sender may try again).
const UNANSWERED: u16 = 408;
/// A submission whose PDUs the SMPP codec cannot read: the IWF's own
/// fault, never the SMSC's (RFC 4975 s.10.3: 403, do not try again).
const UNREADABLE: u16 = 403;
/// How long the bind may go without traffic before an `enquire_link`.
const KEEPALIVE: Duration = Duration::from_secs(30);
/// The longest wait between two binds after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Messages waiting for the session task.
const QUEUE: usize = 64;

/// Who the IWF binds as (SMPP v3.4 s.4.1.1).
#[derive(Clone, Debug)]
pub struct Bind {
    /// `system_id` (at most 15 characters).
    pub system_id: String,
    /// `password` (at most 8 characters).
    pub password: String,
}

/// One message: its `submit_sm` PDUs, and who waits for its status.
struct Submission {
    pdus: Vec<Bytes>,
    reply: oneshot::Sender<u16>,
}

/// The IWF's SMPP session: submits messages, each answered with its
/// REPORT status.
#[derive(Clone, Debug)]
pub struct SmppClient {
    queue: mpsc::Sender<Submission>,
}

impl SmppClient {
    /// Starts the session task toward the SMSC at `target` (`host:port`);
    /// every connect, bind and answer waits at most `deadline`.
    #[must_use]
    pub fn start(target: String, bind: Bind, deadline: Duration) -> Self {
        let (queue, submissions) = mpsc::channel(QUEUE);
        tokio::spawn(session(target, bind, deadline, submissions));
        Self { queue }
    }

    /// Submits one message's `submit_sm` PDUs; its REPORT status.
    pub async fn submit(&self, pdus: Vec<Bytes>) -> u16 {
        let (reply, status) = oneshot::channel();
        if self.queue.send(Submission { pdus, reply }).await.is_err() {
            return UNANSWERED;
        }
        status.await.unwrap_or(UNANSWERED)
    }
}

/// A `c-octet string` field from `text`, or the empty one.
fn field<const MIN: usize, const MAX: usize>(text: &str) -> COctetString<MIN, MAX> {
    text.parse().unwrap_or_default()
}

/// The session: binds, serves, and binds again after a loss, until every
/// [`SmppClient`] is gone.
async fn session(target: String, bind: Bind, deadline: Duration, mut submissions: mpsc::Receiver<Submission>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match Link::bind(&target, &bind, deadline).await {
            Ok(link) => {
                tracing::info!(%target, "SMPP bound as transmitter");
                let bound = Instant::now();
                if link.serve(&mut submissions, deadline).await.is_none() {
                    return;
                }
                tracing::warn!(%target, "SMPP connection lost: binding again");
                // A bind that lasted is a fresh start; one lost at once (an
                // SMSC that takes the bind, then drops it) waits as a failure.
                if bound.elapsed() > KEEPALIVE {
                    backoff = Duration::from_millis(100);
                } else {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            Err(error) => {
                tracing::error!(%target, %error, "SMPP bind failed");
                // What waits now cannot go: the senders hear 408 at once.
                while let Ok(submission) = submissions.try_recv() {
                    let _ = submission.reply.send(UNANSWERED);
                }
                if submissions.is_closed() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// A message in flight: its segments' statuses so far, and how many remain.
struct InFlight {
    statuses: Vec<u16>,
    remaining: usize,
    reply: oneshot::Sender<u16>,
}

/// One bound connection.
struct Link {
    stream: TcpStream,
    codec: CommandCodec,
    read: BytesMut,
    next_sequence: u32,
    deadline: Duration,
}

impl Link {
    /// Connects and binds as a transmitter.
    async fn bind(target: &str, bind: &Bind, deadline: Duration) -> std::io::Result<Self> {
        let stream = tokio::time::timeout(deadline, TcpStream::connect(target)).await??;
        stream.set_nodelay(true)?;
        let mut link = Self { stream, codec: CommandCodec::new(), read: BytesMut::new(), next_sequence: 1, deadline };
        let request = BindTransmitter::builder()
            .system_id(field(&bind.system_id))
            .password(field(&bind.password))
            .system_type(field("cpm-iwf"))
            .interface_version(InterfaceVersion::Smpp3_4)
            .build();
        let sequence = link.sequence();
        link.send(&Command::new(CommandStatus::EsmeRok, sequence, request)).await?;
        let answer = tokio::time::timeout(deadline, link.receive()).await??;
        match (answer.id(), answer.status()) {
            (CommandId::BindTransmitterResp, CommandStatus::EsmeRok) => Ok(link),
            (id, status) => Err(std::io::Error::other(format!("bind answered {id:?} {status:?}"))),
        }
    }

    /// The next sequence number (SMPP v3.4 s.3.2: 0x00000001 to 0x7FFFFFFF).
    fn sequence(&mut self) -> u32 {
        let sequence = self.next_sequence;
        self.next_sequence = if sequence >= 0x7FFF_FFFF { 1 } else { sequence + 1 };
        sequence
    }

    /// Writes `command`; an SMSC that does not take it within the
    /// session's deadline is a lost link.
    async fn send(&mut self, command: &Command) -> std::io::Result<()> {
        let mut out = BytesMut::new();
        self.codec.encode(command, &mut out).map_err(std::io::Error::other)?;
        tokio::time::timeout(self.deadline, self.stream.write_all(&out))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
    }

    /// The next whole PDU from the SMSC.
    async fn receive(&mut self) -> std::io::Result<Command> {
        loop {
            if let Some(command) = self.codec.decode(&mut self.read).map_err(std::io::Error::other)? {
                return Ok(command);
            }
            if self.stream.read_buf(&mut self.read).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Serves submissions until the connection is lost (`Some`) or every
    /// client is gone (`None`, after an `unbind`).
    async fn serve(mut self, submissions: &mut mpsc::Receiver<Submission>, deadline: Duration) -> Option<()> {
        // Sequence number -> (message, when sent).
        let mut waiting: HashMap<u32, (u64, Instant)> = HashMap::new();
        let mut messages: HashMap<u64, InFlight> = HashMap::new();
        let mut next_message = 0u64;
        let mut last_traffic = Instant::now();
        let mut keepalive: Option<(u32, Instant)> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let lost = loop {
            tokio::select! {
                submission = submissions.recv() => {
                    let Some(Submission { pdus, reply }) = submission else { break false };
                    let mut commands = Vec::with_capacity(pdus.len());
                    for pdu in &pdus {
                        match CommandCodec::new().decode(&mut BytesMut::from(&pdu[..])) {
                            Ok(Some(command)) if command.id() == CommandId::SubmitSm => commands.push(command),
                            _ => break,
                        }
                    }
                    if commands.len() != pdus.len() || commands.is_empty() {
                        tracing::error!("a submit_sm of the conversion does not decode: not sent");
                        let _ = reply.send(UNREADABLE);
                        continue;
                    }
                    let message = next_message;
                    next_message += 1;
                    messages.insert(message, InFlight { statuses: Vec::new(), remaining: commands.len(), reply });
                    let mut failed = false;
                    for mut command in commands {
                        command.sequence_number = self.sequence();
                        waiting.insert(command.sequence_number, (message, Instant::now()));
                        if self.send(&command).await.is_err() {
                            failed = true;
                            break;
                        }
                    }
                    last_traffic = Instant::now();
                    if failed {
                        break true;
                    }
                }
                read = self.stream.read_buf(&mut self.read) => {
                    if !matches!(read, Ok(n) if n > 0) {
                        break true;
                    }
                    last_traffic = Instant::now();
                    // The link is given up when the SMSC's bytes stop making
                    // PDUs (the codec has lost the framing), when it unbinds
                    // (SMPP v3.4 s.4.2: no more requests on that session), or
                    // when an answer cannot be written.
                    let mut done = false;
                    while !done {
                        let command = match self.codec.decode(&mut self.read) {
                            Ok(Some(command)) => command,
                            Ok(None) => break,
                            Err(error) => {
                                tracing::warn!(%error, "an SMPP PDU from the SMSC does not decode: binding again");
                                done = true;
                                continue;
                            }
                        };
                        let sequence = command.sequence_number();
                        match command.id() {
                            CommandId::SubmitSmResp | CommandId::GenericNack => {
                                let status = smpp_status(u32::from(command.status()));
                                answered(&mut waiting, &mut messages, sequence, status);
                            }
                            CommandId::EnquireLink => {
                                let answer = Command::new(CommandStatus::EsmeRok, sequence, Pdu::EnquireLinkResp);
                                done = self.send(&answer).await.is_err();
                            }
                            CommandId::EnquireLinkResp => keepalive = None,
                            CommandId::Unbind => {
                                let answer = Command::new(CommandStatus::EsmeRok, sequence, Pdu::UnbindResp);
                                let _ = self.send(&answer).await;
                                done = true;
                            }
                            other => tracing::debug!(?other, "SMPP PDU ignored"),
                        }
                    }
                    if done {
                        break true;
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    let late: Vec<u32> =
                        waiting.iter().filter(|(_, (_, sent))| now.duration_since(*sent) > deadline).map(|(s, _)| *s).collect();
                    for sequence in late {
                        answered(&mut waiting, &mut messages, sequence, UNANSWERED);
                    }
                    // SMPP v3.4 s.4.11: an enquire_link unanswered is a dead link.
                    if keepalive.is_some_and(|(_, sent)| now.duration_since(sent) > deadline) {
                        break true;
                    }
                    if keepalive.is_none() && now.duration_since(last_traffic) > KEEPALIVE {
                        let sequence = self.sequence();
                        if self.send(&Command::new(CommandStatus::EsmeRok, sequence, Pdu::EnquireLink)).await.is_err() {
                            break true;
                        }
                        keepalive = Some((sequence, now));
                        last_traffic = now;
                    }
                }
            }
        };
        // What was not answered on this connection never will be.
        for sequence in waiting.keys().copied().collect::<Vec<_>>() {
            answered(&mut waiting, &mut messages, sequence, UNANSWERED);
        }
        if lost {
            return Some(());
        }
        let sequence = self.sequence();
        let _ = self.send(&Command::new(CommandStatus::EsmeRok, sequence, Pdu::Unbind)).await;
        None
    }
}

/// Segment `sequence` has its `status`; a message whose every segment has
/// one is answered with their fold.
fn answered(
    waiting: &mut HashMap<u32, (u64, Instant)>,
    messages: &mut HashMap<u64, InFlight>,
    sequence: u32,
    status: u16,
) {
    let Some((message, _)) = waiting.remove(&sequence) else { return };
    let Some(in_flight) = messages.get_mut(&message) else { return };
    in_flight.statuses.push(status);
    in_flight.remaining = in_flight.remaining.saturating_sub(1);
    if in_flight.remaining == 0 {
        if let Some(done) = messages.remove(&message) {
            let _ = done.reply.send(combine_statuses(done.statuses));
        }
    }
}
