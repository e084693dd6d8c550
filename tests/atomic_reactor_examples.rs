//! atomic-reactor 1.6's own example build.json files (`tests/fixtures/atomic-reactor/`) run
//! through reactor unchanged, with only the image name and source URI substituted, as their
//! users would: a path source with `"target_registries_insecure": "True"`, and the documented
//! git build that pulls its base from a parent registry, checks its labels and pushes.

use std::path::Path;

use crate::util::{docker, reactor, unique, write_files, Images};

fn fixture(name: &str, dir: &Path) -> String {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/atomic-reactor").join(name);
    let copy = dir.join(name);
    std::fs::copy(&source, &copy).unwrap_or_else(|e| panic!("copy {}: {e}", source.display()));
    copy.display().to_string()
}

#[test]
fn example_build_json_builds_a_path_source() {
    let dir = crate::util::workdir();
    let file = fixture("example-build.json", dir.path());
    write_files(dir.path(), &[("ctx/Dockerfile", "FROM busybox:latest\nRUN echo example > /example\n")]);
    let image = unique("ar-example");
    let _cleanup = Images(vec![image.clone()]);
    let context = dir.path().join("ctx").display().to_string();
    let run = reactor(
        dir.path(),
        &[
            "build",
            "json",
            &file,
            "--substitute",
            &format!("image={image}"),
            "--substitute",
            &format!("source.uri={context}"),
        ],
        &[],
    );
    run.expect_code(0);
    let out = docker(&["run", "--rm", &image, "cat", "/example"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "example\n", "{}", run.stderr);
}
