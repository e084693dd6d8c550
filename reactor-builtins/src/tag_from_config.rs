//! `tag_from_config`: adds the tags listed in the `additional-tags` file beside the Dockerfile,
//! as atomic-reactor's `post_tag_from_config.py` does. Each line holds one tag (surrounding
//! whitespace is dropped, empty lines are skipped); each becomes the primary name
//! `name:<tag>`, `name` being the built image's `name` label, in the workspace's `tag_conf`
//! (which `tag_and_push` pushes) and in the result document's `tags`.
//!
//! ```json
//! {"name": "tag_from_config"}
//! ```
//!
//! With the file
//!
//! ```text
//! 3.2
//! stable
//! ```
//!
//! and the label `name=ns/app`, the image is also pushed as `ns/app:3.2` and `ns/app:stable`.
//!
//! The file is read from the build context as the engine sees it: one a prebuild plugin wrote to
//! the context overlay wins over the source's (`Workflow::context_file`).
//!
//! A tag holding a `-` is skipped with a warning: the tags `tag_by_labels` makes from the labels
//! are `version-release`, and an additional tag with a dash could overwrite one of an earlier
//! build (the reason atomic-reactor gave when it added the rule). A line that is not a valid
//! tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`) is skipped with a warning too, as in 1.6.26, rather
//! than failing the push later. Without the file nothing is added; the `name` label is needed
//! only when the file lists tags, and its absence then fails the plugin, naming the label.
//!
//! Where it differs from atomic-reactor 1.6: the `tag_suffixes` arg of 1.6.26 (given by
//! osbs-client, with tags formatted from the labels) is not taken; the file is the only source.

use reactor_plugin_api::{Args, Context, Manifest, Phase, Plugin, PluginError};
use serde_json::{json, Value};

use crate::shared::TagConf;
use crate::tag_by_labels::{add_new, BuiltLabels};

pub(crate) const RETURNS: &str =
    "the names it added to `tag_conf`'s primary images, as a list (`[\"ns/app:3.2\", …]`); `[]` without the file";

/// The file's name, beside the Dockerfile.
const TAGS_FILE: &str = "additional-tags";

/// Tags the built image with the tags of the `additional-tags` file.
pub struct TagFromConfig;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TagFromConfigArgs {}

impl Plugin for TagFromConfig {
    fn manifest(&self) -> Manifest {
        Manifest::new("tag_from_config", [Phase::Postbuild], env!("CARGO_PKG_VERSION"))
            .description(
                "adds the tags listed in the `additional-tags` file beside the Dockerfile as `name:<tag>` \
                 (`name` from the built image's label) for tag_and_push to push",
            )
            .args_schema(json!({"type": "object", "additionalProperties": false, "properties": {}}))
            .requires(["workspace"])
            .allowed_to_fail(false)
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let _: TagFromConfigArgs = args.parse()?;
        let workflow = ctx.workflow()?;
        // The context's file: one a prebuild plugin wrote to the overlay, else the source's.
        let path = workflow.context_file(TAGS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                log::debug!("{} not found: no additional tags", path.display());
                return Ok(json!([]));
            }
            Err(e) => return Err(PluginError::new(format!("tag_from_config: cannot read {}: {e}", path.display()))),
        };
        let tags = tags_in(&text);
        if tags.is_empty() {
            return Ok(json!([]));
        }
        let labels = BuiltLabels::read(ctx, "tag_from_config")?;
        let name = labels.find("name").ok_or_else(|| {
            PluginError::new(format!(
                "tag_from_config: {} lists {} tags, but the built image has no 'name' label to name them with: add \
                 `LABEL name=…` to the Dockerfile or set it with add_labels_in_dockerfile",
                path.display(),
                tags.len()
            ))
        })?;
        let names = tags.iter().map(|tag| labels.image_name(name, tag)).collect::<Result<Vec<_>, _>>()?;

        let mut tag_conf = TagConf::load(ctx)?;
        add_new(&mut tag_conf.primary_images, &names);
        tag_conf.store(ctx)?;
        ctx.add_tags(&names.iter().map(String::as_str).collect::<Vec<_>>())?;
        log::info!("additional tags from {}: {}", path.display(), names.join(", "));
        Ok(json!(names))
    }
}

/// The tags the file's text lists, each once, in order; what is skipped is logged.
fn tags_in(text: &str) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        if tag.contains('-') {
            log::warn!("tag '{tag}' holds a '-', ignored: it could overwrite a version-release tag of another build");
        } else if !is_valid_tag(tag) {
            log::warn!("tag '{tag}' is not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}), ignored");
        } else if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_owned());
        }
    }
    tags
}

/// Docker's tag grammar.
fn is_valid_tag(tag: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    tag.len() <= 128 && tag.starts_with(word) && tag.chars().all(|c| word(c) || c == '.' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use reactor_plugin_api::testing::FakeHost;
    use reactor_plugin_api::{BuildResult, ErrorKind, Workflow};

    /// A postbuild fake whose source context is a temporary directory with `additional-tags`
    /// holding `tags` (no file when `None`), under an overlay (`overlay`) holding the Dockerfile,
    /// as reactor lays them out.
    fn with_tags(tags: Option<&str>, labels: Value) -> (tempfile::TempDir, FakeHost) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (source, overlay) = (dir.path().join("source"), dir.path().join("overlay"));
        for context in [&source, &overlay] {
            std::fs::create_dir_all(context).expect("mkdir");
            std::fs::write(context.join("Dockerfile"), "FROM busybox\n").expect("write");
        }
        if let Some(tags) = tags {
            std::fs::write(source.join(TAGS_FILE), tags).expect("write");
        }
        let workflow = Workflow {
            image: "app:1".into(),
            dockerfile_path: overlay.join("Dockerfile").display().to_string(),
            build_result: Some(BuildResult { image_id: Some("sha256:built".into()), ..Default::default() }),
            ..Default::default()
        };
        let fake = FakeHost::new(Phase::Postbuild, workflow)
            .context_dirs(&overlay, &source)
            .on_inspect(move |_| Ok(json!({"Id": "sha256:built", "Config": {"Labels": labels.clone()}})));
        (dir, fake)
    }

    #[test]
    fn a_file_a_plugin_wrote_to_the_overlay_is_the_one_read() {
        let (dir, fake) = with_tags(Some("source1\n"), json!({"name": "app"}));
        std::fs::write(dir.path().join("overlay").join(TAGS_FILE), "overlay1\n").expect("write");
        assert_eq!(fake.run(&TagFromConfig, json!({})).expect("runs"), json!(["app:overlay1"]));
    }

    #[test]
    fn adds_each_listed_tag_as_a_primary_name() {
        let earlier = json!({"unique_images": ["app:1"], "primary_images": ["app:latest"]});
        let (_dir, fake) = with_tags(Some("  3.2\n\nstable \n3.2\n"), json!({"name": "ns/app"}));
        let fake = fake.workspace("tag_conf", earlier);
        let result = fake.run(&TagFromConfig, json!({})).expect("runs");
        assert_eq!(result, json!(["ns/app:3.2", "ns/app:stable"]));
        let conf: TagConf = serde_json::from_value(fake.workspace_entry("tag_conf").expect("set")).expect("tag_conf");
        assert_eq!(conf.unique_images, ["app:1"]);
        assert_eq!(conf.primary_images, ["app:latest", "ns/app:3.2", "ns/app:stable"]);
        assert_eq!(fake.workflow().tags, ["ns/app:3.2", "ns/app:stable"]);
    }

    #[test]
    fn skips_tags_with_a_dash_and_invalid_ones_with_a_warning() {
        let (_dir, fake) = with_tags(Some("1.0-2\nv1\n.hidden\nnot valid\nv1.0\n"), json!({"Name": "app"}));
        let result = fake.run(&TagFromConfig, json!({})).expect("runs");
        assert_eq!(result, json!(["app:v1", "app:v1.0"]));
        let warnings: Vec<String> =
            fake.logs().into_iter().filter(|r| r.level == log::Level::Warn).map(|r| r.message).collect();
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].starts_with("tag '1.0-2' holds a '-', ignored"), "{warnings:?}");
        assert!(warnings[1].starts_with("tag '.hidden' is not a valid tag"), "{warnings:?}");
        assert!(warnings[2].starts_with("tag 'not valid' is not a valid tag"), "{warnings:?}");
    }

    #[test]
    fn without_the_file_or_any_tag_it_adds_nothing_and_needs_no_label() {
        for tags in [None, Some("\n  \n"), Some("only-dashes\n")] {
            let (_dir, fake) = with_tags(tags, json!({}));
            assert_eq!(fake.run(&TagFromConfig, json!({})).expect("runs"), json!([]), "{tags:?}");
            assert_eq!(fake.workspace_entry("tag_conf"), None);
            assert!(fake.workflow().tags.is_empty());
        }
    }

    #[test]
    fn tags_without_a_name_label_fail_naming_the_label_and_the_file() {
        let (dir, fake) = with_tags(Some("v1\n"), json!({"version": "1"}));
        let err = fake.run(&TagFromConfig, json!({})).expect_err("no name");
        assert_eq!(err.kind, ErrorKind::Failed);
        let path = dir.path().join("source").join(TAGS_FILE);
        assert!(
            err.message.starts_with(&format!(
                "tag_from_config: {} lists 1 tags, but the built image has no 'name' label",
                path.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn an_unreadable_file_fails_naming_it() {
        let (dir, fake) = with_tags(None, json!({"name": "app"}));
        std::fs::create_dir(dir.path().join("source").join(TAGS_FILE)).expect("a directory where the file goes");
        let err = fake.run(&TagFromConfig, json!({})).expect_err("unreadable");
        assert!(err.message.starts_with("tag_from_config: cannot read "), "{err}");
        assert!(err.message.contains(TAGS_FILE), "{err}");
    }

    #[test]
    fn the_tag_grammar_is_dockers() {
        for good in ["latest", "v1.0", "_x", "1", &"a".repeat(128)] {
            assert!(is_valid_tag(good), "{good}");
        }
        for bad in ["", ".a", "-a", "a b", "a:b", "a/b", "é", &"a".repeat(129)] {
            assert!(!is_valid_tag(bad), "{bad}");
        }
    }
}
