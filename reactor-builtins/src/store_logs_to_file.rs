//! `store_logs_to_file`: writes the plugins' results so far as JSON to `file_path`, as
//! atomic-reactor's exit plugin of that name did, whatever the build's outcome.
//!
//! ```json
//! {"name": "store_logs_to_file", "args": {"file_path": "/tmp/results.json"}}
//! ```
//!
//! The file holds one object with the results by phase, under the phases' build.json keys:
//! `{"prebuild_plugins": {KEY: RESULT, ...}, "postbuild_plugins": {...}}` as in the original,
//! plus `buildstep_plugins`, `prepublish_plugins` and `exit_plugins` (the exit plugins that ran
//! before this one). Every key is there, `{}` for a phase with no results. A failed plugin's
//! result is its `{"error", "kind"}`. The passwords of URLs in the results are hidden.
//!
//! Where it differs from atomic-reactor: the three other phases are added; `file_path` is
//! required (1.6 fell back to a path inside its build container); missing parent directories
//! are created. The result is the path written.

use std::path::Path;

use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError};
use serde::Deserialize;
use serde_json::{json, Map, Value};

pub(crate) const RETURNS: &str = "the path it wrote";

/// Writes the phase results to a file.
pub struct StoreLogsToFile;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreLogsToFileArgs {
    file_path: String,
}

impl Plugin for StoreLogsToFile {
    fn manifest(&self) -> Manifest {
        Manifest::new("store_logs_to_file", [Phase::Exit], env!("CARGO_PKG_VERSION"))
            .description("writes the plugins' results so far, by phase, as JSON to a file")
            .args_schema(json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["file_path"],
                "properties": {
                    "file_path": {
                        "description": "The file to write (replaced if it exists; missing parent directories are created). A relative path is taken from reactor's working directory.",
                        "type": "string",
                        "minLength": 1
                    }
                }
            }))
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let args: StoreLogsToFileArgs = args.parse()?;
        if args.file_path.is_empty() {
            return Err(PluginError::invalid_args("'file_path' is empty: give the file to write the results to"));
        }
        let mut document = results_by_phase_key(&ctx.workflow()?.results);
        crate::http::redact_value(&mut document);
        let text = serde_json::to_string_pretty(&document).map_err(PluginError::from)?;
        write_file(Path::new(&args.file_path), &text)?;
        log::info!("wrote the plugins' results to {}", args.file_path);
        Ok(Value::String(args.file_path))
    }
}

/// The results by the build.json key of their phase (`prebuild_plugins`, ...), every phase
/// present, in workflow order.
pub(crate) fn results_by_phase_key(
    results: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, Value>>,
) -> Value {
    let mut by_key = Map::new();
    for phase in Phase::ALL {
        let of_phase = results.get(phase.name()).cloned().unwrap_or_default();
        by_key.insert(phase.build_json_key().to_owned(), json!(of_phase));
    }
    Value::Object(by_key)
}

/// Writes `text` to `path`, creating its directory; an error names the path.
pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), PluginError> {
    let failed = |e: std::io::Error| PluginError::new(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    std::fs::write(path, text).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor_plugin_api::testing::FakeHost;
    use reactor_plugin_api::{ErrorKind, Workflow};

    fn exit_with_results() -> FakeHost {
        let mut workflow = Workflow::default();
        workflow.results.insert("prebuild".into(), [("dockerfile_content".to_owned(), json!("FROM x\n"))].into());
        workflow.results.insert(
            "postbuild".into(),
            [("run_in_image".to_owned(), json!({"error": "exited 3 at https://u:pw@h/x", "kind": "failed"}))].into(),
        );
        FakeHost::new(Phase::Exit, workflow)
    }

    #[test]
    fn writes_every_phases_results_under_its_build_json_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/dir/results.json");
        let fake = exit_with_results();
        let result = fake.run(&StoreLogsToFile, json!({"file_path": path.display().to_string()})).expect("writes");
        assert_eq!(result, json!(path.display().to_string()));
        let written: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("written")).expect("JSON");
        assert_eq!(
            written,
            json!({
                "prebuild_plugins": {"dockerfile_content": "FROM x\n"},
                "buildstep_plugins": {},
                "prepublish_plugins": {},
                "postbuild_plugins": {"run_in_image": {"error": "exited 3 at https://u:***@h/x", "kind": "failed"}},
                "exit_plugins": {}
            })
        );
    }

    #[test]
    fn a_path_that_cannot_be_written_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("file"), "").expect("write");
        let path = dir.path().join("file/results.json");
        let err = exit_with_results()
            .run(&StoreLogsToFile, json!({"file_path": path.display().to_string()}))
            .expect_err("a file is in the way");
        assert!(err.message.starts_with(&format!("cannot write {}: ", path.display())), "{}", err.message);
        let err = exit_with_results().run(&StoreLogsToFile, json!({})).expect_err("no path");
        assert_eq!(err.kind, ErrorKind::InvalidArgs);
    }

    #[test]
    fn runs_only_in_exit() {
        let err = FakeHost::new(Phase::Postbuild, Workflow::default())
            .run(&StoreLogsToFile, json!({"file_path": "/nonexistent/x"}))
            .expect_err("exit only");
        assert_eq!(err.message, "plugin 'store_logs_to_file' cannot run in postbuild (it runs in: exit)");
    }
}
