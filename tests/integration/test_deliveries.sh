#!/usr/bin/env bash
# test_deliveries.sh - the queue's outbound deliveries hold no thread each.
#
# The service is installed and started under Wine's SCM on 127.0.0.1:2681
# with RelayAddresses 127.0.0.1, SmartHost 127.0.0.1:2682 (no TLS),
# MaxPerDestination 40 and short retries. On 2682 first listens a tarpit: it
# accepts every connection and never says a word, so each delivery waits
# for a greeting that does not come. Then:
#   a. 40 messages relayed through the service open 40 connections to the
#      tarpit, and imsvc status counts 40 outbound connections;
#   b. with the 40 waiting, the service's Wine process has no more than 10
#      threads beyond what it had idle (a thread per delivery would be 40);
#   c. the tarpit goes (its sockets reset); a real sink (smtp_sink.py) takes
#      its port, and every one of the 40 messages arrives there once, on a
#      retry, and the queue empties.
# Every process the test starts is stopped by its PID on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/assert.sh
. tests/lib/queue.sh

PORT=2681            # the imsvc service
SINK_PORT=2682       # the tarpit, then smtp_sink.py
N=40
T=$(mktemp -d /tmp/imsvc-deliveries.XXXXXX)
BG=()
cleanup() {
    set +e
    for p in "${BG[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    wp_destroy
    rm -rf "$T"
}
trap cleanup EXIT

threads() { ls "/proc/$1/task" 2>/dev/null | wc -l; }

wp_create
exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
data="$WINEPREFIX/drive_c/ProgramData/IMSvc"
mkdir -p "$exe_dir"
cp "${B:-build}/imsvc.exe" "$exe_dir/"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null; }

# The tarpit: accepts, never writes; its count of connections held goes to
# a file each time it changes.
cat >"$T/tarpit.py" <<'EOF'
import socket, sys, select
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(128)
held = []
def note():
    with open(sys.argv[2] + ".new", "w") as f:
        f.write("%d\n" % len(held))
    import os
    os.replace(sys.argv[2] + ".new", sys.argv[2])
note()
while True:
    r, _, _ = select.select([srv] + held, [], [])
    for s in r:
        if s is srv:
            c, _ = srv.accept()
            held.append(c)
        elif not s.recv(4096):
            held.remove(s)
            s.close()
    note()
EOF
python3 "$T/tarpit.py" "$SINK_PORT" "$T/held" &
TARPIT=$!
BG+=("$TARPIT")
wait_for 10 test -s "$T/held" || { echo "the tarpit did not start" >&2; exit 1; }

run imsvc install
expect_status 0 "install"
for kv in "ListenPort $PORT" "LocalDomains imsvc.test" "RelayAddresses 127.0.0.1" \
          "SmartHost 127.0.0.1:$SINK_PORT" "SmartHostTls 0" "MaxPerDestination $N" \
          "RetryIntervals 2s,2s" "RetryEvery 2s"; do
    run imsvc config set ${kv%% *} "${kv#* }"
    expect_status 0 "config set ${kv%% *} ${kv#* }"
done
run imsvc start
expect_status 0 "start"
PID=$(wp_service_pid) || { echo "no service process" >&2; exit 1; }

# The idle figure: after one status rewrite, with nothing queued and the
# thread pool's idle workers gone (Wine ends them after 5 s).
sleep 7
idle=$(threads "$PID")

# a. N messages in one session.
run python3 - "$PORT" "$N" <<'EOF'
import smtplib, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
for i in range(n):
    body = ("From: <alice@imsvc.test>\r\nTo: <bob%d@remote.test>\r\n"
            "Subject: delivery %d\r\nMessage-ID: <dl-%d@imsvc.test>\r\n\r\nbody %d\r\n") % (i, i, i, i)
    s.sendmail("alice@imsvc.test", ["bob%d@remote.test" % i], body)
s.quit()
print("sent", n)
EOF
expect_status 0 "a: $N messages accepted for the smart host"
held_all() { [ "$(cat "$T/held")" = "$N" ]; }
if wait_for 30 held_all; then
    pass "a: the tarpit holds $N connections from the service"
else
    fail "a: the tarpit holds $(cat "$T/held") connections, wanted $N"
fi
status_out() {
    OUT=$(imsvc status 2>/dev/null | tr -d '\r') || true
    grep -qE "^Sessions:.* $N outbound" <<<"$OUT"
}
if wait_for 10 status_out; then
    pass "a: imsvc status counts $N outbound connections"
else
    fail "a: imsvc status does not count $N outbound connections"
fi

# b. Idle pool workers end after 5 s: look once they have.
sleep 7
busy=$(threads "$PID")
if [ "$busy" -le $((idle + 10)) ]; then
    pass "b: $N waiting deliveries: $busy threads, $idle when idle (no thread per delivery)"
else
    fail "b: $N waiting deliveries: $busy threads, $idle when idle"
fi

# c. The tarpit goes; the sink takes its place; every message arrives once.
kill "$TARPIT"
wait "$TARPIT" 2>/dev/null || true
mkdir -p "$T/sink"
python3 tests/integration/smtp_sink.py --port "$SINK_PORT" --dir "$T/sink" \
    --pidfile "$T/sink.pid" >"$T/sink.log" 2>&1 &
BG+=("$!")
wait_for 10 test -s "$T/sink.pid" || { echo "smtp_sink did not start" >&2; cat "$T/sink.log" >&2; exit 1; }
arrived() { [ "$(ls "$T/sink"/*.eml 2>/dev/null | wc -l)" -ge "$N" ]; }
if wait_for 60 arrived; then
    pass "c: all $N messages arrived at the sink after the tarpit went"
else
    fail "c: $(ls "$T/sink"/*.eml 2>/dev/null | wc -l) of $N messages arrived"
fi
if queue_settle "$data" 30; then
    pass "c: the queue is empty"
else
    fail "c: the queue did not empty"
fi
dups=$(grep -h '^Subject: ' "$T/sink"/*.eml 2>/dev/null | sort | uniq -d | wc -l)
expect_eq "$dups" 0 "c: no message arrived twice"
got=$(grep -h '^Subject: ' "$T/sink"/*.eml 2>/dev/null | sort -u | wc -l)
expect_eq "$got" "$N" "c: $N different messages arrived"

run imsvc stop
expect_status 0 "stop"
summary
