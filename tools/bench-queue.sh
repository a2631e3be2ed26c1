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
# The two sides take turns, RUNS times (default 3; imsvc first in odd runs,
# Postfix first in even ones), each time with a fresh queue, because the
# machine's load moves a single run's figures a lot; the medians of the runs
# are printed last. For each run and side:
#   - accepted msg/s = 5000 / smtp-source's wall time; delivered msg/s = 5000
#     / the time from smtp-source's start until the sink has counted all 5000
#     (smtp-sink -c);
#   - peak memory: the proportional set size (PSS) summed over the side's
#     processes, sampled twice a second: for imsvc the service's Wine process
#     and its wineserver, for Postfix its master and every process under it;
#     imsvc's VmHWM apart;
#   - CPU seconds per message: user and system time of the same processes
#     (and of their children that ended, which Postfix's master collects) from
#     the load's start until the last message is at the sink, over 5000; for
#     imsvc also the wineserver's part of it apart (Wine's file, socket and
#     wait requests are served there, and its system calls are counted in it);
#   - one session's time per message: after the load, smtp-source -s 1 sends
#     ONE_MESSAGES (default 200) messages one after the other; ms per message.
# Each side's load starts SETTLE seconds (default 65; 0 for none) after the
# bench last removed files: the other side's load, a Wine prefix or a
# Postfix queue. On ext4 without a journal, as on these machines, the kernel
# passes over every inode freed in the last minute when it allocates a new
# one (longer while the freed inode's table block is not yet written back),
# and the wineserver creates the files of all the service's threads in its
# one process. With its load started less than 30 s after 8,000 files were
# created and removed, imsvc accepted 206-260 msg/s with its wineserver at
# 2.3-3.0 CPU ms per message, and 350-395 msg/s at 1.3-1.4 when the load
# started 45 s or more after; Postfix moved from 279 to 294 msg/s. With 45 s
# between the loads, one imsvc run in nine still had its wineserver at 2.24.
# Without the wait, the order of the turns decided which side had the clean
# file system.
# An argument runs one side only.
#
# The host part makes or reuses the root (tools/setup.sh) and runs the rest
# inside it (tools/inroot). Set B to choose the build directory (default
# build), or EXE (a path inside the checkout, such as wt-old/build/imsvc.exe)
# to run that executable instead of building one, for a comparison with
# another version. Everything listens on 127.0.0.1 only, and everything started here
# (sinks, Postfix, the wineserver and the prefix's processes) is stopped by
# its PID on exit.
set -euo pipefail

if [ "${1:-}" != --in-root ]; then
    here=$(cd "$(dirname "$0")" && pwd)
    bash "$here/setup.sh"
    exec "$here/inroot" bash tools/bench-queue.sh --in-root "${B:-build}" "${1:-both}" \
        "${RUNS:-3}" "${ONE_MESSAGES:-200}" "${EXE:-}" "${SETTLE:-65}" </dev/null
fi
B=$2
WHICH=$3
RUNS=$4
ONE_MESSAGES=$5
EXE=$6
SETTLE=$7
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

# sampler_start PIDFILE OUT: every half second, the PSS of the processes
# whose roots PIDFILE lists (with their descendants when TREE=1); the
# largest sum goes to OUT.
sampler_start() {
    local pidfile=$1 out=$2 tree=$3
    echo 0 >"$out"
    (
        peak=0
        while [ -s "$pidfile" ]; do
            # shellcheck disable=SC2046
            if [ "$tree" = 1 ]; then v=$(pss_kb $(tree_pids $(cat "$pidfile")))
            else v=$(pss_kb $(cat "$pidfile")); fi
            if [ "$v" -gt "$peak" ]; then peak=$v; echo "$peak" >"$out"; fi
            sleep 0.5
        done
    ) &
    SAMPLER_PID=$!
}

sampler_stop() {
    [ -n "$SAMPLER_PID" ] || return 0
    kill "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=
}

# side_ticks: CPU ticks of the side being measured (SIDE_PIDS; with their
# descendants when SIDE_TREE=1).
side_ticks() {
    # shellcheck disable=SC2046,SC2086
    if [ "$SIDE_TREE" = 1 ]; then cpu_ticks $(tree_pids $SIDE_PIDS); else cpu_ticks $SIDE_PIDS; fi
}

# per_message TICKS HZ: CPU ms per message.
per_message() {
    awk -v c="$1" -v hz="$2" -v m="$MESSAGES" 'BEGIN { printf "%.2f", 1000 * c / hz / m }'
}

# The time the bench last removed files; until it knows better, now (a bench
# or a test may have run just before it).
QUIET_SINCE=$(now)
removed_files() { QUIET_SINCE=$(now); }

# ready PIDFILE PID...: wait until SETTLE seconds have passed since
# QUIET_SINCE, then write the side's PIDs to PIDFILE; the load follows at
# once (tools/profile-queue.sh takes the file for the load's start).
ready() {
    local pidfile=$1 left
    shift
    left=$(awk -v s="$SETTLE" -v q="$QUIET_SINCE" -v n="$(now)" \
           'BEGIN { l = s - (n - q); printf "%d", (l > 0 ? l + 1 : 0) }')
    if [ "$left" -gt 0 ]; then
        log "waiting $left s for the file system to forget the files removed last"
        sleep "$left"
    fi
    echo "$*" >"$pidfile"
}

# drive PORT SINKOUT NAME: the load into PORT; sets ACCEPT_S, DELIVER_S,
# CPU_MS (CPU ms per message), SERVER_MS (the part of it of the side's
# wineserver, SIDE_SERVER; 0 without one) and ONE_MS (one session's ms per
# message).
drive() {
    local port=$1 sinkout=$2 name=$3 t0 t1 t2 n rc c0 c1 s0 s1 hz
    hz=$(getconf CLK_TCK)
    log "$name: smtp-source -s $SESSIONS -m $MESSAGES -l $SIZE to 127.0.0.1:$port"
    c0=$(side_ticks)
    # shellcheck disable=SC2086
    s0=$(cpu_ticks $SIDE_SERVER)
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
    c1=$(side_ticks)
    # shellcheck disable=SC2086
    s1=$(cpu_ticks $SIDE_SERVER)
    DELIVER_S=$(awk -v a="$t0" -v b="$t2" 'BEGIN { printf "%.3f", b - a }')
    CPU_MS=$(per_message "$((c1 - c0))" "$hz")
    SERVER_MS=$(per_message "$((s1 - s0))" "$hz")
    log "$name: all $MESSAGES at the sink after $DELIVER_S s; $CPU_MS CPU ms per message"
    t0=$(now)
    set +e
    timeout "$DEADLINE" smtp-source -s 1 -m "$ONE_MESSAGES" -l "$SIZE" -f "$FROM" -t "$TO" \
        -M client.example "127.0.0.1:$port" >"$WORK/source-$name-one.out" 2>&1
    rc=$?
    set -e
    t1=$(now)
    if [ "$rc" != 0 ]; then
        log "$name: smtp-source -s 1 failed (exit $rc):"; tail -5 "$WORK/source-$name-one.out" >&2
        return 1
    fi
    ONE_MS=$(awk -v a="$t0" -v b="$t1" -v m="$ONE_MESSAGES" 'BEGIN { printf "%.2f", 1000 * (b - a) / m }')
    log "$name: one session: $ONE_MS ms per message"
}

# run_imsvc R: one imsvc side; sets A_* for run R.
run_imsvc() {
    local r=$1 pid
    local exe=${EXE:-$B/imsvc.exe}
    if [ -z "$EXE" ]; then
        make -s -f Makefile.mingw B="$B" "$exe" >"$WORK/build.log" 2>&1 ||
            { tail -20 "$WORK/build.log" >&2; return 1; }
    fi
    [ -f "$exe" ] || { echo "bench-queue: no executable $exe" >&2; return 1; }
    wp_create
    bench_install "$exe" "$SVC_PORT" "$SINK_A" "$WORK/imsvc.log"
    SINK_PIDS=()
    sink_start "$SINK_A" "$WORK/sink-a-$r.out"
    imsvc start >>"$WORK/imsvc.log" || { cat "$WORK/imsvc.log" >&2; return 1; }
    wait_port "$SVC_PORT"
    pid=$(wp_service_pid) || { log "no service process found"; return 1; }
    ready "$WORK/pids-a" "$pid" "$WP_SERVER_PID"
    SIDE_PIDS="$pid $WP_SERVER_PID" SIDE_TREE=0 SIDE_SERVER=$WP_SERVER_PID
    sampler_start "$WORK/pids-a" "$WORK/pss-a" 0
    # VmHWM is a peak already; the sampler above keeps the PSS.
    drive "$SVC_PORT" "$WORK/sink-a-$r.out" imsvc
    A_ACCEPT[$r]=$(fdiv "$MESSAGES" "$ACCEPT_S") A_DELIVER[$r]=$(fdiv "$MESSAGES" "$DELIVER_S")
    A_CPU[$r]=$CPU_MS A_ONE[$r]=$ONE_MS A_SRV[$r]=$SERVER_MS
    A_HWM[$r]=$(status_kb "$pid" VmHWM)
    : >"$WORK/pids-a"
    sampler_stop
    A_PSS[$r]=$(cat "$WORK/pss-a")
    A_SINK[$r]=$(sink_count "$WORK/sink-a-$r.out")
    sleep 3   # the status file is rewritten every 2 s
    A_GROUP[$r]=$(imsvc status 2>/dev/null | tr -d '\r' |
                  awk '/^Commits:/ { print $2 " commits in " $6 " flushes" }')
    imsvc stop >/dev/null || true
    wp_destroy
    removed_files
    bench_stop_sinks
    SINK_PIDS=()
}

# run_postfix R: one Postfix side, a fresh instance; sets B_* for run R.
run_postfix() {
    local r=$1
    SINK_PIDS=()
    sink_start "$SINK_B" "$WORK/sink-b-$r.out"
    rm -rf "$WORK/postfix"
    removed_files
    pf_start "$PF_PORT" "$SINK_B"
    ready "$WORK/pids-b" "$PF_PID"
    SIDE_PIDS=$PF_PID SIDE_TREE=1 SIDE_SERVER=
    sampler_start "$WORK/pids-b" "$WORK/pss-b" 1
    drive "$PF_PORT" "$WORK/sink-b-$r.out" postfix
    B_ACCEPT[$r]=$(fdiv "$MESSAGES" "$ACCEPT_S") B_DELIVER[$r]=$(fdiv "$MESSAGES" "$DELIVER_S")
    B_CPU[$r]=$CPU_MS B_ONE[$r]=$ONE_MS
    : >"$WORK/pids-b"
    sampler_stop
    B_PSS[$r]=$(cat "$WORK/pss-b")
    B_SINK[$r]=$(sink_count "$WORK/sink-b-$r.out")
    bench_stop_postfix
    removed_files
    PF_DIR='' PF_PID=''
    bench_stop_sinks
    SINK_PIDS=()
}

declare -a A_ACCEPT A_DELIVER A_CPU A_ONE A_HWM A_PSS A_SINK A_GROUP A_SRV
declare -a B_ACCEPT B_DELIVER B_CPU B_ONE B_PSS B_SINK
do_a() { [ "$WHICH" = both ] || [ "$WHICH" = imsvc ]; }
do_b() { [ "$WHICH" = both ] || [ "$WHICH" = postfix ]; }
for r in $(seq 1 "$RUNS"); do
    log "run $r of $RUNS"
    if [ $((r % 2)) = 1 ]; then
        if do_a; then run_imsvc "$r"; fi
        if do_b; then run_postfix "$r"; fi
    else
        if do_b; then run_postfix "$r"; fi
        if do_a; then run_imsvc "$r"; fi
    fi
done

ratio() { [ -n "${1:-}" ] && [ -n "${2:-}" ] && [ "$1" != - ] && [ "$2" != - ] &&
          awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }' || echo -; }
mib() { [ -n "${1:-}" ] && awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' || echo -; }
row() { printf '%-26s %10s %10s %10s\n' "$@"; }

echo
echo "load: smtp-source -s $SESSIONS -m $MESSAGES -l $SIZE (one connection per message), then"
echo "smtp-source -s 1 -m $ONE_MESSAGES; executable ${EXE:-$B/imsvc.exe}; $RUNS run(s), the sides taking turns;"
echo "each load started $SETTLE s or more after the bench last removed files"
declare -a R_ACC R_DEL R_PSS R_CPU R_ONE
for r in $(seq 1 "$RUNS"); do
    echo
    echo "run $r"
    row "" imsvc postfix imsvc/pf
    R_ACC[$r]=$(ratio "${A_ACCEPT[$r]:-}" "${B_ACCEPT[$r]:-}")
    R_DEL[$r]=$(ratio "${A_DELIVER[$r]:-}" "${B_DELIVER[$r]:-}")
    R_PSS[$r]=$(ratio "${A_PSS[$r]:-}" "${B_PSS[$r]:-}")
    R_CPU[$r]=$(ratio "${A_CPU[$r]:-}" "${B_CPU[$r]:-}")
    R_ONE[$r]=$(ratio "${A_ONE[$r]:-}" "${B_ONE[$r]:-}")
    row "accepted msg/s" "${A_ACCEPT[$r]:--}" "${B_ACCEPT[$r]:--}" "${R_ACC[$r]}"
    row "delivered msg/s" "${A_DELIVER[$r]:--}" "${B_DELIVER[$r]:--}" "${R_DEL[$r]}"
    row "peak PSS MiB" "$(mib "${A_PSS[$r]:-}")" "$(mib "${B_PSS[$r]:-}")" "${R_PSS[$r]}"
    row "CPU ms per message" "${A_CPU[$r]:--}" "${B_CPU[$r]:--}" "${R_CPU[$r]}"
    row "one session ms/message" "${A_ONE[$r]:--}" "${B_ONE[$r]:--}" "${R_ONE[$r]}"
    row "messages at the sink" "${A_SINK[$r]:--}" "${B_SINK[$r]:--}" ""
    if do_a; then
        printf '%-26s %10s\n' "imsvc VmHWM MiB" "$(mib "${A_HWM[$r]:-}")"
        printf '%-26s %10s   (of the CPU ms per message above)\n' "imsvc wineserver CPU ms" \
            "${A_SRV[$r]:--}"
        printf '%-26s %s\n' "imsvc group commit" "${A_GROUP[$r]:-?} (imsvc status)"
    fi
done
echo
echo "median of $RUNS run(s)"
row "" imsvc postfix imsvc/pf
row "accepted msg/s" "$(median "${A_ACCEPT[@]:-}")" "$(median "${B_ACCEPT[@]:-}")" "$(median "${R_ACC[@]}")"
row "delivered msg/s" "$(median "${A_DELIVER[@]:-}")" "$(median "${B_DELIVER[@]:-}")" "$(median "${R_DEL[@]}")"
row "peak PSS MiB" "$(mib "$(median "${A_PSS[@]:-}")")" "$(mib "$(median "${B_PSS[@]:-}")")" "$(median "${R_PSS[@]}")"
row "CPU ms per message" "$(median "${A_CPU[@]:-}")" "$(median "${B_CPU[@]:-}")" "$(median "${R_CPU[@]}")"
row "one session ms/message" "$(median "${A_ONE[@]:-}")" "$(median "${B_ONE[@]:-}")" "$(median "${R_ONE[@]}")"
if do_a; then printf '%-26s %10s\n' "imsvc wineserver CPU ms" "$(median "${A_SRV[@]:-}")"; fi
echo "targets (issue 14): msg/s ratios >= 2.0, PSS ratio <= 0.5, one session ratio <= 1.0"
