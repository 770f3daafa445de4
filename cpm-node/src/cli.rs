//! The `cpm-node` command line: `check` validates a node config; `run`,
//! `send` and `demo` are declared with their options but not implemented in
//! this build (they exit with status 2 and say so).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{ByteSize, LoadError, NodeConfig};

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
    },
    /// Runs the whole demo network (A -> PF-A -> CF -> PF-B -> B, CF -> ISF
    /// -> IWF) on 127.0.0.1 and sends one message through it.
    Demo {
        /// The message size: bytes, or with a unit (`5MiB`, `64MiB`, `17MiB`,
        /// `1024`); at least 1 byte.
        #[arg(long, default_value = "5MiB", value_parser = parse_size)]
        size: ByteSize,
        /// The MSRP transport between the entities.
        #[arg(long, value_enum, default_value_t = DemoTransport::Tcp)]
        transport: DemoTransport,
        /// One OS process per entity instead of one task per entity.
        #[arg(long)]
        processes: bool,
    },
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
    let name = match cli.command {
        Command::Check { config } => {
            let mut stdout = io::stdout().lock();
            return match check(&config, &mut stdout) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) | Err(_) => ExitCode::from(EXIT_PROBLEMS),
            };
        }
        Command::Run { .. } => "run",
        Command::Send { .. } => "send",
        Command::Demo { .. } => "demo",
    };
    eprintln!("cpm-node {name}: not implemented yet in this build (only `check` is)");
    ExitCode::from(EXIT_NOT_IMPLEMENTED)
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
