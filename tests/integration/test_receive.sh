#!/usr/bin/env bash
# test_receive.sh - the one way into the queue: what the pickup folder now
# shares with SMTP sessions, and pickup on its own thread.
#
# The service runs in a private prefix on 127.0.0.1:2720 with LocalDomains
# recv.test, RelayAddresses 127.0.0.1/32 and SmartHost 127.0.0.1:2721, where
# tests/integration/smtp_sink.py stores what it gets. The content filter is
# tools/test_filter.c, answering by each message's X-Test-Filter field.
#   - A pickup file the filter holds waits in Queue\Hold and is reported with
#     event 1120, as an SMTP message is; one whose filter fails is reported
#     with event 4110 naming the file, and stays in Pickup for the next scan.
#   - A pickup file with more than 50 Received fields goes to Badmail as a
#     mail loop; one with 50 is delivered.
#   - While pickup files go through a filter that takes 8 seconds each, a
#     message relayed through SMTP reaches the smart host within 6 seconds
#     (delivery does not wait for pickup), and the slow files are delivered
#     afterwards.
# Every wait is a poll with a deadline; the sink is stopped by its PID and
# the prefix destroyed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/assert.sh

PORT=2720
SINK_PORT=2721
B=${B:-build}
T=$(mktemp -d /tmp/imsvc-receive.XXXXXX)
SINK_PID=

sink_stop() {
    [ -n "$SINK_PID" ] || return 0
    kill "$SINK_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$SINK_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$SINK_PID" 2>/dev/null || true
    wait "$SINK_PID" 2>/dev/null || true
    SINK_PID=
}
cleanup() {
    sink_stop
    wp_destroy
    rm -rf "$T"
}
trap cleanup EXIT
wp_create

exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
data="$WINEPREFIX/drive_c/ProgramData/IMSvc"
mkdir -p "$exe_dir" "$T/sink"
cp "$B/imsvc.exe" "$exe_dir/"
x86_64-w64-mingw32-gcc -O2 -static -o "$exe_dir/test_filter.exe" tests/integration/tools/test_filter.c -lws2_32
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null; }
in_drop() { grep -l "^Subject: $1" "$data"/Drop/*.eml 2>/dev/null | head -1 || true; }
has_drop() { [ -n "$(in_drop "$1")" ]; }
in_sink() { grep -l "^Subject: $1" "$T"/sink/*.eml 2>/dev/null | head -1 || true; }
has_sink() { [ -n "$(in_sink "$1")" ]; }
# pickup NAME HEADER-LINES...: a pickup file, written aside and moved in.
pickup() {
    local name=$1
    shift
    printf '%s\r\n' "$@" "" "body of $name" >"$data/Pickup/$name.tmp"
    mv "$data/Pickup/$name.tmp" "$data/Pickup/$name.eml"
}

python3 tests/integration/smtp_sink.py --port "$SINK_PORT" --dir "$T/sink" \
    --pidfile "$T/sink.pid" </dev/null >>"$T/sink.log" 2>&1 &
SINK_PID=$!
wait_for 10 test -s "$T/sink.pid" || { echo "smtp_sink did not start" >&2; cat "$T/sink.log" >&2; exit 1; }

run imsvc install
expect_status 0 "install"
for kv in "ListenPort $PORT" "LocalDomains recv.test" "RelayAddresses 127.0.0.1/32" \
          "SmartHost 127.0.0.1:$SINK_PORT" "SmartHostTls 0"; do
    imsvc config set ${kv%% *} "${kv#* }" >/dev/null
done
imsvc config set ContentFilter '"C:\Program Files\IMSvc\test_filter.exe"' >/dev/null
run imsvc start
expect_status 0 "start"

# A hold and a failed filter, reported for pickup as for SMTP ---------------------
pickup held "x-sender: app@recv.test" "x-receiver: u1@recv.test" "X-Test-Filter: hold" \
    "Subject: pickup held"
wait_for 20 bash -c "ls '$data'/Queue/Hold/*/*/*.env >/dev/null 2>&1" &&
    pass "a pickup file the filter holds waits in Queue\\Hold" || fail "no held message in Queue\\Hold"
hid=$(basename "$(ls "$data"/Queue/Hold/*/*/*.env 2>/dev/null | head -1)" .env)
[ ! -e "$data/Pickup/held.eml" ] && pass "... and the pickup file was taken" ||
    fail "held pickup file left in Pickup"
run imsvc events --id "$(event_id MSG_MESSAGE_HELD)"
expect_out "$hid" "event 1120 names the held pickup message"
expect_out "held for review" "... with the filter's reason"

pickup crash "x-sender: app@recv.test" "x-receiver: u1@recv.test" "X-Test-Filter: crash" \
    "Subject: pickup crash"
has_event_4110() { imsvc events --id "$(event_id MSG_FILTER_FAILED)" 2>/dev/null | grep -q "pickup file crash.eml"; }
wait_for 20 has_event_4110 && pass "event 4110 names the pickup file whose filter failed" ||
    fail "no event 4110 for the pickup file"
run imsvc events --id "$(event_id MSG_FILTER_FAILED)"
expect_out "exit status 7" "... and the filter's exit status"
sleep 3
[ -e "$data/Pickup/crash.eml" ] && pass "the file stays in Pickup for the next scan" ||
    fail "a pickup file whose filter failed was taken"
n=$(imsvc events --id "$(event_id MSG_FILTER_FAILED)" 2>/dev/null | grep -c "pickup file crash.eml" || true)
[ "$n" = 1 ] && pass "its failure at every scan is logged once a minute" ||
    fail "event 4110 for the same file logged $n times"
rm -f "$data/Pickup/crash.eml"

# The hop limit, for pickup as for SMTP --------------------------------------------
hops() { for i in $(seq 1 "$1"); do echo "Received: from hop$i.example by relay.example; Mon, 23 Nov 2026 10:00:00 +0000"; done; }
mapfile -t h51 < <(hops 51)
mapfile -t h50 < <(hops 50)
pickup loop "x-sender: app@recv.test" "x-receiver: u2@recv.test" "${h51[@]}" "Subject: pickup loop"
pickup fifty "x-sender: app@recv.test" "x-receiver: u2@recv.test" "${h50[@]}" "Subject: pickup fifty"
wait_for 20 test -e "$data/Badmail/pickup-loop.eml.txt" &&
    pass "a pickup file with 51 Received fields goes to Badmail" || fail "looping pickup file not in Badmail"
grep -q "too many hops (more than 50 Received header fields)" "$data/Badmail/pickup-loop.eml.txt" 2>/dev/null &&
    pass "... as a mail loop" || fail "Badmail reason for the loop: $(cat "$data/Badmail/pickup-loop.eml.txt" 2>/dev/null)"
wait_for 20 has_drop "pickup fifty" && pass "a pickup file with 50 Received fields is delivered" ||
    fail "pickup file with 50 hops not delivered"

# Pickup on its own thread: a slow filter does not hold up delivery ----------------
for i in 1 2 3; do
    pickup "slow$i" "x-sender: app@recv.test" "x-receiver: u3@recv.test" "X-Test-Filter: sleep 8" \
        "Subject: pickup slow $i"
done
sleep 3   # the first file is in the filter by now (a pass every 2 seconds)
run swaks --server 127.0.0.1:$PORT --from a@recv.test --to far@remote.test \
    --header "Subject: relayed while filtering" --body "relayed while pickup files are filtered"
expect_status 0 "a message relayed through SMTP is accepted while pickup files are in a slow filter"
if wait_for 6 has_sink "relayed while filtering"; then
    pass "... and reaches the smart host within 6 seconds"
else
    fail "the relayed message did not reach the smart host within 6 seconds"
fi
n=$(ls "$data"/Pickup/slow*.eml 2>/dev/null | wc -l)
[ "$n" -ge 1 ] && pass "... while pickup files were still being filtered ($n waiting)" ||
    fail "no pickup file was still waiting: the test did not overlap the slow filter"
all_slow() { has_drop "pickup slow 1" && has_drop "pickup slow 2" && has_drop "pickup slow 3"; }
wait_for 45 all_slow && pass "the slowly filtered pickup files are delivered too" ||
    fail "slow pickup files not all delivered: $(ls "$data"/Pickup 2>&1 | tr '\n' ' ')"

run imsvc stop
expect_status 0 "stop"
run imsvc uninstall
summary
