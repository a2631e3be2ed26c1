#!/usr/bin/env bash
# test_logs.sh - the protocol log and the message tracking log, read after
# real sessions; `imsvc track`.
#
# The service runs in a private prefix on 127.0.0.1:2745, with winbindd
# serving the test user (tests/lib/winbind.sh; run this test under
# `flock /tmp/imsvc-winbind.lock`), LocalDomains logs.test and its SmartHost
# Postfix's smtp-sink on 127.0.0.1:2746. swaks authenticates with AUTH NTLM
# and relays a message to the smart host; another goes to a local
# recipient (Drop). Then:
# - the protocol log (Logs\SMTPyyyymmdd.log) has its W3C header, an inbound
#   line per command with the fields in place (client, user after AUTH,
#   site, port, verb, arguments, reply code, octets), the outbound session
#   to smtp-sink with its replies, and no AUTH data: neither the password
#   nor any NTLM token;
# - the tracking log (Logs\MSGTRKyyyymmdd.log) has RECEIVE lines with the
#   Message-IDs and DELIVER lines naming smtp-sink's reply and Drop;
# - imsvc track finds each message by Message-ID, sender and recipient,
#   shows what smtp-sink said, and says so when nothing matches;
# - ProtocolLog 0, set while the service runs, stops the protocol log and
#   not the tracking log; LogRetentionDays deletes older files at once.
# winbindd and smtp-sink are stopped by their PIDs on exit, the prefix removed.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/winbind.sh
. tests/lib/assert.sh
. tests/lib/queue.sh

PORT=2745
SINK_PORT=2746
B=${B:-build}
T=$(mktemp -d /tmp/imsvc-logs.XXXXXX)
SINK_PID=
cleanup() {
    set +e
    [ -n "$SINK_PID" ] && { kill "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null; }
    wb_stop
    wp_destroy
    rm -rf "$T"
}
trap cleanup EXIT
wp_create
wb_start

exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
data="$WINEPREFIX/drive_c/ProgramData/IMSvc"
mkdir -p "$exe_dir"
cp "$B/imsvc.exe" "$exe_dir/"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null; }
day=$(date -u +%Y%m%d)
plog="$data/Logs/SMTP$day.log"
who="$IMSVC_NTLM_DOMAIN\\$IMSVC_NTLM_USER"   # as the AUTH record names the user
tlog="$data/Logs/MSGTRK$day.log"

smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 64 </dev/null >"$T/sink.out" 2>&1 &
SINK_PID=$!

run imsvc install
expect_status 0 "install"
for kv in "ListenPort $PORT" "LocalDomains logs.test" "SmartHost 127.0.0.1:$SINK_PORT" \
          "SmartHostTls 0"; do
    # shellcheck disable=SC2086
    run imsvc config set $kv
    expect_status 0 "config set $kv"
done
run imsvc start
expect_status 0 "start"

# 1. An authenticated session relays to the smart host; 2. a local one.
run swaks --server 127.0.0.1:$PORT --from alice@logs.test --to bob@remote.test \
    --auth NTLM --auth-user "$IMSVC_NTLM_USER" --auth-password "$IMSVC_NTLM_PASSWORD" \
    --auth-extra "domain=$IMSVC_NTLM_DOMAIN" \
    --header "Message-Id: <logs-1@client.test>" --header "Subject: logs one"
expect_status 0 "swaks: AUTH NTLM, then relayed to the smart host"
printf '%s\n' "$OUT" >"$T/swaks1.out"
run swaks --server 127.0.0.1:$PORT --from dave@elsewhere.test --to carol@logs.test \
    --header "Message-Id: <logs-2@client.test>" --header "Subject: logs two"
expect_status 0 "swaks: a local recipient"
queue_settle "$data" 30 && pass "both messages left the queue" || fail "the queue did not empty"

has_line() { [ -f "$1" ] && grep -q -- "$2" "$1"; }
wait_for 10 has_line "$tlog" 'DELIVER.*carol@logs.test' || true
wait_for 10 has_line "$plog" 'SMTP-OUT.* QUIT ' || true

# The protocol log ------------------------------------------------------------
[ -f "$plog" ] && pass "the protocol log is Logs\\SMTP$day.log" || fail "no $plog"
OUT=$(tr -d '\r' <"$plog" 2>/dev/null || true)
expect_out "#Software: imsvc " "protocol log: #Software"
expect_out "#Version: 1.0" "protocol log: #Version"
expect_out_re "^#Date: [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$" "protocol log: #Date"
expect_out "#Fields: date time c-ip cs-username s-sitename s-computername s-ip s-port cs-method cs-uri-query sc-status sc-bytes cs-bytes time-taken" \
    "protocol log: #Fields"
bad_fields=$(grep -v '^#' <<<"$OUT" | awk 'NF != 14' | wc -l)
expect_eq "$bad_fields" 0 "every protocol log line has the 14 fields of its header"
field_line() {  # field_line AWK-CONDITION: the first line that meets it
    { grep -v '^#' <<<"$OUT" || true; } | awk "$1" | head -1
}
l=$(field_line '$5 == "SMTP-IN" && $9 == "EHLO"')
[ -n "$l" ] && pass "inbound EHLO logged: $l" || fail "no inbound EHLO line"
read -r d t cip user site sname sip sport verb args st scb csb tt <<<"$l"
expect_eq "$cip $site $sip $sport $st" "127.0.0.1 SMTP-IN 127.0.0.1 $PORT 250" \
    "EHLO: client, site, server address and port, reply code"
[[ "$d $t" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9]{2}:[0-9]{2}:[0-9]{2}$ ]] &&
    pass "EHLO: date and time" || fail "EHLO: date and time '$d $t'"
[ "${scb:-0}" -gt 50 ] && [ "${csb:-0}" -ge 7 ] && pass "EHLO: octets both ways ($scb, $csb)" ||
    fail "EHLO: octets '$scb' '$csb'"
l=$(field_line '$5 == "SMTP-IN" && $9 == "AUTH"')
read -r d t cip user site sname sip sport verb args st scb csb tt <<<"$l"
expect_eq "$args $st" "NTLM 235" "AUTH: the mechanism only, and 235"
expect_eq "${user,,}" "${who,,}" "AUTH: the user who logged on"
[ "${csb:-0}" -gt 100 ] && pass "AUTH: the exchange's octets are counted ($csb)" ||
    fail "AUTH: cs-bytes '$csb'"
l=$(field_line '$5 == "SMTP-IN" && $9 == "MAIL" && $10 ~ /alice/')
read -r d t cip user site sname sip sport verb args st scb csb tt <<<"$l"
expect_eq "$args $st ${user,,}" "FROM:<alice@logs.test> 250 ${who,,}" \
    "MAIL: arguments, reply and user"
l=$(field_line '$5 == "SMTP-IN" && $9 == "DATA" && $4 != "-"')
read -r d t cip user site sname sip sport verb args st scb csb tt <<<"$l"
expect_eq "$st" 250 "DATA: the reply after the message"
[ "${csb:-0}" -gt 200 ] && pass "DATA: the message's octets are counted ($csb)" ||
    fail "DATA: cs-bytes '$csb'"
l=$(field_line '$5 == "SMTP-IN" && $9 == "RCPT" && $10 ~ /carol/')
[ -n "$l" ] && pass "the local session's RCPT is logged" || fail "no RCPT TO:<carol@logs.test>"
# No AUTH data: the password, and no NTLM token (NTLMSSP in base64 begins
# "TlRMTVNT"); swaks showed the tokens it sent, none of them is here.
OUT=$(cat "$plog" "$tlog" 2>/dev/null || true)
grep -qF -- "$IMSVC_NTLM_PASSWORD" <<<"$OUT" && fail "the password is in a log" ||
    pass "no log holds the password"
grep -q "TlRMTVNT" <<<"$OUT" && fail "an NTLM token is in a log" || pass "no log holds an NTLM token"
tokens=$(grep -oE '[A-Za-z0-9+/=]{40,}' "$T/swaks1.out" | sort -u)
leaked=0
for tok in $tokens; do grep -qF -- "${tok:0:40}" <<<"$OUT" && leaked=$((leaked + 1)); done
[ -n "$tokens" ] && expect_eq "$leaked" 0 "none of the $(wc -w <<<"$tokens") tokens swaks exchanged is in a log" ||
    fail "swaks showed no NTLM tokens to look for"
OUT=$(tr -d '\r' <"$plog" 2>/dev/null || true)
l=$(field_line '$5 == "SMTP-OUT" && $9 == "RCPT"')
read -r d t cip user site sname sip sport verb args st scb csb tt <<<"$l"
expect_eq "$sname $sip $sport $args $st" "127.0.0.1 127.0.0.1 $SINK_PORT TO:<bob@remote.test> 250" \
    "outbound RCPT to smtp-sink: server, port, arguments and its 250"
l=$(field_line '$5 == "SMTP-OUT" && $9 == "-"')
read -r d t cip user site sname sip sport verb args st scb csb tt <<<"$l"
expect_eq "$st" 220 "outbound: smtp-sink's greeting"
l=$(field_line '$5 == "SMTP-OUT" && $9 == "DATA"')
read -r d t cip user site sname sip sport verb args st scb csb tt <<<"$l"
expect_eq "$st" 250 "outbound DATA: smtp-sink's 250 after the message"

# The tracking log ----------------------------------------------------------------
[ -f "$tlog" ] && pass "the tracking log is Logs\\MSGTRK$day.log" || fail "no $tlog"
OUT=$(tr -d '\r' <"$tlog" 2>/dev/null || true)
expect_out "#Fields: date-time,event-id,queue-id,message-id,sender-address,recipient-address,remote-host,reply" \
    "tracking log: #Fields"
expect_out_re "^[0-9T:.-]{23}Z,RECEIVE,[A-Za-z0-9._-]+,<logs-1@client.test>,alice@logs.test,bob@remote.test,\[127.0.0.1\] [^,]*,queued as [A-Za-z0-9]+.[A-Za-z0-9]+$" \
    "RECEIVE: Message-ID, sender, recipient, client and user"
id1=$({ grep ',RECEIVE,.*<logs-1@client.test>' <<<"$OUT" || true; } | cut -d, -f3 | head -1)
[ -n "$id1" ] || id1=NO-QUEUE-ID
expect_out_re "^[^,]+,DELIVER,$id1,,alice@logs.test,bob@remote.test,127.0.0.1:$SINK_PORT,250 " \
    "DELIVER: the same queue ID, to smtp-sink, with its 250"
expect_out_re "^[^,]+,DELIVER,[^,]+,,dave@elsewhere.test,carol@logs.test,drop directory," \
    "DELIVER: the local message to the drop directory"

# imsvc track -----------------------------------------------------------------------
run imsvc track --message-id '<logs-1@client.test>'
expect_status 0 "track --message-id"
expect_out_re "RECEIVE +$id1 alice@logs.test -> bob@remote.test from \[127.0.0.1\]" \
    "track: the RECEIVE line"
expect_out_re "DELIVER +$id1 alice@logs.test -> bob@remote.test to 127.0.0.1:$SINK_PORT: 250 " \
    "track: it left, and what smtp-sink said"
grep -q carol <<<"$OUT" && fail "track --message-id shows another message" ||
    pass "track --message-id shows only that message"
run imsvc track --message-id 'logs-1@CLIENT.test'
expect_out "DELIVER" "track: a Message-ID without brackets, in other case, matches"
run imsvc track --recipient carol@logs.test
expect_status 0 "track --recipient"
expect_out_re "DELIVER +[^ ]+ dave@elsewhere.test -> carol@logs.test to drop directory" \
    "track --recipient: delivered to Drop"
run imsvc track --sender alice@logs.test --since "$(date -u +%Y-%m-%d)"
expect_out "bob@remote.test" "track --sender --since today"
run imsvc track --sender alice@logs.test --since "$(date -u -d tomorrow +%Y-%m-%d)"
expect_status 1 "track --since tomorrow: nothing"
run imsvc track --sender nobody@logs.test
expect_status 1 "track: no such sender"
expect_err "no message in the tracking log matches" "... and it says so"
run imsvc track --since yesterday --sender alice@logs.test
expect_status 2 "track --since with no time in it is a usage error"
run imsvc track
expect_status 2 "track without a query is a usage error"

# A refusal: smtp-sink now refuses every RCPT for good; FAIL, then the NDR.
kill "$SINK_PID" 2>/dev/null || true
wait "$SINK_PID" 2>/dev/null || true
smtp-sink -u nobody -f RCPT "127.0.0.1:$SINK_PORT" 64 </dev/null >"$T/sink2.out" 2>&1 &
SINK_PID=$!
sleep 1
run swaks --server 127.0.0.1:$PORT --from alice@logs.test --to frank@remote.test \
    --auth NTLM --auth-user "$IMSVC_NTLM_USER" --auth-password "$IMSVC_NTLM_PASSWORD" \
    --auth-extra "domain=$IMSVC_NTLM_DOMAIN" --header "Message-Id: <logs-4@client.test>"
expect_status 0 "a message smtp-sink will refuse"
queue_settle "$data" 30 || true
wait_for 10 has_line "$tlog" 'DSN.*alice@logs.test' || true
run imsvc track --message-id '<logs-4@client.test>'
expect_status 0 "track --message-id for the refused message"
expect_out_re "FAIL +[^ ]+ alice@logs.test -> frank@remote.test at 127.0.0.1:$SINK_PORT: 5[0-9][0-9] " \
    "track: it failed, with smtp-sink's 5xx"
expect_out_re "DSN +[^ ]+ <> -> alice@logs.test: non-delivery report queued as [A-Za-z0-9._-]+" \
    "track: the NDR to the sender"

# Switches, read again while the service runs ------------------------------------
run imsvc config set ProtocolLog 0
expect_out "the running service was told" "ProtocolLog 0 while the service runs"
sleep 2
run swaks --server 127.0.0.1:$PORT --from erin@elsewhere.test --to carol@logs.test \
    --header "Message-Id: <logs-3@client.test>"
expect_status 0 "a third message"
queue_settle "$data" 30 || true
wait_for 10 has_line "$tlog" 'DELIVER.*erin@elsewhere.test' &&
    pass "the tracking log goes on" || fail "no DELIVER for the third message"
sleep 2
grep -q 'erin@elsewhere.test' "$plog" && fail "the protocol log took a session after ProtocolLog 0" ||
    pass "with ProtocolLog 0 the session is not in the protocol log"

printf '#Software: old\r\n' >"$data/Logs/SMTP20200101.log"
printf '#Software: old\r\n' >"$data/Logs/MSGTRK20200102.log"
printf 'not a log\r\n' >"$data/Logs/notes.txt"
run imsvc config set LogRetentionDays 5
expect_status 0 "LogRetentionDays 5"
gone() { [ ! -e "$data/Logs/SMTP20200101.log" ] && [ ! -e "$data/Logs/MSGTRK20200102.log" ]; }
wait_for 10 gone && pass "files older than LogRetentionDays are deleted" ||
    fail "old log files are still there: $(ls "$data/Logs")"
[ -f "$tlog" ] && [ -f "$data/Logs/notes.txt" ] && pass "today's log and other files stay" ||
    fail "retention deleted too much: $(ls "$data/Logs")"

run imsvc stop
expect_status 0 "stop"
summary
