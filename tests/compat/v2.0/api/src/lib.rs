//! reactor-plugin-api 2.0.0 as the compatibility tests need it: the frozen 1.x layout and protocol 2.0.
#![allow(missing_docs)]

#[path = "../../../frozen/ffi-1.rs"]
pub mod ffi;

/// The protocol this snapshot speaks.
pub const PROTOCOL: &str = "2.0";

/// The features this snapshot knows: name, protocol, first reactor release.
pub const FEATURES: &[(&str, &str, &str)] = &[];

include!("../../../snapshot/api.rs");
