#!/usr/bin/env bash
# Soak: N sequential builds (default 200) of the seed example (examples/hello: clone, build, the
# seed plugin liblogs_submitter posting the log to a local listener), each followed by the
# built-in exit plugin remove_built_image, as a builder that must stay clean runs them. Reports,
# before the first build and after every 50th: the files left in reactor's TMPDIR, the engine's
# containers (all, running or not), its images (total and dangling), and reactor's peak RSS.
# Exits 1 when any count grew, when the last ten builds' peak RSS is more than 10% above the
# first ten's, or when a build failed or its log did not arrive.
#
# The builds run on a private dockerd (its own data root, in its own network namespace, holding a
# copy of busybox:latest), so that the counts are this soak's alone: other builds on the shared
# engine come and go meanwhile. Needs root, as dockerd does.
# usage: scripts/soak.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/example.sh
builds=${1:-200}
[ "$builds" -ge 20 ] || { echo "soak: at least 20 builds" >&2; exit 2; }

bash scripts/setup.sh
cargo build --release -p reactor-host -p logs_submitter --quiet

work=$(mktemp -d /tmp/reactor-soak.XXXXXX)
engine=$work/engine
mkdir -p "$engine" "$work/tmp"
listener= dockerd_pid=
cleanup() {
    [ -n "$listener" ] && kill "$listener" 2>/dev/null
    if [ -n "$dockerd_pid" ]; then
        kill -TERM "$dockerd_pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$dockerd_pid" 2>/dev/null || true
    fi
    # What dockerd mounted under its data root, deepest first.
    awk -v root="$work/" 'index($5, root) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
    rm -rf "$work"
}
trap cleanup EXIT

# A private dockerd. In its own network namespace: with --bridge=none, dockerd deletes the host's
# docker0, which the shared engine needs; its loopback must be up for it to reach its containerd.
unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh dockerd \
    --data-root "$engine/data" --exec-root "$engine/exec" --pidfile "$engine/docker.pid" \
    -H "unix://$engine/docker.sock" --bridge=none --iptables=false --ip-masq=false --ip-forward=false \
    --storage-driver overlay2 --shutdown-timeout 2 >"$engine/dockerd.log" 2>&1 </dev/null &
dockerd_pid=$!
export DOCKER_HOST=unix://$engine/docker.sock
for _ in $(seq 300); do docker version >/dev/null 2>&1 && break; sleep 0.2; done
docker version >/dev/null 2>&1 || { tail -20 "$engine/dockerd.log" >&2; exit 1; }
env -u DOCKER_HOST docker save busybox:latest | docker load -q >/dev/null

repo=$work/docker-hello-world
example_repo "$repo"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_post_listener "$port" "$work/received.txt"

cat >"$work/build.json" <<JSON
{"image": "reactor-soak", "git_url": "$repo",
 "postbuild_plugins": [{"name": "logs_submitter", "args": {"url": "http://127.0.0.1:$port/"}, "is_allowed_to_fail": false}],
 "exit_plugins": [{"name": "remove_built_image", "args": {"remove_pulled_base_image": false}}]}
JSON

# "tmp containers images dangling" now.
counts() {
    printf '%s %s %s %s' \
        "$(find "$work/tmp" -mindepth 1 | wc -l)" \
        "$(docker ps -aq | wc -l)" \
        "$(docker images -aq | wc -l)" \
        "$(docker images -q -f dangling=true | wc -l)"
}
report() { # $1 label, $2 counts, $3 RSS text
    read -r t c i d <<<"$2"
    printf '  %-14s %10s %11s %7s %9s   %s\n' "$1" "$t" "$c" "$i" "$d" "$3"
}

echo "soak: $builds sequential builds of examples/hello with liblogs_submitter, on a private dockerd" >&2
before=$(counts)
echo
printf '  %-14s %10s %11s %7s %9s   %s\n' "" "TMPDIR" "containers" "images" "dangling" "reactor peak RSS"
report "before" "$before" ""
failed=0 started=$(date +%s)
for n in $(seq "$builds"); do
    if ! TMPDIR=$work/tmp /usr/bin/time -f '%M' -o "$work/rss" target/release/reactor -q \
            --load-plugin target/release/liblogs_submitter.so build json "$work/build.json" 2>"$work/last.log"; then
        echo "soak: build $n failed:" >&2
        tail -5 "$work/last.log" >&2
        failed=1
        break
    fi
    tail -1 "$work/rss" >>"$work/rss.all"
    if [ $((n % 50)) -eq 0 ] || [ "$n" -eq "$builds" ]; then
        rss=$(tail -50 "$work/rss.all" | sort -n | awk '{v[NR]=$1} END {printf "%.1f-%.1f MiB (last 50)", v[1]/1024, v[NR]/1024}')
        report "after $n" "$(counts)" "$rss"
    fi
done
elapsed=$(( $(date +%s) - started ))
after=$(counts)
done_builds=$(wc -l <"$work/rss.all" 2>/dev/null || echo 0)
posted=$(grep -c '^POST ' "$work/received.txt" || true)

first=$(head -10 "$work/rss.all" | awk '{s+=$1} END {print int(s/NR)}')
last=$(tail -10 "$work/rss.all" | awk '{s+=$1} END {print int(s/NR)}')
echo
printf '  %d builds in %d s (%.2f s each); logs received: %d\n' "$done_builds" "$elapsed" \
    "$(awk -v e="$elapsed" -v n="$done_builds" 'BEGIN {print (n ? e / n : 0)}')" "$posted"
awk -v f="$first" -v l="$last" 'BEGIN {
    printf "  reactor peak RSS: first 10 builds %.1f MiB, last 10 %.1f MiB (mean)\n", f / 1024, l / 1024 }'

check() { if [ "$1" = ok ]; then echo "  holds: $2"; else echo "  GREW OR FAILED: $2"; failed=1; fi; }
read -r t0 c0 i0 d0 <<<"$before"
read -r t1 c1 i1 d1 <<<"$after"
check "$( [ "$done_builds" -eq "$builds" ] && [ "$posted" -eq "$builds" ] && echo ok)" "every build succeeded and posted its log"
check "$( [ "$t1" -le "$t0" ] && echo ok)" "no file left in TMPDIR ($t0 -> $t1)"
check "$( [ "$c1" -le "$c0" ] && echo ok)" "no container left ($c0 -> $c1)"
check "$( [ "$i1" -le "$i0" ] && [ "$d1" -le "$d0" ] && echo ok)" "no image left ($i0 -> $i1, dangling $d0 -> $d1)"
check "$( [ "$last" -le $((first * 11 / 10)) ] && echo ok)" "reactor's peak RSS does not grow (within 10%)"
exit $failed
