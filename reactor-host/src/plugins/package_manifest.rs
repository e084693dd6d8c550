//! `reactor-plugin.json`: what a plugin package holds, written by `reactor plugin package`, kept
//! by `reactor plugins install` in `DIR/<name>/` as the record of what it installed, and read by
//! discovery to list the plugins without running their code.

use reactor_plugin_api::Manifest;
use serde::{Deserialize, Serialize};

/// The file's name, in a package and in an installed package's directory.
pub const FILE_NAME: &str = "reactor-plugin.json";

/// A package: its name and version, the reactor-plugin-api version its files were built
/// against, and each file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PackageManifest {
    pub name: String,
    pub version: String,
    pub api_version: String,
    pub files: Vec<PackageFile>,
}

/// One shared object of a package: its file name, its sha256 (lowercase hex) and its plugins'
/// manifests, in the order the module lists them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PackageFile {
    pub name: String,
    pub sha256: String,
    pub plugins: Vec<Manifest>,
}
