//! The runtime on loopback sockets: the figures' group deliveries end to
//! end, and a member that reads slowly.

mod support;

use std::time::Duration;

use cpm_node::host::{now, Host, HostEvent, HostOptions, Topology};
use cpm_roles::scenario::{Scenario, SCENARIO_SESSION};
use cpm_roles::{Event, Outcome, Output};

/// What a run said: each delivery (entity, bytes) and A's outcome.
struct Run {
    delivered: Vec<(String, usize, bool)>,
    outcome: Option<Outcome>,
}

/// Runs `scenario` on a [`Host`] with `options` until A has its outcome
/// and every member its message, or `limit` passes.
async fn run_with(scenario: &Scenario, options: HostOptions, limit: Duration) -> Run {
    let body = scenario.body();
    let mut topology = Topology::new();
    scenario.populate(&mut topology, now(), body.clone()).expect("a scenario");
    let mut host = Host::start(topology, options).await.expect("started");
    let members = scenario.members + scenario.non_cpm;
    let mut run = Run { delivered: Vec::new(), outcome: None };
    let deadline = tokio::time::Instant::now() + limit;
    // Until the outcome, and (when it says delivered) every member's delivery.
    while run.outcome.is_none_or(|o| o.is_delivered() && run.delivered.len() < members) {
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
/// member (in 000-fig1 its one non-CPM member) get the whole message
/// intact, every hop's session is set up and torn down with no SIP message
/// sent twice, A learns the message was delivered and gets every member's
/// delivered IMDN, and nothing complains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_figure_delivers_over_loopback() {
    let logs = support::logs::capture().await;
    for name in ["001-fig1", "001-fig2", "001-fig3", "001-fig4", "001-fig5", "001-fig6", "001-fig7", "000-fig1"] {
        let mut scenario = Scenario::figure(name).expect("a figure");
        if scenario.non_cpm == 0 {
            scenario.members = 3;
            scenario.non_cpm = 1;
        }
        scenario.size = 300_000;
        // As in the demo: an Email system takes a message of any size (an
        // SMS system, at most 255 segments).
        scenario.iwf.system = cpm_roles::NonCpmSystem::Email;
        support::net::assert_clean_delivery(&scenario, Duration::from_secs(20), &logs).await;
    }
}

/// A certificate that does not name the host of the URI connected to fails
/// the hop at once (RFC 4975 s.5.4), never a hang: every member fails and
/// the sender learns it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_host_fails_the_hops() {
    // What it logs stays out of the other tests' capture.
    let _logs = support::logs::capture().await;
    let options = support::tls_host_options(&["wrong.example"]);
    let mut scenario = Scenario::figure("001-fig1").expect("a figure");
    scenario.msrp_tls = true;
    let run = run_with(&scenario, options, Duration::from_secs(20)).await;
    assert!(run.delivered.is_empty(), "{:?}", run.delivered);
    assert!(matches!(run.outcome, Some(outcome) if !outcome.is_delivered()), "{:?}", run.outcome);
}

/// A member that never reads: its PF's connections are not read at all, so
/// the CF's writes to it stall in the kernel and its window stays full.
/// Nothing blocks a machine: the CF drops that member after the
/// slow-member deadline (its leg ends, the sender gets its failed IMDN) and
/// the others get the whole message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_never_reads_is_dropped_and_the_others_complete() {
    use cpm_negotiation::imdn::DeliveryStatus;
    use cpm_roles::SlowMember;
    // What it logs stays out of the other tests' capture.
    let _logs = support::logs::capture().await;
    let mut scenario = Scenario::figure("001-fig1").expect("a figure");
    scenario.members = 3;
    scenario.non_cpm = 0;
    scenario.size = 4 << 20;
    // 256 chunks of 2048 bytes unanswered for 2 s: far past what a member
    // that reads has in flight, even on a loaded machine.
    scenario.slow_member = Some(SlowMember { window: 256, after: Duration::from_secs(2) });
    let body = scenario.body();
    let mut topology = Topology::new();
    scenario.populate(&mut topology, now(), body.clone()).expect("a scenario");
    let command = topology.take_inputs();
    let mut host = Host::start(topology, HostOptions::default()).await.expect("started");
    let pf_b2 = host.names().iter().position(|n| n == "PF-B2").expect("PF-B2");
    host.hold_reading(pf_b2, true).await;
    for (index, input) in command {
        host.input(index, input).await;
    }
    let (mut delivered, mut imdns, mut outcome) = (Vec::new(), Vec::new(), None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while outcome.is_none() {
        let Ok(Some(said)) = tokio::time::timeout_at(deadline, host.next_output()).await else { break };
        let name = host.names()[said.entity].clone();
        let HostEvent::Output(Output::Event { session, event }) = said.event else { continue };
        match event {
            Event::MessageDelivered { body: got } => delivered.push((name, got == body)),
            Event::Delivery { member, status } => imdns.push((member, status)),
            Event::Outcome { outcome: o } if name == "A" && session == Some(SCENARIO_SESSION) => outcome = Some(o),
            _ => {}
        }
    }
    host.shutdown().await;
    delivered.sort();
    assert_eq!(delivered, [("B1".to_owned(), true), ("B3".to_owned(), true)], "{outcome:?} {imdns:?}");
    assert!(imdns.contains(&("sip:b2@example.com".to_owned(), DeliveryStatus::Failed)), "{imdns:?}");
    assert!(outcome.is_some(), "the sender got its outcome");
}
