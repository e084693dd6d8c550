//! Faults while fetching the source, end to end: a git server that accepts and never answers
//! (over git:// and http://) is cut off by the timeout, or by SIGTERM; a SIGKILLed reactor's
//! temporary source is collected by the next run; a TMPDIR that fills up is named. Each asserts
//! the exit code, that the exit plugins ran, that the result document names the cause, and that
//! TMPDIR is left empty.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::util::*;

/// A server on loopback that accepts every connection and never sends a byte: its port, and
/// how many connections it has accepted. It lives as long as the test process.
fn silent_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        // Held open, unread, so that the client waits.
        let mut held: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, accepted)
}

/// The URLs of a silent server, one per network transport reactor fetches over.
fn silent_urls(port: u16) -> [String; 2] {
    [format!("git://127.0.0.1:{port}/r.git"), format!("http://127.0.0.1:{port}/r.git")]
}

/// `dir/tmp`, made empty: the TMPDIR each reactor of these tests runs with.
fn tmpdir(dir: &Path) -> PathBuf {
    let tmp = dir.join("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("mkdir tmp");
    tmp
}

/// What is left in `tmp`.
fn left_in(tmp: &Path) -> Vec<String> {
    let entries = std::fs::read_dir(tmp).expect("read tmp");
    entries.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect()
}

/// A build.json in `dir` for `git_url`, with an exit plugin that records it ran in `dir/record.txt`.
fn request(dir: &Path, git_url: &str) -> String {
    let record = dir.join("record.txt");
    let _ = std::fs::remove_file(&record);
    let _ = std::fs::remove_file(dir.join("metadata.json"));
    build_json(
        dir,
        &json!({"image": unique("fault-source"), "git_url": git_url,
        "exit_plugins": [{"name": "recorder", "args": {"path": record, "label": "ran"}}]}),
    )
}

/// What the exit plugin recorded.
fn recorded(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("record.txt")).unwrap_or_default()
}

fn metadata(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("metadata.json")).expect("the result document was written");
    serde_json::from_str(&text).expect("JSON")
}

/// Starts reactor on the build.json `file` in the background with TMPDIR `tmp`.
fn start(dir: &Path, file: &str, tmp: &Path, extra: &[&str]) -> Background {
    let so = plugin("test_plugins");
    let mut args = vec!["--load-plugin", so.as_str(), "build", "json", file, "--metadata-file", "metadata.json"];
    args.extend_from_slice(extra);
    Background::start(dir, &args, &[("TMPDIR", &tmp.display().to_string())], false)
}

#[test]
fn sigterm_during_a_hung_fetch_ends_it_with_143_and_leaves_nothing() {
    let dir = workdir();
    let (port, accepted) = silent_server();
    for url in silent_urls(port) {
        let tmp = tmpdir(dir.path());
        let file = request(dir.path(), &url);
        let before = accepted.load(Ordering::SeqCst);
        let run = start(dir.path(), &file, &tmp, &[]);
        run.wait_until("the fetch to connect", |_| accepted.load(Ordering::SeqCst) > before);
        assert_eq!(left_in(&tmp).len(), 1, "the fetch has its temporary directory");
        run.signal("TERM", false);
        let (code, stderr) = run.wait();

        assert_eq!(code, Some(143), "{url}: {stderr}");
        assert!(stderr.contains("the fetch did not stop within 1 s of the cancellation: abandoned"), "{stderr}");
        assert_eq!(recorded(dir.path()), "exit ran\n", "{url}: the exit plugin ran");
        let doc = metadata(dir.path());
        assert_eq!(doc["status"], "cancelled", "{url}");
        assert_eq!(doc["exit_code"], 143);
        assert_eq!(doc["failure"]["error"], "cancelled by SIGTERM");
        assert_eq!(left_in(&tmp), Vec::<String>::new(), "{url}: TMPDIR is left empty");
    }
}

#[test]
fn a_silent_server_times_out_with_the_url_and_what_to_do() {
    let dir = workdir();
    let (port, _) = silent_server();
    let [git_url, http_url] = silent_urls(port);
    // Credentials in the URL never reach the message.
    let http_url = http_url.replace("http://", "http://builder:s3cr3t@");
    for (url, shown) in [(git_url.clone(), git_url), (http_url, format!("http://builder:***@127.0.0.1:{port}/r.git"))] {
        let tmp = tmpdir(dir.path());
        let file = request(dir.path(), &url);
        let tmp_env = tmp.display().to_string();
        let so = plugin("test_plugins");
        let run = reactor(
            dir.path(),
            &["--load-plugin", &so, "build", "json", &file, "--metadata-file", "metadata.json", "--git-timeout", "1"],
            &[("TMPDIR", &tmp_env)],
        );
        run.expect_code(1);
        let expected = format!(
            "source: cannot clone {shown}: the server sent nothing for 1 s; check that the server is up and \
             serves the repository, or allow more time with --git-timeout SECONDS (REACTOR_GIT_TIMEOUT)"
        );
        let errors = run.errors();
        assert!(errors.iter().any(|l| l.ends_with(&expected)), "{url}: {}", run.stderr);
        assert_eq!(recorded(dir.path()), "exit ran\n", "{url}: the exit plugin ran");
        let doc = metadata(dir.path());
        assert_eq!(doc["status"], "failed");
        assert_eq!(doc["exit_code"], 1);
        assert_eq!(doc["failure"]["phase"], "source");
        assert_eq!(doc["failure"]["error"], expected.as_str());
        assert_eq!(left_in(&tmp), Vec::<String>::new(), "{url}: TMPDIR is left empty");
    }
    // The environment sets it too.
    let tmp = tmpdir(dir.path());
    let file = request(dir.path(), &format!("git://127.0.0.1:{port}/r.git"));
    let tmp_env = tmp.display().to_string();
    let so = plugin("test_plugins");
    let run = reactor(
        dir.path(),
        &["--load-plugin", &so, "build", "json", &file, "--metadata-file", "metadata.json"],
        &[("TMPDIR", &tmp_env), ("REACTOR_GIT_TIMEOUT", "0.5")],
    );
    run.expect_code(1);
    assert!(run.stderr.contains("the server sent nothing for 0.5 s"), "{}", run.stderr);
    assert_eq!(recorded(dir.path()), "exit ran\n");
    assert_eq!(left_in(&tmp), Vec::<String>::new());
}

#[test]
fn a_sigkilled_reactors_temporary_source_is_collected_by_the_next_run() {
    let dir = workdir();
    let (port, accepted) = silent_server();
    let tmp = tmpdir(dir.path());
    let file = request(dir.path(), &format!("git://127.0.0.1:{port}/r.git"));
    let run = start(dir.path(), &file, &tmp, &[]);
    run.wait_until("the fetch to connect", |_| accepted.load(Ordering::SeqCst) > 0);
    run.signal("KILL", false);
    let (code, _) = run.wait();
    assert_eq!(code, None, "killed");
    let left = left_in(&tmp);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with("reactor-source-"), "{left:?}");
    // A live process's directory (this test's), and another program's, are not touched; one of
    // this pid with another start time belongs to a process that is gone (a reused pid).
    let (pid, pidns) = (std::process::id(), pid_namespace());
    let me = format!("reactor-source-{pid}-{}-{pidns}-live", start_time());
    let twin = tmp.join(format!("reactor-source-{pid}-1-{pidns}-twin"));
    for made in [tmp.join(&me), twin.clone(), tmp.join("someone-else")] {
        std::fs::create_dir_all(made).expect("mkdir");
    }

    // The next run, whatever it builds, removes the leftover; this one fails at once.
    let file = request(dir.path(), "missing-repo");
    let tmp_env = tmp.display().to_string();
    let so = plugin("test_plugins");
    let next = reactor(
        dir.path(),
        &["--load-plugin", &so, "build", "json", &file, "--metadata-file", "metadata.json"],
        &[("TMPDIR", &tmp_env)],
    );
    next.expect_code(1);
    let leftover = tmp.join(&left[0]);
    assert!(
        next.stderr.contains(&format!("removed {}, left behind by reactor process", leftover.display())),
        "{}",
        next.stderr
    );
    let missing = dir.path().join("missing-repo");
    let expected = format!("source: the git repository {} does not exist (check source.uri)", missing.display());
    assert!(next.errors().iter().any(|l| l.ends_with(&expected)), "{}", next.stderr);
    assert_eq!(recorded(dir.path()), "exit ran\n");
    assert_eq!(metadata(dir.path())["failure"]["error"], expected.as_str());
    let mut left = left_in(&tmp);
    left.sort();
    assert_eq!(left, [me.as_str(), "someone-else"], "the leftover and the dead twin are gone, the rest is not");
    assert!(!twin.exists());
}

/// This process's pid namespace, as reactor reads it: the inode of `/proc/self/ns/pid`.
fn pid_namespace() -> u64 {
    let link = std::fs::read_link("/proc/self/ns/pid").expect("/proc/self/ns/pid");
    let link = link.to_str().expect("text").to_owned();
    link.trim_start_matches("pid:[").trim_end_matches(']').parse().expect("an inode number")
}

/// This process's start time, as reactor reads it: field 22 of `/proc/self/stat`.
fn start_time() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let after_name = &stat[stat.rfind(')').expect("name") + 1..];
    after_name.split_whitespace().nth(19).expect("field 22").parse().expect("a number")
}

/// Runs reactor with `args` in `dir` with TMPDIR `tmp` on a tmpfs of 2 MiB, mounted in a private
/// mount namespace (so it goes when the run ends); returns the run and what was left in TMPDIR.
/// Fails the test when the mount cannot be made: this test needs root, as in CI.
fn reactor_on_small_tmpfs(dir: &Path, tmp: &Path, args: &[&str]) -> (Run, String) {
    const SCRIPT: &str = r#"tmp=$1; listing=$2; shift 2
mount -t tmpfs -o size=2m tmpfs "$tmp" || { echo "fault test: cannot mount a tmpfs on $tmp" >&2; exit 97; }
TMPDIR=$tmp "$@"
code=$?
ls -A "$tmp" > "$listing"
exit $code"#;
    let listing = dir.join("listing.txt");
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", SCRIPT, "sh"])
        .arg(tmp)
        .arg(&listing)
        .arg(env!("CARGO_BIN_EXE_reactor"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run unshare (util-linux): this test mounts a tmpfs in a mount namespace of its own");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.code() != Some(97) && !stderr.contains("unshare failed"),
        "the small tmpfs could not be set up (the test needs root and mount namespaces): {stderr}"
    );
    let run = Run { code: out.status.code(), stdout: String::from_utf8_lossy(&out.stdout).into_owned(), stderr };
    (run, std::fs::read_to_string(&listing).expect("the listing of TMPDIR"))
}

/// `len` bytes that do not compress (so a pack of them is as big).
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[test]
fn a_tmpdir_that_fills_up_during_the_clone_is_named_and_left_empty() {
    let dir = workdir();
    let repo = dir.path().join("repo");
    git_repo(&repo, &[("Dockerfile", "FROM busybox:latest\nCOPY big /\n")]);
    std::fs::write(repo.join("big"), noise(3 << 20)).expect("write");
    git_commit(&repo, &[], "big");
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).expect("mkdir");
    git(&served, &["clone", "-q", "--bare", &repo.display().to_string(), "r.git"]);
    let (_daemon, base) = crate::git_transports::git_daemon(&served);
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).expect("mkdir");
    let so = plugin("test_plugins");
    // A local repository fills it with the checkout, a remote one with the pack first.
    for url in ["repo".to_owned(), format!("{base}/r.git")] {
        let file = request(dir.path(), &url);
        let (run, listing) = reactor_on_small_tmpfs(
            dir.path(),
            &tmp,
            &["--load-plugin", &so, "build", "json", &file, "--metadata-file", "metadata.json"],
        );

        run.expect_code(1);
        let tmp_shown = tmp.display().to_string();
        let error = metadata(dir.path())["failure"]["error"].as_str().expect("error").to_owned();
        for words in [
            format!("source: TMPDIR {tmp_shown} is full: cannot write the checkout of {url} into {tmp_shown}/reactor-source-"),
            "(No space left on device); free space there, or set TMPDIR to a directory with more room".to_owned(),
        ] {
            assert!(error.contains(&words), "{words:?} in {error:?}");
        }
        assert!(run.errors().iter().any(|l| l.ends_with(&error)), "{}", run.stderr);
        assert_eq!(recorded(dir.path()), "exit ran\n", "{url}: the exit plugin ran");
        assert_eq!(listing, "", "{url}: TMPDIR is left empty");
    }

    // A path source is copied only for a plugin built before the context overlay: that copy too.
    let older = crate::compat::so(&crate::compat::compat("v1.0"), "compat_older");
    let record = dir.path().join("record.txt");
    let _ = std::fs::remove_file(&record);
    let file = build_json(
        dir.path(),
        &json!({"image": unique("fault-source"), "source": {"provider": "path", "uri": "repo"},
            "prebuild_plugins": [{"name": "compat_older_writer", "is_allowed_to_fail": false}],
            "exit_plugins": [{"name": "recorder", "args": {"path": record, "label": "ran"}}]}),
    );
    let (run, listing) = reactor_on_small_tmpfs(
        dir.path(),
        &tmp,
        &["--load-plugin", &older, "--load-plugin", &so, "build", "json", &file, "--metadata-file", "metadata.json"],
    );
    run.expect_code(1);
    let tmp_shown = tmp.display().to_string();
    let error = metadata(dir.path())["failure"]["error"].as_str().expect("error").to_owned();
    let words =
        format!("source: TMPDIR {tmp_shown} is full: cannot copy the path source into {tmp_shown}/reactor-source-");
    assert!(error.contains(&words), "{words:?} in {error:?}");
    assert!(error.ends_with("(No space left on device); free space there, or set TMPDIR to a directory with more room"));
    assert_eq!(recorded(dir.path()), "exit ran\n", "the exit plugin ran");
    assert_eq!(listing, "", "TMPDIR is left empty");
}
