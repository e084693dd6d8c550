//! `assert_labels`: fails the build when the image would lack any of `required_labels` (by
//! default `name`, `version` and `release`), so that nothing unnamed gets built and pushed
//! (atomic-reactor's `pre_assert_labels.py`). Must not fail by default.
//!
//! ```json
//! {"name": "assert_labels", "args": {"required_labels": ["name", "version", "release"]}}
//! ```
//!
//! The labels checked are those the image gets besides its base image's: the final stage's
//! `LABEL`s (so list it after `add_labels_in_dockerfile`) and the labels plugins gave the
//! engine. A label set to `""` counts as missing, as in atomic-reactor.
//!
//! Where it deliberately differs from atomic-reactor 1.6: an empty `required_labels` list
//! requires nothing (1.6 used its defaults for an empty list), and labels plugins gave the
//! engine count (1.6 read the Dockerfile alone).

use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::image_labels;

pub(crate) const RETURNS: &str = "`null`; it fails naming the missing labels";

const DEFAULT_REQUIRED: [&str; 3] = ["name", "version", "release"];

/// Checks that the image will have the required labels.
pub struct AssertLabels;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssertLabelsArgs {
    #[serde(default = "default_required")]
    required_labels: Vec<String>,
}

fn default_required() -> Vec<String> {
    DEFAULT_REQUIRED.iter().map(|s| s.to_string()).collect()
}

impl Plugin for AssertLabels {
    fn manifest(&self) -> Manifest {
        Manifest::new("assert_labels", [Phase::Prebuild], env!("CARGO_PKG_VERSION"))
            .description("fails the build when the image would lack any of the required labels")
            .args_schema(json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "required_labels": {
                        "type": "array", "items": {"type": "string"},
                        "default": DEFAULT_REQUIRED,
                        "description": "Labels the final stage's LABELs (or labels set by plugins) must give a non-empty value."
                    }
                }
            }))
            .allowed_to_fail(false)
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let args: AssertLabelsArgs = args.parse()?;
        let workflow = ctx.workflow()?;
        let dockerfile = image_labels::parse(&workflow)?;
        let labels = image_labels::image_labels(&dockerfile, &workflow);
        let missing: Vec<&str> = args
            .required_labels
            .iter()
            .filter(|name| labels.get(*name).is_none_or(|v| v.is_empty()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(PluginError::new(format!(
                "the image would lack the required label{} {}: set {} with LABEL in the Dockerfile or with \
                 add_labels_in_dockerfile listed before assert_labels",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", "),
                if missing.len() == 1 { "it" } else { "them" },
            )));
        }
        log::info!("the image has the required labels: {}", args.required_labels.join(", "));
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor_plugin_api::protocol::Request;
    use reactor_plugin_api::testing::FakeHost;
    use reactor_plugin_api::Workflow;

    fn fake(dockerfile: &str) -> FakeHost {
        FakeHost::new(Phase::Prebuild, Workflow { dockerfile: dockerfile.into(), ..Default::default() })
    }

    #[test]
    fn passes_when_the_final_stage_has_name_version_and_release() {
        let fake = fake("FROM a AS build\nFROM busybox\nLABEL name=app version=1 release=2\n");
        assert_eq!(fake.run(&AssertLabels, json!({})).expect("passes"), Value::Null);
        assert_eq!(fake.requests(), [Request::Workflow]);
    }

    #[test]
    fn names_every_missing_label_in_one_line() {
        let fake = fake("FROM busybox\nLABEL name=app release=\"\"\n");
        let err = fake.run(&AssertLabels, json!({})).expect_err("version and release are missing");
        assert_eq!(
            err.message,
            "the image would lack the required labels version, release: set them with LABEL in the Dockerfile \
             or with add_labels_in_dockerfile listed before assert_labels"
        );
    }

    #[test]
    fn an_earlier_stages_labels_do_not_count() {
        let fake = fake("FROM busybox AS build\nLABEL a=1\nFROM busybox\n");
        let err = fake.run(&AssertLabels, json!({"required_labels": ["a"]})).expect_err("a is on another stage");
        assert!(err.message.starts_with("the image would lack the required label a: set it "), "{err}");
    }

    #[test]
    fn counts_labels_set_by_plugins_and_takes_its_own_list() {
        let workflow = Workflow {
            dockerfile: "FROM busybox\nLABEL vendor=acme\n".into(),
            labels: [("component".to_owned(), "web".to_owned())].into(),
            ..Default::default()
        };
        let fake = FakeHost::new(Phase::Prebuild, workflow);
        let args = json!({"required_labels": ["vendor", "component"]});
        assert_eq!(fake.run(&AssertLabels, args).expect("passes"), Value::Null);
        assert_eq!(fake.run(&AssertLabels, json!({"required_labels": []})).expect("nothing required"), Value::Null);
    }

    #[test]
    fn must_not_fail_by_default() {
        let manifest = AssertLabels.manifest();
        assert!(!manifest.allowed_to_fail);
        assert_eq!(manifest.args_schema["properties"]["required_labels"]["default"], json!(DEFAULT_REQUIRED));
    }
}
