//! `add_dockerfile`: puts the Dockerfile into the image as `<destdir>/Dockerfile-N-V-R`
//! (`/root/buildinfo/` by default), so an image tells how it was built (atomic-reactor's
//! `pre_add_dockerfile.py`).
//!
//! ```json
//! {"name": "add_dockerfile", "args": {"nvr": "rhel-server-docker-7.1-20"}}
//! ```
//!
//! It writes the Dockerfile as it is when the plugin runs to `Dockerfile-N-V-R` in the build
//! context and inserts `ADD Dockerfile-N-V-R <destdir>/Dockerfile-N-V-R` before the final stage's
//! last instruction (after its `FROM` when that is all it has). With `use_final_dockerfile` it
//! copies nothing and adds the build's own Dockerfile instead, as the later plugins leave it.
//! N-V-R is the `nvr` arg, or else the image's `name`, `version` and `release` labels (or
//! `Name`, `Version`, `Release`) from the final stage's `LABEL`s and the labels plugins set, with
//! each `/` made a `-`: list `add_labels_in_dockerfile` first when it sets them.
//!
//! Where it deliberately differs from atomic-reactor 1.6: the `ADD` goes before the last
//! *instruction* of the final stage (1.6 inserted it before the file's last *line*, which split an
//! instruction continued over several lines), and an N-V-R or `destdir` that an `ADD` cannot
//! take literally (white space, quotes, `$`, wildcards, a `/` in `nvr`) fails the plugin.

use std::path::Path;

use reactor_plugin_api::dockerfile::Dockerfile;
use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError, Workflow};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::image_labels;

pub(crate) const RETURNS: &str = "the `ADD` instruction it inserted into the Dockerfile";

const DEFAULT_DESTDIR: &str = "/root/buildinfo/";
/// What an `ADD` reads literally besides letters and digits (no white space, quotes, `$`,
/// escapes or wildcards).
const LITERAL: &str = "._-+~:@%,=^";

/// Adds the Dockerfile to the image.
pub struct AddDockerfile;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddDockerfileArgs {
    #[serde(default)]
    nvr: Option<String>,
    #[serde(default = "default_destdir")]
    destdir: String,
    #[serde(default)]
    use_final_dockerfile: bool,
}

fn default_destdir() -> String {
    DEFAULT_DESTDIR.to_owned()
}

impl Plugin for AddDockerfile {
    fn manifest(&self) -> Manifest {
        Manifest::new("add_dockerfile", [Phase::Prebuild], env!("CARGO_PKG_VERSION"))
            .description("adds the Dockerfile to the image, as /root/buildinfo/Dockerfile-N-V-R by default")
            // Properties in key order: docs/plugins.md lists them in the map's order, which is key
            // order or written order depending on serde_json's `preserve_order` feature.
            .args_schema(json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "destdir": {
                        "type": "string",
                        "default": DEFAULT_DESTDIR,
                        "description": "The directory in the image the file goes to."
                    },
                    "nvr": {
                        "type": "string",
                        "description": "The N-V-R in the file's name; by default `name-version-release` from the image's labels (each `/` made `-`)."
                    },
                    "use_final_dockerfile": {
                        "type": "boolean",
                        "default": false,
                        "description": "Add the Dockerfile as it is built (after every prebuild plugin) instead of as it is when this plugin runs."
                    }
                }
            }))
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let args: AddDockerfileArgs = args.parse()?;
        let workflow = ctx.workflow()?;
        let dockerfile = image_labels::parse(&workflow)?;
        let nvr = match &args.nvr {
            Some(nvr) => nvr.clone(),
            None => nvr_from_labels(&dockerfile, &workflow)?,
        };
        let file_name = format!("Dockerfile-{nvr}");
        literal(&file_name, "the N-V-R", "give an nvr arg without them")?;
        if file_name.contains('/') {
            return Err(PluginError::invalid_args(format!(
                "arg 'nvr' ({nvr:?}) holds a '/'; it names a file: use '-' instead"
            )));
        }
        literal(&args.destdir, "arg 'destdir'", "give a plain path")?;
        if args.destdir.is_empty() {
            return Err(PluginError::invalid_args("arg 'destdir' is empty; give the directory in the image"));
        }
        let destination = format!("{}/{file_name}", args.destdir.trim_end_matches('/'));

        let source = if args.use_final_dockerfile {
            Path::new(&workflow.dockerfile_path)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .ok_or_else(|| PluginError::new("the workflow has no Dockerfile path"))?
        } else {
            let copy = Path::new(&workflow.context_dir).join(&file_name);
            std::fs::write(&copy, &workflow.dockerfile)
                .map_err(|e| PluginError::new(format!("cannot write {}: {e}", copy.display())))?;
            file_name
        };
        let line = format!("ADD {source} {destination}");
        let text = insert_before_last_instruction(&dockerfile, &line)?;
        ctx.set_dockerfile(&text)?;
        log::info!("added {destination}");
        Ok(Value::String(line))
    }
}

/// `name-version-release` from the image's labels, preferring the new names, with `/` made `-`.
fn nvr_from_labels(dockerfile: &Dockerfile, workflow: &Workflow) -> Result<String, PluginError> {
    let labels = image_labels::image_labels(dockerfile, workflow);
    let preferred = |names: [&str; 2]| names.iter().find_map(|n| labels.get(*n).filter(|v| !v.is_empty()));
    let parts = [preferred(["name", "Name"]), preferred(["version", "Version"]), preferred(["release", "Release"])];
    match parts {
        [Some(name), Some(version), Some(release)] => Ok(format!("{name}-{version}-{release}").replace('/', "-")),
        _ => {
            let missing: Vec<&str> = ["name", "version", "release"]
                .iter()
                .zip(parts)
                .filter(|(_, value)| value.is_none())
                .map(|(name, _)| *name)
                .collect();
            Err(PluginError::invalid_args(format!(
                "no 'nvr' arg and the image has no {} label: give nvr, or set the name, version and release \
                 labels (with add_labels_in_dockerfile listed before add_dockerfile)",
                missing.join(", ")
            )))
        }
    }
}

fn literal(text: &str, what: &str, fix: &str) -> Result<(), PluginError> {
    match text.chars().find(|c| !(c.is_alphanumeric() || *c == '/' || LITERAL.contains(*c))) {
        Some(c) => Err(PluginError::invalid_args(format!(
            "{what} ({text:?}) holds {c:?}, which an ADD would not take literally; {fix}"
        ))),
        None => Ok(()),
    }
}

/// The Dockerfile with `line` before the final stage's last instruction, or after its `FROM`
/// when the stage has nothing else.
fn insert_before_last_instruction(dockerfile: &Dockerfile, line: &str) -> Result<String, PluginError> {
    let stage = dockerfile.final_stage().ok_or_else(|| PluginError::new("the Dockerfile has no FROM"))?;
    let instructions = stage.instructions();
    let edit_error = |e| PluginError::new(format!("cannot add {line:?} to the Dockerfile: {e}"));
    if instructions.len() < 2 {
        let mut edit = dockerfile.edit();
        edit.add_instruction_at_end_of_stage(stage.index(), line).map_err(edit_error)?;
        return Ok(edit.render());
    }
    // Right after the line that ends the instruction before the last one, so comments just above
    // the last instruction stay with it. That line ends in a line break: an instruction follows.
    let previous = &dockerfile.instructions()[instructions.end - 2];
    let text = dockerfile.text();
    let end = previous.span().end;
    let at = text[end..].find('\n').map(|i| end + i + 1).ok_or_else(|| PluginError::new("the Dockerfile is cut"))?;
    let newline = if text[..at].ends_with("\r\n") { "\r\n" } else { "\n" };
    let edited = format!("{}{line}{newline}{}", &text[..at], &text[at..]);
    // What was inserted is one instruction of the final stage, and nothing else moved.
    let check = Dockerfile::parse(&edited).map_err(edit_error)?;
    let added = check.final_stage().map(|s| s.instructions().len());
    if added != Some(instructions.len() + 1) || check.stages().len() != dockerfile.stages().len() {
        return Err(PluginError::new(format!("cannot add {line:?} to the Dockerfile before its last instruction")));
    }
    Ok(edited)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor_plugin_api::testing::FakeHost;

    struct Build {
        fake: FakeHost,
        context: tempfile::TempDir,
    }

    fn build(dockerfile: &str) -> Build {
        let context = tempfile::tempdir().expect("tempdir");
        let path = context.path().join("Dockerfile");
        std::fs::write(&path, dockerfile).expect("write");
        let workflow = Workflow {
            dockerfile: dockerfile.into(),
            dockerfile_path: path.display().to_string(),
            context_dir: context.path().display().to_string(),
            ..Default::default()
        };
        Build { fake: FakeHost::new(Phase::Prebuild, workflow), context }
    }

    const LABELLED: &str = "FROM busybox\nLABEL name=ns/app version=1 release=2\nCMD [\"sh\"]\n";

    #[test]
    fn copies_the_dockerfile_and_adds_it_before_the_last_instruction() {
        let b = build(LABELLED);
        let result = b.fake.run(&AddDockerfile, json!({})).expect("runs");
        let line = "ADD Dockerfile-ns-app-1-2 /root/buildinfo/Dockerfile-ns-app-1-2";
        assert_eq!(result, json!(line));
        assert_eq!(
            b.fake.workflow().dockerfile,
            format!("FROM busybox\nLABEL name=ns/app version=1 release=2\n{line}\nCMD [\"sh\"]\n")
        );
        let copy = std::fs::read_to_string(b.context.path().join("Dockerfile-ns-app-1-2")).expect("copied");
        assert_eq!(copy, LABELLED, "the Dockerfile as it was when the plugin ran");
    }

    #[test]
    fn takes_nvr_and_destdir_from_its_args() {
        let b = build("FROM busybox\n");
        let result = b.fake.run(&AddDockerfile, json!({"nvr": "rhel-7.1-20", "destdir": "/usr/share/buildinfo"}));
        assert_eq!(
            result.expect("runs"),
            json!("ADD Dockerfile-rhel-7.1-20 /usr/share/buildinfo/Dockerfile-rhel-7.1-20")
        );
        assert_eq!(
            b.fake.workflow().dockerfile,
            "FROM busybox\nADD Dockerfile-rhel-7.1-20 /usr/share/buildinfo/Dockerfile-rhel-7.1-20\n"
        );
        assert!(b.context.path().join("Dockerfile-rhel-7.1-20").is_file());
    }

    #[test]
    fn use_final_dockerfile_adds_the_builds_own_dockerfile() {
        let b = build(LABELLED);
        let result = b.fake.run(&AddDockerfile, json!({"use_final_dockerfile": true})).expect("runs");
        assert_eq!(result, json!("ADD Dockerfile /root/buildinfo/Dockerfile-ns-app-1-2"));
        assert!(!b.context.path().join("Dockerfile-ns-app-1-2").exists(), "nothing copied");
    }

    #[test]
    fn old_label_names_and_labels_set_by_plugins_count() {
        let b = build("FROM busybox\nLABEL Name=app Version=3\n");
        let b = Build {
            fake: FakeHost::new(
                Phase::Prebuild,
                Workflow { labels: [("release".to_owned(), "9".to_owned())].into(), ..b.fake.workflow() },
            ),
            ..b
        };
        let result = b.fake.run(&AddDockerfile, json!({})).expect("runs");
        assert_eq!(result, json!("ADD Dockerfile-app-3-9 /root/buildinfo/Dockerfile-app-3-9"));
    }

    #[test]
    fn without_nvr_or_labels_it_fails_naming_the_missing_ones() {
        let b = build("FROM busybox\nLABEL name=app\n");
        let err = b.fake.run(&AddDockerfile, json!({})).expect_err("no version, no release");
        assert_eq!(
            err.message,
            "no 'nvr' arg and the image has no version, release label: give nvr, or set the name, version and \
             release labels (with add_labels_in_dockerfile listed before add_dockerfile)"
        );
        assert_eq!(b.fake.workflow().dockerfile, "FROM busybox\nLABEL name=app\n");
    }

    #[test]
    fn refuses_what_an_add_would_not_read_literally() {
        for (args, expected) in [
            (json!({"nvr": "a b-1-2"}), "the N-V-R (\"Dockerfile-a b-1-2\") holds ' '"),
            (json!({"nvr": "a/b-1-2"}), "arg 'nvr' (\"a/b-1-2\") holds a '/'"),
            (json!({"nvr": "a-1-2", "destdir": "/root/$HOME"}), "arg 'destdir' (\"/root/$HOME\") holds '$'"),
        ] {
            let err = build("FROM busybox\n").fake.run(&AddDockerfile, args).expect_err("refused");
            assert!(err.message.starts_with(expected), "{err}");
        }
    }

    #[test]
    fn comments_and_continuations_stay_with_their_instructions() {
        let dockerfile = "FROM busybox AS b\nRUN a\nFROM b\nRUN echo \\\n  two\n# the command\nCMD [\"sh\"]";
        let b = build(dockerfile);
        b.fake.run(&AddDockerfile, json!({"nvr": "n-1-2"})).expect("runs");
        assert_eq!(
            b.fake.workflow().dockerfile,
            "FROM busybox AS b\nRUN a\nFROM b\nRUN echo \\\n  two\nADD Dockerfile-n-1-2 /root/buildinfo/Dockerfile-n-1-2\n\
             # the command\nCMD [\"sh\"]"
        );
        let b = build("FROM busybox\r\nCMD x\r\n");
        b.fake.run(&AddDockerfile, json!({"nvr": "n-1-2"})).expect("runs");
        assert_eq!(
            b.fake.workflow().dockerfile,
            "FROM busybox\r\nADD Dockerfile-n-1-2 /root/buildinfo/Dockerfile-n-1-2\r\nCMD x\r\n"
        );
    }

    #[test]
    fn is_allowed_to_fail_by_default() {
        assert!(AddDockerfile.manifest().allowed_to_fail);
    }
}
