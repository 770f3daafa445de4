//! A relay's cut-through (PF and CF): each message from upstream is
//! forwarded to every downstream leg chunk by chunk as it arrives, one body
//! buffer shared by every member (a refcount, not a copy).

use super::*;

impl Step<'_> {
    /// A message starts upstream: each live downstream leg forwards it under
    /// one new handle.
    pub(super) fn relay_start(
        &mut self,
        message_id: MessageId,
        content_type: String,
        total: Option<u64>,
        success_report: bool,
        failure_report: FailureReport,
    ) {
        let handle = MessageHandle::new(self.next_handle);
        self.next_handle += 1;
        self.relayed.insert(message_id.clone(), handle);
        for pos in 0..self.down.len() {
            if self.down[pos].ended {
                continue;
            }
            let hop = self.down[pos].hop;
            let command = MsrpCommand::Forward {
                handle,
                message_id: message_id.clone(),
                content_type: content_type.clone(),
                total,
                success_report,
                failure_report,
            };
            self.session_command(hop, command);
            self.hop_input(hop, HopInput::FirstSend);
        }
        // Members that failed before the message came get their IMDN now.
        self.member_imdns();
    }

    /// Bytes of a relayed message (`last`: its end) go to every live
    /// downstream leg.
    pub(super) fn relay_data(&mut self, message_id: &MessageId, data: Bytes, last: bool) {
        let Some(&handle) = self.relayed.get(message_id) else { return };
        // A short piece of a large read would keep the whole read alive in
        // every member's queue: it is copied once here, and the copy shared.
        let upstream = self.up.as_ref().and_then(|l| self.session(l.hop));
        let min_shared = upstream.map_or(0, |s| s.config().min_shared_piece);
        let copied = data.len() < min_shared;
        let data = if copied { Bytes::copy_from_slice(&data) } else { data };
        for pos in 0..self.down.len() {
            if self.down[pos].ended {
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
            self.session_command(self.down[pos].hop, command);
        }
    }
}
