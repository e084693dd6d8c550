//! The seed's walk-through, for real: a post-build plugin from a shared object posts the build
//! log to a listener, and the image exists and runs.

use serde_json::json;

use crate::util::*;

const HELLO: &str = "FROM busybox:latest\nRUN uname -a\nCMD [\"echo\", \"Hello, World!\"]\n";

#[test]
fn logs_submitter_posts_the_build_log_and_the_image_runs() {
    let dir = workdir();
    let repo = dir.path().join("docker-hello-world");
    git_repo(&repo, &[("Dockerfile", HELLO)]);
    let listener = Listener::start("thanks");
    let image = unique("seed");
    let _cleanup = Images(vec![image.clone()]);
    // The seed's flat build.json, with the plugin's key and args as the seed writes them.
    let file = build_json(
        dir.path(),
        &json!({
            "image": image,
            "git_url": "docker-hello-world",
            "postbuild_plugins": [{"name": "logs_submitter", "args": {"url": listener.url}}]
        }),
    );

    let so = plugin("logs_submitter");
    let run = reactor(dir.path(), &["--load-plugin", &so, "build", "json", &file], &[]);
    run.expect_code(0);
    assert_eq!(run.stdout, "", "logs go to stderr; stdout stays clean for output a script reads");

    let received = listener.wait_for(1);
    assert_eq!(received.len(), 1, "one POST expected:\n{}", run.stderr);
    let post = &received[0];
    assert!(post.request_line.starts_with("POST /submit "), "{}", post.request_line);
    assert!(post.headers.iter().any(|(k, v)| k == "content-type" && v == "application/json"));
    let logs: Vec<String> = serde_json::from_value(post.json()["logs"].clone()).expect("logs is a list of strings");
    assert_eq!(logs.first().map(String::as_str), Some("Step 1/3 : FROM busybox:latest"), "{logs:#?}");
    assert!(logs.contains(&"Step 2/3 : RUN uname -a".to_owned()), "{logs:#?}");
    assert!(logs.iter().any(|l| l.starts_with("Linux ")), "the RUN step's output is in the log: {logs:#?}");
    assert!(logs.iter().any(|l| l.starts_with("Successfully built ")), "{logs:#?}");

    // The plugin's own log line came through the bridge, under its key.
    assert!(run.stderr.contains("plugin::logs_submitter::logs_submitter] posting"), "{}", run.stderr);
    assert_eq!(docker_run(&image, &[]), "Hello, World!\n");
}

#[test]
fn the_seed_command_line_order_works_too() {
    // atomic-reactor's walk-through puts --load-plugin after the build.json, with -v first.
    let dir = workdir();
    git_repo(&dir.path().join("src"), &[("Dockerfile", HELLO)]);
    let listener = Listener::start("ok");
    let image = unique("seed-order");
    let _cleanup = Images(vec![image.clone()]);
    let file = build_json(
        dir.path(),
        &json!({
            "image": image, "git_url": "src",
            "postbuild_plugins": [{"name": "logs_submitter", "args": {"url": listener.url}}]
        }),
    );
    let so = plugin("logs_submitter");
    let run = reactor(dir.path(), &["-v", "build", "json", "--method", "here", &file, "--load-plugin", &so], &[]);
    run.expect_code(0);
    assert_eq!(listener.wait_for(1).len(), 1);
    assert!(run.stderr.contains(" DEBUG "), "-v shows debug lines");
}
