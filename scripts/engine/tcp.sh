#!/usr/bin/env bash
# A third dockerd on plain TCP, tcp://127.0.0.1:2375 (loopback only: no TLS, no authentication),
# administered through $engines_dir/tcp/docker.sock. A daemon of its own because --tlsverify
# applies to every tcp:// listener of one dockerd. Bridge rtcp0 (10.214.0.1/24).
set -euo pipefail
. "$(dirname "$0")/../lib/engine.sh"

case ${1:-} in
    up) engine_up tcp rtcp0 10.214.0.1/24 -H tcp://127.0.0.1:2375 ;;
    down) engine_down tcp rtcp0 ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
