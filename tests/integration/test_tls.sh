#!/usr/bin/env bash
# test_tls.sh - STARTTLS through Schannel and AUTH NTLM through SSPI, in the
# running service, with real clients: swaks, curl and Python's ssl.
#
# The service is installed (which makes its self-signed certificate) and
# started under Wine's SCM; winbindd serves the test user. Checked: STARTTLS
# offered; swaks with STARTTLS and AUTH NTLM relays to a foreign domain and
# the Received header names the user; a wrong password gets 535 5.7.3; curl
# with --ssl-reqd and AUTH=NTLM; a pipelined transaction with every line in
# its own TLS record, all in one TCP write, and the same one byte per write:
# every message arrives intact; a record with a flipped bit closes that
# session only, with event 4131 and its location/status data, and the service
# goes on; a policy above what was negotiated is refused with 454 4.7.0 and an
# event that names both sides.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/winbind.sh
. tests/lib/assert.sh
trap 'wb_stop; wp_destroy' EXIT
wp_create
wb_start

PORT=2527
exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
drop="$WINEPREFIX/drive_c/ProgramData/IMSvc/Drop"
mkdir -p "$exe_dir"
cp "${B:-build}/imsvc.exe" "$exe_dir/"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null; }
# Mail for elsewhere.example is relayed: it waits in the queue (no MX can be
# found from the test machine); mail for imsvc.test is in the drop folder.
stored_files() { ls "$drop"/*.eml "${drop%/Drop}/Queue"/active/*.eml "${drop%/Drop}/Queue"/*/*/*.eml 2>/dev/null || true; }
drop_count() { stored_files | wc -l; }
msg=$(mktemp); trap 'wb_stop; wp_destroy; rm -f "$msg"' EXIT

run imsvc install
expect_status 0 "install"
expect_out "created a self-signed certificate" "install makes a certificate for STARTTLS"
imsvc config set ListenPort $PORT >/dev/null
imsvc config set LocalDomains "imsvc.test" >/dev/null
run imsvc start
expect_status 0 "start"

run swaks --server 127.0.0.1:$PORT --quit-after EHLO
expect_out_re "<- +250-STARTTLS" "STARTTLS offered before TLS"
# swaks will not send a mechanism the server does not offer; smtplib will.
run python3 -c "import smtplib; s = smtplib.SMTP('127.0.0.1', $PORT); s.ehlo(); c, m = s.docmd('AUTH LOGIN'); print(c, m.decode())"
expect_out_re "^538 5\.7\.11" "AUTH LOGIN refused before TLS"

run swaks --server 127.0.0.1:$PORT --tls --from sender@example.com --to someone@elsewhere.example \
    --auth NTLM --auth-user "$IMSVC_NTLM_USER" --auth-password "$IMSVC_NTLM_PASSWORD" \
    --auth-extra domain="$IMSVC_NTLM_DOMAIN" --header "Subject: swaks ntlm"
expect_status 0 "swaks STARTTLS + AUTH NTLM"
expect_out_re "<~ +235 2\.7\.0" "NTLM accepted (235) inside TLS"
expect_out_re "<~ +250 2\.0\.0 .*queued as" "relayed to a foreign domain once authenticated"
f=$(grep -l "Subject: swaks ntlm" $(stored_files) 2>/dev/null | head -1 || true)
OUT=$(cat "${f:-/dev/null}")
expect_out "with ESMTPSA" "Received says ESMTPSA"
expect_out "authenticated as IMSVCTEST\\\\imsvctest" "Received names the authenticated user"

run swaks --server 127.0.0.1:$PORT --tls --from sender@example.com --to someone@elsewhere.example \
    --auth NTLM --auth-user "$IMSVC_NTLM_USER" --auth-password wrong-password \
    --auth-extra domain="$IMSVC_NTLM_DOMAIN"
expect_status_not 0 "swaks with a wrong password"
expect_out_re "<~\* +535 5\.7\.3" "a wrong password gets 535 5.7.3"

# Failures from one address are slowed down across sessions: the third
# wrong password in a row waits at least two seconds for its 535.
for attempt in 2 3; do
    start=$(date +%s%N)
    run swaks --server 127.0.0.1:$PORT --tls --from sender@example.com --to x@elsewhere.example \
        --auth NTLM --auth-user "$IMSVC_NTLM_USER" --auth-password wrong-again \
        --auth-extra domain="$IMSVC_NTLM_DOMAIN"
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
done
[ "$ms" -ge 2000 ] && pass "the third failure from one address waited ${ms} ms" ||
    fail "the third failure from one address was answered in ${ms} ms (no slow-down)"

# NTLM key length against policy: Wine negotiates 128 bits; require more.
run imsvc config set NtlmMinKeyBits 256
sleep 2
run swaks --server 127.0.0.1:$PORT --tls --from sender@example.com --to y@elsewhere.example \
    --auth NTLM --auth-user "$IMSVC_NTLM_USER" --auth-password "$IMSVC_NTLM_PASSWORD" \
    --auth-extra domain="$IMSVC_NTLM_DOMAIN"
expect_out_re "<~\* +535 5\.7\.3" "an NTLM key below policy is refused"
run imsvc events --id 4131
expect_out "negotiated a 128-bit session key; policy requires 256-bit" "the event names both key lengths"
expect_out_re "0000: 06 00 10 00" "the NTLM policy event has location 0x00100006"
imsvc config set NtlmMinKeyBits 128 >/dev/null
sleep 2

printf 'Subject: curl ntlm\r\n\r\nhello from curl\r\n' >"$msg"
run curl -sS --ssl-reqd -k --url "smtp://127.0.0.1:$PORT" --mail-from sender@example.com \
    --mail-rcpt other@elsewhere.example --login-options AUTH=NTLM \
    --user "$IMSVC_NTLM_DOMAIN\\$IMSVC_NTLM_USER:$IMSVC_NTLM_PASSWORD" -T "$msg"
expect_status 0 "curl --ssl-reqd with AUTH=NTLM"
grep -q "hello from curl" $(stored_files) && pass "curl's message arrived" || fail "curl's message is missing"

# Each message: 6 header/command records + 20 body lines + the dot.
check_probe_messages() {  # mode count
    local ok=0 i
    for i in $(seq 0 $(($2 - 1))); do
        # Stored lines end in CRLF, as they arrived.
        f=$(grep -l "^Subject: tls $1 $i"$'\r$' $(stored_files) 2>/dev/null | head -1 || true)
        [ -n "$f" ] && [ "$(grep -c "^line [0-9]* of message $i " "$f")" = 20 ] &&
            grep -q "^line 19 of message $i xxxxxxxxxxxxxxxxxxx"$'\r$' "$f" && ok=$((ok + 1))
    done
    echo $ok
}
# A message goes on from the queue to Drop after its 250, so one may be
# between the two when first looked for: wait up to 10 s for all of them.
all_probe_messages() { [ "$(check_probe_messages "$1" "$2")" = "$2" ]; }
run python3 tests/integration/tls_probe.py $PORT records 20
expect_status 0 "every line in its own record, all in one TCP write"
expect_out_re "^tls: TLSv1\.[23] " "TLS negotiated"
expect_eq "$(grep -c '^250' <<<"$OUT")" 61 "EHLO, then MAIL, RCPT and the end of DATA 20 times, all 250"
wait_for 10 all_probe_messages records 20 || true
expect_eq "$(check_probe_messages records 20)" 20 "20 messages arrived intact"

run python3 tests/integration/tls_probe.py $PORT bytewise 2
expect_status 0 "one byte of ciphertext per TCP write"
expect_eq "$(grep -c '^250' <<<"$OUT")" 7 "all replies 250 with byte-per-write TLS"
wait_for 10 all_probe_messages bytewise 2 || true
expect_eq "$(check_probe_messages bytewise 2)" 2 "byte-per-write messages arrived intact"

run python3 tests/integration/tls_probe.py $PORT corrupt 0
expect_status 0 "a corrupted record"
expect_out "the server closed the session" "a corrupted record closes the session"
run imsvc events --id 4131
expect_out_re "0000: f3 03 15 00 [0-9a-f]{2} 03 09 80" "event 4131 with location 0x001503F3 and an SSPI status"
run python3 tests/integration/tls_probe.py $PORT records 1
expect_eq "$(grep -c '^250' <<<"$OUT")" 4 "the service goes on after a broken session"

run imsvc config set TlsMinCipherBits 512
expect_out "told to re-read" "policy raised on the running service"
sleep 2
run python3 tests/integration/tls_probe.py $PORT records 1
expect_out_re "^454" "a session below policy is refused with 454 4.7.0"
run imsvc events --id 4131
expect_out_re "0000: 06 01 15 00" "the policy event has location 0x00150106"
expect_out_re "512" "the policy event names what policy requires"
expect_out_re "256" "the policy event names what was negotiated"
imsvc config set TlsMinCipherBits 128 >/dev/null

run imsvc stop
expect_status 0 "stop"
run imsvc uninstall
expect_status 0 "uninstall"
summary
