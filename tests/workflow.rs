//! The workflow's rules, after atomic-reactor's `tests/test_inner.py`: which phases run when a
//! plugin of each phase fails (fatally or not), that exit plugins always run, the exit code and
//! the result document, special values, substitutions, defaults, builders, cancellation.

use serde_json::{json, Value};

use crate::util::*;

fn rec(label: &str) -> Value {
    json!({"name": "recorder", "args": {"path": "RECORD", "label": label}})
}

const OK: &str = "FROM busybox:latest\nRUN true\n";

/// The standard lists: a recorder in every phase, two in exit, and `insert` placed in `phase`.
fn lists_with(phase: &str, insert: Value) -> Value {
    let mut lists = json!({
        "prebuild_plugins": [rec("pre")],
        "prepublish_plugins": [rec("prepub")],
        "postbuild_plugins": [rec("post")],
        "exit_plugins": [rec("exit1"), rec("exit2")],
    });
    if !phase.is_empty() {
        let list = lists[phase].as_array_mut().expect("list");
        list.insert(1, insert);
    }
    lists
}

fn failer(allowed: bool) -> Value {
    json!({"name": "failer", "args": {"message": "planned failure"}, "is_allowed_to_fail": allowed})
}

#[test]
fn everything_runs_in_order_when_nothing_fails() {
    let dir = workdir();
    let out = build(dir.path(), OK, lists_with("", Value::Null), &[]);
    out.run.expect_code(0);
    assert_eq!(out.record, "prebuild pre\nprepublish prepub\npostbuild post\nexit exit1\nexit exit2\n");
    let doc = &out.doc;
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["status"], "succeeded");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["failure"], Value::Null);
    assert!(doc["image_id"].as_str().expect("image id").starts_with("sha256:"));
    assert_eq!(doc["source"]["provider"], "git");
    assert_eq!(doc["source"]["commit"].as_str().map(str::len), Some(40));
    assert_eq!(doc["dockerfile"], OK);
    assert_eq!(doc["base_image"], "busybox:latest");
    let keys: Vec<String> = doc["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .map(|p| format!("{}/{}", p["phase"].as_str().unwrap_or("?"), p["key"].as_str().unwrap_or("?")))
        .collect();
    assert_eq!(
        keys,
        [
            "prebuild/recorder",
            "buildstep/dockerbuild",
            "buildstep/docker_api",
            "prepublish/recorder",
            "postbuild/recorder",
            "exit/recorder",
            "exit/recorder"
        ]
    );
    for p in doc["plugins"].as_array().expect("plugins") {
        assert!(p["started"].as_str().is_some_and(|s| s.ends_with('Z')), "{p}");
        assert!(p["duration_s"].as_f64().is_some_and(|d| d >= 0.0), "{p}");
    }
    let loaded = doc["loaded_plugins"].as_array().expect("loaded");
    let recorder = loaded.iter().find(|p| p["key"] == "recorder").expect("recorder listed");
    assert_eq!(recorder["api_version"], reactor_plugin_api::API_VERSION);
    assert!(recorder["origin"].as_str().expect("origin").ends_with("libtest_plugins.so"));
    assert!(loaded.iter().any(|p| p["key"] == "docker_api" && p["origin"] == "built-in"));
    // Exit plugins saw the outcome.
    let exit_result = &doc["plugins"][6]["result"];
    assert_eq!(exit_result["outcome"]["status"], "succeeded", "{exit_result}");
}

/// (phase of the failing plugin, allowed to fail, expected exit code, expected record)
const MATRIX: &[(&str, bool, i32, &str)] = &[
    ("prebuild_plugins", false, 1, "prebuild pre\nexit exit1\nexit exit2\n"),
    ("prebuild_plugins", true, 0, "prebuild pre\nprepublish prepub\npostbuild post\nexit exit1\nexit exit2\n"),
    ("prepublish_plugins", false, 1, "prebuild pre\nprepublish prepub\nexit exit1\nexit exit2\n"),
    ("prepublish_plugins", true, 0, "prebuild pre\nprepublish prepub\npostbuild post\nexit exit1\nexit exit2\n"),
    ("postbuild_plugins", false, 1, "prebuild pre\nprepublish prepub\npostbuild post\nexit exit1\nexit exit2\n"),
    ("postbuild_plugins", true, 0, "prebuild pre\nprepublish prepub\npostbuild post\nexit exit1\nexit exit2\n"),
    ("exit_plugins", false, 1, "prebuild pre\nprepublish prepub\npostbuild post\nexit exit1\nexit exit2\n"),
    ("exit_plugins", true, 0, "prebuild pre\nprepublish prepub\npostbuild post\nexit exit1\nexit exit2\n"),
];

#[test]
fn each_phase_with_a_fatal_or_an_allowed_failure() {
    std::thread::scope(|scope| {
        for &(phase, allowed, code, record) in MATRIX {
            scope.spawn(move || {
                let dir = workdir();
                let out = build(dir.path(), OK, lists_with(phase, failer(allowed)), &[]);
                let case = format!("{phase} allowed={allowed}");
                assert_eq!(out.run.code, Some(code), "{case}\n{}", out.run.stderr);
                assert_eq!(out.record, record, "{case}");
                let short = phase.trim_end_matches("_plugins");
                let failer_run = out.doc["plugins"]
                    .as_array()
                    .expect("plugins")
                    .iter()
                    .find(|p| p["key"] == "failer")
                    .unwrap_or_else(|| panic!("{case}: failer ran"));
                assert_eq!(failer_run["phase"], short, "{case}");
                assert_eq!(failer_run["error"], "planned failure", "{case}");
                assert_eq!(failer_run["result"], json!({"error": "planned failure", "kind": "failed"}), "{case}");
                if allowed {
                    assert_eq!(out.doc["status"], "succeeded", "{case}");
                    assert!(out.run.stderr.contains("error is not fatal"), "{case}");
                } else {
                    assert_eq!(out.doc["status"], "failed", "{case}");
                    assert_eq!(out.doc["failure"]["phase"], short, "{case}");
                    assert_eq!(out.doc["failure"]["plugin"], "failer", "{case}");
                    assert_eq!(
                        out.doc["failure"]["error"],
                        format!("{short} plugin 'failer' failed: planned failure"),
                        "{case}"
                    );
                    assert_eq!(
                        out.run.stderr.matches(&format!("{short} plugin 'failer' failed: planned failure")).count(),
                        1,
                        "{case}: said once\n{}",
                        out.run.stderr
                    );
                    if phase != "exit_plugins" {
                        // The exit plugins saw the failure.
                        let exit = out.doc["plugins"]
                            .as_array()
                            .expect("plugins")
                            .iter()
                            .rev()
                            .find(|p| p["phase"] == "exit")
                            .expect("exit ran");
                        assert_eq!(exit["result"]["outcome"]["status"], "failed", "{case}");
                        assert_eq!(exit["result"]["outcome"]["failed_plugin"], "failer", "{case}");
                    }
                }
            });
        }
    });
}

#[test]
fn a_failed_build_skips_prepublish_and_postbuild_but_not_exit() {
    let dir = workdir();
    let out = build(dir.path(), "FROM busybox:latest\nRUN false\n", lists_with("", Value::Null), &[]);
    out.run.expect_code(1);
    assert_eq!(out.record, "prebuild pre\nexit exit1\nexit exit2\n");
    assert_eq!(out.doc["failure"]["phase"], "buildstep");
    assert_eq!(out.doc["failure"]["plugin"], "dockerbuild");
    assert_eq!(out.doc["build"]["failed"], true);
    assert_eq!(out.doc["build"]["fail_reason"], "The command '/bin/sh -c false' returned a non-zero code: 1");
    assert_eq!(out.doc["image_id"], Value::Null);
}

#[test]
fn a_failing_and_a_panicking_exit_plugin_among_others_all_run_and_the_first_cause_is_reported() {
    let dir = workdir();
    let lists = json!({
        "postbuild_plugins": [{"name": "failer", "args": {"message": "root cause"}, "is_allowed_to_fail": false}],
        "exit_plugins": [rec("exit1"), {"name": "panicker", "args": {"message": "exit boom"}, "is_allowed_to_fail": false},
                         rec("exit2"), {"name": "failer", "is_allowed_to_fail": false}, rec("exit3")],
    });
    let out = build(dir.path(), OK, lists, &[]);
    out.run.expect_code(1);
    assert_eq!(out.record, "exit exit1\nexit exit2\nexit exit3\n");
    assert_eq!(out.doc["failure"]["error"], "postbuild plugin 'failer' failed: root cause");
    let panicked =
        out.doc["plugins"].as_array().expect("plugins").iter().find(|p| p["key"] == "panicker").expect("ran");
    assert_eq!(panicked["result"]["kind"], "panicked");
    assert!(panicked["error"].as_str().expect("error").ends_with(": exit boom"), "{panicked}");
}

#[test]
fn missing_plugins_required_fail_before_anything_runs_optional_are_skipped() {
    let dir = workdir();
    let lists = json!({"prebuild_plugins": [rec("pre")], "postbuild_plugins": [{"name": "nowhere"}], "exit_plugins": [rec("exit")]});
    let out = build(dir.path(), OK, lists, &[]);
    out.run.expect_code(2);
    assert_eq!(out.record, "", "nothing ran");
    assert!(
        out.run.stderr.contains("/postbuild_plugins/0: no such plugin 'nowhere' (available for postbuild: "),
        "{}",
        out.run.stderr
    );
    assert_eq!(out.doc["status"], "failed");
    assert_eq!(out.doc["failure"]["phase"], "validation");

    let lists = json!({"prebuild_plugins": [{"name": "nowhere", "required": false}, rec("pre")]});
    let out = build(dir.path(), OK, lists, &[]);
    out.run.expect_code(0);
    assert_eq!(out.record, "prebuild pre\n");
    assert!(out.run.stderr.contains("plugin 'nowhere' requested but not available"), "{}", out.run.stderr);
}

#[test]
fn every_validation_problem_is_reported_at_once_and_recorded() {
    let dir = workdir();
    let lists = json!({
        "image": 5,
        "prebuild_plugins": [{"name": "recorder", "args": {"label": 1}}],
    });
    let out = build(dir.path(), OK, lists, &[]);
    out.run.expect_code(2);
    assert!(out.run.stderr.contains("/image: 5 is not of type \"string\""), "{}", out.run.stderr);
    let lists = json!({
        "prebuild_plugins": [{"name": "recorder", "args": {"label": 1}}, {"name": "ghost"}],
        "postbuild_plugins": [{"name": "decliner"}],
    });
    let out = build(dir.path(), OK, lists, &[]);
    out.run.expect_code(2);
    let problems: Vec<&str> =
        out.doc["failure"]["problems"].as_array().expect("problems").iter().filter_map(Value::as_str).collect();
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|p| p.ends_with("/prebuild_plugins/0/args: \"path\" is a required property (plugin 'recorder')")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.ends_with("/prebuild_plugins/0/args/label: 1 is not of type \"string\" (plugin 'recorder')")),
        "{problems:#?}"
    );
    assert!(problems.iter().any(|p| p.contains("/prebuild_plugins/1: no such plugin 'ghost'")), "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|p| p
                .contains("/postbuild_plugins/0: plugin 'decliner' cannot run in postbuild (it runs in: buildstep)")),
        "{problems:#?}"
    );
    assert_eq!(out.run.errors().len(), 4, "{}", out.run.stderr);
}

#[test]
fn special_values_are_filled_when_the_plugin_runs() {
    let dir = workdir();
    let special = json!({"name": "recorder", "args": {"path": "RECORD", "label": "special", "id": "BUILT_IMAGE_ID",
        "nested": {"list": ["BASE_IMAGE", "BUILD_DOCKERFILE_PATH"]}, "src": "BUILD_SOURCE_PATH"}});
    let mut pre = special.clone();
    pre["args"]["label"] = json!("early");
    let lists = json!({"prebuild_plugins": [pre], "postbuild_plugins": [special]});
    let out = build(dir.path(), OK, lists, &[]);
    out.run.expect_code(0);
    let runs = out.doc["plugins"].as_array().expect("plugins");
    let args = |phase: &str| {
        runs.iter().find(|p| p["phase"] == phase && p["key"] == "recorder").expect("ran")["result"]["args"].clone()
    };
    let (early, late) = (args("prebuild"), args("postbuild"));
    assert_eq!(early["id"], Value::Null, "no image before the build");
    assert_eq!(late["id"], out.doc["image_id"]);
    assert_eq!(late["nested"]["list"][0], "busybox:latest");
    let df = late["nested"]["list"][1].as_str().expect("dockerfile path");
    let src = late["src"].as_str().expect("source path");
    // The Dockerfile plugins edit is the context overlay's, outside the (never written) source.
    assert!(df.ends_with("/Dockerfile") && src.starts_with('/') && !df.starts_with(src), "{df} {src}");
}

#[test]
fn substitutions_change_the_image_and_plugin_args() {
    let dir = workdir();
    let image = unique("subst");
    let _cleanup = Images(vec![image.clone()]);
    let lists = json!({"postbuild_plugins": [rec("original")]});
    let image_arg = format!("image={image}:v9");
    let out = build(
        dir.path(),
        OK,
        lists,
        &["--substitute", &image_arg, "--substitute", "postbuild_plugins.recorder.label=substituted"],
    );
    out.run.expect_code(0);
    assert_eq!(out.record, "postbuild substituted\n");
    assert_eq!(out.doc["image"], format!("{image}:v9"));
}

#[test]
fn registries_inject_atomic_reactors_default_plugins() {
    let dir = workdir();
    let lists = json!({"target_registries": ["127.0.0.1:5000"], "target_registries_insecure": true, "parent_registry": "127.0.0.1:5000"});
    let out = build(dir.path(), OK, lists, &[]);
    out.run.expect_code(0);
    let runs = out.doc["plugins"].as_array().expect("plugins");
    let result = |key: &str| runs.iter().find(|p| p["key"] == key).unwrap_or_else(|| panic!("{key} ran")).clone();
    assert_eq!(result("pull_base_image")["phase"], "prebuild");
    assert_eq!(
        result("pull_base_image")["result"]["args"],
        json!({"parent_registry": "127.0.0.1:5000", "parent_registry_insecure": false})
    );
    assert_eq!(result("tag_and_push")["phase"], "postbuild");
    assert_eq!(result("tag_and_push")["result"]["args"], json!({"registries": {"127.0.0.1:5000": {"insecure": true}}}));
}

#[test]
fn the_first_builder_that_does_not_decline_builds() {
    let dir = workdir();
    let lists = json!({"buildstep_plugins": [{"name": "decliner"}, {"name": "retag_builder", "args": {"from": "busybox:latest"}}],
                       "postbuild_plugins": [rec("post")]});
    let out = build(dir.path(), OK, lists, &[]);
    out.run.expect_code(0);
    let busybox = docker(&["image", "inspect", "-f", "{{.Id}}", "busybox:latest"]);
    assert_eq!(out.doc["image_id"], String::from_utf8_lossy(&busybox.stdout).trim());
    assert_eq!(out.record, "postbuild post\n");
    let runs = out.doc["plugins"].as_array().expect("plugins");
    assert!(runs.iter().all(|p| p["key"] != "docker_api" && p["key"] != "dockerbuild"), "the engine did not build");
    assert_eq!(runs[0]["result"]["kind"], "declined");
    assert!(
        out.run.stderr.contains("buildstep plugin 'decliner' declined: this builder builds nothing"),
        "{}",
        out.run.stderr
    );

    let lists = json!({"buildstep_plugins": [{"name": "decliner"}], "exit_plugins": [rec("exit")]});
    let out = build(dir.path(), OK, lists, &[]);
    out.run.expect_code(1);
    assert!(
        out.run.stderr.contains("no buildstep plugin would build this image (decliner: this builder builds nothing)"),
        "{}",
        out.run.stderr
    );
    assert_eq!(out.record, "exit exit\n");
}

#[test]
fn dry_run_prints_the_plan_and_builds_nothing() {
    let dir = workdir();
    let lists = json!({"postbuild_plugins": [rec("post")], "exit_plugins": [{"name": "dockerfile_content"}]});
    let out = build(dir.path(), OK, lists, &["--dry-run"]);
    out.run.expect_code(0);
    let plan = &out.run.stdout;
    let v = env!("CARGO_PKG_VERSION");
    assert!(
        plan.contains(&format!("buildstep:\n  1. docker_api {v} (built-in), must not fail\n     args: {{}}\n")),
        "{plan}"
    );
    assert!(plan.contains(&format!("postbuild:\n  1. recorder {v} (")), "{plan}");
    assert!(plan.contains("libtest_plugins.so), allowed to fail\n"), "{plan}");
    assert!(plan.contains(&format!("exit:\n  1. dockerfile_content {v} (built-in), allowed to fail\n")), "{plan}");
    assert!(plan.contains("prepublish:\n  (none)\n"), "{plan}");
    assert_eq!(out.record, "", "nothing ran");
    assert!(!out.run.stderr.contains("cloning"), "{}", out.run.stderr);
}

#[test]
fn build_git_and_build_path_make_the_same_build_as_a_build_json() {
    let dir = workdir();
    let repo = dir.path().join("repo");
    let first = git_repo(
        &repo,
        &[("app/Dockerfile", "FROM busybox:latest\nCOPY v /v\nCMD [\"cat\", \"/v\"]\n"), ("app/v", "one\n")],
    );
    git_commit(&repo, &[("app/v", "two\n")], "second");
    let image = unique("cli-git");
    let from_path = unique("cli-path");
    let _cleanup = Images(vec![image.clone(), from_path.clone()]);
    let run = reactor(
        dir.path(),
        &["build", "git", "--uri", "repo", "--commit", &first, "--df-path", "app/", "--image", &image],
        &[],
    );
    run.expect_code(0);
    assert_eq!(docker_run(&image, &[]), "one\n");

    let run = reactor(dir.path(), &["build", "path", "--uri", "repo/app", "--image", &from_path], &[]);
    run.expect_code(0);
    assert_eq!(docker_run(&from_path, &[]), "two\n");

    // Flags that add default plugins, seen through --dry-run with the stand-ins loaded.
    let so = plugin("test_plugins");
    let run = reactor(
        dir.path(),
        &[
            "--load-plugin",
            &so,
            "build",
            "git",
            "--uri",
            "repo",
            "--image",
            "x",
            "--target-registries",
            "127.0.0.1:5000",
            "--target-registries-insecure",
            "--parent-registry",
            "127.0.0.1:5000",
            "--dry-run",
        ],
        &[],
    );
    run.expect_code(0);
    assert!(run.stdout.contains(r#"args: {"registries":{"127.0.0.1:5000":{"insecure":true}}}"#), "{}", run.stdout);
    assert!(
        run.stdout.contains(r#"args: {"parent_registry":"127.0.0.1:5000","parent_registry_insecure":false}"#),
        "{}",
        run.stdout
    );
}

#[test]
fn a_plugin_listed_twice_in_a_phase_keeps_each_runs_result() {
    let dir = workdir();
    let lists = json!({"postbuild_plugins": [rec("first"), rec("second")]});
    let out = build(dir.path(), OK, lists, &[]);
    out.run.expect_code(0);
    let runs: Vec<&Value> =
        out.doc["plugins"].as_array().expect("plugins").iter().filter(|r| r["key"] == "recorder").collect();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["result"]["label"], "first");
    assert_eq!(runs[1]["result"]["label"], "second");
}
