//! The container a `--method hostdocker` build runs in: created from the build image with the
//! mounts and groups the caller gives, its output streamed back as it comes, its exit code
//! returned, and always removed, also when the caller is cancelled (the container is then sent
//! the same signal, so the reactor inside runs its exit plugins, and is killed if it outlasts
//! the caller's grace).

use std::time::Duration;

use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::{Engine, Error};
use crate::cancel::{Cancel, Signal};

/// What to run.
#[derive(Debug, Default)]
pub struct BuildContainer {
    pub name: String,
    pub image: String,
    /// The arguments to the image's entrypoint (`reactor`).
    pub command: Vec<String>,
    pub env: Vec<String>,
    /// `HOST:CONTAINER[:ro]` bind mounts.
    pub binds: Vec<String>,
    /// Supplementary groups (the engine socket's gid), as numbers.
    pub group_add: Vec<String>,
    pub labels: std::collections::HashMap<String, String>,
}

/// How the container ended.
#[derive(Debug)]
pub struct Ended {
    /// Its exit code; `None` when it had to be killed.
    pub exit_code: Option<i64>,
    /// The signal that cancelled the caller, if one did.
    pub cancelled: Option<Signal>,
}

/// Which of the container's streams a piece of output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Engine {
    /// The engine's URL, for messages.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Runs `spec` to its end, handing each piece of its output to `output`. Once `cancel` is
    /// cancelled the container gets the same signal and `stop_within` to exit, then is killed.
    pub async fn run_build_container(
        &self,
        spec: &BuildContainer,
        cancel: &Cancel,
        stop_within: Duration,
        mut output: impl FnMut(Stream, &[u8]),
    ) -> Result<Ended, Error> {
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: Some(spec.command.clone()),
            env: Some(spec.env.clone()),
            labels: Some(spec.labels.clone()),
            host_config: Some(HostConfig {
                binds: Some(spec.binds.clone()),
                group_add: Some(spec.group_add.clone()),
                // As a build here would: plugins reach the caller's network (a listener on
                // localhost), and the engine, not the container, pulls and pushes.
                network_mode: Some("host".to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default().name(&spec.name).build();
        let created = self.docker.create_container(Some(options), body).await.map_err(|e| match e {
            bollard::errors::Error::DockerResponseServerError { status_code: 404, message } => Error::Other(format!(
                "--build-image {}: the engine at {} has no such image ({message}); make it with `reactor \
                 create-build-image --tag {}`",
                spec.image, self.host, spec.image
            )),
            e => self.error(e),
        })?;
        let id = created.id;
        let ended = self.follow(&id, cancel, stop_within, &mut output).await;
        let remove = RemoveContainerOptionsBuilder::default().force(true).build();
        if let Err(e) = self.docker.remove_container(&id, Some(remove)).await {
            log::warn!("could not remove the build container {id}: {} (`docker rm -f {id}` removes it)", self.error(e));
        }
        ended
    }

    async fn follow(
        &self,
        id: &str,
        cancel: &Cancel,
        stop_within: Duration,
        output: &mut impl FnMut(Stream, &[u8]),
    ) -> Result<Ended, Error> {
        self.docker.start_container(id, None).await.map_err(|e| self.error(e))?;
        let options = LogsOptionsBuilder::default().stdout(true).stderr(true).follow(true).build();
        let mut logs = self.docker.logs(id, Some(options));
        let mut cancelled = None;
        let mut deadline = None::<tokio::time::Instant>;
        loop {
            let until_deadline = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                item = logs.next() => match item {
                    Some(Ok(LogOutput::StdErr { message })) => output(Stream::Stderr, &message),
                    Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => {
                        output(Stream::Stdout, &message);
                    }
                    Some(Ok(LogOutput::StdIn { .. })) => {}
                    Some(Err(e)) => return Err(self.error(e)),
                    None => break,
                },
                signal = cancel.cancelled(), if cancelled.is_none() => {
                    cancelled = Some(signal);
                    deadline = Some(tokio::time::Instant::now() + stop_within);
                    let kill = KillContainerOptionsBuilder::default().signal(signal.name()).build();
                    if let Err(e) = self.docker.kill_container(id, Some(kill)).await {
                        log::warn!("could not send {} to the build container {id}: {}", signal.name(), self.error(e));
                    }
                }
                () = until_deadline => {
                    log::error!(
                        "the build container {id} did not end within {}s of {}: killing it",
                        stop_within.as_secs(),
                        cancelled.map_or("the cancellation", Signal::name)
                    );
                    return Ok(Ended { exit_code: None, cancelled });
                }
            }
        }
        let exit_code = match self.docker.wait_container(id, None).next().await {
            Some(Ok(response)) => response.status_code,
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(self.error(e)),
            None => return Err(Error::Other(format!("build container {id}: the engine did not report its exit"))),
        };
        Ok(Ended { exit_code: Some(exit_code), cancelled })
    }
}
