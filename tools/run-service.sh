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

exec "$here/inroot" bash -s "$action" "$@" <<'INROOT'
set -euo pipefail
action=$1; shift
export WINEPREFIX=/cache/service-prefix
pidfile=$WINEPREFIX/imsvc-wineserver.pid
exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" 2>&1 | tr -d '\r'; return "${PIPESTATUS[0]}"; }

server_alive() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start_server() {
    server_alive && return 0
    setsid wineserver -p -f </dev/null >/dev/null 2>&1 &
    echo $! >"$pidfile"
    sleep 1
}

case $action in
up)
    make -f Makefile.mingw -j2 all >/tmp/imsvc-build.log 2>&1 || { tail -30 /tmp/imsvc-build.log; exit 1; }
    [ -d "$WINEPREFIX" ] || cp -a "/cache/$IMSVC_PREFIX_DIR" "$WINEPREFIX"
    start_server
    if imsvc status >/dev/null 2>&1; then
        imsvc uninstall >/dev/null || true
    fi
    mkdir -p "$exe_dir"
    cp build/imsvc.exe "$exe_dir/imsvc.exe"
    imsvc install --start auto
    imsvc start
    echo
    imsvc status
    echo
    imsvc events --last 3
    echo
    echo "The service prefix is $WINEPREFIX (configuration: tools/run-service.sh imsvc config show)."
    echo "More commands: tools/run-service.sh imsvc help; stop it: tools/run-service.sh stop"
    ;;
stop)
    if server_alive; then
        imsvc stop || true
        pid=$(cat "$pidfile")
        wineserver -k || true
        kill "$pid" 2>/dev/null || true
        rm -f "$pidfile"
        echo "stopped the service and its wineserver (pid $pid)"
    else
        echo "the service's wineserver is not running"
    fi
    ;;
imsvc)
    start_server
    imsvc "$@"
    ;;
*)
    echo "usage: tools/run-service.sh [up|stop|imsvc ARGS...]" >&2
    exit 2
    ;;
esac
INROOT
