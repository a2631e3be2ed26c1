#!/usr/bin/env bash
# test_queue.sh - the service's durable queue, end to end, against a sink.
#
# The service is installed and started under Wine's SCM on 127.0.0.1:2530
# with LocalDomains imsvc.test, RelayAddresses 127.0.0.1 (so swaks may relay
# without authenticating), SmartHost 127.0.0.1:2594 without TLS, and short
# timers (RetryIntervals 2s,2s, RetryEvery 2s, Expire 12s, no delay notice).
# The smart host is tests/integration/smtp_sink.py, which stores what it is
# given byte for byte and logs every RCPT with the code it answered.
#
# With a sink that offers 8BITMIME:
#   a. S/MIME messages signed by `openssl smime -sign` with a throw-away
#      self-signed certificate (clear-signed multipart/signed, opaque with
#      -nodetach, and each wrapped as the only part of an outer message, as a
#      message/rfc822 body or part) arrive with nothing changed after the
#      one Received header the service adds, and `openssl smime -verify
#      -CAfile cert.pem` succeeds on what arrived (on the inner message,
#      extracted by its bytes, for the envelopes);
#   d. a recipient the sink answers 451 is tried at least twice and, at
#      expiry, the local sender gets an NDR (Action: failed) naming the reply;
#   e. a recipient answered 550 is tried once and bounced with 5.1.1 and the
#      reply in the Diagnostic-Code;
#   f. a message from <> to such a recipient gets no NDR but goes to
#      Badmail\<ID>.eml with <ID>.txt saying why;
#   g. one message to a good and a 550 recipient: the good one is delivered
#      once, the NDR lists only the failed one.
# With a sink that does not offer 8BITMIME (same port, restarted):
#   b. a signed message with 8-bit content inside the signed part bounces at
#      once with 5.6.3 and a sentence about the signature; the sink never
#      gets it;
#   c. an unsigned 8-bit message arrives converted to 7-bit, and decoding it
#      gives the original text.
# Every wait is a poll with a deadline. The sink is stopped by its PID and the
# prefix destroyed on exit; every file the test makes is under $T or the
# prefix.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/assert.sh

PORT=2530            # the imsvc service
SINK_PORT=2594       # smtp_sink.py, the smart host
LOCAL=imsvc.test     # a LocalDomain: NDRs to alice@ land in Drop
REMOTE=remote.test   # anything else goes to the smart host
SENDER=alice@$LOCAL
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

# sink_start DIR [ARGS...]: a sink on SINK_PORT storing into DIR; returns
# once it listens (it writes its pidfile after binding).
sink_start() {
    local dir=$1
    shift
    rm -f "$T/sink.pid"
    python3 tests/integration/smtp_sink.py --port "$SINK_PORT" --dir "$dir" \
        --pidfile "$T/sink.pid" "$@" </dev/null >>"$T/sink.log" 2>&1 &
    SINK_PID=$!
    wait_for 10 test -s "$T/sink.pid" || { echo "smtp_sink did not start:" >&2; cat "$T/sink.log" >&2; return 1; }
}

cleanup() {
    sink_stop
    wp_destroy
    [ -n "$T" ] && rm -rf "$T"
}
trap cleanup EXIT

T=$(mktemp -d /tmp/imsvc-queue.XXXXXX)
wp_create

exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
data_dir="$WINEPREFIX/drive_c/ProgramData/IMSvc"
drop="$data_dir/Drop"
badmail="$data_dir/Badmail"
mkdir -p "$exe_dir"
cp "${B:-build}/imsvc.exe" "$exe_dir/"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null; }

# The files in DIR (Drop, a sink's directory) whose content holds STRING.
files_with() {
    local dir=$1 s=$2 f
    for f in "$dir"/*.eml; do
        [ -f "$f" ] && grep -qF -- "$s" "$f" && echo "$f"
    done
    return 0
}
# Messages are told apart by their Message-ID (an envelope holds its inner
# message's Subject too, but the inner message has its own Message-ID):
# mid FILE prints the first one in FILE, "<qt-N.PID@imsvc.test>".
mid() { grep -m1 -i '^Message-ID:' "$1" | tr -d '\r' | sed 's/^[^:]*: *//'; }
# The NDR in Drop about the message in FILE (the notice carries the
# original headers as text/rfc822-headers).
ndr_for() { report_for "$1" failed; }
# report_for FILE ACTION: the DSN in Drop about FILE with that Action.
report_for() {
    local f
    for f in $(files_with "$drop" "$(mid "$1")"); do
        grep -qi "^Content-Type: multipart/report" "$f" && grep -q "^Action: $2" "$f" &&
            { echo "$f"; return 0; }
    done
    return 0
}
have_ndr() { [ -n "$(ndr_for "$1")" ]; }
# The copy of the message in FILE that the sink in DIR stored: the one whose
# own (first) Message-ID is FILE's.
sink_copy() {
    local want f
    want=$(mid "$2")
    for f in "$1"/*.eml; do
        [ -f "$f" ] && [ "$(mid "$f")" = "$want" ] && { echo "$f"; return 0; }
    done
    return 0
}
sink_has() { [ -n "$(sink_copy "$1" "$2")" ]; }
# How many RCPTs for ADDR the sink in DIR has seen.
rcpt_count() { local n; n=$(grep -c "^$2 " "$1/rcpt.log" 2>/dev/null || true); echo "${n:-0}"; }
# How many sessions the sink in DIR has had.
session_count() { local n; n=$(grep -vc "^MAIL " "$1/sessions.log" 2>/dev/null || true); echo "${n:-0}"; }
# How many accepted deliveries to ADDR the sink in DIR has stored.
delivered_count() { cat "$1"/*.env 2>/dev/null | grep -c "^RCPT TO:<$2>$" || true; }

# send FROM TO FILE: relay FILE (a whole message, CRLF) through imsvc.
# swaks always ends the data with a CRLF of its own before the dot, so it
# gets FILE without its last CRLF: what goes over the wire is FILE exactly.
send() {
    head -c -2 "$3" >"$3.swaks"
    run swaks --server 127.0.0.1:$PORT --from "$1" --to "$2" --data "@$3.swaks"
}

# strip_received IN OUT: the message without its first header field when
# that field is Received (folded continuation lines included).
strip_received() {
    python3 - "$1" "$2" <<'EOF'
import re, sys
b = open(sys.argv[1], "rb").read()
m = re.match(rb"Received:[^\n]*\n(?:[ \t][^\n]*\n)*", b, re.I)
open(sys.argv[2], "wb").write(b[m.end():] if m else b)
EOF
}

# extract_inner IN OUT: the message inside an envelope, by its bytes: the
# body of a message/rfc822 message, or the content of the only part of a
# multipart (after the part's header block, up to the line break before the
# next delimiter).
extract_inner() {
    python3 - "$1" "$2" <<'EOF'
import re, sys
b = open(sys.argv[1], "rb").read()
hdr, _, body = b.partition(b"\r\n\r\n")
hdr = re.sub(rb"\r\n[ \t]+", b" ", hdr)
m = re.search(rb'^Content-Type:\s*multipart/[^\r\n]*boundary="?([^";\r\n]+)"?', hdr, re.I | re.M)
if m:
    delim = b"--" + m.group(1)
    start = body.index(delim + b"\r\n") + len(delim) + 2
    part = body[start:body.index(b"\r\n" + delim, start)]
    body = part.partition(b"\r\n\r\n")[2]
open(sys.argv[2], "wb").write(body)
EOF
}

# crlf IN: IN with every line end made CRLF, in place.
crlf() { sed -i 's/\r*$/\r/' "$1"; }

msgno=0
# headers SUBJ TO: the outer header block, CRLF, without the empty line.
headers() {
    msgno=$((msgno + 1))
    printf '%s\r\n' "From: Alice <$SENDER>" "To: <$2>" "Subject: $1" \
        "Date: Mon, 23 Nov 2026 10:00:00 +0000" "Message-ID: <qt-$msgno.$$@$LOCAL>"
}

OUT= ERR=
# --- the service ---------------------------------------------------------------

run imsvc install
expect_status 0 "install"
for kv in "ListenPort $PORT" "LocalDomains $LOCAL" "RelayAddresses 127.0.0.1" \
          "SmartHost 127.0.0.1:$SINK_PORT" "SmartHostTls 0" "RetryIntervals 2s,2s" \
          "RetryEvery 2s" "DelayNotice 4s" "Expire 12s"; do
    run imsvc config set ${kv%% *} "${kv#* }"
    expect_status 0 "config set ${kv%% *} ${kv#* }"
done
run imsvc start
expect_status 0 "start"

SINK1=$T/sink1
RULES=(--rule "defer@.*=451 4.2.0 try later" --rule "reject[0-9]*@.*=550 5.1.1 no such user")
sink_start "$SINK1" "${RULES[@]}"

OUT= ERR=
# --- d, e, f, g start first: their retries and bounces run while a is sent ---

# d. transient 451 until expiry
headers "qt-d retry" "defer@$REMOTE" >"$T/d.eml"
printf '%s\r\n' "" "retried until it expires" >>"$T/d.eml"
send "$SENDER" "defer@$REMOTE" "$T/d.eml"
expect_status 0 "d: a message to a 451 recipient is accepted"
d_sent=$SECONDS d_epoch=$(date +%s)

# While it waits, `imsvc queue list` lists the message and `imsvc queue
# show ID` names the recipient and the 451 reply. (Its state in the list
# flips between deferred and in delivery every 2 s, so any state will do.)
queue_seen=0 queue_show= queue_list=
queue_shows_defer() {
    local o id
    o=$(imsvc queue list 2>/dev/null | tr -d '\r') || true
    queue_list=$o
    for id in $(awk -v s="$SENDER" 'index($0, s " ->") {print $1}' <<<"$o"); do
        queue_show=$(imsvc queue show "$id" 2>/dev/null | tr -d '\r') || true
        grep -qF "defer@$REMOTE" <<<"$queue_show" && grep -qF "451 4.2.0" <<<"$queue_show" &&
            { queue_seen=1; return 0; }
    done
    return 1
}
# d waits until it expires 12 s after arrival: look now, before e, f and g.
wait_for 8 queue_shows_defer || true
queue_looked=$((SECONDS - d_sent))

# e. permanent 550
headers "qt-e permanent" "reject@$REMOTE" >"$T/e.eml"
printf '%s\r\n' "" "bounced at once" >>"$T/e.eml"
send "$SENDER" "reject@$REMOTE" "$T/e.eml"
expect_status 0 "e: a message to a 550 recipient is accepted"

# f. from the null sender
headers "qt-f null sender" "reject2@$REMOTE" >"$T/f.eml"
printf '%s\r\n' "" "a bounce that bounces" >>"$T/f.eml"
send "<>" "reject2@$REMOTE" "$T/f.eml"
expect_status 0 "f: a message from <> is accepted"
expect_out "MAIL FROM:<>" "f: swaks sent MAIL FROM:<>"

# g. one good, one 550 recipient
headers "qt-g partial" "ok1@$REMOTE" >"$T/g.eml"
printf '%s\r\n' "" "half of it goes through" >>"$T/g.eml"
send "$SENDER" "ok1@$REMOTE,reject3@$REMOTE" "$T/g.eml"
expect_status 0 "g: a message to a good and a 550 recipient is accepted"


OUT= ERR=
# --- a. S/MIME, clear-signed, opaque, and wrapped in envelopes ------------------

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$SENDER" \
    -addext "subjectAltName=email:$SENDER" -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
printf '%s\r\n' "Content-Type: text/plain; charset=us-ascii" "" \
    "This text is signed." ".A line that starts with a dot." "From the start of a line." \
    "Trailing spaces   " "" "-- " "Alice" >"$T/content.txt"
sign() { # sign OUT [openssl smime args]
    local out=$1
    shift
    openssl smime -sign -in "$T/content.txt" -signer "$T/cert.pem" -inkey "$T/key.pem" \
        -crlfeol "$@" -out "$out.body"
    crlf "$out.body"
}
sign "$T/clear.p7"
sign "$T/opaque.p7" -nodetach

# The control: the signatures verify as made, and one changed byte fails.
openssl smime -verify -CAfile "$T/cert.pem" -in "$T/clear.p7.body" -out /dev/null 2>/dev/null &&
    pass "a: the clear-signed message verifies as made" || fail "a: the clear-signed message does not verify as made"
sed 's/This text is signed/This text is signeD/' "$T/clear.p7.body" >"$T/tampered.eml"
! openssl smime -verify -CAfile "$T/cert.pem" -in "$T/tampered.eml" -out /dev/null 2>/dev/null &&
    pass "a: control: a changed byte fails verification" || fail "a: verification does not notice a changed byte"

# The signed messages as sent: our headers (Date and Message-ID included, so
# the service has no reason to add any), then openssl's MIME entity.
for kind in clear opaque; do
    { headers "qt-a $kind" "bob@$REMOTE"; cat "$T/$kind.p7.body"; } >"$T/a-$kind.eml"
    # The same message wrapped: the only part of a multipart/mixed.
    { headers "qt-a $kind in multipart" "bob@$REMOTE"
      printf '%s\r\n' "MIME-Version: 1.0" 'Content-Type: multipart/mixed; boundary="qt-outer-boundary"' "" \
          "--qt-outer-boundary" "Content-Type: message/rfc822" ""
      cat "$T/a-$kind.eml"
      # The line break before a delimiter belongs to the delimiter.
      printf '%s\r\n' "" "--qt-outer-boundary--"; } >"$T/a-$kind-multi.eml"
done
# And the clear-signed one as the whole body of a message/rfc822 message.
{ headers "qt-a clear in rfc822" "bob@$REMOTE"
  printf '%s\r\n' "MIME-Version: 1.0" "Content-Type: message/rfc822" ""
  cat "$T/a-clear.eml"; } >"$T/a-clear-rfc822.eml"

for m in clear opaque clear-multi opaque-multi clear-rfc822; do
    send "$SENDER" "bob@$REMOTE" "$T/a-$m.eml"
    expect_status 0 "a: $m signed message accepted"
done
# One deadline for the five, so a queue that delivers nothing costs 60 s, not 300.
a_deadline=$((SECONDS + 60))
for m in clear opaque clear-multi opaque-multi clear-rfc822; do
    if ! wait_for $((a_deadline > SECONDS ? a_deadline - SECONDS : 0)) sink_has "$SINK1" "$T/a-$m.eml"; then
        fail "a: $m: the sink did not receive the message within 60 s"
        continue
    fi
    got=$(sink_copy "$SINK1" "$T/a-$m.eml")
    OUT=$(head -c 300 "$got")
    expect_out_re "^Received: " "a: $m: the service's Received header comes first"
    OUT= ERR=
    strip_received "$got" "$T/got-$m.eml"
    if cmp -s "$T/got-$m.eml" "$T/a-$m.eml"; then
        pass "a: $m: after the Received header the message is byte-identical to what was sent"
    else
        fail "a: $m: the relayed message differs from what was sent ($(cmp "$T/got-$m.eml" "$T/a-$m.eml" 2>&1 | head -1))"
    fi
    case $m in
        *-multi|*-rfc822)
            extract_inner "$got" "$T/inner-$m.eml" || true
            cmp -s "$T/inner-$m.eml" "$T/a-${m%%-*}.eml" &&
                pass "a: $m: the inner message extracted at the sink is the signed message as made" ||
                fail "a: $m: the inner message differs from the signed message"
            vin=$T/inner-$m.eml ;;
        *) vin=$got ;;
    esac
    if openssl smime -verify -CAfile "$T/cert.pem" -in "$vin" -out "$T/verified-$m.txt" 2>"$T/verify-$m.err"; then
        pass "a: $m: openssl smime -verify succeeds on what arrived"
    else
        fail "a: $m: openssl smime -verify fails on what arrived: $(head -3 "$T/verify-$m.err" | tr '\n' ' ')"
    fi
done

OUT= ERR=
# --- e. permanent failure ---------------------------------------------------------

if wait_for 30 have_ndr "$T/e.eml"; then
    pass "e: the NDR for the 550 recipient arrived in Drop"
    OUT=$(tr -d '\r' <"$(ndr_for "$T/e.eml")")
    expect_out_re "^Action: failed" "e: Action: failed"
    expect_out_re "^Status: 5\.1\.1" "e: Status: 5.1.1"
    expect_out_re "^Diagnostic-Code: smtp; *550 5\.1\.1 no such user" "e: Diagnostic-Code names the 550 reply"
    expect_out_re "^Final-Recipient: rfc822; *reject@$REMOTE" "e: Final-Recipient is the rejected address"
    expect_out_re "^Content-Type: message/delivery-status" "e: a message/delivery-status part"
    expect_out_re "^To: .*$SENDER" "e: the NDR is addressed to the sender"
else
    fail "e: no NDR for the 550 recipient in Drop within 30 s"
fi

OUT= ERR=
# --- f. null sender: Badmail, never an NDR ------------------------------------------

badmail_txt() {
    local t
    for t in "$badmail"/*.txt; do
        [ -f "$t" ] && [ -f "${t%.txt}.eml" ] && grep -qF "$(mid "$T/f.eml")" "${t%.txt}.eml" &&
            { echo "$t"; return 0; }
    done
    return 0
}
have_badmail() { [ -n "$(badmail_txt)" ]; }
OUT= ERR=
if wait_for 30 have_badmail; then
    t=$(badmail_txt)
    pass "f: Badmail holds $(basename "${t%.txt}").eml and $(basename "$t")"
    OUT=$(tr -d '\r' <"$t")
    expect_out_re "550|no such user|5\.1\.1" "f: the .txt names the reason (the 550 reply)"
    id=$(basename "${t%.txt}")
    [[ $id =~ ^[A-Za-z0-9._-]{1,64}$ ]] && pass "f: the Badmail files are named by a queue ID ($id)" ||
        fail "f: odd Badmail name $id"
else
    fail "f: nothing in Badmail for the message from <> within 30 s"
    OUT=$(ls -la "$badmail" 2>&1 || true)
    echo "  Badmail: $OUT"
fi
expect_eq "$(rcpt_count "$SINK1" "reject2@$REMOTE")" 1 "f: the recipient was tried once"

OUT= ERR=
# --- g. per recipient ------------------------------------------------------------

if wait_for 30 have_ndr "$T/g.eml"; then
    pass "g: an NDR for the failed recipient arrived"
    OUT=$(tr -d '\r' <"$(ndr_for "$T/g.eml")")
    expect_out_re "^Final-Recipient: rfc822; *reject3@$REMOTE" "g: the NDR lists the failed recipient"
    ! grep -qE "^(Final|Original)-Recipient: .*ok1@" <<<"$OUT" &&
        pass "g: the NDR does not list the delivered recipient" ||
        fail "g: the NDR lists ok1@$REMOTE, which was delivered"
    expect_eq "$(grep -c '^Final-Recipient:' <<<"$OUT")" 1 "g: exactly one recipient in the delivery-status part"
else
    fail "g: no NDR for the failed recipient within 30 s"
fi
OUT= ERR=
wait_for 30 sink_has "$SINK1" "$T/g.eml" || true
expect_eq "$(delivered_count "$SINK1" "ok1@$REMOTE")" 1 "g: the good recipient was delivered once"
expect_eq "$(delivered_count "$SINK1" "reject3@$REMOTE")" 0 "g: the sink stored nothing for the 550 recipient"

OUT= ERR=
# --- d. retry, then expiry ----------------------------------------------------------

if wait_for 90 have_ndr "$T/d.eml"; then
    d_ndr=$(ndr_for "$T/d.eml")
    d_age=$(($(stat -c %Y "$d_ndr") - d_epoch))
    pass "d: the expiry NDR arrived (written $d_age s after the message was accepted; Expire 12s)"
    OUT=$(tr -d '\r' <"$d_ndr")
    expect_out_re "^Action: failed" "d: Action: failed"
    expect_out_re "^Status: [45]\.[0-9]+\.[0-9]+" "d: a Status code"
    expect_out_re "^Diagnostic-Code: smtp; *451 4\.2\.0 try later" "d: Diagnostic-Code names the remote reply"
    expect_out_re "^Final-Recipient: rfc822; *defer@$REMOTE" "d: Final-Recipient is the deferred address"
    [ "$d_age" -ge 11 ] && pass "d: not given up before the expiry time" ||
        fail "d: given up $d_age s after it was accepted, before Expire (12 s)"
else
    fail "d: no expiry NDR within 90 s"
fi
d_delay=$(report_for "$T/d.eml" delayed)
if [ -n "$d_delay" ]; then
    OUT=$(tr -d '\r' <"$d_delay")
    pass "d: a delay notice came first (DelayNotice 4s)"
    expect_out "Subject: Delivery Status Notification (Delay)" "d: the delay notice says so in its subject"
    expect_out_re "^Will-Retry-Until: " "d: the delay notice says until when it is retried"
    expect_out_re "^Final-Recipient: rfc822; *defer@$REMOTE" "d: ... for the deferred recipient"
    expect_eq "$(for f in $(files_with "$drop" "$(mid "$T/d.eml")"); do grep -l '^Action: delayed' "$f"; done | wc -l)" 1 \
        "d: exactly one delay notice"
else
    fail "d: no delay notice (Action: delayed) in Drop"
fi
OUT=
OUT= ERR=
n=$(rcpt_count "$SINK1" "defer@$REMOTE")
[ "${n:-0}" -ge 2 ] && pass "d: the 451 recipient was tried $n times (at least twice)" ||
    fail "d: the 451 recipient was tried ${n:-0} times, wanted at least 2"
OUT=$queue_show
[ "$queue_seen" = 1 ] && pass "d: while it waited, imsvc queue list listed it and queue show named defer@$REMOTE and the 451 reply" ||
    fail "d: imsvc queue list/show never showed the waiting message with defer@$REMOTE and its 451 reply (looked for $queue_looked s; last list: $(tr '\n' '|' <<<"$queue_list"))"

# e's count after d's expiry: many retry intervals have passed since its bounce.
expect_eq "$(rcpt_count "$SINK1" "reject@$REMOTE")" 1 "e: the 550 recipient was tried exactly once"
expect_eq "$(rcpt_count "$SINK1" "reject3@$REMOTE")" 1 "g: the 550 recipient was tried exactly once"
expect_eq "$(rcpt_count "$SINK1" "reject2@$REMOTE")" 1 "f: still one attempt, no retries"
expect_eq "$(files_with "$drop" "$(mid "$T/f.eml")" | wc -l)" 0 "f: no NDR for the message from <>"

run imsvc status
expect_status 0 "imsvc status"
expect_out_re "^Queue: .*[0-9]+ message" "imsvc status shows queue figures"

# Connection reuse: messages for the smart host that arrive one after the
# other travel over the connection the first one opened.
before=$(session_count "$SINK1")
for i in 1 2 3 4 5 6; do
    swaks --server 127.0.0.1:$PORT --from sender@imsvc.test --to "reuse$i@$REMOTE" \
        --header "Subject: reuse $i" >/dev/null 2>&1 || true
done
deadline=$(( $(date +%s) + 30 ))
while [ "$(grep -c '^reuse[1-6]@' "$SINK1/rcpt.log" 2>/dev/null || true)" -lt 6 ] &&
      [ "$(date +%s)" -le "$deadline" ]; do sleep 0.2; done
expect_eq "$(grep -c '^reuse[1-6]@.* 250' "$SINK1/rcpt.log" 2>/dev/null || true)" 6 \
    "reuse: six messages for the smart host delivered"
used=$(( $(session_count "$SINK1") - before ))
# (0 is possible: a connection still open from earlier deliveries)
[ "$used" -le 2 ] &&
    pass "reuse: they opened $used new connection(s), not six" ||
    fail "reuse: six messages took $used connections"

# Without a SmartHost, mail goes by MX: an address literal is its own host,
# and "localhost" (no MX records) falls back to its address record. Both at
# OutboundPort, here the sink.
run imsvc config set SmartHost ""
expect_status 0 "SmartHost cleared (deliver by MX)"
imsvc config set OutboundPort $SINK_PORT >/dev/null
sleep 1
run swaks --server 127.0.0.1:$PORT --from sender@imsvc.test --to 'lit@[127.0.0.1]' --header "Subject: by literal"
expect_status 0 "mail for an address literal accepted"
run swaks --server 127.0.0.1:$PORT --from sender@imsvc.test --to 'mx@localhost' --header "Subject: by implicit MX"
expect_status 0 "mail for a domain without MX records accepted"
deadline=$(( $(date +%s) + 30 ))
while [ "$(grep -cE '^(lit@\[127\.0\.0\.1\]|mx@localhost) 250' "$SINK1/rcpt.log" 2>/dev/null || true)" -lt 2 ] &&
      [ "$(date +%s)" -le "$deadline" ]; do sleep 0.2; done
grep -q '^lit@\[127\.0\.0\.1\] 250' "$SINK1/rcpt.log" &&
    pass "MX route: the address literal was delivered to that address" ||
    fail "MX route: nothing for the address literal at the sink"
grep -q '^mx@localhost 250' "$SINK1/rcpt.log" &&
    pass "MX route: a domain without MX records was delivered to its address" ||
    fail "MX route: nothing for mx@localhost at the sink"
imsvc config set SmartHost "127.0.0.1:$SINK_PORT" >/dev/null
sleep 1

OUT= ERR=
# --- b and c: a next hop without 8BITMIME ------------------------------------------

sink_stop
SINK2=$T/sink2
sink_start "$SINK2" --no-8bitmime --name no8bit.test

# b. 8-bit inside the signed part
printf '%s\r\n' "Content-Type: text/plain; charset=utf-8" "Content-Transfer-Encoding: 8bit" "" \
    "Grüße aus Köln, signed with 8-bit text inside." >"$T/content8.txt"
openssl smime -sign -in "$T/content8.txt" -signer "$T/cert.pem" -inkey "$T/key.pem" -crlfeol \
    -out "$T/b.body"
crlf "$T/b.body"
{ headers "qt-b signed 8bit" "signed8@$REMOTE"; cat "$T/b.body"; } >"$T/b.eml"
openssl smime -verify -CAfile "$T/cert.pem" -in "$T/b.eml" -out /dev/null 2>/dev/null &&
    pass "b: the 8-bit signed message verifies as made" || fail "b: the 8-bit signed message does not verify as made"
send "$SENDER" "signed8@$REMOTE" "$T/b.eml"
expect_status 0 "b: the 8-bit signed message is accepted"
b_sent=$SECONDS
if wait_for 20 have_ndr "$T/b.eml"; then
    pass "b: the NDR arrived in Drop $((SECONDS - b_sent)) s after sending"
    n=$(session_count "$SINK2")
    [ "$n" -le 1 ] && pass "b: bounced after one attempt ($n session with the sink)" ||
        fail "b: $n sessions with the sink before the bounce, wanted one at most"
    OUT=$(tr -d '\r' <"$(ndr_for "$T/b.eml")")
    expect_out_re "^Status: 5\.6\.3" "b: Status: 5.6.3"
    expect_out_re "^Action: failed" "b: Action: failed"
    expect_out_re "[Ss]ignature" "b: the NDR says conversion would break the signature"
    expect_out_re "^Final-Recipient: rfc822; *signed8@$REMOTE" "b: Final-Recipient is the recipient"
else
    fail "b: no NDR within 20 s"
fi

# c. 8-bit, not signed: converted
text8='Grüße aus Köln: naïve café, 8-bit and not signed. Ünïcödé ±½ — end.'
{ headers "qt-c unsigned 8bit" "plain8@$REMOTE"
  printf '%s\r\n' "MIME-Version: 1.0" "Content-Type: text/plain; charset=utf-8" \
      "Content-Transfer-Encoding: 8bit" "" "$text8" "second line, 7-bit" "$text8"; } >"$T/c.eml"
send "$SENDER" "plain8@$REMOTE" "$T/c.eml"
expect_status 0 "c: the unsigned 8-bit message is accepted"
if wait_for 60 sink_has "$SINK2" "$T/c.eml"; then
    got=$(sink_copy "$SINK2" "$T/c.eml")
    pass "c: the unsigned 8-bit message arrived at the sink without 8BITMIME"
    LC_ALL=C grep -q $'[\x80-\xff]' "$got" && fail "c: the relayed message still has 8-bit octets" ||
        pass "c: only 7-bit octets arrived"
    OUT=$(tr -d '\r' <"$got")
    expect_out_re "^Content-Transfer-Encoding: *(quoted-printable|base64)" "c: re-encoded (quoted-printable or base64)"
    run python3 - "$got" "$T/c.eml" <<'EOF'
import email, email.policy, sys
got = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=email.policy.compat32)
sent = open(sys.argv[2], "rb").read().partition(b"\r\n\r\n")[2]
dec = got.get_payload(decode=True)
norm = lambda b: b.replace(b"\r\n", b"\n").rstrip(b"\n")
print("cte:", got.get("Content-Transfer-Encoding"))
print("decoded:", dec)
sys.exit(0 if norm(dec) == norm(sent) else 1)
EOF
    expect_status 0 "c: decoding the body gives the original 8-bit text"
else
    fail "c: the unsigned 8-bit message did not arrive within 60 s"
fi
# The sink refuses BODY=8BITMIME with 555 when it did not offer 8BITMIME.
grep -q "^MAIL .* 555$" "$SINK2/sessions.log" 2>/dev/null &&
    fail "c: MAIL said BODY=8BITMIME to a server that does not offer 8BITMIME" ||
    pass "c: no BODY=8BITMIME to a server that does not offer it"

OUT= ERR=
# b, after c went through (the sink has been up for several retry intervals):
sink_has "$SINK2" "$T/b.eml" && fail "b: the sink received the signed 8-bit message" ||
    pass "b: the sink never received the signed 8-bit message"
n=$(rcpt_count "$SINK2" "signed8@$REMOTE")
[ "${n:-0}" -le 1 ] && pass "b: at most one attempt reached RCPT ($n)" ||
    fail "b: $n RCPT attempts for the signed 8-bit message, wanted one at most"

run imsvc queue list
expect_status 0 "imsvc queue list"
[ "$STATUS" = 0 ] && ! grep -qE "($SENDER|<>) ->" <<<"$OUT" &&
    pass "the queue is empty at the end" || fail "messages are still queued at the end (or no list)"

run imsvc stop
expect_status 0 "stop"
run imsvc uninstall
expect_status 0 "uninstall"
pid=$SINK_PID
sink_stop
! kill -0 "$pid" 2>/dev/null && pass "the sink stopped (PID $pid gone)" || fail "the sink $pid still runs"
echo "test_queue.sh took $((SECONDS - started)) s"
summary
