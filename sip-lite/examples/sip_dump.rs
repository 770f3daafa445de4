//! `sip_dump [--datagram] [--split N] FILE|-`: parses SIP messages and prints
//! one JSON line per message; on the first error, one error line and exit
//! status 1. Input with no message at all is an error too.
//!
//! Without `--datagram` the input is a stream (RFC 3261 s.18.3: Content-Length
//! framing, CRLF keep-alives skipped), handed to the framer in N-byte segments
//! with `--split N`; the output is the same for every N. With `--datagram` the
//! input is exactly one datagram and `--split` is ignored.

use std::io::{Read, Write};
use std::process::ExitCode;

use bytes::Bytes;
use serde::Serialize;
use sip_lite::sip::{parse_datagram, Framer, FramerEvent, Limits, Message, ParseError};

/// One message, in the tool's public schema (keys in this order).
#[derive(Serialize)]
struct MessageLine<'a> {
    kind: &'static str,
    method: Option<&'a str>,
    uri: Option<&'a str>,
    status: Option<u16>,
    reason: Option<&'a str>,
    call_id: Option<&'a str>,
    cseq: Option<(u32, &'a str)>,
    via_branches: Vec<&'a str>,
    from_tag: Option<&'a str>,
    to_tag: Option<&'a str>,
    content_type: Option<String>,
    headers: Vec<(&'a str, String)>,
    body_len: usize,
}

#[derive(Serialize)]
struct ErrorLine {
    error: &'static str,
    offset: u64,
}

fn message_line(message: &Message) -> String {
    let line = MessageLine {
        kind: if message.is_request() { "request" } else { "response" },
        method: message.method(),
        uri: message.request_uri_str(),
        status: message.status_code(),
        reason: message.reason(),
        call_id: message.call_id(),
        cseq: message.cseq().map(|c| (c.seq, c.method)),
        via_branches: message.vias().map(|v| v.branch().unwrap_or_default()).collect(),
        from_tag: message.from_tag(),
        to_tag: message.to_tag(),
        content_type: message
            .headers()
            .find(|h| h.kind == sip_lite::sip::HeaderName::ContentType)
            .map(|h| h.value().into_owned()),
        headers: message.headers().map(|h| (h.name, h.value().into_owned())).collect(),
        body_len: message.body().len(),
    };
    serde_json::to_string(&line).unwrap_or_default()
}

fn error_line(error: &ParseError) -> String {
    serde_json::to_string(&ErrorLine { error: error.kind(), offset: error.offset() }).unwrap_or_default()
}

/// Parses `input` as one datagram, or as a stream handed over in `split`-byte
/// segments (whole when `None`). Returns the output lines and whether the input was valid.
pub(crate) fn dump(input: &[u8], datagram: bool, split: Option<usize>) -> (Vec<String>, bool) {
    let mut lines = Vec::new();
    if datagram {
        return match parse_datagram(Bytes::copy_from_slice(input), &Limits::default()) {
            Ok(message) => (vec![message_line(&message)], true),
            Err(error) => (vec![error_line(&error)], false),
        };
    }
    let mut framer = Framer::new(Limits::default());
    let size = split.unwrap_or(input.len()).max(1);
    for segment in input.chunks(size) {
        framer.handle_segment(Bytes::copy_from_slice(segment));
        while let Some(event) = framer.poll_event() {
            match event {
                Ok(FramerEvent::Message(message)) => lines.push(message_line(&message)),
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
        // No message at all (empty input, or only keep-alives).
        lines.push(error_line(&ParseError::Incomplete { at: input.len() as u64 }));
        return (lines, false);
    }
    (lines, true)
}

fn main() -> ExitCode {
    let usage = "usage: sip_dump [--datagram] [--split N] FILE|-";
    let mut args = std::env::args().skip(1);
    let mut split = None;
    let mut datagram = false;
    let mut path = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--datagram" => datagram = true,
            "--split" => match args.next().and_then(|n| n.parse::<usize>().ok()).filter(|&n| n > 0) {
                Some(n) => split = Some(n),
                None => {
                    eprintln!("sip_dump: --split needs a positive number");
                    return ExitCode::from(2);
                }
            },
            _ if path.is_none() => path = Some(arg),
            _ => {
                eprintln!("{usage}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(path) = path else {
        eprintln!("{usage}");
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
            eprintln!("sip_dump: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let (lines, ok) = dump(&input, datagram, split);
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
