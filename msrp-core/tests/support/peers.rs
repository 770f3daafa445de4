//! What the endpoint and hostile-peer tests share: a predictable id source,
//! the two URIs of a session, and the one real instant a virtual clock
//! starts from.

use std::time::Instant;

use msrp_core::{IdSource, MsrpUri};

/// A linear congruential id source: predictable, for tests only.
pub(crate) struct Counter(pub(crate) u64);

impl IdSource for Counter {
    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            *b = (self.0 >> 33) as u8;
        }
    }
}

/// This side's session URI.
pub(crate) const ME: &str = "msrp://me.example.com:7000/mineMINE0001;tcp";
/// The peer's session URI.
pub(crate) const PEER: &str = "msrp://peer.example.com:9000/theirsTHEIRS1;tcp";

/// A URI the test wrote correctly.
pub(crate) fn uri(s: &str) -> MsrpUri {
    MsrpUri::parse_str(s).unwrap()
}

#[expect(clippy::disallowed_methods, reason = "the test's virtual clock needs one real epoch")]
pub(crate) fn epoch() -> Instant {
    Instant::now()
}
