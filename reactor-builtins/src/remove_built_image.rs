//! `remove_built_image`: at the end of the build, force-removes from the engine what the build
//! left there: the built image, its name, the tags made to push it and, unless told not to, the
//! base images `pull_base_image` pulled (atomic-reactor's `exit_remove_built_image.py`). For
//! build machines that keep images in registries only.
//!
//! ```json
//! {"name": "remove_built_image", "args": {"remove_pulled_base_image": true}}
//! ```
//!
//! - It removes the built image (`build_result.image_id`, else the build's image name), the
//!   image name, the names in the workspace's `remove_built_image.images_to_remove` (the tags
//!   `tag_and_push` made) and `remove_built_image.base_images` (what `pull_base_image` brought in).
//! - An image that is already gone is fine (logged). Any other engine error is reported as this
//!   plugin's failure once everything else has been tried; exit plugins may fail by default, so
//!   that does not fail the build unless the entry says `"is_allowed_to_fail": false`.
//! - The result lists the IDs and names removed, in order.
//!
//! Where it deliberately differs from atomic-reactor 1.6:
//! - When the built image also carries a name the build did not make (a Dockerfile with only a
//!   `FROM` builds its base's very image), only the build's names are removed, never the image
//!   by ID: the base image stays with its other names.
//! - Base images are force-removed like the rest (1.6 did not force them); `pull_base_image` only
//!   hands over names that were not in the engine before the build.
//! - Engine errors other than a missing image are reported, not only logged.

use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::image_name::ImageName;
use crate::shared::{is_no_such_image, ToRemove, TO_REMOVE};

pub(crate) const RETURNS: &str = "the list of image IDs and names it removed";

/// Removes the built image and what the build pulled or tagged.
pub struct RemoveBuiltImage;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveArgs {
    #[serde(default = "yes")]
    remove_pulled_base_image: bool,
}

fn yes() -> bool {
    true
}

/// What has been removed so far, and what could not be.
#[derive(Default)]
struct Removal {
    removed: Vec<String>,
    failures: Vec<String>,
}

impl Removal {
    /// Force-removes `name`; a missing image is not a failure.
    fn remove(&mut self, ctx: &Context, name: &str) {
        if self.removed.iter().any(|r| same_name(r, name)) {
            return;
        }
        match ctx.remove_image(name, true) {
            Ok(()) => {
                log::info!("removed {name}");
                self.removed.push(name.to_owned());
            }
            Err(e) if is_no_such_image(&e) => log::info!("{name} is already gone"),
            Err(e) => {
                log::warn!("cannot remove {name}: {}", e.message);
                self.failures.push(format!("{name}: {}", e.message));
            }
        }
    }
}

impl Plugin for RemoveBuiltImage {
    fn manifest(&self) -> Manifest {
        Manifest::new("remove_built_image", [Phase::Exit], env!("CARGO_PKG_VERSION"))
            .description(
                "removes the built image, the tags made to push it and the pulled base images from the engine; images already gone are fine",
            )
            .args_schema(json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "remove_pulled_base_image": {
                        "type": "boolean",
                        "default": true,
                        "description": "Also remove the base images pull_base_image pulled and tagged for this build (only names that were not in the engine before it)."
                    }
                }
            }))
            .requires(["workspace"])
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let args: RemoveArgs = args.parse()?;
        let workflow = ctx.workflow()?;
        let recorded: ToRemove = ctx.workspace(TO_REMOVE)?.unwrap_or_default();
        let mut ours: Vec<String> = Vec::new();
        if !workflow.image.is_empty() {
            ours.push(workflow.image.clone());
        }
        ours.extend(recorded.images_to_remove);
        if args.remove_pulled_base_image {
            ours.extend(recorded.base_images);
        }

        let mut removal = Removal::default();
        let built = workflow.build_result.and_then(|b| b.image_id).filter(|id| !id.is_empty());
        if let Some(id) = built {
            remove_by_id(ctx, &id, &ours, &mut removal);
        }
        for name in &ours {
            removal.remove(ctx, name);
        }
        if removal.failures.is_empty() {
            Ok(json!(removal.removed))
        } else {
            Err(PluginError::new(format!(
                "removed {}, but could not remove {}",
                if removal.removed.is_empty() { "nothing".to_owned() } else { removal.removed.join(", ") },
                removal.failures.join("; ")
            )))
        }
    }
}

/// Removes the built image by `id` with all its names, unless it carries a name not in `ours`;
/// then its own names are left to the caller.
fn remove_by_id(ctx: &Context, id: &str, ours: &[String], removal: &mut Removal) {
    let inspect = match ctx.inspect_image(id) {
        Ok(inspect) => inspect,
        Err(e) if is_no_such_image(&e) => return log::info!("the built image {id} is already gone"),
        Err(e) => return removal.failures.push(format!("{id}: {}", e.message)),
    };
    let names: Vec<String> =
        inspect["RepoTags"].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_owned)).collect();
    let foreign: Vec<&str> =
        names.iter().filter(|n| !ours.iter().any(|o| same_name(o, n))).map(String::as_str).collect();
    if !foreign.is_empty() {
        log::info!(
            "the built image {id} is also {}, which this build did not make: removing only the build's names",
            foreign.join(", ")
        );
        return;
    }
    let before = removal.removed.len();
    removal.remove(ctx, id);
    if removal.removed.len() > before && !names.is_empty() {
        // Force-removing the ID took its names with it.
        log::info!("removed with it: {}", names.join(", "));
        removal.removed.extend(names);
    }
}

/// Whether two references name the same image (`app` is `app:latest`).
fn same_name(a: &str, b: &str) -> bool {
    let normal = |s: &str| ImageName::parse(s).map_or_else(|_| s.to_owned(), |n| n.or_latest().to_string());
    a == b || normal(a) == normal(b)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use super::*;
    use reactor_plugin_api::protocol::Request;
    use reactor_plugin_api::testing::FakeHost;
    use reactor_plugin_api::{BuildResult, ErrorKind, Workflow};

    const BUILT: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const BASE: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    /// An engine holding `images` (name or id → id), where removing an ID with force removes its
    /// names too, as docker does.
    fn host(image_id: Option<&str>, images: &[(&str, &str)]) -> FakeHost {
        let engine: Arc<Mutex<BTreeMap<String, String>>> =
            Arc::new(Mutex::new(images.iter().map(|(n, i)| (n.to_string(), i.to_string())).collect()));
        let (inspected, removed) = (engine.clone(), engine);
        let workflow = Workflow {
            image: "app:1".into(),
            build_result: Some(BuildResult { image_id: image_id.map(Into::into), ..Default::default() }),
            ..Default::default()
        };
        let missing = |name: &str| PluginError::with_kind(ErrorKind::Host, format!("no such image: {name}"));
        FakeHost::new(Phase::Exit, workflow)
            .on_inspect(move |name| {
                let engine = inspected.lock().expect("lock");
                let id = engine.get(name).ok_or_else(|| missing(name))?.clone();
                let tags: Vec<&String> =
                    engine.iter().filter(|(n, i)| **i == id && !n.starts_with("sha256:")).map(|(n, _)| n).collect();
                Ok(json!({"Id": id, "RepoTags": tags}))
            })
            .answer_with("remove_image", move |request| {
                let Request::RemoveImage { name, force: true } = request else {
                    return Err(PluginError::with_kind(ErrorKind::Host, "not forced"));
                };
                let mut engine = removed.lock().expect("lock");
                let id = engine.remove(name).ok_or_else(|| {
                    PluginError::with_kind(
                        ErrorKind::Host,
                        format!("the Docker engine refused: No such image: {name} (HTTP 404)"),
                    )
                })?;
                if name.starts_with("sha256:") {
                    engine.retain(|_, i| *i != id);
                }
                Ok(Value::Null)
            })
    }

    fn removals(fake: &FakeHost) -> Vec<String> {
        fake.requests()
            .into_iter()
            .filter_map(|r| match r {
                Request::RemoveImage { name, .. } => Some(name),
                _ => None,
            })
            .collect()
    }

    fn recorded() -> Value {
        json!({"images_to_remove": ["127.0.0.1:5000/app:1"], "base_images": ["127.0.0.1:5000/base:1", "base:1"]})
    }

    #[test]
    fn removes_the_built_image_its_pushed_tags_and_the_pulled_bases() {
        let images = [
            (BUILT, BUILT),
            ("app:1", BUILT),
            ("127.0.0.1:5000/app:1", BUILT),
            (BASE, BASE),
            ("127.0.0.1:5000/base:1", BASE),
            ("base:1", BASE),
        ];
        let fake = host(Some(BUILT), &images).workspace("remove_built_image", recorded());
        let result = fake.run(&RemoveBuiltImage, json!({})).expect("removes");
        assert_eq!(result, json!([BUILT, "127.0.0.1:5000/app:1", "app:1", "127.0.0.1:5000/base:1", "base:1"]));
        assert_eq!(removals(&fake), [BUILT, "127.0.0.1:5000/base:1", "base:1"]);
    }

    #[test]
    fn keeps_the_pulled_bases_when_told_to() {
        let images = [(BUILT, BUILT), ("app:1", BUILT), ("127.0.0.1:5000/base:1", BASE)];
        let fake = host(Some(BUILT), &images).workspace("remove_built_image", recorded());
        let result = fake.run(&RemoveBuiltImage, json!({"remove_pulled_base_image": false})).expect("removes");
        assert_eq!(result, json!([BUILT, "app:1"]));
        assert!(!removals(&fake).iter().any(|n| n.contains("base")));
    }

    #[test]
    fn images_already_gone_are_fine() {
        let fake = host(Some(BUILT), &[]).workspace("remove_built_image", recorded());
        let result = fake.run(&RemoveBuiltImage, json!({})).expect("nothing to remove is fine");
        assert_eq!(result, json!([]));
        assert_eq!(removals(&fake), ["app:1", "127.0.0.1:5000/app:1", "127.0.0.1:5000/base:1", "base:1"]);
        assert!(fake.logs().iter().any(|r| r.message == "the built image ".to_owned() + BUILT + " is already gone"));
        assert!(fake.logs().iter().any(|r| r.message == "base:1 is already gone"));
    }

    #[test]
    fn without_a_built_image_removes_the_image_name() {
        let fake = host(None, &[("app:1", BUILT)]);
        assert_eq!(fake.run(&RemoveBuiltImage, json!({})).expect("removes"), json!(["app:1"]));
    }

    #[test]
    fn a_built_image_that_is_also_another_image_keeps_its_other_names() {
        // `FROM busybox:latest` alone builds busybox's own image.
        let images = [(BUILT, BUILT), ("app:1", BUILT), ("busybox:latest", BUILT)];
        let fake = host(Some(BUILT), &images);
        let result = fake.run(&RemoveBuiltImage, json!({})).expect("removes");
        assert_eq!(result, json!(["app:1"]));
        assert_eq!(removals(&fake), ["app:1"]);
        let seen = fake.run(&RemoveBuiltImage, json!({})).expect("again");
        assert_eq!(seen, json!([]));
    }

    #[test]
    fn another_engine_error_is_reported_after_the_rest_is_removed() {
        let fake = host(Some(BUILT), &[("127.0.0.1:5000/base:1", BASE)])
            .workspace("remove_built_image", recorded())
            .on_inspect(|_| {
                Err(PluginError::with_kind(ErrorKind::Host, "the Docker engine refused: conflict (HTTP 409)"))
            });
        let err = fake.run(&RemoveBuiltImage, json!({})).expect_err("reported");
        assert_eq!(
            err.message,
            format!("removed 127.0.0.1:5000/base:1, but could not remove {BUILT}: the Docker engine refused: conflict (HTTP 409)")
        );
        assert!(RemoveBuiltImage.manifest().allowed_to_fail, "an exit plugin whose failure the build tolerates");
    }

    #[test]
    fn runs_only_in_exit_and_refuses_unknown_args() {
        let err =
            host(None, &[]).run(&RemoveBuiltImage, json!({"remove_pulled_base_images": false})).expect_err("typo");
        assert_eq!(err.kind, ErrorKind::InvalidArgs);
        assert!(err.message.contains("remove_pulled_base_images"), "{}", err.message);
        let err = FakeHost::new(Phase::Postbuild, Workflow::default())
            .run(&RemoveBuiltImage, json!({}))
            .expect_err("exit only");
        assert_eq!(err.message, "plugin 'remove_built_image' cannot run in postbuild (it runs in: exit)");
    }
}
