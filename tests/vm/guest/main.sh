#!/bin/sh
# Runs the scenarios named in $@ (default: all of scenarios/*.sh) and prints one line per
# scenario: "SCENARIO <name> PASS|FAIL|SKIP <seconds>s". Exits 1 if any failed. A name
# not in scenarios/ is looked up in on-demand/ (run only when named).
cd /test
export PATH=/test:/sbin:/usr/sbin:/bin:/usr/bin:/bbin
. /test/lib.sh
modprobe ip_vs || { echo "main: modprobe ip_vs failed"; exit 1; }
if [ $# -eq 0 ]; then
    set -- $(ls scenarios | sed -n 's/\.sh$//p')
fi
failed=0
for name in "$@"; do
    echo "=== $name"
    start=$(now_ms)
    script=scenarios/$name.sh
    [ -f "$script" ] || script=on-demand/$name.sh
    ( set -e; . "$script" ) > "/tmp/$name.log" 2>&1
    rc=$?
    cat "/tmp/$name.log"
    took=$(( $(now_ms) - start ))
    reset_world
    case $rc in
        0) verdict=PASS ;;
        77) verdict=SKIP ;;
        *) verdict=FAIL; failed=1 ;;
    esac
    echo "SCENARIO $name $verdict $(( took / 1000 )).$(( took % 1000 / 100 ))s"
done
exit $failed
