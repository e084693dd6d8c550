//! A fake reactor for a plugin's unit tests (cargo feature `testing`).
//!
//! [`FakeHost`] answers a plugin's requests from a scripted [`Workflow`] and the engine answers a
//! test registers, with no Docker engine and no reactor. [`FakeHost::run`] runs a [`Plugin`] the
//! way reactor does: its [`Context`] sits on a real [`HostCtx`], so every request is encoded to
//! JSON and decoded again, the host features are checked before a request is sent, panics are
//! caught by the boundary's guard, and the plugin's `log` records are bridged to the host. The
//! fake keeps every request and log record for the test's assertions.
//!
//! Add the feature to the plugin's dev-dependencies:
//!
//! ```toml
//! [dev-dependencies]
//! reactor-plugin-api = { version = "1.2", features = ["testing"] }
//! ```
//!
//! Then, in the plugin's tests:
//!
//! ```
//! use reactor_plugin_api::protocol::Request;
//! use reactor_plugin_api::testing::FakeHost;
//! use reactor_plugin_api::{Args, Context, ErrorKind, Manifest, Phase, Plugin, PluginError, RunOutput, Workflow};
//! use serde_json::{json, Value};
//!
//! /// Runs the built image's `--version` and labels the image with what it printed.
//! struct VersionLabel;
//!
//! impl Plugin for VersionLabel {
//!     fn manifest(&self) -> Manifest {
//!         Manifest::new("version_label", [Phase::Prebuild], "1.0.0")
//!     }
//!
//!     fn run(&self, ctx: &Context, _args: Args) -> Result<Value, PluginError> {
//!         let base = ctx.workflow()?.base_image.unwrap_or_default();
//!         let output = ctx.run_container(&base, &["--version"])?;
//!         let version = output.stdout.trim().to_owned();
//!         log::info!("{base} is {version}");
//!         ctx.set_labels([("version".to_owned(), version.clone())].into())?;
//!         Ok(json!(version))
//!     }
//! }
//!
//! let workflow = Workflow { dockerfile: "FROM tool:1\n".into(), ..Default::default() };
//! let fake = FakeHost::new(Phase::Prebuild, workflow)
//!     .on_run_container(|_image, _command, _options| Ok(RunOutput { stdout: "tool 1.2\n".into(), ..Default::default() }));
//!
//! assert_eq!(fake.run(&VersionLabel, json!({})).expect("runs"), json!("tool 1.2"));
//! assert_eq!(fake.workflow().labels["version"], "tool 1.2");
//! let run = Request::RunContainer { image: "tool:1".into(), command: vec!["--version".into()], options: Default::default() };
//! assert_eq!(fake.requests()[..2], [Request::Workflow, run]);
//! assert!(fake.logs().iter().any(|record| record.message == "tool:1 is tool 1.2"));
//!
//! // The same plugin listed in another phase is refused, as reactor refuses it.
//! let err = FakeHost::new(Phase::Postbuild, Workflow::default()).run(&VersionLabel, json!({})).expect_err("prebuild only");
//! assert_eq!(err.kind, ErrorKind::Host);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RArc, RErr, ROk, RResult, RStr, RString};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::dockerfile::Dockerfile;
use crate::ffi::{HostContext, HostContext_TO, HostCtx};
use crate::protocol::{
    self, BuildLogPage, ContainerOptions, HostHello, Protocol, PulledImage, PushOutcome, RegistryAccess, Request,
};
use crate::{guard, host_log, Args, BuildResult, Context, ErrorKind, Phase, Plugin, PluginError, RunOutput, Workflow};

/// A scripted answer to one kind of request (by its `op`).
type Answer = Arc<dyn Fn(&Request) -> Result<Value, PluginError> + Send + Sync>;

/// What [`FakeHost::new`] says its reactor version is: it is not a reactor release.
pub const FAKE_REACTOR_VERSION: &str = "FakeHost";

/// A fake reactor that runs one plugin at a time on a scripted workflow; see the [module
/// docs](self).
///
/// How it answers each [`Request`], after checking the phase rules of [`Request::phases`] as
/// reactor does (a refusal is an [`ErrorKind::Host`] error, "a plugin may … only in …"):
///
/// - `workflow`: the workflow, as the requests before changed it, with the fake's phase; when the
///   fake offers `logs.read`, as reactor does since protocol 1.2, a build log longer than
///   [`protocol::SNAPSHOT_LOG_BYTES`] is cut to its last lines as reactor cuts it (`log_lines`
///   and `logs_omitted` say so);
/// - `read_build_log`: pages of the workflow's `build_result.logs`, cut as reactor cuts its
///   spooled log (a newline counted after each line), so [`Context::build_log`] reads them all;
/// - `set_dockerfile`, `set_labels`, `set_build_args`, `add_tags`, `set_build_result`,
///   `record_digest`: change the workflow (a new Dockerfile also sets its `base_image`);
/// - `get_workspace`, `set_workspace`: a workspace kept by the fake;
/// - `is_cancelled`: the flag of [`FakeHost::set_cancelled`] and [`CancelSwitch`]; once it is
///   set, every other request outside the exit phase is refused with [`ErrorKind::Cancelled`],
///   as reactor refuses it;
/// - `inspect_image`, `pull_image`, `push_image`, `run_container`, `build_image`: the test's
///   script ([`FakeHost::on_inspect`], [`FakeHost::on_pull`], [`FakeHost::on_push`],
///   [`FakeHost::on_run_container`], [`FakeHost::on_build`], [`FakeHost::answer`]), else an
///   [`ErrorKind::Host`] error saying nothing was scripted. As in reactor, a push's digest is
///   recorded in the workflow's `digests`, a pull in its `pulled_images` and a build's result
///   becomes its `build_result`;
/// - `tag_image`, `remove_image`: `null` unless scripted.
///
/// A scripted answer ([`FakeHost::answer`], [`FakeHost::answer_with`]) replaces the fake's own
/// handling of any request, so a test can also make, say, `set_labels` fail.
pub struct FakeHost {
    hello: HostHello,
    shared: Arc<Shared>,
}

/// What the fake and the host contexts of its runs share.
struct Shared {
    state: Mutex<State>,
    cancelled: CancelSwitch,
}

struct State {
    phase: Phase,
    workflow: Workflow,
    workspace: BTreeMap<String, Value>,
    answers: BTreeMap<String, Answer>,
    requests: Vec<Request>,
    logs: Vec<LogRecord>,
}

/// One log record a plugin emitted during [`FakeHost::run`].
///
/// Every level is recorded, trace included. Records from threads the plugin spawned go to the
/// most recent run's host, as in reactor; and if the test process installed a logger of its own
/// (`env_logger::init()`) before the first run, the records go to that logger instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// The record's level.
    pub level: log::Level,
    /// Its target: the plugin's module path unless the record named another.
    pub target: String,
    /// The formatted message.
    pub message: String,
}

/// Sets the fake's cancellation flag from anywhere, for instance from a scripted answer, to
/// cancel the build while the plugin runs. Get one from [`FakeHost::cancel_switch`].
///
/// A network plugin's test hands it to the thread of a test server that accepts the plugin's
/// connection and never answers: the server cancels once the plugin has connected, and the test
/// checks that the plugin returns an [`ErrorKind::Cancelled`] error instead of waiting for its
/// timeout (docs/writing-plugins.md, `logs_submitter`'s `a_cancelled_build_abandons_a_post_that_waits`).
#[derive(Clone, Debug, Default)]
pub struct CancelSwitch(Arc<AtomicBool>);

impl CancelSwitch {
    /// Cancels the build: `is_cancelled` answers `true` from now on.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the build is cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl FakeHost {
    /// A fake reactor in `phase`, whose build is `workflow` (its `phase` field is replaced by
    /// `phase`, and a `base_image` left unset is read from its `dockerfile`), offering every
    /// feature of [`protocol::FEATURES`] in protocol [`protocol::PROTOCOL`].
    pub fn new(phase: Phase, mut workflow: Workflow) -> FakeHost {
        if workflow.base_image.is_none() {
            workflow.base_image = base_image(&workflow.dockerfile);
        }
        let hello = HostHello {
            reactor_version: FAKE_REACTOR_VERSION.to_owned(),
            api_version: crate::API_VERSION.to_owned(),
            protocol: protocol::PROTOCOL,
            features: protocol::FEATURES.iter().map(|f| f.name.to_owned()).collect(),
        };
        let state = State {
            phase,
            workflow,
            workspace: BTreeMap::new(),
            answers: BTreeMap::new(),
            requests: Vec::new(),
            logs: Vec::new(),
        };
        FakeHost { hello, shared: Arc::new(Shared { state: Mutex::new(state), cancelled: CancelSwitch::default() }) }
    }

    /// Offers only these features, to play an older reactor: a plugin that requires another is
    /// refused by [`FakeHost::run`], and a request that needs another fails with
    /// [`ErrorKind::Unsupported`] in the plugin's [`Context`], before it is sent.
    pub fn features<'a>(mut self, features: impl IntoIterator<Item = &'a str>) -> FakeHost {
        self.hello.features = features.into_iter().map(str::to_owned).collect();
        self
    }

    /// Says it speaks `protocol` (the features are set by [`FakeHost::features`]).
    pub fn protocol(mut self, protocol: Protocol) -> FakeHost {
        self.hello.protocol = protocol;
        self
    }

    /// Says it is this reactor release, which errors about missing features name.
    pub fn reactor_version(mut self, version: &str) -> FakeHost {
        self.hello.reactor_version = version.to_owned();
        self
    }

    /// Lays the build's context out as reactor 0.3.0 and later do (protocol 1.2): `overlay`
    /// becomes the workflow's `context_dir`, where the plugin writes, and `source` its
    /// `source_context_dir`, the source's context directory, read-only by contract. Use two
    /// temporary directories and check after the run that `source` is as it was. Without this
    /// call the workflow's own `context_dir` and `source_context_dir` are used as given.
    pub fn context_dirs(self, overlay: impl AsRef<Path>, source: impl AsRef<Path>) -> FakeHost {
        {
            let mut state = self.state();
            state.workflow.context_dir = overlay.as_ref().display().to_string();
            state.workflow.source_context_dir = source.as_ref().display().to_string();
        }
        self
    }

    /// Sets the workspace entry `key`, as an earlier plugin would have.
    pub fn workspace(self, key: &str, value: Value) -> FakeHost {
        self.state().workspace.insert(key.to_owned(), value);
        self
    }

    /// Answers every request of the kind `op` (`"inspect_image"`, the `op` of its JSON) with
    /// `answer`.
    pub fn answer(self, op: &str, answer: Value) -> FakeHost {
        self.answer_with(op, move |_| Ok(answer.clone()))
    }

    /// Answers every request of the kind `op` with what `answer` makes of it: its JSON answer,
    /// or the error the host would send.
    pub fn answer_with(
        self,
        op: &str,
        answer: impl Fn(&Request) -> Result<Value, PluginError> + Send + Sync + 'static,
    ) -> FakeHost {
        self.state().answers.insert(op.to_owned(), Arc::new(answer));
        self
    }

    /// Answers `inspect_image` with what `inspect(name)` returns (the engine's JSON).
    pub fn on_inspect(self, inspect: impl Fn(&str) -> Result<Value, PluginError> + Send + Sync + 'static) -> FakeHost {
        self.answer_with("inspect_image", move |request| match request {
            Request::InspectImage { name } => inspect(name),
            other => Err(mismatch("inspect_image", other)),
        })
    }

    /// Answers `pull_image` with what `pull(name, access)` returns.
    pub fn on_pull(
        self,
        pull: impl Fn(&str, &RegistryAccess) -> Result<PulledImage, PluginError> + Send + Sync + 'static,
    ) -> FakeHost {
        self.answer_with("pull_image", move |request| match request {
            Request::PullImage { name, registry_secret_dir, insecure } => {
                to_json(pull(name, &RegistryAccess { secret_dir: registry_secret_dir.clone(), insecure: *insecure })?)
            }
            other => Err(mismatch("pull_image", other)),
        })
    }

    /// Answers `push_image` with what `push(name, access)` returns.
    pub fn on_push(
        self,
        push: impl Fn(&str, &RegistryAccess) -> Result<PushOutcome, PluginError> + Send + Sync + 'static,
    ) -> FakeHost {
        self.answer_with("push_image", move |request| match request {
            Request::PushImage { name, registry_secret_dir, insecure } => {
                to_json(push(name, &RegistryAccess { secret_dir: registry_secret_dir.clone(), insecure: *insecure })?)
            }
            other => Err(mismatch("push_image", other)),
        })
    }

    /// Answers `run_container` with what `run(image, command, options)` returns.
    pub fn on_run_container(
        self,
        run: impl Fn(&str, &[String], &ContainerOptions) -> Result<RunOutput, PluginError> + Send + Sync + 'static,
    ) -> FakeHost {
        self.answer_with("run_container", move |request| match request {
            Request::RunContainer { image, command, options } => to_json(run(image, command, options)?),
            other => Err(mismatch("run_container", other)),
        })
    }

    /// Answers `build_image` with what `build(workflow)` returns, given the workflow as it stands
    /// (Dockerfile, labels and build args as the prebuild plugins left them). A result with
    /// `failed: true` is a build that ran and failed; an error is a build that could not run.
    pub fn on_build(
        self,
        build: impl Fn(&Workflow) -> Result<BuildResult, PluginError> + Send + Sync + 'static,
    ) -> FakeHost {
        let shared = Arc::downgrade(&self.shared);
        self.answer_with("build_image", move |_| {
            // A weak handle: the answer lives in the state it reads, and must not keep it alive.
            let shared = shared.upgrade().ok_or_else(|| host_error("the FakeHost is gone"))?;
            let workflow = shared.snapshot();
            to_json(build(&workflow)?)
        })
    }

    /// The phase the fake runs plugins in.
    pub fn phase(&self) -> Phase {
        self.state().phase
    }

    /// Moves the fake to another phase, to run the next plugin of a sequence.
    pub fn set_phase(&self, phase: Phase) {
        self.state().phase = phase;
    }

    /// Sets or clears the build's cancellation.
    pub fn set_cancelled(&self, cancelled: bool) {
        self.shared.cancelled.0.store(cancelled, Ordering::SeqCst);
    }

    /// A handle that cancels the build from a scripted answer or another thread.
    pub fn cancel_switch(&self) -> CancelSwitch {
        self.shared.cancelled.clone()
    }

    /// What the fake says of itself to plugins.
    pub fn hello(&self) -> &HostHello {
        &self.hello
    }

    /// The workflow as the plugins' requests left it, with the results of the runs so far.
    pub fn workflow(&self) -> Workflow {
        self.shared.snapshot()
    }

    /// The workspace entry `key`, if a plugin (or the test) set it.
    pub fn workspace_entry(&self, key: &str) -> Option<Value> {
        self.state().workspace.get(key).cloned()
    }

    /// Every request the plugins sent, in order, refused ones included. A request the plugin's
    /// [`Context`] did not send (it needs a feature the fake does not offer) is not among them.
    pub fn requests(&self) -> Vec<Request> {
        self.state().requests.clone()
    }

    /// Every log record the plugins emitted, in order.
    pub fn logs(&self) -> Vec<LogRecord> {
        self.state().logs.clone()
    }

    /// Runs `plugin` with `args` as reactor runs it in the fake's phase, and returns its result,
    /// which is also stored in the workflow's `results` (a failure as `{"error", "kind"}`, as in
    /// reactor), where a plugin run after it sees it.
    ///
    /// A plugin whose manifest does not list the phase, or that requires a feature the fake does
    /// not offer, is refused as reactor refuses it before the build, with an error of kind
    /// [`ErrorKind::Host`] or [`ErrorKind::Unsupported`]. The args are not checked against the
    /// manifest's schema. A panic is caught and returned as an [`ErrorKind::Panicked`] error.
    pub fn run(&self, plugin: &dyn Plugin, args: Value) -> Result<Value, PluginError> {
        guard::install_recording_panic_hook();
        let manifest = guard::guard(|| Ok(plugin.manifest()))?;
        let phase = self.phase();
        if !manifest.phases.contains(&phase) {
            let phases: Vec<&str> = manifest.phases.iter().map(|p| p.name()).collect();
            return Err(host_error(format!(
                "plugin '{}' cannot run in {phase} (it runs in: {})",
                manifest.key,
                phases.join(", ")
            )));
        }
        if let Some(missing) = manifest.requires.iter().find(|f| !self.hello.features.contains(f)) {
            return Err(PluginError::with_kind(
                ErrorKind::Unsupported,
                format!(
                    "plugin '{}' needs the host feature '{missing}', which this reactor ({}, protocol {}) lacks",
                    manifest.key, self.hello.reactor_version, self.hello.protocol
                ),
            ));
        }
        let context = RArc::new(FakeHostContext {
            shared: self.shared.clone(),
            phase,
            reads_logs_by_pages: self.hello.features.iter().any(|f| f == "logs.read"),
        });
        let host: HostCtx = HostContext_TO::from_ptr(context, TD_Opaque);
        host_log::attach(&host);
        let outcome = guard::guard(|| plugin.run(&Context::new(host.clone(), self.hello.clone()), Args::new(args)));
        host_log::detach();
        let result = match &outcome {
            Ok(value) => value.clone(),
            Err(e) => json!({"error": e.message, "kind": e.kind}),
        };
        let mut state = self.state();
        state.workflow.results.entry(phase.name().to_owned()).or_default().insert(manifest.key, result);
        outcome
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state()
    }
}

impl fmt::Debug for FakeHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("FakeHost")
            .field("hello", &self.hello)
            .field("phase", &state.phase)
            .field("scripted", &state.answers.keys().collect::<Vec<_>>())
            .field("requests", &state.requests.len())
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic in a plugin never holds this lock; a poisoned lock still holds a usable state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self) -> Workflow {
        let state = self.state();
        Workflow { phase: Some(state.phase), ..state.workflow.clone() }
    }
}

/// The host side of one run on the fake: what the plugin's [`Context`] calls.
#[derive(Clone)]
struct FakeHostContext {
    shared: Arc<Shared>,
    phase: Phase,
    /// Plays a host with `logs.read`, whose snapshots keep only the log's last lines; an older
    /// host's hold it whole.
    reads_logs_by_pages: bool,
}

impl FakeHostContext {
    fn answer(&self, request: Request) -> Result<Value, PluginError> {
        self.shared.state().requests.push(request.clone());
        let cancelled = self.shared.cancelled.is_cancelled();
        // As in reactor: the same rules of phase and cancellation.
        request.admit(self.phase, cancelled)?;
        let op = op_of(&request);
        // Cloned out of the lock: the answer may read the state itself (on_build does).
        let scripted = self.shared.state().answers.get(&op).cloned();
        if let Some(answer) = scripted {
            let value = answer(&request)?;
            self.record_engine_answer(&request, &value)?;
            return Ok(value);
        }
        let mut state = self.shared.state();
        let workflow = &mut state.workflow;
        match request {
            Request::Workflow => {
                drop(state);
                let mut workflow = self.shared.snapshot();
                if let Some(build) = workflow.build_result.as_mut().filter(|_| self.reads_logs_by_pages) {
                    keep_snapshot_tail(build);
                }
                to_json(workflow)
            }
            Request::ReadBuildLog { offset, max_bytes } => {
                let build =
                    workflow.build_result.as_ref().ok_or_else(|| host_error("the image has not been built yet"))?;
                to_json(page_of(&build.logs, offset, max_bytes)?)
            }
            Request::SetDockerfile { text } => {
                workflow.base_image = base_image(&text);
                workflow.dockerfile = text;
                Ok(Value::Null)
            }
            Request::SetLabels { labels } => {
                workflow.labels.extend(labels);
                Ok(Value::Null)
            }
            Request::SetBuildArgs { args } => {
                workflow.build_args.extend(args);
                Ok(Value::Null)
            }
            Request::AddTags { tags } => {
                for tag in tags {
                    if !workflow.tags.contains(&tag) {
                        workflow.tags.push(tag);
                    }
                }
                Ok(Value::Null)
            }
            Request::SetBuildResult { result } => {
                workflow.build_result = Some(result);
                Ok(Value::Null)
            }
            Request::RecordDigest { name, digest } => {
                workflow.digests.insert(name, digest);
                Ok(Value::Null)
            }
            Request::GetWorkspace { key } => Ok(state.workspace.get(&key).cloned().unwrap_or(Value::Null)),
            Request::SetWorkspace { key, value } => {
                state.workspace.insert(key, value);
                Ok(Value::Null)
            }
            Request::TagImage { .. } | Request::RemoveImage { .. } => Ok(Value::Null),
            Request::IsCancelled => Ok(json!(cancelled)),
            Request::InspectImage { .. }
            | Request::PullImage { .. }
            | Request::PushImage { .. }
            | Request::RunContainer { .. }
            | Request::BuildImage => Err(not_scripted(&request, &op)),
        }
    }

    /// Keeps in the workflow what reactor keeps of an engine call's answer.
    fn record_engine_answer(&self, request: &Request, value: &Value) -> Result<(), PluginError> {
        match request {
            Request::PushImage { name, .. } => {
                let outcome: PushOutcome = decode(request, value)?;
                if let Some(digest) = outcome.digest {
                    self.shared.state().workflow.digests.insert(name.clone(), digest);
                }
            }
            Request::PullImage { .. } => {
                let pulled: PulledImage = decode(request, value)?;
                self.shared.state().workflow.pulled_images.push(pulled);
            }
            Request::BuildImage => {
                let result: BuildResult = decode(request, value)?;
                self.shared.state().workflow.build_result = Some(result);
            }
            _ => {}
        }
        Ok(())
    }
}

impl HostContext for FakeHostContext {
    fn log(&self, level: u8, target: RStr<'_>, message: RStr<'_>) {
        let level = crate::protocol::log_level(level);
        let record = LogRecord { level, target: target.as_str().to_owned(), message: message.as_str().to_owned() };
        self.shared.state().logs.push(record);
    }

    fn max_level(&self) -> u8 {
        // Everything, so a test can assert on debug and trace lines too.
        log::LevelFilter::Trace as u8
    }

    fn call(&self, request: RStr<'_>) -> RResult<RString, RString> {
        let answer = serde_json::from_str::<Request>(request.as_str())
            .map_err(|e| host_error(format!("the FakeHost does not understand the request ({e})")))
            .and_then(|request| self.answer(request))
            .and_then(|value| serde_json::to_string(&value).map_err(host_error));
        match answer {
            Ok(json) => ROk(json.into()),
            Err(e) => RErr(e.to_json().into()),
        }
    }
}

/// What reactor's snapshot keeps of a build log: the last lines that fit in
/// [`protocol::SNAPSHOT_LOG_BYTES`], a newline counted after each, with the total and the lines
/// left out.
fn keep_snapshot_tail(build: &mut BuildResult) {
    let total = build.logs.len();
    let mut size = 0;
    let kept = build
        .logs
        .iter()
        .rev()
        .take_while(|line| {
            size += line.len() as u64 + 1;
            size <= protocol::SNAPSHOT_LOG_BYTES
        })
        .count();
    build.logs.drain(..total - kept);
    build.log_lines = total as u64;
    build.logs_omitted = (total - kept) as u64;
}

/// The page of `lines` at byte `offset`, as reactor cuts its spooled log (a newline after each
/// line).
fn page_of(lines: &[String], offset: u64, max_bytes: u64) -> Result<BuildLogPage, PluginError> {
    let max_bytes = max_bytes.min(protocol::MAX_LOG_PAGE_BYTES);
    let mut start = 0u64;
    let mut rest = lines.iter();
    while start < offset {
        match rest.next() {
            Some(line) => start += line.len() as u64 + 1,
            None => break,
        }
    }
    if start != offset {
        return Err(host_error(format!(
            "the build log has no line at offset {offset}: read from 0, then from each page's next_offset"
        )));
    }
    let mut page = BuildLogPage {
        next_offset: offset,
        total_lines: Some(lines.len() as u64),
        total_json_bytes: Some(lines.iter().map(|line| crate::build_log::json_string_length(line)).sum()),
        ..Default::default()
    };
    for line in rest.by_ref() {
        let size = line.len() as u64 + 1;
        if !page.lines.is_empty() && page.next_offset - offset + size > max_bytes {
            return Ok(page);
        }
        page.lines.push(line.clone());
        page.next_offset += size;
    }
    page.done = true;
    Ok(page)
}

/// The image the Dockerfile's final stage builds from, as reactor's workflow snapshot says.
fn base_image(dockerfile: &str) -> Option<String> {
    Dockerfile::parse(dockerfile).ok()?.base_image().map(str::to_owned)
}

/// The request's `op`, the name scripted answers are registered under.
fn op_of(request: &Request) -> String {
    serde_json::to_value(request).ok().and_then(|v| v.get("op")?.as_str().map(str::to_owned)).unwrap_or_default()
}

fn not_scripted(request: &Request, op: &str) -> PluginError {
    let method = match request {
        Request::InspectImage { .. } => "on_inspect",
        Request::PullImage { .. } => "on_pull",
        Request::PushImage { .. } => "on_push",
        Request::RunContainer { .. } => "on_run_container",
        _ => "on_build",
    };
    host_error(format!(
        "the FakeHost cannot {}: nothing was scripted for '{op}' (script it with FakeHost::{method} or FakeHost::answer)",
        request.what()
    ))
}

fn mismatch(op: &str, request: &Request) -> PluginError {
    host_error(format!("the FakeHost's answer to '{op}' was asked to answer '{}'", op_of(request)))
}

fn decode<T: DeserializeOwned>(request: &Request, value: &Value) -> Result<T, PluginError> {
    serde_json::from_value(value.clone()).map_err(|e| {
        host_error(format!("the FakeHost's scripted answer to '{}' is not what reactor answers: {e}", op_of(request)))
    })
}

fn host_error(message: impl fmt::Display) -> PluginError {
    PluginError::with_kind(ErrorKind::Host, message)
}

fn to_json(value: impl serde::Serialize) -> Result<Value, PluginError> {
    serde_json::to_value(value).map_err(host_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Manifest;

    /// A plugin that runs in every phase and does what the test says.
    struct Probe<F>(F);

    impl<F: Fn(&Context) -> Result<Value, PluginError> + Send + Sync + 'static> Plugin for Probe<F> {
        fn manifest(&self) -> Manifest {
            Manifest::new("probe", Phase::ALL, "1.0.0")
        }

        fn run(&self, ctx: &Context, _args: Args) -> Result<Value, PluginError> {
            (self.0)(ctx)
        }
    }

    fn probe<F: Fn(&Context) -> Result<Value, PluginError> + Send + Sync + 'static>(f: F) -> Probe<F> {
        Probe(f)
    }

    fn prebuild() -> FakeHost {
        let workflow = Workflow {
            image: "app:1".into(),
            dockerfile: "FROM busybox:1.36 AS base\nFROM base\nFROM fedora:40\n".into(),
            ..Default::default()
        };
        FakeHost::new(Phase::Prebuild, workflow)
    }

    #[test]
    fn the_workflow_is_the_script_with_the_phase_and_changes_as_requested() {
        let fake = prebuild();
        let seen = fake
            .run(
                &probe(|ctx| {
                    let before = ctx.workflow()?;
                    ctx.set_dockerfile("FROM alpine:3\n")?;
                    ctx.set_labels([("a".to_owned(), "1".to_owned())].into())?;
                    ctx.set_build_args([("V".to_owned(), "2".to_owned())].into())?;
                    ctx.add_tags(&["app:x", "app:y", "app:x"])?;
                    Ok(json!({"before": before.base_image, "phase": before.phase, "after": ctx.workflow()?.base_image}))
                }),
                json!({}),
            )
            .expect("runs");
        assert_eq!(seen, json!({"before": "fedora:40", "phase": "prebuild", "after": "alpine:3"}));
        let workflow = fake.workflow();
        assert_eq!(workflow.dockerfile, "FROM alpine:3\n");
        assert_eq!((workflow.labels["a"].as_str(), workflow.build_args["V"].as_str()), ("1", "2"));
        assert_eq!(workflow.tags, ["app:x", "app:y"]);
        assert_eq!(workflow.results["prebuild"]["probe"], seen);
    }

    #[test]
    fn a_plugin_writes_to_the_overlay_and_reads_through_context_file() {
        let scratch = scratch_dir();
        let (overlay, source) = (scratch.join("overlay"), scratch.join("source"));
        std::fs::create_dir_all(&overlay).expect("mkdir");
        std::fs::create_dir_all(&source).expect("mkdir");
        std::fs::write(source.join("version.txt"), "1.0\n").expect("write");
        std::fs::write(source.join("notes.txt"), "from the source\n").expect("write");
        std::fs::write(overlay.join("notes.txt"), "from a plugin\n").expect("write");
        let fake = prebuild().context_dirs(&overlay, &source);
        let seen = fake
            .run(
                &probe(|ctx| {
                    let workflow = ctx.workflow()?;
                    let version = std::fs::read_to_string(workflow.context_file("version.txt"))?;
                    std::fs::write(Path::new(&workflow.context_dir).join("generated.txt"), version.trim())?;
                    let notes = std::fs::read_to_string(workflow.context_file("notes.txt"))?;
                    Ok(json!({"version": version, "notes": notes,
                              "generated": workflow.context_file("generated.txt").starts_with(&workflow.context_dir)}))
                }),
                json!({}),
            )
            .expect("runs");
        assert_eq!(seen, json!({"version": "1.0\n", "notes": "from a plugin\n", "generated": true}));
        assert_eq!(std::fs::read_to_string(overlay.join("generated.txt")).expect("written"), "1.0");
        assert!(!source.join("generated.txt").exists(), "the source is untouched");
        // From a host without an overlay (older than 1.2), the context directory is the one.
        let old = Workflow { context_dir: source.display().to_string(), ..Default::default() };
        assert_eq!(old.context_file("notes.txt"), source.join("notes.txt"));
        let _ = std::fs::remove_dir_all(&scratch);
    }

    /// A fresh directory under the system's temp dir (this crate has no tempfile dependency).
    fn scratch_dir() -> std::path::PathBuf {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("reactor-fake-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    #[test]
    fn phase_rules_are_reactors() {
        let fake = prebuild();
        fake.set_phase(Phase::Postbuild);
        let err = fake
            .run(&probe(|ctx| ctx.set_labels(BTreeMap::new()).map(|()| Value::Null)), json!({}))
            .expect_err("labels are prebuild only");
        assert_eq!(err.kind, ErrorKind::Host);
        assert_eq!(err.message, "a plugin may set labels only in prebuild, not in postbuild");
        fake.set_phase(Phase::Exit);
        let err =
            fake.run(&probe(|ctx| ctx.add_tags(&["t"]).map(|()| Value::Null)), json!({})).expect_err("no tags in exit");
        assert_eq!(err.message, "a plugin may add tags only in prebuild/buildstep/prepublish/postbuild, not in exit");
        // A failure is the plugin's result, as in reactor.
        assert_eq!(fake.workflow().results["exit"]["probe"], json!({"error": err.message, "kind": "host"}));
        let err = prebuild()
            .run(&probe(|ctx| ctx.build_image().map(|_| Value::Null)), json!({}))
            .expect_err("builds are buildstep only");
        assert_eq!(err.message, "a plugin may build the image only in buildstep, not in prebuild");
    }

    #[test]
    fn a_plugin_is_refused_outside_its_phases_and_without_a_required_feature() {
        struct Puller;
        impl Plugin for Puller {
            fn manifest(&self) -> Manifest {
                Manifest::new("puller", [Phase::Prebuild], "1").requires(["images.pull"])
            }
            fn run(&self, _ctx: &Context, _args: Args) -> Result<Value, PluginError> {
                Ok(Value::Null)
            }
        }
        let err = FakeHost::new(Phase::Exit, Workflow::default()).run(&Puller, json!({})).expect_err("not in exit");
        assert_eq!(
            (err.kind, err.message.as_str()),
            (ErrorKind::Host, "plugin 'puller' cannot run in exit (it runs in: prebuild)")
        );
        let older = prebuild().features([]).protocol(Protocol { major: 1, minor: 0 }).reactor_version("0.1.0");
        let err = older.run(&Puller, json!({})).expect_err("needs images.pull");
        assert_eq!(err.kind, ErrorKind::Unsupported);
        assert_eq!(
            err.message,
            "plugin 'puller' needs the host feature 'images.pull', which this reactor (0.1.0, protocol 1.0) lacks"
        );
        assert!(older.requests().is_empty());
    }

    #[test]
    fn an_older_host_is_played_by_its_features() {
        let fake = prebuild().features(["workspace"]);
        let seen = fake
            .run(
                &probe(|ctx| {
                    let err = ctx.pull_image("busybox", &RegistryAccess::default()).expect_err("no images.pull");
                    ctx.set_workspace("probe", &json!({"n": 1}))?;
                    Ok(json!([ctx.supports("images.pull"), ctx.supports("workspace"), err.kind, err.message]))
                }),
                json!({}),
            )
            .expect("runs");
        let message = "cannot pull an image: this reactor (FakeHost, protocol 1.2) does not offer the feature 'images.pull'; upgrade reactor to ≥ 0.2.0 (protocol 1.1)";
        assert_eq!(seen, json!([false, true, "unsupported", message]));
        // The refused request never reached the host.
        assert_eq!(fake.requests(), [Request::SetWorkspace { key: "probe".into(), value: json!({"n": 1}) }]);
    }

    #[test]
    fn engine_requests_answer_from_the_script_and_are_recorded_as_reactor_records_them() {
        let fake = FakeHost::new(Phase::Buildstep, Workflow { image: "app:1".into(), ..Default::default() })
            .on_inspect(|name| Ok(json!({"Id": format!("sha256:{name}")})))
            .on_pull(|name, access| {
                Ok(PulledImage { name: name.into(), id: "sha256:p".into(), digest: access.secret_dir.clone() })
            })
            .on_push(|name, _| Ok(PushOutcome { digest: Some(format!("sha256:{}", name.len())) }))
            .on_run_container(|image, command, options| {
                Ok(RunOutput {
                    exit_code: 3,
                    stdout: format!("{image} {}", command.join(" ")),
                    stderr: options.env.join(","),
                })
            })
            .on_build(|workflow| {
                Ok(BuildResult { image_id: Some(format!("id-of-{}", workflow.image)), ..Default::default() })
            });
        let seen = fake
            .run(
                &probe(|ctx| {
                    let options = ContainerOptions { env: vec!["A=1".into()], ..Default::default() };
                    let output = ctx.run_container_with("busybox", &["echo", "hi"], options)?;
                    Ok(json!({
                        "inspect": ctx.inspect_image("busybox")?,
                        "pull": ctx.pull_image("r.example/a:1", &RegistryAccess { secret_dir: Some("/secrets".into()), insecure: false })?,
                        "push": ctx.push_image("r.example/a:2")?,
                        "run": output,
                        "build": ctx.build_image()?.image_id,
                    }))
                }),
                json!({}),
            )
            .expect("runs");
        assert_eq!(seen["inspect"], json!({"Id": "sha256:busybox"}));
        assert_eq!(seen["pull"], json!({"name": "r.example/a:1", "id": "sha256:p", "digest": "/secrets"}));
        assert_eq!(seen["push"], json!("sha256:13"));
        assert_eq!(seen["run"], json!({"exit_code": 3, "stdout": "busybox echo hi", "stderr": "A=1"}));
        assert_eq!(seen["build"], json!("id-of-app:1"));
        let workflow = fake.workflow();
        assert_eq!(workflow.digests["r.example/a:2"], "sha256:13");
        assert_eq!(workflow.pulled_images[0].name, "r.example/a:1");
        assert_eq!(workflow.build_result.and_then(|r| r.image_id).as_deref(), Some("id-of-app:1"));
    }

    #[test]
    fn an_unscripted_engine_request_is_a_host_error_naming_it() {
        let fake = prebuild();
        let err = fake.run(&probe(|ctx| ctx.run_container("busybox", &["true"]).map(|_| Value::Null)), json!({}));
        let err = err.expect_err("nothing scripted");
        assert_eq!(err.kind, ErrorKind::Host);
        assert_eq!(
            err.message,
            "the FakeHost cannot run a container: nothing was scripted for 'run_container' (script it with FakeHost::on_run_container or FakeHost::answer)"
        );
        // Tagging and removing need no script.
        let fine = fake
            .run(&probe(|ctx| ctx.tag_image("a", "b").and(ctx.remove_image("b", true)).map(|()| json!(1))), json!({}));
        assert_eq!(fine.expect("tag and remove"), json!(1));
    }

    #[test]
    fn a_generic_answer_replaces_any_handling_and_a_wrong_one_is_named() {
        let fake = prebuild()
            .answer("inspect_image", json!({"Id": "sha256:x"}))
            .answer_with("set_labels", |_| Err(PluginError::with_kind(ErrorKind::Host, "labels are off today")))
            .answer("push_image", json!("not an outcome"));
        let inspect = fake.run(&probe(|ctx| ctx.inspect_image("anything")), json!({})).expect("scripted");
        assert_eq!(inspect, json!({"Id": "sha256:x"}));
        let err = fake
            .run(&probe(|ctx| ctx.set_labels(BTreeMap::new()).map(|()| Value::Null)), json!({}))
            .expect_err("scripted to fail");
        assert_eq!(err.message, "labels are off today");
        let err = fake
            .run(&probe(|ctx| ctx.push_image("r/a").map(|_| Value::Null)), json!({}))
            .expect_err("answer of the wrong shape");
        assert!(
            err.message.starts_with("the FakeHost's scripted answer to 'push_image' is not what reactor answers"),
            "{err}"
        );
    }

    #[test]
    fn workspace_and_digests_keep_state_across_runs() {
        let fake = prebuild().workspace("earlier", json!(["x"]));
        fake.run(
            &probe(|ctx| {
                let earlier: Option<Vec<String>> = ctx.workspace("earlier")?;
                ctx.set_workspace("probe", &earlier)?;
                ctx.record_digest("r/a:1", "sha256:d")?;
                Ok(Value::Null)
            }),
            json!({}),
        )
        .expect("runs");
        let unset = fake.run(&probe(|ctx| ctx.workspace::<Value>("nobody").map(|v| json!(v.is_none()))), json!({}));
        assert_eq!(unset.expect("runs"), json!(true));
        assert_eq!(fake.workspace_entry("probe"), Some(json!(["x"])));
        assert_eq!(fake.workflow().digests["r/a:1"], "sha256:d");
    }

    #[test]
    fn cancellation_follows_the_flag_and_refuses_all_but_exit_plugins() {
        let fake = prebuild().on_run_container(|_, _, _| Ok(RunOutput::default()));
        let switch = fake.cancel_switch();
        let fake = fake.answer_with("tag_image", move |_| {
            switch.cancel();
            Ok(Value::Null)
        });
        let seen = fake
            .run(
                &probe(|ctx| {
                    let before = ctx.is_cancelled();
                    ctx.tag_image("a", "b")?;
                    let err = ctx.run_container("busybox", &[]).expect_err("cancelled");
                    Ok(json!([before, ctx.is_cancelled(), err.kind]))
                }),
                json!({}),
            )
            .expect("runs");
        assert_eq!(seen, json!([false, true, "cancelled"]));
        fake.set_phase(Phase::Exit);
        assert!(fake.run(&probe(|ctx| ctx.workflow().map(|_| Value::Null)), json!({})).is_ok());
        fake.set_cancelled(false);
        fake.set_phase(Phase::Postbuild);
        assert_eq!(fake.run(&probe(|ctx| Ok(json!(ctx.is_cancelled()))), json!({})).expect("runs"), json!(false));
    }

    #[test]
    fn requests_and_log_records_are_kept_in_order() {
        let fake = prebuild();
        fake.run(
            &probe(|ctx| {
                log::info!("reading {}", "the workflow");
                ctx.workflow()?;
                log::debug!(target: "probe::detail", "done");
                Ok(Value::Null)
            }),
            json!({}),
        )
        .expect("runs");
        assert_eq!(fake.requests(), [Request::Workflow]);
        let ours: Vec<LogRecord> = fake
            .logs()
            .into_iter()
            .filter(|r| r.target.starts_with(module_path!()) || r.target.starts_with("probe"))
            .collect();
        assert_eq!(
            ours,
            [
                LogRecord {
                    level: log::Level::Info,
                    target: module_path!().into(),
                    message: "reading the workflow".into()
                },
                LogRecord { level: log::Level::Debug, target: "probe::detail".into(), message: "done".into() },
            ]
        );
    }

    #[test]
    fn a_panic_is_a_panicked_error_with_its_place_as_at_the_boundary() {
        let line = line!() + 1;
        let err = prebuild().run(&probe(|_| panic!("kaboom {}", 7)), json!({})).expect_err("panicked");
        assert_eq!(err.kind, ErrorKind::Panicked);
        assert_eq!(err.message, format!("panicked at {}:{line}: kaboom 7", file!()));
    }

    fn built(logs: Vec<String>) -> FakeHost {
        let build = BuildResult { logs, ..Default::default() };
        FakeHost::new(Phase::Postbuild, Workflow { build_result: Some(build), ..Default::default() })
    }

    /// 3000 lines of 1000 bytes and some: about 3 MiB, three pages and more.
    fn long_log() -> Vec<String> {
        (0..3000).map(|n| format!("{n:>5} {}", "é".repeat(497))).collect()
    }

    #[test]
    fn the_build_log_is_read_by_pages_of_whole_lines() {
        let logs = long_log();
        let fake = built(logs.clone());
        let read = fake
            .run(&probe(|ctx| Ok(json!(ctx.build_log().collect::<Result<Vec<String>, PluginError>>()?))), json!({}))
            .expect("reads");
        assert_eq!(read, json!(logs));
        let offsets: Vec<u64> = fake
            .requests()
            .iter()
            .map(|r| match r {
                Request::ReadBuildLog { offset, max_bytes } => {
                    assert_eq!(*max_bytes, protocol::MAX_LOG_PAGE_BYTES);
                    *offset
                }
                other => panic!("only pages are read: {other:?}"),
            })
            .collect();
        let line = logs[0].len() as u64 + 1;
        let per_page = protocol::MAX_LOG_PAGE_BYTES / line;
        assert_eq!(offsets, [0, per_page * line, 2 * per_page * line]);

        // One page by hand: whole lines within max_bytes, at least one, and a wrong offset named.
        let pages = fake
            .run(
                &probe(move |ctx| {
                    let first = ctx.read_build_log(0, 10)?;
                    let second = ctx.read_build_log(first.next_offset, 3 * line)?;
                    let err = ctx.read_build_log(5, 100).expect_err("not a line's start");
                    let end = ctx.read_build_log(3000 * line, 100)?;
                    Ok(json!([first, second.lines.len(), second.next_offset, second.done, err.message, end]))
                }),
                json!({}),
            )
            .expect("reads");
        // Every page says the whole log's totals; a line is `line` bytes with its newline, two
        // more as a JSON string (its quotes, no escapes).
        let totals = json!({"total_lines": logs.len(), "total_json_bytes": logs.len() as u64 * (line + 1)});
        let page = |lines: Value, next_offset: u64, done: bool| {
            let mut page = json!({"lines": lines, "next_offset": next_offset, "done": done});
            page.as_object_mut().expect("an object").extend(totals.as_object().expect("an object").clone());
            page
        };
        assert_eq!(pages[0], page(json!([logs[0]]), line, false));
        assert_eq!([&pages[1], &pages[2], &pages[3]], [&json!(3), &json!(4 * line), &json!(false)]);
        assert_eq!(pages[4], "the build log has no line at offset 5: read from 0, then from each page's next_offset");
        assert_eq!(pages[5], page(json!([]), 3000 * line, true));
    }

    #[test]
    fn the_snapshot_keeps_the_logs_last_mebibyte_and_says_what_it_left_out() {
        let logs = long_log();
        let line = logs[0].len() as u64 + 1;
        let kept = (protocol::SNAPSHOT_LOG_BYTES / line) as usize;
        let fake = built(logs.clone());
        let seen = fake.run(&probe(|ctx| Ok(json!(ctx.build_result()?))), json!({})).expect("reads");
        let seen: BuildResult = serde_json::from_value(seen).expect("a build result");
        assert_eq!((seen.log_lines, seen.logs_omitted), (3000, (3000 - kept) as u64));
        assert_eq!(seen.logs, logs[3000 - kept..]);
        // A short log is whole.
        let fake = built(vec!["Step 1/1 : FROM scratch".into()]);
        let seen = fake.run(&probe(|ctx| Ok(json!(ctx.build_result()?))), json!({})).expect("reads");
        assert_eq!(seen["logs"], json!(["Step 1/1 : FROM scratch"]));
        assert_eq!((seen["log_lines"].as_u64(), seen["logs_omitted"].as_u64()), (Some(1), Some(0)));
    }

    #[test]
    fn an_older_host_gives_the_build_log_from_the_snapshot() {
        let fake = built(vec!["a".into(), "b".into()]).features([]).protocol(Protocol { major: 1, minor: 1 });
        let seen = fake
            .run(
                &probe(|ctx| {
                    let lines = ctx.build_log().collect::<Result<Vec<String>, PluginError>>()?;
                    let err = ctx.read_build_log(0, 100).expect_err("no logs.read");
                    Ok(json!([lines, err.kind]))
                }),
                json!({}),
            )
            .expect("reads");
        assert_eq!(seen, json!([["a", "b"], "unsupported"]));
        assert_eq!(fake.requests(), [Request::Workflow]);
    }

    #[test]
    fn before_the_build_the_log_is_an_error_and_then_ends() {
        for fake in [
            FakeHost::new(Phase::Exit, Workflow::default()),
            FakeHost::new(Phase::Exit, Workflow::default()).features([]),
        ] {
            let seen = fake
                .run(
                    &probe(|ctx| {
                        let mut lines = ctx.build_log();
                        let err = lines.next().and_then(Result::err).expect("an error");
                        Ok(json!([err.kind, err.message, lines.next().is_none()]))
                    }),
                    json!({}),
                )
                .expect("runs");
            assert_eq!(seen, json!(["host", "the image has not been built yet", true]));
        }
    }

    #[test]
    fn the_json_reader_renders_what_serde_json_writes_with_its_length_known_first() {
        use std::io::Read;
        let mut logs = long_log();
        logs.push("quotes \" and \\ and \t\r and \u{1}".into());
        for fake in [built(logs.clone()), built(logs.clone()).features([])] {
            let seen = fake
                .run(
                    &probe(|ctx| {
                        let mut reader = crate::build_log::JsonReader::new(ctx, "logs")?;
                        let (length, lines) = (reader.len(), reader.lines());
                        let mut body = Vec::new();
                        // Small reads, as an HTTP client's buffer takes them; each is filled, as
                        // the client sends a read as one chunk.
                        let mut buffer = [0u8; 777];
                        let mut short_reads = 0;
                        loop {
                            let n = reader.read(&mut buffer).map_err(PluginError::from)?;
                            if n == 0 {
                                break;
                            }
                            short_reads += usize::from(n < buffer.len());
                            body.extend_from_slice(&buffer[..n]);
                        }
                        assert!(short_reads <= 1, "only the last read is short");
                        Ok(json!([length, lines, String::from_utf8(body).map_err(PluginError::from)?]))
                    }),
                    json!({}),
                )
                .expect("renders");
            let want = serde_json::to_string(&json!({"logs": logs})).expect("JSON");
            assert_eq!(seen[0], json!(want.len()));
            assert_eq!(seen[1], json!(logs.len()));
            assert!(seen[2] == json!(want), "the body is serde_json's");
        }
        // An empty log is an empty list.
        let seen = built(Vec::new())
            .run(
                &probe(|ctx| {
                    let mut body = String::new();
                    let mut reader = crate::build_log::JsonReader::new(ctx, "logs")?;
                    reader.read_to_string(&mut body).map_err(PluginError::from)?;
                    Ok(json!([reader.len(), body]))
                }),
                json!({}),
            )
            .expect("renders");
        assert_eq!(seen, json!([11, "{\"logs\":[]}"]));
    }
}
