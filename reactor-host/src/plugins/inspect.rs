//! `reactor plugins list|inspect|check`: what an ops team runs to see which plugins a build
//! would get, from where, and whether files would load in this reactor.
//!
//! `list` and `inspect KEY` run no plugin code (see [`super::discover`]); `inspect PATH` and
//! `check` load the files they are given, which is their job, and the manifest cache learns
//! what they found.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use reactor_plugin_api::Manifest;
use serde_json::{json, Value};

use super::discover::{Known, Purpose, Scan, Source, Sources};
use super::permissions::{self, Kind};
use super::registry::RegisteredPlugin;
use crate::app::exit;

/// One plugin as `list` and `inspect` show it.
struct Shown {
    manifest: Manifest,
    api_version: String,
    /// None for a built-in.
    file: Option<PathBuf>,
    source: &'static str,
    package: Option<String>,
    sha256: Option<String>,
    /// Why a build would not use it: the file or source that wins its key.
    unused: Option<String>,
}

impl Shown {
    fn builtin(manifest: Manifest) -> Shown {
        Shown {
            manifest,
            api_version: reactor_plugin_api::API_VERSION.to_owned(),
            file: None,
            source: "built-in",
            package: None,
            sha256: None,
            unused: None,
        }
    }

    fn to_json(&self) -> Value {
        let m = &self.manifest;
        let mut value = json!({
            "key": m.key,
            "phases": m.phases,
            "version": m.version,
            "api_version": self.api_version,
            "description": m.description,
            "file": self.file,
            "source": self.source,
            "package": self.package,
            "used": self.unused.is_none(),
        });
        if let Some(unused) = &self.unused {
            value["not_used_because"] = json!(unused);
        }
        value
    }

    fn to_inspect_json(&self) -> Value {
        let m = &self.manifest;
        json!({
            "key": m.key,
            "version": m.version,
            "description": m.description,
            "phases": m.phases,
            "allowed_to_fail": m.allowed_to_fail,
            "requires": m.requires,
            "args_schema": m.args_schema,
            "api_version": self.api_version,
            "file": self.file,
            "sha256": self.sha256,
            "source": self.source,
            "package": self.package,
        })
    }

    fn describe(&self) -> String {
        let m = &self.manifest;
        let phases: Vec<&str> = m.phases.iter().map(|p| p.name()).collect();
        let mut out = format!("plugin {} {}\n", m.key, m.version);
        let mut line = |name: &str, value: &str| out += &format!("  {name:<18}{value}\n");
        line("description:", if m.description.is_empty() { "(none)" } else { &m.description });
        line("phases:", &phases.join(", "));
        line(
            "allowed to fail:",
            if m.allowed_to_fail {
                "yes, unless its entry says otherwise"
            } else {
                "no, unless its entry says otherwise"
            },
        );
        line("needs features:", &if m.requires.is_empty() { "(none)".to_owned() } else { m.requires.join(", ") });
        line("interface:", &format!("reactor-plugin-api {}", self.api_version));
        line("source:", self.source);
        line("file:", &self.file.as_ref().map_or("(built into reactor)".to_owned(), |f| f.display().to_string()));
        if let Some(sha256) = &self.sha256 {
            line("sha256:", sha256);
        }
        if let Some(package) = &self.package {
            line("package:", package);
        }
        if let Some(unused) = &self.unused {
            line("not used:", unused);
        }
        out += "\nargs:\n";
        out += &reactor_builtins::reference::args_table(&m.args_schema);
        out
    }
}

/// Everything `list` shows: plugins (used or not), files not inspected yet, problems.
struct Listing {
    plugins: Vec<Shown>,
    not_inspected: Vec<(PathBuf, &'static str)>,
    warnings: Vec<String>,
    errors: Vec<String>,
}

fn listing(scan: &mut Scan) -> Listing {
    scan.verify_packages();
    let resolution = scan.resolve();
    let mut listing = Listing {
        plugins: Vec::new(),
        not_inspected: Vec::new(),
        warnings: scan.warnings.clone(),
        errors: scan.errors.clone(),
    };
    listing.warnings.extend(resolution.warnings.iter().cloned());
    listing.errors.extend(resolution.errors.iter().cloned());
    for builtin in reactor_builtins::all() {
        let mut shown = Shown::builtin(builtin.manifest());
        if let Some(&i) = resolution.winners.get(&shown.manifest.key) {
            shown.unused = Some(format!("replaced by {}", scan.found[i].describe()));
        }
        listing.plugins.push(shown);
    }
    for (i, found) in scan.found.iter().enumerate() {
        match &found.known {
            Known::Plugins { api_version, manifests } => {
                for manifest in manifests {
                    let winner = resolution.winners.get(&manifest.key).copied();
                    listing.plugins.push(Shown {
                        manifest: manifest.clone(),
                        api_version: api_version.clone(),
                        file: Some(found.file.clone()),
                        source: found.source.name(),
                        package: found.package.as_ref().map(|p| format!("{} {}", p.name, p.version)),
                        sha256: None,
                        unused: winner.filter(|&w| w != i).map(|w| format!("{} has it too", scan.found[w].describe())),
                    });
                }
            }
            Known::NotInspected => listing.not_inspected.push((found.file.clone(), found.source.name())),
            Known::Failed(failure) => {
                listing.warnings.push(format!("{}: did not load: {}", found.describe(), failure.reason));
            }
        }
    }
    listing.plugins.sort_by(|a, b| (&a.manifest.key, a.unused.is_some()).cmp(&(&b.manifest.key, b.unused.is_some())));
    scan.cache.save();
    listing
}

/// `reactor plugins list [--json]`.
/// `reactor plugins list`.
pub fn list(sources: &Sources, as_json: bool) -> ExitCode {
    let mut scan = Scan::new(sources, Purpose::List);
    let listing = listing(&mut scan);
    if as_json {
        let doc = json!({
            "plugins": listing.plugins.iter().map(Shown::to_json).collect::<Vec<_>>(),
            "not_inspected": listing.not_inspected.iter().map(|(file, source)| json!({"file": file, "source": source})).collect::<Vec<_>>(),
            "warnings": listing.warnings,
            "errors": listing.errors,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        print!("{}", listing_text(&listing));
        for warning in &listing.warnings {
            log::warn!("{warning}");
        }
        for error in &listing.errors {
            log::error!("{error}");
        }
    }
    ExitCode::from(if listing.errors.is_empty() { exit::SUCCESS } else { exit::PLUGIN_LOAD })
}

fn listing_text(listing: &Listing) -> String {
    let header = ["KEY", "PHASES", "VERSION", "API", "SOURCE", "FILE", "DESCRIPTION"].map(str::to_owned);
    let mut rows = vec![header];
    for p in &listing.plugins {
        let phases: Vec<&str> = p.manifest.phases.iter().map(|p| p.name()).collect();
        let mut description = p.manifest.description.clone();
        if let Some(unused) = &p.unused {
            description = format!("(not used: {unused}) {description}");
        }
        rows.push([
            p.manifest.key.clone(),
            phases.join(","),
            p.manifest.version.clone(),
            p.api_version.clone(),
            p.source.to_owned(),
            p.file.as_ref().map_or("-".to_owned(), |f| f.display().to_string()),
            description,
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line += cell;
            } else {
                line += &format!("{cell:<width$}  ", width = widths[i]);
            }
        }
        out += line.trim_end();
        out += "\n";
    }
    if !listing.not_inspected.is_empty() {
        out += "\nnot inspected yet (their plugins are known once a build, `plugins inspect FILE` or `plugins check FILE` has loaded them):\n";
        for (file, source) in &listing.not_inspected {
            out += &format!("  {} ({source})\n", file.display());
        }
    }
    out
}

/// Whether an `inspect` argument names a file rather than a key: keys have no `/` and no `.so`.
fn is_path(target: &str) -> bool {
    target.contains('/') || target.ends_with(".so") || Path::new(target).is_file()
}

/// `reactor plugins inspect KEY|PATH [--json]`.
/// `reactor plugins inspect`.
pub fn inspect(sources: &Sources, target: &str, as_json: bool) -> ExitCode {
    let shown = if is_path(target) {
        match load_named(Path::new(target), sources.allow_insecure) {
            Ok((plugins, sha256)) => plugins
                .into_iter()
                .map(|p| Shown {
                    manifest: p.manifest.clone(),
                    api_version: p.api_version.clone(),
                    file: Some(Path::new(target).canonicalize().unwrap_or_else(|_| PathBuf::from(target))),
                    source: "file",
                    package: None,
                    sha256: Some(sha256.clone()),
                    unused: None,
                })
                .collect(),
            Err(why) => {
                log::error!("{target}: {why}");
                return ExitCode::from(exit::PLUGIN_LOAD);
            }
        }
    } else {
        match inspect_key(sources, target) {
            Ok(shown) => vec![shown],
            Err(why) => {
                log::error!("{why}");
                return ExitCode::from(exit::INVALID_INPUT);
            }
        }
    };
    if as_json {
        let doc: Vec<Value> = shown.iter().map(Shown::to_inspect_json).collect();
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        let texts: Vec<String> = shown.iter().map(Shown::describe).collect();
        print!("{}", texts.join("\n"));
    }
    ExitCode::SUCCESS
}

/// The plugin a build would use for `key`, as `list` finds it (no plugin code runs).
fn inspect_key(sources: &Sources, key: &str) -> Result<Shown, String> {
    let mut scan = Scan::new(sources, Purpose::List);
    for warning in &scan.warnings {
        log::warn!("{warning}");
    }
    let listing = listing(&mut scan);
    let Some(shown) = listing.plugins.into_iter().find(|p| p.manifest.key == key && p.unused.is_none()) else {
        let mut why = format!("no plugin '{key}' is available (`reactor plugins list` shows those that are)");
        if !listing.not_inspected.is_empty() {
            let files: Vec<String> = listing.not_inspected.iter().map(|(f, _)| f.display().to_string()).collect();
            why += &format!("; these files have not been inspected yet and may hold it: {} (inspect one with `reactor plugins inspect FILE`)", files.join(", "));
        }
        return Err(why);
    };
    let mut shown = shown;
    if let Some(file) = &shown.file {
        if let Some(i) = scan.found.iter().position(|f| &f.file == file) {
            shown.sha256 = scan.sha256(i).ok();
            scan.cache.save();
        }
    }
    Ok(shown)
}

/// Loads a file named on the command line (its code runs), after checking who could change it;
/// returns its plugins and sha256, or why it would not load, with the fix.
fn load_named(path: &Path, allow_insecure: bool) -> Result<(Vec<RegisteredPlugin>, String), String> {
    let file = path.canonicalize().map_err(|_| "no such file: check the path".to_owned())?;
    if let Some(parent) = file.parent() {
        permissions::check(parent, Kind::ParentOfNamedFile, allow_insecure)?;
    }
    permissions::check(&file, Kind::File, allow_insecure)?;
    let sources = Sources { load_plugin: vec![file.clone()], dirs: Vec::new(), allow_insecure };
    let mut scan = Scan::new(&sources, Purpose::List);
    let sha256 = scan.sha256(0)?;
    let outcome = scan.open(0);
    scan.cache.save();
    // Each load error's own message says what to do (see `load::LoadError`).
    outcome.map(|plugins| (plugins, sha256)).map_err(|(reason, _)| reason)
}

/// `reactor plugins check PATH...`: every file, or every plugin file of a directory.
/// `reactor plugins check`.
pub fn check(paths: &[PathBuf], allow_insecure: bool) -> ExitCode {
    let mut failed = false;
    for path in paths {
        let lines =
            if path.is_dir() { check_dir(path, allow_insecure) } else { vec![check_file(path, allow_insecure)] };
        for (ok, line) in lines {
            failed |= !ok;
            println!("{line}");
        }
    }
    ExitCode::from(if failed { exit::PLUGIN_LOAD } else { exit::SUCCESS })
}

fn loaded_line(path: &Path, plugins: &[RegisteredPlugin]) -> String {
    let names: Vec<String> = plugins.iter().map(|p| format!("'{}' {}", p.manifest.key, p.manifest.version)).collect();
    let api = plugins.first().map_or("", |p| p.api_version.as_str());
    format!("{}: ok: {} (reactor-plugin-api {api})", path.display(), names.join(", "))
}

fn check_file(path: &Path, allow_insecure: bool) -> (bool, String) {
    match load_named(path, allow_insecure) {
        Ok((plugins, _)) => (true, loaded_line(path, &plugins)),
        // A refusal names the path itself.
        Err(why) if why.starts_with(&format!("{}: ", path.display())) => (false, why),
        Err(why) => (false, format!("{}: {why}", path.display())),
    }
}

/// Loads every file of one plugin directory as a build would find them, packages' sha256
/// included; the directory's own problems (refusals, broken packages, a key held twice) are
/// failures too.
fn check_dir(dir: &Path, allow_insecure: bool) -> Vec<(bool, String)> {
    let sources =
        Sources { load_plugin: Vec::new(), dirs: vec![(dir.to_path_buf(), Source::PluginDir)], allow_insecure };
    let mut scan = Scan::new(&sources, Purpose::List);
    let mut lines: Vec<(bool, String)> = scan.warnings.iter().chain(&scan.errors).map(|w| (false, w.clone())).collect();
    for i in 0..scan.found.len() {
        let file = scan.found[i].file.clone();
        match scan.open(i) {
            Ok(plugins) => {
                scan.found[i].known = Known::Plugins {
                    api_version: plugins.first().map(|p| p.api_version.clone()).unwrap_or_default(),
                    manifests: plugins.iter().map(|p| p.manifest.clone()).collect(),
                };
                lines.push((true, loaded_line(&file, &plugins)));
            }
            Err((reason, _)) => lines.push((false, format!("{}: {}", file.display(), reason))),
        }
    }
    lines.extend(scan.resolve().errors.into_iter().map(|e| (false, e)));
    if scan.found.is_empty() && lines.is_empty() {
        lines.push((true, format!("{}: no plugin files (lib*.so or installed packages)", dir.display())));
    }
    scan.cache.save();
    lines
}
