//! The plugin author's kit, end to end: `reactor plugin new` writes a crate that builds outside
//! this repository, passes its own unit tests, loads, and runs in a real build; and every command
//! of docs/writing-plugins.md runs, in order, as written.
//!
//! The generated crates are built into one target directory shared by these tests and by every
//! run (`target/plugin-kit`), with this workspace's Cargo.lock, so abi_stable, serde and reqwest
//! compile once per machine. It is not the workspace's own target directory: the tutorial's crate
//! is called `logs_submitter` too, and its `.so` must not replace the fixture's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::*;

const DOC: &str = "docs/writing-plugins.md";
/// How long the tutorial may take: cold, it compiles abi_stable and reqwest twice (test and release).
const DOC_TIMEOUT: Duration = Duration::from_secs(25 * 60);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

fn kit_target_dir() -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().expect("the target dir").to_path_buf();
    target.join("plugin-kit")
}

/// The environment every command of these tests runs in: a HOME and XDG directories of the test's
/// own (so no plugin directory of the machine's is read or written), with cargo and rustup still
/// finding their homes, and this build's `reactor` first on PATH.
fn isolated_env(home: &Path) -> Vec<(String, String)> {
    let real_home = std::env::var("HOME").unwrap_or_default();
    let cargo_home = std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{real_home}/.cargo"));
    let rustup_home = std::env::var("RUSTUP_HOME").unwrap_or_else(|_| format!("{real_home}/.rustup"));
    let reactor_dir = Path::new(env!("CARGO_BIN_EXE_reactor")).parent().expect("bin dir").display().to_string();
    let path = format!("{reactor_dir}:{}", std::env::var("PATH").unwrap_or_default());
    let mut env = vec![
        ("HOME".to_owned(), home.display().to_string()),
        ("XDG_DATA_HOME".to_owned(), home.join(".local/share").display().to_string()),
        ("XDG_CONFIG_HOME".to_owned(), home.join(".config").display().to_string()),
        ("CARGO_HOME".to_owned(), cargo_home),
        ("PATH".to_owned(), path),
    ];
    if Path::new(&rustup_home).is_dir() {
        env.push(("RUSTUP_HOME".to_owned(), rustup_home));
    }
    env
}

fn as_pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Runs cargo in `dir`, failing the test with its output unless it succeeds; returns its stdout.
fn cargo(dir: &Path, args: &[&str], env: &[(String, String)]) -> String {
    let out = Command::new(env!("CARGO"))
        .current_dir(dir)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("CARGO_TARGET_DIR", kit_target_dir())
        .env_remove("RUST_LOG")
        .output()
        .expect("run cargo");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "cargo {args:?} in {} failed:\n{stdout}\n{stderr}", dir.display());
    stdout.into_owned()
}

/// Whether this reactor has `reactor plugins SUB`.
fn has_subcommand(sub: &str, env: &[(String, String)]) -> bool {
    let out = Command::new(env!("CARGO_BIN_EXE_reactor"))
        .args(["plugins", sub, "--help"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run reactor");
    out.status.success()
}

#[test]
fn a_new_plugin_builds_outside_the_tree_passes_its_tests_loads_and_runs_a_build() {
    let dir = workdir();
    assert!(!dir.path().starts_with(repo_root()), "the crate must be made outside this repository");
    let home = dir.path().join("home");
    let env = isolated_env(&home);

    let run = reactor(dir.path(), &["plugin", "new", "kit-hello", "--dir", "crates/kit-hello"], &as_pairs(&env));
    run.expect_code(0);
    let api = repo_root().join("reactor-plugin-api").canonicalize().expect("the API crate");
    assert!(
        run.stdout.contains(&format!("reactor-plugin-api: the source this reactor was built from, {}", api.display())),
        "{}",
        run.stdout
    );
    let crate_dir = dir.path().join("crates/kit-hello");
    let cargo_toml = std::fs::read_to_string(crate_dir.join("Cargo.toml")).expect("Cargo.toml");
    assert!(cargo_toml.contains("crate-type = [\"cdylib\"]"), "{cargo_toml}");
    assert!(cargo_toml.contains(&format!("reactor-plugin-api = {{ path = \"{}\" }}", api.display())), "{cargo_toml}");
    assert!(!cargo_toml.contains("abi_stable ="), "abi_stable must come through reactor-plugin-api only");
    for file in ["src/lib.rs", "README.md", ".gitignore"] {
        assert!(crate_dir.join(file).is_file(), "{file} was not written");
    }

    // The crate's own unit tests, on FakeHost.
    std::fs::copy(repo_root().join("Cargo.lock"), crate_dir.join("Cargo.lock")).expect("copy Cargo.lock");
    let tested = cargo(&crate_dir, &["test"], &env);
    assert!(tested.contains("test result: ok. 4 passed"), "{tested}");
    cargo(&crate_dir, &["build", "--release"], &env);
    let so = kit_target_dir().join("release/libkit_hello.so").display().to_string();

    reactor(dir.path(), &["plugins", "check", &so], &as_pairs(&env)).expect_code(0);

    // Loads in a real build, logs through reactor, and its result lands in the result document.
    let image = unique("kit-hello");
    let _cleanup = Images(vec![image.clone()]);
    write_files(dir.path(), &[("src/Dockerfile", "FROM busybox:latest\nCMD [\"true\"]\n")]);
    let file = build_json(
        dir.path(),
        &json!({
            "image": image,
            "source": {"provider": "path", "uri": "src"},
            "postbuild_plugins": [{"name": "kit_hello", "args": {"greeting": "hi"}}]
        }),
    );
    let plan = reactor(dir.path(), &["--load-plugin", &so, "build", "json", &file, "--dry-run"], &as_pairs(&env));
    plan.expect_code(0);
    assert!(
        plan.stdout.contains("1. kit_hello 0.1.0 (") && plan.stdout.contains("libkit_hello.so)"),
        "{}",
        plan.stdout
    );

    let metadata = dir.path().join("metadata.json");
    let metadata_arg = metadata.display().to_string();
    let args = ["--load-plugin", &so, "build", "json", &file, "--metadata-file", &metadata_arg];
    let run = reactor(dir.path(), &args, &as_pairs(&env));
    run.expect_code(0);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata).expect("the result document")).expect("JSON");
    let result = result_in(&doc, "postbuild", "kit_hello");
    let image_id = result["image_id"].as_str().unwrap_or_else(|| panic!("an image id: {result}"));
    assert!(image_id.starts_with("sha256:"), "{result}");
    assert_eq!(result, json!({"greeting": "hi", "image": image, "image_id": image_id}));
    assert!(
        run.stderr.contains(&format!("INFO  plugin::kit_hello::kit_hello] hi, {image} ({image_id})")),
        "the plugin's log line:\n{}",
        run.stderr
    );
}

#[test]
fn plugin_new_refuses_a_bad_name_or_a_used_directory_and_writes_nothing() {
    let dir = workdir();
    let env = isolated_env(&dir.path().join("home"));
    let run = reactor(dir.path(), &["plugin", "new", "Logs Submitter"], &as_pairs(&env));
    run.expect_code(2);
    assert_eq!(run.errors().len(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("'Logs Submitter' is not a usable plugin name: use lowercase letters"),
        "{}",
        run.stderr
    );

    write_files(dir.path(), &[("taken/notes.txt", "mine")]);
    let run = reactor(dir.path(), &["plugins", "new", "taken"], &as_pairs(&env));
    run.expect_code(2);
    assert!(run.stderr.contains("taken already exists and is not an empty directory"), "{}", run.stderr);
    let run = reactor(dir.path(), &["plugin", "new", "fine", "--api-path", "taken"], &as_pairs(&env));
    run.expect_code(2);
    assert!(run.stderr.contains("no Cargo.toml there"), "{}", run.stderr);

    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["taken"]);
    assert_eq!(std::fs::read_dir(dir.path().join("taken")).expect("dir").count(), 1);

    // A built-in's key is allowed (a loaded plugin may replace a built-in), with a warning.
    let run = reactor(dir.path(), &["plugin", "new", "tag_and_push", "--phase", "buildstep"], &as_pairs(&env));
    run.expect_code(0);
    assert!(run.stderr.contains("'tag_and_push' is also a built-in plugin's key"), "{}", run.stderr);
    assert!(run.stdout.starts_with("Created the buildstep plugin 'tag_and_push' in tag_and_push: "), "{}", run.stdout);
}

/// One step of the tutorial: a shell command, or a file to write.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Command(String),
    File { path: String, text: String },
}

/// The tutorial's steps, in order: each line of a ```` ```sh ```` block (blank and comment lines
/// aside), and each block whose info string names a `file=PATH`. Other blocks (output, snippets)
/// are for reading.
fn steps(markdown: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else { continue };
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        let file = info.split_whitespace().find_map(|word| word.strip_prefix("file="));
        if let Some(path) = file {
            steps.push(Step::File { path: path.to_owned(), text: body.join("\n") + "\n" });
        } else if info.trim() == "sh" {
            let commands = body.iter().map(|l| l.trim()).filter(|l| !l.is_empty() && !l.starts_with('#'));
            steps.extend(commands.map(|c| Step::Command(c.to_owned())));
        }
    }
    steps
}

/// The `reactor plugins SUB` a command runs, if any.
fn plugins_subcommand(command: &str) -> Option<&str> {
    let mut words = command.split_whitespace();
    (words.next() == Some("reactor") && matches!(words.next(), Some("plugins" | "plugin"))).then(|| words.next())?
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[test]
fn the_tutorials_plugin_is_reactors_logs_submitter() {
    let doc = std::fs::read_to_string(repo_root().join(DOC)).expect("the tutorial");
    let lib = steps(&doc)
        .into_iter()
        .find_map(|s| match s {
            Step::File { path, text } if path == "src/lib.rs" => Some(text),
            _ => None,
        })
        .expect("the tutorial writes src/lib.rs");
    let plugin = |text: &str| text[..text.find("#[cfg(test)]").expect("a test module")].to_owned();
    let ours = std::fs::read_to_string(repo_root().join("plugins/logs_submitter/src/lib.rs")).expect("lib.rs");
    assert_eq!(plugin(&lib), plugin(&ours), "docs/writing-plugins.md shows plugins/logs_submitter as it is");
}

#[test]
fn every_command_of_the_tutorial_runs_in_order() {
    let doc = std::fs::read_to_string(repo_root().join(DOC)).expect("the tutorial");
    let dir = workdir();
    let work = dir.path().join("tutorial");
    std::fs::create_dir_all(&work).expect("mkdir");
    let env = isolated_env(&dir.path().join("home"));
    let image = unique("tutorial");
    let _cleanup = Images(vec![image.clone()]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    // The only substitutions: a port nobody else listens on, and an image no other test uses.
    let substitute = |text: &str| text.replace("9099", &port.to_string()).replace("test-image", &image);

    let steps = steps(&doc);
    assert!(steps.len() >= 15, "the tutorial's commands were not found: {steps:?}");
    let mut script = String::from(
        "trap 'kill $(jobs -p) 2>/dev/null' EXIT\n\
         __kit_step() { printf '\\n@@kit step %s\\n' \"$1\"; }\n\
         __kit_done() { printf '\\n@@kit rc %s %s\\n' \"$1\" \"$2\"; [ \"$2\" -eq 0 ] || exit 97; }\n",
    );
    for (i, step) in steps.iter().enumerate() {
        script += &format!("__kit_step {i}\n");
        match step {
            Step::Command(command) => {
                if let Some(sub) = plugins_subcommand(command) {
                    assert!(
                        has_subcommand(sub, &env),
                        "the tutorial runs `reactor plugins {sub}`, which this reactor lacks"
                    );
                }
                script += &format!("{}\n__kit_done {i} $?\n", substitute(command));
                if let Some(name) =
                    command.strip_prefix("reactor plugin new ").and_then(|r| r.split_whitespace().next())
                {
                    // Test setup, not the tutorial's: build with this workspace's lock file into
                    // the shared target directory, so dependencies compile once per machine.
                    script += &format!(
                        "cp {} {name}/Cargo.lock && ln -s {} {name}/target || exit 98\n",
                        shell_quote(&repo_root().join("Cargo.lock").display().to_string()),
                        shell_quote(&kit_target_dir().display().to_string())
                    );
                }
            }
            Step::File { path, text } => {
                assert!(!text.contains("\n__KIT_FILE__\n"), "{path}");
                script += &format!(
                    "mkdir -p \"$(dirname {p})\" && cat > {p} <<'__KIT_FILE__'\n{}__KIT_FILE__\n__kit_done {i} $?\n",
                    substitute(text),
                    p = shell_quote(path)
                );
            }
        }
    }
    std::fs::create_dir_all(kit_target_dir()).expect("mkdir the shared target dir");
    let script_path = dir.path().join("tutorial.sh");
    std::fs::write(&script_path, &script).expect("write the script");

    // One shell, as a reader would type the commands: `cd`, `&` and `wait` carry over.
    let log_path = dir.path().join("tutorial.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut shell = Command::new("bash");
    shell
        .arg(&script_path)
        .current_dir(&work)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
    std::os::unix::process::CommandExt::process_group(&mut shell, 0);
    let mut child = shell.spawn().expect("run bash");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for bash") {
            break Some(status);
        }
        if started.elapsed() > DOC_TIMEOUT {
            let _ = Command::new("kill").args(["-KILL", &format!("-{}", child.id())]).status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&log_path).expect("the log");

    let last_started = output.rfind("\n@@kit step ").map(|at| &output[at..]);
    let failed = || {
        let segment = last_started.unwrap_or(&output);
        let index: usize = segment["\n@@kit step ".len()..]
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(usize::MAX);
        format!("{:?}\n--- its output ---\n{segment}", steps.get(index))
    };
    match status {
        None => panic!("{DOC}: timed out after {DOC_TIMEOUT:?} in step {}", failed()),
        Some(status) if !status.success() => panic!("{DOC}: step failed ({status}): {}", failed()),
        Some(_) => {}
    }
    assert!(output.contains(&format!("\n@@kit rc {} 0\n", steps.len() - 1)), "not every step ran:\n{output}");

    // What the tutorial says happened, happened.
    let received = std::fs::read_to_string(work.join("received.txt")).expect("the listener wrote received.txt");
    assert!(received.starts_with("POST / HTTP/1.1"), "{received}");
    assert!(received.contains("\"Step 1/3 : FROM busybox:latest\""), "{received}");
    assert!(output.contains("plugin::logs_submitter::logs_submitter] posting "), "{output}");
    assert!(output.contains("Hello, World!"), "{output}");
}

#[test]
fn the_tutorials_steps_are_found_as_a_reader_sees_them() {
    let markdown = "text\n```sh\ncd x\n\n# a comment\nreactor plugins list  # trailing\n```\n\
                    ```text\nnot run\n```\n```json file=a/b.json\n{\"k\": 1}\n```\n";
    assert_eq!(
        steps(markdown),
        [
            Step::Command("cd x".into()),
            Step::Command("reactor plugins list  # trailing".into()),
            Step::File { path: "a/b.json".into(), text: "{\"k\": 1}\n".into() },
        ]
    );
    assert_eq!(plugins_subcommand("reactor plugin package x"), Some("package"));
    assert_eq!(plugins_subcommand("reactor --load-plugin x build json y"), None);
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
}
