//! Identifiers: wire tokens as validated `Bytes`-backed newtypes, and the
//! injected source of randomness.

use std::fmt;

use bytes::Bytes;

use crate::wire::chars::check_ident;

/// A source of random bytes, injected so the library has no RNG of its own.
///
/// Runtimes MUST back it with a CSPRNG: RFC 4975 s.7.1 asks transaction ids to
/// be unguessable. Tests use a counter or a seeded generator.
pub trait IdSource {
    /// Fills `out` with random bytes.
    fn fill(&mut self, out: &mut [u8]);
}

macro_rules! ident_newtype {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Bytes);

        impl $name {
            #[doc = concat!("Validates `ident = ALPHANUM 3*31ident-char` (RFC 4975 s.9) and wraps it as a ", $what, ".")]
            ///
            /// # Errors
            /// `None` when `bytes` is not an `ident`.
            pub fn new(bytes: Bytes) -> Option<Self> {
                check_ident(&bytes).ok().map(|()| Self(bytes))
            }

            /// Validates and copies a string.
            ///
            /// # Errors
            /// `None` when `text` is not an `ident`.
            pub fn from_text(text: &str) -> Option<Self> {
                Self::new(Bytes::copy_from_slice(text.as_bytes()))
            }

            /// Wraps bytes that the framer already validated.
            pub(crate) fn from_validated(bytes: Bytes) -> Self {
                debug_assert!(check_ident(&bytes).is_ok());
                Self(bytes)
            }

            /// A copy sharing nothing with the bytes it was read from: an id
            /// kept for long must not keep its whole read alive.
            pub(crate) fn detached(&self) -> Self {
                Self(Bytes::copy_from_slice(&self.0))
            }

            /// The id as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                // The constructor admits only ASCII ident-chars.
                std::str::from_utf8(&self.0).unwrap_or_default()
            }

            /// The id's bytes, shared.
            #[must_use]
            pub fn as_bytes(&self) -> &Bytes {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }

        #[cfg(feature = "arbitrary")]
        impl<'a> arbitrary::Arbitrary<'a> for $name {
            fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
                const FIRST: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
                const REST: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-+%=";
                let len = u.int_in_range(4..=32usize)?;
                let mut out = Vec::with_capacity(len);
                out.push(*u.choose(FIRST)?);
                for _ in 1..len {
                    out.push(*u.choose(REST)?);
                }
                Ok(Self(Bytes::from(out)))
            }
        }
    };
}

ident_newtype!(
    /// An MSRP transaction id (`transact-id`, RFC 4975 s.7.1, s.9).
    TransactionId,
    "transaction id"
);

ident_newtype!(
    /// An MSRP Message-ID (RFC 4975 s.7.1.1, s.9).
    MessageId,
    "Message-ID"
);

impl TransactionId {
    /// A fresh transaction id of 16 characters carrying 95 random bits.
    ///
    /// RFC 4975 s.7.1: "The transaction identifier MUST NOT collide with that
    /// of other transactions that exist at the same time. Therefore, it MUST
    /// contain at least 64 bits of randomness."
    pub fn generate(source: &mut dyn IdSource) -> Self {
        Self(Bytes::from(random_ident::<16>(source).to_vec()))
    }
}

impl MessageId {
    /// A fresh Message-ID of 16 characters carrying 95 random bits.
    pub fn generate(source: &mut dyn IdSource) -> Self {
        Self(Bytes::from(random_ident::<16>(source).to_vec()))
    }
}

/// `N` alphanumeric characters from `N` random bytes (62 symbols: about 5.95 bits each).
pub(crate) fn random_ident<const N: usize>(source: &mut dyn IdSource) -> [u8; N] {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut raw = [0u8; N];
    source.fill(&mut raw);
    raw.map(|b| ALPHABET[usize::from(b) % ALPHABET.len()])
}
