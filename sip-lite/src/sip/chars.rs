//! Byte classes of the RFC 3261 s.25.1 grammar, as 256-entry tables.

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

const fn with(mut t: [bool; 256], extra: &[u8]) -> [bool; 256] {
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
}

const ALNUM: [bool; 256] = table(&[(b'0', b'9'), (b'A', b'Z'), (b'a', b'z')]);

/// `token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )`
pub(crate) static TOKEN: [bool; 256] = with(ALNUM, b"-.!%*_+`'~");

/// `word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" /
///  "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}" )`
pub(crate) static WORD: [bool; 256] = with(ALNUM, b"-.!%*_+`'~()<>:\\\"/[]?{}");

/// `unreserved = alphanum / mark`, `mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"`
const UNRESERVED: [bool; 256] = with(ALNUM, b"-_.!~*'()");

/// `user = 1*( unreserved / escaped / user-unreserved )`,
/// `user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"` (`%` checked apart).
pub(crate) static USER: [bool; 256] = with(UNRESERVED, b"&=+$,;?/%");

/// `password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )`
pub(crate) static PASSWORD: [bool; 256] = with(UNRESERVED, b"&=+$,%");

/// `paramchar = param-unreserved / unreserved / escaped`,
/// `param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"`
pub(crate) static PARAMCHAR: [bool; 256] = with(UNRESERVED, b"[]/:&+$%");

/// `hname` / `hvalue` characters: `hnv-unreserved / unreserved / escaped`,
/// `hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"`
pub(crate) static HNV: [bool; 256] = with(UNRESERVED, b"[]/?:+$%");

/// `uric = reserved / unreserved / escaped`,
/// `reserved = ";" / "/" / "?" / ":" / "@" / "&" / "=" / "+" / "$" / ","`
pub(crate) static URIC: [bool; 256] = with(UNRESERVED, b";/?:@&=+$,%");

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`
pub(crate) static SCHEME: [bool; 256] = with(ALNUM, b"+-.");

/// ASCII part of `Reason-Phrase = *(reserved / unreserved / escaped / UTF8-NONASCII /
/// UTF8-CONT / SP / HTAB)`; bytes >= 0x80 are checked as UTF-8.
pub(crate) static REASON: [bool; 256] = with(with(URIC, b" \t"), &NON_ASCII);

/// Header value text: `TEXT-UTF8char / LWS`, i.e. HTAB, 0x20-0x7E and non-ASCII
/// (checked as UTF-8 apart).
pub(crate) static TEXT: [bool; 256] = table(&[(0x09, 0x09), (0x20, 0x7E), (0x80, 0xFF)]);

const NON_ASCII: [u8; 128] = {
    let mut a = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        a[i] = 0x80 + i as u8;
        i += 1;
    }
    a
};

/// Whether `b` is white space inside a header value: SP, HTAB, or the CR LF of a fold.
pub(crate) const fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Checks a run of `class` bytes where `%` must start `escaped = "%" HEXDIG HEXDIG`.
/// Returns the index of the first bad byte.
pub(crate) fn check_escaped_run(s: &[u8], class: &[bool; 256]) -> Result<(), usize> {
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if !class[usize::from(b)] {
            return Err(i);
        }
        if b == b'%' {
            // RFC 3261 s.25.1: escaped = "%" HEXDIG HEXDIG
            for k in 1..=2 {
                if !s.get(i + k).is_some_and(u8::is_ascii_hexdigit) {
                    return Err(i + k);
                }
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Case-insensitive comparison of a token with a lower-case ASCII literal, 8
/// bytes at a time. Setting bit 0x20 maps each letter to lower case and no
/// other token byte onto a letter or `-` (only CR would alias `-`, and CR is
/// not a token byte: it is refused explicitly).
pub(crate) fn eq_lower(name: &[u8], lower: &[u8]) -> bool {
    const CASE: u64 = 0x2020_2020_2020_2020;
    if name.len() != lower.len() {
        return false;
    }
    let mut a = name.chunks_exact(8);
    let mut b = lower.chunks_exact(8);
    let words = a.by_ref().zip(b.by_ref()).all(|(x, y)| {
        let x = u64::from_le_bytes(x.try_into().unwrap_or_default());
        let y = u64::from_le_bytes(y.try_into().unwrap_or_default());
        x | CASE == y | CASE
    });
    words && a.remainder().iter().zip(b.remainder()).all(|(x, y)| x | 0x20 == y | 0x20) && !name.contains(&b'\r')
}

/// Parses `1*DIGIT` as u64; `None` on an empty string, a non-digit or overflow.
pub(crate) fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Parses `1*DIGIT` as u32 (`delta-seconds`, CSeq numbers).
pub(crate) fn parse_u32(s: &[u8]) -> Option<u32> {
    parse_u64(s).and_then(|n| u32::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables() {
        for (class, yes, no) in [
            (&TOKEN, &b"aZ09-.!%*_+`'~"[..], &b" \"(),/:;<=>?@[\\]{}"[..]),
            (&WORD, b"()<>:\\\"/[]?{}", b" ;,=@"),
            (&USER, b"&=+$,;?/", b"@: "),
            (&PARAMCHAR, b"[]/:&+$", b";=?@ "),
            (&URIC, b";/?:@&=+$,", b" <>\""),
            (&SCHEME, b"a+-.", b":/_"),
        ] {
            assert!(yes.iter().all(|&b| class[usize::from(b)]), "{:?}", String::from_utf8_lossy(yes));
            assert!(no.iter().all(|&b| !class[usize::from(b)]), "{:?}", String::from_utf8_lossy(no));
        }
    }

    #[test]
    fn escapes() {
        for (s, want) in [(&b"a%41b"[..], Ok(())), (b"a%4", Err(3)), (b"a%zz", Err(2)), (b"a b", Err(1)), (b"", Ok(()))]
        {
            assert_eq!(check_escaped_run(s, &USER), want, "{:?}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn lower_case_compare() {
        assert!(eq_lower(b"Content-Length", b"content-length"));
        assert!(eq_lower(b"P-ASSERTED-IDENTITY", b"p-asserted-identity"));
        assert!(!eq_lower(b"Content\rLength", b"content-length"));
        assert!(!eq_lower(b"Via", b"vi"));
        assert!(!eq_lower(b"Vib", b"via"));
        assert!(eq_lower(b"", b""));
    }

    #[test]
    fn digits() {
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u64(b"36893488147419103232"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"0068"), Some(68));
    }
}
