//! Catches panics at every entry point, so a panicking plugin is a failed plugin.
//!
//! A panic that unwinds out of an `extern "C"` function aborts the whole process, host
//! included; here it becomes a [`PluginError`] of kind [`ErrorKind::Panicked`] instead.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use abi_stable::std_types::{RErr, ROk, RResult, RStr, RString};
use serde_json::Value;

use crate::ffi::HostCtx;
use crate::{host_log, Args, Context, ErrorKind, Plugin, PluginError};

thread_local! {
    /// Where the last panic on this thread happened, recorded by the quiet hook below.
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`, turning a panic into an error that carries the panic's message and location.
pub fn guard<T>(f: impl FnOnce() -> Result<T, PluginError>) -> Result<T, PluginError> {
    PANIC_LOCATION.with(|l| l.borrow_mut().take());
    panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        let location = PANIC_LOCATION.with(|l| l.borrow_mut().take());
        let at = location.map(|l| format!(" at {l}")).unwrap_or_default();
        Err(PluginError::with_kind(ErrorKind::Panicked, format!("panicked{at}: {message}")))
    })
}

/// A plugin module's copy of std has its own panic hook; make it record the location instead of
/// printing to stderr, since the host reports the panic as the plugin's error.
pub(crate) fn install_quiet_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        panic::set_hook(Box::new(|info| {
            if let Some(loc) = info.location() {
                let text = format!("{}:{}", loc.file(), loc.line());
                PANIC_LOCATION.with(|l| *l.borrow_mut() = Some(text));
            }
        }));
    });
}

/// The body of a module's exported `run`: find the plugin by key, bridge logging, parse the
/// args, run it under [`guard`], and encode the outcome as JSON.
pub fn run_entry(
    plugins: fn() -> &'static [Box<dyn Plugin>],
    key: RStr<'_>,
    host: HostCtx,
    args: RStr<'_>,
) -> RResult<RString, RString> {
    install_quiet_panic_hook();
    host_log::attach(&host);
    let outcome = guard(|| {
        let plugin = plugins()
            .iter()
            .find(|p| p.manifest().key == key.as_str())
            .ok_or_else(|| PluginError::new(format!("this module has no plugin '{key}'")))?;
        let args: Value = serde_json::from_str(args.as_str())
            .map_err(|e| PluginError::invalid_args(format!("args are not JSON: {e}")))?;
        let ctx = Context::new(host.clone());
        let value = plugin.run(&ctx, Args::new(args))?;
        serde_json::to_string(&value).map_err(PluginError::from)
    });
    host_log::detach();
    match outcome {
        Ok(json) => ROk(json.into()),
        Err(e) => RErr(e.to_json().into()),
    }
}
