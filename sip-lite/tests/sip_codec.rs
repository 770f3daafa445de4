//! The SIP codec: RFC 4475 s.3.1.2 messages that have no file in the corpus,
//! stream framing (keep-alives, recovery, limits), datagrams, the builder, and
//! a seeded property test: arbitrary valid messages -> encode -> parse -> equal.

#![allow(clippy::unwrap_used, reason = "test code")]

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use sip_lite::sip::{
    parse_datagram, parse_message, Framer, FramerEvent, HeaderName, Limits, Message, MessageBuilder, ParseError,
    Scheme, StartLine, Status,
};

/// What a stream parses to, whatever its split.
#[derive(Debug, PartialEq, Eq)]
enum Item {
    Message(Bytes),
    Rejected(ParseError, Bytes),
    Fatal(ParseError),
}

fn stream(input: &[u8], split: usize, limits: &Limits) -> (Vec<Item>, Result<(), ParseError>) {
    let mut framer = Framer::new(limits.clone());
    let mut items = Vec::new();
    for segment in input.chunks(split.max(1)) {
        framer.handle_segment(Bytes::copy_from_slice(segment));
        while let Some(event) = framer.poll_event() {
            items.push(match event {
                Ok(FramerEvent::Message(m)) => Item::Message(m.as_bytes().clone()),
                Ok(FramerEvent::Rejected { error, head }) => Item::Rejected(error, head),
                Err(error) => Item::Fatal(error),
            });
        }
    }
    (items, framer.finish())
}

/// Parses at every split size and checks they agree.
fn stream_all(input: &[u8], limits: &Limits) -> (Vec<Item>, Result<(), ParseError>) {
    let whole = stream(input, input.len(), limits);
    for split in 1..=input.len().min(80) {
        assert_eq!(stream(input, split, limits), whole, "split {split}");
    }
    whole
}

const OPTIONS: &str = "OPTIONS sip:user@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h.example.com;branch=z9hG4bK1\r\n\
To: <sip:user@example.com>\r\nFrom: <sip:caller@example.net>;tag=1\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\n\
Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

/// The RFC 4475 s.3.1.2 messages the corpus lacks, each one rejected (strict mode).
#[test]
fn rfc4475_invalid_messages_without_a_file() {
    let body = "v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\n\
t=3149328700 0\r\nm=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n";
    let cases: [(&str, String, &str); 4] = [
        // s.3.1.2.7 ltgtruri: "<>" around the Request-URI.
        (
            "ltgtruri",
            format!(
                "INVITE <sip:user@example.com> SIP/2.0\r\nTo: sip:user@example.com\r\nFrom: sip:caller@example.net;tag=39291\r\n\
Max-Forwards: 23\r\nCall-ID: ltgtruri.1@192.0.2.5\r\nCSeq: 1 INVITE\r\nVia: SIP/2.0/UDP 192.0.2.5\r\n\
Contact: <sip:caller@host5.example.net>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
            "request_uri",
        ),
        // s.3.1.2.9 lwsstart: multiple SP separating Request-Line elements.
        (
            "lwsstart",
            format!(
                "INVITE  sip:user@example.com  SIP/2.0\r\nMax-Forwards: 8\r\nTo: sip:user@example.com\r\n\
From: sip:caller@example.net;tag=8814\r\nCall-ID: lwsstart.dfknq234oi243099adsdfnawe3@example.com\r\n\
CSeq: 1893884 INVITE\r\nVia: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw3923\r\n\
Contact: <sip:caller@host1.example.net>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
            "request_uri",
        ),
        // s.3.1.2.15 baddn: non-token characters in an unquoted display name.
        (
            "baddn",
            "OPTIONS sip:t.watson@example.org SIP/2.0\r\nVia:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw\r\n\
Max-Forwards:      70\r\nFrom:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43\r\n\
To:      Watson, Thomas <sip:t.watson@example.org>\r\nCall-ID: baddn.31415@c.example.com\r\n\
Accept: application/sdp\r\nCSeq:    3923239 OPTIONS\r\nl: 0\r\n\r\n"
                .to_owned(),
            "header_value",
        ),
        // s.3.1.2.17 mismatch01: start line and CSeq method mismatch.
        (
            "mismatch01",
            "OPTIONS sip:user@example.com SIP/2.0\r\nTo: sip:j.user@example.com\r\nFrom: sip:caller@example.net;tag=34525\r\n\
Max-Forwards: 6\r\nCall-ID: mismatch01.dj0234sxdfl3\r\nCSeq: 8 INVITE\r\n\
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\r\nl: 0\r\n\r\n"
                .to_owned(),
            "cseq_method",
        ),
    ];
    for (name, text, kind) in cases {
        let error = Message::parse(Bytes::from(text.clone())).unwrap_err();
        assert_eq!(error.kind(), kind, "{name}: {error}");
        let datagram = parse_datagram(Bytes::from(text.clone()), &Limits::default()).unwrap_err();
        assert_eq!(datagram, error, "{name}");
        // The framing survives: a stream goes on after the rejected message.
        let (items, end) = stream_all(format!("{text}{OPTIONS}").as_bytes(), &Limits::default());
        assert!(matches!(&items[..], [Item::Rejected(e, _), Item::Message(_)] if *e == error), "{name}: {items:?}");
        assert_eq!(end, Ok(()));
    }
}

#[test]
fn keep_alives_and_pipelining() {
    let input = format!("\r\n\r\n{OPTIONS}\r\n{OPTIONS}\r\n\r\n");
    let (items, end) = stream_all(input.as_bytes(), &Limits::default());
    assert_eq!(items.len(), 2);
    assert_eq!(end, Ok(()));
    let (_, end) = stream_all(b"\r\n\r", &Limits::default());
    assert_eq!(end, Err(ParseError::Incomplete { at: 3 }));
    let (items, _) = stream_all(b"\r\n\n", &Limits::default());
    assert_eq!(items, [Item::Fatal(ParseError::LineEnding { at: 2 })]);
}

#[test]
fn offsets_are_absolute_in_the_stream() {
    let bad = OPTIONS.replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE");
    let input = format!("{OPTIONS}\r\n{bad}");
    let (items, _) = stream_all(input.as_bytes(), &Limits::default());
    let at = (OPTIONS.len() + 2 + bad.find("INVITE").unwrap()) as u64;
    assert_eq!(items[1], Item::Rejected(ParseError::CSeqMethod { at }, Bytes::from(bad)));
}

#[test]
fn body_is_framed_by_content_length() {
    let text = OPTIONS.replace("Content-Length: 0", "Content-Type: text/plain\r\nContent-Length: 7");
    let input = format!("{text}a\r\n\r\nbc{OPTIONS}");
    let (items, end) = stream_all(input.as_bytes(), &Limits::default());
    let Item::Message(first) = &items[0] else { panic!("{items:?}") };
    let message = Message::parse(first.clone()).unwrap();
    assert_eq!(&message.body()[..], b"a\r\n\r\nbc");
    assert_eq!(message.content_type().unwrap().subtype(), "plain");
    assert_eq!(items.len(), 2);
    assert_eq!(end, Ok(()));
    // Partial, then complete.
    let buf = Bytes::from(input);
    assert_eq!(parse_message(&buf.slice(..text.len() + 3), &Limits::default()), Ok(Status::Partial));
    let Ok(Status::Complete((_, n))) = parse_message(&buf, &Limits::default()) else { panic!() };
    assert_eq!(n, text.len() + 7);
}

#[test]
fn limits_say_whether_the_stream_survives() {
    let mut limits = Limits::default();
    limits.set_max_body(4);
    let text = OPTIONS.replace("Content-Length: 0", "Content-Length: 5");
    let input = format!("{text}12345{OPTIONS}");
    let (items, end) = stream_all(input.as_bytes(), &limits);
    let at = text.len() as u64;
    let error = ParseError::BodyTooLarge { at, limit: 4 };
    assert!(error.is_recoverable());
    assert_eq!(error.status_code(), Some(413));
    assert_eq!(
        items,
        [Item::Rejected(error, Bytes::from(text)), Item::Message(Bytes::from_static(OPTIONS.as_bytes()))]
    );
    assert_eq!(end, Ok(()));

    let mut limits = Limits::default();
    limits.set_max_head(100);
    let (items, _) = stream_all(OPTIONS.as_bytes(), &limits);
    let error = ParseError::HeadTooLong { at: 100, limit: 100 };
    assert!(!error.is_recoverable());
    assert_eq!(items, [Item::Fatal(error)]);

    let mut limits = Limits::default();
    limits.set_max_headers(3);
    let (items, _) = stream_all(OPTIONS.as_bytes(), &limits);
    let at = OPTIONS.find("Call-ID:").unwrap() as u64;
    assert_eq!(items, [Item::Fatal(ParseError::TooManyHeaders { at, limit: 3 })]);

    // A recoverable error without a usable Content-Length loses the stream.
    let bad = OPTIONS.replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE").replace("Content-Length: 0\r\n", "");
    let (items, _) = stream_all(bad.as_bytes(), &Limits::default());
    assert_eq!(items, [Item::Fatal(ParseError::MissingContentLength { at: bad.len() as u64 - 2 })]);
}

#[test]
fn datagrams() {
    let limits = Limits::default();
    // RFC 3261 s.18.3: bytes beyond Content-Length are discarded.
    let d = format!("{OPTIONS}garbage");
    let m = parse_datagram(Bytes::from(d), &limits).unwrap();
    assert_eq!(m.as_bytes().len(), OPTIONS.len());
    // No Content-Length: the body ends with the datagram.
    let d = OPTIONS.replace("Content-Length: 0\r\n", "") + "body";
    let m = parse_datagram(Bytes::from(d), &limits).unwrap();
    assert_eq!((&m.body()[..], m.content_length()), (&b"body"[..], None));
    // Shorter than Content-Length: an error (a request gets 400).
    let d = OPTIONS.replace("Content-Length: 0", "Content-Length: 9") + "body";
    let e = parse_datagram(Bytes::from(d.clone()), &limits).unwrap_err();
    assert_eq!((e, e.status_code()), (ParseError::BodyTruncated { at: d.len() as u64 }, Some(400)));
    assert_eq!(parse_datagram(Bytes::new(), &limits), Err(ParseError::Incomplete { at: 0 }));
}

#[test]
fn typed_accessors() {
    let text = "INVITE sip:bob@example.com;transport=tcp SIP/2.0\r\n\
v: SIP/2.0/TCP a.example.com:5060;branch=z9hG4bK1;rport, SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK2;received=192.0.2.1\r\n\
Via: SIP/2.0/TLS c.example.com;branch=z9hG4bK3;ttl=1;maddr=239.1.1.1\r\n\
Max-Forwards: 70\r\nf: \"Alice A.\" <sip:alice@example.com>;tag=9fx\r\nt: Bob <sip:bob@example.com>\r\n\
i: call-1@example.com\r\nCSeq: 4711 INVITE\r\nm: <sip:alice@192.0.2.1:5062;transport=tcp>;+sip.instance=\"<urn:x>\";expires=60\r\n\
Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\nRecord-Route: <sip:rr.example.com;lr>\r\n\
a: *;+g.oma.sip-im.large-message\r\nP-Asserted-Identity: \"Alice\" <sip:alice@example.com>, <tel:+15551234567>\r\n\
Require: recipient-list-invite\r\nk: timer, 100rel\r\nAllow: INVITE, ACK\r\nExpires: 300\r\n\
Date: Sat, 13 Nov 2010 23:29:00 GMT\r\nContent-Disposition: session;handling=required\r\n\
X-Custom: one, \"two, three\"\r\nc: application/sdp\r\nl: 4\r\n\r\nv=0\n";
    let m = Message::parse(Bytes::from(text)).unwrap();
    assert_eq!(m.request_uri().unwrap().params().get("transport"), Some(Some("tcp")));
    let vias: Vec<_> = m.vias().collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (vias[0].port(), vias[0].rport(), vias[1].host(), vias[1].received()),
        (Some(5060), Some(None), "[2001:db8::1]", Some("192.0.2.1"))
    );
    assert_eq!((vias[2].transport(), vias[2].ttl(), vias[2].maddr()), ("TLS", Some(1), Some("239.1.1.1")));
    assert_eq!(m.from().unwrap().display_name(), Some("\"Alice A.\""));
    assert_eq!((m.from_tag(), m.to_tag(), m.call_id()), (Some("9fx"), None, Some("call-1@example.com")));
    assert_eq!(m.to().unwrap().uri().scheme(), Scheme::Sip);
    let contact = m.contacts().next().unwrap();
    assert_eq!((contact.uri().port(), contact.params().get("expires")), (Some(5062), Some(Some("60"))));
    assert_eq!(m.routes().map(|r| r.uri().host()).collect::<Vec<_>>(), ["p1.example.com", "p2.example.com"]);
    assert_eq!(m.record_routes().count(), 1);
    assert_eq!(m.accept_contacts().next().unwrap().params.get("+g.oma.sip-im.large-message"), Some(None));
    let pai: Vec<_> = m.p_asserted_identities().map(|p| p.uri().scheme()).collect();
    assert_eq!(pai, [Scheme::Sip, Scheme::Tel]);
    assert_eq!(m.require().collect::<Vec<_>>(), ["recipient-list-invite"]);
    assert_eq!(m.supported().collect::<Vec<_>>(), ["timer", "100rel"]);
    assert_eq!(m.allow().collect::<Vec<_>>(), ["INVITE", "ACK"]);
    assert_eq!((m.expires(), m.max_forwards(), m.content_length()), (Some(300), Some(70), Some(4)));
    assert_eq!(m.date(), Some("Sat, 13 Nov 2010 23:29:00 GMT"));
    assert_eq!(m.content_disposition().unwrap().disposition, "session");
    assert!(m.content_type().unwrap().is("application", "sdp"));
    assert_eq!(m.header_values("x-custom").collect::<Vec<_>>(), ["one", "\"two, three\""]);
    assert_eq!(m.header("Supported"), Some("timer, 100rel"));
    assert_eq!(m.headers_named("v").count(), 2);
    assert_eq!(m.headers().find(|h| h.kind == HeaderName::AcceptContact).unwrap().name, "a");
    assert!(!m.is_contact_star());
}

#[test]
fn builder_makes_dialog_messages() {
    let mut invite = MessageBuilder::request("INVITE", "sip:bob@example.com");
    invite
        .header("Via", "SIP/2.0/TCP a.example.com;branch=z9hG4bK74bf9")
        .header("Max-Forwards", "70")
        .header("From", "<sip:alice@example.com>;tag=1")
        .header("To", "<sip:bob@example.com>")
        .header("Call-ID", "c@a")
        .header("CSeq", "1 INVITE")
        .header("Content-Type", "application/sdp")
        .header("Content-Length", "999")
        .body(Bytes::from_static(b"v=0\r\n"));
    let m = invite.build().unwrap();
    assert_eq!(m.content_length(), Some(5));
    assert_eq!(m.header("Content-Length"), Some("5"));
    let mut expected = invite.clone();
    expected.headers_mut()[7].1 = Bytes::from_static(b"5");
    assert_eq!(m.to_builder(), expected);
    let ok = MessageBuilder::response_to(&m, 200, "OK", Some("2")).build().unwrap();
    assert_eq!(
        (ok.status_code(), ok.reason(), ok.to_tag(), ok.call_id()),
        (Some(200), Some("OK"), Some("2"), Some("c@a"))
    );
    assert_eq!(ok.top_via().unwrap().branch(), Some("z9hG4bK74bf9"));
    assert!(matches!(ok.to_builder().start_line(), StartLine::Response { code: 200, .. }));
    // A builder that breaks the grammar does not build.
    let mut bad = MessageBuilder::request("BYE", "sip:bob@example.com");
    bad.header("To", "<sip:bob@example.com>").header("From", "a b c").header("Call-ID", "x").header("CSeq", "2 BYE");
    assert_eq!(bad.build().unwrap_err().kind(), "header_value");
}

/// A valid message drawn from `arbitrary` input, as the builder that makes it.
fn arbitrary_message(u: &mut Unstructured<'_>) -> arbitrary::Result<MessageBuilder> {
    const TOKENS: &[&str] = &["a", "Zz9", "z9hG4bK-1.x", "x~'`!%*_+-.", "INVITE", "MESSAGE", "lr"];
    const USERS: &[&str] = &["a", "Zz9", "alice.b", "+15551234567", "x-y_z!~*'()", "%41b", "a;b=c"];
    const HOSTS: &[&str] = &["example.com", "192.0.2.1", "[2001:db8::1]", "h-1.example.org."];
    const REASONS: &[&str] = &["OK", "", "Ringing", "Caf\u{e9} %41", "Not Found"];
    let pick = |u: &mut Unstructured<'_>, list: &[&'static str]| -> arbitrary::Result<&'static str> {
        u.choose(list).copied()
    };
    let method = pick(u, &["INVITE", "ACK", "BYE", "MESSAGE", "X-Y.z"])?;
    let host = pick(u, HOSTS)?;
    let uri = format!(
        "{}:{}@{host}{}",
        pick(u, &["sip", "sips"])?,
        pick(u, USERS)?,
        pick(u, &["", ":5060", ";transport=tcp;lr"])?
    );
    let mut b = if bool::arbitrary(u)? {
        MessageBuilder::request(method, &uri)
    } else {
        MessageBuilder::response(u.int_in_range(100..=699)?, pick(u, REASONS)?)
    };
    let mut mandatory = vec![
        ("To", format!("<{uri}>")),
        ("From", format!("\"{}\" <sip:{}@{host}>;tag={}", pick(u, TOKENS)?, pick(u, USERS)?, pick(u, TOKENS)?)),
        ("Call-ID", format!("{}@{}", pick(u, TOKENS)?, pick(u, TOKENS)?)),
        ("CSeq", format!("{} {method}", u32::arbitrary(u)?)),
    ];
    let extra = u.int_in_range(0..=8)?;
    for _ in 0..extra {
        let header = match u.int_in_range(0..=7)? {
            0 => ("Via", format!("SIP/2.0/{} {host};branch={}", pick(u, &["UDP", "TCP", "TLS"])?, pick(u, TOKENS)?)),
            1 => ("v", format!("SIP/2.0/TCP {host}:{};rport", u16::arbitrary(u)?)),
            2 => ("Contact", format!("<sip:{}@{host}>;expires={}", pick(u, USERS)?, u32::arbitrary(u)?)),
            3 => ("Route", format!("<sip:{host};lr>")),
            4 => ("Max-Forwards", u8::arbitrary(u)?.to_string()),
            5 => ("Supported", pick(u, &["", "timer", "timer, 100rel"])?.to_owned()),
            6 => ("a", "*;+g.oma.sip-im.large-message".to_owned()),
            _ => ("X-Any", pick(u, &["", "a b  c", "\u{4e2d}\u{6587}", ";;,,"])?.to_owned()),
        };
        if header.0 == "Max-Forwards" && mandatory.iter().any(|(n, _)| *n == "Max-Forwards") {
            continue;
        }
        mandatory.push((header.0, header.1));
    }
    // Headers in an arbitrary order, Content-Length somewhere.
    let length_at = u.int_in_range(0..=mandatory.len())?;
    let body: Vec<u8> = Vec::arbitrary(u)?;
    mandatory.insert(length_at, ("Content-Length", body.len().to_string()));
    for i in (1..mandatory.len()).rev() {
        let j = u.int_in_range(0..=i)?;
        mandatory.swap(i, j);
    }
    for (name, value) in &mandatory {
        b.header(name, value);
    }
    b.body(Bytes::from(body));
    Ok(b)
}

struct Xorshift(u64);

impl Xorshift {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0 as u8
            })
            .collect()
    }
}

#[test]
fn property_encode_parse_round_trip() {
    let mut rng = Xorshift(0x5eed_0f51_97a1);
    let mut built = 0;
    for _ in 0..2000 {
        let data = rng.bytes(256);
        let mut u = Unstructured::new(&data);
        let Ok(builder) = arbitrary_message(&mut u) else { continue };
        let wire = builder.encode();
        let message =
            Message::parse(wire.clone()).unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&wire)));
        assert_eq!(message.to_builder(), builder);
        assert_eq!(message.encode(), wire);
        // Every split of the stream agrees, and so does the datagram reading.
        for split in [1, 7, 64] {
            let (items, end) = stream(&wire, split, &Limits::default());
            assert_eq!((items, end), (vec![Item::Message(wire.clone())], Ok(())));
        }
        assert_eq!(parse_datagram(wire.clone(), &Limits::default()).unwrap(), message);
        built += 1;
    }
    assert!(built > 1000, "{built}");
}

#[cfg(feature = "fuzzing")]
#[test]
fn fuzz_entry_point_on_seeded_noise() {
    let mut rng = Xorshift(42);
    for i in 0..500 {
        let mut data = rng.bytes(1 + i % 200);
        if i % 2 == 0 {
            // Mostly-valid input: a real message with a few bytes flipped.
            let mut m = OPTIONS.as_bytes().to_vec();
            for b in rng.bytes(3) {
                let at = usize::from(b) % m.len();
                m[at] = data[0];
            }
            data = [&data[..1], &m].concat();
        }
        sip_lite::sip::fuzzing::sip_message(&data);
    }
}
