# winbind.sh - a winbindd that knows one test user, for Wine's NTLM server.
#
# Sourced by tests inside the root (as root). Wine's AcceptSecurityContext for
# NTLM runs Samba's `ntlm_auth` from PATH, and ntlm_auth asks winbindd to check
# the response. wb_start makes that work without touching the root's own
# Samba configuration:
#   - a private directory with a standalone smb.conf (netbios name and
#     workgroup IMSVCTEST, a private tdbsam passdb, `ntlm auth = yes` so
#     NTLMv1-only clients can be tested); every path lives in the private
#     directory except the winbindd socket directory, which stays at the
#     default because libwbclient ignores any setting that would move it;
#   - a Unix user `imsvctest` with a Samba password (smbpasswd -a -s);
#   - winbindd in the foreground (-F), in the background of this shell, its PID
#     in WB_PID; wb_start returns when `wbinfo -p` answers;
#   - an `ntlm_auth` wrapper first on PATH that adds --configfile=.
# It exports IMSVC_WINBIND=1 and IMSVC_NTLM_DOMAIN/USER/PASSWORD for the tests.
# wb_stop kills winbindd by its PID, removes the user and the private
# directory, and restores PATH. Both are idempotent; call wb_stop from an EXIT
# trap so nothing outlives the test.
#
# The default socket directory is shared by every user of the root, so one
# fixture at a time: wb_start takes an exclusive lock (flock, up to
# WB_LOCK_WAIT seconds) that wb_stop releases.

WB_NETBIOS=${WB_NETBIOS:-IMSVCTEST}
WB_USER=${WB_USER:-imsvctest}
WB_PASSWORD=${WB_PASSWORD:-Imsvc-Test-Pw1}
WB_LOCK_WAIT=${WB_LOCK_WAIT:-120}
WB_SOCKDIR=/run/samba/winbindd
WB_LOCK=/run/lock/imsvc-winbind.lock
WB_GECOS="imsvc NTLM test user"

wb_start() {
    [ -n "${WB_PID:-}" ] && kill -0 "$WB_PID" 2>/dev/null && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "winbind.sh: must run as root (inside tools/inroot)" >&2
        return 1
    fi
    mkdir -p "$(dirname "$WB_LOCK")"
    exec {WB_LOCK_FD}>"$WB_LOCK"
    if ! flock -w "$WB_LOCK_WAIT" "$WB_LOCK_FD"; then
        echo "winbind.sh: another fixture holds $WB_LOCK" >&2
        exec {WB_LOCK_FD}>&-
        unset WB_LOCK_FD
        return 1
    fi
    # A winbindd someone else left on the default socket would answer for us
    # with the wrong configuration: refuse rather than test against it.
    if [ -S "$WB_SOCKDIR/pipe" ] && wbinfo -p >/dev/null 2>&1; then
        echo "winbind.sh: a winbindd already answers on $WB_SOCKDIR; stop it first" >&2
        wb_stop
        return 1
    fi

    WB_DIR=$(mktemp -d /tmp/imsvc-winbind.XXXXXX)
    mkdir -p "$WB_DIR/private" "$WB_DIR/lock" "$WB_DIR/state" "$WB_DIR/cache" \
             "$WB_DIR/run" "$WB_DIR/ncalrpc" "$WB_DIR/bin" "$WB_SOCKDIR"
    chmod 755 "$WB_SOCKDIR"
    WB_CONF=$WB_DIR/smb.conf
    cat >"$WB_CONF" <<EOF
[global]
    workgroup = $WB_NETBIOS
    netbios name = $WB_NETBIOS
    server role = standalone server
    security = user
    passdb backend = tdbsam:$WB_DIR/private/passdb.tdb
    private dir = $WB_DIR/private
    lock directory = $WB_DIR/lock
    state directory = $WB_DIR/state
    cache directory = $WB_DIR/cache
    pid directory = $WB_DIR/run
    ncalrpc dir = $WB_DIR/ncalrpc
    log file = $WB_DIR/log.%m
    log level = 1
    ntlm auth = yes
    load printers = no
    disable spoolss = yes
EOF

    # The user carries a marker in its GECOS field: a user left behind by a
    # run that died is reused and removed, a real user of that name is not.
    if ! id "$WB_USER" >/dev/null 2>&1; then
        useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
                --comment "$WB_GECOS" "$WB_USER" ||
            { echo "winbind.sh: useradd $WB_USER failed" >&2; wb_stop; return 1; }
    fi
    [ "$(getent passwd "$WB_USER" | cut -d: -f5)" = "$WB_GECOS" ] && WB_ADDED_USER=1
    if ! printf '%s\n%s\n' "$WB_PASSWORD" "$WB_PASSWORD" |
            smbpasswd -c "$WB_CONF" -L -a -s "$WB_USER" >"$WB_DIR/smbpasswd.log" 2>&1; then
        echo "winbind.sh: smbpasswd -a failed:" >&2
        cat "$WB_DIR/smbpasswd.log" >&2
        wb_stop
        return 1
    fi

    printf '#!/bin/sh\nexec /usr/bin/ntlm_auth --configfile=%s "$@"\n' "$WB_CONF" >"$WB_DIR/bin/ntlm_auth"
    chmod 755 "$WB_DIR/bin/ntlm_auth"

    # The lock descriptor is closed for winbindd so that only this shell
    # holds it; stdin from /dev/null so winbindd never reads the test's input.
    winbindd -F --no-process-group --configfile="$WB_CONF" </dev/null \
        >"$WB_DIR/winbindd.out" 2>&1 {WB_LOCK_FD}>&- &
    WB_PID=$!

    local i
    for i in $(seq 1 100); do
        if wbinfo -p >/dev/null 2>&1; then
            break
        fi
        if ! kill -0 "$WB_PID" 2>/dev/null; then
            echo "winbind.sh: winbindd exited:" >&2
            tail -20 "$WB_DIR/winbindd.out" "$WB_DIR"/log.* >&2 2>/dev/null
            wb_stop
            return 1
        fi
        sleep 0.1
    done
    if [ "$i" = 100 ]; then
        echo "winbind.sh: winbindd did not answer wbinfo -p in 10 s" >&2
        wb_stop
        return 1
    fi

    WB_SAVED_PATH=$PATH
    export PATH="$WB_DIR/bin:$PATH"
    export IMSVC_WINBIND=1 IMSVC_NTLM_DOMAIN=$WB_NETBIOS IMSVC_NTLM_USER=$WB_USER \
           IMSVC_NTLM_PASSWORD=$WB_PASSWORD IMSVC_WINBIND_CONF=$WB_CONF
    return 0
}

wb_stop() {
    if [ -n "${WB_PID:-}" ]; then
        kill "$WB_PID" 2>/dev/null || true
        local i
        for i in $(seq 1 50); do
            kill -0 "$WB_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$WB_PID" 2>/dev/null || true
        wait "$WB_PID" 2>/dev/null || true
        WB_PID=
        # winbindd's children (one per domain) exit when their parent goes;
        # give them a moment so the socket directory is free for the next run.
        sleep 0.2
    fi
    if [ -n "${WB_ADDED_USER:-}" ]; then
        userdel "$WB_USER" >/dev/null 2>&1 || true
        WB_ADDED_USER=
    fi
    if [ -n "${WB_DIR:-}" ]; then
        rm -rf "$WB_DIR"
        WB_DIR=
    fi
    if [ -n "${WB_SAVED_PATH:-}" ]; then
        export PATH=$WB_SAVED_PATH
        WB_SAVED_PATH=
    fi
    unset IMSVC_WINBIND IMSVC_NTLM_DOMAIN IMSVC_NTLM_USER IMSVC_NTLM_PASSWORD IMSVC_WINBIND_CONF
    if [ -n "${WB_LOCK_FD:-}" ]; then
        exec {WB_LOCK_FD}>&-
        unset WB_LOCK_FD
    fi
    return 0
}
