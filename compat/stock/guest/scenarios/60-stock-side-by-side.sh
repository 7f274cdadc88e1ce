# (3) Stock ldirectord (Debian's package) and ours on the same configs and real-server
# states: the NAT scenario (30: kill, fallback, return, hung real) and the DR quiescent
# scenario (31: quiesce and restore, cleanstop) run with each director in turn, and the
# table (`ipvsadm -Ln` without counters) must be the same after every step.
[ -x /usr/sbin/ldirectord ] || fail "stock ldirectord missing: this needs LDRS_VM_IMAGE=stock"
matched=0; total=0
for scenario in 30-director-nat 31-director-dr; do
    for engine in netlink stock; do
        log "--- $scenario with $engine"
        ( ENGINE=$engine; set -e; . scenarios/$scenario.sh ) > /tmp/side.$engine.log 2>&1 ||
            { cat /tmp/side.$engine.log; fail "$scenario with $engine failed"; }
        grep FIGURE /tmp/side.$engine.log | sed "s/FIGURE/FIGURE $engine/"
        reset_world; rm -f /tmp/ld.log
    done
    prefix=nat; [ $scenario = 31-director-dr ] && prefix=dr
    for ours in /tmp/$prefix-netlink.*; do
        step=${ours##*.}; total=$((total + 1))
        if diff -u /tmp/$prefix-stock.$step "$ours"; then matched=$((matched + 1)); else
            echo "MISMATCH $scenario step $step (stock first)"; fi
    done
done
log "FIGURE stock-vs-ours table steps matching: $matched of $total"
[ "$matched" -eq "$total" ] || fail "tables differ from stock's"
