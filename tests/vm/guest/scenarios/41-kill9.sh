# (issue 14) kill -9 at every step: the detached director (pid file, lock, control socket)
# is killed with SIGKILL at random moments of a start, a reload (SIGHUP with a changed
# file) and a stop, while clients hold echo connections and open new HTTP ones; it is
# started again each time. After every restart: `start` works (exit 0, pid file, status
# 0), the table converges to the file's (`ipvsadm -Sn`), every held connection's entry is
# still in `ipvsadm -Lnc` and it is still answered, and no destination was deleted and
# re-added: ftrace, where the kernel allows it (checked on a scratch service first), must
# see no call of ip_vs_add_dest/ip_vs_del_dest/ip_vs_add_service during the whole series
# (IPVS sends no netlink events to watch); the daemon logs every destination it deletes
# or adds, and there must be no such line since the restart; no snapshot of the watcher
# may lack one; no destination counter may go back (counters only show a re-add of a
# destination without connections: one still referenced comes back from the kernel's
# trash with its counters, as 43-table-changed records).
#
# Runs: LDRS_KILL9_RUNS (tests/vm/run passes it; default 6: two of each kind), delays from
# the seed LDRS_KILL9_SEED (default: the guest's clock; printed, to replay a failure).
# cleanstop=no: a stop that leaves the table is the disturbance-free way to stop a director
# (with cleanstop=yes a stop deletes by design, and a kill during it leaves part of that).
read -r RUNS SEED < /test/kill9-runs || true
# On the way out (also on a failure): stop the clients and every director, keep the status.
trap 'rc=$?; touch /tmp/k9.stop; kill -9 $(pidof ldirectord) 2>/dev/null || true
      echo nop > /sys/kernel/tracing/current_tracer 2>/dev/null || true; exit $rc' EXIT
RUNS=${RUNS:-6}
SEED=${SEED:-$(now_ms)}
log "kill -9 runs: $RUNS, seed $SEED"
setup_net
for n in 1 2; do
    start_httpd $n
    # busybox nc as a forking echo server: the held connections' real servers.
    bg sh -c "exec /sbin/ip netns exec r$n nc -ll -p 7 -e cat 2>/dev/null"
done
wait_until 5 sh -c '(echo hi; sleep 1) | /sbin/ip netns exec r1 timeout 3 nc 10.0.0.1 7 | grep -q hi' ||
    fail "echo server r1 did not start"

# Two files the reloads alternate between: B reweights a real of each virtual and changes
# the HTTP virtual's scheduler (edits only: nothing is deleted by a reload).
write_cf() { # FILE WEIGHT_R1_80 SCHED_80 WEIGHT_R2_7
    cat > "$1" <<EOF
checkinterval=1
checktimeout=3
negotiatetimeout=3
failurecount=3
quiescent=no
autoreload=no
cleanstop=no
logfile="/tmp/k9.log"

virtual=$VIP:80
	real=10.0.0.1:80 masq $2
	real=10.0.0.2:80 masq 1
	service=http
	request="index.html"
	receive="ok"
	scheduler=$3
	protocol=tcp
	checktype=negotiate

virtual=$VIP:7
	real=10.0.0.1:7 masq 1
	real=10.0.0.2:7 masq $4
	scheduler=rr
	protocol=tcp
	checktype=connect
EOF
    cat > "$1.expected" <<EOF
-A -t $VIP:7 -s rr
-A -t $VIP:80 -s $3
-a -t $VIP:7 -r 10.0.0.1:7 -m -w 1
-a -t $VIP:7 -r 10.0.0.2:7 -m -w $4
-a -t $VIP:80 -r 10.0.0.1:80 -m -w $2
-a -t $VIP:80 -r 10.0.0.2:80 -m -w 1
EOF
    sort -o "$1.expected" "$1.expected"
}
write_cf /tmp/k9-a.cf 1 rr 1
write_cf /tmp/k9-b.cf 3 wrr 2
CF=/tmp/k9.cf
PIDF=/tmp/ldirectord.k9.cf.pid
cp /tmp/k9-a.cf $CF; cp /tmp/k9-a.cf.expected $CF.expected

ld() { ldirectord --run-dir /tmp "$CF" "$@"; }
# SIGKILL every ldirectord process (invoker, daemon, stop client) until none is left: a
# process forked while the previous round was being killed is caught by the next one.
kill_all() {
    limit=$(( $(now_ms) + 10000 ))
    while pids=$(pidof ldirectord); do
        kill -9 $pids 2>/dev/null || true
        [ "$(now_ms)" -lt "$limit" ] || fail "ldirectord survived kill -9 ($pids)"
        sleep 0.05
    done
}
# The whole table as ipvsadm -Sn sorts it, against the file in force.
converged() { ipvsadm -Sn | sort | diff - "$CF.expected" > /dev/null; }
# Per destination: "SERVICE DEST CONNS INPKTS" (counters only grow while it exists).
counters() {
    ipvsadm -Ln --stats --exact | awk '/^TCP/ { s = $2 } /->/ && $3 ~ /^[0-9]+$/ { print s, $2, $3, $4 }' | sort
}
held_entries() { ipvsadm -Lnc | awk -v v="$VIP:7" '$3 == "ESTABLISHED" && $5 == v { print $1, $3, $4, $5, $6 }' | sort; }
rand_ms() { awk -v s="$SEED" -v i="$1" -v m="$2" 'BEGIN { srand(s * 1000 + i); print int(rand() * m) }'; }
sleep_ms() { sleep "$(awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }')"; }
# start: must succeed (exit 0, also when the previous daemon died with -9), leave a pid
# file naming a live daemon and answer status 0.
restart() {
    echo "--- run $1 restart" >> /tmp/k9.log
    s0=$(now_ms)
    timeout 120 ldirectord --run-dir /tmp "$CF" start > /tmp/k9.start 2>&1 ||
        { cat /tmp/k9.start; tail -30 /tmp/k9.log; fail "run $1: start failed after kill -9 ($(cat /tmp/k9.start))"; }
    start_ms=$(( $(now_ms) - s0 ))
    pid=$(cat $PIDF 2>/dev/null) || fail "run $1: no pid file after start"
    kill -0 "$pid" 2>/dev/null || fail "run $1: the pid file names no live process ($pid)"
    echo "$pid" >> "$PIDS_FILE"
    ld status > /dev/null 2>&1 || fail "run $1: status does not say running"
}

# Start from an empty table once, then hold 4 echo connections for the whole series.
restart 0
wait_until 60 converged || { ipvsadm -Sn; tail -30 /tmp/k9.log; fail "the first start did not converge"; }
for c in 1 2 3 4; do
    (ip netns exec nclient sh -c "i=0; while [ ! -f /tmp/k9.stop ]; do echo ping-$c-\$i; i=\$((i + 1)); sleep 0.3; done | nc $VIP 7" > /tmp/echo.$c 2>&1) &
    echo $! >> "$PIDS_FILE"
done
wait_until 10 sh -c '[ "$(ipvsadm -Lnc | grep -c "ESTABLISHED.*:7 ")" -ge 4 ]' ||
    { ipvsadm -Lnc; fail "held connections not established"; }
held_entries > /tmp/k9.held
[ "$(wc -l < /tmp/k9.held)" -eq 4 ] || { cat /tmp/k9.held; fail "expected 4 held entries"; }
# New connections all along: one HTTP GET through the VIP every 0.2 s.
(while [ ! -f /tmp/k9.stop ]; do
    if fetch nclient > /dev/null 2>&1; then echo ok; else echo "FAIL $(now_ms)"; fi
    sleep 0.2
done > /tmp/k9.fetch) &
echo $! >> "$PIDS_FILE"
# The kernel's own record, where the guest kernel lets ftrace see them: every call of the
# IPVS functions that add or delete a destination or a service, from here on.
T=/sys/kernel/tracing
TRACED=""
[ -f $T/available_filter_functions ] || mount -t tracefs nodev $T 2>/dev/null || true
if [ -f $T/available_filter_functions ]; then
    # One read: the list is long and slow to produce under emulation.
    TRACED=$(awk '$1 ~ /^(ip_vs_add_dest|ip_vs_del_dest|ip_vs_add_service|ip_vs_del_service|__ip_vs_del_service)$/ { printf " %s", $1 }' $T/available_filter_functions)
fi
# Tracing must be seen to work: an add of a scratch service and real must show up.
if [ -n "$TRACED" ] && echo "$TRACED" > $T/set_ftrace_filter && echo function > $T/current_tracer &&
    echo > $T/trace && echo 1 > $T/tracing_on &&
    ipvsadm -A -t 10.9.9.9:1 && ipvsadm -a -t 10.9.9.9:1 -r 10.0.0.1:1 -m && ipvsadm -D -t 10.9.9.9:1 &&
    grep -q ip_vs_add_dest $T/trace && grep -q ip_vs_add_service $T/trace; then
    echo > $T/trace
    log "ftrace watches:$TRACED"
else
    TRACED=""
    log "ftrace cannot watch the IPVS functions in this kernel: log, watcher and counters only"
fi
# The watcher: every snapshot holds all four destinations (with any weight).
(while [ ! -f /tmp/k9.stop ]; do
    s=$(ipvsadm -Ln)
    for d in 10.0.0.1:80 10.0.0.2:80 10.0.0.1:7 10.0.0.2:7; do
        echo "$s" | grep -q -- "-> $d " || { echo "BAD $(now_ms) $d missing"; echo "$s"; }
    done
    echo snap
done > /tmp/k9.watch 2>&1) &
echo $! >> "$PIDS_FILE"

run=1
survived=0
while [ $run -le "$RUNS" ]; do
    delay=$(rand_ms $run 2500)
    counters > /tmp/k9.counters.before
    echo0=$(cat /tmp/echo.* | wc -l)
    case $(( run % 3 )) in
        1) kind=start
           kill_all
           (ld start > /dev/null 2>&1 &)
           delay=$(( delay * 4 / 5 )) ;;
        2) kind=reload
           if cmp -s $CF /tmp/k9-a.cf; then next=b; else next=a; fi
           cp /tmp/k9-$next.cf $CF.new; mv $CF.new $CF; cp /tmp/k9-$next.cf.expected $CF.expected
           kill -HUP "$(cat $PIDF)"
           delay=$(( delay * 3 / 5 )) ;;
        0) kind=stop
           (ld stop > /dev/null 2>&1 &)
           delay=$(( delay / 3 )) ;;
    esac
    sleep_ms "$delay"
    kill_all
    t0=$(now_ms)
    restart $run
    wait_until 60 converged ||
        { ipvsadm -Sn | sort | diff - "$CF.expected"; tail -40 /tmp/k9.log; fail "run $run ($kind, ${delay} ms): the table did not converge"; }
    took=$(( $(now_ms) - t0 ))
    held_entries > /tmp/k9.held.now
    same_text "run $run ($kind): held connection entries" /tmp/k9.held /tmp/k9.held.now
    counters > /tmp/k9.counters.after
    # A destination deleted and added again starts its counters from zero.
    awk 'NR == FNR { c[$1 " " $2] = $3; p[$1 " " $2] = $4; next }
         ($1 " " $2) in c && ($3 < c[$1 " " $2] || $4 < p[$1 " " $2]) { print "went back:", $0, "was", c[$1 " " $2], p[$1 " " $2]; bad = 1 }
         END { exit bad }' /tmp/k9.counters.before /tmp/k9.counters.after ||
        fail "run $run ($kind): destination counters went back (deleted and re-added)"
    wait_until 15 sh -c "[ \$(cat /tmp/echo.* | wc -l) -ge $(( echo0 + 8 )) ]" ||
        { wc -l /tmp/echo.*; fail "run $run ($kind): the held connections are not answered any more"; }
    # (A reweight after a kill that came before the reload's edits logs "Restored": an edit.)
    if sed -n "/^--- run $run restart/,\$p" /tmp/k9.log | grep -E "Deleted|Purged|Added|Quiescent"; then
        fail "run $run ($kind): the restarted director deleted or added a destination (log lines above)"
    fi
    log "run $run: $kind killed after ${delay} ms; restarted and converged in $took ms (start took $start_ms ms)"
    survived=$(( survived + 1 ))
    run=$(( run + 1 ))
done
touch /tmp/k9.stop
sleep 1
ld stop > /dev/null 2>&1 || true
calls=none
if [ -n "$TRACED" ]; then
    echo 0 > $T/tracing_on
    grep -v '^#' $T/trace > /tmp/k9.trace || true
    echo nop > $T/current_tracer; echo > $T/set_ftrace_filter
    calls=$(wc -l < /tmp/k9.trace)
    [ "$calls" -eq 0 ] || { head -20 /tmp/k9.trace; fail "the kernel saw $calls destination or service adds/deletes during the kills"; }
fi
fails=$(grep -c FAIL /tmp/k9.fetch || true)
oks=$(grep -c ok /tmp/k9.fetch || true)
if grep -q BAD /tmp/k9.watch; then grep -A12 BAD /tmp/k9.watch | head -40; fail "a destination was missing from a snapshot"; fi
log "FIGURE kill -9 runs survived: $survived of $RUNS (seed $SEED); IPVS add/delete calls traced: $calls (${TRACED:- not traced}); table snapshots without a missing destination: $(grep -c snap /tmp/k9.watch); new HTTP connections: $oks ok, $fails failed; echo lines answered: $(cat /tmp/echo.* | wc -l)"
[ "$fails" -eq 0 ] || { grep FAIL /tmp/k9.fetch | head; fail "$fails new connections failed"; }
[ "$survived" -eq "$RUNS" ]
