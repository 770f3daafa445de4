//! Entry points of the fuzz targets (`fuzz/fuzz_targets/*.rs` call these).
//!
//! - [`msrp_sdp`]: parse, rebuild our own description from what was read,
//!   parse again: the MSRP values are equal.
//! - [`hop_establishment`]: both sides of one hop driven by any event
//!   sequence: no panic, at most one connect per side and per hop, and never
//!   both sides waiting for each other without an error.

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;

use crate::hop::{HopConfig, HopLink, Input, Output};
use crate::media::{LocalMedia, MsrpMedia, MsrpSdp, Setup};
use crate::negotiate::{connect_params, ConnectParams, Side};
use crate::strategy::Trigger;

/// Parses `data` as SDP; for every MSRP description that has a path,
/// writes it back as our own [`LocalMedia`] and parses that again.
///
/// # Panics
/// When the second parse fails or reads different MSRP values.
pub fn msrp_sdp(data: &[u8]) {
    let Ok(sdp) = MsrpSdp::parse(Bytes::copy_from_slice(data)) else { return };
    for m in sdp.media() {
        let local = LocalMedia {
            path: m.path().to_vec(),
            proto: m.proto(),
            accept_types: m.accept_types().to_vec(),
            accept_wrapped_types: m.accept_wrapped_types().to_vec(),
            max_size: m.max_size(),
            setup: m.setup(),
            cema: m.cema(),
            direction: m.direction(),
            rejected: !m.is_active(),
            fingerprint: m.fingerprints().next().map(str::to_owned),
        };
        // A description we cannot write (no path; a host SDP's c= cannot carry) is skipped.
        let Ok(written) = local.to_sdp("- 1 1 IN IP4 192.0.2.1") else { continue };
        let again = MsrpSdp::from_description(&written).unwrap_or_else(|e| panic!("rebuilt SDP rejected: {e}"));
        let [back] = again.media() else { panic!("rebuilt SDP has {} MSRP media", again.media().len()) };
        assert_same(m, back);
    }
}

fn assert_same(a: &MsrpMedia, b: &MsrpMedia) {
    assert_eq!(a.proto(), b.proto());
    assert_eq!(a.is_active(), b.is_active());
    let strs = |m: &MsrpMedia| m.path().iter().map(|u| u.as_str().to_owned()).collect::<Vec<_>>();
    assert_eq!(strs(a), strs(b));
    assert_eq!(a.path(), b.path());
    assert_eq!(a.setup(), b.setup());
    assert_eq!(a.accept_types(), b.accept_types());
    assert_eq!(a.accept_wrapped_types(), b.accept_wrapped_types());
    assert_eq!(a.max_size(), b.max_size());
    assert_eq!(a.cema(), b.cema());
    assert_eq!(a.direction(), b.direction());
    assert_eq!(a.fingerprints().next(), b.fingerprints().next());
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Event {
    Offer,
    Answer,
    Success,
    Ack,
    UpstreamAck,
    FirstSend,
    LinkUpOfferer,
    LinkUpAnswerer,
    LinkDown,
    TimeoutOfferer,
    TimeoutAnswerer,
}

fn setup_of(byte: u8) -> Option<Setup> {
    match byte % 5 {
        0 => None,
        1 => Some(Setup::Active),
        2 => Some(Setup::Passive),
        3 => Some(Setup::Actpass),
        _ => Some(Setup::Holdconn),
    }
}

fn trigger_of(byte: u8) -> Trigger {
    match byte % 3 {
        0 => Trigger::OnSuccessResponse,
        1 => Trigger::OnAck,
        _ => Trigger::OnFirstSend,
    }
}

fn peer(host: &str) -> Option<ConnectParams> {
    let text = format!(
        "v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\nm=message 2855 TCP/MSRP *\r\n\
         a=accept-types:*\r\na=path:msrp://{host}:2855/s;tcp\r\n"
    );
    let sdp = MsrpSdp::parse(Bytes::from(text)).ok()?;
    connect_params(sdp.media().first()?, false)
}

/// Drives the offerer and the answerer of one hop with an arbitrary event
/// sequence (the offer and answer `a=setup` values, the preset and the
/// triggers come from `data` too).
///
/// # Panics
/// When a machine panics, connects twice, returns a usage error for a
/// well-formed input, or both sides wait for each other without a failure.
pub fn hop_establishment(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok((bytes, events)) = <([u8; 6], Vec<Event>)>::arbitrary(&mut u) else { return };
    let [offer_setup, answer_setup, preset, trigger, answerer_trigger, peers] = bytes;
    let offer_setup = setup_of(offer_setup);
    let answer_setup = setup_of(answer_setup);
    let opener = if preset % 2 == 0 { Side::Offerer } else { Side::Answerer };
    let offerer_trigger = trigger_of(trigger);
    let answerer_trigger = trigger_of(answerer_trigger);
    let Ok(mut offerer) = HopLink::new(HopConfig { side: Side::Offerer, opener, trigger: offerer_trigger }) else {
        return;
    };
    let Ok(mut answerer) = HopLink::new(HopConfig { side: Side::Answerer, opener, trigger: answerer_trigger }) else {
        return;
    };
    let offerer_params = if peers & 1 == 0 { peer("192.0.2.1") } else { None };
    let answerer_params = if peers & 2 == 0 { peer("192.0.2.2") } else { None };
    let mut offered = false;
    let mut answered = false;
    let mut waiting = [false; 2];
    for event in events {
        let steps: Vec<(Side, Input)> = match event {
            Event::Offer => {
                offered = true;
                vec![
                    (Side::Offerer, Input::OfferSent { setup: offer_setup }),
                    (Side::Answerer, Input::OfferReceived { setup: offer_setup, peer: offerer_params.clone() }),
                ]
            }
            Event::Answer if offered => {
                answered = true;
                vec![
                    (Side::Answerer, Input::AnswerSent { setup: answer_setup }),
                    (Side::Offerer, Input::AnswerReceived { setup: answer_setup, peer: answerer_params.clone() }),
                ]
            }
            Event::Success if answered => {
                vec![(Side::Answerer, Input::SuccessSent), (Side::Offerer, Input::SuccessReceived)]
            }
            Event::Ack => vec![(Side::Offerer, Input::AckSent), (Side::Answerer, Input::AckReceived)],
            Event::UpstreamAck => vec![(Side::Offerer, Input::UpstreamAck)],
            Event::FirstSend => vec![(Side::Offerer, Input::FirstSend)],
            Event::LinkUpOfferer => vec![(Side::Offerer, Input::LinkUp)],
            Event::LinkUpAnswerer => vec![(Side::Answerer, Input::LinkUp)],
            Event::LinkDown => vec![(Side::Offerer, Input::LinkDown), (Side::Answerer, Input::LinkDown)],
            Event::TimeoutOfferer => vec![(Side::Offerer, Input::Timeout)],
            Event::TimeoutAnswerer => vec![(Side::Answerer, Input::Timeout)],
            Event::Answer | Event::Success => Vec::new(),
        };
        for (side, input) in steps {
            let machine = match side {
                Side::Offerer => &mut offerer,
                Side::Answerer => &mut answerer,
            };
            let result = machine.handle(input);
            assert!(result.is_ok(), "usage error for a well-formed input: {result:?}");
            while let Some(out) = machine.poll_output() {
                if let Output::WaitForPeer { .. } = out {
                    waiting[usize::from(side == Side::Answerer)] = true;
                }
            }
            assert!(machine.connects() <= 1, "{side} connected twice");
        }
    }
    // Both machines saw the same a=setup pair, so they agree on one opener: never both waiting.
    let failed = offerer.is_failed() || answerer.is_failed();
    assert!(!(waiting[0] && waiting[1] && !failed), "both sides wait for each other");
    if let (Some(a), Some(b)) = (offerer.opener(), answerer.opener()) {
        assert_eq!(a, b, "the sides disagree on the opener");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random inputs (xorshift), as a stand-in for a campaign.
    fn inputs(seed: u64, count: usize, len: usize) -> Vec<Vec<u8>> {
        let mut state = seed;
        (0..count)
            .map(|_| {
                (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state.to_le_bytes()[0]
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn hop_establishment_random_sequences() {
        for data in inputs(0x9E37_79B9_7F4A_7C15, 4000, 48) {
            hop_establishment(&data);
        }
    }

    #[test]
    fn msrp_sdp_round_trips_the_vectors() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/sdp");
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        let mut n = 0;
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "sdp") {
                if let Ok(data) = std::fs::read(entry.path()) {
                    msrp_sdp(&data);
                    n += 1;
                }
            }
        }
        assert!(n > 50);
    }

    #[test]
    fn msrp_sdp_mutations_never_panic() {
        let base = b"v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\nm=message 1 TCP/MSRP *\r\n\
a=accept-types:message/cpim text/*\r\na=accept-wrapped-types:*\r\na=path:msrp://h:1/s;tcp msrps://[2001:db8::1]:2/x;tcp\r\n\
a=setup:actpass\r\na=msrp-cema\r\na=max-size:10\r\na=recvonly\r\na=file-selector:name:\"a\" size:1\r\n";
        for (i, noise) in inputs(7, 3000, 3).into_iter().enumerate() {
            let mut data = base.to_vec();
            let at = (i * 7) % data.len();
            if let Some(b) = data.get_mut(at) {
                *b = noise.first().copied().unwrap_or(0);
            }
            msrp_sdp(&data);
        }
    }
}
