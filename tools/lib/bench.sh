# bench.sh - shell shared by the benchmarks (tools/bench-queue.sh,
# tools/bench-sessions.sh), sourced inside the root.
#
# Defines functions only. The caller sets BENCH_NAME (the prefix of log
# lines) and WORK (a scratch directory), and owns the state these functions
# fill in: SINK_PIDS (every smtp-sink started), PF_DIR and PF_PID (the
# private Postfix). Everything listens on 127.0.0.1 only; bench_stop_sinks
# and bench_stop_postfix stop what was started, by PID, from the caller's
# EXIT trap.

log() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; }
now() { date +%s.%N; }
fdiv() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "-" }'; }

# smtp-sink -c writes "\r...mesg=N" after each message: the last N.
sink_count() {
    tail -c 300 "$1" | tr '\r' '\n' | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2 | grep . || echo 0
}

# sink_start PORT OUTFILE: an smtp-sink on 127.0.0.1:PORT counting messages.
sink_start() {
    smtp-sink -u nobody -c -m 512 "127.0.0.1:$1" 1024 >"$2" 2>&1 </dev/null &
    SINK_PIDS+=($!)
    for _ in $(seq 1 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    log "smtp-sink did not listen on $1"; return 1
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s).
wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    log "nothing listens on 127.0.0.1:$1"; return 1
}

# status_kb PID FIELD: a field of /proc/PID/status (kB, or a count).
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

# pf_start PORT RELAY_PORT: a private Postfix instance (its configuration and
# queue under $WORK/postfix, no chroot) whose smtpd listens on 127.0.0.1:PORT
# and relays everything from 127.0.0.0/8 to [127.0.0.1]:RELAY_PORT.
pf_start() {
    local port=$1 relay=$2
    PF_DIR=$WORK/postfix
    mkdir -p "$PF_DIR/etc" "$PF_DIR/queue" "$PF_DIR/data"
    chown postfix "$PF_DIR/data"
    cp /etc/postfix/dynamicmaps.cf "$PF_DIR/etc/" 2>/dev/null || true
    cat >"$PF_DIR/etc/main.cf" <<PFEOF
compatibility_level = 3.10
queue_directory = $PF_DIR/queue
data_directory = $PF_DIR/data
maillog_file = $PF_DIR/maillog
maillog_file_prefixes = /tmp
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.bench.test
mydomain = bench.test
mydestination =
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$relay
smtputf8_enable = no
PFEOF
    # The stock master.cf, no chroot, smtpd on our port only.
    awk -v p="$port" '
        /^#/ || NF < 8 { print; next }
        $1 == "smtp" && $2 == "inet" { $5 = "n"; $1 = "127.0.0.1:" p; print; next }
        $2 == "inet" { next }
        { $5 = "n"; print }' /etc/postfix/master.cf >"$PF_DIR/etc/master.cf"
    postfix -c "$PF_DIR/etc" start >/dev/null 2>&1 || { cat "$PF_DIR/maillog" >&2 2>/dev/null; return 1; }
    PF_PID=$(tr -d ' ' <"$PF_DIR/queue/pid/master.pid")
    wait_port "$port"
}

bench_stop_postfix() {
    [ -n "${PF_DIR:-}" ] || return 0
    postfix -c "$PF_DIR/etc" stop >/dev/null 2>&1 || true
    if [ -n "${PF_PID:-}" ]; then
        for _ in $(seq 1 50); do kill -0 "$PF_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$PF_PID" 2>/dev/null || true
    fi
    return 0
}

bench_stop_sinks() {
    local p
    for p in "${SINK_PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true   # killed: not a failure under set -e
    done
    return 0
}

# tree_pids ROOT...: each ROOT and all its descendants that are alive.
tree_pids() {
    ps -e -o pid=,ppid= 2>/dev/null | awk -v roots="$*" '
        BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) want[r[i]] = 1 }
        { parent[$1] = $2; pids[++m] = $1 }
        END {
            do {
                grown = 0
                for (i = 1; i <= m; i++)
                    if (!(pids[i] in want) && (parent[pids[i]] in want)) { want[pids[i]] = 1; grown = 1 }
            } while (grown)
            for (p in want) if (p != "") print p
        }'
}

# pss_kb PID...: the proportional set size of these processes together, in
# kB (shared pages counted once over all of them, as the kernel divides them).
pss_kb() {
    local p t=0 v
    for p in "$@"; do
        v=$(awk '$1 == "Pss:" { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null) || v=
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

# cpu_ticks PID...: user + system clock ticks these processes have used,
# with what their children that have ended used (cutime, cstime): a Postfix
# smtpd that exits during the load is counted through its master.
cpu_ticks() {
    local p t=0 v
    for p in "$@"; do
        # the fields after the command name, which may hold spaces
        v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 + $14 + $15 }') || v=
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

# median A B C...: the middle value (the lower middle of an even count).
median() {
    printf '%s\n' "$@" | grep -v '^-*$' | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'
}

# bench_install EXE PORT SINK_PORT LOG: in $WINEPREFIX, EXE installed as the
# service on 127.0.0.1:PORT, relaying everything from 127.0.0.1 to an
# smtp-sink on SINK_PORT (its SmartHost, in clear), with the per-address
# limit raised to 1000: the load's sessions, and the ones still closing, all
# come from one address (a version from before that limit has no such
# value). Its output goes to LOG; imsvc() runs a command of it.
bench_install() {
    local exe=$1 port=$2 sink=$3 log=$4 kv
    local dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
    mkdir -p "$dir"
    cp "$exe" "$dir/imsvc.exe"
    imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null 2>&1 | tr -d '\r'; return "${PIPESTATUS[0]}"; }
    imsvc install >"$log"
    for kv in "ListenPort $port" "LocalDomains bench.test" "RelayAddresses 127.0.0.1/32" \
              "SmartHost 127.0.0.1:$sink" "SmartHostTls 0"; do
        # shellcheck disable=SC2086
        imsvc config set $kv >>"$log" || { cat "$log" >&2; return 1; }
    done
    if imsvc config show | grep -q '^MaxSessionsPerAddress'; then
        imsvc config set MaxSessionsPerAddress 1000 >>"$log" || { cat "$log" >&2; return 1; }
    fi
}
