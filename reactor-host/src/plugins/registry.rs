//! The registry: every plugin this reactor has, built-in and loaded (see [`super::load`]), by
//! key, and how to run one of them across the boundary.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use abi_stable::std_types::RStr;
use reactor_plugin_api::ffi::{HostCtx, PluginModule_Ref};
use reactor_plugin_api::protocol::{self, HostHello, ModuleRequest};
use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError};
use serde_json::Value;

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

pub(super) enum Implementation {
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
    pub(super) implementation: Implementation,
}

impl RegisteredPlugin {
    /// Whether this is one of reactor's own built-ins (not replaced by a loaded plugin).
    pub fn is_builtin(&self) -> bool {
        matches!(self.implementation, Implementation::Builtin(_))
    }

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

/// A plugin file from a plugin directory that did not load, or was refused.
#[derive(Clone, Debug, PartialEq)]
pub struct UnloadedFile {
    pub file: PathBuf,
    pub reason: String,
    /// The keys it holds, when known (from its package manifest, the manifest cache, or a
    /// handshake that got as far as listing them).
    pub keys: Vec<String>,
}

/// Every plugin available to a build, by key.
#[derive(Default)]
pub struct Registry {
    plugins: BTreeMap<String, Arc<RegisteredPlugin>>,
    /// Plugins found in plugin directories and not opened, as the build does not use them: by
    /// key, their phases (for the "available" list of a message).
    not_opened: BTreeMap<String, Vec<Phase>>,
    unloaded: Vec<UnloadedFile>,
}

impl Registry {
    /// A registry holding the built-in plugins.
    pub fn with_builtins() -> Registry {
        let mut registry = Registry::default();
        for plugin in reactor_builtins::all() {
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
    pub(super) fn add(&mut self, plugin: RegisteredPlugin) {
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

    /// The keys of the plugins that may run in `phase`, found ones that were not opened included.
    pub fn keys_for(&self, phase: Phase) -> Vec<&str> {
        let mut keys: Vec<&str> = self
            .plugins
            .values()
            .filter(|p| p.manifest.phases.contains(&phase))
            .map(|p| p.manifest.key.as_str())
            .chain(self.not_opened.iter().filter(|(_, phases)| phases.contains(&phase)).map(|(key, _)| key.as_str()))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Notes a plugin found in a plugin directory that the build does not open.
    pub(super) fn note_not_opened(&mut self, key: &str, phases: &[Phase]) {
        self.not_opened.insert(key.to_owned(), phases.to_vec());
    }

    /// Notes a file of a plugin directory that did not load.
    pub(super) fn note_unloaded(&mut self, file: UnloadedFile) {
        if !self.unloaded.contains(&file) {
            self.unloaded.push(file);
        }
    }

    /// Why `key` is not available when a file that holds it did not load: "FILE did not load:
    /// REASON". A file whose keys are unknown is taken to hold the key it is named after
    /// (`lib<key>.so`).
    pub fn why_unavailable(&self, key: &str) -> Option<String> {
        let named = format!("lib{key}.so");
        self.unloaded
            .iter()
            .find(|u| {
                u.keys.iter().any(|k| k == key)
                    || (u.keys.is_empty() && u.file.file_name().is_some_and(|n| n == named.as_str()))
            })
            .map(|u| format!("its file {} did not load: {}", u.file.display(), u.reason))
    }

    /// The files that did not load before telling their keys: any of them may hold a missing key.
    pub fn unloaded_without_keys(&self) -> impl Iterator<Item = &UnloadedFile> {
        self.unloaded.iter().filter(|u| u.keys.is_empty())
    }
}
