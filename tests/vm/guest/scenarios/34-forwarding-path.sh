# (2d) checkpath=forwarding (issue 15): checks go to VIP:port through a one-real fwmark
# helper service per real, so they travel the way IPVS sends clients' traffic.
# DR: r1 and r2 with the VIP on lo (setup_net); r2 loses it: down with forwarding (reason
# "no answer through the forwarding path; direct path answers"), up with direct (reload),
# no client request lost once it is out, back when the VIP returns. TUN: r3 (ipip) with
# the VIP on tunl0, then without. A hung real, a reload switching checkpath and a restart
# over the live table leave nothing behind (ipvsadm -Sn compared); stop removes the
# helpers and restores accept_local. ENGINE=ipvsadm (set by a scenario that sources this
# one) runs it with the ipvsadm engine.
REASON="no answer through the forwarding path; direct path answers"
modprobe ipip 2>/dev/null && [ -d /proc/sys/net/ipv4/conf/tunl0 ] || fail "ipip.ko is missing from the image"
setup_net
for n in 1 2; do start_httpd $n; done
# r3: TUN real, the VIP on tunl0 instead of lo, answering on port 81.
ip -n r3 addr del $VIP/32 dev lo
ip -n r3 link set tunl0 up
ip -n r3 addr add $VIP/32 dev tunl0
ip netns exec r3 sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.tunl0.rp_filter=0
mkdir -p /www/r3 && echo "r3 ok" > /www/r3/index.html
bg ip netns exec r3 httpd -f -p 81 -h /www/r3
ip -n dclient route add $VIP via 10.0.0.254
sysctl -qw net.ipv4.conf.all.accept_local=0
# r2 starts without the VIP: it answers on its RIP but would drop what IPVS sends it.
ip -n r2 addr del $VIP/32 dev lo
cp conf/fwd.cf /tmp/fwd.cf

helpers() { ipvsadm -Sn | grep -c '^-A -f 1818[45]' || true; }   # marks 0x6c640000.. = 1818492928..1818558463
in_table() { ipvsadm -Ln | grep -q -- "-> $1 "; }
monitor_says() { tail -n 50 /tmp/fwd.monitor 2>/dev/null | grep "10.0.0.2" | tail -n 1 | grep -qF "$1"; }
cpu_ticks() { awk '{ print $14 + $15 }' /proc/"$(director_pid)"/stat; }

start_director /tmp/fwd.cf "${ENGINE:-netlink}"
wait_until 40 has_real 10.0.0.1:80 1 || { cat /tmp/ld.log; ipvsadm -Ln; fail "r1 (VIP on lo) never added through the forwarding path"; }
wait_until 30 has_real 10.0.0.3:81 1 || { cat /tmp/ld.log; ipvsadm -Ln; fail "r3 (VIP on tunl0) never added through the forwarding path"; }
wait_until 30 monitor_says "$REASON" || { cat /tmp/fwd.monitor; tail -30 /tmp/ld.log; fail "r2's reason is not '$REASON'"; }
in_table 10.0.0.2:80 && fail "r2 without the VIP is in the table with checkpath=forwarding"
[ "$(helpers)" = 3 ] || { ipvsadm -Ln; fail "expected 3 helper services, got $(helpers)"; }
[ "$(cat /proc/sys/net/ipv4/conf/all/accept_local)" = 1 ] || fail "accept_local not set"
grep -q "set /proc/sys/net/ipv4/conf/all/accept_local to 1 (was 0)" /tmp/ld.log || fail "accept_local change not logged"
ldirectord --probe /tmp/fwd.cf > /tmp/probe.out 2>&1 || true
grep "10.0.0.2" /tmp/probe.out | grep -qF "$REASON" || { cat /tmp/probe.out; fail "--probe does not give the forwarding reason"; }
# status finds a daemon by its pid file, which -d does not write.
director_pid > /tmp/ldirectord.fwd.cf.pid
ldirectord --run-dir /tmp /tmp/fwd.cf status --json > /tmp/status.json 2>&1 || true
rm -f /tmp/ldirectord.fwd.cf.pid
grep -qF "$REASON" /tmp/status.json || { cat /tmp/status.json; fail "status does not give the forwarding reason"; }
grep -F "$REASON" /tmp/ld.log | head -n 1
got=$(bodies dclient 8); log "client sees: $got"
[ "$got" = "r1 ok" ] || { diagnose dclient; fail "expected only r1 through the VIP, got: $got"; }
# The TUN real serves clients through the tunnel.
printf 'GET /index.html HTTP/1.0\r\n\r\n' | ip netns exec dclient timeout 5 nc -w 3 $VIP 81 | grep -q "r3 ok" ||
    { diagnose dclient; fail "r3 (ipip) does not serve through the VIP"; }

# The VIP comes back on r2: in again.
ip -n r2 addr add $VIP/32 dev lo
ms=$(ms_until 20 has_real 10.0.0.2:80 1) || { tail -20 /tmp/ld.log; fail "r2 not added after its VIP returned"; }
log "FIGURE dr-vip-back-to-in ms=$ms"
got=$(bodies dclient 8); [ "$got" = "r1 ok r2 ok" ] || fail "both reals expected, got: $got"

# Cost per check: 20 s with every real up through the forwarding path (3 checks/s).
t0=$(cpu_ticks); sleep 20; t1=$(cpu_ticks)
log "FIGURE forwarding cpu-ms-per-check=$(( (t1 - t0) * 10 * 1000 / 60 ))e-3 (ticks $((t1 - t0)) over 60 checks)"
for i in 1 2 3 4 5; do ldirectord --probe --json /tmp/fwd.cf; echo; done > /tmp/lat.fwd 2>/dev/null || true

# r2 loses its VIP while a client sends requests: detection time, and no request lost to
# r2 once it is out.
# Each line: when the request started, and whether it was answered.
( while [ ! -f /tmp/traffic.stop ]; do
      t=$(now_ms)
      if fetch dclient > /dev/null 2>&1; then echo "$t ok"; else echo "$t lost"; fi
  done > /tmp/traffic.log ) &
echo $! >> "$PIDS_FILE"
sleep 2
t_lost=$(now_ms)
ip -n r2 addr del $VIP/32 dev lo
wait_until 20 sh -c "! ipvsadm -Ln | grep -q -- '-> 10.0.0.2:80 '" || { tail -20 /tmp/ld.log; fail "r2 not taken out after losing its VIP"; }
t_out=$(now_ms)
log "FIGURE dr-vip-lost-to-out ms=$(( t_out - t_lost ))"
sleep 8
touch /tmp/traffic.stop; sleep 6
lost_before=$(awk -v t="$t_lost" -v o="$t_out" '$1 >= t && $1 <= o && $2 == "lost"' /tmp/traffic.log | wc -l)
sent_before=$(awk -v t="$t_lost" -v o="$t_out" '$1 >= t && $1 <= o' /tmp/traffic.log | wc -l)
lost_after=$(awk -v o="$t_out" '$1 > o && $2 == "lost"' /tmp/traffic.log | wc -l)
ok_after=$(awk -v o="$t_out" '$1 > o && $2 == "ok"' /tmp/traffic.log | wc -l)
log "FIGURE traffic while r2 lost its VIP: started before it was out $sent_before, lost $lost_before; started after: $ok_after answered, $lost_after lost"
[ "$lost_after" = 0 ] || {
    awk -v o="$t_out" '$1 > o' /tmp/traffic.log | grep -B 2 -A 1 lost
    grep -e 'real server' -e 10.0.0.2 /tmp/ld.log | tail -n 20; ipvsadm -Ln; ipvsadm -Lnc
    fail "$lost_after requests started after r2 was out (at $t_out) were lost"
}
[ "$ok_after" -gt 0 ] || fail "no request answered after r2 was out"
# The TUN real without the VIP on tunl0: out through the forwarding path.
ip -n r3 addr del $VIP/32 dev tunl0
wait_until 20 sh -c "! ipvsadm -Ln | grep -q -- '-> 10.0.0.3:81 '" || { tail -20 /tmp/ld.log; fail "r3 not taken out without the VIP on tunl0"; }
ip -n r3 addr add $VIP/32 dev tunl0
wait_until 20 has_real 10.0.0.3:81 1 || fail "r3 not back with the VIP on tunl0"

# A hung real (SIGSTOP): out by the timeout (both paths fail: the reason is the direct
# path's), back after SIGCONT; the helpers are untouched.
ipvsadm -Sn | sort > /tmp/saved.before-hang
kill -STOP "$(httpd_pid 1)"
wait_until 20 sh -c "! ipvsadm -Ln | grep -q -- '-> 10.0.0.1:80 '" || fail "hung r1 not taken out"
[ "$(helpers)" = 3 ] || fail "helpers changed while r1 hung: $(helpers)"
kill -CONT "$(httpd_pid 1)"
wait_until 20 has_real 10.0.0.1:80 1 || fail "r1 not back after SIGCONT"
ipvsadm -Sn | sort > /tmp/saved.after-hang
same_text "the table before and after the hang" /tmp/saved.before-hang /tmp/saved.after-hang

# A reload to checkpath=direct: the helpers go, VIP-less r2 is up (its RIP answers).
sed -i 's/^checkpath=forwarding/checkpath=direct/' /tmp/fwd.cf
kill -HUP "$(director_pid)"
wait_until 20 has_real 10.0.0.2:80 1 || { tail -20 /tmp/ld.log; fail "r2 not up with checkpath=direct"; }
wait_until 10 sh -c '[ "$(ipvsadm -Sn | grep -c "^-A -f 1818[45]")" = 0 ]' || { ipvsadm -Sn; fail "helpers left after the reload to direct"; }
wait_until 10 sh -c '[ "$(cat /proc/sys/net/ipv4/conf/all/accept_local)" = 0 ]' || fail "accept_local not restored after the reload to direct"
t0=$(cpu_ticks); sleep 20; t1=$(cpu_ticks)
log "FIGURE direct cpu-ms-per-check=$(( (t1 - t0) * 10 * 1000 / 60 ))e-3 (ticks $((t1 - t0)) over 60 checks)"
for i in 1 2 3 4 5; do ldirectord --probe --json /tmp/fwd.cf; echo; done > /tmp/lat.direct 2>/dev/null || true
# And back: r2 out again, helpers back.
sed -i 's/^checkpath=direct/checkpath=forwarding/' /tmp/fwd.cf
kill -HUP "$(director_pid)"
wait_until 20 sh -c "! ipvsadm -Ln | grep -q -- '-> 10.0.0.2:80 '" || { ipvsadm -Ln; tail -40 /tmp/ld.log; fail "r2 not out after the reload back to forwarding"; }
wait_until 10 sh -c '[ "$(ipvsadm -Sn | grep -c "^-A -f 1818[45]")" = 3 ]' || { ipvsadm -Sn; fail "helpers not back"; }
# Latency per check (the probe's latency_ms of r1's HTTP check and r3's connect check).
lat() { awk -v r="\"10.0.0.$2:" '/"real":/ { cur = index($0, r) > 0 }
    /"latency_ms":/ && cur { v = $2; gsub(/[^0-9.]/, "", v); s += v; n++ }
    END { if (n) printf "%.1f ms over %d", s / n, n; else print "none" }' "$1"; }
log "FIGURE latency http r1: forwarding $(lat /tmp/lat.fwd 1), direct $(lat /tmp/lat.direct 1)"
log "FIGURE latency connect r3: forwarding $(lat /tmp/lat.fwd 3), direct $(lat /tmp/lat.direct 3)"

# A restart over the live table (kill -9): the helpers are adopted, nothing changes.
wait_until 20 has_real 10.0.0.1:80 1 || fail "r1 not in before the restart"
ipvsadm -Sn | sort > /tmp/saved.before-kill
kill -9 "$(director_pid)"
[ -f /tmp/ldirectord.fwd.cf.accept_local ] || fail "the original accept_local is not recorded"
start_director /tmp/fwd.cf "${ENGINE:-netlink}"
sleep 6
kill -0 "$(director_pid)" || { tail -20 /tmp/ld.log; fail "the restarted director is not running"; }
ipvsadm -Sn | sort > /tmp/saved.after-restart
same_text "the table before the kill and after the restart" /tmp/saved.before-kill /tmp/saved.after-restart

# The daemon's own cost without checks (interval 3600 s: none in the window), to subtract
# from the CPU figures above. Last: after it, new checks' first runs would be paced at
# the 3600 s rate (the scheduler's ramp cursor outlives a reload).
sed -i 's/^checkinterval=1$/checkinterval=3600/' /tmp/fwd.cf
kill -HUP "$(director_pid)"; sleep 3
t0=$(cpu_ticks); sleep 20; t1=$(cpu_ticks)
log "FIGURE idle daemon: ticks $((t1 - t0)) over 20 s"

# Stop: the helpers go, the rest as cleanstop says (yes: all of it), accept_local back.
kill -TERM "$(director_pid)"
wait_until 20 sh -c "! kill -0 $(director_pid)" || fail "director did not stop on TERM"
[ "$(helpers)" = 0 ] || { ipvsadm -Sn; fail "helpers left after stop"; }
[ -z "$(ipvsadm -Sn)" ] || { ipvsadm -Sn; fail "entries left after stop"; }
[ "$(cat /proc/sys/net/ipv4/conf/all/accept_local)" = 0 ] || fail "accept_local not restored at stop (after a crash in between)"
grep "accept_local" /tmp/ld.log
