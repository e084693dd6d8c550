#!/usr/bin/env bash
# Installs and starts everything reactor's build and tests need on a Debian machine, idempotently:
#   - Debian packages: the Docker engine (docker.io), a registry (docker-registry), busybox-static,
#     git, curl, ncat, hyperfine, apache2-utils (htpasswd), python3 (the benchmarks' HTTP listener),
#     lighttpd with mod-openssl and openssl (the git transport tests serve smart HTTP and HTTPS),
#     and the -dev packages the crates link against;
#   - dockerd, when the engine does not answer;
#   - a registry on 127.0.0.1:5000 (no auth, loopback only), when it does not answer;
#   - a second registry on 127.0.0.1:5001 that requires a login (htpasswd, bcrypt), user `reactor`,
#     password `reactor-secret`, when it does not answer. Plain HTTP: it listens on loopback only,
#     and dockerd treats 127.0.0.0/8 as an insecure registry without configuration;
#   - the base image busybox:latest (busybox-static in a FROM scratch image), also pushed to
#     127.0.0.1:5000/busybox:latest and 127.0.0.1:5001/busybox:latest, because nothing can be
#     pulled from a public registry here;
#   - the extra engines of scripts/engine/ (scripts/engines.sh up): a dockerd with mutual TLS on
#     tcp://127.0.0.1:2376 and one on plain TCP on tcp://127.0.0.1:2375, each with busybox:latest;
#     sshd on 127.0.0.1:2222 (ssh:// engines) and podman's service on a unix socket.
#   - kubernetes-validate and @ibm/tekton-lint, which check deploy/ (scripts/deploy-tools.sh).
# Safe to run twice: each step checks first and does nothing when its part is already there.
set -euo pipefail

state=${REACTOR_STATE_DIR:-/var/lib/reactor-dev}
registry_addr=127.0.0.1:5000
auth_registry_addr=127.0.0.1:5001
# Test credentials for the authenticated registry; the tests in reactor-host use the same pair.
auth_user=reactor
auth_password=reactor-secret
mkdir -p "$state"
# shellcheck source=lib/base-image.sh
. "$(dirname "$0")/lib/base-image.sh"

say() { printf 'setup: %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_packages() {
    local wanted=(docker.io docker-registry busybox-static git curl ncat iproute2 time hyperfine apache2-utils pkg-config
                  libssl-dev ca-certificates python3 lighttpd lighttpd-mod-openssl openssl groff-base man-db tmux zsh fish
                  openssh-server openssh-client binutils
                  podman netavark aardvark-dns catatonit fuse-overlayfs slirp4netns uidmap)
    local missing=()
    for p in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return
    say "installing ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
    local secs=$1; shift
    for _ in $(seq $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    "$@"
}

start_dockerd() {
    docker info >/dev/null 2>&1 && return
    say "starting dockerd (log: $state/dockerd.log)"
    as_root setsid nohup dockerd >"$state/dockerd.log" 2>&1 < /dev/null &
    wait_for 60 docker info || { tail -20 "$state/dockerd.log" >&2; exit 1; }
}

start_registry() {
    curl -sf "http://$registry_addr/v2/" >/dev/null && return
    cat >"$state/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $state/registry
  delete:
    enabled: true
http:
  addr: $registry_addr
YAML
    say "starting docker-registry on $registry_addr (log: $state/registry.log)"
    setsid nohup docker-registry serve "$state/registry.yml" >"$state/registry.log" 2>&1 < /dev/null &
    wait_for 30 curl -sf "http://$registry_addr/v2/" || { tail -20 "$state/registry.log" >&2; exit 1; }
}

# Any HTTP answer counts: without credentials this registry says 401, which still means it is up.
auth_registry_answers() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://$auth_registry_addr/v2/") || return 1
    [ "$code" = 401 ] || [ "$code" = 200 ]
}

start_auth_registry() {
    auth_registry_answers && return
    # Rewritten each start so a changed password here takes effect.
    htpasswd -Bbc "$state/registry-auth.htpasswd" "$auth_user" "$auth_password" 2>/dev/null
    cat >"$state/registry-auth.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $state/registry-auth
  delete:
    enabled: true
auth:
  htpasswd:
    realm: reactor
    path: $state/registry-auth.htpasswd
http:
  addr: $auth_registry_addr
YAML
    say "starting docker-registry with htpasswd auth on $auth_registry_addr (log: $state/registry-auth.log)"
    setsid nohup docker-registry serve "$state/registry-auth.yml" >"$state/registry-auth.log" 2>&1 < /dev/null &
    wait_for 30 auth_registry_answers || { tail -20 "$state/registry-auth.log" >&2; exit 1; }
}

make_base_image() {
    ensure_base_image
    if ! curl -sf "http://$registry_addr/v2/busybox/manifests/latest" \
            -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' >/dev/null; then
        docker tag busybox:latest "$registry_addr/busybox:latest"
        docker push -q "$registry_addr/busybox:latest" >/dev/null
    fi
    if ! curl -sf -u "$auth_user:$auth_password" "http://$auth_registry_addr/v2/busybox/manifests/latest" \
            -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' >/dev/null; then
        push_with_login "$auth_registry_addr/busybox:latest"
    fi
}

# Pushes a local image that is tagged as $1 with the test login. The login goes to a throwaway
# DOCKER_CONFIG so root's ~/.docker/config.json never holds it.
push_with_login() {
    local config
    config=$(mktemp -d)
    docker tag busybox:latest "$1"
    if ! { printf '%s' "$auth_password" | DOCKER_CONFIG=$config docker login -u "$auth_user" --password-stdin \
                "$auth_registry_addr" >/dev/null 2>&1 \
            && DOCKER_CONFIG=$config docker push -q "$1" >/dev/null; }; then
        rm -rf "$config"
        say "could not push $1 with the test login"
        exit 1
    fi
    DOCKER_CONFIG=$config docker logout "$auth_registry_addr" >/dev/null 2>&1 || true
    rm -rf "$config"
}

install_packages
start_dockerd
start_registry
start_auth_registry
make_base_image
bash "$(dirname "$0")/engines.sh" up
# The offline checkers of deploy/'s manifests (kubernetes-validate, @ibm/tekton-lint).
REACTOR_STATE_DIR=$state bash "$(dirname "$0")/deploy-tools.sh"
say "ready: $(docker version -f 'engine {{.Server.Version}} (API {{.Server.APIVersion}})'), registry $registry_addr," \
    "registry $auth_registry_addr (user $auth_user, password $auth_password), base image busybox:latest," \
    "engines tcp://127.0.0.1:2376 (mutual TLS), tcp://127.0.0.1:2375 (plain), ssh://root@127.0.0.1:2222, podman"
