//! SDP (RFC 8866): a zero-copy session description, its parser, a builder and
//! the serializer.
//!
//! [`SessionDescription::parse`] checks the RFC 8866 s.9 grammar of every line
//! and the line order of s.5, and keeps every line in order: the fixed
//! `v=`/`o=`/`s=` head, then the session-level [`Field`]s, then the
//! [`MediaDescription`]s, each an `m=` line and its own fields. Values are
//! slices of the parsed buffer; nothing is copied. [`SessionDescription::to_bytes`]
//! writes the description back with CRLF line ends, and
//! `parse(to_bytes(s)) == s` for every parsed `s`.
//!
//! Decisions on the cases RFC 8866 leaves to the parser, or that real senders
//! get wrong (each one also stated where it is enforced):
//! - **Line ends.** CRLF, or a bare LF (s.5: parsers "SHOULD be tolerant and
//!   also accept lines terminated with a single newline character"). A CR
//!   anywhere else, a NUL, or a last line without a line end is an error.
//! - **Empty `s=`.** Accepted. s.5.3 says it "MUST NOT be empty", but the
//!   examples of RFC 3264, RFC 5118 and RFC 5547 have it and nothing depends
//!   on the name.
//! - **Unknown type letters** (`x=`) make the whole description an error, one
//!   of the two reactions s.5 allows ("MUST completely ignore or reject").
//! - **Grammar is exact** elsewhere: fields are separated by single spaces, so
//!   trailing whitespace on an `m=` line (an empty `<fmt>`) is an error; an
//!   attribute value, being a byte-string, keeps any trailing space.
//! - **`a=name:`** (a colon and an empty value) is accepted as the value `""`,
//!   so that the layer that knows the attribute can say what is wrong with it.
//! - **Text is UTF-8.** s.5 makes UTF-8 the default charset; lines that are
//!   not UTF-8 (an `a=charset` session) are rejected, so every accessor can
//!   return `&str`.
//! - **Time zones.** Time descriptions are `t= r=*`, repeated, then one
//!   optional `z=` (the order of RFC 4566 and of the s.5 overview).
//! - **`c=` coverage** (s.5.7) is enforced: each media description without
//!   its own `c=` needs the session-level one.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Caps on what [`SessionDescription::parse_with`] accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Most lines in one description (default 1024).
    pub max_lines: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_lines: 1024 }
    }
}

impl Limits {
    /// Sets [`Limits::max_lines`].
    pub fn max_lines(&mut self, max_lines: usize) -> &mut Self {
        self.max_lines = max_lines;
        self
    }
}

/// Why bytes are not a valid session description (RFC 8866).
///
/// `line` is the 1-based number of the offending line; `at` is the byte
/// offset, in the parsed input, of the offending byte for a bad value, else
/// of the start of the offending line (the input length when a required line
/// is missing at the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SdpError {
    /// A NUL, or a CR not followed by LF (RFC 8866 s.5: text excludes NUL, CR and LF).
    #[error("line {line}: NUL or stray CR at byte {at} (RFC 8866 s.5)")]
    Byte {
        /// Line number, from 1.
        line: usize,
        /// Offset of the byte.
        at: usize,
    },
    /// Bytes that are not UTF-8 (RFC 8866 s.5: text is UTF-8 by default).
    #[error("line {line}: invalid UTF-8 at byte {at} (RFC 8866 s.5)")]
    Utf8 {
        /// Line number, from 1.
        line: usize,
        /// Offset of the first invalid byte.
        at: usize,
    },
    /// The last line has no CRLF or LF.
    #[error("line {line} at byte {at} is not terminated by CRLF (RFC 8866 s.5)")]
    Unterminated {
        /// Line number, from 1.
        line: usize,
        /// Offset of the line's first byte.
        at: usize,
    },
    /// A line that is not a lower-case type letter, `=` and a value.
    #[error("line {line} at byte {at} is not `<type>=<value>` (RFC 8866 s.5)")]
    LineSyntax {
        /// Line number, from 1.
        line: usize,
        /// Offset of the line's first byte.
        at: usize,
    },
    /// A type letter RFC 8866 does not define.
    #[error("line {line} at byte {at} has an unknown type letter (RFC 8866 s.5)")]
    UnknownType {
        /// Line number, from 1.
        line: usize,
        /// Offset of the line's first byte.
        at: usize,
    },
    /// A required line (`v=`, `o=`, `s=` or `t=`) is absent where this line stands.
    #[error("line {line} at byte {at}: missing required `{field}=` line (RFC 8866 s.5)")]
    Missing {
        /// Line number, from 1 (one past the last line at the end of input).
        line: usize,
        /// Offset of the line's first byte.
        at: usize,
        /// The type letter of the missing line.
        field: char,
    },
    /// A line out of the order of RFC 8866 s.5, or repeated where only one is allowed.
    #[error("line {line} at byte {at} is out of the RFC 8866 s.5 line order")]
    Order {
        /// Line number, from 1.
        line: usize,
        /// Offset of the line's first byte.
        at: usize,
    },
    /// `v=` other than `0` (RFC 8866 s.5.1 version-field).
    #[error("line {line}: invalid v= at byte {at} (RFC 8866 s.5.1 version-field)")]
    Version {
        /// Line number, from 1.
        line: usize,
        /// Offset of the offending byte.
        at: usize,
    },
    /// An invalid `o=` (RFC 8866 s.5.2 origin-field).
    #[error("line {line}: invalid o= at byte {at} (RFC 8866 s.5.2 origin-field)")]
    Origin {
        /// Line number, from 1.
        line: usize,
        /// Offset of the offending byte.
        at: usize,
    },
    /// An invalid `c=` (RFC 8866 s.5.7 connection-field).
    #[error("line {line}: invalid c= at byte {at} (RFC 8866 s.5.7 connection-field)")]
    Connection {
        /// Line number, from 1.
        line: usize,
        /// Offset of the offending byte.
        at: usize,
    },
    /// An invalid `b=` (RFC 8866 s.5.8 bandwidth-field).
    #[error("line {line}: invalid b= at byte {at} (RFC 8866 s.5.8 bandwidth-field)")]
    Bandwidth {
        /// Line number, from 1.
        line: usize,
        /// Offset of the offending byte.
        at: usize,
    },
    /// An invalid `t=`, or a time past u64 (RFC 8866 s.5.9 time-field).
    #[error("line {line}: invalid t= at byte {at} (RFC 8866 s.5.9 time-field)")]
    Timing {
        /// Line number, from 1.
        line: usize,
        /// Offset of the offending byte.
        at: usize,
    },
    /// An invalid `a=` (RFC 8866 s.5.13 attribute-field).
    #[error("line {line}: invalid a= at byte {at} (RFC 8866 s.5.13 attribute-field)")]
    Attribute {
        /// Line number, from 1.
        line: usize,
        /// Offset of the offending byte.
        at: usize,
    },
    /// An invalid `m=`, or a port past 65535 (RFC 8866 s.5.14 media-field).
    #[error("line {line}: invalid m= at byte {at} (RFC 8866 s.5.14 media-field)")]
    Media {
        /// Line number, from 1.
        line: usize,
        /// Offset of the offending byte.
        at: usize,
    },
    /// An empty `i=`, `u=`, `e=`, `p=`, `r=`, `z=` or `k=` (RFC 8866 s.9: `1*` octets).
    #[error("line {line}: empty value at byte {at} (RFC 8866 s.9)")]
    Text {
        /// Line number, from 1.
        line: usize,
        /// Offset of the empty value.
        at: usize,
    },
    /// A media description without `c=` while the session has none (RFC 8866 s.5.7).
    #[error("line {line} at byte {at}: media description without connection information (RFC 8866 s.5.7)")]
    MissingConnection {
        /// Line number of the `m=` line.
        line: usize,
        /// Offset of the `m=` line.
        at: usize,
    },
    /// More lines than [`Limits::max_lines`].
    #[error("line {line} at byte {at} exceeds the limit of {limit} lines")]
    TooManyLines {
        /// Line number, from 1.
        line: usize,
        /// Offset of the line's first byte.
        at: usize,
        /// The configured limit.
        limit: usize,
    },
}

impl SdpError {
    /// The offending line's number, from 1.
    #[must_use]
    pub const fn line(&self) -> usize {
        match *self {
            Self::Byte { line, .. }
            | Self::Utf8 { line, .. }
            | Self::Unterminated { line, .. }
            | Self::LineSyntax { line, .. }
            | Self::UnknownType { line, .. }
            | Self::Missing { line, .. }
            | Self::Order { line, .. }
            | Self::Version { line, .. }
            | Self::Origin { line, .. }
            | Self::Connection { line, .. }
            | Self::Bandwidth { line, .. }
            | Self::Timing { line, .. }
            | Self::Attribute { line, .. }
            | Self::Media { line, .. }
            | Self::Text { line, .. }
            | Self::MissingConnection { line, .. }
            | Self::TooManyLines { line, .. } => line,
        }
    }

    /// Byte offset of the offending byte or line (see [`SdpError`]).
    #[must_use]
    pub const fn offset(&self) -> usize {
        match *self {
            Self::Byte { at, .. }
            | Self::Utf8 { at, .. }
            | Self::Unterminated { at, .. }
            | Self::LineSyntax { at, .. }
            | Self::UnknownType { at, .. }
            | Self::Missing { at, .. }
            | Self::Order { at, .. }
            | Self::Version { at, .. }
            | Self::Origin { at, .. }
            | Self::Connection { at, .. }
            | Self::Bandwidth { at, .. }
            | Self::Timing { at, .. }
            | Self::Attribute { at, .. }
            | Self::Media { at, .. }
            | Self::Text { at, .. }
            | Self::MissingConnection { at, .. }
            | Self::TooManyLines { at, .. } => at,
        }
    }

    /// A short, stable word naming the kind of error (used by `sdp_dump`).
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Byte { .. } => "byte",
            Self::Utf8 { .. } => "utf8",
            Self::Unterminated { .. } => "unterminated",
            Self::LineSyntax { .. } => "line_syntax",
            Self::UnknownType { .. } => "unknown_type",
            Self::Missing { .. } => "missing_line",
            Self::Order { .. } => "line_order",
            Self::Version { .. } => "version",
            Self::Origin { .. } => "origin",
            Self::Connection { .. } => "connection",
            Self::Bandwidth { .. } => "bandwidth",
            Self::Timing { .. } => "timing",
            Self::Attribute { .. } => "attribute",
            Self::Media { .. } => "media",
            Self::Text { .. } => "text",
            Self::MissingConnection { .. } => "missing_connection",
            Self::TooManyLines { .. } => "too_many_lines",
        }
    }
}

// ---------------------------------------------------------------------------
// Byte classes (RFC 8866 s.9)

const fn table(ranges: &[(u8, u8)]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < ranges.len() {
        let (lo, hi) = ranges[i];
        let mut b = lo as usize;
        while b <= hi as usize {
            t[b] = true;
            b += 1;
        }
        i += 1;
    }
    t
}

/// `token-char = ALPHA / DIGIT / "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+"
/// / "-" / "." / "^" / "_" / "`" / "{" / "|" / "}" / "~"`
static TOKEN: [bool; 256] =
    table(&[(0x21, 0x21), (0x23, 0x27), (0x2A, 0x2B), (0x2D, 0x2E), (0x30, 0x39), (0x41, 0x5A), (0x5E, 0x7E)]);

/// `non-ws-string = 1*(VCHAR/%x80-FF)`
static NON_WS: [bool; 256] = table(&[(0x21, 0x7E), (0x80, 0xFF)]);

/// `DIGIT`
static DIGIT: [bool; 256] = table(&[(b'0', b'9')]);

/// Checks `1*class`; returns the index of the first bad byte (0 when empty).
fn check_run(s: &[u8], class: &[bool; 256]) -> Result<(), usize> {
    if s.is_empty() {
        return Err(0);
    }
    match s.iter().position(|&b| !class[usize::from(b)]) {
        Some(i) => Err(i),
        None => Ok(()),
    }
}

/// Parses `1*DIGIT` into a u64; the index of the first bad byte on error
/// (the length on overflow, 0 when empty).
fn parse_digits(s: &[u8]) -> Result<u64, usize> {
    if s.is_empty() {
        return Err(0);
    }
    let mut n: u64 = 0;
    for (i, &b) in s.iter().enumerate() {
        if !b.is_ascii_digit() {
            return Err(i);
        }
        n = n.checked_mul(10).and_then(|n| n.checked_add(u64::from(b - b'0'))).ok_or(i)?;
    }
    Ok(n)
}

/// Splits a value on single spaces into `(offset, word)` pairs.
fn words(value: &[u8]) -> impl Iterator<Item = (usize, &[u8])> + '_ {
    let mut pos = 0;
    value.split(|&b| b == b' ').map(move |w| {
        let at = pos;
        pos += w.len() + 1;
        (at, w)
    })
}

/// Reads exactly `N` space-separated words; errors at the first missing or extra one.
fn exact_words<const N: usize>(value: &[u8]) -> Result<[(usize, &[u8]); N], usize> {
    let mut out = [(0, &b""[..]); N];
    let mut it = words(value);
    for slot in &mut out {
        *slot = it.next().ok_or(value.len())?;
    }
    if let Some((at, _)) = it.next() {
        return Err(at - 1);
    }
    Ok(out)
}

fn within(at: usize, r: Result<(), usize>) -> Result<(), usize> {
    r.map_err(|i| at + i)
}

// ---------------------------------------------------------------------------
// Values

/// A validated SDP text value: UTF-8 without NUL, CR or LF, sharing the
/// parsed buffer.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Text(Bytes);

impl Text {
    /// The value as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Checked to be UTF-8 when the line was parsed.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The value's bytes, a slice of the parsed buffer.
    #[must_use]
    pub const fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `o=` line (RFC 8866 s.5.2):
/// `<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin(Text);

impl Origin {
    fn word(&self, n: usize) -> &str {
        self.0.as_str().split(' ').nth(n).unwrap_or_default()
    }

    /// The value as written after `o=`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// `<username>` (`-` when the host has no user ids).
    #[must_use]
    pub fn username(&self) -> &str {
        self.word(0)
    }

    /// `<sess-id>`: decimal digits, of any length.
    #[must_use]
    pub fn session_id(&self) -> &str {
        self.word(1)
    }

    /// `<sess-version>`: decimal digits, of any length.
    #[must_use]
    pub fn session_version(&self) -> &str {
        self.word(2)
    }

    /// `<nettype>` (`IN`).
    #[must_use]
    pub fn nettype(&self) -> &str {
        self.word(3)
    }

    /// `<addrtype>` (`IP4`, `IP6`).
    #[must_use]
    pub fn addrtype(&self) -> &str {
        self.word(4)
    }

    /// `<unicast-address>`.
    #[must_use]
    pub fn unicast_address(&self) -> &str {
        self.word(5)
    }

    fn check(value: &[u8]) -> Result<(), usize> {
        // RFC 8866 s.9: origin-field = %s"o" "=" username SP sess-id SP sess-version SP
        //   nettype SP addrtype SP unicast-address CRLF
        let [user, id, version, net, addr, host] = exact_words::<6>(value)?;
        within(user.0, check_run(user.1, &NON_WS))?;
        // sess-id = 1*DIGIT; sess-version = 1*DIGIT (no bound: kept as text)
        for (at, w) in [id, version] {
            within(at, check_run(w, &DIGIT))?;
        }
        within(net.0, check_run(net.1, &TOKEN))?;
        within(addr.0, check_run(addr.1, &TOKEN))?;
        within(host.0, check_run(host.1, &NON_WS))
    }
}

/// A `c=` line (RFC 8866 s.5.7): `<nettype> <addrtype> <connection-address>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Connection(Text);

impl Connection {
    fn word(&self, n: usize) -> &str {
        self.0.as_str().split(' ').nth(n).unwrap_or_default()
    }

    /// The value as written after `c=`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// `<nettype>` (`IN`).
    #[must_use]
    pub fn nettype(&self) -> &str {
        self.word(0)
    }

    /// `<addrtype>` (`IP4`, `IP6`).
    #[must_use]
    pub fn addrtype(&self) -> &str {
        self.word(1)
    }

    /// `<connection-address>`, with any `/ttl` or `/numaddr` suffix.
    #[must_use]
    pub fn address(&self) -> &str {
        self.word(2)
    }

    fn check(value: &[u8]) -> Result<(), usize> {
        // RFC 8866 s.9: connection-field = %s"c" "=" nettype SP addrtype SP connection-address CRLF
        // (every form of connection-address, extn-addr included, is a non-ws-string)
        let [net, addr, host] = exact_words::<3>(value)?;
        within(net.0, check_run(net.1, &TOKEN))?;
        within(addr.0, check_run(addr.1, &TOKEN))?;
        within(host.0, check_run(host.1, &NON_WS))
    }
}

/// A `b=` line (RFC 8866 s.5.8): `<bwtype>:<bandwidth>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Bandwidth {
    value: Text,
    bandwidth: u64,
}

impl Bandwidth {
    /// The value as written after `b=`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.value.as_str()
    }

    /// `<bwtype>` (`AS`, `CT`, `TIAS` ...).
    #[must_use]
    pub fn bwtype(&self) -> &str {
        self.as_str().split(':').next().unwrap_or_default()
    }

    /// `<bandwidth>`, in kilobits per second for `AS` and `CT`.
    #[must_use]
    pub const fn bandwidth(&self) -> u64 {
        self.bandwidth
    }

    fn check(value: &[u8]) -> Result<u64, usize> {
        // RFC 8866 s.9: bandwidth-field = %s"b" "=" bwtype ":" bandwidth CRLF;
        // bwtype = token; bandwidth = 1*DIGIT
        let colon = value.iter().position(|&b| !TOKEN[usize::from(b)]).unwrap_or(value.len());
        if colon == 0 || value.get(colon) != Some(&b':') {
            return Err(colon);
        }
        parse_digits(&value[colon + 1..]).map_err(|i| colon + 1 + i)
    }
}

/// A `t=` line (RFC 8866 s.5.9): `<start-time> <stop-time>`, NTP seconds, 0 for unbounded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Timing {
    value: Text,
    start: u64,
    stop: u64,
}

impl Timing {
    /// The value as written after `t=`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.value.as_str()
    }

    /// `<start-time>`.
    #[must_use]
    pub const fn start(&self) -> u64 {
        self.start
    }

    /// `<stop-time>`.
    #[must_use]
    pub const fn stop(&self) -> u64 {
        self.stop
    }

    fn check(value: &[u8]) -> Result<(u64, u64), usize> {
        // RFC 8866 s.9: time-field = %s"t" "=" start-time SP stop-time CRLF;
        // start-time = time / "0"; time = POS-DIGIT 9*DIGIT
        let time = |(at, w): (usize, &[u8])| -> Result<u64, usize> {
            let n = parse_digits(w).map_err(|i| at + i)?;
            if w != b"0" && (w.len() < 10 || w[0] == b'0') {
                return Err(at);
            }
            Ok(n)
        };
        let [start, stop] = exact_words::<2>(value)?;
        Ok((time(start)?, time(stop)?))
    }
}

/// An `m=` line (RFC 8866 s.5.14): `<media> <port>[/<count>] <proto> <fmt> ...`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Media {
    value: Text,
    port: u16,
    port_count: Option<u16>,
}

impl Media {
    /// The value as written after `m=`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.value.as_str()
    }

    /// `<media>` (`audio`, `message` ...).
    #[must_use]
    pub fn media(&self) -> &str {
        self.as_str().split(' ').next().unwrap_or_default()
    }

    /// `<port>`, without any `/<count>`; 0 marks a rejected or disabled stream.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The `/<count>` of consecutive ports, when written.
    #[must_use]
    pub const fn port_count(&self) -> Option<u16> {
        self.port_count
    }

    /// `<proto>` (`TCP/MSRP`, `TCP/TLS/MSRP`, `RTP/AVP` ...).
    #[must_use]
    pub fn proto(&self) -> &str {
        self.as_str().split(' ').nth(2).unwrap_or_default()
    }

    /// The `<fmt>` list, in order (`*` for MSRP).
    pub fn formats(&self) -> impl Iterator<Item = &str> + '_ {
        self.as_str().split(' ').skip(3)
    }

    fn check(value: &[u8]) -> Result<(u16, Option<u16>), usize> {
        // RFC 8866 s.9: media-field = %s"m" "=" media SP port ["/" integer]
        //   SP proto 1*(SP fmt) CRLF
        let mut it = words(value);
        let (_, media) = it.next().ok_or(0usize)?;
        check_run(media, &TOKEN)?;
        let (at, port) = it.next().ok_or(value.len())?;
        let (port, count) = match port.iter().position(|&b| b == b'/') {
            Some(slash) => (&port[..slash], Some((at + slash + 1, &port[slash + 1..]))),
            None => (port, None),
        };
        // port = 1*DIGIT (a transport port fits 16 bits)
        let port = parse_digits(port).map_err(|i| at + i)?;
        let port = u16::try_from(port).map_err(|_| at)?;
        let count = match count {
            // integer = POS-DIGIT *DIGIT
            Some((c_at, c)) => {
                let n = parse_digits(c).map_err(|i| c_at + i)?;
                if c[0] == b'0' {
                    return Err(c_at);
                }
                Some(u16::try_from(n).map_err(|_| c_at)?)
            }
            None => None,
        };
        // proto = token *("/" token)
        let (at, proto) = it.next().ok_or(value.len())?;
        let mut pos = at;
        for part in proto.split(|&b| b == b'/') {
            within(pos, check_run(part, &TOKEN))?;
            pos += part.len() + 1;
        }
        // 1*(SP fmt); fmt = token
        let mut formats = 0;
        for (at, fmt) in it {
            within(at, check_run(fmt, &TOKEN))?;
            formats += 1;
        }
        if formats == 0 {
            return Err(value.len());
        }
        Ok((port, count))
    }
}

/// An `a=` line (RFC 8866 s.5.13): `<attribute-name>[:<attribute-value>]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attribute {
    value: Text,
    name_len: usize,
}

impl Attribute {
    /// The whole value as written after `a=`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.value.as_str()
    }

    /// `<attribute-name>`.
    #[must_use]
    pub fn name(&self) -> &str {
        self.as_str().get(..self.name_len).unwrap_or_default()
    }

    /// Everything after the first `:`, untrimmed; `None` for a property attribute.
    #[must_use]
    pub fn value(&self) -> Option<&str> {
        self.as_str().get(self.name_len..).and_then(|v| v.strip_prefix(':'))
    }

    fn check(value: &[u8]) -> Result<usize, usize> {
        // RFC 8866 s.9: attribute = (attribute-name ":" attribute-value) / attribute-name;
        // attribute-name = token; attribute-value = byte-string (NUL/CR/LF were excluded
        // with the line; an empty value is accepted, see the module docs)
        let end = value.iter().position(|&b| !TOKEN[usize::from(b)]).unwrap_or(value.len());
        if end == 0 || (end < value.len() && value[end] != b':') {
            return Err(end);
        }
        Ok(end)
    }
}

/// A session- or media-level line other than `v=`, `o=`, `s=` and `m=`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// `i=` session or media title.
    Information(Text),
    /// `u=` URI of description.
    Uri(Text),
    /// `e=` email address.
    Email(Text),
    /// `p=` phone number.
    Phone(Text),
    /// `c=` connection information.
    Connection(Connection),
    /// `b=` bandwidth information.
    Bandwidth(Bandwidth),
    /// `t=` time the session is active.
    Timing(Timing),
    /// `r=` repeat times, as written.
    Repeat(Text),
    /// `z=` time zone adjustments, as written.
    TimeZones(Text),
    /// `k=` encryption key (obsolete), as written.
    Key(Text),
    /// `a=` attribute.
    Attribute(Attribute),
}

impl Field {
    /// The line's type letter.
    #[must_use]
    pub const fn letter(&self) -> char {
        match self {
            Self::Information(_) => 'i',
            Self::Uri(_) => 'u',
            Self::Email(_) => 'e',
            Self::Phone(_) => 'p',
            Self::Connection(_) => 'c',
            Self::Bandwidth(_) => 'b',
            Self::Timing(_) => 't',
            Self::Repeat(_) => 'r',
            Self::TimeZones(_) => 'z',
            Self::Key(_) => 'k',
            Self::Attribute(_) => 'a',
        }
    }

    /// The value as written after `<letter>=`.
    #[must_use]
    pub fn value(&self) -> &str {
        match self {
            Self::Information(t)
            | Self::Uri(t)
            | Self::Email(t)
            | Self::Phone(t)
            | Self::Repeat(t)
            | Self::TimeZones(t)
            | Self::Key(t) => t.as_str(),
            Self::Connection(c) => c.as_str(),
            Self::Bandwidth(b) => b.as_str(),
            Self::Timing(t) => t.as_str(),
            Self::Attribute(a) => a.as_str(),
        }
    }
}

/// One media description: its `m=` line and the lines after it, in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MediaDescription {
    media: Media,
    fields: Vec<Field>,
}

impl MediaDescription {
    /// The `m=` line.
    #[must_use]
    pub const fn media_line(&self) -> &Media {
        &self.media
    }

    /// `<media>` of the `m=` line.
    #[must_use]
    pub fn media(&self) -> &str {
        self.media.media()
    }

    /// `<port>` of the `m=` line, without `/<count>`.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.media.port()
    }

    /// `/<count>` of the `m=` line.
    #[must_use]
    pub const fn port_count(&self) -> Option<u16> {
        self.media.port_count()
    }

    /// `<proto>` of the `m=` line.
    #[must_use]
    pub fn proto(&self) -> &str {
        self.media.proto()
    }

    /// The `<fmt>` list of the `m=` line.
    pub fn formats(&self) -> impl Iterator<Item = &str> + '_ {
        self.media.formats()
    }

    /// The lines after `m=` (`i= c=* b=* k= a=*`), in order.
    #[must_use]
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The media-level `c=` lines, in order.
    pub fn connections(&self) -> impl Iterator<Item = &Connection> + '_ {
        self.fields.iter().filter_map(|f| match f {
            Field::Connection(c) => Some(c),
            _ => None,
        })
    }

    /// The first media-level `c=` line (not the session-level one; see
    /// [`SessionDescription::connection_for`]).
    #[must_use]
    pub fn connection(&self) -> Option<&Connection> {
        self.connections().next()
    }

    /// The media-level `b=` lines, in order.
    pub fn bandwidths(&self) -> impl Iterator<Item = &Bandwidth> + '_ {
        self.fields.iter().filter_map(|f| match f {
            Field::Bandwidth(b) => Some(b),
            _ => None,
        })
    }

    /// The media-level attributes, in order.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> + '_ {
        attributes(&self.fields)
    }

    /// The first media-level attribute named `name` (case-sensitive).
    #[must_use]
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes().find(|a| a.name() == name)
    }

    /// Every media-level attribute named `name` (case-sensitive), in order.
    pub fn attributes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Attribute> + 'a {
        self.attributes().filter(move |a| a.name() == name)
    }
}

fn attributes(fields: &[Field]) -> impl Iterator<Item = &Attribute> + '_ {
    fields.iter().filter_map(|f| match f {
        Field::Attribute(a) => Some(a),
        _ => None,
    })
}

/// A parsed session description (RFC 8866): the session-level lines and the
/// media descriptions, in wire order, as slices of the parsed buffer.
///
/// Equality compares the lines, not the line ends: an LF-terminated input
/// equals its CRLF serialization.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionDescription {
    origin: Origin,
    session_name: Text,
    fields: Vec<Field>,
    media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// Parses a whole session description with [`Limits::default`].
    ///
    /// # Errors
    /// The first violation of RFC 8866, naming the line and the rule.
    pub fn parse(input: Bytes) -> Result<Self, SdpError> {
        Self::parse_with(input, &Limits::default())
    }

    /// Parses a whole session description.
    ///
    /// # Errors
    /// The first violation of RFC 8866, naming the line and the rule, or
    /// [`SdpError::TooManyLines`].
    pub fn parse_with(input: Bytes, limits: &Limits) -> Result<Self, SdpError> {
        Parser::new(limits).run(&input)
    }

    /// Starts a [`Builder`] with the `o=` and `s=` values (`v=0` is implied).
    #[must_use]
    pub fn builder(origin: &str, session_name: &str) -> Builder {
        Builder::new(origin, session_name)
    }

    /// The protocol version; always 0 (RFC 8866 s.5.1).
    #[must_use]
    pub const fn version(&self) -> u32 {
        0
    }

    /// The `o=` line.
    #[must_use]
    pub const fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The `s=` value as written.
    #[must_use]
    pub fn session_name(&self) -> &str {
        self.session_name.as_str()
    }

    /// The session-level lines after `s=` (`i= u= e=* p=* c= b=* (t= r=*)+ z= k= a=*`), in order.
    #[must_use]
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The session-level `c=` line.
    #[must_use]
    pub fn connection(&self) -> Option<&Connection> {
        self.fields.iter().find_map(|f| match f {
            Field::Connection(c) => Some(c),
            _ => None,
        })
    }

    /// The connection that applies to `media`: its first own `c=`, else the
    /// session-level one (RFC 8866 s.5.7: media-level values override).
    #[must_use]
    pub fn connection_for<'a>(&'a self, media: &'a MediaDescription) -> Option<&'a Connection> {
        media.connection().or_else(|| self.connection())
    }

    /// The session-level `b=` lines, in order.
    pub fn bandwidths(&self) -> impl Iterator<Item = &Bandwidth> + '_ {
        self.fields.iter().filter_map(|f| match f {
            Field::Bandwidth(b) => Some(b),
            _ => None,
        })
    }

    /// The `t=` lines, in order (at least one).
    pub fn timings(&self) -> impl Iterator<Item = &Timing> + '_ {
        self.fields.iter().filter_map(|f| match f {
            Field::Timing(t) => Some(t),
            _ => None,
        })
    }

    /// The session-level attributes, in order.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> + '_ {
        attributes(&self.fields)
    }

    /// The first session-level attribute named `name` (case-sensitive).
    #[must_use]
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes().find(|a| a.name() == name)
    }

    /// Every session-level attribute named `name` (case-sensitive), in order.
    pub fn attributes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Attribute> + 'a {
        self.attributes().filter(move |a| a.name() == name)
    }

    /// The media descriptions, in order.
    #[must_use]
    pub fn media(&self) -> &[MediaDescription] {
        &self.media
    }

    /// Appends the description, CRLF-terminated, to `out`.
    pub fn write_to(&self, out: &mut BytesMut) {
        fn put(out: &mut BytesMut, letter: char, value: &str) {
            // RFC 8866 s.5: "<type>=<value>" ... "The sequence CRLF (0x0d0a) is used to end a line"
            let mut buf = [0; 4];
            out.put_slice(letter.encode_utf8(&mut buf).as_bytes());
            out.put_u8(b'=');
            out.put_slice(value.as_bytes());
            out.put_slice(b"\r\n");
        }
        put(out, 'v', "0");
        put(out, 'o', self.origin.as_str());
        put(out, 's', self.session_name.as_str());
        for f in &self.fields {
            put(out, f.letter(), f.value());
        }
        for m in &self.media {
            put(out, 'm', m.media.as_str());
            for f in &m.fields {
                put(out, f.letter(), f.value());
            }
        }
    }

    /// The description, CRLF-terminated (RFC 8866 s.5).
    #[must_use]
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.write_to(&mut out);
        out.freeze()
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// Assembles a session description line by line; [`Builder::build`] parses the
/// result, so what it returns obeys every rule [`SessionDescription::parse`] checks.
///
/// ```
/// use sip_lite::sdp::SessionDescription;
/// let sdp = SessionDescription::builder("- 1 1 IN IP4 192.0.2.1", "-")
///     .line('c', "IN IP4 192.0.2.1")
///     .line('t', "0 0")
///     .media("message 7654 TCP/MSRP *")
///     .attribute("accept-types", Some("message/cpim"))
///     .attribute("path", Some("msrp://192.0.2.1:7654/s1;tcp"))
///     .build()?;
/// assert_eq!(sdp.media()[0].attribute("accept-types").and_then(|a| a.value()), Some("message/cpim"));
/// # Ok::<(), sip_lite::sdp::SdpError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    text: BytesMut,
    lines: usize,
    bad: Option<SdpError>,
}

impl Builder {
    /// Starts with `v=0`, `o=<origin>` and `s=<session_name>`.
    #[must_use]
    pub fn new(origin: &str, session_name: &str) -> Self {
        let mut b = Self { text: BytesMut::new(), lines: 0, bad: None };
        b.line('v', "0").line('o', origin).line('s', session_name);
        b
    }

    /// Appends `<letter>=<value>`. Lines MUST come in the RFC 8866 s.5 order;
    /// [`Builder::build`] reports the first that does not.
    pub fn line(&mut self, letter: char, value: &str) -> &mut Self {
        self.lines += 1;
        let mut buf = [0; 4];
        self.text.put_slice(letter.encode_utf8(&mut buf).as_bytes());
        self.text.put_u8(b'=');
        if let Some(i) = value.bytes().position(|b| matches!(b, b'\0' | b'\r' | b'\n')) {
            // A line end inside a value would smuggle in another line.
            let at = self.text.len() + i;
            self.bad.get_or_insert(SdpError::Byte { line: self.lines, at });
        }
        self.text.put_slice(value.as_bytes());
        self.text.put_slice(b"\r\n");
        self
    }

    /// Appends `a=<name>` or `a=<name>:<value>`.
    pub fn attribute(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.line('a', &format!("{name}:{v}")),
            None => self.line('a', name),
        }
    }

    /// Starts a media description with `m=<value>`.
    pub fn media(&mut self, value: &str) -> &mut Self {
        self.line('m', value)
    }

    /// Parses what was assembled.
    ///
    /// # Errors
    /// The first violation of RFC 8866 in the assembled text; offsets and
    /// line numbers refer to that text (see [`Builder::text`]).
    pub fn build(&self) -> Result<SessionDescription, SdpError> {
        if let Some(bad) = self.bad {
            return Err(bad);
        }
        SessionDescription::parse_with(self.text.clone().freeze(), &Limits { max_lines: usize::MAX })
    }

    /// The text assembled so far.
    #[must_use]
    pub fn text(&self) -> &[u8] {
        &self.text
    }
}

// ---------------------------------------------------------------------------
// Parser

/// Where the parser is in the RFC 8866 s.5 order. The session-level steps are
/// ranked; a line may not come after a line of a higher rank.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Start,
    V,
    O,
    S,
    I,
    U,
    E,
    P,
    C,
    B,
    T,
    Z,
    K,
    A,
    /// In a media description, after its `m=` line.
    Media(MediaStep),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum MediaStep {
    M,
    I,
    C,
    B,
    K,
    A,
}

struct Parser<'l> {
    limits: &'l Limits,
    step: Step,
    origin: Option<Origin>,
    session_name: Option<Text>,
    fields: Vec<Field>,
    media: Vec<MediaDescription>,
    /// (line, offset) of each media description's `m=` line.
    media_at: Vec<(usize, usize)>,
}

struct Line<'a> {
    number: usize,
    start: usize,
    letter: u8,
    value: &'a [u8],
    value_at: usize,
}

impl<'l> Parser<'l> {
    fn new(limits: &'l Limits) -> Self {
        Self {
            limits,
            step: Step::Start,
            origin: None,
            session_name: None,
            // Room for a usual offer without growing.
            fields: Vec::with_capacity(8),
            media: Vec::with_capacity(2),
            media_at: Vec::with_capacity(2),
        }
    }

    fn run(mut self, input: &Bytes) -> Result<SessionDescription, SdpError> {
        let data: &[u8] = input;
        // One UTF-8 check for the whole description (the usual case): its lines, cut
        // at ASCII bytes, are then UTF-8 too. Otherwise each line is checked, so the
        // first bad line is named in order.
        let all_utf8 = std::str::from_utf8(data).is_ok();
        let mut start = 0;
        let mut number = 0;
        while start < data.len() {
            number += 1;
            if number > self.limits.max_lines {
                return Err(SdpError::TooManyLines { line: number, at: start, limit: self.limits.max_lines });
            }
            // RFC 8866 s.5: "The sequence CRLF (0x0d0a) is used to end a line, although
            // parsers SHOULD be tolerant and also accept lines terminated with a single
            // newline character."
            let Some(nl) = memchr::memchr(b'\n', &data[start..]) else {
                return Err(SdpError::Unterminated { line: number, at: start });
            };
            let end = start + nl;
            let line = data[start..end].strip_suffix(b"\r").unwrap_or(&data[start..end]);
            // RFC 8866 s.5: text fields "may contain any octet with the exceptions of
            // 0x00 (Nul), 0x0a (ASCII newline), and 0x0d (ASCII carriage return)".
            if let Some(i) = memchr::memchr2(b'\0', b'\r', line) {
                return Err(SdpError::Byte { line: number, at: start + i });
            }
            if !all_utf8 {
                if let Err(e) = std::str::from_utf8(line) {
                    return Err(SdpError::Utf8 { line: number, at: start + e.valid_up_to() });
                }
            }
            // RFC 8866 s.5: "<type>=<value> where <type> MUST be exactly one case-significant
            // character"; all defined types are lower-case letters.
            if line.len() < 2 || line[1] != b'=' || !line[0].is_ascii_lowercase() {
                return Err(SdpError::LineSyntax { line: number, at: start });
            }
            let line = Line { number, start, letter: line[0], value: &line[2..], value_at: start + 2 };
            self.line(input, &line)?;
            start = end + 1;
        }
        self.finish(number + 1, data.len())
    }

    fn slice(input: &Bytes, value: &[u8]) -> Text {
        Text(input.slice_ref(value))
    }

    fn line(&mut self, input: &Bytes, line: &Line<'_>) -> Result<(), SdpError> {
        let (number, at) = (line.number, line.start);
        let order = SdpError::Order { line: number, at };
        let bad = |i: usize| line.value_at + i;
        if let Step::Media(step) = self.step {
            let next = match line.letter {
                b'm' => MediaStep::M,
                b'i' => MediaStep::I,
                b'c' => MediaStep::C,
                b'b' => MediaStep::B,
                b'k' => MediaStep::K,
                b'a' => MediaStep::A,
                b'v' | b'o' | b's' | b'u' | b'e' | b'p' | b't' | b'r' | b'z' => return Err(order),
                _ => return Err(SdpError::UnknownType { line: number, at }),
            };
            // RFC 8866 s.5: media description = m= i=* c=* b=* k=* a=*, "when present,
            // they must appear in exactly the order given here"; only c, b, a repeat.
            let repeats = matches!(next, MediaStep::C | MediaStep::B | MediaStep::A);
            if next != MediaStep::M && (next < step || (next == step && !repeats)) {
                return Err(order);
            }
            if next == MediaStep::M {
                return self.media_line(input, line);
            }
            self.step = Step::Media(next);
            let field = self.field(input, line)?;
            if let Some(m) = self.media.last_mut() {
                m.fields.push(field);
            }
            return Ok(());
        }

        let next = match line.letter {
            b'v' => Step::V,
            b'o' => Step::O,
            b's' => Step::S,
            b'i' => Step::I,
            b'u' => Step::U,
            b'e' => Step::E,
            b'p' => Step::P,
            b'c' => Step::C,
            b'b' => Step::B,
            b't' | b'r' => Step::T,
            b'z' => Step::Z,
            b'k' => Step::K,
            b'a' => Step::A,
            b'm' => Step::Media(MediaStep::M),
            _ => return Err(SdpError::UnknownType { line: number, at }),
        };
        // A required line skipped: v, o, s (each exactly once, first) and at least one t.
        for (required, letter) in [(Step::V, 'v'), (Step::O, 'o'), (Step::S, 's')] {
            if self.step < required && next > required {
                return Err(SdpError::Missing { line: number, at, field: letter });
            }
        }
        if self.step < Step::T && (next > Step::T || line.letter == b'r') {
            // RFC 8866 s.9: 1*time-description; repeat-field follows its time-field.
            return Err(SdpError::Missing { line: number, at, field: 't' });
        }
        // RFC 8866 s.5: "when present, they must appear in exactly the order given here".
        let repeats = matches!(next, Step::E | Step::P | Step::B | Step::T | Step::A);
        if next < self.step || (next == self.step && !repeats) {
            return Err(order);
        }
        self.step = next;
        match line.letter {
            b'v' => {
                // RFC 8866 s.5.1: "This memo defines version 0."
                if line.value != b"0" {
                    return Err(SdpError::Version { line: number, at: bad(0) });
                }
            }
            b'o' => {
                Origin::check(line.value).map_err(|i| SdpError::Origin { line: number, at: bad(i) })?;
                self.origin = Some(Origin(Self::slice(input, line.value)));
            }
            // s= may be empty here: see the module docs (RFC 8866 s.5.3 "MUST NOT be empty"
            // is broken by the RFC 3264 / 5118 / 5547 examples).
            b's' => self.session_name = Some(Self::slice(input, line.value)),
            b'm' => return self.media_line(input, line),
            _ => {
                let field = self.field(input, line)?;
                self.fields.push(field);
            }
        }
        Ok(())
    }

    fn media_line(&mut self, input: &Bytes, line: &Line<'_>) -> Result<(), SdpError> {
        let (port, port_count) =
            Media::check(line.value).map_err(|i| SdpError::Media { line: line.number, at: line.value_at + i })?;
        let media = Media { value: Self::slice(input, line.value), port, port_count };
        self.media.push(MediaDescription { media, fields: Vec::with_capacity(8) });
        self.media_at.push((line.number, line.start));
        self.step = Step::Media(MediaStep::M);
        Ok(())
    }

    /// Validates and builds one of the [`Field`] lines.
    fn field(&self, input: &Bytes, line: &Line<'_>) -> Result<Field, SdpError> {
        let number = line.number;
        let at = |i: usize| line.value_at + i;
        let text = Self::slice(input, line.value);
        Ok(match line.letter {
            b'c' => {
                Connection::check(line.value).map_err(|i| SdpError::Connection { line: number, at: at(i) })?;
                Field::Connection(Connection(text))
            }
            b'b' => {
                let bandwidth =
                    Bandwidth::check(line.value).map_err(|i| SdpError::Bandwidth { line: number, at: at(i) })?;
                Field::Bandwidth(Bandwidth { value: text, bandwidth })
            }
            b't' => {
                let (start, stop) =
                    Timing::check(line.value).map_err(|i| SdpError::Timing { line: number, at: at(i) })?;
                Field::Timing(Timing { value: text, start, stop })
            }
            b'a' => {
                let name_len =
                    Attribute::check(line.value).map_err(|i| SdpError::Attribute { line: number, at: at(i) })?;
                Field::Attribute(Attribute { value: text, name_len })
            }
            letter => {
                // RFC 8866 s.9: text = byte-string = 1*(%x01-09/%x0B-0C/%x0E-FF); the other
                // kept lines (u=, e=, p=, r=, z=, k=) are checked only as non-empty text.
                if line.value.is_empty() {
                    return Err(SdpError::Text { line: number, at: at(0) });
                }
                match letter {
                    b'i' => Field::Information(text),
                    b'u' => Field::Uri(text),
                    b'e' => Field::Email(text),
                    b'p' => Field::Phone(text),
                    b'r' => Field::Repeat(text),
                    b'z' => Field::TimeZones(text),
                    _ => Field::Key(text),
                }
            }
        })
    }

    fn finish(self, line: usize, at: usize) -> Result<SessionDescription, SdpError> {
        let missing = |field| SdpError::Missing { line, at, field };
        let (Some(origin), Some(session_name)) = (self.origin, self.session_name) else {
            return Err(missing(match self.step {
                Step::Start => 'v',
                Step::V => 'o',
                _ => 's',
            }));
        };
        if self.step < Step::T {
            return Err(missing('t'));
        }
        let session_connection = self.fields.iter().any(|f| matches!(f, Field::Connection(_)));
        for (m, &(line, at)) in self.media.iter().zip(&self.media_at) {
            // RFC 8866 s.5.7: "A session description MUST contain either at least one
            // "c=" line in each media description or a single "c=" line at the session level."
            if !session_connection && m.connection().is_none() {
                return Err(SdpError::MissingConnection { line, at });
            }
        }
        Ok(SessionDescription { origin, session_name, fields: self.fields, media: self.media })
    }
}

#[cfg(any(test, feature = "fuzzing"))]
/// Fuzz entry points for the SDP codec.
pub mod fuzzing {
    use bytes::Bytes;

    use super::SessionDescription;

    /// Parses `data`; an accepted description MUST serialize to bytes that parse
    /// to an equal description, and serializing that again MUST give the same bytes.
    ///
    /// # Panics
    /// When the round trip breaks (the fuzzer's signal), never on bad input.
    pub fn sdp(data: &[u8]) {
        let Ok(sdp) = SessionDescription::parse(Bytes::copy_from_slice(data)) else {
            return;
        };
        let bytes = sdp.to_bytes();
        let again = SessionDescription::parse(bytes.clone());
        assert_eq!(again.as_ref(), Ok(&sdp), "parse(serialize(s)) != s");
        assert_eq!(again.map(|s| s.to_bytes()), Ok(bytes), "serialization is not stable");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n";

    fn parse(s: &str) -> Result<SessionDescription, SdpError> {
        SessionDescription::parse(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn accepts() {
        let cases: &[&str] = &[
            BASE,
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\n",
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=\r\nt=0 0\r\n",
            "v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\n",
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=x\r\ni=info\r\nu=http://x\r\ne=a@b\r\ne=c@d\r\np=+1 555\r\n\
             c=IN IP4 h\r\nb=AS:1\r\nb=CT:2\r\nt=3034423619 3042462419\r\nr=604800 3600 0 90000\r\n\
             t=0 0\r\nz=2882844526 -1h\r\nk=prompt\r\na=x\r\na=y:\r\n\
             m=audio 1/2 RTP/AVP 0 8\r\ni=t\r\nc=IN IP4 a\r\nc=IN IP4 b\r\nb=AS:3\r\nk=prompt\r\na=z:1 2 \r\n\
             m=message 0 TCP/MSRP *\r\n",
            &format!("{BASE}m=message 65535 TCP/TLS/MSRP *\r\n"),
        ];
        for (i, case) in cases.iter().enumerate() {
            let sdp = parse(case).unwrap_or_else(|e| panic!("case {i}: {e}"));
            assert_eq!(parse(&sdp.to_string()).as_ref(), Ok(&sdp), "case {i}");
        }
    }

    #[test]
    fn rejects() {
        use SdpError as E;
        let cases: &[(&str, SdpError)] = &[
            ("", E::Missing { line: 1, at: 0, field: 'v' }),
            ("o=- 1 1 IN IP4 h\r\n", E::Missing { line: 1, at: 0, field: 'v' }),
            ("v=0\r\n", E::Missing { line: 2, at: 5, field: 'o' }),
            ("v=0\r\ns=-\r\n", E::Missing { line: 2, at: 5, field: 'o' }),
            ("v=1\r\n", E::Version { line: 1, at: 2 }),
            ("v=0\r\nv=0\r\n", E::Order { line: 2, at: 5 }),
            ("v=0\r\no=- 1 1 IN IP4\r\n", E::Origin { line: 2, at: 19 }),
            ("v=0\r\no=- 1 x IN IP4 h\r\n", E::Origin { line: 2, at: 11 }),
            ("v=0\r\no=- 1 1 IN IP4 h x\r\n", E::Origin { line: 2, at: 21 }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\n", E::Missing { line: 4, at: 28, field: 't' }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\na=x\r\n", E::Missing { line: 4, at: 28, field: 't' }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nr=1 1 1\r\n", E::Missing { line: 4, at: 28, field: 't' }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nc=IN IP4 h\r\n", E::Order { line: 5, at: 35 }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0", E::Unterminated { line: 4, at: 28 }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 1\r\n", E::Timing { line: 4, at: 32 }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0 \r\n", E::Timing { line: 4, at: 33 }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nx=y\r\n", E::UnknownType { line: 5, at: 35 }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nA=y\r\n", E::LineSyntax { line: 5, at: 35 }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\na y\r\n", E::LineSyntax { line: 5, at: 35 }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\n\r\n", E::LineSyntax { line: 5, at: 35 }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\na=\r\n", E::Attribute { line: 5, at: 37 }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\na=x y\r\n", E::Attribute { line: 5, at: 38 }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\ns=\r\r\n", E::Byte { line: 3, at: 25 }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\ns=\0\r\n", E::Byte { line: 3, at: 25 }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\ni=\r\n", E::Text { line: 4, at: 30 }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nb=AS\r\n", E::Bandwidth { line: 4, at: 32 }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nb=AS:x\r\n", E::Bandwidth { line: 4, at: 33 }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4\r\n", E::Connection { line: 4, at: 36 }),
            (
                "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n",
                E::MissingConnection { line: 5, at: 35 },
            ),
        ];
        let mut wrong = Vec::new();
        for (input, want) in cases {
            if parse(input) != Err(*want) {
                wrong.push((*input, parse(input)));
            }
        }
        let media: &[(&str, SdpError)] = &[
            ("m=message 7654 TCP/MSRP\r\n", E::Media { line: 6, at: 86 }),
            ("m=message 7654 TCP/MSRP * \r\n", E::Media { line: 6, at: 89 }),
            ("m=message abc TCP/MSRP *\r\n", E::Media { line: 6, at: 73 }),
            ("m=message 65536 TCP/MSRP *\r\n", E::Media { line: 6, at: 73 }),
            ("m=message 1/0 TCP/MSRP *\r\n", E::Media { line: 6, at: 75 }),
            ("m=message 1 TCP//MSRP *\r\n", E::Media { line: 6, at: 79 }),
            ("m=message 1 TCP/MSRP  *\r\n", E::Media { line: 6, at: 84 }),
            ("m=message 1 TCP/MSRP *\r\nt=0 0\r\n", E::Order { line: 7, at: 87 }),
            ("m=message 1 TCP/MSRP *\r\na=x\r\nc=IN IP4 h\r\n", E::Order { line: 8, at: 92 }),
            ("m=message 1 TCP/MSRP *\r\ni=x\r\ni=y\r\n", E::Order { line: 8, at: 92 }),
            ("m=message 1 TCP/MSRP *\r\nq=x\r\n", E::UnknownType { line: 7, at: 87 }),
        ];
        for (tail, want) in media {
            let input = format!("{BASE}{tail}");
            // The m= lines all start at byte 63.
            assert_eq!(input.find("m="), Some(63));
            if parse(&input) != Err(*want) {
                wrong.push((tail, parse(&input)));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn too_many_lines() {
        let limits = *Limits::default().max_lines(3);
        let got = SessionDescription::parse_with(Bytes::from_static(BASE.as_bytes()), &limits);
        assert_eq!(got, Err(SdpError::TooManyLines { line: 4, at: 36, limit: 3 }));
    }

    #[test]
    fn typed_accessors() {
        let text = format!(
            "{BASE}a=tool:x y\r\nm=message 7654/2 TCP/MSRP * x\r\nc=IN IP6 ::1\r\nb=AS:64\r\n\
             a=accept-types:message/cpim text/plain\r\na=recvonly\r\na=path:msrp://h:1/s;tcp \r\n\
             m=audio 0 RTP/AVP 0\r\n"
        );
        let sdp = parse(&text).unwrap();
        assert_eq!(sdp.version(), 0);
        let o = sdp.origin();
        assert_eq!(
            [o.username(), o.session_id(), o.session_version(), o.nettype(), o.addrtype(), o.unicast_address()],
            ["-", "1", "1", "IN", "IP4", "192.0.2.1"]
        );
        assert_eq!(sdp.session_name(), "-");
        assert_eq!(sdp.connection().map(Connection::address), Some("192.0.2.1"));
        assert_eq!(sdp.timings().map(|t| (t.start(), t.stop())).collect::<Vec<_>>(), [(0, 0)]);
        assert_eq!(sdp.attribute("tool").and_then(Attribute::value), Some("x y"));
        let m = &sdp.media()[0];
        assert_eq!((m.media(), m.port(), m.port_count(), m.proto()), ("message", 7654, Some(2), "TCP/MSRP"));
        assert_eq!(m.formats().collect::<Vec<_>>(), ["*", "x"]);
        assert_eq!(m.connection().map(|c| (c.nettype(), c.addrtype(), c.address())), Some(("IN", "IP6", "::1")));
        assert_eq!(m.bandwidths().map(|b| (b.bwtype(), b.bandwidth())).collect::<Vec<_>>(), [("AS", 64)]);
        let attrs: Vec<_> = m.attributes().map(|a| (a.name(), a.value())).collect();
        assert_eq!(
            attrs,
            [
                ("accept-types", Some("message/cpim text/plain")),
                ("recvonly", None),
                ("path", Some("msrp://h:1/s;tcp ")),
            ]
        );
        assert_eq!(m.attributes_named("recvonly").count(), 1);
        let audio = &sdp.media()[1];
        assert_eq!(sdp.connection_for(audio).map(Connection::address), Some("192.0.2.1"));
        assert_eq!(sdp.connection_for(m).map(Connection::address), Some("::1"));
        assert_eq!(sdp.to_bytes(), text.as_bytes());
    }

    #[test]
    fn lf_input_equals_its_crlf_serialization() {
        let lf = format!("{BASE}m=message 1 TCP/MSRP *\r\na=x:y\r\n").replace("\r\n", "\n");
        let sdp = parse(&lf).unwrap();
        assert_eq!(sdp.to_bytes(), lf.replace('\n', "\r\n").as_bytes());
        assert_eq!(parse(&sdp.to_string()), Ok(sdp));
    }

    #[test]
    fn values_share_the_input() {
        let input = Bytes::from(format!("{BASE}a=x:y\r\n"));
        let sdp = SessionDescription::parse(input.clone()).unwrap();
        let Some(Field::Attribute(a)) = sdp.fields().last() else { panic!("no attribute") };
        let range = input.as_ptr_range();
        assert!(range.contains(&a.value.as_bytes().as_ptr()));
    }

    #[test]
    fn builder_rejects_smuggled_lines() {
        let got = SessionDescription::builder("- 1 1 IN IP4 h", "-").line('t', "0 0\r\na=x").build();
        assert_eq!(got, Err(SdpError::Byte { line: 4, at: 33 }));
        let ok = SessionDescription::builder("- 1 1 IN IP4 h", "-").line('t', "0 0").attribute("x", None).build();
        assert_eq!(ok.map(|s| s.attributes().count()), Ok(1));
    }

    #[test]
    fn fuzz_entry_never_panics_on_samples() {
        for case in [BASE.as_bytes(), b"", b"v=0\n", b"\xff\xfe", b"v=0\r\no=\r\n"] {
            fuzzing::sdp(case);
        }
    }
}
