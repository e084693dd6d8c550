//! The built-ins that name and push the image (`tag_by_labels`, `tag_from_config`,
//! `tag_and_push`), through the real binary, on the real engine and the real registries:
//! 127.0.0.1:5000 (no auth) and 127.0.0.1:5001 (htpasswd). What the registries list and serve is
//! asked of them over HTTP; logins come from a secret directory's `.dockercfg` or from Docker's
//! config.json, with a real credential helper program for `credHelpers` and `credsStore`.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::util::*;

const OPEN_REGISTRY: &str = "127.0.0.1:5000";
const AUTH_REGISTRY: &str = "127.0.0.1:5001";
const USER: &str = "reactor";
const PASSWORD: &str = "reactor-secret";

/// A test's working directory and the unique repository name it pushes to.
struct Push {
    dir: tempfile::TempDir,
    repo: String,
}

impl Push {
    fn new(name: &str) -> Push {
        Push { dir: workdir(), repo: unique(name) }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs reactor (`-v`) on a path source holding `files`, as `request` says (`image` and
    /// `source` filled in unless given), with `env` added; returns the run and the result document.
    fn run(&self, files: &[(&str, &str)], request: Value, env: &[(&str, &str)]) -> (Run, Value) {
        self.run_with(files, request, env, &[])
    }

    /// [`Push::run`] with more options before `build` (`--load-plugin …`).
    fn run_with(
        &self,
        files: &[(&str, &str)],
        mut request: Value,
        env: &[(&str, &str)],
        options: &[&str],
    ) -> (Run, Value) {
        write_files(&self.path().join("src"), files);
        let object = request.as_object_mut().expect("an object");
        object.entry("source").or_insert_with(|| json!({"provider": "path", "uri": "src"}));
        object.entry("image").or_insert_with(|| json!(format!("{}:build-1", self.repo)));
        let file = build_json(self.path(), &request);
        let metadata = self.path().join("m.json");
        let _ = std::fs::remove_file(&metadata);
        let mut args = vec!["-v"];
        args.extend_from_slice(options);
        args.extend(["build", "json", &file, "--metadata-file", metadata.to_str().expect("utf-8")]);
        let run = reactor(self.path(), &args, env);
        let doc = std::fs::read_to_string(&metadata)
            .map(|text| serde_json::from_str(&text).expect("the result document is JSON"))
            .unwrap_or(Value::Null);
        (run, doc)
    }

    /// A `DOCKER_CONFIG` directory holding `config` as config.json (nothing when `None`).
    fn docker_config(&self, config: Option<Value>) -> PathBuf {
        let dir = self.path().join("docker-config");
        std::fs::create_dir_all(&dir).expect("mkdir");
        if let Some(config) = config {
            std::fs::write(dir.join("config.json"), config.to_string()).expect("write config.json");
        }
        dir
    }

    /// Removes, at the end of the test, the built image and the tags pushed from it.
    fn cleanup(&self, tags: &[&str]) -> Images {
        let mut names = vec![format!("{}:build-1", self.repo)];
        for registry in [OPEN_REGISTRY, AUTH_REGISTRY] {
            names.extend(tags.iter().map(|tag| format!("{registry}/{}:{tag}", self.repo)));
        }
        Images(names)
    }
}

/// curl against a registry, logging in to the one that needs it; returns (HTTP status, headers, body).
fn registry_get(registry: &str, path: &str) -> (u16, String, String) {
    let mut curl = Command::new("curl");
    curl.args(["-s", "-D", "-"]);
    if registry == AUTH_REGISTRY {
        curl.args(["-u", &format!("{USER}:{PASSWORD}")]);
    }
    let out = curl.arg(format!("http://{registry}{path}")).output().expect("run curl");
    assert!(out.status.success(), "curl {registry}{path}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let (headers, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let status = headers.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("an HTTP status");
    (status, headers.to_owned(), body.to_owned())
}

/// The tags the registry lists for `repo`, sorted; `None` when it has no such repository.
fn registry_tags(registry: &str, repo: &str) -> Option<Vec<String>> {
    let (status, _, body) = registry_get(registry, &format!("/v2/{repo}/tags/list"));
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200, "tags/list of {repo}: {body}");
    let listed: Value = serde_json::from_str(&body).expect("tags/list is JSON");
    let mut tags: Vec<String> =
        listed["tags"].as_array().expect("tags").iter().map(|t| t.as_str().expect("a tag").to_owned()).collect();
    tags.sort();
    Some(tags)
}

/// Every pushed name of `registry/repo` has, in the result document's `digests` and in
/// tag_and_push's result, the digest the registry serves for it.
fn assert_digests_served(doc: &Value, registry: &str, repo: &str, tags: &[&str]) {
    let pushed = result_in(doc, "postbuild", "tag_and_push");
    for tag in tags {
        let name = format!("{registry}/{repo}:{tag}");
        let login = (registry == AUTH_REGISTRY).then(|| format!("{USER}:{PASSWORD}"));
        let served = served_digest(registry, repo, tag, login.as_deref());
        assert_eq!(doc["digests"][&name], json!(served), "digests[{name}] in {doc}");
        let entry = pushed.as_array().expect("a list").iter().find(|p| p["image"] == name.as_str());
        assert_eq!(entry.map(|e| e["digest"].clone()), Some(json!(served)), "{name} in {pushed}");
    }
}

fn assert_no_secret(run: &Run, doc: &Value) {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let doc = doc.to_string();
    for secret in [PASSWORD, auth.as_str()] {
        assert!(!run.stderr.contains(secret), "{secret} is in the log:\n{}", run.stderr);
        assert!(!run.stdout.contains(secret), "{secret} is on stdout:\n{}", run.stdout);
        assert!(!doc.contains(secret), "{secret} is in the result document:\n{doc}");
    }
}

fn push_to(registry: &str, conf: Value) -> Value {
    json!({"name": "tag_and_push", "args": {"registries": {registry: conf}}})
}

fn labelled_dockerfile(repo: &str) -> String {
    format!("FROM busybox:latest\nLABEL name={repo} version=1.0 release=2\n")
}

#[test]
fn labels_and_additional_tags_are_pushed_with_the_digests_the_registry_serves() {
    labels_and_additional_tags_pushed(&[], "built-in");
}

/// The same source as a plugin module (`plugins/builtins_module`), loaded with `--load-plugin`,
/// passes the same test.
#[test]
fn labels_and_additional_tags_are_pushed_by_the_builtins_compiled_as_a_plugin_module() {
    let module = plugin("builtins_module");
    labels_and_additional_tags_pushed(&["--load-plugin", &module], &module);
}

fn labels_and_additional_tags_pushed(options: &[&str], origin: &str) {
    let push = Push::new("push-tags");
    let repo = push.repo.clone();
    let tags = ["1.0", "1.0-2", "3.2", "build-1", "latest", "stable"];
    let _cleanup = push.cleanup(&tags);
    let dockerfile = labelled_dockerfile(&repo);
    let files = [("Dockerfile", dockerfile.as_str()), ("additional-tags", "stable\n\n  3.2  \nnot-this-one\n")];
    let lists = json!({"postbuild_plugins": [
        {"name": "tag_by_labels"},
        {"name": "tag_from_config"},
        push_to(OPEN_REGISTRY, json!({"insecure": true})),
    ]});
    let (run, doc) = push.run_with(&files, lists, &[], options);
    run.expect_code(0);
    let loaded = doc["loaded_plugins"].as_array().expect("loaded_plugins");
    for key in ["tag_by_labels", "tag_from_config", "tag_and_push"] {
        let entry = loaded.iter().find(|p| p["key"] == key).unwrap_or_else(|| panic!("{key} loaded"));
        assert_eq!(entry["origin"], origin, "{key}");
    }

    assert_eq!(registry_tags(OPEN_REGISTRY, &repo), Some(tags.map(String::from).to_vec()));
    assert_digests_served(&doc, OPEN_REGISTRY, &repo, &tags);
    assert_eq!(
        result_in(&doc, "postbuild", "tag_by_labels"),
        json!({"unique_images": [format!("{repo}:build-1")],
               "primary_images": [format!("{repo}:1.0-2"), format!("{repo}:1.0"), format!("{repo}:latest")]})
    );
    assert_eq!(
        result_in(&doc, "postbuild", "tag_from_config"),
        json!([format!("{repo}:stable"), format!("{repo}:3.2")])
    );
    // Unique first, then the primary names in the order they were added; each pushed once.
    let pushed: Vec<String> = result_in(&doc, "postbuild", "tag_and_push")
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| p["image"].as_str().expect("a name").to_owned())
        .collect();
    let expected: Vec<String> = ["build-1", "1.0-2", "1.0", "latest", "stable", "3.2"]
        .iter()
        .map(|t| format!("{OPEN_REGISTRY}/{repo}:{t}"))
        .collect();
    assert_eq!(pushed, expected);
    for tag in ["build-1", "1.0-2", "1.0", "latest", "stable", "3.2"] {
        let name = format!("{repo}:{tag}");
        assert!(doc["tags"].as_array().expect("tags").contains(&json!(name)), "{name} in {}", doc["tags"]);
    }
    assert!(
        run.stderr.contains("tag 'not-this-one' holds a '-', ignored"),
        "the skipped tag is warned about:\n{}",
        run.stderr
    );
}

#[test]
fn without_tagging_plugins_the_workflows_image_is_pushed_and_pullable() {
    let push = Push::new("push-fallback");
    let repo = push.repo.clone();
    let pushed = format!("{OPEN_REGISTRY}/{repo}:bar");
    let _cleanup = Images(vec![format!("{repo}:bar"), pushed.clone()]);
    let request = json!({"image": format!("{repo}:bar"),
                         "postbuild_plugins": [push_to(OPEN_REGISTRY, json!({"insecure": true}))]});
    let (run, doc) = push.run(&[("Dockerfile", "FROM busybox:latest\nRUN echo fallback > /pushed\n")], request, &[]);
    run.expect_code(0);
    assert_eq!(registry_tags(OPEN_REGISTRY, &repo), Some(vec!["bar".to_owned()]));
    assert_digests_served(&doc, OPEN_REGISTRY, &repo, &["bar"]);

    let removed = docker(&["rmi", &pushed]);
    assert!(removed.status.success(), "{}", String::from_utf8_lossy(&removed.stderr));
    let pulled = docker(&["pull", &pushed]);
    assert!(pulled.status.success(), "docker pull {pushed}: {}", String::from_utf8_lossy(&pulled.stderr));
    assert_eq!(docker_run(&pushed, &["cat", "/pushed"]), "fallback\n");
}

#[test]
fn target_registries_push_without_listing_tag_and_push() {
    let push = Push::new("push-target");
    let repo = push.repo.clone();
    let _cleanup = push.cleanup(&["build-1"]);
    let request = json!({"target_registries": [OPEN_REGISTRY], "target_registries_insecure": true});
    let (run, doc) = push.run(&[("Dockerfile", "FROM busybox:latest\n")], request, &[]);
    run.expect_code(0);
    assert_eq!(registry_tags(OPEN_REGISTRY, &repo), Some(vec!["build-1".to_owned()]));
    assert_digests_served(&doc, OPEN_REGISTRY, &repo, &["build-1"]);
}

#[test]
fn a_secret_dir_logs_in_and_the_password_is_in_no_log_line_or_result() {
    let push = Push::new("push-secret");
    let repo = push.repo.clone();
    let _cleanup = push.cleanup(&["build-1"]);
    let secret = push.path().join("registry-secret");
    write_files(
        &secret,
        &[(
            ".dockercfg",
            &json!({AUTH_REGISTRY: {"username": USER, "password": PASSWORD, "email": "r@example.com"}}).to_string(),
        )],
    );
    let no_config = push.docker_config(None);
    let lists =
        json!({"postbuild_plugins": [push_to(AUTH_REGISTRY, json!({"secret": secret.to_str().expect("utf-8")}))]});
    let (run, doc) = push.run(
        &[("Dockerfile", "FROM busybox:latest\n")],
        lists,
        &[("DOCKER_CONFIG", no_config.to_str().expect("utf-8"))],
    );
    run.expect_code(0);
    assert_eq!(registry_tags(AUTH_REGISTRY, &repo), Some(vec!["build-1".to_owned()]));
    assert_digests_served(&doc, AUTH_REGISTRY, &repo, &["build-1"]);
    assert_no_secret(&run, &doc);
}

/// A directory holding `docker-credential-reactortest`, a real credential helper: it answers
/// `get` for 127.0.0.1:5001 with the registry's login, says "credentials not found" for any
/// other server, and appends each server it was asked about to `asked.log` beside it.
fn credential_helper(dir: &Path) -> PathBuf {
    let bin = dir.join("helper-bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let log = bin.join("asked.log");
    let script = format!(
        r#"#!/bin/sh
[ "$1" = get ] || {{ echo "unsupported: $1" >&2; exit 1; }}
read -r server
echo "$server" >> '{log}'
if [ "$server" = "{AUTH_REGISTRY}" ]; then
    printf '{{"ServerURL": "%s", "Username": "{USER}", "Secret": "{PASSWORD}"}}\n' "$server"
else
    echo "credentials not found in native keychain"
    exit 1
fi
"#,
        log = log.display()
    );
    let path = bin.join("docker-credential-reactortest");
    std::fs::write(&path, script).expect("write the helper");
    let chmod = Command::new("chmod").arg("755").arg(&path).status().expect("chmod");
    assert!(chmod.success());
    bin
}

/// `PATH` with `bin` first.
fn path_with(bin: &Path) -> String {
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

fn asked(bin: &Path) -> Vec<String> {
    std::fs::read_to_string(bin.join("asked.log")).unwrap_or_default().lines().map(str::to_owned).collect()
}

#[test]
fn config_json_cred_helpers_run_the_helper_and_its_secret_is_never_shown() {
    let push = Push::new("push-helper");
    let repo = push.repo.clone();
    let _cleanup = push.cleanup(&["build-1"]);
    let bin = credential_helper(push.path());
    let config = push.docker_config(Some(json!({"auths": {}, "credHelpers": {AUTH_REGISTRY: "reactortest"}})));
    let env = [("DOCKER_CONFIG", config.to_str().expect("utf-8")), ("PATH", &path_with(&bin))];
    let lists = json!({"postbuild_plugins": [push_to(AUTH_REGISTRY, json!({}))]});
    let (run, doc) = push.run(&[("Dockerfile", "FROM busybox:latest\n")], lists, &env);
    run.expect_code(0);
    assert_eq!(asked(&bin), [AUTH_REGISTRY], "the helper was asked for the registry");
    assert_eq!(registry_tags(AUTH_REGISTRY, &repo), Some(vec!["build-1".to_owned()]));
    assert_digests_served(&doc, AUTH_REGISTRY, &repo, &["build-1"]);
    assert_no_secret(&run, &doc);
}

#[test]
fn config_json_creds_store_serves_the_registry_it_knows_and_not_the_others() {
    let push = Push::new("push-store");
    let repo = push.repo.clone();
    let _cleanup = push.cleanup(&["build-1"]);
    let bin = credential_helper(push.path());
    // What `docker login` leaves with a store: an empty entry in `auths`.
    let config = push.docker_config(Some(json!({"auths": {AUTH_REGISTRY: {}}, "credsStore": "reactortest"})));
    let env = [("DOCKER_CONFIG", config.to_str().expect("utf-8")), ("PATH", &path_with(&bin))];
    let lists = json!({"postbuild_plugins": [{"name": "tag_and_push", "args": {"registries": {
        AUTH_REGISTRY: {}, OPEN_REGISTRY: {"insecure": true}}}}]});
    let (run, doc) = push.run(&[("Dockerfile", "FROM busybox:latest\n")], lists, &env);
    run.expect_code(0);
    // The store is asked for each registry; it knows only one, and the other needs no login.
    let mut servers = asked(&bin);
    servers.sort();
    assert_eq!(servers, [OPEN_REGISTRY, AUTH_REGISTRY]);
    for registry in [OPEN_REGISTRY, AUTH_REGISTRY] {
        assert_eq!(registry_tags(registry, &repo), Some(vec!["build-1".to_owned()]), "{registry}");
        assert_digests_served(&doc, registry, &repo, &["build-1"]);
    }
    assert_no_secret(&run, &doc);
}

#[test]
fn without_credentials_the_push_fails_naming_the_registry() {
    let push = Push::new("push-nologin");
    let repo = push.repo.clone();
    let _cleanup = push.cleanup(&["build-1"]);
    let no_config = push.docker_config(None);
    let lists = json!({"postbuild_plugins": [push_to(AUTH_REGISTRY, json!({}))]});
    let (run, doc) = push.run(
        &[("Dockerfile", "FROM busybox:latest\n")],
        lists,
        &[("DOCKER_CONFIG", no_config.to_str().expect("utf-8"))],
    );
    run.expect_code(1);
    let failure = run
        .errors()
        .into_iter()
        .find(|l| l.contains("postbuild plugin 'tag_and_push' failed"))
        .unwrap_or_else(|| panic!("a failure line:\n{}", run.stderr))
        .to_owned();
    assert!(
        failure.contains(&format!("the registry {AUTH_REGISTRY} wants a login and no credentials were found for it")),
        "{failure}"
    );
    assert_eq!(doc["failure"]["plugin"], "tag_and_push");
    assert_eq!(registry_tags(AUTH_REGISTRY, &repo), None, "nothing was pushed");
}

#[test]
fn a_failed_build_pushes_nothing_and_the_exit_plugins_still_run() {
    let push = Push::new("push-failed");
    let repo = push.repo.clone();
    let _cleanup = push.cleanup(&["build-1"]);
    let lists = json!({
        "postbuild_plugins": [{"name": "tag_by_labels"}, push_to(OPEN_REGISTRY, json!({"insecure": true}))],
        "exit_plugins": [{"name": "dockerfile_content"}],
    });
    let dockerfile = format!("{}RUN false\n", labelled_dockerfile(&repo));
    let (run, doc) = push.run(&[("Dockerfile", dockerfile.as_str())], lists, &[]);
    run.expect_code(1);
    assert_eq!(doc["failure"]["plugin"], "dockerbuild", "{doc}");
    assert_eq!(result_in(&doc, "exit", "dockerfile_content"), json!(dockerfile));
    let runs = doc["plugins"].as_array().expect("plugins");
    assert!(runs.iter().all(|r| r["phase"] != "postbuild"), "no postbuild plugin ran: {doc}");
    assert_eq!(registry_tags(OPEN_REGISTRY, &repo), None, "nothing was pushed");
}

#[test]
fn an_image_name_with_a_registry_is_refused_and_nothing_is_pushed() {
    let push = Push::new("push-named");
    let repo = push.repo.clone();
    let image = format!("{OPEN_REGISTRY}/{repo}:1");
    let _cleanup = Images(vec![image.clone()]);
    let request = json!({"image": image, "postbuild_plugins": [push_to(AUTH_REGISTRY, json!({}))]});
    let (run, doc) = push.run(&[("Dockerfile", "FROM busybox:latest\n")], request, &[]);
    run.expect_code(1);
    let error = doc["failure"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("tag_and_push: the image name '{image}' already names the registry '{OPEN_REGISTRY}'")),
        "{doc}"
    );
    assert_eq!(registry_tags(AUTH_REGISTRY, &repo), None);
}
