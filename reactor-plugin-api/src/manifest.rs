//! What a plugin says about itself: key, phases, version, description and the schema of its args.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A phase of the build workflow, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Before the build: edit the Dockerfile, pull the base image.
    Prebuild,
    /// The build itself: the first buildstep plugin that does not decline builds the image.
    Buildstep,
    /// After a successful build, before anything is published: test or squash the image.
    Prepublish,
    /// After a successful build: tag, push, report.
    Postbuild,
    /// Always, success or failure: clean up, store results, notify.
    Exit,
}

impl Phase {
    /// Every phase, in workflow order.
    pub const ALL: [Phase; 5] = [Phase::Prebuild, Phase::Buildstep, Phase::Prepublish, Phase::Postbuild, Phase::Exit];

    /// The phase's name in results and messages (`prebuild`, …).
    pub fn name(self) -> &'static str {
        match self {
            Phase::Prebuild => "prebuild",
            Phase::Buildstep => "buildstep",
            Phase::Prepublish => "prepublish",
            Phase::Postbuild => "postbuild",
            Phase::Exit => "exit",
        }
    }

    /// The build.json key that lists this phase's plugins (`prebuild_plugins`, …).
    pub fn build_json_key(self) -> &'static str {
        match self {
            Phase::Prebuild => "prebuild_plugins",
            Phase::Buildstep => "buildstep_plugins",
            Phase::Prepublish => "prepublish_plugins",
            Phase::Postbuild => "postbuild_plugins",
            Phase::Exit => "exit_plugins",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A plugin's description of itself, read by the host when it loads the plugin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The key a build.json names the plugin by, and its results are stored under.
    pub key: String,
    /// The phases the plugin may be listed in.
    pub phases: Vec<Phase>,
    /// The plugin's own version.
    pub version: String,
    /// One line on what it does.
    #[serde(default)]
    pub description: String,
    /// A JSON Schema (draft 2020-12) that the plugin's args must satisfy.
    #[serde(default = "any_object")]
    pub args_schema: Value,
    /// Whether a failure of this plugin is tolerated when the build.json entry does not say.
    #[serde(default = "yes")]
    pub allowed_to_fail: bool,
    /// The host features (see [`crate::protocol::FEATURES`]) the plugin cannot run without; a
    /// host that lacks one refuses the plugin at load.
    #[serde(default)]
    pub requires: Vec<String>,
}

fn any_object() -> Value {
    serde_json::json!({"type": "object"})
}

fn yes() -> bool {
    true
}

impl Manifest {
    /// A manifest with the given key, phases and version; args may be any object.
    pub fn new(key: &str, phases: impl IntoIterator<Item = Phase>, version: &str) -> Manifest {
        Manifest {
            key: key.to_owned(),
            phases: phases.into_iter().collect(),
            version: version.to_owned(),
            description: String::new(),
            args_schema: any_object(),
            allowed_to_fail: true,
            requires: Vec::new(),
        }
    }

    /// Sets the one-line description.
    pub fn description(mut self, text: &str) -> Manifest {
        self.description = text.to_owned();
        self
    }

    /// Sets the JSON Schema of the args.
    pub fn args_schema(mut self, schema: Value) -> Manifest {
        self.args_schema = schema;
        self
    }

    /// Names the host features the plugin cannot run without (`["images.pull"]`); features it
    /// only may use need not be named: check [`Context::supports`](crate::Context::supports).
    pub fn requires<'a>(mut self, features: impl IntoIterator<Item = &'a str>) -> Manifest {
        self.requires = features.into_iter().map(str::to_owned).collect();
        self
    }

    /// Sets whether a failure is tolerated by default (atomic-reactor's `is_allowed_to_fail`).
    pub fn allowed_to_fail(mut self, allowed: bool) -> Manifest {
        self.allowed_to_fail = allowed;
        self
    }
}
