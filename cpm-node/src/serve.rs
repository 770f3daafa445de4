//! `cpm-node run CONFIG`: one deployable node. The config's role becomes a
//! `cpm-roles` entity (its identity, policies, limits, groups, routes and
//! rules), served by the [`Host`] on the config's listeners until SIGTERM
//! or Ctrl-C; then it stops accepting and ends within a deadline.
//!
//! SIP routes: the entity reaches next hop `k` of `[[sip_route]]` on flow
//! `k + 1`. A sender and an originating PF send every INVITE on their first
//! route; a terminating PF and the CF choose a member's route by the host
//! of its URI (`*` matches any), and an ad-hoc group (only with `[adhoc]`)
//! is routed the same way. Session ids and tags come from the operating
//! system's CSPRNG (RFC 4975 s.14.1, RFC 3261 s.19.3).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpm_negotiation::{Figure, Hop, Preset};
use cpm_roles::{
    AddressRule, Client, Controlling, CryptoIds, Downstream, Entity, EntityConfig, FlowId, Isf, IsfConfig,
    Participating, SipTransport,
};
use rand_core::OsRng;
use thiserror::Error;

use crate::config::{self, NodeConfig, Role, Side, SipRoute, Strategy};
use crate::host::{now, Host, HostEvent, HostOptions};
use crate::metrics;
use crate::noncpm::{Bind, MmscClient, NonCpmError, SmppClient, SmtpSubmitter};
use crate::transport::{
    AbortOnDrop, Fingerprint, Listener, TlsClient, TlsMode, TlsServerConfig, TlsSetupError, Transport, TransportError,
};

/// Unanswered chunks that make a member's window full
/// (`[limits] slow_member_secs`).
const SLOW_MEMBER_WINDOW: usize = 64;

/// How long a stopping node may take to end its sessions.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// Why a node cannot run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The config asks for what this build cannot do yet.
    #[error("{0} is not implemented yet in this build")]
    NotImplemented(&'static str),
    /// The config lacks what its role needs.
    #[error("{0}")]
    Incomplete(String),
    /// A listener cannot be bound.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The `[tls]` certificate, key or CA cannot be used.
    #[error("[tls]: {0}")]
    Tls(#[from] TlsSetupError),
    /// The IWF's non-CPM system cannot be reached as configured.
    #[error("[iwf]: {0}")]
    NonCpm(#[from] NonCpmError),
    /// The runtime cannot start.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// The flow of route `k` (0-based) of a config.
fn route_flow(k: usize) -> FlowId {
    FlowId::new(k as u64 + 1)
}

/// The preset of a strategy: solution 1, 2 or 3 of seed 001 (its FIG. 1, 3
/// and 5).
fn preset(strategy: Strategy) -> Preset {
    Preset::figure(match strategy {
        Strategy::InviteInitiator => Figure::Seed001Fig1,
        Strategy::InviteReceiver => Figure::Seed001Fig3,
        Strategy::ClientInitiative => Figure::Seed001Fig5,
    })
}

/// The host part of a SIP URI (`sip:bob@b.example` -> `b.example`).
fn uri_host(uri: &str) -> &str {
    let rest = uri.split_once(':').map_or(uri, |(_, rest)| rest);
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    host.split([';', ':', '>']).next().unwrap_or(host)
}

/// The route toward `uri`: the first whose host is the URI's, else a `*`.
fn route_for(routes: &[SipRoute], uri: &str) -> Option<usize> {
    let host = uri_host(uri);
    routes.iter().position(|r| r.host.eq_ignore_ascii_case(host)).or_else(|| routes.iter().position(|r| r.host == "*"))
}

/// The `cpm-roles` configuration of `config`'s entity: identity, MSRP
/// URIs (`msrps` with `msrp_tls`, the fingerprint its SDP names), policies,
/// and the `[limits]` and `[adhoc]` bounds.
#[must_use]
pub fn entity_config(config: &NodeConfig, msrp_port: u16, msrp_tls: Option<Fingerprint>) -> EntityConfig {
    let mut entity_config =
        EntityConfig::new(&config.identity.name, &config.identity.host, msrp_port, preset(config.policy.strategy));
    entity_config.msrp_tls = msrp_tls.is_some();
    entity_config.msrp_fingerprint = msrp_tls.map(|f| f.to_string());
    entity_config.aor.clone_from(&config.identity.uri);
    entity_config.capabilities.max_size = Some(config.limits.max_message_size.get());
    entity_config.max_sessions = config.limits.max_sessions;
    entity_config.transaction_timeout = config.limits.transaction_timeout;
    if let Some(adhoc) = &config.adhoc {
        entity_config.max_list_members = adhoc.max_members;
    }
    // A member is stalled when this many of its chunks are unanswered: far
    // past what one that reads has in flight.
    entity_config.slow_member =
        config.limits.slow_member.map(|after| cpm_roles::SlowMember { window: SLOW_MEMBER_WINDOW, after });
    entity_config.ack_policy = match config.policy.ack {
        config::AckPolicy::AfterAck => cpm_negotiation::AckPolicy::AfterUpstreamAck,
        config::AckPolicy::On200 => cpm_negotiation::AckPolicy::OnDownstreamSuccess,
    };
    entity_config.answer_policy = match config.policy.answer {
        config::AnswerPolicy::Immediate => cpm_negotiation::AnswerPolicy::Immediate,
        config::AnswerPolicy::AfterFirstDestination => cpm_negotiation::AnswerPolicy::AfterFirstDestination,
    };
    entity_config.relay_window = usize::try_from(config.limits.window.get()).unwrap_or(usize::MAX);
    entity_config.max_chunk_size =
        config.limits.chunk_size.map(|size| usize::try_from(size.get()).unwrap_or(usize::MAX));
    for (k, route) in config.sip_routes.iter().enumerate() {
        if route.address.transport == Transport::Udp {
            entity_config.set_flow_transport(route_flow(k), SipTransport::Unreliable);
        }
    }
    entity_config
}

/// The entity a config describes, and the next hops its flows lead to.
///
/// # Errors
///
/// [`ServeError`] for a role this build cannot host, or a config that lacks
/// what the role needs.
///
/// `msrp_port` is the port of its MSRP URIs; with `msrp_tls` (the
/// fingerprint of the certificate its TLS listener presents) they are
/// `msrps` URIs and every SDP it writes names that certificate (RFC 4975
/// s.14.4).
pub fn entity(
    config: &NodeConfig,
    msrp_port: u16,
    msrp_tls: Option<Fingerprint>,
    at: Instant,
) -> Result<Box<dyn Entity>, ServeError> {
    let ids = CryptoIds::new(OsRng);
    let name = &config.identity.name;
    let entity_config = entity_config(config, msrp_port, msrp_tls);
    let routes = &config.sip_routes;
    let downstream = |target: &str, hop: Hop, label: &str| -> Result<Downstream, ServeError> {
        let k = route_for(routes, target)
            .ok_or_else(|| ServeError::Incomplete(format!("no [[sip_route]] reaches {target:?}")))?;
        Ok(Downstream { target: target.to_owned(), flow: route_flow(k), hop, label: label.to_owned() })
    };
    let entity: Box<dyn Entity> = match config.role {
        Role::Sender => {
            let k = routes
                .first()
                .map(|_| 0)
                .ok_or_else(|| ServeError::Incomplete("a sender needs a [[sip_route]]".into()))?;
            Box::new(Client::sender(entity_config, route_flow(k), Hop::L1, "L1", at, ids))
        }
        Role::Receiver => Box::new(Client::receiver(entity_config, Hop::L4, "L4", at, ids)),
        Role::Participating => match config.participating.as_ref().map(|p| (p.side, &p.users)) {
            Some((Side::Terminating, users)) if !users.is_empty() => {
                let mut served = Vec::new();
                for user in users {
                    served.push((user.clone(), "L3".to_owned(), downstream(user, Hop::L4, "L4")?));
                }
                Box::new(Participating::serving(entity_config, Hop::L3, served, at, ids))
            }
            Some((Side::Terminating, _)) => Box::new(Participating::new(
                entity_config,
                Hop::L3,
                "L3",
                Downstream { target: String::new(), ..downstream("*", Hop::L4, "L4")? },
                at,
                ids,
            )),
            _ => {
                let k = routes
                    .first()
                    .map(|_| 0)
                    .ok_or_else(|| ServeError::Incomplete("a PF needs a [[sip_route]]".into()))?;
                let down =
                    Downstream { target: String::new(), flow: route_flow(k), hop: Hop::L2, label: "L2".to_owned() };
                Box::new(Participating::new(entity_config, Hop::L1, "L1", down, at, ids))
            }
        },
        Role::Controlling => {
            let mut groups = Vec::new();
            for group in &config.groups {
                let mut members = Vec::new();
                for member in &group.members {
                    let hop = member_hop(routes, member);
                    members.push(downstream(member, hop, "L3")?);
                }
                groups.push((group.uri.clone(), members));
            }
            // Ad-hoc groups only with `[adhoc]`: a member by its host, the
            // `*` route (if any) last.
            let mut rules: Vec<AddressRule> = Vec::new();
            if config.adhoc.is_some() {
                let named = routes.iter().enumerate().filter(|(_, r)| r.host != "*");
                let wildcard = routes.iter().enumerate().filter(|(_, r)| r.host == "*");
                rules = named
                    .chain(wildcard)
                    .map(|(k, r)| AddressRule {
                        suffix: if r.host == "*" { String::new() } else { format!("@{}", r.host) },
                        flow: route_flow(k),
                        hop: if r.non_cpm { Hop::L3Iwf } else { Hop::L3 },
                        label: "L3".to_owned(),
                    })
                    .collect();
            }
            Box::new(Controlling::with_directory(entity_config, Hop::L2, "L2", groups, rules, at, ids))
        }
        Role::Isf => {
            let isf = IsfConfig {
                name: name.clone(),
                host: config.identity.host.clone(),
                routes: routes.iter().enumerate().map(|(k, r)| (r.host.clone(), route_flow(k))).collect(),
                rules: Vec::new(),
                selection: config
                    .iwf_rules
                    .iter()
                    .map(|r| cpm_roles::IwfRule {
                        receiver_suffix: r.receiver_suffix.clone(),
                        content_type: r.content_type.clone(),
                        min_size: r.min_size.map(config::ByteSize::get),
                        max_size: r.max_size.map(config::ByteSize::get),
                        iwf: r.iwf.clone(),
                    })
                    .collect(),
                flow_transports: entity_config.flow_transports,
                stateless: false,
            };
            Box::new(Isf::new(isf, at, ids))
        }
        Role::Relay => return Err(ServeError::Incomplete("a relay hosts no CPM entity".into())),
        Role::Iwf => {
            let target = config.iwf.as_ref().ok_or_else(|| ServeError::Incomplete("an IWF needs [iwf]".into()))?;
            let system = match target.system {
                config::NonCpmSystem::Email => cpm_roles::NonCpmSystem::Email,
                config::NonCpmSystem::Sms => cpm_roles::NonCpmSystem::Sms,
                config::NonCpmSystem::Mms => cpm_roles::NonCpmSystem::Mms,
            };
            let report = match target.report {
                config::IwfReport::OnAck => cpm_roles::IwfReport::AfterNonCpmAck,
                config::IwfReport::AtMediaEnd => cpm_roles::IwfReport::AtMediaEnd,
            };
            let mut iwf = cpm_roles::IwfConfig::new(system, report);
            iwf.bye_after_report = target.bye_after_report;
            if let Some(domain) = &target.domain {
                iwf.conversion.email.domain.clone_from(domain);
            }
            // The Email Date: the runtime reads the wall clock for the IWF.
            iwf.wall_clock = Some((at, crate::host::unix_now()));
            Box::new(cpm_roles::Iwf::new(entity_config, Hop::L3Iwf, "L3", iwf, at, ids))
        }
    };
    Ok(entity)
}

/// A member reached through a route marked `non_cpm` is an interworking
/// hop.
fn member_hop(routes: &[SipRoute], member: &str) -> Hop {
    match route_for(routes, member).and_then(|k| routes.get(k)) {
        Some(route) if route.non_cpm => Hop::L3Iwf,
        _ => Hop::L3,
    }
}

/// How a node verifies its TLS peers: against `[tls] ca` when given (the
/// certificate naming the host, RFC 4975 s.5.4), else by `[tls]
/// fingerprints` (RFC 4975 s.14.4). MSRP links to a peer whose SDP names
/// its certificate are pinned to that instead (see [`Host`]).
pub(crate) fn tls_client(tls: Option<&config::Tls>) -> Result<TlsMode, TlsSetupError> {
    let Some(tls) = tls else { return Ok(TlsMode::Plain) };
    let client = match &tls.ca {
        Some(ca) => TlsClient::with_ca_file(ca)?,
        None if !tls.fingerprints.is_empty() => TlsClient::pinned(tls.fingerprints.clone())?,
        None => return Ok(TlsMode::Plain),
    };
    Ok(TlsMode::Tls(Arc::new(client)))
}

/// Starts the node of `config` on its listeners, with at most `max_flows`
/// SIP flows: the certificate of its `tls://` listeners and how it
/// verifies peers come from `[tls]`; its MSRP URIs use its first MSRP
/// listener (`msrps` when that is `tls://`).
///
/// # Errors
///
/// [`ServeError`] when a listener cannot be bound, the `[tls]` files
/// cannot be used, or the role cannot be hosted.
pub async fn start(config: &NodeConfig, max_flows: usize) -> Result<Host, ServeError> {
    let tls = config.tls.as_ref();
    let server = match tls.map(|t| (&t.cert, &t.key)) {
        Some((Some(cert), Some(key))) => {
            Some(Arc::new(TlsServerConfig::from_pem_files(cert, key, config.limits.handshake_timeout)?))
        }
        _ => None,
    };
    let mut msrp = Vec::new();
    for addr in &config.msrp_listen {
        msrp.push(Listener::bind(addr, server.clone()).await?);
    }
    let first = msrp.first().map(Listener::local_addr);
    let msrp_port = first.map_or(0, |a| a.addr.port());
    let msrp_tls = match (first, &server) {
        (Some(a), Some(server)) if a.transport == Transport::Tls => Some(server.fingerprint()),
        _ => None,
    };
    let entity = entity(config, msrp_port, msrp_tls, now())?;
    let routes = config.sip_routes.iter().enumerate().map(|(k, r)| (route_flow(k), r.address)).collect();
    let options = HostOptions {
        connect_timeout: config.limits.handshake_timeout,
        tls: tls_client(tls)?,
        tls_server: server,
        sip_idle_timeout: Some(config.limits.idle_timeout),
    };
    Ok(Host::serve(entity, &config.sip_listen, msrp, routes, max_flows, options).await?)
}

/// An IWF's client of its non-CPM system.
enum NonCpmClient {
    Email(Arc<SmtpSubmitter>),
    Sms(SmppClient),
    Mms(Arc<MmscClient>),
}

/// An IWF's client: for email, of the SMTP server at `[iwf] target`
/// (`[tls] ca` for STARTTLS); for SMS, its SMPP session with the SMSC there
/// (bound as `[iwf] system_id`); for MMS, of the MMSC at that `http://`
/// URL; each answer within `limits.transaction_timeout`.
fn non_cpm_client(config: &NodeConfig) -> Result<Option<NonCpmClient>, ServeError> {
    let Some(iwf) = config.iwf.as_ref().filter(|_| config.role == Role::Iwf) else { return Ok(None) };
    let deadline = config.limits.transaction_timeout;
    Ok(match iwf.system {
        config::NonCpmSystem::Email => {
            let ca = config.tls.as_ref().and_then(|tls| tls.ca.as_deref());
            let smtp = SmtpSubmitter::new(&iwf.target, &config.identity.host, ca, deadline)?;
            Some(NonCpmClient::Email(Arc::new(smtp)))
        }
        config::NonCpmSystem::Sms => {
            let bind = Bind { system_id: iwf.system_id.clone(), password: iwf.password.clone() };
            Some(NonCpmClient::Sms(SmppClient::start(iwf.target.clone(), bind, deadline)))
        }
        config::NonCpmSystem::Mms => {
            if iwf.target.starts_with("https://") {
                return Err(ServeError::NotImplemented("an MMSC over https:// (TLS for the MMSC client)"));
            }
            Some(NonCpmClient::Mms(Arc::new(MmscClient::new(&iwf.target, deadline)?)))
        }
    })
}

/// Messages an IWF node has handed to its non-CPM system and not yet had
/// answered: at most [`MAX_SUBMISSIONS`] at once, each answered whatever
/// happens to its task.
#[derive(Default)]
struct Submissions {
    tasks: tokio::task::JoinSet<(cpm_roles::DeliveryId, u16)>,
    deliveries: std::collections::HashMap<tokio::task::Id, cpm_roles::DeliveryId>,
}

/// Submissions a node runs at once; past it the sender hears 408 (try
/// later) at once.
const MAX_SUBMISSIONS: usize = 64;

impl Submissions {
    fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Hands `parts` to `client`; `Some(status)` when it is answered at
    /// once: 408 past the bound, 403 when the client cannot carry it (no
    /// client, or an email without its envelope).
    fn submit(
        &mut self,
        client: Option<&NonCpmClient>,
        delivery: cpm_roles::DeliveryId,
        parts: &[bytes::Bytes],
        envelope: Option<&cpm_roles::interworking::MailEnvelope>,
    ) -> Option<u16> {
        if self.tasks.len() >= MAX_SUBMISSIONS {
            tracing::warn!(?delivery, "too many submissions at once: refused for now");
            return Some(408);
        }
        let handle = match (client, envelope, parts.first()) {
            (Some(NonCpmClient::Email(smtp)), Some(envelope), Some(mail)) => {
                let (smtp, envelope, mail) = (Arc::clone(smtp), envelope.clone(), mail.clone());
                self.tasks.spawn(async move { (delivery, smtp.submit(&envelope, &mail).await) })
            }
            (Some(NonCpmClient::Sms(smpp)), _, _) => {
                let (smpp, parts) = (smpp.clone(), parts.to_vec());
                self.tasks.spawn(async move { (delivery, smpp.submit(parts).await) })
            }
            (Some(NonCpmClient::Mms(mmsc)), _, Some(pdu)) => {
                let (mmsc, pdu) = (Arc::clone(mmsc), pdu.clone());
                self.tasks.spawn(async move { (delivery, mmsc.submit(pdu).await) })
            }
            _ => return Some(403),
        };
        self.deliveries.insert(handle.id(), delivery);
        None
    }

    /// The next answered submission (a task that failed is 408).
    async fn next(&mut self) -> Option<(cpm_roles::DeliveryId, u16)> {
        match self.tasks.join_next_with_id().await? {
            Ok((id, answer)) => {
                self.deliveries.remove(&id);
                Some(answer)
            }
            Err(error) => self.deliveries.remove(&error.id()).map(|delivery| (delivery, 408)),
        }
    }
}

/// Runs the node of `config` until SIGTERM or Ctrl-C; the exit status.
#[must_use]
pub fn run(config: &NodeConfig) -> ExitCode {
    // A relay's work is one machine and its connections' reads and writes:
    // on one thread, no frame crosses threads (a wake-up per frame per hop
    // costs more than relaying it).
    let mut builder = if config.role == Role::Relay {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cpm-node run: {}", ServeError::Runtime(error));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(ServeError::NotImplemented(what)) => {
            eprintln!("cpm-node run: {what} is not implemented yet in this build");
            ExitCode::from(crate::cli::EXIT_NOT_IMPLEMENTED)
        }
        Err(error) => {
            eprintln!("cpm-node run: {error}");
            ExitCode::FAILURE
        }
    }
}

/// What `cpm-node send` reports.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SendReport {
    /// Each member heard of (its IMDN, RFC 5438), and whether it was
    /// delivered.
    pub members: Vec<(String, bool)>,
    /// The sender's outcome, when it came.
    pub outcome: Option<cpm_roles::Outcome>,
}

impl SendReport {
    /// Members that received the message, and members heard of (a single
    /// user that sent no IMDN counts as one, delivered when the outcome is).
    #[must_use]
    pub fn tally(&self) -> (usize, usize) {
        if self.members.is_empty() {
            let delivered = self.outcome.is_some_and(cpm_roles::Outcome::is_delivered);
            return (usize::from(delivered), 1);
        }
        (self.members.iter().filter(|(_, ok)| *ok).count(), self.members.len())
    }
}

/// Sends `body` to `to` from the sender node of `config`, printing one line
/// per member as its IMDN arrives (`member URI: delivered` or `failed`),
/// until the outcome or `limit`.
///
/// # Errors
///
/// [`ServeError`] when the node cannot start or is no sender.
pub async fn send(
    config: &NodeConfig,
    to: &str,
    content_type: &str,
    body: bytes::Bytes,
    limit: Duration,
    out: &mut (dyn std::io::Write + Send),
) -> Result<SendReport, ServeError> {
    if config.role != Role::Sender {
        return Err(ServeError::Incomplete(format!("`send` needs a sender's config, not a {}'s", config.role)));
    }
    let mut host = start(config, 64).await?;
    let session = cpm_roles::SessionId::new(1);
    let command = cpm_roles::Command::SendMessage {
        session,
        target: to.to_owned(),
        recipients: Vec::new(),
        content_type: content_type.to_owned(),
        body,
    };
    host.input(0, cpm_roles::Input::Command(command)).await;
    let mut report = SendReport::default();
    let deadline = tokio::time::Instant::now() + limit;
    let mut settle = deadline;
    loop {
        let Ok(Some(said)) = tokio::time::timeout_at(settle.min(deadline), host.next_output()).await else { break };
        let event = match said.event {
            // After the outcome, the IMDNs still on their way, until the
            // sender settles (its BYE answered).
            HostEvent::Settled(true) if report.outcome.is_some() => break,
            HostEvent::Output(cpm_roles::Output::Event { event, .. }) => event,
            _ => continue,
        };
        match event {
            cpm_roles::Event::Delivery { member, status } => {
                let delivered = status == cpm_negotiation::imdn::DeliveryStatus::Delivered;
                let _ = writeln!(out, "member {member}: {}", if delivered { "delivered" } else { "failed" });
                report.members.push((member, delivered));
            }
            cpm_roles::Event::Outcome { outcome } => {
                report.outcome = Some(outcome);
                settle = tokio::time::Instant::now() + STOP_DEADLINE;
            }
            _ => {}
        }
    }
    host.shutdown().await;
    // A single user's own IMDN may cross the sender's BYE (it follows the
    // REPORT that ended the wait): its line then comes from the outcome.
    if let (true, Some(outcome)) = (report.members.is_empty(), report.outcome) {
        let _ = writeln!(out, "member {to}: {}", if outcome.is_delivered() { "delivered" } else { "failed" });
    }
    Ok(report)
}

/// Logs what the entity tells, bodies by their size and CRC-32 (not
/// their bytes): `message delivered` with `bytes` and `crc32` is what
/// `demo --processes` reads from a member's log.
fn log_event(session: Option<cpm_roles::SessionId>, event: &cpm_roles::Event) {
    use cpm_roles::Event;
    match event {
        Event::MessageDelivered { body } => {
            let crc = crc32fast::hash(body);
            tracing::info!(?session, bytes = body.len(), crc32 = %format_args!("{crc:08x}"), "message delivered");
        }
        Event::Submitted { bytes } => tracing::info!(?session, bytes = bytes.len(), "message submitted"),
        Event::DeliverToNonCpm { delivery, format, parts, .. } => {
            tracing::info!(?session, ?delivery, format, parts = parts.len(), "deliver to the non-CPM system");
        }
        _ => tracing::info!(?session, ?event, "event"),
    }
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Serves `config`'s node until `stop` completes, then ends its sessions
/// (BYE, CANCEL) and stops within a deadline.
///
/// # Errors
///
/// [`ServeError`] when the node cannot start.
pub async fn serve(config: &NodeConfig, stop: impl std::future::Future<Output = ()>) -> Result<(), ServeError> {
    if config.role == Role::Relay {
        return crate::relay::serve(config, stop).await;
    }
    let mut host = start(config, config.limits.max_sessions.saturating_mul(2).max(16)).await?;
    let _metrics = match config.metrics_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr.addr)
                .await
                .map_err(|source| TransportError::Bind { addr, source })?;
            tracing::info!(metrics = ?listener.local_addr(), "serving GET /metrics");
            let reader = host.stats_reader();
            let task = tokio::spawn(metrics::serve_metrics(listener, move || {
                let reader = reader.clone();
                async move { reader.read().await }
            }));
            Some(AbortOnDrop(task))
        }
        None => None,
    };
    let client = non_cpm_client(config)?;
    tracing::info!(node = %config.identity.name, role = %config.role, sip = ?config.sip_listen, msrp = ?host.msrp_addr(0), "serving");
    // The IWF's submissions to its non-CPM system, each answered back to the
    // IWF as its acknowledgement.
    let mut submissions = Submissions::default();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            Some((delivery, status)) = submissions.next(), if !submissions.is_empty() => {
                host.input(0, cpm_roles::Input::NonCpmAck { delivery, status }).await;
            }
            said = host.next_output() => {
                let Some(said) = said else { break };
                let HostEvent::Output(cpm_roles::Output::Event { session, event }) = &said.event else { continue };
                log_event(*session, event);
                if let cpm_roles::Event::DeliverToNonCpm { delivery, parts, envelope, .. } = event {
                    if let Some(status) = submissions.submit(client.as_ref(), *delivery, parts, envelope.as_ref()) {
                        host.input(0, cpm_roles::Input::NonCpmAck { delivery: *delivery, status }).await;
                    }
                }
            }
        }
    }
    tracing::info!(node = %config.identity.name, "stopping: ending every session");
    host.end_all().await;
    let deadline = tokio::time::Instant::now() + STOP_DEADLINE;
    while let Ok(Some(said)) = tokio::time::timeout_at(deadline, host.next_output()).await {
        if matches!(said.event, HostEvent::Settled(true)) {
            break;
        }
    }
    host.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entity_takes_the_limits_of_its_config() {
        let text = format!(
            "{}\n[limits]\nmax_sessions = 7\ntransaction_timeout_secs = 9\nchunk_size = \"4KiB\"\nwindow = \"256KiB\"\nslow_member_secs = 4\n",
            // The shipped CF without its own [limits] (its last table).
            include_str!("../configs/cf.toml").split("[limits]").next().unwrap_or_default()
        )
        .replace("max_members = 32", "max_members = 3");
        let config = NodeConfig::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        let entity = entity_config(&config, 7000, None);
        assert_eq!(entity.max_sessions, 7);
        assert_eq!(entity.transaction_timeout, Duration::from_secs(9));
        assert_eq!(entity.max_chunk_size, Some(4096));
        assert_eq!(entity.relay_window, 256 * 1024);
        assert_eq!(entity.max_list_members, 3);
        assert_eq!(entity.slow_member, Some(cpm_roles::SlowMember { window: 64, after: Duration::from_secs(4) }));
        assert_eq!(entity.ack_policy, cpm_negotiation::AckPolicy::OnDownstreamSuccess);
        assert!(!entity.msrp_tls);
    }

    #[test]
    fn routes_match_the_request_uri_host_then_the_wildcard() {
        let route = |host: &str| SipRoute {
            host: host.to_owned(),
            address: "udp://127.0.0.1:5060".parse().unwrap_or_else(|_| unreachable!()),
            non_cpm: false,
        };
        let routes = [route("b.example"), route("*")];
        assert_eq!(route_for(&routes, "sip:bob@b.example"), Some(0));
        assert_eq!(route_for(&routes, "sip:bob@B.Example;transport=udp"), Some(0));
        assert_eq!(route_for(&routes, "sip:carol@c.example"), Some(1));
        assert_eq!(route_for(&routes[..1], "sip:carol@c.example"), None);
        assert_eq!(uri_host("sip:+15550100@sms.example"), "sms.example");
    }
}
