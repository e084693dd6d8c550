//! `ssh://` engines, end to end: reactor runs `ssh … docker system dial-stdio` against the sshd
//! that `scripts/engine/sshd.sh` keeps on 127.0.0.1:2222 (key-only; its remote `docker` reaches
//! the main engine). Each test gives ssh its own config through an `ssh` wrapper early on PATH,
//! as a user's ~/.ssh/config would (reactor, like the docker CLI, passes no `-F` or `-i`); the
//! wrapper's directory in ssh's command line tells that test's ssh processes from the others'.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::*;

const REGISTRY: &str = "127.0.0.1:5000";
const URL: &str = "ssh://root@127.0.0.1:2222";

/// Where sshd.sh keeps the server's and the clients' keys and known_hosts.
fn sshd_dir() -> PathBuf {
    let root = std::env::var("REACTOR_ENGINES_DIR").unwrap_or_else(|_| "/var/lib/reactor-test-engines".to_owned());
    PathBuf::from(root).join("sshd")
}

/// An ssh client set-up for one test: a config naming `key` and `known_hosts`, and a wrapper
/// `ssh` that uses it.
struct SshClient {
    dir: tempfile::TempDir,
}

impl SshClient {
    /// With `known_hosts` None, the sshd's own (its host key known); Some(path) for another one.
    fn new(key: &str, known_hosts: Option<&Path>) -> SshClient {
        let sshd = sshd_dir();
        let up = sshd.join("known_hosts").is_file() && TcpStream::connect("127.0.0.1:2222").is_ok();
        assert!(
            up,
            "the sshd of the ssh:// engine tests does not run on 127.0.0.1:2222 (or {} is missing): run \
             scripts/setup.sh, or scripts/engine/sshd.sh up",
            sshd.display()
        );
        let dir = tempfile::Builder::new().prefix("reactor-test-ssh-").tempdir().expect("tempdir");
        let known_hosts = known_hosts.map_or_else(|| sshd.join("known_hosts"), Path::to_path_buf);
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            format!(
                "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n",
                sshd.join(key).display(),
                known_hosts.display()
            ),
        )
        .expect("write the ssh config");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("mkdir bin");
        let wrapper = bin.join("ssh");
        std::fs::write(&wrapper, format!("#!/bin/sh\nexec /usr/bin/ssh -F {} \"$@\"\n", config.display()))
            .expect("write the ssh wrapper");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        SshClient { dir }
    }

    /// PATH with the wrapper first.
    fn path(&self) -> String {
        format!("{}:{}", self.dir.path().join("bin").display(), std::env::var("PATH").unwrap_or_default())
    }

    /// The ssh processes running with this client's config.
    fn processes(&self) -> Vec<String> {
        let marker = self.dir.path().display().to_string();
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                if cmdline.contains(&marker) && cmdline.contains("dial-stdio") {
                    found.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
                }
            }
        }
        found
    }

    /// Fails the test if an ssh of this client outlived reactor (killed ones may take a moment
    /// to be gone from /proc).
    fn assert_none_left(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.processes().is_empty() {
            assert!(Instant::now() < deadline, "ssh processes left behind: {:?}", self.processes());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn read_doc(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("the result document")).expect("JSON")
}

/// A build of `dockerfile` with `lists` over ssh with `client`, to `url`.
fn build_over_ssh(dir: &Path, client: &SshClient, url: &str, dockerfile: &str, lists: Value) -> (Run, String) {
    git_repo(&dir.join("repo"), &[("Dockerfile", dockerfile)]);
    let image = unique("ssh");
    let mut request = json!({"image": image, "git_url": "repo"});
    request.as_object_mut().expect("object").extend(lists.as_object().expect("lists").clone());
    let file = build_json(dir, &request);
    let path = client.path();
    let run = reactor(
        dir,
        &["-v", "build", "json", &file, "--metadata-file", "m.json"],
        &[("DOCKER_HOST", url), ("PATH", &path)],
    );
    (run, image)
}

#[test]
fn a_build_over_ssh_with_a_port_in_the_url_runs_a_container_and_pushes() {
    let dir = workdir();
    let client = SshClient::new("client_key", None);
    let lists = json!({
        "prepublish_plugins": [{"name": "run_in_image", "args": {"command": "echo ran over ssh; cat /marker"}}],
        "postbuild_plugins": [{"name": "tag_and_push", "args": {"registries": {REGISTRY: {"insecure": true}}}}]
    });
    let dockerfile = "FROM busybox:latest\nRUN echo built-over-ssh > /marker\n";
    let (run, image) = build_over_ssh(dir.path(), &client, URL, dockerfile, lists);
    let pushed = format!("{REGISTRY}/{image}:latest");
    let _cleanup = Images(vec![image.clone(), pushed.clone()]);
    run.expect_code(0);
    let ssh_line =
        "running ssh -o ConnectTimeout=30 -o BatchMode=yes -T -l root -p 2222 -- 127.0.0.1 docker system dial-stdio";
    assert!(run.stderr.contains(ssh_line), "{}", run.stderr);
    let doc = read_doc(&dir.path().join("m.json"));
    assert_eq!(
        result_in(&doc, "prepublish", "run_in_image"),
        json!({"exit_code": 0, "stdout": "ran over ssh\nbuilt-over-ssh\n", "stderr": ""})
    );
    let pushes = result_in(&doc, "postbuild", "tag_and_push");
    assert_eq!(pushes[0]["image"], pushed.as_str(), "{pushes}");
    assert_eq!(pushes[0]["digest"], served_digest(REGISTRY, &image, "latest", None).as_str(), "{pushes}");
    // The remote side is the main engine: the image is there.
    assert!(docker(&["image", "inspect", &image]).status.success(), "the image is on the engine behind ssh");
    client.assert_none_left();
}

/// The one ERROR line about the engine, with the build's own end line after it.
fn engine_error(run: &Run) -> String {
    run.expect_code(1);
    let errors = run.errors();
    assert_eq!(errors.len(), 2, "one error and the build's end: {errors:#?}");
    errors[0].to_owned()
}

#[test]
fn an_unknown_host_key_says_to_add_it_to_known_hosts() {
    let dir = workdir();
    let empty = dir.path().join("empty_known_hosts");
    std::fs::write(&empty, "").expect("write");
    let client = SshClient::new("client_key", Some(&empty));
    let (run, _) = build_over_ssh(dir.path(), &client, URL, "FROM busybox:latest\n", json!({}));
    let error = engine_error(&run);
    assert!(error.contains(&format!("the engine {URL}: ssh does not know the host key of 127.0.0.1:2222")), "{error}");
    assert!(error.contains("ssh-keyscan -p 2222 127.0.0.1 >> ~/.ssh/known_hosts"), "{error}");
    client.assert_none_left();
}

#[test]
fn a_key_the_host_does_not_accept_says_which_user_and_to_check_the_key() {
    let dir = workdir();
    let client = SshClient::new("stranger_key", None);
    let (run, _) = build_over_ssh(dir.path(), &client, URL, "FROM busybox:latest\n", json!({}));
    let error = engine_error(&run);
    assert!(
        error.contains(&format!("the engine {URL}: 127.0.0.1:2222 refused the ssh login of user 'root'")),
        "{error}"
    );
    assert!(error.contains("Permission denied (publickey)") && error.contains("ssh-agent"), "{error}");
}

#[test]
fn a_refused_port_says_the_engine_is_unreachable() {
    let dir = workdir();
    let client = SshClient::new("client_key", None);
    // A port nothing listens on: bound, then released.
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let url = format!("ssh://root@127.0.0.1:{port}");
    let (run, _) = build_over_ssh(dir.path(), &client, &url, "FROM busybox:latest\n", json!({}));
    let error = engine_error(&run);
    assert!(
        error.contains(&format!(
            "cannot reach the engine {url}: ssh: connect to host 127.0.0.1 port {port}: Connection refused"
        )),
        "{error}"
    );
    assert!(error.contains(&format!("is sshd running on 127.0.0.1:{port}")), "{error}");
}

#[test]
fn a_remote_host_without_docker_says_to_install_it_there() {
    let dir = workdir();
    // sshd.sh authorizes this key with a PATH that holds no docker.
    let client = SshClient::new("nodocker_key", None);
    let (run, _) = build_over_ssh(dir.path(), &client, URL, "FROM busybox:latest\n", json!({}));
    let error = engine_error(&run);
    assert!(error.contains(&format!("the engine {URL}: the remote host has no `docker` command")), "{error}");
    assert!(error.contains("docker: command not found") && error.contains("install the docker CLI there"), "{error}");
    client.assert_none_left();
}

/// Waits until the main engine (the one behind ssh) runs, or no longer has, a container whose
/// command holds `marker`.
fn wait_for_container(marker: &str, present: bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ps = docker(&["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]);
        if String::from_utf8_lossy(&ps.stdout).contains(marker) == present {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "a container running {marker} is {}",
            if present { "not there" } else { "left" }
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts a build over ssh in the background, with an exit plugin recording into `record`.
/// The image's name is removed when the returned guard is dropped.
fn start_over_ssh(
    dir: &Path,
    client: &SshClient,
    dockerfile: &str,
    lists: Value,
    own_group: bool,
) -> (Background, Images) {
    git_repo(&dir.join("repo"), &[("Dockerfile", dockerfile)]);
    let image = unique("ssh-cancel");
    let mut request = json!({"image": image, "git_url": "repo",
        "exit_plugins": [{"name": "recorder", "args": {"path": dir.join("record.txt"), "label": "exit"}}]});
    request.as_object_mut().expect("object").extend(lists.as_object().expect("lists").clone());
    let file = build_json(dir, &request);
    let so = plugin("test_plugins");
    let path = client.path();
    let run = Background::start(
        dir,
        &["-v", "--load-plugin", &so, "build", "json", &file, "--metadata-file", "m.json"],
        &[("DOCKER_HOST", URL), ("PATH", &path)],
        own_group,
    );
    (run, Images(vec![image]))
}

#[test]
fn sigterm_during_a_build_over_ssh_stops_it_there_and_leaves_no_ssh() {
    let dir = workdir();
    let client = SshClient::new("client_key", None);
    // An odd duration, to find this build's container among others.
    let (run, _image) = start_over_ssh(dir.path(), &client, "FROM busybox:latest\nRUN sleep 37.75\n", json!({}), false);
    run.wait_until("the sleep step", |r| r.stderr().contains("Running in "));
    assert!(!client.processes().is_empty(), "the build runs through ssh");
    run.signal("TERM", false);
    let (code, stderr) = run.wait();
    assert_eq!(code, Some(143), "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.path().join("record.txt")).expect("the exit plugin ran"), "exit exit\n");
    assert_eq!(read_doc(&dir.path().join("m.json"))["status"], "cancelled");
    client.assert_none_left();
    wait_for_container("sleep 37.75", false);
}

#[test]
fn ctrl_c_during_a_container_run_over_ssh_removes_the_container_through_ssh() {
    let dir = workdir();
    let client = SshClient::new("client_key", None);
    let lists = json!({"prepublish_plugins": [{"name": "run_in_image", "args": {"command": "sleep 41.25"}}]});
    // In a process group of its own, signalled as a whole as a terminal's Ctrl-C is: ssh, in a
    // group of its own, must survive it for reactor to remove the container through it.
    let (run, _image) = start_over_ssh(dir.path(), &client, "FROM busybox:latest\n", lists, true);
    run.wait_until("the container run", |r| r.stderr().contains("running /bin/sh -c 'sleep 41.25'"));
    wait_for_container("sleep 41.25", true);
    run.signal("INT", true);
    let (code, stderr) = run.wait();
    assert_eq!(code, Some(130), "{stderr}");
    assert!(!stderr.contains("could not remove container"), "{stderr}");
    wait_for_container("sleep 41.25", false);
    assert_eq!(std::fs::read_to_string(dir.path().join("record.txt")).expect("the exit plugin ran"), "exit exit\n");
    client.assert_none_left();
}

#[test]
fn the_urls_socket_path_picks_the_engine_on_the_remote_host() {
    let dir = workdir();
    let client = SshClient::new("client_key", None);
    // podman's service (scripts/engine/podman.sh) on the same host: the path, not the remote
    // session's DOCKER_HOST (the main engine), decides where the build runs, as OSBS 2 builds
    // on podman over ssh.
    let root = std::env::var("REACTOR_ENGINES_DIR").unwrap_or_else(|_| "/var/lib/reactor-test-engines".to_owned());
    let socket = format!("{root}/podman/podman.sock");
    let podman = |args: &[&str]| {
        Command::new("docker").args(["-H", &format!("unix://{socket}")]).args(args).output().expect("run docker")
    };
    let up = podman(&["version"]);
    assert!(up.status.success(), "podman's service does not answer at {socket}: run scripts/engine/podman.sh up");
    let url = format!("{URL}{socket}");
    let (run, image) = build_over_ssh(dir.path(), &client, &url, "FROM busybox:latest\nLABEL over=ssh\n", json!({}));
    let _main = Images(vec![image.clone()]);
    let on_podman = podman(&["image", "inspect", "-f", "{{.Id}}", &image]);
    let _ = podman(&["rmi", "-f", &image]);
    run.expect_code(0);
    assert!(run.stderr.contains(&format!("docker --host unix://{socket} system dial-stdio")), "{}", run.stderr);
    assert!(on_podman.status.success(), "the image is not on podman: {}", String::from_utf8_lossy(&on_podman.stderr));
    assert!(!docker(&["image", "inspect", &image]).status.success(), "the image went to the main engine");
    client.assert_none_left();
}
