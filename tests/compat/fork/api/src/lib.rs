//! A fork of reactor-plugin-api 1.2.0 that changed the frozen layout (`HostContext::log` takes a
//! `u32` level): what an unreleased change or a vendor's patched copy of the API crate looks like.
#![allow(missing_docs)]

pub mod ffi;

/// The protocol this fork claims.
pub const PROTOCOL: &str = "1.2";

/// The features it knows.
pub const FEATURES: &[(&str, &str, &str)] = &[];

include!("../../../snapshot/api.rs");
