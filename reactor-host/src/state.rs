//! The build's state while it runs: what plugins read and change through their context, and
//! what the workflow records as it goes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use reactor_plugin_api::{BuildResult, Phase, SourceInfo, Workflow};
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
    /// Every plugin run, in order.
    pub runs: Vec<PluginRun>,
}

/// One plugin's run.
#[derive(Clone, Debug)]
pub struct PluginRun {
    pub phase: Phase,
    pub key: String,
    pub duration: Duration,
    pub error: Option<String>,
}

impl BuildState {
    /// The plugin's view: a snapshot, with the Dockerfile read from disk (plugins may edit it
    /// there directly, as atomic-reactor plugins did through BUILD_DOCKERFILE_PATH).
    pub fn snapshot(&self) -> Workflow {
        let dockerfile_text = self.dockerfile.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
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
            results: self
                .results
                .iter()
                .map(|(phase, results)| (phase.name().to_owned(), results.clone()))
                .collect(),
        }
    }
}
