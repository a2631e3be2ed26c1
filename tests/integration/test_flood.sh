#!/usr/bin/env bash
# test_flood.sh - a client that makes AUTH fail on purpose cannot keep a
# session, flood the event log, or push older events out of the journal.
#
# The service runs under Wine's SCM with winbindd serving NTLM. A client
# sends `AUTH NTLM <garbage>` again and again on one session: each gets 454
# (AcceptSecurityContext refuses the token) and counts toward
# MaxProtocolErrors (5 here): the sixth is followed by 421 4.7.0 and the
# session is closed. Three such sessions from one address write event 4131 once in
# the minute, and the next one after the minute says how many were not
# logged. The journal still holds the service's start event. With
# AuthRequiresTls, AUTH NTLM is not offered in clear and gets 530 5.7.0.
# AUTH PLAIN and LOGIN with overlong names or passwords get 535.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/winbind.sh
. tests/lib/assert.sh
trap 'wb_stop; wp_destroy' EXIT
wp_create
wb_start

PORT=2532
exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
mkdir -p "$exe_dir"
cp "${B:-build}/imsvc.exe" "$exe_dir/"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null; }

run imsvc install
expect_status 0 "install"
imsvc config set ListenPort $PORT >/dev/null
imsvc config set MaxProtocolErrors 5 >/dev/null
run imsvc start
expect_status 0 "start"

# One session: garbage tokens until the server closes it.
flood() {
    python3 - "$PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
f = s.makefile("rb")
def reply():
    lines = []
    while True:
        l = f.readline()
        if not l:
            return lines
        lines.append(l.decode().rstrip())
        if l[3:4] != b"-":
            return lines
reply(); s.sendall(b"EHLO flood.example\r\n"); reply()
codes = []
for i in range(20):
    try:
        s.sendall(b"AUTH NTLM bm90IGFuIE5UTE0gbWVzc2FnZSBhdCBhbGw=\r\n")
    except OSError:
        break
    r = reply()
    if not r:
        break
    codes.append(r[-1][:9])
    if r[-1].startswith("421"):
        break
print(" ".join(codes))
print("closed" if not f.readline() else "open")
PY
}

run flood
expect_out_re "^(454 4\.7\.0 ){6}421 4\.7\.0" \
    "garbage AUTH tokens get 454, five allowed, the sixth followed by 421 4.7.0"
expect_out "closed" "the session is closed after the error limit"
run flood
run flood
run imsvc events --id 4131
n=$(grep -c "^Event ID:" <<<"$OUT" || true)
expect_eq "$n" 1 "three flooding sessions from one address logged event 4131 once"
run imsvc events --id 1000
expect_out "started successfully" "the journal still holds the start event"
# The status file is rewritten every second or so: give it a few.
for _ in $(seq 1 10); do
    run imsvc status
    grep -qE "protocol-errors 3" <<<"$OUT" && break
    sleep 1
done
expect_out_re "protocol-errors 3" "status counts three sessions closed for errors"

# After the window, the next event says how many were held back.
sleep 61
run flood
run imsvc events --id 4131
expect_out_re "[0-9]+ identical events from this address in the last minute were not logged" \
    "the next event after the minute counts the suppressed ones"

imsvc config set AuthRequiresTls 1 >/dev/null
sleep 2
run swaks --server 127.0.0.1:$PORT --quit-after EHLO
expect_out_re "<- +250-STARTTLS" "STARTTLS offered"
if grep -qE "<- +250.AUTH" <<<"$OUT"; then fail "AUTH offered in clear with AuthRequiresTls"; else pass "AUTH not offered in clear with AuthRequiresTls"; fi
run python3 -c "import smtplib; s = smtplib.SMTP('127.0.0.1', $PORT); s.ehlo(); c, m = s.docmd('AUTH NTLM'); print(c, m.decode())"
expect_out_re "^530 5\.7\.0" "AUTH NTLM in clear gets 530 5.7.0 with AuthRequiresTls"
run swaks --server 127.0.0.1:$PORT --tls --quit-after AUTH --auth NTLM --auth-user "$IMSVC_NTLM_USER" \
    --auth-password "$IMSVC_NTLM_PASSWORD" --auth-extra domain="$IMSVC_NTLM_DOMAIN"
expect_out_re "<~ +235 2\.7\.0" "AUTH NTLM inside TLS still works"

# AUTH PLAIN and LOGIN (inside TLS) with a user name or password longer than
# any account takes: refused as a failed attempt, the session goes on.
run python3 - "$PORT" <<'PY'
import base64, smtplib, ssl, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
s.starttls(context=ssl._create_unverified_context())
s.ehlo()
plain = base64.b64encode(b"\0" + b"u" * 10 + b"\0" + b"p" * 300).decode()
print("plain", *s.docmd("AUTH PLAIN", plain))
print("login-user", *s.docmd("AUTH LOGIN", base64.b64encode(b"u" * 400).decode()))
print("login2-user", *s.docmd("AUTH LOGIN", base64.b64encode(b"u" * 10).decode()))
print("login2-pass", *s.docmd(base64.b64encode(b"p" * 400).decode()))
print("noop", *s.docmd("NOOP"))
PY
expect_out_re "^plain 535 " "AUTH PLAIN with a 300-octet password is refused with 535"
expect_out_re "^login-user 501 b'5\.5\.2" "AUTH LOGIN with a 400-octet user name is refused with 501 5.5.2"
expect_out_re "^login2-pass 535 " "AUTH LOGIN with a 400-octet password is refused with 535"
expect_out_re "^noop 250 " "the session goes on after all three"

run imsvc stop
expect_status 0 "stop"
run imsvc uninstall
expect_status 0 "uninstall"
summary
