//! `tag_by_labels`: names the built image after its `name`, `version` and `release` labels, as
//! atomic-reactor's `post_tag_by_labels.py` does. It adds the unique name `name:<tag of the
//! workflow's image>` and, unless `unique_tag_only`, the primary names `name:version-release`,
//! `name:version` and `name:latest` to the workspace's `tag_conf`, where `tag_and_push` finds
//! them, and to the result document's `tags`.
//!
//! ```json
//! {"name": "tag_by_labels", "args": {"unique_tag_only": false}}
//! ```
//!
//! The labels are read from the built image, so a label set by the Dockerfile, by
//! `add_labels_in_dockerfile` or inherited from the base image all count; the old capitalised
//! names (`Name`, `Version`, `Release`) are accepted when the new ones are absent.
//!
//! Where it differs from atomic-reactor 1.6:
//! - an image without a tag gets the unique name `name:latest` (1.6 made `name:None`);
//! - a missing `version` or `release` label fails the plugin naming it (1.6 made `name:None-None`);
//! - a label value that does not make a valid image name fails the plugin naming it, instead of
//!   failing later in the push;
//! - unknown args are refused by the schema (1.6 logged and ignored them).

use std::collections::BTreeMap;

use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError};
use serde_json::{json, Value};

use crate::image_name::ImageName;
use crate::shared::TagConf;

pub(crate) const RETURNS: &str =
    "`{\"unique_images\": [...], \"primary_images\": [...]}`: the names it added to `tag_conf` (also in the result document's `tags`)";

/// Tags the built image by its name, version and release labels.
pub struct TagByLabels;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TagByLabelsArgs {
    #[serde(default)]
    unique_tag_only: bool,
}

impl Plugin for TagByLabels {
    fn manifest(&self) -> Manifest {
        Manifest::new("tag_by_labels", [Phase::Postbuild], env!("CARGO_PKG_VERSION"))
            .description(
                "names the built image after its name, version and release labels (`name:<image tag>`, \
                 `name:V-R`, `name:V`, `name:latest`) for tag_and_push to push",
            )
            .args_schema(json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "unique_tag_only": {
                        "type": "boolean",
                        "default": false,
                        "description": "add only the unique name `name:<tag of the workflow's image>`, not the \
                                        primary names `name:V-R`, `name:V` and `name:latest`",
                    },
                },
            }))
            .requires(["workspace"])
            .allowed_to_fail(false)
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let args: TagByLabelsArgs = args.parse()?;
        let workflow = ctx.workflow()?;
        let labels = BuiltLabels::read(ctx, "tag_by_labels")?;
        let name = labels.get("name")?;
        let image = ImageName::parse(&workflow.image).map_err(|e| e.context("tag_by_labels: the workflow's image"))?;
        // Docker tags an image named without a tag as `latest`.
        let unique_tag = image.tag().unwrap_or("latest");

        let unique = vec![labels.image_name(name, unique_tag)?];
        let primary = if args.unique_tag_only {
            log::debug!("unique_tag_only: no primary names");
            Vec::new()
        } else {
            let (version, release) = (labels.get("version")?, labels.get("release")?);
            vec![
                labels.image_name(name, &format!("{version}-{release}"))?,
                labels.image_name(name, version)?,
                labels.image_name(name, "latest")?,
            ]
        };

        let mut tag_conf = TagConf::load(ctx)?;
        add_new(&mut tag_conf.unique_images, &unique);
        add_new(&mut tag_conf.primary_images, &primary);
        tag_conf.store(ctx)?;
        let added: Vec<&str> = unique.iter().chain(&primary).map(String::as_str).collect();
        ctx.add_tags(&added)?;
        log::info!("tagging the image as {}", added.join(", "));
        Ok(json!({"unique_images": unique, "primary_images": primary}))
    }
}

/// Appends each of `names` that `list` does not hold yet.
pub(crate) fn add_new(list: &mut Vec<String>, names: &[String]) {
    for name in names {
        if !list.contains(name) {
            list.push(name.clone());
        }
    }
}

/// The built image's labels, for the tagging plugins, which name the image after them.
pub(crate) struct BuiltLabels {
    plugin: &'static str,
    labels: BTreeMap<String, String>,
}

impl BuiltLabels {
    /// The labels of the image the build produced (its `Config.Labels`); an error when the image
    /// was not built.
    pub(crate) fn read(ctx: &Context, plugin: &'static str) -> Result<BuiltLabels, PluginError> {
        let image_id = ctx.build_result()?.image_id.ok_or_else(|| {
            PluginError::new(format!(
                "{plugin}: there is no built image to read the labels of (did the build succeed?)"
            ))
        })?;
        let inspect = ctx.inspect_image(&image_id)?;
        let labels = match &inspect["Config"]["Labels"] {
            Value::Object(labels) => {
                labels.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect()
            }
            _ => BTreeMap::new(),
        };
        Ok(BuiltLabels { plugin, labels })
    }

    /// The value of label `name`, or of its older capitalised form (`Name` for `name`), as
    /// atomic-reactor's preferred labels; an error naming the label when neither is set.
    pub(crate) fn get(&self, name: &str) -> Result<&str, PluginError> {
        self.find(name).ok_or_else(|| {
            PluginError::new(format!(
                "{}: the built image has no '{name}' label: add `LABEL {name}=…` to the Dockerfile or set it with \
                 add_labels_in_dockerfile",
                self.plugin
            ))
        })
    }

    /// The value of label `name` or its older capitalised form, if either is set.
    pub(crate) fn find(&self, name: &str) -> Option<&str> {
        let value = self.labels.get(name).or_else(|| self.labels.get(&capitalised(name)));
        value.map(String::as_str)
    }

    /// `repository:tag` as an image name, checked: a label value can be anything.
    pub(crate) fn image_name(&self, repository: &str, tag: &str) -> Result<String, PluginError> {
        let text = format!("{repository}:{tag}");
        ImageName::parse(&text).map(|name| name.to_string()).map_err(|e| {
            e.context(format!(
                "{}: the labels do not make a valid image name (check the name and version labels)",
                self.plugin
            ))
        })
    }
}

fn capitalised(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor_plugin_api::protocol::Request;
    use reactor_plugin_api::testing::FakeHost;
    use reactor_plugin_api::{BuildResult, ErrorKind, Workflow};

    pub(crate) fn built(image: &str, labels: Value) -> FakeHost {
        let workflow = Workflow {
            image: image.into(),
            build_result: Some(BuildResult { image_id: Some("sha256:built".into()), ..Default::default() }),
            ..Default::default()
        };
        FakeHost::new(Phase::Postbuild, workflow).on_inspect(move |name| {
            assert_eq!(name, "sha256:built", "the built image is inspected");
            Ok(json!({"Id": "sha256:built", "Config": {"Labels": labels.clone()}}))
        })
    }

    fn tag_conf(fake: &FakeHost) -> TagConf {
        serde_json::from_value(fake.workspace_entry("tag_conf").expect("tag_conf is set")).expect("a tag_conf")
    }

    #[test]
    fn adds_the_unique_and_primary_names_to_tag_conf_and_the_tags() {
        let fake = built("app:build-7", json!({"name": "ns/app", "version": "1.2", "release": "3"}));
        let result = fake.run(&TagByLabels, json!({})).expect("runs");
        assert_eq!(
            result,
            json!({"unique_images": ["ns/app:build-7"], "primary_images": ["ns/app:1.2-3", "ns/app:1.2", "ns/app:latest"]})
        );
        let conf = tag_conf(&fake);
        assert_eq!(conf.unique_images, ["ns/app:build-7"]);
        assert_eq!(conf.primary_images, ["ns/app:1.2-3", "ns/app:1.2", "ns/app:latest"]);
        assert_eq!(fake.workflow().tags, ["ns/app:build-7", "ns/app:1.2-3", "ns/app:1.2", "ns/app:latest"]);
        assert_eq!(fake.requests()[..2], [Request::Workflow, Request::Workflow]);
        assert_eq!(fake.requests()[2], Request::InspectImage { name: "sha256:built".into() });
    }

    #[test]
    fn unique_tag_only_needs_only_the_name_label() {
        let fake = built("app:1", json!({"name": "app"}));
        let result = fake.run(&TagByLabels, json!({"unique_tag_only": true})).expect("runs");
        assert_eq!(result, json!({"unique_images": ["app:1"], "primary_images": []}));
        assert_eq!(tag_conf(&fake), TagConf { unique_images: vec!["app:1".into()], primary_images: vec![] });
    }

    #[test]
    fn keeps_what_earlier_plugins_put_in_tag_conf_and_adds_each_name_once() {
        let earlier = json!({"unique_images": ["app:1"], "primary_images": ["app:extra"]});
        let fake = built("x:1", json!({"name": "app", "version": "2", "release": "1"})).workspace("tag_conf", earlier);
        fake.run(&TagByLabels, json!({})).expect("runs");
        let conf = tag_conf(&fake);
        assert_eq!(conf.unique_images, ["app:1"]);
        assert_eq!(conf.primary_images, ["app:extra", "app:2-1", "app:2", "app:latest"]);
    }

    #[test]
    fn reads_the_old_capitalised_labels_and_prefers_the_new_ones() {
        let fake = built("app", json!({"Name": "old", "name": "new", "Version": "1", "Release": "2"}));
        let result = fake.run(&TagByLabels, json!({})).expect("runs");
        // No tag on the workflow's image: docker tagged it `latest`.
        assert_eq!(
            result,
            json!({"unique_images": ["new:latest"], "primary_images": ["new:1-2", "new:1", "new:latest"]})
        );
    }

    #[test]
    fn a_missing_label_fails_naming_it() {
        for (labels, missing) in [
            (json!({"version": "1", "release": "2"}), "name"),
            (json!({"name": "app", "release": "2"}), "version"),
            (json!({"name": "app", "version": "1"}), "release"),
            (Value::Null, "name"),
        ] {
            let fake = built("app:1", labels);
            let err = fake.run(&TagByLabels, json!({})).expect_err(missing);
            assert_eq!(
                err.message,
                format!(
                    "tag_by_labels: the built image has no '{missing}' label: add `LABEL {missing}=…` to the Dockerfile or set it with add_labels_in_dockerfile"
                )
            );
            assert_eq!(fake.workspace_entry("tag_conf"), None, "nothing half done");
        }
    }

    #[test]
    fn labels_that_make_no_image_name_fail_naming_the_name() {
        let fake = built("app:1", json!({"name": "My App", "version": "1", "release": "2"}));
        let err = fake.run(&TagByLabels, json!({})).expect_err("not a valid name");
        assert!(err.message.starts_with("tag_by_labels: the labels do not make a valid image name"), "{err}");
        assert!(err.message.contains("'My App:1'"), "{err}");
    }

    #[test]
    fn without_a_built_image_it_fails_saying_so() {
        let workflow =
            Workflow { image: "app:1".into(), build_result: Some(BuildResult::default()), ..Default::default() };
        let err = FakeHost::new(Phase::Postbuild, workflow).run(&TagByLabels, json!({})).expect_err("no image");
        assert_eq!(
            err.message,
            "tag_by_labels: there is no built image to read the labels of (did the build succeed?)"
        );
        let err =
            FakeHost::new(Phase::Postbuild, Workflow::default()).run(&TagByLabels, json!({})).expect_err("no build");
        assert_eq!((err.kind, err.message.as_str()), (ErrorKind::Host, "the image has not been built yet"));
    }

    #[test]
    fn bad_args_are_refused() {
        let fake = built("app:1", json!({"name": "app"}));
        let err = fake.run(&TagByLabels, json!({"unique_tag_only": "yes"})).expect_err("not a bool");
        assert_eq!(err.kind, ErrorKind::InvalidArgs);
        assert!(fake.requests().is_empty(), "nothing was asked of the host");
    }
}
