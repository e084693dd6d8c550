//! Sources: commits, branches and tags of real git repositories; Dockerfiles in sub-directories;
//! `.dockerignore`.

use serde_json::json;

use crate::util::*;

const DOCKERFILE: &str = "FROM busybox:latest\nCOPY content.txt /content.txt\nCMD [\"cat\", \"/content.txt\"]\n";

fn build_at(commit: Option<&str>, expect: &str) {
    let dir = workdir();
    let repo = dir.path().join("repo");
    let first = git_repo(&repo, &[("Dockerfile", DOCKERFILE), ("content.txt", "one\n")]);
    git(&repo, &["tag", "v1"]);
    git(&repo, &["branch", "stable"]);
    let second = git_commit(&repo, &[("content.txt", "two\n")], "second");
    let commit = commit.map(|c| match c {
        "FIRST" => first.clone(),
        "SHORT" => first[..10].to_owned(),
        other => other.to_owned(),
    });
    let image = unique("commit");
    let _cleanup = Images(vec![image.clone()]);
    let mut source = json!({"provider": "git", "uri": "repo"});
    if let Some(c) = &commit {
        source["provider_params"] = json!({"git_commit": c});
    }
    let file = build_json(dir.path(), &json!({"image": image, "source": source}));
    let run = reactor(dir.path(), &["build", "json", &file], &[]);
    run.expect_code(0);
    let expected_sha = if expect == "one\n" { &first } else { &second };
    assert!(run.stderr.contains(&format!("checked out {expected_sha}")), "{}", run.stderr);
    assert_eq!(docker_run(&image, &[]), expect);
}

#[test]
fn a_pinned_sha_builds_that_commit() {
    build_at(Some("FIRST"), "one\n");
}

#[test]
fn an_abbreviated_sha_a_tag_and_a_branch_resolve() {
    build_at(Some("SHORT"), "one\n");
    build_at(Some("v1"), "one\n");
    build_at(Some("stable"), "one\n");
}

#[test]
fn no_commit_builds_the_default_branch() {
    build_at(None, "two\n");
}

#[test]
fn an_unknown_commit_is_named() {
    let dir = workdir();
    git_repo(&dir.path().join("repo"), &[("Dockerfile", DOCKERFILE), ("content.txt", "x\n")]);
    let file = build_json(
        dir.path(),
        &json!({"image": unique("nocommit"), "git_url": "repo", "git_commit": "no-such-branch"}),
    );
    let run = reactor(dir.path(), &["build", "json", &file], &[]);
    run.expect_code(1);
    assert!(run.stderr.contains("has no commit, branch or tag 'no-such-branch'"), "{}", run.stderr);
}

#[test]
fn a_dockerfile_in_a_sub_directory_builds_with_that_context() {
    let dir = workdir();
    git_repo(
        &dir.path().join("repo"),
        &[
            ("Dockerfile", "FROM busybox:latest\nCMD [\"echo\", \"top\"]\n"),
            ("sub/Dockerfile", DOCKERFILE),
            ("sub/content.txt", "from sub\n"),
            ("sub/alt.Dockerfile", "FROM busybox:latest\nCOPY content.txt /c\nCMD [\"echo\", \"alt\"]\n"),
        ],
    );
    let image = unique("subdir");
    let alt = unique("subdir-alt");
    let _cleanup = Images(vec![image.clone(), alt.clone()]);
    let file = build_json(
        dir.path(),
        &json!({"image": image, "source": {"provider": "git", "uri": "repo", "dockerfile_path": "sub/"}}),
    );
    reactor(dir.path(), &["build", "json", &file], &[]).expect_code(0);
    assert_eq!(docker_run(&image, &[]), "from sub\n");

    let file = build_json(
        dir.path(),
        &json!({"image": alt, "source": {"provider": "git", "uri": "repo", "dockerfile_path": "sub/alt.Dockerfile"}}),
    );
    reactor(dir.path(), &["build", "json", &file], &[]).expect_code(0);
    assert_eq!(docker_run(&alt, &[]), "alt\n");
}

#[test]
fn a_missing_or_escaping_dockerfile_path_fails_before_any_build() {
    let dir = workdir();
    git_repo(&dir.path().join("repo"), &[("Dockerfile", DOCKERFILE), ("content.txt", "x\n")]);
    // A path leaving the source is refused before the clone (exit 2); a missing Dockerfile is
    // found once the source is there.
    for (path, code, message) in [
        ("nope/", 1, "Dockerfile 'nope/Dockerfile' doesn't exist in the source"),
        ("../", 2, "/source/dockerfile_path: '../' has '..'"),
    ] {
        let file = build_json(
            dir.path(),
            &json!({"image": unique("dfpath"), "source": {"provider": "git", "uri": "repo", "dockerfile_path": path}}),
        );
        let run = reactor(dir.path(), &["build", "json", &file], &[]);
        run.expect_code(code);
        assert!(run.stderr.contains(message), "{path}: {}", run.stderr);
        assert!(!run.stderr.contains("Step 1/"), "nothing was built");
    }
}

#[test]
fn a_fifo_in_a_path_source_is_left_out_with_a_warning() {
    let dir = workdir();
    let ctx = dir.path().join("ctx");
    write_files(
        &ctx,
        &[("Dockerfile", "FROM busybox:latest\nCOPY . /ctx\nCMD [\"ls\", \"/ctx\"]\n"), ("kept.txt", "k")],
    );
    // Opening a FIFO waits for a writer: sent as a file, it would hang the context for ever.
    let made = std::process::Command::new("mkfifo").arg(ctx.join("pipe")).status().expect("run mkfifo");
    assert!(made.success(), "mkfifo");
    let image = unique("fifo");
    let _cleanup = Images(vec![image.clone()]);
    let file = build_json(dir.path(), &json!({"image": image, "source": {"provider": "path", "uri": "ctx"}}));
    let run = reactor(dir.path(), &["build", "json", &file], &[]);
    run.expect_code(0);
    let warning = format!("{} is a FIFO: not sent with the build context", ctx.join("pipe").display());
    assert!(run.stderr.contains(&warning), "{}", run.stderr);
    assert_eq!(docker_run(&image, &[]), "Dockerfile\nkept.txt\n");
}

#[test]
fn dockerignore_is_honoured_as_docker_does() {
    let dir = workdir();
    let repo = dir.path().join("repo");
    git_repo(
        &repo,
        &[
            ("Dockerfile", "FROM busybox:latest\nCOPY . /ctx\nCMD [\"find\", \"/ctx\", \"-type\", \"f\"]\n"),
            (".dockerignore", "*.secret\nbuild\n!build/keep.txt\nDockerfile\n.git\n"),
            ("app.txt", "a"),
            ("key.secret", "s"),
            ("sub/key.secret", "kept: patterns are anchored at the root"),
            ("build/out.o", "o"),
            ("build/keep.txt", "k"),
        ],
    );
    let image = unique("ignore");
    let by_docker = unique("ignore-docker");
    let _cleanup = Images(vec![image.clone(), by_docker.clone()]);
    let file = build_json(dir.path(), &json!({"image": image, "git_url": "repo"}));
    reactor(dir.path(), &["build", "json", &file], &[]).expect_code(0);
    let files = |image: &str| {
        let mut files: Vec<String> = docker_run(image, &[]).lines().map(str::to_owned).collect();
        files.sort();
        files
    };
    // The CLI sends the Dockerfile and .dockerignore even when excluded; the engine then drops
    // an excluded Dockerfile from what COPY sees.
    assert_eq!(files(&image), ["/ctx/.dockerignore", "/ctx/app.txt", "/ctx/build/keep.txt", "/ctx/sub/key.secret"]);

    // The same context through the docker CLI's classic builder gives the same files.
    let out = std::process::Command::new("docker")
        .args(["build", "-q", "--no-cache", "-t", &by_docker])
        .arg(&repo)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker build");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(files(&image), files(&by_docker));
}

#[test]
fn a_repository_served_over_the_git_protocol_clones_by_url() {
    // A network transport (the smart protocol https also speaks), served by `git daemon` on loopback.
    let dir = workdir();
    let served = dir.path().join("served");
    let sha = git_repo(&served.join("hello.git"), &[("Dockerfile", DOCKERFILE), ("content.txt", "over the wire\n")]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    // git-daemon itself, not the `git daemon` wrapper, so that killing it stops the server.
    let exec_path = git(dir.path(), &["--exec-path"]);
    let mut daemon = std::process::Command::new(std::path::Path::new(&exec_path).join("git-daemon"))
        .args(["--export-all", "--reuseaddr", "--listen=127.0.0.1", &format!("--port={port}")])
        .arg(format!("--base-path={}", served.display()))
        .arg(&served)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start git daemon");
    wait_for_port(port, "git daemon");
    let image = unique("gitproto");
    let _cleanup = Images(vec![image.clone()]);
    let file = build_json(
        dir.path(),
        &json!({"image": image, "source": {"provider": "git", "uri": format!("git://127.0.0.1:{port}/hello.git")}}),
    );
    let run = reactor(dir.path(), &["build", "json", &file], &[]);
    let _ = daemon.kill();
    let _ = daemon.wait();
    run.expect_code(0);
    assert!(run.stderr.contains(&format!("checked out {sha}")), "{}", run.stderr);
    assert_eq!(docker_run(&image, &[]), "over the wire\n");
}
