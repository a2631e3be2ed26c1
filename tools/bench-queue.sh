#!/usr/bin/env bash
# bench-queue.sh - imsvc's queue next to Postfix's, under the same load.
#
#   bash tools/bench-queue.sh [imsvc|postfix]     from the host, as root
#
# A benchmark, not a test: it prints figures and fails only if a run does.
# One load, Postfix's smtp-source with 20 sessions sending 5,000 messages of
# 5 KiB (one connection per message), is sent
#   (a) through imsvc, installed as a service in a private Wine prefix, relaying
#       every message (RelayAddresses 127.0.0.1/32) to its SmartHost, an
#       smtp-sink;
#   (b) through a private Postfix instance (its own configuration and queue
#       under one mktemp directory, as tests/integration/test_send.sh makes
#       it) relaying to another smtp-sink (relayhost = [127.0.0.1]:port).
# For each: accepted msg/s = 5000 / smtp-source's wall time; delivered msg/s
# = 5000 / the time from smtp-source's start until the sink has counted all
# 5000 (smtp-sink -c); the ratio imsvc/Postfix of both; imsvc's peak memory
# (VmHWM of the service's Wine process, sampled while it runs) and its
# wineserver's, reported apart. An argument runs one half only.
#
# The host part makes or reuses the root (tools/setup.sh) and runs the rest
# inside it (tools/inroot). Set B to choose the build directory (default
# build). Everything listens on 127.0.0.1 only, and everything started here
# (sinks, Postfix, the wineserver and the prefix's processes) is stopped by
# its PID on exit.
set -euo pipefail

if [ "${1:-}" != --in-root ]; then
    here=$(cd "$(dirname "$0")" && pwd)
    bash "$here/setup.sh"
    exec "$here/inroot" bash tools/bench-queue.sh --in-root "${B:-build}" "${1:-both}" </dev/null
fi
B=$2
WHICH=$3
cd /src

SESSIONS=20
MESSAGES=5000
SIZE=5120
SVC_PORT=2571          # imsvc
PF_PORT=2572           # Postfix's smtpd
SINK_A=2573            # imsvc's smart host
SINK_B=2574            # Postfix's relay host
DEADLINE=1200          # seconds for one half, load and delivery
TO=bench@remote.example
FROM=source@client.example

WORK=$(mktemp -d /tmp/imsvc-bench-queue.XXXXXX)
chmod 755 "$WORK"
SINK_PIDS=()
PF_DIR='' PF_PID=''
SAMPLER_PID=
WP_SERVER_PID=

BENCH_NAME=bench-queue
. tests/lib/wineprefix.sh
. tools/lib/bench.sh

cleanup() {
    set +e
    [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null && wait "$SAMPLER_PID" 2>/dev/null
    bench_stop_sinks
    bench_stop_postfix
    wp_destroy
    rm -rf "$WORK"
}
trap cleanup EXIT

# drive PORT SINKOUT NAME: the load into PORT; sets ACCEPT_S and DELIVER_S.
drive() {
    local port=$1 sinkout=$2 name=$3 t0 t1 t2 n rc
    log "$name: smtp-source -s $SESSIONS -m $MESSAGES -l $SIZE to 127.0.0.1:$port"
    t0=$(now)
    set +e
    timeout "$DEADLINE" smtp-source -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f "$FROM" -t "$TO" \
        -M client.example "127.0.0.1:$port" >"$WORK/source-$name.out" 2>&1
    rc=$?
    set -e
    t1=$(now)
    if [ "$rc" != 0 ]; then
        log "$name: smtp-source failed (exit $rc):"; tail -5 "$WORK/source-$name.out" >&2
        return 1
    fi
    ACCEPT_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    log "$name: accepted in $ACCEPT_S s; waiting for the sink"
    while :; do
        n=$(sink_count "$sinkout")
        [ "$n" -ge "$MESSAGES" ] && break
        if awk -v a="$t0" -v b="$(now)" -v d="$DEADLINE" 'BEGIN { exit !(b - a > d) }'; then
            log "$name: the sink has $n of $MESSAGES after $DEADLINE s"; return 1
        fi
        sleep 0.05
    done
    t2=$(now)
    DELIVER_S=$(awk -v a="$t0" -v b="$t2" 'BEGIN { printf "%.3f", b - a }')
    log "$name: all $MESSAGES at the sink after $DELIVER_S s"
}

run_imsvc() {
    make -s -f Makefile.mingw B="$B" "$B/imsvc.exe" >"$WORK/build.log" 2>&1 ||
        { tail -20 "$WORK/build.log" >&2; return 1; }
    wp_create
    local exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc" pid
    mkdir -p "$exe_dir"
    cp "$B/imsvc.exe" "$exe_dir/"
    imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null 2>&1 | tr -d '\r'; return "${PIPESTATUS[0]}"; }
    imsvc install >"$WORK/imsvc.log"
    for kv in "ListenPort $SVC_PORT" "LocalDomains bench.test" "RelayAddresses 127.0.0.1/32" \
              "SmartHost 127.0.0.1:$SINK_A" "SmartHostTls 0" "MaxSessionsPerAddress 1000"; do
        # shellcheck disable=SC2086
        imsvc config set $kv >>"$WORK/imsvc.log" || { cat "$WORK/imsvc.log" >&2; return 1; }
    done
    sink_start "$SINK_A" "$WORK/sink-a.out"
    imsvc start >>"$WORK/imsvc.log" || { cat "$WORK/imsvc.log" >&2; return 1; }
    wait_port "$SVC_PORT"
    pid=$(wp_service_pid) || { log "no service process found"; return 1; }
    # VmHWM is a peak already; sampling keeps the last value seen should the
    # process end before it is read at the end.
    (
        while kill -0 "$pid" 2>/dev/null; do
            v=$(status_kb "$pid" VmHWM); [ -n "$v" ] && echo "$v" >"$WORK/hwm-svc"
            v=$(status_kb "$WP_SERVER_PID" VmHWM); [ -n "$v" ] && echo "$v" >"$WORK/hwm-server"
            sleep 0.5
        done
    ) &
    SAMPLER_PID=$!
    drive "$SVC_PORT" "$WORK/sink-a.out" imsvc
    A_ACCEPT=$ACCEPT_S A_DELIVER=$DELIVER_S
    HWM_SVC=$(status_kb "$pid" VmHWM); HWM_SVC=${HWM_SVC:-$(cat "$WORK/hwm-svc" 2>/dev/null || echo '?')}
    HWM_SERVER=$(status_kb "$WP_SERVER_PID" VmHWM)
    HWM_SERVER=${HWM_SERVER:-$(cat "$WORK/hwm-server" 2>/dev/null || echo '?')}
    kill "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=
    A_SINK=$(sink_count "$WORK/sink-a.out")
    sleep 3   # the status file is rewritten every 2 s
    GROUP=$(imsvc status 2>/dev/null | tr -d '\r' |
            awk '/^Commits:/ { print $2 " commits in " $6 " flushes" }')
    imsvc stop >/dev/null || true
    wp_destroy
}

run_postfix() {
    sink_start "$SINK_B" "$WORK/sink-b.out"
    pf_start "$PF_PORT" "$SINK_B"
    drive "$PF_PORT" "$WORK/sink-b.out" postfix
    B_ACCEPT=$ACCEPT_S B_DELIVER=$DELIVER_S
    B_SINK=$(sink_count "$WORK/sink-b.out")
}

A_ACCEPT='' B_ACCEPT=''
if [ "$WHICH" = both ] || [ "$WHICH" = imsvc ]; then run_imsvc; fi
if [ "$WHICH" = both ] || [ "$WHICH" = postfix ]; then run_postfix; fi

echo
echo "load: smtp-source -s $SESSIONS -m $MESSAGES -l $SIZE (one connection per message), build $B"
printf '%-22s %12s %12s %10s\n' "" imsvc postfix imsvc/pf
rate_a='' rate_b='' drate_a='' drate_b=''
[ -n "$A_ACCEPT" ] && rate_a=$(fdiv "$MESSAGES" "$A_ACCEPT") && drate_a=$(fdiv "$MESSAGES" "$A_DELIVER")
[ -n "$B_ACCEPT" ] && rate_b=$(fdiv "$MESSAGES" "$B_ACCEPT") && drate_b=$(fdiv "$MESSAGES" "$B_DELIVER")
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' || echo -; }
printf '%-22s %12s %12s %10s\n' "accepted msg/s" "${rate_a:--}" "${rate_b:--}" "$(ratio "$rate_a" "$rate_b")"
printf '%-22s %12s %12s %10s\n' "delivered msg/s" "${drate_a:--}" "${drate_b:--}" "$(ratio "$drate_a" "$drate_b")"
printf '%-22s %12s %12s\n' "accept time s" "${A_ACCEPT:--}" "${B_ACCEPT:--}"
printf '%-22s %12s %12s\n' "all delivered at s" "${A_DELIVER:--}" "${B_DELIVER:--}"
printf '%-22s %12s %12s\n' "messages at the sink" "${A_SINK:--}" "${B_SINK:--}"
if [ -n "$A_ACCEPT" ]; then
    printf '%-22s %12s\n' "imsvc VmHWM" "$(awk -v k="$HWM_SVC" 'BEGIN { printf "%.1f MiB", k / 1024 }')"
    printf '%-22s %12s\n' "wineserver VmHWM" "$(awk -v k="$HWM_SERVER" 'BEGIN { printf "%.1f MiB", k / 1024 }')"
    printf '%-22s %s\n' "imsvc group commit" "${GROUP:-?} (imsvc status)"
fi
