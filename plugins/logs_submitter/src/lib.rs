//! `logs_submitter`: the post-build plugin of atomic-reactor's "writing plugins" walk-through,
//! in Rust. It POSTs the build's log lines as `{"logs": [...]}` to the `url` arg and returns the
//! response body as its result.
//!
//! ```json
//! {"name": "logs_submitter", "args": {"url": "http://localhost:9099"}}
//! ```

use reactor_plugin_api::{export_plugins, Args, Context, Manifest, Phase, Plugin, PluginError};
use serde::Deserialize;
use serde_json::{json, Value};

/// Posts the build logs to a URL.
pub struct LogsSubmitter;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsSubmitterArgs {
    /// Where the logs are posted.
    url: String,
}

impl Plugin for LogsSubmitter {
    fn manifest(&self) -> Manifest {
        Manifest::new("logs_submitter", [Phase::Postbuild, Phase::Exit], env!("CARGO_PKG_VERSION"))
            .description("POSTs the build's log lines as JSON {\"logs\": [...]} to a URL")
            .args_schema(json!({
                "type": "object",
                "properties": {"url": {"type": "string", "description": "where the logs are posted"}},
                "required": ["url"],
                "additionalProperties": false
            }))
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let args: LogsSubmitterArgs = args.parse()?;
        let logs = ctx.build_result()?.logs;
        log::info!("posting {} log lines to {}", logs.len(), args.url);
        let client = reqwest::blocking::Client::builder()
            .user_agent(concat!("reactor-logs_submitter/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let response = client
            .post(&args.url)
            .json(&json!({ "logs": logs }))
            .send()
            .and_then(|r| r.error_for_status())
            .map_err(|e| PluginError::from(e).context(format!("POST {}", args.url)))?;
        Ok(Value::String(response.text()?))
    }
}

export_plugins!(LogsSubmitter);
