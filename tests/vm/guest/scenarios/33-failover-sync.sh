# (2d) Director failover without losing a connection: two directors d1, d2 (network
# namespaces on br0 with a client and two DR real servers), long-lived TCP connections
# through the VIP (an echo every 0.5 s), the active director killed with kill -9 and the
# VIP moved to the other one, which starts its director first (virtual service, then the
# VIP, then a gratuitous ARP: a standby without a virtual service resets synced
# connections, see shared/reference/ipvs-sync.md). With syncdaemon= on the directors and
# `ldirectord sync-backup` on both, every connection survives three moves (d1->d2, back,
# d1->d2 again: the back-move needs entries d2's master synced, for connections opened
# through d2); without them the same first move breaks them. Then the command's edges: an
# identical daemon adopted, a different one refused, the director refusing to start next to
# a foreign master, an orderly stop, the ipvsadm engine's view.
D1=10.0.0.11 D2=10.0.0.12
setup_sync_net() {
    modprobe veth; modprobe bridge
    ip link add br0 type bridge
    ip link set br0 up
    for ns in d1 d2 r1 r2 dclient; do
        case $ns in d1) a=$D1 ;; d2) a=$D2 ;; r1) a=10.0.0.1 ;; r2) a=10.0.0.2 ;; dclient) a=10.0.0.200 ;; esac
        ip netns add $ns
        ip link add v$ns type veth peer name eth0 netns $ns
        ip link set v$ns master br0 up
        ip -n $ns link set lo up
        ip -n $ns addr add $a/24 dev eth0
        ip -n $ns link set eth0 up
    done
    for n in 1 2; do
        ip netns exec r$n sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
        ip -n r$n addr add $VIP/32 dev lo
        bg inns r$n nc -ll -p 7 -e cat 2>/dev/null
    done
    ip -n dclient route add $VIP/32 dev eth0
}

# inns NS COMMAND...: COMMAND in NS's network only (nsenter: no sysfs remount as with
# ip netns exec, so cheap enough to poll under TCG).
inns() { ns=$1; shift; nsenter --net=/run/netns/$ns "$@"; }

# start_dir NS: the director of NS in the foreground (-d), log /tmp/ld-NS.log. nsenter
# execs it, so $! is the director (lib.sh's ip is a function: $! would be a subshell).
start_dir() {
    echo "--- start $(now_ms)" >> /tmp/ld-$1.log
    nsenter --net=/run/netns/$1 ldirectord -d /tmp/sync.cf start >> /tmp/ld-$1.log 2>&1 &
    echo $! > /tmp/ld-$1.pid
    echo $! >> "$PIDS_FILE"
}
ns_has_reals() { [ "$(inns $1 ipvsadm -Ln | grep -c -- '-> 10.0.0.[12]:7')" = 2 ]; }
ns_has_service() { inns $1 ipvsadm -Ln | grep -q "TCP  $VIP:7"; }
take_vip() {
    ip -n $1 addr add $VIP/32 dev eth0
    inns $1 arping -q -U -c 2 -w 2 -I eth0 $VIP >/dev/null 2>&1 &
}

# conn NAME: one long-lived connection; each echoed line is logged with the uptime (s)
# in /tmp/conn.NAME, and "closed" when nc ends (a reset, or the end of the test).
conn() {
    ( n=0; while [ ! -f /tmp/conns.stop ]; do echo "$1 $n"; n=$((n + 1)); sleep 0.5; done ) |
        inns dclient nc $VIP 7 2>/dev/null |
        while read -r line; do read -r up _ < /proc/uptime; echo "$up $line"; done > /tmp/conn.$1
    read -r up _ < /proc/uptime; echo "$up closed" >> /tmp/conn.$1
}
open_conns() {  # COHORT N
    i=1; while [ $i -le $2 ]; do bg conn $1$i; i=$((i + 1)); done
}
echoing() { [ -s /tmp/conn.$1 ] && ! grep -q closed /tmp/conn.$1; }
all_echoing() { for c in $(cat /tmp/conn.names); do echoing $c || return 1; done; }
probe_new() {
    (echo new; sleep 0.4) | inns dclient timeout 1 nc $VIP 7 2>/dev/null | grep -q new
}

# move FROM TO: the director on FROM dies (kill -9, its VIP goes with the node's role);
# TO starts its director, and takes the VIP once the virtual service is there.
move() {
    # Connection entries the standby holds (unique client:port -> VIP), from its backup.
    held=$(inns $2 ipvsadm -Lnc | awk '$3 == "ESTABLISHED" { print $4, $5 }' | sort -u | wc -l)
    t0=$(now_ms)
    kill -9 "$(cat /tmp/ld-$1.pid)"
    ip -n $1 addr del $VIP/32 dev eth0
    start_dir $2
    wait_until 15 ns_has_service $2 || { cat /tmp/ld-$2.log; fail "no virtual service on $2"; }
    t_svc=$(now_ms)
    take_vip $2
    t_vip=$(now_ms)
    wait_until 15 probe_new || { inns $2 ipvsadm -Ln; fail "no new connection through $2"; }
    t_new=$(now_ms)
    log "FIGURE move $1->$2 (sync $SYNC): $2 held $held established entries before; service $((t_svc - t0)) ms after kill -9, VIP at $((t_vip - t0)) ms, first new connection $((t_new - t0)) ms after kill -9 ($((t_new - t_vip)) ms after the VIP)"
}

# verdict: per connection, kept (still echoing at the end) and its longest pause between
# two echoes; prints "KEPT TOTAL LONGEST_MS".
verdict() {
    end=$1
    for c in $(cat /tmp/conn.names); do
        awk -v end="$end" -v c="$c" '
            $2 == "closed" { closed = 1; next }
            { if (n++) { gap = ($1 - last) * 1000; if (gap > max) max = gap } last = $1 }
            END { kept = !closed && last >= end - 1.5
                  printf "%s %d %d %d\n", c, kept, max, n }' /tmp/conn.$c
    done > /tmp/verdict
    cat /tmp/verdict >&2
    awk '{ kept += $2; if ($3 > max) max = $3 } END { printf "%d %d %d\n", kept, NR, max }' /tmp/verdict
}

stop_conns() {
    touch /tmp/conns.stop; sleep 1
    kill $(pidof nc) 2>/dev/null || true
}

run_failovers() {
    SYNC=$1
    reset_world; rm -f /tmp/conn.* /tmp/conns.stop /tmp/ld-d?.*
    setup_sync_net
    if [ "$SYNC" = yes ]; then
        cp conf/sync.cf /tmp/sync.cf
        for d in d1 d2; do inns $d ldirectord sync-backup start eth0 || fail "sync-backup start on $d"; done
    else
        grep -v '^syncdaemon' conf/sync.cf > /tmp/sync.cf
    fi
    start_dir d1
    wait_until 30 ns_has_reals d1 || { cat /tmp/ld-d1.log; fail "d1 never programmed its reals"; }
    take_vip d1
    wait_until 10 probe_new || fail "no connection through d1"
    open_conns a 6; echo "a1 a2 a3 a4 a5 a6" > /tmp/conn.names
    wait_until 10 all_echoing || fail "cohort a did not start echoing"
    sleep 5    # older than the sync latency (2-3.6 s)
    move d1 d2
    if [ "$SYNC" = no ]; then
        sleep 6
        read -r end _ < /proc/uptime
        set -- $(verdict "$end")
        log "FIGURE without sync: $1 of $2 connections kept over one move, longest pause $3 ms"
        stop_conns
        [ "$1" -lt "$2" ] || fail "without sync every connection survived: the test cannot tell"
        [ "$1" = 0 ] || log "note: $1 connection(s) survived without sync"
        return 0
    fi
    sleep 3
    open_conns b 6; echo "a1 a2 a3 a4 a5 a6 b1 b2 b3 b4 b5 b6" > /tmp/conn.names
    wait_until 10 all_echoing || fail "cohort b (through d2) did not start echoing"
    sleep 5
    move d2 d1
    # d1's old table still serves, so the move can end before its new director is past
    # start-up (a dead holder's claim is waited for up to 3 s): wait for the line.
    wait_until 15 grep -q "Adopted the running master sync daemon" /tmp/ld-d1.log ||
        { cat /tmp/ld-d1.log; fail "d1's director did not adopt the master it left behind"; }
    sleep 5
    move d1 d2
    sleep 4
    read -r end _ < /proc/uptime
    set -- $(verdict "$end")
    log "FIGURE with sync: $1 of $2 connections kept over 3 moves, longest pause $3 ms"
    stop_conns
    [ "$1" = "$2" ] || { for d in d1 d2; do inns $d ipvsadm -Lnc; done; fail "$(( $2 - $1 )) connection(s) lost with sync"; }
}

run_failovers no
run_failovers yes

# The edges, in d2 (its director runs, killed d1's left its master behind).
status_of() { inns $1 ldirectord $2 sync-backup status eth0 $3 >/dev/null 2>&1; echo $?; }
inns d2 ldirectord sync-backup start eth0 || fail "a second identical start is not a success"
inns d2 ldirectord sync-backup start eth0 5 2>/tmp/err && fail "a different backup was started over the running one"
grep -q "a different backup sync daemon already runs: backup sync daemon (mcast=eth0, syncid=0" /tmp/err ||
    { cat /tmp/err; fail "the refusal does not say what runs"; }
[ "$(status_of d2 '' 0)" = 0 ] || fail "status of the running backup is not 0"
[ "$(status_of d2 '' 5)" = 3 ] || fail "status of another backup is not 3"
[ "$(status_of d2 '--engine ipvsadm' 0)" = 0 ] || fail "status through ipvsadm is not 0"
rc=0; inns d2 ldirectord --engine ipvsadm sync-backup start eth0 7 2>/tmp/err || rc=$?
[ $rc = 1 ] || { cat /tmp/err; fail "a different backup through ipvsadm: exit $rc"; }
inns d2 ipvsadm -L --daemon
# An orderly stop stops the director's master and leaves the backup.
kill -TERM "$(cat /tmp/ld-d2.pid)"
rc=0; wait "$(cat /tmp/ld-d2.pid)" || rc=$?
[ $rc = 0 ] || { tail -20 /tmp/ld-d2.log; fail "d2's director exited $rc on TERM"; }
inns d2 ipvsadm -L --daemon > /tmp/daemons
grep -q '^master' /tmp/daemons && { tail -20 /tmp/ld-d2.log; fail "the master sync daemon outlived the director's stop"; }
grep -q '^backup' /tmp/daemons || fail "the director's stop took the backup with it"
inns d2 ldirectord sync-backup stop eth0 || fail "sync-backup stop"
inns d2 ldirectord sync-backup stop eth0 || fail "a second sync-backup stop is not a success"
[ "$(status_of d2 '' 0)" = 3 ] || fail "status after stop is not 3"
# Group and port reach the kernel as asked (host-order port, network-order group).
inns d2 ldirectord sync-backup start eth0 3 --group 239.1.2.3 --port 8850 || fail "sync-backup with group and port"
inns d2 ipvsadm -L --daemon | grep -q "^backup sync daemon (mcast=eth0, syncid=3, maxlen=[0-9]*, group=239.1.2.3, port=8850, ttl=1)" ||
    { inns d2 ipvsadm -L --daemon; fail "the kernel did not get the group and port asked for"; }
[ "$(status_of d2 '' '3 --group 239.1.2.3 --port 8850')" = 0 ] || fail "status with group and port is not 0"
inns d2 ldirectord sync-backup stop eth0 3 --group 239.1.2.3 --port 8850 || fail "sync-backup stop with group and port"
[ -z "$(inns d2 ipvsadm -L --daemon)" ] || fail "daemons left in d2"
rc=0; inns d2 ldirectord sync-backup start nosuch0 2>/tmp/err || rc=$?
[ $rc = 2 ] || { cat /tmp/err; fail "a missing interface exits $rc, not 2"; }
grep -q 'no network interface "nosuch0"' /tmp/err || { cat /tmp/err; fail "the message does not name the interface"; }
# A foreign master: the director refuses to start and changes nothing.
inns d2 ipvsadm -C
inns d2 ipvsadm --start-daemon master --mcast-interface eth0 --syncid 9
rc=0; inns d2 ldirectord -d /tmp/sync.cf start 2>/tmp/err || rc=$?
[ $rc = 1 ] || { cat /tmp/err; fail "the director started next to a foreign master (exit $rc)"; }
grep -q "a different master sync daemon already runs: master sync daemon (mcast=eth0, syncid=9" /tmp/err ||
    { cat /tmp/err; fail "the refusal does not name the running master"; }
[ -z "$(inns d2 ipvsadm -Ln | grep TCP)" ] || fail "the refused director programmed the table"
inns d2 ipvsadm --stop-daemon master
log "sync-backup and director edges: as expected"
