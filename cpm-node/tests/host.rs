//! The runtime on loopback sockets: the figures' group deliveries end to
//! end, and a member that reads slowly.

use std::time::Duration;

use cpm_node::host::{now, Host, HostEvent, HostOptions, Topology};
use cpm_roles::scenario::{Scenario, SCENARIO_SESSION};
use cpm_roles::{Event, Outcome, Output};

/// What a run said: each delivery (entity, bytes) and A's outcome.
struct Run {
    delivered: Vec<(String, usize, bool)>,
    outcome: Option<Outcome>,
}

/// Runs `scenario` on a [`Host`] until A has its outcome and every member
/// its message, or `limit` passes.
async fn run(scenario: &Scenario, limit: Duration) -> Run {
    let body = scenario.body();
    let mut topology = Topology::new();
    scenario.populate(&mut topology, now(), body.clone()).expect("a scenario");
    let mut host = Host::start(topology, HostOptions::default()).await.expect("started");
    let members = scenario.members + scenario.non_cpm;
    let mut run = Run { delivered: Vec::new(), outcome: None };
    let deadline = tokio::time::Instant::now() + limit;
    while run.outcome.is_none() || run.delivered.len() < members {
        let Ok(Some(said)) = tokio::time::timeout_at(deadline, host.next_output()).await else { break };
        let name = host.names()[said.entity].clone();
        let HostEvent::Output(output) = said.event else { continue };
        match output {
            Output::Event { event: Event::MessageDelivered { body: got, .. }, .. } => {
                run.delivered.push((name, got.len(), got == body));
            }
            Output::Event { event: Event::DeliverToNonCpm { payload, .. }, .. } => {
                run.delivered.push((name, payload.len(), payload == body));
            }
            Output::Event { session: Some(session), event: Event::Outcome { outcome, .. } }
                if name == "A" && session == SCENARIO_SESSION =>
            {
                run.outcome = Some(outcome);
            }
            _ => {}
        }
    }
    host.shutdown().await;
    run.delivered.sort();
    run
}

/// Every figure over real TCP sockets: three CPM members and one non-CPM
/// member get the whole message, and A learns it was delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_figure_delivers_over_loopback() {
    for name in ["001-fig1", "001-fig2", "001-fig3", "001-fig4", "001-fig5", "001-fig6", "001-fig7", "000-fig1"] {
        let mut scenario = Scenario::figure(name).expect("a figure");
        scenario.size = 300_000;
        let run = run(&scenario, Duration::from_secs(20)).await;
        let members = scenario.members + scenario.non_cpm;
        assert_eq!(run.delivered.len(), members, "{name}: {:?}", run.delivered);
        assert!(
            run.delivered.iter().all(|(_, len, intact)| *len == scenario.size && *intact),
            "{name}: {:?}",
            run.delivered
        );
        assert_eq!(run.outcome, Some(Outcome::Delivered), "{name}");
    }
}
