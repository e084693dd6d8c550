#!/usr/bin/env bash
# Installs the offline checkers of deploy/'s manifests, idempotently, in fixed places that
# tests/deploy.rs knows:
#   - kubernetes-validate (PyPI; it bundles Kubernetes' schemas) in a venv,
#     $state/deploy-tools/venv/bin/kubernetes-validate;
#   - @ibm/tekton-lint (npm) under a prefix, $state/deploy-tools/npm/node_modules/.bin/tekton-lint.
# $state is REACTOR_STATE_DIR, default /var/lib/reactor-dev (as for scripts/setup.sh).
# Versions are pinned so that a check's verdict does not change under the tests' feet.
# Quick when both are there: each step first checks the installed version.
set -euo pipefail

state=${REACTOR_STATE_DIR:-/var/lib/reactor-dev}
tools=$state/deploy-tools
kubernetes_validate_version=1.37.0
tekton_lint_version=1.1.0

say() { printf 'deploy-tools: %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

mkdir -p "$tools"

# Debian's python3 with its venv module, and Debian's node and npm, unless already present.
need_packages() {
    local missing=()
    [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null \
        || missing+=(python3 python3-venv)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    [ ${#missing[@]} -eq 0 ] && return
    say "installing ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_kubernetes_validate() {
    local venv=$tools/venv
    # The installed version, from its dist-info directory's name (quicker than `pip show`).
    if [ -x "$venv/bin/kubernetes-validate" ] \
        && compgen -G "$venv/lib/python3*/site-packages/kubernetes_validate-$kubernetes_validate_version.dist-info" >/dev/null; then
        return
    fi
    say "installing kubernetes-validate $kubernetes_validate_version into $venv"
    [ -x "$venv/bin/pip" ] || /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$kubernetes_validate_version"
}

install_tekton_lint() {
    local prefix=$tools/npm
    if [ -x "$prefix/node_modules/.bin/tekton-lint" ] \
        && grep -q "\"version\": \"$tekton_lint_version\"" "$prefix/node_modules/@ibm/tekton-lint/package.json" 2>/dev/null; then
        return
    fi
    say "installing @ibm/tekton-lint $tekton_lint_version under $prefix"
    mkdir -p "$prefix"
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "@ibm/tekton-lint@$tekton_lint_version" >/dev/null
}

need_packages
install_kubernetes_validate
install_tekton_lint
say "ready: $tools/venv/bin/kubernetes-validate, $tools/npm/node_modules/.bin/tekton-lint"
