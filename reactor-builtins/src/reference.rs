//! The built-ins' reference page, `docs/plugins.md`, rendered from their manifests: the args come
//! from each args schema, so the page cannot say anything the host would not check. A test in
//! `tests/reference.rs` fails when the committed page differs from what this renders.

use std::fmt::Write as _;

use reactor_plugin_api::Manifest;
use serde_json::Value;

/// The whole page, for the plugins `all()` registers.
pub fn markdown() -> String {
    let mut manifests: Vec<Manifest> = crate::all().iter().map(|p| p.manifest()).collect();
    // In the order a build runs them: by first phase, then by key.
    manifests.sort_by(|a, b| (a.phases.first(), &a.key).cmp(&(b.phases.first(), &b.key)));
    let mut out = String::from(
        "# Built-in plugins\n\n\
         <!-- Generated from the plugins' manifests by reactor-builtins (src/reference.rs); do not edit.\n     \
         Regenerate with: REACTOR_UPDATE_DOCS=1 cargo test -p reactor-builtins --test reference -->\n\n\
         These plugins are part of reactor; a build.json names them by key, with atomic-reactor's\n\
         args. Each is written against `reactor-plugin-api` alone, as a loaded plugin would be.\n\
         \"Allowed to fail\" is the default for an entry that does not set `is_allowed_to_fail`.\n\n\
         | key | phases | allowed to fail | what it does |\n|---|---|---|---|\n",
    );
    for m in &manifests {
        let _ = writeln!(
            out,
            "| [`{}`](#{}) | {} | {} | {} |",
            m.key,
            m.key,
            phases(m),
            if m.allowed_to_fail { "yes" } else { "no" },
            m.description
        );
    }
    for m in &manifests {
        out += &section(m);
    }
    out
}

fn phases(manifest: &Manifest) -> String {
    manifest.phases.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
}

fn section(manifest: &Manifest) -> String {
    let mut out = format!("\n## {}\n\n{}\n\n", manifest.key, capitalised(&manifest.description));
    let _ = writeln!(out, "- Phases: {}", phases(manifest));
    let _ = writeln!(out, "- Allowed to fail: {}", if manifest.allowed_to_fail { "yes" } else { "no" });
    if !manifest.requires.is_empty() {
        let _ = writeln!(out, "- Needs the host features: {}", manifest.requires.join(", "));
    }
    let _ = writeln!(out, "- Returns: {}", crate::returns(&manifest.key).unwrap_or("nothing of note"));
    out += "\n";
    out += &args_table(&manifest.args_schema);
    out
}

/// An args JSON Schema as a markdown table, one row per arg (nested ones as `outer.inner`):
/// arg, type, required, default, description; "No args." when it has none. `reactor plugins
/// inspect` shows a loaded plugin's args with it too.
pub fn args_table(schema: &Value) -> String {
    let mut rows = Vec::new();
    collect_rows(schema, "", &mut rows);
    if rows.is_empty() {
        return "No args.\n".to_owned();
    }
    let mut out = String::from("| arg | type | required | default | description |\n|---|---|---|---|---|\n");
    for row in rows {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            row.name,
            row.kind,
            if row.required { "yes" } else { "no" },
            row.default.map_or_else(|| "".to_owned(), |d| format!("`{d}`")),
            row.description.replace('|', "\\|").replace('\n', " ")
        );
    }
    out
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => {
            let mut out: String = first.to_uppercase().collect();
            out += chars.as_str();
            if !out.ends_with('.') {
                out.push('.');
            }
            out
        }
        None => String::new(),
    }
}

struct Row {
    name: String,
    kind: String,
    required: bool,
    default: Option<String>,
    description: String,
}

/// One row per property, nested objects as `outer.inner` and maps as `outer.<key>.inner`.
fn collect_rows(schema: &Value, prefix: &str, rows: &mut Vec<Row>) {
    let required: Vec<&str> =
        schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return;
    };
    // By name: the page must not depend on whether serde_json keeps the schema's order
    // (`preserve_order`, which a workspace build turns on).
    let mut properties: Vec<(&String, &Value)> = properties.iter().collect();
    properties.sort_by_key(|(name, _)| name.as_str());
    for (name, property) in properties {
        let full = format!("{prefix}{name}");
        rows.push(Row {
            name: full.clone(),
            kind: kind(property),
            required: required.contains(&name.as_str()),
            default: property.get("default").map(Value::to_string),
            description: property["description"].as_str().unwrap_or("").to_owned(),
        });
        if property["properties"].is_object() {
            collect_rows(property, &format!("{full}."), rows);
        }
        if let Some(each) = property.get("additionalProperties").filter(|v| v["properties"].is_object()) {
            collect_rows(each, &format!("{full}.<key>."), rows);
        }
        if let Some(items) = property.get("items").filter(|v| v["properties"].is_object()) {
            collect_rows(items, &format!("{full}[]."), rows);
        }
    }
}

/// A property's type as a person reads it: `string`, `array of string`, `object or string`, …
fn kind(schema: &Value) -> String {
    for combinator in ["oneOf", "anyOf"] {
        if let Some(options) = schema[combinator].as_array() {
            return options.iter().map(kind).collect::<Vec<_>>().join(" or ");
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        return format!("one of {}", values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", "));
    }
    let base = match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(types) => types.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" or "),
        _ => "any".to_owned(),
    };
    match base.as_str() {
        "array" if schema["items"].is_object() => format!("array of {}", kind(&schema["items"])),
        // A map of objects is shown row by row (`name.<key>.field`); a map of scalars here.
        "object"
            if schema["additionalProperties"].is_object() && schema["additionalProperties"]["properties"].is_null() =>
        {
            format!("object of {}", kind(&schema["additionalProperties"]))
        }
        _ => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_nested_args_with_types_defaults_and_requirements() {
        let schema = json!({
            "type": "object",
            "required": ["registries"],
            "properties": {
                "registries": {
                    "type": "object",
                    "description": "where | to push",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {"insecure": {"type": "boolean", "default": false, "description": "plain HTTP"}}
                    }
                },
                "labels": {"oneOf": [{"type": "object", "additionalProperties": {"type": "string"}}, {"type": "string"}]},
                "tags": {"type": "array", "items": {"type": "string"}, "default": ["latest"]}
            }
        });
        let mut rows = Vec::new();
        collect_rows(&schema, "", &mut rows);
        let flat: Vec<(String, String, bool, Option<String>)> =
            rows.into_iter().map(|r| (r.name, r.kind, r.required, r.default)).collect();
        assert_eq!(
            flat,
            [
                ("labels".into(), "object of string or string".into(), false, None),
                ("registries".into(), "object".into(), true, None),
                ("registries.<key>.insecure".into(), "boolean".into(), false, Some("false".into())),
                ("tags".into(), "array of string".into(), false, Some("[\"latest\"]".into())),
            ]
        );
    }
}
