//! The `--progress tty` live view, drawn by `indicatif` on stderr: a line per phase with its
//! plugins under it, each with a spinner while it runs, then a tick or a cross and its duration;
//! under the running build, its current step out of the total and its last few output lines;
//! under a running push, a line per layer (its status, and a byte bar while it is sent), folded
//! into one `pushed NAME@DIGEST` line when the push ends.
//! Warnings and errors are printed above the view; the summary below it, once it is finished.
//!
//! A view taller than the terminal is bounded: ended phases fold into one line each
//! (`✓ prebuild  4 plugins  1.20s`), then the oldest ended lines go; the running phase and
//! plugin and what is under them stay.
//!
//! While the view is drawn on a terminal, whatever else writes to stderr (a plugin's or a
//! library's own prints, an isolated plugin's worker, a helper process) would tear the drawing:
//! fd 2 is then a pipe whose lines are printed above the view, and the view is drawn on a copy
//! of the real stderr ([`StderrGuard`]). The real stderr is put back when the view ends.
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

static GUARD: Mutex<Option<StderrGuard>> = Mutex::new(None);

/// Starts the view (from `logging::init`, for `--progress tty`), and guards it against direct
/// writes to stderr from then on: isolated plugins' workers, started before the build, take
/// their stderr from reactor's.
pub fn start() {
    use std::io::IsTerminal;
    let mut live = LiveView::new();
    // indicatif hides the drawing when stderr is no terminal (`--progress tty` in a pipe); then
    // nothing can tear it, and stderr stays as it is.
    let guard = if std::io::stderr().is_terminal() { StderrGuard::install() } else { None };
    if let Some(term) = guard.as_ref().and_then(StderrGuard::terminal) {
        let rows = term.clone();
        live.rows = Box::new(move || rows.size_checked().map(|(rows, _)| usize::from(rows)));
        live.multi.set_draw_target(ProgressDrawTarget::term(term, 20));
    }
    *view() = Some(live);
    *lock(&GUARD) = guard;
}

/// Puts the real stderr back (from `main`, once the command is done): what was written to fd 2
/// is printed before the process ends. [`finish`] does it too, before the summary.
pub fn restore_stderr() {
    if let Some(guard) = lock(&GUARD).take() {
        guard.remove();
    }
}

/// The real stderr, for a panic: its message must not wait in the pipe of a dying process.
static REAL_STDERR: std::sync::OnceLock<std::os::fd::OwnedFd> = std::sync::OnceLock::new();

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// fd 2 made a pipe while the view is drawn: a thread reads it and prints each line above the
/// view. `saved` is the real stderr, the view's terminal.
struct StderrGuard {
    saved: std::os::fd::OwnedFd,
    reader: std::thread::JoinHandle<()>,
    /// Told when the reader has read the pipe to its end.
    drained: std::sync::mpsc::Receiver<()>,
}

impl StderrGuard {
    /// Puts the pipe on fd 2; None (and stderr as it was) when any step fails.
    fn install() -> Option<StderrGuard> {
        let saved = rustix::io::fcntl_dupfd_cloexec(std::io::stderr(), 3).ok()?;
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ok()?;
        let (done, drained) = std::sync::mpsc::channel();
        let reader = std::thread::Builder::new()
            .name("stderr-above-view".into())
            .spawn(move || {
                forward_lines(std::fs::File::from(read));
                let _ = done.send(());
            })
            .ok()?;
        if let Ok(real) = saved.try_clone() {
            if REAL_STDERR.set(real).is_ok() {
                let previous = std::panic::take_hook();
                std::panic::set_hook(Box::new(move |info| {
                    if let Some(real) = REAL_STDERR.get() {
                        let _ = rustix::stdio::dup2_stderr(real);
                    }
                    previous(info);
                }));
            }
        }
        // dup2 leaves fd 2 inheritable: child processes write into the pipe too.
        rustix::stdio::dup2_stderr(&write).ok()?;
        Some(StderrGuard { saved, reader, drained })
    }

    /// The real stderr as the view's terminal.
    fn terminal(&self) -> Option<console::Term> {
        let write = std::fs::File::from(self.saved.try_clone().ok()?);
        Some(console::Term::read_write_pair(std::io::stdin(), write))
    }

    /// Puts the real stderr back on fd 2, which closes the pipe's last writer (bar a child
    /// process still running, not waited for long), and lets the reader print what is left.
    fn remove(self) {
        if rustix::stdio::dup2_stderr(&self.saved).is_err() {
            return;
        }
        if self.drained.recv_timeout(Duration::from_secs(1)).is_ok() {
            let _ = self.reader.join();
        }
    }
}

/// Each line of what was written to fd 2, printed above the view (or on stderr once it ended).
fn forward_lines(pipe: std::fs::File) {
    use std::io::BufRead;
    let mut pipe = std::io::BufReader::new(pipe);
    let mut line = Vec::new();
    while let Ok(read) = pipe.read_until(b'\n', &mut line) {
        if read == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let text = crate::secrets::redact_text(text.trim_end_matches(['\n', '\r']));
        match view().as_ref() {
            Some(view) => view.print_above(&text),
            None => eprintln!("{text}"),
        }
        line.clear();
    }
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
    // First the real stderr back, and what was written to the pipe printed above the view.
    restore_stderr();
    let Some(view) = view().take() else { return false };
    view.finish();
    for line in lines {
        eprintln!("{line}");
    }
    true
}

/// A phase's lines in the view: its own, and its plugins' ended lines under it.
struct PhaseLines {
    bar: ProgressBar,
    /// Ended plugin lines and pushed lines, in order.
    children: Vec<ProgressBar>,
    /// Its one-line form once ended (`✓ prebuild  4 plugins  1.20s`); None while it runs.
    folded: Option<String>,
    /// Whether it is shown folded.
    is_folded: bool,
}

struct LiveView {
    multi: MultiProgress,
    /// The terminal's height now, when known.
    rows: Box<dyn Fn() -> Option<usize> + Send>,
    /// The phases shown, oldest first; the last may be running.
    phases: Vec<PhaseLines>,
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
        let rows = || console::Term::stderr().size_checked().map(|(rows, _)| usize::from(rows));
        Self::with_target(ProgressDrawTarget::stderr(), Box::new(rows))
    }

    fn with_target(target: ProgressDrawTarget, rows: Box<dyn Fn() -> Option<usize> + Send>) -> Self {
        let multi = MultiProgress::with_draw_target(target);
        LiveView {
            multi,
            rows,
            phases: Vec::new(),
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
        self.draw(event);
        self.fit();
    }

    fn draw(&mut self, event: &Event) {
        match event {
            Event::PhaseStarted { phase } => {
                let bar = self.spinner("", phase);
                self.phases.push(PhaseLines { bar: bar.clone(), children: Vec::new(), folded: None, is_folded: false });
                self.phase = Some(bar);
            }
            Event::PhaseEnded { phase, duration, outcome } => {
                if let Some(bar) = self.phase.take() {
                    end(&bar, "", phase, *duration, outcome);
                    if let Some(lines) = self.phases.last_mut() {
                        let plugins = lines.children.len();
                        let plural = if plugins == 1 { "" } else { "s" };
                        let (mark, note) = mark_and_note(outcome);
                        lines.folded = Some(format!(
                            "{mark} {phase}  {plugins} plugin{plural}  {:.2}s{note}",
                            duration.as_secs_f64()
                        ));
                    }
                }
            }
            Event::PluginStarted { plugin, .. } => self.plugin = Some(self.spinner("  ", plugin)),
            Event::PluginEnded { plugin, duration, outcome, .. } => {
                self.clear_build();
                self.clear_layers();
                // A skipped plugin never started: its line is added ended.
                let bar = self.plugin.take().unwrap_or_else(|| self.text_line("  ", plugin));
                end(&bar, "  ", plugin, *duration, outcome);
                self.keep(bar);
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
                self.keep(bar);
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
        self.fit();
    }

    /// An ended line under the running phase (with it, when it folds).
    fn keep(&mut self, bar: ProgressBar) {
        match self.phases.last_mut() {
            Some(lines) => lines.children.push(bar),
            None => self.ended.push(bar),
        }
    }

    /// How many lines the view has now.
    fn height(&self) -> usize {
        let phases: usize = self.phases.iter().map(|p| 1 + if p.is_folded { 0 } else { p.children.len() }).sum();
        phases
            + usize::from(self.plugin.is_some())
            + usize::from(self.step.is_some())
            + self.tail.len()
            + self.layers.len()
    }

    /// Makes the view fit the terminal: folds ended phases, oldest first, then takes out the
    /// oldest ended lines; what runs now, and what is under it, stays.
    fn fit(&mut self) {
        let Some(rows) = (self.rows)() else { return };
        // One row for the cursor, below the last line.
        let room = rows.saturating_sub(1).max(1);
        while self.height() > room {
            let ended = |p: &PhaseLines| p.folded.is_some();
            if let Some(lines) = self.phases.iter_mut().find(|p| ended(p) && !p.is_folded && !p.children.is_empty()) {
                for bar in lines.children.drain(..) {
                    self.multi.remove(&bar);
                }
                lines.is_folded = true;
                if let Some(text) = &lines.folded {
                    lines.bar.finish_with_message(text.clone());
                }
            } else if let Some(at) = self.phases.iter().position(ended) {
                let lines = self.phases.remove(at);
                for bar in lines.children.iter().chain([&lines.bar]) {
                    self.multi.remove(bar);
                }
            } else if let Some(lines) = self.phases.last_mut().filter(|p| !p.children.is_empty()) {
                // The running phase's own ended plugins, oldest first.
                let bar = lines.children.remove(0);
                self.multi.remove(&bar);
            } else {
                break;
            }
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
            let total = total.unwrap_or(0);
            bar.set_length(total);
            // The engine counts the layer's tar stream, a little longer than the layer's size.
            bar.set_position(current.unwrap_or(0).min(total));
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

/// A tick or a cross (a dash when declined or skipped), and the outcome unless it succeeded.
fn mark_and_note(outcome: &str) -> (&'static str, String) {
    let mark = match outcome {
        "succeeded" => "✓",
        "declined" | "skipped" => "-",
        _ => "✗",
    };
    let note = if outcome == "succeeded" { String::new() } else { format!(" ({outcome})") };
    (mark, note)
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
    let (mark, note) = mark_and_note(outcome);
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
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(term.clone()), 100);
        let view = LiveView::with_target(target, Box::new(move || Some(usize::from(rows))));
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

    fn plugin_ended(phase: &str, plugin: &str) -> Event {
        Event::PluginEnded {
            phase: phase.into(),
            plugin: plugin.into(),
            duration: Duration::from_millis(250),
            outcome: "succeeded",
            error: None,
        }
    }

    /// A phase run with `plugins` plugins, all ended.
    fn run_phase(view: &mut LiveView, phase: &str, plugins: usize) {
        view.show(&Event::PhaseStarted { phase: phase.into() });
        for n in 0..plugins {
            let plugin = format!("{phase}_plugin_{n}");
            view.show(&Event::PluginStarted { phase: phase.into(), plugin: plugin.clone() });
            view.show(&plugin_ended(phase, &plugin));
        }
        view.show(&Event::PhaseEnded {
            phase: phase.into(),
            duration: Duration::from_millis(1500),
            outcome: "succeeded",
        });
    }

    #[test]
    fn a_view_taller_than_the_terminal_folds_ended_phases_then_drops_the_oldest() {
        let (mut view, term) = view_in_memory(12);
        run_phase(&mut view, "prebuild", 4);
        let screen = screen_when(&term, "the prebuild", |s| s.contains("✓ prebuild 1.50s"));
        assert!(screen.contains("  ✓ prebuild_plugin_3 0.25s"), "it fits, unfolded:\n{screen}");
        run_phase(&mut view, "prepublish", 3);
        view.show(&Event::PhaseStarted { phase: "postbuild".into() });
        for n in 0..3 {
            let plugin = format!("postbuild_plugin_{n}");
            view.show(&Event::PluginStarted { phase: "postbuild".into(), plugin: plugin.clone() });
            view.show(&plugin_ended("postbuild", &plugin));
        }
        view.show(&Event::PluginStarted { phase: "postbuild".into(), plugin: "the_running_one".into() });
        view.show(&Event::BuildStep { current: 2, total: 3, instruction: "RUN true".into() });
        for n in 0..3 {
            view.build_output(&format!("output line {n}"));
        }
        // 1 + 4, 1 + 3, then 1 + 3 + 1 running + step + 3 output lines: 18, on 11 rows.
        let screen = screen_when(&term, "the view folded", |s| {
            s.contains("✓ prebuild  4 plugins  1.50s") && s.contains("the_running_one") && s.contains("output line 2")
        });
        assert_eq!(view.height(), 11, "{screen}");
        assert!(screen.contains("✓ prepublish  3 plugins  1.50s"), "{screen}");
        assert!(!screen.contains("prebuild_plugin_") && !screen.contains("prepublish_plugin_"), "{screen}");
        assert!(screen.contains("  ✓ postbuild_plugin_0 0.25s"), "the running phase is not folded:\n{screen}");
        assert!(screen.lines().count() <= 12, "{screen}");

        // Still more: the oldest folded phase goes, then the running phase's oldest ended lines.
        view.show(&plugin_ended("postbuild", "the_running_one"));
        for n in 3..12 {
            let plugin = format!("postbuild_plugin_{n}");
            view.show(&Event::PluginStarted { phase: "postbuild".into(), plugin: plugin.clone() });
            view.show(&plugin_ended("postbuild", &plugin));
        }
        view.show(&Event::PluginStarted { phase: "postbuild".into(), plugin: "the_last_one".into() });
        let screen = screen_when(&term, "the last plugin", |s| s.contains("the_last_one") && !s.contains("prebuild"));
        assert!(view.height() <= 11, "{screen}");
        assert!(
            !screen.contains("prepublish") && screen.contains("postbuild") && screen.contains("postbuild_plugin_11")
        );
        assert!(!screen.contains("postbuild_plugin_0 "), "{screen}");
        view.finish();
    }
}
