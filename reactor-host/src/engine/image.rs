//! Image API: pull, inspect, tag, push and remove images, with registry credentials when given.
//! A push the registry cannot take for the moment (unreachable, or a 5xx) is retried a bounded
//! number of times with a growing pause, each retry logged.

use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::models::ErrorDetail;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, PushImageOptionsBuilder, RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use futures_util::StreamExt;
use serde_json::Value;

use super::{Engine, Error};
use crate::credentials::{redact_url, Credentials};

/// One layer's line of a push stream, as the engine reports it: `layer` is the engine's short id,
/// `status` its word for where the layer is (`Preparing`, `Waiting`, `Pushing`, `Pushed`,
/// `Layer already exists`, `Mounted from …`), and the bytes sent of the total while `Pushing`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerProgress {
    pub layer: String,
    pub status: String,
    pub current: Option<u64>,
    pub total: Option<u64>,
}

/// An image the engine pulled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PulledImage {
    /// The engine's image id (`sha256:…`).
    pub id: String,
    /// The manifest digest in the registry (`sha256:…`), when the engine reported one.
    pub digest: Option<String>,
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

/// The registry part of an image name, by docker's rule: the first path component when it has a
/// `.` or a `:`, or is `localhost`. `None` means Docker Hub.
pub fn registry_of(name: &str) -> Option<&str> {
    let (first, _) = name.split_once('/')?;
    (first.contains(['.', ':']) || first == "localhost").then_some(first)
}

/// [`registry_of`], with Docker Hub named, for messages.
fn registry_name(name: &str) -> &str {
    registry_of(name).unwrap_or("docker.io")
}

/// What the engine needs to log in to the registry of `name`.
fn docker_credentials(name: &str, credentials: Option<&Credentials>) -> Option<DockerCredentials> {
    credentials.map(|c| {
        // Docker Hub's credentials are keyed by its v1 index address, as the docker CLI sends them.
        let serveraddress = Some(registry_of(name).unwrap_or("https://index.docker.io/v1/").to_owned());
        match c.identity_token() {
            Some(token) => {
                DockerCredentials { identitytoken: Some(token.to_owned()), serveraddress, ..Default::default() }
            }
            None => DockerCredentials {
                username: Some(c.username.clone()),
                password: Some(c.password.clone()),
                serveraddress,
                ..Default::default()
            },
        }
    })
}

/// A registry's refusal as the daemon words it, across registry implementations.
fn is_auth_failure(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["no basic auth credentials", "unauthorized", "authentication required", "access denied", "denied:"]
        .iter()
        .any(|words| message.contains(words))
}

/// The pauses before the second and third attempts of a push: three attempts in all, ~3 s.
const PUSH_RETRY_PAUSES: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

/// A registry that could not take the request for the moment, as the daemon words it: the
/// connection failed (refused, reset, cut, timed out) or the registry answered with a 5xx.
/// Logins refused and missing images are final, and are not among these.
fn is_transient(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "connection refused",
        "connection reset",
        "broken pipe",
        "i/o timeout",
        "timeout exceeded",
        "handshake timeout",
        "no route to host",
        "network is unreachable",
        ": eof",
        "unexpected eof",
        "http status: 5",
        "500 internal server error",
        "502 bad gateway",
        "503 service unavailable",
        "504 gateway timeout",
    ]
    .iter()
    .any(|words| message.contains(words))
}

fn is_not_found(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["not found", "manifest unknown", "does not exist", "no such image"].iter().any(|words| message.contains(words))
}

/// `message` with the password taken out, should a daemon or registry ever echo it back.
fn scrub(message: &str, credentials: Option<&Credentials>) -> String {
    let message = redact_url(message);
    match credentials {
        Some(c) if !c.password.is_empty() => message.replace(&c.password, "***"),
        _ => message,
    }
}

/// `name` as Docker shows it: without the `docker.io/library/` (or `docker.io/`) that podman's
/// compatible API puts before the names of Docker Hub images, `app:1` included.
fn familiar(name: &str) -> &str {
    name.strip_prefix("docker.io/library/").or_else(|| name.strip_prefix("docker.io/")).unwrap_or(name)
}

/// An error line inside an otherwise successful pull or push stream.
fn stream_error(detail: Option<ErrorDetail>) -> Option<bollard::errors::Error> {
    let message = detail?.message?;
    Some(bollard::errors::Error::DockerStreamError { error: message })
}

impl Engine {
    /// The engine's inspection of an image, as JSON; `Ok(None)` when there is no such image.
    pub async fn inspect_image(&self, name: &str) -> Result<Option<Value>, Error> {
        match self.docker.inspect_image(name).await {
            Ok(mut inspect) => {
                // podman names `app:1` `docker.io/library/app:1` in RepoTags and RepoDigests;
                // Docker gives the short form, which plugins compare with the names they know.
                for names in [&mut inspect.repo_tags, &mut inspect.repo_digests].into_iter().flatten() {
                    names.iter_mut().for_each(|n| *n = familiar(n).to_owned());
                }
                serde_json::to_value(inspect).map(Some).map_err(|e| Error::Other(e.to_string()))
            }
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

    /// Pulls `name` (`[registry/]repo[:tag|@digest]`, `latest` when neither), logging in to its
    /// registry with `credentials` when given.
    pub async fn pull_image(&self, name: &str, credentials: Option<&Credentials>) -> Result<PulledImage, Error> {
        // The API takes a digest where the tag goes.
        let (repository, reference) = match name.split_once('@') {
            Some((repository, digest)) => (split_tag(repository).0, digest),
            None => split_tag(name),
        };
        let options = CreateImageOptionsBuilder::default().from_image(repository).tag(reference).build();
        let mut stream = self.docker.create_image(Some(options), None, docker_credentials(name, credentials));
        let mut digest = None;
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| self.registry_error("pull", name, credentials, e))?;
            if let Some(e) = stream_error(info.error_detail) {
                return Err(self.registry_error("pull", name, credentials, e));
            }
            // Docker reports the manifest digest as "Digest: sha256:…" before the final status;
            // podman sends no such line: its digest is found in RepoDigests below.
            if let Some(found) = info.status.as_deref().and_then(|s| s.strip_prefix("Digest: ")) {
                digest = Some(found.trim().to_owned());
            }
        }
        let inspect = match self.docker.inspect_image(name).await {
            Ok(inspect) => inspect,
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, message }) => {
                return Err(Error::ImageNotFound { operation: "pull", image: name.to_owned(), message })
            }
            Err(e) => return Err(self.error(e)),
        };
        let id = inspect.id.ok_or_else(|| Error::Other(format!("the engine has no id for the pulled image {name}")))?;
        let digest = digest.or_else(|| {
            inspect.repo_digests.unwrap_or_default().into_iter().find_map(|repo_digest| {
                let (repo, digest) = repo_digest.split_once('@')?;
                // podman's RepoDigests name a Docker Hub image in full (`docker.io/library/…`).
                (familiar(repo) == familiar(repository)).then(|| digest.to_owned())
            })
        });
        Ok(PulledImage { id, digest })
    }

    /// Pushes `name` (`registry/repo[:tag]`), logging in to its registry with `credentials` when
    /// given, and returns the digest the registry reported. A registry that cannot be reached or
    /// answers 5xx is tried again after each of [`PUSH_RETRY_PAUSES`]; then the push fails with
    /// [`Error::RegistryUnavailable`]. Each layer's line of the stream is given to `on_layer`, as
    /// it comes (every chunk: the caller decides what to show).
    pub async fn push_image(
        &self,
        name: &str,
        credentials: Option<&Credentials>,
        on_layer: &mut dyn FnMut(LayerProgress),
    ) -> Result<Option<String>, Error> {
        let attempts = PUSH_RETRY_PAUSES.len() + 1;
        let mut attempt = 1;
        loop {
            let message = match self.push_once(name, credentials, on_layer).await {
                Err(Error::Stream { message, .. } | Error::Daemon { message, .. }) if is_transient(&message) => message,
                other => return other,
            };
            let registry = registry_name(name);
            let Some(pause) = PUSH_RETRY_PAUSES.get(attempt - 1) else {
                return Err(Error::RegistryUnavailable {
                    operation: "push",
                    image: name.to_owned(),
                    registry: registry.to_owned(),
                    attempts,
                    message,
                });
            };
            log::warn!(
                "push {name}: the registry {registry} could not take it (attempt {attempt} of {attempts}): {message}; \
                 retrying in {} s",
                pause.as_secs()
            );
            tokio::time::sleep(*pause).await;
            attempt += 1;
        }
    }

    /// One attempt of [`Engine::push_image`].
    async fn push_once(
        &self,
        name: &str,
        credentials: Option<&Credentials>,
        on_layer: &mut dyn FnMut(LayerProgress),
    ) -> Result<Option<String>, Error> {
        if let Some(socket) = self.host.strip_prefix("unix://") {
            return self.push_over_socket(socket, name, credentials, on_layer).await;
        }
        // Over TCP the push goes through bollard, whose stream has no layer ids: no layer lines.
        let (repo, tag) = split_tag(name);
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let mut stream = self.docker.push_image(repo, Some(options), docker_credentials(name, credentials));
        let mut digest = None;
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| self.registry_error("push", name, credentials, e))?;
            if let Some(e) = stream_error(info.error_detail) {
                return Err(self.registry_error("push", name, credentials, e));
            }
            // bollard drops the final `aux` message, so the digest is read from the status line
            // "<tag>: digest: sha256:… size: N".
            if let Some(status) = info.status {
                if let Some(at) = status.find("digest: ") {
                    digest = status[at + 8..].split_whitespace().next().map(str::to_owned);
                }
            }
        }
        Ok(digest)
    }

    /// [`Engine::push_once`] on the engine's unix socket, spoken by hand: bollard's push stream
    /// drops each line's layer id (its model has none), which the per-layer progress needs.
    /// HTTP/1.0, so the engine streams the body unchunked and closes it at the end.
    async fn push_over_socket(
        &self,
        socket: &str,
        name: &str,
        credentials: Option<&Credentials>,
        on_layer: &mut dyn FnMut(LayerProgress),
    ) -> Result<Option<String>, Error> {
        use base64::Engine as _;
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

        let lost = |e: std::io::Error| Error::Stream { operation: "push", message: e.to_string() };
        let (repo, tag) = split_tag(name);
        let auth = serde_json::to_string(&docker_credentials(name, credentials).unwrap_or_default())
            .map_err(|e| Error::Other(e.to_string()))?;
        let auth = base64::engine::general_purpose::URL_SAFE.encode(auth);
        let mut stream = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| Error::Unreachable { host: self.host.clone(), reason: e.to_string() })?;
        let request = format!(
            "POST /images/{repo}/push?tag={tag} HTTP/1.0\r\nHost: docker\r\nX-Registry-Auth: {auth}\r\n\
             Content-Type: application/json\r\nContent-Length: 0\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.map_err(lost)?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).await.map_err(lost)?;
        // "HTTP/1.0 200 OK"
        let status: u16 = line.split_whitespace().nth(1).and_then(|code| code.parse().ok()).ok_or_else(|| {
            Error::Stream { operation: "push", message: format!("the engine answered {:?}", line.trim_end()) }
        })?;
        loop {
            line.clear();
            if reader.read_line(&mut line).await.map_err(lost)? == 0 || line.trim().is_empty() {
                break;
            }
        }
        if status != 200 {
            let mut body = String::new();
            tokio::io::AsyncReadExt::read_to_string(&mut reader, &mut body).await.map_err(lost)?;
            let message = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| body.trim().to_owned());
            let err = bollard::errors::Error::DockerResponseServerError { status_code: status, message };
            return Err(self.registry_error("push", name, credentials, err));
        }
        let mut digest = None;
        loop {
            line.clear();
            if reader.read_line(&mut line).await.map_err(lost)? == 0 {
                break;
            }
            let Ok(item) = serde_json::from_str::<Value>(line.trim()) else { continue };
            if let Some(message) = item["errorDetail"]["message"].as_str().or(item["error"].as_str()) {
                let err = bollard::errors::Error::DockerStreamError { error: message.to_owned() };
                return Err(self.registry_error("push", name, credentials, err));
            }
            let Some(status) = item["status"].as_str() else { continue };
            if let Some(at) = status.find("digest: ") {
                digest = status[at + 8..].split_whitespace().next().map(str::to_owned);
            } else if let Some(layer) = item["id"].as_str() {
                // A layer's line has its id; the others (`The push refers to …`) none.
                on_layer(LayerProgress {
                    layer: layer.to_owned(),
                    status: status.to_owned(),
                    current: item["progressDetail"]["current"].as_u64(),
                    total: item["progressDetail"]["total"].as_u64(),
                });
            }
        }
        Ok(digest)
    }

    /// Words a failed pull or push of `image`: a refused or missing login and a missing image
    /// are told apart, and the registry's message never carries the password.
    fn registry_error(
        &self,
        operation: &'static str,
        image: &str,
        credentials: Option<&Credentials>,
        err: bollard::errors::Error,
    ) -> Error {
        use bollard::errors::Error as B;
        let (status, message) = match err {
            B::DockerStreamError { error } => (None, error),
            B::DockerResponseServerError { status_code, message } => (Some(status_code), message),
            other => return self.error(other),
        };
        let message = scrub(&message, credentials);
        let (image, registry) = (image.to_owned(), registry_name(image).to_owned());
        if is_auth_failure(&message) {
            match credentials {
                Some(_) => Error::CredentialsRefused { operation, image, registry, message },
                None => Error::NoCredentials { operation, image, registry, message },
            }
        } else if is_not_found(&message) {
            Error::ImageNotFound { operation, image, message }
        } else {
            match status {
                Some(status) => Error::Daemon { status, message },
                None => Error::Stream { operation, message },
            }
        }
    }

    /// Removes an image.
    pub async fn remove_image(&self, name: &str, force: bool) -> Result<(), Error> {
        let options = RemoveImageOptionsBuilder::default().force(force).build();
        self.docker.remove_image(name, Some(options), None).await.map(|_| ()).map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podmans_docker_hub_names_are_shown_as_docker_shows_them() {
        assert_eq!(familiar("docker.io/library/app:1"), "app:1");
        assert_eq!(familiar("docker.io/library/busybox@sha256:abc"), "busybox@sha256:abc");
        assert_eq!(familiar("docker.io/ns/app:1"), "ns/app:1");
        assert_eq!(familiar("127.0.0.1:5000/app:1"), "127.0.0.1:5000/app:1");
        assert_eq!(familiar("quay.io/docker.io/app"), "quay.io/docker.io/app");
        assert_eq!(familiar("app:1"), "app:1");
    }

    #[test]
    fn splits_tags_but_not_registry_ports() {
        assert_eq!(split_tag("busybox"), ("busybox", "latest"));
        assert_eq!(split_tag("busybox:1.36"), ("busybox", "1.36"));
        assert_eq!(split_tag("localhost:5000/ns/img"), ("localhost:5000/ns/img", "latest"));
        assert_eq!(split_tag("localhost:5000/ns/img:v2"), ("localhost:5000/ns/img", "v2"));
    }

    #[test]
    fn finds_the_registry_as_docker_does() {
        assert_eq!(registry_of("busybox"), None);
        assert_eq!(registry_of("busybox:1.36"), None);
        assert_eq!(registry_of("library/busybox"), None);
        assert_eq!(registry_of("localhost"), None);
        assert_eq!(registry_of("localhost/img"), Some("localhost"));
        assert_eq!(registry_of("127.0.0.1:5001/busybox:latest"), Some("127.0.0.1:5001"));
        assert_eq!(registry_of("quay.io/ns/img@sha256:abc"), Some("quay.io"));
        assert_eq!(registry_of("myhost:5000/img"), Some("myhost:5000"));
        assert_eq!(registry_of("ns/img:1.2"), None, "a dot in the tag is not a registry");
    }

    #[test]
    fn tells_refused_logins_from_missing_images() {
        assert!(is_auth_failure(
            "Head \"http://127.0.0.1:5001/v2/busybox/manifests/latest\": no basic auth credentials"
        ));
        assert!(is_auth_failure("unauthorized: authentication required"));
        assert!(!is_auth_failure("manifest for 127.0.0.1:5001/x:latest not found: manifest unknown"));
        assert!(is_not_found("manifest for 127.0.0.1:5001/x:latest not found: manifest unknown"));
        assert!(!is_transient("unauthorized: authentication required"));
        assert!(!is_transient("manifest for 127.0.0.1:5001/x:latest not found: manifest unknown"));
    }

    #[test]
    fn retries_only_what_a_registry_may_get_over() {
        for message in [
            "Get \"http://127.0.0.1:59999/v2/\": dial tcp 127.0.0.1:59999: connect: connection refused",
            "Put \"http://127.0.0.1:5000/v2/x/blobs/uploads/abc\": EOF",
            "read tcp 127.0.0.1:40000->127.0.0.1:5000: read: connection reset by peer",
            "received unexpected HTTP status: 503 Service Unavailable",
            "received unexpected HTTP status: 500 Internal Server Error",
            "net/http: TLS handshake timeout",
        ] {
            assert!(is_transient(message), "{message}");
        }
        for message in ["denied: requested access to the resource is denied", "name unknown", "tag invalid"] {
            assert!(!is_transient(message), "{message}");
        }
        let credentials = Credentials { username: "u".to_owned(), password: "pw-123".to_owned() };
        assert_eq!(scrub("http://u:pw-123@h/ says pw-123", Some(&credentials)), "http://u:***@h/ says ***");
    }

    /// Tests against the engine and the authenticated registry that `scripts/setup.sh` starts;
    /// they fail, not skip, when either is missing.
    mod on_the_engine {
        use std::process::Command;

        use super::super::*;

        const AUTH_REGISTRY: &str = "127.0.0.1:5001";
        const MANIFEST_TYPES: &str =
            "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";

        fn login() -> Credentials {
            Credentials { username: "reactor".to_owned(), password: "reactor-secret".to_owned() }
        }

        async fn engine() -> Engine {
            Engine::connect(
                &crate::engine::endpoint::resolve(&Default::default(), &crate::engine::endpoint::ProcessEnv)
                    .expect("an engine"),
            )
            .await
            .expect("a Docker engine (scripts/setup.sh starts one)")
        }

        /// The HTTP status of a manifest request to the authenticated registry.
        fn manifest_status(repository: &str, reference: &str, user: &str) -> String {
            let url = format!("http://{AUTH_REGISTRY}/v2/{repository}/manifests/{reference}");
            let out = Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", MANIFEST_TYPES, "-u", user, &url])
                .output()
                .expect("curl runs");
            String::from_utf8_lossy(&out.stdout).into_owned()
        }

        fn unique_tag() -> String {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            format!("t{}-{nanos}", std::process::id())
        }

        #[tokio::test]
        async fn pulls_with_credentials_and_reports_id_and_digest() {
            let engine = engine().await;
            let name = format!("{AUTH_REGISTRY}/busybox:latest");
            // Untagged first so the pull really asks the registry for the image.
            let _ = engine.remove_image(&name, false).await;
            let pulled = engine.pull_image(&name, Some(&login())).await.expect("pull with the right login");
            assert!(pulled.id.starts_with("sha256:"), "{pulled:?}");
            let digest = pulled.digest.expect("the pull reports a digest");
            assert!(digest.starts_with("sha256:"), "{digest}");
            assert_eq!(manifest_status("busybox", &digest, "reactor:reactor-secret"), "200", "{digest}");
            let local = engine.inspect_image(&name).await.expect("inspect").expect("the pulled image is there");
            assert_eq!(local["Id"].as_str(), Some(pulled.id.as_str()));

            let by_digest = format!("{AUTH_REGISTRY}/busybox@{digest}");
            let again = engine.pull_image(&by_digest, Some(&login())).await.expect("pull by digest");
            assert_eq!(again, PulledImage { id: pulled.id, digest: Some(digest) });
        }

        #[tokio::test]
        async fn a_pull_without_or_with_wrong_credentials_names_the_registry() {
            let engine = engine().await;
            let name = format!("{AUTH_REGISTRY}/busybox:latest");
            let err = engine.pull_image(&name, None).await.expect_err("the registry wants a login");
            assert!(matches!(err, Error::NoCredentials { .. }), "{err:?}");
            let message = err.to_string();
            assert!(message.contains(AUTH_REGISTRY) && message.contains("no credentials were found"), "{message}");

            let wrong = Credentials { username: "reactor".to_owned(), password: "not-the-password".to_owned() };
            let err = engine.pull_image(&name, Some(&wrong)).await.expect_err("a wrong password is refused");
            let message = err.to_string();
            assert!(matches!(err, Error::CredentialsRefused { .. }), "{err:?}");
            assert!(message.contains(AUTH_REGISTRY) && message.contains("refused the credentials"), "{message}");
            assert!(!message.contains("not-the-password") && !format!("{err:?}").contains("not-the-password"));
        }

        #[tokio::test]
        async fn a_pull_of_a_missing_image_names_it() {
            let engine = engine().await;
            let name = format!("{AUTH_REGISTRY}/reactor-test/never-pushed:{}", unique_tag());
            let err = engine.pull_image(&name, Some(&login())).await.expect_err("nothing to pull");
            assert!(matches!(err, Error::ImageNotFound { .. }), "{err:?}");
            assert!(err.to_string().contains(&name), "{err}");
        }

        #[tokio::test]
        async fn pushes_with_credentials_and_the_registry_serves_the_digest() {
            let engine = engine().await;
            let repository = "reactor-test/push";
            let name = format!("{AUTH_REGISTRY}/{repository}:{}", unique_tag());
            engine.tag_image("busybox:latest", &name).await.expect("busybox:latest (scripts/setup.sh makes it)");

            let refused = engine.push_image(&name, None, &mut |_| {}).await;
            let mut layers = Vec::new();
            let pushed = engine.push_image(&name, Some(&login()), &mut |layer| layers.push(layer)).await;
            let _ = engine.remove_image(&name, false).await;

            let err = refused.expect_err("the registry wants a login");
            assert!(matches!(err, Error::NoCredentials { .. }), "{err:?}");
            assert!(err.to_string().contains(AUTH_REGISTRY), "{err}");
            let digest = pushed.expect("push with the right login").expect("the push reports a digest");
            assert!(digest.starts_with("sha256:"), "{digest}");
            assert_eq!(manifest_status(repository, &digest, "reactor:reactor-secret"), "200", "{digest}");
            assert_eq!(manifest_status(repository, &digest, "reactor:wrong"), "401");
            // busybox's layers, each by its short id, each ends pushed (or already there).
            let mut ids: Vec<&str> = layers.iter().map(|l| l.layer.as_str()).collect();
            ids.dedup();
            assert!(!ids.is_empty() && ids.iter().all(|id| id.len() == 12), "{layers:?}");
            for id in ids {
                let last = layers.iter().rev().find(|l| l.layer == id).map(|l| l.status.as_str()).unwrap_or_default();
                let there = ["Pushed", "Layer already exists"].contains(&last) || last.starts_with("Mounted from");
                assert!(there, "{id} ends {last}: {layers:?}");
            }
        }
    }
}
