//! The build context as a tar stream: the context directory of the source tree under the
//! context overlay (what plugins changed), less what `.dockerignore` excludes, written by a
//! blocking walker into a bounded channel that the HTTP body reads from, so memory stays flat
//! however large the context is.
//!
//! The overlay is read first. An overlay entry shadows the tree's entry of the same relative
//! path (a directory in both is merged: its header and the rest of its entries come from the
//! tree), and `.dockerignore` is the overlay's when it has one. The tree is streamed as it is,
//! as the docker CLI streams a directory: symlinks as symlinks, the Dockerfile and
//! `.dockerignore` sent even when excluded. Entries a plugin deleted cannot be expressed: the
//! overlay only adds and replaces.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::mem;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use dockerignore::{DockerIgnore, PatternError};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use walkdir::WalkDir;

/// Chunks sent to the engine; with the channel's capacity this bounds the buffered context.
const CHUNK: usize = 64 * 1024;
const CHUNKS_IN_FLIGHT: usize = 8;

/// The directories a context is made of.
#[derive(Clone, Debug)]
pub struct ContextDirs {
    /// The context directory in the source tree.
    pub tree: PathBuf,
    /// The overlay's context directory, read first; `None` when the tree is the whole context.
    pub overlay: Option<PathBuf>,
}

impl ContextDirs {
    /// The context's `.dockerignore`: the overlay's when it has one, else the tree's.
    pub fn dockerignore(&self) -> Result<DockerIgnore, PatternError> {
        DockerIgnore::load(self.dockerignore_dir())
    }

    /// The directory whose `.dockerignore` is the context's, for [`ContextDirs::dockerignore`]
    /// and for messages naming the file.
    pub fn dockerignore_dir(&self) -> &Path {
        match &self.overlay {
            Some(overlay) if overlay.join(".dockerignore").symlink_metadata().is_ok() => overlay,
            _ => &self.tree,
        }
    }
}

/// Starts streaming `dirs` as a tar archive. `always` names files (relative to the context
/// directory) sent even when `.dockerignore` excludes them: the Dockerfile and `.dockerignore`,
/// as the docker CLI does.
pub fn tar_stream(dirs: ContextDirs, ignore: DockerIgnore, always: Vec<String>) -> ReceiverStream<io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let errors = tx.clone();
        let mut writer = ChannelWriter { buf: Vec::with_capacity(CHUNK), tx };
        let written = write_tar(&dirs, &ignore, &always, &mut writer).and_then(|()| writer.flush());
        if let Err(e) = written {
            // The receiver may be gone (build cancelled); then nobody needs the error either.
            let _ = errors.blocking_send(Err(e));
        }
    });
    ReceiverStream::new(rx)
}

/// What the overlay holds, by relative path: `true` for a directory that the tree's walk sends
/// too (a real directory there, under real directories), whose contents merge; `false` for an
/// entry that hides the tree's.
type Shadows = BTreeMap<String, bool>;

fn write_tar(dirs: &ContextDirs, ignore: &DockerIgnore, always: &[String], out: impl Write) -> io::Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let sent = |rel: &str| ignore.is_empty() || !ignore.is_excluded(rel) || always.iter().any(|a| a == rel);
    // The overlay is small (the Dockerfile and what plugins wrote): what it holds is kept, to
    // leave out what it shadows in the tree.
    let mut shadows = Shadows::new();
    if let Some(overlay) = &dirs.overlay {
        for entry in walk(overlay, ignore, &Shadows::new()) {
            let entry = entry?;
            let rel = relative(overlay, entry.path());
            let parent_merged = rel.rsplit_once('/').is_none_or(|(parent, _)| shadows.get(parent) == Some(&true));
            let merged = parent_merged
                && entry.file_type().is_dir()
                && dirs.tree.join(&rel).symlink_metadata().is_ok_and(|m| m.is_dir());
            shadows.insert(rel.clone(), merged);
            // A directory the tree has too is sent with the tree's header, once.
            if sent(&rel) && !merged {
                append(&mut tar, &entry, &rel)?;
            }
        }
    }
    for entry in walk(&dirs.tree, ignore, &shadows) {
        let entry = entry?;
        let rel = relative(&dirs.tree, entry.path());
        if sent(&rel) {
            append(&mut tar, &entry, &rel)?;
        }
    }
    tar.finish()
}

/// The entries below `dir`, sorted by name, without the excluded directories nothing below can
/// be re-included from, and without what `shadows` holds (except directories in both).
fn walk<'a>(
    dir: &'a Path,
    ignore: &'a DockerIgnore,
    shadows: &'a Shadows,
) -> impl Iterator<Item = io::Result<walkdir::DirEntry>> + 'a {
    let walker = WalkDir::new(dir).follow_links(false).sort_by_file_name().min_depth(1);
    walker
        .into_iter()
        .filter_entry(move |entry| {
            if shadows.is_empty() && ignore.is_empty() {
                return true;
            }
            let rel = relative(dir, entry.path());
            if shadows.get(&rel) == Some(&false) {
                return false;
            }
            // Prune an excluded directory unless an exception pattern may re-include something in it.
            !(entry.file_type().is_dir() && ignore.is_excluded(&rel) && !ignore.may_reinclude_below(&rel))
        })
        .map(|entry| entry.map_err(io::Error::from))
}

fn append(tar: &mut tar::Builder<impl Write>, entry: &walkdir::DirEntry, rel: &str) -> io::Result<()> {
    let path = entry.path();
    if let Some(kind) = special_file(entry.file_type()) {
        // Opening a FIFO would wait for a writer for ever; no build needs one in its context.
        log::warn!("{} is {kind}: not sent with the build context", path.display());
        return Ok(());
    }
    tar.append_path_with_name(path, rel).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// What a special file is (a FIFO, a socket, a device), which the context leaves out.
pub fn special_file(kind: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_socket() {
        Some("a socket")
    } else if kind.is_block_device() || kind.is_char_device() {
        Some("a device")
    } else {
        None
    }
}

/// `path` relative to `dir`, '/'-separated, as `.dockerignore` patterns see it.
fn relative(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// Buffers writes and sends them as chunks into the channel.
struct ChannelWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the engine stopped reading the context"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// What the context holds: each entry's path and its content (`dir`, `-> target` for a symlink).
    fn entries(dirs: &ContextDirs, always: &[&str]) -> Vec<(String, String)> {
        let ignore = dirs.dockerignore().expect("dockerignore");
        let always: Vec<String> = always.iter().map(|a| (*a).to_owned()).collect();
        let mut bytes = Vec::new();
        write_tar(dirs, &ignore, &always, &mut bytes).expect("tar");
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut out = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let path = entry.path().expect("path").display().to_string();
            let content = match entry.header().entry_type() {
                tar::EntryType::Directory => "dir".to_owned(),
                tar::EntryType::Symlink => {
                    format!("-> {}", entry.link_name().expect("link").expect("target").display())
                }
                _ => {
                    let mut text = String::new();
                    entry.read_to_string(&mut text).expect("read");
                    text
                }
            };
            out.push((path, content));
        }
        out
    }

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    fn layers() -> (tempfile::TempDir, ContextDirs) {
        let root = tempfile::tempdir().expect("tempdir");
        let dirs = ContextDirs { tree: root.path().join("tree"), overlay: Some(root.path().join("overlay")) };
        std::fs::create_dir_all(&dirs.tree).expect("mkdir");
        std::fs::create_dir_all(dirs.overlay.as_ref().expect("overlay")).expect("mkdir");
        (root, dirs)
    }

    #[test]
    fn the_overlay_comes_first_and_shadows_the_trees_entries_and_directories_merge() {
        let (_root, dirs) = layers();
        write(&dirs.tree, &[("Dockerfile", "FROM tree"), ("a.txt", "tree a"), ("b.txt", "tree b"), ("d/x", "tree x")]);
        std::os::unix::fs::symlink("b.txt", dirs.tree.join("link")).expect("symlink");
        let overlay = dirs.overlay.as_ref().expect("overlay");
        write(
            overlay,
            &[("Dockerfile", "FROM overlay"), ("a.txt", "overlay a"), ("c.txt", "overlay c"), ("d/y", "overlay y")],
        );
        assert_eq!(
            entries(&dirs, &[]),
            pairs(&[
                ("Dockerfile", "FROM overlay"),
                ("a.txt", "overlay a"),
                ("c.txt", "overlay c"),
                ("d/y", "overlay y"),
                ("b.txt", "tree b"),
                ("d", "dir"),
                ("d/x", "tree x"),
                ("link", "-> b.txt"),
            ])
        );
    }

    #[test]
    fn an_overlay_file_shadows_a_tree_directory_or_symlink_of_its_name_and_the_reverse() {
        let (_root, dirs) = layers();
        write(&dirs.tree, &[("x/inner", "tree"), ("y", "tree y")]);
        std::os::unix::fs::symlink("x", dirs.tree.join("z")).expect("symlink");
        let overlay = dirs.overlay.as_ref().expect("overlay");
        write(overlay, &[("x", "overlay x"), ("y/inner", "overlay y"), ("z/inner", "overlay z")]);
        assert_eq!(
            entries(&dirs, &[]),
            pairs(&[
                ("x", "overlay x"),
                ("y", "dir"),
                ("y/inner", "overlay y"),
                ("z", "dir"),
                ("z/inner", "overlay z"),
            ])
        );
    }

    #[test]
    fn an_overlay_directory_where_the_tree_has_a_symlink_is_sent_whole_with_its_headers() {
        let (_root, dirs) = layers();
        write(&dirs.tree, &[("real/d/f", "tree f")]);
        std::os::unix::fs::symlink("real", dirs.tree.join("z")).expect("symlink");
        write(dirs.overlay.as_ref().expect("overlay"), &[("z/d/inner", "overlay")]);
        assert_eq!(
            entries(&dirs, &[]),
            pairs(&[
                ("z", "dir"),
                ("z/d", "dir"),
                ("z/d/inner", "overlay"),
                ("real", "dir"),
                ("real/d", "dir"),
                ("real/d/f", "tree f"),
            ])
        );
    }

    #[test]
    fn the_overlays_dockerignore_wins_and_applies_to_both_with_the_dockerfile_always_sent() {
        let (_root, dirs) = layers();
        write(&dirs.tree, &[(".dockerignore", "*.log\n"), ("Dockerfile", "FROM tree"), ("a.log", "l"), ("a.txt", "t")]);
        let overlay = dirs.overlay.as_ref().expect("overlay");
        write(
            overlay,
            &[(".dockerignore", "*.txt\nDockerfile\n.dockerignore\n"), ("Dockerfile", "FROM o"), ("b.txt", "b")],
        );
        assert_eq!(
            entries(&dirs, &["Dockerfile", ".dockerignore"]),
            pairs(
                &[(".dockerignore", "*.txt\nDockerfile\n.dockerignore\n"), ("Dockerfile", "FROM o"), ("a.log", "l"),]
            )
        );
        // Without one in the overlay, the tree's applies, to the overlay's files too.
        std::fs::remove_file(overlay.join(".dockerignore")).expect("rm");
        write(overlay, &[("c.log", "c")]);
        assert_eq!(
            entries(&dirs, &["Dockerfile", ".dockerignore"]),
            pairs(&[("Dockerfile", "FROM o"), ("b.txt", "b"), (".dockerignore", "*.log\n"), ("a.txt", "t")])
        );
    }

    #[test]
    fn without_an_overlay_the_tree_is_the_context() {
        let (_root, mut dirs) = layers();
        dirs.overlay = None;
        write(
            &dirs.tree,
            &[(".dockerignore", "build\n!build/keep\n"), ("build/out", "o"), ("build/keep", "k"), ("f", "f")],
        );
        assert_eq!(
            entries(&dirs, &[]),
            pairs(&[(".dockerignore", "build\n!build/keep\n"), ("build/keep", "k"), ("f", "f")])
        );
    }
}
