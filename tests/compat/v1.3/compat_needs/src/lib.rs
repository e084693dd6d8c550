use reactor_plugin_api::{export_plugins, Context, Manifest, Plugin};
use serde_json::{json, Value};

pub struct P;

impl Plugin for P {
    fn manifest(&self) -> Manifest {
        Manifest { key: "compat_needs", phases: &["postbuild"], requires: &["images.squash"] }
    }

    fn run(&self, ctx: &Context, args: &Value) -> Result<Value, String> {
        ctx.call(json!({"op": "squash"}), Some("images.squash"))?;
        Ok(json!({"args": args}))
    }
}

export_plugins!(P);
