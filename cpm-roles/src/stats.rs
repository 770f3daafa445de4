//! What an operator reads off an entity ([`Stats`]), kept as the entity
//! works so that reading it after every input costs next to nothing.

use std::collections::BTreeMap;

use bytes::Bytes;
use msrp_core::Transmit;

use crate::{Event, Input, Outcome, Output};

/// Counters and levels of one entity ([`crate::Entity::stats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// SIP sessions running now.
    pub sessions: usize,
    /// MSRP links open now.
    pub links: usize,
    /// SIP messages read.
    pub sip_in: u64,
    /// SIP messages written.
    pub sip_out: u64,
    /// MSRP bytes read.
    pub msrp_bytes_in: u64,
    /// MSRP bytes written (heads, bodies and end-lines).
    pub msrp_bytes_out: u64,
    /// Bytes the MSRP sessions hold now (messages being reassembled).
    pub bytes_held: usize,
    /// Bytes waiting to be written now (in the sessions and behind frames
    /// on shared links).
    pub bytes_queued: usize,
    /// Refusals it sent, by status: SIP final responses 300-699 and MSRP
    /// responses other than 200 (a relay's and the ISF's include those it
    /// passes on from downstream).
    pub refusals: BTreeMap<u16, u64>,
    /// Outcomes that were timeouts (a member or a send that got no answer).
    pub timeouts: u64,
}

impl Stats {
    /// Counts what comes in.
    pub(crate) fn input(&mut self, input: &Input) {
        match input {
            Input::SipReceived { .. } | Input::SipDatagram { .. } => self.sip_in += 1,
            Input::MsrpReceived { data, .. } => self.msrp_bytes_in += data.len() as u64,
            _ => {}
        }
    }

    /// Counts what goes out.
    pub(crate) fn output(&mut self, output: &Output) {
        match output {
            Output::SipTransmit { bytes, .. } => {
                self.sip_out += 1;
                if let Some(status) = sip_status(bytes).filter(|s| *s >= 300) {
                    *self.refusals.entry(status).or_default() += 1;
                }
            }
            Output::MsrpTransmit { transmit, .. } => {
                self.msrp_bytes_out += (transmit.head.len() + transmit.body.len() + transmit.end_line.len()) as u64;
                if let Some(status) = msrp_status(transmit).filter(|s| *s != 200) {
                    *self.refusals.entry(status).or_default() += 1;
                }
            }
            Output::Event {
                event:
                    Event::Outcome { outcome: Outcome::TimedOut, .. }
                    | Event::MemberOutcome { outcome: Outcome::TimedOut, .. },
                ..
            } => self.timeouts += 1,
            _ => {}
        }
    }
}

/// The status of a SIP response (RFC 3261 s.7.2: `SIP/2.0 SP Status-Code`).
fn sip_status(bytes: &Bytes) -> Option<u16> {
    let code = bytes.strip_prefix(b"SIP/2.0 ")?.get(..3)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// The status of an MSRP response head (RFC 4975 s.9: `MSRP SP
/// transact-id SP status-code`); `None` for a request or a body piece.
fn msrp_status(transmit: &Transmit) -> Option<u16> {
    let rest = transmit.head.strip_prefix(b"MSRP ")?;
    let space = rest.iter().position(|&b| b == b' ')?;
    let code = rest.get(space + 1..space + 4)?;
    if rest.get(space + 4).is_some_and(|&b| b != b' ' && b != b'\r') {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &'static str) -> Transmit {
        Transmit {
            transaction_id: msrp_core::TransactionId::generate(&mut crate::SimulationIds::new(1)),
            head: Bytes::from_static(text.as_bytes()),
            body: Bytes::new(),
            end_line: Bytes::new(),
        }
    }

    #[test]
    fn statuses_are_read_off_responses_only() {
        assert_eq!(sip_status(&Bytes::from_static(b"SIP/2.0 503 Service Unavailable\r\n")), Some(503));
        assert_eq!(sip_status(&Bytes::from_static(b"INVITE sip:b@h SIP/2.0\r\n")), None);
        assert_eq!(msrp_status(&head("MSRP a786hjs2 481 No session\r\nTo-Path: x\r\n")), Some(481));
        assert_eq!(msrp_status(&head("MSRP a786hjs2 200\r\n")), Some(200));
        assert_eq!(msrp_status(&head("MSRP a786hjs2 SEND\r\n")), None);
        assert_eq!(msrp_status(&head("MSRP a786hjs2 4812\r\n")), None);
    }
}
