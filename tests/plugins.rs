//! Loaded plugins: what they can reach through their context, panics contained, several
//! modules at once, failures allowed or fatal.

use serde_json::json;

use crate::util::*;

#[test]
fn a_loaded_plugin_reads_and_changes_the_build_and_uses_the_engine() {
    let dir = workdir();
    let sha = git_repo(&dir.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\nCMD [\"true\"]\n")]);
    let image = unique("probe");
    let _cleanup = Images(vec![image.clone(), format!("{image}-probe")]);
    let record = dir.path().join("record.txt");
    let file = build_json(
        dir.path(),
        &json!({
            "image": image, "git_url": "repo",
            "prebuild_plugins": [{"name": "recorder", "args": {"path": record, "label": "pre"}}, {"name": "context_probe"}],
            "postbuild_plugins": [{"name": "context_probe"}, {"name": "dockerfile_content"}]
        }),
    );
    let so = plugin("test_plugins");
    let run = reactor(dir.path(), &["-v", "--load-plugin", &so, "build", "json", &file], &[]);
    run.expect_code(0);

    // The plugin's debug line went through the log bridge at -v.
    assert!(
        run.stderr.contains(&format!("plugin::context_probe::test_plugins] edited the Dockerfile of {image}")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("plugin::recorder::test_plugins] recorded pre in prebuild"), "{}", run.stderr);

    // The Dockerfile edit, the label and the build arg all reached the image.
    let labels = docker(&["image", "inspect", "-f", "{{json .Config.Labels}}", &image]);
    let labels: serde_json::Value = serde_json::from_slice(&labels.stdout).expect("labels");
    assert_eq!(labels, json!({"probe.edited": "yes", "probe.arg": "from-plugin", "probe.label": "set"}));
    // It tagged the image through the host.
    assert!(docker(&["image", "inspect", &format!("{image}-probe")]).status.success());

    // Results, shown at -v: the recorder saw the resolved commit; the probe in postbuild saw the
    // earlier results and could not edit the Dockerfile any more.
    assert!(run.stderr.contains(&format!(r#""commit":"{sha}""#)), "{}", run.stderr);
    let post =
        run.stderr.lines().find(|l| l.contains("postbuild plugin 'context_probe' finished")).expect("probe result");
    assert!(
        post.contains(
            r#""set_dockerfile_refused":"a plugin may change the Dockerfile only in prebuild, not in postbuild""#
        ),
        "{post}"
    );
    assert!(post.contains(r#""prebuild":{"context_probe":{"base_image":"busybox:latest""#), "{post}");
}

#[test]
fn the_probe_runs_a_container_and_inspects_the_image_from_the_exit_phase() {
    let dir = workdir();
    git_repo(&dir.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\n")]);
    let image = unique("probe-exit");
    let _cleanup = Images(vec![image.clone(), format!("{image}-probe")]);
    let file = build_json(
        dir.path(),
        &json!({
            "image": image, "git_url": "repo",
            "exit_plugins": [{"name": "context_probe"}]
        }),
    );
    let so = plugin("test_plugins");
    let run = reactor(dir.path(), &["-v", "--load-plugin", &so, "build", "json", &file], &[]);
    run.expect_code(0);
    let result = run.stderr.lines().find(|l| l.contains("exit plugin 'context_probe' finished")).expect("probe result");
    assert!(result.contains(r#""exit_code":3"#), "{result}");
    assert!(result.contains(r#""stdout":"out\n""#), "{result}");
    assert!(result.contains(r#""stderr":"err\n""#), "{result}");
    let id = docker(&["image", "inspect", "-f", "{{.Id}}", &image]);
    assert!(result.contains(&format!(r#""image_id":"{}""#, String::from_utf8_lossy(&id.stdout).trim())), "{result}");
    assert!(docker(&["image", "inspect", &format!("{image}-probe")]).status.success(), "tagged from exit");
}

#[test]
fn a_panicking_plugin_is_a_failed_plugin_not_a_dead_host() {
    let dir = workdir();
    git_repo(&dir.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\n")]);
    let record = dir.path().join("record.txt");
    let image = unique("panic");
    let _cleanup = Images(vec![image.clone()]);
    let so = plugin("test_plugins");

    // Allowed to fail (the manifest's default): the build goes on.
    let file = build_json(
        dir.path(),
        &json!({
            "image": image, "git_url": "repo",
            "postbuild_plugins": [{"name": "panicker", "args": {"message": "boom"}}, {"name": "recorder", "args": {"path": record, "label": "after"}}]
        }),
    );
    let run = reactor(dir.path(), &["--load-plugin", &so, "build", "json", &file], &[]);
    run.expect_code(0);
    assert!(
        run.stderr.contains("postbuild plugin 'panicker' failed: panicked at plugins/test_plugins/src/lib.rs:"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(": boom; error is not fatal"), "{}", run.stderr);
    assert!(!run.stderr.contains("Aborting"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&record).expect("ran"), "postbuild after\n");

    // Not allowed to fail: the build fails, the exit plugins still run.
    std::fs::remove_file(&record).expect("rm");
    let file = build_json(
        dir.path(),
        &json!({
            "image": image, "git_url": "repo",
            "postbuild_plugins": [{"name": "panicker", "is_allowed_to_fail": false}, {"name": "recorder", "args": {"path": record, "label": "skipped"}}],
            "exit_plugins": [{"name": "recorder", "args": {"path": record, "label": "exit"}}]
        }),
    );
    let run = reactor(dir.path(), &["--load-plugin", &so, "build", "json", &file], &[]);
    run.expect_code(1);
    assert_eq!(run.stderr.matches("postbuild plugin 'panicker' failed: panicked at").count(), 1, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&record).expect("ran"), "exit exit\n");
}

#[test]
fn two_modules_load_side_by_side_and_each_keeps_its_plugins() {
    // abi_stable's load_from_file would hand back the first module for the second file.
    let dir = workdir();
    git_repo(&dir.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\n")]);
    let listener = Listener::start("ok");
    let record = dir.path().join("record.txt");
    let image = unique("twomods");
    let _cleanup = Images(vec![image.clone()]);
    let file = build_json(
        dir.path(),
        &json!({
            "image": image, "git_url": "repo",
            "postbuild_plugins": [{"name": "recorder", "args": {"path": record, "label": "r"}},
                                  {"name": "logs_submitter", "args": {"url": listener.url}, "is_allowed_to_fail": false}]
        }),
    );
    let (a, b) = (plugin("test_plugins"), plugin("logs_submitter"));
    let run = reactor(dir.path(), &["--load-plugin", &a, "--load-plugin", &b, "build", "json", &file], &[]);
    run.expect_code(0);
    assert_eq!(listener.wait_for(1).len(), 1);
    assert_eq!(std::fs::read_to_string(&record).expect("ran"), "postbuild r\n");
}

#[test]
fn a_plugin_listed_in_a_phase_it_does_not_run_in_is_refused() {
    let dir = workdir();
    let so = plugin("logs_submitter");
    let file = build_json(
        dir.path(),
        &json!({"image": "x", "git_url": "repo",
        "prebuild_plugins": [{"name": "logs_submitter", "args": {"url": "http://127.0.0.1:9/"}}]}),
    );
    let run = reactor(dir.path(), &["--load-plugin", &so, "build", "json", &file], &[]);
    run.expect_code(2);
    assert!(
        run.stderr.contains(
            "/prebuild_plugins/0: plugin 'logs_submitter' cannot run in prebuild (it runs in: postbuild, exit)"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn an_optional_missing_plugin_is_skipped_with_a_warning() {
    let dir = workdir();
    git_repo(&dir.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\n")]);
    let image = unique("optional");
    let _cleanup = Images(vec![image.clone()]);
    let file = build_json(
        dir.path(),
        &json!({"image": image, "git_url": "repo",
        "postbuild_plugins": [{"name": "not_here", "required": false}]}),
    );
    let run = reactor(dir.path(), &["build", "json", &file], &[]);
    run.expect_code(0);
    assert!(run.stderr.contains("plugin 'not_here' requested but not available"), "{}", run.stderr);
}

#[test]
fn a_plugin_failure_not_allowed_fails_the_build_with_its_message() {
    let dir = workdir();
    git_repo(&dir.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\n")]);
    let image = unique("failer");
    let _cleanup = Images(vec![image.clone()]);
    let listener_url = "http://127.0.0.1:9/unreachable";
    let file = build_json(
        dir.path(),
        &json!({"image": image, "git_url": "repo",
        "postbuild_plugins": [{"name": "logs_submitter", "args": {"url": listener_url}, "is_allowed_to_fail": false}]}),
    );
    let so = plugin("logs_submitter");
    let run = reactor(dir.path(), &["--load-plugin", &so, "build", "json", &file], &[]);
    run.expect_code(1);
    assert!(
        run.stderr.contains(&format!(
            "ERROR reactor::plugins::runner] postbuild plugin 'logs_submitter' failed: POST {listener_url}: "
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn a_plugin_pushes_through_the_host_and_the_digest_is_recorded() {
    let dir = workdir();
    git_repo(&dir.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\nRUN echo pushed > /marker\n")]);
    let image = unique("push");
    let _cleanup = Images(vec![image.clone()]);
    let file = build_json(
        dir.path(),
        &json!({"image": image, "git_url": "repo",
        "postbuild_plugins": [{"name": "context_probe", "args": {"push_to": "127.0.0.1:5000"}}]}),
    );
    let so = plugin("test_plugins");
    let run =
        reactor(dir.path(), &["--load-plugin", &so, "build", "json", &file, "--metadata-file", "metadata.json"], &[]);
    run.expect_code(0);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("metadata.json")).expect("written"))
            .expect("JSON");
    let pushed = format!("127.0.0.1:5000/{image}:probe");
    let digest = doc["digests"][&pushed].as_str().unwrap_or_else(|| panic!("digest recorded: {doc}")).to_owned();
    assert!(digest.starts_with("sha256:"), "{digest}");
    // The registry serves that manifest under that digest.
    assert_eq!(
        registry_manifest("127.0.0.1:5000", &image, &digest, None).status,
        200,
        "the registry has {pushed}@{digest}"
    );
}
