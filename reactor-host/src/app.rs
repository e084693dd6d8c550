//! Runs a parsed command line: read and check the build request and the plugins, print the plan
//! or run the workflow, write the result document, and say how it ended as an exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use reactor_plugin_api::Phase;
use serde_json::{json, Value};

use crate::build_json::{self, BuildRequest};
use crate::cancel::Cancel;
use crate::cli::{Build, Cli, Command, RunArgs, SourceArgs};
use crate::plugins::{Plan, Registry};
use crate::workflow::{self, Failure};
use crate::{results, source};

/// Exit codes; documented in the README.
pub mod exit {
    pub const SUCCESS: u8 = 0;
    /// The build or a plugin failed.
    pub const FAILED: u8 = 1;
    /// The build request is unusable (bad build.json, unknown plugin, bad args).
    pub const INVALID_INPUT: u8 = 2;
    /// A `--load-plugin` file could not be loaded.
    pub const PLUGIN_LOAD: u8 = 3;
    // Cancellation exits 130 (SIGINT) or 143 (SIGTERM): see `cancel::Signal::exit_code`.
}

/// Runs `cli` and returns the process's exit code. Errors are printed here, one per line.
pub fn run(cli: Cli) -> ExitCode {
    let started = SystemTime::now();
    let Command::Build(build) = cli.command;
    let (origin, request, run) = match build {
        Build::Json { file, substitute, run } => {
            (file.display().to_string(), build_json::load(&file, &substitute), run)
        }
        Build::Git { uri, commit, source, run } => {
            let mut spec = json!({"provider": "git", "uri": uri});
            if let Some(commit) = commit {
                spec["provider_params"] = json!({"git_commit": commit});
            }
            ("command line".to_owned(), request_from_flags(spec, source), run)
        }
        Build::Path { uri, source, run } => {
            ("command line".to_owned(), request_from_flags(json!({"provider": "path", "uri": uri}), source), run)
        }
    };

    // The request and the plugin files are both read before either is reported, so one run
    // shows every problem.
    let mut registry = Registry::with_builtins();
    let loaded = registry.load_files(&cli.load_plugin);
    let request = match (request, loaded) {
        (Ok(request), Ok(())) => request,
        (request, loaded) => {
            let mut problems: Vec<String> = request.err().map(|e| e.to_string()).into_iter().collect();
            let code = match loaded {
                Ok(()) => exit::INVALID_INPUT,
                Err(errors) => {
                    problems.extend(errors.iter().map(ToString::to_string));
                    exit::PLUGIN_LOAD
                }
            };
            return refuse(&origin, &problems, &registry, code, &run, started);
        }
    };
    let plan = match Plan::resolve(&request, &registry) {
        Ok(plan) => plan,
        Err(problems) => {
            let problems: Vec<String> = problems.iter().map(|p| format!("{origin}: {p}")).collect();
            return refuse(&origin, &problems, &registry, exit::INVALID_INPUT, &run, started);
        }
    };

    if run.dry_run {
        print!("{}", crate::credentials::redact_url(&describe_plan(&request, &plan)));
        return ExitCode::from(exit::SUCCESS);
    }

    // Before the runtime starts any thread: see `source::prepare`.
    source::prepare(&request.source, &request.base_dir);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            log::error!("cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    let cancel = Cancel::new(run.cancel_grace);
    let finished = runtime.block_on(async {
        if let Err(e) = cancel.listen_for_signals(workflow::EXIT_TIMEOUT.as_secs()) {
            log::warn!(
                "cannot listen for SIGINT/SIGTERM ({e}); a signal will stop reactor without running the exit plugins"
            );
        }
        workflow::run(&request, &plan, cancel.clone()).await
    });
    // A plugin abandoned after the cancellation may still be running on a blocking thread:
    // stop the runtime without waiting for it (the process ends with this function).
    runtime.shutdown_background();
    let code = match &finished.failure {
        None => {
            let image_id = finished.session.state().build_result.as_ref().and_then(|b| b.image_id.clone());
            log::info!("build succeeded: {} ({})", request.image, image_id.unwrap_or_default());
            exit::SUCCESS
        }
        Some(Failure::Cancelled(signal)) => {
            log::error!("build cancelled by {}", signal.name());
            signal.exit_code()
        }
        Some(failure) => {
            log::error!("build failed: {failure}");
            exit::FAILED
        }
    };
    if let Some(path) = &run.metadata_file {
        let doc = results::finished(&request, &registry, &finished, code, started);
        write_metadata(path, &doc);
    }
    ExitCode::from(code)
}

/// The build.json that `build git`/`build path` flags stand for.
fn request_from_flags(mut source_spec: Value, flags: SourceArgs) -> Result<BuildRequest, build_json::Error> {
    if let Some(df_path) = flags.df_path {
        source_spec["dockerfile_path"] = json!(df_path);
    }
    let mut value = json!({"image": flags.image, "source": source_spec});
    if !flags.target_registries.is_empty() {
        value["target_registries"] = json!(flags.target_registries);
        value["target_registries_insecure"] = json!(flags.target_registries_insecure);
    }
    if let Some(parent) = flags.parent_registry {
        value["parent_registry"] = json!(parent);
        value["parent_registry_insecure"] = json!(flags.parent_registry_insecure);
    }
    if flags.dont_pull_base_image {
        value["dont_pull_base_image"] = json!(true);
    }
    build_json::from_value(value, "command line", PathBuf::from("."), &[])
}

/// Reports problems found before anything ran, writes the result document, returns `code`.
fn refuse(
    origin: &str,
    problems: &[String],
    registry: &Registry,
    code: u8,
    run: &RunArgs,
    started: SystemTime,
) -> ExitCode {
    for problem in problems {
        log::error!("{problem}");
    }
    if let Some(path) = &run.metadata_file {
        write_metadata(path, &results::refused(origin, problems, registry, code, started));
    }
    ExitCode::from(code)
}

fn write_metadata(path: &std::path::Path, doc: &Value) {
    match results::write(path, doc) {
        Ok(()) => log::debug!("wrote the result document to {}", path.display()),
        Err(e) => log::error!("cannot write --metadata-file {}: {e}", path.display()),
    }
}

/// The plan as `--dry-run` prints it.
fn describe_plan(request: &BuildRequest, plan: &Plan) -> String {
    let mut out = format!("plan for {}\n", request.origin);
    out += &format!("image: {}\n", request.image);
    let source = &request.source;
    out += &format!(
        "source: {} {} ({}), dockerfile_path: {}\n",
        source.provider.name(),
        source.uri,
        source.commit.as_deref().map_or("default branch".to_owned(), |c| format!("commit {c}")),
        source.dockerfile_path.as_deref().filter(|p| !p.is_empty()).unwrap_or("(the root)"),
    );
    for phase in Phase::ALL {
        out += &format!("{phase}:\n");
        let planned = plan.phase(phase);
        if planned.is_empty() {
            out += "  (none)\n";
        }
        for (i, p) in planned.iter().enumerate() {
            let failure =
                if phase == Phase::Buildstep || !p.allowed_to_fail() { "must not fail" } else { "allowed to fail" };
            out += &format!(
                "  {}. {} {} ({}), {failure}\n     args: {}\n",
                i + 1,
                p.plugin.manifest.key,
                p.plugin.manifest.version,
                p.plugin.origin,
                p.entry.args
            );
        }
    }
    out
}
