# (2d) The same DR scenario with --engine ipvsadm leaves the same table at every step as
# with the netlink engine (31-director-dr).
[ -f /tmp/dr-netlink.4 ] || fail "run 31-director-dr first"
ENGINE=ipvsadm
. scenarios/31-director-dr.sh
for step in 1 2 3 4; do
    same_text "DR table at step $step, netlink vs ipvsadm engine" /tmp/dr-netlink.$step /tmp/dr-ipvsadm.$step
done
log "both engines left the same table at all 4 steps"
