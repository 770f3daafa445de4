//! `msrp_sdp [--role offer|answer] FILE|-`: reads an SDP body and prints one
//! JSON line per `m=message` description; on an error, one error line and
//! exit status 1.
//!
//! The body is the peer's offer (default), or with `--role answer` the peer's
//! answer to our CEMA offer: then `connect_to` uses `c=`/`m=` when the answer
//! carries `a=msrp-cema` (RFC 6714 s.4.2), else the leftmost `a=path` URI.

use std::io::{Read, Write};
use std::process::ExitCode;

use bytes::Bytes;
use cpm_negotiation::{connect_params, MsrpSdp, Setup};
use serde::Serialize;

/// Whose SDP the input is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The peer's offer.
    Offer,
    /// The peer's answer to our CEMA offer.
    Answer,
}

/// One description, in the tool's public schema (keys in this order).
#[derive(Serialize)]
struct MediaLine<'a> {
    index: usize,
    port: u16,
    proto: &'static str,
    address: Option<&'a str>,
    path: Vec<&'a str>,
    setup: Option<&'static str>,
    accept_types: Vec<&'a str>,
    accept_wrapped_types: Vec<&'a str>,
    max_size: Option<u64>,
    cema: bool,
    direction: &'static str,
    connect_to: Option<String>,
}

#[derive(Serialize)]
struct ErrorLine {
    error: &'static str,
    offset: usize,
}

fn error_line(error: &'static str, offset: usize) -> String {
    serde_json::to_string(&ErrorLine { error, offset }).unwrap_or_default()
}

/// The output lines, and whether the input was valid.
pub(crate) fn dump(input: &[u8], role: Role) -> (Vec<String>, bool) {
    let sdp = match MsrpSdp::parse(Bytes::copy_from_slice(input)) {
        Ok(sdp) => sdp,
        Err(e) => return (vec![error_line(e.kind(), e.offset())], false),
    };
    if sdp.media().is_empty() {
        return (vec![error_line("no_message_media", input.len())], false);
    }
    let lines = sdp
        .media()
        .iter()
        .map(|m| {
            // Under --role answer the SDP answers our CEMA offer: CEMA applies when it says so too.
            let cema = role == Role::Answer && m.cema();
            let peer_active = m.effective_setup() == Some(Setup::Active);
            let connect_to = if peer_active { None } else { connect_params(m, cema).map(|p| p.key.to_string()) };
            let line = MediaLine {
                index: m.index(),
                port: m.port(),
                proto: m.proto().as_str(),
                address: m.address(),
                path: m.path().iter().map(|u| u.as_str()).collect(),
                setup: m.effective_setup().map(Setup::as_str),
                accept_types: m.accept_types().iter().map(|t| t.as_str()).collect(),
                accept_wrapped_types: m.accept_wrapped_types().iter().map(|t| t.as_str()).collect(),
                max_size: m.max_size(),
                cema: m.cema(),
                direction: m.direction().as_str(),
                connect_to,
            };
            serde_json::to_string(&line).unwrap_or_default()
        })
        .collect();
    (lines, true)
}

fn main() -> ExitCode {
    let mut role = Role::Offer;
    let mut file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--role" => match args.next().as_deref() {
                Some("offer") => role = Role::Offer,
                Some("answer") => role = Role::Answer,
                _ => return usage(),
            },
            _ if file.is_none() => file = Some(arg),
            _ => return usage(),
        }
    }
    let Some(file) = file else { return usage() };
    let mut input = Vec::new();
    let read = if file == "-" {
        std::io::stdin().read_to_end(&mut input).map(|_| ())
    } else {
        std::fs::read(&file).map(|bytes| input = bytes)
    };
    if let Err(e) = read {
        eprintln!("msrp_sdp: {file}: {e}");
        return ExitCode::from(2);
    }
    let (lines, ok) = dump(&input, role);
    let mut stdout = std::io::stdout().lock();
    for line in lines {
        if writeln!(stdout, "{line}").is_err() {
            return ExitCode::from(2);
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: msrp_sdp [--role offer|answer] FILE|-");
    ExitCode::from(2)
}
