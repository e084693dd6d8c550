//! `pull_base_image`: pulls the image each stage of the Dockerfile builds on, from
//! `parent_registry` when one is given, and tags it with the name the Dockerfile uses, so that the
//! build finds every base in the engine and pulls nothing itself (atomic-reactor's
//! `pre_pull_base_image.py`). It must not fail: a build whose base cannot be pulled stops here.
//!
//! ```json
//! {"name": "pull_base_image", "args": {"parent_registry": "registry.example.com:5000", "parent_registry_insecure": false}}
//! ```
//!
//! A build.json with a top-level `parent_registry` (and `parent_registry_insecure`) gets this
//! entry by default, unless `dont_pull_base_image` is set or it lists its own prebuild plugins.
//!
//! - Every stage whose `FROM` names an image is pulled, each image once; `FROM scratch`, a stage
//!   built on an earlier stage (`FROM build`) and a `FROM` that is an image ID are skipped. `FROM`
//!   lines are read as docker reads them, with `ARG`s and build args substituted.
//! - With `parent_registry`, `FROM app:1` is pulled as `parent_registry/app:1` (tag `latest`
//!   when it has none) and tagged `app:1`. When the registry has no such image, it is asked once
//!   for `parent_registry/library/app:1`. A `FROM` naming another registry is refused. Without
//!   `parent_registry`, each `FROM` is pulled as written.
//! - Pulls go through reactor, which logs in (`parent_registry_dockercfg_path`, else Docker's
//!   `config.json`) and records each pull's id and digest in the result document's
//!   `pulled_images`. The names the build brought into the engine are left for
//!   `remove_built_image` (workspace `remove_built_image.base_images`).
//! - The result lists one entry per base: `from` (the `FROM` image, variables substituted),
//!   `pulled` (the name pulled), `tagged` (the local name the build uses), `id` and `digest`.
//!
//! Where it deliberately differs from atomic-reactor 1.6:
//! - Only names that were not in the engine before this plugin ran are handed to
//!   `remove_built_image`: an image the machine already had (say `busybox:latest`) is not removed
//!   after the build (1.6 removed it, with a FIXME saying it should not).
//! - Every `FROM` is checked against `parent_registry` before anything is pulled, so a refused
//!   build has pulled nothing; and every stage's base is pulled (1.6.19 pulled only the last).
//! - A `FROM` with a digest (`app@sha256:…`) pulled from `parent_registry` cannot be tagged with
//!   its own name (a docker tag holds no digest): its `tagged` is null, and
//!   `change_from_in_dockerfile` listed after this plugin points the build at the pulled image.
//! - No OpenShift pieces: no auto-rebuild trigger, organization, platform check or per-build
//!   unique tag.

use reactor_plugin_api::dockerfile::{Base, Dockerfile};
use reactor_plugin_api::protocol::RegistryAccess;
use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError, Workflow};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::image_name::ImageName;
use crate::shared::{is_image_id, is_no_such_image, ToRemove};

pub(crate) const RETURNS: &str =
    "a list of `{\"from\", \"pulled\", \"tagged\", \"id\", \"digest\"}`, one per external base image (also recorded in the result document's `pulled_images`)";

/// Pulls the Dockerfile's base images and tags them as the Dockerfile names them.
pub struct PullBaseImage;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PullArgs {
    #[serde(default)]
    parent_registry: Option<String>,
    #[serde(default)]
    parent_registry_insecure: bool,
    #[serde(default)]
    parent_registry_dockercfg_path: Option<String>,
}

/// One base image to pull.
#[derive(Debug, PartialEq)]
struct BaseImage {
    /// The `FROM` image, variables substituted.
    from: String,
    /// What to pull.
    pull: ImageName,
    /// The name the build looks it up by.
    local: ImageName,
}

impl Plugin for PullBaseImage {
    fn manifest(&self) -> Manifest {
        Manifest::new("pull_base_image", [Phase::Prebuild], env!("CARGO_PKG_VERSION"))
            .description(
                "pulls the base image of every stage of the Dockerfile, from parent_registry when given, and tags it with the name the Dockerfile uses",
            )
            .args_schema(json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "parent_registry": {
                        "type": ["string", "null"],
                        "default": null,
                        "description": "The registry to pull base images from (`host[:port]`, e.g. `registry.example.com:5000`): `FROM app:1` is pulled as `host[:port]/app:1` and tagged `app:1`, and a FROM naming another registry is refused. Without it, each FROM is pulled as written."
                    },
                    "parent_registry_insecure": {
                        "type": "boolean",
                        "default": false,
                        "description": "The parent registry speaks plain HTTP or has a certificate that cannot be verified. The Docker engine must treat it as insecure (its `insecure-registries`; loopback registries are by default), else the pull is refused saying so."
                    },
                    "parent_registry_dockercfg_path": {
                        "type": ["string", "null"],
                        "default": null,
                        "description": "A directory holding a `.dockercfg` with the credentials for the parent registry. Without it, Docker's `config.json` (`DOCKER_CONFIG` or `~/.docker`) is used."
                    }
                }
            }))
            .requires(["images.pull", "registry.access", "workspace"])
            .allowed_to_fail(false)
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let args: PullArgs = args.parse()?;
        let parent = args.parent_registry.as_deref().map(parent_registry).transpose()?;
        let access =
            RegistryAccess { secret_dir: args.parent_registry_dockercfg_path, insecure: args.parent_registry_insecure };
        let bases = external_bases(&ctx.workflow()?, parent.as_deref())?;
        if bases.is_empty() {
            log::info!("the Dockerfile builds on no image to pull");
        }
        let mut pulled = Vec::with_capacity(bases.len());
        for base in &bases {
            pulled.push(pull_and_tag(ctx, base, &access)?);
        }
        Ok(Value::Array(pulled))
    }
}

/// The registry part of `text` as docker names registries: a scheme and trailing `/` are
/// dropped (atomic-reactor accepted `http://host:port`); anything else must be `host[:port]`.
fn parent_registry(text: &str) -> Result<String, PluginError> {
    let trimmed = text.trim();
    let registry = trimmed.strip_prefix("https://").or_else(|| trimmed.strip_prefix("http://")).unwrap_or(trimmed);
    let registry = registry.trim_end_matches('/');
    let is_registry = !registry.contains('/')
        && ImageName::parse(&format!("{registry}/base")).is_ok_and(|name| name.registry() == Some(registry));
    if is_registry {
        Ok(registry.to_owned())
    } else {
        Err(PluginError::invalid_args(format!(
            "parent_registry '{text}' is not a registry: give host[:port] with a '.' or a port, or 'localhost' (e.g. \"registry.example.com:5000\")"
        )))
    }
}

/// The images the Dockerfile's stages build on, each once, in file order: every `FROM` checked
/// against `parent` before anything is pulled.
fn external_bases(workflow: &Workflow, parent: Option<&str>) -> Result<Vec<BaseImage>, PluginError> {
    let build_args: Vec<(&String, &String)> = workflow.build_args.iter().collect();
    let dockerfile = Dockerfile::parse_with_build_args(&workflow.dockerfile, &build_args)
        .map_err(|e| PluginError::new(format!("cannot read the Dockerfile: {e}")))?;
    let mut bases: Vec<BaseImage> = Vec::new();
    for stage in dockerfile.stages() {
        let from = stage.image();
        match stage.base() {
            Base::Image => {}
            Base::Scratch => continue,
            Base::Stage(earlier) => {
                log::debug!("stage {} builds on stage {earlier} ({from}): nothing to pull", stage.index());
                continue;
            }
        }
        if is_image_id(from) {
            log::info!("stage {} builds on the image ID {from}, which is local: nothing to pull", stage.index());
            continue;
        }
        if bases.iter().any(|b| b.from == from) {
            continue;
        }
        let name = ImageName::parse(from).map_err(|e| e.context(format!("FROM of stage {}", stage.index())))?;
        let pull = match (parent, name.registry()) {
            (Some(parent), Some(named)) if named != parent => {
                return Err(PluginError::new(format!(
                    "FROM {from} names the registry {named}, but base images may come only from parent_registry {parent}: drop the registry from FROM or change parent_registry"
                )));
            }
            (Some(parent), _) => name.with_registry(parent).or_latest(),
            (None, _) => name.or_latest(),
        };
        bases.push(BaseImage { from: from.to_owned(), pull, local: name.or_latest() });
    }
    Ok(bases)
}

/// Pulls `base` (retrying once in `library/`), tags it with its local name, and hands the names
/// this build brought into the engine to `remove_built_image`.
fn pull_and_tag(ctx: &Context, base: &BaseImage, access: &RegistryAccess) -> Result<Value, PluginError> {
    let mut name = base.pull.clone();
    log::info!("pulling {name} for FROM {}", base.from);
    let mut was_there = is_present(ctx, &name)?;
    let pulled = match ctx.pull_image(&name.to_string(), access) {
        Ok(pulled) => pulled,
        // Docker Hub maps `app` to `library/app` itself; another registry may hold it only there.
        Err(first) if is_no_such_image(&first) && name.registry().is_some() => {
            let Some(library) = name.in_library() else {
                return Err(first);
            };
            log::info!("{name} not found; trying {library}");
            was_there = is_present(ctx, &library)?;
            match ctx.pull_image(&library.to_string(), access) {
                Ok(pulled) => {
                    name = library;
                    pulled
                }
                Err(again) if is_no_such_image(&again) => {
                    return Err(PluginError {
                        message: format!("{} (nor is there {library})", first.message),
                        ..first
                    });
                }
                Err(other) => return Err(other),
            }
        }
        Err(e) => return Err(e),
    };
    log::info!("pulled {name}: {} (digest {})", pulled.id, pulled.digest.as_deref().unwrap_or("unknown"));
    if !was_there {
        ToRemove::add(ctx, |t| &mut t.base_images, &[name.to_string()])?;
    }

    let local = &base.local;
    let tagged = if *local == name {
        Some(local.to_string())
    } else if local.digest().is_some() {
        log::info!(
            "{local} has a digest, which a tag cannot hold: the build finds it as {name} once change_from_in_dockerfile has run"
        );
        None
    } else {
        let local_was_there = is_present(ctx, local)?;
        ctx.tag_image(&name.to_string(), &local.to_string())?;
        log::debug!("{name} is available as {local}");
        if !local_was_there {
            ToRemove::add(ctx, |t| &mut t.base_images, &[local.to_string()])?;
        }
        Some(local.to_string())
    };
    Ok(
        json!({"from": base.from, "pulled": name.to_string(), "tagged": tagged, "id": pulled.id, "digest": pulled.digest}),
    )
}

/// Whether the engine has `name` now.
fn is_present(ctx: &Context, name: &ImageName) -> Result<bool, PluginError> {
    match ctx.inspect_image(&name.to_string()) {
        Ok(_) => Ok(true),
        Err(e) if is_no_such_image(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    use super::*;
    use reactor_plugin_api::protocol::{PulledImage, Request};
    use reactor_plugin_api::testing::FakeHost;

    use crate::shared::tests::tags;
    use reactor_plugin_api::ErrorKind;

    const PARENT: &str = "127.0.0.1:5000";

    fn id_of(name: &str) -> String {
        format!("sha256:{:0>64}", name.len())
    }

    /// A fake engine holding `present`, whose registry serves `served`: pulls and tags add to
    /// what the engine holds, as a real one's would.
    fn host(dockerfile: &str, present: &[&str], served: &[&str]) -> FakeHost {
        let engine: Arc<Mutex<BTreeSet<String>>> =
            Arc::new(Mutex::new(present.iter().map(|s| s.to_string()).collect()));
        let served: BTreeSet<String> = served.iter().map(|s| s.to_string()).collect();
        let (inspected, pulled) = (engine.clone(), engine.clone());
        let workflow = Workflow { dockerfile: dockerfile.into(), ..Default::default() };
        FakeHost::new(Phase::Prebuild, workflow)
            .on_inspect(move |name| match inspected.lock().expect("lock").contains(name) {
                true => Ok(json!({"Id": id_of(name)})),
                false => Err(PluginError::with_kind(ErrorKind::Host, format!("no such image: {name}"))),
            })
            .on_pull(move |name, _| {
                if !served.contains(name) {
                    let message = format!("pull {name}: no such image (manifest unknown)");
                    return Err(PluginError::with_kind(ErrorKind::Host, message));
                }
                pulled.lock().expect("lock").insert(name.to_owned());
                Ok(PulledImage { name: name.into(), id: id_of(name), digest: Some(format!("sha256:d-{name}")) })
            })
    }

    fn pulls(fake: &FakeHost) -> Vec<String> {
        fake.requests()
            .into_iter()
            .filter_map(|r| match r {
                Request::PullImage { name, .. } => Some(name),
                _ => None,
            })
            .collect()
    }

    fn to_remove(fake: &FakeHost) -> Value {
        fake.workspace_entry("remove_built_image").unwrap_or(Value::Null)["base_images"].clone()
    }

    #[test]
    fn pulls_from_the_parent_registry_and_tags_with_the_dockerfiles_name() {
        let fake = host("FROM base:1\nRUN true\n", &[], &["127.0.0.1:5000/base:1"]);
        let access = RegistryAccess { secret_dir: Some("/secrets".into()), insecure: true };
        let args = json!({"parent_registry": PARENT, "parent_registry_insecure": true, "parent_registry_dockercfg_path": "/secrets"});
        let result = fake.run(&PullBaseImage, args).expect("pulls");
        let pulled = "127.0.0.1:5000/base:1";
        assert_eq!(
            result,
            json!([{"from": "base:1", "pulled": pulled, "tagged": "base:1", "id": id_of(pulled), "digest": format!("sha256:d-{pulled}")}])
        );
        let pull = Request::PullImage {
            name: pulled.into(),
            registry_secret_dir: access.secret_dir.clone(),
            insecure: access.insecure,
        };
        assert!(fake.requests().contains(&pull), "{:?}", fake.requests());
        assert_eq!(tags(&fake), [(pulled.to_owned(), "base:1".to_owned())]);
        assert_eq!(to_remove(&fake), json!([pulled, "base:1"]));
        assert_eq!(fake.workflow().pulled_images[0].name, pulled);
    }

    #[test]
    fn without_a_tag_pulls_latest_and_without_a_parent_registry_pulls_as_written() {
        let fake = host("FROM base\n", &[], &["127.0.0.1:5000/base:latest"]);
        let result = fake.run(&PullBaseImage, json!({"parent_registry": "http://127.0.0.1:5000/"})).expect("pulls");
        assert_eq!(
            (result[0]["pulled"].as_str(), result[0]["tagged"].as_str()),
            (Some("127.0.0.1:5000/base:latest"), Some("base:latest"))
        );

        let fake = host("FROM 127.0.0.1:5000/base\n", &[], &["127.0.0.1:5000/base:latest"]);
        let result = fake.run(&PullBaseImage, json!({})).expect("pulls");
        assert_eq!(result[0]["pulled"], json!("127.0.0.1:5000/base:latest"));
        assert_eq!(result[0]["tagged"], json!("127.0.0.1:5000/base:latest"));
        assert!(tags(&fake).is_empty(), "nothing to re-tag");
        assert_eq!(to_remove(&fake), json!(["127.0.0.1:5000/base:latest"]));
    }

    #[test]
    fn a_from_naming_the_parent_registry_itself_is_pulled_without_a_tag() {
        let fake = host("FROM 127.0.0.1:5000/ns/base:2\n", &[], &["127.0.0.1:5000/ns/base:2"]);
        let result = fake.run(&PullBaseImage, json!({"parent_registry": PARENT})).expect("pulls");
        assert_eq!(result[0]["tagged"], json!("127.0.0.1:5000/ns/base:2"));
        assert!(tags(&fake).is_empty());
    }

    #[test]
    fn a_missing_image_is_retried_once_in_library() {
        let fake = host("FROM base:1\n", &[], &["127.0.0.1:5000/library/base:1"]);
        let result = fake.run(&PullBaseImage, json!({"parent_registry": PARENT})).expect("pulls from library/");
        assert_eq!(pulls(&fake), ["127.0.0.1:5000/base:1", "127.0.0.1:5000/library/base:1"]);
        assert_eq!(result[0]["pulled"], json!("127.0.0.1:5000/library/base:1"));
        assert_eq!(tags(&fake), [("127.0.0.1:5000/library/base:1".to_owned(), "base:1".to_owned())]);

        let fake = host("FROM base:1\n", &[], &[]);
        let err = fake.run(&PullBaseImage, json!({"parent_registry": PARENT})).expect_err("nowhere");
        assert_eq!(
            err.message,
            "pull 127.0.0.1:5000/base:1: no such image (manifest unknown) (nor is there 127.0.0.1:5000/library/base:1)"
        );
        assert_eq!(err.kind, ErrorKind::Host);
        // A namespaced name is not retried, nor is another failure.
        let fake = host("FROM ns/base:1\n", &[], &[]);
        fake.run(&PullBaseImage, json!({"parent_registry": PARENT})).expect_err("nowhere");
        assert_eq!(pulls(&fake), ["127.0.0.1:5000/ns/base:1"]);
        let refused =
            FakeHost::new(Phase::Prebuild, Workflow { dockerfile: "FROM base\n".into(), ..Default::default() })
                .on_inspect(|name| Err(PluginError::with_kind(ErrorKind::Host, format!("no such image: {name}"))))
                .on_pull(|name, _| {
                    Err(PluginError::with_kind(
                        ErrorKind::Host,
                        format!("pull {name}: the registry 127.0.0.1:5000 wants a login"),
                    ))
                });
        let err = refused.run(&PullBaseImage, json!({"parent_registry": PARENT})).expect_err("no login");
        assert_eq!(err.message, "pull 127.0.0.1:5000/base:latest: the registry 127.0.0.1:5000 wants a login");
        assert_eq!(pulls(&refused).len(), 1);
    }

    #[test]
    fn a_from_naming_another_registry_is_refused_before_anything_is_pulled() {
        let fake = host("FROM base:1 AS one\nFROM 127.0.0.1:5001/other:1\n", &[], &["127.0.0.1:5000/base:1"]);
        let err = fake.run(&PullBaseImage, json!({"parent_registry": PARENT})).expect_err("another registry");
        assert_eq!(
            err.message,
            "FROM 127.0.0.1:5001/other:1 names the registry 127.0.0.1:5001, but base images may come only from parent_registry 127.0.0.1:5000: drop the registry from FROM or change parent_registry"
        );
        assert!(!err.message.contains('\n'));
        assert!(pulls(&fake).is_empty());
    }

    #[test]
    fn multi_stage_pulls_every_external_base_once_and_skips_aliases_scratch_and_ids() {
        let dockerfile = format!(
            "ARG TOOLS=tools:2\nFROM base:1 AS build\nFROM ${{TOOLS}} AS tools\nFROM build AS again\nFROM scratch\nFROM base:1\nFROM sha256:{}\nCOPY --from=tools / /\n",
            "a".repeat(64)
        );
        let fake = host(&dockerfile, &[], &["127.0.0.1:5000/base:1", "127.0.0.1:5000/tools:2"]);
        let result = fake.run(&PullBaseImage, json!({"parent_registry": PARENT})).expect("pulls");
        assert_eq!(pulls(&fake), ["127.0.0.1:5000/base:1", "127.0.0.1:5000/tools:2"]);
        let froms: Vec<&str> = result.as_array().expect("list").iter().filter_map(|e| e["from"].as_str()).collect();
        assert_eq!(froms, ["base:1", "tools:2"]);
    }

    #[test]
    fn build_args_reach_the_from_lines() {
        let workflow = Workflow {
            dockerfile: "ARG TOOLS=tools:2\nFROM $TOOLS\n".into(),
            build_args: [("TOOLS".to_owned(), "tools:3".to_owned())].into(),
            ..Default::default()
        };
        let fake = FakeHost::new(Phase::Prebuild, workflow)
            .on_inspect(|name| Err(PluginError::with_kind(ErrorKind::Host, format!("no such image: {name}"))))
            .on_pull(|name, _| Ok(PulledImage { name: name.into(), id: id_of(name), digest: None }));
        let result = fake.run(&PullBaseImage, json!({})).expect("pulls");
        assert_eq!(result[0]["from"], json!("tools:3"));
        assert_eq!(result[0]["digest"], Value::Null);
    }

    #[test]
    fn names_the_engine_had_before_are_not_handed_to_remove_built_image() {
        let fake = host("FROM base:1\n", &["base:1"], &["127.0.0.1:5000/base:1"]);
        fake.run(&PullBaseImage, json!({"parent_registry": PARENT})).expect("pulls");
        assert_eq!(tags(&fake).len(), 1, "re-tagged to the pulled image all the same");
        assert_eq!(to_remove(&fake), json!(["127.0.0.1:5000/base:1"]));
        // What another plugin recorded is kept.
        let fake = host("FROM base:1\n", &[], &["127.0.0.1:5000/base:1"])
            .workspace("remove_built_image", json!({"images_to_remove": ["r/pushed:1"], "base_images": ["x:1"]}));
        fake.run(&PullBaseImage, json!({"parent_registry": PARENT})).expect("pulls");
        assert_eq!(
            fake.workspace_entry("remove_built_image"),
            Some(
                json!({"images_to_remove": ["r/pushed:1"], "base_images": ["x:1", "127.0.0.1:5000/base:1", "base:1"]})
            )
        );
    }

    #[test]
    fn a_digest_from_is_pulled_by_digest_and_not_tagged() {
        let digest = format!("sha256:{}", "b".repeat(64));
        let pulled = format!("127.0.0.1:5000/base@{digest}");
        let fake = host(&format!("FROM base@{digest}\n"), &[], &[&pulled]);
        let result = fake.run(&PullBaseImage, json!({"parent_registry": PARENT})).expect("pulls");
        assert_eq!(result[0]["pulled"], json!(pulled));
        assert_eq!(result[0]["tagged"], Value::Null);
        assert!(tags(&fake).is_empty());
    }

    #[test]
    fn bad_input_is_one_line_naming_the_arg_or_the_from() {
        let fake = host("FROM base\n", &[], &[]);
        for bad in ["registry", "", "a.b/c", "https://"] {
            let err = fake.run(&PullBaseImage, json!({"parent_registry": bad})).expect_err(bad);
            assert_eq!(err.kind, ErrorKind::InvalidArgs);
            assert!(err.message.starts_with(&format!("parent_registry '{bad}' is not a registry")), "{}", err.message);
        }
        let err = fake.run(&PullBaseImage, json!({"parent_registy": PARENT})).expect_err("typo");
        assert_eq!(err.kind, ErrorKind::InvalidArgs);
        let fake = host("FROM Base:1\n", &[], &[]);
        let err = fake.run(&PullBaseImage, json!({})).expect_err("uppercase");
        assert!(err.message.starts_with("FROM of stage 0: 'Base:1' is not a valid image reference"), "{}", err.message);
        let fake = host("RUN true\n", &[], &[]);
        let err = fake.run(&PullBaseImage, json!({})).expect_err("no FROM");
        assert!(err.message.starts_with("cannot read the Dockerfile: Dockerfile line 1"), "{}", err.message);
    }

    #[test]
    fn a_dockerfile_on_scratch_pulls_nothing() {
        let fake = host("FROM scratch\nCOPY a /\n", &[], &[]);
        assert_eq!(fake.run(&PullBaseImage, json!({"parent_registry": PARENT})).expect("runs"), json!([]));
        assert!(pulls(&fake).is_empty());
    }

    #[test]
    fn the_manifest_forbids_failure_and_documents_every_arg() {
        let manifest = PullBaseImage.manifest();
        assert!(!manifest.allowed_to_fail);
        assert_eq!(manifest.args_schema["additionalProperties"], json!(false));
        for (name, property) in manifest.args_schema["properties"].as_object().expect("properties") {
            assert!(property["description"].is_string() && property.get("default").is_some(), "{name}");
        }
    }
}
