//! Plugins as the host knows them: the [`registry`] of built-in and [loaded](load) plugins, the
//! [`plan`] a build.json resolves to, the [`context`] a running plugin reaches the host through,
//! the [`runner`] of a phase, and the worker process an [isolated](isolate) module runs in.
//!
//! Built-ins (the `reactor-builtins` crate, written against the public API alone) and loaded
//! plugins implement the same [`Plugin`](reactor_plugin_api::Plugin) trait and both run through a [`HostCtx`](reactor_plugin_api::ffi::HostCtx), so a loaded plugin can
//! do all that a built-in can.

pub mod context;
pub mod discover;
pub mod elf;
pub mod inspect;
pub mod isolate;
pub mod load;
pub mod manifest_cache;
pub mod package_manifest;
pub mod permissions;
pub mod plan;
pub mod registry;
pub mod runner;

pub use plan::Plan;
pub use registry::Registry;
