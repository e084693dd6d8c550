//! Builds on the real engine: failures, build args and labels, the context streamed.

use serde_json::json;

use crate::util::*;

#[test]
fn a_failing_step_fails_the_build_with_the_engines_error_and_exit_plugins_still_run() {
    let dir = workdir();
    git_repo(
        &dir.path().join("repo"),
        &[("Dockerfile", "FROM busybox:latest\nRUN echo before\nRUN false\nRUN echo never\n")],
    );
    let listener = Listener::start("ok");
    let record = dir.path().join("record.txt");
    let image = unique("runfalse");
    let file = build_json(
        dir.path(),
        &json!({
            "image": image, "git_url": "repo",
            "postbuild_plugins": [{"name": "recorder", "args": {"path": record, "label": "post"}}],
            "exit_plugins": [
                {"name": "logs_submitter", "args": {"url": listener.url}},
                {"name": "recorder", "args": {"path": record, "label": "exit"}}
            ]
        }),
    );
    let (submitter, fixtures) = (plugin("logs_submitter"), plugin("test_plugins"));
    let run =
        reactor(dir.path(), &["--load-plugin", &submitter, "--load-plugin", &fixtures, "build", "json", &file], &[]);
    run.expect_code(1);
    let engine_error = "The command '/bin/sh -c false' returned a non-zero code: 1";
    // Said once, where it happened; the last line only says how the build ended.
    assert_eq!(run.stderr.matches(&format!("docker build failed: {engine_error}")).count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("build of {image} failed (phase buildstep, 'dockerbuild')")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("echo never"), "{}", run.stderr);

    // No postbuild after a failed build; every exit plugin ran and saw the failed build's log.
    assert_eq!(std::fs::read_to_string(&record).expect("recorder ran"), "exit exit\n");
    let posted = listener.wait_for(1);
    let logs = posted[0].json()["logs"].clone();
    let logs: Vec<String> = serde_json::from_value(logs).expect("list");
    assert!(logs.contains(&"before".to_owned()), "{logs:?}");
    assert_eq!(logs.last().map(String::as_str), Some(engine_error), "{logs:?}");
    assert!(!docker(&["image", "inspect", &image]).status.success(), "no image was tagged");
}

#[test]
fn a_large_context_is_streamed() {
    // 64 MiB of context; the bench measures the memory (it stays flat), this checks it arrives.
    let dir = workdir();
    let repo = dir.path().join("repo");
    git_repo(
        &repo,
        &[("Dockerfile", "FROM busybox:latest\nCOPY big.bin /big.bin\nCMD [\"sh\", \"-c\", \"wc -c < /big.bin\"]\n")],
    );
    let big: Vec<u8> = (0..64u32 * 1024 * 1024).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    std::fs::write(repo.join("big.bin"), &big).expect("write");
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "big"]);
    let image = unique("bigctx");
    let _cleanup = Images(vec![image.clone()]);
    let file = build_json(dir.path(), &json!({"image": image, "git_url": "repo"}));
    reactor(dir.path(), &["build", "json", &file], &[]).expect_code(0);
    assert_eq!(docker_run(&image, &[]).trim(), (64 * 1024 * 1024).to_string());
}
