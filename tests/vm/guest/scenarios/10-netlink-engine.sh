# (2a) The netlink engine against the kernel: every line of ops/*.txt applied through
# NetlinkEngine (ipvs_probe apply), then its dump rendered as ipvsadm prints it must equal
# the real `ipvsadm -Ln` and `ipvsadm -Ln --thresholds` byte for byte; and programming
# the same lines with the real ipvsadm must give the same listings.
ip link add eng0 type dummy
ip addr add 10.0.0.254/24 dev eng0
ip -6 addr add 2001:db8::fe/64 dev eng0
ip link set eng0 up
for family in v4 v6; do
    for phase in create edit delete; do
        ops=ops/$family-$phase.txt
        ipvs_probe apply "$ops" || fail "netlink engine: $ops did not apply as scripted"
        ipvs_probe dump > /tmp/nl.plain
        ipvs_probe dump --thresholds > /tmp/nl.thr
        ipvsadm -Ln > /tmp/real.plain
        ipvsadm -Ln --thresholds > /tmp/real.thr
        same_text "netlink dump vs ipvsadm -Ln after $ops" /tmp/real.plain /tmp/nl.plain
        same_text "netlink dump vs ipvsadm -Ln --thresholds after $ops" /tmp/real.thr /tmp/nl.thr
        cp /tmp/real.plain /tmp/nl-$family-$phase.plain
        cp /tmp/real.thr /tmp/nl-$family-$phase.thr
        log "$ops: $(grep -c '^  -> [0-9[]' /tmp/real.plain) reals in $(grep -cE '^(TCP|UDP|SCTP|FWM) ' /tmp/real.plain) services, dumps equal"
    done
done
[ "$(ipvsadm -Ln | wc -l)" -eq 3 ] || fail "table not empty after the delete phases"
# The same scripts through the real ipvsadm give the same table.
for family in v4 v6; do
    for phase in create edit delete; do
        run_ipvsadm_script ops/$family-$phase.txt || fail "ipvsadm: ops/$family-$phase.txt"
        ipvsadm -Ln > /tmp/real.plain
        ipvsadm -Ln --thresholds > /tmp/real.thr
        same_text "ipvsadm-programmed vs netlink-programmed ($family-$phase)" /tmp/nl-$family-$phase.plain /tmp/real.plain
        same_text "ipvsadm-programmed vs netlink-programmed thresholds ($family-$phase)" /tmp/nl-$family-$phase.thr /tmp/real.thr
    done
done
log "real ipvsadm programs the same tables"
cat /tmp/nl-v4-create.plain /tmp/nl-v6-edit.thr
