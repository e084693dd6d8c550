//! Image references as atomic-reactor's `ImageName` sees them: `[registry/]repository[:tag][@digest]`,
//! with the registry kept only when the text names one, so that `busybox` stays `busybox` and
//! can be moved to another registry (`localhost:5000/busybox`) and back.
//!
//! The grammar is checked by the OCI distribution reference parser (`oci-spec`); which first
//! component is a registry follows the docker CLI: one with a `.` or a `:`, or `localhost`.

use std::fmt;

use oci_spec::distribution::Reference;
use reactor_plugin_api::PluginError;

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageName {
    registry: Option<String>,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageName {
    /// Parses `text`; an invalid reference is an error naming it.
    pub fn parse(text: &str) -> Result<ImageName, PluginError> {
        let invalid =
            |why: &dyn fmt::Display| PluginError::new(format!("'{text}' is not a valid image reference: {why}"));
        // The grammar's regex costs 50–100 ms and about 18 MiB at its peak to compile: a name
        // that is plainly valid (most are) does not need it.
        if !plainly_valid(text) {
            Reference::try_from(text).map_err(|e| invalid(&e))?;
        }
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => (name, Some(digest.to_owned())),
            None => (text, None),
        };
        // A tag follows the last ':' after the last '/'; a ':' before it is a registry's port.
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], Some(name[last_slash + i + 1..].to_owned())),
            None => (name, None),
        };
        let (registry, repository) = match path.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (Some(first.to_owned()), rest.to_owned())
            }
            _ => (None, path.to_owned()),
        };
        if repository.is_empty() {
            return Err(invalid(&"no repository"));
        }
        // The grammar lets a first component have capitals as a host name would; docker then
        // reads it as a repository, which must be lowercase.
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid(&"repository name must be lowercase"));
        }
        Ok(ImageName { registry, repository, tag, digest })
    }

    /// The registry the reference names, if it names one (`localhost:5000`).
    pub fn registry(&self) -> Option<&str> {
        self.registry.as_deref()
    }

    /// The repository, without registry, tag or digest (`namespace/repo`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference has one (`sha256:…`).
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The same reference in `registry`.
    pub fn with_registry(&self, registry: &str) -> ImageName {
        ImageName { registry: Some(registry.trim_end_matches('/').to_owned()), ..self.clone() }
    }

    /// The same reference without its registry.
    pub fn without_registry(&self) -> ImageName {
        ImageName { registry: None, ..self.clone() }
    }

    /// The same repository with tag `tag` and no digest.
    pub fn with_tag(&self, tag: &str) -> ImageName {
        ImageName { tag: Some(tag.to_owned()), digest: None, ..self.clone() }
    }

    /// The same reference, tagged `latest` when it has neither tag nor digest (what docker pulls).
    pub fn or_latest(&self) -> ImageName {
        match (&self.tag, &self.digest) {
            (None, None) => self.with_tag("latest"),
            _ => self.clone(),
        }
    }

    /// The same reference in the `library/` namespace, as Docker Hub names its official images;
    /// `None` when the repository already has a namespace.
    pub fn in_library(&self) -> Option<ImageName> {
        (!self.repository.contains('/'))
            .then(|| ImageName { repository: format!("library/{}", self.repository), ..self.clone() })
    }
}

/// Whether `text` is plainly a valid reference without a digest: ASCII
/// `[host[:port]/]component[/component…][:tag]`, with lowercase components. It accepts only
/// what the grammar accepts (a test checks so), and says no to anything unusual, which
/// [`ImageName::parse`] then decides. It exists because the grammar's regex, with its Unicode
/// tag class repeated 128 times, takes 50–100 ms to compile: checking a build.json's names before
/// anything runs must not cost a `--dry-run` that much.
pub fn plainly_valid(text: &str) -> bool {
    // Well under the grammar's 255, which applies after docker adds `library/`.
    if text.is_empty() || text.len() > 200 || !text.is_ascii() {
        return false;
    }
    let last_slash = text.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match text[last_slash..].rfind(':') {
        Some(i) => (&text[..last_slash + i], Some(&text[last_slash + i + 1..])),
        None => (text, None),
    };
    let tag_ok = tag.is_none_or(|tag| {
        let mut chars = tag.chars();
        tag.len() <= 128
            && chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    });
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 && (components[0].contains(['.', ':']) || components[0] == "localhost") {
        if !plain_host(components[0]) {
            return false;
        }
        components.remove(0);
    }
    tag_ok && components.iter().all(|c| plain_component(c))
}

/// `host[:port]`: dot-separated labels of lowercase letters, digits and inner `-`.
fn plain_host(text: &str) -> bool {
    let (host, port) = match text.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    };
    let label_ok = |label: &str| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    host.split('.').all(label_ok) && port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// A repository component: lowercase letters and digits, separated by one `.`, one or two
/// `_`, or any number of `-`.
fn plain_component(text: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !text.starts_with(alnum) || !text.ends_with(alnum) {
        return false;
    }
    text.split(alnum).all(|separator| {
        separator.is_empty() || matches!(separator, "." | "_" | "__") || separator.chars().all(|c| c == '-')
    })
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(registry) = &self.registry {
            write!(f, "{registry}/")?;
        }
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> (Option<String>, String, Option<String>, Option<String>) {
        let name = ImageName::parse(text).expect("parses");
        assert_eq!(name.to_string(), text, "renders as written");
        (
            name.registry().map(Into::into),
            name.repository().into(),
            name.tag().map(Into::into),
            name.digest().map(Into::into),
        )
    }

    #[test]
    fn keeps_a_registry_only_when_the_text_names_one() {
        assert_eq!(parts("busybox"), (None, "busybox".into(), None, None));
        assert_eq!(parts("ns/app:1.0"), (None, "ns/app".into(), Some("1.0".into()), None));
        assert_eq!(parts("localhost/app"), (Some("localhost".into()), "app".into(), None, None));
        assert_eq!(
            parts("127.0.0.1:5000/ns/app:2"),
            (Some("127.0.0.1:5000".into()), "ns/app".into(), Some("2".into()), None)
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            parts(&format!("registry.example.com/app:1@{digest}")),
            (Some("registry.example.com".into()), "app".into(), Some("1".into()), Some(digest.clone()))
        );
        assert_eq!(parts(&format!("app@{digest}")), (None, "app".into(), None, Some(digest)));
    }

    #[test]
    fn moves_between_registries_and_tags() {
        let name = ImageName::parse("busybox").expect("parses");
        assert_eq!(name.with_registry("localhost:5000").to_string(), "localhost:5000/busybox");
        assert_eq!(name.with_registry("localhost:5000").without_registry(), name);
        assert_eq!(name.or_latest().to_string(), "busybox:latest");
        assert_eq!(name.with_tag("1").or_latest().to_string(), "busybox:1");
        assert_eq!(name.in_library().map(|n| n.to_string()), Some("library/busybox".to_owned()));
        assert_eq!(ImageName::parse("ns/app").expect("parses").in_library(), None);
    }

    #[test]
    fn plainly_valid_accepts_common_names_and_only_what_the_grammar_accepts() {
        for common in
            ["busybox", "app:1.0", "ns/app:v1_x", "127.0.0.1:5000/ns/app:2", "localhost/app", "ns/a-b.c__d/e---f:T"]
        {
            assert!(plainly_valid(common), "{common}");
        }
        let long_tag = format!("a:{}", "t".repeat(128));
        assert!(plainly_valid(&long_tag) && !plainly_valid(&format!("{long_tag}t")));
        // Every string of up to 5 characters over an alphabet of the grammar's edges.
        let alphabet = ['a', '0', 'A', '.', '_', '-', '/', ':', '@', ' '];
        let mut texts = vec![String::new()];
        let mut accepted = 0;
        for _ in 0..5 {
            texts = texts.iter().flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}"))).collect();
            for text in &texts {
                if plainly_valid(text) {
                    accepted += 1;
                    assert!(ImageName::parse(text).is_ok(), "'{text}' is plainly valid but the grammar refuses it");
                }
            }
        }
        assert!(accepted > 1000, "{accepted}");
    }

    #[test]
    fn rejects_what_docker_rejects_naming_the_text() {
        for bad in ["", "UPPER/case", "app:bad tag", "app@sha256:short", "/app"] {
            let err = ImageName::parse(bad).expect_err(bad);
            assert!(err.message.starts_with(&format!("'{bad}' is not a valid image reference")), "{}", err.message);
        }
    }
}
