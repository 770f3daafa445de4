//! The parts of a `multipart/*` message body (RFC 2046 s.5.1), as slices of
//! the body: RFC 4975 s.7.3.1 says "All MSRP endpoints MUST be able to
//! receive the multipart/mixed and multipart/alternative media-types", so
//! the session hands such messages over with their parts split out.
//!
//! (sip-lite has a fuller multipart codec that can also build bodies; both
//! crates are leaves of the workspace, so this reader stands on its own.)

use bytes::Bytes;
use memchr::memmem;
use thiserror::Error;

/// Most parts split out of one body.
pub const MAX_PARTS: usize = 64;

/// Why a body is not a well-formed `multipart/*` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MimeError {
    /// The Content-Type has no usable `boundary` parameter (RFC 2046 s.5.1.1).
    #[error("no boundary parameter in the Content-Type")]
    Boundary,
    /// No delimiter line, or no close delimiter (RFC 2046 s.5.1.1).
    #[error("missing boundary delimiter")]
    Delimiter,
    /// A part's headers are not CRLF-terminated lines followed by a blank line.
    #[error("malformed part headers at byte {at}")]
    PartHeaders {
        /// Offset in the body.
        at: usize,
    },
    /// More than [`MAX_PARTS`] parts.
    #[error("more than {MAX_PARTS} parts")]
    TooManyParts,
}

/// One body part: its header block and its content, both shared with the message body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MimePart {
    headers: Bytes,
    body: Bytes,
}

impl MimePart {
    /// The header lines as `(name, value)` (values trimmed, folding not undone).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        std::str::from_utf8(&self.headers)
            .unwrap_or_default()
            .split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim(), value.trim()))
    }

    /// The value of the first header named `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// The part's Content-Type; RFC 2046 s.5.1: absent means `text/plain`.
    #[must_use]
    pub fn content_type(&self) -> &str {
        self.header("Content-Type").unwrap_or("text/plain")
    }

    /// The part's content.
    #[must_use]
    pub const fn body(&self) -> &Bytes {
        &self.body
    }
}

/// Whether a media type is `multipart/*`.
#[must_use]
pub fn is_multipart(content_type: &str) -> bool {
    content_type.get(..10).is_some_and(|m| m.eq_ignore_ascii_case("multipart/"))
}

/// The `boundary` parameter of a Content-Type, quotes removed.
fn boundary(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim();
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        // RFC 2046 s.5.1.1: boundary := 0*69<bchars> bcharsnospace
        (!value.is_empty() && value.len() <= 70 && !value.ends_with(' ')).then_some(value)
    })
}

/// Splits a `multipart/*` body into its parts (preamble and epilogue dropped).
///
/// # Errors
/// [`MimeError`] when the body does not follow RFC 2046 s.5.1.1.
pub fn parts(content_type: &str, body: &Bytes) -> Result<Vec<MimePart>, MimeError> {
    let boundary = boundary(content_type).ok_or(MimeError::Boundary)?;
    // RFC 2046 s.5.1.1: "The boundary delimiter MUST occur at the beginning
    // of a line", and the CRLF before it belongs to the delimiter.
    let mut delimiter = Vec::with_capacity(boundary.len() + 4);
    delimiter.extend_from_slice(b"\r\n--");
    delimiter.extend_from_slice(boundary.as_bytes());
    let finder = memmem::Finder::new(&delimiter);
    // The first delimiter may open the body without a CRLF before it.
    let first = if body.starts_with(&delimiter[2..]) {
        0
    } else {
        finder.find(body).map(|i| i + 2).ok_or(MimeError::Delimiter)?
    };
    let mut at = first + delimiter.len() - 2;
    let mut parts = Vec::new();
    loop {
        let rest = body.get(at..).unwrap_or_default();
        if rest.starts_with(b"--") {
            // The close delimiter.
            return if parts.is_empty() { Err(MimeError::Delimiter) } else { Ok(parts) };
        }
        // Transport padding, then CRLF, end the delimiter line.
        let line_end = memmem::find(rest, b"\r\n").ok_or(MimeError::Delimiter)?;
        if rest[..line_end].iter().any(|&b| b != b' ' && b != b'\t') {
            return Err(MimeError::Delimiter);
        }
        let start = at + line_end + 2;
        let end = finder
            .find(body.get(start - 2..).unwrap_or_default())
            .map(|i| start - 2 + i)
            .ok_or(MimeError::Delimiter)?;
        let part = body.slice(start..end.max(start));
        // Headers end at the first empty line (a part may have none).
        let (headers, content) = if part.starts_with(b"\r\n") {
            (Bytes::new(), part.slice(2..))
        } else {
            let split = memmem::find(&part, b"\r\n\r\n").ok_or(MimeError::PartHeaders { at: start })?;
            (part.slice(..split), part.slice(split + 4..))
        };
        if parts.len() == MAX_PARTS {
            return Err(MimeError::TooManyParts);
        }
        parts.push(MimePart { headers, body: content });
        at = end + delimiter.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_mixed_and_alternative_bodies() {
        let body = Bytes::from_static(
            b"preamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1\r\n\
              Content-Type: text/html\r\n\r\n<p>hello</p>\r\n--b1--\r\nepilogue",
        );
        let got = parts("multipart/alternative; boundary=\"b1\"", &body).unwrap_or_default();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].content_type(), got[0].body().as_ref()), ("text/plain", &b"hello"[..]));
        assert_eq!((got[1].content_type(), got[1].body().as_ref()), ("text/html", &b"<p>hello</p>"[..]));
        assert!(body.as_ptr_range().contains(&got[1].body().as_ptr()), "parts are slices of the body");
        let no_headers = Bytes::from_static(b"--x\r\n\r\nplain\r\n--x--");
        let got = parts("multipart/mixed;boundary=x", &no_headers).unwrap_or_default();
        assert_eq!((got.len(), got[0].content_type(), got[0].body().as_ref()), (1, "text/plain", &b"plain"[..]));
    }

    #[test]
    fn refuses_broken_bodies() {
        let cases: [(&str, &[u8], MimeError); 5] = [
            ("multipart/mixed", b"--b\r\n\r\nx\r\n--b--", MimeError::Boundary),
            ("multipart/mixed;boundary=b", b"no delimiter", MimeError::Delimiter),
            ("multipart/mixed;boundary=b", b"--b\r\n\r\nx\r\n", MimeError::Delimiter),
            ("multipart/mixed;boundary=b", b"--b--", MimeError::Delimiter),
            ("multipart/mixed;boundary=b", b"--b\r\nContent-Type: a/b\r\nx\r\n--b--", MimeError::PartHeaders { at: 5 }),
        ];
        for (ct, body, want) in cases {
            assert_eq!(parts(ct, &Bytes::from_static(body)), Err(want), "{ct} {:?}", String::from_utf8_lossy(body));
        }
        assert!(is_multipart("Multipart/Mixed; boundary=x") && !is_multipart("text/plain"));
    }
}
