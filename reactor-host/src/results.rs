//! The result document that `--metadata-file` writes: one versioned JSON object, written
//! whatever the outcome (success, failure, invalid input, cancellation), so a CI system can
//! always read what happened from a file instead of parsing logs. Its fields are
//! [`ResultDocument`]'s, in that order.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use reactor_plugin_api::protocol::PulledImage;
use reactor_plugin_api::{Phase, Status};
use serde::Serialize;
use serde_json::Value;

use crate::build_json::BuildRequest;
use crate::plugins::Registry;
use crate::state::RunStatus;
use crate::workflow::Finished;

/// The document's format version; bumped when a field changes meaning or goes away.
pub const FORMAT_VERSION: u32 = 1;

/// The result document.
#[derive(Debug, Serialize)]
pub struct ResultDocument {
    pub version: u32,
    pub reactor_version: &'static str,
    pub status: Status,
    pub exit_code: u8,
    pub started: String,
    pub finished: String,
    pub duration_s: f64,
    /// The first failure, the root cause; `null` on success.
    pub failure: Option<FailureRecord>,
    /// The build.json, or "command line".
    pub request: String,
    /// What a build that ran recorded; absent when the input was refused.
    #[serde(flatten)]
    pub ran: Option<BuildRecord>,
    pub loaded_plugins: Vec<LoadedPlugin>,
}

/// How a build failed.
#[derive(Debug, Serialize)]
pub struct FailureRecord {
    /// The phase (`validation` for refused input, `source` for the fetch).
    pub phase: Option<String>,
    pub plugin: Option<String>,
    pub error: String,
    /// Every problem, for refused input.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// What a build that ran recorded.
#[derive(Debug, Serialize)]
pub struct BuildRecord {
    pub image: String,
    pub image_id: Option<String>,
    pub tags: Vec<String>,
    /// Pushed name → digest.
    pub digests: BTreeMap<String, String>,
    pub pulled_images: Vec<PulledImage>,
    pub source: SourceRecord,
    /// The final Dockerfile's text.
    pub dockerfile: Option<String>,
    pub base_image: Option<String>,
    pub build: Option<EngineBuild>,
    /// The engine the build was sent to: `url` (userinfo redacted), `server_version` and
    /// `api_version` (null when it was not reached), `tls`.
    pub engine: crate::engine::EngineInfo,
    /// Every plugin run in order, the engine's build as `dockerbuild`.
    pub plugins: Vec<RunRecord>,
}

/// Where the source came from.
#[derive(Debug, Serialize)]
pub struct SourceRecord {
    pub provider: String,
    pub uri: String,
    pub commit: Option<String>,
    pub dockerfile_path: Option<String>,
}

/// The engine's build.
#[derive(Debug, Serialize)]
pub struct EngineBuild {
    pub image_id: Option<String>,
    pub failed: bool,
    pub fail_reason: Option<String>,
    pub log_lines: u64,
}

/// One plugin run.
#[derive(Debug, Serialize)]
pub struct RunRecord {
    pub phase: Phase,
    pub key: String,
    pub started: String,
    pub duration_s: f64,
    pub status: RunStatus,
    pub error: Option<String>,
    pub result: Option<Value>,
}

/// A plugin reactor had, with where it came from.
#[derive(Debug, Serialize)]
pub struct LoadedPlugin {
    pub key: String,
    pub version: String,
    pub api_version: String,
    pub phases: Vec<Phase>,
    pub origin: String,
}

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

impl ResultDocument {
    fn new(status: Status, exit_code: u8, started: SystemTime, request: &str, registry: &Registry) -> ResultDocument {
        let finished = SystemTime::now();
        ResultDocument {
            version: FORMAT_VERSION,
            reactor_version: env!("CARGO_PKG_VERSION"),
            status,
            exit_code,
            started: time(started),
            finished: time(finished),
            duration_s: finished.duration_since(started).unwrap_or_default().as_secs_f64(),
            failure: None,
            request: request.to_owned(),
            ran: None,
            loaded_plugins: registry
                .all()
                .map(|p| LoadedPlugin {
                    key: p.manifest.key.clone(),
                    version: p.manifest.version.clone(),
                    api_version: p.api_version.clone(),
                    phases: p.manifest.phases.clone(),
                    origin: p.origin.to_string(),
                })
                .collect(),
        }
    }

    /// The document for a build that never started: the input was refused.
    pub fn refused(
        origin: &str,
        problems: &[String],
        registry: &Registry,
        exit_code: u8,
        started: SystemTime,
    ) -> ResultDocument {
        let mut doc = ResultDocument::new(Status::Failed, exit_code, started, origin, registry);
        doc.failure = Some(FailureRecord {
            phase: Some("validation".to_owned()),
            plugin: None,
            error: problems.join("; "),
            problems: problems.to_vec(),
        });
        doc
    }

    /// The document for a build that ran.
    pub fn finished(
        request: &BuildRequest,
        registry: &Registry,
        finished: &Finished,
        exit_code: u8,
        started: SystemTime,
    ) -> ResultDocument {
        let state = finished.session.state();
        let outcome = state.outcome.clone().unwrap_or_default();
        let mut doc = ResultDocument::new(outcome.status, exit_code, started, &request.origin, registry);
        doc.failure = outcome.error.map(|error| FailureRecord {
            phase: outcome.failed_phase,
            plugin: outcome.failed_plugin,
            error,
            problems: Vec::new(),
        });
        let dockerfile = state.dockerfile.as_ref().map(|_| state.dockerfile_text());
        doc.ran = Some(BuildRecord {
            image: request.image.clone(),
            image_id: state.build_result.as_ref().and_then(|b| b.image_id.clone()),
            tags: state.tags.clone(),
            digests: state.digests.clone(),
            pulled_images: state.pulled_images.clone(),
            source: SourceRecord {
                provider: state.source.provider.clone(),
                uri: state.source.uri.clone(),
                commit: state.source.commit.clone(),
                dockerfile_path: request.source.dockerfile_path.clone(),
            },
            base_image: dockerfile.as_deref().and_then(crate::dockerfile::base_image),
            dockerfile,
            build: state.build_result.as_ref().map(|b| EngineBuild {
                image_id: b.image_id.clone(),
                failed: b.failed,
                fail_reason: b.fail_reason.clone(),
                log_lines: state.build_log.as_ref().map_or(0, |log| log.lines()),
            }),
            engine: finished.session.engine_info(),
            plugins: state
                .runs
                .iter()
                .map(|run| RunRecord {
                    phase: run.phase,
                    key: run.key.clone(),
                    started: time(run.started),
                    duration_s: run.duration.as_secs_f64(),
                    status: run.status,
                    error: run.error.clone(),
                    result: run.result.clone(),
                })
                .collect(),
        });
        doc
    }

    /// Writes the document to `path` (creating its directory), through a temporary file in the
    /// same directory so a reader never sees half a document; the temporary file is removed when
    /// the write or the rename fails (a `path` that is a directory, a full disk).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        // A URL's password (a git URI's, a plugin arg's) and a secret arg never reach the
        // document; redacted in the values, not the JSON text, so an escaped secret is found too.
        let mut value = serde_json::to_value(self).map_err(std::io::Error::other)?;
        crate::secrets::redact_value(&mut value);
        let text = serde_json::to_string_pretty(&value).map_err(std::io::Error::other)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut partial = tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".partial").tempfile_in(dir)?;
        partial.write_all(text.as_bytes())?;
        partial.write_all(b"\n")?;
        // As readable as a file written the usual way (tempfile makes it private).
        partial.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
        partial.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// Why the result document (`--metadata-file`) was not written; names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The build succeeded but its document cannot be written: reactor exits with `code` (4), so
    /// that a CI does not take the missing document for success.
    #[error(
        "the build succeeded, but the result document cannot be written to {path}: {source}; choose another \
         --metadata-file, or make its directory writable (exit {code})"
    )]
    AfterSuccess { path: String, source: std::io::Error, code: u8 },
    /// The build failed or was refused, and its document cannot be written either.
    #[error(
        "cannot write --metadata-file {path}: {source}; choose another --metadata-file, or make its directory writable"
    )]
    AfterFailure { path: String, source: std::io::Error },
}
