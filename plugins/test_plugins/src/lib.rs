//! Test fixtures for reactor's end-to-end tests, exported from one shared object as a vendor
//! would ship several plugins: they panic on demand, record that they ran, edit the Dockerfile,
//! exercise every host request a plugin can make, and work in the build context.

use std::collections::BTreeMap;
use std::io::Write;

use reactor_plugin_api::{export_plugins, Args, Context, Manifest, Phase, Plugin, PluginError};
use serde::Deserialize;
use serde_json::{json, Value};

/// Panics with the message in its `message` arg.
pub struct Panicker;

impl Plugin for Panicker {
    fn manifest(&self) -> Manifest {
        Manifest::new("panicker", Phase::ALL, env!("CARGO_PKG_VERSION")).description("panics")
    }

    fn run(&self, _ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let message = args.get("message").and_then(Value::as_str).unwrap_or("as asked").to_owned();
        panic!("{message}");
    }
}

/// Appends `<phase> <label>` to the file `path` and returns what it saw of the workflow.
pub struct Recorder;

#[derive(Deserialize)]
struct RecorderArgs {
    path: String,
    label: String,
}

impl Plugin for Recorder {
    fn manifest(&self) -> Manifest {
        Manifest::new("recorder", Phase::ALL, env!("CARGO_PKG_VERSION")).description("records that it ran").args_schema(
            json!({
                "type": "object",
                "properties": {"path": {"type": "string"}, "label": {"type": "string"}},
                "required": ["path", "label"]
            }),
        )
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let args_value = args.as_value().clone();
        let args: RecorderArgs = args.parse()?;
        let workflow = ctx.workflow()?;
        let phase = workflow.phase.map(|p| p.name()).unwrap_or("none");
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&args.path)?;
        writeln!(file, "{phase} {}", args.label)?;
        log::info!("recorded {} in {phase}", args.label);
        Ok(json!({
            "label": args.label,
            "image": workflow.image,
            "commit": workflow.source.commit,
            "args": args_value,
            "outcome": workflow.outcome,
        }))
    }
}

/// In prebuild: appends `LABEL` lines to the Dockerfile and sets a label and a build arg. In any
/// later phase: inspects the built image, runs it, tags it and reports what it found.
pub struct ContextProbe;

impl Plugin for ContextProbe {
    fn manifest(&self) -> Manifest {
        Manifest::new("context_probe", [Phase::Prebuild, Phase::Postbuild, Phase::Exit], env!("CARGO_PKG_VERSION"))
            .description("exercises the host context")
            .allowed_to_fail(false)
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let workflow = ctx.workflow()?;
        if let Some(registry) = args.get("push_to").and_then(Value::as_str) {
            // Push the built image to `registry` under the workflow's image name.
            let id = ctx.build_result()?.image_id.ok_or_else(|| PluginError::new("no image was built"))?;
            let target = format!("{registry}/{}:probe", workflow.image.split(':').next().unwrap_or("probe"));
            ctx.tag_image(&id, &target)?;
            let digest = ctx.push_image(&target)?;
            ctx.remove_image(&target, false)?;
            return Ok(json!({"pushed": target, "digest": digest}));
        }
        if workflow.phase == Some(Phase::Prebuild) {
            let text = format!(
                "{}\nARG PROBE_ARG\nLABEL probe.edited=yes probe.arg=$PROBE_ARG\n",
                workflow.dockerfile.trim_end()
            );
            ctx.set_dockerfile(&text)?;
            ctx.set_labels(BTreeMap::from([("probe.label".to_owned(), "set".to_owned())]))?;
            ctx.set_build_args(BTreeMap::from([("PROBE_ARG".to_owned(), "from-plugin".to_owned())]))?;
            log::debug!("edited the Dockerfile of {}", workflow.image);
            return Ok(json!({"base_image": workflow.base_image, "dockerfile_path": workflow.dockerfile_path}));
        }
        let built = ctx.build_result()?;
        let id = built.image_id.clone().ok_or_else(|| PluginError::new("no image was built"))?;
        let inspect = ctx.inspect_image(&id)?;
        let run = ctx.run_container(&id, &["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])?;
        let probe_tag = format!("{}-probe", workflow.image.split(':').next().unwrap_or("probe"));
        ctx.tag_image(&id, &probe_tag)?;
        let refused = ctx.set_dockerfile("FROM scratch\n").err().map(|e| e.message);
        Ok(json!({
            "image_id": id,
            "labels": inspect["Config"]["Labels"],
            "exit_code": run.exit_code,
            "stdout": run.stdout,
            "stderr": run.stderr,
            "tagged": probe_tag,
            "set_dockerfile_refused": refused,
            "earlier_results": workflow.results,
        }))
    }
}

/// Fails with the message in its `message` arg.
pub struct Failer;

impl Plugin for Failer {
    fn manifest(&self) -> Manifest {
        Manifest::new("failer", Phase::ALL, env!("CARGO_PKG_VERSION")).description("fails")
    }

    fn run(&self, _ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let message = args.get("message").and_then(Value::as_str).unwrap_or("failed as asked");
        Err(PluginError::new(message))
    }
}

/// Writes `started` to the file `path`, then sleeps `seconds` (default 30), stopping early when
/// the build is cancelled unless `ignore_cancel`; appends `done` when it finishes.
pub struct Slow;

#[derive(Deserialize)]
struct SlowArgs {
    path: String,
    #[serde(default = "thirty")]
    seconds: f64,
    #[serde(default)]
    ignore_cancel: bool,
}

fn thirty() -> f64 {
    30.0
}

impl Plugin for Slow {
    fn manifest(&self) -> Manifest {
        Manifest::new("slow", Phase::ALL, env!("CARGO_PKG_VERSION"))
            .description("takes its time")
            .allowed_to_fail(false)
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let args: SlowArgs = args.parse()?;
        std::fs::write(&args.path, "started\n")?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(args.seconds);
        while std::time::Instant::now() < deadline {
            if !args.ignore_cancel && ctx.is_cancelled() {
                return Err(PluginError::with_kind(
                    reactor_plugin_api::ErrorKind::Cancelled,
                    "stopped: the build was cancelled",
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let mut file = std::fs::OpenOptions::new().append(true).open(&args.path)?;
        writeln!(file, "done")?;
        Ok(json!("done"))
    }
}

/// Returns its args; exported under keys of atomic-reactor's default plugins, so tests can see
/// that they are injected with the right args.
pub struct Echo(&'static str);

impl Plugin for Echo {
    fn manifest(&self) -> Manifest {
        Manifest::new(self.0, Phase::ALL, env!("CARGO_PKG_VERSION")).description("returns its args")
    }

    fn run(&self, _ctx: &Context, args: Args) -> Result<Value, PluginError> {
        Ok(json!({"args": args.as_value()}))
    }
}

/// A builder that never builds: it declines, so the next buildstep plugin is tried.
pub struct Decliner;

impl Plugin for Decliner {
    fn manifest(&self) -> Manifest {
        Manifest::new("decliner", [Phase::Buildstep], env!("CARGO_PKG_VERSION")).description("declines to build")
    }

    fn run(&self, _ctx: &Context, _args: Args) -> Result<Value, PluginError> {
        Err(PluginError::declined("this builder builds nothing"))
    }
}

/// A builder that "builds" by tagging the image `from` as the workflow's image, then records the
/// build result itself: how a plugin wraps a builder other than the engine's.
pub struct RetagBuilder;

impl Plugin for RetagBuilder {
    fn manifest(&self) -> Manifest {
        Manifest::new("retag_builder", [Phase::Buildstep], env!("CARGO_PKG_VERSION"))
            .description("builds by retagging an image")
            .args_schema(json!({"type": "object", "properties": {"from": {"type": "string"}}, "required": ["from"]}))
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let from = args.get("from").and_then(Value::as_str).unwrap_or_default().to_owned();
        let image = ctx.workflow()?.image;
        ctx.tag_image(&from, &image)?;
        let id = ctx.inspect_image(&image)?["Id"].as_str().map(str::to_owned);
        ctx.set_build_result(reactor_plugin_api::BuildResult {
            logs: vec![format!("retagged {from} as {image}")],
            image_id: id.clone(),
            ..Default::default()
        })?;
        Ok(json!({"image_id": id}))
    }
}

/// Uses a feature of protocol 1.1 (the workspace) without requiring it, and reports what the
/// host made of it: the value back from a 1.1 host, an `unsupported` error from a 1.0 one.
pub struct FeatureProbe;

impl Plugin for FeatureProbe {
    fn manifest(&self) -> Manifest {
        Manifest::new("feature_probe", Phase::ALL, env!("CARGO_PKG_VERSION"))
            .description("uses the workspace if it can")
    }

    fn run(&self, ctx: &Context, _args: Args) -> Result<Value, PluginError> {
        let workflow = ctx.workflow()?;
        let workspace = ctx
            .set_workspace("feature_probe", &json!({"seen": workflow.image}))
            .and_then(|()| ctx.workspace::<Value>("feature_probe"));
        let workspace = match workspace {
            Ok(value) => json!({"value": value}),
            Err(e) => json!({"kind": e.kind, "error": e.message}),
        };
        Ok(json!({
            "host_protocol": ctx.host().protocol,
            "supports_workspace": ctx.supports("workspace"),
            "workspace": workspace,
            "log_lines": workflow.build_result.map(|b| b.logs.len()),
        }))
    }
}

/// Runs a container through the host with the options in its args (`image`, `command`, and
/// `options` as the protocol's `ContainerOptions`), and returns its output or the error.
pub struct ContainerProbe;

#[derive(Deserialize)]
struct ContainerProbeArgs {
    image: String,
    command: Vec<String>,
    #[serde(default)]
    options: reactor_plugin_api::protocol::ContainerOptions,
}

impl Plugin for ContainerProbe {
    fn manifest(&self) -> Manifest {
        Manifest::new("container_probe", Phase::ALL, env!("CARGO_PKG_VERSION"))
            .description("runs a container")
            .allowed_to_fail(false)
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let args: ContainerProbeArgs = args.parse()?;
        let command: Vec<&str> = args.command.iter().map(String::as_str).collect();
        let output = ctx.run_container_with(&args.image, &command, args.options)?;
        Ok(serde_json::to_value(output)?)
    }
}

/// Shares state through the workspace: `set` stores its value under `key`, and the result is
/// what is stored there; `record` (`{"name", "digest"}`) records a digest as a plugin's own push.
pub struct WorkspaceProbe;

impl Plugin for WorkspaceProbe {
    fn manifest(&self) -> Manifest {
        Manifest::new("workspace_probe", Phase::ALL, env!("CARGO_PKG_VERSION"))
            .description("uses the build's workspace")
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let key = args.get("key").and_then(Value::as_str).unwrap_or("shared").to_owned();
        if let Some(value) = args.get("set") {
            ctx.set_workspace(&key, value)?;
        }
        if let Some(record) = args.get("record") {
            let field = |name: &str| record.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
            ctx.record_digest(&field("name"), &field("digest"))?;
        }
        Ok(json!({"stored": ctx.workspace::<Value>(&key)?}))
    }
}

/// Works in the build context as a plugin of protocol 1.2 does: `write` (`{relative path:
/// text}`) writes files into the context directory (the overlay), `append_dockerfile` appends a
/// line to the Dockerfile file itself, `read` (a list of relative paths) reads files through
/// `Workflow::context_file`, and `git_status` reports `git status --porcelain` of the source
/// tree. Returns the directories it was given and what it read.
pub struct ContextWriter;

#[derive(Deserialize)]
struct ContextWriterArgs {
    #[serde(default)]
    write: BTreeMap<String, String>,
    #[serde(default)]
    append_dockerfile: Option<String>,
    #[serde(default)]
    read: Vec<String>,
    #[serde(default)]
    git_status: bool,
}

impl Plugin for ContextWriter {
    fn manifest(&self) -> Manifest {
        Manifest::new("context_writer", Phase::ALL, env!("CARGO_PKG_VERSION"))
            .description("writes to and reads from the build context")
            .allowed_to_fail(false)
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let args: ContextWriterArgs = args.parse()?;
        let workflow = ctx.workflow()?;
        for (relative, text) in &args.write {
            let path = std::path::Path::new(&workflow.context_dir).join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, text).map_err(|e| PluginError::new(format!("{}: {e}", path.display())))?;
        }
        if let Some(line) = &args.append_dockerfile {
            let mut file = std::fs::OpenOptions::new().append(true).open(&workflow.dockerfile_path)?;
            writeln!(file, "{line}")?;
        }
        let mut read = BTreeMap::new();
        for relative in &args.read {
            let path = workflow.context_file(relative);
            let text =
                std::fs::read_to_string(&path).map_err(|e| PluginError::new(format!("{}: {e}", path.display())))?;
            read.insert(relative.clone(), json!({"path": path, "text": text}));
        }
        let git_status = if args.git_status {
            let out = std::process::Command::new("git")
                .args(["status", "--porcelain", "--ignored"])
                .current_dir(&workflow.source.path)
                .output()?;
            if !out.status.success() {
                return Err(PluginError::new(format!("git status: {}", String::from_utf8_lossy(&out.stderr))));
            }
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            None
        };
        Ok(json!({
            "context_dir": workflow.context_dir,
            "source_context_dir": workflow.source_context_dir,
            "dockerfile_path": workflow.dockerfile_path,
            "source_path": workflow.source.path,
            "read": read,
            "git_status": git_status,
        }))
    }
}

/// Reads the build log both ways, and reports what it found: the snapshot's end of it (what a
/// plugin of protocol 1.0 reads) and every line by pages.
pub struct LogProbe;

impl Plugin for LogProbe {
    fn manifest(&self) -> Manifest {
        Manifest::new("log_probe", [Phase::Postbuild, Phase::Exit], env!("CARGO_PKG_VERSION"))
            .description("reads the build log")
    }

    fn run(&self, ctx: &Context, _args: Args) -> Result<Value, PluginError> {
        let snapshot = ctx.build_result()?;
        let (mut read_lines, mut read_bytes, mut longest) = (0u64, 0u64, 0usize);
        let mut last = String::new();
        for line in ctx.build_log() {
            let line = line?;
            read_lines += 1;
            read_bytes += line.len() as u64 + 1;
            longest = longest.max(line.len());
            last = line;
        }
        Ok(json!({
            "snapshot_lines": snapshot.logs.len(),
            "snapshot_bytes": snapshot.logs.iter().map(|l| l.len() + 1).sum::<usize>(),
            "snapshot_first": snapshot.logs.first(),
            "snapshot_last": snapshot.logs.last(),
            "log_lines": snapshot.log_lines,
            "logs_omitted": snapshot.logs_omitted,
            "read_lines": read_lines,
            "read_bytes": read_bytes,
            "read_last": last,
            "longest": longest,
        }))
    }
}

export_plugins!(
    FeatureProbe,
    ContainerProbe,
    WorkspaceProbe,
    Panicker,
    Recorder,
    ContextProbe,
    Failer,
    Slow,
    Echo("tag_and_push"),
    Echo("pull_base_image"),
    Decliner,
    RetagBuilder,
    ContextWriter,
    LogProbe,
);
