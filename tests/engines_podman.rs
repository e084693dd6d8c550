//! podman's Docker-compatible service as the engine (`DOCKER_HOST=unix://…/podman.sock`, kept
//! running by `scripts/engine/podman.sh`), end to end: a build with a container run and a push,
//! and the API differences reactor handles. These tests fail, never skip, when the service does
//! not answer.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::*;

const REGISTRY: &str = "127.0.0.1:5000";

fn podman_socket() -> PathBuf {
    let root = std::env::var("REACTOR_ENGINES_DIR").unwrap_or_else(|_| "/var/lib/reactor-test-engines".to_owned());
    PathBuf::from(root).join("podman/podman.sock")
}

fn podman_host() -> String {
    format!("unix://{}", podman_socket().display())
}

/// The docker CLI against podman's service.
fn podman(args: &[&str]) -> Output {
    Command::new("docker").arg("-H").arg(podman_host()).args(args).output().expect("run docker -H podman")
}

/// Fails the test with what to do when podman's service does not answer.
fn podman_is_up() {
    let out = podman(&["version", "-f", "{{.Server.Version}}"]);
    assert!(
        out.status.success(),
        "podman's service does not answer at {}: run scripts/setup.sh, or scripts/engine/podman.sh up (its log: \
         {}): {}",
        podman_host(),
        podman_socket().with_file_name("podman.log").display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds `dockerfile` on podman with these plugin lists; returns the run, the result document
/// and the image name.
fn build_on_podman(dir: &Path, dockerfile: &str, lists: Value) -> (Run, Value, String) {
    podman_is_up();
    git_repo(&dir.join("repo"), &[("Dockerfile", dockerfile)]);
    let image = unique("podman");
    let mut request = json!({"image": image, "git_url": "repo"});
    request.as_object_mut().expect("object").extend(lists.as_object().expect("lists").clone());
    let file = build_json(dir, &request);
    let host = podman_host();
    let run = reactor(dir, &["-v", "build", "json", &file, "--metadata-file", "m.json"], &[("DOCKER_HOST", &host)]);
    let doc = std::fs::read_to_string(dir.join("m.json"))
        .map(|t| serde_json::from_str(&t).expect("the result document is JSON"))
        .unwrap_or(Value::Null);
    (run, doc, image)
}

#[test]
fn a_build_on_podman_runs_a_container_and_pushes_the_digest_the_registry_serves() {
    let dir = workdir();
    let lists = json!({
        "prepublish_plugins": [{"name": "run_in_image", "args": {"command": "cat /marker; exit 0"}},
                               {"name": "run_in_image", "args": {"command": "echo failing; exit 3"}, "is_allowed_to_fail": true}],
        "postbuild_plugins": [{"name": "tag_and_push", "args": {"registries": {REGISTRY: {"insecure": true}}}}]
    });
    let (run, doc, image) =
        build_on_podman(dir.path(), "FROM busybox:latest\nRUN echo built-on-podman > /marker\n", lists);
    let pushed = format!("{REGISTRY}/{image}:latest");
    let _cleanup = ImagesOn(podman, vec![image.clone(), pushed.clone()]);
    run.expect_code(0);
    // podman's build stream is buildah's ("STEP 2/2:" lines, no "Running in"), with Docker's
    // aux message giving the image ID.
    assert!(run.stderr.contains("STEP 2/2: RUN echo built-on-podman > /marker"), "{}", run.stderr);
    let id = doc["image_id"].as_str().expect("an image id").to_owned();
    let inspected = podman(&["image", "inspect", "-f", "{{.Id}}", &image]);
    assert_eq!(String::from_utf8_lossy(&inspected.stdout).trim(), id);
    let runs: Vec<Value> = doc["plugins"]
        .as_array()
        .expect("plugin runs")
        .iter()
        .filter(|r| r["key"] == "run_in_image")
        .map(|r| r["result"].clone())
        .collect();
    assert_eq!(runs[0], json!({"exit_code": 0, "stdout": "built-on-podman\n", "stderr": ""}));
    // A non-zero exit comes back from podman's container wait as it does from Docker's.
    assert!(run.stderr.contains("exited with code 3"), "{}", run.stderr);
    // podman's push stream has no per-layer progress and no digest message of its own: the
    // digest comes from its "<tag>: digest: sha256:… size: N" line, as Docker's.
    let pushes = result_in(&doc, "postbuild", "tag_and_push");
    assert_eq!(pushes[0]["image"], pushed.as_str(), "{pushes}");
    assert_eq!(pushes[0]["digest"], served_digest(REGISTRY, &image, "latest", None).as_str(), "{pushes}");
    // The containers reactor ran are gone.
    let left = podman(&["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]);
    assert!(!String::from_utf8_lossy(&left.stdout).contains("built-on-podman"), "containers left on podman");
}

#[test]
fn on_podman_remove_built_image_removes_the_image_podman_names_docker_io_library() {
    let dir = workdir();
    // podman reports the built image's name as docker.io/library/NAME: reactor shows plugins
    // Docker's short form, so remove_built_image knows the name for the build's own and removes it.
    let lists = json!({"exit_plugins": [{"name": "remove_built_image"}]});
    let (run, doc, image) = build_on_podman(dir.path(), "FROM busybox:latest\nLABEL built=here\n", lists);
    let _cleanup = ImagesOn(podman, vec![image.clone()]);
    run.expect_code(0);
    assert!(!run.stderr.contains("which this build did not make"), "{}", run.stderr);
    let id = doc["image_id"].as_str().expect("an image id");
    assert!(!podman(&["image", "inspect", id]).status.success(), "the built image {id} is still on podman");
}

#[test]
fn on_podman_a_pulled_base_reports_the_digest_the_registry_serves() {
    let dir = workdir();
    // A base of this test's own in the registry, so that no shared name is re-tagged.
    let base = unique("podman-base");
    let in_registry = format!("{REGISTRY}/{base}:1");
    assert!(docker(&["tag", "busybox:latest", &in_registry]).status.success());
    let _main_cleanup = Images(vec![in_registry.clone()]);
    let push = docker(&["push", "-q", &in_registry]);
    assert!(push.status.success(), "{}", String::from_utf8_lossy(&push.stderr));
    let lists = json!({"prebuild_plugins": [{"name": "pull_base_image",
        "args": {"parent_registry": REGISTRY, "parent_registry_insecure": true}}]});
    let (run, doc, image) = build_on_podman(dir.path(), &format!("FROM {base}:1\n"), lists);
    let _cleanup = ImagesOn(podman, vec![image, in_registry, format!("{base}:1")]);
    run.expect_code(0);
    // podman's pull stream has no "Digest:" line: the digest is its RepoDigests entry.
    let pulled = result_in(&doc, "prebuild", "pull_base_image");
    assert_eq!(pulled[0]["digest"], served_digest(REGISTRY, &base, "1", None).as_str(), "{pulled}");
}

/// Whether a process whose command line is exactly `cmdline` (arguments joined by spaces) runs.
fn process_runs(cmdline: &str) -> bool {
    std::fs::read_dir("/proc").expect("/proc").flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).trim_end_matches('\0').replace('\0', " ") == cmdline)
    })
}

#[test]
fn sigterm_during_a_build_on_podman_leaves_no_image_once_the_running_step_ends() {
    podman_is_up();
    let dir = workdir();
    // An odd duration, to find this build's step among others.
    git_repo(&dir.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\nRUN sleep 6.25\nRUN echo next\n")]);
    let image = unique("podman-cancel");
    let record = dir.path().join("record.txt");
    let file = build_json(
        dir.path(),
        &json!({"image": image, "git_url": "repo",
            "exit_plugins": [{"name": "recorder", "args": {"path": record, "label": "exit"}}]}),
    );
    let _cleanup = ImagesOn(podman, vec![image.clone()]);
    let so = plugin("test_plugins");
    let host = podman_host();
    let run = Background::start(
        dir.path(),
        &["--load-plugin", &so, "build", "json", &file, "--metadata-file", "m.json"],
        &[("DOCKER_HOST", &host)],
        false,
    );
    run.wait_until("the sleep step", |_| process_runs("sleep 6.25"));
    run.signal("TERM", false);
    let (code, stderr) = run.wait();
    assert_eq!(code, Some(143), "{stderr}");
    assert_eq!(std::fs::read_to_string(&record).expect("the exit plugin ran"), "exit exit\n");
    // podman 4.3 does not stop the running step when the client hangs up (Docker does): it
    // ends by itself, and podman then abandons the build, committing nothing.
    let deadline = Instant::now() + Duration::from_secs(30);
    while process_runs("sleep 6.25") {
        assert!(Instant::now() < deadline, "the step still runs");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(!podman(&["image", "inspect", &image]).status.success(), "the cancelled build made {image} on podman");
}
