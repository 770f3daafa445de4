//! A test SMSC on `rusmpp`'s codec (no third-party SMSC is installable
//! here): it binds any transmitter, decodes every PDU it reads with that
//! other SMPP implementation, answers each `submit_sm` with the status its
//! destination asks for (an address ending `98`: `ESME_RSUBMITFAIL`, `99`:
//! `ESME_RTHROTTLED`, else `ESME_ROK` with a message id), answers
//! `enquire_link` and `unbind`, and keeps every byte it read (for
//! Wireshark's SMPP dissector).

use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use rusmpp::pdus::{BindTransmitterResp, SubmitSmResp};
use rusmpp::tokio_codec::CommandCodec;
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::codec::{Decoder, Encoder};

/// One `submit_sm` the SMSC took: destination, `esm_class`, `data_coding`
/// and `short_message`.
#[derive(Clone, Debug)]
pub(crate) struct Submitted {
    pub(crate) destination: String,
    pub(crate) esm_class: u8,
    pub(crate) data_coding: u8,
    pub(crate) short_message: Vec<u8>,
}

/// The running SMSC.
pub(crate) struct TestSmsc {
    pub(crate) port: u16,
    submitted: Arc<Mutex<Vec<Submitted>>>,
    wire: Arc<Mutex<Vec<u8>>>,
    binds: Arc<Mutex<u32>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestSmsc {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestSmsc {
    /// The SMSC on a free port of 127.0.0.1.
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
        let port = listener.local_addr().expect("an address").port();
        let (submitted, wire, binds) = (Arc::default(), Arc::default(), Arc::default());
        let state = (Arc::clone(&submitted), Arc::clone(&wire), Arc::clone(&binds));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = (Arc::clone(&state.0), Arc::clone(&state.1), Arc::clone(&state.2));
                tokio::spawn(serve(stream, state));
            }
        });
        Self { port, submitted, wire, binds, task }
    }

    /// What it took so far.
    pub(crate) fn submitted(&self) -> Vec<Submitted> {
        self.submitted.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Every byte the ESMEs sent it, in order.
    pub(crate) fn wire(&self) -> Vec<u8> {
        self.wire.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// How many binds it accepted.
    pub(crate) fn binds(&self) -> u32 {
        self.binds.lock().map(|b| *b).unwrap_or(0)
    }
}

type State = (Arc<Mutex<Vec<Submitted>>>, Arc<Mutex<Vec<u8>>>, Arc<Mutex<u32>>);

async fn serve(mut stream: tokio::net::TcpStream, (submitted, wire, binds): State) {
    let mut codec = CommandCodec::new();
    let mut read = BytesMut::new();
    loop {
        let before = read.len();
        match stream.read_buf(&mut read).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if let (Ok(mut wire), Some(new)) = (wire.lock(), read.get(before..)) {
            wire.extend_from_slice(new);
        }
        while let Ok(Some(command)) = codec.decode(&mut read) {
            let sequence = command.sequence_number();
            let answer = match command.pdu() {
                Some(Pdu::BindTransmitter(bind)) => {
                    if let Ok(mut binds) = binds.lock() {
                        *binds += 1;
                    }
                    let resp = BindTransmitterResp::builder().system_id(bind.system_id.clone()).build();
                    Command::new(CommandStatus::EsmeRok, sequence, resp)
                }
                Some(Pdu::SubmitSm(submit)) => {
                    let destination =
                        String::from_utf8_lossy(submit.destination_addr.as_ref()).trim_end_matches('\0').to_owned();
                    if let Ok(mut submitted) = submitted.lock() {
                        submitted.push(Submitted {
                            destination: destination.clone(),
                            esm_class: u8::from(submit.esm_class),
                            data_coding: u8::from(submit.data_coding),
                            short_message: submit.short_message().as_ref().to_vec(),
                        });
                    }
                    let status = if destination.ends_with("98") {
                        CommandStatus::EsmeRsubmitfail
                    } else if destination.ends_with("99") {
                        CommandStatus::EsmeRthrottled
                    } else {
                        CommandStatus::EsmeRok
                    };
                    let id = format!("m{sequence}").parse().unwrap_or_default();
                    Command::new(status, sequence, SubmitSmResp::builder().message_id(id).build())
                }
                Some(Pdu::EnquireLink) => Command::new(CommandStatus::EsmeRok, sequence, Pdu::EnquireLinkResp),
                Some(Pdu::Unbind) => Command::new(CommandStatus::EsmeRok, sequence, Pdu::UnbindResp),
                _ if command.id() == CommandId::EnquireLinkResp => continue,
                _ => Command::new(CommandStatus::EsmeRinvcmdid, sequence, Pdu::GenericNack),
            };
            let mut out = BytesMut::new();
            if codec.encode(&answer, &mut out).is_err() || stream.write_all(&out).await.is_err() {
                return;
            }
        }
    }
}
