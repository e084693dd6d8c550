//! What a build tells the person or the program watching it, beside the log: a stream of
//! events (a phase or a plugin started or ended, a build step, the image built, a digest
//! pushed, the summary) and the place (phase, plugin) every log line belongs to.
//!
//! The workflow calls [`emit`] where these things happen; with `--progress tty` it is drawn in
//! the live view (`live`); with `--progress plain` (today's output) an event writes nothing,
//! the log lines already say it; with `--progress json` each
//! event and each log line is one JSON object on one line of stderr (`docs/output.md` is the
//! schema). Everything written goes through the same redaction as the plain log
//! ([`crate::secrets::redact_value`]). The summary is the one event plain output shows too,
//! as a few `reactor::summary` log lines.
//!
//! The place and the phase timings are process-wide: one process runs one build, and its
//! phases and plugins run one at a time.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Map, Value};

/// `--progress`: how the build is shown on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// tty when stderr is a terminal, plain otherwise.
    #[default]
    Auto,
    /// A live view on a terminal (drawn only when stderr is one).
    Tty,
    /// Today's log lines, greppable and stable.
    Plain,
    /// One JSON object per line (docs/output.md).
    Json,
}

impl Mode {
    /// `auto` made `tty` or `plain` by whether stderr is a terminal, as buildx decides.
    pub fn resolve(self) -> Mode {
        match self {
            Mode::Auto if std::io::stderr().is_terminal() => Mode::Tty,
            Mode::Auto => Mode::Plain,
            mode => mode,
        }
    }

    /// Whether this mode writes JSON lines.
    pub fn is_json(self) -> bool {
        self.resolve() == Mode::Json
    }
}

static JSON: AtomicBool = AtomicBool::new(false);

/// The phase and plugin running now, for log lines that do not say.
static PLACE: Mutex<Place> = Mutex::new(Place { phase: None, plugin: None });

/// Each phase's timing and outcome, in the order the phases ran, for the summary.
static PHASES: Mutex<Vec<PhaseTiming>> = Mutex::new(Vec::new());

#[derive(Clone, Debug)]
struct Place {
    phase: Option<String>,
    plugin: Option<String>,
}

/// One phase as it ran.
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseTiming {
    pub phase: String,
    pub duration: Duration,
    pub outcome: &'static str,
}

/// Switches JSON output on (from `logging::init`).
pub fn set_json(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

/// Whether events and log lines are written as JSON.
pub fn is_json() -> bool {
    JSON.load(Ordering::Relaxed)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the build did, as it happens.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    PhaseStarted {
        phase: String,
    },
    PhaseEnded {
        phase: String,
        duration: Duration,
        outcome: &'static str,
    },
    PluginStarted {
        phase: String,
        plugin: String,
    },
    /// `outcome`: succeeded, failed, declined, skipped or abandoned.
    PluginEnded {
        phase: String,
        plugin: String,
        duration: Duration,
        outcome: &'static str,
        error: Option<String>,
    },
    /// A `Step 2/3 : RUN …` line of the engine build.
    BuildStep {
        current: u32,
        total: u32,
        instruction: String,
    },
    ImageBuilt {
        image: String,
        image_id: String,
    },
    PushDigest {
        name: String,
        digest: String,
    },
    /// A layer of a push moved on (see [`LayerReports`] for how often this is said).
    PushLayer {
        name: String,
        layer: String,
        status: String,
        current: Option<u64>,
        total: Option<u64>,
    },
}

impl Event {
    fn name(&self) -> &'static str {
        match self {
            Event::PhaseStarted { .. } => "phase_started",
            Event::PhaseEnded { .. } => "phase_ended",
            Event::PluginStarted { .. } => "plugin_started",
            Event::PluginEnded { .. } => "plugin_ended",
            Event::BuildStep { .. } => "build_step",
            Event::ImageBuilt { .. } => "image_built",
            Event::PushDigest { .. } => "push_digest",
            Event::PushLayer { .. } => "push_layer",
        }
    }

    fn level(&self) -> log::Level {
        match self {
            Event::PhaseEnded { outcome, .. } | Event::PluginEnded { outcome, .. }
                if matches!(*outcome, "failed" | "abandoned" | "cancelled") =>
            {
                log::Level::Error
            }
            _ => log::Level::Info,
        }
    }

    /// The phase and plugin it belongs to, the message, and its own fields.
    fn parts(&self) -> (Option<&str>, Option<&str>, String, Value) {
        match self {
            Event::PhaseStarted { phase } => (Some(phase), None, format!("{phase} started"), json!({})),
            Event::PhaseEnded { phase, duration, outcome } => (
                Some(phase),
                None,
                format!("{phase} {outcome} in {}", seconds(*duration)),
                json!({"duration_s": secs(*duration), "outcome": outcome}),
            ),
            Event::PluginStarted { phase, plugin } => {
                (Some(phase), Some(plugin), format!("{phase} plugin '{plugin}' started"), json!({}))
            }
            Event::PluginEnded { phase, plugin, duration, outcome, error } => (
                Some(phase),
                Some(plugin),
                format!("{phase} plugin '{plugin}' {outcome} in {}", seconds(*duration)),
                json!({"duration_s": secs(*duration), "outcome": outcome, "error": error}),
            ),
            Event::BuildStep { current, total, instruction } => (
                None,
                None,
                format!("step {current}/{total}: {instruction}"),
                json!({"current": current, "total": total, "instruction": instruction}),
            ),
            Event::ImageBuilt { image, image_id } => {
                (None, None, format!("built {image} ({image_id})"), json!({"image": image, "image_id": image_id}))
            }
            Event::PushDigest { name, digest } => {
                (None, None, format!("pushed {name}@{digest}"), json!({"name": name, "digest": digest}))
            }
            Event::PushLayer { name, layer, status, current, total } => {
                let bytes = match (current, total) {
                    (Some(current), Some(total)) => format!(" {current}/{total} bytes"),
                    _ => String::new(),
                };
                (
                    None,
                    None,
                    format!("push {name}: layer {layer} {status}{bytes}"),
                    json!({"name": name, "layer": layer, "status": status, "current": current, "total": total}),
                )
            }
        }
    }
}

/// Reports `event`: a JSON line in JSON mode (when its level is logged); nothing in plain,
/// whose log lines already say it.
pub fn emit(event: &Event) {
    if crate::live::show(event) {
        return;
    }
    if !is_json() || !log::log_enabled!(target: "reactor::progress", event.level()) {
        return;
    }
    let place = lock(&PLACE).clone();
    let (phase, plugin, message, fields) = event.parts();
    let phase = phase.map(str::to_owned).or(place.phase);
    let plugin = plugin
        .map(str::to_owned)
        .or(if matches!(event, Event::PhaseStarted { .. } | Event::PhaseEnded { .. }) { None } else { place.plugin });
    write_line(json_line(event.level(), phase, plugin, event.name(), &message, fields));
}

/// Writes one log record as a JSON line: its phase and plugin are those its target names
/// (`plugin::<key>::…`, a plugin's own line) or else those running now.
pub fn write_log_line(level: log::Level, target: &str, message: &str) {
    let place = lock(&PLACE).clone();
    let plugin = plugin_of_target(target).map(str::to_owned).or(place.plugin);
    write_line(json_line(level, place.phase, plugin, "log", message, json!({"target": target})));
}

/// The key in a plugin's own log target, `plugin::<key>::<its target>`.
fn plugin_of_target(target: &str) -> Option<&str> {
    target.strip_prefix("plugin::").and_then(|rest| rest.split("::").next())
}

/// Writes one JSON line to stderr.
fn write_line(line: String) {
    let mut stderr = std::io::stderr().lock();
    // A closed stderr has nobody to tell.
    let _ = writeln!(stderr, "{line}");
}

/// One output line: the common fields, then the event's own, every string redacted.
fn json_line(
    level: log::Level,
    phase: Option<String>,
    plugin: Option<String>,
    event: &str,
    message: &str,
    fields: Value,
) -> String {
    let mut line = Map::new();
    line.insert("time".into(), json!(humantime::format_rfc3339_millis(SystemTime::now()).to_string()));
    line.insert("level".into(), json!(level.as_str().to_ascii_lowercase()));
    line.insert("phase".into(), json!(phase));
    line.insert("plugin".into(), json!(plugin));
    line.insert("event".into(), json!(event));
    line.insert("message".into(), json!(message));
    if let Value::Object(fields) = fields {
        line.extend(fields);
    }
    let mut line = Value::Object(line);
    // The same redaction as the plain log: URL passwords and the masked secret args.
    crate::secrets::redact_value(&mut line);
    line.to_string()
}

/// A phase being run: says it started, and when dropped, that it ended (`cancelled` unless
/// [`PhaseRun::end`] gave the outcome), and records its timing for the summary.
pub struct PhaseRun {
    phase: String,
    clock: Instant,
    outcome: &'static str,
}

impl PhaseRun {
    pub fn start(phase: &str) -> Self {
        lock(&PLACE).phase = Some(phase.to_owned());
        emit(&Event::PhaseStarted { phase: phase.to_owned() });
        PhaseRun { phase: phase.to_owned(), clock: Instant::now(), outcome: "cancelled" }
    }

    pub fn end(mut self, succeeded: bool) {
        self.outcome = if succeeded { "succeeded" } else { "failed" };
    }
}

impl Drop for PhaseRun {
    fn drop(&mut self) {
        let duration = self.clock.elapsed();
        lock(&PHASES).push(PhaseTiming { phase: self.phase.clone(), duration, outcome: self.outcome });
        emit(&Event::PhaseEnded { phase: self.phase.clone(), duration, outcome: self.outcome });
        // What is logged between phases (and after the last) belongs to none.
        *lock(&PLACE) = Place { phase: None, plugin: None };
    }
}

/// A plugin being run: names it as the place of the log lines until it ends.
pub fn plugin_started(phase: &str, plugin: &str) {
    lock(&PLACE).plugin = Some(plugin.to_owned());
    emit(&Event::PluginStarted { phase: phase.to_owned(), plugin: plugin.to_owned() });
}

/// The plugin's end, and the end of its being the place of the log lines.
pub fn plugin_ended(phase: &str, plugin: &str, duration: Duration, outcome: &'static str, error: Option<String>) {
    emit(&Event::PluginEnded { phase: phase.to_owned(), plugin: plugin.to_owned(), duration, outcome, error });
    let mut place = lock(&PLACE);
    if place.plugin.as_deref() == Some(plugin) {
        place.plugin = None;
    }
}

/// How often a layer's bytes are reported while it is pushed: a few times a second, never
/// per chunk (the engine sends one line per chunk).
const LAYER_REPORT_EVERY: Duration = Duration::from_millis(250);

/// Decides which of a push's layer lines become [`Event::PushLayer`]: every change of a
/// layer's status, its last chunk (all bytes sent: the engine may send them all at once into
/// the socket, then wait), and its bytes at most every [`LAYER_REPORT_EVERY`].
#[derive(Debug, Default)]
pub struct LayerReports {
    /// Each layer's last reported status, and when.
    last: std::collections::HashMap<String, (String, Instant)>,
}

impl LayerReports {
    /// Whether `status` of `layer`, now, is to be reported (and if so, notes it); `all_sent`:
    /// the line says all of the layer's bytes are sent.
    pub fn due(&mut self, layer: &str, status: &str, all_sent: bool, now: Instant) -> bool {
        let due = match self.last.get(layer) {
            Some((last, at)) => last != status || all_sent || now.duration_since(*at) >= LAYER_REPORT_EVERY,
            None => true,
        };
        if due {
            self.last.insert(layer.to_owned(), (status.to_owned(), now));
        }
        due
    }
}

/// Each phase run so far, in order.
pub fn phase_timings() -> Vec<PhaseTiming> {
    lock(&PHASES).clone()
}

/// `Step 2/3 : RUN true` (the classic builder's step line) as (2, 3, "RUN true").
pub fn parse_step(line: &str) -> Option<(u32, u32, &str)> {
    let rest = line.strip_prefix("Step ")?;
    let (numbers, instruction) = rest.split_once(" : ")?;
    let (current, total) = numbers.split_once('/')?;
    Some((current.parse().ok()?, total.parse().ok()?, instruction.trim_end()))
}

/// How a build ended, as the summary shows it.
#[derive(Debug, Default)]
pub struct Summary {
    /// succeeded, failed or cancelled.
    pub outcome: String,
    /// Where it failed, and why (a failed or cancelled build); the plain lines leave the why to
    /// the error line logged when it happened.
    pub failed_phase: Option<String>,
    pub failed_plugin: Option<String>,
    pub error: Option<String>,
    pub image: String,
    pub image_id: Option<String>,
    /// The name it was built as, then the tags plugins added (a plain line when there are any).
    pub tags: Vec<String>,
    /// Pushed name → digest.
    pub digests: Vec<(String, String)>,
    pub phases: Vec<PhaseTiming>,
    /// (phase, plugin, duration) of the plugin that took longest.
    pub slowest_plugin: Option<(String, String, Duration)>,
    /// The result document, when one was written.
    pub metadata_file: Option<String>,
    pub duration: Duration,
}

impl Summary {
    /// The plain lines: a few, each starting `summary:` so that a script can pick them out.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let id = self.image_id.as_deref().map(|id| format!(" ({id})")).unwrap_or_default();
        let mut head = format!("summary: {} {}{id} in {}", self.outcome, self.image, seconds(self.duration));
        if self.outcome != "succeeded" {
            let place = match (&self.failed_phase, &self.failed_plugin) {
                (Some(phase), Some(plugin)) => format!(" at {phase} plugin '{plugin}'"),
                (Some(phase), None) => format!(" at {phase}"),
                _ => String::new(),
            };
            // The error itself was logged where it happened: said once, not again here.
            head.push_str(&place);
        }
        lines.push(head);
        if self.tags.len() > 1 {
            lines.push(format!("summary: tags: {}", self.tags.join(", ")));
        }
        for (name, digest) in &self.digests {
            lines.push(format!("summary: pushed {name}@{digest}"));
        }
        if !self.phases.is_empty() {
            let phases: Vec<String> =
                self.phases.iter().map(|p| format!("{} {}", p.phase, seconds(p.duration))).collect();
            lines.push(format!("summary: phases: {}", phases.join(", ")));
        }
        if let Some((phase, plugin, duration)) = &self.slowest_plugin {
            lines.push(format!("summary: slowest plugin: {phase} '{plugin}' {}", seconds(*duration)));
        }
        if let Some(path) = &self.metadata_file {
            lines.push(format!("summary: result document: {path}"));
        }
        lines
    }

    /// Shows the summary: below the live view in tty, `reactor::summary` log lines in plain,
    /// one `summary` event in JSON.
    /// At info, so `-q` leaves it out.
    pub fn report(&self) {
        let lines = self.lines();
        if crate::live::finish(&lines) {
            return;
        }
        if !is_json() {
            for line in &lines {
                log::info!(target: "reactor::summary", "{line}");
            }
            return;
        }
        if !log::log_enabled!(target: "reactor::progress", log::Level::Info) {
            return;
        }
        let phases: Vec<Value> = self
            .phases
            .iter()
            .map(|p| json!({"phase": p.phase, "duration_s": secs(p.duration), "outcome": p.outcome}))
            .collect();
        let digests: Map<String, Value> = self.digests.iter().map(|(n, d)| (n.clone(), json!(d))).collect();
        let slowest = self
            .slowest_plugin
            .as_ref()
            .map(|(phase, plugin, d)| json!({"phase": phase, "plugin": plugin, "duration_s": secs(*d)}));
        let fields = json!({
            "outcome": self.outcome,
            "failed_phase": self.failed_phase,
            "failed_plugin": self.failed_plugin,
            "error": self.error,
            "image": self.image,
            "image_id": self.image_id,
            "tags": self.tags,
            "digests": digests,
            "phases": phases,
            "slowest_plugin": slowest,
            "metadata_file": self.metadata_file,
            "duration_s": secs(self.duration),
        });
        let message: Vec<&str> = lines.iter().map(|l| l.strip_prefix("summary: ").unwrap_or(l)).collect();
        write_line(json_line(log::Level::Info, None, None, "summary", &message.join("; "), fields));
    }
}

/// Seconds, to the millisecond, as a JSON number.
fn secs(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0).round() / 1000.0
}

fn seconds(duration: Duration) -> String {
    format!("{:.2}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_lines_are_parsed_and_others_are_not() {
        assert_eq!(parse_step("Step 2/3 : RUN echo hi"), Some((2, 3, "RUN echo hi")));
        assert_eq!(parse_step("Step 1/1 : FROM busybox:latest\n"), Some((1, 1, "FROM busybox:latest")));
        assert_eq!(parse_step(" ---> Running in abc"), None);
        assert_eq!(parse_step("Step x/3 : RUN"), None);
    }

    #[test]
    fn layer_progress_is_reported_on_each_change_and_a_few_times_a_second() {
        let mut reports = LayerReports::default();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert!(reports.due("aaa", "Preparing", false, at(0)));
        assert!(reports.due("bbb", "Preparing", false, at(0)), "each layer on its own");
        assert!(reports.due("aaa", "Pushing", false, at(10)), "a new status");
        assert!(!reports.due("aaa", "Pushing", false, at(20)), "a chunk right after");
        assert!(!reports.due("aaa", "Pushing", false, at(200)));
        assert!(reports.due("aaa", "Pushing", false, at(260)), "its bytes, a quarter second on");
        assert!(!reports.due("aaa", "Pushing", false, at(300)));
        assert!(reports.due("aaa", "Pushing", true, at(301)), "the last chunk, at once");
        assert!(reports.due("aaa", "Pushed", false, at(302)), "the end, at once");
        let line = json_line(
            log::Level::Info,
            Some("postbuild".into()),
            Some("tag_and_push".into()),
            "push_layer",
            "m",
            Event::PushLayer {
                name: "r/x:1".into(),
                layer: "aaa".into(),
                status: "Pushing".into(),
                current: Some(5),
                total: Some(10),
            }
            .parts()
            .3,
        );
        let parsed: Value = serde_json::from_str(&line).expect("one JSON object");
        assert_eq!((&parsed["layer"], &parsed["current"], &parsed["total"]), (&json!("aaa"), &json!(5), &json!(10)));
    }

    #[test]
    fn plugin_lines_are_placed_by_their_target() {
        assert_eq!(plugin_of_target("plugin::my_key::container"), Some("my_key"));
        assert_eq!(plugin_of_target("plugin::my_key"), Some("my_key"));
        assert_eq!(plugin_of_target("reactor::workflow"), None);
    }

    #[test]
    fn json_lines_are_redacted_as_plain_lines_are() {
        crate::secrets::mask(["json-line-secret-0451".to_owned()]);
        let line = json_line(
            log::Level::Info,
            Some("prebuild".into()),
            None,
            "log",
            "token json-line-secret-0451 from https://u:pw-0451@example.com/x",
            json!({"error": "also json-line-secret-0451"}),
        );
        assert!(!line.contains("json-line-secret-0451") && !line.contains("pw-0451"), "{line}");
        let parsed: Value = serde_json::from_str(&line).expect("one JSON object");
        assert_eq!(parsed["phase"], "prebuild");
        assert_eq!(parsed["event"], "log");
        assert_eq!(parsed["plugin"], Value::Null);
    }

    #[test]
    fn a_failed_summary_names_the_place_and_a_written_document() {
        let summary = Summary {
            outcome: "failed".into(),
            failed_phase: Some("prebuild".into()),
            failed_plugin: Some("boom".into()),
            error: Some("it broke".into()),
            image: "x:1".into(),
            metadata_file: Some("/tmp/r.json".into()),
            ..Default::default()
        };
        let lines = summary.lines();
        assert_eq!(lines[0], "summary: failed x:1 in 0.00s at prebuild plugin 'boom'");
        assert_eq!(lines.last().map(String::as_str), Some("summary: result document: /tmp/r.json"));
    }
}
