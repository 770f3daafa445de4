//! SMS through SMPP v3.4: `submit_sm` PDUs (SMPP v3.4 s.4.4.1) with GSM
//! 7-bit or UCS-2 text, concatenated with a User Data Header (3GPP TS
//! 23.040 s.9.2.3.24.1), and the `submit_sm_resp` status mapped back.

use bytes::{BufMut, Bytes, BytesMut};

use super::identity::{self, Identity};
use super::{gsm7, AckError, Content, ConversionConfig, ConvertError, Gsm7Packing, NonCpmMessage, NonTextRule};
use super::{STATUS_OK, STATUS_PERMANENT, STATUS_TEMPORARY};

/// SMPP v3.4 s.5.1.2.1: `submit_sm`.
pub const SUBMIT_SM: u32 = 0x0000_0004;
/// SMPP v3.4 s.5.1.2.1: `submit_sm_resp`.
pub const SUBMIT_SM_RESP: u32 = 0x8000_0004;
/// SMPP v3.4 s.5.1.2.1: `generic_nack`.
pub const GENERIC_NACK: u32 = 0x8000_0000;
/// SMPP v3.4 s.5.1.3: `ESME_RMSGQFUL`, "Message Queue Full".
pub const ESME_RMSGQFUL: u32 = 0x0000_0014;
/// SMPP v3.4 s.5.1.3: `ESME_RTHROTTLED`, "Throttling error (ESME has exceeded allowed message limits)".
pub const ESME_RTHROTTLED: u32 = 0x0000_0058;

/// Septets in one SMS without a UDH (3GPP TS 23.040 s.9.2.3.16: 140 octets = 160 septets).
pub const GSM7_SINGLE: usize = 160;
/// Septets in one segment after the 6-octet concatenation UDH (7 septets with its fill bit).
pub const GSM7_SEGMENT: usize = 153;
/// UCS-2 code units in one SMS without a UDH (140 octets).
pub const UCS2_SINGLE: usize = 70;
/// UCS-2 code units in one segment after the 6-octet UDH ((140 - 6) / 2).
pub const UCS2_SEGMENT: usize = 67;

/// The alphabet of an SMS text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmsCoding {
    /// GSM 7-bit default alphabet (`data_coding` 0x00, SMPP v3.4 s.5.2.19).
    Gsm7,
    /// UCS-2 (`data_coding` 0x08), sent as UTF-16BE so that characters
    /// outside the BMP travel as surrogate pairs.
    Ucs2,
}

impl SmsCoding {
    /// SMPP v3.4 s.5.2.19 `data_coding`: 0x00 "SMSC Default Alphabet", 0x08 "UCS2 (ISO/IEC-10646)".
    #[must_use]
    pub const fn data_coding(self) -> u8 {
        match self {
            Self::Gsm7 => 0x00,
            Self::Ucs2 => 0x08,
        }
    }
}

/// A text cut into SMS segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsText {
    /// The alphabet.
    pub coding: SmsCoding,
    /// Each segment's user data without the UDH: unpacked septets (GSM
    /// 7-bit, escapes included) or UTF-16BE octets (UCS-2). One segment
    /// means no concatenation.
    pub segments: Vec<Vec<u8>>,
}

/// Chooses the alphabet and cuts `text` into segments: GSM 7-bit when every
/// character is in the default alphabet or its extension table, else UCS-2;
/// one SMS when it fits (160 septets, 70 units), else segments of 153
/// septets or 67 units that never split an escape sequence or a surrogate pair.
///
/// # Errors
/// [`ConvertError::TooLong`] when more than `max_segments` segments are needed.
pub fn segment_text(text: &str, max_segments: u8) -> Result<SmsText, ConvertError> {
    let (coding, units, single, per_segment) = if gsm7::encode(text).is_some() {
        // Each character's septets (one, or ESC and one) stay together: 3GPP TS 23.038
        // s.6.2.1.1 makes ESC + septet one character, so a segment must not end on ESC.
        let groups = text.chars().filter_map(gsm7::encode_char).map(|(s, n)| s.get(..n).unwrap_or(&[]).to_vec());
        (SmsCoding::Gsm7, groups.collect::<Vec<_>>(), GSM7_SINGLE, GSM7_SEGMENT)
    } else {
        // A character outside the BMP is a surrogate pair: two units that stay in one segment
        // (a lone surrogate is not a character, RFC 2781 s.2.2).
        let groups = text.chars().map(|c| {
            let mut buf = [0u16; 2];
            c.encode_utf16(&mut buf).iter().flat_map(|u| u.to_be_bytes()).collect::<Vec<u8>>()
        });
        (SmsCoding::Ucs2, groups.collect::<Vec<_>>(), UCS2_SINGLE, UCS2_SEGMENT)
    };
    // Units per group: septets, or UTF-16 code units (two octets each).
    let unit = |g: &Vec<u8>| if coding == SmsCoding::Gsm7 { g.len() } else { g.len() / 2 };
    let total: usize = units.iter().map(unit).sum();
    let mut segments = vec![Vec::new()];
    if total <= single {
        segments = vec![units.concat()];
    } else {
        let mut used = 0;
        for group in &units {
            if used + unit(group) > per_segment {
                segments.push(Vec::new());
                used = 0;
            }
            used += unit(group);
            if let Some(last) = segments.last_mut() {
                last.extend_from_slice(group);
            }
        }
    }
    if segments.len() > usize::from(max_segments) {
        return Err(ConvertError::TooLong { needed: segments.len(), max: max_segments });
    }
    Ok(SmsText { coding, segments })
}

/// An SMPP address: `addr_ton`, `addr_npi`, `addr` (SMPP v3.4 s.5.2.5, s.5.2.6).
#[derive(Debug)]
struct Address {
    ton: u8,
    npi: u8,
    addr: String,
}

/// SMPP v3.4 s.5.2.5 TON: 0 Unknown, 1 International, 5 Alphanumeric.
const TON_UNKNOWN: u8 = 0x00;
const TON_INTERNATIONAL: u8 = 0x01;
const TON_ALPHANUMERIC: u8 = 0x05;
/// SMPP v3.4 s.5.2.6 NPI: 0 Unknown, 1 ISDN (E163/E164).
const NPI_UNKNOWN: u8 = 0x00;
const NPI_ISDN: u8 = 0x01;

fn number_address(id: &Identity) -> Option<Address> {
    match id {
        Identity::Global(digits) => Some(Address { ton: TON_INTERNATIONAL, npi: NPI_ISDN, addr: digits.clone() }),
        Identity::Local(digits) => Some(Address { ton: TON_UNKNOWN, npi: NPI_ISDN, addr: digits.clone() }),
        Identity::Named { .. } => None,
    }
}

fn source_address(uri: &str) -> Result<Address, ConvertError> {
    let id = identity::parse(uri).ok_or(ConvertError::Sender { reason: "not a sip, tel, im or mailto URI" })?;
    if let Some(a) = number_address(&id) {
        return Ok(a);
    }
    let Identity::Named { user, .. } = id else { return Err(ConvertError::Sender { reason: "no user" }) };
    // 3GPP TS 23.040 s.9.1.2.5: an alphanumeric originating address is at most 11
    // GSM 7-bit characters; plain ASCII letters and digits keep it portable.
    if user.len() <= 11 && user.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ') {
        Ok(Address { ton: TON_ALPHANUMERIC, npi: NPI_UNKNOWN, addr: user })
    } else {
        Err(ConvertError::Sender { reason: "neither a number nor an alphanumeric name of at most 11 characters" })
    }
}

fn destination_address(uri: &str) -> Result<Address, ConvertError> {
    let id = identity::parse(uri).ok_or(ConvertError::Recipient { reason: "not a sip, tel, im or mailto URI" })?;
    number_address(&id).ok_or(ConvertError::Recipient { reason: "SMS needs a telephone number" })
}

/// SMPP v3.4 s.5.2.12 esm_class bit 6: "UDHI Indicator (only relevant for MT short messages)".
const ESM_UDHI: u8 = 0x40;
/// The largest `sequence_number` (SMPP v3.4 s.3.2: "range 0x00000001 to 0x7FFFFFFF").
const MAX_SEQUENCE: u32 = 0x7FFF_FFFF;

fn sequence(first: u32, index: usize) -> u32 {
    let base = u64::from(first.clamp(1, MAX_SEQUENCE) - 1);
    let index = u64::try_from(index).unwrap_or(0);
    u32::try_from((base + index) % u64::from(MAX_SEQUENCE) + 1).unwrap_or(1)
}

fn put_cstring(out: &mut BytesMut, s: &str, max: usize) {
    // SMPP v3.4 s.3.1: "C-Octet String ... terminated with a NULL octet"; max counts the NULL.
    let bytes: Vec<u8> = s.bytes().filter(|&b| b != 0).take(max.saturating_sub(1)).collect();
    out.put_slice(&bytes);
    out.put_u8(0);
}

struct SubmitSm<'a> {
    sequence_number: u32,
    service_type: &'a str,
    source: &'a Address,
    destination: &'a Address,
    esm_class: u8,
    registered_delivery: u8,
    data_coding: u8,
    short_message: &'a [u8],
}

impl SubmitSm<'_> {
    /// SMPP v3.4 s.4.4.1 "submit_sm" PDU, the fields in the table's order.
    fn encode(&self) -> Bytes {
        let mut body = BytesMut::with_capacity(64 + self.short_message.len());
        put_cstring(&mut body, self.service_type, 6); // service_type, Var. max 6
        body.put_u8(self.source.ton);
        body.put_u8(self.source.npi);
        put_cstring(&mut body, &self.source.addr, 21); // source_addr, Var. max 21
        body.put_u8(self.destination.ton);
        body.put_u8(self.destination.npi);
        put_cstring(&mut body, &self.destination.addr, 21); // destination_addr, Var. max 21
        body.put_u8(self.esm_class);
        body.put_u8(0); // protocol_id
        body.put_u8(0); // priority_flag
        body.put_u8(0); // schedule_delivery_time: NULL, "immediate delivery"
        body.put_u8(0); // validity_period: NULL, "SMSC default validity period"
        body.put_u8(self.registered_delivery);
        body.put_u8(0); // replace_if_present_flag: "Don't replace"
        body.put_u8(self.data_coding);
        body.put_u8(0); // sm_default_msg_id: not a canned message
                        // SMPP v3.4 s.4.4.1: sm_length "Length in octets of the short_message user data" (0-254);
                        // the segment sizes keep it at 159 at most.
        let sm = self.short_message.get(..254).unwrap_or(self.short_message);
        body.put_u8(u8::try_from(sm.len()).unwrap_or(254));
        body.put_slice(sm);
        let mut pdu = BytesMut::with_capacity(16 + body.len());
        // SMPP v3.4 s.3.2: command_length "defines the total octet length of the SMPP PDU
        // packet including the length field".
        pdu.put_u32(u32::try_from(16 + body.len()).unwrap_or(u32::MAX));
        pdu.put_u32(SUBMIT_SM);
        pdu.put_u32(0); // command_status: "unused and must be set to NULL" in a request
        pdu.put_u32(self.sequence_number);
        pdu.put_slice(&body);
        pdu.freeze()
    }
}

/// The text to send: the content, or the link text for non-text content.
fn sms_text(message: &NonCpmMessage, content: &Content, config: &ConversionConfig) -> Result<String, ConvertError> {
    if let Some(text) = content.text()? {
        return Ok(text);
    }
    match &config.non_text {
        NonTextRule::LinkText { template } => {
            Ok(template.replace("{id}", &format!("{:016x}", message.id)).replace("{type}", &content.media.essence))
        }
        _ => Err(ConvertError::NotText),
    }
}

pub(super) fn convert(
    message: &NonCpmMessage,
    content: &Content,
    config: &ConversionConfig,
) -> Result<Vec<Bytes>, ConvertError> {
    let sms = &config.sms;
    if sms.max_segments == 0 || sms.service_type.len() > 5 || !sms.service_type.is_ascii() {
        return Err(ConvertError::Config { reason: "SMS max_segments 0 or service_type not 0-5 ASCII characters" });
    }
    let text = sms_text(message, content, config)?;
    let source = source_address(&message.sender)?;
    let destination = destination_address(&message.recipient)?;
    let split = segment_text(&text, sms.max_segments)?;
    let total = split.segments.len();
    // 3GPP TS 23.040 s.9.2.3.24.1: the reference "shall remain constant for every short
    // message which makes up a particular concatenated short message".
    let reference = message.id.to_le_bytes()[0];
    let mut parts = Vec::with_capacity(total);
    for (index, segment) in split.segments.iter().enumerate() {
        let udh = (total > 1).then(|| {
            // UDHL 5; IEI 0x00 "Concatenated short messages, 8-bit reference number";
            // IEDL 3: reference, "Maximum number of short messages", "Sequence number" (from 1).
            let [total, part] = [total, index + 1].map(|n| u8::try_from(n).unwrap_or(u8::MAX));
            [0x05, 0x00, 0x03, reference, total, part]
        });
        let mut user_data = Vec::with_capacity(160);
        if let Some(udh) = udh {
            user_data.extend_from_slice(&udh);
        }
        match (split.coding, sms.packing) {
            (SmsCoding::Gsm7, Gsm7Packing::Packed) => {
                // 3GPP TS 23.040 s.9.2.3.24: "the first septet of the SM shall start on a
                // septet boundary": fill bits after a UDH of `n` octets.
                let udh_bits = 8 * udh.map_or(0, |u| u.len());
                let fill = u8::try_from((7 - udh_bits % 7) % 7).unwrap_or(0);
                let mut packed = gsm7::pack(segment, fill);
                // 3GPP TS 23.038 s.6.1.2.3.1: with 7 spare bits at the end "the carriage
                // return or <CR> character ... shall be used for padding", not an '@'.
                if (usize::from(fill) + 7 * segment.len()) % 8 == 1 {
                    if let Some(last) = packed.last_mut() {
                        *last |= 0x0D << 1;
                    }
                }
                user_data.extend_from_slice(&packed);
            }
            _ => user_data.extend_from_slice(segment),
        }
        parts.push(
            SubmitSm {
                sequence_number: sequence(message.sms_first_sequence, index),
                service_type: &sms.service_type,
                source: &source,
                destination: &destination,
                esm_class: if udh.is_some() { ESM_UDHI } else { 0 },
                registered_delivery: sms.registered_delivery,
                data_coding: split.coding.data_coding(),
                short_message: &user_data,
            }
            .encode(),
        );
    }
    Ok(parts)
}

/// A `submit_sm_resp` (or the `generic_nack` an SMSC sends for a PDU it
/// could not read), SMPP v3.4 s.4.4.2 and s.4.3.1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmitSmResp {
    /// `command_id`: [`SUBMIT_SM_RESP`] or [`GENERIC_NACK`].
    pub command_id: u32,
    /// `command_status` (SMPP v3.4 s.5.1.3).
    pub command_status: u32,
    /// `sequence_number`: the `submit_sm` it answers.
    pub sequence_number: u32,
    /// `message_id` (absent when the status is not 0).
    pub message_id: Option<String>,
}

/// Reads one whole `submit_sm_resp` or `generic_nack` PDU.
///
/// # Errors
/// [`AckError`] when the bytes are not exactly one such PDU.
pub fn parse_submit_sm_resp(pdu: &[u8]) -> Result<SubmitSmResp, AckError> {
    let word = |at: usize| {
        pdu.get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
            .ok_or(AckError::Truncated { at: pdu.len() })
    };
    let length = word(0)?;
    let (command_id, command_status, sequence_number) = (word(4)?, word(8)?, word(12)?);
    // SMPP v3.4 s.3.2: command_length includes the header; one PDU, nothing after it.
    if usize::try_from(length).ok() != Some(pdu.len()) {
        return Err(AckError::Length { length, actual: pdu.len() });
    }
    let body = pdu.get(16..).unwrap_or_default();
    let message_id = match command_id {
        // SMPP v3.4 s.4.3.1: generic_nack has no body.
        GENERIC_NACK if body.is_empty() => None,
        GENERIC_NACK => return Err(AckError::Field { at: 16, what: "generic_nack with a body" }),
        // SMPP v3.4 s.4.4.2: "The submit_sm_resp PDU Body is not returned if the
        // command_status field contains a non-zero value."
        SUBMIT_SM_RESP if body.is_empty() => None,
        SUBMIT_SM_RESP => {
            // message_id: C-Octet String, Var. max 65, and nothing after it.
            match body.iter().position(|&b| b == 0) {
                Some(nul) if nul + 1 == body.len() && nul < 65 => {
                    Some(String::from_utf8_lossy(body.get(..nul).unwrap_or_default()).into_owned())
                }
                _ => {
                    return Err(AckError::Field { at: 16, what: "message_id is not one C-Octet String of 1-65 octets" })
                }
            }
        }
        other => return Err(AckError::Command { command_id: other }),
    };
    Ok(SubmitSmResp { command_id, command_status, sequence_number, message_id })
}

/// The REPORT status for an SMPP `command_status`.
///
/// 0 (`ESME_ROK`) is 200. `ESME_RTHROTTLED` and `ESME_RMSGQFUL` say the SMSC
/// is busy, not that the message is bad: 408 (RFC 4975 s.10.4, treated "in
/// the same manner as ... a local timeout", so the sender may try again).
/// Every other error is 403 (RFC 4975 s.10.3: "The sender should not try
/// the request again").
#[must_use]
pub const fn smpp_status(command_status: u32) -> u16 {
    match command_status {
        0 => STATUS_OK,
        ESME_RTHROTTLED | ESME_RMSGQFUL => STATUS_TEMPORARY,
        _ => STATUS_PERMANENT,
    }
}

/// The REPORT status for one `submit_sm_resp` (or `generic_nack`) PDU: see
/// [`smpp_status`]. For a segmented message, fold the statuses of all
/// segments with [`super::combine_statuses`].
///
/// # Errors
/// [`AckError`] when the bytes are not one such PDU.
pub fn sms_ack_status(pdu: &[u8]) -> Result<u16, AckError> {
    parse_submit_sm_resp(pdu).map(|r| smpp_status(r.command_status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_wraps() {
        assert_eq!(sequence(0, 0), 1);
        assert_eq!(sequence(1, 2), 3);
        assert_eq!(sequence(MAX_SEQUENCE, 0), MAX_SEQUENCE);
        assert_eq!(sequence(MAX_SEQUENCE, 1), 1);
        assert_eq!(sequence(u32::MAX, 1), 1);
    }

    #[test]
    fn statuses() {
        assert_eq!(smpp_status(0), 200);
        assert_eq!(smpp_status(ESME_RTHROTTLED), 408);
        assert_eq!(smpp_status(ESME_RMSGQFUL), 408);
        assert_eq!(smpp_status(0x0B), 403); // ESME_RINVDSTADR
    }
}
