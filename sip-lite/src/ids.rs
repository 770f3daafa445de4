//! Identifiers of the SIP machines and the injected source of randomness.
//!
//! Every id is a newtype with a private field. [`FlowId`] comes from the
//! runtime; the wire tokens the machines invent (branch, tag, Call-ID) come
//! from an [`IdSource`], so the library holds no RNG of its own.

use std::fmt;

use crate::sip::Message;

/// A source of random bytes, injected so the library has no RNG of its own.
///
/// Runtimes MUST back it with a CSPRNG: RFC 3261 s.8.1.1.7 and s.19.3 ask
/// branches and tags to be globally unique and unguessable. Tests use a
/// counter or a seeded generator. (msrp-core defines the same small trait;
/// a runtime implements both for its source.)
pub trait IdSource {
    /// Fills `out` with random bytes.
    fn fill(&mut self, out: &mut [u8]);
}

impl<T: IdSource + ?Sized> IdSource for Box<T> {
    fn fill(&mut self, out: &mut [u8]) {
        (**self).fill(out);
    }
}

/// The RFC 3261 s.8.1.1.7 magic cookie that starts every branch this stack writes.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// `bytes` random bytes from `ids`, as lower-case hex.
pub fn random_hex(ids: &mut dyn IdSource, bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    ids.fill(&mut raw);
    let mut out = String::with_capacity(bytes * 2);
    for b in raw {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// A fresh branch: the magic cookie and 64 random bits (RFC 3261 s.8.1.1.7).
pub fn new_branch(ids: &mut dyn IdSource) -> String {
    format!("{MAGIC_COOKIE}{}", random_hex(ids, 8))
}

/// A fresh From/To tag: 64 random bits (RFC 3261 s.19.3 asks for at least 32).
pub fn new_tag(ids: &mut dyn IdSource) -> String {
    random_hex(ids, 8)
}

/// A token that is a function of `parts` alone (64-bit FNV-1a of their
/// concatenation, as lower-case hex): for what a stateless element must
/// derive the same way every time, such as the To tag of a stateless
/// response (RFC 3261 s.8.2.7) or a stateless proxy's branch (s.16.11).
pub(crate) fn stateless_token(parts: &[&str]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.iter().flat_map(|part| part.bytes()) {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The To tag of a stateless response to `request` (RFC 3261 s.8.2.7: "the
/// same tag for the same request consistently"): a function of its top Via
/// branch, Call-ID, From tag and CSeq.
#[must_use]
pub fn stateless_tag(request: &Message) -> String {
    let branch = request.top_via().and_then(|v| v.branch()).unwrap_or_default();
    let call_id = request.call_id().unwrap_or_default();
    let from_tag = request.from_tag().unwrap_or_default();
    let seq = request.cseq().map(|c| c.seq).unwrap_or_default().to_string();
    stateless_token(&[branch, "\n", call_id, "\n", from_tag, "\n", &seq])
}

/// A fresh Call-ID: 96 random bits at `host` (RFC 3261 s.8.1.1.4).
pub fn new_call_id(ids: &mut dyn IdSource, host: &str) -> String {
    format!("{}@{host}", random_hex(ids, 12))
}

macro_rules! u64_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        pub struct $name(u64);

        impl $name {
            #[doc = concat!("Wraps a raw ", stringify!($name), ".")]
            #[must_use]
            pub const fn new(raw: u64) -> Self {
                Self(raw)
            }
            /// The raw value.
            #[must_use]
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

u64_id!(
    /// A transport flow chosen by the runtime: a TCP/TLS connection or a UDP
    /// 5-tuple. Every message of a flow goes to the same next hop.
    FlowId,
    "flow-"
);
u64_id!(
    /// A client transaction, chosen by the caller of
    /// [`transaction::Command::Request`](crate::transaction::Command::Request).
    ClientId,
    "client-"
);
u64_id!(
    /// A server transaction, numbered by the transaction layer.
    ServerId,
    "server-"
);
u64_id!(
    /// An out-of-dialog non-INVITE request this side sends (MESSAGE, OPTIONS ...),
    /// chosen by the caller.
    RequestId,
    "request-"
);
u64_id!(
    /// A received non-INVITE request waiting for the caller's response,
    /// numbered by the user agent.
    IncomingId,
    "incoming-"
);

/// One INVITE usage of a user agent (a "leg"): an outbound one the caller
/// named with [`LegId::new`], or an inbound one the user agent numbered.
/// The two kinds never collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct LegId {
    raw: u64,
    inbound: bool,
}

impl LegId {
    /// An outbound leg named by the caller.
    #[must_use]
    pub const fn new(raw: u64) -> Self {
        Self { raw, inbound: false }
    }
    /// An inbound leg (the user agent numbers these).
    #[must_use]
    pub(crate) const fn inbound(raw: u64) -> Self {
        Self { raw, inbound: true }
    }
    /// The raw number.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.raw
    }
    /// Whether the far side started this leg.
    #[must_use]
    pub const fn is_inbound(self) -> bool {
        self.inbound
    }
}

impl fmt::Display for LegId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", if self.inbound { "in" } else { "out" }, self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u8);
    impl IdSource for Counter {
        fn fill(&mut self, out: &mut [u8]) {
            for b in out {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
        }
    }

    #[test]
    fn tokens() {
        let mut ids = Counter(0);
        assert_eq!(new_branch(&mut ids), "z9hG4bK0102030405060708");
        assert_eq!(new_tag(&mut ids), "090a0b0c0d0e0f10");
        assert_eq!(new_call_id(&mut ids, "h"), "1112131415161718191a1b1c@h");
        assert_eq!(LegId::new(3).to_string(), "out-3");
        assert_eq!(LegId::inbound(3).to_string(), "in-3");
        assert_ne!(LegId::new(3), LegId::inbound(3));
        assert_eq!(FlowId::new(7).to_string(), "flow-7");
    }
}
