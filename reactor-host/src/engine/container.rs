//! Container API: run a command in a new container of an image, collect (and optionally stream)
//! what it printed, and always remove the container, also when the run is stopped.

use std::future::Future;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{LogsOptionsBuilder, RemoveContainerOptionsBuilder};
use futures_util::StreamExt;
use reactor_plugin_api::protocol::ContainerOptions;
use reactor_plugin_api::RunOutput;

use super::build::LineSplitter;
use super::{Engine, Error};

/// The label of every container reactor starts for a plugin; its value is reactor's process id.
const CONTAINER_LABEL: &str = "io.reactor.pid";

/// Why a container run ended early.
pub enum Stopped {
    /// The caller's stop future completed (the build was cancelled).
    Cancelled,
    /// The run took longer than its timeout.
    TimedOut(Duration),
}

impl Engine {
    /// Runs `command` in a new container of `image` with `options`, waits for it to exit, and
    /// removes it. When `stop` completes first, or the timeout passes, the container is killed
    /// and removed, and the run ends with `Err(Ok(Stopped))`.
    pub async fn run_container(
        &self,
        image: &str,
        command: &[String],
        options: &ContainerOptions,
        stop: impl Future<Output = ()>,
        mut on_line: impl FnMut(&str),
    ) -> Result<RunOutput, Result<Stopped, Error>> {
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            cmd: Some(command.to_vec()),
            env: Some(options.env.clone()).filter(|e| !e.is_empty()),
            user: options.user.clone(),
            entrypoint: options.entrypoint.clone(),
            // Says which reactor started it, on engines shared by many builds and hosts.
            labels: Some(std::collections::HashMap::from([(
                CONTAINER_LABEL.to_owned(),
                std::process::id().to_string(),
            )])),
            ..Default::default()
        };
        let created = self.docker.create_container(None, body).await.map_err(|e| Err(self.error(e)))?;
        let id = created.id;
        let timeout = options.timeout_s.map(Duration::from_secs_f64);
        let outcome = tokio::select! {
            outcome = self.run_created(&id, options.stream_output, &mut on_line) => outcome.map_err(Err),
            () = stop => Err(Ok(Stopped::Cancelled)),
            () = sleep_or_never(timeout) => Err(Ok(Stopped::TimedOut(timeout.unwrap_or_default()))),
        };
        // Forced removal kills the container if it still runs.
        let remove = RemoveContainerOptionsBuilder::default().force(true).build();
        if let Err(e) = self.docker.remove_container(&id, Some(remove)).await {
            log::warn!("could not remove container {id}: {}", self.error(e));
        }
        outcome
    }

    async fn run_created(&self, id: &str, stream: bool, on_line: &mut impl FnMut(&str)) -> Result<RunOutput, Error> {
        self.docker.start_container(id, None).await.map_err(|e| self.error(e))?;
        let mut output = RunOutput::default();
        // Following the logs ends when the container exits; the exit code is asked afterwards.
        let options = LogsOptionsBuilder::default().stdout(true).stderr(true).follow(true).build();
        let mut logs = self.docker.logs(id, Some(options));
        let mut lines = LineSplitter::default();
        while let Some(item) = logs.next().await {
            let (sink, message) = match item.map_err(|e| self.error(e))? {
                LogOutput::StdErr { message } => (&mut output.stderr, message),
                LogOutput::StdOut { message } | LogOutput::Console { message } => (&mut output.stdout, message),
                LogOutput::StdIn { .. } => continue,
            };
            let text = String::from_utf8_lossy(&message);
            sink.push_str(&text);
            if stream {
                lines.push(&text, &mut *on_line);
            }
        }
        lines.finish(on_line);
        output.exit_code = match self.docker.wait_container(id, None).next().await {
            Some(Ok(response)) => response.status_code,
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(self.error(e)),
            None => return Err(Error::Other(format!("container {id}: the engine did not report its exit"))),
        };
        Ok(output)
    }
}

async fn sleep_or_never(timeout: Option<Duration>) {
    match timeout {
        Some(timeout) => tokio::time::sleep(timeout).await,
        None => std::future::pending().await,
    }
}
