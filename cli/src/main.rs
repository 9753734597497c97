//! `pcnctl`: the command-line client of the control API (gRPC) of the Premium Customer
//! Notification System. Thin: parse the command line, run the command, map the outcome to an
//! exit code (see `exit`).
//!
//! # Layout
//!
//! - `args`: the command line (clap derive), one subcommand per RPC.
//! - `api`: the lazily connected channel, the bearer token, the per-call deadline.
//! - `commands`: build each request, call, print; `watch` (`month watch`) and `import`
//!   (`customer import`) are the two with more to them.
//! - `csv`: the customer CSV split into `CustomerRow`s, lazily, keeping line numbers.
//! - `render` and `table` (readable output), `json` (`--json`), `output` (stdout).
//! - `enums`: proto enum names without their prefix, both ways.
//! - `exit`: exit codes and error lines.

mod api;
mod args;
mod commands;
mod csv;
mod enums;
mod exit;
mod import;
mod json;
mod output;
mod render;
mod table;
mod watch;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version come this way too, to stdout and with success.
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(err) => {
            eprintln!("error: {}", exit::describe(&err));
            ExitCode::from(exit::for_error(&err))
        }
    }
}
