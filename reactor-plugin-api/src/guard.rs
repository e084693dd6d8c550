//! Catches panics at every entry point, so a panicking plugin is a failed plugin.
//!
//! A panic that unwinds out of an `extern "C"` function aborts the whole process, host
//! included; here it becomes a [`PluginError`] of kind [`ErrorKind::Panicked`] instead.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use abi_stable::std_types::{RErr, ROk, RResult, RStr, RString};

use crate::ffi::HostCtx;
use crate::protocol::{self, FeatureInfo, ModuleHello, ModuleRequest};
use crate::{host_log, Args, Context, ErrorKind, Manifest, Plugin, PluginError};

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

/// In a plugin's own test process, records where a panic happened as the module's quiet hook
/// does (so a caught panic reads as it would in reactor), then hands the panic on to the hook
/// that was there, which keeps printing the messages of failing tests.
#[cfg(feature = "testing")]
pub(crate) fn install_recording_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if let Some(loc) = info.location() {
                let text = format!("{}:{}", loc.file(), loc.line());
                PANIC_LOCATION.with(|l| *l.borrow_mut() = Some(text));
            }
            previous(info);
        }));
    });
}

/// The body of a module's exported `handshake`: the module's protocol, its plugins' manifests,
/// and what it knows of the features they require.
pub fn handshake_entry(
    plugins: fn() -> &'static [Box<dyn Plugin>],
    _host_hello: RStr<'_>,
) -> RResult<RString, RString> {
    install_quiet_panic_hook();
    encode(guard(|| {
        let manifests: Vec<Manifest> = plugins().iter().map(|p| p.manifest()).collect();
        let mut features: Vec<FeatureInfo> = Vec::new();
        for name in manifests.iter().flat_map(|m| &m.requires) {
            if let Some(feature) = protocol::feature(name).filter(|f| !features.iter().any(|k| k.name == f.name)) {
                features.push(feature.into());
            }
        }
        let hello = ModuleHello {
            api_version: crate::API_VERSION.to_owned(),
            protocol: protocol::PROTOCOL,
            plugins: manifests,
            features,
        };
        serde_json::to_string(&hello).map_err(PluginError::from)
    }))
}

/// The body of a module's exported `call`: decode the request, and for a run find the plugin by
/// its index, bridge logging, run it under [`guard`], and encode the outcome as JSON.
pub fn call_entry(
    plugins: fn() -> &'static [Box<dyn Plugin>],
    host: HostCtx,
    request: RStr<'_>,
) -> RResult<RString, RString> {
    install_quiet_panic_hook();
    host_log::attach(&host);
    let outcome = guard(|| {
        let request: ModuleRequest = serde_json::from_str(request.as_str()).map_err(|e| {
            PluginError::new(format!("this plugin module does not understand the host's request ({e}); is reactor newer than the plugin's reactor-plugin-api major?"))
        })?;
        match request {
            ModuleRequest::Run { index, key, phase: _, args, host: hello } => {
                let plugin = plugins()
                    .get(index)
                    .filter(|p| p.manifest().key == key)
                    .ok_or_else(|| PluginError::new(format!("this module has no plugin '{key}' at index {index}")))?;
                let ctx = Context::new(host.clone(), hello);
                let value = plugin.run(&ctx, Args::new(args))?;
                serde_json::to_string(&value).map_err(PluginError::from)
            }
        }
    });
    host_log::detach();
    encode(outcome)
}

fn encode(outcome: Result<String, PluginError>) -> RResult<RString, RString> {
    match outcome {
        Ok(json) => ROk(json.into()),
        Err(e) => RErr(e.to_json().into()),
    }
}
