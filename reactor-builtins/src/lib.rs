//! The built-in plugins of reactor, one file each, named after the plugin's key.
//!
//! This crate depends on `reactor-plugin-api` alone, so a built-in can do nothing that a plugin
//! loaded with `--load-plugin` cannot: they implement the same public [`Plugin`] trait and
//! reach the build only through its [`Context`](reactor_plugin_api::Context).
#![deny(missing_docs)]

pub mod image_name;
pub mod reference;
pub mod shared;

// prebuild: the base image, then the Dockerfile's labels and content.
mod add_dockerfile;
mod add_labels_in_dockerfile;
mod assert_labels;
mod change_from_in_dockerfile;
mod cp_dockerfile;
mod distribution_scope;
mod dockerfile_content;
mod pull_base_image;
// buildstep
mod docker_api;
// prepublish and postbuild: test, tag, push, list packages.
mod all_packages;
mod all_rpm_packages;
mod run_in_image;
mod tag_and_push;
mod tag_by_labels;
mod tag_from_config;
// exit: clean up, store and send the outcome.
mod notify_webhook;
mod remove_built_image;
mod store_logs_to_file;
mod store_metadata;
// What several plugins share.
mod http;
mod image_labels;

pub use add_dockerfile::AddDockerfile;
pub use add_labels_in_dockerfile::AddLabelsInDockerfile;
pub use all_packages::AllPackages;
pub use all_rpm_packages::AllRpmPackages;
pub use assert_labels::AssertLabels;
pub use change_from_in_dockerfile::ChangeFromInDockerfile;
pub use cp_dockerfile::CpDockerfile;
pub use distribution_scope::DistributionScope;
pub use docker_api::DockerApi;
pub use dockerfile_content::DockerfileContent;
pub use notify_webhook::NotifyWebhook;
pub use pull_base_image::PullBaseImage;
pub use remove_built_image::RemoveBuiltImage;
pub use run_in_image::RunInImage;
pub use store_logs_to_file::StoreLogsToFile;
pub use store_metadata::StoreMetadata;
pub use tag_and_push::TagAndPush;
pub use tag_by_labels::TagByLabels;
pub use tag_from_config::TagFromConfig;

use reactor_plugin_api::Plugin;

/// Declares every built-in once: `all()` registers them and `returns()` documents them.
macro_rules! builtins {
    ($($key:ident => $plugin:ident),+ $(,)?) => {
        /// Every built-in plugin. If it is not on this list, it is not registered.
        pub fn all() -> Vec<Box<dyn Plugin>> {
            vec![$(Box::new($plugin)),+]
        }

        /// What the built-in `key` returns as its result, in a sentence, for the reference page.
        pub fn returns(key: &str) -> Option<&'static str> {
            match key {
                $(stringify!($key) => Some($key::RETURNS),)+
                _ => None,
            }
        }
    };
}

builtins! {
    pull_base_image => PullBaseImage,
    change_from_in_dockerfile => ChangeFromInDockerfile,
    add_labels_in_dockerfile => AddLabelsInDockerfile,
    assert_labels => AssertLabels,
    distribution_scope => DistributionScope,
    add_dockerfile => AddDockerfile,
    cp_dockerfile => CpDockerfile,
    dockerfile_content => DockerfileContent,
    docker_api => DockerApi,
    run_in_image => RunInImage,
    tag_by_labels => TagByLabels,
    tag_from_config => TagFromConfig,
    tag_and_push => TagAndPush,
    all_packages => AllPackages,
    all_rpm_packages => AllRpmPackages,
    remove_built_image => RemoveBuiltImage,
    store_logs_to_file => StoreLogsToFile,
    store_metadata => StoreMetadata,
    notify_webhook => NotifyWebhook,
}

/// The built-ins that parse image references. The parser builds its grammar on first use, which
/// takes ~50 ms in a release build.
const PARSE_IMAGE_NAMES: &[&str] = &[
    "pull_base_image",
    "change_from_in_dockerfile",
    "tag_by_labels",
    "tag_and_push",
    "remove_built_image",
    "store_metadata",
];

/// Readies, on a background thread, what the built-ins `keys` of a build's plan will need, so
/// that the work overlaps the source fetch instead of delaying the first of them.
pub fn prepare<'a>(keys: impl IntoIterator<Item = &'a str>) {
    if keys.into_iter().any(|key| PARSE_IMAGE_NAMES.contains(&key)) {
        std::thread::spawn(|| image_name::ImageName::parse("busybox").is_ok());
    }
}

/// The builder used when a build.json lists no buildstep plugins.
pub const DEFAULT_BUILDER: &str = "docker_api";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_the_default_builder_is_a_buildstep_builtin() {
        let manifests: Vec<_> = all().iter().map(|p| p.manifest()).collect();
        let mut keys: Vec<&str> = manifests.iter().map(|m| m.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), manifests.len(), "duplicate keys in {keys:?}");
        let builder = manifests.iter().find(|m| m.key == DEFAULT_BUILDER).expect("the default builder is built in");
        assert_eq!(builder.phases, [reactor_plugin_api::Phase::Buildstep]);
    }
}
