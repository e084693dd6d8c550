//! The plan: what a build.json's plugin lists resolve to against the registry, checked before
//! anything runs, with atomic-reactor's default plugins added here and nowhere else.

use std::collections::BTreeMap;
use std::sync::Arc;

use reactor_plugin_api::protocol::Protocol;
use reactor_plugin_api::{Manifest, Phase};
use serde_json::{json, Value};

use super::registry::{RegisteredPlugin, Registry};
use crate::build_json::{describe, BuildRequest, PluginEntry, Registries};

/// One plugin to run, resolved and checked.
#[derive(Clone)]
pub struct PlannedPlugin {
    pub entry: PluginEntry,
    pub plugin: Arc<RegisteredPlugin>,
}

impl PlannedPlugin {
    /// Whether a failure of this run is tolerated: the entry says, else the manifest.
    pub fn allowed_to_fail(&self) -> bool {
        self.entry.is_allowed_to_fail.unwrap_or(self.plugin.manifest.allowed_to_fail)
    }
}

/// The protocol that brought the context overlay (`Workflow::source_context_dir`).
const OVERLAY_PROTOCOL: Protocol = Protocol { major: 1, minor: 2 };

/// Whether a plugin built against reactor-plugin-api `api_version` predates the context overlay.
/// A version that does not read as `major.minor…` is taken as old: copying is always safe.
fn predates_overlay(api_version: &str) -> bool {
    let mut parts = api_version.split('.');
    let major_minor = parts.next().zip(parts.next()).map(|(major, minor)| format!("{major}.{minor}"));
    major_minor.and_then(|text| Protocol::parse(&text)).is_none_or(|protocol| protocol < OVERLAY_PROTOCOL)
}

/// The plugins each phase runs, resolved against the registry.
#[derive(Clone, Default)]
pub struct Plan {
    pub phases: BTreeMap<Phase, Vec<PlannedPlugin>>,
}

impl Plan {
    /// Resolves every entry of `request` and checks its args against the plugin's schema,
    /// before anything runs. Returns every problem at once, each naming its place in the file.
    pub fn resolve(request: &BuildRequest, registry: &Registry) -> Result<Plan, Vec<String>> {
        let mut plan = Plan::default();
        let mut problems = Vec::new();
        for phase in Phase::ALL {
            let defaults;
            let entries = match request.plugins.get(&phase) {
                Some(entries) => entries,
                None => {
                    defaults = default_entries(phase, &request.registries);
                    &defaults
                }
            };
            let mut planned = Vec::new();
            for (index, entry) in entries.iter().enumerate() {
                let place = format!("/{}/{index}", phase.build_json_key());
                let Some(plugin) = registry.get(&entry.name) else {
                    if let Some(why) = registry.why_unavailable(&entry.name) {
                        if entry.required {
                            problems.push(format!("{place}: plugin '{}' is not available: {why}", entry.name));
                        } else {
                            log::warn!(
                                "plugin '{}' is not available ({why}), skipping it ({place} has \"required\": false)",
                                entry.name
                            );
                        }
                    } else if entry.required {
                        let available = registry.keys_for(phase);
                        let available = if available.is_empty() { "none".to_owned() } else { available.join(", ") };
                        let unloaded: Vec<String> = registry
                            .unloaded_without_keys()
                            .map(|u| format!("{} ({})", u.file.display(), u.reason))
                            .collect();
                        let unloaded = if unloaded.is_empty() {
                            String::new()
                        } else {
                            format!("; these plugin files did not load and may hold it: {}", unloaded.join("; "))
                        };
                        problems.push(format!(
                            "{place}: no such plugin '{}' (available for {phase}: {available}; load others with --load-plugin or --plugin-dir, or set \"required\": false{unloaded})",
                            entry.name
                        ));
                    } else {
                        log::warn!(
                            "plugin '{}' requested but not available, skipping it ({place} has \"required\": false)",
                            entry.name
                        );
                    }
                    continue;
                };
                if !plugin.manifest.phases.contains(&phase) {
                    let phases: Vec<&str> = plugin.manifest.phases.iter().map(|p| p.name()).collect();
                    problems.push(format!(
                        "{place}: plugin '{}' cannot run in {phase} (it runs in: {})",
                        entry.name,
                        phases.join(", ")
                    ));
                    continue;
                }
                if let Some(problem) = substituted_arg_problem(request, phase, index, &plugin.manifest) {
                    problems.push(format!("{place}/args: {problem} (plugin '{}')", entry.name));
                    continue;
                }
                let arg_problems = args_problems(&plugin.manifest, &entry.args);
                if !arg_problems.is_empty() {
                    for (pointer, problem) in arg_problems {
                        problems.push(format!(
                            "{} (plugin '{}')",
                            describe(&format!("{place}/args{pointer}"), &problem),
                            entry.name
                        ));
                    }
                    continue;
                }
                let plugin = match entry.isolate {
                    true if plugin.is_builtin() => {
                        log::warn!(
                            "{place}: plugin '{}' is built into reactor: \"isolate\" applies to loaded plugins only, so it runs in-process",
                            entry.name
                        );
                        plugin.clone()
                    }
                    true => registry.isolated(plugin),
                    false => plugin.clone(),
                };
                planned.push(PlannedPlugin { entry: entry.clone(), plugin });
            }
            plan.phases.insert(phase, planned);
        }
        // No builder listed (or an empty list): the engine builds, as atomic-reactor's default
        // docker_api does.
        if plan.phase(Phase::Buildstep).is_empty() {
            match registry.get(reactor_builtins::DEFAULT_BUILDER) {
                Some(plugin) => {
                    let entry = PluginEntry {
                        name: reactor_builtins::DEFAULT_BUILDER.to_owned(),
                        args: Value::Object(Default::default()),
                        required: true,
                        is_allowed_to_fail: Some(false),
                        isolate: false,
                    };
                    plan.phases.insert(Phase::Buildstep, vec![PlannedPlugin { entry, plugin: plugin.clone() }]);
                }
                None => problems
                    .push(format!("the default builder '{}' is not available", reactor_builtins::DEFAULT_BUILDER)),
            }
        }
        if problems.is_empty() {
            Ok(plan)
        } else {
            Err(problems)
        }
    }

    /// The first plugin of prebuild or buildstep built against a reactor-plugin-api older than
    /// the context overlay (protocol 1.2): it may write into the context directory it is given,
    /// which then has to be a writable copy of the source (`source::Layout::Writable`). The
    /// built-ins are always current; plugins after the build only read.
    pub fn predates_overlay(&self) -> Option<&PlannedPlugin> {
        [Phase::Prebuild, Phase::Buildstep]
            .into_iter()
            .flat_map(|phase| self.phase(phase))
            .find(|planned| !planned.plugin.is_builtin() && predates_overlay(&planned.plugin.api_version))
    }

    /// The plan as `--dry-run` prints it.
    pub fn describe(&self, request: &BuildRequest) -> String {
        let mut out = format!("plan for {}\n", request.origin);
        out += &format!("image: {}\n", request.image);
        let source = &request.source;
        out += &format!(
            "source: {} {} ({}), dockerfile_path: {}\n",
            source.provider.name(),
            source.uri,
            source.commit.as_deref().map_or("default branch".to_owned(), |c| format!("commit {c}")),
            source.dockerfile_path.as_deref().filter(|p| !p.is_empty()).unwrap_or("(the root)"),
        );
        for phase in Phase::ALL {
            out += &format!("{phase}:\n");
            let planned = self.phase(phase);
            if planned.is_empty() {
                out += "  (none)\n";
            }
            for (i, p) in planned.iter().enumerate() {
                let failure =
                    if phase == Phase::Buildstep || !p.allowed_to_fail() { "must not fail" } else { "allowed to fail" };
                let isolated = if p.plugin.is_isolated() { ", isolated" } else { "" };
                out += &format!(
                    "  {}. {} {} ({}{isolated}), {failure}\n     args: {}\n",
                    i + 1,
                    p.plugin.manifest.key,
                    p.plugin.manifest.version,
                    p.plugin.origin,
                    crate::secrets::redact_args(&p.plugin.manifest.args_schema, &p.entry.args)
                );
            }
        }
        out
    }

    /// Every string in a secret arg of a planned plugin, to mask (see `secrets`).
    pub fn secret_strings(&self) -> Vec<String> {
        self.phases
            .values()
            .flatten()
            .flat_map(|p| crate::secrets::secret_strings(&p.plugin.manifest.args_schema, &p.entry.args))
            .collect()
    }

    pub fn phase(&self, phase: Phase) -> &[PlannedPlugin] {
        self.phases.get(&phase).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Every plugin entry `request` makes, in phase order: those it lists, the default ones it
/// implies, and the default builder when it lists none. A build opens only these keys' files.
pub fn requested_entries(request: &BuildRequest) -> Vec<PluginEntry> {
    let mut entries = Vec::new();
    for phase in Phase::ALL {
        match request.plugins.get(&phase) {
            Some(listed) => entries.extend(listed.iter().cloned()),
            None => entries.extend(default_entries(phase, &request.registries)),
        }
    }
    if request.plugins.get(&Phase::Buildstep).is_none_or(Vec::is_empty) {
        entries.push(PluginEntry {
            name: reactor_builtins::DEFAULT_BUILDER.to_owned(),
            args: Value::Object(Default::default()),
            required: true,
            is_allowed_to_fail: Some(false),
            isolate: false,
        });
    }
    entries
}

/// The plugins a phase runs when the build.json does not list it, as atomic-reactor's
/// `api._prepare_build_json` added them: `target_registries` adds a postbuild `tag_and_push`,
/// `parent_registry` a prebuild `pull_base_image` (unless `dont_pull_base_image`).
fn default_entries(phase: Phase, registries: &Registries) -> Vec<PluginEntry> {
    let entry = |name: &str, args: Value| PluginEntry {
        name: name.to_owned(),
        args,
        required: true,
        is_allowed_to_fail: None,
        isolate: false,
    };
    match phase {
        Phase::Postbuild if !registries.target.is_empty() => {
            let each: serde_json::Map<String, Value> = registries
                .target
                .iter()
                .map(|r| (r.clone(), json!({"insecure": registries.target_insecure})))
                .collect();
            vec![entry("tag_and_push", json!({"registries": each}))]
        }
        Phase::Prebuild if !registries.dont_pull_base_image => match &registries.parent {
            Some(parent) => vec![entry(
                "pull_base_image",
                json!({"parent_registry": parent, "parent_registry_insecure": registries.parent_insecure}),
            )],
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Why an arg that a `--substitute` added to entry `index` of `phase` is not one the plugin
/// takes, with the nearest it does take; `None` when it is, or when its schema lists no args
/// (it then takes any).
fn substituted_arg_problem(request: &BuildRequest, phase: Phase, index: usize, manifest: &Manifest) -> Option<String> {
    let properties = manifest.args_schema.get("properties").and_then(Value::as_object)?;
    let added = request
        .substituted_args
        .iter()
        .find(|s| s.phase == phase && s.index == index && !properties.contains_key(&s.arg))?;
    let near = crate::build_json::did_you_mean(&added.arg, properties.keys().map(String::as_str));
    Some(format!("--substitute {}: the plugin has no arg `{}`{near}", added.given, added.arg))
}

/// How `args` break the manifest's schema, as (pointer within args, problem). A problem never
/// quotes a secret arg's value (the validator's messages quote the value they refuse).
pub(crate) fn args_problems(manifest: &Manifest, args: &Value) -> Vec<(String, String)> {
    match jsonschema::validator_for(&manifest.args_schema) {
        Ok(validator) => {
            let redacted = crate::secrets::redact_args(&manifest.args_schema, args);
            let mut secrets = crate::secrets::secret_strings(&manifest.args_schema, args);
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
            let hide = |pointer: &str, text: String| {
                // The refused value itself, when secret (a number too), then any secret string
                // in a message about a larger value.
                let text = match (args.pointer(pointer), redacted.pointer(pointer)) {
                    (Some(value), Some(shown)) if value != shown => text.replace(&value.to_string(), "\"***\""),
                    _ => text,
                };
                secrets.iter().filter(|s| !s.is_empty()).fold(text, |text, secret| {
                    text.replace(&Value::String(secret.clone()).to_string(), "\"***\"").replace(secret.as_str(), "***")
                })
            };
            validator
                .iter_errors(args)
                .map(|e| {
                    let pointer = e.instance_path().as_str().to_owned();
                    let problem = hide(&pointer, e.to_string());
                    (pointer, problem)
                })
                .collect()
        }
        Err(e) => vec![(String::new(), format!("the plugin's args schema is invalid: {e}"))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_problems_never_quote_a_secret_value() {
        let manifest = Manifest::new("p", [Phase::Exit], "1.0.0").args_schema(serde_json::json!({
            "type": "object",
            "properties": {
                "token": {"type": "string", "minLength": 40, "writeOnly": true},
                "pin": {"type": "string", "x-secret": true},
                "name": {"type": "string", "minLength": 10}
            }
        }));
        let args = serde_json::json!({"token": "short-Secret-1", "pin": 12345678, "name": "shown"});
        let problems = args_problems(&manifest, &args);
        assert_eq!(problems.len(), 3, "{problems:?}");
        let text = format!("{problems:?}");
        assert!(!text.contains("short-Secret-1") && !text.contains("12345678"), "{text}");
        assert!(text.contains("\\\"***\\\" is shorter than 40 characters"), "{text}");
        assert!(text.contains("shown"), "other values are still quoted: {text}");
    }

    #[test]
    fn plugins_built_before_protocol_1_2_predate_the_overlay() {
        for old in ["1.0.0", "1.1.7", "0.9.0", "", "garbage", "1"] {
            assert!(predates_overlay(old), "{old}");
        }
        for current in ["1.2.0", "1.2.0-rc.1", "1.10.0", reactor_plugin_api::API_VERSION] {
            assert!(!predates_overlay(current), "{current}");
        }
    }

    #[test]
    fn registries_add_atomic_reactors_default_plugins() {
        let registries = Registries {
            target: vec!["r1:5000".into(), "r2".into()],
            target_insecure: true,
            parent: Some("p:5000".into()),
            ..Default::default()
        };
        let post = default_entries(Phase::Postbuild, &registries);
        assert_eq!(post.len(), 1);
        assert_eq!(post[0].name, "tag_and_push");
        assert_eq!(post[0].args, json!({"registries": {"r1:5000": {"insecure": true}, "r2": {"insecure": true}}}));
        let pre = default_entries(Phase::Prebuild, &registries);
        assert_eq!(pre[0].name, "pull_base_image");
        assert_eq!(pre[0].args, json!({"parent_registry": "p:5000", "parent_registry_insecure": false}));
        assert!(default_entries(Phase::Exit, &registries).is_empty());

        let no_pull = Registries { dont_pull_base_image: true, ..registries };
        assert!(default_entries(Phase::Prebuild, &no_pull).is_empty());
        assert!(default_entries(Phase::Postbuild, &Registries::default()).is_empty());
    }
}
