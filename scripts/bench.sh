#!/usr/bin/env bash
# Benchmarks the seed scenario: what does reactor's orchestration cost on top of the build itself?
#   (a) docker build --no-cache of the example alone (the docker CLI, classic builder)
#   (b) what a shell script does: git clone + docker build --no-cache + a curl POST of the log
#   (c) reactor --load-plugin liblogs_submitter.so build json (clone, build, post the log)
# The three run alternately, in a rotating order, ROUNDS times (default 10, at least 5), on the same
# engine, against the same git repository and the same HTTP listener. Prints the medians, the
# ratios, and reactor's peak memory, and checks the targets: reactor's median within 50 ms of (a),
# never slower than (b), peak RSS under 40 MiB. Exits 1 when a target is missed.
# With REACTOR_BENCH_REFERENCE=VENV (made by ../shared/tools/atomic-reactor-reference.sh), it also
# times (d) atomic-reactor 1.6.26.3 running the seed's Python logs_submitter on the same build.
# usage: scripts/bench.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/example.sh
rounds=${1:-10}
[ "$rounds" -ge 5 ] || { echo "bench: at least 5 rounds" >&2; exit 2; }

bash scripts/setup.sh
cargo build --release --workspace --quiet

work=$(mktemp -d /tmp/reactor-bench.XXXXXX)
listener=
cleanup() {
    [ -n "$listener" ] && kill "$listener" 2>/dev/null
    docker rmi -f reactor-bench-a reactor-bench-b reactor-bench-c reactor-bench-d >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

repo=$work/docker-hello-world
example_repo "$repo"

port=9199
start_post_listener $port "$work/received.txt"
url=http://127.0.0.1:$port/

cat >"$work/build.json" <<JSON
{"image": "reactor-bench-c", "git_url": "$repo",
 "postbuild_plugins": [{"name": "logs_submitter", "args": {"url": "$url"}, "is_allowed_to_fail": false}]}
JSON

reference=${REACTOR_BENCH_REFERENCE:-}
order=(a b c)
if [ -n "$reference" ]; then
    order+=(d)
    # 1.6.26 reads only the `source` form, and would pull the base from the hub without an empty prebuild list.
    cat >"$work/build-reference.json" <<JSON
{"image": "reactor-bench-d", "source": {"provider": "git", "uri": "file://$repo", "provider_params": {"git_commit": "main"}},
 "prebuild_plugins": [], "postbuild_plugins": [{"name": "logs_submitter", "args": {"url": "$url"}}]}
JSON
fi

export DOCKER_BUILDKIT=0
run_a() { docker build --no-cache -q -t reactor-bench-a "$repo" >/dev/null 2>&1; }
run_b() {
    rm -rf "$work/clone"
    git clone -q "$repo" "$work/clone"
    docker build --no-cache -t reactor-bench-b "$work/clone" >"$work/b.log" 2>&1
    curl -sf -H 'Content-Type: text/plain' --data-binary @"$work/b.log" "$url" >/dev/null
}
run_d() {
    "$reference/bin/python" -m atomic_reactor.cli.main -q build json --method here "$work/build-reference.json" \
        --load-plugin "$PWD/scripts/atomic-reactor/post_logs_submitter.py" >/dev/null 2>&1
}
run_c() {
    target/release/reactor -q --load-plugin target/release/liblogs_submitter.so build json "$work/build.json"
}

# One timed run of $1: appends "wall_ms peak_rss_kib" to $work/$1.times.
measure() {
    local start end
    start=$(date +%s%N)
    if [ "$1" = c ]; then
        /usr/bin/time -f '%M' -o "$work/rss" target/release/reactor -q \
            --load-plugin target/release/liblogs_submitter.so build json "$work/build.json"
    else
        "run_$1"
        echo 0 >"$work/rss"
    fi
    end=$(date +%s%N)
    echo "$(( (end - start) / 1000000 )) $(tail -1 "$work/rss")" >>"$work/$1.times"
}

echo "bench: warming up" >&2
for x in "${order[@]}"; do "run_$x"; done
n=${#order[@]}
for round in $(seq "$rounds"); do
    for i in $(seq 0 $((n - 1))); do
        measure "${order[$(( (round + i) % n ))]}"
    done
    printf 'bench: round %d/%d\n' "$round" "$rounds" >&2
done

median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : int((v[NR/2] + v[NR/2+1]) / 2)}'; }
a=$(cut -d' ' -f1 "$work/a.times" | median)
b=$(cut -d' ' -f1 "$work/b.times" | median)
c=$(cut -d' ' -f1 "$work/c.times" | median)
rss_median=$(cut -d' ' -f2 "$work/c.times" | median)
rss_max=$(cut -d' ' -f2 "$work/c.times" | sort -n | tail -1)

echo
echo "seed scenario, $rounds alternating rounds, median wall time:"
printf '  (a) docker build --no-cache           %6d ms\n' "$a"
printf '  (b) git clone + docker build + curl   %6d ms\n' "$b"
printf '  (c) reactor build json + plugin       %6d ms\n' "$c"
awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN {
    printf "  reactor - (a) = %+d ms; reactor / (a) = %.3f; reactor / (b) = %.3f\n", c - a, c / a, c / b }'
if [ -n "$reference" ]; then
    d=$(cut -d' ' -f1 "$work/d.times" | median)
    printf '  (d) atomic-reactor 1.6.26.3 + plugin  %6d ms\n' "$d"
    awk -v c="$c" -v d="$d" 'BEGIN { printf "  reactor / atomic-reactor = %.3f\n", c / d }'
fi
awk -v m="$rss_median" -v x="$rss_max" 'BEGIN { printf "  reactor peak RSS: median %.1f MiB, max %.1f MiB\n", m / 1024, x / 1024 }'

failed=0
check() { if [ "$1" = ok ]; then echo "  target met: $2"; else echo "  TARGET MISSED: $2"; failed=1; fi; }
check "$( [ $((c - a)) -le 50 ] && echo ok)" "reactor within 50 ms of (a)"
check "$( [ "$c" -le "$b" ] && echo ok)" "reactor not slower than (b)"
check "$( [ "$rss_max" -lt $((40 * 1024)) ] && echo ok)" "reactor peak RSS under 40 MiB"
exit $failed
