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

/// A plugin of the fixture module that writes to stderr itself, mid-build, in process and in an
/// isolated worker (whose stdout goes to stderr too): each line is printed once above the view,
/// whole, and the view and the summary are intact.
#[test]
fn tty_progress_prints_a_plugins_own_stderr_lines_above_the_view_in_process_and_isolated() {
    engine_is_up();
    for isolate in [false, true] {
        let dir = workdir();
        write_files(&dir.path().join("src"), &[("Dockerfile", "FROM busybox:latest\n")]);
        let image = Image(format!("{}:1", unique("tty-stderr")));
        let marker = unique("stray");
        let request = json!({
            "image": image.0,
            "source": {"provider": "path", "uri": "src"},
            "prebuild_plugins": [{"name": "stderr_writer", "args": {"marker": marker, "stdout": isolate, "seconds": 3}}],
        });
        let file = build_json(dir.path(), &request);
        let module = plugin("test_isolation");
        let isolate_flag = if isolate { "--isolate-plugins" } else { "" };
        let command = format!(
            "env -u RUST_LOG '{}' --progress auto --load-plugin '{module}' {isolate_flag} build json '{file}' \
             --metadata-file result.json; echo REACTOR-EXIT=$?; sleep 3600",
            env!("CARGO_BIN_EXE_reactor")
        );
        let tmux = Tmux::start(dir.path(), &command);
        let line = format!("{marker} written to stderr");
        let above = |screen: &str, text: &str| {
            let at = screen.lines().position(|l| l == text);
            let view = screen.lines().position(|l| l.starts_with("✓ source "));
            at.is_some() && at < view
        };

        let mid = tmux.wait_for("the plugin running", |s| spinning(s, "stderr_writer") && s.contains(&line));
        assert!(above(&mid, &line), "the line is not whole above the view (isolate: {isolate}):\n{mid}");
        assert!(spinning(&mid, "prebuild"), "{mid}");

        let end = tmux.wait_for("the end of the run", |s| s.contains("REACTOR-EXIT="));
        assert!(end.contains("REACTOR-EXIT=0"), "the build failed (isolate: {isolate}):\n{end}");
        assert_eq!(end.matches(&marker).count(), if isolate { 2 } else { 1 }, "each line once:\n{end}");
        assert!(above(&end, &line), "{end}");
        if isolate {
            assert!(above(&end, &format!("{marker} written to stdout")), "the worker's stdout:\n{end}");
        }
        for phase in ["source", "prebuild", "buildstep", "exit"] {
            assert!(ticked(&end, "", phase), "no tick for {phase} (isolate: {isolate}):\n{end}");
        }
        assert!(ticked(&end, "  ", "stderr_writer"), "{end}");
        let summary = end.lines().position(|l| l.starts_with(&format!("summary: succeeded {}", image.0)));
        let document = end.lines().position(|l| l.starts_with("summary: result document: result.json"));
        assert!(summary.is_some() && summary < document, "the summary is not whole:\n{end}");
    }
}

/// The throttling proxy of `tests/fixtures/throttle_proxy.py` in front of the registry at
/// 127.0.0.1:5000, on a port of its own; killed when dropped.
struct SlowRegistry {
    child: std::process::Child,
    port: u16,
}

impl SlowRegistry {
    fn start(bytes_per_second: u32) -> SlowRegistry {
        use std::io::BufRead;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/throttle_proxy.py");
        let mut child = Command::new("python3")
            .args([script, "5000", &bytes_per_second.to_string()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run python3 (scripts/setup.sh installs it)");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("the proxy's stdout");
        std::io::BufReader::new(stdout).read_line(&mut line).expect("the proxy's port");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the proxy printed {line:?}, not its port"));
        SlowRegistry { child, port }
    }
}

impl Drop for SlowRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A push slowed by a proxy in front of the registry: mid-push, a line per layer under the
/// pushing plugin, the one being sent with a byte bar; after, the layers folded into the
/// `pushed` line.
#[test]
fn tty_progress_shows_a_line_per_layer_under_a_running_push_then_the_digest_line() {
    engine_is_up();
    let proxy = SlowRegistry::start(1_000_000);
    let registry = format!("127.0.0.1:{}", proxy.port);
    let dir = workdir();
    let name = unique("tty-push");
    // A layer of its own (random, so the registry cannot have it), large enough to be seen.
    let dockerfile = format!("FROM busybox:latest\nRUN head -c 8000000 /dev/urandom > /blob && echo {name}\n");
    write_files(&dir.path().join("src"), &[("Dockerfile", &dockerfile)]);
    let image = Image(format!("{name}:1"));
    let _pushed = Image(format!("{registry}/{name}:1"));
    let request = json!({
        "image": image.0,
        "source": {"provider": "path", "uri": "src"},
        "postbuild_plugins": [{"name": "tag_and_push", "args": {"registries": {&registry: {"insecure": true}}}}],
    });
    let file = build_json(dir.path(), &request);
    let command = format!(
        "env -u RUST_LOG '{}' --progress auto build json '{file}'; echo REACTOR-EXIT=$?; sleep 3600",
        env!("CARGO_BIN_EXE_reactor")
    );
    let tmux = Tmux::start(dir.path(), &command);

    let is_layer = |line: &str, status: &str| {
        line.strip_prefix("    ").and_then(|l| l.split_once(' ')).is_some_and(|(id, rest)| {
            id.len() == 12 && id.chars().all(|c| c.is_ascii_hexdigit()) && rest.starts_with(status)
        })
    };
    // The new layer (busybox's, small, may be sent too: the proxy is a registry of its own).
    let sending_new = |l: &str| is_layer(l, "Pushing") && l.contains("/7.63 MiB");
    let mid = tmux.wait_for("the new layer being pushed", |s| s.lines().any(sending_new));
    let lines: Vec<&str> = mid.lines().collect();
    let plugin = lines.iter().position(|l| l.starts_with("  ") && spinning(l, "tag_and_push"));
    let sending = lines.iter().position(|l| sending_new(l));
    assert!(plugin.is_some() && plugin < sending, "the layer is not under the pushing plugin:\n{mid}");
    let bar = lines[sending.unwrap_or_default()];
    assert!(bar.contains(" [") && bar.contains("] "), "no byte bar: {bar}\n{mid}");
    let layers = lines.iter().filter(|l| is_layer(l, "")).count();
    assert!(layers >= 2, "a line per layer (busybox's and the new one):\n{mid}");

    let end = tmux.wait_for("the end of the run", |s| s.contains("REACTOR-EXIT="));
    assert!(end.contains("REACTOR-EXIT=0"), "the build failed:\n{end}");
    assert!(!end.lines().any(|l| is_layer(l, "")), "the layer lines are not folded away:\n{end}");
    let pushed = format!("    pushed {registry}/{name}:1@sha256:");
    assert!(end.lines().any(|l| l.starts_with(&pushed)), "no digest line:\n{end}");
    assert!(ticked(&end, "  ", "tag_and_push"), "{end}");
    assert!(end.contains(&format!("summary: pushed {registry}/{name}:1@sha256:")), "{end}");
}
