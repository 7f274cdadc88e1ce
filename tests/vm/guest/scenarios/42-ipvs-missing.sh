# (issue 14) Engine fault in the real kernel: the ip_vs module (and every scheduler) is
# unloaded before the director starts.
# 1. Loadable: the daemon's lookup of the IPVS netlink family makes the kernel load it (the
#    family's module alias), as each ipvsadm stock runs loads it: the table is programmed
#    at start, nothing to wait for.
# 2. Not loadable by alias (blacklisted; explicit `modprobe ip_vs` still works): the daemon
#    says so, keeps running and checking (a real that comes up is logged as added, one that
#    dies as deleted, while the kernel has no IPVS), retries with backoff, and once an
#    operator runs `modprobe ip_vs` the table converges on what the checks found meanwhile.
#    (Stock: its ipvsadm loads ip_vs by name, blacklist or not; DEVIATIONS L28.)
# /tmp/ld.log holds earlier scenarios' lines (same addresses): start it afresh.
: > /tmp/ld.log
setup_net
for n in 1 2; do start_httpd $n; done
cat > /tmp/ef.cf <<EOF
checkinterval=1
checktimeout=2
negotiatetimeout=2
failurecount=2
quiescent=no
autoreload=no

virtual=$VIP:80
	real=10.0.0.1:80 masq 1
	real=10.0.0.2:80 masq 1
	service=http
	request="index.html"
	receive="ok"
	scheduler=wrr
	protocol=tcp
	checktype=negotiate
EOF
trap 'rm -f /etc/modprobe.d/ldrs-no-ipvs.conf' EXIT
# ipvsadm loads ip_vs by name: nothing may run it while the module is meant to be missing.
unload_ipvs() {
    ipvsadm -C
    for m in $(lsmod | awk '$1 ~ /^ip_vs_/ { print $1 }'); do rmmod "$m"; done
    rmmod ip_vs || { lsmod; fail "cannot unload ip_vs"; }
    [ ! -d /sys/module/ip_vs ] || fail "ip_vs is still loaded"
}

# 1. Unloaded but loadable.
unload_ipvs
start_director /tmp/ef.cf
for n in 1 2; do
    wait_until 30 grep -q "Added real server: 10.0.0.$n:80" /tmp/ld.log ||
        { cat /tmp/ld.log; fail "r$n was not added"; }
done
[ -d /sys/module/ip_vs ] || { cat /tmp/ld.log; lsmod; dmesg | tail -20; ls /etc/modprobe.d 2>&1; fail "ip_vs is not loaded, yet the director added real servers"; }
if grep "IPVS is not available" /tmp/ld.log; then fail "IPVS was reported missing though the kernel loads it"; fi
has_real 10.0.0.1:80 1 && has_real 10.0.0.2:80 1 || { ipvsadm -Ln; fail "the table is not programmed"; }
log "unloaded ip_vs: loaded by the kernel at the director's family lookup, table programmed at start"
kill "$(director_pid)"
wait_until 30 sh -c "! kill -0 $(director_pid)" || fail "the director did not stop"
echo "--- part 2" >> /tmp/ld.log

# 2. Not loadable by alias.
mkdir -p /etc/modprobe.d
echo "blacklist ip_vs" > /etc/modprobe.d/ldrs-no-ipvs.conf
unload_ipvs
start_director /tmp/ef.cf
wait_until 30 grep -q "the ip_vs module is installed but not loaded" /tmp/ld.log ||
    { cat /tmp/ld.log; fail "the missing module was not reported"; }
wait_until 30 sh -c "sed -n '/^--- part 2/,\$p' /tmp/ld.log | grep -q 'Added real server: 10.0.0.2:80'" ||
    { cat /tmp/ld.log; fail "no check brought r2 up while IPVS was missing"; }
kill -9 "$(httpd_pid 2)"
wait_until 30 sh -c "sed -n '/^--- part 2/,\$p' /tmp/ld.log | grep -q 'Deleted real server: 10.0.0.2:80'" ||
    { cat /tmp/ld.log; fail "r2's death was not seen while IPVS was missing"; }
[ ! -d /sys/module/ip_vs ] || fail "something loaded ip_vs while the director waited"
kill -0 "$(director_pid)" || { cat /tmp/ld.log; fail "the director exited"; }
reports=$(grep -c "IPVS is not available" /tmp/ld.log || true)
[ "$reports" -ge 1 ] || fail "the missing IPVS was never reported"
t0=$(now_ms)
modprobe ip_vs
settled() { has_real 10.0.0.1:80 1 && no_real 10.0.0.2:80; }
wait_until 90 settled || { ipvsadm -Ln; cat /tmp/ld.log; fail "the table did not converge after modprobe ip_vs"; }
ms=$(( $(now_ms) - t0 ))
grep -q "IPVS is available now: the netlink engine is connected" /tmp/ld.log || fail "the return of IPVS was not logged"
ipvsadm -Ln
got=$(bodies nclient 4); [ "$got" = "r1 ok" ] || { diagnose nclient; fail "through the VIP the client got: $got"; }
log "FIGURE ip_vs missing at start: reported $reports time(s) while waiting; table converged $ms ms after modprobe ip_vs (retry backoff 1, 2, 4 ... 60 s)"
