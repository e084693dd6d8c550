#!/usr/bin/env bash
# Installs and starts everything reactor's build and tests need on a Debian machine, idempotently:
#   - Debian packages: the Docker engine (docker.io), a registry (docker-registry), busybox-static,
#     git, curl, ncat, hyperfine, and the -dev packages the crates link against;
#   - dockerd, when the engine does not answer;
#   - a registry on 127.0.0.1:5000 (no auth, loopback only), when it does not answer;
#   - the base image busybox:latest (busybox-static in a FROM scratch image), also pushed to
#     127.0.0.1:5000/busybox:latest, because nothing can be pulled from a public registry here.
# Safe to run twice: each step checks first and does nothing when its part is already there.
set -euo pipefail

state=${REACTOR_STATE_DIR:-/var/lib/reactor-dev}
registry_addr=127.0.0.1:5000
mkdir -p "$state"

say() { printf 'setup: %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_packages() {
    local wanted=(docker.io docker-registry busybox-static git curl ncat iproute2 time hyperfine pkg-config libssl-dev ca-certificates)
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

make_base_image() {
    if ! docker image inspect busybox:latest >/dev/null 2>&1; then
        say "building the base image busybox:latest from busybox-static"
        local ctx
        ctx=$(mktemp -d)
        cp /bin/busybox "$ctx/busybox"
        printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nENV PATH=/bin\nCMD ["/bin/sh"]\n' >"$ctx/Dockerfile"
        DOCKER_BUILDKIT=0 docker build -q -t busybox:latest "$ctx" >/dev/null
        rm -rf "$ctx"
    fi
    if ! curl -sf "http://$registry_addr/v2/busybox/manifests/latest" \
            -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' >/dev/null; then
        docker tag busybox:latest "$registry_addr/busybox:latest"
        docker push -q "$registry_addr/busybox:latest" >/dev/null
    fi
}

install_packages
start_dockerd
start_registry
make_base_image
say "ready: $(docker version -f 'engine {{.Server.Version}} (API {{.Server.APIVersion}})'), registry $registry_addr, base image busybox:latest"
