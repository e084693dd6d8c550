//! The build as phases: fetch the source → prebuild → buildstep (the build) → prepublish →
//! postbuild, and the exit plugins always, whatever happened before, cancellation included.

use std::sync::Arc;
use std::time::Duration;

use reactor_plugin_api::{Outcome, Phase, SourceInfo};
use tokio::runtime::Handle;

use crate::build_json::BuildRequest;
use crate::cancel::{Cancel, Signal};
use crate::engine::Engine;
use crate::plugins::host::Shared;
use crate::plugins::runner::{run_buildstep, run_phase, PluginFailure};
use crate::plugins::Plan;
use crate::source::{self, FetchedSource};
use crate::state::BuildState;

/// How long the exit plugins may take once the build was cancelled.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a build did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("source: {0}")]
    Source(#[from] source::Error),
    #[error(transparent)]
    Engine(#[from] crate::engine::Error),
    #[error("docker build failed: {0}")]
    Build(String),
    #[error(transparent)]
    Plugin(#[from] PluginFailure),
    #[error("cancelled by {}", .0.name())]
    Cancelled(Signal),
    #[error("{0}")]
    Internal(String),
}

impl Failure {
    /// The phase and plugin the failure belongs to, for the result document.
    pub fn place(&self) -> (Option<String>, Option<String>) {
        match self {
            Failure::Source(_) => (Some("source".to_owned()), None),
            Failure::Engine(_) | Failure::Internal(_) => (None, None),
            Failure::Build(_) => (Some(Phase::Buildstep.name().to_owned()), Some("dockerbuild".to_owned())),
            Failure::Plugin(p) => (Some(p.phase.name().to_owned()), Some(p.key.clone())),
            Failure::Cancelled(_) => (None, None),
        }
    }

    /// The outcome exit plugins and the result document see.
    pub fn outcome(failure: Option<&Failure>) -> Outcome {
        let Some(failure) = failure else {
            return Outcome { status: "succeeded".to_owned(), ..Default::default() };
        };
        let (failed_phase, failed_plugin) = failure.place();
        let status = if matches!(failure, Failure::Cancelled(_)) { "cancelled" } else { "failed" };
        Outcome { status: status.to_owned(), failed_phase, failed_plugin, error: Some(failure.to_string()) }
    }
}

/// How a build ended, and everything it recorded.
pub struct Finished {
    /// The first failure, the root cause; `None` when the build succeeded.
    pub failure: Option<Failure>,
    /// The state at the end, for the result document.
    pub shared: Arc<Shared>,
}

/// Runs the whole build of `request` with the plugins of `plan`; `cancel` stops it.
pub async fn run(request: &BuildRequest, plan: &Plan, cancel: Cancel) -> Finished {
    let state = BuildState {
        image: request.image.clone(),
        source: SourceInfo {
            provider: request.source.provider.name().to_owned(),
            uri: request.source.uri.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    let shared = Shared::new(state, Handle::current(), cancel.clone());
    // Holds the fetched tree until the exit plugins are done with it.
    let mut source = None;
    let failure = tokio::select! {
        // Checked first: a phase that failed because of the cancellation was cancelled.
        biased;
        // Dropping the main phases stops whatever awaits in them (the build stream included).
        signal = cancel.cancelled() => Some(Failure::Cancelled(signal)),
        done = main_phases(request, plan, &shared, &mut source) => done.err(),
    };
    // A plugin's failure was logged as it happened; say the others now, before the exit plugins.
    if let Some(failure) = failure.as_ref().filter(|f| !matches!(f, Failure::Plugin(_) | Failure::Cancelled(_))) {
        log::error!("{failure}");
    }
    shared.state().outcome = Some(Failure::outcome(failure.as_ref()));

    // The exit plugins run to the end, but once the build is cancelled (before or during this
    // phase) only for so long.
    let exit_failure = tokio::select! {
        done = run_phase(Phase::Exit, plan.phase(Phase::Exit), &shared, true) => done.err().map(Failure::Plugin),
        () = async {
            cancel.cancelled().await;
            tokio::time::sleep(EXIT_TIMEOUT).await;
        } => Some(Failure::Internal(format!("the exit plugins did not finish within {} s of the cancellation", EXIT_TIMEOUT.as_secs()))),
    };
    let failure = failure.or(exit_failure);
    // An exit plugin's failure fails a build that had succeeded until then.
    shared.state().outcome = Some(Failure::outcome(failure.as_ref()));
    {
        // The source goes away now; the result document still shows the final Dockerfile.
        let mut state = shared.state();
        if state.dockerfile.is_some() {
            state.dockerfile_at_end = Some(state.dockerfile_text());
        }
    }
    drop(source);
    Finished { failure, shared }
}

async fn main_phases(
    request: &BuildRequest,
    plan: &Plan,
    shared: &Arc<Shared>,
    source: &mut Option<FetchedSource>,
) -> Result<(), Failure> {
    // The engine connection and the clone do not depend on each other: do both at once.
    let spec = request.source.clone();
    let base_dir = request.base_dir.clone();
    let cancel = shared.cancel.clone();
    let fetching = tokio::task::spawn_blocking(move || source::fetch(&spec, &base_dir, &cancel));
    let connecting = async {
        let engine = Engine::connect().await?;
        if log::log_enabled!(log::Level::Debug) {
            log::debug!("{}", engine.describe().await?);
        }
        Ok::<_, Failure>(engine)
    };
    let (engine, fetched) = tokio::join!(connecting, fetching);
    let fetched = fetched.map_err(|e| Failure::Internal(format!("fetching the source stopped: {e}")))?;
    // Keep what did work for the exit plugins, even when the other half failed.
    if let Ok(engine) = &engine {
        shared.set_engine(engine.clone());
    }
    let fetched = source.insert(fetched?);
    {
        let mut state = shared.state();
        state.source.path = fetched.root.display().to_string();
        state.source.commit = fetched.commit.clone();
        state.dockerfile = Some(fetched.dockerfile.clone());
    }
    engine?;

    run_phase(Phase::Prebuild, plan.phase(Phase::Prebuild), shared, false).await?;
    run_buildstep(plan.phase(Phase::Buildstep), shared).await?;
    let built = shared.state().build_result.clone().unwrap_or_default();
    if built.failed {
        return Err(Failure::Build(built.fail_reason.unwrap_or_else(|| "the builder reported a failure".to_owned())));
    }
    log::info!("built {} ({})", request.image, built.image_id.unwrap_or_default());
    run_phase(Phase::Prepublish, plan.phase(Phase::Prepublish), shared, false).await?;
    run_phase(Phase::Postbuild, plan.phase(Phase::Postbuild), shared, false).await?;
    Ok(())
}
