# (2d) The ipvsadm engine (IpvsadmEngine: stock's argument strings, table read from the
# two listings) programs the same tables as the netlink engine, and reads them back the
# same way.
ip link add eng0 type dummy
ip addr add 10.0.0.254/24 dev eng0
ip -6 addr add 2001:db8::fe/64 dev eng0
ip link set eng0 up
for family in v4 v6; do
    for phase in create edit delete; do
        ops=ops/$family-$phase.txt
        ipvs_probe apply "$ops" || fail "netlink engine: $ops"
        ipvsadm -Ln > /tmp/nl.plain; ipvsadm -Ln --thresholds > /tmp/nl.thr
        ipvs_probe dump > /tmp/nl.dump
        # Undo through netlink, redo through ipvsadm (state before this phase first).
        ipvsadm -C
        for prev in create edit delete; do
            [ "$prev" = "$phase" ] && break
            ipvs_probe --engine ipvsadm apply ops/$family-$prev.txt >/dev/null ||
                fail "ipvsadm engine: ops/$family-$prev.txt"
        done
        ipvs_probe --engine ipvsadm apply "$ops" || fail "ipvsadm engine: $ops"
        ipvsadm -Ln > /tmp/ia.plain; ipvsadm -Ln --thresholds > /tmp/ia.thr
        same_text "netlink vs ipvsadm engine after $ops" /tmp/nl.plain /tmp/ia.plain
        same_text "netlink vs ipvsadm engine thresholds after $ops" /tmp/nl.thr /tmp/ia.thr
        ipvs_probe --engine ipvsadm dump > /tmp/ia.dump
        same_text "ipvsadm engine dump vs netlink dump after $ops" /tmp/nl.dump /tmp/ia.dump
        log "$ops: same table from both engines"
    done
done
