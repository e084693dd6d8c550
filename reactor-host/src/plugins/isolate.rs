//! Crash isolation (`--isolate-plugins`, or `"isolate": true` on a build.json entry): a loaded
//! module runs in a child reactor process, `reactor __plugin-worker FILE`, so that a segfault or
//! an abort in its code is a failed plugin, not a dead host.
//!
//! The worker opens the module with the same loader ([`super::load`]) and does the handshake, so
//! a crash while loading is contained too; the parent checks the manifests it gets back as it
//! checks an in-process module's. For a run the parent sends the same `ModuleRequest` JSON that
//! it hands an in-process module's `call`; the worker calls the module with a host context whose
//! every `call` and `log` goes back to the parent, which answers with the run's real
//! [`PluginContext`](super::context::PluginContext): phase rules, features, cancellation and the
//! log targets are exactly those of an in-process run, because the same code answers.
//!
//! The two speak JSON lines over a Unix socket handed to the worker as its stdin, which the
//! worker keeps under a close-on-exec descriptor and replaces with /dev/null, so that processes
//! a plugin starts do not hold it; the worker's stdout goes to the parent's stderr, so a plugin's
//! `println!` cannot break the protocol. One worker serves all the plugins of its module, one run
//! at a time; a worker that died is started again for the next run. The worker leads a process
//! group of its own: a Ctrl-C at the terminal reaches only the parent, which cancels the build as
//! usual, and the group (the worker and what its plugin started) is killed when the plugin is
//! abandoned after the grace period, when the worker crashes, and when the parent goes away.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RArc, RErr, ROk, RResult, RStr, RString};
use reactor_plugin_api::ffi::{HostContext, HostContext_TO, HostCtx, PluginModule_Ref};
use reactor_plugin_api::protocol::ModuleHello;
use reactor_plugin_api::{ErrorKind, PluginError};
use serde::{Deserialize, Serialize};

use super::load::{self, LoadError};
use super::registry::host_hello;

/// The hidden subcommand that runs a worker.
pub const WORKER_COMMAND: &str = "__plugin-worker";

/// What the parent sends the worker, one JSON object a line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum ToWorker {
    /// Open the module and list its plugins.
    Handshake,
    /// Run a plugin: `request` is the module request an in-process run passes to `call`;
    /// `max_level` the host's log level, which a plugin asks for at the start of each run.
    Run { request: String, max_level: u8 },
    /// The answer to the worker's pending `call`: the JSON answer, or a JSON `PluginError`.
    Answer { result: Result<String, String> },
}

/// What the worker sends the parent, one JSON object a line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum FromWorker {
    /// The module's handshake answer (`ModuleHello` JSON).
    Hello { hello: String },
    /// The module could not be loaded: the load error's line.
    Refused { message: String },
    /// A request of the running plugin to the host; the worker waits for the `Answer`.
    Call { request: String },
    /// A log record of the running plugin.
    Log { level: u8, target: String, message: String },
    /// The run ended: the module's JSON result, or a JSON `PluginError`.
    Done { result: Result<String, String> },
}

// ---------------------------------------------------------------------------------------------
// The parent's side.

/// Why a worker could not give its module's plugins.
#[derive(Debug)]
pub enum StartError {
    /// The process could not be started.
    Spawn(std::io::Error),
    /// The worker loaded nothing and said why: a load error's line, as an in-process load says it.
    Refused(String),
    /// The worker died or broke the protocol while loading: how.
    Lost(String),
}

/// The child process that runs one module's plugins, started when first needed and again after
/// it died.
pub struct Worker {
    /// The module's file (canonical: the worker may be started again from anywhere).
    file: PathBuf,
    /// The conversation with the live worker; `None` before it is started and after it died.
    conversation: Mutex<Option<Conversation>>,
    /// The live worker process, held apart from its socket so that [`Worker::kill`] can reach it
    /// while a run holds the conversation.
    process: Mutex<Option<Child>>,
}

struct Conversation {
    to_worker: BufWriter<UnixStream>,
    from_worker: BufReader<UnixStream>,
}

/// How a conversation with a worker ended early.
enum Lost {
    /// The worker's end of the socket closed: it died.
    Closed,
    /// It sent something that is not the protocol.
    Garbled(String),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Worker {
    /// A worker for `file`, not started yet.
    pub fn new(file: &Path) -> Worker {
        let file = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
        Worker { file, conversation: Mutex::new(None), process: Mutex::new(None) }
    }

    /// Starts a worker on `given` (the path as the user gave it, which its load errors name) and
    /// returns it with the module's handshake; it then stays up for the module's runs.
    pub fn start(given: &Path) -> Result<(Worker, ModuleHello), StartError> {
        let worker = Worker::new(given);
        let (conversation, hello) = worker.spawn(given)?;
        *lock(&worker.conversation) = Some(conversation);
        Ok((worker, hello))
    }

    /// Runs `request` (a module request's JSON) in the worker, answering the plugin's requests
    /// with `host`; returns the module's answer as an in-process `call` does: its JSON result,
    /// or a JSON `PluginError` (also when the worker died: how, naming the file).
    pub fn run(&self, host: &HostCtx, request: &str) -> Result<String, String> {
        let mut conversation = lock(&self.conversation);
        if conversation.is_none() {
            match self.spawn(&self.file) {
                Ok((started, _)) => *conversation = Some(started),
                Err(e) => return Err(self.failure(&start_error_text(e))),
            }
        }
        let Some(live) = conversation.as_mut() else {
            return Err(self.failure("its isolated process is not running"));
        };
        let run = ToWorker::Run { request: request.to_owned(), max_level: host.max_level() };
        // A failed send means the worker is gone; reading then tells how.
        let _ = send(&mut live.to_worker, &run);
        let lost = match live.converse(host) {
            Ok(result) => return result,
            Err(lost) => lost,
        };
        *conversation = None;
        let how = self.reap(&lost);
        Err(PluginError::with_kind(
            ErrorKind::Failed,
            format!("{how} in its isolated process ({})", self.file.display()),
        )
        .to_json())
    }

    /// Kills the worker, if it runs, with what it started: its plugin was abandoned. The run
    /// waiting for it then ends.
    pub fn kill(&self) {
        if let Some(process) = lock(&self.process).as_mut() {
            match kill_group(process) {
                Ok(()) => log::debug!("killed the isolated process of {} (pid {})", self.file.display(), process.id()),
                Err(e) => log::warn!("cannot kill the isolated process of {}: {e}", self.file.display()),
            }
        }
    }

    fn failure(&self, message: &str) -> String {
        PluginError::with_kind(ErrorKind::Host, format!("{message} ({})", self.file.display())).to_json()
    }

    /// Starts the process and does the handshake; the module is opened as `path`.
    fn spawn(&self, path: &Path) -> Result<(Conversation, ModuleHello), StartError> {
        let (ours, theirs) = UnixStream::pair().map_err(StartError::Spawn)?;
        let mut command = Command::new(reactor_executable());
        command
            .args(verbosity())
            // Its own lines (at load) in the parent's format: a JSON stream stays all JSON.
            .env("REACTOR_PROGRESS", if crate::progress::is_json() { "json" } else { "plain" })
            .arg(WORKER_COMMAND)
            .arg(path)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            // A plugin's prints go where reactor's log goes, not into the protocol.
            .stdout(Stdio::from(std::io::stderr()))
            .stderr(Stdio::inherit())
            // Out of the terminal's process group: Ctrl-C reaches the parent, which cancels.
            .process_group(0);
        let child = command.spawn().map_err(StartError::Spawn)?;
        // The command holds the worker's end of the socket: only the worker may, or its death
        // would not close the socket.
        drop(command);
        log::debug!("started the isolated process of {} (pid {})", path.display(), child.id());
        *lock(&self.process) = Some(child);
        let mut conversation = Conversation {
            to_worker: BufWriter::new(ours.try_clone().map_err(StartError::Spawn)?),
            from_worker: BufReader::new(ours),
        };
        let _ = send(&mut conversation.to_worker, &ToWorker::Handshake);
        let answer = loop {
            match conversation.receive() {
                // A plugin does not log before it runs; a record now can only be stray.
                Ok(FromWorker::Log { .. }) => continue,
                other => break other,
            }
        };
        let lost = match answer {
            Ok(FromWorker::Hello { hello }) => match serde_json::from_str(&hello) {
                Ok(hello) => return Ok((conversation, hello)),
                Err(e) => Lost::Garbled(format!("its handshake is not readable: {e}")),
            },
            Ok(FromWorker::Refused { message }) => {
                // Closing the socket ends the worker.
                drop(conversation);
                self.reap(&Lost::Closed);
                return Err(StartError::Refused(message));
            }
            Ok(other) => Lost::Garbled(format!("it answered the handshake with {other:?}")),
            Err(lost) => lost,
        };
        Err(StartError::Lost(self.reap(&lost)))
    }

    /// Collects the dead (or misbehaving, then killed) worker, and says how it ended.
    fn reap(&self, lost: &Lost) -> String {
        let Some(mut process) = lock(&self.process).take() else {
            return "lost its isolated process".to_owned();
        };
        // What the plugin started goes with it (the worker itself is already ending when its
        // socket closed, and its exit status is settled by then). Not reaped yet, so the group
        // id still names it.
        let _ = kill_group(&mut process);
        let deadline = Instant::now() + Duration::from_secs(2);
        let status = loop {
            match process.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Ok(None) | Err(_) => {
                    let _ = process.kill();
                    break process.wait().ok();
                }
            }
        };
        match (lost, status) {
            (Lost::Garbled(what), _) => format!("broke the protocol ({what}); its process was killed"),
            (Lost::Closed, Some(status)) => describe_end(status),
            (Lost::Closed, None) => "lost its isolated process".to_owned(),
        }
    }
}

/// Kills `process` and the processes it started, its process group (it leads one, see
/// [`Worker::spawn`]); falls back to the process alone.
fn kill_group(process: &mut Child) -> std::io::Result<()> {
    if let Ok(pid) = i32::try_from(process.id()) {
        // SAFETY: kill(2) takes no pointers. `process` is not reaped while the caller holds it,
        // so its pid, and the group id equal to it, name no other process.
        if unsafe { libc::kill(-pid, libc::SIGKILL) } == 0 {
            return Ok(());
        }
    }
    process.kill()
}

fn start_error_text(e: StartError) -> String {
    match e {
        StartError::Spawn(e) => format!("cannot start its isolated process: {e}"),
        StartError::Refused(message) => format!("its isolated process cannot load it again: {message}"),
        StartError::Lost(how) => format!("{how} while loading in its isolated process"),
    }
}

impl Conversation {
    fn receive(&mut self) -> Result<FromWorker, Lost> {
        let mut line = String::new();
        match self.from_worker.read_line(&mut line) {
            Ok(0) | Err(_) => Err(Lost::Closed),
            Ok(_) => serde_json::from_str(&line).map_err(|e| Lost::Garbled(e.to_string())),
        }
    }

    /// Answers the running plugin's requests and forwards its log records until the run ends.
    fn converse(&mut self, host: &HostCtx) -> Result<Result<String, String>, Lost> {
        loop {
            match self.receive()? {
                FromWorker::Call { request } => {
                    let answer = host.call(RStr::from(request.as_str())).into_result();
                    let answer = ToWorker::Answer { result: answer.map(String::from).map_err(String::from) };
                    // A worker that died while the host answered is noticed at the next read.
                    let _ = send(&mut self.to_worker, &answer);
                }
                FromWorker::Log { level, target, message } => {
                    host.log(level, RStr::from(target.as_str()), RStr::from(message.as_str()));
                }
                FromWorker::Done { result } => return Ok(result),
                other => return Err(Lost::Garbled(format!("it sent {other:?} during a run"))),
            }
        }
    }
}

/// How a process ended, for a message: "crashed: killed by signal 11 (SIGSEGV)".
pub fn describe_end(status: ExitStatus) -> String {
    match (status.signal(), status.code()) {
        (Some(signal), _) => {
            let core = if status.core_dumped() { ", core dumped" } else { "" };
            format!("crashed: killed by signal {signal} ({}{core})", signal_name(signal))
        }
        (None, Some(code)) => format!("ended its process: exited with code {code}"),
        (None, None) => format!("ended its process: {status}"),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGSYS => "SIGSYS",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGHUP => "SIGHUP",
        libc::SIGALRM => "SIGALRM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        _ => "an unusual signal",
    }
}

/// This very executable, even if the file was replaced since it started (an upgrade during a
/// build): parent and worker must speak the same protocol.
fn reactor_executable() -> PathBuf {
    let own = Path::new("/proc/self/exe");
    if own.exists() {
        return own.to_path_buf();
    }
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("reactor"))
}

/// The worker logs (its own lines, at load) at the parent's level; RUST_LOG, inherited, wins.
fn verbosity() -> Option<&'static str> {
    match log::max_level() {
        log::LevelFilter::Debug | log::LevelFilter::Trace => Some("-v"),
        log::LevelFilter::Off | log::LevelFilter::Error | log::LevelFilter::Warn => Some("-q"),
        log::LevelFilter::Info => None,
    }
}

fn send(to: &mut impl Write, message: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *to, message)?;
    to.write_all(b"\n")?;
    to.flush()
}

// ---------------------------------------------------------------------------------------------
// The worker's side.

/// `reactor __plugin-worker FILE`: serves the module in `file` to the parent on stdin, until the
/// parent closes it.
pub fn serve(file: &Path) -> ExitCode {
    // A copy that processes the plugin starts do not inherit (close-on-exec): were the socket
    // held by one of them, the parent would not see it close when the worker dies.
    let socket = match std::io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => UnixStream::from(fd),
        Err(e) => {
            log::error!("{WORKER_COMMAND}: no socket on stdin: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = stdin_from_dev_null() {
        log::error!("{WORKER_COMMAND}: cannot give up the socket on stdin: {e}");
        return ExitCode::FAILURE;
    }
    let writer = match socket.try_clone() {
        Ok(writer) => writer,
        Err(e) => {
            log::error!("{WORKER_COMMAND}: {e}");
            return ExitCode::FAILURE;
        }
    };
    exit_with_parent();
    let link = Arc::new(ParentLink {
        to_parent: Mutex::new(BufWriter::new(writer)),
        from_parent: Mutex::new(BufReader::new(socket)),
        running: AtomicBool::new(false),
        max_level: AtomicU8::new(0),
    });
    let mut module: Option<PluginModule_Ref> = None;
    loop {
        let message = lock(&link.from_parent).receive();
        let reply = match message {
            // The parent is gone, or is done with this module.
            None => return ExitCode::SUCCESS,
            Some(ToWorker::Handshake) => match open(file) {
                Ok((opened, hello)) => {
                    module = Some(opened);
                    FromWorker::Hello { hello }
                }
                Err(e) => FromWorker::Refused { message: e.to_string() },
            },
            Some(ToWorker::Run { request, max_level }) => {
                let result = match module {
                    Some(module) => link.run(module, &request, max_level),
                    None => Err(PluginError::new("the worker has no module (no handshake)").to_json()),
                };
                FromWorker::Done { result }
            }
            // An answer nobody waits for (to a plugin thread that gave up): nothing to do.
            Some(ToWorker::Answer { .. }) => continue,
        };
        if link.send(&reply).is_err() {
            return ExitCode::SUCCESS;
        }
    }
}

/// Opens the module and does the handshake, with the checks and messages of an in-process load.
// A load error is made once, in a worker that exits when it has said it.
#[allow(clippy::result_large_err)]
fn open(file: &Path) -> Result<(PluginModule_Ref, String), LoadError> {
    let module = load::open_module(file)?;
    let hello = load::handshake(module, &host_hello())
        .map_err(|reason| LoadError::Broken { path: file.to_path_buf(), reason })?;
    let hello = serde_json::to_string(&hello)
        .map_err(|e| LoadError::Broken { path: file.to_path_buf(), reason: e.to_string() })?;
    Ok((module, hello))
}

/// Puts /dev/null on stdin in place of the socket.
fn stdin_from_dev_null() -> std::io::Result<()> {
    let null = std::fs::File::open("/dev/null")?;
    // SAFETY: dup2(2) takes no pointers; both descriptors are open, and fd 0 is replaced
    // atomically (the socket stays open through the close-on-exec copy).
    if unsafe { libc::dup2(null.as_raw_fd(), 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A worker whose parent died has no one to answer to: it ends too, with what its plugin
/// started, even in the middle of a plugin that never calls the host (a closed socket is only
/// seen when used).
fn exit_with_parent() {
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(500));
        if std::os::unix::process::parent_id() != parent {
            // SAFETY: kill(2) takes no pointers; 0 is this process's own group, which it leads.
            unsafe { libc::kill(0, libc::SIGKILL) };
            std::process::exit(1);
        }
    });
}

/// The worker's end of the socket.
struct ParentLink {
    to_parent: Mutex<BufWriter<UnixStream>>,
    /// Held by the main loop while it waits for the next request, and by a plugin's call from
    /// its request to its answer, so concurrent calls from a plugin's threads take turns.
    from_parent: Mutex<BufReader<UnixStream>>,
    /// Whether a run is in progress: a call after its run returned has no parent to answer it.
    running: AtomicBool,
    max_level: AtomicU8,
}

trait ReceiveFromParent {
    fn receive(&mut self) -> Option<ToWorker>;
}

impl ReceiveFromParent for BufReader<UnixStream> {
    /// The next message; `None` when the parent closed the socket or sent nonsense.
    fn receive(&mut self) -> Option<ToWorker> {
        let mut line = String::new();
        match self.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => match serde_json::from_str(&line) {
                Ok(message) => Some(message),
                Err(e) => {
                    log::error!("{WORKER_COMMAND}: the parent sent something that is not the protocol: {e}");
                    None
                }
            },
        }
    }
}

impl ParentLink {
    fn send(&self, message: &FromWorker) -> std::io::Result<()> {
        send(&mut *lock(&self.to_parent), message)
    }

    fn run(self: &Arc<ParentLink>, module: PluginModule_Ref, request: &str, max_level: u8) -> Result<String, String> {
        self.max_level.store(max_level, Ordering::SeqCst);
        self.running.store(true, Ordering::SeqCst);
        let host = HostContext_TO::from_ptr(RArc::new(ParentHost(self.clone())), TD_Opaque);
        let outcome = (module.call())(host, RStr::from(request)).into_result();
        self.running.store(false, Ordering::SeqCst);
        outcome.map(String::from).map_err(String::from)
    }
}

/// The host context a plugin gets in the worker: everything goes to the parent.
#[derive(Clone)]
struct ParentHost(Arc<ParentLink>);

impl HostContext for ParentHost {
    fn log(&self, level: u8, target: RStr<'_>, message: RStr<'_>) {
        let record =
            FromWorker::Log { level, target: target.as_str().to_owned(), message: message.as_str().to_owned() };
        let _ = self.0.send(&record);
    }

    fn max_level(&self) -> u8 {
        self.0.max_level.load(Ordering::SeqCst)
    }

    fn call(&self, request: RStr<'_>) -> RResult<RString, RString> {
        let refused = |message: &str| RErr(PluginError::with_kind(ErrorKind::Host, message).to_json().into());
        if !self.0.running.load(Ordering::SeqCst) {
            return refused("the plugin's run is over: a request made after it returned is refused");
        }
        let mut from_parent = lock(&self.0.from_parent);
        if self.0.send(&FromWorker::Call { request: request.as_str().to_owned() }).is_err() {
            return refused("reactor is gone");
        }
        match from_parent.receive() {
            Some(ToWorker::Answer { result: Ok(answer) }) => ROk(answer.into()),
            Some(ToWorker::Answer { result: Err(error) }) => RErr(error.into()),
            Some(other) => refused(&format!("reactor answered a request with {other:?}")),
            None => refused("reactor is gone"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_process_is_described_by_its_signal_or_code() {
        assert_eq!(describe_end(ExitStatus::from_raw(libc::SIGSEGV)), "crashed: killed by signal 11 (SIGSEGV)");
        assert_eq!(
            describe_end(ExitStatus::from_raw(libc::SIGABRT | 0x80)),
            "crashed: killed by signal 6 (SIGABRT, core dumped)"
        );
        assert_eq!(describe_end(ExitStatus::from_raw(7 << 8)), "ended its process: exited with code 7");
    }

    #[test]
    fn messages_are_one_json_line_each_way() {
        let mut wire = Vec::new();
        send(&mut wire, &ToWorker::Answer { result: Err("{\"kind\": \"host\",\n\"message\": \"no\"}".into()) })
            .expect("write");
        assert_eq!(wire.iter().filter(|b| **b == b'\n').count(), 1, "one line, whatever the payload holds");
        let back: ToWorker = serde_json::from_slice(&wire).expect("read");
        assert!(matches!(back, ToWorker::Answer { result: Err(e) } if e.contains("\"no\"")));
        let log: FromWorker =
            serde_json::from_str(r#"{"op": "log", "level": 3, "target": "t", "message": "m"}"#).expect("read");
        assert!(matches!(log, FromWorker::Log { level: 3, .. }));
    }
}
