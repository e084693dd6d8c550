//! The trait every plugin implements, built-in or loaded, and the args it receives.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Context, Manifest, PluginError};

/// A reactor plugin.
///
/// One value serves every run of the plugin in a process, possibly from several threads, so
/// keep per-run state in `run`'s locals.
pub trait Plugin: Send + Sync + 'static {
    /// What the plugin is: key, phases, version, description, args schema.
    fn manifest(&self) -> Manifest;

    /// Runs the plugin. The returned JSON is stored as the plugin's result under its key, where
    /// later plugins and the result document see it.
    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError>;
}

/// The args a build.json gives a plugin: a JSON object, already checked against the manifest's
/// schema by the host.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Args(Value);

impl Args {
    /// Wraps a JSON value.
    pub fn new(value: Value) -> Args {
        Args(value)
    }

    /// Deserializes the args into the plugin's own type; a mismatch names the field.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        let value = if self.0.is_null() { Value::Object(Default::default()) } else { self.0.clone() };
        serde_json::from_value(value).map_err(|e| PluginError::invalid_args(format!("invalid args: {e}")))
    }

    /// One arg by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// The args as JSON.
    pub fn as_value(&self) -> &Value {
        &self.0
    }
}
