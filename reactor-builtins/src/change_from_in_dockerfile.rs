//! `change_from_in_dockerfile`: rewrites every `FROM` that names an image to that image's ID in
//! the engine (`FROM sha256:…`), so the build uses exactly the image that was pulled, whatever
//! happens to its tag meanwhile (atomic-reactor's `pre_change_from_in_df.py`). List it after
//! `pull_base_image`.
//!
//! ```json
//! {"name": "change_from_in_dockerfile"}
//! ```
//!
//! - Only the image of each `FROM` changes: `--platform=…`, `AS name`, comments, continuations
//!   and every other byte stay as they were. `FROM scratch` and stages built on an earlier stage
//!   (`FROM build`) are left alone; `FROM` lines are read with `ARG`s and build args substituted.
//! - Each image is looked up under the name `pull_base_image` gave it when it ran before (its
//!   `tagged`, else its `pulled` name), else under the `FROM` name (tag `latest` when it has none).
//! - The result maps each `FROM` image to its ID: `{"busybox:latest": "sha256:…"}`.
//!
//! Where it deliberately differs from atomic-reactor 1.6: a base image that is not in the engine
//! is an error saying to run `pull_base_image` first (1.6 failed on its own bookkeeping), and
//! there is no OpenShift organization to enclose names in.

use std::collections::BTreeMap;

use reactor_plugin_api::dockerfile::{Base, Dockerfile};
use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError, Workflow};
use serde_json::{json, Value};

use crate::image_name::ImageName;
use crate::shared::{is_image_id, is_no_such_image};

pub(crate) const RETURNS: &str = "an object mapping each base image as written to the image ID its `FROM` now names";

/// Rewrites the Dockerfile's `FROM` images to their IDs.
pub struct ChangeFromInDockerfile;

impl Plugin for ChangeFromInDockerfile {
    fn manifest(&self) -> Manifest {
        Manifest::new("change_from_in_dockerfile", [Phase::Prebuild], env!("CARGO_PKG_VERSION"))
            .description("rewrites each FROM that names an image to that image's ID in the engine (run it after pull_base_image)")
            .args_schema(json!({"type": "object", "additionalProperties": false, "properties": {}}))
    }

    fn run(&self, ctx: &Context, _args: Args) -> Result<Value, PluginError> {
        let workflow = ctx.workflow()?;
        let build_args: Vec<(&String, &String)> = workflow.build_args.iter().collect();
        let dockerfile = Dockerfile::parse_with_build_args(&workflow.dockerfile, &build_args)
            .map_err(|e| PluginError::new(format!("cannot read the Dockerfile: {e}")))?;
        let pulled_as = pulled_names(&workflow);
        let mut ids: BTreeMap<String, String> = BTreeMap::new();
        let mut editor = dockerfile.edit();
        for stage in dockerfile.stages() {
            let from = stage.image();
            if stage.base() != Base::Image || is_image_id(from) {
                continue;
            }
            let id = match ids.get(from) {
                Some(id) => id.clone(),
                None => {
                    let local = match pulled_as.get(from) {
                        Some(name) => name.clone(),
                        None => ImageName::parse(from).map_or_else(|_| from.to_owned(), |n| n.or_latest().to_string()),
                    };
                    let id = image_id(ctx, from, &local)?;
                    log::info!("FROM {from} (stage {}) -> {id}", stage.index());
                    ids.insert(from.to_owned(), id.clone());
                    id
                }
            };
            editor.set_from_image(stage.index(), &id).map_err(|e| PluginError::new(e.to_string()))?;
        }
        if !ids.is_empty() {
            ctx.set_dockerfile(&editor.render())?;
        }
        Ok(json!(ids))
    }
}

/// The local name `pull_base_image` left for each `FROM` image, if it ran before.
fn pulled_names(workflow: &Workflow) -> BTreeMap<String, String> {
    let entries = workflow.results.get("prebuild").and_then(|r| r.get("pull_base_image")).and_then(Value::as_array);
    entries
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let local = entry["tagged"].as_str().or_else(|| entry["pulled"].as_str())?;
            Some((entry["from"].as_str()?.to_owned(), local.to_owned()))
        })
        .collect()
}

/// The engine's ID of `local`, the image `from` names.
fn image_id(ctx: &Context, from: &str, local: &str) -> Result<String, PluginError> {
    let inspect = ctx.inspect_image(local).map_err(|e| {
        if is_no_such_image(&e) {
            PluginError::new(format!(
                "the base image {local} (FROM {from}) is not in the engine: list pull_base_image before change_from_in_dockerfile"
            ))
        } else {
            e
        }
    })?;
    match inspect["Id"].as_str() {
        Some(id) if !id.is_empty() => Ok(id.to_owned()),
        _ => Err(PluginError::new(format!("the engine's inspection of {local} (FROM {from}) has no Id"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor_plugin_api::protocol::Request;
    use reactor_plugin_api::testing::FakeHost;
    use reactor_plugin_api::ErrorKind;

    fn id(n: u8) -> String {
        format!("sha256:{}", (n as char).to_string().repeat(64))
    }

    /// An engine holding `images` (name, id).
    fn host(dockerfile: &str, images: &[(&str, String)]) -> FakeHost {
        let images: BTreeMap<String, String> = images.iter().map(|(n, i)| (n.to_string(), i.clone())).collect();
        FakeHost::new(Phase::Prebuild, Workflow { dockerfile: dockerfile.into(), ..Default::default() }).on_inspect(
            move |name| match images.get(name) {
                Some(id) => Ok(json!({"Id": id, "RepoTags": [name]})),
                None => Err(PluginError::with_kind(ErrorKind::Host, format!("no such image: {name}"))),
            },
        )
    }

    #[test]
    fn rewrites_each_external_from_to_its_id_and_keeps_every_other_byte() {
        let dockerfile = "# base first\nARG TOOLS=tools:2\nfrom --platform=linux/amd64 base:1 As build\nRUN make \\\n  all\nFROM ${TOOLS}\nFROM build\nFROM scratch\nFROM base:1\n";
        let fake = host(dockerfile, &[("base:1", id(b'a')), ("tools:2", id(b'b'))]);
        let result = fake.run(&ChangeFromInDockerfile, json!({})).expect("rewrites");
        assert_eq!(result, json!({"base:1": id(b'a'), "tools:2": id(b'b')}));
        let expected = format!(
            "# base first\nARG TOOLS=tools:2\nfrom --platform=linux/amd64 {} As build\nRUN make \\\n  all\nFROM {}\nFROM build\nFROM scratch\nFROM {}\n",
            id(b'a'),
            id(b'b'),
            id(b'a')
        );
        let workflow = fake.workflow();
        assert_eq!(workflow.dockerfile, expected);
        assert_eq!(workflow.base_image, Some(id(b'a')));
        // Each image is inspected once.
        let inspected = fake.requests().into_iter().filter(|r| matches!(r, Request::InspectImage { .. })).count();
        assert_eq!(inspected, 2);
    }

    #[test]
    fn looks_up_the_name_pull_base_image_gave_each_base() {
        let digest = format!("sha256:{}", "d".repeat(64));
        let dockerfile = format!("FROM base@{digest}\nFROM tools\n");
        let pulled = json!([
            {"from": format!("base@{digest}"), "pulled": format!("127.0.0.1:5000/base@{digest}"), "tagged": null},
            {"from": "tools", "pulled": "127.0.0.1:5000/tools:latest", "tagged": "tools:latest"}
        ]);
        let mut workflow = Workflow { dockerfile, ..Default::default() };
        workflow.results.entry("prebuild".into()).or_default().insert("pull_base_image".into(), pulled);
        let images: BTreeMap<String, String> =
            [(format!("127.0.0.1:5000/base@{digest}"), id(b'1')), ("tools:latest".to_owned(), id(b'2'))].into();
        let fake = FakeHost::new(Phase::Prebuild, workflow).on_inspect(move |name| match images.get(name) {
            Some(id) => Ok(json!({"Id": id})),
            None => Err(PluginError::with_kind(ErrorKind::Host, format!("no such image: {name}"))),
        });
        fake.run(&ChangeFromInDockerfile, json!({})).expect("rewrites");
        assert_eq!(fake.workflow().dockerfile, format!("FROM {}\nFROM {}\n", id(b'1'), id(b'2')));
    }

    #[test]
    fn a_base_that_is_not_in_the_engine_says_to_run_pull_base_image_first() {
        let fake = host("FROM base:1\n", &[]);
        let err = fake.run(&ChangeFromInDockerfile, json!({})).expect_err("not pulled");
        assert_eq!(
            err.message,
            "the base image base:1 (FROM base:1) is not in the engine: list pull_base_image before change_from_in_dockerfile"
        );
        assert_eq!(fake.workflow().dockerfile, "FROM base:1\n", "unchanged");
        // Another engine failure is passed on as it is.
        let broken =
            FakeHost::new(Phase::Prebuild, Workflow { dockerfile: "FROM base\n".into(), ..Default::default() })
                .on_inspect(|_| Err(PluginError::with_kind(ErrorKind::Host, "cannot reach the Docker engine")));
        let err = broken.run(&ChangeFromInDockerfile, json!({})).expect_err("no engine");
        assert_eq!(err.message, "cannot reach the Docker engine");
        let no_id = FakeHost::new(Phase::Prebuild, Workflow { dockerfile: "FROM base\n".into(), ..Default::default() })
            .answer("inspect_image", json!({}));
        let err = no_id.run(&ChangeFromInDockerfile, json!({})).expect_err("no Id");
        assert_eq!(err.message, "the engine's inspection of base:latest (FROM base) has no Id");
    }

    #[test]
    fn scratch_stage_aliases_and_ids_are_left_alone() {
        let dockerfile = format!("FROM scratch AS a\nFROM a\nFROM {}\n", id(b'c'));
        let fake = host(&dockerfile, &[]);
        assert_eq!(fake.run(&ChangeFromInDockerfile, json!({})).expect("runs"), json!({}));
        assert_eq!(fake.workflow().dockerfile, dockerfile);
        assert!(!fake.requests().iter().any(|r| matches!(r, Request::SetDockerfile { .. })));
    }
}
