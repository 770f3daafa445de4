//! A deployable node on real sockets: the shipped receiver config served
//! (SIP over UDP, MSRP over TCP) takes a large message from a sender and
//! reports it delivered; a stopping node ends its sessions.

use std::time::Duration;

use bytes::Bytes;
use cpm_negotiation::{Figure, Hop, Preset};
use cpm_node::host::{now, Host, HostEvent, HostOptions};
use cpm_node::transport::{ListenAddr, Listener};
use cpm_node::NodeConfig;
use cpm_roles::{
    Client, Command, EntityConfig, Event, FlowId, Input, Outcome, Output, SessionId, SimulationIds, SipTransport,
};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn addr(text: &str) -> ListenAddr {
    text.parse().expect("an address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_receiver_takes_a_large_message() {
    let [b_sip, b_msrp] = [free_port(), free_port()];
    let config = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/b.toml"))
        .expect("b.toml")
        .replace("5164", &b_sip.to_string())
        .replace("7164", &b_msrp.to_string());
    let b = NodeConfig::parse(&config).expect("a valid config");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let node = tokio::spawn(async move {
        cpm_node::serve::serve(&b, async {
            let _ = stop_rx.await;
        })
        .await
    });

    // A sender on its own sockets, routed to the node over UDP.
    let mut config = EntityConfig::new("A", "127.0.0.1", 0, Preset::figure(Figure::Seed001Fig1));
    let route = FlowId::new(1);
    config.set_flow_transport(route, SipTransport::Unreliable);
    let msrp = Listener::bind(&addr("tcp://127.0.0.1:0"), None).await.expect("bound");
    config.msrp_port = msrp.local_addr().addr.port();
    let a = Client::sender(config, route, Hop::L1, "L1", now(), SimulationIds::new(3));
    let routes = vec![(route, addr(&format!("udp://127.0.0.1:{b_sip}")))];
    let mut host =
        Host::serve(Box::new(a), &[addr("udp://127.0.0.1:0")], vec![msrp], routes, 64, HostOptions::default())
            .await
            .expect("served");
    let body = Bytes::from(vec![b'x'; 300_000]);
    let session = SessionId::new(1);
    let send = Command::SendMessage {
        session,
        target: "sip:bob@b.example".into(),
        recipients: Vec::new(),
        content_type: "text/plain".into(),
        body,
    };
    host.input(0, Input::Command(send)).await;
    let outcome = tokio::time::timeout(Duration::from_secs(20), async {
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
    .expect("an outcome in time");
    assert_eq!(outcome, Outcome::Delivered);
    host.shutdown().await;
    let _ = stop_tx.send(());
    let served = tokio::time::timeout(Duration::from_secs(10), node).await.expect("the node stops");
    assert!(matches!(served, Ok(Ok(()))), "{served:?}");
}
