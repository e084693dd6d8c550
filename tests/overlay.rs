//! The context overlay, end to end: a `path` source is streamed to the engine where it is and is
//! never written, even by plugins that edit the Dockerfile and add files to the context (a
//! read-only bind mount proves it, in a private mount namespace); the overlay's files and
//! `.dockerignore` shadow the tree's; a git checkout stays clean; and a plugin built before the
//! overlay gets a copy it may write to.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::compat::{compat, so};
use crate::util::*;

/// Everything about a tree a write could change: per entry (the root included), its path, type,
/// mode, modification time, and the SHA-256 of its content or its symlink's target.
fn fingerprint(root: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false).sort_by_file_name() {
        let entry = entry.expect("walk the tree");
        let meta = entry.path().symlink_metadata().expect("metadata");
        let rel = entry.path().strip_prefix(root).expect("inside").display().to_string();
        let content = if meta.is_file() {
            format!("{:x}", Sha256::digest(std::fs::read(entry.path()).expect("read")))
        } else if meta.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(entry.path()).expect("link").display())
        } else {
            "dir".to_owned()
        };
        lines.push(format!("{rel:?} {:o} {}.{:09} {content}", meta.mode(), meta.mtime(), meta.mtime_nsec()));
    }
    lines
}

/// Runs reactor with `args` in `dir`, in a private mount namespace where `tree` is bind-mounted
/// read-only, so that any write to it fails, root's included. Fails the test when the namespace
/// or the mount cannot be made: this test needs root, as in CI.
fn reactor_with_read_only_tree(tree: &Path, dir: &Path, args: &[&str]) -> Run {
    const SCRIPT: &str = r#"tree=$1; shift
mount --bind -o ro "$tree" "$tree" || { echo "overlay test: cannot bind-mount $tree read-only" >&2; exit 97; }
if touch "$tree/.reactor-ro-probe" 2>/dev/null; then echo "overlay test: $tree is writable after the read-only mount" >&2; exit 98; fi
exec "$@""#;
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", SCRIPT, "sh"])
        .arg(tree)
        .arg(env!("CARGO_BIN_EXE_reactor"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run unshare (util-linux): this test makes a read-only bind mount in a mount namespace of its own");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !matches!(out.status.code(), Some(97 | 98)) && !stderr.contains("unshare failed"),
        "the read-only tree could not be set up (the test needs root and mount namespaces): {stderr}"
    );
    engine_is_up();
    Run { code: out.status.code(), stdout: String::from_utf8_lossy(&out.stdout).into_owned(), stderr }
}

/// Runs reactor on `tree`, with the tree read-only when `read_only`.
fn run_on(tree: &Path, dir: &Path, read_only: bool, args: &[&str]) -> Run {
    if read_only {
        reactor_with_read_only_tree(tree, dir, args)
    } else {
        reactor(dir, args, &[])
    }
}

fn doc(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("m.json")).expect("result document")).expect("JSON")
}

/// A user's source directory: a Dockerfile, files in and out of the image (.dockerignore), a
/// sub-directory, a symlink and a private file.
fn user_tree(dir: &Path) -> PathBuf {
    let tree = dir.join("src");
    write_files(
        &tree,
        &[
            ("Dockerfile", "FROM busybox:latest\nCOPY app.txt /app/app.txt\nCOPY sub /app/sub\n"),
            (".dockerignore", "*.secret\n"),
            ("app.txt", "hello from the tree\n"),
            ("sub/data.txt", "data\n"),
            ("key.secret", "s"),
            ("private.txt", "p"),
        ],
    );
    std::os::unix::fs::symlink("app.txt", tree.join("link")).expect("symlink");
    std::fs::set_permissions(tree.join("private.txt"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    tree
}

/// Plugins that edit the Dockerfile (both through the host and in the file itself) and add files
/// to the context, on a `path` source; the image gets it all, and the tree is as it was.
fn plugins_edit_and_add_without_touching_the_tree(read_only: bool) {
    let dir = workdir();
    let tree = user_tree(dir.path());
    let before = fingerprint(&tree);
    let image = unique("overlay");
    let _cleanup = Images(vec![image.clone()]);
    let writer = json!({"name": "context_writer", "args": {
        "write": {"generated.txt": "written by a plugin\n", "sub/extra.txt": "extra\n"},
        "append_dockerfile": "COPY generated.txt /gen/generated.txt",
        "read": ["app.txt", "generated.txt"]}});
    let file = build_json(
        dir.path(),
        &json!({"image": image, "source": {"provider": "path", "uri": "src"},
            "prebuild_plugins": [
                {"name": "change_from_in_dockerfile"},
                {"name": "add_labels_in_dockerfile", "args": {"labels": {"name": "ns/overlay", "version": "1", "release": "2"}}},
                writer,
                {"name": "add_dockerfile"}
            ],
            "postbuild_plugins": [{"name": "context_writer", "args": {"read": ["generated.txt", "sub/data.txt"]}}]}),
    );
    let so = plugin("test_plugins");
    let run = run_on(
        &tree,
        dir.path(),
        read_only,
        &["--load-plugin", &so, "build", "json", &file, "--metadata-file", "m.json"],
    );
    run.expect_code(0);
    assert!(!run.stderr.contains("predates the context overlay"), "no copy: {}", run.stderr);

    // The image has the plugins' edits and files, and the tree's.
    let cat = |path: &str| docker_run(&image, &["cat", path]);
    assert_eq!(cat("/gen/generated.txt"), "written by a plugin\n");
    assert_eq!(cat("/app/app.txt"), "hello from the tree\n");
    assert_eq!(docker_run(&image, &["ls", "/app/sub"]), "data.txt\nextra.txt\n");
    let added = cat("/root/buildinfo/Dockerfile-ns-overlay-1-2");
    assert!(added.starts_with("FROM sha256:") && added.contains("COPY generated.txt"), "{added}");
    let labels = docker(&["inspect", "-f", "{{json .Config.Labels}}", &image]);
    let labels: Value = serde_json::from_slice(&labels.stdout).expect("labels");
    assert_eq!((labels["name"].as_str(), labels["release"].as_str()), (Some("ns/overlay"), Some("2")), "{labels}");

    // What the plugins saw: the overlay to write to, the tree to read from.
    let doc = doc(dir.path());
    let real_tree = tree.canonicalize().expect("canonical");
    for phase in ["prebuild", "postbuild"] {
        let seen = result_in(&doc, phase, "context_writer");
        let context = PathBuf::from(seen["context_dir"].as_str().expect("context_dir"));
        assert_eq!(seen["source_context_dir"], real_tree.display().to_string(), "{phase}: {seen}");
        assert_eq!(seen["source_path"], real_tree.display().to_string(), "{phase}: {seen}");
        assert!(!context.starts_with(&real_tree), "{phase}: the overlay is not in the tree: {seen}");
        assert_eq!(seen["dockerfile_path"], context.join("Dockerfile").display().to_string(), "{phase}");
        assert_eq!(seen["read"]["generated.txt"]["text"], "written by a plugin\n");
        assert_eq!(seen["read"]["generated.txt"]["path"], context.join("generated.txt").display().to_string());
    }
    let read = &result_in(&doc, "prebuild", "context_writer")["read"];
    assert_eq!(read["app.txt"], json!({"path": real_tree.join("app.txt"), "text": "hello from the tree\n"}));
    // The result document's Dockerfile is the final one, from the overlay.
    let final_dockerfile = doc["dockerfile"].as_str().expect("dockerfile");
    assert!(final_dockerfile.contains("COPY generated.txt /gen/generated.txt\n"), "{final_dockerfile}");
    assert!(final_dockerfile.contains("ADD Dockerfile-ns-overlay-1-2 /root/buildinfo/"), "{final_dockerfile}");

    assert_eq!(fingerprint(&tree), before, "the user's tree changed");
    assert_eq!(
        std::fs::read_to_string(tree.join("Dockerfile")).expect("read"),
        "FROM busybox:latest\nCOPY app.txt /app/app.txt\nCOPY sub /app/sub\n"
    );
}

#[test]
fn a_read_only_path_source_builds_with_plugins_editing_and_adding_and_stays_unchanged() {
    plugins_edit_and_add_without_touching_the_tree(true);
}

#[test]
fn a_writable_path_source_stays_unchanged_too() {
    plugins_edit_and_add_without_touching_the_tree(false);
}

/// A path source with the given files, built with `context_writer` writing `overlay` in prebuild.
fn build_with_overlay(dir: &Path, files: &[(&str, &str)], overlay: Value, image: &str) -> Run {
    write_files(&dir.join("src"), files);
    let file = build_json(
        dir,
        &json!({"image": image, "source": {"provider": "path", "uri": "src"},
            "prebuild_plugins": [{"name": "context_writer", "args": {"write": overlay}}]}),
    );
    let so = plugin("test_plugins");
    reactor(dir, &["--load-plugin", &so, "build", "json", &file], &[])
}

#[test]
fn an_overlay_file_shadows_the_trees_file_of_the_same_name() {
    let dir = workdir();
    let image = unique("overlay-shadow");
    let _cleanup = Images(vec![image.clone()]);
    let files = [
        ("Dockerfile", "FROM busybox:latest\nCOPY . /ctx\nCMD [\"cat\", \"/ctx/msg.txt\", \"/ctx/sub/deep.txt\", \"/ctx/kept.txt\"]\n"),
        ("msg.txt", "from the tree\n"),
        ("sub/deep.txt", "deep, from the tree\n"),
        ("kept.txt", "kept\n"),
    ];
    let overlay = json!({"msg.txt": "from the overlay\n", "sub/deep.txt": "deep, from the overlay\n"});
    build_with_overlay(dir.path(), &files, overlay, &image).expect_code(0);
    assert_eq!(docker_run(&image, &[]), "from the overlay\ndeep, from the overlay\nkept\n");
    assert_eq!(std::fs::read_to_string(dir.path().join("src/msg.txt")).expect("read"), "from the tree\n");
}

#[test]
fn the_overlays_dockerignore_replaces_the_trees() {
    let dir = workdir();
    let image = unique("overlay-ignore");
    let _cleanup = Images(vec![image.clone()]);
    let files = [
        ("Dockerfile", "FROM busybox:latest\nCOPY . /ctx\nCMD [\"find\", \"/ctx\", \"-type\", \"f\"]\n"),
        (".dockerignore", "*.log\n"),
        ("a.log", "l"),
        ("b.txt", "t"),
    ];
    let overlay = json!({".dockerignore": "*.txt\nDockerfile\n", "c.txt": "c", "d.log": "d"});
    build_with_overlay(dir.path(), &files, overlay, &image).expect_code(0);
    let mut found: Vec<String> = docker_run(&image, &[]).lines().map(str::to_owned).collect();
    found.sort();
    // The overlay's rules, for the overlay's files and the tree's alike.
    assert_eq!(found, ["/ctx/.dockerignore", "/ctx/a.log", "/ctx/d.log"]);
    assert_eq!(docker_run(&image, &["cat", "/ctx/.dockerignore"]), "*.txt\nDockerfile\n");
}

#[test]
fn a_path_source_in_place_is_the_context_the_docker_cli_sends() {
    let dir = workdir();
    let tree = dir.path().join("src");
    write_files(
        &tree,
        &[
            ("Dockerfile", "FROM busybox:latest\nCOPY . /ctx\n"),
            (".dockerignore", "*.secret\nbuild\n!build/keep.txt\n"),
            ("app.txt", "a"),
            ("key.secret", "s"),
            ("sub/key.secret", "kept: patterns are anchored at the root"),
            ("build/out.o", "o"),
            ("build/keep.txt", "k"),
            ("bin/run.sh", "#!/bin/sh\n"),
        ],
    );
    std::os::unix::fs::symlink("app.txt", tree.join("link")).expect("symlink");
    std::os::unix::fs::symlink("../nowhere", tree.join("dangling")).expect("symlink");
    std::fs::set_permissions(tree.join("bin/run.sh"), std::fs::Permissions::from_mode(0o750)).expect("chmod");
    // One old time for every entry: what the engine creates itself (the directories whose
    // headers are not sent) gets the time of the build instead, which differs between builds.
    let touched =
        Command::new("find").arg(&tree).args(["-exec", "touch", "-h", "-d", "@1000000000", "{}", "+"]).status();
    assert!(touched.expect("find").success(), "touch the tree");
    let image = unique("overlay-cli");
    let by_docker = unique("overlay-cli-docker");
    let _cleanup = Images(vec![image.clone(), by_docker.clone()]);
    let file = build_json(dir.path(), &json!({"image": image, "source": {"provider": "path", "uri": "src"}}));
    reactor(dir.path(), &["build", "json", &file], &[]).expect_code(0);
    let out = Command::new("docker")
        .args(["build", "-q", "--no-cache", "-t", &by_docker])
        .arg(&tree)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker build");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Every entry with its type, mode, size, modification time and link target.
    let listing = |image: &str| {
        let script = "cd /ctx && find . | sort | while read -r f; do stat -c '%n %F %a %s %Y %N' \"$f\"; done";
        let listing = docker_run(image, &["sh", "-c", script]);
        let line = |line: &str| {
            let mut fields: Vec<&str> = line.split(' ').collect();
            if fields.get(4).is_some_and(|mtime| *mtime != "1000000000") {
                fields[4] = "(made by the engine)";
            }
            fields.join(" ")
        };
        listing.lines().map(line).collect::<Vec<_>>().join("\n")
    };
    let ours = listing(&image);
    assert!(ours.contains("./link symbolic link") && ours.contains("./bin/run.sh regular file 750"), "{ours}");
    assert!(
        !ours.contains("key.secret symbolic") && !ours.contains("./key.secret") && !ours.contains("out.o"),
        "{ours}"
    );
    assert_eq!(ours, listing(&by_docker));
}

#[test]
fn a_git_source_goes_through_the_overlay_and_its_checkout_stays_clean() {
    let dir = workdir();
    let sha = git_repo(
        &dir.path().join("repo"),
        &[("app/Dockerfile", "FROM busybox:latest\nCOPY app.txt generated.txt /app/\n"), ("app/app.txt", "from git\n")],
    );
    let image = unique("overlay-git");
    let _cleanup = Images(vec![image.clone()]);
    let file = build_json(
        dir.path(),
        &json!({"image": image, "source": {"provider": "git", "uri": "repo", "dockerfile_path": "app/"},
            "prebuild_plugins": [
                {"name": "add_labels_in_dockerfile", "args": {"labels": {"from": "overlay"}}},
                {"name": "context_writer", "args": {"write": {"generated.txt": "generated\n"}, "read": ["app.txt"],
                    "append_dockerfile": "LABEL appended=yes", "git_status": true}}
            ],
            "postbuild_plugins": [{"name": "context_writer", "args": {"git_status": true}}]}),
    );
    let so = plugin("test_plugins");
    let run = reactor(dir.path(), &["--load-plugin", &so, "build", "json", &file, "--metadata-file", "m.json"], &[]);
    run.expect_code(0);
    assert_eq!(docker_run(&image, &["cat", "/app/app.txt", "/app/generated.txt"]), "from git\ngenerated\n");
    let labels = docker(&["inspect", "-f", "{{.Config.Labels.from}} {{.Config.Labels.appended}}", &image]);
    assert_eq!(String::from_utf8_lossy(&labels.stdout).trim(), "overlay yes");
    let doc = doc(dir.path());
    assert_eq!(doc["source"]["commit"], sha);
    for phase in ["prebuild", "postbuild"] {
        let seen = result_in(&doc, phase, "context_writer");
        assert_eq!(seen["git_status"], "", "{phase}: the checkout is clean after the plugins' edits: {seen}");
        let checkout = PathBuf::from(seen["source_path"].as_str().expect("source path"));
        let context = PathBuf::from(seen["context_dir"].as_str().expect("context_dir"));
        assert_eq!(seen["source_context_dir"], checkout.join("app").display().to_string(), "{phase}: {seen}");
        assert!(!context.starts_with(&checkout), "{phase}: the overlay is outside the checkout: {seen}");
        assert!(seen["dockerfile_path"].as_str().is_some_and(|p| Path::new(p).starts_with(&context)), "{seen}");
    }
    let read = &result_in(&doc, "prebuild", "context_writer")["read"]["app.txt"];
    assert_eq!(read["text"], "from git\n");
}

#[test]
fn a_plugin_built_before_the_overlay_gets_a_copy_to_write_to_and_the_tree_stays_unchanged() {
    let file = so(&compat("v1.0"), "compat_older");
    let dir = workdir();
    let tree = dir.path().join("src");
    write_files(
        &tree,
        &[("Dockerfile", "FROM busybox:latest\n"), ("app.txt", "from the tree\n"), (".dockerignore", "*.secret\n")],
    );
    let before = fingerprint(&tree);
    let image = unique("overlay-legacy");
    let _cleanup = Images(vec![image.clone()]);
    let build = build_json(
        dir.path(),
        &json!({"image": image, "source": {"provider": "path", "uri": "src"},
            "prebuild_plugins": [{"name": "compat_older_writer", "is_allowed_to_fail": false}],
            "postbuild_plugins": [{"name": "context_writer", "args": {"read": ["legacy.txt", "app.txt"]}}]}),
    );
    let so = plugin("test_plugins");
    let run = reactor_with_read_only_tree(
        &tree,
        dir.path(),
        &["--load-plugin", &file, "--load-plugin", &so, "build", "json", &build, "--metadata-file", "m.json"],
    );
    run.expect_code(0);
    let said: Vec<&str> = run.stderr.lines().filter(|l| l.contains("predates the context overlay")).collect();
    assert_eq!(said.len(), 1, "{}", run.stderr);
    assert!(
        said[0].ends_with(
            "plugin 'compat_older_writer' (reactor-plugin-api 1.0.0) predates the context overlay: copying the path source so it may write to it"
        ),
        "{}",
        said[0]
    );
    assert_eq!(
        docker_run(&image, &["cat", "/legacy/legacy.txt", "/legacy/app.txt"]),
        "written by a 1.0 plugin\nfrom the tree, rewritten\n"
    );
    // After the build, the copy is both the overlay and the tree.
    let seen = result_in(&doc(dir.path()), "postbuild", "context_writer");
    assert_eq!(seen["context_dir"], seen["source_context_dir"], "{seen}");
    assert!(!Path::new(seen["context_dir"].as_str().expect("dir")).starts_with(tree.canonicalize().expect("canonical")));
    assert_eq!(seen["read"]["app.txt"]["text"], "from the tree, rewritten\n");
    assert_eq!(fingerprint(&tree), before, "the user's tree changed");
}
