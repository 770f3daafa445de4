//! Entry points of the fuzz targets: each
//! `fuzz/fuzz_targets/<target>.rs` is a one-line call into a function here,
//! and `tests/fuzz_corpus.rs` replays the committed seeds through them.

pub use crate::multipart::fuzzing::multipart;
pub use crate::sdp::fuzzing::sdp;
pub use crate::sip::fuzzing::sip_message;
pub use crate::transaction::sip_transaction;
