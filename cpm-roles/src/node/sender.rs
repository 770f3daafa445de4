//! The sending client: the INVITE with its offer (and an ad-hoc recipient
//! list), its message once the hop is up, the IMDNs it receives, and its
//! one outcome.

use super::*;

/// A sending client's session.
pub(super) struct Sender {
    flow: FlowId,
    hop: Hop,
    label: String,
    /// The message, until its session exists.
    message: Option<(String, Bytes)>,
    /// The outcome was told.
    done: bool,
}

impl Sender {
    pub(super) const fn new(flow: FlowId, hop: Hop, label: String) -> Self {
        Self { flow, hop, label, message: None, done: false }
    }

    /// The sender's one outcome (the first of a REPORT, a failed send or the
    /// end of its leg), then its BYE.
    fn finish(&mut self, step: &mut Step<'_>, outcome: Outcome) {
        if self.done {
            return;
        }
        self.done = true;
        step.event(Event::Outcome { outcome });
        // Seed 000 paragraph 0102: A sends BYE after the acknowledgement reached it.
        if !step.down.is_empty() {
            step.end_down(0);
        }
    }
}

impl RoleLogic for Sender {
    fn plan(&self, _request: &Message, _list: Option<&[Entry]>, _config: &EntityConfig) -> Result<Plan, u16> {
        // A sender takes no session.
        Err(488)
    }

    fn acks_at_once(&self) -> bool {
        true
    }

    fn answered(&mut self, step: &mut Step<'_>, index: usize) {
        let Some((content_type, body)) = self.message.take() else { return };
        let handle = MessageHandle::new(step.next_handle);
        step.next_handle += 1;
        step.event(Event::Submitted { bytes: body.clone() });
        let command =
            MsrpCommand::Send { handle, content_type, body, success_report: true, failure_report: FailureReport::Yes };
        step.session_command(index, command);
    }

    fn leg_ended(&mut self, step: &mut Step<'_>, _pos: usize, outcome: Outcome) {
        if !self.done {
            self.done = true;
            step.event(Event::Outcome { outcome });
        }
    }

    fn leg_lost(&mut self, step: &mut Step<'_>, _pos: usize) {
        if !self.done {
            self.done = true;
            step.event(Event::Outcome { outcome: Outcome::LinkLost });
        }
    }

    fn send_failed(&mut self, step: &mut Step<'_>, _index: usize, status: u16) -> bool {
        let outcome = match status {
            0 => Outcome::LinkLost,
            408 => Outcome::TimedOut,
            status => Outcome::Failed { status },
        };
        self.finish(step, outcome);
        true
    }

    fn msrp_event(&mut self, step: &mut Step<'_>, index: usize, event: MsrpEvent) {
        match event {
            MsrpEvent::MessageReceived { content_type, body, .. } => {
                // The sender receives IMDNs only: one per member (SPEC "Acknowledgements").
                match delivery_notification(content_type.as_deref(), body) {
                    Some((member, status)) => step.event(Event::Delivery { member, status }),
                    None => step.event(Event::PeerError { error: PeerError::NotANotification }),
                }
            }
            // RFC 4975 s.7.3.2: a success REPORT settles the message once success
            // REPORTs cover all of it (MessageDelivered), a failure REPORT at once.
            MsrpEvent::ReportReceived { handle: Some(_), status, .. } if status != 200 => {
                step.hops[index].done = true;
                self.finish(step, Outcome::Failed { status });
            }
            MsrpEvent::MessageDelivered { .. } => {
                step.hops[index].done = true;
                self.finish(step, Outcome::Delivered);
            }
            MsrpEvent::ReportTimedOut { .. } => {
                step.hops[index].done = true;
                self.finish(step, Outcome::TimedOut);
            }
            _ => {}
        }
    }

    fn send_message(
        &mut self,
        step: &mut Step<'_>,
        target: String,
        recipients: &[String],
        content_type: String,
        body: Bytes,
    ) -> Result<(), UsageError> {
        if !step.hops.is_empty() {
            return Err(UsageError::WrongState);
        }
        let media_type = MediaType::parse_str(&content_type).map_err(|_| UsageError::ContentType)?;
        let intent = SendIntent { content_type: media_type, wrapped: None, size: body.len() as u64 };
        let label = self.label.clone();
        let index = step.new_hop(self.hop, &label, Side::Offerer)?;
        let offer = build_offer(step.hops[index].local_uri.clone(), &step.config.capabilities, Some(&intent));
        let sdp = step.sdp(&offer);
        let setup = offer.setup;
        step.hops[index].offer = Some(offer);
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
        let from = step.config.aor.clone();
        let target_uri = target.clone();
        let transport = step.config.transport(self.flow);
        step.ua_input(ua::Input::Command(ua::Command::Invite {
            leg,
            flow: self.flow,
            transport,
            target,
            from,
            body: sdp,
            content_type: Some(sdp_type),
        }))?;
        step.hop_input(index, HopInput::OfferSent { setup });
        step.down.push(Leg::new(leg, index, target_uri));
        Ok(())
    }
}
