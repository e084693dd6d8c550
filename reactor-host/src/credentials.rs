//! Registry credentials, found where atomic-reactor and the docker CLI look for them.
//!
//! A build request may name a `registry_secret_dir`: a mounted secret holding `.dockercfg` (a JSON
//! object keyed by registry) or `.dockerconfigjson` (the same under `auths`). Without one, Docker's
//! own `config.json` is read, as `docker login` left it, credential helpers included: the helper
//! `credHelpers` names for the registry comes first, then the registry's entry in `auths`, then
//! the `credsStore` helper. A helper `docker-credential-<name>` is run (from `PATH`) by the
//! `docker_credential` crate, which speaks the helpers' protocol (`get`, the server on stdin,
//! `{"Username", "Secret"}` on stdout); one that answers "credentials not found" means none.
//!
//! The password never reaches a message or a log line: errors name the file, the registry and
//! the helper, and [`Credentials`]' `Debug` hides it.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

/// A user name and password for one registry; an identity token (OAuth refresh token) is the
/// password of the user [`IDENTITY_TOKEN_USER`], as the credential helpers' protocol carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// The user name that marks [`Credentials`] holding an identity token (`<token>`).
pub const IDENTITY_TOKEN_USER: &str = "<token>";

impl Credentials {
    /// The identity token, if these credentials are one.
    pub fn identity_token(&self) -> Option<&str> {
        (self.username == IDENTITY_TOKEN_USER).then_some(self.password.as_str())
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"***").finish()
    }
}

/// Why credentials could not be read. Messages name the file, never what is in it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot read registry credentials from {}: {source}; check that you may read it, or give another secret \
         directory",
        path.display()
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "registry credentials in {} are malformed: {reason}; correct the file, or write it again with `docker login`",
        path.display()
    )]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "cannot get the credentials for {registry} from the credential helper docker-credential-{helper} (the {field} \
         of {}): {reason}; put docker-credential-{helper} on PATH and log in with it, or take it out of the {field}",
        path.display()
    )]
    Helper { path: PathBuf, field: &'static str, helper: String, registry: String, reason: String },
}

/// The file names a `registry_secret_dir` may hold, in the order they are tried: atomic-reactor's
/// `.dockercfg`, then the Kubernetes `kubernetes.io/dockerconfigjson` secret's key.
const SECRET_FILES: [&str; 2] = [".dockercfg", ".dockerconfigjson"];

/// The credentials for `registry` (`host[:port]`, with or without a scheme).
///
/// With `secret_dir`, only that directory is read (see [`SECRET_FILES`]); without it, Docker's
/// `config.json` (`$DOCKER_CONFIG`, else `~/.docker`). `Ok(None)` when there is no file or it has
/// no entry for `registry`.
pub fn for_registry(registry: &str, secret_dir: Option<&Path>) -> Result<Option<Credentials>, Error> {
    match secret_dir {
        Some(dir) => match SECRET_FILES.iter().map(|name| dir.join(name)).find(|path| path.exists()) {
            Some(path) => from_file(&path, registry, Helpers::Ignored),
            None => {
                log::debug!("no {} in {}: no registry credentials", SECRET_FILES.join(" or "), dir.display());
                Ok(None)
            }
        },
        None => match docker_config_path(std::env::var_os("DOCKER_CONFIG"), std::env::var_os("HOME")) {
            Some(path) => from_file(&path, registry, Helpers::Run),
            None => Ok(None),
        },
    }
}

/// Whether a file's credential helpers are run: those of Docker's `config.json` are, a secret
/// directory holds the credentials themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Helpers {
    Run,
    Ignored,
}

/// Where the docker CLI keeps `config.json`, given `$DOCKER_CONFIG` and `$HOME`.
fn docker_config_path(docker_config: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    docker_config_dir(docker_config, home).map(|dir| dir.join("config.json"))
}

/// The docker CLI's configuration directory, given `$DOCKER_CONFIG` and `$HOME`:
/// `$DOCKER_CONFIG`, else `~/.docker`; an empty variable counts as unset, as for the CLI.
pub fn docker_config_dir(docker_config: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    match docker_config.filter(|dir| !dir.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => home.filter(|dir| !dir.is_empty()).map(|home| PathBuf::from(home).join(".docker")),
    }
}

/// Reads the credentials for `registry` from one file of either shape, running its credential
/// helpers when `helpers` says so; a missing file is `None`.
fn from_file(path: &Path, registry: &str, helpers: Helpers) -> Result<Option<Credentials>, Error> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Read { path: path.to_owned(), source }),
    };
    let malformed = |reason: String| Error::Malformed { path: path.to_owned(), reason };
    // serde_json's messages can quote the offending value, which may be the secret: keep only where.
    let document: Value = serde_json::from_slice(&bytes)
        .map_err(|e| malformed(format!("not valid JSON (line {}, column {})", e.line(), e.column())))?;
    let Value::Object(document) = document else {
        return Err(malformed("the top level is not a JSON object".to_owned()));
    };
    let configured = match helpers {
        Helpers::Run => ConfiguredHelpers::read(&document, registry).map_err(malformed)?,
        Helpers::Ignored => ConfiguredHelpers::default(),
    };
    // The registry's own helper comes first, as for the docker CLI.
    if let Some((server, helper)) = configured.for_registry {
        return from_helper(path, &bytes, "credHelpers", helper, server, registry);
    }
    // config.json and .dockerconfigjson nest the registries under `auths`; .dockercfg does not.
    let registries = match document.get("auths") {
        Some(Value::Object(auths)) => auths,
        Some(_) => return Err(malformed("`auths` is not a JSON object".to_owned())),
        None => &document,
    };
    let in_file = match find_entry(registries, registry) {
        Some((key, Value::Object(entry))) => {
            entry_credentials(entry).map_err(|reason| malformed(format!("the entry for {key} {reason}")))?
        }
        Some((key, _)) => return Err(malformed(format!("the entry for {key} is not a JSON object"))),
        None => None,
    };
    match (in_file, configured.store) {
        (Some(credentials), _) => Ok(Some(credentials)),
        // An empty entry is what `docker login` leaves in `auths` when the store holds the secret.
        (None, Some(store)) => from_helper(path, &bytes, "credsStore", store, &helper_server(registry), registry),
        (None, None) => {
            log::debug!("{}: no credentials for {registry}", path.display());
            Ok(None)
        }
    }
}

/// The credential helpers config.json names for one registry.
#[derive(Default)]
struct ConfiguredHelpers<'a> {
    /// The helper `credHelpers` names for the registry, with the key it is under (the server
    /// the helper is asked about).
    for_registry: Option<(&'a str, &'a str)>,
    /// The `credsStore` helper, for every registry.
    store: Option<&'a str>,
}

impl<'a> ConfiguredHelpers<'a> {
    /// What `document` (a config.json) names for `registry`; the error says what is malformed.
    fn read(document: &'a Map<String, Value>, registry: &str) -> Result<ConfiguredHelpers<'a>, String> {
        let for_registry = match document.get("credHelpers") {
            None | Some(Value::Null) => None,
            Some(Value::Object(helpers)) => match find_entry(helpers, registry) {
                Some((key, Value::String(helper))) if !helper.is_empty() => Some((key, helper.as_str())),
                Some((_, Value::String(_))) | None => None,
                Some((key, _)) => return Err(format!("the `credHelpers` entry for {key} is not a string")),
            },
            Some(_) => return Err("`credHelpers` is not a JSON object".to_owned()),
        };
        let store = match document.get("credsStore") {
            None | Some(Value::Null) => None,
            Some(Value::String(store)) => Some(store.as_str()).filter(|s| !s.is_empty()),
            Some(_) => return Err("`credsStore` is not a string".to_owned()),
        };
        Ok(ConfiguredHelpers { for_registry, store })
    }
}

/// The server a credential store is asked about for `registry`: Docker Hub's is its v1 index
/// address, as `docker login` stored it.
fn helper_server(registry: &str) -> String {
    match registry_host(registry) {
        "docker.io" => "https://index.docker.io/v1/".to_owned(),
        _ => registry.to_owned(),
    }
}

/// Asks the credential helper `helper` (`docker-credential-<helper> get`) for `server`'s
/// credentials, through `docker_credential`, which reads `config` (the file at `path`) and runs
/// the helper it names there under `field`. "credentials not found" from the helper is `None`.
fn from_helper(
    path: &Path,
    config: &[u8],
    field: &'static str,
    helper: &str,
    server: &str,
    registry: &str,
) -> Result<Option<Credentials>, Error> {
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    let failed = |reason: String| Error::Helper {
        path: path.to_owned(),
        field,
        helper: helper.to_owned(),
        registry: registry.to_owned(),
        reason,
    };
    log::debug!("asking the credential helper docker-credential-{helper} for the credentials of {server}");
    match docker_credential::get_credential_from_reader(config, server) {
        Ok(DockerCredential::UsernamePassword(username, password)) => Ok(Some(Credentials { username, password })),
        Ok(DockerCredential::IdentityToken(token)) => {
            Ok(Some(Credentials { username: IDENTITY_TOKEN_USER.to_owned(), password: token }))
        }
        Err(E::NoCredentialConfigured) => Ok(None),
        Err(E::HelperFailure { stdout, stderr, .. }) => {
            // The helpers' protocol words a missing entry so (docker-credential-helpers'
            // ErrCredentialsNotFound), and the docker CLI then goes on without credentials.
            let said = |text: &str| text.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_owned);
            let message = said(&stderr).or_else(|| said(&stdout)).unwrap_or_default();
            if message.to_ascii_lowercase().contains("credentials not found") {
                log::debug!("docker-credential-{helper} has no credentials for {server}");
                return Ok(None);
            }
            // A failed helper has no secret to print; its words are what tells the user why.
            let message: String = message.chars().take(200).collect();
            Err(failed(format!("it failed{}", if message.is_empty() { String::new() } else { format!(": {message}") })))
        }
        Err(E::HelperCommunicationError) => Err(failed(format!("cannot run docker-credential-{helper} get"))),
        Err(E::MalformedHelperResponse) => Err(failed(
            "its answer is not the JSON object {\"Username\", \"Secret\"} of the helpers' protocol".to_owned(),
        )),
        // The crate's other errors are about the file, which was read above; its messages quote nothing.
        Err(other) => Err(Error::Malformed { path: path.to_owned(), reason: other.to_string() }),
    }
}

/// The entry whose key names `registry`: the key as given first, then any key that normalises to
/// the same host, so `https://index.docker.io/v1/` serves `docker.io`.
fn find_entry<'a>(registries: &'a Map<String, Value>, registry: &str) -> Option<(&'a str, &'a Value)> {
    if let Some((key, entry)) = registries.get_key_value(registry) {
        return Some((key, entry));
    }
    let wanted = registry_host(registry);
    registries.iter().find(|(key, _)| registry_host(key) == wanted).map(|(key, entry)| (key.as_str(), entry))
}

/// A registry key reduced as docker reduces it: no scheme, nothing after the host, and Docker
/// Hub's several names as one.
fn registry_host(key: &str) -> &str {
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io",
        other => other,
    }
}

/// The credentials in one registry entry: `auth` (base64 of `user:password`), else `username`
/// and `password`, else an `identitytoken`. An entry with none of them (what `docker login`
/// leaves when a helper holds the secret) is `None`. The error completes "the entry for
/// <registry> …".
fn entry_credentials(entry: &Map<String, Value>) -> Result<Option<Credentials>, String> {
    let text = |field: &str| match entry.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(format!("has a `{field}` that is not a string")),
    };
    if let Some(auth) = text("auth")? {
        // The decoder's message would quote a byte of the secret; say only what is wrong.
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| "has an `auth` that is not base64".to_owned())?;
        let decoded = String::from_utf8(decoded).map_err(|_| "has an `auth` that is not UTF-8 text".to_owned())?;
        let (username, password) =
            decoded.split_once(':').ok_or_else(|| "has an `auth` without `user:password` in it".to_owned())?;
        return Ok(Some(Credentials { username: username.to_owned(), password: password.to_owned() }));
    }
    match (text("username")?, text("password")?) {
        (Some(username), Some(password)) => {
            Ok(Some(Credentials { username: username.to_owned(), password: password.to_owned() }))
        }
        (None, None) => Ok(text("identitytoken")?
            .map(|token| Credentials { username: IDENTITY_TOKEN_USER.to_owned(), password: token.to_owned() })),
        (Some(_), None) => Err("has a `username` but no `password`".to_owned()),
        (None, Some(_)) => Err("has a `password` but no `username`".to_owned()),
    }
}

/// `text` with the password of every `scheme://user:password@host` in it replaced by `***`, so a
/// URL can go into a log line or a result document.
pub fn redact_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let scheme_start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let authority_start = at + 3;
        out.push_str(&rest[..authority_start]);
        rest = &rest[authority_start..];
        if scheme_start == at {
            continue; // "://" without a scheme before it is not a URL
        }
        let authority_len = rest.find(|c: char| c.is_whitespace() || "/?#\"'<>`".contains(c)).unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        // The last `@` ends the user information, since a raw `@` in a password is common enough.
        if let Some((userinfo, _host)) = authority.rsplit_once('@') {
            if let Some((user, _password)) = userinfo.split_once(':') {
                out.push_str(user);
                out.push_str(":***");
                rest = &rest[userinfo.len()..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, content).expect("write");
        path
    }

    fn creds(username: &str, password: &str) -> Option<Credentials> {
        Some(Credentials { username: username.to_owned(), password: password.to_owned() })
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn reads_atomic_reactor_dockercfg_with_username_and_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            ".dockercfg",
            r#"{"registry.example.com:5001": {"username": "builder", "password": "pa:ss", "email": "b@example.com"}}"#,
        );
        let found = for_registry("registry.example.com:5001", Some(dir.path())).expect("readable");
        assert_eq!(found, creds("builder", "pa:ss"));
        assert_eq!(for_registry("other.example.com", Some(dir.path())).expect("readable"), None);
    }

    #[test]
    fn reads_base64_auth_and_splits_at_the_first_colon() {
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = b64("builder:pa:ss@word");
        write(dir.path(), ".dockercfg", &format!(r#"{{"127.0.0.1:5001": {{"auth": "{auth}"}}}}"#));
        assert_eq!(for_registry("127.0.0.1:5001", Some(dir.path())).expect("readable"), creds("builder", "pa:ss@word"));
    }

    #[test]
    fn reads_the_auths_shape_in_dockercfg_and_dockerconfigjson() {
        let auths = format!(r#"{{"auths": {{"127.0.0.1:5001": {{"auth": "{}"}}}}}}"#, b64("reactor:reactor-secret"));
        for name in [".dockercfg", ".dockerconfigjson"] {
            let dir = tempfile::tempdir().expect("tempdir");
            write(dir.path(), name, &auths);
            let found = for_registry("127.0.0.1:5001", Some(dir.path())).expect("readable");
            assert_eq!(found, creds("reactor", "reactor-secret"), "{name}");
        }
    }

    #[test]
    fn reads_docker_config_json() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            dir.path(),
            "config.json",
            &format!(
                r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{}"}}, "quay.io": {{}}}}, "credsStore": "{ABSENT}"}}"#,
                b64("hubuser:hubpass")
            ),
        );
        // Credentials in `auths` are used without asking the store.
        assert_eq!(from_file(&path, "docker.io", Helpers::Run).expect("readable"), creds("hubuser", "hubpass"));
        // An empty entry is what `docker login` leaves when the store holds the secret: the store
        // is asked (and here it is not installed), unless helpers are not run.
        let err = from_file(&path, "quay.io", Helpers::Run).expect_err("the store is asked");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot get the credentials for quay.io from the credential helper docker-credential-{ABSENT} (the credsStore of {}): cannot run docker-credential-{ABSENT} get; put docker-credential-{ABSENT} on PATH and log in with it, or take it out of the credsStore",
                path.display()
            )
        );
        assert_eq!(from_file(&path, "quay.io", Helpers::Ignored).expect("readable"), None);
    }

    /// A helper name no machine has on its PATH.
    const ABSENT: &str = "reactor-test-absent-helper";

    #[test]
    fn a_registrys_own_helper_comes_before_auths_and_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            r#"{{"auths": {{"127.0.0.1:5001": {{"auth": "{}"}}, "127.0.0.1:5000": {{"auth": "{}"}}}},
                "credHelpers": {{"127.0.0.1:5001": "{ABSENT}", "127.0.0.1:5002": ""}}, "credsStore": "{ABSENT}-store"}}"#,
            b64("file:user"),
            b64("other:user")
        );
        let path = write(dir.path(), "config.json", &config);
        let err = from_file(&path, "127.0.0.1:5001", Helpers::Run).expect_err("the helper is asked first");
        assert!(matches!(&err, Error::Helper { field: "credHelpers", helper, .. } if helper == ABSENT), "{err}");
        assert!(err.to_string().contains("credentials for 127.0.0.1:5001"), "{err}");
        assert_eq!(from_file(&path, "127.0.0.1:5000", Helpers::Run).expect("from auths"), creds("other", "user"));
        // An empty helper name is no helper: on to the store.
        let err = from_file(&path, "127.0.0.1:5002", Helpers::Run).expect_err("the store is asked");
        assert!(matches!(&err, Error::Helper { field: "credsStore", .. }), "{err}");
        // A secret directory holds credentials, not helper names.
        assert_eq!(from_file(&path, "127.0.0.1:5001", Helpers::Ignored).expect("readable"), creds("file", "user"));
    }

    #[test]
    fn malformed_helper_settings_are_errors_naming_the_file() {
        for (config, reason) in [
            (r#"{"credHelpers": ["x"]}"#, "`credHelpers` is not a JSON object"),
            (r#"{"credHelpers": {"127.0.0.1:5001": 7}}"#, "the `credHelpers` entry for 127.0.0.1:5001 is not a string"),
            (r#"{"credsStore": {"x": 1}}"#, "`credsStore` is not a string"),
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = write(dir.path(), "config.json", config);
            let err = from_file(&path, "127.0.0.1:5001", Helpers::Run).expect_err(config);
            assert_eq!(
                err.to_string(),
                format!(
                    "registry credentials in {} are malformed: {reason}; correct the file, or write it again with \
                     `docker login`",
                    path.display()
                )
            );
        }
    }

    #[test]
    fn an_identity_token_is_the_password_of_the_token_user() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "config.json", r#"{"auths": {"r.example": {"identitytoken": "tok-1"}}}"#);
        let found = from_file(&path, "r.example", Helpers::Run).expect("readable").expect("a token");
        assert_eq!(found.identity_token(), Some("tok-1"));
        assert_eq!(creds("u", "p").and_then(|c| c.identity_token().map(str::to_owned)), None);
    }

    #[test]
    fn docker_hub_is_asked_of_a_store_by_its_index_address() {
        assert_eq!(helper_server("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(helper_server("index.docker.io"), "https://index.docker.io/v1/");
        assert_eq!(helper_server("127.0.0.1:5001"), "127.0.0.1:5001");
    }

    #[test]
    fn finds_config_json_as_the_docker_cli_does() {
        let path = |docker_config: Option<&str>, home: Option<&str>| {
            docker_config_path(docker_config.map(OsString::from), home.map(OsString::from))
        };
        assert_eq!(path(Some("/etc/dc"), Some("/root")), Some(PathBuf::from("/etc/dc/config.json")));
        assert_eq!(path(Some(""), Some("/root")), Some(PathBuf::from("/root/.docker/config.json")));
        assert_eq!(path(None, Some("/home/b")), Some(PathBuf::from("/home/b/.docker/config.json")));
        assert_eq!(path(None, None), None);
    }

    #[test]
    fn registry_keys_match_without_scheme_or_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            ".dockercfg",
            r#"{
                "https://registry.example.com:5001/v2/": {"username": "https-user", "password": "a"},
                "http://plain.example.com": {"username": "http-user", "password": "b"},
                "127.0.0.1:5001": {"username": "exact", "password": "c"},
                "https://127.0.0.1:5001": {"username": "prefixed", "password": "d"}
            }"#,
        );
        let user = |registry: &str| {
            for_registry(registry, Some(dir.path())).expect("readable").map(|c| c.username).unwrap_or_default()
        };
        assert_eq!(user("registry.example.com:5001"), "https-user");
        assert_eq!(user("https://registry.example.com:5001"), "https-user");
        assert_eq!(user("plain.example.com"), "http-user");
        assert_eq!(user("127.0.0.1:5001"), "exact", "an exact key wins over a normalised one");
        assert_eq!(user("registry.example.com"), "", "the port is part of the registry");
    }

    #[test]
    fn a_missing_file_or_secret_dir_has_no_credentials() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(for_registry("127.0.0.1:5001", Some(dir.path())).expect("no file is fine"), None);
        let gone = dir.path().join("not-there");
        assert_eq!(for_registry("127.0.0.1:5001", Some(&gone)).expect("no dir is fine"), None);
        assert_eq!(
            from_file(&gone.join("config.json"), "127.0.0.1:5001", Helpers::Run).expect("no file is fine"),
            None
        );
    }

    #[test]
    fn a_malformed_file_is_an_error_naming_it_but_not_its_content() {
        let secret = "hunter2-very-secret";
        let cases = [
            format!(r#"{{"127.0.0.1:5001": {{"username": "u", "password": "{secret}""#),
            format!(r#"{{"127.0.0.1:5001": {{"username": "u", "password": ["{secret}"]}}}}"#),
            format!(r#"{{"127.0.0.1:5001": {{"auth": "{secret}!"}}}}"#),
            format!(r#"{{"127.0.0.1:5001": {{"auth": "{}"}}}}"#, b64(secret)),
            format!(r#"{{"127.0.0.1:5001": {{"password": "{secret}"}}}}"#),
            format!(r#"{{"127.0.0.1:5001": "{secret}"}}"#),
            format!(r#"{{"auths": "{secret}"}}"#),
            format!(r#"["{secret}"]"#),
        ];
        for content in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = write(dir.path(), ".dockercfg", &content);
            let err = for_registry("127.0.0.1:5001", Some(dir.path())).expect_err(&content);
            let message = err.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(!message.contains(secret), "{message}");
            assert!(!format!("{err:?}").contains(secret), "{err:?}");
        }
    }

    #[test]
    fn an_unreadable_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A directory where the file should be: reading it fails whoever runs the test.
        std::fs::create_dir(dir.path().join(".dockercfg")).expect("mkdir");
        let err = for_registry("127.0.0.1:5001", Some(dir.path())).expect_err("a directory is not a file");
        assert!(err.to_string().contains(".dockercfg"), "{err}");
    }

    #[test]
    fn debug_hides_the_password() {
        let shown =
            format!("{:?}", Credentials { username: "reactor".to_owned(), password: "reactor-secret".to_owned() });
        assert!(shown.contains("reactor") && !shown.contains("reactor-secret"), "{shown}");
    }

    #[test]
    fn redact_url_hides_passwords_and_keeps_users() {
        let cases = [
            ("cloning http://user:s3cr3t@127.0.0.1:1/x.git", "cloning http://user:***@127.0.0.1:1/x.git"),
            ("https://u:p@h", "https://u:***@h"),
            (
                "POST https://bot:p@ss@logs.example.com:8443/v1?x=1 failed",
                "POST https://bot:***@logs.example.com:8443/v1?x=1 failed",
            ),
            ("a git+ssh://git:k@h/r and \"http://x:y@z\"", "a git+ssh://git:***@h/r and \"http://x:***@z\""),
            (
                "no password: https://user@host/p, none at all: https://host:443/",
                "no password: https://user@host/p, none at all: https://host:443/",
            ),
            ("not a url: ://a:b@c and plain text", "not a url: ://a:b@c and plain text"),
            ("https://user:pass@host", "https://user:***@host"),
            ("", ""),
        ];
        for (text, expected) in cases {
            assert_eq!(redact_url(text), expected, "{text}");
        }
    }
}
