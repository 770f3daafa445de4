//! The participating function (PF(A) or PF(B)): a back-to-back relay of one
//! inbound leg to one outbound leg. It passes messages from downstream (the
//! member's IMDN) and every REPORT upstream as they are (the source documents,
//! "Acknowledgements"; RFC 4975 s.7.1.2: a REPORT covers the Byte-Range it
//! names).

use super::*;

/// A participating function's session.
pub(super) struct Participating {
    routing: Routing,
    relay: Relay,
}

impl Participating {
    pub(super) fn new(routing: Routing) -> Self {
        Self { routing, relay: Relay::default() }
    }
}

impl RoleLogic for Participating {
    fn plan(&self, request: &Message, list: Option<&[Entry]>, _config: &EntityConfig) -> Result<Plan, u16> {
        // PF(A) passes an ad-hoc list on to the CF.
        Ok(Plan { pass_list: true, ..self.routing.plan(request, list, false)? })
    }

    fn relays(&self) -> bool {
        true
    }

    fn msrp_event(&mut self, step: &mut Step<'_>, index: usize, event: MsrpEvent) {
        let upstream = step.up.as_ref().is_some_and(|l| l.hop == index);
        if upstream && self.relay.upstream_event(step, &event) {
            return;
        }
        match event {
            // A member's IMDN from downstream goes upstream.
            MsrpEvent::MessageReceived { content_type, body, .. } if !upstream => {
                if let Some(up) = step.up.as_ref().filter(|l| !l.ended).map(|l| l.hop) {
                    let content_type = content_type.unwrap_or_else(|| cpim::CONTENT_TYPE.to_owned());
                    step.send_on(up, content_type, body);
                }
            }
            MsrpEvent::ReportReceived { message_id, status, byte_range, .. } => {
                step.hops[index].done = true;
                let Some(up) = step.up.as_ref().map(|l| l.hop) else { return };
                step.send_report(up, MsrpCommand::Report { message_id, status, byte_range });
            }
            _ => {}
        }
    }
}
