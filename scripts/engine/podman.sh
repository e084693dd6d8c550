#!/usr/bin/env bash
# podman's Docker-compatible service for the podman engine tests: `up` starts it, `down` stops it
# and removes what it left outside its state directory (both idempotent).
#
#   socket:  unix://$REACTOR_ENGINES_DIR/podman/podman.sock (default /var/lib/reactor-test-engines)
#   base:    busybox:latest, built there as on every engine (scripts/lib/base-image.sh)
#   registry 127.0.0.1:5000 reachable from it, marked insecure in its registries.conf
#
# The service runs in a network namespace of its own (unshare --net), so netavark's bridge and
# iptables rules stay out of the host's. Its loopback is then its own: a forwarder listening on
# its 127.0.0.1:5000 passes each connection through a unix socket to a second forwarder in the
# host's namespace, which connects to the registry (unix sockets cross namespaces; ncat on both
# ends). Its configuration (containers.conf, storage.conf, registries.conf) lives in the state
# directory and is named by CONTAINERS_CONF & co, so /etc/containers is not touched.
set -euo pipefail
here=$(dirname "$0")
# shellcheck source=../lib/base-image.sh
. "$here/../lib/base-image.sh"

state=${REACTOR_ENGINES_DIR:-/var/lib/reactor-test-engines}/podman
sock=$state/podman.sock
registry=127.0.0.1:5000
say() { printf 'podman.sh: %s\n' "$*" >&2; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

answers() { docker -H "unix://$sock" version >/dev/null 2>&1; }

write_config() {
    mkdir -p "$state/storage" "$state/run" "$state/tmp" "$state/networks"
    cat >"$state/containers.conf" <<CONF
[containers]
# Without CAP_SYS_RESOURCE every container start otherwise fails with
# "error setting rlimit type 7: operation not permitted".
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$state/events.log"
tmp_dir = "$state/tmp"

[network]
network_config_dir = "$state/networks"
CONF
    cat >"$state/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$state/storage"
runroot = "$state/run"
CONF
    cat >"$state/registries.conf" <<CONF
unqualified-search-registries = []
short-name-mode = "permissive"

[[registry]]
location = "$registry"
insecure = true
CONF
}

up() {
    for tool in podman netavark ncat unshare; do
        command -v "$tool" >/dev/null || [ -x "/usr/lib/podman/$tool" ] ||
            { say "no $tool: install podman netavark aardvark-dns catatonit fuse-overlayfs slirp4netns uidmap ncat (scripts/setup.sh does)"; exit 1; }
    done
    mkdir -p "$state"
    write_config
    if ! answers; then
        stop
        # The host's end of the registry forwarder.
        rm -f "$state/registry.sock"
        setsid nohup ncat -k -l -U "$state/registry.sock" --sh-exec "exec ncat ${registry%:*} ${registry##*:}" \
            >"$state/forward-host.log" 2>&1 </dev/null &
        echo $! >"$state/forward-host.pid"
        say "starting podman's service on unix://$sock (log: $state/podman.log)"
        CONTAINERS_CONF=$state/containers.conf CONTAINERS_STORAGE_CONF=$state/storage.conf \
            CONTAINERS_REGISTRIES_CONF=$state/registries.conf \
            setsid nohup unshare --net sh -c '
                ip link set lo up
                ncat -k -l 127.0.0.1 5000 --sh-exec "exec ncat -U $1/registry.sock" >"$1/forward-ns.log" 2>&1 </dev/null &
                echo $! >"$1/forward-ns.pid"
                echo $$ >"$1/podman.pid"
                exec podman system service --time=0 "unix://$2"' sh "$state" "$sock" \
            >"$state/podman.log" 2>&1 </dev/null &
        for _ in $(seq 150); do answers && break; sleep 0.2; done
        answers || { tail -20 "$state/podman.log" >&2; say "podman's service did not start"; exit 1; }
    fi
    ensure_base_image -H "unix://$sock"
}

# Stops the service and the forwarders, if running.
stop() {
    local pidfile pid
    for pidfile in "$state/podman.pid" "$state/forward-ns.pid" "$state/forward-host.pid"; do
        alive "$pidfile" || { rm -f "$pidfile"; continue; }
        pid=$(cat "$pidfile")
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        rm -f "$pidfile"
    done
    rm -f "$sock" "$state/registry.sock"
}

down() {
    # podman's containers outlive its service (conmon watches them): remove them first, while the
    # service still answers, so that their mounts go too.
    if answers; then
        docker -H "unix://$sock" ps -aq | xargs -r docker -H "unix://$sock" rm -f >/dev/null 2>&1 || true
    fi
    stop
    # What podman writes outside its state directory: its blob cache, network state and runc
    # state. Left over, they confuse the next start.
    rm -rf /var/lib/containers/cache /run/containers/networks /run/runc
    return 0
}

case ${1:-} in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
