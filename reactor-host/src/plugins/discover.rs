//! Discovery: where plugins come from, what they are called, and which file a build opens.
//!
//! The sources, in order (an earlier one wins a key, with a warning naming both files):
//! `--load-plugin PATH`, `--plugin-dir DIR`, the directories of `REACTOR_PLUGIN_PATH`, the user
//! directory (`$XDG_DATA_HOME/reactor/plugins`, default `~/.local/share/reactor/plugins`) and
//! the system directory (`/usr/lib/reactor/plugins`, or `REACTOR_SYSTEM_PLUGIN_DIR`, meant for
//! tests). A directory offers its top-level `lib*.so` files and its installed packages
//! (subdirectories holding a [`reactor-plugin.json`](super::package_manifest)); names starting
//! with `.` are skipped (an install in progress).
//!
//! Scanning runs no plugin code: a package's keys come from its `reactor-plugin.json`, a
//! hand-dropped file's from the [manifest cache](super::manifest_cache) once something loaded
//! it. A build then opens only the files holding keys its plan uses, plus the hand-dropped files
//! never loaded before (only opening them tells their keys); a package file is checked against
//! its recorded sha256 before it is opened.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use reactor_plugin_api::Manifest;

use super::load::{load_module_file, LoadError};
use super::manifest_cache::{CachedFailure, CachedFile, FileId, ManifestCache};
use super::package_manifest::{self, PackageManifest};
use super::permissions::{self, Kind};
use super::registry::{RegisteredPlugin, Registry, UnloadedFile};

/// Where a plugin was found, in the order sources win.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    LoadPlugin,
    PluginDir,
    PluginPath,
    User,
    System,
}

impl Source {
    /// The name `plugins list` shows.
    pub fn name(self) -> &'static str {
        match self {
            Source::LoadPlugin => "--load-plugin",
            Source::PluginDir => "--plugin-dir",
            Source::PluginPath => "REACTOR_PLUGIN_PATH",
            Source::User => "user",
            Source::System => "system",
        }
    }
}

/// The user directory: `$XDG_DATA_HOME/reactor/plugins`, else `~/.local/share/reactor/plugins`;
/// none without HOME. Also where `plugins install` installs by default.
pub fn user_dir() -> Option<PathBuf> {
    xdg_dir("XDG_DATA_HOME", ".local/share").map(|data| data.join("reactor/plugins"))
}

/// An XDG base directory: the variable when it holds an absolute path (the spec ignores
/// relative ones), else `$HOME/<fallback>`; none without HOME.
pub fn xdg_dir(variable: &str, fallback: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(variable).map(PathBuf::from).filter(|d| d.is_absolute()) {
        return Some(dir);
    }
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|home| PathBuf::from(home).join(fallback))
}

/// The system directory: `/usr/lib/reactor/plugins`, or `REACTOR_SYSTEM_PLUGIN_DIR` when set
/// (meant for tests, which must not depend on the machine's).
pub fn system_dir() -> PathBuf {
    std::env::var_os("REACTOR_SYSTEM_PLUGIN_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/usr/lib/reactor/plugins"), PathBuf::from)
}

/// Where to look, from the command line and the environment, in order.
pub struct Sources {
    pub load_plugin: Vec<PathBuf>,
    pub dirs: Vec<(PathBuf, Source)>,
    pub allow_insecure: bool,
}

impl Sources {
    pub fn new(load_plugin: &[PathBuf], plugin_dirs: &[PathBuf], allow_insecure: bool) -> Sources {
        let mut dirs: Vec<(PathBuf, Source)> = plugin_dirs.iter().map(|d| (d.clone(), Source::PluginDir)).collect();
        if let Some(path) = std::env::var_os("REACTOR_PLUGIN_PATH") {
            dirs.extend(
                std::env::split_paths(&path).filter(|d| !d.as_os_str().is_empty()).map(|d| (d, Source::PluginPath)),
            );
        }
        dirs.extend(user_dir().map(|d| (d, Source::User)));
        dirs.push((system_dir(), Source::System));
        Sources { load_plugin: load_plugin.to_vec(), dirs, allow_insecure }
    }
}

/// An installed package a file belongs to.
#[derive(Clone, Debug)]
pub struct PackageRef {
    pub name: String,
    pub version: String,
    /// The file's sha256 as recorded at install.
    pub sha256: String,
}

/// What is known of a found file's plugins without opening it.
#[derive(Clone, Debug)]
pub enum Known {
    Plugins {
        api_version: String,
        manifests: Vec<Manifest>,
    },
    /// A hand-dropped file no reactor of this release has loaded yet.
    NotInspected,
    /// It did not load (in this release); the keys when its handshake told them.
    Failed(CachedFailure),
}

impl Known {
    /// The keys, as far as known.
    pub fn keys(&self) -> Vec<String> {
        match self {
            Known::Plugins { manifests, .. } => manifests.iter().map(|m| m.key.clone()).collect(),
            Known::Failed(failure) => failure.keys.clone(),
            Known::NotInspected => Vec::new(),
        }
    }
}

/// A plugin file found in a source.
#[derive(Clone, Debug)]
pub struct Found {
    /// The file, symbolic links resolved.
    pub file: PathBuf,
    pub source: Source,
    /// The plugin directory (its index in [`Scan::dirs`]); none for `--load-plugin`.
    pub dir: Option<usize>,
    pub package: Option<PackageRef>,
    pub id: Option<FileId>,
    pub known: Known,
}

impl Found {
    /// The keys it holds, as far as known.
    pub fn keys(&self) -> Vec<String> {
        self.known.keys()
    }

    /// "FILE (SOURCE)": how messages name it.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.file.display(), self.source.name())
    }
}

/// A plugin directory that was read.
#[derive(Clone, Debug)]
pub struct ScannedDir {
    pub path: PathBuf,
    pub source: Source,
}

/// Everything found, without running plugin code.
pub struct Scan {
    pub dirs: Vec<ScannedDir>,
    pub found: Vec<Found>,
    /// Broken packages, refused files and directories, missing `REACTOR_PLUGIN_PATH` entries.
    pub warnings: Vec<String>,
    /// What makes every build fail: a `--plugin-dir` that does not exist.
    pub errors: Vec<String>,
    /// Refused or unreadable entries, for the messages of a build that misses a key.
    pub unreadable: Vec<UnloadedFile>,
    pub cache: ManifestCache,
    pub allow_insecure: bool,
    pub purpose: Purpose,
    /// Whether opened modules run in worker processes (`--isolate-plugins`), as the registry
    /// that a build loads them into says.
    isolate: bool,
}

/// Whether a scan reads the manifest cache for `--load-plugin` files: listing does; a build
/// loads them anyway, and must not read the cache when no plugin directory exists.
#[derive(Clone, Copy, PartialEq)]
pub enum Purpose {
    Build,
    List,
}

impl Scan {
    /// Reads every source: directories, package manifests and the cache, never a plugin's code.
    pub fn new(sources: &Sources, purpose: Purpose) -> Scan {
        let mut scan = Scan {
            dirs: Vec::new(),
            found: Vec::new(),
            warnings: Vec::new(),
            errors: Vec::new(),
            unreadable: Vec::new(),
            cache: ManifestCache::for_user(),
            allow_insecure: sources.allow_insecure,
            purpose,
            isolate: false,
        };
        let mut seen_files = BTreeSet::new();
        for path in &sources.load_plugin {
            let file = path.canonicalize().unwrap_or_else(|_| path.clone());
            if !seen_files.insert(file.clone()) {
                continue;
            }
            let metadata = std::fs::metadata(&file).ok();
            let id = metadata.as_ref().map(FileId::of);
            let known = match (purpose, id) {
                (Purpose::List, Some(id)) => scan.cached(&file, id),
                _ => Known::NotInspected,
            };
            scan.found.push(Found { file, source: Source::LoadPlugin, dir: None, package: None, id, known });
        }
        let mut seen_dirs = BTreeSet::new();
        for (path, source) in &sources.dirs {
            let dir = match path.canonicalize() {
                Ok(dir) if dir.is_dir() => dir,
                Ok(_) | Err(_) => {
                    let what = if path.exists() { "not a directory" } else { "no such directory" };
                    match source {
                        Source::PluginDir => scan
                            .errors
                            .push(format!("--plugin-dir {}: {what}; check the path, or create it", path.display())),
                        Source::PluginPath => scan
                            .warnings
                            .push(format!("REACTOR_PLUGIN_PATH names {}: {what}; it is skipped", path.display())),
                        _ => log::debug!("no {} plugin directory {}: {what}", source.name(), path.display()),
                    }
                    continue;
                }
            };
            // The same directory named twice is read once, as the first source names it.
            if !seen_dirs.insert(dir.clone()) {
                continue;
            }
            scan.read_dir(dir, *source, &mut seen_files);
        }
        scan
    }

    /// Notes that `path` is skipped: a warning (`why` names the path), and for a build that
    /// misses one of `keys` (those known without opening it), the reason.
    fn refuse(&mut self, path: &Path, why: String, keys: Vec<String>) {
        let reason = why.strip_prefix(&format!("{}: ", path.display())).unwrap_or(&why).to_owned();
        self.unreadable.push(UnloadedFile { file: path.to_path_buf(), reason, keys });
        self.warnings.push(why);
    }

    /// Whether `path` may be trusted; if not, refuses it (see [`Scan::refuse`]).
    fn secure(&mut self, path: &Path, kind: Kind, keys: impl FnOnce() -> Vec<String>) -> bool {
        match permissions::check(path, kind, self.allow_insecure) {
            Ok(()) => true,
            Err(why) => {
                self.refuse(path, why, keys());
                false
            }
        }
    }

    fn cached(&mut self, file: &Path, id: FileId) -> Known {
        match self.cache.get(file, id) {
            // A build tries again a file whose failure may come from outside it.
            Some(CachedFile { failure: Some(failure), .. }) if failure.retry && self.purpose == Purpose::Build => {
                Known::NotInspected
            }
            Some(CachedFile { failure: Some(failure), .. }) => Known::Failed(failure),
            Some(CachedFile { plugins: Some(manifests), api_version, .. }) => {
                Known::Plugins { api_version: api_version.unwrap_or_default(), manifests }
            }
            _ => Known::NotInspected,
        }
    }

    fn read_dir(&mut self, dir: PathBuf, source: Source, seen_files: &mut BTreeSet<PathBuf>) {
        if !self.secure(&dir, Kind::PluginDir, Vec::new) {
            return;
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                self.refuse(
                    &dir,
                    format!("{}: plugin directory cannot be read: {e}; check its permissions", dir.display()),
                    Vec::new(),
                );
                return;
            }
        };
        let index = self.dirs.len();
        self.dirs.push(ScannedDir { path: dir.clone(), source });
        let mut names: Vec<(String, bool)> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let link = entry.file_type().ok()?.is_symlink();
                (!name.starts_with('.')).then_some((name, link))
            })
            .collect();
        // Within a directory, files are taken in name order, so messages and listings are stable.
        names.sort();
        for (name, link) in names {
            let path = dir.join(&name);
            let Ok(metadata) = std::fs::metadata(&path) else {
                continue;
            };
            if metadata.is_dir() {
                if path.join(package_manifest::FILE_NAME).exists() {
                    self.read_package(&path, index, source, seen_files);
                }
                continue;
            }
            if !(name.starts_with("lib") && name.ends_with(".so") && metadata.is_file()) {
                continue;
            }
            let file = path.canonicalize().unwrap_or(path.clone());
            if !seen_files.insert(file.clone()) {
                continue;
            }
            let id = FileId::of(&metadata);
            let known = self.cached(&file, id);
            // A refused file's keys are known when an earlier load told them.
            let keys = || known.keys();
            // A link leads to another directory, whose writers could change the file too.
            let target_dir_safe = !link || file.parent().is_none_or(|p| self.secure(p, Kind::ParentOfNamedFile, keys));
            if !target_dir_safe || !self.secure(&file, Kind::File, keys) {
                continue;
            }
            self.found.push(Found { file, source, dir: Some(index), package: None, id: Some(id), known });
        }
    }

    fn read_package(&mut self, package_dir: &Path, index: usize, source: Source, seen_files: &mut BTreeSet<PathBuf>) {
        // Read before the permission checks: reading it runs no code, and a refusal can then
        // name the keys a build misses because of it.
        let package = PackageManifest::read(package_dir);
        let keys = || {
            package
                .as_ref()
                .map(|p| p.files.iter().flat_map(|f| f.plugins.iter().map(|m| m.key.clone())).collect())
                .unwrap_or_default()
        };
        if !self.secure(package_dir, Kind::PluginDir, keys)
            || !self.secure(&package_dir.join(package_manifest::FILE_NAME), Kind::File, keys)
        {
            return;
        }
        let package = match package {
            Ok(package) => package,
            Err(why) => {
                self.refuse(package_dir, format!("{why}; the package is skipped (reinstall it)"), Vec::new());
                return;
            }
        };
        for entry in &package.files {
            let path = package_dir.join(&entry.name);
            let metadata = match std::fs::metadata(&path) {
                Ok(metadata) if metadata.is_file() => metadata,
                _ => {
                    let why = format!(
                        "{}: missing, though package '{}' lists it; its plugins are skipped (reinstall the package)",
                        path.display(),
                        package.name
                    );
                    self.refuse(&path, why, entry.plugins.iter().map(|m| m.key.clone()).collect());
                    continue;
                }
            };
            let file = path.canonicalize().unwrap_or(path);
            let keys = || entry.plugins.iter().map(|m| m.key.clone()).collect();
            if !seen_files.insert(file.clone()) || !self.secure(&file, Kind::File, keys) {
                continue;
            }
            self.found.push(Found {
                file,
                source,
                dir: Some(index),
                package: Some(PackageRef {
                    name: package.name.clone(),
                    version: package.version.clone(),
                    sha256: entry.sha256.clone(),
                }),
                id: Some(FileId::of(&metadata)),
                known: Known::Plugins { api_version: package.api_version.clone(), manifests: entry.plugins.clone() },
            });
        }
    }

    /// Which file provides each key, and the conflicts: two files of one directory sharing a
    /// key are an error; across sources the earlier wins, with a warning naming both. One line
    /// per pair of files. Files that did not load take no part.
    pub fn resolve(&self) -> Resolution {
        let mut resolution = Resolution::default();
        let mut per_dir: HashMap<(usize, String), usize> = HashMap::new();
        // (first file, second file, same directory) → the keys both hold, in the order met.
        let mut pairs: Vec<((usize, usize, bool), Vec<String>)> = Vec::new();
        let mut note = |pair: (usize, usize, bool), key: &str| match pairs.iter_mut().find(|(p, _)| *p == pair) {
            Some((_, keys)) => keys.push(key.to_owned()),
            None => pairs.push((pair, vec![key.to_owned()])),
        };
        for (i, found) in self.found.iter().enumerate() {
            let Known::Plugins { manifests, .. } = &found.known else {
                continue;
            };
            for key in manifests.iter().map(|m| m.key.clone()) {
                if let Some(dir) = found.dir {
                    if let Some(&first) = per_dir.get(&(dir, key.clone())) {
                        note((first, i, true), &key);
                        continue;
                    }
                    per_dir.insert((dir, key.clone()), i);
                }
                match resolution.winners.get(&key) {
                    None => {
                        resolution.winners.insert(key, i);
                    }
                    // Among --load-plugin files the later replaces the earlier, as it always has.
                    Some(&earlier)
                        if self.found[earlier].source == Source::LoadPlugin && found.source == Source::LoadPlugin =>
                    {
                        resolution.winners.insert(key, i);
                    }
                    Some(&earlier) => note((earlier, i, false), &key),
                }
            }
        }
        for ((first, second, same_dir), keys) in pairs {
            let keys = keys.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
            let (first, second) = (&self.found[first], &self.found[second]);
            if same_dir {
                let dir = first.dir.map(|d| &self.dirs[d]);
                resolution.errors.push(format!(
                    "plugin directory {} ({}): {} and {} both hold {}: remove one of them",
                    dir.map_or(String::new(), |d| d.path.display().to_string()),
                    dir.map_or("", |d| d.source.name()),
                    first.file.display(),
                    second.file.display(),
                    if keys.contains(", ") { format!("the plugins {keys}") } else { format!("the plugin {keys}") }
                ));
            } else {
                let (plugins, are, keys_word) =
                    if keys.contains(", ") { ("plugins", "are", "keys") } else { ("plugin", "is", "key") };
                resolution.warnings.push(format!(
                    "{plugins} {keys} of {} {are} not used: {}, an earlier source, has the same {keys_word}",
                    second.describe(),
                    first.describe()
                ));
            }
        }
        resolution
    }

    /// Opens a found file (its code runs): for a package file, after checking its sha256. The
    /// cache learns the outcome. On failure: the reason, one line, and the keys when known.
    pub fn open(&mut self, i: usize) -> Result<Vec<RegisteredPlugin>, (String, Vec<String>)> {
        let found = self.found[i].clone();
        let Some(id) = found.id else {
            return Err(("cannot be read; check that it exists and that you may read it".to_owned(), found.keys()));
        };
        if let Some(package) = &found.package {
            let sha256 = self.sha256(i).map_err(|e| (e, found.keys()))?;
            if sha256 != package.sha256 {
                return Err((changed_since_install(&sha256, package), found.keys()));
            }
        }
        let mut entry = self.cache.get(&found.file, id).unwrap_or_else(|| CachedFile::new(id));
        log::debug!("opening plugin file {}", found.describe());
        match load_module_file(&found.file, self.isolate) {
            Ok(plugins) => {
                entry.api_version = plugins.first().map(|p| p.api_version.clone());
                entry.plugins = Some(plugins.iter().map(|p| p.manifest.clone()).collect());
                entry.failure = None;
                self.cache.put(&found.file, entry);
                Ok(plugins)
            }
            Err(failed) => {
                let reason = joined_reasons(&failed.errors);
                let keys = if failed.keys.is_empty() { found.keys() } else { failed.keys };
                // dlopen can fail for want of a library the file needs: that may be fixed
                // without touching the file, so builds try such a file again.
                let retry = failed.errors.iter().any(|e| matches!(e, LoadError::NotSharedObject { .. }));
                if found.package.is_none() {
                    entry.plugins = None;
                    entry.failure = Some(CachedFailure { reason: reason.clone(), keys: keys.clone(), retry });
                    self.cache.put(&found.file, entry);
                }
                Err((reason, keys))
            }
        }
    }

    /// The sha256 of a found file: the cache's while the file keeps the identity it had when
    /// hashed, else read now (and cached). Runs no plugin code.
    pub fn sha256(&mut self, i: usize) -> Result<String, String> {
        let found = &self.found[i];
        let Some(id) = found.id else {
            return Err("cannot be read".to_owned());
        };
        let file = found.file.clone();
        let mut entry = self.cache.get(&file, id).unwrap_or_else(|| CachedFile::new(id));
        if let Some(sha256) = &entry.sha256 {
            return Ok(sha256.clone());
        }
        let sha256 = package_manifest::sha256_file(&file)
            .map_err(|e| format!("cannot be read: {e}; check that you may read it"))?;
        entry.sha256 = Some(sha256.clone());
        self.cache.put(&file, entry);
        Ok(sha256)
    }

    /// Marks the package files whose bytes no longer match their recorded sha256 as failed, so
    /// that a listing shows only what a build could load.
    pub fn verify_packages(&mut self) {
        for i in 0..self.found.len() {
            let Some(package) = self.found[i].package.clone() else {
                continue;
            };
            let reason = match self.sha256(i) {
                Ok(sha256) if sha256 == package.sha256 => continue,
                Ok(sha256) => changed_since_install(&sha256, &package),
                Err(e) => e,
            };
            let keys = self.found[i].keys();
            self.found[i].known = Known::Failed(CachedFailure { reason, keys, retry: false });
        }
    }

    /// What a build does with the plugin directories: opens the hand-dropped files never loaded
    /// before, then the files of the keys in `needed`, and adds their plugins to `registry`
    /// (after the `--load-plugin` ones, which win; a found plugin replaces a built-in). Broken
    /// files are warnings; the registry keeps why, for a build that asks for their keys. With
    /// `needed` none (the build request is unusable), nothing is opened. Errors: the scan's and
    /// two files of one directory sharing a key.
    pub fn load_for_build(&mut self, registry: &mut Registry, needed: Option<&BTreeSet<String>>) -> Vec<String> {
        self.isolate = registry.isolates_loaded_plugins();
        for warning in &self.warnings {
            log::warn!("{warning}");
        }
        for unreadable in self.unreadable.clone() {
            registry.note_unloaded(unreadable);
        }
        // Files opened so far: their plugins not yet registered, or None when it failed.
        let mut opened: HashMap<usize, Option<Vec<Option<RegisteredPlugin>>>> = HashMap::new();
        if needed.is_some() {
            for i in 0..self.found.len() {
                if self.found[i].source == Source::LoadPlugin || !matches!(self.found[i].known, Known::NotInspected) {
                    continue;
                }
                match self.open(i) {
                    Ok(plugins) => {
                        self.found[i].known = Known::Plugins {
                            api_version: plugins.first().map(|p| p.api_version.clone()).unwrap_or_default(),
                            manifests: plugins.iter().map(|p| p.manifest.clone()).collect(),
                        };
                        opened.insert(i, Some(plugins.into_iter().map(Some).collect()));
                    }
                    Err((reason, keys)) => {
                        self.found[i].known = Known::Failed(CachedFailure { reason, keys, retry: false });
                    }
                }
            }
        }
        for found in &self.found {
            if let (Known::Failed(failure), Some(_)) = (&found.known, found.dir) {
                log::warn!("skipping plugin file {}: {}", found.describe(), failure.reason);
                registry.note_unloaded(UnloadedFile {
                    file: found.file.clone(),
                    reason: failure.reason.clone(),
                    keys: failure.keys.clone(),
                });
            }
        }
        let resolution = self.resolve();
        for warning in &resolution.warnings {
            log::warn!("{warning}");
        }
        for (key, i) in resolution.winners {
            let found = &self.found[i];
            if found.source == Source::LoadPlugin {
                continue;
            }
            if let Some(loaded) = registry.get(&key).filter(|p| !p.is_builtin()) {
                log::warn!(
                    "plugin '{key}' of {} is not used: {} (--load-plugin), an earlier source, has the same key",
                    found.describe(),
                    loaded.origin
                );
                continue;
            }
            if !needed.is_some_and(|needed| needed.contains(&key)) {
                if let Known::Plugins { manifests, .. } = &found.known {
                    if let Some(manifest) = manifests.iter().find(|m| m.key == key) {
                        registry.note_not_opened(&key, &manifest.phases);
                    }
                }
                continue;
            }
            let plugins = match opened.entry(i) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => match self.open(i) {
                    Ok(plugins) => entry.insert(Some(plugins.into_iter().map(Some).collect())),
                    Err((reason, keys)) => {
                        let found = &self.found[i];
                        log::warn!("skipping plugin file {}: {reason}", found.describe());
                        registry.note_unloaded(UnloadedFile { file: found.file.clone(), reason, keys });
                        entry.insert(None)
                    }
                },
            };
            // A file that failed is not tried again for its other keys: the registry has why.
            let Some(plugins) = plugins else {
                continue;
            };
            let found = &self.found[i];
            let slot = plugins.iter_mut().find(|p| p.as_ref().is_some_and(|p| p.manifest.key == key));
            match slot.and_then(Option::take) {
                Some(plugin) => {
                    log::debug!("using plugin '{key}' {} from {}", plugin.manifest.version, found.describe());
                    registry.add(plugin);
                }
                None => registry.note_unloaded(UnloadedFile {
                    file: found.file.clone(),
                    reason: format!("it does not hold plugin '{key}', though its manifest said so (reinstall it)"),
                    keys: vec![key.clone()],
                }),
            }
        }
        self.cache.save();
        let mut errors = self.errors.clone();
        errors.extend(resolution.errors);
        errors
    }
}

/// A file's load errors as one line: the author's fix said once, at the end.
fn joined_reasons(errors: &[LoadError]) -> String {
    const AUTHOR_FIX: &str = "; the plugin's author must fix the module";
    let reasons: Vec<String> = errors.iter().map(|e| e.reason()).collect();
    let for_author = reasons.iter().any(|r| r.ends_with(AUTHOR_FIX));
    let mut line = reasons.iter().map(|r| r.strip_suffix(AUTHOR_FIX).unwrap_or(r)).collect::<Vec<_>>().join("; ");
    if for_author {
        line += AUTHOR_FIX;
    }
    line
}

fn changed_since_install(sha256: &str, package: &PackageRef) -> String {
    format!(
        "its sha256 is {sha256}, not the {} package '{}' {} recorded at install: the file changed since; reinstall the package",
        package.sha256, package.name, package.version
    )
}

/// Which found file provides each key.
#[derive(Default)]
pub struct Resolution {
    /// Key → index in [`Scan::found`].
    pub winners: BTreeMap<String, usize>,
    /// A plugin another source's file shadows.
    pub warnings: Vec<String>,
    /// Two files of one directory with one key.
    pub errors: Vec<String>,
}

/// Loads the `--load-plugin` files into `registry` after checking who could have changed them:
/// the file and its directory (a sticky one such as /tmp is fine).
pub fn load_named_files(
    registry: &mut Registry,
    paths: &[PathBuf],
    allow_insecure: bool,
) -> Result<(), Vec<LoadError>> {
    let mut errors = Vec::new();
    let mut secure = Vec::new();
    for path in paths {
        let file = path.canonicalize().unwrap_or_else(|_| path.clone());
        let parent = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let refusal = permissions::check(&parent, Kind::ParentOfNamedFile, allow_insecure)
            .and_then(|()| permissions::check(&file, Kind::File, allow_insecure));
        match refusal {
            Ok(()) => secure.push(path.clone()),
            Err(refusal) => errors.push(LoadError::Insecure { path: path.clone(), refusal }),
        }
    }
    if let Err(mut more) = registry.load_files(&secure) {
        errors.append(&mut more);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor_plugin_api::Phase;

    fn found(file: &str, source: Source, dir: Option<usize>, keys: &[&str]) -> Found {
        let manifests = keys.iter().map(|k| Manifest::new(k, [Phase::Postbuild], "1")).collect();
        Found {
            file: PathBuf::from(file),
            source,
            dir,
            package: None,
            id: None,
            known: Known::Plugins { api_version: "1.1.0".into(), manifests },
        }
    }

    fn scan(found: Vec<Found>) -> Scan {
        Scan {
            dirs: vec![
                ScannedDir { path: "/a".into(), source: Source::PluginDir },
                ScannedDir { path: "/b".into(), source: Source::User },
            ],
            found,
            warnings: Vec::new(),
            errors: Vec::new(),
            unreadable: Vec::new(),
            cache: ManifestCache::default(),
            allow_insecure: false,
            purpose: Purpose::Build,
            isolate: false,
        }
    }

    #[test]
    fn the_earlier_source_wins_and_one_directory_may_not_hold_a_key_twice() {
        let resolution = scan(vec![
            found("/named/libx.so", Source::LoadPlugin, None, &["x"]),
            found("/named/liby.so", Source::LoadPlugin, None, &["x"]),
            found("/a/liba.so", Source::PluginDir, Some(0), &["a", "x"]),
            found("/a/libb.so", Source::PluginDir, Some(0), &["a", "b", "c"]),
            found("/b/liba.so", Source::User, Some(1), &["a", "b"]),
        ])
        .resolve();
        // Among --load-plugin files the later wins; otherwise the earlier source.
        assert_eq!(resolution.winners["x"], 1);
        assert_eq!(resolution.winners["a"], 2);
        assert_eq!(resolution.winners["b"], 3);
        assert_eq!(resolution.winners["c"], 3);
        assert_eq!(
            resolution.errors,
            ["plugin directory /a (--plugin-dir): /a/liba.so and /a/libb.so both hold the plugin 'a': remove one of them"]
        );
        assert_eq!(
            resolution.warnings,
            [
                "plugin 'x' of /a/liba.so (--plugin-dir) is not used: /named/liby.so (--load-plugin), an earlier source, has the same key",
                "plugin 'a' of /b/liba.so (user) is not used: /a/liba.so (--plugin-dir), an earlier source, has the same key",
                "plugin 'b' of /b/liba.so (user) is not used: /a/libb.so (--plugin-dir), an earlier source, has the same key",
            ]
        );
    }

    #[test]
    fn files_that_did_not_load_or_were_never_inspected_take_no_part() {
        let mut broken = found("/a/libbroken.so", Source::PluginDir, Some(0), &[]);
        broken.known = Known::Failed(CachedFailure { reason: "no".into(), keys: vec!["a".into()], retry: false });
        let mut unknown = found("/a/libunknown.so", Source::PluginDir, Some(0), &[]);
        unknown.known = Known::NotInspected;
        let resolution = scan(vec![broken, unknown, found("/b/liba.so", Source::User, Some(1), &["a"])]).resolve();
        assert_eq!(resolution.winners["a"], 2);
        assert!(resolution.errors.is_empty() && resolution.warnings.is_empty());
    }

    #[test]
    fn sources_come_in_the_documented_order() {
        let home = tempfile::tempdir().expect("tempdir");
        // The process environment is shared by the unit tests: only this test sets these.
        std::env::set_var("XDG_DATA_HOME", home.path().join("data"));
        std::env::set_var("REACTOR_PLUGIN_PATH", "/p1::/p2");
        std::env::set_var("REACTOR_SYSTEM_PLUGIN_DIR", "/sys-plugins");
        let sources = Sources::new(&[PathBuf::from("x.so")], &[PathBuf::from("/d1")], false);
        std::env::remove_var("REACTOR_PLUGIN_PATH");
        std::env::remove_var("REACTOR_SYSTEM_PLUGIN_DIR");
        std::env::remove_var("XDG_DATA_HOME");
        assert_eq!(
            sources.dirs,
            [
                (PathBuf::from("/d1"), Source::PluginDir),
                (PathBuf::from("/p1"), Source::PluginPath),
                (PathBuf::from("/p2"), Source::PluginPath),
                (home.path().join("data/reactor/plugins"), Source::User),
                (PathBuf::from("/sys-plugins"), Source::System),
            ]
        );
    }
}
