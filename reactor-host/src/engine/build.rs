//! Build API: build an image from a context directory with the classic builder, streaming the
//! context up and the engine's output back, line by line.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

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

/// What the build produced: its log, one entry per line of output, and either the image ID or
/// the reason it failed.
#[derive(Clone, Debug, Default)]
pub struct BuildOutput {
    pub logs: Vec<String>,
    pub image_id: Option<String>,
    pub error: Option<String>,
}

impl Engine {
    /// Builds `spec` without cache (as atomic-reactor does: every build starts clean), calling
    /// `on_line` with each line of output as it arrives.
    ///
    /// A failed build step is a successful call whose output has `error` set; `Err` means the
    /// engine could not be used at all (unreachable, refused the request, bad context).
    pub async fn build(&self, spec: &BuildSpec<'_>, mut on_line: impl FnMut(&str)) -> Result<BuildOutput, Error> {
        let context_err = |reason: String| Error::Context { path: spec.context_dir.display().to_string(), reason };
        let dirs =
            ContextDirs { tree: spec.context_dir.to_path_buf(), overlay: spec.overlay_dir.map(Path::to_path_buf) };
        let ignore = dirs.dockerignore().map_err(|e| context_err(e.to_string()))?;
        let body = tar_stream(dirs, ignore, vec![spec.dockerfile.to_owned(), ".dockerignore".to_owned()]);
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
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    let text = info.stream.or(info.status.map(|s| s + "\n"));
                    if let Some(text) = text {
                        lines.push(&text, |line| {
                            on_line(line);
                            output.logs.push(line.to_owned());
                        });
                    }
                    if let Some(id) = info.aux.and_then(|aux| aux.id) {
                        output.image_id = Some(id);
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    lines.finish(|line| {
                        on_line(line);
                        output.logs.push(line.to_owned());
                    });
                    on_line(&error);
                    output.logs.push(error.clone());
                    output.error = Some(error);
                    output.image_id = None;
                    return Ok(output);
                }
                Err(bollard::errors::Error::IOError { err }) => {
                    // The context stream failed (unreadable file): say which, not "broken pipe".
                    return Err(context_err(err.to_string()));
                }
                Err(e) => return Err(self.error(e)),
            }
        }
        lines.finish(|line| {
            on_line(line);
            output.logs.push(line.to_owned());
        });
        if output.image_id.is_none() {
            output.error = Some("the engine reported no image ID for the build".to_owned());
        }
        Ok(output)
    }
}

/// Reassembles lines from the engine's stream, whose items may hold part of a line (the
/// "Step 1/4 : FROM x" text and its newline arrive separately) or several lines.
#[derive(Default)]
pub(super) struct LineSplitter {
    pending: String,
}

impl LineSplitter {
    pub(super) fn push(&mut self, text: &str, mut emit: impl FnMut(&str)) {
        self.pending.push_str(text);
        while let Some(end) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if !line.is_empty() {
                emit(line);
            }
        }
    }

    pub(super) fn finish(&mut self, mut emit: impl FnMut(&str)) {
        let rest = std::mem::take(&mut self.pending);
        let rest = rest.trim_end();
        if !rest.is_empty() {
            emit(rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LineSplitter;

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
}
