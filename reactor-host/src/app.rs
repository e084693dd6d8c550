//! Runs a parsed command line: load plugins, read and check the build request, run the
//! workflow, and say how it ended as an exit code.

use std::process::ExitCode;

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
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Build(Build::Json { file, method: _ }) => {
            // Both are read before either is reported, so one run shows every problem.
            let request = build_json::load(&file);
            if let Ok(request) = &request {
                source::warm_up(&request.source);
            }
            let mut registry = Registry::with_builtins();
            let loaded = registry.load_files(&cli.load_plugin);
            if let Err(e) = &request {
                log::error!("{e}");
            }
            if let Err(errors) = loaded {
                for e in errors {
                    log::error!("{e}");
                }
                return ExitCode::from(exit::PLUGIN_LOAD);
            }
            let Ok(request) = request else {
                return ExitCode::from(exit::INVALID_INPUT);
            };
            let plan = match Plan::resolve(&request, &registry) {
                Ok(plan) => plan,
                Err(problems) => {
                    for problem in problems {
                        log::error!("{}: {problem}", file.display());
                    }
                    return ExitCode::from(exit::INVALID_INPUT);
                }
            };
            let outcome = workflow::run(&request, &plan).await;
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
