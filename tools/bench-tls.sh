#!/usr/bin/env bash
# bench-tls.sh - the secure stream's decrypt throughput next to a bare
# DecryptMessage loop over the same kind of 16 KiB records (bench/tls_bench.c:
# rounds, the two sides alternating, until each has a second of timed work).
# A benchmark, not a test: it prints numbers and fails only if the run does.
# Run inside the root: tools/inroot tools/bench-tls.sh   (B=build-dir to choose)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}
# The runner's build makes every object the bench links against.
make -s -f Makefile.mingw B="$B" "$B/unit_tests.exe" >/dev/null
x86_64-w64-mingw32-gcc -std=gnu11 -O2 -Wall -Wextra -DUNICODE -D_UNICODE -D_WIN32_WINNT=0x0601 \
    -Icore -Ieventlog -Isspi -I"$B/mingw/gen" -static -o "$B/tls_bench.exe" bench/tls_bench.c \
    "$B"/mingw/sspi/*.o "$B"/mingw/eventlog/*.o "$B"/mingw/core/*.o \
    -lsecur32 -lws2_32 -lcrypt32 -ladvapi32 -lshlwapi -lole32 -luuid
tests/lib/in-prefix.sh wine "$B/tls_bench.exe"
