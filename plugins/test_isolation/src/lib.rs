//! Test fixtures for `--isolate-plugins`: plugins that kill the process they run in (a segfault,
//! an abort, an exit), one that calls the host a given number of times (for the benchmark), one
//! that waits for a child process of its own, and a builder that builds nothing. Never load this module in-process in a build that runs the
//! crashing ones: they take reactor down, which is the point.
//!
//! With `REACTOR_TEST_CRASH_AT_LOAD=segfault` in its environment, the module segfaults while
//! listing its plugins (the handshake), to test that a crash at load is contained too.

use reactor_plugin_api::{export_plugins, Args, BuildResult, Context, Manifest, Phase, Plugin, PluginError};
use serde_json::{json, Value};

/// Writes through a null pointer plus a small offset (as a field access through a null struct
/// pointer in C would): the kernel answers with SIGSEGV.
fn segfault() -> ! {
    // Null plus an offset rather than null itself: Rust's debug checks turn a write through null
    // into an abort before it happens, and this fixture must die by the signal.
    let field = std::ptr::null_mut::<u8>().wrapping_add(8);
    // SAFETY: none; this is the bug the fixture exists to have.
    unsafe { field.write_volatile(1) };
    unreachable!("the write above faults")
}

/// Segfaults when run.
pub struct Segfault;

impl Plugin for Segfault {
    fn manifest(&self) -> Manifest {
        if std::env::var("REACTOR_TEST_CRASH_AT_LOAD").is_ok_and(|v| v == "segfault") {
            segfault();
        }
        Manifest::new("segfault", Phase::ALL, env!("CARGO_PKG_VERSION")).description("segfaults (a write through null)")
    }

    fn run(&self, _ctx: &Context, _args: Args) -> Result<Value, PluginError> {
        log::info!("about to write through a null pointer");
        segfault();
    }
}

/// Aborts the process when run.
pub struct Abort;

impl Plugin for Abort {
    fn manifest(&self) -> Manifest {
        Manifest::new("abort", Phase::ALL, env!("CARGO_PKG_VERSION")).description("aborts the process")
    }

    fn run(&self, _ctx: &Context, _args: Args) -> Result<Value, PluginError> {
        std::process::abort();
    }
}

/// Ends the process with the exit code in its `code` arg (default 7), as a library calling
/// `exit()` would.
pub struct ExitProcess;

impl Plugin for ExitProcess {
    fn manifest(&self) -> Manifest {
        Manifest::new("exit_process", Phase::ALL, env!("CARGO_PKG_VERSION")).description("exits the process")
    }

    fn run(&self, _ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let code = args.get("code").and_then(Value::as_i64).unwrap_or(7);
        std::process::exit(i32::try_from(code).unwrap_or(7));
    }
}

/// Asks the host for the workflow `calls` times (default 1) and logs `logs` lines (default 1);
/// returns the image name and how long the calls took.
pub struct ContextCalls;

impl Plugin for ContextCalls {
    fn manifest(&self) -> Manifest {
        Manifest::new("context_calls", Phase::ALL, env!("CARGO_PKG_VERSION"))
            .description("calls ctx.workflow() and logs, as many times as asked")
            .args_schema(json!({"type": "object", "properties": {
                "calls": {"type": "integer", "minimum": 0}, "logs": {"type": "integer", "minimum": 0}}}))
            .allowed_to_fail(false)
    }

    fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let calls = args.get("calls").and_then(Value::as_u64).unwrap_or(1);
        let logs = args.get("logs").and_then(Value::as_u64).unwrap_or(1);
        let started = std::time::Instant::now();
        let mut image = String::new();
        for _ in 0..calls {
            image = ctx.workflow()?.image;
        }
        let calls_took = started.elapsed();
        for n in 0..logs {
            log::info!("log line {n} of {logs} from pid {}", std::process::id());
        }
        Ok(json!({"image": image, "calls": calls, "calls_us": calls_took.as_micros() as u64,
                  "pid": std::process::id()}))
    }
}

/// Runs `sleep SECONDS` (its `seconds` arg, a string) and waits for it, whatever happens to the
/// build; with `"then_segfault": true` it segfaults instead of waiting. A plugin whose own child
/// process must not outlive it.
pub struct Sleeper;

impl Plugin for Sleeper {
    fn manifest(&self) -> Manifest {
        Manifest::new("sleeper", Phase::ALL, env!("CARGO_PKG_VERSION"))
            .description("waits for a sleep process of its own")
            .args_schema(json!({"type": "object", "required": ["seconds"],
                                "properties": {"seconds": {"type": "string"}, "then_segfault": {"type": "boolean"}}}))
    }

    fn run(&self, _ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let seconds = args.get("seconds").and_then(Value::as_str).unwrap_or("1").to_owned();
        let mut sleep = std::process::Command::new("sleep").arg(&seconds).spawn()?;
        if args.get("then_segfault").and_then(Value::as_bool).unwrap_or(false) {
            segfault();
        }
        let status = sleep.wait()?;
        Ok(json!({"slept": seconds, "success": status.success()}))
    }
}

/// A builder that builds nothing: it records an empty build result, so a benchmark measures
/// plugins, not the engine.
pub struct NoopBuilder;

impl Plugin for NoopBuilder {
    fn manifest(&self) -> Manifest {
        Manifest::new("noop_builder", [Phase::Buildstep], env!("CARGO_PKG_VERSION"))
            .description("records an empty build result")
    }

    fn run(&self, ctx: &Context, _args: Args) -> Result<Value, PluginError> {
        ctx.set_build_result(BuildResult { logs: vec!["built nothing".into()], ..Default::default() })?;
        Ok(Value::Null)
    }
}

/// Writes a line straight to stderr (not through the log), and with `"stdout": true` one to
/// stdout, then waits `seconds`: what the live view must print above itself, not be torn by.
pub struct StderrWriter;

impl Plugin for StderrWriter {
    fn manifest(&self) -> Manifest {
        Manifest::new("stderr_writer", Phase::ALL, env!("CARGO_PKG_VERSION"))
            .description("writes a line to stderr (and stdout) itself, then waits")
            .args_schema(json!({"type": "object", "required": ["marker"],
                                "properties": {"marker": {"type": "string"}, "seconds": {"type": "number"},
                                               "stdout": {"type": "boolean"}}}))
    }

    fn run(&self, _ctx: &Context, args: Args) -> Result<Value, PluginError> {
        let marker = args.get("marker").and_then(Value::as_str).unwrap_or("marker");
        eprintln!("{marker} written to stderr");
        if args.get("stdout").and_then(Value::as_bool).unwrap_or(false) {
            println!("{marker} written to stdout");
        }
        let seconds = args.get("seconds").and_then(Value::as_f64).unwrap_or(0.0);
        std::thread::sleep(std::time::Duration::from_secs_f64(seconds));
        Ok(Value::Null)
    }
}

export_plugins!(Segfault, Abort, ExitProcess, ContextCalls, Sleeper, NoopBuilder, StderrWriter);
