# Helpers shared by the guest scenarios (busybox sh). A scenario is sourced in a subshell
# with `set -e`; it fails by returning non-zero (fail), skips with exit 77.

# busybox sh runs its own applets before PATH: iproute2's ip is needed for netns and veth.
ip() { /sbin/ip "$@"; }

now_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
log() { echo "[$(now_ms)] $*"; }
fail() { echo "FAIL: $*"; exit 1; }

# Background processes a scenario starts, killed by reset_world.
PIDS_FILE=/tmp/pids
bg() { "$@" & echo $! >> "$PIDS_FILE"; }

# wait_until SECONDS COMMAND...: polls every 0.1 s; returns 1 on timeout.
wait_until() {
    limit=$(( $(now_ms) + $1 * 1000 )); shift
    while ! "$@" >/dev/null 2>&1; do
        [ "$(now_ms)" -lt "$limit" ] || return 1
        sleep 0.1
    done
}

# same_text NAME FILE_A FILE_B: diff -u, or fail with the difference.
same_text() {
    if ! diff -u "$2" "$3" > /tmp/diff.out; then
        cat /tmp/diff.out
        fail "$1 differ"
    fi
}

# run_ipvsadm_script FILE: each line through the real ipvsadm; '!' lines must fail.
run_ipvsadm_script() {
    sed 's/#.*//' "$1" | while read -r line; do
        [ -n "$line" ] || continue
        case $line in
            !*) if ipvsadm ${line#!} 2>/dev/null; then echo "ipvsadm accepted: ${line#!}"; exit 1; fi ;;
            *) ipvsadm $line || { echo "ipvsadm refused: $line"; exit 1; } ;;
        esac
    done
}

# The director's network: bridge br0 10.0.0.0/24 (director .254, reals .1-.3 in netns
# r1..r3, DR client .200 in netns dclient), NAT client 192.168.0.1 in netns nclient on
# veth vnc (director 192.168.0.254). VIP 10.10.10.100 on the director's lo.
VIP=10.10.10.100
setup_net() {
    modprobe veth; modprobe bridge
    sysctl -qw net.ipv4.ip_forward=1
    ip link add br0 type bridge
    ip addr add 10.0.0.254/24 dev br0
    ip link set br0 up
    ip addr add $VIP/32 dev lo
    for n in 1 2 3 200; do
        ns=r$n; [ $n = 200 ] && ns=dclient
        ip netns add $ns
        ip link add v$ns type veth peer name eth0 netns $ns
        ip link set v$ns master br0 up
        ip -n $ns link set lo up
        ip -n $ns addr add 10.0.0.$n/24 dev eth0
        ip -n $ns link set eth0 up
        ip -n $ns route add default via 10.0.0.254
    done
    ip netns add nclient
    ip link add vnc type veth peer name eth0 netns nclient
    ip addr add 192.168.0.254/24 dev vnc
    ip link set vnc up
    ip -n nclient link set lo up
    ip -n nclient addr add 192.168.0.1/24 dev eth0
    ip -n nclient link set eth0 up
    ip -n nclient route add default via 192.168.0.254
    # DR: the VIP on each real's lo, never answered for in ARP.
    for n in 1 2 3; do
        ip netns exec r$n sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
        ip -n r$n addr add $VIP/32 dev lo
    done
}

# start_httpd N: busybox httpd in netns rN on port 80 serving "rN ok".
start_httpd() {
    mkdir -p /www/r$1
    echo "r$1 ok" > /www/r$1/index.html
    /sbin/ip netns exec r$1 httpd -f -p 80 -h /www/r$1 &
    echo $! > /tmp/httpd.r$1.pid
    echo $! >> "$PIDS_FILE"
    wait_until 5 ip netns exec r$1 wget -q -O /dev/null http://10.0.0.$1/ ||
        fail "httpd r$1 did not start"
}
httpd_pid() { cat /tmp/httpd.r$1.pid; }

# fetch NETNS: one HTTP GET of the VIP from a client namespace; prints the body.
# (busybox wget crashes in a namespace here; an HTTP/1.0 request over nc does the job.)
fetch() {
    printf 'GET /index.html HTTP/1.0\r\n\r\n' |
        ip netns exec "$1" timeout 5 nc -w 3 "$VIP" 80 | tr -d '\r' | grep ' ok$'
}

# diagnose: what a failing traffic check needs to be understood.
diagnose() {
    ipvsadm -Ln; ipvsadm -Lnc
    printf 'GET /index.html HTTP/1.0\r\n\r\n' | ip netns exec "$1" nc -w 3 "$VIP" 80 2>&1
    ip addr show; ip route; cat /proc/sys/net/ipv4/ip_forward
    tail -20 /tmp/ld.log
}

# The table as "ipvsadm -Ln" shows it, without the counters (columns 5-6 of real lines).
table() { ipvsadm -Ln | awk '/->/ && NF == 6 { $5 = ""; $6 = "" } { print }'; }
has_real() { ipvsadm -Ln | awk -v a="$1" -v w="$2" '$2 == a && $4 == w { f = 1 } END { exit !f }'; }   # ADDR:PORT WEIGHT
no_real() { ! ipvsadm -Ln | grep -q -- "-> $1 "; }

reset_world() {
    # Runs under set -e inside scenarios too: nothing here may fail.
    [ -f "$PIDS_FILE" ] && kill -9 $(cat "$PIDS_FILE") 2>/dev/null || true
    rm -f "$PIDS_FILE"
    # Deleting the root side of each veth deletes the pair even while a killed process
    # still holds its namespace.
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        ip link del "v$ns" 2>/dev/null || true
        ip netns del "$ns" || true
    done
    ip link del br0 2>/dev/null || true
    ip link del vnc 2>/dev/null || true
    ip link del eng0 2>/dev/null || true
    ip addr del $VIP/32 dev lo 2>/dev/null || true
    ipvsadm -C || true
}

# start_director CONFIG [ENGINE [NETNS]]: ldirectord -d in the background, log appended to
# /tmp/ld.log, pid in /tmp/ld.pid (written before this returns). ENGINE netlink (default)
# or ipvsadm: ours; stock: Debian's ldirectord (stock image). NETNS: run it in that network
# namespace. The subshells exec: busybox ash forks once more for a plain background command
# with a prefix, and `ip netns exec` execs, so $! is the director's own pid either way.
start_director() {
    in_ns=""
    [ -z "${3:-}" ] || in_ns="/sbin/ip netns exec $3"
    if [ "${2:-netlink}" = stock ]; then
        (exec $in_ns /usr/sbin/ldirectord -d "$1" start >> /tmp/ld.log 2>&1) &
    else
        (exec $in_ns ldirectord -d --engine "${2:-netlink}" --run-dir /tmp "$1" start >> /tmp/ld.log 2>&1) &
    fi
    echo $! > /tmp/ld.pid
    echo $! >> "$PIDS_FILE"
}
director_pid() { cat /tmp/ld.pid; }

# ms_until SECONDS COMMAND...: prints the milliseconds until COMMAND succeeds, fails on timeout.
ms_until() {
    t0=$(now_ms)
    wait_until "$@" || { echo "timeout"; return 1; }
    echo $(( $(now_ms) - t0 ))
}

# bodies NETNS N: N fetches of the VIP, the distinct bodies sorted on one line.
bodies() {
    i=0; : > /tmp/bodies
    while [ $i -lt "$2" ]; do fetch "$1" >> /tmp/bodies 2>/dev/null || echo "(failed)" >> /tmp/bodies; i=$((i + 1)); done
    sort -u /tmp/bodies | tr '\n' ' ' | sed 's/ $//'
}

# The check-load network (issue 17): netns be, where every address of 10.1.0.0/16 is
# local, so one listener answers for every real; load_director_net NS N adds netns NS
# (10.9.N.1) on a veth to be (10.9.N.2), routing 10.1.0.0/16 there.
load_backend_net() {
    modprobe veth
    ip netns add be
    ip -n be link set lo up
    ip -n be route add local 10.1.0.0/16 dev lo
}
load_director_net() {
    ip netns add "$1"
    ip -n "$1" link set lo up
    ip link add "v$1" netns "$1" type veth peer name "e$1" netns be
    ip -n "$1" addr add "10.9.$2.1/30" dev "v$1"
    ip -n "$1" link set "v$1" up
    ip -n be addr add "10.9.$2.2/30" dev "e$1"
    ip -n be link set "e$1" up
    ip -n "$1" route add 10.1.0.0/16 via "10.9.$2.2"
}
# The check-load shape: real K of the one shared backend is load_real_addr K
# (10.1.0.0/16, 250 a /24).
load_real_addr() { echo "10.1.$(( $1 / 250 )).$(( $1 % 250 + 1 ))"; }
# load_config REALS INTERVAL: REALS masq reals over 10 virtual services, HTTP checks,
# timeout 2 s, failurecount 1, quiescent=no: stock directives only.
load_config() {
    printf 'checktimeout=2\nnegotiatetimeout=2\ncheckinterval=%s\nfailurecount=1\nquiescent=no\n\n' "$2"
    for v in $(seq 0 9); do
        echo "virtual=10.0.0.$((v + 1)):80"
        for k in $(seq $((v * $1 / 10)) $(((v + 1) * $1 / 10 - 1))); do
            echo "	real=$(load_real_addr "$k"):80 masq"
        done
        printf '\tservice=http\n\trequest="/"\n\treceive="OK"\n\tchecktype=negotiate\n\tscheduler=rr\n\n'
    done
}
