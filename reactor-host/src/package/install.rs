//! `reactor plugins install PACKAGE|PATH` and `reactor plugins remove NAME`.
//!
//! An install unpacks the package into a staging directory inside the plugin directory
//! (`DIR/.reactor-staging-*`: discovery skips dot entries), checks everything there (the
//! signature, every file's sha256, the interface version, that every file loads in this reactor
//! with the checks a build makes and reports the manifests `reactor-plugin.json` records, and
//! that no key collides with what the directory already holds), then renames the whole directory
//! to `DIR/<name>`: with `renameat2(RENAME_NOREPLACE)`, or `RENAME_EXCHANGE` to replace an
//! installed package with `--force`, so that a package is never half there. Killed at any point,
//! the directory holds the old package or the new one, and at most a dot-directory that the next
//! install or remove deletes. A refused package leaves the directory as it was.
//!
//! Installs and removes in one directory take turns: each holds an exclusive `flock` on the
//! directory, so a leftover staging directory found under the lock belongs to a dead process.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use reactor_plugin_api::protocol::PROTOCOL;
use reactor_plugin_api::API_VERSION;
use rustix::fs::{FlockOperation, RenameFlags, CWD};
use tempfile::TempDir;

use super::signature::{self, Verdict};
use super::{is_doc_file, is_safe_name, keys, load_problems, PackageFile, PackageManifest, Refused};
use super::{MANIFEST_NAME, SIGNATURE_NAME};
use crate::plugins::load;
use crate::plugins::package_manifest::sha256_file;

const REACTOR: &str = env!("CARGO_PKG_VERSION");
/// Where an install stages a package, inside the plugin directory.
const STAGING_PREFIX: &str = ".reactor-staging-";
/// Where a removed or replaced package goes before it is deleted.
const TRASH_PREFIX: &str = ".reactor-trash-";
/// A package larger than this unpacked is refused rather than filling the disk.
const MAX_UNPACKED: u64 = 1 << 30;

/// How to install.
pub struct InstallOptions<'a> {
    /// The plugin directory the package goes into, as `DIR/<name>/`.
    pub dir: &'a Path,
    /// Replace an installed package of the same name.
    pub force: bool,
    /// Refuse a package that is not signed with a trusted key.
    pub require_signed: bool,
    /// The directory of trusted minisign public keys (`*.pub`).
    pub trusted_keys: &'a Path,
}

/// What an install did.
pub struct Installed {
    pub manifest: PackageManifest,
    /// `DIR/<name>`.
    pub path: PathBuf,
    /// The version of the package it replaced, if it replaced one.
    pub replaced: Option<String>,
    pub signature: Verdict,
}

#[derive(Clone, Copy, PartialEq)]
enum Source {
    /// A `.tar.gz` package.
    Package,
    /// A plain shared object, packaged on the fly.
    SharedObject,
}

/// Installs the package (or plain `.so`) at `source`; on refusal nothing changed on disk, except
/// that leftovers of an earlier interrupted install were cleaned.
pub fn install(source: &Path, options: &InstallOptions<'_>) -> Result<Installed, Refused> {
    let shown = format!("plugins install {}", source.display());
    let kind = source_kind(source).map_err(|e| Refused::invalid(format!("{shown}: {e}")))?;
    if kind == Source::SharedObject && options.require_signed {
        return Err(Refused::invalid(format!(
            "{shown}: a plain shared object carries no signature, and --require-signed is given: install a package its vendor signed"
        )));
    }
    let created = create_dirs(options.dir).map_err(|e| {
        Refused::failed(format!("{shown}: cannot create {}: {e}; choose another --dir", options.dir.display()))
    })?;
    let outcome = install_locked(source, kind, options, &shown);
    if outcome.is_err() {
        // Nothing changes on disk for a refused package, not even the directory it would go in.
        for dir in created.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
    outcome
}

fn install_locked(
    source: &Path,
    kind: Source,
    options: &InstallOptions<'_>,
    shown: &str,
) -> Result<Installed, Refused> {
    let dir = options.dir;
    let io = |what: &str, e: std::io::Error| {
        Refused::failed(format!(
            "{shown}: {what} in {}: {e}; check that you may write there, or choose another --dir",
            dir.display()
        ))
    };
    let _lock = lock(dir).map_err(|e| io("cannot lock the directory", e))?;
    clean_leftovers(dir);
    let staging = tempfile::Builder::new()
        .prefix(STAGING_PREFIX)
        .tempdir_in(dir)
        .map_err(|e| io("cannot make a staging directory", e))?;

    let (manifest, manifest_bytes) = match kind {
        Source::Package => unpack(source, staging.path(), shown)?,
        Source::SharedObject => stage_shared_object(source, staging.path(), shown)?,
    };
    check_layout(&manifest, staging.path(), shown)?;
    let target = dir.join(&manifest.name);
    let replaced = installed_before(&target, &manifest, options, shown)?;
    let signature = check_signature(&manifest, &manifest_bytes, staging.path(), options, shown)?;
    check_checksums(&manifest, staging.path(), shown)?;
    check_interface(&manifest, shown)?;
    check_loads(&manifest, staging.path(), shown)?;
    check_collisions(dir, &manifest, shown)?;

    place(staging, &target, replaced.is_some(), dir).map_err(|e| io("cannot move the package into place", e))?;
    Ok(Installed { path: target, replaced: replaced.map(|old| old.version), manifest, signature })
}

/// Tells a package from a shared object by their first bytes.
fn source_kind(source: &Path) -> Result<Source, String> {
    let mut magic = [0u8; 4];
    let mut file = File::open(source).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "no such file: check the path".to_owned(),
        _ => format!("cannot open it: {e}; check that you may read it"),
    })?;
    let n = file.read(&mut magic).map_err(|e| format!("cannot read it: {e}; check that you may read it"))?;
    match &magic[..n] {
        [0x1f, 0x8b, ..] => Ok(Source::Package),
        b"\x7fELF" => Ok(Source::SharedObject),
        _ => {
            Err("neither a plugin package (.tar.gz, made by reactor plugin package) nor a plugin shared object (.so): \
                  give one of those"
                .to_owned())
        }
    }
}

/// Creates `dir` and its missing parents (mode 0755); returns those it created, outermost first.
fn create_dirs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(path) = at.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        missing.push(path.to_path_buf());
        at = path.parent();
    }
    missing.reverse();
    for path in &missing {
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o755).create(path)?;
    }
    Ok(missing)
}

/// Takes the directory's install lock, waiting for another install or remove to finish.
fn lock(dir: &Path) -> std::io::Result<File> {
    let handle = File::open(dir)?;
    match rustix::fs::flock(&handle, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            log::info!("waiting for another install or remove in {} to finish", dir.display());
            rustix::fs::flock(&handle, FlockOperation::LockExclusive)?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(handle)
}

/// Deletes what interrupted installs and removes left (under the lock, so their owners are dead).
fn clean_leftovers(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(STAGING_PREFIX) || name.starts_with(TRASH_PREFIX) {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => log::info!("removed {}, left by an interrupted install or remove", entry.path().display()),
                Err(e) => log::warn!("cannot remove {}, left by an interrupted install: {e}", entry.path().display()),
            }
        }
    }
}

/// Unpacks the archive's regular files into `staging`; returns its manifest and that file's bytes.
fn unpack(source: &Path, staging: &Path, shown: &str) -> Result<(PackageManifest, Vec<u8>), Refused> {
    let corrupt =
        |why: String| Refused::invalid(format!("{shown}: the package is corrupt: {why}; get the package again"));
    let file = File::open(source)
        .map_err(|e| Refused::invalid(format!("{shown}: cannot open it: {e}; check that you may read it")))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    let entries = archive.entries().map_err(|e| corrupt(format!("not a readable .tar.gz ({e})")))?;
    let mut total = 0u64;
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(format!("not a readable .tar.gz ({e})")))?;
        let path = entry.path().map_err(|e| corrupt(format!("an entry's name is unreadable ({e})")))?.into_owned();
        // Archives made with `tar -C dir .` name their files `./x` and hold `./` itself.
        let parts: Vec<Component<'_>> = path.components().filter(|c| *c != Component::CurDir).collect();
        let entry_type = entry.header().entry_type();
        if parts.is_empty() && entry_type.is_dir() {
            continue;
        }
        let name = match parts.as_slice() {
            [Component::Normal(name)] => name.to_str().filter(|n| is_safe_name(n)),
            _ => None,
        };
        let Some(name) = name else {
            return Err(corrupt(format!("it holds {}, which is not a file name at its top level", path.display())));
        };
        if !entry_type.is_file() {
            return Err(corrupt(format!("it holds {name}, which is not a regular file")));
        }
        total = total.saturating_add(entry.header().size().unwrap_or(u64::MAX));
        if total > MAX_UNPACKED {
            return Err(corrupt(format!("it unpacks to more than {} MiB", MAX_UNPACKED >> 20)));
        }
        let staged = staging.join(name);
        let mut write = || -> std::io::Result<()> {
            let mut out = OpenOptions::new().write(true).create_new(true).open(&staged)?;
            std::io::copy(&mut entry, &mut out)?;
            out.set_permissions(Permissions::from_mode(if name.ends_with(".so") { 0o755 } else { 0o644 }))?;
            out.sync_all()
        };
        write().map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => corrupt(format!("it holds {name} twice")),
            _ => corrupt(format!("cannot unpack {name} ({e})")),
        })?;
    }
    let manifest_path = staging.join(MANIFEST_NAME);
    let bytes = std::fs::read(&manifest_path)
        .map_err(|_| corrupt(format!("it holds no {MANIFEST_NAME} (packages are made by reactor plugin package)")))?;
    let manifest =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("its {MANIFEST_NAME} is unreadable ({e})")))?;
    Ok((manifest, bytes))
}

/// Stages a plain `lib<name>.so` as the package `<name>`, its manifests read by loading it.
fn stage_shared_object(source: &Path, staging: &Path, shown: &str) -> Result<(PackageManifest, Vec<u8>), Refused> {
    let file_name = source.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let name = file_name.strip_prefix("lib").and_then(|n| n.strip_suffix(".so")).unwrap_or_default();
    if !is_safe_name(name) || !is_safe_name(file_name) {
        return Err(Refused::invalid(format!(
            "{shown}: a plugin file to install is named lib<name>.so, <name> being the package's name (letters, digits, . _ - +)"
        )));
    }
    let staged = staging.join(file_name);
    let failed = |e: std::io::Error| {
        Refused::failed(format!(
            "{shown}: cannot copy it into {}: {e}; check that you may write to the plugin directory, or choose another --dir",
            staging.display()
        ))
    };
    std::fs::copy(source, &staged).map_err(failed)?;
    std::fs::set_permissions(&staged, Permissions::from_mode(0o755)).map_err(failed)?;
    let hello = load::check_file(&staged)
        .map_err(|errors| Refused::load(format!("{shown}: {}", load_problems(&staged, &errors))))?;
    let manifest = PackageManifest {
        name: name.to_owned(),
        version: hello.plugins.first().map(|p| p.version.clone()).unwrap_or_default(),
        api_version: hello.api_version,
        files: vec![PackageFile {
            name: file_name.to_owned(),
            sha256: sha256_file(&staged).map_err(failed)?,
            plugins: hello.plugins,
        }],
    };
    let mut bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| Refused::failed(format!("{shown}: {e}")))?;
    bytes.push(b'\n');
    write_synced(&staging.join(MANIFEST_NAME), &bytes).map_err(failed)?;
    Ok((manifest, bytes))
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.set_permissions(Permissions::from_mode(0o644))?;
    file.sync_all()
}

/// The manifest names a usable package and files, and the package holds exactly those files
/// (with its signature and documentation).
fn check_layout(manifest: &PackageManifest, staging: &Path, shown: &str) -> Result<(), Refused> {
    let corrupt =
        |why: String| Refused::invalid(format!("{shown}: the package is corrupt: {why}; get the package again"));
    if !is_safe_name(&manifest.name) {
        return Err(corrupt(format!(
            "{MANIFEST_NAME} names the package '{}', which cannot be a directory name (letters, digits, . _ - +, not starting with a dot)",
            manifest.name
        )));
    }
    if manifest.files.is_empty() {
        return Err(corrupt(format!("{MANIFEST_NAME} lists no plugin files")));
    }
    for (index, file) in manifest.files.iter().enumerate() {
        if !is_safe_name(&file.name) || !file.name.ends_with(".so") {
            return Err(corrupt(format!(
                "{MANIFEST_NAME} lists '{}', which is not a plugin file name (x.so)",
                file.name
            )));
        }
        if manifest.files[..index].iter().any(|f| f.name == file.name) {
            return Err(corrupt(format!("{MANIFEST_NAME} lists {} twice", file.name)));
        }
        if !staging.join(&file.name).is_file() {
            return Err(corrupt(format!("{MANIFEST_NAME} lists {}, which the package does not hold", file.name)));
        }
    }
    for entry in std::fs::read_dir(staging).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let known = name == MANIFEST_NAME
            || name == SIGNATURE_NAME
            || manifest.files.iter().any(|f| f.name == name)
            || (is_doc_file(&name) && !name.ends_with(".so"));
        if !known {
            return Err(corrupt(format!("it holds {name}, which {MANIFEST_NAME} does not list")));
        }
    }
    Ok(())
}

/// The package of the same name installed now: refused unless `--force`; with it, returned.
fn installed_before(
    target: &Path,
    manifest: &PackageManifest,
    options: &InstallOptions<'_>,
    shown: &str,
) -> Result<Option<PackageManifest>, Refused> {
    if std::fs::symlink_metadata(target).is_err() {
        return Ok(None);
    }
    let Some(old) = read_installed(target) else {
        return Err(Refused::invalid(format!(
            "{shown}: {} exists and is not an installed package: move it away, or install into another --dir",
            target.display()
        )));
    };
    if !options.force {
        return Err(Refused::invalid(format!(
            "{shown}: package '{}' {} is already installed in {}: add --force to replace it with {}, or remove it first (reactor plugins remove {})",
            old.name,
            old.version,
            options.dir.display(),
            manifest.version,
            old.name
        )));
    }
    Ok(Some(old))
}

/// The manifest of the package installed in `path`, if it is one.
fn read_installed(path: &Path) -> Option<PackageManifest> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_dir() {
        return None;
    }
    let text = std::fs::read(path.join(MANIFEST_NAME)).ok()?;
    match serde_json::from_slice(&text) {
        Ok(manifest) => Some(manifest),
        Err(e) => {
            log::warn!("{}: {MANIFEST_NAME} is unreadable ({e})", path.display());
            None
        }
    }
}

fn check_signature(
    manifest: &PackageManifest,
    manifest_bytes: &[u8],
    staging: &Path,
    options: &InstallOptions<'_>,
    shown: &str,
) -> Result<Verdict, Refused> {
    let signature_path = staging.join(SIGNATURE_NAME);
    let signature = match std::fs::read(&signature_path) {
        Ok(bytes) => Some(String::from_utf8(bytes).map_err(|_| {
            Refused::invalid(format!(
                "{shown}: package '{}': its signature is not a minisign signature; get the package again from its vendor",
                manifest.name
            ))
        })?),
        Err(_) => None,
    };
    let verdict = signature::verify(manifest_bytes, signature.as_deref(), options.trusted_keys)
        .map_err(|e| Refused::invalid(format!("{shown}: package '{}': {e}", manifest.name)))?;
    let keys = options.trusted_keys.display();
    match &verdict {
        Verdict::Unsigned if options.require_signed => {
            return Err(Refused::invalid(format!(
                "{shown}: package '{}' is not signed, and --require-signed is given: ask its vendor for a signed package",
                manifest.name
            )))
        }
        Verdict::UnknownKey(id) if options.require_signed => {
            return Err(Refused::invalid(format!(
                "{shown}: package '{}' is signed with the key {id}, which is not among the trusted keys in {keys}, and --require-signed is given: add the vendor's minisign public key there (a .pub file) if you trust it",
                manifest.name
            )))
        }
        Verdict::UnknownKey(id) => log::warn!(
            "package '{}' is signed with the key {id}, which is not among the trusted keys in {keys}: its signature is not checked",
            manifest.name
        ),
        Verdict::Trusted(key) => {
            log::info!("package '{}': signature verified with the trusted key {}", manifest.name, key.display())
        }
        Verdict::Unsigned => log::debug!("package '{}' is not signed", manifest.name),
    }
    Ok(verdict)
}

fn check_checksums(manifest: &PackageManifest, staging: &Path, shown: &str) -> Result<(), Refused> {
    for file in &manifest.files {
        let actual = sha256_file(&staging.join(&file.name))
            .map_err(|e| Refused::failed(format!("{shown}: cannot read {}: {e}", file.name)))?;
        if !actual.eq_ignore_ascii_case(&file.sha256) {
            return Err(Refused::invalid(format!(
                "{shown}: the package is corrupt: {} does not match its sha256 in {MANIFEST_NAME} (get the package again)",
                file.name
            )));
        }
    }
    Ok(())
}

/// The package's declared interface is one this reactor loads, before any of its code runs.
fn check_interface(manifest: &PackageManifest, shown: &str) -> Result<(), Refused> {
    let ours = PROTOCOL.major;
    let api = &manifest.api_version;
    let what = format!("package '{}' {} is built against reactor-plugin-api {api}", manifest.name, manifest.version);
    match api.split('.').next().and_then(|m| m.parse::<u32>().ok()) {
        None => Err(Refused::invalid(format!(
            "{shown}: the package is corrupt: its {MANIFEST_NAME} gives no readable api_version ('{api}'); get the package again"
        ))),
        Some(major) if major > ours => Err(Refused::load(format!(
            "{shown}: {what}, a newer major than this reactor's ({REACTOR}, reactor-plugin-api {API_VERSION}): upgrade reactor to a release for reactor-plugin-api {major}.x, or use a build of the package for reactor-plugin-api {ours}.x"
        ))),
        Some(major) if major < ours => Err(Refused::load(format!(
            "{shown}: {what}, which this reactor ({REACTOR}, reactor-plugin-api {API_VERSION}) cannot load: rebuild the plugins against reactor-plugin-api {ours}.x"
        ))),
        Some(_) => Ok(()),
    }
}

/// Every file loads here with the checks a build makes, and says what the manifest records.
fn check_loads(manifest: &PackageManifest, staging: &Path, shown: &str) -> Result<(), Refused> {
    let inconsistent = |why: String| {
        Refused::invalid(format!(
            "{shown}: the package is inconsistent: {why}; make it again with reactor plugin package"
        ))
    };
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for file in &manifest.files {
        let path = staging.join(&file.name);
        let hello = load::check_file(&path)
            .map_err(|errors| Refused::load(format!("{shown}: {}: {}", file.name, load_problems(&path, &errors))))?;
        if hello.api_version != manifest.api_version {
            return Err(inconsistent(format!(
                "{MANIFEST_NAME} says reactor-plugin-api {}, but {} is built against {}",
                manifest.api_version, file.name, hello.api_version
            )));
        }
        if hello.plugins != file.plugins {
            let found: Vec<&str> = hello.plugins.iter().map(|p| p.key.as_str()).collect();
            return Err(inconsistent(format!(
                "the plugin manifests {MANIFEST_NAME} records for {} differ from those it reports ({})",
                file.name,
                found.join(", ")
            )));
        }
        for key in keys(file) {
            if let Some(other) = seen.insert(key, &file.name) {
                return Err(Refused::invalid(format!(
                    "{shown}: the package holds the plugin '{key}' twice, in {other} and {}; its vendor must make it again with one",
                    file.name
                )));
            }
        }
    }
    Ok(())
}

/// No key of the package is already provided in `dir` by another package or a hand-dropped file.
fn check_collisions(dir: &Path, manifest: &PackageManifest, shown: &str) -> Result<(), Refused> {
    let ours: Vec<&str> = manifest.files.iter().flat_map(keys).collect();
    // By file: the package holding it, if any, and the colliding keys.
    let mut collisions: BTreeMap<PathBuf, (Option<String>, Vec<String>)> = BTreeMap::new();
    for (key, file, package) in provided_in(dir, &manifest.name) {
        if ours.contains(&key.as_str()) {
            collisions.entry(file).or_insert_with(|| (package, Vec::new())).1.push(key);
        }
    }
    if collisions.is_empty() {
        return Ok(());
    }
    let mut remedies = Vec::new();
    let places: Vec<String> = collisions
        .iter()
        .map(|(file, (package, keys))| {
            let mut keys: Vec<String> = keys.iter().map(|k| format!("'{k}'")).collect();
            keys.sort();
            let holder = match package {
                Some(package) => {
                    remedies.push(format!("reactor plugins remove {package}"));
                    format!(" (package '{package}')")
                }
                None => {
                    remedies.push(format!("delete {}", file.display()));
                    String::new()
                }
            };
            format!("{} in {}{holder}", keys.join(", "), file.display())
        })
        .collect();
    Err(Refused::invalid(format!(
        "{shown}: package '{}' has plugin keys that {} already provides: {}; remove those first ({}), or install into another --dir",
        manifest.name,
        dir.display(),
        places.join("; "),
        remedies.join(", ")
    )))
}

/// Every plugin key `dir` provides, but for the package `except`: (key, file, package).
fn provided_in(dir: &Path, except: &str) -> Vec<(String, PathBuf, Option<String>)> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| !n.starts_with('.') && n != except))
        .collect();
    entries.sort();
    let mut provided = Vec::new();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if path.is_dir() {
            if let Some(installed) = read_installed(&path) {
                for file in &installed.files {
                    for key in keys(file) {
                        provided.push((key.to_owned(), path.join(&file.name), Some(installed.name.clone())));
                    }
                }
            }
        } else if name.starts_with("lib") && name.ends_with(".so") {
            // A hand-dropped plugin: its keys are known only by loading it, as a build would.
            match load::check_file(&path) {
                Ok(hello) => provided.extend(hello.plugins.into_iter().map(|p| (p.key, path.clone(), None))),
                Err(errors) => log::debug!("{} does not load: {}", path.display(), load_problems(&path, &errors)),
            }
        }
    }
    provided
}

/// Moves the verified staging directory to `target` in one rename; with `replace`, swaps it with
/// the installed package in one `RENAME_EXCHANGE`, then deletes the old one.
fn place(staging: TempDir, target: &Path, replace: bool, dir: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(staging.path(), Permissions::from_mode(0o755))?;
    File::open(staging.path())?.sync_all()?;
    pause_for_tests("staged");
    if !replace {
        match rustix::fs::renameat_with(CWD, staging.path(), CWD, target, RenameFlags::NOREPLACE) {
            Ok(()) => {}
            // A file system without renameat2: plain rename is as atomic, and the lock keeps
            // anyone else from creating the target meanwhile.
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => std::fs::rename(staging.path(), target)?,
            Err(e) => return Err(e.into()),
        }
        let _moved = staging.keep(); // renamed into place: nothing left to delete
        File::open(dir)?.sync_all()?;
        return Ok(());
    }
    match rustix::fs::renameat_with(CWD, staging.path(), CWD, target, RenameFlags::EXCHANGE) {
        Ok(()) => {
            File::open(dir)?.sync_all()?;
            pause_for_tests("swapped");
            // The staging directory now holds the old package.
            if let Err(e) = staging.close() {
                log::warn!("cannot delete the replaced package: {e}; the next install deletes it");
            }
        }
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            // No RENAME_EXCHANGE here: two renames. Between them the package is briefly
            // absent, never half there.
            let trash = tempfile::Builder::new().prefix(TRASH_PREFIX).tempdir_in(dir)?;
            std::fs::rename(target, trash.path())?;
            std::fs::rename(staging.path(), target)?;
            let _moved = staging.keep(); // renamed into place: nothing left to delete
            File::open(dir)?.sync_all()?;
            pause_for_tests("swapped");
            if let Err(e) = trash.close() {
                log::warn!("cannot delete the replaced package: {e}; the next install deletes it");
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// TEST ONLY, not for use otherwise: `REACTOR_TEST_INSTALL_PAUSE=POINT:MARKER` makes an install
/// create the file MARKER and sleep for a minute at POINT (`staged`: verified, before the rename;
/// `swapped`: after the rename that replaced a package, before the old one is deleted), so that
/// the tests can kill it there deterministically.
fn pause_for_tests(point: &str) {
    let Ok(setting) = std::env::var("REACTOR_TEST_INSTALL_PAUSE") else {
        return;
    };
    if let Some(marker) = setting.strip_prefix(point).and_then(|rest| rest.strip_prefix(':')) {
        let _ = std::fs::write(marker, point);
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

/// Removes the installed package `name` from `dir`: renamed away in one step, then deleted.
pub fn remove(name: &str, dir: &Path) -> Result<PackageManifest, Refused> {
    let shown = format!("plugins remove {name}");
    let not_installed = || {
        let installed = installed_names(dir);
        let listing = if installed.is_empty() {
            "nothing is installed there".to_owned()
        } else {
            format!("installed: {}", installed.join(", "))
        };
        Refused::invalid(format!(
            "{shown}: no package '{name}' is installed in {} ({listing}); check the name, and --dir",
            dir.display()
        ))
    };
    if !is_safe_name(name) || !dir.is_dir() {
        return Err(not_installed());
    }
    let io = |what: &str, e: std::io::Error| {
        Refused::failed(format!(
            "{shown}: {what} in {}: {e}; check that you may write there, or choose another --dir",
            dir.display()
        ))
    };
    let _lock = lock(dir).map_err(|e| io("cannot lock the directory", e))?;
    clean_leftovers(dir);
    let target = dir.join(name);
    let Some(manifest) = read_installed(&target) else {
        return Err(not_installed());
    };
    // rename(2) replaces the empty directory tempfile made: a unique name, and the trash is
    // deleted when dropped, or by the next install if this process is killed first.
    let trash = tempfile::Builder::new()
        .prefix(TRASH_PREFIX)
        .tempdir_in(dir)
        .map_err(|e| io("cannot make a trash directory", e))?;
    std::fs::rename(&target, trash.path()).map_err(|e| io("cannot move the package away", e))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io("cannot sync", e))?;
    if let Err(e) = trash.close() {
        log::warn!(
            "removed {name} from {}, but cannot delete its files: {e}; the next install deletes them",
            dir.display()
        );
    }
    Ok(manifest)
}

/// The names of the packages installed in `dir`.
fn installed_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.') && e.path().join(MANIFEST_NAME).is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
