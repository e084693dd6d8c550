use reactor_plugin_api::{export_plugins, Context, Manifest, Plugin};
use serde_json::{json, Value};

pub struct P;

impl Plugin for P {
    fn manifest(&self) -> Manifest {
        Manifest { key: "compat_optional", phases: &["postbuild"], requires: &[] }
    }

    fn run(&self, ctx: &Context, args: &Value) -> Result<Value, String> {
        // A feature of protocol 1.1, which this host offers, then one of 1.3, which it may not.
        ctx.call(json!({"op": "set_workspace", "key": "compat_optional", "value": {"seen": true}}), Some("workspace"))?;
        let workspace = ctx.call(json!({"op": "get_workspace", "key": "compat_optional"}), Some("workspace"))?;
        let squash = match ctx.call(json!({"op": "squash"}), Some("images.squash")) {
            Ok(_) => "squashed".to_owned(),
            Err(e) => e,
        };
        Ok(json!({"api": reactor_plugin_api::API_VERSION, "workspace": workspace, "squash": squash, "args": args}))
    }
}

export_plugins!(P);
