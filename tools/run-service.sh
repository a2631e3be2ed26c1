#!/usr/bin/env bash
# run-service.sh - build imsvc and run it as a service under Wine's SCM.
#
#   tools/run-service.sh         build, (re)install in the service prefix,
#                                start with the default configuration, then
#                                show `imsvc status` and the latest events
#   tools/run-service.sh stop    stop the service and its wineserver
#   tools/run-service.sh imsvc ARGS...
#                                run any imsvc command in that prefix
#
# The service prefix is a copy of the cached prefix kept at
# $IMSVC_CACHE/service-prefix, with imsvc.exe installed under
# C:\Program Files\IMSvc. A persistent wineserver (`wineserver -p`) keeps the
# service alive after this script returns; its PID is in the prefix's
# imsvc-wineserver.pid, and `stop` ends it by that PID.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/setup.sh"
. "$here/env.sh"

action=${1:-up}
[ $# -gt 0 ] && shift

exec "$here/inroot" bash tools/service-prefix.sh "$action" "$@" </dev/null
