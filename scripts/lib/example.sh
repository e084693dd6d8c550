# Shared by the scripts that run the seed's example (demo, bench, bench-sources, soak):
# sourced, never run. Expects the working directory to be the repository's root.

# example_repo DIR: the example's source (examples/hello/docker-hello-world) as a git repository
# at DIR, one commit on `main`, as examples/hello/build.json expects to clone it by a path.
example_repo() {
    local dir=$1
    rm -rf "$dir" && mkdir -p "$dir"
    cp -r examples/hello/docker-hello-world/. "$dir/"
    git -C "$dir" init -q -b main
    git -C "$dir" add -A
    git -C "$dir" -c user.name=reactor -c user.email=reactor@localhost commit -q -m "hello world"
}

# start_post_listener PORT FILE [ONCE]: the seed's listener (ncat) on 127.0.0.1:PORT, answering
# each POST and appending its body to FILE; serves one connection when ONCE is "once", else keeps
# listening. Sets `listener` to its pid and returns once the port accepts connections.
start_post_listener() {
    local port=$1 file=$2 keep=-k
    [ "${3:-}" = once ] && keep=
    : >"$file"
    ncat -l $keep 127.0.0.1 "$port" --sh-exec "bash scripts/receive-post.sh $file" &
    listener=$!
    for _ in $(seq 50); do ss -ltn 2>/dev/null | grep -q "127.0.0.1:$port " && return 0; sleep 0.1; done
    echo "$0: the listener on 127.0.0.1:$port did not start" >&2
    return 1
}
