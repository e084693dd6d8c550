//! Loading plugin modules from shared objects given with `--load-plugin`.
//!
//! Each file is opened with `lib_header_from_path` and then `init_root_module`: abi_stable's
//! `RootModule::load_from_file` caches one module per type, so a second file would silently
//! return the first file's plugins. Modules are never unloaded (abi_stable leaks them on
//! purpose), which suits a one-shot command.

use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibraryError};
use reactor_plugin_api::ffi::PluginModule_Ref;
use reactor_plugin_api::{Manifest, PluginError, INTERFACE_VERSION};

use super::{Implementation, Origin, RegisteredPlugin, Registry};

/// Why a plugin file could not be loaded; each names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("--load-plugin {0}: no such file")]
    NotFound(PathBuf),
    #[error("--load-plugin {path}: not a loadable shared object ({reason})")]
    NotSharedObject { path: PathBuf, reason: String },
    #[error("--load-plugin {0}: a shared object, but not a reactor plugin (it exports no plugin module; build it as a cdylib with reactor_plugin_api::export_plugins!)")]
    NotPlugin(PathBuf),
    #[error("--load-plugin {path}: built against reactor-plugin-api {found}, which this reactor (reactor-plugin-api {ours}) cannot load; rebuild the plugin against reactor-plugin-api {ours}")]
    Incompatible { path: PathBuf, found: String, ours: &'static str },
    #[error("--load-plugin {path}: {reason}")]
    Broken { path: PathBuf, reason: String },
}

impl Registry {
    /// Loads every file, adding its plugins; on any failure reports all of them.
    pub fn load_files(&mut self, paths: &[PathBuf]) -> Result<(), Vec<LoadError>> {
        let mut errors = Vec::new();
        for path in paths {
            match load_module(path) {
                Ok(plugins) => {
                    for plugin in plugins {
                        log::debug!(
                            "loaded plugin '{}' {} (reactor-plugin-api {}) from {}",
                            plugin.manifest.key,
                            plugin.manifest.version,
                            plugin.interface_version,
                            path.display()
                        );
                        self.add(plugin);
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn load_module(path: &Path) -> Result<Vec<RegisteredPlugin>, LoadError> {
    if !path.exists() {
        return Err(LoadError::NotFound(path.to_path_buf()));
    }
    // dlopen resolves a bare file name through the library path, not the current directory;
    // messages name the file as the user gave it.
    let given = path.to_path_buf();
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let header = lib_header_from_path(&path).map_err(|e| match e {
        LibraryError::OpenError { err, .. } => {
            LoadError::NotSharedObject { path: given.clone(), reason: err.to_string() }
        }
        LibraryError::GetSymbolError { .. } => LoadError::NotPlugin(given.clone()),
        other => LoadError::Broken { path: given.clone(), reason: first_line(&other.to_string()) },
    })?;
    let found = header.version_strings().version.to_string();
    let module = header.init_root_module::<PluginModule_Ref>().map_err(|e| {
        // abi_stable's own message is a layout dump hundreds of lines long: keep it for -v.
        log::debug!("loading {}: {e}", path.display());
        match e {
            LibraryError::IncompatibleVersionNumber { .. }
            | LibraryError::AbiInstability(_)
            | LibraryError::InvalidAbiHeader(_) => {
                LoadError::Incompatible { path: given.clone(), found: found.clone(), ours: INTERFACE_VERSION }
            }
            other => LoadError::Broken { path: given.clone(), reason: first_line(&other.to_string()) },
        }
    })?;
    let broken = |reason: String| LoadError::Broken { path: given.clone(), reason };
    let interface_version = (module.interface_version())().to_string();
    let manifests = (module.manifests())()
        .into_result()
        .map_err(|e| broken(format!("could not list its plugins: {}", PluginError::from_json(e.as_str()))))?;
    let manifests: Vec<Manifest> = serde_json::from_str(manifests.as_str())
        .map_err(|e| broken(format!("its plugin manifests are not readable: {e}")))?;
    if manifests.is_empty() {
        return Err(broken("the module exports no plugins".to_owned()));
    }
    Ok(manifests
        .into_iter()
        .map(|manifest| RegisteredPlugin {
            manifest,
            origin: Origin::File(path.clone()),
            interface_version: interface_version.clone(),
            implementation: Implementation::Loaded(module),
        })
        .collect())
}

fn first_line(text: &str) -> String {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or(text).trim().to_owned()
}
