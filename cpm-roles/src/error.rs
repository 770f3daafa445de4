//! Caller mistakes.

use thiserror::Error;

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
    /// [`crate::Input::NonCpmAck`] named no hand-over waiting for one.
    #[error("unknown non-CPM delivery")]
    UnknownDelivery,
    /// The SIP user agent refused a command (a bug in this crate).
    #[error("SIP user agent refused a command")]
    Sip,
}
