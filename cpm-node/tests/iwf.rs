//! The IWF node delivers email to a real SMTP server (Python's aiosmtpd,
//! which parses what it takes with Python's `email` package): the body a
//! sender's MSRP message carried arrives intact, and the server's refusals
//! come back to the sender as the REPORT's status (RFC 5321 s.4.2.1 reply
//! classes: 5yz 403, 4yz 408). Skips loudly without python3 and aiosmtpd
//! (`pip install aiosmtpd`, or Debian's `python3-aiosmtpd`).
//!
//! The SMS IWF node binds to an SMSC (a test SMSC on another SMPP
//! implementation, `rusmpp`'s codec) and submits a long text as
//! concatenated segments; the SMSC's refusals come back the same way, and
//! Wireshark's SMPP dissector judges every byte the SMSC read. The MMS IWF
//! node posts its `m-send-req` to an MMSC over HTTP, whose `m-send-conf`
//! status comes back the same way; Wireshark's MMSE dissector judges the
//! PDU.

mod support;

use bytes::Bytes;
use cpm_roles::{Outcome, SessionId};
use support::node::{free_port, outcome_of, send_to, sender, ServedB};
use support::smtp::SmtpSink;

/// An email IWF node toward `smtp`, served in this process.
fn iwf(smtp: u16) -> ServedB {
    iwf_toward("email", smtp)
}

/// An IWF node for `system` toward the server at `port` (for MMS, its
/// `http://` URL).
fn iwf_toward(system: &str, port: u16) -> ServedB {
    iwf_with(system, port, "")
}

/// [`iwf_toward`], with `more` lines in its `[iwf]` table.
fn iwf_with(system: &str, port: u16, more: &str) -> ServedB {
    let target = if system == "mms" { format!("http://127.0.0.1:{port}/mms") } else { format!("127.0.0.1:{port}") };
    let [sip, msrp] = [free_port(), free_port()];
    let config = format!(
        "role = \"iwf\"\nsip_listen = [\"udp://127.0.0.1:{sip}\"]\nmsrp_listen = [\"tcp://127.0.0.1:{msrp}\"]\n\n\
         [identity]\nname = \"iwf\"\nhost = \"127.0.0.1\"\nuri = \"sip:iwf@iwf.example\"\n\n\
         [iwf]\nsystem = \"{system}\"\ntarget = \"{target}\"\nreport = \"on-ack\"\n{more}\
         [limits]\ntransaction_timeout_secs = 5\n"
    );
    ServedB::serve(sip, msrp, &config)
}

/// A text of `lines` CRLF lines (what the email conversion keeps as is).
fn text(lines: usize) -> Bytes {
    Bytes::from((0..lines).map(|k| format!("line {k} of a large message for a non-CPM member\r\n")).collect::<String>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_iwf_delivers_email_to_a_real_smtp_server() {
    let test = "the_iwf_delivers_email_to_a_real_smtp_server";
    let dir = tempfile::tempdir().expect("a scratch directory");
    let Some(smtp) = SmtpSink::start(test, dir.path()) else { return };
    let node = iwf_with("email", smtp.port, "domain = \"iwf.example.org\"\n");
    let mut a = sender(node.sip, 11).await;

    let body = text(4000);
    let session = send_to(&a, "sip:carol@mail.example", SessionId::new(1), body.clone()).await;
    assert_eq!(outcome_of(&mut a, session).await, Outcome::Delivered);
    let crc = format!("{:08x}", crc32fast::hash(&body));
    let stored = smtp.stored();
    assert_eq!(stored.len(), 1, "{stored:?}");
    let fields: Vec<&str> = stored[0].split(' ').collect();
    assert_eq!(
        fields,
        [
            "rcpt=carol@mail.example",
            "from=a@[127.0.0.1]",
            &format!("len={}", body.len()),
            &format!("crc32={crc}"),
            "type=text/plain",
            fields[5],
            "defects=0",
            fields[7],
        ],
        "what the SMTP server stored"
    );
    // The Date is the node's wall clock (RFC 5322 s.3.6.1), not the epoch.
    let year: u32 = fields[7].strip_prefix("year=").and_then(|y| y.parse().ok()).expect("a Date");
    assert!(year >= 2025, "{}", stored[0]);
    // The Message-ID's right side is the configured domain (RFC 5322 s.3.6.4).
    assert!(fields[5].starts_with("msgid=<") && fields[5].ends_with("@iwf.example.org>"), "{}", stored[0]);

    // The server's refusals are the REPORT's status at the sender: a
    // permanent 550 is 403, a transient 452 is 408 (RFC 4975 s.10.3, s.10.4).
    for (k, (user, status)) in [("refuse", 403), ("busy", 408)].into_iter().enumerate() {
        let session = SessionId::new(2 + k as u64);
        let session = send_to(&a, &format!("sip:{user}@mail.example"), session, text(10)).await;
        assert_eq!(outcome_of(&mut a, session).await, Outcome::Failed { status }, "{user}");
    }
    assert_eq!(smtp.stored().len(), 1, "nothing more was stored");
    a.shutdown().await;
    node.stop().await;
}

/// With nothing listening where the SMTP server should be, the sender
/// hears 408 (the message may be tried again later), at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_smtp_server_is_a_408() {
    let node = iwf(free_port());
    let mut a = sender(node.sip, 12).await;
    let session = send_to(&a, "sip:carol@mail.example", SessionId::new(1), text(10)).await;
    assert_eq!(outcome_of(&mut a, session).await, Outcome::Failed { status: 408 });
    a.shutdown().await;
    node.stop().await;
}

/// A text that needs three GSM 7-bit segments (SMPP concatenation with a
/// UDH, 3GPP TS 23.040 s.9.2.3.24.1).
fn three_segments() -> Bytes {
    Bytes::from("An SMS long enough for three segments. ".repeat(10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_iwf_submits_sms_to_an_smsc() {
    let smsc = support::smsc::TestSmsc::start().await;
    let node = iwf_toward("sms", smsc.port);
    let mut a = sender(node.sip, 13).await;

    let session = send_to(&a, "sip:+15550100@sms.example", SessionId::new(1), three_segments()).await;
    assert_eq!(outcome_of(&mut a, session).await, Outcome::Delivered);
    let submitted = smsc.submitted();
    assert_eq!(submitted.len(), 3, "{submitted:?}");
    for (k, sm) in submitted.iter().enumerate() {
        assert_eq!(sm.destination, "15550100", "{sm:?}");
        // esm_class UDHI (0x40), and the concatenation IE: 00 03 ref total seq.
        assert_eq!(sm.esm_class & 0x40, 0x40, "{sm:?}");
        assert_eq!(sm.short_message.get(1..3), Some(&[0x00, 0x03][..]), "{sm:?}");
        assert_eq!(sm.short_message.get(4..6), Some(&[3, k as u8 + 1][..]), "{sm:?}");
    }
    assert_eq!(smsc.binds(), 1);

    // The SMSC's refusals: ESME_RTHROTTLED is 408 (try later),
    // ESME_RSUBMITFAIL 403 (SMPP v3.4 s.5.1.3).
    for (k, (number, status)) in [("+15550199", 408), ("+15550198", 403)].into_iter().enumerate() {
        let session = SessionId::new(2 + k as u64);
        let session = send_to(&a, &format!("sip:{number}@sms.example"), session, Bytes::from("hello")).await;
        assert_eq!(outcome_of(&mut a, session).await, Outcome::Failed { status }, "{number}");
    }
    assert_eq!(smsc.binds(), 1, "one bind carried every message");
    a.shutdown().await;
    node.stop().await;

    // Wireshark's SMPP dissector judges every byte the SMSC read.
    wireshark_judges("the_iwf_submits_sms_to_an_smsc", "--smpp", &smsc.wire());
}

/// No SMSC where it should be: the sender hears 408 (try later).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_smsc_is_a_408() {
    let node = iwf_toward("sms", free_port());
    let mut a = sender(node.sip, 14).await;
    let session = send_to(&a, "sip:+15550100@sms.example", SessionId::new(1), Bytes::from("hello")).await;
    assert_eq!(outcome_of(&mut a, session).await, Outcome::Failed { status: 408 });
    a.shutdown().await;
    node.stop().await;
}

/// Runs Wireshark's dissector (`wire-check.sh FLAG`) on `bytes`, or says
/// loudly why it cannot.
fn wireshark_judges(test: &str, flag: &str, bytes: &[u8]) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/interop/wire-check.sh");
    let tshark = std::process::Command::new("tshark").arg("--version").output().is_ok_and(|o| o.status.success());
    if !script.is_file() || !tshark {
        eprintln!("SKIP {test} (Wireshark part): tshark or {} missing", script.display());
        return;
    }
    let dir = tempfile::tempdir().expect("a scratch directory");
    let wire = dir.path().join("wire.bin");
    std::fs::write(&wire, bytes).expect("written");
    let output = std::process::Command::new("bash").arg(&script).arg(flag).arg(&wire).output().expect("runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    eprintln!("{test}: {}", text.lines().last().unwrap_or_default());
    assert!(output.status.success() && text.contains(" 0 error(s)"), "Wireshark ({flag}) on our bytes:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_iwf_posts_mms_to_an_mmsc() {
    let mmsc = support::mmsc::TestMmsc::start().await;
    let node = iwf_toward("mms", mmsc.port);
    let mut a = sender(node.sip, 15).await;
    let session = send_to(&a, "sip:+15550100@mms.example", SessionId::new(1), text(100)).await;
    assert_eq!(outcome_of(&mut a, session).await, Outcome::Delivered);
    let posted = mmsc.posted();
    assert_eq!(posted.len(), 1);
    let (content_type, pdu) = &posted[0];
    assert_eq!(content_type, "application/vnd.wap.mms-message");
    // X-Mms-Message-Type m-send-req (OMA-TS-MMS_ENC-V1_3 s.7.3.30).
    assert_eq!(pdu.get(..2), Some(&[0x8C, 0x80][..]));
    // The MMSC's transient and permanent errors (s.7.3.48): 408 and 403.
    for (k, (number, status)) in [("+15550199", 408), ("+15550198", 403)].into_iter().enumerate() {
        let session = SessionId::new(2 + k as u64);
        let session = send_to(&a, &format!("sip:{number}@mms.example"), session, text(5)).await;
        assert_eq!(outcome_of(&mut a, session).await, Outcome::Failed { status }, "{number}");
    }
    a.shutdown().await;
    node.stop().await;
    wireshark_judges("the_iwf_posts_mms_to_an_mmsc", "--mmse", pdu);
}

/// No MMSC where it should be: the sender hears 408 (try later).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_mmsc_is_a_408() {
    let node = iwf_toward("mms", free_port());
    let mut a = sender(node.sip, 16).await;
    let session = send_to(&a, "sip:+15550100@mms.example", SessionId::new(1), text(5)).await;
    assert_eq!(outcome_of(&mut a, session).await, Outcome::Failed { status: 408 });
    a.shutdown().await;
    node.stop().await;
}
