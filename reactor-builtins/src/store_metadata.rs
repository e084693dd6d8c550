//! `store_metadata`: writes a metadata document about the build to a file and/or POSTs it to a
//! URL, whatever the outcome. It is the local stand-in for atomic-reactor's
//! `store_metadata_in_osv3`, which put the same facts on the OpenShift build as annotations.
//!
//! ```json
//! {"name": "store_metadata", "args": {"path": "out/metadata.json", "url": "http://ci.example/builds", "timeout": 10}}
//! ```
//!
//! The document (one JSON object) keeps the annotation names of `store_metadata_in_osv3`, with
//! JSON values where it had JSON text and `null` where it had `""`:
//!
//! - `dockerfile`: the final Dockerfile; `commit_id`: the source's resolved commit;
//!   `base-image-name` and `base-image-id` (the engine's ID of the base image, else the ID it was
//!   pulled with); `image-id`: the built image's ID;
//! - `repositories`: `{"primary": [...], "unique": [...]}`, the names of the workspace's
//!   `tag_conf` (unique: the image's own name when there is none) with the workflow's extra tags
//!   as primary, each in every registry something was pushed to (as they are when nothing was);
//! - `digests`: one `{"registry", "repository", "tag", "digest"}` per pushed name;
//! - `plugins-metadata`: `{"errors": {KEY: message}, "results": {PHASE_plugins: {KEY: result}}}`
//!   (the 1.6 timestamps and durations are in reactor's own result document, `--metadata-file`).
//!
//! and adds: `status` (`succeeded`, `failed`, `cancelled`), `failure` (`{"phase", "plugin",
//! "error"}` or `null`), `image`, `tags` (the names above, without registry), `labels` (the
//! built image's, else those set for the build), `pulled_images`, `source` (`provider`, `uri`,
//! `commit`) and `reactor_version`. Every password of a URL in it is replaced by `***`. The result
//! is `{"path": ..., "url": ..., "status_code": ...}` for what was done.
//!
//! Where it differs from atomic-reactor: a file or any HTTP endpoint instead of OpenShift; no
//! `logs`, `rpm-packages`, `artefacts` or `tar_metadata`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError, Workflow};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::http::{parse_url, post_json, redact_passwords, redact_value, CancelWatch};
use crate::image_name::ImageName;
use crate::shared::TagConf;

/// Seconds a POST may take when the args do not say.
const DEFAULT_TIMEOUT_S: f64 = 30.0;

pub(crate) const RETURNS: &str = "`{\"path\"}` and/or `{\"url\", \"status_code\"}`: where the metadata went";

/// Writes or posts the build's metadata.
pub struct StoreMetadata;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreMetadataArgs {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default = "default_timeout")]
    timeout: f64,
}

fn default_timeout() -> f64 {
    DEFAULT_TIMEOUT_S
}

impl Plugin for StoreMetadata {
    fn manifest(&self) -> Manifest {
        Manifest::new("store_metadata", [Phase::Exit], env!("CARGO_PKG_VERSION"))
            .description(
                "writes the build's metadata (status, image, tags, digests, commit, base image, Dockerfile, labels, plugin results) to a file and/or POSTs it to a URL",
            )
            .args_schema(json!({
                "type": "object",
                "additionalProperties": false,
                "anyOf": [{"required": ["path"]}, {"required": ["url"]}],
                "properties": {
                    "path": {
                        "description": "The file to write the document to (replaced if it exists; missing parent directories are created). A relative path is taken from reactor's working directory. At least one of 'path' and 'url' is required.",
                        "type": "string",
                        "minLength": 1
                    },
                    "url": {
                        "description": "An http(s) URL to POST the document to as JSON; a user and password in it are sent as basic authentication and never shown. Any status but 2xx fails the plugin. At least one of 'path' and 'url' is required.",
                        "type": "string",
                        "minLength": 1
                    },
                    "timeout": {
                        "description": "Seconds the POST may take, connecting included (at most 10 s of them), before the plugin fails; a cancellation of the build while it waits abandons it at once (an exit plugin of a build already cancelled waits, within --exit-timeout).",
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "default": DEFAULT_TIMEOUT_S
                    }
                }
            }))
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let args: StoreMetadataArgs = args.parse()?;
        if args.path.is_none() && args.url.is_none() {
            return Err(PluginError::invalid_args(
                "neither 'path' nor 'url' is given: say where the metadata should go",
            ));
        }
        crate::shared::check_timeout(args.timeout)?;
        let url = args.url.as_deref().map(|url| parse_url("url", url)).transpose()?;
        let watch = CancelWatch::start(ctx);
        let document = metadata(ctx)?;
        let mut done = Map::new();
        if let Some(path) = &args.path {
            let text = serde_json::to_string_pretty(&document).map_err(PluginError::from)?;
            crate::store_logs_to_file::write_file(Path::new(path), &text)?;
            log::info!("wrote the build's metadata to {path}");
            done.insert("path".into(), json!(path));
        }
        if let Some(url) = &url {
            let shown = redact_passwords(url.as_str());
            let status = post_json(ctx, watch, url, &document, Duration::from_secs_f64(args.timeout))?;
            log::info!("posted the build's metadata to {shown} (HTTP {status})");
            done.insert("url".into(), json!(shown));
            done.insert("status_code".into(), json!(status));
        }
        Ok(Value::Object(done))
    }
}

/// The metadata document of the build as it stands.
fn metadata(ctx: &Context) -> Result<Value, PluginError> {
    let workflow = ctx.workflow()?;
    let tag_conf = TagConf::load(ctx)?;
    let outcome = workflow.outcome.clone().unwrap_or_default();
    let image_id = workflow.build_result.as_ref().and_then(|b| b.image_id.clone());
    let (unique, primary) = tag_names(&workflow, &tag_conf);
    let registries = pushed_registries(&workflow);
    let failure = outcome
        .error
        .as_ref()
        .map(|error| json!({"phase": outcome.failed_phase, "plugin": outcome.failed_plugin, "error": error}));
    let mut document = json!({
        "version": 1,
        "status": outcome.status.name(),
        "failure": failure,
        "image": workflow.image,
        "image-id": image_id,
        "tags": unique.iter().chain(&primary).collect::<Vec<_>>(),
        "repositories": {
            "primary": in_registries(&primary, &registries),
            "unique": in_registries(&unique, &registries),
        },
        "digests": pullspecs(&workflow.digests),
        "commit_id": workflow.source.commit,
        "source": {"provider": workflow.source.provider, "uri": workflow.source.uri, "commit": workflow.source.commit},
        "base-image-name": workflow.base_image,
        "base-image-id": base_image_id(ctx, &workflow),
        "pulled_images": workflow.pulled_images,
        "dockerfile": workflow.dockerfile,
        "labels": labels(ctx, image_id.as_deref(), &workflow),
        "plugins-metadata": {
            "errors": plugin_errors(&workflow),
            "results": crate::store_logs_to_file::results_by_phase_key(&workflow.results),
        },
        "reactor_version": ctx.host().reactor_version,
    });
    redact_value(&mut document);
    Ok(document)
}

/// The unique and primary names, without registry: `tag_conf`'s (the image's own name as the
/// unique one when it has none, as `tag_and_push` pushes it), the workflow's extra tags primary.
pub(crate) fn tag_names(workflow: &Workflow, tag_conf: &TagConf) -> (Vec<String>, Vec<String>) {
    let mut unique = tag_conf.unique_images.clone();
    if unique.is_empty() && !workflow.image.is_empty() {
        unique.push(workflow.image.clone());
    }
    let mut primary: Vec<String> = Vec::new();
    for name in tag_conf.primary_images.iter().chain(&workflow.tags) {
        if !unique.contains(name) && !primary.contains(name) {
            primary.push(name.clone());
        }
    }
    (unique, primary)
}

/// The registries something was pushed to, in order of name.
fn pushed_registries(workflow: &Workflow) -> Vec<String> {
    let mut registries: Vec<String> =
        workflow.digests.keys().filter_map(|name| ImageName::parse(name).ok()?.registry().map(str::to_owned)).collect();
    registries.sort();
    registries.dedup();
    registries
}

/// Each name in each registry; the names as they are when there is no registry, or when a name
/// does not parse (it is shown, not dropped).
fn in_registries(names: &[String], registries: &[String]) -> Vec<String> {
    if registries.is_empty() {
        return names.to_vec();
    }
    let mut qualified = Vec::new();
    for registry in registries {
        for name in names {
            qualified.push(match ImageName::parse(name) {
                Ok(image) => image.with_registry(registry).to_string(),
                Err(_) => format!("{registry}/{name}"),
            });
        }
    }
    qualified
}

/// `store_metadata_in_osv3`'s `digests`: one pull spec per pushed name.
fn pullspecs(digests: &BTreeMap<String, String>) -> Vec<Value> {
    digests
        .iter()
        .map(|(name, digest)| match ImageName::parse(name) {
            Ok(image) => json!({
                "registry": image.registry(),
                "repository": image.repository(),
                "tag": image.tag().unwrap_or("latest"),
                "digest": digest,
            }),
            Err(_) => json!({"registry": null, "repository": name, "tag": null, "digest": digest}),
        })
        .collect()
}

/// The base image's ID: the engine's, else the one it was pulled with; `null` for `scratch` or
/// an image the engine no longer has.
fn base_image_id(ctx: &Context, workflow: &Workflow) -> Value {
    let Some(base) = workflow.base_image.as_deref().filter(|b| *b != "scratch") else {
        return Value::Null;
    };
    if let Ok(inspect) = ctx.inspect_image(base) {
        if let Some(id) = inspect.get("Id").filter(|id| id.is_string()) {
            return id.clone();
        }
    }
    workflow.pulled_images.iter().rev().find(|p| p.name == base).map_or(Value::Null, |p| json!(p.id))
}

/// The built image's labels, as the engine reports them; the labels set for the build when the
/// image is not there (it failed, or was removed).
fn labels(ctx: &Context, image_id: Option<&str>, workflow: &Workflow) -> Value {
    let inspected = image_id.and_then(|id| ctx.inspect_image(id).ok());
    match inspected.as_ref().map(|i| &i["Config"]["Labels"]) {
        Some(labels) if labels.is_object() => labels.clone(),
        Some(_) => json!({}),
        None => json!(workflow.labels),
    }
}

/// The failures of plugins that were allowed to fail and of the one that failed the build, by key.
pub(crate) fn plugin_errors(workflow: &Workflow) -> Value {
    let mut errors = Map::new();
    for results in workflow.results.values() {
        for (key, result) in results {
            let failed = result.as_object().filter(|r| r.len() == 2 && r.contains_key("kind"));
            if let Some(message) = failed.and_then(|r| r.get("error")).filter(|e| e.is_string()) {
                errors.insert(key.clone(), message.clone());
            }
        }
    }
    if let Some(outcome) = &workflow.outcome {
        if let (Some(plugin), Some(error)) = (&outcome.failed_plugin, &outcome.error) {
            errors.entry(plugin.clone()).or_insert_with(|| json!(error));
        }
    }
    Value::Object(errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor_plugin_api::protocol::{PulledImage, Request};
    use reactor_plugin_api::testing::FakeHost;
    use reactor_plugin_api::{BuildResult, ErrorKind, Outcome, SourceInfo, Status};
    use std::io::{Read, Write};
    use std::net::TcpListener;

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn finished_build(status: Status) -> Workflow {
        let mut workflow = Workflow {
            image: "app:1".into(),
            source: SourceInfo {
                provider: "git".into(),
                uri: "https://bot:s3cret@git.example/app.git".into(),
                path: "/tmp/src".into(),
                commit: Some("0123abcd".into()),
            },
            dockerfile: "FROM busybox:latest\nLABEL a=b\n".into(),
            labels: [("set".to_owned(), "for the build".to_owned())].into(),
            tags: vec!["app:extra".into()],
            build_result: Some(BuildResult { image_id: Some("sha256:built".into()), ..Default::default() }),
            digests: [
                ("127.0.0.1:5000/app:1".to_owned(), DIGEST.to_owned()),
                ("127.0.0.1:5000/app:latest".to_owned(), DIGEST.to_owned()),
            ]
            .into(),
            pulled_images: vec![PulledImage {
                name: "busybox:latest".into(),
                id: "sha256:pulled".into(),
                digest: None,
            }],
            ..Default::default()
        };
        workflow.results.insert("prebuild".into(), [("dockerfile_content".to_owned(), json!("FROM x"))].into());
        workflow.results.insert(
            "postbuild".into(),
            [("all_packages".to_owned(), json!({"error": "rpm broke", "kind": "failed"}))].into(),
        );
        workflow.outcome = Some(match status {
            Status::Failed => Outcome {
                status,
                failed_phase: Some("prepublish".into()),
                failed_plugin: Some("run_in_image".into()),
                error: Some("prepublish plugin 'run_in_image' failed: exit 3".into()),
            },
            _ => Outcome { status, ..Default::default() },
        });
        workflow
    }

    fn exit_fake(status: Status) -> FakeHost {
        FakeHost::new(Phase::Exit, finished_build(status))
            .workspace("tag_conf", json!({"unique_images": ["app:1"], "primary_images": ["app:latest"]}))
            .on_inspect(|name| match name {
                "sha256:built" => Ok(json!({"Id": "sha256:built", "Config": {"Labels": {"a": "b"}}})),
                "busybox:latest" => Ok(json!({"Id": "sha256:base"})),
                other => Err(PluginError::with_kind(ErrorKind::Host, format!("no such image: {other}"))),
            })
    }

    #[test]
    fn writes_the_osv3_annotations_and_the_outcome_to_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out/metadata.json");
        let fake = exit_fake(Status::Failed);
        let result = fake.run(&StoreMetadata, json!({"path": path.display().to_string()})).expect("writes");
        assert_eq!(result, json!({"path": path.display().to_string()}));
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("written")).expect("JSON");
        assert_eq!(doc["status"], "failed");
        assert_eq!(
            doc["failure"],
            json!({"phase": "prepublish", "plugin": "run_in_image", "error": "prepublish plugin 'run_in_image' failed: exit 3"})
        );
        assert_eq!((doc["image"].as_str(), doc["image-id"].as_str()), (Some("app:1"), Some("sha256:built")));
        assert_eq!(doc["tags"], json!(["app:1", "app:latest", "app:extra"]));
        assert_eq!(
            doc["repositories"],
            json!({"primary": ["127.0.0.1:5000/app:latest", "127.0.0.1:5000/app:extra"], "unique": ["127.0.0.1:5000/app:1"]})
        );
        assert_eq!(
            doc["digests"],
            json!([
                {"registry": "127.0.0.1:5000", "repository": "app", "tag": "1", "digest": DIGEST},
                {"registry": "127.0.0.1:5000", "repository": "app", "tag": "latest", "digest": DIGEST}
            ])
        );
        assert_eq!(doc["commit_id"], "0123abcd");
        assert_eq!(doc["source"]["uri"], "https://bot:***@git.example/app.git");
        assert!(!doc.to_string().contains("s3cret"));
        assert_eq!(
            (doc["base-image-name"].as_str(), doc["base-image-id"].as_str()),
            (Some("busybox:latest"), Some("sha256:base"))
        );
        assert_eq!(doc["dockerfile"], "FROM busybox:latest\nLABEL a=b\n");
        assert_eq!(doc["labels"], json!({"a": "b"}));
        assert_eq!(doc["pulled_images"][0]["id"], "sha256:pulled");
        assert_eq!(
            doc["plugins-metadata"]["errors"],
            json!({"all_packages": "rpm broke", "run_in_image": "prepublish plugin 'run_in_image' failed: exit 3"})
        );
        assert_eq!(doc["plugins-metadata"]["results"]["prebuild_plugins"], json!({"dockerfile_content": "FROM x"}));
        assert_eq!(doc["reactor_version"], "FakeHost");
    }

    #[test]
    fn without_pushes_or_an_image_it_says_what_it_knows() {
        let mut workflow = finished_build(Status::Succeeded);
        workflow.digests.clear();
        workflow.build_result = None;
        workflow.pulled_images.clear();
        let fake = FakeHost::new(Phase::Exit, workflow)
            .on_inspect(|name| Err(PluginError::with_kind(ErrorKind::Host, format!("no such image: {name}"))));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.json");
        fake.run(&StoreMetadata, json!({"path": path.display().to_string()})).expect("writes");
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("written")).expect("JSON");
        assert_eq!(doc["status"], "succeeded");
        assert_eq!(doc["failure"], Value::Null);
        assert_eq!(doc["repositories"], json!({"primary": ["app:extra"], "unique": ["app:1"]}));
        assert_eq!(doc["digests"], json!([]));
        assert_eq!((doc["image-id"].clone(), doc["base-image-id"].clone()), (Value::Null, Value::Null));
        assert_eq!(doc["labels"], json!({"set": "for the build"}));
    }

    /// A listener that reads one request and answers it with `status`; returns its URL and what
    /// it received.
    fn answer_once(status: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://reactor:hook-pw@{}/meta", socket.local_addr().expect("addr"));
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = socket.accept().expect("accept");
            let mut received = Vec::new();
            let mut buffer = [0u8; 65536];
            // Headers, then as much body as Content-Length says.
            loop {
                let n = stream.read(&mut buffer).expect("read");
                received.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&received).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nnope!").expect("answer");
            String::from_utf8_lossy(&received).into_owned()
        });
        (url, handle)
    }

    #[test]
    fn posts_the_document_with_basic_auth_and_never_shows_the_password() {
        let (url, listener) = answer_once("201 Created");
        let fake = exit_fake(Status::Succeeded);
        let result = fake.run(&StoreMetadata, json!({"url": url, "timeout": 5})).expect("posts");
        let shown = url.replace("hook-pw", "***");
        assert_eq!(result, json!({"url": shown, "status_code": 201}));
        let received = listener.join().expect("listener");
        let (head, body) = received.split_once("\r\n\r\n").expect("a request");
        assert!(head.starts_with("POST /meta HTTP/1.1"), "{head}");
        assert!(head.to_ascii_lowercase().contains("authorization: basic"), "{head}");
        let doc: Value = serde_json::from_str(body).expect("JSON body");
        assert_eq!(doc["status"], "succeeded");
        assert_eq!(doc["digests"][0]["digest"], DIGEST);
        assert!(fake.logs().iter().all(|r| !r.message.contains("hook-pw")));
        assert!(fake.logs().iter().any(|r| r.message == format!("posted the build's metadata to {shown} (HTTP 201)")));
    }

    #[test]
    fn an_error_status_fails_naming_it_and_the_url_without_its_password() {
        let (url, listener) = answer_once("503 Service Unavailable");
        let err = exit_fake(Status::Succeeded).run(&StoreMetadata, json!({"url": url})).expect_err("503");
        listener.join().expect("listener");
        assert_eq!(
            err.message,
            format!("POST {}: the server answered HTTP 503 Service Unavailable: nope!", url.replace("hook-pw", "***"))
        );
    }

    #[test]
    fn needs_a_path_or_a_url_and_checks_the_url_first() {
        let fake = exit_fake(Status::Succeeded);
        let err = fake.run(&StoreMetadata, json!({})).expect_err("nowhere to go");
        assert_eq!(
            (err.kind, err.message.as_str()),
            (ErrorKind::InvalidArgs, "neither 'path' nor 'url' is given: say where the metadata should go")
        );
        let err = fake.run(&StoreMetadata, json!({"url": "file:///etc/x"})).expect_err("not http");
        assert_eq!(err.message, "'url' file:///etc/x: only http:// and https:// URLs can be posted to");
        assert!(fake.requests().is_empty(), "nothing was asked before the args were checked");
        assert!(!fake.requests().contains(&Request::Workflow));
    }
}
