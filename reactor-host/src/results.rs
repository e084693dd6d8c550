//! The result document that `--metadata-file` writes: one versioned JSON object, written
//! whatever the outcome (success, failure, invalid input, cancellation), so a CI system can
//! always read what happened from a file instead of parsing logs.

use std::path::Path;
use std::time::SystemTime;

use serde_json::{json, Value};

use crate::build_json::BuildRequest;
use crate::plugins::Registry;
use crate::workflow::Finished;

/// The document's format version; bumped when a field changes meaning or goes away.
pub const FORMAT_VERSION: u32 = 1;

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// The plugins reactor had, with where each came from.
fn loaded_plugins(registry: &Registry) -> Value {
    registry
        .all()
        .map(|p| {
            json!({
                "key": p.manifest.key,
                "version": p.manifest.version,
                "api_version": p.api_version,
                "phases": p.manifest.phases,
                "origin": p.origin.to_string(),
            })
        })
        .collect()
}

fn envelope(status: &str, exit_code: u8, started: SystemTime) -> serde_json::Map<String, Value> {
    let finished = SystemTime::now();
    let duration = finished.duration_since(started).unwrap_or_default().as_secs_f64();
    let mut doc = serde_json::Map::new();
    doc.insert("version".into(), json!(FORMAT_VERSION));
    doc.insert("reactor_version".into(), json!(env!("CARGO_PKG_VERSION")));
    doc.insert("status".into(), json!(status));
    doc.insert("exit_code".into(), json!(exit_code));
    doc.insert("started".into(), json!(time(started)));
    doc.insert("finished".into(), json!(time(finished)));
    doc.insert("duration_s".into(), json!(duration));
    doc
}

/// The document for a build that never started: the input was refused.
pub fn refused(origin: &str, problems: &[String], registry: &Registry, exit_code: u8, started: SystemTime) -> Value {
    let mut doc = envelope("failed", exit_code, started);
    doc.insert(
        "failure".into(),
        json!({"phase": "validation", "plugin": null, "error": problems.join("; "), "problems": problems}),
    );
    doc.insert("request".into(), json!(origin));
    doc.insert("loaded_plugins".into(), loaded_plugins(registry));
    Value::Object(doc)
}

/// The document for a build that ran.
pub fn finished(
    request: &BuildRequest,
    registry: &Registry,
    finished: &Finished,
    exit_code: u8,
    started: SystemTime,
) -> Value {
    let state = finished.session.state();
    let outcome = state.outcome.clone().unwrap_or_default();
    let mut doc = envelope(outcome.status.name(), exit_code, started);
    let failure = outcome
        .error
        .as_ref()
        .map(|error| json!({"phase": outcome.failed_phase, "plugin": outcome.failed_plugin, "error": error}));
    let build = state.build_result.as_ref().map(|b| {
        json!({"image_id": b.image_id, "failed": b.failed, "fail_reason": b.fail_reason, "log_lines": b.logs.len()})
    });
    let runs: Vec<Value> = state
        .runs
        .iter()
        .map(|run| {
            json!({
                "phase": run.phase,
                "key": run.key,
                "started": time(run.started),
                "duration_s": run.duration.as_secs_f64(),
                "status": run.status,
                "error": run.error,
                "result": run.result,
            })
        })
        .collect();
    let dockerfile = state.dockerfile_text();
    doc.insert("failure".into(), failure.unwrap_or(Value::Null));
    doc.insert("request".into(), json!(request.origin));
    doc.insert("image".into(), json!(request.image));
    doc.insert("image_id".into(), json!(state.build_result.as_ref().and_then(|b| b.image_id.clone())));
    doc.insert("tags".into(), json!(state.tags));
    doc.insert("digests".into(), json!(state.digests));
    doc.insert("pulled_images".into(), json!(state.pulled_images));
    doc.insert(
        "source".into(),
        json!({
            "provider": state.source.provider,
            "uri": state.source.uri,
            "commit": state.source.commit,
            "dockerfile_path": request.source.dockerfile_path,
        }),
    );
    doc.insert("dockerfile".into(), if state.dockerfile.is_some() { json!(dockerfile) } else { Value::Null });
    doc.insert("base_image".into(), json!(crate::dockerfile::base_image(&dockerfile)));
    doc.insert("build".into(), build.unwrap_or(Value::Null));
    doc.insert("plugins".into(), Value::Array(runs));
    doc.insert("loaded_plugins".into(), loaded_plugins(registry));
    Value::Object(doc)
}

/// Writes `doc` to `path` (creating its directory), through a temporary file so a reader never
/// sees half a document.
pub fn write(path: &Path, doc: &Value) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // A URL's password (a git URI's, a plugin arg's) never reaches the document.
    let text = crate::credentials::redact_url(&serde_json::to_string_pretty(doc).map_err(std::io::Error::other)?);
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text + "\n")?;
    std::fs::rename(&partial, path)
}
