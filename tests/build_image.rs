//! reactor's own image (`create-build-image`) and builds run inside it: `inside-build` with each
//! input, the results files Tekton reads, and `build --method hostdocker` end to end. The image
//! is built once per test run (it takes a few seconds) under a unique tag, removed at exit.

use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;

use crate::util::*;

/// The image this test run built, from the reactor under test and the logs_submitter fixture
/// (the plugin reactor ships), tagged with reactor's version as a release's image is; the
/// deploy contract tests run it too.
pub fn reactor_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let plugin = plugin("logs_submitter");
        let tag = format!("{}:{}", unique("buildimage"), env!("CARGO_PKG_VERSION"));
        let dir = workdir();
        reactor(dir.path(), &["create-build-image", "--tag", &tag, "--plugin", &plugin], &[]).expect_code(0);
        remove_at_exit(&tag);
        tag
    })
}

/// Removes `image` when the test process exits: the image is shared by the tests of one run,
/// so no test's end can remove it.
fn remove_at_exit(image: &str) {
    static IMAGES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    extern "C" fn remove() {
        if let Ok(images) = IMAGES.lock() {
            for image in images.iter() {
                let _ = docker(&["rmi", "-f", image]);
            }
        }
    }
    IMAGES.lock().expect("lock").push(image.to_owned());
    // SAFETY: `remove` is a plain function that touches only a static.
    unsafe {
        libc::atexit(remove);
    }
}

fn inspect(image: &str, format: &str) -> String {
    let out = docker(&["image", "inspect", "-f", format, image]);
    assert!(out.status.success(), "docker image inspect {image}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs `docker run --rm ARGS… IMAGE CMD…` and returns (exit code, stdout, stderr).
fn docker_run_with(args: &[&str], image: &str, cmd: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    all.push(image);
    all.extend_from_slice(cmd);
    let out = docker(&all);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn create_build_image_makes_a_scratch_image_running_reactor_as_a_non_root_user() {
    let image = reactor_image();
    assert_eq!(inspect(image, "{{json .Config.Entrypoint}}"), r#"["reactor"]"#);
    assert_eq!(inspect(image, "{{.Config.User}}"), "1000");
    assert_eq!(inspect(image, "{{.Config.WorkingDir}}"), "/home/reactor");
    assert_eq!(
        inspect(image, "{{index .Config.Labels \"org.opencontainers.image.version\"}}"),
        env!("CARGO_PKG_VERSION")
    );
    let env = inspect(image, "{{json .Config.Env}}");
    assert!(env.contains("HOME=/home/reactor"), "{env}");

    let (code, stdout, stderr) = docker_run_with(&[], image, &["--version"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), format!("reactor {}", env!("CARGO_PKG_VERSION")));

    // The shipped plugin is found in the system plugin directory, and loads there.
    let (code, stdout, stderr) = docker_run_with(&[], image, &["plugins", "check", "/usr/lib/reactor/plugins"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("liblogs_submitter.so: ok: 'logs_submitter'"), "{stdout}");

    // Certificates, the ssh client with its libraries, the user, a sticky /tmp, a writable home:
    // seen from inside with the binaries the image has (it has no shell).
    let (code, stdout, stderr) = docker_run_with(&["--entrypoint", "/usr/bin/ssh"], image, &["-V"]);
    assert_eq!(code, Some(0), "ssh -V: {stdout}{stderr}");
    assert!(stderr.contains("OpenSSH"), "{stderr}");
    let export = workdir();
    let container = unique("buildimage-export");
    let out = docker(&["create", "--name", &container, image]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tar = export.path().join("fs.tar");
    let out = docker(&["export", "-o", tar.to_str().expect("utf-8"), &container]);
    let _ = docker(&["rm", "-f", &container]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = std::process::Command::new("tar").args(["--numeric-owner", "-tvf"]).arg(&tar).output().expect("tar");
    let listing = String::from_utf8_lossy(&listing.stdout);
    let line = |path: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(&format!(" {path}")) || l.ends_with(&format!(" {path}/")))
            .unwrap_or_else(|| panic!("{path} is not in the image:\n{listing}"))
            .to_owned()
    };
    assert!(line("etc/ssl/certs/ca-certificates.crt").starts_with("-rw-r--r--"));
    assert!(line("tmp").starts_with("drwxrwxrwt"), "{}", line("tmp"));
    assert!(line("home/reactor").contains(" 1000/1000 "), "{}", line("home/reactor"));
    line("usr/bin/reactor");
    line("usr/bin/ssh");
    line("usr/lib/reactor/plugins/liblogs_submitter.so");
    let passwd = docker_cp_text(image, "/etc/passwd");
    assert!(passwd.contains("reactor:x:1000:1000:"), "{passwd}");
}

/// A file of `image`, read through `docker cp` (the image has no `cat`).
fn docker_cp_text(image: &str, path: &str) -> String {
    let container = unique("buildimage-cp");
    let out = docker(&["create", "--name", &container, image]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = docker(&["cp", &format!("{container}:{path}"), "-"]);
    let _ = docker(&["rm", "-f", &container]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut archive = tar::Archive::new(out.stdout.as_slice());
    let mut text = String::new();
    for entry in archive.entries().expect("tar") {
        use std::io::Read;
        entry.expect("entry").read_to_string(&mut text).expect("read");
    }
    text
}

#[test]
fn create_build_image_refuses_a_plugin_file_that_is_not_there() {
    let dir = workdir();
    let run = reactor(dir.path(), &["create-build-image", "--tag", "x:1", "--plugin", "nowhere/libnone.so"], &[]);
    run.expect_code(2);
    let errors = run.errors();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(errors[0].contains("nowhere/libnone.so") && errors[0].contains("no such file"), "{}", run.stderr);
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("json")
}

/// Checks the three results files against what the registry holds for `name:tag`.
fn assert_results(dir: &Path, name: &str, tag: &str) {
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let digest = served_digest("127.0.0.1:5000", name, tag, None);
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(read("IMAGE_URL"), format!("127.0.0.1:5000/{name}:{tag}"));
    assert_eq!(read("IMAGE_DIGEST"), digest);
    assert_eq!(read("IMAGES"), format!("127.0.0.1:5000/{name}@{digest}"));
}

/// The seed's example (examples/hello/docker-hello-world) copied into `dir/name`.
fn seed_example(dir: &Path, name: &str) -> std::path::PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello/docker-hello-world");
    let to = dir.join(name);
    std::fs::create_dir_all(&to).expect("mkdir");
    for entry in std::fs::read_dir(&from).expect("the seed's example") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
    to
}

/// A share directory the image's user (uid 1000) can write in.
fn share_dir(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let share = dir.join("share");
    std::fs::create_dir(&share).expect("mkdir");
    std::fs::set_permissions(&share, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    share
}

/// `docker run` arguments that hand the engine's socket to the image's non-root user.
fn socket_args() -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let gid = std::fs::metadata("/var/run/docker.sock").expect("the engine's socket").gid();
    vec!["-v".into(), "/var/run/docker.sock:/var/run/docker.sock".into(), "--group-add".into(), gid.to_string()]
}

/// Runs `inside-build ARGS` in the image with the socket, `share` at /run/share, `source` at /src.
fn inside_build(share: &Path, source: &Path, env: &[&str], args: &[&str]) -> (Option<i32>, String, String) {
    let mut run_args = socket_args();
    run_args.extend(["-v".into(), format!("{}:/run/share", share.display())]);
    run_args.extend(["-v".into(), format!("{}:/src:ro", source.display())]);
    for e in env {
        run_args.extend(["-e".into(), (*e).to_owned()]);
    }
    let run_args: Vec<&str> = run_args.iter().map(String::as_str).collect();
    let mut cmd = vec!["inside-build"];
    cmd.extend_from_slice(args);
    docker_run_with(&run_args, reactor_image(), &cmd)
}

fn push_build_json(image: &str) -> Value {
    serde_json::json!({
        "image": image,
        "source": {"provider": "path", "uri": "/src"},
        "target_registries": ["127.0.0.1:5000"],
        "target_registries_insecure": true,
    })
}

#[test]
fn inside_build_with_input_path_builds_the_seed_example_pushes_and_writes_its_results() {
    let dir = workdir();
    let source = seed_example(dir.path(), "src");
    let share = share_dir(dir.path());
    let name = unique("inside-path");
    let _images = Images(vec![format!("{name}:1"), format!("127.0.0.1:5000/{name}:1")]);
    std::fs::write(share.join("build.json"), push_build_json(&format!("{name}:1")).to_string()).expect("write");
    let (code, stdout, stderr) =
        inside_build(&share, &source, &[], &["--input", "path", "--results-dir", "/run/share/results"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let doc = read_json(&share.join("results.json"));
    assert_eq!(doc["status"], "succeeded", "{doc}");
    assert_eq!(doc["digests"][format!("127.0.0.1:5000/{name}:1")], served_digest("127.0.0.1:5000", &name, "1", None));
    assert_results(&share.join("results"), &name, "1");
}

#[test]
fn inside_build_with_input_env_reads_the_variable_and_an_input_arg_renames_it() {
    let dir = workdir();
    let source = seed_example(dir.path(), "src");
    let share = share_dir(dir.path());
    let name = unique("inside-env");
    let _images = Images(vec![format!("{name}:2"), format!("127.0.0.1:5000/{name}:2")]);
    let env = format!("MY_BUILD={}", push_build_json(&format!("{name}:2")));
    let (code, stdout, stderr) = inside_build(
        &share,
        &source,
        &[&env],
        &["--input", "env", "--input-arg", "env_name=MY_BUILD", "--results-dir", "/run/share/results"],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(read_json(&share.join("results.json"))["status"], "succeeded");
    assert_results(&share.join("results"), &name, "2");
}

#[test]
fn inside_build_with_input_auto_takes_the_one_input_there_and_refuses_none_or_both() {
    let dir = workdir();
    let source = seed_example(dir.path(), "src");
    let share = share_dir(dir.path());
    let json = serde_json::json!({"image": "auto:1", "source": {"provider": "path", "uri": "/src"}}).to_string();
    let env = format!("BUILD_JSON={json}");

    // None: one line, exit 2, and no build.
    let (code, stdout, stderr) = inside_build(&share, &source, &[], &["--input", "auto", "--dry-run"]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("found no build.json") && stderr.contains("pass --input path or --input env"), "{stderr}");

    // The variable alone, then the file alone: each is taken (a dry run shows the plan).
    let (code, stdout, stderr) = inside_build(&share, &source, &[&env], &["--dry-run"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("auto:1"), "{stdout}");
    std::fs::write(share.join("build.json"), &json).expect("write");
    let (code, stdout, stderr) = inside_build(&share, &source, &[], &["--input", "auto", "--dry-run"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("auto:1"), "{stdout}");

    // Both: refused, naming both.
    let (code, stdout, stderr) = inside_build(&share, &source, &[&env], &["--dry-run"]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("both /run/share/build.json and $BUILD_JSON"), "{stderr}");
}

#[test]
fn results_dir_names_the_pushed_image_and_is_empty_when_nothing_was_pushed() {
    let dir = workdir();
    let source = seed_example(dir.path(), "src");
    let name = unique("results-dir");
    let _images = Images(vec![format!("{name}:3"), format!("127.0.0.1:5000/{name}:3")]);
    let src = source.display().to_string();
    let image = format!("{name}:3");
    let args = ["build", "path", "--uri", &src, "--image", &image, "--target-registries", "127.0.0.1:5000"];
    let mut pushed = args.to_vec();
    pushed.extend(["--results-dir", "pushed"]);
    reactor(dir.path(), &pushed, &[]).expect_code(0);
    assert_results(&dir.path().join("pushed"), &name, "3");

    // Refused input pushes nothing: the files are there, empty, and the exit code says why.
    let mut refused = args[..6].to_vec();
    refused.extend(["--results-dir", "refused"]);
    refused[5] = "Not A Name";
    let run = reactor(dir.path(), &refused, &[]);
    assert!(matches!(run.code, Some(2)), "{}", run.stderr);
    for file in ["IMAGE_URL", "IMAGE_DIGEST", "IMAGES"] {
        assert_eq!(std::fs::read_to_string(dir.path().join("refused").join(file)).expect(file), "");
    }
}

#[test]
fn method_privileged_is_refused_naming_the_alternatives() {
    let dir = workdir();
    let run = reactor(dir.path(), &["build", "path", "--uri", ".", "--image", "x:1", "--method", "privileged"], &[]);
    run.expect_code(2);
    let errors = run.errors();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(errors[0].contains("--method hostdocker") && errors[0].contains("--method here"), "{}", run.stderr);
}

/// The build containers of `image` the engine still has.
fn build_containers(image: &str) -> String {
    let filter = format!("label=io.reactor.build-container={image}");
    let out = docker(&["ps", "-a", "-q", "--filter", &filter]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn method_hostdocker_runs_the_seed_build_in_the_image_and_brings_back_its_results() {
    let dir = workdir();
    let repo = seed_example(dir.path(), "docker-hello-world");
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "the seed's example"]);
    let listener = Listener::start("ok");
    let name = unique("hostdocker");
    let image = format!("{name}:1");
    let _images = Images(vec![image.clone(), format!("127.0.0.1:5000/{image}")]);
    // The seed's build.json, with a registry to push to.
    let file = build_json(
        dir.path(),
        &serde_json::json!({
            "image": image,
            "git_url": "docker-hello-world",
            "target_registries": ["127.0.0.1:5000"],
            "target_registries_insecure": true,
            "postbuild_plugins": [
                {"name": "tag_and_push", "args": {"registries": {"127.0.0.1:5000": {"insecure": true}}}},
                {"name": "logs_submitter", "args": {"url": listener.url}},
            ],
        }),
    );
    let plugin = plugin("logs_submitter");
    let build_image = reactor_image();
    let run = reactor(
        dir.path(),
        &[
            "--load-plugin",
            &plugin,
            "build",
            "json",
            &file,
            "--method",
            "hostdocker",
            "--build-image",
            build_image,
            "--metadata-file",
            "result.json",
            "--results-dir",
            "results",
        ],
        &[],
    );
    run.expect_code(0);
    assert!(run.stderr.contains(&format!("running the build in a container of {build_image}")), "{}", run.stderr);
    // The build's own log lines came through, as the reactor inside wrote them.
    assert!(run.stderr.contains("Step 1/3 : FROM busybox:latest"), "{}", run.stderr);
    let doc = read_json(&dir.path().join("result.json"));
    assert_eq!(doc["status"], "succeeded", "{doc}");
    assert_eq!(doc["loaded_plugins"].as_array().map(|p| p.iter().any(|p| p["key"] == "logs_submitter")), Some(true));
    assert!(run.stderr.contains("pushed 127.0.0.1:5000/"), "{}", run.stderr);
    assert_results(&dir.path().join("results"), &name, "1");
    let posted = listener.wait_for(1);
    assert!(String::from_utf8_lossy(&posted[0].body).contains("Step 1/3 : FROM busybox:latest"));
    assert_eq!(build_containers(&image), "", "the build container is left");
}

#[test]
fn method_hostdocker_passes_a_sigterm_on_and_removes_the_container() {
    let dir = workdir();
    let source = dir.path().join("src");
    write_files(&source, &[("Dockerfile", "FROM busybox:latest\nRUN echo sleeping; sleep 60\n")]);
    let name = unique("hostdocker-cancel");
    let image = format!("{name}:1");
    let _images = Images(vec![image.clone()]);
    let file = build_json(
        dir.path(),
        &serde_json::json!({
            "image": image,
            "source": {"provider": "path", "uri": "src"},
            "exit_plugins": [{"name": "store_metadata", "args": {"path": "/tmp/metadata.json"}}],
        }),
    );
    let build_image = reactor_image();
    let args = [
        "build",
        "json",
        &file,
        "--method",
        "hostdocker",
        "--build-image",
        build_image,
        "--metadata-file",
        "result.json",
        "--cancel-grace",
        "2",
    ];
    let reactor = Background::start(dir.path(), &args, &[], false);
    reactor.wait_until("the build's RUN step", |r| r.stderr().contains("sleeping"));
    assert_ne!(build_containers(&image), "", "no build container while the build runs");
    reactor.signal("TERM", false);
    let (code, stderr) = reactor.wait();
    assert_eq!(code, Some(143), "{stderr}");
    assert!(stderr.contains("build cancelled by SIGTERM"), "{stderr}");
    let doc = read_json(&dir.path().join("result.json"));
    assert_eq!(doc["status"], "cancelled", "{doc}");
    // The exit plugin ran, inside.
    let ran: Vec<&Value> =
        doc["plugins"].as_array().expect("plugins").iter().filter(|p| p["phase"] == "exit").collect();
    assert!(ran.iter().any(|p| p["key"] == "store_metadata" && p["status"] == "succeeded"), "{doc}");
    assert_eq!(build_containers(&image), "", "the build container is left");
}

#[test]
fn method_hostdocker_refuses_bad_input_before_any_container_and_names_a_missing_build_image() {
    let dir = workdir();
    write_files(dir.path(), &[("src/Dockerfile", "FROM busybox:latest\n")]);
    let hostdocker = ["--method", "hostdocker", "--build-image"];
    let mut bad = vec!["build", "path", "--uri", "src", "--image", "Not A Name"];
    bad.extend(hostdocker);
    bad.push("reactor-test-no-such-image:1");
    let run = reactor(dir.path(), &bad, &[]);
    run.expect_code(2);
    assert!(run.stderr.contains("/image: 'Not A Name' is not a valid image reference"), "{}", run.stderr);
    let mut into_dir = vec!["build", "path", "--uri", "src", "--image", "x:1", "--metadata-file", "src"];
    into_dir.extend(hostdocker);
    into_dir.push("reactor-test-no-such-image:1");
    let run = reactor(dir.path(), &into_dir, &[]);
    run.expect_code(2);
    assert!(run.stderr.contains("--metadata-file src: is a directory"), "{}", run.stderr);

    let name = unique("hostdocker-missing");
    let mut missing = vec!["build", "path", "--uri", "src", "--image", "x:1"];
    missing.extend(hostdocker);
    missing.push(&name);
    let run = reactor(dir.path(), &missing, &[]);
    run.expect_code(1);
    let errors = run.errors();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(
        errors[0].contains("has no such image") && errors[0].contains("create-build-image --tag"),
        "{}",
        run.stderr
    );
}

/// A plain-TCP engine: ncat relaying a loopback port to the engine's socket, stopped on drop.
struct TcpEngine {
    _relay: Server,
    url: String,
}

impl TcpEngine {
    fn start() -> TcpEngine {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let relay = std::process::Command::new("ncat")
            .args(["-lk", "127.0.0.1", &port.to_string(), "--sh-exec", "exec ncat -U /var/run/docker.sock"])
            .spawn()
            .expect("ncat (scripts/setup.sh installs it)");
        let url = format!("tcp://127.0.0.1:{port}");
        wait_for_port(port, "the ncat relay");
        TcpEngine { _relay: Server(relay), url }
    }
}

#[test]
fn method_hostdocker_hands_a_tcp_engine_on_to_the_container() {
    let dir = workdir();
    seed_example(dir.path(), "src");
    let engine = TcpEngine::start();
    let name = unique("hostdocker-tcp");
    let image = format!("{name}:1");
    let _images = Images(vec![image.clone(), format!("127.0.0.1:5000/{image}")]);
    let args = [
        "build",
        "path",
        "--uri",
        "src",
        "--image",
        &image,
        "--target-registries",
        "127.0.0.1:5000",
        "--method",
        "hostdocker",
        "--build-image",
        reactor_image(),
        "--results-dir",
        "results",
    ];
    let run = reactor(dir.path(), &args, &[("DOCKER_HOST", &engine.url)]);
    run.expect_code(0);
    assert!(run.stderr.contains(&format!("on the engine at {}", engine.url)), "{}", run.stderr);
    assert_results(&dir.path().join("results"), &name, "1");
    assert_eq!(build_containers(&image), "", "the build container is left");
}
