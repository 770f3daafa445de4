//! The frames the relay writes itself: answers, rewritten heads, and the
//! check of a streamed body against a new end-line.

use bytes::{BufMut, Bytes, BytesMut};

use crate::id::TransactionId;
use crate::wire::{ByteRange, FailureReport, FrameHead, Method};

/// The response to `request` with `status` and `headers`, from the URI the
/// request was addressed to, to its previous hop (RFC 4975 s.7.2); `None`
/// for a REPORT or a SEND with `Failure-Report: no`. Written straight from
/// the request's validated paths, nothing parsed again; `headers` are the
/// relay's own values.
pub(super) fn answer_to(request: &FrameHead, status: u16, headers: Vec<(&'static str, String)>) -> Option<Bytes> {
    if request.method() == Some(Method::Report)
        || request.failure_report() == Some(FailureReport::No)
        || (status == 200 && request.failure_report() == Some(FailureReport::Partial))
    {
        return None;
    }
    // RFC 4976 s.6.4.3: "For responses to SEND requests there will be no additional URIs,
    // whereas responses to AUTH requests have additional URIs directing the response back to
    // the client": a SEND is answered hop by hop, other requests along their whole From-Path.
    let to_path =
        if request.method() == Some(Method::Send) { request.from_path().next()? } else { request.from_path_str() };
    let from_path = request.to_path().next()?;
    let tid = request.txid();
    let reason = reason(status);
    let extra: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    let mut out = BytesMut::with_capacity(64 + 2 * tid.len() + to_path.len() + from_path.len() + reason.len() + extra);
    out.put_slice(b"MSRP ");
    out.put_slice(tid.as_bytes());
    out.put_slice(format!(" {status} {reason}\r\nTo-Path: ").as_bytes());
    out.put_slice(to_path.as_bytes());
    out.put_slice(b"\r\nFrom-Path: ");
    out.put_slice(from_path.as_bytes());
    out.put_slice(b"\r\n");
    for (name, value) in headers {
        out.put_slice(name.as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"-------");
    out.put_slice(tid.as_bytes());
    out.put_slice(b"$\r\n");
    Some(out.freeze())
}

pub(super) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        408 => "Request Timeout",
        413 => "Message Too Large",
        415 => "Unsupported Media Type",
        423 => "Interval Out-of-Bounds",
        481 => "No Such Session",
        501 => "Not Implemented",
        506 => "Wrong Connection",
        _ => "Error",
    }
}

/// `head` with transaction id `tid`, its first To-Path URI (`moved`)
/// taken off and put in front of its From-Path (RFC 4976 s.6.4.1), the
/// other lines as they came; the blank line after when a body follows.
pub(super) fn rewrite_head(
    head: &FrameHead,
    tid: &str,
    moved: &str,
    body: bool,
    range: Option<ByteRange>,
) -> Option<Bytes> {
    let raw: &[u8] = head.as_bytes();
    let mut out = BytesMut::with_capacity(raw.len() + moved.len() + tid.len() + 8);
    let mut start = 0;
    // RFC 4976 s.6.4.1: "If the MSRP relay has knowledge of the byte range that it will
    // transmit to the next hop, it SHOULD update the Byte-Range header": one the request
    // lacks goes after From-Path.
    let mut range_written = range.is_none();
    for end in memchr::memchr_iter(b'\n', raw) {
        // Each line of a head ends in CRLF (RFC 4975 s.9), checked when it was read.
        let line = raw.get(start..end.saturating_sub(1))?;
        if start == 0 {
            // "MSRP" SP transact-id SP (method / status ...)
            let after = line.strip_prefix(b"MSRP ")?;
            let rest = after.get(memchr::memchr(b' ', after)?..)?;
            out.put_slice(b"MSRP ");
            out.put_slice(tid.as_bytes());
            out.put_slice(rest);
        } else if line.get(..8).is_some_and(|n| n.eq_ignore_ascii_case(b"To-Path:")) {
            let value = line.get(8..)?.trim_ascii_start();
            out.put_slice(b"To-Path: ");
            out.put_slice(value.get(memchr::memchr(b' ', value)? + 1..)?);
        } else if line.get(..10).is_some_and(|n| n.eq_ignore_ascii_case(b"From-Path:")) {
            out.put_slice(b"From-Path: ");
            out.put_slice(moved.as_bytes());
            out.put_u8(b' ');
            out.put_slice(line.get(10..)?.trim_ascii_start());
            if let Some(range) = range.filter(|_| head.byte_range().is_none()) {
                out.put_slice(format!("\r\nByte-Range: {range}").as_bytes());
                range_written = true;
            }
        } else if let Some(range) =
            range.filter(|_| line.get(..11).is_some_and(|n| n.eq_ignore_ascii_case(b"Byte-Range:")))
        {
            out.put_slice(format!("Byte-Range: {range}").as_bytes());
            range_written = true;
        } else {
            out.put_slice(line);
        }
        out.put_slice(b"\r\n");
        start = end + 1;
    }
    if !range_written {
        return None;
    }
    if body {
        out.put_slice(b"\r\n");
    }
    Some(out.freeze())
}

/// Keeps a streamed body from carrying the end-line of the id the relay
/// gave it (RFC 4975 s.7.1: the end-line must not appear in the body). Each
/// piece is searched before it is written, and so is the seam with the
/// bytes written before it; a body that would complete the end-line is cut
/// there (the chunk is aborted): what was written holds at most a prefix of
/// it, which the real end-line that follows does not complete.
#[derive(Debug)]
pub(super) struct EndLineGuard {
    /// `CRLF "-------" transact-id`.
    needle: Vec<u8>,
    /// The last `needle.len() - 1` bytes written (at first the CRLF that
    /// ends the head).
    recent: Vec<u8>,
}

impl EndLineGuard {
    pub(super) fn new(tid: &TransactionId) -> Self {
        let mut needle = b"\r\n-------".to_vec();
        needle.extend_from_slice(tid.as_bytes());
        Self { recent: b"\r\n".to_vec(), needle }
    }

    /// Whether `piece` may be written; `Err` when it would complete the end-line.
    pub(super) fn check(&mut self, piece: &[u8]) -> Result<(), ()> {
        let keep = self.needle.len() - 1;
        let mut seam = Vec::with_capacity(self.recent.len() + keep);
        seam.extend_from_slice(&self.recent);
        seam.extend_from_slice(piece.get(..keep.min(piece.len())).unwrap_or_default());
        if memchr::memmem::find(&seam, &self.needle).is_some() || memchr::memmem::find(piece, &self.needle).is_some() {
            return Err(());
        }
        if piece.len() >= keep {
            self.recent.clear();
            self.recent.extend_from_slice(piece.get(piece.len() - keep..).unwrap_or_default());
        } else {
            self.recent.extend_from_slice(piece);
            let excess = self.recent.len().saturating_sub(keep);
            self.recent.drain(..excess);
        }
        Ok(())
    }
}
