//! The built-ins that move base and built images, on the real engine and registries:
//! `pull_base_image` (from 127.0.0.1:5000, and from 127.0.0.1:5001 with a `.dockercfg`),
//! `change_from_in_dockerfile` and `remove_built_image`.
//!
//! Each base image is made for its test (busybox plus a label of its own, so its ID is its own
//! too), pushed, and removed from the engine before the build: only the registry has it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::util::*;

const REGISTRY: &str = "127.0.0.1:5000";
/// The registry with htpasswd auth that scripts/setup.sh starts, and its login.
const AUTH_REGISTRY: &str = "127.0.0.1:5001";
const USER: &str = "reactor";
const SECRET: &str = "reactor-secret";

/// A base image `name:1` that only `registry` serves; returns `name:1`.
fn served_base(dir: &Path, registry: &str) -> String {
    served_base_in(dir, registry, "")
}

/// A base image `name:1` that only `registry` serves, as `registry/{namespace}name:1`.
fn served_base_in(dir: &Path, registry: &str, namespace: &str) -> String {
    let name = format!("{}:1", unique("base"));
    let pushed = format!("{registry}/{namespace}{name}");
    let dockerfile = format!("FROM busybox:latest\nLABEL reactor-test.base=\"{name}\"\n");
    let context = dir.join(unique("base-context"));
    write_files(&context, &[("Dockerfile", &dockerfile)]);
    docker_build(&pushed, &context);

    // A docker CLI config of the test's own, so the machine's config.json is never touched.
    let config = dir.join("cli-config");
    let config = config.to_str().expect("utf-8");
    if registry == AUTH_REGISTRY {
        let mut login = Command::new("docker")
            .args(["--config", config, "login", "-u", USER, "--password-stdin", registry])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker login");
        login.stdin.take().expect("stdin").write_all(SECRET.as_bytes()).expect("write the password");
        assert!(login.wait().expect("docker login").success(), "docker login {registry}");
    }
    let push = docker(&["--config", config, "push", &pushed]);
    assert!(push.status.success(), "docker push {pushed}: {}", String::from_utf8_lossy(&push.stderr));
    let rmi = docker(&["rmi", &pushed]);
    assert!(rmi.status.success(), "docker rmi {pushed}: {}", String::from_utf8_lossy(&rmi.stderr));
    assert!(!in_engine(&pushed), "{pushed} is only in the registry now");
    name
}

/// Whether the engine has `name` (an image name or ID).
fn in_engine(name: &str) -> bool {
    docker(&["image", "inspect", name]).status.success()
}

/// The engine's ID of `name`.
fn id_of(name: &str) -> String {
    let out = docker(&["image", "inspect", "-f", "{{.Id}}", name]);
    assert!(out.status.success(), "docker image inspect {name}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The digest `registry` serves for `name` (`repo:tag`).
fn served_digest_of(registry: &str, name: &str, login: Option<&str>) -> String {
    let (repository, tag) = name.rsplit_once(':').expect("repo:tag");
    served_digest(registry, repository, tag, login)
}

/// One build, with `-v`.
struct Built {
    run: Run,
    doc: Value,
    image: String,
}

/// Builds `dockerfile` from a git repository with these build.json `fields` added.
fn build_with(dir: &Path, dockerfile: &str, fields: Value, env: &[(&str, &str)]) -> Built {
    git_repo(&dir.join("repo"), &[("Dockerfile", dockerfile)]);
    let image = format!("{}:1", unique("images"));
    let mut request = json!({"image": image, "git_url": "repo"});
    request.as_object_mut().expect("object").extend(fields.as_object().expect("fields").clone());
    let file = build_json(dir, &request);
    let run = reactor(dir, &["-v", "build", "json", &file, "--metadata-file", "m.json"], env);
    let text = std::fs::read_to_string(dir.join("m.json")).expect("the result document");
    Built { run, doc: serde_json::from_str(&text).expect("JSON"), image }
}

/// The record of the run of `key` in `phase`.
fn run_of<'a>(doc: &'a Value, phase: &str, key: &str) -> &'a Value {
    let runs = doc["plugins"].as_array().unwrap_or_else(|| panic!("no plugin runs: {doc}"));
    runs.iter().find(|r| r["key"] == key && r["phase"] == phase).unwrap_or_else(|| panic!("{phase} {key} ran: {doc}"))
}

/// Removes at the end the names a test may leave: each base in the registry's name and its own.
fn cleanup(image: &str, bases: &[(&str, &str)]) -> Images {
    let mut names = vec![image.to_owned()];
    for (registry, base) in bases {
        names.push(format!("{registry}/{base}"));
        names.push(base.to_string());
    }
    Images(names)
}

#[test]
fn a_parent_registry_in_build_json_pulls_a_base_only_the_registry_has_and_records_its_digest() {
    let dir = workdir();
    let base = served_base(dir.path(), REGISTRY);
    let served = served_digest_of(REGISTRY, &base, None);
    // The top-level parent_registry adds pull_base_image, as in atomic-reactor.
    let fields = json!({"parent_registry": REGISTRY, "parent_registry_insecure": true});
    let built = build_with(dir.path(), &format!("FROM {base}\nRUN echo built > /built\n"), fields, &[]);
    let _cleanup = cleanup(&built.image, &[(REGISTRY, &base)]);
    built.run.expect_code(0);

    let pulled = format!("{REGISTRY}/{base}");
    let id = id_of(&base);
    assert_eq!(id, id_of(&pulled), "re-tagged to the Dockerfile's name");
    assert_eq!(built.doc["pulled_images"], json!([{"name": pulled, "id": id, "digest": served}]));
    let run = run_of(&built.doc, "prebuild", "pull_base_image");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["result"], json!([{"from": base, "pulled": pulled, "tagged": base, "id": id, "digest": served}]));
    assert_eq!(docker_run(&built.image, &["cat", "/built"]), "built\n");
    // The build found the base in the engine: it pulled nothing itself.
    let build_lines: Vec<&str> = built.run.stderr.lines().filter(|l| l.contains("reactor::build")).collect();
    assert!(build_lines.iter().any(|l| l.contains(&format!("FROM {base}"))), "{}", built.run.stderr);
    assert!(!build_lines.iter().any(|l| l.contains("Pulling")), "{}", built.run.stderr);
}

#[test]
fn a_base_is_pulled_with_the_credentials_of_a_secret_dir_and_no_password_is_printed() {
    let dir = workdir();
    let base = served_base(dir.path(), AUTH_REGISTRY);
    let served = served_digest_of(AUTH_REGISTRY, &base, Some(&format!("{USER}:{SECRET}")));
    let secret_dir = dir.path().join("secret");
    let dockercfg = json!({AUTH_REGISTRY: {"username": USER, "password": SECRET, "email": "reactor@example.com"}});
    write_files(&secret_dir, &[(".dockercfg", &dockercfg.to_string())]);
    // No config.json to fall back on: the secret dir is what logs in.
    let empty = dir.path().join("no-docker-config");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let pull = json!({"name": "pull_base_image", "args": {"parent_registry": AUTH_REGISTRY,
        "parent_registry_insecure": true, "parent_registry_dockercfg_path": secret_dir}});
    let fields = json!({"prebuild_plugins": [pull]});
    let env = [("DOCKER_CONFIG", empty.to_str().expect("utf-8"))];
    let built = build_with(dir.path(), &format!("FROM {base}\nRUN true\n"), fields, &env);
    let _cleanup = cleanup(&built.image, &[(AUTH_REGISTRY, &base)]);
    built.run.expect_code(0);

    let pulled = format!("{AUTH_REGISTRY}/{base}");
    assert_eq!(built.doc["pulled_images"], json!([{"name": pulled, "id": id_of(&base), "digest": served}]));
    assert!(built.run.stderr.contains(&format!("pulling {pulled} for FROM {base}")), "{}", built.run.stderr);
    let doc = std::fs::read_to_string(dir.path().join("m.json")).expect("result document");
    for text in [&built.run.stderr, &built.run.stdout, &doc] {
        assert!(!text.contains(SECRET), "the password is printed:\n{text}");
    }
}

#[test]
fn a_base_the_parent_registry_has_only_in_library_is_pulled_from_there() {
    let dir = workdir();
    let base = served_base_in(dir.path(), REGISTRY, "library/");
    let fields = json!({"prebuild_plugins": [{"name": "pull_base_image", "args": {"parent_registry": REGISTRY}}]});
    let built = build_with(dir.path(), &format!("FROM {base}\nRUN true\n"), fields, &[]);
    let pulled = format!("{REGISTRY}/library/{base}");
    let _cleanup = Images(vec![built.image.clone(), pulled.clone(), base.clone()]);
    built.run.expect_code(0);

    assert!(
        built.run.stderr.contains(&format!("{REGISTRY}/{base} not found; trying {pulled}")),
        "{}",
        built.run.stderr
    );
    let result = &run_of(&built.doc, "prebuild", "pull_base_image")["result"][0];
    assert_eq!((result["pulled"].as_str(), result["tagged"].as_str()), (Some(pulled.as_str()), Some(base.as_str())));
    assert_eq!(id_of(&base), id_of(&pulled));
    assert_eq!(built.doc["pulled_images"][0]["name"], pulled);
}

#[test]
fn a_multi_stage_dockerfile_pulls_both_external_bases_and_skips_the_alias() {
    let dir = workdir();
    let (first, second) = (served_base(dir.path(), REGISTRY), served_base(dir.path(), REGISTRY));
    let dockerfile = format!(
        "FROM {first} AS build\nRUN echo first > /first\nFROM build AS again\nRUN echo again >> /first\n\
         FROM {second}\nCOPY --from=again /first /from-first\n"
    );
    let fields = json!({"prebuild_plugins": [{"name": "pull_base_image", "args": {"parent_registry": REGISTRY}}]});
    let built = build_with(dir.path(), &dockerfile, fields, &[]);
    let _cleanup = cleanup(&built.image, &[(REGISTRY, &first), (REGISTRY, &second)]);
    built.run.expect_code(0);

    let result = &run_of(&built.doc, "prebuild", "pull_base_image")["result"];
    let froms: Vec<&str> = result.as_array().expect("a list").iter().filter_map(|e| e["from"].as_str()).collect();
    assert_eq!(froms, [first.as_str(), second.as_str()]);
    let names: Vec<&str> =
        built.doc["pulled_images"].as_array().expect("a list").iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, [format!("{REGISTRY}/{first}"), format!("{REGISTRY}/{second}")]);
    assert_eq!(docker_run(&built.image, &["cat", "/from-first"]), "first\nagain\n");
}

#[test]
fn a_from_naming_another_registry_is_refused_in_one_line_and_exit_plugins_still_run() {
    let dir = workdir();
    let elsewhere = format!("{AUTH_REGISTRY}/{}:1", unique("elsewhere"));
    let fields = json!({
        "prebuild_plugins": [{"name": "pull_base_image", "args": {"parent_registry": REGISTRY}}],
        "exit_plugins": [{"name": "remove_built_image"}]
    });
    let built = build_with(dir.path(), &format!("FROM {elsewhere}\n"), fields, &[]);
    let _cleanup = Images(vec![built.image.clone()]);
    built.run.expect_code(1);

    let message = format!(
        "FROM {elsewhere} names the registry {AUTH_REGISTRY}, but base images may come only from parent_registry {REGISTRY}: drop the registry from FROM or change parent_registry"
    );
    let errors = built.run.errors();
    assert!(
        errors.iter().any(|l| l.ends_with(&format!("prebuild plugin 'pull_base_image' failed: {message}"))),
        "{}",
        built.run.stderr
    );
    assert_eq!(built.doc["failure"]["plugin"], "pull_base_image");
    assert_eq!(built.doc["failure"]["error"], format!("prebuild plugin 'pull_base_image' failed: {message}"));
    assert_eq!(built.doc["pulled_images"], json!([]));
    assert_eq!(run_of(&built.doc, "exit", "remove_built_image")["status"], "succeeded");
}

#[test]
fn change_from_in_dockerfile_builds_from_the_pulled_base_image_id() {
    let dir = workdir();
    let base = served_base(dir.path(), REGISTRY);
    let fields = json!({"prebuild_plugins": [
        {"name": "pull_base_image", "args": {"parent_registry": REGISTRY, "parent_registry_insecure": true}},
        {"name": "change_from_in_dockerfile"}
    ]});
    let built = build_with(dir.path(), &format!("# the base\nFROM {base} AS only\nRUN true\n"), fields, &[]);
    let _cleanup = cleanup(&built.image, &[(REGISTRY, &base)]);
    built.run.expect_code(0);

    let id = id_of(&base);
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(built.doc["dockerfile"], format!("# the base\nFROM {id} AS only\nRUN true\n"));
    assert_eq!(built.doc["base_image"], id);
    assert_eq!(run_of(&built.doc, "prebuild", "change_from_in_dockerfile")["result"], json!({base.clone(): id}));
    // The built image's parent is that very image.
    let parent = docker(&["image", "inspect", "-f", "{{.Parent}}", &built.image]);
    let history = docker(&["history", "-q", "--no-trunc", &built.image]);
    let history = String::from_utf8_lossy(&history.stdout);
    assert!(
        String::from_utf8_lossy(&parent.stdout).trim() == id || history.lines().any(|l| l.trim() == id),
        "{} is built on {id}: {history}",
        built.image
    );
}

#[test]
fn remove_built_image_leaves_nothing_behind_and_tolerates_images_already_gone() {
    let dir = workdir();
    let base = served_base(dir.path(), REGISTRY);
    let fields = json!({
        "prebuild_plugins": [{"name": "pull_base_image", "args": {"parent_registry": REGISTRY}}],
        // The second run finds everything gone already.
        "exit_plugins": [{"name": "remove_built_image"}, {"name": "remove_built_image", "is_allowed_to_fail": false}]
    });
    let built = build_with(dir.path(), &format!("FROM {base}\nLABEL built=yes\n"), fields, &[]);
    let _cleanup = cleanup(&built.image, &[(REGISTRY, &base)]);
    built.run.expect_code(0);

    let built_id = built.doc["image_id"].as_str().expect("the built image's ID").to_owned();
    let base_id = built.doc["pulled_images"][0]["id"].as_str().expect("the base's ID").to_owned();
    let pulled = format!("{REGISTRY}/{base}");
    for gone in [built_id.as_str(), built.image.as_str(), pulled.as_str(), base.as_str(), base_id.as_str()] {
        assert!(!in_engine(gone), "{gone} is still in the engine");
    }
    let runs: Vec<&Value> =
        built.doc["plugins"].as_array().expect("runs").iter().filter(|r| r["key"] == "remove_built_image").collect();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["result"], json!([built_id, built.image, pulled, base]));
    assert_eq!((runs[1]["status"].as_str(), &runs[1]["result"]), (Some("succeeded"), &json!([])));
    assert!(built.run.stderr.contains(&format!("{base} is already gone")), "{}", built.run.stderr);
}
