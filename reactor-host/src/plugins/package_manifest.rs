//! `reactor-plugin.json`: what an installed plugin package says about itself, so that reactor can
//! list its plugins without running any of their code.
//!
//! A plugin directory holds hand-dropped `lib*.so` files at its top level and installed packages,
//! each a subdirectory `DIR/<name>/` with its `.so` files and this file. `plugins install` writes
//! it; discovery reads it, and checks a file's sha256 against it before opening that file.
//!
//! ```json
//! {"name": "acme-tools", "version": "1.2.0", "api_version": "1.1.0",
//!  "files": [{"name": "libacme_tools.so", "sha256": "<64 hex digits>",
//!             "plugins": [{"key": "acme_scan", "phases": ["postbuild"], "version": "1.2.0", …}]}]}
//! ```
//!
//! Unknown fields are ignored, so a later reactor may add some.

use std::io::Read;
use std::path::Path;

use reactor_plugin_api::Manifest;
use serde::{Deserialize, Serialize};

/// The file's name inside a package directory.
pub const FILE_NAME: &str = "reactor-plugin.json";

/// An installed package's `reactor-plugin.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PackageManifest {
    /// The package's name: also the name of its directory.
    pub name: String,
    /// The package's own version.
    pub version: String,
    /// The `reactor-plugin-api` version its files were built against.
    pub api_version: String,
    /// Its shared objects.
    pub files: Vec<PackageFile>,
}

/// One shared object of a package.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PackageFile {
    /// The file's name in the package directory (a plain name, `lib*.so`).
    pub name: String,
    /// The sha256 of the file's bytes, lowercase hex.
    pub sha256: String,
    /// The manifests of the plugins the file exports, in the module's order.
    pub plugins: Vec<Manifest>,
}

impl PackageManifest {
    /// Reads and checks `DIR/reactor-plugin.json`; the error is one line naming the file.
    pub fn read(package_dir: &Path) -> Result<PackageManifest, String> {
        let path = package_dir.join(FILE_NAME);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let manifest: PackageManifest = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a readable package manifest: {e}", path.display()))?;
        manifest.check().map_err(|problem| format!("{}: {problem}", path.display()))?;
        Ok(manifest)
    }

    /// What is wrong with it, if anything: a file name that leaves the package directory or is
    /// not a `.so`, the same file twice, a sha256 that is not 64 hex digits, an empty name.
    pub fn check(&self) -> Result<(), String> {
        if !is_plain_name(&self.name) {
            return Err(format!("the package name '{}' is not a plain directory name", self.name));
        }
        for (index, file) in self.files.iter().enumerate() {
            if !is_plain_name(&file.name) || !file.name.ends_with(".so") {
                return Err(format!("the file name '{}' is not a plain name ending in .so", file.name));
            }
            if self.files[..index].iter().any(|earlier| earlier.name == file.name) {
                return Err(format!("the file '{}' is listed twice", file.name));
            }
            if file.sha256.len() != 64 || !file.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(format!("the sha256 of '{}' is not 64 lowercase hex digits", file.name));
            }
        }
        Ok(())
    }
}

/// A name that stays in its directory: not empty, not `.` or `..`, no `/`.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

/// The sha256 of a file's bytes, lowercase hex, read in blocks.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut block)?;
        if n == 0 {
            break;
        }
        hasher.update(&block[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor_plugin_api::Phase;

    fn sample() -> PackageManifest {
        PackageManifest {
            name: "acme-tools".into(),
            version: "1.2.0".into(),
            api_version: "1.1.0".into(),
            files: vec![PackageFile {
                name: "libacme_tools.so".into(),
                sha256: "0".repeat(64),
                plugins: vec![Manifest::new("acme_scan", [Phase::Postbuild], "1.2.0")],
            }],
        }
    }

    #[test]
    fn reads_back_what_was_written_and_refuses_names_that_leave_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE_NAME), serde_json::to_string(&sample()).expect("json")).expect("write");
        assert_eq!(PackageManifest::read(dir.path()), Ok(sample()));

        let mut escaping = sample();
        escaping.files[0].name = "../libx.so".into();
        assert!(escaping.check().is_err());
        let mut bad_sum = sample();
        bad_sum.files[0].sha256 = "ABC".into();
        assert!(bad_sum.check().expect_err("a bad sum").contains("sha256"));
        std::fs::write(dir.path().join(FILE_NAME), "{").expect("write");
        assert!(PackageManifest::read(dir.path()).expect_err("not JSON").contains("not a readable package manifest"));
    }

    #[test]
    fn hashes_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").expect("write");
        assert_eq!(
            sha256_file(&path).expect("hash"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
