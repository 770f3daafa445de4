//! Byte classes of the RFC 4975 s.9 grammar, as 256-entry tables.

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

/// `token = 1*(%x21 / %x23-27 / %x2A-2B / %x2D-2E / %x30-39 / %x41-5A / %x5E-7E)`
pub(crate) static TOKEN: [bool; 256] =
    table(&[(0x21, 0x21), (0x23, 0x27), (0x2A, 0x2B), (0x2D, 0x2E), (0x30, 0x39), (0x41, 0x5A), (0x5E, 0x7E)]);

/// `ident-char = ALPHANUM / "." / "-" / "+" / "%" / "="`
pub(crate) static IDENT_CHAR: [bool; 256] = table(&[
    (b'0', b'9'),
    (b'A', b'Z'),
    (b'a', b'z'),
    (b'.', b'.'),
    (b'-', b'-'),
    (b'+', b'+'),
    (b'%', b'%'),
    (b'=', b'='),
]);

/// The ASCII part of `utf8text = *(HTAB / %x20-7E / UTF8-NONASCII)`.
pub(crate) static TEXT_ASCII: [bool; 256] = table(&[(0x09, 0x09), (0x20, 0x7E)]);

/// Checks `ident = ALPHANUM 3*31ident-char`; returns the index of the first bad byte.
pub(crate) fn check_ident(s: &[u8]) -> Result<(), usize> {
    match s.first() {
        Some(b) if b.is_ascii_alphanumeric() => {}
        _ => return Err(0),
    }
    if let Some(i) = s.iter().position(|&b| !IDENT_CHAR[usize::from(b)]) {
        return Err(i);
    }
    if s.len() < 4 {
        return Err(s.len());
    }
    if s.len() > 32 {
        return Err(32);
    }
    Ok(())
}

/// Checks `utf8text`; returns the index of the first bad byte.
pub(crate) fn check_utf8text(s: &[u8]) -> Result<(), usize> {
    match s.iter().position(|&b| !TEXT_ASCII[usize::from(b)]) {
        None => Ok(()),
        Some(first) => match std::str::from_utf8(&s[first..]) {
            Err(e) => Err(first + e.valid_up_to()),
            // Non-ASCII is valid UTF-8; still no control characters.
            Ok(rest) => match rest.char_indices().find(|&(_, c)| c.is_ascii_control() && c != '\t') {
                Some((i, _)) => Err(first + i),
                None => Ok(()),
            },
        },
    }
}

/// Checks `token`; returns the index of the first bad byte (0 for an empty token).
pub(crate) fn check_token(s: &[u8]) -> Result<(), usize> {
    if s.is_empty() {
        return Err(0);
    }
    match s.iter().position(|&b| !TOKEN[usize::from(b)]) {
        Some(i) => Err(i),
        None => Ok(()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ident_bounds() {
        assert_eq!(check_ident(b"abcd"), Ok(()));
        assert_eq!(check_ident(b"abc"), Err(3));
        assert_eq!(check_ident(b".abc"), Err(0));
        assert_eq!(check_ident(b"a@cd"), Err(1));
        assert_eq!(check_ident(&[b'a'; 32]), Ok(()));
        assert_eq!(check_ident(&[b'a'; 33]), Err(32));
    }

    #[test]
    fn utf8text() {
        assert_eq!(check_utf8text(b"a\tb"), Ok(()));
        assert_eq!(check_utf8text("caf\u{e9}".as_bytes()), Ok(()));
        assert_eq!(check_utf8text(b"a\xff"), Err(1));
        assert_eq!(check_utf8text(b"a\x01"), Err(1));
        assert_eq!(check_utf8text("\u{e9}\u{7f}".as_bytes()), Err(2));
    }

    #[test]
    fn digits() {
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"1a"), None);
    }
}
