#!/usr/bin/env bash
# service-prefix.sh - the part of run-service.sh that runs inside the root.
#
# Keeps one Wine prefix for the installed service at /cache/service-prefix,
# with a persistent wineserver whose PID is in imsvc-wineserver.pid there.
# Arguments as for tools/run-service.sh. Wine's standard input is /dev/null so
# it can never read a script's text.
set -euo pipefail
action=$1; shift
export WINEPREFIX=/cache/service-prefix
pidfile=$WINEPREFIX/imsvc-wineserver.pid
exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null 2>&1 | tr -d '\r'; return "${PIPESTATUS[0]}"; }

server_alive() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start_server() {
    server_alive && return 0
    setsid wineserver -p -f </dev/null >/dev/null 2>&1 &
    echo $! >"$pidfile"
    # The first Wine client starts the prefix's system processes (services.exe
    # and the rest); they inherit its standard streams and would hold open
    # any pipe we read imsvc's output through. Start them on /dev/null.
    wine cmd /c exit </dev/null >/dev/null 2>&1
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
