//! `dockerfile_content`: returns the Dockerfile's text as the plugin's result, so the result
//! document records exactly what was built (atomic-reactor's `pre_return_dockerfile.py`).
//!
//! ```json
//! {"name": "dockerfile_content"}
//! ```

use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError};
use serde_json::{json, Value};

pub struct DockerfileContent;

impl Plugin for DockerfileContent {
    fn manifest(&self) -> Manifest {
        Manifest::new("dockerfile_content", [Phase::Prebuild, Phase::Postbuild, Phase::Exit], env!("CARGO_PKG_VERSION"))
            .description("returns the Dockerfile's text as its result")
            .args_schema(json!({"type": "object", "additionalProperties": false}))
    }

    fn run(&self, ctx: &Context, _args: Args) -> Result<Value, PluginError> {
        Ok(Value::String(ctx.workflow()?.dockerfile))
    }
}
