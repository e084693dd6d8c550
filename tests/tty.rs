//! The `--progress tty` live view as a person sees it: tmux runs `reactor --progress auto build
//! json …` in a terminal of fixed size, and `capture-pane` shows, mid-build, the running phase
//! and plugin with a spinner, the current step and the build's output under it; after the
//! build, a tick for each phase and plugin with its duration, and the summary below.
//! Real binary, real engine; the tmux server is the test's own (its own socket).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::*;

/// A spinner frame: the view's spinners are braille dots.
fn is_spinner(c: char) -> bool {
    ('\u{2801}'..='\u{28ff}').contains(&c)
}
/// Long enough for a slow, shared machine; the polls end as soon as the text is there.
const PATIENCE: Duration = Duration::from_secs(180);

/// A tmux server of the test's own, killed (with its session) when dropped.
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    /// Runs `command` (a shell line) in a detached 120x40 session, started in `dir`.
    fn start(dir: &Path, command: &str) -> Tmux {
        Tmux::start_sized(dir, command, 120, 40)
    }

    /// [`Tmux::start`] in a terminal of `columns` x `rows`.
    fn start_sized(dir: &Path, command: &str, columns: u16, rows: u16) -> Tmux {
        let tmux = Tmux { socket: unique("tty-socket"), session: unique("tty") };
        let dir = dir.display().to_string();
        let (columns, rows) = (columns.to_string(), rows.to_string());
        let out =
            tmux.run(&["new-session", "-d", "-s", &tmux.session, "-x", &columns, "-y", &rows, "-c", &dir, command]);
        assert!(out.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&out.stderr));
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux (scripts/setup.sh installs it)")
    }

    /// What the pane shows now.
    fn screen(&self) -> String {
        let out = self.run(&["capture-pane", "-p", "-t", &self.session]);
        assert!(out.status.success(), "tmux capture-pane: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls the pane until `shown` holds of it, and returns that screen.
    fn wait_for(&self, what: &str, shown: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if shown(&screen) {
                return screen;
            }
            assert!(start.elapsed() < PATIENCE, "the pane never showed {what}; it shows:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The image built, removed at the end.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.0]);
    }
}

/// A line of the screen that starts (after its indent) with a spinner frame then `name`.
fn spinning(screen: &str, name: &str) -> bool {
    screen.lines().any(|line| {
        let line = line.trim_start();
        line.starts_with(is_spinner)
            && line.chars().skip(1).collect::<String>().trim_start().starts_with(&format!("{name} "))
    })
}

/// A line of the screen that is `indent`, a tick, `name` and a duration in seconds.
fn ticked(screen: &str, indent: &str, name: &str) -> bool {
    screen.lines().any(|line| {
        line.strip_prefix(&format!("{indent}✓ {name} "))
            .is_some_and(|rest| rest.trim_end().strip_suffix('s').is_some_and(|n| n.parse::<f64>().is_ok()))
    })
}

#[test]
fn tty_progress_in_a_terminal_shows_the_live_view_mid_build_and_ticks_and_the_summary_after() {
    engine_is_up();
    let dir = workdir();
    write_files(
        &dir.path().join("src"),
        &[("Dockerfile", "FROM busybox:latest\nRUN echo tty-output-line && sleep 3\nRUN echo tty-after\n")],
    );
    let image = Image(format!("{}:1", unique("tty")));
    let request = json!({
        "image": image.0,
        "source": {"provider": "path", "uri": "src"},
        "prebuild_plugins": [{"name": "add_labels_in_dockerfile", "args": {"labels": {"name": "tty-test"}}}],
    });
    let file = build_json(dir.path(), &request);
    let command = format!(
        "env -u RUST_LOG '{}' --progress auto build json '{file}' --metadata-file result.json; echo REACTOR-EXIT=$?; sleep 3600",
        env!("CARGO_BIN_EXE_reactor")
    );
    let tmux = Tmux::start(dir.path(), &command);

    // Mid-build: the sleep holds step 2 on screen (of 4: add_labels_in_dockerfile adds a LABEL).
    let mid = tmux.wait_for("step 2 of the build", |s| {
        s.lines().any(|l| l.trim_start().starts_with("Step 2/") && l.contains(": RUN echo tty-output-line"))
    });
    assert!(!mid.contains("REACTOR-EXIT="), "the build ended before the view was seen:\n{mid}");
    assert!(spinning(&mid, "buildstep"), "no spinner on the buildstep phase:\n{mid}");
    assert!(spinning(&mid, "docker_api"), "no spinner on the build plugin:\n{mid}");
    assert!(ticked(&mid, "", "prebuild") && ticked(&mid, "  ", "add_labels_in_dockerfile"), "{mid}");
    let output = tmux.wait_for("the build's output under its step", |s| {
        s.lines().any(|line| line.starts_with("      ") && line.trim() == "tty-output-line")
    });
    assert!(!output.contains("INFO"), "info log lines are drawn over by the view:\n{output}");

    // After: every phase ticked, the build's lines folded away, the summary below.
    let end = tmux.wait_for("the end of the run", |s| s.contains("REACTOR-EXIT="));
    assert!(end.contains("REACTOR-EXIT=0"), "the build failed:\n{end}");
    for phase in ["source", "prebuild", "buildstep", "prepublish", "postbuild", "exit"] {
        assert!(ticked(&end, "", phase), "no tick for {phase}:\n{end}");
    }
    assert!(ticked(&end, "  ", "docker_api"), "no tick for the build plugin:\n{end}");
    assert!(!end.contains("Step ") && !end.lines().any(|l| l.trim() == "tty-output-line"), "{end}");
    assert!(!end.lines().any(|l| l.trim_start().starts_with(is_spinner)), "a spinner is left:\n{end}");
    let summary = end.lines().position(|l| l.starts_with(&format!("summary: succeeded {}", image.0)));
    let last_tick = end.lines().position(|l| l.starts_with("✓ exit "));
    assert!(summary.is_some() && summary > last_tick, "the summary is not below the view:\n{end}");
    assert!(end.contains("summary: result document: result.json"), "{end}");
}

#[test]
fn tty_progress_in_a_short_terminal_folds_ended_phases_and_keeps_the_running_plugin_in_sight() {
    engine_is_up();
    let dir = workdir();
    write_files(&dir.path().join("src"), &[("Dockerfile", "FROM busybox:latest\nRUN echo short-terminal\n")]);
    let image = Image(format!("{}:1", unique("tty-short")));
    let labels = json!({"name": "tty-short", "version": "1", "release": "2"});
    let request = json!({
        "image": image.0,
        "source": {"provider": "path", "uri": "src"},
        "prebuild_plugins": [
            {"name": "add_labels_in_dockerfile", "args": {"labels": labels, "auto_labels": []}},
            {"name": "assert_labels"},
            {"name": "dockerfile_content"},
            {"name": "cp_dockerfile", "args": {"path": "Dockerfile.copy"}},
            {"name": "distribution_scope"},
            {"name": "add_dockerfile"},
            {"name": "change_from_in_dockerfile"},
        ],
        "postbuild_plugins": [
            {"name": "dockerfile_content"},
            {"name": "run_in_image", "args": {"command": "sleep 4"}},
        ],
        "exit_plugins": [
            {"name": "dockerfile_content"},
            {"name": "store_logs_to_file", "args": {"file_path": "logs.json"}},
        ],
    });
    let file = build_json(dir.path(), &request);
    let command = format!(
        "env -u RUST_LOG '{}' --progress auto build json '{file}' --metadata-file result.json; echo REACTOR-EXIT=$?; sleep 3600",
        env!("CARGO_BIN_EXE_reactor")
    );
    let tmux = Tmux::start_sized(dir.path(), &command, 100, 12);

    // Mid-build: 7 prebuild plugins and more would not fit in 12 rows; the ended phases are
    // folded and the running plugin is in sight.
    let mid = tmux.wait_for("run_in_image running", |s| spinning(s, "run_in_image"));
    assert!(!mid.contains("REACTOR-EXIT="), "the build ended before the view was seen:\n{mid}");
    assert!(spinning(&mid, "postbuild"), "no spinner on the running phase:\n{mid}");
    assert!(mid.lines().any(|l| l.starts_with("✓ prebuild  7 plugins  ")), "prebuild is not folded:\n{mid}");
    assert!(!mid.contains("assert_labels"), "an ended phase's plugins are still shown:\n{mid}");
    assert!(mid.lines().any(|l| l.starts_with("  ✓ dockerfile_content ")), "the running phase is not folded:\n{mid}");

    let end = tmux.wait_for("the end of the run", |s| s.contains("REACTOR-EXIT="));
    assert!(end.contains("REACTOR-EXIT=0"), "the build failed:\n{end}");
    let summary = end.lines().position(|l| l.starts_with(&format!("summary: succeeded {}", image.0)));
    let document = end.lines().position(|l| l.starts_with("summary: result document: result.json"));
    assert!(summary.is_some() && summary < document, "the summary is not whole:\n{end}");
    assert!(end.contains("summary: slowest plugin: "), "{end}");
    assert!(!end.lines().any(|l| l.trim_start().starts_with(is_spinner)), "a spinner is left:\n{end}");
}
