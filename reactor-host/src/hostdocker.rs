//! `build … --method hostdocker`: the build runs inside a container of the reactor image on the
//! selected engine, as atomic-reactor 1.6's `outer.py` ran it.
//!
//! The caller lays out a share directory holding the build.json (mounted read-only at
//! `/run/share/build.json`, the rest of `/run/share` writable for the results), mounts the
//! engine's socket, the `--load-plugin` files, the `--plugin-dir` directories and a local source
//! read-only, and runs `inside-build --input path` with its own relevant flags. The container's
//! output is streamed to the caller's stdout and stderr; its exit code, result document and
//! results files come back. A signal to the caller is passed on to the container, which is
//! removed however the build ends.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use crate::app::{exit, Globals};
use crate::build_json::BuildRequest;
use crate::cancel::Cancel;
use crate::cli::RunArgs;
use crate::engine::build_container::{BuildContainer, Stream};
use crate::engine::endpoint::{self, Endpoint};
use crate::engine::Engine;
use crate::source::Provider;

/// Where things are in the container.
const SOCKET_IN_CONTAINER: &str = "/var/run/docker.sock";
const SHARE: &str = "/run/share";
const SOURCE: &str = "/run/reactor/source";
const LOAD_PLUGIN: &str = "/run/reactor/load-plugin";
const PLUGIN_DIR: &str = "/run/reactor/plugin-dir";
const DOCKER_CONFIG: &str = "/run/reactor/docker-config";
const CERTS: &str = "/run/reactor/docker-certs";
/// The results directory inside the share directory, copied to the caller's `--results-dir`.
const RESULTS: &str = "results";

/// How long past its own grace and exit timeout a cancelled container may take to end.
const STOP_MARGIN: Duration = Duration::from_secs(10);

/// Why the build cannot be handed to a container; each is one line.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Plugin(String),
    #[error("{0}")]
    Failed(String),
}

impl Refused {
    fn code(&self) -> u8 {
        match self {
            Refused::Input(_) => exit::INVALID_INPUT,
            Refused::Plugin(_) => exit::PLUGIN_LOAD,
            Refused::Failed(_) => exit::FAILED,
        }
    }
}

/// Runs `request` (whose build.json is `value`, substitutions applied) in a build container.
pub fn run(request: &BuildRequest, value: Value, run: &RunArgs, globals: &Globals) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            log::error!("cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    let outcome = runtime.block_on(run_in_container(request, value, run, globals));
    runtime.shutdown_background();
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(refused) => {
            log::error!("{refused}");
            ExitCode::from(refused.code())
        }
    }
}

async fn run_in_container(
    request: &BuildRequest,
    mut value: Value,
    run: &RunArgs,
    globals: &Globals,
) -> Result<u8, Refused> {
    let cancel = Cancel::new(run.cancel_grace).with_exit_timeout(run.exit_timeout);
    if let Err(e) = cancel.listen_for_signals() {
        log::warn!("cannot listen for SIGINT/SIGTERM ({e}); a signal will leave the build container running");
    }
    let image = run.build_image.clone().unwrap_or_else(crate::build_image::default_tag);
    let endpoint = endpoint::resolve(&globals.engine, &endpoint::ProcessEnv)
        .map_err(|e| Refused::Failed(format!("engine: {e}")))?;
    let engine = Engine::connect(&endpoint).await.map_err(|e| Refused::Failed(e.to_string()))?;
    let access = engine_access(&endpoint).map_err(Refused::Input)?;

    // The share directory is world-writable for the container's user; it sits in a directory
    // of the caller's only, so nobody else can reach it.
    let outer = tempfile::Builder::new().prefix("reactor-hostdocker-").tempdir().map_err(|e| {
        Refused::Failed(format!("cannot make the share directory in {}: {e}", std::env::temp_dir().display()))
    })?;
    let share = outer.path().join("share");
    let build_json = share.join("build.json");
    let made = std::fs::create_dir(&share).and_then(|()| set_mode(&share, 0o777));
    made.map_err(|e| Refused::Failed(format!("cannot make the share directory {}: {e}", share.display())))?;

    let mut spec = BuildContainer {
        name: format!("reactor-build-{}-{}", std::process::id(), random_suffix(outer.path())),
        image: image.clone(),
        labels: [("io.reactor.build-container".to_owned(), request.image.clone())].into(),
        ..Default::default()
    };
    match access {
        EngineAccess::Socket(socket) => {
            spec.env.push(format!("DOCKER_HOST=unix://{SOCKET_IN_CONTAINER}"));
            spec.binds.push(format!("{}:{SOCKET_IN_CONTAINER}:ro", socket.display()));
            // The socket's group lets the container's non-root user use it.
            if let Ok(meta) = std::fs::metadata(&socket) {
                spec.group_add.push(std::os::unix::fs::MetadataExt::gid(&meta).to_string());
            }
        }
        EngineAccess::Tcp { host, tls_verify, cert_dir } => {
            spec.env.push(format!("DOCKER_HOST={host}"));
            if let Some(verify) = tls_verify {
                spec.env.push(format!("DOCKER_TLS_VERIFY={verify}"));
            }
            if let Some(dir) = cert_dir {
                let copy = copy_tls_files(&dir, &outer.path().join("certs")).map_err(Refused::Failed)?;
                spec.binds.push(format!("{}:{CERTS}:ro", copy.display()));
                spec.env.push(format!("DOCKER_CERT_PATH={CERTS}"));
            }
        }
    }
    spec.binds.push(format!("{}:{SHARE}", share.display()));
    spec.binds.push(format!("{}:{SHARE}/build.json:ro", build_json.display()));

    if let Some(local) = local_source(request) {
        let local = local.canonicalize().map_err(|e| Refused::Input(format!("the source {}: {e}", local.display())))?;
        spec.binds.push(format!("{}:{SOURCE}:ro", local.display()));
        point_source_at(&mut value, SOURCE);
        // The mount is the caller's, not the container user's: git (libgit2 too) refuses a
        // repository another user owns unless it is a `safe.directory` of the user's config.
        let gitconfig = outer.path().join("gitconfig");
        std::fs::write(&gitconfig, format!("[safe]\n\tdirectory = {SOURCE}\n"))
            .and_then(|()| set_mode(&gitconfig, 0o644))
            .map_err(|e| Refused::Failed(format!("cannot write {}: {e}", gitconfig.display())))?;
        spec.binds.push(format!("{}:{}/.gitconfig:ro", gitconfig.display(), crate::build_image::HOME));
    }
    let text = serde_json::to_string_pretty(&value).map_err(|e| Refused::Failed(e.to_string()))?;
    std::fs::write(&build_json, text)
        .and_then(|()| set_mode(&build_json, 0o644))
        .map_err(|e| Refused::Failed(format!("cannot write {}: {e}", build_json.display())))?;

    let mut args = Vec::new();
    if globals.verbose {
        args.push("-v".to_owned());
    }
    if globals.quiet {
        args.push("-q".to_owned());
    }
    // The container has no terminal: plain lines, unless the caller asked for JSON.
    let progress = if globals.progress == crate::progress::Mode::Json { "json" } else { "plain" };
    args.extend(["--progress".to_owned(), progress.to_owned()]);
    if globals.isolate_plugins {
        args.push("--isolate-plugins".to_owned());
    }
    if globals.allow_insecure_plugin_dirs {
        args.push("--allow-insecure-plugin-dirs".to_owned());
    }
    for (i, file) in globals.load_plugin.iter().enumerate() {
        let host =
            file.canonicalize().map_err(|e| Refused::Plugin(format!("--load-plugin {}: {e}", file.display())))?;
        let name = host.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let inside = format!("{LOAD_PLUGIN}/{i}/{name}");
        spec.binds.push(format!("{}:{inside}:ro", host.display()));
        args.extend(["--load-plugin".to_owned(), inside]);
    }
    for (i, dir) in globals.plugin_dir.iter().enumerate() {
        let host = dir.canonicalize().map_err(|e| Refused::Plugin(format!("--plugin-dir {}: {e}", dir.display())))?;
        let inside = format!("{PLUGIN_DIR}/{i}");
        spec.binds.push(format!("{}:{inside}:ro", host.display()));
        args.extend(["--plugin-dir".to_owned(), inside]);
    }
    if let Some(config) = docker_config_dir() {
        spec.binds.push(format!("{}:{DOCKER_CONFIG}:ro", config.display()));
        spec.env.push(format!("DOCKER_CONFIG={DOCKER_CONFIG}"));
    }
    if let Ok(filter) = std::env::var("RUST_LOG") {
        spec.env.push(format!("RUST_LOG={filter}"));
    }
    args.extend(["inside-build".to_owned(), "--input".to_owned(), "path".to_owned()]);
    for (flag, value) in
        [("--cancel-grace", run.cancel_grace), ("--git-timeout", run.git_timeout), ("--exit-timeout", run.exit_timeout)]
    {
        args.extend([flag.to_owned(), value.as_secs_f64().to_string()]);
    }
    if run.dry_run {
        args.push("--dry-run".to_owned());
    }
    if run.results_dir.is_some() {
        // Made here, so that it is the caller's: a caller other than uid 1000 can then remove
        // what the container wrote in it.
        let results = share.join(RESULTS);
        std::fs::create_dir(&results)
            .and_then(|()| set_mode(&results, 0o777))
            .map_err(|e| Refused::Failed(format!("cannot make {}: {e}", results.display())))?;
        args.extend(["--results-dir".to_owned(), format!("{SHARE}/{RESULTS}")]);
    }
    spec.command = args;

    log::info!("running the build in a container of {image} on the engine at {}", engine.host());
    log::debug!("build container {}: reactor {}", spec.name, spec.command.join(" "));
    let stop_within = run.cancel_grace + run.exit_timeout + STOP_MARGIN;
    let ended = engine
        .run_build_container(&spec, &cancel, stop_within, |stream, bytes| {
            use std::io::Write;
            // The container's lines are already formatted (and redacted) by the reactor inside.
            let _ = match stream {
                Stream::Stdout => std::io::stdout().write_all(bytes),
                Stream::Stderr => std::io::stderr().write_all(bytes),
            };
        })
        .await;
    let ended = ended.map_err(|e| Refused::Failed(e.to_string()))?;

    let mut code = match (ended.cancelled, ended.exit_code) {
        (Some(signal), _) => signal.exit_code(),
        (None, Some(code)) => u8::try_from(code).unwrap_or(exit::FAILED),
        (None, None) => exit::FAILED,
    };
    if run.dry_run {
        // A dry run writes no result document and no results, here or inside.
        return Ok(code);
    }
    if let Some(path) = &run.metadata_file {
        let document = share.join(crate::inside::RESULTS_JSON);
        if let Err(e) = std::fs::copy(&document, path) {
            log::error!("cannot copy the build container's result document to --metadata-file {}: {e}", path.display());
            if code == exit::SUCCESS {
                code = exit::RESULT_NOT_WRITTEN;
            }
        }
    }
    if let Some(dir) = &run.results_dir {
        if let Err(e) = copy_results(&share.join(RESULTS), dir) {
            log::error!("cannot copy the build container's results to --results-dir {}: {e}", dir.display());
            if code == exit::SUCCESS {
                code = exit::RESULT_NOT_WRITTEN;
            }
        }
    }
    Ok(code)
}

/// How the build container reaches the caller's engine.
#[derive(Debug, PartialEq)]
enum EngineAccess {
    /// Its unix socket, mounted.
    Socket(PathBuf),
    /// Its TCP URL, with the TLS settings and client certificates the caller uses.
    Tcp { host: String, tls_verify: Option<String>, cert_dir: Option<PathBuf> },
}

/// How a container can reach the engine `endpoint` names: a unix socket is mounted; a
/// `tcp://`/`https://` URL is handed on (the container is on the host's network, so a loopback
/// address works), with `DOCKER_TLS_VERIFY` and the directory of the client certificates the
/// caller uses (`DOCKER_CERT_PATH`, `~/.docker` or a context's store). Anything else is refused.
fn engine_access(endpoint: &Endpoint) -> Result<EngineAccess, String> {
    let url = endpoint.url.as_str();
    if let Some(socket) = url.strip_prefix("unix://") {
        return Ok(EngineAccess::Socket(PathBuf::from(socket)));
    }
    if !["tcp://", "http://", "https://"].iter().any(|scheme| url.starts_with(scheme)) {
        return Err(format!(
            "--method hostdocker hands the engine to the build container by its unix socket or a tcp:// URL, and \
             the engine at {} is reached otherwise: run the build here (the default --method here)",
            endpoint.shown_url()
        ));
    }
    let cert_dir = endpoint.tls.as_ref().map(|tls| tls.dir.clone());
    let tls_verify = cert_dir.as_ref().map(|_| "1".to_owned());
    Ok(EngineAccess::Tcp { host: url.to_owned(), tls_verify, cert_dir })
}

/// The local directory a path source, or a git source given as a local path, comes from.
fn local_source(request: &BuildRequest) -> Option<PathBuf> {
    let uri = &request.source.uri;
    let local = match request.source.provider {
        Provider::Path => true,
        Provider::Git => uri.starts_with("file://") || !(uri.contains("://") || looks_like_scp(uri)),
    };
    if !local {
        return None;
    }
    let path = Path::new(uri.strip_prefix("file://").unwrap_or(uri));
    Some(if path.is_absolute() { path.to_path_buf() } else { request.base_dir.join(path) })
}

/// git's scp-like syntax, `user@host:path` or `host:path`.
fn looks_like_scp(uri: &str) -> bool {
    match uri.split_once(':') {
        Some((host, _)) => !host.is_empty() && !host.contains('/'),
        None => false,
    }
}

/// Makes the build.json's source name `uri` (the mount point of the local source).
fn point_source_at(value: &mut Value, uri: &str) {
    if let Some(source) = value.get_mut("source").and_then(Value::as_object_mut) {
        source.insert("uri".to_owned(), Value::String(uri.to_owned()));
    } else if let Some(object) = value.as_object_mut() {
        object.insert("git_url".to_owned(), Value::String(uri.to_owned()));
    }
}

/// The caller's Docker config directory (registry credentials), when it has one.
fn docker_config_dir() -> Option<PathBuf> {
    let dir = crate::credentials::docker_config_dir(std::env::var_os("DOCKER_CONFIG"), std::env::var_os("HOME"))?;
    dir.join("config.json").is_file().then_some(dir)
}

fn copy_results(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for name in [crate::results_dir::IMAGE_URL, crate::results_dir::IMAGE_DIGEST, crate::results_dir::IMAGES] {
        std::fs::copy(from.join(name), to.join(name))?;
    }
    Ok(())
}

/// Copies the TLS files of `from` into `to`, readable by the container's user: the caller's
/// `key.pem` is usually theirs alone (0600), and the container runs as another uid. `to` sits in
/// the caller's own temp directory (0700), so no other user of this machine can reach the copies.
fn copy_tls_files(from: &Path, to: &Path) -> Result<PathBuf, String> {
    let failed = |path: &Path, e: std::io::Error| format!("cannot copy the engine's TLS file {}: {e}", path.display());
    std::fs::create_dir(to).and_then(|()| set_mode(to, 0o755)).map_err(|e| failed(to, e))?;
    for name in ["ca.pem", "cert.pem", "key.pem"] {
        let source = from.join(name);
        if !source.is_file() {
            continue;
        }
        let copy = to.join(name);
        std::fs::copy(&source, &copy).and_then(|_| set_mode(&copy, 0o644)).map_err(|e| failed(&source, e))?;
    }
    Ok(to.to_path_buf())
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// The temporary directory's random part, to tell concurrent build containers apart.
fn random_suffix(dir: &Path) -> String {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.trim_start_matches("reactor-hostdocker-").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::endpoint::{ChosenBy, TlsFiles};
    use serde_json::json;

    #[test]
    fn either_generation_of_the_source_is_pointed_at_the_mount() {
        let mut new = json!({"image": "a", "source": {"provider": "path", "uri": "../x"}});
        point_source_at(&mut new, SOURCE);
        assert_eq!(new["source"]["uri"], SOURCE);
        let mut old = json!({"image": "a", "git_url": "../x"});
        point_source_at(&mut old, SOURCE);
        assert_eq!(old["git_url"], SOURCE);
    }

    #[test]
    fn a_unix_engine_is_mounted_a_tcp_one_handed_on_with_its_certificates_and_ssh_refused() {
        let endpoint = |url: &str, tls: Option<&Path>| Endpoint {
            url: url.to_owned(),
            tls: tls.map(|dir| TlsFiles { dir: dir.to_path_buf(), from: "DOCKER_CERT_PATH".into() }),
            chosen_by: ChosenBy::DockerHost,
        };
        assert_eq!(
            engine_access(&endpoint("unix:///run/d.sock", None)),
            Ok(EngineAccess::Socket(PathBuf::from("/run/d.sock")))
        );
        assert_eq!(
            engine_access(&endpoint("tcp://127.0.0.1:2375", None)),
            Ok(EngineAccess::Tcp { host: "tcp://127.0.0.1:2375".into(), tls_verify: None, cert_dir: None })
        );
        let certs = Path::new("/etc/reactor/certs");
        assert_eq!(
            engine_access(&endpoint("tcp://127.0.0.1:2376", Some(certs))),
            Ok(EngineAccess::Tcp {
                host: "tcp://127.0.0.1:2376".into(),
                tls_verify: Some("1".into()),
                cert_dir: Some(certs.to_path_buf())
            })
        );
        let err = engine_access(&endpoint("ssh://root:pw@127.0.0.1", None)).expect_err("refused");
        assert!(err.contains("ssh://root:***@127.0.0.1") || err.contains("ssh://***@127.0.0.1"), "{err}");
        assert!(err.contains("--method here") && !err.contains("pw@"), "{err}");
    }

    #[test]
    fn scp_like_and_url_git_sources_are_not_local() {
        assert!(looks_like_scp("git@example.com:app.git"));
        assert!(!looks_like_scp("../repo"));
        assert!(!looks_like_scp("/srv/repo"));
    }
}
