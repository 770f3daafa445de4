//! Criterion group `sip_parse`: the strict, zero-copy SIP parser of `sip-lite`
//! on a CPM INVITE with an MSRP SDP offer (about 900 bytes), beside a
//! reference row parsing the same bytes with the `rsip` crate.
//!
//! Benchmark ids (keep them stable so baselines stay comparable):
//! `sip/invite_sdp` (parse and validate every typed header),
//! `sip/invite_sdp_fields` (the same, then read Call-ID, CSeq, the Via
//! branches and the From tag as a transaction layer does),
//! `sdp/msrp_offer` (the INVITE's SDP offer, a `Bytes` slice of the message,
//! parsed by `sip_lite::sdp::SessionDescription::parse`; throughput counts
//! the SDP bytes only),
//! `rsip/invite_sdp` (`rsip::SipMessage::try_from(&[u8])`).
//!
//! Setup checks, outside the timed loops, that both parsers accept the input,
//! so no row can silently time an error path.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_main, Criterion, Throughput};
use sip_lite::sdp::SessionDescription;
use sip_lite::sip::Message;

const SDP: &str = "v=0\r\n\
o=alice 2890844526 2890844527 IN IP4 alicepc.ims.example.net\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=message 7394 TCP/MSRP *\r\n\
a=accept-types:message/cpim application/im-iscomposing+xml\r\n\
a=accept-wrapped-types:text/plain message/imdn+xml application/vnd.gsma.rcs-ft-http+xml\r\n\
a=path:msrp://alicepc.ims.example.net:7394/s111271;tcp\r\n\
a=setup:active\r\n\
a=max-size:1048576\r\n";

/// A CPM large-message INVITE with an MSRP SDP offer.
fn invite() -> Bytes {
    let head = format!(
        "INVITE sip:bob@ims.example.net SIP/2.0\r\n\
Via: SIP/2.0/TCP alicepc.ims.example.net:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:bob@ims.example.net>\r\n\
From: \"Alice\" <sip:alice@ims.example.net>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@alicepc.ims.example.net\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060;transport=tcp>;+g.oma.sip-im.large-message\r\n\
Accept-Contact: *;+g.oma.sip-im.large-message\r\n\
P-Asserted-Identity: \"Alice\" <sip:alice@ims.example.net>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n",
        SDP.len()
    );
    Bytes::from(format!("{head}{SDP}"))
}

fn sip_parse(c: &mut Criterion) {
    let wire = invite();
    let message = Message::parse(wire.clone()).expect("sip-lite accepts the INVITE");
    assert_eq!(message.method(), Some("INVITE"));
    let reference = rsip::SipMessage::try_from(&wire[..]).expect("rsip accepts the INVITE");
    assert!(reference.is_request());
    let offer = message.body();
    assert_eq!(&offer[..], SDP.as_bytes());
    let parsed = SessionDescription::parse(offer.clone()).expect("sip-lite accepts the SDP offer");
    assert_eq!(parsed.media().first().map(|m| m.proto()), Some("TCP/MSRP"));

    let mut group = c.benchmark_group("sip_parse");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("sip/invite_sdp", |b| {
        b.iter(|| Message::parse(black_box(wire.clone())).map(|m| m.header_count()));
    });
    group.bench_function("sip/invite_sdp_fields", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(wire.clone())).ok()?;
            let branch_len = m.vias().map(|v| v.branch().map_or(0, str::len)).sum::<usize>();
            Some((m.call_id().map(str::len), m.cseq().map(|c| c.seq), branch_len, m.from_tag().map(str::len)))
        });
    });
    group.throughput(Throughput::Bytes(offer.len() as u64));
    group.bench_function("sdp/msrp_offer", |b| {
        b.iter(|| SessionDescription::parse(black_box(offer.clone())).map(|s| s.media().len()));
    });
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("rsip/invite_sdp", |b| {
        b.iter(|| rsip::SipMessage::try_from(black_box(&wire[..])).map(|m| m.body().len()));
    });
    group.finish();
}

fn benches() {
    let mut c = Criterion::default().configure_from_args();
    sip_parse(&mut c);
}

criterion_main!(benches);
