//! Fuzzing entry points (feature `sim`): the `cpm_roles` and `iwf_convert`
//! targets of the `fuzz` crate are one-liners around [`scenario`] and
//! [`iwf_convert`], and the tests replay the committed seeds in
//! `fuzz/seeds/` on stable.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cpm_negotiation::{AckPolicy, AnswerPolicy, Side, Trigger};

use bytes::Bytes;

use crate::interworking::{
    convert, mms_conf_status, sms_ack_status, smtp_reply_status, ConversionConfig, Gsm7Packing, NonCpmMessage,
    NonTextRule,
};
use crate::sim::{crc32, Scenario, TraceEvent};
use crate::NonCpmSystem;
use crate::SipTransport;

const FIGURES: [&str; 8] =
    ["001-fig1", "001-fig2", "001-fig3", "001-fig4", "001-fig5", "001-fig6", "001-fig7", "000-fig1"];
const TRIGGERS: [Trigger; 3] = [Trigger::OnSuccessResponse, Trigger::OnAck, Trigger::OnFirstSend];

/// The fuzzing epoch: the virtual clock starts at one real instant, read once.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    #[expect(clippy::disallowed_methods, reason = "the fuzzing epoch: the simulator's virtual clock starts here")]
    *EPOCH.get_or_init(Instant::now)
}

/// Reads the input as a scenario with arbitrary options (figure, members,
/// size, triggers, openers, policies, SIP transport and proxies, a shared
/// PF(B) whose L3 hops reuse one link), network
/// (latency, jitter, read splits, datagram loss and duplication, a link reset
/// at any byte) and an entity that ends its session at any time, all seeded
/// by the input; runs it in the simulator; and panics if any receiver ever
/// delivers bytes other than those submitted, or delivers twice.
///
/// # Panics
/// On a broken invariant (that is what the fuzzer looks for).
pub fn scenario(data: &[u8]) {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let word = |i: usize| u16::from_le_bytes([byte(i), byte(i + 1)]);
    let name = FIGURES[usize::from(byte(0)) % FIGURES.len()];
    let Ok(mut scenario) = Scenario::figure(name) else { return };
    if name == "000-fig1" {
        scenario.members = usize::from(byte(1) % 3);
        scenario.non_cpm = 1 + usize::from(byte(2) % 2);
    } else {
        scenario.members = 1 + usize::from(byte(1) % 3);
        scenario.non_cpm = usize::from(byte(2) % 3);
    }
    scenario.size = usize::from(word(3)) % 20_001;
    let flags = byte(8);
    if flags & 1 != 0 {
        scenario.sip_transport = SipTransport::Unreliable;
    }
    scenario.ad_hoc = flags & 2 != 0;
    scenario.preset.pf_trigger = TRIGGERS[usize::from(byte(9)) % 3];
    scenario.preset.cf_trigger = TRIGGERS[usize::from(byte(9) / 3) % 3];
    scenario.preset.l2_opener = if flags & 4 != 0 { Side::Answerer } else { Side::Offerer };
    scenario.preset.l3_opener = if flags & 8 != 0 { Side::Offerer } else { Side::Answerer };
    let ack = |bit: u8| if flags & bit != 0 { AckPolicy::OnDownstreamSuccess } else { AckPolicy::AfterUpstreamAck };
    scenario.preset.ack_policy = [ack(16), ack(32), ack(64)];
    scenario.preset.answer_policy =
        if flags & 128 != 0 { AnswerPolicy::Immediate } else { AnswerPolicy::AfterFirstDestination };
    let hops = ["L1", "L2", "L3", "L4"];
    scenario.sip_proxies =
        hops.iter().enumerate().filter(|(k, _)| byte(10) & (1 << k) != 0).map(|(_, h)| (*h).to_owned()).collect();
    if byte(10) & 16 != 0 && scenario.members > 1 {
        scenario.busy = vec![usize::from(byte(10) >> 5) % scenario.members];
    }
    scenario.chunk_size = if byte(10) & 32 != 0 { None } else { Some(2048) };
    // Several members behind one PF(B): L3 hops on one reused link.
    scenario.shared_pf_b = byte(10) & 64 != 0;
    let seed = u64::from_le_bytes(std::array::from_fn(|k| byte(20 + k)));
    scenario.seed = seed;
    let Ok(mut sim) = scenario.build(epoch()) else { return };
    sim.set_seed(seed)
        .set_latency(Duration::from_micros(100 + u64::from(byte(5)) * 200))
        .set_jitter(Duration::from_micros(u64::from(byte(6)) * 50))
        .set_read_split(32 + usize::from(word(11)) % 4096);
    if flags & 1 != 0 {
        sim.set_datagram_faults(u32::from(byte(7)) % 400, u32::from(byte(13)) % 200);
    }
    if byte(14) & 1 != 0 {
        let single = scenario.members + scenario.non_cpm == 1;
        let k = 1 + usize::from(byte(14) >> 4) % scenario.members.max(1);
        let hop = hops[usize::from(byte(14) >> 1) % 4];
        let label = if single || hop == "L1" || hop == "L2" { hop.to_owned() } else { format!("{hop}/B{k}") };
        sim.reset_link_at(&label, u64::from(word(15)) % (scenario.size as u64 + 3000));
    }
    if byte(17) & 1 != 0 {
        let names = sim.names();
        let index = usize::from(byte(17) >> 1) % names.len().max(1);
        sim.end_sessions_at(index, Duration::from_micros(u64::from(word(18)) * 4));
    }
    sim.run(300_000);
    // Invariants: never wrong bytes, never twice.
    let body = scenario.body();
    let want = (body.len(), crc32(&body));
    let mut seen: Vec<&str> = Vec::new();
    for event in sim.trace() {
        if let TraceEvent::Deliver { at, bytes, crc32 } = event {
            assert_eq!((*bytes, *crc32), want, "seed {seed}: {at} delivered wrong bytes");
            assert!(!seen.contains(&at.as_str()), "seed {seed}: {at} delivered twice");
            seen.push(at);
        }
    }
    // One outcome at A at most, and one IMDN per member at most.
    let outcomes = sim.events().iter().filter(|(at, e)| at == "A" && matches!(e, crate::Event::Outcome { .. }));
    assert!(outcomes.count() <= 1, "seed {seed}: several outcomes at A");
    let mut members: Vec<&str> = sim
        .events()
        .iter()
        .filter_map(|(at, e)| match e {
            crate::Event::Delivery { member, .. } if at == "A" => Some(member.as_str()),
            _ => None,
        })
        .collect();
    let all = members.len();
    members.sort_unstable();
    members.dedup();
    assert_eq!(members.len(), all, "seed {seed}: several IMDNs for one member");
}

/// Fuzzing entry point (target `iwf_convert`): splits `data` into a
/// selector octet, sender, recipient, content type and body (separated by
/// NUL), converts it for the selected system and reads the bytes as each
/// acknowledgement kind. It must never panic.
pub fn iwf_convert(data: &[u8]) {
    let (selector, rest) = data.split_first().unwrap_or((&0, &[]));
    let mut fields = rest.splitn(4, |&b| b == 0);
    let mut text = || String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let (sender, recipient, content_type) = (text(), text(), text());
    let body = Bytes::copy_from_slice(fields.next().unwrap_or_default());
    let mut message = NonCpmMessage::new(sender, recipient, content_type, body);
    message.id = u64::from(*selector).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    message.submitted_at = u64::from(*selector) << 30;
    message.sms_first_sequence = u32::from(*selector) << 24;
    let mut config = ConversionConfig::default();
    if selector & 0x04 != 0 {
        config.non_text = NonTextRule::LinkText { template: "{type} at https://iwf.example.com/{id}".into() };
    }
    if selector & 0x08 != 0 {
        config.sms.packing = Gsm7Packing::Packed;
    }
    config.sms.max_segments = if selector & 0x10 != 0 { 3 } else { 255 };
    let system = match selector & 0x03 {
        0 => NonCpmSystem::Sms,
        1 => NonCpmSystem::Email,
        _ => NonCpmSystem::Mms,
    };
    if let Ok(conversion) = convert(system, &message, &config) {
        assert!(!conversion.parts.is_empty(), "a conversion has at least one part");
        if system == NonCpmSystem::Sms {
            for part in &conversion.parts {
                let length = part.get(..4).map(|b| b.iter().fold(0usize, |n, &x| n << 8 | usize::from(x)));
                assert_eq!(length, Some(part.len()), "command_length is the PDU length");
            }
        }
    }
    let _ = sms_ack_status(data);
    let _ = mms_conf_status(data);
    let _ = smtp_reply_status(u16::from_be_bytes([data.first().copied().unwrap_or(0), *selector]));
}
