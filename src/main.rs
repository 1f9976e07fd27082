//! The `session-manager` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use session_manager::cli::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    run(Cli::parse()).await
}
