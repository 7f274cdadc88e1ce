# (6) resource-agents' own ocf:heartbeat:ldirectord (copied from the host by tests/vm/run)
# drives our binary as its `ldirectord`, on real IPVS, with the engine chosen by the
# file's engine= (the agent passes no options): start, monitor and traffic through the
# VIP, stop with cleanstop; a killed daemon (stale pid file) reads as stopped; and when
# status fails (the file broken while running) the agent's stop finds the daemon with
# pgrep -f "PROGRAM CONFIG start", so the daemon's command line must be exactly that.
AGENT=/usr/lib/ocf/resource.d/heartbeat/ldirectord
[ -f $AGENT ] || fail "no $AGENT in the guest: install resource-agents on the host (tests/vm/apt-packages.txt)"
CF=/tmp/stock-agent.cf
PIDFILE=/var/run/ldirectord.stock-agent.cf.pid
{ echo 'logfile="/tmp/ld.log"'; echo 'engine=ipvsadm'; cat /test/conf/nat.cf; } > $CF
export OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=lb OCF_RESKEY_configfile=$CF \
    OCF_RESKEY_ldirectord=/test/ldirectord
# agent CODE ACTION: run the stock agent, fail unless it returns CODE.
agent() {
    rc=0
    sh $AGENT "$2" > /tmp/agent.out 2>&1 || rc=$?
    [ "$rc" = "$1" ] || { cat /tmp/agent.out; tail -20 /tmp/ld.log; fail "stock agent $2 returned $rc, expected $1"; }
    log "stock agent $2 -> $rc"
}
daemon_pid() { cat $PIDFILE; }
pgrep_daemon() { pgrep -f "/test/ldirectord $CF start" || true; }
alive() { kill -0 "$1" 2>/dev/null; }

setup_net
for n in 1 2 3; do start_httpd $n; done
agent 7 monitor
agent 0 start
wait_until 30 has_real 10.0.0.1:80 1 || fail "r1 never added"
wait_until 10 has_real 10.0.0.2:80 1 || fail "r2 never added"
grep -q "using the ipvsadm engine" /tmp/ld.log || { cat /tmp/ld.log; fail "engine=ipvsadm not used"; }
pid=$(daemon_pid)
[ "$(pgrep_daemon)" = "$pid" ] || { cat /proc/"$pid"/cmdline | tr '\0' ' '; fail "pgrep -f finds '$(pgrep_daemon)', not the daemon $pid"; }
got=$(bodies nclient 4); [ "$got" = "r1 ok r2 ok" ] || { diagnose nclient; fail "through the VIP: $got"; }
agent 0 monitor
agent 0 start
[ "$(daemon_pid)" = "$pid" ] || fail "a second start replaced the daemon"
agent 0 stop
! alive "$pid" || fail "the daemon survived stop"
ipvsadm -Ln | grep -q "$VIP:80" && fail "cleanstop left the virtual service"
agent 7 monitor
agent 0 stop

# A killed daemon: status 1 "stale pid file", which the agent reads as stopped.
agent 0 start
pid=$(daemon_pid)
kill -9 "$pid"
wait_until 10 sh -c "! kill -0 $pid" || fail "the killed daemon is still there"
agent 7 monitor
agent 0 stop
ipvsadm -C

# status fails (exit 2, the file broken while running): the agent's stop uses pgrep -f.
agent 0 start
pid=$(daemon_pid)
echo 'bogus=1' >> $CF
agent 1 monitor
agent 0 stop
wait_until 10 sh -c "! kill -0 $pid" || fail "the agent's pgrep stop did not end the daemon $pid"
[ -z "$(pgrep_daemon)" ] || fail "pgrep still finds $(pgrep_daemon)"
