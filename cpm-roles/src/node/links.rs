//! A session's MSRP links: binding a hop to a connection, frames in by
//! To-Path, and closing what this side opened.

use super::*;

/// The most To-Path spellings a session remembers per connection.
const MAX_SPELLINGS: usize = 16;

impl Node {
    pub(super) fn bind(&mut self, index: usize, conn: ConnId, opened: bool) {
        let now = self.now;
        let hop = &mut self.hops[index];
        hop.conn = Some(conn);
        hop.opened = opened;
        if let Some(s) = hop.session.as_mut() {
            let _ = s.handle(now, session::Input::LinkUp);
        }
        self.hop_input(index, HopInput::LinkUp);
    }
    pub(super) fn close_hop(&mut self, index: usize) {
        let now = self.now;
        let hop = &mut self.hops[index];
        if hop.closed {
            return;
        }
        // The hop is over: a link of it that comes up later is closed at once;
        // the passive side's link is closed by its opener, and this session
        // lets go of it (the element closes it if no session uses it for
        // a while, RFC 4975 s.4).
        hop.closed = true;
        if !hop.opened {
            if let Some(conn) = hop.conn {
                self.leave_conn(conn, index);
            }
            return;
        }
        let hop = &mut self.hops[index];
        if let Some(conn) = hop.conn.take() {
            if let Some(s) = hop.session.as_mut() {
                let _ = s.handle(now, session::Input::LinkDown);
            }
            // One CloseLink per hop this side connected: on a reused link it
            // releases this hop's use ([`crate::Server`] closes the link when
            // its last hop lets go).
            self.leave_conn(conn, index);
            self.out.push_back(Output::CloseLink { conn });
        }
    }
    /// Hop `index` no longer uses connection `conn`.
    fn leave_conn(&mut self, conn: ConnId, index: usize) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.hops.retain(|&h| h != index);
            c.routes.retain(|&(_, h)| h != index);
            if c.current == Some(index) {
                c.current = None;
            }
            if c.hops.is_empty() {
                self.conns.remove(&conn);
            }
        }
    }
    /// Whether one of this machine's hops has the session URI `uri`.
    pub(crate) fn owns_uri(&self, uri: &MsrpUri) -> bool {
        self.hops.iter().any(|h| h.local_uri == *uri)
    }
    /// Whether hop `hop` is over (closed, or never existed).
    pub(crate) fn hop_closed(&self, hop: HopId) -> bool {
        usize::try_from(hop.get()).ok().and_then(|i| self.hops.get(i)).map_or(true, |h| h.closed)
    }
    /// [`Node::frame`] as an input: one framer event a [`crate::Server`]
    /// read on `conn`; what it causes comes out with [`Node::settle`], once
    /// the whole read is in (as [`Input::MsrpReceived`] does).
    pub(crate) fn handle_frame(&mut self, now: Instant, conn: ConnId, event: FramerEvent) {
        self.now = self.now.max(now);
        self.frame(conn, event);
    }
    /// Runs every inner machine after [`Node::handle_frame`].
    pub(crate) fn settle(&mut self) {
        self.pump();
    }
    /// The To-Path spellings remembered for `conn`.
    #[cfg(test)]
    pub(crate) fn spellings(&self, conn: ConnId) -> usize {
        self.conns.get(&conn).map_or(0, |c| c.routes.len())
    }
    /// Whether connection `conn` is known here.
    pub(crate) fn has_conn(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }
    /// One framer event read on `conn` (framed here, or by a [`crate::Server`]
    /// that routed it here by its To-Path). A head selects the hop whose
    /// session URI is the first To-Path URI (RFC 4975 s.7.2: a response's
    /// To-Path is our URI too); body pieces and the end-line follow it.
    pub(crate) fn frame(&mut self, conn: ConnId, event: FramerEvent) {
        if let FramerEvent::Head(head) = &event {
            let raw = head.to_path().next().unwrap_or_default();
            if let Some(c) = self.conns.get_mut(&conn) {
                // The To-Path as written selects a hop bound here already (no
                // URI parse or s.6.1 comparison per frame).
                c.current = c.routes.iter().find(|(r, _)| r == raw).map(|(_, index)| *index);
                if c.current.is_some_and(|i| self.hops[i].conn == Some(conn)) {
                    return self.frame_body(conn, event);
                }
                c.current = None;
            }
            let Some(to) = head.to_path_uris().next() else { return };
            let index = self.hops.iter().position(|h| h.local_uri == to);
            let refuse = match index.map(|i| (self.hops[i].conn, self.hops[i].closed)) {
                Some((Some(bound), _)) if bound == conn => None,
                // RFC 4975 s.5.4: the passive side binds the connection to the
                // session whose URI is the first To-Path URI of the first request.
                Some((None, false)) => None,
                // RFC 4975 s.5.4: "If the session is already in use, it MUST
                // reject the request with a 506 response."
                Some((Some(_), _)) => Some(506),
                // RFC 4975 s.5.4: "If no match exists, the node MUST reject the
                // request with a 481 response." (a session that ended, too).
                Some((None, true)) | None => Some(481),
            };
            let (Some(index), None) = (index, refuse) else {
                if let Some(transmit) = refuse.and_then(|status| session::refusal(head, status)) {
                    self.out.push_back(Output::MsrpTransmit { conn, transmit });
                }
                return;
            };
            if self.hops[index].conn.is_none() {
                self.conns.entry(conn).or_default().hops.push(index);
                self.bind(index, conn, false);
            }
            if let Some(c) = self.conns.get_mut(&conn) {
                c.current = Some(index);
                // A peer can spell one URI many ways: a few spellings are kept.
                if c.routes.len() < MAX_SPELLINGS {
                    c.routes.push((raw.to_owned(), index));
                }
            }
        }
        self.frame_body(conn, event);
    }
    /// Hands a frame event to the session of the hop reading on `conn`.
    pub(super) fn frame_body(&mut self, conn: ConnId, event: FramerEvent) {
        let Some(index) = self.conns.get(&conn).and_then(|c| c.current) else { return };
        let now = self.now;
        if let Some(s) = self.hops[index].session.as_mut() {
            let _ = s.handle(now, session::Input::Frame(event));
        }
    }
}
