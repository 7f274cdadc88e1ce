# (issue 17) A thousand reals on one shared backend: 1,000 masq reals over 10 virtual
# services, one backend process (Debian's nginx-light, one worker) answering every real
# address, HTTP checks, timeout 2 s, failurecount 1, quiescent=no, no extension directive.
# Ours and keepalived (Debian's 2.2.7, checker only) run one after the other on the same
# shape, each in its own network namespace with its own IPVS table, against the same
# backend. For each: checks/s (the backend's access log), CPU per check, RSS, and flaps:
# healthy reals that left the table during a window of LOAD_WINDOW seconds (default 60;
# the table sampled every second). Ours must have zero flaps and at least keepalived's
# checks/s. Then, at checkinterval 1 s, the backend stops answering for 6 s (every real
# leaves the table) and resumes: the table must be complete again within two intervals
# plus the timeout (4 s).
#
#   LDRS_VM_IMAGE=stock LDRS_VM_PROFILE=release tests/vm/run 61-check-load
[ -x /usr/sbin/keepalived ] && [ -x /usr/sbin/nginx ] ||
    fail "keepalived or nginx missing: this needs LDRS_VM_IMAGE=stock"
REALS=${LOAD_REALS:-1000}
WINDOW=${LOAD_WINDOW:-60}

load_backend_net
load_director_net ours 1
load_director_net ka 2

cat > /tmp/nginx.conf <<'EOF'
worker_processes 1;
daemon off;
pid /tmp/nginx.pid;
error_log /tmp/nginx.err;
events { worker_connections 8192; }
http {
    access_log /tmp/nginx.access;
    server { listen 80 backlog=4096; location / { return 200 "OK"; } }
}
EOF
bg ip netns exec be nginx -c /tmp/nginx.conf
wait_until 10 ip netns exec be sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 10.1.0.1 80 | grep -q OK' ||
    fail "nginx does not answer"


ka_config() {
    echo "global_defs { router_id ldrs }"
    for v in $(seq 0 9); do
        echo "virtual_server 10.0.0.$((v + 1)) 80 {"
        echo "  delay_loop $1"; echo "  lb_algo rr"; echo "  lb_kind NAT"; echo "  protocol TCP"
        for k in $(seq $((v * REALS / 10)) $(((v + 1) * REALS / 10 - 1))); do
            echo "  real_server $(load_real_addr $k) 80 { HTTP_GET { url { path / status_code 200 } connect_timeout 2 retry 0 } }"
        done
        echo "}"
    done
}

# in_table NETNS: the real addresses in that namespace's table, sorted.
in_table() { ip netns exec "$1" ipvsadm -Ln | awk '/Masq/ { print $2 }' | sort; }
table_full() { [ "$(in_table "$1" | wc -l)" -ge "$REALS" ]; }
# ticks PID...: user+system clock ticks of those processes.
ticks() { for p in "$@"; do awk '{ print $14 + $15 }' /proc/$p/stat; done | awk '{ s += $1 } END { print s + 0 }'; }
rss_kb() { for p in "$@"; do awk '/VmRSS/ { print $2 }' /proc/$p/status; done | awk '{ s += $1 } END { print s + 0 }'; }
requests() { wc -l < /tmp/nginx.access; }

# measure NAME NETNS PIDS: over WINDOW seconds, prints one FIGURE line, sets FLAPS and RATE.
measure() {
    name=$1; ns=$2; shift 2
    in_table "$ns" > /tmp/prev
    r0=$(requests); c0=$(ticks "$@"); t0=$(now_ms); FLAPS=0
    while [ $(( $(now_ms) - t0 )) -lt $(( WINDOW * 1000 )) ]; do
        sleep 1
        in_table "$ns" > /tmp/cur
        FLAPS=$(( FLAPS + $(comm -23 /tmp/prev /tmp/cur | wc -l) ))
        mv /tmp/cur /tmp/prev
    done
    ms=$(( $(now_ms) - t0 )); checks=$(( $(requests) - r0 )); cpu=$(( ($(ticks "$@") - c0) * 10 ))
    RATE=$(( checks * 1000 / ms ))
    log "FIGURE $name interval 5 s, $REALS reals: $RATE checks/s (ideal $(( REALS / 5 ))), $(( cpu * 1000 / (checks > 0 ? checks : 1) )) us CPU per check, $FLAPS flaps in ${WINDOW} s, RSS $(rss_kb "$@") kB"
}

# start_ours CONFIG LOG: ours in the foreground in netns ours; sets $ours to its pid.
start_ours() {
    ip netns exec ours sh -c 'echo $$ > /tmp/ours.pid; exec ldirectord -d --engine netlink --run-dir /tmp "$0" start' "$1" > "$2" 2>&1 &
    wait_until 10 test -s /tmp/ours.pid || fail "ours did not start"
    ours=$(cat /tmp/ours.pid); echo $ours >> "$PIDS_FILE"
}
# stop PID: TERM, and wait (up to 30 s) until it is gone.
stop() { kill "$1" 2>/dev/null || true; wait_until 30 sh -c "! kill -0 $1" || kill -9 "$1" 2>/dev/null || true; }
# why LOG: what the director logged besides adds and deletes, last lines.
why() { echo "deleted: $(grep -c 'Deleted real server' "$1" || true)"; grep -v -e 'Added real server' -e 'Deleted real server' "$1" | tail -n 15; }

# 1. Ours, interval 5 s.
load_config "$REALS" 5 > /tmp/load5.cf
start_ours /tmp/load5.cf /tmp/ld.log
wait_until 60 table_full ours || fail "ours: the table never filled ($(in_table ours | wc -l) of $REALS)"
sleep 5
measure ours ours $ours
our_flaps=$FLAPS; our_rate=$RATE
[ "$our_flaps" -eq 0 ] || why /tmp/ld.log
stop $ours; rm -f /tmp/ours.pid

# 2. keepalived, interval 5 s (checker only, in the foreground).
ka_config 5 > /tmp/keepalived.conf
ip netns exec ka keepalived --check --dont-fork --log-console --log-detail --pid /tmp/ka.pid \
    --checkers_pid /tmp/ka-check.pid -f /tmp/keepalived.conf > /tmp/ka.log 2>&1 &
ka=$!; echo $ka >> "$PIDS_FILE"
if wait_until 60 table_full ka; then
    sleep 5
    measure keepalived ka $(cat /tmp/ka.pid /tmp/ka-check.pid 2>/dev/null || echo $ka)
    ka_rate=$RATE
else
    log "FIGURE keepalived: the table never filled ($(in_table ka | wc -l) of $REALS)"; ka_rate=0
fi
[ "${FLAPS:-0}" -eq 0 ] || { echo "keepalived removed: $(grep -c 'Removing service' /tmp/ka.log || true)"; grep -v -e 'Adding service' -e 'Removing service' -e 'succeed on service' -e 'status code success' /tmp/ka.log | tail -n 8; }
# $ka is the subshell running the ip function; keepalived's own pid is in its pid file.
stop "$(cat /tmp/ka.pid 2>/dev/null || echo $ka)"

[ "$our_flaps" -eq 0 ] || fail "ours: $our_flaps healthy reals left the table"
[ "$our_rate" -ge "$ka_rate" ] || fail "ours: $our_rate checks/s, keepalived $ka_rate"

# 3. Ours at interval 1 s: the backend stops for 6 s, then resumes.
ip netns exec ours ipvsadm -C
load_config "$REALS" 1 > /tmp/load1.cf
start_ours /tmp/load1.cf /tmp/ld1.log
wait_until 60 table_full ours || fail "ours at 1 s: the table never filled ($(in_table ours | wc -l) of $REALS)"
kill -STOP $(cat /tmp/nginx.pid) $(pgrep -P "$(cat /tmp/nginx.pid)")
wait_until 20 sh -c "[ \$(ip netns exec ours ipvsadm -Ln | grep -c Masq) -eq 0 ]" ||
    log "not every real left the table during the stop ($(in_table ours | wc -l) left)"
sleep 1
kill -CONT $(cat /tmp/nginx.pid) $(pgrep -P "$(cat /tmp/nginx.pid)")
took=$(ms_until 60 table_full ours) || fail "ours at 1 s: the table was not complete within 60 s of the backend's return ($(in_table ours | wc -l) of $REALS)"
log "FIGURE ours interval 1 s: table complete $took ms after the backend resumed (limit 4000)"
[ "$took" -le 4000 ] || fail "table complete only $took ms after the backend resumed"
