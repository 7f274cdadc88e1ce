# (2a) Every scheduler the kernel knows, through the netlink engine; the dump must equal
# ipvsadm's. Schedulers whose module this kernel lacks are reported, not failed.
ip link add eng0 type dummy
ip addr add 10.0.0.254/24 dev eng0
ip link set eng0 up
port=1000
present=""; absent=""
: > /tmp/sched.txt
for s in rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos; do
    if ! modprobe ip_vs_$s 2>/dev/null; then absent="$absent $s"; continue; fi
    present="$present $s"
    port=$((port + 1))
    echo "-A -t 10.20.0.1:$port -s $s -p 30" >> /tmp/sched.txt
    echo "-a -t 10.20.0.1:$port -r 10.0.0.1:80 -m -w 2 -x 9 -y 3" >> /tmp/sched.txt
    echo "-a -t 10.20.0.1:$port -r 10.0.0.2:80 -m -w 1" >> /tmp/sched.txt
    echo "-E -t 10.20.0.1:$port -s $s" >> /tmp/sched.txt
done
ipvs_probe apply /tmp/sched.txt || fail "netlink engine refused a scheduler"
ipvs_probe dump > /tmp/nl.plain; ipvsadm -Ln > /tmp/real.plain
ipvs_probe dump --thresholds > /tmp/nl.thr; ipvsadm -Ln --thresholds > /tmp/real.thr
same_text "scheduler table" /tmp/real.plain /tmp/nl.plain
same_text "scheduler thresholds" /tmp/real.thr /tmp/nl.thr
n=$(grep -c '^TCP' /tmp/real.plain)
log "schedulers present:$present"
log "schedulers absent from this kernel:${absent:- none}"
[ "$n" -eq "$(echo $present | wc -w)" ] || fail "expected one service per scheduler, got $n"
