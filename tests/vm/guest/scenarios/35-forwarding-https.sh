# (2e) checkpath=forwarding with service=https (issue 15): the HTTPS check runs on a marked
# socket too, so it travels the forwarding path. DR reals r1 (VIP on lo) and r2 (VIP
# removed), each an openssl s_server (self-signed certificate, not verified, as stock) on
# 443: r1 is in, r2 out with the forwarding reason, and in once its VIP is back; stop
# leaves nothing behind.
REASON="no answer through the forwarding path; direct path answers"
command -v openssl >/dev/null || fail "openssl is missing from the guest (tests/vm/run copies the host's)"
setup_net
ip -n r2 addr del $VIP/32 dev lo
ip -n dclient route add $VIP via 10.0.0.254
sysctl -qw net.ipv4.conf.all.accept_local=0
# No openssl.cnf in the guest: a minimal one for req. The extension makes it an X.509 v3
# certificate (without one it is v1, which rustls refuses to parse even unverified).
printf '[req]\ndistinguished_name = dn\n[dn]\n' > /tmp/req.cnf
openssl req -config /tmp/req.cnf -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -nodes -days 2 -subj /CN=real -addext subjectAltName=DNS:real \
    -keyout /tmp/tls.key -out /tmp/tls.crt 2>/dev/null ||
    fail "openssl cannot make a certificate"
# tls_get NETNS ADDR: GET /index.html over TLS; prints the body line.
tls_get() {
    printf 'GET /index.html HTTP/1.0\r\n\r\n' |
        ip netns exec "$1" timeout 5 openssl s_client -quiet -connect "$2:443" 2>/dev/null |
        tr -d '\r' | grep '^r[0-9] ok$'
}
for n in 1 2; do
    mkdir -p /www/r$n && echo "r$n ok" > /www/r$n/index.html
    bg sh -c "cd /www/r$n && exec /sbin/ip netns exec r$n openssl s_server -WWW -quiet \
        -accept 443 -cert /tmp/tls.crt -key /tmp/tls.key > /dev/null 2>&1"
    wait_until 20 tls_get r$n 10.0.0.$n || fail "openssl s_server in r$n did not answer"
done
helpers() { ipvsadm -Sn | grep -c '^-A -f 1818[45]' || true; }
monitor_says() { tail -n 50 /tmp/fwd-https.monitor 2>/dev/null | grep "10.0.0.2" | tail -n 1 | grep -qF "$1"; }

cp conf/fwd-https.cf /tmp/fwd-https.cf
start_director /tmp/fwd-https.cf
wait_until 60 has_real 10.0.0.1:443 1 || { cat /tmp/ld.log /tmp/fwd-https.monitor; ipvsadm -Ln; fail "r1 (VIP on lo) never added through the forwarding path"; }
wait_until 30 monitor_says "$REASON" || { cat /tmp/fwd-https.monitor; tail -30 /tmp/ld.log; fail "r2's reason is not '$REASON'"; }
no_real 10.0.0.2:443 || fail "r2 without the VIP is in the table with checkpath=forwarding"
[ "$(helpers)" = 2 ] || { ipvsadm -Ln; fail "expected 2 helper services, got $(helpers)"; }
grep "10.0.0.2" /tmp/fwd-https.monitor | tail -n 1
got=$(tls_get dclient $VIP) || { diagnose dclient; fail "no answer over TLS through the VIP"; }
[ "$got" = "r1 ok" ] || fail "expected r1 through the VIP, got: $got"

# The VIP comes back on r2: in again.
ip -n r2 addr add $VIP/32 dev lo
ms=$(ms_until 30 has_real 10.0.0.2:443 1) || { tail -20 /tmp/ld.log; fail "r2 not added after its VIP returned"; }
log "FIGURE https dr-vip-back-to-in ms=$ms"

# Stop: the helpers go with the rest (cleanstop defaults to yes).
kill -TERM "$(director_pid)"
wait_until 20 sh -c "! kill -0 $(director_pid)" || fail "director did not stop on TERM"
[ -z "$(ipvsadm -Sn)" ] || { ipvsadm -Sn; fail "entries left after stop"; }
[ "$(cat /proc/sys/net/ipv4/conf/all/accept_local)" = 0 ] || fail "accept_local not restored at stop"
