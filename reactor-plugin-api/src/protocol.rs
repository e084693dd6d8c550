//! The JSON shapes of what a plugin asks the host through [`HostContext::call`](crate::ffi::HostContext::call).
//!
//! Plugin authors use the typed methods of [`Context`](crate::Context); the host decodes
//! [`Request`] and answers with the matching type below. A request the host does not know (from
//! a plugin built against a newer interface) is refused with an error, not a crash.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Phase;

/// One request from a plugin to the host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// A snapshot of the workflow: answered with [`Workflow`].
    Workflow,
    /// Replaces the Dockerfile's text (prebuild only): answered with `null`.
    SetDockerfile { text: String },
    /// Adds or replaces labels given to the engine at build time (prebuild only).
    SetLabels { labels: BTreeMap<String, String> },
    /// Adds or replaces build args (prebuild only).
    SetBuildArgs { args: BTreeMap<String, String> },
    /// Adds tags (`name:tag`) the built image should get (any phase before exit).
    AddTags { tags: Vec<String> },
    /// `docker image inspect`: answered with the engine's JSON.
    InspectImage { name: String },
    /// Tags `source` as `target` (`repo[:tag]`).
    TagImage { source: String, target: String },
    /// Pushes `name` (`registry/repo:tag`): answered with [`PushOutcome`].
    PushImage { name: String },
    /// Removes an image.
    RemoveImage { name: String, force: bool },
    /// Runs a container from `image` to completion: answered with [`RunOutput`].
    RunContainer { image: String, command: Vec<String> },
    /// Whether the build was cancelled: answered with a bool.
    IsCancelled,
    /// Builds the image on the engine from the workflow as it stands (buildstep only): answered
    /// with the [`BuildResult`], which also becomes the workflow's.
    BuildImage,
    /// Records the outcome of a build a plugin made itself, with another builder (buildstep only).
    SetBuildResult { result: BuildResult },
}

/// A snapshot of the build, as a plugin sees it when it asks.
///
/// Fields may be added; a plugin built against an older interface ignores them, and one built
/// against a newer interface sees their defaults from an older host.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Workflow {
    /// The phase running now.
    pub phase: Option<Phase>,
    /// The name the built image is tagged with (`name[:tag]`).
    pub image: String,
    /// Where the source came from and where it is.
    pub source: SourceInfo,
    /// The Dockerfile's path on disk.
    pub dockerfile_path: String,
    /// The Dockerfile's current text.
    pub dockerfile: String,
    /// The build context directory (the Dockerfile's directory).
    pub context_dir: String,
    /// The image the Dockerfile builds from (the last `FROM`).
    pub base_image: Option<String>,
    /// Build args given to the engine.
    pub build_args: BTreeMap<String, String>,
    /// Labels given to the engine.
    pub labels: BTreeMap<String, String>,
    /// Extra tags for the built image.
    pub tags: Vec<String>,
    /// The build's outcome, once it has run.
    pub build_result: Option<BuildResult>,
    /// The results of the plugins that ran so far, by phase name, then by key.
    pub results: BTreeMap<String, BTreeMap<String, Value>>,
    /// Digests of the images pushed so far, by pushed name.
    pub digests: BTreeMap<String, String>,
    /// How the build ended, once it has (what exit plugins see).
    pub outcome: Option<Outcome>,
}

/// How a build ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Outcome {
    /// `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// The phase that failed, if one did.
    pub failed_phase: Option<String>,
    /// The plugin that failed, if one did (`dockerbuild` for the build itself).
    pub failed_plugin: Option<String>,
    /// The first error, the root cause.
    pub error: Option<String>,
}

/// Where the source came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceInfo {
    /// `git` or `path`.
    pub provider: String,
    /// The URI the build.json gave.
    pub uri: String,
    /// The checked-out tree on disk.
    pub path: String,
    /// The resolved commit SHA, for git sources.
    pub commit: Option<String>,
}

/// What the build produced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BuildResult {
    /// The engine's output, one entry per line (`Step 1/4 : FROM scratch`, …).
    pub logs: Vec<String>,
    /// The built image's ID (`sha256:…`), when the build succeeded.
    pub image_id: Option<String>,
    /// Whether the build failed.
    pub failed: bool,
    /// Why it failed (the engine's error line).
    pub fail_reason: Option<String>,
}

/// What a push did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PushOutcome {
    /// The manifest digest the registry reported, when it reported one.
    pub digest: Option<String>,
}

/// What a container run produced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}
