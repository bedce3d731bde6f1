//! `discovery`: the operator CLI of a discovery cluster. List, look up, announce, watch
//! services and inspect the raw stores; see `discovery --help`.
//!
//! Exit status: 0 ok, 1 nothing matched or a partial answer (`why`: the node is not
//! listed), 2 usage error, 3 server or connection error (a refusal such as 401 or 403
//! included).

mod auth;
mod cli;
mod cluster;
mod commands;
mod connect;
mod format;
mod outcome;
mod why;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::outcome::{Outcome, EXIT_SERVER};

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    cli.apply_environment(|name| std::env::var(name).ok());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("discovery: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_SERVER);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::NothingMatched | Outcome::Degraded) => ExitCode::from(1),
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("discovery: {}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}
