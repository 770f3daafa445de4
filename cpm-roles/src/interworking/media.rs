//! A MIME media type with its parameters (RFC 2045 s.5.1), read leniently
//! about whitespace and written canonically.

use std::fmt::{self, Write};

/// `type/subtype` (lower case) and its parameters (names lower case,
/// values unquoted), in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MediaType {
    pub(crate) essence: String,
    pub(crate) params: Vec<(String, String)>,
}

/// RFC 2045 s.5.1: `token := 1*<any (US-ASCII) CHAR except SPACE, CTLs, or tspecials>`.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b)
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

impl MediaType {
    /// Parses `type "/" subtype *(";" attribute "=" value)` (RFC 2045 s.5.1),
    /// allowing whitespace around the separators.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut rest = text.trim_matches([' ', '\t']);
        let end = rest.find(';').unwrap_or(rest.len());
        let (essence, tail) = rest.split_at(end);
        let (ty, sub) = essence.trim_matches([' ', '\t']).split_once('/')?;
        // RFC 2045 s.5.1: "type := discrete-type / composite-type", "subtype := extension-token / iana-token".
        if !is_token(ty) || !is_token(sub) {
            return None;
        }
        let essence = format!("{}/{}", ty.to_ascii_lowercase(), sub.to_ascii_lowercase());
        rest = tail;
        let mut params = Vec::new();
        while let Some(tail) = rest.strip_prefix(';') {
            let tail = tail.trim_start_matches([' ', '\t']);
            if tail.is_empty() {
                // A trailing ';' (common in the wild) ends the list.
                rest = tail;
                break;
            }
            let (name, value) = tail.split_once('=')?;
            let name = name.trim_end_matches([' ', '\t']);
            if !is_token(name) {
                return None;
            }
            let raw = value.trim_start_matches([' ', '\t']);
            // RFC 2045 s.5.1: "value := token / quoted-string".
            let (value, used) = if let Some(quoted) = raw.strip_prefix('"') {
                let (v, n) = unquote(quoted)?;
                (v, n + 1)
            } else {
                let n = raw.bytes().position(|b| !is_token_char(b)).unwrap_or(raw.len());
                (raw.get(..n)?.to_owned(), n)
            };
            if used == 0 {
                return None;
            }
            params.push((name.to_ascii_lowercase(), value));
            rest = raw.get(used..)?.trim_start_matches([' ', '\t']);
        }
        rest.is_empty().then_some(Self { essence, params })
    }

    /// Whether the essence is `essence` (ASCII case-insensitive).
    pub(crate) fn is(&self, essence: &str) -> bool {
        self.essence.eq_ignore_ascii_case(essence)
    }

    /// The top-level type.
    pub(crate) fn top(&self) -> &str {
        self.essence.split('/').next().unwrap_or("")
    }

    /// The first parameter named `name` (lower case).
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Whether a parameter named `name` is present.
    pub(crate) fn has_param(&self, name: &str) -> bool {
        self.param(name).is_some()
    }
}

/// Reads a quoted-string body after its opening quote (RFC 822
/// `quoted-string`, as RFC 2045 s.5.1 refers to); returns the text and the
/// bytes used including the closing quote.
fn unquote(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => out.push(chars.next()?.1),
            c if c.is_ascii_control() && c != '\t' => return None,
            c => out.push(c),
        }
    }
    None
}

impl fmt::Display for MediaType {
    /// `type/subtype; name=value` with values quoted when they are not tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.essence)?;
        for (name, value) in &self.params {
            write!(f, "; {name}=")?;
            write_value(f, value)?;
        }
        Ok(())
    }
}

/// A parameter value: the token itself, or a quoted-string.
pub(crate) fn write_value(out: &mut impl Write, value: &str) -> fmt::Result {
    if is_token(value) {
        return out.write_str(value);
    }
    out.write_char('"')?;
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.write_char('\\')?;
        }
        out.write_char(c)?;
    }
    out.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let m = MediaType::parse("Text/Plain ; Charset=\"UTF-8\"; format=flowed").unwrap();
        assert_eq!(m.essence, "text/plain");
        assert_eq!(m.param("charset"), Some("UTF-8"));
        assert_eq!(m.param("format"), Some("flowed"));
        assert_eq!(m.to_string(), "text/plain; charset=UTF-8; format=flowed");
        let m = MediaType::parse("multipart/mixed; boundary=\"a b\\\"c\"").unwrap();
        assert_eq!(m.param("boundary"), Some("a b\"c"));
        assert_eq!(m.to_string(), "multipart/mixed; boundary=\"a b\\\"c\"");
        assert!(MediaType::parse("text/plain;").is_some());
        for bad in ["", "text", "text/", "te xt/plain", "text/plain; x", "text/plain; x=\"open", "text/plain x=1"] {
            assert!(MediaType::parse(bad).is_none(), "{bad}");
        }
    }
}
