#!/usr/bin/env bash
# What does crash isolation (--isolate-plugins) cost? Times, with hyperfine, release builds of
# reactor running the test_isolation fixtures in-process and isolated:
#   base   one postbuild plugin that makes no request (the build is `noop_builder`: no engine build)
#   calls  the same plugin making CALLS ctx.workflow() requests
#   logs   the same plugin logging LOGS lines at info (printed, to /dev/null)
#   runs   RUNS entries of that plugin in postbuild
# and derives: the cost of one request, one log line, one run, and of starting the worker (the
# isolated base minus the in-process base: one process, its module loaded, one handshake).
# The plugin also times its own requests; that figure is printed as "(plugin-timed)".
# usage: scripts/bench-isolation.sh [CALLS] [RUNS] [LOGS]
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-2000}
runs=${2:-200}
logs=${3:-10000}

bash scripts/setup.sh
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo build --release -p reactor-host -p test_isolation --quiet
reactor=$PWD/target/release/reactor
module=$PWD/target/release/libtest_isolation.so

work=$(mktemp -d /tmp/reactor-bench-isolation.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/home" "$work/data"
echo 'FROM busybox:latest' >"$work/src/Dockerfile"
export HOME=$work/home XDG_DATA_HOME=$work/data

# build.json with these postbuild entries.
request() {
    cat >"$work/$1.json" <<JSON
{"image": "reactor-bench-isolation", "source": {"provider": "path", "uri": "$work/src"},
 "buildstep_plugins": [{"name": "noop_builder"}], "postbuild_plugins": [$2]}
JSON
}
entry() { echo "{\"name\": \"context_calls\", \"args\": {\"calls\": $1, \"logs\": $2}}"; }
request base "$(entry 0 0)"
request calls "$(entry "$calls" 0)"
request logs "$(entry 0 "$logs")"
request runs "$(for _ in $(seq "$runs"); do entry 0 0; done | paste -sd, -)"

commands=()
for mode in in-process isolated; do
    flag=; [ $mode = isolated ] && flag=--isolate-plugins
    for case in base calls logs runs; do
        commands+=(-n "$mode $case" "$reactor $flag --load-plugin $module build json $work/$case.json")
    done
done
hyperfine -N --warmup 3 --runs "${BENCH_RUNS:-30}" --style basic --export-csv "$work/times.csv" "${commands[@]}" >&2

# Median seconds of a command by name.
median() { awk -F, -v name="$1" '$1 == name { print $4 }' "$work/times.csv"; }
# What the plugin measured for its CALLS requests, in µs per request.
plugin_timed() {
    local flag=; [ "$1" = isolated ] && flag=--isolate-plugins
    $reactor $flag --load-plugin "$module" build json "$work/calls.json" --metadata-file "$work/m.json" 2>/dev/null
    grep -o '"calls_us": *[0-9]*' "$work/m.json" | grep -o '[0-9]*$' | awk -v n="$calls" '{ printf "%.1f", $1 / n }'
}

echo
printf '%-34s %14s %14s\n' "" "in-process" "isolated"
row() { printf '%-34s %14s %14s\n' "$1" "$2" "$3"; }
us() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f µs", (a - b) / n * 1e6 }'; }
ms() { awk -v a="$1" 'BEGIN { printf "%.1f ms", a * 1e3 }'; }
for mode in in-process isolated; do
    eval "base_${mode//-/_}=$(median "$mode base")"
done
row "build, one plugin, no request" "$(ms "$base_in_process")" "$(ms "$base_isolated")"
row "per request (ctx.workflow())" "$(us "$(median 'in-process calls')" "$base_in_process" "$calls")" \
    "$(us "$(median 'isolated calls')" "$base_isolated" "$calls")"
row "per request (plugin-timed)" "$(plugin_timed in-process) µs" "$(plugin_timed isolated) µs"
row "per log line" "$(us "$(median 'in-process logs')" "$base_in_process" "$logs")" \
    "$(us "$(median 'isolated logs')" "$base_isolated" "$logs")"
row "per run (of $runs)" "$(us "$(median 'in-process runs')" "$base_in_process" "$((runs - 1))")" \
    "$(us "$(median 'isolated runs')" "$base_isolated" "$((runs - 1))")"
row "starting the worker" "" "$(us "$base_isolated" "$base_in_process" 1)"
