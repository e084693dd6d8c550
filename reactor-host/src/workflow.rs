//! The build as phases: fetch the source → prebuild → buildstep (the build) → prepublish →
//! postbuild, and the exit plugins always, whatever happened before, cancellation included.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reactor_plugin_api::{BuildResult, ErrorKind, Outcome, Phase, PluginError, SourceInfo, Status};
use tokio::runtime::Handle;

use crate::build_json::BuildRequest;
use crate::build_log::BuildLogWriter;
use crate::cancel::{Cancel, Signal};
use crate::engine::endpoint::Endpoint;
use crate::engine::{BuildSpec, Engine, EngineInfo};
use crate::plugins::runner::{run_buildstep, run_phase, PluginFailure};
use crate::plugins::Plan;
use crate::progress::{self, Event, PhaseRun};
use crate::source::{self, FetchedSource};
use crate::state::{BuildState, PluginRun, RunStatus, Session};

/// How long a cancelled fetch may take to stop before it is abandoned.
const FETCH_STOP: Duration = Duration::from_secs(1);

/// Why a build did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("source: {0}")]
    Source(#[from] source::Error),
    #[error(transparent)]
    Engine(#[from] crate::engine::Error),
    #[error("docker build failed: {0}; fix the Dockerfile's failing step (the build's log shows its output)")]
    Build(String),
    #[error(transparent)]
    Plugin(#[from] PluginFailure),
    #[error("cancelled by {}", .0.name())]
    Cancelled(Signal),
    /// Cancelled, and an exit plugin was still running when the exit phase's limit ended.
    #[error(
        "cancelled by {}; exit plugin '{key}' {message}; raise --exit-timeout to let it finish",
        signal.name()
    )]
    ExitLimit { signal: Signal, key: String, message: String },
    #[error("{0}; this is a bug in reactor: report it with the -v log")]
    Internal(String),
}

impl Failure {
    /// The phase and plugin the failure belongs to, for the result document.
    pub fn place(&self) -> (Option<String>, Option<String>) {
        match self {
            Failure::Source(_) => (Some("source".to_owned()), None),
            Failure::Engine(_) | Failure::Internal(_) => (None, None),
            Failure::Build(_) => (Some(Phase::Buildstep.name().to_owned()), Some(DOCKERBUILD.to_owned())),
            Failure::Plugin(p) => (Some(p.phase.name().to_owned()), Some(p.key.clone())),
            Failure::Cancelled(_) => (None, None),
            Failure::ExitLimit { key, .. } => (Some(Phase::Exit.name().to_owned()), Some(key.clone())),
        }
    }

    /// The signal that cancelled the build, when that is how it ended.
    pub fn signal(&self) -> Option<Signal> {
        match self {
            Failure::Cancelled(signal) | Failure::ExitLimit { signal, .. } => Some(*signal),
            _ => None,
        }
    }

    /// The outcome exit plugins and the result document see.
    pub fn outcome(failure: Option<&Failure>) -> Outcome {
        let Some(failure) = failure else {
            return Outcome { status: Status::Succeeded, ..Default::default() };
        };
        let (failed_phase, failed_plugin) = failure.place();
        let status = match failure.signal() {
            Some(_) => Status::Cancelled,
            None => Status::Failed,
        };
        Outcome { status, failed_phase, failed_plugin, error: Some(failure.to_string()) }
    }
}

/// How a build ended, and everything it recorded.
pub struct Finished {
    /// The first failure, the root cause; `None` when the build succeeded.
    pub failure: Option<Failure>,
    /// The state at the end, for the result document.
    pub session: Arc<Session>,
}

/// Runs the whole build of `request` with the plugins of `plan` on the engine `endpoint` names;
/// `cancel` stops it.
pub async fn run(request: &BuildRequest, plan: &Plan, endpoint: &Endpoint, cancel: Cancel) -> Finished {
    log::info!("building {} on the Docker engine {}", request.image, endpoint.describe());
    let state = BuildState {
        image: request.image.clone(),
        source: SourceInfo {
            provider: request.source.provider.name().to_owned(),
            uri: request.source.uri.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    let session = Session::new(state, Handle::current(), cancel.clone());
    session.set_engine_info(EngineInfo::of(endpoint));
    // Holds the fetched tree until the exit plugins are done with it.
    let mut source = None;
    // A cancelled build's phases end on their own: the engine build is dropped, plugins are told
    // and abandoned after the grace period. What cannot be told (a clone from a silent server)
    // is dropped a moment after that.
    let failure = tokio::select! {
        done = main_phases(request, plan, endpoint, &session, &mut source) => done.err(),
        signal = async {
            let signal = cancel.grace_over().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            signal
        } => Some(Failure::Cancelled(signal)),
    };
    // A phase that failed because of the cancellation was cancelled.
    let failure = match cancel.signal() {
        Some(signal) => Some(Failure::Cancelled(signal)),
        None => failure,
    };
    // A plugin's failure was logged as it happened; say the others now, before the exit plugins.
    if let Some(failure) = failure.as_ref().filter(|f| !matches!(f, Failure::Plugin(_) | Failure::Cancelled(_))) {
        log::error!("{failure}");
    }
    session.state().outcome = Some(Failure::outcome(failure.as_ref()));

    // The exit plugins run to the end, but once the build is cancelled (before or during this
    // phase) only until the exit phase's limit: the runner abandons one still running then.
    let exit_failure = run_phase(Phase::Exit, plan.phase(Phase::Exit), &session, true).await.err();
    let hung = session
        .state()
        .runs
        .iter()
        .find(|run| run.phase == Phase::Exit && run.status == RunStatus::Abandoned)
        .map(|run| (run.key.clone(), run.error.clone().unwrap_or_default()));
    let failure = match (cancel.signal(), hung) {
        // What ends the process now is the cancellation and the plugin that outlived its limit.
        (Some(signal), Some((key, message))) => Some(Failure::ExitLimit { signal, key, message }),
        _ => failure.or(exit_failure.map(Failure::Plugin)),
    };
    // An exit plugin's failure fails a build that had succeeded until then.
    session.state().outcome = Some(Failure::outcome(failure.as_ref()));
    {
        // The source goes away now; the result document still shows the final Dockerfile.
        let mut state = session.state();
        if state.dockerfile.is_some() {
            state.dockerfile_at_end = Some(state.dockerfile_text());
        }
    }
    drop(source);
    Finished { failure, session }
}

async fn main_phases(
    request: &BuildRequest,
    plan: &Plan,
    endpoint: &Endpoint,
    session: &Arc<Session>,
    source: &mut Option<FetchedSource>,
) -> Result<(), Failure> {
    // The engine connection and the clone do not depend on each other: do both at once.
    let spec = request.source.clone();
    let base_dir = request.base_dir.clone();
    let cancel = session.cancel.clone();
    let layout = source_layout(request, plan);
    let tmp = source::temp_dir()?;
    // Removes the directory if the fetch is abandoned below, or this future dropped, while it runs.
    let remove_unless_fetched = source::RemoveOnDrop::new(tmp.path());
    let report = PhaseRun::start("source");
    let mut task = tokio::task::spawn_blocking(move || {
        source::collect_leftovers();
        source::fetch_into(tmp, &spec, &base_dir, layout, &cancel)
    });
    // A fetch that is moving stops at once when cancelled (its progress callbacks say so); one
    // waiting on a silent server calls no callback, so it is abandoned, still blocked, a moment
    // later.
    let fetching = async {
        tokio::select! {
            joined = &mut task => joined.map_err(|e| Failure::Internal(format!("fetching the source stopped: {e}"))),
            signal = async {
                let signal = session.cancel.cancelled().await;
                tokio::time::sleep(FETCH_STOP).await;
                signal
            } => {
                log::warn!("the fetch did not stop within {} s of the cancellation: abandoned", FETCH_STOP.as_secs());
                Err(Failure::Cancelled(signal))
            }
        }
    };
    let connecting = async {
        let engine = Engine::connect(endpoint).await?;
        // Its versions are known only now: the first line named the engine before connecting,
        // which runs beside the fetch of the source.
        log::info!("connected to the {}", engine.describe());
        Ok::<_, Failure>(engine)
    };
    let (engine, fetched) = tokio::join!(connecting, fetching);
    report.end(fetched.as_ref().is_ok_and(Result::is_ok) && engine.is_ok());
    let fetched = fetched?;
    // Keep what did work for the exit plugins, even when the other half failed.
    if let Ok(engine) = &engine {
        session.set_engine(engine.clone());
    }
    let fetched = source.insert(fetched?);
    remove_unless_fetched.keep();
    {
        let mut state = session.state();
        state.source.path = fetched.tree.display().to_string();
        state.source.commit = fetched.commit.clone();
        state.dockerfile = Some(fetched.dockerfile());
        state.source_context_dir = Some(fetched.source_context_dir());
    }
    engine?;

    run_phase(Phase::Prebuild, plan.phase(Phase::Prebuild), session, false).await?;
    run_buildstep(plan.phase(Phase::Buildstep), session).await?;
    let built = session.state().build_result.clone().unwrap_or_default();
    if built.failed {
        return Err(Failure::Build(built.fail_reason.unwrap_or_else(|| "the builder reported a failure".to_owned())));
    }
    let image_id = built.image_id.unwrap_or_default();
    log::info!("built {} ({image_id})", request.image);
    progress::emit(&Event::ImageBuilt { image: request.image.clone(), image_id });
    run_phase(Phase::Prepublish, plan.phase(Phase::Prepublish), session, false).await?;
    run_phase(Phase::Postbuild, plan.phase(Phase::Postbuild), session, false).await?;
    Ok(())
}

/// Where plugins write: an overlay, unless a plugin of prebuild or buildstep was built before
/// the overlay existed and may write into its context directory (said once, in the log).
fn source_layout(request: &BuildRequest, plan: &Plan) -> source::Layout {
    let Some(planned) = plan.predates_overlay() else {
        return source::Layout::Overlay;
    };
    let (key, api) = (&planned.plugin.manifest.key, &planned.plugin.api_version);
    match request.source.provider {
        source::Provider::Path => log::info!(
            "plugin '{key}' (reactor-plugin-api {api}) predates the context overlay: copying the path source so it may write to it"
        ),
        source::Provider::Git => log::info!(
            "plugin '{key}' (reactor-plugin-api {api}) predates the context overlay: the git checkout is its context directory, so it may write to it"
        ),
    }
    source::Layout::Writable
}

/// Builds on the engine from the state as it stands, streaming the output to the log, and
/// records the result and the build's own run (as `dockerbuild`). Dropping the build stream on
/// cancellation makes the engine stop the build.
pub async fn build_image(session: &Session) -> Result<BuildResult, PluginError> {
    let host_error = |message: String| PluginError::with_kind(ErrorKind::Host, message);
    let engine =
        session.engine().ok_or_else(|| host_error("the Docker engine is not available to this build".into()))?;
    let (dockerfile, source_context_dir, tag, build_args, labels) = {
        let state = session.state();
        let dockerfile =
            state.dockerfile.clone().ok_or_else(|| host_error("there is no Dockerfile to build".into()))?;
        (
            dockerfile,
            state.source_context_dir.clone(),
            state.image.clone(),
            state.build_args.clone(),
            state.labels.clone(),
        )
    };
    let overlay_dir = dockerfile.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    let context_dir = source_context_dir.unwrap_or_else(|| overlay_dir.clone());
    let name = dockerfile.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let spec = BuildSpec {
        context_dir: &context_dir,
        // The writable layout has no overlay apart from the tree.
        overlay_dir: Some(overlay_dir.as_path()).filter(|overlay| *overlay != context_dir),
        dockerfile: &name,
        tag: &tag,
        build_args: &build_args,
        labels: &labels,
    };
    log::info!("building {tag} from {}", dockerfile.display());
    // The log goes to disk as it comes, never whole into memory: a build may print gigabytes.
    let mut spool = BuildLogWriter::new().map_err(|e| host_error(format!("cannot keep the build log: {e}")))?;
    let mut spool_error = None;
    let on_line = |line: &str| {
        log::info!(target: "reactor::build", "{line}");
        if let Some((current, total, instruction)) = progress::parse_step(line) {
            progress::emit(&Event::BuildStep { current, total, instruction: instruction.to_owned() });
        }
        if spool_error.is_none() {
            spool_error = spool.line(line).err();
        }
    };
    let (started, clock) = (SystemTime::now(), Instant::now());
    let output = tokio::select! {
        output = engine.build(&spec, on_line) => output,
        _ = session.cancel.cancelled() => return Err(PluginError::with_kind(ErrorKind::Cancelled, "the build was cancelled")),
    };
    let output = output.map_err(|e| host_error(e.to_string()))?;
    let log = match spool_error {
        Some(e) => Err(e),
        None => spool.finish(),
    }
    .map_err(|e| host_error(format!("cannot keep the build log: {e}")))?;
    let result = BuildResult {
        failed: output.error.is_some(),
        fail_reason: output.error,
        image_id: output.image_id,
        log_lines: log.lines(),
        ..Default::default()
    };
    session.record_run(PluginRun {
        phase: Phase::Buildstep,
        key: DOCKERBUILD.to_owned(),
        started,
        duration: clock.elapsed(),
        status: if result.failed { RunStatus::Failed } else { RunStatus::Succeeded },
        error: result.fail_reason.clone(),
        result: None,
    });
    let mut state = session.state();
    state.build_result = Some(result);
    state.build_log = Some(Arc::new(log));
    // What the plugin that asked for the build gets: the log's end, as in a snapshot.
    Ok(state.build_result_for_plugins().unwrap_or_default())
}

/// The name the engine build itself is recorded under, as in atomic-reactor.
pub const DOCKERBUILD: &str = "dockerbuild";
