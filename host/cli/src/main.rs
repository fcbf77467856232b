//! `execution-plane`: the node host binary.
//!
//! Every command prints its result on stdout and exits 0, or prints one line `error: ...` on
//! stderr and exits 1 (usage errors exit 2, as clap does). A reader that closes stdout early
//! (`| head`) ends the command quietly with exit 0.

mod cli;
mod commands;
mod error;
mod host;
mod input;
mod output;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::CliError;

/// mimalloc rather than the system allocator: an execution builds and drops many small JSON
/// values, and glibc's malloc/free took a fifth of a served host's CPU (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Started as the sandbox launcher: apply the sandbox and become the program.
    ep_placement_local::sandbox::launcher::run_if_launcher();
    let cli = Cli::parse();
    // `serve` sets up its own logging from its configuration.
    if !matches!(cli.command, Command::Serve(_)) {
        init_tracing();
    }
    let result = match cli.command {
        Command::Contracts(cmd) => commands::contracts::run(cmd),
        Command::Evidence(cmd) => commands::evidence::run(cmd),
        Command::Authority(cmd) => commands::authority::run(cmd),
        Command::Describe(cmd) => commands::describe::run(cmd),
        Command::Lanes(cmd) => commands::lanes::run(cmd),
        Command::Exec(args) => match commands::exec::run(*args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(err) => Err(err),
        },
        Command::Serve(args) => commands::serve::run(args),
    };
    match result {
        Ok(()) | Err(CliError::StdoutClosed) => ExitCode::SUCCESS,
        Err(err) => {
            // Never panic on a closed stderr either.
            let _ = writeln!(std::io::stderr().lock(), "error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EXECUTION_PLANE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
