#!/usr/bin/env bash
# test_recovery.sh - a commit log that the next start cannot read is kept,
# reported and replayed later; nothing acknowledged is lost or delivered twice.
#
# The service runs under Wine's SCM on 127.0.0.1:2621 and relays
# (RelayAddresses 127.0.0.1/32) to its SmartHost 127.0.0.1:2622, where
# nothing listens at first, so every message is deferred and stays queued
# (RetryIntervals 2s, RetryEvery 2s). One SMTP session sends a message of
# 1.5 MiB (larger than the log takes inline: only its envelope is logged,
# its content is a file) and 10 small ones; right after the last 250 the
# sender kills the service's Wine process with SIGKILL, so the commit log
# that holds them survives (a log lives until a second without commits).
#
# Then the test makes the state a power loss would leave, which only the log
# can repair: the big message's content goes back to Queue\tmp (its rename
# never reached the disk) and its envelope goes; every other small message
# loses its files. A Windows program built by the test (tools/hold_file.c),
# run in the same prefix, holds the log open with FILE_SHARE_DELETE only:
# the service cannot read it, but a delete would succeed (and take effect
# when the holder lets go), so the log is still there afterwards only if the
# service chose to keep it.
#
# Start with the log held, and smtp_sink.py now listening on 2622: the
# service runs and accepts a new message; the log and the big content in
# tmp\ are still there; event 4160 names the log with location 0x00120021
# and ERROR_SHARING_VIOLATION; the lost messages are not queued; those that
# were not lost are delivered (and so removed while the log is kept). Stop,
# let go of the log (it must still exist), start again: every acknowledged
# message reaches the sink exactly once (the lost ones restored from the
# log, none of those delivered meanwhile brought back), event 1100 counts
# the restored ones, and the log and tmp\ content are gone. The sink and the
# holder are stopped by their PIDs, the prefix destroyed, on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/assert.sh
. tests/lib/queue.sh

PORT=2621
SINK_PORT=2622
SMALL=10
BIG=$((1536 * 1024))

W=
SINK_PID=
HOLD_PID=

sink_stop() {
    [ -n "$SINK_PID" ] || return 0
    kill "$SINK_PID" 2>/dev/null || true
    wait "$SINK_PID" 2>/dev/null || true
    SINK_PID=
}

cleanup() {
    set +e
    sink_stop
    if [ -n "$HOLD_PID" ]; then
        kill "$HOLD_PID" 2>/dev/null
        wait "$HOLD_PID" 2>/dev/null
    fi
    wp_destroy
    [ -n "$W" ] && rm -rf "$W"
}
trap cleanup EXIT

W=$(mktemp -d /tmp/imsvc-recovery.XXXXXX)
wp_create

exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
data_dir="$WINEPREFIX/drive_c/ProgramData/IMSvc"
qdir="$data_dir/Queue"
mkdir -p "$exe_dir"
cp "${B:-build}/imsvc.exe" "$exe_dir/"
x86_64-w64-mingw32-gcc -O2 -static -o "$exe_dir/hold_file.exe" tests/integration/tools/hold_file.c
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null; }
state() { imsvc status 2>/dev/null | tr -d '\r' | awk '$1 == "State:" { print $2 }'; }
is_state() { [ "$(state)" = "$1" ]; }

# The Linux PID of this prefix's service process (as in test_crash.sh): Wine
# shows the Windows command line as the process's, and the prefix is in its
# environment.
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

# send MARK SMALL BIG [KILL_PID]: one session sends a BIG-octet message (if
# BIG > 0) and SMALL small ones; each Message-ID is logged to $W/acked once
# its 250 arrives; with KILL_PID, that process gets SIGKILL right after the
# last 250. Every message ends with "-- end of <message-id>".
send() {
    python3 - "$PORT" "$@" <<'EOF' >>"$W/acked"
import os, signal, smtplib, sys
port, mark, small, big = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
kill_pid = int(sys.argv[5]) if len(sys.argv) > 5 else 0
line = "".join(chr(0x41 + i % 26) for i in range(76)) + "\r\n"
s = smtplib.SMTP("127.0.0.1", port, timeout=120)
s.ehlo("client.recovery.test")
sizes = ([big] if big else []) + [3000] * small
for i, size in enumerate(sizes):
    mid = "<rc-%s-%d.%d@recovery.test>" % (mark, i, os.getpid())
    head = ("From: <alice@recovery.test>\r\nTo: <bob@remote.test>\r\n"
            "Subject: recovery %s %d\r\nMessage-ID: %s\r\n\r\n" % (mark, i, mid))
    msg = head + line * (size // len(line)) + "-- end of %s\r\n" % mid
    s.sendmail("alice@recovery.test", ["bob@remote.test"], msg.encode("ascii"))
    print(mid, flush=True)
if kill_pid:
    os.kill(kill_pid, signal.SIGKILL)
else:
    s.quit()
EOF
}

# Message-IDs of the whole copies at the sink, one line per copy.
arrived() {
    python3 - "$W/sink" <<'EOF'
import os, re, sys
d = sys.argv[1]
for name in sorted(os.listdir(d)):
    if not name.endswith(".eml"):
        continue
    text = open(os.path.join(d, name), "rb").read().decode("latin-1")
    m = re.search(r"^Message-ID: *(<[^>\r\n]*>)", text, re.M | re.I)
    if m and ("\n-- end of %s" % m.group(1)) in text:
        print(m.group(1))
EOF
}
# How many acknowledged messages are not at the sink yet.
missing() { sort -u "$W/acked" | comm -23 - <(arrived | sort -u) | wc -l; }
none_missing() { [ "$(missing)" = 0 ]; }

OUT= ERR=
run imsvc install
expect_status 0 "install"
for kv in "ListenPort $PORT" "LocalDomains recovery.test" "RelayAddresses 127.0.0.1/32" \
          "SmartHost 127.0.0.1:$SINK_PORT" "SmartHostTls 0" "RetryIntervals 2s" "RetryEvery 2s"; do
    # shellcheck disable=SC2086
    run imsvc config set $kv
    expect_status 0 "config set $kv"
done
run imsvc start
expect_status 0 "start"
wait_for 30 is_state RUNNING && pass "the service is running" || fail "the service is not running: $(state)"

# --- a crash right after the last acknowledgement ------------------------------
: >"$W/acked"
pid=$(svc_pid) || { fail "no service process"; summary; exit 1; }
send before "$SMALL" "$BIG" "$pid" 2>"$W/send.err" || { OUT=$(cat "$W/send.err"); fail "sending the first messages"; }
expect_eq "$(wc -l <"$W/acked")" $((SMALL + 1)) "$((SMALL + 1)) messages acknowledged before the kill"
wait_for 10 bash -c "! kill -0 $pid 2>/dev/null" && pass "the service process was killed" || fail "pid $pid still there"
wait_for 30 is_state STOPPED || fail "the SCM did not notice the kill: $(state)"

# The log that survived, and the power loss only it can repair: the spilled
# content back in tmp\ without its envelope, every other small message gone.
python3 - "$qdir" >"$W/crash.txt" <<'EOF'
import os, sys
q = sys.argv[1]
logs = sorted(n for n in os.listdir(os.path.join(q, "log")) if n.startswith("commit-"))
if not logs:
    sys.exit("no commit log survived the kill")
name = logs[-1]
data = open(os.path.join(q, "log", name), "rb").read()
off, recs = 0, []
while off < len(data):
    nl = data.find(b"\n", off)
    f = data[off:nl].decode("ascii", "replace").split() if nl > 0 else []
    if len(f) != 8 or f[:2] != ["rec", "1"]:
        break
    kind, qid, flags, envlen, clen = f[2], f[3], int(f[4]), int(f[5]), int(f[6])
    tail = nl + 1 + envlen + (clen if flags & 1 else 0)
    end = data.find(b"\n", tail)
    if end < 0 or not data[tail:end].startswith(b"end "):
        break
    recs.append((kind, qid, flags))
    off = end + 1
print("LOG", name)
small = 0
def queued(qid, ext):
    # Queue\active\ID.ext, or Queue\XX\YY\ID.ext once tried: the folder
    # is found, not computed
    import glob
    hits = glob.glob(os.path.join(q, "active", qid + "." + ext)) + \
        glob.glob(os.path.join(q, "[0-9A-F][0-9A-F]", "[0-9A-F][0-9A-F]", qid + "." + ext))
    if len(hits) != 1:
        sys.exit("queued message %s: %d %s files in the queue's folders" % (qid, len(hits), ext))
    return hits[0]
for kind, qid, flags in recs:
    if kind != "C":
        continue
    eml, env = queued(qid, "eml"), queued(qid, "env")
    if not flags & 1:
        os.rename(eml, os.path.join(q, "tmp", qid + ".eml"))
        os.remove(env)
        print("SPILLED", qid)
        continue
    if small % 2 == 0:
        os.remove(eml)
        os.remove(env)
        print("LOST", qid)
    else:
        print("KEPT", qid)
    small += 1
EOF
cat "$W/crash.txt"
log=$(awk '$1 == "LOG" { print $2 }' "$W/crash.txt")
spilled=$(awk '$1 == "SPILLED" { print $2 }' "$W/crash.txt")
n_lost=$(grep -c '^LOST ' "$W/crash.txt" || true)
n_kept=$(grep -c '^KEPT ' "$W/crash.txt" || true)
[ -n "$log" ] && [ -n "$spilled" ] && [ "$n_lost" -ge 2 ] && [ "$n_kept" -ge 2 ] &&
    pass "the surviving log $log holds the big message and $((n_lost + n_kept)) small ones" ||
    fail "the surviving log does not hold the messages just sent (rotated before the kill?)"
restore=$((n_lost + 1))

# --- a start while another program holds the log ------------------------------
wlog="C:\\ProgramData\\IMSvc\\Queue\\log\\$log"
wine 'C:\Program Files\IMSvc\hold_file.exe' "$wlog" delete 'C:\ProgramData\IMSvc\release.flag' \
    </dev/null >"$W/hold.out" 2>&1 &
HOLD_PID=$!
wait_for 30 grep -q '^held' "$W/hold.out" && pass "hold_file holds $log" ||
    { OUT=$(cat "$W/hold.out"); fail "hold_file did not open the log"; }

mkdir "$W/sink"
python3 tests/integration/smtp_sink.py --port "$SINK_PORT" --dir "$W/sink" --pidfile "$W/sink.pid" \
    </dev/null >"$W/sink.log" 2>&1 &
SINK_PID=$!
wait_for 10 test -s "$W/sink.pid" || fail "smtp_sink did not start"

run imsvc start
expect_status 0 "start with the log held"
wait_for 30 is_state RUNNING && pass "the service runs with a log it cannot read" ||
    fail "the service is not running: $(state)"
send during 1 0 2>"$W/send.err" && pass "it accepts mail" || { OUT=$(cat "$W/send.err"); fail "no 250 for a new message"; }
[ -f "$qdir/log/$log" ] && pass "the log is still there" || fail "the log $log is gone"
[ -f "$qdir/tmp/$spilled.eml" ] && pass "the big message's content is still in tmp\\" ||
    fail "tmp\\$spilled.eml is gone"
queued=0
for id in $(awk '$1 == "LOST" || $1 == "SPILLED" { print $2 }' "$W/crash.txt"); do
    [ -n "$(find "$qdir" -path "$qdir/tmp" -prune -o -path "$qdir/log" -prune -o -name "$id.env" -print)" ] &&
        queued=$((queued + 1))
done
expect_eq "$queued" 0 "the lost messages are not queued while the log cannot be read"
run imsvc events --id "$(event_id MSG_SPOOL_LOG_KEPT)"
expect_out "$log" "event 4160 names the log"
expect_out "00120021 00000020" "its data: location 0x00120021, ERROR_SHARING_VIOLATION"
# The messages that were not lost, and the new one, are delivered (and so
# removed) while the log is kept.
n_now=$((n_kept + 1))
count_now() { arrived | sort -u | wc -l; }
at_least() { [ "$(count_now)" -ge "$1" ]; }
wait_for 60 at_least "$n_now" && pass "$n_now messages delivered while the log is kept" ||
    fail "only $(count_now) of $n_now messages delivered while the log is kept"

run imsvc stop
expect_status 0 "stop"
wait_for 30 is_state STOPPED || fail "the service did not stop: $(state)"
touch "$data_dir/release.flag"
wait "$HOLD_PID" || true
HOLD_PID=
grep -q '^released' "$W/hold.out" && pass "hold_file let go of the log" || fail "hold_file: $(cat "$W/hold.out")"
[ -f "$qdir/log/$log" ] && pass "the log is still there once nobody holds it" ||
    fail "the log $log was deleted"

# --- the next start replays it ------------------------------------------------
run imsvc start
expect_status 0 "start with the log readable"
wait_for 30 is_state RUNNING && pass "the service is running" || fail "the service is not running: $(state)"
acked=$(sort -u "$W/acked" | wc -l)
wait_for 90 none_missing && pass "all $acked acknowledged messages reached the smart host" ||
    { fail "$(missing) of $acked acknowledged messages never reached the smart host"; \
      sort -u "$W/acked" | comm -23 - <(arrived | sort -u) | sed 's/^/  missing: /'; }
sleep 3   # a copy brought back by mistake would be on its way by now
dups=$(arrived | sort | uniq -d | wc -l)
expect_eq "$dups" 0 "no message delivered twice"
run imsvc events --id "$(event_id MSG_QUEUE_RECOVERED)"
expect_out ", $restore of them restored from the commit log" "event 1100: $restore messages restored"
[ ! -e "$qdir/log/$log" ] && pass "the replayed log is deleted" || fail "$log is still there"
[ ! -e "$qdir/tmp/$spilled.eml" ] && pass "tmp\\ no longer holds the big content" ||
    fail "tmp\\$spilled.eml is still there"
queue_settle "$data_dir" 30 && pass "the queue is empty" || fail "messages left in the queue"

run imsvc stop
expect_status 0 "stop"
run imsvc uninstall
expect_status 0 "uninstall"
sink_stop
wp_destroy
summary
