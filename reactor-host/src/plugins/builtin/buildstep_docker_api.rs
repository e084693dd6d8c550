//! `docker_api`: the default builder. Builds the image on the Docker engine (classic builder, no
//! cache, the context streamed) from the workflow as the prebuild plugins left it. Used when a
//! build.json lists no buildstep plugins.
//!
//! ```json
//! {"name": "docker_api"}
//! ```

use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError};
use serde_json::{json, Value};

pub struct DockerApi;

impl Plugin for DockerApi {
    fn manifest(&self) -> Manifest {
        Manifest::new("docker_api", [Phase::Buildstep], env!("CARGO_PKG_VERSION"))
            .description("builds the image on the Docker engine")
            .args_schema(json!({"type": "object", "additionalProperties": false}))
            .allowed_to_fail(false)
    }

    fn run(&self, ctx: &Context, _args: Args) -> Result<Value, PluginError> {
        let result = ctx.build_image()?;
        Ok(json!({"image_id": result.image_id, "failed": result.failed, "fail_reason": result.fail_reason}))
    }
}
