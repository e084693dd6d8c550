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

/// Every plugin available to a build, by key.
#[derive(Default)]
pub struct Registry {
    plugins: BTreeMap<String, Arc<RegisteredPlugin>>,
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

    /// The keys of the plugins that may run in `phase`.
    pub fn keys_for(&self, phase: Phase) -> Vec<&str> {
        self.plugins.values().filter(|p| p.manifest.phases.contains(&phase)).map(|p| p.manifest.key.as_str()).collect()
    }
}
