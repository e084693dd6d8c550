//! Both generations of build.json build the same image.

use serde_json::json;

use crate::util::*;

const DOCKERFILE: &str = "FROM busybox:latest\nCOPY greeting.txt /greeting.txt\nCMD [\"cat\", \"/greeting.txt\"]\n";

#[test]
fn the_1_6_form_with_a_git_source_builds() {
    let dir = workdir();
    let sha = git_repo(&dir.path().join("repo"), &[("Dockerfile", DOCKERFILE), ("greeting.txt", "from git\n")]);
    let image = unique("gen16-git");
    let _cleanup = Images(vec![image.clone()]);
    let file = build_json(
        dir.path(),
        &json!({
            "image": image,
            "source": {"provider": "git", "uri": format!("file://{}", dir.path().join("repo").display()),
                       "provider_params": {"git_commit": "main"}},
            "prebuild_plugins": [], "postbuild_plugins": [], "exit_plugins": []
        }),
    );
    let run = reactor(dir.path(), &["build", "json", &file], &[]);
    run.expect_code(0);
    assert!(run.stderr.contains(&format!("checked out {sha}")), "{}", run.stderr);
    assert_eq!(docker_run(&image, &[]), "from git\n");
}

#[test]
fn the_1_6_form_with_a_path_source_builds_without_touching_the_tree() {
    let dir = workdir();
    write_files(&dir.path().join("ctx"), &[("Dockerfile", DOCKERFILE), ("greeting.txt", "from a path\n")]);
    let image = unique("gen16-path");
    let _cleanup = Images(vec![image.clone()]);
    let file = build_json(
        dir.path(),
        &json!({
            "image": format!("{image}:v1"),
            "source": {"provider": "path", "uri": "ctx"},
            "prebuild_plugins": [{"name": "context_probe"}]
        }),
    );
    let so = plugin("test_plugins");
    let run = reactor(dir.path(), &["--load-plugin", &so, "build", "json", &file], &[]);
    run.expect_code(0);
    assert_eq!(docker_run(&format!("{image}:v1"), &[]), "from a path\n");
    // The probe edited the Dockerfile of the build; the user's own file is unchanged.
    assert_eq!(std::fs::read_to_string(dir.path().join("ctx/Dockerfile")).expect("read"), DOCKERFILE);
}

#[test]
fn the_flat_form_takes_commit_and_dockerfile_path() {
    let dir = workdir();
    let repo = dir.path().join("repo");
    let first = git_repo(&repo, &[("app/Dockerfile", DOCKERFILE), ("app/greeting.txt", "flat one\n")]);
    git_commit(&repo, &[("app/greeting.txt", "flat two\n")], "second");
    let image = unique("flat");
    let _cleanup = Images(vec![image.clone()]);
    let file = build_json(
        dir.path(),
        &json!({
            "image": image, "git_url": "repo", "git_commit": first, "git_dockerfile_path": "app/"
        }),
    );
    reactor(dir.path(), &["build", "json", &file], &[]).expect_code(0);
    assert_eq!(docker_run(&image, &[]), "flat one\n");
}
