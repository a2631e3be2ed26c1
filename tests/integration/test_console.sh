#!/usr/bin/env bash
# test_console.sh - `imsvc run`: console mode starts, and Ctrl+C stops it
# cleanly (SIGINT reaches the Wine process as CTRL_C_EVENT), with the start
# and stop events in the journal.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/assert.sh
out=
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wp_destroy; rm -f "$out"; }
trap cleanup EXIT
wp_create
out=$(mktemp)

wine "${B:-build}/imsvc.exe" run >"$out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    grep -q RUNNING "$out" && break
    sleep 0.1
done
OUT=$(tr -d '\r' <"$out"); ERR=
expect_out "imsvc: RUNNING" "console mode reaches RUNNING"

kill -INT "$pid"
set +e
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
wait "$pid"; STATUS=$?
set -e
pid=
OUT=$(tr -d '\r' <"$out")
expect_status 0 "Ctrl+C ends console mode with exit status 0"
expect_out "imsvc: STOPPED" "console mode reports STOPPED"

run wine "${B:-build}/imsvc.exe" events
expect_status 0 "imsvc events after console mode"
ids=$(awk -F':[ \t]*' '/^Event ID:/ {printf "%s ", $2}' <<<"$OUT")
# 4171 first: Wine keeps no file DACL, and every start says so.
expect_eq "$ids" "$(event_id MSG_FOLDER_RIGHTS_NOT_KEPT) $(event_id MSG_QUEUE_RECOVERED) $(event_id MSG_SERVICE_STARTED) $(event_id MSG_SERVICE_STOPPED) " "folders' rights not kept, queue opened, start and stop events"
expect_out "console" "the events say console mode"

run wine "${B:-build}/imsvc.exe" frobnicate
expect_status 2 "an unknown command"
expect_err "unknown command 'frobnicate'" "an unknown command is named"

summary
