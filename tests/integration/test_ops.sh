#!/usr/bin/env bash
# test_ops.sh - operating the queue: the content filter, the pickup folder,
# `imsvc queue list|show|retry|delete`, `imsvc queue retry --all` and
# `--destination`, the Drop files' x-sender/x-receiver lines, and `imsvc
# status`.
#
# The service runs in a private prefix on 127.0.0.1:2531 with LocalDomains
# ops.test and a SmartHost nobody listens on at first (127.0.0.1:2768, so
# relayed mail stays deferred; the first retry is 15 minutes away).
# Then 30 deferred messages for two domains: `queue retry --destination`
# sends those of one domain to the smart host (tests/integration/
# smtp_sink.py, started on that port) at once and leaves the others,
# `queue retry --all` the rest, in seconds; with the service stopped,
# `retry --all` marks the envelopes due. Drop files begin with x-sender and
# x-receiver lines (one per recipient), as IIS SMTP writes them, unless
# DropEnvelopeLines is 0. A content filter built for the test (tools/test_filter.c)
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
SINK_PID=
T=$(mktemp -d /tmp/imsvc-ops.XXXXXX)
sink_stop() {
    [ -n "$SINK_PID" ] || return 0
    kill "$SINK_PID" 2>/dev/null || true
    wait "$SINK_PID" 2>/dev/null || true
    SINK_PID=
}
trap 'sink_stop; wp_destroy; rm -rf "$T"' EXIT
wp_create

PORT=2531
SINK_PORT=2768
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
# until_ok SECONDS CMD...: until CMD succeeds (wait_for, below, wants output)
until_ok() {
    local end=$((SECONDS + $1)); shift
    until "$@"; do [ "$SECONDS" -lt "$end" ] || return 1; sleep 0.3; done
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
imsvc config set SmartHost "127.0.0.1:$SINK_PORT" >/dev/null
imsvc config set SmartHostTls 0 >/dev/null
imsvc config set ContentFilter '"C:\Program Files\IMSvc\test_filter.exe"' >/dev/null
run imsvc start
expect_status 0 "start"

# The content filter ---------------------------------------------------------
send a@ops.test b@ops.test "X-Test-Filter: accept" "filter accept"
expect_status 0 "a message the filter accepts gets 250"
wait_for 20 in_drop "filter accept" && pass "... and is delivered" || fail "accepted message not delivered"
# The Drop file begins with the envelope, as IIS SMTP writes it.
f=$(in_drop "filter accept")
expect_eq "$(head -2 "${f:-/dev/null}" | tr -d '\r' | tr '\n' '|')" "x-sender: a@ops.test|x-receiver: b@ops.test|" \
    "a Drop file starts with x-sender: and x-receiver: lines"
expect_eq "$(sed -n 3p "${f:-/dev/null}" | cut -c1-15)" "Received: from " "... then the Received field"

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
expect_out_re "why +could not connect to 127\.0\.0\.1:$SINK_PORT" "queue show gives the reason"
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
# The pickup file's own x- lines are taken off; the Drop file has the
# service's, for the two recipients delivered into it, then its Received.
expect_eq "$(head -4 "${f:-/dev/null}" | tr -d '\r' | sed 's/^\(Received: from pickup directory\).*/\1/' | tr '\n' '|')" \
    "x-sender: app@ops.test|x-receiver: user1@ops.test|x-receiver: user2@ops.test|Received: from pickup directory|" \
    "the Drop file: x-sender, an x-receiver per recipient, then a Received header"
[ -n "$f" ] && [ "$(grep -ci '^x-receiver' "$f")" = 2 ] && [ "$(grep -ci '^x-sender' "$f")" = 1 ] &&
    pass "the pickup file's own x- lines were removed (no second set)" || fail "pickup file's x- lines kept"
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

# DropEnvelopeLines 0: the message only.
imsvc config set DropEnvelopeLines 0 >/dev/null
sleep 2   # PARAMCHANGE is read by the service thread
send a@ops.test b@ops.test "X-Test-Filter: accept" "no envelope lines"
wait_for 20 in_drop "no envelope lines" && pass "delivered with DropEnvelopeLines 0" || fail "not delivered"
f=$(in_drop "no envelope lines")
[ -n "$f" ] && head -1 "$f" | grep -q "^Received: from " && ! grep -qi "^x-sender" "$f" &&
    pass "with DropEnvelopeLines 0 the Drop file starts with Received, no x- lines" ||
    fail "x- lines written with DropEnvelopeLines 0"
imsvc config set DropEnvelopeLines 1 >/dev/null

# queue retry --all and --destination ---------------------------------------
# 30 messages wait for the smart host (down); the first retry is 15 minutes
# away. The filter is taken off first: it costs a process per message.
imsvc config set ContentFilter "" >/dev/null
sleep 2
python3 - "$PORT" <<'PY' >"$T/flood.log" 2>&1 || true
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
for i in range(30):
    to = "r%d@alpha.example" % i if i < 24 else "s%d@beta.example" % i
    s.sendmail("a@ops.test", [to], "Subject: flush %d\r\n\r\nbody %d\r\n" % (i, i))
s.quit()
print("sent 30")
PY
grep -q "sent 30" "$T/flood.log" && pass "30 messages for the smart host accepted" ||
    { fail "could not send the 30 messages"; cat "$T/flood.log" >&2; }
deferred_count() { imsvc queue list 2>/dev/null | tr -d '\r' | awk '$2 == "deferred"' | wc -l; }
all_deferred() { [ "$(deferred_count)" -ge 30 ]; }
until_ok 60 all_deferred && pass "all 30 are deferred (the smart host is down)" ||
    fail "not all 30 deferred: $(deferred_count)"

rm -f "$T/sink.pid"
python3 tests/integration/smtp_sink.py --port "$SINK_PORT" --dir "$T/sink" --pidfile "$T/sink.pid" \
    </dev/null >"$T/sink.log" 2>&1 &
SINK_PID=$!
until_ok 10 test -s "$T/sink.pid" || { fail "smtp_sink did not start"; cat "$T/sink.log" >&2; }
sunk() { cat "$T/sink"/*.env 2>/dev/null | grep -c "^RCPT TO:<$1" || true; }

run imsvc queue retry --destination BETA.example
expect_status 0 "queue retry --destination beta.example"
expect_out_re "^6 messages \(6 deferred recipients for BETA\.example\) are being tried now" \
    "it names the 6 messages of that domain"
six() { [ "$(sunk s)" -ge 6 ]; }
until_ok 20 six && pass "the 6 for beta.example reach the smart host at once" ||
    fail "beta.example's messages not delivered: $(sunk s)"
sleep 2
expect_eq "$(sunk r)" 0 "alpha.example's 24 still wait for their retry"

start=$SECONDS
run imsvc queue retry --all
expect_status 0 "queue retry --all"
expect_out_re "^24 messages \(24 deferred recipients\) are being tried now" "it names the other 24"
all24() { [ "$(sunk r)" -ge 24 ]; }
until_ok 30 all24 && pass "the other 24 reach the smart host in $((SECONDS - start)) s, one request" ||
    fail "after retry --all only $(sunk r) of 24 delivered"
queue_settle "$data" 20 && pass "the queue is empty" || fail "messages left in the queue"
expect_eq "$(cat "$T/sink"/*.env 2>/dev/null | grep -c '^RCPT TO:')" 30 "each of the 30 was delivered once"

run imsvc queue retry --destination "bad name"
expect_status 1 "retry --destination with something that is no destination"
expect_err "is not a destination" "... says so"

# With the service stopped, the envelopes are marked due for its start.
sink_stop
send a@ops.test late@gamma.example "X-Test-Filter: accept" "offline flush"
one_deferred() { [ "$(deferred_count)" -ge 1 ]; }
until_ok 30 one_deferred && pass "a message waits for the smart host again" || fail "no deferred message"
run imsvc stop
expect_status 0 "stop"
run imsvc queue retry --all
expect_status 0 "queue retry --all with the service stopped"
expect_out "1 message (1 deferred recipient) due now; they are tried when the service starts" \
    "it marks the deferred message due for the start"
run imsvc uninstall
summary
