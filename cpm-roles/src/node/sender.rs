//! The sending client: its message, sent once the hop is up, and its one
//! outcome.

use super::*;

impl Step<'_> {
    pub(super) fn send_message(
        &mut self,
        target: String,
        recipients: &[String],
        content_type: String,
        body: Bytes,
    ) -> Result<(), UsageError> {
        let Role::Sender { flow, hop, label } = self.role.clone() else { return Err(UsageError::WrongRole) };
        if !self.hops.is_empty() {
            return Err(UsageError::WrongState);
        }
        let media_type = MediaType::parse_str(&content_type).map_err(|_| UsageError::ContentType)?;
        let intent = SendIntent { content_type: media_type, wrapped: None, size: body.len() as u64 };
        let index = self.new_hop(hop, &label, Side::Offerer)?;
        let offer = build_offer(self.hops[index].local_uri.clone(), &self.config.capabilities, Some(&intent));
        let sdp = self.sdp(&offer);
        let setup = offer.setup;
        self.hops[index].offer = Some(offer);
        self.message = Some((content_type, body));
        // Ad-hoc group: RFC 5366 s.4, the SDP and the recipient list in one multipart/mixed body.
        let list = if recipients.is_empty() {
            None
        } else {
            let entries: Vec<Entry> = recipients.iter().map(Entry::new).collect();
            Some(resource_lists::part(&entries).map_err(|_| UsageError::Recipients)?)
        };
        let (sdp, sdp_type) = with_list(sdp, list.as_ref()).ok_or(UsageError::Recipients)?;
        let leg = LegId::new(0);
        let from = self.config.aor.clone();
        let target_uri = target.clone();
        self.ua_input(ua::Input::Command(ua::Command::Invite {
            leg,
            flow,
            transport: self.config.transport(flow),
            target,
            from,
            body: sdp,
            content_type: Some(sdp_type),
        }))?;
        self.hop_input(index, HopInput::OfferSent { setup });
        self.down.push(Leg::new(leg, index, target_uri));
        Ok(())
    }
    /// The sender's one outcome (the first of a REPORT, a failed send or the
    /// end of its leg), then its BYE.
    pub(super) fn finish_sender(&mut self, outcome: Outcome) {
        if self.done {
            return;
        }
        self.done = true;
        self.event(Event::Outcome { outcome });
        // Seed 000 paragraph 0102: A sends BYE after the acknowledgement reached it.
        if let Some(pos) = self.down.first().map(|_| 0) {
            self.end_down(pos);
        }
    }
}
