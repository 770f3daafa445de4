//! HTTP Digest as MSRP AUTH uses it (RFC 4976 s.9.1, over RFC 2617 s.3.2):
//! the `WWW-Authenticate` challenge, the `Authorization` credentials and the
//! `Authentication-Info` of a success, read and written, and the digests.
//!
//! RFC 4976 s.9.1 narrows RFC 2617: no Basic ("Clients MUST NOT attempt to
//! use Basic authentication"), `qop` always present and `auth` only (no
//! `auth-int`), no `MD5-sess`, `domain` ignored, `cnonce` and `nc` in every
//! `Authorization`, and "The request-URI to be used in calculating H(A2) is
//! the rightmost URI in the To-Path header."

use std::fmt::{self, Write as _};

use md5::{Digest as _, Md5};
use thiserror::Error;

/// The only `qop` MSRP uses (RFC 4976 s.9.1: "MSRP relays MUST NOT indicate
/// a qop of auth-int in a challenge").
pub const QOP_AUTH: &str = "auth";

/// Parameters a Digest header may carry before it is refused: a relay's
/// challenge has five or six, so this only stops a hostile list.
const MAX_PARAMS: usize = 32;

/// Why a Digest header cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DigestError {
    /// Not the `Digest` scheme (RFC 4976 s.9.1: Basic is refused).
    #[error("not a Digest header")]
    Scheme,
    /// The parameter list does not follow `token "=" (token / quoted-string)`
    /// separated by commas, at this byte offset of the value.
    #[error("malformed Digest parameter at byte {offset}")]
    Syntax {
        /// Offset in the header value.
        offset: usize,
    },
    /// More than 32 parameters.
    #[error("too many Digest parameters")]
    TooManyParams,
    /// A parameter the header must carry is absent.
    #[error("Digest parameter {0} missing")]
    Missing(&'static str),
    /// No `qop` of `auth` (RFC 4976 s.9.1: "Clients and relays MUST include a
    /// qop parameter", and `auth-int` "makes no sense for MSRP").
    #[error("no qop=auth")]
    Qop,
    /// An algorithm other than `MD5` (RFC 4976 s.9.1: "MSRP relays MUST NOT
    /// send challenges indicating the MD5-sess algorithm").
    #[error("Digest algorithm is not MD5")]
    Algorithm,
    /// A value of the wrong form (`nc` is `8LHEX`, `response` `32LHEX`).
    #[error("malformed Digest value of {0}")]
    Value(&'static str),
}

/// One `name=value` of a Digest header, the value unquoted.
#[derive(Debug)]
struct Param {
    name: String,
    value: String,
}

/// Reads `Digest p1=v1, p2="v2", ...`: the scheme (case-insensitive, RFC
/// 2617 s.1.2 `auth-scheme = token`), then parameters separated by commas
/// with optional whitespace around them (RFC 2617 s.1.2's `#rule`; RFC 4976
/// s.7 writes one SP after each comma, and peers vary). Quoted values keep
/// their `quoted-pair` escapes resolved (RFC 2616 s.2.2).
fn params(value: &str) -> Result<Vec<Param>, DigestError> {
    let bytes = value.as_bytes();
    let scheme_end = bytes.iter().position(|&b| b == b' ').ok_or(DigestError::Scheme)?;
    if !value.get(..scheme_end).is_some_and(|s| s.eq_ignore_ascii_case("Digest")) {
        return Err(DigestError::Scheme);
    }
    param_list(value, scheme_end)
}

/// Reads the parameter list of `value` from byte `start` on.
fn param_list(value: &str, start: usize) -> Result<Vec<Param>, DigestError> {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = start;
    let skip_ws = |i: &mut usize| {
        while matches!(bytes.get(*i), Some(b' ' | b'\t')) {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        let name_start = i;
        while bytes.get(i).is_some_and(|&b| is_token_char(b)) {
            i += 1;
        }
        if i == name_start {
            return Err(DigestError::Syntax { offset: i });
        }
        let name = value.get(name_start..i).unwrap_or_default().to_ascii_lowercase();
        skip_ws(&mut i);
        if bytes.get(i) != Some(&b'=') {
            return Err(DigestError::Syntax { offset: i });
        }
        i += 1;
        skip_ws(&mut i);
        let value = if bytes.get(i) == Some(&b'"') {
            i += 1;
            let mut text = String::new();
            loop {
                match bytes.get(i) {
                    None => return Err(DigestError::Syntax { offset: i }),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    // RFC 2616 s.2.2: quoted-pair = "\" CHAR.
                    Some(b'\\') => {
                        let next = value.get(i + 1..).and_then(|rest| rest.chars().next());
                        let c = next.ok_or(DigestError::Syntax { offset: i })?;
                        text.push(c);
                        i += 1 + c.len_utf8();
                    }
                    Some(_) => {
                        let c = value.get(i..).and_then(|rest| rest.chars().next());
                        let c = c.ok_or(DigestError::Syntax { offset: i })?;
                        text.push(c);
                        i += c.len_utf8();
                    }
                }
            }
            text
        } else {
            let start = i;
            while bytes.get(i).is_some_and(|&b| is_token_char(b)) {
                i += 1;
            }
            if i == start {
                return Err(DigestError::Syntax { offset: i });
            }
            value.get(start..i).unwrap_or_default().to_owned()
        };
        if out.len() == MAX_PARAMS {
            return Err(DigestError::TooManyParams);
        }
        out.push(Param { name, value });
        skip_ws(&mut i);
        match bytes.get(i) {
            None => return Ok(out),
            Some(b',') => i += 1,
            Some(_) => return Err(DigestError::Syntax { offset: i }),
        }
    }
}

/// RFC 2616 s.2.2 `token` characters.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn take(params: &mut Vec<Param>, name: &str) -> Option<String> {
    let at = params.iter().position(|p| p.name == name)?;
    Some(params.swap_remove(at).value)
}

/// Appends `, name="value"` with `"` and `\` escaped (RFC 2616 s.2.2).
fn write_quoted(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, "{name}=\"");
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// `algorithm`, when present, must be `MD5` (RFC 4976 s.9.1).
fn check_algorithm(params: &mut Vec<Param>) -> Result<(), DigestError> {
    match take(params, "algorithm") {
        Some(a) if !a.eq_ignore_ascii_case("MD5") => Err(DigestError::Algorithm),
        _ => Ok(()),
    }
}

/// A relay's `WWW-Authenticate` challenge (RFC 4976 s.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`: whose credentials to use (RFC 4976 s.5.1: the relay's policy,
    /// often its host name).
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, returned unchanged in the answer.
    pub opaque: Option<String>,
    /// `stale=true`: the credentials were right but the nonce too old, so
    /// the answer is retried with the new nonce (RFC 2617 s.3.2.1).
    pub stale: bool,
}

impl Challenge {
    /// A challenge with a fresh `nonce` (a relay's).
    #[must_use]
    pub fn new(realm: &str, nonce: &str) -> Self {
        Self { realm: realm.to_owned(), nonce: nonce.to_owned(), opaque: None, stale: false }
    }

    /// Reads a `WWW-Authenticate` value.
    ///
    /// # Errors
    /// [`DigestError`] when it is not a Digest challenge MSRP can answer:
    /// another scheme, no `realm` or `nonce`, a `qop` list without `auth`,
    /// an algorithm other than MD5. `domain` is ignored (RFC 4976 s.9.1:
    /// "clients MUST ignore it if present").
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let mut params = params(value)?;
        check_algorithm(&mut params)?;
        // RFC 4976 s.7: qop-options = "qop=" DQUOTE qop-list DQUOTE, qop-list = qop-value *("," qop-value).
        let qop = take(&mut params, "qop").ok_or(DigestError::Qop)?;
        if !qop.split(',').any(|q| q.trim() == QOP_AUTH) {
            return Err(DigestError::Qop);
        }
        let stale = take(&mut params, "stale").is_some_and(|s| s.eq_ignore_ascii_case("true"));
        Ok(Self {
            realm: take(&mut params, "realm").ok_or(DigestError::Missing("realm"))?,
            nonce: take(&mut params, "nonce").ok_or(DigestError::Missing("nonce"))?,
            opaque: take(&mut params, "opaque"),
            stale,
        })
    }
}

impl fmt::Display for Challenge {
    /// RFC 4976 s.7: `"Digest" SP digest-param *("," SP digest-param)`, with
    /// `qop="auth"` quoted ("the value of the qop parameter in a
    /// "WWW-Authenticate" header is quoted").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::from("Digest ");
        write_quoted(&mut out, "realm", &self.realm);
        out.push_str(", ");
        write_quoted(&mut out, "nonce", &self.nonce);
        out.push_str(", qop=\"auth\", algorithm=MD5");
        if let Some(opaque) = &self.opaque {
            out.push_str(", ");
            write_quoted(&mut out, "opaque", opaque);
        }
        if self.stale {
            out.push_str(", stale=true");
        }
        f.write_str(&out)
    }
}

/// A client's `Authorization` credentials (RFC 4976 s.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// `username`.
    pub username: String,
    /// `realm`, the challenge's.
    pub realm: String,
    /// `nonce`, the challenge's (or a `nextnonce`).
    pub nonce: String,
    /// `uri`: the rightmost To-Path URI of the AUTH (RFC 4976 s.9.1). RFC
    /// 4976 s.7 leaves it out of `digest-response`, RFC 2617 s.3.2.2 has it;
    /// we write it, and read credentials without it.
    pub uri: Option<String>,
    /// `cnonce` (RFC 4976 s.9.1: "Clients MUST send cnonce and nonce-count").
    pub cnonce: String,
    /// `nc`, the count of requests sent with this nonce.
    pub nc: u32,
    /// `response`: the request digest, 32 lower-case hex digits.
    pub response: String,
    /// `opaque`, the challenge's.
    pub opaque: Option<String>,
}

impl Credentials {
    /// Answers `challenge` for an AUTH whose To-Path ends at `uri`: the
    /// request digest of RFC 2617 s.3.2.2.1 with `qop=auth`, the method
    /// `AUTH`, and `ha1` (see [`ha1`]).
    #[must_use]
    pub fn answer(challenge: &Challenge, username: &str, ha1: &str, uri: &str, cnonce: &str, nc: u32) -> Self {
        let nc_text = format!("{nc:08x}");
        let response = request_digest(ha1, &challenge.nonce, &nc_text, cnonce, "AUTH", uri);
        Self {
            username: username.to_owned(),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: Some(uri.to_owned()),
            cnonce: cnonce.to_owned(),
            nc,
            response,
            opaque: challenge.opaque.clone(),
        }
    }

    /// Reads an `Authorization` value.
    ///
    /// # Errors
    /// [`DigestError`] when a parameter RFC 4976 s.7 and s.9.1 require is
    /// absent or malformed (`qop` other than `auth`, `nc` not `8LHEX`,
    /// `response` not `32LHEX`), or the algorithm is not MD5.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let mut params = params(value)?;
        check_algorithm(&mut params)?;
        if take(&mut params, "qop").as_deref() != Some(QOP_AUTH) {
            return Err(DigestError::Qop);
        }
        let nc = take(&mut params, "nc").ok_or(DigestError::Missing("nc"))?;
        // RFC 4976 s.7: nc-value = 8LHEX (peers write upper case too; RFC 2617 s.3.2.2 says LHEX).
        if nc.len() != 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DigestError::Value("nc"));
        }
        let nc = u32::from_str_radix(&nc, 16).map_err(|_| DigestError::Value("nc"))?;
        let response = take(&mut params, "response").ok_or(DigestError::Missing("response"))?;
        // RFC 4976 s.7: request-digest = DQUOTE 32LHEX DQUOTE.
        if response.len() != 32 || !response.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DigestError::Value("response"));
        }
        Ok(Self {
            username: take(&mut params, "username").ok_or(DigestError::Missing("username"))?,
            realm: take(&mut params, "realm").ok_or(DigestError::Missing("realm"))?,
            nonce: take(&mut params, "nonce").ok_or(DigestError::Missing("nonce"))?,
            uri: take(&mut params, "uri"),
            cnonce: take(&mut params, "cnonce").ok_or(DigestError::Missing("cnonce"))?,
            nc,
            response: response.to_ascii_lowercase(),
            opaque: take(&mut params, "opaque"),
        })
    }

    /// Whether these credentials answer an AUTH to `uri` (the rightmost
    /// To-Path URI, RFC 4976 s.9.1) for the user whose `ha1` is given. The
    /// caller checks the nonce is one it issued and the count is fresh.
    #[must_use]
    pub fn verify(&self, ha1: &str, uri: &str) -> bool {
        if self.uri.as_deref().is_some_and(|u| u != uri) {
            return false;
        }
        let expected = request_digest(ha1, &self.nonce, &format!("{:08x}", self.nc), &self.cnonce, "AUTH", uri);
        constant_time_eq(expected.as_bytes(), self.response.as_bytes())
    }
}

impl fmt::Display for Credentials {
    /// RFC 4976 s.7: `"Digest" SP digest-response *("," SP digest-response)`,
    /// `qop` unquoted ("the value of the qop parameter in an "Authorization"
    /// header ... is not quoted"), `uri` quoted (s.9.1: "the value of the
    /// uri parameter MUST be in quotes").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::from("Digest ");
        write_quoted(&mut out, "username", &self.username);
        out.push_str(", ");
        write_quoted(&mut out, "realm", &self.realm);
        out.push_str(", ");
        write_quoted(&mut out, "nonce", &self.nonce);
        if let Some(uri) = &self.uri {
            out.push_str(", ");
            write_quoted(&mut out, "uri", uri);
        }
        let _ = write!(out, ", qop=auth, nc={:08x}, ", self.nc);
        write_quoted(&mut out, "cnonce", &self.cnonce);
        out.push_str(", ");
        write_quoted(&mut out, "response", &self.response);
        if let Some(opaque) = &self.opaque {
            out.push_str(", ");
            write_quoted(&mut out, "opaque", opaque);
        }
        f.write_str(&out)
    }
}

/// A relay's `Authentication-Info` on a 200 to AUTH (RFC 4976 s.7; s.9.1:
/// "Relays MUST include rspauth, cnonce, nc, and qop parameters").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticationInfo {
    /// `nextnonce`: the nonce to use in the next AUTH without a new challenge.
    pub nextnonce: Option<String>,
    /// `rspauth`: the response digest that proves the relay knows the secret.
    pub rspauth: Option<String>,
    /// `cnonce`, the client's.
    pub cnonce: Option<String>,
    /// `nc`, the client's.
    pub nc: Option<u32>,
}

impl AuthenticationInfo {
    /// The relay's answer to `credentials` for a user whose `ha1` it holds:
    /// `rspauth` per RFC 2617 s.3.2.3 (A2 = ":" digest-uri), with the next
    /// nonce to use.
    #[must_use]
    pub fn answer(credentials: &Credentials, ha1: &str, uri: &str, nextnonce: Option<&str>) -> Self {
        let nc = format!("{:08x}", credentials.nc);
        Self {
            nextnonce: nextnonce.map(str::to_owned),
            rspauth: Some(request_digest(ha1, &credentials.nonce, &nc, &credentials.cnonce, "", uri)),
            cnonce: Some(credentials.cnonce.clone()),
            nc: Some(credentials.nc),
        }
    }

    /// Reads an `Authentication-Info` value (RFC 4976 s.7: `ainfo *("," ainfo)`,
    /// no scheme).
    ///
    /// # Errors
    /// [`DigestError`] when the list is malformed.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let mut params = param_list(value, 0)?;
        let nc = match take(&mut params, "nc") {
            Some(nc) => Some(u32::from_str_radix(&nc, 16).map_err(|_| DigestError::Value("nc"))?),
            None => None,
        };
        Ok(Self {
            nextnonce: take(&mut params, "nextnonce"),
            rspauth: take(&mut params, "rspauth").map(|r| r.to_ascii_lowercase()),
            cnonce: take(&mut params, "cnonce"),
            nc,
        })
    }

    /// Whether `rspauth` is the one a relay knowing `ha1` would send for
    /// `credentials`: the client's check that it reached the right relay.
    #[must_use]
    pub fn verify(&self, credentials: &Credentials, ha1: &str, uri: &str) -> bool {
        let Some(rspauth) = &self.rspauth else { return false };
        let nc = format!("{:08x}", credentials.nc);
        let expected = request_digest(ha1, &credentials.nonce, &nc, &credentials.cnonce, "", uri);
        constant_time_eq(expected.as_bytes(), rspauth.as_bytes())
    }
}

impl fmt::Display for AuthenticationInfo {
    /// RFC 4976 s.9.1: "the parameters in the Authentication-Info header
    /// MUST be separated by commas", `qop` unquoted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let mut quoted = |name: &str, value: &Option<String>| {
            if let Some(value) = value {
                let mut part = String::new();
                write_quoted(&mut part, name, value);
                parts.push(part);
            }
        };
        quoted("nextnonce", &self.nextnonce);
        quoted("rspauth", &self.rspauth);
        quoted("cnonce", &self.cnonce);
        if let Some(nc) = self.nc {
            parts.push(format!("nc={nc:08x}"));
        }
        parts.push("qop=auth".to_owned());
        f.write_str(&parts.join(", "))
    }
}

/// Lower-case hex of an MD5 digest (RFC 2617 s.3.2.1: `H(data) = MD5(data)`,
/// written as 32 hex digits).
fn md5_hex(parts: &[&str]) -> String {
    let mut hasher = Md5::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(part.as_bytes());
    }
    hasher.finalize().iter().fold(String::with_capacity(32), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// H(A1) for `algorithm=MD5` (RFC 2617 s.3.2.2.2: `A1 = unq(username-value)
/// ":" unq(realm-value) ":" passwd`): what a credential store may keep
/// instead of the password.
#[must_use]
pub fn ha1(username: &str, realm: &str, password: &str) -> String {
    md5_hex(&[username, realm, password])
}

/// The request digest with `qop=auth` (RFC 2617 s.3.2.2.1:
/// `KD(H(A1), nonce ":" nc ":" cnonce ":" qop ":" H(A2))`, `A2 = Method ":"
/// digest-uri`); an empty `method` gives `rspauth` (s.3.2.3).
#[must_use]
pub fn request_digest(ha1: &str, nonce: &str, nc: &str, cnonce: &str, method: &str, uri: &str) -> String {
    let ha2 = md5_hex(&[method, uri]);
    md5_hex(&[ha1, nonce, nc, cnonce, QOP_AUTH, &ha2])
}

/// Compares two digests without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    /// RFC 2617 s.3.5's example, whose `response` RFC 4976 s.5.1 reuses
    /// ("6629fae49393a05397450978507c4ef1"): user Mufasa, password
    /// "Circle Of Life", `GET /dir/index.html`.
    #[test]
    fn rfc2617_example_digest() {
        let ha1 = ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        let response = request_digest(
            &ha1,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "00000001",
            "0a4f113b",
            "GET",
            "/dir/index.html",
        );
        assert_eq!(response, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc4976_challenge_and_credentials_parse() {
        // RFC 4976 s.5.1, continuation lines joined.
        let challenge = Challenge::parse(
            "Digest realm=\"intra.example.com\", qop=\"auth\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\"",
        )
        .unwrap();
        assert_eq!(challenge.realm, "intra.example.com");
        assert_eq!(challenge.nonce, "dcd98b7102dd2f0e8b11d0f600bfb0c093");
        assert!(!challenge.stale);
        let credentials = Credentials::parse(
            "Digest username=\"Alice\", realm=\"intra.example.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
             qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\"",
        )
        .unwrap();
        assert_eq!(credentials.username, "Alice");
        assert_eq!(credentials.nc, 1);
        assert_eq!(credentials.uri, None);
        let info = AuthenticationInfo::parse(
            "nextnonce=\"40f2e879449675f288476d772627370a\", rspauth=\"7327570c586207eca2afae94fc20903d\", \
             cnonce=\"0a4f113b\", nc=00000001, qop=auth",
        )
        .unwrap();
        assert_eq!(info.nextnonce.as_deref(), Some("40f2e879449675f288476d772627370a"));
        assert_eq!(info.nc, Some(1));
    }

    #[test]
    fn answer_verifies_and_round_trips() {
        let challenge = Challenge::new("relay.example.com", "n0nce\"q");
        let ha1 = ha1("alice", "relay.example.com", "secret");
        let uri = "msrps://relay.example.com:9000;tcp";
        let credentials = Credentials::answer(&challenge, "alice", &ha1, uri, "c0ffee00", 1);
        let written = credentials.to_string();
        assert!(written.contains("qop=auth, nc=00000001"), "{written}");
        let read = Credentials::parse(&written).unwrap();
        assert_eq!(read, credentials);
        assert!(read.verify(&ha1, uri));
        assert!(!read.verify(&self::ha1("alice", "relay.example.com", "wrong"), uri));
        assert!(!read.verify(&ha1, "msrps://other.example.com:9000;tcp"));
        let info = AuthenticationInfo::answer(&read, &ha1, uri, Some("next"));
        let info = AuthenticationInfo::parse(&info.to_string()).unwrap();
        assert!(info.verify(&credentials, &ha1, uri));
        assert_eq!(Challenge::parse(&challenge.to_string()).unwrap(), challenge);
    }

    #[test]
    fn refusals() {
        assert_eq!(Challenge::parse("Basic realm=\"x\""), Err(DigestError::Scheme));
        assert_eq!(Challenge::parse("Digest realm=\"x\", nonce=\"n\""), Err(DigestError::Qop));
        assert_eq!(Challenge::parse("Digest realm=\"x\", nonce=\"n\", qop=\"auth-int\""), Err(DigestError::Qop));
        assert_eq!(
            Challenge::parse("Digest realm=\"x\", nonce=\"n\", qop=\"auth\", algorithm=MD5-sess"),
            Err(DigestError::Algorithm)
        );
        assert_eq!(Challenge::parse("Digest nonce=\"n\", qop=\"auth\""), Err(DigestError::Missing("realm")));
        assert!(matches!(Challenge::parse("Digest realm=\"x"), Err(DigestError::Syntax { .. })));
        assert!(matches!(Challenge::parse("Digest realm"), Err(DigestError::Syntax { .. })));
        let many = format!("Digest {}", vec!["a=b"; 40].join(", "));
        assert_eq!(Challenge::parse(&many), Err(DigestError::TooManyParams));
        // `domain` is ignored, other case and spacing accepted.
        let c = Challenge::parse("digest  realm=x ,nonce=\"n\",domain=\"/\",QOP=\"auth,auth-int\"").unwrap();
        assert_eq!(c.realm, "x");
        let bad_nc = "Digest username=\"a\", realm=\"r\", nonce=\"n\", qop=auth, nc=1, cnonce=\"c\", \
                      response=\"6629fae49393a05397450978507c4ef1\"";
        assert_eq!(Credentials::parse(bad_nc), Err(DigestError::Value("nc")));
    }
}
