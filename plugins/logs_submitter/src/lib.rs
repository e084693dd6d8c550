//! `logs_submitter`: the post-build plugin of atomic-reactor's "writing plugins" walk-through,
//! in Rust. It POSTs the build's log lines as `{"logs": [...]}` to the `url` arg and returns the
//! response body as its result. The body is streamed from the build log, so a log of any size
//! takes little memory.
//!
//! ```json
//! {"name": "logs_submitter", "args": {"url": "http://localhost:9099"}}
//! ```

use reactor_plugin_api::build_log::JsonReader;
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
        // {"logs": [...]}, rendered from the build log as it is sent; its length is known
        // first, so that it goes with a Content-Length.
        let body = JsonReader::new(ctx, "logs")?;
        let length = body.len();
        log::info!("posting {} log lines to {}", body.lines(), args.url);
        let client = reqwest::blocking::Client::builder()
            .user_agent(concat!("reactor-logs_submitter/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let response = client
            .post(&args.url)
            .header("content-type", "application/json")
            .body(reqwest::blocking::Body::sized(body, length))
            .send()
            .and_then(|r| r.error_for_status())
            .map_err(|e| PluginError::from(e).context(format!("POST {}", args.url)))?;
        Ok(Value::String(response.text()?))
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
        // The log was read once, by pages: the first page says the body's length.
        assert_eq!(fake.requests(), [Request::ReadBuildLog { offset: 0, max_bytes: MAX_LOG_PAGE_BYTES }]);
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
        assert_eq!(fake.requests(), [Request::Workflow, Request::Workflow]);
    }

    #[test]
    fn an_error_status_is_an_error_naming_the_url() {
        let (url, server) = serve_once("503 Service Unavailable", "busy");
        let err = built(&["line"]).run(&LogsSubmitter, json!({"url": url})).expect_err("the server says no");
        assert!(err.message.starts_with(&format!("POST {url}: ")), "{err}");
        assert!(err.message.contains("503"), "{err}");
        server.join().expect("the server thread ends");
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
