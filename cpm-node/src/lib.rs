//! The OMA CPM runtime: the one crate of the workspace that owns IO.
//!
//! The protocol crates (`msrp-core`, `sip-lite`, `cpm-negotiation`,
//! `cpm-roles`) are sans-IO machines; this crate gives them real sockets on a
//! tokio runtime, reads a deployable node's TOML configuration, and is the
//! `cpm-node` binary.
//!
//! - [`config`]: [`NodeConfig`] for one node (its role, identity, SIP and
//!   MSRP listeners, SIP routes, group directory, ISF rules, IWF target,
//!   limits, TLS), checked with every problem reported at its line.
//! - [`transport`]: SIP over UDP ([`DatagramSocket`]), TCP and TLS; MSRP over
//!   TCP and TLS ([`Listener`], [`connect`]). TLS verifies a peer against a
//!   CA with the certificate naming the URI's host (RFC 4975 s.5.4), or by
//!   the SHA-256 fingerprint from its SDP (RFC 4975 s.14.4); every connect
//!   and handshake has a deadline, and every failure is a typed
//!   [`TransportError`].
//! - [`host`]: the runtime. [`Host`] runs `cpm-roles` entities on tokio,
//!   each machine on its own task, each connection with a reader and a
//!   writer task that never block it: frames written with vectored writes
//!   and acknowledged, reading paused and resumed as the machine asks,
//!   connects and handshakes on their own tasks with a deadline.
//! - [`metrics`]: `GET /metrics`, every entity's stats in the Prometheus
//!   text format (`metrics_listen` in a node's config).
//! - [`trace`]: a run on the host as the simulator's trace (what the
//!   demo's ladder, `trace.jsonl` and `sequence.svg` are drawn from).
//! - [`noncpm`]: the IWF's non-CPM systems (email to an SMTP server, SMS
//!   to an SMSC over SMPP, MMS to an MMSC over HTTP).
//! - [`demo`]: `cpm-node demo`, a figure's whole network on the host.
//! - [`serve`]: `cpm-node run CONFIG`, one deployable node (its role's
//!   entity on its listeners) until SIGTERM or Ctrl-C.
//! - [`relay`]: the `relay` role, msrp-core's RFC 4976 relay on its
//!   listeners.
//! - [`cli`]: the command line. `cpm-node check CONFIG` validates a config,
//!   `cpm-node run CONFIG` serves it, `cpm-node send` sends a file from a
//!   sender's config, `cpm-node demo` runs the demo.
//!
//! # Example
//!
//! Check a config, then carry one MSRP frame (head, body and end-line as
//! separate `Bytes`, written with one vectored write) over TCP:
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use cpm_node::{connect, Listener, NodeConfig, TlsMode};
//! use tokio::io::AsyncReadExt;
//!
//! let config = NodeConfig::parse(r#"
//!     role = "receiver"
//!     sip_listen = ["udp://127.0.0.1:0"]
//!     msrp_listen = ["tcp://127.0.0.1:0"]
//!     [identity]
//!     name = "b"
//!     host = "127.0.0.1"
//!     uri = "sip:bob@b.example"
//! "#).expect("a valid config");
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
//! runtime.block_on(async {
//!     let mut listener = Listener::bind(&config.msrp_listen[0], None).await.expect("bound");
//!     let addr = listener.local_addr().addr;
//!     let deadline = config.limits.handshake_timeout;
//!     let mut client = connect(addr, "127.0.0.1", &TlsMode::Plain, deadline).await.expect("connected");
//!     let (server, _peer) = listener.accept().await.expect("accepted");
//!
//!     let head = Bytes::from_static(b"MSRP a786hjs2 SEND\r\n\r\n");
//!     let body = Bytes::from_static(b"Hi Bob");
//!     let end = Bytes::from_static(b"\r\n-------a786hjs2$\r\n");
//!     client.write_all_parts(&[head, body, end]).await.expect("written");
//!     drop(client);
//!
//!     let (mut reader, _writer) = server.into_split();
//!     let mut received = Vec::new();
//!     reader.read_to_end(&mut received).await.expect("read");
//!     assert!(received.ends_with(b"Hi Bob\r\n-------a786hjs2$\r\n"));
//! });
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli;
pub mod config;
pub mod demo;
pub mod host;
pub mod metrics;
pub mod noncpm;
pub mod relay;
pub mod serve;
pub mod trace;
pub mod transport;

pub use config::{ConfigError, LoadError, NodeConfig, Problem, ProblemKind, Role};
pub use host::{Host, HostEvent, HostOptions, HostOutput, SipLink, StatsReader, Topology};
pub use transport::{
    connect, Conn, ConnReader, ConnWriter, DatagramSocket, Fingerprint, ListenAddr, Listener, TlsClient, TlsMode,
    TlsServerConfig, Transport, TransportError,
};
