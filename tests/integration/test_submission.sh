#!/usr/bin/env bash
# test_submission.sh - the submission listeners (RFC 6409 on SubmissionPort,
# implicit TLS on SubmissionTlsPort, RFC 8314) and the configurable limits,
# with real clients: swaks and Python's socket and ssl.
#
# The service runs under Wine's SCM with SMTP on 127.0.0.1:2765, submission
# on 2766 and implicit TLS on 2767 (in place of 587 and 465), LocalDomains
# imsvc.test, a SmartHost (tests/integration/smtp_sink.py on 2768) and
# MasqueradeDomain masq.example; winbindd serves the NTLM test user
# (tests/lib/winbind.sh). Checked:
#   - on 2766: STARTTLS offered and AUTH not, before TLS; MAIL before AUTH
#     gets 530 5.7.0, in clear and in TLS; AUTH before STARTTLS gets 530
#     5.7.0 Must issue a STARTTLS command first; swaks with STARTTLS and AUTH
#     NTLM relays, and the smart host sees MAIL FROM in the masquerade domain;
#   - on 2767: nothing in clear (no greeting without a TLS handshake); in TLS
#     the greeting, AUTH offered, STARTTLS neither offered nor taken, MAIL
#     before AUTH 530 5.7.0; swaks --tlsc with AUTH NTLM delivers (ESMTPSA);
#   - on 2765 the SMTP policy is unchanged: mail for a local domain without
#     AUTH; and the limits: MaxRecipients 3 (452 4.5.3 for the fourth),
#     MaxMessagesPerConnection 2 (421 4.7.0 at the third MAIL, then closed),
#     MaxHops 3 (554 5.4.6 for four Received fields);
#   - ReverseDns: the Received field names the client's confirmed host name;
#   - a submission port that cannot be bound: event 2400, SMTP goes on.
# Every daemon it starts (sink, winbindd) is stopped by its PID on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/winbind.sh
. tests/lib/assert.sh
. tests/lib/queue.sh

PORT=2765        # SMTP
SUB=2766         # submission, STARTTLS (587 in production)
SUBTLS=2767      # submission, implicit TLS (465 in production)
SINK_PORT=2768   # the smart host
T=$(mktemp -d /tmp/imsvc-submit.XXXXXX)
SINK_PID=
sink_stop() {
    [ -n "$SINK_PID" ] || return 0
    kill "$SINK_PID" 2>/dev/null || true
    wait "$SINK_PID" 2>/dev/null || true
    SINK_PID=
}
trap 'sink_stop; wb_stop; wp_destroy; rm -rf "$T"' EXIT
wp_create
wb_start

exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
data="$WINEPREFIX/drive_c/ProgramData/IMSvc"
drop="$data/Drop"
mkdir -p "$exe_dir"
cp "${B:-build}/imsvc.exe" "$exe_dir/"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null; }
in_drop() { grep -l "^Subject: $1" "$drop"/*.eml 2>/dev/null | head -1 || true; }
until_ok() {   # until_ok SECONDS CMD...: until CMD succeeds
    local end=$((SECONDS + $1)); shift
    until "$@"; do [ "$SECONDS" -lt "$end" ] || return 1; sleep 0.3; done
}
have_drop() { [ -n "$(in_drop "$1")" ]; }
auth=(--auth NTLM --auth-user "$IMSVC_NTLM_USER" --auth-password "$IMSVC_NTLM_PASSWORD"
      --auth-extra domain="$IMSVC_NTLM_DOMAIN")

# dialog PORT clear|tls LINE...: a session that prints every reply line.
# In a LINE, "\n" is a line break (CRLF); "STARTTLS" that gets 220 goes on
# in TLS. "(closed)" when the server closed the connection.
cat >"$T/dialog.py" <<'PY'
import socket, ssl, sys
port, mode, lines = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = socket.create_connection(("127.0.0.1", port), timeout=20)
if mode == "tls":
    s = ctx.wrap_socket(s)
buf = b""
def reply():
    global buf
    while True:
        while b"\n" not in buf:
            try:
                chunk = s.recv(4096)
            except OSError:
                chunk = b""
            if not chunk:
                print("(closed)")
                return "(closed)"
            buf += chunk
        l, _, buf = buf.partition(b"\n")
        l = l.decode("latin-1").rstrip("\r")
        print(l)
        if len(l) < 4 or l[3] != "-":
            return l
reply()
for line in lines:
    try:
        s.sendall(line.replace("\\n", "\r\n").encode() + b"\r\n")
    except OSError:
        print("(closed)")
        break
    r = reply()
    if r == "(closed)":
        break
    if line == "STARTTLS" and r.startswith("220"):
        s = ctx.wrap_socket(s)
sys.stdout.flush()
PY
dialog() { python3 "$T/dialog.py" "$@"; }

run imsvc install
expect_status 0 "install"
for kv in "ListenPort $PORT" "LocalDomains imsvc.test" "SubmissionPort $SUB" \
          "SubmissionTlsPort $SUBTLS" "SmartHost 127.0.0.1:$SINK_PORT" "SmartHostTls 0" \
          "MasqueradeDomain masq.example" "MaxRecipients 3" "MaxMessagesPerConnection 2" \
          "MaxHops 3"; do
    run imsvc config set ${kv%% *} "${kv#* }"
    expect_status 0 "config set ${kv%% *} ${kv#* }"
done
run imsvc config set MaxRecipients 0
expect_status 1 "MaxRecipients 0 is refused"
run imsvc config set MasqueradeDomain "not a domain"
expect_status 1 "a MasqueradeDomain that is no domain is refused"
python3 tests/integration/smtp_sink.py --port "$SINK_PORT" --dir "$T/sink" --pidfile "$T/sink.pid" \
    </dev/null >"$T/sink.log" 2>&1 &
SINK_PID=$!
until_ok 10 test -s "$T/sink.pid" || { fail "smtp_sink did not start"; cat "$T/sink.log" >&2; }
run imsvc start
expect_status 0 "start"

# --- submission with STARTTLS ----------------------------------------------------
run dialog $SUB clear "EHLO client.example" "MAIL FROM:<a@imsvc.test>" "AUTH NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==" "QUIT"
expect_out_re "^220 " "the submission port greets in clear"
expect_out_re "^250-STARTTLS" "it offers STARTTLS"
grep -q "^250.AUTH" <<<"$OUT" && fail "AUTH offered before TLS" || pass "AUTH is not offered before TLS"
expect_out "530 5.7.0 Authentication required" "MAIL before AUTH gets 530 5.7.0"
expect_out "530 5.7.0 Must issue a STARTTLS command first" "AUTH before STARTTLS is refused with 530 5.7.0"

run dialog $SUB clear "EHLO client.example" "STARTTLS" "EHLO client.example" "MAIL FROM:<a@imsvc.test>" \
    "RCPT TO:<u@imsvc.test>" "QUIT"
expect_out_re "^250-AUTH NTLM LOGIN PLAIN" "in TLS, AUTH is offered"
expect_out "530 5.7.0 Authentication required" "in TLS, MAIL before AUTH still gets 530 5.7.0"
expect_out "503 5.5.1 Error: need MAIL command" "... and no transaction starts"

run swaks --server 127.0.0.1:$SUB --tls "${auth[@]}" --from sender@imsvc.test \
    --to someone@elsewhere.example --header "Subject: submitted"
expect_status 0 "swaks: STARTTLS, AUTH NTLM, then mail on the submission port"
expect_out_re "<~ +235 2\.7\.0" "AUTH NTLM accepted inside TLS"
expect_out_re "<~ +250 2\.0\.0 .*queued as" "relayed once authenticated"
sunk() { grep -l "^Subject: submitted" "$T/sink"/*.eml 2>/dev/null | head -1 || true; }
have_sunk() { [ -n "$(sunk)" ]; }
until_ok 30 have_sunk && pass "the submitted message reaches the smart host" ||
    fail "submitted message not at the smart host"
f=$(sunk)
env=${f%.eml}.env
expect_eq "$(head -1 "${env:-/dev/null}" 2>/dev/null | tr -d '\r' | cut -d' ' -f1)" "MAIL" "the sink has its envelope"
grep -q "^MAIL FROM:<sender@masq\.example>" "${env:-/dev/null}" 2>/dev/null &&
    pass "outbound MAIL FROM is in the masquerade domain" ||
    fail "MAIL FROM not masqueraded: $(head -1 "${env:-/dev/null}" 2>/dev/null)"
grep -q "^	by .* with ESMTPSA id " "${f:-/dev/null}" 2>/dev/null &&
    pass "the Received field says ESMTPSA" || fail "no ESMTPSA Received field"

# --- submission with implicit TLS ---------------------------------------------------
run python3 -c "
import socket
s = socket.create_connection(('127.0.0.1', $SUBTLS), timeout=3)
try:
    print('clear:', repr(s.recv(100)))
except socket.timeout:
    print('nothing in clear')"
expect_out "nothing in clear" "the implicit-TLS port says nothing before a TLS handshake"
run dialog $SUBTLS tls "EHLO client.example" "STARTTLS" "MAIL FROM:<a@imsvc.test>" "QUIT"
expect_out_re "^220 .* ESMTP imsvc ready" "in TLS from the start, the greeting"
expect_out_re "^250-AUTH NTLM LOGIN PLAIN" "AUTH is offered at once"
grep -q "^250.STARTTLS" <<<"$OUT" && fail "STARTTLS offered inside TLS" || pass "STARTTLS is not offered"
expect_out "503 5.5.1 Error: TLS is already active" "STARTTLS is refused"
expect_out "530 5.7.0 Authentication required" "MAIL before AUTH gets 530 5.7.0"

run swaks --server 127.0.0.1:$SUBTLS --tlsc "${auth[@]}" --from sender@imsvc.test \
    --to user@imsvc.test --header "Subject: implicit tls"
expect_status 0 "swaks --tlsc with AUTH NTLM on the implicit-TLS port"
expect_out_re "<~ +235 2\.7\.0" "AUTH NTLM accepted"
until_ok 30 have_drop "implicit tls" && pass "the message is delivered" || fail "not delivered"
OUT=$(cat "$(in_drop "implicit tls")" 2>/dev/null || true)
expect_out "with ESMTPSA" "Received says ESMTPSA"
expect_out "authenticated as IMSVCTEST\\\\imsvctest" "Received names the user"

# --- the SMTP port and the limits -------------------------------------------------
run swaks --server 127.0.0.1:$PORT --from a@example.com --to user@imsvc.test --header "Subject: plain smtp"
expect_status 0 "the SMTP port still takes mail for a local domain without AUTH"
until_ok 30 have_drop "plain smtp" && pass "... and delivers it" || fail "plain SMTP message not delivered"
f=$(in_drop "plain smtp")
grep -q "^Received: from [^ ]* (\[127\.0\.0\.1\])" "${f:-/dev/null}" &&
    pass "without ReverseDns the Received field has the address only" ||
    fail "Received: $(grep -m1 '^Received' "${f:-/dev/null}")"

run dialog $PORT clear "EHLO c" "MAIL FROM:<a@example.com>" "RCPT TO:<u1@imsvc.test>" \
    "RCPT TO:<u2@imsvc.test>" "RCPT TO:<u3@imsvc.test>" "RCPT TO:<u4@imsvc.test>" "QUIT"
expect_eq "$(grep -c '^250 2\.1\.5' <<<"$OUT")" 3 "MaxRecipients 3: three recipients are accepted"
expect_out "452 4.5.3 Error: too many recipients" "... the fourth gets 452 4.5.3"

msg='Subject: m\n\nbody\n.'
run dialog $PORT clear "EHLO c" \
    "MAIL FROM:<a@example.com>" "RCPT TO:<u@imsvc.test>" "DATA" "$msg" \
    "MAIL FROM:<a@example.com>" "RCPT TO:<u@imsvc.test>" "DATA" "$msg" \
    "MAIL FROM:<a@example.com>" "RCPT TO:<u@imsvc.test>"
expect_eq "$(grep -c '^250 2\.0\.0 Ok: queued' <<<"$OUT")" 2 "MaxMessagesPerConnection 2: two messages are taken"
expect_out_re "^421 4\.7\.0 .*too many messages in one connection \(at most 2\)" \
    "the third MAIL gets 421 4.7.0"
expect_out "(closed)" "... and the connection is closed"

run dialog $PORT clear "EHLO c" "MAIL FROM:<a@example.com>" "RCPT TO:<u@imsvc.test>" "DATA" \
    'Received: from a by b; Mon, 23 Nov 2026 10:00:00 +0000\nReceived: from b by c; Mon, 23 Nov 2026 10:00:00 +0000\nReceived: from c by d; Mon, 23 Nov 2026 10:00:00 +0000\nSubject: three hops\n\nbody\n.' \
    "MAIL FROM:<a@example.com>" "RCPT TO:<u@imsvc.test>" "DATA" \
    'Received: from a by b; Mon, 23 Nov 2026 10:00:00 +0000\nReceived: from b by c; Mon, 23 Nov 2026 10:00:00 +0000\nReceived: from c by d; Mon, 23 Nov 2026 10:00:00 +0000\nReceived: from d by e; Mon, 23 Nov 2026 10:00:00 +0000\nSubject: four hops\n\nbody\n.' "QUIT"
expect_eq "$(grep -c '^250 2\.0\.0 Ok: queued' <<<"$OUT")" 1 "MaxHops 3: a message with three Received fields is taken"
expect_out "554 5.4.6 Error: too many hops (more than 3 Received header fields): a mail loop" \
    "one with four gets 554 5.4.6 naming the limit"

# --- ReverseDns ---------------------------------------------------------------------
run imsvc config set ReverseDns 1
expect_status 0 "config set ReverseDns 1"
sleep 3   # the listeners restart with the new setting
start=$SECONDS
run swaks --server 127.0.0.1:$PORT --from a@example.com --to user@imsvc.test --header "Subject: rdns"
expect_status 0 "a session with ReverseDns"
[ $((SECONDS - start)) -lt 10 ] && pass "its greeting did not wait long" || fail "took $((SECONDS - start)) s"
until_ok 30 have_drop "rdns" && pass "... delivered" || fail "rdns message not delivered"
f=$(in_drop "rdns")
name=$(grep -m1 "^Received: from" "${f:-/dev/null}" | sed -n 's/^Received: from [^ ]* (\([^ ]*\) \[127\.0\.0\.1\]).*/\1/p' | tr -d '\r')
[ -n "$name" ] && getent ahostsv4 "$name" | grep -q "^127\.0\.0\.1 " &&
    pass "the Received field names the client's host ($name), which resolves back to its address" ||
    fail "no confirmed client name in: $(grep -m1 '^Received' "${f:-/dev/null}")"

# --- a submission port that cannot be bound --------------------------------------------
run imsvc config set SubmissionTlsPort $PORT
expect_status 0 "config set SubmissionTlsPort to the SMTP port"
sleep 3
run imsvc events --id "$(event_id MSG_LISTENER_NOT_STARTED)"
expect_out_re "submission with implicit TLS \(SubmissionTlsPort\) listener was not started on 127\.0\.0\.1 port $PORT" \
    "event 2400 names the listener, address and port"
expect_out_re "0000: 00100300 " "its Data holds location 0x00100300"
run swaks --server 127.0.0.1:$PORT --from a@example.com --to user@imsvc.test --header "Subject: still smtp"
expect_status 0 "the SMTP listener goes on"
run swaks --server 127.0.0.1:$SUB --quit-after EHLO
expect_status 0 "so does the STARTTLS submission listener"

run imsvc stop
expect_status 0 "stop"
run imsvc uninstall
summary
