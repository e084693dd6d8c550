//! Engines other than the local socket, end to end: the mutual-TLS dockerd on 127.0.0.1:2376 and
//! the plain-TCP one on 127.0.0.1:2375 that `scripts/engines.sh up` starts (setup.sh runs it),
//! named by DOCKER_HOST, `-H https://…` and a docker CLI context; the engine chosen as the docker
//! CLI chooses; every TLS, unreachable and unknown-context error; cancellation and 8 concurrent
//! builds on the TLS engine; a remote engine killed mid-build (a private dockerd reached over
//! TCP through a forwarder of the test's own). Each build runs a container (`run_in_image`) and
//! pushes to the shared registry on 127.0.0.1:5000, whose served digest is checked.

use std::io::{BufRead, BufReader};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::private_engine::PrivateEngine;
use crate::util::*;

const ENGINES: &str = "/var/lib/reactor-test-engines";
const TLS_URL: &str = "tcp://127.0.0.1:2376";
const TCP_URL: &str = "tcp://127.0.0.1:2375";
const REGISTRY: &str = "127.0.0.1:5000";
/// The registry that wants a login (scripts/setup.sh), and its test login.
const AUTH_REGISTRY: &str = "127.0.0.1:5001";
const LOGIN: &str = "reactor:reactor-secret";

/// The extra engines' client files (ca.pem, cert.pem, key.pem).
fn client_dir() -> String {
    format!("{ENGINES}/client")
}

/// The environment that names the TLS engine as the docker CLI's users do.
fn tls_env() -> Vec<(&'static str, String)> {
    vec![("DOCKER_HOST", TLS_URL.to_owned()), ("DOCKER_TLS_VERIFY", "1".to_owned()), ("DOCKER_CERT_PATH", client_dir())]
}

/// The docker CLI on engine `name` (`tls`, `tcp`) through its admin socket; fails loudly, never
/// skips, when the engine is not up.
fn remote_docker(name: &str, args: &[&str]) -> Output {
    let host = format!("unix://{ENGINES}/{name}/docker.sock");
    let out = Command::new("docker").arg("-H").arg(&host).args(args).output().expect("run docker");
    let info = Command::new("docker").args(["-H", &host, "info", "-f", "{{.ID}}"]).output().expect("run docker");
    assert!(info.status.success(), "the '{name}' engine is not up: run `bash scripts/engines.sh up` (setup.sh does)");
    out
}

fn with_env<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A build of a path source that runs a container of the built image and pushes it to the
/// shared registry, on whichever engine `args`/`env` choose.
struct RemoteBuild {
    dir: tempfile::TempDir,
    repo: String,
    file: String,
    /// The engines whose copy of the image goes when the test ends, passed or not.
    clean_up: std::cell::RefCell<Vec<&'static str>>,
}

impl RemoteBuild {
    fn new(name: &str, dockerfile: &str, extra: Value) -> RemoteBuild {
        let dir = workdir();
        let repo = unique(name);
        write_files(&dir.path().join("src"), &[("Dockerfile", dockerfile)]);
        let mut request = json!({
            "image": format!("{repo}:build"),
            "source": {"provider": "path", "uri": "src"},
            "prepublish_plugins": [{"name": "run_in_image", "args": {"command": "echo ran on $(cat /engine)"}}],
            "postbuild_plugins": [{"name": "tag_and_push", "args": {"registries": {REGISTRY: {"insecure": true}}}}],
            "exit_plugins": [{"name": "store_metadata", "args": {"path": dir.path().join("stored.json")}}],
        });
        request.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        let file = build_json(dir.path(), &request);
        RemoteBuild { dir, repo, file, clean_up: Default::default() }
    }

    fn args<'a>(&'a self, before: &[&'a str]) -> Vec<&'a str> {
        let mut args = before.to_vec();
        args.extend(["build", "json", &self.file, "--metadata-file", "m.json"]);
        args
    }

    fn run(&self, before: &[&str], env: &[(&str, &str)]) -> (Run, Value) {
        let run = reactor(self.dir.path(), &self.args(before), env);
        (run, self.doc())
    }

    fn doc(&self) -> Value {
        std::fs::read_to_string(self.dir.path().join("m.json"))
            .map(|t| serde_json::from_str(&t).expect("the result document is JSON"))
            .unwrap_or(Value::Null)
    }

    /// Whether the exit plugin (the built-in `store_metadata`) ran.
    fn exit_plugins_ran(&self) -> bool {
        self.dir.path().join("stored.json").is_file()
    }

    /// The build succeeded on engine `name`, ran its container there, pushed what the registry
    /// serves, and named the engine in its log and document; the image is removed there after.
    fn assert_built_on(&self, name: &str, url: &str, tls: bool, run: &Run, doc: &Value) {
        run.expect_code(0);
        let first = run.stderr.lines().next().unwrap_or_default();
        assert!(first.contains(&format!("on the Docker engine {url}")), "first log line: {first}");
        let connected = format!(
            "connected to the Docker engine {} (API 1.41) at {url}",
            doc["engine"]["server_version"].as_str().unwrap_or("?")
        );
        assert!(run.stderr.contains(&connected), "no line {connected:?} in:\n{}", run.stderr);
        assert_eq!(doc["engine"]["url"], url, "{doc}");
        assert_eq!(doc["engine"]["tls"], tls, "{doc}");
        assert!(doc["engine"]["server_version"].as_str().is_some_and(|v| !v.is_empty()), "{doc}");
        assert_eq!(doc["engine"]["api_version"], "1.41", "{doc}");
        let ran = result_in(doc, "prepublish", "run_in_image");
        assert_eq!(ran["stdout"], format!("ran on {name}\n"), "{ran}");
        let pushed = format!("{REGISTRY}/{}:build", self.repo);
        assert_eq!(doc["digests"][&pushed], json!(served_digest(REGISTRY, &self.repo, "build", None)), "{doc}");
        let image_id = doc["image_id"].as_str().expect("an image id");
        let there = remote_docker(name, &["image", "inspect", "-f", "{{.Id}}", &format!("{}:build", self.repo)]);
        assert_eq!(String::from_utf8_lossy(&there.stdout).trim(), image_id, "the image is on the '{name}' engine");
        assert!(
            !docker(&["image", "inspect", &format!("{}:build", self.repo)]).status.success(),
            "not on the local one"
        );
        assert!(self.exit_plugins_ran());
    }

    /// Removes the image from engine `name` when the test ends.
    fn remove_from(&self, name: &'static str) {
        self.clean_up.borrow_mut().push(name);
    }
}

impl Drop for RemoteBuild {
    fn drop(&mut self) {
        for name in self.clean_up.borrow().iter() {
            let image = format!("{}:build", self.repo);
            let _ = remote_docker(name, &["rmi", "-f", &image, &format!("{REGISTRY}/{image}")]);
        }
    }
}

/// A Dockerfile whose image says which engine built it.
fn dockerfile(engine: &str) -> String {
    format!("FROM busybox:latest\nRUN echo {engine} > /engine\n")
}

#[test]
fn a_build_on_the_tls_engine_runs_its_container_and_pushes() {
    let build = RemoteBuild::new("remote-tls", &dockerfile("tls"), json!({}));
    let (run, doc) = build.run(&[], &with_env(&tls_env()));
    build.remove_from("tls");
    build.assert_built_on("tls", TLS_URL, true, &run, &doc);
    assert!(
        run.stderr.lines().next().unwrap_or_default().contains("TLS, files from DOCKER_CERT_PATH"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_build_on_the_plain_tcp_engine_runs_its_container_and_pushes() {
    let build = RemoteBuild::new("remote-tcp", &dockerfile("tcp"), json!({}));
    let (run, doc) = build.run(&[], &[("DOCKER_HOST", TCP_URL)]);
    build.remove_from("tcp");
    build.assert_built_on("tcp", TCP_URL, false, &run, &doc);
}

#[test]
fn a_build_through_an_https_url_given_with_dash_h() {
    let build = RemoteBuild::new("remote-https", &dockerfile("tls"), json!({}));
    let cert_path = client_dir();
    let (run, doc) =
        build.run(&["-H", "https://localhost:2376"], &[("DOCKER_CERT_PATH", &cert_path), ("DOCKER_HOST", TCP_URL)]);
    build.remove_from("tls");
    build.assert_built_on("tls", "https://localhost:2376", true, &run, &doc);
}

/// Writes a docker CLI context store into `config` as `docker context create NAME --docker
/// host=URL,ca=…,cert=…,key=…` does; with `tls`, the TLS engine's client files.
fn write_context(config: &Path, name: &str, url: &str, tls: bool) {
    let id = sha256_hex(name);
    let meta = config.join("contexts/meta").join(&id);
    std::fs::create_dir_all(&meta).expect("mkdir");
    let doc = json!({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": url, "SkipTLSVerify": false}}});
    std::fs::write(meta.join("meta.json"), doc.to_string()).expect("write meta.json");
    if tls {
        let files = config.join("contexts/tls").join(&id).join("docker");
        std::fs::create_dir_all(&files).expect("mkdir");
        for file in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::copy(Path::new(&client_dir()).join(file), files.join(file)).expect("copy a client file");
        }
    }
}

fn sha256_hex(text: &str) -> String {
    let mut child = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("sha256sum");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), text.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("sha256sum");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().expect("a digest").to_owned()
}

#[test]
fn a_build_through_a_docker_context_with_tls_files_pushes_with_the_configs_login() {
    let registries = json!({REGISTRY: {"insecure": true}, AUTH_REGISTRY: {"insecure": true}});
    let build = RemoteBuild::new(
        "remote-context",
        &dockerfile("tls"),
        json!({"postbuild_plugins": [{"name": "tag_and_push", "args": {"registries": registries}}]}),
    );
    let config = build.dir.path().join("docker-config");
    write_context(&config, "remote-tls", TLS_URL, true);
    // currentContext chooses the engine (no variable names it); the same config.json holds the
    // login, which the engine gets with the push, as from the docker CLI.
    let auth = base64::engine::general_purpose::STANDARD.encode(LOGIN);
    let config_json = json!({"currentContext": "remote-tls", "auths": {AUTH_REGISTRY: {"auth": auth}}});
    std::fs::write(config.join("config.json"), config_json.to_string()).expect("config.json");
    let config = config.display().to_string();
    let (run, doc) = build.run(&[], &[("DOCKER_CONFIG", &config)]);
    build.remove_from("tls");
    let _also = ImagesOn(tls_docker, vec![format!("{AUTH_REGISTRY}/{}:build", build.repo)]);
    build.assert_built_on("tls", TLS_URL, true, &run, &doc);
    assert!(run.stderr.lines().next().unwrap_or_default().contains("docker context 'remote-tls'"), "{}", run.stderr);
    let pushed = format!("{AUTH_REGISTRY}/{}:build", build.repo);
    assert_eq!(
        doc["digests"][&pushed],
        json!(served_digest(AUTH_REGISTRY, &build.repo, "build", Some(LOGIN))),
        "{doc}"
    );
    assert!(!run.stderr.contains("reactor-secret") && !doc.to_string().contains("reactor-secret"));
}

/// The docker CLI on the TLS engine, through its admin socket.
fn tls_docker(args: &[&str]) -> Output {
    remote_docker("tls", args)
}

/// The engine line of a dry run with these arguments and environment.
fn chosen(dir: &Path, before: &[&str], env: &[(&str, &str)]) -> String {
    let mut args = before.to_vec();
    args.extend(["build", "path", "--uri", ".", "--image", "x:1", "--dry-run"]);
    let run = reactor(dir, &args, env);
    run.expect_code(0);
    run.stdout.lines().find_map(|l| l.strip_prefix("engine: ")).unwrap_or_else(|| panic!("{}", run.stdout)).to_owned()
}

#[test]
fn the_engine_is_chosen_as_the_docker_cli_chooses() {
    let dir = workdir();
    write_files(dir.path(), &[("Dockerfile", "FROM busybox:latest\n")]);
    let config = dir.path().join("config");
    write_context(&config, "from-config", "unix:///from/config.sock", false);
    write_context(&config, "from-env", TLS_URL, true);
    std::fs::write(config.join("config.json"), r#"{"currentContext": "from-config"}"#).expect("config.json");
    let config = config.display().to_string();
    let all = [("DOCKER_CONFIG", config.as_str()), ("DOCKER_HOST", TCP_URL), ("DOCKER_CONTEXT", "from-env")];
    // The flag beats everything; then DOCKER_HOST, DOCKER_CONTEXT, currentContext, the default.
    assert!(chosen(dir.path(), &["-H", "unix:///flag.sock"], &all)
        .starts_with("unix:///flag.sock (no TLS; chosen by --host)"));
    assert!(chosen(dir.path(), &["--context", "from-config"], &all).starts_with("unix:///from/config.sock"));
    assert!(chosen(dir.path(), &[], &all).starts_with(&format!("{TCP_URL} (no TLS; chosen by DOCKER_HOST)")));
    let by_context = chosen(dir.path(), &[], &all[..1].iter().chain(&all[2..]).copied().collect::<Vec<_>>());
    assert!(by_context.starts_with(&format!("{TLS_URL} (TLS, files from docker context 'from-env'")), "{by_context}");
    assert!(chosen(dir.path(), &[], &all[..1]).ends_with("chosen by currentContext from-config in config.json)"));
    let empty = dir.path().join("empty").display().to_string();
    assert!(chosen(dir.path(), &[], &[("DOCKER_CONFIG", &empty)]).starts_with("unix:///var/run/docker.sock"));
    // The default context is DOCKER_HOST's engine, as for the CLI.
    assert!(chosen(dir.path(), &["--context", "default"], &all).starts_with(TCP_URL));
    // Both flags: refused by the command line, as `docker -H … --context …` is.
    let both =
        reactor(dir.path(), &["-H", TCP_URL, "--context", "x", "build", "path", "--uri", ".", "--image", "x:1"], &[]);
    both.expect_code(2);
    // A password in the URL is never shown.
    let secret = chosen(dir.path(), &["-H", "tcp://me:hunter2@127.0.0.1:1"], &[]);
    assert!(secret.starts_with("tcp://***@127.0.0.1:1") && !secret.contains("hunter2"), "{secret}");
}

/// A build that must fail on the engine: exit 1, one ERROR line (before the summary) naming
/// the URL and containing `says`; the exit plugins ran and the document names the failure.
#[track_caller]
fn assert_engine_error(before: &[&str], env: &[(&str, &str)], url: &str, says: &str) -> String {
    let build = RemoteBuild::new("remote-error", &dockerfile("none"), json!({}));
    let (run, doc) = build.run(before, env);
    run.expect_code(1);
    let line = run
        .errors()
        .into_iter()
        .find(|l| l.contains(url) && l.contains(says))
        .unwrap_or_else(|| panic!("no error naming {url} and saying {says:?}:\n{}", run.stderr))
        .to_owned();
    assert_eq!(doc["status"], "failed", "{doc}");
    assert!(doc["failure"]["error"].as_str().is_some_and(|e| e.contains(says)), "{doc}");
    assert!(build.exit_plugins_ran(), "the exit plugins ran");
    // No key or certificate contents.
    assert!(!run.stderr.contains("-----BEGIN") && !doc.to_string().contains("-----BEGIN"), "{}", run.stderr);
    line
}

#[test]
fn an_engine_that_does_not_answer_is_named_with_what_to_do() {
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("tcp://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let line = assert_engine_error(&["-H", &url], &[], &url, "connection refused");
    assert!(line.contains("--host, --context, DOCKER_HOST"), "{line}");
    let gone = "unix:///nonexistent/docker.sock";
    assert_engine_error(&[], &[("DOCKER_HOST", gone)], gone, "cannot reach the Docker engine");
}

#[test]
fn an_engine_that_accepts_but_never_answers_is_given_up_on() {
    // Accepts, reads, never answers: a hung engine or a proxy with nothing behind it.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("tcp://{}", silent.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let held: Vec<TcpStream> = silent.incoming().flatten().collect();
        drop(held);
    });
    assert_engine_error(&["-H", &url], &[], &url, "no answer within 30 s");
}

#[test]
fn an_engine_with_no_route_to_it_is_named() {
    // reactor in a network namespace of its own with only loopback: 192.0.2.1 (TEST-NET-1) has
    // no route there, as from a host whose network is down.
    let build = RemoteBuild::new("remote-error", &dockerfile("none"), json!({}));
    let url = "tcp://192.0.2.1:2376";
    let out = Command::new("unshare")
        .args(["--net", "--", "sh", "-c", "ip link set lo up && exec \"$@\"", "sh"])
        .arg(env!("CARGO_BIN_EXE_reactor"))
        .args(["-H", url])
        .args(build.args(&[]))
        .current_dir(build.dir.path())
        .env_remove("RUST_LOG")
        .output()
        .expect("unshare reactor");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = format!("cannot reach the Docker engine at {url}: no route to host");
    assert!(stderr.lines().any(|l| l.contains(" ERROR ") && l.contains(&line)), "{stderr}");
    assert!(build.exit_plugins_ran(), "the exit plugins ran");
}

#[test]
fn plain_http_to_the_tls_port_and_tls_to_the_plain_port_are_told_apart() {
    let line = assert_engine_error(&[], &[("DOCKER_HOST", TLS_URL)], TLS_URL, "speaks TLS on that port");
    assert!(line.contains("set DOCKER_TLS_VERIFY=1"), "{line}");
    let cert_path = client_dir();
    let env = [("DOCKER_HOST", TCP_URL), ("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", cert_path.as_str())];
    assert_engine_error(&[], &env, TCP_URL, "does not speak TLS on that port");
}

/// A CA of the test's own, with a server certificate (`server-cert.pem`, `server-key.pem`, for
/// SAN `san`, valid `days`: negative is expired) and a client one (`cert.pem`, `key.pem`).
fn own_ca(dir: &Path, san: &str, days: i32) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
    ]);
    std::fs::write(dir.join("server.ext"), format!("subjectAltName={san}\nextendedKeyUsage=serverAuth\n"))
        .expect("ext");
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext");
    for (who, subject, ext, days) in
        [("server-", "/CN=localhost", "server.ext", days), ("", "/CN=client", "client.ext", 2)]
    {
        let (key, csr, cert) = (format!("{who}key.pem"), format!("{who}req.csr"), format!("{who}cert.pem"));
        openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", &key, "-out", &csr]);
        let days = days.to_string();
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            &days,
            "-extfile",
            ext,
            "-out",
            &cert,
        ]);
    }
}

/// `DOCKER_CERT_PATH` made of these files.
fn cert_dir(dir: &Path, ca: &Path, cert: &Path, key: &Path) -> String {
    std::fs::create_dir_all(dir).expect("mkdir");
    for (from, to) in [(ca, "ca.pem"), (cert, "cert.pem"), (key, "key.pem")] {
        std::fs::copy(from, dir.join(to)).expect("copy");
    }
    dir.display().to_string()
}

#[test]
fn tls_failures_each_say_what_is_wrong() {
    let dir = workdir();
    let own = dir.path().join("own");
    own_ca(&own, "IP:127.0.0.1", 2);
    let client = PathBuf::from(client_dir());
    fn tls(cert_path: &str) -> [(&str, &str); 3] {
        [("DOCKER_HOST", TLS_URL), ("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", cert_path)]
    }
    // A client certificate from another CA: the engine refuses it.
    let other =
        cert_dir(&dir.path().join("other"), &client.join("ca.pem"), &own.join("cert.pem"), &own.join("key.pem"));
    assert_engine_error(&[], &tls(&other), TLS_URL, "refused reactor's client certificate");
    // No client certificate at all: the same refusal.
    let bare = dir.path().join("bare");
    std::fs::create_dir_all(&bare).expect("mkdir");
    std::fs::copy(client.join("ca.pem"), bare.join("ca.pem")).expect("copy");
    assert_engine_error(&[], &tls(bare.to_str().expect("utf-8")), TLS_URL, "refused reactor's client certificate");
    // The engine's certificate is not signed by the CA given.
    let unknown =
        cert_dir(&dir.path().join("unknown"), &own.join("ca.pem"), &client.join("cert.pem"), &client.join("key.pem"));
    assert_engine_error(&[], &tls(&unknown), TLS_URL, "not signed by the CA in ca.pem");
    // Reached by an address its certificate does not list (127.0.0.2 is loopback too).
    let forward = Forwarder::to_tcp("127.0.0.2", "127.0.0.1:2376");
    let elsewhere = format!("tcp://{}", forward.addr);
    let env = [("DOCKER_HOST", elsewhere.as_str()), ("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", &client_dir())];
    assert_engine_error(&[], &env, &elsewhere, "not valid for this address");
    // Files missing or not PEM: said before connecting.
    let half = dir.path().join("half");
    std::fs::create_dir_all(&half).expect("mkdir");
    std::fs::copy(client.join("ca.pem"), half.join("ca.pem")).expect("copy");
    std::fs::copy(client.join("cert.pem"), half.join("cert.pem")).expect("copy");
    assert_engine_error(&[], &tls(half.to_str().expect("utf-8")), TLS_URL, "has cert.pem but no key.pem");
    std::fs::write(half.join("key.pem"), "not a key").expect("write");
    assert_engine_error(&[], &tls(half.to_str().expect("utf-8")), TLS_URL, "holds no private key");
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    assert_engine_error(&[], &tls(empty.to_str().expect("utf-8")), TLS_URL, "there is no ca.pem");
}

/// `openssl s_server` with the server certificate of `dir` (see [`own_ca`]), on an ephemeral
/// loopback port; killed on drop.
struct TlsServer {
    _child: Server,
    addr: String,
}

impl TlsServer {
    fn start(dir: &Path) -> TlsServer {
        let mut child = Command::new("openssl")
            .current_dir(dir)
            .args(["s_server", "-accept", "127.0.0.1:0", "-cert", "server-cert.pem", "-key", "server-key.pem", "-www"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .expect("openssl s_server");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let addr = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("ACCEPT ").map(str::to_owned))
            .expect("s_server says where it listens");
        std::thread::spawn(move || lines.for_each(drop));
        TlsServer { _child: Server(child), addr }
    }
}

#[test]
fn an_expired_engine_certificate_is_named() {
    let dir = workdir();
    let own = dir.path().join("own");
    own_ca(&own, "IP:127.0.0.1", -1);
    let server = TlsServer::start(&own);
    let url = format!("tcp://{}", server.addr);
    let env =
        [("DOCKER_HOST", url.as_str()), ("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", own.to_str().expect("utf-8"))];
    assert_engine_error(&[], &env, &url, "the engine's certificate has expired");
}

#[test]
fn an_unknown_context_lists_the_known_ones() {
    let dir = workdir();
    let config = dir.path().join("config");
    write_context(&config, "remote-tls", TLS_URL, true);
    let build = RemoteBuild::new("remote-error", &dockerfile("none"), json!({}));
    let config = config.display().to_string();
    for (before, env) in [(vec!["--context", "nope"], vec![]), (vec![], vec![("DOCKER_CONTEXT", "nope")])] {
        let mut env = env;
        env.push(("DOCKER_CONFIG", config.as_str()));
        let (run, doc) = build.run(&before, &env);
        run.expect_code(1);
        let errors = run.errors();
        assert_eq!(errors.len(), 1, "{}", run.stderr);
        assert!(
            errors[0].contains("no docker context 'nope'") && errors[0].contains("known contexts: default, remote-tls"),
            "{}",
            errors[0]
        );
        assert_eq!(doc["exit_code"], 1, "{doc}");
    }
}

/// Forwards every TCP connection accepted on an ephemeral port of `ip` to `target` (a TCP
/// address, or a unix socket): an engine reached by another address, or over TCP.
struct Forwarder {
    addr: String,
}

impl Forwarder {
    fn to_tcp(ip: &str, target: &str) -> Forwarder {
        let target = target.to_owned();
        Forwarder::start(ip, move || TcpStream::connect(&target).map(Stream::Tcp))
    }

    fn to_unix(path: PathBuf) -> Forwarder {
        Forwarder::start("127.0.0.1", move || UnixStream::connect(&path).map(Stream::Unix))
    }

    fn start(ip: &str, connect: impl Fn() -> std::io::Result<Stream> + Send + 'static) -> Forwarder {
        let listener = TcpListener::bind((ip, 0)).expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = connect() else {
                    continue; // dropping the client closes it, as a dead engine's port would
                };
                let (client2, server2) = (client.try_clone().expect("clone"), server.try_clone());
                std::thread::spawn(move || copy(client, server2));
                std::thread::spawn(move || copy_back(server, client2));
            }
        });
        Forwarder { addr }
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn try_clone(&self) -> Stream {
        match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone().expect("clone")),
            Stream::Unix(s) => Stream::Unix(s.try_clone().expect("clone")),
        }
    }
}

fn copy(mut from: TcpStream, to: Stream) {
    let _ = match to {
        Stream::Tcp(mut s) => std::io::copy(&mut from, &mut s).and_then(|_| s.shutdown(Shutdown::Write)),
        Stream::Unix(mut s) => std::io::copy(&mut from, &mut s).and_then(|_| s.shutdown(Shutdown::Write)),
    };
}

fn copy_back(from: Stream, mut to: TcpStream) {
    let _ = match from {
        Stream::Tcp(mut s) => std::io::copy(&mut s, &mut to),
        Stream::Unix(mut s) => std::io::copy(&mut s, &mut to),
    };
    let _ = to.shutdown(Shutdown::Both);
}

#[test]
fn a_remote_engine_killed_mid_build_ends_it_clearly_and_the_next_build_succeeds() {
    let mut engine = PrivateEngine::start();
    let socket = PathBuf::from(engine.host().trim_start_matches("unix://"));
    let forward = Forwarder::to_unix(socket);
    let url = format!("tcp://{}", forward.addr);
    let slow = RemoteBuild::new(
        "remote-killed",
        "FROM busybox:latest\nRUN sleep 29.3\n",
        json!({"prepublish_plugins": [], "postbuild_plugins": []}),
    );
    let run = Background::start(slow.dir.path(), &slow.args(&["-H", &url]), &[], false);
    run.wait_until("the sleep step", |r| r.stderr().contains("Running in "));
    let killed = Instant::now();
    engine.kill();
    let (code, stderr) = run.wait_up_to(Duration::from_secs(30));
    assert!(killed.elapsed() < Duration::from_secs(30), "{stderr}");
    assert_eq!(code, Some(1), "{stderr}");
    let doc = slow.doc();
    assert_eq!(doc["status"], "failed", "{doc}");
    assert_eq!(doc["engine"]["url"], url.as_str(), "{doc}");
    let error = doc["failure"]["error"].as_str().unwrap_or_default();
    assert!(error.contains(&url), "the error names the engine: {doc}");
    assert!(slow.exit_plugins_ran(), "the exit plugins ran");
    engine.restart();
    // No push: the private engine's own loopback has no registry.
    let next = RemoteBuild::new("remote-back", &dockerfile("private"), json!({"postbuild_plugins": []}));
    let (run, doc) = next.run(&["-H", &url], &[]);
    run.expect_code(0);
    assert_eq!(doc["engine"]["url"], url.as_str(), "{doc}");
    assert_eq!(result_in(&doc, "prepublish", "run_in_image")["stdout"], "ran on private\n");
}

#[test]
fn a_cancelled_build_leaves_nothing_running_on_the_tls_engine() {
    let build = RemoteBuild::new(
        "remote-cancel",
        &dockerfile("tls"),
        json!({"prepublish_plugins": [{"name": "run_in_image", "args": {"command": "sleep 43.7"}}], "postbuild_plugins": []}),
    );
    let env = tls_env();
    let run = Background::start(build.dir.path(), &build.args(&[]), &with_env(&env), false);
    let running = || {
        let ps = remote_docker("tls", &["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]);
        String::from_utf8_lossy(&ps.stdout).contains("sleep 43.7")
    };
    run.wait_until("the plugin's container on the TLS engine", |_| running());
    let label = format!("label=io.reactor.pid={}", run.pid());
    let labelled = || {
        let ps = remote_docker("tls", &["ps", "-aq", "--filter", &label]);
        String::from_utf8_lossy(&ps.stdout).trim().to_owned()
    };
    assert_ne!(labelled(), "", "reactor labels the containers it starts");
    run.signal("TERM", false);
    let (code, stderr) = run.wait();
    build.remove_from("tls");
    assert_eq!(code, Some(143), "{stderr}");
    assert!(!running(), "the container is gone from the TLS engine");
    let ancestors = remote_docker("tls", &["ps", "-aq", "--filter", &format!("ancestor={}:build", build.repo)]);
    assert_eq!(String::from_utf8_lossy(&ancestors.stdout).trim(), "", "no container of the build is left");
    assert_eq!(labelled(), "", "no container with reactor's label is left");
    assert!(build.exit_plugins_ran(), "the exit plugins ran");
    assert_eq!(build.doc()["status"], "cancelled");
}

#[test]
fn eight_concurrent_builds_on_the_tls_engine_all_succeed_with_their_own_results() {
    let builds: Vec<RemoteBuild> = (0..8)
        .map(|i| {
            RemoteBuild::new(
                "remote-many",
                &format!("FROM busybox:latest\nRUN echo tls > /engine && echo {i} > /n\n"),
                json!({}),
            )
        })
        .collect();
    let env = tls_env();
    let runs: Vec<Background> =
        builds.iter().map(|b| Background::start(b.dir.path(), &b.args(&[]), &with_env(&env), false)).collect();
    let ended: Vec<(Option<i32>, String)> = runs.into_iter().map(|r| r.wait_up_to(Duration::from_secs(300))).collect();
    let mut ids = std::collections::BTreeSet::new();
    for (build, (code, stderr)) in builds.iter().zip(ended) {
        build.remove_from("tls");
        assert_eq!(code, Some(0), "{stderr}");
        let doc = build.doc();
        assert_eq!(doc["engine"]["url"], TLS_URL);
        let pushed = format!("{REGISTRY}/{}:build", build.repo);
        assert_eq!(doc["digests"][&pushed], json!(served_digest(REGISTRY, &build.repo, "build", None)), "{doc}");
        ids.insert(doc["image_id"].as_str().expect("an image id").to_owned());
    }
    assert_eq!(ids.len(), 8, "each build made its own image: {ids:?}");
}

/// `--method hostdocker` on an engine chosen by a docker context: the build image is made there
/// by `create-build-image`, and the build container gets the engine's URL and the context's TLS
/// files (mounted from its store), runs the build there, and leaves nothing behind.
#[test]
fn method_hostdocker_through_a_context_hands_the_tls_engine_and_its_files_to_the_build_container() {
    let dir = workdir();
    let repo = unique("remote-hostdocker");
    write_files(&dir.path().join("src"), &[("Dockerfile", &dockerfile("tls"))]);
    let request = json!({
        "image": format!("{repo}:build"),
        "source": {"provider": "path", "uri": "src"},
        "prepublish_plugins": [{"name": "run_in_image", "args": {"command": "echo ran on $(cat /engine)"}}],
        "postbuild_plugins": [{"name": "tag_and_push", "args": {"registries": {REGISTRY: {"insecure": true}}}}],
    });
    let file = build_json(dir.path(), &request);
    let config = dir.path().join("docker-config");
    write_context(&config, "remote-tls", TLS_URL, true);
    let config = config.display().to_string();
    let env = [("DOCKER_CONFIG", config.as_str())];
    let build_image = format!("{}:test", unique("remote-buildimage"));
    let _cleanup =
        ImagesOn(tls_docker, vec![build_image.clone(), format!("{repo}:build"), format!("{REGISTRY}/{repo}:build")]);
    let plugin = plugin("logs_submitter");
    let made = reactor(
        dir.path(),
        &["--context", "remote-tls", "create-build-image", "--tag", &build_image, "--plugin", &plugin],
        &env,
    );
    made.expect_code(0);
    let on_tls = remote_docker("tls", &["image", "inspect", "-f", "{{.Id}}", &build_image]);
    assert!(on_tls.status.success(), "create-build-image made {build_image} on the TLS engine: {}", made.stderr);

    let args = [
        "--context",
        "remote-tls",
        "build",
        "json",
        &file,
        "--method",
        "hostdocker",
        "--build-image",
        &build_image,
        "--metadata-file",
        "m.json",
        "--results-dir",
        "results",
    ];
    let run = reactor(dir.path(), &args, &env);
    run.expect_code(0);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("m.json")).expect("m.json"))
        .expect("the result document is JSON");
    // The build inside named the engine it was handed, with TLS.
    assert_eq!(doc["engine"]["url"], TLS_URL, "{doc}");
    assert_eq!(doc["engine"]["tls"], true, "{doc}");
    let ran = result_in(&doc, "prepublish", "run_in_image");
    assert_eq!(ran["stdout"], "ran on tls\n", "{ran}");
    let digest = served_digest(REGISTRY, &repo, "build", None);
    let results = dir.path().join("results");
    let read = |name: &str| std::fs::read_to_string(results.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(read("IMAGE_DIGEST"), digest);
    assert_eq!(read("IMAGE_URL"), format!("{REGISTRY}/{repo}:build"));
    let filter = format!("label=io.reactor.build-container={repo}:build");
    let left = remote_docker("tls", &["ps", "-a", "-q", "--filter", &filter]);
    assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "", "the build container is left on the TLS engine");
    assert!(!run.stderr.contains("PRIVATE KEY") && !doc.to_string().contains("PRIVATE KEY"));
}
