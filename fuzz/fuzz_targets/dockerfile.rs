//! Fuzzes the Dockerfile parser and editor; what an input means is `reactor_plugin_api::fuzzing::dockerfile`'s.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reactor_plugin_api::fuzzing::dockerfile(data));
