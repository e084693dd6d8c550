//! The build context as a tar stream: the context directory, less what `.dockerignore` excludes,
//! written by a blocking walker into a bounded channel that the HTTP body reads from, so memory
//! stays flat however large the context is.

use std::io::{self, Write};
use std::mem;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use dockerignore::DockerIgnore;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use walkdir::WalkDir;

/// Chunks sent to the engine; with the channel's capacity this bounds the buffered context.
const CHUNK: usize = 64 * 1024;
const CHUNKS_IN_FLIGHT: usize = 8;

/// Starts streaming `dir` as a tar archive. `always` names files (relative to `dir`) sent even
/// when `.dockerignore` excludes them: the Dockerfile and `.dockerignore`, as the docker CLI does.
pub fn tar_stream(dir: PathBuf, ignore: DockerIgnore, always: Vec<String>) -> ReceiverStream<io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let errors = tx.clone();
        let mut writer = ChannelWriter { buf: Vec::with_capacity(CHUNK), tx };
        let written = write_tar(&dir, &ignore, &always, &mut writer).and_then(|()| writer.flush());
        if let Err(e) = written {
            // The receiver may be gone (build cancelled); then nobody needs the error either.
            let _ = errors.blocking_send(Err(e));
        }
    });
    ReceiverStream::new(rx)
}

fn write_tar(dir: &Path, ignore: &DockerIgnore, always: &[String], out: &mut ChannelWriter) -> io::Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let walker = WalkDir::new(dir).follow_links(false).sort_by_file_name().min_depth(1);
    let mut entries = walker.into_iter().filter_entry(|entry| {
        if ignore.is_empty() {
            return true;
        }
        let rel = relative(dir, entry.path());
        // Prune an excluded directory unless an exception pattern may re-include something in it.
        !(entry.file_type().is_dir() && ignore.is_excluded(&rel) && !ignore.may_reinclude_below(&rel))
    });
    while let Some(entry) = entries.next().transpose().map_err(io::Error::from)? {
        let rel = relative(dir, entry.path());
        if !ignore.is_empty() && ignore.is_excluded(&rel) && !always.contains(&rel) {
            continue;
        }
        tar.append_path_with_name(entry.path(), &rel)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", entry.path().display())))?;
    }
    tar.finish()
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
