#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 600), two at a time, at the
# lowest priority, and prints what each did: executions, coverage, and any input that failed.
# Installs cargo-fuzz (from crates.io) and the nightly toolchain when they are missing.
#   build_json    the build.json loader, --substitute included, and the plan (reactor::fuzzing)
#   dockerignore  the .dockerignore matcher (dockerignore::fuzzing)
#   dockerfile    the Dockerfile parser and editor (reactor_plugin_api::fuzzing)
#   plugin_json   the host's decoding of plugin manifests and protocol messages (reactor::fuzzing)
# Each starts from its seeds (fuzz/seeds/TARGET, committed) and grows fuzz/corpus/TARGET (not
# committed); a failing input lands in fuzz/artifacts/TARGET/. Reproduce one with
#   cargo +nightly fuzz run -s none -a TARGET fuzz/artifacts/TARGET/crash-…
# and add it to fuzz/seeds/TARGET once fixed: `cargo test` runs every seed.
# usage: scripts/fuzz.sh [SECONDS]   (TARGETS="a b" JOBS=2 FUZZ_TARGET_DIR=fuzz/target in the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
targets=${TARGETS:-build_json dockerignore dockerfile plugin_json}
jobs=${JOBS:-2}
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$PWD/fuzz/target}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
# No sanitizer: the fuzzed code is safe Rust, where a bug shows as a panic, which libFuzzer
# catches; without ASan it runs several times faster. Debug assertions on, so that an integer
# overflow panics as it does in a debug build.
flags=(--sanitizer none --debug-assertions)

cargo +nightly --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

echo "fuzz: building the targets (nightly, into $CARGO_TARGET_DIR)"
(cd fuzz && nice -n 19 cargo +nightly fuzz build "${flags[@]}")

mkdir -p fuzz/logs
run() {
    local target=$1
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    # -timeout: an input that takes 30 s is a hang, and a bug of its own.
    # The log keeps libFuzzer's pulses and summary, not a line per new input.
    (cd fuzz && nice -n 19 cargo +nightly fuzz run "${flags[@]}" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=30 -print_final_stats=1) 2>&1 |
        grep --line-buffered -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE) ' >"fuzz/logs/$target.log"
    return "${PIPESTATUS[0]}"
}

status=0
set -- $targets
while [ $# -gt 0 ]; do
    pids=()
    names=()
    for _ in $(seq "$jobs"); do
        [ $# -gt 0 ] || break
        echo "fuzz: $1 for ${seconds} s (log: fuzz/logs/$1.log)"
        run "$1" &
        pids+=($!)
        names+=("$1")
        shift
    done
    for i in "${!pids[@]}"; do
        target=${names[$i]}
        log=fuzz/logs/$target.log
        if wait "${pids[$i]}"; then result=ok; else result=FAILED; status=1; fi
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        last=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[^ ]+' || true)
        echo "fuzz: $target: $result, ${execs:-?} executions, $last"
        if [ "$result" = FAILED ]; then
            grep -m5 -E "panicked at|^==[0-9]+== ERROR|Test unit written to" "$log" | sed 's/^/fuzz:   /' || true
        fi
    done
done
exit "$status"
