//! `distribution_scope`: fails the build when the image's `distribution-scope` label is less
//! restrictive than its parent image's, so an image cannot be published more widely than what
//! it is built on allows (atomic-reactor's `pre_distribution_scope.py`). The scopes, most
//! restrictive first: `private`, `authoritative-source-only`, `restricted`, `public`. Must not
//! fail by default.
//!
//! ```json
//! {"name": "distribution_scope"}
//! ```
//!
//! The image's scope is the one its final stage's `LABEL` (or a plugin, through the engine's
//! labels) sets; without one it inherits its parent's and there is nothing to check, nor when
//! the parent (the final stage's base image, which must be on the engine; `scratch` has none)
//! has no scope.
//!
//! Where it deliberately differs from atomic-reactor 1.6: a value that is not one of the four
//! scopes, on the image or its parent, fails the plugin naming it (1.6 logged a warning and
//! checked nothing).

use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError};
use serde_json::{json, Value};

use crate::image_labels;

pub(crate) const RETURNS: &str = "`null`; it fails when the image's scope is wider than its parent's";

const LABEL: &str = "distribution-scope";
/// Most restrictive first.
const SCOPES: [&str; 4] = ["private", "authoritative-source-only", "restricted", "public"];

/// Checks the image's distribution scope against its parent's.
pub struct DistributionScope;

impl Plugin for DistributionScope {
    fn manifest(&self) -> Manifest {
        Manifest::new("distribution_scope", [Phase::Prebuild], env!("CARGO_PKG_VERSION"))
            .description(
                "fails the build when the image's distribution-scope label is less restrictive than its parent's",
            )
            .args_schema(json!({"type": "object", "additionalProperties": false}))
            .allowed_to_fail(false)
    }

    fn run(&self, ctx: &Context, _args: Args) -> Result<Value, PluginError> {
        let workflow = ctx.workflow()?;
        let dockerfile = image_labels::parse(&workflow)?;
        let Some(value) = image_labels::image_labels(&dockerfile, &workflow).remove(LABEL) else {
            log::debug!("the image sets no {LABEL}: nothing to check");
            return Ok(Value::Null);
        };
        let scope = rank(&value, "the image")?;
        let (parent, parent_labels) = image_labels::base_image_labels(ctx, &dockerfile)?;
        let parent = parent.unwrap_or_else(|| "scratch".to_owned());
        let Some(parent_value) = parent_labels.get(LABEL) else {
            log::debug!("the parent image {parent} sets no {LABEL}: nothing to check");
            return Ok(Value::Null);
        };
        let parent_scope = rank(parent_value, &format!("the parent image {parent}"))?;
        if scope > parent_scope {
            return Err(PluginError::new(format!(
                "{LABEL}={value} is less restrictive than the parent image {parent}'s {LABEL}={parent_value}; \
                 set {LABEL} to one of: {}",
                SCOPES[..=parent_scope].join(", ")
            )));
        }
        log::info!("{LABEL}={value} is allowed on a parent with {LABEL}={parent_value}");
        Ok(Value::Null)
    }
}

fn rank(value: &str, whose: &str) -> Result<usize, PluginError> {
    SCOPES.iter().position(|s| *s == value).ok_or_else(|| {
        PluginError::new(format!(
            "{whose} has {LABEL}={value:?}, which is not a scope; use one of: {}",
            SCOPES.join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor_plugin_api::protocol::Request;
    use reactor_plugin_api::testing::FakeHost;
    use reactor_plugin_api::{ErrorKind, Workflow};

    /// The image's Dockerfile sets `scope` (if any) on a parent with `parent_scope` (if any).
    fn check(scope: Option<&str>, parent_scope: Option<&str>) -> (FakeHost, Result<Value, PluginError>) {
        let mut dockerfile = String::from("FROM parent:1\nRUN true\n");
        if let Some(scope) = scope {
            dockerfile += &format!("LABEL {LABEL}={scope}\n");
        }
        let parent_labels = parent_scope.map(|s| json!({LABEL: s})).unwrap_or(Value::Null);
        let fake = FakeHost::new(Phase::Prebuild, Workflow { dockerfile, ..Default::default() })
            .on_inspect(move |_| Ok(json!({"Config": {"Labels": parent_labels.clone()}})));
        let result = fake.run(&DistributionScope, json!({}));
        (fake, result)
    }

    #[test]
    fn a_scope_as_restrictive_as_the_parents_or_more_passes() {
        for (i, parent) in SCOPES.iter().enumerate() {
            for scope in &SCOPES[..=i] {
                let (_, result) = check(Some(scope), Some(parent));
                assert_eq!(result.expect("allowed"), Value::Null, "{scope} on {parent}");
            }
        }
    }

    #[test]
    fn a_less_restrictive_scope_fails_saying_which_are_allowed() {
        let (_, result) = check(Some("public"), Some("authoritative-source-only"));
        assert_eq!(
            result.expect_err("public on authoritative-source-only").message,
            "distribution-scope=public is less restrictive than the parent image parent:1's \
             distribution-scope=authoritative-source-only; set distribution-scope to one of: private, \
             authoritative-source-only"
        );
        for (i, parent) in SCOPES.iter().enumerate() {
            for scope in &SCOPES[i + 1..] {
                assert!(check(Some(scope), Some(parent)).1.is_err(), "{scope} on {parent}");
            }
        }
    }

    #[test]
    fn nothing_to_check_without_a_scope_on_either_side() {
        let (fake, result) = check(None, Some("private"));
        assert_eq!(result.expect("inherits the parent's"), Value::Null);
        assert_eq!(fake.requests(), [Request::Workflow], "the parent is not even inspected");
        let (_, result) = check(Some("public"), None);
        assert_eq!(result.expect("the parent has none"), Value::Null);
    }

    #[test]
    fn an_unknown_scope_is_an_error_naming_it() {
        let (_, result) = check(Some("worldwide"), Some("public"));
        assert_eq!(
            result.expect_err("not a scope").message,
            "the image has distribution-scope=\"worldwide\", which is not a scope; use one of: private, \
             authoritative-source-only, restricted, public"
        );
        let (_, result) = check(Some("public"), Some("secret"));
        assert!(result
            .expect_err("not a scope")
            .message
            .starts_with("the parent image parent:1 has distribution-scope=\"secret\""));
    }

    #[test]
    fn a_scope_set_by_a_plugin_counts_and_scratch_has_no_parent_scope() {
        let workflow = Workflow {
            dockerfile: "FROM scratch\n".into(),
            labels: [(LABEL.to_owned(), "public".to_owned())].into(),
            ..Default::default()
        };
        let fake = FakeHost::new(Phase::Prebuild, workflow);
        assert_eq!(fake.run(&DistributionScope, json!({})).expect("nothing above scratch"), Value::Null);

        let workflow = Workflow {
            dockerfile: "FROM parent:1\nLABEL distribution-scope=private\n".into(),
            labels: [(LABEL.to_owned(), "public".to_owned())].into(),
            ..Default::default()
        };
        let fake = FakeHost::new(Phase::Prebuild, workflow)
            .on_inspect(|_| Ok(json!({"Config": {"Labels": {LABEL: "restricted"}}})));
        assert!(fake.run(&DistributionScope, json!({})).is_err(), "the engine's label wins over the Dockerfile's");
    }

    #[test]
    fn a_parent_that_cannot_be_inspected_fails_the_check() {
        let workflow =
            Workflow { dockerfile: "FROM gone:1\nLABEL distribution-scope=public\n".into(), ..Default::default() };
        let fake = FakeHost::new(Phase::Prebuild, workflow)
            .on_inspect(|name| Err(PluginError::with_kind(ErrorKind::Host, format!("no such image: {name}"))));
        let err = fake.run(&DistributionScope, json!({})).expect_err("no parent");
        assert!(err.message.starts_with("cannot inspect the base image gone:1: no such image: gone:1;"), "{err}");
        assert!(!DistributionScope.manifest().allowed_to_fail);
    }
}
