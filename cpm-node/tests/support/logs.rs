//! What the runtime logs at WARN and ERROR (its `tracing` events: an input
//! an entity refused, a SIP message rejected, a flow with no socket ...),
//! for a test that asserts it had nothing to complain about.
//!
//! The log is global to the test binary, so a test that reads it holds
//! [`capture`] for its whole run: the tests of one binary that capture run
//! one at a time.

use std::io::{self, Write};
use std::sync::{Mutex, Once, PoisonError};

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
static INSTALL: Once = Once::new();

/// Appends what the subscriber writes to [`LOG`].
struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        LOG.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The runtime's warnings and errors since [`capture`].
pub(crate) struct Logs {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    from: usize,
}

/// Waits until no other test of this binary captures, then captures the
/// runtime's warnings and errors from now on.
pub(crate) async fn capture() -> Logs {
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(|| Sink)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this test binary");
    });
    let serial = SERIAL.lock().await;
    let from = LOG.lock().unwrap_or_else(PoisonError::into_inner).len();
    Logs { _serial: serial, from }
}

impl Logs {
    /// Each line logged since the capture began.
    pub(crate) fn lines(&self) -> Vec<String> {
        let log = LOG.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(log.get(self.from..).unwrap_or_default()).lines().map(str::to_owned).collect()
    }
}
