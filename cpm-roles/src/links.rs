//! The MSRP links of one element: msrp-core's [`Endpoint`] (one framer per
//! link, frames routed by To-Path, links reused by [`LinkKey`], writes paced
//! by a window the runtime opens with [`Input::MsrpWritten`], sessions of a
//! shared link taking turns, RFC 4975 s.5.4, s.7.1.1), with the names the
//! runtime uses.
//!
//! The runtime names every connection ([`ConnId`]): the ones it accepted,
//! and the ones it opened when asked, named in [`Input::Connected`]. The
//! endpoint names a link when it asks for it, before the runtime has; this
//! layer maps one name to the other.
//!
//! [`Input::MsrpWritten`]: crate::Input::MsrpWritten
//! [`Input::Connected`]: crate::Input::Connected

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use msrp_core::link::{self, Endpoint, EndpointConfig, LinkTimeout, SessionKey};
use msrp_core::session::{self, Session};

use crate::error::PeerError;
use crate::ids::{ConnId, HopId, SessionId};
use crate::node::Work;
use crate::{Event, Output};

/// Why a hop that asked to connect is not waiting for a new link.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Connecting {
    /// A new link is asked for under this element hop id.
    Opening(HopId),
    /// A link this element opened before carries the hop too: the
    /// runtime's name for it, `None` while it is being opened.
    Reused(Option<ConnId>),
    /// The session's path names no host and port, or it is passive.
    Failed,
}

/// The element's MSRP links and sessions.
pub(crate) struct Links {
    endpoint: Endpoint,
    /// Which session and hop each MSRP session is.
    owners: HashMap<SessionKey, (SessionId, usize)>,
    next_key: u64,
    next_conn: u64,
    next_hop: u32,
    /// Endpoint link name to the runtime's, and back.
    runtime: HashMap<ConnId, ConnId>,
    internal: HashMap<ConnId, ConnId>,
    /// Links asked for and not yet connected, by the hop id in
    /// [`crate::Output::Connect`].
    connecting: HashMap<HopId, ConnId>,
    /// Endpoint links this element opened (the others a peer opened).
    opened: HashSet<ConnId>,
    /// Links the runtime could not open, until the endpoint says so.
    refused: HashSet<ConnId>,
}

impl Links {
    pub(crate) fn new(config: EndpointConfig, now: Instant) -> Self {
        Self {
            endpoint: Endpoint::new(config, now),
            owners: HashMap::new(),
            next_key: 0,
            next_conn: 0,
            next_hop: 0,
            runtime: HashMap::new(),
            internal: HashMap::new(),
            connecting: HashMap::new(),
            opened: HashSet::new(),
            refused: HashSet::new(),
        }
    }

    /// A session.
    pub(crate) fn session(&self, key: SessionKey) -> Option<&Session> {
        self.endpoint.session(key)
    }

    /// The endpoint link a session is on.
    pub(crate) fn link_of(&self, key: SessionKey) -> Option<ConnId> {
        self.endpoint.link_of(key)
    }

    /// Which session and hop an MSRP session is.
    pub(crate) fn owner(&self, key: SessionKey) -> Option<(SessionId, usize)> {
        self.owners.get(&key).copied()
    }

    /// The sessions with an MSRP session on the runtime's connection `conn`.
    pub(crate) fn owners_on(&self, conn: ConnId) -> Vec<SessionId> {
        let Some(internal) = self.endpoint_conn(conn) else { return Vec::new() };
        let mut slots: Vec<SessionId> = self
            .endpoint
            .sessions_on(internal)
            .iter()
            .filter_map(|key| self.owner(*key))
            .map(|(slot, _)| slot)
            .collect();
        slots.dedup();
        slots
    }

    /// Links open or being opened.
    pub(crate) fn link_count(&self) -> usize {
        self.endpoint.link_count()
    }

    /// No link open, none asked for (one every session left while it was
    /// being opened is still owed a close when the runtime answers).
    pub(crate) fn is_idle(&self) -> bool {
        self.endpoint.link_count() == 0 && self.connecting.is_empty()
    }

    /// Bytes the framers hold (partial heads and end-lines).
    pub(crate) fn framer_bytes(&self) -> usize {
        self.endpoint.framer_bytes()
    }

    /// The runtime's name for an endpoint link (`None` while it is opened).
    pub(crate) fn runtime_conn(&self, conn: ConnId) -> Option<ConnId> {
        self.runtime.get(&conn).copied()
    }

    /// The endpoint's name for a runtime connection.
    pub(crate) fn endpoint_conn(&self, conn: ConnId) -> Option<ConnId> {
        self.internal.get(&conn).copied()
    }

    fn fresh_conn(&mut self) -> ConnId {
        loop {
            let conn = ConnId::new(self.next_conn);
            self.next_conn = self.next_conn.wrapping_add(1);
            if !self.runtime.contains_key(&conn) && !self.connecting.values().any(|c| *c == conn) {
                return conn;
            }
        }
    }

    /// Adds hop `index` of session `slot`'s MSRP session (not on a link yet).
    pub(crate) fn add(&mut self, now: Instant, slot: SessionId, index: usize, session: Session) -> SessionKey {
        let key = SessionKey::new(self.next_key);
        self.next_key += 1;
        self.owners.insert(key, (slot, index));
        let add = link::Command::Add { key, session: Box::new(session) };
        // A fresh key is never a duplicate.
        let _ = self.endpoint.handle(now, link::Input::Command(add));
        key
    }

    /// A command for a session; one it cannot take (its queue is full
    /// before the link is up) is dropped, as a lost link would drop it.
    pub(crate) fn command(&mut self, now: Instant, key: SessionKey, command: session::Command) {
        let _ = self.endpoint.handle(now, link::Input::Command(link::Command::Session { key, command }));
    }

    /// Puts an active session on a link: one this element opened to the
    /// same [`LinkKey`] (RFC 4975 s.5.4), or a new one.
    pub(crate) fn connect(&mut self, now: Instant, key: SessionKey) -> Connecting {
        let conn = self.fresh_conn();
        let connect = link::Command::Connect { key, conn };
        if self.endpoint.handle(now, link::Input::Command(connect)).is_err() {
            return Connecting::Failed;
        }
        match self.endpoint.link_of(key) {
            Some(on) if on == conn => {
                let hop = HopId::new(self.next_hop);
                self.next_hop = self.next_hop.wrapping_add(1);
                self.connecting.insert(hop, conn);
                self.opened.insert(conn);
                Connecting::Opening(hop)
            }
            Some(on) => Connecting::Reused(self.runtime_conn(on)),
            None => Connecting::Failed,
        }
    }

    /// Whether an endpoint link is up.
    pub(crate) fn is_up(&self, conn: ConnId) -> bool {
        self.endpoint.is_link_up(conn)
    }

    /// The sessions on an endpoint link.
    pub(crate) fn sessions_on(&self, conn: ConnId) -> &[SessionKey] {
        self.endpoint.sessions_on(conn)
    }

    /// A session leaves its link and the element: the runtime's name of a
    /// link this element opened that other sessions go on using (the
    /// session released it), else `None`.
    pub(crate) fn close(&mut self, now: Instant, key: SessionKey) -> Option<ConnId> {
        self.owners.remove(&key);
        let conn = self.endpoint.link_of(key);
        let _ = self.endpoint.handle(now, link::Input::Command(link::Command::Close { key }));
        let conn = conn.filter(|c| self.opened.contains(c) && !self.endpoint.sessions_on(*c).is_empty())?;
        self.runtime_conn(conn)
    }

    /// Takes the endpoint's outputs, in order: what the runtime does into
    /// `out` (frames, closes, reading), what a session's hop learns (its
    /// session's events, its link up or lost) into `work`.
    pub(crate) fn drain(&mut self, out: &mut VecDeque<Output>, work: &mut VecDeque<(SessionId, Work)>) {
        while let Some(output) = self.endpoint.poll_output() {
            match output {
                // Asked for in `connect` (the hop waits for its answer there).
                link::Output::Connect { .. } => {}
                link::Output::Transmit { conn, transmit } => {
                    if let Some(conn) = self.runtime_conn(conn) {
                        out.push_back(Output::MsrpTransmit { conn, transmit });
                    }
                }
                link::Output::Close { conn } => {
                    if let Some(conn) = self.forget(conn) {
                        out.push_back(Output::CloseLink { conn });
                    }
                }
                link::Output::PauseReading { conn } => {
                    if let Some(conn) = self.runtime_conn(conn) {
                        out.push_back(Output::PauseReading { conn });
                    }
                }
                link::Output::ResumeReading { conn } => {
                    if let Some(conn) = self.runtime_conn(conn) {
                        out.push_back(Output::ResumeReading { conn });
                    }
                }
                link::Output::LinkDown { conn, sessions } => {
                    // Never up: the runtime could not open it (a link the
                    // endpoint closes itself, on a deadline or a framing
                    // error, was up: its `Close` came first).
                    let never_up = self.refused.remove(&conn);
                    self.forget(conn);
                    for key in sessions {
                        let Some((slot, index)) = self.owner(key) else { continue };
                        work.push_back((
                            slot,
                            if never_up { Work::ConnectFailed(index) } else { Work::LinkLost(index) },
                        ));
                    }
                }
                link::Output::LinkTimedOut { conn, timeout } => {
                    let Some(conn) = self.runtime_conn(conn) else { continue };
                    let error = match timeout {
                        // RFC 4975 s.4: a link no session uses is closed after a while.
                        LinkTimeout::NeverBound => {
                            PeerError::LinkUnused { conn, after: self.endpoint.config().bind_timeout }
                        }
                        timeout => PeerError::LinkTimedOut { conn, timeout },
                    };
                    out.push_back(Output::Event { session: None, event: Event::PeerError { error } });
                }
                link::Output::LinkError { error, .. } => {
                    // RFC 4975 s.6: once framing is lost nothing more on the link
                    // can be read; the endpoint closes it and its sessions lose it.
                    let error = PeerError::MsrpFraming(error);
                    out.push_back(Output::Event { session: None, event: Event::PeerError { error } });
                }
                link::Output::Event { session, event } => {
                    let Some((slot, index)) = self.owner(session) else { continue };
                    work.push_back((slot, Work::Msrp(index, event)));
                }
                _ => {}
            }
        }
    }

    /// The runtime accepted connection `conn`.
    pub(crate) fn accepted_conn(&mut self, now: Instant, conn: ConnId) -> Result<(), link::UsageError> {
        if self.internal.contains_key(&conn) {
            return Err(link::UsageError::DuplicateConn);
        }
        let internal = self.fresh_conn();
        self.endpoint.handle(now, link::Input::Accepted { conn: internal })?;
        self.name(internal, conn);
        Ok(())
    }

    fn name(&mut self, internal: ConnId, conn: ConnId) {
        self.runtime.insert(internal, conn);
        self.internal.insert(conn, internal);
    }

    /// The link asked for as `hop` is up as the runtime's `conn`: the
    /// endpoint link, or `None` when the hop is unknown. A link every session
    /// left while it was being opened is closed at once (`Some(None)`).
    pub(crate) fn connected(&mut self, now: Instant, hop: HopId, conn: ConnId) -> Option<Option<ConnId>> {
        let internal = self.connecting.remove(&hop)?;
        if self.endpoint.handle(now, link::Input::Connected { conn: internal }).is_err() {
            return Some(None);
        }
        self.name(internal, conn);
        Some(Some(internal))
    }

    /// The link asked for as `hop` could not be opened: the endpoint link,
    /// `None` when the hop is unknown.
    pub(crate) fn connect_failed(&mut self, now: Instant, hop: HopId) -> Option<ConnId> {
        let internal = self.connecting.remove(&hop)?;
        // The endpoint says so with `LinkDown` (none when every session left
        // the link while it was being opened: it is forgotten already).
        if self.endpoint.has_link(internal) {
            self.refused.insert(internal);
        }
        let _ = self.endpoint.handle(now, link::Input::Closed { conn: internal });
        Some(internal)
    }

    /// An input about a runtime connection (bytes read, bytes written, the
    /// peer closed it); one the element does not know is ignored.
    pub(crate) fn conn_input(&mut self, now: Instant, conn: ConnId, input: impl FnOnce(ConnId) -> link::Input) {
        let Some(internal) = self.endpoint_conn(conn) else { return };
        let _ = self.endpoint.handle(now, input(internal));
    }

    /// A timer may have expired.
    pub(crate) fn timeout(&mut self, now: Instant) {
        let _ = self.endpoint.handle(now, link::Input::Timeout);
    }

    /// Holds the reading of an endpoint link back, or lets it go.
    pub(crate) fn set_reading(&mut self, conn: ConnId, read: bool) {
        self.endpoint.set_reading(conn, read);
    }

    /// Whether the endpoint has outputs not taken yet.
    pub(crate) fn has_output(&self) -> bool {
        self.endpoint.has_output()
    }

    /// When the endpoint's next timer is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.endpoint.poll_timeout()
    }

    /// Forgets an endpoint link the endpoint let go of (closed or lost):
    /// the runtime's name for it, `None` while it is being opened (the
    /// runtime's answer to the connect then closes it).
    pub(crate) fn forget(&mut self, conn: ConnId) -> Option<ConnId> {
        self.opened.remove(&conn);
        let runtime = self.runtime.remove(&conn)?;
        self.internal.remove(&runtime);
        Some(runtime)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;
    use crate::ids::SimulationIds;
    use msrp_core::session::{LinkRole, SessionConfig};
    use msrp_core::MsrpUri;

    #[expect(clippy::disallowed_methods, reason = "test epoch")]
    fn epoch() -> Instant {
        Instant::now()
    }

    /// A link every session left while it was being opened, then refused by
    /// the runtime, leaves nothing behind; a refused link its session still
    /// waits for is a failed connect for that session.
    #[test]
    fn a_refused_connect_leaves_nothing_behind() {
        let now = epoch();
        let mut links = Links::new(EndpointConfig::default(), now);
        let session = |id: &str| {
            let local = MsrpUri::parse_str(&format!("msrp://a.example.com:2855/{id};tcp")).unwrap();
            let peer = MsrpUri::parse_str("msrp://b.example.com:2855/peer;tcp").unwrap();
            Session::new(SessionConfig::new(local, vec![peer], LinkRole::Active), now, Box::new(SimulationIds::new(1)))
        };
        let slot = SessionId::new(1);
        let abandoned = links.add(now, slot, 0, session("s1"));
        let Connecting::Opening(hop) = links.connect(now, abandoned) else { panic!("a new link") };
        assert_eq!(links.close(now, abandoned), None);
        assert!(links.connect_failed(now, hop).is_some());
        let (mut out, mut work) = (VecDeque::new(), VecDeque::new());
        links.drain(&mut out, &mut work);
        assert!(links.refused.is_empty() && links.connecting.is_empty() && work.is_empty(), "{work:?}");
        let waiting = links.add(now, slot, 1, session("s2"));
        let Connecting::Opening(hop) = links.connect(now, waiting) else { panic!("a new link") };
        links.connect_failed(now, hop);
        links.drain(&mut out, &mut work);
        assert!(matches!(work.pop_front(), Some((s, Work::ConnectFailed(1))) if s == slot), "{work:?}");
        assert!(links.refused.is_empty());
    }
}
