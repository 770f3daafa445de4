//! Byte classes of the RFC 3261 s.25.1 grammar, as 256-entry tables.

/// One bit per character class of the grammar; [`CLASS`] holds every byte's classes,
/// so each check is one load and one mask, whatever the class.
pub(crate) type Class = u32;

/// `token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )`
pub(crate) const TOKEN: Class = 1 << 0;

/// `word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" /
///  "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}" )`
pub(crate) const WORD: Class = 1 << 1;

/// `user = 1*( unreserved / escaped / user-unreserved )`,
/// `user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"`.
///
/// This class and the next four hold no `%`: a run of them stops at each
/// `escaped = "%" HEXDIG HEXDIG`, which [`check_escaped_run`] and `uri::run` check
/// apart, so the bytes between escapes pay no `%` test.
pub(crate) const USER: Class = 1 << 2;

/// `password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )`
pub(crate) const PASSWORD: Class = 1 << 3;

/// `paramchar = param-unreserved / unreserved / escaped`,
/// `param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"`
pub(crate) const PARAMCHAR: Class = 1 << 4;

/// `hname` / `hvalue` characters: `hnv-unreserved / unreserved / escaped`,
/// `hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"`
pub(crate) const HNV: Class = 1 << 5;

/// `uric = reserved / unreserved / escaped`,
/// `reserved = ";" / "/" / "?" / ":" / "@" / "&" / "=" / "+" / "$" / ","`
pub(crate) const URIC: Class = 1 << 6;

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`
pub(crate) const SCHEME: Class = 1 << 7;

/// ASCII part of `Reason-Phrase = *(reserved / unreserved / escaped / UTF8-NONASCII /
/// UTF8-CONT / SP / HTAB)`; bytes >= 0x80 are checked as UTF-8.
pub(crate) const REASON: Class = 1 << 8;

/// Header value text: `TEXT-UTF8char / LWS`, i.e. HTAB, 0x20-0x7E and non-ASCII
/// (checked as UTF-8 apart).
pub(crate) const TEXT: Class = 1 << 9;

/// `DIGIT`.
pub(crate) const DIGIT: Class = 1 << 10;

/// The bytes of a `domainlabel` / `toplabel`: `alphanum / "-"`.
pub(crate) const LABEL: Class = 1 << 11;

/// Hostname characters: `alphanum / "-" / "."` (RFC 3261 s.25.1 `hostname`).
pub(crate) const HOSTNAME: Class = 1 << 12;

/// Token characters plus the `[`, `]`, `:` of IPv6 hosts (`gen-value = token / host / quoted-string`).
pub(crate) const GEN_VALUE: Class = 1 << 13;

/// White space inside a header value: SP, HTAB, and the CR LF of a fold.
pub(crate) const LWS: Class = 1 << 14;

/// The ASCII bytes a quoted string holds as they are (RFC 3261 s.25.1 `qdtext = LWS / %x21 /
/// %x23-5B / %x5D-7E / UTF8-NONASCII`, and DEL): every byte from SP to DEL but DQUOTE and
/// backslash, and the SP, HTAB and CRLF of LWS. `UTF8-NONASCII` is checked apart, as UTF-8.
pub(crate) const QDTEXT: Class = 1 << 15;

/// The white space of one line: SP and HTAB (`LWS` without the CRLF of a fold). A
/// value read up to its line's end (`value::validate_line`) admits no other.
pub(crate) const WSP: Class = 1 << 16;

/// [`QDTEXT`] without CR and LF: what a quoted string holds on one line.
pub(crate) const QDTEXT_LINE: Class = 1 << 17;

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// `unreserved = alphanum / mark`, `mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"`
const MARK: &[u8] = b"-_.!~*'()";

/// Every byte's classes.
pub(crate) static CLASS: [Class; 256] = {
    let mut t = [0; 256];
    t = add(t, TOKEN, &[ALNUM, b"-.!%*_+`'~"]);
    t = add(t, WORD, &[ALNUM, b"-.!%*_+`'~()<>:\\\"/[]?{}"]);
    t = add(t, USER, &[ALNUM, MARK, b"&=+$,;?/"]);
    t = add(t, PASSWORD, &[ALNUM, MARK, b"&=+$,"]);
    t = add(t, PARAMCHAR, &[ALNUM, MARK, b"[]/:&+$"]);
    t = add(t, HNV, &[ALNUM, MARK, b"[]/?:+$"]);
    t = add(t, URIC, &[ALNUM, MARK, b";/?:@&=+$,"]);
    t = add(t, SCHEME, &[ALNUM, b"+-."]);
    t = add(t, REASON, &[ALNUM, MARK, b";/?:@&=+$,", b" \t", &NON_ASCII]);
    t = add(t, TEXT, &[b"\t", &PRINTABLE, &NON_ASCII]);
    t = add(t, DIGIT, &[b"0123456789"]);
    t = add(t, LABEL, &[ALNUM, b"-"]);
    t = add(t, HOSTNAME, &[ALNUM, b"-."]);
    t = add(t, GEN_VALUE, &[ALNUM, b"-.!%*_+`'~", b"[]:"]);
    t = add(t, LWS, &[b" \t\r\n"]);
    t = add(t, QDTEXT, &[b" \t\r\n!", &PRINTABLE, &[0x7f]]);
    t[b'"' as usize] &= !QDTEXT;
    t[b'\\' as usize] &= !QDTEXT;
    t = add(t, WSP, &[b" \t"]);
    let mut b = 0;
    while b < 256 {
        if t[b] & QDTEXT != 0 && b != b'\r' as usize && b != b'\n' as usize {
            t[b] |= QDTEXT_LINE;
        }
        b += 1;
    }
    t
};

const fn add(mut t: [Class; 256], class: Class, sets: &[&[u8]]) -> [Class; 256] {
    let mut i = 0;
    while i < sets.len() {
        let mut k = 0;
        while k < sets[i].len() {
            t[sets[i][k] as usize] |= class;
            k += 1;
        }
        i += 1;
    }
    t
}

const NON_ASCII: [u8; 128] = {
    let mut a = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        a[i] = 0x80 + i as u8;
        i += 1;
    }
    a
};

const PRINTABLE: [u8; 95] = {
    let mut a = [0u8; 95];
    let mut i = 0;
    while i < 95 {
        a[i] = 0x20 + i as u8;
        i += 1;
    }
    a
};

/// Whether `b` is in `class` (one of the constants above, or several or-ed together).
#[inline(always)]
pub(crate) const fn is(b: u8, class: Class) -> bool {
    CLASS[b as usize] & class != 0
}

/// The end of the run of `class` bytes in `s` from `from` (no escape check).
#[inline]
pub(crate) fn run_end(s: &[u8], from: usize, class: Class) -> usize {
    let mut i = from;
    while let Some(&b) = s.get(i) {
        if !is(b, class) {
            break;
        }
        i += 1;
    }
    i
}

/// [`run_end`] for runs that are often long (parameter names and values), four
/// bytes per step while they all belong: one bound check and one branch per step.
#[inline]
pub(crate) fn long_run_end(s: &[u8], from: usize, class: Class) -> usize {
    let mut i = from;
    while let Some(&[a, b, c, d]) = s.get(i..i + 4) {
        if CLASS[a as usize] & CLASS[b as usize] & CLASS[c as usize] & CLASS[d as usize] & class == 0 {
            break;
        }
        i += 4;
    }
    run_end(s, i, class)
}

/// Whether `b` is white space inside a header value: SP, HTAB, or the CR LF of a fold.
#[inline(always)]
pub(crate) const fn is_lws(b: u8) -> bool {
    is(b, LWS)
}

/// Checks a run of `class` bytes (a class without `%`, see [`USER`]) and of
/// `escaped = "%" HEXDIG HEXDIG`. Returns the index of the first bad byte.
pub(crate) fn check_escaped_run(s: &[u8], class: Class) -> Result<(), usize> {
    let end = escaped_run_end(s, 0, class)?;
    if end == s.len() {
        Ok(())
    } else {
        Err(end)
    }
}

/// The end of the run of `class` bytes (a class without `%`, see [`USER`]) and
/// escapes in `s` from `from`, or the index of a bad escape's first bad byte.
#[inline]
pub(crate) fn escaped_run_end(s: &[u8], from: usize, class: Class) -> Result<usize, usize> {
    let mut i = run_end(s, from, class);
    while s.get(i) == Some(&b'%') {
        // RFC 3261 s.25.1: escaped = "%" HEXDIG HEXDIG
        for k in 1..=2 {
            if !s.get(i + k).is_some_and(u8::is_ascii_hexdigit) {
                return Err(i + k);
            }
        }
        i = run_end(s, i + 3, class);
    }
    Ok(i)
}

/// Case-insensitive comparison of a name with a lower-case ASCII literal made
/// of letters, digits, `-`, `.` and `+` (header names, URI schemes), 8 bytes at
/// a time. Bit 0x20 is ignored only where the literal holds a letter (the
/// letters are the only such bytes with bit 0x40 set), so no other byte can
/// alias: `Content\rLength` is not `content-length`.
#[inline]
pub(crate) fn eq_lower(name: &[u8], lower: &[u8]) -> bool {
    const LETTER: u64 = 0x4040_4040_4040_4040;
    if name.len() != lower.len() {
        return false;
    }
    let word = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or_default());
    let same = |x: u64, y: u64| x | ((y & LETTER) >> 1) == y;
    if name.len() < 8 {
        return name.iter().zip(lower).all(|(&x, &y)| x | ((y & 0x40) >> 1) == y);
    }
    // Whole words, then the last 8 bytes (overlapping the previous word); up to 16
    // bytes, the first word and the last.
    let tail = name.len() - 8;
    let at = |s: &[u8], i: usize| word(s.get(i..i + 8).unwrap_or_default());
    if name.len() <= 16 {
        return same(at(name, 0), at(lower, 0)) && same(at(name, tail), at(lower, tail));
    }
    name.chunks_exact(8).zip(lower.chunks_exact(8)).all(|(x, y)| same(word(x), word(y)))
        && same(word(name.get(tail..).unwrap_or_default()), word(lower.get(tail..).unwrap_or_default()))
}

/// The index of the first `byte` in `s`, read a word (8 bytes) at a time: short
/// haystacks such as a header name do not pay memchr's setup.
#[inline]
pub(crate) fn find_byte(s: &[u8], byte: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(byte);
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default()) ^ pattern;
        // A zero byte of `w` is a match; the lowest flagged byte is always a true one
        // (a borrow only flags bytes above a zero byte).
        let zero = w.wrapping_sub(LO) & !w & HI;
        if zero != 0 {
            return Some(i + zero.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    s.get(i..).unwrap_or_default().iter().position(|&b| b == byte).map(|p| i + p)
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
            (TOKEN, &b"aZ09-.!%*_+`'~"[..], &b" \"(),/:;<=>?@[\\]{}"[..]),
            (WORD, b"()<>:\\\"/[]?{}", b" ;,=@"),
            (USER, b"&=+$,;?/", b"@: "),
            (PARAMCHAR, b"[]/:&+$", b";=?@ "),
            (URIC, b";/?:@&=+$,", b" <>\""),
            (SCHEME, b"a+-.", b":/_"),
        ] {
            assert!(yes.iter().all(|&b| is(b, class)), "{:?}", String::from_utf8_lossy(yes));
            assert!(no.iter().all(|&b| !is(b, class)), "{:?}", String::from_utf8_lossy(no));
        }
    }

    #[test]
    fn quoted_string_bytes() {
        // `Cursor::quoted` relies on it: exactly the ASCII bytes it took one by one before
        // (it checks the others as UTF-8).
        for b in 0..=255u8 {
            assert_eq!(is(b, QDTEXT), (b >= 0x20 || is_lws(b)) && b < 0x80 && b != b'"' && b != b'\\', "{b:#x}");
        }
    }

    #[test]
    fn one_line_classes() {
        // `value::validate_line` relies on it: its white space and quoted strings never
        // take a CR or LF, and otherwise take what the value's own do.
        for b in 0..=255u8 {
            assert_eq!(is(b, WSP), b == b' ' || b == b'\t', "{b:#x}");
            assert_eq!(is(b, QDTEXT_LINE), is(b, QDTEXT) && b != b'\r' && b != b'\n', "{b:#x}");
            assert!(!is(b, WSP) || is_lws(b));
        }
    }

    #[test]
    fn token_bytes_are_gen_value_bytes() {
        // `Cursor::gen_value` relies on it: a token run never passes a GEN_VALUE run.
        assert!((0..=255u8).all(|b| !is(b, TOKEN) || is(b, GEN_VALUE)));
    }

    #[test]
    fn escapes() {
        for (s, want) in [(&b"a%41b"[..], Ok(())), (b"a%4", Err(3)), (b"a%zz", Err(2)), (b"a b", Err(1)), (b"", Ok(()))]
        {
            assert_eq!(check_escaped_run(s, USER), want, "{:?}", String::from_utf8_lossy(s));
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
    fn find_a_byte() {
        for (s, b) in [
            (&b"Via: x"[..], b':'),
            (b"P-Asserted-Identity: x", b':'),
            (b"abc", b':'),
            (b"", b':'),
            (b"\x3a\xbaa:", b':'),
            (b"0123456789abcdef:", b':'),
            (b"\x80\x80\x80\x80\x80\x80\x80\x80;", b';'),
        ] {
            assert_eq!(find_byte(s, b), s.iter().position(|&c| c == b), "{:?}", String::from_utf8_lossy(s));
        }
        for len in 0..40 {
            let mut s = vec![b'a'; len];
            for at in 0..len {
                s[at] = b':';
                assert_eq!(find_byte(&s, b':'), Some(at));
                s[at] = b'a';
            }
            assert_eq!(find_byte(&s, b':'), None);
        }
    }

    #[test]
    fn digits() {
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u64(b"36893488147419103232"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"0068"), Some(68));
        assert_eq!(parse_u64(b"9999999999999999999"), Some(9_999_999_999_999_999_999));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"00000000000000000000068"), Some(68));
        assert_eq!(parse_u64(b"12/4"), None);
        assert_eq!(parse_u64(b"12:4"), None);
    }
}
