//! The binary interface between reactor and a plugin module, built on `abi_stable`: **frozen for
//! the whole 1.x line.**
//!
//! A root module of two functions and a host-callback trait object of three methods, all of
//! which carry JSON text. Everything with structure (the handshake, manifests, run requests,
//! requests to the host, results, errors) is JSON whose shapes live in [`crate::protocol`]; the
//! protocol grows there, by minor versions and named features, and never here.
//!
//! Do not add, remove, reorder or retype anything in this file within 1.x. `abi_stable` checks
//! these layouts at load time, and a prefix type with *more* fields in the host than in the
//! plugin is refused: a host-side addition would lock out every plugin built before it. The
//! compatibility tests (`tests/compat/`) build plugins against frozen copies of this file and
//! load them into the current host; they fail when this layout changes. A change here is
//! `reactor-plugin-api` 2.0.
#![allow(non_camel_case_types, non_local_definitions)]

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RArc, RResult, RStr, RString},
    StableAbi,
};

/// The host's side of a running plugin: how a plugin logs and asks reactor for things.
///
/// One instance is made per plugin run, so the host knows which plugin is calling.
#[sabi_trait]
pub trait HostContext: Send + Sync + Clone {
    /// Emits one log record; `level` is `log::Level as u8` (1 = error … 5 = trace), `target` the
    /// plugin's own log target.
    fn log(&self, level: u32, target: RStr<'_>, message: RStr<'_>);

    /// The most verbose level the host prints, as `log::LevelFilter as u8` (0 = off … 5 = trace).
    fn max_level(&self) -> u8;

    /// One request to the host: a JSON [`crate::protocol::Request`] in, its JSON answer out,
    /// or a JSON [`crate::PluginError`] when the host refuses or fails.
    #[sabi(last_prefix_field)]
    fn call(&self, request: RStr<'_>) -> RResult<RString, RString>;
}

/// The host context as a plugin receives it.
pub type HostCtx = HostContext_TO<'static, RArc<()>>;

/// The root module every plugin shared object exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModule_Ref)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// The handshake: the host's JSON [`crate::protocol::HostHello`] in, the module's JSON
    /// [`crate::protocol::ModuleHello`] (protocol, manifests, needed features) out, or a JSON
    /// [`crate::PluginError`].
    pub handshake: extern "C" fn(host_hello: RStr<'_>) -> RResult<RString, RString>,

    /// One request to the module with the context of a run: a JSON
    /// [`crate::protocol::ModuleRequest`] in, its JSON answer (a plugin's result) out, or a
    /// JSON [`crate::PluginError`].
    #[sabi(last_prefix_field)]
    pub call: extern "C" fn(host: HostCtx, request: RStr<'_>) -> RResult<RString, RString>,
}

impl RootModule for PluginModule_Ref {
    declare_root_module_statics! {PluginModule_Ref}
    const BASE_NAME: &'static str = "reactor_plugin";
    const NAME: &'static str = "reactor plugin module";
    /// `reactor-plugin-api`'s version: `abi_stable` refuses another major before anything runs.
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
