#!/usr/bin/env bash
# Benchmarks getting the source to the engine and living through a loud build (issue 9): what does
# reactor cost next to what a user would do by hand, on the same engine? Scenarios, each against
# its yardstick:
#   branch     a git:// repository with 300 commits, each replacing 300 KiB of random data (89 MiB
#              packed), served by `git daemon` on loopback; branch main.
#              reactor build json  vs  git clone --depth 1 --branch main + docker build
#   sha        the same repository pinned to the SHA of main~150 (the daemon allows reachable SHAs
#              in `want`, as the big forges do).
#              reactor  vs  git init + git fetch --depth 1 origin SHA + git checkout FETCH_HEAD
#              + docker build
#   path       a path source of 512 MiB in 5000 files of random data; its Dockerfile COPYs 2 MB of
#              it; no .dockerignore, so the whole tree is the context.
#              reactor ("provider": "path")  vs  docker build DIR (the CLI sends it all)
#   seed       the seed's example in a tiny file:// repository, logs_submitter posting the log.
#              reactor --load-plugin liblogs_submitter.so  vs  git clone + docker build + curl POST
#   logs-lines a RUN printing 200 MB of ~100-byte lines.          reactor  vs  docker build
#   logs-post  the same, logs_submitter posting the log.         reactor  vs  docker build + curl
#   logs-cr    a RUN printing one 160 MB line of \r-separated progress, no newline, logs_submitter
#              posting it.                                        reactor  vs  docker build + curl
# The POSTs go to a local HTTP listener that reads and discards the body.
# Every build is --no-cache on both sides (reactor always builds without cache) on the classic
# builder (DOCKER_BUILDKIT=0 for the CLI, as reactor uses the classic build API). Each scenario is
# ONE hyperfine invocation whose benchmarks are single runs of the sides, round after round, in an
# order that rotates each round, so the sides alternate; round 0 is a warm-up that is not counted
# (path and logs-* have none: the tree was just written, and their runs are long). Figures are
# medians. The target of logs-* is the peak RSS, which one run shows (and before issue 9 one run of
# logs-cr takes reactor minutes), so they run one round unless LOG_RUNS says more. Every side runs
# the same way (sh running its command, under /usr/bin/time for the peak RSS of it and its
# children); output is discarded; reactor runs at its default verbosity. The machine's load
# average is printed with the table: figures from a busy machine are noisy.
# With REACTOR_BENCH_REFERENCE set, atomic-reactor 1.6.26.3 runs every scenario too, in the same
# hyperfine invocation (the seed's Python logs_submitter where the log is posted): set it to a venv
# made by ../shared/tools/atomic-reactor-reference.sh, or to 1 for /tmp/atomic-reactor-venv (made
# with that script when missing).
# Targets: branch and sha ≤ 1.1× their pipeline, path ≤ 1.0× the docker CLI, seed ≤ 1.0× the
# pipeline, logs-* reactor's peak RSS ≤ 64 MiB; when measured, reactor ≥ 1.5× faster than
# atomic-reactor in branch, sha, path and seed (shown, not a target, for logs-*). A missed target
# fails the run only with REACTOR_BENCH_STRICT=1.
# The history repository is made once and kept in REACTOR_BENCH_STATE_DIR (default
# ~/.cache/reactor-bench) under a name that changes with its recipe, as are the hyperfine logs of
# the last run; everything else (the 512 MiB tree, the images, git daemon, the listener) goes at exit.
# usage: scripts/bench-sources.sh [RUNS] [LOG_RUNS]   (counted rounds; default 5, and 1 for logs-*)
#        REACTOR_BENCH_SCENARIOS="branch sha path seed logs" runs only those named.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/example.sh
runs=${1:-5}
log_runs=${2:-1}
[[ $runs =~ ^[1-9][0-9]*$ && $log_runs =~ ^[1-9][0-9]*$ ]] ||
    { echo "usage: scripts/bench-sources.sh [RUNS] [LOG_RUNS] (whole numbers, at least 1)" >&2; exit 2; }
scenarios=" ${REACTOR_BENCH_SCENARIOS:-branch sha path seed logs} "
wanted() { [[ $scenarios == *" $1 "* ]]; }

bash scripts/setup.sh
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo build --release -p reactor-host -p logs_submitter --quiet
reactor=$PWD/target/release/reactor
submitter=$PWD/target/release/liblogs_submitter.so

reference=
if [ -n "${REACTOR_BENCH_REFERENCE:-}" ]; then
    venv=$REACTOR_BENCH_REFERENCE
    [ "$venv" = 1 ] && venv=/tmp/atomic-reactor-venv
    [ -x "$venv/bin/python" ] || bash ../shared/tools/atomic-reactor-reference.sh "$venv" >&2
    reference="$venv/bin/python -m atomic_reactor.cli.main"
    reference_version=$("$venv/bin/python" -c 'import atomic_reactor; print(atomic_reactor.__version__)')
fi

state=${REACTOR_BENCH_STATE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/reactor-bench}
mkdir -p "$state/logs"
history_commits=300
history_blob=$((300 * 1024))
history=$state/history-v1-${history_commits}x${history_blob}.git
work=$(mktemp -d "${TMPDIR:-/tmp}/reactor-bench-sources.XXXXXX")
mkdir -p "$work/cmd" "$work/rss"
# Every image this run makes is named $tag-…, so that cleanup removes those and nothing else.
tag=reactor-bench-src-$$
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    docker images --format '{{.Repository}}' | grep "^$tag-" | sort -u | xargs -r docker rmi -f >/dev/null 2>&1 || true
    rm -rf "$work" "$history.tmp.$$"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export DOCKER_BUILDKIT=0

# --- the history repository: made once, kept; a new recipe gets a new name ----------------------
if [ ! -d "$history" ]; then
    echo "bench: making $history ($history_commits commits of $history_blob random bytes)" >&2
    rm -rf "$history.tmp.$$"
    git init -q --bare -b main "$history.tmp.$$"
    # fast-import: one process for the 300 commits, instead of 300 × (add + commit).
    for i in $(seq "$history_commits"); do
        printf 'blob\nmark :%d\ndata %d\n' "$i" "$history_blob"
        head -c "$history_blob" /dev/urandom
        printf '\ncommit refs/heads/main\ncommitter bench <bench@localhost> %d +0000\n' $((1700000000 + i * 60))
        printf 'data <<EOT\nhistory %d: a new payload.bin\nEOT\n' "$i"
        if [ "$i" = 1 ]; then
            printf 'M 100644 inline Dockerfile\ndata <<EOT\nFROM busybox:latest\nCOPY hello.txt /hello.txt\nEOT\n'
            printf 'M 100644 inline hello.txt\ndata <<EOT\nhello from the history repository\nEOT\n'
        fi
        printf 'M 100644 :%d payload.bin\n\n' "$i"
    done | git -C "$history.tmp.$$" fast-import --quiet
    git -C "$history.tmp.$$" gc --quiet
    mv "$history.tmp.$$" "$history"
fi
# SHA wants are allowed, as on GitHub and GitLab (set each time: the repository may predate it).
git -C "$history" config uploadpack.allowReachableSHA1InWant true
sha=$(git -C "$history" rev-parse main~150)

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

if wanted branch || wanted sha; then
    # git-daemon itself rather than `git daemon`, whose wrapper would be a second process.
    started=
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        "$(git --exec-path)/git-daemon" --listen=127.0.0.1 --port="$port" --base-path="$state" \
            --export-all --reuseaddr --informative-errors "$state" >"$work/git-daemon.log" 2>&1 &
        daemon=$!
        pids+=("$daemon")
        git_url=git://127.0.0.1:$port/$(basename "$history")
        for _ in $(seq 50); do
            git ls-remote "$git_url" main >/dev/null 2>&1 && { started=1; break; }
            kill -0 "$daemon" 2>/dev/null || break
            sleep 0.1
        done
        [ -n "$started" ] && break
        kill "$daemon" 2>/dev/null || true
    done
    [ -n "$started" ] || { echo "bench: git daemon did not start: $(tail -3 "$work/git-daemon.log")" >&2; exit 1; }
    echo "bench: serving $history ($(du -sh "$history/objects" | cut -f1) of objects) at $git_url" >&2
fi

# An HTTP listener that reads each POST whole (Content-Length or chunked), discards it, records
# its size, and answers 200.
cat >"$work/listener.py" <<'PY'
import http.server, os, sys

def drain(stream, size):
    left = size
    while left:
        chunk = stream.read(min(left, 1 << 20))
        if not chunk:
            break
        left -= len(chunk)
    return size - left

class Discard(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        received = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                received += drain(self.rfile, size)
                self.rfile.readline()
        else:
            received = drain(self.rfile, int(self.headers.get("Content-Length", 0)))
        with open(sys.argv[2], "a") as sizes:
            sizes.write("%d\n" % received)
        self.send_response(200)
        self.send_header("Content-Length", "8")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"received")

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Discard)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
server.serve_forever()
PY
if wanted seed || wanted logs; then
    python3 "$work/listener.py" "$work/listener.port" "$work/posts" 2>"$work/listener.log" &
    pids+=($!)
    for _ in $(seq 50); do [ -s "$work/listener.port" ] && break; sleep 0.1; done
    [ -s "$work/listener.port" ] || { echo "bench: the listener did not start: $(cat "$work/listener.log")" >&2; exit 1; }
    listener_url=http://127.0.0.1:$(cat "$work/listener.port")/
fi

# The seed's plugin for atomic-reactor, as its walk-through writes it.
ar_submitter=$PWD/scripts/atomic-reactor/post_logs_submitter.py

# --- the machinery: sides, one hyperfine run per scenario, the summary ---------------------------
declare -A prepare
sides=()
scenario=
# begin KEY: starts declaring the sides of scenario KEY.
begin() { scenario=$1; sides=(); prepare=(); }
# side NAME IMAGE DIR COMMAND: one side of the scenario. Before each run its image and DIR (a
# scratch directory, or -) are removed, untimed. COMMAND is a shell command line.
side() {
    prepare[$1]="docker rmi -f $2 >/dev/null 2>&1; rm -rf ${3#-}; true"
    printf '%s\n' "$4" >"$work/cmd/$scenario.$1.sh"
    sides+=("$1")
}
# reactor_side / reference_side BUILD_JSON [PLUGIN]: the two orchestrators on a build.json whose
# image is $tag-$scenario-reactor / -atomic-reactor.
reactor_side() {
    side reactor "$tag-$scenario-reactor" - "$reactor ${2:+--load-plugin $2 }build json $1"
}
reference_side() {
    [ -n "$reference" ] || return 0
    side atomic-reactor "$tag-$scenario-atomic-reactor" - \
        "$reference build json --method here $1${2:+ --load-plugin $2}"
}
# build_json FILE IMAGE SOURCE [POSTBUILD]: writes a build.json in the `source` form, which both
# orchestrators read; an empty prebuild list keeps atomic-reactor from pulling the base image.
build_json() {
    cat >"$1" <<JSON
{"image": "$2", "source": $3, "prebuild_plugins": [], "postbuild_plugins": [${4:-}]}
JSON
}
post_entry() { echo "{\"name\": \"logs_submitter\", \"args\": {\"url\": \"$listener_url\"}, \"is_allowed_to_fail\": false}"; }

# compare ROUNDS WARMUP: runs the declared sides in one hyperfine invocation: WARMUP (0 or 1)
# uncounted round, then ROUNDS rounds of one run per side, the order rotating each round.
compare() {
    local rounds=$1 warmup=$2 n=${#sides[@]} args=() r i s log=$state/logs/$scenario.log
    for r in $(seq $((1 - warmup)) "$rounds"); do
        for i in $(seq 0 $((n - 1))); do
            s=${sides[$(((r + i) % n))]}
            args+=(-n "$scenario/$s/$r" --prepare "${prepare[$s]}"
                "/usr/bin/time -f %M -o $work/rss/$scenario.$s.$r sh $work/cmd/$scenario.$s.sh")
        done
    done
    echo "bench: $scenario: $rounds rounds$([ "$warmup" = 1 ] && echo ' (and a warm-up)') of ${sides[*]}" >&2
    if ! hyperfine -r 1 --style basic --export-csv "$work/$scenario.csv" "${args[@]}" 2>&1 | tee "$log" |
        awk '/^Benchmark/ { name = $3 } /Time \(abs/ { printf "bench:   %-32s %s %s\n", name, $4, $5; fflush() }' >&2; then
        tail -5 "$log" >&2
        for s in "${sides[@]}"; do echo "bench: $scenario/$s runs: $(cat "$work/cmd/$scenario.$s.sh")" >&2; done
        exit 1
    fi
}
# median_ms SIDE / rss_mib SIDE: over the counted rounds of the current scenario.
median_ms() {
    awk -F, -v side="$scenario/$1/" 'index($1, side) == 1 { split($1, f, "/"); if (f[3] > 0) print $2 * 1000 }' \
        "$work/$scenario.csv" | sort -n |
        awk '{ v[NR] = $1 } END { if (NR) printf "%.0f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
rss_mib() {
    local f
    for f in "$work/rss/$scenario.$1".[1-9]*; do tail -1 "$f"; done | sort -n | tail -1 | awk '{ printf "%.1f\n", $1 / 1024 }'
}

summary=$work/summary
failed=0
# record TARGET_KIND LIMIT REFERENCE_IS_TARGET: one summary row for the scenario just run;
# TARGET_KIND is ratio (reactor / yardstick ≤ LIMIT) or rss (reactor's peak RSS ≤ LIMIT MiB).
record() {
    local kind=$1 limit=$2 ar_target=$3 r y a="" rr yr ar="" ratio result target speedup="" sresult=""
    r=$(median_ms reactor); y=$(median_ms yardstick); rr=$(rss_mib reactor); yr=$(rss_mib yardstick)
    ratio=$(awk -v r="$r" -v y="$y" 'BEGIN { printf "%.2f", r / y }')
    if [ "$kind" = ratio ]; then
        target="<= ${limit}x yardstick"
        result=$(awk -v x="$ratio" -v l="$limit" 'BEGIN { print (x <= l) ? "ok" : "MISSED" }')
    else
        target="RSS <= $limit MiB"
        result=$(awk -v x="$rr" -v l="$limit" 'BEGIN { print (x <= l) ? "ok" : "MISSED" }')
    fi
    [ "$result" = ok ] || failed=1
    if [ -n "$reference" ]; then
        a=$(median_ms atomic-reactor); ar=$(rss_mib atomic-reactor)
        speedup=$(awk -v r="$r" -v a="$a" 'BEGIN { printf "%.2f", a / r }')
        if [ "$ar_target" = 1 ]; then
            sresult=$(awk -v x="$speedup" 'BEGIN { print (x >= 1.5) ? "ok" : "MISSED" }')
            [ "$sresult" = ok ] || failed=1
        else
            sresult=info
        fi
    fi
    printf 'bench: %s: reactor %s ms (peak RSS %s MiB), yardstick %s ms (%s MiB)%s\n' "$scenario" "$r" "$rr" "$y" "$yr" \
        "${a:+, atomic-reactor $a ms ($ar MiB)}" >&2
    printf '%s|%s|%s|%s|%s|%s|%s|%s|%s|%s\n' "$scenario" "$r" "$y" "$ratio" "$rr" "$target" "$result" \
        "$a" "$speedup" "$sresult" >>"$summary"
}

# --- the scenarios ---------------------------------------------------------------------------------
if wanted branch; then
    begin branch
    json=$work/branch.json
    build_json "$json" "$tag-branch-reactor" "{\"provider\": \"git\", \"uri\": \"$git_url\", \"provider_params\": {\"git_commit\": \"main\"}}"
    sed "s/$tag-branch-reactor/$tag-branch-atomic-reactor/" "$json" >"$work/branch-ar.json"
    reactor_side "$json"
    side yardstick "$tag-branch-yardstick" "$work/clone" \
        "git clone -q --depth 1 --branch main $git_url $work/clone && docker build --no-cache -t $tag-branch-yardstick $work/clone"
    reference_side "$work/branch-ar.json"
    compare "$runs" 1
    record ratio 1.1 1
fi

if wanted sha; then
    begin sha
    json=$work/sha.json
    build_json "$json" "$tag-sha-reactor" "{\"provider\": \"git\", \"uri\": \"$git_url\", \"provider_params\": {\"git_commit\": \"$sha\"}}"
    sed "s/$tag-sha-reactor/$tag-sha-atomic-reactor/" "$json" >"$work/sha-ar.json"
    reactor_side "$json"
    side yardstick "$tag-sha-yardstick" "$work/fetch" \
        "git -c init.defaultBranch=main init -q $work/fetch && cd $work/fetch && git remote add origin $git_url && git fetch -q --depth 1 origin $sha && git checkout -q FETCH_HEAD && docker build --no-cache -t $tag-sha-yardstick ."
    reference_side "$work/sha-ar.json"
    compare "$runs" 1
    record ratio 1.1 1
fi

if wanted path; then
    begin path
    tree=$work/tree
    mkdir -p "$tree/data"
    echo "bench: path: writing 512 MiB of random data in 5000 files" >&2
    head -c $((5000 * 107374)) /dev/urandom | split -a 4 -d -b 107374 - "$tree/data/f"
    # 20 of the files, 2.1 MB.
    printf 'FROM busybox:latest\nCOPY data/f000? data/f001? /data/\n' >"$tree/Dockerfile"
    json=$work/path.json
    build_json "$json" "$tag-path-reactor" "{\"provider\": \"path\", \"uri\": \"$tree\"}"
    sed "s/$tag-path-reactor/$tag-path-atomic-reactor/" "$json" >"$work/path-ar.json"
    reactor_side "$json"
    side yardstick "$tag-path-yardstick" - "docker build --no-cache -t $tag-path-yardstick $tree"
    reference_side "$work/path-ar.json"
    compare "$runs" 0
    record ratio 1.0 1
    rm -rf "$tree"
fi

if wanted seed; then
    begin seed
    repo=$work/seed
    example_repo "$repo"
    json=$work/seed.json
    build_json "$json" "$tag-seed-reactor" "{\"provider\": \"git\", \"uri\": \"file://$repo\", \"provider_params\": {\"git_commit\": \"main\"}}" "$(post_entry)"
    sed "s/$tag-seed-reactor/$tag-seed-atomic-reactor/" "$json" >"$work/seed-ar.json"
    reactor_side "$json" "$submitter"
    side yardstick "$tag-seed-yardstick" "$work/seed-clone" \
        "git clone -q file://$repo $work/seed-clone && docker build --no-cache -t $tag-seed-yardstick $work/seed-clone >$work/seed.log 2>&1 && curl -sf -H 'Content-Type: text/plain' --data-binary @$work/seed.log $listener_url >/dev/null"
    reference_side "$work/seed-ar.json" "$ar_submitter"
    compare "$runs" 1
    record ratio 1.0 1
fi

if wanted logs; then
    mkdir -p "$work/lines" "$work/cr"
    # busybox's yes, head and tr: 200 MB of 100-byte lines; 160 MB of progress, every \n made \r.
    cat >"$work/lines/Dockerfile" <<'DOCKERFILE'
FROM busybox:latest
RUN yes 'build output: compiling module 0123456789 of the benchmark, a line of about a hundred bytes.' | head -c 200000000
DOCKERFILE
    cat >"$work/cr/Dockerfile" <<'DOCKERFILE'
FROM busybox:latest
RUN yes 'progress:  42% [==========>                    ] 123456 KiB' | head -c 160000000 | tr '\n' '\r'
DOCKERFILE
    for key in logs-lines logs-post logs-cr; do
        begin "$key"
        dir=$work/lines post=
        [ "$key" = logs-cr ] && dir=$work/cr
        [ "$key" != logs-lines ] && post=$(post_entry)
        json=$work/$key.json
        build_json "$json" "$tag-$key-reactor" "{\"provider\": \"path\", \"uri\": \"$dir\"}" "$post"
        sed "s/$tag-$key-reactor/$tag-$key-atomic-reactor/" "$json" >"$work/$key-ar.json"
        if [ -n "$post" ]; then
            reactor_side "$json" "$submitter"
            side yardstick "$tag-$key-yardstick" - \
                "docker build --no-cache -t $tag-$key-yardstick $dir >$work/$key.log 2>&1 && curl -sf -H 'Content-Type: text/plain' --data-binary @$work/$key.log $listener_url >/dev/null"
            reference_side "$work/$key-ar.json" "$ar_submitter"
        else
            reactor_side "$json"
            side yardstick "$tag-$key-yardstick" - "docker build --no-cache -t $tag-$key-yardstick $dir"
            reference_side "$work/$key-ar.json"
        fi
        compare "$log_runs" 0
        record rss 64 0
    done
fi
[ -s "$work/posts" ] &&
    echo "bench: the listener received $(wc -l <"$work/posts") POSTs, the largest $(sort -n "$work/posts" | tail -1) bytes" >&2

# --- the table -------------------------------------------------------------------------------------
echo
echo "reactor $(git rev-parse --short HEAD) ($("$reactor" --version 2>/dev/null || echo '?')), $(nproc) cores, $(date -u +%Y-%m-%d)," \
    "docker $(docker version --format '{{.Server.Version}}'), medians of $runs rounds ($log_runs for logs-*)${reference:+, atomic-reactor $reference_version}," \
    "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
header="scenario|reactor|yardstick|ratio|reactor RSS|target|result"
[ -n "$reference" ] && header+="|atomic-reactor|speed-up|>= 1.5x"
{
    echo "$header"
    while IFS='|' read -r key r y ratio rr target result a speedup sresult; do
        row="$key|$(awk -v m="$r" 'BEGIN { printf "%.2f s", m / 1000 }')|$(awk -v m="$y" 'BEGIN { printf "%.2f s", m / 1000 }')|${ratio}x|$rr MiB|$target|$result"
        [ -n "$reference" ] && row+="|$(awk -v m="$a" 'BEGIN { printf "%.2f s", m / 1000 }')|${speedup}x|$sresult"
        echo "$row"
    done <"$summary"
} | awk -F'|' '{ for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > width[i]) width[i] = length($i) } n[NR] = NF }
    END { for (r = 1; r <= NR; r++) { line = ""; for (i = 1; i <= n[r]; i++) line = line sprintf("%-*s  ", width[i], cell[r, i]); sub(/ +$/, "", line); print line } }'
echo "yardsticks: branch: git clone --depth 1 + docker build; sha: git fetch --depth 1 origin SHA + docker build;" \
    "path, logs-lines: docker build; seed, logs-post, logs-cr: the same + curl POST of the log"
if [ "$failed" = 1 ]; then
    echo "some targets were missed${REACTOR_BENCH_STRICT:+ (REACTOR_BENCH_STRICT=$REACTOR_BENCH_STRICT)}"
    [ "${REACTOR_BENCH_STRICT:-0}" = 1 ] && exit 1
fi
exit 0
