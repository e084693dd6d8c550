#!/usr/bin/env bash
# Times fetching a git source with a long history: a repository of COMMITS commits (default 300),
# each rewriting a 300 KiB file of random bytes (about 89 MiB of history), served by `git daemon`
# on loopback with uploadpack.allowReachableSHA1InWant (as the big forges allow), and a copy that
# refuses SHAs in want. For the branch `main` and for a SHA pinned 150 commits back, hyperfine
# compares, full builds each (reactor builds without the engine's cache, so the yardstick does too):
#   shallow   git clone --depth 1 (or git fetch --depth 1 origin SHA) + docker build --no-cache
#   reactor   target/release/reactor build json
#   baseline  the reactor binary given as BASELINE (e.g. main's), if any
# then prints how long reactor's own fetch took, from its log ("cloning" → "checked out").
# usage: scripts/bench-git-fetch.sh [BASELINE] (ROUNDS=10 COMMITS=300 in the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
baseline=${1:-}
rounds=${ROUNDS:-10}
commits=${COMMITS:-300}
reactor=$PWD/target/release/reactor
[ -x "$reactor" ] || { echo "bench: build it first: cargo build --release -p reactor-host" >&2; exit 2; }
command -v hyperfine >/dev/null || { echo "bench: hyperfine missing (scripts/setup.sh installs it)" >&2; exit 2; }

work=$(mktemp -d /tmp/reactor-bench-git.XXXXXX)
daemon=
cleanup() {
    [ -n "$daemon" ] && kill "$daemon" 2>/dev/null
    docker rmi -f reactor-bench-git-shallow reactor-bench-git-reactor reactor-bench-git-baseline >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "bench: making $commits commits × 300 KiB"
git init -q --bare -b main "$work/served/history.git"
python3 - "$commits" <<'PY' | git -C "$work/served/history.git" fast-import --quiet
import os, sys
out = sys.stdout.buffer
dockerfile = b"FROM busybox:latest\nCOPY data.bin /data.bin\nCMD [\"wc\", \"-c\", \"/data.bin\"]\n"
for i in range(1, int(sys.argv[1]) + 1):
    data = os.urandom(300 * 1024)
    message = b"commit %d\n" % i
    out.write(b"commit refs/heads/main\ncommitter bench <bench@localhost> %d +0000\n" % (1700000000 + i))
    out.write(b"data %d\n%s" % (len(message), message))
    out.write(b"M 100644 inline Dockerfile\ndata %d\n%s\n" % (len(dockerfile), dockerfile))
    out.write(b"M 100644 inline data.bin\ndata %d\n%s\n" % (len(data), data))
PY
git -C "$work/served/history.git" config uploadpack.allowReachableSHA1InWant true
git clone -q --bare "$work/served/history.git" "$work/served/refusing.git"
du -sh "$work/served/history.git" | sed 's/^/bench: history /'
sha=$(git -C "$work/served/history.git" rev-parse "main~$((commits / 2))")

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$(git --exec-path)/git-daemon" --export-all --reuseaddr --listen=127.0.0.1 --port="$port" \
    --base-path="$work/served" "$work/served" >/dev/null 2>&1 &
daemon=$!
for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
url=git://127.0.0.1:$port

build_json() { # FILE IMAGE URI [COMMIT]
    local params=
    [ -n "${4:-}" ] && params=", \"provider_params\": {\"git_commit\": \"$4\"}"
    echo "{\"image\": \"$2\", \"source\": {\"provider\": \"git\", \"uri\": \"$3\"$params}}" >"$1"
}

scenario() { # NAME URI COMMIT SHALLOW_COMMAND
    local name=$1 uri=$2 commit=$3 shallow=$4
    build_json "$work/$name-reactor.json" reactor-bench-git-reactor "$uri" "$commit"
    local commands=(-n shallow "$shallow" -n reactor "$reactor -q build json $work/$name-reactor.json")
    if [ -n "$baseline" ]; then
        build_json "$work/$name-baseline.json" reactor-bench-git-baseline "$uri" "$commit"
        commands+=(-n baseline "$baseline -q build json $work/$name-baseline.json")
    fi
    echo "bench: $name"
    hyperfine -N --style basic --warmup 1 --runs "$rounds" --export-markdown "$work/$name.md" "${commands[@]}" >/dev/null
    cat "$work/$name.md"
    for who in reactor ${baseline:+baseline}; do
        local bin=$reactor
        [ "$who" = baseline ] && bin=$baseline
        "$bin" build json "$work/$name-$who.json" 2>&1 | python3 -c '
import re, sys
from datetime import datetime
stamps = {}
for line in sys.stdin:
    m = re.match(r"\[(\S+) +INFO +\S+\] (cloning|checked out|.*depth 1|.*deepening|.*full fetch)", line)
    if m:
        stamps.setdefault(m.group(2).split()[0], datetime.fromisoformat(m.group(1).rstrip("Z")))
        if "depth 1" in line or "deepening" in line or "full fetch" in line:
            print("   ", line.split("] ", 1)[1].strip())
print("    %s: fetch and checkout took %d ms" % (sys.argv[1], (stamps["checked"] - stamps["cloning"]).total_seconds() * 1000))
' "$who"
    done
}

shallow_branch="bash -c 'rm -rf $work/c && git clone -q --depth 1 -b main $url/history.git $work/c && docker build -q --no-cache -t reactor-bench-git-shallow $work/c >/dev/null'"
shallow_sha="bash -c 'rm -rf $work/c && git init -q $work/c && git -C $work/c fetch -q --depth 1 $url/history.git $sha && git -C $work/c checkout -q FETCH_HEAD && docker build -q --no-cache -t reactor-bench-git-shallow $work/c >/dev/null'"
scenario branch "$url/history.git" main "$shallow_branch"
scenario sha "$url/history.git" "$sha" "$shallow_sha"
# No yardstick here: git itself cannot fetch the SHA alone from this server either.
scenario sha-refused "$url/refusing.git" "$sha" "bash -c 'rm -rf $work/c && git clone -q $url/refusing.git $work/c && git -C $work/c checkout -q $sha && docker build -q --no-cache -t reactor-bench-git-shallow $work/c >/dev/null'"
