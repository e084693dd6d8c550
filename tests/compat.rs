//! The plugin contract across versions, for real: plugins built against small snapshots of
//! `reactor-plugin-api` (`tests/compat/`: one protocol minor older, one newer that needs a
//! feature this reactor lacks, one newer that only may use it, the next major) loaded into this
//! reactor and run in real builds; this reactor's own plugins loaded into a host of the previous
//! protocol minor; and the checks every module passes at load.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use serde_json::{json, Value};

use crate::util::*;

/// Builds the compat workspace `name` (under tests/compat) in a target directory of its own,
/// once per test run; returns that target's `debug` directory.
pub(crate) fn compat(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf();
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compat").join(name);
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if !built.iter().any(|b| b == name) {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--manifest-path"])
            .arg(root.join("tests/compat").join(name).join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building tests/compat/{name} failed");
        built.push(name.to_owned());
    }
    target.join("debug")
}

pub(crate) fn so(dir: &Path, name: &str) -> String {
    let path = dir.join(format!("lib{name}.so"));
    assert!(path.is_file(), "{} was not built", path.display());
    path.display().to_string()
}

/// A real build with `plugin` in postbuild, loaded from `file`: the run and its result document.
fn build_with(file: &str, plugin: &str) -> (Run, Value) {
    let dir = workdir();
    git_repo(&dir.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\nRUN true\n")]);
    let image = unique(plugin);
    let _cleanup = Images(vec![image.clone()]);
    let build = build_json(
        dir.path(),
        &json!({"image": image, "git_url": "repo", "postbuild_plugins": [{"name": plugin, "args": {"n": 1}, "is_allowed_to_fail": false}]}),
    );
    let run = reactor(dir.path(), &["--load-plugin", file, "build", "json", &build, "--metadata-file", "m.json"], &[]);
    let doc = std::fs::read_to_string(dir.path().join("m.json")).expect("result document written");
    (run, serde_json::from_str(&doc).expect("JSON"))
}

const API: &str = reactor_plugin_api::API_VERSION;
const REACTOR: &str = env!("CARGO_PKG_VERSION");

#[test]
fn a_plugin_of_the_previous_protocol_minor_runs_in_a_real_build() {
    let file = so(&compat("v1.0"), "compat_older");
    let (run, doc) = build_with(&file, "compat_older");
    run.expect_code(0);
    let result = result_in(&doc, "postbuild", "compat_older");
    assert_eq!(result["api"], "1.0.0");
    assert_eq!(result["host_protocol"], reactor_plugin_api::protocol::PROTOCOL.to_string());
    assert!(result["log_lines"].as_u64().is_some_and(|n| n >= 4), "it read the real build's log: {result}");
    assert_eq!(result["args"], json!({"n": 1}));
    let loaded = doc["loaded_plugins"].as_array().expect("loaded");
    assert!(loaded.iter().any(|p| p["key"] == "compat_older" && p["api_version"] == "1.0.0"), "{loaded:?}");
}

#[test]
fn a_newer_plugin_that_only_may_use_a_missing_feature_runs_and_gets_a_clear_error() {
    let file = so(&compat("v1.3"), "compat_optional");
    let (run, doc) = build_with(&file, "compat_optional");
    run.expect_code(0);
    let result = result_in(&doc, "postbuild", "compat_optional");
    assert_eq!(result["api"], "1.3.0");
    // A protocol 1.1 feature this reactor has works; the 1.3 one it lacks is an error, not a panic.
    assert_eq!(result["workspace"], json!({"seen": true}));
    assert_eq!(
        result["squash"],
        format!("unsupported: this reactor ({REACTOR}) does not offer the feature 'images.squash'")
    );
}

/// Loads `plugin` from `file` for a real build and asserts that reactor refuses it with exit 3,
/// exactly one error line, `line`, and the same exit code in the result document.
fn assert_refused(file: &str, plugin: &str, line: &str) {
    let (run, doc) = build_with(file, plugin);
    run.expect_code(3);
    let errors: Vec<&str> = run.errors().iter().map(|l| l.split(" ERROR reactor::app] ").nth(1).unwrap_or(l)).collect();
    assert_eq!(errors, [line], "{}", run.stderr);
    assert_eq!(doc["exit_code"], 3);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn a_newer_plugin_that_needs_a_missing_feature_is_refused_in_one_line() {
    let file = so(&compat("v1.3"), "compat_needs");
    assert_refused(
        &file,
        "compat_needs",
        &format!(
            "--load-plugin {file}: plugin 'compat_needs' 1.3.0 (reactor-plugin-api 1.3.0) needs the host feature 'images.squash', which this reactor ({REACTOR}, reactor-plugin-api {API}) lacks: upgrade reactor to ≥ 0.4.0"
        ),
    );
}

#[test]
fn a_plugin_of_the_next_major_is_refused_in_one_line() {
    let file = so(&compat("v2.0"), "compat_next");
    assert_refused(
        &file,
        "compat_next",
        &format!(
            "--load-plugin {file}: built against reactor-plugin-api 2.0.0, a newer major than this reactor's ({REACTOR}, reactor-plugin-api {API}): upgrade reactor to a release for reactor-plugin-api 2.x, or use a build of the plugin for reactor-plugin-api 1.x"
        ),
    );
}

#[test]
fn a_plugin_of_the_same_version_with_another_layout_is_refused_saying_so() {
    // The fork claims this reactor's own version of reactor-plugin-api.
    let fork =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/compat/fork/api/Cargo.toml"))
            .expect("the fork's manifest");
    assert!(fork.contains(&format!("version = \"{API}\"")), "tests/compat/fork must claim reactor-plugin-api {API}");
    let file = so(&compat("fork"), "compat_fork");
    assert_refused(
        &file,
        "compat_fork",
        &format!(
            "--load-plugin {file}: built against reactor-plugin-api {API}, the same version as this reactor's, but with another binary layout (same version, different layout: a fork or an unreleased change of reactor-plugin-api): rebuild the plugin against the released reactor-plugin-api {API} (-v shows the layout report)"
        ),
    );
}

#[test]
fn this_reactors_plugins_run_in_a_host_of_the_previous_protocol_minor() {
    let host = compat("v1.0").join("compat_host");
    let run = |file: &str| {
        let out = Command::new(&host).arg(file).output().expect("run compat_host");
        let lines: Vec<Value> =
            String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
        (out.status.code(), lines, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // The seed's plugin loads and runs (its args are wrong for it, and it says so).
    let (code, lines, stderr) = run(&plugin("logs_submitter"));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(lines[0]["error"]["message"], "invalid args: unknown field `from`, expected `url` or `timeout`");
    // A plugin that may use a 1.1 feature gets an `unsupported` error from it, naming the release.
    let (code, lines, stderr) = run(&plugin("test_plugins"));
    assert_eq!(code, Some(0), "{stderr}");
    let probe = lines.iter().find(|l| l["key"] == "feature_probe").expect("feature_probe ran");
    assert_eq!(probe["result"]["host_protocol"], "1.0");
    assert_eq!(probe["result"]["supports_workspace"], false);
    assert_eq!(probe["result"]["log_lines"], 2);
    assert_eq!(probe["result"]["workspace"]["kind"], "unsupported");
    assert_eq!(
        probe["result"]["workspace"]["error"],
        "cannot use the workspace: this reactor (0.2.0-protocol-1.0, protocol 1.0) does not offer the feature 'workspace'; upgrade reactor to ≥ 0.2.0 (protocol 1.1)"
    );
    // One that requires a 1.1 feature is refused at load, naming the feature and the release.
    let file = plugin("test_puller");
    let (code, lines, stderr) = run(&file);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(lines.is_empty());
    assert_eq!(
        stderr.trim(),
        format!("{file}: plugin 'puller' (reactor-plugin-api {API}) needs the host feature \"images.pull\", which this reactor lacks: upgrade reactor to ≥ 0.2.0")
    );
}

#[test]
fn a_module_that_breaks_the_load_time_checks_is_refused_naming_each_plugin() {
    let dir = workdir();
    let file = plugin("test_invalid");
    let build = build_json(dir.path(), &json!({"image": "x", "git_url": "repo"}));
    let run = reactor(dir.path(), &["--load-plugin", &file, "build", "json", "--dry-run", &build], &[]);
    run.expect_code(3);
    let errors: Vec<&str> = run.errors().iter().map(|l| l.split("] ").nth(1).unwrap_or(l)).collect();
    let fix = "the plugin's author must fix the module";
    assert_eq!(errors.len(), 4, "{}", run.stderr);
    assert_eq!(
        errors[..3],
        [
            format!("--load-plugin {file}: plugins number 1 and 2 both have the key 'dup' (keys must be unique in a module); {fix}"),
            format!("--load-plugin {file}: plugin number 3 has an empty key; {fix}"),
            format!("--load-plugin {file}: plugin 'no_phase' runs in no phase (its manifest lists none); {fix}"),
        ]
    );
    let schema = format!("--load-plugin {file}: plugin 'bad_schema': its args schema is not a valid JSON Schema at /properties/url/type: ");
    assert!(errors[3].starts_with(&schema) && errors[3].ends_with(fix), "{}", errors[3]);
}

#[test]
fn a_plugin_built_with_panic_abort_does_not_compile() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf();
    let out = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--manifest-path"])
        .arg(root.join("tests/compat/abort/Cargo.toml"))
        .env("CARGO_TARGET_DIR", PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compat/abort"))
        .output()
        .expect("run cargo build");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a panic = \"abort\" plugin compiled:\n{stderr}");
    assert!(
        stderr.contains("reactor plugins must be built with panic = \"unwind\": under panic = \"abort\" a panic in the plugin would kill reactor"),
        "{stderr}"
    );
}
