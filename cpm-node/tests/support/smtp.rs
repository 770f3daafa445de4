//! A real SMTP server for the tests: `tests/servers/smtp_sink.py`
//! (Python's aiosmtpd), which parses each message it takes with Python's
//! `email` package and writes one line per message.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running `tests/servers/smtp_sink.py`, stopped when dropped.
pub(crate) struct SmtpSink {
    child: Child,
    pub(crate) port: u16,
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
    pub(crate) fn start(test: &str, dir: &Path) -> Option<Self> {
        let importable = Command::new("python3").args(["-c", "import aiosmtpd"]).output();
        if !importable.is_ok_and(|o| o.status.success()) {
            eprintln!("SKIP {test}: python3 with aiosmtpd is not installed (pip install aiosmtpd)");
            return None;
        }
        let port = super::node::free_port();
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
    pub(crate) fn stored(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out).unwrap_or_default().lines().map(str::to_owned).collect()
    }
}
