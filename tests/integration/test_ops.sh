#!/usr/bin/env bash
# test_ops.sh - operating the queue: the content filter, the pickup folder,
# `imsvc queue list|show|retry|delete` and `imsvc status`.
#
# The service runs in a private prefix on 127.0.0.1:2531 with LocalDomains
# ops.test and a SmartHost nobody listens on (so relayed mail stays
# deferred). A content filter built for the test (tools/test_filter.c)
# accepts, rejects (the client gets 554 5.7.1 with its reason), holds (the
# message waits in Queue\Hold until `queue retry` releases it) or fails (451,
# event 4110), and inherits none of the service's sockets, pipes or queue
# files. Pickup files with x-sender/x-receiver lines and with only
# header fields are delivered; one with no recipient goes to Badmail with
# its reason.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/assert.sh
. tests/lib/queue.sh
trap wp_destroy EXIT
wp_create

PORT=2531
B=${B:-build}
exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
data="$WINEPREFIX/drive_c/ProgramData/IMSvc"
mkdir -p "$exe_dir"
cp "$B/imsvc.exe" "$exe_dir/"
x86_64-w64-mingw32-gcc -O2 -static -o "$exe_dir/test_filter.exe" tests/integration/tools/test_filter.c -lws2_32
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@"; }
send() {  # send FROM TO HEADER-LINE SUBJECT
    run swaks --server 127.0.0.1:$PORT --from "$1" --to "$2" --add-header "$3" \
        --header "Subject: $4" --body "body of $4"
}
in_drop() { grep -l "^Subject: $1" "$data"/Drop/*.eml 2>/dev/null | head -1 || true; }
wait_for() {  # wait_for SECONDS CMD...: until CMD prints something
    local end=$(( $(date +%s) + $1 )); shift
    while [ "$(date +%s)" -le "$end" ]; do
        [ -n "$("$@" 2>/dev/null)" ] && return 0
        sleep 0.3
    done
    return 1
}

run imsvc install
expect_status 0 "install"
imsvc config set ListenPort $PORT >/dev/null
imsvc config set LocalDomains "ops.test" >/dev/null
imsvc config set RelayAddresses "127.0.0.1/32" >/dev/null
imsvc config set SmartHost "127.0.0.1:9" >/dev/null
imsvc config set ContentFilter '"C:\Program Files\IMSvc\test_filter.exe"' >/dev/null
run imsvc start
expect_status 0 "start"

# The content filter ---------------------------------------------------------
send a@ops.test b@ops.test "X-Test-Filter: accept" "filter accept"
expect_status 0 "a message the filter accepts gets 250"
wait_for 20 in_drop "filter accept" && pass "... and is delivered" || fail "accepted message not delivered"

send a@ops.test b@ops.test "X-Test-Filter: reject" "filter reject"
expect_status_not 0 "a message the filter rejects is refused"
expect_out_re "<\*\* +554 5\.7\.1 message refused by the test filter policy" \
    "the client gets 554 5.7.1 with the filter's reason"

send a@ops.test b@ops.test "X-Test-Filter: crash" "filter crash"
expect_out_re "<\*\* +451 4\.3\.0 " "a failing filter gives 451 4.3.0"
run imsvc events --id "$(event_id MSG_FILTER_FAILED)"
expect_out "exit status 7" "event 4110 names the filter's exit status"

send a@ops.test b@ops.test "X-Test-Filter: hold" "filter hold"
expect_status 0 "a held message gets 250"
held=$(ls "$data"/Queue/Hold/*/*/*.env 2>/dev/null | head -1 || true)
[ -n "$held" ] && pass "it waits in Queue\\Hold" || fail "no held message in Queue\\Hold"
hid=$(basename "${held:-none.env}" .env)
sleep 3
[ -z "$(in_drop 'filter hold')" ] && pass "a held message is not delivered" || fail "held message delivered"
run imsvc queue list
expect_out_re "^$hid +held " "queue list shows it as held"
run imsvc events --id "$(event_id MSG_MESSAGE_HELD)"
expect_out "held for review" "event 1120 gives the filter's reason"
run imsvc queue retry "$hid"
expect_status 0 "queue retry releases it"
expect_out "released from Hold" "... and says so"
wait_for 20 in_drop "filter hold" && pass "the released message is delivered" ||
    fail "released message not delivered"

# The filter inherits only its standard handles: no socket (the listener,
# this session, another client's idle session), no pipe, no queue file. A
# child the filter starts with everything inherited sees its socket: the
# count finds an inherited handle when there is one.
python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.recv(512); time.sleep(20)' $PORT &
idle=$!
sleep 0.5
send a@ops.test b@ops.test "X-Test-Filter: handles" "filter handles"
kill "$idle" 2>/dev/null || true
wait "$idle" 2>/dev/null || true
expect_out_re "<\*\* +554 5\.7\.1 inherited handles: 0 sockets or pipes, 0 IMSvc files; control child saw [1-9][0-9]*$" \
    "the filter inherits no socket, pipe or queue file; a child inheriting everything sees one"

# The queue commands ---------------------------------------------------------
send a@ops.test far@remote.example "X-Test-Filter: accept" "deferred one"
expect_status 0 "relayed message accepted"
sleep 2
run imsvc queue list
did=$(awk '$2 == "deferred" {print $1; exit}' <<<"$OUT")
[ -n "$did" ] && pass "queue list shows the relayed message deferred" || fail "no deferred message listed"
run imsvc queue show "$did"
expect_out "far@remote.example" "queue show names the recipient"
expect_out_re "state deferred, [0-9]+ attempt" "queue show gives state and attempts"
expect_out_re "why +could not connect to 127\.0\.0\.1:9" "queue show gives the reason"
run imsvc status
expect_out_re "^Queue: +1 message \(0 held\); recipients: 0 pending, 1 deferred" \
    "status counts the queue by state"
expect_out_re "^Oldest: +[0-9]+s" "status gives the oldest message's age"
expect_out_re "^Sessions: +[0-9]+ inbound, [0-9]+ outbound" "status gives active sessions"
expect_out_re "^Commits: +[1-9][0-9]* messages committed in [1-9][0-9]* log flushes" \
    "status gives the group commit's counts"
run imsvc queue retry "$did"
expect_status 0 "queue retry of a deferred message"
run imsvc queue delete "$did"
expect_status 0 "queue delete"
[ -n "$did" ] && [ -z "$(find "$data/Queue" -name "$did.env" -o -name "$did.eml")" ] &&
    pass "the deleted message's files are gone" || fail "deleted message still queued"
run imsvc queue show "$did"
expect_status 1 "queue show of a deleted message"
run imsvc queue show nosuchid
expect_err "there is no queued message nosuchid" "queue show names a missing ID"

# The pickup folder ----------------------------------------------------------
printf 'x-sender: app@ops.test\r\nx-receiver: user1@ops.test\r\nx-receiver: user2@ops.test\r\nSubject: pickup x\r\n\r\nfrom an application\r\n' \
    >"$data/Pickup/one.tmp"
mv "$data/Pickup/one.tmp" "$data/Pickup/one.eml"
wait_for 20 in_drop "pickup x" && pass "a pickup file with x-sender/x-receiver is delivered" ||
    { fail "pickup file not delivered"; ls -R "$data" >&2; imsvc events --last 5 >&2; }
f=$(in_drop "pickup x")
[ -n "$f" ] && ! grep -qi "^x-receiver" "$f" && grep -q "^Received: from pickup directory" "$f" &&
    pass "x- lines removed, a Received header added" || fail "pickup file delivered as is"
[ ! -e "$data/Pickup/one.eml" ] && pass "the pickup file was taken" || fail "pickup file left behind"

printf 'From: App <app@ops.test>\r\nTo: "User Three" <user3@ops.test>, user4@ops.test\r\nBcc: hidden@ops.test\r\nSubject: pickup headers\r\n\r\nbody\r\n' \
    >"$data/Pickup/two.eml"
wait_for 20 in_drop "pickup headers" && pass "a pickup file with only header fields is delivered" ||
    fail "header-only pickup file not delivered"
f=$(in_drop "pickup headers")
[ -n "$f" ] && ! grep -q "^Bcc:" "$f" && pass "Bcc: is removed" || fail "Bcc: kept"

printf 'From: app@ops.test\r\nSubject: nobody\r\n\r\nno recipients\r\n' >"$data/Pickup/three.eml"
wait_for 20 ls "$data/Badmail/pickup-three.eml.txt" && pass "a pickup file without recipients goes to Badmail" ||
    fail "bad pickup file not moved to Badmail"
grep -q "no recipients" "$data/Badmail/pickup-three.eml.txt" 2>/dev/null &&
    pass "... with its reason" || fail "Badmail reason missing"

run imsvc stop
expect_status 0 "stop"
run imsvc uninstall
summary
