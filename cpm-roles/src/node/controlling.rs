//! The controlling function's decisions: each member's outcome, its IMDN
//! to the sender (RFC 5438), the one success REPORT upstream once every
//! outcome is known (SPEC.md "Acknowledgements"), and slow members.

use super::*;

impl Step<'_> {
    /// Controlling: tracks each member's full window and drops a member
    /// whose window stayed full past [`SlowMember::after`].
    pub(super) fn check_slow_members(&mut self) {
        let Some(slow) = self.config.slow_member else { return };
        if !matches!(self.role, Role::Relay { aggregate: true, .. }) {
            return;
        }
        let now = self.now;
        for pos in 0..self.down.len() {
            let index = self.down[pos].hop;
            // An ended (or ending) member has nothing left to wait for.
            if self.down[pos].ended || self.hops[index].closed {
                continue;
            }
            let open = self.session(index).map_or(0, Session::open_transactions);
            if open < slow.window.max(1) {
                self.down[pos].full_since = None;
                continue;
            }
            let since = *self.down[pos].full_since.get_or_insert(now);
            if since + slow.after <= now {
                self.down[pos].full_since = None;
                let member = Some(self.down[pos].member.clone());
                self.event(Event::HopFailed { member });
                self.hops[index].done = true;
                self.end_down(pos);
            }
        }
    }
    /// An IMDN delivery notification (RFC 5438 s.7.2.1: `message/imdn+xml` in
    /// CPIM with `Content-Disposition: notification`) from `member` to `to`
    /// about `message_id`.
    pub(super) fn imdn(&mut self, member: &str, to: &str, message_id: &MessageId, delivered: bool) -> Option<Bytes> {
        let notification =
            Notification::Delivery(if delivered { DeliveryStatus::Delivered } else { DeliveryStatus::Failed });
        let imdn = Imdn {
            message_id: message_id.as_str().to_owned(),
            datetime: UNKNOWN_DATETIME.to_owned(),
            // RFC 5438 s.11.1.3: the final recipient, which names the member.
            recipient_uri: (!member.is_empty()).then(|| member.to_owned()),
            original_recipient_uri: None,
            subject: None,
            notification,
        };
        let id = MessageId::generate(&mut self.ids);
        let from = if member.is_empty() { to } else { member };
        let builder = imdn::wrap(&imdn, Address::new(from), Address::new(to), id.as_str(), None).ok()?;
        builder.build().ok()
    }
    /// Controlling: one IMDN per member whose outcome is known, on the
    /// sender's session (SPEC "Acknowledgements": never a failure REPORT for
    /// one member).
    pub(super) fn member_imdns(&mut self) {
        if !matches!(self.role, Role::Relay { aggregate: true, .. }) {
            return;
        }
        let Some(up) = self.up.as_ref().filter(|l| !l.ended).map(|l| l.hop) else { return };
        let mut messages: Vec<MessageId> = self.relayed.keys().cloned().collect();
        messages.sort();
        let Some(message_id) = messages.first().cloned() else { return };
        let to = self.peer_uri.clone();
        for pos in 0..self.down.len() {
            let Some(status) = self.down[pos].outcome.filter(|_| !self.down[pos].imdn_sent) else { continue };
            self.down[pos].imdn_sent = true;
            let member = self.down[pos].member.clone();
            if let Some(body) = self.imdn(&member, &to, &message_id, status == 200) {
                self.send_on(up, cpim::CONTENT_TYPE.to_owned(), body);
            }
        }
    }
    /// Controlling: the success REPORT upstream, once every member's outcome
    /// (a REPORT, or its leg's failure) is known.
    /// The upstream Message-ID a downstream handle carries (a relay forwards
    /// each message under the handle it chose for it).
    pub(super) fn message_of(&self, handle: MessageHandle) -> Option<MessageId> {
        self.relayed.iter().find(|(_, h)| **h == handle).map(|(id, _)| id.clone())
    }
    /// A message sent on hop `index` is settled with `outcome`: the sender's
    /// outcome, or one member's at the controlling function.
    pub(super) fn settled(&mut self, index: usize, message_id: Option<MessageId>, outcome: Outcome) {
        self.hops[index].done = true;
        match &self.role {
            Role::Sender { .. } => self.finish_sender(outcome),
            Role::Relay { aggregate: true, .. } => {
                // One outcome per member: a REPORT after the member's leg
                // already failed changes nothing.
                let Some(leg) = self.down.iter_mut().find(|l| l.hop == index && l.outcome.is_none()) else {
                    return;
                };
                let status = outcome.status();
                leg.reported = true;
                leg.outcome = Some(status);
                let member = leg.member.clone();
                self.event(Event::MemberOutcome { member, outcome });
                let Some(message_id) = message_id else { return };
                self.outcomes.entry(message_id.clone()).or_default().push(status);
                self.member_imdns();
                self.report_upstream(message_id, None);
            }
            Role::Relay { .. } | Role::Receiver { .. } | Role::Iwf { .. } => {}
        }
    }
    pub(super) fn report_upstream(&mut self, message_id: MessageId, byte_range: Option<msrp_core::ByteRange>) {
        let Some(up) = self.up.as_ref().map(|l| l.hop) else { return };
        let reports = self.outcomes.get(&message_id).map_or(0, Vec::len);
        let known = self.down.iter().all(|l| l.outcome.is_some());
        if reports == 0 || !known {
            return;
        }
        // Settled: nothing more is kept for the message (a late REPORT for it
        // finds no state and changes nothing).
        self.outcomes.remove(&message_id);
        self.relayed.remove(&message_id);
        // SPEC "Acknowledgements": never a failure REPORT on the sender's session
        // for one member; the success REPORT covers the message once every
        // member's outcome is known (each member's own outcome went as an IMDN).
        self.send_report(up, MsrpCommand::Report { message_id, status: 200, byte_range });
    }
}
