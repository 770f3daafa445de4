//! The per-hop machine, table-driven: event sequences taken from the figures
//! of seed 001 and the failure cases of RFC 4145 / RFC 6135.

#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]

use bytes::Bytes;
use cpm_negotiation::{
    connect_params, ConnectParams, Failure, HopConfig, HopInput as I, HopLink, HopOutput as O, MsrpSdp, Refusal, Setup,
    Side, Trigger, UsageError,
};

fn peer() -> ConnectParams {
    let text = "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n\
                m=message 2855 TCP/MSRP *\r\na=accept-types:*\r\na=path:msrp://192.0.2.9:2855/p;tcp\r\n";
    let sdp = MsrpSdp::parse(Bytes::from_static(text.as_bytes())).unwrap();
    connect_params(&sdp.media()[0], false).unwrap()
}

#[derive(Debug)]
enum Want {
    Connect,
    Wait,
    Ready,
    Failed(Failure),
    Overridden(Side, Side),
}

fn matches(out: &O, want: &Want) -> bool {
    match (out, want) {
        (O::Connect { params }, Want::Connect) => *params == peer(),
        (O::WaitForPeer { .. }, Want::Wait) => true,
        (O::Ready, Want::Ready) => true,
        (O::Failed(f), Want::Failed(w)) => f == w,
        (O::PresetOverridden { preset, negotiated }, Want::Overridden(p, n)) => preset == p && negotiated == n,
        _ => false,
    }
}

use Side::{Answerer as Ans, Offerer as Off};
const ACT: Option<Setup> = Some(Setup::Active);
const PAS: Option<Setup> = Some(Setup::Passive);
const AP: Option<Setup> = Some(Setup::Actpass);

/// (name, side, preset opener, trigger, steps: (input, outputs after it))
type Case = (&'static str, Side, Side, Trigger, Vec<(I, Vec<Want>)>);

fn cases() -> Vec<Case> {
    let p = || Some(peer());
    vec![
        // Seed 001 FIG1 S105: A opens L1 on 200#1.
        (
            "fig1 L1 A",
            Off,
            Off,
            Trigger::OnSuccessResponse,
            vec![
                (I::OfferSent { setup: AP }, vec![]),
                (I::AnswerReceived { setup: PAS, peer: p() }, vec![]),
                (I::SuccessReceived, vec![Want::Connect]),
                (I::AckSent, vec![]),
                (I::LinkUp, vec![Want::Ready]),
            ],
        ),
        // FIG1 S105: PF(A) is passive on L1.
        (
            "fig1 L1 PF(A)",
            Ans,
            Off,
            Trigger::OnSuccessResponse,
            vec![
                (I::OfferReceived { setup: AP, peer: p() }, vec![]),
                (I::AnswerSent { setup: PAS }, vec![Want::Wait]),
                (I::SuccessSent, vec![]),
                (I::AckReceived, vec![]),
                (I::LinkUp, vec![Want::Ready]),
            ],
        ),
        // FIG1 S106: PF(A) opens L2 after ACK#1 (its 200#2 came first).
        (
            "fig1 L2 PF(A) on ACK#1",
            Off,
            Off,
            Trigger::OnAck,
            vec![
                (I::OfferSent { setup: AP }, vec![]),
                (I::AnswerReceived { setup: PAS, peer: p() }, vec![]),
                (I::SuccessReceived, vec![]),
                (I::AckSent, vec![]),
                (I::UpstreamAck, vec![Want::Connect]),
                (I::LinkUp, vec![Want::Ready]),
            ],
        ),
        // FIG1 S110 (CF, trigger ACK#2 arriving before 200#3): connect on 200#3.
        (
            "fig1 L3 CF ACK#2 first",
            Off,
            Off,
            Trigger::OnAck,
            vec![
                (I::OfferSent { setup: AP }, vec![]),
                (I::UpstreamAck, vec![]),
                (I::AnswerReceived { setup: PAS, peer: p() }, vec![]),
                (I::SuccessReceived, vec![Want::Connect]),
            ],
        ),
        // FIG1 S110 variant: CF opens L3 on SEND#2.
        (
            "fig1 L3 CF on SEND#2",
            Off,
            Off,
            Trigger::OnFirstSend,
            vec![
                (I::OfferSent { setup: AP }, vec![]),
                (I::AnswerReceived { setup: PAS, peer: p() }, vec![]),
                (I::SuccessReceived, vec![]),
                (I::UpstreamAck, vec![]),
                (I::FirstSend, vec![Want::Connect]),
                (I::FirstSend, vec![]),
                (I::LinkUp, vec![Want::Ready]),
            ],
        ),
        // FIG3 S204: PF(A) opens L1 after ACK#1.
        (
            "fig3 L1 PF(A)",
            Ans,
            Ans,
            Trigger::OnAck,
            vec![
                (I::OfferReceived { setup: AP, peer: p() }, vec![]),
                (I::AnswerSent { setup: ACT }, vec![]),
                (I::SuccessSent, vec![]),
                (I::AckReceived, vec![Want::Connect]),
                (I::LinkUp, vec![Want::Ready]),
            ],
        ),
        // FIG3: A waits on L1.
        (
            "fig3 L1 A",
            Off,
            Ans,
            Trigger::OnAck,
            vec![
                (I::OfferSent { setup: AP }, vec![]),
                (I::AnswerReceived { setup: ACT, peer: p() }, vec![Want::Wait]),
                (I::SuccessReceived, vec![]),
                (I::AckSent, vec![]),
                (I::LinkUp, vec![Want::Ready]),
            ],
        ),
        // FIG5 S304: B opens L4 after ACK#4.
        (
            "fig5 L4 B",
            Ans,
            Ans,
            Trigger::OnAck,
            vec![
                (I::OfferReceived { setup: AP, peer: p() }, vec![]),
                (I::AnswerSent { setup: ACT }, vec![]),
                (I::SuccessSent, vec![]),
                (I::AckReceived, vec![Want::Connect]),
            ],
        ),
        // A third-party peer offers active: the preset (answerer opens) is overridden.
        (
            "override: offer active",
            Ans,
            Ans,
            Trigger::OnAck,
            vec![
                (I::OfferReceived { setup: ACT, peer: p() }, vec![]),
                (I::AnswerSent { setup: PAS }, vec![Want::Overridden(Ans, Off), Want::Wait]),
                (I::AckReceived, vec![]),
                (I::LinkUp, vec![Want::Ready]),
            ],
        ),
        // An answerer goes active although the preset wanted the offerer: the offerer waits.
        (
            "override: answer active",
            Off,
            Off,
            Trigger::OnAck,
            vec![
                (I::OfferSent { setup: AP }, vec![]),
                (I::AnswerReceived { setup: ACT, peer: p() }, vec![Want::Overridden(Off, Ans), Want::Wait]),
            ],
        ),
        // The answerer overridden to active uses the ACK trigger.
        (
            "override: offerer preset, answerer active",
            Ans,
            Off,
            Trigger::OnSuccessResponse,
            vec![
                (I::OfferReceived { setup: AP, peer: p() }, vec![]),
                (I::SuccessSent, vec![]),
                (I::AnswerSent { setup: ACT }, vec![Want::Overridden(Off, Ans)]),
                (I::AckReceived, vec![Want::Connect]),
            ],
        ),
        // RFC 4975 s.8.5 fallback: a peer without a=setup; the offerer opens.
        (
            "no setup in answer",
            Off,
            Off,
            Trigger::OnSuccessResponse,
            vec![
                (I::OfferSent { setup: AP }, vec![]),
                (I::AnswerReceived { setup: None, peer: p() }, vec![]),
                (I::SuccessReceived, vec![Want::Connect]),
            ],
        ),
        (
            "holdconn answer is absent",
            Off,
            Off,
            Trigger::OnSuccessResponse,
            vec![
                (I::OfferSent { setup: AP }, vec![]),
                (I::AnswerReceived { setup: Some(Setup::Holdconn), peer: p() }, vec![]),
                (I::SuccessReceived, vec![Want::Connect]),
            ],
        ),
        (
            "actpass answer",
            Off,
            Off,
            Trigger::OnSuccessResponse,
            vec![
                (I::OfferSent { setup: AP }, vec![]),
                (
                    I::AnswerReceived { setup: AP, peer: p() },
                    vec![Want::Failed(Failure::Setup(Refusal::SetupMismatch { offer: "actpass", answer: "actpass" }))],
                ),
                (I::SuccessReceived, vec![]),
            ],
        ),
        (
            "port 0 answer",
            Off,
            Off,
            Trigger::OnSuccessResponse,
            vec![
                (I::OfferSent { setup: AP }, vec![]),
                (I::AnswerReceived { setup: PAS, peer: None }, vec![]),
                (I::SuccessReceived, vec![Want::Failed(Failure::NoPeerParameters)]),
            ],
        ),
        (
            "timeout while waiting",
            Ans,
            Off,
            Trigger::OnAck,
            vec![
                (I::OfferReceived { setup: AP, peer: p() }, vec![]),
                (I::AnswerSent { setup: PAS }, vec![Want::Wait]),
                (I::Timeout, vec![Want::Failed(Failure::Timeout)]),
                (I::LinkUp, vec![]),
            ],
        ),
        (
            "connect fails",
            Off,
            Off,
            Trigger::OnSuccessResponse,
            vec![
                (I::OfferSent { setup: AP }, vec![]),
                (I::AnswerReceived { setup: PAS, peer: p() }, vec![]),
                (I::SuccessReceived, vec![Want::Connect]),
                (I::LinkDown, vec![Want::Failed(Failure::LinkDown)]),
            ],
        ),
        (
            "timeout after ready is ignored",
            Off,
            Off,
            Trigger::OnSuccessResponse,
            vec![
                (I::OfferSent { setup: AP }, vec![]),
                (I::AnswerReceived { setup: PAS, peer: p() }, vec![]),
                (I::SuccessReceived, vec![Want::Connect]),
                (I::LinkUp, vec![Want::Ready]),
                (I::Timeout, vec![]),
                (I::LinkDown, vec![Want::Failed(Failure::LinkDown)]),
            ],
        ),
        // The peer connected before we learned the answer (reordered signalling).
        (
            "early link up, passive",
            Off,
            Ans,
            Trigger::OnAck,
            vec![
                (I::OfferSent { setup: AP }, vec![]),
                (I::LinkUp, vec![]),
                (I::AnswerReceived { setup: ACT, peer: p() }, vec![Want::Wait, Want::Ready]),
            ],
        ),
    ]
}

#[test]
fn figure_sequences() {
    for (name, side, opener, trigger, steps) in cases() {
        let mut m = HopLink::new(HopConfig { side, opener, trigger }).unwrap();
        for (i, (input, wants)) in steps.into_iter().enumerate() {
            m.handle(input.clone()).unwrap();
            let mut got = Vec::new();
            while let Some(out) = m.poll_output() {
                got.push(out);
            }
            assert_eq!(got.len(), wants.len(), "{name} step {i} {input:?}: {got:?} vs {wants:?}");
            for (g, w) in got.iter().zip(&wants) {
                assert!(matches(g, w), "{name} step {i}: {g:?} vs {w:?}");
            }
        }
        assert!(m.connects() <= 1, "{name}");
    }
}

#[test]
fn usage_errors() {
    assert_eq!(
        HopLink::new(HopConfig { side: Ans, opener: Ans, trigger: Trigger::OnFirstSend }).unwrap_err(),
        UsageError::Trigger("on-first-send")
    );
    let mut off = HopLink::new(HopConfig { side: Off, opener: Off, trigger: Trigger::OnAck }).unwrap();
    assert_eq!(off.handle(I::OfferReceived { setup: AP, peer: None }), Err(UsageError::WrongSide("OfferReceived")));
    assert_eq!(off.handle(I::AckReceived), Err(UsageError::WrongSide("AckReceived")));
    let mut ans = HopLink::new(HopConfig { side: Ans, opener: Off, trigger: Trigger::OnAck }).unwrap();
    assert_eq!(ans.handle(I::SuccessReceived), Err(UsageError::WrongSide("SuccessReceived")));
    assert_eq!(ans.poll_output(), None);
}
