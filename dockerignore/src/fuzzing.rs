//! What a fuzz input means for the matcher, and what must hold for any input: the one place both
//! the `cargo fuzz` target (`fuzz/fuzz_targets/dockerignore.rs`) and the proptest run of every
//! `cargo test` (`tests/fuzz.rs`) call, so that the two fuzz the same code.
//!
//! An input is fields separated by NUL bytes: the `.dockerignore` text, then context-relative
//! paths to ask about (at most 16; a few fixed ones when there are none). Invalid UTF-8 is
//! replaced, as [`DockerIgnore::load`] does.

use crate::DockerIgnore;

/// The most paths an input asks about: more only repeat the same code.
const MAX_PATHS: usize = 16;

/// Paths asked about when the input gives none.
const DEFAULT_PATHS: [&str; 6] = ["a", "a/b", "a/b/c.txt", "./x/../y", ".dockerignore", "Dockerfile"];

/// Decodes a fuzz input (see the module's documentation) and runs [`check_dockerignore`] on it.
pub fn dockerignore(data: &[u8]) {
    let mut fields = data.split(|&b| b == 0).map(String::from_utf8_lossy);
    let text = fields.next().unwrap_or_default();
    let mut paths: Vec<String> = fields.take(MAX_PATHS).map(|p| p.into_owned()).collect();
    if paths.is_empty() {
        paths = DEFAULT_PATHS.iter().map(|p| (*p).to_owned()).collect();
    }
    check_dockerignore(&text, &paths);
}

/// Parses `text` and asks about every path and each of its ancestors; panics when an invariant
/// breaks: nothing panics inside the matcher, the context root is never excluded, and a walker
/// that prunes an excluded directory no exception may re-open loses nothing (every path below
/// such a directory is excluded too).
pub fn check_dockerignore(text: &str, paths: &[String]) {
    let Ok(ignore) = DockerIgnore::parse(text) else { return };
    assert!(!ignore.is_excluded("") && !ignore.is_excluded("."), "the root is never excluded");
    let _ = ignore.is_empty();
    for path in paths {
        let excluded = ignore.is_excluded(path);
        let _ = ignore.may_reinclude_below(path);
        let mut ancestor = path.as_str();
        while let Some((parent, _)) = ancestor.rsplit_once('/') {
            ancestor = parent;
            if ignore.is_excluded(parent) && !ignore.may_reinclude_below(parent) {
                assert!(excluded, "{path:?} is not excluded, but its excluded parent {parent:?} would be pruned");
            }
        }
    }
}
