//! Offer/answer for one hop (RFC 3264, RFC 4975 s.8, RFC 6135, RFC 6714):
//! the answerer's 488 reasons, the offerer's checks of a 200's answer, the
//! sender's intent read by the ISF, and CEMA with and without both sides.

#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]

use bytes::Bytes;
use cpm_negotiation::{
    answer_offer, build_offer, cema_applies, check_answer, AnswerCheck, Capabilities, LocalMedia, MediaType, MsrpSdp,
    Refusal, SendIntent, Setup, Side,
};
use msrp_core::MsrpUri;

fn types(s: &str) -> Vec<MediaType> {
    s.split(' ').filter(|t| !t.is_empty()).map(|t| MediaType::parse_str(t).unwrap()).collect()
}

fn caps(accept: &str, wrapped: &str, max: Option<u64>, cema: bool) -> Capabilities {
    Capabilities { accept_types: types(accept), accept_wrapped_types: types(wrapped), max_size: max, cema }
}

fn uri(s: &str) -> MsrpUri {
    MsrpUri::parse_str(s).unwrap()
}

fn sdp_of(media: &LocalMedia) -> MsrpSdp {
    MsrpSdp::from_description(&media.to_sdp("- 1 1 IN IP4 192.0.2.1").unwrap()).unwrap()
}

fn intent(ct: &str, inner: Option<&str>, size: u64) -> SendIntent {
    SendIntent {
        content_type: MediaType::parse_str(ct).unwrap(),
        wrapped: inner.map(|i| MediaType::parse_str(i).unwrap()),
        size,
    }
}

#[test]
fn sender_offer_carries_intent_and_actpass() {
    let i = intent("message/cpim", Some("image/jpeg"), 5000);
    let offer = build_offer(uri("msrp://192.0.2.1:7654/a;tcp"), &caps("*", "", None, false), Some(&i));
    let text = String::from_utf8(offer.to_sdp("- 1 1 IN IP4 192.0.2.1").unwrap().to_bytes().to_vec()).unwrap();
    for line in [
        "a=accept-types:message/cpim",
        "a=accept-wrapped-types:image/jpeg",
        "a=max-size:5000",
        "a=setup:actpass",
        "a=sendonly",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    // The ISF reads it back.
    let parsed = sdp_of(&offer);
    assert_eq!(SendIntent::from_offer(parsed.first_active().unwrap()), Some(i));
}

#[test]
fn answerer_refusals() {
    let base = "msrp://192.0.2.1:7654/a;tcp";
    let offer_with = |i: Option<SendIntent>, setup: Option<Setup>| {
        let mut o = build_offer(uri(base), &caps("message/cpim text/plain", "", None, false), i.as_ref());
        o.setup = setup;
        sdp_of(&o)
    };
    let me = uri("msrp://192.0.2.2:2855/b;tcp");
    let ours = caps("message/cpim", "text/plain image/*", Some(10_000), false);
    type Case = (&'static str, MsrpSdp, Result<(Setup, Side), Refusal>);
    let cases: Vec<Case> = vec![
        ("plain actpass", offer_with(None, Some(Setup::Actpass)), Ok((Setup::Passive, Side::Offerer))),
        (
            "cpim image fits",
            offer_with(Some(intent("message/cpim", Some("image/png"), 9000)), Some(Setup::Actpass)),
            Ok((Setup::Passive, Side::Offerer)),
        ),
        (
            "too large",
            offer_with(Some(intent("message/cpim", Some("image/png"), 20_000)), Some(Setup::Actpass)),
            Err(Refusal::TooLarge),
        ),
        (
            "unwrapped text refused",
            offer_with(Some(intent("text/plain", None, 10)), Some(Setup::Actpass)),
            Err(Refusal::NoCommonType),
        ),
        (
            "wrapped video refused",
            offer_with(Some(intent("message/cpim", Some("video/mp4"), 10)), Some(Setup::Actpass)),
            Err(Refusal::NoCommonType),
        ),
        ("passive offer", offer_with(None, Some(Setup::Passive)), Err(Refusal::PassiveOffer)),
        ("active offer", offer_with(None, Some(Setup::Active)), Ok((Setup::Passive, Side::Offerer))),
        ("no setup", offer_with(None, None), Ok((Setup::Passive, Side::Offerer))),
    ];
    for (name, offer, want) in cases {
        let got = answer_offer(&offer, me.clone(), &ours, Side::Offerer)
            .map(|a| (a.media.setup.unwrap(), a.negotiated.opener));
        assert_eq!(got, want, "{name}");
    }
    let no_common =
        answer_offer(&offer_with(None, None), me.clone(), &caps("image/png", "", None, false), Side::Offerer);
    assert_eq!(
        no_common.unwrap_err().warning_header("cf.example.com"),
        "399 cf.example.com \"no common content type\""
    );
    let port0 = MsrpSdp::parse(Bytes::from_static(
        b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\nm=message 0 TCP/MSRP *\r\n",
    ))
    .unwrap();
    assert_eq!(answer_offer(&port0, me, &ours, Side::Offerer).unwrap_err(), Refusal::NoMsrpMedia);
}

#[test]
fn preset_in_answer_and_override() {
    let offer = sdp_of(&build_offer(uri("msrp://192.0.2.1:7654/a;tcp"), &caps("*", "", None, false), None));
    let me = uri("msrp://192.0.2.2:2855/b;tcp");
    let a = answer_offer(&offer, me.clone(), &caps("*", "", None, false), Side::Answerer).unwrap();
    assert_eq!(a.media.setup, Some(Setup::Active));
    assert!(!a.preset_overridden);
    assert_eq!(a.negotiated.connect.unwrap().key.to_string(), "192.0.2.1:7654");
    // A third-party peer offering active: answer passive, preset overridden.
    let mut third = build_offer(uri("msrp://192.0.2.1:9/a;tcp"), &caps("*", "", None, false), None);
    third.setup = Some(Setup::Active);
    let a = answer_offer(&sdp_of(&third), me, &caps("*", "", None, false), Side::Answerer).unwrap();
    assert_eq!((a.media.setup, a.preset_overridden, a.negotiated.opener), (Some(Setup::Passive), true, Side::Offerer));
    assert!(a.negotiated.connect.is_none());
}

#[test]
fn offerer_checks_the_answer() {
    let i = intent("message/cpim", Some("text/plain"), 5000);
    let offer = build_offer(uri("msrp://192.0.2.1:7654/a;tcp"), &caps("*", "", None, false), Some(&i));
    let answer = |accept: &str, wrapped: &str, max: Option<u64>, setup: Option<Setup>, rejected: bool| {
        let mut m = LocalMedia::new(uri("msrp://192.0.2.2:2855/b;tcp"), types(accept));
        m.accept_wrapped_types = types(wrapped);
        m.max_size = max;
        m.setup = setup;
        m.rejected = rejected;
        sdp_of(&m)
    };
    let cases: Vec<(&str, MsrpSdp, Result<Side, Refusal>)> = vec![
        ("passive", answer("message/cpim", "text/plain", None, Some(Setup::Passive), false), Ok(Side::Offerer)),
        ("active", answer("message/cpim", "text/*", Some(5000), Some(Setup::Active), false), Ok(Side::Answerer)),
        ("no setup", answer("*", "", None, None, false), Ok(Side::Offerer)),
        (
            "actpass answer",
            answer("*", "", None, Some(Setup::Actpass), false),
            Err(Refusal::SetupMismatch { offer: "actpass", answer: "actpass" }),
        ),
        ("type refused", answer("text/plain", "", None, Some(Setup::Passive), false), Err(Refusal::NoCommonType)),
        ("too small", answer("*", "", Some(4999), Some(Setup::Passive), false), Err(Refusal::TooLarge)),
        ("rejected", answer("*", "", None, None, true), Err(Refusal::Rejected)),
    ];
    for (name, sdp, want) in cases {
        let got = match check_answer(&offer, Some(&i), &sdp) {
            AnswerCheck::Usable(n) => Ok(n.opener),
            AnswerCheck::Failed(r) => Err(r),
            AnswerCheck::Reoffer => panic!("{name}: reoffer"),
        };
        assert_eq!(got, want, "{name}");
    }
}

/// RFC 6714: c=/m= only when both sides carry msrp-cema.
#[test]
fn cema_with_and_without_both_sides() {
    let middlebox_offer = |cema: bool| {
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 198.51.100.99\r\nt=0 0\r\nm=message 40000 TCP/MSRP *\r\n\
             a=accept-types:*\r\na=path:msrp://192.0.2.1:7654/a;tcp\r\na=setup:actpass\r\n{}",
            if cema { "a=msrp-cema\r\n" } else { "" }
        );
        MsrpSdp::parse(Bytes::from(text)).unwrap()
    };
    let me = uri("msrp://192.0.2.2:2855/b;tcp");
    // Both CEMA: the answerer, active, connects to c=/m=.
    let a = answer_offer(&middlebox_offer(true), me.clone(), &caps("*", "", None, true), Side::Answerer).unwrap();
    assert!(a.media.cema && a.negotiated.cema);
    assert_eq!(a.negotiated.connect.unwrap().key.to_string(), "198.51.100.99:40000");
    // We do not do CEMA: the path (RFC 4975), and no msrp-cema in our answer.
    let a = answer_offer(&middlebox_offer(true), me.clone(), &caps("*", "", None, false), Side::Answerer).unwrap();
    assert!(!a.media.cema && !a.negotiated.cema);
    assert_eq!(a.negotiated.connect.unwrap().key.to_string(), "192.0.2.1:7654");
    // RFC 6714 s.4.3: a CEMA answerer refuses a non-CEMA offer whose c=/m= do not match the path.
    assert_eq!(
        answer_offer(&middlebox_offer(false), me, &caps("*", "", None, true), Side::Answerer).unwrap_err(),
        Refusal::CemaMismatch
    );

    // Offerer side.
    let ours = build_offer(uri("msrp://192.0.2.1:7654/a;tcp"), &caps("*", "", None, true), None);
    assert!(ours.cema);
    let answer = |cema: bool, setup: Setup| {
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=message 41000 TCP/MSRP *\r\n\
             a=accept-types:*\r\na=path:msrp://192.0.2.2:2855/b;tcp\r\na=setup:{}\r\n{}",
            setup.as_str(),
            if cema { "a=msrp-cema\r\n" } else { "" }
        );
        MsrpSdp::parse(Bytes::from(text)).unwrap()
    };
    let AnswerCheck::Usable(n) = check_answer(&ours, None, &answer(true, Setup::Passive)) else { panic!() };
    assert_eq!(n.connect.unwrap().key.to_string(), "198.51.100.7:41000");
    assert!(cema_applies(sdp_of(&ours).first_active().unwrap(), answer(true, Setup::Passive).first_active().unwrap()));
    // Answer without msrp-cema, we stay active: RFC 4975 rules, the path.
    let AnswerCheck::Usable(n) = check_answer(&ours, None, &answer(false, Setup::Passive)) else { panic!() };
    assert_eq!(n.connect.unwrap().key.to_string(), "192.0.2.2:2855");
    // Answer without msrp-cema, mismatch, and we would be passive: RFC 6714 s.4.2 re-offer.
    assert_eq!(check_answer(&ours, None, &answer(false, Setup::Active)), AnswerCheck::Reoffer);
}
