//! Fuzzes the `.dockerignore` matcher; what an input means is `dockerignore::fuzzing::dockerignore`'s.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dockerignore::fuzzing::dockerignore(data));
