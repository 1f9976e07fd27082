//! The `session-manager` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use session_manager::cli::{Cli, run};

/// mimalloc instead of the system allocator: a response is built from many
/// small allocations (a page of sessions with their content is thousands of
/// strings and maps), and glibc's malloc/free were a quarter of the server's
/// time under that load (see bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    run(Cli::parse()).await
}
