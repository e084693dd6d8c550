//! What a plugin's context reaches through the host, on a real engine and real registries:
//! containers with options, pulls and pushes that log in (from a registry_secret_dir or Docker's
//! config.json, on the htpasswd registry at 127.0.0.1:5001), the build's workspace, and no
//! secret in any log line, plan or result document.

use std::path::Path;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::util::*;

/// The registry with htpasswd auth that scripts/setup.sh starts, and its login.
const AUTH_REGISTRY: &str = "127.0.0.1:5001";
const USER: &str = "reactor";
const SECRET: &str = "reactor-secret";

fn doc(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("m.json")).expect("result document")).expect("JSON")
}

/// A build of busybox with `lists` (phase lists) and the test plugins, run with `args` and `env`.
fn build_busybox(dir: &Path, lists: Value, args: &[&str], env: &[(&str, &str)]) -> (Run, String) {
    git_repo(&dir.join("repo"), &[("Dockerfile", "FROM busybox:latest\n")]);
    let image = unique("context");
    let mut value = json!({"image": image, "git_url": "repo"});
    value.as_object_mut().expect("object").extend(lists.as_object().expect("lists").clone());
    let file = build_json(dir, &value);
    let (a, b) = (plugin("test_plugins"), plugin("test_puller"));
    let mut all =
        vec!["-v", "--load-plugin", &a, "--load-plugin", &b, "build", "json", &file, "--metadata-file", "m.json"];
    all.extend_from_slice(args);
    (reactor(dir, &all, env), image)
}

/// A build whose prebuild runs `puller`, with a `DOCKER_CONFIG` that holds no credentials.
fn pull_without_docker_config(dir: &Path, puller: Value) -> (Run, String) {
    let empty = dir.join("no-docker-config");
    std::fs::create_dir_all(&empty).expect("mkdir");
    build_busybox(dir, json!({"prebuild_plugins": [puller]}), &[], &[("DOCKER_CONFIG", empty.to_str().expect("utf-8"))])
}

fn assert_no_secret(run: &Run, dir: &Path, secrets: &[&str]) {
    let doc = std::fs::read_to_string(dir.join("m.json")).expect("result document");
    for secret in secrets {
        assert!(!run.stderr.contains(secret), "{secret} is in the log:\n{}", run.stderr);
        assert!(!run.stdout.contains(secret), "{secret} is on stdout:\n{}", run.stdout);
        assert!(!doc.contains(secret), "{secret} is in the result document:\n{doc}");
    }
}

#[test]
fn a_container_runs_with_env_user_and_entrypoint_and_its_output_is_streamed() {
    let dir = workdir();
    let probe = json!({"name": "container_probe", "args": {"image": "busybox:latest", "command": ["-c", "echo $GREETING; id -u"],
        "options": {"env": ["GREETING=hello from the container"], "user": "1234", "entrypoint": ["/bin/sh"], "stream_output": true}}});
    let (run, image) = build_busybox(dir.path(), json!({"postbuild_plugins": [probe]}), &[], &[]);
    let _cleanup = Images(vec![image]);
    run.expect_code(0);
    let result = result_in(&doc(dir.path()), "postbuild", "container_probe");
    assert_eq!(result, json!({"exit_code": 0, "stdout": "hello from the container\n1234\n", "stderr": ""}));
    assert!(run.stderr.contains("plugin::container_probe::container] hello from the container"), "{}", run.stderr);
}

#[test]
fn a_container_that_outlives_its_timeout_is_stopped_and_removed() {
    let dir = workdir();
    let probe = json!({"name": "container_probe", "args": {"image": "busybox:latest", "command": ["sleep", "37.9"],
        "options": {"timeout_s": 1}}});
    let started = std::time::Instant::now();
    let (run, image) = build_busybox(dir.path(), json!({"postbuild_plugins": [probe]}), &[], &[]);
    let _cleanup = Images(vec![image]);
    run.expect_code(1);
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "stopped at the timeout");
    assert!(
        run.stderr.contains("postbuild plugin 'container_probe' failed: the container of busybox:latest was stopped after its timeout of 1 s"),
        "{}",
        run.stderr
    );
    let ps = docker(&["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]);
    assert!(!String::from_utf8_lossy(&ps.stdout).contains("sleep 37.9"), "the container is gone");
}

#[test]
fn a_pull_logs_in_with_a_registry_secret_dir_and_is_recorded() {
    let dir = workdir();
    let secret_dir = dir.path().join("secret");
    write_files(
        &secret_dir,
        &[(".dockercfg", &json!({AUTH_REGISTRY: {"username": USER, "password": SECRET}}).to_string())],
    );
    let pulled = format!("{AUTH_REGISTRY}/busybox:latest");
    // Insecure, as a plain-HTTP registry is; the engine treats loopback registries so.
    let puller = json!({"name": "puller", "args": {"image": pulled, "secret_dir": secret_dir, "insecure": true}});
    // No config.json to fall back on: the secret dir is what logs in.
    let (run, image) = pull_without_docker_config(dir.path(), puller);
    let _cleanup = Images(vec![image]);
    run.expect_code(0);
    let doc = doc(dir.path());
    let recorded = &doc["pulled_images"][0];
    assert_eq!(recorded["name"], pulled);
    assert!(recorded["id"].as_str().is_some_and(|id| id.starts_with("sha256:")), "{recorded}");
    assert!(recorded["digest"].as_str().is_some_and(|d| d.starts_with("sha256:")), "{recorded}");
    assert_eq!(result_in(&doc, "prebuild", "puller"), *recorded);
    assert_no_secret(&run, dir.path(), &[SECRET]);
}

#[test]
fn a_registry_marked_insecure_that_the_engine_treats_as_secure_is_refused_saying_what_to_change() {
    let dir = workdir();
    // TEST-NET-1: never routed, so only the check can answer, at once.
    let puller = json!({"name": "puller", "args": {"image": "192.0.2.1:5000/busybox:latest", "insecure": true}});
    let (run, image) = build_busybox(dir.path(), json!({"prebuild_plugins": [puller]}), &[], &[]);
    let _cleanup = Images(vec![image]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("prebuild plugin 'puller' failed: 192.0.2.1:5000 is marked insecure, but the Docker engine treats it as secure (TLS verified): add it to \"insecure-registries\" in the engine's daemon.json"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_pull_without_credentials_fails_naming_the_registry() {
    let dir = workdir();
    let puller = json!({"name": "puller", "args": {"image": format!("{AUTH_REGISTRY}/busybox:latest")}});
    let (run, image) = pull_without_docker_config(dir.path(), puller);
    let _cleanup = Images(vec![image]);
    run.expect_code(1);
    let failure =
        run.errors().into_iter().find(|l| l.contains("prebuild plugin 'puller' failed")).expect("failure line");
    assert!(failure.contains(AUTH_REGISTRY), "{failure}");
}

#[test]
fn a_push_logs_in_with_docker_config_json_and_no_secret_is_printed() {
    let dir = workdir();
    let config = dir.path().join("docker-config");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{SECRET}"));
    write_files(&config, &[("config.json", &json!({"auths": {AUTH_REGISTRY: {"auth": auth}}}).to_string())]);
    let probe = json!({"name": "context_probe", "args": {"push_to": AUTH_REGISTRY}});
    let (run, image) = build_busybox(
        dir.path(),
        json!({"postbuild_plugins": [probe]}),
        &[],
        &[("DOCKER_CONFIG", config.to_str().expect("utf-8"))],
    );
    let _cleanup = Images(vec![image.clone()]);
    run.expect_code(0);
    let doc = doc(dir.path());
    let pushed = format!("{AUTH_REGISTRY}/{image}:probe");
    let digest = doc["digests"][&pushed].as_str().unwrap_or_else(|| panic!("digest recorded: {doc}")).to_owned();
    // The registry serves that manifest under that digest, to the same login.
    let login = format!("{USER}:{SECRET}");
    assert_eq!(registry_manifest(AUTH_REGISTRY, &image, &digest, Some(&login)).status, 200);
    assert_no_secret(&run, dir.path(), &[SECRET, &auth]);
}

#[test]
fn a_password_in_a_url_is_in_no_log_line_plan_or_result_document() {
    let dir = workdir();
    let lists = json!({"postbuild_plugins": [{"name": "recorder", "args": {"path": "r.txt", "label": "http://hook:w3bh00k@127.0.0.1:9/submit"}}]});
    let mut value = json!({"image": unique("secret"), "git_url": "http://user:s3cr3t@127.0.0.1:1/x.git"});
    value.as_object_mut().expect("object").extend(lists.as_object().expect("lists").clone());
    let file = build_json(dir.path(), &value);
    let so = plugin("test_plugins");
    let dry = reactor(
        dir.path(),
        &["-v", "--load-plugin", &so, "build", "json", &file, "--dry-run", "--metadata-file", "m.json"],
        &[],
    );
    dry.expect_code(0);
    assert!(dry.stdout.contains("http://user:***@127.0.0.1:1/x.git"), "{}", dry.stdout);
    let run =
        reactor(dir.path(), &["-v", "--load-plugin", &so, "build", "json", &file, "--metadata-file", "m.json"], &[]);
    run.expect_code(1);
    assert!(run.stderr.contains("http://user:***@127.0.0.1:1/x.git"), "the URL is still named: {}", run.stderr);
    assert_no_secret(&run, dir.path(), &["s3cr3t", "w3bh00k"]);
    assert!(!dry.stderr.contains("s3cr3t") && !dry.stderr.contains("w3bh00k"), "{}", dry.stderr);
}

#[test]
fn plugins_share_state_through_the_build_workspace_and_record_digests() {
    let dir = workdir();
    let lists = json!({
        "prebuild_plugins": [{"name": "workspace_probe", "args": {"key": "shared", "set": {"from": "prebuild"}}}],
        "postbuild_plugins": [{"name": "workspace_probe", "args": {"key": "shared",
            "record": {"name": "elsewhere:5000/pushed:1", "digest": "sha256:0123"}}}]
    });
    let (run, image) = build_busybox(dir.path(), lists, &[], &[]);
    let _cleanup = Images(vec![image]);
    run.expect_code(0);
    let doc = doc(dir.path());
    assert_eq!(result_in(&doc, "postbuild", "workspace_probe"), json!({"stored": {"from": "prebuild"}}));
    // A digest the plugin recorded for a push of its own is in the result document.
    assert_eq!(doc["digests"], json!({"elsewhere:5000/pushed:1": "sha256:0123"}));
}
