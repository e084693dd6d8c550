//! Secret plugin args, and keeping them (and URL passwords) out of everything reactor prints
//! or records.
//!
//! A plugin marks an arg secret in its args schema with JSON Schema's `"writeOnly": true` or
//! with `"x-secret": true`, at any depth (a property, an `additionalProperties` or `items`
//! schema, through `allOf`/`anyOf`/`oneOf` and local `$ref`s). Such a value is shown as `***`
//! in the `--dry-run` plan and in reactor's own lines about the args, and validation messages
//! never quote it. Its text is also *masked*: once a build's plan is known, every string in a
//! secret value (of at least [`MIN_MASKED_LEN`] characters) is replaced by `***` wherever it
//! would appear in a log line (a plugin's own included), a plugin's recorded result or error,
//! or the result document, so a plugin that echoes its token does not leak it either.
//! URL passwords (`scheme://user:password@host`) are redacted everywhere by the same functions.

use std::sync::RwLock;

use serde_json::Value;

/// What a secret value is shown as.
pub const REDACTED: &str = "***";

/// Shorter secret strings are not masked in free text: masking "a" or "no" would garble every
/// line while hiding nothing. The plan and reactor's lines about args still show them as `***`.
pub const MIN_MASKED_LEN: usize = 4;

/// How deep a schema or args value is followed (and how many `$ref`s), and how many
/// (sub)schemas are looked at in all: a hostile schema (a `$ref` cycle) ends all the same.
const MAX_DEPTH: usize = 64;
const MAX_VISITS: usize = 100_000;

/// Whether this (sub)schema marks its value secret.
pub fn is_secret(schema: &Value) -> bool {
    schema.get("writeOnly") == Some(&Value::Bool(true)) || schema.get("x-secret") == Some(&Value::Bool(true))
}

/// `args` with every value that `schema` marks secret replaced by `"***"`.
pub fn redact_args(schema: &Value, args: &Value) -> Value {
    let mut args = args.clone();
    let mut visits_left = MAX_VISITS;
    visit_secrets(schema, schema, &mut args, 0, &mut visits_left, &mut |secret| {
        *secret = Value::String(REDACTED.to_owned());
    });
    args
}

/// Every string inside a value of `args` that `schema` marks secret (an object's keys included).
pub fn secret_strings(schema: &Value, args: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut args = args.clone();
    let mut visits_left = MAX_VISITS;
    visit_secrets(schema, schema, &mut args, 0, &mut visits_left, &mut |secret| strings_in(secret, &mut found));
    found
}

fn strings_in(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::String(text) => into.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings_in(v, into)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            into.push(k.clone());
            strings_in(v, into);
        }),
        // A secret number or boolean is shown as *** but not masked in free text.
        _ => {}
    }
}

/// Calls `found` on every part of `value` that `schema` (within `root`) marks secret. Branches
/// of `allOf`/`anyOf`/`oneOf`/`if`-`then`-`else` all count: a value any of them marks is secret.
fn visit_secrets(
    schema: &Value,
    root: &Value,
    value: &mut Value,
    depth: usize,
    visits_left: &mut usize,
    found: &mut dyn FnMut(&mut Value),
) {
    if depth > MAX_DEPTH || *visits_left == 0 {
        return;
    }
    *visits_left -= 1;
    let Some(schema_map) = schema.as_object() else {
        return;
    };
    if is_secret(schema) {
        found(value);
        return;
    }
    if let Some(target) = schema_map.get("$ref").and_then(Value::as_str).and_then(|r| local_ref(root, r)) {
        visit_secrets(target, root, value, depth + 1, visits_left, found);
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        if let Some(branches) = schema_map.get(combinator).and_then(Value::as_array) {
            for branch in branches {
                visit_secrets(branch, root, value, depth + 1, visits_left, found);
            }
        }
    }
    for conditional in ["then", "else"] {
        if let Some(branch) = schema_map.get(conditional) {
            visit_secrets(branch, root, value, depth + 1, visits_left, found);
        }
    }
    match value {
        Value::Object(map) => {
            let properties = schema_map.get("properties").and_then(Value::as_object);
            let additional = schema_map.get("additionalProperties");
            for (key, item) in map.iter_mut() {
                // patternProperties are not matched (a regex engine for this alone is not worth
                // it): a secret under one should be a property or additionalProperties.
                if let Some(sub) = properties.and_then(|p| p.get(key)).or(additional) {
                    visit_secrets(sub, root, item, depth + 1, visits_left, found);
                }
            }
        }
        Value::Array(items) => {
            let prefix = schema_map.get("prefixItems").and_then(Value::as_array);
            for (index, item) in items.iter_mut().enumerate() {
                let sub = match (prefix.and_then(|p| p.get(index)), schema_map.get("items")) {
                    (Some(positional), _) => Some(positional),
                    (None, Some(Value::Array(positional))) => positional.get(index),
                    (None, items) => items,
                };
                if let Some(sub) = sub {
                    visit_secrets(sub, root, item, depth + 1, visits_left, found);
                }
            }
        }
        _ => {}
    }
}

/// The schema a local `$ref` ("#/$defs/x", "#/definitions/x") points to.
fn local_ref<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    root.pointer(reference.strip_prefix('#')?)
}

/// The strings masked in free text from now on (see the module's doc).
static MASKED: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Masks these strings from now on, in every log line and recorded text (see the module's doc).
pub fn mask(secrets: impl IntoIterator<Item = String>) {
    let mut masked = MASKED.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    for secret in secrets {
        // A secret URL with a password is also met with its password already redacted.
        let url_redacted = crate::credentials::redact_url(&secret);
        for text in [secret, url_redacted] {
            if text.chars().count() >= MIN_MASKED_LEN && !masked.contains(&text) {
                masked.push(text);
            }
        }
    }
    // The longest first, so a secret that contains another is masked whole.
    masked.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` without URL passwords and without any masked string.
pub fn redact_text(text: &str) -> String {
    let text = if text.contains("://") { crate::credentials::redact_url(text) } else { text.to_owned() };
    let masked = MASKED.read().unwrap_or_else(|poisoned| poisoned.into_inner());
    masked.iter().fold(text, |text, secret| {
        if text.contains(secret.as_str()) {
            text.replace(secret.as_str(), REDACTED)
        } else {
            text
        }
    })
}

/// [`redact_text`] on every string of `value`, object keys included.
pub fn redact_value(value: &mut Value) {
    match value {
        Value::String(text) => *text = redact_text(text),
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                redact_value(&mut item);
                map.insert(redact_text(&key), item);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn write_only_and_x_secret_properties_are_redacted_at_any_depth() {
        let schema = json!({
            "type": "object",
            "properties": {
                "user": {"type": "string"},
                "password": {"type": "string", "writeOnly": true},
                "token": {"type": "string", "x-secret": true},
                "env": {"type": "object", "additionalProperties": {"type": "string", "x-secret": true}},
                "hooks": {"type": "array", "items": {"type": "object", "properties": {"url": {"x-secret": true}}}},
                "not_secret": {"type": "string", "writeOnly": false}
            }
        });
        let args = json!({
            "user": "me", "password": "hunter22", "token": 12345, "not_secret": "shown",
            "env": {"A": "alpha-secret", "B": "beta-secret"}, "hooks": [{"url": "http://h/t0ken"}, {"other": 1}]
        });
        assert_eq!(
            redact_args(&schema, &args),
            json!({
                "user": "me", "password": "***", "token": "***", "not_secret": "shown",
                "env": {"A": "***", "B": "***"}, "hooks": [{"url": "***"}, {"other": 1}]
            })
        );
        let mut found = secret_strings(&schema, &args);
        found.sort();
        assert_eq!(found, ["alpha-secret", "beta-secret", "http://h/t0ken", "hunter22"]);
    }

    #[test]
    fn refs_and_combinators_are_followed() {
        let schema = json!({
            "$defs": {"secret": {"type": "string", "writeOnly": true}},
            "properties": {"a": {"$ref": "#/$defs/secret"}},
            "anyOf": [{"properties": {"b": {"x-secret": true}}}, {"required": ["c"]}],
            "if": {"required": ["d"]}, "then": {"properties": {"d": {"writeOnly": true}}}
        });
        let args = json!({"a": "aaaa", "b": "bbbb", "c": "cccc", "d": "dddd"});
        assert_eq!(redact_args(&schema, &args), json!({"a": "***", "b": "***", "c": "cccc", "d": "***"}));
    }

    #[test]
    fn a_whole_secret_object_is_redacted_and_its_strings_found() {
        let schema = json!({"properties": {"auth": {"type": "object", "x-secret": true}}});
        let args = json!({"auth": {"user": "u", "pass": "p4ssw0rd"}});
        assert_eq!(redact_args(&schema, &args), json!({"auth": "***"}));
        assert!(secret_strings(&schema, &args).contains(&"p4ssw0rd".to_owned()));
    }

    #[test]
    fn hostile_schemas_end() {
        let schema = json!({"$ref": "#", "properties": {"a": {"$ref": "#"}}});
        let args = json!({"a": {"a": {"a": "x"}}});
        assert_eq!(redact_args(&schema, &args), args);
        assert_eq!(redact_args(&json!(true), &args), args);
        assert_eq!(redact_args(&json!({"$ref": "nowhere"}), &args), args);
    }

    #[test]
    fn masked_strings_and_url_passwords_leave_text_and_values() {
        mask(["masked-Secret-1".to_owned(), "ab".to_owned()]);
        assert_eq!(
            redact_text("token masked-Secret-1 at http://u:pw@h/x, ab stays"),
            "token *** at http://u:***@h/x, ab stays"
        );
        let mut value = json!({"masked-Secret-1": ["x masked-Secret-1"], "n": 1});
        redact_value(&mut value);
        assert_eq!(value, json!({"***": ["x ***"], "n": 1}));
    }
}
