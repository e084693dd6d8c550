//! Fuzzes the Dockerfile parser and editor with proptest, on every `cargo test`: Dockerfiles made
//! of the pieces that trip parsers (continuations, comments, quotes, `$` and `${…}`, the
//! `# escape=` directive, JSON forms, stages, CRLF, non-ASCII), arbitrary bytes, and the seeds
//! of the `cargo fuzz` target. The invariants are `reactor_plugin_api::fuzzing`'s, which the
//! `cargo fuzz` target `dockerfile` (fuzz/) checks too: whatever the input, nothing panics; what
//! parses renders back byte for byte; and every edit either fails with an error or yields a
//! Dockerfile that parses again and reads back what was written.

use proptest::prelude::*;
use reactor_plugin_api::fuzzing::{check_dockerfile as check, dockerfile as fuzz_input};

#[path = "../../fuzz/seeds.rs"]
mod seeds;

/// Pieces of Dockerfile text, joined at random: mostly valid ones, so that most inputs parse
/// and get edited, and now and then a hostile one.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![9 => valid_piece(), 1 => hostile_piece()]
}

fn hostile_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("CMD [\"broken\n".to_owned()),
        Just("RUN <<EOF\necho heredoc\nEOF\n".to_owned()),
        Just("\\\n".to_owned()),
        Just("LABEL x=\"unterminated\n".to_owned()),
        Just("FROM\n".to_owned()),
        Just("LABEL\n".to_owned()),
        Just("ÄÖ ünïcödé → ✓\n".to_owned()),
        "[ -~]{0,20}\n",
        "[\\\\`$\"'{}=#\\[\\] a-zA-Z\r]{0,12}",
    ]
}

fn valid_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("FROM busybox\n".to_owned()),
        Just("FROM busybox:1.36 AS build\n".to_owned()),
        Just("FROM --platform=$BUILDPLATFORM ${BASE:-scratch} as b2\n".to_owned()),
        Just("FROM build\n".to_owned()),
        Just("FROM scratch\n".to_owned()),
        Just("ARG BASE=busybox\n".to_owned()),
        Just("ARG V\n".to_owned()),
        Just("# escape=`\n".to_owned()),
        Just("# syntax=docker/dockerfile:1\n".to_owned()),
        Just("# a comment\n".to_owned()),
        Just("   \n".to_owned()),
        Just("\r\n".to_owned()),
        Just("RUN echo a \\\n  && echo b\n".to_owned()),
        Just("RUN echo a `\n  b\n".to_owned()),
        Just("RUN echo \\\n# inside\n done\n".to_owned()),
        Just("RUN [\"sh\", \"-c\", \"echo \\\"x\\\"\"]\n".to_owned()),
        Just("LABEL a=b \"c d\"=\"e\\\"f\" g='h i'\n".to_owned()),
        Just("LABEL name=${NAME:-x} version=$V\n".to_owned()),
        Just("ENV A=1 B=\"two words\"\n".to_owned()),
        Just("ENV OLD style value\n".to_owned()),
        Just("COPY --from=build /a /b\n".to_owned()),
        Just("run lower case\n".to_owned()),
        Just("USER 1000\n".to_owned()),
        Just("RUN echo ünïcödé → ✓\n".to_owned()),
    ]
}

/// A prelude (directives, comments, global ARGs), a FROM, then pieces.
fn dockerfile() -> impl Strategy<Value = String> {
    let prelude = prop::collection::vec(
        prop_oneof![
            Just("# escape=`\n"),
            Just("# syntax=docker/dockerfile:1\n"),
            Just("# a comment\n"),
            Just("ARG BASE=busybox\n"),
            Just("\n")
        ],
        0..3,
    );
    let first = prop_oneof![Just("FROM busybox\n"), Just("FROM ${BASE:-busybox} AS base\n"), Just("from scratch\r\n")];
    (prelude, first, prop::collection::vec(piece(), 0..14))
        .prop_map(|(prelude, first, pieces)| format!("{}{first}{}", prelude.concat(), pieces.concat()))
}

fn label() -> impl Strategy<Value = (String, String)> {
    ("[a-z.\\-]{1,8}|[ -~&&[^=]]{1,6}", "[ -~]{0,10}|[\\\\\"'$`]{0,4}|ü ✓")
}

proptest! {
    // 2000 cases per property on every run; PROPTEST_CASES=100000 for a longer campaign.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn built_from_dockerfile_pieces(text in dockerfile(), labels in prop::collection::vec(label(), 0..4), image in "[a-z0-9./:@-]{1,20}") {
        check(&text, &labels, &image);
    }

    #[test]
    fn arbitrary_text(text in "\\PC{0,200}", labels in prop::collection::vec(label(), 0..3)) {
        check(&text, &labels, "busybox");
    }

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        fuzz_input(&bytes);
    }
}

/// The `cargo fuzz` target's seeds, and the inputs it once failed on, as it reads them.
#[test]
fn fuzz_seeds() {
    for seed in seeds::seeds("dockerfile") {
        fuzz_input(&seed);
    }
}
