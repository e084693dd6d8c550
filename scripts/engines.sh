#!/usr/bin/env bash
# Starts (`up`) or stops (`down`) the extra Docker engines the tests use, every
# scripts/engine/*.sh in turn (`down` in reverse order). Idempotent: `up` leaves a running engine
# alone. State under ${REACTOR_ENGINES_DIR:-/var/lib/reactor-test-engines}; setup.sh runs `up`.
#   tls: mutual TLS on tcp://127.0.0.1:2376, DOCKER_CERT_PATH=$REACTOR_ENGINES_DIR/client
#   tcp: plain TCP on tcp://127.0.0.1:2375
#   sshd: ssh://root@127.0.0.1:2222 (keys, known_hosts, an ssh wrapper under $REACTOR_ENGINES_DIR/sshd)
#   podman: podman's service on unix://$REACTOR_ENGINES_DIR/podman/podman.sock
set -euo pipefail
cd "$(dirname "$0")"
action=${1:-}
case $action in
    up) scripts=(engine/*.sh) ;;
    down) mapfile -t scripts < <(printf '%s\n' engine/*.sh | sort -r) ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
for script in "${scripts[@]}"; do
    bash "$script" "$action"
done
