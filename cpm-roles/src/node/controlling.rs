//! The controlling function (an MSRP switch for a group): it relays the
//! message to every member, learns each member's outcome (its REPORT, or
//! what ended its leg), sends the sender one IMDN per member (RFC 5438),
//! and one success REPORT upstream once every outcome is known (the source documents,
//! "Acknowledgements"); it drops slow members.

use super::*;

/// A controlling function's session.
pub(super) struct Controlling {
    routing: Routing,
    relay: Relay,
    /// Member outcomes per message (REPORT statuses), until the REPORT went
    /// upstream.
    outcomes: HashMap<MessageId, Vec<u16>>,
}

impl Controlling {
    pub(super) fn new(routing: Routing) -> Self {
        Self { routing, relay: Relay::default(), outcomes: HashMap::new() }
    }

    /// One IMDN per member whose outcome is known, on the sender's session
    /// (SPEC "Acknowledgements": never a failure REPORT for one member).
    fn member_imdns(&self, step: &mut Step<'_>) {
        let Some(up) = step.up.as_ref().filter(|l| !l.ended).map(|l| l.hop) else { return };
        let mut messages: Vec<&MessageId> = self.relay.relayed.keys().collect();
        messages.sort();
        let Some(message_id) = messages.first().map(|id| (*id).clone()) else { return };
        let to = step.peer_uri.clone();
        for pos in 0..step.down.len() {
            let Some(status) = step.down[pos].outcome.filter(|_| !step.down[pos].imdn_sent) else { continue };
            step.down[pos].imdn_sent = true;
            let member = step.down[pos].member.clone();
            if let Some(body) = step.imdn(&member, &to, &message_id, status == 200) {
                step.send_on(up, cpim::CONTENT_TYPE.to_owned(), body);
            }
        }
    }

    /// A message sent on member hop `index` is settled with `outcome`.
    fn settled(&mut self, step: &mut Step<'_>, index: usize, message_id: Option<MessageId>, outcome: Outcome) {
        step.hops[index].done = true;
        // One outcome per member: a REPORT after the member's leg already
        // failed changes nothing.
        let Some(leg) = step.down.iter_mut().find(|l| l.hop == index && l.outcome.is_none()) else { return };
        let status = outcome.status();
        leg.reported = true;
        leg.outcome = Some(status);
        let member = leg.member.clone();
        step.event(Event::MemberOutcome { member, outcome });
        let Some(message_id) = message_id else { return };
        self.outcomes.entry(message_id.clone()).or_default().push(status);
        self.member_imdns(step);
        self.report_upstream(step, message_id);
    }

    /// The success REPORT upstream, once every member's outcome (a REPORT,
    /// or its leg's failure) is known.
    fn report_upstream(&mut self, step: &mut Step<'_>, message_id: MessageId) {
        let Some(up) = step.up.as_ref().map(|l| l.hop) else { return };
        let reports = self.outcomes.get(&message_id).map_or(0, Vec::len);
        let known = step.down.iter().all(|l| l.outcome.is_some());
        if reports == 0 || !known {
            return;
        }
        // Settled: nothing more is kept for the message (a late REPORT for it
        // finds no state and changes nothing).
        self.outcomes.remove(&message_id);
        self.relay.relayed.remove(&message_id);
        // SPEC "Acknowledgements": never a failure REPORT on the sender's session
        // for one member; the success REPORT covers the message once every
        // member's outcome is known (each member's own outcome went as an IMDN).
        step.send_report(up, MsrpCommand::Report { message_id, status: 200, byte_range: None });
    }
}

impl RoleLogic for Controlling {
    fn plan(&self, request: &Message, list: Option<&[Entry]>, config: &EntityConfig) -> Result<Plan, u16> {
        let plan = self.routing.plan(request, list, true)?;
        Ok(Plan { answer_now: config.answer_policy == AnswerPolicy::Immediate, ..plan })
    }

    fn relays(&self) -> bool {
        true
    }

    fn leg_ended(&mut self, step: &mut Step<'_>, pos: usize, outcome: Outcome) {
        if step.down[pos].reported {
            return;
        }
        step.down[pos].failed = true;
        step.down[pos].outcome = Some(outcome.status());
        let member = step.down[pos].member.clone();
        step.event(Event::MemberOutcome { member, outcome });
        self.member_imdns(step);
        let messages: Vec<MessageId> = self.relay.relayed.keys().cloned().collect();
        for message_id in messages {
            self.report_upstream(step, message_id);
        }
    }

    fn msrp_event(&mut self, step: &mut Step<'_>, index: usize, event: MsrpEvent) {
        let upstream = step.up.as_ref().is_some_and(|l| l.hop == index);
        if upstream && self.relay.upstream_event(step, &event) {
            if matches!(event, MsrpEvent::MessageStarted { .. }) {
                // Members that failed before the message came get their IMDN now.
                self.member_imdns(step);
            }
            return;
        }
        match event {
            // RFC 4975 s.7.3.2: a REPORT is matched to its message by
            // Message-ID (`handle`); a success REPORT settles the message only
            // once success REPORTs cover all of it (MessageDelivered), a
            // failure REPORT at once.
            MsrpEvent::ReportReceived { handle: Some(_), message_id, status, .. } if status != 200 => {
                self.settled(step, index, Some(message_id), Outcome::Failed { status });
            }
            MsrpEvent::MessageDelivered { handle } => {
                let message_id = self.relay.message_of(handle);
                self.settled(step, index, message_id, Outcome::Delivered);
            }
            MsrpEvent::ReportTimedOut { handle } => {
                let message_id = self.relay.message_of(handle);
                self.settled(step, index, message_id, Outcome::TimedOut);
            }
            // A member's IMDN is taken in: the CF sends its own per member.
            _ => {}
        }
    }

    /// Tracks each member's full window and drops a member whose window
    /// stayed full past [`SlowMember::after`].
    fn after_input(&mut self, step: &mut Step<'_>) {
        let Some(slow) = step.config.slow_member else { return };
        let now = step.now;
        for pos in 0..step.down.len() {
            let index = step.down[pos].hop;
            // An ended (or ending) member has nothing left to wait for.
            if step.down[pos].ended || step.hops[index].closed {
                continue;
            }
            let open = step.session(index).map_or(0, Session::open_transactions);
            if open < slow.window.max(1) {
                step.down[pos].full_since = None;
                continue;
            }
            let since = *step.down[pos].full_since.get_or_insert(now);
            if since + slow.after <= now {
                step.down[pos].full_since = None;
                let member = Some(step.down[pos].member.clone());
                step.event(Event::HopFailed { member });
                step.hops[index].done = true;
                step.end_down(pos);
            }
        }
    }
}
