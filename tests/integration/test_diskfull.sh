#!/usr/bin/env bash
# test_diskfull.sh - a full disk under the data directory loses nothing.
#
# The service's DataDirectory is a small tmpfs (DISKFULL_MB, default 8 MiB)
# mounted under this test's directory in /tmp, which Wine's Z: drive shows
# (tests run as root in a private mount namespace, tools/inroot). It listens
# on 127.0.0.1:2611 with LocalDomains diskfull.test, so every message is
# delivered to <DataDirectory>\Drop on the same small disk, and short retry
# timers (RetryIntervals 3s, RetryEvery 3s).
#
#  1. Once it runs, a filler file takes all but DISKFULL_FREE_KB (default
#     900 KiB) of the disk, and messages of 16 KiB, each with its own
#     Message-ID, are sent one after another until 40 in a row are refused,
#     then 60 more: every reply to the final dot is 250 or 452 4.3.1 (never
#     451 4.3.0), at least 100 are 452 4.3.1 and some are 250 (near the edge
#     the two mix: the queue frees space as it delivers and retires logs).
#  2. While the disk is full: the service runs (imsvc status), `imsvc events`
#     reads the journal (exit 0) and shows event 4150 (disk full) exactly
#     once, with ERROR_DISK_FULL in its Data, and no per-message event
#     (4131 at 0x00100003, 4100 at 0x00120002, 0x00120005 or 0x00120007, nor
#     2100 for a delivery waiting for room); libevt's evtexport reads the
#     same journal and agrees (compare_events.py).
#  3. The filler is deleted; after STORAGE_CLEAR_SECS (10 s) without a
#     failure, 20 more messages are all accepted, and event 4151 (space is
#     back) is in the journal once.
#  4. Every message that got a 250 arrives in Drop (by Message-ID, whole:
#     its last line is there), none that got 452 does, the journal reads
#     clean again (imsvc events exit 0, evtexport agrees), the service ran
#     throughout, and it stops cleanly.
#  5. With the journal deleted and 64 KiB left, the service starts: the
#     journal cannot reserve its space (event 4153) and grows; the disk is
#     filled to the last byte, and twelve configuration changes make more
#     events than the journal's last page holds: those that find no room are
#     not in it, and `imsvc events` and evtexport still read it whole; after
#     space is freed the next event is there and the record numbers (libevt)
#     have no gap.
# The figures (acknowledged, refused, journal records) are printed. The
# prefix's wineserver is stopped by its PID and the tmpfs unmounted on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/assert.sh

PORT=2611
DOMAIN=diskfull.test
SIZE_MB=${DISKFULL_MB:-8}
FREE_KB=${DISKFULL_FREE_KB:-900}
MSG_SIZE=16384
W=
MOUNTED=

cleanup() {
    set +e
    wp_destroy
    [ -n "$MOUNTED" ] && umount "$MOUNTED"
    [ -n "$W" ] && rm -rf "$W"
}
trap cleanup EXIT

W=$(mktemp -d /tmp/imsvc-diskfull.XXXXXX)
chmod 755 "$W"
mkdir "$W/data"
mount -t tmpfs -o "size=${SIZE_MB}m,mode=0755" tmpfs "$W/data"
MOUNTED=$W/data
DATA_WIN="Z:$(printf '%s' "$W/data" | tr / '\\')"
wp_create

exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
mkdir -p "$exe_dir"
cp "${B:-build}/imsvc.exe" "$exe_dir/"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null; }
state() { imsvc status 2>/dev/null | tr -d '\r' | awk '$1 == "State:" { print $2 }'; }
wait_state() {
    local i
    for i in $(seq 1 $(($2 * 5))); do
        [ "$(state)" = "$1" ] && return 0
        sleep 0.2
    done
    return 1
}
free_kb() { df -k --output=avail "$W/data" | tail -1 | tr -d ' '; }
journal="$W/data/IMSvc.evt"

# Send N messages one after another, one session each; append "ID CODE
# STATUS" per message to FILE; print the counts by reply.
send() { # TAG FIRST COUNT FILE [STOP_AFTER_REFUSED_IN_A_ROW THEN_MORE]
    python3 - "$PORT" "$DOMAIN" "$MSG_SIZE" "$@" <<'EOF'
import collections, smtplib, sys
port, domain, size, tag, first, count, log = sys.argv[1:8]
port, size, first, count = int(port), int(size), int(first), int(count)
stop_after = int(sys.argv[8]) if len(sys.argv) > 8 else 0
more = int(sys.argv[9]) if len(sys.argv) > 9 else 0
counts = collections.Counter()
in_a_row = 0
left = None
body_line = ("x" * 75 + "\r\n")
with open(log, "a") as out:
    for i in range(first, first + count):
        mid = "<%s-%d@%s>" % (tag, i, domain)
        msg = ("From: sender@client.example\r\nTo: user@%s\r\nMessage-ID: %s\r\n"
               "Subject: disk full %d\r\n\r\n" % (domain, mid, i))
        msg += body_line * (size // len(body_line)) + "-- end of %s\r\n" % mid
        try:
            s = smtplib.SMTP("127.0.0.1", port, timeout=60)
            s.ehlo("client.example")
            s.mail("sender@client.example")
            code, _ = s.rcpt("user@%s" % domain)
            if code != 250:
                raise smtplib.SMTPRecipientsRefused({})
            code, reply = s.data(msg.encode())
            reply = reply.decode("ascii", "replace")
            try:
                s.quit()
            except smtplib.SMTPException:
                pass
        except (OSError, smtplib.SMTPException) as e:
            code, reply = 0, repr(e)
        status = reply.split()[0] if reply.split() else "-"
        out.write("%s %d %s\n" % (mid, code, status))
        out.flush()
        key = "%d %s" % (code, status)
        counts[key] += 1
        if key not in ("250 2.0.0", "452 4.3.1"):
            print("unexpected reply to %s: %d %s" % (mid, code, reply))
        in_a_row = in_a_row + 1 if code == 452 else 0
        if left is None and stop_after and in_a_row >= stop_after:
            left = more
        elif left is not None:
            left -= 1
            if left <= 0:
                break
print(" ".join("%s:%d" % kv for kv in sorted(counts.items())))
EOF
}

# Whole copies in Drop, by Message-ID, one per line.
delivered() {
    python3 - "$W/data/Drop" <<'EOF'
import os, re, sys
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        if not name.endswith(".eml"):
            continue
        with open(os.path.join(root, name), "rb") as f:
            text = f.read().decode("latin-1")
        m = re.search(r"^Message-ID: *(<[^>\r\n]*>)", text, re.M | re.I)
        if m and ("\n-- end of %s" % m.group(1)) in text:
            print(m.group(1))
EOF
}

# events_check WHEN: imsvc events reads the journal cleanly and evtexport
# agrees with it.
events_check() {
    run imsvc events
    expect_status 0 "imsvc events reads the journal $1"
    [ -z "$ERR" ] && pass "no damage reported $1" || fail "imsvc events reports damage $1"
    printf '%s\n' "$OUT" >"$W/events-$2.txt"
    evtexport "$journal" >"$W/evtexport-$2.txt" 2>&1 && pass "evtexport reads the journal $1" ||
        { OUT=$(head -20 "$W/evtexport-$2.txt"); ERR=; fail "evtexport cannot read the journal $1"; }
    if python3 tests/integration/compare_events.py "$W/evtexport-$2.txt" "$W/events-$2.txt" \
        "$journal" >"$W/compare-$2.txt" 2>&1; then
        pass "evtexport and imsvc events agree $1"
    else
        OUT=$(cat "$W/compare-$2.txt"); ERR=; fail "evtexport and imsvc events disagree $1"
    fi
}
count_id() { # FILE ID: events with that ID
    awk -F':[ \t]*' -v id="$2" '/^Event ID:/ && $2 == id { n++ } END { print n + 0 }' "$1"
}

run imsvc install
expect_status 0 "install"
for kv in "ListenPort $PORT" "LocalDomains $DOMAIN" "DataDirectory $DATA_WIN" \
          "RetryIntervals 3s" "RetryEvery 3s"; do
    # shellcheck disable=SC2086
    run imsvc config set $kv
    expect_status 0 "config set $kv"
done
run imsvc start
expect_status 0 "start"
wait_state RUNNING 30 && pass "the service is running" || fail "the service is not running: $(state)"
OUT='' ERR=''

# The journal reserved its space on the small disk when the service opened it.
jsize=$(stat -c %s "$journal" 2>/dev/null || echo 0)
expect_eq "$jsize" 1048576 "the journal reserved JournalMaxKB (1024 KiB) at start"
events_check "before the disk fills" before

# 1. Fill the disk.
avail=$(free_kb)
filler_kb=$((avail - FREE_KB))
[ "$filler_kb" -gt 0 ] || { fail "the disk has only $avail KiB free"; summary; exit 1; }
head -c "$((filler_kb * 1024))" /dev/zero >"$W/data/filler" || true
echo "disk: ${SIZE_MB} MiB, $avail KiB free after start, filler $filler_kb KiB, $(free_kb) KiB left"
: >"$W/replies"
t0=$SECONDS
send fill 1 2000 "$W/replies" 40 60 | tee "$W/send-fill.out"
echo "sending took $((SECONDS - t0)) s"
acked=$(awk '$2 == 250' "$W/replies" | wc -l)
refused=$(awk '$2 == 452 && $3 == "4.3.1"' "$W/replies" | wc -l)
other=$(awk '!($2 == 250 && $3 == "2.0.0") && !($2 == 452 && $3 == "4.3.1")' "$W/replies" | wc -l)
echo "while filling: $acked acknowledged (250), $refused refused (452 4.3.1), $other other replies;" \
     "first 452 at message $(awk '$2 == 452 { print NR; exit }' "$W/replies")," \
     "last 250 at message $(awk '$2 == 250 { n = NR } END { print n + 0 }' "$W/replies")"
expect_eq "$other" 0 "every reply is 250 2.0.0 or 452 4.3.1 (no 451 4.3.0)"
[ "$refused" -ge 100 ] && pass "$refused messages refused with 452 4.3.1" ||
    fail "only $refused messages refused with 452 4.3.1"
[ "$acked" -gt 0 ] && pass "$acked messages acknowledged before the disk was full" ||
    fail "no message acknowledged"

# 2. While the disk is full.
[ "$(state)" = RUNNING ] && pass "the service runs while the disk is full" ||
    fail "the service is not running while the disk is full: $(state)"
events_check "while the disk is full" full
full_id=$(event_id MSG_STORAGE_FULL)
expect_eq "$(count_id "$W/events-full.txt" "$full_id")" 1 "event $full_id (disk full) once, not per message"
awk -v id="$full_id" '/^Event ID:/ { on = ($2 == id) } on' FS=':[ \t]*' "$W/events-full.txt" >"$W/event-full.txt"
OUT=$(cat "$W/event-full.txt") ERR=
expect_out_re "0000: [0-9a-f]{8} 00000070" "its Data holds ERROR_DISK_FULL (112)"
expect_out "452 4.3.1" "its text names the 452 4.3.1 reply"
# Data (Words) lines of events at a storage site: only event 4150's.
sites=$(grep -cE '^0000: (00100003|0012000[257]) ' "$W/events-full.txt" || true)
OUT=$(awk -F':[ \t]*' '/^Event ID:/ { id = $2 } /^0000: [0-9a-f]{8} [0-9a-f]{8}$/ { print id, $0 }' \
      "$W/events-full.txt") ERR=
expect_eq "$sites" 1 "no event per refused message (event $full_id alone names a storage site)"
expect_eq "$(count_id "$W/events-full.txt" "$(event_id MSG_QUEUE_DEFERRED)")" 0 \
    "no event $(event_id MSG_QUEUE_DEFERRED) for deliveries waiting for room"
records_full=$(grep -c '^Event ID:' "$W/events-full.txt" || true)
echo "journal while full: $records_full records, file $(stat -c %s "$journal") bytes"

# 3. Space is back.
rm -f "$W/data/filler"
echo "filler deleted: $(free_kb) KiB free"
sleep 11   # STORAGE_CLEAR_SECS without a failure
: >"$W/replies-after"
send after 1 20 "$W/replies-after" | tee "$W/send-after.out"
after_ok=$(awk '$2 == 250 && $3 == "2.0.0"' "$W/replies-after" | wc -l)
expect_eq "$after_ok" 20 "after space is freed, 20 of 20 messages acknowledged"

# 4. Every acknowledged message is delivered, whole, and none of the refused.
cat "$W/replies" "$W/replies-after" | awk '$2 == 250 { print $1 }' | sort -u >"$W/acked.sorted"
awk '$2 != 250 { print $1 }' "$W/replies" | sort -u >"$W/refused.sorted"
total_acked=$(wc -l <"$W/acked.sorted")
missing=-1
for i in $(seq 1 120); do
    delivered | sort >"$W/delivered"
    sort -u "$W/delivered" >"$W/delivered.sorted"
    missing=$(comm -23 "$W/acked.sorted" "$W/delivered.sorted" | wc -l)
    [ "$missing" = 0 ] && break
    sleep 1
done
echo "waited about $i s for delivery: $total_acked acknowledged, $missing not in Drop"
expect_eq "$missing" 0 "every one of the $total_acked acknowledged messages is in Drop"
comm -23 "$W/acked.sorted" "$W/delivered.sorted" | head -5 | sed 's/^/  missing: /'
ghosts=$(comm -12 "$W/refused.sorted" "$W/delivered.sorted" | wc -l)
expect_eq "$ghosts" 0 "no refused message was delivered"
dups=$(uniq -d "$W/delivered" | wc -l)
expect_eq "$dups" 0 "no message delivered twice"

events_check "after space is back" after
back_id=$(event_id MSG_STORAGE_AVAILABLE)
expect_eq "$(count_id "$W/events-after.txt" "$full_id")" 1 "still one event $full_id"
expect_eq "$(count_id "$W/events-after.txt" "$back_id")" 1 "event $back_id (space is back) once"
OUT=$(cat "$W/events-after.txt") ERR=
expect_out_re "since .*, $refused messages could not be stored" "event $back_id counts the $refused refused messages"
records_after=$(grep -c '^Event ID:' "$W/events-after.txt" || true)
echo "journal after: $records_after records, file $(stat -c %s "$journal") bytes"

[ "$(state)" = RUNNING ] && pass "the service ran throughout" || fail "the service is not running: $(state)"
run imsvc stop
expect_status 0 "stop"
wait_state STOPPED 30 || true
run imsvc events --last 1
expect_status 0 "the journal reads after the stop"
expect_out "Event ID:	$(event_id MSG_SERVICE_STOPPED)" "the last event is the clean stop"

# 5. A journal that cannot reserve its space (the disk was full when the
# service started) grows record by record; when the disk is full an event
# does not fit, the file stays whole, and the next event after space is
# freed follows without a gap.
rm -f "$journal"
head -c "$(( ($(free_kb) - 64) * 1024 ))" /dev/zero >"$W/data/filler" || true
run imsvc start
expect_status 0 "start with 64 KiB free"
wait_state RUNNING 30 && pass "the service runs" || fail "the service is not running: $(state)"
head -c $((64 * 1024 * 1024)) /dev/zero >"$W/data/filler2" 2>/dev/null || true
echo "disk full again: $(free_kb) KiB free; journal $(stat -c %s "$journal") bytes"
jsize=$(stat -c %s "$journal")
[ "$jsize" -lt 1048576 ] && pass "the journal could not reserve its space ($jsize bytes)" ||
    fail "the journal is $jsize bytes"
: >"$W/replies-grow"
send grow 1 3 "$W/replies-grow" >/dev/null
# tmpfs gives space by the page: events go on fitting in the journal's last
# page, then one does not. Twelve changes of a long value (each event about
# 1 KiB: "RelayAddresses: old -> new") are more than a page.
ranges() { local j out=; for j in $(seq 1 20); do out="$out${out:+;}10.0.$1.$j/32"; done; echo "$out"; }
changes=12
for i in $(seq 1 $changes); do
    imsvc config set RelayAddresses "$(ranges "$i")" >/dev/null 2>&1 ||
        fail "config set RelayAddresses while the disk is full"
done
sleep 2
events_check "that could not grow" grow
expect_eq "$(count_id "$W/events-grow.txt" "$(event_id MSG_JOURNAL_NOT_RESERVED)")" 1 \
    "event $(event_id MSG_JOURNAL_NOT_RESERVED) says the space could not be reserved"
in_journal=$(count_id "$W/events-grow.txt" "$(event_id MSG_CONFIG_CHANGED)")
echo "journal while the disk is full: $(stat -c %s "$journal") bytes, $in_journal of $changes configuration events in it"
[ "$in_journal" -lt "$changes" ] && pass "events that found no room are not in the journal ($((changes - in_journal)))" ||
    fail "all $changes events are in the journal: the disk was not full"
page_end=$(( (jsize + 4095) / 4096 * 4096 ))
jsize=$(stat -c %s "$journal")
[ "$jsize" -le "$page_end" ] && pass "the journal stayed within its last page ($jsize <= $page_end bytes)" ||
    fail "the journal grew to $jsize bytes on a full disk"
rm -f "$W/data/filler" "$W/data/filler2"
run imsvc config set RetryEvery 5s
expect_status 0 "config set after space is freed"
sleep 2
events_check "after it grows again" regrow
OUT=$(cat "$W/events-regrow.txt") ERR=
expect_out "RetryEvery: 3s -> 5s" "the next event is in the journal"
python3 - "$journal" >"$W/numbers" <<'EOF2'
import sys, pyevt
f = pyevt.file()
f.open(sys.argv[1])
print(" ".join(str(f.get_record(i).get_identifier()) for i in range(f.get_number_of_records())))
EOF2
nums=$(cat "$W/numbers")
want=$(seq -s ' ' 1 "$(wc -w <"$W/numbers")")
expect_eq "$nums" "$want" "record numbers run without a gap (libevt)"
run imsvc stop
expect_status 0 "stop"
wait_state STOPPED 30 || true
run imsvc uninstall
expect_status 0 "uninstall"
echo "figures: acknowledged $acked while filling + $after_ok after; refused $refused (452 4.3.1); other $other; journal $records_full records while full, $records_after after"
wp_destroy
summary
