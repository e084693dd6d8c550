//! Who could have changed a plugin file: reactor runs the code it loads with its own rights, so
//! a file or directory that another user can write is refused, as ssh refuses a key file and sudo
//! a sudoers file that others can write. `--allow-insecure-plugin-dirs` lifts the refusal.

use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// The flag that lifts the refusal; named in every refusal.
pub const OVERRIDE: &str = "--allow-insecure-plugin-dirs";

/// What a refusal is about: a plugin directory (which others could add plugins to) or the
/// directory holding a file named on the command line (a sticky one such as /tmp is fine there:
/// others cannot replace a file they do not own in it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    File,
    PluginDir,
    ParentOfNamedFile,
}

/// Why `path` (with these metadata, symbolic links followed) must not be trusted, as one line
/// with the fix; `None` when only its owner (the current user or root) can change it.
pub fn refusal(path: &Path, metadata: &Metadata, kind: Kind) -> Option<String> {
    let mode = metadata.permissions().mode() & 0o7777;
    let what = if metadata.is_dir() { "directory" } else { "file" };
    let sticky = mode & 0o1000 != 0;
    let why = if mode & 0o002 != 0 && !(kind == Kind::ParentOfNamedFile && sticky) {
        format!("the {what} is writable by every user (mode {mode:04o})")
    } else if mode & 0o020 != 0 && !(kind == Kind::ParentOfNamedFile && sticky) {
        format!("the {what} is writable by its group (mode {mode:04o})")
    } else {
        let owner = metadata.uid();
        let me = current_uid();
        if owner == 0 || owner == me {
            return None;
        }
        format!("the {what} belongs to another user (uid {owner}; you are uid {me})")
    };
    let fix = if why.contains("writable") {
        format!("chmod go-w {}", path.display())
    } else {
        format!("chown {} {}", current_uid(), path.display())
    };
    Some(format!(
        "{}: refused: {why}, so another user could make reactor run their code; fix: {fix}, or pass {OVERRIDE} to accept the risk",
        path.display()
    ))
}

/// Checks `path` (following symbolic links): `Ok` when it is safe or `allow_insecure`, else the
/// refusal. A path that cannot be read is left to whoever opens it next, which says why.
pub fn check(path: &Path, kind: Kind, allow_insecure: bool) -> Result<(), String> {
    let Ok(metadata) = std::fs::metadata(path) else {
        return Ok(());
    };
    match refusal(path, &metadata, kind) {
        Some(why) if allow_insecure => {
            log::debug!("{why} (accepted: {OVERRIDE})");
            Ok(())
        }
        Some(why) => Err(why),
        None => Ok(()),
    }
}

/// The effective user id of this process.
pub fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn refuses_what_others_can_write_and_says_how_to_fix_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("libx.so");
        std::fs::write(&file, b"x").expect("write");
        chmod(&file, 0o755);
        assert_eq!(check(&file, Kind::File, false), Ok(()));

        chmod(&file, 0o757);
        let why = check(&file, Kind::File, false).expect_err("world-writable");
        assert!(why.contains("writable by every user (mode 0757)"), "{why}");
        assert!(why.contains(&format!("chmod go-w {}", file.display())) && why.contains(OVERRIDE), "{why}");
        assert_eq!(check(&file, Kind::File, true), Ok(()));

        chmod(&file, 0o775);
        assert!(check(&file, Kind::File, false).expect_err("group").contains("writable by its group"));

        // A sticky, world-writable directory (as /tmp) may hold a named file, not plugins.
        chmod(dir.path(), 0o1777);
        assert_eq!(check(dir.path(), Kind::ParentOfNamedFile, false), Ok(()));
        assert!(check(dir.path(), Kind::PluginDir, false).is_err());
        chmod(dir.path(), 0o700);

        // Another user's file, when this test may give one away (it runs as root in CI).
        if current_uid() == 0 {
            chmod(&file, 0o755);
            std::os::unix::fs::chown(&file, Some(65534), None).expect("chown");
            let why = check(&file, Kind::File, false).expect_err("another user's");
            assert!(why.contains("belongs to another user (uid 65534; you are uid 0)"), "{why}");
            assert!(why.contains(&format!("chown 0 {}", file.display())), "{why}");
        }
    }
}
