//! The contract test: deploy/'s Job and Task, run for real. No Kubernetes server installs from
//! the registries this project reaches, so this is as close to a cluster as the tests get: the
//! manifests are read from deploy/ and their containers run with `docker run`, with nothing of
//! their command, args, env or mounts written out here. What a kubelet (and Tekton) would do is
//! done the same way:
//! - the image is the one `reactor create-build-image` builds (the manifests' tag must be the
//!   crate's version); a container's `command` replaces the entrypoint, `args` follow;
//! - env values, `secretKeyRef` and `configMapKeyRef` (with `optional`) come from test data that
//!   must have exactly the keys of deploy/'s example ConfigMap and Secrets;
//! - volumes are temporary directories bind-mounted: emptyDir (world-writable, setgid to
//!   `fsGroup`), configMap and secret (one file per key or per `items` entry, `defaultMode`,
//!   group `fsGroup`), `subPath`, `readOnly`;
//! - `runAsUser`/`runAsGroup` → `--user`, `fsGroup` → `--group-add`, `readOnlyRootFilesystem` →
//!   `--read-only`, `capabilities.drop` → `--cap-drop`, `allowPrivilegeEscalation: false` →
//!   `no-new-privileges`, the memory limit → `--memory`; init containers run first, in order;
//! - for the Task: `$(params.…)` (defaults included), `$(workspaces.….path|bound)` and
//!   `$(results.….path)` substituted as Tekton does, workspaces mounted at `/workspace/NAME` or
//!   their `mountPath`, results in `/tekton/results`, `workingDir` `/workspace`.
//!
//! The container uses the host's network (a pod would not) to reach the git daemon, the
//! registries and the engine on loopback. The pod's containers run on the local engine, as a
//! kubelet's would; the build they run goes to the mutual-TLS engine of scripts/engines.sh,
//! named by the engine Secret as a remote engine would be (see [`TLS_ENGINE`]).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::deploy::{manifests, object, yaml_documents};
use crate::git_transports::git_daemon;
use crate::util::*;

/// Whether the manifests' containers build on the mutual-TLS engine of scripts/engines.sh
/// (`tcp://127.0.0.1:2376`, client files in [`TLS_CLIENT_DIR`]), as the issue asks, or on the
/// local engine's socket mounted in by the test (the one mount not taken from the manifests),
/// with an engine Secret that leaves out the TLS keys, as its example allows.
const TLS_ENGINE: bool = true;
const TLS_ENGINE_HOST: &str = "tcp://127.0.0.1:2376";
const TLS_CLIENT_DIR: &str = "/var/lib/reactor-test-engines/client";
const LOCAL_SOCKET: &str = "/var/run/docker.sock";

/// The engine's URL, as DOCKER_HOST says it.
fn engine_host() -> String {
    if TLS_ENGINE {
        TLS_ENGINE_HOST.to_owned()
    } else {
        format!("unix://{LOCAL_SOCKET}")
    }
}

/// The client's TLS files (ca.pem, cert.pem, key.pem) for the TLS engine, or none.
fn engine_tls_files() -> Vec<(String, Vec<u8>)> {
    if !TLS_ENGINE {
        return Vec::new();
    }
    ["ca.pem", "cert.pem", "key.pem"]
        .iter()
        .map(|name| {
            let path = Path::new(TLS_CLIENT_DIR).join(name);
            let content = std::fs::read(&path).unwrap_or_else(|e| {
                panic!("{}: {e} (scripts/engines.sh up makes the TLS engine's client files)", path.display())
            });
            ((*name).to_owned(), content)
        })
        .collect()
}

/// The docker CLI, on the engine the builds run on (to remove what they made).
fn engine_docker(args: &[&str]) -> Output {
    let mut cmd = Command::new("docker");
    if TLS_ENGINE {
        cmd.args(["--tlsverify", "-H", TLS_ENGINE_HOST]).env("DOCKER_CERT_PATH", TLS_CLIENT_DIR);
    }
    cmd.args(args).output().expect("run docker")
}

const AUTH_REGISTRY: &str = "127.0.0.1:5001";
const AUTH_USER: &str = "reactor";
const AUTH_PASSWORD: &str = "reactor-secret";
const REGISTRY: &str = "127.0.0.1:5000";

/// The vendor plugin the tests install: the fixture whose key is its file's name, here
/// `vendor_named`, a postbuild plugin returning its key.
const VENDOR_PLUGIN: &str = "vendor_named";

/// A vendor's plugin image as the Job's init container expects one: busybox, with
/// `lib{VENDOR_PLUGIN}.so` in /plugins.
fn vendor_plugin_image(dir: &Path, images: &mut Images) -> String {
    let tag = unique("deploy-vendor-plugins");
    images.0.push(tag.clone());
    let context = dir.join("vendor-image");
    std::fs::create_dir_all(&context).expect("mkdir");
    let file = format!("lib{VENDOR_PLUGIN}.so");
    std::fs::copy(plugin("test_named"), context.join(&file)).expect("copy plugin");
    std::fs::write(context.join("Dockerfile"), format!("FROM busybox:latest\nCOPY {file} /plugins/\n"))
        .expect("write Dockerfile");
    docker_build(&tag, &context);
    tag
}

/// A Kubernetes quantity of bytes (`512Mi`, `1Gi`, `64M`, `1000`) as a number.
fn bytes(quantity: &str) -> u64 {
    let units: [(&str, u64); 6] =
        [("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("k", 1000), ("M", 1_000_000), ("G", 1_000_000_000)];
    for (suffix, factor) in units {
        if let Some(number) = quantity.strip_suffix(suffix) {
            return number.parse::<u64>().expect("quantity") * factor;
        }
    }
    quantity.parse().unwrap_or_else(|_| panic!("the contract test does not know the quantity {quantity}"))
}

/// The value after `flag` in `args`, if any.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).map(String::as_str)
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().map(|a| a.iter().map(|v| v.as_str().expect("a string").to_owned()).collect()).unwrap_or_default()
}

/// Test data standing in for deploy/'s example ConfigMaps and Secrets: name → key → content.
/// It must have exactly the examples' objects and keys, so that a key renamed in the manifests
/// is a key renamed here.
struct Objects(BTreeMap<String, BTreeMap<String, Vec<u8>>>);

impl Objects {
    /// `left_out`: (object, key) pairs of the examples the test data leaves out, as the
    /// examples say one may.
    fn new(data: BTreeMap<String, BTreeMap<String, Vec<u8>>>, left_out: &[(&str, &str)]) -> Objects {
        let mut examples: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for file in manifests("kubernetes") {
            for doc in yaml_documents(&file) {
                if doc["kind"] == "ConfigMap" || doc["kind"] == "Secret" {
                    let keys = ["data", "stringData", "binaryData"]
                        .iter()
                        .filter_map(|field| doc[*field].as_object())
                        .flat_map(|map| map.keys().cloned())
                        .collect();
                    examples.insert(doc["metadata"]["name"].as_str().expect("name").to_owned(), keys);
                }
            }
        }
        let given: BTreeMap<String, Vec<String>> =
            data.iter().map(|(name, keys)| (name.clone(), keys.keys().cloned().collect())).collect();
        for (name, key) in left_out {
            let keys = examples.get_mut(*name).unwrap_or_else(|| panic!("deploy/kubernetes has no example {name}"));
            let before = keys.len();
            keys.retain(|k| k != key);
            assert!(keys.len() < before, "deploy/kubernetes' {name} has no key {key}");
        }
        examples.values_mut().for_each(|keys| keys.sort());
        assert_eq!(given, examples, "the test data must have the keys of deploy/kubernetes' examples");
        Objects(data)
    }

    fn key(&self, name: &str, key: &str) -> Option<&[u8]> {
        let object =
            self.0.get(name).unwrap_or_else(|| panic!("the manifests use {name}, which deploy/ has no example of"));
        object.get(key).map(Vec::as_slice)
    }
}

/// A pod being laid out on this machine: its volumes as directories.
struct Pod<'a> {
    spec: &'a Value,
    volumes: BTreeMap<String, PathBuf>,
    fs_group: Option<u32>,
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn chown(path: &Path, uid: Option<u32>, gid: Option<u32>) {
    std::os::unix::fs::chown(path, uid, gid).expect("chown (the tests run as root)");
}

impl<'a> Pod<'a> {
    /// Makes every volume of `spec` (a PodSpec, or a Task's `volumes` in one) under `root`.
    fn new(spec: &'a Value, root: &Path, objects: &Objects) -> Pod<'a> {
        let fs_group = spec["securityContext"]["fsGroup"].as_u64().map(|g| u32::try_from(g).expect("gid"));
        let mut pod = Pod { spec, volumes: BTreeMap::new(), fs_group };
        for volume in spec["volumes"].as_array().into_iter().flatten() {
            let name = volume["name"].as_str().expect("volume name").to_owned();
            let dir = root.join("volumes").join(&name);
            std::fs::create_dir_all(&dir).expect("mkdir");
            if volume.get("emptyDir").is_some() {
                pod.empty_dir(&dir);
            } else if let Some(source) = volume.get("configMap") {
                pod.projected(&dir, source, source["name"].as_str().expect("configMap name"), objects);
            } else if let Some(source) = volume.get("secret") {
                pod.projected(&dir, source, source["secretName"].as_str().expect("secretName"), objects);
            } else {
                panic!("the contract test does not know the volume {volume}: teach it");
            }
            pod.volumes.insert(name, dir);
        }
        pod
    }

    /// An emptyDir as the kubelet makes one: world-writable, setgid to fsGroup.
    fn empty_dir(&self, dir: &Path) {
        match self.fs_group {
            Some(gid) => {
                chown(dir, None, Some(gid));
                chmod(dir, 0o2777);
            }
            None => chmod(dir, 0o777),
        }
    }

    /// A configMap or secret volume: a file per key, or per `items` entry, with `defaultMode`
    /// (0644 unless said), owned by root and group fsGroup.
    fn projected(&self, dir: &Path, source: &Value, object: &str, objects: &Objects) {
        let mode = source["defaultMode"].as_u64().map_or(0o644, |m| u32::try_from(m).expect("mode"));
        let optional = source["optional"].as_bool().unwrap_or(false);
        let files: Vec<(String, String)> = match source["items"].as_array() {
            Some(items) => items
                .iter()
                .map(|item| {
                    (item["key"].as_str().expect("key").to_owned(), item["path"].as_str().expect("path").to_owned())
                })
                .collect(),
            None => {
                objects.0.get(object).into_iter().flat_map(|keys| keys.keys()).map(|k| (k.clone(), k.clone())).collect()
            }
        };
        for (key, path) in files {
            let content = match objects.key(object, &key) {
                Some(content) => content,
                None if optional => continue,
                None => panic!("{object} has no key {key}: the kubelet would not start the pod"),
            };
            let file = dir.join(&path);
            std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
            std::fs::write(&file, content).expect("write");
            chown(&file, Some(0), self.fs_group);
            chmod(&file, mode);
        }
        chmod(dir, 0o755);
    }

    /// `docker run` arguments for `container` (image and tail excluded): its security context
    /// merged over the pod's, its volume mounts, its memory limit.
    fn run_args(&self, container: &Value) -> Vec<String> {
        let pod_security = &self.spec["securityContext"];
        let security = &container["securityContext"];
        let setting = |field: &str| {
            let value = &security[field];
            if value.is_null() {
                pod_security[field].clone()
            } else {
                value.clone()
            }
        };
        let mut args: Vec<String> = vec!["--network".into(), "host".into()];
        let user = setting("runAsUser").as_u64();
        if setting("runAsNonRoot") == json!(true) {
            assert!(user.is_some_and(|u| u != 0), "runAsNonRoot needs a numeric non-root runAsUser here");
        }
        if let Some(uid) = user {
            let group = setting("runAsGroup").as_u64().map(|g| format!(":{g}")).unwrap_or_default();
            args.extend(["--user".into(), format!("{uid}{group}")]);
        }
        for gid in self.fs_group.into_iter().chain(
            pod_security["supplementalGroups"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| u32::try_from(g.as_u64().expect("gid")).expect("gid")),
        ) {
            args.extend(["--group-add".into(), gid.to_string()]);
        }
        assert_ne!(setting("privileged"), json!(true), "a privileged container is not what deploy/ promises");
        if setting("readOnlyRootFilesystem") == json!(true) {
            args.push("--read-only".into());
        }
        if setting("allowPrivilegeEscalation") == json!(false) {
            args.extend(["--security-opt".into(), "no-new-privileges".into()]);
        }
        for cap in strings(&security["capabilities"]["drop"]) {
            args.extend(["--cap-drop".into(), cap]);
        }
        for cap in strings(&security["capabilities"]["add"]) {
            args.extend(["--cap-add".into(), cap]);
        }
        match setting("seccompProfile")["type"].as_str() {
            None | Some("RuntimeDefault") => {}
            Some("Unconfined") => args.extend(["--security-opt".into(), "seccomp=unconfined".into()]),
            Some(other) => panic!("the contract test does not know the seccomp profile {other}"),
        }
        let resources = if container.get("computeResources").is_some() {
            &container["computeResources"]
        } else {
            &container["resources"]
        };
        if let Some(memory) = resources["limits"]["memory"].as_str() {
            args.extend(["--memory".into(), format!("{}b", bytes(memory))]);
        }
        for mount in container["volumeMounts"].as_array().into_iter().flatten() {
            let name = mount["name"].as_str().expect("mount name");
            let mut source = self.volumes.get(name).unwrap_or_else(|| panic!("no volume {name}")).clone();
            if let Some(sub) = mount["subPath"].as_str() {
                source = source.join(sub);
            }
            let target = mount["mountPath"].as_str().expect("mountPath");
            let ro = if mount["readOnly"] == json!(true) { ",readonly" } else { "" };
            args.extend(["--mount".into(), format!("type=bind,source={},target={target}{ro}", source.display())]);
        }
        args
    }
}

/// The container's env as the kubelet makes it: values, and keys of ConfigMaps and Secrets.
fn container_env(container: &Value, objects: &Objects, substitute: &dyn Fn(&str) -> String) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().expect("env name").to_owned();
        if let Some(value) = var["value"].as_str() {
            env.push((name, substitute(value)));
            continue;
        }
        let from = &var["valueFrom"];
        let (reference, object) = if from.get("secretKeyRef").is_some() {
            (&from["secretKeyRef"], "secret")
        } else if from.get("configMapKeyRef").is_some() {
            (&from["configMapKeyRef"], "configMap")
        } else {
            panic!("the contract test does not know the env source of {var}");
        };
        let key = reference["key"].as_str().expect("key");
        let object_name = reference["name"].as_str().expect("name");
        match objects.key(object_name, key) {
            Some(value) => env.push((name, String::from_utf8(value.to_vec()).expect("UTF-8"))),
            None if reference["optional"] == json!(true) => {}
            None => panic!("{object} {object_name} has no key {key}: the kubelet would not start the pod"),
        }
    }
    env
}

/// The `docker run` command for `container` of `pod` with `image`: `command` as the
/// entrypoint, then `args`; `extra` goes before the image (the test's own additions).
fn docker_run_command(
    pod: &Pod,
    container: &Value,
    image: &str,
    env: &[(String, String)],
    args: &[String],
    extra: &[String],
) -> Command {
    let mut cmd = Command::new("docker");
    cmd.arg("run").args(pod.run_args(container)).args(extra);
    for (name, value) in env {
        cmd.arg("--env").arg(format!("{name}={value}"));
    }
    let command = strings(&container["command"]);
    if let Some(entrypoint) = command.first() {
        cmd.args(["--entrypoint", entrypoint]);
    }
    cmd.arg(image).args(command.iter().skip(1)).args(args);
    cmd
}

/// Runs `container` to its end, removing it after.
fn docker_run(
    pod: &Pod,
    container: &Value,
    image: &str,
    env: &[(String, String)],
    args: &[String],
    extra: &[String],
) -> Output {
    let mut extra = extra.to_vec();
    extra.push("--rm".into());
    docker_run_command(pod, container, image, env, args, &extra).output().expect("run docker")
}

/// The test's additions for the engine: for the local one, its socket, readable by its group.
fn engine_mount() -> Vec<String> {
    if TLS_ENGINE {
        return Vec::new();
    }
    let gid =
        std::fs::metadata(LOCAL_SOCKET).map(|m| std::os::unix::fs::MetadataExt::gid(&m)).expect("the engine's socket");
    vec![
        "--mount".into(),
        format!("type=bind,source={LOCAL_SOCKET},target={LOCAL_SOCKET}"),
        "--group-add".into(),
        gid.to_string(),
    ]
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The value of the env var `name` the container sets.
fn spec_env(container: &Value, name: &str) -> String {
    let var = container["env"].as_array().into_iter().flatten().find(|v| v["name"] == name);
    var.and_then(|v| v["value"].as_str()).unwrap_or_else(|| panic!("the container sets no {name}")).to_owned()
}

/// Checks in the result document that the vendor plugin was loaded from `dir` and ran.
fn vendor_plugin_ran(results: &Value, dir: &str) {
    let loaded = results["loaded_plugins"].as_array().expect("loaded_plugins");
    let vendor = loaded
        .iter()
        .find(|p| p["key"] == VENDOR_PLUGIN)
        .unwrap_or_else(|| panic!("{VENDOR_PLUGIN} not loaded: {results:#}"));
    assert_eq!(vendor["origin"], format!("{dir}/lib{VENDOR_PLUGIN}.so"), "{results:#}");
    let run = results["plugins"].as_array().expect("plugins").iter().find(|r| r["key"] == VENDOR_PLUGIN);
    assert_eq!(run.map(|r| &r["result"]), Some(&json!(VENDOR_PLUGIN)), "{results:#}");
}

/// A bare repository `served/app.git` holding `dockerfile`.
fn served_app(served: &Path, dockerfile: &str) {
    let work = served.join("app-work");
    git_repo(&work, &[("Dockerfile", dockerfile), ("content.txt", "from the Job\n")]);
    git(served, &["clone", "-q", "--bare", &work.display().to_string(), "app.git"]);
}

/// The Job's example objects filled for this machine: `build_json`, the login of the htpasswd
/// registry, and the engine. An engine without TLS (see [`TLS_ENGINE`]) has a Secret without
/// DOCKER_TLS_VERIFY and the three files, as deploy/kubernetes/engine-secret.yaml says.
fn job_objects(build_json: &Value) -> Objects {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{AUTH_USER}:{AUTH_PASSWORD}"));
    let config = json!({"auths": {AUTH_REGISTRY: {"auth": auth}}});
    let mut data = BTreeMap::new();
    data.insert(
        "reactor-build-json".to_owned(),
        BTreeMap::from([("build.json".to_owned(), build_json.to_string().into_bytes())]),
    );
    data.insert(
        "reactor-registry".to_owned(),
        BTreeMap::from([(".dockerconfigjson".to_owned(), config.to_string().into_bytes())]),
    );
    let mut engine = BTreeMap::from([("DOCKER_HOST".to_owned(), engine_host().into_bytes())]);
    if TLS_ENGINE {
        engine.insert("DOCKER_TLS_VERIFY".to_owned(), b"1".to_vec());
        engine.extend(engine_tls_files());
        data.insert("reactor-engine".to_owned(), engine);
        Objects::new(data, &[])
    } else {
        data.insert("reactor-engine".to_owned(), engine);
        let tls_keys = ["DOCKER_TLS_VERIFY", "ca.pem", "cert.pem", "key.pem"];
        Objects::new(data, &tls_keys.map(|key| ("reactor-engine", key)))
    }
}

/// The Job's pod spec and its one container, after checking what the test relies on: the
/// image's tag is this reactor's version, and the grace period covers reactor's cancel.
fn job() -> (Value, Value) {
    let job = object("kubernetes", "Job");
    let spec = job["spec"]["template"]["spec"].clone();
    let containers = spec["containers"].as_array().expect("containers").clone();
    assert_eq!(containers.len(), 1, "the Job runs one container");
    let container = containers[0].clone();
    let image = container["image"].as_str().expect("image");
    assert!(
        image.ends_with(&format!("/reactor:{}", env!("CARGO_PKG_VERSION"))),
        "the Job's image {image} should be reactor:{} (what create-build-image makes)",
        env!("CARGO_PKG_VERSION")
    );
    let args = strings(&container["args"]);
    let seconds = |flag: &str, default: u64| flag_value(&args, flag).map_or(default, |v| v.parse().expect("seconds"));
    let needed = seconds("--cancel-grace", 10) + seconds("--exit-timeout", 300);
    let grace = spec["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    assert!(
        grace > needed,
        "terminationGracePeriodSeconds {grace} does not cover --cancel-grace + --exit-timeout ({needed} s)"
    );
    (spec, container)
}

/// Lays out the Job's pod for `build_json` and runs its init containers (their placeholder
/// image replaced by `vendor_image`).
fn job_pod<'a>(spec: &'a Value, root: &Path, build_json: &Value, vendor_image: &str) -> Pod<'a> {
    let objects = job_objects(build_json);
    let pod = Pod::new(spec, root, &objects);
    for init in spec["initContainers"].as_array().into_iter().flatten() {
        let env = container_env(init, &objects, &|v| v.to_owned());
        let out = docker_run(&pod, init, vendor_image, &env, &strings(&init["args"]), &[]);
        assert!(out.status.success(), "init container {}: {}", init["name"], show(&out));
    }
    pod
}

#[test]
fn the_jobs_container_builds_pushes_with_the_secrets_credentials_and_runs_the_vendors_plugin() {
    let dir = workdir();
    let mut images = Images(vec![]);
    let reactor_image = crate::build_image::reactor_image().to_owned();
    let vendor_image = vendor_plugin_image(dir.path(), &mut images);
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).expect("mkdir");
    served_app(&served, "FROM busybox:latest\nCOPY content.txt /\n");
    let (_daemon, base) = git_daemon(&served);
    let name = unique("deploy-job");
    let pushed = format!("{AUTH_REGISTRY}/{name}:1");
    let _built = ImagesOn(engine_docker, vec![format!("{name}:1"), pushed.clone()]);
    let build_json = json!({
        "image": format!("{name}:1"),
        "source": {"provider": "git", "uri": format!("{base}/app.git")},
        // A phase list in the file replaces the tag_and_push that target_registries implies.
        "postbuild_plugins": [
            {"name": "tag_and_push", "args": {"registries": {AUTH_REGISTRY: {"insecure": false}}}},
            {"name": VENDOR_PLUGIN},
        ],
    });
    let (spec, container) = job();
    let pod = job_pod(&spec, dir.path(), &build_json, &vendor_image);
    let objects = job_objects(&build_json);
    let env = container_env(&container, &objects, &|v| v.to_owned());
    let out = docker_run(&pod, &container, &reactor_image, &env, &strings(&container["args"]), &engine_mount());
    assert!(out.status.success(), "the Job's container failed: {}", show(&out));

    let share = &pod.volumes["share"];
    let results: Value =
        serde_json::from_slice(&std::fs::read(share.join("results.json")).expect("results.json in /run/share"))
            .expect("results.json");
    assert_eq!(results["status"], "succeeded", "{results:#}");
    let login = format!("{AUTH_USER}:{AUTH_PASSWORD}");
    let digest = served_digest(AUTH_REGISTRY, &name, "1", Some(&login));
    assert!(digest.starts_with("sha256:"), "{digest}");
    let digests: Vec<&Value> = results["digests"].as_object().expect("digests").values().collect();
    assert_eq!(digests, [&json!(digest)], "{results:#}");
    // The vendor's plugin came from its image, through the init container's copy.
    vendor_plugin_ran(&results, &spec_env(&container, "REACTOR_PLUGIN_PATH"));
    // The credentials were used, never shown.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(AUTH_PASSWORD), "{stderr}");
}

/// A container started in the background, removed at the end of the test.
struct Background(String);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

/// Kubernetes' grace period for a pod that sets none, as Tekton's pods do.
const KUBERNETES_DEFAULT_GRACE: u64 = 30;

/// Once the build of the running container `name` is at its RUN step (which echoes "the build
/// is running"), stops it as the kubelet stops a pod: SIGTERM, then SIGKILL after `grace`
/// seconds. Returns the exit code and the container's log.
fn stop_as_the_kubelet_does(name: &str, grace: u64) -> (String, String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let logs = docker(&["logs", name]);
        let text = format!("{}{}", String::from_utf8_lossy(&logs.stdout), String::from_utf8_lossy(&logs.stderr));
        if text.contains("the build is running") {
            break;
        }
        let state = docker(&["inspect", "-f", "{{.State.Running}}", name]);
        assert!(
            String::from_utf8_lossy(&state.stdout).trim() == "true" && std::time::Instant::now() < deadline,
            "the build never got to its RUN step:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let stop = docker(&["stop", "--time", &grace.to_string(), name]);
    assert!(stop.status.success(), "docker stop: {}", String::from_utf8_lossy(&stop.stderr));
    let exit = docker(&["inspect", "-f", "{{.State.ExitCode}}", name]);
    let logs = docker(&["logs", name]);
    (String::from_utf8_lossy(&exit.stdout).trim().to_owned(), String::from_utf8_lossy(&logs.stderr).into_owned())
}

#[test]
fn the_jobs_container_stopped_as_the_kubelet_stops_a_pod_cancels_and_runs_the_exit_plugins() {
    let dir = workdir();
    let mut images = Images(vec![]);
    let reactor_image = crate::build_image::reactor_image().to_owned();
    let vendor_image = vendor_plugin_image(dir.path(), &mut images);
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).expect("mkdir");
    served_app(&served, "FROM busybox:latest\nRUN echo the build is running && sleep 300\n");
    let (_daemon, base) = git_daemon(&served);
    let listener = Listener::start("ok");
    let name = unique("deploy-cancel");
    let _built = ImagesOn(engine_docker, vec![format!("{name}:1")]);
    let build_json = json!({
        "image": format!("{name}:1"),
        "source": {"provider": "git", "uri": format!("{base}/app.git")},
        "target_registries": [AUTH_REGISTRY],
        "exit_plugins": [{"name": "notify_webhook", "args": {"url": listener.url}}],
    });
    let (spec, container) = job();
    let pod = job_pod(&spec, dir.path(), &build_json, &vendor_image);
    let objects = job_objects(&build_json);
    let env = container_env(&container, &objects, &|v| v.to_owned());
    let container_name = unique("deploy-cancel-pod");
    let mut extra = engine_mount();
    extra.extend(["--detach".into(), "--name".into(), container_name.clone()]);
    let out = docker_run_command(&pod, &container, &reactor_image, &env, &strings(&container["args"]), &extra)
        .output()
        .expect("run docker");
    assert!(out.status.success(), "starting the Job's container: {}", show(&out));
    let _running = Background(container_name.clone());

    let grace = spec["terminationGracePeriodSeconds"].as_u64().expect("terminationGracePeriodSeconds");
    let exit = stop_as_the_kubelet_does(&container_name, grace);
    assert_eq!(exit.0, "143", "reactor did not end as cancelled by SIGTERM:\n{}", exit.1);

    let share = &pod.volumes["share"];
    let results: Value =
        serde_json::from_slice(&std::fs::read(share.join("results.json")).expect("results.json in /run/share"))
            .expect("results.json");
    assert_eq!(results["status"], "cancelled", "{results:#}");
    let exit_runs: Vec<&Value> =
        results["plugins"].as_array().expect("plugins").iter().filter(|run| run["phase"] == "exit").collect();
    assert_eq!(exit_runs.len(), 1, "{results:#}");
    assert_eq!(exit_runs[0]["key"], "notify_webhook");
    assert_eq!(exit_runs[0]["status"], "succeeded", "{results:#}");
    assert_eq!(listener.wait_for(1).len(), 1, "the exit plugin's notification never came");
}

/// Tekton's variables in `text`: `$(params.NAME)`, `$(workspaces.NAME.path|bound)`,
/// `$(results.NAME.path)`; any other `$(…)` fails the test, as the Task would then not run as
/// written.
fn tekton_substitute(
    text: &str,
    params: &BTreeMap<String, String>,
    workspaces: &BTreeMap<String, (String, bool)>,
    results: &[String],
) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find(')').map(|e| start + e).unwrap_or_else(|| panic!("unclosed $( in {text}"));
        let variable = &rest[start + 2..end];
        let parts: Vec<&str> = variable.split('.').collect();
        let value = match parts.as_slice() {
            ["params", name] => params.get(*name).cloned(),
            ["workspaces", name, "path"] => {
                workspaces.get(*name).map(|(path, bound)| if *bound { path.clone() } else { String::new() })
            }
            ["workspaces", name, "bound"] => workspaces.get(*name).map(|(_, bound)| bound.to_string()),
            ["results", name, "path"] => {
                results.contains(&(*name).to_owned()).then(|| format!("/tekton/results/{name}"))
            }
            _ => None,
        };
        out.push_str(&value.unwrap_or_else(|| {
            panic!("the Task uses $({variable}), which Tekton would not know (or the test does not)")
        }));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The Task's step, laid out as Tekton would run it for `build_json` (given the path where
/// the `source` workspace is mounted), with `dockerfile` in the source workspace; `run_flags`
/// go to `docker run`.
struct TaskStep {
    /// `docker run` for the step, with the caller's flags.
    command: Command,
    /// The host directories of /tekton/results and of the `share` volume.
    results: PathBuf,
    share: PathBuf,
    /// Where the `plugins` workspace is mounted.
    plugins: String,
}

fn task_step(
    dir: &Path,
    reactor_image: &str,
    dockerfile: &str,
    run_flags: &[String],
    build_json: impl Fn(&str) -> Value,
) -> TaskStep {
    let task = object("tekton", "Task");
    let spec = &task["spec"];
    let steps = spec["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1, "the Task runs one step");
    let step = &steps[0];
    assert!(step.get("script").is_none(), "the image has no shell: a step with a script cannot run");

    // Params, with Tekton's defaults; what the test gives must be declared.
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for param in spec["params"].as_array().expect("params") {
        if let Some(default) = param["default"].as_str() {
            params.insert(param["name"].as_str().expect("name").to_owned(), default.to_owned());
        }
    }
    let default_image = params.get("reactor-image").expect("a reactor-image param with a default").clone();
    assert!(
        default_image.ends_with(&format!("/reactor:{}", env!("CARGO_PKG_VERSION"))),
        "the Task's default image {default_image} should be reactor:{}",
        env!("CARGO_PKG_VERSION")
    );
    let seconds = |name: &str| {
        params.get(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or_else(|| panic!("a numeric {name} default"))
    };
    assert!(
        seconds("cancel-grace") + seconds("exit-timeout") < KUBERNETES_DEFAULT_GRACE,
        "Tekton's pods have Kubernetes' default grace period: cancel-grace + exit-timeout must fit in it"
    );

    // Workspaces: where Tekton mounts each, and which the test binds.
    let mut workspaces: BTreeMap<String, (String, bool)> = BTreeMap::new();
    let mut read_only: BTreeMap<String, bool> = BTreeMap::new();
    for workspace in spec["workspaces"].as_array().expect("workspaces") {
        let name = workspace["name"].as_str().expect("name").to_owned();
        let path = workspace["mountPath"].as_str().map_or_else(|| format!("/workspace/{name}"), str::to_owned);
        read_only.insert(name.clone(), workspace["readOnly"] == json!(true));
        workspaces.insert(name, (path, false));
    }
    let bound = dir.join("workspaces");
    let bind = |name: &str, files: &[(&str, &[u8])]| {
        let ws = bound.join(name);
        std::fs::create_dir_all(&ws).expect("mkdir");
        chmod(&ws, 0o755);
        for (file, content) in files {
            std::fs::write(ws.join(file), content).expect("write");
            chmod(&ws.join(file), 0o644);
        }
    };
    let login = base64::engine::general_purpose::STANDARD.encode(format!("{AUTH_USER}:{AUTH_PASSWORD}"));
    let config = json!({"auths": {AUTH_REGISTRY: {"auth": login}}});
    bind("dockerconfig", &[("config.json", config.to_string().as_bytes())]);
    bind("plugins", &[(&format!("lib{VENDOR_PLUGIN}.so"), &std::fs::read(plugin("test_named")).expect("plugin"))]);
    bind("source", &[("Dockerfile", dockerfile.as_bytes()), ("content.txt", b"from the Task\n")]);
    // engine-tls is bound only for the TLS engine (see TLS_ENGINE).
    let tls_files = engine_tls_files();
    if TLS_ENGINE {
        let files: Vec<(&str, &[u8])> = tls_files.iter().map(|(n, c)| (n.as_str(), c.as_slice())).collect();
        bind("engine-tls", &files);
        workspaces.get_mut("engine-tls").expect("the Task has no workspace engine-tls").1 = true;
    }
    for name in ["dockerconfig", "plugins", "source"] {
        workspaces.get_mut(name).unwrap_or_else(|| panic!("the Task has no workspace {name}")).1 = true;
    }

    for (param, value) in [
        ("build-json", build_json(&workspaces["source"].0).to_string()),
        ("engine", engine_host()),
        ("engine-tls-verify", if TLS_ENGINE { "1" } else { "" }.to_owned()),
        ("reactor-image", reactor_image.to_owned()),
    ] {
        assert!(
            spec["params"].as_array().expect("params").iter().any(|p| p["name"] == param),
            "the Task has no param {param}"
        );
        params.insert(param.to_owned(), value);
    }
    for param in spec["params"].as_array().expect("params") {
        let name = param["name"].as_str().expect("name");
        assert!(params.contains_key(name), "the test gives no value for the Task's param {name}, which has no default");
    }
    let results: Vec<String> = spec["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["name"].as_str().expect("name").to_owned())
        .collect();
    for result in ["IMAGE_URL", "IMAGE_DIGEST", "IMAGES"] {
        assert!(results.contains(&result.to_owned()), "the Task has no result {result}");
    }

    // The step, substituted as Tekton would.
    let substitute = |text: &str| tekton_substitute(text, &params, &workspaces, &results);
    let image = substitute(step["image"].as_str().expect("image"));
    assert_eq!(image, reactor_image);
    let args: Vec<String> = strings(&step["args"]).iter().map(|a| substitute(a)).collect();
    let results_dir = flag_value(&args, "--results-dir").expect("--results-dir in the step's args");
    for result in &results {
        assert_eq!(
            Path::new(results_dir).join(result).display().to_string(),
            substitute(&format!("$(results.{result}.path)")),
            "--results-dir must be where Tekton reads the results"
        );
    }
    let mut container = step.clone();
    container["command"] = json!(strings(&step["command"]).iter().map(|c| substitute(c)).collect::<Vec<_>>());
    let pod_spec = json!({"volumes": spec["volumes"]});
    let pod = Pod::new(&pod_spec, dir, &Objects(BTreeMap::new()));
    let env = container_env(&container, &Objects(BTreeMap::new()), &substitute);

    // Tekton's own mounts: /workspace (the working directory), the bound workspaces, the results.
    let tekton = dir.join("tekton");
    let (workspace_root, results_host) = (tekton.join("workspace"), tekton.join("results"));
    for d in [&workspace_root, &results_host] {
        std::fs::create_dir_all(d).expect("mkdir");
        chmod(d, 0o777);
    }
    let mut extra = engine_mount();
    let mut mount = |source: &Path, target: &str, ro: bool| {
        let ro = if ro { ",readonly" } else { "" };
        extra.extend(["--mount".into(), format!("type=bind,source={},target={target}{ro}", source.display())]);
    };
    mount(&workspace_root, "/workspace", false);
    mount(&results_host, "/tekton/results", false);
    for (ws, (path, is_bound)) in &workspaces {
        if *is_bound {
            mount(&bound.join(ws), path, read_only[ws]);
        }
    }
    extra.extend(["--workdir".into(), step["workingDir"].as_str().unwrap_or("/workspace").to_owned()]);
    extra.extend_from_slice(run_flags);
    TaskStep {
        command: docker_run_command(&pod, &container, &image, &env, &args, &extra),
        results: results_host,
        share: pod.volumes["share"].clone(),
        plugins: workspaces["plugins"].0.clone(),
    }
}

/// The result document reactor wrote into the `share` volume (/run/share/results.json).
fn shared_results(share: &Path) -> Value {
    let bytes = std::fs::read(share.join("results.json")).expect("results.json in /run/share");
    serde_json::from_slice(&bytes).expect("results.json")
}

#[test]
fn the_tasks_step_builds_a_path_source_and_writes_the_results_tekton_chains_reads() {
    let dir = workdir();
    let reactor_image = crate::build_image::reactor_image().to_owned();
    let name = unique("deploy-task");
    let pushed = format!("{REGISTRY}/{name}:1");
    let _built = ImagesOn(engine_docker, vec![format!("{name}:1"), pushed.clone()]);
    let dockerfile = "FROM busybox:latest\nCOPY content.txt /\n";
    let mut step = task_step(dir.path(), &reactor_image, dockerfile, &["--rm".into()], |source| {
        json!({
            "image": format!("{name}:1"),
            "source": {"provider": "path", "uri": source},
            "postbuild_plugins": [
                {"name": "tag_and_push", "args": {"registries": {REGISTRY: {"insecure": false}}}},
                {"name": VENDOR_PLUGIN},
            ],
        })
    });
    let out = step.command.output().expect("run docker");
    assert!(out.status.success(), "the Task's step failed: {}", show(&out));

    let digest = served_digest(REGISTRY, &name, "1", None);
    let read = |result: &str| {
        std::fs::read_to_string(step.results.join(result)).unwrap_or_else(|_| panic!("no result {result}"))
    };
    assert_eq!(read("IMAGE_URL"), pushed);
    assert_eq!(read("IMAGE_DIGEST"), digest);
    assert_eq!(read("IMAGES"), format!("{REGISTRY}/{name}@{digest}"));
    let results = shared_results(&step.share);
    assert_eq!(results["status"], "succeeded", "{results:#}");
    vendor_plugin_ran(&results, &step.plugins);
}

#[test]
fn the_tasks_step_sent_sigterm_as_a_cancelled_taskrun_runs_the_exit_plugins_within_the_default_grace() {
    let dir = workdir();
    let reactor_image = crate::build_image::reactor_image().to_owned();
    let listener = Listener::start("ok");
    let name = unique("deploy-task-cancel");
    let _built = ImagesOn(engine_docker, vec![format!("{name}:1")]);
    let container_name = unique("deploy-task-cancel-pod");
    let _running = Background(container_name.clone());
    let dockerfile = "FROM busybox:latest\nRUN echo the build is running && sleep 300\n";
    let flags = ["--detach".to_owned(), "--name".to_owned(), container_name.clone()];
    let mut step = task_step(dir.path(), &reactor_image, dockerfile, &flags, |source| {
        json!({
            "image": format!("{name}:1"),
            "source": {"provider": "path", "uri": source},
            "exit_plugins": [{"name": "notify_webhook", "args": {"url": listener.url}}],
        })
    });
    let out = step.command.output().expect("run docker");
    assert!(out.status.success(), "starting the Task's step: {}", show(&out));
    // Cancelling the TaskRun deletes the pod; Tekton's entrypoint passes the SIGTERM on.
    let (code, log) = stop_as_the_kubelet_does(&container_name, KUBERNETES_DEFAULT_GRACE);
    assert_eq!(code, "143", "reactor did not end as cancelled by SIGTERM:\n{log}");

    let results = shared_results(&step.share);
    assert_eq!(results["status"], "cancelled", "{results:#}");
    let exit_runs: Vec<&Value> =
        results["plugins"].as_array().expect("plugins").iter().filter(|run| run["phase"] == "exit").collect();
    assert_eq!(exit_runs.len(), 1, "{results:#}");
    assert_eq!(exit_runs[0]["status"], "succeeded", "{results:#}");
    assert_eq!(listener.wait_for(1).len(), 1, "the exit plugin's notification never came");
    // Tekton fails a step whose declared results are missing: they are there, empty.
    for result in ["IMAGE_URL", "IMAGE_DIGEST", "IMAGES"] {
        assert_eq!(std::fs::read_to_string(step.results.join(result)).ok().as_deref(), Some(""), "{result}");
    }
}
