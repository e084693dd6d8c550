//! The build's state while it runs, in one place: what plugins read and change through their
//! context, and what the workflow records as it goes, for the result document. [`Session`]
//! holds it with the engine, the runtime and the cancellation, and is the only writer of plugin
//! runs ([`Session::record_run`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use reactor_plugin_api::protocol::{PulledImage, SNAPSHOT_LOG_BYTES};
use reactor_plugin_api::{BuildResult, Outcome, Phase, SourceInfo, Workflow};
use serde::Serialize;
use serde_json::Value;
use tokio::runtime::Handle;

use crate::build_log::BuildLog;
use crate::cancel::Cancel;
use crate::engine::{Engine, EngineInfo};

/// One build in progress: its state, the engine, the runtime to reach it, and the cancellation.
pub struct Session {
    state: Mutex<BuildState>,
    engine: Mutex<Option<Engine>>,
    /// The engine as the result document names it: the chosen URL, and its versions once connected.
    engine_info: Mutex<EngineInfo>,
    pub runtime: Handle,
    pub cancel: Cancel,
}

impl Session {
    pub fn new(state: BuildState, runtime: Handle, cancel: Cancel) -> Arc<Session> {
        Arc::new(Session {
            state: Mutex::new(state),
            engine: Mutex::new(None),
            engine_info: Mutex::new(EngineInfo::default()),
            runtime,
            cancel,
        })
    }

    pub fn set_engine(&self, engine: Engine) {
        self.set_engine_info(engine.info().clone());
        *self.engine.lock().unwrap_or_else(|p| p.into_inner()) = Some(engine);
    }

    /// Names the engine chosen, before (or without) connecting to it.
    pub fn set_engine_info(&self, info: EngineInfo) {
        *self.engine_info.lock().unwrap_or_else(|p| p.into_inner()) = info;
    }

    /// The engine chosen, with its versions once connected.
    pub fn engine_info(&self) -> EngineInfo {
        self.engine_info.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The engine, once connected.
    pub fn engine(&self) -> Option<Engine> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The state; a plugin thread that panicked while holding it cannot have left it half-changed
    /// in a way that matters more than losing the build, so poisoning is ignored.
    pub fn state(&self) -> MutexGuard<'_, BuildState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a run of plugin `key` (or of the engine build, as `dockerbuild`): its timing, how
    /// it ended, and its result, which later plugins see under its key.
    pub fn record_run(&self, run: PluginRun) {
        let mut state = self.state();
        if let Some(result) = &run.result {
            state.results.entry(run.phase).or_default().insert(run.key.clone(), result.clone());
        }
        state.runs.push(run);
    }
}

/// Everything known about the build so far.
#[derive(Debug, Default)]
pub struct BuildState {
    pub phase: Option<Phase>,
    pub image: String,
    pub source: SourceInfo,
    /// The Dockerfile plugins edit and the engine builds: in the context overlay.
    pub dockerfile: Option<PathBuf>,
    /// The context directory in the source tree, under the overlay's (the Dockerfile's
    /// directory); the same directory when the tree is the overlay (`source::Layout::Writable`).
    pub source_context_dir: Option<PathBuf>,
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub tags: Vec<String>,
    /// The build's outcome, its `logs` empty: the log is in `build_log`.
    pub build_result: Option<BuildResult>,
    /// The build's log, spooled to disk, set with `build_result`.
    pub build_log: Option<Arc<BuildLog>>,
    /// Plugin results by phase, then key.
    pub results: BTreeMap<Phase, BTreeMap<String, Value>>,
    /// Pushed image names and the digests the registry reported.
    pub digests: BTreeMap<String, String>,
    /// Images pulled through the host, in order.
    pub pulled_images: Vec<PulledImage>,
    /// What plugins share (atomic-reactor's `plugin_workspace`), by key.
    pub workspace: BTreeMap<String, Value>,
    /// Every plugin run (and the engine build, as `dockerbuild`), in order.
    pub runs: Vec<PluginRun>,
    /// How the build ended, set before the exit phase.
    pub outcome: Option<Outcome>,
    /// The Dockerfile's text as it was when the source was removed.
    pub dockerfile_at_end: Option<String>,
}

/// One plugin's run.
#[derive(Clone, Debug)]
pub struct PluginRun {
    pub phase: Phase,
    pub key: String,
    pub started: SystemTime,
    pub duration: Duration,
    pub status: RunStatus,
    pub error: Option<String>,
    /// What it returned (on failure `{"error", "kind"}`); `None` when abandoned.
    pub result: Option<Value>,
}

/// How a plugin run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    Failed,
    /// Still running when the cancellation's grace period ended: reactor went on without it.
    Abandoned,
}

impl BuildState {
    /// The Dockerfile's current text (plugins may edit the file directly, as atomic-reactor
    /// plugins did through BUILD_DOCKERFILE_PATH, so the file is the truth).
    pub fn dockerfile_text(&self) -> String {
        if let Some(text) = &self.dockerfile_at_end {
            return text.clone();
        }
        self.dockerfile.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default()
    }

    /// The build context directory plugins write to: the overlay's, the Dockerfile's directory.
    pub fn context_dir(&self) -> Option<&std::path::Path> {
        self.dockerfile.as_ref().and_then(|p| p.parent())
    }

    /// The plugin's view: a snapshot.
    pub fn snapshot(&self) -> Workflow {
        let dockerfile_text = self.dockerfile_text();
        Workflow {
            phase: self.phase,
            image: self.image.clone(),
            source: self.source.clone(),
            dockerfile_path: self.dockerfile.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            base_image: crate::dockerfile::base_image(&dockerfile_text),
            dockerfile: dockerfile_text,
            context_dir: self.context_dir().map(|p| p.display().to_string()).unwrap_or_default(),
            source_context_dir: self.source_context_dir.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            build_args: self.build_args.clone(),
            labels: self.labels.clone(),
            tags: self.tags.clone(),
            build_result: self.build_result_for_plugins(),
            results: self.results_by_name(),
            digests: self.digests.clone(),
            pulled_images: self.pulled_images.clone(),
            outcome: self.outcome.clone(),
        }
    }

    /// The build's outcome as plugins see it: with the log's last lines that fit in
    /// [`SNAPSHOT_LOG_BYTES`] (the whole log, for most builds), the log's length and how many
    /// lines were left out. Plugins read the whole log by pages.
    pub fn build_result_for_plugins(&self) -> Option<BuildResult> {
        let mut result = self.build_result.clone()?;
        if let Some(log) = &self.build_log {
            result.log_lines = log.lines();
            (result.logs, result.logs_omitted) = log.tail(SNAPSHOT_LOG_BYTES).unwrap_or_else(|e| {
                log::warn!("cannot read the end of {e}");
                (Vec::new(), log.lines())
            });
        }
        Some(result)
    }

    /// Results keyed by phase name.
    pub fn results_by_name(&self) -> BTreeMap<String, BTreeMap<String, Value>> {
        self.results.iter().map(|(phase, results)| (phase.name().to_owned(), results.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build_log::BuildLogWriter;

    fn state_with_log(lines: impl Iterator<Item = String>) -> BuildState {
        let mut writer = BuildLogWriter::new().expect("a spool");
        for line in lines {
            writer.line(&line).expect("written");
        }
        let log = writer.finish().expect("finished");
        BuildState {
            build_result: Some(BuildResult { image_id: Some("sha256:x".into()), ..Default::default() }),
            build_log: Some(Arc::new(log)),
            ..Default::default()
        }
    }

    #[test]
    fn plugins_see_the_whole_log_when_it_is_small_and_its_last_mebibyte_else() {
        let small = state_with_log((0..3).map(|n| format!("line {n}"))).snapshot();
        let build = small.build_result.expect("built");
        assert_eq!(
            (build.logs, build.log_lines, build.logs_omitted),
            (vec!["line 0".into(), "line 1".into(), "line 2".into()], 3, 0)
        );

        // 20 000 lines of 100 bytes with their newlines: 2 MB, of which 10 485 lines fit in 1 MiB.
        let big = state_with_log((0..20_000).map(|n| format!("{n:>99}"))).snapshot();
        let build = big.build_result.expect("built");
        let kept = (SNAPSHOT_LOG_BYTES / 100) as usize;
        assert_eq!((build.logs.len(), build.log_lines, build.logs_omitted), (kept, 20_000, (20_000 - kept) as u64));
        assert_eq!(build.logs.last().map(|l| l.trim_start()), Some("19999"));
        assert_eq!(build.image_id.as_deref(), Some("sha256:x"));
    }
}
