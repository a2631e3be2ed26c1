#!/usr/bin/env bash
# test_backscatter.sh - no relay by any path, and no stranger's payload in a
# bounce, against the running service.
#
# The service runs under Wine's SCM on 127.0.0.1:2641 with the default
# configuration plus LocalDomains imsvc.test, SmartHost 127.0.0.1:2642 (the
# sink, tests/integration/smtp_sink.py, which stores whatever leaves) and,
# for part 2 only, short timers (RetryIntervals 2s,2s, RetryEvery 2s, Expire
# 10s). There are no RelayAddresses: this test's client, 127.0.0.1,
# unauthenticated, is a stranger.
#
#   1. Every way a stranger could try to get mail sent out, each in its own
#      session from a forged sender (victim@other.example, or <>, or a local
#      address): domain-less recipients, '%' and '!' in the local part,
#      source routes, quoted local parts holding '@', IMCEA with an encoded
#      '@', address literals (the server's own 127.0.0.1 and ::1 among them,
#      and 0.0.0.0), trailing dots. Each RCPT gets its exact reply; what is
#      accepted is local. Then nothing has reached the sink, <postmaster>
#      (any case) is in the Drop folder as postmaster@imsvc.test with the
#      content sent, and nothing bounced.
#   2. A recipient that fails after acceptance (the Drop folder is made
#      unwritable, so local delivery waits until the message expires): the
#      NDR to the forged sender does reach the sink, and carries the
#      original's header fields only (text/rfc822-headers): not the body,
#      not the text of a message that has no empty line, and at most 16 KiB
#      of a header made huge. A message from <> that fails gets no NDR at
#      all (Badmail).
# The sink is stopped by its PID and the prefix destroyed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/assert.sh
. tests/lib/queue.sh

PORT=2641            # the imsvc service
SINK_PORT=2642       # smtp_sink.py, the smart host: anything that leaves lands here
LOCAL=imsvc.test
VICTIM=victim@other.example
T=
SINK_PID=
started=$SECONDS

sink_stop() {
    [ -n "$SINK_PID" ] || return 0
    kill "$SINK_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$SINK_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$SINK_PID" 2>/dev/null || true
    wait "$SINK_PID" 2>/dev/null || true
    SINK_PID=
}

cleanup() {
    sink_stop
    wp_destroy
    [ -n "$T" ] && rm -rf "$T"
}
trap cleanup EXIT

T=$(mktemp -d /tmp/imsvc-backscatter.XXXXXX)
wp_create

exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
data_dir="$WINEPREFIX/drive_c/ProgramData/IMSvc"
drop="$data_dir/Drop"
badmail="$data_dir/Badmail"
mkdir -p "$exe_dir"
cp "${B:-build}/imsvc.exe" "$exe_dir/"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null; }

SINK=$T/sink
python3 tests/integration/smtp_sink.py --port "$SINK_PORT" --dir "$SINK" \
    --pidfile "$T/sink.pid" </dev/null >>"$T/sink.log" 2>&1 &
SINK_PID=$!
wait_for 10 test -s "$T/sink.pid" || { echo "smtp_sink did not start:" >&2; cat "$T/sink.log" >&2; exit 1; }

run imsvc install
expect_status 0 "install"
for kv in "ListenPort $PORT" "LocalDomains $LOCAL" "SmartHost 127.0.0.1:$SINK_PORT" \
          "SmartHostTls 0"; do
    run imsvc config set ${kv%% *} "${kv#* }"
    expect_status 0 "config set ${kv%% *} ${kv#* }"
done
run imsvc config show
expect_out_re "NdrContent.*headers" "NdrContent is headers by default"
run imsvc start
expect_status 0 "start"

# sessions FILE: one SMTP session per line of FILE ("ID|FROM|RCPT"), from
# 127.0.0.1 without AUTH: EHLO, MAIL FROM:<FROM>, RCPT TO:RCPT (as written);
# when RCPT gets 250, DATA with a message whose Subject is ID and whose
# body holds PAYLOAD-ID. Prints "ID|RCPT reply|DATA reply" (the last line
# of each reply; "-" when there was no DATA).
sessions() {
    python3 - "$PORT" "$1" <<'EOF'
import socket, sys
port, cases = int(sys.argv[1]), sys.argv[2]

def reply(f):
    while True:
        line = f.readline()
        if not line:
            raise EOFError("connection closed")
        if len(line) < 4 or line[3:4] != b"-":
            return line.decode("ascii", "replace").rstrip("\r\n")

for row in open(cases, encoding="ascii"):
    row = row.rstrip("\n")
    if not row:
        continue
    cid, frm, rcpt = row.split("|", 2)
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rb")
    reply(f)
    s.sendall(b"EHLO stranger.example\r\n")
    reply(f)
    s.sendall(f"MAIL FROM:<{frm}>\r\n".encode())
    mail = reply(f)
    if not mail.startswith("250"):
        print(f"{cid}|MAIL refused: {mail}|-", flush=True)
        s.close()
        continue
    s.sendall(f"RCPT TO:{rcpt}\r\n".encode())
    r = reply(f)
    d = "-"
    if r.startswith("250"):
        s.sendall(b"DATA\r\n")
        reply(f)
        s.sendall((f"From: <{frm}>\r\nTo: {rcpt}\r\nSubject: {cid}\r\n"
                   f"Message-ID: <{cid}@stranger.example>\r\n\r\n"
                   f"PAYLOAD-{cid} the stranger's content\r\n.\r\n").encode())
        d = reply(f)
    s.sendall(b"QUIT\r\n")
    reply(f)
    s.close()
    print(f"{cid}|{r}|{d}", flush=True)
EOF
}

# --- 1. every way out, refused at RCPT ------------------------------------------

RELAY_DENIED="authenticate to send mail elsewhere"
# ID|FROM|RCPT|the exact RCPT reply
cat >"$T/cases" <<EOF
pm1|$VICTIM|<Postmaster>|250 2.1.5 Recipient <postmaster@$LOCAL> ok
pm2|$VICTIM|<pOSTMASTER>|250 2.1.5 Recipient <postmaster@$LOCAL> ok
pm3||<postmaster>|250 2.1.5 Recipient <postmaster@$LOCAL> ok
pm4|$VICTIM|<Postmaster@other.example>|550 5.7.1 Error: relaying denied: other.example is not a local domain; $RELAY_DENIED
nodom1|$VICTIM|<victim>|501 5.1.3 mailbox has no '@domain'
nodom2|$VICTIM|<postmaster@>|501 5.1.3 domain label must start with a letter or digit
plain|$VICTIM|<$VICTIM>|550 5.7.1 Error: relaying denied: other.example is not a local domain; $RELAY_DENIED
null||<$VICTIM>|550 5.7.1 Error: relaying denied: other.example is not a local domain; $RELAY_DENIED
fromlocal|postmaster@$LOCAL|<$VICTIM>|550 5.7.1 Error: relaying denied: other.example is not a local domain; $RELAY_DENIED
pct|$VICTIM|<victim%other.example@$LOCAL>|550 5.7.1 Error: relaying denied: '%' in the local part names a mailbox on another host; $RELAY_DENIED
pct2|$VICTIM|<victim%other.example%relay.example@$LOCAL>|550 5.7.1 Error: relaying denied: '%' in the local part names a mailbox on another host; $RELAY_DENIED
bang|$VICTIM|<other.example!victim@$LOCAL>|550 5.7.1 Error: relaying denied: '!' in the local part names a mailbox on another host; $RELAY_DENIED
quoted|$VICTIM|<"$VICTIM"@$LOCAL>|550 5.7.1 Error: relaying denied: '@' in the local part names a mailbox on another host; $RELAY_DENIED
quoted2|$VICTIM|<"victim%other.example"@$LOCAL>|550 5.7.1 Error: relaying denied: '%' in the local part names a mailbox on another host; $RELAY_DENIED
imcea|$VICTIM|<IMCEASMTP-victim+40other+2Eexample@$LOCAL>|550 5.7.1 Error: relaying denied: an encoded '@' (+40) in the local part names a mailbox on another host; $RELAY_DENIED
route1|$VICTIM|<@$LOCAL:$VICTIM>|550 5.7.1 Error: relaying denied: other.example is not a local domain; $RELAY_DENIED
route2|$VICTIM|<@$LOCAL,@relay.example:$VICTIM>|550 5.7.1 Error: relaying denied: other.example is not a local domain; $RELAY_DENIED
own4|$VICTIM|<victim@[127.0.0.1]>|550 5.7.1 Error: relaying denied: [127.0.0.1] is not a local domain; $RELAY_DENIED
own6|$VICTIM|<victim@[IPv6:::1]>|550 5.7.1 Error: relaying denied: [IPv6:::1] is not a local domain; $RELAY_DENIED
ownpm|$VICTIM|<postmaster@[127.0.0.1]>|550 5.7.1 Error: relaying denied: [127.0.0.1] is not a local domain; $RELAY_DENIED
lit|$VICTIM|<victim@[192.0.2.1]>|550 5.7.1 Error: relaying denied: [192.0.2.1] is not a local domain; $RELAY_DENIED
lit0|$VICTIM|<victim@[0.0.0.0]>|550 5.1.2 Error: [0.0.0.0] cannot receive mail: 0.0.0.0/8 means this network (RFC 1122), not a host
dot1|$VICTIM|<victim@other.example.>|501 5.1.3 domain label must start with a letter or digit
dot2|$VICTIM|<victim@$LOCAL.>|501 5.1.3 domain label must start with a letter or digit
sub|$VICTIM|<victim@sub.$LOCAL>|550 5.7.1 Error: relaying denied: sub.$LOCAL is not a local domain; $RELAY_DENIED
local1|$VICTIM|<"john smith"@$LOCAL>|250 2.1.5 Recipient <"john smith"@$LOCAL> ok
local2|$VICTIM|<@other.example:user@$LOCAL>|250 2.1.5 Recipient <user@$LOCAL> ok
local3|$VICTIM|<User@IMSVC.TEST>|250 2.1.5 Recipient <User@$LOCAL> ok
EOF
cut -d'|' -f1-3 "$T/cases" >"$T/sessions.in"
run sessions "$T/sessions.in"
expect_status 0 "the stranger's sessions ran"
results=$OUT
accepted=0
while IFS='|' read -r id from rcpt want; do
    got=$(awk -F'|' -v id="$id" '$1 == id {print $2}' <<<"$results")
    data=$(awk -F'|' -v id="$id" '$1 == id {print $3}' <<<"$results")
    OUT=$got ERR=
    expect_eq "$got" "$want" "$id: RCPT TO:$rcpt from <$from>"
    if [[ $want == 250* ]]; then
        accepted=$((accepted + 1))
        [[ $data == "250 2.0.0 Ok: queued as "* ]] && pass "$id: DATA accepted for local delivery" ||
            fail "$id: DATA got '$data'"
    fi
done <"$T/cases"
OUT= ERR=

queue_settle "$data_dir" 30 && pass "the queue settled" || fail "the queue did not settle"
# The sink is the only way out: nothing may have arrived, not even a session.
sleep 2
n_sink=$(find "$SINK" -name '*.eml' 2>/dev/null | wc -l)
expect_eq "$n_sink" 0 "1: nothing reached the smart host"
expect_eq "$(cat "$SINK/rcpt.log" 2>/dev/null | wc -l)" 0 "1: the smart host saw no RCPT at all"
expect_eq "$(find "$drop" -name '*.eml' | wc -l)" "$accepted" "1: every accepted message is in Drop, and nothing else (no NDR)"

# <postmaster> in any case: in Drop, for postmaster@imsvc.test, with what was sent
for id in pm1 pm2 pm3; do
    f=$(grep -l "^Subject: $id" "$drop"/*.eml 2>/dev/null | head -1 || true)
    if [ -z "$f" ]; then
        fail "$id: no message with Subject $id in Drop"
        continue
    fi
    OUT=$(tr -d '\r' <"$f")
    expect_out_re "^	for <postmaster@$LOCAL>; " "$id: in Drop, received for <postmaster@$LOCAL>"
    expect_out "PAYLOAD-$id the stranger's content" "$id: the content as sent"
done
OUT= ERR=
run imsvc events --last 60
! grep -qi "could not be delivered\|non-delivery report" <<<"$OUT" &&
    pass "1: no event tells of a bounce" || fail "1: the journal tells of a bounce"

# --- 2. failures after acceptance: the NDR carries headers only --------------------

for kv in "RetryIntervals 2s,2s" "RetryEvery 2s" "Expire 10s"; do
    run imsvc config set ${kv%% *} "${kv#* }"
    expect_status 0 "config set ${kv%% *} ${kv#* }"
done
# Local delivery now fails (Drop is a file, not a folder), transiently, until
# each message expires.
rm -rf "$drop"
echo "not a folder" >"$drop"
sleep 1

# send_raw ID FROM FILE: one message, FILE as its content, to <postmaster>.
send_raw() {
    python3 - "$PORT" "$1" "$2" "$3" <<'EOF'
import socket, sys
port, cid, frm, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
s = socket.create_connection(("127.0.0.1", port), timeout=60)
f = s.makefile("rb")
def reply():
    while True:
        line = f.readline()
        if not line:
            raise EOFError("closed")
        if line[3:4] != b"-":
            return line.decode().rstrip("\r\n")
reply()
body = open(path, "rb").read()
out = []
for cmd in (b"EHLO stranger.example", f"MAIL FROM:<{frm}>".encode(), b"RCPT TO:<postmaster>",
            b"DATA"):
    s.sendall(cmd + b"\r\n")
    out.append(reply())
s.sendall(body.replace(b"\r\n.", b"\r\n..") + b".\r\n")
out.append(reply())
s.sendall(b"QUIT\r\n")
print(cid, " | ".join(out))
EOF
}

# b1: a message with a body
printf '%s\r\n' "From: <$VICTIM>" "Subject: b1 bounce me" "Message-ID: <b1@stranger.example>" "" \
    "PAYLOAD-b1 BUY NOW at the stranger's shop" "more PAYLOAD-b1" >"$T/b1.eml"
# b2: no empty line at all: the stranger's text follows the first fields
printf '%s\r\n' "Subject: b2 bounce me" "Message-ID: <b2@stranger.example>" \
    "PAYLOAD-b2 this line is not a header field" "X-Looks-Like: PAYLOAD-b2 a field after text" \
    >"$T/b2.eml"
# b3: a header made huge (300 fields of 200 octets), then a body
{ printf '%s\r\n' "Subject: b3 bounce me" "Message-ID: <b3@stranger.example>"
  for i in $(seq -w 1 300); do printf 'X-Filler-%s: %0180d\r\n' "$i" 0; done
  printf '%s\r\n' "" "PAYLOAD-b3 the body"; } >"$T/b3.eml"
# b4: from <>: never an NDR
printf '%s\r\n' "Subject: b4 from the null sender" "Message-ID: <b4@stranger.example>" "" \
    "PAYLOAD-b4" >"$T/b4.eml"

for b in b1 b2 b3; do
    run send_raw $b "$VICTIM" "$T/$b.eml"
    expect_status 0 "$b: sent"
    expect_out_re "^$b .* \| 250 2\.1\.5 Recipient <postmaster@$LOCAL> ok \| 354 .* \| 250 2\.0\.0 Ok: queued as " \
        "$b: accepted for postmaster@$LOCAL from <$VICTIM>"
done
run send_raw b4 "" "$T/b4.eml"
expect_out_re "250 2.0.0 Ok: queued as " "b4: accepted from <>"

# ndr_for ID: the sink's copy of the NDR about message ID (its Message-ID
# appears in the returned header fields).
ndr_for() {
    local f
    for f in "$SINK"/*.eml; do
        [ -f "$f" ] && grep -q "<$1@stranger.example>" "$f" && { echo "$f"; return 0; }
    done
    return 0
}
have_ndrs() { [ -n "$(ndr_for b1)" ] && [ -n "$(ndr_for b2)" ] && [ -n "$(ndr_for b3)" ]; }
if wait_for 90 have_ndrs; then
    pass "2: the NDRs for b1, b2 and b3 reached the smart host after expiry"
else
    fail "2: not every NDR reached the smart host within 90 s ($(ls "$SINK" 2>&1 | tr '\n' ' '))"
fi
for b in b1 b2 b3; do
    f=$(ndr_for $b)
    [ -n "$f" ] || continue
    env=${f%.eml}.env
    OUT=$(cat "$env")
    expect_out "MAIL FROM:<>" "$b: the NDR comes from <>"
    expect_out "RCPT TO:<$VICTIM>" "$b: ... to the (forged) sender"
    OUT=$(tr -d '\r' <"$f")
    expect_out_re "^Content-Type: multipart/report; report-type=delivery-status" "$b: a multipart/report"
    expect_out_re "^Content-Type: text/rfc822-headers" "$b: the original as text/rfc822-headers"
    ! grep -q "^Content-Type: message/rfc822" <<<"$OUT" &&
        pass "$b: not the whole original (no message/rfc822)" || fail "$b: the NDR holds message/rfc822"
    expect_out "Subject: $b bounce me" "$b: the original's Subject is returned"
    ! grep -q "PAYLOAD" <<<"$OUT" && pass "$b: none of the stranger's content came back" ||
        fail "$b: the NDR carries the stranger's content: $(grep -m2 PAYLOAD <<<"$OUT")"
    expect_out_re "^Final-Recipient: rfc822; *postmaster@$LOCAL" "$b: Final-Recipient postmaster@$LOCAL"
done
f=$(ndr_for b3)
if [ -n "$f" ]; then
    size=$(stat -c %s "$f")
    OUT=$(tr -d '\r' <"$f")
    [ "$size" -lt 24000 ] && pass "b3: the NDR is $size octets: the header is bounded (sent: $(stat -c %s "$T/b3.eml"))" ||
        fail "b3: the NDR is $size octets"
    expect_out "Only the first 16384 octets of your message's header are included below." \
        "b3: the NDR says the header was cut"
    expect_out "X-Filler-001: " "b3: the first fields are there"
    ! grep -q "X-Filler-300:" <<<"$OUT" && pass "b3: the last field is not" || fail "b3: all 300 fields came back"
fi
OUT= ERR=
# b4 from <>: Badmail, never an NDR; nothing else left (one NDR each).
have_b4_badmail() { grep -ql "<b4@stranger.example>" "$badmail"/*.eml 2>/dev/null; }
wait_for 30 have_b4_badmail && pass "b4: the message from <> went to Badmail" ||
    fail "b4: the message from <> is not in Badmail"
expect_eq "$(grep -l '<b4@stranger.example>' "$SINK"/*.eml 2>/dev/null | wc -l)" 0 "b4: no NDR for the message from <>"
expect_eq "$(find "$SINK" -name '*.eml' | wc -l)" 3 "2: exactly three messages left the service: the three NDRs"
expect_eq "$(grep -vc "^$VICTIM 250$" "$SINK/rcpt.log" 2>/dev/null || true)" 0 "2: every RCPT at the smart host was the forged sender"

run imsvc stop
expect_status 0 "stop"
run imsvc uninstall
expect_status 0 "uninstall"
pid=$SINK_PID
sink_stop
! kill -0 "$pid" 2>/dev/null && pass "the sink stopped (PID $pid gone)" || fail "the sink $pid still runs"
echo "test_backscatter.sh took $((SECONDS - started)) s"
summary
