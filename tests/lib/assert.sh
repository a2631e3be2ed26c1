# assert.sh - small assertions for shell integration tests.
#
# `run CMD...` captures status, stdout and stderr (CRs removed, as Wine's
# console writes CRLF) into STATUS, OUT and ERR; the expect_* functions check
# them and count. `summary` prints "N passed, N failed" and sets the exit code.

PASSED=0
FAILED=0

run() {
    local o e
    o=$(mktemp); e=$(mktemp)
    set +e
    "$@" >"$o" 2>"$e"
    STATUS=$?
    set -e
    OUT=$(tr -d '\r' <"$o"); ERR=$(tr -d '\r' <"$e")
    rm -f "$o" "$e"
}

pass() { PASSED=$((PASSED + 1)); printf 'ok: %s\n' "$1"; }
fail() {
    FAILED=$((FAILED + 1))
    printf 'FAIL: %s\n' "$1"
    [ -n "${OUT:-}" ] && printf '  stdout: %s\n' "$OUT" | head -20
    [ -n "${ERR:-}" ] && printf '  stderr: %s\n' "$ERR" | head -20
    return 0
}

expect_status() { [ "$STATUS" = "$1" ] && pass "$2 (exit $1)" || fail "$2: exit $STATUS, wanted $1"; }
expect_status_not() { [ "$STATUS" != "$1" ] && pass "$2" || fail "$2: exit $STATUS"; }
expect_out() { grep -qF -- "$1" <<<"$OUT" && pass "$2" || fail "$2: stdout lacks '$1'"; }
expect_out_re() { grep -qE -- "$1" <<<"$OUT" && pass "$2" || fail "$2: stdout does not match /$1/"; }
expect_err() { grep -qF -- "$1" <<<"$ERR" && pass "$2" || fail "$2: stderr lacks '$1'"; }
expect_eq() { [ "$1" = "$2" ] && pass "$3" || fail "$3: got '$1', wanted '$2'"; }

# The low 16 bits of an event's ID, from the message table's header.
event_id() {
    local v
    # windmc writes "#define NAME (DWORD) 0x400003e8": the value is the last field.
    v=$(awk -v n="$1" '$1 == "#define" && $2 == n {print $NF}' "${B:-build}/mingw/gen/messages.h" | tr -d 'L()')
    [ -n "$v" ] || { echo "event_id: no $1 in messages.h" >&2; return 1; }
    echo $((v & 0xFFFF))
}

# wait_for SECONDS CMD...: poll CMD every 0.2 s until it succeeds (0), or
# return 1 once SECONDS have passed.
wait_for() {
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.2
    done
}

summary() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" = 0 ]
}
