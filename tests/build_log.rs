//! A build that prints a lot, for real: about 5 MB in 50 000 lines and one `\r`-redrawn progress
//! line of 600 KB without a newline. reactor spools the log to disk; `logs_submitter` posts every
//! line to a real HTTP listener, streaming the body from the spool by pages; the result
//! document counts the lines; a plugin built against protocol 1.0 reads the snapshot, which holds
//! the log's last MiB; and all of it again with the plugins in isolated processes.

use serde_json::{json, Value};

use crate::compat::{compat, so};
use crate::util::*;

/// Lines the RUN step prints before the progress line.
const LINES: usize = 50_000;
/// What follows each of them: 100 bytes a line.
const FILLER: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
/// Numbers of the progress line, each followed by `\r`.
const PROGRESS: usize = 100_000;
/// reactor's longest line (`MAX_LINE_BYTES`).
const MAX_LINE: usize = 64 * 1024;

fn dockerfile() -> String {
    format!(
        "FROM busybox:latest\n\
         RUN seq 1 {LINES} | sed 's/^/line /; s/$/ {FILLER}/' && seq 1 {PROGRESS} | tr '\\n' '\\r' && echo ' end of progress' && echo 'after the long line'\n"
    )
}

/// The progress line as the build prints it, up to its newline.
fn progress_line() -> String {
    let mut line: String = (1..=PROGRESS).map(|n| format!("{n}\r")).collect();
    line.push_str(" end of progress");
    line
}

/// Builds with logs_submitter, the `log_probe` fixture and the protocol 1.0 `compat_older` in
/// postbuild, `extra` flags added; returns the posted lines, the result document and reactor's
/// stderr.
fn build_printing_a_lot(extra: &[&str]) -> (Vec<String>, Value, String) {
    let dir = workdir();
    git_repo(&dir.path().join("repo"), &[("Dockerfile", &dockerfile())]);
    let listener = Listener::start("stored");
    let image = unique("build-log");
    let _cleanup = Images(vec![image.clone()]);
    let file = build_json(
        dir.path(),
        &json!({
            "image": image,
            "git_url": "repo",
            "postbuild_plugins": [
                {"name": "logs_submitter", "args": {"url": listener.url}, "is_allowed_to_fail": false},
                {"name": "log_probe", "is_allowed_to_fail": false},
                {"name": "compat_older", "is_allowed_to_fail": false}
            ]
        }),
    );
    let (submitter, probes, older) =
        (plugin("logs_submitter"), plugin("test_plugins"), so(&compat("v1.0"), "compat_older"));
    let mut args = vec!["--load-plugin", &submitter, "--load-plugin", &probes, "--load-plugin", &older];
    args.extend_from_slice(extra);
    args.extend(["build", "json", &file, "--metadata-file", "m.json"]);
    // The build's 5 MB would go to stderr too: warnings only, and whether plugins were isolated.
    let run = reactor(dir.path(), &args, &[("RUST_LOG", "warn,reactor::plugins::isolate=debug")]);
    run.expect_code(0);
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("m.json")).expect("result document"))
            .expect("JSON");
    let received = listener.wait_for(1);
    assert_eq!(received.len(), 1, "one POST");
    let post = &received[0];
    let length: usize = post
        .headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .expect("a Content-Length, not a chunked body");
    assert_eq!(post.body.len(), length);
    let logs: Vec<String> = serde_json::from_value(post.json()["logs"].clone()).expect("logs is a list of strings");
    (logs, doc, run.stderr)
}

fn check(logs: &[String], doc: &Value) {
    // Every printed line, in order.
    let printed: Vec<&String> = logs.iter().filter(|l| l.starts_with("line ")).collect();
    assert_eq!(printed.len(), LINES);
    for n in [1, 2, LINES / 2, LINES] {
        assert_eq!(*printed[n - 1], format!("line {n} {FILLER}"));
    }
    // The progress line, in pieces of at most 64 KiB that make it up again.
    let first = logs.iter().position(|l| l.starts_with("1\r2\r3\r")).expect("the progress line's first piece");
    let after = logs.iter().position(|l| l == "after the long line").expect("the line after it");
    let pieces = &logs[first..after];
    let whole = progress_line();
    assert_eq!(pieces.len(), whole.len().div_ceil(MAX_LINE), "{} bytes", whole.len());
    assert!(pieces.iter().all(|p| p.len() <= MAX_LINE));
    assert!(pieces.concat() == whole, "the pieces make up the progress line");
    assert_eq!(logs[0], "Step 1/2 : FROM busybox:latest");
    assert!(logs.last().is_some_and(|l| l.starts_with("Successfully tagged ")), "{:?}", logs.last());

    // The result document counts what was posted.
    let total = logs.len() as u64;
    assert_eq!(doc["build"]["log_lines"], json!(total));

    // A plugin of this API read every line by pages; its snapshot held the last MiB.
    let probe = result_in(doc, "postbuild", "log_probe");
    assert_eq!(probe["read_lines"], json!(total), "{probe}");
    assert_eq!(probe["longest"], json!(MAX_LINE), "{probe}");
    assert_eq!(probe["log_lines"], json!(total), "{probe}");
    let (kept, omitted) = (probe["snapshot_lines"].as_u64().expect("n"), probe["logs_omitted"].as_u64().expect("n"));
    assert!(omitted > 0 && kept + omitted == total, "{probe}");
    let kept_bytes = probe["snapshot_bytes"].as_u64().expect("n");
    assert!(kept_bytes <= 1024 * 1024 && kept_bytes > 1024 * 1024 - MAX_LINE as u64, "{probe}");
    assert_eq!(probe["snapshot_first"], json!(logs[omitted as usize]));
    assert_eq!(probe["snapshot_last"], json!(logs.last()));
    assert_eq!(probe["read_last"], json!(logs.last()));

    // A plugin of protocol 1.0 reads that same end of the log, unchanged.
    let older = result_in(doc, "postbuild", "compat_older");
    assert_eq!(older["api"], "1.0.0");
    assert_eq!(older["log_lines"], json!(kept));
}

#[test]
fn every_line_of_a_5_mb_build_log_is_posted_from_the_spool() {
    let (logs, doc, stderr) = build_printing_a_lot(&[]);
    check(&logs, &doc);
    assert!(!stderr.contains("started the isolated process of"), "the plugins ran in reactor");
}

#[test]
fn every_line_is_posted_with_the_plugins_isolated_too() {
    let (logs, doc, stderr) = build_printing_a_lot(&["--isolate-plugins"]);
    check(&logs, &doc);
    assert!(stderr.contains("started the isolated process of"), "the plugins ran isolated");
}
