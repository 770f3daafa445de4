//! MSRP media descriptions (RFC 4975 s.8, RFC 6135, RFC 6714, RFC 5547) read
//! from and written to SDP.
//!
//! [`MsrpSdp::parse`] parses an SDP body with `sip-lite` and checks every
//! `m=message` description against the MSRP rules; [`MsrpMedia`] holds what a
//! CPM entity needs from one description. Values are slices of the parsed
//! buffer (`Bytes`), nothing is copied. [`LocalMedia`] writes our own offer or
//! answer.
//!
//! Decisions where the RFCs leave room (each also stated where enforced):
//! - A description with port 0 (a rejected stream, or a capability-only SDP,
//!   RFC 5547 s.9.3) needs neither `a=path` nor `a=accept-types`; what it has
//!   is still checked.
//! - `a=path`, `a=accept-types`, `a=accept-wrapped-types`, `a=max-size`,
//!   `a=setup`, `a=msrp-cema` and the RFC 5547 attributes may appear once per
//!   description; a repetition is an error (which copy counts is not written
//!   anywhere). So is a second direction attribute.
//! - Runs of spaces, and spaces before the first entry, are tolerated between
//!   the entries of `a=path` and the format lists (RFC 4976 s.11 prints them);
//!   an entry itself follows the ABNF exactly.
//! - `a=setup` and the direction attribute may also be given at session
//!   level (RFC 4145 s.4, RFC 8866 s.6.7); the media-level value wins.

use std::fmt;

use bytes::Bytes;
use msrp_core::MsrpUri;
use sip_lite::sdp::{MediaDescription, SessionDescription};

use crate::error::{MediaError, SdpMediaError, UsageError};

// ---------------------------------------------------------------------------
// Small value types

/// The `<proto>` of an MSRP `m=` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Proto {
    /// `TCP/MSRP`.
    TcpMsrp,
    /// `TCP/TLS/MSRP`.
    TcpTlsMsrp,
}

impl Proto {
    /// The token as written in SDP.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TcpMsrp => "TCP/MSRP",
            Self::TcpTlsMsrp => "TCP/TLS/MSRP",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        // RFC 4975 s.8.1: "An offered or accepted media-line for MSRP over TCP MUST include a
        // protocol field value of "TCP/MSRP", or "TCP/TLS/MSRP" for TLS."
        match s {
            "TCP/MSRP" => Some(Self::TcpMsrp),
            "TCP/TLS/MSRP" => Some(Self::TcpTlsMsrp),
            _ => None,
        }
    }
}

/// The `a=setup` role (RFC 4145 s.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Setup {
    /// The endpoint will open the connection.
    Active,
    /// The endpoint will accept the connection.
    Passive,
    /// Either (offers only).
    Actpass,
    /// Neither, for now; RFC 6135 s.4.2.1 makes MSRP treat it as absent.
    Holdconn,
}

impl Setup {
    /// The value as written in SDP.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Passive => "passive",
            Self::Actpass => "actpass",
            Self::Holdconn => "holdconn",
        }
    }

    /// Parses a role value (case-sensitive, as RFC 4145 spells them).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "passive" => Some(Self::Passive),
            "actpass" => Some(Self::Actpass),
            "holdconn" => Some(Self::Holdconn),
            _ => None,
        }
    }

    /// The value as MSRP uses it: `holdconn` counts as absent.
    #[must_use]
    pub const fn effective(setup: Option<Self>) -> Option<Self> {
        match setup {
            // RFC 6135 s.4.2.1: "If an MSRP UA receives the "holdconn" attribute value, it MUST
            // ignore it and process the message as if it did not contain an a=setup attribute."
            Some(Self::Holdconn) | None => None,
            Some(other) => Some(other),
        }
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The SDP direction attribute (RFC 4975 s.8.9, RFC 3264 s.5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Direction {
    /// `sendrecv` (the default).
    #[default]
    SendRecv,
    /// `sendonly`.
    SendOnly,
    /// `recvonly`.
    RecvOnly,
    /// `inactive`.
    Inactive,
}

impl Direction {
    /// The attribute name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "sendrecv" => Some(Self::SendRecv),
            "sendonly" => Some(Self::SendOnly),
            "recvonly" => Some(Self::RecvOnly),
            "inactive" => Some(Self::Inactive),
            _ => None,
        }
    }

    /// The direction an answer may take to this offered one (RFC 3264 s.6.1).
    #[must_use]
    pub const fn answer_to(self) -> Self {
        match self {
            Self::SendRecv => Self::SendRecv,
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            Self::Inactive => Self::Inactive,
        }
    }
}

// ---------------------------------------------------------------------------
// Media types and format lists

/// RFC 3261 s.25.1 `token` (RFC 4975 s.9 uses it for `type`, `subtype` and
/// `parm-attribute`).
const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~');
        b += 1;
    }
    t
};

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| TOKEN[usize::from(b)])
}

/// One `format-entry` of `a=accept-types` / `a=accept-wrapped-types`
/// (RFC 4975 s.8.6): `*`, `type/*` or `type/subtype`, with parameters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MediaType {
    text: Bytes,
    /// Length of `type/subtype` (the text before any `;`).
    essence: usize,
}

impl MediaType {
    /// Parses one format-entry.
    ///
    /// # Errors
    /// `Err(())` when `text` is not a `format-entry`.
    #[expect(clippy::result_unit_err, reason = "the caller knows which attribute it parsed and names the rule")]
    pub fn parse(text: Bytes) -> Result<Self, ()> {
        let essence = scan_format_entry(&text).ok_or(())?;
        Ok(Self { text, essence })
    }

    /// Parses from a str (copies it).
    ///
    /// # Errors
    /// As [`MediaType::parse`].
    #[expect(clippy::result_unit_err, reason = "as MediaType::parse")]
    pub fn parse_str(text: &str) -> Result<Self, ()> {
        Self::parse(Bytes::copy_from_slice(text.as_bytes()))
    }

    /// The entry as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text).unwrap_or("")
    }

    /// `type/subtype` (or `*`), without parameters.
    #[must_use]
    pub fn essence(&self) -> &str {
        self.as_str().get(..self.essence).unwrap_or("")
    }

    /// Whether this entry (with its wildcards) covers `content_type`, a
    /// `type/subtype` with or without parameters.
    ///
    /// RFC 4975 s.8.6: "a format-entry with one or more parameters is assumed
    /// to match the same format-entry with no parameters"; types compare
    /// case-insensitively (RFC 2045 s.5.1).
    #[must_use]
    pub fn matches(&self, content_type: &str) -> bool {
        let wanted = content_type.split(';').next().unwrap_or("").trim();
        let essence = self.essence();
        // RFC 4975 s.8.6: "An entry of "*" in the accept-types attribute indicates that the sender
        // may attempt to send content with media-types that have not been explicitly listed."
        if essence == "*" {
            return true;
        }
        let (Some((ty, sub)), Some((wty, wsub))) = (essence.split_once('/'), wanted.split_once('/')) else {
            return false;
        };
        // RFC 4975 s.8.6: "an entry with an explicit type and a "*" character as the subtype
        // indicates that the sender may attempt to send content with any subtype of that type."
        ty.eq_ignore_ascii_case(wty) && (sub == "*" || sub.eq_ignore_ascii_case(wsub))
    }
}

impl fmt::Debug for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MediaType").field(&self.as_str()).finish()
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Scans `format-entry`; returns the length of its `type/subtype` part.
fn scan_format_entry(s: &[u8]) -> Option<usize> {
    // RFC 4975 s.8.6: format-entry = ( ( (type "/" subtype) / (type "/" "*") ) *( ";" type-param ) ) / ("*")
    if s == b"*" {
        return Some(1);
    }
    let essence = s.iter().position(|&b| b == b';').unwrap_or(s.len());
    let (ty, sub) = split_once(s.get(..essence)?, b'/')?;
    // "*" is a token character, so `type "/" "*"` is covered by `subtype = token`.
    if !is_token(ty) || !is_token(sub) {
        return None;
    }
    let mut rest = s.get(essence..)?;
    while let Some(tail) = rest.strip_prefix(b";") {
        // type-param = parm-attribute "=" parm-value; parm-value = token / quoted-string
        let eq = tail.iter().position(|&b| b == b'=')?;
        if !is_token(tail.get(..eq)?) {
            return None;
        }
        let value = tail.get(eq + 1..)?;
        let used = if value.first() == Some(&b'"') {
            quoted_string_len(value)?
        } else {
            value.iter().position(|&b| !TOKEN[usize::from(b)]).unwrap_or(value.len())
        };
        if used == 0 {
            return None;
        }
        rest = value.get(used..)?;
    }
    rest.is_empty().then_some(essence)
}

/// Length of the RFC 3261 `quoted-string` at the start of `s` (no leading LWS).
fn quoted_string_len(s: &[u8]) -> Option<usize> {
    if s.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while let Some(&b) = s.get(i) {
        match b {
            b'"' => return Some(i + 1),
            // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
            b'\\' => {
                let next = *s.get(i + 1)?;
                if matches!(next, b'\n' | b'\r') || next > 0x7F {
                    return None;
                }
                i += 2;
            }
            // qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
            0x20 | b'\t' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF => i += 1,
            _ => return None,
        }
    }
    None
}

fn split_once(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Splits a list on SP, tolerating runs of SP and SP at the ends (see the
/// module docs); a quoted-string may hold SP.
fn split_entries(s: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        while s.get(i) == Some(&b' ') {
            i += 1;
        }
        if i >= s.len() {
            break;
        }
        let start = i;
        let mut quoted = false;
        while let Some(&b) = s.get(i) {
            match b {
                b' ' if !quoted => break,
                b'"' => quoted = !quoted,
                b'\\' if quoted => i += 1,
                _ => {}
            }
            i += 1;
        }
        let end = i.min(s.len());
        out.push((start, end));
    }
    out
}

/// Whether `content_type` may be sent to a peer that announced these lists
/// (RFC 4975 s.8.6): unwrapped, it must be in `accept_types`; wrapped in
/// `container`, the container must be in `accept_types` and the inner type in
/// either list.
#[must_use]
pub fn accepts(accept_types: &[MediaType], accept_wrapped_types: &[MediaType], body: &BodyType<'_>) -> bool {
    let in_types = |t: &str| accept_types.iter().any(|e| e.matches(t));
    match body.wrapped {
        // RFC 4975 s.8.6: "it MUST NOT send a top-level (i.e., not wrapped) MIME document of a
        // type not signaled in the accept-types attribute."
        None => in_types(body.content_type),
        // RFC 4975 s.8.6: "the specified types may only be used when wrapped inside container
        // types listed in the accept-types attribute."
        Some(inner) => {
            in_types(body.content_type) && (in_types(inner) || accept_wrapped_types.iter().any(|e| e.matches(inner)))
        }
    }
}

/// The type of a message body: its Content-Type, and the inner type when it
/// is a container (`message/cpim`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyType<'a> {
    /// The top-level Content-Type.
    pub content_type: &'a str,
    /// The wrapped type, for a container.
    pub wrapped: Option<&'a str>,
}

// ---------------------------------------------------------------------------
// RFC 5547 attributes

/// The RFC 5547 file-transfer attributes of a description, as written
/// (each checked against its RFC 5547 s.6 grammar).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileTransfer {
    /// `a=file-selector` value; `Some("")` for the bare attribute (capability query).
    pub selector: Option<Bytes>,
    /// `a=file-transfer-id`.
    pub transfer_id: Option<Bytes>,
    /// `a=file-disposition`.
    pub disposition: Option<Bytes>,
    /// `a=file-date`.
    pub date: Option<Bytes>,
    /// `a=file-icon`.
    pub icon: Option<Bytes>,
    /// `a=file-range`: start offset and stop offset (`None` for `*`).
    pub range: Option<(u64, Option<u64>)>,
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

/// RFC 8866 `integer = POS-DIGIT *DIGIT`.
fn sdp_integer(s: &[u8]) -> Option<u64> {
    if !s.first().is_some_and(|b| (b'1'..=b'9').contains(b)) {
        return None;
    }
    digits(s)
}

/// `1*DIGIT` into a u64.
fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(
        0u64,
        |n, &b| {
            if b.is_ascii_digit() {
                n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
            } else {
                None
            }
        },
    )
}

/// `filename-string = 1*(filename-char / percent-encoded)` up to a DQUOTE;
/// returns the length consumed (without the closing DQUOTE).
fn filename_string_len(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        match b {
            b'"' => break,
            // percent-encoded = "%" HEXDIG HEXDIG
            b'%' => {
                if !(s.get(i + 1).copied().is_some_and(is_hex) && s.get(i + 2).copied().is_some_and(is_hex)) {
                    return None;
                }
                i += 3;
            }
            // filename-char = %x01-09/%x0B-0C/%x0E-21/%x23-24/%x26-FF
            0x00 | b'\n' | b'\r' => return None,
            _ => i += 1,
        }
    }
    (i > 0).then_some(i)
}

fn check_selector(s: &[u8]) -> bool {
    // RFC 5547 s.6: file-selector-attr = "file-selector" [":" selector *(SP selector)]
    let mut rest = s;
    let mut count = 0;
    loop {
        let used = if let Some(v) = rest.strip_prefix(b"name:") {
            // filename-selector = "name:" DQUOTE filename-string DQUOTE
            if v.first() != Some(&b'"') {
                return false;
            }
            let Some(n) = v.get(1..).and_then(filename_string_len) else { return false };
            if v.get(n + 1) != Some(&b'"') {
                return false;
            }
            5 + n + 2
        } else if let Some(v) = rest.strip_prefix(b"size:") {
            // filesize-selector = "size:" filesize-value; integer (RFC 4566), "0" for an empty file
            let n = v.iter().position(|&b| b == b' ').unwrap_or(v.len());
            let Some(num) = v.get(..n) else { return false };
            if !(num == b"0" || sdp_integer(num).is_some()) {
                return false;
            }
            5 + n
        } else if let Some(v) = rest.strip_prefix(b"type:") {
            // filetype-selector = "type:" type "/" subtype *(";" ft-parameter)
            // ft-parameter = attribute "=" DQUOTE value-string DQUOTE
            let mut i = v.iter().position(|&b| b == b';' || b == b' ').unwrap_or(v.len());
            let Some((ty, sub)) = v.get(..i).and_then(|e| split_once(e, b'/')) else { return false };
            if !is_token(ty) || !is_token(sub) {
                return false;
            }
            while v.get(i) == Some(&b';') {
                let Some(tail) = v.get(i + 1..) else { return false };
                let Some(eq) = tail.iter().position(|&b| b == b'=') else { return false };
                if !tail.get(..eq).is_some_and(is_token) || tail.get(eq + 1) != Some(&b'"') {
                    return false;
                }
                let Some(n) = tail.get(eq + 2..).and_then(filename_string_len) else { return false };
                if tail.get(eq + 2 + n) != Some(&b'"') {
                    return false;
                }
                i += 1 + eq + 2 + n + 1;
            }
            5 + i
        } else if let Some(v) = rest.strip_prefix(b"hash:") {
            // hash-selector = "hash:" hash-algorithm ":" hash-value; hash-value = 2HEXDIG *(":" 2HEXDIG)
            let n = v.iter().position(|&b| b == b' ').unwrap_or(v.len());
            let Some((alg, value)) = v.get(..n).and_then(|h| split_once(h, b':')) else { return false };
            if !is_token(alg) || value.is_empty() || (value.len() + 1) % 3 != 0 {
                return false;
            }
            let ok = value.iter().enumerate().all(|(i, &b)| if i % 3 == 2 { b == b':' } else { is_hex(b) });
            if !ok {
                return false;
            }
            5 + n
        } else {
            return false;
        };
        count += 1;
        match rest.get(used..) {
            Some([]) => return count > 0,
            Some([b' ', tail @ ..]) if !tail.is_empty() => rest = tail,
            _ => return false,
        }
    }
}

fn check_date(s: &[u8]) -> bool {
    // RFC 5547 s.6: file-date-attr = "file-date:" date-param *(SP date-param);
    // date-param = ("creation:" / "modification:" / "read:") DQUOTE date-time DQUOTE
    let mut rest = s;
    loop {
        let v = if let Some(v) = rest.strip_prefix(b"creation:") {
            v
        } else if let Some(v) = rest.strip_prefix(b"modification:") {
            v
        } else if let Some(v) = rest.strip_prefix(b"read:") {
            v
        } else {
            return false;
        };
        let Some(body) = v.strip_prefix(b"\"") else { return false };
        let Some(close) = body.iter().position(|&b| b == b'"') else { return false };
        let Some(date) = body.get(..close) else { return false };
        if !check_date_time(date) {
            return false;
        }
        match body.get(close + 1..) {
            Some([]) => return true,
            Some([b' ', tail @ ..]) if !tail.is_empty() => rest = tail,
            _ => return false,
        }
    }
}

/// RFC 5322 s.3.3 `date-time`, in the form RFC 5547 allows ("numeric
/// timezones (+HHMM or -HHMM) must be used"): `[day ","] SP? d month yyyy
/// hh:mm[:ss] (+|-)hhmm`. Checked by shape: printable ASCII, a time with `:`
/// and a numeric zone at the end.
fn check_date_time(s: &[u8]) -> bool {
    let printable = s.iter().all(|&b| (0x20..0x7F).contains(&b));
    let words: Vec<&[u8]> = s.split(|&b| b == b' ').filter(|w| !w.is_empty()).collect();
    let zone_ok = words.last().is_some_and(|z| {
        z.len() == 5 && matches!(z.first(), Some(b'+' | b'-')) && z.iter().skip(1).all(u8::is_ascii_digit)
    });
    let time_ok = words.iter().any(|w| w.contains(&b':') && w.iter().all(|&b| b == b':' || b.is_ascii_digit()));
    let year_ok = words.iter().any(|w| w.len() >= 4 && w.iter().all(u8::is_ascii_digit));
    printable && zone_ok && time_ok && year_ok
}

fn check_icon(s: &[u8]) -> bool {
    // RFC 5547 s.6: file-icon-value = cid-url (RFC 2392: "cid" ":" content-id, url-encoded)
    let Some(prefix) = s.get(..4) else { return false };
    let rest = s.get(4..).unwrap_or(&[]);
    prefix.eq_ignore_ascii_case(b"cid:") && !rest.is_empty() && rest.iter().all(|&b| b.is_ascii_graphic())
}

fn check_range(s: &[u8]) -> Option<(u64, Option<u64>)> {
    // RFC 5547 s.6: file-range-attr = "file-range:" start-offset "-" stop-offset;
    // start-offset = integer; stop-offset = integer / "*"
    let (start, stop) = split_once(s, b'-')?;
    let start = sdp_integer(start)?;
    let stop = if stop == b"*" { None } else { Some(sdp_integer(stop)?) };
    Some((start, stop))
}

// ---------------------------------------------------------------------------
// One MSRP media description

/// One `m=message` description with MSRP, checked against the rules of
/// RFC 4975 s.8 and its extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsrpMedia {
    index: usize,
    port: u16,
    proto: Proto,
    address: Option<Bytes>,
    path: Vec<MsrpUri>,
    setup: Option<Setup>,
    accept_types: Vec<MediaType>,
    accept_wrapped_types: Vec<MediaType>,
    max_size: Option<u64>,
    cema: bool,
    direction: Direction,
    file: FileTransfer,
    fingerprints: Vec<Bytes>,
}

impl MsrpMedia {
    /// Position of the `m=` line among all media descriptions, from 0.
    #[must_use]
    pub const fn index(&self) -> usize {
        self.index
    }

    /// The `m=` port; 0 for a rejected or capability-only stream.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// Whether the stream is active (port not 0, RFC 3264 s.6).
    #[must_use]
    pub const fn is_active(&self) -> bool {
        self.port != 0
    }

    /// `TCP/MSRP` or `TCP/TLS/MSRP`.
    #[must_use]
    pub const fn proto(&self) -> Proto {
        self.proto
    }

    /// The `c=` address that applies: the media-level one, else the session's.
    #[must_use]
    pub fn address(&self) -> Option<&str> {
        self.address.as_deref().and_then(|a| std::str::from_utf8(a).ok())
    }

    /// The `a=path` URIs, leftmost (the adjacent hop) first.
    #[must_use]
    pub fn path(&self) -> &[MsrpUri] {
        &self.path
    }

    /// The `a=setup` value as written (`holdconn` included).
    #[must_use]
    pub const fn setup(&self) -> Option<Setup> {
        self.setup
    }

    /// The `a=setup` value with `holdconn` treated as absent (RFC 6135 s.4.2.1).
    #[must_use]
    pub const fn effective_setup(&self) -> Option<Setup> {
        Setup::effective(self.setup)
    }

    /// `a=accept-types`.
    #[must_use]
    pub fn accept_types(&self) -> &[MediaType] {
        &self.accept_types
    }

    /// `a=accept-wrapped-types`.
    #[must_use]
    pub fn accept_wrapped_types(&self) -> &[MediaType] {
        &self.accept_wrapped_types
    }

    /// `a=max-size`.
    #[must_use]
    pub const fn max_size(&self) -> Option<u64> {
        self.max_size
    }

    /// Whether `a=msrp-cema` is present (RFC 6714 s.5).
    #[must_use]
    pub const fn cema(&self) -> bool {
        self.cema
    }

    /// The direction attribute (media level, else session level, else `sendrecv`).
    #[must_use]
    pub const fn direction(&self) -> Direction {
        self.direction
    }

    /// The RFC 5547 attributes.
    #[must_use]
    pub const fn file_transfer(&self) -> &FileTransfer {
        &self.file
    }

    /// The `a=fingerprint` values (`hash-func SP fingerprint`, RFC 8122
    /// s.5), each as written: the certificates the peer may present on this
    /// stream's TLS links (RFC 4975 s.14.4).
    pub fn fingerprints(&self) -> impl Iterator<Item = &str> {
        self.fingerprints.iter().filter_map(|f| std::str::from_utf8(f).ok())
    }

    /// Whether this peer accepts `body` (RFC 4975 s.8.6, see [`accepts`]).
    #[must_use]
    pub fn accepts(&self, body: &BodyType<'_>) -> bool {
        accepts(&self.accept_types, &self.accept_wrapped_types, body)
    }

    /// Reads and checks one media description; `index` is its position and
    /// `base` the buffer the description was parsed from (for offsets).
    fn from_description(
        sdp: &SessionDescription,
        media: &MediaDescription,
        index: usize,
        base: &Bytes,
    ) -> Result<Self, MediaError> {
        let m_at = line_offset(base, media.media_line().as_str());
        let proto = Proto::parse(media.proto()).ok_or(MediaError::Proto { at: m_at })?;
        // RFC 4975 s.8.1: "The format list field MUST be set to "*"."
        let mut formats = media.formats();
        if formats.next() != Some("*") || formats.next().is_some() {
            return Err(MediaError::Format { at: m_at });
        }
        let address = sdp.connection_for(media).map(|c| shared(base, c.address()));
        let mut out = Self {
            index,
            port: media.port(),
            proto,
            address,
            path: Vec::new(),
            setup: None,
            accept_types: Vec::new(),
            accept_wrapped_types: Vec::new(),
            max_size: None,
            cema: false,
            direction: Direction::SendRecv,
            file: FileTransfer::default(),
            fingerprints: Vec::new(),
        };
        let mut seen_path = false;
        let mut seen_accept = false;
        let mut seen_wrapped = false;
        let mut direction = None;
        for attr in media.attributes() {
            let at = line_offset(base, attr.as_str());
            let value = attr.value().unwrap_or("");
            let once =
                |seen: bool, name: &'static str| if seen { Err(MediaError::Repeated { at, name }) } else { Ok(()) };
            match attr.name() {
                "path" => {
                    once(seen_path, "path")?;
                    seen_path = true;
                    out.path = parse_path(base, value, at)?;
                }
                "accept-types" => {
                    once(seen_accept, "accept-types")?;
                    seen_accept = true;
                    out.accept_types = parse_format_list(base, value).ok_or(MediaError::AcceptTypes { at })?;
                }
                "accept-wrapped-types" => {
                    once(seen_wrapped, "accept-wrapped-types")?;
                    seen_wrapped = true;
                    out.accept_wrapped_types =
                        parse_format_list(base, value).ok_or(MediaError::AcceptWrappedTypes { at })?;
                }
                "max-size" => {
                    once(out.max_size.is_some(), "max-size")?;
                    // RFC 4975 s.8.6: max-size-value = 1*(DIGIT)
                    out.max_size = Some(digits(value.as_bytes()).ok_or(MediaError::MaxSize { at })?);
                }
                "setup" => {
                    once(out.setup.is_some(), "setup")?;
                    // RFC 4145 s.4: role = "active" / "passive" / "actpass" / "holdconn"
                    out.setup = Some(Setup::parse(value).ok_or(MediaError::Setup { at })?);
                }
                "msrp-cema" => {
                    once(out.cema, "msrp-cema")?;
                    // RFC 6714 s.5.2: msrp-cema-attr = "msrp-cema"
                    if attr.value().is_some() {
                        return Err(MediaError::Cema { at });
                    }
                    out.cema = true;
                }
                name @ ("sendrecv" | "sendonly" | "recvonly" | "inactive") => {
                    if direction.is_some() {
                        return Err(MediaError::Repeated { at, name: "direction" });
                    }
                    direction = Direction::parse(name);
                }
                "file-selector" => {
                    once(out.file.selector.is_some(), "file-selector")?;
                    // A bare a=file-selector is the capability form (RFC 5547 s.6).
                    if attr.value().is_some() && !check_selector(value.as_bytes()) {
                        return Err(MediaError::FileTransfer { at, name: "file-selector" });
                    }
                    out.file.selector = Some(shared(base, value));
                }
                "file-transfer-id" => {
                    once(out.file.transfer_id.is_some(), "file-transfer-id")?;
                    // file-tr-id-value = token
                    if !is_token(value.as_bytes()) {
                        return Err(MediaError::FileTransfer { at, name: "file-transfer-id" });
                    }
                    out.file.transfer_id = Some(shared(base, value));
                }
                "file-disposition" => {
                    once(out.file.disposition.is_some(), "file-disposition")?;
                    // file-disp-value = token
                    if !is_token(value.as_bytes()) {
                        return Err(MediaError::FileTransfer { at, name: "file-disposition" });
                    }
                    out.file.disposition = Some(shared(base, value));
                }
                "file-date" => {
                    once(out.file.date.is_some(), "file-date")?;
                    if !check_date(value.as_bytes()) {
                        return Err(MediaError::FileTransfer { at, name: "file-date" });
                    }
                    out.file.date = Some(shared(base, value));
                }
                "file-icon" => {
                    once(out.file.icon.is_some(), "file-icon")?;
                    if !check_icon(value.as_bytes()) {
                        return Err(MediaError::FileTransfer { at, name: "file-icon" });
                    }
                    out.file.icon = Some(shared(base, value));
                }
                "file-range" => {
                    once(out.file.range.is_some(), "file-range")?;
                    out.file.range =
                        Some(check_range(value.as_bytes()).ok_or(MediaError::FileTransfer { at, name: "file-range" })?);
                }
                "fingerprint" => {
                    // RFC 8122 s.5: one or more fingerprint attributes, each
                    // `hash-func SP fingerprint`.
                    if !check_fingerprint(value.as_bytes()) {
                        return Err(MediaError::Fingerprint { at });
                    }
                    out.fingerprints.push(shared(base, value));
                }
                // RFC 6135 s.4.4: "If an MSRP UA receives an a=connection attribute, the UA MUST
                // ignore it." Other attributes (rtpmap ...) are not ours to judge.
                _ => {}
            }
        }
        if out.setup.is_none() {
            // RFC 4145 s.4: the setup attribute may be session-level.
            out.setup = sdp.attribute("setup").and_then(|a| a.value()).and_then(Setup::parse);
        }
        if out.fingerprints.is_empty() {
            // RFC 8122 s.5: a session-level fingerprint applies to every
            // media description that has none of its own.
            for attr in sdp.attributes_named("fingerprint") {
                let value = attr.value().unwrap_or("");
                if !check_fingerprint(value.as_bytes()) {
                    return Err(MediaError::Fingerprint { at: line_offset(base, attr.as_str()) });
                }
                out.fingerprints.push(shared(base, value));
            }
        }
        out.direction =
            direction.or_else(|| sdp.attributes().find_map(|a| Direction::parse(a.name()))).unwrap_or_default();
        if out.port != 0 {
            // RFC 4975 s.8.2: "Each SDP offer or answer that proposes MSRP MUST contain a "path"
            // attribute containing one or more MSRP URIs."
            if !seen_path {
                return Err(MediaError::MissingPath { at: m_at });
            }
            // RFC 4975 s.8.6: "An SDP media-line proposing MSRP MUST be accompanied by an
            // accept-types attribute."
            if !seen_accept {
                return Err(MediaError::MissingAcceptTypes { at: m_at });
            }
        }
        Ok(out)
    }
}

fn parse_path(base: &Bytes, value: &str, at: usize) -> Result<Vec<MsrpUri>, MediaError> {
    // RFC 4975 s.8.2: path-list= MSRP-URI *(SP MSRP-URI)
    let entries = split_entries(value.as_bytes());
    if entries.is_empty() {
        return Err(MediaError::PathEmpty { at });
    }
    let mut path = Vec::with_capacity(entries.len());
    for (start, end) in entries {
        let text = value.get(start..end).unwrap_or("");
        let uri = MsrpUri::parse(shared(base, text)).map_err(|reason| MediaError::PathUri { at, reason })?;
        // RFC 4975 s.8.2: "MSRP URIs included in an SDP offer or answer MUST include explicit
        // port numbers." Port 0 is no port to connect to (in SDP it marks a rejected stream).
        if matches!(uri.port(), None | Some(0)) {
            return Err(MediaError::PathPort { at });
        }
        path.push(uri);
    }
    Ok(path)
}

/// RFC 8122 s.5: `hash-func SP fingerprint` with `hash-func = token` (the
/// registered names are tokens) and `fingerprint = 2UHEX *(":" 2UHEX)`;
/// lower-case hex is taken too.
fn check_fingerprint(value: &[u8]) -> bool {
    let Some(space) = value.iter().position(|&b| b == b' ') else {
        return false;
    };
    let (hash, hex) = (value.get(..space).unwrap_or_default(), value.get(space + 1..).unwrap_or_default());
    is_token(hash)
        && !hex.is_empty()
        && hex.split(|&b| b == b':').all(|pair| pair.len() == 2 && pair.iter().all(u8::is_ascii_hexdigit))
}

fn parse_format_list(base: &Bytes, value: &str) -> Option<Vec<MediaType>> {
    // RFC 4975 s.8.6: format-list = format-entry *( SP format-entry)
    let entries = split_entries(value.as_bytes());
    if entries.is_empty() {
        return None;
    }
    entries
        .into_iter()
        .map(|(start, end)| value.get(start..end).and_then(|text| MediaType::parse(shared(base, text)).ok()))
        .collect()
}

/// `part` as a slice of `base` when it lies inside it, else a copy.
fn shared(base: &Bytes, part: &str) -> Bytes {
    match offset_in(base, part) {
        Some(_) => base.slice_ref(part.as_bytes()),
        None => Bytes::copy_from_slice(part.as_bytes()),
    }
}

/// Offset of `part` inside `base`, when it is a sub-slice of it.
fn offset_in(base: &[u8], part: &str) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(base.as_ptr() as usize)?;
    (start.checked_add(part.len())? <= base.len()).then_some(start)
}

/// Offset of the line whose value (after `x=`) is `value`.
fn line_offset(base: &[u8], value: &str) -> usize {
    offset_in(base, value).map_or(0, |at| at.saturating_sub(2))
}

// ---------------------------------------------------------------------------
// A whole SDP body

/// An SDP body and its checked MSRP media descriptions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsrpSdp {
    sdp: SessionDescription,
    media: Vec<MsrpMedia>,
}

impl MsrpSdp {
    /// Parses an SDP body and checks every `m=message` description.
    ///
    /// # Errors
    /// The first RFC 8866 violation, else the first broken MSRP rule (in line
    /// order), with the offset of the offending line.
    pub fn parse(input: Bytes) -> Result<Self, SdpMediaError> {
        let sdp = SessionDescription::parse(input.clone())?;
        Self::check(sdp, &input)
    }

    /// Checks an already parsed description (offsets then refer to its
    /// canonical serialization).
    ///
    /// # Errors
    /// As [`MsrpSdp::parse`].
    pub fn from_description(sdp: &SessionDescription) -> Result<Self, SdpMediaError> {
        Self::parse(sdp.to_bytes())
    }

    fn check(sdp: SessionDescription, base: &Bytes) -> Result<Self, SdpMediaError> {
        let mut media = Vec::new();
        for (index, m) in sdp.media().iter().enumerate() {
            if m.media() == "message" {
                media.push(MsrpMedia::from_description(&sdp, m, index, base)?);
            }
        }
        Ok(Self { sdp, media })
    }

    /// The session description.
    #[must_use]
    pub const fn description(&self) -> &SessionDescription {
        &self.sdp
    }

    /// The `m=message` descriptions, in order.
    #[must_use]
    pub fn media(&self) -> &[MsrpMedia] {
        &self.media
    }

    /// The first MSRP description with a non-zero port (the one a CPM
    /// large-message session uses).
    #[must_use]
    pub fn first_active(&self) -> Option<&MsrpMedia> {
        self.media.iter().find(|m| m.is_active())
    }
}

// ---------------------------------------------------------------------------
// Writing our own description

/// The MSRP media an entity writes into its offer or answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalMedia {
    /// Our `a=path` (normally one URI: ours; leftmost first).
    pub path: Vec<MsrpUri>,
    /// TLS or not.
    pub proto: Proto,
    /// `a=accept-types` (at least one unless the stream is rejected).
    pub accept_types: Vec<MediaType>,
    /// `a=accept-wrapped-types`.
    pub accept_wrapped_types: Vec<MediaType>,
    /// `a=max-size`.
    pub max_size: Option<u64>,
    /// `a=setup`.
    pub setup: Option<Setup>,
    /// `a=msrp-cema`.
    pub cema: bool,
    /// The direction attribute (written only when not `sendrecv`).
    pub direction: Direction,
    /// Port 0: a rejected stream.
    pub rejected: bool,
    /// `a=fingerprint` (`hash-func SP fingerprint`): the certificate this
    /// side's TLS listener presents, for peers that pin it (RFC 4975 s.14.4).
    pub fingerprint: Option<String>,
}

impl LocalMedia {
    /// Media for `uri` with the given accept-types, `sendrecv`, no setup.
    #[must_use]
    pub fn new(uri: MsrpUri, accept_types: Vec<MediaType>) -> Self {
        let proto = match uri.scheme() {
            msrp_core::uri::Scheme::Msrp => Proto::TcpMsrp,
            msrp_core::uri::Scheme::Msrps => Proto::TcpTlsMsrp,
        };
        Self {
            path: vec![uri],
            proto,
            accept_types,
            accept_wrapped_types: Vec::new(),
            max_size: None,
            setup: None,
            cema: false,
            direction: Direction::SendRecv,
            rejected: false,
            fingerprint: None,
        }
    }

    /// The port and host written into `m=` and `c=`: those of the leftmost
    /// path URI (RFC 4975 s.8.1: "The connection address field MUST be set to
    /// the IP address or fully qualified domain name from the MSRP URI
    /// identifying the endpoint in its path attribute").
    fn endpoint(&self) -> Option<(&str, u16)> {
        let first = self.path.first()?;
        Some((first.host(), first.port()?))
    }

    /// Writes a complete SDP body holding this one MSRP description.
    ///
    /// `origin` is the `o=` value (the caller keeps session id and version,
    /// RFC 3264 s.8).
    ///
    /// # Errors
    /// [`UsageError::LocalMedia`] when the path is empty or its first URI has
    /// no port, or the lists cannot be written.
    pub fn to_sdp(&self, origin: &str) -> Result<SessionDescription, UsageError> {
        let (host, port) = self.endpoint().ok_or(UsageError::LocalMedia("path"))?;
        let addrtype = if host.contains(':') { "IP6" } else { "IP4" };
        let mut b = SessionDescription::builder(origin, "-");
        b.line('c', &format!("IN {addrtype} {host}")).line('t', "0 0");
        let port = if self.rejected { 0 } else { port };
        b.media(&format!("message {port} {} *", self.proto.as_str()));
        if !self.accept_types.is_empty() {
            b.attribute("accept-types", Some(&join(&self.accept_types)));
        }
        if !self.accept_wrapped_types.is_empty() {
            b.attribute("accept-wrapped-types", Some(&join(&self.accept_wrapped_types)));
        }
        let path: Vec<&str> = self.path.iter().map(MsrpUri::as_str).collect();
        b.attribute("path", Some(&path.join(" ")));
        if let Some(max) = self.max_size {
            b.attribute("max-size", Some(&max.to_string()));
        }
        if let Some(setup) = self.setup {
            b.attribute("setup", Some(setup.as_str()));
        }
        if self.cema {
            b.attribute("msrp-cema", None);
        }
        if self.direction != Direction::SendRecv {
            b.attribute(self.direction.as_str(), None);
        }
        if let Some(fingerprint) = &self.fingerprint {
            // RFC 4975 s.14.4: the endpoint "MUST include this in the SDP".
            b.attribute("fingerprint", Some(fingerprint));
        }
        b.build().map_err(|_| UsageError::LocalMedia("sdp"))
    }
}

fn join(types: &[MediaType]) -> String {
    types.iter().map(MediaType::as_str).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdp(media_lines: &str) -> Bytes {
        Bytes::from(format!("v=0\r\no=a 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n{media_lines}"))
    }

    #[test]
    fn format_entries() {
        let cases: &[(&str, Option<&str>)] = &[
            ("*", Some("*")),
            ("text/plain", Some("text/plain")),
            ("text/*", Some("text/*")),
            ("text/plain;charset=utf-8", Some("text/plain")),
            ("text/html;charset=\"utf 8\"", Some("text/html")),
            ("message/cpim;a=b;c=\"d\"", Some("message/cpim")),
            ("text", None),
            ("text/", None),
            ("/plain", None),
            ("text/plain;", None),
            ("text/plain;charset", None),
            ("text/plain;charset=", None),
            ("text/plain,message/cpim", None),
            ("text/plain;charset=\"open", None),
            ("", None),
        ];
        for &(text, essence) in cases {
            let got = MediaType::parse_str(text).ok();
            assert_eq!(got.as_ref().map(MediaType::essence), essence, "{text}");
        }
    }

    #[test]
    fn wildcard_matching() {
        let list = |s: &str| -> Vec<MediaType> { s.split(' ').map(|e| MediaType::parse_str(e).unwrap()).collect() };
        let cases: &[(&str, &str, &str, Option<&str>, bool)] = &[
            ("text/plain", "", "text/plain", None, true),
            ("text/plain", "", "TEXT/Plain", None, true),
            ("text/plain;charset=utf-8", "", "text/plain", None, true),
            ("text/plain", "", "text/plain;charset=utf-8", None, true),
            ("text/*", "", "text/html", None, true),
            ("text/*", "", "image/png", None, false),
            ("*", "", "image/png", None, true),
            ("message/cpim", "", "text/plain", None, false),
            ("message/cpim", "text/plain", "message/cpim", Some("text/plain"), true),
            ("message/cpim", "text/plain", "text/plain", None, false),
            ("message/cpim", "image/*", "message/cpim", Some("image/jpeg"), true),
            ("message/cpim", "*", "message/cpim", Some("application/pdf"), true),
            ("message/cpim text/plain", "", "message/cpim", Some("text/plain"), true),
            ("message/cpim", "text/plain", "message/cpim", Some("text/html"), false),
            ("text/plain", "text/html", "message/cpim", Some("text/html"), false),
        ];
        for &(types, wrapped, ct, inner, want) in cases {
            let wrapped_list = if wrapped.is_empty() { Vec::new() } else { list(wrapped) };
            let body = BodyType { content_type: ct, wrapped: inner };
            assert_eq!(accepts(&list(types), &wrapped_list, &body), want, "{types} | {wrapped} | {ct} {inner:?}");
        }
    }

    #[test]
    fn media_rules() {
        let ok = "a=accept-types:text/plain\r\na=path:msrp://192.0.2.1:7654/s;tcp\r\n";
        let cases: &[(&str, Result<(), &str>)] = &[
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}"), Ok(())),
            (&format!("m=message 7654 TCP/TLS/MSRP *\r\n{ok}"), Ok(())),
            (&format!("m=message 7654 TCP/SIP *\r\n{ok}"), Err("proto")),
            (&format!("m=message 7654 TCP/MSRP 0\r\n{ok}"), Err("format")),
            (&format!("m=message 7654 TCP/MSRP * *\r\n{ok}"), Err("format")),
            ("m=message 7654 TCP/MSRP *\r\na=accept-types:text/plain\r\n", Err("missing_path")),
            ("m=message 7654 TCP/MSRP *\r\na=path:msrp://192.0.2.1:7654/s;tcp\r\n", Err("missing_accept_types")),
            ("m=message 0 TCP/MSRP *\r\n", Ok(())),
            ("m=message 0 TCP/MSRP *\r\na=max-size:x\r\n", Err("max_size")),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=max-size:-1\r\n"), Err("max_size")),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=max-size:99999999999999999999\r\n"), Err("max_size")),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=setup:ACTIVE\r\n"), Err("setup")),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=setup:holdconn\r\n"), Ok(())),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=msrp-cema:yes\r\n"), Err("msrp_cema")),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=sendonly\r\na=recvonly\r\n"), Err("repeated_attribute")),
            (&format!("m=message 7654 TCP/TLS/MSRP *\r\n{ok}a=fingerprint:SHA-1 4A:AD\r\na=fingerprint:sha-256 0f\r\n"), Ok(())),
            (&format!("m=message 7654 TCP/TLS/MSRP *\r\n{ok}a=fingerprint:SHA-1\r\n"), Err("fingerprint")),
            (&format!("m=message 7654 TCP/TLS/MSRP *\r\n{ok}a=fingerprint:SHA-1 4A:A\r\n"), Err("fingerprint")),
            (&format!("m=message 7654 TCP/TLS/MSRP *\r\n{ok}a=fingerprint:SHA-1 4A:\r\n"), Err("fingerprint")),
            (&format!("m=message 7654 TCP/TLS/MSRP *\r\n{ok}a=fingerprint:SHA 1 4A\r\n"), Err("fingerprint")),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=path:msrp://192.0.2.1:7654/s;tcp\r\n"), Err("repeated_attribute")),
            ("m=message 7654 TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:msrp://h.example.com/s;tcp\r\n", Err("path_port")),
            ("m=message 7654 TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:msrp://h.example.com:0/s;tcp\r\n", Err("path_port")),
            ("m=message 7654 TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:\r\n", Err("path_empty")),
            ("m=message 7654 TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:sip:a@b\r\n", Err("path_uri")),
            ("m=message 7654 TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:msrp://h:1/s;tcp sip:x\r\n", Err("path_uri")),
            ("m=message 7654 TCP/MSRP *\r\na=accept-types: text/plain  message/cpim\r\na=path:msrp://h:1/s;tcp\r\n", Ok(())),
            ("m=message 7654 TCP/MSRP *\r\na=accept-types:\r\na=path:msrp://h:1/s;tcp\r\n", Err("accept_types")),
            ("m=message 7654 TCP/MSRP *\r\na=accept-types:*\r\na=accept-wrapped-types:x\r\na=path:msrp://h:1/s;tcp\r\n", Err("accept_wrapped_types")),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-selector:name:\"a b.txt\" type:text/plain size:10 hash:sha-1:72:24:5F:E8\r\n"), Ok(())),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-selector:type:image/jpeg;q=\"x%20y\"\r\n"), Ok(())),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-selector\r\n"), Ok(())),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-selector:\r\n"), Err("file_transfer")),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-selector:name:\"\"\r\n"), Err("file_transfer")),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-selector:name:\"a%2\"\r\n"), Err("file_transfer")),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-selector:size:012\r\n"), Err("file_transfer")),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-selector:hash:sha-1:7\r\n"), Err("file_transfer")),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-selector:size:1  size:2\r\n"), Err("file_transfer")),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-transfer-id:vBnG916bdberum2fFEABR\r\n"), Ok(())),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-transfer-id:a b\r\n"), Err("file_transfer")),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-disposition:render\r\n"), Ok(())),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-disposition:\r\n"), Err("file_transfer")),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-date:creation:\"Mon, 10 Nov 2008 10:46:16 +0200\" read:\"10 Nov 2008 10:46 -0100\"\r\n"), Ok(())),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-date:creation:\"Mon, 10 Nov 2008 10:46:16 GMT\"\r\n"), Err("file_transfer")),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-date:birth:\"10 Nov 2008 10:46 +0000\"\r\n"), Err("file_transfer")),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-icon:cid:id2@alicepc.example.com\r\n"), Ok(())),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-icon:http://x\r\n"), Err("file_transfer")),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-range:1-*\r\n"), Ok(())),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-range:10-2048\r\n"), Ok(())),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-range:0-10\r\n"), Err("file_transfer")),
            (&format!("m=message 7654 TCP/MSRP *\r\n{ok}a=file-range:1\r\n"), Err("file_transfer")),
            // Not our business: other media, unknown attributes, a=connection.
            (&format!("m=audio 49170 RTP/AVP 0\r\nm=message 7654 TCP/MSRP *\r\n{ok}a=connection:new\r\na=x-foo\r\n"), Ok(())),
        ];
        for (text, want) in cases {
            let got = MsrpSdp::parse(sdp(text)).map(|_| ()).map_err(|e| e.kind());
            assert_eq!(&got, want, "{text}");
        }
    }

    #[test]
    fn error_offset_is_the_line() {
        let input = sdp(
            "m=message 7654 TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:msrp://h:1/s;tcp\r\na=max-size:x\r\n",
        );
        let err = MsrpSdp::parse(input.clone()).unwrap_err();
        assert_eq!(input.get(err.offset()..err.offset() + 11), Some(&b"a=max-size:"[..]));
        let input = sdp("m=message 7654 TCP/MSRP *\r\na=accept-types:text/plain\r\n");
        let err = MsrpSdp::parse(input.clone()).unwrap_err();
        assert_eq!(input.get(err.offset()..err.offset() + 10), Some(&b"m=message "[..]));
    }

    #[test]
    fn session_level_setup_and_direction() {
        let input = Bytes::from_static(
            b"v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\na=setup:passive\r\na=recvonly\r\n\
              m=message 1 TCP/MSRP *\r\na=accept-types:*\r\na=path:msrp://h:1/s;tcp\r\n",
        );
        let parsed = MsrpSdp::parse(input).unwrap();
        assert_eq!(parsed.media()[0].setup(), Some(Setup::Passive));
        assert_eq!(parsed.media()[0].direction(), Direction::RecvOnly);
    }

    #[test]
    fn session_level_fingerprint_applies_to_media_without_one() {
        let session = "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\na=fingerprint:SHA-256 0A:0B\r\n";
        let media = "m=message 1 TCP/TLS/MSRP *\r\na=accept-types:*\r\na=path:msrps://h:1/s;tcp\r\n";
        let parsed = MsrpSdp::parse(Bytes::from(format!("{session}{media}"))).unwrap();
        assert_eq!(parsed.media()[0].fingerprints().collect::<Vec<_>>(), ["SHA-256 0A:0B"]);
        // The media's own wins.
        let own = format!("{session}{media}a=fingerprint:SHA-256 1A:1B\r\n");
        let parsed = MsrpSdp::parse(Bytes::from(own)).unwrap();
        assert_eq!(parsed.media()[0].fingerprints().collect::<Vec<_>>(), ["SHA-256 1A:1B"]);
        let bad = format!("{}{media}", session.replace("0A:0B", "0A:0"));
        assert_eq!(MsrpSdp::parse(Bytes::from(bad)).unwrap_err().kind(), "fingerprint");
    }

    #[test]
    fn local_media_round_trip() {
        let uri = MsrpUri::parse_str("msrp://[2001:db8::1]:2855/abc;tcp").unwrap();
        let mut local = LocalMedia::new(uri, vec![MediaType::parse_str("message/cpim").unwrap()]);
        local.accept_wrapped_types = vec![MediaType::parse_str("text/plain").unwrap()];
        local.max_size = Some(5000);
        local.setup = Some(Setup::Actpass);
        local.cema = true;
        local.direction = Direction::SendOnly;
        local.fingerprint = Some("SHA-256 4A:AD:B9".into());
        let sdp = local.to_sdp("- 1 1 IN IP6 2001:db8::1").unwrap();
        let parsed = MsrpSdp::from_description(&sdp).unwrap();
        let m = &parsed.media()[0];
        assert_eq!(m.port(), 2855);
        assert_eq!(m.address(), Some("2001:db8::1"));
        assert_eq!(m.max_size(), Some(5000));
        assert_eq!(m.setup(), Some(Setup::Actpass));
        assert!(m.cema());
        assert_eq!(m.direction(), Direction::SendOnly);
        assert_eq!(m.accept_wrapped_types()[0].as_str(), "text/plain");
        assert_eq!(m.path()[0].as_str(), "msrp://[2001:db8::1]:2855/abc;tcp");
        assert_eq!(m.fingerprints().collect::<Vec<_>>(), ["SHA-256 4A:AD:B9"]);
    }
}
