#!/usr/bin/env bash
# test_routes.sh - per-domain routes: `imsvc route list | add | remove`, and
# mail for each routed domain delivered to its own host.
#
# Two Postfix smtp-sinks listen on 127.0.0.1:2754 and 2755, each dumping
# what it receives into its own folder. The service runs in a private prefix
# on 127.0.0.1:2753 with RelayAddresses 127.0.0.1 and no SmartHost. Checked:
# - route list says there are none; route add prints each route in its
#   canonical form (defaults written out); routes that are not valid (a bad
#   domain, a password mechanism with tls=off, a route without a host) are
#   refused with the reason and exit 2, and nothing is written;
# - a route with user=NAME takes its password from standard input only, and
#   the registry holds it only as DPAPI data (never the password, in UTF-8
#   or UTF-16), not at all once the route is removed;
# - routes added while the service runs are used at once: mail for a.test
#   arrives at the first sink only, mail for sub.b.test and x.y.b.test
#   (route *.b.test) at the second only; b.test itself matches no route;
# - route remove takes a route away (list no longer shows it; removing it
#   again says there is none, exit 1), and config show counts the routes.
# The sinks are stopped by their PIDs on exit, the prefix removed.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/assert.sh
. tests/lib/queue.sh

PORT=2753             # the imsvc service
SINK_A=2754           # the route for a.test
SINK_B=2755           # the route for *.b.test
T=$(mktemp -d /tmp/imsvc-routes.XXXXXX)
chmod 755 "$T"        # the sinks write as nobody into folders below it
SINKS=()
cleanup() {
    set +e
    for p in "${SINKS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    wp_destroy
    rm -rf "$T"
}
trap cleanup EXIT

# sink_start PORT DIR: Postfix's smtp-sink, one file per message in DIR.
sink_start() {
    mkdir -p "$2"
    chmod 777 "$2"
    smtp-sink -u nobody -d "$2/%M." "127.0.0.1:$1" 64 </dev/null >"$2.log" 2>&1 &
    SINKS+=("$!")
    for _ in $(seq 1 50); do
        swaks --server "127.0.0.1:$1" --quit-after CONNECT >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "smtp-sink did not listen on $1" >&2
    cat "$2.log" >&2
    return 1
}
sink_start $SINK_A "$T/a"
sink_start $SINK_B "$T/b"
# The file in DIR that holds Subject $2, waiting up to 30 s.
sink_has() {
    local f
    for _ in $(seq 1 150); do
        f=$(grep -l "^Subject: $2" "$1"/* 2>/dev/null | head -1 || true)
        [ -n "$f" ] && { echo "$f"; return 0; }
        sleep 0.2
    done
    return 1
}

wp_create
exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
data="$WINEPREFIX/drive_c/ProgramData/IMSvc"
mkdir -p "$exe_dir"
cp "${B:-build}/imsvc.exe" "$exe_dir/"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null; }
imsvc_in() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@"; }   # standard input passed on
params='HKLM\SYSTEM\CurrentControlSet\Services\IMSvc\Parameters'
PW='r0ute-Secret-7'
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n' | tr a-f A-F; }
hex16() { printf '%s' "$1" | iconv -t UTF-16LE | od -An -tx1 | tr -d ' \n' | tr a-f A-F; }

run imsvc install
expect_status 0 "install"
for kv in "ListenPort $PORT" "LocalDomains imsvc.test" "RelayAddresses 127.0.0.1" \
          "RetryIntervals 1h" "RetryEvery 1h"; do
    run imsvc config set ${kv%% *} "${kv#* }"
    expect_status 0 "config set ${kv%% *} ${kv#* }"
done
run imsvc start
expect_status 0 "start"

# route list / add / refusals -----------------------------------------------------
run imsvc route list
expect_status 0 "route list with no routes"
expect_out "no routes: mail for other domains goes to the SmartHost, or to their MX hosts" \
    "route list says there are none"

run imsvc route add a.test 127.0.0.1:$SINK_A tls=off
expect_status 0 "route add a.test"
expect_out "route added: a.test 127.0.0.1:$SINK_A tls=off trust=verify auth=none" \
    "route add prints the route with every default written out"
expect_out "the running service was told to re-read its configuration" "... and tells the service"
run imsvc route add '*.B.Test.' 127.0.0.1:$SINK_B tls=off
expect_status 0 "route add *.b.test"
expect_out "route added: *.b.test 127.0.0.1:$SINK_B tls=off trust=verify auth=none" \
    "the domain is made canonical (lower case, no trailing dot)"

run imsvc route add a_b.test 127.0.0.1:$SINK_A
expect_status 2 "a domain with an underscore is refused"
expect_err "a_b.test" "... naming it"
run imsvc route add c.test 127.0.0.1:$SINK_A auth=plain user=carol tls=off
expect_status 2 "auth=plain with tls=off is refused"
expect_err "never done in clear" "... saying a password is never sent in clear"
run imsvc route add c.test
expect_status 2 "a route without a host is refused"
run imsvc route add c.test 127.0.0.1:$SINK_A auth=plain user=carol
expect_status 1 "a route with user= and no password on standard input is refused"
expect_err "needs its password on standard input" "... saying where the password comes from"

run imsvc_in route add c.test 127.0.0.1:$SINK_A auth=plain,login user=carol <<<"$PW"
expect_status 0 "route add c.test with a user, the password from standard input"
expect_out "route added: c.test 127.0.0.1:$SINK_A tls=required trust=verify auth=plain,login user=carol (password stored, encrypted with DPAPI)" \
    "a password mechanism makes TLS required"
! grep -qF -- "$PW" <<<"$OUT$ERR" && pass "the password is not printed" || fail "the password was printed"

run imsvc route list
expect_status 0 "route list"
expect_out "a.test 127.0.0.1:$SINK_A tls=off trust=verify auth=none" "route list shows a.test"
expect_out "*.b.test 127.0.0.1:$SINK_B tls=off trust=verify auth=none" "route list shows *.b.test"
expect_out "c.test 127.0.0.1:$SINK_A tls=required trust=verify auth=plain,login user=carol  (password: set)" \
    "route list shows c.test and that its password is set"
expect_eq "$(grep -c . <<<"$OUT")" 3 "route list shows three routes, the refused ones not"
! grep -qF -- "$PW" <<<"$OUT$ERR" && pass "route list does not print the password" ||
    fail "route list printed the password"

run wine reg query "$params" /s
if grep -qF -- "$PW" <<<"$OUT" || grep -q "$(hex "$PW")" <<<"$OUT" || grep -q "$(hex16 "$PW")" <<<"$OUT"; then
    fail "the registry holds the route's password in clear"
else
    pass "the registry holds no clear password (UTF-8 or UTF-16)"
fi
grep -qE "Route:c\.test +REG_BINARY +[0-9A-F]{100,}" <<<"$OUT" &&
    pass "the password is a DPAPI blob, the secret Route:c.test" ||
    fail "no REG_BINARY secret Route:c.test"
grep -qE "^ +c\.test +REG_SZ +127\.0\.0\.1:$SINK_A tls=required trust=verify auth=plain,login user=carol$" <<<"$OUT" &&
    pass "the route is one REG_SZ value under Parameters\\Routes, named by its domain" ||
    fail "no REG_SZ value c.test under Parameters\\Routes"
run imsvc config show
expect_out_re "^Routes +3 " "config show counts the routes"

# mail for each domain at its own sink --------------------------------------------
run python3 - "$PORT" <<'EOF'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
for rcpt, subject in (("u@a.test", "for a.test"), ("v@sub.b.test", "for sub.b.test"),
                      ("w@x.y.B.TEST", "for x.y.b.test")):
    body = ("From: <alice@imsvc.test>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "Message-ID: <%s@imsvc.test>\r\n\r\nbody\r\n") % (rcpt, subject, subject.replace(" ", "-"))
    s.sendmail("alice@imsvc.test", [rcpt], body)
s.quit()
print("sent 3")
EOF
expect_status 0 "three messages accepted for routed domains"
f=$(sink_has "$T/a" "for a.test") && pass "mail for a.test arrived at the a.test sink ($SINK_A)" ||
    { fail "mail for a.test did not arrive at $SINK_A"; imsvc queue list >&2 || true;
      cat "$T/a.log" "$T/b.log" >&2 || true; }
OUT=$(cat "${f:-/dev/null}")
expect_out "u@a.test" "... addressed to u@a.test"
sink_has "$T/b" "for sub.b.test" >/dev/null && pass "mail for sub.b.test arrived at the *.b.test sink ($SINK_B)" ||
    fail "mail for sub.b.test did not arrive at $SINK_B"
sink_has "$T/b" "for x.y.b.test" >/dev/null && pass "mail for x.y.b.test (any depth) arrived at the *.b.test sink" ||
    fail "mail for x.y.b.test did not arrive at $SINK_B"
[ -z "$(grep -l '^Subject: for a.test' "$T/b"/* 2>/dev/null || true)" ] &&
    [ -z "$(grep -l '^Subject: for .*b.test' "$T/a"/* 2>/dev/null || true)" ] &&
    pass "no message reached the other domain's sink" || fail "a message reached the wrong sink"
queue_settle "$data" 20 && pass "the queue is empty" || fail "the queue did not empty"

# route remove --------------------------------------------------------------------
run imsvc route remove A.TEST
expect_status 0 "route remove a.test (any case)"
expect_out "route for a.test removed" "route remove says which route went"
run imsvc route remove a.test
expect_status 1 "removing it again"
expect_err "there is no route for a.test" "... says there is none"
run imsvc route remove c.test
expect_status 0 "route remove c.test"
run imsvc route list
expect_out "*.b.test 127.0.0.1:$SINK_B" "route list still shows *.b.test"
! grep -q "^a\.test \|^c\.test " <<<"$OUT" && pass "route list no longer shows a.test or c.test" ||
    fail "route list still shows a removed route"
run wine reg query "$params" /s
! grep -q "Route:c\.test" <<<"$OUT" && pass "the removed route's password secret is gone" ||
    fail "the secret Route:c.test is still stored"

# b.test itself: no route (a wildcard never matches its apex), so MX delivery,
# which cannot reach anything here: the message waits, the sink sees nothing.
run python3 - "$PORT" <<'EOF'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
s.sendmail("alice@imsvc.test", ["apex@b.test"],
           "From: <alice@imsvc.test>\r\nTo: <apex@b.test>\r\nSubject: for b.test\r\n\r\nbody\r\n")
s.quit()
EOF
sleep 3
[ -z "$(grep -l '^Subject: for b.test' "$T/b"/* 2>/dev/null || true)" ] &&
    pass "mail for b.test itself did not take the *.b.test route" || fail "mail for b.test went to the *.b.test sink"

run imsvc stop
expect_status 0 "stop"
run imsvc uninstall
expect_status 0 "uninstall"
for p in "${SINKS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
alive=0
for p in "${SINKS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
[ $alive = 0 ] && pass "both sinks stopped by their PIDs" || fail "a sink is still running"
SINKS=()
summary
