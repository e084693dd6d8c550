//! Engines named `ssh://[user@]host[:port][/socket-path]`, reached as the docker CLI reaches them:
//! the system `ssh` runs `docker system dial-stdio` on the remote host and the Docker API is
//! spoken over its stdin and stdout.
//!
//! bollard's own `ssh` feature hands `user@host:port` to the openssh crate, which takes
//! `host:port` for a host name, so a port in the URL cannot work there. Here every connection
//! of bollard's HTTP client is one `ssh -l USER -p PORT -- HOST docker system dial-stdio` child
//! of our own, given no `-i` or `-F`: the user's ssh config, agent and known_hosts apply exactly
//! as for the docker CLI. `BatchMode=yes` keeps ssh from ever prompting.
//!
//! ssh's stderr is kept, so that a failed connection says why in one line (unknown host key,
//! refused login, no `docker` over there, unreachable) instead of hyper's "connection closed".
//!
//! The children live in their own process group, so a Ctrl-C at the terminal reaches reactor
//! only and the cancellation can still remove its containers through them; they are killed
//! when their connection is dropped and, for those still open, when the process exits.

use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex, Once};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bollard::{BollardRequest, Docker};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Notify;

/// bollard's request timeout for the connection (its default for the other transports).
const REQUEST_TIMEOUT_SECS: u64 = 120;
/// As the docker CLI passes it: a host that does not answer fails the connection in 30 s.
const CONNECT_TIMEOUT_SECS: u64 = 30;
/// How long a failed request waits for ssh's stderr to end, to say why it failed.
const STDERR_GRACE: Duration = Duration::from_secs(2);
/// ssh's stderr kept per connection: its last lines are what explain a failure.
const STDERR_KEPT_BYTES: usize = 4096;

/// An `ssh://` engine URL, taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshUrl {
    /// The URL as given (it cannot hold a password: those are refused).
    pub url: String,
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The engine's socket on the remote host, when not the remote docker's default.
    pub socket: Option<String>,
}

/// Why an `ssh://` engine cannot be used; every message names the URL and what to do.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    #[error("engine URL {url}: {reason} (expected ssh://[user@]host[:port][/socket-path])")]
    BadUrl { url: String, reason: String },
    #[error("cannot run `ssh` for the engine {url}: {reason} (install an ssh client, e.g. Debian's openssh-client)")]
    NoSshClient { url: String, reason: String },
    #[error(
        "the engine {url}: ssh does not know the host key of {target} (\"Host key verification failed.\"); add it to \
         known_hosts after checking its fingerprint, e.g. `ssh-keyscan{port_flag} {host} >> ~/.ssh/known_hosts`"
    )]
    UnknownHostKey { url: String, target: String, host: String, port_flag: String },
    #[error(
        "the engine {url}: {target} refused the ssh login of {user} ({detail}); check that a key authorized for \
         that user is loaded in ssh-agent or named by IdentityFile in your ssh config"
    )]
    PermissionDenied { url: String, target: String, user: String, detail: String },
    #[error(
        "the engine {url}: the remote host has no `docker` command ({detail}); install the docker CLI there (reactor \
         runs `docker system dial-stdio` on it), or put it on the PATH of non-interactive ssh sessions"
    )]
    NoRemoteDocker { url: String, detail: String },
    #[error(
        "the engine {url}: `docker` on the remote host cannot reach its engine ({detail}); is dockerd running there, \
         and DOCKER_HOST (or the URL's socket path) right for ssh sessions?"
    )]
    RemoteEngineDown { url: String, detail: String },
    #[error("cannot reach the engine {url}: {detail} (is sshd running on {target}, and are host and port right?)")]
    Unreachable { url: String, target: String, detail: String },
    #[error(
        "the engine {url}: ssh failed: {detail}; run that ssh by hand (`reactor -v` logs its command line) to see \
         the whole of its answer"
    )]
    Ssh { url: String, detail: String },
}

impl SshUrl {
    /// Parses `ssh://[user@]host[:port][/socket-path]`, refusing what the docker CLI refuses (a
    /// password, a query, a fragment). `[::1]:2222` is an IPv6 host with a port.
    pub fn parse(url: &str) -> Result<SshUrl, Error> {
        let bad = |reason: &str| Error::BadUrl { url: redact(url), reason: reason.to_owned() };
        let rest = url.strip_prefix("ssh://").ok_or_else(|| bad("not an ssh:// URL"))?;
        if rest.contains('?') {
            return Err(bad("a query is not allowed after the host"));
        }
        if rest.contains('#') {
            return Err(bad("a fragment is not allowed after the host"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (user, host_port) = match authority.rsplit_once('@') {
            Some((user, host_port)) => {
                if user.contains(':') {
                    return Err(bad("a password in the URL is not supported: use a key, or ssh-agent"));
                }
                if user.is_empty() {
                    return Err(bad("the user before '@' is empty"));
                }
                (Some(user.to_owned()), host_port)
            }
            None => (None, authority),
        };
        let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or_else(|| bad("no ']' after an IPv6 address"))?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?)),
            }
        } else {
            match host_port.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        // ssh would take these for options even after `--` on some versions of the docker CLI;
        // they are no host names anyway.
        if host.starts_with('-') || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("the host is not a host name or address"));
        }
        if user.as_deref().is_some_and(|u| u.starts_with('-') || u.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(bad("the user name is not one ssh accepts"));
        }
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad(&format!("the port '{p}' is not a number from 1 to 65535")))?,
            ),
        };
        let socket = match path.trim_end_matches('/') {
            "" => None,
            p => Some(p.to_owned()),
        };
        Ok(SshUrl { url: url.to_owned(), user, host: host.to_owned(), port, socket })
    }

    /// The arguments after `ssh`, as the docker CLI builds them: options, `-l`, `-p`, `--`, the
    /// host, and the remote command.
    pub fn ssh_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "-o".into(),
            format!("ConnectTimeout={CONNECT_TIMEOUT_SECS}"),
            // Never prompt (for a passphrase, a password, a new host key): fail, and say why.
            "-o".into(),
            "BatchMode=yes".into(),
            "-T".into(),
        ];
        if let Some(user) = &self.user {
            args.extend(["-l".into(), user.clone()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".into(), port.to_string()]);
        }
        args.extend(["--".into(), self.host.clone(), "docker".into()]);
        if let Some(socket) = &self.socket {
            // The remote side joins the command into one shell line: quote the path.
            args.extend(["--host".into(), shell_quote(&format!("unix://{socket}"))]);
        }
        args.extend(["system".into(), "dial-stdio".into()]);
        args
    }

    /// `host` or `host:port`, as a person would name the machine.
    fn target(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// Words what ssh wrote to stderr before it gave up, as one of the errors above.
    fn explain(&self, stderr: &str) -> Error {
        let url = self.url.clone();
        let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let line_with = |needle: &str| lines.iter().find(|l| l.contains(needle)).map(|l| (*l).to_owned());
        if line_with("Host key verification failed").is_some() {
            let port_flag = self.port.map(|p| format!(" -p {p}")).unwrap_or_default();
            return Error::UnknownHostKey { url, target: self.target(), host: self.host.clone(), port_flag };
        }
        if let Some(detail) = line_with("Permission denied") {
            let user = match &self.user {
                Some(user) => format!("user '{user}'"),
                None => "the user your ssh config or local login names (none in the URL)".to_owned(),
            };
            return Error::PermissionDenied { url, target: self.target(), user, detail };
        }
        if let Some(detail) = line_with("docker: command not found").or_else(|| line_with("docker: not found")) {
            return Error::NoRemoteDocker { url, detail };
        }
        if let Some(detail) = line_with("Cannot connect to the Docker daemon") {
            return Error::RemoteEngineDown { url, detail };
        }
        let unreachable = [
            "Connection refused",
            "Connection timed out",
            "No route to host",
            "Network is unreachable",
            "Could not resolve hostname",
            "Name or service not known",
            "Connection reset",
            "Connection closed by",
        ];
        if let Some(detail) = lines.iter().find(|l| unreachable.iter().any(|u| l.contains(u))) {
            return Error::Unreachable { url, target: self.target(), detail: (*detail).to_owned() };
        }
        let detail = lines.last().map_or_else(|| "it ended without a word".to_owned(), |l| (*l).to_owned());
        Error::Ssh { url, detail }
    }
}

/// A URL for messages: a password someone put in it anyway is not repeated.
fn redact(url: &str) -> String {
    let Some(rest) = url.strip_prefix("ssh://") else { return url.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or_default();
            format!("ssh://{name}:***@{host}{}", &rest[authority_end..])
        }
        _ => url.to_owned(),
    }
}

/// Single-quotes `s` for a POSIX shell unless it is made only of characters no shell treats
/// specially.
fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-:=+@%,".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Connects bollard to the engine at `url` (`ssh://…`). No ssh runs yet: the first request
/// (reactor's version negotiation) starts the first connection.
pub fn connect(url: &str) -> Result<Docker, Error> {
    let target = Arc::new(SshUrl::parse(url)?);
    let stderr = Arc::new(LastWords::default());
    let connector = SshConnector { target: Arc::clone(&target), last_words: Arc::clone(&stderr) };
    let client: Client<SshConnector, Body> = Client::builder(TokioExecutor::new()).build(connector);
    let transport = move |request: BollardRequest| {
        let client = client.clone();
        let target = Arc::clone(&target);
        let stderr = Arc::clone(&stderr);
        async move {
            let since = Instant::now();
            match client.request(request).await {
                Ok(response) => Ok(response),
                Err(err) => Err(match stderr.explain_failure(&target, since).await {
                    Some(failure) => bollard::errors::Error::IOError { err: io::Error::other(failure) },
                    None => bollard::errors::Error::from(err),
                }),
            }
        }
    };
    // The host part only fills the requests' Host header: every connection goes through ssh.
    Docker::connect_with_custom_transport(
        transport,
        Some("http://docker"),
        REQUEST_TIMEOUT_SECS,
        bollard::API_DEFAULT_VERSION,
    )
    .map_err(|e| Error::Ssh { url: url.to_owned(), detail: reactor_plugin_api::error_chain(&e) })
}

/// The ssh failure a bollard error carries, if it came from an `ssh://` connection.
pub fn failure_in(err: &bollard::errors::Error) -> Option<Error> {
    // bollard's IOError is `#[error(transparent)]`: its source() skips the io::Error, which
    // holds ours, so it is looked into directly.
    match err {
        bollard::errors::Error::IOError { err } => err.get_ref()?.downcast_ref::<Error>().cloned(),
        _ => None,
    }
}

/// The request body bollard sends (its type is not exported by name).
type Body = <BollardRequest as RequestBody>::Body;

trait RequestBody {
    type Body;
}

impl<B> RequestBody for hyper::Request<B> {
    type Body = B;
}

/// What the ssh children that ended lately wrote to stderr, to explain a failed request.
#[derive(Default)]
struct LastWords {
    ended: Mutex<Vec<(Instant, String)>>,
    changed: Notify,
}

impl LastWords {
    fn record(&self, words: String) {
        if let Ok(mut ended) = self.ended.lock() {
            // Only the latest few matter: a failure is explained by the ssh that just ended.
            if ended.len() >= 8 {
                ended.remove(0);
            }
            ended.push((Instant::now(), words));
        }
        self.changed.notify_waiters();
    }

    /// The words of an ssh that ended since `since` and tell something ssh-specific.
    fn recent(&self, target: &SshUrl, since: Instant) -> Option<Error> {
        let ended = self.ended.lock().ok()?;
        // An ssh that ended in silence says nothing hyper's error does not.
        ended
            .iter()
            .rev()
            .filter(|(at, words)| *at >= since && !words.trim().is_empty())
            .map(|(_, words)| target.explain(words))
            .next()
    }

    /// Waits a moment for ssh's stderr to end (it may lag behind its stdout), then words it.
    async fn explain_failure(&self, target: &SshUrl, since: Instant) -> Option<Error> {
        let deadline = tokio::time::Instant::now() + STDERR_GRACE;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(failure) = self.recent(target, since) {
                return Some(failure);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }
}

/// Opens bollard's connections: each one a new ssh child.
#[derive(Clone)]
struct SshConnector {
    target: Arc<SshUrl>,
    last_words: Arc<LastWords>,
}

impl tower_service::Service<hyper::Uri> for SshConnector {
    type Response = TokioIo<SshStream>;
    type Error = Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let (target, last_words) = (Arc::clone(&self.target), Arc::clone(&self.last_words));
        Box::pin(async move { SshStream::start(&target, last_words).map(TokioIo::new) })
    }
}

/// One connection: an ssh child's stdin and stdout. Dropping it kills the child.
struct SshStream {
    stdin: ChildStdin,
    stdout: ChildStdout,
    _child: Child,
    _registered: Registered,
}

impl SshStream {
    fn start(target: &SshUrl, last_words: Arc<LastWords>) -> Result<SshStream, Error> {
        let args = target.ssh_args();
        log::debug!("engine {}: running ssh {}", target.url, args.join(" "));
        let mut child = Command::new("ssh")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A connection bollard's pool drops takes its ssh with it.
            .kill_on_drop(true)
            // Out of the terminal's process group: Ctrl-C must not cut the connections the
            // cancellation still needs to remove containers.
            .process_group(0)
            .spawn()
            .map_err(|e| Error::NoSshClient { url: target.url.clone(), reason: e.to_string() })?;
        let registered = child.id().map(Registered::new).unwrap_or_default();
        let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(Error::Ssh { url: target.url.clone(), detail: "ssh started without its pipes".to_owned() });
        };
        let url = target.url.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut kept = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                log::debug!("engine {url}: ssh: {line}");
                kept.push_str(&line);
                kept.push('\n');
                if kept.len() > STDERR_KEPT_BYTES {
                    let cut = crate::engine::floor_char_boundary(&kept, kept.len() - STDERR_KEPT_BYTES);
                    kept.drain(..cut);
                }
            }
            last_words.record(kept);
        });
        Ok(SshStream { stdin, stdout, _child: child, _registered: registered })
    }
}

impl Connection for SshStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for SshStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for SshStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

/// The ssh children alive now, killed at exit: `kill_on_drop` covers connections that are
/// dropped, not those still open when the process ends (`exit` runs no destructors).
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static KILL_AT_EXIT: Once = Once::new();

/// A child's place in [`LIVE`], given up when its connection is dropped (and `kill_on_drop`
/// has killed it: its pid is not reaped, so not reused, before).
#[derive(Default)]
struct Registered(Option<u32>);

impl Registered {
    fn new(pid: u32) -> Registered {
        KILL_AT_EXIT.call_once(|| {
            // SAFETY: registers a plain `extern "C" fn` that only takes a lock without blocking
            // and sends signals; atexit has no other precondition.
            if unsafe { libc::atexit(kill_live_children) } != 0 {
                log::debug!("cannot register the ssh children's kill at exit");
            }
        });
        if let Ok(mut live) = LIVE.lock() {
            live.push(pid);
        }
        Registered(Some(pid))
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let (Some(pid), Ok(mut live)) = (self.0, LIVE.lock()) {
            live.retain(|p| *p != pid);
        }
    }
}

extern "C" fn kill_live_children() {
    // try_lock: a thread that held the lock when the process began to exit must not hang it.
    if let Ok(live) = LIVE.try_lock() {
        for pid in live.iter() {
            if let Ok(pid) = i32::try_from(*pid) {
                // SAFETY: kill has no memory preconditions; the pid is our unreaped child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(url: &str) -> SshUrl {
        SshUrl::parse(url).expect("a valid URL")
    }

    #[test]
    fn parses_user_host_port_and_socket() {
        let u = parsed("ssh://root@127.0.0.1:2222");
        assert_eq!(
            (u.user.as_deref(), u.host.as_str(), u.port, u.socket),
            (Some("root"), "127.0.0.1", Some(2222), None)
        );
        let u = parsed("ssh://build.example.com/run/user/1000/docker.sock");
        assert_eq!((u.user, u.host.as_str(), u.port), (None, "build.example.com", None));
        assert_eq!(u.socket.as_deref(), Some("/run/user/1000/docker.sock"));
        let u = parsed("ssh://me@[::1]:22/");
        assert_eq!((u.host.as_str(), u.port, u.socket), ("::1", Some(22), None));
        assert_eq!(parsed("ssh://[fe80::1]").host, "fe80::1");
    }

    #[test]
    fn refuses_what_the_docker_cli_refuses() {
        for (url, said) in [
            ("ssh://", "no host"),
            ("ssh://root@h:0", "port '0'"),
            ("ssh://root@h:22x", "port '22x'"),
            ("ssh://root@h?x=1", "query"),
            ("ssh://root@h#f", "fragment"),
            ("ssh://@h", "user"),
            ("ssh://-oProxyCommand=x", "not a host name"),
            ("ssh://[::1", "']'"),
        ] {
            let err = SshUrl::parse(url).expect_err(url).to_string();
            assert!(err.contains(said), "{url}: {err}");
            assert!(err.contains(url), "{url}: {err}");
        }
    }

    #[test]
    fn a_password_is_refused_and_never_repeated() {
        let err = SshUrl::parse("ssh://root:hunter2@h:22").expect_err("a password").to_string();
        assert!(err.contains("password") && err.contains("ssh://root:***@h:22"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn ssh_runs_dial_stdio_with_the_port_and_user_as_flags() {
        let args = parsed("ssh://root@127.0.0.1:2222").ssh_args();
        let tail: Vec<&str> = args.iter().map(String::as_str).skip_while(|a| *a != "-l").collect();
        assert_eq!(tail, ["-l", "root", "-p", "2222", "--", "127.0.0.1", "docker", "system", "dial-stdio"]);
        assert!(args.contains(&"BatchMode=yes".to_owned()), "{args:?}");
        let args = parsed("ssh://h/var/run/my docker.sock").ssh_args();
        assert!(args.contains(&"'unix:///var/run/my docker.sock'".to_owned()), "{args:?}");
        assert!(!args.contains(&"-p".to_owned()) && !args.contains(&"-l".to_owned()), "{args:?}");
    }

    #[test]
    fn stderr_is_worded_with_what_to_do() {
        let u = parsed("ssh://root@127.0.0.1:2222");
        let said = |stderr: &str| u.explain(stderr).to_string();
        let m = said("Host key verification failed.\n");
        assert!(m.contains("ssh://root@127.0.0.1:2222") && m.contains("ssh-keyscan -p 2222 127.0.0.1"), "{m}");
        let m = said("root@127.0.0.1: Permission denied (publickey).\n");
        assert!(m.contains("user 'root'") && m.contains("ssh-agent"), "{m}");
        let m = said("/usr/bin/env: 'bash': No such file or directory\nbash: docker: command not found\n");
        assert!(m.contains("no `docker` command") && m.contains("bash: docker: command not found"), "{m}");
        let m = said("ssh: connect to host 127.0.0.1 port 2222: Connection refused\n");
        assert!(
            m.starts_with("cannot reach the engine ssh://root@127.0.0.1:2222") && m.contains("Connection refused"),
            "{m}"
        );
        let m = said("something else\nthe last word\n");
        assert!(m.contains("ssh failed: the last word; run that ssh by hand"), "{m}");
    }

    #[test]
    fn a_silent_end_explains_nothing() {
        let words = LastWords::default();
        let since = Instant::now();
        words.record(String::new());
        assert!(words.recent(&parsed("ssh://h"), since).is_none());
        words.record("Host key verification failed.\n".to_owned());
        assert!(matches!(words.recent(&parsed("ssh://h"), since), Some(Error::UnknownHostKey { .. })));
    }
}
