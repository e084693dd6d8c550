//! The registry: every plugin this reactor has, built-in and loaded (see [`super::load`]), by
//! key, and how to run one of them across the boundary.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use abi_stable::std_types::RStr;
use reactor_plugin_api::ffi::{HostCtx, PluginModule_Ref};
use reactor_plugin_api::protocol::{self, HostHello, ModuleRequest};
use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError};
use serde_json::Value;

use super::isolate::Worker;

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
    /// The plugin at `index` in the list of a module that runs in a worker process.
    Isolated {
        worker: Arc<Worker>,
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

    /// Whether it runs in a worker process (`--isolate-plugins` or the entry's `isolate`).
    pub fn is_isolated(&self) -> bool {
        matches!(self.implementation, Implementation::Isolated { .. })
    }

    /// Runs the plugin on this (blocking) thread. Panics never escape: a loaded module catches
    /// its own, and a built-in's are caught here. An isolated plugin that kills its process
    /// fails with a line saying how.
    pub fn invoke(&self, host: HostCtx, phase: Phase, args: &Value) -> Result<Value, PluginError> {
        let request = |index: usize| {
            let request = ModuleRequest::Run {
                index,
                key: self.manifest.key.clone(),
                phase,
                args: args.clone(),
                host: host_hello(),
            };
            serde_json::to_string(&request).map_err(PluginError::from)
        };
        match &self.implementation {
            Implementation::Builtin(plugin) => reactor_plugin_api::__private::guard(|| {
                plugin.run(&Context::new(host, host_hello()), Args::new(args.clone()))
            }),
            Implementation::Loaded { module, index } => {
                let request = request(*index)?;
                let outcome = (module.call())(host, RStr::from(request.as_str()));
                match outcome.into_result() {
                    Ok(json) => decode_result(json.as_str()),
                    Err(error) => Err(PluginError::from_json(error.as_str())),
                }
            }
            Implementation::Isolated { worker, index } => match worker.run(&host, &request(*index)?) {
                Ok(json) => decode_result(&json),
                Err(error) => Err(PluginError::from_json(&error)),
            },
        }
    }

    /// The plugin was abandoned after the cancellation's grace period: an isolated one's
    /// process is killed (an in-process one cannot be stopped, and is left to itself).
    pub fn abandon(&self) {
        if let Implementation::Isolated { worker, .. } = &self.implementation {
            worker.kill();
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

pub(crate) fn decode_result(json: &str) -> Result<Value, PluginError> {
    serde_json::from_str(json).map_err(|e| PluginError::new(format!("returned a result that is not JSON: {e}")))
}

/// Every plugin available to a build, by key.
#[derive(Default)]
pub struct Registry {
    plugins: BTreeMap<String, Arc<RegisteredPlugin>>,
    /// Plugins found in plugin directories and not opened, as the build does not use them: by
    /// key, their phases (for the "available" list of a message).
    not_opened: BTreeMap<String, Vec<Phase>>,
    unloaded: Vec<UnloadedFile>,
    /// Whether modules loaded from now on run in worker processes (`--isolate-plugins`).
    isolate: bool,
    /// The workers of in-process modules some of whose plugins a build.json entry isolates, by
    /// file: one per module, as with `--isolate-plugins`.
    workers: Mutex<BTreeMap<PathBuf, Arc<Worker>>>,
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

    /// Makes the modules loaded from now on run in worker processes (`--isolate-plugins`).
    pub fn isolate_loaded_plugins(&mut self, isolate: bool) {
        self.isolate = isolate;
    }

    pub(super) fn isolates_loaded_plugins(&self) -> bool {
        self.isolate
    }

    /// `plugin`, run in a worker process (a build.json entry's `"isolate": true`). A built-in,
    /// which has no file to load elsewhere, and an already isolated plugin are returned as they are.
    pub fn isolated(&self, plugin: &Arc<RegisteredPlugin>) -> Arc<RegisteredPlugin> {
        let (Implementation::Loaded { index, .. }, Origin::File(file)) = (&plugin.implementation, &plugin.origin)
        else {
            return plugin.clone();
        };
        let worker = lock(&self.workers).entry(file.clone()).or_insert_with(|| Arc::new(Worker::new(file))).clone();
        Arc::new(RegisteredPlugin {
            manifest: plugin.manifest.clone(),
            origin: plugin.origin.clone(),
            api_version: plugin.api_version.clone(),
            implementation: Implementation::Isolated { worker, index: *index },
        })
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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
