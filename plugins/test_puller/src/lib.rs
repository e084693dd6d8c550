//! A fixture plugin that cannot run without the host feature `images.pull`: a host of
//! protocol 1.0 must refuse it at load, a newer one pulls with the registry's credentials.

use reactor_plugin_api::protocol::RegistryAccess;
use reactor_plugin_api::{export_plugins, Args, Context, Manifest, Phase, Plugin, PluginError};
use serde::Deserialize;
use serde_json::{json, Value};

/// Pulls `image`, with the `.dockercfg` in `secret_dir` when given, `insecure` as given.
pub struct Puller;

#[derive(Deserialize)]
struct PullerArgs {
    image: String,
    secret_dir: Option<String>,
    #[serde(default)]
    insecure: bool,
}

impl Plugin for Puller {
    fn manifest(&self) -> Manifest {
        Manifest::new("puller", [Phase::Prebuild, Phase::Postbuild], env!("CARGO_PKG_VERSION"))
            .description("pulls an image through the host")
            .args_schema(json!({"type": "object", "required": ["image"],
                                "properties": {"image": {"type": "string"}, "secret_dir": {"type": "string"},
                                               "insecure": {"type": "boolean"}}}))
            .requires(["images.pull"])
            .allowed_to_fail(false)
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let args: PullerArgs = args.parse()?;
        let access = RegistryAccess { secret_dir: args.secret_dir, insecure: args.insecure };
        let pulled = ctx.pull_image(&args.image, &access)?;
        Ok(serde_json::to_value(pulled)?)
    }
}

export_plugins!(Puller);
