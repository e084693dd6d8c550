use reactor_plugin_api::{export_plugins, Context, Manifest, Plugin};
use serde_json::Value;

pub struct P;

impl Plugin for P {
    fn manifest(&self) -> Manifest {
        Manifest { key: "compat_fork", phases: &["postbuild"], requires: &[] }
    }

    fn run(&self, _ctx: &Context, args: &Value) -> Result<Value, String> {
        Ok(args.clone())
    }
}

export_plugins!(P);
