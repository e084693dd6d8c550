//! `logs_submitter`: the post-build plugin of atomic-reactor's "writing plugins" walk-through,
//! in Rust. It POSTs the build's log lines as `{"logs": [...]}` to the `url` arg and returns the
//! response body as its result. The body is streamed from the build log, so a log of any size
//! takes little memory.
//!
//! ```json
//! {"name": "logs_submitter", "args": {"url": "http://localhost:9099", "timeout": 60}}
//! ```
//!
//! A server that does not answer cannot hold the build: the POST gives up after `timeout`
//! seconds (60 unless the args say; connecting, at most 10 of them), and at once when the build
//! is cancelled while it waits.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use reactor_plugin_api::build_log::JsonReader;
use reactor_plugin_api::{error_chain, export_plugins, Args, Context, ErrorKind, Manifest, Phase, Plugin, PluginError};
use serde::Deserialize;
use serde_json::{json, Value};

/// Seconds the POST may take, connecting and sending the log included, unless the args say.
const DEFAULT_TIMEOUT_S: f64 = 60.0;
/// Connecting gives up sooner, so that a server that is not there is found out in seconds.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the plugin asks reactor whether the build was cancelled while the POST runs.
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// Posts the build logs to a URL.
pub struct LogsSubmitter;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsSubmitterArgs {
    /// Where the logs are posted.
    url: String,
    /// Seconds the POST may take.
    #[serde(default = "default_timeout")]
    timeout: f64,
}

fn default_timeout() -> f64 {
    DEFAULT_TIMEOUT_S
}

impl Plugin for LogsSubmitter {
    fn manifest(&self) -> Manifest {
        Manifest::new("logs_submitter", [Phase::Postbuild, Phase::Exit], env!("CARGO_PKG_VERSION"))
            .description("POSTs the build's log lines as JSON {\"logs\": [...]} to a URL")
            .args_schema(json!({
                "type": "object",
                "properties": {
                    "url": {"type": "string", "description": "where the logs are posted"},
                    "timeout": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "default": DEFAULT_TIMEOUT_S,
                        "description": "seconds the POST may take, connecting included, before the plugin fails"
                    }
                },
                "required": ["url"],
                "additionalProperties": false
            }))
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let args: LogsSubmitterArgs = args.parse()?;
        // reactor checks the args against the schema first; a test or another host may not.
        if !(args.timeout.is_finite() && args.timeout > 0.0) {
            let message = format!("'timeout' must be a positive number of seconds, not {}", args.timeout);
            return Err(PluginError::invalid_args(message));
        }
        let timeout = Duration::from_secs_f64(args.timeout);
        let url = redacted(&args.url);
        // {"logs": [...]}, rendered from the build log as it is sent; its length is known
        // first, so that it goes with a Content-Length.
        let body = JsonReader::new(ctx, "logs")?;
        // Asked before the wait can begin: an exit plugin of a build cancelled before it started
        // runs because of the cancellation, so it posts anyway, for as long as reactor gives the
        // exit phase (--exit-timeout). Any other plugin gives up once the build is cancelled.
        let watch = !ctx.is_cancelled();
        let length = body.len();
        log::info!("posting {} log lines to {url}", body.lines());
        let client = reqwest::blocking::Client::builder()
            .user_agent(concat!("reactor-logs_submitter/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .build()?;
        let request = client
            .post(&args.url)
            .header("content-type", "application/json")
            .body(reqwest::blocking::Body::sized(body, length));
        // The POST runs on a thread of its own while this one watches for a cancellation. An
        // abandoned POST's thread ends by itself, at the timeout at the latest.
        let (send_reply, reply) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = send_reply.send(request.send().and_then(|r| r.error_for_status()).and_then(|r| r.text()));
        });
        loop {
            match reply.recv_timeout(CANCEL_POLL) {
                Ok(reply) => return reply.map(Value::String).map_err(|e| failed(&url, timeout, e)),
                Err(RecvTimeoutError::Timeout) if watch && ctx.is_cancelled() => {
                    let message = format!("POST {url}: abandoned, the build was cancelled");
                    return Err(PluginError::with_kind(ErrorKind::Cancelled, message));
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(PluginError::new(format!("POST {url}: the request ended without an answer")));
                }
            }
        }
    }
}

/// One line that says which URL failed, how, and what to do.
fn failed(url: &str, timeout: Duration, e: reqwest::Error) -> PluginError {
    let seconds = |d: Duration| d.as_secs_f64();
    let message = if e.is_connect() && e.is_timeout() {
        format!(
            "POST {url}: no connection within {} s: check that the server is up and reachable from here",
            seconds(CONNECT_TIMEOUT.min(timeout))
        )
    } else if e.is_timeout() {
        format!(
            "POST {url}: no answer within {} s (the 'timeout' arg): check the server, or raise 'timeout'",
            seconds(timeout)
        )
    } else if e.is_connect() || e.is_body() {
        // A refused connection can also end the body's stream first, and that error is the one
        // reported. reqwest's message holds the URL, password included: leave it out.
        format!("POST {url}: {}: check that the server is up and listening there", error_chain(&e.without_url()))
    } else {
        format!("POST {url}: {}", error_chain(&e.without_url()))
    };
    PluginError::new(message)
}

/// `url` as it may be shown: a password in it replaced by `***`.
fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

export_plugins!(LogsSubmitter);

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::thread::JoinHandle;

    use reactor_plugin_api::protocol::{Protocol, Request, MAX_LOG_PAGE_BYTES};
    use reactor_plugin_api::testing::FakeHost;
    use reactor_plugin_api::{BuildResult, ErrorKind, Phase, Workflow};
    use serde_json::json;

    use super::*;

    /// One HTTP request as the test's server received it.
    struct Received {
        request_line: String,
        headers: Vec<(String, String)>,
        body: Value,
    }

    /// Serves one request on 127.0.0.1 with `status` and `reply`; returns the server's URL and
    /// what it received.
    fn serve_once(status: &str, reply: &'static str) -> (String, JoinHandle<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a port on 127.0.0.1");
        let url = format!("http://{}/logs", listener.local_addr().expect("the listener's address"));
        let status = status.to_owned();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("the plugin connects");
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).expect("a request line");
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("a header line");
                let Some((name, value)) = line.trim_end().split_once(':') else { break };
                headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
            }
            let length = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map_or(0, |(_, v)| v.parse::<usize>().expect("a numeric content-length"));
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("the body");
            let response =
                format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}", reply.len());
            reader.get_mut().write_all(response.as_bytes()).expect("the response is sent");
            let body = serde_json::from_slice(&body).expect("the body is JSON");
            Received { request_line: request_line.trim_end().to_owned(), headers, body }
        });
        (url, server)
    }

    fn built(logs: &[&str]) -> FakeHost {
        let build = BuildResult { logs: logs.iter().map(|l| l.to_string()).collect(), ..Default::default() };
        FakeHost::new(Phase::Postbuild, Workflow { build_result: Some(build), ..Default::default() })
    }

    #[test]
    fn posts_the_build_logs_as_json_and_returns_the_reply() {
        let (url, server) = serve_once("200 OK", "stored 2 lines");
        let fake = built(&["Step 1/2 : FROM busybox", " ---> 10f721a22d93"]);

        let result = fake.run(&LogsSubmitter, json!({"url": url})).expect("posts");

        assert_eq!(result, json!("stored 2 lines"));
        let received = server.join().expect("the server thread ends");
        assert_eq!(received.request_line, "POST /logs HTTP/1.1");
        assert!(
            received.headers.contains(&("content-type".into(), "application/json".into())),
            "{:?}",
            received.headers
        );
        assert_eq!(received.body, json!({"logs": ["Step 1/2 : FROM busybox", " ---> 10f721a22d93"]}));
        // The log was read once, by pages: the first page says the body's length. Besides, the
        // plugin asked whether the build was cancelled while it waited.
        let requests: Vec<Request> = fake.requests().into_iter().filter(|r| *r != Request::IsCancelled).collect();
        assert_eq!(requests, [Request::ReadBuildLog { offset: 0, max_bytes: MAX_LOG_PAGE_BYTES }]);
        assert!(fake.logs().iter().any(|r| r.message == format!("posting 2 log lines to {url}")));
    }

    #[test]
    fn a_long_log_is_posted_whole_with_its_length() {
        let (url, server) = serve_once("200 OK", "ok");
        // About 5 MiB: five pages, and five times what a snapshot holds.
        let logs: Vec<String> = (0..50_000).map(|n| format!("{n:>6} \"quoted\" {}\r", "x".repeat(90))).collect();
        let lines: Vec<&str> = logs.iter().map(String::as_str).collect();
        built(&lines).run(&LogsSubmitter, json!({"url": url})).expect("posts");
        let received = server.join().expect("the server thread ends");
        // serve_once read exactly Content-Length bytes, and they are the whole document.
        assert_eq!(received.body, json!({ "logs": logs }));
    }

    #[test]
    fn with_an_older_reactor_the_snapshots_log_is_posted() {
        let (url, server) = serve_once("200 OK", "ok");
        let fake = built(&["Step 1/1 : FROM scratch"]).features([]).protocol(Protocol { major: 1, minor: 1 });
        fake.run(&LogsSubmitter, json!({"url": url})).expect("posts");
        assert_eq!(server.join().expect("the server thread ends").body, json!({"logs": ["Step 1/1 : FROM scratch"]}));
        let requests: Vec<Request> = fake.requests().into_iter().filter(|r| *r != Request::IsCancelled).collect();
        assert_eq!(requests, [Request::Workflow, Request::Workflow]);
    }

    #[test]
    fn an_error_status_is_an_error_naming_the_url() {
        let (url, server) = serve_once("503 Service Unavailable", "busy");
        let err = built(&["line"]).run(&LogsSubmitter, json!({"url": url})).expect_err("the server says no");
        assert!(err.message.starts_with(&format!("POST {url}: ")), "{err}");
        assert!(err.message.contains("503"), "{err}");
        server.join().expect("the server thread ends");
    }

    /// A server that accepts the connection and never answers; returns its URL, and a receiver
    /// that gets a message once the plugin has connected.
    fn silent_server() -> (String, std::sync::mpsc::Receiver<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a port on 127.0.0.1");
        let url = format!("http://{}/logs", listener.local_addr().expect("the listener's address"));
        let (connected, on_connect) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("the plugin connects");
            let _ = connected.send(());
            // Reads what comes and never answers, until the plugin lets go.
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink).map(|n| n > 0).unwrap_or(false) {}
        });
        (url, on_connect)
    }

    #[test]
    fn a_silent_server_fails_the_post_at_the_timeout_saying_so() {
        let (url, _connected) = silent_server();
        let err = built(&["line"]).run(&LogsSubmitter, json!({"url": url, "timeout": 0.5})).expect_err("no answer");
        assert_eq!(
            err.message,
            format!("POST {url}: no answer within 0.5 s (the 'timeout' arg): check the server, or raise 'timeout'")
        );
    }

    #[test]
    fn a_cancelled_build_abandons_a_post_that_waits() {
        let (url, connected) = silent_server();
        let fake = built(&["line"]);
        let switch = fake.cancel_switch();
        std::thread::spawn(move || {
            if connected.recv().is_ok() {
                switch.cancel();
            }
        });
        // The timeout is far off: only the cancellation ends the wait.
        let err = fake.run(&LogsSubmitter, json!({"url": url, "timeout": 3600})).expect_err("cancelled");
        assert_eq!(
            (err.kind, err.message),
            (ErrorKind::Cancelled, format!("POST {url}: abandoned, the build was cancelled"))
        );
    }

    #[test]
    fn an_exit_plugin_of_a_cancelled_build_still_posts() {
        let (url, server) = serve_once("200 OK", "ok");
        let build = BuildResult { logs: vec!["Step 1/1 : FROM scratch".into()], ..Default::default() };
        let fake = FakeHost::new(Phase::Exit, Workflow { build_result: Some(build), ..Default::default() });
        fake.set_cancelled(true);
        assert_eq!(fake.run(&LogsSubmitter, json!({"url": url})).expect("posts"), json!("ok"));
        assert_eq!(server.join().expect("the server thread ends").body, json!({"logs": ["Step 1/1 : FROM scratch"]}));
    }

    #[test]
    fn a_refused_connection_hides_the_password_and_says_what_to_do() {
        let closed = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
        let url = format!("http://bot:s3cr3t@{closed}/logs");
        let err = built(&["line"]).run(&LogsSubmitter, json!({"url": url})).expect_err("refused");
        assert!(err.message.starts_with(&format!("POST http://bot:***@{closed}/logs: ")), "{err}");
        assert!(err.message.ends_with("check that the server is up and listening there"), "{err}");
        assert!(!err.message.contains("s3cr3t"), "{err}");
    }

    #[test]
    fn a_timeout_that_is_not_a_positive_number_is_refused() {
        for timeout in [json!(0), json!(-1)] {
            let err = built(&[]).run(&LogsSubmitter, json!({"url": "http://127.0.0.1:1/", "timeout": timeout}));
            let err = err.expect_err("refused");
            assert_eq!(err.kind, ErrorKind::InvalidArgs, "{err}");
            assert!(err.message.starts_with("'timeout' must be a positive number of seconds"), "{err}");
        }
        let err = built(&[]).run(&LogsSubmitter, json!({"url": "http://127.0.0.1:1/", "timeout": "soon"}));
        assert_eq!(err.expect_err("refused").kind, ErrorKind::InvalidArgs);
    }

    // The example of README.md's "Testing a plugin", as it stands there.
    #[test]
    fn posts_the_build_logs_and_names_the_url_when_refused() {
        // Bound and dropped at once: nothing listens on that port any more.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
        let url = format!("http://{closed}/logs");
        let build = BuildResult { logs: vec!["Step 1/1 : FROM scratch".into()], ..Default::default() };
        let fake = FakeHost::new(Phase::Postbuild, Workflow { build_result: Some(build), ..Default::default() });

        let err = fake.run(&LogsSubmitter, json!({"url": url})).expect_err("nothing listens there");

        assert!(err.message.starts_with(&format!("POST {url}: ")), "{err}");
        assert!(matches!(fake.requests()[0], Request::ReadBuildLog { offset: 0, .. }), "read through the context");
        assert!(fake.logs().iter().any(|r| r.message == format!("posting 1 log lines to {url}")));
    }

    #[test]
    fn the_readme_shows_the_test_above_as_it_stands() {
        // Lines trimmed, so indentation may differ; the README's copy ends at its first "}" line.
        fn body(text: &str) -> Vec<&str> {
            let start = text.find("fn posts_the_build_logs_and_names_the_url_when_refused").expect("the test is there");
            text[start..].lines().map(str::trim).take_while(|l| *l != "}").filter(|l| !l.is_empty()).collect()
        }
        let readme = include_str!("../../../README.md");
        assert_eq!(body(readme), body(include_str!("lib.rs")));
    }

    #[test]
    fn before_the_build_there_are_no_logs_to_post() {
        let fake = FakeHost::new(Phase::Exit, Workflow::default());
        let err = fake.run(&LogsSubmitter, json!({"url": "http://127.0.0.1:1/"})).expect_err("no build yet");
        assert_eq!((err.kind, err.message.as_str()), (ErrorKind::Host, "the image has not been built yet"));
    }

    #[test]
    fn args_without_a_url_are_refused() {
        let err = built(&[]).run(&LogsSubmitter, json!({"uri": "x"})).expect_err("no url");
        assert_eq!(err.kind, ErrorKind::InvalidArgs);
    }
}
