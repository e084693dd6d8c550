#!/usr/bin/env bash
# Benchmarks what plugin directories add to a build: `reactor … build json --dry-run` (everything
# up to the plan: the build.json, discovery, loading what the plan uses) with
#   none   no --plugin-dir (the default path: no plugin directory exists)
#   empty  --plugin-dir of an empty directory
#   pkgs   --plugin-dir of 100 installed packages (one plugin each; keys from reactor-plugin.json)
#   files  --plugin-dir of 100 hand-dropped lib*.so files, known from the manifest cache
#   use1   the same 100 files, the build using one of them (that one file is opened)
# The 100 files are copies of the fixture plugins/test_named, whose key is its file name. A
# package's file is never opened unless a build uses its key, so the packages share one file
# (hard links). The user and system directories and the cache live in a temporary HOME.
# Target: pkgs and files each add less than 100 ms to empty (exit 1 otherwise).
# usage: scripts/bench-plugin-dirs.sh [RUNS]   (hyperfine runs per case, default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}

command -v hyperfine >/dev/null || bash scripts/setup.sh
cargo build --release --quiet -p reactor-host -p test_named
reactor=$PWD/target/release/reactor
fixture=$PWD/target/release/libtest_named.so

work=$(mktemp -d /tmp/reactor-bench-dirs.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
export HOME=$work/home XDG_DATA_HOME=$work/home/data XDG_CACHE_HOME=$work/home/cache
export REACTOR_SYSTEM_PLUGIN_DIR=$work/system REACTOR_PLUGIN_PATH=
mkdir -p "$HOME" "$work/empty" "$work/pkgs" "$work/files"
chmod 755 "$work/empty" "$work/pkgs" "$work/files"

sha=$(sha256sum "$fixture" | cut -d' ' -f1)
cp "$fixture" "$work/shared.so"
for i in $(seq -w 1 100); do
    cp "$fixture" "$work/files/libbench_$i.so"
    mkdir -p "$work/pkgs/bench-$i"
    ln "$work/shared.so" "$work/pkgs/bench-$i/libpkg_$i.so"
    cat >"$work/pkgs/bench-$i/reactor-plugin.json" <<JSON
{"name": "bench-$i", "version": "1.0.0", "api_version": "1.1.0",
 "files": [{"name": "libpkg_$i.so", "sha256": "$sha",
            "plugins": [{"key": "pkg_$i", "phases": ["postbuild"], "version": "1.0.0",
                         "description": "returns its key", "args_schema": {"type": "object"}}]}]}
JSON
done
# Hand-dropped files are opened once, by check (or by the first build), and listed from the
# cache afterwards.
"$reactor" plugins check "$work/files" >/dev/null

cat >"$work/build.json" <<JSON
{"image": "bench:1", "source": {"provider": "path", "uri": "$work/empty"},
 "postbuild_plugins": [{"name": "tag_by_labels"}]}
JSON
cat >"$work/use1.json" <<JSON
{"image": "bench:1", "source": {"provider": "path", "uri": "$work/empty"},
 "postbuild_plugins": [{"name": "bench_042"}]}
JSON
# Every case must succeed before it is timed.
for dir in "" "$work/empty" "$work/pkgs" "$work/files"; do
    "$reactor" ${dir:+--plugin-dir "$dir"} build json "$work/build.json" --dry-run >/dev/null
done
"$reactor" --plugin-dir "$work/files" build json "$work/use1.json" --dry-run | grep -q "bench_042 .*libbench_042.so"

hyperfine --style basic --shell=none --warmup 3 --runs "$runs" --export-json "$work/times.json" \
    -n none "$reactor build json $work/build.json --dry-run" \
    -n empty "$reactor --plugin-dir $work/empty build json $work/build.json --dry-run" \
    -n pkgs "$reactor --plugin-dir $work/pkgs build json $work/build.json --dry-run" \
    -n files "$reactor --plugin-dir $work/files build json $work/build.json --dry-run" \
    -n use1 "$reactor --plugin-dir $work/files build json $work/use1.json --dry-run" >&2

python3 - "$work/times.json" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
median = {name: r["median"] * 1000 for name, r in results.items()}
base = median["empty"]
print(f"{'case':<6} {'median ms':>10} {'+ms vs empty':>13} {'ratio':>6}")
for name in ["none", "empty", "pkgs", "files", "use1"]:
    print(f"{name:<6} {median[name]:>10.2f} {median[name] - base:>13.2f} {median[name] / base:>6.2f}")
missed = [n for n in ["pkgs", "files"] if median[n] - base >= 100]
if missed:
    print(f"target missed: {', '.join(missed)} add 100 ms or more to a build")
    sys.exit(1)
print("target met: 100 plugins in a directory add less than 100 ms to a build")
PY
