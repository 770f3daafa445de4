//! `multipart/*` bodies (RFC 2046 s.5.1): split a body into its parts and
//! build one, honouring the boundary.
//!
//! [`Multipart::parse`] takes the boundary from the Content-Type parameter
//! (token or quoted-string), ignores the preamble and the epilogue, and
//! returns each part's header block and body as slices of the input. A
//! delimiter counts only at the start of a line, and the CRLF before it
//! belongs to the delimiter, not to the previous part's body. The close
//! delimiter is required. Line ends are CRLF only: SIP bodies (RFC 3261 s.7)
//! have no bare-LF tolerance.
//!
//! [`Multipart::build`] writes parts with a caller's boundary, or picks one,
//! and refuses a boundary that occurs anywhere in a part.

use bytes::{BufMut, Bytes, BytesMut};
use memchr::memmem;
use thiserror::Error;

/// Parts accepted by [`Multipart::parse`] unless the caller says otherwise.
pub const DEFAULT_MAX_PARTS: usize = 16;

/// Why a body cannot be split or built as `multipart/*` (RFC 2046 s.5.1).
///
/// Offsets (`at`) are byte offsets into the Content-Type value for
/// [`MultipartError::Boundary`], else into the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MultipartError {
    /// The Content-Type is not `multipart/<subtype>`.
    #[error("Content-Type is not multipart/*")]
    NotMultipart,
    /// The Content-Type has no `boundary` parameter (RFC 2046 s.5.1.1: "The only mandatory global parameter").
    #[error("Content-Type has no boundary parameter (RFC 2046 s.5.1.1)")]
    MissingBoundary,
    /// The boundary is not `0*69<bchars> bcharsnospace` (RFC 2046 s.5.1.1), or the parameter is malformed.
    #[error("invalid boundary at byte {at} of the Content-Type (RFC 2046 s.5.1.1)")]
    Boundary {
        /// Offset in the Content-Type value.
        at: usize,
    },
    /// No dash-boundary line starts the first part.
    #[error("no boundary delimiter line in the body (RFC 2046 s.5.1.1)")]
    NoDelimiter,
    /// The body ends without the close delimiter `--boundary--`.
    #[error("body ends at byte {at} without the close delimiter (RFC 2046 s.5.1.1)")]
    MissingCloseDelimiter {
        /// The body length.
        at: usize,
    },
    /// The close delimiter follows the first delimiter: no part at all.
    #[error("multipart body without a body part at byte {at} (RFC 2046 s.5.1.1)")]
    NoParts {
        /// Offset of the close delimiter.
        at: usize,
    },
    /// A part's header block is not CRLF-terminated `name: value` lines.
    #[error("malformed part header at byte {at} (RFC 2046 s.5.1.1 MIME-part-headers)")]
    PartHeader {
        /// Offset of the offending line.
        at: usize,
    },
    /// More parts than the caller's limit.
    #[error("part at byte {at} exceeds the limit of {limit} parts")]
    TooManyParts {
        /// Offset of the delimiter (its CRLF) that opens the first part past the limit.
        at: usize,
        /// The limit.
        limit: usize,
    },
    /// (Local) The requested boundary occurs inside part `part`.
    #[error("boundary occurs inside part {part} (RFC 2046 s.5.1.1)")]
    BoundaryInPart {
        /// Index of the part, from 0.
        part: usize,
    },
    /// (Local) A header name that is not a token, or a value with CR, LF or NUL.
    #[error("invalid header {index} for a part")]
    InvalidHeader {
        /// Index of the header, from 0.
        index: usize,
    },
}

/// One body part: its header block and its body, slices of the parsed body.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Part {
    head: Bytes,
    body: Bytes,
}

impl Part {
    /// A part with these headers (in order) and body.
    ///
    /// # Errors
    /// [`MultipartError::InvalidHeader`] when a name is not an RFC 5322 field
    /// name or a value holds CR, LF or NUL.
    pub fn new(headers: &[(&str, &str)], body: Bytes) -> Result<Self, MultipartError> {
        let mut head = BytesMut::new();
        for (index, (name, value)) in headers.iter().enumerate() {
            // RFC 5322 s.3.6.8: field-name = 1*ftext; ftext = %d33-57 / %d59-126
            let name_ok = !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
            if !name_ok || value.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'\0')) {
                return Err(MultipartError::InvalidHeader { index });
            }
            head.put_slice(name.as_bytes());
            head.put_slice(b": ");
            head.put_slice(value.as_bytes());
            head.put_slice(b"\r\n");
        }
        Ok(Self { head: head.freeze(), body })
    }

    /// The header block as received: CRLF-terminated lines, empty when the
    /// part has no headers (then RFC 2046 s.5.1.1 implies `text/plain`).
    #[must_use]
    pub const fn raw_headers(&self) -> &Bytes {
        &self.head
    }

    /// The headers in order, folded lines unfolded, values trimmed.
    pub fn headers(&self) -> impl Iterator<Item = (&str, String)> + '_ {
        let text = std::str::from_utf8(&self.head).unwrap_or_default();
        let mut lines = text.split_terminator("\r\n").peekable();
        std::iter::from_fn(move || {
            let line = lines.next()?;
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            let mut value = value.trim().to_string();
            // RFC 5322 s.2.2.3: a line starting with WSP continues the field.
            while let Some(cont) = lines.next_if(|l| l.starts_with([' ', '\t'])) {
                value.push(' ');
                value.push_str(cont.trim());
            }
            Some((name.trim_end(), value))
        })
    }

    /// The value of the first header named `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// The Content-Type value.
    #[must_use]
    pub fn content_type(&self) -> Option<String> {
        self.header("Content-Type")
    }

    /// The media type of the Content-Type without parameters, lower-cased.
    #[must_use]
    pub fn media_type(&self) -> Option<String> {
        self.content_type().map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
    }

    /// The disposition type of Content-Disposition (`recipient-list`, `render` ...), lower-cased.
    #[must_use]
    pub fn disposition(&self) -> Option<String> {
        self.header("Content-Disposition").map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
    }

    /// The body, a slice of the parsed multipart body.
    #[must_use]
    pub const fn body(&self) -> &Bytes {
        &self.body
    }
}

/// A split `multipart/*` body: its parts in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Multipart {
    parts: Vec<Part>,
}

/// The output of [`Multipart::build`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    /// The boundary used.
    pub boundary: String,
    /// `multipart/<subtype>;boundary="<boundary>"`, for the Content-Type header.
    pub content_type: String,
    /// The body.
    pub body: Bytes,
}

impl Multipart {
    /// A multipart body of these parts (for [`Multipart::build`]).
    #[must_use]
    pub const fn new(parts: Vec<Part>) -> Self {
        Self { parts }
    }

    /// Splits `body` according to the `content_type` header value, with at
    /// most [`DEFAULT_MAX_PARTS`] parts.
    ///
    /// # Errors
    /// See [`MultipartError`].
    pub fn parse(content_type: &str, body: Bytes) -> Result<Self, MultipartError> {
        Self::parse_with(content_type, body, DEFAULT_MAX_PARTS)
    }

    /// [`Multipart::parse`] with a caller's limit on the number of parts.
    ///
    /// # Errors
    /// See [`MultipartError`].
    pub fn parse_with(content_type: &str, body: Bytes, max_parts: usize) -> Result<Self, MultipartError> {
        let boundary = boundary(content_type)?;
        Self::split(boundary.as_bytes(), body, max_parts)
    }

    /// Splits `body` on `boundary` (the parameter's value, without `--`).
    ///
    /// # Errors
    /// See [`MultipartError`].
    pub fn split(boundary: &[u8], body: Bytes, max_parts: usize) -> Result<Self, MultipartError> {
        let mut dash = Vec::with_capacity(boundary.len() + 4);
        dash.extend_from_slice(b"\r\n--");
        dash.extend_from_slice(boundary);
        let finder = memmem::Finder::new(&dash);
        // RFC 2046 s.5.1.1: multipart-body := [preamble CRLF] dash-boundary transport-padding
        //   CRLF body-part *encapsulation close-delimiter transport-padding [CRLF epilogue]
        let mut next = if body.starts_with(&dash[2..]) { delimiter(&body, &dash[2..], 0) } else { None };
        let mut from = 0;
        while next.is_none() {
            let at = finder.find(&body[from..]).map(|i| from + i).ok_or(MultipartError::NoDelimiter)?;
            next = delimiter(&body, &dash, at);
            from = at + 1;
        }
        let mut parts = Vec::new();
        while let Some(Delimiter { close: false, end, at }) = next {
            // "The boundary delimiter MUST occur at the beginning of a line, i.e., following
            // a CRLF, and the initial CRLF is considered to be attached to the boundary
            // delimiter line rather than part of the preceding part."
            let mut from = end;
            let found = loop {
                let Some(i) = finder.find(&body[from..]) else {
                    return Err(MultipartError::MissingCloseDelimiter { at: body.len() });
                };
                if let Some(d) = delimiter(&body, &dash, from + i) {
                    break d;
                }
                from += i + 1;
            };
            if parts.len() == max_parts {
                return Err(MultipartError::TooManyParts { at, limit: max_parts });
            }
            parts.push(part(&body, end, found.at)?);
            next = Some(found);
        }
        if parts.is_empty() {
            return Err(MultipartError::NoParts { at: next.map_or(0, |d| d.at) });
        }
        // The epilogue after the close delimiter is ignored.
        Ok(Self { parts })
    }

    /// The parts, in order.
    #[must_use]
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The first part whose Content-Disposition type is `disposition`
    /// (RFC 5366: `recipient-list`).
    #[must_use]
    pub fn find_disposition(&self, disposition: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.disposition().is_some_and(|d| d.eq_ignore_ascii_case(disposition)))
    }

    /// The first part of media type `media_type` (`application/sdp`).
    #[must_use]
    pub fn find_media_type(&self, media_type: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.media_type().is_some_and(|m| m.eq_ignore_ascii_case(media_type)))
    }

    /// Writes the parts as `multipart/<subtype>` with `boundary`, or with the
    /// first of `sip-lite-boundary-1`, `-2` ... that no part contains.
    ///
    /// # Errors
    /// [`MultipartError::Boundary`] for a boundary outside RFC 2046's grammar,
    /// [`MultipartError::BoundaryInPart`] when it occurs inside a part.
    pub fn build(&self, subtype: &str, boundary: Option<&str>) -> Result<Built, MultipartError> {
        let contains = |p: &Part, b: &[u8]| {
            let f = memmem::Finder::new(b);
            f.find(&p.head).is_some() || f.find(&p.body).is_some()
        };
        let boundary = match boundary {
            Some(b) => {
                check_boundary(b.as_bytes()).map_err(|at| MultipartError::Boundary { at })?;
                // RFC 2046 s.5.1.1: "the boundary delimiter MUST NOT appear inside any of
                // the encapsulated parts"; refusing any occurrence is the simple safe rule.
                if let Some(part) = self.parts.iter().position(|p| contains(p, b.as_bytes())) {
                    return Err(MultipartError::BoundaryInPart { part });
                }
                b.to_string()
            }
            None => (1..)
                .map(|n| format!("sip-lite-boundary-{n}"))
                .find(|b| !self.parts.iter().any(|p| contains(p, b.as_bytes())))
                .unwrap_or_default(),
        };
        let mut out = BytesMut::new();
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 {
                out.put_slice(b"\r\n");
            }
            out.put_slice(b"--");
            out.put_slice(boundary.as_bytes());
            out.put_slice(b"\r\n");
            out.put_slice(&p.head);
            out.put_slice(b"\r\n");
            out.put_slice(&p.body);
        }
        out.put_slice(b"\r\n--");
        out.put_slice(boundary.as_bytes());
        out.put_slice(b"--\r\n");
        let content_type = format!("multipart/{subtype};boundary=\"{boundary}\"");
        Ok(Built { boundary, content_type, body: out.freeze() })
    }
}

struct Delimiter {
    /// Offset of the delimiter (its CRLF, or its `--` at the body start).
    at: usize,
    /// Offset just past its line.
    end: usize,
    close: bool,
}

/// Checks for a delimiter line at `at` (the match of `dash`): `dash` then
/// `--` for the close delimiter, then transport-padding and CRLF (or the end
/// of the body after a close delimiter).
fn delimiter(body: &[u8], dash: &[u8], at: usize) -> Option<Delimiter> {
    let mut pos = at + dash.len();
    let close = body.get(pos..pos + 2) == Some(b"--");
    if close {
        pos += 2;
    }
    // transport-padding := *LWSP-char
    while matches!(body.get(pos), Some(b' ' | b'\t')) {
        pos += 1;
    }
    if body.get(pos..pos + 2) == Some(b"\r\n") {
        Some(Delimiter { at, end: pos + 2, close })
    } else if close && pos == body.len() {
        Some(Delimiter { at, end: pos, close })
    } else {
        None
    }
}

/// Builds the part between `start` and `end`: `body-part := MIME-part-headers [CRLF *OCTET]`.
fn part(body: &Bytes, start: usize, end: usize) -> Result<Part, MultipartError> {
    let content = &body[start..end];
    let (head, rest) = if content.is_empty() {
        (0, None)
    } else if content.starts_with(b"\r\n") {
        (0, Some(2))
    } else if let Some(i) = memmem::find(content, b"\r\n\r\n") {
        (i + 2, Some(i + 4))
    } else if content.ends_with(b"\r\n") {
        (content.len(), None)
    } else {
        return Err(MultipartError::PartHeader { at: start });
    };
    // MIME-part-headers: CRLF-terminated `name ":" value` lines, folded lines allowed.
    let mut pos = 0;
    for line in content[..head].split_inclusive(|&b| b == b'\n') {
        let bad = MultipartError::PartHeader { at: start + pos };
        let line = line.strip_suffix(b"\r\n").ok_or(bad)?;
        let folded = line.first().is_some_and(|&b| b == b' ' || b == b'\t');
        let colon = line.iter().position(|&b| b == b':');
        let name_ok = colon.is_some_and(|c| c > 0 && line[..c].iter().all(|&b| (33..=126).contains(&b)));
        if line.contains(&b'\r') || !(name_ok || (folded && pos > 0)) {
            return Err(bad);
        }
        pos += line.len() + 2;
    }
    let body_part = rest.map_or_else(Bytes::new, |r| body.slice(start + r..end));
    Ok(Part { head: body.slice(start..start + head), body: body_part })
}

/// `bchars := bcharsnospace / " "`; `bcharsnospace := DIGIT / ALPHA / "'" / "(" / ")" /
/// "+" / "_" / "," / "-" / "." / "/" / ":" / "=" / "?"`
fn is_bchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b)
}

/// Checks `boundary := 0*69<bchars> bcharsnospace`; the index of the first bad byte.
fn check_boundary(b: &[u8]) -> Result<(), usize> {
    if let Some(i) = b.iter().position(|&c| !is_bchar(c)) {
        return Err(i);
    }
    match b.len() {
        0 => Err(0),
        n if n > 70 => Err(70),
        n if b[n - 1] == b' ' => Err(n - 1),
        _ => Ok(()),
    }
}

/// The `boundary` parameter of a `multipart/*` Content-Type value, unquoted.
///
/// # Errors
/// [`MultipartError::NotMultipart`], [`MultipartError::MissingBoundary`] or
/// [`MultipartError::Boundary`].
pub fn boundary(content_type: &str) -> Result<&str, MultipartError> {
    let (media, mut rest) = content_type.split_once(';').unwrap_or((content_type, ""));
    let media = media.trim();
    let is_multipart = media.len() > 10 && media.as_bytes()[..10].eq_ignore_ascii_case(b"multipart/");
    if !is_multipart {
        return Err(MultipartError::NotMultipart);
    }
    let offset = |s: &str| s.as_ptr() as usize - content_type.as_ptr() as usize;
    loop {
        // parameter := attribute "=" value; value := token / quoted-string (RFC 2045 s.5.1)
        let param = rest.trim_start();
        if param.is_empty() {
            return Err(MultipartError::MissingBoundary);
        }
        let (name, after) = param.split_once('=').ok_or(MultipartError::Boundary { at: offset(param) })?;
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            // A boundary has no '"' or '\\' (bchars), so the first '"' ends it.
            let close = quoted.find('"').ok_or(MultipartError::Boundary { at: offset(after) })?;
            (&quoted[..close], &quoted[close + 1..])
        } else {
            let end = after.find(|c: char| c == ';' || c.is_ascii_whitespace()).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        let tail = tail.trim_start();
        if !tail.is_empty() && !tail.starts_with(';') {
            return Err(MultipartError::Boundary { at: offset(tail) });
        }
        if name.trim().eq_ignore_ascii_case("boundary") {
            check_boundary(value.as_bytes()).map_err(|i| MultipartError::Boundary { at: offset(value) + i })?;
            return Ok(value);
        }
        rest = tail.strip_prefix(';').unwrap_or(tail);
    }
}

#[cfg(any(test, feature = "fuzzing"))]
/// Fuzz entry points for the multipart codec.
pub mod fuzzing {
    use bytes::Bytes;

    use super::{Multipart, MultipartError};

    /// Takes the first line of `data` as the Content-Type and the rest as the
    /// body; an accepted body MUST build (with its own boundary when no part
    /// contains it, else a chosen one) into a body that splits into equal parts.
    ///
    /// # Panics
    /// When the round trip breaks (the fuzzer's signal), never on bad input.
    pub fn multipart(data: &[u8]) {
        let nl = memchr::memchr(b'\n', data).unwrap_or(data.len());
        let Ok(content_type) = std::str::from_utf8(&data[..nl]) else {
            return;
        };
        let body = Bytes::copy_from_slice(data.get(nl + 1..).unwrap_or_default());
        let Ok(parsed) = Multipart::parse_with(content_type, body, usize::MAX) else {
            return;
        };
        let boundary = super::boundary(content_type).ok();
        let built = match parsed.build("mixed", boundary) {
            Err(MultipartError::BoundaryInPart { .. }) => parsed.build("mixed", None),
            other => other,
        };
        let built = built.unwrap_or_else(|e| panic!("build failed: {e}"));
        let again = Multipart::parse_with(&built.content_type, built.body, usize::MAX);
        assert_eq!(again.as_ref(), Ok(&parsed), "split(build(parts)) != parts");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(boundary: &str, body: &'static [u8]) -> Result<Vec<(&'static str, &'static str)>, MultipartError> {
        let parsed = Multipart::split(boundary.as_bytes(), Bytes::from_static(body), 4)?;
        Ok(parsed
            .parts()
            .iter()
            .map(|p| {
                let text = |b: &Bytes| -> &'static str {
                    if b.is_empty() {
                        return "";
                    }
                    // Slices of a static body: recover them with their offsets.
                    let start = b.as_ptr() as usize - body.as_ptr() as usize;
                    std::str::from_utf8(&body[start..start + b.len()]).unwrap_or("<bin>")
                };
                (text(p.raw_headers()), text(p.body()))
            })
            .collect())
    }

    #[test]
    fn boundary_parameter() {
        let cases: &[(&str, Result<&str, MultipartError>)] = &[
            ("multipart/mixed;boundary=\"boundary1\"", Ok("boundary1")),
            ("multipart/mixed; boundary=unique-boundary-1", Ok("unique-boundary-1")),
            ("Multipart/Related; type=\"application/sdp\"; BOUNDARY=\"a b:c\"", Ok("a b:c")),
            ("multipart/mixed; charset=x ; boundary=b1 ", Ok("b1")),
            ("multipart/mixed; a=\"x;boundary=no\"; boundary=yes", Ok("yes")),
            ("application/sdp", Err(MultipartError::NotMultipart)),
            ("multipart/mixed", Err(MultipartError::MissingBoundary)),
            ("multipart/mixed; boundary=\"a\"x", Err(MultipartError::Boundary { at: 29 })),
            ("multipart/mixed; boundary=\"a \"", Err(MultipartError::Boundary { at: 28 })),
            ("multipart/mixed; boundary=a@b", Err(MultipartError::Boundary { at: 27 })),
            ("multipart/mixed; boundary=\"\"", Err(MultipartError::Boundary { at: 27 })),
            ("multipart/mixed; boundary=\"ab", Err(MultipartError::Boundary { at: 26 })),
        ];
        for (ct, want) in cases {
            assert_eq!(boundary(ct), *want, "{ct}");
        }
    }

    #[test]
    fn splits() {
        type Case = (&'static [u8], Result<Vec<(&'static str, &'static str)>, MultipartError>);
        let cases: &[Case] = &[
            (b"--b\r\nA: 1\r\n\r\nx\r\n--b--\r\n", Ok(vec![("A: 1\r\n", "x")])),
            // Preamble and epilogue are ignored; the CRLF before a delimiter is the delimiter's.
            (
                b"pre\r\n--b\r\n\r\nx\r\n\r\n--b\r\nB: 2\r\n\r\n\r\n--b--\r\nepi",
                Ok(vec![("", "x\r\n"), ("B: 2\r\n", "")]),
            ),
            // Transport padding after the boundary; close delimiter at the very end.
            (b"--b \t\r\nA: 1\r\n\r\nx\r\n--b--", Ok(vec![("A: 1\r\n", "x")])),
            // Not at a line start, or followed by other bytes: not a delimiter.
            (b"--b\r\n\r\nx--b\r\n--bc\r\n\r\n--b--\r\n", Ok(vec![("", "x--b\r\n--bc\r\n")])),
            // Headers only (no blank line), and a folded header.
            (b"--b\r\nA: 1\r\n \tmore\r\n\r\n--b--\r\n", Ok(vec![("A: 1\r\n \tmore\r\n", "")])),
            (b"--b\r\n\r\n--b--\r\n", Ok(vec![("", "")])),
            (b"--b\r\nA: 1\r\n\r\nx\r\n--b\r\n", Err(MultipartError::MissingCloseDelimiter { at: 21 })),
            (b"--b\r\nA: 1\r\n\r\nx", Err(MultipartError::MissingCloseDelimiter { at: 14 })),
            (b"no delimiter", Err(MultipartError::NoDelimiter)),
            (b"x--b\r\n\r\nbody", Err(MultipartError::NoDelimiter)),
            (b"x--b\r\n\r\n--b--", Err(MultipartError::NoParts { at: 6 })),
            (b"--b--\r\n", Err(MultipartError::NoParts { at: 0 })),
            (b"--b\r\nA 1\r\n\r\nx\r\n--b--", Err(MultipartError::PartHeader { at: 5 })),
            (b"--b\r\nA: 1\r\n--b--", Err(MultipartError::PartHeader { at: 5 })),
            (b"--b\r\nA: 1\r\nB\r\n\r\n\r\n--b--", Err(MultipartError::PartHeader { at: 11 })),
            (
                b"--b\r\n\r\n1\r\n--b\r\n\r\n2\r\n--b\r\n\r\n3\r\n--b\r\n\r\n4\r\n--b\r\n\r\n5\r\n--b--",
                Err(MultipartError::TooManyParts { at: 38, limit: 4 }),
            ),
        ];
        for (body, want) in cases {
            assert_eq!(split("b", body), *want, "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn build_round_trips_and_avoids_the_boundary() {
        let sdp = Part::new(&[("Content-Type", "application/sdp")], Bytes::from_static(b"v=0\r\n")).unwrap();
        let tricky = Part::new(&[], Bytes::from_static(b"--sip-lite-boundary-1\r\nx\r\n")).unwrap();
        let parts = Multipart::new(vec![sdp, tricky]);
        let built = parts.build("mixed", None).unwrap();
        assert_eq!(built.boundary, "sip-lite-boundary-2");
        assert_eq!(built.content_type, "multipart/mixed;boundary=\"sip-lite-boundary-2\"");
        assert_eq!(Multipart::parse(&built.content_type, built.body.clone()), Ok(parts.clone()));
        assert_eq!(parts.build("mixed", Some("lite-boundary")), Err(MultipartError::BoundaryInPart { part: 1 }));
        assert_eq!(parts.build("mixed", Some("bad\"")), Err(MultipartError::Boundary { at: 3 }));
        let named = parts.build("mixed", Some("b 1")).unwrap();
        assert_eq!(Multipart::parse(&named.content_type, named.body), Ok(parts));
    }

    #[test]
    fn part_headers() {
        assert_eq!(Part::new(&[("Bad Name", "x")], Bytes::new()), Err(MultipartError::InvalidHeader { index: 0 }));
        assert_eq!(
            Part::new(&[("A", "x"), ("B", "1\r\nC: 2")], Bytes::new()),
            Err(MultipartError::InvalidHeader { index: 1 })
        );
        let body = Bytes::from_static(b"--b\r\nContent-Type: Application/SDP ; x=1\r\nContent-Disposition: recipient-list;\r\n handling=required\r\n\r\n\r\n--b--");
        let parsed = Multipart::split(b"b", body, 1).unwrap();
        let p = &parsed.parts()[0];
        assert_eq!(p.media_type().as_deref(), Some("application/sdp"));
        assert_eq!(p.disposition().as_deref(), Some("recipient-list"));
        assert_eq!(p.header("content-disposition").as_deref(), Some("recipient-list; handling=required"));
        assert!(parsed.find_disposition("RECIPIENT-LIST").is_some());
        assert!(parsed.find_media_type("application/sdp").is_some());
    }

    #[test]
    fn fuzz_entry_never_panics_on_samples() {
        for case in [
            &b"multipart/mixed;boundary=b\n--b\r\n\r\nx\r\n--b--"[..],
            b"multipart/mixed;boundary=b\n--b\r\n\r\nb\r\n--b--",
            b"multipart/mixed;boundary=b\n",
            b"\xff\n",
            b"",
        ] {
            fuzzing::multipart(case);
        }
    }
}
