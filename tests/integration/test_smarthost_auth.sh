#!/usr/bin/env bash
# test_smarthost_auth.sh - AUTH PLAIN and LOGIN to a smart host, inside TLS
# only: Postfix with Cyrus SASL (sasldb) as the smart host.
#
# Postfix runs as a private instance (config, queue, data, a sasldb made by
# saslpasswd2, its smtpd.conf and a self-signed certificate, all under one
# mktemp directory) on 127.0.0.1: port 2750 offers STARTTLS and AUTH PLAIN
# LOGIN, port 2751 offers AUTH PLAIN LOGIN in clear and no STARTTLS; mail
# for send.test goes to a Maildir there.
# a. `imsvc send --auth plain` and `--auth login` over STARTTLS log on as the
#    sasldb user (Postfix logs sasl_method and sasl_username) and deliver;
#    -v shows the exchange with the credentials as labels, and no output
#    holds the password, in clear or base64.
# b. to the port without STARTTLS the client refuses to authenticate: the
#    reason says the password is never sent in clear, and Postfix saw no
#    AUTH command at all.
# c. the service, with SmartHost 2750, SmartHostTls 2, SmartHostAuth 2,
#    SmartHostAuthMechanisms plain,login and the password as the DPAPI
#    secret SmartHostPassword, relays a message that arrives authenticated
#    (ESMTPSA, sasl_username).
# d. with a wrong secret the message is deferred, its reason the smart
#    host's 535 reply, and no NDR goes out; with the right secret again,
#    `imsvc queue retry` delivers it.
# e. a smart host reached in clear (port 2751, SmartHostTls 1): deferred,
#    the reason names the session in clear, and Postfix saw no AUTH.
# f. a route for send.test (`imsvc route add ... auth=plain user=...`, its
#    password a DPAPI secret) takes mail past that smart host to port 2750,
#    authenticated with PLAIN over TLS.
# Postfix is stopped by its master's PID on exit, the prefix removed.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/assert.sh
. tests/lib/queue.sh

PF_PORT=2750          # Postfix: STARTTLS, AUTH PLAIN LOGIN
PF_PORT_CLEAR=2751    # Postfix: AUTH PLAIN LOGIN in clear, no STARTTLS
SVC_PORT=2752         # the imsvc service
SASL_USER=alice
SASL_PW='Pl41n-pw!x'
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
    PF_DIR=$(mktemp -d /tmp/imsvc-sasl.XXXXXX)
    chmod 755 "$PF_DIR"
    mkdir -p "$PF_DIR/etc" "$PF_DIR/queue" "$PF_DIR/data" "$PF_DIR/mail" "$PF_DIR/sasl"
    chown postfix "$PF_DIR/data"
    chown nobody:nogroup "$PF_DIR/mail"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mx.send.test \
        -keyout "$PF_DIR/etc/key.pem" -out "$PF_DIR/etc/cert.pem" 2>/dev/null
    # The user in a private sasldb; smtpd (as postfix) reads it through the
    # sasldb auxprop plugin named in its own smtpd.conf.
    printf '%s' "$SASL_PW" | saslpasswd2 -p -c -f "$PF_DIR/sasl/sasldb2" -u send.test "$SASL_USER"
    chown postfix "$PF_DIR/sasl/sasldb2"
    cat >"$PF_DIR/sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: PLAIN LOGIN
sasldb_path: $PF_DIR/sasl/sasldb2
EOF
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
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = $PF_DIR/sasl
smtpd_sasl_local_domain = send.test
smtpd_tls_auth_only = no
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

delivered() { find "$PF_DIR/mail/inbox/new" -type f 2>/dev/null | wc -l; }
# The newest delivered message whose Subject is $1, waiting up to 20 s.
arrived() {
    local f
    for _ in $(seq 1 100); do
        f=$(grep -l "^Subject: $1" "$PF_DIR/mail/inbox/new/"* 2>/dev/null | head -1 || true)
        [ -n "$f" ] && { cat "$f"; return 0; }
        sleep 0.2
    done
    return 1
}
# Postfix's count of AUTH commands: "auth=N/M" in its disconnect lines.
auth_lines() { grep -c ' auth=' "$PF_DIR/maillog" 2>/dev/null || true; }

trap 'pf_stop; wp_destroy' EXIT
wp_create
pf_start

exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
drop="$WINEPREFIX/drive_c/ProgramData/IMSvc/Drop"
mkdir -p "$exe_dir"
cp "${B:-build}/imsvc.exe" "$exe_dir/"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null; }
imsvc_in() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@"; }   # standard input passed on
msg="$WINEPREFIX/drive_c/auth-test.eml"
win_msg='C:\auth-test.eml'
printf '%s\n' "$SASL_PW" >"$WINEPREFIX/drive_c/auth-pw.txt"
mkmsg() {
    printf '%s\r\n' "From: <alice@imsvc.test>" "To: <bob@send.test>" "Subject: $1" \
        "Message-ID: <$RANDOM.$RANDOM@imsvc.test>" "" "body of $1" >"$msg"
}
b64() { printf '%b' "$1" | base64 -w0; }
no_password() {  # no_password WHAT: neither OUT nor ERR holds the password in any form
    if grep -qF -- "$SASL_PW" <<<"$OUT$ERR" || grep -qF -- "$(b64 "$SASL_PW")" <<<"$OUT$ERR" ||
        grep -qF -- "$(b64 "\\0$SASL_USER\\0$SASL_PW")" <<<"$OUT$ERR"; then
        fail "$1: the password appears (in clear or base64)"
    else
        pass "$1: the password appears nowhere, in clear or base64"
    fi
}

# a. imsvc send, PLAIN and LOGIN over STARTTLS ------------------------------------
for mech in plain login; do
    MECH=$(tr a-z A-Z <<<"$mech")
    mkmsg "send with $mech"
    run imsvc send --server 127.0.0.1:$PF_PORT --helo client.example --from alice@imsvc.test \
        --to bob@send.test --tls required --trust any --auth $mech --user $SASL_USER \
        --password-file 'C:\auth-pw.txt' -v "$win_msg"
    expect_status 0 "a: send --auth $mech over STARTTLS"
    expect_out_re "^C: STARTTLS" "a: $mech: STARTTLS first"
    if [ $mech = plain ]; then
        expect_out "C: AUTH PLAIN <user name and password>" "a: the PLAIN response is shown as a label"
    else
        expect_out_re "^C: AUTH LOGIN$" "a: AUTH LOGIN sent"
        expect_out "C: <user name>" "a: the LOGIN user name is shown as a label"
        expect_out "C: <password>" "a: the LOGIN password is shown as a label"
    fi
    expect_out_re "^S: 235 " "a: $mech: 235 from Postfix"
    expect_out "authenticated with AUTH $MECH" "a: authenticated with AUTH $MECH"
    no_password "a: send --auth $mech -v"
    OUT=$(arrived "send with $mech" | tr -d '\r') || OUT=
    expect_out_re "with ESMTPSA" "a: $mech: Postfix received it authenticated over TLS (ESMTPSA)"
    wait_for 10 grep -q "sasl_method=$MECH, sasl_username=$SASL_USER" "$PF_DIR/maillog" &&
        pass "a: Postfix logged sasl_method=$MECH, sasl_username=$SASL_USER" ||
        fail "a: no sasl_method=$MECH line for $SASL_USER in Postfix's log"
done

mkmsg "send with a wrong password"
printf '%s\n' "not-$SASL_PW" >"$WINEPREFIX/drive_c/auth-bad.txt"
run imsvc send --server 127.0.0.1:$PF_PORT --helo client.example --from alice@imsvc.test \
    --to bob@send.test --tls required --trust any --auth plain --user $SASL_USER \
    --password-file 'C:\auth-bad.txt' "$win_msg"
expect_status 1 "a: a wrong password is refused by the server (permanent for imsvc send)"
expect_out_re "why: the server refused AUTH PLAIN: 535 5\.7\.8" "a: the reason carries Postfix's 535 5.7.8"

# b. in clear: never --------------------------------------------------------------
sleep 1   # Postfix's disconnect lines for (a)
before=$(auth_lines)
mkmsg "send in clear"
run imsvc send --server 127.0.0.1:$PF_PORT_CLEAR --helo client.example --from alice@imsvc.test \
    --to bob@send.test --tls opportunistic --auth plain --user $SASL_USER \
    --password-file 'C:\auth-pw.txt' -v "$win_msg"
expect_status 3 "b: AUTH PLAIN offered only in clear: transient failure"
expect_out_re "^S: 250-AUTH (PLAIN LOGIN|LOGIN PLAIN)$" "b: Postfix offers AUTH PLAIN LOGIN in clear"
expect_out "why: authentication is required and the server offers AUTH PLAIN, but the session is not encrypted (the server does not offer STARTTLS): a password is never sent in clear" \
    "b: the reason says no password is sent in clear, and why the session is in clear"
expect_out_re "status 4\.7\.11" "b: status 4.7.11"
! grep -qE "^C: AUTH" <<<"$OUT" && pass "b: no AUTH command was sent" || fail "b: an AUTH command was sent in clear"
no_password "b: send in clear -v"
sleep 1
expect_eq "$(auth_lines)" "$before" "b: Postfix logged no AUTH from that session"

# c. the service with the smart host --------------------------------------------
run imsvc install
expect_status 0 "c: install"
for kv in "ListenPort $SVC_PORT" "LocalDomains imsvc.test" "RelayAddresses 127.0.0.1" \
          "SmartHost 127.0.0.1:$PF_PORT" "SmartHostTls 2" "SmartHostTrust 1" "SmartHostAuth 2" \
          "SmartHostAuthMechanisms plain,login" "SmartHostUser $SASL_USER" \
          "RetryIntervals 1h" "RetryEvery 1h"; do
    run imsvc config set ${kv%% *} "${kv#* }"
    expect_status 0 "c: config set ${kv%% *} ${kv#* }"
done
run imsvc config set SmartHostAuthMechanisms "plain,cram-md5"
expect_status 1 "c: SmartHostAuthMechanisms refuses a mechanism it does not know"
run imsvc_in config set-secret SmartHostPassword <<<"$SASL_PW"
expect_status 0 "c: the password is stored as the DPAPI secret SmartHostPassword"
run imsvc start
expect_status 0 "c: start"

relay() {  # relay SUBJECT: a message for bob@send.test through the service
    python3 - "$SVC_PORT" "$1" <<'EOF'
import smtplib, sys
port, subject = int(sys.argv[1]), sys.argv[2]
body = ("From: <alice@imsvc.test>\r\nTo: <bob@send.test>\r\nSubject: %s\r\n"
        "Message-ID: <%s@imsvc.test>\r\n\r\nbody\r\n") % (subject, subject.replace(" ", "-"))
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.sendmail("alice@imsvc.test", ["bob@send.test"], body)
s.quit()
EOF
}
relay "through the smart host" && pass "c: the service accepted a message for the smart host" ||
    fail "c: the service refused the message"
OUT=$(arrived "through the smart host" | tr -d '\r') || OUT=
expect_out_re "by mx\.send\.test \(Postfix\) with ESMTPSA" \
    "c: it arrived at Postfix authenticated over TLS (ESMTPSA)"
n=$(grep -c "sasl_username=$SASL_USER" "$PF_DIR/maillog" || true)
[ "$n" -ge 3 ] && pass "c: Postfix logged the service's logon as $SASL_USER" ||
    fail "c: $n sasl_username=$SASL_USER lines in Postfix's log, wanted 3"
queue_settle "${drop%/Drop}" 20 && pass "c: the queue is empty" || fail "c: the queue did not empty"

# d. a wrong secret: deferred with the server's reply, no NDR --------------------
run imsvc_in config set-secret SmartHostPassword <<<"wrong-$SASL_PW"
expect_status 0 "d: a wrong secret is stored"
sleep 3   # the re-read, and the connection (c) left parked for 2 s has closed
relay "with a wrong password" || fail "d: the service refused the message"
qid=
deferred_id() {
    qid=$(imsvc queue list 2>/dev/null | tr -d '\r' | awk '$2 == "deferred" {print $1; exit}')
    [ -n "$qid" ]
}
wait_for 30 deferred_id || true
run imsvc queue show "${qid:-none}"
expect_out_re "why +the server refused AUTH PLAIN: 535 5\.7\.8 Error: authentication failed" \
    "d: the message is deferred, its reason Postfix's 535 reply"
expect_out_re "status 4\.7\.8 from 127\.0\.0\.1$" "d: status 4.7.8 (transient) from the smart host"
no_password "d: queue show"
sleep 2
[ -z "$(grep -l 'with a wrong password' "$drop"/*.eml 2>/dev/null || true)" ] &&
    pass "d: no NDR went out for a wrong smart host password" || fail "d: an NDR went out"
run imsvc_in config set-secret SmartHostPassword <<<"$SASL_PW"
sleep 1
run imsvc queue retry "${qid:-none}"
expect_status 0 "d: queue retry"
OUT=$(arrived "with a wrong password" | tr -d '\r') || OUT=
expect_out_re "with ESMTPSA" "d: with the right secret again, the retry delivers it"

# e. the smart host in clear ------------------------------------------------------
sleep 3   # the connection of (d) parks for 2 s, then says QUIT: its disconnect line
before=$(auth_lines)
run imsvc config set SmartHost "127.0.0.1:$PF_PORT_CLEAR"
run imsvc config set SmartHostTls 1
sleep 1
relay "smart host in clear" || fail "e: the service refused the message"
qid=
wait_for 30 deferred_id || true
run imsvc queue show "${qid:-none}"
expect_out_re "why +authentication is required and the server offers AUTH PLAIN, but the session is not encrypted \(the server does not offer STARTTLS\): a password is never sent in clear" \
    "e: deferred: the reason says the session is in clear and no password is sent"
expect_out_re "status 4\.7\.11" "e: status 4.7.11"
expect_eq "$(auth_lines)" "$before" "e: Postfix logged no AUTH from the service"
[ -z "$(grep -l '^Subject: smart host in clear' "$PF_DIR/mail/inbox/new/"* 2>/dev/null || true)" ] &&
    pass "e: nothing was delivered in clear" || fail "e: the message was delivered in clear"

# f. a per-domain route with its own logon, over the smart host in clear ---------
run imsvc_in route add send.test 127.0.0.1:$PF_PORT trust=any auth=plain user=$SASL_USER <<<"$SASL_PW"
expect_status 0 "f: route add send.test with auth=plain (password from standard input)"
expect_out "route added: send.test 127.0.0.1:$PF_PORT tls=required trust=any auth=plain user=$SASL_USER" \
    "f: the route is required TLS, as its password mechanism asks"
sleep 1
relay "through a route" || fail "f: the service refused the message"
OUT=$(arrived "through a route" | tr -d '\r') || OUT=
expect_out_re "by mx\.send\.test \(Postfix\) with ESMTPSA" \
    "f: mail for send.test took its route: authenticated over TLS, not the smart host in clear"
n=$(grep -c "sasl_username=$SASL_USER" "$PF_DIR/maillog" || true)
[ "$n" -ge 5 ] && pass "f: Postfix logged the route's logon as $SASL_USER (the secret Route:send.test)" ||
    fail "f: $n sasl_username lines, wanted 5"

run imsvc events
no_password "e, f: imsvc events"

run imsvc stop
expect_status 0 "stop"
run imsvc uninstall
expect_status 0 "uninstall"
pid=$PF_PID
pf_stop
! kill -0 "$pid" 2>/dev/null && pass "Postfix stopped (master PID $pid gone)" || fail "Postfix master $pid still running"
summary
