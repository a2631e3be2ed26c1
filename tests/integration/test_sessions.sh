#!/usr/bin/env bash
# test_sessions.sh - many sessions at once, the session limits, and the
# timeouts that close sessions holding resources, in the running service.
#
# The service is installed and started under Wine's SCM on 127.0.0.1:2651
# with LocalDomains imsvc.test (mail lands in the Drop folder) and IoThreads
# 3. The clients are tests/integration/session_probe.py, whose sockets bind
# other loopback addresses (127.0.1.x, 127.0.2.x...) to look like many
# clients. In turn:
#   (a) 1,000 idle connections from 100 addresses are each greeted with 220;
#       meanwhile a new client sends a whole message within 2 s; imsvc
#       status counts them, its Wine process has a few dozen threads, not
#       one per session; when they go, the count goes back to 0;
#   (a') MaxSessions 30: the 31st connection gets 421 4.7.0, counted;
#   (b) 21 connections from one address: 20 greeted, the 21st gets 421 4.7.0
#       and is closed; one closed, a new one is greeted again; counted;
# Then SendTimeout 5, InactivityTimeout 10 and DataTimeout 20 are set in one
# go (a configuration change restarts the listener, so no session the test
# relies on is open across it), and these run at once:
#   (c) a client that pipelines 10 MiB of NOOPs and never reads its replies
#       slows no other client's message beyond 2 s, and is closed once
#       SendTimeout has passed with its replies untaken; counted;
#   (d) a quiet session gets 421 4.4.2 after InactivityTimeout and is closed,
#       while one paused 12 s inside DATA is not (DataTimeout applies there;
#       a DATA silent beyond it gets 421 4.4.2); 10 bad commands keep the
#       session, the 11th ends it with 421 4.7.0 (MaxProtocolErrors 10);
#       a DATA trickling 10 bytes a second is closed with 421 4.4.2 soon
#       after its first 30 seconds (MinDataRate 500), while one sending
#       1,000 bytes a second for 33 s is accepted; each close counted.
# The trickle sets the pace: the test takes about two minutes. Every client
# started here is stopped by its PID on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
# A thousand sockets in the client, the wineserver and the service.
ulimit -n 8192
. tests/lib/wineprefix.sh
. tests/lib/assert.sh
. tests/lib/queue.sh

PORT=2651
T=$(mktemp -d /tmp/imsvc-sessions.XXXXXX)
BG=()
cleanup() {
    set +e
    for p in "${BG[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    wp_destroy
    rm -rf "$T"
}
trap cleanup EXIT
wp_create

exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
drop="$WINEPREFIX/drive_c/ProgramData/IMSvc/Drop"
mkdir -p "$exe_dir"
cp "${B:-build}/imsvc.exe" "$exe_dir/"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null; }
# Called directly, not through a function, where it runs in the background:
# $! is then the probe's own PID, which the EXIT trap can stop.
PROBE=(python3 tests/integration/session_probe.py "$PORT")
probe() { "${PROBE[@]}" "$@"; }

# field KEY [N]: the Nth word (default 2) of OUT's first line starting with KEY.
field() { awk -v k="$1" -v n="${2:-2}" '$1 == k { print $n; exit }' <<<"$OUT"; }
# le A B / ge A B: numeric comparisons of decimals (false if A is empty).
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 <= b + 0) }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 >= b + 0) }'; }

# expect_status_value LINE KEY WANT WHAT: N from "LINE: ... KEY N" in imsvc
# status. The status file is rewritten every two seconds: wait up to 8 s for
# the value (not when the line is missing altogether), then see it again
# after the next rewrite, so that a count still rising does not pass.
status_text() { imsvc status 2>/dev/null | tr -d '\r' || true; }
# "Refused:      max-sessions N, ..." (name then number) or
# "Sessions:     N inbound, ..." and "I/O:          N threads" (number then name).
status_pick() {
    sed -n -e "s|^$1:.*[ ,]$2 \([0-9][0-9]*\).*|\1|p" \
           -e "s|^$1: *\([0-9][0-9]*\) $2.*|\1|p" \
           -e "s|^$1:.*[ ,]\([0-9][0-9]*\) $2.*|\1|p" | head -1
}
expect_status_value() {
    local v='' i text
    for i in $(seq 1 16); do
        text=$(status_text)
        v=$(status_pick "$1" "$2" <<<"$text")
        if [ "$v" = "$3" ]; then
            sleep 2.2
            text=$(status_text)
            v=$(status_pick "$1" "$2" <<<"$text")
            break
        fi
        grep -q "^$1:" <<<"$text" || break
        sleep 0.5
    done
    OUT=$(grep -E '^(Sessions|I/O|Refused|Closed):' <<<"$text" || echo "no $1 line in imsvc status")
    expect_eq "$v" "$3" "$4 (imsvc status: $1 $2)"
}
config() {
    run imsvc config set "$1" "$2"
    expect_status 0 "config set $1 $2"
}
drop_has() {   # drop_has SUBJECT: how many stored messages carry it
    queue_settle "${drop%/Drop}" || true
    grep -lE "^Subject: $1"$'\r'"?\$" "$drop"/*.eml 2>/dev/null | wc -l || true
}

run imsvc install
expect_status 0 "install"
config ListenPort $PORT
config LocalDomains imsvc.test
config IoThreads 3
run imsvc start
expect_status 0 "start"
SVC=$(wp_service_pid) || SVC=

# (a) ------------------------------------------------------------------------
"${PROBE[@]}" idle 1000 --addrs 100 --message --hold >"$T/idle.out" 2>&1 &
IDLE=$!
BG+=("$IDLE")
for _ in $(seq 1 600); do
    grep -q '^holding' "$T/idle.out" && break
    kill -0 "$IDLE" 2>/dev/null || break
    sleep 0.1
done
OUT=$(cat "$T/idle.out")
expect_eq "$(field connected)" 1000 "1,000 idle connections made from 100 addresses"
expect_eq "$(field greeted)" 1000 "every one of the 1,000 got its 220 ($(field silent) silent, $(field refused) refused)"
ms=$(field message_s)
le "$ms" 2.0 && pass "a new client sent a whole message in $ms s beside 1,000 idle sessions" ||
    fail "a whole message beside 1,000 idle sessions took ${ms:-?} s (wanted at most 2 s)"
grep -q '^message_reply 250 ' <<<"$OUT" && pass "that message got 250 after DATA" ||
    fail "that message was not accepted: $(grep '^message_reply' <<<"$OUT")"
expect_status_value Sessions inbound 1000 "1,000 inbound sessions open"
expect_status_value I/O threads 3 "IoThreads 3 worker threads"
threads=$( [ -n "$SVC" ] && awk '$1 == "Threads:" { print $2 }' "/proc/$SVC/status" 2>/dev/null || true)
le "$threads" 100 && pass "the service's Wine process has $threads threads with 1,000 sessions open" ||
    fail "the service's Wine process has ${threads:-?} threads with 1,000 sessions open"
kill "$IDLE" 2>/dev/null; wait "$IDLE" 2>/dev/null || true
expect_eq "$(drop_has 'while idle sessions wait')" 1 "the message sent beside them is in the Drop folder"
expect_status_value Sessions inbound 0 "the 1,000 closed sessions are all released"

# (a') MaxSessions -------------------------------------------------------------
config MaxSessions 30
sleep 1
run probe idle 31 --addrs 31 --greet-secs 10
expect_eq "$(field greeted)/$(field refused)" 30/1 "MaxSessions 30: 30 greeted, 1 refused"
grep -qE '^refused_line 421 4\.7\.0 .{10,}' <<<"$OUT" && pass "the refusal says 421 4.7.0 and why" ||
    fail "the refusal was not 421 4.7.0 with a reason: $(grep '^refused_line' <<<"$OUT" || echo none)"
expect_status_value Refused max-sessions 1 "the refusal is counted"
config MaxSessions 5000
sleep 1

# (b) ------------------------------------------------------------------------
run probe perip 127.0.1.2 21
expect_eq "$(grep -cE '^conn [0-9]+ 220 ' <<<"$OUT")" 20 "20 sessions from one address greeted"
grep -qE '^conn 21 421 421 4\.7\.0 .{10,}' <<<"$OUT" && pass "the 21st from that address gets 421 4.7.0 and why" ||
    fail "the 21st from one address: $(grep '^conn 21 ' <<<"$OUT" || echo nothing)"
expect_eq "$(field eof_after_421)" yes "the refused connection is closed"
expect_eq "$(field after_close)" 220 "with one of the 20 closed, a new one is greeted ($(field after_close 3) s)"
expect_status_value Refused per-address "$(field refusals)" "the refusals from one address are counted"

# (c) and (d) ----------------------------------------------------------------
config SendTimeout 5
config InactivityTimeout 10
config DataTimeout 20
sleep 1
spawn() {   # spawn NAME PROBE-ARGS...: a probe in the background, its output in $T/NAME.out
    local name=$1
    shift
    "${PROBE[@]}" "$@" >"$T/$name.out" 2>&1 &
    BG+=($!)
}
spawn trickle data --src 127.0.1.20 --plan 10x50 --subject "trickle 10 bytes a second"
spawn steady data --src 127.0.1.21 --plan 1000x33 --subject "steady 1000 bytes a second"
spawn quiet quiet --src 127.0.1.5 --wait 25
spawn paused data --src 127.0.1.6 --plan 100x2,0x12,100x1 --subject "paused in data"
spawn silent data --src 127.0.1.7 --plan 100x1,0x30 --subject "silent in data"

run probe flood --src 127.0.1.3 --concurrent-src 127.0.1.4 --mbytes 10 --bound 30
grep -q '^flood_greeting 220' <<<"$OUT" && pass "the flooding client was greeted" ||
    fail "the flooding client was not greeted"
n=$(field concurrent_ok) max=$(field concurrent_max_s)
ge "$n" 1 && [ "$(field concurrent_fail)" = 0 ] &&
    pass "$n whole messages from another client while the flood ran, none failed" ||
    fail "messages beside the flood: ${n:-0} accepted, $(field concurrent_fail) failed"
le "$max" 2.0 && pass "the slowest of them took $max s (at most 2 s)" ||
    fail "a message beside the flood took ${max:-?} s (wanted at most 2 s)"
# The send cannot stall before the flood starts, so SendTimeout cannot run
# out before 5 s into it; the timer's own granularity gets 10 s more.
closed=$(field closed_at) how=$(field closed_at 3) stalled=$(field stalled_at)
if [ "$closed" != none ] && le "$closed" "$(awk -v s="$stalled" 'BEGIN { print s + 5 + 10 }')" &&
   ge "$closed" 4.5; then
    pass "the client that never reads was closed ($how) $closed s into the flood, its writes stalled at $stalled s"
else
    fail "the client that never reads: closed at ${closed:-?} s ($how), its writes stalled at ${stalled:-?} s, $(field flood_sent) bytes taken (wanted closed by SendTimeout: 5 s to 15 s after the stall)"
fi
expect_status_value Closed send-timeout 1 "the send timeout is counted"

run probe errors --src 127.0.1.8 11
bad=$(awk '$1 == "reply" && $2 <= 10' <<<"$OUT")
[ "$(grep -c '^reply [0-9]* [45][0-9][0-9] ' <<<"$bad")" = 10 ] && ! grep -q ' 421 ' <<<"$bad" &&
    pass "10 bad commands each get an error reply and keep the session" ||
    fail "10 bad commands: $(tr '\n' ';' <<<"$bad")"
grep -qE '^reply 11 421 4\.7\.0 .{10,}' <<<"$OUT" && pass "the 11th bad command ends it with 421 4.7.0" ||
    fail "the 11th bad command: $(grep '^reply 11 ' <<<"$OUT" | tr '\n' ';')"
expect_eq "$(field eof)" yes "and the session is closed"
run probe errors --src 127.0.1.9 10
! grep -q ' 421 ' <<<"$OUT" && [ "$(field eof)" = no ] &&
    pass "a session with 10 bad commands stays open" || fail "a session with 10 bad commands was closed"
expect_status_value Closed protocol-errors 1 "the protocol-error close is counted"

for p in "${BG[@]}"; do wait "$p" 2>/dev/null || true; done
OUT=$(cat "$T/quiet.out")
grep -qE '^reply 421 4\.4\.2 .{10,}' <<<"$OUT" && pass "InactivityTimeout 10: a quiet session gets 421 4.4.2" ||
    fail "InactivityTimeout 10: a quiet session got $(grep '^reply' <<<"$OUT" || echo nothing)"
s=$(field after_s)
ge "$s" 9.5 && le "$s" 15 && pass "after $s s of silence" || fail "after ${s:-?} s of silence (wanted 10 to 15)"
expect_eq "$(field eof)" yes "the quiet session is closed"
OUT=$(cat "$T/paused.out")
grep -qE '^ended [0-9.]+ 250 ' <<<"$OUT" && pass "a 12 s pause inside DATA is not inactivity: 250" ||
    fail "a 12 s pause inside DATA: $(tr '\n' ';' <<<"$OUT")"
OUT=$(cat "$T/silent.out")
s=$(field closed_after)
grep -qE '^closed_after [0-9.]+ 421 4\.4\.2 ' <<<"$OUT" && ge "$s" 19.5 && le "$s" 27 &&
    pass "DataTimeout 20: a DATA silent for 20 s gets 421 4.4.2 ($s s after the 354)" ||
    fail "DataTimeout 20: a silent DATA: $(tr '\n' ';' <<<"$OUT") (wanted 421 4.4.2 20 to 27 s after the 354)"
expect_eq "$(field eof)" yes "the silent DATA session is closed"
expect_status_value Closed inactivity 2 "both timeouts are counted as inactivity"
OUT=$(cat "$T/trickle.out")
s=$(field closed_after)
grep -qE '^closed_after [0-9.]+ 421 4\.4\.2 ' <<<"$OUT" && ge "$s" 29 && le "$s" 40 &&
    pass "MinDataRate: DATA at 10 bytes a second closed with 421 4.4.2 after $s s" ||
    fail "MinDataRate: DATA at 10 bytes a second: $(tr '\n' ';' <<<"$OUT") (wanted 421 4.4.2 30 to 40 s after the 354)"
expect_eq "$(field eof)" yes "the trickling session is closed"
OUT=$(cat "$T/steady.out")
grep -qE '^ended [0-9.]+ 250 ' <<<"$OUT" && pass "DATA at 1,000 bytes a second for 33 s is accepted" ||
    fail "DATA at 1,000 bytes a second: $(tr '\n' ';' <<<"$OUT")"
expect_status_value Closed data-rate 1 "the data-rate close is counted"
expect_eq "$(drop_has 'steady 1000 bytes a second')/$(drop_has 'paused in data')" 1/1 \
    "the steady and the paused messages are stored"
expect_eq "$(drop_has 'trickle 10 bytes a second')/$(drop_has 'silent in data')" 0/0 \
    "the closed ones are not"

run imsvc stop
expect_status 0 "stop"
run imsvc uninstall
expect_status 0 "uninstall"
summary
