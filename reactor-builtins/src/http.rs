//! What the built-ins that post JSON share (`store_metadata`, `notify_webhook`): one POST with a
//! deadline that a cancellation cuts short, and URLs with their passwords hidden before they go
//! into a message, a log line, a result or a document.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use reactor_plugin_api::{error_chain, Context, ErrorKind, PluginError};
use serde_json::Value;

/// Connecting gives up this soon (or at the whole timeout, when that is shorter), so that a
/// server that is not there is found out in seconds.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a plugin waiting for an answer asks reactor whether the build was cancelled.
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// Whether a plugin's network calls are abandoned on a cancellation, decided as the plugin
/// starts: an exit plugin of a build already cancelled runs because of the cancellation, so it
/// does its work regardless (reactor bounds it by the exit phase's limit); any other plugin stops
/// waiting once the build is cancelled.
#[derive(Clone, Copy, Debug)]
pub struct CancelWatch {
    active: bool,
}

impl CancelWatch {
    /// Call it first thing in `run`, before the wait it is for can begin.
    pub fn start(ctx: &Context) -> CancelWatch {
        CancelWatch { active: !ctx.is_cancelled() }
    }
}

/// An `http`/`https` URL from the arg `arg`, checked before anything is sent.
pub fn parse_url(arg: &str, url: &str) -> Result<reqwest::Url, PluginError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| PluginError::invalid_args(format!("'{arg}' {}: not a URL ({e})", redact_passwords(url))))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(PluginError::invalid_args(format!(
            "'{arg}' {}: only http:// and https:// URLs can be posted to",
            redact_passwords(url)
        )));
    }
    Ok(parsed)
}

/// POSTs `body` as JSON to `url` and returns the HTTP status of a 2xx answer. No connection
/// within [`CONNECT_TIMEOUT`], no answer within `timeout`, a failed connection, or another status
/// is an error naming the URL (its password hidden) and saying what to do; a user and password in
/// the URL are sent as basic authentication. A cancellation of the build while it waits abandons
/// the POST at once (an error of kind `cancelled`), as `watch` says.
pub fn post_json(
    ctx: &Context,
    watch: CancelWatch,
    url: &reqwest::Url,
    body: &Value,
    timeout: Duration,
) -> Result<u16, PluginError> {
    let shown = redact_passwords(url.as_str());
    let connect_timeout = CONNECT_TIMEOUT.min(timeout);
    let failed = |e: reqwest::Error| {
        let message = if e.is_connect() && e.is_timeout() {
            format!(
                "no connection within {} s: check that the server is up and reachable from here",
                connect_timeout.as_secs_f64()
            )
        } else if e.is_timeout() {
            format!(
                "no answer within {} s (the 'timeout' arg): check the server, or raise 'timeout'",
                timeout.as_secs_f64()
            )
        } else if e.is_connect() {
            // reqwest puts the URL, password included, into its message: say it once, hidden.
            format!("{}: check that the server is up and listening there", error_chain(&e.without_url()))
        } else {
            error_chain(&e.without_url())
        };
        PluginError::new(format!("POST {shown}: {message}"))
    };
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .build()
        .map_err(failed)?;
    let request = client.post(url.clone()).json(body);
    let answer = unless_cancelled(ctx, watch, &format!("POST {shown}"), move || {
        let response = request.send()?;
        let status = response.status();
        let text = if status.is_success() { String::new() } else { response.text().unwrap_or_default() };
        Ok((status, text))
    })?;
    let (status, text) = answer.map_err(failed)?;
    if !status.is_success() {
        let said = text.lines().next().map(str::trim).filter(|l| !l.is_empty());
        let said = said.map(|l| format!(": {}", shorten(l, 200))).unwrap_or_default();
        return Err(PluginError::new(format!("POST {shown}: the server answered HTTP {status}{said}")));
    }
    Ok(status.as_u16())
}

/// Runs `work` (a blocking network call with its own timeout) on a thread of its own and waits
/// for it, asking the host every [`CANCEL_POLL`] whether the build was cancelled. Unless `watch`
/// says not to, a cancellation that comes first abandons the work (its thread ends at its
/// timeout) with an error of kind `cancelled` saying `{what}: abandoned, …`.
pub fn unless_cancelled<T: Send + 'static>(
    ctx: &Context,
    watch: CancelWatch,
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PluginError> {
    let (send, done) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(work());
    });
    loop {
        match done.recv_timeout(CANCEL_POLL) {
            Ok(answer) => return Ok(answer),
            Err(RecvTimeoutError::Timeout) if watch.active && ctx.is_cancelled() => {
                let message = format!("{what}: abandoned, the build was cancelled");
                return Err(PluginError::with_kind(ErrorKind::Cancelled, message));
            }
            Err(RecvTimeoutError::Timeout) => {}
            // The thread ended without a word: it panicked.
            Err(RecvTimeoutError::Disconnected) => {
                return Err(PluginError::with_kind(ErrorKind::Panicked, format!("{what}: stopped without an answer")));
            }
        }
    }
}

/// `text` with the password of every `scheme://user:password@host` in it replaced by `***`.
pub fn redact_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.find("://") {
        let authority_at = found + 3;
        let is_url = rest[..found].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric());
        out.push_str(&rest[..authority_at]);
        rest = &rest[authority_at..];
        if !is_url {
            continue;
        }
        let end = rest.find(|c: char| c.is_whitespace() || "/?#\"'<>`".contains(c)).unwrap_or(rest.len());
        // Up to the last '@': a password may hold a raw '@' of its own.
        let Some(userinfo_end) = rest[..end].rfind('@') else {
            continue;
        };
        if let Some(colon) = rest[..userinfo_end].find(':') {
            out.push_str(&rest[..=colon]);
            out.push_str("***");
            rest = &rest[userinfo_end..];
        }
    }
    out.push_str(rest);
    out
}

/// Hides the passwords of URLs in every string of `value`, keys included.
pub fn redact_value(value: &mut Value) {
    match value {
        Value::String(text) if text.contains("://") => *text = redact_passwords(text),
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                redact_value(&mut item);
                map.insert(redact_passwords(&key), item);
            }
        }
        _ => {}
    }
}

/// At most `max` characters of `text`, with `…` when cut.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hides_passwords_of_urls_anywhere_in_text_and_keeps_the_rest() {
        let cases = [
            ("https://u:p@h/x", "https://u:***@h/x"),
            ("cloning http://bot:s3cr3t@127.0.0.1:1/r.git failed", "cloning http://bot:***@127.0.0.1:1/r.git failed"),
            ("a raw @ in it: https://u:p@ss@host:8443/v1?q=1", "a raw @ in it: https://u:***@host:8443/v1?q=1"),
            ("two: git+ssh://g:k@h/r \"http://x:y@z\"", "two: git+ssh://g:***@h/r \"http://x:***@z\""),
            ("user only https://u@h/ and no user https://h:443/", "user only https://u@h/ and no user https://h:443/"),
            ("not a URL ://a:b@c", "not a URL ://a:b@c"),
            ("", ""),
        ];
        for (text, expected) in cases {
            assert_eq!(redact_passwords(text), expected, "{text}");
        }
    }

    #[test]
    fn hides_passwords_in_json_values_and_keys() {
        let mut value = json!({"uri": "https://u:pw@git.example/r", "list": ["x", {"http://a:b@h": 1}], "n": 3});
        redact_value(&mut value);
        assert_eq!(value, json!({"uri": "https://u:***@git.example/r", "list": ["x", {"http://a:***@h": 1}], "n": 3}));
    }

    #[test]
    fn only_http_urls_are_accepted_and_a_refusal_hides_the_password() {
        assert!(parse_url("url", "http://127.0.0.1:9/hook").is_ok());
        let err = parse_url("url", "ftp://u:secret@h/x").expect_err("not http");
        assert_eq!(err.message, "'url' ftp://u:***@h/x: only http:// and https:// URLs can be posted to");
        let err = parse_url("url", "not a url").expect_err("not a URL");
        assert!(err.message.starts_with("'url' not a url: not a URL ("), "{}", err.message);
    }
}
