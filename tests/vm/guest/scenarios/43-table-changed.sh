# (issue 14) The IPVS table changed under the director: an operator deletes a real
# (`ipvsadm -d`), then the whole virtual service (`ipvsadm -D`). The daemon reads the table
# back every 10 s, reports what it had put in and is gone, and restores it (stock leaves
# it missing until a reload; DEVIATIONS L29). Traffic through the VIP works again.
# /tmp/ld.log holds earlier scenarios' lines (same addresses): start it afresh.
: > /tmp/ld.log
setup_net
for n in 1 2; do start_httpd $n; done
start_director /test/conf/nat.cf
both() { has_real 10.0.0.1:80 1 && has_real 10.0.0.2:80 1; }
wait_until 30 both || { ipvsadm -Ln; cat /tmp/ld.log; fail "the table never held r1 and r2"; }
got=$(bodies nclient 4); [ "$got" = "r1 ok r2 ok" ] || { diagnose nclient; fail "before: the client got: $got"; }
# r1's connection counter across the deletion, for the record: the kernel takes a deleted
# destination that connections still reference back from its trash with its counters, so
# counters show a delete+add only for a destination without connections (41-kill9 relies
# on its log and its watcher for that). The estimator folds the counters in every 2 s.
conns() { ipvsadm -Ln --stats --exact | awk -v d="$1" '$1 == "->" && $2 == d { print $3 }'; }
wait_until 10 sh -c "ipvsadm -Ln --stats --exact | awk '\$2 == \"10.0.0.1:80\" && \$3 >= 1 { f = 1 } END { exit !f }'" ||
    { ipvsadm -Ln --stats --exact; fail "r1 counted no connection"; }
before=$(conns 10.0.0.1:80)
ipvsadm -d -t $VIP:80 -r 10.0.0.1:80
t0=$(now_ms)
wait_until 30 both || { ipvsadm -Ln; cat /tmp/ld.log; fail "the deleted real was not restored"; }
ms_d=$(( $(now_ms) - t0 ))
after=$(conns 10.0.0.1:80)
log "r1's connection counter: $before before ipvsadm -d, $after once restored"
grep -q "IPVS table changed outside ldirectord: real server 10.0.0.1:80 (10.10.10.100:80) removed; restoring" /tmp/ld.log ||
    { cat /tmp/ld.log; fail "the deleted real was not reported"; }
ipvsadm -D -t $VIP:80
t0=$(now_ms)
wait_until 30 both || { ipvsadm -Ln; cat /tmp/ld.log; fail "the deleted virtual service was not restored"; }
ms_D=$(( $(now_ms) - t0 ))
grep -q "IPVS table changed outside ldirectord: virtual server 10.10.10.100:80 removed; restoring" /tmp/ld.log ||
    { cat /tmp/ld.log; fail "the deleted virtual service was not reported"; }
got=$(bodies nclient 6); [ "$got" = "r1 ok r2 ok" ] || { diagnose nclient; fail "through the VIP the client got: $got"; }
log "FIGURE table changed under the director: ipvsadm -d restored after $ms_d ms, ipvsadm -D after $ms_D ms (read back every 10 s)"
