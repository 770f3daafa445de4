//! Caller mistakes, and what a peer did wrong.

use std::time::Duration;

use thiserror::Error;

use crate::ids::ConnId;
use crate::interworking::ConvertError;

/// A caller's mistake: the entity's state is unchanged (peer faults never
/// come back as `Err`; they become [`crate::Event::PeerError`] or a SIP/MSRP
/// error response).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UsageError {
    /// [`crate::Input::Connected`] named a hop this entity does not have.
    #[error("unknown hop")]
    UnknownHop,
    /// The command does not fit this entity's role (only a sending Client sends).
    #[error("command not supported by this role")]
    WrongRole,
    /// The command does not fit the entity's state.
    #[error("command in the wrong state")]
    WrongState,
    /// The Content-Type is not a media type.
    #[error("invalid content type")]
    ContentType,
    /// A recipient URI cannot be written into a resource list.
    #[error("invalid recipient list")]
    Recipients,
    /// The configured host does not fit an MSRP URI.
    #[error("host does not fit an MSRP URI")]
    Host,
    /// The preset asks for an impossible opener/trigger pair.
    #[error("preset opener and trigger do not fit")]
    Preset,
    /// No session of this entity has this id (it may have ended).
    #[error("unknown session")]
    UnknownSession,
    /// A session with this id is running.
    #[error("a session with this id is running")]
    DuplicateSession,
    /// [`crate::Input::Accepted`] named a connection that is open already.
    #[error("the connection is known already")]
    DuplicateConn,
    /// [`crate::Input::NonCpmAck`] named no hand-over waiting for one.
    #[error("unknown non-CPM delivery")]
    UnknownDelivery,
    /// The SIP user agent refused a command (a bug in this crate).
    #[error("SIP user agent refused a command")]
    Sip,
}

/// What a peer did wrong ([`crate::Event::PeerError`]); the entity answered
/// as the RFC says, or dropped what could not be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PeerError {
    /// A SIP message the user agent or proxy refused or dropped (RFC 3261).
    #[error("SIP: {0}")]
    Sip(&'static str),
    /// A SIP datagram that does not parse (RFC 3261 s.18.3), dropped.
    #[error("SIP datagram: {0}")]
    SipDatagram(sip_lite::sip::ParseError),
    /// A request that would start a session beyond
    /// [`crate::EntityConfig::max_sessions`]: answered 503 (RFC 3261 s.21.5.4).
    #[error("{sessions} sessions already: request refused with 503")]
    AtCapacity {
        /// The sessions running.
        sessions: usize,
    },
    /// A link's MSRP framing failed (RFC 4975 s.6): the link is closed.
    #[error("MSRP framing: {0}")]
    MsrpFraming(msrp_core::ParseError),
    /// An MSRP request or response broke RFC 4975 in a session.
    #[error("MSRP: {0}")]
    Msrp(msrp_core::ParseError),
    /// A link a peer opened that no session used for
    /// [`crate::EntityConfig::bind_timeout`] (none bound it, or its sessions
    /// ended and the peer kept it open): closed (RFC 4975 s.4).
    #[error("link {conn} unused for {after:?}: closed")]
    LinkUnused {
        /// The link.
        conn: ConnId,
        /// The deadline it missed.
        after: Duration,
    },
    /// A peer kept a link past one of its deadlines (it did not read the
    /// answers owed to it, or the link stayed silent): closed.
    #[error("link {conn} closed: {timeout:?}")]
    LinkTimedOut {
        /// The link.
        conn: ConnId,
        /// Which deadline.
        timeout: msrp_core::link::LinkTimeout,
    },
    /// Content the IWF cannot convert for its non-CPM system: refused with
    /// a failure REPORT.
    #[error("interworking: {0}")]
    Interworking(ConvertError),
    /// A message to the sender that is not an IMDN delivery notification
    /// (RFC 5438 s.7.2.1).
    #[error("IMDN: a message to the sender that is not a delivery notification")]
    NotANotification,
}
