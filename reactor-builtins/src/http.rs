//! What the built-ins that post JSON share (`store_metadata`, `notify_webhook`): one POST with a
//! deadline, and URLs with their passwords hidden before they go into a message, a log line, a
//! result or a document.

use std::time::Duration;

use reactor_plugin_api::{error_chain, PluginError};
use serde_json::Value;

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

/// POSTs `body` as JSON to `url` and returns the HTTP status of a 2xx answer. No answer within
/// `timeout`, a failed connection, or another status is an error naming the URL (its password
/// hidden); a user and password in the URL are sent as basic authentication.
pub fn post_json(url: &reqwest::Url, body: &Value, timeout: Duration) -> Result<u16, PluginError> {
    let shown = redact_passwords(url.as_str());
    let failed = |e: reqwest::Error| {
        if e.is_timeout() {
            PluginError::new(format!("POST {shown}: no answer within {} s (timeout)", timeout.as_secs_f64()))
        } else {
            // reqwest puts the URL, password included, into its message: say it once, hidden.
            PluginError::new(format!("POST {shown}: {}", error_chain(&e.without_url())))
        }
    };
    let client = reqwest::blocking::Client::builder().timeout(timeout).build().map_err(failed)?;
    let response = client.post(url.clone()).json(body).send().map_err(failed)?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().unwrap_or_default();
        let said = text.lines().next().map(str::trim).filter(|l| !l.is_empty());
        let said = said.map(|l| format!(": {}", shorten(l, 200))).unwrap_or_default();
        return Err(PluginError::new(format!("POST {shown}: the server answered HTTP {status}{said}")));
    }
    Ok(status.as_u16())
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
