//! Sans-IO SIP (RFC 3261) and SDP (RFC 8866) subset for OMA CPM large
//! message mode: what it takes to negotiate MSRP media links.
//!
//! - [`sip`]: a strict, zero-copy SIP message codec (header values and the
//!   body are slices of the input `Bytes`), stream framing by Content-Length
//!   and datagram framing, typed core headers, and a builder that writes
//!   canonical messages.
//! - [`sdp`]: SDP session descriptions, every line kept in order, typed
//!   `v o s c t m b a`, and a serializer.
//! - [`multipart`] and [`resource_lists`]: the multipart/mixed bodies and
//!   RFC 4826 recipient lists of ad-hoc group INVITEs (RFC 5366).
//! - The machines (RFC 3261 s.12, s.13, s.17, with the RFC 6026 Accepted
//!   state): [`transaction::TransactionLayer`], the dialog-aware
//!   [`ua::UserAgent`], the back-to-back [`b2bua::B2bua`] that fans one
//!   inbound leg out to many outbound legs, and the transaction-stateful
//!   [`proxy::Proxy`]. Each has `handle(now, input)`, `poll_output()` and
//!   `poll_timeout()`: after every `handle`, drain `poll_output` until it
//!   returns `None`, then read `poll_timeout`. Randomness (branches, tags,
//!   Call-IDs) comes from an injected [`ids::IdSource`].
//!
//! No sockets, clocks or threads: the runtime hands over the bytes it read
//! and the time it is.
//!
//! ```
//! use bytes::Bytes;
//! use sip_lite::sdp::SessionDescription;
//! use sip_lite::sip::Message;
//!
//! let sdp = "v=0\r\no=alice 2890844526 2890844527 IN IP4 a.example.com\r\ns=-\r\n\
//!            c=IN IP4 a.example.com\r\nt=0 0\r\nm=message 7654 TCP/MSRP *\r\n\
//!            a=accept-types:message/cpim text/plain\r\n\
//!            a=path:msrp://a.example.com:7654/jshA7weztas;tcp\r\n";
//! let invite = format!(
//!     "INVITE sip:bob@example.com SIP/2.0\r\n\
//!      Via: SIP/2.0/TCP a.example.com;branch=z9hG4bK776asdhds\r\n\
//!      Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\n\
//!      From: <sip:alice@example.com>;tag=1928301774\r\n\
//!      Call-ID: a84b4c76e66710@a.example.com\r\nCSeq: 314159 INVITE\r\n\
//!      Contact: <sip:alice@a.example.com;transport=tcp>\r\n\
//!      Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
//!     sdp.len()
//! );
//! let message = Message::parse(Bytes::from(invite)).unwrap();
//! assert_eq!(message.method(), Some("INVITE"));
//! assert_eq!(message.call_id(), Some("a84b4c76e66710@a.example.com"));
//!
//! let offer = SessionDescription::parse(message.body().clone()).unwrap();
//! let media = &offer.media()[0];
//! assert_eq!(media.proto(), "TCP/MSRP");
//! let path = media.attribute("path").and_then(|a| a.value());
//! assert_eq!(path, Some("msrp://a.example.com:7654/jshA7weztas;tcp"));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod b2bua;
pub mod dialog;
pub mod ids;
pub mod machine;
pub mod multipart;
pub mod proxy;
pub mod resource_lists;
pub mod sdp;
pub mod sip;
pub mod transaction;
pub mod ua;

#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
