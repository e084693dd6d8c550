//! Plugin packages: `reactor plugin package` makes one from a built plugin crate ([`make`]),
//! `reactor plugins install` checks one and installs it atomically into a plugin directory, and
//! `reactor plugins remove` takes it out again ([`install`]); both sign and verify with minisign
//! ([`signature`]).
//!
//! A package is a `.tar.gz` whose top level holds the plugin `.so` files, `reactor-plugin.json`
//! ([`PackageManifest`]), optionally `reactor-plugin.json.minisig` (a minisign signature of
//! `reactor-plugin.json`, which holds every file's sha256, so it covers the files too) and
//! optionally a README and a licence. Installed, it is the directory `DIR/<name>/` holding the
//! same files: that directory and its `reactor-plugin.json` are the record of what was installed.

pub mod install;
pub mod make;
pub mod signature;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::app::exit;
use crate::plugins::load::LoadError;
pub use crate::plugins::package_manifest::{PackageFile, PackageManifest, FILE_NAME as MANIFEST_NAME};

/// The signature of `reactor-plugin.json` in a package, as minisign names a signature file.
pub const SIGNATURE_NAME: &str = "reactor-plugin.json.minisig";

/// Why a packaging command refused or failed: one line, and the exit code it means.
#[derive(Debug)]
pub struct Refused {
    pub code: u8,
    pub message: String,
}

impl Refused {
    /// The input is unusable: a corrupt package, a bad signature, a collision, a bad name.
    pub fn invalid(message: impl Into<String>) -> Refused {
        Refused { code: exit::INVALID_INPUT, message: message.into() }
    }

    /// A plugin file does not load in this reactor (another interface, a failed load check).
    pub fn load(message: impl Into<String>) -> Refused {
        Refused { code: exit::PLUGIN_LOAD, message: message.into() }
    }

    /// Something on this machine failed (I/O, cargo).
    pub fn failed(message: impl Into<String>) -> Refused {
        Refused { code: exit::FAILED, message: message.into() }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Whether `name` may name a package (a directory in a plugin directory) or a file in one: no
/// path separators, no leading dot (dot entries are install's own leftovers, which discovery
/// skips), printable ASCII that needs no quoting.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
}

/// Whether a file in a package is documentation that may travel with the plugins.
pub fn is_doc_file(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["README", "LICENSE", "LICENCE", "COPYING", "NOTICE"].iter().any(|prefix| upper.starts_with(prefix))
}

/// Where the public keys of trusted package signers are: `$XDG_CONFIG_HOME/reactor/trusted-keys`,
/// by default `~/.config/reactor/trusted-keys`.
pub fn default_trusted_keys_dir() -> Option<PathBuf> {
    crate::plugins::discover::xdg_dir("XDG_CONFIG_HOME", ".config").map(|d| d.join("reactor/trusted-keys"))
}

/// Load errors of one file as one line: each problem without the `--load-plugin PATH: ` that
/// a build puts before it (the caller names the file its own way), joined by "; ", and a
/// remedy they all end with ("; the plugin's author must fix the module") said once.
pub fn load_problems(path: &Path, errors: &[LoadError]) -> String {
    let prefix = format!("--load-plugin {}: ", path.display());
    let problems: Vec<String> = errors
        .iter()
        .map(|e| {
            let text = e.to_string();
            text.strip_prefix(&prefix).map(str::to_owned).unwrap_or(text)
        })
        .collect();
    let remedy = |p: &String| p.rsplit_once("; ").map(|(_, remedy)| remedy.to_owned());
    match problems.first().and_then(remedy) {
        Some(shared) if problems.len() > 1 && problems.iter().all(|p| remedy(p).as_ref() == Some(&shared)) => {
            let tail = format!("; {shared}");
            let bare: Vec<&str> = problems.iter().map(|p| p.strip_suffix(&tail).unwrap_or(p)).collect();
            format!("{}{tail}", bare.join("; "))
        }
        _ => problems.join("; "),
    }
}

/// The keys of a file's plugins, for messages.
pub fn keys(file: &PackageFile) -> impl Iterator<Item = &str> {
    file.plugins.iter().map(|p| p.key.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_escape_or_hide_are_not_safe() {
        for bad in ["", ".hidden", "../x", "a/b", "a b", "x\n", "ü", ".reactor-staging-1"] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
        for good in ["logs_submitter", "libx.so", "vendor-plugin+1.2", "README.md"] {
            assert!(is_safe_name(good), "{good:?}");
        }
    }

    #[test]
    fn documentation_is_recognised_by_its_usual_names() {
        assert!(is_doc_file("README.md") && is_doc_file("LICENSE-MIT") && is_doc_file("licence.txt"));
        assert!(!is_doc_file("libx.so") && !is_doc_file("notes.txt"));
    }

    #[test]
    fn load_problems_are_one_line_with_a_shared_remedy_said_once() {
        let path = Path::new("/x/liba.so");
        let invalid = |problem: &str| LoadError::Invalid { path: path.to_path_buf(), problem: problem.to_owned() };
        assert_eq!(
            load_problems(path, &[invalid("plugin 'a' runs in no phase"), invalid("plugin number 2 has an empty key")]),
            "plugin 'a' runs in no phase; plugin number 2 has an empty key; the plugin's author must fix the module"
        );
        let other = LoadError::Broken { path: path.to_path_buf(), reason: "the module exports no plugins".to_owned() };
        assert_eq!(
            load_problems(path, &[other]),
            "the module exports no plugins; the plugin's author must fix the module"
        );
    }
}
