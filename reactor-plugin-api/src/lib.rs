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
//! What crosses the shared-object boundary is deliberately small and frozen for all of 1.x (see
//! [`ffi`]): a handshake and one call, both JSON text, and one host callback for everything a
//! plugin asks of reactor. The protocol on top ([`protocol`]) grows by named features, so any
//! plugin built against `reactor-plugin-api` 1.x loads in any reactor of the 1.x line, older or
//! newer. Panics are caught at every entry point, so a panicking plugin is a failed plugin,
//! never a dead host, and the plugin's `log` records are forwarded to reactor's logger under the
//! plugin's key. A plugin must unwind on panic: [`export_plugins!`] refuses to compile under
//! `panic = "abort"`, where a plugin's panic would kill reactor with its build.
//!
//! A plugin that changes the build context writes into [`Workflow::context_dir`], the context
//! *overlay*, a directory reactor owns; the source itself ([`Workflow::source_context_dir`], for
//! a `path` source the user's own directory) is read-only by contract. The engine gets the
//! overlay over the source, an overlay file shadowing the source's file of the same path, and a
//! plugin reads a context file, whoever wrote it, through [`Workflow::context_file`] (protocol
//! 1.2; see `docs/plugin-abi.md`).
//!
//! The built-in plugins of reactor implement this same trait, so a loaded plugin can do all that
//! a built-in can.
//!
//! A build's log may be gigabytes long. reactor keeps it on disk; a plugin reads all of it a page
//! at a time with [`Context::build_log`] (the host feature `logs.read`, protocol 1.2), and
//! [`build_log::JsonReader`] streams it as a JSON body. The workflow snapshot's
//! [`BuildResult::logs`] holds the whole log only up to
//! [`SNAPSHOT_LOG_BYTES`](protocol::SNAPSHOT_LOG_BYTES), else its last lines, with
//! [`BuildResult::logs_omitted`] saying how many it left out.
//!
//! A plugin's unit tests run it on a fake reactor: the cargo feature `testing` adds the module
//! `testing`, whose `FakeHost` answers a plugin's requests from a scripted workflow and records
//! them and the plugin's log, with no engine.
#![deny(missing_docs)]

mod context;
mod error;
mod guard;
mod host_log;
mod manifest;
mod plugin;

pub mod build_log;
pub mod dockerfile;
pub mod ffi;
/// The fuzz targets' input decoding and invariants; not part of the plugin API.
#[doc(hidden)]
pub mod fuzzing;
pub mod protocol;
#[cfg(feature = "testing")]
pub mod testing;

// Re-exports: the author-facing surface. Consider semver implications carefully.
pub use context::Context;
pub use error::{error_chain, ErrorKind, PluginError};
pub use manifest::{Manifest, Phase};
pub use plugin::{Args, Plugin};
pub use protocol::{BuildResult, Outcome, RunOutput, SourceInfo, Status, Workflow};

/// The version of `reactor-plugin-api` that a plugin or the host was built against.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the [`export_plugins!`] expansion and the host use; not part of the author-facing API.
#[doc(hidden)]
pub mod __private {
    pub use crate::guard::{call_entry, guard, handshake_entry};
    pub use abi_stable;
}

/// Exports the given plugins from a `cdylib` crate as a reactor plugin module.
///
/// Takes one or more expressions, each a value of a type that implements [`Plugin`] (a unit
/// struct's name is such an expression). Use it once per crate. The host runs the plugins by
/// their place in this list.
#[macro_export]
macro_rules! export_plugins {
    ($($plugin:expr),+ $(,)?) => {
        // A panic in a plugin built with panic = "abort" would kill reactor, its exit plugins
        // and its result document with it: the boundary can only catch panics that unwind.
        #[cfg(panic = "abort")]
        ::core::compile_error!(
            "reactor plugins must be built with panic = \"unwind\": under panic = \"abort\" a panic in the plugin would kill reactor with the build (no exit plugins, no result document); remove `panic = \"abort\"` from this crate's profile"
        );

        const _: () = {
            use $crate::__private::abi_stable as __abi;

            static __PLUGINS: ::std::sync::OnceLock<::std::vec::Vec<::std::boxed::Box<dyn $crate::Plugin>>> =
                ::std::sync::OnceLock::new();

            fn __plugins() -> &'static [::std::boxed::Box<dyn $crate::Plugin>] {
                __PLUGINS.get_or_init(|| ::std::vec![
                    $(::std::boxed::Box::new($plugin) as ::std::boxed::Box<dyn $crate::Plugin>),+
                ])
            }

            extern "C" fn __handshake(
                host_hello: __abi::std_types::RStr<'_>,
            ) -> __abi::std_types::RResult<__abi::std_types::RString, __abi::std_types::RString> {
                $crate::__private::handshake_entry(__plugins, host_hello)
            }

            extern "C" fn __call(
                host: $crate::ffi::HostCtx,
                request: __abi::std_types::RStr<'_>,
            ) -> __abi::std_types::RResult<__abi::std_types::RString, __abi::std_types::RString> {
                $crate::__private::call_entry(__plugins, host, request)
            }

            fn __root_module() -> $crate::ffi::PluginModule_Ref {
                __abi::prefix_type::PrefixTypeTrait::leak_into_prefix($crate::ffi::PluginModule {
                    handshake: __handshake,
                    call: __call,
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
                // SAFETY: `__erased_module` returns the root module of type `PluginModule_Ref`,
                // the type this header is declared with, as the attribute's expansion does.
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
        assert_eq!(abi_stable::library::ROOT_MODULE_LOADER_NAME, "_1as_0lib_1header_0root_bmodule_bloader");
    }

    #[test]
    fn the_protocol_is_the_crates_major_and_minor() {
        let mut parts = super::API_VERSION.split('.').map(|p| p.parse::<u32>().expect("number"));
        let (major, minor) = (parts.next().expect("major"), parts.next().expect("minor"));
        assert_eq!(super::protocol::PROTOCOL, super::protocol::Protocol { major, minor });
        // Every feature belongs to a released protocol of this major.
        for feature in super::protocol::FEATURES {
            assert_eq!(feature.protocol.major, major, "{}", feature.name);
            assert!(feature.protocol <= super::protocol::PROTOCOL, "{}", feature.name);
        }
    }
}

#[cfg(test)]
mod author_api_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_panic_becomes_a_panicked_error_with_its_message() {
        let err = __private::guard(|| -> Result<(), PluginError> { panic!("kaboom {}", 7) }).expect_err("panicked");
        assert_eq!(err.kind, ErrorKind::Panicked);
        assert!(err.message.ends_with("kaboom 7"), "{}", err.message);
        assert_eq!(__private::guard(|| Ok::<_, PluginError>(3)).expect("no panic"), 3);
    }

    #[test]
    fn errors_keep_their_causes_on_one_line_and_cross_as_json() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = PluginError::from(io).context("POST http://x");
        assert_eq!(err.message, "POST http://x: refused");
        let back = PluginError::from_json(&err.to_json());
        assert_eq!(back, err);
        // Text that is not an encoded error (from a peer that sends plain text) is kept as the message.
        assert_eq!(PluginError::from_json("plain").message, "plain");
        // A kind this side does not know yet still decodes.
        let newer = PluginError::from_json(r#"{"kind": "from_the_future", "message": "m"}"#);
        assert_eq!((newer.kind, newer.message.as_str()), (ErrorKind::Other, "m"));
    }

    #[test]
    fn args_parse_into_the_plugins_type_and_name_what_is_wrong() {
        #[derive(serde::Deserialize, Debug)]
        struct UrlArgs {
            #[allow(dead_code)]
            url: String,
        }
        assert!(Args::new(json!({"url": "http://x"})).parse::<UrlArgs>().is_ok());
        let err = Args::new(json!({"url": 5})).parse::<UrlArgs>().expect_err("wrong type");
        assert_eq!(err.kind, ErrorKind::InvalidArgs);
        assert!(err.message.contains("invalid type: integer `5`, expected a string"), "{}", err.message);
        let err = Args::new(serde_json::Value::Null).parse::<UrlArgs>().expect_err("missing");
        assert!(err.message.contains("missing field `url`"), "{}", err.message);
    }

    #[test]
    fn a_manifest_from_an_older_plugin_gets_defaults_for_newer_fields() {
        let manifest: Manifest =
            serde_json::from_str(r#"{"key": "k", "phases": ["postbuild"], "version": "1"}"#).expect("decodes");
        assert_eq!(manifest.args_schema, json!({"type": "object"}));
        assert!(manifest.allowed_to_fail);
        let built = Manifest::new("k", [Phase::Exit], "2").description("d").allowed_to_fail(false);
        let back: Manifest = serde_json::from_str(&serde_json::to_string(&built).expect("encodes")).expect("decodes");
        assert_eq!(back, built);
    }

    #[test]
    fn a_workflow_from_an_older_host_decodes_with_defaults() {
        let workflow: Workflow = serde_json::from_str(r#"{"image": "i", "phase": "prebuild"}"#).expect("decodes");
        assert_eq!(workflow.image, "i");
        assert_eq!(workflow.phase, Some(Phase::Prebuild));
        assert!(workflow.outcome.is_none() && workflow.digests.is_empty());
        // No overlay from a host older than 1.2: its context directory is where the files are.
        let workflow: Workflow = serde_json::from_str(r#"{"context_dir": "/copy/ctx"}"#).expect("decodes");
        assert_eq!(workflow.source_context_dir, "");
        assert_eq!(workflow.context_file("a/b.txt"), std::path::Path::new("/copy/ctx/a/b.txt"));
    }
}
