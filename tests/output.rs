//! What a build shows on stderr (`--progress`), through the real binary, the real engine and
//! the registry at 127.0.0.1:5000: JSON lines that parse one object per line with the phase and
//! plugin events in order, a failure's events naming the plugin, secrets redacted in JSON as in
//! plain, plain output in a pipe without escape codes, and the summary at the end.

use serde_json::{json, Value};

use crate::util::*;

const REGISTRY: &str = "127.0.0.1:5000";
const SECRET: &str = "output-test-secret-7c1f";

/// A path source with a two-step Dockerfile, pushed to the open registry, with a secret arg
/// that the container echoes; the image and its pushed name are removed at the end.
struct Build {
    dir: tempfile::TempDir,
    repo: String,
}

impl Build {
    fn new(name: &str) -> Build {
        let dir = workdir();
        write_files(&dir.path().join("src"), &[("Dockerfile", "FROM busybox:latest\nRUN echo step-two\n")]);
        Build { dir, repo: unique(name) }
    }

    fn image(&self) -> String {
        format!("{}:1", self.repo)
    }

    /// Runs the build with `postbuild` plugins (tag_and_push appended) and `args` before `build`.
    fn run(&self, postbuild: Vec<Value>, args: &[&str]) -> Run {
        let mut postbuild = postbuild;
        postbuild.push(json!({"name": "tag_and_push", "args": {"registries": {REGISTRY: {"insecure": true}}}}));
        let request = json!({
            "image": self.image(),
            "source": {"provider": "path", "uri": "src"},
            "prebuild_plugins": [{"name": "add_labels_in_dockerfile", "args": {"labels": {"name": self.repo}}}],
            "postbuild_plugins": postbuild,
            "exit_plugins": [{"name": "store_metadata", "args": {"path": self.dir.path().join("stored.json").display().to_string()}}],
        });
        let file = build_json(self.dir.path(), &request);
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["build", "json", &file, "--metadata-file", "result.json"]);
        reactor(self.dir.path(), &all, &[])
    }
}

impl Drop for Build {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.image(), &format!("{REGISTRY}/{}", self.image())]);
    }
}

/// The echo of a secret arg, in a container, as a plugin's own log line.
fn echo_secret() -> Value {
    json!({"name": "run_in_image", "args": {"command": "echo \"token=$TOKEN\"", "secret_env": {"TOKEN": SECRET}}})
}

/// Every stderr line as a JSON object; fails on any line that is not one.
fn json_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .map(|line| {
            let value: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{stderr}"));
            assert!(value.is_object(), "not an object: {line}");
            for field in ["time", "level", "phase", "plugin", "event", "message"] {
                assert!(value.get(field).is_some(), "no {field}: {line}");
            }
            value
        })
        .collect()
}

/// The phase and plugin events as "event phase [plugin outcome]", in order, and the summary.
fn timeline(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| {
            let phase = l["phase"].as_str().unwrap_or("-");
            let outcome = l["outcome"].as_str().map(|o| format!(" {o}")).unwrap_or_default();
            match l["event"].as_str()? {
                "phase_started" => Some(format!("phase_started {phase}")),
                "phase_ended" => Some(format!("phase_ended {phase}{outcome}")),
                "plugin_started" => Some(format!("plugin_started {phase} {}", l["plugin"].as_str()?)),
                "plugin_ended" => Some(format!("plugin_ended {phase} {}{outcome}", l["plugin"].as_str()?)),
                "summary" => Some(format!("summary {}", l["outcome"].as_str()?)),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn json_progress_of_a_real_build_is_one_object_per_line_with_the_events_in_order() {
    let build = Build::new("output-json");
    let run = build.run(vec![echo_secret()], &["--progress", "json"]);
    run.expect_code(0);
    assert!(!run.stderr.contains(SECRET), "the secret is in the JSON output:\n{}", run.stderr);
    let lines = json_lines(&run.stderr);
    assert_eq!(
        timeline(&lines),
        [
            "phase_started source",
            "phase_ended source succeeded",
            "phase_started prebuild",
            "plugin_started prebuild add_labels_in_dockerfile",
            "plugin_ended prebuild add_labels_in_dockerfile succeeded",
            "phase_ended prebuild succeeded",
            "phase_started buildstep",
            "plugin_started buildstep docker_api",
            "plugin_ended buildstep docker_api succeeded",
            "phase_ended buildstep succeeded",
            "phase_started prepublish",
            "phase_ended prepublish succeeded",
            "phase_started postbuild",
            "plugin_started postbuild run_in_image",
            "plugin_ended postbuild run_in_image succeeded",
            "plugin_started postbuild tag_and_push",
            "plugin_ended postbuild tag_and_push succeeded",
            "phase_ended postbuild succeeded",
            "phase_started exit",
            "plugin_started exit store_metadata",
            "plugin_ended exit store_metadata succeeded",
            "phase_ended exit succeeded",
            "summary succeeded",
        ],
        "{}",
        run.stderr
    );
    assert_eq!(lines.last().map(|l| &l["event"]), Some(&json!("summary")), "the summary comes last");

    // The plugin's own line (the container's output) carries its phase and plugin, redacted.
    let echoed = lines.iter().find(|l| l["message"] == "token=***").unwrap_or_else(|| panic!("{}", run.stderr));
    assert_eq!(
        (&echoed["phase"], &echoed["plugin"], &echoed["event"]),
        (&json!("postbuild"), &json!("run_in_image"), &json!("log"))
    );
    assert_eq!(echoed["target"], "plugin::run_in_image::container");

    let steps: Vec<(u64, u64)> = lines
        .iter()
        .filter(|l| l["event"] == "build_step")
        .map(|l| (l["current"].as_u64().expect("current"), l["total"].as_u64().expect("total")))
        .collect();
    assert_eq!(steps, [(1, 3), (2, 3), (3, 3)], "FROM, RUN, the labels: {}", run.stderr);
    let built = lines.iter().find(|l| l["event"] == "image_built").expect("image_built");
    let image_id = built["image_id"].as_str().expect("image_id");
    assert!(image_id.starts_with("sha256:"), "{built}");
    let pushed = lines.iter().find(|l| l["event"] == "push_digest").expect("push_digest");
    let name = format!("{REGISTRY}/{}", build.image());
    assert_eq!((&pushed["name"], &pushed["plugin"]), (&json!(name), &json!("tag_and_push")));

    let summary = lines.last().expect("summary");
    assert_eq!(summary["image_id"], image_id);
    assert_eq!(summary["digests"][&name], pushed["digest"]);
    assert_eq!(summary["tags"], json!([build.image()]));
    assert_eq!(summary["metadata_file"], "result.json");
    let phases: Vec<&str> =
        summary["phases"].as_array().expect("phases").iter().filter_map(|p| p["phase"].as_str()).collect();
    assert_eq!(phases, ["source", "prebuild", "buildstep", "prepublish", "postbuild", "exit"]);
    assert!(summary["slowest_plugin"]["plugin"].is_string(), "{summary}");
}

#[test]
fn json_progress_of_a_push_reports_each_layer_until_it_is_in_the_registry_before_the_digest() {
    let build = Build::new("output-push-layers");
    // A layer of its own (the registry cannot have it) on top of busybox's.
    let dockerfile = format!("FROM busybox:latest\nRUN head -c 2000000 /dev/urandom > /blob && echo {}\n", build.repo);
    write_files(&build.dir.path().join("src"), &[("Dockerfile", &dockerfile)]);
    let run = build.run(Vec::new(), &["--progress", "json"]);
    run.expect_code(0);
    let lines = json_lines(&run.stderr);
    let name = format!("{REGISTRY}/{}", build.image());
    let digest_at = lines
        .iter()
        .position(|l| l["event"] == "push_digest" && l["name"] == name)
        .unwrap_or_else(|| panic!("no push_digest:\n{}", run.stderr));
    let layer_lines: Vec<(usize, &Value)> =
        lines.iter().enumerate().filter(|(_, l)| l["event"] == "push_layer").collect();
    // Each layer's statuses in order, as first seen.
    let mut layers: Vec<(String, Vec<String>)> = Vec::new();
    for (at, line) in &layer_lines {
        assert!(*at < digest_at, "a layer line after the digest: {line}\n{}", run.stderr);
        assert_eq!(
            (&line["name"], &line["plugin"], &line["phase"]),
            (&json!(name), &json!("tag_and_push"), &json!("postbuild"))
        );
        let layer = line["layer"].as_str().unwrap_or_else(|| panic!("no layer: {line}")).to_owned();
        let status = line["status"].as_str().unwrap_or_else(|| panic!("no status: {line}")).to_owned();
        if status == "Pushing" {
            let (current, total) = (line["current"].as_u64(), line["total"].as_u64());
            // The engine counts the layer's tar stream against its size: `current` may pass
            // `total` by the tar's padding.
            assert!(current.is_some() && total.is_some(), "{line}");
        }
        match layers.iter_mut().find(|(id, _)| *id == layer) {
            Some((_, statuses)) => statuses.push(status),
            None => layers.push((layer, vec![status])),
        }
    }
    assert!(layers.len() >= 2, "fewer than two layers: {layers:?}");
    let in_registry = |s: &str| s == "Pushed" || s == "Layer already exists" || s.starts_with("Mounted from ");
    for (layer, statuses) in &layers {
        let last = statuses.last().map(String::as_str).unwrap_or_default();
        assert!(in_registry(last), "layer {layer} ends {statuses:?}");
        assert!(statuses.iter().all(|s| !in_registry(s) || s == last), "{layer}: {statuses:?}");
    }
    assert!(layers.iter().any(|(_, s)| s.contains(&"Pushed".to_owned())), "the new layer is pushed: {layers:?}");
    // A few lines a layer, not one per chunk: 2 MB goes in many chunks.
    let pushing = layer_lines.iter().filter(|(_, l)| l["status"] == "Pushing").count();
    assert!(pushing < 40, "{pushing} Pushing lines: reported per chunk?");
}

#[test]
fn a_failing_builds_json_events_name_the_failed_plugin() {
    let build = Build::new("output-fail");
    let failing = json!({"name": "run_in_image", "args": {"command": "exit 3"}});
    let run = build.run(vec![failing], &["--progress", "json"]);
    run.expect_code(1);
    let lines = json_lines(&run.stderr);
    let ended = lines
        .iter()
        .find(|l| l["event"] == "plugin_ended" && l["outcome"] == "failed")
        .unwrap_or_else(|| panic!("no failed plugin_ended:\n{}", run.stderr));
    assert_eq!(
        (&ended["phase"], &ended["plugin"], &ended["level"]),
        (&json!("postbuild"), &json!("run_in_image"), &json!("error"))
    );
    assert!(ended["error"].as_str().is_some_and(|e| e.contains("exited with code 3")), "{ended}");
    let timeline = timeline(&lines);
    assert!(timeline.contains(&"phase_ended postbuild failed".to_owned()), "{timeline:?}");
    // tag_and_push never ran; the exit plugins did.
    assert!(!timeline.iter().any(|e| e.contains("tag_and_push")), "{timeline:?}");
    assert!(timeline.contains(&"plugin_ended exit store_metadata succeeded".to_owned()), "{timeline:?}");
    let summary = lines.last().expect("a line");
    assert_eq!((&summary["event"], &summary["outcome"]), (&json!("summary"), &json!("failed")));
    assert_eq!((&summary["failed_phase"], &summary["failed_plugin"]), (&json!("postbuild"), &json!("run_in_image")));
}

#[test]
fn a_build_that_fails_shows_its_builder_and_the_buildstep_as_failed() {
    let build = Build::new("output-build-fails");
    write_files(&build.dir.path().join("src"), &[("Dockerfile", "FROM busybox:latest\nRUN exit 7\n")]);
    let run = build.run(Vec::new(), &["--progress", "json"]);
    run.expect_code(1);
    let lines = json_lines(&run.stderr);
    // The builder returned normally, with the failure in its build result: failed all the same.
    let ended = lines
        .iter()
        .find(|l| l["event"] == "plugin_ended" && l["phase"] == "buildstep")
        .unwrap_or_else(|| panic!("no buildstep plugin_ended:\n{}", run.stderr));
    assert_eq!(ended["outcome"], "failed", "{ended}");
    assert!(ended["error"].as_str().is_some_and(|e| !e.is_empty()), "{ended}");
    let timeline = timeline(&lines);
    assert!(timeline.contains(&"phase_ended buildstep failed".to_owned()), "{timeline:?}");
}

#[test]
fn plain_progress_in_a_pipe_has_no_escape_codes_keeps_todays_lines_and_ends_with_the_summary() {
    let build = Build::new("output-plain");
    for args in [&["--progress", "plain"][..], &[][..]] {
        let run = build.run(vec![echo_secret()], args);
        run.expect_code(0);
        let stderr = &run.stderr;
        assert!(!stderr.contains('\x1b'), "an escape code in plain output ({args:?}):\n{stderr}");
        assert!(!stderr.contains(SECRET), "{stderr}");
        // Today's lines, as env_logger writes them.
        for line in [
            format!("INFO  reactor::workflow] building {}", build.image()),
            "INFO  reactor::build] Step 2/3 : RUN echo step-two".to_owned(),
            "INFO  plugin::run_in_image::container] token=***".to_owned(),
            format!("INFO  reactor::app] build succeeded: {}", build.image()),
        ] {
            assert!(stderr.contains(&line), "no '{line}' ({args:?}):\n{stderr}");
        }
        assert!(stderr.lines().all(|l| l.starts_with('[')), "a line that is not a log line:\n{stderr}");

        // The summary: what was built, pushed (with the digest the registry has), how long each
        // phase took, the slowest plugin and the result document.
        let summary: Vec<&str> = stderr
            .lines()
            .filter_map(|l| l.split_once("INFO  reactor::summary] summary: ").map(|(_, rest)| rest))
            .collect();
        let document: Value =
            serde_json::from_str(&std::fs::read_to_string(build.dir.path().join("result.json")).expect("result.json"))
                .expect("JSON");
        let name = format!("{REGISTRY}/{}", build.image());
        let digest = document["digests"][&name].as_str().unwrap_or_else(|| panic!("no digest: {document}"));
        let image_id = document["image_id"].as_str().unwrap_or_else(|| panic!("no image_id: {document}"));
        assert!(summary[0].starts_with(&format!("succeeded {} ({image_id}) in ", build.image())), "{summary:?}");
        assert!(summary.contains(&format!("pushed {name}@{digest}").as_str()), "{summary:?}");
        assert!(summary.iter().any(|l| l.starts_with("phases: source ") && l.contains(", exit ")), "{summary:?}");
        assert!(summary.iter().any(|l| l.starts_with("slowest plugin: ")), "{summary:?}");
        assert_eq!(summary.last(), Some(&"result document: result.json"), "{summary:?}");
        assert!(summary.len() <= 6, "a few lines: {summary:?}");
        assert!(stderr.lines().last().is_some_and(|l| l.contains("reactor::summary]")), "the summary comes last");
    }
}

#[test]
fn quiet_leaves_the_summary_out() {
    let build = Build::new("output-quiet");
    let run = build.run(vec![], &["-q"]);
    run.expect_code(0);
    assert!(!run.stderr.contains("summary"), "{}", run.stderr);
    let run = build.run(vec![], &["-q", "--progress", "json"]);
    run.expect_code(0);
    assert!(!run.stderr.contains("summary"), "{}", run.stderr);
}
