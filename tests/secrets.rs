//! No secret is printed or recorded. One build plants a secret in every place a user can put
//! one: the git URL's password, a plugin URL's password (logs_submitter's and notify_webhook's,
//! whose whole URL is a secret arg, token in the path included), a plugin arg marked secret
//! (run_in_image's `secret_env`, which the command echoes), the registry login in Docker's
//! config.json (the htpasswd registry, through `DOCKER_CONFIG`), and an environment variable.
//! Then every output is searched for each secret: stderr with `-v`, stdout, the `--dry-run`
//! plan, the result document, store_logs_to_file's and store_metadata's files, what the plugins
//! posted, and the image's labels. Once for a build that fails (its git URL, with the password,
//! refuses the connection) and once for one that succeeds (real clone, build, run and push).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::{json, Value};

use crate::util::*;

const GIT_PASSWORD: &str = "gitPw-Secret-31";
const LOGS_PASSWORD: &str = "logsPw-Secret-32";
const HOOK_PASSWORD: &str = "hookPw-Secret-33";
const HOOK_TOKEN: &str = "HookToken-Secret-34";
const ARG_SECRET: &str = "argTok-Secret-35";
const ENV_SECRET: &str = "envVar-Secret-36";
/// The htpasswd registry and its login (scripts/setup.sh).
const AUTH_REGISTRY: &str = "127.0.0.1:5001";
const REGISTRY_USER: &str = "reactor";
const REGISTRY_PASSWORD: &str = "reactor-secret";

/// Every secret as it could leak: the registry login also base64-encoded, as config.json has it.
fn secrets() -> Vec<String> {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{REGISTRY_USER}:{REGISTRY_PASSWORD}"));
    [GIT_PASSWORD, LOGS_PASSWORD, HOOK_PASSWORD, HOOK_TOKEN, ARG_SECRET, ENV_SECRET, REGISTRY_PASSWORD]
        .map(str::to_owned)
        .into_iter()
        .chain([auth])
        .collect()
}

#[track_caller]
fn assert_no_secret(what: &str, text: &str) {
    for secret in secrets() {
        assert!(!text.contains(&secret), "the secret {secret} is in {what}:\n{text}");
    }
}

/// lighttpd serving the bare repositories under `base` by smart HTTP (`git http-backend`) at
/// `http://127.0.0.1:PORT/git/`, on a port of its own.
fn git_over_http(dir: &Path, base: &Path) -> (Server, String) {
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let exec_path = git(dir, &["--exec-path"]);
    let config = format!(
        r#"server.document-root = "{base}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{dir}/lighttpd.log"
server.modules = ("mod_alias", "mod_cgi", "mod_setenv")
alias.url = ("/git" => "{exec_path}/git-http-backend")
$HTTP["url"] =^ "/git" {{
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "{base}", "GIT_HTTP_EXPORT_ALL" => "")
}}
"#,
        base = base.display(),
        dir = dir.display(),
    );
    let file = dir.join("lighttpd.conf");
    std::fs::write(&file, config).expect("write lighttpd.conf");
    let child = Command::new("lighttpd")
        .args(["-D", "-f"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start lighttpd (scripts/setup.sh installs it)");
    let server = Server(child);
    wait_for_port(port, "lighttpd");
    (server, format!("127.0.0.1:{port}/git"))
}

/// `http://user:password@host:port/path` from a `http://host:port/path` URL.
fn with_password(url: &str, user: &str, password: &str) -> String {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    format!("http://{user}:{password}@{rest}")
}

/// What one run left behind to search.
struct Outputs {
    run: Run,
    plan: Run,
    document: String,
    logs_file: String,
    metadata_file: String,
}

/// Runs the request twice, `--dry-run` then for real (`-v`, the result document, its own
/// TMPDIR, the registry login in a `DOCKER_CONFIG`, the environment secret), and gathers every
/// output; asserts the TMPDIR is left empty.
fn run_with_secrets(dir: &Path, request: &Value) -> Outputs {
    let docker_config = dir.join("docker-config");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{REGISTRY_USER}:{REGISTRY_PASSWORD}"));
    write_files(&docker_config, &[("config.json", &json!({"auths": {AUTH_REGISTRY: {"auth": auth}}}).to_string())]);
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).expect("mkdir tmp");
    let file = build_json(dir, request);
    let document = dir.join("out/result.json");
    let submitter = plugin("logs_submitter");
    let env = [
        ("DOCKER_CONFIG", docker_config.to_str().expect("utf-8")),
        ("TMPDIR", tmp.to_str().expect("utf-8")),
        ("REACTOR_TEST_API_TOKEN", ENV_SECRET),
    ];
    let plan = reactor(dir, &["-v", "--load-plugin", &submitter, "build", "json", &file, "--dry-run"], &env);
    plan.expect_code(0);
    let document_arg = document.display().to_string();
    let run = reactor(
        dir,
        &["-v", "--load-plugin", &submitter, "build", "json", &file, "--metadata-file", &document_arg],
        &env,
    );
    let left: Vec<PathBuf> = std::fs::read_dir(&tmp).expect("read TMPDIR").flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    Outputs {
        document: read("out/result.json"),
        logs_file: read("out/logs.json"),
        metadata_file: read("out/metadata.json"),
        run,
        plan,
    }
}

/// The plugin lists both runs use: every place a plugin takes a secret, and the files to search.
fn plugin_lists(dir: &Path, logs: &Listener, hook: &Listener, repo: &str) -> Value {
    let hook_url = with_password(&hook.url.replace("/submit", &format!("/hooks/{HOOK_TOKEN}")), "hook", HOOK_PASSWORD);
    json!({
        "prebuild_plugins": [{"name": "add_labels_in_dockerfile", "args": {"labels": {"name": repo}, "auto_labels": ["vcs-type", "vcs-url", "vcs-ref"]}}],
        "postbuild_plugins": [
            {"name": "run_in_image", "args": {
                // The echo shows the value reached the container, masked in every output.
                "command": "echo \"the token is $API_TOKEN\"",
                "secret_env": {"API_TOKEN": ARG_SECRET}}},
            {"name": "tag_and_push", "args": {"registries": {AUTH_REGISTRY: {"insecure": true}}}}
        ],
        "exit_plugins": [
            {"name": "logs_submitter", "args": {"url": with_password(&logs.url, "logs", LOGS_PASSWORD)}},
            {"name": "notify_webhook", "args": {"url": hook_url}},
            {"name": "store_logs_to_file", "args": {"file_path": dir.join("out/logs.json").display().to_string()}},
            {"name": "store_metadata", "args": {"path": dir.join("out/metadata.json").display().to_string()}}
        ]
    })
}

/// Searches every output of a run, and what the plugins posted (the basic-auth headers they sent
/// aside: those are meant for the server).
fn assert_nothing_leaked(outputs: &Outputs, posted: &[Received]) {
    assert_no_secret("stderr (-v)", &outputs.run.stderr);
    assert_no_secret("stdout", &outputs.run.stdout);
    assert_no_secret("the --dry-run plan", &outputs.plan.stdout);
    assert_no_secret("the --dry-run stderr", &outputs.plan.stderr);
    assert_no_secret("the result document", &outputs.document);
    assert_no_secret("store_logs_to_file's file", &outputs.logs_file);
    assert_no_secret("store_metadata's file", &outputs.metadata_file);
    for received in posted {
        assert_no_secret("a posted request line", &received.request_line.replace(HOOK_TOKEN, "(the hook's path)"));
        assert_no_secret("a posted body", &String::from_utf8_lossy(&received.body));
    }
    // What is shown instead: the user, and *** for the password and the secret args.
    assert!(outputs.plan.stdout.contains("http://reactor:***@"), "{}", outputs.plan.stdout);
    assert!(outputs.plan.stdout.contains(r#""secret_env":{"API_TOKEN":"***"}"#), "{}", outputs.plan.stdout);
    assert!(outputs.plan.stdout.contains(r#"{"url":"***"}"#), "notify_webhook's url: {}", outputs.plan.stdout);
    assert!(outputs.plan.stdout.contains("http://logs:***@127.0.0.1:"), "{}", outputs.plan.stdout);
    assert!(outputs.run.stderr.contains("cloning http://reactor:***@127.0.0.1:"), "{}", outputs.run.stderr);
}

#[test]
fn a_failed_build_prints_and_records_no_secret() {
    let dir = workdir();
    let (logs, hook) = (Listener::start("ok"), Listener::start("ok"));
    let repo = unique("secrets-failed");
    let mut request = plugin_lists(dir.path(), &logs, &hook, &repo);
    // Nothing listens on port 1: the clone is refused, with the password in the URL.
    let git_url = format!("http://reactor:{GIT_PASSWORD}@127.0.0.1:1/repo.git");
    request["source"] = json!({"provider": "git", "uri": git_url});
    request["image"] = json!(format!("{repo}:1"));
    let outputs = run_with_secrets(dir.path(), &request);
    outputs.run.expect_code(1);
    let posted = [logs.wait_for(1), hook.wait_for(1)].concat();
    assert_nothing_leaked(&outputs, &posted);

    // It failed for the reason it should, said with the password redacted, and the exit
    // plugins all ran.
    let cause = "source: cannot clone http://reactor:***@127.0.0.1:1/repo.git";
    assert!(outputs.run.errors().iter().any(|l| l.contains(cause)), "{}", outputs.run.stderr);
    let document: Value = serde_json::from_str(&outputs.document).expect("JSON");
    assert_eq!(document["exit_code"], 1);
    assert!(document["failure"]["error"].as_str().is_some_and(|e| e.starts_with(cause)), "{document}");
    assert_eq!(document["source"]["uri"], "http://reactor:***@127.0.0.1:1/repo.git");
    let ran: Vec<&str> =
        document["plugins"].as_array().expect("plugins").iter().filter_map(|p| p["key"].as_str()).collect();
    assert_eq!(ran, ["logs_submitter", "notify_webhook", "store_logs_to_file", "store_metadata"], "{document}");
    assert_eq!(hook.received().len(), 1, "the webhook was told");
    let sent: Value = hook.received()[0].json();
    assert_eq!(sent["source"]["uri"], "http://reactor:***@127.0.0.1:1/repo.git", "{sent}");
}

#[test]
fn a_build_that_clones_runs_and_pushes_with_every_secret_prints_and_records_none() {
    let dir = workdir();
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).expect("mkdir");
    let work = served.join("work");
    git_repo(&work, &[("Dockerfile", "FROM busybox:latest\nRUN echo built > /built.txt\n")]);
    git(&served, &["clone", "-q", "--bare", "work", "repo.git"]);
    let (_web, base) = git_over_http(dir.path(), &served);
    let (logs, hook) = (Listener::start("ok"), Listener::start("ok"));
    let repo = unique("secrets-ok");
    let image = format!("{repo}:1");
    let _images = Images(vec![image.clone(), format!("{AUTH_REGISTRY}/{image}")]);
    let mut request = plugin_lists(dir.path(), &logs, &hook, &repo);
    request["source"] = json!({"provider": "git", "uri": format!("http://reactor:{GIT_PASSWORD}@{base}/repo.git")});
    request["image"] = json!(image);
    let outputs = run_with_secrets(dir.path(), &request);
    outputs.run.expect_code(0);
    let posted = [logs.wait_for(1), hook.wait_for(1)].concat();
    assert_nothing_leaked(&outputs, &posted);

    // Each secret did its job: the container saw the secret arg (its echo is masked in the
    // log), the registry took the login, both URLs were posted to with their passwords.
    assert!(outputs.run.stderr.contains("the token is ***"), "{}", outputs.run.stderr);
    let document: Value = serde_json::from_str(&outputs.document).expect("JSON");
    assert_eq!(document["exit_code"], 0, "{document}");
    assert!(
        document["digests"].as_object().is_some_and(|d| d.keys().any(|k| k.starts_with(AUTH_REGISTRY))),
        "{document}"
    );
    let stdout = result_in(&document, "postbuild", "run_in_image")["stdout"].clone();
    assert_eq!(stdout, json!("the token is ***\n"), "{document}");
    for (listener, user, password) in [(&logs, "logs", LOGS_PASSWORD), (&hook, "hook", HOOK_PASSWORD)] {
        let received = listener.received();
        assert_eq!(received.len(), 1, "one POST to {}", listener.url);
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let authorization = received[0].headers.iter().find(|(k, _)| k == "authorization").map(|(_, v)| v.clone());
        assert_eq!(authorization, Some(format!("Basic {basic}")), "the password was sent where it belongs");
    }
    assert!(hook.received()[0].request_line.contains(HOOK_TOKEN), "the hook was posted to its own path");

    // run_in_image's container is gone.
    let containers = docker(&["ps", "-aq", "--filter", &format!("ancestor={image}")]);
    assert_eq!(String::from_utf8_lossy(&containers.stdout).trim(), "", "containers left behind");

    // The image's labels hold no secret either: vcs-url keeps the user, not the password.
    let inspected = docker(&["inspect", "--format", "{{json .Config.Labels}}", &image]);
    let labels = String::from_utf8_lossy(&inspected.stdout);
    assert!(labels.contains("\"vcs-url\":\"http://reactor@127.0.0.1:"), "{labels}");
    assert_no_secret("the image's labels", &labels);
}
