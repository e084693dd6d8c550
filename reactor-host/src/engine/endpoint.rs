//! Which engine a build talks to, chosen exactly as the docker CLI chooses: `-H/--host` or
//! `--context` on the command line, then `DOCKER_HOST`, then `DOCKER_CONTEXT`, then
//! `currentContext` in `config.json` (in `DOCKER_CONFIG`, else `~/.docker`), then the default
//! socket. A named context is read from the CLI's context store
//! (`contexts/meta/<sha256 of the name>/meta.json`, TLS files in `contexts/tls/<sha256>/docker/`).
//!
//! Only files and variables are read here, nothing is connected: the dry run names the engine
//! with this, and one place decides the engine, so that a pool of engines can decide it later.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The docker CLI's default engine.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// What the command line says about the engine (`-H/--host`, `--context`).
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub host: Option<String>,
    pub context: Option<String>,
}

/// The engine chosen, and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// As given (a URL with userinfo is shown through [`Endpoint::shown_url`]).
    pub url: String,
    /// Mutual TLS files, when the connection uses TLS.
    pub tls: Option<TlsFiles>,
    /// What chose this engine, for the log and the messages.
    pub chosen_by: ChosenBy,
}

/// The files of a TLS connection, in docker's layout (`ca.pem`, `cert.pem`, `key.pem`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The directory they come from (`DOCKER_CERT_PATH`, the config dir or a context's store).
    pub dir: PathBuf,
    /// Where `dir` was named, for messages ("DOCKER_CERT_PATH", "context 'remote'").
    pub from: String,
}

impl TlsFiles {
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }
    pub fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }
}

/// What chose the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChosenBy {
    HostFlag,
    ContextFlag(String),
    DockerHost,
    DockerContext(String),
    CurrentContext(String),
    Default,
}

impl fmt::Display for ChosenBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChosenBy::HostFlag => write!(f, "--host"),
            ChosenBy::ContextFlag(name) => write!(f, "--context {name}"),
            ChosenBy::DockerHost => write!(f, "DOCKER_HOST"),
            ChosenBy::DockerContext(name) => write!(f, "DOCKER_CONTEXT={name}"),
            ChosenBy::CurrentContext(name) => write!(f, "currentContext {name} in config.json"),
            ChosenBy::Default => write!(f, "the default"),
        }
    }
}

/// The schemes reactor speaks; the one place a URL is dispatched on its scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Unix,
    /// `tcp://` or `http://`: plain, or TLS when the endpoint has TLS files.
    Tcp,
    Https,
    Ssh,
}

impl Scheme {
    /// The scheme of `url`, or what is wrong with it.
    pub fn of(url: &str) -> Result<Scheme, EndpointError> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| EndpointError::BadUrl {
            url: redact(url),
            reason: "it has no scheme (unix://, tcp://, https:// or ssh://)".to_owned(),
        })?;
        if rest.is_empty() {
            return Err(EndpointError::BadUrl { url: redact(url), reason: "it names no address".to_owned() });
        }
        match scheme {
            "unix" => Ok(Scheme::Unix),
            "tcp" | "http" => Ok(Scheme::Tcp),
            "https" => Ok(Scheme::Https),
            "ssh" => Ok(Scheme::Ssh),
            other => Err(EndpointError::BadUrl {
                url: redact(url),
                reason: format!("reactor does not speak {other}:// (use unix://, tcp://, https:// or ssh://)"),
            }),
        }
    }
}

/// Why no engine could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("--host and --context both choose the engine: give one of them")]
    Conflict,
    #[error(
        "engine URL {url}: {reason}; give unix:///PATH, tcp://HOST:PORT, https://HOST:PORT or ssh://USER@HOST[:PORT] \
         (--host, DOCKER_HOST)"
    )]
    BadUrl { url: String, reason: String },
    #[error("there is no docker context '{name}' (chosen by {chosen_by}) in {store}; known contexts: {known} (`docker context ls` lists them)")]
    UnknownContext { name: String, chosen_by: String, store: String, known: String },
    #[error(
        "docker context '{name}': cannot read {path}: {reason}; create it again (`docker context rm {name}`, then \
         `docker context create {name} …`), or choose another engine with --context or --host"
    )]
    BadContext { name: String, path: String, reason: String },
    #[error(
        "cannot read the docker CLI's {path}: {reason}; fix or remove that file, or set DOCKER_CONFIG to another \
         directory"
    )]
    BadConfig { path: String, reason: String },
}

/// Where variables come from: the process environment, or a test's map.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A non-empty variable: the docker CLI treats an empty one as unset.
fn nonempty(env: &dyn Env, name: &str) -> Option<String> {
    env.var(name).filter(|v| !v.is_empty())
}

/// The docker CLI's configuration directory: `DOCKER_CONFIG`, else `~/.docker`.
fn config_dir(env: &dyn Env) -> Option<PathBuf> {
    crate::credentials::docker_config_dir(env.var("DOCKER_CONFIG").map(Into::into), env.var("HOME").map(Into::into))
}

/// Chooses the engine from the command line, the environment and the docker CLI's files.
pub fn resolve(selection: &Selection, env: &dyn Env) -> Result<Endpoint, EndpointError> {
    let config = config_dir(env);
    let (context, chosen_by) = match (&selection.host, &selection.context) {
        (Some(_), Some(_)) => return Err(EndpointError::Conflict),
        (Some(host), None) => return default_context(host.clone(), ChosenBy::HostFlag, env, config.as_deref()),
        (None, Some(name)) => (name.clone(), ChosenBy::ContextFlag(name.clone())),
        (None, None) => {
            if let Some(host) = nonempty(env, "DOCKER_HOST") {
                return default_context(host, ChosenBy::DockerHost, env, config.as_deref());
            }
            if let Some(name) = nonempty(env, "DOCKER_CONTEXT") {
                (name.clone(), ChosenBy::DockerContext(name))
            } else if let Some(name) = config.as_deref().map(current_context).transpose()?.flatten() {
                (name.clone(), ChosenBy::CurrentContext(name))
            } else {
                return default_context(DEFAULT_HOST.to_owned(), ChosenBy::Default, env, config.as_deref());
            }
        }
    };
    if context == "default" {
        // The default context is the socket or DOCKER_HOST, as when no context is named.
        let host = nonempty(env, "DOCKER_HOST").unwrap_or_else(|| DEFAULT_HOST.to_owned());
        return default_context(host, chosen_by, env, config.as_deref());
    }
    named_context(&context, chosen_by, config.as_deref())
}

/// `currentContext` in `config.json`, if the file says one.
fn current_context(config: &Path) -> Result<Option<String>, EndpointError> {
    let path = config.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EndpointError::BadConfig { path: path.display().to_string(), reason: e.to_string() }),
    };
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| EndpointError::BadConfig { path: path.display().to_string(), reason: e.to_string() })?;
    Ok(value.get("currentContext").and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_owned))
}

/// The engine of no context, or of `default`: `host`, with TLS when `DOCKER_TLS_VERIFY` is set
/// or the scheme is `https://`, its files from `DOCKER_CERT_PATH`, else the config dir.
fn default_context(
    host: String,
    chosen_by: ChosenBy,
    env: &dyn Env,
    config: Option<&Path>,
) -> Result<Endpoint, EndpointError> {
    let scheme = Scheme::of(&host)?;
    let wants_tls = scheme == Scheme::Https || (scheme == Scheme::Tcp && nonempty(env, "DOCKER_TLS_VERIFY").is_some());
    let tls = if wants_tls {
        let (dir, from) = match nonempty(env, "DOCKER_CERT_PATH") {
            Some(dir) => (PathBuf::from(dir), "DOCKER_CERT_PATH".to_owned()),
            None => {
                let dir = config.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".docker"));
                (dir, "the docker config directory (DOCKER_CERT_PATH is not set)".to_owned())
            }
        };
        Some(TlsFiles { dir, from })
    } else {
        None
    };
    Ok(Endpoint { url: host, tls, chosen_by })
}

/// The directory name the docker CLI gives context `name` in its store.
pub fn context_dir_name(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A named context from the store in `config`.
fn named_context(name: &str, chosen_by: ChosenBy, config: Option<&Path>) -> Result<Endpoint, EndpointError> {
    let store = config.map(|c| c.join("contexts")).unwrap_or_else(|| PathBuf::from(".docker/contexts"));
    let meta = store.join("meta").join(context_dir_name(name)).join("meta.json");
    let text = match std::fs::read_to_string(&meta) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let known = known_contexts(&store);
            return Err(EndpointError::UnknownContext {
                name: name.to_owned(),
                chosen_by: chosen_by.to_string(),
                store: store.display().to_string(),
                known: if known.is_empty() { "default".to_owned() } else { format!("default, {}", known.join(", ")) },
            });
        }
        Err(e) => {
            return Err(EndpointError::BadContext {
                name: name.to_owned(),
                path: meta.display().to_string(),
                reason: e.to_string(),
            })
        }
    };
    let bad =
        |reason: String| EndpointError::BadContext { name: name.to_owned(), path: meta.display().to_string(), reason };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let docker = value.pointer("/Endpoints/docker").ok_or_else(|| bad("it has no Endpoints.docker".to_owned()))?;
    let host = docker
        .get("Host")
        .and_then(|h| h.as_str())
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("its Endpoints.docker has no Host".to_owned()))?
        .to_owned();
    let scheme = Scheme::of(&host)?;
    if docker.get("SkipTLSVerify").and_then(|v| v.as_bool()) == Some(true) {
        return Err(bad(
            "it sets SkipTLSVerify, which reactor refuses: put the engine's CA (ca.pem) in the context instead \
             (`docker context update --docker \"host=…,ca=…,cert=…,key=…\"`)"
                .to_owned(),
        ));
    }
    let tls_dir = store.join("tls").join(context_dir_name(name)).join("docker");
    let has_tls_files = ["ca.pem", "cert.pem", "key.pem"].iter().any(|f| tls_dir.join(f).is_file());
    let tls = (scheme == Scheme::Https || (scheme == Scheme::Tcp && has_tls_files))
        .then(|| TlsFiles { dir: tls_dir, from: format!("docker context '{name}'") });
    Ok(Endpoint { url: host, tls, chosen_by })
}

/// The names of the contexts in `store`, sorted.
fn known_contexts(store: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(store.join("meta")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("meta.json")).ok())
        .filter_map(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .filter_map(|v| v.get("Name").and_then(|n| n.as_str()).map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// `url` with any userinfo (`user:password@`) replaced by `***@`, for logs and documents.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

impl Endpoint {
    /// The URL for logs, documents and messages: userinfo redacted.
    pub fn shown_url(&self) -> String {
        redact(&self.url)
    }

    /// One line for the dry-run plan and the log.
    pub fn describe(&self) -> String {
        let tls = match &self.tls {
            Some(tls) => format!("TLS, files from {} ({})", tls.from, tls.dir.display()),
            None => "no TLS".to_owned(),
        };
        format!("{} ({tls}; chosen by {})", self.shown_url(), self.chosen_by)
    }
}

/// What is wrong with a PEM file reactor is about to hand to the TLS library, which would only
/// say "connection was not ready" or send no client certificate at all.
pub fn check_pem(path: &Path, want: PemKind) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if text.contains("ENCRYPTED") {
        return Err(format!(
            "{} is protected by a passphrase, which reactor does not ask for: give an unencrypted key",
            path.display()
        ));
    }
    let mut found = false;
    let mut rest = text.as_str();
    while let Some(begin) = rest.find("-----BEGIN ") {
        let after = &rest[begin + 11..];
        let label_end =
            after.find("-----").ok_or_else(|| format!("{} is not PEM: a BEGIN line is cut", path.display()))?;
        let label = &after[..label_end];
        let end_marker = format!("-----END {label}-----");
        let body_start = label_end + 5;
        let end = after.find(&end_marker).ok_or_else(|| format!("{} is not PEM: no {end_marker}", path.display()))?;
        let body: String = after[body_start..end].chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| format!("{} is not PEM: the {label} block is not base64 ({e})", path.display()))?;
        found |= match want {
            PemKind::Certificate => label == "CERTIFICATE",
            PemKind::PrivateKey => label.ends_with("PRIVATE KEY"),
        };
        rest = &after[end + end_marker.len()..];
    }
    if found {
        Ok(())
    } else {
        let what = match want {
            PemKind::Certificate => "certificate (BEGIN CERTIFICATE)",
            PemKind::PrivateKey => "private key (BEGIN PRIVATE KEY)",
        };
        Err(format!("{} holds no {what}", path.display()))
    }
}

/// What a PEM file should hold.
#[derive(Clone, Copy, Debug)]
pub enum PemKind {
    Certificate,
    PrivateKey,
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct MapEnv(HashMap<&'static str, String>);

    impl Env for MapEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    fn env(pairs: &[(&'static str, &str)]) -> MapEnv {
        MapEnv(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect())
    }

    fn write_context(config: &Path, name: &str, host: &str, tls: bool) {
        let dir = config.join("contexts/meta").join(context_dir_name(name));
        std::fs::create_dir_all(&dir).expect("test");
        let meta = serde_json::json!({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}}});
        std::fs::write(dir.join("meta.json"), meta.to_string()).expect("test");
        if tls {
            let tls = config.join("contexts/tls").join(context_dir_name(name)).join("docker");
            std::fs::create_dir_all(&tls).expect("test");
            std::fs::write(tls.join("ca.pem"), "x").expect("test");
        }
    }

    #[test]
    fn the_store_names_a_context_by_the_sha256_of_its_name() {
        // As `docker context create remote` names its directory (sha256sum of the name).
        assert_eq!(context_dir_name("remote"), "b71199ebd070b36beab7317920c2c2f1d777df8d05e5527d8458fda57cb17a7a");
    }

    #[test]
    fn with_nothing_set_the_default_socket() {
        let home = tempfile::tempdir().expect("test");
        let e = resolve(&Selection::default(), &env(&[("HOME", home.path().to_str().expect("test"))])).expect("test");
        assert_eq!(e, Endpoint { url: DEFAULT_HOST.to_owned(), tls: None, chosen_by: ChosenBy::Default });
    }

    #[test]
    fn flag_beats_env_beats_context_beats_config() {
        let config = tempfile::tempdir().expect("test");
        write_context(config.path(), "remote", "tcp://10.0.0.9:2376", true);
        write_context(config.path(), "other", "unix:///other.sock", false);
        std::fs::write(config.path().join("config.json"), r#"{"currentContext": "other"}"#).expect("test");
        let dc = config.path().to_str().expect("test");
        let all = env(&[("DOCKER_CONFIG", dc), ("DOCKER_HOST", "tcp://1.2.3.4:2375"), ("DOCKER_CONTEXT", "remote")]);
        let flag = Selection { host: Some("unix:///flag.sock".into()), context: None };
        assert_eq!(resolve(&flag, &all).expect("test").chosen_by, ChosenBy::HostFlag);
        let ctx_flag = Selection { host: None, context: Some("other".into()) };
        assert_eq!(resolve(&ctx_flag, &all).expect("test").url, "unix:///other.sock");
        let e = resolve(&Selection::default(), &all).expect("test");
        assert_eq!((e.url.as_str(), e.chosen_by), ("tcp://1.2.3.4:2375", ChosenBy::DockerHost));
        let e =
            resolve(&Selection::default(), &env(&[("DOCKER_CONFIG", dc), ("DOCKER_CONTEXT", "remote")])).expect("test");
        assert_eq!(e.url, "tcp://10.0.0.9:2376");
        let tls = e.tls.expect("test");
        assert_eq!(tls.dir, config.path().join("contexts/tls").join(context_dir_name("remote")).join("docker"));
        let e = resolve(&Selection::default(), &env(&[("DOCKER_CONFIG", dc)])).expect("test");
        assert_eq!((e.url.as_str(), e.chosen_by), ("unix:///other.sock", ChosenBy::CurrentContext("other".into())));
        assert!(matches!(
            resolve(&Selection { host: Some("unix:///a".into()), context: Some("b".into()) }, &all),
            Err(EndpointError::Conflict)
        ));
    }

    #[test]
    fn the_default_context_follows_docker_host_and_tls_verify() {
        let config = tempfile::tempdir().expect("test");
        let dc = config.path().to_str().expect("test");
        let sel = Selection { host: None, context: Some("default".into()) };
        assert_eq!(resolve(&sel, &env(&[("DOCKER_CONFIG", dc)])).expect("test").url, DEFAULT_HOST);
        let e = resolve(
            &Selection::default(),
            &env(&[
                ("DOCKER_CONFIG", dc),
                ("DOCKER_HOST", "tcp://h:2376"),
                ("DOCKER_TLS_VERIFY", "1"),
                ("DOCKER_CERT_PATH", "/certs"),
            ]),
        )
        .expect("test");
        assert_eq!(e.tls.expect("test").dir, PathBuf::from("/certs"));
        // Empty is unset, as for the CLI.
        let e = resolve(
            &Selection::default(),
            &env(&[("DOCKER_CONFIG", dc), ("DOCKER_HOST", "tcp://h:2375"), ("DOCKER_TLS_VERIFY", "")]),
        )
        .expect("test");
        assert_eq!(e.tls, None);
        // No DOCKER_CERT_PATH: the config directory.
        let e = resolve(&Selection::default(), &env(&[("DOCKER_CONFIG", dc), ("DOCKER_HOST", "https://h:2376")]))
            .expect("test");
        assert_eq!(e.tls.expect("test").dir, config.path());
    }

    #[test]
    fn an_unknown_context_lists_the_known_ones() {
        let config = tempfile::tempdir().expect("test");
        write_context(config.path(), "remote", "tcp://h:2376", false);
        let sel = Selection { host: None, context: Some("nope".into()) };
        let err = resolve(&sel, &env(&[("DOCKER_CONFIG", config.path().to_str().expect("test"))]))
            .expect_err("refused")
            .to_string();
        assert!(err.contains("no docker context 'nope'") && err.contains("known contexts: default, remote"), "{err}");
    }

    #[test]
    fn bad_urls_and_skip_tls_verify_are_refused() {
        assert!(Scheme::of("fd://").is_err());
        assert!(Scheme::of("npipe:////./pipe/docker")
            .expect_err("refused")
            .to_string()
            .contains("does not speak npipe://"));
        assert!(Scheme::of("localhost:2375").is_err());
        assert_eq!(Scheme::of("ssh://me@h:22").expect("test"), Scheme::Ssh);
        let config = tempfile::tempdir().expect("test");
        let dir = config.path().join("contexts/meta").join(context_dir_name("insecure"));
        std::fs::create_dir_all(&dir).expect("test");
        std::fs::write(
            dir.join("meta.json"),
            r#"{"Name":"insecure","Endpoints":{"docker":{"Host":"tcp://h:1","SkipTLSVerify":true}}}"#,
        )
        .expect("test");
        let sel = Selection { host: None, context: Some("insecure".into()) };
        let err = resolve(&sel, &env(&[("DOCKER_CONFIG", config.path().to_str().expect("test"))]))
            .expect_err("refused")
            .to_string();
        assert!(err.contains("SkipTLSVerify"), "{err}");
    }

    #[test]
    fn userinfo_is_redacted() {
        assert_eq!(redact("ssh://me:pw@host:22/x"), "ssh://***@host:22/x");
        assert_eq!(redact("tcp://host:2376"), "tcp://host:2376");
        assert_eq!(redact("unix:///a@b/sock"), "unix:///a@b/sock");
    }

    #[test]
    fn pem_files_are_checked() {
        let dir = tempfile::tempdir().expect("test");
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").expect("test");
        assert!(check_pem(&cert, PemKind::Certificate).is_ok());
        assert!(check_pem(&cert, PemKind::PrivateKey).expect_err("refused").contains("holds no private key"));
        std::fs::write(&cert, "garbage").expect("test");
        assert!(check_pem(&cert, PemKind::Certificate).expect_err("refused").contains("holds no"));
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
            .expect("test");
        assert!(check_pem(&key, PemKind::PrivateKey).expect_err("refused").contains("passphrase"));
        std::fs::write(&key, "-----BEGIN RSA PRIVATE KEY-----\n!!!\n-----END RSA PRIVATE KEY-----\n").expect("test");
        assert!(check_pem(&key, PemKind::PrivateKey).expect_err("refused").contains("not base64"));
        assert!(check_pem(&dir.path().join("none.pem"), PemKind::Certificate)
            .expect_err("refused")
            .contains("cannot read"));
    }
}
