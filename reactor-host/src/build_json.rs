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

mod duplicates;
mod names;
mod suggest;

pub use suggest::did_you_mean;

/// Whether `image` can name an image reactor builds (the grammar `image` is checked with):
/// `Err` says why not and what to do.
pub fn check_image_reference(image: &str) -> Result<(), String> {
    names::image_problem(image).map_or(Ok(()), Err)
}

/// How strictly a build.json is read.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions {
    /// Make what is otherwise a warning about the file an error (`--strict`, for CI): unknown
    /// top-level keys, duplicate keys, a byte-order mark.
    pub strict: bool,
}

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
    /// The plugin args `--substitute PHASE_plugins.NAME.ARG=…` added (rather than changed): the
    /// plan checks each against its plugin's args schema, which is known only once plugins load.
    pub substituted_args: Vec<SubstitutedArg>,
}

/// A plugin arg a `--substitute` added to an entry that did not have it.
#[derive(Clone, Debug, PartialEq)]
pub struct SubstitutedArg {
    pub phase: Phase,
    /// The entry's index in its phase's list.
    pub index: usize,
    pub arg: String,
    /// The `--substitute` as given, for the message.
    pub given: String,
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
    #[error("cannot read {file}: {reason}; give the path of a readable build.json")]
    Read { file: String, reason: String },
    #[error("{file}: not valid JSON: {reason}; correct the JSON there")]
    Syntax { file: String, reason: String },
    #[error("{file}: {}; correct the build.json where each problem points", problems.join("; "))]
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

/// The UTF-8 byte-order mark some Windows editors put at the start of a file.
const UTF8_BOM: &str = "\u{feff}";

/// The file's text, refused past [`MAX_BUILD_JSON_BYTES`].
fn read_capped(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_BUILD_JSON_BYTES + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_BUILD_JSON_BYTES {
        return Err(format!("it is larger than {} MiB; is it the right file?", MAX_BUILD_JSON_BYTES >> 20));
    }
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return Err("it is UTF-16 text (it starts with a UTF-16 byte-order mark): save it as UTF-8".to_owned());
    }
    String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))
}

/// Reads and validates the build.json at `path`, after applying `substitutions` (`KEY=VALUE`),
/// as strictly as `options` say.
pub fn load(path: &Path, substitutions: &[String], options: LoadOptions) -> Result<BuildRequest, Error> {
    let file = path.display().to_string();
    let text = read_capped(path).map_err(|reason| Error::Read { file: file.clone(), reason })?;
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    from_text(&text, &file, base_dir, substitutions, options)
}

/// Reads a build.json that came as text (`inside-build --input env`); `origin` names it in
/// messages and relative local paths are taken against `base_dir`.
pub fn from_text(
    text: &str,
    origin: &str,
    base_dir: PathBuf,
    substitutions: &[String],
    options: LoadOptions,
) -> Result<BuildRequest, Error> {
    let file = origin.to_owned();
    // What is wrong with the text but does not stop it being read: warnings, or under --strict
    // problems reported with the others.
    let mut notes = Vec::new();
    // A BOM carries nothing in UTF-8; JSON parsers (Python's too) stumble on it, but the file is
    // otherwise what the user meant, so it is read without it and the user told.
    let text = match text.strip_prefix(UTF8_BOM) {
        Some(rest) => {
            notes.push("the file starts with a UTF-8 byte-order mark (BOM), which is not JSON: save the file as UTF-8 without BOM".to_owned());
            rest
        }
        None => text,
    };
    let value: Value =
        serde_json::from_str(text).map_err(|e| Error::Syntax { file: file.clone(), reason: e.to_string() })?;
    notes.extend(duplicates::find(text).iter().map(ToString::to_string));
    if !options.strict {
        for note in &notes {
            log::warn!("{file}: {note}");
        }
        return from_value_with(value, &file, base_dir, substitutions, options);
    }
    let mut notes: Vec<String> = notes.into_iter().map(|note| format!("{note} (--strict)")).collect();
    match from_value_with(value, &file, base_dir, substitutions, options) {
        Ok(request) if notes.is_empty() => Ok(request),
        Ok(_) => Err(Error::Invalid { file, problems: notes }),
        Err(Error::Invalid { file, problems }) => {
            notes.extend(problems);
            Err(Error::Invalid { file, problems: notes })
        }
        Err(other) => Err(other),
    }
}

/// The build.json at `path` as JSON, with `substitutions` applied, unchecked (check it with
/// [`load`] first): what `--method hostdocker` hands to the build inside the container.
pub fn substituted_value(path: &Path, substitutions: &[String]) -> Result<Value, Error> {
    let file = path.display().to_string();
    let text = read_capped(path).map_err(|reason| Error::Read { file: file.clone(), reason })?;
    let text = text.strip_prefix(UTF8_BOM).unwrap_or(&text);
    let mut value: Value = serde_json::from_str(text).map_err(|e| Error::Syntax { file, reason: e.to_string() })?;
    for substitution in substitutions {
        substitute(&mut value, substitution)?;
    }
    Ok(value)
}

/// Validates a build request given as JSON; `origin` names it in messages.
pub fn from_value(
    value: Value,
    origin: &str,
    base_dir: PathBuf,
    substitutions: &[String],
) -> Result<BuildRequest, Error> {
    from_value_with(value, origin, base_dir, substitutions, LoadOptions::default())
}

/// [`from_value`], as strictly as `options` say.
pub fn from_value_with(
    mut value: Value,
    origin: &str,
    base_dir: PathBuf,
    substitutions: &[String],
    options: LoadOptions,
) -> Result<BuildRequest, Error> {
    let mut substituted_args = Vec::new();
    for substitution in substitutions {
        substituted_args.extend(substitute(&mut value, substitution)?);
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
    // Past the schema, every problem is found before any is reported.
    let mut problems = names::registry_problems(&value);
    let raw: RawBuildJson = serde_json::from_value(value).map_err(|e| invalid(vec![e.to_string()]))?;
    if let Some(problem) = names::image_problem(&raw.image) {
        problems.push(describe("/image", &problem));
    }

    let (source, dockerfile_pointer) = match (raw.source, raw.git_url) {
        (Some(_), Some(_)) => {
            return Err(invalid(vec!["give either `source` or the older `git_url`, not both".to_owned()]))
        }
        (None, None) => {
            return Err(invalid(vec![
            "/source: required (e.g. {\"provider\": \"git\", \"uri\": \"https://…\"}; the older `git_url` also works)"
                .to_owned(),
        ]))
        }
        (Some(s), None) => (
            SourceSpec {
                provider: if s.provider == "git" { Provider::Git } else { Provider::Path },
                uri: s.uri,
                commit: s.provider_params.git_commit,
                dockerfile_path: s.dockerfile_path,
                submodules: s.submodules,
            },
            "/source/dockerfile_path",
        ),
        (None, Some(url)) => (
            SourceSpec {
                provider: Provider::Git,
                uri: url,
                commit: raw.git_commit,
                dockerfile_path: raw.git_dockerfile_path,
                submodules: false,
            },
            "/git_dockerfile_path",
        ),
    };
    if let Some(problem) = source.dockerfile_path.as_deref().and_then(dockerfile_path_problem) {
        problems.push(describe(dockerfile_pointer, &problem));
    }

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
    for key in raw.rest.keys().filter(|key| !is_known_key(key)) {
        let near = suggest::did_you_mean(key, known_keys());
        if options.strict {
            problems.push(describe(&format!("/{}", pointer_step(key)), &format!("unknown key{near} (--strict)")));
        } else {
            log::warn!("{origin}: ignoring unknown key `{key}`{near}");
        }
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    Ok(BuildRequest {
        origin: origin.to_owned(),
        base_dir,
        image: raw.image,
        source,
        plugins,
        registries,
        substituted_args,
    })
}

/// Why `dockerfile_path` cannot be used, before anything is fetched: it is taken inside the
/// source, so it must be relative and stay there.
fn dockerfile_path_problem(dockerfile_path: &str) -> Option<String> {
    use std::path::Component;
    let path = Path::new(dockerfile_path);
    if path.is_absolute() {
        return Some(format!(
            "'{dockerfile_path}' is absolute: give the Dockerfile (or its directory) relative to the source's root, e.g. \"docker/\""
        ));
    }
    path.components().any(|c| c == Component::ParentDir).then(|| {
        format!("'{dockerfile_path}' has '..': the Dockerfile must be inside the source; give a path below its root")
    })
}

/// A key as a step of a JSON pointer (RFC 6901).
fn pointer_step(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The build.json that `build git`/`build path` flags describe, unchecked.
pub fn flags_value(mut source_spec: Value, flags: SourceArgs) -> Value {
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
    value
}

/// Applies one `--substitute KEY=VALUE`, as atomic-reactor's `process_substitutions` did:
/// `PHASE_plugins.NAME.ARG=v` sets an arg of the plugin `NAME` listed once in that phase; any
/// other dotted key walks into (or creates) nested objects. `true`, `false` and `none` (any
/// case) become booleans and null. Unlike atomic-reactor, a path that is neither in the file nor
/// in its schema is refused, so that a typo does not silently add a key. Returns the plugin arg it
/// added, which the plan checks against the plugin's schema.
fn substitute(value: &mut Value, substitution: &str) -> Result<Option<SubstitutedArg>, Error> {
    let fail = |why: &str| Error::Substitute(format!("{substitution}: {why}"));
    let (key, raw) = substitution.split_once('=').ok_or_else(|| fail("expected KEY=VALUE, like image=app:2"))?;
    let new = match raw.to_ascii_lowercase().as_str() {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "none" => Value::Null,
        _ => Value::String(raw.to_owned()),
    };
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(fail("empty key: give every dotted part of KEY a name"));
    }
    let phase = Phase::ALL.into_iter().find(|p| p.build_json_key() == parts[0]);
    if let (Some(phase), 3) = (phase, parts.len()) {
        let (list, name, arg) = (parts[0], parts[1], parts[2]);
        let entries = value
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .ok_or_else(|| fail(&format!("the build has no `{list}` list: list the plugin there first")))?;
        let matching: Vec<usize> =
            (0..entries.len()).filter(|&i| entries[i].get("name").and_then(Value::as_str) == Some(name)).collect();
        let [index] = matching[..] else {
            let listed: Vec<&str> = entries.iter().filter_map(|e| e.get("name").and_then(Value::as_str)).collect();
            let near = if matching.is_empty() { suggest::did_you_mean(name, listed) } else { String::new() };
            return Err(fail(&format!(
                "plugin '{name}' is listed {} times in `{list}`; it must be listed once{near}",
                matching.len()
            )));
        };
        let entry = entries[index]
            .as_object_mut()
            .ok_or_else(|| fail("the plugin entry is not an object: correct the build.json"))?;
        let args = entry.entry("args").or_insert_with(|| Value::Object(Default::default()));
        let args =
            args.as_object_mut().ok_or_else(|| fail("the plugin's args are not an object: correct the build.json"))?;
        let added = !args.contains_key(arg);
        args.insert(arg.to_owned(), new);
        return Ok(added.then(|| SubstitutedArg { phase, index, arg: arg.to_owned(), given: substitution.to_owned() }));
    }
    let schema = schema().map_err(|e| fail(&e))?;
    // The schema's node for where the walk is; `None` once it leaves what the schema describes.
    let mut node = Some(schema);
    let mut at = value;
    for (i, part) in parts.iter().enumerate() {
        let object = at.as_object_mut().ok_or_else(|| {
            let parent = parts[..i].join(".");
            fail(&format!("`{parent}` is not an object: substitute `{parent}` itself"))
        })?;
        let properties = node.map(|n| resolve(schema, n)).and_then(|n| n.get("properties")).and_then(Value::as_object);
        if !object.contains_key(*part) {
            // An object the schema lists the keys of takes only those; one it leaves open
            // (plugin args) takes any.
            if let Some(properties) = properties.filter(|p| !p.contains_key(*part)) {
                let mut known: Vec<&str> = properties.keys().map(String::as_str).collect();
                known.extend(object.keys().map(String::as_str));
                let prefix = parts[..i].iter().map(|p| format!("{p}.")).collect::<String>();
                let near = suggest::nearest(part, known)
                    .map(|near| format!(" (did you mean `{prefix}{near}`?)"))
                    .unwrap_or_else(|| ": check its spelling".to_owned());
                return Err(fail(&format!(
                    "`{}` is neither in the build.json nor in its schema{near}",
                    parts[..=i].join(".")
                )));
            }
        }
        node = properties.and_then(|p| p.get(*part));
        if i + 1 == parts.len() {
            object.insert((*part).to_owned(), new);
            return Ok(None);
        }
        at = object.entry(*part).or_insert_with(|| Value::Object(Default::default()));
    }
    Ok(None)
}

/// `node` with a `$ref` into the schema's own `$defs` followed.
fn resolve<'a>(schema: &'a Value, node: &'a Value) -> &'a Value {
    node.get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|pointer| schema.pointer(pointer))
        .unwrap_or(node)
}

/// The top-level keys of the schema.
fn known_keys() -> Vec<&'static str> {
    schema()
        .ok()
        .and_then(|s| s["properties"].as_object())
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default()
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
        assert_eq!(err, "--substitute image: expected KEY=VALUE, like image=app:2");
        let err = parse_with(build, &["postbuild_plugins.a.x=1"]).expect_err("twice").to_string();
        assert!(err.contains("plugin 'a' is listed 2 times in `postbuild_plugins`"), "{err}");
        let err = parse_with(build, &["image.tag=1"]).expect_err("not an object").to_string();
        assert!(err.contains("`image` is not an object"), "{err}");
    }

    #[test]
    fn yes_no_fields_take_atomic_reactors_string_spelling() {
        let r = parse_str(
            r#"{"image": "x", "git_url": "g", "target_registries": ["r:5000"], "target_registries_insecure": "True",
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
        let r = parse_str(r#"{"image": "x", "git_url": "g", "target_registries": ["r1:5000", "r2.example"], "target_registries_insecure": true,
            "parent_registry": "p:5000", "postbuild_plugins": []}"#).expect("valid");
        let expected = Registries {
            target: vec!["r1:5000".into(), "r2.example".into()],
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

    fn load_text(text: &[u8], substitutions: &[&str], strict: bool) -> Result<BuildRequest, Error> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("build.json");
        std::fs::write(&path, text).expect("write");
        let substitutions: Vec<String> = substitutions.iter().map(|s| s.to_string()).collect();
        load(&path, &substitutions, LoadOptions { strict })
    }

    #[test]
    fn image_names_and_registries_are_checked_with_their_pointers_all_at_once() {
        let err = parse_str(
            r#"{"image": "My App:1", "git_url": "g", "git_dockerfile_path": "/abs", "target_registries": ["ok:5000", "nodot"],
            "postbuild_plugins": [{"name": "tag_and_push", "args": {"registries": {"http://r.example": {}}}}]}"#,
        )
        .expect_err("invalid")
        .to_string();
        assert!(err.contains("/image: 'My App:1' is not a valid image reference"), "{err}");
        assert!(err.contains("remove the spaces"), "{err}");
        assert!(err.contains("/target_registries/1: 'nodot' is not a registry"), "{err}");
        assert!(err.contains("/postbuild_plugins/0/args/registries/http:~1~1r.example: 'http://r.example' is not a registry: drop the scheme"), "{err}");
        assert!(err.contains("/git_dockerfile_path: '/abs' is absolute"), "{err}");
    }

    #[test]
    fn a_dockerfile_path_leaving_the_source_is_refused() {
        for (path, words) in [("../x", "has '..'"), ("a/../../b/", "has '..'"), ("/etc/", "is absolute")] {
            let text = format!(
                r#"{{"image": "x", "source": {{"provider": "git", "uri": "r", "dockerfile_path": "{path}"}}}}"#
            );
            let err = parse_str(&text).expect_err(path).to_string();
            assert!(err.contains(&format!("/source/dockerfile_path: '{path}' {words}")), "{err}");
        }
        assert!(parse_str(r#"{"image": "x", "source": {"provider": "git", "uri": "r", "dockerfile_path": "a/..b/"}}"#)
            .is_ok());
    }

    #[test]
    fn a_substitution_outside_the_file_and_its_schema_is_refused_with_a_suggestion() {
        let build = r#"{"image": "x", "source": {"provider": "git", "uri": "g"}, "custom": {}, "prebuild_plugins": [{"name": "a"}]}"#;
        let err = parse_with(build, &["source.provider_params.git_comit=v2"]).expect_err("typo").to_string();
        assert_eq!(
            err,
            "--substitute source.provider_params.git_comit=v2: `source.provider_params.git_comit` is neither in the build.json nor in its schema (did you mean `source.provider_params.git_commit`?)"
        );
        let err = parse_with(build, &["fooboo_plugins.x.y=1"]).expect_err("unknown").to_string();
        assert!(err.contains("`fooboo_plugins` is neither in the build.json nor in its schema"), "{err}");
        assert!(!err.contains("did you mean"), "{err}");
        let err = parse_with(build, &["imgae=y"]).expect_err("typo").to_string();
        assert!(err.ends_with("(did you mean `image`?)"), "{err}");
        let err = parse_with(build, &["prebuild_plugins.b.x=1"]).expect_err("not listed").to_string();
        assert!(err.contains("plugin 'b' is listed 0 times"), "{err}");
        // In the file, in the schema, or somewhere the schema leaves open: accepted.
        let r = parse_with(
            build,
            &[
                "source.provider_params.git_commit=v2",
                "custom.anything.deep=1",
                "parent_registry=p:5000",
                "prebuild_plugins.a.new=1",
            ],
        )
        .expect("valid");
        assert_eq!(r.source.commit.as_deref(), Some("v2"));
        assert_eq!(
            r.substituted_args,
            vec![SubstitutedArg {
                phase: Phase::Prebuild,
                index: 0,
                arg: "new".into(),
                given: "prebuild_plugins.a.new=1".into()
            }]
        );
    }

    #[test]
    fn unknown_keys_warn_and_fail_under_strict() {
        let text = br#"{"image": "x", "git_url": "g", "postbild_plugins": []}"#;
        assert!(load_text(text, &[], false).is_ok());
        let err = load_text(text, &[], true).expect_err("strict").to_string();
        assert!(err.contains("/postbild_plugins: unknown key (did you mean `postbuild_plugins`?) (--strict)"), "{err}");
    }

    #[test]
    fn duplicate_keys_and_a_bom_are_warnings_and_errors_under_strict() {
        let text = "\u{feff}{\"image\": \"x\",\n \"image\": \"y\", \"git_url\": \"g\"}".as_bytes();
        let r = load_text(text, &[], false).expect("read without the BOM");
        assert_eq!(r.image, "y");
        let err = load_text(text, &[], true).expect_err("strict").to_string();
        assert!(err.contains("byte-order mark (BOM)"), "{err}");
        assert!(err.contains("/image: line 2: the key \"image\" is given again (first on line 1)"), "{err}");
        let err = load_text(&[0xff, 0xfe, b'{', 0], &[], false).expect_err("utf-16").to_string();
        assert!(err.contains("UTF-16"), "{err}");
    }
}
