//! Runs a parsed command line: one function per subcommand. `build` reads and checks the build
//! request and the plugins, prints the plan or runs the workflow, writes the result document,
//! and says how it ended as an exit code.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use serde_json::json;

use crate::build_json;
use crate::cancel::Cancel;
use crate::cli::{Build, Cli, Command, Method, NewPlugin, Plugins, RunArgs};
use crate::engine::endpoint;
use crate::package;
use crate::plugins::discover::{self, Purpose, Scan, Sources};
use crate::plugins::load::LoadError;
use crate::plugins::plan::requested_entries;
use crate::plugins::{Plan, Registry};
use crate::results::{ResultDocument, WriteError};
use crate::scaffold;
use crate::source;
use crate::workflow::{self, Failure};

/// Exit codes; documented in the README.
pub mod exit {
    pub const SUCCESS: u8 = 0;
    /// The build or a plugin failed.
    pub const FAILED: u8 = 1;
    /// The build request is unusable (bad build.json, unknown plugin, bad args).
    pub const INVALID_INPUT: u8 = 2;
    /// A `--load-plugin` file could not be loaded or was refused, two files of one plugin
    /// directory share a key, a `--plugin-dir` does not exist, or a file holding a plugin the
    /// build uses did not load.
    pub const PLUGIN_LOAD: u8 = 3;
    /// The build succeeded, but the result document (`--metadata-file`) could not be written.
    pub const RESULT_NOT_WRITTEN: u8 = 4;
    // Cancellation exits 130 (SIGINT) or 143 (SIGTERM): see `cancel::Signal::exit_code`.
}

/// Runs `cli` and returns the process's exit code. Errors are printed here, one per line.
pub fn run(cli: Cli) -> ExitCode {
    let sources = Sources::new(&cli.load_plugin, &cli.plugin_dir, cli.allow_insecure_plugin_dirs);
    let globals = Globals {
        verbose: cli.verbose,
        quiet: cli.quiet,
        progress: cli.progress,
        isolate_plugins: cli.isolate_plugins,
        allow_insecure_plugin_dirs: cli.allow_insecure_plugin_dirs,
        load_plugin: cli.load_plugin.clone(),
        plugin_dir: cli.plugin_dir.clone(),
        engine: endpoint::Selection { host: cli.host, context: cli.context },
    };
    match cli.command {
        Command::Build(build) => self::build(build, &sources, &globals),
        Command::InsideBuild(inside) => inside_build(inside, &sources, &globals),
        Command::Plugins(command) => plugins(command, &sources),
        Command::PluginWorker { file } => crate::plugins::isolate::serve(&file),
        Command::Completions { shell } => crate::manual::completions(shell),
        Command::Man { dir } => crate::manual::man(dir.as_deref()),
        Command::CreateBuildImage { tag, plugin } => create_build_image(tag, &plugin, &globals.engine),
    }
}

/// `reactor create-build-image`: builds the image and prints its tag, ID and size on stdout.
fn create_build_image(tag: Option<String>, plugins: &[PathBuf], selection: &endpoint::Selection) -> ExitCode {
    let tag = tag.unwrap_or_else(crate::build_image::default_tag);
    if let Err(e) = crate::build_json::check_image_reference(&tag) {
        log::error!("create-build-image: --tag {e}");
        return ExitCode::from(exit::INVALID_INPUT);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            log::error!("cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    let built = runtime.block_on(async {
        let endpoint = endpoint::resolve(selection, &endpoint::ProcessEnv).map_err(crate::engine::Error::from)?;
        let engine = crate::engine::Engine::connect(&endpoint).await?;
        crate::build_image::create(&engine, &tag, plugins).await
    });
    match built {
        Ok(built) => {
            #[allow(clippy::cast_precision_loss)]
            let mib = built.size as f64 / (1024.0 * 1024.0);
            println!("{} {} {mib:.1} MiB (plugins: {})", built.tag, built.image_id, built.plugins.join(", "));
            ExitCode::from(exit::SUCCESS)
        }
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// `reactor plugins …`: what it did goes to stdout in one line, a refusal to the log in one.
fn plugins(command: Plugins, sources: &Sources) -> ExitCode {
    use crate::plugins::inspect;
    let outcome = match command {
        Plugins::List { json } => return inspect::list(sources, json),
        Plugins::Inspect { target, json } => return inspect::inspect(sources, &target, json),
        Plugins::Check { paths } => return inspect::check(&paths, sources.allow_insecure),
        Plugins::New(new) => return plugin_new(new),
        Plugins::Install { source, dir, force, require_signed, trusted_keys } => {
            plugins_install(&source, dir, force, require_signed, trusted_keys)
        }
        Plugins::Remove { name, dir } => plugin_dir(dir, "plugins remove").and_then(|dir| {
            let removed = package::install::remove(&name, &dir)?;
            Ok(format!("removed {} {} from {}", removed.name, removed.version, dir.display()))
        }),
        Plugins::Package { crate_dir, out, sign } => {
            package::make::package(&crate_dir, out.as_deref(), sign.as_deref()).map(|packaged| {
                let signed = if packaged.signed { ", signed" } else { "" };
                format!(
                    "{} ({} {}{signed})",
                    packaged.path.display(),
                    packaged.manifest.name,
                    packaged.manifest.version
                )
            })
        }
    };
    match outcome {
        Ok(line) => {
            println!("{line}");
            ExitCode::from(exit::SUCCESS)
        }
        Err(refused) => {
            log::error!("{refused}");
            ExitCode::from(refused.code)
        }
    }
}

fn plugins_install(
    source: &std::path::Path,
    dir: Option<PathBuf>,
    force: bool,
    require_signed: bool,
    trusted_keys: Option<PathBuf>,
) -> Result<String, package::Refused> {
    let dir = plugin_dir(dir, "plugins install")?;
    let trusted_keys = trusted_keys.or_else(package::default_trusted_keys_dir).ok_or_else(|| {
        package::Refused::invalid("plugins install: give --trusted-keys DIR (neither XDG_CONFIG_HOME nor HOME is set)")
    })?;
    let options = package::install::InstallOptions { dir: &dir, force, require_signed, trusted_keys: &trusted_keys };
    let installed = package::install::install(source, &options)?;
    let manifest = &installed.manifest;
    let keys: Vec<&str> = manifest.files.iter().flat_map(package::keys).collect();
    let action = match &installed.replaced {
        Some(old) => format!("replaced {} {old} with {}", manifest.name, manifest.version),
        None => format!("installed {} {}", manifest.name, manifest.version),
    };
    let signed = match &installed.signature {
        package::signature::Verdict::Trusted(_) => " (signed by a trusted key)",
        _ => "",
    };
    Ok(format!("{action} in {}{signed}: {}", installed.path.display(), keys.join(", ")))
}

/// `--dir`, else the user's plugin directory.
fn plugin_dir(dir: Option<PathBuf>, command: &str) -> Result<PathBuf, package::Refused> {
    dir.or_else(discover::user_dir).ok_or_else(|| {
        package::Refused::invalid(format!("{command}: give --dir DIR (neither XDG_DATA_HOME nor HOME is set)"))
    })
}

/// `reactor plugin new`: writes the crate and says what was written and what to do next.
fn plugin_new(new: NewPlugin) -> ExitCode {
    let request = scaffold::Request { name: new.name, phase: new.phase, dir: new.dir, api_path: new.api_path };
    let created = match scaffold::create(&request) {
        Ok(created) => created,
        Err(e) => {
            log::error!("reactor plugin new: {e}");
            return ExitCode::from(if e.is_invalid_input() { exit::INVALID_INPUT } else { exit::FAILED });
        }
    };
    let key = &created.names.key;
    if Registry::with_builtins().get(key).is_some() {
        log::warn!(
            "'{key}' is also a built-in plugin's key: a build that loads this plugin runs it in the built-in's place"
        );
    }
    let dir = created.dir.display();
    println!("Created the {} plugin '{key}' in {dir}: {}", request.phase, created.files.join(", "));
    println!("{}", created.api.describe());
    println!("Next:");
    println!("  cd {dir}");
    println!("  cargo test               # its unit tests, on reactor_plugin_api::testing::FakeHost");
    println!("  cargo build --release    # makes target/release/lib{}.so", created.names.lib);
    println!("  reactor plugins check target/release/lib{}.so", created.names.lib);
    ExitCode::from(exit::SUCCESS)
}

/// The global flags a build takes, which `--method hostdocker` hands on to the build inside.
#[derive(Debug)]
pub struct Globals {
    pub verbose: bool,
    pub quiet: bool,
    pub progress: crate::progress::Mode,
    pub isolate_plugins: bool,
    pub allow_insecure_plugin_dirs: bool,
    pub load_plugin: Vec<PathBuf>,
    pub plugin_dir: Vec<PathBuf>,
    /// `--host`, `--context`: the engine, chosen as the docker CLI chooses.
    pub engine: endpoint::Selection,
}

/// `reactor build json|git|path`.
fn build(build: Build, sources: &Sources, globals: &Globals) -> ExitCode {
    let started = SystemTime::now();
    let mut build_json_file = None;
    // The build.json as JSON, for a build handed to a container (`--method hostdocker`).
    let handoff: Box<dyn FnOnce() -> Result<serde_json::Value, build_json::Error>>;
    let (origin, request, run) = match build {
        Build::Json { file, substitute, strict, run } => {
            let request = build_json::load(&file, &substitute, build_json::LoadOptions { strict });
            let origin = file.display().to_string();
            build_json_file = Some(file.clone());
            handoff = Box::new(move || build_json::substituted_value(&file, &substitute));
            (origin, request, run)
        }
        Build::Git { uri, commit, source, run } => {
            let mut spec = json!({"provider": "git", "uri": uri});
            if let Some(commit) = commit {
                spec["provider_params"] = json!({"git_commit": commit});
            }
            let value = build_json::flags_value(spec, source);
            let request = build_json::from_value(value.clone(), "command line", PathBuf::from("."), &[]);
            handoff = Box::new(move || Ok(value));
            ("command line".to_owned(), request, run)
        }
        Build::Path { uri, source, run } => {
            let value = build_json::flags_value(json!({"provider": "path", "uri": uri}), source);
            let request = build_json::from_value(value.clone(), "command line", PathBuf::from("."), &[]);
            handoff = Box::new(move || Ok(value));
            ("command line".to_owned(), request, run)
        }
    };
    match run.method {
        Method::Here => run_request(&origin, request, &run, build_json_file.as_deref(), sources, globals, started),
        Method::Privileged => {
            let line = "--method privileged is not available: reactor has no engine image to run docker-in-docker \
                        with; use --method hostdocker --build-image IMAGE (the build in a container of reactor's \
                        image, on this engine) or the default, --method here"
                .to_owned();
            let registry = Registry::with_builtins();
            refuse(
                &origin,
                &[line],
                &registry,
                exit::INVALID_INPUT,
                run.metadata_file.as_deref(),
                run.results_dir.as_deref(),
                started,
            )
        }
        Method::Hostdocker => {
            let refused = |problems: Vec<String>| {
                refuse(
                    &origin,
                    &problems,
                    &Registry::with_builtins(),
                    exit::INVALID_INPUT,
                    run.metadata_file.as_deref(),
                    run.results_dir.as_deref(),
                    started,
                )
            };
            let problems = metadata_file_problems(run.metadata_file.as_deref(), build_json_file.as_deref());
            let request = match request {
                Ok(request) if problems.is_empty() => request,
                Ok(_) => return refused(problems),
                Err(e) => return refused(std::iter::once(e.to_string()).chain(problems).collect()),
            };
            let value = match handoff() {
                Ok(value) => value,
                Err(e) => return refused(vec![e.to_string()]),
            };
            crate::hostdocker::run(&request, value, &run, globals)
        }
    }
}

/// `reactor inside-build`: the build.json from the input, then exactly `build json`.
fn inside_build(inside: crate::cli::InsideBuild, sources: &Sources, globals: &Globals) -> ExitCode {
    use crate::inside::Resolved;
    let started = SystemTime::now();
    let mut run = inside.run;
    if run.method != Method::Here {
        log::error!("inside-build: --method is for `reactor build`; inside-build runs the build here");
        return ExitCode::from(exit::INVALID_INPUT);
    }
    let input = match crate::inside::resolve(inside.input, &inside.input_arg) {
        Ok(input) => input,
        Err(line) => {
            log::error!("{line}");
            return ExitCode::from(exit::INVALID_INPUT);
        }
    };
    if run.metadata_file.is_none() {
        run.metadata_file = crate::inside::default_metadata_file();
    }
    let options = build_json::LoadOptions { strict: inside.strict };
    match input {
        Resolved::File(file) => {
            let request = build_json::load(&file, &inside.substitute, options);
            run_request(&file.display().to_string(), request, &run, Some(&file), sources, globals, started)
        }
        Resolved::Text { variable, text } => {
            let origin = format!("${variable}");
            let base_dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            let request = build_json::from_text(&text, &origin, base_dir, &inside.substitute, options);
            run_request(&origin, request, &run, None, sources, globals, started)
        }
    }
}

/// Runs a build request here: loads the plugins, checks the plan, runs the workflow, writes the
/// result document and the results directory.
fn run_request(
    origin: &str,
    request: Result<build_json::BuildRequest, build_json::Error>,
    run: &RunArgs,
    build_json_file: Option<&std::path::Path>,
    sources: &Sources,
    globals: &Globals,
    started: SystemTime,
) -> ExitCode {
    let isolate_plugins = globals.isolate_plugins;
    // The request and the plugin files are both read before either is reported, so one run
    // shows every problem.
    // --load-plugin files first: they win their keys over the plugin directories'.
    let mut registry = Registry::with_builtins();
    registry.isolate_loaded_plugins(isolate_plugins);
    let mut loaded = discover::load_named_files(&mut registry, &sources.load_plugin, sources.allow_insecure);
    let mut scan = Scan::new(sources, Purpose::Build);
    let needed: Option<BTreeSet<String>> = match (&request, &loaded) {
        (Ok(request), Ok(())) => Some(requested_entries(request).into_iter().map(|e| e.name).collect()),
        _ => None,
    };
    let dir_errors = scan.load_for_build(&mut registry, needed.as_ref());
    if !dir_errors.is_empty() {
        let mut errors = loaded.err().unwrap_or_default();
        errors.extend(dir_errors.into_iter().map(LoadError::Discovery));
        loaded = Err(errors);
    }
    let metadata_problems = metadata_file_problems(run.metadata_file.as_deref(), build_json_file);
    let request = match (request, loaded) {
        (Ok(request), Ok(())) if metadata_problems.is_empty() => request,
        (request, loaded) => {
            let mut problems: Vec<String> = request.err().map(|e| e.to_string()).into_iter().collect();
            // A refused --metadata-file is not written: it may be the build.json.
            let metadata_file = run.metadata_file.as_deref().filter(|_| metadata_problems.is_empty());
            problems.extend(metadata_problems);
            let code = match loaded {
                Ok(()) => exit::INVALID_INPUT,
                Err(errors) => {
                    problems.extend(errors.iter().map(ToString::to_string));
                    exit::PLUGIN_LOAD
                }
            };
            return refuse(origin, &problems, &registry, code, metadata_file, run.results_dir.as_deref(), started);
        }
    };
    let plan = match Plan::resolve(&request, &registry) {
        Ok(plan) => plan,
        Err(problems) => {
            let problems: Vec<String> = problems.iter().map(|p| format!("{origin}: {p}")).collect();
            // A plugin whose file did not load is a plugin load failure, not a bad request.
            let unloaded = requested_entries(&request)
                .iter()
                .any(|e| e.required && registry.get(&e.name).is_none() && registry.why_unavailable(&e.name).is_some());
            let code = if unloaded { exit::PLUGIN_LOAD } else { exit::INVALID_INPUT };
            return refuse(
                origin,
                &problems,
                &registry,
                code,
                run.metadata_file.as_deref(),
                run.results_dir.as_deref(),
                started,
            );
        }
    };

    // From here on every log line and recorded text masks the secret args' values.
    crate::secrets::mask(plan.secret_strings());
    // An engine that cannot be chosen (an unknown context, a bad URL) is an engine error.
    let endpoint = match endpoint::resolve(&globals.engine, &endpoint::ProcessEnv) {
        Ok(endpoint) => endpoint,
        Err(e) => {
            let problems = [format!("engine: {e}")];
            let (metadata_file, results_dir) = (run.metadata_file.as_deref(), run.results_dir.as_deref());
            return refuse(origin, &problems, &registry, exit::FAILED, metadata_file, results_dir, started);
        }
    };
    if run.dry_run {
        print!("{}", crate::secrets::redact_text(&plan.describe(&request)));
        println!("engine: {}", endpoint.describe());
        return ExitCode::from(exit::SUCCESS);
    }

    // Before the runtime starts any thread: see `source::prepare`.
    source::prepare(&request.source, &request.base_dir, source::Timeouts::with_idle(run.git_timeout));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            log::error!(
                "cannot start the async runtime: {e}; check the limits on threads and open files (ulimit -u, -n)"
            );
            return ExitCode::from(exit::FAILED);
        }
    };
    // After source::prepare, which must run before any thread exists.
    let planned = plan.phases.values().flatten();
    reactor_builtins::prepare(planned.filter(|p| p.plugin.is_builtin()).map(|p| p.plugin.manifest.key.as_str()));
    let cancel = Cancel::new(run.cancel_grace).with_exit_timeout(run.exit_timeout);
    let finished = runtime.block_on(async {
        if let Err(e) = cancel.listen_for_signals() {
            log::warn!(
                "cannot listen for SIGINT/SIGTERM ({e}); a signal will stop reactor without running the exit plugins"
            );
        }
        workflow::run(&request, &plan, &endpoint, cancel.clone()).await
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
        Some(failure @ Failure::ExitLimit { signal, .. }) => {
            log::error!("build {failure}");
            signal.exit_code()
        }
        Some(Failure::Cancelled(signal)) => {
            log::error!("build cancelled by {}", signal.name());
            signal.exit_code()
        }
        Some(failure) => {
            // The error itself was logged where it happened, before the exit plugins ran: this
            // line only says how the build ended.
            let (phase, plugin) = failure.place();
            let place = match (phase, plugin) {
                (Some(phase), Some(plugin)) => format!(" (phase {phase}, '{plugin}')"),
                (Some(phase), None) => format!(" (phase {phase})"),
                _ => String::new(),
            };
            log::error!("build of {} failed{place}", request.image);
            exit::FAILED
        }
    };
    let mut code = code;
    let mut written = None;
    if let Some(path) = &run.metadata_file {
        let doc = ResultDocument::finished(&request, &registry, &finished, code, started);
        if let Err(e) = doc.write(path) {
            // A CI reading the document must not take its absence for success.
            if code == exit::SUCCESS {
                code = exit::RESULT_NOT_WRITTEN;
                let path = path.display().to_string();
                log::error!("{}", WriteError::AfterSuccess { path, source: e, code });
            } else {
                log::error!("{}", WriteError::AfterFailure { path: path.display().to_string(), source: e });
            }
        } else {
            log::debug!("wrote the result document to {}", path.display());
            written = Some(path.display().to_string());
        }
    }
    if let Some(dir) = &run.results_dir {
        if let Err(e) = crate::results_dir::write(dir, &request.image, &finished.session.state().digests) {
            // As for the result document: a missing result must not pass for success.
            if code == exit::SUCCESS {
                code = exit::RESULT_NOT_WRITTEN;
                log::error!(
                    "the build succeeded, but --results-dir {} cannot be written: {e} (exit {code})",
                    dir.display()
                );
            } else {
                log::error!("cannot write --results-dir {}: {e}", dir.display());
            }
        }
    }
    summary(&request.image, &finished, written, started).report();
    if matches!(finished.failure, Some(Failure::ExitLimit { .. })) {
        // An abandoned exit plugin still runs on a thread of its own, and may hold what an
        // orderly return would wait for: the document is written, so end the process now.
        std::process::exit(i32::from(code));
    }
    ExitCode::from(code)
}

/// How the build ended, for the summary on stderr: `written` is the result document's path,
/// when one was written.
fn summary(
    image: &str,
    finished: &workflow::Finished,
    written: Option<String>,
    started: SystemTime,
) -> crate::progress::Summary {
    let outcome = Failure::outcome(finished.failure.as_ref());
    let state = finished.session.state();
    // The engine build is inside its builder plugin's run: the slowest is a plugin's.
    let slowest = state
        .runs
        .iter()
        .filter(|run| run.key != workflow::DOCKERBUILD)
        .max_by_key(|run| run.duration)
        .map(|run| (run.phase.name().to_owned(), run.key.clone(), run.duration));
    crate::progress::Summary {
        outcome: serde_json::to_value(outcome.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        failed_phase: outcome.failed_phase,
        failed_plugin: outcome.failed_plugin,
        error: outcome.error,
        image: image.to_owned(),
        image_id: state.build_result.as_ref().and_then(|b| b.image_id.clone()),
        // The name it was built as, then those plugins added.
        tags: std::iter::once(image.to_owned())
            .chain(state.tags.iter().filter(|tag| tag.as_str() != image).cloned())
            .collect(),
        digests: state.digests.iter().map(|(n, d)| (n.clone(), d.clone())).collect(),
        phases: crate::progress::phase_timings(),
        slowest_plugin: slowest,
        metadata_file: written,
        duration: started.elapsed().unwrap_or_default(),
    }
}

/// What makes `--metadata-file` unusable, found before anything runs: a directory, or the
/// build.json itself (which the document would overwrite).
fn metadata_file_problems(
    metadata_file: Option<&std::path::Path>,
    build_json: Option<&std::path::Path>,
) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let Some(path) = metadata_file else { return Vec::new() };
    let Ok(meta) = std::fs::metadata(path) else { return Vec::new() };
    if meta.is_dir() {
        return vec![format!(
            "--metadata-file {}: is a directory; name a file, e.g. {}",
            path.display(),
            path.join("result.json").display()
        )];
    }
    let same = build_json
        .and_then(|b| std::fs::metadata(b).ok())
        .is_some_and(|b| b.dev() == meta.dev() && b.ino() == meta.ino());
    if same {
        return vec![format!(
            "--metadata-file {}: is the build.json itself, which the result document would overwrite; name another file",
            path.display()
        )];
    }
    Vec::new()
}

/// Reports problems found before anything ran, writes the result document, returns `code`.
fn refuse(
    origin: &str,
    problems: &[String],
    registry: &Registry,
    code: u8,
    metadata_file: Option<&std::path::Path>,
    results_dir: Option<&std::path::Path>,
    started: SystemTime,
) -> ExitCode {
    for problem in problems {
        log::error!("{problem}");
    }
    if let Some(path) = metadata_file {
        let doc = ResultDocument::refused(origin, problems, registry, code, started);
        if let Err(e) = doc.write(path) {
            log::error!("{}", WriteError::AfterFailure { path: path.display().to_string(), source: e });
        }
    }
    if let Some(dir) = results_dir {
        // Empty: nothing was pushed (see results_dir for why the files are written at all).
        if let Err(e) = crate::results_dir::write(dir, "", &std::collections::BTreeMap::new()) {
            log::error!("cannot write --results-dir {}: {e}", dir.display());
        }
    }
    ExitCode::from(code)
}
