//! What reactor learned about plugin files when it loaded or hashed them, so that listing them
//! later runs none of their code and a build opens only the files it needs.
//!
//! One JSON file, `$XDG_CACHE_HOME/reactor/plugin-manifests.json` (default
//! `~/.cache/reactor/…`), maps a file's path to its identity when it was read (device, inode,
//! size, modification and change times, to the nanosecond) and what was learned then: its
//! plugins' manifests, or why it did not load, and its sha256. An entry counts only while the file
//! still has that identity: a file replaced, rewritten or even `touch`ed back to its old time
//! changes its change time, which no user can set. The whole cache belongs to one reactor
//! release and interface version; another release starts afresh (its checks may differ).
//!
//! The cache is a convenience: when it cannot be read or written, files are simply read again.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use reactor_plugin_api::Manifest;
use serde::{Deserialize, Serialize};

/// A file's identity: any change to its bytes or its inode changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl FileId {
    pub fn of(metadata: &Metadata) -> FileId {
        let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        FileId {
            dev: metadata.dev(),
            ino: metadata.ino(),
            size: metadata.size(),
            mtime_ns: ns(metadata.mtime(), metadata.mtime_nsec()),
            ctime_ns: ns(metadata.ctime(), metadata.ctime_nsec()),
        }
    }
}

/// Why a file did not load in this reactor, and the keys it holds when its handshake told them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CachedFailure {
    pub reason: String,
    #[serde(default)]
    pub keys: Vec<String>,
    /// The cause may lie outside the file (dlopen could not resolve a library it needs), so a
    /// build tries it again; a listing still shows the reason.
    #[serde(default)]
    pub retry: bool,
}

/// What is known of one file with a given identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CachedFile {
    pub id: FileId,
    #[serde(default)]
    pub sha256: Option<String>,
    /// The reactor-plugin-api version it was built against, once loaded.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Its plugins' manifests, once it loaded.
    #[serde(default)]
    pub plugins: Option<Vec<Manifest>>,
    /// Why it did not load, if it did not.
    #[serde(default)]
    pub failure: Option<CachedFailure>,
}

impl CachedFile {
    pub fn new(id: FileId) -> CachedFile {
        CachedFile { id, sha256: None, api_version: None, plugins: None, failure: None }
    }
}

#[derive(Default, Serialize, Deserialize)]
struct OnDisk {
    host: String,
    files: BTreeMap<PathBuf, CachedFile>,
}

/// The cache, read on first use and written back by [`ManifestCache::save`] when changed.
#[derive(Default)]
pub struct ManifestCache {
    path: Option<PathBuf>,
    loaded: Option<OnDisk>,
    changed: bool,
}

/// The release and interface the cached outcomes hold for.
fn host() -> String {
    format!("reactor {} reactor-plugin-api {}", env!("CARGO_PKG_VERSION"), reactor_plugin_api::API_VERSION)
}

impl ManifestCache {
    /// The cache of the current user (none when neither XDG_CACHE_HOME nor HOME is set).
    pub fn for_user() -> ManifestCache {
        let dir = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")));
        ManifestCache { path: dir.map(|d| d.join("reactor").join("plugin-manifests.json")), ..Default::default() }
    }

    fn files(&mut self) -> &mut BTreeMap<PathBuf, CachedFile> {
        let path = self.path.clone();
        &mut self
            .loaded
            .get_or_insert_with(|| {
                let read = path.as_deref().and_then(|p| std::fs::read(p).ok());
                let disk = read.and_then(|bytes| serde_json::from_slice::<OnDisk>(&bytes).ok());
                match disk {
                    Some(disk) if disk.host == host() => disk,
                    _ => OnDisk { host: host(), files: BTreeMap::new() },
                }
            })
            .files
    }

    /// What is known of `path` while it has identity `id`.
    pub fn get(&mut self, path: &Path, id: FileId) -> Option<CachedFile> {
        self.files().get(path).filter(|entry| entry.id == id).cloned()
    }

    /// Records what is known of `path` now.
    pub fn put(&mut self, path: &Path, entry: CachedFile) {
        let files = self.files();
        if files.get(path) != Some(&entry) {
            files.insert(path.to_path_buf(), entry);
            self.changed = true;
        }
    }

    /// Writes the cache back if anything changed, through a temporary file renamed into place
    /// so that a concurrent reader sees the old or the new cache, never half of one. Entries of
    /// files that no longer exist are dropped.
    pub fn save(&mut self) {
        let (Some(path), Some(disk)) = (&self.path, &mut self.loaded) else {
            return;
        };
        if !self.changed {
            return;
        }
        disk.files.retain(|file, _| file.exists());
        let write = || -> std::io::Result<()> {
            let dir = path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            let mut temp = tempfile::NamedTempFile::new_in(dir)?;
            serde_json::to_writer(&mut temp, &*disk)?;
            temp.persist(path).map_err(|e| e.error)?;
            Ok(())
        };
        match write() {
            Ok(()) => self.changed = false,
            Err(e) => log::debug!("cannot write the plugin manifest cache {}: {e}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor_plugin_api::Phase;

    #[test]
    fn an_entry_counts_only_while_the_file_is_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("libx.so");
        std::fs::write(&file, b"one").expect("write");
        let id = FileId::of(&std::fs::metadata(&file).expect("stat"));
        let mut entry = CachedFile::new(id);
        entry.plugins = Some(vec![Manifest::new("x", [Phase::Exit], "1")]);

        let path = dir.path().join("cache/plugin-manifests.json");
        let mut cache = ManifestCache { path: Some(path.clone()), ..Default::default() };
        cache.put(&file, entry.clone());
        cache.save();
        let mut again = ManifestCache { path: Some(path.clone()), ..Default::default() };
        assert_eq!(again.get(&file, id), Some(entry));

        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(&file, b"two").expect("rewrite");
        let changed = FileId::of(&std::fs::metadata(&file).expect("stat"));
        assert_ne!(changed, id);
        assert_eq!(again.get(&file, changed), None);

        // Another release's cache is not used.
        std::fs::write(&path, r#"{"host": "reactor 0.0.1", "files": {}}"#).expect("write");
        let mut other = ManifestCache { path: Some(path), ..Default::default() };
        assert_eq!(other.get(&file, id), None);
    }
}
