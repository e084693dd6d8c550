//! What a fuzz input means for the host's readers of untrusted text, and the calls it drives:
//! the one place both the `cargo fuzz` targets (`fuzz/fuzz_targets/`) and the proptest runs of
//! every `cargo test` (`reactor-host/tests/fuzz.rs`) call, so that the two fuzz the same code.
//! Each function takes any bytes, and panics only if reactor itself does.
//!
//! - [`build_json`]: fields separated by NUL bytes, the build.json's bytes then up to 8
//!   `--substitute` values, read as `reactor build --dry-run` reads them (the file through
//!   [`crate::build_json::load`], then the plan against the built-in plugins).
//! - [`plugin_json`]: one JSON text, decoded as everything the host decodes from a plugin: its
//!   handshake (then checked as `--load-plugin` checks it), an installed package's manifest, a
//!   request to the host (then admitted in every phase, and for the two that touch the build log,
//!   run against a spooled log), a result, an error, and a line from an isolated plugin's worker
//!   process (whose handshake, request, result or error is then decoded in turn).

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use reactor_plugin_api::protocol::{log_level, ModuleHello, Request, MAX_LOG_PAGE_BYTES, SNAPSHOT_LOG_BYTES};
use reactor_plugin_api::{Phase, PluginError};
use serde_json::Value;

use crate::build_log::BuildLog;
use crate::plugins::isolate::FromWorker;
use crate::plugins::package_manifest::PackageManifest;
use crate::plugins::{load, plan, registry, Plan, Registry};

/// The most `--substitute` values an input gives: more only repeat the same code.
const MAX_SUBSTITUTIONS: usize = 8;

/// Loads the build.json and substitutions an input holds (see the module's documentation), and
/// plans the build it describes.
pub fn build_json(data: &[u8]) {
    let mut fields = data.split(|&b| b == 0);
    let text = fields.next().unwrap_or_default();
    let substitutions: Vec<String> =
        fields.take(MAX_SUBSTITUTIONS).map(|field| String::from_utf8_lossy(field).into_owned()).collect();
    // Through a file, as reactor reads a build.json: its reading is part of what is fuzzed.
    let Ok(mut file) = tempfile::Builder::new().prefix("reactor-fuzz-").suffix(".json").tempfile() else {
        return;
    };
    if file.write_all(text).is_err() {
        return;
    }
    // Strict only turns warnings into errors: both ways, the same checks run to the end.
    let strict = crate::build_json::LoadOptions { strict: true };
    let _ = crate::build_json::load(file.path(), &substitutions, strict);
    let options = crate::build_json::LoadOptions { strict: false };
    let Ok(request) = crate::build_json::load(file.path(), &substitutions, options) else { return };
    let _ = Plan::resolve(&request, builtins());
}

/// The registry of built-in plugins, made once.
fn builtins() -> &'static Registry {
    static BUILTINS: OnceLock<Registry> = OnceLock::new();
    BUILTINS.get_or_init(Registry::with_builtins)
}

/// Decodes an input as every JSON text the host reads from a plugin (see the module's
/// documentation), and runs what the host runs on what decodes.
pub fn plugin_json(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let value: Option<Value> = serde_json::from_str(&text).ok();

    if let Ok(hello) = serde_json::from_str::<ModuleHello>(&text) {
        let _ = load::check(Path::new("libfuzz.so"), &hello, &registry::host_hello());
        // The plan checks a build.json's args against each manifest's schema.
        let args = value.clone().unwrap_or(Value::Null);
        for manifest in &hello.plugins {
            let _ = plan::args_problems(manifest, &args);
        }
    }
    if let Ok(manifest) = serde_json::from_str::<PackageManifest>(&text) {
        let _ = manifest.check();
    }
    if let Ok(request) = serde_json::from_str::<Request>(&text) {
        let _ = (request.feature(), request.what());
        for phase in Phase::ALL {
            let _ = (request.admit(phase, false), request.admit(phase, true));
        }
        answer_build_log_request(request);
    }
    decode_outcome(Ok(&text));
    decode_outcome(Err(&text));
    // What a worker sends holds JSON the host decodes in turn (shorter, so this ends).
    if let Ok(line) = serde_json::from_str::<FromWorker>(&text) {
        match line {
            FromWorker::Hello { hello: json } | FromWorker::Call { request: json } => plugin_json(json.as_bytes()),
            FromWorker::Done { result } => decode_outcome(result.as_deref().map_err(String::as_str)),
            FromWorker::Log { level, .. } => {
                let _ = log_level(level);
            }
            FromWorker::Refused { .. } => {}
        }
    }
}

/// A plugin run's outcome as the host reads it: a JSON result, or a JSON error.
fn decode_outcome(outcome: Result<&str, &str>) {
    match outcome {
        Ok(json) => {
            let _ = registry::decode_result(json);
        }
        Err(json) => {
            let _ = PluginError::from_json(json).to_json();
        }
    }
}

/// What the host does with the two requests that reach the build log, short of a build:
/// `set_build_result` spools the result's log and snapshots its end; `read_build_log` reads a
/// page of a log.
fn answer_build_log_request(request: Request) {
    match request {
        Request::SetBuildResult { result } => {
            let Ok(log) = BuildLog::from_lines(&result.logs) else { return };
            let _ = (log.lines(), log.tail(SNAPSHOT_LOG_BYTES), log.page(0, MAX_LOG_PAGE_BYTES));
        }
        Request::ReadBuildLog { offset, max_bytes } => {
            let lines = ["one".to_owned(), String::new(), "three".repeat(40)];
            let Ok(log) = BuildLog::from_lines(&lines) else { return };
            let _ = log.page(offset, max_bytes);
        }
        _ => {}
    }
}
