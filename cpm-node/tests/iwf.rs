//! The IWF node delivers email to a real SMTP server (Python's aiosmtpd,
//! which parses what it takes with Python's `email` package): the body a
//! sender's MSRP message carried arrives intact, and the server's refusals
//! come back to the sender as the REPORT's status (RFC 5321 s.4.2.1 reply
//! classes: 5yz 403, 4yz 408). Skips loudly without python3 and aiosmtpd
//! (`pip install aiosmtpd`, or Debian's `python3-aiosmtpd`).

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use cpm_roles::{Outcome, SessionId};
use support::node::{free_port, outcome_of, send_to, sender, ServedB};

/// A running `tests/servers/smtp_sink.py`, stopped when dropped.
struct SmtpSink {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    /// The sink on a free port, writing into `dir`; `None` (after saying so
    /// loudly) without python3 and aiosmtpd.
    fn start(test: &str, dir: &Path) -> Option<Self> {
        let importable = Command::new("python3").args(["-c", "import aiosmtpd"]).output();
        if !importable.is_ok_and(|o| o.status.success()) {
            eprintln!("SKIP {test}: python3 with aiosmtpd is not installed (pip install aiosmtpd)");
            return None;
        }
        let port = free_port();
        let out = dir.join("stored.txt");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/servers/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(&out)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        // It says `listening` once its socket is open.
        let mut line = String::new();
        let stdout = child.stdout.take().expect("its stdout");
        let _ = BufReader::new(stdout).read_line(&mut line);
        assert_eq!(line.trim(), "listening", "the SMTP sink did not start");
        Some(Self { child, port, out })
    }

    /// The lines it wrote, one per message taken.
    fn stored(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out).unwrap_or_default().lines().map(str::to_owned).collect()
    }
}

/// An email IWF node toward `smtp`, served in this process.
fn iwf(smtp: u16) -> ServedB {
    let [sip, msrp] = [free_port(), free_port()];
    let config = format!(
        "role = \"iwf\"\nsip_listen = [\"udp://127.0.0.1:{sip}\"]\nmsrp_listen = [\"tcp://127.0.0.1:{msrp}\"]\n\n\
         [identity]\nname = \"iwf\"\nhost = \"127.0.0.1\"\nuri = \"sip:iwf@iwf.example\"\n\n\
         [iwf]\nsystem = \"email\"\ntarget = \"127.0.0.1:{smtp}\"\nreport = \"on-ack\"\n"
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
    let node = iwf(smtp.port);
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
            "defects=0",
        ],
        "what the SMTP server stored"
    );

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
