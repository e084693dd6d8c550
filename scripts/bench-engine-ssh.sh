#!/usr/bin/env bash
# Benchmarks a build over ssh: reactor against the docker CLI on the same `ssh://` engine
# (scripts/engine/sshd.sh's sshd on 127.0.0.1:2222, whose docker reaches the main engine), for a
# path context of SIZE_MIB MiB (default 512) in FILES files (default 5000) of random data whose
# Dockerfile COPYs 20 of them: nearly all the time is the context going through ssh.
#   (a) DOCKER_BUILDKIT=0 docker -H ssh://root@127.0.0.1:2222 build --no-cache DIR
#   (b) reactor build path --uri DIR, DOCKER_HOST=ssh://root@127.0.0.1:2222
# Both use sshd.sh's `ssh` wrapper (it adds -F with the test keys), run alternately ROUNDS times
# (default 5, at least 3). Prints the medians, their ratio and reactor's peak RSS, and checks the
# targets: reactor's median at most 1.05 x the docker CLI's, peak RSS at most 64 MiB; exit 1 when
# one is missed.
# usage: scripts/bench-engine-ssh.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
[ "$rounds" -ge 3 ] || { echo "bench: at least 3 rounds" >&2; exit 2; }
size_mib=${SIZE_MIB:-512}
files=${FILES:-5000}
url=ssh://root@127.0.0.1:2222

bash scripts/engine/sshd.sh up
cargo build --release -p reactor-host --quiet
reactor=$PWD/target/release/reactor
sshd_dir=${REACTOR_ENGINES_DIR:-/var/lib/reactor-test-engines}/sshd
export PATH=$sshd_dir/bin:$PATH DOCKER_BUILDKIT=0

work=$(mktemp -d /tmp/reactor-bench-ssh.XXXXXX)
tag=reactor-bench-ssh-$$
cleanup() {
    docker rmi -f "$tag-cli" "$tag-reactor" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

tree=$work/tree
mkdir -p "$tree/data"
echo "bench: writing $size_mib MiB of random data in $files files" >&2
chunk=$((size_mib * 1024 * 1024 / files))
head -c $((chunk * files)) /dev/urandom | split -a 5 -d -b "$chunk" - "$tree/data/f"
printf 'FROM busybox:latest\nCOPY data/f0000? data/f0001? /data/\n' >"$tree/Dockerfile"

# Seconds (wall) of one run of "$@"; peak RSS (KiB) in $work/rss.
timed() {
    local start end
    start=$(date +%s.%N)
    /usr/bin/time -f %M -o "$work/rss" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; return 1; }
    end=$(date +%s.%N)
    awk -v a="$end" -v b="$start" 'BEGIN { printf "%.3f\n", a - b }'
}

run_cli() { timed docker -H "$url" build --no-cache -q -t "$tag-cli" "$tree"; }
run_reactor() { DOCKER_HOST=$url timed "$reactor" -q build path --uri "$tree" --image "$tag-reactor"; }

cli=() reactor_times=() peak=0
for round in $(seq "$rounds"); do
    # Alternate which goes first, so that neither always finds the engine warmed by the other.
    if [ $((round % 2)) = 1 ]; then
        cli+=("$(run_cli)"); reactor_times+=("$(run_reactor)"); rss=$(cat "$work/rss")
    else
        reactor_times+=("$(run_reactor)"); rss=$(cat "$work/rss"); cli+=("$(run_cli)")
    fi
    [ "$rss" -gt "$peak" ] && peak=$rss
    echo "bench: round $round: docker CLI ${cli[-1]} s, reactor ${reactor_times[-1]} s, reactor peak RSS $((rss / 1024)) MiB" >&2
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
m_cli=$(median "${cli[@]}")
m_reactor=$(median "${reactor_times[@]}")
ratio=$(awk -v a="$m_reactor" -v b="$m_cli" 'BEGIN { printf "%.3f", a / b }')
peak_mib=$((peak / 1024))
echo "bench: over $url, $size_mib MiB in $files files, $rounds rounds: docker CLI median ${m_cli} s," \
    "reactor median ${m_reactor} s (ratio $ratio, target <= 1.05), reactor peak RSS $peak_mib MiB (target <= 64)"
ok=1
awk -v r="$ratio" 'BEGIN { exit !(r <= 1.05) }' || { echo "bench: reactor is more than 1.05 x the docker CLI's time" >&2; ok=0; }
[ "$peak_mib" -le 64 ] || { echo "bench: reactor's peak RSS is over 64 MiB" >&2; ok=0; }
[ "$ok" = 1 ]
