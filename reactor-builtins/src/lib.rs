//! The built-in plugins of reactor, one file each, named after the plugin's key.
//!
//! This crate depends on `reactor-plugin-api` alone, so a built-in can do nothing that a plugin
//! loaded with `--load-plugin` cannot: they implement the same public [`Plugin`] trait and
//! reach the build only through its [`Context`](reactor_plugin_api::Context).
#![deny(missing_docs)]

pub mod image_name;
pub mod reference;
pub mod shared;

mod docker_api;
mod dockerfile_content;

// Labels and the Dockerfile in the image (prebuild).
mod add_dockerfile;
mod add_labels_in_dockerfile;
mod assert_labels;
mod cp_dockerfile;
mod distribution_scope;
mod image_labels;

// Tags and pushes (postbuild).
mod tag_and_push;
mod tag_by_labels;
mod tag_from_config;

pub use docker_api::DockerApi;
pub use dockerfile_content::DockerfileContent;

pub use add_dockerfile::AddDockerfile;
pub use add_labels_in_dockerfile::AddLabelsInDockerfile;
pub use assert_labels::AssertLabels;
pub use cp_dockerfile::CpDockerfile;
pub use distribution_scope::DistributionScope;

// run_in_image, all_packages and the exit plugins that store or send the outcome.
mod all_packages;
mod http;
mod notify_webhook;
mod run_in_image;
mod store_logs_to_file;
mod store_metadata;

pub use all_packages::AllPackages;
pub use notify_webhook::NotifyWebhook;
pub use run_in_image::RunInImage;
pub use store_logs_to_file::StoreLogsToFile;
pub use store_metadata::StoreMetadata;
pub use tag_and_push::TagAndPush;
pub use tag_by_labels::TagByLabels;
pub use tag_from_config::TagFromConfig;

use reactor_plugin_api::Plugin;

/// Every built-in plugin. If it is not on this list, it is not registered.
pub fn all() -> Vec<Box<dyn Plugin>> {
    vec![
        Box::new(DockerfileContent),
        Box::new(DockerApi),
        // Labels and the Dockerfile in the image.
        Box::new(AddLabelsInDockerfile),
        Box::new(AssertLabels),
        Box::new(DistributionScope),
        Box::new(AddDockerfile),
        Box::new(CpDockerfile),
        // run_in_image, all_packages and the exit plugins that store or send the outcome.
        Box::new(RunInImage),
        Box::new(AllPackages),
        Box::new(StoreLogsToFile),
        Box::new(StoreMetadata),
        Box::new(NotifyWebhook),
        // Tags and pushes.
        Box::new(TagByLabels),
        Box::new(TagFromConfig),
        Box::new(TagAndPush),
    ]
}

/// What the built-in `key` returns as its result, in a sentence, for the reference page.
pub fn returns(key: &str) -> Option<&'static str> {
    Some(match key {
        "docker_api" => docker_api::RETURNS,
        "dockerfile_content" => dockerfile_content::RETURNS,
        "add_labels_in_dockerfile" => add_labels_in_dockerfile::RETURNS,
        "assert_labels" => assert_labels::RETURNS,
        "distribution_scope" => distribution_scope::RETURNS,
        "add_dockerfile" => add_dockerfile::RETURNS,
        "cp_dockerfile" => cp_dockerfile::RETURNS,
        "run_in_image" => run_in_image::RETURNS,
        "all_packages" => all_packages::RETURNS,
        "store_logs_to_file" => store_logs_to_file::RETURNS,
        "store_metadata" => store_metadata::RETURNS,
        "notify_webhook" => notify_webhook::RETURNS,
        "tag_by_labels" => tag_by_labels::RETURNS,
        "tag_from_config" => tag_from_config::RETURNS,
        "tag_and_push" => tag_and_push::RETURNS,
        _ => return None,
    })
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
