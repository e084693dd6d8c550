//! Registry credentials, found where atomic-reactor and the docker CLI look for them.
//!
//! A build request may name a `registry_secret_dir`: a mounted secret holding `.dockercfg` (a JSON
//! object keyed by registry) or `.dockerconfigjson` (the same under `auths`). Without one, Docker's
//! own `config.json` is read, as `docker login` left it. Credential helpers (`credsStore`,
//! `credHelpers`) are not run.
//!
//! The password never reaches a message or a log line: errors name the file and the registry,
//! and [`Credentials`]' `Debug` hides it.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"***").finish()
    }
}

/// Why credentials could not be read. Messages name the file, never what is in it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read registry credentials from {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("registry credentials in {} are malformed: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
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
    let path = match secret_dir {
        Some(dir) => match SECRET_FILES.iter().map(|name| dir.join(name)).find(|path| path.exists()) {
            Some(path) => path,
            None => {
                log::debug!("no {} in {}: no registry credentials", SECRET_FILES.join(" or "), dir.display());
                return Ok(None);
            }
        },
        None => match docker_config_path(std::env::var_os("DOCKER_CONFIG"), std::env::var_os("HOME")) {
            Some(path) => path,
            None => return Ok(None),
        },
    };
    from_file(&path, registry)
}

/// Where the docker CLI keeps `config.json`, given `$DOCKER_CONFIG` and `$HOME`.
fn docker_config_path(docker_config: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    match docker_config.filter(|dir| !dir.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => home.filter(|dir| !dir.is_empty()).map(|home| PathBuf::from(home).join(".docker").join("config.json")),
    }
}

/// Reads the credentials for `registry` from one file of either shape; a missing file is `None`.
fn from_file(path: &Path, registry: &str) -> Result<Option<Credentials>, Error> {
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
    if document.contains_key("credsStore") || document.contains_key("credHelpers") {
        log::debug!("{}: credential helpers (credsStore, credHelpers) are ignored", path.display());
    }
    // config.json and .dockerconfigjson nest the registries under `auths`; .dockercfg does not.
    let registries = match document.get("auths") {
        Some(Value::Object(auths)) => auths,
        Some(_) => return Err(malformed("`auths` is not a JSON object".to_owned())),
        None => &document,
    };
    let Some((key, entry)) = find_entry(registries, registry) else {
        log::debug!("{}: no credentials for {registry}", path.display());
        return Ok(None);
    };
    let Value::Object(entry) = entry else {
        return Err(malformed(format!("the entry for {key} is not a JSON object")));
    };
    entry_credentials(entry).map_err(|reason| malformed(format!("the entry for {key} {reason}")))
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
/// and `password`. An entry with neither (what `docker login` leaves when a helper holds the
/// secret) is `None`. The error completes "the entry for <registry> …".
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
        (None, None) => Ok(None),
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
                r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{}"}}, "quay.io": {{}}}}, "credsStore": "pass"}}"#,
                b64("hubuser:hubpass")
            ),
        );
        assert_eq!(from_file(&path, "docker.io").expect("readable"), creds("hubuser", "hubpass"));
        // An empty entry is what `docker login` leaves when a helper holds the secret.
        assert_eq!(from_file(&path, "quay.io").expect("readable"), None);
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
        assert_eq!(from_file(&gone.join("config.json"), "127.0.0.1:5001").expect("no file is fine"), None);
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
