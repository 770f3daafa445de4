//! Replays a figure of the seeds in the simulator and prints it as a ladder
//! diagram, or as JSON lines with `--json`.
//!
//! ```text
//! cargo run -p cpm-roles --features sim --example scenario -- 001-fig1 [--members N] [--non-cpm M]
//!     [--size BYTES] [--pf-trigger 200|ack|send] [--cf-trigger 200|ack|send] [--l2-opener pf|cf]
//!     [--l3-opener pf|cf] [--ack-policy after-ack|on-200] [--iwf-report after-ack|at-media-end]
//!     [--seed S] [--shared-pf-b] [--json]
//! ```
//!
//! NAME is one of 001-fig1..001-fig7 and 000-fig1. `--non-cpm M` adds M
//! non-CPM members (reached through the ISF and one IWF each); `--members N`
//! sets the CPM members. `--shared-pf-b` puts every CPM member behind one
//! terminating participating function `PF-B`, so that the L3 hops lead to
//! one host and port and every L3 connect after the first reuses its link
//! (`"reuse":true`).

use std::process::ExitCode;
use std::time::Instant;

use cpm_negotiation::{AckPolicy, Side, Trigger};
use cpm_roles::diagram;
use cpm_roles::sim::Scenario;
use cpm_roles::IwfReport;

fn usage() -> ExitCode {
    eprintln!(
        "usage: scenario NAME [--members N] [--non-cpm M] [--size BYTES] [--pf-trigger 200|ack|send] \
         [--cf-trigger 200|ack|send] [--l2-opener pf|cf] [--l3-opener pf|cf] [--ack-policy after-ack|on-200] \
         [--iwf-report after-ack|at-media-end] [--seed S] [--shared-pf-b] [--json]\nNAME: 001-fig1..001-fig7, 000-fig1"
    );
    ExitCode::from(2)
}

fn trigger(value: &str) -> Option<Trigger> {
    match value {
        "200" => Some(Trigger::OnSuccessResponse),
        "ack" => Some(Trigger::OnAck),
        "send" => Some(Trigger::OnFirstSend),
        _ => None,
    }
}

#[expect(clippy::disallowed_methods, reason = "the example's epoch: the simulator's virtual clock starts here")]
fn epoch() -> Instant {
    Instant::now()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else { return usage() };
    let mut scenario = match Scenario::figure(name) {
        Ok(scenario) => scenario,
        Err(error) => {
            eprintln!("{error}");
            return usage();
        }
    };
    let mut json = false;
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        if flag == "--json" {
            json = true;
            continue;
        }
        if flag == "--shared-pf-b" {
            scenario.shared_pf_b = true;
            continue;
        }
        let Some(value) = rest.next() else { return usage() };
        let ok = match flag.as_str() {
            "--members" => value.parse().map(|n| scenario.members = n).is_ok(),
            "--non-cpm" => value.parse().map(|n| scenario.non_cpm = n).is_ok(),
            "--size" => value.parse().map(|n| scenario.size = n).is_ok(),
            "--seed" => value.parse().map(|n| scenario.seed = n).is_ok(),
            "--pf-trigger" => trigger(value).map(|t| scenario.preset.pf_trigger = t).is_some(),
            "--cf-trigger" => trigger(value).map(|t| scenario.preset.cf_trigger = t).is_some(),
            // L2 is offered by PF(A) and answered by the CF.
            "--l2-opener" => match value.as_str() {
                "pf" => Some(Side::Offerer),
                "cf" => Some(Side::Answerer),
                _ => None,
            }
            .map(|side| scenario.preset.l2_opener = side)
            .is_some(),
            // L3 is offered by the CF and answered by PF(B).
            "--l3-opener" => match value.as_str() {
                "pf" => Some(Side::Answerer),
                "cf" => Some(Side::Offerer),
                _ => None,
            }
            .map(|side| scenario.preset.l3_opener = side)
            .is_some(),
            "--ack-policy" => match value.as_str() {
                "after-ack" => Some(AckPolicy::AfterUpstreamAck),
                "on-200" => Some(AckPolicy::OnDownstreamSuccess),
                _ => None,
            }
            .map(|policy| scenario.preset.ack_policy = [policy; 3])
            .is_some(),
            "--iwf-report" => match value.as_str() {
                "after-ack" => Some(IwfReport::AfterNonCpmAck),
                "at-media-end" => Some(IwfReport::AtMediaEnd),
                _ => None,
            }
            .map(|report| scenario.iwf.report = report)
            .is_some(),
            _ => false,
        };
        if !ok {
            eprintln!("bad option {flag} {value}");
            return usage();
        }
    }
    let sim = match scenario.run(epoch()) {
        Ok(sim) => sim,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    if json {
        for (seq, event) in sim.trace().iter().enumerate() {
            println!("{}", event.to_json(seq));
        }
    } else {
        print!("{}", diagram::ladder(&diagram::columns(&scenario), sim.trace()));
    }
    if sim.errors().is_empty() && sim.is_quiet() {
        ExitCode::SUCCESS
    } else {
        eprintln!("errors: {:?}; quiet: {}", sim.errors(), sim.is_quiet());
        ExitCode::FAILURE
    }
}
