#!/usr/bin/env bash
# bench-backlog.sh - does the cost of queueing a message grow with the number
# of messages waiting? imsvc's accepted msg/s with an empty queue and with
# 50,000 messages waiting, in one run.
#
#   bash tools/bench-backlog.sh [EXE]     from the host, as root
#
# A benchmark, not a test: it prints figures and fails only if a run does.
# imsvc is installed as a service in a private Wine prefix, relaying every
# message (RelayAddresses 127.0.0.1/32) to a SmartHost that does not listen
# (127.0.0.1:2714, a closed port), so everything it accepts stays queued,
# deferred. Then:
#   1. measure: Postfix's smtp-source, 20 sessions, 5,000 messages of 5 KiB,
#      one connection per message, into the empty queue: accepted msg/s =
#      5000 / smtp-source's wall time;
#   2. fill: smtp-source at high concurrency (100 sessions, connections
#      reused, 1 KiB) until 50,000 messages wait in all (the service's
#      status file counts them); the time this took is printed;
#   3. measure again, the same load as 1.
# It prints both rates and their ratio (target: second / first >= 0.9).
# EXE (a path inside the checkout, such as build-main/imsvc.exe) runs that
# executable instead of building this checkout's, for a comparison with
# another build. Set B for the build directory (default build); MEASURE,
# BACKLOG, SESSIONS, FILL_SESSIONS and SIZE change the load.
# Everything listens on 127.0.0.1 only; everything started here (the
# wineserver and the prefix's processes) is stopped by its PID on exit.
set -euo pipefail

if [ "${1:-}" != --in-root ]; then
    here=$(cd "$(dirname "$0")" && pwd)
    bash "$here/setup.sh"
    exec "$here/inroot" bash tools/bench-backlog.sh --in-root "${B:-build}" "${1:-}" \
        "${MEASURE:-5000}" "${BACKLOG:-50000}" "${SESSIONS:-20}" "${FILL_SESSIONS:-100}" \
        "${SIZE:-5120}" </dev/null
fi
B=$2 EXE=$3 MEASURE=$4 BACKLOG=$5 SESSIONS=$6 FILL_SESSIONS=$7 SIZE=$8
cd /src

SVC_PORT=2713          # imsvc
DEAD_PORT=2714         # its SmartHost: nothing listens there
FILL_SIZE=1024
DEADLINE=3600          # seconds for one smtp-source run
TO=bench@remote.example
FROM=source@client.example

WORK=$(mktemp -d /tmp/imsvc-bench-backlog.XXXXXX)
chmod 755 "$WORK"
SINK_PIDS=()
WP_SERVER_PID=

BENCH_NAME=bench-backlog
. tests/lib/wineprefix.sh
. tools/lib/bench.sh

cleanup() {
    set +e
    [ -n "$WP_SERVER_PID" ] && { imsvc stop >/dev/null 2>&1; wp_destroy; }
    rm -rf "$WORK"
}
trap cleanup EXIT

if (exec 3<>"/dev/tcp/127.0.0.1/$DEAD_PORT") 2>/dev/null; then
    log "something listens on 127.0.0.1:$DEAD_PORT; the SmartHost must be unreachable"; exit 1
fi

if [ -z "$EXE" ]; then
    EXE=$B/imsvc.exe
    make -s -f Makefile.mingw B="$B" "$EXE" >"$WORK/build.log" 2>&1 ||
        { tail -20 "$WORK/build.log" >&2; exit 1; }
fi
[ -f "$EXE" ] || { log "no executable $EXE"; exit 1; }

wp_create
exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
status_file="$WINEPREFIX/drive_c/ProgramData/IMSvc/Queue/status.txt"
mkdir -p "$exe_dir"
cp "$EXE" "$exe_dir/imsvc.exe"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null 2>&1 | tr -d '\r'; return "${PIPESTATUS[0]}"; }
imsvc install >"$WORK/imsvc.log"
for kv in "ListenPort $SVC_PORT" "LocalDomains bench.test" "RelayAddresses 127.0.0.1/32" \
          "SmartHost 127.0.0.1:$DEAD_PORT" "SmartHostTls 0" "MaxSessionsPerAddress 1000"; do
    # shellcheck disable=SC2086
    imsvc config set $kv >>"$WORK/imsvc.log" || { cat "$WORK/imsvc.log" >&2; exit 1; }
done
imsvc start >>"$WORK/imsvc.log" || { cat "$WORK/imsvc.log" >&2; exit 1; }
wait_port "$SVC_PORT"

# queued: the number of messages in the queue, from the status file the
# service rewrites every 2 s.
queued() { tr -d '\r' <"$status_file" 2>/dev/null | awk '$1 == "messages" { print $2 }' | grep . || echo 0; }
# wait_queued N: until the status file counts at least N (or 120 s pass).
wait_queued() {
    local end=$(( $(date +%s) + 120 ))
    while [ "$(queued)" -lt "$1" ]; do
        [ "$(date +%s)" -le "$end" ] || { log "the queue holds $(queued), not $1"; return 1; }
        sleep 0.5
    done
}

# source_run NAME SECONDS-VAR ARGS...: one smtp-source run; its wall time in
# SECONDS-VAR; returns smtp-source's exit status (the log says why).
source_run() {
    local name=$1 var=$2 t0 t1 rc
    shift 2
    log "$name: smtp-source $*"
    t0=$(now)
    set +e
    timeout "$DEADLINE" smtp-source "$@" -f "$FROM" -t "$TO" -M client.example \
        "127.0.0.1:$SVC_PORT" >"$WORK/source-$name.out" 2>&1
    rc=$?
    set -e
    t1=$(now)
    printf -v "$var" '%s' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
    if [ "$rc" != 0 ]; then
        log "$name: smtp-source failed (exit $rc) after ${!var} s:"; tail -3 "$WORK/source-$name.out" >&2
        return "$rc"
    fi
    log "$name: ${!var} s"
}
# why_failed: what the service says about itself after a failed run.
why_failed() {
    log "the service: $(imsvc status 2>&1 | head -3 | tr '\n' ' ')"
    imsvc events --last 5 2>&1 | tail -40 >&2
}

source_run empty T_EMPTY -s "$SESSIONS" -m "$MEASURE" -l "$SIZE" || { why_failed; exit 1; }
wait_queued "$MEASURE"
Q_EMPTY_AFTER=$(queued)

fill=$(( BACKLOG - Q_EMPTY_AFTER ))
[ "$fill" -gt 0 ] || fill=0
# The fill only has to get there: a session the service drops (the log says
# which and why) is made up by another run for what is still missing.
T_FILL=0 FILL_FAILS=0
left=$fill
while [ "$left" -gt 0 ]; do
    t=0
    if ! source_run fill t -s "$FILL_SESSIONS" -d -m "$left" -l "$FILL_SIZE"; then
        FILL_FAILS=$((FILL_FAILS + 1))
        why_failed
        [ "$FILL_FAILS" -lt 5 ] || { log "fill: five runs failed"; exit 1; }
    fi
    T_FILL=$(awk -v a="$T_FILL" -v b="$t" 'BEGIN { printf "%.3f", a + b }')
    sleep 5   # the status file (rewritten every 2 s) catches up before it is counted
    left=$(( BACKLOG - $(queued) ))
done
wait_queued "$BACKLOG"
Q_BEFORE=$(queued)

source_run backlog T_BACKLOG -s "$SESSIONS" -m "$MEASURE" -l "$SIZE" || { why_failed; exit 1; }
wait_queued $(( Q_BEFORE + MEASURE ))
Q_AFTER=$(queued)

R_EMPTY=$(fdiv "$MEASURE" "$T_EMPTY")
R_BACKLOG=$(fdiv "$MEASURE" "$T_BACKLOG")
R_FILL=$(fdiv "$fill" "$T_FILL")
echo
echo "load: smtp-source -s $SESSIONS -m $MEASURE -l $SIZE (one connection per message), SmartHost" \
     "unreachable (127.0.0.1:$DEAD_PORT), executable $EXE"
printf '%-40s %10s msg/s  (%s messages in %s s; queue 0 -> %s)\n' "accepted, empty queue" \
    "$R_EMPTY" "$MEASURE" "$T_EMPTY" "$Q_EMPTY_AFTER"
printf '%-40s %10s msg/s  (%s messages in %s s; queue %s -> %s)\n' \
    "accepted, $Q_BEFORE waiting" "$R_BACKLOG" "$MEASURE" "$T_BACKLOG" "$Q_BEFORE" "$Q_AFTER"
printf '%-40s %10s  (target >= 0.9)\n' "ratio backlog / empty" \
    "$(awk -v a="$R_BACKLOG" -v b="$R_EMPTY" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
printf '%-40s %10s s    (%s messages of %s octets, %s sessions reusing connections: %s msg/s;' \
    "fill time" "$T_FILL" "$fill" "$FILL_SIZE" "$FILL_SESSIONS" "$R_FILL"
printf ' %s smtp-source runs failed)\n' "$FILL_FAILS"
