#!/usr/bin/env bash
# test.sh - run every test: the README's test command, and what CI runs.
#
# Makes or reuses the Debian 13 root (tools/setup.sh), then runs
# `make -f Makefile.mingw check` inside it: unit tests under Wine and natively
# under ASan/UBSan, bounded fuzzing, and the integration tests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/setup.sh"
exec "$here/inroot" sh -c "make -f Makefile.mingw -j2 all && make -f Makefile.mingw check"
