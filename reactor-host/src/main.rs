//! `reactor`: parse the command line, set up logging, run, exit with the outcome's code.

mod app;
mod build_json;
mod cancel;
mod cli;
mod credentials;
mod dockerfile;
mod engine;
mod plugins;
mod results;
mod source;
mod state;
mod workflow;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    app::run(cli)
}

/// reactor's own lines and plugins' at info (debug with -v, warnings only with -q); other
/// crates' at warn. RUST_LOG, when set, replaces this entirely.
fn init_logging(verbose: bool, quiet: bool) {
    let level = if verbose {
        "debug"
    } else if quiet {
        "warn"
    } else {
        "info"
    };
    let default = format!("warn,reactor={level},plugin={level}");
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .format_timestamp_millis()
        .init();
}
