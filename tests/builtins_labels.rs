//! The label built-ins end to end, on the real engine: `add_labels_in_dockerfile` (labels and
//! automatic labels in `docker inspect`, base image labels, `dont_overwrite`, a JSON string),
//! `assert_labels` and `distribution_scope` failing builds while exit plugins still run,
//! `add_dockerfile` (the Dockerfile inside the image) and `cp_dockerfile`.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::util::*;

const PLAIN: &str = "FROM busybox:latest\nRUN true\n";

/// One reactor build whose image is kept (until the test's [`Images`] guard drops it).
struct Built {
    run: Run,
    doc: Value,
}

/// Builds `image` from `source` with these plugin lists, writing the result document.
fn build_image(dir: &Path, image: &str, source: Value, lists: Value) -> Built {
    build_image_with(dir, image, source, lists, &[])
}

/// [`build_image`] with more reactor options (before `build`).
fn build_image_with(dir: &Path, image: &str, source: Value, lists: Value, options: &[&str]) -> Built {
    let mut request = json!({"image": image, "source": source});
    for (key, list) in lists.as_object().expect("lists") {
        request[key] = list.clone();
    }
    let file = build_json(dir, &request);
    let metadata = dir.join("metadata.json");
    let _ = std::fs::remove_file(&metadata);
    let metadata_arg = metadata.display().to_string();
    let mut args = options.to_vec();
    args.extend(["build", "json", &file, "--metadata-file", &metadata_arg]);
    let run = reactor(dir, &args, &[]);
    let doc = std::fs::read_to_string(&metadata)
        .map(|text| serde_json::from_str(&text).expect("the result document is JSON"))
        .unwrap_or(Value::Null);
    Built { run, doc }
}

/// A git repository `dir/name` holding `dockerfile`: the source entry and the commit.
fn git_source(dir: &Path, name: &str, dockerfile: &str) -> (Value, String) {
    let repo = dir.join(name);
    let commit = git_repo(&repo, &[("Dockerfile", dockerfile)]);
    (json!({"provider": "git", "uri": repo.display().to_string()}), commit)
}

/// A uniquely named image built from busybox with `labels` (a LABEL instruction's arguments).
fn base_with_labels(dir: &Path, labels: &str) -> String {
    let name = format!("{}:1", unique("labels-base"));
    let context = dir.join(unique("base"));
    write_files(&context, &[("Dockerfile", &format!("FROM busybox:latest\nLABEL {labels}\n"))]);
    docker_build(&name, &context);
    name
}

fn labels_of(image: &str) -> Map<String, Value> {
    let out = docker(&["image", "inspect", "-f", "{{json .Config.Labels}}", image]);
    assert!(out.status.success(), "inspect {image}: {}", String::from_utf8_lossy(&out.stderr));
    match serde_json::from_slice(&out.stdout).expect("labels are JSON") {
        Value::Object(labels) => labels,
        _ => Map::new(),
    }
}

fn docker_info(format: &str) -> String {
    let out = docker(&["info", "-f", format]);
    assert!(out.status.success(), "docker info: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The run of `key` in `phase` from the result document, as a whole (status, error, result).
fn run_of<'a>(doc: &'a Value, phase: &str, key: &str) -> &'a Value {
    doc["plugins"]
        .as_array()
        .and_then(|runs| runs.iter().find(|r| r["phase"] == phase && r["key"] == key))
        .unwrap_or_else(|| panic!("no {phase} run of {key}: {doc}"))
}

#[test]
fn labels_and_automatic_labels_are_on_the_built_image() {
    labels_and_automatic_labels(&[], "built-in");
}

/// The same source as a plugin module (`plugins/builtins_module`), loaded with `--load-plugin`,
/// passes the same test: a built-in needs nothing a vendor's plugin lacks.
#[test]
fn labels_and_automatic_labels_from_the_builtins_compiled_as_a_plugin_module() {
    let module = plugin("builtins_module");
    labels_and_automatic_labels(&["--load-plugin", &module], &module);
}

fn labels_and_automatic_labels(options: &[&str], origin: &str) {
    let dir = workdir();
    let image = unique("labels");
    let _cleanup = Images(vec![image.clone()]);
    let (source, commit) = git_source(dir.path(), "repo", PLAIN);
    let uri = source["uri"].as_str().expect("uri").to_owned();
    let quoted = r#"say "hi" \ $HOME"#;
    let auto = ["build-date", "architecture", "vcs-type", "vcs-ref", "vcs-url", "com.redhat.build-host"];
    let add_labels = json!({"name": "add_labels_in_dockerfile",
                            "args": {"labels": {"a": "b", "quoted": quoted}, "auto_labels": auto}});
    let built = build_image_with(dir.path(), &image, source, json!({"prebuild_plugins": [add_labels]}), options);
    built.run.expect_code(0);
    let loaded = built.doc["loaded_plugins"].as_array().expect("loaded_plugins");
    let add_labels = loaded.iter().find(|p| p["key"] == "add_labels_in_dockerfile").expect("add_labels_in_dockerfile");
    assert_eq!(add_labels["origin"], origin);
    if origin != "built-in" {
        // The module carries every built-in: each one was replaced by its loaded twin.
        let builtin: Vec<&Value> = loaded.iter().filter(|p| p["origin"] == "built-in").collect();
        assert!(builtin.is_empty(), "built-ins the module lacks: {builtin:?}");
    }

    let labels = labels_of(&image);
    assert_eq!(labels["a"], "b");
    assert_eq!(labels["quoted"], quoted, "docker reads back the exact value");
    assert_eq!(labels["vcs-type"], "git");
    assert_eq!(labels["vcs-ref"], commit.as_str());
    assert_eq!(labels["vcs-url"], uri.as_str());
    assert_eq!(labels["architecture"], docker_info("{{.Architecture}}").as_str());
    assert_eq!(labels["com.redhat.build-host"], docker_info("{{.Name}}").as_str());
    let date = labels["build-date"].as_str().expect("build-date");
    let built_at = humantime::parse_rfc3339(&format!("{date}Z")).expect("build-date is RFC 3339 in UTC");
    let age = std::time::SystemTime::now().duration_since(built_at).expect("build-date is not in the future");
    assert!(age.as_secs() < 300, "build-date {date}");

    // The result is the one LABEL line, appended at the end of the Dockerfile.
    let line = result_in(&built.doc, "prebuild", "add_labels_in_dockerfile");
    let line = line.as_str().expect("a LABEL line");
    assert!(line.starts_with(r#"LABEL "a"="b" "quoted"="say \"hi\" \\ \$HOME" "build-date"=""#), "{line}");
    assert_eq!(built.doc["dockerfile"], format!("{PLAIN}{line}\n"));
}

#[test]
fn a_base_image_label_with_the_same_value_is_skipped_and_dont_overwrite_is_honoured() {
    let dir = workdir();
    let base = base_with_labels(dir.path(), "shared=same keep=base architecture=base-arch");
    let (first, second) = (unique("labels-base-default"), unique("labels-base-keep"));
    let _cleanup = Images(vec![first.clone(), second.clone(), base.clone()]);
    let dockerfile = format!("FROM {base}\nRUN true\n");
    let labels = json!({"fresh": "new", "keep": "mine", "shared": "same"});

    // The default dont_overwrite keeps the base image's architecture.
    let (source, _) = git_source(dir.path(), "repo-default", &dockerfile);
    let args = json!({"labels": labels, "auto_labels": ["architecture"]});
    let lists = json!({"prebuild_plugins": [{"name": "add_labels_in_dockerfile", "args": args}]});
    let built = build_image(dir.path(), &first, source, lists);
    built.run.expect_code(0);
    assert_eq!(result_in(&built.doc, "prebuild", "add_labels_in_dockerfile"), r#"LABEL "fresh"="new" "keep"="mine""#);
    let on_image = labels_of(&first);
    let values = |names: &[&str]| names.iter().map(|n| on_image[*n].as_str().map(str::to_owned)).collect::<Vec<_>>();
    let expected = |values: &[&str]| values.iter().map(|v| Some(v.to_string())).collect::<Vec<_>>();
    assert_eq!(values(&["shared", "keep", "fresh", "architecture"]), expected(&["same", "mine", "new", "base-arch"]));

    // A dont_overwrite of its own keeps `keep`, and no longer the architecture.
    let (source, _) = git_source(dir.path(), "repo-keep", &dockerfile);
    let args = json!({"labels": labels, "auto_labels": ["architecture"], "dont_overwrite": ["keep"]});
    let lists = json!({"prebuild_plugins": [{"name": "add_labels_in_dockerfile", "args": args}]});
    let built = build_image(dir.path(), &second, source, lists);
    built.run.expect_code(0);
    let on_image = labels_of(&second);
    let values = |names: &[&str]| names.iter().map(|n| on_image[*n].as_str().map(str::to_owned)).collect::<Vec<_>>();
    assert_eq!(values(&["shared", "keep", "fresh"]), expected(&["same", "base", "new"]), "{on_image:?}");
    assert_eq!(on_image["architecture"], docker_info("{{.Architecture}}").as_str());
}

#[test]
fn labels_may_be_given_as_a_json_string_and_a_path_source_has_no_vcs_labels() {
    let dir = workdir();
    let image = unique("labels-json");
    let _cleanup = Images(vec![image.clone()]);
    write_files(&dir.path().join("src"), &[("Dockerfile", PLAIN)]);
    let source = json!({"provider": "path", "uri": dir.path().join("src").display().to_string()});
    let args = json!({"labels": "{\"from\": \"json\", \"release\": \"7\"}"});
    let lists = json!({"prebuild_plugins": [{"name": "add_labels_in_dockerfile", "args": args}]});
    let built = build_image(dir.path(), &image, source, lists);
    built.run.expect_code(0);
    let labels = labels_of(&image);
    assert_eq!((&labels["from"], &labels["release"]), (&json!("json"), &json!("7")));
    assert!(labels.contains_key("build-date") && labels.contains_key("architecture"), "{labels:?}");
    assert!(!labels.contains_key("vcs-type") && !labels.contains_key("vcs-ref"), "{labels:?}");
    assert!(built.run.stderr.contains("requested automatic label 'vcs-type' is not available"), "{}", built.run.stderr);
}

#[test]
fn labels_that_are_not_an_object_are_refused_and_fail_the_build() {
    let dir = workdir();
    let (source, _) = git_source(dir.path(), "repo", PLAIN);
    // Caught by the schema before anything runs.
    let lists = json!({"prebuild_plugins": [{"name": "add_labels_in_dockerfile", "args": {"labels": ["a=b"]}}]});
    let refused = build_image(dir.path(), &unique("labels-refused"), source.clone(), lists);
    refused.run.expect_code(2);
    assert!(refused.run.stderr.contains("/prebuild_plugins/0/args/labels"), "{}", refused.run.stderr);

    // A string that does not hold an object: the plugin fails, and it may not fail, so no build.
    let image = unique("labels-bad-json");
    let _cleanup = Images(vec![image.clone()]);
    let lists = json!({"prebuild_plugins": [{"name": "add_labels_in_dockerfile", "args": {"labels": "[\"a=b\"]"}}]});
    let failed = build_image(dir.path(), &image, source, lists);
    failed.run.expect_code(1);
    assert_eq!(failed.doc["failure"]["plugin"], "add_labels_in_dockerfile");
    assert_eq!(
        failed.doc["failure"]["error"],
        "prebuild plugin 'add_labels_in_dockerfile' failed: arg 'labels': the JSON string holds an array, not an object; give an object of label names to string \
         values, or a string holding the JSON of one"
    );
    assert!(failed.doc["plugins"].as_array().expect("runs").iter().all(|r| r["key"] != "dockerbuild"));
}

#[test]
fn assert_labels_fails_the_build_and_the_exit_plugins_still_run() {
    let dir = workdir();
    let lists = json!({
        "prebuild_plugins": [
            {"name": "add_labels_in_dockerfile", "args": {"labels": {"name": "n"}, "auto_labels": []}},
            {"name": "assert_labels"}
        ],
        "exit_plugins": [
            {"name": "recorder", "args": {"path": "RECORD", "label": "exit"}},
            {"name": "dockerfile_content"}
        ]
    });
    let out = build(dir.path(), PLAIN, lists, &[]);
    out.run.expect_code(1);
    let error = "the image would lack the required labels version, release: set them with LABEL in the \
                 Dockerfile or with add_labels_in_dockerfile listed before assert_labels";
    let failure = format!("prebuild plugin 'assert_labels' failed: {error}");
    assert_eq!(out.doc["failure"], json!({"phase": "prebuild", "plugin": "assert_labels", "error": failure}));
    assert!(out.run.stderr.contains(error), "{}", out.run.stderr);
    assert_eq!(out.record, "exit exit\n", "the exit plugins ran");
    let final_dockerfile = result_in(&out.doc, "exit", "dockerfile_content");
    assert_eq!(final_dockerfile, format!("{PLAIN}LABEL \"name\"=\"n\"\n"));
    assert!(out.doc["plugins"].as_array().expect("runs").iter().all(|r| r["key"] != "dockerbuild"), "no build");
}

#[test]
fn distribution_scope_refuses_a_scope_wider_than_the_parents() {
    let dir = workdir();
    let parent = base_with_labels(dir.path(), "distribution-scope=restricted");
    let (refused, allowed) = (unique("scope-public"), unique("scope-private"));
    let _cleanup = Images(vec![refused.clone(), allowed.clone(), parent.clone()]);

    let (source, _) = git_source(dir.path(), "repo-public", &format!("FROM {parent}\nRUN true\n"));
    let lists = json!({
        "prebuild_plugins": [
            {"name": "add_labels_in_dockerfile",
             "args": {"labels": {"distribution-scope": "public"}, "auto_labels": []}},
            {"name": "distribution_scope"}
        ],
        "exit_plugins": [{"name": "dockerfile_content"}]
    });
    let built = build_image(dir.path(), &refused, source, lists);
    built.run.expect_code(1);
    assert_eq!(built.doc["failure"]["plugin"], "distribution_scope");
    assert_eq!(
        built.doc["failure"]["error"],
        format!(
            "prebuild plugin 'distribution_scope' failed: distribution-scope=public is less restrictive than the parent image {parent}'s \
             distribution-scope=restricted; set distribution-scope to one of: private, authoritative-source-only, \
             restricted"
        )
    );
    assert_eq!(run_of(&built.doc, "exit", "dockerfile_content")["status"], "succeeded");
    assert!(built.doc["plugins"].as_array().expect("runs").iter().all(|r| r["key"] != "dockerbuild"), "no build");

    let (source, _) =
        git_source(dir.path(), "repo-private", &format!("FROM {parent}\nLABEL distribution-scope=private\n"));
    let built =
        build_image(dir.path(), &allowed, source, json!({"prebuild_plugins": [{"name": "distribution_scope"}]}));
    built.run.expect_code(0);
    assert_eq!(labels_of(&allowed)["distribution-scope"], "private");
}

#[test]
fn add_dockerfile_puts_the_dockerfile_into_the_image() {
    let dir = workdir();
    let (from_labels, final_copy) = (unique("add-df-labels"), unique("add-df-final"));
    let _cleanup = Images(vec![from_labels.clone(), final_copy.clone()]);
    let dockerfile = "FROM busybox:latest\nCMD [\"sh\"]\n";

    // N-V-R from the labels add_labels_in_dockerfile sets; the copy is the Dockerfile as it was then.
    let (source, _) = git_source(dir.path(), "repo-labels", dockerfile);
    let lists = json!({"prebuild_plugins": [
        {"name": "add_labels_in_dockerfile",
         "args": {"labels": {"name": "n", "version": "1", "release": "2"}, "auto_labels": []}},
        {"name": "assert_labels"},
        {"name": "add_dockerfile"}
    ]});
    let built = build_image(dir.path(), &from_labels, source, lists);
    built.run.expect_code(0);
    let labelled = format!("{dockerfile}LABEL \"name\"=\"n\" \"version\"=\"1\" \"release\"=\"2\"\n");
    assert_eq!(docker_run(&from_labels, &["cat", "/root/buildinfo/Dockerfile-n-1-2"]), labelled);
    let add = "ADD Dockerfile-n-1-2 /root/buildinfo/Dockerfile-n-1-2";
    assert_eq!(result_in(&built.doc, "prebuild", "add_dockerfile"), add);
    // The ADD went before the last instruction, which was by then the LABEL.
    assert_eq!(built.doc["dockerfile"], format!("{dockerfile}{add}\n{}", &labelled[dockerfile.len()..]));

    // nvr and destdir from the args, and the Dockerfile as built.
    let (source, _) = git_source(dir.path(), "repo-final", dockerfile);
    let args = json!({"nvr": "final-1-0", "destdir": "/usr/share/buildinfo", "use_final_dockerfile": true});
    let lists = json!({"prebuild_plugins": [
        {"name": "add_dockerfile", "args": args},
        {"name": "add_labels_in_dockerfile", "args": {"labels": {"late": "yes"}, "auto_labels": []}}
    ]});
    let built = build_image(dir.path(), &final_copy, source, lists);
    built.run.expect_code(0);
    let inside = docker_run(&final_copy, &["cat", "/usr/share/buildinfo/Dockerfile-final-1-0"]);
    assert_eq!(inside, built.doc["dockerfile"].as_str().expect("the final Dockerfile"));
    assert!(inside.ends_with("LABEL \"late\"=\"yes\"\n"), "{inside}");
}

#[test]
fn cp_dockerfile_writes_the_dockerfile_and_a_failed_copy_is_tolerated() {
    let dir = workdir();
    let image = unique("cp-df");
    let _cleanup = Images(vec![image.clone()]);
    let copy = dir.path().join("copies/Dockerfile.copy");
    std::fs::create_dir_all(copy.parent().expect("parent")).expect("mkdir");
    let nowhere = dir.path().join("missing/Dockerfile.copy");
    let (source, _) = git_source(dir.path(), "repo", PLAIN);
    let lists = json!({"prebuild_plugins": [
        {"name": "add_labels_in_dockerfile", "args": {"labels": {"a": "b"}, "auto_labels": []}},
        {"name": "cp_dockerfile", "args": {"path": copy.display().to_string()}},
        {"name": "cp_dockerfile", "args": {"path": nowhere.display().to_string()}}
    ]});
    let built = build_image(dir.path(), &image, source, lists);
    built.run.expect_code(0);
    assert_eq!(std::fs::read_to_string(&copy).expect("copied"), format!("{PLAIN}LABEL \"a\"=\"b\"\n"));

    let runs: Vec<&Value> =
        built.doc["plugins"].as_array().expect("runs").iter().filter(|r| r["key"] == "cp_dockerfile").collect();
    assert_eq!(runs[0]["result"], format!("Dockerfile successfully copied to '{}'", copy.display()));
    assert_eq!(runs[1]["status"], "failed");
    let error = runs[1]["error"].as_str().expect("an error");
    assert!(error.starts_with(&format!("cannot copy the Dockerfile to '{}': ", nowhere.display())), "{error}");
    assert!(built.run.stderr.contains("error is not fatal"), "{}", built.run.stderr);
}
