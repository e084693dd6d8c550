//! Fuzzes the host's decoding of plugin manifests and protocol messages; what an input means is `reactor::fuzzing::plugin_json`'s.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reactor::fuzzing::plugin_json(data));
