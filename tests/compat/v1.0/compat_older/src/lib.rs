use reactor_plugin_api::{export_plugins, Context, Manifest, Plugin};
use serde_json::{json, Value};

pub struct P;

impl Plugin for P {
    fn manifest(&self) -> Manifest {
        Manifest { key: "compat_older", phases: &["postbuild"], requires: &[] }
    }

    fn run(&self, ctx: &Context, args: &Value) -> Result<Value, String> {
        // Protocol 1.0 requests only: the workflow, and the build result in it.
        let workflow = ctx.call(json!({"op": "workflow"}), None)?;
        Ok(json!({"api": reactor_plugin_api::API_VERSION, "host_protocol": ctx.host()["protocol"],
                  "log_lines": workflow["build_result"]["logs"].as_array().map_or(0, Vec::len), "args": args}))
    }
}

/// A prebuild plugin as they were written before the context overlay (protocol 1.2): it reads a
/// source file from `context_dir`, writes a new file there, and edits the Dockerfile file itself.
pub struct Writer;

impl Plugin for Writer {
    fn manifest(&self) -> Manifest {
        Manifest { key: "compat_older_writer", phases: &["prebuild"], requires: &[] }
    }

    fn run(&self, ctx: &Context, _args: &Value) -> Result<Value, String> {
        let workflow = ctx.call(json!({"op": "workflow"}), None)?;
        let context = std::path::Path::new(workflow["context_dir"].as_str().unwrap_or_default()).to_path_buf();
        let source = std::fs::read_to_string(context.join("app.txt")).map_err(|e| format!("app.txt: {e}"))?;
        std::fs::write(context.join("app.txt"), format!("{}, rewritten\n", source.trim()))
            .map_err(|e| format!("app.txt: {e}"))?;
        std::fs::write(context.join("legacy.txt"), "written by a 1.0 plugin\n")
            .map_err(|e| format!("legacy.txt: {e}"))?;
        let dockerfile = workflow["dockerfile_path"].as_str().unwrap_or_default();
        let text = std::fs::read_to_string(dockerfile).map_err(|e| format!("{dockerfile}: {e}"))?;
        std::fs::write(dockerfile, format!("{text}COPY legacy.txt app.txt /legacy/\n"))
            .map_err(|e| format!("{dockerfile}: {e}"))?;
        Ok(json!({"context_dir": context, "read": source}))
    }
}

export_plugins!(P, Writer);
