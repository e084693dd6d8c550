//! `reactor plugin package [CRATE_DIR] [--out DIR] [--sign SECRET_KEY_FILE]`: a package from a
//! built plugin crate. `cargo metadata` gives the crate's name, version, cdylib and target
//! directory; the built `.so` (release preferred) is loaded with every check a build makes, and
//! its plugins' manifests go into `reactor-plugin.json` with its sha256.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{is_doc_file, load_problems, signature, PackageFile, PackageManifest, Refused};
use super::{MANIFEST_NAME, SIGNATURE_NAME};
use crate::plugins::load;
use crate::plugins::package_manifest::sha256_file;

/// A package written to disk.
pub struct Packaged {
    pub path: PathBuf,
    pub manifest: PackageManifest,
    pub signed: bool,
}

/// The crate as cargo describes it.
struct CrateInfo {
    name: String,
    version: String,
    /// The cdylib's file name, `lib<name>.so`.
    library: String,
    target_dir: PathBuf,
}

/// Makes the package of the crate in `crate_dir` in `out` (default: the current directory).
pub fn package(crate_dir: &Path, out: Option<&Path>, sign_with: Option<&Path>) -> Result<Packaged, Refused> {
    let info = crate_info(crate_dir)?;
    let library = built_library(&info)?;
    let hello = load::check_file(&library).map_err(|errors| {
        Refused::load(format!("plugin package: {}: {}", library.display(), load_problems(&library, &errors)))
    })?;
    let sha256 = sha256_file(&library)
        .map_err(|e| Refused::failed(format!("cannot read {}: {e}; build the crate again", library.display())))?;
    let manifest = PackageManifest {
        name: info.name.clone(),
        version: info.version.clone(),
        api_version: hello.api_version.clone(),
        files: vec![PackageFile { name: info.library.clone(), sha256, plugins: hello.plugins }],
    };
    let manifest_text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| Refused::failed(format!("cannot write reactor-plugin.json: {e}")))?
        + "\n";

    let mut entries = vec![(MANIFEST_NAME.to_owned(), Entry::Bytes(manifest_text.clone().into_bytes()))];
    if let Some(key) = sign_with {
        let comment = format!("file:{MANIFEST_NAME}\tpackage:{} {}", info.name, info.version);
        let signature = signature::sign(manifest_text.as_bytes(), key, &comment)
            .map_err(|e| Refused::invalid(format!("plugin package --sign: {e}")))?;
        entries.push((SIGNATURE_NAME.to_owned(), Entry::Bytes(signature.into_bytes())));
    }
    entries.push((info.library.clone(), Entry::File(library.clone(), 0o755)));
    for doc in docs(crate_dir) {
        let name = doc.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        entries.push((name, Entry::File(doc, 0o644)));
    }

    let out = out.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    std::fs::create_dir_all(&out).map_err(|e| {
        Refused::failed(format!("plugin package: cannot create --out {}: {e}; choose another --out", out.display()))
    })?;
    let path = out.join(format!("{}-{}.tar.gz", info.name, info.version));
    write_archive(&path, &entries).map_err(|e| {
        Refused::failed(format!(
            "plugin package: cannot write {}: {e}; choose another --out, or make room",
            path.display()
        ))
    })?;
    log::info!("packaged {} (built against reactor-plugin-api {})", library.display(), manifest.api_version);
    Ok(Packaged { path, manifest, signed: sign_with.is_some() })
}

/// Asks cargo for the crate's name, version, cdylib and target directory.
fn crate_info(crate_dir: &Path) -> Result<CrateInfo, Refused> {
    let manifest_path = crate_dir.join("Cargo.toml");
    if !manifest_path.is_file() {
        return Err(Refused::invalid(format!(
            "plugin package: {} has no Cargo.toml: give the directory of the plugin crate",
            crate_dir.display()
        )));
    }
    // The cargo that runs us (under `cargo run`) or the one on PATH.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--manifest-path"])
        .arg(&manifest_path)
        .output()
        .map_err(|e| Refused::failed(format!("plugin package: cannot run cargo ({e}): it needs cargo on PATH")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr.lines().find(|l| l.starts_with("error")).or_else(|| stderr.lines().next()).unwrap_or("");
        return Err(Refused::invalid(format!(
            "plugin package: cargo metadata failed for {}: {}; fix the crate until cargo build accepts it",
            manifest_path.display(),
            reason.trim()
        )));
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| Refused::failed(format!("plugin package: cargo metadata's output is not JSON: {e}")))?;
    let wanted = manifest_path.canonicalize().unwrap_or(manifest_path.clone());
    let package = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["manifest_path"].as_str().map(Path::new).is_some_and(|p| p == wanted))
        .ok_or_else(|| {
            Refused::invalid(format!(
                "plugin package: {} is a workspace, not a crate: give the directory of the plugin crate",
                manifest_path.display()
            ))
        })?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let name = text(&package["name"]);
    let cdylib = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["crate_types"].as_array().is_some_and(|types| types.iter().any(|k| k == "cdylib")));
    let Some(cdylib) = cdylib else {
        return Err(Refused::invalid(format!(
            "plugin package: crate '{name}' builds no cdylib: a plugin crate needs crate-type = [\"cdylib\"] in its [lib]"
        )));
    };
    Ok(CrateInfo {
        library: format!("lib{}.so", text(&cdylib["name"]).replace('-', "_")),
        version: text(&package["version"]),
        target_dir: PathBuf::from(text(&metadata["target_directory"])),
        name,
    })
}

/// The crate's built shared object: the release build if there is one, else the debug build.
fn built_library(info: &CrateInfo) -> Result<PathBuf, Refused> {
    let release = info.target_dir.join("release").join(&info.library);
    let debug = info.target_dir.join("debug").join(&info.library);
    match (release.is_file(), debug.is_file()) {
        (true, has_debug) => {
            let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
            if has_debug && modified(&debug) > modified(&release) {
                log::warn!(
                    "{} is newer than {}; packaging the release build (cargo build --release refreshes it)",
                    debug.display(),
                    release.display()
                );
            }
            Ok(release)
        }
        (false, true) => Ok(debug),
        (false, false) => Err(Refused::invalid(format!(
            "plugin package: crate '{}' is not built (no {} nor {}): run cargo build --release first",
            info.name,
            release.display(),
            debug.display()
        ))),
    }
}

/// The crate's README and licence files.
fn docs(crate_dir: &Path) -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(crate_dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| e.file_name().to_str().is_some_and(|n| is_doc_file(n) && super::is_safe_name(n)))
        .map(|e| e.path())
        .collect();
    docs.sort();
    docs
}

/// What goes into the archive under a name.
enum Entry {
    Bytes(Vec<u8>),
    /// A file, with the mode it gets.
    File(PathBuf, u32),
}

/// Writes the `.tar.gz` beside its final name and renames it into place, so a failed or killed
/// run never leaves half a package there. Entries have mtime 0 and fixed modes, so the same
/// inputs make the same archive.
fn write_archive(path: &Path, entries: &[(String, Entry)]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let temp = tempfile::Builder::new().prefix(".reactor-package-").tempfile_in(dir)?;
    let gzip = flate2::write::GzEncoder::new(temp.as_file(), flate2::Compression::default());
    let mut archive = tar::Builder::new(gzip);
    for (name, entry) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        match entry {
            Entry::Bytes(bytes) => {
                header.set_mode(0o644);
                header.set_size(bytes.len() as u64);
                archive.append_data(&mut header, name, bytes.as_slice())?;
            }
            Entry::File(file, mode) => {
                let opened = std::fs::File::open(file)?;
                header.set_mode(*mode);
                header.set_size(opened.metadata()?.len());
                archive.append_data(&mut header, name, opened)?;
            }
        }
    }
    archive.into_inner()?.finish()?;
    // A package is for others to read (tempfile makes its files private).
    std::fs::set_permissions(temp.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    temp.as_file().sync_all()?;
    temp.persist(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_and_licences_travel_with_the_plugin() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["README.md", "LICENSE-MIT", "COPYING", "Cargo.toml", "notes.txt", ".README.swp"] {
            std::fs::write(dir.path().join(name), "x").expect("write");
        }
        std::fs::create_dir(dir.path().join("LICENSES")).expect("mkdir");
        let names: Vec<String> =
            docs(dir.path()).iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["COPYING", "LICENSE-MIT", "README.md"]);
    }
}
