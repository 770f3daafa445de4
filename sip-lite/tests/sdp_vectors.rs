//! The SDP conformance corpus (`tests/vectors/sdp`, copied from the shared
//! vectors with `MANIFEST_sdp.tsv`), the round trips, and a seeded property
//! test: arbitrary valid descriptions serialize and parse back equal.
//!
//! Files without an `m=message` line are labelled for `sdp_dump`: `y_` ones
//! must print exactly their `.expect.json`. Files with one are labelled for
//! the later MSRP layer: here `y_` ones must parse, and `n_` ones whose
//! MANIFEST source or notes make the error an SDP-grammar one (RFC 8866, or a
//! fragment without `v=`/`o=`/`s=`/`t=`) must be rejected by the SDP parser.

#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]

use std::path::{Path, PathBuf};

use arbitrary::{Result as ArbResult, Unstructured};
use bytes::Bytes;
use sip_lite::sdp::{SdpError, SessionDescription};

#[expect(dead_code, reason = "the tool's main is not called from the tests")]
#[path = "../examples/sdp_dump.rs"]
mod sdp_dump;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

struct Entry {
    file: String,
    expect: String,
    source: String,
    notes: String,
}

impl Entry {
    fn input(&self) -> Vec<u8> {
        std::fs::read(vectors_dir().join(&self.file)).unwrap()
    }

    fn has_message_media(&self) -> bool {
        self.input().split(|&b| b == b'\n').any(|l| l.starts_with(b"m=message"))
    }

    /// Whether the MANIFEST blames the SDP grammar (not the MSRP media level).
    fn is_sdp_grammar_error(&self) -> bool {
        self.source.contains("RFC 8866") || self.notes.contains("8866") || self.notes.contains("fragment")
    }
}

fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(vectors_dir().join("MANIFEST_sdp.tsv")).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            Entry {
                file: cols[0].to_string(),
                expect: cols[1].to_string(),
                source: cols[2].to_string(),
                notes: cols[10].to_string(),
            }
        })
        .collect()
}

fn parse(input: &[u8]) -> Result<SessionDescription, SdpError> {
    SessionDescription::parse(Bytes::copy_from_slice(input))
}

#[test]
fn manifest_covers_every_file() {
    let entries = manifest();
    let files = std::fs::read_dir(vectors_dir().join("sdp"))
        .unwrap()
        .filter(|e| !e.as_ref().unwrap().path().to_string_lossy().ends_with(".json"))
        .count();
    assert_eq!(entries.len(), files);
    assert!(entries.len() >= 78, "the corpus was not copied");
}

#[test]
fn sdp_dump_vectors_print_their_expectation() {
    let mut checked = 0;
    for entry in manifest().iter().filter(|e| e.expect == "accept" && !e.has_message_media()) {
        let path = vectors_dir().join(&entry.file);
        let (lines, ok) = sdp_dump::dump(&entry.input());
        assert!(ok, "{}: rejected: {lines:?}", entry.file);
        let expect: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{}.expect.json", path.display())).unwrap()).unwrap();
        let got: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(serde_json::Value::Array(got), expect, "{}", entry.file);
        checked += 1;
    }
    assert_eq!(checked, 3);
}

#[test]
fn sdp_dump_rejects_carry_an_offset_inside_the_input() {
    for entry in manifest().iter().filter(|e| e.expect == "reject" && !e.has_message_media()) {
        let input = entry.input();
        let (lines, ok) = sdp_dump::dump(&input);
        assert!(!ok, "{}: accepted", entry.file);
        let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert!(line["error"].is_string() && line["offset"].as_u64().unwrap() <= input.len() as u64, "{}", entry.file);
    }
}

#[test]
fn accepted_vectors_parse_and_serialize_back_byte_for_byte() {
    let mut count = 0;
    for entry in manifest().iter().filter(|e| e.expect == "accept") {
        let input = entry.input();
        let sdp = parse(&input).unwrap_or_else(|e| panic!("{}: {e}", entry.file));
        // Every accepted vector is canonical (CRLF, no tolerated quirk): encode(parse(b)) == b.
        assert_eq!(sdp.to_bytes(), input, "{}", entry.file);
        assert_eq!(parse(&sdp.to_bytes()).as_ref(), Ok(&sdp), "{}", entry.file);
        count += 1;
    }
    assert!(count >= 34);
}

#[test]
fn sdp_grammar_rejects_are_rejected_and_msrp_level_rejects_are_valid_sdp() {
    let (mut grammar, mut msrp) = (0, 0);
    for entry in manifest().iter().filter(|e| e.expect == "reject") {
        let got = parse(&entry.input());
        if entry.is_sdp_grammar_error() || !entry.has_message_media() {
            let error = got.err().unwrap_or_else(|| panic!("{}: accepted", entry.file));
            assert!(error.offset() <= entry.input().len(), "{}", entry.file);
            grammar += 1;
        } else {
            // Missing a=path, bad accept-types ...: the MSRP layer's job, not SDP's.
            assert!(got.is_ok(), "{}: {got:?}", entry.file);
            msrp += 1;
        }
    }
    assert_eq!((grammar, msrp), (14, 11));
}

#[test]
fn implementation_defined_vectors_follow_the_documented_decisions() {
    // (file, accepted?, error kind) — see the `sdp` module docs.
    let decisions: &[(&str, Option<&str>)] = &[
        ("sdp/i_lf_only_line_endings.sdp", None),
        ("sdp/i_no_final_crlf.sdp", Some("unterminated")),
        ("sdp/i_session_name_empty.sdp", None),
        ("sdp/i_trailing_whitespace_on_lines.sdp", Some("media")),
        ("sdp/i_unknown_line_type.sdp", Some("unknown_type")),
        ("sdp/i_accept_types_leading_space.sdp", None),
        ("sdp/i_accept_types_duplicate_attr.sdp", None),
        ("sdp/i_rfc5118_s4_8_mult_ip_in_sdp_body.sdp", None),
    ];
    let entries = manifest();
    for (file, want) in decisions {
        let entry = entries.iter().find(|e| e.file == *file).unwrap();
        assert_eq!(entry.expect, "impl");
        let got = parse(&entry.input());
        assert_eq!(got.as_ref().err().map(SdpError::kind), *want, "{file}");
    }
    // The remaining impl vectors are RFC examples with an empty s=: accepted.
    for entry in entries.iter().filter(|e| e.expect == "impl") {
        let (lines, ok) = sdp_dump::dump(&entry.input());
        eprintln!("{}: {} {}", entry.file, if ok { "accepted" } else { "rejected" }, lines[0]);
        if !decisions.iter().any(|(f, _)| *f == entry.file) {
            assert!(ok, "{}", entry.file);
        }
    }
}

#[test]
fn lf_only_vector_equals_its_crlf_form() {
    let lf = std::fs::read(vectors_dir().join("sdp/i_lf_only_line_endings.sdp")).unwrap();
    let sdp = parse(&lf).unwrap();
    let crlf: Vec<u8> = lf.iter().flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] }).collect();
    assert_eq!(sdp.to_bytes(), crlf);
    assert_eq!(parse(&crlf).unwrap(), sdp);
}

#[test]
fn errors_name_the_line() {
    let input = std::fs::read(vectors_dir().join("sdp/n_rfc3264_s9_fig1_capabilities_t_before_c.sdp")).unwrap();
    let error = parse(&input).unwrap_err();
    assert_eq!((error.line(), error.kind()), (5, "line_order"));
    assert!(error.to_string().contains("line 5"), "{error}");
    assert!(error.to_string().contains("RFC 8866 s.5"), "{error}");
}

// ---------------------------------------------------------------------------
// Property test: arbitrary valid descriptions round-trip.

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const TOKEN_CHARS: &[u8] = b"abcXYZ019!#$%&'*+-.^_`{|}~";
const TEXT_CHARS: &[&str] = &["a", "Z", "0", " ", ":", "/", "=", "-", "\u{e9}", "\u{1f600}", "\t", "\"", ";", "*"];
const NON_WS_CHARS: &[&str] = &["a", "0", ":", "/", "-", ".", "[", "]", "\u{e9}", "@"];

fn pick_string(u: &mut Unstructured<'_>, alphabet: &[&str], min: usize, max: usize) -> ArbResult<String> {
    let n = u.int_in_range(min..=max)?;
    let mut s = String::new();
    for _ in 0..n {
        s.push_str(u.choose(alphabet)?);
    }
    Ok(s)
}

fn token(u: &mut Unstructured<'_>) -> ArbResult<String> {
    let n = u.int_in_range(1..=8)?;
    (0..n).map(|_| u.choose(TOKEN_CHARS).map(|&b| char::from(b))).collect()
}

fn text(u: &mut Unstructured<'_>, min: usize) -> ArbResult<String> {
    pick_string(u, TEXT_CHARS, min, 12)
}

fn non_ws(u: &mut Unstructured<'_>) -> ArbResult<String> {
    pick_string(u, NON_WS_CHARS, 1, 10)
}

fn digits(u: &mut Unstructured<'_>, min: usize, max: usize) -> ArbResult<String> {
    let n = u.int_in_range(min..=max)?;
    (0..n).map(|_| u.int_in_range(b'0'..=b'9').map(char::from)).collect()
}

fn time(u: &mut Unstructured<'_>) -> ArbResult<String> {
    if u.arbitrary()? {
        return Ok("0".into());
    }
    Ok(format!("{}{}", u.int_in_range(1..=9)?, digits(u, 9, 11)?))
}

fn connection(u: &mut Unstructured<'_>) -> ArbResult<String> {
    Ok(format!("{} {} {}", token(u)?, token(u)?, non_ws(u)?))
}

/// One generated line: type letter and value.
type Lines = Vec<(char, String)>;

/// Per media description: port and formats.
type MediaSummary = Vec<(u16, Vec<String>)>;

fn attributes(u: &mut Unstructured<'_>, lines: &mut Lines) -> ArbResult<()> {
    for _ in 0..u.int_in_range(0..=3)? {
        let name = token(u)?;
        let value = if u.arbitrary()? { format!("{name}:{}", text(u, 0)?) } else { name };
        lines.push(('a', value));
    }
    Ok(())
}

/// A valid description as lines in RFC 8866 s.5 order, with the expected media summary.
fn description(u: &mut Unstructured<'_>) -> ArbResult<(Lines, MediaSummary)> {
    let mut lines: Lines = vec![
        ('v', "0".into()),
        (
            'o',
            format!(
                "{} {} {} {} {} {}",
                non_ws(u)?,
                digits(u, 1, 20)?,
                digits(u, 1, 20)?,
                token(u)?,
                token(u)?,
                non_ws(u)?
            ),
        ),
        ('s', text(u, 0)?),
    ];
    for (letter, max) in [('i', 1), ('u', 1), ('e', 2), ('p', 2)] {
        for _ in 0..u.int_in_range(0..=max)? {
            lines.push((letter, text(u, 1)?));
        }
    }
    let session_c = u.arbitrary()?;
    if session_c {
        lines.push(('c', connection(u)?));
    }
    for _ in 0..u.int_in_range(0..=2)? {
        lines.push(('b', format!("{}:{}", token(u)?, digits(u, 1, 19)?)));
    }
    for _ in 0..u.int_in_range(1..=3)? {
        lines.push(('t', format!("{} {}", time(u)?, time(u)?)));
        for _ in 0..u.int_in_range(0..=2)? {
            lines.push(('r', text(u, 1)?));
        }
    }
    for letter in ['z', 'k'] {
        if u.arbitrary()? {
            lines.push((letter, text(u, 1)?));
        }
    }
    attributes(u, &mut lines)?;
    let mut media = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
        let port: u16 = u.arbitrary()?;
        let count = if u.arbitrary()? { format!("/{}", u.int_in_range(1..=9)?) } else { String::new() };
        let formats: Vec<String> = (0..u.int_in_range(1..=3)?).map(|_| token(u)).collect::<ArbResult<_>>()?;
        lines.push(('m', format!("{} {port}{count} {}/{} {}", token(u)?, token(u)?, token(u)?, formats.join(" "))));
        if u.arbitrary()? {
            lines.push(('i', text(u, 1)?));
        }
        let min_c = if session_c { 0 } else { 1 };
        for _ in 0..u.int_in_range(min_c..=2)? {
            lines.push(('c', connection(u)?));
        }
        for _ in 0..u.int_in_range(0..=1)? {
            lines.push(('b', format!("{}:{}", token(u)?, digits(u, 1, 5)?)));
        }
        if u.arbitrary()? {
            lines.push(('k', text(u, 1)?));
        }
        attributes(u, &mut lines)?;
        media.push((port, formats));
    }
    Ok((lines, media))
}

#[test]
fn arbitrary_valid_descriptions_round_trip() {
    let mut rng = XorShift(0x5EED_5D9B_u64);
    let mut built = 0;
    for case in 0..2000 {
        let data = rng.bytes(512);
        let mut u = Unstructured::new(&data);
        let Ok((lines, media)) = description(&mut u) else { continue };
        let (origin, session_name) = (&lines[1].1, &lines[2].1);
        let mut builder = SessionDescription::builder(origin, session_name);
        for (letter, value) in &lines[3..] {
            builder.line(*letter, value);
        }
        let sdp =
            builder.build().unwrap_or_else(|e| panic!("case {case}: {e}\n{}", String::from_utf8_lossy(builder.text())));
        let bytes = sdp.to_bytes();
        assert_eq!(bytes, builder.text(), "case {case}");
        assert_eq!(parse(&bytes).as_ref(), Ok(&sdp), "case {case}");
        // Bare LF line ends are tolerated and parse to the same description.
        let lf = String::from_utf8(bytes.to_vec()).unwrap().replace("\r\n", "\n");
        assert_eq!(parse(lf.as_bytes()).as_ref(), Ok(&sdp), "case {case}");
        let got: MediaSummary =
            sdp.media().iter().map(|m| (m.port(), m.formats().map(String::from).collect())).collect();
        assert_eq!(got, media, "case {case}");
        let attrs_in = lines.iter().filter(|(l, _)| *l == 'a').count();
        let attrs_out = sdp.attributes().count() + sdp.media().iter().map(|m| m.attributes().count()).sum::<usize>();
        assert_eq!(attrs_in, attrs_out, "case {case}");
        built += 1;
    }
    assert!(built > 1500, "only {built} cases generated");
}

#[cfg(feature = "fuzzing")]
#[test]
fn fuzz_entry_point_accepts_every_vector() {
    for entry in manifest() {
        sip_lite::sdp::fuzzing::sdp(&entry.input());
    }
}
