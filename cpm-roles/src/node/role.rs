//! What only one role decides. The call core (the user agent's legs, the
//! hops and their sessions: `mod.rs`, `call.rs`, `links.rs`) asks the
//! session's role at each decision point through [`RoleLogic`]; each role's
//! state and decisions live in its own module: `sender`, `receiver`,
//! `participating`, `controlling`, `iwf` (the two relays share `relay`).

use super::*;

/// The configuration of an entity's role, from which each of its sessions
/// starts its own [`RoleLogic`].
#[derive(Clone, Debug)]
pub(crate) enum Role {
    /// Client A: sends one message per session on its outbound leg.
    Sender { flow: FlowId, hop: Hop, label: String },
    /// Client B: answers (or rejects with `reject`), reassembles, reports.
    Receiver { hop: Hop, label: String, reject: Option<u16> },
    /// IWF: UAS + MSRP endpoint handing whole messages to a non-CPM system.
    Iwf { hop: Hop, label: String, iwf: IwfConfig },
    /// A participating function: the inbound leg relayed to one outbound leg.
    Participating(Routing),
    /// The controlling function: the inbound leg relayed to every member.
    Controlling(Routing),
}

/// Where a relay's INVITEs go.
#[derive(Clone, Debug)]
pub(crate) struct Routing {
    pub(crate) up_hop: Hop,
    pub(crate) up_label: String,
    /// The downstream legs of every INVITE, unless `groups` choose them.
    pub(crate) down: Vec<Downstream>,
    /// Downstream legs per Request-URI (a pre-defined group, or a user a
    /// PF serves); an INVITE for none is answered 404.
    pub(crate) groups: Vec<(String, Vec<Downstream>)>,
    /// (CF) Routes of an ad-hoc group's members by address.
    pub(crate) rules: Vec<AddressRule>,
    /// The upstream hop's label per Request-URI (a PF serving several users).
    pub(crate) user_labels: Vec<(String, String)>,
}

impl Routing {
    /// The upstream hop's label for an INVITE to `uri`.
    fn up_label(&self, uri: &str) -> String {
        self.user_labels.iter().find(|(user, _)| user == uri).map_or(&self.up_label, |(_, label)| label).clone()
    }

    /// The downstream legs of `request` (with the entries of its ad-hoc
    /// list, when it has one and `ad_hoc` takes it), or the refusal status.
    fn down(&self, request: &Message, list: Option<&[Entry]>, ad_hoc: bool) -> Result<Vec<Downstream>, u16> {
        if let (true, Some(entries)) = (ad_hoc, list) {
            // Ad-hoc group at the CF: one member per entry, routed by the address rules.
            let mut members = Vec::with_capacity(entries.len());
            for entry in entries {
                // No route for a member: refuse the whole request (a member
                // cannot be dropped silently).
                let rule = self.rules.iter().find(|r| entry.uri.ends_with(&r.suffix)).ok_or(404_u16)?;
                members.push(Downstream {
                    target: entry.uri.clone(),
                    flow: rule.flow,
                    hop: rule.hop,
                    label: rule.label.clone(),
                });
            }
            return Ok(members);
        }
        let multipart = request.content_type_str().is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/"));
        if self.groups.is_empty() || multipart {
            return Ok(self.down.clone());
        }
        // Pre-defined groups: the Request-URI names the group (its members come
        // from the directory); an unknown group is answered 404.
        let uri = request.request_uri_str().unwrap_or_default();
        self.groups.iter().find(|(group, _)| group == uri).map(|(_, members)| members.clone()).ok_or(404)
    }

    /// The plan of a relay for `request`.
    pub(super) fn plan(&self, request: &Message, list: Option<&[Entry]>, ad_hoc: bool) -> Result<Plan, u16> {
        let uri = request.request_uri_str().unwrap_or_default();
        Ok(Plan {
            up_hop: self.up_hop,
            up_label: self.up_label(uri),
            streaming: true,
            down: self.down(request, list, ad_hoc)?,
            answer_now: false,
            pass_list: false,
        })
    }
}

impl Plan {
    /// The plan of an end point (a receiver, an IWF): answer at once,
    /// reassemble, nothing downstream.
    pub(super) fn end_point(up_hop: Hop, up_label: &str) -> Self {
        Self {
            up_hop,
            up_label: up_label.to_owned(),
            streaming: false,
            down: Vec::new(),
            answer_now: true,
            pass_list: false,
        }
    }
}

/// How a role takes an INVITE.
pub(crate) struct Plan {
    pub(super) up_hop: Hop,
    pub(super) up_label: String,
    /// Whether the upstream session streams what it receives (a relay) or
    /// reassembles it.
    pub(super) streaming: bool,
    /// The downstream legs to start.
    pub(super) down: Vec<Downstream>,
    /// Answer upstream at once (else when a downstream leg answers).
    pub(super) answer_now: bool,
    /// Pass an ad-hoc recipient list on downstream (PF(A) to the CF).
    pub(super) pass_list: bool,
}

/// The decisions of one role, asked by the call core. Hooks never call
/// hooks: a hook that needs the core calls its plain functions.
pub(crate) trait RoleLogic: Send {
    /// How an INVITE is taken, or the status that refuses it.
    fn plan(&self, request: &Message, list: Option<&[Entry]>, config: &EntityConfig) -> Result<Plan, u16>;

    /// Whether it relays (PF, CF): its upstream reading follows its members'
    /// queues.
    fn relays(&self) -> bool {
        false
    }

    /// Whether this role's MSRP sessions send success REPORTs themselves (a
    /// relay passes the final receiver's on instead).
    fn success_reports(&self) -> bool {
        !self.relays()
    }

    /// Whether a downstream 200 is ACKed at once, whatever the ACK policy.
    fn acks_at_once(&self) -> bool {
        false
    }

    /// Downstream leg `index`'s hop has its session (its 200 came): a relay
    /// answers upstream (if it has not yet).
    fn answered(&mut self, step: &mut Step<'_>, _index: usize) {
        if self.relays() {
            step.answer_upstream();
        }
    }

    /// Downstream leg `pos` ended before its member's REPORT, with `outcome`.
    fn leg_ended(&mut self, _step: &mut Step<'_>, _pos: usize, _outcome: Outcome) {}

    /// Downstream leg `pos` lost its link before its work was done.
    fn leg_lost(&mut self, _step: &mut Step<'_>, _pos: usize) {}

    /// A message sent on hop `index` failed with `status` (0: link lost);
    /// `true` when the role took it (else the hop fails).
    fn send_failed(&mut self, _step: &mut Step<'_>, _index: usize, _status: u16) -> bool {
        false
    }

    /// An MSRP event of hop `index` the core leaves to the role.
    fn msrp_event(&mut self, step: &mut Step<'_>, index: usize, event: MsrpEvent);

    /// After every input: the role's own deadlines (the CF's slow members).
    fn after_input(&mut self, _step: &mut Step<'_>) {}

    /// [`Command::SendMessage`].
    ///
    /// # Errors
    /// [`UsageError::WrongRole`] for a role that does not send.
    fn send_message(
        &mut self,
        _step: &mut Step<'_>,
        _target: String,
        _recipients: &[String],
        _content_type: String,
        _body: Bytes,
    ) -> Result<(), UsageError> {
        Err(UsageError::WrongRole)
    }

    /// [`Input::NonCpmAck`].
    ///
    /// # Errors
    /// [`UsageError::WrongRole`] for a role that hands nothing over.
    fn non_cpm_ack(&mut self, _step: &mut Step<'_>, _delivery: DeliveryId, _status: u16) -> Result<(), UsageError> {
        Err(UsageError::WrongRole)
    }
}

impl Role {
    /// The logic of one new session of this role.
    pub(crate) fn start(&self) -> Box<dyn RoleLogic> {
        match self.clone() {
            Self::Sender { flow, hop, label } => Box::new(sender::Sender::new(flow, hop, label)),
            Self::Receiver { hop, label, reject } => Box::new(receiver::Receiver { hop, label, reject }),
            Self::Iwf { hop, label, iwf } => Box::new(iwf::Iwf::new(hop, label, iwf)),
            Self::Participating(routing) => Box::new(participating::Participating::new(routing)),
            Self::Controlling(routing) => Box::new(controlling::Controlling::new(routing)),
        }
    }
}
