//! The plugin interface of reactor, for plugin authors.
//!
//! A reactor plugin is a Rust type that implements [`Plugin`]: a [`Manifest`] that says what it
//! is (its key, the phases it may run in, its version, a JSON Schema of its args) and a `run`
//! that gets a [`Context`] on the running build and its args, and returns a JSON result. One
//! [`export_plugins!`] line turns a `cdylib` crate holding such types into a shared object that
//! `reactor --load-plugin` loads at run time, with no rebuild of the host:
//!
//! ```no_run
//! use reactor_plugin_api::{export_plugins, Args, Context, Manifest, Phase, Plugin, PluginError};
//! use serde_json::{json, Value};
//!
//! pub struct Hello;
//!
//! impl Plugin for Hello {
//!     fn manifest(&self) -> Manifest {
//!         Manifest::new("hello", [Phase::Postbuild], env!("CARGO_PKG_VERSION"))
//!             .description("says hello to the image that was built")
//!             .args_schema(json!({"type": "object", "properties": {"greeting": {"type": "string"}}}))
//!     }
//!
//!     fn run(&self, ctx: &Context, args: Args) -> Result<Value, PluginError> {
//!         let image = ctx.workflow()?.image;
//!         log::info!("hello, {image}");
//!         Ok(json!({"greeted": image}))
//!     }
//! }
//!
//! export_plugins!(Hello);
//! ```
//!
//! What crosses the shared-object boundary is deliberately small (see [`ffi`]): JSON text in,
//! JSON text out, and one host callback for everything a plugin asks of reactor. Panics are
//! caught at every entry point, so a panicking plugin is a failed plugin, never a dead host, and
//! the plugin's `log` records are forwarded to reactor's logger under the plugin's key.
//!
//! The built-in plugins of reactor implement this same trait, so a loaded plugin can do all that
//! a built-in can.

mod context;
mod error;
mod guard;
mod host_log;
mod manifest;
mod plugin;

pub mod ffi;
pub mod protocol;

// Re-exports: the author-facing surface. Consider semver implications carefully.
pub use context::Context;
pub use error::{ErrorKind, PluginError};
pub use manifest::{Manifest, Phase};
pub use plugin::{Args, Plugin};
pub use protocol::{BuildResult, Outcome, RunOutput, SourceInfo, Workflow};

/// The version of this interface crate that a plugin or the host was built against.
pub const INTERFACE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the [`export_plugins!`] expansion and the host use; not part of the author-facing API.
#[doc(hidden)]
pub mod __private {
    pub use crate::guard::{guard, run_entry};
    pub use crate::plugin::manifests_json;
    pub use abi_stable;
}

/// Exports the given plugins from a `cdylib` crate as a reactor plugin module.
///
/// Takes one or more expressions, each a value of a type that implements [`Plugin`] (a unit
/// struct's name is such an expression). Use it once per crate.
#[macro_export]
macro_rules! export_plugins {
    ($($plugin:expr),+ $(,)?) => {
        const _: () = {
            use $crate::__private::abi_stable as __abi;

            static __PLUGINS: ::std::sync::OnceLock<::std::vec::Vec<::std::boxed::Box<dyn $crate::Plugin>>> =
                ::std::sync::OnceLock::new();

            fn __plugins() -> &'static [::std::boxed::Box<dyn $crate::Plugin>] {
                __PLUGINS.get_or_init(|| ::std::vec![
                    $(::std::boxed::Box::new($plugin) as ::std::boxed::Box<dyn $crate::Plugin>),+
                ])
            }

            extern "C" fn __manifests() -> __abi::std_types::RResult<__abi::std_types::RString, __abi::std_types::RString> {
                $crate::__private::manifests_json(__plugins)
            }

            extern "C" fn __run(
                key: __abi::std_types::RStr<'_>,
                host: $crate::ffi::HostCtx,
                args: __abi::std_types::RStr<'_>,
            ) -> __abi::std_types::RResult<__abi::std_types::RString, __abi::std_types::RString> {
                $crate::__private::run_entry(__plugins, key, host, args)
            }

            fn __root_module() -> $crate::ffi::PluginModule_Ref {
                __abi::prefix_type::PrefixTypeTrait::leak_into_prefix($crate::ffi::PluginModule {
                    interface_version: $crate::ffi::interface_version,
                    manifests: __manifests,
                    run: __run,
                })
            }

            // What `#[abi_stable::export_root_module]` generates, written out here so that plugin
            // crates need no direct dependency on abi_stable (the attribute names `::abi_stable`).
            // The symbol name is checked against abi_stable's own constant in this crate's tests.
            #[unsafe(no_mangle)]
            pub static _1as_0lib_1header_0root_bmodule_bloader: __abi::library::LibHeader = {
                extern "C" fn __erased_module() -> __abi::library::RootModuleResult {
                    __abi::library::__call_root_module_loader(__root_module)
                }
                unsafe {
                    __abi::library::LibHeader::from_constructor::<$crate::ffi::PluginModule_Ref>(
                        __erased_module,
                        __abi::library::CheckTypeLayout::Yes,
                    )
                }
            };
        };
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn exported_symbol_is_the_one_abi_stable_looks_up() {
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }
}
