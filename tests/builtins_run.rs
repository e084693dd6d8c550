//! The built-ins that run the built image and report the outcome, end to end on the real engine,
//! the local registry and real HTTP listeners: `run_in_image`, `all_packages`,
//! `store_logs_to_file`, `store_metadata` and `notify_webhook` (the last two post with a blocking
//! HTTP client from a plugin thread of the host).

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::*;

const REGISTRY: &str = "127.0.0.1:5000";

/// One build of a git repository holding `files`, with the test plugins loaded.
struct Built {
    run: Run,
    doc: Value,
    image: String,
    commit: String,
}

/// Builds `files` (a `Dockerfile` among them) with these phase lists, `-v`, the test plugins
/// and a result document; the image is removed afterwards.
fn build_with(dir: &Path, files: &[(&str, &str)], lists: Value) -> Built {
    let commit = git_repo(&dir.join("repo"), files);
    let image = unique("run");
    let mut request = json!({"image": image, "git_url": "repo"});
    request.as_object_mut().expect("object").extend(lists.as_object().expect("lists").clone());
    let file = build_json(dir, &request);
    let so = plugin("test_plugins");
    let run = reactor(dir, &["-v", "--load-plugin", &so, "build", "json", &file, "--metadata-file", "m.json"], &[]);
    let _cleanup = Images(vec![image.clone()]);
    let doc = std::fs::read_to_string(dir.join("m.json"))
        .map(|text| serde_json::from_str(&text).expect("the result document is JSON"))
        .unwrap_or(Value::Null);
    Built { run, doc, image, commit }
}

const BUSYBOX: &str = "FROM busybox:latest\nLABEL com.example.run=yes\n";

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("JSON")
}

/// The results of every run of `key` in `phase`, in order.
fn results_of(doc: &Value, phase: &str, key: &str) -> Vec<Value> {
    doc["plugins"]
        .as_array()
        .unwrap_or_else(|| panic!("no plugin runs: {doc}"))
        .iter()
        .filter(|r| r["phase"] == phase && r["key"] == key)
        .map(|r| r["result"].clone())
        .collect()
}

/// A webhook that accepts connections and reads what is sent, but never answers.
struct SilentListener {
    url: String,
    accepted: Arc<Mutex<Vec<TcpStream>>>,
}

impl SilentListener {
    fn start() -> SilentListener {
        let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", socket.local_addr().expect("addr"));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let keep = accepted.clone();
        std::thread::spawn(move || {
            for stream in socket.incoming().flatten() {
                // Held open, unanswered, until the test ends.
                let mut reader = stream.try_clone().expect("clone");
                keep.lock().expect("lock").push(stream);
                std::thread::spawn(move || {
                    let mut sink = [0u8; 4096];
                    while reader.read(&mut sink).map(|n| n > 0).unwrap_or(false) {}
                });
            }
        });
        SilentListener { url, accepted }
    }

    fn connections(&self) -> usize {
        self.accepted.lock().expect("lock").len()
    }
}

#[test]
fn run_in_image_returns_the_output_and_streams_it_to_the_log() {
    let dir = workdir();
    let lists = json!({
        "prepublish_plugins": [{"name": "run_in_image", "args": {
            "command": "echo hello from $WHO; echo a warning >&2", "env": {"WHO": "the image"}}}],
        "postbuild_plugins": [{"name": "run_in_image", "args": {"command": ["id", "-u"], "user": "1234", "timeout": 60}}]
    });
    let built = build_with(dir.path(), &[("Dockerfile", BUSYBOX)], lists);
    built.run.expect_code(0);
    assert_eq!(
        result_in(&built.doc, "prepublish", "run_in_image"),
        json!({"exit_code": 0, "stdout": "hello from the image\n", "stderr": "a warning\n"})
    );
    assert_eq!(
        result_in(&built.doc, "postbuild", "run_in_image"),
        json!({"exit_code": 0, "stdout": "1234\n", "stderr": ""})
    );
    let stderr = &built.run.stderr;
    assert!(stderr.contains("plugin::run_in_image::container] hello from the image"), "{stderr}");
    assert!(stderr.contains("plugin::run_in_image::container] a warning"), "{stderr}");
    let image_id = built.doc["image_id"].as_str().expect("built");
    assert!(
        stderr.contains(&format!("running /bin/sh -c 'echo hello from $WHO; echo a warning >&2' in {image_id}")),
        "{stderr}"
    );
}

#[test]
fn a_failing_command_fails_the_build_and_the_exit_plugins_still_run() {
    let dir = workdir();
    let listener = Listener::start("ok");
    let logs = dir.path().join("out/logs.json");
    let metadata = dir.path().join("out/metadata.json");
    let lists = json!({
        "prepublish_plugins": [{"name": "run_in_image", "args": {"command": "echo testing; echo 'no such file: /app' >&2; exit 3"}}],
        "postbuild_plugins": [{"name": "recorder", "args": {"path": "record.txt", "label": "post"}}],
        "exit_plugins": [
            {"name": "store_logs_to_file", "args": {"file_path": logs.display().to_string()}},
            {"name": "notify_webhook", "args": {"url": listener.url}},
            {"name": "store_metadata", "args": {"path": metadata.display().to_string()}}
        ]
    });
    let built = build_with(dir.path(), &[("Dockerfile", BUSYBOX)], lists);
    built.run.expect_code(1);
    let error = "/bin/sh -c 'echo testing; echo '\\''no such file: /app'\\'' >&2; exit 3' exited with code 3; stderr ends: no such file: /app";
    assert!(
        built.run.stderr.contains(&format!("prepublish plugin 'run_in_image' failed: {error}")),
        "{}",
        built.run.stderr
    );
    assert!(built.run.stderr.contains("plugin::run_in_image::container] testing"), "{}", built.run.stderr);
    assert!(!dir.path().join("record.txt").exists(), "postbuild did not run after the fatal failure");
    assert_eq!(built.doc["failure"]["plugin"], "run_in_image");

    // The exit plugins ran, all of them, and saw the failure.
    let stored = read_json(&logs);
    let keys: Vec<&String> = stored.as_object().expect("object").keys().collect();
    for key in ["prebuild_plugins", "buildstep_plugins", "prepublish_plugins", "postbuild_plugins", "exit_plugins"] {
        assert!(keys.iter().any(|k| *k == key), "{key} in {stored}");
    }
    assert_eq!(stored["prepublish_plugins"]["run_in_image"], json!({"error": error, "kind": "failed"}));
    assert_eq!(stored["postbuild_plugins"], json!({}));

    let posted = listener.wait_for(1);
    assert_eq!(posted.len(), 1, "one notification");
    let body = posted[0].json();
    assert_eq!(body["status"], "failed");
    assert_eq!(
        (body["failed_phase"].as_str(), body["failed_plugin"].as_str()),
        (Some("prepublish"), Some("run_in_image"))
    );
    assert_eq!(body["error"], format!("prepublish plugin 'run_in_image' failed: {error}"));
    assert_eq!(body["image"], built.image);
    assert_eq!(body["image_id"], built.doc["image_id"]);
    assert!(posted[0].request_line.starts_with("POST /submit "), "{}", posted[0].request_line);

    let meta = read_json(&metadata);
    assert_eq!(meta["status"], "failed");
    assert_eq!(meta["failure"]["plugin"], "run_in_image");
    assert_eq!(meta["plugins-metadata"]["errors"]["run_in_image"], error);
    assert_eq!(meta["plugins-metadata"]["results"]["exit_plugins"]["notify_webhook"]["sent"], true);
}

#[test]
fn run_in_image_that_outlives_its_timeout_fails_the_build_and_leaves_no_container() {
    let dir = workdir();
    let lists =
        json!({"prepublish_plugins": [{"name": "run_in_image", "args": {"command": ["sleep", "41.7"], "timeout": 1}}]});
    let started = Instant::now();
    let built = build_with(dir.path(), &[("Dockerfile", BUSYBOX)], lists);
    built.run.expect_code(1);
    assert!(started.elapsed() < Duration::from_secs(30), "stopped at the timeout: {:?}", started.elapsed());
    assert!(
        built.run.stderr.contains(
            "prepublish plugin 'run_in_image' failed: sleep 41.7 timed out: still running after 1 s (the 'timeout'), so its container was killed"
        ),
        "{}",
        built.run.stderr
    );
    let ps = docker(&["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]);
    assert!(!String::from_utf8_lossy(&ps.stdout).contains("sleep 41.7"), "the container is gone");
}

#[test]
fn all_packages_reports_an_image_without_a_package_manager() {
    let dir = workdir();
    let lists = json!({"postbuild_plugins": [{"name": "all_packages", "args": {"image_id": "BUILT_IMAGE_ID"}}]});
    let built = build_with(dir.path(), &[("Dockerfile", BUSYBOX)], lists);
    built.run.expect_code(0);
    assert_eq!(result_in(&built.doc, "postbuild", "all_packages"), json!({"manager": null, "packages": []}));
    let image_id = built.doc["image_id"].as_str().expect("built");
    assert!(
        built.run.stderr.contains(&format!(
            "{image_id} has no package manager (looked for rpm, dpkg and apk): no packages to list"
        )),
        "{}",
        built.run.stderr
    );
}

#[test]
fn all_rpm_packages_fails_the_build_of_an_image_without_rpm_as_the_original_did() {
    let dir = workdir();
    let lists = json!({"postbuild_plugins": [{"name": "all_rpm_packages", "args": {"image_id": "BUILT_IMAGE_ID"}}]});
    let built = build_with(dir.path(), &[("Dockerfile", BUSYBOX)], lists);
    built.run.expect_code(1);
    let image_id = built.doc["image_id"].as_str().expect("built");
    assert_eq!(built.doc["failure"]["plugin"], "all_rpm_packages", "{}", built.doc);
    let error = built.doc["failure"]["error"].as_str().expect("an error");
    assert!(error.contains(&format!("{image_id} has no usable rpm")), "{error}");
}

/// Three stanzas of a Debian `/var/lib/dpkg/status`, as dpkg writes them: two installed
/// packages and one removed whose configuration remains.
const DPKG_STATUS: &str = "\
Package: base-files
Essential: yes
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 340
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Multi-Arch: foreign
Version: 12.4+deb12u11
Replaces: base, dpkg (<= 1.15.0), miscutils
Provides: base
Conffiles:
 /etc/debian_version 6a3d1b9e1b7ab1a9d0a2f2fbff4ba6d4
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy of a Debian system, and
 several important miscellaneous files.

Package: busybox-static
Status: install ok installed
Priority: optional
Section: shells
Installed-Size: 2042
Maintainer: Debian Install System Team <debian-boot@lists.debian.org>
Architecture: amd64
Source: busybox (1:1.35.0-4+deb12u1)
Version: 1:1.35.0-4+deb12u1+b1
Replaces: busybox
Provides: busybox
Conflicts: busybox
Description: Standalone rescue shell with tons of builtin utilities
 BusyBox combines tiny versions of many common UNIX utilities into a single
 small executable.

Package: oldpkg
Status: deinstall ok config-files
Priority: optional
Section: misc
Installed-Size: 10
Maintainer: Nobody <nobody@example.org>
Architecture: all
Version: 1.0-1
Description: removed, its configuration kept

";

#[test]
fn all_packages_lists_the_installed_packages_of_a_dpkg_database() {
    let dir = workdir();
    let dockerfile = "FROM busybox:latest\nCOPY status /var/lib/dpkg/status\n";
    let lists = json!({"postbuild_plugins": [{"name": "all_packages"}]});
    let built = build_with(dir.path(), &[("Dockerfile", dockerfile), ("status", DPKG_STATUS)], lists);
    built.run.expect_code(0);
    // BusyBox's dpkg applet reads the database; it shows no architecture. Sorted by name.
    assert_eq!(
        result_in(&built.doc, "postbuild", "all_packages"),
        json!({"manager": "dpkg", "packages": [
            {"name": "base-files", "version": "12.4+deb12u11", "arch": null},
            {"name": "busybox-static", "version": "1:1.35.0-4+deb12u1+b1", "arch": null}
        ]})
    );
}

#[test]
fn store_metadata_writes_and_posts_the_tags_digests_and_commit() {
    let dir = workdir();
    let listener = Listener::start("stored");
    let with_password = listener.url.replace("http://", "http://meta:m3ta-pw@");
    let path = dir.path().join("out/build-metadata.json");
    let lists = |image: &str| {
        json!({
            "postbuild_plugins": [
                {"name": "workspace_probe", "args": {"key": "tag_conf",
                    "set": {"unique_images": [format!("{image}:probe")], "primary_images": [format!("{image}:latest")]}}},
                {"name": "context_probe", "args": {"push_to": REGISTRY}}
            ],
            "exit_plugins": [{"name": "store_metadata", "args": {"path": path.display().to_string(), "url": with_password, "timeout": 20}}]
        })
    };
    // The image name is only known once unique() has made it: build the lists for the next one.
    let commit = git_repo(&dir.path().join("repo"), &[("Dockerfile", BUSYBOX)]);
    let image = unique("meta");
    let mut request = json!({"image": image, "git_url": "repo"});
    request.as_object_mut().expect("object").extend(lists(&image).as_object().expect("lists").clone());
    let file = build_json(dir.path(), &request);
    let so = plugin("test_plugins");
    let run =
        reactor(dir.path(), &["-v", "--load-plugin", &so, "build", "json", &file, "--metadata-file", "m.json"], &[]);
    let _cleanup = Images(vec![image.clone()]);
    run.expect_code(0);
    let doc = read_json(&dir.path().join("m.json"));

    let written = read_json(&path);
    let posted = listener.wait_for(1);
    assert_eq!(posted.len(), 1, "posted once");
    assert_eq!(posted[0].json(), written, "the same document to the file and the URL");
    assert!(posted[0].headers.iter().any(|(k, v)| k == "authorization" && v.starts_with("Basic ")));

    let pushed = format!("{REGISTRY}/{image}:probe");
    let digest = doc["digests"][&pushed].as_str().unwrap_or_else(|| panic!("pushed: {doc}"));
    assert_eq!(digest, served_digest(REGISTRY, &image, "probe", None), "the digest the registry serves");
    assert_eq!(
        written["digests"],
        json!([{"registry": REGISTRY, "repository": image, "tag": "probe", "digest": digest}])
    );
    assert_eq!(
        written["repositories"],
        json!({"primary": [format!("{REGISTRY}/{image}:latest")], "unique": [format!("{REGISTRY}/{image}:probe")]})
    );
    assert_eq!(written["tags"], json!([format!("{image}:probe"), format!("{image}:latest")]));
    assert_eq!(written["commit_id"], commit);
    assert_eq!(written["status"], "succeeded");
    assert_eq!(written["failure"], Value::Null);
    assert_eq!(written["image"], image);
    assert_eq!(written["image-id"], doc["image_id"]);
    assert_eq!(written["dockerfile"], BUSYBOX);
    assert_eq!(written["labels"]["com.example.run"], "yes");
    assert_eq!(written["base-image-name"], "busybox:latest");
    let base_id = String::from_utf8_lossy(&docker(&["image", "inspect", "-f", "{{.Id}}", "busybox:latest"]).stdout)
        .trim()
        .to_owned();
    assert_eq!(written["base-image-id"], base_id);
    assert_eq!(written["plugins-metadata"]["results"]["postbuild_plugins"]["context_probe"]["digest"], digest);

    let shown = with_password.replace("m3ta-pw", "***");
    assert_eq!(
        result_in(&doc, "exit", "store_metadata"),
        json!({"path": path.display().to_string(), "url": shown, "status_code": 200})
    );
    assert!(!run.stderr.contains("m3ta-pw"), "{}", run.stderr);
    assert!(!std::fs::read_to_string(dir.path().join("m.json")).expect("doc").contains("m3ta-pw"));
    assert!(!serde_json::to_string(&written).expect("text").contains("m3ta-pw"));
}

#[test]
fn notify_webhook_sends_only_on_the_statuses_it_is_told() {
    let dir = workdir();
    let on_failure = Listener::start("ok");
    let on_success = Listener::start("ok");
    let lists = json!({"exit_plugins": [
        {"name": "notify_webhook", "args": {"url": on_failure.url, "send_on": ["failed", "cancelled"]}},
        {"name": "notify_webhook", "args": {"url": on_success.url, "send_on": ["succeeded"], "timeout": 10}}
    ]});
    let built = build_with(dir.path(), &[("Dockerfile", BUSYBOX)], lists);
    built.run.expect_code(0);
    let posted = on_success.wait_for(1);
    assert_eq!(posted.len(), 1);
    let body = posted[0].json();
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["image"], built.image);
    assert_eq!(body["tags"], json!([built.image]));
    assert_eq!(body["source"]["commit"], built.commit);
    assert_eq!((body["failed_plugin"].clone(), body["error"].clone()), (Value::Null, Value::Null));
    assert!(on_failure.received().is_empty(), "nothing sent on success to a webhook for failures");
    let results = results_of(&built.doc, "exit", "notify_webhook");
    assert_eq!(results[0]["sent"], false);
    assert_eq!(results[0]["reason"], "the build succeeded, which is not in 'send_on' (failed, cancelled)");
    // The webhook's URL is a secret arg: recorded as ***.
    assert_eq!(results[1], json!({"sent": true, "status": "succeeded", "url": "***", "status_code": 200}));
}

#[test]
fn a_webhook_that_does_not_answer_fails_the_plugin_at_its_timeout_and_the_exit_plugins_go_on() {
    let dir = workdir();
    let silent = SilentListener::start();
    let logs = dir.path().join("logs.json");
    let lists = json!({"exit_plugins": [
        {"name": "notify_webhook", "args": {"url": silent.url, "timeout": 1.5}},
        {"name": "store_logs_to_file", "args": {"file_path": logs.display().to_string()}}
    ]});
    let started = Instant::now();
    let built = build_with(dir.path(), &[("Dockerfile", BUSYBOX)], lists);
    let elapsed = started.elapsed();
    // Tolerated by default, as sendmail was: the build still succeeds.
    built.run.expect_code(0);
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    assert_eq!(silent.connections(), 1, "the webhook was reached");
    // The webhook's URL is a secret arg: never shown.
    let error = "POST ***: no answer within 1.5 s (the 'timeout' arg): check the server, or raise 'timeout'";
    assert!(!built.run.stderr.contains(&silent.url), "{}", built.run.stderr);
    assert_eq!(result_in(&built.doc, "exit", "notify_webhook"), json!({"error": error, "kind": "failed"}));
    assert!(
        built.run.stderr.contains(&format!("exit plugin 'notify_webhook' failed: {error}")),
        "{}",
        built.run.stderr
    );
    assert_eq!(read_json(&logs)["exit_plugins"]["notify_webhook"]["error"], error, "the next exit plugin ran");
}
