//! Email: an RFC 5322 message with MIME (RFC 2045, RFC 2046, RFC 2047),
//! and the SMTP reply code mapped back.

use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;

use super::identity::{self, Identity};
use super::{Content, ConversionConfig, ConvertError, MailEnvelope, NonCpmMessage};
use super::{STATUS_OK, STATUS_PERMANENT, STATUS_TEMPORARY};

/// RFC 5322 s.2.1.1: "Each line of characters MUST be no more than 998
/// characters, and SHOULD be no more than 78 characters".
const MAX_LINE: usize = 998;
const FOLD_AT: usize = 78;
/// RFC 2045 s.6.8: "The encoded output stream must be represented in lines
/// of no more than 76 characters each."
const BASE64_LINE: usize = 76;
/// RFC 2047 s.2: "each line of a header field that contains one or more
/// 'encoded-word's is limited to 76 characters".
const ENCODED_LINE: usize = 76;
/// `=?UTF-8?B?` and `?=` around the encoded text.
const ENCODED_WORD_OVERHEAD: usize = 12;

/// RFC 5322 s.3.2.3 `atext`.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// RFC 5322 s.3.2.3 `dot-atom-text = 1*atext *("." 1*atext)`.
fn is_dot_atom(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(|p| !p.is_empty() && p.bytes().all(is_atext))
}

/// A domain name as in RFC 5321 s.4.1.2 `Domain` (letters, digits, hyphens).
fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// An `addr-spec` (RFC 5322 s.3.4.1) for an identity; `tel` numbers get
/// `domain` as their domain.
fn addr_spec(id: &Identity, domain: &str) -> Option<String> {
    let (local, host) = match id {
        Identity::Global(digits) => (format!("+{digits}"), domain.to_owned()),
        Identity::Local(digits) => (digits.clone(), domain.to_owned()),
        Identity::Named { user, host } => (user.clone(), host.clone()),
    };
    // RFC 5322 s.3.4.1: local-part = dot-atom / quoted-string; printable ASCII only here
    // (an internationalized address needs SMTPUTF8, RFC 6531, which a relay may lack).
    let local = if is_dot_atom(&local) {
        local
    } else if !local.is_empty() && local.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        let mut q = String::from("\"");
        for c in local.chars() {
            if c == '"' || c == '\\' {
                q.push('\\'); // RFC 5322 s.3.2.4 quoted-pair
            }
            q.push(c);
        }
        q.push('"');
        q
    } else {
        return None;
    };
    // RFC 5322 s.3.4.1: domain = dot-atom / domain-literal; an IPv4 or IPv6 host is a literal.
    let host = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        (!v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.'))
            .then(|| format!("[IPv6:{v6}]"))?
    } else if host.parse::<std::net::Ipv4Addr>().is_ok() {
        format!("[{host}]")
    } else if is_domain(&host) {
        host
    } else {
        return None;
    };
    Some(format!("{local}@{host}"))
}

/// Header text (unstructured or a phrase) as `encoded-word`s (RFC 2047
/// s.4.1, "B" encoding of UTF-8), separated by folding whitespace. Each word
/// holds whole characters (RFC 2047 s.5: "Each 'encoded-word' MUST represent
/// an integral number of characters"), and each line stays within 76
/// characters: the first after `used` characters (the field name and what
/// precedes the words), the next after the one folding space.
fn encoded_words(text: &str, used: usize) -> String {
    // Octets per word: whole base64 quanta (4 characters for 3 octets) in what is left.
    let octets = |used: usize| ENCODED_LINE.saturating_sub(used + ENCODED_WORD_OVERHEAD) / 4 * 3;
    let mut out = String::new();
    let mut chunk = String::new();
    let mut budget = octets(used).max(3);
    for c in text.chars() {
        if !chunk.is_empty() && chunk.len() + c.len_utf8() > budget {
            if !out.is_empty() {
                out.push_str("\r\n ");
            }
            let _ = write!(out, "=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes()));
            chunk.clear();
            budget = octets(1);
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        if !out.is_empty() {
            out.push_str("\r\n ");
        }
        let _ = write!(out, "=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes()));
    }
    out
}

/// Header text with control characters (CR, LF, ...) turned into spaces:
/// they cannot appear in a header field body (RFC 5322 s.2.2).
fn clean(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// `Subject` text (RFC 5322 s.3.6.5 unstructured): as is, folded at spaces,
/// when it is printable ASCII; else encoded-words (RFC 2047 s.5(1)). Text
/// that looks like an encoded-word is encoded too, so that a reader does not
/// decode it. `name_len` counts the field name, colon and space.
fn unstructured(text: &str, name_len: usize) -> String {
    let text = clean(text);
    let plain = text.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
        && !text.contains("=?")
        && text.split(' ').all(|w| w.len() + name_len + 1 < MAX_LINE);
    if !plain {
        return encoded_words(&text, name_len);
    }
    // RFC 5322 s.2.2.3: fold by inserting CRLF before whitespace.
    let mut out = String::with_capacity(text.len() + 8);
    let mut line = name_len;
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            if line + 1 + word.len() > FOLD_AT && line > name_len {
                out.push_str("\r\n");
                line = 0;
            }
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.len();
    }
    out
}

/// A display name as an RFC 5322 s.3.2.5 `phrase`: atoms, a quoted-string,
/// or encoded-words (RFC 2047 s.5(3)) when it is not ASCII.
fn phrase(name: &str, used: usize) -> String {
    let name = clean(name);
    let name = name.trim();
    if name.split(' ').all(|w| !w.is_empty() && w.bytes().all(is_atext)) && !name.contains("=?") {
        name.to_owned()
    } else if name.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) && !name.contains("=?") {
        let mut q = String::from("\"");
        for c in name.chars() {
            if c == '"' || c == '\\' {
                q.push('\\');
            }
            q.push(c);
        }
        q.push('"');
        q
    } else {
        encoded_words(name, used)
    }
}

/// RFC 5322 s.3.3 `date-time` for `seconds` since the Unix epoch, in UTC:
/// `Fri, 27 Nov 2026 07:34:51 +0000`.
#[must_use]
pub fn rfc5322_date(seconds: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = seconds / 86_400;
    let secs = seconds % 86_400;
    // Days to civil date (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms", civil_from_days).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let weekday = DAYS.get(usize::try_from(days % 7).unwrap_or(0)).copied().unwrap_or("Thu");
    let month_name = MONTHS.get(usize::try_from(month - 1).unwrap_or(0)).copied().unwrap_or("Jan");
    format!(
        "{weekday}, {day:02} {month_name} {year:04} {:02}:{:02}:{:02} +0000",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Whether `body` can travel as `7bit` (RFC 2045 s.2.7: "lines of less than
/// 1000 characters", "octets with decimal values greater than 127 are not
/// allowed and neither are NULs", "CR and LF ... only ... as a CRLF").
fn is_7bit(body: &[u8]) -> bool {
    let mut line = 0;
    let mut prev = 0u8;
    for (i, &b) in body.iter().enumerate() {
        match b {
            0 | 128..=255 => return false,
            b'\r' if body.get(i + 1) != Some(&b'\n') => return false,
            b'\n' if prev != b'\r' => return false,
            b'\n' => line = 0,
            _ => line += 1,
        }
        if line > MAX_LINE {
            return false;
        }
        prev = b;
    }
    true
}

/// Text in canonical form: every line break (CRLF, bare LF, bare CR) as CRLF
/// (RFC 2046 s.4.1.1: "The canonical form of any MIME "text" subtype MUST
/// always represent a line break as a CRLF sequence").
fn canonical_text(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 32);
    let mut it = body.iter().copied().peekable();
    while let Some(b) = it.next() {
        match b {
            b'\r' => {
                if it.peek() == Some(&b'\n') {
                    it.next();
                }
                out.extend_from_slice(b"\r\n");
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
    }
    out
}

fn base64_lines(data: &[u8]) -> Vec<u8> {
    let encoded = STANDARD.encode(data);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / BASE64_LINE * 2 + 2);
    for line in encoded.as_bytes().chunks(BASE64_LINE) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Appends `name: value` with the value's parameters folded onto their own
/// lines when the header would pass 78 characters.
fn content_type_header(out: &mut String, media: &super::media::MediaType) {
    let one_line = media.to_string();
    if "Content-Type: ".len() + one_line.len() <= FOLD_AT {
        let _ = write!(out, "Content-Type: {one_line}\r\n");
        return;
    }
    let _ = write!(out, "Content-Type: {}", media.essence);
    for (name, value) in &media.params {
        let _ = write!(out, ";\r\n\t{name}=");
        let _ = super::media::write_value(out, value);
    }
    out.push_str("\r\n");
}

pub(super) fn convert(
    message: &NonCpmMessage,
    content: &Content,
    config: &ConversionConfig,
) -> Result<(Bytes, MailEnvelope), ConvertError> {
    let domain = &config.email.domain;
    if !is_domain(domain) {
        return Err(ConvertError::Config { reason: "email domain is not a domain name" });
    }
    let from_id =
        identity::parse(&message.sender).ok_or(ConvertError::Sender { reason: "not a sip, tel, im or mailto URI" })?;
    let to_id = identity::parse(&message.recipient)
        .ok_or(ConvertError::Recipient { reason: "not a sip, tel, im or mailto URI" })?;
    let from = addr_spec(&from_id, domain).ok_or(ConvertError::Sender { reason: "no RFC 5322 addr-spec form" })?;
    let to = addr_spec(&to_id, domain).ok_or(ConvertError::Recipient { reason: "no RFC 5322 addr-spec form" })?;

    let mut media = content.media.clone();
    let (encoding, body) = match media.top() {
        // RFC 2045 s.6.4: "it is EXPRESSLY FORBIDDEN to use any encodings other than
        // "7bit", "8bit", or "binary" with any composite media type".
        "multipart" | "message" => {
            if !is_7bit(&content.body) {
                return Err(ConvertError::Unsupported { reason: "a multipart or message body that is not 7bit" });
            }
            ("7bit", content.body.to_vec())
        }
        "text" => {
            let text = canonical_text(&content.body);
            // RFC 2046 s.4.1.2: the default charset is US-ASCII; CPM text without one is UTF-8.
            if !media.has_param("charset") && !text.is_ascii() && std::str::from_utf8(&text).is_ok() {
                media.params.push(("charset".into(), "utf-8".into()));
            }
            if is_7bit(&text) {
                ("7bit", text)
            } else {
                ("base64", base64_lines(&text))
            }
        }
        // RFC 2045 s.6.8: base64 for data that is not text.
        _ => ("base64", base64_lines(&content.body)),
    };

    let mut head = String::with_capacity(512);
    // RFC 5322 s.3.6.2: from = "From:" mailbox-list; mailbox = name-addr / addr-spec.
    match &content.display_name {
        Some(name) => {
            let phrase = phrase(name, "From: ".len());
            // RFC 2047 s.2: a line with encoded-words is limited to 76 characters, so the
            // address goes on a folded line of its own after them.
            let fold = if phrase.starts_with("=?") { "\r\n" } else { "" };
            let _ = write!(head, "From: {phrase}{fold} <{from}>\r\n");
        }
        None => {
            let _ = write!(head, "From: <{from}>\r\n");
        }
    }
    let _ = write!(head, "To: <{to}>\r\n");
    // RFC 5322 s.3.6.1: "The origination date field ... MUST" be present.
    let _ = write!(head, "Date: {}\r\n", rfc5322_date(message.submitted_at));
    // RFC 5322 s.3.6.4: msg-id = "<" id-left "@" id-right ">", id-left = dot-atom-text.
    let _ = write!(head, "Message-ID: <{:016x}.{}@{domain}>\r\n", message.id, message.submitted_at);
    if let Some(subject) = content.subject.as_ref().or(config.email.default_subject.as_ref()) {
        let _ = write!(head, "Subject: {}\r\n", unstructured(subject, "Subject: ".len()));
    }
    // RFC 2045 s.4: "MIME-Version: 1.0".
    head.push_str("MIME-Version: 1.0\r\n");
    content_type_header(&mut head, &media);
    let _ = write!(head, "Content-Transfer-Encoding: {encoding}\r\n\r\n");

    let mut out = Vec::with_capacity(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(&body);
    Ok((Bytes::from(out), MailEnvelope { from, to }))
}

/// The REPORT status for the SMTP reply to the message (RFC 5321 s.4.2.1):
/// 2yz "Positive Completion" is 200; 4yz "Transient Negative Completion" is
/// 408 (RFC 4975 s.10.4: treated like a local timeout, the sender may try
/// again); 5yz "Permanent Negative Completion" is 403 (RFC 4975 s.10.3:
/// "should not try the request again"). A code that is not a final reply
/// (1yz, 3yz, or not three digits) from a relay that should have sent one
/// is 403 as well: the message was not taken, and a retry would meet the
/// same relay.
#[must_use]
pub const fn smtp_reply_status(code: u16) -> u16 {
    match code {
        200..=299 => STATUS_OK,
        400..=499 => STATUS_TEMPORARY,
        _ => STATUS_PERMANENT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        // Known instants (also checked against Python's email.utils in tests/conversions.rs).
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(rfc5322_date(1_795_764_891), "Fri, 27 Nov 2026 07:34:51 +0000");
        assert_eq!(rfc5322_date(1_798_356_891), "Sun, 27 Dec 2026 07:34:51 +0000");
    }

    #[test]
    fn words_hold_whole_characters() {
        let text = "é".repeat(40);
        let words = encoded_words(&text, 9);
        for (i, w) in words.split("\r\n ").enumerate() {
            assert!(w.len() + if i == 0 { 9 } else { 1 } <= 76, "{w}");
            let b64 = w.strip_prefix("=?UTF-8?B?").and_then(|w| w.strip_suffix("?=")).unwrap();
            assert!(String::from_utf8(STANDARD.decode(b64).unwrap()).is_ok());
        }
    }

    #[test]
    fn seven_bit() {
        assert!(is_7bit(b"a\r\nb"));
        assert!(!is_7bit(b"a\nb"));
        assert!(!is_7bit(b"a\rb"));
        assert!(!is_7bit(&[b'a'; 999]));
        assert!(is_7bit(&[b'a'; 998]));
        assert_eq!(canonical_text(b"a\nb\rc\r\nd"), b"a\r\nb\r\nc\r\nd");
    }
}
