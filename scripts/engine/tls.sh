#!/usr/bin/env bash
# A second dockerd that speaks mutual TLS on tcp://127.0.0.1:2376 (certificates from certs.sh;
# clients use $engines_dir/client as DOCKER_CERT_PATH), administered through the unix socket
# $engines_dir/tls/docker.sock. Bridge rtls0 (10.213.0.1/24), its own data root.
set -euo pipefail
. "$(dirname "$0")/../lib/engine.sh"

certs=$engines_dir/certs
case ${1:-} in
    up)
        bash "$(dirname "$0")/certs.sh" up
        engine_up tls rtls0 10.213.0.1/24 -H tcp://127.0.0.1:2376 --tlsverify --tlscacert "$certs/ca.pem" \
            --tlscert "$certs/server-cert.pem" --tlskey "$certs/server-key.pem"
        ;;
    down) engine_down tls rtls0 ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
