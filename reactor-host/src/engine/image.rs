//! Image API: inspect, tag, push and remove images.

use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, PushImageOptionsBuilder, RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use futures_util::StreamExt;
use serde_json::Value;

use super::{Engine, Error};
use crate::credentials::Credentials;

/// What a pull brought.
#[derive(Clone, Debug)]
pub struct PulledImage {
    pub id: String,
    pub digest: Option<String>,
}

/// The registry part of an image name, by docker's rule: a first path component that holds a
/// `.` or a `:`, or is `localhost`.
pub fn registry_of(name: &str) -> Option<&str> {
    let (first, _) = name.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some(first)
}

fn docker_credentials(name: &str, credentials: Option<&Credentials>) -> Option<DockerCredentials> {
    credentials.map(|c| DockerCredentials {
        username: Some(c.username.clone()),
        password: Some(c.password.clone()),
        serveraddress: registry_of(name).map(str::to_owned),
        ..Default::default()
    })
}

/// Splits `name` into repository and tag (`latest` when absent); a `:` before the last `/` is a
/// registry port, not a tag.
pub fn split_tag(name: &str) -> (&str, &str) {
    let name = name.split('@').next().unwrap_or(name);
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => (&name[..i], &name[i + 1..]),
        _ => (name, "latest"),
    }
}

impl Engine {
    /// The engine's inspection of an image, as JSON; `Ok(None)` when there is no such image.
    pub async fn inspect_image(&self, name: &str) -> Result<Option<Value>, Error> {
        match self.docker.inspect_image(name).await {
            Ok(inspect) => serde_json::to_value(inspect).map(Some).map_err(|e| Error::Other(e.to_string())),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Tags `source` as `target` (`repo[:tag]`).
    pub async fn tag_image(&self, source: &str, target: &str) -> Result<(), Error> {
        let (repo, tag) = split_tag(target);
        let options = TagImageOptionsBuilder::default().repo(repo).tag(tag).build();
        self.docker.tag_image(source, Some(options)).await.map_err(|e| self.error(e))
    }

    /// Pulls `name`, logging in with `credentials`; returns the image's ID and the digest the
    /// registry served.
    pub async fn pull_image(&self, name: &str, credentials: Option<&Credentials>) -> Result<PulledImage, Error> {
        let (repo, tag) = split_tag(name);
        let options = CreateImageOptionsBuilder::default().from_image(repo).tag(tag).build();
        let mut stream = self.docker.create_image(Some(options), None, docker_credentials(name, credentials));
        let mut digest = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(found) = info.status.as_deref().and_then(|s| s.strip_prefix("Digest: ")) {
                        digest = Some(found.trim().to_owned());
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(Error::Stream { operation: "pull", message: error })
                }
                Err(e) => return Err(self.error(e)),
            }
        }
        let inspect = self.docker.inspect_image(name).await.map_err(|e| self.error(e))?;
        Ok(PulledImage { id: inspect.id.unwrap_or_default(), digest })
    }

    /// Pushes `name` (`registry/repo[:tag]`), logging in with `credentials`, and returns the
    /// digest the registry reported.
    pub async fn push_image(&self, name: &str, credentials: Option<&Credentials>) -> Result<Option<String>, Error> {
        let (repo, tag) = split_tag(name);
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let mut stream = self.docker.push_image(repo, Some(options), docker_credentials(name, credentials));
        let mut digest = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    // bollard drops the final `aux` message, so the digest is read from the status line
                    // "<tag>: digest: sha256:… size: N".
                    if let Some(status) = info.status {
                        if let Some(at) = status.find("digest: ") {
                            digest = status[at + 8..].split_whitespace().next().map(str::to_owned);
                        }
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(Error::Stream { operation: "push", message: error })
                }
                Err(e) => return Err(self.error(e)),
            }
        }
        Ok(digest)
    }

    /// Removes an image.
    pub async fn remove_image(&self, name: &str, force: bool) -> Result<(), Error> {
        let options = RemoveImageOptionsBuilder::default().force(force).build();
        self.docker.remove_image(name, Some(options), None).await.map(|_| ()).map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::split_tag;

    #[test]
    fn splits_tags_but_not_registry_ports() {
        assert_eq!(split_tag("busybox"), ("busybox", "latest"));
        assert_eq!(split_tag("busybox:1.36"), ("busybox", "1.36"));
        assert_eq!(split_tag("localhost:5000/ns/img"), ("localhost:5000/ns/img", "latest"));
        assert_eq!(split_tag("localhost:5000/ns/img:v2"), ("localhost:5000/ns/img", "v2"));
    }
}
