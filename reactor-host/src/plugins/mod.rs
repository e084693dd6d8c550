//! Plugins as the host knows them: the registry of built-in and loaded plugins by key, and the
//! plan that a build.json's plugin lists resolve to.
//!
//! Built-ins and loaded plugins implement the same [`Plugin`] trait; both run through a
//! [`HostCtx`], so a loaded plugin can do all that a built-in can.

pub mod builtin;
pub mod context;
pub mod load;
pub mod runner;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use abi_stable::std_types::RStr;
use reactor_plugin_api::ffi::{HostCtx, PluginModule_Ref};
use reactor_plugin_api::protocol::{self, HostHello, ModuleRequest};
use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError};
use serde_json::Value;

use crate::build_json::{describe, BuildRequest, PluginEntry};

/// Where a plugin comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    Builtin,
    File(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Builtin => f.write_str("built-in"),
            Origin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// What this reactor says of itself to plugins: at the handshake and with every run.
pub fn host_hello() -> HostHello {
    HostHello {
        reactor_version: env!("CARGO_PKG_VERSION").to_owned(),
        api_version: reactor_plugin_api::API_VERSION.to_owned(),
        protocol: protocol::PROTOCOL,
        features: protocol::FEATURES.iter().map(|f| f.name.to_owned()).collect(),
    }
}

enum Implementation {
    Builtin(Box<dyn Plugin>),
    /// The plugin at `index` in a loaded module's list.
    Loaded {
        module: PluginModule_Ref,
        index: usize,
    },
}

/// A plugin the host can run.
pub struct RegisteredPlugin {
    pub manifest: Manifest,
    pub origin: Origin,
    /// The reactor-plugin-api version it was built against.
    pub api_version: String,
    implementation: Implementation,
}

impl RegisteredPlugin {
    /// Runs the plugin on this (blocking) thread. Panics never escape: a loaded module catches
    /// its own, and a built-in's are caught here.
    pub fn invoke(&self, host: HostCtx, phase: Phase, args: &Value) -> Result<Value, PluginError> {
        match &self.implementation {
            Implementation::Builtin(plugin) => reactor_plugin_api::__private::guard(|| {
                plugin.run(&Context::new(host, host_hello()), Args::new(args.clone()))
            }),
            Implementation::Loaded { module, index } => {
                let request = ModuleRequest::Run {
                    index: *index,
                    key: self.manifest.key.clone(),
                    phase,
                    args: args.clone(),
                    host: host_hello(),
                };
                let request = serde_json::to_string(&request).map_err(PluginError::from)?;
                let outcome = (module.call())(host, RStr::from(request.as_str()));
                match outcome.into_result() {
                    Ok(json) => serde_json::from_str(json.as_str())
                        .map_err(|e| PluginError::new(format!("returned a result that is not JSON: {e}"))),
                    Err(error) => Err(PluginError::from_json(error.as_str())),
                }
            }
        }
    }
}

/// Every plugin available to a build, by key.
#[derive(Default)]
pub struct Registry {
    plugins: BTreeMap<String, Arc<RegisteredPlugin>>,
}

impl Registry {
    /// A registry holding the built-in plugins.
    pub fn with_builtins() -> Registry {
        let mut registry = Registry::default();
        for plugin in builtin::all() {
            registry.add(RegisteredPlugin {
                manifest: plugin.manifest(),
                origin: Origin::Builtin,
                api_version: reactor_plugin_api::API_VERSION.to_owned(),
                implementation: Implementation::Builtin(plugin),
            });
        }
        registry
    }

    /// Adds a plugin; one with the same key as an earlier one replaces it (the last loaded wins,
    /// as in atomic-reactor), with a note in the log.
    fn add(&mut self, plugin: RegisteredPlugin) {
        let key = plugin.manifest.key.clone();
        if let Some(earlier) = self.plugins.get(&key) {
            log::info!("plugin '{key}' from {} replaces the one from {}", plugin.origin, earlier.origin);
        }
        self.plugins.insert(key, Arc::new(plugin));
    }

    /// Every plugin, by key.
    pub fn all(&self) -> impl Iterator<Item = &Arc<RegisteredPlugin>> {
        self.plugins.values()
    }

    pub fn get(&self, key: &str) -> Option<&Arc<RegisteredPlugin>> {
        self.plugins.get(key)
    }

    /// The keys of the plugins that may run in `phase`.
    pub fn keys_for(&self, phase: Phase) -> Vec<&str> {
        self.plugins.values().filter(|p| p.manifest.phases.contains(&phase)).map(|p| p.manifest.key.as_str()).collect()
    }
}

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
        for (&phase, entries) in &request.plugins {
            let mut planned = Vec::new();
            for (index, entry) in entries.iter().enumerate() {
                let place = format!("/{}/{index}", phase.build_json_key());
                let Some(plugin) = registry.get(&entry.name) else {
                    if entry.required {
                        let available = registry.keys_for(phase);
                        let available = if available.is_empty() { "none".to_owned() } else { available.join(", ") };
                        problems.push(format!(
                            "{place}: no such plugin '{}' (available for {phase}: {available}; load others with --load-plugin, or set \"required\": false)",
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
                planned.push(PlannedPlugin { entry: entry.clone(), plugin: plugin.clone() });
            }
            plan.phases.insert(phase, planned);
        }
        // No builder listed: the engine builds, as atomic-reactor's default docker_api does.
        if plan.phase(Phase::Buildstep).is_empty() {
            match registry.get(builtin::DEFAULT_BUILDER) {
                Some(plugin) => {
                    let entry = PluginEntry {
                        name: builtin::DEFAULT_BUILDER.to_owned(),
                        args: Value::Object(Default::default()),
                        required: true,
                        is_allowed_to_fail: Some(false),
                    };
                    plan.phases.insert(Phase::Buildstep, vec![PlannedPlugin { entry, plugin: plugin.clone() }]);
                }
                None => problems.push(format!("the default builder '{}' is not available", builtin::DEFAULT_BUILDER)),
            }
        }
        if problems.is_empty() {
            Ok(plan)
        } else {
            Err(problems)
        }
    }

    pub fn phase(&self, phase: Phase) -> &[PlannedPlugin] {
        self.phases.get(&phase).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// How `args` break the manifest's schema, as (pointer within args, problem).
fn args_problems(manifest: &Manifest, args: &Value) -> Vec<(String, String)> {
    match jsonschema::validator_for(&manifest.args_schema) {
        Ok(validator) => {
            validator.iter_errors(args).map(|e| (e.instance_path().as_str().to_owned(), e.to_string())).collect()
        }
        Err(e) => vec![(String::new(), format!("the plugin's args schema is invalid: {e}"))],
    }
}
