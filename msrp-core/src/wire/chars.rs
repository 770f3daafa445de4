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

/// The bytes of a `media-type` without quoted strings: `token`, "/", ";",
/// "=" and SP (all printable ASCII).
pub(crate) static MEDIA_TYPE_PLAIN: [bool; 256] = table(&[
    (0x20, 0x21),
    (0x23, 0x27),
    (0x2A, 0x2B),
    (0x2D, 0x2F),
    (0x30, 0x39),
    (0x3B, 0x3B),
    (0x3D, 0x3D),
    (0x41, 0x5A),
    (0x5E, 0x7E),
]);

/// The ASCII part of `utf8text = *(HTAB / %x20-7E / UTF8-NONASCII)`.
pub(crate) static TEXT_ASCII: [bool; 256] = table(&[(0x09, 0x09), (0x20, 0x7E)]);

/// The length of the longest prefix of `s` whose bytes are all in `class`.
///
/// Eight bytes per step while they all are (one branch for eight lookups),
/// then byte by byte to the first one that is not.
#[inline]
pub(crate) fn run_len(s: &[u8], class: &[bool; 256]) -> usize {
    let in_class = |b: u8| class[usize::from(b)];
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let &[b0, b1, b2, b3, b4, b5, b6, b7] = chunk else { break };
        let all = in_class(b0)
            & in_class(b1)
            & in_class(b2)
            & in_class(b3)
            & in_class(b4)
            & in_class(b5)
            & in_class(b6)
            & in_class(b7);
        if !all {
            break;
        }
        at += 8;
    }
    let rest = s.get(at..).unwrap_or_default();
    at + rest.iter().position(|&b| !in_class(b)).unwrap_or(rest.len())
}

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

/// The length of the `ident` (`ALPHANUM 3*31ident-char`, RFC 4975 s.9)
/// that starts `s` and is followed by a byte outside `ident-char` (or ends
/// `s`); `None` otherwise. Looks at 33 bytes at most, however long `s` is.
#[inline]
pub(crate) fn ident_len(s: &[u8]) -> Option<usize> {
    let len = run_len(s.get(..33).unwrap_or(s), &IDENT_CHAR);
    is_ident_run(s.get(..len)?).then_some(len)
}

/// Whether `s`, known to be all `ident-char` bytes, is an `ident`:
/// `ALPHANUM 3*31ident-char` (RFC 4975 s.9).
pub(crate) fn is_ident_run(s: &[u8]) -> bool {
    s.first().is_some_and(u8::is_ascii_alphanumeric) && (4..=32).contains(&s.len())
}

/// Checks `utf8text`; returns the index of the first bad byte.
pub(crate) fn check_utf8text(s: &[u8]) -> Result<(), usize> {
    // Fast path: printable ASCII and HTAB; anything else takes the exact path below.
    if plain_text_len(s) == s.len() {
        return Ok(());
    }
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

/// Whether `b` is HTAB or %x20-7E, the ASCII part of `utf8text`.
const fn is_plain_text(b: u8) -> bool {
    b.wrapping_sub(0x20) < 0x5F || b == b'\t'
}

/// Whether all of `chunk` [`is_plain_text`]. Written without an early exit so
/// that it compiles to a few vector compares.
fn all_plain_text(chunk: &[u8; 16]) -> bool {
    chunk.iter().fold(true, |ok, &b| ok & is_plain_text(b))
}

/// The length of the prefix of `s` that is HTAB or %x20-7E: the index of the
/// first other byte (CR, LF, another control, or non-ASCII), or `s.len()`.
pub(crate) fn plain_text_len(s: &[u8]) -> usize {
    // Skip whole plain 16-byte chunks, then locate the first other byte a word
    // at a time.
    let at = s.chunks_exact(16).take_while(|&chunk| chunk.try_into().is_ok_and(all_plain_text)).count() * 16;
    let rest = s.get(at..).unwrap_or_default();
    let mut words = rest.chunks_exact(8);
    let mut at = at;
    for word in words.by_ref() {
        let bad = word.try_into().map_or(H, |w| non_text_bytes(u64::from_le_bytes(w)));
        if bad != 0 {
            return at + (bad.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let tail = words.remainder();
    at + tail.iter().position(|&b| !TEXT_ASCII[usize::from(b)]).unwrap_or(tail.len())
}

/// Bytes with only their low bit set, and with only their high bit set.
const L: u64 = 0x0101_0101_0101_0101;
const H: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `x` that is not [`is_plain_text`], all other
/// bits clear. No operation carries between bytes: the sums add to bytes
/// below 0x80 and stay below 0x100.
const fn non_text_bytes(x: u64) -> u64 {
    let high = x & H;
    let low = x & !H;
    let below_space = !(low + 0x60 * L) & H;
    let del = (low + L) & H;
    let tab = !((low ^ (0x09 * L)) + 0x7F * L) & H;
    high | (below_space & !tab) | del
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
    match leading_u64(s)? {
        (n, []) => Some(n),
        _ => None,
    }
}

/// Parses the `1*DIGIT` that starts `s` as u64 and returns it with the bytes
/// after it; `None` when `s` does not start with a digit or the number
/// overflows.
pub(crate) fn leading_u64(s: &[u8]) -> Option<(u64, &[u8])> {
    // One pass over the digits; up to 19 digits always fit a u64, and only
    // longer numbers are read again with overflow checks.
    let mut n: u64 = 0;
    let mut digits = 0;
    for &b in s {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        n = n.wrapping_mul(10).wrapping_add(u64::from(d));
        digits += 1;
    }
    if digits == 0 {
        return None;
    }
    let (number, rest) = s.split_at(digits);
    if digits > 19 {
        n = number.iter().try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))?;
    }
    Some((n, rest))
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
        for s in [&b"abcd"[..], b"abc", b".abc", b"a-c=", &[b'a'; 32], &[b'a'; 33], b""] {
            assert_eq!(is_ident_run(s), check_ident(s).is_ok(), "{s:?}");
        }
        // The ident that starts a longer run of bytes, whatever follows it.
        let long = [b'a'; 4096];
        assert_eq!(ident_len(b"abcd SEND"), Some(4));
        assert_eq!(ident_len(b"abcd"), Some(4));
        assert_eq!(ident_len(&long[..32]), Some(32));
        assert_eq!(ident_len(&[&long[..32], b"\r\n"].concat()), Some(32));
        assert_eq!(ident_len(&long[..33]), None);
        assert_eq!(ident_len(&long), None);
        assert_eq!(ident_len(b"abc "), None);
        assert_eq!(ident_len(b".abcd "), None);
        assert_eq!(ident_len(b""), None);
    }

    #[test]
    fn utf8text() {
        assert_eq!(check_utf8text(b"a\tb"), Ok(()));
        assert_eq!(check_utf8text("caf\u{e9}".as_bytes()), Ok(()));
        assert_eq!(check_utf8text(b"a\xff"), Err(1));
        assert_eq!(check_utf8text(b"a\x01"), Err(1));
        assert_eq!(check_utf8text("\u{e9}\u{7f}".as_bytes()), Err(2));
        assert_eq!(check_utf8text(b"plain ASCII text ~ with\ttabs, longer than one vector"), Ok(()));
        assert_eq!(check_utf8text(b"0123456789abcdef0123456789abcdef\x7f"), Err(32));
        assert_eq!(check_utf8text(b"0123456789abcdef0123456789abcdef\r\n"), Err(32));
        assert_eq!(check_utf8text(b""), Ok(()));
    }

    #[test]
    fn plain_text_prefix() {
        for len in 0..40 {
            for bad in [b'\r', b'\n', 0, 0x1f, 0x7f, 0x80, 0xff] {
                let mut s = vec![b'a'; len];
                assert_eq!(plain_text_len(&s), len);
                for at in 0..len {
                    s.fill(b'\t');
                    s[at] = bad;
                    assert_eq!(plain_text_len(&s), at);
                    s[len - 1] = bad;
                    assert_eq!(plain_text_len(&s), at);
                }
            }
        }
        for b in 0..=255u8 {
            assert_eq!(is_plain_text(b), TEXT_ASCII[usize::from(b)], "{b}");
            for lane in 0..8 {
                for other in [b'a', b'\t', 0, 0x7f, 0xff] {
                    let mut word = [other; 8];
                    word[lane] = b;
                    let bad = non_text_bytes(u64::from_le_bytes(word));
                    let expected = word.map(|b| if is_plain_text(b) { 0 } else { 0x80 });
                    assert_eq!(bad, u64::from_le_bytes(expected), "{word:?}");
                }
            }
        }
    }

    #[test]
    fn class_runs() {
        for len in 0..40 {
            for stop in 0..=len {
                let mut s = vec![b'a'; len];
                if stop < len {
                    s[stop] = b' ';
                }
                assert_eq!(run_len(&s, &TOKEN), stop, "{len} {stop}");
                assert_eq!(run_len(&s, &IDENT_CHAR), stop, "{len} {stop}");
            }
        }
    }

    #[test]
    fn digits() {
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"1a"), None);
        assert_eq!(parse_u64(b"9999999999999999999"), Some(9_999_999_999_999_999_999));
        assert_eq!(parse_u64(b"000000000000000000000000007"), Some(7));
        assert_eq!(leading_u64(b"12-3"), Some((12, &b"-3"[..])));
        assert_eq!(leading_u64(b"-3"), None);
        assert_eq!(leading_u64(b"99999999999999999999/"), None);
    }
}
