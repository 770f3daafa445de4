//! The simulator's trace: one [`TraceEvent`] per thing that crossed a hop,
//! and its JSON form (the `--json` schema of the scenario example).

use cpm_negotiation::Trigger;

/// One recorded event (the `--json` schema of the scenario example).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceEvent {
    /// A SIP message crossed a hop.
    Sip {
        /// Sender.
        from: String,
        /// Receiver.
        to: String,
        /// Method, or status code for a response.
        msg: String,
        /// Hop label.
        hop: String,
        /// The same bytes were sent before on this hop.
        retransmission: bool,
    },
    /// The opener of a hop connected.
    Connect {
        /// Opener.
        from: String,
        /// Listener.
        to: String,
        /// Hop label.
        hop: String,
        /// What triggered it: `200`, `ACK` or `SEND`.
        trigger: &'static str,
        /// Whether an existing link was reused (never, yet).
        reuse: bool,
    },
    /// An MSRP request or response started on a link.
    Msrp {
        /// Sender.
        from: String,
        /// Receiver.
        to: String,
        /// Hop label.
        hop: String,
        /// Method, or status code for a response.
        msg: String,
        /// Request body length (0 for a response or a bodiless request).
        bytes: usize,
    },
    /// The sender submitted the message.
    Submit {
        /// Entity.
        at: String,
        /// Length.
        bytes: usize,
        /// CRC-32 of the body.
        crc32: u32,
    },
    /// A receiver reassembled the message.
    Deliver {
        /// Entity.
        at: String,
        /// Length.
        bytes: usize,
        /// CRC-32 of the body.
        crc32: u32,
    },
    /// The IWF handed a whole message to the non-CPM system.
    NonCpm {
        /// Entity.
        at: String,
        /// The system's format (`SMS`, `MMS`, `Email`).
        format: String,
        /// How many parts.
        parts: usize,
    },
    /// The opener closed a hop's link.
    Close {
        /// Hop label.
        hop: String,
    },
}

/// `s` as a JSON string.
fn json_str(s: &str) -> String {
    // A `str` always serializes; the fallback is never taken.
    serde_json::to_string(s).unwrap_or_default()
}

impl TraceEvent {
    /// One JSON object with sequence number `seq`.
    #[must_use]
    pub fn to_json(&self, seq: usize) -> String {
        match self {
            Self::Sip { from, to, msg, hop, retransmission } => {
                let mut s = format!(
                    "{{\"seq\":{seq},\"kind\":\"sip\",\"from\":{},\"to\":{},\"msg\":{},\"hop\":{}",
                    json_str(from),
                    json_str(to),
                    json_str(msg),
                    json_str(hop)
                );
                if *retransmission {
                    s.push_str(",\"retransmission\":true");
                }
                s.push('}');
                s
            }
            Self::Connect { from, to, hop, trigger, reuse } => format!(
                "{{\"seq\":{seq},\"kind\":\"connect\",\"from\":{},\"to\":{},\"hop\":{},\"trigger\":{},\"reuse\":{reuse}}}",
                json_str(from),
                json_str(to),
                json_str(hop),
                json_str(trigger)
            ),
            Self::Msrp { from, to, hop, msg, bytes } => format!(
                "{{\"seq\":{seq},\"kind\":\"msrp\",\"from\":{},\"to\":{},\"hop\":{},\"msg\":{},\"bytes\":{bytes}}}",
                json_str(from),
                json_str(to),
                json_str(hop),
                json_str(msg)
            ),
            Self::Submit { at, bytes, crc32 } => {
                format!("{{\"seq\":{seq},\"kind\":\"submit\",\"at\":{},\"bytes\":{bytes},\"crc32\":\"{crc32:08x}\"}}", json_str(at))
            }
            Self::Deliver { at, bytes, crc32 } => {
                format!("{{\"seq\":{seq},\"kind\":\"deliver\",\"at\":{},\"bytes\":{bytes},\"crc32\":\"{crc32:08x}\"}}", json_str(at))
            }
            Self::NonCpm { at, format, parts } => format!(
                "{{\"seq\":{seq},\"kind\":\"noncpm\",\"at\":{},\"format\":{},\"parts\":{parts}}}",
                json_str(at),
                json_str(format)
            ),
            Self::Close { hop } => format!("{{\"seq\":{seq},\"kind\":\"close\",\"hop\":{}}}", json_str(hop)),
        }
    }
}

/// The JSON trigger name of the scenario schema.
#[must_use]
pub const fn trigger_name(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::OnSuccessResponse => "200",
        Trigger::OnAck => "ACK",
        Trigger::OnFirstSend => "SEND",
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`).
#[must_use]
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        // The CRC-32 "check" value of "123456789" (zlib, IEEE 802.3).
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn json_escapes_strings() {
        let event = TraceEvent::Close { hop: "L\"1\\\n".to_owned() };
        let json = event.to_json(3);
        assert_eq!(json, r#"{"seq":3,"kind":"close","hop":"L\"1\\\n"}"#);
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(parsed["hop"], "L\"1\\\n");
        let event = TraceEvent::Sip {
            from: "A".into(),
            to: "PF-A".into(),
            msg: "INVITE".into(),
            hop: "L1".into(),
            retransmission: true,
        };
        assert_eq!(
            event.to_json(0),
            r#"{"seq":0,"kind":"sip","from":"A","to":"PF-A","msg":"INVITE","hop":"L1","retransmission":true}"#
        );
    }
}
