//! build.json → [`BuildRequest`]: parse, apply `--substitute`, check against
//! `schemas/build.json`, normalise both generations of the format (atomic-reactor 1.6's
//! `source{…}` and the older flat `git_url`) into one request, which is all the rest of reactor
//! sees; the plugins the registry settings add by default are the plan's business
//! ([`crate::plugins::plan`]). `build git` and `build path` make the same
//! JSON from their flags and come through here too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use reactor_plugin_api::Phase;
use serde::Deserialize;
use serde_json::Value;

use crate::cli::SourceArgs;
use crate::source::{Provider, SourceSpec};

/// The schema every build.json is checked against.
pub const SCHEMA: &str = include_str!("../../schemas/build.json");

/// A validated build request.
#[derive(Clone, Debug)]
pub struct BuildRequest {
    /// Where it came from, for messages: the file, or the command line.
    pub origin: String,
    /// What relative local paths in it are taken against: the build.json's directory, or the
    /// current directory for `build git`/`build path`.
    pub base_dir: PathBuf,
    /// The name[:tag] of the image to build.
    pub image: String,
    pub source: SourceSpec,
    /// The plugins of each phase the file lists, in order; a phase it does not list is absent.
    pub plugins: BTreeMap<Phase, Vec<PluginEntry>>,
    /// What the file says of registries, from which the plan adds default plugins.
    pub registries: Registries,
}

/// atomic-reactor's registry settings of a build.json.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Registries {
    /// `target_registries`: push there (a postbuild `tag_and_push` by default).
    pub target: Vec<String>,
    pub target_insecure: bool,
    /// `parent_registry`: pull the base image from there (a prebuild `pull_base_image`).
    pub parent: Option<String>,
    pub parent_insecure: bool,
    pub dont_pull_base_image: bool,
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
    /// Run this loaded plugin in a worker process, so that a crash in it fails only it.
    #[serde(default)]
    pub isolate: bool,
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
    #[error("--substitute {0}")]
    Substitute(String),
}

#[derive(Deserialize)]
struct RawBuildJson {
    image: String,
    source: Option<RawSource>,
    git_url: Option<String>,
    git_commit: Option<String>,
    git_dockerfile_path: Option<String>,
    target_registries: Option<Vec<String>>,
    #[serde(default, deserialize_with = "flag")]
    target_registries_insecure: bool,
    parent_registry: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    parent_registry_insecure: bool,
    #[serde(default, deserialize_with = "flag")]
    dont_pull_base_image: bool,
    #[serde(flatten)]
    rest: BTreeMap<String, Value>,
}

/// A yes/no field: a JSON bool, or the strings "true"/"false" in any case, which atomic-reactor's
/// own example build.json uses (`"target_registries_insecure": "True"`).
fn flag<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Text(String),
    }
    match Flag::deserialize(deserializer)? {
        Flag::Bool(b) => Ok(b),
        Flag::Text(t) if t.eq_ignore_ascii_case("true") => Ok(true),
        Flag::Text(t) if t.eq_ignore_ascii_case("false") => Ok(false),
        Flag::Text(t) => Err(serde::de::Error::custom(format!("expected true or false, found \"{t}\""))),
    }
}

#[derive(Deserialize)]
struct RawSource {
    provider: String,
    uri: String,
    dockerfile_path: Option<String>,
    #[serde(default)]
    provider_params: RawProviderParams,
    #[serde(default)]
    submodules: bool,
}

#[derive(Default, Deserialize)]
struct RawProviderParams {
    git_commit: Option<String>,
}

/// The most a build.json may hold: far more than any real one, and a bound on what a file that
/// never ends (`/dev/zero`, a pipe left open) can cost.
const MAX_BUILD_JSON_BYTES: u64 = 16 * 1024 * 1024;

/// The file's text, refused past [`MAX_BUILD_JSON_BYTES`].
fn read_capped(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_BUILD_JSON_BYTES + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_BUILD_JSON_BYTES {
        return Err(format!("it is larger than {} MiB; is it the right file?", MAX_BUILD_JSON_BYTES >> 20));
    }
    String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))
}

/// Reads and validates the build.json at `path`, after applying `substitutions` (`KEY=VALUE`).
pub fn load(path: &Path, substitutions: &[String]) -> Result<BuildRequest, Error> {
    let file = path.display().to_string();
    let text = read_capped(path).map_err(|reason| Error::Read { file: file.clone(), reason })?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| Error::Syntax { file: file.clone(), reason: e.to_string() })?;
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    from_value(value, &file, base_dir, substitutions)
}

/// Validates a build request given as JSON; `origin` names it in messages.
pub fn from_value(
    mut value: Value,
    origin: &str,
    base_dir: PathBuf,
    substitutions: &[String],
) -> Result<BuildRequest, Error> {
    for substitution in substitutions {
        substitute(&mut value, substitution)?;
    }
    // A top-level null means "not given", as atomic-reactor's None arguments did (and as
    // `--substitute key=none` can unset a key).
    if let Some(object) = value.as_object_mut() {
        object.retain(|key, v| !v.is_null() || key == "image");
    }
    let invalid = |problems: Vec<String>| Error::Invalid { file: origin.to_owned(), problems };

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
            "/source: required (e.g. {\"provider\": \"git\", \"uri\": \"https://…\"}; the older `git_url` also works)"
                .to_owned(),
        ]))
        }
        (Some(s), None) => SourceSpec {
            provider: if s.provider == "git" { Provider::Git } else { Provider::Path },
            uri: s.uri,
            commit: s.provider_params.git_commit,
            dockerfile_path: s.dockerfile_path,
            submodules: s.submodules,
        },
        (None, Some(url)) => SourceSpec {
            provider: Provider::Git,
            uri: url,
            commit: raw.git_commit,
            dockerfile_path: raw.git_dockerfile_path,
            submodules: false,
        },
    };

    let mut plugins = BTreeMap::new();
    for phase in Phase::ALL {
        if let Some(list) = raw.rest.get(phase.build_json_key()) {
            let entries: Vec<PluginEntry> = serde_json::from_value(list.clone())
                .map_err(|e| invalid(vec![format!("/{}: {e}", phase.build_json_key())]))?;
            plugins.insert(phase, entries);
        }
    }
    let registries = Registries {
        target: raw.target_registries.unwrap_or_default(),
        target_insecure: raw.target_registries_insecure,
        parent: raw.parent_registry,
        parent_insecure: raw.parent_registry_insecure,
        dont_pull_base_image: raw.dont_pull_base_image,
    };
    for key in raw.rest.keys() {
        if !is_known_key(key) {
            log::warn!("{origin}: ignoring unknown key `{key}`");
        }
    }
    Ok(BuildRequest { origin: origin.to_owned(), base_dir, image: raw.image, source, plugins, registries })
}

/// The build request that `build git`/`build path` flags stand for: the build.json they describe,
/// checked like any other.
pub fn from_flags(mut source_spec: Value, flags: SourceArgs) -> Result<BuildRequest, Error> {
    if let Some(df_path) = flags.df_path {
        source_spec["dockerfile_path"] = serde_json::json!(df_path);
    }
    let mut value = serde_json::json!({"image": flags.image, "source": source_spec});
    if !flags.target_registries.is_empty() {
        value["target_registries"] = serde_json::json!(flags.target_registries);
        value["target_registries_insecure"] = serde_json::json!(flags.target_registries_insecure);
    }
    if let Some(parent) = flags.parent_registry {
        value["parent_registry"] = serde_json::json!(parent);
        value["parent_registry_insecure"] = serde_json::json!(flags.parent_registry_insecure);
    }
    if flags.dont_pull_base_image {
        value["dont_pull_base_image"] = serde_json::json!(true);
    }
    from_value(value, "command line", PathBuf::from("."), &[])
}

/// Applies one `--substitute KEY=VALUE`, as atomic-reactor's `process_substitutions` did:
/// `PHASE_plugins.NAME.ARG=v` sets an arg of the plugin `NAME` listed once in that phase; any
/// other dotted key walks into (or creates) nested objects. `true`, `false` and `none` (any
/// case) become booleans and null.
fn substitute(value: &mut Value, substitution: &str) -> Result<(), Error> {
    let fail = |why: &str| Error::Substitute(format!("{substitution}: {why}"));
    let (key, raw) = substitution.split_once('=').ok_or_else(|| fail("expected KEY=VALUE"))?;
    let new = match raw.to_ascii_lowercase().as_str() {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "none" => Value::Null,
        _ => Value::String(raw.to_owned()),
    };
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(fail("empty key"));
    }
    let is_phase_list = Phase::ALL.iter().any(|p| p.build_json_key() == parts[0]);
    if is_phase_list && parts.len() == 3 {
        let (list, name, arg) = (parts[0], parts[1], parts[2]);
        let entries = value
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .ok_or_else(|| fail(&format!("the build has no `{list}` list")))?;
        let mut matching: Vec<&mut Value> =
            entries.iter_mut().filter(|e| e.get("name").and_then(Value::as_str) == Some(name)).collect();
        if matching.len() != 1 {
            return Err(fail(&format!(
                "plugin '{name}' is listed {} times in `{list}`; it must be listed once",
                matching.len()
            )));
        }
        let entry = matching.remove(0).as_object_mut().ok_or_else(|| fail("the plugin entry is not an object"))?;
        let args = entry.entry("args").or_insert_with(|| Value::Object(Default::default()));
        args.as_object_mut().ok_or_else(|| fail("the plugin's args are not an object"))?.insert(arg.to_owned(), new);
        return Ok(());
    }
    let mut at = value;
    for (i, part) in parts.iter().enumerate() {
        let object = at.as_object_mut().ok_or_else(|| fail(&format!("`{}` is not an object", parts[..i].join("."))))?;
        if i + 1 == parts.len() {
            object.insert((*part).to_owned(), new);
            return Ok(());
        }
        at = object.entry(*part).or_insert_with(|| Value::Object(Default::default()));
    }
    Ok(())
}

/// Keys reactor reads, or accepts for compatibility.
fn is_known_key(key: &str) -> bool {
    schema().is_ok_and(|schema| schema["properties"].get(key).is_some())
}

/// The schema, parsed once.
fn schema() -> Result<&'static Value, String> {
    static SCHEMA_VALUE: std::sync::OnceLock<Result<Value, String>> = std::sync::OnceLock::new();
    SCHEMA_VALUE
        .get_or_init(|| serde_json::from_str(SCHEMA).map_err(|e| format!("reactor's own schema is broken: {e}")))
        .as_ref()
        .map_err(Clone::clone)
}

/// Every way `value` breaks the schema, each as `/pointer: problem`.
fn schema_problems(value: &Value) -> Vec<String> {
    let validator = match schema()
        .and_then(|s| jsonschema::validator_for(s).map_err(|e| format!("reactor's own schema is broken: {e}")))
    {
        Ok(v) => v,
        Err(e) => return vec![e],
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
        parse_with(text, &[])
    }

    fn parse_with(text: &str, substitutions: &[&str]) -> Result<BuildRequest, Error> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::Syntax { file: "b/build.json".into(), reason: e.to_string() })?;
        let substitutions: Vec<String> = substitutions.iter().map(|s| s.to_string()).collect();
        from_value(value, "b/build.json", PathBuf::from("b"), &substitutions)
    }

    #[test]
    fn the_published_schema_is_valid_json_schema() {
        let schema = schema().expect("parses");
        jsonschema::validator_for(schema).expect("compiles");
        assert!(is_known_key("exit_plugins") && !is_known_key("exit_plugin"));
    }

    #[test]
    fn reads_the_flat_pre_2015_form() {
        let r = parse_str(r#"{"image": "test-image", "git_url": "http://example.com/r", "git_commit": "abc",
            "git_dockerfile_path": "sub/", "postbuild_plugins": [{"name": "logs_submitter", "args": {"url": "http://x"}}]}"#)
        .expect("valid");
        assert_eq!(r.image, "test-image");
        assert_eq!(
            r.source,
            SourceSpec {
                provider: Provider::Git,
                uri: "http://example.com/r".into(),
                commit: Some("abc".into()),
                dockerfile_path: Some("sub/".into()),
                submodules: false,
            }
        );
        let post = &r.plugins[&Phase::Postbuild];
        assert_eq!(post[0].name, "logs_submitter");
        assert!(post[0].required);
        assert_eq!(post[0].is_allowed_to_fail, None);
        assert_eq!(r.base_dir, PathBuf::from("b"));
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
    fn submodules_default_to_off_and_must_be_a_boolean() {
        let r = parse_str(r#"{"image": "i", "source": {"provider": "git", "uri": "r"}}"#).expect("valid");
        assert!(!r.source.submodules);
        let r = parse_str(r#"{"image": "i", "source": {"provider": "git", "uri": "r", "submodules": true}}"#)
            .expect("valid");
        assert!(r.source.submodules);
        let err = parse_str(r#"{"image": "i", "source": {"provider": "git", "uri": "r", "submodules": "yes"}}"#)
            .expect_err("not a boolean")
            .to_string();
        assert!(err.contains("/source/submodules"), "{err}");
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let err = parse_str("{\n  \"image\": \"x\",\n}").expect_err("invalid").to_string();
        assert!(err.starts_with("b/build.json: not valid JSON: "), "{err}");
        assert!(err.contains("line 3 column 1"), "{err}");
    }

    #[test]
    fn substitutions_set_top_level_nested_and_plugin_args_with_coercion() {
        let r = parse_with(
            r#"{"image": "x", "git_url": "g", "prebuild_plugins": [{"name": "a", "args": {"k": "old"}}, {"name": "b"}]}"#,
            &["image=foo:1", "source.provider=path", "source.uri=ctx", "git_url=none",
              "prebuild_plugins.a.k=TRUE", "prebuild_plugins.b.new=none", "prebuild_plugins.a.flag=False"],
        )
        .expect("valid");
        assert_eq!(r.image, "foo:1");
        assert_eq!((r.source.provider, r.source.uri.as_str()), (Provider::Path, "ctx"));
        let pre = &r.plugins[&Phase::Prebuild];
        assert_eq!(pre[0].args, serde_json::json!({"k": true, "flag": false}));
        assert_eq!(pre[1].args, serde_json::json!({"new": null}));
    }

    #[test]
    fn a_bad_substitution_is_named() {
        let build = r#"{"image": "x", "git_url": "g", "postbuild_plugins": [{"name": "a"}, {"name": "a"}]}"#;
        let err = parse_with(build, &["image"]).expect_err("no =").to_string();
        assert_eq!(err, "--substitute image: expected KEY=VALUE");
        let err = parse_with(build, &["postbuild_plugins.a.x=1"]).expect_err("twice").to_string();
        assert!(err.contains("plugin 'a' is listed 2 times in `postbuild_plugins`"), "{err}");
        let err = parse_with(build, &["image.tag=1"]).expect_err("not an object").to_string();
        assert!(err.contains("`image` is not an object"), "{err}");
    }

    #[test]
    fn yes_no_fields_take_atomic_reactors_string_spelling() {
        let r = parse_str(
            r#"{"image": "x", "git_url": "g", "target_registries": ["r"], "target_registries_insecure": "True",
            "parent_registry_insecure": "false", "dont_pull_base_image": true}"#,
        )
        .expect("valid");
        assert!(r.registries.target_insecure && !r.registries.parent_insecure && r.registries.dont_pull_base_image);
        let err = parse_str(r#"{"image": "x", "git_url": "g", "target_registries_insecure": "yes"}"#)
            .expect_err("not a flag")
            .to_string();
        assert!(err.contains("/target_registries_insecure"), "{err}");
    }

    #[test]
    fn registry_settings_are_kept_for_the_plan() {
        let r = parse_str(r#"{"image": "x", "git_url": "g", "target_registries": ["r1:5000", "r2"], "target_registries_insecure": true,
            "parent_registry": "p:5000", "postbuild_plugins": []}"#).expect("valid");
        let expected = Registries {
            target: vec!["r1:5000".into(), "r2".into()],
            target_insecure: true,
            parent: Some("p:5000".into()),
            ..Default::default()
        };
        assert_eq!(r.registries, expected);
        // The lists the file gives are kept as given: the defaults are the plan's.
        assert!(r.plugins[&Phase::Postbuild].is_empty());
        assert!(!r.plugins.contains_key(&Phase::Prebuild));
    }

    #[test]
    fn reports_every_schema_problem_with_its_pointer() {
        let err = parse_str(
            r#"{"image": 1, "source": {"provider": "svn", "uri": "x"}, "postbuild_plugins": [{"nme": "a"}]}"#,
        )
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
