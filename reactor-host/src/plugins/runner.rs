//! Runs one phase's plugins in the order listed: each on a blocking thread (plugins may block),
//! its args' special values filled in, its result kept under its key, a failure either tolerated
//! (`is_allowed_to_fail`) or fatal. Once the build is cancelled, a plugin that does not return
//! in time is abandoned: after the grace period (`--cancel-grace`) outside the exit phase, at the
//! exit phase's limit (`--exit-timeout`) within it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reactor_plugin_api::{ErrorKind, Phase, PluginError};
use serde_json::{json, Value};

use super::context::PluginContext;
use super::plan::PlannedPlugin;
use crate::progress::{self, PhaseRun};
use crate::state::{BuildState, PluginRun, RunStatus, Session};

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
/// The phase's start and end are reported (`progress`).
pub async fn run_phase(
    phase: Phase,
    plugins: &[PlannedPlugin],
    session: &Arc<Session>,
    keep_going: bool,
) -> Result<(), PluginFailure> {
    let report = PhaseRun::start(phase.name());
    let result = run_phase_plugins(phase, plugins, session, keep_going).await;
    report.end(result.is_ok());
    result
}

async fn run_phase_plugins(
    phase: Phase,
    plugins: &[PlannedPlugin],
    session: &Arc<Session>,
    keep_going: bool,
) -> Result<(), PluginFailure> {
    session.state().phase = Some(phase);
    let phase_started = Instant::now();
    let mut first_fatal = None;
    for planned in plugins {
        let key = &planned.plugin.manifest.key;
        let limit_over = phase == Phase::Exit
            && session.cancel.exit_deadline(phase_started).is_some_and(|deadline| Instant::now() >= deadline);
        if limit_over {
            log::warn!("{phase} plugin '{key}' not run: the exit phase's limit (--exit-timeout) is over");
            progress::plugin_ended(phase.name(), key, Duration::ZERO, "skipped", None);
            continue;
        }
        let Err(error) = invoke(phase, planned, session, phase_started).await else {
            continue;
        };
        if planned.allowed_to_fail() && error.kind != ErrorKind::Cancelled {
            log::warn!("{phase} plugin '{key}' failed: {error}; error is not fatal (is_allowed_to_fail), continuing");
            continue;
        }
        log::error!("{phase} plugin '{key}' failed: {error}");
        let failure = PluginFailure { phase, key: key.clone(), message: error.message };
        if !keep_going {
            return Err(failure);
        }
        first_fatal.get_or_insert(failure);
    }
    first_fatal.map_or(Ok(()), Err)
}

/// Runs the buildstep phase: the first plugin that does not decline builds the image. Whatever
/// a builder's entry says, its failure is fatal: there is no image without it. The phase's start
/// and end are reported (`progress`).
pub async fn run_buildstep(plugins: &[PlannedPlugin], session: &Arc<Session>) -> Result<(), PluginFailure> {
    let report = PhaseRun::start(Phase::Buildstep.name());
    let result = run_builders(plugins, session).await;
    report.end(result.is_ok() && build_failure(session).is_none());
    result
}

async fn run_builders(plugins: &[PlannedPlugin], session: &Arc<Session>) -> Result<(), PluginFailure> {
    session.state().phase = Some(Phase::Buildstep);
    let mut declined = Vec::new();
    let mut last_key = "buildstep".to_owned();
    for planned in plugins {
        let key = &planned.plugin.manifest.key;
        match invoke(Phase::Buildstep, planned, session, Instant::now()).await {
            Ok(_) if session.state().build_result.is_some() => return Ok(()),
            Ok(_) => {
                let message =
                    "returned without building (a builder must build, set a build result, or decline)".to_owned();
                let failure = PluginFailure { phase: Phase::Buildstep, key: key.clone(), message };
                // Every failure is logged where it happens, once.
                log::error!("{failure}");
                return Err(failure);
            }
            Err(e) if e.kind == ErrorKind::Declined => {
                log::info!("buildstep plugin '{key}' declined: {e}");
                declined.push(format!("{key}: {e}"));
                last_key.clone_from(key);
            }
            Err(e) => {
                log::error!("buildstep plugin '{key}' failed: {e}");
                return Err(PluginFailure { phase: Phase::Buildstep, key: key.clone(), message: e.message });
            }
        }
    }
    let failure = PluginFailure {
        phase: Phase::Buildstep,
        key: last_key,
        message: format!("no buildstep plugin would build this image ({})", declined.join("; ")),
    };
    log::error!("{failure}");
    Err(failure)
}

/// Why the build a builder ran failed, when it did.
fn build_failure(session: &Session) -> Option<String> {
    session.state().build_result.as_ref().and_then(|result| result.fail_reason.clone())
}

/// Runs one plugin and records its run and result (on failure, `{"error", "kind"}`). A plugin
/// still running when the cancellation's grace period ends (outside the exit phase), or when the
/// limit of the exit phase that began at `phase_started` ends, is abandoned: recorded as such,
/// its thread left to itself, and the workflow goes on.
async fn invoke(
    phase: Phase,
    planned: &PlannedPlugin,
    session: &Arc<Session>,
    phase_started: Instant,
) -> Result<Value, PluginError> {
    let key = planned.plugin.manifest.key.clone();
    let args = fill_special_values(&planned.entry.args, &session.state());
    log::debug!(
        "running {phase} plugin '{key}' ({}) with args: {}",
        planned.plugin.origin,
        crate::secrets::redact_args(&planned.plugin.manifest.args_schema, &args)
    );
    progress::plugin_started(phase.name(), &key);
    let host = PluginContext::handle(&key, phase, session.clone());
    let plugin = planned.plugin.clone();
    let (started, clock) = (SystemTime::now(), Instant::now());
    let running = tokio::task::spawn_blocking(move || plugin.invoke(host, phase, &args));
    let abandon = async {
        if phase == Phase::Exit {
            session.cancel.exit_limit_over(phase_started).await
        } else {
            session.cancel.grace_over().await
        }
    };
    let outcome = tokio::select! {
        joined = running => Some(joined.unwrap_or_else(|e| Err(PluginError::with_kind(ErrorKind::Panicked, e)))),
        signal = abandon => {
            log::debug!("{phase} plugin '{key}' still running after {}", signal.name());
            None
        }
    };
    let duration = clock.elapsed();
    let Some(outcome) = outcome else {
        planned.plugin.abandon();
        let message = if phase == Phase::Exit {
            format!(
                "abandoned: still running at the exit phase's limit, {} s after the cancellation (--exit-timeout)",
                session.cancel.exit_timeout.as_secs_f64()
            )
        } else {
            format!(
                "abandoned: still running {:.0} s after the cancellation (--cancel-grace)",
                session.cancel.grace.as_secs_f64()
            )
        };
        log::warn!("{phase} plugin '{key}' {message}");
        progress::plugin_ended(phase.name(), &key, duration, "abandoned", Some(message.clone()));
        let error = PluginError::with_kind(ErrorKind::Cancelled, &message);
        let run = PluginRun {
            phase,
            key,
            started,
            duration,
            status: RunStatus::Abandoned,
            error: Some(message),
            result: None,
        };
        session.record_run(run);
        return Err(error);
    };
    // What is recorded (and so shown to later plugins, store_logs_to_file's file and the result
    // document) never holds a secret arg's value, even when the plugin returned or said it.
    let (status, error, mut result) = match &outcome {
        Ok(value) => {
            log::debug!(
                "{phase} plugin '{key}' finished in {:.3}s, returning {}",
                duration.as_secs_f64(),
                shorten(&value.to_string())
            );
            (RunStatus::Succeeded, None, value.clone())
        }
        Err(err) => {
            log::debug!("{phase} plugin '{key}' failed after {:.3}s", duration.as_secs_f64());
            (RunStatus::Failed, Some(err.message.clone()), json!({"error": err.message, "kind": err.kind}))
        }
    };
    crate::secrets::redact_value(&mut result);
    let error = error.map(|e| crate::secrets::redact_text(&e));
    let (reported, shown_error) = match &outcome {
        // A builder that ran a build which failed returns normally, with the failure in the
        // build result: shown as failed all the same.
        Ok(_) if phase == Phase::Buildstep => match build_failure(session) {
            Some(reason) => ("failed", Some(crate::secrets::redact_text(&reason))),
            None => ("succeeded", None),
        },
        Ok(_) => ("succeeded", None),
        Err(e) if e.kind == ErrorKind::Declined => ("declined", error.clone()),
        Err(_) => ("failed", error.clone()),
    };
    progress::plugin_ended(phase.name(), &key, duration, reported, shown_error);
    session.record_run(PluginRun { phase, key, started, duration, status, error, result: Some(result) });
    outcome
}

/// Replaces atomic-reactor's special arg values, wherever they stand in the args (in objects
/// and lists, at any depth), with what they name now: `BUILT_IMAGE_ID`, `BASE_IMAGE`,
/// `BUILD_DOCKERFILE_PATH`, `BUILD_SOURCE_PATH`. What is not known yet becomes `null`.
pub fn fill_special_values(args: &Value, state: &BuildState) -> Value {
    match args {
        Value::String(s) => match s.as_str() {
            "BUILT_IMAGE_ID" => {
                state.build_result.as_ref().and_then(|r| r.image_id.clone()).map_or(Value::Null, Value::String)
            }
            "BASE_IMAGE" => crate::dockerfile::base_image(&state.dockerfile_text()).map_or(Value::Null, Value::String),
            "BUILD_DOCKERFILE_PATH" => {
                state.dockerfile.as_ref().map_or(Value::Null, |p| Value::String(p.display().to_string()))
            }
            "BUILD_SOURCE_PATH" if !state.source.path.is_empty() => Value::String(state.source.path.clone()),
            "BUILD_SOURCE_PATH" => Value::Null,
            _ => args.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| fill_special_values(v, state)).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), fill_special_values(v, state))).collect())
        }
        other => other.clone(),
    }
}

/// At most about 2000 characters, cut at a character boundary.
fn shorten(text: &str) -> String {
    const MAX: usize = 2000;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}… ({} bytes)", &text[..at], text.len()),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor_plugin_api::BuildResult;

    #[test]
    fn special_values_are_filled_at_any_depth_and_unknown_ones_are_null() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dockerfile = dir.path().join("Dockerfile");
        std::fs::write(&dockerfile, "FROM busybox:1.36\n").expect("write");
        let mut state = BuildState { dockerfile: Some(dockerfile.clone()), ..Default::default() };
        state.source.path = dir.path().display().to_string();
        let args = json!({"id": "BUILT_IMAGE_ID", "nested": {"list": ["BASE_IMAGE", "BUILD_DOCKERFILE_PATH", 3]},
                          "src": "BUILD_SOURCE_PATH", "plain": "BUILT_IMAGE_ID!"});
        let before = fill_special_values(&args, &state);
        assert_eq!(before["id"], Value::Null);
        assert_eq!(before["nested"]["list"], json!(["busybox:1.36", dockerfile.display().to_string(), 3]));
        assert_eq!(before["src"], json!(dir.path().display().to_string()));
        assert_eq!(before["plain"], json!("BUILT_IMAGE_ID!"));
        state.build_result = Some(BuildResult { image_id: Some("sha256:abc".into()), ..Default::default() });
        assert_eq!(fill_special_values(&args, &state)["id"], json!("sha256:abc"));
    }
}
