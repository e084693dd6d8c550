//! The build's state while it runs: what plugins read and change through their context, and
//! what the workflow records as it goes, for the result document.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use reactor_plugin_api::{BuildResult, Outcome, Phase, SourceInfo, Workflow};
use serde_json::Value;

/// Everything known about the build so far.
#[derive(Debug, Default)]
pub struct BuildState {
    pub phase: Option<Phase>,
    pub image: String,
    pub source: SourceInfo,
    pub dockerfile: Option<PathBuf>,
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub build_result: Option<BuildResult>,
    /// Plugin results by phase, then key.
    pub results: BTreeMap<Phase, BTreeMap<String, Value>>,
    /// Pushed image names and the digests the registry reported.
    pub digests: BTreeMap<String, String>,
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
    pub error: Option<String>,
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
            context_dir: self
                .dockerfile
                .as_ref()
                .and_then(|p| p.parent())
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            build_args: self.build_args.clone(),
            labels: self.labels.clone(),
            tags: self.tags.clone(),
            build_result: self.build_result.clone(),
            results: self.results_by_name(),
            digests: self.digests.clone(),
            outcome: self.outcome.clone(),
        }
    }

    /// Results keyed by phase name.
    pub fn results_by_name(&self) -> BTreeMap<String, BTreeMap<String, Value>> {
        self.results.iter().map(|(phase, results)| (phase.name().to_owned(), results.clone())).collect()
    }
}
