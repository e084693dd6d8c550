//! The build log as a stream: [`Lines`], what [`Context::build_log`] returns, reads it from the
//! host a page at a time, and [`JsonReader`] renders it as a JSON document for an HTTP body,
//! so that a plugin's memory stays small whatever the build printed.
//!
//! A build may print gigabytes (a `\r`-redrawn progress bar, a verbose test suite). reactor
//! spools the log to disk as the build runs; a workflow snapshot carries only its last lines
//! ([`SNAPSHOT_LOG_BYTES`](crate::protocol::SNAPSHOT_LOG_BYTES)), and a plugin that needs all of
//! it reads it here. With a host older than protocol 1.2 (no `logs.read`), both read the whole
//! log from the snapshot instead, as plugins of that time did.

use std::io::{self, Read};

use crate::protocol::MAX_LOG_PAGE_BYTES;
use crate::{Context, ErrorKind, PluginError};

/// The lines of the build log, in order: see [`Context::build_log`].
///
/// It owns a clone of the context, so it may be handed to a reader that outlives a borrow (an
/// HTTP body); like the context, it reads only while the plugin's run lasts.
pub struct Lines {
    ctx: Context,
    source: Source,
}

enum Source {
    /// Nothing asked yet: the first `next` decides between pages and the snapshot.
    Start,
    /// Reading by pages (`logs.read`): the page being handed out, and where the next starts.
    Pages { page: std::vec::IntoIter<String>, next_offset: u64, done: bool },
    /// Reading the snapshot's lines (a host without `logs.read`).
    Snapshot(std::vec::IntoIter<String>),
    /// An error was returned: there is nothing more.
    Ended,
}

impl Lines {
    pub(crate) fn new(ctx: Context) -> Lines {
        Lines { ctx, source: Source::Start }
    }

    /// The whole log's line count and length as JSON strings, when the host says them with the
    /// first page (reactor ≥ 0.3.0); `None` otherwise. Asks for the first page, which the
    /// iterator then hands out; call it before the first `next`.
    pub fn totals(&mut self) -> Result<Option<(u64, u64)>, PluginError> {
        if !matches!(self.source, Source::Start) || !self.ctx.supports("logs.read") {
            return Ok(None);
        }
        let first = self.ctx.read_build_log(0, MAX_LOG_PAGE_BYTES)?;
        let totals = first.total_lines.zip(first.total_json_bytes);
        self.source = Source::Pages { page: first.lines.into_iter(), next_offset: first.next_offset, done: first.done };
        Ok(totals)
    }

    fn fail(&mut self, error: PluginError) -> Option<Result<String, PluginError>> {
        self.source = Source::Ended;
        Some(Err(error))
    }
}

impl Iterator for Lines {
    type Item = Result<String, PluginError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match &mut self.source {
                Source::Start => {
                    if self.ctx.supports("logs.read") {
                        self.source = Source::Pages { page: Vec::new().into_iter(), next_offset: 0, done: false };
                    } else {
                        match self.ctx.build_result() {
                            Ok(result) => self.source = Source::Snapshot(result.logs.into_iter()),
                            Err(e) => return self.fail(e),
                        }
                    }
                }
                Source::Snapshot(lines) => return lines.next().map(Ok),
                Source::Ended => return None,
                Source::Pages { page, next_offset, done } => {
                    if let Some(line) = page.next() {
                        return Some(Ok(line));
                    }
                    if *done {
                        return None;
                    }
                    let offset = *next_offset;
                    let read = match self.ctx.read_build_log(offset, MAX_LOG_PAGE_BYTES) {
                        Ok(read) => read,
                        Err(e) => return self.fail(e),
                    };
                    // A page that neither ends the log nor moves on would loop for ever.
                    if !read.done && read.next_offset <= offset {
                        let message = format!("the host's page of the build log at {offset} does not move on");
                        return self.fail(PluginError::with_kind(ErrorKind::Host, message));
                    }
                    *page = read.lines.into_iter();
                    *next_offset = read.next_offset;
                    *done = read.done;
                }
            }
        }
    }
}

/// The build log as the JSON document `{"KEY": ["line", …]}`, rendered as it is read, exactly
/// as `serde_json` writes it compactly; its length is known before the first byte is read, so it
/// can be sent with a `Content-Length` (servers such as Python's `http.server` do not read a
/// chunked body):
///
/// ```no_run
/// # fn run(ctx: &reactor_plugin_api::Context) -> Result<(), reactor_plugin_api::PluginError> {
/// use reactor_plugin_api::build_log::JsonReader;
///
/// let body = JsonReader::new(ctx, "logs")?; // knows its length before it is read
/// let (length, lines) = (body.len(), body.lines());
/// // reqwest::blocking::Body::sized(body, length) streams it; so does io::copy(&mut body, …).
/// # Ok(()) }
/// ```
///
/// [`JsonReader::new`] learns the document's length from the host's first page (or, from a host
/// that does not say it, by reading the log a first time); reading the reader reads the log. It holds one line at a time. Should the log differ on the second reading
/// (it does not change once built), reading fails rather than send another length than the one
/// announced.
pub struct JsonReader {
    lines: Lines,
    key: String,
    length: u64,
    line_count: u64,
    /// Rendered bytes not read yet: `buffer[position..]`.
    buffer: Vec<u8>,
    position: usize,
    stage: Stage,
    sent: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Opening,
    Lines { first: bool },
    Closed,
}

impl JsonReader {
    /// The build log of `ctx` as `{"<key>": [lines]}`. A host that says the log's totals
    /// (reactor ≥ 0.3.0) gives its length at once; with another, the log is read once to measure it.
    pub fn new(ctx: &Context, key: &str) -> Result<JsonReader, PluginError> {
        let key = serde_json::to_string(key).map_err(PluginError::from)?;
        let mut lines = ctx.build_log();
        let (line_count, json_bytes) = match lines.totals()? {
            Some(totals) => totals,
            None => {
                let (mut count, mut bytes) = (0u64, 0u64);
                for line in ctx.build_log() {
                    bytes += json_string_length(&line?);
                    count += 1;
                }
                (count, bytes)
            }
        };
        // `{` key `:[` … `]}`, and the commas between lines.
        let length = key.len() as u64 + 5 + json_bytes + line_count.saturating_sub(1);
        Ok(JsonReader {
            lines,
            key,
            length,
            line_count,
            buffer: Vec::new(),
            position: 0,
            stage: Stage::Opening,
            sent: 0,
        })
    }

    /// The length of the whole document, in bytes.
    #[allow(clippy::len_without_is_empty)] // never empty: it is at least `{"key":[]}`.
    pub fn len(&self) -> u64 {
        self.length
    }

    /// How many lines the log has.
    pub fn lines(&self) -> u64 {
        self.line_count
    }

    /// Renders the next piece of the document into the empty buffer; `false` at its end.
    fn refill(&mut self) -> io::Result<bool> {
        self.buffer.clear();
        self.position = 0;
        match self.stage {
            Stage::Opening => {
                self.buffer.push(b'{');
                self.buffer.extend_from_slice(self.key.as_bytes());
                self.buffer.extend_from_slice(b":[");
                self.stage = Stage::Lines { first: true };
            }
            Stage::Lines { first } => match self.lines.next() {
                Some(Ok(line)) => {
                    if !first {
                        self.buffer.push(b',');
                    }
                    serde_json::to_writer(&mut self.buffer, &line)?;
                    self.stage = Stage::Lines { first: false };
                }
                Some(Err(e)) => return Err(io::Error::other(format!("reading the build log: {e}"))),
                None => {
                    self.buffer.extend_from_slice(b"]}");
                    self.stage = Stage::Closed;
                }
            },
            Stage::Closed => {
                if self.sent != self.length {
                    return Err(changed(self.length, self.sent));
                }
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl Read for JsonReader {
    /// Fills `out` as far as the document goes: an HTTP client sends what one read gives as one
    /// chunk, and a line is often shorter than a chunk should be.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < out.len() {
            if self.position == self.buffer.len() && !self.refill()? {
                break;
            }
            let n = (out.len() - filled).min(self.buffer.len() - self.position);
            out[filled..filled + n].copy_from_slice(&self.buffer[self.position..self.position + n]);
            self.position += n;
            self.sent += n as u64;
            filled += n;
        }
        if self.sent > self.length {
            return Err(changed(self.length, self.sent));
        }
        Ok(filled)
    }
}

fn changed(measured: u64, rendered: u64) -> io::Error {
    io::Error::other(format!(
        "the build log changed while it was sent: it measured {measured} bytes as JSON, then rendered {rendered}"
    ))
}

/// The length of `text` as a JSON string, as `serde_json` writes it: quotes included, `"` and `\\`
/// and the control characters escaped (`\n`-style where JSON has a short form, `\u00XX` otherwise).
pub fn json_string_length(text: &str) -> u64 {
    // What escaping adds to each byte; a table, so that the loop has no branches.
    const EXTRA: [u8; 256] = {
        let mut extra = [0u8; 256];
        let mut byte = 0;
        while byte < 0x20 {
            extra[byte] = 5; // \u00XX
            byte += 1;
        }
        let mut short = 0;
        let shorts = [b'"', b'\\', 0x08, 0x0c, b'\n', b'\r', b'\t'];
        while short < shorts.len() {
            extra[shorts[short] as usize] = 1;
            short += 1;
        }
        extra
    };
    let escapes: u64 = text.bytes().map(|b| u64::from(EXTRA[usize::from(b)])).sum();
    text.len() as u64 + 2 + escapes
}

#[cfg(test)]
mod tests {
    use super::json_string_length;

    #[test]
    fn a_json_string_length_is_what_serde_json_writes() {
        let every_control: String = (0u8..0x20).map(char::from).collect();
        for text in ["", "plain", "\"quoted\" and \\back\\", "tab\there\r", "é ü 日本 \u{7f} /", &every_control] {
            let written = serde_json::to_string(text).expect("JSON");
            assert_eq!(json_string_length(text), written.len() as u64, "{written}");
        }
    }
}
