//! The plugin's handle on the running build: read the workflow, change what the phase allows,
//! reach the engine and registries through the host, share state with other plugins.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::build_log::Lines;
use crate::ffi::HostCtx;
use crate::protocol::{BuildLogPage, ContainerOptions, HostHello, PulledImage, PushOutcome, RegistryAccess, Request};
use crate::{BuildResult, ErrorKind, PluginError, RunOutput, Workflow};

/// Given to [`Plugin::run`](crate::Plugin::run); every method is a request to the host.
///
/// A clone is the same context (what [`Context::build_log`] keeps to read on); like the context,
/// it is for the plugin's run only (a request after the run returned may be refused).
#[derive(Clone)]
pub struct Context {
    host: HostCtx,
    hello: HostHello,
}

impl Context {
    #[doc(hidden)]
    pub fn new(host: HostCtx, hello: HostHello) -> Context {
        Context { host, hello }
    }

    /// The host: its reactor version, protocol and features.
    pub fn host(&self) -> &HostHello {
        &self.hello
    }

    /// Whether the host offers `feature` (see [`crate::protocol::FEATURES`]); a plugin that may
    /// use a feature checks this, or handles [`ErrorKind::Unsupported`] from the call.
    pub fn supports(&self, feature: &str) -> bool {
        self.hello.features.iter().any(|f| f == feature)
    }

    /// A snapshot of the workflow: image, source, Dockerfile, labels, build result, results.
    pub fn workflow(&self) -> Result<Workflow, PluginError> {
        self.call(&Request::Workflow)
    }

    /// The build's outcome; an error before the build has run. Its `logs` are the log's last
    /// lines when the log is longer than
    /// [`SNAPSHOT_LOG_BYTES`](crate::protocol::SNAPSHOT_LOG_BYTES): [`Context::build_log`] reads
    /// all of it.
    pub fn build_result(&self) -> Result<BuildResult, PluginError> {
        self.workflow()?
            .build_result
            .ok_or_else(|| PluginError::with_kind(ErrorKind::Host, "the image has not been built yet"))
    }

    /// Every line of the build log, in order, read from the host a page at a time, so that a
    /// log of any size takes little memory; an error (before the build, or from the host) ends
    /// the lines. A host without `logs.read` (older than protocol 1.2) has the whole log in the
    /// workflow snapshot's [`BuildResult::logs`], which this reads instead.
    ///
    /// ```no_run
    /// # fn run(ctx: &reactor_plugin_api::Context) -> Result<(), reactor_plugin_api::PluginError> {
    /// let mut errors = 0;
    /// for line in ctx.build_log() {
    ///     errors += usize::from(line?.contains("ERROR"));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn build_log(&self) -> Lines {
        Lines::new(self.clone())
    }

    /// One page of the build log: whole lines from byte `offset` (0 for the first page, then
    /// the previous page's `next_offset`), at most `max_bytes` of them counting a newline after
    /// each (capped at [`MAX_LOG_PAGE_BYTES`](crate::protocol::MAX_LOG_PAGE_BYTES)), and always
    /// at least one. Needs `logs.read`; [`Context::build_log`] pages for you.
    pub fn read_build_log(&self, offset: u64, max_bytes: u64) -> Result<BuildLogPage, PluginError> {
        self.call(&Request::ReadBuildLog { offset, max_bytes })
    }

    /// Replaces the Dockerfile's text (prebuild only).
    pub fn set_dockerfile(&self, text: &str) -> Result<(), PluginError> {
        self.call_unit(&Request::SetDockerfile { text: text.to_owned() })
    }

    /// Adds or replaces labels of the image to build (prebuild only).
    pub fn set_labels(&self, labels: BTreeMap<String, String>) -> Result<(), PluginError> {
        self.call_unit(&Request::SetLabels { labels })
    }

    /// Adds or replaces build args (prebuild only).
    pub fn set_build_args(&self, args: BTreeMap<String, String>) -> Result<(), PluginError> {
        self.call_unit(&Request::SetBuildArgs { args })
    }

    /// Adds tags for the built image (before the exit phase).
    pub fn add_tags(&self, tags: &[&str]) -> Result<(), PluginError> {
        self.call_unit(&Request::AddTags { tags: tags.iter().map(|t| t.to_string()).collect() })
    }

    /// The engine's inspection of an image, as JSON.
    pub fn inspect_image(&self, name: &str) -> Result<Value, PluginError> {
        self.call(&Request::InspectImage { name: name.to_owned() })
    }

    /// Tags the image `source` as `target` (`repo[:tag]`).
    pub fn tag_image(&self, source: &str, target: &str) -> Result<(), PluginError> {
        self.call_unit(&Request::TagImage { source: source.to_owned(), target: target.to_owned() })
    }

    /// Pushes `name` (`registry/repo:tag`) and returns the digest the registry reported, which
    /// is also recorded. A host of protocol 1.1 logs in with the registry's entry in Docker's
    /// `config.json`.
    pub fn push_image(&self, name: &str) -> Result<Option<String>, PluginError> {
        self.push_image_with(name, &RegistryAccess::default())
    }

    /// Pushes `name` as [`Context::push_image`] does, logging in with the `.dockercfg` of
    /// `access.secret_dir` and checking that the engine treats an `insecure` registry as such;
    /// either needs `registry.access`.
    pub fn push_image_with(&self, name: &str, access: &RegistryAccess) -> Result<Option<String>, PluginError> {
        let request = Request::PushImage {
            name: name.to_owned(),
            registry_secret_dir: access.secret_dir.clone(),
            insecure: access.insecure,
        };
        let outcome: PushOutcome = self.call(&request)?;
        Ok(outcome.digest)
    }

    /// Pulls `name`, logging in with the registry's credentials (from `access.secret_dir`'s
    /// `.dockercfg` when given, else Docker's `config.json`); the pull is recorded in the
    /// workflow's `pulled_images`. Needs `images.pull`.
    pub fn pull_image(&self, name: &str, access: &RegistryAccess) -> Result<PulledImage, PluginError> {
        self.call(&Request::PullImage {
            name: name.to_owned(),
            registry_secret_dir: access.secret_dir.clone(),
            insecure: access.insecure,
        })
    }

    /// Records that the plugin pushed `name` with `digest` itself; needs `digests.record`.
    pub fn record_digest(&self, name: &str, digest: &str) -> Result<(), PluginError> {
        self.call_unit(&Request::RecordDigest { name: name.to_owned(), digest: digest.to_owned() })
    }

    /// Removes an image.
    pub fn remove_image(&self, name: &str, force: bool) -> Result<(), PluginError> {
        self.call_unit(&Request::RemoveImage { name: name.to_owned(), force })
    }

    /// Runs `command` in a new container of `image`, waits for it, and returns its output and
    /// exit code; the container is removed, also when the build is cancelled.
    pub fn run_container(&self, image: &str, command: &[&str]) -> Result<RunOutput, PluginError> {
        self.run_container_with(image, command, ContainerOptions::default())
    }

    /// [`Context::run_container`] with env, user, entrypoint, a timeout, or the output streamed
    /// to the log; needs `containers.options` when any option is set.
    pub fn run_container_with(
        &self,
        image: &str,
        command: &[&str],
        options: ContainerOptions,
    ) -> Result<RunOutput, PluginError> {
        self.call(&Request::RunContainer {
            image: image.to_owned(),
            command: command.iter().map(|c| c.to_string()).collect(),
            options,
        })
    }

    /// The build's workspace entry `key` (by convention a plugin's key), decoded; `None` when no
    /// plugin set it. Needs `workspace`.
    pub fn workspace<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, PluginError> {
        let value: Value = self.call(&Request::GetWorkspace { key: key.to_owned() })?;
        if value.is_null() {
            return Ok(None);
        }
        serde_json::from_value(value)
            .map(Some)
            .map_err(|e| PluginError::new(format!("workspace entry '{key}' has another shape: {e}")))
    }

    /// Sets the build's workspace entry `key`, which later plugins read; needs `workspace`.
    pub fn set_workspace(&self, key: &str, value: &impl Serialize) -> Result<(), PluginError> {
        let value = serde_json::to_value(value).map_err(PluginError::from)?;
        self.call_unit(&Request::SetWorkspace { key: key.to_owned(), value })
    }

    /// Builds the image on the Docker engine from the workflow as it stands (buildstep only);
    /// the build's log is streamed to reactor's output as it runs.
    pub fn build_image(&self) -> Result<BuildResult, PluginError> {
        self.call(&Request::BuildImage)
    }

    /// Records the outcome of a build the plugin made with another builder (buildstep only).
    pub fn set_build_result(&self, result: BuildResult) -> Result<(), PluginError> {
        self.call_unit(&Request::SetBuildResult { result })
    }

    /// Whether the build has been cancelled: a long-running plugin checks this and returns soon
    /// after (reactor abandons a plugin that outlives the grace period). Once cancelled, the
    /// host refuses a non-exit plugin's other requests with [`ErrorKind::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        match self.call::<bool>(&Request::IsCancelled) {
            Ok(cancelled) => cancelled,
            Err(e) => e.kind == ErrorKind::Cancelled,
        }
    }

    /// Sends a request and decodes the answer; a request that needs a feature the host lacks is
    /// not sent, and fails with [`ErrorKind::Unsupported`].
    pub fn call<T: DeserializeOwned>(&self, request: &Request) -> Result<T, PluginError> {
        if let Some(feature) = request.feature().filter(|f| !self.supports(f)) {
            return Err(self.unsupported(feature, request));
        }
        let text = serde_json::to_string(request).map_err(PluginError::from)?;
        match self.host.call(text.as_str().into()).into_result() {
            Ok(answer) => serde_json::from_str(answer.as_str())
                .map_err(|e| PluginError::with_kind(ErrorKind::Host, format!("unexpected answer from the host: {e}"))),
            Err(error) => Err(PluginError::from_json(error.as_str())),
        }
    }

    fn call_unit(&self, request: &Request) -> Result<(), PluginError> {
        self.call::<Value>(request).map(|_| ())
    }

    fn unsupported(&self, feature: &str, request: &Request) -> PluginError {
        let since = crate::protocol::feature(feature)
            .map(|f| format!("; upgrade reactor to ≥ {} (protocol {})", f.reactor, f.protocol))
            .unwrap_or_default();
        PluginError::with_kind(
            ErrorKind::Unsupported,
            format!(
                "cannot {}: this reactor ({}, protocol {}) does not offer the feature '{feature}'{since}",
                request.what(),
                self.hello.reactor_version,
                self.hello.protocol
            ),
        )
    }
}
