//! Temporary source directories that outlive their reactor, and how the next one collects them.
//!
//! A reactor that is SIGKILLed (or loses its machine's power) cannot remove its checkout. So each
//! temporary source directory is named after the process that made it,
//! `reactor-source-<pid>-<start>-<pidns>-XXXXXX`, where `<start>` is the process's start time (in
//! clock ticks since boot, from `/proc`): together they name one process, even once the pid is
//! reused. `<pidns>` names the pid namespace the pid means something in: a TMPDIR shared with a
//! container holds directories whose pids cannot be looked up from the other side, and those are
//! left alone. At its start, a reactor removes the directories of that form in TMPDIR whose owner
//! is gone. Only that prefix and only directories are looked at, and never one of a live process;
//! one whose owner cannot be told (no `/proc`) is left alone.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The name every temporary source directory starts with.
pub const PREFIX: &str = "reactor-source-";

/// A process, as its pid and start time name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub start: u64,
    /// The pid namespace's inode number.
    pub pidns: u64,
}

impl Owner {
    /// This reactor, when `/proc` can say when it started.
    pub fn this_process() -> Option<Owner> {
        let pid = std::process::id();
        Some(Owner { pid, start: start_time(pid)?, pidns: pid_namespace()? })
    }

    /// The prefix of this owner's temporary directories: `reactor-source-<pid>-<start>-<pidns>-`.
    pub fn prefix(self) -> String {
        format!("{PREFIX}{}-{}-{}-", self.pid, self.start, self.pidns)
    }

    /// The owner a directory's name records, if it has the form reactor gives them.
    pub fn of_name(name: &str) -> Option<Owner> {
        let mut parts = name.strip_prefix(PREFIX)?.splitn(4, '-');
        let pid = parts.next()?.parse().ok()?;
        let start = parts.next()?.parse().ok()?;
        let pidns = parts.next()?.parse().ok()?;
        // The random part tempfile adds.
        parts.next().filter(|random| !random.is_empty())?;
        Some(Owner { pid, start, pidns })
    }

    /// Whether the process is still there: the pid is in use by a process that started then.
    /// Only meaningful for an owner of this process's pid namespace.
    pub fn is_alive(self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// The inode number of this process's pid namespace (`/proc/self/ns/pid` reads `pid:[N]`).
fn pid_namespace() -> Option<u64> {
    let link = fs::read_link("/proc/self/ns/pid").ok()?;
    link.to_str()?.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// When process `pid` started, in clock ticks since boot: field 22 of `/proc/<pid>/stat`.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Field 3 (the state) is the first after the name.
    after_name.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Removes the temporary source directories in `tmpdir` whose reactor is gone; returns how many.
/// Nothing is done where `/proc` cannot tell who is alive.
pub fn collect(tmpdir: &Path) -> usize {
    let Some(me) = Owner::this_process() else {
        return 0;
    };
    let Ok(entries) = fs::read_dir(tmpdir) else {
        return 0;
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name.to_str().and_then(Owner::of_name) else {
            continue;
        };
        // Another pid namespace's pids cannot be looked up from here.
        if owner == me || owner.pidns != me.pidns || owner.is_alive() {
            continue;
        }
        // Only a real directory (not a symlink to one) and only one of this user's.
        let Ok(metadata) = entry.path().symlink_metadata() else {
            continue;
        };
        if !metadata.is_dir() || metadata.uid() != uid {
            continue;
        }
        match fs::remove_dir_all(entry.path()) {
            Ok(()) => {
                removed += 1;
                log::info!(
                    "removed {}, left behind by reactor process {}, which is gone",
                    entry.path().display(),
                    owner.pid
                );
            }
            Err(e) => {
                log::warn!("cannot remove {}, left behind by a reactor that is gone: {e}", entry.path().display())
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_record_their_owner_and_only_that_form_is_read() {
        let me = Owner::this_process().expect("/proc");
        assert!(me.is_alive());
        let name = format!("{}a1B2c3", me.prefix());
        assert_eq!(Owner::of_name(&name), Some(me));
        let others =
            ["reactor-source-abc123", "reactor-source-12-x-5-abc", "reactor-source-12-34-5-", "other-12-34-5-abc"];
        for other in others {
            assert_eq!(Owner::of_name(other), None, "{other}");
        }
        // The same pid with another start time is another process: a reused pid.
        assert!(!Owner { start: me.start + 1, ..me }.is_alive());
    }

    #[test]
    fn only_the_directories_of_processes_that_are_gone_are_collected() {
        let tmp = tempfile::tempdir().expect("tmp");
        let me = Owner::this_process().expect("/proc");
        // A child that has exited: its pid and start time name nobody now.
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let gone = Owner { pid: child.id(), start: start_time(child.id()).unwrap_or(1), pidns: me.pidns };
        child.wait().expect("wait");
        let gone = if gone.is_alive() { Owner { start: gone.start + 1, ..gone } } else { gone };
        let dirs = [
            (format!("{}keepme", me.prefix()), true),
            (format!("{}oldone", gone.prefix()), false),
            // Another pid namespace's: its pid means nothing here.
            (format!("{}elsewhere", Owner { pidns: me.pidns + 1, ..gone }.prefix()), true),
            ("reactor-source-unknown".to_owned(), true),
            ("someone-else".to_owned(), true),
        ];
        for (name, _) in &dirs {
            fs::create_dir_all(tmp.path().join(name).join("source/.git")).expect("mkdir");
        }
        // A file of the form is not touched either.
        let file = format!("{}afile", gone.prefix());
        fs::write(tmp.path().join(&file), "").expect("write");
        assert_eq!(collect(tmp.path()), 1);
        for (name, kept) in &dirs {
            assert_eq!(tmp.path().join(name).exists(), *kept, "{name}");
        }
        assert!(tmp.path().join(&file).exists());
    }
}
