//! The interworking function's hand-over to its non-CPM system and the
//! delivery REPORT its acknowledgement becomes (SPEC.md "Acknowledgements").

use super::*;

impl Step<'_> {
    /// A whole message reached the IWF: it is converted for the non-CPM
    /// system and handed over ([`Event::DeliverToNonCpm`]); content that
    /// cannot be converted gets a failure REPORT.
    pub(super) fn hand_over(
        &mut self,
        index: usize,
        message_id: MessageId,
        body: Bytes,
        total: u64,
        content_type: Option<String>,
    ) {
        let Role::Iwf { iwf, .. } = self.role.clone() else { return };
        self.hops[index].done = true;
        self.event(Event::MessageDelivered { body: body.clone() });
        let mut message = NonCpmMessage::new(
            self.peer_uri.clone(),
            self.recipient_uri.clone(),
            content_type.unwrap_or_default(),
            body.clone(),
        );
        let mut id = [0u8; 8];
        msrp_core::IdSource::fill(&mut self.ids, &mut id);
        message.id = u64::from_le_bytes(id);
        message.submitted_at = iwf
            .wall_clock
            .map_or(0, |(at, unix)| unix.saturating_add(self.now.saturating_duration_since(at).as_secs()));
        message.sms_first_sequence = self.sms_sequence;
        match interworking::convert(iwf.system, &message, &iwf.conversion) {
            Ok(conversion) => {
                let count = u32::try_from(conversion.parts.len()).unwrap_or(u32::MAX);
                // SMPP v3.4 s.3.2: sequence numbers stay within 1..=0x7FFFFFFF.
                self.sms_sequence = (self.sms_sequence.wrapping_add(count) - 1) % 0x7FFF_FFFF + 1;
                let delivery = DeliveryId::new(self.next_delivery);
                self.next_delivery += 1;
                self.event(Event::DeliverToNonCpm {
                    delivery,
                    system: iwf.system,
                    format: conversion.format,
                    payload: body,
                    parts: conversion.parts,
                });
                match iwf.report {
                    IwfReport::AfterNonCpmAck => self.iwf_pending.push((delivery, index, message_id, total)),
                    // The session already queued its success REPORT.
                    IwfReport::AtMediaEnd => self.after_iwf_report(),
                }
            }
            Err(error) => {
                self.event(Event::PeerError { error: PeerError::Interworking(error) });
                if iwf.report == IwfReport::AfterNonCpmAck {
                    // RFC 4975 s.7.1.2: the failure REPORT covers the whole message.
                    let byte_range = Some(msrp_core::ByteRange { start: 1, end: Some(total), total: Some(total) });
                    let status = error.status_code();
                    self.send_report(index, MsrpCommand::Report { message_id, status, byte_range });
                    self.after_iwf_report();
                }
            }
        }
    }

    /// IWF: the non-CPM system acknowledged the hand-over `delivery`.
    pub(super) fn non_cpm_ack(&mut self, delivery: DeliveryId, status: u16) -> Result<(), UsageError> {
        let Role::Iwf { iwf, .. } = &self.role else { return Err(UsageError::WrongRole) };
        if iwf.report == IwfReport::AtMediaEnd {
            // Already reported at media end: the acknowledgement changes nothing.
            return Ok(());
        }
        let pos = self.iwf_pending.iter().position(|p| p.0 == delivery).ok_or(UsageError::UnknownDelivery)?;
        let (_, index, message_id, total) = self.iwf_pending.remove(pos);
        // SPEC "Acknowledgements": the system's acknowledgement becomes the IWF's
        // delivery REPORT (RFC 4975 s.7.1.2: a success REPORT covers the whole message).
        let byte_range = Some(msrp_core::ByteRange { start: 1, end: Some(total), total: Some(total) });
        self.send_report(index, MsrpCommand::Report { message_id, status, byte_range });
        self.after_iwf_report();
        Ok(())
    }
    pub(super) fn after_iwf_report(&mut self) {
        let Role::Iwf { iwf, .. } = &self.role else { return };
        if iwf.bye_after_report {
            if let Some(leg) = self.up.as_ref().filter(|l| !l.ended).map(|l| l.leg) {
                let _ = self.ua_input(ua::Input::Command(ua::Command::End { leg }));
            }
        }
    }
}
