use reactor_plugin_api::{export_plugins, Context, Manifest, Plugin};
use serde_json::{json, Value};

pub struct P;

impl Plugin for P {
    fn manifest(&self) -> Manifest {
        Manifest { key: "compat_next", phases: &["postbuild"], requires: &[] }
    }

    fn run(&self, _ctx: &Context, args: &Value) -> Result<Value, String> {
        Ok(json!({"api": reactor_plugin_api::API_VERSION, "args": args}))
    }
}

export_plugins!(P);
