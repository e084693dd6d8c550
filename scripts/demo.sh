#!/usr/bin/env bash
# The seed's walk-through, for real, on a fresh Debian machine:
#   installs and starts what is needed (scripts/setup.sh), builds reactor and the logs_submitter
#   plugin, makes the example's git repository, listens on localhost:9099 as the seed's ncat
#   does, runs
#       reactor --load-plugin target/release/liblogs_submitter.so build json examples/hello/build.json
#   and shows what the listener received and what the image prints.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo build --release --workspace --quiet

# The example's source as a git repository: examples/hello/build.json clones it by a path.
repo=target/demo/docker-hello-world
rm -rf "$repo" && mkdir -p "$repo"
cp -r examples/hello/docker-hello-world/. "$repo/"
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=demo -c user.email=demo@localhost commit -q -m "hello world"

# terminal 1 of the seed: a listener on localhost:9099 (this one answers, so nobody waits).
received=target/demo/received.txt
: >"$received"
ncat -l 127.0.0.1 9099 --sh-exec "bash scripts/receive-post.sh $received" &
listener=$!
trap 'kill $listener 2>/dev/null || true' EXIT
for _ in $(seq 50); do ss -ltn 2>/dev/null | grep -q '127.0.0.1:9099' && break; sleep 0.1; done

# terminal 2 of the seed.
set -x
target/release/reactor --load-plugin target/release/liblogs_submitter.so build json examples/hello/build.json
{ set +x; } 2>/dev/null

wait "$listener" 2>/dev/null || true
echo
echo "=== what the listener on localhost:9099 received ==="
cat "$received"
echo
echo "=== docker run --rm test-image ==="
docker run --rm test-image
