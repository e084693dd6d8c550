//! The binary interface between reactor and a plugin module, built on `abi_stable`.
//!
//! Kept deliberately small so it can stay stable: a root module of three functions, and one
//! host-callback trait object. Everything with structure (manifests, args, results, requests to
//! the host, errors) crosses as JSON text; its shapes live in [`crate::protocol`] and can grow
//! without touching this layout. Plugin authors never use this module directly: the
//! [`export_plugins!`](crate::export_plugins) macro and [`Context`](crate::Context) wrap it.
//!
//! Evolution rule: new functions go *after* the field marked `#[sabi(last_prefix_field)]`, so an
//! older host can still load a newer plugin; `abi_stable` checks every layout at load time.
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
    /// Emits one log record; `level` is `log::Level as u8` (1 = error … 5 = trace).
    fn log(&self, level: u8, target: RStr<'_>, message: RStr<'_>);

    /// The most verbose level the host prints, as `log::LevelFilter as u8` (0 = off … 5 = trace).
    fn max_level(&self) -> u8;

    /// One request to the host: a JSON [`crate::protocol::Request`] in, its JSON answer out,
    /// or a JSON [`crate::PluginError`] when the host refuses or fails.
    ///
    /// New host callbacks go below this one.
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
    /// The version of `reactor-plugin-api` the module was built against.
    pub interface_version: extern "C" fn() -> RString,

    /// The manifests of every plugin in the module, as a JSON array of [`crate::Manifest`].
    pub manifests: extern "C" fn() -> RResult<RString, RString>,

    /// Runs the plugin `key` with JSON `args`; returns its JSON result or a JSON
    /// [`crate::PluginError`].
    ///
    /// New module functions go below this one.
    #[sabi(last_prefix_field)]
    pub run: extern "C" fn(key: RStr<'_>, host: HostCtx, args: RStr<'_>) -> RResult<RString, RString>,
}

impl RootModule for PluginModule_Ref {
    declare_root_module_statics! {PluginModule_Ref}
    const BASE_NAME: &'static str = "reactor_plugin";
    const NAME: &'static str = "reactor plugin module";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// Reports the interface version compiled into the module that calls it.
pub extern "C" fn interface_version() -> RString {
    RString::from(crate::INTERFACE_VERSION)
}
