# (6b) resource-agents' ocf-tester on its own ocf:heartbeat:ldirectord, with our binary as
# /usr/sbin/ldirectord (the agent's default program, where our package puts it) and the
# default netlink engine, on real IPVS: ocf-tester must pass; then by hand the table after
# start and an empty one after stop, and the error path where `status` fails (the file
# broken while running: monitor says error, stop finds the daemon with pgrep -f and the
# daemon's cleanstop empties the table). Last, ocf-tester must fail against a program
# whose `status` lies, so a pass above means something.
AGENT=/usr/lib/ocf/resource.d/heartbeat/ldirectord
for f in $AGENT /usr/sbin/ocf-tester /usr/share/resource-agents/ra-api-1.dtd; do
    [ -f $f ] || fail "no $f in the guest: install resource-agents on the host (tests/vm/apt-packages.txt)"
done
command -v xmllint > /dev/null || fail "no xmllint in the guest: install libxml2-utils on the host (tests/vm/apt-packages.txt)"
# ocf-tester runs meta-data as nobody (the busybox root knows only root).
grep -q '^nobody:' /etc/passwd || echo 'nobody:x:65534:65534:nobody:/nonexistent:/bin/sh' >> /etc/passwd
PROGRAM=/usr/sbin/ldirectord
# The stock image's Debian ldirectord steps aside while ours has its name.
[ ! -e $PROGRAM ] || mv $PROGRAM /tmp/ldirectord.debian
trap 'rm -f $PROGRAM; [ ! -e /tmp/ldirectord.debian ] || mv /tmp/ldirectord.debian $PROGRAM' EXIT
ln -s /test/ldirectord $PROGRAM
CF=/tmp/ocf-tester.cf
{ echo 'logfile="/tmp/ld.log"'; cat /test/conf/nat.cf; } > $CF
export OCF_ROOT=/usr/lib/ocf
# tester: ocf-tester on the agent with this file; its output in /tmp/ocf-tester.out.
tester() { ocf-tester -n lb -o configfile=$CF $AGENT > /tmp/ocf-tester.out 2>&1; }
# agent CODE ACTION: run the stock agent, fail unless it returns CODE.
agent() {
    rc=0
    OCF_RESOURCE_INSTANCE=lb OCF_RESKEY_configfile=$CF $AGENT "$2" > /tmp/agent.out 2>&1 || rc=$?
    [ "$rc" = "$1" ] || { cat /tmp/agent.out; tail -20 /tmp/ld.log; fail "stock agent $2 returned $rc, expected $1"; }
    log "stock agent $2 -> $rc"
}
daemon_pid() { cat /var/run/ldirectord.ocf-tester.cf.pid; }
pgrep_daemon() { pgrep -f "$PROGRAM $CF start" || true; }
empty_table() { [ -z "$(ipvsadm -Sn)" ]; }

setup_net
for n in 1 2 3; do start_httpd $n; done

tester || { cat /tmp/ocf-tester.out; tail -30 /tmp/ld.log; fail "ocf-tester failed on the stock agent with our binary"; }
grep -q "passed all tests" /tmp/ocf-tester.out || { cat /tmp/ocf-tester.out; fail "ocf-tester did not say it passed"; }
log "ocf-tester: $(tail -1 /tmp/ocf-tester.out)"
[ -z "$(pgrep_daemon)" ] || fail "a daemon outlived ocf-tester's last stop: $(pgrep_daemon)"
empty_table || { ipvsadm -Ln; fail "ocf-tester's last stop left IPVS entries"; }

# start: the virtual service with both reals in the kernel (no fallback), traffic served.
agent 0 start
wait_until 30 has_real 10.0.0.1:80 1 || { ipvsadm -Ln; fail "r1 never added"; }
wait_until 10 has_real 10.0.0.2:80 1 || { ipvsadm -Ln; fail "r2 never added"; }
want="-A -t $VIP:80 -s rr
-a -t $VIP:80 -r 10.0.0.1:80 -m -w 1
-a -t $VIP:80 -r 10.0.0.2:80 -m -w 1"
[ "$(ipvsadm -Sn | sort)" = "$want" ] || { ipvsadm -Sn; fail "the table after start is not the file's"; }
grep -q "using the netlink engine" /tmp/ld.log || { tail -20 /tmp/ld.log; fail "the netlink engine was not used"; }
pid=$(daemon_pid)
[ "$(pgrep_daemon)" = "$pid" ] || fail "pgrep -f finds '$(pgrep_daemon)', not the daemon $pid"
got=$(bodies nclient 4); [ "$got" = "r1 ok r2 ok" ] || { diagnose nclient; fail "through the VIP: $got"; }
agent 0 stop
! kill -0 "$pid" 2>/dev/null || fail "the daemon survived stop"
empty_table || { ipvsadm -Ln; fail "stop left IPVS entries"; }

# status fails (exit 2: the file broken while the daemon runs): monitor is an error, and
# stop falls back on pgrep -f "PROGRAM CONFIG start" and SIGTERM; the daemon still holds
# the good configuration and its cleanstop empties the table.
agent 0 start
wait_until 30 has_real 10.0.0.1:80 1 || fail "r1 never added (second start)"
pid=$(daemon_pid)
cp $CF $CF.good
echo 'bogus=1' >> $CF
rc=0; $PROGRAM $CF status > /tmp/status.out 2>&1 || rc=$?
[ $rc = 2 ] || { cat /tmp/status.out; fail "status with a broken file exited $rc, not 2"; }
agent 1 monitor
agent 0 stop
wait_until 10 sh -c "! kill -0 $pid" || fail "the agent's pgrep stop did not end the daemon $pid"
[ -z "$(pgrep_daemon)" ] || fail "pgrep still finds $(pgrep_daemon)"
wait_until 10 empty_table || { ipvsadm -Ln; fail "the daemon stopped by SIGTERM left IPVS entries"; }
mv $CF.good $CF

# The control: a program whose status always says "running" must fail ocf-tester.
rm -f $PROGRAM
printf '#!/bin/sh\n[ "$2" = status ] && exit 0\nexec /test/ldirectord "$@"\n' > $PROGRAM
chmod +x $PROGRAM
if tester; then cat /tmp/ocf-tester.out; fail "ocf-tester passed a program whose status lies"; fi
grep -q "Monitoring a stopped resource should return 7" /tmp/ocf-tester.out ||
    { cat /tmp/ocf-tester.out; fail "ocf-tester failed, but not on the lying status"; }
log "ocf-tester with a lying status: $(tail -1 /tmp/ocf-tester.out)"
[ -z "$(pgrep -f "$CF start" || true)" ] || fail "a daemon runs after the lying-status run"
