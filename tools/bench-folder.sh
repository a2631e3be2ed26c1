#!/usr/bin/env bash
# bench-folder.sh - what creating a file costs under Wine in a folder that
# holds 0, 2,000 and 10,000 files (bench/folder_bench.c): the cost a large
# Drop or Pickup folder puts on every message.
# A benchmark, not a test: it prints numbers and fails only if the run does.
# Run inside the root: tools/inroot tools/bench-folder.sh   (B=build-dir to choose)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}
mkdir -p "$B"
x86_64-w64-mingw32-gcc -std=gnu11 -O2 -Wall -Wextra -municode -DUNICODE -D_UNICODE \
    -D_WIN32_WINNT=0x0601 -static -o "$B/folder_bench.exe" bench/folder_bench.c
tests/lib/in-prefix.sh sh -c 'wine "$0" "C:\\folder-bench" </dev/null' "$B/folder_bench.exe"
