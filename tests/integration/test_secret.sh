#!/usr/bin/env bash
# test_secret.sh - SmartHostPassword kept as a DPAPI secret, used for NTLM to
# the smart host.
#
# The service runs in a private prefix on 127.0.0.1:2632, with winbindd
# serving the test user (tests/lib/winbind.sh; run this test under
# `flock /tmp/imsvc-winbind.lock`). Its smart host is itself, with
# SmartHostAuth 2 (NTLM required), SmartHostUser IMSVCTEST\imsvctest and no
# SmartHostPasswordFile: the password comes only from `imsvc config
# set-secret SmartHostPassword`, read from standard input.
# - With a wrong secret, the smart host refuses the logon: the message is
#   deferred with the 535 reply as its reason, and no NDR goes out (a wrong
#   password is the administrator's to correct, not the sender's failure).
# - With the right secret (set while the service runs: it re-reads), mail
#   relayed to the smart host comes back authenticated and is relayed again,
#   hop after hop, until the hop limit answers 554 5.4.6; the NDR's copy
#   shows every hop authenticated (ESMTPA).
# - The registry value holds no clear text, and no output or event holds
#   the password.
# winbindd is stopped by its PID on exit, the prefix removed.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/winbind.sh
. tests/lib/assert.sh
trap 'wb_stop; wp_destroy' EXIT
wp_create
wb_start

PORT=2632
B=${B:-build}
exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
drop="$WINEPREFIX/drive_c/ProgramData/IMSvc/Drop"
secrets='HKLM\SYSTEM\CurrentControlSet\Services\IMSvc\Parameters\Secrets'
mkdir -p "$exe_dir"
cp "$B/imsvc.exe" "$exe_dir/"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@"; }
pw=$IMSVC_NTLM_PASSWORD
wait_ndr() {  # wait_ndr SUBJECT STATUS: the NDR in Drop for SUBJECT with STATUS
    local f
    for _ in $(seq 1 300); do
        f=$(grep -l "^Status: $2" "$drop"/*.eml 2>/dev/null | xargs -r grep -l "^Subject: $1" | head -1 || true)
        [ -n "$f" ] && { echo "$f"; return 0; }
        sleep 0.5
    done
    return 1
}
send() {  # send SUBJECT
    run swaks --server 127.0.0.1:$PORT --from looper@secret.test --to far@loop.example \
        --auth NTLM --auth-user "$IMSVC_NTLM_USER" --auth-password "$pw" \
        --auth-extra "domain=$IMSVC_NTLM_DOMAIN" --header "Subject: $1"
}

run imsvc install
expect_status 0 "install"
imsvc config set ListenPort $PORT >/dev/null
imsvc config set LocalDomains secret.test >/dev/null
imsvc config set SmartHost "127.0.0.1:$PORT" >/dev/null
imsvc config set SmartHostTls 0 >/dev/null
imsvc config set SmartHostAuth 2 >/dev/null
imsvc config set SmartHostUser "$IMSVC_NTLM_DOMAIN\\$IMSVC_NTLM_USER" >/dev/null
run imsvc config set-secret SmartHostPassword <<<"not-the-$pw"
expect_status 0 "a wrong SmartHostPassword secret is stored"
run imsvc start
expect_status 0 "start"

send "wrong secret"
expect_status 0 "a message for the smart host is accepted (the client authenticates itself)"
qid=
for _ in $(seq 1 100); do
    qid=$(imsvc queue list 2>/dev/null | tr -d '\r' | awk '$2 == "deferred" {print $1; exit}')
    [ -n "$qid" ] && break
    sleep 0.3
done
run imsvc queue show "${qid:-none}"
expect_out_re "why +the server refused AUTH NTLM: 535 5\.7\.3" \
    "with the wrong secret the smart host refuses NTLM: the message waits with its 535 5.7.3 reply"
expect_out_re "status 4\.7\.3" "... classed transient (4.7.3), not bounced"
[ -z "$(grep -l '^Subject: wrong secret' "$drop"/*.eml 2>/dev/null || true)" ] &&
    pass "no NDR for a wrong smart host password" || fail "an NDR went out for a wrong smart host password"

run imsvc config set-secret SmartHostPassword <<<"$pw"
expect_status 0 "the right secret is stored"
expect_out "the running service was told to re-read its configuration" "... and the service is told"
sleep 1
send "right secret"
expect_status 0 "a second message for the smart host is accepted"
[ -n "$qid" ] && imsvc queue delete "$qid" >/dev/null 2>&1 || true   # the one that waited is not needed
ndr=$(wait_ndr "right secret" '5\.4\.6') || true
[ -n "$ndr" ] && pass "with the right secret the message loops through NTLM hops until 554 5.4.6" ||
    { fail "no 5.4.6 NDR with the right secret"; imsvc queue list >&2 || true; imsvc events --last 3 >&2 || true; }
OUT=$(cat "${ndr:-/dev/null}")
expect_out_re "Diagnostic-Code: smtp; 554 5\.4\.6" "the NDR carries the hop limit's 554 5.4.6"
hops=$(grep -c "with ESMTPA" <<<"$OUT" || true)
[ "$hops" -ge 40 ] && pass "every relayed hop authenticated with the secret ($hops Received fields say ESMTPA)" ||
    fail "only $hops Received fields say ESMTPA"
expect_out_re "authenticated as $IMSVC_NTLM_DOMAIN\\\\+$IMSVC_NTLM_USER" "the hops name the smart host user"

run wine reg query "$secrets" /v SmartHostPassword
blob=$(awk '$1 == "SmartHostPassword" {print $3}' <<<"$OUT")
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n' | tr a-f A-F; }
hex16() { printf '%s' "$1" | iconv -t UTF-16LE | od -An -tx1 | tr -d ' \n' | tr a-f A-F; }
[ ${#blob} -ge 100 ] && ! grep -q "$(hex "$pw")" <<<"$blob" && ! grep -q "$(hex16 "$pw")" <<<"$blob" &&
    pass "the registry holds a blob of ${#blob} hex digits without the password in UTF-8 or UTF-16" ||
    fail "the registry value is missing or holds the password in clear"
run imsvc config show
expect_out_re "^SmartHostPassword +\(secret\) set: " "config show says the secret is set"
expect_out_re "^SmartHostPasswordFile +\(default\)$" "no password file is configured"
run imsvc events
! grep -qF "$pw" <<<"$OUT$ERR" && pass "no event holds the password" || fail "an event holds the password"

run imsvc stop
expect_status 0 "stop"
run imsvc uninstall
expect_status 0 "uninstall"
summary
