//! Fuzzes the matcher with proptest on every `cargo test`, through `dockerignore::fuzzing`, as
//! the `cargo fuzz` target `dockerignore` (fuzz/) does for longer: `.dockerignore` files made of
//! the pieces that trip matchers (classes, escapes, `**`, exceptions, comments, CRLF, a BOM),
//! arbitrary bytes, and the target's seeds.

use dockerignore::fuzzing::{check_dockerignore, dockerignore as fuzz_input};
use proptest::prelude::*;

#[path = "../../fuzz/seeds.rs"]
mod seeds;

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*.secret".to_owned()),
        Just("**/foo".to_owned()),
        Just("!**/keep.txt".to_owned()),
        Just("build".to_owned()),
        Just("!build/keep".to_owned()),
        Just("a/**/b".to_owned()),
        Just("[^a-c]?x".to_owned()),
        Just("[!x]".to_owned()),
        Just("[a-".to_owned()),
        Just("\\*".to_owned()),
        Just("trailing\\".to_owned()),
        Just("!".to_owned()),
        Just("# comment".to_owned()),
        Just(" # not a comment ".to_owned()),
        Just("/./a/../b/".to_owned()),
        Just("\u{feff}x".to_owned()),
        Just("**".to_owned()),
        Just("!*".to_owned()),
        "[a-z*?!/.\\[\\]\\\\^-]{0,10}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("a"),
            Just("b"),
            Just("foo"),
            Just("keep.txt"),
            Just("build"),
            Just("x.secret"),
            Just("."),
            Just("")
        ],
        1..5,
    )
    .prop_map(|parts| parts.join("/"))
}

proptest! {
    // 2000 cases per property on every run; PROPTEST_CASES=100000 for a longer campaign.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn built_from_pattern_pieces(lines in prop::collection::vec(line(), 0..8), crlf in any::<bool>(), paths in prop::collection::vec(path(), 1..6)) {
        let text = lines.join(if crlf { "\r\n" } else { "\n" });
        check_dockerignore(&text, &paths);
    }

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        fuzz_input(&bytes);
    }
}

/// The `cargo fuzz` target's seeds, and the inputs it once failed on, as it reads them.
#[test]
fn fuzz_seeds() {
    for seed in seeds::seeds("dockerignore") {
        fuzz_input(&seed);
    }
}
