//! Submodules, when the build asks for them (`source.submodules`): each one is fetched at the
//! commit its gitlink records, the way the superproject is (depth 1 by SHA with the same
//! fallbacks over the network, the source's objects borrowed when local), then its own
//! submodules, recursively. Relative URLs (`../lib.git`) are resolved against the URL of the
//! repository that names them, as git does.

use std::path::{Component, Path};

use git2::{Oid, Repository};

use super::{fetch_and_check_out, FetchError, Wanted};
use crate::cancel::Cancel;
use crate::credentials::redact_url;

/// Deeper than this, submodules of submodules are taken for a loop.
const MAX_NESTING: usize = 16;

/// Why a submodule could not be fetched: its path (from the top of the source) and URL first.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("submodule '{path}' ({url}): {reason}")]
    Fetch { path: String, url: String, reason: String },
    #[error("submodule '{path}': {reason}")]
    Setup { path: String, reason: String },
    #[error("fetching the submodules was cancelled")]
    Cancelled,
}

/// Fetches every submodule of `repo`'s checkout, recursively; `url` is where `repo` came from.
pub(super) fn fetch_all(repo: &Repository, url: &str, cancel: &Cancel) -> Result<(), Error> {
    fetch_nested(repo, url, "", 0, cancel)
}

fn fetch_nested(repo: &Repository, url: &str, prefix: &str, nesting: usize, cancel: &Cancel) -> Result<(), Error> {
    let Some(workdir) = repo.workdir() else {
        return Ok(());
    };
    let setup = |path: &str, reason: String| Error::Setup { path: format!("{prefix}{path}"), reason };
    let gitlinks = gitlinks(repo).map_err(|e| setup(".", format!("cannot read the index: {}", e.message())))?;
    if gitlinks.is_empty() {
        return Ok(());
    }
    let modules = git2::Config::open(&workdir.join(".gitmodules")).ok();
    for (path, oid) in gitlinks {
        let shown = format!("{prefix}{path}");
        let module = modules.as_ref().and_then(|m| module_for(m, &path));
        let Some(module) = module else {
            return Err(setup(&path, "no URL for it in .gitmodules".to_owned()));
        };
        if module.update.as_deref() == Some("none") {
            log::info!("submodule '{shown}' not fetched: .gitmodules says `update = none`");
            continue;
        }
        let sub_url = resolve_relative_url(url, &module.url).map_err(|reason| setup(&path, reason))?;
        let fetch_failed = |reason: String| Error::Fetch { path: shown.clone(), url: redact_url(&sub_url), reason };
        if nesting >= MAX_NESTING {
            return Err(fetch_failed(format!("nested more than {MAX_NESTING} deep")));
        }
        let inside = Path::new(&path).components().all(|c| matches!(c, Component::Normal(_)));
        if !inside {
            return Err(setup(&path, "the path leaves the superproject".to_owned()));
        }
        let dest = workdir.join(&path);
        // The superproject's checkout leaves an empty directory there, or nothing.
        std::fs::create_dir_all(&dest).map_err(|e| setup(&path, format!("cannot make its directory: {e}")))?;
        let (sub_repo, _) =
            fetch_and_check_out(&sub_url, &Wanted::Commit(oid), &dest, cancel).map_err(|e| match e {
                FetchError::Cancelled => Error::Cancelled,
                FetchError::NoSuchCommit(_) => fetch_failed(format!("its repository has no commit {oid}")),
                other => fetch_failed(other.to_string()),
            })?;
        log::info!("submodule '{shown}' checked out at {oid}");
        fetch_nested(&sub_repo, &sub_url, &format!("{shown}/"), nesting + 1, cancel)?;
    }
    Ok(())
}

/// The gitlinks (mode 160000 entries) of the checked-out index: submodule paths and commits.
fn gitlinks(repo: &Repository) -> Result<Vec<(String, Oid)>, git2::Error> {
    const GITLINK: u32 = 0o160000;
    let index = repo.index()?;
    Ok(index
        .iter()
        .filter(|entry| entry.mode == GITLINK)
        .map(|entry| (String::from_utf8_lossy(&entry.path).into_owned(), entry.id))
        .collect())
}

/// A `.gitmodules` entry.
#[derive(Debug, PartialEq)]
struct Module {
    url: String,
    update: Option<String>,
}

/// The `.gitmodules` entry whose `path` is `path`.
fn module_for(modules: &git2::Config, path: &str) -> Option<Module> {
    let mut entries = modules.entries(Some(r"^submodule\..*\.path$")).ok()?;
    while let Some(Ok(entry)) = entries.next() {
        if entry.value().ok() != Some(path) {
            continue;
        }
        let name = entry.name().ok()?.strip_prefix("submodule.")?.strip_suffix(".path")?;
        let url = modules.get_string(&format!("submodule.{name}.url")).ok()?;
        let update = modules.get_string(&format!("submodule.{name}.update")).ok();
        return Some(Module { url, update });
    }
    None
}

/// A submodule URL as git resolves it: one starting with `./` or `../` is relative to `base`, the
/// URL of the repository whose `.gitmodules` names it (each `../` drops one component of it);
/// any other is taken as it is.
pub(super) fn resolve_relative_url(base: &str, url: &str) -> Result<String, String> {
    if !(url.starts_with("./") || url.starts_with("../")) {
        return Ok(url.to_owned());
    }
    let cannot = || format!("cannot resolve the relative URL '{url}' against {}", redact_url(base));
    let mut base = base.trim_end_matches('/').to_owned();
    // `scheme://host` is never dropped.
    let path_start = base.find("://").map(|i| i + 3 + base[i + 3..].find('/').unwrap_or(base.len() - i - 3));
    let mut rest = url;
    let mut after_colon = false;
    loop {
        if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("../") {
            rest = r;
            if after_colon {
                return Err(cannot());
            }
            match (base.rfind('/'), path_start) {
                (Some(slash), Some(start)) if slash < start => return Err(cannot()),
                (Some(slash), _) => base.truncate(slash),
                (None, None) => match base.rfind(':') {
                    // scp-like `host:repo`: what is left is the host.
                    Some(colon) => {
                        base.truncate(colon);
                        after_colon = true;
                    }
                    None => return Err(cannot()),
                },
                (None, Some(_)) => return Err(cannot()),
            }
        } else {
            break;
        }
    }
    Ok(format!("{base}{}{rest}", if after_colon { ":" } else { "/" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_submodule_urls_resolve_against_the_superprojects() {
        let resolved = |base: &str, url: &str| resolve_relative_url(base, url).expect(url);
        assert_eq!(resolved("git://h:9418/org/super.git", "../lib.git"), "git://h:9418/org/lib.git");
        assert_eq!(resolved("git://h/org/super.git/", "../lib.git"), "git://h/org/lib.git");
        assert_eq!(resolved("https://h/org/super", "./sub"), "https://h/org/super/sub");
        assert_eq!(resolved("https://h/org/super", "../../other/lib"), "https://h/other/lib");
        assert_eq!(resolved("git@h:org/super.git", "../lib.git"), "git@h:org/lib.git");
        assert_eq!(resolved("git@h:super.git", "../lib.git"), "git@h:lib.git");
        assert_eq!(resolved("/srv/git/super", "../lib"), "/srv/git/lib");
        assert_eq!(resolved("file:///srv/super", "../lib"), "file:///srv/lib");
        // Absolute URLs and paths are taken as they are.
        assert_eq!(resolved("git://h/super", "https://other/lib.git"), "https://other/lib.git");
        assert_eq!(resolved("git://h/super", "/srv/lib"), "/srv/lib");
        // Never past the host.
        let err = resolve_relative_url("git://h/super.git", "../../lib.git").expect_err("past the host");
        assert_eq!(err, "cannot resolve the relative URL '../../lib.git' against git://h/super.git");
        assert!(resolve_relative_url("git@h:super.git", "../../lib.git").is_err());
        assert!(resolve_relative_url("https://u:pw@h/s", "../../x").expect_err("past").contains("u:***@h"));
    }

    #[test]
    fn gitmodules_entries_are_found_by_path() {
        let tmp = tempfile::tempdir().expect("tmp");
        let file = tmp.path().join(".gitmodules");
        std::fs::write(
            &file,
            "[submodule \"lib.v2\"]\n\tpath = vendor/lib\n\turl = ../lib.git\n\
             [submodule \"docs\"]\n\tpath = docs\n\turl = https://h/docs.git\n\tupdate = none\n",
        )
        .expect("write");
        let config = git2::Config::open(&file).expect("config");
        assert_eq!(module_for(&config, "vendor/lib"), Some(Module { url: "../lib.git".into(), update: None }));
        assert_eq!(
            module_for(&config, "docs"),
            Some(Module { url: "https://h/docs.git".into(), update: Some("none".into()) })
        );
        assert_eq!(module_for(&config, "vendor"), None);
    }
}
