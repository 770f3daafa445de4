//! SIP messages (RFC 3261 s.7, s.20, s.25): a strict, zero-copy parser, a
//! stream framer, datagram parsing, and an encoder.
//!
//! Like the rest of the crate this module is sans-IO: the runtime hands over
//! the bytes it read ([`Framer::handle_segment`] on a stream,
//! [`parse_datagram`] per datagram), drains [`Framer::poll_event`], and
//! writes what [`MessageBuilder::encode`] produced.
//!
//! The parser is strict, as a conformance tool must be: every message RFC
//! 4475 s.3.1.2 calls invalid is refused, including those the RFC lets a
//! liberal element accept (extra SP in the start line, `<>` around the
//! Request-URI, headers in a SIP Request-URI, a Date not in GMT, `,;?` in an
//! `addr-spec`, LWS inside `<>`, an unquoted display name with non-token
//! characters). A [`Message`] is a validated view: its typed accessors
//! ([`Message::vias`], [`Message::from`], [`Message::cseq`] ...) re-read the
//! header text on each call and hand out slices of it.
//!
//! ```
//! use bytes::Bytes;
//! use sip_lite::sip::{parse_datagram, Limits};
//!
//! let datagram = Bytes::from_static(b"SIP/2.0 180 Ringing\r\n\
//! Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8;received=192.0.2.1\r\n\
//! To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\nFrom: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
//! Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nContent-Length: 0\r\n\r\n");
//! let response = parse_datagram(datagram, &Limits::default()).unwrap();
//! assert_eq!(response.status_code(), Some(180));
//! assert_eq!(response.top_via().unwrap().received(), Some("192.0.2.1"));
//! assert_eq!(response.to_tag(), Some("a6c85cf"));
//! ```

mod builder;
mod chars;
mod error;
mod framer;
mod header;
mod message;
pub mod uri;
mod value;

#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;

pub use builder::{MessageBuilder, StartLine};
pub use error::ParseError;
pub use framer::{Framer, FramerEvent};
pub use header::HeaderName;
pub use message::{parse_datagram, parse_message, Header, Limits, Message, Status};
pub use uri::{Scheme, Uri};
pub use value::{CSeq, ContactPredicate, ContentDisposition, MediaType, NameAddr, Params, Values, Via};
