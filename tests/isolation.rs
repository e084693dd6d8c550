//! Crash isolation: with `--isolate-plugins` (or an entry's `"isolate": true`) a loaded plugin
//! runs in a child reactor process, so a segfault, an abort or an exit in its code fails that
//! plugin only: the host goes on, the exit plugins run, the result document names the plugin.
//! An isolated plugin reaches the build exactly as an in-process one does, cancellation included.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::*;

/// HOME and XDG_DATA_HOME inside the test's directory: no user's plugin directory is read.
fn home(dir: &Path) -> Vec<(&'static str, String)> {
    let (home, data) = (dir.join("home"), dir.join("data"));
    std::fs::create_dir_all(&home).expect("mkdir home");
    std::fs::create_dir_all(&data).expect("mkdir data");
    vec![("HOME", home.display().to_string()), ("XDG_DATA_HOME", data.display().to_string())]
}

/// The fixture module of crashing plugins, by the path reactor names it with (canonical).
fn crasher() -> String {
    let path = plugin("test_isolation");
    std::fs::canonicalize(&path).expect("canonical").display().to_string()
}

/// A build of `FROM busybox:latest` from a path source with both fixture modules loaded and
/// these phase `lists` (a recorder's `"RECORD"` path filled in); without a buildstep list it
/// builds nothing (`noop_builder`). Returns the run, the result document and the record.
fn run_build(dir: &Path, lists: Value, args: &[&str], env: &[(&str, &str)]) -> (Run, Value, String) {
    write_files(dir, &[("src/Dockerfile", "FROM busybox:latest\n")]);
    let record = dir.join("record.txt");
    let _ = std::fs::remove_file(&record);
    let lists = serde_json::to_string(&lists).expect("json").replace("RECORD", &record.display().to_string());
    let mut request = json!({"image": unique("isolation"), "source": {"provider": "path", "uri": "src"},
                             "buildstep_plugins": [{"name": "noop_builder"}]});
    for (k, v) in serde_json::from_str::<Value>(&lists).expect("json").as_object().expect("lists") {
        request[k] = v.clone();
    }
    let file = build_json(dir, &request);
    let (plugins, crasher) = (plugin("test_plugins"), crasher());
    let mut all = vec!["--load-plugin", &plugins, "--load-plugin", &crasher, "build", "json", &file];
    all.extend(["--metadata-file", "m.json"]);
    // After the file: --dry-run is an option of `build json`, --isolate-plugins is global.
    all.extend_from_slice(args);
    let env_owned = home(dir);
    let mut env_all: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env_all.extend_from_slice(env);
    let run = reactor(dir, &all, &env_all);
    let doc = std::fs::read_to_string(dir.join("m.json"))
        .map(|t| serde_json::from_str(&t).expect("result document is JSON"))
        .unwrap_or(Value::Null);
    (run, doc, std::fs::read_to_string(&record).unwrap_or_default())
}

/// The run of `key` in `phase` (the first, or the `nth`).
fn run_of(doc: &Value, phase: &str, key: &str, nth: usize) -> Value {
    let runs = doc["plugins"].as_array().unwrap_or_else(|| panic!("no plugin runs: {doc}"));
    runs.iter().filter(|r| r["key"] == key && r["phase"] == phase).nth(nth).cloned().unwrap_or_else(|| {
        panic!("no run {nth} of {phase} {key}: {doc}");
    })
}

#[test]
fn with_isolate_plugins_a_segfault_fails_only_its_plugin_and_the_exit_plugins_still_run() {
    let dir = workdir();
    let (run, doc, record) = run_build(
        dir.path(),
        json!({
            "postbuild_plugins": [{"name": "context_calls"},
                                  {"name": "segfault", "is_allowed_to_fail": false},
                                  {"name": "recorder", "args": {"path": "RECORD", "label": "never"}}],
            "exit_plugins": [{"name": "abort"}, {"name": "recorder", "args": {"path": "RECORD", "label": "exit"}}]
        }),
        &["--isolate-plugins"],
        &[],
    );
    let file = crasher();
    run.expect_code(1);
    let crashed = format!(
        "postbuild plugin 'segfault' failed: crashed: killed by signal 11 (SIGSEGV) in its isolated process ({file})"
    );
    assert!(run.stderr.contains(&crashed), "{}", run.stderr);
    // The rest of postbuild is skipped; the exit plugins run, an aborting one included.
    assert_eq!(record, "exit exit\n");
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(doc["failure"]["phase"], "postbuild");
    assert_eq!(doc["failure"]["plugin"], "segfault");
    assert_eq!(doc["failure"]["error"], crashed);
    let segfault = run_of(&doc, "postbuild", "segfault", 0);
    assert_eq!(segfault["status"], "failed");
    assert_eq!(segfault["error"], format!("crashed: killed by signal 11 (SIGSEGV) in its isolated process ({file})"));
    let abort = run_of(&doc, "exit", "abort", 0);
    assert_eq!(abort["error"], format!("crashed: killed by signal 6 (SIGABRT) in its isolated process ({file})"));
    let exit = run_of(&doc, "exit", "recorder", 0);
    assert_eq!(exit["status"], "succeeded");
    assert_eq!(exit["result"]["outcome"]["failed_plugin"], "segfault");
    // The plugin before the crash ran in a process of its own and answered from the real build.
    let calls = run_of(&doc, "postbuild", "context_calls", 0);
    assert_eq!(calls["result"]["image"], doc["image"]);
    let pid = calls["result"]["pid"].as_u64().expect("pid");
    assert!(
        run.stderr.contains(&format!("INFO  plugin::context_calls::test_isolation] log line 0 of 1 from pid {pid}")),
        "its log line is printed under its key: {}",
        run.stderr
    );
}

#[test]
fn a_plugin_that_crashes_leaving_a_child_process_fails_at_once_and_the_child_is_killed() {
    let dir = workdir();
    // An odd duration, to find this plugin's own child process among others.
    let seconds = format!("62.{}", std::process::id() % 100_000);
    let started = Instant::now();
    let (run, doc, _) = run_build(
        dir.path(),
        json!({"postbuild_plugins": [{"name": "sleeper", "args": {"seconds": seconds, "then_segfault": true}}]}),
        &["--isolate-plugins"],
        &[],
    );
    run.expect_code(0);
    assert!(started.elapsed() < Duration::from_secs(30), "the crash was seen at once, not when the child ended");
    assert_eq!(
        run_of(&doc, "postbuild", "sleeper", 0)["error"],
        format!("crashed: killed by signal 11 (SIGSEGV) in its isolated process ({})", crasher())
    );
    assert_no_process_names(&format!("sleep {seconds}"), "the crashed plugin's child process was killed");
}

#[test]
fn tolerated_crashes_abort_and_exit_leave_a_successful_build_and_the_module_is_started_again() {
    let dir = workdir();
    let (run, doc, _) = run_build(
        dir.path(),
        json!({
            "prebuild_plugins": [{"name": "abort"}, {"name": "exit_process", "args": {"code": 7}}],
            "postbuild_plugins": [{"name": "context_calls", "args": {"calls": 2, "logs": 0}}]
        }),
        &["--isolate-plugins"],
        &[],
    );
    let file = crasher();
    run.expect_code(0);
    assert!(
        run.stderr.contains(&format!(
            "prebuild plugin 'abort' failed: crashed: killed by signal 6 (SIGABRT) in its isolated process ({file}); error is not fatal (is_allowed_to_fail), continuing"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(
        run_of(&doc, "prebuild", "exit_process", 0)["error"],
        format!("ended its process: exited with code 7 in its isolated process ({file})")
    );
    let calls = run_of(&doc, "postbuild", "context_calls", 0);
    assert_eq!(calls["status"], "succeeded");
    assert_eq!(calls["result"]["calls"], 2);
    assert_eq!(doc["status"], "succeeded");
}

#[test]
fn an_entrys_isolate_setting_isolates_that_plugin_alone() {
    let dir = workdir();
    let lists = json!({
        "postbuild_plugins": [{"name": "context_calls", "isolate": true},
                              {"name": "context_calls"},
                              {"name": "segfault", "isolate": true, "is_allowed_to_fail": true}],
        "exit_plugins": [{"name": "remove_built_image", "isolate": true}]
    });
    let (run, doc, _) = run_build(dir.path(), lists.clone(), &[], &[]);
    run.expect_code(0);
    let isolated = run_of(&doc, "postbuild", "context_calls", 0)["result"]["pid"].clone();
    let in_process = run_of(&doc, "postbuild", "context_calls", 1)["result"]["pid"].clone();
    assert!(isolated.is_u64() && in_process.is_u64(), "{doc}");
    assert_ne!(isolated, in_process, "the isolated entry ran in another process");
    assert_eq!(
        run_of(&doc, "postbuild", "segfault", 0)["error"],
        format!("crashed: killed by signal 11 (SIGSEGV) in its isolated process ({})", crasher())
    );
    assert!(
        run.stderr.contains(
            "/exit_plugins/0: plugin 'remove_built_image' is built into reactor: \"isolate\" applies to loaded plugins only, so it runs in-process"
        ),
        "{}",
        run.stderr
    );

    // The plan says which runs are isolated.
    let (plan, _, _) = run_build(dir.path(), lists, &["--dry-run"], &[]);
    plan.expect_code(0);
    let file = crasher();
    let lines: Vec<&str> = plan.stdout.lines().filter(|l| l.contains(". context_calls ")).collect();
    assert_eq!(lines.len(), 2, "{}", plan.stdout);
    assert!(lines[0].ends_with(&format!("({file}, isolated), must not fail")), "{}", plan.stdout);
    assert!(lines[1].ends_with(&format!("({file}), must not fail")), "{}", plan.stdout);
}

#[test]
fn a_crash_while_loading_is_a_load_error_with_isolation_and_kills_reactor_without() {
    let dir = workdir();
    let crash = [("REACTOR_TEST_CRASH_AT_LOAD", "segfault")];
    let lists = json!({"postbuild_plugins": [{"name": "context_calls"}]});
    let (run, doc, _) = run_build(dir.path(), lists.clone(), &["--isolate-plugins"], &crash);
    run.expect_code(3);
    let line = format!(
        "--load-plugin {}: crashed: killed by signal 11 (SIGSEGV) while loading, in its isolated process (--isolate-plugins); the plugin's author must fix the module",
        crasher()
    );
    assert_eq!(run.errors().len(), 1, "{}", run.stderr);
    assert!(run.errors()[0].ends_with(&line), "{}", run.stderr);
    assert_eq!(doc["exit_code"], 3);
    assert_eq!(doc["failure"]["problems"], json!([line]));

    // The same module in-process takes reactor with it: no exit code, no result document.
    std::fs::remove_file(dir.path().join("m.json")).expect("rm");
    let (run, doc, _) = run_build(dir.path(), lists, &[], &crash);
    assert_eq!(run.code, None, "killed by the signal: {}", run.stderr);
    assert_eq!(doc, Value::Null);
}

/// Strips what differs between two builds of the same request: image IDs and temporary paths.
fn normalized(value: &Value) -> Value {
    match value {
        Value::String(s) if s.starts_with("sha256:") => json!("sha256:…"),
        Value::String(s) if s.contains(&std::env::temp_dir().display().to_string()) => json!("<tmp>"),
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !["started", "duration_s"].contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The plugins' log lines (level, target, message), sorted: a container's stdout and stderr
/// lines may come in either order.
fn plugin_lines(stderr: &str) -> Vec<String> {
    let mut lines: Vec<String> = stderr
        .lines()
        .filter(|l| l.contains(" plugin::"))
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest).to_owned())
        .collect();
    lines.sort();
    lines
}

#[test]
fn an_isolated_plugin_sees_and_changes_the_build_exactly_as_in_process() {
    let dir = workdir();
    let image = unique("isolation-same");
    let probe_tag = format!("{image}-probe");
    let _cleanup = Images(vec![image.clone(), probe_tag]);
    git_repo(&dir.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\n")]);
    let file = build_json(
        dir.path(),
        &json!({"image": image, "git_url": "repo",
            "prebuild_plugins": [{"name": "context_probe"}, {"name": "feature_probe"}],
            "postbuild_plugins": [
                {"name": "context_probe"},
                {"name": "workspace_probe", "args": {"key": "k", "set": {"from": "postbuild"}}},
                {"name": "container_probe", "args": {"image": "busybox:latest",
                    "command": ["sh", "-c", "echo to stdout; echo to stderr >&2"], "options": {"stream_output": true}}},
                {"name": "failer", "args": {"message": "tolerated"}}],
            "exit_plugins": [{"name": "workspace_probe", "args": {"key": "k"}},
                             {"name": "recorder", "args": {"path": dir.path().join("record.txt"), "label": "exit"}}]}),
    );
    let so = plugin("test_plugins");
    let env = home(dir.path());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let build = |flags: &[&str]| {
        let mut args = vec!["-v", "--load-plugin", &so];
        args.extend_from_slice(flags);
        args.extend(["build", "json", &file, "--metadata-file", "m.json"]);
        let run = reactor(dir.path(), &args, &env);
        run.expect_code(0);
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("m.json")).expect("doc")).expect("JSON");
        (run, doc)
    };
    let (in_process, expected) = build(&[]);
    let (isolated, doc) = build(&["--isolate-plugins"]);

    assert_eq!(normalized(&doc["plugins"]), normalized(&expected["plugins"]));
    for field in ["status", "tags", "digests", "dockerfile", "base_image"] {
        assert_eq!(doc[field], expected[field], "{field}");
    }
    // What the plugins did to the build, seen in both: the Dockerfile edited in prebuild, the
    // labels and build arg on the image, the container's output, the workspace across phases.
    let probe = run_of(&doc, "postbuild", "context_probe", 0)["result"].clone();
    assert_eq!(probe["labels"]["probe.arg"], "from-plugin", "{probe}");
    assert_eq!(probe["exit_code"], 3);
    assert!(probe["set_dockerfile_refused"].as_str().is_some_and(|m| m.contains("prebuild")), "{probe}");
    assert_eq!(run_of(&doc, "exit", "workspace_probe", 0)["result"], json!({"stored": {"from": "postbuild"}}));
    assert_eq!(run_of(&doc, "prebuild", "feature_probe", 0)["result"]["supports_workspace"], true);
    // The same log lines, under the same targets and levels (debug included, as -v asks).
    let lines = plugin_lines(&isolated.stderr);
    assert_eq!(lines, plugin_lines(&in_process.stderr));
    assert!(lines.iter().any(|l| l.starts_with("DEBUG plugin::context_probe::test_plugins] edited the Dockerfile")));
    assert!(lines.iter().any(|l| l == "INFO  plugin::container_probe::container] to stderr"), "{lines:?}");
    assert!(isolated.stderr.contains("started the isolated process of"), "{}", isolated.stderr);
}

/// A reactor run in the background, in a process group of its own as a shell job is, with its
/// own HOME and plugin directory.
fn start(dir: &Path, args: &[&str]) -> Background {
    let env = home(dir);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Background::start(dir, args, &env, true)
}

/// Waits until a process whose command line holds `command_line` runs.
fn wait_for_process(run: &Background, command_line: &str) {
    run.wait_until(&format!("`{command_line}`"), |_| !processes_naming(command_line).is_empty());
}

/// A copy of the fixture module `name` in `dir`, so that its worker processes can be told from
/// other tests' by their command line.
fn private_copy(dir: &Path, name: &str) -> PathBuf {
    let copy = dir.join(format!("lib{name}.so"));
    std::fs::copy(plugin(name), &copy).expect("copy the module");
    copy
}

/// The command lines of the processes whose command line holds `text`; for a module's file,
/// only its workers.
fn processes_naming(text: &str) -> Vec<String> {
    let out = Command::new("pgrep").args(["-a", "-f", text]).output().expect("pgrep");
    let lines = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect::<Vec<_>>();
    if text.ends_with(".so") {
        return lines.into_iter().filter(|l| l.contains("__plugin-worker")).collect();
    }
    lines
}

/// Waits up to 5 s for no process to hold `text` in its command line.
fn assert_no_process_names(text: &str, why: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_naming(text).is_empty() {
        assert!(Instant::now() < deadline, "{why}: {:?}", processes_naming(text));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A build.json whose prebuild runs `slow` with `slow_args` and whose exit phase records (both
/// test_plugins').
fn slow_build(dir: &Path, slow_args: Value) -> String {
    git_repo(&dir.join("repo"), &[("Dockerfile", "FROM busybox:latest\n")]);
    build_json(
        dir,
        &json!({"image": unique("isolation-cancel"), "git_url": "repo",
            "prebuild_plugins": [{"name": "slow", "args": slow_args}],
            "exit_plugins": [{"name": "recorder", "args": {"path": dir.join("record.txt"), "label": "after"}}]}),
    )
}

#[test]
fn ctrl_c_at_the_terminal_cancels_an_isolated_plugin_through_its_context_not_by_killing_it() {
    let dir = workdir();
    let pre = dir.path().join("pre.txt");
    let file = slow_build(dir.path(), json!({"path": pre, "seconds": 30}));
    let module = private_copy(dir.path(), "test_plugins");
    let module_arg = module.display().to_string();
    let run = start(
        dir.path(),
        &["--isolate-plugins", "--load-plugin", &module_arg, "build", "json", &file, "--metadata-file", "m.json"],
    );
    run.wait_until(&pre.display().to_string(), |_| pre.exists());
    let signalled = Instant::now();
    // The whole foreground group, as the terminal sends it: the worker is not in it.
    run.signal("INT", true);
    let (code, stderr) = run.wait();

    assert_eq!(code, Some(130), "{stderr}");
    assert!(signalled.elapsed() < Duration::from_secs(8), "the plugin stopped when told, well within the grace");
    assert!(!stderr.contains("crashed"), "{stderr}");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("m.json")).expect("doc")).expect("JSON");
    let slow = run_of(&doc, "prebuild", "slow", 0);
    assert_eq!(slow["status"], "failed", "{slow}");
    assert_eq!(slow["result"], json!({"error": "stopped: the build was cancelled", "kind": "cancelled"}));
    assert_eq!(std::fs::read_to_string(dir.path().join("record.txt")).expect("exit plugin ran"), "exit after\n");
    assert_no_process_names(&module_arg, "the worker ends with reactor");
}

#[test]
fn an_isolated_plugin_abandoned_after_the_grace_period_is_killed_with_its_children_and_its_module_serves_the_exit_plugins(
) {
    let dir = workdir();
    git_repo(&dir.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\n")]);
    // An odd duration, to find this plugin's own child process among others.
    let seconds = format!("61.{}", std::process::id() % 100_000);
    let file = build_json(
        dir.path(),
        &json!({"image": unique("isolation-abandon"), "git_url": "repo",
            "prebuild_plugins": [{"name": "sleeper", "args": {"seconds": seconds}}],
            "exit_plugins": [{"name": "context_calls"}]}),
    );
    let module = private_copy(dir.path(), "test_isolation");
    let module_arg = module.display().to_string();
    let grace = ["--cancel-grace", "1"];
    let run = start(
        dir.path(),
        &[
            &[
                "-v",
                "--isolate-plugins",
                "--load-plugin",
                &module_arg,
                "build",
                "json",
                &file,
                "--metadata-file",
                "m.json",
            ][..],
            &grace,
        ]
        .concat(),
    );
    let sleep = format!("sleep {seconds}");
    wait_for_process(&run, &sleep);
    run.signal("TERM", false);
    let (code, stderr) = run.wait();

    assert_eq!(code, Some(143), "{stderr}");
    assert!(
        stderr
            .contains("prebuild plugin 'sleeper' abandoned: still running 1 s after the cancellation (--cancel-grace)"),
        "{stderr}"
    );
    assert!(stderr.contains("killed the isolated process of"), "{stderr}");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("m.json")).expect("doc")).expect("JSON");
    assert_eq!(run_of(&doc, "prebuild", "sleeper", 0)["status"], "abandoned");
    // The exit plugin of the same module ran, in a new worker.
    assert_eq!(run_of(&doc, "exit", "context_calls", 0)["status"], "succeeded");
    assert_no_process_names(&module_arg, "the abandoned plugin's process was killed");
    assert_no_process_names(&sleep, "and so was the process it started");
}

#[test]
fn a_worker_ends_with_what_its_plugin_started_when_its_reactor_is_killed() {
    let dir = workdir();
    git_repo(&dir.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\n")]);
    // An odd duration, to find this plugin's own child process among others.
    let seconds = format!("63.{}", std::process::id() % 100_000);
    let file = build_json(
        dir.path(),
        &json!({"image": unique("isolation-orphan"), "git_url": "repo",
            "prebuild_plugins": [{"name": "sleeper", "args": {"seconds": seconds}}]}),
    );
    let module = private_copy(dir.path(), "test_isolation");
    let module_arg = module.display().to_string();
    let run = start(dir.path(), &["--isolate-plugins", "--load-plugin", &module_arg, "build", "json", &file]);
    let sleep = format!("sleep {seconds}");
    wait_for_process(&run, &sleep);
    assert_eq!(processes_naming(&module_arg).len(), 1, "one worker runs the plugin");
    // SIGKILL: reactor can do nothing; the worker notices its parent is gone.
    run.signal("KILL", false);
    let (code, _) = run.wait();
    assert_eq!(code, None);
    assert_no_process_names(&module_arg, "the orphaned worker ended");
    assert_no_process_names(&sleep, "and so did its plugin's child process");
}
