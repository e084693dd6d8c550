//! `run_in_image`: runs a command in a container of the image just built, and fails the build
//! when it exits non-zero. It takes the role of atomic-reactor's `test_built_image`
//! (`prepub_tests_for_image`): a test of the built image before it is published.
//!
//! ```json
//! {"name": "run_in_image", "args": {"command": "test -x /usr/bin/app && /usr/bin/app --version",
//!                                   "env": {"LANG": "C"}, "timeout": 120}}
//! ```
//!
//! The container's output goes to reactor's log line by line as it runs (under
//! `plugin::run_in_image::container`) and into the result, `{"exit_code", "stdout", "stderr"}`.
//! A non-zero exit fails the plugin with one line giving the exit code and the last lines the
//! command printed; so does a run that outlives its timeout (the container is then killed). The
//! container is always removed.
//!
//! Where it differs from atomic-reactor: `test_built_image` cloned a git repository and ran its
//! `tests.py` in reactor's own Python process; this plugin runs a command inside the image,
//! which needs nothing but the image. Like `test_built_image`, it is not allowed to fail unless
//! the build.json entry says `"is_allowed_to_fail": true`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reactor_plugin_api::protocol::ContainerOptions;
use reactor_plugin_api::{Args, Context, ErrorKind, Manifest, Phase, Plugin, PluginError};
use serde::Deserialize;
use serde_json::{json, Value};

/// How long the command may run when the args do not say.
const DEFAULT_TIMEOUT_S: f64 = 600.0;
/// How many of the last lines of output a failure quotes.
const QUOTED_LINES: usize = 5;

pub(crate) const RETURNS: &str =
    "`{\"exit_code\", \"stdout\", \"stderr\"}` of the command; a non-zero exit or a timeout fails it";

/// Runs a command in a container of the built image.
pub struct RunInImage;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunInImageArgs {
    command: Command,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    secret_env: BTreeMap<String, String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default = "default_timeout")]
    timeout: f64,
}

fn default_timeout() -> f64 {
    DEFAULT_TIMEOUT_S
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Command {
    Shell(String),
    Exec(Vec<String>),
}

impl Plugin for RunInImage {
    fn manifest(&self) -> Manifest {
        Manifest::new("run_in_image", [Phase::Prepublish, Phase::Postbuild], env!("CARGO_PKG_VERSION"))
            .description(
                "runs a command in a container of the built image, its output streamed to the log and returned; a non-zero exit or a timeout fails the build",
            )
            .args_schema(json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["command"],
                "properties": {
                    "command": {
                        "description": "What to run: an array is the command and its arguments, run as given (after the image's ENTRYPOINT, if it has one and 'entrypoint' does not replace it); a string is a shell command line, run with [\"/bin/sh\", \"-c\"] in place of the image's ENTRYPOINT (or with 'entrypoint' when given, e.g. [\"/bin/bash\", \"-c\"]).",
                        "oneOf": [
                            {"type": "string", "minLength": 1},
                            {"type": "array", "items": {"type": "string"}, "minItems": 1}
                        ]
                    },
                    "env": {
                        "description": "Environment variables for the command, name → value, added to the image's own.",
                        "type": "object",
                        "propertyNames": {"pattern": "^[^=]+$"},
                        "additionalProperties": {"type": "string"},
                        "default": {}
                    },
                    "secret_env": {
                        "description": "Environment variables whose values are secrets (tokens, passwords), name → value: set like 'env' (and over it), but never shown in the plan, reactor's log or any document (the schema marks them \"x-secret\").",
                        "type": "object",
                        "propertyNames": {"pattern": "^[^=]+$"},
                        "additionalProperties": {"type": "string", "x-secret": true},
                        "default": {}
                    },
                    "user": {
                        "description": "The user to run as (a name, `uid` or `uid:gid`); the image's USER when not given.",
                        "type": "string",
                        "minLength": 1
                    },
                    "entrypoint": {
                        "description": "Replaces the image's ENTRYPOINT; [] runs the command with no entrypoint at all. Not given: the image's own for an array 'command', [\"/bin/sh\", \"-c\"] for a string.",
                        "type": "array",
                        "items": {"type": "string"}
                    },
                    "timeout": {
                        "description": "Seconds the command may run; after that the container is killed and the plugin fails.",
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "default": DEFAULT_TIMEOUT_S
                    }
                }
            }))
            .allowed_to_fail(false)
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let args: RunInImageArgs = args.parse()?;
        // The schema says as much; a FakeHost or an older host may not have checked it.
        crate::shared::check_timeout(args.timeout)?;
        for (arg, names) in [("env", &args.env), ("secret_env", &args.secret_env)] {
            if let Some(name) = names.keys().find(|name| name.is_empty() || name.contains('=')) {
                return Err(PluginError::invalid_args(format!(
                    "'{arg}' has the name {name:?}: a variable's name cannot be empty or hold '='"
                )));
            }
        }
        let (entrypoint, command) = match args.command {
            Command::Shell(line) if line.trim().is_empty() => {
                return Err(PluginError::invalid_args("'command' is empty: give the command line to run"))
            }
            Command::Exec(command) if command.is_empty() => {
                return Err(PluginError::invalid_args("'command' is empty: give the command and its arguments"))
            }
            Command::Shell(line) => {
                (Some(args.entrypoint.unwrap_or_else(|| vec!["/bin/sh".to_owned(), "-c".to_owned()])), vec![line])
            }
            Command::Exec(command) => (args.entrypoint, command),
        };
        let shown = shown_command(entrypoint.as_deref(), &command);

        let image = ctx
            .build_result()?
            .image_id
            .ok_or_else(|| PluginError::new("no image was built, so there is nothing to run the command in"))?;
        let options = ContainerOptions {
            env: args
                .env
                .iter()
                .filter(|(name, _)| !args.secret_env.contains_key(*name))
                .chain(&args.secret_env)
                .map(|(name, value)| format!("{name}={value}"))
                .collect(),
            user: args.user,
            // The engine reads an entrypoint of one empty string as "none"; an empty list as "the image's".
            entrypoint: entrypoint.map(|e| if e.is_empty() { vec![String::new()] } else { e }),
            timeout_s: Some(args.timeout),
            stream_output: true,
        };
        log::info!("running {shown} in {image}");
        let command: Vec<&str> = command.iter().map(String::as_str).collect();
        let started = Instant::now();
        let output = ctx.run_container_with(&image, &command, options).map_err(|e| {
            // The host kills a container at its timeout; a cancellation stays a cancellation.
            if e.kind != ErrorKind::Cancelled && started.elapsed() >= Duration::from_secs_f64(args.timeout) {
                PluginError::new(format!(
                    "{shown} timed out: still running after {} s (the 'timeout'), so its container was killed",
                    args.timeout
                ))
            } else {
                e.context(format!("running {shown} in {image}"))
            }
        })?;
        if output.exit_code != 0 {
            return Err(PluginError::new(format!(
                "{shown} exited with code {}{}",
                output.exit_code,
                last_lines(&output.stderr, &output.stdout)
            )));
        }
        log::info!("{shown} succeeded");
        Ok(json!({"exit_code": output.exit_code, "stdout": output.stdout, "stderr": output.stderr}))
    }
}

/// The command as a person would type it, for messages: `/bin/sh -c 'exit 3'`.
pub(crate) fn shown_command(entrypoint: Option<&[String]>, command: &[String]) -> String {
    let words = entrypoint.unwrap_or_default().iter().filter(|w| !w.is_empty()).chain(command);
    words.map(|word| quoted(word)).collect::<Vec<_>>().join(" ")
}

fn quoted(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `; stderr ends: a | b` with the last lines of stderr, else of stdout, or `; it printed
/// nothing`. One line, however much the command printed.
pub(crate) fn last_lines(stderr: &str, stdout: &str) -> String {
    let (name, text) = if stderr.trim().is_empty() { ("stdout", stdout) } else { ("stderr", stderr) };
    let lines: Vec<&str> = text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return "; it printed nothing".to_owned();
    }
    let tail: Vec<String> =
        lines[lines.len().saturating_sub(QUOTED_LINES)..].iter().map(|l| crate::http::shorten(l, 300)).collect();
    format!("; {name} ends: {}", tail.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor_plugin_api::protocol::Request;
    use reactor_plugin_api::testing::FakeHost;
    use reactor_plugin_api::{BuildResult, RunOutput, Workflow};
    use std::sync::{Arc, Mutex};

    const IMAGE_ID: &str = "sha256:0123";

    fn built(phase: Phase) -> FakeHost {
        let build = BuildResult { image_id: Some(IMAGE_ID.into()), ..Default::default() };
        FakeHost::new(phase, Workflow { image: "app:1".into(), build_result: Some(build), ..Default::default() })
    }

    type Seen = Arc<Mutex<Vec<(String, Vec<String>, ContainerOptions)>>>;

    /// A fake engine that answers every run with `output` and keeps what it was asked.
    fn answering(phase: Phase, output: RunOutput) -> (FakeHost, Seen) {
        let seen: Seen = Arc::default();
        let keep = seen.clone();
        let fake = built(phase).on_run_container(move |image, command, options| {
            keep.lock().expect("lock").push((image.to_owned(), command.to_vec(), options.clone()));
            Ok(output.clone())
        });
        (fake, seen)
    }

    fn ok(stdout: &str, stderr: &str) -> RunOutput {
        RunOutput { exit_code: 0, stdout: stdout.into(), stderr: stderr.into() }
    }

    #[test]
    fn a_string_runs_with_the_shell_streamed_and_returns_the_output() {
        let (fake, seen) = answering(Phase::Prepublish, ok("hello\n", "warn\n"));
        let result = fake.run(&RunInImage, json!({"command": "echo hello; echo warn >&2"})).expect("exit 0");
        assert_eq!(result, json!({"exit_code": 0, "stdout": "hello\n", "stderr": "warn\n"}));
        let seen = seen.lock().expect("lock");
        let (image, command, options) = &seen[0];
        assert_eq!(image, IMAGE_ID);
        assert_eq!(command, &["echo hello; echo warn >&2"]);
        assert_eq!(options.entrypoint.as_deref(), Some(&["/bin/sh".to_owned(), "-c".to_owned()][..]));
        assert!(options.stream_output, "the output goes to the log as it runs");
        assert_eq!(options.timeout_s, Some(600.0), "the default timeout");
        assert!(fake
            .logs()
            .iter()
            .any(|r| r.message == format!("running /bin/sh -c 'echo hello; echo warn >&2' in {IMAGE_ID}")));
    }

    #[test]
    fn an_array_runs_as_given_with_env_user_entrypoint_and_timeout() {
        let (fake, seen) = answering(Phase::Postbuild, ok("", ""));
        let args = json!({"command": ["--version"], "env": {"B": "2", "A": "x=y"}, "user": "1000:1000",
                          "entrypoint": ["/usr/bin/app"], "timeout": 2.5});
        fake.run(&RunInImage, args).expect("exit 0");
        let (_, command, options) = seen.lock().expect("lock")[0].clone();
        assert_eq!(command, ["--version"]);
        assert_eq!(options.env, ["A=x=y", "B=2"]);
        assert_eq!(options.user.as_deref(), Some("1000:1000"));
        assert_eq!(options.entrypoint, Some(vec!["/usr/bin/app".to_owned()]));
        assert_eq!(options.timeout_s, Some(2.5));
    }

    #[test]
    fn secret_env_is_set_over_env_and_marked_secret_in_the_schema() {
        let (fake, seen) = answering(Phase::Postbuild, ok("", ""));
        let args = json!({"command": ["x"], "env": {"A": "1", "T": "public"}, "secret_env": {"T": "t0ken"}});
        fake.run(&RunInImage, args).expect("exit 0");
        let (_, _, options) = seen.lock().expect("lock")[0].clone();
        assert_eq!(options.env, ["A=1", "T=t0ken"]);
        let schema = RunInImage.manifest().args_schema;
        assert_eq!(schema["properties"]["secret_env"]["additionalProperties"]["x-secret"], json!(true));
    }

    #[test]
    fn an_array_keeps_the_images_entrypoint_unless_told_and_an_empty_one_means_none() {
        let (fake, seen) = answering(Phase::Prepublish, ok("", ""));
        fake.run(&RunInImage, json!({"command": ["true"]})).expect("runs");
        fake.run(&RunInImage, json!({"command": ["true"], "entrypoint": []})).expect("runs");
        fake.run(&RunInImage, json!({"command": "exit 0", "entrypoint": ["/bin/bash", "-c"]})).expect("runs");
        let seen = seen.lock().expect("lock");
        assert_eq!(seen[0].2.entrypoint, None);
        assert_eq!(seen[1].2.entrypoint, Some(vec![String::new()]));
        assert_eq!(
            (seen[2].1.clone(), seen[2].2.entrypoint.clone()),
            (vec!["exit 0".to_owned()], Some(vec!["/bin/bash".to_owned(), "-c".to_owned()]))
        );
    }

    #[test]
    fn a_non_zero_exit_fails_with_the_code_and_the_last_lines_on_one_line() {
        let stderr = (1..=8).map(|n| format!("line {n}\n")).collect::<String>();
        let (fake, _) = answering(Phase::Prepublish, RunOutput { exit_code: 3, stdout: "out\n".into(), stderr });
        let err = fake.run(&RunInImage, json!({"command": "make test"})).expect_err("exit 3");
        assert_eq!(err.kind, ErrorKind::Failed);
        assert_eq!(
            err.message,
            "/bin/sh -c 'make test' exited with code 3; stderr ends: line 4 | line 5 | line 6 | line 7 | line 8"
        );
        assert!(!err.message.contains('\n'));
        // Without stderr, stdout is quoted; without either, that is said.
        let (fake, _) = answering(
            Phase::Prepublish,
            RunOutput { exit_code: 1, stdout: "FAIL: x\n\n".into(), stderr: " \n".into() },
        );
        let err = fake.run(&RunInImage, json!({"command": ["./check"]})).expect_err("exit 1");
        assert_eq!(err.message, "./check exited with code 1; stdout ends: FAIL: x");
        let (fake, _) = answering(Phase::Prepublish, RunOutput { exit_code: 137, ..Default::default() });
        let err = fake.run(&RunInImage, json!({"command": ["false"]})).expect_err("exit 137");
        assert_eq!(err.message, "false exited with code 137; it printed nothing");
    }

    #[test]
    fn is_not_allowed_to_fail_by_default() {
        assert!(!RunInImage.manifest().allowed_to_fail);
    }

    #[test]
    fn a_run_that_outlives_its_timeout_fails_saying_so() {
        let fake = built(Phase::Prepublish).on_run_container(|image, _, options| {
            // As reactor does: wait for the timeout, kill the container, say so.
            std::thread::sleep(Duration::from_secs_f64(options.timeout_s.unwrap_or_default()));
            Err(PluginError::with_kind(
                ErrorKind::Host,
                format!("the container of {image} was stopped after its timeout of 0.05 s"),
            ))
        });
        let err = fake.run(&RunInImage, json!({"command": ["sleep", "60"], "timeout": 0.05})).expect_err("times out");
        assert_eq!(
            err.message,
            "sleep 60 timed out: still running after 0.05 s (the 'timeout'), so its container was killed"
        );
    }

    #[test]
    fn an_engine_failure_names_the_command_and_keeps_its_kind() {
        let fake = built(Phase::Prepublish)
            .on_run_container(|_, _, _| Err(PluginError::with_kind(ErrorKind::Cancelled, "the build was cancelled")));
        let err = fake.run(&RunInImage, json!({"command": ["true"]})).expect_err("cancelled");
        assert_eq!(
            (err.kind, err.message.as_str()),
            (ErrorKind::Cancelled, format!("running true in {IMAGE_ID}: the build was cancelled").as_str())
        );
    }

    #[test]
    fn refuses_to_run_without_a_built_image() {
        let fake = FakeHost::new(Phase::Prepublish, Workflow::default());
        let err = fake.run(&RunInImage, json!({"command": ["true"]})).expect_err("nothing built");
        assert_eq!(err.message, "the image has not been built yet");
        let failed = BuildResult { failed: true, ..Default::default() };
        let fake = FakeHost::new(Phase::Postbuild, Workflow { build_result: Some(failed), ..Default::default() });
        let err = fake.run(&RunInImage, json!({"command": ["true"]})).expect_err("nothing built");
        assert_eq!(err.message, "no image was built, so there is nothing to run the command in");
        assert_eq!(fake.requests(), [Request::Workflow]);
    }

    #[test]
    fn bad_args_are_refused_before_anything_runs_naming_the_arg() {
        for (args, expected) in [
            (json!({"command": ""}), "'command' is empty: give the command line to run"),
            (json!({"command": []}), "'command' is empty: give the command and its arguments"),
            (json!({"command": ["x"], "timeout": 0}), "'timeout' must be a positive number of seconds, not 0"),
            (
                json!({"command": ["x"], "env": {"A=B": "c"}}),
                "'env' has the name \"A=B\": a variable's name cannot be empty or hold '='",
            ),
        ] {
            let fake = built(Phase::Prepublish);
            let err = fake.run(&RunInImage, args.clone()).expect_err("bad args");
            assert_eq!((err.kind, err.message.as_str()), (ErrorKind::InvalidArgs, expected), "{args}");
            assert!(fake.requests().is_empty(), "{args}");
        }
        let err = built(Phase::Prepublish).run(&RunInImage, json!({"command": 3})).expect_err("not a command");
        assert_eq!(err.kind, ErrorKind::InvalidArgs);
        let err =
            built(Phase::Prepublish).run(&RunInImage, json!({"command": ["x"], "bogus": 1})).expect_err("unknown");
        assert!(err.message.contains("bogus"), "{}", err.message);
    }

    #[test]
    fn shows_commands_as_typed() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(shown_command(None, &words(&["ls", "-l", "/a b", "it's", ""])), r"ls -l '/a b' 'it'\''s' ''");
        assert_eq!(shown_command(Some(&[String::new()]), &words(&["true"])), "true");
    }
}
