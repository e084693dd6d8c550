//! `--results-dir DIR`: what was pushed, one file per result, named as Tekton results are and as
//! Tekton Chains reads them: `IMAGE_URL` (the primary pushed `registry/name:tag`),
//! `IMAGE_DIGEST` (its manifest digest, `sha256:…`) and `IMAGES` (every pushed
//! `registry/name@sha256:…`, comma-separated).
//!
//! The three files are written whatever the outcome, empty when nothing was pushed: Tekton fails
//! a step whose declared result is missing, and the build's exit code, not a missing file, is
//! what should say whether it worked. A build that failed after pushing (an exit plugin, say)
//! still names what it pushed, since those images exist in the registry.

use std::collections::BTreeMap;
use std::path::Path;

use crate::engine::split_tag;

pub const IMAGE_URL: &str = "IMAGE_URL";
pub const IMAGE_DIGEST: &str = "IMAGE_DIGEST";
pub const IMAGES: &str = "IMAGES";

/// The three results' values from the pushed names and digests, `image` being the name the
/// build was tagged with. The primary reference is the first pushed name (in sorted order) that
/// is `image` in some registry; else the first pushed name.
pub fn values(image: &str, digests: &BTreeMap<String, String>) -> [(&'static str, String); 3] {
    let (repository, tag) = split_tag(image);
    let with_tag = format!("{repository}:{tag}");
    let primary = digests
        .iter()
        .find(|(name, _)| name.as_str() == with_tag || name.ends_with(&format!("/{with_tag}")))
        .or_else(|| digests.iter().next());
    let (url, digest) = primary.map(|(n, d)| (n.clone(), d.clone())).unwrap_or_default();
    let mut images: Vec<String> = Vec::new();
    for (name, digest) in digests {
        let entry = format!("{}@{digest}", split_tag(name).0);
        if !images.contains(&entry) {
            images.push(entry);
        }
    }
    [(IMAGE_URL, url), (IMAGE_DIGEST, digest), (IMAGES, images.join(","))]
}

/// Writes the three files into `dir` (made if missing), each replaced whole.
pub fn write(dir: &Path, image: &str, digests: &BTreeMap<String, String>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, value) in values(image, digests) {
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut file, value.as_bytes())?;
        file.persist(dir.join(name)).map_err(|e| e.error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries.iter().map(|(n, d)| ((*n).to_owned(), (*d).to_owned())).collect()
    }

    #[test]
    fn the_primary_is_the_built_name_in_a_registry_and_images_lists_every_repository_once() {
        let pushed = digests(&[
            ("127.0.0.1:5000/app:1", "sha256:aaa"),
            ("127.0.0.1:5000/app:latest", "sha256:aaa"),
            ("127.0.0.1:5001/app:1", "sha256:bbb"),
            ("127.0.0.1:5000/0-other:1", "sha256:ccc"),
        ]);
        let [(_, url), (_, digest), (_, images)] = values("app:1", &pushed);
        assert_eq!(url, "127.0.0.1:5000/app:1");
        assert_eq!(digest, "sha256:aaa");
        assert_eq!(
            images,
            "127.0.0.1:5000/0-other@sha256:ccc,127.0.0.1:5000/app@sha256:aaa,127.0.0.1:5001/app@sha256:bbb"
        );
    }

    #[test]
    fn an_untagged_image_is_latest_and_without_a_match_the_first_pushed_name_is_primary() {
        let pushed = digests(&[("r.example:5000/app:latest", "sha256:1")]);
        assert_eq!(values("app", &pushed)[0].1, "r.example:5000/app:latest");
        let pushed = digests(&[("r.example:5000/b:2", "sha256:2"), ("r.example:5000/c:3", "sha256:3")]);
        assert_eq!(values("app:1", &pushed)[0].1, "r.example:5000/b:2");
    }

    #[test]
    fn nothing_pushed_writes_three_empty_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let results = dir.path().join("results");
        write(&results, "app:1", &BTreeMap::new()).expect("written");
        for name in [IMAGE_URL, IMAGE_DIGEST, IMAGES] {
            assert_eq!(std::fs::read_to_string(results.join(name)).expect("file"), "");
        }
    }

    #[test]
    fn a_port_is_not_a_tag() {
        assert_eq!(split_tag("127.0.0.1:5000/app"), ("127.0.0.1:5000/app", "latest"));
        assert_eq!(split_tag("127.0.0.1:5000/app:1"), ("127.0.0.1:5000/app", "1"));
    }
}
