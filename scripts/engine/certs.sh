#!/usr/bin/env bash
# Certificates for the mutual-TLS engine (scripts/engine/tls.sh), made with openssl once and kept:
#   $engines_dir/certs/: ca.pem, ca-key.pem, server-cert.pem, server-key.pem
#     (server: subjectAltName IP:127.0.0.1, DNS:localhost; extendedKeyUsage serverAuth)
#   $engines_dir/client/: ca.pem, cert.pem, key.pem (extendedKeyUsage clientAuth), the layout
#     DOCKER_CERT_PATH names.
# `up` makes whatever is missing or expires within a day; `down` leaves them.
set -euo pipefail
. "$(dirname "$0")/../lib/engine.sh"

certs=$engines_dir/certs
client=$engines_dir/client

valid() { [ -f "$1" ] && openssl x509 -in "$1" -noout -checkend 86400 >/dev/null 2>&1; }

make_certs() {
    local tmp
    tmp=$(mktemp -d)
    mkdir -p "$certs" "$client"
    chmod 700 "$certs" "$client"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=reactor test engines CA" \
        -keyout "$certs/ca-key.pem" -out "$certs/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$certs/server-key.pem" -out "$tmp/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$tmp/server.ext"
    openssl x509 -req -in "$tmp/server.csr" -CA "$certs/ca.pem" -CAkey "$certs/ca-key.pem" -CAcreateserial \
        -days 3650 -extfile "$tmp/server.ext" -out "$certs/server-cert.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=reactor test client" \
        -keyout "$client/key.pem" -out "$tmp/client.csr" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >"$tmp/client.ext"
    openssl x509 -req -in "$tmp/client.csr" -CA "$certs/ca.pem" -CAkey "$certs/ca-key.pem" -CAcreateserial \
        -days 3650 -extfile "$tmp/client.ext" -out "$client/cert.pem" 2>/dev/null
    cp "$certs/ca.pem" "$client/ca.pem"
    chmod 600 "$certs"/*-key.pem "$client/key.pem"
    rm -rf "$tmp"
}

case ${1:-} in
    up)
        if valid "$certs/ca.pem" && valid "$certs/server-cert.pem" && valid "$client/cert.pem" \
                && [ -f "$client/key.pem" ] && [ -f "$client/ca.pem" ]; then
            exit 0
        fi
        say "making the test engines' CA, server and client certificates in $engines_dir"
        make_certs
        ;;
    down) ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
