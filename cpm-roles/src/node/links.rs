//! A hop's MSRP link: up (connected, reused, or bound by the first
//! request), lost, or let go when the hop is over. The links themselves
//! (framing, routing by To-Path, reuse, write windows) are the element's
//! [`Links`].

use super::*;

impl Step<'_> {
    /// Hop `index` is on a link that is up: its [`HopLink`] learns it once.
    pub(super) fn link_up(&mut self, index: usize) {
        let Some(hop) = self.hops.get_mut(index) else { return };
        if hop.up || hop.closed {
            return;
        }
        hop.up = true;
        self.hop_input(index, HopInput::LinkUp);
    }

    /// Hop `index` lost its link: before its work was done (the message and
    /// its REPORT across), the hop fails and its leg ends.
    pub(super) fn link_lost(&mut self, index: usize) {
        let Some(hop) = self.hops.get_mut(index) else { return };
        let ended_here = hop.closed;
        hop.closed = true;
        if !ended_here && !hop.done {
            let member = self.member_of(index);
            self.event(Event::HopFailed { member });
            self.hop_lost(index);
        }
    }

    /// The hop is over: its session leaves the element's links. A link this
    /// side opened closes when no hop is left on it (until then the hop's
    /// release is [`Event::LinkReleased`]); a link the peer opened is the
    /// peer's to close (the element closes it if no session uses it for a
    /// while, RFC 4975 s.4).
    pub(super) fn close_hop(&mut self, index: usize) {
        let Some(hop) = self.hops.get_mut(index) else { return };
        if hop.closed {
            return;
        }
        hop.closed = true;
        let Some(key) = hop.session.take() else { return };
        let label = hop.label.clone();
        let now = self.now;
        let released = self.links.close(now, key);
        self.links_said();
        if let Some(conn) = released {
            self.event(Event::LinkReleased { hop: label, conn });
        }
    }
}
