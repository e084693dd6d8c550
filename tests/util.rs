//! Helpers the tests share: running reactor, building the plugin fixtures, making git
//! repositories, listening for HTTP posts, asking the engine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The outcome of one reactor run.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Fails the test, showing reactor's output, unless it exited with `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(code),
            "reactor exited {:?}, expected {code}\n--- stderr ---\n{}",
            self.code,
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked at") || self.stderr.contains("plugin"),
            "reactor itself panicked:\n{}",
            self.stderr
        );
        self
    }

    /// The lines of stderr at ERROR level.
    pub fn errors(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.contains(" ERROR ")).collect()
    }
}

/// Runs reactor with `args` in `dir`, with `env` added. A run that got as far as the engine
/// (not a dry run, not refused input) fails the test loudly when there is no engine, so tests of
/// validation need none and a build never passes for want of one.
pub fn reactor(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reactor"));
    cmd.current_dir(dir).args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run reactor");
    if !args.contains(&"--dry-run") && !matches!(out.status.code(), Some(2 | 3)) {
        engine_is_up();
    }
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Fails loudly, once, when there is no engine: these tests never skip themselves.
pub fn engine_is_up() {
    static UP: OnceLock<()> = OnceLock::new();
    UP.get_or_init(|| {
        let out = Command::new("docker").args(["version", "-f", "{{.Server.Version}}"]).output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!("no Docker engine answers (run scripts/setup.sh): {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => panic!("no docker CLI (run scripts/setup.sh): {e}"),
        }
    });
}

/// The cargo target directory these tests were built into.
fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").to_path_buf()
}

/// The path of a plugin fixture's shared object, built on first use (`cargo test` builds
/// the reactor binary but not the workspace's cdylibs).
pub fn plugin(name: &str) -> String {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "logs_submitter",
                "-p",
                "test_plugins",
                "-p",
                "test_puller",
                "-p",
                "test_invalid",
                "-p",
                "test_named",
                "-p",
                "builtins_module",
                "-p",
                "test_isolation",
            ])
            .env("CARGO_TARGET_DIR", target_dir())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the plugin fixtures failed");
    });
    let path = target_dir().join("debug").join(format!("lib{name}.so"));
    assert!(path.is_file(), "{} was not built", path.display());
    path.display().to_string()
}

/// A fresh directory for one test, removed at the end.
pub fn workdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("reactor-test-").tempdir().expect("tempdir")
}

/// A name no other test uses, for images.
pub fn unique(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("reactor-test-{name}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// Writes `files` (path, content) under `dir`.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }
}

/// Runs git in `dir`, returning its trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=reactor tests",
            "-c",
            "user.email=tests@reactor.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Makes `dir` a git repository whose one commit holds `files`; returns the commit's SHA.
pub fn git_repo(dir: &Path, files: &[(&str, &str)]) -> String {
    std::fs::create_dir_all(dir).expect("mkdir");
    git(dir, &["init", "-q"]);
    git_commit(dir, files, "first")
}

/// Commits `files` on the current branch; returns the SHA.
pub fn git_commit(dir: &Path, files: &[(&str, &str)], message: &str) -> String {
    write_files(dir, files);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

/// Writes a build.json into `dir`.
pub fn build_json(dir: &Path, value: &Value) -> String {
    let path = dir.join("build.json");
    std::fs::write(&path, serde_json::to_string_pretty(value).expect("json")).expect("write build.json");
    path.display().to_string()
}

/// Waits, at most 10 s, until a server (`what`, for the failure) listens on loopback `port`.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start listening on {port}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A server process, killed at the end of the test.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Builds a test's own fixture image `tag` from `context` with the docker CLI (classic builder),
/// failing the test when it cannot. The engine's classic builder, under the suite's concurrent
/// builds and removals, now and then loses the image a step has just committed ("unable to find
/// image sha256:…", seen about once in ten full runs): the build is tried again then, 3 times at
/// most.
pub fn docker_build(tag: &str, context: &Path) {
    let mut attempts = 0;
    let out = loop {
        attempts += 1;
        let out = Command::new("docker")
            .args(["build", "-q", "-t", tag])
            .arg(context)
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .expect("run docker build");
        let lost = String::from_utf8_lossy(&out.stderr).contains("unable to find image");
        if out.status.success() || !lost || attempts == 3 {
            break out;
        }
    };
    assert!(out.status.success(), "docker build {tag}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs the docker CLI.
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("run docker")
}

/// What `docker run --rm IMAGE` prints.
pub fn docker_run(image: &str, cmd: &[&str]) -> String {
    let mut args = vec!["run", "--rm", image];
    args.extend_from_slice(cmd);
    let out = docker(&args);
    assert!(out.status.success(), "docker run {image}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a registry answers for a manifest, asked as the docker CLI asks (schema 2).
pub struct Manifest {
    /// The HTTP status.
    pub status: u16,
    /// Its `Docker-Content-Digest`, when served.
    pub digest: Option<String>,
}

/// HEADs `http://REGISTRY/v2/REPOSITORY/manifests/REFERENCE` (a tag or a digest), with
/// `login` (`user:password`) when given.
pub fn registry_manifest(registry: &str, repository: &str, reference: &str, login: Option<&str>) -> Manifest {
    let mut curl = Command::new("curl");
    curl.args(["-s", "-I", "-H", "Accept: application/vnd.docker.distribution.manifest.v2+json"]);
    if let Some(login) = login {
        curl.args(["-u", login]);
    }
    let url = format!("http://{registry}/v2/{repository}/manifests/{reference}");
    let out = curl.arg(&url).output().expect("run curl");
    assert!(out.status.success(), "curl -I {url}: {}", String::from_utf8_lossy(&out.stderr));
    let headers = String::from_utf8_lossy(&out.stdout);
    let status = headers.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("an HTTP status");
    let digest = headers.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case("docker-content-digest").then(|| value.trim().to_owned())
    });
    Manifest { status, digest }
}

/// The digest `registry` serves for `repository:tag`; fails the test when it serves none.
pub fn served_digest(registry: &str, repository: &str, tag: &str, login: Option<&str>) -> String {
    let manifest = registry_manifest(registry, repository, tag, login);
    match manifest.digest {
        Some(digest) if manifest.status == 200 => digest,
        _ => panic!("{registry} serves no manifest for {repository}:{tag} (HTTP {})", manifest.status),
    }
}

/// Removes images at the end of a test, even a failing one.
pub struct Images(pub Vec<String>);

/// Removes images at the end of a test, even a failing one, from the engine that `.0` (the
/// docker CLI with that engine's flags) speaks to.
pub struct ImagesOn<F: Fn(&[&str]) -> Output>(pub F, pub Vec<String>);

impl<F: Fn(&[&str]) -> Output> Drop for ImagesOn<F> {
    fn drop(&mut self) {
        for image in &self.1 {
            let _ = (self.0)(&["rmi", "-f", image]);
        }
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        for image in &self.0 {
            let _ = docker(&["rmi", "-f", image]);
        }
    }
}

/// One HTTP request a [`Listener`] received.
#[derive(Clone, Debug)]
pub struct Received {
    pub request_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }
}

/// A real HTTP listener on loopback that records every request and answers 200 with `reply`.
pub struct Listener {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Listener {
    pub fn start(reply: &'static str) -> Listener {
        let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/submit", socket.local_addr().expect("addr"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        std::thread::spawn(move || {
            for stream in socket.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut headers = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.trim_end().split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                    }
                }
                let length =
                    headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                store.lock().expect("lock").push(Received {
                    request_line: request_line.trim_end().to_owned(),
                    headers,
                    body,
                });
                let mut stream = reader.into_inner();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        Listener { url, received }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits a little for `n` requests (the plugin's POST has returned before reactor exits, so
    /// this only covers the listener thread's own bookkeeping).
    pub fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.received().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.received()
    }
}

/// One build: its run, what the recorders wrote (phase and label per line), and the result document.
pub struct Outcome {
    pub run: Run,
    pub record: String,
    pub doc: Value,
}

/// The harness most end-to-end tests share: builds `dockerfile` (from a git repository made in
/// `dir`) with these plugin lists (the recorder's `path` filled in) and the
/// test fixtures loaded.
pub fn build(dir: &Path, dockerfile: &str, mut lists: Value, extra_args: &[&str]) -> Outcome {
    let record = dir.join("record.txt");
    let _ = std::fs::remove_file(&record);
    fill_paths(&mut lists, &record.display().to_string());
    if !dir.join("repo").exists() {
        git_repo(&dir.join("repo"), &[("Dockerfile", dockerfile)]);
    }
    let image = unique("wf");
    let mut request = json!({"image": image, "git_url": "repo"});
    for (k, v) in lists.as_object().expect("lists").clone() {
        request[k] = v;
    }
    let file = build_json(dir, &request);
    let metadata = dir.join("out/metadata.json");
    let so = plugin("test_plugins");
    let mut args = vec!["--load-plugin", so.as_str(), "build", "json", file.as_str()];
    let metadata_arg = metadata.display().to_string();
    args.extend(["--metadata-file", metadata_arg.as_str()]);
    args.extend_from_slice(extra_args);
    let run = reactor(dir, &args, &[]);
    let _ = docker(&["rmi", "-f", &image]);
    let doc = std::fs::read_to_string(&metadata)
        .map(|t| serde_json::from_str(&t).expect("metadata is JSON"))
        .unwrap_or(Value::Null);
    Outcome { run, record: std::fs::read_to_string(&record).unwrap_or_default(), doc }
}

/// Puts `path` into every plugin entry's args that names a `path` of "RECORD".
fn fill_paths(value: &mut Value, path: &str) {
    match value {
        Value::String(s) if s == "RECORD" => *s = path.to_owned(),
        Value::Array(items) => items.iter_mut().for_each(|v| fill_paths(v, path)),
        Value::Object(map) => map.values_mut().for_each(|v| fill_paths(v, path)),
        _ => {}
    }
}

/// The result of the run of plugin `key` in `phase`, from the result document.
pub fn result_in(doc: &Value, phase: &str, key: &str) -> Value {
    let runs = doc["plugins"].as_array().unwrap_or_else(|| panic!("no plugin runs: {doc}"));
    runs.iter().find(|r| r["key"] == key && r["phase"] == phase).unwrap_or_else(|| panic!("{phase} {key} ran: {doc}"))
        ["result"]
        .clone()
}

/// A reactor run in the background whose stderr is collected as it comes.
pub struct Background {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Background {
    /// Starts reactor in `dir` with `args` and `env` added; with `own_group`, in a process group
    /// of its own, as a shell job is (so that a signal can reach the whole group, as Ctrl-C does).
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)], own_group: bool) -> Background {
        engine_is_up();
        let mut command = Command::new(env!("CARGO_BIN_EXE_reactor"));
        command.current_dir(dir).args(args).env_remove("RUST_LOG").stderr(Stdio::piped()).stdout(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        if own_group {
            command.process_group(0);
        }
        let mut child = command.spawn().expect("start reactor");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (pipe, sink) = (child.stderr.take().expect("stderr"), stderr.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut text = sink.lock().expect("lock");
                text.push_str(&line);
                text.push('\n');
            }
        });
        Background { child, stderr }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// reactor's process id (the `io.reactor.pid` label of the containers it starts).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `ready` holds, failing after 60 s.
    pub fn wait_until(&self, what: &str, ready: impl Fn(&Background) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` to reactor alone, or to its whole process group as a terminal's Ctrl-C does.
    pub fn signal(&self, signal: &str, whole_group: bool) {
        let target = if whole_group { format!("-{}", self.child.id()) } else { self.child.id().to_string() };
        let status = Command::new("kill").args([&format!("-{signal}"), "--", &target]).status().expect("kill");
        assert!(status.success());
    }

    /// Waits for reactor to end (at most 60 s): its exit code and stderr.
    pub fn wait(self) -> (Option<i32>, String) {
        self.wait_up_to(Duration::from_secs(60))
    }

    /// Waits for reactor to end (at most `limit`, then kills it and fails): its exit code and stderr.
    pub fn wait_up_to(mut self, limit: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                std::thread::sleep(Duration::from_millis(100)); // let the reader drain the pipe
                return (status.code(), self.stderr());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("reactor did not stop:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
