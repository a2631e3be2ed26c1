#!/usr/bin/env bash
# in-prefix.sh CMD... - run CMD in a throw-away Wine prefix, then remove it.
set -euo pipefail
. "$(dirname "$0")/wineprefix.sh"
trap wp_destroy EXIT
wp_create
"$@"
