use reactor_plugin_api::{export_plugins, Context, Manifest, Plugin};
use serde_json::{json, Value};

pub struct P;

impl Plugin for P {
    fn manifest(&self) -> Manifest {
        Manifest { key: "compat_older", phases: &["postbuild"], requires: &[] }
    }

    fn run(&self, ctx: &Context, args: &Value) -> Result<Value, String> {
        // Protocol 1.0 requests only: the workflow, and the build result in it.
        let workflow = ctx.call(json!({"op": "workflow"}), None)?;
        Ok(json!({"api": reactor_plugin_api::API_VERSION, "host_protocol": ctx.host()["protocol"],
                  "log_lines": workflow["build_result"]["logs"].as_array().map_or(0, Vec::len), "args": args}))
    }
}

export_plugins!(P);
