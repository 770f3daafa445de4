//! The SIP side of a session: the user agent's legs (one upstream, any
//! number downstream), answering, ACK policy, and how legs end.

use super::*;

impl Step<'_> {
    pub(super) fn ua_event(&mut self, event: ua::Event) {
        match event {
            ua::Event::IncomingCall { leg, request } => self.incoming_call(leg, &request),
            ua::Event::Answered { leg, response } => self.answered(leg, &response),
            ua::Event::Acked { leg, .. } => self.acked(leg),
            ua::Event::Ended { leg, reason } => self.ended(leg, reason),
            ua::Event::PeerError { reason, .. } => {
                self.event(Event::PeerError { error: PeerError::Sip(reason) });
            }
            _ => {}
        }
    }
    pub(super) fn respond(&mut self, leg: LegId, code: u16, body: Bytes) {
        let content_type = if body.is_empty() { None } else { Some("application/sdp".to_owned()) };
        let _ = self.ua_input(ua::Input::Command(ua::Command::Respond { leg, code, body, content_type }));
    }
    pub(super) fn incoming_call(&mut self, leg: LegId, request: &Message) {
        if self.up.is_some() {
            // One SIP session per machine: a new INVITE in this dialog (a
            // re-INVITE) is not supported (a [`crate::Server`] gives every
            // other Call-ID its own machine).
            self.respond(leg, 486, Bytes::new());
            return;
        }
        let (sdp_body, list) = match split_body(request, self.config.max_list_members) {
            Ok(split) => split,
            Err(status) => {
                self.respond(leg, status, Bytes::new());
                return;
            }
        };
        let entries = list.as_ref().map(|(_, entries)| entries.as_slice());
        let plan = match self.node.role.as_ref().map(|role| role.plan(request, entries, &self.node.config)) {
            Some(Ok(plan)) => plan,
            Some(Err(status)) => {
                self.respond(leg, status, Bytes::new());
                return;
            }
            None => return,
        };
        let Plan { up_hop, up_label, streaming, down, answer_now, pass_list } = plan;
        let Ok(offer) = MsrpSdp::parse(sdp_body) else {
            self.respond(leg, 488, Bytes::new());
            return;
        };
        let Ok(index) = self.new_hop(up_hop, &up_label, Side::Answerer) else {
            self.respond(leg, 500, Bytes::new());
            return;
        };
        let want = self.config.preset.want_opener(up_hop);
        let Ok(answer) = answer_offer(&offer, self.hops[index].local_uri.clone(), &self.config.capabilities, want)
        else {
            self.hops.pop();
            self.respond(leg, 488, Bytes::new());
            return;
        };
        let offer_media = offer.first_active();
        let peer = answer.negotiated.peer.clone();
        let remote_path = offer_media.map(|m| m.path().to_vec()).unwrap_or_default();
        self.hop_input(index, HopInput::OfferReceived { setup: offer_media.and_then(|m| m.setup()), peer });
        self.hop_input(index, HopInput::AnswerSent { setup: answer.media.setup });
        self.make_session(index, remote_path, answer.negotiated.opener, streaming);
        self.answer = Some(self.sdp(&answer.media));
        let user = request.request_uri_str().unwrap_or_default().to_owned();
        self.up = Some(Leg::new(leg, index, user));
        self.peer_uri = request.from().map(|f| f.uri().to_string()).unwrap_or_default();
        self.recipient_uri = request.to().map(|t| t.uri().to_string()).unwrap_or_default();
        let intent = answer.intent;
        for (n, d) in down.iter().enumerate() {
            let Ok(index) = self.new_hop(d.hop, &d.label, Side::Offerer) else { continue };
            let offer = build_offer(self.hops[index].local_uri.clone(), &self.config.capabilities, intent.as_ref());
            let sdp = self.sdp(&offer);
            // PF(A) passes an ad-hoc list on to the CF; the CF's INVITE#3 has none.
            let passed = list.as_ref().filter(|_| pass_list).map(|(part, _)| part);
            let Some((sdp, sdp_type)) = with_list(sdp, passed) else { continue };
            let setup = offer.setup;
            self.hops[index].offer = Some(offer);
            let out_leg = LegId::new(n as u64 + 1);
            let from =
                request.from().map(|f| f.uri().to_string()).unwrap_or_else(|| format!("sip:{}", self.config.host));
            let member = if d.target.is_empty() {
                request.request_uri_str().unwrap_or_default().to_owned()
            } else {
                d.target.clone()
            };
            let _ = self.ua_input(ua::Input::Command(ua::Command::Invite {
                leg: out_leg,
                flow: d.flow,
                transport: self.config.transport(d.flow),
                target: member.clone(),
                from,
                body: sdp,
                content_type: Some(sdp_type),
            }));
            self.hop_input(index, HopInput::OfferSent { setup });
            self.down.push(Leg::new(out_leg, index, member));
        }
        if answer_now {
            self.answer_upstream();
        }
    }
    pub(super) fn answer_upstream(&mut self) {
        if self.answer_sent {
            return;
        }
        let Some(up) = self.up.as_ref() else { return };
        let (leg, index) = (up.leg, up.hop);
        self.answer_sent = true;
        let body = self.answer.take().unwrap_or_default();
        self.respond(leg, 200, body);
        if let Some(up) = self.up.as_mut() {
            up.answered = true;
        }
        self.hop_input(index, HopInput::SuccessSent);
    }
    pub(super) fn answered(&mut self, leg: LegId, response: &Message) {
        let Some(pos) = self.down.iter().position(|l| l.leg == leg) else { return };
        let index = self.down[pos].hop;
        self.down[pos].answered = true;
        let parsed = MsrpSdp::parse(response.body());
        let check = match (&self.hops[index].offer, parsed) {
            (Some(offer), Ok(answer)) => check_answer(offer, None, &answer),
            _ => AnswerCheck::Failed(cpm_negotiation::Refusal::NoMsrpMedia),
        };
        let AnswerCheck::Usable(negotiated) = check else {
            // The 200 is final: ACK it, then end the dialog with BYE.
            self.send_ack(pos);
            let _ = self.ua_input(ua::Input::Command(ua::Command::End { leg }));
            let member = self.member_of(index);
            self.event(Event::HopFailed { member });
            return;
        };
        let remote_path = negotiated.peer.as_ref().map(|p| p.path.clone()).unwrap_or_default();
        let setup = MsrpSdp::parse(response.body()).ok().and_then(|s| s.first_active().and_then(|m| m.setup()));
        self.hop_input(index, HopInput::AnswerReceived { setup, peer: negotiated.peer.clone() });
        self.make_session(index, remote_path, negotiated.opener, false);
        let at_once = self.node.role.as_ref().is_some_and(|role| role.acks_at_once());
        if at_once || self.config.ack_policy == AckPolicy::OnDownstreamSuccess || self.upstream_acked {
            self.send_ack(pos);
        }
        self.hop_input(index, HopInput::SuccessReceived);
        self.with_role(|role, step| role.answered(step, index));
    }
    pub(super) fn send_ack(&mut self, pos: usize) {
        if self.down[pos].acked {
            return;
        }
        self.down[pos].acked = true;
        let (leg, index) = (self.down[pos].leg, self.down[pos].hop);
        let _ = self.ua_input(ua::Input::Command(ua::Command::Ack { leg }));
        self.hop_input(index, HopInput::AckSent);
    }
    pub(super) fn acked(&mut self, leg: LegId) {
        let Some(up) = self.up.as_mut() else { return };
        if up.leg != leg {
            return;
        }
        up.acked = true;
        let index = up.hop;
        self.upstream_acked = true;
        self.hop_input(index, HopInput::AckReceived);
        for pos in 0..self.down.len() {
            let hop = self.down[pos].hop;
            // The CF never sends ACK#3 before it has 200#3 (seed 000 step 111).
            if self.down[pos].answered {
                self.send_ack(pos);
            }
            self.hop_input(hop, HopInput::UpstreamAck);
        }
    }
    pub(super) fn ended(&mut self, leg: LegId, reason: ua::EndReason) {
        if self.up.as_ref().is_some_and(|up| up.leg == leg && !up.ended) {
            self.up_leg_over();
            return;
        }
        let Some(pos) = self.down.iter().position(|l| l.leg == leg) else { return };
        let outcome = match reason {
            // RFC 3261 s.21.4.9: a 408 from downstream is a timeout there.
            ua::EndReason::TimedOut | ua::EndReason::Rejected { status: 408 } => Outcome::TimedOut,
            ua::EndReason::Rejected { status } => Outcome::Refused { status },
            _ => Outcome::SessionEnded,
        };
        self.down_leg_over(pos, outcome);
    }
    /// The upstream leg is over (its end, or its link lost): its hop closes,
    /// every downstream leg ends, and the session has ended.
    fn up_leg_over(&mut self) {
        let Some(up) = self.up.as_mut().filter(|up| !up.ended) else { return };
        up.ended = true;
        let index = up.hop;
        self.close_hop(index);
        for pos in 0..self.down.len() {
            self.end_down(pos);
        }
        self.event(Event::SessionEnded);
    }
    /// Downstream leg `pos` is over with `outcome` (its end, or its link
    /// lost): the role learns it once, and once every downstream leg is
    /// over, the upstream leg ends.
    fn down_leg_over(&mut self, pos: usize, outcome: Outcome) {
        if self.down[pos].ended {
            return;
        }
        self.down[pos].ended = true;
        let index = self.down[pos].hop;
        self.close_hop(index);
        self.with_role(|role, step| role.leg_ended(step, pos, outcome));
        let status = outcome.status();
        if self.down.iter().all(|l| l.ended) {
            if let Some(up) = self.up.as_ref() {
                if !up.ended {
                    let leg = up.leg;
                    if up.answered {
                        // The IMDNs and the REPORT owed upstream go before the BYE.
                        self.end_up_pending = true;
                    } else if status < 300 {
                        let _ = self.ua_input(ua::Input::Command(ua::Command::End { leg }));
                    } else {
                        // Every destination refused before we answered: pass the refusal on.
                        self.respond(leg, status, Bytes::new());
                    }
                }
            } else {
                self.event(Event::SessionEnded);
            }
        }
    }
    pub(super) fn end_down(&mut self, pos: usize) {
        let leg = self.down[pos].leg;
        let index = self.down[pos].hop;
        self.close_hop(index);
        let _ = self.ua_input(ua::Input::Command(ua::Command::End { leg }));
    }
    /// [`Command::End`]: every leg ends (CANCEL, refusal or BYE, as
    /// the UA's `End` does for the leg's state).
    pub(super) fn end_session(&mut self) {
        if let Some(leg) = self.up.as_ref().filter(|l| !l.ended).map(|l| l.leg) {
            let _ = self.ua_input(ua::Input::Command(ua::Command::End { leg }));
        }
        for pos in 0..self.down.len() {
            if !self.down[pos].ended {
                self.end_down(pos);
            }
        }
    }
    /// Hop `index` lost its link (or its message) before its work was done:
    /// its SIP leg ends; [`Node::ended`] then does the rest (a member's
    /// failed outcome, the sender's outcome, or the relay's other side).
    pub(super) fn hop_lost(&mut self, index: usize) {
        if self.hops[index].done {
            return;
        }
        self.hops[index].done = true;
        if let Some(leg) = self.up.as_ref().filter(|l| l.hop == index && !l.ended).map(|l| l.leg) {
            let _ = self.ua_input(ua::Input::Command(ua::Command::End { leg }));
            // As for a member below: the other side goes now, not when a
            // dead peer's BYE times out.
            self.up_leg_over();
        } else if let Some(pos) = self.down.iter().position(|l| l.hop == index && !l.ended) {
            self.with_role(|role, step| role.leg_lost(step, pos));
            self.end_down(pos);
            // The member is gone now, whatever its BYE does: a peer that
            // died answers nothing, and the BYE would wait out RFC 3261
            // Timer F (64*T1, 32 s) before its leg ended.
            self.down_leg_over(pos, Outcome::LinkLost);
        }
    }
}
