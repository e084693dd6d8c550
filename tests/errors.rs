//! Bad input: each gets one clear error line naming the file, field or plugin, a non-zero exit,
//! and never a panic.

use serde_json::json;

use crate::util::*;

/// A build.json with nothing wrong in it.
const VALID: &str = r#"{"image": "x", "git_url": "repo"}"#;

/// Runs `build json` on `text` and returns the run.
fn build_json_text(text: &str, extra: &[&str]) -> Run {
    let dir = workdir();
    let path = dir.path().join("build.json");
    std::fs::write(&path, text).expect("write");
    let mut args: Vec<&str> = extra.to_vec();
    let path = path.display().to_string();
    args.extend(["build", "json", path.as_str()]);
    reactor(dir.path(), &args, &[])
}

#[test]
fn malformed_json_names_the_file_line_and_column() {
    let run = build_json_text("{\n  \"image\": \"x\",\n  \"git_url\": \"y\"\n  \"oops\": 1\n}\n", &[]);
    run.expect_code(2);
    let errors = run.errors();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(errors[0].contains("build.json: not valid JSON: expected `,` or `}` at line 4 column 3"), "{}", errors[0]);
}

#[test]
fn missing_and_wrong_typed_fields_are_all_named_by_pointer() {
    let run = build_json_text(r#"{"git_url": 7, "postbuild_plugins": {"name": "x"}}"#, &[]);
    run.expect_code(2);
    let stderr = &run.stderr;
    assert!(stderr.contains("\"image\" is a required property"), "{stderr}");
    assert!(stderr.contains("/git_url: 7 is not of type \"string\""), "{stderr}");
    assert!(stderr.contains("/postbuild_plugins: {\"name\":\"x\"} is not of type \"array\""), "{stderr}");
    assert_eq!(run.errors().len(), 1, "one line:\n{stderr}");
}

#[test]
fn a_build_json_that_never_ends_is_refused_at_16_mib() {
    let dir = workdir();
    let run = reactor(dir.path(), &["build", "json", "/dev/zero"], &[]);
    run.expect_code(2);
    let errors = run.errors();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(
        errors[0].contains("cannot read /dev/zero: it is larger than 16 MiB; is it the right file?"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_missing_build_json_is_named() {
    let run = reactor(workdir().path(), &["build", "json", "nowhere/build.json"], &[]);
    run.expect_code(2);
    assert!(run.stderr.contains("cannot read nowhere/build.json: No such file or directory"), "{}", run.stderr);
}

#[test]
fn an_unknown_required_plugin_lists_what_is_available() {
    let run = build_json_text(r#"{"image": "x", "git_url": "y", "postbuild_plugins": [{"name": "no_such"}]}"#, &[]);
    run.expect_code(2);
    // The list grows with the built-ins: check its start and one member.
    let line =
        run.stderr.lines().find(|l| l.contains("no such plugin 'no_such'")).unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(line.contains("/postbuild_plugins/0: no such plugin 'no_such' (available for postbuild: "), "{line}");
    assert!(line.contains(" dockerfile_content") && line.contains("; load others with --load-plugin"), "{line}");
}

#[test]
fn plugin_args_are_checked_against_the_manifest_schema_before_anything_runs() {
    let so = plugin("logs_submitter");
    let run = build_json_text(
        r#"{"image": "x", "git_url": "/nonexistent", "postbuild_plugins": [{"name": "logs_submitter", "args": {"ur": "http://x"}}]}"#,
        &["--load-plugin", &so],
    );
    run.expect_code(2);
    let stderr = &run.stderr;
    assert!(
        stderr.contains("/postbuild_plugins/0/args: \"url\" is a required property (plugin 'logs_submitter')"),
        "{stderr}"
    );
    assert!(stderr.contains("(plugin 'logs_submitter')"), "{stderr}");
    assert!(!stderr.contains("cloning"), "nothing was fetched: {stderr}");
}

#[test]
fn a_load_plugin_path_that_does_not_exist() {
    let run = build_json_text(VALID, &["--load-plugin", "./missing.so"]);
    run.expect_code(3);
    assert_eq!(run.errors().len(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("--load-plugin ./missing.so: no such file"), "{}", run.stderr);
}

#[test]
fn a_file_that_is_not_a_shared_object() {
    let dir = workdir();
    let fake = dir.path().join("liblogs_submitter.so");
    std::fs::write(&fake, "#!/bin/sh\necho not a library\n").expect("write");
    let run = build_json_text(VALID, &["--load-plugin", &fake.display().to_string()]);
    run.expect_code(3);
    assert!(run.stderr.contains("liblogs_submitter.so: not a loadable shared object"), "{}", run.stderr);
    assert_eq!(run.errors().len(), 1, "{}", run.stderr);
}

#[test]
fn a_shared_object_that_is_not_a_reactor_plugin() {
    let libz =
        ["/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/libc.so.6"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("a system library to load");
    let run = build_json_text(VALID, &["--load-plugin", libz]);
    run.expect_code(3);
    assert!(run.stderr.contains("a shared object, but not a reactor plugin"), "{}", run.stderr);
    assert_eq!(run.errors().len(), 1, "{}", run.stderr);
}

#[test]
fn every_bad_plugin_file_is_reported_at_once() {
    let run = build_json_text(VALID, &["--load-plugin", "a.so", "--load-plugin", "b.so"]);
    run.expect_code(3);
    assert_eq!(run.errors().len(), 2, "{}", run.stderr);
}

#[test]
fn a_bad_build_json_and_a_bad_plugin_file_are_both_reported() {
    let run = build_json_text("{", &["--load-plugin", "a.so"]);
    run.expect_code(3);
    let errors = run.errors();
    assert_eq!(errors.len(), 2, "{}", run.stderr);
    assert!(errors[0].contains("not valid JSON"), "{}", run.stderr);
    assert!(errors[1].contains("--load-plugin a.so: no such file"), "{}", run.stderr);
}

#[test]
fn docker_host_pointing_at_nothing() {
    let dir = workdir();
    git_repo(&dir.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\n")]);
    let file = build_json(
        dir.path(),
        &json!({"image": unique("nohost"), "git_url": "repo",
        "exit_plugins": [{"name": "dockerfile_content"}]}),
    );
    let run = reactor(dir.path(), &["build", "json", &file], &[("DOCKER_HOST", "unix:///tmp/reactor-no-such.sock")]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("cannot reach the Docker engine at unix:///tmp/reactor-no-such.sock: no socket at /tmp/reactor-no-such.sock"),
        "{}",
        run.stderr
    );
    // The exit plugins still ran.
    assert!(!run.stderr.contains("exit plugin 'dockerfile_content' failed"), "{}", run.stderr);

    // A socket file with nobody listening.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
    let host = format!("unix://{}", stale.display());
    let run = reactor(dir.path(), &["build", "json", &file], &[("DOCKER_HOST", &host)]);
    run.expect_code(1);
    assert!(run.stderr.contains(&format!("cannot reach the Docker engine at {host}")), "{}", run.stderr);
    assert!(run.stderr.contains("connection refused"), "{}", run.stderr);
}
