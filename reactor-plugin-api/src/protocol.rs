//! The JSON protocol spoken over the frozen [`ffi`](crate::ffi) layout: the handshake, what the
//! host asks a module, and what a plugin asks the host.
//!
//! The protocol is versioned `major.minor`, the major and minor of `reactor-plugin-api`. Within a
//! major, any plugin loads in any host, older or newer: what a minor adds is a named
//! [`Feature`]. The host says in [`HostHello`] which features it offers; a plugin's manifest says
//! which ones it [requires](crate::Manifest::requires) (a host without one refuses it at load,
//! naming the feature and the reactor release that has it), and a plugin may use any other
//! feature optionally, checking [`Context::supports`](crate::Context::supports) first or getting
//! an [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) error from the call.
//!
//! Plugin authors use the typed methods of [`Context`](crate::Context); the host decodes
//! [`Request`] and answers with the matching type below. Every struct here takes defaults for
//! fields it does not receive and ignores fields it does not know, so both sides can grow.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Manifest, Phase};

/// A protocol version, `major.minor`; it travels as the string `"1.1"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Protocol {
    /// Changes only with a new binary layout: a plugin of another major never loads.
    pub major: u32,
    /// Grows with every release of `reactor-plugin-api` that adds features.
    pub minor: u32,
}

impl Protocol {
    /// Parses `"1.1"`.
    pub fn parse(text: &str) -> Option<Protocol> {
        let (major, minor) = text.split_once('.')?;
        Some(Protocol { major: major.parse().ok()?, minor: minor.parse().ok()? })
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Serialize for Protocol {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Protocol, D::Error> {
        let text = String::deserialize(deserializer)?;
        Protocol::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("not a protocol version: {text:?}")))
    }
}

impl Default for Protocol {
    fn default() -> Protocol {
        PROTOCOL
    }
}

/// The protocol this crate speaks: its own major and minor version.
pub const PROTOCOL: Protocol = Protocol { major: 1, minor: 2 };

/// A named capability of the host, added by a protocol minor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feature {
    /// The name plugins require it by (`images.pull`).
    pub name: &'static str,
    /// The protocol that added it.
    pub protocol: Protocol,
    /// The first reactor release that offers it.
    pub reactor: &'static str,
    /// What it gives a plugin.
    pub summary: &'static str,
}

/// Every feature this crate knows, oldest first. Protocol 1.0's requests need no feature: every
/// 1.x host answers them.
pub const FEATURES: &[Feature] = &[
    Feature {
        name: "images.pull",
        protocol: Protocol { major: 1, minor: 1 },
        reactor: "0.2.0",
        summary: "pull an image, with the registry's credentials",
    },
    Feature {
        name: "registry.access",
        protocol: Protocol { major: 1, minor: 1 },
        reactor: "0.2.0",
        summary: "pushes and pulls log in with Docker's config.json or a registry_secret_dir, and may mark a registry insecure",
    },
    Feature {
        name: "containers.options",
        protocol: Protocol { major: 1, minor: 1 },
        reactor: "0.2.0",
        summary: "run_container with env, user, entrypoint, a timeout and its output streamed to the log",
    },
    Feature {
        name: "workspace",
        protocol: Protocol { major: 1, minor: 1 },
        reactor: "0.2.0",
        summary: "a per-build workspace where plugins share state (atomic-reactor's plugin_workspace)",
    },
    Feature {
        name: "digests.record",
        protocol: Protocol { major: 1, minor: 1 },
        reactor: "0.2.0",
        summary: "record the digest of an image pushed by the plugin itself",
    },
    Feature {
        name: "logs.read",
        protocol: Protocol { major: 1, minor: 2 },
        reactor: "0.3.0",
        summary: "read the whole build log page by page (read_build_log, build_log), however long it is",
    },
];

/// The most of the build log a workflow snapshot carries in [`BuildResult::logs`]: 1 MiB of
/// lines, counting a newline after each. A longer log is there as its last lines that fit, with
/// [`BuildResult::logs_omitted`] saying how many lines were left out before them; the whole log
/// is read by pages ([`Request::ReadBuildLog`], `logs.read`).
pub const SNAPSHOT_LOG_BYTES: u64 = 1024 * 1024;

/// The most a page of the build log holds ([`Request::ReadBuildLog`]'s `max_bytes` is capped at
/// this): 1 MiB of lines, counting a newline after each.
pub const MAX_LOG_PAGE_BYTES: u64 = 1024 * 1024;

/// The level of a record sent through [`HostContext::log`](crate::ffi::HostContext::log), which
/// carries `log::Level as u8` (1 = error … 5 = trace; anything else reads as trace).
pub fn log_level(wire: u8) -> log::Level {
    match wire {
        1 => log::Level::Error,
        2 => log::Level::Warn,
        3 => log::Level::Info,
        4 => log::Level::Debug,
        _ => log::Level::Trace,
    }
}

/// The feature called `name`, if this crate knows it.
pub fn feature(name: &str) -> Option<&'static Feature> {
    FEATURES.iter().find(|f| f.name == name)
}

/// What the host says of itself: at the handshake, and again with every run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostHello {
    /// The reactor release (`0.2.0`).
    pub reactor_version: String,
    /// The `reactor-plugin-api` the host was built against.
    pub api_version: String,
    /// The protocol the host speaks.
    pub protocol: Protocol,
    /// The features it offers.
    pub features: Vec<String>,
}

/// A feature as a plugin's `reactor-plugin-api` knows it, sent with the module's hello so that a
/// host older than the feature can still name the release that has it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FeatureInfo {
    /// Its name.
    pub name: String,
    /// The protocol that added it.
    pub protocol: String,
    /// The first reactor release that offers it.
    pub reactor: String,
}

impl From<&Feature> for FeatureInfo {
    fn from(feature: &Feature) -> FeatureInfo {
        FeatureInfo {
            name: feature.name.to_owned(),
            protocol: feature.protocol.to_string(),
            reactor: feature.reactor.to_owned(),
        }
    }
}

/// What a module answers to the handshake.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModuleHello {
    /// The `reactor-plugin-api` the module was built against.
    pub api_version: String,
    /// The protocol it speaks.
    pub protocol: Protocol,
    /// Its plugins, in the order it runs them by index.
    pub plugins: Vec<Manifest>,
    /// What the module's `reactor-plugin-api` knows of the features its plugins require.
    pub features: Vec<FeatureInfo>,
}

/// What the host asks a module through [`PluginModule::call`](crate::ffi::PluginModule).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ModuleRequest {
    /// Runs the module's plugin number `index` (its place in [`ModuleHello::plugins`]), which
    /// has the key `key`: answered with the plugin's JSON result.
    Run {
        /// The plugin's place in the module's list: dispatch is by index, never by key.
        index: usize,
        /// The plugin's key, checked against the index.
        key: String,
        /// The phase it runs in.
        phase: Phase,
        /// Its args, checked against its schema.
        args: Value,
        /// The host, as at the handshake.
        host: HostHello,
    },
}

/// One request from a plugin to the host.
///
/// Protocol 1.0's requests are answered by every 1.x host. A request added later names its
/// [`Feature`] in [`Request::feature`]; [`Context`](crate::Context) checks that the host offers
/// it before sending.
// The variants' fields are named for what they hold; each variant's doc says what it does.
#[allow(missing_docs)]
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
    /// Pushes `name` (`registry/repo:tag`): answered with [`PushOutcome`]. Since protocol 1.1
    /// the host logs in with the registry's credentials; `registry_secret_dir` and `insecure`
    /// need `registry.access`.
    PushImage {
        name: String,
        /// A directory holding a `.dockercfg` for the registry (atomic-reactor's
        /// `registry_secret_dir`); else Docker's `config.json` is used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        registry_secret_dir: Option<String>,
        /// The registry is insecure (see [`RegistryAccess::insecure`]).
        #[serde(default, skip_serializing_if = "is_false")]
        insecure: bool,
    },
    /// Removes an image.
    RemoveImage { name: String, force: bool },
    /// Runs a container from `image` to completion: answered with [`RunOutput`]. The options
    /// need `containers.options`.
    RunContainer {
        image: String,
        command: Vec<String>,
        #[serde(default, skip_serializing_if = "ContainerOptions::is_default")]
        options: ContainerOptions,
    },
    /// Whether the build was cancelled: answered with a bool.
    IsCancelled,
    /// Builds the image on the engine from the workflow as it stands (buildstep only): answered
    /// with the [`BuildResult`], which also becomes the workflow's.
    BuildImage,
    /// Records the outcome of a build a plugin made itself, with another builder (buildstep only).
    SetBuildResult { result: BuildResult },
    /// Pulls `name` (`images.pull`): answered with [`PulledImage`], which is also recorded.
    PullImage {
        name: String,
        /// As for [`Request::PushImage`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        registry_secret_dir: Option<String>,
        /// As for [`Request::PushImage`].
        #[serde(default, skip_serializing_if = "is_false")]
        insecure: bool,
    },
    /// Reads the build's workspace entry `key` (`workspace`): answered with its JSON, `null`
    /// when unset.
    GetWorkspace { key: String },
    /// Sets the build's workspace entry `key` to `value` (`workspace`).
    SetWorkspace { key: String, value: Value },
    /// Records that `name` was pushed with `digest` (`digests.record`).
    RecordDigest { name: String, digest: String },
    /// Reads the build log from byte `offset` (0, or a page's `next_offset`), whole lines of at
    /// most `max_bytes` (capped at [`MAX_LOG_PAGE_BYTES`]; at least one line however long),
    /// counting a newline after each line (`logs.read`): answered with [`BuildLogPage`].
    ReadBuildLog { offset: u64, max_bytes: u64 },
}

impl Request {
    /// The feature a host must offer to answer this request; `None` for protocol 1.0's.
    pub fn feature(&self) -> Option<&'static str> {
        match self {
            Request::PullImage { .. } => Some("images.pull"),
            Request::PushImage { registry_secret_dir: Some(_), .. } | Request::PushImage { insecure: true, .. } => {
                Some("registry.access")
            }
            Request::RunContainer { options, .. } if !options.is_default() => Some("containers.options"),
            Request::GetWorkspace { .. } | Request::SetWorkspace { .. } => Some("workspace"),
            Request::RecordDigest { .. } => Some("digests.record"),
            Request::ReadBuildLog { .. } => Some("logs.read"),
            _ => None,
        }
    }

    /// The phases a plugin may make this request in; `None` for any phase.
    pub fn phases(&self) -> Option<&'static [Phase]> {
        match self {
            Request::SetDockerfile { .. } | Request::SetLabels { .. } | Request::SetBuildArgs { .. } => {
                Some(&[Phase::Prebuild])
            }
            Request::AddTags { .. } => Some(&[Phase::Prebuild, Phase::Buildstep, Phase::Prepublish, Phase::Postbuild]),
            Request::BuildImage | Request::SetBuildResult { .. } => Some(&[Phase::Buildstep]),
            _ => None,
        }
    }

    /// The rules a host applies before answering a plugin running in `phase`: once the build is
    /// `cancelled`, only exit plugins get more than `is_cancelled` answered, and a request is
    /// refused outside [`Request::phases`].
    pub fn admit(&self, phase: Phase, cancelled: bool) -> Result<(), crate::PluginError> {
        use crate::{ErrorKind, PluginError};
        if *self == Request::IsCancelled {
            return Ok(());
        }
        if cancelled && phase != Phase::Exit {
            return Err(PluginError::with_kind(ErrorKind::Cancelled, "the build was cancelled"));
        }
        match self.phases().filter(|phases| !phases.contains(&phase)) {
            Some(phases) => {
                let allowed: Vec<&str> = phases.iter().map(|p| p.name()).collect();
                Err(PluginError::with_kind(
                    ErrorKind::Host,
                    format!("a plugin may {} only in {}, not in {phase}", self.what(), allowed.join("/")),
                ))
            }
            None => Ok(()),
        }
    }

    /// What the request does, for refusals: "a plugin may {what} only in …".
    pub fn what(&self) -> &'static str {
        match self {
            Request::Workflow => "read the workflow",
            Request::SetDockerfile { .. } => "change the Dockerfile",
            Request::SetLabels { .. } => "set labels",
            Request::SetBuildArgs { .. } => "set build args",
            Request::AddTags { .. } => "add tags",
            Request::InspectImage { .. } => "inspect an image",
            Request::TagImage { .. } => "tag an image",
            Request::PushImage { .. } => "push an image",
            Request::RemoveImage { .. } => "remove an image",
            Request::RunContainer { .. } => "run a container",
            Request::IsCancelled => "ask whether the build was cancelled",
            Request::BuildImage => "build the image",
            Request::SetBuildResult { .. } => "set the build result",
            Request::PullImage { .. } => "pull an image",
            Request::GetWorkspace { .. } | Request::SetWorkspace { .. } => "use the workspace",
            Request::RecordDigest { .. } => "record a digest",
            Request::ReadBuildLog { .. } => "read the build log",
        }
    }
}

fn is_false(value: &bool) -> bool {
    !value
}

/// How a pull or push reaches its registry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistryAccess {
    /// A directory holding the registry's `.dockercfg` (atomic-reactor's `registry_secret_dir`);
    /// without one, Docker's `config.json` is used.
    pub secret_dir: Option<String>,
    /// The registry speaks plain HTTP or has a certificate that cannot be verified (atomic-reactor's
    /// `insecure`). The Docker engine decides how it talks to a registry (its `insecure-registries`;
    /// loopback registries are insecure by default), so the host checks that the engine treats the
    /// registry as insecure and refuses the request, saying what to change, when it does not.
    pub insecure: bool,
}

/// How [`Request::RunContainer`] runs its container (`containers.options`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerOptions {
    /// Environment variables, `NAME=value`.
    pub env: Vec<String>,
    /// The user to run as (`uid[:gid]` or a name).
    pub user: Option<String>,
    /// Replaces the image's entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Stops and fails the run after this many seconds.
    pub timeout_s: Option<f64>,
    /// Streams the container's output to reactor's log as it runs.
    pub stream_output: bool,
}

impl ContainerOptions {
    /// Whether nothing is set (a protocol 1.0 run).
    pub fn is_default(&self) -> bool {
        *self == ContainerOptions::default()
    }
}

/// What a pull brought.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PulledImage {
    /// The name pulled.
    pub name: String,
    /// The image's ID (`sha256:…`).
    pub id: String,
    /// The manifest digest the registry served, when known.
    pub digest: Option<String>,
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
    /// The Dockerfile's path on disk. Since protocol 1.2 it is reactor's own copy, in the
    /// context overlay (see [`Workflow::context_dir`]): a plugin may edit it directly, as
    /// atomic-reactor plugins edited `BUILD_DOCKERFILE_PATH`, or through
    /// [`Context::set_dockerfile`](crate::Context::set_dockerfile).
    pub dockerfile_path: String,
    /// The Dockerfile's current text.
    pub dockerfile: String,
    /// The build context directory (the Dockerfile's directory), where a plugin writes files the
    /// build should see.
    ///
    /// Since protocol 1.2 it is the context *overlay*, a directory reactor owns: it starts with
    /// only the Dockerfile, and the context sent to the engine is the overlay over
    /// [`source_context_dir`](Workflow::source_context_dir), a file here shadowing the source's
    /// file of the same relative path (`.dockerignore` included). To read a file of the
    /// context, whoever wrote it, use [`Workflow::context_file`]. (A host older than 1.2, or one
    /// running a plugin built before 1.2 in prebuild or buildstep, gives a writable copy of the
    /// source here, and the same path in `source_context_dir`.)
    pub context_dir: String,
    /// The build context directory in the source tree (protocol 1.2; empty from an older host).
    /// For a `path` source it is the user's own directory, used in place: it is read-only by
    /// contract, and a plugin writes to [`context_dir`](Workflow::context_dir) instead.
    pub source_context_dir: String,
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
    /// The images pulled through the host so far, in order (`images.pull`).
    pub pulled_images: Vec<PulledImage>,
    /// How the build ended, once it has (what exit plugins see).
    pub outcome: Option<Outcome>,
}

impl Workflow {
    /// The build context's file at `relative` (a path relative to the context directory), as the
    /// engine will see it: the overlay's file ([`context_dir`](Workflow::context_dir)) when one
    /// exists there, else the source's ([`source_context_dir`](Workflow::source_context_dir)).
    /// From a host older than protocol 1.2, which has no overlay, it is `context_dir/relative`.
    ///
    /// It is meant for files: a directory may be in both, and then the overlay's is returned,
    /// which holds only what plugins wrote.
    ///
    /// ```
    /// # use reactor_plugin_api::Workflow;
    /// let workflow = Workflow { context_dir: "/overlay".into(), source_context_dir: "/src".into(), ..Default::default() };
    /// // Nothing was written to the overlay: the source's file is the one.
    /// assert_eq!(workflow.context_file("no-such-file-here"), std::path::Path::new("/src/no-such-file-here"));
    /// ```
    pub fn context_file(&self, relative: impl AsRef<Path>) -> PathBuf {
        let overlay = Path::new(&self.context_dir).join(relative.as_ref());
        // An entry in the overlay, even a dangling symlink, shadows the source's, as in the build context.
        if self.source_context_dir.is_empty() || overlay.symlink_metadata().is_ok() {
            overlay
        } else {
            Path::new(&self.source_context_dir).join(relative)
        }
    }
}

/// How a build ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Outcome {
    /// How it ended.
    pub status: Status,
    /// The phase that failed, if one did.
    pub failed_phase: Option<String>,
    /// The plugin that failed, if one did (`dockerbuild` for the build itself).
    pub failed_plugin: Option<String>,
    /// The first error, the root cause.
    pub error: Option<String>,
}

/// How a build ended: the `status` of [`Outcome`] and of reactor's result document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Everything that must not fail succeeded.
    #[default]
    Succeeded,
    /// The build or a plugin that must not fail failed.
    Failed,
    /// SIGINT or SIGTERM stopped it.
    Cancelled,
    /// A status this side does not know (sent by a newer host).
    #[serde(other)]
    Unknown,
}

impl Status {
    /// The status's name in JSON (`succeeded`, …).
    pub fn name(self) -> &'static str {
        match self {
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
            Status::Unknown => "unknown",
        }
    }
}

/// Where the source came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceInfo {
    /// `git` or `path`.
    pub provider: String,
    /// The URI the build.json gave.
    pub uri: String,
    /// The source tree on disk: reactor's checkout of a `git` source, the user's own directory
    /// for a `path` source (since protocol 1.2; a copy before). Read-only by contract: what a
    /// plugin changes goes to [`Workflow::context_dir`].
    pub path: String,
    /// The resolved commit SHA, for git sources.
    pub commit: Option<String>,
}

/// What the build produced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BuildResult {
    /// The engine's output, one entry per line (`Step 1/4 : FROM scratch`, …). In a snapshot
    /// from a host of protocol 1.2 or later, only the last lines that fit in
    /// [`SNAPSHOT_LOG_BYTES`] (all of them for most builds): [`BuildResult::logs_omitted`] says
    /// how many were left out, and [`Context::build_log`](crate::Context::build_log) reads them
    /// all.
    pub logs: Vec<String>,
    /// How many lines the whole build log has (protocol 1.2; 0 from an older host, whose `logs`
    /// are the whole log).
    pub log_lines: u64,
    /// How many lines at the start of the log `logs` leaves out, to stay within
    /// [`SNAPSHOT_LOG_BYTES`] (protocol 1.2; 0 when `logs` is the whole log).
    pub logs_omitted: u64,
    /// The built image's ID (`sha256:…`), when the build succeeded.
    pub image_id: Option<String>,
    /// Whether the build failed.
    pub failed: bool,
    /// Why it failed (the engine's error line).
    pub fail_reason: Option<String>,
}

/// A page of the build log: the answer to [`Request::ReadBuildLog`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BuildLogPage {
    /// Whole lines, in order, without their newlines.
    pub lines: Vec<String>,
    /// Where the next page starts: the `offset` to ask for next.
    pub next_offset: u64,
    /// Whether this page ends the log.
    pub done: bool,
    /// How many lines the whole log has (reactor ≥ 0.3.0 says).
    pub total_lines: Option<u64>,
    /// The whole log's length as JSON strings: each line as `serde_json` writes it, quotes
    /// included ([`json_string_length`](crate::build_log::json_string_length)), summed over
    /// every line. With `total_lines` it gives the length of a JSON rendering of the log before
    /// reading it (reactor ≥ 0.3.0 says).
    pub total_json_bytes: Option<u64>,
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
    /// The container's exit code.
    pub exit_code: i64,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}
