//! `notify_webhook`: POSTs how the build ended to a URL, as JSON. It is the local stand-in for
//! atomic-reactor's `sendmail`, which mailed the outcome through SMTP with addresses from PDC.
//!
//! ```json
//! {"name": "notify_webhook", "args": {"url": "http://chat.example/hooks/builds", "send_on": ["failed", "cancelled"]}}
//! ```
//!
//! The body is `{"status", "image", "image_id", "tags", "digests", "failed_phase",
//! "failed_plugin", "error", "source": {"provider", "uri", "commit"}, "reactor_version"}`:
//! `status` is `succeeded`, `failed` or `cancelled`; `tags` the names the image was to be
//! pushed under (the workspace's `tag_conf`, else the image's own name, and the workflow's extra
//! tags); `digests` maps each pushed name to its digest; the `failed_*` and `error` fields say
//! where and why the build failed (`null` when it did not). Passwords of URLs are hidden.
//!
//! It is sent only when the build's status is in `send_on` (all three by default); otherwise the
//! result says it was not, and why. The result of a post is `{"sent": true, "status": ...,
//! "url": ..., "status_code": ...}`. A webhook that does not answer within `timeout` (connecting
//! within at most 10 s of it), cannot be reached, or answers anything but 2xx fails the plugin
//! with one line saying which; like every exit plugin, the others still run, and by default (as
//! `sendmail`) the failure is tolerated. A cancellation that comes while it waits abandons the
//! POST at once; in a build that was cancelled before the exit phase it posts as usual.
//!
//! Where it differs from atomic-reactor: HTTP instead of mail; `send_on` names reactor's
//! statuses, not `sendmail`'s manual/auto states (reactor does not know about rebuilds).

use std::time::Duration;

use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::{parse_url, post_json, redact_passwords, redact_value, CancelWatch};
use crate::shared::TagConf;

/// Seconds a POST may take when the args do not say.
const DEFAULT_TIMEOUT_S: f64 = 30.0;
/// The statuses a build ends with, as `send_on` names them.
const STATUSES: [&str; 3] = ["succeeded", "failed", "cancelled"];

pub(crate) const RETURNS: &str =
    "`{\"sent\": true, \"status\", \"url\", \"status_code\"}`, or `{\"sent\": false, \"status\", \"reason\"}` when `send_on` skips the status";

/// Posts the build's outcome to a webhook.
pub struct NotifyWebhook;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyWebhookArgs {
    url: String,
    #[serde(default = "all_statuses")]
    send_on: Vec<String>,
    #[serde(default = "default_timeout")]
    timeout: f64,
}

fn all_statuses() -> Vec<String> {
    STATUSES.iter().map(|s| s.to_string()).collect()
}

fn default_timeout() -> f64 {
    DEFAULT_TIMEOUT_S
}

impl Plugin for NotifyWebhook {
    fn manifest(&self) -> Manifest {
        Manifest::new("notify_webhook", [Phase::Exit], env!("CARGO_PKG_VERSION"))
            .description("POSTs the build's outcome (status, image, tags, digests, what failed) as JSON to a URL")
            .args_schema(json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["url"],
                "properties": {
                    "url": {
                        "description": "The http(s) URL to POST to; a user and password in it are sent as basic authentication. A webhook's URL is often its token, so the whole URL is secret (\"x-secret\"): never shown in the plan, reactor's log or any document.",
                        "type": "string",
                        "minLength": 1,
                        "x-secret": true
                    },
                    "send_on": {
                        "description": "The build statuses that are sent; for any other the plugin only says it did not send.",
                        "type": "array",
                        "items": {"enum": STATUSES},
                        "uniqueItems": true,
                        "default": STATUSES
                    },
                    "timeout": {
                        "description": "Seconds the POST may take, connecting included (at most 10 s of them), before the plugin fails; a cancellation of the build while it waits abandons it at once (an exit plugin of a build already cancelled waits, within --exit-timeout).",
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "default": DEFAULT_TIMEOUT_S
                    }
                }
            }))
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let args: NotifyWebhookArgs = args.parse()?;
        if let Some(unknown) = args.send_on.iter().find(|s| !STATUSES.contains(&s.as_str())) {
            return Err(PluginError::invalid_args(format!(
                "'send_on' has {unknown:?}: a build's status is one of {}",
                STATUSES.join(", ")
            )));
        }
        crate::shared::check_timeout(args.timeout)?;
        let url = parse_url("url", &args.url)?;
        let watch = CancelWatch::start(ctx);
        let shown = redact_passwords(url.as_str());
        let workflow = ctx.workflow()?;
        let outcome = workflow.outcome.clone().unwrap_or_default();
        let status = outcome.status.name();
        if !args.send_on.iter().any(|s| s == status) {
            let reason = format!("the build {status}, which is not in 'send_on' ({})", args.send_on.join(", "));
            log::info!("not notifying {shown}: {reason}");
            return Ok(json!({"sent": false, "status": status, "reason": reason}));
        }
        let (unique, primary) = crate::store_metadata::tag_names(&workflow, &TagConf::load(ctx)?);
        let mut body = json!({
            "status": status,
            "image": workflow.image,
            "image_id": workflow.build_result.as_ref().and_then(|b| b.image_id.clone()),
            "tags": unique.iter().chain(&primary).collect::<Vec<_>>(),
            "digests": workflow.digests,
            "failed_phase": outcome.failed_phase,
            "failed_plugin": outcome.failed_plugin,
            "error": outcome.error,
            "source": {"provider": workflow.source.provider, "uri": workflow.source.uri, "commit": workflow.source.commit},
            "reactor_version": ctx.host().reactor_version,
        });
        redact_value(&mut body);
        let code = post_json(ctx, watch, &url, &body, Duration::from_secs_f64(args.timeout))?;
        log::info!("notified {shown} that the build {status} (HTTP {code})");
        Ok(json!({"sent": true, "status": status, "url": shown, "status_code": code}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor_plugin_api::testing::FakeHost;
    use reactor_plugin_api::{BuildResult, ErrorKind, Outcome, SourceInfo, Status, Workflow};
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::time::Instant;

    fn ended(status: Status) -> FakeHost {
        let outcome = match status {
            Status::Failed => Outcome {
                status,
                failed_phase: Some("prepublish".into()),
                failed_plugin: Some("run_in_image".into()),
                error: Some("prepublish plugin 'run_in_image' failed: 'make test' exited with code 2".into()),
            },
            _ => Outcome { status, ..Default::default() },
        };
        let workflow = Workflow {
            image: "app:1".into(),
            tags: vec!["app:extra".into()],
            source: SourceInfo {
                provider: "git".into(),
                uri: "https://u:pw@h/r.git".into(),
                commit: Some("abc".into()),
                ..Default::default()
            },
            build_result: Some(BuildResult { image_id: Some("sha256:built".into()), ..Default::default() }),
            digests: [("127.0.0.1:5000/app:1".to_owned(), "sha256:d1".to_owned())].into(),
            outcome: Some(outcome),
            ..Default::default()
        };
        FakeHost::new(Phase::Exit, workflow)
    }

    /// A listener that answers one request with `status` and hands over its JSON body.
    fn answer_once(status: &'static str) -> (String, std::thread::JoinHandle<Value>) {
        let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", socket.local_addr().expect("addr"));
        let handle = std::thread::spawn(move || {
            let (stream, _) = socket.accept().expect("accept");
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("header");
                if line.trim().is_empty() {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().expect("length");
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("body");
            let mut stream = reader.into_inner();
            write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").expect("answer");
            serde_json::from_slice(&body).expect("JSON body")
        });
        (url, handle)
    }

    #[test]
    fn posts_the_outcome_of_a_failed_build() {
        let (url, listener) = answer_once("200 OK");
        let fake = ended(Status::Failed)
            .workspace("tag_conf", json!({"unique_images": ["app:1"], "primary_images": ["app:latest"]}));
        let result = fake.run(&NotifyWebhook, json!({"url": url})).expect("posts");
        assert_eq!(result, json!({"sent": true, "status": "failed", "url": url, "status_code": 200}));
        let body = listener.join().expect("listener");
        assert_eq!(
            body,
            json!({
                "status": "failed", "image": "app:1", "image_id": "sha256:built",
                "tags": ["app:1", "app:latest", "app:extra"],
                "digests": {"127.0.0.1:5000/app:1": "sha256:d1"},
                "failed_phase": "prepublish", "failed_plugin": "run_in_image",
                "error": "prepublish plugin 'run_in_image' failed: 'make test' exited with code 2",
                "source": {"provider": "git", "uri": "https://u:***@h/r.git", "commit": "abc"},
                "reactor_version": "FakeHost"
            })
        );
    }

    #[test]
    fn sends_only_on_the_statuses_of_send_on() {
        // Nothing listens there: a post would fail.
        let closed = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
        let url = format!("http://{closed}/hook");
        let result = ended(Status::Succeeded)
            .run(&NotifyWebhook, json!({"url": url, "send_on": ["failed", "cancelled"]}))
            .expect("not sent");
        assert_eq!(
            result,
            json!({"sent": false, "status": "succeeded", "reason": "the build succeeded, which is not in 'send_on' (failed, cancelled)"})
        );
        let (url, listener) = answer_once("204 No Content");
        let result =
            ended(Status::Cancelled).run(&NotifyWebhook, json!({"url": url, "send_on": ["cancelled"]})).expect("sent");
        assert_eq!(result["status_code"], 204);
        assert_eq!(listener.join().expect("listener")["status"], "cancelled");
    }

    #[test]
    fn a_silent_webhook_fails_after_the_timeout_saying_so() {
        let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", socket.local_addr().expect("addr"));
        // Accepts, reads, never answers; keeps the connection until the test ends.
        let _held = std::thread::spawn(move || {
            let (mut stream, _) = socket.accept().expect("accept");
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink).map(|n| n > 0).unwrap_or(false) {}
        });
        let started = Instant::now();
        let err =
            ended(Status::Succeeded).run(&NotifyWebhook, json!({"url": url, "timeout": 0.5})).expect_err("no answer");
        assert_eq!(
            err.message,
            format!("POST {url}: no answer within 0.5 s (the 'timeout' arg): check the server, or raise 'timeout'")
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn a_cancellation_abandons_a_post_that_waits_for_an_answer() {
        let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", socket.local_addr().expect("addr"));
        let fake = ended(Status::Succeeded);
        let switch = fake.cancel_switch();
        // Accepts, cancels the build, never answers.
        let _held = std::thread::spawn(move || {
            let (mut stream, _) = socket.accept().expect("accept");
            switch.cancel();
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink).map(|n| n > 0).unwrap_or(false) {}
        });
        let err = fake.run(&NotifyWebhook, json!({"url": url, "timeout": 3600})).expect_err("cancelled");
        assert_eq!(
            (err.kind, err.message),
            (ErrorKind::Cancelled, format!("POST {url}: abandoned, the build was cancelled"))
        );
    }

    #[test]
    fn an_error_status_and_a_refused_connection_fail_naming_them() {
        let (url, listener) = answer_once("500 Internal Server Error");
        let err = ended(Status::Failed).run(&NotifyWebhook, json!({"url": url})).expect_err("500");
        listener.join().expect("listener");
        assert_eq!(err.message, format!("POST {url}: the server answered HTTP 500 Internal Server Error"));
        let closed = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
        let url = format!("http://hook:hidden@{closed}/hook");
        let err = ended(Status::Failed).run(&NotifyWebhook, json!({"url": url})).expect_err("refused");
        assert!(err.message.starts_with(&format!("POST http://hook:***@{closed}/hook: ")), "{}", err.message);
        assert!(err.message.ends_with(": check that the server is up and listening there"), "{}", err.message);
        assert!(!err.message.contains("hidden"), "{}", err.message);
    }

    #[test]
    fn bad_args_are_refused_naming_the_arg() {
        let fake = ended(Status::Succeeded);
        let err = fake
            .run(&NotifyWebhook, json!({"url": "http://h/", "send_on": ["auto_fail"]}))
            .expect_err("unknown status");
        assert_eq!(
            (err.kind, err.message.as_str()),
            (
                ErrorKind::InvalidArgs,
                "'send_on' has \"auto_fail\": a build's status is one of succeeded, failed, cancelled"
            )
        );
        let err = fake.run(&NotifyWebhook, json!({"url": "h/x"})).expect_err("not a URL");
        assert!(err.message.starts_with("'url' h/x: not a URL"), "{}", err.message);
        assert!(fake.requests().is_empty());
        assert!(NotifyWebhook.manifest().allowed_to_fail, "a notification does not fail a build by default");
    }
}
