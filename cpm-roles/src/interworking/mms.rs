//! MMS: an `m-send-req` PDU (OMA-TS-MMS_ENC-V1_3 s.6.1.1) with the content
//! as the one part of a WSP multipart body (WAP-230-WSP s.8.5), and the
//! `m-send-conf` (s.6.1.2) `X-Mms-Response-Status` mapped back.

use bytes::{BufMut, Bytes, BytesMut};

use super::identity::{self, Identity};
use super::media::{is_token, MediaType};
use super::{AckError, Content, ConversionConfig, ConvertError, NonCpmMessage};
use super::{STATUS_OK, STATUS_PERMANENT, STATUS_TEMPORARY};

// OMA-TS-MMS_ENC-V1_3 s.7.4 Table 25 "Field Name Assignments" (sent with the high bit set).
const H_CONTENT_TYPE: u8 = 0x84;
const H_DATE: u8 = 0x85;
const H_DELIVERY_REPORT: u8 = 0x86;
const H_FROM: u8 = 0x89;
const H_MESSAGE_TYPE: u8 = 0x8C;
const H_MMS_VERSION: u8 = 0x8D;
const H_RESPONSE_STATUS: u8 = 0x92;
const H_SUBJECT: u8 = 0x96;
const H_TO: u8 = 0x97;
const H_TRANSACTION_ID: u8 = 0x98;
/// OMA-TS-MMS_ENC-V1_3 s.7.3.30: m-send-req = 128, m-send-conf = 129.
const M_SEND_REQ: u8 = 0x80;
const M_SEND_CONF: u8 = 0x81;
/// OMA-TS-MMS_ENC-V1_3 s.7.3.34: MMS-Version 1.2 = major 1 (bits 6-4), minor 2, as a Short-integer.
const VERSION_1_2: u8 = 0x92;
/// WAP-230 Appendix A Table 40: application/vnd.wap.multipart.mixed = 0x23, as a Short-integer.
const MULTIPART_MIXED: u8 = 0xA3;
/// WAP-230 Table 40 "Content-Location" = 0x0E (part header), as a Short-integer.
const PART_CONTENT_LOCATION: u8 = 0x8E;
/// WAP-230 Table 38: the typed parameter Charset = 0x01.
const PARAM_CHARSET: u8 = 0x81;

/// WAP-230 Appendix A Table 40 assigned numbers of the media types an MMS
/// part commonly has; any other is sent as text (Extension-media).
const WELL_KNOWN_MEDIA: [(&str, u8); 9] = [
    ("text/html", 0x02),
    ("text/plain", 0x03),
    ("text/x-vcalendar", 0x06),
    ("text/x-vcard", 0x07),
    ("image/gif", 0x1D),
    ("image/jpeg", 0x1E),
    ("image/tiff", 0x1F),
    ("image/png", 0x20),
    ("image/vnd.wap.wbmp", 0x21),
];

/// IANA MIBenum values (WAP-230 Appendix A Table 42) that fit a Short-integer.
const WELL_KNOWN_CHARSETS: [(&str, u8); 4] = [("us-ascii", 3), ("iso-8859-1", 4), ("latin1", 4), ("utf-8", 106)];

/// WAP-230 s.8.1.2 uintvar: 7 bits per octet, most significant first, the
/// continue bit set on all but the last.
fn put_uintvar(out: &mut BytesMut, mut n: usize) {
    const MAX: usize = 10;
    let mut octets = [0u8; MAX];
    let mut i = MAX;
    loop {
        i -= 1;
        if let Some(o) = octets.get_mut(i) {
            *o = u8::try_from(n & 0x7F).unwrap_or(0) | if i == MAX - 1 { 0 } else { 0x80 };
        }
        n >>= 7;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.put_slice(octets.get(i..).unwrap_or_default());
}

/// WAP-230 s.8.4.2.2 Value-length: Short-length (0-30) or Length-quote (31) + uintvar.
fn put_value_length(out: &mut BytesMut, n: usize) {
    match u8::try_from(n) {
        Ok(short) if short <= 30 => out.put_u8(short),
        _ => {
            out.put_u8(31);
            put_uintvar(out, n);
        }
    }
}

/// WAP-230 s.8.4.2.1 Text-string: `[Quote] *TEXT End-of-string`; the Quote
/// (127) comes first "if the first character in the TEXT is in the range of
/// 128-255". NULs, which would end the string, are dropped.
fn text_string(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    if s.as_bytes().first().is_some_and(|&b| b >= 0x80) {
        out.push(0x7F);
    }
    out.extend(s.bytes().filter(|&b| b != 0));
    out.push(0);
    out
}

/// OMA-TS-MMS_ENC-V1_3 s.7.2.9 Encoded-string-value = Text-string |
/// Value-length Char-set Text-string; UTF-8 (MIBenum 106 = Short-integer
/// 0xEA) when the text is not ASCII.
fn encoded_string(s: &str) -> Vec<u8> {
    if s.is_ascii() {
        return text_string(s);
    }
    let text = text_string(s);
    let mut out = BytesMut::with_capacity(text.len() + 4);
    put_value_length(&mut out, text.len() + 1);
    out.put_u8(0xEA);
    out.put_slice(&text);
    out.to_vec()
}

/// WAP-230 s.8.4.2.1 Long-integer: Short-length, then 1-30 big-endian octets.
fn long_integer(n: u64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take(7).take_while(|&&b| b == 0).count();
    let digits = bytes.get(skip..).unwrap_or(&[0]);
    let mut out = Vec::with_capacity(9);
    out.push(u8::try_from(digits.len()).unwrap_or(8));
    out.extend_from_slice(digits);
    out
}

/// OMA-TS-MMS_ENC-V1_3 s.8 "Address Encoding": a number as
/// `global-phone-number "/TYPE=PLMN"`, a name as an RFC 2822 addr-spec.
fn address(id: &Identity) -> Option<String> {
    match id {
        Identity::Global(digits) => Some(format!("+{digits}/TYPE=PLMN")),
        Identity::Local(digits) => Some(format!("{digits}/TYPE=PLMN")),
        Identity::Named { user, host } => {
            let dot_atom = |s: &str| {
                !s.is_empty()
                    && s.split('.').all(|p| {
                        !p.is_empty()
                            && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b))
                    })
            };
            (dot_atom(user) && dot_atom(host)).then(|| format!("{user}@{host}"))
        }
    }
}

/// The part's Content-Type value (WAP-230 s.8.4.2.24): Constrained-media
/// when it has no parameter, else Content-general-form (Value-length
/// Media-type *Parameter).
fn content_type_value(media: &MediaType) -> Vec<u8> {
    let known = WELL_KNOWN_MEDIA.iter().find(|(name, _)| media.is(name)).map(|&(_, code)| code);
    let mut media_type = BytesMut::new();
    match known {
        Some(code) => media_type.put_u8(0x80 | code),
        // Extension-media = *TEXT End-of-string (the essence is a token: ASCII, no quote).
        None => media_type.put_slice(&text_string(&media.essence)),
    }
    if media.params.is_empty() {
        return media_type.to_vec();
    }
    for (name, value) in &media.params {
        let charset = WELL_KNOWN_CHARSETS.iter().find(|(c, _)| value.eq_ignore_ascii_case(c)).map(|&(_, n)| n);
        match charset {
            // Typed-parameter: Well-known-parameter-token Typed-value (Well-known-charset).
            Some(mib) if name == "charset" => {
                media_type.put_u8(PARAM_CHARSET);
                media_type.put_u8(0x80 | mib);
            }
            // Untyped-parameter = Token-text Untyped-value; Text-value = No-value |
            // Token-text | Quoted-string (a quote, the text, End-of-string).
            _ => {
                media_type.put_slice(&text_string(name));
                if value.is_empty() {
                    media_type.put_u8(0);
                } else if is_token(value) {
                    media_type.put_slice(&text_string(value));
                } else {
                    media_type.put_u8(b'"');
                    media_type.put_slice(&text_string(value));
                }
            }
        }
    }
    let mut out = BytesMut::with_capacity(media_type.len() + 3);
    put_value_length(&mut out, media_type.len());
    out.put_slice(&media_type);
    out.to_vec()
}

fn file_name(media: &MediaType) -> &'static str {
    match media.essence.as_str() {
        "text/plain" => "content.txt",
        "image/jpeg" => "content.jpg",
        "image/png" => "content.png",
        "image/gif" => "content.gif",
        _ => "content",
    }
}

pub(super) fn convert(
    message: &NonCpmMessage,
    content: &Content,
    config: &ConversionConfig,
) -> Result<Bytes, ConvertError> {
    let from = identity::parse(&message.sender)
        .as_ref()
        .and_then(address)
        .ok_or(ConvertError::Sender { reason: "no MMS address form (OMA-TS-MMS_ENC s.8)" })?;
    let to = identity::parse(&message.recipient)
        .as_ref()
        .and_then(address)
        .ok_or(ConvertError::Recipient { reason: "no MMS address form (OMA-TS-MMS_ENC s.8)" })?;

    let mut pdu = BytesMut::with_capacity(content.body.len() + 256);
    // OMA-TS-MMS_ENC-V1_3 s.6.1.1 Table 1 order; s.7.1: "X-Mms-Message-Type,
    // X-Mms-Transaction-ID and X-Mms-MMS-Version ... MUST be at the beginning of the
    // message headers, in that order".
    pdu.put_slice(&[H_MESSAGE_TYPE, M_SEND_REQ]);
    pdu.put_u8(H_TRANSACTION_ID);
    pdu.put_slice(&text_string(&format!("{:016x}", message.id)));
    pdu.put_slice(&[H_MMS_VERSION, VERSION_1_2]);
    // Date-value = Long-integer, "in seconds from 1970-01-01, 00:00:00 GMT" (s.7.3.11).
    pdu.put_u8(H_DATE);
    pdu.put_slice(&long_integer(message.submitted_at));
    // From-value = Value-length (Address-present-token Encoded-string-value | Insert-address-token) (s.7.3.20).
    let from_value = encoded_string(&from);
    pdu.put_u8(H_FROM);
    put_value_length(&mut pdu, from_value.len() + 1);
    pdu.put_u8(0x80); // Address-present-token
    pdu.put_slice(&from_value);
    pdu.put_u8(H_TO);
    pdu.put_slice(&encoded_string(&to));
    if let Some(subject) = &content.subject {
        pdu.put_u8(H_SUBJECT);
        pdu.put_slice(&encoded_string(subject));
    }
    if config.mms.delivery_report {
        pdu.put_slice(&[H_DELIVERY_REPORT, 0x80]); // Yes = <Octet 128> (s.7.3.13)
    }
    // s.6.1.1: "The Content-Type header field MUST be the last header field" before the body.
    pdu.put_slice(&[H_CONTENT_TYPE, MULTIPART_MIXED]);

    // WAP-230 s.8.5.2: nEntries, then per entry HeadersLen, DataLen, ContentType, Headers, Data.
    let content_type = content_type_value(&content.media);
    let mut headers = vec![PART_CONTENT_LOCATION];
    headers.extend_from_slice(&text_string(file_name(&content.media)));
    put_uintvar(&mut pdu, 1);
    put_uintvar(&mut pdu, content_type.len() + headers.len());
    put_uintvar(&mut pdu, content.body.len());
    pdu.put_slice(&content_type);
    pdu.put_slice(&headers);
    pdu.put_slice(&content.body);
    Ok(pdu.freeze())
}

/// The fields of an `m-send-conf` the IWF needs (OMA-TS-MMS_ENC-V1_3 s.6.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MSendConf {
    /// `X-Mms-Response-Status` (s.7.3.48), the Short-integer octet (0x80 = Ok).
    pub response_status: u8,
    /// `X-Mms-Transaction-ID`, when present.
    pub transaction_id: Option<String>,
    /// `Message-ID`, when present.
    pub message_id: Option<String>,
}

/// One header value by its first octet (WAP-230 s.8.4.1.2): 0-30
/// Short-length and data, 31 Length-quote uintvar and data, 32-127 a text
/// up to End-of-string, 128-255 a Short-integer. Returns (start, end) of
/// the value's octets.
fn value_span(b: &[u8], at: usize) -> Result<(usize, usize), AckError> {
    let first = *b.get(at).ok_or(AckError::Truncated { at })?;
    let (start, len) = match first {
        0..=30 => (at + 1, usize::from(first)),
        31 => {
            let mut n = 0usize;
            let mut pos = at + 1;
            loop {
                let o = *b.get(pos).ok_or(AckError::Truncated { at: pos })?;
                pos += 1;
                n = n.checked_mul(128).ok_or(AckError::Field { at, what: "uintvar overflow" })? | usize::from(o & 0x7F);
                if o & 0x80 == 0 {
                    break;
                }
                if pos - at > 5 {
                    return Err(AckError::Field { at, what: "uintvar longer than 5 octets" });
                }
            }
            (pos, n)
        }
        32..=127 => {
            let nul =
                b.get(at..).and_then(|t| t.iter().position(|&x| x == 0)).ok_or(AckError::Truncated { at: b.len() })?;
            return Ok((at, at + nul + 1));
        }
        _ => return Ok((at, at + 1)),
    };
    let end = start.checked_add(len).filter(|&e| e <= b.len()).ok_or(AckError::Truncated { at: b.len() })?;
    Ok((start, end))
}

fn text_value(b: &[u8], start: usize, end: usize) -> String {
    let t = b.get(start..end).unwrap_or_default();
    let t = t.strip_suffix(&[0]).unwrap_or(t);
    let t = t.strip_prefix(&[0x7F]).unwrap_or(t);
    String::from_utf8_lossy(t).into_owned()
}

/// Reads an `m-send-conf` PDU.
///
/// # Errors
/// [`AckError`] when the bytes are not an `m-send-conf` with an
/// `X-Mms-Response-Status`.
pub fn parse_m_send_conf(pdu: &[u8]) -> Result<MSendConf, AckError> {
    // OMA-TS-MMS_ENC-V1_3 s.7.1: X-Mms-Message-Type MUST be the first header.
    match pdu {
        [H_MESSAGE_TYPE, M_SEND_CONF, ..] => {}
        [H_MESSAGE_TYPE, other, ..] => return Err(AckError::MessageType { message_type: *other }),
        _ => return Err(AckError::MessageType { message_type: 0 }),
    }
    let mut conf = MSendConf { response_status: 0, transaction_id: None, message_id: None };
    let mut status = None;
    let mut pos = 2;
    while let Some(&field) = pdu.get(pos) {
        if field >= 0x80 {
            let (start, end) = value_span(pdu, pos + 1)?;
            match field {
                H_RESPONSE_STATUS => match pdu.get(start) {
                    Some(&s) if s >= 0x80 && end == start + 1 => status = Some(s),
                    _ => {
                        return Err(AckError::Field { at: start, what: "X-Mms-Response-Status is not a Short-integer" })
                    }
                },
                H_TRANSACTION_ID => conf.transaction_id = Some(text_value(pdu, start, end)),
                0x8B => conf.message_id = Some(text_value(pdu, start, end)), // Message-ID
                _ => {}
            }
            pos = end;
        } else if (32..127).contains(&field) {
            // Application-header = Token-text Application-specific-value (WAP-230 s.8.4.2.6).
            let (_, name_end) = value_span(pdu, pos)?;
            let (_, value_end) = value_span(pdu, name_end)?;
            pos = value_end;
        } else {
            return Err(AckError::Field { at: pos, what: "neither a field name nor Token-text" });
        }
    }
    conf.response_status = status.ok_or(AckError::NoResponseStatus)?;
    Ok(conf)
}

/// The REPORT status for an `X-Mms-Response-Status` (OMA-TS-MMS_ENC-V1_3
/// s.7.3.48): Ok (0x80) is 200; the transient range 0xC0-0xDF and the
/// obsolete Error-network-problem (0x86) are 408 (RFC 4975 s.10.4, a retry
/// may pass); the permanent range 0xE0-0xFF and every other value (s.7.3.48
/// says an unknown value is treated as Error-permanent-failure) are 403
/// (RFC 4975 s.10.3).
#[must_use]
pub const fn mms_response_status(response_status: u8) -> u16 {
    match response_status {
        0x80 => STATUS_OK,
        0x86 | 0xC0..=0xDF => STATUS_TEMPORARY,
        _ => STATUS_PERMANENT,
    }
}

/// The REPORT status for an `m-send-conf` PDU: see [`mms_response_status`].
///
/// # Errors
/// [`AckError`] when the bytes are not an `m-send-conf` with a status.
pub fn mms_conf_status(pdu: &[u8]) -> Result<u16, AckError> {
    parse_m_send_conf(pdu).map(|c| mms_response_status(c.response_status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uintvar() {
        // WAP-230 s.8.1.2 example: 0x87A5 = 1000 0111 1010 0101 -> 0x82 0x8F 0x25.
        let mut out = BytesMut::new();
        put_uintvar(&mut out, 0x87A5);
        assert_eq!(&out[..], [0x82, 0x8F, 0x25]);
        out.clear();
        put_uintvar(&mut out, 0);
        assert_eq!(&out[..], [0]);
        out.clear();
        put_uintvar(&mut out, 127);
        put_uintvar(&mut out, 128);
        assert_eq!(&out[..], [0x7F, 0x81, 0x00]);
    }

    #[test]
    fn long_integers() {
        assert_eq!(long_integer(0), [1, 0]);
        assert_eq!(long_integer(0x0102_0304), [4, 1, 2, 3, 4]);
    }

    #[test]
    fn statuses() {
        assert_eq!(mms_response_status(0x80), 200);
        assert_eq!(mms_response_status(0xC3), 408);
        assert_eq!(mms_response_status(0xE5), 403);
        assert_eq!(mms_response_status(0x81), 403);
    }
}
