//! Which session a request belongs to, across an endpoint's connections
//! (RFC 4975 s.5.4, s.7.3): the binding of sessions to links.
//!
//! A passive endpoint learns a session's connection from the first request
//! that names the session's URI in its To-Path; from then on the session
//! lives on that connection alone. The router answers where each request
//! goes, or the status to refuse it with (481, 506).

use std::collections::HashMap;
use std::fmt;

use crate::uri::MsrpUri;

/// A transport connection (or datagram flow), named by the runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ConnId(u64);

impl ConnId {
    /// Wraps the runtime's number.
    #[must_use]
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }
    /// The runtime's number.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// Where a request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<S> {
    /// To this session (now bound to the connection, if it was not).
    Session(S),
    /// Refused with this status: 481 (no such session on this endpoint, or
    /// not exactly one To-Path URI), 506 (the session is bound to another
    /// connection).
    Reject(u16),
}

#[derive(Debug)]
struct Slot<S> {
    session: S,
    connection: Option<ConnId>,
}

/// Sessions by local URI (compared by RFC 4975 s.6.1) and their connections.
#[derive(Debug)]
pub struct Router<S> {
    slots: HashMap<MsrpUri, Slot<S>>,
}

impl<S> Default for Router<S> {
    fn default() -> Self {
        Self { slots: HashMap::new() }
    }
}

impl<S: Copy> Router<S> {
    /// An empty router.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a session under its local URI, not yet on any connection.
    /// A session already registered under an equal URI is replaced.
    pub fn add(&mut self, local_uri: MsrpUri, session: S) {
        self.slots.insert(local_uri, Slot { session, connection: None });
    }

    /// Binds a session to the connection it opened (the active side).
    /// Returns `false` for an unknown URI.
    pub fn bind(&mut self, local_uri: &MsrpUri, connection: ConnId) -> bool {
        match self.slots.get_mut(local_uri) {
            Some(slot) => {
                slot.connection = Some(connection);
                true
            }
            None => false,
        }
    }

    /// Forgets a session.
    pub fn remove(&mut self, local_uri: &MsrpUri) -> Option<S> {
        self.slots.remove(local_uri).map(|slot| slot.session)
    }

    /// The connection a session is bound to.
    #[must_use]
    pub fn connection(&self, local_uri: &MsrpUri) -> Option<ConnId> {
        self.slots.get(local_uri).and_then(|slot| slot.connection)
    }

    /// Routes a request that arrived on `connection` with this To-Path.
    pub fn route<'a>(&mut self, connection: ConnId, mut to_path: impl Iterator<Item = &'a MsrpUri>) -> Route<S> {
        // RFC 4975 s.7.3: "the To-Path will have exactly one URI, which MUST
        // map to an existing session that is associated with the connection
        // on which the request arrived. If this is not true, then the
        // receiver MUST generate a 481 error".
        let (Some(uri), None) = (to_path.next(), to_path.next()) else { return Route::Reject(481) };
        let Some(slot) = self.slots.get_mut(uri) else { return Route::Reject(481) };
        match slot.connection {
            // s.5.4: "The node MUST also check to make sure the session is
            // not already in use on another connection. If the session is
            // already in use, it MUST reject the request with a 506 response."
            Some(bound) if bound != connection => Route::Reject(506),
            Some(_) => Route::Session(slot.session),
            None => {
                // s.5.4: "the node MUST assume that the host that formed the
                // connection is the host to which this URI was given."
                slot.connection = Some(connection);
                Route::Session(slot.session)
            }
        }
    }

    /// A connection closed: its sessions are unbound and returned.
    pub fn connection_closed(&mut self, connection: ConnId) -> Vec<S> {
        let mut unbound = Vec::new();
        for slot in self.slots.values_mut() {
            if slot.connection == Some(connection) {
                slot.connection = None;
                unbound.push(slot.session);
            }
        }
        unbound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> MsrpUri {
        MsrpUri::parse_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn binds_on_the_first_request_and_refuses_other_connections() {
        let mut router = Router::new();
        let a = uri("msrp://b.example.com:8888/s1;tcp");
        router.add(a.clone(), 1u32);
        let (c1, c2) = (ConnId::new(1), ConnId::new(2));
        // Scheme and host compare case-insensitively (s.6.1).
        let same = uri("MSRP://B.example.com:8888/s1;TCP");
        assert_eq!(router.route(c1, [&same].into_iter()), Route::Session(1));
        assert_eq!(router.connection(&a), Some(c1));
        assert_eq!(router.route(c1, [&a].into_iter()), Route::Session(1));
        assert_eq!(router.route(c2, [&a].into_iter()), Route::Reject(506));
        assert_eq!(router.connection_closed(c1), vec![1]);
        assert_eq!(router.route(c2, [&a].into_iter()), Route::Session(1));
    }

    #[test]
    fn unknown_or_ambiguous_to_paths_get_481() {
        let mut router = Router::new();
        let a = uri("msrp://b.example.com:8888/s1;tcp");
        router.add(a.clone(), 1u32);
        let other = uri("msrp://b.example.com:8888/S1;tcp");
        let c = ConnId::new(1);
        assert_eq!(router.route(c, [&other].into_iter()), Route::Reject(481), "session-id is case-sensitive");
        assert_eq!(router.route(c, [&a, &a].into_iter()), Route::Reject(481), "exactly one URI");
        assert_eq!(router.route(c, std::iter::empty()), Route::Reject(481));
        assert_eq!(router.connection(&a), None);
    }

    #[test]
    fn active_side_binds_what_it_opened() {
        let mut router = Router::new();
        let a = uri("msrp://a.example.com:7777/s2;tcp");
        router.add(a.clone(), 7u32);
        assert!(router.bind(&a, ConnId::new(9)));
        assert_eq!(router.route(ConnId::new(3), [&a].into_iter()), Route::Reject(506));
        assert_eq!(router.remove(&a), Some(7));
        assert!(!router.bind(&a, ConnId::new(9)));
    }
}
