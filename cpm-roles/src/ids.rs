//! Ids chosen by the runtime and the injected entropy source.

use std::fmt;
use std::sync::{Arc, Mutex};

pub use msrp_core::router::ConnId;
pub use sip_lite::ids::FlowId;

/// A numeric id newtype: `new`, `get` and a `Display` with `prefix`.
macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident($raw:ty), $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name($raw);

        impl $name {
            /// Wraps a raw number.
            #[must_use]
            pub const fn new(raw: $raw) -> Self {
                Self(raw)
            }
            /// The raw number.
            #[must_use]
            pub const fn get(self) -> $raw {
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

numeric_id!(
    /// One MSRP hop of an entity (its index), named in [`crate::Output::Connect`]
    /// and answered with [`crate::Input::Connected`].
    HopId(u32),
    "hop#"
);

numeric_id!(
    /// One message an IWF handed to its non-CPM system
    /// ([`crate::Event::DeliverToNonCpm`]), named again by the acknowledgement
    /// ([`crate::Input::NonCpmAck`]).
    DeliveryId(u64),
    "delivery-"
);

/// One SIP session of an entity (an INVITE dialog and the MSRP hops it
/// negotiated): the caller names the ones it starts
/// ([`crate::Command::SendMessage`]), the entity numbers the ones a peer
/// starts and reports them with [`crate::Event::SessionStarted`]. The two
/// kinds never collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId {
    raw: u64,
    inbound: bool,
}

impl SessionId {
    /// A session the caller starts.
    #[must_use]
    pub const fn new(raw: u64) -> Self {
        Self { raw, inbound: false }
    }
    /// A session a peer started (the entity numbers these).
    pub(crate) const fn inbound(raw: u64) -> Self {
        Self { raw, inbound: true }
    }
    /// The raw number.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.raw
    }
    /// Whether a peer started it.
    #[must_use]
    pub const fn is_inbound(self) -> bool {
        self.inbound
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-session-{}", if self.inbound { "in" } else { "out" }, self.raw)
    }
}

/// A deterministic xorshift64* entropy source implementing both leaf crates'
/// `IdSource` traits, for the simulator and tests only: one SIP branch it
/// produced reveals its whole state, so every later id (the next MSRP
/// session-id, RFC 4975 s.14.1) can be predicted. A runtime on real sockets
/// MUST inject a CSPRNG instead (`CryptoIds` with the `rand` feature).
#[derive(Clone, Debug)]
pub struct SimulationIds(u64);

impl SimulationIds {
    /// A source seeded with `seed` (0 is replaced by a fixed constant).
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A new independent source derived from this one.
    pub fn fork(&mut self) -> Self {
        Self::new(self.next_u64())
    }

    fn fill_bytes(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let value = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&value[..chunk.len()]);
        }
    }
}

impl msrp_core::IdSource for SimulationIds {
    fn fill(&mut self, out: &mut [u8]) {
        self.fill_bytes(out);
    }
}

impl sip_lite::ids::IdSource for SimulationIds {
    fn fill(&mut self, out: &mut [u8]) {
        self.fill_bytes(out);
    }
}

/// An id source backed by a cryptographic generator of the `rand_core`
/// traits, so a runtime passes the OS generator in one line:
///
/// ```
/// # #[cfg(feature = "rand")] {
/// use cpm_roles::CryptoIds;
/// let ids = CryptoIds::new(rand_core::OsRng);
/// # let _ = ids; }
/// ```
///
/// RFC 4975 s.14.1 asks session-ids of "at least 80 bits of randomness"
/// and RFC 3261 s.19.3 unguessable tags: a `CryptoRng` gives both.
#[cfg(feature = "rand")]
#[derive(Clone, Debug)]
pub struct CryptoIds<R>(R);

#[cfg(feature = "rand")]
impl<R: rand_core::CryptoRng + rand_core::RngCore> CryptoIds<R> {
    /// Ids drawn from `rng`.
    pub const fn new(rng: R) -> Self {
        Self(rng)
    }
}

#[cfg(feature = "rand")]
impl<R: rand_core::CryptoRng + rand_core::RngCore> msrp_core::IdSource for CryptoIds<R> {
    fn fill(&mut self, out: &mut [u8]) {
        self.0.fill_bytes(out);
    }
}

#[cfg(feature = "rand")]
impl<R: rand_core::CryptoRng + rand_core::RngCore> sip_lite::ids::IdSource for CryptoIds<R> {
    fn fill(&mut self, out: &mut [u8]) {
        self.0.fill_bytes(out);
    }
}

/// The entity's one entropy source, shared by its SIP user agent and every
/// MSRP session it creates (each machine holds a clone). A production runtime
/// injects a CSPRNG-backed [`msrp_core::IdSource`]; the simulator a
/// [`SimulationIds`]. Sharing the source (instead of deriving child generators
/// from it) keeps every id as random as the injected source itself.
#[derive(Clone)]
pub(crate) struct SharedIds(Arc<Mutex<Box<dyn msrp_core::IdSource + Send>>>);

impl SharedIds {
    pub(crate) fn new(source: impl msrp_core::IdSource + Send + 'static) -> Self {
        Self(Arc::new(Mutex::new(Box::new(source))))
    }

    fn fill_bytes(&self, out: &mut [u8]) {
        // A poisoned lock only means another holder panicked mid-fill: the
        // source is still usable for random bytes.
        let mut source = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        source.fill(out);
    }
}

impl fmt::Debug for SharedIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedIds")
    }
}

impl msrp_core::IdSource for SharedIds {
    fn fill(&mut self, out: &mut [u8]) {
        self.fill_bytes(out);
    }
}

impl sip_lite::ids::IdSource for SharedIds {
    fn fill(&mut self, out: &mut [u8]) {
        self.fill_bytes(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulation_ids_are_deterministic() {
        let (mut a, mut b) = (SimulationIds::new(42), SimulationIds::new(42));
        let (mut x, mut y) = ([0u8; 13], [0u8; 13]);
        msrp_core::IdSource::fill(&mut a, &mut x);
        sip_lite::ids::IdSource::fill(&mut b, &mut y);
        assert_eq!(x, y);
        assert_ne!(x, [0u8; 13]);
        assert_ne!(SimulationIds::new(1).next_u64(), SimulationIds::new(2).next_u64());
        assert_ne!(SimulationIds::new(0).next_u64(), 0);
    }

    #[test]
    fn shared_ids_draw_from_one_source() {
        let shared = SharedIds::new(SimulationIds::new(42));
        let (mut a, mut b) = (shared.clone(), shared);
        let (mut x, mut y) = ([0u8; 8], [0u8; 8]);
        msrp_core::IdSource::fill(&mut a, &mut x);
        sip_lite::ids::IdSource::fill(&mut b, &mut y);
        let mut reference = SimulationIds::new(42);
        assert_eq!(x, reference.next_u64().to_le_bytes());
        assert_eq!(y, reference.next_u64().to_le_bytes());
    }

    #[cfg(feature = "rand")]
    #[test]
    fn crypto_ids_draw_from_the_generator() {
        let mut ids = CryptoIds::new(rand_core::OsRng);
        let (mut x, mut y) = ([0u8; 16], [0u8; 16]);
        msrp_core::IdSource::fill(&mut ids, &mut x);
        sip_lite::ids::IdSource::fill(&mut ids, &mut y);
        assert_ne!(x, y, "two draws of 128 bits differ");
    }
}
