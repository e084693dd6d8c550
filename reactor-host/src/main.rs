//! `reactor`: parse the command line, set up logging, run, exit with the outcome's code.

use std::process::ExitCode;

use clap::Parser;
use reactor::{app, cli, logging};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.verbose, cli.quiet, cli.progress);
    let code = app::run(cli);
    // stderr as it was, with whatever waits to be printed above the live view printed.
    reactor::live::restore_stderr();
    code
}
