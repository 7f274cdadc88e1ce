# (2c) Restart without disturbance: kill -9 the director while clients hold connections
# and start it again: the table is adopted (no real deleted or re-added at any moment,
# watched by polling ipvsadm), the connections stay in `ipvsadm -Lnc` and are served.
# Then a reload (SIGHUP) that changes one weight changes only that weight.
setup_net
for n in 1 2 3; do start_httpd $n; done
cp conf/nat.cf /tmp/nat.cf
start_director /tmp/nat.cf
wait_until 30 has_real 10.0.0.1:80 1 || { cat /tmp/ld.log; fail "r1 never added"; }
wait_until 10 has_real 10.0.0.2:80 1 || { cat /tmp/ld.log; fail "r2 never added"; }
sleep 1
# Four clients connect now and send their request 8 s later.
for i in 1 2 3 4; do
    (ip netns exec nclient sh -c "(sleep 8; printf 'GET /index.html HTTP/1.0\r\n\r\n'; sleep 3) | nc $VIP 80" > /tmp/held.$i 2>&1) &
    echo $! >> "$PIDS_FILE"
done
wait_until 5 sh -c '[ "$(ipvsadm -Lnc | grep -c ESTABLISHED)" -ge 4 ]' || { ipvsadm -Lnc; fail "held connections not established"; }
ipvsadm -Lnc | awk '/ESTABLISHED/ { $2 = ""; print }' | sort > /tmp/conns.before
# The watcher: every snapshot must list both reals, r1 at weight 1 or 3, r2 at 1.
(
    while [ ! -f /tmp/watch.stop ]; do
        s=$(ipvsadm -Ln)
        echo "$s" | grep -q -- "-> 10.0.0.1:80 .* Masq *[13] " || { echo "BAD r1"; echo "$s"; }
        echo "$s" | grep -q -- "-> 10.0.0.2:80 .* Masq *1 " || { echo "BAD r2"; echo "$s"; }
        echo "$s" | grep -q -- "-> 10.0.0.3:80" && { echo "BAD fallback"; echo "$s"; }
        echo snap
    done > /tmp/watch.log 2>&1
) &
echo $! >> "$PIDS_FILE"
sleep 0.5
kill -9 "$(director_pid)"
log "director killed with -9"
echo "--- restart" >> /tmp/ld.log
start_director /tmp/nat.cf
sleep 4
kill -0 "$(director_pid)" || { cat /tmp/ld.log; fail "restarted director is not running"; }
ipvsadm -Lnc | awk '/ESTABLISHED/ { $2 = ""; print }' | sort > /tmp/conns.after
same_text "connection entries across the restart" /tmp/conns.before /tmp/conns.after
log "$(wc -l < /tmp/conns.after) connections kept across kill -9 and restart"
# Reload with r1's weight 1 -> 3.
sed -i 's/real=10.0.0.1:80 masq 1/real=10.0.0.1:80 masq 3/' /tmp/nat.cf
echo "--- reload" >> /tmp/ld.log
kill -HUP "$(director_pid)"
wait_until 10 has_real 10.0.0.1:80 3 || { cat /tmp/ld.log; fail "reload did not set r1's weight to 3"; }
sleep 2
touch /tmp/watch.stop
sleep 0.5
# The clients send their request 8 s after connecting: wait for the answers rather than
# race them (a quick restart and reload reach this point before the 8 s are up).
for i in 1 2 3 4; do
    wait_until 15 grep -q "r[12] ok" /tmp/held.$i || { cat /tmp/held.$i; fail "held connection $i was not served"; }
done
log "all 4 held connections served after restart and reload"
snaps=$(grep -c snap /tmp/watch.log)
if grep -q BAD /tmp/watch.log; then grep -A8 BAD /tmp/watch.log | head -40; fail "the table was disturbed"; fi
log "FIGURE table snapshots without disturbance: $snaps"
if sed -n '/^--- restart/,/^--- reload/p' /tmp/ld.log | grep -E "Deleted|Purged|Added|Restored|Quiescent"; then
    fail "the restarted director changed a destination (log lines above)"
fi
if sed -n '/^--- reload/,$p' /tmp/ld.log | grep -E "Deleted|Purged|Added|Quiescent"; then
    fail "the reload did more than change r1's weight (log lines above)"
fi
ipvsadm -Ln
