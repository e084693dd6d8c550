//! Reading a Dockerfile on the host's side, with the same parser plugins use
//! ([`reactor_plugin_api::dockerfile`]), so the host and its plugins never disagree on it.

use reactor_plugin_api::dockerfile::Dockerfile;

/// The image the final stage builds from (after `ARG` substitution), `None` when there is no
/// `FROM`, it names an earlier stage, or the Dockerfile does not parse (the build then says why).
pub fn base_image(text: &str) -> Option<String> {
    match Dockerfile::parse(text) {
        Ok(dockerfile) => dockerfile.base_image().map(str::to_owned),
        Err(e) => {
            log::debug!("the Dockerfile does not parse, so its base image is unknown: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::base_image;

    #[test]
    fn finds_the_final_stages_image() {
        assert_eq!(base_image("FROM busybox\nRUN true\n").as_deref(), Some("busybox"));
        assert_eq!(
            base_image("# c\nfrom --platform=linux/amd64 \\\n  reg:5000/ns/img:1 AS build\n").as_deref(),
            Some("reg:5000/ns/img:1")
        );
        assert_eq!(base_image("FROM a AS one\nFROM b\n").as_deref(), Some("b"));
        assert_eq!(base_image("FROM a AS one\nFROM one\n"), None);
        assert_eq!(base_image("ARG TAG=1.36\nFROM busybox:${TAG}\n").as_deref(), Some("busybox:1.36"));
        assert_eq!(base_image("RUN true\n"), None);
    }
}
