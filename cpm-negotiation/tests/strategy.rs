//! The three strategies of seed 001, as data and through the per-hop machine.
//!
//! `SPEC_TABLE` is the source documents' table "The three link-establishment strategies"
//! verbatim (the IWF hop from "Non-CPM receiver through interworking");
//! every plan of [`LinkStrategy`] must read as one of its alternatives, and
//! every alternative a plan allows must be in the table.

#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]

use bytes::Bytes;
use cpm_negotiation::{
    answer_setup, AckPolicy, AnswerPolicy, Entity, Figure, Hop, HopConfig, HopInput, HopLink, HopOutput, HopPlan,
    LinkKey, LinkStrategy, Preset, Setup, Side, Trigger,
};
use cpm_negotiation::{ConnectParams, MsrpSdp};

const SPEC_TABLE: &[(LinkStrategy, Hop, &str)] = &[
    (LinkStrategy::InviteInitiator, Hop::L1, "A, after 200#1"),
    (LinkStrategy::InviteInitiator, Hop::L2, "PF(A), after ACK#1 (or 200#2, or SEND#1)"),
    (LinkStrategy::InviteInitiator, Hop::L3, "CF, after 200#3 (or ACK#2, or SEND#2)"),
    (LinkStrategy::InviteInitiator, Hop::L4, "PF(B), after ACK#3 (or 200#4, or SEND#3)"),
    (LinkStrategy::InviteInitiator, Hop::L3Iwf, "CF, after 200#3 (or ACK#2, or SEND#2)"),
    (LinkStrategy::InviteReceiver, Hop::L1, "PF(A), after ACK#1"),
    (LinkStrategy::InviteReceiver, Hop::L2, "CF, after ACK#2"),
    (LinkStrategy::InviteReceiver, Hop::L3, "PF(B), after ACK#3"),
    (LinkStrategy::InviteReceiver, Hop::L4, "B, after ACK#4"),
    (LinkStrategy::InviteReceiver, Hop::L3Iwf, "IWF, after ACK#4"),
    (LinkStrategy::ClientInitiative, Hop::L1, "A, after 200#1"),
    (LinkStrategy::ClientInitiative, Hop::L2, "PF(A) after ACK#1/200#2/SEND#1, or CF after ACK#2"),
    (LinkStrategy::ClientInitiative, Hop::L3, "PF(B) after ACK#3, or CF after 200#3/ACK#2/SEND#2"),
    (LinkStrategy::ClientInitiative, Hop::L4, "B, after ACK#4"),
    (LinkStrategy::ClientInitiative, Hop::L3Iwf, "IWF after ACK#4, or CF after 200#3/ACK#2/SEND#2"),
];

/// The SIP/MSRP message that fires `trigger` for the opener on `side` of `hop`.
fn message(hop: Hop, side: Side, trigger: Trigger) -> String {
    let n = match hop {
        Hop::L1 => 1,
        Hop::L2 => 2,
        Hop::L3 | Hop::L3Iwf => 3,
        Hop::L4 => 4,
    };
    match (side, trigger) {
        (Side::Offerer, Trigger::OnSuccessResponse) => format!("200#{n}"),
        (Side::Offerer, Trigger::OnAck) => format!("ACK#{}", n - 1),
        (Side::Offerer, Trigger::OnFirstSend) => format!("SEND#{}", n - 1),
        // Through the ISF the IWF gets the CF's ACK#3 forwarded as ACK#4 (seed 000).
        (Side::Answerer, Trigger::OnAck) if hop == Hop::L3Iwf => "ACK#4".to_string(),
        (Side::Answerer, Trigger::OnAck) => format!("ACK#{n}"),
        (Side::Answerer, t) => panic!("answerer trigger {t:?}"),
    }
}

/// Renders a plan as the cell text the table of the source documents would use.
fn render(plan: &HopPlan) -> Vec<String> {
    let msgs: Vec<String> = plan.triggers.iter().map(|&t| message(plan.hop, plan.opener, t)).collect();
    vec![
        format!("{}, after {}", plan.entity.as_str(), msgs[0]),
        format!("{} after {}", plan.entity.as_str(), msgs.join("/")),
    ]
}

#[test]
fn plans_match_spec_table() {
    for &(strategy, hop, cell) in SPEC_TABLE {
        let mut plans = vec![strategy.plan(hop)];
        plans.extend(strategy.alternative(hop));
        for plan in &plans {
            assert_eq!(plan.hop, hop);
            assert_eq!(plan.entity, hop.entity(plan.opener));
            let texts = render(plan);
            assert!(texts.iter().any(|t| cell.contains(t.as_str())), "{strategy:?} {hop}: {texts:?} not in {cell:?}");
            // Every trigger the plan allows is named in the cell.
            for &t in plan.triggers {
                assert!(cell.contains(&message(hop, plan.opener, t)), "{strategy:?} {hop}: {t:?} not in {cell:?}");
            }
        }
        // The default comes first in the cell.
        let first = render(&plans[0]);
        assert!(first.iter().any(|t| cell.starts_with(t.as_str())), "{strategy:?} {hop}: {first:?} vs {cell:?}");
    }
}

#[test]
fn figure_presets_match_spec_variants() {
    use AckPolicy::{AfterUpstreamAck as After, OnDownstreamSuccess as On200};
    use AnswerPolicy::{AfterFirstDestination as First, Immediate};
    let cases = [
        (Figure::Seed001Fig1, LinkStrategy::InviteInitiator, Immediate, [After, On200, After]),
        (Figure::Seed001Fig2, LinkStrategy::InviteInitiator, First, [After, On200, After]),
        (Figure::Seed001Fig3, LinkStrategy::InviteReceiver, Immediate, [On200, On200, On200]),
        (Figure::Seed001Fig4, LinkStrategy::InviteReceiver, First, [On200, On200, On200]),
        (Figure::Seed001Fig5, LinkStrategy::ClientInitiative, First, [On200, On200, On200]),
        (Figure::Seed001Fig6, LinkStrategy::ClientInitiative, First, [After, After, After]),
        (Figure::Seed001Fig7, LinkStrategy::ClientInitiative, Immediate, [After, After, After]),
        (Figure::Seed000Fig1, LinkStrategy::InviteInitiator, First, [After, After, After]),
    ];
    for (figure, strategy, answer, acks) in cases {
        let p = Preset::figure(figure);
        assert_eq!((p.strategy, p.answer_policy, p.ack_policy), (strategy, answer, acks), "{figure:?}");
    }
    // Seed 000: L1 by A after 200#1, L2 by PF(A) after 200#2, L3 by CF after 200#3.
    let p = Preset::figure(Figure::Seed000Fig1);
    assert_eq!(p.hop(Hop::L1), (Side::Offerer, Entity::ClientA, Trigger::OnSuccessResponse));
    assert_eq!(p.hop(Hop::L2), (Side::Offerer, Entity::ParticipatingA, Trigger::OnSuccessResponse));
    assert_eq!(p.hop(Hop::L3Iwf), (Side::Offerer, Entity::Controlling, Trigger::OnSuccessResponse));
}

#[test]
fn preset_choices() {
    // Invite-initiator: L2 and L4 share the PF trigger; the CF's is separate.
    let mut p = Preset::new(LinkStrategy::InviteInitiator);
    p.pf_trigger = Trigger::OnFirstSend;
    p.cf_trigger = Trigger::OnAck;
    assert_eq!(p.hop(Hop::L2).2, Trigger::OnFirstSend);
    assert_eq!(p.hop(Hop::L4).2, Trigger::OnFirstSend);
    assert_eq!(p.hop(Hop::L3).2, Trigger::OnAck);
    // Only client-initiative lets the CF open L2 (as answerer) or L3 (as offerer).
    p.l2_opener = Side::Answerer;
    assert_eq!(p.hop(Hop::L2).0, Side::Offerer, "invite-initiator ignores the L2 choice");
    let mut c = Preset::new(LinkStrategy::ClientInitiative);
    c.l2_opener = Side::Answerer;
    c.l3_opener = Side::Offerer;
    assert_eq!(c.hop(Hop::L2), (Side::Answerer, Entity::Controlling, Trigger::OnAck));
    assert_eq!(c.hop(Hop::L3), (Side::Offerer, Entity::Controlling, Trigger::OnSuccessResponse));
    assert_eq!(c.hop(Hop::L4), (Side::Answerer, Entity::ClientB, Trigger::OnAck));
}

fn params(host: &str) -> ConnectParams {
    let text = format!(
        "v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\nm=message 2855 TCP/MSRP *\r\n\
         a=accept-types:*\r\na=path:msrp://{host}:2855/s1;tcp\r\n"
    );
    let sdp = MsrpSdp::parse(Bytes::from(text)).unwrap();
    cpm_negotiation::connect_params(&sdp.media()[0], false).unwrap()
}

/// One hop, both sides, in the order the figures show the messages;
/// returns (side, index of the input that made it connect).
fn run_hop(preset: &Preset, hop: Hop, upstream_first: bool) -> Vec<(Side, &'static str)> {
    let (opener, _, trigger) = preset.hop(hop);
    let mut offerer = HopLink::new(HopConfig { side: Side::Offerer, opener, trigger }).unwrap();
    let mut answerer = HopLink::new(HopConfig { side: Side::Answerer, opener, trigger }).unwrap();
    let (answer, overridden) = answer_setup(Some(Setup::Actpass), preset.want_opener(hop)).unwrap();
    assert!(!overridden);
    let offerer_params = params("192.0.2.1");
    let answerer_params = params("192.0.2.2");
    let mut steps: Vec<(Side, &'static str, HopInput)> = vec![
        (Side::Offerer, "INVITE", HopInput::OfferSent { setup: Some(Setup::Actpass) }),
        (
            Side::Answerer,
            "INVITE",
            HopInput::OfferReceived { setup: Some(Setup::Actpass), peer: Some(offerer_params.clone()) },
        ),
        (Side::Answerer, "200", HopInput::AnswerSent { setup: Some(answer) }),
        (Side::Answerer, "200", HopInput::SuccessSent),
        (Side::Offerer, "200", HopInput::AnswerReceived { setup: Some(answer), peer: Some(answerer_params.clone()) }),
        (Side::Offerer, "200", HopInput::SuccessReceived),
        (Side::Offerer, "ACK", HopInput::AckSent),
        (Side::Answerer, "ACK", HopInput::AckReceived),
        (Side::Offerer, "upstream ACK", HopInput::UpstreamAck),
        (Side::Offerer, "SEND", HopInput::FirstSend),
    ];
    if upstream_first {
        // ACK from upstream before the 200 of this hop (the CF with ACK#2 before 200#3).
        let ack = steps.remove(8);
        steps.insert(2, ack);
    }
    let mut connects = Vec::new();
    let mut waiting = Vec::new();
    for (side, label, input) in steps {
        let m = if side == Side::Offerer { &mut offerer } else { &mut answerer };
        m.handle(input).unwrap();
        while let Some(out) = m.poll_output() {
            match out {
                HopOutput::Connect { params } => {
                    let expect = if side == Side::Offerer { &answerer_params } else { &offerer_params };
                    assert_eq!(&params, expect);
                    connects.push((side, label));
                }
                HopOutput::WaitForPeer { .. } => waiting.push(side),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    // Link comes up on both sides.
    for m in [&mut offerer, &mut answerer] {
        m.handle(HopInput::LinkUp).unwrap();
        assert_eq!(m.poll_output(), Some(HopOutput::Ready));
        assert!(m.is_ready());
    }
    assert_eq!(waiting, vec![opener.peer()], "{hop}: the other side waits");
    connects
}

#[test]
fn every_strategy_through_the_machine() {
    for strategy in LinkStrategy::ALL {
        for hop in Hop::ALL {
            let mut plans = vec![strategy.plan(hop)];
            plans.extend(strategy.alternative(hop));
            for plan in plans {
                for &trigger in plan.triggers {
                    let mut preset = Preset::new(strategy);
                    preset.l2_opener = if hop == Hop::L2 { plan.opener } else { preset.l2_opener };
                    preset.l3_opener = if matches!(hop, Hop::L3 | Hop::L3Iwf) { plan.opener } else { preset.l3_opener };
                    preset.pf_trigger = trigger;
                    preset.cf_trigger = trigger;
                    let (opener, entity, used) = preset.hop(hop);
                    assert_eq!((opener, entity), (plan.opener, plan.entity));
                    if opener == Side::Offerer && hop != Hop::L1 {
                        assert_eq!(used, trigger);
                    }
                    let connects = run_hop(&preset, hop, false);
                    let want = match (opener, used) {
                        (Side::Offerer, Trigger::OnSuccessResponse) => "200",
                        (Side::Offerer, Trigger::OnAck) => "upstream ACK",
                        (Side::Offerer, Trigger::OnFirstSend) => "SEND",
                        (Side::Answerer, _) => "ACK",
                    };
                    assert_eq!(connects, vec![(opener, want)], "{strategy:?} {hop} {trigger:?}");
                    // "the peer always from the 200#3 SDP, the trigger only decides when": an
                    // upstream ACK before the 200 makes the offerer connect on the 200.
                    if opener == Side::Offerer && used == Trigger::OnAck {
                        assert_eq!(run_hop(&preset, hop, true), vec![(Side::Offerer, "200")]);
                    }
                }
            }
        }
    }
}

#[test]
fn link_key_is_what_the_registry_matches() {
    let p = params("192.0.2.2");
    assert_eq!(p.key, LinkKey::new(msrp_core::uri::Scheme::Msrp, "192.0.2.2", 2855, "tcp"));
    assert_eq!(p.adjacent().unwrap().as_str(), "msrp://192.0.2.2:2855/s1;tcp");
}
