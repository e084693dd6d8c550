//! The plugin's handle on the running build: read the workflow, change what the phase allows,
//! reach the engine through the host.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ffi::HostCtx;
use crate::protocol::{PushOutcome, Request};
use crate::{BuildResult, ErrorKind, PluginError, RunOutput, Workflow};

/// Given to [`Plugin::run`](crate::Plugin::run); every method is a request to the host.
pub struct Context {
    host: HostCtx,
}

impl Context {
    #[doc(hidden)]
    pub fn new(host: HostCtx) -> Context {
        Context { host }
    }

    /// A snapshot of the workflow: image, source, Dockerfile, labels, build result, results.
    pub fn workflow(&self) -> Result<Workflow, PluginError> {
        self.call(&Request::Workflow)
    }

    /// The build's outcome; an error before the build has run.
    pub fn build_result(&self) -> Result<BuildResult, PluginError> {
        self.workflow()?
            .build_result
            .ok_or_else(|| PluginError::with_kind(ErrorKind::Host, "the image has not been built yet"))
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

    /// Pushes `name` (`registry/repo:tag`); returns the digest the registry reported.
    pub fn push_image(&self, name: &str) -> Result<Option<String>, PluginError> {
        let outcome: PushOutcome = self.call(&Request::PushImage { name: name.to_owned() })?;
        Ok(outcome.digest)
    }

    /// Removes an image.
    pub fn remove_image(&self, name: &str, force: bool) -> Result<(), PluginError> {
        self.call_unit(&Request::RemoveImage { name: name.to_owned(), force })
    }

    /// Runs `command` in a new container of `image`, waits for it, and returns its output and
    /// exit code; the container is removed.
    pub fn run_container(&self, image: &str, command: &[&str]) -> Result<RunOutput, PluginError> {
        self.call(&Request::RunContainer {
            image: image.to_owned(),
            command: command.iter().map(|c| c.to_string()).collect(),
        })
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

    /// Whether the build has been cancelled; a long-running plugin should check and stop.
    pub fn is_cancelled(&self) -> bool {
        self.call::<bool>(&Request::IsCancelled).unwrap_or(false)
    }

    /// Sends a request and decodes the answer.
    pub fn call<T: DeserializeOwned>(&self, request: &Request) -> Result<T, PluginError> {
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
}
