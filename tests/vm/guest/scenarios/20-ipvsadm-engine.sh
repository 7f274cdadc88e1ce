# (2d) The ipvsadm engine (IpvsadmEngine: stock's argument strings, the table read from
# the two listings) programs the same tables as the netlink engine did in
# 10-netlink-engine, phase by phase, and reads them back as the netlink engine does.
[ -f /tmp/nl-v6-delete.plain ] || fail "run 10-netlink-engine first"
ip link add eng0 type dummy
ip addr add 10.0.0.254/24 dev eng0
ip -6 addr add 2001:db8::fe/64 dev eng0
ip link set eng0 up
for family in v4 v6; do
    for phase in create edit delete; do
        ops=ops/$family-$phase.txt
        ipvs_probe --engine ipvsadm apply "$ops" > /tmp/apply.out || { cat /tmp/apply.out; fail "ipvsadm engine: $ops"; }
        ipvsadm -Ln > /tmp/ia.plain; ipvsadm -Ln --thresholds > /tmp/ia.thr
        same_text "netlink vs ipvsadm engine after $ops" /tmp/nl-$family-$phase.plain /tmp/ia.plain
        same_text "netlink vs ipvsadm engine thresholds after $ops" /tmp/nl-$family-$phase.thr /tmp/ia.thr
        ipvs_probe --engine ipvsadm dump > /tmp/ia.dump
        ipvs_probe dump > /tmp/nl.dump
        same_text "ipvsadm engine's dump vs netlink engine's dump after $ops" /tmp/nl.dump /tmp/ia.dump
        log "$ops: same table from both engines"
    done
done
