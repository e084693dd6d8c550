//! The build as phases: fetch the source → prebuild → build on the engine → prepublish →
//! postbuild, and the exit plugins always, whatever happened before.

use std::sync::Arc;

use reactor_plugin_api::{BuildResult, Phase, SourceInfo};
use tokio::runtime::Handle;

use crate::build_json::BuildRequest;
use crate::engine::{BuildSpec, Engine};
use crate::plugins::host::Shared;
use crate::plugins::runner::{run_phase, PluginFailure};
use crate::plugins::Plan;
use crate::source::{self, FetchedSource};
use crate::state::BuildState;

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
}

/// How a build ended.
#[derive(Debug)]
pub struct Outcome {
    /// The first failure, the root cause; `None` when the build succeeded.
    pub failure: Option<Failure>,
    pub image: String,
    pub image_id: Option<String>,
}

/// Runs the whole build of `request` with the plugins of `plan`.
pub async fn run(request: &BuildRequest, plan: &Plan) -> Outcome {
    let state = BuildState {
        image: request.image.clone(),
        source: SourceInfo {
            provider: request.source.provider.name().to_owned(),
            uri: request.source.uri.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    let shared = Shared::new(state, Handle::current());
    // Holds the fetched tree until the exit plugins are done with it.
    let mut source = None;
    let failure = main_phases(request, plan, &shared, &mut source).await.err();
    if let Some(failure) = &failure {
        log::error!("{failure}");
    }
    let exit_failure = run_phase(Phase::Exit, plan.phase(Phase::Exit), &shared, true).await.err();
    drop(source);
    let state = shared.state();
    for run in &state.runs {
        let how = run.error.as_deref().map_or("ok".to_owned(), |e| format!("failed: {e}"));
        log::debug!("{} plugin '{}': {:.3}s, {how}", run.phase, run.key, run.duration.as_secs_f64());
    }
    let image_id = state.build_result.as_ref().and_then(|r| r.image_id.clone());
    Outcome { failure: failure.or(exit_failure.map(Failure::Plugin)), image: request.image.clone(), image_id }
}

async fn main_phases(
    request: &BuildRequest,
    plan: &Plan,
    shared: &Arc<Shared>,
    source: &mut Option<FetchedSource>,
) -> Result<(), Failure> {
    // The engine connection and the clone do not depend on each other: do both at once.
    let spec = request.source.clone();
    let base_dir = request.base_dir();
    let fetching = tokio::task::spawn_blocking(move || source::fetch(&spec, &base_dir));
    let connecting = async {
        let engine = Engine::connect().await?;
        if log::log_enabled!(log::Level::Debug) {
            log::debug!("{}", engine.describe().await?);
        }
        Ok::<_, Failure>(engine)
    };
    let (engine, fetched) = tokio::join!(connecting, fetching);
    let fetched = fetched.map_err(|e| Failure::Build(format!("fetching the source stopped: {e}")))?;
    // Keep a fetched tree for the exit plugins even when the engine is unreachable.
    let fetched = match fetched {
        Ok(fetched) => {
            let mut state = shared.state();
            state.source.path = fetched.root.display().to_string();
            state.source.commit = fetched.commit.clone();
            state.dockerfile = Some(fetched.dockerfile.clone());
            source.insert(fetched)
        }
        Err(e) => {
            if let Ok(engine) = engine {
                *shared.engine.lock().unwrap_or_else(|p| p.into_inner()) = Some(engine);
            }
            return Err(e.into());
        }
    };
    let engine = engine?;
    *shared.engine.lock().unwrap_or_else(|p| p.into_inner()) = Some(engine.clone());
    let context_dir = fetched.context_dir().to_path_buf();
    let dockerfile = fetched.dockerfile_name();

    run_phase(Phase::Prebuild, plan.phase(Phase::Prebuild), shared, false).await?;

    shared.state().phase = Some(Phase::Buildstep);
    let (build_args, labels) = {
        let state = shared.state();
        (state.build_args.clone(), state.labels.clone())
    };
    let spec = BuildSpec { context_dir: &context_dir, dockerfile: &dockerfile, tag: &request.image, build_args: &build_args, labels: &labels };
    log::info!("building {} from {}", request.image, context_dir.join(&dockerfile).display());
    let output = engine.build(&spec, |line| log::info!(target: "reactor::build", "{line}")).await?;
    let failed = output.error.clone();
    shared.state().build_result = Some(BuildResult {
        logs: output.logs,
        image_id: output.image_id.clone(),
        failed: failed.is_some(),
        fail_reason: failed.clone(),
    });
    if let Some(reason) = failed {
        return Err(Failure::Build(reason));
    }
    log::info!("built {} ({})", request.image, output.image_id.unwrap_or_default());

    run_phase(Phase::Prepublish, plan.phase(Phase::Prepublish), shared, false).await?;
    run_phase(Phase::Postbuild, plan.phase(Phase::Postbuild), shared, false).await?;
    Ok(())
}
