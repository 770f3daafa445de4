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
//! - [`capabilities`]: the methods a user agent serves, and the RFC's answer
//!   to a request it does not (OPTIONS, 405 with Allow, 501).
//!
//! No sockets, clocks or threads: the runtime hands over the bytes it read
//! and the time it is.
//!
//! # Limits
//!
//! Everything a peer can make the crate hold or wait for is bounded:
//!
//! | Limit | Default | Past it |
//! |---|---|---|
//! | [`sip::Limits::set_max_head`]: start line and headers | 32 KiB | [`sip::ParseError::HeadTooLong`] (the stream's framing is lost) |
//! | [`sip::Limits::set_max_headers`]: header lines | 128 | [`sip::ParseError::TooManyHeaders`] (the stream's framing is lost) |
//! | [`sip::Limits::set_max_body`]: body | 1 MiB | [`sip::ParseError::BodyTooLarge`] (a request gets 413) |
//! | [`sdp::Limits::max_lines`]: SDP lines | 1024 | [`sdp::SdpError::TooManyLines`] |
//! | [`multipart::DEFAULT_MAX_PARTS`]: body parts | 16 | [`multipart::MultipartError::TooManyParts`] |
//! | [`resource_lists::DEFAULT_MAX_ENTRIES`]: list entries | 100 | [`resource_lists::ResourceListsError::TooManyEntries`] |
//! | [`transaction::TransactionConfig::set_max_server_transactions`]: live server transactions | 4096 | a new request is answered 503 with Retry-After (10 s), statelessly; nothing is kept |
//! | [`ua::UaConfig::set_max_dialogs`]: legs of a user agent or B2BUA | 4096 | a new inbound INVITE is answered 503 with Retry-After |
//! | Timers B and F (RFC 3261 s.17.1): a request without a final response | 64*T1 = 32 s | the transaction ends; 408 to the core |
//! | [`proxy::ProxyConfig::set_timer_c`]: a proxied INVITE after its last 101-199 | 3 min 1 s | CANCEL if a provisional came, else 408 upstream (s.16.8) |
//! | [`ua::UaConfig::set_invite_timeout`]: an outbound INVITE after its last 101-199 | 3 min 1 s | CANCEL; the leg ends [`ua::EndReason::TimedOut`] |
//! | A CANCELled INVITE without a final response (s.9.1) | 64*T1 | the client transaction is destroyed; the leg ends, a proxy answers 408 |
//! | A 2xx without its ACK (s.13.3.1.4) | 64*T1 | the leg ends with BYE ([`ua::EndReason::NoAck`]) |
//! | Timers H, L, M (RFC 3261 s.17.2.1, RFC 6026) | 64*T1 | the transaction ends |
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
pub mod capabilities;
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
