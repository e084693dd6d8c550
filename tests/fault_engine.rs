//! Faults of the engine and the registry, and load, end to end: dockerd SIGKILLed in the middle
//! of a build (on a private dockerd: the shared one is never touched), a registry that is gone
//! when the image is pushed (gone for good, or back during the retries), and 16 builds at once
//! on one engine. Each fault asserts the exit code, that the exit plugins ran, that the result
//! document names the cause, and that nothing is left in TMPDIR nor in the engine.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::private_engine::{PrivateEngine, PrivateRegistry};
use crate::util::*;

/// A reactor run's own TMPDIR, `dir/tmp`, created empty.
fn tmpdir(dir: &Path) -> PathBuf {
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).expect("mkdir tmp");
    tmp
}

#[track_caller]
fn assert_empty(tmp: &Path) {
    let left: Vec<_> = std::fs::read_dir(tmp).expect("tmp").map(|e| e.expect("entry").path()).collect();
    assert!(left.is_empty(), "left behind in TMPDIR: {left:?}");
}

fn metadata(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("no result document {}: {e}", path.display()));
    serde_json::from_str(&text).expect("the result document is JSON")
}

/// The commands of every container of the shared engine, to find a test's by a marker in it.
fn container_commands() -> String {
    let ps = docker(&["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]);
    assert!(ps.status.success(), "docker ps: {}", String::from_utf8_lossy(&ps.stderr));
    String::from_utf8_lossy(&ps.stdout).into_owned()
}

/// An exit plugin that records that it ran.
fn exit_recorder(record: &Path) -> Value {
    json!([{"name": "recorder", "args": {"path": record, "label": "ran"}}])
}

#[test]
fn dockerd_killed_mid_build_fails_clearly_and_the_restarted_engine_builds_again() {
    let mut engine = PrivateEngine::start();
    let host = engine.host();
    let dir = workdir();
    let tmp = tmpdir(dir.path());
    // An odd duration, to tell this build's step from others'.
    git_repo(&dir.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\nRUN sleep 30.25\n")]);
    let record = dir.path().join("record.txt");
    let image = unique("engine-killed");
    let file =
        build_json(dir.path(), &json!({"image": image, "git_url": "repo", "exit_plugins": exit_recorder(&record)}));
    let so = plugin("test_plugins");
    let env = [("TMPDIR", tmp.to_str().expect("utf-8")), ("DOCKER_HOST", host.as_str())];
    let args = ["--load-plugin", so.as_str(), "build", "json", file.as_str(), "--metadata-file", "m1.json"];
    let run = Background::start(dir.path(), &args, &env, false);
    run.wait_until("the sleep step", |r| r.stderr().contains("Running in "));
    engine.kill();
    let killed = Instant::now();
    let (code, stderr) = run.wait();

    assert_eq!(code, Some(1), "{stderr}");
    assert!(killed.elapsed() < Duration::from_secs(30), "noticed {:?} after the kill:\n{stderr}", killed.elapsed());
    let cause = format!("the connection to the Docker engine at {host} was lost during the build");
    assert!(stderr.contains(&cause), "{stderr}");
    assert!(!stderr.contains("build context"), "the context had been sent long before:\n{stderr}");
    assert_eq!(std::fs::read_to_string(&record).expect("the exit plugin ran"), "exit ran\n");
    let doc = metadata(&dir.path().join("m1.json"));
    assert_eq!((doc["status"].as_str(), doc["exit_code"].as_i64()), (Some("failed"), Some(1)), "{doc}");
    assert_eq!(doc["failure"]["phase"], "buildstep", "{doc}");
    assert!(doc["failure"]["error"].as_str().expect("error").contains(&cause), "{doc}");
    assert_empty(&tmp);

    // The same engine, restarted on its data root, builds again and keeps nothing of that build.
    engine.restart();
    // The engine kept the interrupted step's container itself, and the error named it.
    let named = stderr.split("the interrupted step's container ").nth(1).and_then(|rest| rest.split(':').next());
    let named = named.unwrap_or_else(|| panic!("the error names the step's container:\n{stderr}"));
    let before = engine.containers();
    assert!(before.iter().all(|id| id.starts_with(named)), "only {named} is left: {before:?}");
    std::fs::remove_file(&record).expect("rm record");
    let args = ["--load-plugin", so.as_str(), "build", "json", file.as_str(), "--metadata-file", "m2.json"];
    let git = dir.path().join("repo");
    git_commit(&git, &[("Dockerfile", "FROM busybox:latest\nRUN echo again > /again\n")], "again");
    let run = reactor(dir.path(), &args, &env);
    run.expect_code(0);
    assert_eq!(std::fs::read_to_string(&record).expect("the exit plugin ran"), "exit ran\n");
    assert_eq!(metadata(&dir.path().join("m2.json"))["status"], "succeeded");
    assert!(engine.docker(&["image", "inspect", &image]).status.success(), "the image is in the restarted engine");
    assert_eq!(engine.containers(), before, "the build left a container behind");
    assert_empty(&tmp);
}

/// A build that pushes to `registry` with the built-in `tag_and_push` (so without the test
/// plugins, which replace it), its exit plugin the built-in `remove_built_image`.
struct PushBuild {
    dir: tempfile::TempDir,
    tmp: PathBuf,
    file: String,
    repo: String,
    marker: String,
    _images: Images,
}

impl PushBuild {
    /// `steps` go into the Dockerfile after its `FROM`.
    fn new(name: &str, registry: &str, steps: &str) -> PushBuild {
        let dir = workdir();
        let tmp = tmpdir(dir.path());
        let repo = unique(name);
        let marker = format!("built {repo}");
        let dockerfile = format!("FROM busybox:latest\n{steps}RUN echo '{marker}'\n");
        git_repo(&dir.path().join("repo"), &[("Dockerfile", &dockerfile)]);
        let file = build_json(
            dir.path(),
            &json!({"image": format!("{repo}:1"), "git_url": "repo",
                    "postbuild_plugins": [{"name": "tag_and_push",
                                           "args": {"registries": {registry: {"insecure": true}}}}],
                    "exit_plugins": [{"name": "remove_built_image", "args": {"remove_pulled_base_image": false}}]}),
        );
        let images = Images(vec![format!("{repo}:1"), format!("{registry}/{repo}:1")]);
        PushBuild { dir, tmp, file, repo, marker, _images: images }
    }

    fn args(&self) -> Vec<String> {
        ["-v", "build", "json", &self.file, "--metadata-file", "m.json"].map(str::to_owned).to_vec()
    }

    fn env(&self) -> [(&str, &str); 1] {
        [("TMPDIR", self.tmp.to_str().expect("utf-8"))]
    }

    /// The exit plugin ran (the built image is gone), TMPDIR is empty, no container of the
    /// build is left; the result document.
    fn check_clean_end(&self) -> Value {
        let doc = metadata(&self.dir.path().join("m.json"));
        let exit = doc["plugins"].as_array().expect("plugins").iter().find(|r| r["phase"] == "exit").cloned();
        let exit = exit.unwrap_or_else(|| panic!("no exit plugin ran: {doc}"));
        assert_eq!((exit["key"].as_str(), exit["status"].as_str()), (Some("remove_built_image"), Some("succeeded")));
        assert!(!docker(&["image", "inspect", &format!("{}:1", self.repo)]).status.success(), "the image is removed");
        assert_empty(&self.tmp);
        assert!(!container_commands().contains(&self.marker), "a container of the build is left");
        doc
    }
}

#[test]
fn a_registry_gone_for_good_fails_the_push_after_bounded_retries() {
    let mut registry = PrivateRegistry::start();
    registry.stop();
    let build = PushBuild::new("push-gone", &registry.address, "");
    let args = build.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = reactor(build.dir.path(), &args, &build.env());
    run.expect_code(1);

    let name = format!("{}/{}:1", registry.address, build.repo);
    for attempt in ["attempt 1 of 3", "attempt 2 of 3"] {
        let retry = format!("push {name}: the registry {} could not take it ({attempt})", registry.address);
        assert!(run.stderr.contains(&retry), "no '{retry}' in:\n{}", run.stderr);
    }
    assert!(run.stderr.contains("retrying in 1 s") && run.stderr.contains("retrying in 2 s"), "{}", run.stderr);
    assert!(!run.stderr.contains("attempt 3 of 3"), "three attempts, two retries:\n{}", run.stderr);
    let cause = format!("the registry {} is unreachable or failing; gave up after 3 attempts", registry.address);
    let doc = build.check_clean_end();
    assert_eq!((doc["status"].as_str(), doc["exit_code"].as_i64()), (Some("failed"), Some(1)), "{doc}");
    assert_eq!(
        (doc["failure"]["phase"].as_str(), doc["failure"]["plugin"].as_str()),
        (Some("postbuild"), Some("tag_and_push"))
    );
    let error = doc["failure"]["error"].as_str().expect("error");
    assert!(error.contains(&cause) && error.contains("connection refused"), "{error}");
    assert_eq!(doc["digests"], json!({}));
}

#[test]
fn a_registry_back_during_the_retries_takes_the_push() {
    let mut registry = PrivateRegistry::start();
    registry.stop();
    let build = PushBuild::new("push-back", &registry.address, "");
    let args = build.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = Background::start(build.dir.path(), &args, &build.env(), false);
    run.wait_until("the first retry", |r| r.stderr().contains("(attempt 1 of 3)"));
    registry.restart();
    let (code, stderr) = run.wait();

    assert_eq!(code, Some(0), "{stderr}");
    let name = format!("{}/{}:1", registry.address, build.repo);
    assert!(stderr.contains(&format!("push {name}: the registry")), "the retry is logged:\n{stderr}");
    let doc = build.check_clean_end();
    assert_eq!(doc["status"], "succeeded", "{doc}");
    let digest = doc["digests"][&name].as_str().unwrap_or_else(|| panic!("a digest for {name}: {doc}"));
    assert_eq!(registry.manifest_status(&build.repo, digest), 200, "the registry serves {digest}");
}

#[test]
fn a_registry_killed_during_the_push_fails_it_after_the_engine_and_reactor_retries() {
    let mut registry = PrivateRegistry::start();
    // A layer of 64 MB that does not compress, so that the upload is still going when the
    // registry is killed.
    let big_layer = "RUN head -c 64000000 /dev/urandom > /blob\n";
    let build = PushBuild::new("push-killed", &registry.address, big_layer);
    let args = build.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = Background::start(build.dir.path(), &args, &build.env(), false);
    run.wait_until("an upload to the registry", |_| registry.upload_started(&build.repo));
    registry.stop();
    // The engine retries the layer itself (5 attempts over about 50 s), then reactor retries the push.
    let (code, stderr) = run.wait_up_to(Duration::from_secs(240));

    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("(attempt 2 of 3)"), "reactor retried:\n{stderr}");
    let cause = format!("the registry {} is unreachable or failing; gave up after 3 attempts", registry.address);
    let doc = build.check_clean_end();
    assert_eq!((doc["status"].as_str(), doc["exit_code"].as_i64()), (Some("failed"), Some(1)), "{doc}");
    assert!(doc["failure"]["error"].as_str().expect("error").contains(&cause), "{doc}");
}

#[test]
fn sixteen_concurrent_builds_from_one_repository_each_make_their_own_image_and_leak_nothing() {
    const BUILDS: usize = 16;
    let dir = workdir();
    let tmp = tmpdir(dir.path());
    let marker = unique("load");
    let dockerfiles: Vec<(String, String)> = (0..BUILDS)
        .map(|n| {
            let dockerfile =
                format!("FROM busybox:latest\nLABEL reactor.test.which={n}\nRUN echo '{marker} {n}' > /which\n");
            (format!("b{n:02}/Dockerfile"), dockerfile)
        })
        .collect();
    let files: Vec<(&str, &str)> = dockerfiles.iter().map(|(p, d)| (p.as_str(), d.as_str())).collect();
    git_repo(&dir.path().join("repo"), &files);
    let images: Vec<String> = (0..BUILDS).map(|n| format!("{marker}-{n:02}")).collect();
    let _cleanup = Images(images.clone());
    let so = plugin("test_plugins");

    let runs: Vec<(Run, PathBuf, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..BUILDS)
            .map(|n| {
                let (dir, tmp, so, image) = (dir.path(), &tmp, &so, &images[n]);
                scope.spawn(move || {
                    let record = dir.join(format!("record-{n:02}.txt"));
                    let request = json!({"image": image,
                        "source": {"provider": "git", "uri": "repo", "dockerfile_path": format!("b{n:02}")},
                        "exit_plugins": exit_recorder(&record)});
                    let file = dir.join(format!("build-{n:02}.json"));
                    std::fs::write(&file, request.to_string()).expect("write build.json");
                    let (file, metadata) = (file.display().to_string(), format!("m-{n:02}.json"));
                    let args = ["--load-plugin", so.as_str(), "build", "json", &file, "--metadata-file", &metadata];
                    let run = reactor(dir, &args, &[("TMPDIR", tmp.to_str().expect("utf-8"))]);
                    let doc = metadata_or_null(&dir.join(&metadata));
                    (run, record, doc)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a build thread")).collect()
    });

    for (n, (run, record, doc)) in runs.iter().enumerate() {
        run.expect_code(0);
        assert_eq!(doc["status"], "succeeded", "build {n}: {doc}");
        assert_eq!(std::fs::read_to_string(record).expect("the exit plugin ran"), "exit ran\n", "build {n}");
        let inspect =
            docker(&["image", "inspect", "-f", "{{index .Config.Labels \"reactor.test.which\"}} {{.Id}}", &images[n]]);
        assert!(inspect.status.success(), "image {}: {}", images[n], String::from_utf8_lossy(&inspect.stderr));
        let inspect = String::from_utf8_lossy(&inspect.stdout).trim().to_owned();
        let (which, id) = inspect.split_once(' ').expect("label and id");
        assert_eq!(which, n.to_string(), "image {} is build {n}'s", images[n]);
        assert_eq!(doc["image_id"].as_str(), Some(id), "build {n}'s document names its image");
    }
    // Each image holds its own build's file.
    for n in [0, BUILDS - 1] {
        assert_eq!(docker_run(&images[n], &["cat", "/which"]).trim(), format!("{marker} {n}"));
    }
    assert_empty(&tmp);
    assert!(!container_commands().contains(&marker), "a build container is left");
}

fn metadata_or_null(path: &Path) -> Value {
    std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null)
}
