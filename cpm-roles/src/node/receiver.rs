//! The receiving client: answers (or refuses) an INVITE, reassembles the
//! message, and sends the delivery REPORT (its session) and an IMDN.

use super::*;

/// A receiving client's session.
pub(super) struct Receiver {
    pub(super) hop: Hop,
    pub(super) label: String,
    /// Refuse every INVITE with this status.
    pub(super) reject: Option<u16>,
}

impl RoleLogic for Receiver {
    fn plan(&self, _request: &Message, _list: Option<&[Entry]>, _config: &EntityConfig) -> Result<Plan, u16> {
        if let Some(status) = self.reject {
            return Err(status);
        }
        Ok(Plan::end_point(self.hop, &self.label))
    }

    fn msrp_event(&mut self, step: &mut Step<'_>, index: usize, event: MsrpEvent) {
        let MsrpEvent::MessageReceived { message_id, body, .. } = event else { return };
        step.hops[index].done = true;
        step.event(Event::MessageDelivered { body });
        // The receiver "sends the delivery REPORT and IMDN" (the session queued
        // the REPORT; RFC 5438 s.7.2.1 the IMDN, from the member).
        if step.up.as_ref().is_some_and(|l| l.hop == index) {
            let member = step.up.as_ref().map(|l| l.member.clone()).unwrap_or_default();
            let to = step.peer_uri.clone();
            if let Some(imdn) = step.imdn(&member, &to, &message_id, true) {
                step.send_on(index, cpim::CONTENT_TYPE.to_owned(), imdn);
            }
        }
    }
}
