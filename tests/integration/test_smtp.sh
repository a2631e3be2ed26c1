#!/usr/bin/env bash
# test_smtp.sh - the SMTP server in the running service, with real clients.
#
# The service is installed and started under Wine's SCM on 127.0.0.1:2526
# with LocalDomains imsvc.test and no relay ranges. swaks delivers to a local
# domain (the .eml in the drop directory holds a Received header and the
# message as sent); a foreign domain without authentication gets 550 5.7.1;
# a pipelined batch in one write and a byte-per-write session both arrive
# intact; every SMTP smuggling sequence leaves one message, never two; a
# paused service answers 421.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/assert.sh
. tests/lib/queue.sh
trap wp_destroy EXIT
wp_create

PORT=2526
exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
drop="$WINEPREFIX/drive_c/ProgramData/IMSvc/Drop"
mkdir -p "$exe_dir"
cp "${B:-build}/imsvc.exe" "$exe_dir/"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@"; }
drop_count() { queue_settle "${drop%/Drop}" || true; find "$drop" -name '*.eml' 2>/dev/null | wc -l; }

run imsvc install
expect_status 0 "install"
imsvc config set ListenPort $PORT >/dev/null
imsvc config set LocalDomains "imsvc.test;localhost" >/dev/null
run imsvc start
expect_status 0 "start"

run swaks --server 127.0.0.1:$PORT --from sender@example.com --to user@imsvc.test \
    --header "Subject: first" --body "line one
line two"
expect_status 0 "swaks to a local domain"
expect_out_re "<- +250 2\.0\.0 .*queued as" "250 after DATA"
expect_out_re "<- +250-PIPELINING" "EHLO offers PIPELINING"
expect_out_re "<- +250-ENHANCEDSTATUSCODES" "EHLO offers ENHANCEDSTATUSCODES"
expect_out_re "<- +250-8BITMIME" "EHLO offers 8BITMIME"
expect_out_re "<- +250.AUTH .*NTLM" "EHLO offers AUTH NTLM"
expect_out_re "<- +250.XAUTH NTLM" "EHLO offers XAUTH NTLM"
queue_settle "${drop%/Drop}" || true
eml=$(ls "$drop"/*.eml | head -1)
OUT=$(cat "$eml")
expect_out_re "^Received: from " "the stored message starts with a Received header"
expect_out "Subject: first" "the stored message has the header as sent"
expect_out "line two" "the stored message has the body as sent"

run swaks --server 127.0.0.1:$PORT --from sender@example.com --to someone@elsewhere.example
expect_status_not 0 "relay attempt"
expect_out_re "<\*\* +550 5\.7\.1" "open relay refused with 550 5.7.1"

before=$(drop_count)
run python3 tests/integration/smtp_probe.py $PORT pipeline 20
expect_status 0 "pipelined batch"
expect_eq "$(grep -c "^250" <<<"$OUT")" 60 "MAIL, RCPT and the end of DATA got 250, 20 times"
expect_eq "$(grep -c '^354' <<<"$OUT")" 20 "every DATA got 354"
expect_eq "$(( $(drop_count) - before ))" 20 "20 pipelined messages stored"
grep -l "probe 19" "$drop"/*.eml >/dev/null && pass "the last pipelined message arrived" ||
    fail "the last pipelined message is missing"
grep -h "^\.a dot-stuffed line" "$drop"/*.eml | head -1 | grep -q . &&
    pass "dot-stuffing undone" || fail "dot-stuffing not undone"

# A client that waits for each reply gets it at once, not when the
# session's one-second receive poll comes round.
run python3 tests/integration/smtp_probe.py $PORT lockstep
expect_status 0 "lockstep session"
slowest=$(awk '$1 == "slowest" {print $2}' <<<"$OUT")
awk -v s="${slowest:-9}" 'BEGIN { exit !(s < 0.5) }' &&
    pass "every reply to a lockstep client came within 0.5 s (slowest $slowest s)" ||
    fail "a reply to a lockstep client took $slowest s"

before=$(drop_count)
run python3 tests/integration/smtp_probe.py $PORT bytewise
expect_status 0 "byte-per-write session"
expect_out_re "^250 2\.0\.0 .*queued as" "byte-per-write message accepted"
expect_eq "$(( $(drop_count) - before ))" 1 "byte-per-write message stored"

# A smuggled message would be a file of its own: "Subject: smuggled" without
# the "first part" of the message that carried it.
smuggled_files() {
    local n=0 f
    for f in "$drop"/*.eml; do
        grep -q "^Subject: smuggled" "$f" && ! grep -q "first part" "$f" && n=$((n + 1))
    done
    echo $n
}
for seq in '\n.\n' '\n.\r\n' '\r.\r\n' '\r\n\x00.\r\n' '\r\n.\n' '\r\n.\r' '\n.\r'; do
    before=$(drop_count)
    run python3 tests/integration/smtp_probe.py $PORT smuggle "$seq"
    stored=$(( $(drop_count) - before ))
    if [ "$(smuggled_files)" = 0 ] && [ "$stored" -le 1 ]; then
        pass "smuggling sequence $seq does not end the message ($stored stored; $(grep -E '^(250|5[0-9][0-9]) ' <<<"$OUT" | tail -2 | tr '\n' ' '))"
    else
        fail "smuggling sequence $seq: a smuggled message was stored"
    fi
done

run imsvc pause
expect_status 0 "pause"
run swaks --server 127.0.0.1:$PORT --from sender@example.com --to user@imsvc.test --quit-after CONNECT
expect_out_re "<\*\* +421 4\.3\.2" "a paused service answers 421 4.3.2"
run imsvc continue
expect_status 0 "continue"

run imsvc stop
expect_status 0 "stop"
run imsvc uninstall
expect_status 0 "uninstall"
summary
