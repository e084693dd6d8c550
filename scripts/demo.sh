#!/usr/bin/env bash
# The seed's walk-through, for real, on a fresh Debian machine:
#   installs and starts what is needed (scripts/setup.sh), builds reactor and the logs_submitter
#   plugin, makes the example's git repository, listens on localhost:9099 as the seed's ncat
#   does, runs
#       reactor --load-plugin target/release/liblogs_submitter.so build json examples/hello/build.json
#   and shows what the listener received and what the image prints.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/example.sh

bash scripts/setup.sh
cargo build --release --workspace --quiet

# The example's source as a git repository: examples/hello/build.json clones it by a path.
example_repo target/demo/docker-hello-world

# terminal 1 of the seed: a listener on localhost:9099 (this one answers, so nobody waits).
received=target/demo/received.txt
start_post_listener 9099 "$received" once
trap 'kill $listener 2>/dev/null || true' EXIT

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
