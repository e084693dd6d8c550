//! deploy/'s manifests, checked offline as a cluster would check them: every Kubernetes object
//! with `kubernetes-validate --strict` (Kubernetes' own schemas, unknown fields refused), every
//! Tekton object with `@ibm/tekton-lint` (undefined or unused params, results, workspaces). Both
//! are installed by scripts/deploy-tools.sh (scripts/setup.sh runs it); without them these tests
//! fail. A deliberately broken copy must be refused by each, so that a check that passes means
//! something.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::util::workdir;

/// The repository's deploy/ directory.
pub(crate) fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("deploy")
}

/// Where scripts/deploy-tools.sh installs the checkers.
fn tools_dir() -> PathBuf {
    let state = std::env::var_os("REACTOR_STATE_DIR").unwrap_or_else(|| "/var/lib/reactor-dev".into());
    PathBuf::from(state).join("deploy-tools")
}

/// One of the installed tools, failing the test (never skipping it) when it is not there.
fn tool(relative: &str) -> PathBuf {
    let path = tools_dir().join(relative);
    assert!(path.is_file(), "{} is missing: run scripts/deploy-tools.sh (scripts/setup.sh runs it)", path.display());
    path
}

/// The venv's Python, which has PyYAML (kubernetes-validate depends on it).
pub(crate) fn python() -> PathBuf {
    tool("venv/bin/python")
}

fn kubernetes_validate() -> PathBuf {
    tool("venv/bin/kubernetes-validate")
}

fn tekton_lint() -> PathBuf {
    tool("npm/node_modules/.bin/tekton-lint")
}

/// The YAML files of deploy/`sub`, sorted.
pub(crate) fn manifests(sub: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir().join(sub))
        .expect("read deploy/")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in deploy/{sub}");
    files
}

/// Every document of a YAML file, as JSON (PyYAML reads it as kubectl's YAML 1.1 parser does:
/// `0440` is octal).
pub(crate) fn yaml_documents(path: &Path) -> Vec<Value> {
    let out = Command::new(python())
        .args([
            "-c",
            "import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None], sys.stdout)",
        ])
        .arg(path)
        .output()
        .expect("run python");
    assert!(out.status.success(), "{}: not YAML: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON from PyYAML")
}

/// The one object of `kind` in deploy/`sub`.
pub(crate) fn object(sub: &str, kind: &str) -> Value {
    let found: Vec<Value> =
        manifests(sub).iter().flat_map(|path| yaml_documents(path)).filter(|doc| doc["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "deploy/{sub} should hold exactly one {kind}");
    found.into_iter().next().expect("one")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn validate(files: &[PathBuf]) -> Output {
    Command::new(kubernetes_validate()).arg("--strict").args(files).output().expect("run kubernetes-validate")
}

/// tekton-lint with warnings counted as failures, in `dir` (it looks for a config there).
fn lint(dir: &Path, files: &[PathBuf]) -> Output {
    Command::new(tekton_lint())
        .current_dir(dir)
        .args(["--max-warnings", "0", "--format", "json", "--color", "false"])
        .args(files)
        .output()
        .expect("run tekton-lint")
}

#[test]
fn every_kubernetes_object_passes_kubernetes_validate_strict() {
    let files = manifests("kubernetes");
    let out = validate(&files);
    let text = text(&out);
    assert!(out.status.success(), "kubernetes-validate --strict refused deploy/kubernetes:\n{text}");
    // A kind it has no schema for is only a warning: every object must have been checked.
    let objects: usize = files.iter().map(|f| yaml_documents(f).len()).sum();
    assert_eq!(text.matches(" passed for resource ").count(), objects, "not every object was validated:\n{text}");
    assert!(!text.contains("WARN"), "{text}");
}

#[test]
fn the_tekton_tasks_step_passes_kubernetes_validate_strict_as_a_pod_container() {
    // tekton-lint checks Tekton's names, not the container fields a step shares with a Pod's
    // container (securityContext, env, volumeMounts): check those against Kubernetes' schema.
    let task = object("tekton", "Task");
    let mut containers = Vec::new();
    for step in task["spec"]["steps"].as_array().expect("steps") {
        let mut container = step.clone();
        let container = container.as_object_mut().expect("step");
        if let Some(resources) = container.remove("computeResources") {
            container.insert("resources".into(), resources);
        }
        container.insert("image".into(), json!("registry.example.com/reactor/reactor:0.0.0"));
        containers.push(Value::Object(container.clone()));
    }
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "reactor-build-step"},
        "spec": {"containers": containers, "volumes": task["spec"]["volumes"]},
    });
    let dir = workdir();
    let file = dir.path().join("pod.json");
    std::fs::write(&file, pod.to_string()).expect("write");
    let out = validate(&[file]);
    assert!(out.status.success(), "the Task's step is no valid container:\n{}", text(&out));
}

#[test]
fn every_tekton_object_passes_tekton_lint_with_no_warning() {
    let files = manifests("tekton");
    let out = lint(&deploy_dir(), &files);
    let text = text(&out);
    assert!(out.status.success(), "tekton-lint refused deploy/tekton:\n{text}");
    let problems: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("tekton-lint's JSON: {text}"));
    assert_eq!(problems, json!([]), "{text}");
    let kinds: Vec<Value> = files.iter().flat_map(|f| yaml_documents(f)).map(|doc| doc["kind"].clone()).collect();
    for kind in ["Task", "Pipeline", "PipelineRun"] {
        assert!(kinds.contains(&json!(kind)), "deploy/tekton has no {kind}: {kinds:?}");
    }
}

/// Copies `file` into a fresh directory with `from` replaced by `to` (which must change it).
fn broken_copy(dir: &Path, file: &Path, from: &str, to: &str) -> PathBuf {
    let original = std::fs::read_to_string(file).expect("read");
    assert!(original.contains(from), "{} no longer holds {from:?}: update this test", file.display());
    let copy = dir.join(file.file_name().expect("name"));
    std::fs::write(&copy, original.replacen(from, to, 1)).expect("write");
    copy
}

#[test]
fn kubernetes_validate_refuses_a_job_with_a_misspelled_field_or_a_wrong_type() {
    let job = deploy_dir().join("kubernetes/job.yaml");
    for (from, to, expected) in [
        ("readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", "readOnlyRootFileSystem"),
        ("terminationGracePeriodSeconds: 90", "terminationGracePeriodSeconds: ninety", "ninety"),
    ] {
        let dir = workdir();
        let copy = broken_copy(dir.path(), &job, from, to);
        let out = validate(&[copy]);
        let text = text(&out);
        assert!(!out.status.success(), "kubernetes-validate accepted a Job with {to:?}:\n{text}");
        assert!(text.contains(expected), "{text}");
    }
}

#[test]
fn tekton_lint_refuses_a_task_using_an_undefined_param_or_leaving_one_unused() {
    let task = deploy_dir().join("tekton/task.yaml");
    for (from, to, rule) in [
        ("$(params.engine)", "$(params.engin)", "no-undefined-param"),
        // A warning, which --max-warnings 0 makes a failure.
        ("- $(params.cancel-grace)", "- \"10\"", "no-unused-param"),
    ] {
        let dir = workdir();
        let copy = broken_copy(dir.path(), &task, from, to);
        let out = lint(dir.path(), &[copy]);
        let text = text(&out);
        assert!(!out.status.success(), "tekton-lint accepted a Task with {to:?}:\n{text}");
        assert!(text.contains(rule), "{text}");
    }
}

/// The `name`s of a list field of `value`.
fn names(value: &Value) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(|item| item["name"].as_str().map(str::to_owned)).collect()
}

#[test]
fn the_pipeline_and_the_pipelinerun_agree_with_the_task_and_the_example_secrets() {
    // What tekton-lint does not check across objects: the Pipeline gives the Task every param it
    // needs and binds only workspaces it declares, its results are the Task's, and the
    // PipelineRun gives the Pipeline's params and binds Secrets that deploy/kubernetes has, with
    // keys they hold.
    let task = object("tekton", "Task");
    let pipeline = object("tekton", "Pipeline");
    let run = object("tekton", "PipelineRun");
    let task_params = names(&task["spec"]["params"]);
    let required: Vec<String> = task["spec"]["params"]
        .as_array()
        .expect("params")
        .iter()
        .filter(|p| p.get("default").is_none())
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect();
    let uses: Vec<&Value> = pipeline["spec"]["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|t| t["taskRef"]["name"] == task["metadata"]["name"])
        .collect();
    assert_eq!(uses.len(), 1, "the Pipeline should run {} once", task["metadata"]["name"]);
    let given = names(&uses[0]["params"]);
    for param in &required {
        assert!(given.contains(param), "the Pipeline does not give the Task's param {param}");
    }
    for param in &given {
        assert!(task_params.contains(param), "the Pipeline gives {param}, which the Task does not take");
    }
    let task_workspaces = names(&task["spec"]["workspaces"]);
    for workspace in names(&uses[0]["workspaces"]) {
        assert!(
            task_workspaces.contains(&workspace),
            "the Pipeline binds {workspace}, which the Task does not declare"
        );
    }
    let task_name = uses[0]["name"].as_str().expect("name");
    for result in names(&task["spec"]["results"]) {
        let expected = format!("$(tasks.{task_name}.results.{result})");
        let found = pipeline["spec"]["results"].as_array().into_iter().flatten().find(|r| r["name"] == result.as_str());
        assert_eq!(found.map(|r| r["value"].clone()), Some(json!(expected)), "the Pipeline's result {result}");
    }

    let secrets: Vec<Value> =
        manifests("kubernetes").iter().flat_map(|f| yaml_documents(f)).filter(|doc| doc["kind"] == "Secret").collect();
    let run_params = names(&run["spec"]["params"]);
    for param in pipeline["spec"]["params"].as_array().expect("params") {
        let name = param["name"].as_str().expect("name").to_owned();
        assert!(param.get("default").is_some() || run_params.contains(&name), "the PipelineRun does not give {name}");
    }
    let pipeline_workspaces = names(&pipeline["spec"]["workspaces"]);
    for binding in run["spec"]["workspaces"].as_array().expect("workspaces") {
        let name = binding["name"].as_str().expect("name");
        assert!(
            pipeline_workspaces.contains(&name.to_owned()),
            "the PipelineRun binds {name}, which the Pipeline lacks"
        );
        let Some(secret_name) = binding["secret"]["secretName"].as_str() else { continue };
        let secret = secrets.iter().find(|s| s["metadata"]["name"] == secret_name).unwrap_or_else(|| {
            panic!("the PipelineRun binds Secret {secret_name}, which deploy/kubernetes has no example of")
        });
        for item in binding["secret"]["items"].as_array().into_iter().flatten() {
            let key = item["key"].as_str().expect("key");
            assert!(
                secret["data"].get(key).is_some() || secret["stringData"].get(key).is_some(),
                "Secret {secret_name} has no key {key}"
            );
        }
    }
}
