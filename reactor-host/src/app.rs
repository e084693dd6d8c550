//! Runs a parsed command line: load plugins, read and check the build request, run the
//! workflow, and say how it ended as an exit code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::build_json::BuildRequest;
use crate::cli::{Build, Cli, Command};
use crate::plugins::{Plan, Registry};
use crate::{build_json, source, workflow};

/// Exit codes; documented in the README.
pub mod exit {
    pub const SUCCESS: u8 = 0;
    /// The build or a plugin failed.
    pub const FAILED: u8 = 1;
    /// The build request is unusable (bad build.json, unknown plugin, bad args).
    pub const INVALID_INPUT: u8 = 2;
    /// A `--load-plugin` file could not be loaded.
    pub const PLUGIN_LOAD: u8 = 3;
}

/// Runs `cli` and returns the process's exit code. Errors are printed here, one per line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Build(Build::Json { file, method: _ }) => {
            let (request, plan) = match prepare(&file, &cli.load_plugin) {
                Ok(prepared) => prepared,
                Err(code) => return ExitCode::from(code),
            };
            // Before the runtime starts any thread: see `source::prepare`.
            source::prepare(&request.source, &request.base_dir());
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => {
                    log::error!("cannot start the async runtime: {e}");
                    return ExitCode::from(exit::FAILED);
                }
            };
            let outcome = runtime.block_on(workflow::run(&request, &plan));
            match outcome.failure {
                None => {
                    log::info!("build succeeded: {} ({})", outcome.image, outcome.image_id.unwrap_or_default());
                    ExitCode::from(exit::SUCCESS)
                }
                Some(failure) => {
                    log::error!("build failed: {failure}");
                    ExitCode::from(exit::FAILED)
                }
            }
        }
    }
}

/// Everything checked before anything runs: the build.json, the plugin files, every plugin
/// entry and its args. Reports every problem found and returns the exit code on failure.
fn prepare(file: &Path, plugin_files: &[PathBuf]) -> Result<(BuildRequest, Plan), u8> {
    // Both are read before either is reported, so one run shows every problem.
    let request = build_json::load(file);
    let mut registry = Registry::with_builtins();
    let loaded = registry.load_files(plugin_files);
    if let Err(e) = &request {
        log::error!("{e}");
    }
    if let Err(errors) = loaded {
        for e in errors {
            log::error!("{e}");
        }
        return Err(exit::PLUGIN_LOAD);
    }
    let request = request.map_err(|_| exit::INVALID_INPUT)?;
    let plan = Plan::resolve(&request, &registry).map_err(|problems| {
        for problem in problems {
            log::error!("{}: {problem}", file.display());
        }
        exit::INVALID_INPUT
    })?;
    Ok((request, plan))
}
