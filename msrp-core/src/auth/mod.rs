//! RFC 4976 relays seen from a client: AUTH with HTTP Digest
//! ([`digest`]), the client's machine ([`AuthClient`]), and the paths a
//! client behind relays offers and sends to ([`sdp_path`], [`to_path`]).

mod client;
pub mod digest;

pub use client::{sdp_path, to_path, AuthClient, AuthConfig, AuthError, AuthEvent, AuthTransport, RelayAccount};
