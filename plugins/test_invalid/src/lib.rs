//! A fixture module that breaks every load-time check at once: two plugins with one key, an
//! empty key, a plugin with no phase, and an args schema that is not a JSON Schema.

use reactor_plugin_api::{export_plugins, Args, Context, Manifest, Phase, Plugin, PluginError};
use serde_json::{json, Value};

/// A plugin that is only a manifest.
pub struct Broken(fn() -> Manifest);

impl Plugin for Broken {
    fn manifest(&self) -> Manifest {
        (self.0)()
    }

    fn run(&self, _ctx: &Context, _args: Args) -> Result<Value, PluginError> {
        Ok(Value::Null)
    }
}

export_plugins!(
    Broken(|| Manifest::new("dup", [Phase::Postbuild], "1")),
    Broken(|| Manifest::new("dup", [Phase::Prebuild], "2")),
    Broken(|| Manifest::new("", [Phase::Postbuild], "1")),
    Broken(|| Manifest::new("no_phase", [], "1")),
    Broken(|| Manifest::new("bad_schema", [Phase::Postbuild], "1")
        .args_schema(json!({"type": "objekt", "properties": {"url": {"type": 5}}}))),
);
