#!/usr/bin/env bash
# count-requests.sh - the wineserver requests one relayed message costs, by kind.
#
#   bash tools/count-requests.sh [EXE...]       from the host, as root
#
# A measurement, not a test: it prints figures and fails only if a run does.
# Under Wine nearly every system service is a request to the wineserver (a
# write and a read on a pipe, and the server's own work), so their number is
# what a change to the I/O path should be judged by first; unlike CPU time it
# hardly moves with the machine's load.
#
# For each executable (a path inside the checkout; by default build/imsvc.exe,
# built first), in a private Wine prefix whose wineserver runs with -d1 (it
# then writes every request it serves, and its reply, to its standard
# error): the service runs in console mode (`imsvc run`), relaying everything
# (RelayAddresses 127.0.0.1/32) to an smtp-sink as its SmartHost, and
# smtp-source sends MESSAGES (default 300) messages of 5 KiB in 20 sessions,
# one connection per message, twice. The requests served during the second
# load, from its start until the sink has every message, are counted and
# divided by MESSAGES. Printed, one column per executable:
#   - requests per message by name (those at 0.5 or more in some column),
#     and all of them together;
#   - signals: SIGUSR1 sent to a thread so that it runs a system APC (the
#     end of an asynchronous operation it started) because it was not
#     waiting in the server at that moment;
#   - receives answered PENDING (no data yet: completed later, through an
#     APC and the completion port) and ALERTED (data there: done at once);
#   - system APCs run for asynchronous I/O (APC_ASYNC_IO).
# The trace covers every process of the prefix; during the load only the
# service makes requests worth counting (the others add under 0.1).
# Everything started here (the sink, the service, the wineserver) is stopped
# by its PID on exit. Ports 2591 and 2593 on 127.0.0.1.
set -euo pipefail

if [ "${1:-}" != --in-root ]; then
    here=$(cd "$(dirname "$0")" && pwd)
    bash "$here/setup.sh"
    exec "$here/inroot" bash tools/count-requests.sh --in-root "${MESSAGES:-300}" "$@" </dev/null
fi
MESSAGES=$2
shift 2
cd /src
[ $# -gt 0 ] || set -- build/imsvc.exe

SVC_PORT=2591
SINK_PORT=2593
FROM=source@client.example
TO=bench@remote.example
BENCH_NAME=count-requests
. tests/lib/wineprefix.sh
. tools/lib/bench.sh

WORK=$(mktemp -d /tmp/imsvc-count-requests.XXXXXX)
chmod 755 "$WORK"
SINK_PIDS=()
SVC_PID=
WP_SERVER_PID=

stop_side() {
    if [ -n "$SVC_PID" ]; then
        kill "$SVC_PID" 2>/dev/null || true
        wait "$SVC_PID" 2>/dev/null || true
        SVC_PID=
    fi
    bench_stop_sinks
    SINK_PIDS=()
    wp_destroy
}
cleanup() {
    set +e
    stop_side
    rm -rf "$WORK"
}
trap cleanup EXIT

# the load, and then until the sink has counted TOTAL
load() {
    local total=$1
    smtp-source -s 20 -m "$MESSAGES" -l 5120 -f "$FROM" -t "$TO" -M client.example \
        "127.0.0.1:$SVC_PORT" >>"$WORK/source.out" 2>&1 ||
        { log "smtp-source failed:"; tail -5 "$WORK/source.out" >&2; return 1; }
    local t=0
    while [ "$(sink_count "$WORK/sink.out")" -lt "$total" ]; do
        t=$((t + 1))
        [ "$t" -lt 1200 ] || { log "the sink has $(sink_count "$WORK/sink.out") of $total"; return 1; }
        sleep 0.1
    done
}

# one executable: its counts to $WORK/counts-K ("figure value" lines)
side() {
    local exe=$1 k=$2
    [ -f "$exe" ] || { log "no executable $exe"; return 1; }
    wp_create "$WORK/trace"   # the server tracing its requests
    bench_install "$exe" "$SVC_PORT" "$SINK_PORT" "$WORK/imsvc.log"
    : >"$WORK/sink.out"
    sink_start "$SINK_PORT" "$WORK/sink.out"
    wine 'C:\Program Files\IMSvc\imsvc.exe' run </dev/null >"$WORK/run.out" 2>&1 &
    SVC_PID=$!
    wait_port "$SVC_PORT"
    log "$exe: warming up"
    load "$MESSAGES"
    sleep 1
    local from
    from=$(wc -l <"$WORK/trace")
    log "$exe: counting"
    load $((2 * MESSAGES))
    tail -n +"$((from + 1))" "$WORK/trace" >"$WORK/window"
    stop_side
    awk -v n="$MESSAGES" '
        # a request: "TID: name( args )"; its reply: "TID: name() = STATUS ..."
        match($0, /^[0-9a-f]+: [a-z_]+\(/) {
            name = substr($0, RSTART, RLENGTH - 1); sub(/^[0-9a-f]+: /, "", name)
            if ($0 ~ /^[0-9a-f]+: [a-z_]+\(\) = /) {
                if (name == "recv_socket") rs[$4]++
                next
            }
            req[name]++; total++
        }
        /\*sent signal\* SIGUSR1/ { sig++ }
        /APC_ASYNC_IO/ && / select\(/ { apc++ }
        END {
            for (r in req) printf "req %s %.2f\n", r, req[r] / n
            printf "all requests %.2f\n", total / n
            printf "signals (SIGUSR1) %.2f\n", sig / n
            printf "receives PENDING %.2f\n", rs["PENDING"] / n
            printf "receives ALERTED %.2f\n", rs["ALERTED"] / n
            printf "async I/O APCs %.2f\n", apc / n
        }' "$WORK/window" >"$WORK/counts-$k"
    rm -f "$WORK/trace" "$WORK/window"
}

k=0
for exe in "$@"; do
    k=$((k + 1))
    if [ "$exe" = build/imsvc.exe ]; then
        make -s -f Makefile.mingw build/imsvc.exe >"$WORK/build.log" 2>&1 ||
            { tail -20 "$WORK/build.log" >&2; exit 1; }
    fi
    side "$exe" "$k"
done

echo
echo "wineserver requests per message: smtp-source -s 20 -m $MESSAGES -l 5120 through imsvc to smtp-sink"
i=0
for exe in "$@"; do i=$((i + 1)); echo "  ($i) $exe"; done
printf '%-28s' ""
for i in $(seq 1 "$k"); do printf ' %14s' "($i)"; done
echo
# rows: the requests at 0.5 or more in some column, largest first, then the totals
awk '/^req / && $3 >= 0.5 { print $2 }' "$WORK"/counts-* | sort -u >"$WORK/names"
for name in $(cat "$WORK/names"); do
    printf '%-28s' "$name"
    for i in $(seq 1 "$k"); do
        printf ' %14s' "$(awk -v r="$name" '$1 == "req" && $2 == r { v = $3 } END { print v == "" ? "0.00" : v }' "$WORK/counts-$i")"
    done
    echo
done | sort -k2 -g -r
for fig in "all requests" "signals (SIGUSR1)" "receives PENDING" "receives ALERTED" "async I/O APCs"; do
    printf '%-28s' "$fig"
    for i in $(seq 1 "$k"); do
        printf ' %14s' "$(awk -v f="$fig" 'index($0, f " ") == 1 { print $NF }' "$WORK/counts-$i")"
    done
    echo
done
