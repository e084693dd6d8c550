//! `add_labels_in_dockerfile`: appends one `LABEL "k"="v" …` instruction at the end of the
//! Dockerfile, so the labels go to the image the last stage builds (atomic-reactor's
//! `pre_add_labels_in_df.py`, as in 1.6.26). It must not fail by default (atomic-reactor #685):
//! an image built without its labels is not the image that was asked for.
//!
//! ```json
//! {"name": "add_labels_in_dockerfile",
//!  "args": {"labels": {"name": "ns/app", "version": "1.0", "release": "3"},
//!           "auto_labels": ["build-date", "architecture", "vcs-type", "vcs-ref", "vcs-url"]}}
//! ```
//!
//! The labels are, in order: `labels` (an object, or a JSON string encoding one); then each of
//! `auto_labels` that `labels` does not set: `build-date` (UTC, when the plugin runs),
//! `architecture` (as `docker info` names it, e.g. `x86_64`), `com.redhat.build-host` (this
//! machine's host name), and for git sources `vcs-type` (`git`), `vcs-ref` (the commit built) and
//! `vcs-url` (the source URI, without its password); then `aliases`: for each old name → new name
//! found among the base image's, the Dockerfile's and these labels, the missing or stale one of
//! the pair is set to the other's value; then `equal_labels` groups, each given one value; then
//! `url`, from `info_url_format` with `{label}` replaced by label values.
//!
//! A label is left out when the image would get that value anyway (the final stage's `LABEL`, or
//! else the base image's, already sets it), when it is in `dont_overwrite_if_in_dockerfile` and
//! the Dockerfile sets it, or when it is in `dont_overwrite` and the base image sets it (and the
//! Dockerfile does not). The result is the `LABEL` line added, or `""` when none was.
//!
//! Where it deliberately differs from atomic-reactor 1.6:
//! - Values are quoted so that docker reads back exactly the value given: `$` is escaped too, so a
//!   `$VAR` in a value is not expanded by docker (1.6 escaped only `\` and `"`).
//! - A label equal to the base image's value is skipped only if the Dockerfile does not set it to
//!   something else (1.6.19 skipped it even then, 1.6.26 never skipped it).
//! - `dont_overwrite` defaults to `["Architecture", "architecture"]` (1.6.19's default; 1.6.26's
//!   was empty), so a base image's architecture label is kept.
//! - An empty `aliases` object means no aliases (1.6 used its defaults for an empty one), and
//!   `labels` may be left out (only automatic labels are added then).
//! - `architecture` is the architecture reactor runs on and `com.redhat.build-host` its host
//!   name, which are the engine's when the engine is local (1.6 asked the engine); `build-date`
//!   is when the plugin runs (1.6 took the process's start).
//! - A `labels` value that is neither an object of strings nor a JSON string encoding one fails
//!   the plugin naming what it got; a label key that is empty or holds `=` fails it too.
//! - Not taken over: labels from a reactor_config map, `release_env_var`.

use std::collections::BTreeMap;

use reactor_plugin_api::dockerfile::{quote, Dockerfile};
use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError, Workflow};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::image_labels::{self, OrderedLabels};

pub(crate) const RETURNS: &str = "the `LABEL` instruction it appended to the Dockerfile, or `\"\"` when it added none";

const KEY: &str = "add_labels_in_dockerfile";

/// atomic-reactor's (and osbs-client's) old label names and the names that replaced them. In key
/// order, which serde_json keeps whether or not its `preserve_order` feature is on, so the
/// schema's default (and docs/plugins.md) reads the same in every build.
const DEFAULT_ALIASES: [(&str, &str); 11] = [
    ("Architecture", "architecture"),
    ("Authoritative_Registry", "authoritative-source-url"),
    ("BZComponent", "com.redhat.component"),
    ("Build_Host", "com.redhat.build-host"),
    ("INSTALL", "install"),
    ("Name", "name"),
    ("RUN", "run"),
    ("Release", "release"),
    ("UNINSTALL", "uninstall"),
    ("Vendor", "vendor"),
    ("Version", "version"),
];
const DEFAULT_AUTO_LABELS: [&str; 5] = ["build-date", "architecture", "vcs-type", "vcs-ref", "com.redhat.build-host"];
const DEFAULT_DONT_OVERWRITE: [&str; 2] = ["Architecture", "architecture"];
const DEFAULT_DONT_OVERWRITE_IF_IN_DOCKERFILE: [&str; 1] = ["distribution-scope"];

/// Adds labels to the Dockerfile.
pub struct AddLabelsInDockerfile;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddLabelsArgs {
    #[serde(default)]
    labels: Value,
    #[serde(default = "default_dont_overwrite")]
    dont_overwrite: Vec<String>,
    #[serde(default = "default_auto_labels")]
    auto_labels: Vec<String>,
    #[serde(default)]
    aliases: Option<Map<String, Value>>,
    #[serde(default = "default_dont_overwrite_if_in_dockerfile")]
    dont_overwrite_if_in_dockerfile: Vec<String>,
    #[serde(default)]
    info_url_format: Option<String>,
    #[serde(default)]
    equal_labels: Vec<Vec<String>>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn default_dont_overwrite() -> Vec<String> {
    strings(&DEFAULT_DONT_OVERWRITE)
}

fn default_auto_labels() -> Vec<String> {
    strings(&DEFAULT_AUTO_LABELS)
}

fn default_dont_overwrite_if_in_dockerfile() -> Vec<String> {
    strings(&DEFAULT_DONT_OVERWRITE_IF_IN_DOCKERFILE)
}

impl Plugin for AddLabelsInDockerfile {
    fn manifest(&self) -> Manifest {
        let default_aliases: Map<String, Value> =
            DEFAULT_ALIASES.iter().map(|(old, new)| (old.to_string(), json!(new))).collect();
        Manifest::new(KEY, [Phase::Prebuild], env!("CARGO_PKG_VERSION"))
            .description("appends one LABEL instruction with the given and automatic labels to the Dockerfile")
            // Properties in key order: docs/plugins.md lists them in the map's order, which is key
            // order or written order depending on serde_json's `preserve_order` feature.
            .args_schema(json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "aliases": {
                        "type": "object", "additionalProperties": {"type": "string"},
                        "default": default_aliases,
                        "description": "Old label name to new name: when either is set (by the base image, the Dockerfile or these labels) the other gets the same value, the explicitly set or newer one winning. `{}` for none."
                    },
                    "auto_labels": {
                        "type": "array", "items": {"type": "string"},
                        "default": DEFAULT_AUTO_LABELS,
                        "description": "Labels to generate unless `labels` sets them: build-date (UTC), architecture, com.redhat.build-host, and for git sources vcs-type, vcs-ref (the commit) and vcs-url (without password). Others are warned about and skipped."
                    },
                    "dont_overwrite": {
                        "type": "array", "items": {"type": "string"},
                        "default": DEFAULT_DONT_OVERWRITE,
                        "description": "Labels the base image's value of which is kept: not set when the base image has them (and the Dockerfile does not set them)."
                    },
                    "dont_overwrite_if_in_dockerfile": {
                        "type": "array", "items": {"type": "string"},
                        "default": DEFAULT_DONT_OVERWRITE_IF_IN_DOCKERFILE,
                        "description": "Labels not set when the Dockerfile's final stage sets them."
                    },
                    "equal_labels": {
                        "type": "array", "items": {"type": "array", "items": {"type": "string"}},
                        "default": [],
                        "description": "Groups of label names that must have one value: the ones missing get the value of the first one the Dockerfile or these labels set, else of the first one the base image sets."
                    },
                    "info_url_format": {
                        "type": "string",
                        "description": "Sets the label `url` to this text with each `{label}` replaced by that label's value (`{{` and `}}` for braces); a label that is not set fails the plugin."
                    },
                    "labels": {
                        "oneOf": [
                            {"type": "object", "additionalProperties": {"type": "string"}},
                            {"type": "string"}
                        ],
                        "default": {},
                        "description": "The labels to set, name to value: an object, or a string holding the JSON of one."
                    }
                }
            }))
            .allowed_to_fail(false)
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let args: AddLabelsArgs = args.parse()?;
        let mut labels = given_labels(&args.labels)?;
        let aliases = aliases(args.aliases.as_ref())?;
        let workflow = ctx.workflow()?;
        let dockerfile = image_labels::parse(&workflow)?;
        let last_stage =
            dockerfile.stages().len().checked_sub(1).ok_or_else(|| PluginError::new("the Dockerfile has no FROM"))?;
        let (_, base) = image_labels::base_image_labels(ctx, &dockerfile)?;
        let in_dockerfile = image_labels::dockerfile_labels(&dockerfile);

        add_auto_labels(&mut labels, &args.auto_labels, &generated_labels(&workflow));
        let explicit = merged(&[&in_dockerfile, &labels.to_map()]);
        add_aliases(&mut labels, &aliases, &base, &explicit);
        add_equal_labels(&mut labels, &args.equal_labels, &base, &explicit);
        if let Some(format) = &args.info_url_format {
            let all = merged(&[&base, &in_dockerfile, &labels.to_map()]);
            labels.set("url", &info_url(format, &all)?);
        }

        let chosen = choose(&labels, &args, &base, &in_dockerfile);
        if chosen.is_empty() {
            log::info!("no labels to add");
            return Ok(json!(""));
        }
        let line = label_line(&chosen, dockerfile.escape_char())?;
        let text = append(&dockerfile, last_stage, &line)?;
        ctx.set_dockerfile(&text)?;
        Ok(Value::String(line))
    }
}

/// The `labels` arg: an object of strings, or a JSON string encoding one.
fn given_labels(arg: &Value) -> Result<OrderedLabels, PluginError> {
    let what_to_give = "give an object of label names to string values, or a string holding the JSON of one";
    let decoded;
    let object = match arg {
        Value::Null => return Ok(OrderedLabels::default()),
        Value::Object(object) => object,
        Value::String(text) => {
            decoded = serde_json::from_str::<Value>(text).map_err(|e| {
                PluginError::invalid_args(format!("arg 'labels': the string is not JSON ({e}); {what_to_give}"))
            })?;
            match &decoded {
                Value::Object(object) => object,
                other => {
                    return Err(PluginError::invalid_args(format!(
                        "arg 'labels': the JSON string holds {}, not an object; {what_to_give}",
                        kind(other)
                    )))
                }
            }
        }
        other => {
            return Err(PluginError::invalid_args(format!("arg 'labels' is {}; {what_to_give}", kind(other))));
        }
    };
    let mut labels = OrderedLabels::default();
    for (key, value) in object {
        let value = value.as_str().ok_or_else(|| {
            PluginError::invalid_args(format!(
                "arg 'labels': the value of '{key}' is {}, not a string; quote it",
                kind(value)
            ))
        })?;
        labels.set(key, value);
    }
    Ok(labels)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn aliases(arg: Option<&Map<String, Value>>) -> Result<Vec<(String, String)>, PluginError> {
    let Some(arg) = arg else {
        return Ok(DEFAULT_ALIASES.iter().map(|(old, new)| (old.to_string(), new.to_string())).collect());
    };
    arg.iter()
        .map(|(old, new)| match new.as_str() {
            Some(new) => Ok((old.clone(), new.to_owned())),
            None => Err(PluginError::invalid_args(format!(
                "arg 'aliases': '{old}' maps to {}; map each old label name to the new name, a string",
                kind(new)
            ))),
        })
        .collect()
}

/// The labels this plugin can generate for the build.
fn generated_labels(workflow: &Workflow) -> BTreeMap<&'static str, String> {
    let mut generated = BTreeMap::new();
    generated.insert("build-date", build_date());
    generated.insert("architecture", architecture().to_owned());
    if let Some(host) = host_name() {
        generated.insert("com.redhat.build-host", host);
    }
    if workflow.source.provider == "git" {
        if let Some(commit) = &workflow.source.commit {
            generated.insert("vcs-type", "git".to_owned());
            generated.insert("vcs-url", without_password(&workflow.source.uri));
            generated.insert("vcs-ref", commit.clone());
        }
    }
    generated
}

/// Now, in UTC, as Python's `datetime.isoformat()` wrote it for atomic-reactor (no zone suffix).
fn build_date() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string().trim_end_matches('Z').to_owned()
}

/// This machine's architecture as `docker info` (the kernel's `uname -m`) names it.
fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "x86" => "i686",
        other => other,
    }
}

fn host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
}

/// `scheme://user:password@host/…` without `:password` (and without `@` when no user is left).
fn without_password(uri: &str) -> String {
    let Some(scheme_end) = uri.find("://").map(|i| i + 3) else {
        return uri.to_owned();
    };
    let rest = &uri[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return uri.to_owned();
    };
    let user = rest[..at].split(':').next().unwrap_or("");
    let host_and_path = &rest[at + 1..];
    if user.is_empty() {
        format!("{}{host_and_path}", &uri[..scheme_end])
    } else {
        format!("{}{user}@{host_and_path}", &uri[..scheme_end])
    }
}

fn add_auto_labels(labels: &mut OrderedLabels, wanted: &[String], generated: &BTreeMap<&'static str, String>) {
    for name in wanted {
        match generated.get(name.as_str()) {
            None => log::warn!("requested automatic label '{name}' is not available"),
            Some(_) if labels.contains(name) => {
                log::info!("label '{name}' is set explicitly, not using the generated value")
            }
            Some(value) => {
                log::info!("automatic label '{name}' is {value:?}");
                labels.set(name, value);
            }
        }
    }
}

/// Later maps win.
fn merged(maps: &[&BTreeMap<String, String>]) -> BTreeMap<String, String> {
    maps.iter().flat_map(|m| m.iter()).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// For each `old → new` alias pair that one of the base image, the Dockerfile and the labels
/// sets: sets the missing one, or, when they differ, the one that should follow the other. The
/// new name wins when it is set explicitly (Dockerfile or labels) or neither is; the old name
/// wins when only it is set explicitly. `explicit` is the Dockerfile's labels and these ones.
fn add_aliases(
    labels: &mut OrderedLabels,
    aliases: &[(String, String)],
    base: &BTreeMap<String, String>,
    explicit: &BTreeMap<String, String>,
) {
    let mut all = merged(&[base, explicit]);
    for (old, new) in aliases {
        let Some(old_value) = all.get(old).cloned() else {
            continue;
        };
        match all.get(new).cloned() {
            None => {
                log::warn!("adding label '{new}' as an alias for label '{old}'");
                labels.set(new, &old_value);
            }
            Some(new_value) if new_value == old_value => {
                log::debug!("alias label '{new}' for '{old}' already exists, skipping");
            }
            Some(new_value) if explicit.contains_key(new) || !explicit.contains_key(old) => {
                log::warn!("adding label '{old}' as an alias for label '{new}'");
                labels.set(old, &new_value);
            }
            Some(_) => {
                log::warn!("adding label '{new}' as an alias for label '{old}'");
                labels.set(new, &old_value);
                // A later alias of the same new name then sees the value it now has.
                all.insert(new.clone(), old_value);
            }
        }
    }
}

/// Gives each group of equal labels one value: the first one set explicitly (Dockerfile or
/// labels) gives its value to the others, except to a base image label that has it already; with
/// none set explicitly, the first one the base image sets gives it to those it lacks.
fn add_equal_labels(
    labels: &mut OrderedLabels,
    groups: &[Vec<String>],
    base: &BTreeMap<String, String>,
    explicit: &BTreeMap<String, String>,
) {
    for group in groups {
        let first_explicit = group.iter().find_map(|l| explicit.get(l));
        let first_in_base = group.iter().filter(|l| !explicit.contains_key(*l)).find_map(|l| base.get(l));
        let (value, from_explicit) = match (first_explicit, first_in_base) {
            (Some(value), _) => (value.clone(), true),
            (None, Some(value)) => (value.clone(), false),
            (None, None) => continue,
        };
        for label in group {
            let set_here = if from_explicit { explicit.contains_key(label) } else { base.contains_key(label) };
            if set_here {
                continue;
            }
            if from_explicit && base.get(label) == Some(&value) {
                log::debug!("skipping label '{label}': the base image sets it to that value");
                continue;
            }
            log::warn!("adding equal label '{label}' with value {value:?}");
            labels.set(label, &value);
        }
    }
}

/// `format` with each `{label}` replaced by its value, `{{` and `}}` by braces.
fn info_url(format: &str, labels: &BTreeMap<String, String>) -> Result<String, PluginError> {
    let bad = |what: String| PluginError::invalid_args(format!("arg 'info_url_format' ({format:?}): {what}"));
    let mut out = String::with_capacity(format.len());
    let mut rest = format;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{").or_else(|| tail.strip_prefix("}}")) {
            out.push_str(&tail[..1]);
            rest = after;
        } else if let Some(field) = tail.strip_prefix('{') {
            let end = field.find('}').ok_or_else(|| bad("a '{' is not closed; write '{{' for a brace".into()))?;
            let name = &field[..end];
            let value = labels.get(name).ok_or_else(|| {
                bad(format!("no label '{name}' is set; set it, or write '{{{{' and '}}}}' for braces"))
            })?;
            out.push_str(value);
            rest = &field[end + 1..];
        } else {
            return Err(bad("a '}' is not opened; write '}}' for a brace".into()));
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The labels that change what the image would get without them.
fn choose<'a>(
    labels: &'a OrderedLabels,
    args: &AddLabelsArgs,
    base: &BTreeMap<String, String>,
    in_dockerfile: &BTreeMap<String, String>,
) -> Vec<(&'a str, &'a str)> {
    let listed = |list: &[String], key: &str| list.iter().any(|k| k == key);
    let mut chosen = Vec::new();
    for (key, value) in labels.iter() {
        let inherited = in_dockerfile.get(key).or_else(|| base.get(key));
        if inherited.is_some_and(|v| v == value) {
            log::info!("label '{key}' is already set to {value:?}");
        } else if in_dockerfile.contains_key(key) && listed(&args.dont_overwrite_if_in_dockerfile, key) {
            log::info!("denying overwrite of label '{key}', using the Dockerfile's");
        } else if base.contains_key(key) && !in_dockerfile.contains_key(key) && listed(&args.dont_overwrite, key) {
            log::info!("denying overwrite of label '{key}', using the base image's");
        } else {
            log::info!("setting label '{key}' to {value:?}");
            chosen.push((key, value));
        }
    }
    chosen
}

/// `LABEL "k"="v" …`, every key and value double-quoted as atomic-reactor wrote them, escaped so
/// that docker reads back exactly these strings.
fn label_line(labels: &[(&str, &str)], escape: char) -> Result<String, PluginError> {
    let quoted = |word: &str| -> Result<String, PluginError> {
        let text = quote(word, escape).map_err(|e| PluginError::invalid_args(format!("label {word:?}: {e}")))?;
        // `quote` leaves plain words bare; they need no escaping inside quotes either.
        Ok(if text.starts_with('"') { text } else { format!("\"{text}\"") })
    };
    let mut line = String::from("LABEL");
    for (key, value) in labels {
        if key.is_empty() || key.contains('=') {
            return Err(PluginError::invalid_args(format!(
                "label name {key:?} cannot be a Dockerfile label: it must be non-empty and hold no '='"
            )));
        }
        line.push(' ');
        line += &quoted(key)?;
        line.push('=');
        line += &quoted(value)?;
    }
    Ok(line)
}

fn append(dockerfile: &Dockerfile, last_stage: usize, line: &str) -> Result<String, PluginError> {
    let mut edit = dockerfile.edit();
    edit.add_instruction_at_end_of_stage(last_stage, line)
        .map_err(|e| PluginError::new(format!("cannot add the labels to the Dockerfile: {e}")))?;
    Ok(edit.render())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor_plugin_api::protocol::Request;
    use reactor_plugin_api::testing::FakeHost;
    use reactor_plugin_api::{ErrorKind, SourceInfo};

    const DOCKERFILE: &str = "FROM fedora\nRUN yum install -y python-django\nCMD blabla";

    fn git_workflow(dockerfile: &str) -> Workflow {
        Workflow {
            dockerfile: dockerfile.into(),
            source: SourceInfo {
                provider: "git".into(),
                uri: "https://builder:s3cret@git.example.com/app.git".into(),
                path: "/tmp/src".into(),
                commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            },
            ..Default::default()
        }
    }

    /// A prebuild fake whose base image `fedora` has `base_labels`.
    fn with_base(dockerfile: &str, base_labels: Value) -> FakeHost {
        FakeHost::new(Phase::Prebuild, git_workflow(dockerfile)).on_inspect(move |name| match name {
            "fedora" => Ok(json!({"Id": "sha256:f0", "Config": {"Labels": base_labels.clone()}})),
            other => Err(PluginError::with_kind(ErrorKind::Host, format!("no such image: {other}"))),
        })
    }

    /// Runs with no automatic labels and no aliases unless `args` sets them.
    fn run(fake: &FakeHost, args: Value) -> Result<Value, PluginError> {
        let mut all = json!({"auto_labels": [], "aliases": {}});
        for (k, v) in args.as_object().expect("args object") {
            all[k] = v.clone();
        }
        fake.run(&AddLabelsInDockerfile, all)
    }

    #[test]
    fn appends_one_quoted_label_line_at_the_end() {
        let fake = with_base(DOCKERFILE, json!({"label1": "base value"}));
        let result = run(&fake, json!({"labels": {"label1": "value 1", "label2": "long value"}})).expect("runs");
        let line = r#"LABEL "label1"="value 1" "label2"="long value""#;
        assert_eq!(result, json!(line));
        assert_eq!(fake.workflow().dockerfile, format!("{DOCKERFILE}\n{line}"));
        assert!(fake.requests().contains(&Request::InspectImage { name: "fedora".into() }));
    }

    #[test]
    fn labels_may_be_a_json_string() {
        let fake = with_base("FROM fedora\n", json!(null));
        let result = run(&fake, json!({"labels": "{\"a\": \"b\"}"})).expect("runs");
        assert_eq!(result, json!(r#"LABEL "a"="b""#));
        assert_eq!(fake.workflow().dockerfile, "FROM fedora\nLABEL \"a\"=\"b\"\n");
    }

    #[test]
    fn anything_else_as_labels_is_refused_naming_what_it_is() {
        let cases = [
            (json!([["a", "b"]]), "arg 'labels' is an array; give an object"),
            (json!("[1]"), "arg 'labels': the JSON string holds an array, not an object"),
            (json!("{nope"), "arg 'labels': the string is not JSON ("),
            (json!({"version": 1}), "arg 'labels': the value of 'version' is a number, not a string; quote it"),
        ];
        for (labels, expected) in cases {
            let fake = with_base("FROM fedora\n", json!(null));
            let err = run(&fake, json!({"labels": labels})).expect_err("refused");
            assert_eq!(err.kind, ErrorKind::InvalidArgs);
            assert!(err.message.starts_with(expected), "{err}");
            assert_eq!(fake.workflow().dockerfile, "FROM fedora\n", "nothing changed");
        }
    }

    #[test]
    fn must_not_fail_by_default_and_has_a_schema_for_every_arg() {
        let manifest = AddLabelsInDockerfile.manifest();
        assert!(!manifest.allowed_to_fail);
        assert_eq!(manifest.phases, [Phase::Prebuild]);
        let properties = manifest.args_schema["properties"].as_object().expect("properties");
        for (name, property) in properties {
            assert!(property["description"].as_str().is_some_and(|d| !d.is_empty()), "{name}");
        }
        assert_eq!(manifest.args_schema["additionalProperties"], json!(false));
        assert_eq!(properties["dont_overwrite"]["default"], json!(["Architecture", "architecture"]));
        assert_eq!(properties["aliases"]["default"]["Build_Host"], json!("com.redhat.build-host"));
        assert!(DEFAULT_ALIASES.windows(2).all(|pair| pair[0].0 < pair[1].0), "kept in key order");
    }

    #[test]
    fn escapes_backslashes_quotes_and_dollars_so_docker_reads_the_exact_value() {
        let fake = with_base("FROM fedora\n", json!(null));
        let result = run(&fake, json!({"labels": {"say \"hi\"": r"C:\dir $HOME"}})).expect("runs");
        let line = r#"LABEL "say \"hi\""="C:\\dir \$HOME""#;
        assert_eq!(result, json!(line));
        // The parser reads it back as docker does.
        let df = Dockerfile::parse(&fake.workflow().dockerfile).expect("parses");
        assert_eq!(df.labels(), [("say \"hi\"".to_owned(), r"C:\dir $HOME".to_owned())]);
    }

    #[test]
    fn follows_the_escape_directive() {
        let dockerfile = "# escape=`\nFROM fedora\n";
        let fake = with_base(dockerfile, json!(null));
        let result = run(&fake, json!({"labels": {"a": "x\"y"}})).expect("runs");
        assert_eq!(result, json!("LABEL \"a\"=\"x`\"y\""));
        let df = Dockerfile::parse(&fake.workflow().dockerfile).expect("parses");
        assert_eq!(df.labels(), [("a".to_owned(), "x\"y".to_owned())]);
    }

    #[test]
    fn skips_labels_the_image_already_gets_with_that_value() {
        let dockerfile = "FROM fedora\nLABEL from_df=df overridden=df\n";
        let fake = with_base(dockerfile, json!({"same": "v", "overridden": "base", "from_df": "base"}));
        // In key order, which serde_json keeps with or without its `preserve_order` feature.
        let labels = json!({"from_df": "df", "new": "n", "overridden": "base", "same": "v"});
        let result = run(&fake, json!({"labels": labels})).expect("runs");
        // `overridden` equals the base's value, but the Dockerfile changed it: it must be set again.
        assert_eq!(result, json!(r#"LABEL "new"="n" "overridden"="base""#));
    }

    #[test]
    fn nothing_to_add_returns_an_empty_string_and_leaves_the_dockerfile() {
        let fake = with_base(DOCKERFILE, json!({"label1": "base value"}));
        assert_eq!(run(&fake, json!({"labels": {"label1": "base value"}})).expect("runs"), json!(""));
        assert_eq!(run(&fake, json!({})).expect("runs"), json!(""));
        assert_eq!(fake.workflow().dockerfile, DOCKERFILE);
        assert!(!fake.requests().iter().any(|r| matches!(r, Request::SetDockerfile { .. })));
    }

    #[test]
    fn dont_overwrite_keeps_the_base_images_value_unless_the_dockerfile_sets_it() {
        let fake = with_base("FROM fedora\n", json!({"label1": "base value"}));
        let result =
            run(&fake, json!({"labels": {"label1": "value 1", "label2": "long value"}, "dont_overwrite": ["label1"]}));
        assert_eq!(result.expect("runs"), json!(r#"LABEL "label2"="long value""#));

        let fake = with_base("FROM fedora\nLABEL label1=df\n", json!({"label1": "base value"}));
        let result = run(&fake, json!({"labels": {"label1": "value 1"}, "dont_overwrite": ["label1"]}));
        assert_eq!(result.expect("runs"), json!(r#"LABEL "label1"="value 1""#));
    }

    #[test]
    fn by_default_the_base_images_architecture_is_kept() {
        let fake = with_base("FROM fedora\n", json!({"architecture": "s390x"}));
        let result = fake.run(&AddLabelsInDockerfile, json!({"auto_labels": ["architecture"]})).expect("runs");
        assert_eq!(result, json!(""));
    }

    #[test]
    fn dont_overwrite_if_in_dockerfile_keeps_the_dockerfiles_distribution_scope() {
        let labels = json!({"labels": {"distribution-scope": "restricted"}});
        let cases = [
            ("FROM fedora\n", json!({"distribution-scope": "public"}), r#"LABEL "distribution-scope"="restricted""#),
            ("FROM fedora\nLABEL distribution-scope=public\n", json!(null), ""),
            ("FROM fedora\nLABEL distribution-scope=restricted\n", json!(null), ""),
        ];
        for (dockerfile, base, expected) in cases {
            let result = run(&with_base(dockerfile, base), labels.clone()).expect("runs");
            assert_eq!(result, json!(expected), "{dockerfile}");
        }
        let mut args = labels.clone();
        args["dont_overwrite_if_in_dockerfile"] = json!([]);
        let result =
            run(&with_base("FROM fedora\nLABEL distribution-scope=public\n", json!(null)), args).expect("runs");
        assert_eq!(result, json!(r#"LABEL "distribution-scope"="restricted""#));
    }

    #[test]
    fn generates_the_automatic_labels_for_a_git_source() {
        let fake = with_base("FROM fedora\n", json!(null));
        let auto = json!(["build-date", "architecture", "vcs-type", "vcs-ref", "vcs-url", "com.redhat.build-host"]);
        fake.run(&AddLabelsInDockerfile, json!({"auto_labels": auto, "aliases": {}})).expect("runs");
        let df = Dockerfile::parse(&fake.workflow().dockerfile).expect("parses");
        let labels: BTreeMap<String, String> = df.labels().iter().cloned().collect();
        assert_eq!(labels["vcs-type"], "git");
        assert_eq!(labels["vcs-ref"], "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(labels["vcs-url"], "https://builder@git.example.com/app.git");
        assert_eq!(labels["architecture"], architecture());
        assert!(!labels["com.redhat.build-host"].is_empty());
        let date = &labels["build-date"];
        // 2026-11-30T08:23:12.123456, in UTC, as atomic-reactor wrote it.
        assert_eq!(date.len(), 26, "{date}");
        assert!(date.as_bytes()[10] == b'T' && date.as_bytes()[19] == b'.', "{date}");
        let parsed = humantime::parse_rfc3339(&format!("{date}Z")).expect("RFC 3339 in UTC");
        let age = std::time::SystemTime::now().duration_since(parsed).expect("not in the future");
        assert!(age.as_secs() < 60, "{date}");
        // The password never reaches a log line either.
        assert!(fake.logs().iter().all(|r| !r.message.contains("s3cret")));
    }

    #[test]
    fn explicit_labels_win_over_generated_ones_and_unknown_ones_are_warned_about() {
        let fake = with_base("FROM fedora\n", json!(null));
        let args = json!({"labels": {"vcs-type": "mine"}, "auto_labels": ["vcs-type", "wrong_label"], "aliases": {}});
        let result = fake.run(&AddLabelsInDockerfile, args).expect("runs");
        assert_eq!(result, json!(r#"LABEL "vcs-type"="mine""#));
        assert!(fake.logs().iter().any(|r| r.message == "requested automatic label 'wrong_label' is not available"));
    }

    #[test]
    fn a_path_source_has_no_vcs_labels() {
        let workflow = Workflow { dockerfile: "FROM scratch\n".into(), ..Default::default() };
        let fake = FakeHost::new(Phase::Prebuild, workflow);
        let args = json!({"auto_labels": ["vcs-type", "vcs-ref", "architecture"], "aliases": {}});
        let result = fake.run(&AddLabelsInDockerfile, args).expect("runs");
        assert_eq!(result, json!(format!(r#"LABEL "architecture"="{}""#, architecture())));
        // scratch has no labels to inspect.
        assert!(!fake.requests().iter().any(|r| matches!(r, Request::InspectImage { .. })));
    }

    #[test]
    fn the_labels_go_to_the_last_stage_whose_base_is_followed_through_aliases() {
        let dockerfile = "FROM fedora AS build\nRUN make\n\nFROM build\nCMD run\n# the end\n";
        let fake = with_base(dockerfile, json!({"from-base": "yes"}));
        let result = run(&fake, json!({"labels": {"from-base": "yes", "mine": "1"}})).expect("runs");
        assert_eq!(result, json!(r#"LABEL "mine"="1""#));
        assert_eq!(fake.workflow().dockerfile, format!("{dockerfile}LABEL \"mine\"=\"1\"\n"));
    }

    #[test]
    fn a_base_image_that_is_not_on_the_engine_fails_saying_what_to_do() {
        let fake = with_base("FROM missing:1\n", json!(null));
        let err = run(&fake, json!({"labels": {"a": "b"}})).expect_err("cannot inspect");
        assert_eq!(
            err.message,
            "cannot inspect the base image missing:1: no such image: missing:1; it must be on the engine before \
             this plugin runs (list pull_base_image before it, or docker pull it)"
        );
    }

    #[test]
    fn a_label_key_docker_cannot_hold_is_refused() {
        let err = run(&with_base("FROM fedora\n", json!(null)), json!({"labels": {"a=b": "c"}})).expect_err("refused");
        assert!(err.message.contains("must be non-empty and hold no '='"), "{err}");
        let err =
            run(&with_base("FROM fedora\n", json!(null)), json!({"labels": {"a": "two\nlines"}})).expect_err("refused");
        assert!(err.message.contains("cannot hold line breaks"), "{err}");
    }

    /// After atomic-reactor's test_add_labels_aliases: (base old, base new, Dockerfile old,
    /// Dockerfile new) → the (old, new) values the image ends with.
    #[test]
    fn aliases_give_old_and_new_names_one_value() {
        type Value4 = (Option<&'static str>, Option<&'static str>, Option<&'static str>, Option<&'static str>);
        type Value2 = (Option<&'static str>, Option<&'static str>);
        let cases: [(Value4, Value2); 16] = [
            ((None, None, None, None), (None, None)),
            ((None, None, None, Some("A")), (None, Some("A"))),
            ((None, None, Some("A"), None), (Some("A"), Some("A"))),
            ((None, None, Some("A"), Some("B")), (Some("B"), Some("B"))),
            ((None, Some("A"), None, Some("B")), (None, Some("B"))),
            ((None, Some("A"), Some("B"), None), (Some("B"), Some("B"))),
            ((None, Some("A"), Some("B"), Some("A")), (Some("A"), Some("A"))),
            ((Some("A"), None, None, None), (Some("A"), Some("A"))),
            ((Some("A"), None, None, Some("B")), (Some("B"), Some("B"))),
            ((Some("A"), None, Some("B"), None), (Some("B"), Some("B"))),
            ((Some("A"), Some("A"), None, Some("B")), (Some("B"), Some("B"))),
            ((Some("A"), Some("B"), None, None), (Some("B"), Some("B"))),
            ((Some("A"), Some("B"), None, Some("A")), (Some("A"), Some("A"))),
            ((Some("A"), Some("B"), Some("A"), None), (Some("A"), Some("A"))),
            ((Some("A"), Some("B"), Some("C"), None), (Some("C"), Some("C"))),
            ((Some("A"), Some("B"), Some("C"), Some("D")), (Some("D"), Some("D"))),
        ];
        for as_arg in [false, true] {
            for ((base_old, base_new, df_old, df_new), expected) in cases {
                let mut base = Map::new();
                base_old.map(|v| base.insert("label_old".into(), json!(v)));
                base_new.map(|v| base.insert("label_new".into(), json!(v)));
                let mut dockerfile = String::from("FROM fedora\n");
                let mut labels = Map::new();
                for (name, value) in [("label_old", df_old), ("label_new", df_new)] {
                    let Some(value) = value else { continue };
                    if as_arg {
                        labels.insert(name.into(), json!(value));
                    } else {
                        dockerfile += &format!("LABEL {name}=\"{value}\"\n");
                    }
                }
                let fake = with_base(&dockerfile, Value::Object(base.clone()));
                let args = json!({"labels": labels, "aliases": {"label_old": "label_new"}});
                run(&fake, args).expect("runs");
                let df = Dockerfile::parse(&fake.workflow().dockerfile).expect("parses");
                let end = |name: &str| {
                    df.labels()
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .or_else(|| base.get(name).and_then(Value::as_str).map(str::to_owned))
                };
                let case = format!("base {base_old:?}/{base_new:?}, given {df_old:?}/{df_new:?} (as arg: {as_arg})");
                assert_eq!(
                    (end("label_old").as_deref(), end("label_new").as_deref()),
                    expected,
                    "{case}\n{}",
                    fake.workflow().dockerfile
                );
            }
        }
    }

    #[test]
    fn default_aliases_add_the_new_names_of_old_labels() {
        let fake = with_base("FROM fedora\nLABEL Name=app Version=1\n", json!({"Vendor": "Acme"}));
        let result = fake.run(&AddLabelsInDockerfile, json!({"auto_labels": []})).expect("runs");
        assert_eq!(result, json!(r#"LABEL "name"="app" "vendor"="Acme" "version"="1""#));
    }

    /// After atomic-reactor's test_add_labels_equal_aliases: (base, Dockerfile) values of
    /// `description` and `io.k8s.description` → what the image ends with.
    #[test]
    fn equal_labels_get_one_value() {
        type Pair = (Option<&'static str>, Option<&'static str>);
        let cases: [(Pair, Pair, Pair); 12] = [
            ((None, None), (None, None), (None, None)),
            ((None, None), (None, Some("A")), (Some("A"), Some("A"))),
            ((Some("A"), None), (None, None), (Some("A"), Some("A"))),
            ((Some("A"), Some("B")), (None, None), (Some("A"), Some("B"))),
            ((None, None), (Some("A"), Some("B")), (Some("A"), Some("B"))),
            ((Some("A"), None), (Some("B"), None), (Some("B"), Some("B"))),
            ((None, Some("A")), (None, Some("B")), (Some("B"), Some("B"))),
            ((Some("A"), Some("C")), (Some("B"), None), (Some("B"), Some("B"))),
            ((Some("A"), Some("C")), (None, Some("B")), (Some("B"), Some("B"))),
            ((Some("A"), Some("C")), (Some("B"), Some("B")), (Some("B"), Some("B"))),
            ((Some("A"), None), (None, Some("A")), (Some("A"), Some("A"))),
            ((None, Some("A")), (Some("A"), None), (Some("A"), Some("A"))),
        ];
        let names = ["description", "io.k8s.description"];
        for (base_values, df_values, expected) in cases {
            let mut base = Map::new();
            let mut dockerfile = String::from("FROM fedora\n");
            for (i, name) in names.iter().enumerate() {
                if let Some(v) = [base_values.0, base_values.1][i] {
                    base.insert(name.to_string(), json!(v));
                }
                if let Some(v) = [df_values.0, df_values.1][i] {
                    dockerfile += &format!("LABEL {name}=\"{v}\"\n");
                }
            }
            let fake = with_base(&dockerfile, Value::Object(base.clone()));
            let result = run(&fake, json!({"equal_labels": [names]})).expect("runs");
            let df = Dockerfile::parse(&fake.workflow().dockerfile).expect("parses");
            let end = |name: &str| {
                df.labels()
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .or_else(|| base.get(name).and_then(Value::as_str).map(str::to_owned))
            };
            assert_eq!(
                (end(names[0]).as_deref(), end(names[1]).as_deref()),
                expected,
                "base {base_values:?}, Dockerfile {df_values:?}: {result}"
            );
        }
    }

    #[test]
    fn info_url_format_sets_the_url_label_from_other_labels() {
        let dockerfile = "FROM fedora\nLABEL label1=one com.redhat.component=comp\n";
        let fake = with_base(dockerfile, json!({"version": "7"}));
        let args = json!({"info_url_format": "https://x/{label1}/{com.redhat.component}/{version}/{{id}}"});
        let result = run(&fake, args).expect("runs");
        assert_eq!(result, json!(r#"LABEL "url"="https://x/one/comp/7/{id}""#));

        let err = run(&fake, json!({"info_url_format": "{nope}"})).expect_err("no such label");
        assert_eq!(
            err.message,
            "arg 'info_url_format' (\"{nope}\"): no label 'nope' is set; set it, or write '{{' and '}}' for braces"
        );
        let err = run(&fake, json!({"info_url_format": "a}b"})).expect_err("unbalanced");
        assert!(err.message.ends_with("a '}' is not opened; write '}}' for a brace"), "{err}");
    }

    #[test]
    fn removes_only_the_password_from_a_url() {
        let cases = [
            ("https://user:pw@host/r.git", "https://user@host/r.git"),
            ("https://:token@host:8443/r.git?x=@y", "https://host:8443/r.git?x=@y"),
            ("https://user@host/r.git", "https://user@host/r.git"),
            ("git@github.com:org/r.git", "git@github.com:org/r.git"),
            ("/srv/repo", "/srv/repo"),
        ];
        for (uri, expected) in cases {
            assert_eq!(without_password(uri), expected);
        }
    }
}
