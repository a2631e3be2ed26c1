#!/usr/bin/env bash
# test_upgrade.sh - a queue in the flat layout (every message in Queue\ and
# Queue\Hold\ themselves, as main wrote it before the hash folders) is read
# after the upgrade: the service moves it into Queue\XX\YY\ at start, and
# every message in it is listed, shown, released and delivered as before.
#
# The service runs in a private prefix on 127.0.0.1:2710 with a SmartHost
# nobody listens on (127.0.0.1:2711), so relayed mail stays deferred. Three
# messages are accepted, the service stopped, and their files put back where
# the flat layout had them: one in Queue\, one in Queue\Hold\, and one as a
# start cut short in the middle of the move leaves it (its content moved
# into the hash folder, its envelope still in Queue\). The file formats are
# the same in both layouts. After a start, all three are in the hash folders
# and nothing is left flat; then the SmartHost becomes smtp_sink.py on
# 127.0.0.1:2712 and each message, retried or released, arrives there.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/assert.sh
SINK_PID=
cleanup() {
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null
    wp_destroy
    rm -rf "${T:-}"
}
trap cleanup EXIT
wp_create
T=$(mktemp -d /tmp/imsvc-upgrade.XXXXXX)

PORT=2710
DEAD_PORT=2711
SINK_PORT=2712
B=${B:-build}
exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
data="$WINEPREFIX/drive_c/ProgramData/IMSvc"
q="$data/Queue"
mkdir -p "$exe_dir"
cp "$B/imsvc.exe" "$exe_dir/"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@"; }
send() {  # send SUBJECT
    run swaks --server 127.0.0.1:$PORT --from a@up.test --to "far@remote.example" \
        --header "Subject: $1" --body "body of $1"
}
hashed() { find "$q" -mindepth 3 -maxdepth 3 -path "$q/[0-9A-F][0-9A-F]/[0-9A-F][0-9A-F]/$1"; }
hashed_held() { find "$q/Hold" -mindepth 3 -maxdepth 3 -path "$q/Hold/[0-9A-F][0-9A-F]/[0-9A-F][0-9A-F]/$1"; }
wait_for() {  # wait_for SECONDS CMD...: until CMD succeeds
    local end=$(( $(date +%s) + $1 )); shift
    while [ "$(date +%s)" -le "$end" ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.3
    done
    return 1
}
in_sink() { grep -l "^Subject: $1" "$T/sink"/*.eml 2>/dev/null | head -1 | grep -q .; }

run imsvc install
expect_status 0 "install"
imsvc config set ListenPort $PORT >/dev/null
imsvc config set LocalDomains "up.test" >/dev/null
imsvc config set RelayAddresses "127.0.0.1/32" >/dev/null
imsvc config set SmartHost "127.0.0.1:$DEAD_PORT" >/dev/null
run imsvc start
expect_status 0 "start"
for s in flat-queued flat-held half-moved; do
    send "$s"
    expect_status 0 "$s: accepted"
done
sleep 2
run imsvc queue list
ids=$(awk '$2 == "deferred" { print $1 }' <<<"$OUT")
expect_eq "$(wc -w <<<"$ids")" 3 "three messages wait, deferred"
run imsvc stop
expect_status 0 "stop"

# Which ID is which message, from its content.
declare -A id_of
for id in $ids; do
    eml=$(hashed "$id.eml")
    s=$(sed -n 's/^Subject: \(.*\)\r$/\1/p' "$eml" | head -1)
    id_of[$s]=$id
done
[ -n "${id_of[flat-queued]:-}" ] && [ -n "${id_of[flat-held]:-}" ] && [ -n "${id_of[half-moved]:-}" ] &&
    pass "each message's files are in a hash folder Queue/XX/YY" ||
    fail "the three messages are not all in hash folders: $(find "$q" -name '*.e??')"
expect_eq "$(ls "$q/log")" "" "no commit log is left after a clean stop"

# The flat layout, as main wrote it.
a=${id_of[flat-queued]} h=${id_of[flat-held]} m=${id_of[half-moved]}
mv "$(hashed "$a.eml")" "$q/$a.eml"; mv "$(hashed "$a.env")" "$q/$a.env"
mkdir -p "$q/Hold"
mv "$(hashed "$h.eml")" "$q/Hold/$h.eml"; mv "$(hashed "$h.env")" "$q/Hold/$h.env"
mv "$(hashed "$m.env")" "$q/$m.env"
find "$q" -mindepth 1 -maxdepth 2 -type d -empty -path "$q/[0-9A-F]*" -delete
[ -z "$(hashed "$a.*")$(hashed "$h.*")$(hashed "$m.env")" ] && [ -f "$q/$a.env" ] &&
    [ -f "$q/Hold/$h.env" ] && [ -f "$q/$m.env" ] && pass "the queue is flat again" ||
    fail "the flat layout was not made"

run imsvc start
expect_status 0 "start on a flat queue"
sleep 2
for f in "$a.eml" "$a.env" "$m.eml" "$m.env"; do
    [ -n "$(hashed "$f")" ] && pass "$f moved into its hash folder" || fail "$f is not in a hash folder"
done
for f in "$h.eml" "$h.env"; do
    [ -n "$(hashed_held "$f")" ] && pass "Hold: $f moved into its hash folder" ||
        fail "Hold: $f is not in a hash folder"
done
expect_eq "$(find "$q" "$q/Hold" -maxdepth 1 -type f -name '*.e??' | wc -l)" 0 \
    "no message file is left in Queue\\ or Queue\\Hold\\ themselves"
run imsvc queue list
expect_out_re "^$a +deferred " "the flat queued message is listed, deferred"
expect_out_re "^$h +held " "the flat held message is listed, held"
expect_out_re "^$m +deferred " "the half-moved message is listed, deferred"
run imsvc queue show "$m"
expect_out "far@remote.example" "queue show reads the half-moved message's envelope"
run imsvc status
expect_out_re "^Queue: +3 messages \(1 held\)" "status counts all three"

# Delivery after the upgrade: the smart host comes up.
mkdir "$T/sink"
python3 tests/integration/smtp_sink.py --port "$SINK_PORT" --dir "$T/sink" --pidfile "$T/sink.pid" \
    </dev/null >"$T/sink.log" 2>&1 &
SINK_PID=$!
wait_for 10 test -s "$T/sink.pid" || fail "smtp_sink did not start"
imsvc config set SmartHost "127.0.0.1:$SINK_PORT" >/dev/null
sleep 2
for id in "$a" "$m" "$h"; do
    run imsvc queue retry "$id"
    expect_status 0 "queue retry $id"
done
expect_out "released from Hold" "the held one is released"
# It was deferred before it was put in Hold: a second retry makes it due now.
sleep 1
run imsvc queue retry "$h"
expect_status 0 "queue retry $h, released"
for s in flat-queued flat-held half-moved; do
    wait_for 30 in_sink "$s" && pass "$s: delivered to the smart host" || fail "$s: not delivered"
done
queue_empty() { imsvc queue list 2>/dev/null | tr -d '\r' | grep -q '^0 messages'; }
wait_for 30 queue_empty || true
run imsvc queue list
expect_out_re "^0 messages" "the queue is empty once all three are delivered"
run imsvc queue show nosuch/id
expect_status 1 "queue show of a malformed ID"
expect_err "is not a queue ID" "... says it is not a queue ID"
run imsvc stop
expect_status 0 "stop"
summary
