//! Email: an RFC 5322 message with MIME (RFC 2045, RFC 2046, RFC 2047),
//! written by `mail-builder`, and the SMTP reply code mapped back.
//!
//! What is ours: the addresses made from CPM identities, the choice of
//! `7bit` or `base64` and the charset of text, the canonical form of text,
//! the `Message-ID` and the `Date` (from [`NonCpmMessage::submitted_at`],
//! never the clock). `mail-builder` writes the header fields, the MIME
//! part and the base64 lines; the few places where its output would break
//! an RFC rule are written here instead, each saying why at that line.

use std::borrow::Cow;
use std::io::{self, Write as _};

use bytes::Bytes;
use mail_builder::encoders::base64::base64_encode_mime;
use mail_builder::encoders::encode::{get_encoding_type, EncodingType};
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::text::Text;
use mail_builder::headers::Header;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;

use super::identity::{self, Identity};
use super::media::{self, MediaType};
use super::{Content, ConversionConfig, ConvertError, MailEnvelope, NonCpmMessage};
use super::{STATUS_OK, STATUS_PERMANENT, STATUS_TEMPORARY};

/// RFC 5322 s.2.1.1: "Each line of characters MUST be no more than 998
/// characters, and SHOULD be no more than 78 characters".
const MAX_LINE: usize = 998;
const FOLD_AT: usize = 78;
/// RFC 2047 s.2: "each line of a header field that contains one or more
/// 'encoded-word's is limited to 76 characters".
const ENCODED_LINE: usize = 76;
/// `=?UTF-8?B?` and `?=` around the encoded text.
const ENCODED_WORD_OVERHEAD: usize = 12;
/// `mail-builder` folds text it writes as is by inserting CRLF and a TAB
/// before the first white space past this column.
const LIBRARY_FOLD: usize = 76;

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

/// Header text with control characters (CR, LF, ...) turned into spaces:
/// they cannot appear in a header field body (RFC 5322 s.2.2).
fn clean(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Whether `mail-builder` writes `text` as it is (its own test: ASCII, no
/// line of more than 77 characters, no white space at the end; after
/// [`clean`], ASCII is printable) and the text holds no `=?`, so that no
/// reader takes part of it for an encoded-word (RFC 2047 s.5(1): an
/// 'encoded-word' may replace a 'text' token; some readers decode one in a
/// quoted-string too).
fn library_writes_as_is(text: &str) -> bool {
    matches!(get_encoding_type(text.as_bytes(), true, false), EncodingType::None) && !text.contains("=?")
}

/// The texts of the `encoded-word`s for header text (RFC 2047 s.4.1, "B"
/// encoding of UTF-8). Each holds whole characters (RFC 2047 s.5: "Each
/// 'encoded-word' MUST represent an integral number of characters"), and
/// each word's line stays within 76 characters: the first after `used`
/// characters (the field name and what precedes the words), the next after
/// the one folding space.
fn word_texts(text: &str, used: usize) -> Vec<&str> {
    // Octets per word: whole base64 quanta (4 characters for 3 octets) in what is left.
    let octets = |used: usize| ENCODED_LINE.saturating_sub(used + ENCODED_WORD_OVERHEAD) / 4 * 3;
    let mut words = Vec::new();
    let mut start = 0;
    let mut budget = octets(used).max(3);
    for (at, c) in text.char_indices() {
        if at > start && at + c.len_utf8() - start > budget {
            words.extend(text.get(start..at));
            start = at;
            budget = octets(1);
        }
    }
    words.extend(text.get(start..).filter(|rest| !rest.is_empty()));
    words
}

/// Header text as `encoded-word`s ([`word_texts`]) separated by folding
/// white space; the base64 is `mail-builder`'s.
///
/// `mail-builder` 0.4 cannot write these words itself: its `Text` header
/// ends a word only once the word is already too long (a "B" word by up to
/// one character, a "Q" word by up to twelve, one encoded emoji), so its
/// lines of UTF-8 encoded-words reach 81 and 85 characters where RFC 2047
/// s.2 allows 76 ("An 'encoded-word' may not be more than 75 characters
/// long"); and its `Address` puts a display name that needs encoding,
/// whole, as one word inside a quoted-string, where RFC 2047 s.5(3) says
/// "An 'encoded-word' MUST NOT appear within a 'quoted-string'".
fn encoded_words(out: &mut Vec<u8>, text: &str, used: usize) -> io::Result<()> {
    for (i, word) in word_texts(text, used).into_iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n ");
        }
        out.extend_from_slice(b"=?UTF-8?B?");
        base64_encode_mime(word.as_bytes(), &mut *out, true)?;
        out.extend_from_slice(b"?=");
    }
    Ok(())
}

/// Writes `name: ` and `value` with one of `mail-builder`'s header writers,
/// as its `MessageBuilder` does (the writer ends the line).
fn field(out: &mut Vec<u8>, name: &str, value: &impl Header) -> io::Result<()> {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    value.write_header(out, name.len() + 2).map(drop)
}

/// The `From` field (RFC 5322 s.3.6.2: `from = "From:" mailbox-list`,
/// `mailbox = name-addr / addr-spec`).
fn from_field(out: &mut Vec<u8>, name: Option<&str>, addr: &str) -> io::Result<()> {
    const NAME: &str = "From: ";
    match name {
        // RFC 2047 s.5(3): encoded-words may stand for the words of a 'phrase'. mail-builder
        // would put them inside a quoted-string (see `encoded_words`), so this field is ours.
        Some(name) if !library_writes_as_is(name) => {
            out.extend_from_slice(NAME.as_bytes());
            encoded_words(out, name, NAME.len())?;
            // RFC 2047 s.2: a line with encoded-words is limited to 76 characters, so the
            // address goes on a folded line of its own after them.
            write!(out, "\r\n <{addr}>\r\n")
        }
        // No name, or a name as a quoted-string (RFC 5322 s.3.2.4) by mail-builder.
        name => field(out, "From", &Address::new_address(name, addr)),
    }
}

/// The `Subject` field (RFC 5322 s.3.6.5, unstructured): by `mail-builder`
/// where its output is right, else as encoded-words (RFC 2047 s.5(1)).
fn subject_field(out: &mut Vec<u8>, text: &str) -> io::Result<()> {
    const NAME: &str = "Subject: ";
    let library = match get_encoding_type(text.as_bytes(), true, false) {
        // As it is, when it fits on one line: mail-builder folds with a CRLF and a TAB, and
        // the TAB stays in the text (RFC 5322 s.2.2.3: "Unfolding is accomplished by simply
        // removing any CRLF that is immediately followed by WSP").
        EncodingType::None => !text.contains("=?") && NAME.len() + text.len() <= LIBRARY_FOLD,
        // "Q" words of ASCII text: each character takes at most three, and its lines stay
        // within 76 characters (RFC 2047 s.2). Not for other text (see `encoded_words`).
        EncodingType::QuotedPrintable(ascii) => ascii,
        EncodingType::Base64 => false,
    };
    if library {
        return field(out, "Subject", &Text::new(text));
    }
    out.extend_from_slice(NAME.as_bytes());
    encoded_words(out, text, NAME.len())?;
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// The `Content-Type` (RFC 2045 s.5.1) for `mail-builder` to write.
fn content_type(media: &MediaType) -> ContentType<'_> {
    let as_is = |value: &str| matches!(get_encoding_type(value.as_bytes(), true, false), EncodingType::None);
    if media.params.iter().all(|(_, value)| as_is(value)) {
        // Each value as a quoted-string, folded between parameters.
        return media
            .params
            .iter()
            .fold(ContentType::new(media.essence.as_str()), |ct, (name, value)| ct.attribute(name, value));
    }
    // mail-builder writes a value that is not ASCII, is longer than 77 characters or ends in
    // white space as an encoded-word, and RFC 2047 s.5 says "An 'encoded-word' MUST NOT be used
    // in parameter of a MIME Content-Type or Content-Disposition field". So this field body is
    // ours (RFC 2045 s.5.1: "value := token / quoted-string"), its parameters folded onto lines
    // of their own when it passes 78 characters, and it goes to mail-builder as the type, which
    // it writes as it is.
    let one_line = media.to_string();
    if "Content-Type: ".len() + one_line.len() <= FOLD_AT {
        return ContentType::new(one_line);
    }
    let mut folded = media.essence.clone();
    for (name, value) in &media.params {
        folded.push_str(";\r\n\t");
        folded.push_str(name);
        folded.push('=');
        let _ = media::write_value(&mut folded, value);
    }
    ContentType::new(folded)
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

/// `data` in base64 by `mail-builder`'s encoder: lines of 76 characters,
/// each ended by CRLF (RFC 2045 s.6.8: "The encoded output stream must be
/// represented in lines of no more than 76 characters each").
fn base64_lines(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() / 57 * 78 + 80);
    base64_encode_mime(data, &mut out, false)?;
    Ok(out)
}

/// Writing into a `Vec` does not fail; `mail-builder`'s writers still
/// return `io::Result`.
const WRITE_FAILED: ConvertError = ConvertError::Unsupported { reason: "mail-builder could not write the message" };

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
    // mail-builder's Date counts seconds since the Unix epoch in an i64.
    let date = i64::try_from(message.submitted_at)
        .map_err(|_| ConvertError::Unsupported { reason: "a submission time past the year 292277026596" })?;

    let mut media = content.media.clone();
    let (encoding, body): (&str, Cow<'_, [u8]>) = match media.top() {
        // RFC 2045 s.6.4: "it is EXPRESSLY FORBIDDEN to use any encodings other than
        // "7bit", "8bit", or "binary" with any composite media type".
        "multipart" | "message" => {
            if !is_7bit(&content.body) {
                return Err(ConvertError::Unsupported { reason: "a multipart or message body that is not 7bit" });
            }
            ("7bit", Cow::Borrowed(content.body.as_ref()))
        }
        "text" => {
            let text = canonical_text(&content.body);
            // RFC 2046 s.4.1.2: the default charset is US-ASCII; CPM text without one is UTF-8.
            if !media.has_param("charset") && !text.is_ascii() && std::str::from_utf8(&text).is_ok() {
                media.params.push(("charset".into(), "utf-8".into()));
            }
            if is_7bit(&text) {
                ("7bit", Cow::Owned(text))
            } else {
                ("base64", Cow::Owned(base64_lines(&text).map_err(|_| WRITE_FAILED)?))
            }
        }
        // RFC 2045 s.6.8: base64 for data that is not text.
        _ => ("base64", Cow::Owned(base64_lines(&content.body).map_err(|_| WRITE_FAILED)?)),
    };
    let subject = content.subject.as_deref().or(config.email.default_subject.as_deref()).map(clean);
    let name = content.display_name.as_deref().map(clean);
    let name = name.as_deref().map(str::trim).filter(|name| !name.is_empty());

    let mut out = Vec::with_capacity(512 + body.len());
    // From and Subject come first (RFC 5322 s.3.6: header fields "may appear in any order"):
    // mail-builder's MessageBuilder takes only its own header writers, and these two fields
    // may need text those cannot write (see `encoded_words`).
    from_field(&mut out, name, &from).map_err(|_| WRITE_FAILED)?;
    if let Some(subject) = &subject {
        subject_field(&mut out, subject).map_err(|_| WRITE_FAILED)?;
    }
    // The encoding chosen above, and the body as it is: mail-builder would choose
    // quoted-printable for text when shorter, and base64 for a multipart or message body.
    let part = MimePart::new(content_type(&media), BodyPart::Binary(body)).transfer_encoding(encoding);
    MessageBuilder::new()
        .to(to.as_str())
        // RFC 5322 s.3.6: "The only required header fields are the origination date field
        // and the originator address field(s)". It is given (and so is the Message-ID), so
        // mail-builder does not read the clock for one. It writes the day without a leading
        // zero: RFC 5322 s.3.3 `day = ([FWS] 1*2DIGIT FWS)`.
        .date(Date::new(date))
        // RFC 5322 s.3.6.4: msg-id = "<" id-left "@" id-right ">", id-left = dot-atom-text.
        .message_id(format!("{:016x}.{}@{domain}", message.id, message.submitted_at))
        // RFC 2045 s.4: mail-builder adds "MIME-Version: 1.0".
        .body(part)
        .write_to(&mut out)
        .map_err(|_| WRITE_FAILED)?;
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
    use crate::interworking::{convert, ConversionConfig};
    use crate::NonCpmSystem;

    /// The converted message of `body` with `content_type`, sent at `at`.
    fn mail(content_type: &str, body: &str, at: u64) -> Result<String, ConvertError> {
        let mut m =
            NonCpmMessage::new("sip:alice@example.com", "sip:bob@example.com", content_type, body.to_owned().into());
        m.submitted_at = at;
        let c = convert(NonCpmSystem::Email, &m, &ConversionConfig::default())?;
        Ok(String::from_utf8(c.parts[0].to_vec()).unwrap())
    }

    /// A CPIM message (RFC 3862) with `headers` around a short text.
    fn cpim_mail(headers: &str) -> String {
        let cpim = format!("To: <sip:bob@example.com>\r\n{headers}\r\nContent-Type: text/plain\r\n\r\nhi");
        mail("message/cpim", &cpim, 0).unwrap()
    }

    fn header_lines(mail: &str) -> Vec<&str> {
        mail.split("\r\n\r\n").next().unwrap().split("\r\n").collect()
    }

    #[test]
    fn dates() {
        // Known instants (Python reads a Date back in tests/conversions.rs).
        for (at, want) in [
            (0, "Date: Thu, 1 Jan 1970 00:00:00 +0000"),
            (951_782_400, "Date: Tue, 29 Feb 2000 00:00:00 +0000"),
            (1_795_764_891, "Date: Fri, 27 Nov 2026 07:34:51 +0000"),
            (1_798_356_891, "Date: Sun, 27 Dec 2026 07:34:51 +0000"),
        ] {
            let mail = mail("text/plain", "x", at).unwrap();
            assert!(header_lines(&mail).contains(&want), "{mail}");
        }
        assert!(matches!(mail("text/plain", "x", u64::MAX), Err(ConvertError::Unsupported { .. })));
    }

    #[test]
    fn words_hold_whole_characters() {
        let text = "é".repeat(40) + "😀a😀";
        let words = word_texts(&text, 9);
        assert_eq!(words.concat(), text);
        for (i, w) in words.iter().enumerate() {
            let line = if i == 0 { 9 } else { 1 } + ENCODED_WORD_OVERHEAD + w.len().div_ceil(3) * 4;
            assert!(line <= ENCODED_LINE, "{w}");
        }
        let mut out = Vec::new();
        encoded_words(&mut out, &text, 9).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out.split("\r\n ").count(), words.len());
        assert!(out.split("\r\n ").all(|w| w.starts_with("=?UTF-8?B?") && w.len() <= 75), "{out}");
    }

    #[test]
    fn header_text_by_mail_builder_or_as_encoded_words() {
        // Plain: mail-builder's writers.
        let m = cpim_mail("From: \"Alice\" <sip:alice@example.com>\r\nSubject: Hello there\r\n");
        let lines = header_lines(&m);
        assert!(lines.contains(&"From: \"Alice\" <alice@example.com>"), "{m}");
        assert!(lines.contains(&"Subject: Hello there"), "{m}");
        // Long ASCII: mail-builder's "Q" words.
        let long = "word ".repeat(30);
        let m = cpim_mail(&format!("From: <sip:alice@example.com>\r\nSubject: {}\r\n", long.trim_end()));
        assert!(m.contains("Subject: =?us-ascii?Q?word_word_"), "{m}");
        // Not ASCII, or text that looks like an encoded-word: ours, within 76 characters a line.
        for subject in ["Grüße 😀 ".repeat(12).trim_end(), "=?utf-8?q?x?=", &"x ".repeat(36)[..71]] {
            let m = cpim_mail(&format!("From: \"Zoë\" <sip:zoe@example.com>\r\nSubject: {subject}\r\n"));
            assert!(m.starts_with("From: =?UTF-8?B?Wm/Dqw==?=\r\n <alice@example.com>\r\nSubject: =?UTF-8?B?"), "{m}");
            assert!(header_lines(&m).iter().all(|l| l.len() <= ENCODED_LINE), "{m}");
        }
        // Control characters never reach a header (RFC 5322 s.2.2).
        let m = NonCpmMessage::new("sip:alice@example.com", "sip:bob@example.com", "text/plain", "x".into());
        let mut config = ConversionConfig::default();
        config.email.default_subject = Some("a\r\nBcc: x\u{1}y".into());
        let m = convert(NonCpmSystem::Email, &m, &config).unwrap().parts[0].clone();
        let m = String::from_utf8(m.to_vec()).unwrap();
        assert!(header_lines(&m).contains(&"Subject: a  Bcc: x y"), "{m}");
    }

    #[test]
    fn content_type_parameters() {
        let m = mail("text/plain; format=flowed", "x", 0).unwrap();
        assert!(header_lines(&m).contains(&"Content-Type: text/plain; format=\"flowed\""), "{m}");
        // A value mail-builder would write as an encoded-word (RFC 2047 s.5) stays a quoted-string.
        let m = mail("image/png; name=\"Zoë.png\"", "x", 0).unwrap();
        assert!(header_lines(&m).contains(&"Content-Type: image/png; name=\"Zoë.png\""), "{m}");
        let long = "n".repeat(80);
        let m = mail(&format!("image/png; name={long}; x=y"), "x", 0).unwrap();
        let want = format!("Content-Type: image/png;\r\n\tname={long};\r\n\tx=y\r\n");
        assert!(m.contains(&want), "{m}");
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
