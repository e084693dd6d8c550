# Sourced, not run. The base image busybox:latest for an engine with no public registry: Debian's
# static busybox in a FROM scratch image. setup.sh makes it on the main engine, and each engine of
# scripts/engine/ on its own, through the same function.

# Builds busybox:latest on the engine that `docker "$@"` reaches (nothing: the default one), unless
# that engine already has it.
ensure_base_image() {
    docker "$@" image inspect busybox:latest >/dev/null 2>&1 && return
    printf 'base image: building busybox:latest from busybox-static on %s\n' "${*:-the default engine}" >&2
    local ctx
    ctx=$(mktemp -d)
    cp /bin/busybox "$ctx/busybox"
    printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nENV PATH=/bin\nCMD ["/bin/sh"]\n' >"$ctx/Dockerfile"
    local status=0
    DOCKER_BUILDKIT=0 docker "$@" build -q -t busybox:latest "$ctx" >/dev/null || status=$?
    rm -rf "$ctx"
    return $status
}
