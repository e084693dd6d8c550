//! build.json → [`BuildRequest`]: parse, check against `schemas/build.json`, and normalise both
//! generations of the format (atomic-reactor 1.6's `source{…}` and the older flat `git_url`)
//! into one request, which is all the rest of reactor sees.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use reactor_plugin_api::Phase;
use serde::Deserialize;
use serde_json::Value;

use crate::source::{Provider, SourceSpec};

/// The schema every build.json is checked against.
pub const SCHEMA: &str = include_str!("../../schemas/build.json");

/// A validated build request.
#[derive(Clone, Debug)]
pub struct BuildRequest {
    /// The file it came from.
    pub file: PathBuf,
    /// The name[:tag] of the image to build.
    pub image: String,
    pub source: SourceSpec,
    /// The plugins of each phase, in order.
    pub plugins: BTreeMap<Phase, Vec<PluginEntry>>,
}

impl BuildRequest {
    /// The directory relative local paths in the request are taken against.
    pub fn base_dir(&self) -> PathBuf {
        match self.file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

/// One entry of a phase's plugin list.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct PluginEntry {
    pub name: String,
    #[serde(default = "empty_object")]
    pub args: Value,
    #[serde(default = "yes")]
    pub required: bool,
    /// `None` leaves it to the plugin's manifest.
    #[serde(default)]
    pub is_allowed_to_fail: Option<bool>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

fn yes() -> bool {
    true
}

/// A build.json that cannot be used; the message names the file and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {file}: {reason}")]
    Read { file: String, reason: String },
    #[error("{file}: not valid JSON: {reason}")]
    Syntax { file: String, reason: String },
    #[error("{file}: {}", problems.join("; "))]
    Invalid { file: String, problems: Vec<String> },
}

#[derive(Deserialize)]
struct RawBuildJson {
    image: String,
    source: Option<RawSource>,
    git_url: Option<String>,
    git_commit: Option<String>,
    git_dockerfile_path: Option<String>,
    #[serde(flatten)]
    rest: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct RawSource {
    provider: String,
    uri: String,
    dockerfile_path: Option<String>,
    #[serde(default)]
    provider_params: RawProviderParams,
}

#[derive(Default, Deserialize)]
struct RawProviderParams {
    git_commit: Option<String>,
}

/// Reads and validates the build.json at `path`.
pub fn load(path: &Path) -> Result<BuildRequest, Error> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::Read { file: file.clone(), reason: e.to_string() })?;
    parse(&text, path)
}

/// Validates the text of a build.json read from `path`.
pub fn parse(text: &str, path: &Path) -> Result<BuildRequest, Error> {
    let file = path.display().to_string();
    let value: Value = serde_json::from_str(text).map_err(|e| Error::Syntax { file: file.clone(), reason: e.to_string() })?;
    let invalid = |problems: Vec<String>| Error::Invalid { file: file.clone(), problems };

    let problems = schema_problems(&value);
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let raw: RawBuildJson = serde_json::from_value(value).map_err(|e| invalid(vec![e.to_string()]))?;

    let source = match (raw.source, raw.git_url) {
        (Some(_), Some(_)) => {
            return Err(invalid(vec!["give either `source` or the older `git_url`, not both".to_owned()]))
        }
        (None, None) => {
            return Err(invalid(vec![
                "/source: required (e.g. {\"provider\": \"git\", \"uri\": \"https://…\"}; the older `git_url` also works)".to_owned(),
            ]))
        }
        (Some(s), None) => SourceSpec {
            provider: if s.provider == "git" { Provider::Git } else { Provider::Path },
            uri: s.uri,
            commit: s.provider_params.git_commit,
            dockerfile_path: s.dockerfile_path,
        },
        (None, Some(url)) => SourceSpec {
            provider: Provider::Git,
            uri: url,
            commit: raw.git_commit,
            dockerfile_path: raw.git_dockerfile_path,
        },
    };

    let mut plugins = BTreeMap::new();
    for phase in Phase::ALL {
        if let Some(list) = raw.rest.get(phase.build_json_key()) {
            let entries: Vec<PluginEntry> =
                serde_json::from_value(list.clone()).map_err(|e| invalid(vec![format!("/{}: {e}", phase.build_json_key())]))?;
            plugins.insert(phase, entries);
        }
    }
    for key in raw.rest.keys() {
        if !is_known_key(key) {
            log::warn!("{file}: ignoring unknown key `{key}`");
        }
    }
    Ok(BuildRequest { file: path.to_path_buf(), image: raw.image, source, plugins })
}

/// Keys reactor reads, or accepts for compatibility.
fn is_known_key(key: &str) -> bool {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap_or_default();
    schema["properties"].get(key).is_some()
}

/// Every way `value` breaks the schema, each as `/pointer: problem`.
fn schema_problems(value: &Value) -> Vec<String> {
    let schema: Value = match serde_json::from_str(SCHEMA) {
        Ok(schema) => schema,
        Err(e) => return vec![format!("reactor's own schema is broken: {e}")],
    };
    let validator = match jsonschema::validator_for(&schema) {
        Ok(v) => v,
        Err(e) => return vec![format!("reactor's own schema is broken: {e}")],
    };
    validator.iter_errors(value).map(|e| describe(e.instance_path().as_str(), &e.to_string())).collect()
}

/// `/pointer: problem`, with the root shown as `/`.
pub fn describe(pointer: &str, problem: &str) -> String {
    let pointer = if pointer.is_empty() { "/" } else { pointer };
    format!("{pointer}: {problem}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<BuildRequest, Error> {
        parse(text, Path::new("b/build.json"))
    }

    #[test]
    fn reads_the_flat_pre_2015_form() {
        let r = parse_str(r#"{"image": "test-image", "git_url": "http://example.com/r", "git_commit": "abc",
            "git_dockerfile_path": "sub/", "postbuild_plugins": [{"name": "logs_submitter", "args": {"url": "http://x"}}]}"#)
        .expect("valid");
        assert_eq!(r.image, "test-image");
        assert_eq!(r.source, SourceSpec {
            provider: Provider::Git,
            uri: "http://example.com/r".into(),
            commit: Some("abc".into()),
            dockerfile_path: Some("sub/".into()),
        });
        let post = &r.plugins[&Phase::Postbuild];
        assert_eq!(post[0].name, "logs_submitter");
        assert!(post[0].required);
        assert_eq!(post[0].is_allowed_to_fail, None);
        assert_eq!(r.base_dir(), PathBuf::from("b"));
    }

    #[test]
    fn reads_the_1_6_form() {
        let r = parse_str(r#"{"image": "i:1", "source": {"provider": "path", "uri": "ctx", "dockerfile_path": "d/Dockerfile",
            "provider_params": {"git_commit": "main"}}, "exit_plugins": [{"name": "x", "required": false, "is_allowed_to_fail": false}]}"#)
        .expect("valid");
        assert_eq!(r.source.provider, Provider::Path);
        assert_eq!(r.source.commit.as_deref(), Some("main"));
        assert_eq!(r.plugins[&Phase::Exit][0].args, serde_json::json!({}));
        assert!(!r.plugins[&Phase::Exit][0].required);
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let err = parse_str("{\n  \"image\": \"x\",\n}").expect_err("invalid").to_string();
        assert!(err.starts_with("b/build.json: not valid JSON: "), "{err}");
        assert!(err.contains("line 3 column 1"), "{err}");
    }

    #[test]
    fn reports_every_schema_problem_with_its_pointer() {
        let err = parse_str(r#"{"image": 1, "source": {"provider": "svn", "uri": "x"}, "postbuild_plugins": [{"nme": "a"}]}"#)
            .expect_err("invalid")
            .to_string();
        assert!(err.contains("/image: 1 is not of type \"string\""), "{err}");
        assert!(err.contains("/source/provider:"), "{err}");
        assert!(err.contains("/postbuild_plugins/0: \"name\" is a required property"), "{err}");
    }

    #[test]
    fn a_missing_source_or_image_is_named() {
        let err = parse_str(r#"{"image": "x"}"#).expect_err("no source").to_string();
        assert!(err.contains("/source: required"), "{err}");
        let err = parse_str(r#"{"git_url": "x"}"#).expect_err("no image").to_string();
        assert!(err.contains("/: \"image\" is a required property"), "{err}");
    }
}
