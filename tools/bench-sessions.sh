#!/usr/bin/env bash
# bench-sessions.sh - what an inbound session costs imsvc, and how its
# throughput goes with the number of concurrent clients, next to Postfix.
#
#   bash tools/bench-sessions.sh          from the host, as root
#
# A benchmark, not a test: it prints figures and fails only if a run does.
# imsvc is installed as a service in a private Wine prefix with its
# defaults, relaying every message (RelayAddresses 127.0.0.1/32) to an
# smtp-sink as its SmartHost; MaxSessionsPerAddress is raised to 1000, as
# smtp-source connects from one address. A private Postfix (tools/lib/bench.sh)
# relays to another smtp-sink. Then:
#   memory: VmRSS of the service's Wine process and, apart, of its
#     wineserver, with no session and with IDLE (1,000) idle sessions held
#     open by tests/integration/session_probe.py from 100 loopback addresses,
#     the difference per greeted session (target: at most 64 KiB), and the
#     same once they have closed; the service's thread count at each point;
#   throughput: for each of LEVELS (1 2 5 20 50) concurrent sessions,
#     smtp-source (5 KiB messages, one connection per message) into imsvc,
#     then into Postfix, each drained by its sink before the next run:
#     accepted msg/s = messages / smtp-source's wall time, their ratio, and
#     the service's peak thread count (/proc Threads) during its run.
# Set B for the build directory (default build), LEVELS, IDLE, or MESSAGES
# (per run; by default 300 at 1 session, 500 at 2, 1,000 at 5, 2,000 above).
# The host part makes or reuses the root (tools/setup.sh) and runs the rest
# inside it (tools/inroot). Everything listens on 127.0.0.1 ports 2660-2663,
# and everything started here is stopped by its PID on exit.
set -euo pipefail

if [ "${1:-}" != --in-root ]; then
    here=$(cd "$(dirname "$0")" && pwd)
    bash "$here/setup.sh"
    exec "$here/inroot" env LEVELS="${LEVELS:-}" IDLE="${IDLE:-}" MESSAGES="${MESSAGES:-}" \
        bash tools/bench-sessions.sh --in-root "${B:-build}" </dev/null
fi
B=$2
cd /src
# A thousand sockets in the probe, the wineserver and the service.
ulimit -n 8192

LEVELS=${LEVELS:-1 2 5 20 50}
IDLE=${IDLE:-1000}
SIZE=5120
SVC_PORT=2660          # imsvc
PF_PORT=2661           # Postfix's smtpd
SINK_A=2662            # imsvc's smart host
SINK_B=2663            # Postfix's relay host
DEADLINE=600           # seconds for one run to be accepted and delivered
TO=bench@remote.example
FROM=source@client.example

WORK=$(mktemp -d /tmp/imsvc-bench-sessions.XXXXXX)
chmod 755 "$WORK"
SINK_PIDS=()
PF_DIR='' PF_PID=''
SAMPLER_PID='' HOLD_PID=''
WP_SERVER_PID=

BENCH_NAME=bench-sessions
. tests/lib/wineprefix.sh
. tools/lib/bench.sh

cleanup() {
    set +e
    for p in $SAMPLER_PID $HOLD_PID; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    bench_stop_sinks
    bench_stop_postfix
    wp_destroy
    rm -rf "$WORK"
}
trap cleanup EXIT

messages_for() {
    if [ -n "${MESSAGES:-}" ]; then echo "$MESSAGES"; return; fi
    case $1 in 1) echo 300 ;; 2) echo 500 ;; 5) echo 1000 ;; *) echo 2000 ;; esac
}
mib() { awk -v k="$1" 'BEGIN { if (k == "") print "?"; else printf "%.1f MiB", k / 1024 }'; }

imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null 2>&1 | tr -d '\r'; return "${PIPESTATUS[0]}"; }

# wait_sink OUTFILE TOTAL: until the sink has counted TOTAL messages.
wait_sink() {
    local t0 n
    t0=$(date +%s)
    while n=$(sink_count "$1"); [ "$n" -lt "$2" ]; do
        if [ $(( $(date +%s) - t0 )) -gt "$DEADLINE" ]; then
            log "the sink has $n of $2 after $DEADLINE s"; return 1
        fi
        sleep 0.1
    done
}

# drive NAME PORT SESSIONS MESSAGES: smtp-source's load; sets ACCEPT_S.
drive() {
    local name=$1 port=$2 n=$3 m=$4 t0 t1 rc
    log "$name: smtp-source -s $n -m $m -l $SIZE to 127.0.0.1:$port"
    t0=$(now)
    set +e
    timeout "$DEADLINE" smtp-source -s "$n" -m "$m" -l "$SIZE" -f "$FROM" -t "$TO" \
        -M client.example "127.0.0.1:$port" >"$WORK/source-$name-$n.out" 2>&1
    rc=$?
    set -e
    t1=$(now)
    if [ "$rc" != 0 ]; then
        log "$name: smtp-source failed (exit $rc):"; tail -5 "$WORK/source-$name-$n.out" >&2
        return 1
    fi
    ACCEPT_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
}

# The service, with its defaults but for where it listens and relays.
make -s -f Makefile.mingw B="$B" "$B/imsvc.exe" >"$WORK/build.log" 2>&1 ||
    { tail -20 "$WORK/build.log" >&2; exit 1; }
wp_create
exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
mkdir -p "$exe_dir"
cp "$B/imsvc.exe" "$exe_dir/"
imsvc install >"$WORK/imsvc.log"
for kv in "ListenPort $SVC_PORT" "LocalDomains bench.test" "RelayAddresses 127.0.0.1/32" \
          "SmartHost 127.0.0.1:$SINK_A" "SmartHostTls 0"; do
    # shellcheck disable=SC2086
    imsvc config set $kv >>"$WORK/imsvc.log" || { cat "$WORK/imsvc.log" >&2; exit 1; }
done
PER_ADDRESS=1000
imsvc config set MaxSessionsPerAddress "$PER_ADDRESS" >>"$WORK/imsvc.log" 2>&1 || {
    PER_ADDRESS="not known to this build"
    log "this build has no MaxSessionsPerAddress"
}
sink_start "$SINK_A" "$WORK/sink-a.out"
sink_start "$SINK_B" "$WORK/sink-b.out"
imsvc start >>"$WORK/imsvc.log" || { cat "$WORK/imsvc.log" >&2; exit 1; }
wait_port "$SVC_PORT"
SVC=$(wp_service_pid) || { log "no service process found"; exit 1; }
pf_start "$PF_PORT" "$SINK_B"
SENT_A=0 SENT_B=0

# Memory ---------------------------------------------------------------------
# A few messages first, so that what the first session sets up once (the
# queue's threads, the relay connection) is not charged to the idle ones.
drive warmup "$SVC_PORT" 2 20
SENT_A=20
wait_sink "$WORK/sink-a.out" "$SENT_A"
sleep 3
RSS0=$(status_kb "$SVC" VmRSS) SRV0=$(status_kb "$WP_SERVER_PID" VmRSS) THR0=$(status_kb "$SVC" Threads)
log "holding $IDLE idle sessions"
python3 tests/integration/session_probe.py "$SVC_PORT" idle "$IDLE" --addrs 100 --greet-secs 30 \
    --hold >"$WORK/idle.out" 2>&1 &
HOLD_PID=$!
for _ in $(seq 1 600); do
    grep -q '^holding' "$WORK/idle.out" && break
    kill -0 "$HOLD_PID" 2>/dev/null || { cat "$WORK/idle.out" >&2; exit 1; }
    sleep 0.1
done
sleep 3
RSS1=$(status_kb "$SVC" VmRSS) SRV1=$(status_kb "$WP_SERVER_PID" VmRSS) THR1=$(status_kb "$SVC" Threads)
GREETED=$(awk '$1 == "greeted" { print $2 }' "$WORK/idle.out")
GREET_S=$(awk '$1 == "greet_s" { print $2 }' "$WORK/idle.out")
STATUS_HELD=$(imsvc status | grep -E '^(Sessions|I/O|Refused|Closed):' || true)
kill "$HOLD_PID"; wait "$HOLD_PID" 2>/dev/null || true
HOLD_PID=
sleep 5
RSS2=$(status_kb "$SVC" VmRSS) SRV2=$(status_kb "$WP_SERVER_PID" VmRSS) THR2=$(status_kb "$SVC" Threads)

# Throughput -------------------------------------------------------------------
declare -A RATE_A RATE_B PEAK_THR COUNT
for n in $LEVELS; do
    m=$(messages_for "$n")
    COUNT[$n]=$m
    echo 0 >"$WORK/threads"
    (
        while :; do
            t=$(status_kb "$SVC" Threads)
            [ -n "$t" ] && [ "$t" -gt "$(cat "$WORK/threads")" ] && echo "$t" >"$WORK/threads"
            sleep 0.2
        done
    ) &
    SAMPLER_PID=$!
    drive imsvc "$SVC_PORT" "$n" "$m"
    RATE_A[$n]=$(fdiv "$m" "$ACCEPT_S")
    kill "$SAMPLER_PID"; wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=
    PEAK_THR[$n]=$(cat "$WORK/threads")
    SENT_A=$((SENT_A + m))
    wait_sink "$WORK/sink-a.out" "$SENT_A"
    log "imsvc: $n sessions, ${RATE_A[$n]} msg/s accepted, peak ${PEAK_THR[$n]} threads"
    drive postfix "$PF_PORT" "$n" "$m"
    RATE_B[$n]=$(fdiv "$m" "$ACCEPT_S")
    SENT_B=$((SENT_B + m))
    wait_sink "$WORK/sink-b.out" "$SENT_B"
    log "postfix: $n sessions, ${RATE_B[$n]} msg/s accepted"
done
STATUS_END=$(imsvc status | grep -E '^(Sessions|I/O|Refused|Closed):' || true)
imsvc stop >/dev/null || true

echo
echo "imsvc, build $B: defaults, MaxSessionsPerAddress $PER_ADDRESS"
printf '%-28s %14s %14s %14s %14s\n' "" "no session" "$IDLE idle" "per session" "after close"
per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { if (a == "" || b == "" || n + 0 <= 0) print "-"; else printf "%.1f KiB", (b - a) / n }'; }
printf '%-28s %14s %14s %14s %14s\n' "service VmRSS" "$(mib "$RSS0")" "$(mib "$RSS1")" \
    "$(per "$RSS0" "$RSS1" "$GREETED")" "$(mib "$RSS2")"
printf '%-28s %14s %14s %14s %14s\n' "wineserver VmRSS" "$(mib "$SRV0")" "$(mib "$SRV1")" \
    "$(per "$SRV0" "$SRV1" "$GREETED")" "$(mib "$SRV2")"
printf '%-28s %14s %14s %14s %14s\n' "service threads" "${THR0:-?}" "${THR1:-?}" "" "${THR2:-?}"
echo "idle sessions greeted: ${GREETED:-?} of $IDLE in ${GREET_S:-?} s (per session: the difference over those greeted; target at most 64 KiB)"
[ -n "$STATUS_HELD" ] && { echo "imsvc status while they were held:"; sed 's/^/  /' <<<"$STATUS_HELD"; }
echo
echo "accepted msg/s, smtp-source -l $SIZE, one connection per message; imsvc then Postfix at each level"
printf '%-9s %9s %10s %10s %9s %15s\n' sessions messages imsvc postfix imsvc/pf "imsvc threads"
for n in $LEVELS; do
    ratio=$(awk -v a="${RATE_A[$n]}" -v b="${RATE_B[$n]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
    printf '%-9s %9s %10s %10s %9s %15s\n' "$n" "${COUNT[$n]}" "${RATE_A[$n]}" "${RATE_B[$n]}" "$ratio" "${PEAK_THR[$n]}"
done
echo "(imsvc threads: the peak of /proc Threads of the service's Wine process during its run)"
[ -n "$STATUS_END" ] && { echo "imsvc status at the end:"; sed 's/^/  /' <<<"$STATUS_END"; }
exit 0
