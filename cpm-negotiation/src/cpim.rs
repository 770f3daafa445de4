//! CPIM (RFC 3862) `message/cpim` wrappers, with the IMDN header fields of
//! RFC 5438 s.6 that OMA CPM puts in them.
//!
//! [`Message::parse`] reads the body of a `message/cpim` part: the message
//! headers, a blank line, the encapsulated MIME headers, a blank line, the
//! content. Header names, parameters and values, MIME values and the content
//! are `Bytes` slices of the input, in their order; nothing is copied. Typed
//! accessors ([`Message::from`], [`Message::to`], [`Message::imdn_message_id`],
//! [`Message::disposition_notification`], ...) find a header by its namespace
//! URI and local name, so `imdn.Message-ID` is found whatever prefix the
//! message declared for `urn:ietf:params:imdn`. Every typed header is checked
//! against its grammar when parsed, so the accessors cannot fail.
//!
//! [`Builder`] writes a canonical wrapper (CRLF line ends, one header per
//! line, fixed order) and `Builder::from_message(&Message::parse(b.build()?)?)
//! == Some(b)` for every builder that [`Builder::build`] accepts.
//!
//! Decisions where the RFCs leave room (each also stated where enforced):
//! - RFC 3862 s.6 leaves the required headers to the application. Here a
//!   message needs one `From`, at least one `To` and one `Content-Type`
//!   (RFC 3862 s.2.4); a message asking for an IMDN (a non-empty
//!   `Disposition-Notification`) also needs `imdn.Message-ID` and `DateTime`
//!   (RFC 5438 s.7.1.1.1, s.7.1.1.2), and a notification
//!   (`Content-Disposition: notification`) needs `imdn.Message-ID`
//!   (RFC 5438 s.7.2.1).
//! - `From`, `DateTime`, `imdn.Message-ID`, `imdn.Disposition-Notification`,
//!   `imdn.Original-To` and `Content-Type` may appear once; a repetition is
//!   an error.
//! - `DateTime` is kept as text and not checked: a bad one is still a message.
//! - RFC 3862 s.2.2 wants the SP after the colon and forbids whitespace at
//!   the end of a line, so a line that ends right after the colon (or its
//!   parameters) is a header with an empty value. Other trailing whitespace
//!   is part of the value ("Message processors MUST preserve all octets").
//! - `Require` and `Disposition-Notification` lists accept `*SP` around
//!   commas (RFC 5438 s.10 `COMMA`); unknown disposition values are ignored
//!   (RFC 5438 s.7.2.1).
//! - A namespace prefix is resolved through the latest earlier `NS`; an
//!   undeclared prefix is an error (RFC 3862 s.3.4). An `NS` without a prefix
//!   changes the namespace of the unprefixed headers after it. The two
//!   well-known URNs (`urn:ietf:params:cpim-headers:`, `urn:ietf:params:imdn`)
//!   compare ASCII case-insensitively, other namespace URIs exactly.
//! - The encapsulated MIME headers follow RFC 5322 s.2.2: names compare
//!   case-insensitively, folded values are kept as written (CRLF included),
//!   values are trimmed of surrounding whitespace. Both header blocks end
//!   their lines with CRLF; a bare LF is an error.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::media::BodyType;

/// The media type of a CPIM message (RFC 3862 s.7.1).
pub const CONTENT_TYPE: &str = "message/cpim";
/// The namespace of the RFC 3862 s.4 headers, the default one.
pub const CPIM_NAMESPACE: &str = "urn:ietf:params:cpim-headers:";
/// The namespace of the RFC 5438 s.6 header fields.
pub const IMDN_NAMESPACE: &str = "urn:ietf:params:imdn";
/// The prefix [`Builder`] declares for [`IMDN_NAMESPACE`] (RFC 5438 s.6.1).
pub const IMDN_PREFIX: &str = "imdn";
/// Headers (message plus MIME) accepted by [`Message::parse`].
pub const DEFAULT_MAX_HEADERS: usize = 64;

/// Why a CPIM message cannot be parsed (the peer is at fault).
///
/// `at` is the byte offset, in the parsed input, of the offending header line
/// (or character, or where the missing part was expected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CpimError {
    /// A line ends with a bare LF.
    #[error("line at byte {at} does not end with CRLF (RFC 3862 s.2.2)")]
    LineEnd {
        /// Offset of the LF.
        at: usize,
    },
    /// The input ends before the blank line that closes a header block.
    #[error("headers from byte {at} are not closed by a blank line (RFC 3862 s.2)")]
    MissingBlankLine {
        /// Offset of the unterminated line.
        at: usize,
    },
    /// A message header name is not `[ Name-prefix "." ] Name`, or no colon follows it.
    #[error("header at byte {at}: name is not Header-name followed by \":\" (RFC 3862 s.3.6)")]
    HeaderName {
        /// Offset of the line.
        at: usize,
    },
    /// A `;` parameter is not `Param-name "=" Param-value`.
    #[error("header at byte {at}: parameter is not Param-name \"=\" Param-value (RFC 3862 s.3.6)")]
    Parameter {
        /// Offset of the line.
        at: usize,
    },
    /// The colon (and parameters) is not followed by a single SP.
    #[error("header at byte {at}: no SP after the colon (RFC 3862 s.3)")]
    Separator {
        /// Offset of the line.
        at: usize,
    },
    /// A control character in a header.
    #[error("control character at byte {at} (RFC 3862 s.2.2)")]
    ControlChar {
        /// Offset of the character.
        at: usize,
    },
    /// A header that is not UTF-8.
    #[error("header at byte {at} is not UTF-8 (RFC 3862 s.2.2)")]
    Utf8 {
        /// Offset of the line.
        at: usize,
    },
    /// A `prefix.Name` header without an earlier `NS` declaring `prefix`.
    #[error("header at byte {at}: prefix not declared by an earlier NS (RFC 3862 s.3.4)")]
    UndeclaredPrefix {
        /// Offset of the line.
        at: usize,
    },
    /// A typed header whose value breaks its grammar.
    #[error("{name} at byte {at}: value breaks {rule}")]
    Value {
        /// Offset of the line.
        at: usize,
        /// The header.
        name: &'static str,
        /// The rule.
        rule: &'static str,
    },
    /// A header that may appear once appears again.
    #[error("{name} at byte {at}: repeated")]
    Repeated {
        /// Offset of the repeated line.
        at: usize,
        /// The header.
        name: &'static str,
    },
    /// A required header is absent.
    #[error("no {name} header before byte {at} ({rule})")]
    Missing {
        /// Offset of the blank line closing the block.
        at: usize,
        /// The header.
        name: &'static str,
        /// The rule that requires it.
        rule: &'static str,
    },
    /// An encapsulated MIME header that is not `field-name ":" value`.
    #[error("MIME header at byte {at} is not field-name \":\" value (RFC 5322 s.2.2)")]
    MimeHeader {
        /// Offset of the line.
        at: usize,
    },
    /// More headers than the caller's limit.
    #[error("header at byte {at} exceeds the limit of {limit} headers")]
    TooManyHeaders {
        /// Offset of the first header past the limit.
        at: usize,
        /// The limit.
        limit: usize,
    },
}

impl CpimError {
    /// Byte offset of the offending line or character.
    #[must_use]
    pub const fn offset(&self) -> usize {
        match *self {
            Self::LineEnd { at }
            | Self::MissingBlankLine { at }
            | Self::HeaderName { at }
            | Self::Parameter { at }
            | Self::Separator { at }
            | Self::ControlChar { at }
            | Self::Utf8 { at }
            | Self::UndeclaredPrefix { at }
            | Self::Value { at, .. }
            | Self::Repeated { at, .. }
            | Self::Missing { at, .. }
            | Self::MimeHeader { at }
            | Self::TooManyHeaders { at, .. } => at,
        }
    }
}

/// Why [`Builder::build`] refuses its fields (the caller is at fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A field cannot be written as its header requires.
    #[error("cannot write {field}: {reason}")]
    Invalid {
        /// The builder field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

fn invalid(field: &'static str, reason: &'static str) -> BuildError {
    BuildError::Invalid { field, reason }
}

// ---------------------------------------------------------------------------
// Character classes (RFC 3862 s.3.6)

/// `NAMECHAR = %x21 / %x23-27 / %x2a-2b / %x2d / %x5e-60 / %x7c / %x7e / ALPHA / DIGIT`.
const NAMECHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(c, 0x21 | 0x23..=0x27 | 0x2a | 0x2b | 0x2d | 0x5e..=0x60 | 0x7c | 0x7e);
        b += 1;
    }
    t
};

fn is_namechar(b: u8) -> bool {
    NAMECHAR[usize::from(b)]
}

/// `TOKENCHAR = NAMECHAR / "." / UCS-high`.
fn is_tokenchar(b: u8) -> bool {
    is_namechar(b) || b == b'.' || b >= 0x80
}

fn is_name(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_namechar(b))
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tokenchar(b))
}

/// `Header-name = [ Name-prefix "." ] Name`.
fn is_header_name(s: &[u8]) -> bool {
    match s.iter().position(|&b| b == b'.') {
        Some(dot) => s.get(..dot).is_some_and(is_name) && s.get(dot + 1..).is_some_and(is_name),
        None => is_name(s),
    }
}

fn is_ctl(b: u8) -> bool {
    b < 0x20 || b == 0x7F
}

fn str_of(b: &Bytes) -> &str {
    // Every stored slice was checked to be UTF-8 when parsed.
    std::str::from_utf8(b).unwrap_or("")
}

fn sp_len(s: &[u8], from: usize) -> usize {
    s.get(from..).map_or(0, |r| r.iter().take_while(|&&b| b == b' ').count())
}

/// Length of the RFC 3862 `String` at the start of `s`, quotes included.
/// Escapes are taken leniently (`\` and any character), as s.2.3.1 asks of a
/// processor.
fn string_len(s: &[u8]) -> Option<usize> {
    if s.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while let Some(&b) = s.get(i) {
        match b {
            b'"' => return Some(i + 1),
            b'\\' => {
                if !matches!(s.get(i + 1), Some(&n) if !is_ctl(n)) {
                    return None;
                }
                i += 2;
            }
            b if is_ctl(b) => return None,
            _ => i += 1,
        }
    }
    None
}

/// Scans `Param-name "=" Param-value` from `i`; returns the end.
fn scan_param(s: &[u8], i: usize) -> Option<usize> {
    let rest = s.get(i..)?;
    let name = rest.iter().take_while(|&&b| is_namechar(b)).count();
    if name == 0 || rest.get(name) != Some(&b'=') {
        return None;
    }
    let value = rest.get(name + 1..)?;
    // Param-value = Token / Number / String (a Number is a Token).
    let used = if value.first() == Some(&b'"') {
        string_len(value)?
    } else {
        value.iter().take_while(|&&b| is_tokenchar(b)).count()
    };
    (used > 0).then_some(i + name + 1 + used)
}

/// Scans RFC 2396 `absolute-URI` by shape: a scheme, a colon, and at least
/// one more character, none of them space, control, `<`, `>`, `"` or the
/// "unwise" characters other than brackets.
fn is_absolute_uri(s: &[u8]) -> bool {
    let Some(colon) = s.iter().position(|&b| b == b':') else { return false };
    let scheme_ok = s.first().is_some_and(u8::is_ascii_alphabetic)
        && s.get(..colon)
            .is_some_and(|sc| sc.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')));
    let rest = s.get(colon + 1..).unwrap_or(&[]);
    scheme_ok
        && !rest.is_empty()
        && rest.iter().all(|&b| {
            (0x21..0x7F).contains(&b) && !matches!(b, b'<' | b'>' | b'"' | b'{' | b'}' | b'|' | b'\\' | b'^' | b'`')
        })
}

/// One name-addr: the display name as written (quotes stripped) and whether
/// it was a `String`, and the URI.
type NameAddr<'a> = (Option<(&'a [u8], bool)>, &'a [u8]);

/// `[ Formal-name ] "<" URI ">"`, `Formal-name = 1*( Token SP ) / String`.
fn scan_name_addr(v: &[u8]) -> Option<NameAddr<'_>> {
    let (name, rest) = match v.first() {
        Some(b'"') => {
            let n = string_len(v)?;
            // The ABNF puts "<" right after the String; "Display" <uri> (with SP) is what
            // everybody writes, RFC 5438 s.7.1.1.3 among them: accept *SP.
            let rest = v.get(n..)?;
            let rest = rest.get(sp_len(rest, 0)..)?;
            (Some((v.get(1..n - 1)?, true)), rest)
        }
        Some(b'<') => (None, v),
        _ => {
            let lt = v.iter().position(|&b| b == b'<')?;
            let words = v.get(..lt)?.strip_suffix(b" ")?;
            if !words.split(|&b| b == b' ').all(is_token) {
                return None;
            }
            (Some((words, false)), v.get(lt..)?)
        }
    };
    let uri = rest.strip_prefix(b"<")?.strip_suffix(b">")?;
    is_absolute_uri(uri).then_some((name, uri))
}

/// `NS-header = "NS" ": " [ Name-prefix ] "<" URI ">"` (SP allowed before `<`,
/// as every example has it).
fn scan_ns(v: &[u8]) -> Option<(Option<&[u8]>, &[u8])> {
    let lt = v.iter().position(|&b| b == b'<')?;
    let head = v.get(..lt)?;
    let head = head.strip_suffix(b" ").unwrap_or(head);
    let prefix = if head.is_empty() {
        None
    } else if is_name(head) {
        Some(head)
    } else {
        return None;
    };
    let uri = v.get(lt..)?.strip_prefix(b"<")?.strip_suffix(b">")?;
    is_absolute_uri(uri).then_some((prefix, uri))
}

/// Splits a `COMMA`-separated list (`*SP "," *SP`).
fn split_list(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',').map(trim_sp)
}

fn trim_sp(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != b' ').unwrap_or(s.len());
    let end = s.iter().rposition(|&b| b != b' ').map_or(start, |e| e + 1);
    s.get(start..end).unwrap_or(&[])
}

/// `Require-header = "Require" ": " Header-name *( "," Header-name )`.
fn scan_require(v: &[u8]) -> bool {
    split_list(v).all(is_header_name)
}

// ---------------------------------------------------------------------------
// Escapes (RFC 3862 s.2.3)

/// Decodes the escapes of RFC 3862 s.2.3 in a header value or a `String`'s
/// content.
#[must_use]
pub fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // RFC 3862 s.2.3.1: "An isolated backslash that is the last character of a header
            // SHOULD be ignored."
            None => {}
            Some('b') => out.push('\u{8}'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('u') => {
                let rest = chars.as_str();
                let hex = rest.get(..4).filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
                match hex.and_then(|h| u32::from_str_radix(h, 16).ok()) {
                    Some(code) => {
                        out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                        chars = rest.get(4..).unwrap_or("").chars();
                    }
                    // RFC 3862 s.2.3.1: "Any unrecognized escape sequence SHOULD be treated as an
                    // instance of the character following the backslash character."
                    None => out.push('u'),
                }
            }
            Some(other) => out.push(other),
        }
    }
    Cow::Owned(out)
}

/// Writes `s` with the escapes RFC 3862 s.2.3.1 requires; `quoted` adds `\"`.
fn escape_into(out: &mut String, s: &str, quoted: bool) {
    for c in s.chars() {
        // RFC 3862 s.2.3.1: "The special sequences listed above MUST be used to encode any
        // occurrence of the following characters that appear anywhere in a header: backslash
        // (U+005c), backspace (U+0008), tab (U+0009), linefeed (U+000a) or carriage return
        // (U+000d)."
        match c {
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '"' if quoted => out.push_str("\\\""),
            // RFC 3862 s.2.3.1: "The general escape sequence \uxxxx MUST be used for any other
            // control character".
            c if c < ' ' || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

// ---------------------------------------------------------------------------
// Values

/// A `From`, `To`, `cc` or `imdn.Original-To` value: `[ Formal-name ] "<" URI ">"`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Address {
    /// The Formal-name, unescaped; [`Builder`] writes it as a quoted `String`.
    pub display_name: Option<String>,
    /// The URI (RFC 3862 s.3.6: an absolute URI).
    pub uri: String,
}

impl Address {
    /// An address with only a URI.
    #[must_use]
    pub fn new(uri: impl Into<String>) -> Self {
        Self { display_name: None, uri: uri.into() }
    }

    /// Sets the display name.
    #[must_use]
    pub fn with_display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    fn decode(v: &[u8]) -> Self {
        let Some((name, uri)) = scan_name_addr(v) else { return Self::default() };
        let text = |b: &[u8]| std::str::from_utf8(b).unwrap_or("").to_owned();
        let display_name = name.map(|(n, quoted)| {
            let n = std::str::from_utf8(n).unwrap_or("");
            if quoted {
                unescape(n).into_owned()
            } else {
                n.to_owned()
            }
        });
        Self { display_name, uri: text(uri) }
    }

    fn check(&self, field: &'static str) -> Result<(), BuildError> {
        if is_absolute_uri(self.uri.as_bytes()) {
            Ok(())
        } else {
            Err(invalid(field, "URI is not an absolute URI (RFC 3862 s.3.6)"))
        }
    }
}

impl fmt::Display for Address {
    /// The header value: `"Display" <uri>` or `<uri>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.display_name {
            let mut quoted = String::with_capacity(name.len() + 2);
            escape_into(&mut quoted, name, true);
            write!(f, "\"{quoted}\" ")?;
        }
        write!(f, "<{}>", self.uri)
    }
}

/// A `Subject` header (RFC 3862 s.4.5).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Subject {
    /// The `;lang=` parameter.
    pub lang: Option<String>,
    /// The text, unescaped.
    pub text: String,
}

/// A namespace declaration with a prefix, for [`Builder::namespaces`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Namespace {
    /// The `Name-prefix`.
    pub prefix: String,
    /// The namespace URI.
    pub uri: String,
}

/// The notifications asked for by `Disposition-Notification` (RFC 5438 s.6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DispositionNotification {
    /// `positive-delivery`.
    pub positive_delivery: bool,
    /// `negative-delivery`.
    pub negative_delivery: bool,
    /// `processing` (for intermediaries; RFC 5438 s.7.2.1: recipients MUST NOT send it).
    pub processing: bool,
    /// `display`.
    pub display: bool,
}

impl DispositionNotification {
    /// Whether no notification is asked for.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        !(self.positive_delivery || self.negative_delivery || self.processing || self.display)
    }

    /// The header value, values in the order of RFC 5438 s.10, `", "` between them.
    #[must_use]
    pub fn to_value(&self) -> String {
        let all = [
            (self.positive_delivery, "positive-delivery"),
            (self.negative_delivery, "negative-delivery"),
            (self.processing, "processing"),
            (self.display, "display"),
        ];
        all.iter().filter(|(on, _)| *on).map(|(_, v)| *v).collect::<Vec<_>>().join(", ")
    }

    /// Parses the value: `[(notify-req *(COMMA notify-req))]`.
    fn scan(v: &[u8]) -> Option<Self> {
        let mut out = Self::default();
        let mut i = sp_len(v, 0);
        if i == v.len() {
            // RFC 5438 s.7.1.1.3: "the presence of the header field with an empty value
            // indicates that the IM Sender is not requesting any IMDNs."
            return Some(out);
        }
        loop {
            let rest = v.get(i..)?;
            let n = rest.iter().take_while(|&&b| is_tokenchar(b)).count();
            // notify-req = ("negative-delivery" / "positive-delivery" / "processing" /
            //               "display" / Token) *(SEMI disp-notify-params)
            match rest.get(..n)? {
                b"" => return None,
                b"positive-delivery" => out.positive_delivery = true,
                b"negative-delivery" => out.negative_delivery = true,
                b"processing" => out.processing = true,
                b"display" => out.display = true,
                // RFC 5438 s.7.2.1: "If the IM Recipient does not understand a value of the
                // Disposition-Notification header field, the IM Recipient ignores that value."
                _ => {}
            }
            i += n;
            loop {
                i += sp_len(v, i);
                if v.get(i) != Some(&b';') {
                    break;
                }
                i += 1;
                i += sp_len(v, i);
                i = scan_param(v, i)?;
            }
            match v.get(i) {
                None => return Some(out),
                Some(b',') => {
                    i += 1;
                    i += sp_len(v, i);
                }
                Some(_) => return None,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Parsed headers

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    From,
    To,
    Cc,
    DateTime,
    Subject,
    Ns,
    Require,
    MessageId,
    DispositionNotification,
    OriginalTo,
    Other,
}

impl Kind {
    fn classify(namespace: &[u8], local: &[u8]) -> Self {
        if namespace.eq_ignore_ascii_case(CPIM_NAMESPACE.as_bytes()) {
            // RFC 3862 s.2.2: "Header names MUST match exactly".
            match local {
                b"From" => Self::From,
                b"To" => Self::To,
                b"cc" => Self::Cc,
                b"DateTime" => Self::DateTime,
                b"Subject" => Self::Subject,
                b"NS" => Self::Ns,
                b"Require" => Self::Require,
                _ => Self::Other,
            }
        } else if namespace.eq_ignore_ascii_case(IMDN_NAMESPACE.as_bytes()) {
            match local {
                b"Message-ID" => Self::MessageId,
                b"Disposition-Notification" => Self::DispositionNotification,
                b"Original-To" => Self::OriginalTo,
                _ => Self::Other,
            }
        } else {
            Self::Other
        }
    }

    const fn name(self) -> &'static str {
        match self {
            Self::From => "From",
            Self::To => "To",
            Self::Cc => "cc",
            Self::DateTime => "DateTime",
            Self::Subject => "Subject",
            Self::Ns => "NS",
            Self::Require => "Require",
            Self::MessageId => "imdn.Message-ID",
            Self::DispositionNotification => "imdn.Disposition-Notification",
            Self::OriginalTo => "imdn.Original-To",
            Self::Other => "header",
        }
    }

    const fn once(self) -> bool {
        matches!(self, Self::From | Self::DateTime | Self::MessageId | Self::DispositionNotification | Self::OriginalTo)
    }

    /// Checks the value against the header's grammar; returns the rule it breaks.
    fn check(self, v: &[u8]) -> Result<(), &'static str> {
        let (ok, rule) = match self {
            Self::From => (scan_name_addr(v).is_some(), "RFC 3862 s.4.1 [ Formal-name ] \"<\" URI \">\""),
            Self::To => (scan_name_addr(v).is_some(), "RFC 3862 s.4.2 [ Formal-name ] \"<\" URI \">\""),
            Self::Cc => (scan_name_addr(v).is_some(), "RFC 3862 s.4.3 [ Formal-name ] \"<\" URI \">\""),
            Self::OriginalTo => (scan_name_addr(v).is_some(), "RFC 5438 s.10 [ Formal-name ] \"<\" URI \">\""),
            Self::Ns => (scan_ns(v).is_some(), "RFC 3862 s.4.6 [ Name-prefix ] \"<\" URI \">\""),
            Self::Require => (scan_require(v), "RFC 3862 s.4.7 Header-name *( \",\" Header-name )"),
            // RFC 5438 s.10: Message-ID = "Message-ID" ": " Token
            Self::MessageId => (is_token(v), "RFC 5438 s.10 Message-ID = Token"),
            Self::DispositionNotification => {
                (DispositionNotification::scan(v).is_some(), "RFC 5438 s.10 notify-req *(COMMA notify-req)")
            }
            // RFC 3862 s.4.4 wants an RFC 3339 date-time; it is kept as text (module docs).
            Self::DateTime | Self::Subject | Self::Other => (true, ""),
        };
        if ok {
            Ok(())
        } else {
            Err(rule)
        }
    }
}

/// One message header, as written: name, parameters and value are slices of
/// the parsed input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    name: Bytes,
    prefix_len: Option<usize>,
    params: Bytes,
    value: Bytes,
    namespace: Bytes,
    at: usize,
    kind: Kind,
}

impl Header {
    /// The name as written (`imdn.Message-ID`).
    #[must_use]
    pub fn name(&self) -> &str {
        str_of(&self.name)
    }

    /// The namespace prefix, if the name has one.
    #[must_use]
    pub fn prefix(&self) -> Option<&str> {
        self.prefix_len.and_then(|n| self.name().get(..n))
    }

    /// The name without its prefix.
    #[must_use]
    pub fn local_name(&self) -> &str {
        let name = self.name();
        self.prefix_len.map_or(name, |n| name.get(n + 1..).unwrap_or(""))
    }

    /// The namespace URI the name resolved to (RFC 3862 s.3.4).
    #[must_use]
    pub fn namespace(&self) -> &str {
        str_of(&self.namespace)
    }

    /// Whether this is header `local` of namespace `namespace`.
    #[must_use]
    pub fn is(&self, namespace: &str, local: &str) -> bool {
        self.local_name() == local && same_namespace(self.namespace(), namespace)
    }

    /// The parameters as written, with their leading `;` (often empty).
    #[must_use]
    pub fn params(&self) -> &str {
        str_of(&self.params)
    }

    /// The `lang` parameter (RFC 3862 s.3.3), quotes stripped if quoted.
    #[must_use]
    pub fn lang(&self) -> Option<&str> {
        let p = self.params.as_ref();
        let mut i = 0;
        while p.get(i) == Some(&b';') {
            let end = scan_param(p, i + 1)?;
            let param = self.params().get(i + 1..end)?;
            if let Some(v) = param.strip_prefix("lang=") {
                return Some(v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v));
            }
            i = end;
        }
        None
    }

    /// The value as written (escapes not decoded).
    #[must_use]
    pub fn value(&self) -> &str {
        str_of(&self.value)
    }

    /// The value as a slice of the parsed input.
    #[must_use]
    pub const fn value_bytes(&self) -> &Bytes {
        &self.value
    }

    /// The value with the escapes of RFC 3862 s.2.3 decoded.
    #[must_use]
    pub fn unescaped_value(&self) -> Cow<'_, str> {
        unescape(self.value())
    }

    /// Byte offset of the line in the parsed input.
    #[must_use]
    pub const fn offset(&self) -> usize {
        self.at
    }
}

fn same_namespace(a: &str, b: &str) -> bool {
    let well_known = |s: &str| s.eq_ignore_ascii_case(CPIM_NAMESPACE) || s.eq_ignore_ascii_case(IMDN_NAMESPACE);
    if well_known(a) || well_known(b) {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// One encapsulated MIME header (RFC 3862 s.2.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MimeHeader {
    name: Bytes,
    value: Bytes,
    at: usize,
}

impl MimeHeader {
    /// The field name as written.
    #[must_use]
    pub fn name(&self) -> &str {
        str_of(&self.name)
    }

    /// The value, trimmed; a folded value keeps its CRLFs.
    #[must_use]
    pub fn value(&self) -> &str {
        str_of(&self.value)
    }

    /// Byte offset of the line in the parsed input.
    #[must_use]
    pub const fn offset(&self) -> usize {
        self.at
    }
}

/// A parsed `message/cpim` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    headers: Vec<Header>,
    mime_headers: Vec<MimeHeader>,
    body: Bytes,
    body_at: usize,
}

/// The line starting at `pos`, without its CRLF.
fn line_at(src: &[u8], pos: usize) -> Result<(usize, usize), CpimError> {
    let rest = src.get(pos..).unwrap_or(&[]);
    let Some(lf) = memchr::memchr(b'\n', rest) else { return Err(CpimError::MissingBlankLine { at: pos }) };
    let lf = pos + lf;
    // RFC 3862 s.2.2: "The character sequence CR,LF (13,10) MUST be used to terminate each line."
    if lf == pos || src.get(lf - 1) != Some(&b'\r') {
        return Err(CpimError::LineEnd { at: lf });
    }
    Ok((pos, lf - 1))
}

struct Scope {
    default: Bytes,
    prefixes: Vec<(Bytes, Bytes)>,
}

fn parse_header(src: &Bytes, start: usize, end: usize, scope: &mut Scope) -> Result<Header, CpimError> {
    let at = start;
    let line = src.get(start..end).unwrap_or(&[]);
    // RFC 3862 s.2.2: "The header MUST NOT contain any control characters (0-31)."
    if let Some(i) = line.iter().position(|&b| is_ctl(b)) {
        return Err(CpimError::ControlChar { at: start + i });
    }
    // RFC 3862 s.2.2: "UTF-8 character encoding [13] MUST be used throughout."
    if std::str::from_utf8(line).is_err() {
        return Err(CpimError::Utf8 { at });
    }
    // Header-name = [ Name-prefix "." ] Name
    let first = line.iter().take_while(|&&b| is_namechar(b)).count();
    let (prefix_len, name_end) = if line.get(first) == Some(&b'.') {
        let second = line.get(first + 1..).map_or(0, |r| r.iter().take_while(|&&b| is_namechar(b)).count());
        if second == 0 {
            return Err(CpimError::HeaderName { at });
        }
        (Some(first), first + 1 + second)
    } else {
        (None, first)
    };
    if first == 0 || line.get(name_end) != Some(&b':') {
        return Err(CpimError::HeaderName { at });
    }
    let mut i = name_end + 1;
    while line.get(i) == Some(&b';') {
        i = scan_param(line, i + 1).ok_or(CpimError::Parameter { at })?;
    }
    let params_end = i;
    // RFC 3862 s.2.2: "There MUST be a single space character (32) following the header name
    // and colon." A line ending here has an empty value (see the module docs).
    let value_start = match line.get(i) {
        None => i,
        Some(b' ') => i + 1,
        Some(_) => return Err(CpimError::Separator { at }),
    };
    let name = src.slice(start..start + name_end);
    let value = src.slice(start + value_start..end);
    // RFC 3862 s.3.4: "A namespace prefix declaration MUST precede any use of that prefix."
    let namespace = match prefix_len {
        Some(n) => {
            let prefix = name.get(..n).unwrap_or(&[]);
            match scope.prefixes.iter().rev().find(|(p, _)| p.as_ref() == prefix) {
                Some((_, uri)) => uri.clone(),
                None => return Err(CpimError::UndeclaredPrefix { at }),
            }
        }
        None => scope.default.clone(),
    };
    let local = name.get(prefix_len.map_or(0, |n| n + 1)..).unwrap_or(&[]);
    let kind = Kind::classify(&namespace, local);
    kind.check(&value).map_err(|rule| CpimError::Value { at, name: kind.name(), rule })?;
    if kind == Kind::Ns {
        if let Some((prefix, uri)) = scan_ns(&value) {
            let uri = value.slice_ref(uri);
            match prefix {
                Some(p) => scope.prefixes.push((value.slice_ref(p), uri)),
                // RFC 3862 s.3.4: "A 'NS' header without a header prefix name specifies a default
                // namespace for subsequent headers".
                None => scope.default = uri,
            }
        }
    }
    Ok(Header {
        name,
        prefix_len,
        params: src.slice(start + name_end + 1..start + params_end),
        value,
        namespace,
        at,
        kind,
    })
}

fn parse_mime_header(src: &Bytes, start: usize, end: usize) -> Result<MimeHeader, CpimError> {
    let at = start;
    let field = src.get(start..end).unwrap_or(&[]);
    // RFC 5322 s.2.2: field-name = 1*ftext, ftext = %d33-57 / %d59-126
    let colon = field.iter().position(|&b| b == b':').ok_or(CpimError::MimeHeader { at })?;
    let name = field.get(..colon).unwrap_or(&[]);
    if name.is_empty() || !name.iter().all(|&b| (33..=126).contains(&b)) {
        return Err(CpimError::MimeHeader { at });
    }
    // Only the CRLFs of folding and HTAB may appear among the controls.
    for (i, &b) in field.iter().enumerate() {
        let folding = matches!(b, b'\r' | b'\n') && {
            let k = i.saturating_sub(usize::from(b == b'\n'));
            field.get(k..k + 3).is_some_and(|w| w.starts_with(b"\r\n") && matches!(w.get(2), Some(b' ' | b'\t')))
        };
        if is_ctl(b) && b != b'\t' && !folding {
            return Err(CpimError::ControlChar { at: start + i });
        }
    }
    if std::str::from_utf8(field).is_err() {
        return Err(CpimError::Utf8 { at });
    }
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let v_start = colon + 1 + field.get(colon + 1..).map_or(0, |r| r.iter().take_while(|b| is_ws(b)).count());
    let v_end = field.iter().rposition(|b| !is_ws(b)).map_or(v_start, |e| (e + 1).max(v_start));
    Ok(MimeHeader { name: src.slice(start..start + colon), value: src.slice(start + v_start..start + v_end), at })
}

fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// RFC 2045 s.5.1 `type "/" subtype` (tokens: no SP, CTL or tspecials).
fn is_mime_type(v: &str) -> bool {
    let token =
        |s: &str| !s.is_empty() && s.bytes().all(|b| (0x21..0x7F).contains(&b) && !b"()<>@,;:\\\"/[]?=".contains(&b));
    essence(v).split_once('/').is_some_and(|(t, s)| token(t) && token(s))
}

impl Message {
    /// Parses a `message/cpim` body with at most [`DEFAULT_MAX_HEADERS`] headers.
    ///
    /// # Errors
    /// See [`CpimError`].
    pub fn parse(src: Bytes) -> Result<Self, CpimError> {
        Self::parse_with(src, DEFAULT_MAX_HEADERS)
    }

    /// Parses a `message/cpim` body; message and MIME headers together may
    /// number at most `max_headers`.
    ///
    /// # Errors
    /// See [`CpimError`]; [`CpimError::TooManyHeaders`] past `max_headers`.
    pub fn parse_with(src: Bytes, max_headers: usize) -> Result<Self, CpimError> {
        let mut scope = Scope { default: Bytes::from_static(CPIM_NAMESPACE.as_bytes()), prefixes: Vec::new() };
        let mut headers: Vec<Header> = Vec::new();
        let mut pos = 0;
        let blank = loop {
            let (start, end) = line_at(&src, pos)?;
            pos = end + 2;
            if start == end {
                break start;
            }
            if headers.len() == max_headers {
                return Err(CpimError::TooManyHeaders { at: start, limit: max_headers });
            }
            let header = parse_header(&src, start, end, &mut scope)?;
            if header.kind.once() && headers.iter().any(|h| h.kind == header.kind) {
                return Err(CpimError::Repeated { at: start, name: header.kind.name() });
            }
            headers.push(header);
        };
        let has = |k: Kind| headers.iter().any(|h| h.kind == k);
        let missing = |name, rule| CpimError::Missing { at: blank, name, rule };
        if !has(Kind::From) {
            return Err(missing("From", "required by this profile, RFC 3862 s.6"));
        }
        if !has(Kind::To) {
            return Err(missing("To", "required by this profile, RFC 3862 s.6"));
        }
        let asks_imdn =
            headers.iter().any(|h| h.kind == Kind::DispositionNotification && !trim_sp(&h.value).is_empty());
        if asks_imdn && !has(Kind::MessageId) {
            // RFC 5438 s.7.1.1.1: "If the IM Sender requests the reception of IMDNs, the IM Sender
            // MUST include a Message-ID header field."
            return Err(missing("imdn.Message-ID", "RFC 5438 s.7.1.1.1"));
        }
        if asks_imdn && !has(Kind::DateTime) {
            // RFC 5438 s.7.1.1.2: "if the IM Sender would like an IMDN, the IM Sender MUST include
            // the DateTime CPIM header field."
            return Err(missing("DateTime", "RFC 5438 s.7.1.1.2"));
        }

        let mut mime_headers: Vec<MimeHeader> = Vec::new();
        let mime_blank = loop {
            let (start, end) = line_at(&src, pos)?;
            pos = end + 2;
            if start == end {
                break start;
            }
            // RFC 5322 s.2.2.3: a line starting with WSP continues the field (folding).
            let mut field_end = end;
            while matches!(src.get(pos), Some(b' ' | b'\t')) {
                let (_, next_end) = line_at(&src, pos)?;
                field_end = next_end;
                pos = next_end + 2;
            }
            if headers.len() + mime_headers.len() == max_headers {
                return Err(CpimError::TooManyHeaders { at: start, limit: max_headers });
            }
            let header = parse_mime_header(&src, start, field_end)?;
            if header.name().eq_ignore_ascii_case("Content-Type") {
                if mime_headers.iter().any(|h| h.name().eq_ignore_ascii_case("Content-Type")) {
                    return Err(CpimError::Repeated { at: start, name: "Content-Type" });
                }
                if !is_mime_type(header.value()) {
                    return Err(CpimError::Value {
                        at: start,
                        name: "Content-Type",
                        rule: "RFC 2045 s.5.1 type \"/\" subtype",
                    });
                }
            }
            mime_headers.push(header);
        };
        let message = Self { headers, mime_headers, body: src.slice(pos..), body_at: pos };
        if message.mime_header("Content-Type").is_none() {
            // RFC 3862 s.2.4: "The MIME content headers MUST include at least a Content-Type header."
            return Err(CpimError::Missing { at: mime_blank, name: "Content-Type", rule: "RFC 3862 s.2.4" });
        }
        if message.is_notification() && message.imdn_message_id().is_none() {
            // RFC 5438 s.7.2.1: "An IMDN MUST contain a Message-ID header field."
            return Err(CpimError::Missing { at: blank, name: "imdn.Message-ID", rule: "RFC 5438 s.7.2.1" });
        }
        Ok(message)
    }

    /// The message headers, in order.
    #[must_use]
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The headers named `local` in `namespace`, in order.
    pub fn find<'a>(&'a self, namespace: &'a str, local: &'a str) -> impl Iterator<Item = &'a Header> + 'a {
        self.headers.iter().filter(move |h| h.is(namespace, local))
    }

    fn of(&self, kind: Kind) -> impl Iterator<Item = &Header> + '_ {
        self.headers.iter().filter(move |h| h.kind == kind)
    }

    /// `From` (RFC 3862 s.4.1).
    #[must_use]
    pub fn from(&self) -> Address {
        self.of(Kind::From).next().map(|h| Address::decode(&h.value)).unwrap_or_default()
    }

    /// Every `To` (RFC 3862 s.4.2), in order.
    pub fn to(&self) -> impl Iterator<Item = Address> + '_ {
        self.of(Kind::To).map(|h| Address::decode(&h.value))
    }

    /// Every `cc` (RFC 3862 s.4.3), in order.
    pub fn cc(&self) -> impl Iterator<Item = Address> + '_ {
        self.of(Kind::Cc).map(|h| Address::decode(&h.value))
    }

    /// `DateTime` as written (RFC 3862 s.4.4; not checked).
    #[must_use]
    pub fn date_time(&self) -> Option<&str> {
        self.of(Kind::DateTime).next().map(Header::value)
    }

    /// Every `Subject` (RFC 3862 s.4.5), in order.
    pub fn subjects(&self) -> impl Iterator<Item = Subject> + '_ {
        self.of(Kind::Subject)
            .map(|h| Subject { lang: h.lang().map(String::from), text: h.unescaped_value().into_owned() })
    }

    /// Every `NS` declaration (RFC 3862 s.4.6): prefix (`None` for a default
    /// namespace) and URI, in order.
    pub fn namespaces(&self) -> impl Iterator<Item = (Option<&str>, &str)> + '_ {
        self.of(Kind::Ns).filter_map(|h| {
            let (prefix, uri) = scan_ns(h.value().as_bytes())?;
            // Both are ASCII, cut at ASCII boundaries of a str: from_utf8 cannot fail.
            let text = |b| std::str::from_utf8(b).ok();
            Some((prefix.and_then(text), text(uri)?))
        })
    }

    /// The names listed by every `Require` (RFC 3862 s.4.7), in order.
    pub fn require(&self) -> impl Iterator<Item = &str> + '_ {
        self.of(Kind::Require).flat_map(|h| h.value().split(',').map(|n| n.trim_matches(' ')))
    }

    /// `imdn.Message-ID` (RFC 5438 s.6.3), whatever prefix names the namespace.
    #[must_use]
    pub fn imdn_message_id(&self) -> Option<&str> {
        self.of(Kind::MessageId).next().map(Header::value)
    }

    /// `imdn.Disposition-Notification` (RFC 5438 s.6.2), whatever prefix names the namespace.
    #[must_use]
    pub fn disposition_notification(&self) -> Option<DispositionNotification> {
        self.of(Kind::DispositionNotification).next().and_then(|h| DispositionNotification::scan(&h.value))
    }

    /// `imdn.Original-To` (RFC 5438 s.6.4).
    #[must_use]
    pub fn original_to(&self) -> Option<Address> {
        self.of(Kind::OriginalTo).next().map(|h| Address::decode(&h.value))
    }

    /// The encapsulated MIME headers, in order.
    #[must_use]
    pub fn mime_headers(&self) -> &[MimeHeader] {
        &self.mime_headers
    }

    /// The first MIME header named `name` (case-insensitive).
    #[must_use]
    pub fn mime_header(&self, name: &str) -> Option<&str> {
        self.mime_headers.iter().find(|h| h.name().eq_ignore_ascii_case(name)).map(MimeHeader::value)
    }

    /// The content's `Content-Type` (always present).
    #[must_use]
    pub fn content_type(&self) -> &str {
        self.mime_header("Content-Type").unwrap_or("")
    }

    /// The content's `Content-ID`.
    #[must_use]
    pub fn content_id(&self) -> Option<&str> {
        self.mime_header("Content-ID")
    }

    /// The content's `Content-Disposition`.
    #[must_use]
    pub fn content_disposition(&self) -> Option<&str> {
        self.mime_header("Content-Disposition")
    }

    /// Whether the disposition type is `notification` (RFC 5438 s.7.1.2: "An IM
    /// Sender can determine an IMDN is a disposition notification by noting if
    /// the Content-Disposition in the IMDN is "notification"").
    #[must_use]
    pub fn is_notification(&self) -> bool {
        self.content_disposition().is_some_and(|d| essence(d).eq_ignore_ascii_case("notification"))
    }

    /// The content, a slice of the parsed input.
    #[must_use]
    pub const fn body(&self) -> &Bytes {
        &self.body
    }

    /// Byte offset of the content in the parsed input.
    #[must_use]
    pub const fn body_offset(&self) -> usize {
        self.body_at
    }

    /// The type to check against a peer's `accept-types` and
    /// `accept-wrapped-types` ([`crate::media::accepts`]).
    #[must_use]
    pub fn body_type(&self) -> BodyType<'_> {
        BodyType { content_type: CONTENT_TYPE, wrapped: Some(self.content_type()) }
    }
}

// ---------------------------------------------------------------------------
// Builder

/// The fields of a CPIM message, written canonically by [`Builder::build`].
///
/// Order on the wire: `From`, `To`s, `cc`s, `DateTime`, `Subject`s,
/// `NS: imdn <urn:ietf:params:imdn>` (when an IMDN header is written),
/// [`Builder::namespaces`], one `Require`, `imdn.Message-ID`,
/// `imdn.Disposition-Notification`, `imdn.Original-To`,
/// [`Builder::headers`]; a blank line; `Content-Type`, `Content-ID`,
/// `Content-Disposition`, [`Builder::mime_headers`]; a blank line; the body.
/// Text fields are given unescaped; the builder escapes them (RFC 3862 s.2.3.1).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Builder {
    /// `From`.
    pub from: Address,
    /// `To`s (at least one).
    pub to: Vec<Address>,
    /// `cc`s.
    pub cc: Vec<Address>,
    /// `DateTime`, written as given (no clock here); no control character or backslash.
    pub date_time: Option<String>,
    /// `Subject`s.
    pub subjects: Vec<Subject>,
    /// Prefixed `NS` declarations other than the IMDN one, for [`Builder::headers`].
    pub namespaces: Vec<Namespace>,
    /// Header names for one `Require`.
    pub require: Vec<String>,
    /// `imdn.Message-ID` (an RFC 3862 Token).
    pub message_id: Option<String>,
    /// `imdn.Disposition-Notification`.
    pub disposition_notification: Option<DispositionNotification>,
    /// `imdn.Original-To`.
    pub original_to: Option<Address>,
    /// Other message headers, name as written (`imdn.IMDN-Route`,
    /// `MyFeatures.VitalMessageOption`) and unescaped value; a prefix is
    /// `imdn` or one of [`Builder::namespaces`].
    pub headers: Vec<(String, String)>,
    /// The content's `Content-Type`.
    pub content_type: String,
    /// `Content-ID`.
    pub content_id: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// Other MIME headers (values unfolded, without surrounding whitespace).
    pub mime_headers: Vec<(String, String)>,
    /// The content.
    pub body: Bytes,
}

const CORE_NAMES: [&str; 7] = ["From", "To", "cc", "DateTime", "Subject", "NS", "Require"];
const IMDN_TYPED: [&str; 3] = ["Message-ID", "Disposition-Notification", "Original-To"];

fn check_mime_value(field: &'static str, v: &str) -> Result<(), BuildError> {
    let ctl = v.bytes().any(|b| is_ctl(b) && b != b'\t');
    let padded = v.starts_with([' ', '\t']) || v.ends_with([' ', '\t']);
    if ctl || padded {
        return Err(invalid(field, "control character or surrounding whitespace (RFC 5322 s.2.2)"));
    }
    Ok(())
}

impl Builder {
    /// A builder with the required fields; the rest empty.
    #[must_use]
    pub fn new(from: Address, to: Address, content_type: impl Into<String>, body: Bytes) -> Self {
        Self { from, to: vec![to], content_type: content_type.into(), body, ..Self::default() }
    }

    fn writes_imdn_ns(&self) -> bool {
        self.message_id.is_some()
            || self.disposition_notification.is_some()
            || self.original_to.is_some()
            || self.headers.iter().any(|(n, _)| n.split_once('.').is_some_and(|(p, _)| p == IMDN_PREFIX))
    }

    fn check(&self) -> Result<(), BuildError> {
        self.from.check("from")?;
        if self.to.is_empty() {
            return Err(invalid("to", "no recipient (required by this profile, RFC 3862 s.6)"));
        }
        self.to.iter().try_for_each(|a| a.check("to"))?;
        self.cc.iter().try_for_each(|a| a.check("cc"))?;
        if let Some(a) = &self.original_to {
            a.check("original_to")?;
        }
        if self.date_time.as_ref().is_some_and(|d| d.bytes().any(|b| is_ctl(b) || b == b'\\')) {
            return Err(invalid("date_time", "control character or backslash"));
        }
        if self.subjects.iter().any(|s| s.lang.as_ref().is_some_and(|l| !is_token(l.as_bytes()))) {
            return Err(invalid("subjects", "lang is not a Token (RFC 3862 s.3.6)"));
        }
        for (i, ns) in self.namespaces.iter().enumerate() {
            if !is_name(ns.prefix.as_bytes()) || ns.prefix == IMDN_PREFIX {
                return Err(invalid("namespaces", "prefix is not a Name, or is \"imdn\" (RFC 3862 s.3.6)"));
            }
            if self.namespaces.iter().take(i).any(|o| o.prefix == ns.prefix) {
                return Err(invalid("namespaces", "prefix declared twice"));
            }
            if !is_absolute_uri(ns.uri.as_bytes())
                || same_namespace(&ns.uri, CPIM_NAMESPACE)
                || same_namespace(&ns.uri, IMDN_NAMESPACE)
            {
                return Err(invalid("namespaces", "URI is not absolute, or is the CPIM or IMDN namespace"));
            }
        }
        if self.require.iter().any(|r| !is_header_name(r.as_bytes())) {
            return Err(invalid("require", "not a Header-name (RFC 3862 s.4.7)"));
        }
        if self.message_id.as_ref().is_some_and(|m| !is_token(m.as_bytes())) {
            return Err(invalid("message_id", "not a Token (RFC 5438 s.10)"));
        }
        if self.disposition_notification.is_some_and(|d| !d.is_empty())
            && (self.message_id.is_none() || self.date_time.is_none())
        {
            return Err(invalid("disposition_notification", "needs message_id and date_time (RFC 5438 s.7.1.1)"));
        }
        for (name, _) in &self.headers {
            let ok = is_header_name(name.as_bytes())
                && match name.split_once('.') {
                    None => !CORE_NAMES.contains(&name.as_str()),
                    Some((IMDN_PREFIX, local)) => !IMDN_TYPED.contains(&local),
                    Some((p, _)) => self.namespaces.iter().any(|ns| ns.prefix == p),
                };
            if !ok {
                return Err(invalid("headers", "not a Header-name with a declared prefix, or a typed header"));
            }
        }
        if !is_mime_type(&self.content_type) {
            return Err(invalid("content_type", "not type \"/\" subtype (RFC 2045 s.5.1)"));
        }
        check_mime_value("content_type", &self.content_type)?;
        if let Some(v) = &self.content_id {
            check_mime_value("content_id", v)?;
        }
        if let Some(v) = &self.content_disposition {
            check_mime_value("content_disposition", v)?;
        }
        for (name, value) in &self.mime_headers {
            let typed =
                ["Content-Type", "Content-ID", "Content-Disposition"].iter().any(|t| t.eq_ignore_ascii_case(name));
            if typed || name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
                return Err(invalid("mime_headers", "not an RFC 5322 field-name, or a typed header"));
            }
            check_mime_value("mime_headers", value)?;
        }
        Ok(())
    }

    /// Writes the headers: everything up to and including the blank line
    /// before the body. Send it followed by [`Builder::body`] to avoid copying
    /// the content.
    ///
    /// # Errors
    /// [`BuildError::Invalid`] naming the first field that cannot be written.
    pub fn build_head(&self) -> Result<Bytes, BuildError> {
        self.check()?;
        let mut out = String::with_capacity(256);
        let mut line = |name: &str, params: &str, value: &str| {
            let _ = write!(out, "{name}:{params} {value}\r\n");
        };
        let escaped = |s: &str| {
            let mut e = String::with_capacity(s.len());
            escape_into(&mut e, s, false);
            e
        };
        line("From", "", &self.from.to_string());
        self.to.iter().for_each(|a| line("To", "", &a.to_string()));
        self.cc.iter().for_each(|a| line("cc", "", &a.to_string()));
        if let Some(d) = &self.date_time {
            line("DateTime", "", d);
        }
        for s in &self.subjects {
            // RFC 3862 s.3.3: "A message header may indicate a language for its value by
            // including ';lang=tag' after the header name and colon".
            let lang = s.lang.as_ref().map(|l| format!(";lang={l}")).unwrap_or_default();
            line("Subject", &lang, &escaped(&s.text));
        }
        if self.writes_imdn_ns() {
            // RFC 5438 s.6.1: "NS: imdn <urn:ietf:params:imdn>".
            line("NS", "", &format!("{IMDN_PREFIX} <{IMDN_NAMESPACE}>"));
        }
        for ns in &self.namespaces {
            line("NS", "", &format!("{} <{}>", ns.prefix, ns.uri));
        }
        if !self.require.is_empty() {
            line("Require", "", &self.require.join(","));
        }
        if let Some(id) = &self.message_id {
            line("imdn.Message-ID", "", id);
        }
        if let Some(dn) = &self.disposition_notification {
            line("imdn.Disposition-Notification", "", &dn.to_value());
        }
        if let Some(a) = &self.original_to {
            line("imdn.Original-To", "", &a.to_string());
        }
        for (name, value) in &self.headers {
            line(name, "", &escaped(value));
        }
        out.push_str("\r\n");
        out.push_str("Content-Type: ");
        out.push_str(&self.content_type);
        out.push_str("\r\n");
        for (name, value) in [("Content-ID", &self.content_id), ("Content-Disposition", &self.content_disposition)] {
            if let Some(v) = value {
                let _ = write!(out, "{name}: {v}\r\n");
            }
        }
        for (name, value) in &self.mime_headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        out.push_str("\r\n");
        Ok(Bytes::from(out))
    }

    /// Writes the whole message: [`Builder::build_head`] then the body.
    ///
    /// # Errors
    /// As [`Builder::build_head`].
    pub fn build(&self) -> Result<Bytes, BuildError> {
        let head = self.build_head()?;
        let mut out = BytesMut::with_capacity(head.len() + self.body.len());
        out.extend_from_slice(&head);
        out.extend_from_slice(&self.body);
        Ok(out.freeze())
    }

    /// The fields of a parsed message, read through its typed accessors;
    /// headers in another namespace keep their name, IMDN ones get the
    /// `imdn` prefix.
    ///
    /// `None` when the builder cannot say the same thing: an `NS` without a
    /// prefix, a prefix declared twice or declared for the CPIM namespace,
    /// or the prefix `imdn` declared for another namespace.
    #[must_use]
    pub fn from_message(m: &Message) -> Option<Self> {
        let mut b = Self {
            from: m.from(),
            to: m.to().collect(),
            cc: m.cc().collect(),
            date_time: m.date_time().map(String::from),
            subjects: m.subjects().collect(),
            require: m.require().map(String::from).collect(),
            message_id: m.imdn_message_id().map(String::from),
            disposition_notification: m.disposition_notification(),
            original_to: m.original_to(),
            content_type: m.content_type().to_owned(),
            content_id: m.content_id().map(String::from),
            content_disposition: m.content_disposition().map(String::from),
            body: m.body().clone(),
            ..Self::default()
        };
        for (prefix, uri) in m.namespaces() {
            let prefix = prefix?;
            if same_namespace(uri, IMDN_NAMESPACE) {
                continue;
            }
            if prefix == IMDN_PREFIX
                || same_namespace(uri, CPIM_NAMESPACE)
                || b.namespaces.iter().any(|n| n.prefix == prefix)
            {
                return None;
            }
            b.namespaces.push(Namespace { prefix: prefix.to_owned(), uri: uri.to_owned() });
        }
        for h in m.headers().iter().filter(|h| h.kind == Kind::Other) {
            let name = if same_namespace(h.namespace(), IMDN_NAMESPACE) {
                format!("{IMDN_PREFIX}.{}", h.local_name())
            } else {
                h.name().to_owned()
            };
            b.headers.push((name, h.unescaped_value().into_owned()));
        }
        for h in m.mime_headers() {
            let typed =
                ["Content-Type", "Content-ID", "Content-Disposition"].iter().any(|t| t.eq_ignore_ascii_case(h.name()));
            if !typed {
                b.mime_headers.push((h.name().to_owned(), h.value().to_owned()));
            }
        }
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip() {
        let cases = ["plain", "a\\b", "tab\there", "nl\r\n", "\u{0}\u{1f}\u{7f}\u{8}", "quote\"'", "é ünï 😀", ""];
        for s in cases {
            for quoted in [false, true] {
                let mut e = String::new();
                escape_into(&mut e, s, quoted);
                assert!(!e.bytes().any(is_ctl), "{e:?}");
                assert_eq!(unescape(&e), s, "{e:?}");
            }
        }
        let lenient: &[(&str, &str)] =
            &[("a\\", "a"), ("\\q", "q"), ("\\u12", "u12"), ("\\u00e9x", "éx"), ("\\uD800", "\u{FFFD}"), ("\\'", "'")];
        for &(input, want) in lenient {
            assert_eq!(unescape(input), want, "{input}");
        }
    }

    #[test]
    fn name_addrs() {
        type Want = Option<(Option<&'static str>, &'static str)>;
        let cases: &[(&str, Want)] = &[
            ("<im:pooh@100akerwood.com>", Some((None, "im:pooh@100akerwood.com"))),
            ("MR SANDERS <im:piglet@100akerwood.com>", Some((Some("MR SANDERS"), "im:piglet@100akerwood.com"))),
            ("\"A \\\"B\\\"\" <sip:a@b>", Some((Some("A \"B\""), "sip:a@b"))),
            ("\"A\"<sip:a@b>", Some((Some("A"), "sip:a@b"))),
            ("+33612 <tel:+33612>", Some((Some("+33612"), "tel:+33612"))),
            ("A  B <sip:a@b>", None),
            ("A<sip:a@b>", None),
            ("(A) <sip:a@b>", None),
            ("<sip:a@b> x", None),
            ("<a@b>", None),
            ("<sip:>", None),
            ("<sip:a b>", None),
            ("\"open <sip:a@b>", None),
            ("", None),
        ];
        for &(input, want) in cases {
            let got = scan_name_addr(input.as_bytes()).map(|_| Address::decode(input.as_bytes()));
            let want = want.map(|(n, u)| Address { display_name: n.map(String::from), uri: u.into() });
            assert_eq!(got, want, "{input}");
        }
    }

    #[test]
    fn disposition_values() {
        let dn = |p, n, d| DispositionNotification {
            positive_delivery: p,
            negative_delivery: n,
            processing: false,
            display: d,
        };
        let cases: &[(&str, Option<DispositionNotification>)] = &[
            ("", Some(dn(false, false, false))),
            ("positive-delivery, negative-delivery", Some(dn(true, true, false))),
            ("display", Some(dn(false, false, true))),
            ("positive-delivery,display ;x=1 ; y=\"a,b\"", Some(dn(true, false, true))),
            ("future-thing, display", Some(dn(false, false, true))),
            ("positive-delivery,", None),
            (",display", None),
            ("display;", None),
            ("display x", None),
        ];
        for &(input, want) in cases {
            assert_eq!(DispositionNotification::scan(input.as_bytes()), want, "{input}");
        }
        assert_eq!(dn(true, true, true).to_value(), "positive-delivery, negative-delivery, display");
    }

    #[test]
    fn header_lines() {
        let scope = || Scope { default: Bytes::from_static(CPIM_NAMESPACE.as_bytes()), prefixes: Vec::new() };
        type Want = Result<(&'static str, &'static str, &'static str), CpimError>;
        let cases: &[(&str, Want)] = &[
            ("Subject:;lang=fr beau temps", Ok(("Subject", ";lang=fr", "beau temps"))),
            ("Subject: ", Ok(("Subject", "", ""))),
            ("Subject:", Ok(("Subject", "", ""))),
            ("X:;a=\"q;q\";b=1 v", Ok(("X", ";a=\"q;q\";b=1", "v"))),
            ("Subject:x", Err(CpimError::Separator { at: 0 })),
            ("Subject :x", Err(CpimError::HeaderName { at: 0 })),
            ("a.b.c: x", Err(CpimError::HeaderName { at: 0 })),
            (".b: x", Err(CpimError::HeaderName { at: 0 })),
            ("a.: x", Err(CpimError::HeaderName { at: 0 })),
            ("X:;=1 v", Err(CpimError::Parameter { at: 0 })),
            ("X: a\tb", Err(CpimError::ControlChar { at: 4 })),
            ("a.b: x", Err(CpimError::UndeclaredPrefix { at: 0 })),
            (
                "From: x",
                Err(CpimError::Value { at: 0, name: "From", rule: "RFC 3862 s.4.1 [ Formal-name ] \"<\" URI \">\"" }),
            ),
        ];
        for (input, want) in cases {
            let src = Bytes::copy_from_slice(input.as_bytes());
            let got = parse_header(&src, 0, src.len(), &mut scope())
                .map(|h| (h.name().to_owned(), h.params().to_owned(), h.value().to_owned()));
            let want = want.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
            assert_eq!(got, want, "{input}");
        }
    }
}
