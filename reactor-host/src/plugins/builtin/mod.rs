//! The built-in plugins, one file each, named `<phase>_<key>.rs` so a listing reads as the
//! workflow. They implement the same public [`Plugin`] trait as loaded plugins.

mod buildstep_docker_api;
mod pre_dockerfile_content;

use reactor_plugin_api::Plugin;

/// Every built-in plugin. If it is not on this list, it is not registered.
pub fn all() -> Vec<Box<dyn Plugin>> {
    vec![Box::new(pre_dockerfile_content::DockerfileContent), Box::new(buildstep_docker_api::DockerApi)]
}

/// The builder used when a build.json lists no buildstep plugins.
pub const DEFAULT_BUILDER: &str = "docker_api";
