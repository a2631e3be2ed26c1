#!/usr/bin/env bash
# run-all.sh - run every tests/integration/test_*.sh and total their counts.
#
# Each test prints "N passed, N failed" as its last line. A test that dies
# before that line counts as one failure. The total is the last line printed.
# Tests that need winbindd (test_flood, test_secret, test_send,
# test_submission, test_tls) take its lock themselves (tests/lib/winbind.sh).
# Ports: each test has its own; test_submission uses 2765-2768 (SMTP,
# submission, implicit TLS, smart host) and test_ops 2531 and 2768.
cd "$(dirname "$0")/../.."
total_pass=0 total_fail=0
for t in tests/integration/test_*.sh; do
    echo "== $t"
    log=$(mktemp)
    bash "$t" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
    rm -f "$log"
    if [ -z "$last" ]; then
        echo "FAIL: $t ended (exit $rc) without its summary"
        total_fail=$((total_fail + 1))
        continue
    fi
    p=${last%% passed*}; f=${last#*, }; f=${f%% failed}
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
    [ "$rc" = 0 ] || [ "$f" != 0 ] || { echo "FAIL: $t exited $rc"; total_fail=$((total_fail + 1)); }
done
echo "integration: $total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
