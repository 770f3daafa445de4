//! The SIP conformance corpus (`tests/vectors/sip`, copied from the shared
//! vectors with the `sip/` rows of MANIFEST.tsv): `y_` files must print exactly
//! their `.expect.json`, `n_` files must fail, and stream files give the same
//! output whole and at every split size from 1 to 64. Datagram files are fed
//! as one datagram (`sip_dump --datagram`).
//!
//! Implementation-defined (`i_`) files, as this strict parser decides them:
//! - `i_rfc3428_s4_f3_200ok_double_semicolon`: rejected (`;;` is an empty
//!   via-param, as RFC 4475 s.3.1.2.1 rules);
//! - `i_rfc4475_s3_3_1_insuf`: rejected (`missing_header`: no To, From, Call-ID;
//!   the error is recoverable, so a UAS can still try its 400);
//! - `i_sip_lf_only_line_endings`: rejected (`line_ending`: RFC 3261 s.7 requires CRLF);
//! - `i_sip_multipart_missing_boundary`: accepted (SIP framing is fine; the
//!   multipart body is another layer's business).

#![allow(clippy::unwrap_used, reason = "test code")]

use std::path::{Path, PathBuf};

#[expect(dead_code, reason = "the tool's main is not called from the tests")]
#[path = "../examples/sip_dump.rs"]
mod sip_dump;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

struct Entry {
    file: String,
    expect: String,
    datagram: bool,
}

fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(vectors_dir().join("MANIFEST_sip.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let transport = header.iter().position(|c| *c == "transport").unwrap();
    lines
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            Entry { file: cols[0].to_string(), expect: cols[1].to_string(), datagram: cols[transport] == "datagram" }
        })
        .collect()
}

fn run(entry: &Entry, input: &[u8]) -> (Vec<String>, bool) {
    if entry.datagram {
        return sip_dump::dump(input, true, None);
    }
    let whole = sip_dump::dump(input, false, None);
    for split in 1..=64 {
        let got = sip_dump::dump(input, false, Some(split));
        assert_eq!(got, whole, "{}: split {split} differs from whole input", entry.file);
    }
    whole
}

#[test]
fn manifest_covers_every_file() {
    let entries = manifest();
    let files = std::fs::read_dir(vectors_dir().join("sip"))
        .unwrap()
        .filter(|e| !e.as_ref().unwrap().path().to_string_lossy().ends_with(".json"))
        .count();
    assert_eq!(entries.len(), files);
    assert!(entries.len() >= 74, "the corpus was not copied");
    for entry in &entries {
        let expect_file = vectors_dir().join(format!("{}.expect.json", entry.file));
        assert_eq!(entry.expect == "accept", expect_file.exists(), "{}", entry.file);
    }
}

#[test]
fn accepted_vectors_print_their_expectation() {
    let mut count = 0;
    for entry in manifest().iter().filter(|e| e.expect == "accept") {
        let path = vectors_dir().join(&entry.file);
        let input = std::fs::read(&path).unwrap();
        let (lines, ok) = run(entry, &input);
        assert!(ok, "{}: rejected: {lines:?}", entry.file);
        let expect: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{}.expect.json", path.display())).unwrap()).unwrap();
        let got: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(serde_json::Value::Array(got), expect, "{}", entry.file);
        count += 1;
    }
    assert!(count >= 47);
}

#[test]
fn rejected_vectors_fail_the_same_way_at_every_split() {
    for entry in manifest().iter().filter(|e| e.expect == "reject") {
        let input = std::fs::read(vectors_dir().join(&entry.file)).unwrap();
        let (lines, ok) = run(entry, &input);
        assert!(!ok, "{}: accepted: {lines:?}", entry.file);
        let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
        assert!(last["error"].is_string() && last["offset"].as_u64().unwrap() <= input.len() as u64, "{}", entry.file);
    }
}

/// Each rejected file fails for the reason its RFC section gives (kind and offset).
#[test]
fn rejected_vectors_name_their_error() {
    for (file, error, offset) in [
        ("n_rfc4475_appA_test.sip", "start_line", 26),
        ("n_rfc4475_s3_1_2_1_badinv01.sip", "header_value", 217),
        ("n_rfc4475_s3_1_2_2_clerr.sip", "body_truncated", 498),
        ("n_rfc4475_s3_1_2_3_ncl.sip", "content_length", 326),
        ("n_rfc4475_s3_1_2_4_scalar02.sip", "header_value", 174),
        ("n_rfc4475_s3_1_2_5_scalarlg.sip", "header_value", 198),
        ("n_rfc4475_s3_1_2_6_quotbal.sip", "header_value", 41),
        ("n_rfc4475_s3_1_2_8_lwsruri.sip", "request_uri", 28),
        ("n_rfc4475_s3_1_2_10_trws.sip", "start_line", 45),
        ("n_rfc4475_s3_1_2_11_escruri.sip", "request_uri", 27),
        ("n_rfc4475_s3_1_2_12_baddate.sip", "header_value", 282),
        ("n_rfc4475_s3_1_2_13_regbadct.sip", "header_value", 265),
        ("n_rfc4475_s3_1_2_14_badaspec.sip", "header_value", 206),
        ("n_rfc4475_s3_1_2_16_badvers.sip", "version", 33),
        ("n_rfc4475_s3_1_2_18_mismatch02.sip", "cseq_method", 167),
        ("n_rfc4475_s3_1_2_19_bigcode.sip", "status_code", 8),
        ("n_rfc4475_s3_3_8_multi01.sip", "duplicate_header", 197),
        ("n_rfc5118_s4_2_ipv6_bad.sip", "request_uri", 13),
        ("n_sip_content_length_non_numeric.sip", "content_length", 235),
        ("n_sip_empty_file.sip", "incomplete", 0),
        ("n_sip_header_without_colon.sip", "header", 153),
        ("n_sip_missing_empty_line.sip", "incomplete", 212),
        ("n_sip_status_line_missing_code.sip", "status_code", 8),
    ] {
        let entry = manifest().into_iter().find(|e| e.file == format!("sip/{file}")).unwrap();
        let input = std::fs::read(vectors_dir().join(&entry.file)).unwrap();
        let (lines, _) = run(&entry, &input);
        let got: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
        assert_eq!(got, serde_json::json!({"error": error, "offset": offset}), "{file}");
    }
}

#[test]
fn implementation_defined_vectors_are_split_independent() {
    for (file, accepted) in [
        ("i_rfc3428_s4_f3_200ok_double_semicolon.sip", false),
        ("i_rfc4475_s3_3_1_insuf.sip", false),
        ("i_sip_lf_only_line_endings.sip", false),
        ("i_sip_multipart_missing_boundary.sip", true),
    ] {
        let entry = manifest().into_iter().find(|e| e.file == format!("sip/{file}")).unwrap();
        assert_eq!(entry.expect, "impl");
        let input = std::fs::read(vectors_dir().join(&entry.file)).unwrap();
        let (lines, ok) = run(&entry, &input);
        assert_eq!(ok, accepted, "{file}: {lines:?}");
    }
}

/// Datagram vectors read as streams: a stream needs the Content-Length the
/// datagram may omit, and takes what follows the body as the next message.
#[test]
fn datagram_vectors_on_a_stream() {
    let read = |f: &str| std::fs::read(vectors_dir().join("sip").join(f)).unwrap();
    // RFC 4475 s.3.1.1.8: a stream parser sees the spurious INVITE as a second
    // message, then the bytes after its body as the start of a broken third one.
    let (lines, ok) = sip_dump::dump(&read("y_rfc4475_s3_1_1_8_dblreq.sip"), false, None);
    assert!(!ok);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[1].contains("\"method\":\"INVITE\""), "{lines:?}");
    // RFC 4475 s.3.4.1: no Content-Length, which a stream requires.
    let (lines, ok) = sip_dump::dump(&read("y_rfc4475_s3_4_1_inv2543.sip"), false, None);
    assert!(!ok);
    assert!(lines[0].contains("missing_content_length"), "{lines:?}");
    // RFC 4475 s.3.1.2.2: on a stream a too large Content-Length just waits for more.
    let (lines, _) = sip_dump::dump(&read("n_rfc4475_s3_1_2_2_clerr.sip"), false, None);
    assert!(lines[0].contains("incomplete"), "{lines:?}");
}

/// Every accepted vector encodes canonically and parses back to the same message:
/// `parse(encode(m)) == m` (as builders: names as written, values unfolded), and
/// `encode` is stable on its own output.
#[test]
fn accepted_vectors_round_trip() {
    use bytes::Bytes;
    use sip_lite::sip::{parse_datagram, Framer, FramerEvent, Limits, Message};

    for entry in manifest().iter().filter(|e| e.expect == "accept") {
        let input = Bytes::from(std::fs::read(vectors_dir().join(&entry.file)).unwrap());
        let messages: Vec<Message> = if entry.datagram {
            vec![parse_datagram(input, &Limits::default()).unwrap()]
        } else {
            let mut framer = Framer::new(Limits::default());
            framer.handle_segment(input);
            std::iter::from_fn(|| framer.poll_event())
                .map(|e| match e.unwrap() {
                    FramerEvent::Message(m) => m,
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        for message in messages {
            let encoded = message.encode();
            let again = Message::parse(encoded.clone()).unwrap();
            let mut expected = message.to_builder();
            if message.content_length().is_none() {
                expected.header("Content-Length", &message.body().len().to_string());
            }
            assert_eq!(again.to_builder(), expected, "{}", entry.file);
            assert_eq!(again.encode(), encoded, "{}", entry.file);
            assert_eq!(again.body(), message.body(), "{}", entry.file);
        }
    }
}
