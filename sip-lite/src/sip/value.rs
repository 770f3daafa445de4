//! Typed header values (RFC 3261 s.20, s.25.1), parsed from the received text:
//! every string they hand out is a slice of the message.

use std::fmt;

use super::chars::{
    find_byte, is, is_lws, long_run_end, parse_u32, parse_u64, run_end, Class, DIGIT, GEN_VALUE, LWS, QDTEXT,
    QDTEXT_LINE, TOKEN, WORD, WSP,
};
use super::header::HeaderName;
use super::uri::{self, check_host, check_ipv4, check_ipv6, Uri, UriContext};

/// A scanner over one header value. LWS (SP, HTAB, and the CRLF of a fold) may
/// appear wherever the grammar says `SWS`/`LWS`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor<'a> {
    /// The value as text; `""` for a cursor that only checks (see [`Cursor::check`]).
    s: &'a str,
    b: &'a [u8],
    i: usize,
    /// The bytes white space is made of: [`LWS`], or [`WSP`] on one line (see [`Cursor::line`]).
    lws: Class,
    /// The bytes a quoted string holds as they are: [`QDTEXT`], or [`QDTEXT_LINE`] on one line.
    qdtext: Class,
}

impl<'a> Cursor<'a> {
    pub(crate) const fn new(s: &'a str) -> Self {
        Self { s, b: s.as_bytes(), i: 0, lws: LWS, qdtext: QDTEXT }
    }

    /// A cursor that checks the grammar of `b` and nothing more: every string it
    /// hands out is empty, so its callers decide on bytes and positions only. The
    /// message parser checks UTF-8 apart; only quoted strings, the one part of a
    /// typed value that admits non-ASCII, check theirs as they go.
    pub(crate) const fn check(b: &'a [u8]) -> Self {
        Self { s: "", b, i: 0, lws: LWS, qdtext: QDTEXT }
    }

    /// [`Cursor::check`] over the rest of a header section from a value's first byte,
    /// the value read up to its line's end: no white space or quoted string takes a
    /// CR or LF, so every rule stops at the line's CR as it would at the value's end.
    const fn line(b: &'a [u8]) -> Self {
        Self { s: "", b, i: 0, lws: WSP, qdtext: QDTEXT_LINE }
    }

    const fn b(&self) -> &'a [u8] {
        self.b
    }

    pub(crate) fn pos(&self) -> usize {
        self.i
    }

    fn peek(&self) -> Option<u8> {
        self.b().get(self.i).copied()
    }

    fn slice(&self, from: usize, to: usize) -> &'a str {
        self.s.get(from..to).unwrap_or_default()
    }

    /// `SWS = [LWS]`: skips white space; returns whether there was any.
    fn sws(&mut self) -> bool {
        let start = self.i;
        self.i = skip_lws(self.b, start, self.lws);
        self.i > start
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// `SWS c SWS` (RFC 3261 s.25.1 SEMI, COMMA, EQUAL, SLASH, COLON); restores on failure.
    fn sep(&mut self, c: u8) -> bool {
        let save = self.i;
        self.sws();
        if self.eat(c) {
            self.sws();
            true
        } else {
            self.i = save;
            false
        }
    }

    /// The run of `class` bytes at the cursor, as bytes.
    #[inline]
    fn run_bytes(&mut self, class: Class) -> &'a [u8] {
        let start = self.i;
        self.i = run_end(self.b(), start, class);
        self.b().get(start..self.i).unwrap_or_default()
    }

    fn token(&mut self) -> Result<&'a str, usize> {
        let start = self.i;
        self.i = run_end(self.b(), start, TOKEN);
        if self.i == start {
            Err(self.i)
        } else {
            Ok(self.slice(start, self.i))
        }
    }

    /// `quoted-string = DQUOTE *(qdtext / quoted-pair ) DQUOTE`, quotes included.
    #[inline]
    fn quoted(&mut self) -> Result<&'a str, usize> {
        let start = self.i;
        if !self.eat(b'"') {
            return Err(self.i);
        }
        loop {
            // qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
            self.i = run_end(self.b(), self.i, self.qdtext);
            match self.peek() {
                // RFC 4475 s.3.1.2.6: an unterminated quoted string is invalid.
                None => return Err(start),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(self.slice(start, self.i));
                }
                Some(b'\\') => {
                    // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
                    match self.b().get(self.i + 1) {
                        Some(&c) if c < 0x80 && c != b'\r' && c != b'\n' => self.i += 2,
                        _ => return Err(self.i + 1),
                    }
                }
                Some(0x80..) => self.i = non_ascii_run_end(self.b(), self.i)?,
                Some(_) => return Err(self.i),
            }
        }
    }

    /// White space, then the end of the value.
    fn end(&mut self) -> Result<(), usize> {
        self.sws();
        if self.i == self.b.len() {
            Ok(())
        } else {
            Err(self.i)
        }
    }

    /// `*( SEMI generic-param )`, each checked by `check`; returns the parameters' text.
    fn params(&mut self, check: ParamCheck) -> Result<Params<'a>, usize> {
        let b = self.b();
        let lws = self.lws;
        let start = self.i;
        let mut end = start;
        loop {
            // SEMI = SWS ";" SWS
            let semi = skip_lws(b, end, lws);
            if b.get(semi) != Some(&b';') {
                break;
            }
            // generic-param = token [ EQUAL gen-value ]
            let name_at = skip_lws(b, semi + 1, lws);
            let name_end = long_run_end(b, name_at, TOKEN);
            if name_end == name_at {
                return Err(name_at);
            }
            let name = &b[name_at..name_end];
            // EQUAL = SWS "=" SWS
            let equal = skip_lws(b, name_end, lws);
            let value = if b.get(equal) == Some(&b'=') {
                let at = skip_lws(b, equal + 1, lws);
                self.i = at;
                let token = self.gen_value()?;
                end = self.i;
                Some(Value { v: &b[at..end], at, token })
            } else {
                end = name_end;
                None
            };
            check_param(check, name, value).map_err(|e| e.unwrap_or(name_at))?;
        }
        self.i = end;
        Ok(Params::new(self.slice(start, end)))
    }

    /// `gen-value = token / host / quoted-string`, and the bare IPv6 of `received`;
    /// returns whether the value is a `token`.
    fn gen_value(&mut self) -> Result<bool, usize> {
        if self.peek() == Some(b'"') {
            return self.quoted().map(|_| false);
        }
        let b = self.b();
        let start = self.i;
        // A token when every byte is a token byte (TOKEN bytes are GEN_VALUE bytes).
        let token_end = long_run_end(b, start, TOKEN);
        // The usual token ends at a byte that is no `gen-value` byte either.
        let end = match b.get(token_end) {
            Some(&c) if is(c, GEN_VALUE) => long_run_end(b, token_end, GEN_VALUE),
            _ => token_end,
        };
        self.i = end;
        if end == start {
            return Err(end);
        }
        Ok(token_end == end)
    }
}

/// The end of the run of non-ASCII bytes at `i` in a quoted string (`UTF8-NONASCII`),
/// or the index of its first byte that is not UTF-8. A multi-byte character is made
/// of non-ASCII bytes only, so the run is checked as UTF-8 on its own. This is the one
/// place a typed value admits non-ASCII (see `message::Utf8::Deferred`).
#[cold]
fn non_ascii_run_end(b: &[u8], i: usize) -> Result<usize, usize> {
    let rest = b.get(i..).unwrap_or_default();
    let run = rest.iter().take_while(|&&c| c >= 0x80).count();
    std::str::from_utf8(rest.get(..run).unwrap_or_default()).map_err(|e| i + e.valid_up_to())?;
    Ok(i + run)
}

/// The index of the first byte at or after `i` that is not white space (`lws`: [`LWS`] or [`WSP`]).
#[inline]
fn skip_lws(b: &[u8], mut i: usize, lws: Class) -> usize {
    while b.get(i).is_some_and(|&c| is(c, lws)) {
        i += 1;
    }
    i
}

/// A parameter value as the cursor read it.
#[derive(Clone, Copy)]
struct Value<'a> {
    v: &'a [u8],
    /// Where it starts in the header value.
    at: usize,
    /// Whether it is a `token`.
    token: bool,
}

/// Which parameter rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ParamCheck {
    Generic,
    Via,
    FromTo,
    Contact,
}

/// Checks one parameter; `Err(Some(i))` points into the value, `Err(None)` at the name.
fn check_param(check: ParamCheck, name: &[u8], value: Option<Value<'_>>) -> Result<(), Option<usize>> {
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    let Some(Value { v: vb, at, token }) = value else {
        // Parameters that need a value.
        let needs = match check {
            ParamCheck::Via => is("ttl") || is("maddr") || is("received") || is("branch"),
            ParamCheck::FromTo => is("tag"),
            ParamCheck::Contact => is("q") || is("expires"),
            ParamCheck::Generic => false,
        };
        return if needs { Err(None) } else { Ok(()) };
    };
    let bad = Err(Some(at));
    let ok = match check {
        // via-ttl = "ttl" EQUAL ttl; ttl = 1*3DIGIT ; 0 to 255
        ParamCheck::Via if is("ttl") => vb.len() <= 3 && parse_u32(vb).is_some_and(|t| t <= 255),
        // via-maddr = "maddr" EQUAL host
        ParamCheck::Via if is("maddr") => check_host(vb).is_ok(),
        // via-received = "received" EQUAL (IPv4address / IPv6address);
        // RFC 5118 s.4.5: a bracketed IPv6 reference must be parsed as well.
        ParamCheck::Via if is("received") => {
            check_ipv4(vb).is_ok() || check_ipv6(vb).is_ok() || (vb.first() == Some(&b'[') && check_host(vb).is_ok())
        }
        // via-branch = "branch" EQUAL token
        ParamCheck::Via if is("branch") => token,
        // RFC 3581: response-port = "rport" [EQUAL 1*DIGIT]
        ParamCheck::Via if is("rport") => parse_u64(vb).is_some_and(|p| p <= u64::from(u16::MAX)),
        // tag-param = "tag" EQUAL token
        ParamCheck::FromTo if is("tag") => token,
        // c-p-q = "q" EQUAL qvalue; qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
        ParamCheck::Contact if is("q") => is_qvalue(vb),
        // c-p-expires = "expires" EQUAL delta-seconds (RFC 4475 s.3.1.2.4: at most 2**32-1)
        ParamCheck::Contact if is("expires") => parse_u32(vb).is_some(),
        // gen-value = token / host / quoted-string (quoted strings were checked by the cursor)
        _ => token || vb.first() == Some(&b'"') || (vb.first() == Some(&b'[') && check_host(vb).is_ok()),
    };
    if ok {
        Ok(())
    } else {
        bad
    }
}

fn is_qvalue(v: &[u8]) -> bool {
    match v {
        [b'0'] | [b'1'] => true,
        [b'0', b'.', rest @ ..] => rest.len() <= 3 && rest.iter().all(u8::is_ascii_digit),
        [b'1', b'.', rest @ ..] => rest.len() <= 3 && rest.iter().all(|&b| b == b'0'),
        _ => false,
    }
}

/// The `;` parameters of a header value or URI, as written.
///
/// Names compare case-insensitively; values keep their quotes.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Params<'a> {
    raw: &'a str,
}

impl fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> Params<'a> {
    pub(crate) const fn new(raw: &'a str) -> Self {
        Self { raw }
    }

    /// The parameters' text, from the first `;` (empty when there are none).
    #[must_use]
    pub const fn as_str(&self) -> &'a str {
        self.raw
    }

    /// Whether there are no parameters.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Each parameter as `(name, value)`, `None` for a parameter without `=`.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        split_outside_quotes(self.raw, b';').filter_map(|p| {
            let p = p.trim_matches(|c: char| c.is_ascii() && is_lws(c as u8));
            if p.is_empty() {
                return None;
            }
            let trim = |s: &'a str| s.trim_matches(|c: char| c.is_ascii() && is_lws(c as u8));
            Some(match p.split_once('=') {
                Some((n, v)) if !n.contains('"') => (trim(n), Some(trim(v))),
                _ => (p, None),
            })
        })
    }

    /// The parameter named `name` (case-insensitive): `Some(None)` when it has no value.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }
}

/// Splits `s` at every `sep` that is outside a quoted string and outside `<...>`.
pub(crate) fn split_outside_quotes(s: &str, sep: u8) -> impl Iterator<Item = &str> + '_ {
    let b = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut quoted = false;
        let mut angle = false;
        while i < b.len() {
            match b[i] {
                b'\\' if quoted => i += 1,
                b'"' if !angle => quoted = !quoted,
                b'<' if !quoted => angle = true,
                b'>' if !quoted => angle = false,
                c if c == sep && !quoted && !angle => {
                    let piece = s.get(start..i).unwrap_or_default();
                    i += 1;
                    start = i;
                    return Some(piece);
                }
                _ => {}
            }
            i += 1;
        }
        done = true;
        Some(s.get(start..).unwrap_or_default())
    })
}

/// A Via value (RFC 3261 s.20.42): `sent-protocol LWS sent-by *( SEMI via-params )`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Via<'a> {
    protocol_name: &'a str,
    protocol_version: &'a str,
    transport: &'a str,
    host: &'a str,
    port: Option<u16>,
    params: Params<'a>,
}

impl<'a> Via<'a> {
    /// The protocol name (`SIP`).
    #[must_use]
    pub const fn protocol_name(&self) -> &'a str {
        self.protocol_name
    }
    /// The protocol version (`2.0`).
    #[must_use]
    pub const fn protocol_version(&self) -> &'a str {
        self.protocol_version
    }
    /// The transport (`UDP`, `TCP`, `TLS`, `SCTP`, `WS` ...), as written.
    #[must_use]
    pub const fn transport(&self) -> &'a str {
        self.transport
    }
    /// The sent-by host (`[...]` kept around IPv6).
    #[must_use]
    pub const fn host(&self) -> &'a str {
        self.host
    }
    /// The sent-by port.
    #[must_use]
    pub const fn port(&self) -> Option<u16> {
        self.port
    }
    /// Every parameter.
    #[must_use]
    pub const fn params(&self) -> Params<'a> {
        self.params
    }
    /// The `branch` parameter.
    #[must_use]
    pub fn branch(&self) -> Option<&'a str> {
        self.params.get("branch").flatten()
    }
    /// The `received` parameter.
    #[must_use]
    pub fn received(&self) -> Option<&'a str> {
        self.params.get("received").flatten()
    }
    /// The `rport` parameter (RFC 3581): `Some(None)` when present without a value.
    #[must_use]
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params.get("rport").map(|v| v.and_then(|p| p.parse().ok()))
    }
    /// The `maddr` parameter.
    #[must_use]
    pub fn maddr(&self) -> Option<&'a str> {
        self.params.get("maddr").flatten()
    }
    /// The `ttl` parameter.
    #[must_use]
    pub fn ttl(&self) -> Option<u8> {
        self.params.get("ttl").flatten().and_then(|t| t.parse().ok())
    }
}

/// Checks a Via value without keeping the [`Via`] (its unused slices compile away).
fn check_via(c: &mut Cursor<'_>) -> Result<(), usize> {
    via(c).map(|_| ())
}

#[inline(always)]
fn via<'a>(c: &mut Cursor<'a>) -> Result<Via<'a>, usize> {
    // sent-protocol = protocol-name SLASH protocol-version SLASH transport
    let at = c.pos();
    let (protocol_name, protocol_version) = if c.b().get(at..at + 8) == Some(b"SIP/2.0/") {
        // The usual spelling, read as the rules below read it (SLASH = SWS "/" SWS).
        c.i = at + 8;
        c.sws();
        (c.slice(at, at + 3), c.slice(at + 4, at + 7))
    } else {
        let protocol_name = c.token()?;
        if !c.sep(b'/') {
            return Err(c.pos());
        }
        let protocol_version = c.token()?;
        if !c.sep(b'/') {
            return Err(c.pos());
        }
        (protocol_name, protocol_version)
    };
    let transport = c.token()?;
    // ... LWS sent-by; sent-by = host [ COLON port ]
    if !c.sws() {
        return Err(c.pos());
    }
    let host_start = c.pos();
    let host_end = uri::host(c.b(), host_start)?;
    let host = c.slice(host_start, host_end);
    c.i = host_end;
    let mut port = None;
    if c.sep(b':') {
        let at = c.pos();
        let digits = c.run_bytes(DIGIT);
        port = Some(uri::parse_port(digits).ok_or(at)?);
    }
    let params = c.params(ParamCheck::Via)?;
    Ok(Via { protocol_name, protocol_version, transport, host, port, params })
}

/// A `name-addr` or `addr-spec` with its header parameters (From, To, Contact,
/// Route, Record-Route, P-Asserted-Identity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    display_name: Option<&'a str>,
    uri: Uri<'a>,
    bracketed: bool,
    params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// The display name as written: a quoted string with its quotes, or tokens.
    #[must_use]
    pub const fn display_name(&self) -> Option<&'a str> {
        self.display_name
    }
    /// The URI.
    #[must_use]
    pub const fn uri(&self) -> Uri<'a> {
        self.uri
    }
    /// Whether the URI was enclosed in `<>` (`name-addr`) rather than bare (`addr-spec`).
    #[must_use]
    pub const fn is_name_addr(&self) -> bool {
        self.bracketed
    }
    /// The header parameters (after the `>` or the bare URI).
    #[must_use]
    pub const fn params(&self) -> Params<'a> {
        self.params
    }
    /// The `tag` parameter (From, To).
    #[must_use]
    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag").flatten()
    }
}

#[derive(Clone, Copy)]
struct AddrRules {
    addr_spec: bool,
    params: Option<ParamCheck>,
}

/// Where the parts of a `name-addr` or `addr-spec` lie in the header value.
#[derive(Clone, Copy)]
struct AddrParts<'a> {
    display_name: Option<(usize, usize)>,
    uri: (usize, usize),
    bracketed: bool,
    params: Params<'a>,
}

/// Checks a `name-addr` / `addr-spec` and its parameters without building the
/// [`NameAddr`] (validation throws it away).
fn check_name_addr(c: &mut Cursor<'_>, rules: AddrRules) -> Result<(), usize> {
    addr_parts(c, rules).map(|_| ())
}

fn name_addr<'a>(c: &mut Cursor<'a>, rules: AddrRules) -> Result<NameAddr<'a>, usize> {
    let parts = addr_parts(c, rules)?;
    let text = |(from, to): (usize, usize)| c.slice(from, to);
    // The URI was checked by `addr_parts`, with the same grammar.
    let uri = uri::parse(text(parts.uri), UriContext::Header).map_err(|i| parts.uri.0 + i)?;
    Ok(NameAddr { display_name: parts.display_name.map(text), uri, bracketed: parts.bracketed, params: parts.params })
}

/// Reads a `name-addr` or (when `rules` allow it) an `addr-spec`, then its
/// parameters, checking the URI (RFC 3261 s.20.10, s.25.1).
#[inline(always)]
fn addr_parts<'a>(c: &mut Cursor<'a>, rules: AddrRules) -> Result<AddrParts<'a>, usize> {
    c.sws();
    let start = c.pos();
    let mut display_name = None;
    let b = c.b();
    match c.peek() {
        Some(b'"') => {
            // display-name = quoted-string; RDQUOT = DQUOTE SWS
            c.quoted()?;
            display_name = Some((start, c.pos()));
            c.sws();
        }
        Some(b'<') => {}
        _ => {
            let tok_end = run_end(b, start, TOKEN);
            if tok_end > start && b.get(tok_end) == Some(&b':') {
                if !rules.addr_spec {
                    return Err(start);
                }
                return addr_spec(c, rules);
            }
            // display-name = *(token LWS); RFC 4475 s.3.1.2.15: non-token characters
            // in an unquoted display name make the message invalid.
            loop {
                c.token()?;
                let end = c.pos();
                let lws = c.sws();
                if c.peek() == Some(b'<') {
                    display_name = Some((start, end));
                    break;
                }
                if !lws {
                    return Err(c.pos());
                }
            }
        }
    }
    // name-addr = [ display-name ] LAQUOT addr-spec RAQUOT
    if !c.eat(b'<') {
        return Err(c.pos());
    }
    let open = c.pos();
    // No URI character is ">", so the first one closes it. RFC 4475 s.3.1.2.14:
    // LWS inside "<>" is not part of any URI and is rejected by the URI parser.
    // The usual URI is read up to the ">" in one pass; the others (and every error)
    // as the URI between the "<" and the first ">".
    let close = match uri::check_until(b, open, b'>', UriContext::Header) {
        Some(close) => close,
        None => {
            let inner = b.get(open..).unwrap_or_default();
            let close = find_byte(inner, b'>').map(|i| open + i).ok_or(b.len())?;
            uri::check(&b[open..close], UriContext::Header).map_err(|i| open + i)?;
            close
        }
    };
    c.i = close + 1;
    let params = match rules.params {
        Some(check) => c.params(check)?,
        None => Params::default(),
    };
    Ok(AddrParts { display_name, uri: (open, close), bracketed: true, params })
}

#[inline(always)]
fn addr_spec<'a>(c: &mut Cursor<'a>, rules: AddrRules) -> Result<AddrParts<'a>, usize> {
    let start = c.pos();
    let b = c.b();
    let rest = b.get(start..).unwrap_or_default();
    // RFC 3261 s.20: "If the URI is not enclosed in angle brackets, any
    // semicolon-delimited parameters are header-parameters, not URI parameters."
    let end = start + rest.iter().take_while(|&&x| !is_lws(x) && x != b';' && x != b',').count();
    // RFC 3261 s.20: the URI "MUST be enclosed in angle brackets (< and >)" when it
    // contains a comma, question mark, or semicolon (RFC 4475 s.3.1.2.13).
    if let Some(q) = find_byte(&b[start..end], b'?') {
        return Err(start + q);
    }
    uri::check(&b[start..end], UriContext::Header).map_err(|i| start + i)?;
    c.i = end;
    let params = match rules.params {
        Some(check) => c.params(check)?,
        None => Params::default(),
    };
    Ok(AddrParts { display_name: None, uri: (start, end), bracketed: false, params })
}

/// A CSeq value (RFC 3261 s.20.16): `1*DIGIT LWS Method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CSeq<'a> {
    /// The sequence number (RFC 3261 s.8.1.1.5: a 32-bit unsigned integer).
    pub seq: u32,
    /// The method, as written.
    pub method: &'a str,
}

/// Parses a CSeq value; the error is an index into `v`.
pub(crate) fn cseq(v: &str) -> Result<(CSeq<'_>, usize), usize> {
    cseq_in(Cursor::new(v))
}

/// Checks a CSeq value: the sequence number and where the method starts (it
/// takes the rest of the value); the error is an index into `v`.
pub(crate) fn check_cseq(v: &[u8]) -> Result<(u32, usize), usize> {
    cseq_in(Cursor::check(v)).map(|(c, at)| (c.seq, at))
}

#[inline(always)]
fn cseq_in(mut c: Cursor<'_>) -> Result<(CSeq<'_>, usize), usize> {
    let digits = c.run_bytes(DIGIT);
    // RFC 3261 s.8.1.1.5: "The sequence number MUST be expressible as a 32-bit unsigned integer"
    let seq = parse_u32(digits).ok_or(0usize)?;
    if !c.sws() {
        return Err(c.pos());
    }
    let at = c.pos();
    let method = c.token()?;
    c.end()?;
    Ok((CSeq { seq, method }, at))
}

/// A media type (Content-Type, RFC 3261 s.20.15): `m-type SLASH m-subtype *(SEMI m-parameter)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaType<'a> {
    main: &'a str,
    sub: &'a str,
    params: Params<'a>,
}

impl<'a> MediaType<'a> {
    /// Parses a media type.
    ///
    /// # Errors
    /// The index of the first offending byte.
    pub fn parse(v: &'a str) -> Result<Self, usize> {
        Self::parse_in(Cursor::new(v))
    }

    /// [`MediaType::parse`] with `c`, inlined where only the check is wanted (its
    /// unused slices compile away).
    #[inline(always)]
    fn parse_in(mut c: Cursor<'a>) -> Result<Self, usize> {
        let main = c.token()?;
        if !c.sep(b'/') {
            return Err(c.pos());
        }
        let sub = c.token()?;
        let start = c.pos();
        let mut end = start;
        while c.sep(b';') {
            // m-parameter = m-attribute EQUAL m-value; m-value = token / quoted-string
            c.token()?;
            if !c.sep(b'=') {
                return Err(c.pos());
            }
            if c.peek() == Some(b'"') {
                c.quoted()?;
            } else {
                c.token()?;
            }
            end = c.pos();
        }
        c.i = end;
        c.end()?;
        Ok(Self { main, sub, params: Params::new(c.slice(start, end)) })
    }
    /// The type (`application`).
    #[must_use]
    pub const fn main_type(&self) -> &'a str {
        self.main
    }
    /// The subtype (`sdp`).
    #[must_use]
    pub const fn subtype(&self) -> &'a str {
        self.sub
    }
    /// The parameters.
    #[must_use]
    pub const fn params(&self) -> Params<'a> {
        self.params
    }
    /// Whether the type is `main/sub` (case-insensitive).
    #[must_use]
    pub fn is(&self, main: &str, sub: &str) -> bool {
        self.main.eq_ignore_ascii_case(main) && self.sub.eq_ignore_ascii_case(sub)
    }
}

/// A Content-Disposition value (RFC 3261 s.20.11): `disp-type *( SEMI disp-param )`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentDisposition<'a> {
    /// The disposition type (`session`, `render`, `recipient-list` ...).
    pub disposition: &'a str,
    /// The parameters (`handling`, `filename` ...).
    pub params: Params<'a>,
}

fn content_disposition<'a>(c: &mut Cursor<'a>) -> Result<ContentDisposition<'a>, usize> {
    let disposition = c.token()?;
    let params = c.params(ParamCheck::Generic)?;
    Ok(ContentDisposition { disposition, params })
}

/// An Accept-Contact or Reject-Contact value (RFC 3841 s.10): `"*" *(SEMI ac-params)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContactPredicate<'a> {
    /// The feature parameters (`+g.oma.sip-im`, `require`, `explicit` ...).
    pub params: Params<'a>,
}

fn contact_predicate<'a>(c: &mut Cursor<'a>) -> Result<ContactPredicate<'a>, usize> {
    c.sws();
    if !c.eat(b'*') {
        return Err(c.pos());
    }
    Ok(ContactPredicate { params: c.params(ParamCheck::Generic)? })
}

fn token_item<'a>(c: &mut Cursor<'a>) -> Result<&'a str, usize> {
    c.sws();
    c.token()
}

const FROM_TO: AddrRules = AddrRules { addr_spec: true, params: Some(ParamCheck::FromTo) };
const CONTACT: AddrRules = AddrRules { addr_spec: true, params: Some(ParamCheck::Contact) };
// route-param = name-addr *( SEMI rr-param )
const ROUTE: AddrRules = AddrRules { addr_spec: false, params: Some(ParamCheck::Generic) };
// RFC 3325 s.9.1: PAssertedID-value = name-addr / addr-spec
const ASSERTED_IDENTITY: AddrRules = AddrRules { addr_spec: true, params: None };

fn from_to<'a>(c: &mut Cursor<'a>) -> Result<NameAddr<'a>, usize> {
    name_addr(c, FROM_TO)
}

fn contact<'a>(c: &mut Cursor<'a>) -> Result<NameAddr<'a>, usize> {
    name_addr(c, CONTACT)
}

fn route<'a>(c: &mut Cursor<'a>) -> Result<NameAddr<'a>, usize> {
    name_addr(c, ROUTE)
}

fn asserted_identity<'a>(c: &mut Cursor<'a>) -> Result<NameAddr<'a>, usize> {
    name_addr(c, ASSERTED_IDENTITY)
}

fn check_from_to(c: &mut Cursor<'_>) -> Result<(), usize> {
    check_name_addr(c, FROM_TO)
}

fn check_contact(c: &mut Cursor<'_>) -> Result<(), usize> {
    check_name_addr(c, CONTACT)
}

fn check_route(c: &mut Cursor<'_>) -> Result<(), usize> {
    check_name_addr(c, ROUTE)
}

fn check_asserted_identity(c: &mut Cursor<'_>) -> Result<(), usize> {
    check_name_addr(c, ASSERTED_IDENTITY)
}

/// Parses one whole single value; the error is an index into `v`.
pub(crate) fn single<'a, T>(v: &'a str, item: fn(&mut Cursor<'a>) -> Result<T, usize>) -> Result<T, usize> {
    single_in(Cursor::new(v), item)
}

#[inline(always)]
fn single_in<'a, T>(mut c: Cursor<'a>, item: fn(&mut Cursor<'a>) -> Result<T, usize>) -> Result<T, usize> {
    let value = item(&mut c)?;
    c.end()?;
    Ok(value)
}

/// The values of a comma-separated list header, parsed one by one.
pub struct Values<'a, T> {
    cursor: Cursor<'a>,
    item: fn(&mut Cursor<'a>) -> Result<T, usize>,
    done: bool,
}

impl<T> fmt::Debug for Values<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Values").field("rest", &self.cursor.s.get(self.cursor.i..)).finish()
    }
}

impl<'a, T> Values<'a, T> {
    pub(crate) fn new(v: &'a str, item: fn(&mut Cursor<'a>) -> Result<T, usize>) -> Self {
        Self { cursor: Cursor::new(v), item, done: v.is_empty() }
    }
}

impl<T> Iterator for Values<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.done {
            return None;
        }
        match (self.item)(&mut self.cursor) {
            Ok(value) => {
                // COMMA = SWS "," SWS
                if !self.cursor.sep(b',') {
                    self.done = true;
                }
                Some(value)
            }
            Err(_) => {
                self.done = true;
                None
            }
        }
    }
}

/// Checks `item *(COMMA item)` (or an empty value when `empty_ok`); the error is an index into `v`.
fn list<'a, T>(v: &'a [u8], empty_ok: bool, item: fn(&mut Cursor<'a>) -> Result<T, usize>) -> Result<(), usize> {
    if v.is_empty() {
        return if empty_ok { Ok(()) } else { Err(0) };
    }
    let mut c = Cursor::check(v);
    loop {
        item(&mut c)?;
        if !c.sep(b',') {
            return c.end();
        }
    }
}

pub(crate) type Item<'a, T> = fn(&mut Cursor<'a>) -> Result<T, usize>;

pub(crate) fn via_item<'a>() -> Item<'a, Via<'a>> {
    via
}
pub(crate) fn from_to_item<'a>() -> Item<'a, NameAddr<'a>> {
    from_to
}
pub(crate) fn contact_item<'a>() -> Item<'a, NameAddr<'a>> {
    contact
}
pub(crate) fn route_item<'a>() -> Item<'a, NameAddr<'a>> {
    route
}
pub(crate) fn asserted_identity_item<'a>() -> Item<'a, NameAddr<'a>> {
    asserted_identity
}
pub(crate) fn token_list_item<'a>() -> Item<'a, &'a str> {
    token_item
}
pub(crate) fn contact_predicate_item<'a>() -> Item<'a, ContactPredicate<'a>> {
    contact_predicate
}
pub(crate) fn content_disposition_item<'a>() -> Item<'a, ContentDisposition<'a>> {
    content_disposition
}

/// Checks `callid = word [ "@" word ]`.
fn call_id(v: &[u8]) -> Result<(), usize> {
    let word = |from: usize| long_run_end(v, from, WORD);
    let end = word(0);
    if end == 0 {
        return Err(0);
    }
    if end == v.len() {
        return Ok(());
    }
    if v[end] != b'@' {
        return Err(end);
    }
    let end2 = word(end + 1);
    if end2 == end + 1 || end2 != v.len() {
        return Err(end2);
    }
    Ok(())
}

/// Checks `rfc1123-date = wkday "," SP date1 SP time SP "GMT"` (RFC 3261 s.20.17).
fn date(v: &[u8]) -> Result<(), usize> {
    const TEMPLATE: &[u8] = b"www, dd mmm yyyy hh:mm:ss GMT";
    const DAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    for (i, &t) in TEMPLATE.iter().enumerate() {
        let Some(&b) = v.get(i) else { return Err(i) };
        let ok = match t {
            b'd' | b'y' | b'h' | b'm' | b's' if i != 8 && i != 9 && i != 10 => b.is_ascii_digit(),
            b'w' | b'm' => b.is_ascii_alphabetic(),
            // RFC 3261 s.20.17: "SIP restricts the time zone in SIP-date to "GMT"" (RFC 4475
            // s.3.1.2.12), and "An RFC 1123 date is case-sensitive."
            _ => b == t,
        };
        if !ok {
            return Err(i);
        }
    }
    if v.len() != TEMPLATE.len() {
        return Err(TEMPLATE.len());
    }
    if !DAYS.contains(&&v[..3]) {
        return Err(0);
    }
    if !MONTHS.contains(&&v[8..11]) {
        return Err(8);
    }
    Ok(())
}

/// [`validate`] for a value read up to its line's end: `b` runs from the value's first
/// byte (after the white space of HCOLON) to the end of the header section. Returns
/// the value's length (to its last byte that is not white space) when the value is
/// valid and no CR or LF comes before that end; the caller checks that only SP and
/// HTAB, then the line's CRLF, follow, and that the next line does not fold it.
///
/// Then [`validate`] accepts the value as the message parser trims it (the same
/// bytes): each rule stops where it would at the end of the value (no rule takes
/// the SP, HTAB or CR that follow; see [`Cursor::line`]). `None` leaves the value to
/// [`validate`], for the other headers, an empty value or `Contact: *`, and any error.
pub(crate) fn validate_line(name: HeaderName, b: &[u8]) -> Option<usize> {
    /// `item *(COMMA item)`, up to the end of the last item.
    #[inline(always)]
    fn list_line<'a, T>(c: &mut Cursor<'a>, item: Item<'a, T>) -> Option<()> {
        loop {
            item(c).ok()?;
            // COMMA = SWS "," SWS
            if !c.sep(b',') {
                return Some(());
            }
        }
    }
    let mut c = Cursor::line(b);
    if matches!(b.first(), None | Some(b'\r' | b'\n' | b' ' | b'\t')) {
        return None;
    }
    match name {
        HeaderName::Via => list_line(&mut c, check_via)?,
        HeaderName::From | HeaderName::To => check_from_to(&mut c).ok()?,
        HeaderName::Contact if b.first() == Some(&b'*') => return None,
        HeaderName::Contact => list_line(&mut c, check_contact)?,
        HeaderName::AcceptContact | HeaderName::RejectContact => list_line(&mut c, contact_predicate)?,
        HeaderName::Route | HeaderName::RecordRoute => list_line(&mut c, check_route)?,
        HeaderName::PAssertedIdentity => list_line(&mut c, check_asserted_identity)?,
        _ => return None,
    }
    Some(c.pos())
}

/// Validates the value of a typed header (CSeq, Content-Length and
/// Max-Forwards are read by the message parser itself); the error is an index into `v`.
/// The bytes' UTF-8 is the caller's to check.
pub(crate) fn validate(name: HeaderName, v: &[u8]) -> Result<(), usize> {
    match name {
        // Via = ( "Via" / "v" ) HCOLON via-parm *(COMMA via-parm)
        HeaderName::Via => list(v, false, check_via),
        // From = ( "From" / "f" ) HCOLON from-spec; To likewise
        HeaderName::From | HeaderName::To => single_in(Cursor::check(v), check_from_to),
        // Contact = ("Contact" / "m" ) HCOLON ( STAR / (contact-param *(COMMA contact-param)))
        HeaderName::Contact if v == b"*" => Ok(()),
        HeaderName::Contact => list(v, false, check_contact),
        // Route = "Route" HCOLON route-param *(COMMA route-param)
        HeaderName::Route | HeaderName::RecordRoute => list(v, false, check_route),
        HeaderName::PAssertedIdentity => list(v, false, check_asserted_identity),
        // RFC 3841 s.10: Accept-Contact = ("Accept-Contact" / "a") HCOLON ac-value *(COMMA ac-value)
        HeaderName::AcceptContact | HeaderName::RejectContact => list(v, false, contact_predicate),
        HeaderName::CallId => call_id(v),
        HeaderName::ContentType => MediaType::parse_in(Cursor::check(v)).map(|_| ()),
        HeaderName::ContentDisposition => single_in(Cursor::check(v), content_disposition).map(|_| ()),
        // Require = "Require" HCOLON option-tag *(COMMA option-tag)
        HeaderName::Require => list(v, false, token_item),
        // Supported = ( "Supported" / "k" ) HCOLON [option-tag *(COMMA option-tag)];
        // Allow = "Allow" HCOLON [Method *(COMMA Method)]
        HeaderName::Supported | HeaderName::Allow => list(v, true, token_item),
        // Expires = "Expires" HCOLON delta-seconds (RFC 4475 s.3.1.2.4: at most 2**32-1)
        HeaderName::Expires => parse_u32(v).map(|_| ()).ok_or(0),
        HeaderName::Date => date(v),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_values() {
        for (name, v) in [
            (HeaderName::Via, "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds"),
            (HeaderName::Via, "SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239"),
            (HeaderName::Via, "SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3"),
            (HeaderName::Via, "SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3"),
            (HeaderName::Via, "SIP/2.0/TCP h:5060;rport;ttl=255;maddr=224.2.0.1"),
            (HeaderName::Via, "SIP/2.0/UDP h : 5060 ; rport = 5061"),
            (HeaderName::From, "\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8"),
            (HeaderName::From, "token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;tag=_token~1'+`*%!-."),
            (HeaderName::From, "caller<sip:caller@example.com>;tag=323"),
            (HeaderName::From, "\"caller\"<sip:caller@example.com>;tag=323"),
            (HeaderName::To, "\"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f\" <sip:u@example.com>"),
            (HeaderName::To, "isbn:2983792873"),
            (HeaderName::To, "sip:user@example.com;tag=x"),
            (HeaderName::Contact, "*"),
            (HeaderName::Contact, "<sip:a@b.com>;q=0.7;expires=3600, \"x,y\" <sip:c@d.com>;q=1.000"),
            (HeaderName::Contact, "<sip:chat@conf.example.net;transport=tcp>;isfocus;+g.3gpp.icsi-ref=\"urn%3Aurn-7\""),
            (HeaderName::Contact, "sip:+19725552222@gw1.example.net;unknownparam"),
            (HeaderName::Contact, "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>"),
            (HeaderName::Route, "<sip:p1.example.com;lr>,<sip:p2.example.com;lr>"),
            (HeaderName::PAssertedIdentity, "\"Alice\" <sip:alice@example.com>, <tel:+15551234567>"),
            (HeaderName::AcceptContact, "*;+g.oma.sip-im.large-message"),
            (HeaderName::AcceptContact, "*;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp\";require;explicit"),
            (HeaderName::CallId, "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"),
            (HeaderName::ContentType, "multipart/mixed;boundary=\"boundary1\""),
            (HeaderName::ContentType, "application/sdp ; charset = utf-8"),
            (HeaderName::ContentDisposition, "attachment; filename=\"smime.p7m\";handling=required"),
            (HeaderName::Require, "recipient-list-invite, 100rel"),
            (HeaderName::Supported, ""),
            (HeaderName::Allow, "INVITE, ACK, CANCEL"),
            (HeaderName::Expires, "4294967295"),
            (HeaderName::Date, "Sat, 13 Nov 2010 23:29:00 GMT"),
        ] {
            assert_eq!(validate(name, v.as_bytes()), Ok(()), "{name}: {v:?}");
        }
    }

    #[test]
    fn invalid_values() {
        for (name, v, at) in [
            // RFC 4475 s.3.1.2.1 (badinv01): empty Via and Contact parameters.
            (HeaderName::Via, "SIP/2.0/UDP 192.0.2.15;;,;,,", 23),
            (HeaderName::Contact, "\"Joe\" <sip:joe@example.org>;;;;", 28),
            (HeaderName::Via, "SIP/2.0/UDP", 11),
            (HeaderName::Via, "SIP/2.0/UDP h;branch", 14),
            (HeaderName::Via, "SIP/2.0/UDP h;ttl=256", 18),
            (HeaderName::Via, "SIP/2.0/UDP h;received=host.example.com", 23),
            // RFC 4475 s.3.1.2.6 (quotbal): unterminated quoted string.
            (HeaderName::To, "\"Mr. J. User <sip:j.user@example.com>", 0),
            // RFC 4475 s.3.1.2.13 (regbadct): "?" in an addr-spec.
            (HeaderName::Contact, "sip:user@example.com?Route=%3Csip:sip.example.com%3E", 20),
            // RFC 4475 s.3.1.2.14 (badaspec): LWS inside "<>".
            (HeaderName::To, "\"Watson, Thomas\" < sip:t.watson@example.org >", 18),
            (HeaderName::To, "<sip:t.watson@example.org >", 25),
            // RFC 4475 s.3.1.2.15 (baddn): non-token characters in an unquoted display name.
            (HeaderName::From, "Bell, Alexander <sip:a.g.bell@example.com>;tag=43", 4),
            // RFC 4475 s.3.1.2.4 (scalar02): contact expires > 2**32-1, Expires too large.
            (HeaderName::Contact, "<sip:user@host129.example.com>\r\n  ;expires=280297596632815", 43),
            (HeaderName::Expires, "10000000000", 0),
            (HeaderName::Contact, "<sip:a@b.com>;q=1.5", 16),
            // RFC 4475 s.3.3.8 (multi01) and s.20: two values in To.
            (HeaderName::To, "sip:a@example.com, sip:b@example.com", 17),
            (HeaderName::To, "sip:a@example.com;tag", 18),
            (HeaderName::Route, "sip:p1.example.com", 0),
            (HeaderName::Route, "", 0),
            (HeaderName::PAssertedIdentity, "<sip:a@example.com>;x=1", 19),
            (HeaderName::AcceptContact, "+g.oma.sip-im", 0),
            (HeaderName::CallId, "a@b@c", 3),
            (HeaderName::CallId, "a b", 1),
            (HeaderName::ContentType, "application", 11),
            (HeaderName::ContentType, "text/plain;charset", 18),
            (HeaderName::Require, "", 0),
            (HeaderName::Allow, "INVITE,,ACK", 7),
            // RFC 4475 s.3.1.2.12 (baddate): a time zone other than GMT.
            (HeaderName::Date, "Fri, 01 Jan 2010 16:00:00 EST", 26),
            (HeaderName::Date, "Fri, 01 Jan 2010 16:00:00 GMT ", 29),
            (HeaderName::Date, "Fry, 01 Jan 2010 16:00:00 GMT", 0),
        ] {
            assert_eq!(validate(name, v.as_bytes()), Err(at), "{name}: {v:?}");
        }
    }

    #[test]
    fn values_read_to_the_line_end_match_validate() {
        let values = [
            (HeaderName::Via, "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds"),
            (HeaderName::Via, "SIP/2.0/ TCP h;branch=z9hG4bK1"),
            (HeaderName::Via, "SIP/2.0 /TCP h;branch=z9hG4bK1"),
            (HeaderName::Via, "SIP/2.0/TCP h:5060;rport, SIP/2.0/UDP g;branch=z9hG4bK2"),
            (HeaderName::Via, "SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3"),
            (HeaderName::Via, "SIP/2.0/UDP h;branch"),
            (HeaderName::Via, "SIP/2.0/UDP 192.0.2.15;;,;,,"),
            (HeaderName::From, "\"Alice\" <sip:alice@atlanta.example.com>;tag=1928301774"),
            (HeaderName::From, "\"A \\\"B\\\"\" <sip:a@example.com>;tag=x"),
            (HeaderName::From, "\"Alice <sip:alice@atlanta.example.com>;tag=1"),
            (HeaderName::From, "Bell, Alexander <sip:a.g.bell@example.com>;tag=43"),
            (HeaderName::To, "<sip:bob@biloxi.example.com>"),
            (HeaderName::To, "sip:user@example.com;tag=x"),
            (HeaderName::To, "<sip:t.watson@example.org >"),
            (HeaderName::To, "sip:a@example.com, sip:b@example.com"),
            (HeaderName::Contact, "<sip:alice@192.0.2.10:5060;transport=tcp>;+g.oma.sip-im.large-message"),
            (HeaderName::Contact, "<sip:a@b.com>;q=0.7;expires=3600, \"x,y\" <sip:c@d.com>;q=1.000"),
            (HeaderName::Contact, "*"),
            (HeaderName::Contact, "<sip:a@b.com>;q=1.5"),
            (HeaderName::Route, "<sip:p1.example.com;lr>,<sip:p2.example.com;lr>"),
            (HeaderName::RecordRoute, "<sip:p1.example.com;lr>"),
            (HeaderName::PAssertedIdentity, "\"Alice\" <sip:alice@example.com>, <tel:+15551234567>"),
            (HeaderName::AcceptContact, "*;+g.oma.sip-im.large-message"),
            (HeaderName::RejectContact, "*;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp\";require;explicit"),
            (HeaderName::AcceptContact, "+g.oma.sip-im"),
            (HeaderName::CallId, "a84b4c76e66710@alicepc.ims.example.net"),
        ];
        for (name, v) in values {
            for tail in ["\r\nX: y", " \t\r\nX: y", "\r\n y", " ;x\r\nX: y", "\r\n;x", ""] {
                let line = format!("{v}{tail}");
                let b = line.as_bytes();
                let Some(len) = validate_line(name, b) else { continue };
                // The value ends before white space and the line's end; `validate` accepts it.
                let rest = &b[len..];
                let after = rest.iter().position(|&c| c != b' ' && c != b'\t').unwrap_or(rest.len());
                if rest[after..].starts_with(b"\r\n") {
                    assert_eq!(validate(name, &b[..len]), Ok(()), "{name}: {line:?}");
                }
                assert!(!b[..len].contains(&b'\r') && !b[..len].contains(&b'\n'), "{name}: {line:?}");
            }
        }
        // The usual values are read so.
        for (name, v) in values.iter().take(5).chain(&values[7..9]).chain(&values[11..13]) {
            let line = format!("{v}\r\nX: y");
            assert_eq!(validate_line(*name, line.as_bytes()), Some(v.len()), "{name}: {v:?}");
        }
    }

    #[test]
    fn typed_access() {
        let v =
            "SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bK1;rport=5062;received=192.0.2.1;ttl=16;maddr=h.example.com";
        let via = Values::new(v, via).next().unwrap();
        assert_eq!(
            (via.protocol_name(), via.protocol_version(), via.transport(), via.host(), via.port()),
            ("SIP", "2.0", "TCP", "[2001:db8::1]", Some(5061))
        );
        assert_eq!(
            (via.branch(), via.rport(), via.received()),
            (Some("z9hG4bK1"), Some(Some(5062)), Some("192.0.2.1"))
        );
        assert_eq!((via.ttl(), via.maddr()), (Some(16), Some("h.example.com")));

        let from = single("\"A \\\"B\\\"\" <sip:a@example.com;transport=tcp>;tag=x1;foo", from_to).unwrap();
        assert_eq!(from.display_name(), Some("\"A \\\"B\\\"\""));
        assert_eq!(from.uri().as_str(), "sip:a@example.com;transport=tcp");
        assert_eq!(from.tag(), Some("x1"));
        assert_eq!(from.params().get("foo"), Some(None));
        assert!(from.is_name_addr());

        let contacts: Vec<_> = Values::new("<sip:a@b.com>;q=0.5, sip:c@d.com;expires=60", contact).collect();
        assert_eq!(contacts.len(), 2);
        assert_eq!(contacts[1].params().get("expires"), Some(Some("60")));
        assert!(!contacts[1].is_name_addr());

        let (cs, at) = cseq("0009\r\n  INVITE").unwrap();
        assert_eq!((cs.seq, cs.method, at), (9, "INVITE", 8));
        assert_eq!(cseq("36893488147419103232 REGISTER").map(|_| ()), Err(0));
        assert_eq!(cseq("1INVITE").map(|_| ()), Err(1));

        let mt = MediaType::parse("multipart/mixed; boundary=\"a;b\"").unwrap();
        assert!(mt.is("Multipart", "MIXED"));
        assert_eq!(mt.params().get("boundary"), Some(Some("\"a;b\"")));
    }

    #[test]
    fn split_respects_quotes_and_angles() {
        let parts: Vec<_> = split_outside_quotes("\"a,b\" <sip:x@y;a,b>, c, \"\\\",\"", b',').collect();
        assert_eq!(parts, ["\"a,b\" <sip:x@y;a,b>", " c", " \"\\\",\""]);
    }
}
