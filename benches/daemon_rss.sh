#!/bin/bash
# The daemon's memory per real server (issue 17): the real `ldirectord` binary in the
# foreground with the userspace engine (no IPVS needed), N reals over 10 virtual services,
# HTTP negotiate checks every 5 s (timeout 2 s, failurecount 1, no extension directive
# unless LOCKSTEP=1 adds checkspread=lockstep), all answered by one backend process
# (checks/examples/bench_backend.rs). Everything runs in a private network namespace
# (`unshare --net`, needs root); prints VmHWM/VmRSS after SECS seconds and how many reals
# came up.
#
#   cargo build --release --bin ldirectord && cargo build --release -p ldirectord-checks --example bench_backend
#   benches/daemon_rss.sh 1000 10000            # SECS=20 by default
set -euo pipefail
if [ "${LDRS_RSS_NETNS:-}" != 1 ]; then
    exec env LDRS_RSS_NETNS=1 unshare --net "$0" "$@"
fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=${LDIRECTORD:-$REPO/target/release/ldirectord}
BACKEND=${BACKEND:-$REPO/target/release/examples/bench_backend}
SECS=${SECS:-20}
WORK=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait; rm -rf "$WORK"; }
trap cleanup EXIT
ip link set lo up
"$BACKEND" --http 8080 > "$WORK/backend.out" 2>&1 &
pids+=($!)
for n in "$@"; do
    {
        [ "${LOCKSTEP:-0}" = 1 ] && echo "checkspread=lockstep"
        printf 'checktimeout=2\nnegotiatetimeout=2\ncheckinterval=5\nfailurecount=1\n\n'
        for v in $(seq 0 9); do
            echo "virtual=127.1.0.$((v + 1)):8000"
            for k in $(seq $((v * n / 10)) $(((v + 1) * n / 10 - 1))); do
                echo "	real=127.2.$((k / 250)).$((k % 250 + 1)):8080 masq"
            done
            printf '\tservice=http\n\trequest="/"\n\treceive="OK"\n\tchecktype=negotiate\n\n'
        done
    } > "$WORK/$n.cf"
    "$BIN" -d --engine userspace --run-dir "$WORK" "$WORK/$n.cf" start > "$WORK/$n.log" 2>&1 &
    d=$!
    pids+=($d)
    sleep "$SECS"
    hwm=$(awk '/VmHWM/ {print $2}' /proc/$d/status)
    rss=$(awk '/VmRSS/ {print $2}' /proc/$d/status)
    up=$(grep -c 'Added real server' "$WORK/$n.log" || true)
    kill "$d"; wait "$d" 2>/dev/null || true
    echo "reals=$n VmHWM=${hwm}kB VmRSS=${rss}kB up=$up lockstep=${LOCKSTEP:-0}"
done
