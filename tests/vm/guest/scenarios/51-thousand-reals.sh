# (issue 17) A thousand reals on one shared backend, with real IPVS: 1,000 masq reals over
# 10 virtual services, every real address answered by one backend process (nginx, one
# worker, in its own namespace, where all of 10.1.0.0/16 is local), HTTP checks,
# checkinterval 5, timeout 2, failurecount 1, quiescent=no and no extension directive: the
# configuration an operator writes. Once the table is full, over a 60 s window no healthy
# real may leave the table: counted from the log (deletions) and from `ipvsadm -Ln` sampled
# every second. Figures: checks/s (connections the backend accepted, from its namespace's
# TCP counters), the director's CPU per check and RSS. In the default suite (about 70 s).
#
# Runs here (quiet host): debug binary 198 checks/s, 0 deletions, 0 gone, 3.8 ms CPU per
# check, table full 5.9 s after the start; release 199 checks/s, 0 and 0, 3.8 ms (this TCG
# guest's clock source is the HPET: every clock read is a trap, and the runtime reads the
# clock about 25 times per check). Before nginx, busybox httpd (a fork per connection,
# listen backlog 9) dropped most connections at 200 a second: 747-1,489 deletions a run.
REALS=1000
WINDOW=60

load_backend_net
load_director_net dir 1

# The backend: nginx (from the host, one worker), as in the stock image's 61-check-load;
# busybox httpd (a fork per connection, listen backlog 9) overflowed its accept queue at
# 200 connections a second on this guest (12,536 listen drops for 13,305 connections).
[ -x /usr/bin/nginx ] || fail "nginx missing in the guest (the host needs nginx-light)"
mkdir -p /tmp/nginx
cat > /tmp/nginx/nginx.conf <<'EOF'
worker_processes 1;
daemon off;
user root;
pid /tmp/nginx/nginx.pid;
error_log /tmp/nginx/error.log;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path /tmp/nginx/body;
    proxy_temp_path /tmp/nginx/proxy;
    fastcgi_temp_path /tmp/nginx/fastcgi;
    uwsgi_temp_path /tmp/nginx/uwsgi;
    scgi_temp_path /tmp/nginx/scgi;
    server { listen 80 backlog=4096; location / { return 200 "OK"; } }
}
EOF
/sbin/ip netns exec be nginx -p /tmp/nginx -c /tmp/nginx/nginx.conf &
httpd=$!
echo $httpd >> "$PIDS_FILE"
wait_until 10 ip netns exec dir sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 10.1.3.7 80 | grep -q OK' ||
    { cat /tmp/nginx/error.log; fail "the backend does not answer"; }


in_table() { ip netns exec dir ipvsadm -Ln | awk '/Masq/ { print $2 }' | sort; }
in_table_count() { ip netns exec dir ipvsadm -Ln | grep -c Masq || true; }
table_full() { [ "$(in_table_count)" -ge "$REALS" ]; }
# Connections the backend accepted (one per check).
accepted() { ip netns exec be awk '/^Tcp:/ { if (h) print $7; h = 1 }' /proc/net/snmp; }
ticks() { awk '{ print $14 + $15 }' /proc/$1/stat; }
# ticks_all PID: with its children's (busybox httpd forks one per connection).
ticks_all() { awk '{ print $14 + $15 + $16 + $17 }' /proc/$1/stat; }
# busy: the guest's busy and total ticks since boot.
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 " busy of " $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }
# left BEFORE AFTER: how many lines of BEFORE are not in AFTER.
left() { awk 'FILENAME == ARGV[2] { now[$0] = 1; next } { was[$0] = 1 } END { for (a in was) n += !(a in now); print n + 0 }' "$1" "$2"; }
deleted() { grep -c 'Deleted real server' /tmp/ld.log || true; }

load_config "$REALS" 5 > /tmp/thousand.cf
# A log of its own: deletions are counted from it.
: > /tmp/ld.log
start_director /tmp/thousand.cf netlink dir
ld=$(director_pid)
# why: what the director logged besides adds and deletes, and what the backend accepted.
why() {
    echo "deleted: $(deleted), backend accepted $(accepted) connections"
    grep -v -e 'Added real server' -e 'Deleted real server' /tmp/ld.log | tail -n 15
    echo "CPU since the start: director $(ticks $ld) ticks, backend $(ticks_all $httpd) ticks, machine $(busy)"
    echo "reasons of the reals down now:"
    ip netns exec dir ldirectord --run-dir /tmp /tmp/thousand.cf status --json 2>&1 |
        grep -o '"reason":"[^"]*"' | sort | uniq -c | sort -rn | head -n 5
    echo "backend TCP: $(ip netns exec be awk '/^Tcp:/ { if (h) print "ActiveOpens", $6, "PassiveOpens", $7, "AttemptFails", $8, "EstabResets", $9, "RetransSegs", $13, "InErrs", $14; h = 1 }' /proc/net/snmp)"
    echo "backend listen drops: $(ip netns exec be awk '/^TcpExt:/ { if (h) { for (i = 1; i <= NF; i++) if (n[i] ~ /Listen|SynRetrans|TCPReqQFull/) printf "%s %s ", n[i], $i } else for (i = 1; i <= NF; i++) n[i] = $i; h = 1 }' /proc/net/netstat)"
    echo "director TCP: $(ip netns exec dir awk '/^TcpExt:/ { if (h) { for (i = 1; i <= NF; i++) if (n[i] ~ /Listen|SynRetrans|TCPTimeouts/) printf "%s %s ", n[i], $i } else for (i = 1; i <= NF; i++) n[i] = $i; h = 1 }' /proc/net/netstat)"
}
took=$(ms_until 60 table_full) || { why; fail "the table never filled ($(in_table_count) of $REALS)"; }
log "table full $took ms after the start"
kill -0 "$ld" 2>/dev/null || {
    tail -n 20 /tmp/ld.log; dmesg | tail -n 15; free -m
    fail "the director (pid $ld) is gone once the table is full"
}

# The window: every second, the reals that were in the table and are gone.
in_table > /tmp/prev
d0=$(deleted); a0=$(accepted); c0=$(ticks $ld); t0=$(now_ms); gone=0
while [ $(( $(now_ms) - t0 )) -lt $(( WINDOW * 1000 )) ]; do
    sleep 1
    in_table > /tmp/cur
    gone=$(( gone + $(left /tmp/prev /tmp/cur) ))
    mv /tmp/cur /tmp/prev
done
ms=$(( $(now_ms) - t0 )); checks=$(( $(accepted) - a0 )); cpu_ms=$(( ($(ticks $ld) - c0) * 10 ))
flaps=$(( $(deleted) - d0 ))
log "FIGURE thousand reals, interval 5 s: $(( checks * 1000 / ms )) checks/s (ideal $(( REALS / 5 ))), $(( cpu_ms * 1000 / (checks > 0 ? checks : 1) )) us CPU per check, $flaps deletions logged and $gone reals gone from ipvsadm -Ln in $(( ms / 1000 )) s, RSS $(awk '/VmRSS/ { print $2 }' /proc/$ld/status) kB"
if [ "$flaps" -ne 0 ] || [ "$gone" -ne 0 ]; then
    why
    fail "$flaps healthy reals were deleted ($gone seen gone from the table)"
fi
[ "$checks" -gt 0 ] || fail "the backend accepted no check in the window"
# The figures are the director's own: a pid of a wrapper (a shell, ip) shows no CPU.
[ "$cpu_ms" -gt 0 ] || fail "no CPU measured for pid $ld ($(tr '\0' ' ' < /proc/$ld/cmdline))"
