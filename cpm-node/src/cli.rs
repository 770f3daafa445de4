//! The `cpm-node` command line: `check` validates a node config, `run`
//! serves one, `send` sends a file from a sender's config, `demo` runs the
//! demo network on the runtime (over TCP or TLS, every entity a task, or
//! with `--processes` every entity but A a process). What this build cannot
//! do (an MMSC over `https://`, say) exits with status 2 and says so.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use cpm_negotiation::Trigger;
use cpm_roles::scenario::Scenario;
use cpm_roles::{NonCpmSystem, SipTransport};

use crate::config::{ByteSize, LoadError, NodeConfig};
use crate::demo::{self, DemoOptions};
use crate::serve;

/// Logs to stderr with `filter` (tracing `EnvFilter` syntax), or `RUST_LOG`
/// when it is set.
fn init_logs(filter: &str) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| filter.to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .try_init();
}

/// Exit status of `check` for a config with problems, and of a failed command.
pub const EXIT_PROBLEMS: u8 = 1;

/// Exit status of a command this build does not implement (and of usage
/// errors, as clap reports them).
pub const EXIT_NOT_IMPLEMENTED: u8 = 2;

/// The `cpm-node` command line.
#[derive(Debug, Parser)]
#[command(name = "cpm-node", version, about = "OMA CPM large message mode node: hosts one entity per TOML config")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Checks a node config: prints `CONFIG: ok`, or one `CONFIG:LINE: message`
    /// per problem and exits with status 1.
    Check {
        /// The TOML config file.
        config: PathBuf,
    },
    /// Runs one node (its role's entity on its listeners) until interrupted.
    Run {
        /// The TOML config file.
        config: PathBuf,
    },
    /// Sends a file as one large message to a user or a group, through the
    /// sender node of CONFIG.
    Send {
        /// The sender's TOML config file.
        #[arg(long)]
        config: PathBuf,
        /// The recipient: a user's or a group's SIP URI.
        #[arg(long)]
        to: String,
        /// The file to send.
        #[arg(long)]
        file: PathBuf,
        /// Its MSRP Content-Type.
        #[arg(long, default_value = "text/plain")]
        content_type: String,
        /// Seconds to wait for the outcome.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Runs the whole demo network (A -> PF-A -> CF -> PF-B -> B, CF -> ISF
    /// -> IWF) on 127.0.0.1 and sends one message through it.
    Demo {
        /// The figure whose strategy the network follows.
        #[arg(long, default_value = "001-fig1")]
        strategy: String,
        /// The trigger of the PF's and the CF's connects (the figure's by default).
        #[arg(long, value_enum)]
        trigger: Option<DemoTrigger>,
        /// CPM members of the group.
        #[arg(long, default_value_t = 3)]
        members: usize,
        /// Non-CPM members (reached through the ISF and an IWF); 1 by
        /// default, 0 with --processes.
        #[arg(long)]
        non_cpm: Option<usize>,
        /// The non-CPM members' system.
        #[arg(long, value_enum, default_value_t = DemoSystem::Email)]
        non_cpm_system: DemoSystem,
        /// The message size: bytes, or with a unit (`5MiB`, `64MiB`, `17MiB`,
        /// `1024`); at least 1 byte.
        #[arg(long, default_value = "5MiB", value_parser = parse_size)]
        size: ByteSize,
        /// The largest message every entity accepts (its SDP `a=max-size`
        /// and reassembly limit); by default the message's size, and at
        /// least 64 MiB.
        #[arg(long, value_parser = parse_size)]
        max_size: Option<ByteSize>,
        /// The seed of the message and the ids.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// SIP over TCP or UDP.
        #[arg(long, value_enum, default_value_t = DemoSip::Tcp)]
        sip: DemoSip,
        /// MSRP chunk size in bytes, or `whole` for one chunk per message.
        #[arg(long, default_value = "2048")]
        chunk_size: String,
        /// Where the trace and the diagram go.
        #[arg(long, default_value = "target/demo")]
        out: PathBuf,
        /// Seconds the run may take.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// The MSRP transport between the entities.
        #[arg(long, value_enum, default_value_t = DemoTransport::Tcp)]
        transport: DemoTransport,
        /// One OS process per entity instead of one task per entity (A in
        /// this one, every other a `cpm-node run` of a generated config).
        #[arg(long)]
        processes: bool,
        /// With --processes: the member (`B2`) whose process is killed when
        /// A has sent half the message.
        #[arg(long, requires = "processes")]
        kill_member: Option<String>,
        /// The SMTP server (`HOST:PORT`) the email IWFs submit the non-CPM
        /// members' messages to (with `--non-cpm-system email`); without
        /// it the non-CPM system is simulated.
        #[arg(long)]
        smtp: Option<String>,
    },
}

/// The trigger of `demo --trigger`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DemoTrigger {
    /// On the 200 (OK) of the INVITE.
    #[value(name = "200")]
    Ok200,
    /// On the ACK.
    Ack,
    /// On the first SEND.
    Send,
}

/// The non-CPM system of `demo --non-cpm-system`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DemoSystem {
    /// RFC 5322 email.
    Email,
    /// SMS over SMPP.
    Sms,
    /// MMS.
    Mms,
}

/// The SIP transport of `demo --sip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DemoSip {
    /// SIP over TCP.
    Tcp,
    /// SIP over UDP (RFC 3261 retransmissions).
    Udp,
}

/// The transport of `demo --transport`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DemoTransport {
    /// MSRP over TCP.
    Tcp,
    /// MSRP over TLS, with certificates the demo makes.
    Tls,
}

/// Parses a positive size for `--size`.
///
/// # Errors
///
/// A message for clap when the text is no size or is 0.
pub fn parse_size(text: &str) -> Result<ByteSize, String> {
    let size: ByteSize = text.parse().map_err(|error| format!("{error}"))?;
    if size.get() == 0 {
        return Err("the size must be at least 1 byte".to_owned());
    }
    Ok(size)
}

/// Checks `path` and writes the verdict to `out`: `PATH: ok`, or one
/// `PATH:LINE: message` per problem (`PATH: message` when the file cannot be
/// read). Returns whether the config is valid.
///
/// # Errors
///
/// Only `out`'s error.
pub fn check(path: &Path, out: &mut dyn Write) -> io::Result<bool> {
    let shown = path.display();
    match NodeConfig::load(path) {
        Ok(_) => {
            writeln!(out, "{shown}: ok")?;
            Ok(true)
        }
        Err(LoadError::Read { source, .. }) => {
            writeln!(out, "{shown}: cannot read: {source}")?;
            Ok(false)
        }
        Err(LoadError::Invalid(error)) => {
            for problem in &error.problems {
                writeln!(out, "{shown}:{}: {}", problem.line, problem.kind)?;
            }
            Ok(false)
        }
    }
}

/// Carries out a parsed command line and returns the process's exit status.
#[must_use]
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check { config } => {
            let mut stdout = io::stdout().lock();
            match check(&config, &mut stdout) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) | Err(_) => ExitCode::from(EXIT_PROBLEMS),
            }
        }
        Command::Run { config } => match NodeConfig::load(&config) {
            Ok(node) => {
                init_logs(&node.log);
                serve::run(&node)
            }
            Err(error) => {
                eprintln!("cpm-node run: {}: {error}", config.display());
                ExitCode::from(EXIT_PROBLEMS)
            }
        },
        Command::Send { config, to, file, content_type, timeout } => {
            send(&config, &to, &file, &content_type, Duration::from_secs(timeout))
        }
        Command::Demo {
            strategy,
            trigger,
            members,
            non_cpm,
            non_cpm_system,
            size,
            max_size,
            seed,
            sip,
            chunk_size,
            out,
            timeout,
            transport,
            processes,
            kill_member,
            smtp,
        } => {
            let chunk_size = if chunk_size == "whole" {
                None
            } else {
                match parse_size(&chunk_size).and_then(|size| usize::try_from(size.get()).map_err(|e| e.to_string())) {
                    Ok(size) => Some(size),
                    Err(error) => {
                        eprintln!("cpm-node demo: --chunk-size {chunk_size}: {error}");
                        return ExitCode::from(EXIT_NOT_IMPLEMENTED);
                    }
                }
            };
            let mut scenario = match Scenario::figure(&strategy) {
                Ok(scenario) => scenario,
                Err(error) => {
                    eprintln!("cpm-node demo: {error}");
                    return ExitCode::from(EXIT_NOT_IMPLEMENTED);
                }
            };
            scenario.members = members;
            scenario.non_cpm = non_cpm.unwrap_or(usize::from(!processes));
            let Ok(size) = usize::try_from(size.get()) else {
                eprintln!("cpm-node demo: --size {size} does not fit this machine's memory");
                return ExitCode::from(EXIT_NOT_IMPLEMENTED);
            };
            scenario.size = size;
            scenario.seed = seed;
            scenario.max_size = Some(max_size.map_or_else(|| (size as u64).max(64 << 20), ByteSize::get));
            scenario.chunk_size = chunk_size;
            scenario.iwf.system = match non_cpm_system {
                DemoSystem::Email => NonCpmSystem::Email,
                DemoSystem::Sms => NonCpmSystem::Sms,
                DemoSystem::Mms => NonCpmSystem::Mms,
            };
            scenario.sip_transport = match sip {
                DemoSip::Tcp => SipTransport::Reliable,
                DemoSip::Udp => SipTransport::Unreliable,
            };
            if let Some(trigger) = trigger {
                let trigger = match trigger {
                    DemoTrigger::Ok200 => Trigger::OnSuccessResponse,
                    DemoTrigger::Ack => Trigger::OnAck,
                    DemoTrigger::Send => Trigger::OnFirstSend,
                };
                scenario.preset.pf_trigger = trigger;
                scenario.preset.cf_trigger = trigger;
            }
            // RFC 4975 s.6: `msrps` URIs, links over TLS.
            scenario.msrp_tls = transport == DemoTransport::Tls;
            let options = DemoOptions {
                scenario,
                out,
                timeout: Duration::from_secs(timeout),
                tls: transport == DemoTransport::Tls,
                smtp,
            };
            if processes {
                demo::run_processes(&demo::processes::ProcessOptions { demo: options, kill_member })
            } else {
                demo::run(&options)
            }
        }
    }
}

/// `cpm-node send`: prints one line per member, then `result: K/N members
/// received the message intact`; exit status 0 only when all did.
fn send(config: &Path, to: &str, file: &Path, content_type: &str, limit: Duration) -> ExitCode {
    let node = match NodeConfig::load(config) {
        Ok(node) => node,
        Err(error) => {
            eprintln!("cpm-node send: {}: {error}", config.display());
            return ExitCode::from(EXIT_PROBLEMS);
        }
    };
    let body = match std::fs::read(file) {
        Ok(body) => bytes::Bytes::from(body),
        Err(error) => {
            eprintln!("cpm-node send: {}: {error}", file.display());
            return ExitCode::from(EXIT_PROBLEMS);
        }
    };
    init_logs(&node.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cpm-node send: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = io::stdout();
    let report = runtime.block_on(serve::send(&node, to, content_type, body, limit, &mut stdout));
    match report {
        Ok(report) => {
            if report.outcome.is_none() {
                println!("outcome: none within {}s", limit.as_secs());
            }
            let (delivered, members) = report.tally();
            println!("result: {delivered}/{members} members received the message intact");
            if delivered == members && report.outcome.is_some_and(cpm_roles::Outcome::is_delivered) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("cpm-node send: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The binary's entry point: parses `std::env::args` (clap prints help and
/// usage errors itself) and runs the command.
#[must_use]
pub fn main() -> ExitCode {
    run(Cli::parse())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_must_be_positive() {
        assert_eq!(parse_size("17MiB"), Ok(ByteSize::new(17 << 20)));
        assert_eq!(parse_size("0"), Err("the size must be at least 1 byte".to_owned()));
        assert!(parse_size("five").is_err());
    }
}
