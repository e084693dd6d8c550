//! Loading plugin modules from shared objects given with `--load-plugin`, and checking them
//! before anything runs.
//!
//! A file is opened with `lib_header_from_path`, its `reactor-plugin-api` major compared with
//! ours (so another major gets a message of ours, not abi_stable's layout dump), then
//! `init_root_module` checks the frozen layout, and the handshake gives the module's manifests.
//! Each manifest is checked: a non-empty key, unique within the module, at least one phase, an
//! args schema that compiles, and every required host feature offered.
//!
//! `RootModule::load_from_file` is not used: it caches one module per type, so a second file
//! would silently return the first file's plugins. Modules are never unloaded (abi_stable leaks
//! them on purpose), which suits a one-shot command.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::sabi_types::VersionNumber;
use abi_stable::std_types::RStr;
use reactor_plugin_api::ffi::PluginModule_Ref;
use reactor_plugin_api::protocol::{HostHello, ModuleHello, PROTOCOL};
use reactor_plugin_api::{PluginError, API_VERSION};

use super::elf::{self, ElfProblem};
use super::isolate::{StartError, Worker};
use super::registry::{host_hello, Implementation, Origin, RegisteredPlugin, Registry};

const REACTOR: &str = env!("CARGO_PKG_VERSION");

/// Why a plugin file could not be loaded; each names the file, and where it matters the
/// plugin's and reactor's versions and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("--load-plugin {0}: no such file; check the path, or build the plugin first")]
    NotFound(PathBuf),
    #[error(
        "--load-plugin {path}: not a loadable shared object ({reason}); a plugin is a cdylib crate built for this \
         machine: rebuild it, or ask its vendor for a build for this platform"
    )]
    NotSharedObject { path: PathBuf, reason: String },
    /// Found in the file's ELF headers before dlopen, which could crash on it (see `elf`).
    #[error("--load-plugin {path}: not a loadable shared object: {problem}")]
    BadElf { path: PathBuf, problem: ElfProblem },
    #[error("--load-plugin {0}: a shared object, but not a reactor plugin (it exports no plugin module; build it as a cdylib with reactor_plugin_api::export_plugins!)")]
    NotPlugin(PathBuf),
    #[error("--load-plugin {path}: built against reactor-plugin-api {found}, a newer major than this reactor's ({REACTOR}, reactor-plugin-api {API_VERSION}): upgrade reactor to a release for reactor-plugin-api {}.x, or use a build of the plugin for reactor-plugin-api {}.x", .found.major, ours_major())]
    NewerMajor { path: PathBuf, found: VersionNumber },
    #[error("--load-plugin {path}: built against reactor-plugin-api {found}, which this reactor ({REACTOR}, reactor-plugin-api {API_VERSION}) cannot load: rebuild the plugin against reactor-plugin-api {}.x", ours_major())]
    OlderMajor { path: PathBuf, found: VersionNumber },
    #[error("--load-plugin {path}: built against reactor-plugin-api {found}, the same version as this reactor's, but with another binary layout (same version, different layout: a fork or an unreleased change of reactor-plugin-api): rebuild the plugin against the released reactor-plugin-api {found} (-v shows the layout report)")]
    SameVersionOtherLayout { path: PathBuf, found: String },
    #[error("--load-plugin {path}: built against reactor-plugin-api {found}, whose binary layout is not the one every {}.x release shares (a fork or an unreleased change of reactor-plugin-api); this reactor ({REACTOR}) has reactor-plugin-api {API_VERSION}: rebuild the plugin against a released reactor-plugin-api {}.x (-v shows the layout report)", ours_major(), ours_major())]
    OtherLayout { path: PathBuf, found: String },
    #[error("--load-plugin {path}: plugin '{key}' {version} (reactor-plugin-api {api}) needs the host feature '{feature}', which this reactor ({REACTOR}, reactor-plugin-api {API_VERSION}) lacks: upgrade reactor to ≥ {since}")]
    NeedsFeature { path: PathBuf, key: String, version: String, api: String, feature: String, since: String },
    #[error("--load-plugin {path}: {problem}; the plugin's author must fix the module")]
    Invalid { path: PathBuf, problem: String },
    #[error("--load-plugin {path}: {reason}; the plugin's author must fix the module")]
    Broken { path: PathBuf, reason: String },
    /// The isolated process that would load it (`--isolate-plugins`) could not be started.
    #[error(
        "--load-plugin {path}: cannot start its isolated process: {reason}; check the limits on processes and open \
         files (ulimit -u, ulimit -n), or run it without --isolate-plugins"
    )]
    WorkerNotStarted { path: PathBuf, reason: String },
    /// Others could change the file: see `permissions`. The refusal names the path.
    #[error("--load-plugin {refusal}")]
    Insecure { path: PathBuf, refusal: String },
    /// A problem of the plugin directories that stops a build (see `discover`); names its files.
    #[error("{0}")]
    Discovery(String),
    /// A load error found in the module's isolated process (`--isolate-plugins`), as its line.
    #[error("{0}")]
    FromIsolatedProcess(String),
}

impl LoadError {
    /// The file as it was given.
    pub fn path(&self) -> &Path {
        match self {
            LoadError::NotFound(path) | LoadError::NotPlugin(path) => path,
            LoadError::Discovery(_) | LoadError::FromIsolatedProcess(_) => Path::new(""),
            LoadError::NotSharedObject { path, .. }
            | LoadError::BadElf { path, .. }
            | LoadError::NewerMajor { path, .. }
            | LoadError::OlderMajor { path, .. }
            | LoadError::SameVersionOtherLayout { path, .. }
            | LoadError::OtherLayout { path, .. }
            | LoadError::NeedsFeature { path, .. }
            | LoadError::Invalid { path, .. }
            | LoadError::Broken { path, .. }
            | LoadError::WorkerNotStarted { path, .. }
            | LoadError::Insecure { path, .. } => path,
        }
    }

    /// The message without its `--load-plugin PATH: ` opening, for a file that was not named
    /// with `--load-plugin` (one found in a plugin directory, or given to `plugins check`).
    pub fn reason(&self) -> String {
        let text = self.to_string();
        let opening = format!("--load-plugin {}: ", self.path().display());
        text.strip_prefix(&opening).map(str::to_owned).unwrap_or(text)
    }
}

/// The `reactor-plugin-api` major this reactor loads: the protocol's.
fn ours_major() -> u32 {
    PROTOCOL.major
}

impl Registry {
    /// Loads every file, adding its plugins; on any failure reports all of them.
    pub fn load_files(&mut self, paths: &[PathBuf]) -> Result<(), Vec<LoadError>> {
        let mut errors = Vec::new();
        for path in paths {
            match load_module(path, self.isolates_loaded_plugins()) {
                Ok(plugins) => {
                    for plugin in plugins {
                        log::debug!(
                            "loaded plugin '{}' {} (reactor-plugin-api {}) from {}",
                            plugin.manifest.key,
                            plugin.manifest.version,
                            plugin.api_version,
                            path.display()
                        );
                        self.add(plugin);
                    }
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Opens `path`, greets the module and runs every load-time check a build runs, without
/// registering its plugins: how `plugin package` and `plugins install` read a file's manifests.
pub fn check_file(path: &Path) -> Result<ModuleHello, Vec<LoadError>> {
    open_and_check(path).map(|(_, hello)| hello).map_err(|failed| failed.errors)
}

/// Loads the module in `path`: in this process, or, when `isolate`, in a worker process that
/// then runs its plugins (see [`super::isolate`]).
fn load_module(path: &Path, isolate: bool) -> Result<Vec<RegisteredPlugin>, Vec<LoadError>> {
    load_module_file(path, isolate).map_err(|failed| failed.errors)
}

/// A module that did not load: every reason, and the keys its handshake gave (none when it
/// failed before that).
pub(super) struct FailedModule {
    pub errors: Vec<LoadError>,
    pub keys: Vec<String>,
}

/// Opens `path` (in a worker process when `isolate`), greets it and checks its plugins; on
/// success, its plugins ready to register.
pub(super) fn load_module_file(path: &Path, isolate: bool) -> Result<Vec<RegisteredPlugin>, FailedModule> {
    let origin = Origin::File(path.canonicalize().unwrap_or_else(|_| path.to_path_buf()));
    let (hello, implementation): (_, Box<dyn Fn(usize) -> Implementation>) = if isolate {
        let (worker, hello) = start_worker(path).map_err(|e| FailedModule { errors: vec![e], keys: Vec::new() })?;
        let problems = check(path, &hello, &host_hello());
        if !problems.is_empty() {
            return Err(FailedModule { errors: problems, keys: keys_of(&hello) });
        }
        let worker = Arc::new(worker);
        (hello, Box::new(move |index| Implementation::Isolated { worker: worker.clone(), index }))
    } else {
        let (module, hello) = open_and_check(path)?;
        (hello, Box::new(move |index| Implementation::Loaded { module, index }))
    };
    Ok(hello
        .plugins
        .into_iter()
        .enumerate()
        .map(|(index, manifest)| RegisteredPlugin {
            manifest,
            origin: origin.clone(),
            api_version: hello.api_version.clone(),
            implementation: implementation(index),
        })
        .collect())
}

fn keys_of(hello: &ModuleHello) -> Vec<String> {
    hello.plugins.iter().map(|m| m.key.clone()).filter(|k| !k.trim().is_empty()).collect()
}

fn open_and_check(path: &Path) -> Result<(PluginModule_Ref, ModuleHello), FailedModule> {
    let failed = |errors, keys| FailedModule { errors, keys };
    let module = open_module(path).map_err(|e| failed(vec![e], Vec::new()))?;
    let given = path.to_path_buf();
    let ours = host_hello();
    let hello = handshake(module, &ours)
        .map_err(|reason| failed(vec![LoadError::Broken { path: given.clone(), reason }], Vec::new()))?;
    let problems = check(&given, &hello, &ours);
    if !problems.is_empty() {
        return Err(failed(problems, keys_of(&hello)));
    }
    Ok((module, hello))
}

// As for `open_module`.
#[allow(clippy::result_large_err)]
/// Starts the worker that opens the module and does the handshake in a process of its own.
fn start_worker(path: &Path) -> Result<(Worker, ModuleHello), LoadError> {
    if !path.exists() {
        return Err(LoadError::NotFound(path.to_path_buf()));
    }
    check_elf(path)?;
    Worker::start(path).map_err(|e| from_start_error(path, e))
}

/// Says why the isolated process for the plugin file `path` gave no plugins, as a load error.
pub(crate) fn from_start_error(path: &Path, err: StartError) -> LoadError {
    match err {
        StartError::Spawn(e) => LoadError::WorkerNotStarted { path: path.to_path_buf(), reason: e.to_string() },
        StartError::Refused(line) => LoadError::FromIsolatedProcess(line),
        StartError::Lost(how) => LoadError::Broken {
            path: path.to_path_buf(),
            reason: format!("{how} while loading, in its isolated process (--isolate-plugins)"),
        },
    }
}

// A load error is made once per bad file, before anything runs: its size does not matter.
#[allow(clippy::result_large_err)]
/// Opens the file and checks its version and layout; the module's code has not run yet, except
/// its static initialisers.
pub(super) fn open_module(path: &Path) -> Result<PluginModule_Ref, LoadError> {
    if !path.exists() {
        return Err(LoadError::NotFound(path.to_path_buf()));
    }
    check_elf(path)?;
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
    let found_text = header.version_strings().version.to_string();
    let found = VersionNumber::new(header.version_strings()).map_err(|e| LoadError::Broken {
        path: given.clone(),
        reason: format!("its reactor-plugin-api version is unreadable: {e}"),
    })?;
    let ours = ours_major();
    if found.major > ours {
        return Err(LoadError::NewerMajor { path: given, found });
    }
    if found.major < ours {
        return Err(LoadError::OlderMajor { path: given, found });
    }
    header.init_root_module::<PluginModule_Ref>().map_err(|e| {
        // abi_stable's own message is a layout dump hundreds of lines long: keep it for -v.
        log::debug!("loading {}: {e}", path.display());
        match e {
            LibraryError::AbiInstability(_) | LibraryError::InvalidAbiHeader(_) if found_text == API_VERSION => {
                LoadError::SameVersionOtherLayout { path: given.clone(), found: found_text.clone() }
            }
            LibraryError::AbiInstability(_) | LibraryError::InvalidAbiHeader(_) => {
                LoadError::OtherLayout { path: given.clone(), found: found_text.clone() }
            }
            other => LoadError::Broken { path: given.clone(), reason: first_line(&other.to_string()) },
        }
    })
}

// As for `open_module`.
#[allow(clippy::result_large_err)]
/// Refuses a file that dlopen could crash on (a truncated one) or would refuse less clearly.
fn check_elf(path: &Path) -> Result<(), LoadError> {
    elf::check(path).map_err(|problem| LoadError::BadElf { path: path.to_path_buf(), problem })
}

/// Greets the module with what this reactor offers and reads its answer.
pub(super) fn handshake(module: PluginModule_Ref, ours: &HostHello) -> Result<ModuleHello, String> {
    let ours = serde_json::to_string(ours).map_err(|e| e.to_string())?;
    let answer = (module.handshake())(RStr::from(ours.as_str()))
        .into_result()
        .map_err(|e| format!("could not list its plugins: {}", PluginError::from_json(e.as_str())))?;
    serde_json::from_str(answer.as_str()).map_err(|e| format!("its handshake is not readable: {e}"))
}

/// Everything wrong with a module's plugins, each naming the plugin.
pub(crate) fn check(path: &Path, hello: &ModuleHello, ours: &HostHello) -> Vec<LoadError> {
    let invalid = |problem: String| LoadError::Invalid { path: path.to_path_buf(), problem };
    let mut problems = Vec::new();
    if hello.plugins.is_empty() {
        problems
            .push(LoadError::Broken { path: path.to_path_buf(), reason: "the module exports no plugins".to_owned() });
    }
    for (index, manifest) in hello.plugins.iter().enumerate() {
        let key = &manifest.key;
        if key.trim().is_empty() {
            problems.push(invalid(format!("plugin number {} has an empty key", index + 1)));
            continue;
        }
        if let Some(first) = hello.plugins[..index].iter().position(|m| &m.key == key) {
            problems.push(invalid(format!(
                "plugins number {} and {} both have the key '{key}' (keys must be unique in a module)",
                first + 1,
                index + 1
            )));
        }
        if manifest.phases.is_empty() {
            problems.push(invalid(format!("plugin '{key}' runs in no phase (its manifest lists none)")));
        }
        if let Err(e) = jsonschema::validator_for(&manifest.args_schema) {
            let at = e.instance_path().as_str();
            let at = if at.is_empty() { String::new() } else { format!(" at {at}") };
            problems.push(invalid(format!("plugin '{key}': its args schema is not a valid JSON Schema{at}: {e}")));
        }
        for feature in manifest.requires.iter().filter(|f| !ours.features.contains(f)) {
            let since = hello
                .features
                .iter()
                .find(|known| &known.name == feature)
                .map_or_else(|| "a release that offers it".to_owned(), |known| known.reactor.clone());
            problems.push(LoadError::NeedsFeature {
                path: path.to_path_buf(),
                key: key.clone(),
                version: manifest.version.clone(),
                api: hello.api_version.clone(),
                feature: feature.clone(),
                since,
            });
        }
    }
    problems
}

fn first_line(text: &str) -> String {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or(text).trim().to_owned()
}
