# wineprefix.sh - a throw-away Wine prefix with a wineserver this test owns.
#
# Sourced by test scripts inside the root. wp_create copies the booted prefix
# that setup.sh cached (a copy takes about a second; a new wineboot, 20), and
# starts `wineserver -p -f` in the background so services survive between
# commands; wp_destroy stops that wineserver by its PID and removes the copy.
# Tests call wp_destroy from an EXIT trap so nothing outlives them.
# wp_service_pid finds the service process, for /proc figures.

wp_create() {
    WP_DIR=$(mktemp -d /tmp/imsvc-wine.XXXXXX)
    export WINEPREFIX=$WP_DIR/prefix
    cp -a "/cache/$IMSVC_PREFIX_DIR" "$WINEPREFIX"
    # wp_create FILE: the server writes every request it serves, and its
    # reply, to FILE (-d1), for tools/count-requests.sh.
    if [ -n "${1:-}" ]; then
        wineserver -p -f -d1 2>"$1" &
    else
        wineserver -p -f &
    fi
    WP_SERVER_PID=$!
    # Wait until the server answers, so the first client does not start one.
    local sock
    sock=/tmp/.wine-$(id -u)/server-$(stat -c %D "$WINEPREFIX")-$(printf %x "$(stat -c %i "$WINEPREFIX")")/socket
    for _ in $(seq 1 100); do
        [ -S "$sock" ] && break
        sleep 0.1
    done
    # Start the prefix's system processes (services.exe, winedevice...) with
    # no standard streams: they live as long as the wineserver, and would
    # otherwise hold open whatever pipe the first test command wrote to.
    wine cmd /c exit </dev/null >/dev/null 2>&1
}

wp_destroy() {
    [ -n "${WP_SERVER_PID:-}" ] || return 0
    wineserver -k >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do
        kill -0 "$WP_SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill "$WP_SERVER_PID" 2>/dev/null || true
    wait "$WP_SERVER_PID" 2>/dev/null || true
    WP_SERVER_PID=
    rm -rf "$WP_DIR"
}

# wp_service_pid: the Linux PID of this prefix's imsvc service process. Wine
# shows the Windows command line, and the prefix is in its environment.
wp_service_pid() {
    local f p c
    for f in $(grep -laF imsvc.exe /proc/[0-9]*/cmdline 2>/dev/null); do
        p=${f%/cmdline}
        c=$(tr '\0' ' ' 2>/dev/null <"$f") || continue
        case $c in *imsvc.exe*service*) ;; *) continue ;; esac
        tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qxF "WINEPREFIX=$WINEPREFIX" || continue
        echo "${p#/proc/}"
        return 0
    done
    return 1
}
