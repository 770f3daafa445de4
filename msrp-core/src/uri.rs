//! MSRP URIs (RFC 4975 §6, §9).
//!
//! [`MsrpUri`] is a validated URI that keeps the text it was parsed from as [`Bytes`] plus the
//! offsets of its components, so parsing a `To-Path`/`From-Path` entry out of a received frame
//! copies nothing. [`validate`] is the same scanner without building a value, for callers that only
//! need a yes/no answer. Equality and hashing follow the comparison rules of RFC 4975 §6.1.
//!
//! The grammar accepted is RFC 4975 §9:
//!
//! ```text
//! MSRP-URI      = msrp-scheme "://" authority ["/" session-id] ";" transport *( ";" URI-parameter)
//! msrp-scheme   = "msrp" / "msrps"                      ; case-insensitive
//! session-id    = 1*( unreserved / "+" / "=" / "/" )
//! transport     = "tcp" / 1*ALPHANUM
//! URI-parameter = token ["=" token]
//! ```
//!
//! with `authority` from RFC 3986 (`[ userinfo "@" ] host [ ":" port ]`). The port is limited to
//! 1 to 5 digits that fit a `u16`, an IP-literal must be an IPv6 address (no `IPvFuture`), and a
//! URI is at most 65535 bytes long.
//!
//! ```
//! # use msrp_core::uri::{MsrpUri, HostKind};
//! let uri = MsrpUri::parse_str("msrp://alice.example.com:7777/iau39soe2843z;tcp").unwrap();
//! assert_eq!(uri.host(), "alice.example.com");
//! assert_eq!(uri.host_kind(), HostKind::Name);
//! assert_eq!(uri.port(), Some(7777));
//! assert_eq!(uri.session_id(), Some("iau39soe2843z"));
//! assert_eq!(uri.transport(), "tcp");
//! assert_eq!(uri, MsrpUri::parse_str("MSRP://ALICE.example.com:7777/iau39soe2843z;TCP").unwrap());
//! ```

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::Ipv6Addr;
use std::ops::Range;
use std::str::FromStr;

use bytes::Bytes;

/// Longest URI accepted, so that every component offset fits a `u16`.
const MAX_LEN: usize = u16::MAX as usize;

/// `msrp` or `msrps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Scheme {
    /// `msrp`: MSRP over an unprotected connection.
    Msrp,
    /// `msrps`: RFC 4975 §6: "the underlying connection MUST be protected with TLS".
    Msrps,
}

/// Kind of host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostKind {
    /// A registered name (RFC 3986 `reg-name`), such as `host.example.com`.
    Name,
    /// A dotted-decimal IPv4 address (RFC 3986 `IPv4address`, no leading zeros).
    Ipv4,
    /// An IPv6 address written as an IP-literal, `[2001:db8::1]`.
    Ipv6,
}

/// Why a byte string is not an MSRP URI.
///
/// Every variant except [`UriError::Empty`] carries `at`, the byte offset in the URI text of the
/// first offending byte (the length of the text when something is missing at the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// The input is empty.
    #[error("empty MSRP URI")]
    Empty,
    /// The input is longer than 65535 bytes.
    #[error("MSRP URI longer than 65535 bytes (byte {at})")]
    TooLong {
        /// Offset of the first byte past the limit.
        at: usize,
    },
    /// The text does not start with `msrp://` or `msrps://` (in any case).
    #[error("invalid MSRP URI scheme at byte {at}")]
    Scheme {
        /// Offset of the first offending byte.
        at: usize,
    },
    /// The userinfo before `@` has a byte outside RFC 3986 `userinfo`.
    #[error("invalid userinfo in MSRP URI at byte {at}")]
    Userinfo {
        /// Offset of the first offending byte.
        at: usize,
    },
    /// The host is empty, is not a valid `reg-name`, or is an invalid IP-literal.
    #[error("invalid host in MSRP URI at byte {at}")]
    Host {
        /// Offset of the first offending byte.
        at: usize,
    },
    /// The port is empty, not decimal, longer than 5 digits or above 65535, or an IP address has no
    /// port.
    #[error("invalid port in MSRP URI at byte {at}")]
    Port {
        /// Offset of the first offending byte.
        at: usize,
    },
    /// The session-id after `/` is empty or has a byte outside its grammar.
    #[error("invalid session-id in MSRP URI at byte {at}")]
    SessionId {
        /// Offset of the first offending byte.
        at: usize,
    },
    /// The `;transport` part is missing, empty or not alphanumeric.
    #[error("missing or invalid transport in MSRP URI at byte {at}")]
    Transport {
        /// Offset of the first offending byte.
        at: usize,
    },
    /// A URI-parameter after the transport is not `token ["=" token]`.
    #[error("invalid URI parameter in MSRP URI at byte {at}")]
    Param {
        /// Offset of the first offending byte.
        at: usize,
    },
}

impl UriError {
    /// Byte offset of the first offending byte in the URI text (0 for [`UriError::Empty`]).
    pub fn offset(&self) -> usize {
        match *self {
            Self::Empty => 0,
            Self::TooLong { at }
            | Self::Scheme { at }
            | Self::Userinfo { at }
            | Self::Host { at }
            | Self::Port { at }
            | Self::SessionId { at }
            | Self::Transport { at }
            | Self::Param { at } => at,
        }
    }
}

/// A parsed MSRP URI.
///
/// Holds the text as [`Bytes`]; component accessors return sub-slices of it. `Display` writes the
/// text exactly as parsed. `PartialEq` and `Hash` follow RFC 4975 §6.1, so two URIs that differ in
/// text (scheme or transport case, userinfo, IPv6 spelling, percent-encoding, parameters) can be
/// equal.
#[derive(Clone)]
pub struct MsrpUri {
    text: Bytes,
    layout: Layout,
}

/// Component offsets of a validated URI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    scheme: Scheme,
    userinfo: Option<Span>,
    host: Span,
    host_kind: HostKind,
    /// The address when `host_kind` is `Ipv6`, kept for §6.1 address comparison.
    ipv6: Option<Ipv6Addr>,
    port: Option<u16>,
    session_id: Option<Span>,
    transport: Span,
    /// Offset of the `;` that starts the first URI-parameter, or the text length.
    params: u16,
}

/// A byte range in the URI text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u16,
    end: u16,
}

impl Span {
    fn new(start: usize, end: usize) -> Self {
        Self { start: to_u16(start), end: to_u16(end) }
    }

    fn range(self) -> Range<usize> {
        usize::from(self.start)..usize::from(self.end)
    }
}

/// Offsets are below `MAX_LEN` once the length check passed; saturate rather than panic anyway.
fn to_u16(offset: usize) -> u16 {
    u16::try_from(offset).unwrap_or(u16::MAX)
}

impl MsrpUri {
    /// Parses a URI from a `Bytes` without copying it (the framer calls this on slices of a
    /// received frame).
    ///
    /// # Errors
    ///
    /// Returns a [`UriError`] locating the first byte that does not fit RFC 4975 §9.
    pub fn parse(text: Bytes) -> Result<Self, UriError> {
        let layout = scan(&text)?;
        Ok(Self { text, layout })
    }

    /// Parses from a str (copies it).
    ///
    /// # Errors
    ///
    /// As [`MsrpUri::parse`].
    pub fn parse_str(text: &str) -> Result<Self, UriError> {
        // Validate first so that a bad URI costs no allocation.
        let layout = scan(text.as_bytes())?;
        Ok(Self { text: Bytes::copy_from_slice(text.as_bytes()), layout })
    }

    /// Builds a URI from parts (for encoders and tests); validates the result.
    ///
    /// `host` is a name, an IPv4 address, or an IPv6 address with or without brackets. The text
    /// produced is `scheme "://" host [":" port] ["/" session_id] ";" transport`, with the scheme
    /// in lower case.
    ///
    /// # Errors
    ///
    /// Returns a [`UriError`] (offsets refer to the text built) if a part is invalid or would
    /// change the structure of the URI, for example a host containing `@` or `;`, or an IP address
    /// without a port.
    pub fn new(
        scheme: Scheme,
        host: &str,
        port: Option<u16>,
        session_id: Option<&str>,
        transport: &str,
    ) -> Result<Self, UriError> {
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let mut text = String::with_capacity(host.len() + transport.len() + 32);
        text.push_str(match scheme {
            Scheme::Msrp => "msrp://",
            Scheme::Msrps => "msrps://",
        });
        let host_at = text.len();
        if bare.contains(':') {
            text.push('[');
            text.push_str(bare);
            text.push(']');
        } else {
            text.push_str(bare);
        }
        let port_at = text.len();
        if let Some(port) = port {
            text.push(':');
            text.push_str(&port.to_string());
        }
        let session_at = text.len();
        if let Some(session_id) = session_id {
            text.push('/');
            text.push_str(session_id);
        }
        let transport_at = text.len();
        text.push(';');
        text.push_str(transport);
        let uri = Self::parse(Bytes::from(text))?;
        // The parts were glued together without escaping, so a part holding a delimiter parses
        // into a different structure; reject that instead of returning a surprising URI.
        if uri.userinfo().is_some() || uri.host() != bare {
            return Err(UriError::Host { at: host_at });
        }
        if uri.port() != port {
            return Err(UriError::Port { at: port_at });
        }
        if uri.session_id() != session_id {
            return Err(UriError::SessionId { at: session_at });
        }
        if uri.transport() != transport || uri.params().next().is_some() {
            return Err(UriError::Transport { at: transport_at });
        }
        Ok(uri)
    }

    /// The text exactly as parsed.
    pub fn as_str(&self) -> &str {
        // The scanner admits only ASCII, so this never falls back.
        std::str::from_utf8(&self.text).unwrap_or("")
    }

    /// The shared buffer holding the text, for zero-copy encoding.
    pub fn as_bytes_shared(&self) -> &Bytes {
        &self.text
    }

    /// The scheme (parsed case-insensitively).
    pub fn scheme(&self) -> Scheme {
        self.layout.scheme
    }

    /// The userinfo before `@`, as written, if present.
    pub fn userinfo(&self) -> Option<&str> {
        self.layout.userinfo.map(|span| self.slice(span))
    }

    /// The host as written; an IPv6 address is returned without its brackets.
    pub fn host(&self) -> &str {
        self.slice(self.layout.host)
    }

    /// Whether the host is a name, an IPv4 address or an IPv6 address.
    pub fn host_kind(&self) -> HostKind {
        self.layout.host_kind
    }

    /// The explicit port, if one is written (there is no default port).
    pub fn port(&self) -> Option<u16> {
        self.layout.port
    }

    /// The session-id after `/`, if present.
    pub fn session_id(&self) -> Option<&str> {
        self.layout.session_id.map(|span| self.slice(span))
    }

    /// The transport as written, for example `tcp`.
    pub fn transport(&self) -> &str {
        self.slice(self.layout.transport)
    }

    /// The URI-parameters after the transport, in order, as `(name, value)`.
    pub fn params(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        let tail = self
            .text
            .get(usize::from(self.layout.params)..)
            .and_then(|tail| std::str::from_utf8(tail).ok())
            .unwrap_or("");
        // The tail is empty or starts with ";", so the first piece is always empty.
        tail.split(';').skip(1).map(|param| match param.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (param, None),
        })
    }

    fn slice(&self, span: Span) -> &str {
        self.text.get(span.range()).and_then(|bytes| std::str::from_utf8(bytes).ok()).unwrap_or("")
    }

    fn bytes_of(&self, span: Span) -> &[u8] {
        self.text.get(span.range()).unwrap_or(&[])
    }

    /// The host of a `Name` or `Ipv4` URI as compared by §6.1: percent-encoded unreserved
    /// characters decoded, everything lowercased.
    fn normalized_host(&self) -> NormalizedHost<'_> {
        NormalizedHost { text: self.bytes_of(self.layout.host), next: 0 }
    }

    fn host_eq(&self, other: &Self) -> bool {
        match (self.layout.ipv6, other.layout.ipv6) {
            // RFC 4975 §6.1: "If the authority component contains an explicit IP address and/or
            // port, these are compared for address and port equivalence."
            (Some(left), Some(right)) => left == right,
            // RFC 4975 §6.1: "if any percent-encoded nonreserved characters exist in the authority
            // component, they must be decoded prior to comparison. [...] Otherwise, the authority
            // component is compared as a case-insensitive character string." An IPv4address has a
            // single spelling (RFC 3986 dec-octet has no leading zeros), so comparing its text is
            // comparing the address.
            (None, None) => self.normalized_host().eq(other.normalized_host()),
            _ => false,
        }
    }
}

/// Iterator over the §6.1-normalised bytes of a validated `reg-name` or `IPv4address`.
struct NormalizedHost<'a> {
    text: &'a [u8],
    next: usize,
}

impl Iterator for NormalizedHost<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let byte = *self.text.get(self.next)?;
        if byte == b'%' {
            let high = self.text.get(self.next + 1).copied().and_then(hex_value);
            let low = self.text.get(self.next + 2).copied().and_then(hex_value);
            if let (Some(high), Some(low)) = (high, low) {
                let decoded = (high << 4) | low;
                // RFC 3986 §6.2.2.2: only unreserved characters are decoded; other triplets stay
                // encoded and their hex digits compare case-insensitively.
                if UNRESERVED[usize::from(decoded)] {
                    self.next += 3;
                    return Some(decoded.to_ascii_lowercase());
                }
            }
        }
        self.next += 1;
        Some(byte.to_ascii_lowercase())
    }
}

/// Checks that `bytes` is a valid MSRP URI without allocating (used on the framer's hot path).
///
/// # Errors
///
/// As [`MsrpUri::parse`].
pub fn validate(bytes: &[u8]) -> Result<(), UriError> {
    if common_len(bytes) == Some(bytes.len()) {
        return Ok(());
    }
    scan(bytes).map(|_| ())
}

/// The length of the MSRP URI that starts `bytes`, when it has the common shape
/// `msrp[s]://` reg-name `[":" port] ["/" session-id] ";" transport` (no userinfo,
/// no pct-encoding, no IP literal, no URI-parameter) and is followed by SP, CR or
/// the end of `bytes`. Validates only: it builds no layout.
///
/// `None` says nothing about validity ([`validate`] decides). `Some(n)` implies
/// that `validate(&bytes[..n])` is `Ok`: every step below is the one [`scan`]
/// takes for such a URI.
pub(crate) fn common_len(bytes: &[u8]) -> Option<usize> {
    // RFC 4975 §9: msrp-scheme = "msrp" / "msrps", case-insensitive (RFC 5234 §2.3).
    let authority_start = if bytes.starts_with(b"msrp://") {
        7
    } else if bytes.starts_with(b"msrps://") {
        8
    } else {
        scan_scheme(bytes).ok()?.1
    };
    let rest = bytes.get(authority_start..)?;
    // RFC 3986 §3.2.2: reg-name = *( unreserved / pct-encoded / sub-delims ), here without
    // pct-encoded. Starting with a letter (or another non-digit), it is never an IPv4address.
    let host = run_len(rest, &REG_NAME);
    if host == 0 || rest.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let mut at = host;
    if rest.get(at) == Some(&b':') {
        // port: 1 to 5 digits that fit a u16, as `scan_plain_authority` accepts.
        let digits = rest.get(at + 1..)?;
        let (mut port, mut n) = (0u32, 0);
        while let Some(d) = digits.get(n).map(|b| b.wrapping_sub(b'0')).filter(|&d| d <= 9) {
            if n == 5 {
                return None;
            }
            port = port * 10 + u32::from(d);
            n += 1;
        }
        if n == 0 || port > u32::from(u16::MAX) {
            return None;
        }
        at += 1 + n;
    }
    if rest.get(at) == Some(&b'/') {
        // RFC 4975 §9: session-id = 1*( unreserved / "+" / "=" / "/" )
        let n = run_len(rest.get(at + 1..)?, &SESSION_ID);
        if n == 0 {
            return None;
        }
        at += 1 + n;
    }
    // RFC 4975 §9: ";" transport; transport = "tcp" / 1*ALPHANUM
    if rest.get(at) != Some(&b';') {
        return None;
    }
    let transport = rest.get(at + 1..)?;
    let n = if transport.starts_with(b"tcp") && !transport.get(3).is_some_and(u8::is_ascii_alphanumeric) {
        3
    } else {
        transport.iter().position(|b| !b.is_ascii_alphanumeric()).unwrap_or(transport.len())
    };
    if n == 0 {
        return None;
    }
    at += 1 + n;
    // A URI-parameter (";" token) takes `scan`.
    if !matches!(rest.get(at), None | Some(b' ' | b'\r')) {
        return None;
    }
    let len = authority_start + at;
    (len <= MAX_LEN).then_some(len)
}

impl FromStr for MsrpUri {
    type Err = UriError;

    fn from_str(text: &str) -> Result<Self, UriError> {
        Self::parse_str(text)
    }
}

impl fmt::Display for MsrpUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for MsrpUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MsrpUri").field(&self.as_str()).finish()
    }
}

impl PartialEq for MsrpUri {
    fn eq(&self, other: &Self) -> bool {
        // RFC 4975 §6.1 rule 1: "The scheme MUST match.  Scheme comparison is case insensitive."
        // (`Scheme` was parsed case-insensitively.)
        self.layout.scheme == other.layout.scheme
            // RFC 4975 §6.1 rule 2: "Userinfo parts are not considered for URI comparison." The
            // userinfo is never looked at here; the host rules are in `host_eq`.
            && self.host_eq(other)
            // RFC 4975 §6.1 rule 3: "If the port exists explicitly in either URI, then it MUST
            // match exactly.  A URI with an explicit port is never equivalent to another with no
            // port specified."
            && self.layout.port == other.layout.port
            // RFC 4975 §6.1 rule 4: "The session-id part is compared as case sensitive.  A URI
            // without a session-id part is never equivalent to one that includes one."
            && self.layout.session_id.map(|span| self.bytes_of(span))
                == other.layout.session_id.map(|span| other.bytes_of(span))
            // RFC 4975 §6.1 rule 5: "URIs with different "transport" parameters never match. [...]
            // The transport parameter is case insensitive."
            && self.transport().eq_ignore_ascii_case(other.transport())
        // URI-parameters after the transport are not part of §6.1 and are not compared.
    }
}

impl Eq for MsrpUri {}

impl Hash for MsrpUri {
    /// Hashes the §6.1-normalised components, so URIs that compare equal hash equally.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.layout.scheme.hash(state);
        match self.layout.ipv6 {
            Some(address) => {
                state.write_u8(1);
                state.write(&address.octets());
            }
            None => {
                state.write_u8(0);
                for byte in self.normalized_host() {
                    state.write_u8(byte);
                }
                // 0xff never occurs in the ASCII host, so it ends the host unambiguously.
                state.write_u8(0xff);
            }
        }
        self.layout.port.hash(state);
        self.layout.session_id.map(|span| self.bytes_of(span)).hash(state);
        for byte in self.transport().bytes() {
            state.write_u8(byte.to_ascii_lowercase());
        }
        state.write_u8(0xff);
    }
}

// ---------------------------------------------------------------------------------------------
// Scanner

/// Builds a byte-class table: ASCII letters and digits when `alphanumeric`, plus `extra`.
const fn table(alphanumeric: bool, extra: &[u8]) -> [bool; 256] {
    let mut out = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        out[byte] = alphanumeric && (byte as u8).is_ascii_alphanumeric();
        byte += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        out[extra[i] as usize] = true;
        i += 1;
    }
    out
}

/// RFC 3986 `unreserved`.
const UNRESERVED: [bool; 256] = table(true, b"-._~");
/// RFC 3986 `reg-name` without `pct-encoded` (handled apart): unreserved and sub-delims. The
/// sub-delim ";" is left out: in an MSRP URI it ends the authority.
const REG_NAME: [bool; 256] = table(true, b"-._~!$&'()*+,=");
/// RFC 3986 `userinfo` without `pct-encoded`: unreserved, sub-delims and ":".
const USERINFO: [bool; 256] = table(true, b"-._~!$&'()*+,=:");
/// RFC 4975 §9 `session-id`: unreserved, "+", "=", "/".
const SESSION_ID: [bool; 256] = table(true, b"-._~+=/");
/// RFC 4975 s.9 `token` (URI-parameter = token ["=" token]).
use crate::wire::chars::{run_len, TOKEN};

fn byte_at(bytes: &[u8], index: usize) -> Option<u8> {
    bytes.get(index).copied()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Component offsets of an authority.
struct Authority {
    userinfo: Option<Span>,
    host: Span,
    host_kind: HostKind,
    ipv6: Option<Ipv6Addr>,
    port: Option<u16>,
}

fn scan(bytes: &[u8]) -> Result<Layout, UriError> {
    if bytes.is_empty() {
        return Err(UriError::Empty);
    }
    if bytes.len() > MAX_LEN {
        return Err(UriError::TooLong { at: MAX_LEN });
    }
    let (scheme, authority_start) = scan_scheme(bytes)?;
    let (authority, authority_end) = match scan_plain_authority(bytes, authority_start) {
        Some(plain) => plain,
        None => {
            // RFC 4975 §9: the authority is followed by ["/" session-id] ";" transport, and
            // neither "/" nor ";" can occur inside an MSRP authority, so the first of them ends it.
            let authority_end = span_of(bytes, authority_start, |byte| !matches!(byte, b'/' | b';'));
            (scan_authority(bytes, authority_start, authority_end)?, authority_end)
        }
    };

    let mut next = authority_end;
    let session_id = if byte_at(bytes, next) == Some(b'/') {
        let start = next + 1;
        // RFC 4975 §9: session-id = 1*( unreserved / "+" / "=" / "/" )
        let end = span_of(bytes, start, |byte| SESSION_ID[usize::from(byte)]);
        if !matches!(byte_at(bytes, end), None | Some(b';')) {
            return Err(UriError::SessionId { at: end });
        }
        if end == start {
            return Err(UriError::SessionId { at: start });
        }
        next = end;
        Some(Span::new(start, end))
    } else {
        None
    };

    // RFC 4975 §6: "URIs designating MSRP over TCP MUST include the "tcp" transport parameter";
    // the §9 grammar makes ";" transport mandatory for every MSRP URI.
    if byte_at(bytes, next) != Some(b';') {
        return Err(UriError::Transport { at: next });
    }
    let transport_start = next + 1;
    // RFC 4975 §9: transport = "tcp" / 1*ALPHANUM
    let transport_end = span_of(bytes, transport_start, |byte| byte.is_ascii_alphanumeric());
    if !matches!(byte_at(bytes, transport_end), None | Some(b';')) {
        return Err(UriError::Transport { at: transport_end });
    }
    if transport_end == transport_start {
        return Err(UriError::Transport { at: transport_start });
    }

    scan_params(bytes, transport_end)?;

    Ok(Layout {
        scheme,
        userinfo: authority.userinfo,
        host: authority.host,
        host_kind: authority.host_kind,
        ipv6: authority.ipv6,
        port: authority.port,
        session_id,
        transport: Span::new(transport_start, transport_end),
        params: to_u16(transport_end),
    })
}

/// The offset of the first byte at or after `start` that is not `allowed` (the text length if
/// none is).
fn span_of(bytes: &[u8], start: usize, allowed: impl Fn(u8) -> bool) -> usize {
    let tail = bytes.get(start..).unwrap_or_default();
    start + tail.iter().position(|&byte| !allowed(byte)).unwrap_or(tail.len())
}

/// The offset of the first byte at or after `start` that is not in `class` (the text length if
/// none is), eight bytes at a time.
fn class_end(bytes: &[u8], start: usize, class: &[bool; 256]) -> usize {
    start + run_len(bytes.get(start..).unwrap_or_default(), class)
}

/// The authority in one pass when it is the common `reg-name [":" port]` with no userinfo and no
/// pct-encoding, followed by "/", ";" or the end; `None` for anything else (including every
/// error), which [`scan_authority`] then scans exactly. Returns the authority and where it ends.
fn scan_plain_authority(bytes: &[u8], start: usize) -> Option<(Authority, usize)> {
    // RFC 3986 §3.2.2: reg-name = *( unreserved / pct-encoded / sub-delims ); REG_NAME holds
    // none of "@", "%", "[", ":", "/", ";", so this stops where the host does.
    let host_end = class_end(bytes, start, &REG_NAME);
    let host = bytes.get(start..host_end).filter(|host| !host.is_empty())?;
    let (port, end) = match byte_at(bytes, host_end) {
        None | Some(b'/' | b';') => (None, host_end),
        Some(b':') => {
            // Scanned exactly by `scan_port`; here only 1 to 5 digits fitting a u16.
            let port_start = host_end + 1;
            let port_end = span_of(bytes, port_start, |byte| byte.is_ascii_digit());
            let digits = bytes.get(port_start..port_end).filter(|d| (1..=5).contains(&d.len()))?;
            let value = digits.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
            let port = u16::try_from(value).ok()?;
            (Some(port), port_end)
        }
        Some(_) => return None,
    };
    if !matches!(byte_at(bytes, end), None | Some(b'/' | b';')) {
        return None;
    }
    // RFC 3986 §3.2.2: "If host matches the rule for IPv4address, then it should be considered an
    // IPv4 address literal and not a reg-name."
    let host_kind = if host.first().is_some_and(u8::is_ascii_digit) && is_ipv4_address(host) {
        HostKind::Ipv4
    } else {
        HostKind::Name
    };
    // RFC 4975 §6: an IP address without a port is an error, reported by `scan_authority`.
    if port.is_none() && host_kind != HostKind::Name {
        return None;
    }
    Some((Authority { userinfo: None, host: Span::new(start, host_end), host_kind, ipv6: None, port }, end))
}

/// Returns the scheme and the offset just past `://`.
fn scan_scheme(bytes: &[u8]) -> Result<(Scheme, usize), UriError> {
    // Fast path for the exact spellings; the loop below locates any error.
    if bytes.get(..7).is_some_and(|s| s.eq_ignore_ascii_case(b"msrp://")) {
        return Ok((Scheme::Msrp, 7));
    }
    if bytes.get(..8).is_some_and(|s| s.eq_ignore_ascii_case(b"msrps://")) {
        return Ok((Scheme::Msrps, 8));
    }
    // RFC 4975 §9: msrp-scheme = "msrp" / "msrps"; ABNF quoted strings are case-insensitive
    // (RFC 5234 §2.3).
    for (index, &expected) in b"msrp".iter().enumerate() {
        if byte_at(bytes, index).map(|byte| byte.to_ascii_lowercase()) != Some(expected) {
            return Err(UriError::Scheme { at: index });
        }
    }
    let (scheme, mut next) = match byte_at(bytes, 4) {
        Some(b's' | b'S') => (Scheme::Msrps, 5),
        _ => (Scheme::Msrp, 4),
    };
    for &expected in b"://" {
        if byte_at(bytes, next) != Some(expected) {
            return Err(UriError::Scheme { at: next });
        }
        next += 1;
    }
    Ok((scheme, next))
}

/// Scans `bytes[start..end]` against `allowed`, also accepting RFC 3986 pct-encoded triplets.
/// Returns the offset of the first offending byte (the "%" of a malformed triplet).
fn scan_pct_chars(bytes: &[u8], start: usize, end: usize, allowed: &[bool; 256]) -> Result<(), usize> {
    let mut index = start;
    while index < end {
        let byte = byte_at(bytes, index).ok_or(index)?;
        if byte == b'%' {
            // RFC 3986 §2.1: pct-encoded = "%" HEXDIG HEXDIG
            let well_formed = index + 2 < end
                && byte_at(bytes, index + 1).and_then(hex_value).is_some()
                && byte_at(bytes, index + 2).and_then(hex_value).is_some();
            if !well_formed {
                return Err(index);
            }
            index += 3;
        } else if allowed[usize::from(byte)] {
            index += 1;
        } else {
            return Err(index);
        }
    }
    Ok(())
}

/// Scans the RFC 3986 `authority` in `bytes[start..end]`.
fn scan_authority(bytes: &[u8], start: usize, end: usize) -> Result<Authority, UriError> {
    // RFC 3986 §3.2: authority = [ userinfo "@" ] host [ ":" port ]; "@" occurs in neither
    // userinfo nor host, so the first one ends the userinfo.
    let at_sign = (start..end).find(|&i| byte_at(bytes, i) == Some(b'@'));
    let (userinfo, host_start) = match at_sign {
        Some(at_sign) => {
            scan_pct_chars(bytes, start, at_sign, &USERINFO).map_err(|at| UriError::Userinfo { at })?;
            (Some(Span::new(start, at_sign)), at_sign + 1)
        }
        None => (None, start),
    };

    let (host, host_kind, ipv6, host_end) = if byte_at(bytes, host_start) == Some(b'[') {
        scan_ip_literal(bytes, host_start, end)?
    } else {
        scan_reg_name(bytes, host_start, end)?
    };

    let port = if host_end >= end {
        None
    } else if byte_at(bytes, host_end) == Some(b':') {
        Some(scan_port(bytes, host_end + 1, end)?)
    } else {
        return Err(UriError::Host { at: host_end });
    };

    // RFC 4975 §6: "If the authority field contains a numeric IP address, it MUST also contain a
    // port."
    if port.is_none() && host_kind != HostKind::Name {
        return Err(UriError::Port { at: host_end });
    }

    Ok(Authority { userinfo, host, host_kind, ipv6, port })
}

/// Scans `"[" IPv6address "]"` starting at `open`; returns the address span (without brackets)
/// and the offset just past `]`.
fn scan_ip_literal(
    bytes: &[u8],
    open: usize,
    end: usize,
) -> Result<(Span, HostKind, Option<Ipv6Addr>, usize), UriError> {
    let first = open + 1;
    let mut close = first;
    // RFC 3986 §3.2.2: IP-literal = "[" ( IPv6address / IPvFuture ) "]"; only IPv6address is
    // accepted, whose characters are HEXDIG, ":" and "." (embedded IPv4).
    while close < end
        && byte_at(bytes, close).is_some_and(|byte| byte.is_ascii_hexdigit() || byte == b':' || byte == b'.')
    {
        close += 1;
    }
    if close >= end || byte_at(bytes, close) != Some(b']') {
        return Err(UriError::Host { at: close });
    }
    let address = bytes
        .get(first..close)
        .and_then(|text| std::str::from_utf8(text).ok())
        .and_then(|text| text.parse::<Ipv6Addr>().ok())
        .ok_or(UriError::Host { at: first })?;
    Ok((Span::new(first, close), HostKind::Ipv6, Some(address), close + 1))
}

/// Scans a `reg-name` or `IPv4address` starting at `start`; returns its span and where it ends.
fn scan_reg_name(
    bytes: &[u8],
    start: usize,
    end: usize,
) -> Result<(Span, HostKind, Option<Ipv6Addr>, usize), UriError> {
    // ":" is in neither reg-name nor IPv4address, so the first one starts the port.
    let host_end = (start..end).find(|&i| byte_at(bytes, i) == Some(b':')).unwrap_or(end);
    if host_end == start {
        return Err(UriError::Host { at: start });
    }
    // RFC 3986 §3.2.2: reg-name = *( unreserved / pct-encoded / sub-delims )
    scan_pct_chars(bytes, start, host_end, &REG_NAME).map_err(|at| UriError::Host { at })?;
    // RFC 3986 §3.2.2: "If host matches the rule for IPv4address, then it should be considered an
    // IPv4 address literal and not a reg-name."
    let kind = if bytes.get(start..host_end).is_some_and(is_ipv4_address) { HostKind::Ipv4 } else { HostKind::Name };
    Ok((Span::new(start, host_end), kind, None, host_end))
}

/// RFC 3986 `IPv4address = dec-octet "." dec-octet "." dec-octet "." dec-octet`, where a dec-octet
/// is 0 to 255 without leading zeros.
fn is_ipv4_address(text: &[u8]) -> bool {
    let mut octets = 0;
    for part in text.split(|&byte| byte == b'.') {
        octets += 1;
        let mut value: u32 = 0;
        for &byte in part {
            if !byte.is_ascii_digit() {
                return false;
            }
            value = value * 10 + u32::from(byte - b'0');
            if value > 255 {
                return false;
            }
        }
        let leading_zero = part.len() > 1 && part.first() == Some(&b'0');
        if part.is_empty() || leading_zero || octets > 4 {
            return false;
        }
    }
    octets == 4
}

/// Scans the port in `bytes[start..end]`: 1 to 5 decimal digits fitting a `u16`.
fn scan_port(bytes: &[u8], start: usize, end: usize) -> Result<u16, UriError> {
    if start >= end {
        return Err(UriError::Port { at: start });
    }
    let mut value: u32 = 0;
    for index in start..end {
        let digit = byte_at(bytes, index).filter(u8::is_ascii_digit).ok_or(UriError::Port { at: index })?;
        value = value * 10 + u32::from(digit - b'0');
        if index - start >= 5 || value > u32::from(u16::MAX) {
            return Err(UriError::Port { at: start });
        }
    }
    u16::try_from(value).map_err(|_| UriError::Port { at: start })
}

/// Scans `*( ";" URI-parameter )` from `start` to the end of the text.
fn scan_params(bytes: &[u8], start: usize) -> Result<(), UriError> {
    let mut next = start;
    loop {
        match byte_at(bytes, next) {
            None => return Ok(()),
            Some(b';') => next += 1,
            Some(_) => return Err(UriError::Param { at: next }),
        }
        // RFC 4975 §9: URI-parameter = token ["=" token]
        next = scan_token(bytes, next)?;
        if byte_at(bytes, next) == Some(b'=') {
            next = scan_token(bytes, next + 1)?;
        }
    }
}

/// Scans a non-empty token at `start`; returns where it ends.
fn scan_token(bytes: &[u8], start: usize) -> Result<usize, UriError> {
    let end = span_of(bytes, start, |byte| TOKEN[usize::from(byte)]);
    if end == start {
        return Err(UriError::Param { at: start });
    }
    Ok(end)
}

// ---------------------------------------------------------------------------------------------
// Fuzzing support

/// The URI `Arbitrary` falls back to; its layout is written out so building it cannot fail.
#[cfg(any(test, feature = "arbitrary"))]
fn fallback_uri() -> MsrpUri {
    const TEXT: &[u8] = b"msrp://example.com:2855/fallback;tcp";
    MsrpUri {
        text: Bytes::from_static(TEXT),
        layout: Layout {
            scheme: Scheme::Msrp,
            userinfo: None,
            host: Span { start: 7, end: 18 },
            host_kind: HostKind::Name,
            ipv6: None,
            port: Some(2855),
            session_id: Some(Span { start: 24, end: 32 }),
            transport: Span { start: 33, end: 36 },
            params: 36,
        },
    }
}

#[cfg(feature = "arbitrary")]
mod arbitrary_impl {
    use super::{fallback_uri, Bytes, MsrpUri};
    use arbitrary::{Arbitrary, Unstructured};
    use std::net::{Ipv4Addr, Ipv6Addr};

    const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const LABEL: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
    const ALPHANUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const USERINFO: &[u8] = b"abcxyzABCXYZ0189-._~!$&'()*+,=:";
    const SESSION_ID: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+=/";
    const TOKEN: &[u8] = b"abcxyzABCXYZ0189-.!%*_+`'~";
    /// Percent-encodings of unreserved characters, to exercise §6.1 decoding.
    const PCT_UNRESERVED: &[&str] = &["%61", "%41", "%2D", "%2e", "%5F", "%7E", "%30"];

    fn index(u: &mut Unstructured<'_>, len: usize) -> usize {
        u.int_in_range(0..=len.saturating_sub(1)).unwrap_or(0)
    }

    fn count(u: &mut Unstructured<'_>, min: usize, max: usize) -> usize {
        u.int_in_range(min..=max).unwrap_or(min)
    }

    fn flag(u: &mut Unstructured<'_>) -> bool {
        bool::arbitrary(u).unwrap_or(false)
    }

    fn push_from(u: &mut Unstructured<'_>, out: &mut String, alphabet: &[u8]) {
        if let Some(&byte) = alphabet.get(index(u, alphabet.len())) {
            out.push(char::from(byte));
        }
    }

    fn push_run(u: &mut Unstructured<'_>, out: &mut String, alphabet: &[u8], min: usize, max: usize) {
        for _ in 0..count(u, min, max) {
            push_from(u, out, alphabet);
        }
    }

    fn push_random_case(u: &mut Unstructured<'_>, out: &mut String, word: &str) {
        for ch in word.chars() {
            out.push(if flag(u) { ch.to_ascii_uppercase() } else { ch });
        }
    }

    fn push_host_name(u: &mut Unstructured<'_>, out: &mut String) {
        // A leading letter keeps the name from matching IPv4address.
        push_from(u, out, ALPHA);
        for label in 0..count(u, 1, 3) {
            if label > 0 {
                out.push('.');
            }
            for _ in 0..count(u, 1, 8) {
                if count(u, 0, 9) == 0 {
                    let pct = PCT_UNRESERVED.get(index(u, PCT_UNRESERVED.len())).copied().unwrap_or("%61");
                    out.push_str(pct);
                } else {
                    push_from(u, out, LABEL);
                }
            }
        }
    }

    fn push_ipv6(u: &mut Unstructured<'_>, out: &mut String) {
        let mut segments = [0_u16; 8];
        for segment in &mut segments {
            // Mostly zeros, so that "::" compression shows up.
            *segment = if flag(u) { 0 } else { u16::arbitrary(u).unwrap_or(0) };
        }
        let address = Ipv6Addr::from(segments);
        out.push('[');
        match count(u, 0, 2) {
            0 => out.push_str(&address.to_string()),
            1 => {
                // The uncompressed spelling of the same address.
                let full: Vec<String> = segments.iter().map(|s| format!("{s:x}")).collect();
                out.push_str(&full.join(":"));
            }
            _ => push_random_case(u, out, &address.to_string()),
        }
        out.push(']');
    }

    fn arbitrary_text(u: &mut Unstructured<'_>) -> String {
        let mut out = String::with_capacity(96);
        let scheme = if flag(u) { "msrps" } else { "msrp" };
        push_random_case(u, &mut out, scheme);
        out.push_str("://");
        if count(u, 0, 3) == 0 {
            push_run(u, &mut out, USERINFO, 0, 8);
            out.push('@');
        }
        let is_ip = match count(u, 0, 2) {
            0 => {
                push_host_name(u, &mut out);
                false
            }
            1 => {
                let octets = <[u8; 4]>::arbitrary(u).unwrap_or([192, 0, 2, 1]);
                out.push_str(&Ipv4Addr::from(octets).to_string());
                true
            }
            _ => {
                push_ipv6(u, &mut out);
                true
            }
        };
        if is_ip || flag(u) {
            out.push(':');
            out.push_str(&u16::arbitrary(u).unwrap_or(2855).to_string());
        }
        if flag(u) {
            out.push('/');
            push_run(u, &mut out, SESSION_ID, 1, 16);
        }
        out.push(';');
        if flag(u) {
            push_random_case(u, &mut out, "tcp");
        } else {
            push_run(u, &mut out, ALPHANUM, 1, 6);
        }
        for _ in 0..count(u, 0, 3) {
            out.push(';');
            push_run(u, &mut out, TOKEN, 1, 6);
            if flag(u) {
                out.push('=');
                push_run(u, &mut out, TOKEN, 1, 6);
            }
        }
        out
    }

    impl<'a> Arbitrary<'a> for MsrpUri {
        /// Generates a valid-shaped URI; never fails, falling back to a fixed URI if the text
        /// built does not parse.
        fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
            let text = arbitrary_text(u);
            Ok(Self::parse(Bytes::from(text)).unwrap_or_else(|_| fallback_uri()))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn uri(text: &str) -> MsrpUri {
        match MsrpUri::parse_str(text) {
            Ok(uri) => uri,
            Err(error) => panic!("{text:?} should parse: {error}"),
        }
    }

    fn hash_of(uri: &MsrpUri) -> u64 {
        let mut hasher = DefaultHasher::new();
        uri.hash(&mut hasher);
        hasher.finish()
    }

    /// (text, scheme, userinfo, host, kind, port, session-id, transport, params)
    type Expected = (
        &'static str,
        Scheme,
        Option<&'static str>,
        &'static str,
        HostKind,
        Option<u16>,
        Option<&'static str>,
        &'static str,
        &'static [(&'static str, Option<&'static str>)],
    );

    const VALID: &[Expected] = &[
        (
            "msrp://alice.example.com:7777/iau39soe2843z;tcp",
            Scheme::Msrp,
            None,
            "alice.example.com",
            HostKind::Name,
            Some(7777),
            Some("iau39soe2843z"),
            "tcp",
            &[],
        ),
        (
            "MSRPS://bob.example.com:8888/9di4;tcp;foo=bar;baz",
            Scheme::Msrps,
            None,
            "bob.example.com",
            HostKind::Name,
            Some(8888),
            Some("9di4"),
            "tcp",
            &[("foo", Some("bar")), ("baz", None)],
        ),
        (
            "msrps://alice@intra.example.com;tcp",
            Scheme::Msrps,
            Some("alice"),
            "intra.example.com",
            HostKind::Name,
            None,
            None,
            "tcp",
            &[],
        ),
        (
            "msrp://bob.example.com:8888/a+b=c/d_e~f.g-h;tcp",
            Scheme::Msrp,
            None,
            "bob.example.com",
            HostKind::Name,
            Some(8888),
            Some("a+b=c/d_e~f.g-h"),
            "tcp",
            &[],
        ),
        (
            "msrp://[2001:db8::1]:2855/s;tcp",
            Scheme::Msrp,
            None,
            "2001:db8::1",
            HostKind::Ipv6,
            Some(2855),
            Some("s"),
            "tcp",
            &[],
        ),
        (
            "msrp://192.0.2.1:2855/s;sctp",
            Scheme::Msrp,
            None,
            "192.0.2.1",
            HostKind::Ipv4,
            Some(2855),
            Some("s"),
            "sctp",
            &[],
        ),
        // RFC 4975 §6 example.
        (
            "msrp://host.example.com:8493/asfd34;tcp",
            Scheme::Msrp,
            None,
            "host.example.com",
            HostKind::Name,
            Some(8493),
            Some("asfd34"),
            "tcp",
            &[],
        ),
        (
            "mSrP://u%41:x@ex%61mple.com:0/S;TCP;a.b=c%d;e-f",
            Scheme::Msrp,
            Some("u%41:x"),
            "ex%61mple.com",
            HostKind::Name,
            Some(0),
            Some("S"),
            "TCP",
            &[("a.b", Some("c%d")), ("e-f", None)],
        ),
        ("msrp://@192.0.2.01;tcp", Scheme::Msrp, Some(""), "192.0.2.01", HostKind::Name, None, None, "tcp", &[]),
        (
            "msrp://[::ffff:192.0.2.1]:65535;ws",
            Scheme::Msrp,
            None,
            "::ffff:192.0.2.1",
            HostKind::Ipv6,
            Some(65535),
            None,
            "ws",
            &[],
        ),
    ];

    #[test]
    fn valid_uris_parse_with_accessors() {
        for &(text, scheme, userinfo, host, kind, port, session_id, transport, params) in VALID {
            let parsed = uri(text);
            assert_eq!(validate(text.as_bytes()), Ok(()), "{text}");
            assert_eq!(parsed.as_str(), text);
            assert_eq!(parsed.as_bytes_shared().as_ref(), text.as_bytes());
            assert_eq!(parsed.scheme(), scheme, "{text}");
            assert_eq!(parsed.userinfo(), userinfo, "{text}");
            assert_eq!(parsed.host(), host, "{text}");
            assert_eq!(parsed.host_kind(), kind, "{text}");
            assert_eq!(parsed.port(), port, "{text}");
            assert_eq!(parsed.session_id(), session_id, "{text}");
            assert_eq!(parsed.transport(), transport, "{text}");
            assert_eq!(parsed.params().collect::<Vec<_>>(), params, "{text}");
            assert_eq!(text.parse::<MsrpUri>().as_ref(), Ok(&parsed));
        }
    }

    #[test]
    fn parse_is_zero_copy() {
        let frame = Bytes::from_static(b"To-Path: msrp://h.example.com:1/s;tcp\r\n");
        let uri = MsrpUri::parse(frame.slice(9..37)).unwrap();
        assert_eq!(uri.as_bytes_shared().as_ptr(), frame[9..].as_ptr());
        assert_eq!(uri.host().as_ptr(), frame[16..].as_ptr());
    }

    #[test]
    fn invalid_uris_are_rejected_at_the_offending_byte() {
        let cases: &[(&[u8], UriError)] = &[
            (b"", UriError::Empty),
            (b"sip:bob@example.com", UriError::Scheme { at: 0 }),
            (b"<msrp://a.example.com:1/s;tcp>", UriError::Scheme { at: 0 }),
            (b"msrx://h:1/s;tcp", UriError::Scheme { at: 3 }),
            (b"msrpx://h:1/s;tcp", UriError::Scheme { at: 4 }),
            (b"msrp:/h:1/s;tcp", UriError::Scheme { at: 6 }),
            (b"msrp", UriError::Scheme { at: 4 }),
            (b"msrp://bob.example.com:8888/x", UriError::Transport { at: 29 }),
            (b"msrp://bob.example.com:8888", UriError::Transport { at: 27 }),
            (b"msrp://:80/s;tcp", UriError::Host { at: 7 }),
            (b"msrp://;tcp", UriError::Host { at: 7 }),
            (b"msrp://h:99999/s;tcp", UriError::Port { at: 9 }),
            (b"msrp://h:000001/s;tcp", UriError::Port { at: 9 }),
            (b"msrp://h:/s;tcp", UriError::Port { at: 9 }),
            (b"msrp://h:1x/s;tcp", UriError::Port { at: 10 }),
            (b"msrp://h:1:2/s;tcp", UriError::Port { at: 10 }),
            (b"msrp://h:1/;tcp", UriError::SessionId { at: 11 }),
            (b"msrp://[zz::1]:1/s;tcp", UriError::Host { at: 8 }),
            (b"msrp://[1::2::3]:1/s;tcp", UriError::Host { at: 8 }),
            (b"msrp://[::1:1/s;tcp", UriError::Host { at: 13 }),
            (b"msrp://[::1]x:1/s;tcp", UriError::Host { at: 12 }),
            (b"msrp://[v1.x]:1/s;tcp", UriError::Host { at: 8 }),
            (b"msrp://[::1%eth0]:1/s;tcp", UriError::Host { at: 11 }),
            (b"msrp://h:1/s s;tcp", UriError::SessionId { at: 12 }),
            (b"msrp://h:1/s?;tcp", UriError::SessionId { at: 12 }),
            (b"msrp://h h:1/s;tcp", UriError::Host { at: 8 }),
            (b"msrp://h%4:1/s;tcp", UriError::Host { at: 8 }),
            (b"msrp://h%zz:1/s;tcp", UriError::Host { at: 8 }),
            (b"msrp://h\xc3\xa9:1/s;tcp", UriError::Host { at: 8 }),
            (b"msrp://a b@h:1/s;tcp", UriError::Userinfo { at: 8 }),
            (b"msrp://a@b@h:1/s;tcp", UriError::Host { at: 10 }),
            (b"msrp://h:1/s;", UriError::Transport { at: 13 }),
            (b"msrp://h:1/s;t@p", UriError::Transport { at: 14 }),
            (b"msrp://h:1/s;tcp ", UriError::Transport { at: 16 }),
            (b"msrp://h:1/s;;tcp", UriError::Transport { at: 13 }),
            (b"msrp://h:1/s;tcp;", UriError::Param { at: 17 }),
            (b"msrp://h:1/s;tcp;a=", UriError::Param { at: 19 }),
            (b"msrp://h:1/s;tcp;=b", UriError::Param { at: 17 }),
            (b"msrp://h:1/s;tcp;a=b=c", UriError::Param { at: 20 }),
            (b"msrp://h:1/s;tcp;a b", UriError::Param { at: 18 }),
            (b"msrp://h:1/s;tcp;a\r\n", UriError::Param { at: 18 }),
            // RFC 4975 §6: an IP address requires a port.
            (b"msrp://192.0.2.1/s;tcp", UriError::Port { at: 16 }),
            (b"msrp://[::1];tcp", UriError::Port { at: 12 }),
        ];
        for &(text, expected) in cases {
            let shown = String::from_utf8_lossy(text);
            assert_eq!(validate(text), Err(expected), "{shown:?}");
            assert_eq!(MsrpUri::parse(Bytes::copy_from_slice(text)).map(|u| u.to_string()), Err(expected), "{shown:?}");
        }
        assert_eq!(UriError::Host { at: 7 }.offset(), 7);
        assert_eq!(UriError::Empty.offset(), 0);
    }

    #[test]
    fn too_long_is_rejected() {
        let mut text = b"msrp://h:1/".to_vec();
        text.resize(MAX_LEN - 4, b'a');
        text.extend_from_slice(b";tcp");
        assert_eq!(validate(&text), Ok(()));
        text.push(b'x');
        assert_eq!(validate(&text), Err(UriError::TooLong { at: MAX_LEN }));
    }

    #[test]
    fn equality_follows_rfc_4975_section_6_1() {
        let cases: &[(&str, &str, bool)] = &[
            // Rule 1: scheme must match, case-insensitively.
            ("msrp://h.example.com:1/s;tcp", "MSRP://h.example.com:1/s;tcp", true),
            ("msrps://h.example.com:1/s;tcp", "MsRpS://h.example.com:1/s;tcp", true),
            ("msrp://h.example.com:1/s;tcp", "msrps://h.example.com:1/s;tcp", false),
            // Rule 2: userinfo ignored.
            ("msrp://alice@h.example.com:1/s;tcp", "msrp://bob@h.example.com:1/s;tcp", true),
            ("msrp://alice@h.example.com:1/s;tcp", "msrp://h.example.com:1/s;tcp", true),
            // Rule 2: IP addresses compared as addresses.
            ("msrp://[::1]:1/s;tcp", "msrp://[0:0:0:0:0:0:0:1]:1/s;tcp", true),
            ("msrp://[2001:DB8::1]:1/s;tcp", "msrp://[2001:db8:0::0:1]:1/s;tcp", true),
            ("msrp://[::ffff:192.0.2.1]:1/s;tcp", "msrp://[::ffff:c000:201]:1/s;tcp", true),
            ("msrp://[::1]:1/s;tcp", "msrp://[::2]:1/s;tcp", false),
            ("msrp://[::ffff:192.0.2.1]:1/s;tcp", "msrp://192.0.2.1:1/s;tcp", false),
            ("msrp://192.0.2.1:1/s;tcp", "msrp://192.0.2.1:1/s;tcp", true),
            ("msrp://192.0.2.1:1/s;tcp", "msrp://192.0.2.2:1/s;tcp", false),
            ("msrp://192.0.2.1:1/s;tcp", "msrp://192.0.2.%31:1/s;tcp", true),
            // Rule 2: percent-decoding of unreserved characters, then case-insensitive.
            ("msrp://ex%61mple.com:1/s;tcp", "msrp://example.com:1/s;tcp", true),
            ("msrp://ex%41mple.com:1/s;tcp", "msrp://example.com:1/s;tcp", true),
            ("msrp://ex%2Dample.com:1/s;tcp", "msrp://ex-ample.com:1/s;tcp", true),
            ("msrp://ex%2Fample.com:1/s;tcp", "msrp://ex%2fample.com:1/s;tcp", true),
            ("msrp://EXAMPLE.Com:1/s;tcp", "msrp://example.com:1/s;tcp", true),
            ("msrp://example.com:1/s;tcp", "msrp://example.org:1/s;tcp", false),
            ("msrp://ex%62mple.com:1/s;tcp", "msrp://example.com:1/s;tcp", false),
            ("msrp://ex%21mple.com:1/s;tcp", "msrp://ex!mple.com:1/s;tcp", false),
            // Rule 3: explicit ports must match; explicit never equals absent.
            ("msrp://h.example.com:2855/s;tcp", "msrp://h.example.com:02855/s;tcp", true),
            ("msrp://h.example.com:1/s;tcp", "msrp://h.example.com:2/s;tcp", false),
            ("msrp://h.example.com:2855/s;tcp", "msrp://h.example.com/s;tcp", false),
            ("msrp://h.example.com/s;tcp", "msrp://h.example.com/s;tcp", true),
            // Rule 4: session-id case-sensitive; absent never equals present.
            ("msrp://h.example.com:1/abc;tcp", "msrp://h.example.com:1/abc;tcp", true),
            ("msrp://h.example.com:1/abc;tcp", "msrp://h.example.com:1/ABC;tcp", false),
            ("msrp://h.example.com:1/abc;tcp", "msrp://h.example.com:1;tcp", false),
            ("msrp://h.example.com:1;tcp", "msrp://h.example.com:1;tcp", true),
            // Rule 5: transport case-insensitive; different transports never match.
            ("msrp://h.example.com:1/s;tcp", "msrp://h.example.com:1/s;TCP", true),
            ("msrp://h.example.com:1/s;tcp", "msrp://h.example.com:1/s;sctp", false),
            ("msrp://h.example.com:1/s;tcp", "msrp://h.example.com:1/s;tcp2", false),
            // Other URI-parameters are not compared.
            ("msrp://h.example.com:1/s;tcp;a=b", "msrp://h.example.com:1/s;tcp", true),
            ("msrp://h.example.com:1/s;tcp;a=b", "msrp://h.example.com:1/s;tcp;c", true),
        ];
        for &(left, right, equal) in cases {
            let (left_uri, right_uri) = (uri(left), uri(right));
            assert_eq!(left_uri == right_uri, equal, "{left} vs {right}");
            assert_eq!(right_uri == left_uri, equal, "{right} vs {left}");
            if equal {
                assert_eq!(hash_of(&left_uri), hash_of(&right_uri), "{left} vs {right}");
            }
        }
    }

    #[test]
    fn display_and_debug() {
        for &(text, ..) in VALID {
            let parsed = uri(text);
            assert_eq!(parsed.to_string(), text);
            assert_eq!(uri(&parsed.to_string()).as_str(), text);
            assert_eq!(format!("{parsed:?}"), format!("MsrpUri({text:?})"));
        }
    }

    #[test]
    fn new_builds_and_validates() {
        let built = MsrpUri::new(Scheme::Msrp, "h.example.com", Some(7777), Some("abc"), "tcp").unwrap();
        assert_eq!(built.as_str(), "msrp://h.example.com:7777/abc;tcp");
        let built = MsrpUri::new(Scheme::Msrps, "2001:db8::1", Some(1), None, "tcp").unwrap();
        assert_eq!(built.as_str(), "msrps://[2001:db8::1]:1;tcp");
        assert_eq!(built.host(), "2001:db8::1");
        let bracketed = MsrpUri::new(Scheme::Msrps, "[2001:db8::1]", Some(1), None, "tcp").unwrap();
        assert_eq!(bracketed.as_str(), built.as_str());
        let built = MsrpUri::new(Scheme::Msrp, "192.0.2.1", Some(2855), Some("s"), "sctp").unwrap();
        assert_eq!(built, uri("msrp://192.0.2.1:2855/s;sctp"));

        let bad: &[(&str, Option<u16>, Option<&str>, &str)] = &[
            ("", Some(1), None, "tcp"),
            ("a@h", Some(1), None, "tcp"),
            ("h;x", Some(1), None, "tcp"),
            ("h/x", Some(1), None, "tcp"),
            ("h:5", None, None, "tcp"),
            ("[::1]:5", None, None, "tcp"),
            ("192.0.2.1", None, None, "tcp"),
            ("h", Some(1), Some(""), "tcp"),
            ("h", Some(1), Some("a;b"), "tcp"),
            ("h", Some(1), None, ""),
            ("h", Some(1), None, "tcp;x"),
        ];
        for &(host, port, session_id, transport) in bad {
            assert!(
                MsrpUri::new(Scheme::Msrp, host, port, session_id, transport).is_err(),
                "{host:?} {port:?} {session_id:?} {transport:?}"
            );
        }
    }

    #[test]
    fn fallback_layout_matches_parse() {
        let fallback = fallback_uri();
        let parsed = uri(fallback.as_str());
        assert_eq!(fallback.layout, parsed.layout);
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn fill(&mut self, out: &mut [u8]) {
            for chunk in out.chunks_mut(8) {
                let word = self.next().to_le_bytes();
                chunk.copy_from_slice(&word[..chunk.len()]);
            }
        }
    }

    /// Random and mutated inputs must never panic, and parse agrees with validate.
    #[test]
    fn scanner_never_panics() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let alphabet = b"msrpMSRP:/[]@;=%.-_~+!*'`0123456789abcdefABCDEF xyz\x00\xff";
        for &(text, ..) in VALID {
            for _ in 0..500 {
                let mut bytes = text.as_bytes().to_vec();
                for _ in 0..(rng.next() % 4 + 1) {
                    let position = (rng.next() % (bytes.len() as u64 + 1)) as usize;
                    let byte = alphabet[(rng.next() % alphabet.len() as u64) as usize];
                    match rng.next() % 3 {
                        0 if position < bytes.len() => bytes[position] = byte,
                        1 if position < bytes.len() => {
                            bytes.remove(position);
                        }
                        _ => bytes.insert(position, byte),
                    }
                }
                let validated = validate(&bytes);
                let parsed = MsrpUri::parse(Bytes::from(bytes.clone()));
                assert_eq!(validated, parsed.as_ref().map(|_| ()).map_err(|e| *e));
                if let Ok(parsed) = parsed {
                    assert_eq!(parsed.as_str().as_bytes(), &bytes[..]);
                    assert_eq!(uri(&parsed.to_string()), parsed);
                }
            }
        }
        for _ in 0..5000 {
            let mut bytes = vec![0_u8; (rng.next() % 48) as usize];
            rng.fill(&mut bytes);
            let _ = validate(&bytes);
            let mut prefixed = b"msrp://".to_vec();
            prefixed.extend_from_slice(&bytes);
            let _ = validate(&prefixed);
        }
    }

    /// The validate-only scan of the common shape accepts only what `scan` accepts, stops only
    /// where a path or a header line may go on, and answers for the common URIs.
    #[test]
    fn common_len_implies_scan() {
        let mut rng = XorShift(0x5eed_c0ff_ee12_3456);
        let alphabet = b"msrpMSRP:/[]@;=%.-_~+!0123456789abcdefxyz \r\xff";
        let mut answered = 0;
        for &(text, ..) in VALID {
            for round in 0..2000 {
                let mut bytes = text.as_bytes().to_vec();
                for _ in 0..(round % 4) {
                    let position = (rng.next() % (bytes.len() as u64 + 1)) as usize;
                    let byte = alphabet[(rng.next() % alphabet.len() as u64) as usize];
                    match rng.next() % 3 {
                        0 if position < bytes.len() => bytes[position] = byte,
                        1 if position < bytes.len() => {
                            bytes.remove(position);
                        }
                        _ => bytes.insert(position, byte),
                    }
                }
                let Some(n) = common_len(&bytes) else { continue };
                answered += 1;
                assert!(scan(&bytes[..n]).is_ok(), "{:?}", String::from_utf8_lossy(&bytes));
                assert!(matches!(bytes.get(n), None | Some(b' ' | b'\r')), "{bytes:?}");
            }
        }
        assert!(answered > 1000, "{answered}");
        for text in ["msrp://bob.example.com:8888/9di4eae923wzd;tcp", "MSRPS://h:65535;TCP", "msrp://h/a/b;x1"] {
            assert_eq!(common_len(text.as_bytes()), Some(text.len()), "{text}");
        }
        for text in ["msrp://h:65536/s;tcp", "msrp://h:123456/s;tcp", "msrp://1.2.3.4/s;tcp", "msrp://h/s;tcp;a=b"] {
            assert_eq!(common_len(text.as_bytes()), None, "{text}");
        }
    }

    /// The one-pass authority scan agrees with the exact one wherever it answers.
    #[test]
    fn plain_authority_matches_exact_scan() {
        let mut rng = XorShift(0x0bad_5eed_1234_5678);
        let alphabet = b"msrp:/[]@;=%.-_~+!0123456789abcdefxyz \xff";
        let mut answered = 0;
        for &(text, ..) in VALID {
            for round in 0..2000 {
                let mut bytes = text.as_bytes().to_vec();
                for _ in 0..(round % 3) {
                    let position = (rng.next() % (bytes.len() as u64 + 1)) as usize;
                    let byte = alphabet[(rng.next() % alphabet.len() as u64) as usize];
                    match rng.next() % 3 {
                        0 if position < bytes.len() => bytes[position] = byte,
                        1 if position < bytes.len() => {
                            bytes.remove(position);
                        }
                        _ => bytes.insert(position, byte),
                    }
                }
                let Ok((_, start)) = scan_scheme(&bytes) else { continue };
                let Some((plain, end)) = scan_plain_authority(&bytes, start) else { continue };
                answered += 1;
                let exact_end = span_of(&bytes, start, |byte| !matches!(byte, b'/' | b';'));
                assert_eq!(end, exact_end, "{bytes:?}");
                let exact = scan_authority(&bytes, start, exact_end).unwrap();
                assert_eq!(
                    (plain.userinfo, plain.host, plain.host_kind, plain.ipv6, plain.port),
                    (exact.userinfo, exact.host, exact.host_kind, exact.ipv6, exact.port),
                    "{bytes:?}"
                );
            }
        }
        assert!(answered > 1000, "{answered}");
    }

    /// Builds a URI that §6.1 says equals `uri` but is spelled differently.
    #[cfg(feature = "arbitrary")]
    fn equivalent_spelling(uri: &MsrpUri) -> String {
        let mut out = String::from(match uri.scheme() {
            Scheme::Msrp => "MSRP://",
            Scheme::Msrps => "MSRPS://",
        });
        out.push_str("someone@");
        match uri.layout.ipv6 {
            Some(address) => {
                let segments: Vec<String> = address.segments().iter().map(|s| format!("{s:X}")).collect();
                out.push('[');
                out.push_str(&segments.join(":"));
                out.push(']');
            }
            None => out.push_str(&uri.host().to_ascii_uppercase()),
        }
        if let Some(port) = uri.port() {
            out.push_str(&format!(":{port}"));
        }
        if let Some(session_id) = uri.session_id() {
            out.push('/');
            out.push_str(session_id);
        }
        out.push(';');
        out.push_str(&uri.transport().to_ascii_uppercase());
        out.push_str(";x=y");
        out
    }

    #[cfg(feature = "arbitrary")]
    #[test]
    fn arbitrary_uris_round_trip() {
        use arbitrary::{Arbitrary, Unstructured};

        let fallback = fallback_uri();
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let mut fallbacks = 0;
        let rounds = 4000;
        for round in 0..rounds {
            let mut data = vec![0_u8; 16 + round % 240];
            rng.fill(&mut data);
            let mut unstructured = Unstructured::new(&data);
            let generated = MsrpUri::arbitrary(&mut unstructured).unwrap();
            if generated.as_str() == fallback.as_str() {
                fallbacks += 1;
            }
            let text = generated.to_string();
            assert_eq!(validate(text.as_bytes()), Ok(()), "{text}");
            let reparsed = uri(&text);
            assert_eq!(reparsed, generated, "{text}");
            assert_eq!(reparsed.as_str(), text);
            assert_eq!(reparsed.layout, generated.layout, "{text}");
            assert_eq!(hash_of(&reparsed), hash_of(&generated), "{text}");

            let other = equivalent_spelling(&generated);
            let other_uri = uri(&other);
            assert_eq!(other_uri, generated, "{text} vs {other}");
            assert_eq!(hash_of(&other_uri), hash_of(&generated), "{text} vs {other}");
        }
        assert!(fallbacks < rounds / 100, "{fallbacks} fallbacks");

        // Empty input still yields a URI.
        let mut empty = Unstructured::new(&[]);
        assert!(MsrpUri::arbitrary(&mut empty).is_ok());
    }
}
