//! `msrp_dump [--split N] FILE|-`: parses an MSRP byte stream and prints one
//! JSON line per frame; on the first error, one error line and exit status 1.
//!
//! With `--split N` the input is handed to the framer in N-byte segments, as a
//! socket would deliver it; the output is the same for every N.

use std::io::{Read, Write};
use std::process::ExitCode;

use bytes::Bytes;
use msrp_core::{Flag, FrameHead, Framer, FramerEvent, Limits, ParseError};
use serde::Serialize;

/// One frame, in the tool's public schema (keys in this order).
#[derive(Serialize)]
struct FrameLine<'a> {
    kind: &'static str,
    txid: &'a str,
    method: Option<&'a str>,
    status: Option<u16>,
    comment: Option<&'a str>,
    to_path: Vec<&'a str>,
    from_path: Vec<&'a str>,
    message_id: Option<&'a str>,
    byte_range: Option<(u64, Option<u64>, Option<u64>)>,
    content_type: Option<&'a str>,
    headers: Vec<(&'a str, &'a str)>,
    body_len: Option<u64>,
    flag: String,
}

#[derive(Serialize)]
struct ErrorLine {
    error: &'static str,
    offset: u64,
}

fn frame_line(head: &FrameHead, body_len: Option<u64>, flag: Flag) -> String {
    let line = FrameLine {
        kind: if head.is_request() { "request" } else { "response" },
        txid: head.txid(),
        method: head.method_name(),
        status: head.status_code(),
        comment: head.comment(),
        to_path: head.to_path().collect(),
        from_path: head.from_path().collect(),
        message_id: head.message_id_str(),
        byte_range: head.byte_range().map(|r| (r.start, r.end, r.total)),
        content_type: head.content_type(),
        headers: head.headers().map(|h| (h.name, h.value)).collect(),
        body_len,
        flag: char::from(flag.as_byte()).to_string(),
    };
    serde_json::to_string(&line).unwrap_or_default()
}

fn error_line(error: &ParseError) -> String {
    serde_json::to_string(&ErrorLine { error: error.kind(), offset: error.offset() }).unwrap_or_default()
}

/// Parses `input`, handed over in `split`-byte segments (whole when `None`).
/// Returns the output lines and whether the input was valid.
pub(crate) fn dump(input: &[u8], split: Option<usize>) -> (Vec<String>, bool) {
    let mut framer = Framer::new(Limits::default());
    let mut lines = Vec::new();
    let mut current: Option<(FrameHead, Option<u64>)> = None;
    let size = split.unwrap_or(input.len()).max(1);
    for segment in input.chunks(size) {
        framer.handle_segment(Bytes::copy_from_slice(segment));
        while let Some(event) = framer.poll_event() {
            match event {
                Ok(FramerEvent::Head(head)) => {
                    let body_len = head.has_body().then_some(0);
                    current = Some((head, body_len));
                }
                Ok(FramerEvent::Body(piece)) => {
                    if let Some((_, Some(len))) = &mut current {
                        *len += piece.len() as u64;
                    }
                }
                Ok(FramerEvent::End(flag)) => {
                    if let Some((head, body_len)) = current.take() {
                        lines.push(frame_line(&head, body_len, flag));
                    }
                }
                Ok(FramerEvent::Rejected { error, .. }) | Err(error) => {
                    lines.push(error_line(&error));
                    return (lines, false);
                }
            }
        }
    }
    if let Err(error) = framer.finish() {
        lines.push(error_line(&error));
        return (lines, false);
    }
    if lines.is_empty() {
        // No frame at all: the input ended before the first frame did.
        lines.push(error_line(&ParseError::Incomplete { at: 0 }));
        return (lines, false);
    }
    (lines, true)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut split = None;
    let mut path = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--split" => match args.next().and_then(|n| n.parse::<usize>().ok()).filter(|&n| n > 0) {
                Some(n) => split = Some(n),
                None => {
                    eprintln!("msrp_dump: --split needs a positive number");
                    return ExitCode::from(2);
                }
            },
            _ if path.is_none() => path = Some(arg),
            _ => {
                eprintln!("usage: msrp_dump [--split N] FILE|-");
                return ExitCode::from(2);
            }
        }
    }
    let Some(path) = path else {
        eprintln!("usage: msrp_dump [--split N] FILE|-");
        return ExitCode::from(2);
    };
    let input = if path == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map(|_| buf)
    } else {
        std::fs::read(&path)
    };
    let input = match input {
        Ok(input) => input,
        Err(e) => {
            eprintln!("msrp_dump: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let (lines, ok) = dump(&input, split);
    let mut out = std::io::stdout().lock();
    for line in lines {
        if writeln!(out, "{line}").is_err() {
            return ExitCode::from(2);
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
