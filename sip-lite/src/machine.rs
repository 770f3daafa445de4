//! The inputs and outputs the SIP machines share ([`transaction`](crate::transaction),
//! [`ua`](crate::ua), [`b2bua`](crate::b2bua), [`proxy`](crate::proxy)): each
//! module names them with its own commands and events
//! (`ua::Input = Input<ua::Command>`, `ua::Output = Output<ua::Event>`).

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::ids::FlowId;
use crate::sip::Message;
use crate::transaction::Transport;

/// What comes into a SIP machine; `C` is its commands.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Input<C> {
    /// A whole message read from a flow (on a stream, from a
    /// [`Framer`](crate::sip::Framer)).
    Received {
        /// The flow.
        flow: FlowId,
        /// Its transport.
        transport: Transport,
        /// The message.
        message: Message,
    },
    /// One datagram read from an unreliable flow; the machine parses it.
    Datagram {
        /// The flow.
        flow: FlowId,
        /// The datagram.
        bytes: Bytes,
    },
    /// A timer may have expired.
    Timeout,
    /// A command of the machine's user.
    Command(C),
}

/// What a SIP machine asks of the runtime, or tells its user; `E` is its events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output<E> {
    /// Bytes to send on a flow (one datagram on an unreliable flow).
    Transmit {
        /// The flow.
        flow: FlowId,
        /// Its transport.
        transport: Transport,
        /// One whole message.
        bytes: Bytes,
    },
    /// Something the user must know.
    Event(E),
}

/// `after` from `now`: a deadline. A configured duration too long to add
/// (say `Duration::MAX`) means "about never": a century on, not a panic.
pub(crate) fn later(now: Instant, after: Duration) -> Instant {
    now.checked_add(after).or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400))).unwrap_or(now)
}
