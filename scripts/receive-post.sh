#!/usr/bin/env bash
# One HTTP exchange for ncat --sh-exec: reads a request from stdin, appends it (request line,
# headers, body) to the file $1, and answers 200 "received". The seed's `ncat -kl` never answers,
# which leaves the poster waiting; this one does.
set -u
out=$1
len=0
{
    while IFS= read -r line; do
        line=${line%$'\r'}
        [ -z "$line" ] && break
        printf '%s\n' "$line"
        case ${line,,} in content-length:*) len=${line#*:}; len=${len// /} ;; esac
    done
    printf '\n'
    head -c "$len"
    printf '\n'
} >>"$out"
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\nConnection: close\r\n\r\nreceived'
