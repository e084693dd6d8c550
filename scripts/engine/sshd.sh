#!/usr/bin/env bash
# A second sshd on 127.0.0.1:2222 for the `ssh://` engine tests: `up` starts it, `down` stops it
# (both idempotent). Key-only auth, its own host key, pid file and authorized_keys under
# $REACTOR_ENGINES_DIR/sshd (default /var/lib/reactor-test-engines/sshd); the remote side's
# `docker` reaches the machine's main engine (SetEnv DOCKER_HOST).
#
# What a client needs is made here too, in the same directory:
#   client_key, client_key.pub   the key authorized for root (docker works);
#   nodocker_key                 a key authorized for root whose sessions have a PATH without docker;
#   stranger_key                 a key that is not authorized;
#   known_hosts                  the host key of [127.0.0.1]:2222;
#   ssh_config                   IdentityFile client_key, UserKnownHostsFile known_hosts, BatchMode;
#   bin/ssh                      a wrapper running /usr/bin/ssh -F ssh_config: put bin/ early on PATH
#                                to use the config, since reactor (like the docker CLI) passes no -F.
set -euo pipefail

state=${REACTOR_ENGINES_DIR:-/var/lib/reactor-test-engines}/sshd
addr=127.0.0.1
port=2222
say() { printf 'sshd.sh: %s\n' "$*" >&2; }

running() { [ -f "$state/sshd.pid" ] && kill -0 "$(cat "$state/sshd.pid")" 2>/dev/null; }

answers() { ssh -F "$state/ssh_config" -p "$port" root@"$addr" true </dev/null >/dev/null 2>&1; }

up() {
    command -v /usr/sbin/sshd >/dev/null || { say "no /usr/sbin/sshd: install openssh-server (scripts/setup.sh does)"; exit 1; }
    mkdir -p "$state/bin" /run/sshd
    chmod 700 "$state"
    [ -f "$state/host_key" ] || ssh-keygen -q -t ed25519 -N '' -C reactor-test-sshd -f "$state/host_key"
    for key in client_key nodocker_key stranger_key; do
        [ -f "$state/$key" ] || ssh-keygen -q -t ed25519 -N '' -C "reactor-test-$key" -f "$state/$key"
    done
    # The no-docker key gets a session whose PATH holds no docker: `docker: command not found`.
    {
        cat "$state/client_key.pub"
        printf 'environment="PATH=/nonexistent" %s\n' "$(cat "$state/nodocker_key.pub")"
    } >"$state/authorized_keys"
    printf '[%s]:%s %s\n' "$addr" "$port" "$(cut -d' ' -f1,2 "$state/host_key.pub")" >"$state/known_hosts"
    cat >"$state/sshd_config" <<CONF
ListenAddress $addr:$port
HostKey $state/host_key
PidFile $state/sshd.pid
AuthorizedKeysFile $state/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitUserEnvironment PATH
SetEnv DOCKER_HOST=unix:///var/run/docker.sock
LogLevel INFO
CONF
    cat >"$state/ssh_config" <<CONF
Host $addr localhost
    IdentityFile $state/client_key
    IdentitiesOnly yes
    UserKnownHostsFile $state/known_hosts
    StrictHostKeyChecking yes
    BatchMode yes
CONF
    printf '#!/bin/sh\n# ssh with the test engines'"'"' config: reactor, like the docker CLI, passes no -F.\nexec /usr/bin/ssh -F %s "$@"\n' \
        "$state/ssh_config" >"$state/bin/ssh"
    chmod 755 "$state/bin/ssh"
    if running; then
        # A changed config takes effect on SIGHUP; the keys above are only ever made once.
        kill -HUP "$(cat "$state/sshd.pid")"
    else
        say "starting sshd on $addr:$port (log: $state/sshd.log)"
        /usr/sbin/sshd -f "$state/sshd_config" -E "$state/sshd.log"
    fi
    for _ in $(seq 50); do answers && break; sleep 0.1; done
    answers || { tail -5 "$state/sshd.log" >&2; say "sshd on $addr:$port does not accept the test key"; exit 1; }
}

down() {
    if running; then
        local pid
        pid=$(cat "$state/sshd.pid")
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$state/sshd.pid"
}

case ${1:-} in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
