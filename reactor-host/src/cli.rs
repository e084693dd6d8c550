//! The command line, as clap parses it. Nothing here acts; `app` does.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Builds container images on a Docker engine from a build.json, running plugins before, around
/// and after the build.
#[derive(Debug, Parser)]
#[command(name = "reactor", version, about, max_term_width = 100)]
pub struct Cli {
    /// Show debug output (RUST_LOG gives finer control).
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Show only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Load plugins from this shared object (repeat for more); a later plugin with the same key
    /// replaces an earlier one.
    #[arg(long = "load-plugin", value_name = "PATH", global = true)]
    pub load_plugin: Vec<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image.
    #[command(subcommand)]
    Build(Build),
}

#[derive(Debug, Subcommand)]
pub enum Build {
    /// Build as a build.json describes (atomic-reactor's format, either generation).
    Json {
        /// The build.json.
        #[arg(value_name = "FILE")]
        file: PathBuf,

        /// Accepted for atomic-reactor compatibility: reactor always builds here, on the engine
        /// DOCKER_HOST names.
        #[arg(long, value_enum, default_value_t = Method::Here)]
        method: Method,
    },
}

/// atomic-reactor's build methods; only `here` exists in reactor.
#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum Method {
    Here,
}
