//! Build API: build an image from a context directory with the classic builder, streaming the
//! context up and the engine's output back, line by line.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;

use super::context::{tar_stream, ContextDirs};
use super::{Engine, Error};

/// What to build.
#[derive(Clone, Debug)]
pub struct BuildSpec<'a> {
    /// The context directory sent to the engine (the source tree's).
    pub context_dir: &'a Path,
    /// The context overlay's directory, whose entries are sent first and shadow the tree's.
    pub overlay_dir: Option<&'a Path>,
    /// The Dockerfile, relative to the context directory.
    pub dockerfile: &'a str,
    /// The name the image is tagged with.
    pub tag: &'a str,
    pub build_args: &'a BTreeMap<String, String>,
    pub labels: &'a BTreeMap<String, String>,
}

/// What the build produced: the image ID or the reason it failed. Its output went to `on_line`,
/// line by line, and is not kept here: a build may print gigabytes.
#[derive(Clone, Debug, Default)]
pub struct BuildOutput {
    pub image_id: Option<String>,
    pub error: Option<String>,
}

impl Engine {
    /// Builds `spec` without cache (as atomic-reactor does: every build starts clean), calling
    /// `on_line` with each line of output as it arrives (the engine's error last, when it
    /// reports one); a line is at most [`MAX_LINE_BYTES`] long, apart from that error.
    ///
    /// A failed build step is a successful call whose output has `error` set; `Err` means the
    /// engine could not be used at all (unreachable, refused the request, bad context).
    pub async fn build(&self, spec: &BuildSpec<'_>, mut on_line: impl FnMut(&str)) -> Result<BuildOutput, Error> {
        // The step's container, while one runs: an engine that dies in the middle keeps it, and
        // the person reading the error is told which one it is.
        let step_container = std::cell::RefCell::new(None::<String>);
        let mut on_line = |line: &str| {
            let line_text = line.trim_start();
            if let Some(id) = line_text.strip_prefix("---> Running in ") {
                *step_container.borrow_mut() = Some(id.trim().to_owned());
            } else if line_text.starts_with("Removing intermediate container ") {
                *step_container.borrow_mut() = None;
            }
            on_line(line)
        };
        let context_err = |reason: String| Error::Context { path: spec.context_dir.display().to_string(), reason };
        let dirs =
            ContextDirs { tree: spec.context_dir.to_path_buf(), overlay: spec.overlay_dir.map(Path::to_path_buf) };
        let ignore = dirs.dockerignore().map_err(|e| Error::from_dockerignore(dirs.dockerignore_dir(), e))?;
        // bollard reports a failure to read the context and a failure to read the engine's
        // answer alike (an I/O error); the context's own failure is noted here to tell them apart.
        let context_failure: Arc<Mutex<Option<String>>> = Arc::default();
        let noted = context_failure.clone();
        let body = tar_stream(dirs, ignore, vec![spec.dockerfile.to_owned(), ".dockerignore".to_owned()]).inspect(
            move |chunk| {
                if let (Err(e), Ok(mut slot)) = (chunk, noted.lock()) {
                    *slot = Some(e.to_string());
                }
            },
        );
        let build_args: HashMap<&String, &String> = spec.build_args.iter().collect();
        let labels: HashMap<&String, &String> = spec.labels.iter().collect();
        let options = BuildImageOptionsBuilder::default()
            .dockerfile(spec.dockerfile)
            .t(spec.tag)
            .nocache(true)
            .rm(true)
            .forcerm(true)
            .buildargs(&build_args)
            .labels(&labels)
            .build();

        let mut output = BuildOutput::default();
        let mut lines = LineSplitter::default();
        let mut stream = self.build_docker.build_image(options, None, Some(bollard::body_try_stream(body)));
        // The engine answers only once it has the whole context: after its first line, a broken
        // connection means the engine went away during the build, not that the context failed.
        let mut answered = false;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    answered = true;
                    let text = info.stream.or(info.status.map(|s| s + "\n"));
                    if let Some(text) = text {
                        lines.push(&text, &mut on_line);
                    }
                    if let Some(id) = info.aux.and_then(|aux| aux.id) {
                        output.image_id = Some(id);
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    lines.finish(&mut on_line);
                    on_line(&error);
                    output.error = Some(error);
                    output.image_id = None;
                    return Ok(output);
                }
                Err(e) => {
                    let context_reason = context_failure.lock().ok().and_then(|mut slot| slot.take());
                    return Err(match (e, context_reason) {
                        // The context stream failed (unreadable file): say which, not "broken pipe".
                        (_, Some(reason)) => context_err(reason),
                        (
                            e @ (bollard::errors::Error::IOError { .. }
                            | bollard::errors::Error::HyperLegacyError { .. }),
                            None,
                        ) => {
                            let during = if answered { "the build" } else { "the upload of the build context" };
                            self.connection_lost(during, &e, step_container.take())
                        }
                        (e, None) => self.error(e),
                    });
                }
            }
        }
        lines.finish(&mut on_line);
        if output.image_id.is_none() {
            output.error = Some("the engine reported no image ID for the build".to_owned());
        }
        Ok(output)
    }
}

/// The longest line reactor keeps: a longer run of output without a newline (a progress bar
/// redrawn with `\r` for minutes) is cut into pieces of at most this many bytes, each a line of
/// the build log, cut on a UTF-8 character boundary.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Reassembles lines from the engine's stream, whose items may hold part of a line (the
/// "Step 1/4 : FROM x" text and its newline arrive separately) or several lines.
///
/// Only `\n` ends a line; a `\r` stays inside it, trailing ones trimmed, and empty lines are
/// dropped. Each byte is looked at once and copied at most once: the unfinished line is never
/// longer than [`MAX_LINE_BYTES`], since a longer one is emitted in pieces as it grows.
#[derive(Default)]
pub(crate) struct LineSplitter {
    /// The unfinished line: what came after the last newline, at most [`MAX_LINE_BYTES`].
    pending: String,
}

impl LineSplitter {
    pub(crate) fn push(&mut self, mut text: &str, mut emit: impl FnMut(&str)) {
        while let Some(end) = text.find('\n') {
            self.extend(&text[..end], &mut emit);
            let line = self.pending.trim_end_matches('\r');
            if !line.is_empty() {
                emit(line);
            }
            self.pending.clear();
            text = &text[end + 1..];
        }
        self.extend(text, &mut emit);
    }

    pub(crate) fn finish(&mut self, mut emit: impl FnMut(&str)) {
        let rest = self.pending.trim_end();
        if !rest.is_empty() {
            emit(rest);
        }
        self.pending.clear();
    }

    /// Adds `text`, which holds no newline, to the unfinished line, emitting it in pieces of
    /// [`MAX_LINE_BYTES`] as it fills.
    fn extend(&mut self, mut text: &str, emit: &mut impl FnMut(&str)) {
        loop {
            let room = MAX_LINE_BYTES - self.pending.len();
            if text.len() <= room {
                self.pending.push_str(text);
                return;
            }
            let cut = floor_char_boundary(text, room);
            if self.pending.is_empty() {
                // The common case of a long line arriving whole: no copy.
                emit(&text[..cut]);
            } else {
                // A cut of 0 (a character that does not fit in what is left) emits what is held.
                self.pending.push_str(&text[..cut]);
                emit(&self.pending);
                self.pending.clear();
            }
            text = &text[cut..];
        }
    }
}

/// The largest index at most `index` that is on a character boundary of `text`.
pub fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::{LineSplitter, MAX_LINE_BYTES};

    fn split(items: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        let mut s = LineSplitter::default();
        for item in items {
            s.push(item, |l| out.push(l.to_owned()));
        }
        s.finish(|l| out.push(l.to_owned()));
        out
    }

    #[test]
    fn joins_a_step_and_its_newline_sent_separately() {
        assert_eq!(split(&["Step 1/2 : FROM busybox", "\n", " ---> abc\n"]), ["Step 1/2 : FROM busybox", " ---> abc"]);
    }

    #[test]
    fn splits_items_holding_several_lines_and_keeps_a_trailing_partial_line() {
        assert_eq!(split(&["a\nb\r\n\nc"]), ["a", "b", "c"]);
    }

    #[test]
    fn a_carriage_return_stays_inside_a_line_and_trailing_ones_are_trimmed() {
        assert_eq!(split(&["10%\r20%\r", "30%\r\r\n", "done\r"]), ["10%\r20%\r30%", "done"]);
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_one_line() {
        let line = "x".repeat(MAX_LINE_BYTES);
        assert_eq!(split(&[&line, "\r\n", "next\n"]), [line.as_str(), "next"]);
        assert_eq!(split(&[&line]), [line.as_str()]);
    }

    #[test]
    fn a_long_line_without_newline_is_cut_in_pieces_of_the_limit_whatever_the_chunks() {
        // A progress bar redrawn with '\r', as `curl` or `pip` print it, 1 MiB and some.
        let progress: String = (0..40_000).map(|n| format!("\r{n:>6}/40000")).collect();
        assert_eq!(progress.len(), 40_000 * 13);
        let want: Vec<&str> =
            progress.as_bytes().chunks(MAX_LINE_BYTES).map(|c| std::str::from_utf8(c).expect("ASCII")).collect();
        assert_eq!(want.len(), progress.len().div_ceil(MAX_LINE_BYTES));
        // Whole, in chunks of odd sizes, and byte by byte around the cuts.
        assert_eq!(split(&[&progress]), want);
        let chunks: Vec<&str> =
            progress.as_bytes().chunks(7777).map(|c| std::str::from_utf8(c).expect("ASCII")).collect();
        assert_eq!(split(&chunks), want);
        let (head, tail) = progress.split_at(MAX_LINE_BYTES - 1);
        let (one, tail) = tail.split_at(1);
        assert_eq!(split(&[head, one, tail]), want);
        // With a newline and more lines after it, the rest of the long line is its last piece.
        let mut with_more = progress.clone();
        with_more.push_str("\nStep 2/2 : RUN true\n");
        let mut want_more = want.clone();
        want_more.push("Step 2/2 : RUN true");
        assert_eq!(split(&[&with_more]), want_more);
    }

    #[test]
    fn a_piece_is_never_cut_inside_a_character() {
        // 'é' is 2 bytes and '€' 3: the limit falls inside one of them in some pieces.
        let line = "é€".repeat(MAX_LINE_BYTES / 2);
        for chunk_size in [MAX_LINE_BYTES, 1000, 5] {
            let mut chunks = Vec::new();
            let mut rest = line.as_str();
            while !rest.is_empty() {
                let mut cut = chunk_size.min(rest.len());
                while !rest.is_char_boundary(cut) {
                    cut += 1;
                }
                chunks.push(&rest[..cut]);
                rest = &rest[cut..];
            }
            let pieces = split(&chunks);
            let (last, full) = pieces.split_last().expect("pieces");
            assert!(
                full.iter().all(|p| p.len() > MAX_LINE_BYTES - 3 && p.len() <= MAX_LINE_BYTES),
                "chunks of {chunk_size}"
            );
            assert!(!last.is_empty() && last.len() <= MAX_LINE_BYTES);
            assert_eq!(pieces.concat(), line, "chunks of {chunk_size}");
        }
    }

    #[test]
    fn a_held_piece_with_no_room_for_the_next_character_is_emitted_as_it_is() {
        let head = "a".repeat(MAX_LINE_BYTES - 1);
        assert_eq!(split(&[&head, "€b\n"]), [head.as_str(), "€b"]);
    }

    #[test]
    fn a_160_mb_progress_line_is_pieces_of_the_limit() {
        // The shape that took 47 s of CPU when the pending text was searched again for every
        // item: one line of '\r'-redrawn progress, no newline, in the engine's 32 KiB items.
        let unit = "\r[=====>     ] 42% 1.2MiB/s";
        let line = unit.repeat(160_000_000 / unit.len());
        let (mut pieces, mut bytes, mut longest) = (0, 0, 0);
        let mut splitter = LineSplitter::default();
        let mut count = |piece: &str| {
            pieces += 1;
            bytes += piece.len();
            longest = longest.max(piece.len());
        };
        for chunk in line.as_bytes().chunks(32 * 1024) {
            splitter.push(std::str::from_utf8(chunk).expect("ASCII"), &mut count);
        }
        splitter.finish(&mut count);
        assert_eq!((pieces, bytes, longest), (line.len().div_ceil(MAX_LINE_BYTES), line.len(), MAX_LINE_BYTES));
    }
}
