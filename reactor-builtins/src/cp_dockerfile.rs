//! `cp_dockerfile`: writes the Dockerfile, as the plugins before it left it, to `path`, to keep
//! it or look at it outside the build (atomic-reactor's `pre_cp_dockerfile.py`, until 1.6.25).
//! A relative `path` is taken from the directory reactor runs in; its directory must exist.
//!
//! ```json
//! {"name": "cp_dockerfile", "args": {"path": "/tmp/Dockerfile.built"}}
//! ```
//!
//! Where it deliberately differs from atomic-reactor: a copy that fails fails the plugin, with a
//! message naming the path and why (1.6 returned the error message as a successful result, so a
//! failed copy looked like a copy). It stays allowed to fail by default, so the build goes on and
//! the failure is in the plugin's result and the log.

use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError};
use serde::Deserialize;
use serde_json::{json, Value};

pub(crate) const RETURNS: &str = "`\"Dockerfile successfully copied to '<path>'\"`";

/// Copies the Dockerfile to a path.
pub struct CpDockerfile;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CpDockerfileArgs {
    path: String,
}

impl Plugin for CpDockerfile {
    fn manifest(&self) -> Manifest {
        Manifest::new("cp_dockerfile", [Phase::Prebuild], env!("CARGO_PKG_VERSION"))
            .description("copies the Dockerfile, as the plugins before it left it, to a path")
            .args_schema(json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["path"],
                "properties": {
                    "path": {
                        "type": "string",
                        "minLength": 1,
                        "description": "The file to write (replaced if it exists); a relative path is taken from reactor's current directory."
                    }
                }
            }))
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let args: CpDockerfileArgs = args.parse()?;
        let dockerfile = ctx.workflow()?.dockerfile;
        std::fs::write(&args.path, dockerfile).map_err(|e| {
            PluginError::new(format!(
                "cannot copy the Dockerfile to '{}': {e}; check that its directory exists and is writable",
                args.path
            ))
        })?;
        let message = format!("Dockerfile successfully copied to '{}'", args.path);
        log::info!("{message}");
        Ok(Value::String(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor_plugin_api::testing::FakeHost;
    use reactor_plugin_api::{ErrorKind, Workflow};

    fn fake() -> FakeHost {
        FakeHost::new(
            Phase::Prebuild,
            Workflow { dockerfile: "FROM busybox\nLABEL a=b\n".into(), ..Default::default() },
        )
    }

    #[test]
    fn writes_the_current_dockerfile_to_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("Dockerfile.copy").display().to_string();
        std::fs::write(&path, "old").expect("write");
        let result = fake().run(&CpDockerfile, json!({"path": path})).expect("copies");
        assert_eq!(result, json!(format!("Dockerfile successfully copied to '{path}'")));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "FROM busybox\nLABEL a=b\n");
    }

    #[test]
    fn a_failed_copy_fails_the_plugin_naming_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing/Dockerfile").display().to_string();
        let err = fake().run(&CpDockerfile, json!({"path": path})).expect_err("no such directory");
        assert_eq!(err.kind, ErrorKind::Failed);
        assert!(err.message.starts_with(&format!("cannot copy the Dockerfile to '{path}': ")), "{err}");
        assert!(err.message.ends_with("; check that its directory exists and is writable"), "{err}");
        assert!(CpDockerfile.manifest().allowed_to_fail);
    }

    #[test]
    fn path_is_required() {
        let err = fake().run(&CpDockerfile, json!({})).expect_err("no path");
        assert_eq!(err.kind, ErrorKind::InvalidArgs);
        assert!(err.message.contains("missing field `path`"), "{err}");
    }
}
