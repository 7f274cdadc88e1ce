# (2f) checkpath=forwarding for IPv6 virtuals (issue 15): DR reals r1 (the VIP fd10::100
# on lo) and r2 (without it) on fd00::/64; the helpers are inet6 fwmark services. r1 is in,
# r2 out with the forwarding reason and in once its VIP is back; a client's requests to the
# VIP reach only r1 while r2 is out. TUN: r3 (ipip, which IPVS sends as ip6ip6 for IPv6)
# with the VIP on ip6tnl0, then without. accept_local is left alone (IPv6 takes a reply
# from the director's own VIP as it is); stop leaves nothing behind.
REASON="no answer through the forwarding path; direct path answers"
VIP6=fd10::100
modprobe ip6_tunnel 2>/dev/null && [ -d /proc/sys/net/ipv6/conf/ip6tnl0 ] || fail "ip6_tunnel.ko is missing from the image"
setup_net
sysctl -qw net.ipv4.conf.all.accept_local=0
sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
ip -6 addr add fd00::254/64 dev br0 nodad
ip -6 addr add $VIP6/128 dev lo
for n in 1 2 3 200; do
    ns=r$n; [ $n = 200 ] && ns=dclient
    ip -n $ns -6 addr add fd00::$n/64 dev eth0 nodad
    ip -n $ns -6 route add default via fd00::254
done
# DR: the VIP on r1's lo only (neighbour discovery answers for an interface's own
# addresses, so lo's are not announced on eth0).
ip -n r1 -6 addr add $VIP6/128 dev lo
for n in 1 2; do start_httpd $n; done
# r3: TUN real, the VIP on ip6tnl0 (the fallback ip6ip6 device), answering on port 81.
ip -n r3 link set ip6tnl0 up
ip -n r3 -6 addr add $VIP6/128 dev ip6tnl0
mkdir -p /www/r3 && echo "r3 ok" > /www/r3/index.html
bg ip netns exec r3 httpd -f -p 81 -h /www/r3
wait_until 10 ip netns exec r2 sh -c "echo | nc -w 2 fd00::2 80" || fail "httpd r2 does not answer on IPv6"
fetch6() {
    printf 'GET /index.html HTTP/1.0\r\n\r\n' |
        ip netns exec dclient timeout 5 nc -w 3 $VIP6 80 | tr -d '\r' | grep '^r[0-9] ok$'
}
helpers() { ipvsadm -Sn | grep -c '^-A -f 1818[45][0-9]* .*-6' || true; }
# The monitorfile writes an IPv6 real as stock does: [fd00 2].
monitor_says() { tail -n 50 /tmp/fwd6.monitor 2>/dev/null | grep -F "[fd00 2]" | tail -n 1 | grep -qF "$1"; }

cp conf/fwd6.cf /tmp/fwd6.cf
start_director /tmp/fwd6.cf
wait_until 40 has_real "[fd00::1]:80" 1 || { cat /tmp/ld.log /tmp/fwd6.monitor; ipvsadm -Ln; fail "r1 (VIP on lo) never added through the forwarding path"; }
wait_until 30 monitor_says "$REASON" || { cat /tmp/fwd6.monitor; tail -30 /tmp/ld.log; ipvsadm -Ln; fail "r2's reason is not '$REASON'"; }
no_real "[fd00::2]:80" || fail "r2 without the VIP is in the table with checkpath=forwarding"
wait_until 30 has_real "[fd00::3]:81" 1 || { tail -30 /tmp/ld.log; ipvsadm -Ln; fail "r3 (VIP on ip6tnl0) never added through the forwarding path"; }
[ "$(helpers)" = 3 ] || { ipvsadm -Sn; fail "expected 3 inet6 helper services, got $(helpers)"; }
[ "$(cat /proc/sys/net/ipv4/conf/all/accept_local)" = 0 ] || fail "accept_local set for IPv6 helpers only"
grep -F "[fd00 2]" /tmp/fwd6.monitor | tail -n 1
for i in 1 2 3 4 5 6; do fetch6; done | sort -u > /tmp/bodies6
[ "$(cat /tmp/bodies6)" = "r1 ok" ] || { cat /tmp/bodies6; diagnose dclient; fail "expected only r1 through the VIP"; }

# The VIP comes back on r2: in again, and clients reach both.
ip -n r2 -6 addr add $VIP6/128 dev lo
ms=$(ms_until 30 has_real "[fd00::2]:80" 1) || { tail -20 /tmp/ld.log; fail "r2 not added after its VIP returned"; }
log "FIGURE ipv6 dr-vip-back-to-in ms=$ms"
for i in 1 2 3 4 5 6 7 8; do fetch6; done | sort -u | tr '\n' ' ' > /tmp/bodies6
[ "$(cat /tmp/bodies6)" = "r1 ok r2 ok " ] || fail "both reals expected through the VIP, got: $(cat /tmp/bodies6)"

# The TUN real without the VIP on ip6tnl0: out through the forwarding path, back with it.
ip -n r3 -6 addr del $VIP6/128 dev ip6tnl0
wait_until 20 no_real "[fd00::3]:81" || { tail -20 /tmp/ld.log; fail "r3 not taken out without the VIP on ip6tnl0"; }
ip -n r3 -6 addr add $VIP6/128 dev ip6tnl0
ms=$(ms_until 30 has_real "[fd00::3]:81" 1) || fail "r3 not back with the VIP on ip6tnl0"
log "FIGURE ipv6 tun-vip-back-to-in ms=$ms"

# Stop: the helpers go with the rest (cleanstop defaults to yes).
kill -TERM "$(director_pid)"
wait_until 20 sh -c "! kill -0 $(director_pid)" || fail "director did not stop on TERM"
[ -z "$(ipvsadm -Sn)" ] || { ipvsadm -Sn; fail "entries left after stop"; }
