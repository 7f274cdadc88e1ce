# (2b) The director end to end, direct routing with quiescent=yes: the VIP on each real's
# lo (arp_ignore=1, arp_announce=2); a dead real stays at weight 0 and comes back at its
# weight. Table snapshots go to /tmp/dr-$ENGINE.* for 32-director-dr-ipvsadm.
ENGINE=${ENGINE:-netlink}
setup_net
for n in 1 2; do start_httpd $n; done
ip -n dclient route add $VIP via 10.0.0.254
start_director /test/conf/dr.cf "$ENGINE"
wait_until 30 has_real 10.0.0.1:80 2 || { cat /tmp/ld.log; fail "r1 never added"; }
wait_until 10 has_real 10.0.0.2:80 1 || { cat /tmp/ld.log; fail "r2 never added"; }
settled() { has_real 10.0.0.1:80 2 && has_real 10.0.0.2:80 1; }
wait_until 30 settled || fail "the table never settled"
sleep 2
settled || fail "the table changed after it had settled"
table > /tmp/dr-$ENGINE.1
got=$(bodies dclient 6); log "client sees: $got"
[ "$got" = "r1 ok r2 ok" ] || { diagnose dclient; fail "expected both reals through the VIP (DR), got: $got"; }
kill -9 "$(httpd_pid 1)"
ms=$(ms_until 10 has_real 10.0.0.1:80 0) || { ipvsadm -Ln; fail "r1 not quiesced"; }
log "FIGURE kill-to-quiesce ms=$ms"
table > /tmp/dr-$ENGINE.2
got=$(bodies dclient 4); [ "$got" = "r2 ok" ] || fail "quiesced r1 still gets new connections: $got"
start_httpd 1
wait_until 10 has_real 10.0.0.1:80 2 || fail "r1 not restored to weight 2"
table > /tmp/dr-$ENGINE.3
got=$(bodies dclient 6); [ "$got" = "r1 ok r2 ok" ] || fail "after recovery the client got: $got"
kill -TERM "$(director_pid)"
wait_until 10 sh -c "! kill -0 $(director_pid)" || fail "director did not stop on TERM"
table > /tmp/dr-$ENGINE.4
cat /tmp/dr-$ENGINE.1 /tmp/dr-$ENGINE.2 /tmp/dr-$ENGINE.3 /tmp/dr-$ENGINE.4
