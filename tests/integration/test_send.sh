#!/usr/bin/env bash
# test_send.sh - `imsvc send`: the SMTP client engine over real sockets, to
# Postfix and to imsvc itself.
#
# Postfix runs as a private instance (its own config, queue and data
# directories under one mktemp directory) on 127.0.0.1: port 2591 offers
# STARTTLS with a self-signed certificate, port 2592 offers no TLS; mail for
# send.test is delivered by the virtual agent to a Maildir in that directory.
# Checked there: --tls required --trust any delivers over STARTTLS and the
# message arrives intact (dot-stuffed line, long line, CRLF); -v shows the
# dialogue and the negotiated protocol and strength; --trust verify refuses
# the self-signed certificate; --tls required to the port without STARTTLS
# fails with a clear reason (transient, exit 3); --auth ntlm to a server that
# offers no NTLM says exactly that (permanent, exit 1) and logs event 4020.
# Then the imsvc service, installed in the test prefix with winbindd serving
# the test user: --auth ntlm --user IMSVCTEST\imsvctest relays to a foreign
# domain (over STARTTLS too), without authentication the relay is refused
# with 550 5.7.1, and a wrong password fails with the 535 reply.
# Then the queue relays to the service itself as its smart host with STARTTLS
# required and NTLM credentials, hop after hop, until the hop limit answers
# 554 5.4.6 and the sender gets that NDR.
# Postfix and winbindd are stopped by their PIDs on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/winbind.sh
. tests/lib/assert.sh

PF_PORT=2591          # Postfix with STARTTLS
PF_PORT_CLEAR=2592    # Postfix without
SVC_PORT=2528         # the imsvc service
PF_DIR=
PF_PID=

pf_stop() {
    [ -n "$PF_DIR" ] || return 0
    postfix -c "$PF_DIR/etc" stop >/dev/null 2>&1 || true
    if [ -n "$PF_PID" ]; then
        for _ in $(seq 1 50); do
            kill -0 "$PF_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$PF_PID" 2>/dev/null || true
    fi
    rm -rf "$PF_DIR"
    PF_DIR= PF_PID=
}

pf_start() {
    PF_DIR=$(mktemp -d /tmp/imsvc-postfix.XXXXXX)
    chmod 755 "$PF_DIR"
    mkdir -p "$PF_DIR/etc" "$PF_DIR/queue" "$PF_DIR/data" "$PF_DIR/mail"
    chown postfix "$PF_DIR/data"
    chown nobody:nogroup "$PF_DIR/mail"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mx.send.test \
        -keyout "$PF_DIR/etc/key.pem" -out "$PF_DIR/etc/cert.pem" 2>/dev/null
    cp /etc/postfix/dynamicmaps.cf "$PF_DIR/etc/" 2>/dev/null || true
    cat >"$PF_DIR/etc/main.cf" <<EOF
compatibility_level = 3.10
queue_directory = $PF_DIR/queue
data_directory = $PF_DIR/data
maillog_file = $PF_DIR/maillog
maillog_file_prefixes = /tmp
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.send.test
mydomain = send.test
mydestination =
mynetworks = 127.0.0.0/8
smtputf8_enable = no
virtual_mailbox_domains = send.test
virtual_mailbox_base = $PF_DIR/mail
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(id -g nobody)
smtpd_tls_security_level = may
smtpd_tls_cert_file = $PF_DIR/etc/cert.pem
smtpd_tls_key_file = $PF_DIR/etc/key.pem
smtpd_tls_loglevel = 1
EOF
    # The stock master.cf, no chroot, smtpd on our two ports only.
    awk -v p1="$PF_PORT" -v p2="$PF_PORT_CLEAR" '
        /^#/ || NF < 8 { print; next }
        $1 == "smtp" && $2 == "inet" {
            $5 = "n"; $1 = "127.0.0.1:" p1; print
            $1 = "127.0.0.1:" p2; print $0 " -o smtpd_tls_security_level=none"; next }
        $2 == "inet" { next }
        { $5 = "n"; print }' /etc/postfix/master.cf >"$PF_DIR/etc/master.cf"
    postfix -c "$PF_DIR/etc" start >/dev/null 2>&1 || { cat "$PF_DIR/maillog" 2>/dev/null; return 1; }
    PF_PID=$(tr -d ' ' <"$PF_DIR/queue/pid/master.pid")
    for _ in $(seq 1 50); do
        swaks --server 127.0.0.1:$PF_PORT --quit-after CONNECT >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "postfix did not answer on $PF_PORT" >&2
    return 1
}

# Wait until Postfix has delivered n messages; print the newest.
pf_delivered() {
    local n=$1 f
    for _ in $(seq 1 100); do
        [ "$(find "$PF_DIR/mail/inbox/new" -type f 2>/dev/null | wc -l)" -ge "$n" ] && break
        sleep 0.1
    done
    f=$(ls -t "$PF_DIR/mail/inbox/new/"* 2>/dev/null | head -1 || true)
    [ -n "$f" ] && cat "$f"
}

# Every file the test makes is in the prefix or PF_DIR: the trap removes
# those two directories and nothing else.
trap 'pf_stop; wb_stop; wp_destroy' EXIT
wp_create
wb_start
pf_start

exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
drop="$WINEPREFIX/drive_c/ProgramData/IMSvc/Drop"
mkdir -p "$exe_dir"
cp "${B:-build}/imsvc.exe" "$exe_dir/"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null; }
# Files handed to imsvc live in the prefix, named by their Windows path.
msg="$WINEPREFIX/drive_c/send-test.eml"
win_msg='C:\send-test.eml'
pw="$WINEPREFIX/drive_c/send-pw.txt"
bad_pw="$WINEPREFIX/drive_c/send-bad-pw.txt"
printf '%s\n' "$IMSVC_NTLM_PASSWORD" >"$pw"
printf '%s\n' "not-the-password" >"$bad_pw"
long=$(printf 'x%.0s' $(seq 1 900))
printf '%s\r\n' "From: Alice <alice@example.com>" "To: bob@send.test" \
    "Subject: imsvc send test" "Date: Mon, 2 Nov 2026 10:00:00 +0000" \
    "Message-ID: <send-test-1@example.com>" "" \
    "first line" ".a line that starts with a dot" "." ".." "$long" "last line" >"$msg"
send() { imsvc send --helo client.example "$@" "$win_msg"; }

# (a) Postfix ------------------------------------------------------------------

run send --server 127.0.0.1:$PF_PORT --from alice@example.com --to bob@send.test \
    --tls required --trust any -v
expect_status 0 "send --tls required --trust any to Postfix"
expect_out_re "^S: 250-STARTTLS" "-v: Postfix offers STARTTLS"
expect_out_re "^C: STARTTLS" "-v: STARTTLS sent"
expect_out_re "^TLS: negotiated TLS 1\.[23], .*policy requires TLS 1\.2 or newer" \
    "-v: the negotiated protocol, cipher and strength are shown"
expect_out_re "^C: MAIL FROM:<alice@example.com>" "-v: MAIL FROM after TLS"
expect_out_re "^S: 250 2\.0\.0 Ok: queued as" "-v: Postfix queued the message"
expect_out_re "^bob@send.test: delivered: 250 2\.0\.0" "the recipient is reported delivered"
got=$(pf_delivered 1 | tr -d '\r')
OUT=$got
expect_out_re "by mx\.send\.test \(Postfix\) with ESMTPS" "Postfix received it over TLS (ESMTPS)"
lines=$(wc -l <"$msg")
if [ -n "$got" ] && diff <(tail -n "$lines" <<<"$got") <(tr -d '\r' <"$msg") >/dev/null; then
    pass "the message arrived intact (dot lines, 900-octet line, every header and body line)"
else
    fail "the delivered message differs from the file sent"
fi

run send --server 127.0.0.1:$PF_PORT --from alice@example.com --to bob@send.test \
    --tls required --trust verify
expect_status 3 "--trust verify refuses the self-signed certificate (transient)"
expect_out_re "why: .*TLS handshake failed: .*0x800" "the reason names the SSPI status"

run send --server 127.0.0.1:$PF_PORT_CLEAR --from alice@example.com --to bob@send.test --tls required -v
expect_status 3 "--tls required to a server without STARTTLS fails, transient"
expect_out_re "bob@send.test: transient failure, status 4\.7\.10" "status 4.7.10"
expect_out_re "why: .*STARTTLS" "the reason names STARTTLS"
expect_out_re "^C: QUIT" "the session ends with QUIT"
[ "$(find "$PF_DIR/mail/inbox/new" -type f | wc -l)" = 1 ] && pass "nothing sent in clear" ||
    fail "a message was delivered without TLS"

run send --server 127.0.0.1:$PF_PORT_CLEAR --from alice@example.com --to bob@send.test --tls off
expect_status 0 "--tls off delivers in clear"

# Connection reuse (service/io/outbound): three messages over one connection,
# one EHLO; Postfix's own disconnect line counts the commands it saw.
before=$(find "$PF_DIR/mail/inbox/new" -type f | wc -l)
run send --server 127.0.0.1:$PF_PORT_CLEAR --from alice@example.com --to bob@send.test --tls off \
    --repeat 3 -v
pf_delivered $((before + 3)) >/dev/null
after=$(find "$PF_DIR/mail/inbox/new" -type f | wc -l)
pf_log=
for _ in $(seq 1 50); do
    pf_log=$(grep -E "disconnect from .* ehlo=1 mail=3 rcpt=3 data=3" "$PF_DIR/maillog" 2>/dev/null || true)
    [ -n "$pf_log" ] && break
    sleep 0.1
done
[ "$STATUS" = 0 ] && [ "$after" = $((before + 3)) ] &&
    [ "$(grep -c '^connected to ' <<<"$OUT")" = 1 ] && [ "$(grep -c '^C: EHLO ' <<<"$OUT")" = 1 ] &&
    [ "$(grep -c '^S: 250 2\.0\.0 Ok: queued as' <<<"$OUT")" = 3 ] && [ -n "$pf_log" ] &&
    pass "--repeat 3: 3 copies in the Maildir, one connect and one EHLO (Postfix: ${pf_log##*disconnect from })" ||
    fail "--repeat 3: exit $STATUS, $((after - before)) new copies, $(grep -c '^connected to ' <<<"$OUT") connects, $(grep -c '^C: EHLO ' <<<"$OUT") EHLO; Postfix: ${pf_log:-no disconnect line with ehlo=1 mail=3}"

# AUTH NTLM required; Postfix (no SASL) offers no authentication at all.
WINEDEBUG=err+eventlog,fixme+eventlog run send --server 127.0.0.1:$PF_PORT --from alice@example.com \
    --to bob@send.test --tls required --trust any --auth ntlm
expect_status 1 "--auth ntlm to a server without NTLM fails, permanent"
expect_out "why: authentication is required but the server offers no authentication at all" \
    "the reason says the server offers no authentication"
expect_out_re "status 5\.7\.0" "status 5.7.0"
# Wine's ReportEventW only traces its arguments (the ID with its
# severity bits) and, for an error, each insertion string.
send_failed=$(printf '0xc000%04x' "$(event_id MSG_SEND_FAILED)")
unexpected=$(printf '0xc000%04x' "$(event_id MSG_UNEXPECTED_ERROR)")
grep -q "ReportEventW (.*,$send_failed," <<<"$ERR" &&
    grep -q 'ReportEventW L"authentication is required but the server offers no authentication at all"' <<<"$ERR" &&
    pass "event 4020 (MSG_SEND_FAILED) reported with the reason" ||
    fail "no MSG_SEND_FAILED event in Wine's event log trace"
! grep -q "ReportEventW (.*,$unexpected," <<<"$ERR" && pass "no 4131 for a peer without NTLM" ||
    fail "4131 reported for a peer without NTLM"

run send --server 127.0.0.1:1 --from alice@example.com --to bob@send.test
expect_status 3 "connection refused is transient"
expect_out_re "why: could not connect to 127\.0\.0\.1:1" "the reason says the connection failed"

run imsvc send --server 127.0.0.1:$PF_PORT --to bob@send.test "$win_msg"
expect_status 2 "missing --from is a usage error"

# (b) imsvc itself, AUTH NTLM ----------------------------------------------------

run imsvc install
expect_status 0 "install"
imsvc config set ListenPort $SVC_PORT >/dev/null
imsvc config set LocalDomains "imsvc.test" >/dev/null
run imsvc start
expect_status 0 "start"
# Relayed mail waits in the queue (no MX for the foreign domain can be found
# from the test machine); local mail is in the drop folder. Either is stored.
drop_has() { grep -l "$1" "$drop"/*.eml "${drop%/Drop}/Queue"/active/*.eml "${drop%/Drop}/Queue"/*/*/*.eml 2>/dev/null | head -1 || true; }

sed -i 's/^Subject: .*/Subject: relay without auth\r/' "$msg"
run send --server 127.0.0.1:$SVC_PORT --from alice@example.com --to someone@elsewhere.example --tls off
expect_status 1 "relay to a foreign domain without authentication is refused"
expect_out_re "reply: 550 5\.7\.1" "with 550 5.7.1"
[ -z "$(drop_has 'Subject: relay without auth')" ] && pass "nothing stored" || fail "relayed without auth"

sed -i 's/^Subject: .*/Subject: relay with ntlm\r/' "$msg"
run send --server 127.0.0.1:$SVC_PORT --from alice@example.com --to someone@elsewhere.example \
    --tls off --auth ntlm --user "$IMSVC_NTLM_DOMAIN\\$IMSVC_NTLM_USER" --password-file 'C:\send-pw.txt' -v
expect_status 0 "AUTH NTLM with --user/--password-file relays to a foreign domain"
expect_out_re "^C: AUTH NTLM" "-v: AUTH NTLM sent"
expect_out_re "^C: <NTLM token, [0-9]+ octets>" "-v: token lines are marked, not printed"
expect_out_re "^S: 334 <NTLM challenge, [0-9]+ octets>" "-v: the challenge is marked"
expect_out_re "^S: 235 " "-v: 235 authenticated"
grep -qF -- "$IMSVC_NTLM_PASSWORD" <<<"$OUT$ERR" && fail "the password appears in the output" ||
    pass "the password never appears in the output"
f=$(drop_has 'Subject: relay with ntlm')
OUT=$(cat "${f:-/dev/null}")
expect_out_re "authenticated as $IMSVC_NTLM_DOMAIN\\\\+$IMSVC_NTLM_USER" "the Received header names the user"
expect_out "$long" "the long line arrived whole"

ehlo=$(swaks --server 127.0.0.1:$SVC_PORT --quit-after EHLO 2>&1 || true)
if grep -q "250-STARTTLS" <<<"$ehlo"; then
    sed -i 's/^Subject: .*/Subject: relay with tls and ntlm\r/' "$msg"
    run send --server 127.0.0.1:$SVC_PORT --from alice@example.com --to someone@elsewhere.example \
        --tls required --trust any --auth ntlm --user "$IMSVC_NTLM_DOMAIN\\$IMSVC_NTLM_USER" \
        --password-file 'C:\send-pw.txt' -v
    expect_status 0 "STARTTLS + AUTH NTLM to imsvc"
    expect_out_re "^TLS: negotiated" "TLS negotiated with imsvc's Schannel server"
    f=$(drop_has 'Subject: relay with tls and ntlm')
    OUT=$(cat "${f:-/dev/null}")
    expect_out "with ESMTPSA" "Received says ESMTPSA"
else
    echo "note: the service offers no STARTTLS in this build; STARTTLS to imsvc not checked"; printf "%s\n" "$ehlo" | grep "<-" || true
fi

run send --server 127.0.0.1:$SVC_PORT --from alice@example.com --to someone@elsewhere.example \
    --tls off --auth ntlm --user "$IMSVC_NTLM_DOMAIN\\$IMSVC_NTLM_USER" --password-file 'C:\send-bad-pw.txt'
expect_status 1 "a wrong password fails, permanent"
expect_out_re "reply: 535 5\.7\.3" "the 535 reply is shown"
expect_out_re "why: .*535 5\.7\.3" "the reason carries the 535 text"

# (c) XAUTH only (XAuth=2: the service sets SMTPD_OPT_NO_AUTH): the client
# falls back from AUTH to XAUTH NTLM. The fallback itself is also checked in
# tests/unit/check_smtpc.c (xauth_only), the server option in check_smtpd.c.
if grep -q SMTPD_OPT_NO_AUTH service/listener/smtp_server.c; then
    imsvc config set XAuth 2 >/dev/null
    imsvc stop >/dev/null
    run imsvc start
    expect_status 0 "start with XAuth=2"
    sed -i 's/^Subject: .*/Subject: relay with xauth\r/' "$msg"
    run send --server 127.0.0.1:$SVC_PORT --from alice@example.com --to someone@elsewhere.example \
        --tls off --auth ntlm --user "$IMSVC_NTLM_DOMAIN\\$IMSVC_NTLM_USER" --password-file 'C:\send-pw.txt' -v
    expect_status 0 "AUTH NTLM required, the server offers only XAUTH NTLM: delivered"
    expect_out_re "^S: 250-XAUTH NTLM" "-v: the server offers XAUTH NTLM"
    ! grep -qE "^S: 250.AUTH " <<<"$OUT" && pass "-v: the server offers no AUTH" || fail "AUTH offered with XAuth=2"
    expect_out_re "^C: XAUTH NTLM" "-v: the client falls back to XAUTH NTLM"
    expect_out "authenticated with XAUTH NTLM" "-v: authenticated through XAUTH"
    [ -n "$(drop_has 'Subject: relay with xauth')" ] && pass "the XAUTH-authenticated relay was stored" ||
        fail "the XAUTH-authenticated relay is missing"
else
    echo "note: the service does not map XAuth=2 to SMTPD_OPT_NO_AUTH yet; XAUTH-only end to end not checked"
fi

# (d) The queue's smart host options, end to end: STARTTLS required (any
# certificate) and NTLM with explicit credentials, to this same service. Mail
# relayed to it comes back authenticated over TLS and is relayed again, hop
# after hop, until the hop limit refuses it with 554 5.4.6; the sender, in a
# local domain, gets that NDR. Without TLS or without authentication the
# loop would end at once with another status (a TLS failure, or 550 5.7.1).
imsvc config set SmartHost "127.0.0.1:$SVC_PORT" >/dev/null
imsvc config set SmartHostTls 2 >/dev/null
imsvc config set SmartHostTrust 1 >/dev/null
imsvc config set SmartHostAuth 2 >/dev/null
imsvc config set SmartHostUser "$IMSVC_NTLM_DOMAIN\\$IMSVC_NTLM_USER" >/dev/null
imsvc config set SmartHostPasswordFile 'C:\send-pw.txt' >/dev/null
sleep 1
sed -i 's/^Subject: .*/Subject: around the loop\r/' "$msg"
run send --server 127.0.0.1:$SVC_PORT --from looper@imsvc.test --to far@loop.example \
    --tls off --auth ntlm --user "$IMSVC_NTLM_DOMAIN\\$IMSVC_NTLM_USER" --password-file 'C:\send-pw.txt'
expect_status 0 "a message for the loop is accepted"
ndr=
for _ in $(seq 1 300); do
    ndr=$(grep -l "^Status: 5\.4\.6" "$drop"/*.eml 2>/dev/null | head -1 || true)
    [ -n "$ndr" ] && break
    sleep 0.5
done
[ -n "$ndr" ] && pass "the loop ended in an NDR with Status 5.4.6 for the sender" ||
    { fail "no 5.4.6 NDR for the looping message"; ls "$drop" "${drop%/Drop}/Queue" >&2 || true; }
OUT=$(cat "${ndr:-/dev/null}")
expect_out "To: <looper@imsvc.test>" "the NDR goes to the sender"
expect_out_re "Diagnostic-Code: smtp; 554 5\.4\.6" "it carries the remote 554 5.4.6 reply"
hops=$(grep -c "with ESMTPSA" <<<"$OUT" || true)
[ "$hops" -ge 40 ] && pass "the relayed hops went over TLS with authentication ($hops Received fields say ESMTPSA)" ||
    fail "only $hops Received fields say ESMTPSA"

run imsvc stop
expect_status 0 "stop"
run imsvc uninstall
expect_status 0 "uninstall"

pid=$PF_PID
pf_stop
! kill -0 "$pid" 2>/dev/null && pass "Postfix stopped (master PID $pid gone)" || fail "Postfix master $pid still running"
summary
