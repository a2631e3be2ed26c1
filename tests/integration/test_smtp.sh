#!/usr/bin/env bash
# test_smtp.sh - the SMTP server in the running service, with real clients.
#
# The service is installed and started under Wine's SCM on 127.0.0.1:2526
# with LocalDomains imsvc.test and no relay ranges. swaks delivers to a local
# domain (the .eml in the drop directory holds a Received header and the
# message as sent); a foreign domain without authentication gets 550 5.7.1;
# a pipelined batch in one write and a byte-per-write session both arrive
# intact; every SMTP smuggling sequence leaves one message, never two; a
# LocalDomains wildcard and a RelayAddresses list past 32 ranges take effect
# through `config set`, which refuses entries the matcher cannot use; a
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

# LocalDomains and RelayAddresses are read by one matcher (core/domains.c):
# `config set` takes a wildcard, and mail for a subdomain is then accepted
# and dropped here, while the parent domain stays foreign; an entry the
# matcher cannot use is refused, naming it; RelayAddresses has no cap.
# rcpt_until RCPT WANT: RCPT TO until the reply matches WANT (the service
# reloads after `config set`), at most 10 s; OUT holds the last session.
rcpt_until() {
    local i
    for i in $(seq 1 20); do
        run swaks --server 127.0.0.1:$PORT --from sender@example.com --to "$1" --quit-after RCPT
        grep -qE -- "$2" <<<"$OUT" && return 0
        sleep 0.5
    done
}
run imsvc config set LocalDomains "imsvc.test;localhost;*.wild.test"
expect_status 0 "config set LocalDomains with a wildcard entry *.wild.test"
rcpt_until user@sub.wild.test "<- +250 2\.1\.5"
expect_out_re "<- +250 2\.1\.5" "RCPT TO a subdomain of *.wild.test is accepted"
before=$(drop_count)
run swaks --server 127.0.0.1:$PORT --from sender@example.com --to user@Deep.Sub.WILD.test \
    --header "Subject: wildcard local domain"
expect_status 0 "mail to user@Deep.Sub.WILD.test"
expect_eq "$(( $(drop_count) - before ))" 1 "mail for a subdomain of *.wild.test is dropped here"
grep -l "^Subject: wildcard local domain" "$drop"/*.eml >/dev/null &&
    pass "the dropped file is that message" || fail "no dropped file holds the wildcard message"
run swaks --server 127.0.0.1:$PORT --from sender@example.com --to user@wild.test --quit-after RCPT
expect_out_re "<\*\* +550 5\.7\.1" "*.wild.test does not make wild.test itself local (550 5.7.1)"
run imsvc config set LocalDomains "imsvc.test;bad..name"
expect_status_not 0 "config set refuses a LocalDomains entry the matcher cannot use"
expect_err "'bad..name' is not a local domain: domain label must start with a letter or digit" \
    "the refusal names the entry and the rule it breaks"
ranges=
for i in $(seq 1 40); do ranges="${ranges}10.0.0.$i;"; done
run imsvc config set RelayAddresses "${ranges}127.0.0.1/32"
expect_status 0 "config set RelayAddresses with 41 ranges"
rcpt_until someone@elsewhere.example "<- +250 2\.1\.5"
expect_out_re "<- +250 2\.1\.5" "a client in the 41st RelayAddresses range may relay"
run imsvc config set RelayAddresses "127.0.0.1/33"
expect_status_not 0 "config set refuses a range the matcher cannot use"
expect_err "'127.0.0.1/33' is not an address range: an IPv4 prefix length is at most 32" \
    "the refusal names the range and why"
run imsvc config set RelayAddresses ""
expect_status 0 "config set RelayAddresses empty"
rcpt_until someone@elsewhere.example "<\*\* +550 5\.7\.1"
expect_out_re "<\*\* +550 5\.7\.1" "with no relay range again, relaying is refused"
# A bad entry written to the registry by hand: the reload's event names it.
params='HKLM\SYSTEM\CurrentControlSet\Services\IMSvc\Parameters'
run wine reg add "$params" /v LocalDomains /t REG_MULTI_SZ /d 'imsvc.test\0[2001:db8::1]' /f
expect_status 0 "LocalDomains with an untagged IPv6 literal written to the registry"
imsvc config set ListenPort $PORT >/dev/null     # the same port: only a PARAMCHANGE
for i in $(seq 1 20); do
    run imsvc events --last 5
    grep -qF "'[2001:db8::1]' is not a local domain" <<<"$OUT" && break
    sleep 0.5
done
expect_out "The configuration value LocalDomains is not valid: '[2001:db8::1]' is not a local domain: an IPv6 address literal is written with its tag, like [IPv6:2001:db8::1]" \
    "the reload's event names the bad entry and why"
expect_out "; the default is used" "the event says the default is used"
run imsvc config set LocalDomains "imsvc.test;localhost"
expect_status 0 "LocalDomains back to imsvc.test;localhost"
rcpt_until user@imsvc.test "<- +250 2\.1\.5"
expect_out_re "<- +250 2\.1\.5" "mail for imsvc.test is accepted again"

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
