//! The build log, spooled to disk as the build prints it: reactor's memory stays the same whether
//! a build prints a hundred lines or gigabytes of progress bars.
//!
//! A [`BuildLogWriter`] appends lines to an unnamed temporary file (in `TMPDIR`; it has no name,
//! so it is gone when reactor closes it or dies), one `\n` after each, counting lines and bytes;
//! [`BuildLogWriter::finish`] makes it a [`BuildLog`], which never changes again and is read from
//! any thread: by pages for plugins (`Request::ReadBuildLog`), or its last lines for the workflow
//! snapshot ([`SNAPSHOT_LOG_BYTES`](reactor_plugin_api::protocol::SNAPSHOT_LOG_BYTES)). A line
//! holds no `\n` and at most [`MAX_LINE_BYTES`]: text with newlines is several lines, a longer
//! line is cut in pieces, as the engine's output is.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;

use reactor_plugin_api::build_log::json_string_length;
use reactor_plugin_api::protocol::{BuildLogPage, MAX_LOG_PAGE_BYTES};

use crate::engine::{floor_char_boundary, MAX_LINE_BYTES};

/// What went wrong with the spool.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the build log's spool file in {dir}: {source}; free space there, or set TMPDIR to a directory with room")]
    Io { dir: String, source: io::Error },
    #[error("the build log has no line at offset {offset}: read from 0, then from each page's next_offset")]
    NotALine { offset: u64 },
}

fn io_error(source: io::Error) -> Error {
    Error::Io { dir: std::env::temp_dir().display().to_string(), source }
}

/// The log being written.
pub struct BuildLogWriter {
    out: BufWriter<File>,
    lines: u64,
    bytes: u64,
    /// The lines' length as JSON strings, for plugins that send the log as JSON.
    json_bytes: u64,
}

impl BuildLogWriter {
    /// A new, empty spool.
    pub fn new() -> Result<BuildLogWriter, Error> {
        let file = tempfile::tempfile().map_err(io_error)?;
        Ok(BuildLogWriter { out: BufWriter::with_capacity(64 * 1024, file), lines: 0, bytes: 0, json_bytes: 0 })
    }

    /// Appends `text` as one line, or as several when it holds newlines or is longer than
    /// [`MAX_LINE_BYTES`].
    pub fn line(&mut self, text: &str) -> Result<(), Error> {
        for line in text.split('\n') {
            let mut rest = line;
            loop {
                let cut =
                    if rest.len() <= MAX_LINE_BYTES { rest.len() } else { floor_char_boundary(rest, MAX_LINE_BYTES) };
                let (piece, after) = rest.split_at(cut);
                self.out.write_all(piece.as_bytes()).and_then(|()| self.out.write_all(b"\n")).map_err(io_error)?;
                self.lines += 1;
                self.bytes += piece.len() as u64 + 1;
                self.json_bytes += json_string_length(piece);
                if after.is_empty() {
                    break;
                }
                rest = after;
            }
        }
        Ok(())
    }

    /// The log as written, to be read.
    pub fn finish(self) -> Result<BuildLog, Error> {
        let file = self.out.into_inner().map_err(|e| io_error(e.into_error()))?;
        Ok(BuildLog { file, lines: self.lines, bytes: self.bytes, json_bytes: self.json_bytes })
    }
}

/// A build log on disk, complete.
#[derive(Debug)]
pub struct BuildLog {
    file: File,
    lines: u64,
    bytes: u64,
    json_bytes: u64,
}

impl BuildLog {
    /// A log of these lines (a buildstep plugin's own builder's, `SetBuildResult`).
    pub fn from_lines<'a>(lines: impl IntoIterator<Item = &'a String>) -> Result<BuildLog, Error> {
        let mut writer = BuildLogWriter::new()?;
        for line in lines {
            writer.line(line)?;
        }
        writer.finish()
    }

    /// How many lines it has.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Its size, a newline after each line.
    #[cfg(test)]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The whole lines from byte `offset` (0, or where a line starts) within `max_bytes` (capped
    /// at [`MAX_LOG_PAGE_BYTES`]), newlines counted, and at least one.
    pub fn page(&self, offset: u64, max_bytes: u64) -> Result<BuildLogPage, Error> {
        if offset > self.bytes || (offset > 0 && self.byte_at(offset - 1)? != b'\n') {
            return Err(Error::NotALine { offset });
        }
        let remaining = self.bytes - offset;
        let mut text = self.read(offset, max_bytes.min(MAX_LOG_PAGE_BYTES).min(remaining))?;
        match text.iter().rposition(|b| *b == b'\n') {
            Some(end) => text.truncate(end + 1),
            // Not even one line fits: the first line whole, which is at most MAX_LINE_BYTES.
            None if remaining > 0 => {
                text = self.read(offset, remaining.min(MAX_LINE_BYTES as u64 + 1))?;
                let end = text.iter().position(|b| *b == b'\n').ok_or_else(|| {
                    io_error(io::Error::new(io::ErrorKind::InvalidData, "a line longer than the longest written"))
                })?;
                text.truncate(end + 1);
            }
            None => {}
        }
        let next_offset = offset + text.len() as u64;
        Ok(BuildLogPage {
            lines: split_lines(&text),
            next_offset,
            done: next_offset == self.bytes,
            total_lines: Some(self.lines),
            total_json_bytes: Some(self.json_bytes),
        })
    }

    /// The last lines that fit in `max_bytes`, newlines counted, and how many lines came before
    /// them.
    pub fn tail(&self, max_bytes: u64) -> Result<(Vec<String>, u64), Error> {
        if self.bytes <= max_bytes {
            return Ok((split_lines(&self.read(0, self.bytes)?), 0));
        }
        // From the byte before the window, to see whether the window starts a line.
        let start = self.bytes - max_bytes;
        let text = self.read(start - 1, max_bytes + 1)?;
        let first_line = match text.iter().position(|b| *b == b'\n') {
            Some(end) => end + 1,
            None => text.len(),
        };
        let lines = split_lines(&text[first_line..]);
        let omitted = self.lines - lines.len() as u64;
        Ok((lines, omitted))
    }

    fn byte_at(&self, offset: u64) -> Result<u8, Error> {
        let mut byte = [0u8];
        self.file.read_exact_at(&mut byte, offset).map_err(io_error)?;
        Ok(byte[0])
    }

    fn read(&self, offset: u64, length: u64) -> Result<Vec<u8>, Error> {
        let mut text = vec![0u8; usize::try_from(length).map_err(|e| io_error(io::Error::other(e)))?];
        self.file.read_exact_at(&mut text, offset).map_err(io_error)?;
        Ok(text)
    }
}

/// Lines of `text`, each ended by a newline.
fn split_lines(text: &[u8]) -> Vec<String> {
    if text.is_empty() {
        return Vec::new();
    }
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    // Only whole `&str`s were written, so this is UTF-8; lossy rather than fail if it is not.
    text.split(|b| *b == b'\n').map(|line| String::from_utf8_lossy(line).into_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(lines: &[&str]) -> BuildLog {
        let mut writer = BuildLogWriter::new().expect("a spool");
        for line in lines {
            writer.line(line).expect("written");
        }
        writer.finish().expect("finished")
    }

    /// Every line, read by pages of `max_bytes`.
    fn read_all(log: &BuildLog, max_bytes: u64) -> (Vec<String>, usize) {
        let (mut lines, mut pages, mut offset) = (Vec::new(), 0, 0);
        loop {
            let page = log.page(offset, max_bytes).expect("a page");
            pages += 1;
            lines.extend(page.lines);
            offset = page.next_offset;
            if page.done {
                return (lines, pages);
            }
        }
    }

    #[test]
    fn lines_are_counted_and_read_back_by_pages_of_whole_lines() {
        let lines: Vec<String> = (0..1000).map(|n| format!("line {n:04} é")).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let log = log_of(&refs);
        // "line 0000 é" is 12 bytes, and a newline.
        assert_eq!((log.lines(), log.bytes()), (1000, 13_000));
        // Every page says the whole log's totals; "line 0000 é" is 14 bytes as a JSON string.
        let first = log.page(0, 13).expect("a page");
        assert_eq!((first.total_lines, first.total_json_bytes), (Some(1000), Some(14_000)));
        for (max_bytes, pages) in [(13, 1000), (25, 1000), (26, 500), (1000, 14), (MAX_LOG_PAGE_BYTES * 4, 1)] {
            assert_eq!(read_all(&log, max_bytes), (lines.clone(), pages), "pages of {max_bytes}");
        }
        let page = log.page(26, 26).expect("from the third line");
        assert_eq!((page.lines, page.next_offset, page.done), (vec![lines[2].clone(), lines[3].clone()], 52, false));
        let end = log.page(13_000, 100).expect("at the end");
        assert_eq!((end.lines.len(), end.next_offset, end.done), (0, 13_000, true));
    }

    #[test]
    fn a_page_holds_at_least_one_line_however_small_it_is_asked() {
        let long = "x".repeat(MAX_LINE_BYTES);
        let log = log_of(&["a", &long, "b"]);
        let page = log.page(2, 0).expect("one line");
        assert_eq!((page.lines, page.next_offset), (vec![long.clone()], 3 + MAX_LINE_BYTES as u64));
        assert_eq!(read_all(&log, 1), (vec!["a".to_owned(), long, "b".to_owned()], 3));
    }

    #[test]
    fn an_offset_that_is_not_a_lines_start_is_refused() {
        let log = log_of(&["abc", "def"]);
        for offset in [1, 3, 9] {
            let err = log.page(offset, 100).expect_err("not a line's start");
            assert_eq!(
                err.to_string(),
                format!("the build log has no line at offset {offset}: read from 0, then from each page's next_offset")
            );
        }
        assert_eq!(log.page(4, 100).expect("the second line").lines, ["def"]);
    }

    #[test]
    fn text_with_newlines_is_several_lines_and_a_long_line_pieces() {
        let long = "é".repeat(MAX_LINE_BYTES); // twice the limit in bytes
        let log = log_of(&["one\ntwo", "", &long]);
        let (lines, _) = read_all(&log, MAX_LOG_PAGE_BYTES);
        assert_eq!(lines[..3], ["one", "two", ""]);
        assert_eq!(lines[3..].concat(), long);
        assert_eq!(lines[3..].iter().map(String::len).collect::<Vec<_>>(), [MAX_LINE_BYTES, MAX_LINE_BYTES]);
        assert_eq!(log.lines(), 5);
    }

    #[test]
    fn the_tail_is_the_last_whole_lines_that_fit() {
        let lines: Vec<String> = (0..100).map(|n| format!("{n:>9}")).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let log = log_of(&refs);
        assert_eq!(log.tail(1000).expect("all"), (lines.clone(), 0));
        assert_eq!(log.tail(5000).expect("all"), (lines.clone(), 0));
        // 10 bytes a line: 995 bytes hold 99 whole lines, 990 too.
        assert_eq!(log.tail(999).expect("tail"), (lines[1..].to_vec(), 1));
        assert_eq!(log.tail(990).expect("tail"), (lines[1..].to_vec(), 1));
        assert_eq!(log.tail(989).expect("tail"), (lines[2..].to_vec(), 2));
        assert_eq!(log.tail(5).expect("nothing fits"), (Vec::new(), 100));
        let empty = log_of(&[]);
        assert_eq!((empty.tail(10).expect("empty"), empty.lines()), ((Vec::new(), 0), 0));
    }

    #[test]
    fn a_plugins_lines_make_a_log() {
        let log = BuildLog::from_lines(&["Step 1/1 : FROM scratch".to_owned(), "built".to_owned()]).expect("spooled");
        assert_eq!(log.tail(100).expect("all").0, ["Step 1/1 : FROM scratch", "built"]);
    }
}
