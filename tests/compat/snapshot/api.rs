// The author-facing part of a small `reactor-plugin-api` snapshot, included by each snapshot's
// lib.rs after its own `PROTOCOL` and `FEATURES`. It speaks the JSON protocol over the frozen
// layout (`../frozen/ffi-1.rs`) as a release of that protocol would, and no more: enough to
// build a plugin against it and see how a host treats the plugin.

use abi_stable::std_types::{RErr, ROk, RResult, RStr, RString};
use serde_json::{json, Value};

/// This snapshot's version.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a plugin says about itself.
pub struct Manifest {
    pub key: &'static str,
    pub phases: &'static [&'static str],
    pub requires: &'static [&'static str],
}

/// A plugin built against this snapshot.
pub trait Plugin: Send + Sync {
    fn manifest(&self) -> Manifest;
    fn run(&self, ctx: &Context, args: &Value) -> Result<Value, String>;
}

/// The host, as a plugin of this snapshot sees it.
pub struct Context {
    host: ffi::HostCtx,
    hello: Value,
}

impl Context {
    /// Whether the host offered `feature` in its hello.
    pub fn supports(&self, feature: &str) -> bool {
        self.hello["features"].as_array().is_some_and(|f| f.iter().any(|f| f == feature))
    }

    /// The host's hello.
    pub fn host(&self) -> &Value {
        &self.hello
    }

    /// One request; a request needing a feature the host lacks is not sent.
    pub fn call(&self, request: Value, feature: Option<&str>) -> Result<Value, String> {
        if let Some(feature) = feature.filter(|f| !self.supports(f)) {
            return Err(format!("unsupported: this reactor ({}) does not offer the feature '{feature}'", self.hello["reactor_version"].as_str().unwrap_or_default()));
        }
        match self.host.call(RStr::from(request.to_string().as_str())).into_result() {
            Ok(answer) => serde_json::from_str(answer.as_str()).map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        }
    }
}

#[doc(hidden)]
pub fn __handshake(plugins: &[&dyn Plugin]) -> RResult<RString, RString> {
    let manifests: Vec<Value> = plugins
        .iter()
        .map(|p| {
            let m = p.manifest();
            json!({"key": m.key, "phases": m.phases, "version": API_VERSION, "requires": m.requires})
        })
        .collect();
    let features: Vec<Value> =
        FEATURES.iter().map(|(name, protocol, reactor)| json!({"name": name, "protocol": protocol, "reactor": reactor})).collect();
    ROk(json!({"api_version": API_VERSION, "protocol": PROTOCOL, "plugins": manifests, "features": features}).to_string().into())
}

#[doc(hidden)]
pub fn __call(plugins: &[&dyn Plugin], host: ffi::HostCtx, request: RStr<'_>) -> RResult<RString, RString> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let request: Value = serde_json::from_str(request.as_str()).map_err(|e| e.to_string())?;
        let index = request["index"].as_u64().unwrap_or(u64::MAX) as usize;
        let plugin = plugins.get(index).ok_or_else(|| format!("no plugin at index {index}"))?;
        let ctx = Context { host, hello: request["host"].clone() };
        plugin.run(&ctx, &request["args"])
    }));
    match outcome {
        Ok(Ok(value)) => ROk(value.to_string().into()),
        Ok(Err(message)) => RErr(json!({"kind": "failed", "message": message}).to_string().into()),
        Err(_) => RErr(json!({"kind": "panicked", "message": "panicked"}).to_string().into()),
    }
}

/// Exports the plugins, as `reactor_plugin_api::export_plugins!` does.
#[macro_export]
macro_rules! export_plugins {
    ($($plugin:expr),+ $(,)?) => {
        const _: () = {
            use ::abi_stable as __abi;
            fn __plugins() -> ::std::vec::Vec<&'static dyn $crate::Plugin> {
                ::std::vec![$(&$plugin as &'static dyn $crate::Plugin),+]
            }
            extern "C" fn __handshake(_: __abi::std_types::RStr<'_>) -> __abi::std_types::RResult<__abi::std_types::RString, __abi::std_types::RString> {
                $crate::__handshake(&__plugins())
            }
            extern "C" fn __call(host: $crate::ffi::HostCtx, request: __abi::std_types::RStr<'_>) -> __abi::std_types::RResult<__abi::std_types::RString, __abi::std_types::RString> {
                $crate::__call(&__plugins(), host, request)
            }
            #[__abi::export_root_module]
            fn __root() -> $crate::ffi::PluginModule_Ref {
                __abi::prefix_type::PrefixTypeTrait::leak_into_prefix($crate::ffi::PluginModule { handshake: __handshake, call: __call })
            }
        };
    };
}
