//! `sdp_dump FILE|-`: parses one SDP body (RFC 8866) and prints one JSON line
//! with its origin, session name, connection, session attributes and media
//! descriptions; on error, one error line and exit status 1.

use std::io::{Read, Write};
use std::process::ExitCode;

use bytes::Bytes;
use serde::Serialize;
use sip_lite::sdp::{Attribute, Connection, SdpError, SessionDescription};

/// One description, in the tool's public schema (keys in this order).
#[derive(Serialize)]
struct SdpLine<'a> {
    origin: &'a str,
    session_name: &'a str,
    connection: Option<&'a str>,
    session_attributes: Vec<(&'a str, Option<&'a str>)>,
    media: Vec<MediaLine<'a>>,
}

/// One media description.
#[derive(Serialize)]
struct MediaLine<'a> {
    media: &'a str,
    port: u16,
    proto: &'a str,
    formats: Vec<&'a str>,
    connection: Option<&'a str>,
    attributes: Vec<(&'a str, Option<&'a str>)>,
}

#[derive(Serialize)]
struct ErrorLine {
    error: &'static str,
    offset: usize,
}

fn pair(a: &Attribute) -> (&str, Option<&str>) {
    (a.name(), a.value())
}

fn sdp_line(sdp: &SessionDescription) -> String {
    let line = SdpLine {
        origin: sdp.origin().as_str(),
        session_name: sdp.session_name(),
        connection: sdp.connection().map(Connection::as_str),
        session_attributes: sdp.attributes().map(pair).collect(),
        media: sdp
            .media()
            .iter()
            .map(|m| MediaLine {
                media: m.media(),
                port: m.port(),
                proto: m.proto(),
                formats: m.formats().collect(),
                connection: m.connection().map(Connection::as_str),
                attributes: m.attributes().map(pair).collect(),
            })
            .collect(),
    };
    serde_json::to_string(&line).unwrap_or_default()
}

fn error_line(error: &SdpError) -> String {
    serde_json::to_string(&ErrorLine { error: error.kind(), offset: error.offset() }).unwrap_or_default()
}

/// Parses `input`; returns the output lines and whether it was valid.
pub(crate) fn dump(input: &[u8]) -> (Vec<String>, bool) {
    match SessionDescription::parse(Bytes::copy_from_slice(input)) {
        Ok(sdp) => (vec![sdp_line(&sdp)], true),
        Err(error) => (vec![error_line(&error)], false),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path] = args.as_slice() else {
        eprintln!("usage: sdp_dump FILE|-");
        return ExitCode::from(2);
    };
    let input = if path == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map(|_| buf)
    } else {
        std::fs::read(path)
    };
    let input = match input {
        Ok(input) => input,
        Err(e) => {
            eprintln!("sdp_dump: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let (lines, ok) = dump(&input);
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
