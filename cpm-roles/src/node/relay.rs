//! A relay's cut-through (PF and CF): each message from upstream is
//! forwarded to every downstream leg chunk by chunk as it arrives, one body
//! buffer shared by every member (a refcount, not a copy).

use super::*;

/// The messages a relay forwards.
#[derive(Default)]
pub(super) struct Relay {
    /// The downstream handle of each upstream Message-ID, until the message
    /// is settled.
    pub(super) relayed: HashMap<MessageId, MessageHandle>,
}

impl Relay {
    /// The upstream Message-ID a downstream handle carries.
    pub(super) fn message_of(&self, handle: MessageHandle) -> Option<MessageId> {
        self.relayed.iter().find(|(_, h)| **h == handle).map(|(id, _)| id.clone())
    }

    /// What both relays do with the upstream hop's events: `true` when
    /// `event` was one of them.
    pub(super) fn upstream_event(&mut self, step: &mut Step<'_>, event: &MsrpEvent) -> bool {
        match event {
            MsrpEvent::MessageStarted { message_id, content_type, total, success_report, failure_report } => {
                let content_type = content_type.clone().unwrap_or_else(|| "text/plain".to_owned());
                self.start(step, message_id.clone(), content_type, *total, *success_report, *failure_report);
            }
            MsrpEvent::ChunkReceived { message_id, data, .. } => self.data(step, message_id, data.clone(), false),
            MsrpEvent::MessageReceived { message_id, .. } => self.data(step, message_id, Bytes::new(), true),
            _ => return false,
        }
        true
    }

    /// A message starts upstream: each live downstream leg forwards it under
    /// one new handle.
    fn start(
        &mut self,
        step: &mut Step<'_>,
        message_id: MessageId,
        content_type: String,
        total: Option<u64>,
        success_report: bool,
        failure_report: FailureReport,
    ) {
        let handle = MessageHandle::new(step.next_handle);
        step.next_handle += 1;
        self.relayed.insert(message_id.clone(), handle);
        for pos in 0..step.down.len() {
            if step.down[pos].ended {
                continue;
            }
            let hop = step.down[pos].hop;
            let command = MsrpCommand::Forward {
                handle,
                message_id: message_id.clone(),
                content_type: content_type.clone(),
                total,
                success_report,
                failure_report,
            };
            step.session_command(hop, command);
            step.hop_input(hop, HopInput::FirstSend);
        }
    }

    /// Bytes of a relayed message (`last`: its end) go to every live
    /// downstream leg.
    fn data(&self, step: &mut Step<'_>, message_id: &MessageId, data: Bytes, last: bool) {
        let Some(&handle) = self.relayed.get(message_id) else { return };
        // A short piece of a large read would keep the whole read alive in
        // every member's queue: it is copied once here, and the copy shared.
        let upstream = step.up.as_ref().and_then(|l| step.session(l.hop));
        let min_shared = upstream.map_or(0, |s| s.config().min_shared_piece);
        let copied = data.len() < min_shared;
        let data = if copied { Bytes::copy_from_slice(&data) } else { data };
        for pos in 0..step.down.len() {
            if step.down[pos].ended {
                continue;
            }
            // One body buffer shared by every member: a refcount, not a copy
            // (only the copy is self-contained, msrp-core's StreamOwned).
            let data = data.clone();
            let command = if copied {
                MsrpCommand::StreamOwned { handle, data, last }
            } else {
                MsrpCommand::StreamData { handle, data, last }
            };
            step.session_command(step.down[pos].hop, command);
        }
    }
}
