//! multipart/mixed (RFC 2046) and resource-lists (RFC 4826 / RFC 5366 /
//! RFC 5364) bodies: the RFC 5366 s.6 Figure 3 INVITE body, building the same
//! kind of body, the boundary rules, and seeded round trips.

#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]

use arbitrary::Unstructured;
use bytes::Bytes;
use sip_lite::multipart::{Multipart, MultipartError, Part};
use sip_lite::resource_lists::{self, CopyControl, Entry, ResourceListsError};
use sip_lite::sdp::SessionDescription;

/// RFC 5366 s.6 Figure 3: the body of the INVITE to the conference factory
/// (as in `sip/y_rfc5366_s6_fig3_invite_resource_lists.sip`, CRLF line ends).
const FIG3_CONTENT_TYPE: &str = "multipart/mixed;boundary=\"boundary1\"";
const FIG3_BODY: &str = "--boundary1\r
Content-Type: application/sdp\r
\r
v=0\r
o=alice 2890844526 2890842807 IN IP4 atlanta.example.com\r
s=-\r
c=IN IP4 192.0.2.1\r
t=0 0\r
m=audio 20000 RTP/AVP 0\r
a=rtpmap:0 PCMU/8000\r
m=video 20002 RTP/AVP 31\r
a=rtpmap:31 H261/90000\r
\r
--boundary1\r
Content-Type: application/resource-lists+xml\r
Content-Disposition: recipient-list\r
\r
<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r
<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"\r
          xmlns:cp=\"urn:ietf:params:xml:ns:copyControl\">\r
  <list>\r
    <entry uri=\"sip:bill@example.com\" cp:copyControl=\"to\" />\r
    <entry uri=\"sip:randy@example.net\" cp:copyControl=\"to\"\r
                                       cp:anonymize=\"true\"/>\r
    <entry uri=\"sip:eddy@example.com\" cp:copyControl=\"to\"\r
                                      cp:anonymize=\"true\"/>\r
    <entry uri=\"sip:joe@example.org\" cp:copyControl=\"cc\" />\r
    <entry uri=\"sip:carol@example.net\" cp:copyControl=\"cc\"\r
                                       cp:anonymize=\"true\"/>\r
    <entry uri=\"sip:ted@example.net\" cp:copyControl=\"bcc\" />\r
    <entry uri=\"sip:andy@example.com\" cp:copyControl=\"bcc\" />\r
  </list>\r
</resource-lists>\r
--boundary1--\r
";

fn entry(uri: &str, copy_control: CopyControl, anonymize: bool) -> Entry {
    Entry { uri: uri.into(), display_name: None, copy_control: Some(copy_control), anonymize }
}

#[test]
fn rfc5366_fig3_invite_body() {
    use CopyControl::{Bcc, Cc, To};
    // The SIP message's Content-Length (1166) minus its head: the body is exactly this.
    let sip = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/vectors/sip/y_rfc5366_s6_fig3_invite_resource_lists.sip"
    ));
    if let Ok(sip) = sip {
        assert!(sip.ends_with(FIG3_BODY.as_bytes()), "the constant drifted from the vector");
    }
    let body = Bytes::from_static(FIG3_BODY.as_bytes());
    let multipart = Multipart::parse(FIG3_CONTENT_TYPE, body.clone()).unwrap();
    assert_eq!(multipart.parts().len(), 2);

    let sdp_part = multipart.find_media_type("application/sdp").unwrap();
    // The CRLF before "--boundary1" belongs to the delimiter: the SDP keeps its own last CRLF.
    assert!(sdp_part.body().ends_with(b"a=rtpmap:31 H261/90000\r\n"));
    let sdp = SessionDescription::parse(sdp_part.body().clone()).unwrap();
    assert_eq!(
        sdp.media().iter().map(|m| (m.media(), m.port())).collect::<Vec<_>>(),
        [("audio", 20000), ("video", 20002)]
    );
    // Zero-copy: the SDP body is a slice of the multipart body.
    assert!(body.as_ptr_range().contains(&sdp_part.body().as_ptr()));

    let list_part = multipart.find_disposition(resource_lists::DISPOSITION).unwrap();
    assert_eq!(list_part.media_type().as_deref(), Some(resource_lists::CONTENT_TYPE));
    let entries = resource_lists::read(list_part.body()).unwrap();
    assert_eq!(
        entries,
        [
            entry("sip:bill@example.com", To, false),
            entry("sip:randy@example.net", To, true),
            entry("sip:eddy@example.com", To, true),
            entry("sip:joe@example.org", Cc, false),
            entry("sip:carol@example.net", Cc, true),
            entry("sip:ted@example.net", Bcc, false),
            entry("sip:andy@example.com", Bcc, false),
        ]
    );
    assert!(matches!(
        resource_lists::read_with(list_part.body(), 6),
        Err(ResourceListsError::TooManyEntries { limit: 6, .. })
    ));

    // Rebuilt with the same boundary, the parts split back equal.
    let rebuilt = multipart.build("mixed", Some("boundary1")).unwrap();
    assert_eq!(rebuilt.content_type, FIG3_CONTENT_TYPE);
    assert_eq!(Multipart::parse(&rebuilt.content_type, rebuilt.body).unwrap(), multipart);
}

#[test]
fn build_an_ad_hoc_group_invite_body() {
    let sdp = SessionDescription::builder("alice 1 1 IN IP4 192.0.2.1", "-")
        .line('c', "IN IP4 192.0.2.1")
        .line('t', "0 0")
        .media("message 7654 TCP/MSRP *")
        .attribute("accept-types", Some("message/cpim"))
        .attribute("path", Some("msrp://192.0.2.1:7654/s1;tcp"))
        .build()
        .unwrap();
    let group = vec![
        Entry { display_name: Some("Bob".into()), ..entry("sip:bob@example.com", CopyControl::To, false) },
        Entry::new("sip:carol@example.com"),
    ];
    let parts = Multipart::new(vec![
        Part::new(&[("Content-Type", "application/sdp")], sdp.to_bytes()).unwrap(),
        resource_lists::part(&group).unwrap(),
    ]);
    let built = parts.build("mixed", None).unwrap();
    assert!(built.content_type.starts_with("multipart/mixed;boundary=\""));
    let parsed = Multipart::parse(&built.content_type, built.body).unwrap();
    assert_eq!(parsed, parts);
    let sdp_again =
        SessionDescription::parse(parsed.find_media_type("application/sdp").unwrap().body().clone()).unwrap();
    assert_eq!(sdp_again, sdp);
    let list = parsed.find_disposition("recipient-list").unwrap();
    assert_eq!(resource_lists::read(list.body()).unwrap(), group);
}

#[test]
fn boundary_inside_a_quoted_parameter() {
    let body = Bytes::from_static(b"preamble\r\n--a b:c=d,e\r\n\r\nhello\r\n--a b:c=d,e--\r\nepilogue");
    for ct in [
        "multipart/mixed; boundary=\"a b:c=d,e\"",
        "multipart/mixed; x=\"boundary=zz\"; boundary=\"a b:c=d,e\"",
        "MULTIPART/MIXED;BOUNDARY=\"a b:c=d,e\" ; y=1",
    ] {
        let parts = Multipart::parse(ct, body.clone()).unwrap();
        assert_eq!(parts.parts().len(), 1, "{ct}");
        assert_eq!(&parts.parts()[0].body()[..], b"hello", "{ct}");
    }
    // Unquoted, the value stops at the ';' (a token has no SP).
    assert!(Multipart::parse("multipart/mixed; boundary=a b:c=d,e", body).is_err());
}

#[test]
fn missing_close_delimiter() {
    let body = &FIG3_BODY.as_bytes()[..FIG3_BODY.len() - "--boundary1--\r\n".len()];
    let got = Multipart::parse(FIG3_CONTENT_TYPE, Bytes::copy_from_slice(body));
    assert_eq!(got, Err(MultipartError::MissingCloseDelimiter { at: body.len() }));
    // "--boundary1-" is not a close delimiter either.
    let mut cut = body.to_vec();
    cut.extend_from_slice(b"--boundary1-\r\n");
    assert!(matches!(
        Multipart::parse(FIG3_CONTENT_TYPE, Bytes::from(cut)),
        Err(MultipartError::MissingCloseDelimiter { .. })
    ));
}

#[test]
fn too_many_parts() {
    let got = Multipart::parse_with(FIG3_CONTENT_TYPE, Bytes::from_static(FIG3_BODY.as_bytes()), 1);
    assert!(matches!(got, Err(MultipartError::TooManyParts { limit: 1, .. })));
}

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

#[test]
fn arbitrary_parts_round_trip_through_build_and_split() {
    let mut rng = XorShift(0x00B0_D1E5);
    // Bodies made of delimiter-like pieces, to provoke false matches.
    let pieces: &[&[u8]] = &[b"\r\n", b"--", b"sip-lite-boundary-1", b"x", b" ", b"--\r\n", b"\r\n\r\n", b"\xff"];
    let mut count = 0;
    for case in 0..1000 {
        let data = rng.bytes(256);
        let mut u = Unstructured::new(&data);
        let mut parts = Vec::new();
        let Ok(n) = u.int_in_range(1..=4) else { continue };
        for _ in 0..n {
            let mut body = Vec::new();
            for _ in 0..u.int_in_range(0..=8).unwrap_or(0) {
                body.extend_from_slice(u.choose(pieces).unwrap_or(&&b""[..]));
            }
            let headers: Vec<(String, String)> = (0..u.int_in_range(0..=2).unwrap_or(0))
                .map(|i| (format!("X-H{i}"), format!("v{}", u.arbitrary::<u8>().unwrap_or(0))))
                .collect();
            let headers: Vec<(&str, &str)> = headers.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            parts.push(Part::new(&headers, Bytes::from(body)).unwrap());
        }
        let multipart = Multipart::new(parts);
        let built = multipart.build("mixed", None).unwrap();
        let again = Multipart::parse_with(&built.content_type, built.body.clone(), usize::MAX);
        assert_eq!(again.as_ref(), Ok(&multipart), "case {case}: {:?}", String::from_utf8_lossy(&built.body));
        count += 1;
    }
    assert!(count > 900);
}

fn arbitrary_entries(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<Entry>> {
    let controls = [None, Some(CopyControl::To), Some(CopyControl::Cc), Some(CopyControl::Bcc)];
    (0..u.int_in_range(0..=6)?)
        .map(|_| {
            Ok(Entry {
                uri: u.arbitrary()?,
                display_name: u.arbitrary()?,
                copy_control: *u.choose(&controls)?,
                anonymize: u.arbitrary()?,
            })
        })
        .collect()
}

#[test]
fn arbitrary_entries_round_trip_through_write_and_read() {
    let mut rng = XorShift(0x4826_5366);
    for case in 0..500 {
        let data = rng.bytes(512);
        let mut u = Unstructured::new(&data);
        let Ok(entries) = arbitrary_entries(&mut u) else { continue };
        match resource_lists::write(&entries) {
            Ok(xml) => assert_eq!(resource_lists::read_with(&xml, usize::MAX), Ok(entries), "case {case}"),
            // Only what XML cannot carry is refused.
            Err(ResourceListsError::InvalidEntry { index }) => {
                let e = &entries[index];
                let bad = |c: char| {
                    c.is_control() && !matches!(c, '\t' | '\n' | '\r') || matches!(c, '\u{FFFE}' | '\u{FFFF}')
                };
                assert!(
                    e.uri.is_empty() || e.uri.chars().chain(e.display_name.iter().flat_map(|d| d.chars())).any(bad)
                );
            }
            Err(e) => panic!("case {case}: {e}"),
        }
    }
}

#[cfg(feature = "fuzzing")]
#[test]
fn fuzz_entry_points_accept_the_fig3_body() {
    let mut data = FIG3_CONTENT_TYPE.as_bytes().to_vec();
    data.push(b'\n');
    data.extend_from_slice(FIG3_BODY.as_bytes());
    sip_lite::multipart::fuzzing::multipart(&data);
    sip_lite::sdp::fuzzing::sdp(FIG3_BODY.as_bytes());
}
