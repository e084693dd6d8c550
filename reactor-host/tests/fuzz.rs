//! Fuzzes the host's readers of untrusted text with proptest on every `cargo test`, through
//! `reactor::fuzzing`, as the `cargo fuzz` targets `build_json` and `plugin_json` (fuzz/) do
//! for longer: the targets' seeds; JSON documents made of the keys and values reactor reads
//! (mostly well-formed, often of the wrong type), with `--substitute` values; seeds with a few
//! bytes cut and a JSON piece spliced in; and arbitrary bytes.

use proptest::prelude::*;
use reactor::fuzzing::{build_json, plugin_json};
use serde_json::{json, Map, Value};

#[path = "../../fuzz/seeds.rs"]
mod seeds;
use seeds::seeds;

/// The keys of a build.json, at any level: most of them where they belong, sometimes elsewhere.
const BUILD_JSON_KEYS: &[&str] = &[
    "image",
    "source",
    "provider",
    "uri",
    "dockerfile_path",
    "provider_params",
    "git_commit",
    "submodules",
    "git_url",
    "git_dockerfile_path",
    "prebuild_plugins",
    "buildstep_plugins",
    "prepublish_plugins",
    "postbuild_plugins",
    "exit_plugins",
    "name",
    "args",
    "required",
    "is_allowed_to_fail",
    "isolate",
    "target_registries",
    "target_registries_insecure",
    "parent_registry",
    "parent_registry_insecure",
    "dont_pull_base_image",
    "registries",
    "insecure",
    "labels",
    "url",
    "timeout",
    "unknown_key",
];

/// Keys of what a plugin sends the host: handshakes, manifests, package manifests, requests,
/// results, errors, worker lines, and the JSON Schema keywords of an args schema.
const PLUGIN_JSON_KEYS: &[&str] = &[
    "api_version",
    "protocol",
    "plugins",
    "features",
    "key",
    "phases",
    "version",
    "description",
    "args_schema",
    "allowed_to_fail",
    "requires",
    "reactor",
    "name",
    "files",
    "sha256",
    "op",
    "text",
    "labels",
    "args",
    "tags",
    "source",
    "target",
    "registry_secret_dir",
    "insecure",
    "force",
    "image",
    "command",
    "options",
    "result",
    "logs",
    "image_id",
    "offset",
    "max_bytes",
    "value",
    "digest",
    "kind",
    "message",
    "type",
    "properties",
    "required",
    "items",
    "pattern",
    "format",
    "$ref",
    "enum",
    "minimum",
    "maxLength",
    "additionalProperties",
    "oneOf",
    "$defs",
    "definitions",
    "hello",
    "request",
    "level",
    "Ok",
    "Err",
];

/// Strings reactor gives meaning to, and some that trip parsers.
const STRINGS: &[&str] = &[
    "",
    "git",
    "path",
    "svn",
    "busybox",
    "busybox:latest",
    "127.0.0.1:5000/x:1",
    "UPPER case:tag",
    "http://user:pw@h/r.git",
    "../up",
    "/abs",
    "tag_and_push",
    "pull_base_image",
    "store_metadata",
    "add_labels_in_dockerfile",
    "prebuild",
    "buildstep",
    "prepublish",
    "postbuild",
    "exit",
    "True",
    "none",
    "1.2",
    "1.2.0",
    "99.0",
    "images.pull",
    "logs.read",
    "workspace",
    "object",
    "string",
    "array",
    "integer",
    "^a+$",
    "(a*)*b",
    "[",
    "#",
    "#/$defs/x",
    "https://example.com/s.json",
    "uri",
    "date-time",
    "regex",
    "read_build_log",
    "set_build_result",
    "push_image",
    "workflow",
    "is_cancelled",
    "cancelled",
    "failed",
    "hello",
    "call",
    "log",
    "done",
    "refused",
    "\u{feff}",
    "libx.so",
    "ü ✓",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop_oneof![Just(0i64), Just(-1), Just(i64::MAX), Just(i64::MIN), any::<i64>()].prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(1.5e300)),
        prop::sample::select(STRINGS).prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
    ]
}

/// A JSON value whose objects have keys from `keys`.
fn document(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(keys), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

/// A build.json: usually a valid core (image and source) with random keys over it, and
/// `--substitute` values, encoded as the `build_json` target reads them.
fn build_json_input() -> impl Strategy<Value = Vec<u8>> {
    let substitution =
        (prop::collection::vec(prop::sample::select(BUILD_JSON_KEYS), 1..4), prop::sample::select(STRINGS))
            .prop_map(|(path, value)| format!("{}={value}", path.join(".")));
    (
        any::<bool>(),
        prop::collection::vec((prop::sample::select(BUILD_JSON_KEYS), document(BUILD_JSON_KEYS)), 0..6),
        prop::collection::vec(substitution, 0..4),
    )
        .prop_map(|(core, entries, substitutions)| {
            let mut object = Map::new();
            if core {
                object.insert("image".into(), json!("busybox"));
                object.insert("source".into(), json!({"provider": "git", "uri": "https://example.com/r.git"}));
            }
            object.extend(entries.into_iter().map(|(k, v)| (k.to_owned(), v)));
            let mut input = serde_json::to_vec(&Value::Object(object)).expect("JSON");
            for substitution in substitutions {
                input.push(0);
                input.extend_from_slice(substitution.as_bytes());
            }
            input
        })
}

/// A message from a plugin: an object of plugin keys, often with an `op`.
fn plugin_json_input() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::option::of(prop::sample::select(STRINGS)),
        prop::collection::vec((prop::sample::select(PLUGIN_JSON_KEYS), document(PLUGIN_JSON_KEYS)), 0..6),
    )
        .prop_map(|(op, entries)| {
            let mut object: Map<String, Value> = entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            if let Some(op) = op {
                object.insert("op".into(), json!(op));
            }
            serde_json::to_vec(&Value::Object(object)).expect("JSON")
        })
}

/// JSON and `--substitute` pieces that trip decoders.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(&b"null"[..]),
        Just(&b"{}"[..]),
        Just(&b"[]"[..]),
        Just(&b"\"\""[..]),
        Just(&b"-1"[..]),
        Just(&b"1e999"[..]),
        Just(&b"18446744073709551616"[..]),
        Just(&b"\"\\ud800\""[..]),
        Just(&b"\xef\xbb\xbf"[..]),
        Just(&b"\0"[..]),
        Just(&b"\0image=x"[..]),
        Just(&b"\0prebuild_plugins.a.b=none"[..]),
        Just(&b"\0source..uri=1"[..]),
        Just(&b"\0=x"[..]),
        Just(&b"\0a.b.c.d=TRUE"[..]),
        Just(&b"{\"$ref\": \"#\"}"[..]),
        Just(&b"{\"pattern\": \"(a*)*b\"}"[..]),
        Just(&b"\"op\": \"read_build_log\""[..]),
    ]
    .prop_map(<[u8]>::to_vec)
}

/// A seed cut at a random place, with a random piece spliced in.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (prop::sample::select(seeds), any::<prop::sample::Index>(), any::<prop::sample::Index>(), piece()).prop_map(
        |(seed, cut, rest, piece)| {
            // A few bytes cut: most inputs stay close to their seed.
            let cut = cut.index(seed.len() + 1);
            let rest = cut + rest.index((seed.len() - cut).min(8) + 1);
            [&seed[..cut], &piece[..], &seed[rest..]].concat()
        },
    )
}

#[test]
fn build_json_seeds() {
    seeds("build_json").iter().for_each(|seed| build_json(seed));
}

#[test]
fn plugin_json_seeds() {
    seeds("plugin_json").iter().for_each(|seed| plugin_json(seed));
}

proptest! {
    // 300 cases per property on every run; PROPTEST_CASES=100000 for a longer campaign.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(300),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn build_json_documents(input in build_json_input()) {
        build_json(&input);
    }

    #[test]
    fn plugin_json_documents(input in plugin_json_input()) {
        plugin_json(&input);
    }

    #[test]
    fn build_json_mutated(input in mutated(seeds("build_json"))) {
        build_json(&input);
    }

    #[test]
    fn build_json_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        build_json(&bytes);
    }

    #[test]
    fn plugin_json_mutated(input in mutated(seeds("plugin_json"))) {
        plugin_json(&input);
    }

    #[test]
    fn plugin_json_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        plugin_json(&bytes);
    }
}
