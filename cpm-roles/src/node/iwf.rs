//! The interworking function's hand-over to its non-CPM system and the
//! delivery REPORT its acknowledgement becomes (the source documents, "Acknowledgements").

use super::*;

/// An interworking function's session.
pub(super) struct Iwf {
    hop: Hop,
    label: String,
    iwf: IwfConfig,
    /// Hand-overs waiting for the non-CPM acknowledgement: their id, hop,
    /// Message-ID and size.
    pending: Vec<(DeliveryId, usize, MessageId, u64)>,
    /// The next [`DeliveryId`] this session hands out (the element renames it).
    next_delivery: u64,
    /// The SMPP sequence number of the next `submit_sm`.
    sms_sequence: u32,
}

impl Iwf {
    pub(super) const fn new(hop: Hop, label: String, iwf: IwfConfig) -> Self {
        Self { hop, label, iwf, pending: Vec::new(), next_delivery: 0, sms_sequence: 1 }
    }

    /// A whole message reached the IWF: it is converted for the non-CPM
    /// system and handed over ([`Event::DeliverToNonCpm`]); content that
    /// cannot be converted gets a failure REPORT.
    fn hand_over(
        &mut self,
        step: &mut Step<'_>,
        index: usize,
        message_id: MessageId,
        body: Bytes,
        total: u64,
        content_type: Option<String>,
    ) {
        step.hops[index].done = true;
        step.event(Event::MessageDelivered { body: body.clone() });
        let mut message = NonCpmMessage::new(
            step.peer_uri.clone(),
            step.recipient_uri.clone(),
            content_type.unwrap_or_default(),
            body.clone(),
        );
        let mut id = [0u8; 8];
        msrp_core::IdSource::fill(&mut step.ids, &mut id);
        message.id = u64::from_le_bytes(id);
        message.submitted_at = self
            .iwf
            .wall_clock
            .map_or(0, |(at, unix)| unix.saturating_add(step.now.saturating_duration_since(at).as_secs()));
        message.sms_first_sequence = self.sms_sequence;
        match interworking::convert(self.iwf.system, &message, &self.iwf.conversion) {
            Ok(conversion) => {
                let count = u32::try_from(conversion.parts.len()).unwrap_or(u32::MAX);
                // SMPP v3.4 s.3.2: sequence numbers stay within 1..=0x7FFFFFFF.
                self.sms_sequence = (self.sms_sequence.wrapping_add(count) - 1) % 0x7FFF_FFFF + 1;
                let delivery = DeliveryId::new(self.next_delivery);
                self.next_delivery += 1;
                step.event(Event::DeliverToNonCpm {
                    delivery,
                    system: self.iwf.system,
                    format: conversion.format,
                    payload: body,
                    parts: conversion.parts,
                    envelope: conversion.envelope,
                });
                match self.iwf.report {
                    IwfReport::AfterNonCpmAck => self.pending.push((delivery, index, message_id, total)),
                    // The session already queued its success REPORT.
                    IwfReport::AtMediaEnd => self.after_report(step),
                }
            }
            Err(error) => {
                step.event(Event::PeerError { error: PeerError::Interworking(error) });
                if self.iwf.report == IwfReport::AfterNonCpmAck {
                    // RFC 4975 s.7.1.2: the failure REPORT covers the whole message.
                    let byte_range = Some(msrp_core::ByteRange { start: 1, end: Some(total), total: Some(total) });
                    let status = error.status_code();
                    step.send_report(index, MsrpCommand::Report { message_id, status, byte_range });
                    self.after_report(step);
                }
            }
        }
    }

    fn after_report(&self, step: &mut Step<'_>) {
        if self.iwf.bye_after_report {
            if let Some(leg) = step.up.as_ref().filter(|l| !l.ended).map(|l| l.leg) {
                let _ = step.ua_input(ua::Input::Command(ua::Command::End { leg }));
            }
        }
    }
}

impl RoleLogic for Iwf {
    fn plan(&self, _request: &Message, _list: Option<&[Entry]>, _config: &EntityConfig) -> Result<Plan, u16> {
        Ok(Plan::end_point(self.hop, &self.label))
    }

    fn success_reports(&self) -> bool {
        self.iwf.report == IwfReport::AtMediaEnd
    }

    fn msrp_event(&mut self, step: &mut Step<'_>, index: usize, event: MsrpEvent) {
        if let MsrpEvent::MessageReceived { message_id, body, total, content_type, .. } = event {
            self.hand_over(step, index, message_id, body, total, content_type);
        }
    }

    fn non_cpm_ack(&mut self, step: &mut Step<'_>, delivery: DeliveryId, status: u16) -> Result<(), UsageError> {
        if self.iwf.report == IwfReport::AtMediaEnd {
            // Already reported at media end: the acknowledgement changes nothing.
            return Ok(());
        }
        let pos = self.pending.iter().position(|p| p.0 == delivery).ok_or(UsageError::UnknownDelivery)?;
        let (_, index, message_id, total) = self.pending.remove(pos);
        // SPEC "Acknowledgements": the system's acknowledgement becomes the IWF's
        // delivery REPORT (RFC 4975 s.7.1.2: a success REPORT covers the whole message).
        let byte_range = Some(msrp_core::ByteRange { start: 1, end: Some(total), total: Some(total) });
        step.send_report(index, MsrpCommand::Report { message_id, status, byte_range });
        self.after_report(step);
        Ok(())
    }
}
