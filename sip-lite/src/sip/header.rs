//! Header names: the headers this crate types, their compact forms, and case-insensitive lookup.

use std::fmt;

use super::chars::eq_lower;

macro_rules! header_names {
    ($( $(#[$doc:meta])* $variant:ident = $long:literal, $lower:literal, $compact:expr; )*) => {
        /// A header name (RFC 3261 s.7.3, s.20), compact forms folded into their long form.
        ///
        /// RFC 3261 s.7.3.1: "field names are always case-insensitive", and s.7.3.3:
        /// the compact form and the long form of a header are the same header.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        #[non_exhaustive]
        pub enum HeaderName {
            $( $(#[$doc])* $variant, )*
            /// Any other header; its name is kept as written.
            Other,
        }

        impl HeaderName {
            /// Every named (not [`HeaderName::Other`]) header.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// The long form, in the RFC's spelling (`""` for [`HeaderName::Other`]).
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $long, )*
                    Self::Other => "",
                }
            }

            /// The long form in lower case.
            const fn lower(self) -> &'static str {
                match self {
                    $( Self::$variant => $lower, )*
                    Self::Other => "",
                }
            }

            /// The long forms in lower case, in the order of [`HeaderName::ALL`].
            const LOWER: &'static [&'static str] = &[$($lower,)*];

            /// The compact form (RFC 3261 s.7.3.3 and the RFCs that define the others).
            #[must_use]
            pub const fn compact(self) -> Option<char> {
                match self {
                    $( Self::$variant => $compact, )*
                    Self::Other => None,
                }
            }
        }
    };
}

header_names! {
    /// `Via` / `v`.
    Via = "Via", "via", Some('v');
    /// `From` / `f`.
    From = "From", "from", Some('f');
    /// `To` / `t`.
    To = "To", "to", Some('t');
    /// `Call-ID` / `i`.
    CallId = "Call-ID", "call-id", Some('i');
    /// `CSeq`.
    CSeq = "CSeq", "cseq", None;
    /// `Max-Forwards`.
    MaxForwards = "Max-Forwards", "max-forwards", None;
    /// `Contact` / `m`.
    Contact = "Contact", "contact", Some('m');
    /// `Route`.
    Route = "Route", "route", None;
    /// `Record-Route`.
    RecordRoute = "Record-Route", "record-route", None;
    /// `Content-Type` / `c`.
    ContentType = "Content-Type", "content-type", Some('c');
    /// `Content-Length` / `l`.
    ContentLength = "Content-Length", "content-length", Some('l');
    /// `Content-Disposition`.
    ContentDisposition = "Content-Disposition", "content-disposition", None;
    /// `Content-Encoding` / `e`.
    ContentEncoding = "Content-Encoding", "content-encoding", Some('e');
    /// `Require`.
    Require = "Require", "require", None;
    /// `Supported` / `k`.
    Supported = "Supported", "supported", Some('k');
    /// `Allow`.
    Allow = "Allow", "allow", None;
    /// `Expires`.
    Expires = "Expires", "expires", None;
    /// `Date`.
    Date = "Date", "date", None;
    /// `Subject` / `s`.
    Subject = "Subject", "subject", Some('s');
    /// `P-Asserted-Identity` (RFC 3325).
    PAssertedIdentity = "P-Asserted-Identity", "p-asserted-identity", None;
    /// `Accept-Contact` / `a` (RFC 3841).
    AcceptContact = "Accept-Contact", "accept-contact", Some('a');
    /// `Reject-Contact` / `j` (RFC 3841).
    RejectContact = "Reject-Contact", "reject-contact", Some('j');
    /// `Request-Disposition` / `d` (RFC 3841).
    RequestDisposition = "Request-Disposition", "request-disposition", Some('d');
    /// `Event` / `o` (RFC 6665).
    Event = "Event", "event", Some('o');
    /// `Allow-Events` / `u` (RFC 6665).
    AllowEvents = "Allow-Events", "allow-events", Some('u');
    /// `Refer-To` / `r` (RFC 3515).
    ReferTo = "Refer-To", "refer-to", Some('r');
    /// `Referred-By` / `b` (RFC 3892).
    ReferredBy = "Referred-By", "referred-by", Some('b');
    /// `Session-Expires` / `x` (RFC 4028).
    SessionExpires = "Session-Expires", "session-expires", Some('x');
    /// `Identity` / `y` (RFC 8224).
    Identity = "Identity", "identity", Some('y');
}

/// The slot of a long form of `len` bytes whose first two bytes are `b0` and `b1`
/// (bit 0x20 set, so that a letter counts in lower case) in [`BY_HASH`]: no two
/// long forms share one.
#[inline(always)]
const fn name_hash(len: usize, b0: u8, b1: u8) -> usize {
    (len + 2 * b0 as usize + 26 * b1 as usize) % 64
}

/// The index in [`HeaderName::ALL`] of the long form in each slot of [`name_hash`]; `u8::MAX` for none.
static BY_HASH: [u8; 64] = {
    let mut t = [u8::MAX; 64];
    let mut i = 0;
    while i < HeaderName::LOWER.len() {
        let b = HeaderName::LOWER[i].as_bytes();
        let h = name_hash(b.len(), b[0] | 0x20, b[1] | 0x20);
        assert!(t[h] == u8::MAX, "two long forms share a slot");
        t[h] = i as u8;
        i += 1;
    }
    t
};

/// Each long form in lower case, in the order of [`HeaderName::ALL`], as its length and
/// three little-endian words (zero-padded; every long form fits).
static LOWER_WORDS: [(usize, [u64; 3]); HeaderName::ALL.len()] = {
    let mut t = [(0, [0; 3]); HeaderName::ALL.len()];
    let mut i = 0;
    while i < t.len() {
        let b = HeaderName::LOWER[i].as_bytes();
        assert!(b.len() <= 24, "a long form longer than three words");
        let mut k = 0;
        while k < b.len() {
            t[i].1[k / 8] |= (b[k] as u64) << (8 * (k % 8));
            k += 1;
        }
        t[i].0 = b.len();
        i += 1;
    }
    t
};

impl HeaderName {
    /// Classifies the name that takes the first `len` bytes of a header line:
    /// [`HeaderName::from_bytes`], finding the one long form the name may be by a
    /// hash of its length and first two bytes, then comparing a word (8 bytes) at a
    /// time when the line has the words to read.
    #[inline(always)]
    pub(crate) fn from_line(line: &[u8], len: usize) -> Self {
        // Bit 0x20 is ignored only where the literal holds a letter (see `eq_lower`).
        const LETTER: u64 = 0x4040_4040_4040_4040;
        let Some(name) = line.get(..len) else { return Self::Other };
        // The words that hold the name (one to three); a compact form is looked up apart.
        if !(2..=24).contains(&len) {
            return Self::from_bytes(name);
        }
        let last = (len - 1) / 8;
        let (Some(whole), [b0, b1, ..]) = (line.get(..8 * last + 8), name) else { return Self::from_bytes(name) };
        let i = usize::from(BY_HASH[name_hash(len, b0 | 0x20, b1 | 0x20)]);
        let (Some(&candidate), Some(&(literal_len, lower))) = (Self::ALL.get(i), LOWER_WORDS.get(i)) else {
            return Self::Other;
        };
        let word =
            |k: usize| whole.get(8 * k..8 * k + 8).map_or(0, |w| u64::from_le_bytes(w.try_into().unwrap_or_default()));
        let same = |k: usize, mask: u64| (word(k) | ((lower[k] & LETTER) >> 1)) & mask == lower[k];
        // The last word holds `len - 8 * last` bytes of the name (the literal is zero past its end).
        let tail = u64::MAX >> (8 * (8 * last + 8 - len));
        let equal = literal_len == len
            && match last {
                0 => same(0, tail),
                1 => same(0, u64::MAX) && same(1, tail),
                _ => same(0, u64::MAX) && same(1, u64::MAX) && same(2, tail),
            };
        if equal {
            candidate
        } else {
            Self::Other
        }
    }

    /// Classifies a header name as written (case-insensitive, compact forms included).
    #[must_use]
    pub fn from_bytes(name: &[u8]) -> Self {
        if let [c] = name {
            // RFC 3261 s.7.3.3: compact forms; RFC 3841, 3515, 3892, 4028, 6665, 8224 add the rest.
            return match c.to_ascii_lowercase() {
                b'v' => Self::Via,
                b'f' => Self::From,
                b't' => Self::To,
                b'i' => Self::CallId,
                b'm' => Self::Contact,
                b'c' => Self::ContentType,
                b'l' => Self::ContentLength,
                b'e' => Self::ContentEncoding,
                b'k' => Self::Supported,
                b's' => Self::Subject,
                b'a' => Self::AcceptContact,
                b'j' => Self::RejectContact,
                b'd' => Self::RequestDisposition,
                b'o' => Self::Event,
                b'u' => Self::AllowEvents,
                b'r' => Self::ReferTo,
                b'b' => Self::ReferredBy,
                b'x' => Self::SessionExpires,
                b'y' => Self::Identity,
                _ => Self::Other,
            };
        }
        match Self::candidate(name) {
            Some(candidate) if eq_lower(name, candidate.lower().as_bytes()) => candidate,
            _ => Self::Other,
        }
    }

    /// The one long form `name` may be, picked by its length and first letter (the
    /// caller compares the whole name); its length is `name.len()`.
    #[inline]
    fn candidate(name: &[u8]) -> Option<Self> {
        let first = name.first().map_or(0, u8::to_ascii_lowercase);
        let second = name.get(1).map_or(0, u8::to_ascii_lowercase);
        Some(match (name.len(), first) {
            (2, b't') => Self::To,
            (3, b'v') => Self::Via,
            (4, b'f') => Self::From,
            (4, b'c') => Self::CSeq,
            (4, b'd') => Self::Date,
            (5, b'r') => Self::Route,
            (5, b'a') => Self::Allow,
            (5, b'e') => Self::Event,
            (7, b'c') if second == b'a' => Self::CallId,
            (7, b'c') => Self::Contact,
            (7, b'r') => Self::Require,
            (7, b'e') => Self::Expires,
            (7, b's') => Self::Subject,
            (8, b'i') => Self::Identity,
            (8, b'r') => Self::ReferTo,
            (9, b's') => Self::Supported,
            (11, b'r') => Self::ReferredBy,
            (12, b'm') => Self::MaxForwards,
            (12, b'c') => Self::ContentType,
            (12, b'r') => Self::RecordRoute,
            (12, b'a') => Self::AllowEvents,
            (14, b'c') => Self::ContentLength,
            (14, b'a') => Self::AcceptContact,
            (14, b'r') => Self::RejectContact,
            (15, b's') => Self::SessionExpires,
            (16, b'c') => Self::ContentEncoding,
            (19, b'c') => Self::ContentDisposition,
            (19, b'p') => Self::PAssertedIdentity,
            (19, b'r') => Self::RequestDisposition,
            _ => return None,
        })
    }

    /// Whether the header may appear at most once (RFC 3261 s.7.3: only headers whose
    /// value is a comma-separated list may be repeated).
    #[must_use]
    pub const fn is_single(self) -> bool {
        matches!(
            self,
            Self::From
                | Self::To
                | Self::CallId
                | Self::CSeq
                | Self::MaxForwards
                | Self::ContentLength
                | Self::ContentType
                | Self::ContentDisposition
                | Self::Expires
                | Self::Date
        )
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Other => f.write_str("extension header"),
            _ => f.write_str(self.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_long_forms_are_the_same_header() {
        for &name in HeaderName::ALL {
            assert_eq!(HeaderName::from_bytes(name.as_str().as_bytes()), name);
            assert_eq!(HeaderName::from_bytes(name.as_str().to_ascii_uppercase().as_bytes()), name);
            assert_eq!(HeaderName::from_bytes(name.as_str().to_ascii_lowercase().as_bytes()), name);
            if let Some(c) = name.compact() {
                assert_eq!(HeaderName::from_bytes(&[c as u8]), name);
                assert_eq!(HeaderName::from_bytes(&[c.to_ascii_uppercase() as u8]), name);
            }
        }
    }

    #[test]
    fn lower_spellings_match() {
        for &name in HeaderName::ALL {
            assert_eq!(name.lower(), name.as_str().to_ascii_lowercase());
            // The alphabet `eq_lower` compares exactly.
            assert!(name.lower().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        }
    }

    #[test]
    fn one_word_compare_matches_from_bytes() {
        let mut names: Vec<String> = Vec::new();
        for &name in HeaderName::ALL {
            let long = name.as_str();
            names.push(long.to_owned());
            names.push(long.to_ascii_uppercase());
            names.push(long.replace('-', "_"));
            names.push(long.replace('-', "\r"));
            names.push(format!("{}x", &long[..long.len() - 1]));
            names.push(long.to_ascii_lowercase().replacen('a', "\u{1}", 1));
        }
        names.extend(["v", "V", "g", "", "X-Foo", "Call-Info", "P-Asserted-Identity2"].map(String::from));
        for name in names {
            for tail in ["", ":", " : value that goes on", "\t:"] {
                let line = format!("{name}{tail}");
                let want = HeaderName::from_bytes(name.as_bytes());
                assert_eq!(HeaderName::from_line(line.as_bytes(), name.len()), want, "{line:?}");
            }
        }
    }

    #[test]
    fn unknown_names() {
        for name in [&b"X-Foo"[..], b"g", b"Vias", b"Call-Info", b"Contact-X", b"", b"P-Asserted-Identity2"] {
            assert_eq!(HeaderName::from_bytes(name), HeaderName::Other, "{:?}", String::from_utf8_lossy(name));
        }
    }
}
