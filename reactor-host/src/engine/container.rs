//! Container API: run a command in a new container of an image and collect what it printed.

use bollard::container::LogOutput;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{LogsOptionsBuilder, RemoveContainerOptionsBuilder};
use futures_util::StreamExt;

use super::{Engine, Error};

/// What a container run printed, and how it exited.
#[derive(Clone, Debug, Default)]
pub struct RunOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

impl Engine {
    /// Runs `command` in a new container of `image`, waits for it to exit, and removes it.
    pub async fn run_container(&self, image: &str, command: &[String]) -> Result<RunOutput, Error> {
        let body =
            ContainerCreateBody { image: Some(image.to_owned()), cmd: Some(command.to_vec()), ..Default::default() };
        let created = self.docker.create_container(None, body).await.map_err(|e| self.error(e))?;
        let id = created.id;
        let outcome = self.run_created(&id).await;
        let remove = RemoveContainerOptionsBuilder::default().force(true).build();
        if let Err(e) = self.docker.remove_container(&id, Some(remove)).await {
            log::warn!("could not remove container {id}: {}", self.error(e));
        }
        outcome
    }

    async fn run_created(&self, id: &str) -> Result<RunOutput, Error> {
        self.docker.start_container(id, None).await.map_err(|e| self.error(e))?;
        let exit_code = match self.docker.wait_container(id, None).next().await {
            Some(Ok(response)) => response.status_code,
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(self.error(e)),
            None => return Err(Error::Other(format!("container {id}: the engine did not report its exit"))),
        };
        let mut output = RunOutput { exit_code, ..Default::default() };
        let options = LogsOptionsBuilder::default().stdout(true).stderr(true).build();
        let mut logs = self.docker.logs(id, Some(options));
        while let Some(item) = logs.next().await {
            match item.map_err(|e| self.error(e))? {
                LogOutput::StdErr { message } => output.stderr.push_str(&String::from_utf8_lossy(&message)),
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    output.stdout.push_str(&String::from_utf8_lossy(&message))
                }
                LogOutput::StdIn { .. } => {}
            }
        }
        Ok(output)
    }
}
