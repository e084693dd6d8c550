# Sourced, not run: what the extra engines of scripts/engine/ share. Every engine keeps its state
# (data root, exec root, pid file, log, admin socket) under $engines_dir/NAME.

engines_dir=${REACTOR_ENGINES_DIR:-/var/lib/reactor-test-engines}
# shellcheck source=base-image.sh
. "$(dirname "${BASH_SOURCE[0]}")/base-image.sh"

say() { printf 'engines: %s\n' "$*" >&2; }

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
    local secs=$1; shift
    for _ in $(seq $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    "$@"
}

# The unix socket an engine is administered through (tests list its containers there too).
engine_socket() { printf '%s/%s/docker.sock' "$engines_dir" "$1"; }

# Starts a second dockerd called $1 on bridge $2 (address $3), with the extra dockerd arguments
# after them, unless it already answers on its socket; then gives it the base image.
# Its own bridge, never --bridge=none: in the host's network namespace that makes dockerd delete
# docker0, the main engine's bridge. Its own data and exec roots, so its own containerd.
engine_up() {
    local name=$1 bridge=$2 address=$3; shift 3
    local dir=$engines_dir/$name sock
    sock=$(engine_socket "$name")
    if ! docker -H "unix://$sock" info >/dev/null 2>&1; then
        mkdir -p "$dir"
        engine_stop "$name"
        if ! ip link show "$bridge" >/dev/null 2>&1; then
            ip link add "$bridge" type bridge
            ip addr add "$address" dev "$bridge"
        fi
        ip link set "$bridge" up
        # An empty configuration: /etc/docker/daemon.json belongs to the main engine.
        echo '{}' >"$dir/daemon.json"
        say "starting dockerd '$name' (log: $dir/dockerd.log)"
        setsid nohup dockerd --config-file "$dir/daemon.json" --data-root "$dir/data" --exec-root "$dir/exec" \
            --pidfile "$dir/dockerd.pid" -H "unix://$sock" "$@" \
            --bridge="$bridge" --iptables=false --ip-masq=false --ip-forward=false \
            --cgroup-parent="/reactor-$name" --label "reactor-test-engine=$name" \
            >"$dir/dockerd.log" 2>&1 </dev/null &
        wait_for 60 docker -H "unix://$sock" info || { tail -20 "$dir/dockerd.log" >&2; return 1; }
    fi
    ensure_base_image -H "unix://$sock"
}

# Stops the dockerd called $1 (if its pid file names a live one) and waits for it to exit.
engine_stop() {
    local dir=$engines_dir/$1 pid
    [ -f "$dir/dockerd.pid" ] || return 0
    pid=$(cat "$dir/dockerd.pid")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        say "stopping dockerd '$1' (pid $pid)"
        kill "$pid"
        for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$dir/dockerd.pid"
}

# Stops the dockerd called $1 and removes its bridge $2; its data root stays, for the next `up`.
engine_down() {
    engine_stop "$1"
    ip link show "$2" >/dev/null 2>&1 && ip link del "$2"
    return 0
}
