//! What built-ins hand each other through the build's workspace (`Context::workspace`), under
//! the keys atomic-reactor used: the tags to push (`tag_conf`) and what `remove_built_image`
//! removes at the end (`remove_built_image`). A loaded plugin may read and extend them too.

use reactor_plugin_api::{Context, PluginError};
use serde::{Deserialize, Serialize};

/// The workspace key of [`TagConf`].
pub const TAG_CONF: &str = "tag_conf";
/// The workspace key of [`ToRemove`].
pub const TO_REMOVE: &str = "remove_built_image";

/// The names the built image is to be pushed under, as atomic-reactor's `tag_conf`: unique names
/// (one per build, `name:<image tag>`) and primary ones (`name:V-R`, `name:V`, `name:latest`,
/// the `additional-tags`). `tag_and_push` pushes both; without a unique name it adds the image's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TagConf {
    /// One per build.
    pub unique_images: Vec<String>,
    /// Moving tags.
    pub primary_images: Vec<String>,
}

impl TagConf {
    /// The build's tag_conf so far.
    pub fn load(ctx: &Context) -> Result<TagConf, PluginError> {
        Ok(ctx.workspace(TAG_CONF)?.unwrap_or_default())
    }

    /// Stores it for the plugins that follow.
    pub fn store(&self, ctx: &Context) -> Result<(), PluginError> {
        ctx.set_workspace(TAG_CONF, self)
    }

    /// Every name, unique first, each once.
    pub fn all(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for name in self.unique_images.iter().chain(&self.primary_images) {
            if !all.contains(name) {
                all.push(name.clone());
            }
        }
        all
    }
}

/// What `remove_built_image` removes besides the built image: the tags `tag_and_push` made to
/// push (`images_to_remove`, atomic-reactor's deferred removals) and the base image names
/// `pull_base_image` pulled or made (`base_images`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToRemove {
    /// Pushed names (`registry/name:tag`).
    pub images_to_remove: Vec<String>,
    /// Pulled base names and their re-tags.
    pub base_images: Vec<String>,
}

impl ToRemove {
    /// Adds `names` to the list `pick` chooses, keeping what other plugins stored.
    pub fn add(
        ctx: &Context,
        pick: fn(&mut ToRemove) -> &mut Vec<String>,
        names: &[String],
    ) -> Result<(), PluginError> {
        let mut to_remove: ToRemove = ctx.workspace(TO_REMOVE)?.unwrap_or_default();
        let list = pick(&mut to_remove);
        for name in names {
            if !list.contains(name) {
                list.push(name.clone());
            }
        }
        ctx.set_workspace(TO_REMOVE, &to_remove)
    }
}

/// Whether `err` is the host saying an image is not in the engine or the registry (an inspect,
/// remove or pull of a missing image) rather than the engine failing. The protocol carries only
/// the message, so this reads the host's wording: "no such image" (its own and the engine's) or
/// an HTTP 404 from the engine.
pub fn is_no_such_image(err: &PluginError) -> bool {
    let message = err.message.to_ascii_lowercase();
    message.contains("no such image") || message.contains("(http 404)")
}

/// Whether `text` is an image ID (`sha256:` and 64 hex digits), which names a local image and
/// is neither pulled nor re-tagged.
pub fn is_image_id(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Checks a `timeout` arg: a positive, finite number of seconds (the schemas say so too, but a
/// plugin run through FakeHost or another host gets no schema check).
pub(crate) fn check_timeout(seconds: f64) -> Result<(), PluginError> {
    if seconds.is_finite() && seconds > 0.0 {
        return Ok(());
    }
    Err(PluginError::invalid_args(format!("'timeout' must be a positive number of seconds, not {seconds}")))
}

#[cfg(test)]
pub(crate) mod tests {
    use reactor_plugin_api::protocol::Request;
    use reactor_plugin_api::testing::FakeHost;

    /// The `(source, target)` of every image the plugin asked the fake host to tag, in order.
    pub(crate) fn tags(fake: &FakeHost) -> Vec<(String, String)> {
        fake.requests()
            .into_iter()
            .filter_map(|r| match r {
                Request::TagImage { source, target } => Some((source, target)),
                _ => None,
            })
            .collect()
    }
}
