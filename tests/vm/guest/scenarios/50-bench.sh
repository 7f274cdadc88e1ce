# (4) Benchmark under TCG (ratios matter, not absolute figures): programming destinations
# into an empty table and a reload changing the weight of 1% of them, netlink engine vs
# ipvsadm engine (one ipvsadm process per change, as stock runs it).
ip link add eng0 type dummy
ip addr add 10.0.0.254/24 dev eng0
ip link set eng0 up
set -- $(cat /test/bench-sizes 2>/dev/null || echo 10000 300)
ipvs_probe bench "$1" $(( $1 >= 100 ? $1 / 100 : 1 )) | tee /tmp/bench.netlink
ipvsadm -C
# The ipvsadm engine forks per change, which is slow under TCG: fewer reals.
ipvs_probe --engine ipvsadm bench "$2" $(( $2 >= 100 ? $2 / 100 : 1 )) | tee /tmp/bench.ipvsadm
ipvsadm -C
nl=$(awk '/step=program/ { split($4, o, "="); split($5, m, "="); printf "%d", m[2] * 1000 / o[2] }' /tmp/bench.netlink)
ia=$(awk '/step=program/ { split($4, o, "="); split($5, m, "="); printf "%d", m[2] * 1000 / o[2] }' /tmp/bench.ipvsadm)
log "FIGURE program per-op: netlink ${nl} us, ipvsadm ${ia} us, ratio $(( ia / (nl > 0 ? nl : 1) ))x"
