//! `dockerfile_content`: returns the Dockerfile's text as the plugin's result, so the result
//! document records exactly what was built (atomic-reactor's `pre_return_dockerfile.py`).
//!
//! ```json
//! {"name": "dockerfile_content"}
//! ```

use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError};
use serde_json::{json, Value};

pub(crate) const RETURNS: &str = "the Dockerfile's text, as a string";

/// Returns the Dockerfile's text.
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

#[cfg(test)]
mod tests {
    use super::*;
    use reactor_plugin_api::protocol::Request;
    use reactor_plugin_api::testing::FakeHost;
    use reactor_plugin_api::Workflow;

    const DOCKERFILE: &str = "FROM busybox:1.36\nRUN true\n";

    fn with_dockerfile(phase: Phase) -> FakeHost {
        FakeHost::new(phase, Workflow { dockerfile: DOCKERFILE.into(), ..Default::default() })
    }

    #[test]
    fn returns_the_dockerfiles_text_in_each_of_its_phases() {
        for phase in [Phase::Prebuild, Phase::Postbuild, Phase::Exit] {
            let fake = with_dockerfile(phase);
            assert_eq!(fake.run(&DockerfileContent, json!({})).expect("runs"), json!(DOCKERFILE));
            assert_eq!(fake.requests(), [Request::Workflow]);
            assert_eq!(fake.workflow().results[phase.name()]["dockerfile_content"], json!(DOCKERFILE));
        }
    }

    /// A prebuild plugin that rewrites the Dockerfile, as `pull_base_image` would.
    struct Rewriter;

    impl Plugin for Rewriter {
        fn manifest(&self) -> Manifest {
            Manifest::new("rewriter", [Phase::Prebuild], "1")
        }

        fn run(&self, ctx: &Context, _args: Args) -> Result<Value, PluginError> {
            ctx.set_dockerfile("FROM busybox@sha256:0\nRUN true\n").map(|()| Value::Null)
        }
    }

    #[test]
    fn returns_the_text_as_an_earlier_plugin_left_it() {
        let fake = with_dockerfile(Phase::Prebuild);
        fake.run(&Rewriter, json!({})).expect("rewrites");
        fake.set_phase(Phase::Postbuild);
        assert_eq!(fake.run(&DockerfileContent, json!({})).expect("runs"), json!("FROM busybox@sha256:0\nRUN true\n"));
    }

    #[test]
    fn is_refused_where_it_does_not_run() {
        for phase in [Phase::Buildstep, Phase::Prepublish] {
            let err = with_dockerfile(phase).run(&DockerfileContent, json!({})).expect_err("not its phase");
            assert_eq!(
                err.message,
                format!("plugin 'dockerfile_content' cannot run in {phase} (it runs in: prebuild, postbuild, exit)")
            );
        }
    }
}
