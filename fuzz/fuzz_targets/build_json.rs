//! Fuzzes the build.json loader, `--substitute` included, and the plan it resolves to; what an input means is `reactor::fuzzing::build_json`'s.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reactor::fuzzing::build_json(data));
