//! `tag_and_push`: pushes the built image to every registry of `registries` under every name of
//! the workspace's `tag_conf` (unique names first, then primary ones), as atomic-reactor's
//! `post_tag_and_push.py` does. For each registry and name it tags the built image
//! `<registry>/<name>` and pushes it; reactor logs in with the registry's credentials (the
//! `.dockercfg` of `secret` when given, else Docker's `config.json`, credential helpers
//! included) and records each pushed name's digest in the result document's `digests`. The
//! tags it made are left for `remove_built_image` to remove (`images_to_remove`).
//!
//! ```json
//! {"name": "tag_and_push", "args": {"registries": {
//!     "127.0.0.1:5000": {"insecure": true},
//!     "registry.example.com": {"secret": "/var/run/secrets/registry"}}}}
//! ```
//!
//! With no unique name in `tag_conf` (no `tag_by_labels` ran), the workflow's image is pushed
//! under its own name, so `image: "app:1"` alone pushes `<registry>/app:1`. A name that already
//! names a registry is refused, since each registry of `registries` is put in front of it. A
//! build.json's `target_registries` adds this plugin with those registries.
//!
//! Where it differs from atomic-reactor 1.6:
//! - every name is checked before anything is pushed, so a bad name pushes nothing (1.6 failed
//!   at that name, after pushing the ones before it);
//! - the result lists `{"image", "digest"}` per push instead of Python `ImageName` objects, and
//!   the digests (1.6's `push_conf`) are the result document's `digests`; the registry's v2
//!   config blob (`push_conf.config`) is not fetched;
//! - a name without a tag is pushed as `:latest`, which is what docker tagged.

use std::collections::BTreeMap;

use reactor_plugin_api::protocol::RegistryAccess;
use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::image_name::ImageName;
use crate::shared::{TagConf, ToRemove};

pub(crate) const RETURNS: &str =
    "a list of `{\"image\": \"<registry>/<name>:<tag>\", \"digest\": \"sha256:…\"}`, one per push, in push order";

/// Tags the built image into each registry and pushes it.
pub struct TagAndPush;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagAndPushArgs {
    registries: BTreeMap<String, RegistryConf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryConf {
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    secret: Option<String>,
}

impl Plugin for TagAndPush {
    fn manifest(&self) -> Manifest {
        Manifest::new("tag_and_push", [Phase::Postbuild], env!("CARGO_PKG_VERSION"))
            .description(
                "pushes the built image to each registry under every name of tag_conf (or the workflow's image), \
                 recording the digests",
            )
            .args_schema(json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["registries"],
                "properties": {
                    "registries": {
                        "type": "object",
                        "description": "the registries to push to (`host[:port]`), each with how to reach it",
                        "additionalProperties": {
                            "type": "object",
                            "additionalProperties": false,
                            "properties": {
                                "insecure": {
                                    "type": "boolean",
                                    "default": false,
                                    "description": "the registry speaks plain HTTP or has a certificate that cannot \
                                                    be verified; the Docker engine must list it in its \
                                                    insecure-registries (loopback registries are, by default)",
                                },
                                "secret": {
                                    "type": "string",
                                    "description": "a directory holding the registry's `.dockercfg` (or \
                                                    `.dockerconfigjson`) to log in with; without it, Docker's \
                                                    config.json (`DOCKER_CONFIG` or `~/.docker`) is used, \
                                                    its credHelpers and credsStore included",
                                },
                            },
                        },
                    },
                },
            }))
            .requires(["workspace", "registry.access"])
            .allowed_to_fail(false)
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let args: TagAndPushArgs = args.parse()?;
        let workflow = ctx.workflow()?;
        let image_id = workflow.build_result.and_then(|build| build.image_id).ok_or_else(|| {
            PluginError::new("tag_and_push: there is no built image to push (did the build succeed?)")
        })?;

        let mut tag_conf = TagConf::load(ctx)?;
        if tag_conf.unique_images.is_empty() {
            // atomic-reactor's fallback: without a tagging plugin, the image goes under its own name.
            tag_conf.unique_images.push(workflow.image.clone());
            tag_conf.store(ctx)?;
        }
        let names = tag_conf.all().iter().map(|name| push_name(name)).collect::<Result<Vec<_>, _>>()?;

        let mut pushed = Vec::new();
        for (registry, conf) in &args.registries {
            log::info!(
                "pushing {} names to {registry}{}{}",
                names.len(),
                if conf.insecure { " (insecure)" } else { "" },
                conf.secret.as_deref().map(|dir| format!(", logging in with the secret in {dir}")).unwrap_or_default()
            );
            let access = RegistryAccess { secret_dir: conf.secret.clone(), insecure: conf.insecure };
            for name in &names {
                let target = name.with_registry(registry).to_string();
                ctx.tag_image(&image_id, &target).map_err(|e| e.context(format!("tag_and_push: tagging {target}")))?;
                // The tag exists from here on, whether or not the push succeeds.
                ToRemove::add(ctx, |t| &mut t.images_to_remove, std::slice::from_ref(&target))?;
                let digest = ctx
                    .push_image_with(&target, &access)
                    .map_err(|e| e.context(format!("tag_and_push: pushing to {registry}")))?;
                log::info!("pushed {target}{}", digest.as_deref().map(|d| format!(" ({d})")).unwrap_or_default());
                pushed.push(json!({"image": target, "digest": digest}));
            }
        }
        Ok(Value::Array(pushed))
    }
}

/// `name` as it is pushed: checked, without a registry (each of `registries` is put in front),
/// and tagged `latest` when it has no tag, as docker tagged it.
fn push_name(name: &str) -> Result<ImageName, PluginError> {
    let parsed = ImageName::parse(name).map_err(|e| e.context("tag_and_push"))?;
    if let Some(registry) = parsed.registry() {
        return Err(PluginError::new(format!(
            "tag_and_push: the image name '{name}' already names the registry '{registry}'; name the image without \
             it (the build.json's `image`, or the labels tag_by_labels reads) and list the registry in `registries`"
        )));
    }
    if parsed.digest().is_some() {
        return Err(PluginError::new(format!(
            "tag_and_push: the image name '{name}' has a digest; a push needs a tag"
        )));
    }
    Ok(parsed.or_latest())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor_plugin_api::protocol::{PushOutcome, Request};
    use reactor_plugin_api::testing::FakeHost;

    use crate::shared::tests::tags;
    use reactor_plugin_api::{BuildResult, ErrorKind, Workflow};
    use std::sync::{Arc, Mutex};

    /// Pushes seen by the fake, with the access they were made with.
    type Pushes = Arc<Mutex<Vec<(String, RegistryAccess)>>>;

    fn built(image: &str) -> (FakeHost, Pushes) {
        let workflow = Workflow {
            image: image.into(),
            build_result: Some(BuildResult { image_id: Some("sha256:built".into()), ..Default::default() }),
            ..Default::default()
        };
        let pushes = Pushes::default();
        let seen = pushes.clone();
        let fake = FakeHost::new(Phase::Postbuild, workflow).on_push(move |name, access| {
            seen.lock().expect("lock").push((name.to_owned(), access.clone()));
            Ok(PushOutcome { digest: Some(format!("sha256:{}", name.len())) })
        });
        (fake, pushes)
    }

    fn to_remove(fake: &FakeHost) -> Vec<String> {
        let entry = fake.workspace_entry("remove_built_image").expect("set");
        serde_json::from_value::<ToRemove>(entry).expect("to_remove").images_to_remove
    }

    #[test]
    fn pushes_every_tag_conf_name_to_every_registry() {
        let conf = json!({"unique_images": ["app:build-7"], "primary_images": ["app:1-2", "app:1", "app:latest"]});
        let (fake, pushes) = built("ignored:x");
        let fake = fake.workspace("tag_conf", conf);
        let args = json!({"registries": {
            "127.0.0.1:5000": {"insecure": true},
            "registry.example.com": {"secret": "/secrets/reg"},
        }});
        let result = fake.run(&TagAndPush, args).expect("pushes");

        let expected: Vec<String> = ["127.0.0.1:5000", "registry.example.com"]
            .iter()
            .flat_map(|r| ["app:build-7", "app:1-2", "app:1", "app:latest"].map(|n| format!("{r}/{n}")))
            .collect();
        let pushed: Vec<String> = pushes.lock().expect("lock").iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(pushed, expected);
        let accesses: Vec<RegistryAccess> = pushes.lock().expect("lock").iter().map(|(_, a)| a.clone()).collect();
        assert_eq!(accesses[0], RegistryAccess { secret_dir: None, insecure: true });
        assert_eq!(accesses[4], RegistryAccess { secret_dir: Some("/secrets/reg".into()), insecure: false });
        assert_eq!(tags(&fake), expected.iter().map(|t| ("sha256:built".to_owned(), t.clone())).collect::<Vec<_>>());
        let result_expected: Vec<Value> =
            expected.iter().map(|n| json!({"image": n, "digest": format!("sha256:{}", n.len())})).collect();
        assert_eq!(result, json!(result_expected));
        // The host records each digest for the result document.
        assert_eq!(fake.workflow().digests.len(), expected.len());
        assert_eq!(to_remove(&fake), expected);
    }

    #[test]
    fn without_a_unique_name_the_workflows_image_is_pushed() {
        let (fake, pushes) = built("app:bar");
        let fake = fake.workspace("tag_conf", json!({"primary_images": ["app:latest"]}));
        let result = fake.run(&TagAndPush, json!({"registries": {"127.0.0.1:5000": {}}})).expect("pushes");
        assert_eq!(result[0]["image"], "127.0.0.1:5000/app:bar");
        assert_eq!(result[1]["image"], "127.0.0.1:5000/app:latest");
        assert_eq!(pushes.lock().expect("lock").len(), 2);
        let conf: TagConf = serde_json::from_value(fake.workspace_entry("tag_conf").expect("stored")).expect("conf");
        assert_eq!(conf.unique_images, ["app:bar"], "the fallback is stored as atomic-reactor did");
    }

    #[test]
    fn an_image_without_a_tag_is_pushed_as_latest() {
        let (fake, _) = built("app");
        let result = fake.run(&TagAndPush, json!({"registries": {"r.example:5000": {}}})).expect("pushes");
        assert_eq!(result, json!([{"image": "r.example:5000/app:latest", "digest": "sha256:25"}]));
    }

    #[test]
    fn a_name_with_a_registry_is_refused_before_anything_is_pushed() {
        let (fake, pushes) = built("app:1");
        let fake = fake.workspace("tag_conf", json!({"unique_images": ["app:1", "other.example:5000/app:2"]}));
        let err = fake.run(&TagAndPush, json!({"registries": {"127.0.0.1:5000": {}}})).expect_err("a registry");
        assert_eq!(
            err.message,
            "tag_and_push: the image name 'other.example:5000/app:2' already names the registry 'other.example:5000'; name the image without it (the build.json's `image`, or the labels tag_by_labels reads) and list the registry in `registries`"
        );
        assert!(pushes.lock().expect("lock").is_empty());
        assert!(tags(&fake).is_empty());
    }

    #[test]
    fn a_refused_push_fails_naming_the_registry_and_leaves_the_tag_for_removal() {
        let workflow = Workflow {
            image: "app:1".into(),
            build_result: Some(BuildResult { image_id: Some("sha256:built".into()), ..Default::default() }),
            ..Default::default()
        };
        let fake = FakeHost::new(Phase::Postbuild, workflow).on_push(|name, _| {
            Err(PluginError::with_kind(
                ErrorKind::Host,
                format!("push {name}: the registry 127.0.0.1:5001 wants a login and no credentials were found for it"),
            ))
        });
        let err = fake.run(&TagAndPush, json!({"registries": {"127.0.0.1:5001": {}}})).expect_err("refused");
        assert_eq!(err.kind, ErrorKind::Host);
        assert_eq!(
            err.message,
            "tag_and_push: pushing to 127.0.0.1:5001: push 127.0.0.1:5001/app:1: the registry 127.0.0.1:5001 wants a login and no credentials were found for it"
        );
        assert_eq!(to_remove(&fake), ["127.0.0.1:5001/app:1"]);
    }

    #[test]
    fn keeps_what_other_plugins_left_for_removal() {
        let (fake, _) = built("app:1");
        let fake = fake.workspace("remove_built_image", json!({"base_images": ["busybox:latest"]}));
        fake.run(&TagAndPush, json!({"registries": {"127.0.0.1:5000": {}}})).expect("pushes");
        let entry: ToRemove =
            serde_json::from_value(fake.workspace_entry("remove_built_image").expect("set")).expect("to_remove");
        assert_eq!(entry.base_images, ["busybox:latest"]);
        assert_eq!(entry.images_to_remove, ["127.0.0.1:5000/app:1"]);
    }

    #[test]
    fn without_a_built_image_nothing_is_pushed() {
        let workflow = Workflow {
            image: "app:1".into(),
            build_result: Some(BuildResult { failed: true, ..Default::default() }),
            ..Default::default()
        };
        let fake = FakeHost::new(Phase::Postbuild, workflow);
        let err = fake.run(&TagAndPush, json!({"registries": {"127.0.0.1:5000": {}}})).expect_err("no image");
        assert_eq!(err.message, "tag_and_push: there is no built image to push (did the build succeed?)");
        assert_eq!(fake.requests(), [Request::Workflow]);
    }

    #[test]
    fn no_registries_push_nothing() {
        let (fake, pushes) = built("app:1");
        assert_eq!(fake.run(&TagAndPush, json!({"registries": {}})).expect("runs"), json!([]));
        assert!(pushes.lock().expect("lock").is_empty());
    }

    #[test]
    fn bad_args_are_refused() {
        let (fake, _) = built("app:1");
        for args in
            [json!({}), json!({"registries": {"r": {"insecure": "yes"}}}), json!({"registries": {"r": {"x": 1}}})]
        {
            let err = fake.run(&TagAndPush, args.clone()).expect_err("bad args");
            assert_eq!(err.kind, ErrorKind::InvalidArgs, "{args}");
        }
        assert!(fake.requests().is_empty());
    }
}
