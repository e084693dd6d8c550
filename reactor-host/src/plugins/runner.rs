//! Runs one phase's plugins in the order listed: each on a blocking thread (plugins may block),
//! its result kept under its key, a failure either tolerated (`is_allowed_to_fail`) or fatal.

use std::sync::Arc;
use std::time::Instant;

use reactor_plugin_api::{ErrorKind, Phase, PluginError};
use serde_json::json;

use super::host::{PluginHost, Shared};
use super::PlannedPlugin;
use crate::state::PluginRun;

/// A fatal plugin failure.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{phase} plugin '{key}' failed: {message}")]
pub struct PluginFailure {
    pub phase: Phase,
    pub key: String,
    pub message: String,
}

/// Runs `plugins` as `phase`. A fatal failure stops the phase at once, unless `keep_going`
/// (the exit phase), where every plugin runs and the first fatal failure is returned at the end.
pub async fn run_phase(phase: Phase, plugins: &[PlannedPlugin], shared: &Arc<Shared>, keep_going: bool) -> Result<(), PluginFailure> {
    shared.state().phase = Some(phase);
    let mut first_fatal = None;
    for planned in plugins {
        let key = planned.plugin.manifest.key.clone();
        log::debug!("running {phase} plugin '{key}' ({}) with args: {}", planned.plugin.origin, planned.entry.args);
        let host = PluginHost::handle(&key, phase, shared.clone());
        let plugin = planned.plugin.clone();
        let args = planned.entry.args.clone();
        let started = Instant::now();
        let outcome = tokio::task::spawn_blocking(move || plugin.invoke(host, &args))
            .await
            .unwrap_or_else(|e| Err(PluginError::with_kind(ErrorKind::Panicked, e)));
        let duration = started.elapsed();

        let error = outcome.as_ref().err().map(|e| e.message.clone());
        let result = match outcome {
            Ok(value) => value,
            Err(err) => json!({"error": err.message, "kind": err.kind}),
        };
        {
            let mut state = shared.state();
            state.results.entry(phase).or_default().insert(key.clone(), result);
            state.runs.push(PluginRun { phase, key: key.clone(), duration, error: error.clone() });
        }
        let Some(message) = error else {
            log::debug!("{phase} plugin '{key}' finished in {:.3}s, returning {}", duration.as_secs_f64(), shorten(&result_text(shared, phase, &key)));
            continue;
        };
        if planned.allowed_to_fail() {
            log::warn!("{phase} plugin '{key}' failed: {message}; error is not fatal (is_allowed_to_fail), continuing");
            continue;
        }
        log::error!("{phase} plugin '{key}' failed: {message}");
        let failure = PluginFailure { phase, key, message };
        if !keep_going {
            return Err(failure);
        }
        first_fatal.get_or_insert(failure);
    }
    first_fatal.map_or(Ok(()), Err)
}

/// The JSON text of a stored result.
fn result_text(shared: &Shared, phase: Phase, key: &str) -> String {
    shared.state().results.get(&phase).and_then(|r| r.get(key)).map(|v| v.to_string()).unwrap_or_default()
}

/// At most about 2000 characters, cut at a character boundary.
fn shorten(text: &str) -> String {
    const MAX: usize = 2000;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}… ({} bytes)", &text[..at], text.len()),
        None => text.to_owned(),
    }
}
