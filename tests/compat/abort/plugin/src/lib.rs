use reactor_plugin_api::{export_plugins, Args, Context, Manifest, Phase, Plugin, PluginError};

pub struct Aborting;

impl Plugin for Aborting {
    fn manifest(&self) -> Manifest {
        Manifest::new("aborting", [Phase::Postbuild], "0.1.0")
    }

    fn run(&self, _ctx: &Context, _args: Args) -> Result<serde_json::Value, PluginError> {
        panic!("would take reactor down with it")
    }
}

export_plugins!(Aborting);
