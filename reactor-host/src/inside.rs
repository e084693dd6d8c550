//! `reactor inside-build`: where the build.json of a build run inside a container comes from,
//! as atomic-reactor 1.6's `inside-build --input path|env|auto` took it: a file in the share
//! directory the outer reactor (or a pod) mounted, or an environment variable. The build itself
//! is `build json`'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cli::Input;

/// The directory the outer side shares with the build: the build.json comes in, the result
/// document goes out.
pub const SHARE_DIR: &str = "/run/share";
/// The build.json `--input path` reads by default.
pub const BUILD_JSON_PATH: &str = "/run/share/build.json";
/// The result document, when the share directory is there to take it.
pub const RESULTS_JSON: &str = "results.json";
/// The variable `--input env` reads by default.
pub const BUILD_JSON_ENV: &str = "BUILD_JSON";

/// The build.json, as the input says.
#[derive(Debug, PartialEq)]
pub enum Resolved {
    File(PathBuf),
    /// The text of an environment variable, named for messages.
    Text {
        variable: String,
        text: String,
    },
}

/// Picks the input: `--input-arg path=FILE` and `env_name=VAR` change where `path` and `env`
/// look; `auto` takes the one that applies, and refuses when none or both do.
pub fn resolve(input: Input, input_args: &[String]) -> Result<Resolved, String> {
    resolve_with(input, input_args, |name| std::env::var(name).ok())
}

fn resolve_with(input: Input, input_args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Resolved, String> {
    let mut args = BTreeMap::new();
    for arg in input_args {
        let Some((key, value)) = arg.split_once('=') else {
            return Err(format!("inside-build: --input-arg {arg}: expected KEY=VALUE (path=FILE or env_name=VAR)"));
        };
        if !matches!(key, "path" | "env_name") {
            return Err(format!(
                "inside-build: --input-arg {arg}: unknown key '{key}'; the keys are path (for --input path) and \
                 env_name (for --input env)"
            ));
        }
        args.insert(key.to_owned(), value.to_owned());
    }
    let path = args.get("path").map_or_else(|| PathBuf::from(BUILD_JSON_PATH), PathBuf::from);
    let variable = args.get("env_name").cloned().unwrap_or_else(|| BUILD_JSON_ENV.to_owned());
    let text = env(&variable).filter(|t| !t.is_empty());
    let from_env = |text: Option<String>| match text {
        Some(text) => Ok(Resolved::Text { variable: variable.clone(), text }),
        None => Err(format!("inside-build --input env: the variable {variable} is not set or empty")),
    };
    match input {
        // A missing file is for `build json`'s reading to say, with its path.
        Input::Path => Ok(Resolved::File(path)),
        Input::Env => from_env(text),
        Input::Auto => match (path.is_file(), text) {
            (true, None) => Ok(Resolved::File(path)),
            (false, Some(text)) => from_env(Some(text)),
            (true, Some(_)) => Err(format!(
                "inside-build --input auto: both {} and ${variable} hold a build.json; pass --input path or --input env",
                path.display()
            )),
            (false, None) => Err(format!(
                "inside-build --input auto: found no build.json (neither {} nor ${variable}); pass --input path or \
                 --input env, with --input-arg path=FILE or env_name=VAR",
                path.display()
            )),
        },
    }
}

/// `/run/share/results.json` when `/run/share` is a directory this process may write in.
pub fn default_metadata_file() -> Option<PathBuf> {
    writable_dir(Path::new(SHARE_DIR)).then(|| Path::new(SHARE_DIR).join(RESULTS_JSON))
}

fn writable_dir(dir: &Path) -> bool {
    dir.is_dir() && rustix::fs::access(dir, rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn path_and_env_take_their_defaults_or_the_input_args() {
        let none = |_: &str| None;
        assert_eq!(resolve_with(Input::Path, &[], none), Ok(Resolved::File(PathBuf::from(BUILD_JSON_PATH))));
        assert_eq!(resolve_with(Input::Path, &args(&["path=/x/b.json"]), none), Ok(Resolved::File("/x/b.json".into())));
        let env = |name: &str| (name == "MINE").then(|| "{}".to_owned());
        assert_eq!(
            resolve_with(Input::Env, &args(&["env_name=MINE"]), env),
            Ok(Resolved::Text { variable: "MINE".into(), text: "{}".into() })
        );
        let err = resolve_with(Input::Env, &[], env).expect_err("BUILD_JSON is not set");
        assert!(err.contains("BUILD_JSON is not set"), "{err}");
    }

    #[test]
    fn auto_takes_the_one_that_applies_and_refuses_none_or_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("build.json");
        std::fs::write(&file, "{}").expect("write");
        let path_arg = format!("path={}", file.display());
        let set = |_: &str| Some("{}".to_owned());
        let unset = |_: &str| None;
        assert_eq!(resolve_with(Input::Auto, &args(&[&path_arg]), unset), Ok(Resolved::File(file.clone())));
        let missing = format!("path={}", dir.path().join("none.json").display());
        assert!(matches!(resolve_with(Input::Auto, &args(&[&missing]), set), Ok(Resolved::Text { .. })));
        let both = resolve_with(Input::Auto, &args(&[&path_arg]), set).expect_err("both");
        assert!(both.contains("both") && both.contains("pass --input path or --input env"), "{both}");
        let none = resolve_with(Input::Auto, &args(&[&missing]), unset).expect_err("none");
        assert!(none.contains("found no build.json") && none.contains("--input"), "{none}");
    }

    #[test]
    fn an_unknown_input_arg_is_refused_naming_the_keys() {
        let err = resolve_with(Input::Path, &args(&["file=x"]), |_| None).expect_err("refused");
        assert!(err.contains("unknown key 'file'") && err.contains("env_name"), "{err}");
    }
}
