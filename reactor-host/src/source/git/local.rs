//! A repository on this machine (a path or `file://`): checked out without a pack.
//!
//! libgit2 cannot fetch shallow over its local transport, and a full clone packs and unpacks
//! the whole history (about 140 ms for one 2 MB file). Instead the wanted commit is resolved in
//! the source repository itself, and the checkout's `objects/info/alternates` lists the source's
//! object directories, so that the tree is read straight from them: nothing is copied but the
//! files the work tree holds.
//!
//! The work tree does not depend on the source once written; the checkout's `.git` does, for
//! as long as it lives (the build), and would see objects vanish only if the source's were
//! pruned in that time.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository, RepositoryOpenFlags};

use super::{is_hex_prefix, FetchError, Wanted};

/// How many alternates deep reactor follows a source's own alternates (git stops at 5).
const ALTERNATES_DEPTH: usize = 5;

/// Makes `dest` a repository that borrows the objects of the repository at `source` (its work
/// tree, its `.git` directory, a bare repository, or a worktree with a `.git` file), and returns
/// it with the commit `wanted` names there. The work tree is left for the caller to check out.
pub(super) fn borrow_objects(source: &Path, wanted: &Wanted, dest: &Path) -> Result<(Repository, Oid), FetchError> {
    let failed = |e: git2::Error| FetchError::git(&e);
    // libgit2 says "failed to resolve path" or worse; what the user must fix is source.uri.
    if !source.exists() {
        return Err(FetchError::NoRepository(source.to_path_buf()));
    }
    let source_repo = Repository::open_ext(source, RepositoryOpenFlags::NO_SEARCH, std::iter::empty::<&OsStr>())
        .map_err(|e| match e.code() {
            git2::ErrorCode::NotFound => FetchError::NotARepository(source.to_path_buf()),
            _ => failed(e),
        })?;
    let oid = resolve(&source_repo, wanted)?;
    let common_dir = source_repo.commondir();
    let object_dirs = object_dirs(&common_dir.join("objects"));

    let repo = Repository::init(dest).map_err(failed)?;
    let git_dir = repo.path().to_path_buf();
    drop(repo);
    let write_failed = |what: &str, e: std::io::Error| FetchError::Failed(format!("cannot write {what}: {e}"));
    let info = git_dir.join("objects/info");
    std::fs::create_dir_all(&info).map_err(|e| write_failed("objects/info", e))?;
    let mut alternates = String::new();
    for dir in &object_dirs {
        let Some(dir) = dir.to_str() else {
            return Err(FetchError::Failed(format!("the object directory {} is not UTF-8", dir.display())));
        };
        alternates.push_str(dir);
        alternates.push('\n');
    }
    std::fs::write(info.join("alternates"), alternates).map_err(|e| write_failed("objects/info/alternates", e))?;
    // A shallow source's history ends where its `shallow` file says; the checkout's must too.
    let shallow = common_dir.join("shallow");
    if shallow.is_file() {
        std::fs::copy(&shallow, git_dir.join("shallow")).map_err(|e| write_failed("shallow", e))?;
    }
    // Opened again, so that its object database reads the alternates.
    let repo = Repository::open(dest).map_err(failed)?;
    log::info!("found {oid} in {}; the checkout borrows its objects (alternates): no pack copied", source.display());
    Ok((repo, oid))
}

/// The commit `wanted` names in `repo`: a branch, then a tag, then a full ref name, then a SHA
/// (full or abbreviated), as a clone of it would find it.
fn resolve(repo: &Repository, wanted: &Wanted) -> Result<Oid, FetchError> {
    let peeled = |object: git2::Object<'_>| object.peel_to_commit().map(|c| c.id());
    match wanted {
        Wanted::DefaultBranch => repo
            .head()
            .and_then(|head| head.peel_to_commit())
            .map(|c| c.id())
            .map_err(|e| FetchError::Failed(format!("no default branch to check out: {}", e.message()))),
        Wanted::Commit(oid) => {
            repo.find_commit(*oid).map(|c| c.id()).map_err(|_| FetchError::NoSuchCommit(oid.to_string()))
        }
        Wanted::Name(name) => {
            let mut refs = vec![format!("refs/heads/{name}"), format!("refs/tags/{name}")];
            if name.starts_with("refs/") {
                refs.push(name.clone());
            }
            let by_ref = refs.iter().find_map(|r| repo.find_reference(r).ok()?.peel(git2::ObjectType::Any).ok());
            if let Some(object) = by_ref {
                return peeled(object).map_err(|e| FetchError::Checkout(e.message().to_owned()));
            }
            if is_hex_prefix(name) {
                if let Ok(object) = repo.revparse_single(name) {
                    return peeled(object).map_err(|e| FetchError::Checkout(e.message().to_owned()));
                }
            }
            Err(FetchError::NoSuchCommit(name.clone()))
        }
    }
}

/// The object directories a repository borrowing from `objects` must list: that directory,
/// then the alternates it borrows from in turn, absolute and without repeats.
pub(super) fn object_dirs(objects: &Path) -> Vec<PathBuf> {
    let absolute = |dir: &Path| dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut found = vec![absolute(objects)];
    let mut level = vec![found[0].clone()];
    for _ in 0..ALTERNATES_DEPTH {
        let mut next = Vec::new();
        for dir in &level {
            for alternate in read_alternates(dir) {
                let alternate = absolute(&alternate);
                if !found.contains(&alternate) {
                    found.push(alternate.clone());
                    next.push(alternate);
                }
            }
        }
        level = next;
    }
    found
}

/// The entries of `objects/info/alternates` in the object directory `dir`; relative ones are
/// relative to `dir`, as git reads them.
fn read_alternates(dir: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(dir.join("info/alternates")) else {
        return Vec::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            // git quotes a path with unusual characters; plain paths are the common case.
            let line = line.strip_prefix('"').and_then(|l| l.strip_suffix('"')).unwrap_or(line);
            dir.join(line)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::git::tests::git;

    /// A repository at `dir/name` with one commit of `Dockerfile`.
    fn repo(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(&path).expect("mkdir");
        git(&path, &["init", "-q"]);
        std::fs::write(path.join("Dockerfile"), "FROM scratch\n").expect("write");
        git(&path, &["add", "-A"]);
        git(&path, &["commit", "-qm", "one"]);
        path
    }

    fn objects_of(repo: &Path) -> PathBuf {
        repo.canonicalize().expect("canonical").join(".git/objects")
    }

    fn dirs_for(source: &Path) -> Vec<PathBuf> {
        let repo =
            Repository::open_ext(source, RepositoryOpenFlags::NO_SEARCH, std::iter::empty::<&OsStr>()).expect("open");
        object_dirs(&repo.commondir().join("objects"))
    }

    #[test]
    fn alternates_point_at_the_object_directory_of_every_kind_of_repository() {
        let tmp = tempfile::tempdir().expect("tmp");
        let main = repo(tmp.path(), "main");
        // The work tree and its `.git` directory.
        assert_eq!(dirs_for(&main), [objects_of(&main)]);
        assert_eq!(dirs_for(&main.join(".git")), [objects_of(&main)]);
        // A bare repository.
        git(tmp.path(), &["clone", "-q", "--bare", "main", "bare.git"]);
        let bare = tmp.path().join("bare.git").canonicalize().expect("bare");
        assert_eq!(dirs_for(&bare), [bare.join("objects")]);
        // A worktree: its `.git` is a file; the objects are the main repository's.
        git(&main, &["worktree", "add", "-q", "../wt", "-b", "wt"]);
        assert!(tmp.path().join("wt/.git").is_file());
        assert_eq!(dirs_for(&tmp.path().join("wt")), [objects_of(&main)]);
    }

    #[test]
    fn the_sources_own_alternates_are_listed_too_relative_ones_resolved() {
        let tmp = tempfile::tempdir().expect("tmp");
        let main = repo(tmp.path(), "main");
        // `clone --shared` borrows main's objects through an absolute alternates entry.
        git(tmp.path(), &["clone", "-q", "--shared", "main", "shared"]);
        let shared = tmp.path().join("shared");
        assert_eq!(dirs_for(&shared), [objects_of(&shared), objects_of(&main)]);
        // A relative entry, a comment, a repeat, and a chain two deep.
        git(tmp.path(), &["clone", "-q", "--shared", "shared", "second"]);
        let second = tmp.path().join("second");
        std::fs::write(
            second.join(".git/objects/info/alternates"),
            "# borrowed\n../../../shared/.git/objects\n../../../shared/.git/objects\n",
        )
        .expect("write");
        assert_eq!(dirs_for(&second), [objects_of(&second), objects_of(&shared), objects_of(&main)]);
    }

    #[test]
    fn a_checkout_borrows_the_objects_and_resolves_names_in_the_source() {
        let tmp = tempfile::tempdir().expect("tmp");
        let main = repo(tmp.path(), "main");
        let first = git(&main, &["rev-parse", "HEAD"]);
        git(&main, &["tag", "-a", "-m", "tag", "v1"]);
        std::fs::write(main.join("Dockerfile"), "FROM busybox\n").expect("write");
        git(&main, &["commit", "-qam", "two"]);
        let second = git(&main, &["rev-parse", "HEAD"]);
        for (wanted, expected) in [
            (Wanted::DefaultBranch, &second),
            (Wanted::Name("main".into()), &second),
            (Wanted::Name("v1".into()), &first),
            (Wanted::Name(first[..7].to_owned()), &first),
            (Wanted::Commit(Oid::from_str(&first).expect("oid")), &first),
        ] {
            let dest = tempfile::tempdir().expect("dest");
            let (repo, oid) = borrow_objects(&main, &wanted, &dest.path().join("src")).expect("borrowed");
            assert_eq!(&oid.to_string(), expected, "{wanted:?}");
            assert!(repo.find_commit(oid).is_ok());
            let alternates =
                std::fs::read_to_string(dest.path().join("src/.git/objects/info/alternates")).expect("alternates");
            assert_eq!(alternates, format!("{}\n", objects_of(&main).display()));
            // No object was copied: no pack, no loose object.
            let copied = walk_files(&dest.path().join("src/.git/objects"));
            assert_eq!(copied, [dest.path().join("src/.git/objects/info/alternates")], "{wanted:?}");
        }
        let dest = tempfile::tempdir().expect("dest");
        let missing = borrow_objects(&main, &Wanted::Name("nope".into()), &dest.path().join("src"));
        assert!(matches!(missing, Err(FetchError::NoSuchCommit(n)) if n == "nope"));
        // A path that is not there, or is no repository, says so.
        let nowhere = tmp.path().join("nowhere");
        let missing = borrow_objects(&nowhere, &Wanted::DefaultBranch, &dest.path().join("a"));
        assert_eq!(
            missing.err().map(|e| e.to_string()).unwrap_or_default(),
            format!("the git repository {} does not exist", nowhere.display())
        );
        let plain = tmp.path().join("plain");
        std::fs::create_dir_all(&plain).expect("mkdir");
        let plain_dir = borrow_objects(&plain, &Wanted::DefaultBranch, &dest.path().join("b"));
        assert_eq!(
            plain_dir.err().map(|e| e.to_string()).unwrap_or_default(),
            format!("{} is not a git repository", plain.display())
        );
    }

    fn walk_files(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(walk_files(&path));
            } else {
                files.push(path);
            }
        }
        files
    }
}
