#!/usr/bin/env bash
# with-winbind.sh CMD... - run CMD with the winbindd fixture (winbind.sh)
# running and its ntlm_auth wrapper first on PATH; stop it afterwards.
set -euo pipefail
. "$(dirname "$0")/winbind.sh"
trap wb_stop EXIT
wb_start
"$@"
