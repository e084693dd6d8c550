//! Faults of the network and of plugins that never return, end to end: a logs or webhook URL
//! that refuses the connection or accepts it and never answers, a POST that waits when the build
//! is cancelled, a plugin that ignores the cancellation, and an exit plugin that hangs past the
//! exit phase's limit. Each test asserts the exit code, that the exit plugins ran, that the
//! result document was written and names the cause, and that nothing is left in reactor's TMPDIR
//! nor any of the build's containers on the engine.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::util::*;

/// One build of a fault: a git repository whose Dockerfile runs a step marked with a unique
/// word (to find its containers), reactor's own TMPDIR, the image removed at the end.
struct Fault {
    dir: tempfile::TempDir,
    image: String,
    marker: String,
    _cleanup: Images,
}

impl Fault {
    fn new(name: &str) -> Fault {
        let dir = workdir();
        let image = unique(name);
        let marker = unique("marker");
        git_repo(&dir.path().join("repo"), &[("Dockerfile", &format!("FROM busybox:latest\nRUN echo {marker}\n"))]);
        std::fs::create_dir_all(dir.path().join("tmp")).expect("mkdir tmp");
        Fault { _cleanup: Images(vec![image.clone()]), dir, image, marker }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The build.json: this fault's image and repository, with `lists` (the plugin lists).
    fn build_json(&self, lists: Value) -> String {
        let mut request = json!({"image": self.image, "git_url": "repo"});
        for (key, value) in lists.as_object().expect("plugin lists").clone() {
            request[key] = value;
        }
        build_json(self.dir.path(), &request)
    }

    /// reactor's arguments: both plugin fixtures loaded, the result document asked for.
    fn args<'a>(&self, file: &'a str, so: &'a [String; 2], extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["--load-plugin", so[0].as_str(), "--load-plugin", so[1].as_str(), "build", "json", file];
        args.extend(["--metadata-file", "metadata.json"]);
        args.extend_from_slice(extra);
        args
    }

    fn tmpdir(&self) -> String {
        self.path("tmp").display().to_string()
    }

    /// Runs reactor to its end.
    fn run(&self, lists: Value, extra: &[&str]) -> Run {
        let file = self.build_json(lists);
        let so = [plugin("logs_submitter"), plugin("test_plugins")];
        reactor(self.dir.path(), &self.args(&file, &so, extra), &[("TMPDIR", &self.tmpdir())])
    }

    /// Starts reactor in the background.
    fn start(&self, lists: Value, extra: &[&str]) -> Background {
        let file = self.build_json(lists);
        let so = [plugin("logs_submitter"), plugin("test_plugins")];
        Background::start(self.dir.path(), &self.args(&file, &so, extra), &[("TMPDIR", &self.tmpdir())], false)
    }

    fn metadata(&self) -> Value {
        let text = std::fs::read_to_string(self.path("metadata.json")).expect("the result document is written");
        serde_json::from_str(&text).expect("the result document is JSON")
    }

    /// What the exit recorder wrote: `exit <label>` when it ran.
    fn recorded(&self) -> String {
        std::fs::read_to_string(self.path("record.txt")).unwrap_or_default()
    }

    /// Nothing of the build is left: no file in reactor's TMPDIR, no container that ran its step.
    fn assert_nothing_left(&self) {
        let left: Vec<_> = std::fs::read_dir(self.path("tmp")).expect("tmp").collect();
        assert!(left.is_empty(), "left in TMPDIR: {left:?}");
        let ps = docker(&["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]);
        assert!(ps.status.success(), "docker ps: {}", String::from_utf8_lossy(&ps.stderr));
        assert!(!String::from_utf8_lossy(&ps.stdout).contains(&self.marker), "a container of the build is left");
    }

    /// The exit plugin that records it ran.
    fn exit_recorder(&self) -> Value {
        json!({"name": "recorder", "args": {"path": self.path("record.txt"), "label": "ran"}})
    }
}

/// A port on 127.0.0.1 that refuses connections for as long as it is held: a socket bound to it
/// that does not listen. (A listener bound and dropped frees the port, which a test running in
/// parallel may take before reactor connects.)
struct RefusingPort {
    fd: libc::c_int,
    port: u16,
}

impl RefusingPort {
    fn new() -> RefusingPort {
        // SAFETY: plain socket calls on a socket this struct owns; the address structs are
        // fully initialised and their sizes given.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let mut address: libc::sockaddr_in = std::mem::zeroed();
            address.sin_family = libc::AF_INET as libc::sa_family_t;
            address.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            let size = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let bound = libc::bind(fd, (&raw const address).cast(), size);
            assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
            let mut length = size;
            let named = libc::getsockname(fd, (&raw mut address).cast(), &mut length);
            assert_eq!(named, 0, "getsockname: {}", std::io::Error::last_os_error());
            RefusingPort { fd, port: u16::from_be(address.sin_port) }
        }
    }

    /// Its URL, with a user and password when `password`.
    fn url(&self, password: bool) -> String {
        let userinfo = if password { "bot:s3cr3t@" } else { "" };
        format!("http://{userinfo}127.0.0.1:{}/hook", self.port)
    }
}

impl Drop for RefusingPort {
    fn drop(&mut self) {
        // SAFETY: the socket is this struct's own, closed once.
        unsafe { libc::close(self.fd) };
    }
}

/// A server that accepts connections and never answers, for as long as the test runs; its URL
/// and how many connections it has accepted.
fn silent_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut sink = [0u8; 4096];
                while stream.read(&mut sink).map(|n| n > 0).unwrap_or(false) {}
            });
        }
    });
    (url, accepted)
}

fn silent_url() -> String {
    silent_server().0
}

/// The run of plugin `key` in `phase` in the result document.
fn run_of(doc: &Value, phase: &str, key: &str) -> Value {
    let runs = doc["plugins"].as_array().unwrap_or_else(|| panic!("no plugin runs: {doc}"));
    runs.iter()
        .find(|r| r["key"] == key && r["phase"] == phase)
        .cloned()
        .unwrap_or_else(|| panic!("{phase} {key}: {doc}"))
}

#[test]
fn logs_submitter_to_a_url_that_refuses_fails_the_build_naming_the_url_without_its_password() {
    let fault = Fault::new("net-logs-refused");
    let refusing = RefusingPort::new();
    let url = refusing.url(true);
    let run = fault.run(
        json!({"postbuild_plugins": [{"name": "logs_submitter", "args": {"url": url}, "is_allowed_to_fail": false}],
               "exit_plugins": [fault.exit_recorder()]}),
        &[],
    );
    run.expect_code(1);
    assert_eq!(fault.recorded(), "exit ran\n");
    let doc = fault.metadata();
    assert_eq!((doc["status"].as_str(), doc["exit_code"].as_i64()), (Some("failed"), Some(1)));
    assert_eq!(doc["failure"]["plugin"], "logs_submitter");
    let error = doc["failure"]["error"].as_str().expect("error");
    let shown = url.replace("s3cr3t", "***");
    assert!(error.contains(&format!("POST {shown}: ")), "{error}");
    assert!(error.ends_with("check that the server is up and listening there"), "{error}");
    assert!(!run.stderr.contains("s3cr3t") && !doc.to_string().contains("s3cr3t"), "the password is shown");
    fault.assert_nothing_left();
}

#[test]
fn logs_submitter_to_a_silent_server_fails_at_its_timeout_saying_so() {
    let fault = Fault::new("net-logs-silent");
    let url = silent_url();
    let run = fault.run(
        json!({"postbuild_plugins": [{"name": "logs_submitter", "args": {"url": url, "timeout": 1},
                                      "is_allowed_to_fail": false}],
               "exit_plugins": [fault.exit_recorder()]}),
        &[],
    );
    run.expect_code(1);
    assert_eq!(fault.recorded(), "exit ran\n");
    let doc = fault.metadata();
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["failure"]["plugin"], "logs_submitter");
    assert_eq!(
        doc["failure"]["error"],
        format!(
            "postbuild plugin 'logs_submitter' failed: POST {url}: no answer within 1 s (the 'timeout' arg): check the server, or raise 'timeout'"
        )
    );
    fault.assert_nothing_left();
}

#[test]
fn notify_webhook_to_a_url_that_refuses_is_tolerated_and_its_result_says_why() {
    let fault = Fault::new("net-hook-refused");
    let refusing = RefusingPort::new();
    let url = refusing.url(true);
    let run = fault
        .run(json!({"exit_plugins": [{"name": "notify_webhook", "args": {"url": url}}, fault.exit_recorder()]}), &[]);
    // A notification does not fail the build by default, as atomic-reactor's sendmail.
    run.expect_code(0);
    assert_eq!(fault.recorded(), "exit ran\n");
    let doc = fault.metadata();
    assert_eq!(doc["status"], "succeeded");
    let result = result_in(&doc, "exit", "notify_webhook");
    let error = result["error"].as_str().expect("the failure is the result");
    // The webhook's URL is a secret arg: never shown, not even without its password.
    assert!(error.starts_with("POST ***: "), "{error}");
    assert!(!run.stderr.contains(&url.replace("s3cr3t", "***")), "{}", run.stderr);
    assert!(run.stderr.contains("exit plugin 'notify_webhook' failed: POST "), "{}", run.stderr);
    assert!(!run.stderr.contains("s3cr3t") && !doc.to_string().contains("s3cr3t"), "the password is shown");
    fault.assert_nothing_left();
}

#[test]
fn notify_webhook_to_a_silent_server_fails_at_its_timeout_when_it_must_not_fail() {
    let fault = Fault::new("net-hook-silent");
    let url = silent_url();
    let run = fault.run(
        json!({"exit_plugins": [{"name": "notify_webhook", "args": {"url": url, "timeout": 0.5}, "is_allowed_to_fail": false},
                                fault.exit_recorder()]}),
        &[],
    );
    run.expect_code(1);
    assert_eq!(fault.recorded(), "exit ran\n", "the exit plugins after it still ran");
    let doc = fault.metadata();
    assert_eq!(doc["status"], "failed");
    assert_eq!(
        (doc["failure"]["phase"].as_str(), doc["failure"]["plugin"].as_str()),
        (Some("exit"), Some("notify_webhook"))
    );
    let error = doc["failure"]["error"].as_str().expect("error");
    assert!(
        error.ends_with("POST ***: no answer within 0.5 s (the 'timeout' arg): check the server, or raise 'timeout'"),
        "{error}"
    );
    fault.assert_nothing_left();
}

#[test]
fn sigterm_while_logs_submitter_waits_for_a_silent_server_abandons_the_post() {
    let fault = Fault::new("net-logs-cancel");
    let (url, accepted) = silent_server();
    // The timeout is an hour, the grace period longer than this test waits: only the plugin's
    // own watch for the cancellation can end it.
    let run = fault.start(
        json!({"postbuild_plugins": [{"name": "logs_submitter", "args": {"url": url, "timeout": 3600}}],
               "exit_plugins": [fault.exit_recorder()]}),
        &["--cancel-grace", "3600"],
    );
    run.wait_until("the POST's connection", |_| accepted.load(Ordering::SeqCst) > 0);
    run.signal("TERM", false);
    let (code, stderr) = run.wait();

    assert_eq!(code, Some(143), "{stderr}");
    assert_eq!(fault.recorded(), "exit ran\n");
    let doc = fault.metadata();
    assert_eq!((doc["status"].as_str(), doc["exit_code"].as_i64()), (Some("cancelled"), Some(143)));
    assert_eq!(doc["failure"]["error"], "cancelled by SIGTERM");
    let post = run_of(&doc, "postbuild", "logs_submitter");
    assert_eq!(post["status"], "failed", "it returned, not abandoned: {post}");
    assert_eq!(
        post["result"],
        json!({"error": format!("POST {url}: abandoned, the build was cancelled"), "kind": "cancelled"})
    );
    fault.assert_nothing_left();
}

#[test]
fn a_plugin_that_never_returns_is_abandoned_after_the_grace_period() {
    let fault = Fault::new("net-never");
    let started = fault.path("started.txt");
    let run = fault.start(
        json!({"prebuild_plugins": [{"name": "slow", "args": {"path": started, "seconds": 1e9, "ignore_cancel": true}}],
               "exit_plugins": [fault.exit_recorder()]}),
        &["--cancel-grace", "1"],
    );
    run.wait_until("the plugin that never returns", |_| started.exists());
    run.signal("TERM", false);
    let (code, stderr) = run.wait();

    assert_eq!(code, Some(143), "{stderr}");
    assert!(
        stderr.contains("prebuild plugin 'slow' abandoned: still running 1 s after the cancellation (--cancel-grace)"),
        "{stderr}"
    );
    assert_eq!(fault.recorded(), "exit ran\n");
    let doc = fault.metadata();
    assert_eq!((doc["status"].as_str(), doc["exit_code"].as_i64()), (Some("cancelled"), Some(143)));
    let slow = run_of(&doc, "prebuild", "slow");
    assert_eq!(slow["status"], "abandoned");
    assert_eq!(slow["error"], "abandoned: still running 1 s after the cancellation (--cancel-grace)");
    fault.assert_nothing_left();
}

#[test]
fn an_exit_plugin_that_hangs_is_abandoned_at_the_exit_timeout_and_reactor_ends_cancelled() {
    let fault = Fault::new("net-exit-hang");
    let started = fault.path("started.txt");
    let run = fault.start(
        json!({"exit_plugins": [fault.exit_recorder(),
                                {"name": "slow", "args": {"path": started, "seconds": 1e9, "ignore_cancel": true}},
                                {"name": "recorder", "args": {"path": fault.path("after.txt"), "label": "after"}}]}),
        &["--exit-timeout", "2"],
    );
    run.wait_until("the exit plugin that hangs", |_| started.exists());
    run.signal("TERM", false);
    let (code, stderr) = run.wait();

    assert_eq!(code, Some(143), "{stderr}");
    assert!(stderr.contains("received SIGTERM: cancelling the build"), "{stderr}");
    assert!(stderr.contains("build cancelled by SIGTERM; exit plugin 'slow' abandoned: still running at the exit phase's limit, 2 s after the cancellation (--exit-timeout)"), "{stderr}");
    assert_eq!(fault.recorded(), "exit ran\n", "the exit plugin before it ran");
    assert!(!fault.path("after.txt").exists(), "none runs after the limit");
    assert!(
        stderr.contains("exit plugin 'recorder' not run: the exit phase's limit (--exit-timeout) is over"),
        "{stderr}"
    );
    let doc = fault.metadata();
    assert_eq!((doc["status"].as_str(), doc["exit_code"].as_i64()), (Some("cancelled"), Some(143)));
    assert_eq!((doc["failure"]["phase"].as_str(), doc["failure"]["plugin"].as_str()), (Some("exit"), Some("slow")));
    let error = doc["failure"]["error"].as_str().expect("error");
    assert!(error.starts_with("cancelled by SIGTERM; exit plugin 'slow' abandoned"), "{error}");
    assert_eq!(run_of(&doc, "exit", "slow")["status"], "abandoned");
    fault.assert_nothing_left();
}

#[test]
fn bad_timeouts_are_refused_before_anything_runs() {
    let fault = Fault::new("net-bad-timeout");
    let run = fault.run(
        json!({"postbuild_plugins": [{"name": "logs_submitter", "args": {"url": "http://127.0.0.1:9/", "timeout": "soon"}}],
               "exit_plugins": [{"name": "notify_webhook", "args": {"url": "http://127.0.0.1:9/", "timeout": -1}}]}),
        &[],
    );
    run.expect_code(2);
    let errors = run.errors().join("\n");
    assert!(errors.contains("/postbuild_plugins/0/args/timeout"), "{errors}");
    assert!(errors.contains("/exit_plugins/0/args/timeout"), "{errors}");
    let run = reactor(fault.dir.path(), &["build", "json", "build.json", "--exit-timeout=-1"], &[]);
    run.expect_code(2);
    assert!(run.stderr.contains("'-1' is not a number of seconds"), "{}", run.stderr);
    fault.assert_nothing_left();
}
