#!/usr/bin/env bash
# test_x400.sh - X.400 and IMCEA addresses in the mail path, with the
# address map (AddressMapFile), driven by swaks against the running service.
#
# The service listens on 127.0.0.1:2760 with LocalDomains gw.test and
# fab.test, and a smart host (smtp_sink.py on 2761) that refuses
# far@remote.test with 550 5.1.1. Its map maps X.400 addresses with and
# without a PRMD, an EX address, and an alias to two mailboxes. Checked:
#   - IMCEA X.400 recipients with and without PRMD are accepted and
#     rewritten to their SMTP address; the drop file's Received field names
#     the rewritten one;
#   - an embedded address with a missing field (no C=, surname missing for
#     G=) or an oversized one (S= over 40, O= over 64) is refused at RCPT
#     with 550 5.1.3 and a sentence naming the field and the rule; a valid
#     but unmapped one with 550 5.1.1; an EX address by its own rules;
#   - an alias becomes two recipients, delivered once to the drop folder;
#   - a mapped recipient the next hop refuses gets an NDR showing the
#     IMCEA address the sender wrote (Original-Recipient) beside the
#     rewritten one (Final-Recipient);
#   - `imsvc address map test` says what an address becomes and why;
#   - a bad map at PARAMCHANGE is reported (event 2300 naming the line) and
#     the old map stays in force; a good one replaces it (event 2301);
#   - header fields: with RewriteHeaders 0 (the default) a message whose
#     From/To/Cc hold mapped IMCEA addresses reaches Drop byte for byte; with
#     RewriteHeaders 1 they show the mapped addresses, display names,
#     comments and groups kept; a multipart/signed message and one with a
#     DKIM-Signature reach Drop byte for byte even then;
#   - pickup files through the map: an IMCEA x-receiver is delivered to its
#     mapped mailbox, an unmapped or invalid one goes to Badmail with a .txt
#     naming the address and the rule, an alias reaches both its targets;
#     while a configured map is not loaded one with an IMCEA x-receiver
#     waits in Pickup (event 2302, once) and is delivered once it loads.
# The sink is stopped by its PID and the prefix destroyed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/assert.sh
. tests/lib/queue.sh

PORT=2760
SINK_PORT=2761
T=
SINK_PID=

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

T=$(mktemp -d /tmp/imsvc-x400.XXXXXX)
wp_create

exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
data_dir="$WINEPREFIX/drive_c/ProgramData/IMSvc"
drop="$data_dir/Drop"
mapdir="$WINEPREFIX/drive_c/IMSvcMap"
MAPWIN='C:\IMSvcMap\map.txt'
mkdir -p "$exe_dir" "$mapdir"
cp "${B:-build}/imsvc.exe" "$exe_dir/"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null; }

# IMCEA forms ([MS-OXCMAIL] 2.1.3.1.8): ';' is +3B, ' ' is +20, '/' is '_'.
LEE="IMCEAX400-c=US+3Ba=+20+3Bp=Fab+3Bo=Sales+3Bs=Lee+3Bg=Bill+3B@gw.test"   # with a PRMD
ANN="IMCEAX400-c=US+3Ba=+20+3Bo=Sales+3Bs=Ann+3B@gw.test"                    # without
FAR="IMCEAX400-c=US+3Ba=+20+3Bo=Sales+3Bs=Far+3B@gw.test"
BO="IMCEAEX-_o=Fab_ou=Site_cn=Recipients_cn=bo@gw.test"
NOC="IMCEAX400-a=+20+3Bo=Sales+3Bs=Ann+3B@gw.test"                            # no C=
NOS="IMCEAX400-c=US+3Ba=+20+3Bo=Sales+3Bg=Ann+3B@gw.test"                     # G= without S=
LONGS="IMCEAX400-c=US+3Ba=+20+3Bo=Sales+3Bs=$(printf 'L%.0s' $(seq 1 41))+3B@gw.test"
LONGO="IMCEAX400-c=US+3Ba=+20+3Bo=$(printf 'O%.0s' $(seq 1 65))+3Bs=Ann+3B@gw.test"
NOBODY="IMCEAX400-c=US+3Ba=+20+3Bo=Sales+3Bs=Nobody+3B@gw.test"
BADEX="IMCEAEX-o=Fab_cn=bo@gw.test"
ZED="IMCEAX400-c=US+3Ba=+20+3Bo=Sales+3Bs=Zed+3B@gw.test"

write_map() {
    cat >"$mapdir/map.txt" <<'MAP'
# X.400 or typed address                  SMTP address        direction
c=US;a= ;p=Fab;o=Sales;s=Lee;g=Bill;      bill.lee@fab.test
c=US;a= ;o=Sales;s=Ann;                   ann@fab.test        in
c=US;a= ;o=Sales;s=Far;                   far@remote.test
EX:/o=Fab/ou=Site/cn=Recipients/cn=bo     bo@fab.test
# an alias, as Postfix's virtual aliases
sales@fab.test                            bill.lee@fab.test, ann@fab.test
MAP
}
write_map

SINK=$T/sink
python3 tests/integration/smtp_sink.py --port "$SINK_PORT" --dir "$SINK" --pidfile "$T/sink.pid" \
    --rule 'far@remote\.test=550 5.1.1 no such user here' </dev/null >>"$T/sink.log" 2>&1 &
SINK_PID=$!
wait_for 10 test -s "$T/sink.pid" || { echo "smtp_sink did not start:" >&2; cat "$T/sink.log" >&2; exit 1; }

run imsvc install
expect_status 0 "install"
for kv in "ListenPort $PORT" "LocalDomains gw.test;fab.test" "SmartHost 127.0.0.1:$SINK_PORT" \
          "SmartHostTls 0" "AddressMapFile $MAPWIN"; do
    run imsvc config set ${kv%% *} "${kv#* }"
    expect_status 0 "config set ${kv%% *} ${kv#* }"
done
run imsvc start
expect_status 0 "start"
run imsvc events --id "$(event_id MSG_ADDRESS_MAP_LOADED)"
expect_out "The address map $MAPWIN was loaded: 4 typed lines (X.400 and other address types) and 1 alias lines are in force." \
    "event 2301: the map was loaded at start"

# expect_reply TEXT DESC: a server reply in swaks' output ("<-" or "<**"
# and spaces before it) is exactly TEXT.
expect_reply() {
    sed -nE 's/^ *<(-|\*\*) +//p' <<<"$OUT" | grep -qxF -- "$1" && pass "$2" ||
        fail "$2: no reply '$1'"
}
# send ID RCPT: one message from sender@fab.test with Subject ID; OUT holds swaks' output.
send() {
    run swaks --server 127.0.0.1:$PORT --from sender@fab.test --to "$2" --header "Subject: $1" \
        --body "body of $1"
}
# rcpt RCPT: the RCPT reply only.
rcpt() {
    run swaks --server 127.0.0.1:$PORT --from sender@fab.test --to "$1" --quit-after RCPT
}
# dropped ID: the drop file whose Subject is ID (waits for the queue).
dropped() {
    queue_settle "$data_dir" 30 || true
    grep -l "^Subject: $1" "$drop"/*.eml 2>/dev/null | head -1
}

# --- IMCEA X.400 recipients, with and without PRMD ---------------------------
send lee "$LEE"
expect_reply "250 2.1.5 Recipient <$LEE> ok, rewritten to <bill.lee@fab.test>" \
    "an IMCEA X.400 recipient with a PRMD is rewritten to its SMTP address"
expect_out_re "<- +250 2\.0\.0 .*queued as" "and the message is accepted"
f=$(dropped lee)
[ -n "$f" ] && grep -q "for <bill.lee@fab.test>;" "$f" && pass "the drop file names bill.lee@fab.test" ||
    fail "no drop file for bill.lee@fab.test ($f)"

send ann "$ANN"
expect_reply "250 2.1.5 Recipient <$ANN> ok, rewritten to <ann@fab.test>" \
    "an IMCEA X.400 recipient without a PRMD is valid and rewritten (PRMD is optional)"
f=$(dropped ann)
[ -n "$f" ] && grep -q "for <ann@fab.test>;" "$f" && pass "the drop file names ann@fab.test" ||
    fail "no drop file for ann@fab.test ($f)"

send bo "$BO"
expect_reply "250 2.1.5 Recipient <$BO> ok, rewritten to <bo@fab.test>" "an IMCEA EX recipient is mapped"

# --- refused at RCPT, naming the field and the rule --------------------------
queue_settle "$data_dir" 30 || true
before=$(find "$drop" -name '*.eml' | wc -l)
rcpt "$NOC"
expect_reply "550 5.1.3 Error: the IMCEAX400 address is not valid: the X.400 address breaks a rule: field c: country is required" \
    "no C=: 550 5.1.3 naming the country"
rcpt "$NOS"
expect_reply "550 5.1.3 Error: the IMCEAX400 address is not valid: the X.400 address breaks a rule: field s: surname is required when g is present" \
    "G= without S=: 550 5.1.3 naming the surname"
rcpt "$LONGS"
expect_reply "550 5.1.3 Error: the IMCEAX400 address is not valid: the X.400 address breaks a rule: field s: surname longer than 40 characters" \
    "an S= of 41 characters: 550 5.1.3"
rcpt "$LONGO"
expect_reply "550 5.1.3 Error: the IMCEAX400 address is not valid: the X.400 address breaks a rule: field o: organization longer than 64 characters" \
    "an O= of 65 characters: 550 5.1.3"
rcpt "$BADEX"
expect_reply "550 5.1.3 Error: the IMCEAEX address is not valid: the EX address must start with /o= (an Exchange distinguished name)" \
    "an EX address that is not a DN: 550 5.1.3"
rcpt "$NOBODY"
expect_reply "550 5.1.1 Error: the X.400 address c=US;a= ;o=Sales;s=Nobody; is valid but not in the address map, so no mailbox receives it" \
    "a valid unmapped X.400 recipient: 550 5.1.1"
queue_settle "$data_dir" 10 || true
expect_eq "$(find "$drop" -name '*.eml' | wc -l)" "$before" "nothing refused at RCPT reached the drop folder"

# --- an alias: two recipients, one drop file ---------------------------------
send alias sales@fab.test
expect_reply "250 2.1.5 Recipient <sales@fab.test> ok, rewritten to 2 addresses (map line 7)" \
    "an alias becomes two recipients"
f=$(dropped alias)
[ -n "$f" ] && pass "the alias's message is in the drop folder" || fail "the alias's message is missing"

# --- an NDR shows the address as written beside the rewritten one ------------
send far "$FAR"
expect_reply "250 2.1.5 Recipient <$FAR> ok, rewritten to <far@remote.test>" \
    "a recipient mapped to another domain is accepted for the smart host"
wait_for 30 grep -q "^far@remote.test 550" "$SINK/rcpt.log" &&
    pass "the smart host was asked for far@remote.test and refused it" ||
    fail "the smart host never saw far@remote.test"
ndr=
for _ in $(seq 1 100); do
    ndr=$(grep -l "Final-Recipient: rfc822; far@remote.test" "$drop"/*.eml 2>/dev/null | head -1 || true)
    [ -n "$ndr" ] && break
    sleep 0.3
done
if [ -n "$ndr" ]; then
    pass "the NDR for far@remote.test reached sender@fab.test's drop folder"
    OUT=$(tr -d '\r' <"$ndr")
    expect_out "Original-Recipient: rfc822; $FAR" "the NDR's Original-Recipient is the IMCEA address as written"
    expect_out "Final-Recipient: rfc822; far@remote.test" "beside the rewritten Final-Recipient"
    expect_out "Original address: $FAR" "the NDR's text shows the address as written too"
    expect_out "550 5.1.1 no such user here" "the NDR carries the smart host's reply"
else
    fail "no NDR for far@remote.test in the drop folder"
fi

# --- imsvc address map test ---------------------------------------------------
run imsvc address map test "$LEE"
expect_status 0 "map test of a mapped IMCEA address"
expect_out "result: rewritten to <bill.lee@fab.test>" "map test says what it becomes"
expect_out "why: IMCEA X.400 address c=US;a= ;p=Fab;o=Sales;s=Lee;g=Bill; is map line 2 (in)" "map test says why"
expect_out "map line 2: c=US;a= ;p=Fab;o=Sales;s=Lee;g=Bill;" "map test shows the line"
run imsvc address map test "$NOC"
expect_status 1 "map test of an invalid IMCEA address"
expect_out "result: refused 550 5.1.3" "map test: refused 550 5.1.3"
run imsvc address map test sales@fab.test
expect_out "result: rewritten to <ann@fab.test>" "map test of the alias lists its addresses"
run imsvc address map test --mail "<$LEE>"
expect_out "result: rewritten to <bill.lee@fab.test>" "map test --mail: an IMCEA sender is mapped too"
run imsvc address check bo@fab.test
expect_out "address map: EX /o=Fab/ou=Site/cn=Recipients/cn=bo (line 5)" \
    "address check shows the EX line of an SMTP address"

# --- PARAMCHANGE: a bad map keeps the old one; a good one replaces it -------
cat >>"$mapdir/map.txt" <<'MAP'
c=US;a= ;o=Sales;g=Zed;                   zed@fab.test
MAP
imsvc config set AddressMapFile "$MAPWIN" >/dev/null     # the same value: only a PARAMCHANGE
for _ in $(seq 1 40); do
    run imsvc events --id "$(event_id MSG_ADDRESS_MAP_INVALID)"
    grep -qF "line 8" <<<"$OUT" && break
    sleep 0.5
done
expect_out "The address map $MAPWIN was not loaded: line 8: X.400 address: field s: surname is required when g is present. The map loaded before (5 lines) stays in force." \
    "event 2300 names the bad line, and the old map stays"
rcpt "$LEE"
expect_reply "250 2.1.5 Recipient <$LEE> ok, rewritten to <bill.lee@fab.test>" \
    "after the bad reload the old map still rewrites"
write_map
echo 'c=US;a= ;o=Sales;s=Zed;                   zed@fab.test' >>"$mapdir/map.txt"
imsvc config set AddressMapFile "$MAPWIN" >/dev/null
for _ in $(seq 1 40); do
    rcpt "$ZED"
    grep -qF "rewritten to <zed@fab.test>" <<<"$OUT" && break
    sleep 0.5
done
expect_reply "250 2.1.5 Recipient <$ZED> ok, rewritten to <zed@fab.test>" "a corrected map takes effect at PARAMCHANGE"
run imsvc events --id "$(event_id MSG_ADDRESS_MAP_LOADED)"
expect_out "5 typed lines (X.400 and other address types) and 1 alias lines are in force." "event 2301 counts the new map"

# --- header fields: RewriteHeaders --------------------------------------------
# send_file ID FILE: FILE (a whole message, CRLF) as DATA, to ann@fab.test.
# swaks ends the data with a CRLF of its own, so it gets FILE without its
# last CRLF: what goes over the wire is FILE exactly.
send_file() {
    head -c -2 "$2" >"$2.swaks"
    run swaks --server 127.0.0.1:$PORT --from sender@fab.test --to ann@fab.test --data "@$2.swaks"
    expect_out_re "<- +250 2\.0\.0 .*queued as" "$1: the message is accepted"
}
# drop_message DROPFILE OUT: the message as it was queued: the drop file
# without its x-sender/x-receiver lines and imsvc's Received field.
drop_message() {
    python3 - "$1" "$2" <<'PY'
import re, sys
b = open(sys.argv[1], "rb").read()
m = re.match(rb"(?:x-(?:sender|receiver):[^\n]*\n)*Received:[^\n]*\n(?:[ \t][^\n]*\n)*", b, re.I)
open(sys.argv[2], "wb").write(b[m.end():] if m else b)
PY
}
# same_in_drop ID FILE DESC: the drop file whose Subject is ID holds FILE
# byte for byte, after imsvc's own lines.
same_in_drop() {
    local f
    f=$(dropped "$1")
    if [ -z "$f" ]; then
        fail "$3: no drop file for $1"
        return
    fi
    drop_message "$f" "$T/$1.queued"
    cmp -s "$2" "$T/$1.queued" && pass "$3" ||
        fail "$3: $(diff <(tr -d '\r' <"$2") <(tr -d '\r' <"$T/$1.queued") | head -5)"
}
crlf() { sed 's/$/\r/'; }

crlf >"$T/hdr-off.eml" <<MSG
From: "Lee, Bill" <$LEE>
To: "Ann, Sales" <$ANN>, Bo <$BO>
Cc: Team: $LEE (Bill),
 =?utf-8?Q?Ann_Sales?= <$ANN>;
Subject: hdr-off
Message-ID: <hdr-off@fab.test>

body of hdr-off
MSG
sed 's/hdr-off/hdr-on/g' "$T/hdr-off.eml" >"$T/hdr-on.eml"

send_file "RewriteHeaders 0" "$T/hdr-off.eml"
same_in_drop hdr-off "$T/hdr-off.eml" \
    "RewriteHeaders 0 (the default): the message's header fields reach Drop byte for byte"

run imsvc config set RewriteHeaders 1
expect_status 0 "config set RewriteHeaders 1"
for _ in $(seq 1 40); do
    run imsvc events --id "$(event_id MSG_CONFIG_CHANGED)"
    grep -qF "RewriteHeaders: 0 -> 1" <<<"$OUT" && break
    sleep 0.5
done
expect_out "RewriteHeaders: 0 -> 1" "the service took RewriteHeaders 1 at PARAMCHANGE"
run imsvc config show
expect_out_re "RewriteHeaders +1" "config show lists RewriteHeaders 1"

send_file "RewriteHeaders 1" "$T/hdr-on.eml"
f=$(dropped hdr-on)
if [ -n "$f" ]; then
    drop_message "$f" "$T/hdr-on.queued"
    crlf >"$T/hdr-on.want" <<MSG
From: "Lee, Bill" <bill.lee@fab.test>
To: "Ann, Sales" <ann@fab.test>, Bo <bo@fab.test>
Cc: Team: bill.lee@fab.test (Bill),
 =?utf-8?Q?Ann_Sales?= <ann@fab.test>;
Subject: hdr-on
Message-ID: <hdr-on@fab.test>

body of hdr-on
MSG
    cmp -s "$T/hdr-on.want" "$T/hdr-on.queued" &&
        pass "RewriteHeaders 1: From/To/Cc show the mapped addresses; display names, comment, group and fold kept" ||
        fail "RewriteHeaders 1: $(diff <(tr -d '\r' <"$T/hdr-on.want") <(tr -d '\r' <"$T/hdr-on.queued") | head -8)"
else
    fail "RewriteHeaders 1: no drop file for hdr-on"
fi

crlf >"$T/hdr-signed.eml" <<MSG
From: "Lee, Bill" <$LEE>
To: <$ANN>
Subject: hdr-signed
MIME-Version: 1.0
Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256;
	boundary="sig"

--sig
Content-Type: text/plain

signed text from $LEE
--sig
Content-Type: application/pkcs7-signature; name=smime.p7s
Content-Transfer-Encoding: base64

MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCA
--sig--
MSG
send_file "multipart/signed" "$T/hdr-signed.eml"
same_in_drop hdr-signed "$T/hdr-signed.eml" \
    "RewriteHeaders 1: a multipart/signed message reaches Drop byte for byte"

crlf >"$T/hdr-dkim.eml" <<MSG
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=fab.test; s=s1;
	h=from:to:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;
	b=dGVzdA==
From: "Lee, Bill" <$LEE>
To: <$ANN>
Subject: hdr-dkim

body of hdr-dkim
MSG
send_file "DKIM-Signature" "$T/hdr-dkim.eml"
same_in_drop hdr-dkim "$T/hdr-dkim.eml" \
    "RewriteHeaders 1: a message with a DKIM-Signature reaches Drop byte for byte"

# big_header ID KIB: a message whose From (a mapped IMCEA address) comes after
# KIB KiB of folded header lines, as ID.eml, and as ID.want with that From
# rewritten.
big_header() {
    python3 - "$T/$1" "$2" "$LEE" "$1" <<'PY'
import sys
base, kib, lee, name = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
pad = "X-Pad: start\r\n" + "".join(" %070d\r\n" % i for i in range(kib * 1024 // 73))
tail = "Subject: %s\r\n\r\nbody of %s\r\n" % (name, name)
open(base + ".eml", "wb").write((pad + 'From: "Lee, Bill" <%s>\r\n' % lee + tail).encode())
open(base + ".want", "wb").write((pad + 'From: "Lee, Bill" <bill.lee@fab.test>\r\n' + tail).encode())
PY
}
big_header hdr-big 40
send_file "a 40 KiB header" "$T/hdr-big.eml"
same_in_drop hdr-big "$T/hdr-big.want" \
    "RewriteHeaders 1: a From after 40 KiB of header (many reads) is rewritten, the rest byte for byte"
big_header hdr-huge 70
send_file "a 70 KiB header" "$T/hdr-huge.eml"
same_in_drop hdr-huge "$T/hdr-huge.eml" \
    "RewriteHeaders 1: a header over 64 KiB is left alone, byte for byte"

# --- pickup files through the address map --------------------------------------
badmail="$data_dir/Badmail"
# pickup NAME LINES...: a pickup file, written aside and moved in.
pickup() {
    local name=$1
    shift
    printf '%s\r\n' "$@" "" "body of $name" >"$data_dir/Pickup/$name.tmp"
    mv "$data_dir/Pickup/$name.tmp" "$data_dir/Pickup/$name.eml"
}
pickup pk-imcea "x-sender: app@fab.test" "x-receiver: $ANN" "Subject: pk-imcea"
pickup pk-nobody "x-sender: app@fab.test" "x-receiver: $NOBODY" "Subject: pk-nobody"
pickup pk-noc "x-sender: app@fab.test" "x-receiver: ok@fab.test" "x-receiver: $NOC" "Subject: pk-noc"
pickup pk-alias "From: App <app@fab.test>" "To: Sales <sales@fab.test>" "Subject: pk-alias"
wait_for 30 test -e "$badmail/pickup-pk-noc.eml.txt" || true
wait_for 30 test -e "$badmail/pickup-pk-nobody.eml.txt" || true

f=$(dropped pk-imcea)
OUT=$([ -n "$f" ] && tr -d '\r' <"$f" || true)
expect_out "x-receiver: ann@fab.test" "a pickup file's IMCEA x-receiver is delivered to its mapped mailbox"
grep -qF "x-receiver: $ANN" <<<"$OUT" && fail "the drop file names the IMCEA address as recipient" ||
    pass "... and not to the IMCEA address as written"

OUT=$(tr -d '\r' <"$badmail/pickup-pk-nobody.eml.txt" 2>/dev/null || true)
expect_out "the address map refuses the recipient $NOBODY: 550 5.1.1 the X.400 address c=US;a= ;o=Sales;s=Nobody; is valid but not in the address map" \
    "an unmapped IMCEA x-receiver: the file goes to Badmail, the .txt naming the address and the reason"
OUT=$(tr -d '\r' <"$badmail/pickup-pk-noc.eml.txt" 2>/dev/null || true)
expect_out "the address map refuses the recipient $NOC: 550 5.1.3 the IMCEAX400 address is not valid: the X.400 address breaks a rule: field c: country is required" \
    "an invalid IMCEA x-receiver: Badmail, the .txt naming the field and the rule"
OUT=$(grep -l "^Subject: pk-noc" "$drop"/*.eml 2>/dev/null || true)
expect_eq "$OUT" "" "nothing of the refused file reached Drop (not even its valid recipient)"
[ ! -e "$data_dir/Pickup/pk-nobody.eml" ] && [ ! -e "$data_dir/Pickup/pk-noc.eml" ] &&
    pass "the refused files left Pickup" || fail "a refused file is still in Pickup"

queue_settle "$data_dir" 30 || true
OUT=$(grep -l "^Subject: pk-alias" "$drop"/*.eml 2>/dev/null | xargs -r cat | tr -d '\r')
expect_out "x-receiver: bill.lee@fab.test" "a pickup file's alias reaches its first target"
expect_out "x-receiver: ann@fab.test" "... and its second"

# --- a configured map that is not loaded: a pickup file waits ------------------
run imsvc stop
expect_status 0 "stop"
echo 'c=US;a= ;o=Sales;g=Bad;                   bad@fab.test' >>"$mapdir/map.txt"
run imsvc start
expect_status 0 "start with a map that does not load"
pickup pk-wait "x-sender: app@fab.test" "x-receiver: $ANN" "Subject: pk-wait"
has_wait_event() {
    imsvc events --id "$(event_id MSG_ADDRESS_MAP_PICKUP_WAIT)" 2>/dev/null | grep -qF "pk-wait.eml"
}
wait_for 20 has_wait_event && pass "event 2302 names the pickup file that waits for the map" ||
    fail "no event 2302 for pk-wait.eml"
run imsvc events --id "$(event_id MSG_ADDRESS_MAP_PICKUP_WAIT)"
expect_out "the address map refuses the recipient $ANN: 451 4.3.5 the address map (AddressMapFile) is not loaded" \
    "... with the address and the 4.3.5 reply"
sleep 3     # another scan or two: still waiting, and reported once
[ -e "$data_dir/Pickup/pk-wait.eml" ] && pass "the file stays in Pickup while the map is not loaded" ||
    fail "pk-wait.eml left Pickup without a map"
expect_eq "$(imsvc events --id "$(event_id MSG_ADDRESS_MAP_PICKUP_WAIT)" 2>/dev/null | grep -c "pk-wait.eml" || true)" 1 \
    "the waiting file is reported once a minute, not at every scan"
write_map
imsvc config set AddressMapFile "$MAPWIN" >/dev/null
wait_for 30 sh -c "grep -l '^Subject: pk-wait' '$drop'/*.eml >/dev/null 2>&1" || true
f=$(dropped pk-wait)
OUT=$([ -n "$f" ] && tr -d '\r' <"$f" || true)
expect_out "x-receiver: ann@fab.test" "once the map loads, the waiting file is delivered to the mapped mailbox"

run imsvc stop
expect_status 0 "stop"
summary
