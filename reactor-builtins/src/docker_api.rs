//! `docker_api`: the default builder. Builds the image on the Docker engine (classic builder, no
//! cache, the context streamed) from the workflow as the prebuild plugins left it. Used when a
//! build.json lists no buildstep plugins.
//!
//! ```json
//! {"name": "docker_api"}
//! ```

use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError};
use serde_json::{json, Value};

pub(crate) const RETURNS: &str =
    "`{\"image_id\", \"failed\", \"fail_reason\"}`; the build's log is printed under `reactor::build`, plugins read it with `ctx.build_log()`, and the result document counts its lines (`build.log_lines`)";

/// Builds the image with the host's engine.
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

#[cfg(test)]
mod tests {
    use super::*;
    use reactor_plugin_api::protocol::Request;
    use reactor_plugin_api::testing::FakeHost;
    use reactor_plugin_api::{BuildResult, ErrorKind, Workflow};

    fn buildstep() -> FakeHost {
        let workflow = Workflow {
            image: "app:1".into(),
            dockerfile: "FROM busybox\n".into(),
            labels: [("release".to_owned(), "7".to_owned())].into(),
            ..Default::default()
        };
        FakeHost::new(Phase::Buildstep, workflow)
    }

    #[test]
    fn builds_through_the_host_and_returns_the_outcome() {
        let fake = buildstep().on_build(|workflow| {
            // The build sees the workflow as the prebuild plugins left it.
            let id = format!("sha256:{}-{}", workflow.image, workflow.labels["release"]);
            Ok(BuildResult { logs: vec!["Step 1/1 : FROM busybox".into()], image_id: Some(id), ..Default::default() })
        });
        let result = fake.run(&DockerApi, json!({})).expect("builds");
        assert_eq!(result, json!({"image_id": "sha256:app:1-7", "failed": false, "fail_reason": null}));
        assert_eq!(fake.requests(), [Request::BuildImage]);
        let build = fake.workflow().build_result.expect("the build's result is the workflow's");
        assert_eq!(build.logs, ["Step 1/1 : FROM busybox"]);
    }

    #[test]
    fn a_build_that_ran_and_failed_is_reported_in_the_result() {
        let fake = buildstep().on_build(|_| {
            let reason = "The command '/bin/sh -c false' returned a non-zero code: 1";
            Ok(BuildResult { failed: true, fail_reason: Some(reason.into()), ..Default::default() })
        });
        let result = fake.run(&DockerApi, json!({})).expect("the plugin ran; the build failed");
        assert_eq!(result["failed"], json!(true));
        assert_eq!(result["fail_reason"], json!("The command '/bin/sh -c false' returned a non-zero code: 1"));
    }

    #[test]
    fn a_build_that_cannot_run_fails_the_plugin() {
        let fake = buildstep().on_build(|_| {
            Err(PluginError::with_kind(ErrorKind::Host, "the Docker engine is not available to this build"))
        });
        let err = fake.run(&DockerApi, json!({})).expect_err("no engine");
        assert_eq!(
            (err.kind, err.message.as_str()),
            (ErrorKind::Host, "the Docker engine is not available to this build")
        );
    }

    #[test]
    fn runs_only_as_a_buildstep() {
        for phase in [Phase::Prebuild, Phase::Postbuild, Phase::Exit] {
            let fake = FakeHost::new(phase, Workflow::default()).on_build(|_| Ok(BuildResult::default()));
            let err = fake.run(&DockerApi, json!({})).expect_err("not a buildstep");
            assert_eq!(err.message, format!("plugin 'docker_api' cannot run in {phase} (it runs in: buildstep)"));
            assert!(fake.requests().is_empty());
        }
    }
}
