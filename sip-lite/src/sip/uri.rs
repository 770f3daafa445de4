//! URIs of SIP messages (RFC 3261 s.19.1, s.25.1; RFC 3966 `tel`), as zero-copy views.

use std::fmt;

use super::chars::{
    check_escaped_run, eq_lower, escaped_run_end, is, run_end, Class, DIGIT, HNV, HOSTNAME, LABEL, PARAMCHAR, PASSWORD,
    SCHEME, URIC, USER,
};
use super::value::Params;

/// The scheme of a [`Uri`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Scheme {
    /// `sip`.
    Sip,
    /// `sips`.
    Sips,
    /// `tel` (RFC 3966).
    Tel,
    /// Any other absolute URI, kept opaque.
    Other,
}

/// Where a URI appears: the Request-URI admits less than a header does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UriContext {
    RequestUri,
    Header,
}

/// A validated URI: `sip`/`sips` split into parts, `tel` and others kept whole.
///
/// Every part is a slice of the text it was parsed from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    raw: &'a str,
    scheme: Scheme,
    /// End of the scheme (index of the `:`).
    colon: usize,
    user: Option<&'a str>,
    password: Option<&'a str>,
    host: &'a str,
    port: Option<u16>,
    params: &'a str,
    headers: Option<&'a str>,
}

impl fmt::Debug for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Uri").field(&self.raw).finish()
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

impl<'a> Uri<'a> {
    /// Parses a URI as it may appear in a header (inside `<>` when it holds `,;?`).
    ///
    /// # Errors
    /// The index of the first offending byte.
    pub fn parse(s: &'a str) -> Result<Self, usize> {
        parse(s, UriContext::Header)
    }

    /// The whole URI as written.
    #[must_use]
    pub const fn as_str(&self) -> &'a str {
        self.raw
    }

    /// The scheme.
    #[must_use]
    pub const fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The scheme as written (`sip`, `SIP`, `tel`, `urn` ...).
    #[must_use]
    pub fn scheme_str(&self) -> &'a str {
        self.raw.get(..self.colon).unwrap_or_default()
    }

    /// Everything after `scheme:`.
    #[must_use]
    pub fn opaque(&self) -> &'a str {
        self.raw.get(self.colon + 1..).unwrap_or_default()
    }

    /// The user part of a `sip`/`sips` URI, still %-escaped.
    #[must_use]
    pub const fn user(&self) -> Option<&'a str> {
        self.user
    }

    /// The password of a `sip`/`sips` URI (RFC 3261 s.19.1.1: NOT RECOMMENDED).
    #[must_use]
    pub const fn password(&self) -> Option<&'a str> {
        self.password
    }

    /// The host of a `sip`/`sips` URI (`[...]` kept around IPv6); `""` for other schemes.
    #[must_use]
    pub const fn host(&self) -> &'a str {
        self.host
    }

    /// The port of a `sip`/`sips` URI.
    #[must_use]
    pub const fn port(&self) -> Option<u16> {
        self.port
    }

    /// The `;` parameters of a `sip`/`sips`/`tel` URI.
    #[must_use]
    pub const fn params(&self) -> Params<'a> {
        Params::new(self.params)
    }

    /// The `?` headers of a `sip`/`sips` URI, without the `?`.
    #[must_use]
    pub const fn headers(&self) -> Option<&'a str> {
        self.headers
    }

    /// Whether this is a `sip` or `sips` URI.
    #[must_use]
    pub const fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// Whether `self` and `other` are the same URI by the comparison rules of
    /// RFC 3261 s.19.1.4 for `sip`/`sips` (a `tel` URI compares its text
    /// case-insensitively, any other scheme exactly, after decoding escapes).
    #[must_use]
    pub fn equivalent(&self, other: &Uri<'_>) -> bool {
        // "A SIP and SIPS URI are never equivalent."
        if self.scheme != other.scheme {
            return false;
        }
        if !self.is_sip() {
            // Two schemes this stack does not know are told apart by name.
            return self.scheme_str().eq_ignore_ascii_case(other.scheme_str())
                && same(self.opaque(), other.opaque(), self.scheme == Scheme::Tel);
        }
        // "Comparison of the userinfo of SIP and SIPS URIs is case-sensitive";
        // "the user, password, host, and port components must match. A URI
        // omitting the user component will not match a URI that includes one."
        let userinfo = |a: Option<&str>, b: Option<&str>| match (a, b) {
            (Some(a), Some(b)) => same(a, b, false),
            (a, b) => a.is_none() && b.is_none(),
        };
        if !userinfo(self.user, other.user)
            || !userinfo(self.password, other.password)
            || !same(self.host, other.host, true)
            || self.port != other.port
        {
            return false;
        }
        // "Any uri-parameter appearing in both URIs must match"; a user, ttl
        // or method parameter (and, by the default-value rule, transport) in
        // only one never matches, nor does maddr; others in only one are ignored.
        let (ours, theirs) = (self.params(), other.params());
        let one_sided = |a: &Params<'_>, b: &Params<'_>| {
            a.iter().any(|(name, value)| match b.get(name) {
                Some(other) => match (value, other) {
                    (Some(v), Some(w)) => !same(v, w, true),
                    (v, w) => v.is_some() != w.is_some(),
                },
                None => ["user", "ttl", "method", "maddr", "transport"].iter().any(|n| n.eq_ignore_ascii_case(name)),
            })
        };
        if one_sided(&ours, &theirs) || one_sided(&theirs, &ours) {
            return false;
        }
        // "Any present header component MUST be present in both URIs and match".
        let headers = |headers: Option<&str>| -> Vec<Vec<u16>> {
            let split = headers.unwrap_or_default().split('&').filter(|h| !h.is_empty());
            let mut all: Vec<Vec<u16>> = split.map(|h| decoded(h, true).collect()).collect();
            all.sort_unstable();
            all
        };
        headers(self.headers) == headers(other.headers)
    }
}

/// The RFC 2396 "reserved" set: an escaped reserved character is not the
/// character itself (RFC 3261 s.19.1.4).
const RESERVED: &[u8] = b";/?:@&=+$,";

/// `s` with its `%HH` escapes decoded, an escaped reserved character kept
/// apart from the plain one (above 0xff), lower-cased when `fold`.
fn decoded(s: &str, fold: bool) -> impl Iterator<Item = u16> + '_ {
    let bytes = s.as_bytes();
    let mut i = 0;
    let hex = |c: Option<&u8>| c.and_then(|c| char::from(*c).to_digit(16));
    let fold = move |c: u8| if fold { c.to_ascii_lowercase() } else { c };
    std::iter::from_fn(move || {
        let c = *bytes.get(i)?;
        if c == b'%' {
            if let (Some(high), Some(low)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                i += 3;
                let c = fold(u8::try_from(high * 16 + low).unwrap_or_default());
                return Some(if RESERVED.contains(&c) { 0x100 | u16::from(c) } else { u16::from(c) });
            }
        }
        i += 1;
        Some(u16::from(fold(c)))
    })
}

/// Whether `a` and `b` are the same once their escapes are decoded.
fn same(a: &str, b: &str, fold: bool) -> bool {
    decoded(a, fold).eq(decoded(b, fold))
}

fn slice(s: &str, from: usize, to: usize) -> &str {
    s.get(from..to).unwrap_or_default()
}

/// Where the parts of a `sip`/`sips` URI lie (byte offsets into the URI).
#[derive(Clone, Copy)]
struct SipParts {
    /// `user` (and `password`) ranges, when there is a userinfo.
    user: Option<(usize, usize)>,
    password: Option<(usize, usize)>,
    host: (usize, usize),
    port: Option<u16>,
    params: (usize, usize),
    headers: Option<(usize, usize)>,
}

/// The scheme and the index of its `:`.
#[inline(always)]
fn scheme(b: &[u8]) -> Result<(Scheme, usize), usize> {
    // The usual `sip:` and `sips:`, case-insensitively (RFC 3261 s.19.1.4: "the scheme is
    // case-insensitive"); `x | 0x20` equals a lower-case letter only for that letter.
    match b {
        [s, i, p, b':', ..] if s | 0x20 == b's' && i | 0x20 == b'i' && p | 0x20 == b'p' => return Ok((Scheme::Sip, 3)),
        [s, i, p, s2, b':', ..] if s | 0x20 == b's' && i | 0x20 == b'i' && p | 0x20 == b'p' && s2 | 0x20 == b's' => {
            return Ok((Scheme::Sips, 4))
        }
        _ => {}
    }
    // RFC 3261 s.25.1: absoluteURI = scheme ":" ( hier-part / opaque-part );
    // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    if !b.first().is_some_and(u8::is_ascii_alphabetic) {
        return Err(0);
    }
    let colon = run_end(b, 0, SCHEME);
    if b.get(colon) != Some(&b':') {
        return Err(colon);
    }
    let name = &b[..colon];
    let scheme = if eq_lower(name, b"sip") {
        Scheme::Sip
    } else if eq_lower(name, b"sips") {
        Scheme::Sips
    } else if eq_lower(name, b"tel") {
        Scheme::Tel
    } else {
        Scheme::Other
    };
    Ok((scheme, colon))
}

/// Checks a URI without building a [`Uri`]: the same grammar as [`parse`]. The
/// error is the index of the first offending byte.
pub(crate) fn check(b: &[u8], context: UriContext) -> Result<(), usize> {
    let (scheme, colon) = scheme(b)?;
    match scheme {
        Scheme::Sip | Scheme::Sips => sip_parts(b, colon + 1, context).map(|_| ()),
        Scheme::Tel => tel_params(b, colon + 1).map(|_| ()),
        Scheme::Other => check_opaque(b, colon + 1),
    }
}

/// [`check`] of the URI that starts at `start` in `b` and ends at the first `stop`
/// byte after it, a byte no URI holds (`>`, SP): the index of that byte
/// when there is one and the URI is valid. `None` when either is not so, or when
/// a search for a part's end (`@`, `]`) went past the URI: [`check`] then decides.
///
/// The URI is read by the same grammar as [`check`] reads it alone; no rule takes
/// `stop`, so each stops there as it would at the end.
pub(crate) fn check_until(b: &[u8], start: usize, stop: u8, context: UriContext) -> Option<usize> {
    let u = b.get(start..)?;
    let (scheme, colon) = scheme(u).ok()?;
    let end = match scheme {
        Scheme::Sip | Scheme::Sips => sip_parts_prefix(u, colon + 1, context).ok()?.1,
        Scheme::Tel => tel_prefix(u, colon + 1).ok()?.1,
        // opaque-part: at least one uric
        Scheme::Other => escaped_run_end(u, colon + 1, URIC).ok().filter(|&end| end > colon + 1)?,
    };
    (u.get(end) == Some(&stop)).then_some(start + end)
}

/// `opaque-part = uric-no-slash *uric / hier-part`: at least one uric.
fn check_opaque(b: &[u8], rest: usize) -> Result<(), usize> {
    if rest == b.len() {
        return Err(rest);
    }
    check_escaped_run(b.get(rest..).unwrap_or_default(), URIC).map_err(|i| rest + i)
}

pub(crate) fn parse(s: &str, context: UriContext) -> Result<Uri<'_>, usize> {
    let b = s.as_bytes();
    let (scheme, colon) = scheme(b)?;
    let mut uri =
        Uri { raw: s, scheme, colon, user: None, password: None, host: "", port: None, params: "", headers: None };
    let rest = colon + 1;
    match scheme {
        Scheme::Sip | Scheme::Sips => {
            let p = sip_parts(b, rest, context)?;
            uri.user = p.user.map(|(from, to)| slice(s, from, to));
            uri.password = p.password.map(|(from, to)| slice(s, from, to));
            uri.host = slice(s, p.host.0, p.host.1);
            uri.port = p.port;
            uri.params = slice(s, p.params.0, p.params.1);
            uri.headers = p.headers.map(|(from, to)| slice(s, from, to));
        }
        Scheme::Tel => {
            let (from, to) = tel_params(b, rest)?;
            uri.params = slice(s, from, to);
        }
        Scheme::Other => check_opaque(b, rest)?,
    }
    Ok(uri)
}

/// `SIP-URI = "sip:" [ userinfo ] hostport uri-parameters [ headers ]`
#[inline(always)]
fn sip_parts(b: &[u8], start: usize, context: UriContext) -> Result<SipParts, usize> {
    let (parts, end) = sip_parts_prefix(b, start, context)?;
    if end != b.len() {
        return Err(end);
    }
    Ok(parts)
}

/// [`sip_parts`] up to where the grammar stops: the parts and that end.
#[inline(always)]
fn sip_parts_prefix(b: &[u8], start: usize, context: UriContext) -> Result<(SipParts, usize), usize> {
    let mut parts = SipParts { user: None, password: None, host: (0, 0), port: None, params: (0, 0), headers: None };
    let mut pos = match run(b, start, USER) {
        // The usual `user "@"`: neither "@" nor ":" is a user byte, so the run ends at
        // the first "@" and there is no password; the run checked the user part.
        Ok(end) if end > start && b.get(end) == Some(&b'@') => {
            parts.user = Some((start, end));
            end + 1
        }
        _ => userinfo(b, start, &mut parts)?,
    };
    let host_end = host(b, pos)?;
    parts.host = (pos, host_end);
    pos = host_end;
    if b.get(pos) == Some(&b':') {
        // port = 1*DIGIT
        let end = run_end(b, pos + 1, DIGIT);
        parts.port = Some(parse_port(b.get(pos + 1..end).unwrap_or_default()).ok_or(pos + 1)?);
        pos = end;
    }
    // uri-parameters = *( ";" uri-parameter ); other-param = pname [ "=" pvalue ]
    let params_start = pos;
    while b.get(pos) == Some(&b';') {
        pos = param(b, pos + 1, PARAMCHAR, true)?;
    }
    parts.params = (params_start, pos);
    if b.get(pos) == Some(&b'?') {
        if context == UriContext::RequestUri {
            // RFC 3261 s.19.1.1, table 1: headers are "not allowed" in a Request-URI.
            return Err(pos);
        }
        // headers = "?" header *( "&" header ); header = hname "=" hvalue
        let headers_start = pos + 1;
        loop {
            let name_end = run(b, pos + 1, HNV)?;
            if name_end == pos + 1 || b.get(name_end) != Some(&b'=') {
                return Err(name_end);
            }
            pos = run(b, name_end + 1, HNV)?;
            if b.get(pos) != Some(&b'&') {
                break;
            }
        }
        parts.headers = Some((headers_start, pos));
    }
    Ok((parts, pos))
}

/// `[ userinfo ]` from `start`, in general; returns where the host starts.
#[inline(always)]
fn userinfo(b: &[u8], start: usize, parts: &mut SipParts) -> Result<usize, usize> {
    // No part after the userinfo may hold "@", so the first "@" ends the userinfo.
    // (A short haystack: a plain scan beats memchr's dispatch.)
    let rest = b.get(start..).unwrap_or_default();
    let Some(at) = rest.iter().position(|&c| c == b'@').map(|i| start + i) else { return Ok(start) };
    // userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"
    let info = &b[start..at];
    let (user_end, password) = match info.iter().position(|&c| c == b':') {
        Some(i) => (start + i, Some(start + i + 1)),
        None => (at, None),
    };
    if user_end == start {
        return Err(start);
    }
    check_escaped_run(&b[start..user_end], USER).map_err(|i| start + i)?;
    parts.user = Some((start, user_end));
    if let Some(p) = password {
        check_escaped_run(&b[p..at], PASSWORD).map_err(|i| p + i)?;
        parts.password = Some((p, at));
    }
    Ok(at + 1)
}

/// `port = 1*DIGIT` (`digits` are digits), as a u16.
pub(crate) fn parse_port(digits: &[u8]) -> Option<u16> {
    if digits.is_empty() {
        return None;
    }
    // Saturates above u16::MAX: no overflow, however many digits.
    let n = digits.iter().fold(0u32, |n, &d| (n * 10 + u32::from(d.wrapping_sub(b'0'))).min(1 << 17));
    u16::try_from(n).ok()
}

/// `pname [ "=" pvalue ]` starting at `pos`; returns the end.
fn param(b: &[u8], pos: usize, class: Class, value_required_nonempty: bool) -> Result<usize, usize> {
    let name_end = run(b, pos, class)?;
    if name_end == pos {
        return Err(pos);
    }
    if b.get(name_end) != Some(&b'=') {
        return Ok(name_end);
    }
    let end = run(b, name_end + 1, class)?;
    if value_required_nonempty && end == name_end + 1 {
        return Err(end);
    }
    Ok(end)
}

/// End of the run of `class` bytes (with valid escapes) from `pos`.
#[inline]
fn run(b: &[u8], pos: usize, class: Class) -> Result<usize, usize> {
    escaped_run_end(b, pos, class)
}

/// Finds and checks the host that starts at `pos` (`host = hostname / IPv4address /
/// IPv6reference`); returns its end, or the index of the first bad byte.
#[inline(always)]
pub(crate) fn host(b: &[u8], pos: usize) -> Result<usize, usize> {
    // One pass over the usual hostname: `alphanum / "-"` runs, each "." checked as it
    // comes. Anything unusual (IPv6, an empty label, "-" at a label's edge, a trailing
    // ".", a numeric toplabel) is left to `host_end` and `check_host`, which give the
    // exact error.
    // domainlabel = alphanum / alphanum *( alphanum / "-" ) alphanum
    let edge_ok = |from: usize, to: usize| to > from && b[from] != b'-' && b[to - 1] != b'-';
    let mut label = pos;
    let mut i = pos;
    let usual = loop {
        match b.get(i) {
            Some(&c) if is(c, LABEL) => i += 1,
            Some(b'.') if edge_ok(label, i) && b.get(i + 1).is_some_and(|&c| is(c, LABEL)) => {
                i += 1;
                label = i;
            }
            Some(b'.') => break false,
            _ => break edge_ok(label, i),
        }
    };
    if usual {
        // toplabel = ALPHA / ALPHA *( alphanum / "-" ) alphanum
        if b[label].is_ascii_alphabetic() {
            return Ok(i);
        }
        // IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT
        if check_ipv4(&b[pos..i]).is_ok() {
            return Ok(i);
        }
    }
    let end = host_end(b, pos).ok_or(pos)?;
    check_host(&b[pos..end]).map_err(|e| pos + e)?;
    Ok(end)
}

/// End of the host that starts at `pos`: a bracketed IPv6 reference, or a run
/// of hostname characters. `None` when a `[` is not closed.
pub(crate) fn host_end(b: &[u8], pos: usize) -> Option<usize> {
    if b.get(pos) == Some(&b'[') {
        return memchr::memchr(b']', &b[pos..]).map(|i| pos + i + 1);
    }
    Some(run_end(b, pos, HOSTNAME))
}

/// Checks `host = hostname / IPv4address / IPv6reference`; returns the index of the first bad byte.
pub(crate) fn check_host(h: &[u8]) -> Result<(), usize> {
    if h.is_empty() {
        return Err(0);
    }
    if h[0] == b'[' {
        // IPv6reference = "[" IPv6address "]". RFC 5118 s.4.10: the RFC 3261 ABNF also
        // admits "2001:db8:::192.0.2.1", which must be tolerated: check the alphabet only.
        if h.len() < 4 || h[h.len() - 1] != b']' {
            return Err(h.len().saturating_sub(1));
        }
        return check_ipv6(&h[1..h.len() - 1]).map_err(|i| i + 1);
    }
    // hostname = *( domainlabel "." ) toplabel [ "." ];
    // domainlabel = alphanum / alphanum *( alphanum / "-" ) alphanum;
    // toplabel = ALPHA / ALPHA *( alphanum / "-" ) alphanum
    let name = h.strip_suffix(b".").unwrap_or(h);
    let mut label_start = 0;
    let mut numeric = true;
    for (i, &c) in name.iter().enumerate() {
        match c {
            b'0'..=b'9' => {}
            b'.' => {
                if i == label_start || name[i - 1] == b'-' {
                    return Err(label_start);
                }
                label_start = i + 1;
            }
            b'-' if i == label_start => return Err(i),
            b'-' => numeric = false,
            c if c.is_ascii_alphabetic() => numeric = false,
            _ => return Err(i),
        }
    }
    if numeric {
        // IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT
        return check_ipv4(h);
    }
    let last = name.get(label_start).copied();
    if !last.is_some_and(|c| c.is_ascii_alphabetic()) || name[name.len() - 1] == b'-' {
        return Err(label_start);
    }
    Ok(())
}

pub(crate) fn check_ipv4(h: &[u8]) -> Result<(), usize> {
    // IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT
    // The error is the start of the first bad group, or the end for a wrong count.
    let mut start = 0;
    let mut groups = 0;
    loop {
        let end = run_end(h, start, DIGIT);
        let last = match h.get(end) {
            None => true,
            Some(b'.') => false,
            Some(_) => return Err(start),
        };
        if end == start || end - start > 3 {
            return Err(start);
        }
        groups += 1;
        if last {
            break;
        }
        start = end + 1;
    }
    if groups == 4 {
        Ok(())
    } else {
        Err(h.len())
    }
}

/// Checks the characters of an IPv6 address: hex digits, `:` and a dotted IPv4 tail.
pub(crate) fn check_ipv6(a: &[u8]) -> Result<(), usize> {
    if let Some(i) = a.iter().position(|c| !(c.is_ascii_hexdigit() || *c == b':' || *c == b'.')) {
        return Err(i);
    }
    if !a.contains(&b':') {
        return Err(0);
    }
    Ok(())
}

/// `telephone-subscriber` (RFC 3966 s.3): a number of phone digits, then `;`
/// parameters; returns where the parameters lie.
fn tel_params(b: &[u8], start: usize) -> Result<(usize, usize), usize> {
    let (params_start, end) = tel_prefix(b, start)?;
    if end != b.len() {
        return Err(end);
    }
    Ok((params_start, end))
}

/// [`tel_params`] up to where the grammar stops: where the parameters start, and that end.
fn tel_prefix(b: &[u8], start: usize) -> Result<(usize, usize), usize> {
    // global-number-digits = "+" *phonedigit DIGIT *phonedigit;
    // local-number-digits = *phonedigit-hex (HEXDIG / "*" / "#") *phonedigit-hex
    let mut pos = start + usize::from(b.get(start) == Some(&b'+'));
    let number = b.get(pos..).unwrap_or_default();
    let digits = number.iter().take_while(|c| c.is_ascii_hexdigit() || b"*#-.()".contains(c)).count();
    let has_digit = number[..digits].iter().any(|c| c.is_ascii_hexdigit() || *c == b'*' || *c == b'#');
    if !has_digit {
        return Err(pos);
    }
    pos += digits;
    let params_start = pos;
    while b.get(pos) == Some(&b';') {
        // parameter = ";" pname ["=" pvalue ]; pvalue = 1*paramchar
        pos = param(b, pos + 1, PARAMCHAR, true)?;
    }
    Ok((params_start, pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_uris() {
        for (s, scheme, user, host, port) in [
            ("sip:alice@atlanta.com", Scheme::Sip, Some("alice"), "atlanta.com", None),
            ("SIPS:bob@[2001:db8::10]:5061;transport=tls", Scheme::Sips, Some("bob"), "[2001:db8::10]", Some(5061)),
            ("sip:127.0.0.1:5080", Scheme::Sip, None, "127.0.0.1", Some(5080)),
            (
                "sip:sips%3Auser%40example.com@example.net",
                Scheme::Sip,
                Some("sips%3Auser%40example.com"),
                "example.net",
                None,
            ),
            (
                "sip:user;par=u%40example.net@example.com",
                Scheme::Sip,
                Some("user;par=u%40example.net"),
                "example.com",
                None,
            ),
            ("sip:u:pw@example.com.", Scheme::Sip, Some("u"), "example.com.", None),
            ("sip:user@example.com?Route=%3Csip:sip.example.com%3E", Scheme::Sip, Some("user"), "example.com", None),
            ("tel:+1-201-555-0123;ext=1", Scheme::Tel, None, "", None),
            ("urn:service:sos", Scheme::Other, None, "", None),
            ("soap.beep://192.0.2.103:3002", Scheme::Other, None, "", None),
            ("name:John_Smith", Scheme::Other, None, "", None),
        ] {
            let uri = Uri::parse(s).unwrap_or_else(|e| panic!("{s}: error at {e}"));
            assert_eq!((uri.scheme(), uri.user(), uri.host(), uri.port()), (scheme, user, host, port), "{s}");
            assert_eq!(uri.as_str(), s);
        }
    }

    #[test]
    fn invalid_uris() {
        for (s, at) in [
            ("<sip:user@example.com>", 0),
            ("sip:user@example.com; lr", 21),
            ("sip:2001:db8::10", 4),
            ("sip:user@exa mple.com", 12),
            ("sip:@example.com", 4),
            ("sip:user@example.com:99999", 21),
            ("sip:user@example.com;;lr", 21),
            ("sip:user@-example.com", 9),
            ("sip:user@example.123", 17),
            ("sip:user@1.2.3", 14),
            ("sip:%zz@example.com", 5),
            ("tel:", 4),
            ("foo:", 4),
            ("1sip:x", 0),
            ("sip:user@[2001:db8::1", 9),
        ] {
            assert_eq!(Uri::parse(s).map(|_| ()), Err(at), "{s}");
        }
    }

    #[test]
    fn one_pass_host_matches_the_general_check() {
        let hosts = [
            "a",
            "a.b",
            "example.com",
            "example.com.",
            "a..b",
            ".a",
            "a-",
            "-a",
            "a-b.c-d",
            "a.-b",
            "a-.b",
            "1.2.3.4",
            "1.2.3.4.",
            "1.2.3",
            "1234.1.1.1",
            "1.2.3.a",
            "example.123",
            "123.example",
            "ex_ample",
            "",
            ";x",
            "[::1]",
            "[2001:db8::1",
            "a.b:5060",
            "a.b;lr",
            "a.b>",
            "a.b.",
            "a.b..",
            "9a.com",
            "a.9com",
            "a.b-",
            "x.y.z-1.q",
        ];
        for h in hosts {
            for b in [h.to_owned(), format!("{h}:5060"), format!("{h};x"), format!("{h}.")] {
                let b = b.as_bytes();
                let general = host_end(b, 0).ok_or(0).and_then(|end| check_host(&b[..end]).map(|()| end));
                assert_eq!(host(b, 0), general, "{:?}", String::from_utf8_lossy(b));
            }
        }
    }

    #[test]
    fn ipv4_groups() {
        for (h, want) in [
            ("192.0.2.10", Ok(())),
            ("1.2.3", Err(5)),
            ("1.2.3.4.5", Err(9)),
            ("1.2.3.4.", Err(8)),
            ("1..3.4", Err(2)),
            ("1234.1.1.1", Err(0)),
            ("1.2.a.4", Err(4)),
            ("1.2.3a.4", Err(4)),
            ("", Err(0)),
            (".1.2.3", Err(0)),
        ] {
            assert_eq!(check_ipv4(h.as_bytes()), want, "{h:?}");
        }
    }

    #[test]
    fn ports() {
        for p in ["", "0", "5060", "05060", "65535", "65536", "99999", "4294967301", "000000000000065535"] {
            assert_eq!(parse_port(p.as_bytes()), p.parse::<u16>().ok(), "{p:?}");
        }
    }

    #[test]
    fn reading_up_to_a_stop_byte_matches_the_check() {
        let uris = [
            "sip:alice@atlanta.com",
            "SIPS:bob@[2001:db8::10]:5061;transport=tls",
            "sip:127.0.0.1:5080",
            "sip:sips%3Auser%40example.com@example.net",
            "sip:user;par=u%40example.net@example.com",
            "sip:u:pw@example.com.",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "sip:host",
            "sip:host:5060",
            "sip:ims.example.net;lr",
            "sip:a@b;",
            "sip:a@b:",
            "sip:a@b?",
            "sip:a%",
            "sip:a%4",
            "sip:[::1",
            "sip:",
            "sip:@h",
            "tel:+1-201-555-0123;ext=1",
            "tel:",
            "urn:service:sos",
            "urn:",
            "foo:%",
            "1sip:x",
            "",
        ];
        let suffixes = [">", ">;x=\"a@b\"", ">@", ">]", "> SIP/2.0", " SIP/2.0", " ", "", ">>", "\r\n>"];
        for uri in uris {
            for suffix in suffixes {
                for (stop, context) in [(b'>', UriContext::Header), (b' ', UriContext::RequestUri)] {
                    let text = format!("<{uri}{suffix}");
                    let b = text.as_bytes();
                    let Some(end) = check_until(b, 1, stop, context) else { continue };
                    // The first stop byte, and the URI before it valid alone.
                    assert_eq!(b.iter().skip(1).position(|&c| c == stop).map(|i| i + 1), Some(end), "{text:?}");
                    assert_eq!(check(&b[1..end], context), Ok(()), "{text:?}");
                }
            }
            // The usual URIs are read in one pass.
            if check(uri.as_bytes(), UriContext::Header).is_ok() && !uri.contains(['@', '[']) {
                let text = format!("{uri}>;tag=1");
                assert_eq!(check_until(text.as_bytes(), 0, b'>', UriContext::Header), Some(uri.len()), "{text:?}");
            }
        }
    }

    #[test]
    fn request_uri_rejects_headers() {
        // RFC 4475 s.3.1.2.11 (escruri): escaped headers in a SIP Request-URI.
        let s = "sip:user@example.com?Route=%3Csip:example.com%3E";
        assert_eq!(parse(s, UriContext::RequestUri).map(|_| ()), Err(20));
        assert!(parse(s, UriContext::Header).is_ok());
    }

    #[test]
    fn parts() {
        let uri = Uri::parse("sip:bob@biloxi.com:5060;transport=tcp;lr?subject=x&h=").unwrap();
        assert_eq!(uri.params().get("transport"), Some(Some("tcp")));
        assert_eq!(uri.params().get("LR"), Some(None));
        assert_eq!(uri.headers(), Some("subject=x&h="));
        assert_eq!(uri.scheme_str(), "sip");
        assert_eq!(uri.opaque(), "bob@biloxi.com:5060;transport=tcp;lr?subject=x&h=");
    }

    /// The examples of RFC 3261 s.19.1.4, both ways round.
    #[test]
    fn equivalence_follows_rfc_3261_19_1_4() {
        let equivalent = [
            ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
            ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
            ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
            ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
            (
                "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
                "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
            ),
            (
                "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
                "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
            ),
            ("tel:+1-201-555-0123", "TEL:+1-201-555-0123"),
        ];
        let different = [
            ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
            ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
            ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
            ("sip:bob@biloxi.com", "sips:bob@biloxi.com"),
            ("sip:bob@biloxi.com;maddr=239.255.255.1", "sip:bob@biloxi.com"),
            ("sip:a%3Bb@h", "sip:a;b@h"),
            ("sip:h", "sip:u@h"),
            ("im:alice@example.com", "pres:alice@example.com"),
        ];
        for (a, b) in equivalent {
            let (a, b) = (Uri::parse(a).unwrap(), Uri::parse(b).unwrap());
            assert!(a.equivalent(&b) && b.equivalent(&a), "{a} ~ {b}");
        }
        for (a, b) in different {
            let (Ok(x), Ok(y)) = (Uri::parse(a), Uri::parse(b)) else { panic!("{a} or {b} does not parse") };
            assert!(!x.equivalent(&y) && !y.equivalent(&x), "{a} !~ {b}");
        }
    }
}
