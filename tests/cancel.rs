//! Cancellation: SIGTERM or SIGINT stops the build, the exit plugins still run, the result
//! document says `cancelled`, the temporary source is removed, the exit code is 128 + signal.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::*;

/// A reactor run in the background, with its temporary files (the source) in `dir/tmp`.
fn start(dir: &Path, args: &[&str]) -> Background {
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).expect("mkdir tmp");
    Background::start(dir, args, &[("TMPDIR", &tmp.display().to_string())], false)
}

fn metadata(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("metadata.json")).expect("metadata written")).expect("JSON")
}

#[test]
fn sigterm_during_the_build_stops_the_engine_and_still_runs_the_exit_plugins() {
    let dir = workdir();
    // An odd duration, to find this build's container among others.
    git_repo(&dir.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\nRUN sleep 37.5\n")]);
    let record = dir.path().join("record.txt");
    let image = unique("cancel-build");
    let file = build_json(
        dir.path(),
        &json!({"image": image, "git_url": "repo",
        "exit_plugins": [{"name": "recorder", "args": {"path": record, "label": "exit"}}]}),
    );
    let so = plugin("test_plugins");
    let started = Instant::now();
    let run = start(dir.path(), &["--load-plugin", &so, "build", "json", &file, "--metadata-file", "metadata.json"]);
    run.wait_until("the sleep step", |r| r.stderr().contains("Running in "));
    run.signal("TERM", false);
    let (code, stderr) = run.wait();

    assert_eq!(code, Some(143), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30), "stopped well before the step would have ended");
    assert!(stderr.contains("received SIGTERM: cancelling the build; the exit plugins will still run"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&record).expect("exit plugin ran"), "exit exit\n");
    let doc = metadata(dir.path());
    assert_eq!(doc["status"], "cancelled");
    assert_eq!(doc["exit_code"], 143);
    assert_eq!(doc["failure"]["error"], "cancelled by SIGTERM");
    let exit =
        doc["plugins"].as_array().expect("plugins").iter().find(|p| p["phase"] == "exit").expect("exit ran").clone();
    assert_eq!(exit["result"]["outcome"]["status"], "cancelled");
    // The temporary source is gone.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("tmp")).expect("tmp").collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // The engine stopped the build: its container goes away.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ps = docker(&["ps", "--no-trunc", "--format", "{{.Command}}"]);
        if !String::from_utf8_lossy(&ps.stdout).contains("sleep 37.5") {
            break;
        }
        assert!(Instant::now() < deadline, "the build's container is still running");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!docker(&["image", "inspect", &image]).status.success(), "no image");
}

#[test]
fn sigint_stops_a_plugin_and_a_second_one_waits_for_the_exit_plugins() {
    let dir = workdir();
    git_repo(&dir.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\n")]);
    let (pre, exit, record) = (dir.path().join("pre.txt"), dir.path().join("exit.txt"), dir.path().join("record.txt"));
    let file = build_json(
        dir.path(),
        &json!({"image": unique("cancel-plugin"), "git_url": "repo",
        "prebuild_plugins": [{"name": "slow", "args": {"path": pre, "seconds": 30}}],
        "exit_plugins": [{"name": "slow", "args": {"path": exit, "seconds": 1.5, "ignore_cancel": true}},
                         {"name": "recorder", "args": {"path": record, "label": "last"}}]}),
    );
    let so = plugin("test_plugins");
    let run = start(dir.path(), &["--load-plugin", &so, "build", "json", &file, "--metadata-file", "metadata.json"]);
    run.wait_until("the slow prebuild plugin", |_| pre.exists());
    run.signal("INT", false);
    run.wait_until("the slow exit plugin", |_| exit.exists());
    run.signal("INT", false);
    let (code, stderr) = run.wait();

    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("received SIGINT again: ignored while the exit plugins finish"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&pre).expect("pre"), "started\n", "the prebuild plugin stopped early");
    assert_eq!(std::fs::read_to_string(&exit).expect("exit"), "started\ndone\n", "the exit plugin finished");
    assert_eq!(std::fs::read_to_string(&record).expect("record"), "exit last\n", "and the one after it ran");
    let doc = metadata(dir.path());
    assert_eq!(doc["status"], "cancelled");
    assert_eq!(doc["exit_code"], 130);
}

#[test]
fn a_plugin_that_ignores_cancellation_is_abandoned_after_the_grace_period() {
    let dir = workdir();
    git_repo(&dir.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\n")]);
    let (pre, record) = (dir.path().join("pre.txt"), dir.path().join("record.txt"));
    let file = build_json(
        dir.path(),
        &json!({"image": unique("abandon"), "git_url": "repo",
        "prebuild_plugins": [{"name": "slow", "args": {"path": pre, "seconds": 60, "ignore_cancel": true}}],
        "exit_plugins": [{"name": "recorder", "args": {"path": record, "label": "after"}}]}),
    );
    let so = plugin("test_plugins");
    let run = start(
        dir.path(),
        &["--load-plugin", &so, "build", "json", &file, "--metadata-file", "metadata.json", "--cancel-grace", "2"],
    );
    run.wait_until("the slow prebuild plugin", |_| pre.exists());
    let signalled = Instant::now();
    run.signal("INT", false);
    let (code, stderr) = run.wait();
    let took = signalled.elapsed();

    assert_eq!(code, Some(130), "{stderr}");
    // The grace period, the exit plugin and the clean-up, not the plugin's 60 s.
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(10), "exited {took:?} after SIGINT");
    assert_eq!(std::fs::read_to_string(&pre).expect("pre"), "started\n", "the plugin never finished");
    assert!(
        stderr.contains("prebuild plugin 'slow' abandoned: still running 2 s after the cancellation (--cancel-grace)"),
        "{stderr}"
    );
    let doc = metadata(dir.path());
    assert_eq!(doc["status"], "cancelled");
    let runs = doc["plugins"].as_array().expect("plugins");
    let slow = runs.iter().find(|r| r["key"] == "slow").expect("the abandoned run is recorded");
    assert_eq!(slow["status"], "abandoned");
    assert_eq!(slow["result"], Value::Null);
    // The exit plugin started only once the slow one was abandoned.
    let exit = runs.iter().find(|r| r["key"] == "recorder").expect("the exit plugin ran");
    assert_eq!(exit["phase"], "exit");
    let start = |r: &Value| humantime::parse_rfc3339(r["started"].as_str().expect("started")).expect("time");
    let abandoned_at = start(slow) + Duration::from_secs_f64(slow["duration_s"].as_f64().expect("duration"));
    // `started` is written to the millisecond, cut down: each true start lies within 1 ms after it.
    let millisecond = Duration::from_millis(1);
    assert!(start(exit) + millisecond > abandoned_at, "exit started {:?} before the abandonment", start(exit));
    assert_eq!(std::fs::read_to_string(&record).expect("record"), "exit after\n");
    // The temporary source went, though the abandoned plugin still ran.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("tmp")).expect("tmp").collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_container_a_plugin_runs_is_killed_and_removed_on_cancellation() {
    let dir = workdir();
    git_repo(&dir.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\n")]);
    let image = unique("cancel-container");
    let _cleanup = Images(vec![image.clone()]);
    // An odd duration, to find this container among others.
    let file = build_json(
        dir.path(),
        &json!({"image": image, "git_url": "repo",
        "postbuild_plugins": [{"name": "container_probe", "args": {"image": "busybox:latest", "command": ["sleep", "41.3"],
                                "options": {"stream_output": true}}}]}),
    );
    let so = plugin("test_plugins");
    let run = start(dir.path(), &["--load-plugin", &so, "build", "json", &file, "--metadata-file", "metadata.json"]);
    let running = || {
        let ps = docker(&["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]);
        String::from_utf8_lossy(&ps.stdout).contains("sleep 41.3")
    };
    run.wait_until("the plugin's container", |_| running());
    let signalled = Instant::now();
    run.signal("TERM", false);
    let (code, stderr) = run.wait();
    assert_eq!(code, Some(143), "{stderr}");
    assert!(signalled.elapsed() < Duration::from_secs(10), "the plugin's call was interrupted: {stderr}");
    assert!(!running(), "the container is gone (killed and removed)");
    let doc = metadata(dir.path());
    let probe = doc["plugins"].as_array().expect("plugins").iter().find(|r| r["key"] == "container_probe").cloned();
    let probe = probe.expect("the plugin's run is recorded");
    assert_eq!(probe["status"], "failed");
    assert_eq!(probe["result"]["kind"], "cancelled");
}
