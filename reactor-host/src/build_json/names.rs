//! Image names and registries a build.json gives, checked before anything runs: otherwise a bad
//! name passes `--dry-run` and fails only once the image is built, tagged or pushed. Whether a
//! name is valid is the OCI reference grammar's say (`reactor_builtins::image_name`, over
//! `oci-spec`), after a quick scan that passes common names without compiling it (see
//! `image_name::plainly_valid`); what is added here is a hint saying what to change.

use reactor_builtins::image_name::{self, ImageName};
use serde_json::Value;

use super::describe;

/// Tags are at most this long in the reference grammar.
const MAX_TAG_CHARS: usize = 128;
/// And names (without registry and tag) at most this long.
const MAX_NAME_CHARS: usize = 255;

/// Why `image` cannot name the image to build, with what to do; `None` when it can.
pub fn image_problem(image: &str) -> Option<String> {
    if image_name::plainly_valid(image) {
        return None;
    }
    let parsed = match ImageName::parse(image) {
        Ok(parsed) => parsed,
        Err(e) => return Some(format!("{}; {}", e.message, image_hint(image))),
    };
    parsed.digest().map(|_| format!("'{image}' has a digest (@…); the built image gets a tag, so drop the digest"))
}

/// What to change in a name the grammar refused: the likeliest cause first.
fn image_hint(image: &str) -> String {
    let (name, tag) = split_tag(image.split('@').next().unwrap_or(image));
    if image.trim().is_empty() {
        "give name[:tag], e.g. \"app:1.0\"".to_owned()
    } else if image.chars().any(char::is_whitespace) {
        "remove the spaces: a name is lowercase letters, digits and '.', '_', '-', '/'".to_owned()
    } else if name.chars().count() > MAX_NAME_CHARS - "library/".len() {
        format!(
            "the name has {} characters: shorten it (at most {MAX_NAME_CHARS}, counting the `library/` docker puts before a name without '/')",
            name.chars().count()
        )
    } else if name.chars().any(|c| c.is_ascii_uppercase()) {
        "use lowercase letters in the name (a tag may have capitals)".to_owned()
    } else if let Some(tag) = tag {
        let chars = tag.chars().count();
        if chars > MAX_TAG_CHARS {
            format!("the tag has {chars} characters: give at most {MAX_TAG_CHARS}")
        } else {
            "a tag is letters, digits, '_', '.' and '-', not starting with '.' or '-'; a name is lowercase letters, digits, '.', '_', '-' and '/'".to_owned()
        }
    } else {
        "a name is lowercase letters, digits and '.', '_', '-', '/' (separators not doubled, at the start or the end), e.g. \"ns/app:1.0\"".to_owned()
    }
}

/// `name` and its tag: the text after the last ':' that follows the last '/'.
fn split_tag(name: &str) -> (&str, Option<&str>) {
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    }
}

/// Why `text` is not a registry (`host[:port]`), with what to do; `None` when it is. With
/// `scheme_allowed`, an `http://` or `https://` in front and a trailing '/' are dropped first,
/// as `pull_base_image` does with `parent_registry`.
pub fn registry_problem(text: &str, scheme_allowed: bool) -> Option<String> {
    let mut registry = text;
    if scheme_allowed {
        registry = registry.strip_prefix("https://").or_else(|| registry.strip_prefix("http://")).unwrap_or(registry);
        registry = registry.trim_end_matches('/');
    } else if text.starts_with("http://") || text.starts_with("https://") {
        return Some(format!(
            "'{text}' is not a registry: drop the scheme and give host[:port] (insecure registries are marked with `insecure`)"
        ));
    }
    let names_a_registry = registry.contains(['.', ':']) || registry == "localhost";
    let is_registry = names_a_registry
        && !registry.contains('/')
        && (image_name::plainly_valid(&format!("{registry}/probe"))
            || ImageName::parse(&format!("{registry}/probe")).is_ok_and(|name| name.registry() == Some(registry)));
    (!is_registry).then(|| {
        format!(
            "'{text}' is not a registry: give host[:port] with a '.' or a port, or 'localhost' (e.g. \"registry.example.com:5000\")"
        )
    })
}

/// Every registry `value` (a whole build.json, after the schema check) names that is not one,
/// as `/pointer: problem`: `target_registries`, `parent_registry`, and the args of the
/// `tag_and_push` (`registries`' keys) and `pull_base_image` (`parent_registry`) entries.
pub fn registry_problems(value: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |pointer: String, text: &str, scheme_allowed: bool| {
        if let Some(problem) = registry_problem(text, scheme_allowed) {
            problems.push(describe(&pointer, &problem));
        }
    };
    if let Some(targets) = value.get("target_registries").and_then(Value::as_array) {
        for (i, target) in targets.iter().enumerate() {
            if let Some(text) = target.as_str() {
                check(format!("/target_registries/{i}"), text, false);
            }
        }
    }
    if let Some(parent) = value.get("parent_registry").and_then(Value::as_str) {
        check("/parent_registry".to_owned(), parent, true);
    }
    let Some(object) = value.as_object() else { return problems };
    for (list, entries) in object.iter().filter(|(key, _)| key.ends_with("_plugins")) {
        for (i, entry) in entries.as_array().into_iter().flatten().enumerate() {
            let args = entry.get("args");
            match entry.get("name").and_then(Value::as_str) {
                Some("tag_and_push") => {
                    for key in args
                        .and_then(|a| a.get("registries"))
                        .and_then(Value::as_object)
                        .into_iter()
                        .flatten()
                        .map(|(k, _)| k)
                    {
                        let step = super::pointer_step(key);
                        check(format!("/{list}/{i}/args/registries/{step}"), key, false);
                    }
                }
                Some("pull_base_image") => {
                    if let Some(parent) = args.and_then(|a| a.get("parent_registry")).and_then(Value::as_str) {
                        check(format!("/{list}/{i}/args/parent_registry"), parent, true);
                    }
                }
                _ => {}
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_image_names_pass() {
        for good in [
            "app",
            "app:1.0",
            "ns/app:V1_x",
            "127.0.0.1:5000/ns/app:2",
            "localhost/app",
            &format!("a:{}", "t".repeat(128)),
            &"a".repeat(247),
        ] {
            assert_eq!(image_problem(good), None, "{good}");
        }
    }

    #[test]
    fn bad_image_names_say_what_to_change() {
        let cases = [
            ("App:1", "use lowercase letters"),
            ("my app:1", "remove the spaces"),
            (&format!("app:{}", "t".repeat(129)), "the tag has 129 characters: give at most 128"),
            ("app:-x", "a tag is letters, digits"),
            ("app:a$b", "a tag is letters, digits"),
            (&"a".repeat(248), "the name has 248 characters: shorten it"),
            ("app__x-", "separators not doubled"),
            ("", "give name[:tag]"),
            (&format!("app@sha256:{}", "a".repeat(64)), "drop the digest"),
        ];
        for (bad, words) in cases {
            let problem = image_problem(bad).unwrap_or_else(|| panic!("{bad} passed"));
            assert!(problem.contains(words), "{bad}: {problem}");
        }
    }

    #[test]
    fn registries_are_host_and_port() {
        for good in ["localhost", "localhost:5000", "127.0.0.1:5000", "registry.example.com", "r:5000"] {
            assert_eq!(registry_problem(good, false), None, "{good}");
        }
        assert_eq!(registry_problem("http://r.example:5000/", true), None);
        for bad in ["r2", "r.example/ns", "R EG:5000", "", "r.example:port", "-r.example"] {
            assert!(registry_problem(bad, true).is_some_and(|p| p.contains("host[:port]")), "{bad}");
        }
        assert!(registry_problem("http://r.example:5000", false).is_some_and(|p| p.contains("drop the scheme")));
    }

    #[test]
    fn every_place_a_registry_is_named_is_checked_with_its_pointer() {
        let value = serde_json::json!({
            "target_registries": ["ok.example", "bad reg"],
            "parent_registry": "nodot",
            "prebuild_plugins": [{"name": "pull_base_image", "args": {"parent_registry": "x y"}}],
            "postbuild_plugins": [{"name": "other"}, {"name": "tag_and_push", "args": {"registries": {"a/b": {}, "localhost:5000": {}}}}]
        });
        let problems = registry_problems(&value);
        let pointers: Vec<&str> = problems.iter().map(|p| p.split(':').next().unwrap_or_default()).collect();
        assert_eq!(
            pointers,
            [
                "/target_registries/1",
                "/parent_registry",
                "/prebuild_plugins/0/args/parent_registry",
                "/postbuild_plugins/1/args/registries/a~1b"
            ]
        );
    }
}
