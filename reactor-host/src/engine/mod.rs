//! The Docker engine, reached through bollard: the only module that imports it.
//!
//! Callers speak reactor's types (paths, image names, maps); bollard's option builders and
//! models stay in here, and its errors come out as [`Error`], worded for the person running the
//! build.

mod build;
pub mod build_container;
mod container;
mod context;
pub mod endpoint;
mod image;
mod registry;
pub mod ssh;

use std::time::Duration;

use bollard::Docker;
use reactor_plugin_api::error_chain;
use serde::Serialize;

use endpoint::{check_pem, Endpoint, PemKind, Scheme};

pub use build::{floor_char_boundary, BuildSpec, MAX_LINE_BYTES};
pub use container::Stopped;
pub use context::special_file;
pub use image::{registry_of, split_tag, LayerProgress};

/// A connection to the engine.
#[derive(Clone, Debug)]
pub struct Engine {
    docker: Docker,
    /// The same connection with no practical timeout: the engine answers a build only after the
    /// whole context is uploaded, and bollard's default 2 minutes would cut off a large one.
    build_docker: Docker,
    /// The engine's URL for messages, userinfo redacted.
    host: String,
    /// What the engine said about itself, for the log and the result document.
    info: EngineInfo,
}

/// The engine a build used, as the result document names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EngineInfo {
    /// The URL, with any userinfo redacted.
    pub url: String,
    /// The engine's version (`Version` of `docker version`); null when it was not reached.
    pub server_version: Option<String>,
    /// The API version negotiated: the lower of the engine's and bollard's.
    pub api_version: Option<String>,
    /// Whether the connection used TLS.
    pub tls: bool,
}

impl EngineInfo {
    /// What is known before connecting.
    pub fn of(endpoint: &Endpoint) -> EngineInfo {
        EngineInfo { url: endpoint.shown_url(), tls: endpoint.tls.is_some(), ..Default::default() }
    }
}

/// How long the first request may take to be answered: an engine behind a dropped route would
/// otherwise hold the build for bollard's two minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// bollard's request timeout, in seconds, for everything but the build.
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// What went wrong talking to the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot reach the Docker engine at {host}: {reason} (is dockerd running there? --host, --context, DOCKER_HOST \
         or DOCKER_CONTEXT choose another engine)"
    )]
    Unreachable { host: String, reason: String },
    #[error("TLS with the Docker engine at {host} failed: {problem}; {hint}")]
    Tls { host: String, problem: String, hint: String },
    #[error("the Docker engine at {host} {problem}; {hint}")]
    TooOld { host: String, problem: String, hint: String },
    #[error("Docker engine {host}: {reason}")]
    Unsupported { host: String, reason: String },
    #[error(transparent)]
    Endpoint(#[from] endpoint::EndpointError),
    #[error(
        "the connection to the Docker engine at {host} was lost during {during}: {reason} (did dockerd stop or \
         restart? `docker info` tells; run the build again once it answers){}",
        left_container.as_deref().map(|id| format!("; the engine may keep the interrupted step's container {id}: \
         `docker rm -f {id}` removes it")).unwrap_or_default()
    )]
    ConnectionLost { host: String, during: &'static str, reason: String, left_container: Option<String> },
    #[error("the Docker engine refused: {message} (HTTP {status}); fix what it names, or read the engine's log")]
    Daemon { status: u16, message: String },
    #[error("cannot send the build context from {path}: {reason}; check that every file under it is readable")]
    Context { path: String, reason: String },
    #[error("{file}: line {line}: bad pattern `{pattern}`: {reason}; correct that line, or remove it")]
    BadDockerignore { file: String, line: usize, pattern: String, reason: &'static str },
    #[error("{operation} failed: {message}; run the build again, and if it fails again read the engine's log")]
    Stream { operation: &'static str, message: String },
    #[error(
        "{operation} {image}: the registry {registry} refused the credentials given for it ({message}); check the \
         user and password for {registry} (the secret in the plugin's args, or `docker login {registry}`)"
    )]
    CredentialsRefused { operation: &'static str, image: String, registry: String, message: String },
    #[error(
        "{operation} {image}: the registry {registry} wants a login and no credentials were found for it ({message}); \
         log in with `docker login {registry}`, or give the plugin a secret for it"
    )]
    NoCredentials { operation: &'static str, image: String, registry: String, message: String },
    #[error(
        "{operation} {image}: the registry {registry} is unreachable or failing; gave up after {attempts} attempts: \
         {message}; check that {registry} is up, then run the build again"
    )]
    RegistryUnavailable { operation: &'static str, image: String, registry: String, attempts: usize, message: String },
    #[error("{operation} {image}: no such image ({message}); check the image's name and tag")]
    ImageNotFound { operation: &'static str, image: String, message: String },
    #[error("Docker engine: {0}; check that it answers (`docker info`), then run the build again")]
    Other(String),
    /// An `ssh://` engine's connection failed; ssh's own words, worded.
    #[error(transparent)]
    Ssh(#[from] ssh::Error),
}

impl Error {
    /// The context's `.dockerignore` in `dir` cannot be used: a bad line is named with the file.
    pub(crate) fn from_dockerignore(dir: &std::path::Path, err: dockerignore::PatternError) -> Error {
        match err {
            dockerignore::PatternError::BadPattern { line, pattern, reason } => {
                Error::BadDockerignore { file: dir.join(".dockerignore").display().to_string(), line, pattern, reason }
            }
            io @ dockerignore::PatternError::Io { .. } => {
                Error::Context { path: dir.display().to_string(), reason: io.to_string() }
            }
        }
    }

    /// Turns a bollard error into ours, keeping the underlying cause that bollard's Display hides.
    fn from_bollard(err: bollard::errors::Error, host: &str) -> Error {
        use bollard::errors::Error as B;
        if let Some(failure) = ssh::failure_in(&err) {
            return Error::Ssh(failure);
        }
        if let Some(classified) = classify(&error_chain(&err), host) {
            return classified;
        }
        match err {
            B::DockerResponseServerError { status_code, message } => Error::Daemon { status: status_code, message },
            B::SocketNotFoundError(path) => {
                Error::Unreachable { host: host.to_owned(), reason: format!("no socket at {path}") }
            }
            B::HyperLegacyError { .. } | B::IOError { .. } | B::RequestTimeoutError => {
                Error::Unreachable { host: host.to_owned(), reason: error_chain(&err) }
            }
            other => Error::Other(error_chain(&other)),
        }
    }
}

impl Engine {
    /// Connects to the engine `endpoint` names and checks that it answers: its version is
    /// negotiated.
    pub async fn connect(endpoint: &Endpoint) -> Result<Engine, Error> {
        let host = endpoint.shown_url();
        let version = bollard::API_DEFAULT_VERSION;
        let url = endpoint.url.as_str();
        // The one place a URL is dispatched on its scheme.
        let docker = match Scheme::of(url)? {
            Scheme::Unix => Docker::connect_with_unix(url, REQUEST_TIMEOUT_SECS, version),
            Scheme::Tcp if endpoint.tls.is_none() => Docker::connect_with_http(url, REQUEST_TIMEOUT_SECS, version),
            Scheme::Tcp | Scheme::Https => {
                let tls = endpoint.tls.as_ref().ok_or_else(|| Error::Unsupported {
                    host: host.clone(),
                    reason: "https:// needs TLS files: set DOCKER_CERT_PATH to the directory holding ca.pem (and \
                             cert.pem, key.pem), or use a context with TLS files"
                        .to_owned(),
                })?;
                check_tls_files(tls, &host)?;
                install_crypto_provider();
                // bollard wants a tcp:// or https:// address: an http:// one with TLS files is
                // TLS too, as DOCKER_TLS_VERIFY says.
                let url = url.replacen("http://", "tcp://", 1);
                Docker::connect_with_ssl(&url, &tls.key(), &tls.cert(), &tls.ca(), REQUEST_TIMEOUT_SECS, version)
            }
            // The system ssh running `docker system dial-stdio` (engine/ssh.rs).
            Scheme::Ssh => Ok(ssh::connect(url)?),
        }
        .map_err(|e| Error::from_bollard(e, &host))?;
        let answered = async {
            // Negotiating asks the engine for its version: this is also the reachability check.
            let docker = docker.negotiate_version().await?;
            let version = docker.version().await?;
            Ok::<_, bollard::errors::Error>((docker, version))
        };
        let (docker, version) = match tokio::time::timeout(CONNECT_TIMEOUT, answered).await {
            Ok(answer) => answer.map_err(|e| Error::from_bollard(e, &host))?,
            Err(_) => {
                return Err(Error::Unreachable {
                    host,
                    reason: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                })
            }
        };
        let api = docker.client_version();
        let info = EngineInfo {
            url: host.clone(),
            server_version: version.version,
            api_version: Some(format!("{}.{}", api.major_version, api.minor_version)),
            tls: endpoint.tls.is_some(),
        };
        let build_docker = docker.clone().with_timeout(Duration::from_secs(7 * 24 * 3600));
        log::debug!("connected to the Docker engine at {host}");
        Ok(Engine { docker, build_docker, host, info })
    }

    /// What the engine said about itself when connected.
    pub fn info(&self) -> &EngineInfo {
        &self.info
    }

    /// The engine in one line, for the log.
    pub fn describe(&self) -> String {
        format!(
            "Docker engine {} (API {}) at {}{}",
            self.info.server_version.as_deref().unwrap_or("?"),
            self.info.api_version.as_deref().unwrap_or("?"),
            self.host,
            if self.info.tls { " over TLS" } else { "" }
        )
    }

    fn error(&self, err: bollard::errors::Error) -> Error {
        Error::from_bollard(err, &self.host)
    }

    /// The engine hung up in the middle of `during` (it was killed or restarted): said as such,
    /// since "cannot reach" would suggest it was never there.
    fn connection_lost(
        &self,
        during: &'static str,
        err: &bollard::errors::Error,
        left_container: Option<String>,
    ) -> Error {
        Error::ConnectionLost { host: self.host.clone(), during, reason: error_chain(err), left_container }
    }
}

/// Checks the TLS files before bollard reads them: it reads the client pair only during the
/// handshake and, when that fails, silently sends no certificate.
fn check_tls_files(tls: &endpoint::TlsFiles, host: &str) -> Result<(), Error> {
    let bad = |problem: String, hint: String| Error::Tls { host: host.to_owned(), problem, hint };
    let dir = tls.dir.display();
    let from = &tls.from;
    if !tls.ca().is_file() {
        return Err(bad(
            format!("there is no ca.pem in {dir} (from {from})"),
            "put the CA certificate that signed the engine's certificate there, or point DOCKER_CERT_PATH at the \
             directory holding ca.pem, cert.pem and key.pem"
                .to_owned(),
        ));
    }
    check_pem(&tls.ca(), PemKind::Certificate).map_err(|e| bad(e, format!("fix the files of {from}")))?;
    match (tls.cert().is_file(), tls.key().is_file()) {
        (true, true) => {
            check_pem(&tls.cert(), PemKind::Certificate).map_err(|e| bad(e, format!("fix the files of {from}")))?;
            check_pem(&tls.key(), PemKind::PrivateKey).map_err(|e| bad(e, format!("fix the files of {from}")))?;
        }
        // No client certificate at all: the engine may not ask for one; if it does, its
        // refusal is worded below.
        (false, false) => log::debug!("no client certificate in {dir}: connecting without one"),
        (has_cert, _) => {
            let (have, missing) = if has_cert { ("cert.pem", "key.pem") } else { ("key.pem", "cert.pem") };
            return Err(bad(
                format!("{dir} (from {from}) has {have} but no {missing}"),
                "a client certificate needs both files".to_owned(),
            ));
        }
    }
    Ok(())
}

/// rustls needs one process-wide crypto provider; reactor links aws-lc-rs (also reqwest's).
fn install_crypto_provider() {
    // An error means one is installed already, which is as good.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Words the errors whose cause is only visible deep in the chain (TLS, refused connections,
/// API versions) for the person running the build; `None` leaves the error as it is.
fn classify(chain: &str, host: &str) -> Option<Error> {
    let lower = chain.to_lowercase();
    let tls = |problem: &str, hint: &str| {
        Some(Error::Tls { host: host.to_owned(), problem: problem.to_owned(), hint: hint.to_owned() })
    };
    let unreachable = |reason: &str| Some(Error::Unreachable { host: host.to_owned(), reason: reason.to_owned() });
    if lower.contains("expired") && lower.contains("certificate") {
        return tls(
            "the engine's certificate has expired",
            "renew the engine's server certificate (and check both clocks)",
        );
    }
    if lower.contains("notvalidforname") || lower.contains("not valid for name") {
        return tls(
            "the engine's certificate is not valid for this address",
            "name the engine by an address its certificate lists (its subjectAltName), or reissue it",
        );
    }
    if lower.contains("unknownissuer") || lower.contains("unknown issuer") {
        return tls(
            "the engine's certificate is not signed by the CA in ca.pem",
            "put the CA that signed the engine's certificate in ca.pem",
        );
    }
    if lower.contains("badcertificate")
        || lower.contains("certificaterequired")
        || lower.contains("unknownca")
        || lower.contains("bad certificate")
    {
        return tls(
            "the engine refused reactor's client certificate (missing, or not signed by a CA it trusts)",
            "give cert.pem and key.pem signed by the CA the engine's --tlscacert names",
        );
    }
    if lower.contains("invalidcontenttype") || lower.contains("corrupt message") {
        return tls(
            "the engine does not speak TLS on that port",
            "use tcp:// without DOCKER_TLS_VERIFY for a plain engine, or the engine's TLS port",
        );
    }
    if lower.contains("client sent an http request to an https server") {
        return tls(
            "the engine speaks TLS on that port and reactor spoke plain HTTP",
            "set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH (or use https://, or a context with TLS files)",
        );
    }
    if let Some(at) = lower.find("maximum supported api version is ") {
        let max = chain[at + "maximum supported api version is ".len()..].split_whitespace().next().unwrap_or("?");
        return Some(Error::TooOld {
            host: host.to_owned(),
            problem: format!("speaks Docker API {max} at most, older than this request needs"),
            hint: "upgrade the engine, or build on a newer one (--host, --context)".to_owned(),
        });
    }
    if let Some(at) = lower.find("minimum supported api version is ") {
        let min = chain[at + "minimum supported api version is ".len()..].split_whitespace().next().unwrap_or("?");
        return Some(Error::TooOld {
            host: host.to_owned(),
            problem: format!("no longer speaks the API version asked for: its oldest is {min}"),
            hint: "build on an engine that still speaks it (--host, --context), or use an older reactor".to_owned(),
        });
    }
    // dockerd's answer to a route it does not have: a request newer than the engine.
    if lower.contains("status code 404") && lower.contains("page not found") {
        return Some(Error::TooOld {
            host: host.to_owned(),
            problem: "does not know a request reactor sent (page not found): its API is older than reactor needs"
                .to_owned(),
            hint: "upgrade the engine, or build on a newer one (--host, --context)".to_owned(),
        });
    }
    if lower.contains("connection refused") {
        return unreachable("connection refused");
    }
    if lower.contains("no route to host") || lower.contains("network is unreachable") {
        return unreachable("no route to host");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classified(chain: &str) -> String {
        classify(chain, "tcp://h:2376").map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn tls_and_version_errors_are_worded() {
        assert!(classified("client error (Connect) <- invalid peer certificate: certificate expired: verification time 1, but certificate is not valid after 0").contains("has expired"));
        assert!(classified("invalid peer certificate: NotValidForName").contains("not valid for this address"));
        assert!(classified("invalid peer certificate: UnknownIssuer").contains("not signed by the CA"));
        assert!(classified("received fatal alert: BadCertificate").contains("refused reactor's client certificate"));
        assert!(classified("received fatal alert: CertificateRequired").contains("client certificate"));
        assert!(classified("received corrupt message of type InvalidContentType").contains("does not speak TLS"));
        assert!(classified("Docker responded with status code 400: Client sent an HTTP request to an HTTPS server.")
            .contains("set DOCKER_TLS_VERIFY=1"));
        let too_old = classified("Docker responded with status code 400: client version 1.99 is too new. Maximum supported API version is 1.41");
        assert!(too_old.starts_with("the Docker engine at tcp://h:2376 speaks Docker API 1.41 at most"), "{too_old}");
        assert!(
            classified("Docker responded with status code 404: page not found").contains("older than reactor needs")
        );
        assert!(classified("Docker responded with status code 404: No such image: x").is_empty());
        assert!(classified("error trying to connect: tcp connect error: Connection refused (os error 111)")
            .starts_with("cannot reach the Docker engine at tcp://h:2376: connection refused"));
        assert_eq!(classified("something else"), "");
    }
}
