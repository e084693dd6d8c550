//! The catalogue of bad input: one table, one row per case (input → exit code → the key words of
//! the message), run by one test, many rows at a time. Most rows are dry runs or fail before
//! anything runs, so the table takes seconds; the few that build say so in their name.
//!
//! To add a case, add a row to [`rows`]: `Row::new(name, build.json text, code, key words)`, then
//! what differs from a dry run of that build.json (`.opts` after `build json`, `.global` before
//! `build`, `.argv` for the whole command line, `.files`, `.setup`, `.env`, `.check`). In args,
//! file texts, env values and the build.json, `{dir}` is the row's own directory and `{image}` a unique image
//! name (removed afterwards). Every row also checks: no panic, the key words in stderr, at most
//! one ERROR line for a refusal (`.errors(n)` says otherwise), and nothing left in the row's
//! `TMPDIR`. The README's "N bad inputs" must say how many rows there are.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::util::*;

/// A build.json with nothing wrong in it (a dry run of it succeeds).
const GOOD: &str = r#"{"image": "app:1", "source": {"provider": "path", "uri": "ctx"}}"#;
/// A context for it.
const CTX: &[(&str, &str)] = &[("ctx/Dockerfile", "FROM busybox:latest\n")];

/// A row's own check of its directory and run; `Err` says what is wrong.
type Check = fn(&Path, &Run) -> Result<(), String>;

/// One case of the catalogue.
struct Row {
    name: String,
    /// The text of `build.json` in the row's directory (written as bytes; `None`: no file).
    build_json: Option<Vec<u8>>,
    /// Other files to write, relative to the row's directory.
    files: Vec<(String, String)>,
    /// reactor's command line.
    argv: Vec<String>,
    env: Vec<(String, String)>,
    /// Runs in the row's directory before reactor does (special files, permissions).
    setup: Option<fn(&Path)>,
    code: i32,
    /// What stderr must contain.
    words: Vec<String>,
    /// How many ERROR lines there must be (by default at most one when the run failed).
    errors: Option<usize>,
    /// Further checks on the row's directory and the run; an `Err` fails the row.
    check: Option<Check>,
    /// Whether `{image}` is built and must be removed afterwards.
    builds: bool,
}

impl Row {
    /// A dry run of `build.json` holding `text`, with [`CTX`] beside it.
    fn new(name: &str, text: impl Into<String>, code: i32, words: &[&str]) -> Row {
        Row {
            name: name.to_owned(),
            build_json: Some(text.into().into_bytes()),
            files: CTX.iter().map(|(p, c)| (p.to_string(), c.to_string())).collect(),
            argv: ["build", "json", "--dry-run", "build.json"].map(String::from).to_vec(),
            env: Vec::new(),
            setup: None,
            code,
            words: words.iter().map(|w| w.to_string()).collect(),
            errors: None,
            check: None,
            builds: false,
        }
    }

    /// The build.json's bytes, for text that is not UTF-8.
    fn bytes(mut self, bytes: &[u8]) -> Row {
        self.build_json = Some(bytes.to_vec());
        self
    }

    /// Options after `build json`.
    fn opts(mut self, opts: &[&str]) -> Row {
        let at = self.argv.iter().position(|a| a == "json").map_or(0, |i| i + 1);
        self.argv.splice(at..at, opts.iter().map(|o| o.to_string()));
        self
    }

    /// Global options, before `build`.
    fn global(mut self, opts: &[&str]) -> Row {
        self.argv.splice(0..0, opts.iter().map(|o| o.to_string()));
        self
    }

    /// The whole command line.
    fn argv(mut self, argv: &[&str]) -> Row {
        self.argv = argv.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Not a dry run: the row builds (or tries to).
    fn for_real(mut self) -> Row {
        self.argv.retain(|a| a != "--dry-run");
        self.builds = true;
        self
    }

    fn files(mut self, files: &[(&str, &str)]) -> Row {
        self.files.extend(files.iter().map(|(p, c)| (p.to_string(), c.to_string())));
        self
    }

    fn setup(mut self, setup: fn(&Path)) -> Row {
        self.setup = Some(setup);
        self
    }

    fn env(mut self, key: &str, value: &str) -> Row {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    fn errors(mut self, n: usize) -> Row {
        self.errors = Some(n);
        self
    }

    fn check(mut self, check: Check) -> Row {
        self.check = Some(check);
        self
    }
}

/// A build.json with the `source` of [`GOOD`] and `fields` (JSON object members) added.
fn with(fields: &str) -> String {
    format!(r#"{{"source": {{"provider": "path", "uri": "ctx"}}, {fields}}}"#)
}

/// [`GOOD`] with `fields` added.
fn good_with(fields: &str) -> String {
    format!(r#"{{"image": "app:1", "source": {{"provider": "path", "uri": "ctx"}}, {fields}}}"#)
}

/// The catalogue.
fn rows() -> Vec<Row> {
    let submitter = plugin("logs_submitter");
    let submitter = submitter.as_str();
    let mut rows = vec![
        // Malformed JSON.
        Row::new("empty file", "", 2, &["build.json: not valid JSON: EOF while parsing a value at line 1 column 0"]),
        Row::new("unclosed object", "{", 2, &["not valid JSON: EOF while parsing an object"]),
        Row::new("missing comma", "{\n \"image\": \"x\"\n \"git_url\": \"y\"\n}", 2, &["not valid JSON: expected `,` or `}` at line 3 column 2"]),
        Row::new("trailing comma", r#"{"image": "x",}"#, 2, &["not valid JSON: trailing comma at line 1"]),
        Row::new("single quotes", "{'image': 'x'}", 2, &["not valid JSON: key must be a string at line 1 column 2"]),
        Row::new("a comment", "// build\n{}", 2, &["not valid JSON: expected value at line 1 column 1"]),
        Row::new("NaN", r#"{"image": NaN}"#, 2, &["not valid JSON: expected value at line 1 column 11"]),
        Row::new("two documents", "{} {}", 2, &["not valid JSON: trailing characters at line 1 column 4"]),
        Row::new("a number too large", r#"{"image": 1e999}"#, 2, &["not valid JSON: number out of range"]),
        Row::new("nested 100000 deep", "[".repeat(100_000), 2, &["not valid JSON: recursion limit exceeded"]),
        Row::new("an array", "[]", 2, &["build.json: /: [] is not of type \"object\""]),
        Row::new("a string", "\"build\"", 2, &["/: \"build\" is not of type \"object\""]),
        Row::new("null", "null", 2, &["/: null is not of type \"object\""]),
        Row::new("not UTF-8", "", 2, &["cannot read build.json: not UTF-8 text"]).bytes(b"{\"image\": \"\xff\"}"),
        Row::new("UTF-16", "", 2, &["cannot read build.json: it is UTF-16 text", "save it as UTF-8"])
            .bytes(&[0xff, 0xfe, b'{', 0, b'}', 0]),
        Row::new("a UTF-8 BOM is read, with a warning", format!("\u{feff}{GOOD}"), 0, &["WARN", "build.json: the file starts with a UTF-8 byte-order mark (BOM), which is not JSON: save the file as UTF-8 without BOM"]),
        Row::new("a UTF-8 BOM under --strict", format!("\u{feff}{GOOD}"), 2, &["byte-order mark (BOM)", "(--strict)"]).opts(&["--strict"]),
        Row::new("a build.json that never ends (/dev/zero)", "", 2, &["cannot read /dev/zero: it is larger than 16 MiB; is it the right file?"])
            .argv(&["build", "json", "--dry-run", "/dev/zero"]),
        Row::new("a build.json that is not there", "", 2, &["cannot read nowhere/build.json: No such file or directory"])
            .argv(&["build", "json", "nowhere/build.json"]),
        Row::new("a build.json that is a directory", "", 2, &["cannot read ctx: Is a directory"]).argv(&["build", "json", "ctx"]),
        // Duplicate keys and unknown keys: warnings, errors under --strict.
        Row::new("a duplicate key", "{\"image\": \"a:1\",\n \"source\": {\"provider\": \"path\", \"uri\": \"ctx\"},\n \"image\": \"b:1\"}", 0,
            &["WARN", "build.json: /image: line 3: the key \"image\" is given again (first on line 1); the last one is used", "image: b:1"]),
        Row::new("a duplicate nested key", "{\"image\": \"a:1\", \"source\": {\"provider\": \"path\",\n \"uri\": \"x\",\n \"uri\": \"ctx\"}}", 0,
            &["/source/uri: line 3: the key \"uri\" is given again (first on line 2)"]),
        Row::new("a duplicate key under --strict", "{\"image\": \"a:1\", \"image\": \"b:1\", \"source\": {\"provider\": \"path\", \"uri\": \"ctx\"}}", 2,
            &["/image: line 1: the key \"image\" is given again", "(--strict)"]).opts(&["--strict"]),
        Row::new("an unknown key", good_with(r#""postbild_plugins": []"#), 0, &["WARN", "ignoring unknown key `postbild_plugins` (did you mean `postbuild_plugins`?)"]),
        Row::new("a clean build.json under --strict", GOOD, 0, &["plan for build.json"]).opts(&["--strict"]),
        Row::new("an unknown key under --strict", good_with(r#""postbild_plugins": []"#), 2,
            &["build.json: /postbild_plugins: unknown key (did you mean `postbuild_plugins`?) (--strict)"]).opts(&["--strict"]),
        // The source, and the plugin lists, as a whole.
        Row::new("no source", r#"{"image": "x"}"#, 2, &["/source: required"]),
        Row::new("source and git_url", good_with(r#""git_url": "r""#), 2, &["give either `source` or the older `git_url`, not both"]),
        Row::new("no image", with(r#""git_commit": "x""#), 2, &["/: \"image\" is a required property"]),
        Row::new("an empty image", with(r#""image": """#), 2, &["/image: \"\" is shorter than 1 character"]),
        Row::new("an unknown plugin", good_with(r#""postbuild_plugins": [{"name": "no_such"}]"#), 2,
            &["/postbuild_plugins/0: no such plugin 'no_such' (available for postbuild: "]),
        Row::new("an unknown plugin not required", good_with(r#""postbuild_plugins": [{"name": "no_such", "required": false}]"#), 0,
            &["WARN", "skipping it (/postbuild_plugins/0 has \"required\": false)"]),
        Row::new("a plugin in a phase it does not run in", good_with(r#""prebuild_plugins": [{"name": "tag_and_push", "args": {"registries": {}}}]"#), 2,
            &["/prebuild_plugins/0: plugin 'tag_and_push' cannot run in prebuild (it runs in: postbuild)"]),
        Row::new("plugin args breaking its schema", good_with(r#""postbuild_plugins": [{"name": "tag_and_push", "args": {}}]"#), 2,
            &["/postbuild_plugins/0/args: \"registries\" is a required property (plugin 'tag_and_push')"]),
        // Image names.
        Row::new("an image name in upper case", with(r#""image": "MyApp:1""#), 2, &["build.json: /image: 'MyApp:1' is not a valid image reference", "use lowercase letters in the name"]),
        Row::new("an image name with a space", with(r#""image": "my app:1""#), 2, &["/image: 'my app:1' is not a valid image reference", "remove the spaces"]),
        Row::new("an image tag of 129 characters", with(&format!(r#""image": "app:{}""#, "t".repeat(129))), 2, &["/image: 'app:ttt", "the tag has 129 characters: give at most 128"]),
        Row::new("an image tag of 128 characters", with(&format!(r#""image": "app:{}""#, "t".repeat(128))), 0, &["image: app:ttt"]),
        Row::new("an image tag with a bad character", with(r#""image": "app:v1$""#), 2, &["/image: 'app:v1$' is not a valid image reference", "a tag is letters, digits, '_', '.' and '-'"]),
        Row::new("an image tag starting with '-'", with(r#""image": "app:-1""#), 2, &["/image: 'app:-1' is not a valid image reference"]),
        Row::new("an image name ending in '-'", with(r#""image": "app-""#), 2, &["/image: 'app-' is not a valid image reference", "separators not doubled"]),
        Row::new("an image name of 248 characters", with(&format!(r#""image": "{}""#, "a".repeat(248))), 2, &["the name has 248 characters: shorten it"]),
        Row::new("an image name of 247 characters", with(&format!(r#""image": "{}""#, "a".repeat(247))), 0, &["image: aaa"]),
        Row::new("an image name with a digest", with(&format!(r#""image": "app@sha256:{}""#, "a".repeat(64))), 2, &["/image: 'app@sha256:", "drop the digest"]),
        Row::new("an image name with a registry", with(r#""image": "127.0.0.1:5000/ns/app:1""#), 0, &["image: 127.0.0.1:5000/ns/app:1"]),
        Row::new("build path --image in upper case", "", 2, &["command line: /image: 'Bad:1' is not a valid image reference"])
            .argv(&["build", "path", "--dry-run", "--uri", "ctx", "--image", "Bad:1"]),
        Row::new("build git --image with a space", "", 2, &["/image: 'a b' is not a valid image reference"])
            .argv(&["build", "git", "--dry-run", "--uri", "https://example.com/r.git", "--image", "a b"]),
        // Registries.
        Row::new("a target registry without '.', ':' or localhost", good_with(r#""target_registries": ["registry"]"#), 2,
            &["/target_registries/0: 'registry' is not a registry: give host[:port] with a '.' or a port, or 'localhost'"]),
        Row::new("a target registry with a scheme", good_with(r#""target_registries": ["127.0.0.1:5000", "http://r.example"]"#), 2,
            &["/target_registries/1: 'http://r.example' is not a registry: drop the scheme"]),
        Row::new("a target registry with a path", good_with(r#""target_registries": ["r.example/ns"]"#), 2, &["/target_registries/0: 'r.example/ns' is not a registry"]),
        Row::new("a target registry with a space", good_with(r#""target_registries": ["r.example :5000"]"#), 2, &["/target_registries/0: 'r.example :5000' is not a registry"]),
        Row::new("a parent registry with a bad port", good_with(r#""parent_registry": "r.example:http""#), 2, &["/parent_registry: 'r.example:http' is not a registry"]),
        Row::new("a parent registry with a scheme is fine", good_with(r#""parent_registry": "http://127.0.0.1:5000/""#), 0, &["pull_base_image"]),
        Row::new("a tag_and_push registry", good_with(r#""postbuild_plugins": [{"name": "tag_and_push", "args": {"registries": {"localhost:5000": {}, "bad/reg": {}}}}]"#), 2,
            &["/postbuild_plugins/0/args/registries/bad~1reg: 'bad/reg' is not a registry"]),
        Row::new("a pull_base_image parent_registry", good_with(r#""prebuild_plugins": [{"name": "pull_base_image", "args": {"parent_registry": "parent"}}]"#), 2,
            &["/prebuild_plugins/0/args/parent_registry: 'parent' is not a registry"]),
        Row::new("build path --target-registries", "", 2, &["command line: /target_registries/0: 'nodot' is not a registry"])
            .argv(&["build", "path", "--dry-run", "--uri", "ctx", "--image", "app", "--target-registries", "nodot"]),
        Row::new("every bad name at once", with(r#""image": "A", "target_registries": ["x"], "parent_registry": "y""#), 2,
            &["/target_registries/0: 'x'", "/parent_registry: 'y'", "/image: 'A'"]),
        // --substitute.
        Row::new("--substitute a nested typo", GOOD, 2,
            &["--substitute source.provider_params.git_comit=v2: `source.provider_params.git_comit` is neither in the build.json nor in its schema (did you mean `source.provider_params.git_commit`?)"])
            .opts(&["--substitute", "source.provider_params.git_comit=v2"]),
        Row::new("--substitute an unknown list", GOOD, 2, &["--substitute fooboo_plugins.x.y=1: `fooboo_plugins` is neither in the build.json nor in its schema"])
            .opts(&["--substitute", "fooboo_plugins.x.y=1"]),
        Row::new("--substitute a top-level typo", GOOD, 2, &["`imgae` is neither in the build.json nor in its schema (did you mean `image`?)"])
            .opts(&["--substitute", "imgae=app:2"]),
        Row::new("--substitute into a source key the schema closes", GOOD, 2, &["`source.branch` is neither in the build.json nor in its schema"])
            .opts(&["--substitute", "source.branch=main"]),
        Row::new("--substitute a built-in's arg typo", good_with(r#""prebuild_plugins": [{"name": "add_labels_in_dockerfile", "args": {"labels": {}}}]"#), 2,
            &["/prebuild_plugins/0/args: --substitute prebuild_plugins.add_labels_in_dockerfile.lables=x: the plugin has no arg `lables` (did you mean `labels`?)"])
            .opts(&["--substitute", "prebuild_plugins.add_labels_in_dockerfile.lables=x"]),
        Row::new("--substitute a plugin that is not listed", good_with(r#""prebuild_plugins": [{"name": "assert_labels"}]"#), 2,
            &["plugin 'asert_labels' is listed 0 times in `prebuild_plugins`; it must be listed once (did you mean `assert_labels`?)"])
            .opts(&["--substitute", "prebuild_plugins.asert_labels.required_labels=x"]),
        Row::new("--substitute a list the build has not", GOOD, 2, &["--substitute exit_plugins.x.y=1: the build has no `exit_plugins` list"])
            .opts(&["--substitute", "exit_plugins.x.y=1"]),
        Row::new("--substitute without =", GOOD, 2, &["--substitute image: expected KEY=VALUE"]).opts(&["--substitute", "image"]),
        Row::new("--substitute an empty key", GOOD, 2, &["--substitute source..uri=x: empty key"]).opts(&["--substitute", "source..uri=x"]),
        Row::new("--substitute into a string", GOOD, 2, &["--substitute image.tag=1: `image` is not an object"]).opts(&["--substitute", "image.tag=1"]),
        Row::new("--substitute a wrong type", GOOD, 2, &["/source/submodules: \"yes\" is not of type \"boolean\""]).opts(&["--substitute", "source.submodules=yes"]),
        Row::new("--substitute what the schema knows", GOOD, 0, &["commit v2"]).opts(&["--substitute", "source.provider_params.git_commit=v2"]),
        Row::new("--substitute a new arg of a listed plugin", good_with(r#""exit_plugins": [{"name": "store_metadata"}]"#), 0, &["\"path\":\"out.json\""])
            .opts(&["--substitute", "exit_plugins.store_metadata.path=out.json"]),
        // dockerfile_path.
        Row::new("an absolute dockerfile_path", r#"{"image": "x", "source": {"provider": "git", "uri": "https://example.com/r.git", "dockerfile_path": "/etc/"}}"#, 2,
            &["/source/dockerfile_path: '/etc/' is absolute: give the Dockerfile (or its directory) relative to the source's root"]),
        Row::new("a dockerfile_path with ..", r#"{"image": "x", "source": {"provider": "git", "uri": "https://example.com/r.git", "dockerfile_path": "a/../../Dockerfile"}}"#, 2,
            &["/source/dockerfile_path: 'a/../../Dockerfile' has '..': the Dockerfile must be inside the source"]),
        Row::new("a git_dockerfile_path with .. is refused before the clone", r#"{"image": "x", "git_url": "nowhere", "git_dockerfile_path": "../"}"#, 2,
            &["/git_dockerfile_path: '../' has '..'"]).for_real(),
        Row::new("build path --df-path with ..", "", 2, &["command line: /source/dockerfile_path: '../x' has '..'"])
            .argv(&["build", "path", "--uri", "ctx", "--image", "app", "--df-path", "../x"]),
        Row::new("a Dockerfile symlinked out of the source", r#"{"image": "{image}", "source": {"provider": "path", "uri": "linked"}}"#, 1,
            &["the Dockerfile Dockerfile is outside the source: Dockerfile is a symlink to {dir}/ctx/Dockerfile"])
            .setup(|dir| {
                std::fs::create_dir(dir.join("linked")).expect("mkdir");
                std::os::unix::fs::symlink(dir.join("ctx/Dockerfile"), dir.join("linked/Dockerfile")).expect("symlink");
            })
            .for_real()
            .errors(2),
        // Where the source is: said once, with the end of the build on its own line.
        Row::new("a path source that is not there (said once)", r#"{"image": "{image}", "source": {"provider": "path", "uri": "nowhere"}}"#, 1,
            &["ERROR reactor::workflow] source: the path source ./nowhere cannot be used: no such directory (check source.uri)", "build of {image} failed (phase source)"])
            .for_real()
            .errors(2)
            .check(|_, run| once(run, "the path source ./nowhere cannot be used")),
        Row::new("a FIFO in a path source is left out", r#"{"image": "{image}", "source": {"provider": "path", "uri": "ctx"}}"#, 0,
            &["WARN", "ctx/pipe is a FIFO: not sent with the build context"])
            .setup(|dir| {
                let made = std::process::Command::new("mkfifo").arg(dir.join("ctx/pipe")).status().expect("mkfifo");
                assert!(made.success(), "mkfifo");
            })
            .for_real(),
        // --metadata-file.
        Row::new("--metadata-file naming the build.json", GOOD, 2, &["--metadata-file build.json: is the build.json itself, which the result document would overwrite"])
            .opts(&["--metadata-file", "build.json"])
            .check(|dir, _| unchanged(&dir.join("build.json"), GOOD)),
        Row::new("--metadata-file naming the build.json by another path", GOOD, 2, &["--metadata-file ./ctx/../build.json: is the build.json itself"])
            .opts(&["--metadata-file", "./ctx/../build.json"])
            .check(|dir, _| unchanged(&dir.join("build.json"), GOOD)),
        Row::new("--metadata-file naming a symlink to the build.json", GOOD, 2, &["--metadata-file link.json: is the build.json itself"])
            .setup(|dir| std::os::unix::fs::symlink(dir.join("build.json"), dir.join("link.json")).expect("symlink"))
            .opts(&["--metadata-file", "link.json"])
            .check(|dir, _| unchanged(&dir.join("build.json"), GOOD)),
        Row::new("--metadata-file naming a directory", GOOD, 2, &["--metadata-file ctx: is a directory; name a file, e.g. ctx/result.json"])
            .opts(&["--metadata-file", "ctx"])
            .check(|dir, _| no_partial(dir)),
        Row::new("refused input writes the result document", with(r#""image": "A""#), 2, &["/image: 'A'"])
            .opts(&["--metadata-file", "out/result.json"])
            .check(|dir, _| {
                let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("out/result.json")).map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
                (doc["failure"]["phase"] == "validation" && doc["exit_code"] == 2).then_some(()).ok_or(format!("{doc}"))
            }),
        Row::new("a result document that cannot be written after a successful build", r#"{"image": "{image}", "source": {"provider": "path", "uri": "ctx"}}"#, 4,
            &["the build succeeded, but the result document cannot be written to a-file/result.json", "(exit 4)"])
            .files(&[("a-file", "not a directory")])
            .opts(&["--metadata-file", "a-file/result.json"])
            .for_real()
            .check(|dir, _| no_partial(dir)),
        // Plugin files.
        Row::new("--load-plugin of a missing file", GOOD, 3, &["--load-plugin ./missing.so: no such file"]).global(&["--load-plugin", "./missing.so"]),
        Row::new("--load-plugin of a text file", GOOD, 3, &["libfake.so: not a loadable shared object"])
            .files(&[("libfake.so", "#!/bin/sh\necho not a library\n")])
            .global(&["--load-plugin", "libfake.so"]),
        Row::new("--load-plugin of an empty file", GOOD, 3, &["libempty.so: not a loadable shared object"])
            .files(&[("libempty.so", "")])
            .global(&["--load-plugin", "libempty.so"]),
        Row::new("--load-plugin of a directory", GOOD, 3, &["--load-plugin ctx"]).global(&["--load-plugin", "ctx"]),
        Row::new("--load-plugin of a library that is no plugin", GOOD, 3, &["a shared object, but not a reactor plugin"])
            .global(&["--load-plugin", system_library()]),
        Row::new("--load-plugin of a file others may write", GOOD, 3, &["libopen.so: refused", "chmod go-w"])
            .files(&[("libopen.so", "")])
            .setup(|dir| std::fs::set_permissions(dir.join("libopen.so"), std::fs::Permissions::from_mode(0o666)).expect("chmod"))
            .global(&["--load-plugin", "libopen.so"]),
        Row::new("two bad plugin files", GOOD, 3, &["--load-plugin a.so: no such file", "--load-plugin b.so: no such file"])
            .global(&["--load-plugin", "a.so", "--load-plugin", "b.so"])
            .errors(2),
        Row::new("a bad build.json and a bad plugin file", "{", 3, &["not valid JSON", "--load-plugin a.so: no such file"])
            .global(&["--load-plugin", "a.so"])
            .errors(2),
        Row::new("a --plugin-dir that does not exist", GOOD, 3, &["--plugin-dir", "nowhere"]).global(&["--plugin-dir", "nowhere"]),
        Row::new("a truncated real plugin (the first 1 MB)", GOOD, 3,
            &["libcut.so: not a loadable shared object: the file is truncated: its segment", "reinstall it"])
            .setup(|dir| write_plugin(dir, |bytes| bytes.truncate(1_000_000)))
            .global(&["--load-plugin", "libcut.so"]),
        Row::new("a plugin built for another architecture", GOOD, 3, &["libcut.so: not a loadable shared object: an ELF file for", "use a build of the plugin for"])
            .setup(|dir| write_plugin(dir, |bytes| {
                let other: u16 = if std::env::consts::ARCH == "aarch64" { 62 } else { 183 };
                bytes[18..20].copy_from_slice(&other.to_le_bytes());
            }))
            .global(&["--load-plugin", "libcut.so"]),
        Row::new("a plugin marked 32-bit", GOOD, 3, &["libcut.so: not a loadable shared object: a 32-bit ELF file"])
            .setup(|dir| write_plugin(dir, |bytes| bytes[4] = 1))
            .global(&["--load-plugin", "libcut.so"]),
        // Plugin args.
        Row::new("a secret arg that breaks its schema", good_with(r#""postbuild_plugins": [{"name": "run_in_image", "args": {"command": "true", "secret_env": {"TOKEN": 73219}}}]"#), 2,
            &["/postbuild_plugins/0/args/secret_env/TOKEN", "***"])
            .check(|_, run| (!run.stderr.contains("73219")).then_some(()).ok_or_else(|| "the secret is shown".to_owned())),
        Row::new("logs_submitter's timeout not a number", good_with(r#""postbuild_plugins": [{"name": "logs_submitter", "args": {"url": "http://127.0.0.1:9/", "timeout": "soon"}}]"#), 2,
            &["/postbuild_plugins/0/args/timeout"])
            .global(&["--load-plugin", submitter]),
        Row::new("notify_webhook's timeout negative", good_with(r#""exit_plugins": [{"name": "notify_webhook", "args": {"url": "http://127.0.0.1:9/", "timeout": -1}}]"#), 2,
            &["/exit_plugins/0/args/timeout"]),
        // Git sources that are not there.
        Row::new("a git source that does not exist", r#"{"image": "{image}", "source": {"provider": "git", "uri": "{dir}/nope"}}"#, 1,
            &["the git repository", "does not exist", "check source.uri"])
            .for_real()
            .errors(2),
        Row::new("a git source that is no repository", r#"{"image": "{image}", "source": {"provider": "git", "uri": "{dir}/ctx"}}"#, 1,
            &["is not a git repository", "check source.uri"])
            .for_real()
            .errors(2),
        // The command line and the environment.
        Row::new("--cancel-grace that is not a number", GOOD, 2, &["'soon' is not a number of seconds"]).opts(&["--cancel-grace", "soon"]),
        Row::new("--git-timeout 0", GOOD, 2, &["--git-timeout"]).opts(&["--git-timeout", "0"]),
        Row::new("REACTOR_GIT_TIMEOUT not a number", GOOD, 2, &["--git-timeout"]).env("REACTOR_GIT_TIMEOUT", "abc"),
        Row::new("--exit-timeout negative", GOOD, 2, &["'-1' is not a number of seconds"]).opts(&["--exit-timeout=-1"]),
        Row::new("--method other than here", GOOD, 2, &["invalid value 'orchestrator' for '--method"]).opts(&["--method", "orchestrator"]),
        Row::new("DOCKER_HOST pointing at nothing", r#"{"image": "{image}", "source": {"provider": "path", "uri": "ctx"}}"#, 1,
            &["cannot reach the Docker engine at unix:///nonexistent/reactor.sock"])
            .env("DOCKER_HOST", "unix:///nonexistent/reactor.sock")
            .for_real()
            .errors(2),
        // Choosing the engine (see tests/engines_remote.rs for the TLS engine's errors).
        Row::new("--context naming no docker context", GOOD, 1, &["no docker context 'nope' (chosen by --context nope)", "known contexts: default"])
            .global(&["--context", "nope"])
            .env("DOCKER_CONFIG", "{dir}/docker-config"),
        Row::new("DOCKER_CONTEXT naming no docker context", GOOD, 1, &["no docker context 'gone' (chosen by DOCKER_CONTEXT=gone)", "known contexts: default"])
            .env("DOCKER_CONTEXT", "gone")
            .env("DOCKER_CONFIG", "{dir}/docker-config"),
        Row::new("config.json's currentContext naming no context", GOOD, 1, &["no docker context 'old'", "currentContext old in config.json"])
            .files(&[("docker-config/config.json", r#"{"currentContext": "old"}"#)])
            .env("DOCKER_CONFIG", "{dir}/docker-config"),
        Row::new("config.json that is not JSON", GOOD, 1, &["cannot read", "docker-config/config.json"])
            .files(&[("docker-config/config.json", "{")])
            .env("DOCKER_CONFIG", "{dir}/docker-config"),
        Row::new("a context with SkipTLSVerify", GOOD, 1, &["docker context 'lax'", "SkipTLSVerify", "put the engine's CA"])
            .files(&[(
                "docker-config/contexts/meta/b11e23303e7d8bc69ecf65d611409528002d7a0151abbd93de3d325908d69498/meta.json",
                r#"{"Name": "lax", "Endpoints": {"docker": {"Host": "tcp://127.0.0.1:2376", "SkipTLSVerify": true}}}"#,
            )])
            .global(&["--context", "lax"])
            .env("DOCKER_CONFIG", "{dir}/docker-config"),
        Row::new("-H with a scheme reactor does not speak", GOOD, 1, &["engine URL npipe:////./pipe/docker_engine", "does not speak npipe://"])
            .global(&["-H", "npipe:////./pipe/docker_engine"]),
        Row::new("DOCKER_HOST without a scheme", GOOD, 1, &["engine URL 127.0.0.1:2375", "it has no scheme"]).env("DOCKER_HOST", "127.0.0.1:2375"),
        Row::new("-H and --context together", GOOD, 2, &["'--host <URL>' cannot be used with '--context <NAME>'"])
            .global(&["-H", "unix:///x.sock", "--context", "default"]),
        Row::new("a password in the engine URL is not shown", GOOD, 1, &["ftp://***@host:2375", "does not speak ftp://"])
            .global(&["-H", "ftp://me:hunter2@host:2375"])
            .check(|_, run| if run.stderr.contains("hunter2") { Err("the password is shown".into()) } else { Ok(()) }),
        Row::new("DOCKER_TLS_VERIFY with no ca.pem in DOCKER_CERT_PATH", r#"{"image": "{image}", "source": {"provider": "path", "uri": "ctx"}}"#, 1,
            &["TLS with the Docker engine at tcp://127.0.0.1:2376 failed: there is no ca.pem in", "(from DOCKER_CERT_PATH)"])
            .env("DOCKER_HOST", "tcp://127.0.0.1:2376")
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", "{dir}")
            .for_real()
            .errors(2),
    ];
    rows.extend(wrong_types());
    rows
}

/// A wrong type (or value) for every field of the schema, each named by its pointer.
fn wrong_types() -> Vec<Row> {
    let plugin = |field: &str| format!(r#""exit_plugins": [{{"name": "store_metadata", {field}}}]"#);
    let cases: Vec<(String, &str)> = vec![
        (r#""image": 1"#.into(), r#"/image: 1 is not of type "string""#),
        (r#""image": "x", "source": "ctx""#.into(), r#"/source: "ctx" is not of type "object""#),
        (r#""image": "x", "source": {"provider": "svn", "uri": "r"}"#.into(), "/source/provider: "),
        (
            r#""image": "x", "source": {"provider": "git", "uri": 1}"#.into(),
            r#"/source/uri: 1 is not of type "string""#,
        ),
        (r#""image": "x", "source": {"provider": "git"}"#.into(), r#"/source: "uri" is a required property"#),
        (r#""image": "x", "source": {"uri": "r"}"#.into(), r#"/source: "provider" is a required property"#),
        (
            r#""image": "x", "source": {"provider": "git", "uri": "r", "dockerfile_path": 1}"#.into(),
            r#"/source/dockerfile_path: 1 is not of type "string""#,
        ),
        (
            r#""image": "x", "source": {"provider": "git", "uri": "r", "submodules": "yes"}"#.into(),
            r#"/source/submodules: "yes" is not of type "boolean""#,
        ),
        (
            r#""image": "x", "source": {"provider": "git", "uri": "r", "provider_params": []}"#.into(),
            r#"/source/provider_params: [] is not of type "object""#,
        ),
        (
            r#""image": "x", "source": {"provider": "git", "uri": "r", "provider_params": {"git_commit": 1}}"#.into(),
            r#"/source/provider_params/git_commit: 1 is not of type "string""#,
        ),
        (
            r#""image": "x", "source": {"provider": "git", "uri": "r", "branch": "main"}"#.into(),
            "/source: Additional properties are not allowed ('branch' was unexpected)",
        ),
        (r#""image": "x", "git_url": 7"#.into(), r#"/git_url: 7 is not of type "string""#),
        (r#""image": "x", "git_url": "r", "git_commit": """#.into(), r#"/git_commit: "" is shorter than 1 character"#),
        (
            r#""image": "x", "git_url": "r", "git_dockerfile_path": []"#.into(),
            r#"/git_dockerfile_path: [] is not of type "string""#,
        ),
        (
            r#""image": "x", "git_url": "r", "target_registries": "r:5000""#.into(),
            r#"/target_registries: "r:5000" is not of type "array""#,
        ),
        (
            r#""image": "x", "git_url": "r", "target_registries": [5000]"#.into(),
            r#"/target_registries/0: 5000 is not of type "string""#,
        ),
        (
            r#""image": "x", "git_url": "r", "target_registries_insecure": "yes""#.into(),
            "/target_registries_insecure: ",
        ),
        (
            r#""image": "x", "git_url": "r", "parent_registry": 5"#.into(),
            r#"/parent_registry: 5 is not of type "string""#,
        ),
        (r#""image": "x", "git_url": "r", "parent_registry_insecure": 1"#.into(), "/parent_registry_insecure: "),
        (r#""image": "x", "git_url": "r", "dont_pull_base_image": "maybe""#.into(), "/dont_pull_base_image: "),
        (
            r#""image": "x", "git_url": "r", "openshift_build_selflink": 1"#.into(),
            r#"/openshift_build_selflink: 1 is not of type "string""#,
        ),
        (
            r#""image": "x", "git_url": "r", "prebuild_plugins": {}"#.into(),
            r#"/prebuild_plugins: {} is not of type "array""#,
        ),
        (
            r#""image": "x", "git_url": "r", "buildstep_plugins": "docker_api""#.into(),
            r#"/buildstep_plugins: "docker_api" is not of type "array""#,
        ),
        (
            r#""image": "x", "git_url": "r", "prepublish_plugins": 1"#.into(),
            r#"/prepublish_plugins: 1 is not of type "array""#,
        ),
        (
            r#""image": "x", "git_url": "r", "postbuild_plugins": [1]"#.into(),
            r#"/postbuild_plugins/0: 1 is not of type "object""#,
        ),
        (
            r#""image": "x", "git_url": "r", "exit_plugins": [{}]"#.into(),
            r#"/exit_plugins/0: "name" is a required property"#,
        ),
        (
            format!(r#""image": "x", "git_url": "r", {}"#, r#""exit_plugins": [{"name": 1}]"#),
            r#"/exit_plugins/0/name: 1 is not of type "string""#,
        ),
        (
            format!(r#""image": "x", "git_url": "r", {}"#, r#""exit_plugins": [{"name": ""}]"#),
            r#"/exit_plugins/0/name: "" is shorter than 1 character"#,
        ),
        (
            format!(r#""image": "x", "git_url": "r", {}"#, plugin(r#""args": []"#)),
            r#"/exit_plugins/0/args: [] is not of type "object""#,
        ),
        (
            format!(r#""image": "x", "git_url": "r", {}"#, plugin(r#""required": "yes""#)),
            r#"/exit_plugins/0/required: "yes" is not of type "boolean""#,
        ),
        (
            format!(r#""image": "x", "git_url": "r", {}"#, plugin(r#""is_allowed_to_fail": 0"#)),
            r#"/exit_plugins/0/is_allowed_to_fail: 0 is not of type "boolean""#,
        ),
        (
            format!(r#""image": "x", "git_url": "r", {}"#, plugin(r#""isolate": "no""#)),
            r#"/exit_plugins/0/isolate: "no" is not of type "boolean""#,
        ),
        (
            format!(r#""image": "x", "git_url": "r", {}"#, plugin(r#""arg": {}"#)),
            "/exit_plugins/0: Additional properties are not allowed ('arg' was unexpected)",
        ),
    ];
    cases
        .into_iter()
        .map(|(fields, words)| {
            let pointer = words.split(':').next().unwrap_or(words);
            Row::new(&format!("wrong type or value at {pointer} ({fields})"), format!("{{{fields}}}"), 2, &[words])
        })
        .collect()
}

/// A shared object of the system that is no reactor plugin.
fn system_library() -> &'static str {
    ["/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/libc.so.6"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("a system library to load")
}

/// The real logs_submitter plugin, changed by `change`, as `libcut.so` in `dir`.
fn write_plugin(dir: &Path, change: fn(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(plugin("logs_submitter")).expect("read the plugin");
    change(&mut bytes);
    std::fs::write(dir.join("libcut.so"), bytes).expect("write the plugin");
}

/// `what` is in stderr exactly once.
fn once(run: &Run, what: &str) -> Result<(), String> {
    match run.stderr.matches(what).count() {
        1 => Ok(()),
        n => Err(format!("'{what}' is said {n} times, not once")),
    }
}

fn unchanged(path: &Path, text: &str) -> Result<(), String> {
    let now = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    (now == text).then_some(()).ok_or_else(|| format!("{} was changed to: {now}", path.display()))
}

/// No `*.partial` file anywhere under `dir`.
fn no_partial(dir: &Path) -> Result<(), String> {
    let left: Vec<String> = walk(dir).into_iter().filter(|p| p.contains("partial")).collect();
    left.is_empty().then_some(()).ok_or_else(|| format!("left behind: {left:?}"))
}

/// Every path under `dir`.
fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        found.push(path.display().to_string());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(walk(&path));
        }
    }
    found
}

/// Runs one row; `Err` says what was wrong.
fn run_row(row: &Row) -> Result<(), String> {
    let dir = workdir();
    let dir = dir.path();
    let image = unique("catalogue");
    let fill = |text: &str| text.replace("{dir}", &dir.display().to_string()).replace("{image}", &image);
    for (path, content) in &row.files {
        write_files(dir, &[(path.as_str(), fill(content).as_str())]);
    }
    if let Some(text) = &row.build_json {
        let text = String::from_utf8(text.clone()).map(|t| fill(&t).into_bytes()).unwrap_or_else(|e| e.into_bytes());
        std::fs::write(dir.join("build.json"), text).expect("write build.json");
    }
    if let Some(setup) = row.setup {
        setup(dir);
    }
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).expect("mkdir tmp");
    let argv: Vec<String> = row.argv.iter().map(|a| fill(a)).collect();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let tmp_text = tmp.display().to_string();
    let mut env: Vec<(&str, &str)> = vec![("TMPDIR", tmp_text.as_str())];
    let env_values: Vec<(String, String)> = row.env.iter().map(|(k, v)| (k.clone(), fill(v))).collect();
    env.extend(env_values.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let _cleanup = Images(if row.builds { vec![image.clone()] } else { Vec::new() });
    let run = reactor(dir, &argv, &env);

    let mut wrong = Vec::new();
    if run.code != Some(row.code) {
        wrong.push(format!("exit code {:?}, expected {}", run.code, row.code));
    }
    if run.stderr.contains("panicked at") {
        wrong.push("reactor panicked".to_owned());
    }
    for words in &row.words {
        let words = fill(words);
        if !run.stderr.contains(&words) && !run.stdout.contains(&words) {
            wrong.push(format!("no '{words}'"));
        }
    }
    let errors = run.errors().len();
    match row.errors {
        Some(n) if errors != n => wrong.push(format!("{errors} ERROR lines, expected {n}")),
        None if row.code != 0 && errors > 1 => wrong.push(format!("{errors} ERROR lines, expected one")),
        _ => {}
    }
    let left = walk(&tmp);
    if !left.is_empty() {
        wrong.push(format!("left in TMPDIR: {left:?}"));
    }
    if let Some(check) = row.check {
        if let Err(e) = check(dir, &run) {
            wrong.push(e);
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n  reactor {}\n--- stderr ---\n{}", wrong.join("; "), argv.join(" "), run.stderr))
    }
}

#[test]
fn every_bad_input_gets_its_exit_code_and_one_clear_line() {
    let rows = rows();
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(row) = rows.get(i) else { break };
                if let Err(why) = run_row(row) {
                    eprintln!("catalogue row {i} '{}' failed: {why}", row.name);
                    failed.lock().expect("lock").push(format!("row {i} '{}'", row.name));
                }
            });
        }
    });
    let failed = failed.into_inner().expect("lock");
    assert!(
        failed.is_empty(),
        "{} of {} rows failed (their output is above):\n{}",
        failed.len(),
        rows.len(),
        failed.join("\n")
    );
    // The README's errors section says how many there are.
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).expect("README");
    let said = format!("{} bad inputs", rows.len());
    assert!(readme.contains(&said), "the README should say \"{said}\" in its Bad input section");
}
