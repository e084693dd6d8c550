//! reactor-plugin-api 1.3.0 as the compatibility tests need it: the frozen 1.x layout and protocol 1.3.
#![allow(missing_docs)]

#[path = "../../../frozen/ffi-1.rs"]
pub mod ffi;

/// The protocol this snapshot speaks.
pub const PROTOCOL: &str = "1.3";

/// The features this snapshot knows: name, protocol, first reactor release.
pub const FEATURES: &[(&str, &str, &str)] = &[("images.pull", "1.1", "0.2.0"), ("workspace", "1.1", "0.2.0"), ("images.squash", "1.3", "0.4.0")];

include!("../../../snapshot/api.rs");
