//! atomic-reactor 1.6's own example build.json files (`tests/fixtures/atomic-reactor/`) run
//! through reactor unchanged, with only the image name and source URI substituted, as their
//! users would: a path source with `"target_registries_insecure": "True"`, and the documented
//! git build that pulls its base from a parent registry, checks its labels and pushes.

use std::path::Path;

use crate::util::{docker, git, git_repo, reactor, unique, write_files, Images, Run};

fn fixture(name: &str, dir: &Path) -> String {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/atomic-reactor").join(name);
    let copy = dir.join(name);
    std::fs::copy(&source, &copy).unwrap_or_else(|e| panic!("copy {}: {e}", source.display()));
    copy.display().to_string()
}

/// Runs the build.json `file` as it is, with only what its users substitute: the image and the
/// source URI.
fn build_unchanged(dir: &Path, file: &str, image: &str, uri: &str) -> Run {
    let (image, uri) = (format!("image={image}"), format!("source.uri={uri}"));
    reactor(dir, &["build", "json", file, "--substitute", &image, "--substitute", &uri], &[])
}

#[test]
fn example_build_json_builds_a_path_source() {
    let dir = crate::util::workdir();
    let file = fixture("example-build.json", dir.path());
    write_files(dir.path(), &[("ctx/Dockerfile", "FROM busybox:latest\nRUN echo example > /example\n")]);
    let image = unique("ar-example");
    let _cleanup = Images(vec![image.clone()]);
    let context = dir.path().join("ctx").display().to_string();
    let run = build_unchanged(dir.path(), &file, &image, &context);
    run.expect_code(0);
    let out = docker(&["run", "--rm", &image, "cat", "/example"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "example\n", "{}", run.stderr);
}
#[test]
fn the_documented_build_json_pulls_from_the_parent_registry_and_pushes() {
    let dir = crate::util::workdir();
    let file = fixture("build_json_md.json", dir.path());
    // The base exists only in the parent registry, under a name no other test uses.
    let base = unique("ar-base");
    let in_registry = format!("127.0.0.1:5000/{base}:latest");
    for args in [&["tag", "busybox:latest", &in_registry][..], &["push", "-q", &in_registry], &["rmi", &in_registry]] {
        let out = docker(args);
        assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let repo = dir.path().join("repo");
    git_repo(&repo, &[("README", "the default branch has no Dockerfile\n")]);
    git(&repo, &["checkout", "-q", "-b", "devel"]);
    let dockerfile = format!("FROM {base}\nLABEL name=django-app version=1 release=2\nRUN echo django > /app\n");
    crate::util::git_commit(&repo, &[("django/Dockerfile", &dockerfile)], "devel");
    git(&repo, &["checkout", "-q", "main"]);

    let image = unique("ar-documented");
    let _cleanup = Images(vec![
        image.clone(),
        format!("{base}:latest"),
        format!("127.0.0.1:5000/{base}:latest"),
        format!("127.0.0.1:5000/{image}"),
    ]);
    let uri = repo.display().to_string();
    let run = build_unchanged(dir.path(), &file, &image, &uri);
    run.expect_code(0);
    // The base came from the parent registry and was re-tagged to the name the Dockerfile uses.
    assert!(docker(&["image", "inspect", &format!("{base}:latest")]).status.success(), "{}", run.stderr);
    // The image is in the target registry.
    let tags = std::process::Command::new("curl")
        .args(["-sf", &format!("http://127.0.0.1:5000/v2/{image}/tags/list")])
        .output()
        .expect("curl");
    let tags: serde_json::Value = serde_json::from_slice(&tags.stdout).unwrap_or_default();
    assert_eq!(tags["tags"], serde_json::json!(["latest"]), "{}", run.stderr);
}
