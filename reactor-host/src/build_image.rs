//! `reactor create-build-image`: reactor's own image, built `FROM scratch` on the selected engine
//! from a context reactor lays out itself, so no registry (public or not) is needed.
//!
//! The image holds the running reactor binary, the plugins shipped with it in the system plugin
//! directory, the shared libraries all of them need (as `ldd` resolves them on this machine, the
//! loader included), CA certificates, an ssh client for `ssh://` engines, and a non-root user.
//! Binaries and plugins are copied with their debug sections stripped (`objcopy --strip-debug`),
//! which makes the release image about a third of its unstripped size; symbols stay, so a
//! backtrace still names functions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The system plugin directory, in the image as on a host (see `plugins::discover`).
pub const SYSTEM_PLUGIN_DIR: &str = "/usr/lib/reactor/plugins";

/// The plugins a reactor release ships, by crate name (`lib<name>.so`).
pub const SHIPPED_PLUGINS: &[&str] = &["logs_submitter"];

/// The image's user, and its group.
pub const USER: &str = "reactor";
pub const UID: u32 = 1000;
pub const HOME: &str = "/home/reactor";

/// Files taken from this machine as they are.
const CA_CERTIFICATES: &str = "/etc/ssl/certs/ca-certificates.crt";
const SSH: &str = "/usr/bin/ssh";

/// The default tag: `reactor:<crate version>`.
pub fn default_tag() -> String {
    format!("reactor:{}", env!("CARGO_PKG_VERSION"))
}

/// Why the image could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("create-build-image: {0}")]
    Missing(String),
    #[error("create-build-image: --plugin {path}: {reason}")]
    BadPlugin { path: String, reason: String },
    #[error("create-build-image: cannot lay out the image's files in {dir}: {reason}")]
    Layout { dir: String, reason: String },
    #[error("create-build-image: `ldd {file}` failed: {reason} (install libc-bin)")]
    Ldd { file: String, reason: String },
    #[error("create-build-image: {0}")]
    Engine(#[from] crate::engine::Error),
    #[error("create-build-image: the engine's build of {tag} failed: {reason}")]
    Build { tag: String, reason: String },
}

impl Error {
    /// Bad input (a `--plugin` file that is not there) is 2; the rest is a failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::BadPlugin { .. } => crate::app::exit::INVALID_INPUT,
            _ => crate::app::exit::FAILED,
        }
    }
}

/// What was built.
#[derive(Debug)]
pub struct Built {
    pub tag: String,
    pub image_id: String,
    /// The image's size as the engine reports it (`docker image inspect -f '{{.Size}}'`).
    pub size: u64,
    pub plugins: Vec<String>,
}

/// Lays out the image's files and builds it on `engine` as `tag`. `plugins` replaces the shipped
/// plugins found beside the binary when it is not empty.
pub async fn create(engine: &crate::engine::Engine, tag: &str, plugins: &[PathBuf]) -> Result<Built, Error> {
    let context = tempfile::Builder::new()
        .prefix("reactor-build-image-")
        .tempdir()
        .map_err(|e| Error::Layout { dir: std::env::temp_dir().display().to_string(), reason: e.to_string() })?;
    let dir = context.path().to_path_buf();
    let laid_out = tokio::task::spawn_blocking({
        let plugins = plugins.to_vec();
        move || lay_out(&dir, &plugins)
    })
    .await
    .map_err(|e| Error::Layout { dir: context.path().display().to_string(), reason: e.to_string() })??;

    let labels = BTreeMap::from([
        ("org.opencontainers.image.title".to_owned(), "reactor".to_owned()),
        ("org.opencontainers.image.version".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
        (
            "org.opencontainers.image.description".to_owned(),
            "reactor: builds container images from a build.json".to_owned(),
        ),
    ]);
    let spec = crate::engine::BuildSpec {
        context_dir: context.path(),
        overlay_dir: None,
        dockerfile: "Dockerfile",
        tag,
        build_args: &BTreeMap::new(),
        labels: &labels,
    };
    let output = engine.build(&spec, |line| log::debug!(target: "reactor::build", "{line}")).await?;
    let image_id = match (output.image_id, output.error) {
        (Some(id), None) => id,
        (_, error) => {
            return Err(Error::Build { tag: tag.to_owned(), reason: error.unwrap_or_else(|| "no image ID".to_owned()) })
        }
    };
    let size = engine
        .inspect_image(tag)
        .await?
        .and_then(|image| image.get("Size").and_then(serde_json::Value::as_u64))
        .unwrap_or_default();
    Ok(Built { tag: tag.to_owned(), image_id, size, plugins: laid_out })
}

/// Writes the context into `dir`: `Dockerfile`, `rootfs/` (copied to `/`) and `home/` (the
/// user's home, copied with its owner). Returns the plugin files' names.
fn lay_out(dir: &Path, plugins: &[PathBuf]) -> Result<Vec<String>, Error> {
    let layout_err =
        |what: &Path, e: std::io::Error| Error::Layout { dir: what.display().to_string(), reason: e.to_string() };
    let rootfs = dir.join("rootfs");
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| Error::Missing(format!("cannot find the running reactor binary: {e}")))?;
    let plugins = if plugins.is_empty() { shipped_plugins(&exe)? } else { given_plugins(plugins)? };

    // ELF files whose libraries the image needs.
    let mut elves = Vec::new();
    let reactor_in_image = rootfs.join("usr/bin/reactor");
    copy_stripped(&exe, &reactor_in_image)?;
    elves.push(exe.clone());
    let mut names = Vec::new();
    for plugin in &plugins {
        let name = plugin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        copy_stripped(plugin, &rootfs.join(SYSTEM_PLUGIN_DIR.trim_start_matches('/')).join(&name))?;
        elves.push(plugin.clone());
        names.push(name);
    }
    let ssh = Path::new(SSH);
    if !ssh.is_file() {
        return Err(Error::Missing(format!(
            "no ssh client at {SSH}, which the image carries for ssh:// engines: install openssh-client"
        )));
    }
    copy_file(ssh, &rootfs.join("usr/bin/ssh"))?;
    elves.push(ssh.to_path_buf());

    let mut libraries = BTreeSet::new();
    for elf in &elves {
        libraries.extend(shared_libraries(elf)?);
    }
    for library in &libraries {
        // Where ldd found it, which is where the loader (and its cache's absence) looks.
        copy_file(library, &rootfs.join(library.strip_prefix("/").unwrap_or(library)))?;
    }

    let certificates = Path::new(CA_CERTIFICATES);
    if !certificates.is_file() {
        return Err(Error::Missing(format!("no CA certificates at {CA_CERTIFICATES}: install ca-certificates")));
    }
    copy_file(certificates, &rootfs.join(CA_CERTIFICATES.trim_start_matches('/')))?;

    let etc = rootfs.join("etc");
    let passwd = format!("root:x:0:0:root:/root:/sbin/nologin\n{USER}:x:{UID}:{UID}:reactor:{HOME}:/sbin/nologin\n");
    std::fs::write(etc.join("passwd"), passwd).map_err(|e| layout_err(&etc, e))?;
    std::fs::write(etc.join("group"), format!("root:x:0:\n{USER}:x:{UID}:\n")).map_err(|e| layout_err(&etc, e))?;
    for (path, mode) in [("tmp", 0o1777), ("run", 0o755), ("home", 0o755), ("root", 0o700)] {
        make_dir(&rootfs.join(path), mode)?;
    }
    make_dir(&dir.join("home").join(USER), 0o755)?;

    let dockerfile = format!(
        "FROM scratch\n\
         COPY rootfs/ /\n\
         COPY --chown={UID}:{UID} home/{USER}/ {HOME}/\n\
         ENV PATH=/usr/bin HOME={HOME} SSL_CERT_FILE={CA_CERTIFICATES}\n\
         USER {UID}\n\
         WORKDIR {HOME}\n\
         ENTRYPOINT [\"reactor\"]\n"
    );
    std::fs::write(dir.join("Dockerfile"), dockerfile).map_err(|e| layout_err(dir, e))?;
    Ok(names)
}

/// The shipped plugins, found beside the binary (a cargo target directory: `target/release/`)
/// or in `../lib/reactor/plugins` from it (an installed reactor: `/usr/bin`, `/usr/lib`).
fn shipped_plugins(exe: &Path) -> Result<Vec<PathBuf>, Error> {
    let bin_dir = exe.parent().unwrap_or(Path::new("/"));
    let dirs = [bin_dir.to_path_buf(), bin_dir.join("../lib/reactor/plugins")];
    SHIPPED_PLUGINS
        .iter()
        .map(|name| {
            let file = format!("lib{name}.so");
            dirs.iter().map(|dir| dir.join(&file)).find(|path| path.is_file()).ok_or_else(|| {
                let looked: Vec<String> = dirs.iter().map(|d| d.join(&file).display().to_string()).collect();
                Error::Missing(format!(
                    "the shipped plugin {file} is not beside reactor (looked at {}): build it with \
                     `cargo build --release -p {name}`, or name the plugins with --plugin FILE",
                    looked.join(", ")
                ))
            })
        })
        .collect()
}

fn given_plugins(plugins: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut seen = BTreeSet::new();
    for plugin in plugins {
        let bad = |reason: &str| Error::BadPlugin { path: plugin.display().to_string(), reason: reason.to_owned() };
        if !plugin.is_file() {
            return Err(bad("no such file"));
        }
        let name = plugin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !(name.starts_with("lib") && name.ends_with(".so")) {
            return Err(bad("a plugin directory offers only lib*.so files: rename it lib<name>.so"));
        }
        if !seen.insert(name) {
            return Err(bad("another --plugin has the same file name"));
        }
    }
    Ok(plugins.to_vec())
}

/// The shared libraries `elf` loads, the dynamic loader included, as `ldd` resolves them here.
fn shared_libraries(elf: &Path) -> Result<Vec<PathBuf>, Error> {
    let file = elf.display().to_string();
    let out =
        Command::new("ldd").arg(elf).output().map_err(|e| Error::Ldd { file: file.clone(), reason: e.to_string() })?;
    if !out.status.success() {
        let reason = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(Error::Ldd { file, reason });
    }
    parse_ldd(&String::from_utf8_lossy(&out.stdout)).map_err(|reason| Error::Ldd { file, reason })
}

/// `ldd`'s lines: `libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x…)`, the loader as
/// `/lib64/ld-linux-x86-64.so.2 (0x…)`, the vDSO with no path.
fn parse_ldd(text: &str) -> Result<Vec<PathBuf>, String> {
    let mut libraries = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let resolved = match line.split_once("=>") {
            Some((name, rest)) => {
                let rest = rest.trim();
                if rest.starts_with("not found") {
                    return Err(format!("{} is not found on this machine", name.trim()));
                }
                rest
            }
            None => line,
        };
        let path = resolved.split_whitespace().next().unwrap_or_default();
        if path.starts_with('/') {
            libraries.push(PathBuf::from(path));
        }
    }
    Ok(libraries)
}

/// Copies `from` to `to` without its debug sections (`objcopy --strip-debug`), or as it is when
/// objcopy is missing or fails (with a warning: the image is then larger).
fn copy_stripped(from: &Path, to: &Path) -> Result<(), Error> {
    make_parent(to)?;
    let stripped = Command::new("objcopy").arg("--strip-debug").arg(from).arg(to).output();
    match stripped {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            log::warn!(
                "objcopy --strip-debug {}: {}; copying it unstripped",
                from.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            copy_file(from, to)
        }
        Err(e) => {
            log::warn!(
                "cannot run objcopy ({e}): {} goes into the image unstripped (install binutils)",
                from.display()
            );
            copy_file(from, to)
        }
    }
}

/// Copies the file `from` names (following symlinks) to `to`, keeping its mode.
fn copy_file(from: &Path, to: &Path) -> Result<(), Error> {
    make_parent(to)?;
    std::fs::copy(from, to).map(drop).map_err(|e| Error::Layout {
        dir: to.display().to_string(),
        reason: format!("copying {}: {e}", from.display()),
    })
}

fn make_parent(path: &Path) -> Result<(), Error> {
    match path.parent() {
        Some(parent) => std::fs::create_dir_all(parent)
            .map_err(|e| Error::Layout { dir: parent.display().to_string(), reason: e.to_string() }),
        None => Ok(()),
    }
}

fn make_dir(path: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)))
        .map_err(|e| Error::Layout { dir: path.display().to_string(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_lines_give_the_libraries_and_the_loader_but_not_the_vdso() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f87)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f87ecb1b000)\n";
        assert_eq!(
            parse_ldd(text).expect("parsed"),
            [PathBuf::from("/lib/x86_64-linux-gnu/libz.so.1"), PathBuf::from("/lib64/ld-linux-x86-64.so.2")]
        );
    }

    #[test]
    fn a_library_ldd_cannot_find_is_named() {
        let err = parse_ldd("\tlibgone.so.3 => not found\n").expect_err("refused");
        assert!(err.contains("libgone.so.3"), "{err}");
    }

    #[test]
    fn a_plugin_must_be_a_lib_so_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("plugin.so");
        std::fs::write(&file, b"x").expect("write");
        let err = given_plugins(&[file]).expect_err("refused");
        assert!(err.to_string().contains("lib<name>.so"), "{err}");
        assert!(given_plugins(&[dir.path().join("libnone.so")]).is_err());
    }
}
