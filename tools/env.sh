# env.sh - where setup.sh keeps what it makes, and the keys that name it.
# Sourced by setup.sh and inroot; defines variables only.

IMSVC_CACHE=${IMSVC_CACHE:-/var/cache/imsvc}

# What goes into the Debian 13 root. Changing this list makes a new root.
IMSVC_ROOT_PACKAGES="wine wine64 winbind samba-common-bin mingw-w64 libevt-utils \
 swaks libauthen-ntlm-perl postfix python3 openssl msitools cmake make dpkg-dev \
 xz-utils curl ca-certificates gcc libc6-dev clang libclang-rt-19-dev check \
 pkg-config procps python3-libevt \
 libnet-ssleay-perl libio-socket-ssl-perl \
 testssl.sh sslscan sasl2-bin libsasl2-modules wixl"

imsvc_key() { printf '%s' "$*" | sha256sum | cut -c1-12; }

IMSVC_ROOT_KEY=$(imsvc_key "trixie minbase v1 $IMSVC_ROOT_PACKAGES")
IMSVC_ROOT=${IMSVC_ROOT:-$IMSVC_CACHE/trixie-$IMSVC_ROOT_KEY}
# Both are made by tools inside the root, so the root's key names them too.
IMSVC_CHECK_DIR=check-mingw-$(imsvc_key "$IMSVC_ROOT_KEY check v1")
IMSVC_PREFIX_DIR=wineprefix-$(imsvc_key "$IMSVC_ROOT_KEY prefix v1")
export IMSVC_CACHE IMSVC_ROOT IMSVC_CHECK_DIR IMSVC_PREFIX_DIR
