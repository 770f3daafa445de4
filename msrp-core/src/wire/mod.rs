//! The stateless wire layer of RFC 4975: frame heads, the streaming framer and the encoder.

pub(crate) mod chars;
mod encode;
mod framer;
mod head;

#[allow(unused_imports, reason = "used by the session module")]
pub(crate) use encode::dashed_id;
pub use encode::{EncodeError, Encoder, Frame, StartLine, Transmit};
pub use framer::{Framer, FramerEvent, Limits};
pub(crate) use head::check_media_type;
pub use head::{ByteRange, FailureReport, Flag, FrameHead, Header, Method, Status};
