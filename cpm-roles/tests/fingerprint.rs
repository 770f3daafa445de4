//! Peer-to-peer TLS (RFC 4975 s.14.4): an entity with a certificate
//! fingerprint writes it into every SDP it sends, and the side that opens
//! the link is handed the peer's fingerprints with the connect.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use std::time::Instant;

use bytes::Bytes;
use cpm_negotiation::{Figure, Hop, Preset};
use cpm_roles::{Client, Command, Entity, EntityConfig, FlowId, Input, Output, SessionId, SimulationIds};
use sip_lite::sip::Message;

const A_PRINT: &str = "SHA-256 0A:0B";
const B_PRINT: &str = "SHA-256 1A:1B";

fn config(name: &str, host: &str, fingerprint: &str) -> EntityConfig {
    let mut config = EntityConfig::new(name, host, 2855, Preset::figure(Figure::Seed001Fig1));
    config.msrp_tls = true;
    config.msrp_fingerprint = Some(fingerprint.to_owned());
    config
}

/// Every output of `entity` after `input`.
fn step(entity: &mut dyn Entity, now: Instant, input: Input) -> Vec<Output> {
    entity.handle(now, input).unwrap();
    std::iter::from_fn(|| entity.poll_output()).collect()
}

/// The SIP messages among `outputs`, with their flows.
fn sip(outputs: &[Output]) -> Vec<(FlowId, Bytes)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::SipTransmit { flow, bytes } => Some((*flow, bytes.clone())),
            _ => None,
        })
        .collect()
}

fn contains(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

#[test]
fn each_side_offers_its_fingerprint_and_the_opener_gets_the_peer_s() {
    #[expect(clippy::disallowed_methods, reason = "a test epoch")]
    let now = Instant::now();
    let mut a = Client::sender(
        config("A", "a.example.com", A_PRINT),
        FlowId::new(1),
        Hop::L1,
        "L1",
        now,
        SimulationIds::new(1),
    );
    let mut b = Client::receiver(config("B", "b.example.com", B_PRINT), Hop::L1, "L1", now, SimulationIds::new(2));
    let send = Command::SendMessage {
        session: SessionId::new(1),
        target: "sip:b@b.example.com".into(),
        recipients: Vec::new(),
        content_type: "text/plain".into(),
        body: Bytes::from_static(b"hello"),
    };
    let invite = sip(&step(&mut a, now, Input::Command(send)));
    let (flow, invite) = invite.first().cloned().unwrap();
    assert!(contains(&invite, "m=message 2855 TCP/TLS/MSRP *"), "{invite:?}");
    assert!(contains(&invite, &format!("a=fingerprint:{A_PRINT}\r\n")), "{invite:?}");

    let answers = sip(&step(&mut b, now, Input::SipReceived { flow, message: Message::parse(invite).unwrap() }));
    let ok = answers.into_iter().map(|(_, bytes)| bytes).find(|bytes| bytes.starts_with(b"SIP/2.0 200")).unwrap();
    assert!(contains(&ok, &format!("a=fingerprint:{B_PRINT}\r\n")), "{ok:?}");

    // A, the offerer, opens the link (RFC 4975 s.5.4 default) and must
    // find B's certificate pinned in what it is told to connect to.
    let outputs = step(&mut a, now, Input::SipReceived { flow, message: Message::parse(ok).unwrap() });
    let connect = outputs.iter().find_map(|o| match o {
        Output::Connect { params, .. } => Some(params),
        _ => None,
    });
    let params = connect.unwrap_or_else(|| panic!("A did not connect: {outputs:?}"));
    assert_eq!(params.fingerprints, [B_PRINT]);
    assert!(params.key.is_tls());
}
