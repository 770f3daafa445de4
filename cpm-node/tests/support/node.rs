//! A node served in the test's process from a config, and a sender on its
//! own sockets routed to it.

use std::time::Duration;

use bytes::Bytes;
use cpm_negotiation::{Figure, Hop, Preset};
use cpm_node::host::{now, Host, HostEvent, HostOptions};
use cpm_node::transport::{ListenAddr, Listener};
use cpm_node::NodeConfig;
use cpm_roles::{
    Client, Command, EntityConfig, Event, FlowId, Input, Outcome, Output, SessionId, SimulationIds, SipTransport,
};

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

pub(crate) fn addr(text: &str) -> ListenAddr {
    text.parse().expect("an address")
}

/// The shipped receiver config served in this process on free ports, with
/// `limits` (a `[limits]` table, or nothing) appended.
pub(crate) struct ServedB {
    pub(crate) sip: u16,
    pub(crate) msrp: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    node: tokio::task::JoinHandle<Result<(), cpm_node::serve::ServeError>>,
}

/// A shipped config with its ports replaced by `ports` (old, new) and
/// `tail` (more tables) appended.
pub(crate) fn shipped(name: &str, ports: &[(u16, u16)], tail: &str) -> String {
    let path = format!("{}/configs/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).expect("a shipped config");
    ports.iter().fold(text, |text, (old, new)| text.replace(&old.to_string(), &new.to_string())) + tail
}

impl ServedB {
    pub(crate) fn start(limits: &str) -> Self {
        let [sip, msrp] = [free_port(), free_port()];
        Self::serve(sip, msrp, &shipped("b.toml", &[(5164, sip), (7164, msrp)], limits))
    }

    /// Serves `config`, whose SIP and MSRP listen on `sip` and `msrp`.
    pub(crate) fn serve(sip: u16, msrp: u16, config: &str) -> Self {
        let b = NodeConfig::parse(config).expect("a valid config");
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let node = tokio::spawn(async move {
            cpm_node::serve::serve(&b, async {
                let _ = stop_rx.await;
            })
            .await
        });
        Self { sip, msrp, stop: Some(stop), node }
    }

    /// Tells the node to stop (SIGTERM, to a process).
    pub(crate) fn tell_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Tells the node to stop, and checks it stops cleanly.
    pub(crate) async fn stop(mut self) {
        self.tell_stop();
        let served = tokio::time::timeout(Duration::from_secs(10), self.node).await.expect("the node stops");
        assert!(matches!(served, Ok(Ok(()))), "{served:?}");
    }
}

/// A sending client on its own sockets, routed to `b_sip` over UDP.
pub(crate) async fn sender(b_sip: u16, seed: u64) -> Host {
    let mut config = EntityConfig::new("A", "127.0.0.1", 0, Preset::figure(Figure::Seed001Fig1));
    let route = FlowId::new(1);
    config.set_flow_transport(route, SipTransport::Unreliable);
    let msrp = Listener::bind(&addr("tcp://127.0.0.1:0"), None).await.expect("bound");
    config.msrp_port = msrp.local_addr().addr.port();
    let a = Client::sender(config, route, Hop::L1, "L1", now(), SimulationIds::new(seed));
    let routes = vec![(route, addr(&format!("udp://127.0.0.1:{b_sip}")))];
    Host::serve(Box::new(a), &[addr("udp://127.0.0.1:0")], vec![msrp], routes, 64, HostOptions::default())
        .await
        .expect("served")
}

/// Tells the sender of `host` to send `body` to bob; the session.
pub(crate) async fn send_to_bob(host: &Host, body: Bytes) -> SessionId {
    send_to(host, "sip:bob@b.example", SessionId::new(1), body).await
}

/// Tells the sender of `host` to send `body` (text) to `target` as
/// `session`; the session.
pub(crate) async fn send_to(host: &Host, target: &str, session: SessionId, body: Bytes) -> SessionId {
    let send = Command::SendMessage {
        session,
        target: target.into(),
        recipients: Vec::new(),
        content_type: "text/plain".into(),
        body,
    };
    host.input(0, Input::Command(send)).await;
    session
}

/// The sender's outcome for `session`, within 20 s.
pub(crate) async fn outcome_of(host: &mut Host, session: SessionId) -> Outcome {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let said = host.next_output().await.expect("running");
            if let HostEvent::Output(Output::Event { session: Some(s), event: Event::Outcome { outcome } }) = said.event
            {
                if s == session {
                    return outcome;
                }
            }
        }
    })
    .await
    .expect("an outcome in time")
}
