//! One deployable node's configuration, read from TOML.
//!
//! [`NodeConfig::parse`] checks a text without touching the file system;
//! [`NodeConfig::load`] reads a file, resolves the `[tls]` paths against the
//! file's directory and also checks that the certificate, key and CA load.
//! Every problem comes back at once, each with the line it is about
//! ([`Problem`]); TOML syntax and type errors stop at the first one, since
//! nothing after it can be read reliably.
//!
//! ```toml
//! role = "participating"            # sender | receiver | participating | controlling | isf | iwf
//! log = "info"                      # a tracing filter (`info`, `cpm_node=debug,warn`)
//! sip_listen = ["udp://127.0.0.1:5061", "tcp://127.0.0.1:5061"]
//! msrp_listen = ["tcp://127.0.0.1:7061"]
//! metrics_listen = "tcp://127.0.0.1:9461"  # optional: GET /metrics (Prometheus)
//!
//! [identity]
//! name = "pf-a"
//! host = "127.0.0.1"                # the host in our Via, Contact and MSRP URIs
//! uri = "sip:pf-a@a.example"
//!
//! [participating]
//! side = "originating"              # originating | terminating (with `users`)
//!
//! [policy]
//! strategy = "invite-initiator"     # invite-initiator | invite-receiver | client-initiative
//! ack = "after-ack"                 # after-ack | on-200 (participating, controlling)
//!
//! [[sip_route]]                     # next hop for requests to a host ("*": any host)
//! host = "cf.example"
//! address = "udp://127.0.0.1:5062"
//!
//! [limits]                          # every field optional; these are the defaults
//! max_sessions = 1024
//! max_message_size = "64MiB"
//! window = "1MiB"
//! handshake_timeout_secs = 10
//! transaction_timeout_secs = 30
//! idle_timeout_secs = 300
//! # chunk_size = "2KiB"             # the largest SEND chunk; unset: one chunk per message
//! # slow_member_secs = 10           # (controlling) drop a member stalled this long
//! ```
//!
//! A controlling node has `[[group]]` tables (`uri`, `members`) and/or an
//! `[adhoc]` table (`max_members`), and may mark a route `non_cpm = true`
//! (its host's users are reached through the ISF). An ISF has
//! `[[iwf_rule]]` tables (`receiver_suffix`, `content_type`, `min_size`,
//! `max_size`, `iwf`); an IWF has an `[iwf]` table (`system` = `sms` | `mms`
//! | `email`, `target`, `report`, `bye_after_report`; for SMS the SMPP bind's
//! `system_id` and `password`; for email the `domain` of addresses made
//! from telephone numbers). `[tls]` has `cert`
//! and `key` (what the `tls://` listeners present), and `ca` or
//! `fingerprints` (`"SHA-256 AB:CD:..."`): how the node verifies the peers
//! it connects to (the CA when both are given). A node with neither pins an
//! MSRP peer to the `a=fingerprint` of its SDP (RFC 4975 s.14.4).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::transport::{
    Fingerprint, FingerprintError, ListenAddr, ListenAddrError, TlsClient, TlsServerConfig, TlsSetupError, Transport,
};

/// The entity a node hosts (the source documents, "Entities").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// CPM Client A: sends large messages.
    Sender,
    /// CPM Client B: receives them.
    Receiver,
    /// A participating function (originating PF(A) or terminating PF(B)).
    Participating,
    /// The controlling function (group fan-out).
    Controlling,
    /// The interworking selection function.
    Isf,
    /// An interworking function towards a non-CPM system.
    Iwf,
    /// An RFC 4976 MSRP relay (no SIP): clients AUTH to it and reach their
    /// peers through it.
    Relay,
}

impl Role {
    /// The name in configs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sender => "sender",
            Self::Receiver => "receiver",
            Self::Participating => "participating",
            Self::Controlling => "controlling",
            Self::Isf => "isf",
            Self::Iwf => "iwf",
            Self::Relay => "relay",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A byte count, written as a number of bytes (`1024`) or with a unit:
/// `KiB`, `MiB`, `GiB` (powers of 1024), `kB`, `MB`, `GB` (powers of 1000),
/// `B`; units ignore case (`5MiB`, `64mib`, `17 MiB`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(u64);

impl ByteSize {
    /// A size of `bytes` bytes.
    #[must_use]
    pub const fn new(bytes: u64) -> Self {
        Self(bytes)
    }

    /// The number of bytes.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ByteSize {
    /// The largest binary unit that divides the size exactly (`5MiB`), else bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        for (unit, name) in UNITS {
            if self.0 >= unit && self.0.is_multiple_of(unit) {
                return write!(f, "{}{name}", self.0 / unit);
            }
        }
        write!(f, "{}", self.0)
    }
}

/// Why a string is not a [`ByteSize`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ByteSizeError {
    /// No digits in front.
    #[error("expected a number of bytes, optionally with a unit (1024, 5MiB, 64MiB)")]
    NoNumber,
    /// A unit other than B, KiB, MiB, GiB, kB, MB, GB.
    #[error("unknown unit: use B, KiB, MiB, GiB, kB, MB or GB")]
    UnknownUnit,
    /// More than 2^64 - 1 bytes.
    #[error("size too large")]
    TooLarge,
}

impl FromStr for ByteSize {
    type Err = ByteSizeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let (number, unit) = text.split_at(digits);
        if number.is_empty() {
            return Err(ByteSizeError::NoNumber);
        }
        let number: u64 = number.parse().map_err(|_| ByteSizeError::TooLarge)?;
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            _ => return Err(ByteSizeError::UnknownUnit),
        };
        number.checked_mul(multiplier).map(Self).ok_or(ByteSizeError::TooLarge)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count: an integer, or a string such as \"5MiB\"")
            }

            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<ByteSize, E> {
                u64::try_from(value).map(ByteSize).map_err(|_| E::custom("a size cannot be negative"))
            }

            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(value))
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<ByteSize, E> {
                value.parse().map_err(|error| E::custom(format_args!("invalid size {value:?}: {error}")))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Who the node is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Its name in logs and traces.
    pub name: String,
    /// The host written in its Via, Contact and MSRP URIs.
    pub host: String,
    /// The SIP URI of the user (clients) or of the entity (network nodes).
    pub uri: String,
}

/// A next hop for SIP requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipRoute {
    /// The Request-URI host it serves (compared without regard to case), or
    /// `*` for any host no other route names.
    pub host: String,
    /// Where to send: transport, IP and port.
    pub address: ListenAddr,
    /// (Controlling) the users of this host are non-CPM users: their leg goes
    /// to the ISF at `address` (the source documents: the CF "decides per member whether it
    /// is a CPM user ... or a non-CPM user").
    pub non_cpm: bool,
}

/// A pre-defined group in a controlling node's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The group's address (the Request-URI of INVITE#2).
    pub uri: String,
    /// The members' SIP URIs, each routed by its host.
    pub members: Vec<String>,
}

/// Ad-hoc groups on a controlling node (an INVITE carrying its recipient
/// list, RFC 5366).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Adhoc {
    /// The most recipients one list may name.
    pub max_members: usize,
}

/// An ISF rule choosing an IWF for an INVITE; the first rule that matches
/// wins. An absent condition matches anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IwfRule {
    /// The end of the receiver's address (`@sms.example`).
    pub receiver_suffix: Option<String>,
    /// The content type of the message (`text/plain`).
    pub content_type: Option<String>,
    /// The smallest message size it takes.
    pub min_size: Option<ByteSize>,
    /// The largest message size it takes.
    pub max_size: Option<ByteSize>,
    /// The SIP URI of the chosen IWF (routed by its host).
    pub iwf: String,
}

/// The non-CPM system behind an IWF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NonCpmSystem {
    /// SMS through an SMSC over SMPP v3.4 (`target` = `host:port`).
    Sms,
    /// MMS through an MMSC over HTTP (`target` = `http://...`).
    Mms,
    /// Email through an SMTP server (`target` = `host:port`).
    Email,
}

impl NonCpmSystem {
    /// The name in configs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Mms => "mms",
            Self::Email => "email",
        }
    }
}

/// When the IWF sends its delivery REPORT (the source documents, "Acknowledgements").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IwfReport {
    /// When the non-CPM system acknowledges.
    #[default]
    OnAck,
    /// As soon as the whole message arrived (seed 000 paragraph 0111).
    AtMediaEnd,
}

/// An IWF's non-CPM side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IwfTarget {
    /// The system.
    pub system: NonCpmSystem,
    /// Where it is: `host:port` (SMPP, SMTP) or an `http://` URL (MMSC).
    pub target: String,
    /// When the delivery REPORT goes.
    pub report: IwfReport,
    /// Whether the IWF sends BYE after its REPORT.
    pub bye_after_report: bool,
    /// (SMS) The `system_id` it binds to the SMSC with (SMPP v3.4 s.4.1.1,
    /// at most 15 characters); `cpm-iwf` by default.
    pub system_id: String,
    /// (SMS) The bind's `password` (at most 8 characters); empty by default.
    pub password: String,
    /// (Email) The domain of the addresses made from telephone numbers and
    /// of `Message-ID`s; `iwf.invalid` by default.
    pub domain: Option<String>,
}

/// Which participating function a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// PF(A): between the sender and the CF.
    Originating,
    /// PF(B): between the CF and the receivers it serves.
    Terminating,
}

/// How a relay authenticates AUTH (RFC 4976 s.6.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayChallenge {
    /// HTTP Digest against `[[relay.user]]`.
    #[default]
    Digest,
    /// Every AUTH granted: for tests and load benchmarks only.
    None,
}

/// One user of a relay.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayUser {
    /// The Digest `username`.
    pub name: String,
    /// Its password.
    pub password: String,
}

impl fmt::Debug for RelayUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayUser").field("name", &self.name).finish_non_exhaustive()
    }
}

/// A relay node's settings (`[relay]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relay {
    /// The Digest realm (default: the identity's host).
    pub realm: String,
    /// Digest, or none.
    pub challenge: RelayChallenge,
    /// AUTH accepted over `tcp://` listeners too (RFC 4976 s.8 asks TLS;
    /// for test relays).
    pub auth_over_tcp: bool,
    /// Who may AUTH.
    pub users: Vec<RelayUser>,
    /// MSRP over WebSocket listeners (RFC 7977): `wss://IP:PORT` (TLS, from
    /// `[tls]`), or `ws://IP:PORT` when `plain_websocket_for_tests` is set
    /// (RFC 7977 s.5.1: "MSRP traffic transported over WebSockets MUST be
    /// protected by using a Secure WebSocket (WSS) connection"). Kept as
    /// their stream transport: `tls` for `wss`, `tcp` for `ws`.
    pub websocket_listen: Vec<ListenAddr>,
    /// How long an accepted connection may go without a successful request
    /// (RFC 4976 s.6.1: "up to 30 seconds"; default 30).
    pub probation: Duration,
    /// Connections at once (default 4096): past it, a new one is closed at once.
    pub max_connections: usize,
}

/// A participating node's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participating {
    /// Originating or terminating.
    pub side: Side,
    /// (Terminating) the users it serves; empty: any user its routes reach.
    pub users: Vec<String>,
}

/// The link-establishment strategy of seed 001.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Solution 1: the sender of each INVITE opens the hop.
    #[default]
    InviteInitiator,
    /// Solution 2: the receiver of each INVITE opens the hop.
    InviteReceiver,
    /// Solution 3: links open from the clients towards the network.
    ClientInitiative,
}

/// When a B2BUA generates the downstream ACK.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AckPolicy {
    /// When the upstream ACK arrives.
    #[default]
    AfterAck,
    /// As soon as the downstream 200 arrives.
    #[serde(rename = "on-200")]
    On200,
}

/// When the controlling function answers INVITE#2.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnswerPolicy {
    /// At once.
    #[default]
    Immediate,
    /// After the first member's 200.
    AfterFirstDestination,
}

/// The policies of the source documents' figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// The strategy preset.
    pub strategy: Strategy,
    /// (Participating, controlling) the ACK policy.
    pub ack: AckPolicy,
    /// (Controlling) the answer policy.
    pub answer: AnswerPolicy,
}

/// Bounds and deadlines: a hostile peer is the normal case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most SIP sessions at once (503 beyond).
    pub max_sessions: usize,
    /// The largest message accepted (MSRP 413 beyond).
    pub max_message_size: ByteSize,
    /// Bytes a connection may have in flight before reading pauses.
    pub window: ByteSize,
    /// Deadline of a TCP connect plus TLS handshake.
    pub handshake_timeout: Duration,
    /// MSRP transaction timeout (RFC 4975 s.7.1.1 suggests 30 s).
    pub transaction_timeout: Duration,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// The largest chunk its SEND requests carry (RFC 4975 s.7.1.1: a
    /// message may be sent in several chunks); `None`: each message in one.
    pub chunk_size: Option<ByteSize>,
    /// (Controlling) A member whose oldest chunks stay unanswered this long
    /// (its window full) is dropped, so that one stalled member does not
    /// hold the others; `None`: never.
    pub slow_member: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sessions: 1024,
            max_message_size: ByteSize(64 << 20),
            window: ByteSize(1 << 20),
            chunk_size: None,
            slow_member: None,
            handshake_timeout: Duration::from_secs(10),
            transaction_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// TLS material.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tls {
    /// The certificate chain (PEM) a TLS listener presents.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// CA certificates (PEM) that verify peers by name (RFC 4975 s.5.4).
    pub ca: Option<PathBuf>,
    /// Peer certificate fingerprints accepted without a CA (RFC 4975 s.14.4).
    pub fingerprints: Vec<Fingerprint>,
}

/// One node's configuration, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// The entity it hosts.
    pub role: Role,
    /// The log filter (tracing `EnvFilter` syntax).
    pub log: String,
    /// Who it is.
    pub identity: Identity,
    /// SIP listeners (`udp://`, `tcp://`, `tls://`).
    pub sip_listen: Vec<ListenAddr>,
    /// MSRP listeners (`tcp://`, `tls://`).
    pub msrp_listen: Vec<ListenAddr>,
    /// Where `GET /metrics` serves the entity's stats in the Prometheus
    /// text format (`tcp://`), if anywhere.
    pub metrics_listen: Option<ListenAddr>,
    /// SIP next hops by Request-URI host.
    pub sip_routes: Vec<SipRoute>,
    /// (Controlling) pre-defined groups.
    pub groups: Vec<Group>,
    /// (Controlling) ad-hoc groups, if served.
    pub adhoc: Option<Adhoc>,
    /// (ISF) the rules choosing an IWF.
    pub iwf_rules: Vec<IwfRule>,
    /// (IWF) the non-CPM side.
    pub iwf: Option<IwfTarget>,
    /// (Participating) its side.
    pub participating: Option<Participating>,
    /// (Relay) its users and AUTH rules.
    pub relay: Option<Relay>,
    /// The figures' policies.
    pub policy: Policy,
    /// Bounds and deadlines.
    pub limits: Limits,
    /// TLS material, if any.
    pub tls: Option<Tls>,
}

impl NodeConfig {
    /// Parses and checks a config text. Relative `[tls]` paths stay as
    /// written and no file is read.
    ///
    /// # Errors
    ///
    /// Every problem found, each with its line.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Checker::run(text, None)
    }

    /// Reads and checks a config file: as [`NodeConfig::parse`], and
    /// relative `[tls]` paths are resolved against the file's directory, and
    /// the certificate, key and CA files must load.
    ///
    /// # Errors
    ///
    /// [`LoadError::Read`] if the file cannot be read,
    /// [`LoadError::Invalid`] with every problem found.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.to_owned(), source })?;
        let base = path.parent().unwrap_or_else(|| Path::new(""));
        Checker::run(&text, Some(base)).map_err(LoadError::Invalid)
    }

    /// The next hop for a Request-URI host: the route naming it, else the
    /// `*` route.
    #[must_use]
    pub fn route(&self, host: &str) -> Option<&SipRoute> {
        self.sip_routes
            .iter()
            .find(|route| route.host.eq_ignore_ascii_case(host))
            .or_else(|| self.sip_routes.iter().find(|route| route.host == "*"))
    }
}

/// Why [`NodeConfig::load`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file has problems.
    #[error("{0}")]
    Invalid(ConfigError),
}

/// Every problem of a config, in line order.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The problems, at least one.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    /// One `line N: message` per problem, one per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// One problem and the line (1-based) it is about.
#[derive(Debug)]
pub struct Problem {
    /// The 1-based line.
    pub line: usize,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.kind)
    }
}

/// What is wrong with a config.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProblemKind {
    /// TOML syntax, a value of the wrong type, an unknown or missing field
    /// (toml's own message).
    #[error("{message}")]
    Toml {
        /// The parser's message.
        message: String,
    },
    /// Not a `SCHEME://IP:PORT` address.
    #[error("{field}: invalid address {value:?}: {source}")]
    BadAddress {
        /// Where it is.
        field: &'static str,
        /// The text.
        value: String,
        /// Why.
        #[source]
        source: ListenAddrError,
    },
    /// A transport the field does not take (MSRP over UDP).
    #[error("{field}: {value} uses {transport}, but {field} takes {allowed}")]
    WrongTransport {
        /// Where it is.
        field: &'static str,
        /// The address.
        value: ListenAddr,
        /// Its transport.
        transport: Transport,
        /// What the field takes.
        allowed: &'static str,
    },
    /// The same address twice.
    #[error("{field}: {value} is listed twice")]
    DuplicateAddress {
        /// Where it is.
        field: &'static str,
        /// The address.
        value: ListenAddr,
    },
    /// A `tls://` listener without `[tls]` cert and key.
    #[error("{field}: {value} is a TLS listener, but [tls] has no cert and key")]
    TlsListenerWithoutCertificate {
        /// Where it is.
        field: &'static str,
        /// The address.
        value: ListenAddr,
    },
    /// A `tls://` route with nothing to verify the peer by.
    #[error("sip_route: {value} is a TLS route, but [tls] has neither ca nor fingerprints to verify the peer")]
    TlsRouteWithoutTrust {
        /// The address.
        value: ListenAddr,
    },
    /// `[tls]` with a certificate and no key, or the reverse.
    #[error("[tls] has {present} but no {missing}")]
    IncompleteKeyPair {
        /// The field given.
        present: &'static str,
        /// The field missing.
        missing: &'static str,
    },
    /// A field for another role.
    #[error("{field} is not allowed for role {role} (only for {allowed})")]
    WrongRole {
        /// The field or table.
        field: &'static str,
        /// The node's role.
        role: Role,
        /// The roles that take it.
        allowed: &'static str,
    },
    /// A WebSocket listen address that cannot be used.
    #[error("{field}: {value:?}: {reason}")]
    BadListen {
        /// The field.
        field: &'static str,
        /// The value as written.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Something the role needs is missing.
    #[error("role {role} needs {what}")]
    MissingForRole {
        /// The node's role.
        role: Role,
        /// What it needs.
        what: &'static str,
    },
    /// A field that must not be empty is.
    #[error("{field} must not be empty")]
    Empty {
        /// The field.
        field: &'static str,
    },
    /// Not a usable SIP URI.
    #[error("{field}: {value:?} is not a SIP URI: {reason}")]
    BadUri {
        /// Where it is.
        field: &'static str,
        /// The text.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// A URI whose host no route serves.
    #[error("{field}: no [[sip_route]] for host {host:?} of {uri} (and no \"*\" route)")]
    NoRoute {
        /// Where it is.
        field: &'static str,
        /// The URI.
        uri: String,
        /// Its host.
        host: String,
    },
    /// Two routes for one host.
    #[error("sip_route: host {host:?} has a route already")]
    DuplicateRoute {
        /// The host.
        host: String,
    },
    /// Two groups with one address.
    #[error("group: {uri} is defined twice")]
    DuplicateGroup {
        /// The group's address.
        uri: String,
    },
    /// A limit that must be positive is 0.
    #[error("{field} must be greater than 0")]
    Zero {
        /// The field.
        field: &'static str,
    },
    /// `min_size` above `max_size`.
    #[error("iwf_rule: min_size {min} is larger than max_size {max}")]
    SizeRange {
        /// The minimum.
        min: ByteSize,
        /// The maximum.
        max: ByteSize,
    },
    /// Not a `SHA-256 XX:...` fingerprint.
    #[error("tls.fingerprints: invalid fingerprint {value:?}: {source}")]
    BadFingerprint {
        /// The text.
        value: String,
        /// Why.
        #[source]
        source: FingerprintError,
    },
    /// An email IWF's domain that is no domain name.
    #[error("iwf.domain: {value:?} is not a domain name (RFC 5321 s.4.1.2)")]
    BadDomain {
        /// The text.
        value: String,
    },
    /// An SMPP bind field that does not fit (SMPP v3.4 s.4.1.1).
    #[error("{field}: {value:?} must be ASCII of at most {max} characters (SMPP v3.4 s.4.1.1)")]
    BindField {
        /// Where it is.
        field: &'static str,
        /// The text.
        value: String,
        /// The most characters.
        max: usize,
    },
    /// An IWF target of the wrong form for its system.
    #[error("iwf.target: {value:?} is not a valid {system} target: expected {expected}")]
    BadTarget {
        /// The system.
        system: &'static str,
        /// The text.
        value: String,
        /// The form expected.
        expected: &'static str,
    },
    /// Not a tracing filter.
    #[error("log: invalid filter {value:?}: {message}")]
    BadLogFilter {
        /// The text.
        value: String,
        /// The parser's message.
        message: String,
    },
    /// A `[tls]` file that does not load ([`NodeConfig::load`] only).
    #[error("tls.{field}: {source}")]
    TlsFile {
        /// `cert`, `key` or `ca`.
        field: &'static str,
        /// Why.
        #[source]
        source: TlsSetupError,
    },
}

// The file's shape, spans kept for the checks serde cannot make.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    role: Spanned<Role>,
    log: Option<Spanned<String>>,
    identity: Spanned<RawIdentity>,
    #[serde(default)]
    sip_listen: Vec<Spanned<String>>,
    msrp_listen: Option<Spanned<Vec<Spanned<String>>>>,
    metrics_listen: Option<Spanned<String>>,
    #[serde(default)]
    sip_route: Vec<Spanned<RawRoute>>,
    #[serde(default)]
    group: Vec<Spanned<RawGroup>>,
    adhoc: Option<Spanned<RawAdhoc>>,
    #[serde(default)]
    iwf_rule: Vec<Spanned<RawIwfRule>>,
    iwf: Option<Spanned<RawIwf>>,
    participating: Option<Spanned<RawParticipating>>,
    relay: Option<Spanned<RawRelay>>,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    limits: RawLimits,
    tls: Option<Spanned<RawTls>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelay {
    realm: Option<String>,
    #[serde(default)]
    challenge: RelayChallenge,
    #[serde(default)]
    auth_over_tcp: bool,
    #[serde(default)]
    user: Vec<RelayUser>,
    #[serde(default)]
    websocket_listen: Vec<String>,
    #[serde(default)]
    plain_websocket_for_tests: bool,
    probation_secs: Option<u64>,
    max_connections: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    name: Spanned<String>,
    host: Spanned<String>,
    uri: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    host: Spanned<String>,
    address: Spanned<String>,
    non_cpm: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    uri: Spanned<String>,
    members: Spanned<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdhoc {
    max_members: Option<Spanned<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIwfRule {
    receiver_suffix: Option<String>,
    content_type: Option<String>,
    min_size: Option<ByteSize>,
    max_size: Option<ByteSize>,
    iwf: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIwf {
    system: NonCpmSystem,
    target: Spanned<String>,
    #[serde(default)]
    report: IwfReport,
    #[serde(default)]
    bye_after_report: bool,
    system_id: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    domain: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParticipating {
    side: Spanned<Side>,
    users: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    strategy: Option<Strategy>,
    ack: Option<Spanned<AckPolicy>>,
    answer: Option<Spanned<AnswerPolicy>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_sessions: Option<Spanned<usize>>,
    max_message_size: Option<Spanned<ByteSize>>,
    window: Option<Spanned<ByteSize>>,
    handshake_timeout_secs: Option<Spanned<u64>>,
    transaction_timeout_secs: Option<Spanned<u64>>,
    idle_timeout_secs: Option<Spanned<u64>>,
    chunk_size: Option<Spanned<ByteSize>>,
    slow_member_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<Spanned<PathBuf>>,
    key: Option<Spanned<PathBuf>>,
    ca: Option<Spanned<PathBuf>>,
    #[serde(default)]
    fingerprints: Vec<Spanned<String>>,
}

/// The host of a `sip:`/`sips:` URI (`sip:user@host:port;params`).
fn sip_uri_host(uri: &str) -> Result<&str, &'static str> {
    let rest = ["sip:", "sips:"]
        .iter()
        .find_map(|scheme| {
            uri.get(..scheme.len()).filter(|head| head.eq_ignore_ascii_case(scheme)).map(|_| &uri[scheme.len()..])
        })
        .ok_or("it must start with sip: or sips:")?;
    let rest = rest.split([';', '?']).next().unwrap_or_default();
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, hostport)| hostport);
    let host = if let Some(bracketed) = hostport.strip_prefix('[') {
        bracketed.split_once(']').map(|(v6, _)| v6).ok_or("an IPv6 host needs its closing ]")?
    } else {
        hostport.split(':').next().unwrap_or_default()
    };
    if host.is_empty() {
        return Err("it has no host");
    }
    if host.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
        return Err("its host contains whitespace");
    }
    Ok(host)
}

/// Collects problems while it builds a [`NodeConfig`] from a [`RawConfig`].
struct Checker<'a> {
    text: &'a str,
    base: Option<&'a Path>,
    problems: Vec<Problem>,
}

impl<'a> Checker<'a> {
    fn run(text: &'a str, base: Option<&'a Path>) -> Result<NodeConfig, ConfigError> {
        let mut checker = Self { text, base, problems: Vec::new() };
        let config = match toml::from_str::<RawConfig>(text) {
            Ok(raw) => Some(checker.check(raw)),
            Err(error) => {
                let line = error.span().map_or(1, |span| checker.line(&span));
                checker
                    .problems
                    .push(Problem { line, kind: ProblemKind::Toml { message: error.message().to_owned() } });
                None
            }
        };
        match config {
            Some(config) if checker.problems.is_empty() => Ok(config),
            _ => {
                let mut problems = checker.problems;
                problems.sort_by_key(|problem| problem.line);
                Err(ConfigError { problems })
            }
        }
    }

    /// The 1-based line of a byte offset.
    fn line(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }

    fn problem(&mut self, span: &Range<usize>, kind: ProblemKind) {
        let line = self.line(span);
        self.problems.push(Problem { line, kind });
    }

    fn check(&mut self, raw: RawConfig) -> NodeConfig {
        let role = *raw.role.get_ref();
        let role_span = raw.role.span();
        let log = self.check_log(raw.log);
        let identity = self.check_identity(raw.identity.into_inner());
        let sip_listen = self.check_addresses(
            "sip_listen",
            &raw.sip_listen,
            &[Transport::Udp, Transport::Tcp, Transport::Tls],
            "udp://, tcp:// or tls://",
        );
        if raw.sip_listen.is_empty() && role != Role::Relay {
            self.problem(&role_span, ProblemKind::MissingForRole { role, what: "at least one sip_listen address" });
        }
        let msrp_listen = match (&raw.msrp_listen, role) {
            (Some(list), Role::Isf) => {
                self.problem(
                    &list.span(),
                    ProblemKind::WrongRole { field: "msrp_listen", role, allowed: "every role but isf" },
                );
                Vec::new()
            }
            (Some(list), _) => {
                if list.get_ref().is_empty() {
                    self.problem(&list.span(), ProblemKind::Empty { field: "msrp_listen" });
                }
                self.check_addresses(
                    "msrp_listen",
                    list.get_ref(),
                    &[Transport::Tcp, Transport::Tls],
                    "tcp:// or tls:// (MSRP runs over streams, RFC 4975 s.6)",
                )
            }
            (None, Role::Isf) => Vec::new(),
            (None, _) => {
                self.problem(&role_span, ProblemKind::MissingForRole { role, what: "msrp_listen (an MSRP address)" });
                Vec::new()
            }
        };
        let metrics_listen = raw.metrics_listen.as_ref().and_then(|addr| {
            self.check_addresses("metrics_listen", std::slice::from_ref(addr), &[Transport::Tcp], "tcp:// (HTTP)").pop()
        });
        let tls = raw.tls.map(|tls| self.check_tls(tls));
        let has_key_pair = tls.as_ref().is_some_and(|tls| tls.cert.is_some() && tls.key.is_some());
        let has_trust = tls.as_ref().is_some_and(|tls| tls.ca.is_some() || !tls.fingerprints.is_empty());
        for (field, raw_list, list) in [
            ("sip_listen", &raw.sip_listen[..], &sip_listen),
            ("msrp_listen", raw_msrp(&raw.msrp_listen), &msrp_listen),
        ] {
            for (raw_addr, addr) in raw_list.iter().zip(list) {
                if addr.transport == Transport::Tls && !has_key_pair {
                    self.problem(&raw_addr.span(), ProblemKind::TlsListenerWithoutCertificate { field, value: *addr });
                }
            }
        }
        let sip_routes = self.check_routes(role, &raw.sip_route, has_trust);
        if matches!(role, Role::Sender | Role::Participating) && sip_routes.is_empty() {
            self.problem(
                &role_span,
                ProblemKind::MissingForRole { role, what: "at least one [[sip_route]] (its next hop)" },
            );
        }
        let groups = self.check_groups(role, raw.group, &sip_routes);
        let adhoc = self.check_adhoc(role, raw.adhoc);
        if role == Role::Controlling && groups.is_empty() && adhoc.is_none() {
            self.problem(
                &role_span,
                ProblemKind::MissingForRole { role, what: "at least one [[group]] or an [adhoc] table" },
            );
        }
        let iwf_rules = self.check_iwf_rules(role, raw.iwf_rule, &sip_routes);
        if role == Role::Isf && iwf_rules.is_empty() {
            self.problem(&role_span, ProblemKind::MissingForRole { role, what: "at least one [[iwf_rule]]" });
        }
        let iwf = self.check_iwf(role, raw.iwf);
        if role == Role::Iwf && iwf.is_none() {
            self.problem(&role_span, ProblemKind::MissingForRole { role, what: "an [iwf] table (system, target)" });
        }
        let participating = self.check_participating(role, raw.participating);
        if role == Role::Participating && participating.is_none() {
            self.problem(&role_span, ProblemKind::MissingForRole { role, what: "a [participating] table (side)" });
        }
        let relay = self.check_relay(role, raw.relay, &identity.host);
        if role == Role::Relay && relay.is_none() {
            self.problem(&role_span, ProblemKind::MissingForRole { role, what: "a [relay] table" });
        }
        let policy = self.check_policy(role, raw.policy);
        let limits = self.check_limits(raw.limits);
        NodeConfig {
            role,
            log,
            identity,
            sip_listen,
            msrp_listen,
            metrics_listen,
            sip_routes,
            groups,
            adhoc,
            iwf_rules,
            iwf,
            participating,
            relay,
            policy,
            limits,
            tls,
        }
    }

    fn check_relay(&mut self, role: Role, raw: Option<Spanned<RawRelay>>, host: &str) -> Option<Relay> {
        let raw = raw?;
        if role != Role::Relay {
            self.wrong_role(&raw.span(), "[relay]", role, "relay");
            return None;
        }
        let span = raw.span();
        let raw = raw.into_inner();
        if raw.challenge == RelayChallenge::Digest && raw.user.is_empty() {
            self.problem(&span, ProblemKind::Empty { field: "relay.user (a Digest relay needs its users)" });
        }
        let mut websocket_listen = Vec::new();
        for text in &raw.websocket_listen {
            let (stream, rest) = match text.split_once("://") {
                Some(("wss", rest)) => ("tls", rest),
                Some(("ws", rest)) if raw.plain_websocket_for_tests => ("tcp", rest),
                Some(("ws", _)) => {
                    let reason = "ws:// needs plain_websocket_for_tests = true (RFC 7977 s.5.1 asks WSS)";
                    self.problem(
                        &span,
                        ProblemKind::BadListen { field: "relay.websocket_listen", value: text.clone(), reason },
                    );
                    continue;
                }
                _ => {
                    let reason = "expected wss://IP:PORT (or ws://IP:PORT for tests)";
                    self.problem(
                        &span,
                        ProblemKind::BadListen { field: "relay.websocket_listen", value: text.clone(), reason },
                    );
                    continue;
                }
            };
            match format!("{stream}://{rest}").parse::<ListenAddr>() {
                Ok(addr) => websocket_listen.push(addr),
                Err(error) => {
                    let reason = if matches!(error, ListenAddrError::BadSocketAddr) {
                        "expected IP:PORT after the scheme"
                    } else {
                        "expected wss://IP:PORT"
                    };
                    self.problem(
                        &span,
                        ProblemKind::BadListen { field: "relay.websocket_listen", value: text.clone(), reason },
                    );
                }
            }
        }
        Some(Relay {
            realm: raw.realm.unwrap_or_else(|| host.to_owned()),
            challenge: raw.challenge,
            auth_over_tcp: raw.auth_over_tcp,
            users: raw.user,
            websocket_listen,
            probation: Duration::from_secs(raw.probation_secs.unwrap_or(30).max(1)),
            max_connections: raw.max_connections.unwrap_or(4096).max(1),
        })
    }

    fn wrong_role(&mut self, span: &Range<usize>, field: &'static str, role: Role, allowed: &'static str) {
        self.problem(span, ProblemKind::WrongRole { field, role, allowed });
    }

    fn check_log(&mut self, log: Option<Spanned<String>>) -> String {
        let Some(log) = log else { return "info".to_owned() };
        let span = log.span();
        let value = log.into_inner();
        if let Err(error) = tracing_subscriber::EnvFilter::builder().parse(&value) {
            self.problem(&span, ProblemKind::BadLogFilter { message: error.to_string(), value: value.clone() });
        }
        value
    }

    fn check_identity(&mut self, raw: RawIdentity) -> Identity {
        for (field, value) in [("identity.name", &raw.name), ("identity.host", &raw.host)] {
            if value.get_ref().trim().is_empty() {
                self.problem(&value.span(), ProblemKind::Empty { field });
            }
        }
        if let Err(reason) = sip_uri_host(raw.uri.get_ref()) {
            self.problem(
                &raw.uri.span(),
                ProblemKind::BadUri { field: "identity.uri", value: raw.uri.get_ref().clone(), reason },
            );
        }
        Identity { name: raw.name.into_inner(), host: raw.host.into_inner(), uri: raw.uri.into_inner() }
    }

    /// Parses each address; bad ones are reported and left out.
    fn check_addresses(
        &mut self,
        field: &'static str,
        raw: &[Spanned<String>],
        allowed: &[Transport],
        allowed_text: &'static str,
    ) -> Vec<ListenAddr> {
        let mut out: Vec<ListenAddr> = Vec::new();
        for text in raw {
            let span = text.span();
            match text.get_ref().parse::<ListenAddr>() {
                Err(source) => {
                    self.problem(&span, ProblemKind::BadAddress { field, value: text.get_ref().clone(), source })
                }
                Ok(addr) if !allowed.contains(&addr.transport) => self.problem(
                    &span,
                    ProblemKind::WrongTransport {
                        field,
                        value: addr,
                        transport: addr.transport,
                        allowed: allowed_text,
                    },
                ),
                Ok(addr) if out.contains(&addr) => {
                    self.problem(&span, ProblemKind::DuplicateAddress { field, value: addr })
                }
                Ok(addr) => out.push(addr),
            }
        }
        out
    }

    fn check_tls(&mut self, raw: Spanned<RawTls>) -> Tls {
        let span = raw.span();
        let raw = raw.into_inner();
        match (&raw.cert, &raw.key) {
            (Some(_), None) => self.problem(&span, ProblemKind::IncompleteKeyPair { present: "cert", missing: "key" }),
            (None, Some(_)) => self.problem(&span, ProblemKind::IncompleteKeyPair { present: "key", missing: "cert" }),
            _ => {}
        }
        let mut fingerprints = Vec::new();
        for text in &raw.fingerprints {
            match text.get_ref().parse::<Fingerprint>() {
                Ok(fingerprint) => fingerprints.push(fingerprint),
                Err(source) => {
                    self.problem(&text.span(), ProblemKind::BadFingerprint { value: text.get_ref().clone(), source });
                }
            }
        }
        let resolve = |path: Option<Spanned<PathBuf>>| {
            path.map(|path| {
                let span = path.span();
                let path = path.into_inner();
                let path = match self.base {
                    Some(base) if path.is_relative() => base.join(path),
                    _ => path,
                };
                (span, path)
            })
        };
        let cert = resolve(raw.cert);
        let key = resolve(raw.key);
        let ca = resolve(raw.ca);
        if self.base.is_some() {
            if let (Some((cert_span, cert)), Some((_, key))) = (&cert, &key) {
                // Any deadline will do: this only checks that the pair loads.
                if let Err(source) = TlsServerConfig::from_pem_files(cert, key, Duration::from_secs(1)) {
                    let field = if matches!(source, TlsSetupError::NoPrivateKey { .. }) { "key" } else { "cert" };
                    self.problem(cert_span, ProblemKind::TlsFile { field, source });
                }
            }
            if let Some((ca_span, ca)) = &ca {
                if let Err(source) = TlsClient::with_ca_file(ca) {
                    self.problem(ca_span, ProblemKind::TlsFile { field: "ca", source });
                }
            }
        }
        Tls {
            cert: cert.map(|(_, path)| path),
            key: key.map(|(_, path)| path),
            ca: ca.map(|(_, path)| path),
            fingerprints,
        }
    }

    fn check_routes(&mut self, role: Role, raw: &[Spanned<RawRoute>], has_trust: bool) -> Vec<SipRoute> {
        let mut routes: Vec<SipRoute> = Vec::new();
        for route in raw {
            let route = route.get_ref();
            let host = route.host.get_ref().trim().to_owned();
            if host.is_empty() {
                self.problem(&route.host.span(), ProblemKind::Empty { field: "sip_route.host" });
                continue;
            }
            if routes.iter().any(|known| known.host.eq_ignore_ascii_case(&host)) {
                self.problem(&route.host.span(), ProblemKind::DuplicateRoute { host });
                continue;
            }
            let non_cpm = match &route.non_cpm {
                Some(flag) if role != Role::Controlling => {
                    self.wrong_role(&flag.span(), "sip_route.non_cpm", role, "controlling");
                    false
                }
                Some(flag) => *flag.get_ref(),
                None => false,
            };
            let span = route.address.span();
            let address = match route.address.get_ref().parse::<ListenAddr>() {
                Ok(address) => address,
                Err(source) => {
                    let value = route.address.get_ref().clone();
                    self.problem(&span, ProblemKind::BadAddress { field: "sip_route.address", value, source });
                    continue;
                }
            };
            if address.transport == Transport::Tls && !has_trust {
                self.problem(&span, ProblemKind::TlsRouteWithoutTrust { value: address });
            }
            routes.push(SipRoute { host, address, non_cpm });
        }
        routes
    }

    /// Checks that `uri` is a SIP URI whose host a route serves.
    fn check_routable(&mut self, field: &'static str, uri: &Spanned<String>, routes: &[SipRoute]) {
        let span = uri.span();
        match sip_uri_host(uri.get_ref()) {
            Err(reason) => self.problem(&span, ProblemKind::BadUri { field, value: uri.get_ref().clone(), reason }),
            Ok(host) => {
                let routed = routes.iter().any(|route| route.host == "*" || route.host.eq_ignore_ascii_case(host));
                if !routed {
                    let kind = ProblemKind::NoRoute { field, uri: uri.get_ref().clone(), host: host.to_owned() };
                    self.problem(&span, kind);
                }
            }
        }
    }

    fn check_groups(&mut self, role: Role, raw: Vec<Spanned<RawGroup>>, routes: &[SipRoute]) -> Vec<Group> {
        let mut groups: Vec<Group> = Vec::new();
        for group in raw {
            if role != Role::Controlling {
                self.wrong_role(&group.span(), "[[group]]", role, "controlling");
                continue;
            }
            let group = group.into_inner();
            if let Err(reason) = sip_uri_host(group.uri.get_ref()) {
                let value = group.uri.get_ref().clone();
                self.problem(&group.uri.span(), ProblemKind::BadUri { field: "group.uri", value, reason });
            }
            if groups.iter().any(|known| known.uri == *group.uri.get_ref()) {
                self.problem(&group.uri.span(), ProblemKind::DuplicateGroup { uri: group.uri.get_ref().clone() });
            }
            if group.members.get_ref().is_empty() {
                self.problem(&group.members.span(), ProblemKind::Empty { field: "group.members" });
            }
            for member in group.members.get_ref() {
                self.check_routable("group.members", member, routes);
            }
            let members = group.members.into_inner().into_iter().map(Spanned::into_inner).collect();
            groups.push(Group { uri: group.uri.into_inner(), members });
        }
        groups
    }

    fn check_adhoc(&mut self, role: Role, raw: Option<Spanned<RawAdhoc>>) -> Option<Adhoc> {
        let raw = raw?;
        if role != Role::Controlling {
            self.wrong_role(&raw.span(), "[adhoc]", role, "controlling");
            return None;
        }
        let max_members = self.positive("adhoc.max_members", raw.into_inner().max_members, 100);
        Some(Adhoc { max_members })
    }

    fn check_iwf_rules(&mut self, role: Role, raw: Vec<Spanned<RawIwfRule>>, routes: &[SipRoute]) -> Vec<IwfRule> {
        let mut rules = Vec::new();
        for rule in raw {
            let span = rule.span();
            if role != Role::Isf {
                self.wrong_role(&span, "[[iwf_rule]]", role, "isf");
                continue;
            }
            let rule = rule.into_inner();
            if let (Some(min), Some(max)) = (rule.min_size, rule.max_size) {
                if min > max {
                    self.problem(&span, ProblemKind::SizeRange { min, max });
                }
            }
            self.check_routable("iwf_rule.iwf", &rule.iwf, routes);
            rules.push(IwfRule {
                receiver_suffix: rule.receiver_suffix,
                content_type: rule.content_type,
                min_size: rule.min_size,
                max_size: rule.max_size,
                iwf: rule.iwf.into_inner(),
            });
        }
        rules
    }

    fn check_iwf(&mut self, role: Role, raw: Option<Spanned<RawIwf>>) -> Option<IwfTarget> {
        let raw = raw?;
        if role != Role::Iwf {
            self.wrong_role(&raw.span(), "[iwf]", role, "iwf");
            return None;
        }
        let raw = raw.into_inner();
        let target = raw.target.get_ref();
        let valid = match raw.system {
            NonCpmSystem::Sms | NonCpmSystem::Email => target
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok()),
            NonCpmSystem::Mms => {
                ["http://", "https://"].iter().any(|scheme| target.len() > scheme.len() && target.starts_with(scheme))
            }
        };
        if !valid {
            let expected = match raw.system {
                NonCpmSystem::Mms => "an http:// or https:// URL of the MMSC",
                NonCpmSystem::Sms => "host:port of the SMSC (SMPP)",
                NonCpmSystem::Email => "host:port of the SMTP server",
            };
            let kind = ProblemKind::BadTarget { system: raw.system.as_str(), value: target.clone(), expected };
            self.problem(&raw.target.span(), kind);
        }
        let domain = raw.domain.and_then(|domain| {
            // RFC 5321 s.4.1.2 Domain: letters, digits and hyphens in labels.
            let valid = domain.get_ref().split('.').all(|label| {
                !label.is_empty() && label.len() <= 63 && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
            if raw.system != NonCpmSystem::Email {
                self.problem(
                    &domain.span(),
                    ProblemKind::WrongRole { field: "iwf.domain", role, allowed: "an email IWF" },
                );
                None
            } else if !valid {
                self.problem(&domain.span(), ProblemKind::BadDomain { value: domain.get_ref().clone() });
                None
            } else {
                Some(domain.into_inner())
            }
        });
        // SMPP v3.4 s.4.1.1: system_id is a C-Octet String of at most 16
        // octets, password of at most 9, with their NUL.
        for (field, value, max) in [("iwf.system_id", &raw.system_id, 15), ("iwf.password", &raw.password, 8)] {
            if let Some(value) = value {
                if raw.system != NonCpmSystem::Sms {
                    self.problem(&value.span(), ProblemKind::WrongRole { field, role, allowed: "an SMS IWF" });
                } else if value.get_ref().len() > max || !value.get_ref().is_ascii() {
                    let kind = ProblemKind::BindField { field, value: value.get_ref().clone(), max };
                    self.problem(&value.span(), kind);
                }
            }
        }
        Some(IwfTarget {
            system: raw.system,
            target: raw.target.into_inner(),
            report: raw.report,
            bye_after_report: raw.bye_after_report,
            system_id: raw.system_id.map_or_else(|| "cpm-iwf".to_owned(), Spanned::into_inner),
            password: raw.password.map_or_else(String::new, Spanned::into_inner),
            domain,
        })
    }

    fn check_participating(&mut self, role: Role, raw: Option<Spanned<RawParticipating>>) -> Option<Participating> {
        let raw = raw?;
        if role != Role::Participating {
            self.wrong_role(&raw.span(), "[participating]", role, "participating");
            return None;
        }
        let raw = raw.into_inner();
        let side = *raw.side.get_ref();
        let mut users = Vec::new();
        if let Some(list) = raw.users {
            if side == Side::Originating {
                let kind =
                    ProblemKind::WrongRole { field: "participating.users", role, allowed: "side = \"terminating\"" };
                self.problem(&list.span(), kind);
            }
            for user in list.into_inner() {
                if let Err(reason) = sip_uri_host(user.get_ref()) {
                    let value = user.get_ref().clone();
                    self.problem(&user.span(), ProblemKind::BadUri { field: "participating.users", value, reason });
                }
                users.push(user.into_inner());
            }
        }
        Some(Participating { side, users })
    }

    fn check_policy(&mut self, role: Role, raw: RawPolicy) -> Policy {
        let mut policy = Policy { strategy: raw.strategy.unwrap_or_default(), ..Policy::default() };
        if let Some(ack) = raw.ack {
            if matches!(role, Role::Participating | Role::Controlling) {
                policy.ack = *ack.get_ref();
            } else {
                self.wrong_role(&ack.span(), "policy.ack", role, "participating and controlling (the B2BUAs)");
            }
        }
        if let Some(answer) = raw.answer {
            if role == Role::Controlling {
                policy.answer = *answer.get_ref();
            } else {
                self.wrong_role(&answer.span(), "policy.answer", role, "controlling");
            }
        }
        policy
    }

    /// A value that must be positive, or its default.
    fn positive<T: Copy + Default + PartialEq>(
        &mut self,
        field: &'static str,
        value: Option<Spanned<T>>,
        default: T,
    ) -> T {
        match value {
            None => default,
            Some(value) => {
                if *value.get_ref() == T::default() {
                    self.problem(&value.span(), ProblemKind::Zero { field });
                }
                *value.get_ref()
            }
        }
    }

    fn check_limits(&mut self, raw: RawLimits) -> Limits {
        let defaults = Limits::default();
        let seconds = |duration: Duration| duration.as_secs();
        let max_message_size = self.positive(
            "limits.max_message_size",
            raw.max_message_size.map(map_size),
            defaults.max_message_size.get(),
        );
        let window = self.positive("limits.window", raw.window.map(map_size), defaults.window.get());
        let chunk_size =
            raw.chunk_size.map(|size| ByteSize(self.positive("limits.chunk_size", Some(map_size(size)), 0)));
        Limits {
            max_sessions: self.positive("limits.max_sessions", raw.max_sessions, defaults.max_sessions),
            max_message_size: ByteSize(max_message_size),
            window: ByteSize(window),
            handshake_timeout: Duration::from_secs(self.positive(
                "limits.handshake_timeout_secs",
                raw.handshake_timeout_secs,
                seconds(defaults.handshake_timeout),
            )),
            transaction_timeout: Duration::from_secs(self.positive(
                "limits.transaction_timeout_secs",
                raw.transaction_timeout_secs,
                seconds(defaults.transaction_timeout),
            )),
            idle_timeout: Duration::from_secs(self.positive(
                "limits.idle_timeout_secs",
                raw.idle_timeout_secs,
                seconds(defaults.idle_timeout),
            )),
            chunk_size,
            slow_member: raw
                .slow_member_secs
                .map(|secs| Duration::from_secs(self.positive("limits.slow_member_secs", Some(secs), 0))),
        }
    }
}

fn map_size(size: Spanned<ByteSize>) -> Spanned<u64> {
    Spanned::new(size.span(), size.into_inner().get())
}

fn raw_msrp(list: &Option<Spanned<Vec<Spanned<String>>>>) -> &[Spanned<String>] {
    list.as_ref().map_or(&[], |list| list.get_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse_with_units() {
        let cases: [(&str, Result<u64, ByteSizeError>); 10] = [
            ("1024", Ok(1024)),
            ("5MiB", Ok(5 << 20)),
            ("64MiB", Ok(64 << 20)),
            ("17 mib", Ok(17 << 20)),
            ("2KiB", Ok(2048)),
            ("3kB", Ok(3000)),
            ("1GiB", Ok(1 << 30)),
            ("MiB", Err(ByteSizeError::NoNumber)),
            ("5 parsecs", Err(ByteSizeError::UnknownUnit)),
            ("99999999999999GiB", Err(ByteSizeError::TooLarge)),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<ByteSize>().map(ByteSize::get), expected, "{text}");
        }
        assert_eq!(ByteSize::new(5 << 20).to_string(), "5MiB");
        assert_eq!(ByteSize::new(1000).to_string(), "1000");
    }

    #[test]
    fn sip_uri_hosts() {
        let cases: [(&str, Result<&str, ()>); 7] = [
            ("sip:bob@b.example", Ok("b.example")),
            ("sips:bob@b.example:5061;transport=tls", Ok("b.example")),
            ("SIP:b.example", Ok("b.example")),
            ("sip:alice@[::1]:5060", Ok("::1")),
            ("tel:+15550100", Err(())),
            ("sip:bob@", Err(())),
            ("sip:bob@[::1", Err(())),
        ];
        for (uri, expected) in cases {
            assert_eq!(sip_uri_host(uri).map_err(|_| ()), expected, "{uri}");
        }
    }
}
