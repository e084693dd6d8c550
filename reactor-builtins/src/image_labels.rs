//! What the label plugins (`add_labels_in_dockerfile`, `assert_labels`, `distribution_scope`,
//! `add_dockerfile`) share: the Dockerfile as docker will read it, the labels the image will get,
//! and the labels of the image its final stage builds on.

use std::collections::BTreeMap;

use reactor_plugin_api::dockerfile::{Base, Dockerfile, Stage};
use reactor_plugin_api::{Context, PluginError, Workflow};
use serde_json::Value;

/// The workflow's Dockerfile, parsed with the build args the engine will get (they can change
/// what a `FROM` names).
pub(crate) fn parse(workflow: &Workflow) -> Result<Dockerfile, PluginError> {
    let build_args: Vec<(&String, &String)> = workflow.build_args.iter().collect();
    Dockerfile::parse_with_build_args(&workflow.dockerfile, &build_args)
        .map_err(|e| PluginError::new(format!("cannot read the Dockerfile: {e}")))
}

/// The labels the final stage's `LABEL`s set, inherited stages included (not the base image's).
pub(crate) fn dockerfile_labels(dockerfile: &Dockerfile) -> BTreeMap<String, String> {
    dockerfile.labels().iter().cloned().collect()
}

/// The labels the built image will carry besides its base image's: the final stage's `LABEL`s,
/// overridden by the labels plugins gave the engine (`workflow.labels`, applied after the
/// Dockerfile).
pub(crate) fn image_labels(dockerfile: &Dockerfile, workflow: &Workflow) -> BTreeMap<String, String> {
    let mut labels = dockerfile_labels(dockerfile);
    labels.extend(workflow.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    labels
}

/// The image the final stage builds on, following `FROM <earlier stage>` back to its `FROM`
/// image; `None` for `scratch` or a Dockerfile without a `FROM`.
pub(crate) fn final_base_image(dockerfile: &Dockerfile) -> Option<&str> {
    let mut stage: &Stage = dockerfile.final_stage()?;
    // Each step goes to an earlier stage, so this ends.
    while let Base::Stage(earlier) = stage.base() {
        stage = dockerfile.stages().get(earlier)?;
    }
    match stage.base() {
        Base::Image => Some(stage.image()),
        Base::Scratch | Base::Stage(_) => None,
    }
}

/// The base image of the final stage and its labels (`Config.Labels` of the engine's
/// inspection); `None` and no labels for `scratch`. The base image must be on the engine.
pub(crate) fn base_image_labels(
    ctx: &Context,
    dockerfile: &Dockerfile,
) -> Result<(Option<String>, BTreeMap<String, String>), PluginError> {
    let Some(base) = final_base_image(dockerfile) else {
        return Ok((None, BTreeMap::new()));
    };
    let inspect = ctx.inspect_image(base).map_err(|e| {
        PluginError::new(format!(
            "cannot inspect the base image {base}: {e}; it must be on the engine before this plugin runs \
             (list pull_base_image before it, or docker pull it)"
        ))
    })?;
    Ok((Some(base.to_owned()), labels_of(&inspect)))
}

/// `Config.Labels` of an engine's image inspection (null when the image has none).
pub(crate) fn labels_of(inspect: &Value) -> BTreeMap<String, String> {
    inspect["Config"]["Labels"]
        .as_object()
        .map(|labels| labels.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
        .unwrap_or_default()
}

/// Labels in the order they were set, a later value of a key replacing the earlier one in place
/// (as a Python dict does, which is how atomic-reactor ordered its `LABEL` line).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct OrderedLabels(Vec<(String, String)>);

impl OrderedLabels {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub(crate) fn set(&mut self, key: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, old)) => value.clone_into(old),
            None => self.0.push((key.to_owned(), value.to_owned())),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub(crate) fn to_map(&self) -> BTreeMap<String, String> {
        self.0.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_base_follows_stage_aliases_to_their_from_image() {
        let df = Dockerfile::parse("FROM busybox:1 AS one\nFROM one AS two\nFROM two\nRUN true\n").expect("parses");
        assert_eq!(final_base_image(&df), Some("busybox:1"));
        let df = Dockerfile::parse("FROM busybox AS build\nFROM scratch\nCOPY --from=build /a /\n").expect("parses");
        assert_eq!(final_base_image(&df), None);
        let df = Dockerfile::parse("ARG BASE=alpine:3\nFROM $BASE\n").expect("parses");
        assert_eq!(final_base_image(&df), Some("alpine:3"));
    }

    #[test]
    fn the_image_gets_the_final_stages_labels_then_the_plugins() {
        let workflow = Workflow {
            dockerfile: "FROM a AS x\nLABEL name=x-only\nFROM b\nLABEL name=n version=1\n".into(),
            labels: [("version".to_owned(), "2".to_owned())].into(),
            ..Default::default()
        };
        let df = parse(&workflow).expect("parses");
        let labels = image_labels(&df, &workflow);
        assert_eq!(labels, BTreeMap::from([("name".into(), "n".into()), ("version".into(), "2".into())]));
    }

    #[test]
    fn ordered_labels_replace_in_place() {
        let mut labels = OrderedLabels::default();
        labels.set("b", "1");
        labels.set("a", "2");
        labels.set("b", "3");
        assert_eq!(labels.iter().collect::<Vec<_>>(), [("b", "3"), ("a", "2")]);
        assert!(labels.contains("a") && !labels.contains("c"));
    }

    #[test]
    fn labels_of_an_inspection_without_labels_are_empty() {
        assert!(labels_of(&serde_json::json!({"Config": {"Labels": null}})).is_empty());
        assert_eq!(
            labels_of(&serde_json::json!({"Config": {"Labels": {"a": "b"}}})),
            BTreeMap::from([("a".into(), "b".into())])
        );
    }
}
