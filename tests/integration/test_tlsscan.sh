#!/usr/bin/env bash
# test_tlsscan.sh - what TLS scanners and real clients see of STARTTLS: the
# policy is decided in the Schannel credentials, at the handshake.
#
# The service is installed (which makes its self-signed certificate) and
# started under Wine's SCM on 127.0.0.1:2601. Checked with sslscan (its XML)
# and testssl.sh (-p, its JSON), and with openssl s_client:
#   - default policy: TLS 1.0 and 1.1 not offered (both scanners), TLS 1.2
#     offered; a TLS 1.0 or 1.1 client fails in the handshake (no 454 after
#     it); no NULL, export, RC4, DES/3DES, RC2, MD5 or anonymous suite, none
#     below 128 bits;
#   - a client that renegotiates is refused at once (event 4131, location
#     0x00150110) and the service goes on;
#   - TlsMinVersion=10 (imsvc config set, PARAMCHANGE): TLS 1.0 and 1.1
#     offered and served, still no weak suite;
#   - TlsAeadOnly=1: every suite the scanner sees accepted is tried with
#     s_client: no CBC suite carries an SMTP session (454 4.7.0 and event
#     4131 naming the suite, or no handshake at all where the credentials
#     can carry the restriction), every AEAD suite does (221 to QUIT).
# What the scanners saw is printed, for docs/tls.md. About 2 minutes, most
# of it testssl.sh -p.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/assert.sh

PORT=2601
work=$(mktemp -d /tmp/imsvc-tlsscan.XXXXXX)
trap 'wp_destroy; rm -rf "$work"' EXIT
wp_create

exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
mkdir -p "$exe_dir"
cp "${B:-build}/imsvc.exe" "$exe_dir/"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@" </dev/null; }

# sslscan's view: "protocols" prints "1.0=0 1.1=0 1.2=1 1.3=0 ...", "ciphers"
# prints one accepted suite a line: "TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384 256".
scan() {  # name
    timeout 120 sslscan --starttls-smtp --no-colour --xml="$work/$1.xml" 127.0.0.1:$PORT \
        >"$work/$1.txt" 2>&1 || true
}
scan_get() {  # name protocols|ciphers
    python3 - "$work/$1.xml" "$2" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception as e:
    print("unparsable", e); sys.exit(0)
if sys.argv[2] == "protocols":
    print(" ".join("%s=%s" % (p.get("version") if p.get("type") == "tls" else "ssl" + p.get("version"),
                              p.get("enabled")) for p in root.iter("protocol")))
else:
    for c in root.iter("cipher"):
        if c.get("status") in ("accepted", "preferred"):
            print(c.get("sslversion"), c.get("cipher"), c.get("bits"))
EOF
}
# Suites no policy may allow (OpenSSL names), or fewer than 128 bits.
weak_suites() {  # "sslversion name bits" lines on stdin
    awk '$2 ~ /NULL|EXP|RC4|DES|RC2|MD5|ADH|AECDH|anon/ || $3 < 128 {print}'
}
# One SMTP session over STARTTLS with openssl s_client: EHLO then QUIT
# inside TLS; prints the server's lines and s_client's messages. A session
# that was served ends with the 221 to QUIT (s_client also shows the last
# line of the EHLO reply before STARTTLS, so a 250 proves nothing).
smtp_tls() {  # s_client options...
    (printf 'EHLO scanner.test\nQUIT\n'; sleep 3) |
        timeout 30 openssl s_client -starttls smtp -connect 127.0.0.1:$PORT -crlf -quiet \
            -no_ticket "$@" 2>&1 | tr -d '\r' || true
}
is_aead() { [[ $1 =~ GCM|CCM|CHACHA20|POLY1305 ]]; }
event_location_seen() {  # "10 01 15 00": the data's first four bytes
    imsvc events --id 4131 2>/dev/null | tr -d '\r' | grep -qE "0000: $1"
}

run imsvc install
expect_status 0 "install"
imsvc config set ListenPort $PORT >/dev/null
run imsvc start
expect_status 0 "start"

# Default policy (TLS 1.2 or newer) ----------------------------------------
scan default
protos=$(scan_get default protocols)
echo "sslscan, default policy: $protos"
scan_get default ciphers | sed 's/^/  accepted: /'
expect_eq "$(grep -oE '1\.0=[01]' <<<"$protos")" "1.0=0" "sslscan: TLS 1.0 not offered by default"
expect_eq "$(grep -oE '1\.1=[01]' <<<"$protos")" "1.1=0" "sslscan: TLS 1.1 not offered by default"
expect_eq "$(grep -oE '1\.2=[01]' <<<"$protos")" "1.2=1" "sslscan: TLS 1.2 offered"
expect_eq "$(grep -oE 'ssl[23]=1' <<<"$protos" || true)" "" "sslscan: no SSL 2 or 3"
expect_eq "$(scan_get default ciphers | weak_suites)" "" "no NULL, export, RC4, DES, RC2, MD5 or anonymous suite"
[ "$(scan_get default ciphers | wc -l)" -gt 0 ] && pass "sslscan lists the accepted suites" ||
    fail "sslscan found no suite at all"

start=$(date +%s)
timeout 300 testssl --quiet --color 0 --warnings off --starttls smtp -p \
    --jsonfile "$work/testssl-p.json" 127.0.0.1:$PORT >"$work/testssl-p.txt" 2>&1 || true
echo "testssl.sh -p took $(( $(date +%s) - start )) s"
OUT=$(python3 - "$work/testssl-p.json" <<'EOF'
import json, sys
try:
    for e in json.load(open(sys.argv[1])):
        if e.get("id") in ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3"):
            print("%s: %s" % (e["id"], e["finding"]))
except Exception as e:
    print("unreadable", e)
EOF
)
echo "$OUT" | sed 's/^/  testssl.sh: /'
expect_out_re "^TLS1: not offered" "testssl.sh: TLS 1.0 not offered by default"
expect_out_re "^TLS1_1: not offered" "testssl.sh: TLS 1.1 not offered by default"
expect_out_re "^TLS1_2: offered" "testssl.sh: TLS 1.2 offered"
expect_out_re "^SSLv3: not offered" "testssl.sh: SSL 3 not offered"

# Refused in the handshake, not by a 454 after it.
for v in tls1 tls1_1; do
    OUT=$(smtp_tls -$v -cipher 'DEFAULT:@SECLEVEL=0')
    grep -qE '^(221|454)' <<<"$OUT" && fail "a -$v client got an SMTP reply inside TLS" ||
        pass "a -$v client fails in the handshake"
done
OUT=$(smtp_tls -tls1_2)
expect_out_re "^221" "a TLS 1.2 client is served"

# A client that renegotiates (s_client's R command) -------------------------
OUT=$( (printf 'EHLO scanner.test\n'; sleep 2; printf 'R\n'; sleep 3; printf 'NOOP\n'; sleep 1) |
        timeout 30 openssl s_client -starttls smtp -connect 127.0.0.1:$PORT -crlf -tls1_2 \
            -no_ticket 2>&1 | tr -d '\r' || true)
expect_out "RENEGOTIATING" "s_client asked to renegotiate"
sed -n '/RENEGOTIATING/,$p' <<<"$OUT" | head -4 | sed 's/^/  s_client after R: /'
grep -qE '^250 2\.0\.0' <<<"$(sed -n '/RENEGOTIATING/,$p' <<<"$OUT")" &&
    fail "the session went on after the renegotiation" || pass "no reply after the renegotiation"
sleep 1
event_location_seen "10 01 15 00" && pass "event 4131 at location 0x00150110 (renegotiation refused)" ||
    { OUT=$(imsvc events --id 4131 2>&1 | tr -d '\r'); fail "no 4131 event for the renegotiation"; }
OUT=$(smtp_tls -tls1_2)
expect_out_re "^221" "the service goes on after the refused renegotiation"

# TlsMinVersion=10 ----------------------------------------------------------
run imsvc config set TlsMinVersion 10
expect_out "told to re-read" "TlsMinVersion=10 on the running service"
sleep 3
scan min10
protos=$(scan_get min10 protocols)
echo "sslscan, TlsMinVersion=10: $protos"
expect_eq "$(grep -oE '1\.0=[01]' <<<"$protos")" "1.0=1" "sslscan: TLS 1.0 offered with TlsMinVersion=10"
expect_eq "$(grep -oE '1\.1=[01]' <<<"$protos")" "1.1=1" "sslscan: TLS 1.1 offered with TlsMinVersion=10"
expect_eq "$(scan_get min10 ciphers | weak_suites)" "" "still no weak suite with TlsMinVersion=10"
OUT=$(smtp_tls -tls1 -cipher 'DEFAULT:@SECLEVEL=0')
expect_out_re "^221" "a TLS 1.0 client is served with TlsMinVersion=10"
imsvc config set TlsMinVersion 12 >/dev/null

# TlsAeadOnly=1 ------------------------------------------------------------
run imsvc config set TlsAeadOnly 1
expect_out "told to re-read" "TlsAeadOnly=1 on the running service"
sleep 3
scan aead
echo "sslscan, TlsAeadOnly=1: $(scan_get aead protocols)"
scan_get aead ciphers | sed 's/^/  accepted by the handshake: /'
cbc=0 aead=0 bad=
while read -r ver name bits; do
    [ "$ver" = TLSv1.2 ] || continue
    OUT=$(smtp_tls -tls1_2 -cipher "$name")
    if is_aead "$name"; then
        aead=$((aead + 1))
        grep -qE '^221' <<<"$OUT" || bad="$bad $name(not served)"
    else
        cbc=$((cbc + 1))
        grep -qE '^221' <<<"$OUT" && bad="$bad $name(served)"
        # Refused after the handshake: the reply says why.
        if grep -qE '^454' <<<"$OUT"; then
            grep -q "AEAD" <<<"$OUT" || bad="$bad $name(454 without the reason)"
        fi
    fi
done < <(scan_get aead ciphers)
echo "TlsAeadOnly=1: tried $aead AEAD and $cbc CBC suites the handshake accepted"
expect_eq "$bad" "" "with TlsAeadOnly=1 no CBC suite carries a session, every AEAD suite does"
[ "$aead" -gt 0 ] && pass "AEAD suites are offered with TlsAeadOnly=1" || fail "no AEAD suite offered"
# A client that can only do CBC, whatever the scanner listed.
OUT=$(smtp_tls -tls1_2 -cipher 'ECDHE-RSA-AES128-SHA:AES128-SHA')
grep -qE '^221' <<<"$OUT" && fail "a CBC-only client was served with TlsAeadOnly=1" ||
    pass "a CBC-only client is not served with TlsAeadOnly=1"
if grep -qE '^454' <<<"$OUT"; then
    echo "TlsAeadOnly=1, CBC-only client: $(grep -E '^454' <<<"$OUT" | head -1)"
    run imsvc events --id 4131
    expect_out "AEAD" "the refusal's event names the AEAD requirement"
fi
imsvc config set TlsAeadOnly 0 >/dev/null
sleep 3
OUT=$(smtp_tls -tls1_2 -cipher 'ECDHE-RSA-AES128-SHA')
expect_out_re "^221" "with TlsAeadOnly=0 a CBC client is served again"

run imsvc stop
expect_status 0 "stop"
run imsvc uninstall
expect_status 0 "uninstall"
summary
