//! The SDP conformance corpus (`tests/vectors/sdp`, copied from the shared
//! vectors) through the `msrp_sdp` tool: every accepted file with an
//! `m=message` line prints exactly its `.expect.json`; every rejected file
//! (SDP grammar or MSRP media rule) is an error; files without `m=message`
//! are errors for this tool.

#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]

use std::path::{Path, PathBuf};

#[expect(dead_code, reason = "the tool's main is not called from the tests")]
#[path = "../examples/msrp_sdp.rs"]
mod msrp_sdp;

use msrp_sdp::{dump, Role};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

struct Entry {
    file: String,
    expect: String,
    notes: String,
}

fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(vectors_dir().join("MANIFEST.tsv")).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            Entry { file: cols[0].to_string(), expect: cols[1].to_string(), notes: cols[11].to_string() }
        })
        .collect()
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(vectors_dir().join(file)).unwrap()
}

fn has_message_line(input: &[u8]) -> bool {
    String::from_utf8_lossy(input).lines().any(|l| l.starts_with("m=message "))
}

#[test]
fn manifest_covers_every_file() {
    let entries = manifest();
    let files = std::fs::read_dir(vectors_dir().join("sdp"))
        .unwrap()
        .filter(|e| !e.as_ref().unwrap().path().to_string_lossy().ends_with(".json"))
        .count();
    assert_eq!(entries.len(), files);
}

/// RFC 4975 s.8 and friends: accepted files print their expected objects.
#[test]
fn accepted_vectors_print_expected_json() {
    let mut checked = 0;
    for e in manifest().iter().filter(|e| e.expect == "accept") {
        let input = read(&e.file);
        let (lines, ok) = dump(&input, Role::Offer);
        if !has_message_line(&input) {
            assert!(!ok, "{}: no m=message must be an error for msrp_sdp", e.file);
            continue;
        }
        assert!(ok, "{}: rejected: {lines:?}", e.file);
        let expect: serde_json::Value = serde_json::from_slice(&read(&format!("{}.expect.json", e.file))).unwrap();
        let got: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(serde_json::Value::Array(got), expect, "{}", e.file);
        // Key order is part of the schema.
        for line in &lines {
            assert!(line.starts_with("{\"index\":"), "{line}");
            assert!(line.contains("\"direction\":") && line.ends_with('}'));
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} accepted vectors checked");
}

/// Every `n_` file is rejected (SDP grammar or an item-1 MSRP rule), with one
/// error line naming the rule and the offset of a line start.
#[test]
fn rejected_vectors_are_errors() {
    for e in manifest().iter().filter(|e| e.expect == "reject") {
        let input = read(&e.file);
        let (lines, ok) = dump(&input, Role::Offer);
        assert!(!ok, "{} ({}) accepted: {lines:?}", e.file, e.notes);
        assert_eq!(lines.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert!(v["error"].is_string());
        assert!(v["offset"].as_u64().unwrap() <= input.len() as u64);
    }
}

/// The MSRP-media-level `n_` files fail on the MSRP rule, at the offending line.
#[test]
fn media_level_rejections_name_the_rule() {
    let cases: &[(&str, &str, &str)] = &[
        ("sdp/n_accept_types_comma_separated.sdp", "accept_types", "a=accept-types:"),
        ("sdp/n_accept_types_empty.sdp", "accept_types", "a=accept-types:"),
        ("sdp/n_file_selector_bad_hash.sdp", "file_transfer", "a=file-selector:"),
        ("sdp/n_file_selector_unquoted_name.sdp", "file_transfer", "a=file-selector:"),
        ("sdp/n_max_size_non_numeric.sdp", "max_size", "a=max-size:"),
        ("sdp/n_message_media_missing_accept_types.sdp", "missing_accept_types", "m=message"),
        ("sdp/n_message_media_missing_path.sdp", "missing_path", "m=message"),
        ("sdp/n_path_missing_transport.sdp", "path_uri", "a=path:"),
        ("sdp/n_path_not_msrp_uri.sdp", "path_uri", "a=path:"),
        ("sdp/n_path_uri_without_port.sdp", "path_uri", "a=path:"),
        ("sdp/n_setup_invalid_value.sdp", "setup", "a=setup:"),
    ];
    for (file, kind, line_start) in cases {
        let input = read(file);
        let (lines, ok) = dump(&input, Role::Offer);
        assert!(!ok);
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["error"], *kind, "{file}");
        let at = usize::try_from(v["offset"].as_u64().unwrap()).unwrap();
        assert!(input[at..].starts_with(line_start.as_bytes()), "{file}: offset {at}");
    }
}

/// Implementation-defined files: our decisions, one per file.
#[test]
fn implementation_defined_vectors() {
    let cases: &[(&str, bool)] = &[
        // A repeated a=accept-types is an error (which copy counts is written nowhere).
        ("sdp/i_accept_types_duplicate_attr.sdp", false),
        // SP after "accept-types:" is tolerated (RFC 4976 s.11 prints it).
        ("sdp/i_accept_types_leading_space.sdp", true),
        ("sdp/i_rfc4976_s11_offer_completed.sdp", true),
        ("sdp/i_rfc4976_s11_answer_relay_completed.sdp", true),
        // sip-lite decisions: bare LF accepted, unterminated last line and x= rejected, empty s= accepted.
        ("sdp/i_lf_only_line_endings.sdp", true),
        ("sdp/i_no_final_crlf.sdp", false),
        ("sdp/i_unknown_line_type.sdp", false),
        ("sdp/i_session_name_empty.sdp", true),
        ("sdp/i_trailing_whitespace_on_lines.sdp", false),
        ("sdp/i_rfc5547_s9_1_fig8_offer_sendonly.sdp", true),
        ("sdp/i_rfc5547_s9_1_fig9_answer_recvonly.sdp", true),
        ("sdp/i_rfc5547_s9_2_fig15_offer_recvonly_hash_only.sdp", true),
        ("sdp/i_rfc5547_s9_2_fig16_answer_sendonly.sdp", true),
        ("sdp/i_rfc5547_s9_2_fig19_reoffer.sdp", true),
        ("sdp/i_rfc5547_s9_2_fig20_reanswer.sdp", true),
        ("sdp/i_rfc5547_s6_fig2_file_transfer_offer.sdp", true),
        // No m=message line: an error for msrp_sdp.
        ("sdp/i_rfc3264_s10_1_offer.sdp", false),
        ("sdp/i_rfc3264_s10_1_answer_video_rejected.sdp", false),
        ("sdp/i_rfc5118_s4_8_mult_ip_in_sdp_body.sdp", false),
    ];
    for (file, want) in cases {
        let (lines, ok) = dump(&read(file), Role::Offer);
        assert_eq!(ok, *want, "{file}: {lines:?}");
    }
    // Every impl file is covered by a decision above.
    let impl_files = manifest().into_iter().filter(|e| e.expect == "impl").count();
    assert_eq!(impl_files, cases.len(), "decide every i_ vector");
}

/// RFC 6714: with `--role answer`, c=/m= are used when the answer carries
/// msrp-cema; with the default role, never.
#[test]
fn cema_role_answer_uses_c_and_m() {
    let text = "v=0\r\no=b 1 1 IN IP4 192.0.2.200\r\ns=-\r\nc=IN IP4 192.0.2.99\r\nt=0 0\r\n\
                m=message 40000 TCP/MSRP *\r\na=accept-types:text/plain\r\n\
                a=path:msrp://203.0.113.7:2855/ku3Bd9x;tcp\r\na=setup:passive\r\na=msrp-cema\r\n";
    let connect_to = |role| {
        let (lines, ok) = dump(text.as_bytes(), role);
        assert!(ok);
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        v["connect_to"].as_str().unwrap().to_string()
    };
    assert_eq!(connect_to(Role::Offer), "203.0.113.7:2855");
    assert_eq!(connect_to(Role::Answer), "192.0.2.99:40000");
    // Without msrp-cema in the answer, the path wins even with --role answer.
    let plain = text.replace("a=msrp-cema\r\n", "");
    let (lines, _) = dump(plain.as_bytes(), Role::Answer);
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["connect_to"], "203.0.113.7:2855");
    // The shared vectors: relay answer (c=/m= equal the leftmost path), middlebox answer (peer active).
    let relay = read("sdp/y_rfc6714_cema_answer_via_relay.sdp");
    let (lines, _) = dump(&relay, Role::Answer);
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["connect_to"], "192.0.2.200:9000");
    let middlebox = read("sdp/y_rfc6714_cema_answer_middlebox_address.sdp");
    let (lines, _) = dump(&middlebox, Role::Answer);
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert!(v["connect_to"].is_null());
}
