//! The `--progress tty` live view, drawn by `indicatif` on stderr: a line per phase with its
//! plugins under it, each with a spinner while it runs, then a tick or a cross and its duration;
//! under the running build, its current step out of the total and its last few output lines;
//! under a running push, a line per layer (its status, and a byte bar while it is sent), folded
//! into one `pushed NAME@DIGEST` line when the push ends.
//! Warnings and errors are printed above the view; the summary below it, once it is finished.
//!
//! Like the rest of `progress`, the view is process-wide: one process runs one build, and its
//! phases and plugins run one at a time, so each new line is simply added at the bottom.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::Event;

/// How many of the build's output lines stay on screen under its step.
const TAIL_LINES: usize = 3;

/// A spinner's frames, then what it shows when done (the line's style is replaced then).
const SPINNER_FRAMES: &str = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ";

static VIEW: Mutex<Option<LiveView>> = Mutex::new(None);

fn view() -> std::sync::MutexGuard<'static, Option<LiveView>> {
    VIEW.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts the view (from `logging::init`, for `--progress tty`).
pub fn start() {
    *view() = Some(LiveView::new());
}

/// Shows `event` in the view; false when there is no view.
pub fn show(event: &Event) -> bool {
    match view().as_mut() {
        Some(view) => {
            view.show(event);
            true
        }
        None => false,
    }
}

/// A log line: a build output line joins the tail under the build; one at warn or error (or
/// any, with `-v`) is printed above the view; other info lines are what the view replaces.
/// False when there is no view.
pub fn log_line(level: log::Level, target: &str, text: &str) -> bool {
    let mut guard = view();
    let Some(view) = guard.as_mut() else { return false };
    if target == "reactor::build" && level == log::Level::Info {
        view.build_output(text);
    } else if level <= log::Level::Warn || log::max_level() >= log::LevelFilter::Debug {
        view.print_above(&format!("[{} {target}] {text}", level));
    }
    true
}

/// Ends the view, leaving its last drawing on screen, and prints `lines` below it.
/// False when there is no view (the caller prints them its own way).
pub fn finish(lines: &[String]) -> bool {
    let Some(view) = view().take() else { return false };
    view.finish();
    for line in lines {
        eprintln!("{line}");
    }
    true
}

struct LiveView {
    multi: MultiProgress,
    /// The phase running now and its line.
    phase: Option<ProgressBar>,
    /// The plugin running now and its line.
    plugin: Option<ProgressBar>,
    /// "Step N/M: …" under the build, once it has one.
    step: Option<ProgressBar>,
    /// The last few build output lines, oldest first, each with its own line.
    tail: Vec<ProgressBar>,
    tail_text: VecDeque<String>,
    /// The layers of the push running now, by the engine's short id, in the order first seen.
    layers: Vec<(String, ProgressBar)>,
    /// The ended lines, kept: indicatif takes a dropped bar's line out of the drawing.
    ended: Vec<ProgressBar>,
}

impl LiveView {
    fn new() -> Self {
        // indicatif hides the drawing when stderr is no terminal (`--progress tty` in a pipe).
        Self::with_target(ProgressDrawTarget::stderr())
    }

    fn with_target(target: ProgressDrawTarget) -> Self {
        let multi = MultiProgress::with_draw_target(target);
        LiveView {
            multi,
            phase: None,
            plugin: None,
            step: None,
            tail: Vec::new(),
            tail_text: VecDeque::new(),
            layers: Vec::new(),
            ended: Vec::new(),
        }
    }

    fn spinner(&self, indent: &str, name: &str) -> ProgressBar {
        let style = ProgressStyle::with_template(&format!("{indent}{{spinner:.cyan}} {{msg}} {{elapsed:.dim}}"))
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .tick_chars(SPINNER_FRAMES);
        let bar = self.multi.add(ProgressBar::new_spinner().with_style(style).with_message(name.to_owned()));
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }

    fn text_line(&self, indent: &str, text: &str) -> ProgressBar {
        text_line(&self.multi, indent, text)
    }

    fn show(&mut self, event: &Event) {
        match event {
            Event::PhaseStarted { phase } => self.phase = Some(self.spinner("", phase)),
            Event::PhaseEnded { phase, duration, outcome } => {
                if let Some(bar) = self.phase.take() {
                    end(&bar, "", phase, *duration, outcome);
                    self.ended.push(bar);
                }
            }
            Event::PluginStarted { plugin, .. } => self.plugin = Some(self.spinner("  ", plugin)),
            Event::PluginEnded { plugin, duration, outcome, .. } => {
                self.clear_build();
                self.clear_layers();
                // A skipped plugin never started: its line is added ended.
                let bar = self.plugin.take().unwrap_or_else(|| self.text_line("  ", plugin));
                end(&bar, "  ", plugin, *duration, outcome);
                self.ended.push(bar);
            }
            Event::BuildStep { current, total, instruction } => {
                let text = crate::secrets::redact_text(&format!("Step {current}/{total}: {instruction}"));
                self.step_line().set_message(text);
            }
            Event::PushLayer { layer, status, current, total, .. } => self.push_layer(layer, status, *current, *total),
            Event::PushDigest { name, digest } => {
                self.clear_layers();
                let text = crate::secrets::redact_text(&format!("pushed {name}@{digest}"));
                let bar = self.text_line("    ", "");
                // Finished, it is drawn at once and stays as it is.
                bar.finish_with_message(text);
                self.ended.push(bar);
            }
            Event::ImageBuilt { .. } => {}
        }
    }

    fn build_output(&mut self, text: &str) {
        // The step line itself is on the step's own line.
        if crate::progress::parse_step(text).is_some() || text.trim().is_empty() {
            return;
        }
        if self.tail_text.len() == TAIL_LINES {
            self.tail_text.pop_front();
        }
        self.tail_text.push_back(text.trim_end().to_owned());
        // The output goes under the step, even before the first step line.
        self.step_line();
        while self.tail.len() < self.tail_text.len() {
            let bar = self.text_line("      ", "");
            self.tail.push(bar);
        }
        for (bar, text) in self.tail.iter().zip(&self.tail_text) {
            bar.set_message(text.clone());
        }
    }

    /// A layer's line: its short id and status, with a byte bar while it is being sent.
    fn push_layer(&mut self, layer: &str, status: &str, current: Option<u64>, total: Option<u64>) {
        let bar = match self.layers.iter().find(|(id, _)| id == layer) {
            Some((_, bar)) => bar.clone(),
            None => {
                let bar = self.multi.add(ProgressBar::new(0).with_prefix(short_id(layer).to_owned()));
                self.layers.push((layer.to_owned(), bar.clone()));
                bar
            }
        };
        let sending = status == "Pushing" && total.is_some_and(|total| total > 0);
        let template = if sending {
            "    {prefix} {msg:<9} [{bar:30.cyan/dim}] {bytes}/{total_bytes}"
        } else {
            "    {prefix} {msg}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        if sending {
            bar.set_length(total.unwrap_or(0));
            bar.set_position(current.unwrap_or(0));
        }
        bar.set_message(status.to_owned());
    }

    /// The push's layer lines go when it ends: the `pushed` line (or the plugin's) says how.
    fn clear_layers(&mut self) {
        for (_, bar) in self.layers.drain(..) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    fn step_line(&mut self) -> &ProgressBar {
        let multi = &self.multi;
        self.step.get_or_insert_with(|| text_line(multi, "    ", ""))
    }

    /// The build's step and output lines go when its plugin ends: its own line says how it went.
    fn clear_build(&mut self) {
        if let Some(bar) = self.step.take() {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        for bar in self.tail.drain(..) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        self.tail_text.clear();
    }

    fn print_above(&self, line: &str) {
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            // Fails only when stderr is gone, with nobody to tell.
            let _ = self.multi.println(line);
        }
    }

    fn finish(mut self) {
        self.clear_build();
        self.clear_layers();
        // What still runs (a cancelled build) ends as it is, with no tick.
        for bar in [self.plugin.take(), self.phase.take()].into_iter().flatten() {
            bar.abandon();
            self.ended.push(bar);
        }
        // Below the last line of the drawing, which ends without a newline.
        if !self.multi.is_hidden() {
            eprintln!();
        }
    }
}

/// The engine's layer ids are already short (12 hex digits); a longer one is cut to that.
fn short_id(layer: &str) -> &str {
    let layer = layer.strip_prefix("sha256:").unwrap_or(layer);
    layer.get(..12).unwrap_or(layer)
}

/// A line of text (no spinner) at the bottom of the view.
fn text_line(multi: &MultiProgress, indent: &str, text: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(&format!("{indent}{{wide_msg:.dim}}"))
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    multi.add(ProgressBar::new_spinner().with_style(style).with_message(text.to_owned()))
}

/// A phase's or plugin's line, ended: a tick or a cross (a dash when skipped), and its duration.
fn end(bar: &ProgressBar, indent: &str, name: &str, duration: Duration, outcome: &str) {
    let mark = match outcome {
        "succeeded" => "✓",
        "declined" | "skipped" => "-",
        _ => "✗",
    };
    let note = if outcome == "succeeded" { String::new() } else { format!(" ({outcome})") };
    let style =
        ProgressStyle::with_template(&format!("{indent}{{msg}}")).unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.finish_with_message(format!("{mark} {name} {:.2}s{note}", duration.as_secs_f64()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::InMemoryTerm;

    /// The view drawn into a terminal in memory of `rows` x 100.
    fn view_in_memory(rows: u16) -> (LiveView, InMemoryTerm) {
        let term = InMemoryTerm::new(rows, 100);
        let view = LiveView::with_target(ProgressDrawTarget::term_like_with_hz(Box::new(term.clone()), 100));
        (view, term)
    }

    /// What the terminal shows once `shown` holds of a whole drawing (the same screen twice:
    /// a drawing is written in several steps).
    fn screen_when(term: &InMemoryTerm, what: &str, shown: impl Fn(&str) -> bool) -> String {
        for _ in 0..200 {
            let screen = term.contents();
            std::thread::sleep(Duration::from_millis(5));
            if shown(&screen) && screen == term.contents() {
                return screen;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the view never showed {what}:\n{}", term.contents());
    }

    fn layer(layer: &str, status: &str, bytes: Option<(u64, u64)>) -> Event {
        Event::PushLayer {
            name: "127.0.0.1:5000/app:1".into(),
            layer: layer.into(),
            status: status.into(),
            current: bytes.map(|b| b.0),
            total: bytes.map(|b| b.1),
        }
    }

    #[test]
    fn a_push_shows_a_line_per_layer_under_its_plugin_then_the_digest_line() {
        let (mut view, term) = view_in_memory(20);
        view.show(&Event::PhaseStarted { phase: "postbuild".into() });
        view.show(&Event::PluginStarted { phase: "postbuild".into(), plugin: "tag_and_push".into() });
        view.show(&layer("aaaaaaaaaaaa", "Preparing", None));
        view.show(&layer("bbbbbbbbbbbb", "Preparing", None));
        view.show(&layer("aaaaaaaaaaaa", "Pushing", Some((1_048_576, 2_097_152))));
        view.show(&layer("bbbbbbbbbbbb", "Layer already exists", None));
        let mid = screen_when(&term, "the layers", |s| {
            s.contains("aaaaaaaaaaaa Pushing") && s.contains("bbbbbbbbbbbb Layer")
        });
        let lines: Vec<&str> = mid.lines().collect();
        let plugin = lines.iter().position(|l| l.trim_start().get(4..).is_some_and(|l| l.starts_with("tag_and_push")));
        let pushing = lines.iter().position(|l| l.starts_with("    aaaaaaaaaaaa Pushing"));
        let exists = lines.iter().position(|l| l.starts_with("    bbbbbbbbbbbb Layer already exists"));
        assert!(
            plugin.is_some() && plugin < pushing && pushing < exists,
            "the layers under the plugin, in order:\n{mid}"
        );
        let bar = lines[pushing.unwrap_or_default()];
        assert!(bar.contains("[") && bar.contains("1.00 MiB/2.00 MiB"), "a byte bar: {bar}");
        // Half sent: the bar is half full.
        let filled = bar.split('[').nth(1).map(|b| b.chars().take_while(|c| *c == '=').count()).unwrap_or(0);
        assert!((13..=16).contains(&filled), "{filled} of 30: {bar}");

        view.show(&layer("aaaaaaaaaaaa", "Pushed", None));
        view.show(&Event::PushDigest { name: "127.0.0.1:5000/app:1".into(), digest: "sha256:d1".into() });
        let end = screen_when(&term, "the digest line", |s| s.contains("pushed 127.0.0.1:5000/app:1@sha256:d1"));
        assert!(!end.contains("aaaaaaaaaaaa") && !end.contains("bbbbbbbbbbbb"), "the layers are folded away:\n{end}");
        view.show(&Event::PluginEnded {
            phase: "postbuild".into(),
            plugin: "tag_and_push".into(),
            duration: Duration::from_millis(500),
            outcome: "succeeded",
            error: None,
        });
        let ended = screen_when(&term, "the tick", |s| s.contains("✓ tag_and_push 0.50s"));
        assert!(ended.contains("    pushed 127.0.0.1:5000/app:1@sha256:d1"), "the digest line stays:\n{ended}");
        view.finish();
    }
}
