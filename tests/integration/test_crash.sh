#!/usr/bin/env bash
# test_crash.sh - no acknowledged message is lost when the service is killed.
#
# The service is installed in the test prefix on 127.0.0.1:2541 and relays
# (RelayAddresses 127.0.0.1/32) to its SmartHost, Postfix's smtp-sink on
# 127.0.0.1:2542, which dumps every message it receives to a file of its own
# (-d). load_gen.py sends CRASH_COUNT messages (default 4000), and new ones
# after them until the service has been killed CRASH_KILLS times, over
# CRASH_SESSIONS sessions (default 8), retrying through refused connections,
# resets and 4xx, and logs the Message-ID of every message whose final dot got
# 250. While it runs, the service process (the Wine process of this prefix
# whose command line is `imsvc.exe service`) is killed with SIGKILL at random
# moments a few seconds apart, at least CRASH_KILLS times (default 3) while
# the load lasts, and started again with `imsvc start` each time. When the
# load is done, the test waits (up to CRASH_DRAIN seconds, default 180) until
# every acknowledged Message-ID is at the sink as a whole copy (its last
# line, "-- end of <id>", arrived), and fails for any that never does. Copies
# delivered more than once are counted and printed ("duplicates: N"): a crash
# between a delivery and its record may repeat the delivery, never lose it.
# The sink, load_gen and the prefix's wineserver are stopped by their PIDs on
# exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/assert.sh

PORT=2541
SINK_PORT=2542
COUNT=${CRASH_COUNT:-4000}
SESSIONS=${CRASH_SESSIONS:-8}
KILLS=${CRASH_KILLS:-3}
DRAIN=${CRASH_DRAIN:-180}
SIZE=${CRASH_SIZE:-4096}

W=
SINK_PID=
LG_PID=

cleanup() {
    set +e
    [ -n "$LG_PID" ] && kill "$LG_PID" 2>/dev/null && wait "$LG_PID" 2>/dev/null
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null
    wp_destroy
    [ -n "$W" ] && rm -rf "$W"
}
trap cleanup EXIT

W=$(mktemp -d /tmp/imsvc-crash.XXXXXX)
chmod 755 "$W"
mkdir "$W/dump"
chown nobody "$W/dump"
wp_create

exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
mkdir -p "$exe_dir"
cp "${B:-build}/imsvc.exe" "$exe_dir/"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null; }
state() { imsvc status 2>/dev/null | tr -d '\r' | awk '$1 == "State:" { print $2 }'; }

# The Linux PID of this prefix's service process. Wine shows the Windows
# command line as the process's; the prefix is in its environment (other
# prefixes may run an imsvc service at the same time).
svc_pid() {
    local f p c
    for f in $(grep -laF imsvc.exe /proc/[0-9]*/cmdline 2>/dev/null); do
        p=${f%/cmdline}
        c=$(tr '\0' ' ' 2>/dev/null <"$f") || continue
        case $c in *imsvc.exe*service*) ;; *) continue ;; esac
        tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qxF "WINEPREFIX=$WINEPREFIX" || continue
        echo "${p#/proc/}"
        return 0
    done
    return 1
}

# wait_state STATE SECONDS
wait_state() {
    local i
    for i in $(seq 1 $(($2 * 5))); do
        [ "$(state)" = "$1" ] && return 0
        sleep 0.2
    done
    return 1
}

run imsvc install
expect_status 0 "install"
for kv in "ListenPort $PORT" "LocalDomains crash.test" "RelayAddresses 127.0.0.1/32" \
          "SmartHost 127.0.0.1:$SINK_PORT" "SmartHostTls 0"; do
    # shellcheck disable=SC2086
    run imsvc config set $kv
    expect_status 0 "config set $kv"
done

smtp-sink -u nobody -d "$W/dump/%H%M%S." "127.0.0.1:$SINK_PORT" 1024 </dev/null >"$W/sink.out" 2>&1 &
SINK_PID=$!

run imsvc start
expect_status 0 "start"
wait_state RUNNING 30 && pass "the service is running" || fail "the service is not running: $(state)"
OUT='' ERR=''

: >"$W/acked"

python3 tests/integration/load_gen.py --port "$PORT" --sessions "$SESSIONS" --count "$COUNT" \
    --size "$SIZE" --log "$W/acked" --to user@remote.example --deadline 600 \
    --until "$W/killed-enough" >"$W/load_gen.out" 2>&1 &
LG_PID=$!
t_load=$(date +%s.%N)
since() { awk -v a="$t_load" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# Kill at random moments, 0.5 to 3 s after the service is back (a restart
# takes a few seconds under Wine, so kills are some 4 to 7 s apart), at least
# KILLS times, and on while the load lasts (at most 3 * KILLS times).
kills=0 kills_under_load=0 restarted=0
while [ "$kills" -lt "$KILLS" ] || { kill -0 "$LG_PID" 2>/dev/null && [ "$kills" -lt $((3 * KILLS)) ]; }; do
    sleep "$((RANDOM % 3)).$((5 + RANDOM % 5))"
    pid=$(svc_pid) || { fail "kill $((kills + 1)): no service process to kill"; break; }
    kill -0 "$LG_PID" 2>/dev/null && kills_under_load=$((kills_under_load + 1))
    kill -9 "$pid" 2>/dev/null || true
    t_kill=$(since)
    kills=$((kills + 1))
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    # The SCM notices the process is gone; then it can be started again.
    wait_state STOPPED 20 || true
    st=$(state)
    imsvc start >"$W/start.out" 2>&1 || true
    if wait_state RUNNING 30 && new=$(svc_pid) && [ "$new" != "$pid" ]; then
        restarted=$((restarted + 1))
        echo "kill $kills at ${t_kill} s: killed $pid ($st after it), restarted as $new at $(since) s"
        # A faster service would finish CRASH_COUNT before the last kill.
        [ "$kills" -lt "$KILLS" ] || touch "$W/killed-enough"
    else
        OUT=$(tr -d '\r' <"$W/start.out"); ERR=
        fail "kill $kills: the service did not start again (state $(state) after $st)"
        break
    fi
done
touch "$W/killed-enough"   # also when the loop gave up early
expect_eq "$restarted" "$kills" "restarted after each of $kills kills"
[ "$kills_under_load" -ge "$KILLS" ] && pass "$kills_under_load kills while the load ran" ||
    fail "only $kills_under_load kills while the load ran, wanted $KILLS (load_gen ended early)"

set +e
wait "$LG_PID"
lg_rc=$?
set -e
LG_PID=
OUT=$(cat "$W/load_gen.out"); ERR=
cat "$W/load_gen.out"
[ "$lg_rc" = 0 ] && pass "load_gen: every message acknowledged" || fail "load_gen exit $lg_rc"
acked=$(sort -u "$W/acked" | wc -l)
[ "$acked" -gt 0 ] && pass "$acked messages acknowledged with 250" || fail "no message acknowledged"

# Whole copies at the sink, by Message-ID, one line per copy.
arrived() {
    python3 - "$W/dump" <<'EOF'
import os, re, sys
d = sys.argv[1]
cut = 0
out = []
for name in os.listdir(d):
    try:
        with open(os.path.join(d, name), "rb") as f:
            text = f.read().decode("latin-1")
    except OSError:
        continue
    m = re.search(r"^Message-ID: *(<[^>\r\n]*>)", text, re.M | re.I)
    if not m:
        continue
    if ("\n-- end of %s" % m.group(1)) in text:
        out.append(m.group(1))
    else:
        cut += 1
sys.stdout.write("".join(i + "\n" for i in out))
sys.stderr.write("%d\n" % cut)
EOF
}

sort -u "$W/acked" >"$W/acked.sorted"
missing=-1
for i in $(seq 1 "$DRAIN"); do
    arrived >"$W/arrived" 2>"$W/cut"
    sort -u "$W/arrived" >"$W/arrived.sorted"
    missing=$(comm -23 "$W/acked.sorted" "$W/arrived.sorted" | wc -l)
    [ "$missing" = 0 ] && break
    sleep 1
done
echo "waited about $i s for delivery; $missing acknowledged messages not at the sink"
if [ "$missing" = 0 ]; then
    pass "every acknowledged message reached the smart host"
else
    fail "$missing acknowledged messages never reached the smart host"
    comm -23 "$W/acked.sorted" "$W/arrived.sorted" | head -10 | sed 's/^/  missing: /'
fi
# Give any redelivery in flight a moment, then count.
sleep 2
arrived >"$W/arrived" 2>"$W/cut"
dups=$(sort "$W/arrived" | uniq -d | wc -l)
extra=$(( $(wc -l <"$W/arrived") - $(sort -u "$W/arrived" | wc -l) ))
unacked=$(sort -u "$W/arrived" | comm -13 "$W/acked.sorted" - | wc -l)
echo "copies at the sink: $(wc -l <"$W/arrived") whole, $(cat "$W/cut") cut off"
echo "acknowledged: $acked; arrived without a 250 reaching the client: $unacked"
echo "duplicates: $dups (messages delivered more than once; $extra extra copies)"

pid=$(svc_pid || true)
[ -n "$pid" ] && pass "the service is still running (pid $pid)" || fail "the service is not running at the end"
run imsvc stop
expect_status 0 "stop"
run imsvc uninstall
expect_status 0 "uninstall"
# Stop everything before the summary: a wineserver that outlived killed
# clients may print its leftover objects as it goes, and the summary is the
# last line.
kill "$SINK_PID" 2>/dev/null || true
wait "$SINK_PID" 2>/dev/null || true
SINK_PID=
wp_destroy
summary
