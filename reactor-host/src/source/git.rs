//! The `git` provider: fetches only the commit a build needs, with libgit2 (through git2), and
//! checks it out.
//!
//! - Network transports (`git://`, `http(s)://`, ssh): the branch, tag or SHA is fetched with
//!   depth 1; a SHA the server will not send directly is found by deepening ([`remote`]).
//! - Local paths and `file://`: no pack is made or copied; the checkout borrows the source's
//!   object database through `objects/info/alternates` ([`local`]).
//! - Submodules, when the build asks for them, the same way, recursively ([`submodules`]).
//! - TLS: libgit2 sets up OpenSSL whatever the URL; only URLs that can reach TLS pay for loading
//!   the CA bundle ([`prepare`]).

mod local;
mod remote;
pub(crate) mod submodules;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, OnceLock};
use std::time::Duration;

use git2::build::CheckoutBuilder;
use git2::{CheckoutNotificationType, Oid, Repository};

use super::Error;
use crate::cancel::Cancel;
use crate::credentials::redact_url;

/// How long a fetch waits for a server before it gives up, so that one that accepts and never
/// answers cannot hold a build for ever.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timeouts {
    /// To connect.
    pub connect: Duration,
    /// With nothing arriving (a read that gets nothing), or with less than
    /// [`remote::LOW_SPEED_BYTES`] of the pack arriving.
    pub idle: Duration,
}

impl Timeouts {
    /// Connecting never takes longer than this, whatever `--git-timeout` says.
    pub const MAX_CONNECT: Duration = Duration::from_secs(30);
    /// `--git-timeout`'s default: generous, since a server may think a while before it sends a
    /// big pack (it sends progress as it does, which counts).
    pub const DEFAULT_IDLE: Duration = Duration::from_secs(120);

    /// `idle` for reading, and at most [`Timeouts::MAX_CONNECT`] of it for connecting.
    pub fn with_idle(idle: Duration) -> Timeouts {
        Timeouts { connect: idle.min(Timeouts::MAX_CONNECT), idle }
    }
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts::with_idle(Timeouts::DEFAULT_IDLE)
    }
}

/// The limits [`set_timeouts`] chose, for every fetch of the process.
static TIMEOUTS: OnceLock<Timeouts> = OnceLock::new();

/// Sets the limits of every fetch of this process (libgit2's are global); the first call wins.
pub fn set_timeouts(timeouts: Timeouts) {
    let _ = TIMEOUTS.set(timeouts);
}

/// The limits in force, applied to libgit2 once, before the first connection.
fn timeouts() -> Timeouts {
    static APPLIED: Once = Once::new();
    let timeouts = *TIMEOUTS.get_or_init(Timeouts::default);
    APPLIED.call_once(|| {
        let millis = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX).max(1);
        // SAFETY: libgit2 reads these when it opens a socket; this runs on the fetching thread
        // before its first connection, and no other thread opens one (the TLS set-up thread of
        // `prepare` does not connect).
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(millis(timeouts.connect));
            let _ = git2::opts::set_server_timeout_in_milliseconds(millis(timeouts.idle));
        }
    });
    timeouts
}

/// `d` for a message: whole seconds, or with a fraction when it has one.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

/// Fetches `uri` into `dest`, checks out `commit` (a branch, tag or SHA; the remote's default
/// branch when `None`), and, with `submodules`, every submodule recursively. Returns the SHA
/// checked out. A local path `uri` is taken relative to `base_dir`.
pub fn clone(
    uri: &str,
    commit: Option<&str>,
    submodules: bool,
    base_dir: &Path,
    dest: &Path,
    cancel: &Cancel,
) -> Result<String, Error> {
    let url = clone_url(uri, base_dir);
    log::info!("cloning {url}");
    let wanted = match commit {
        None | Some("HEAD") => Wanted::DefaultBranch,
        Some(name) => Wanted::Name(name.to_owned()),
    };
    let (repo, oid) = fetch_and_check_out(&url, &wanted, dest, cancel).map_err(|e| as_source_error(e, uri, commit))?;
    if submodules {
        submodules::fetch_all(&repo, &url, cancel).map_err(|e| from_submodule_error(e, uri))?;
    }
    log::info!("checked out {oid}");
    Ok(oid.to_string())
}

/// What a build asks to check out of a repository.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Wanted {
    /// The remote's HEAD.
    DefaultBranch,
    /// A branch, a tag, a full ref name, or a SHA (full or abbreviated), tried in that order, or a revision expression on one (`main~1`).
    Name(String),
    /// A commit known by its SHA only (a submodule's gitlink).
    Commit(Oid),
}

/// The source error a failed fetch of `uri` at `commit` is said as.
pub(crate) fn as_source_error(e: FetchError, uri: &str, commit: Option<&str>) -> Error {
    match e {
        FetchError::NoSuchCommit(_) => {
            Error::NoSuchCommit { uri: uri.to_owned(), commit: commit.unwrap_or("HEAD").to_owned() }
        }
        FetchError::Checkout(reason) => {
            Error::Checkout { uri: uri.to_owned(), commit: commit.unwrap_or("HEAD").to_owned(), reason }
        }
        FetchError::Failed(reason) => Error::Clone { uri: uri.to_owned(), reason },
        FetchError::TimedOut(stall) => Error::TimedOut { uri: redact_url(uri), reason: stall.to_string() },
        FetchError::NoRepository(path) => Error::NoRepository { path: path.display().to_string() },
        FetchError::NotARepository(path) => Error::NotARepository { path: path.display().to_string() },
        FetchError::Cancelled => Error::Cancelled,
    }
}

/// The source error a failed submodule of `uri` is said as.
pub(crate) fn from_submodule_error(e: submodules::Error, uri: &str) -> Error {
    match e {
        submodules::Error::Cancelled => Error::Cancelled,
        other => Error::Clone { uri: uri.to_owned(), reason: other.to_string() },
    }
}

/// Why one repository (the source or a submodule) could not be fetched.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("no commit, branch or tag '{0}'")]
    NoSuchCommit(String),
    #[error("cannot check out: {0}")]
    Checkout(String),
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    TimedOut(Stall),
    #[error("the git repository {} does not exist", .0.display())]
    NoRepository(PathBuf),
    #[error("{} is not a git repository", .0.display())]
    NotARepository(PathBuf),
    #[error("cancelled")]
    Cancelled,
}

/// How a server kept a fetch waiting past [`Timeouts`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Stall {
    /// No connection within the connect timeout.
    Connect(Duration),
    /// Connected, and then nothing arrived for the idle timeout.
    Silent(Duration),
    /// Less than [`remote::LOW_SPEED_BYTES`] of the pack arrived in the idle timeout.
    TooSlow(Duration),
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Stall::Connect(d) => write!(f, "no connection within {}", seconds(d)),
            Stall::Silent(d) => write!(f, "the server sent nothing for {}", seconds(d)),
            Stall::TooSlow(d) => {
                write!(f, "less than {} bytes arrived in {}", remote::LOW_SPEED_BYTES, seconds(d))
            }
        }
    }
}

impl FetchError {
    /// A libgit2 failure, as one line; a certificate that does not verify says how to trust it.
    fn git(e: &git2::Error) -> FetchError {
        let message = one_line(e.message());
        // libgit2 says so when a socket's poll ran out of the time `timeouts()` gave it.
        if e.code() == git2::ErrorCode::Timeout || message.contains("timed out") {
            let timeouts = timeouts();
            return FetchError::TimedOut(if message.contains("connect") {
                Stall::Connect(timeouts.connect)
            } else {
                Stall::Silent(timeouts.idle)
            });
        }
        if e.code() == git2::ErrorCode::Certificate || e.class() == git2::ErrorClass::Ssl {
            return FetchError::Failed(format!(
                "{message} (certificates are always verified: trust the server's CA with SSL_CERT_FILE or GIT_SSL_CAINFO)"
            ));
        }
        FetchError::Failed(message)
    }
}

/// Fetches what `wanted` names from `url` into `dest` and checks it out (HEAD detached there).
fn fetch_and_check_out(
    url: &str,
    wanted: &Wanted,
    dest: &Path,
    cancel: &Cancel,
) -> Result<(Repository, Oid), FetchError> {
    let (repo, oid) = match Location::of(url) {
        Location::Local(path) => local::borrow_objects(&path, wanted, dest)?,
        Location::Remote(transport) => {
            if transport.can_reach_tls() {
                tls_ready().map_err(FetchError::Failed)?;
            }
            timeouts();
            remote::fetch(url, wanted, dest, cancel)?
        }
    };
    if cancel.is_cancelled() {
        return Err(FetchError::Cancelled);
    }
    check_out(&repo, oid, cancel).map_err(|e| {
        if cancel.is_cancelled() {
            FetchError::Cancelled
        } else {
            FetchError::Checkout(one_line(e.message()))
        }
    })?;
    Ok((repo, oid))
}

/// Writes `oid`'s tree into the work tree and detaches HEAD at it; a cancellation stops it
/// between two files.
fn check_out(repo: &Repository, oid: Oid, cancel: &Cancel) -> Result<(), git2::Error> {
    let commit = repo.find_commit(oid)?;
    let mut checkout = CheckoutBuilder::new();
    checkout.force().notify_on(CheckoutNotificationType::UPDATED).notify(|_, _, _, _, _| !cancel.is_cancelled());
    repo.checkout_tree(commit.as_object(), Some(&mut checkout))?;
    repo.set_head_detached(oid)
}

/// Where a repository is, as far as the way to fetch it goes.
#[derive(Debug, PartialEq)]
pub(crate) enum Location {
    /// On this machine: a path, or a `file://` URL (as a path).
    Local(PathBuf),
    /// Across a network transport.
    Remote(Transport),
}

/// A network transport, by what it can reach.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Transport {
    Git,
    Ssh,
    Http,
    Https,
    /// A scheme libgit2 may know and reactor does not: assumed to reach TLS.
    Other,
}

impl Transport {
    /// `http://` may be redirected to `https://`, so it needs the CA bundle as much.
    pub(crate) fn can_reach_tls(self) -> bool {
        matches!(self, Transport::Http | Transport::Https | Transport::Other)
    }
}

impl Location {
    /// Classifies a URL as [`clone_url`] returns it (a local path is absolute there).
    pub(crate) fn of(url: &str) -> Location {
        if let Some((scheme, rest)) = url.split_once("://") {
            let is_scheme =
                !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            if is_scheme {
                return match scheme.to_ascii_lowercase().as_str() {
                    "file" => Location::Local(file_url_path(rest)),
                    "git" => Location::Remote(Transport::Git),
                    "ssh" | "git+ssh" | "ssh+git" => Location::Remote(Transport::Ssh),
                    "http" => Location::Remote(Transport::Http),
                    "https" => Location::Remote(Transport::Https),
                    _ => Location::Remote(Transport::Other),
                };
            }
        }
        if is_scp_like(url) {
            Location::Remote(Transport::Ssh)
        } else {
            Location::Local(PathBuf::from(url))
        }
    }
}

/// The path of a `file://` URL (what follows `file://`): an empty host or `localhost`, then the
/// path, `%XX` escapes decoded.
fn file_url_path(rest: &str) -> PathBuf {
    let path = rest.strip_prefix("localhost").filter(|p| p.starts_with('/')).unwrap_or(rest);
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(decoded))
}

/// Set when [`prepare`] initialised libgit2 without the CA bundle file (see there).
static TRUST_WITHHELD: AtomicBool = AtomicBool::new(false);

/// Initialises libgit2 ahead of cloning `url`. Must run before any other thread exists.
///
/// libgit2 sets up OpenSSL when it initialises, whatever the URL, and OpenSSL 3 takes about
/// 20 ms to parse the system's CA bundle file: a third of reactor's whole overhead on a small
/// build. For a URL that can never reach TLS (a local path, `file://`, `git://`, ssh) that file
/// is withheld for that moment (the hashed CA directory, read lazily, stays), and loaded later
/// only if a submodule needs TLS after all. Any other URL (`http://` too, which may redirect to
/// `https://`) gets the real settings, on a background thread, overlapping the rest of start-up.
pub fn prepare(url: &str) {
    let init = || drop(git2::Buf::new()); // any git2 constructor initialises it, once
    let can_reach_tls = match Location::of(url) {
        Location::Local(_) => false,
        Location::Remote(transport) => transport.can_reach_tls(),
    };
    if can_reach_tls {
        // git2 probes for the CA bundle as it initialises and exports what it finds; done here
        // first, on the only thread, its own probe finds the variables set and changes nothing,
        // so no `setenv` on the background thread races a `getenv` here.
        // SAFETY: no other thread exists yet (this function's contract).
        unsafe { openssl_probe::init_openssl_env_vars() };
        std::thread::spawn(|| {
            if let Err(e) = tls_ready() {
                log::debug!("TLS set-up: {e}");
            }
        });
        return;
    }
    const VARS: [&str; 2] = ["SSL_CERT_FILE", "SSL_CERT_DIR"];
    let saved = VARS.map(std::env::var_os);
    // No other thread exists yet to read the environment while it is changed (the caller's
    // contract); libgit2 reads it once, here.
    std::env::set_var("SSL_CERT_FILE", "/dev/null");
    init();
    TRUST_WITHHELD.store(true, Ordering::SeqCst);
    for (var, value) in VARS.iter().zip(saved) {
        match value {
            Some(value) => std::env::set_var(var, value),
            None => std::env::remove_var(var),
        }
    }
}

/// Makes libgit2 ready to verify certificates, once: the CA bundle [`prepare`] withheld, if it
/// did, and the CAs git users name in `GIT_SSL_CAINFO` / `GIT_SSL_CAPATH`, which libgit2 does not
/// read by itself. Certificate checks are never turned off.
fn tls_ready() -> Result<(), String> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            drop(git2::Buf::new()); // initialised (or waits for the background thread doing it)
            if TRUST_WITHHELD.load(Ordering::SeqCst) {
                if let Some(file) = openssl_probe::probe().cert_file {
                    // SAFETY: no connection is open yet: this runs before the first one.
                    unsafe { git2::opts::set_ssl_cert_file(&file) }
                        .map_err(|e| format!("cannot load the CA bundle {}: {}", file.display(), e.message()))?;
                }
            }
            if let Some(file) = std::env::var_os("GIT_SSL_CAINFO").filter(|v| !v.is_empty()) {
                let file = PathBuf::from(file);
                // SAFETY: as above.
                unsafe { git2::opts::set_ssl_cert_file(&file) }
                    .map_err(|e| format!("cannot load GIT_SSL_CAINFO={}: {}", file.display(), one_line(e.message())))?;
            }
            if let Some(dir) = std::env::var_os("GIT_SSL_CAPATH").filter(|v| !v.is_empty()) {
                let dir = PathBuf::from(dir);
                // SAFETY: as above.
                unsafe { git2::opts::set_ssl_cert_dir(&dir) }
                    .map_err(|e| format!("cannot use GIT_SSL_CAPATH={}: {}", dir.display(), one_line(e.message())))?;
            }
            if std::env::var_os("GIT_SSL_NO_VERIFY").is_some() {
                log::warn!(
                    "GIT_SSL_NO_VERIFY is ignored: reactor always verifies certificates \
                     (trust a CA with SSL_CERT_FILE or GIT_SSL_CAINFO)"
                );
            }
            Ok(())
        })
        .clone()
}

/// URLs pass through; anything else is a local path, made absolute against `base_dir`.
pub fn clone_url(uri: &str, base_dir: &Path) -> String {
    let is_url = uri.contains("://") || is_scp_like(uri);
    if is_url || Path::new(uri).is_absolute() {
        uri.to_owned()
    } else {
        base_dir.join(uri).display().to_string()
    }
}

/// `user@host:path`, git's scp-like ssh syntax.
fn is_scp_like(uri: &str) -> bool {
    match (uri.find(':'), uri.find('/')) {
        (Some(colon), Some(slash)) => colon < slash && uri[..colon].contains('@'),
        (Some(colon), None) => uri[..colon].contains('@'),
        _ => false,
    }
}

/// A message (libgit2's, or a server's) as one line.
fn one_line(message: &str) -> String {
    message.split(['\n', '\r']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
}

/// `text` is a SHA or the start of one (at least 4 hex digits, as git requires).
fn is_hex_prefix(text: &str) -> bool {
    (4..=40).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `text` as a full SHA-1.
fn full_sha(text: &str) -> Option<Oid> {
    (text.len() == 40 && is_hex_prefix(text)).then(|| Oid::from_str(text).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pass_and_relative_paths_are_anchored() {
        let base = Path::new("/builds");
        assert_eq!(clone_url("https://example.com/r.git", base), "https://example.com/r.git");
        assert_eq!(clone_url("file:///srv/r", base), "file:///srv/r");
        assert_eq!(clone_url("git@host:org/r.git", base), "git@host:org/r.git");
        assert_eq!(clone_url("/srv/r", base), "/srv/r");
        assert_eq!(clone_url("repos/r", base), "/builds/repos/r");
    }

    #[test]
    fn urls_are_classified_by_what_their_transport_can_reach() {
        let local = |p: &str| Location::Local(PathBuf::from(p));
        assert_eq!(Location::of("/srv/r"), local("/srv/r"));
        assert_eq!(Location::of("file:///srv/r"), local("/srv/r"));
        assert_eq!(Location::of("FILE://localhost/srv/my%20repo"), local("/srv/my repo"));
        assert_eq!(Location::of("file:///srv/100%"), local("/srv/100%"));
        assert_eq!(Location::of("/srv/odd://name"), local("/srv/odd://name"));
        assert_eq!(Location::of("git://h/r.git"), Location::Remote(Transport::Git));
        assert_eq!(Location::of("ssh://git@h/r.git"), Location::Remote(Transport::Ssh));
        assert_eq!(Location::of("git@h:org/r.git"), Location::Remote(Transport::Ssh));
        assert_eq!(Location::of("http://h/r.git"), Location::Remote(Transport::Http));
        assert_eq!(Location::of("HTTPS://u:p@h/r.git"), Location::Remote(Transport::Https));
        assert_eq!(Location::of("weird+proto://h/r"), Location::Remote(Transport::Other));
        // What may be redirected to TLS, or is unknown, gets the CA bundle; the rest saves it.
        for (transport, tls) in [
            (Transport::Git, false),
            (Transport::Ssh, false),
            (Transport::Http, true),
            (Transport::Https, true),
            (Transport::Other, true),
        ] {
            assert_eq!(transport.can_reach_tls(), tls, "{transport:?}");
        }
    }

    #[test]
    fn timeouts_connect_within_at_most_30_s_and_stalls_say_how_long() {
        assert_eq!(Timeouts::default(), Timeouts { connect: Duration::from_secs(30), idle: Duration::from_secs(120) });
        let short = Timeouts::with_idle(Duration::from_millis(1500));
        assert_eq!(short.connect, short.idle);
        assert_eq!(Stall::Silent(short.idle).to_string(), "the server sent nothing for 1.5 s");
        assert_eq!(Stall::Connect(Duration::from_secs(30)).to_string(), "no connection within 30 s");
        assert_eq!(Stall::TooSlow(Duration::from_secs(60)).to_string(), "less than 1024 bytes arrived in 60 s");
    }

    #[test]
    fn messages_become_one_line_and_shas_are_recognised() {
        assert_eq!(one_line("remote: error\n\nfatal: x\r\n"), "remote: error; fatal: x");
        assert!(is_hex_prefix("abc1") && !is_hex_prefix("abc") && !is_hex_prefix("main"));
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(full_sha(sha).map(|o| o.to_string()).as_deref(), Some(sha));
        assert_eq!(full_sha(&sha[..39]), None);
    }

    /// Runs the git CLI in `dir` with a fixed identity and default branch (also for the
    /// submodules' tests); its trimmed stdout.
    pub(super) fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"])
            .args(args)
            .output()
            .expect("run git");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `served/r.git` with two commits, served by git-daemon: (URL, daemon, SHA of the tip).
    fn served(dir: &Path) -> (String, std::process::Child, String) {
        let work = dir.join("work");
        std::fs::create_dir_all(&work).expect("mkdir");
        git(&work, &["init", "-q"]);
        for content in ["one", "two"] {
            std::fs::write(work.join("Dockerfile"), content).expect("write");
            git(&work, &["add", "-A"]);
            git(&work, &["commit", "-qm", content]);
        }
        let served = dir.join("served");
        std::fs::create_dir_all(&served).expect("mkdir");
        git(&served, &["clone", "-q", "--bare", "../work", "r.git"]);
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let daemon = std::process::Command::new(Path::new(&git(dir, &["--exec-path"])).join("git-daemon"))
            .args(["--export-all", "--reuseaddr", "--listen=127.0.0.1", &format!("--port={port}")])
            .arg(format!("--base-path={}", served.display()))
            .arg(&served)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("git-daemon");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "git daemon did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        (format!("git://127.0.0.1:{port}/r.git"), daemon, git(&work, &["rev-parse", "HEAD"]))
    }

    #[test]
    fn a_remote_branch_is_fetched_shallow_and_a_cancelled_fetch_stops() {
        let tmp = tempfile::tempdir().expect("tmp");
        let (url, mut daemon, tip) = served(tmp.path());
        let cancel = Cancel::default();
        let fetched = clone(&url, None, false, tmp.path(), &tmp.path().join("a"), &cancel);
        let shallow = Repository::open(tmp.path().join("a")).map(|r| r.is_shallow());
        // Cancelled before it starts: the progress callbacks stop the transfer at once.
        cancel.cancel(crate::cancel::Signal::Terminate);
        let cancelled = clone(&url, None, false, tmp.path(), &tmp.path().join("b"), &cancel);
        let local = clone("work", None, false, tmp.path(), &tmp.path().join("c"), &cancel);
        let _ = daemon.kill();
        let _ = daemon.wait();
        assert_eq!(fetched.expect("fetched"), tip);
        assert!(shallow.expect("opens"), "depth 1");
        assert!(matches!(cancelled, Err(Error::Cancelled)), "{cancelled:?}");
        assert!(matches!(local, Err(Error::Cancelled)), "{local:?}");
    }
}
