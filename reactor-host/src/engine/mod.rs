//! The Docker engine, reached through bollard: the only module that imports it.
//!
//! Callers speak reactor's types (paths, image names, maps); bollard's option builders and
//! models stay in here, and its errors come out as [`Error`], worded for the person running the
//! build.

mod build;
mod container;
mod context;
mod image;
mod registry;

use std::time::Duration;

use bollard::Docker;
use reactor_plugin_api::error_chain;

pub use build::{floor_char_boundary, BuildSpec, MAX_LINE_BYTES};
pub use container::Stopped;
pub use context::special_file;
pub use image::{registry_of, LayerProgress};

/// A connection to the engine.
#[derive(Clone, Debug)]
pub struct Engine {
    docker: Docker,
    /// The same connection with no practical timeout: the engine answers a build only after the
    /// whole context is uploaded, and bollard's default 2 minutes would cut off a large one.
    build_docker: Docker,
    /// What `DOCKER_HOST` said, or the default socket, for messages.
    host: String,
}

/// What went wrong talking to the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot reach the Docker engine at {host}: {reason} (is dockerd running? DOCKER_HOST selects another engine)"
    )]
    Unreachable { host: String, reason: String },
    #[error(
        "the connection to the Docker engine at {host} was lost during {during}: {reason} (did dockerd stop or \
         restart?){}",
        left_container.as_deref().map(|id| format!("; the engine may keep the interrupted step's container {id}: \
         `docker rm -f {id}` removes it")).unwrap_or_default()
    )]
    ConnectionLost { host: String, during: &'static str, reason: String, left_container: Option<String> },
    #[error("the Docker engine refused: {message} (HTTP {status})")]
    Daemon { status: u16, message: String },
    #[error("cannot send the build context from {path}: {reason}")]
    Context { path: String, reason: String },
    #[error("{operation} failed: {message}")]
    Stream { operation: &'static str, message: String },
    #[error("{operation} {image}: the registry {registry} refused the credentials given for it ({message})")]
    CredentialsRefused { operation: &'static str, image: String, registry: String, message: String },
    #[error(
        "{operation} {image}: the registry {registry} wants a login and no credentials were found for it ({message})"
    )]
    NoCredentials { operation: &'static str, image: String, registry: String, message: String },
    #[error(
        "{operation} {image}: the registry {registry} is unreachable or failing; gave up after {attempts} attempts: {message}"
    )]
    RegistryUnavailable { operation: &'static str, image: String, registry: String, attempts: usize, message: String },
    #[error("{operation} {image}: no such image ({message})")]
    ImageNotFound { operation: &'static str, image: String, message: String },
    #[error("Docker engine: {0}")]
    Other(String),
}

impl Error {
    /// Turns a bollard error into ours, keeping the underlying cause that bollard's Display hides.
    fn from_bollard(err: bollard::errors::Error, host: &str) -> Error {
        use bollard::errors::Error as B;
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
    /// Connects as the docker CLI does (`DOCKER_HOST`, else the default unix socket) and checks
    /// that the engine answers.
    pub async fn connect() -> Result<Engine, Error> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned());
        let docker = Docker::connect_with_defaults().map_err(|e| Error::from_bollard(e, &host))?;
        // Negotiating asks the engine for its version: this is also the reachability check.
        let docker = docker.negotiate_version().await.map_err(|e| Error::from_bollard(e, &host))?;
        let build_docker = docker.clone().with_timeout(Duration::from_secs(7 * 24 * 3600));
        log::debug!("connected to the Docker engine at {host}");
        Ok(Engine { docker, build_docker, host })
    }

    /// The engine's version, for the log.
    pub async fn describe(&self) -> Result<String, Error> {
        let v = self.docker.version().await.map_err(|e| self.error(e))?;
        Ok(format!(
            "Docker engine {} (API {}) at {}",
            v.version.unwrap_or_default(),
            v.api_version.unwrap_or_default(),
            self.host
        ))
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
