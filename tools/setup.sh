#!/usr/bin/env bash
# setup.sh - make (or reuse) everything imsvc needs to build and test.
#
# One setup path for both README commands and CI. As root, from Debian's
# archive only, it makes a Debian 13 (trixie) root with Wine 10, MinGW-w64,
# winbind, libevt-utils, swaks, Postfix and the rest, builds `check` for MinGW
# from Debian's source package inside it, and boots a Wine prefix. Each of the
# three is cached outside the clone under $IMSVC_CACHE, in a directory named
# after a hash of what made it, so a second run only checks that they exist.
# It never downloads anything but Debian packages and never touches the clone.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"

log() { printf 'setup: %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { log "must run as root (debootstrap and chroot need it)"; exit 1; }

need_host() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing host packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# The mirror the host already uses, so no host name is written down here.
host_mirror() {
    local m
    m=$(grep -h -E '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
            /etc/apt/sources.list.d/*.list 2>/dev/null |
        grep -o -E 'https?://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ')
    printf '%s\n' "${m%/}"
}

make_root() {
    # The marker is written last, so a root without it is a broken attempt.
    [ -f "$IMSVC_ROOT/.imsvc-complete" ] && return 0
    rm -rf "$IMSVC_ROOT"
    need_host debootstrap
    local mirror tmp
    mirror=$(host_mirror)
    [ -n "$mirror" ] || { log "no Debian mirror found in the host's apt sources"; exit 1; }
    tmp="$IMSVC_ROOT.tmp.$$"
    rm -rf "$tmp"; mkdir -p "$IMSVC_CACHE"
    log "debootstrap trixie into $tmp (about 5 minutes)"
    debootstrap --variant=minbase trixie "$tmp" "$mirror" >"$IMSVC_CACHE/debootstrap.log" 2>&1 ||
        { tail -20 "$IMSVC_CACHE/debootstrap.log" >&2; exit 1; }
    printf 'deb %s trixie main\ndeb-src %s trixie main\n' "$mirror" "$mirror" >"$tmp/etc/apt/sources.list"
    # Package scripts must not start daemons inside the root.
    printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"; chmod +x "$tmp/usr/sbin/policy-rc.d"
    log "installing packages into the root"
    IMSVC_ROOT="$tmp" "$here/inroot" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends $IMSVC_ROOT_PACKAGES" \
        >"$IMSVC_CACHE/packages.log" 2>&1 || { tail -30 "$IMSVC_CACHE/packages.log" >&2; exit 1; }
    touch "$tmp/.imsvc-complete"
    mv "$tmp" "$IMSVC_ROOT"
}

# check is not packaged for MinGW: build it from Debian's source package.
# CMake finds an alarm() in MinGW that no header declares; HAVE_DECL_ALARM=0
# makes check compile its own (timeouts are unused: tests run with CK_FORK=no).
make_check() {
    [ -f "$IMSVC_CACHE/$IMSVC_CHECK_DIR/lib/libcheck.a" ] && return 0
    log "building check for MinGW from Debian's source package"
    "$here/inroot" sh -ec '
        out=/cache/'"$IMSVC_CHECK_DIR"'
        work=$(mktemp -d /tmp/check-src.XXXX); cd "$work"
        apt-get source -qq check >/dev/null 2>&1
        cd check-*/
        mkdir build-mingw; cd build-mingw
        cmake .. -DCMAKE_SYSTEM_NAME=Windows -DCMAKE_C_COMPILER=x86_64-w64-mingw32-gcc \
            -DCMAKE_RC_COMPILER=x86_64-w64-mingw32-windres -DCMAKE_INSTALL_PREFIX="$out.tmp" \
            -DCHECK_ENABLE_TESTS=OFF -DENABLE_MEMORY_LEAKING_TESTS=OFF \
            -DBUILD_SHARED_LIBS=OFF -DHAVE_DECL_ALARM=0 >/dev/null
        make -j2 >/dev/null
        make install >/dev/null
        rm -rf "$out"; mv "$out.tmp" "$out"
        cd /; rm -rf "$work"' >"$IMSVC_CACHE/check-build.log" 2>&1 ||
        { tail -30 "$IMSVC_CACHE/check-build.log" >&2; exit 1; }
}

# A booted Wine prefix; tests copy it so each run starts clean.
make_prefix() {
    [ -f "$IMSVC_CACHE/$IMSVC_PREFIX_DIR/system.reg" ] && return 0
    log "booting a Wine prefix (about 20 seconds)"
    "$here/inroot" sh -ec '
        export WINEPREFIX=/cache/'"$IMSVC_PREFIX_DIR"'.tmp
        rm -rf "$WINEPREFIX"
        wineboot -i >/dev/null 2>&1
        wineserver -w
        rm -rf /cache/'"$IMSVC_PREFIX_DIR"'; mv "$WINEPREFIX" /cache/'"$IMSVC_PREFIX_DIR"'
    ' >"$IMSVC_CACHE/prefix.log" 2>&1 || { tail -30 "$IMSVC_CACHE/prefix.log" >&2; exit 1; }
}

make_root
make_check
make_prefix
log "ready: root $IMSVC_ROOT"
