#!/usr/bin/env bash
# test_privilege.sh - least privilege: the service account, the data
# folders' rights, and DPAPI secrets.
#
# The service runs in a private prefix on 127.0.0.1:2631. Checked, and where
# Wine differs from Windows, what Wine does (docs/service-account.md):
# - `imsvc install` makes the service run as NT SERVICE\IMSvc, read back
#   with QueryServiceConfig (`imsvc acl account`); Wine's SCM accepts the
#   name (and runs the service as the prefix's user) but answers
#   ChangeServiceConfig2 and QueryServiceConfig2 for the service SID type
#   and the required privileges with ERROR_INVALID_LEVEL, which install
#   reports and the read-back shows; `--account LocalSystem` and the
#   password-file rules;
# - the service SID imsvc computes equals one computed here independently
#   (SHA-1 of the upper-case name, Python);
# - the self-signed certificate's CryptoAPI key gets an ACE for the service
#   SID (PP_KEYSET_SEC_DESCR, which Wine stores and reads back);
# - every data folder's DACL (imsvc acl check): what imsvc sets (SYSTEM,
#   Administrators and the service SID, full control, inherited, protected;
#   Pickup also PickupWriters, Drop DropReaders), and that Wine does not
#   keep it (SetNamedSecurityInfo succeeds, GetNamedSecurityInfo reads the
#   DACL Wine derives from the Unix mode), which the service reports (4171);
# - `imsvc config set-secret` reads standard input only, stores no clear
#   text (reg query), shows only that a secret is set, restricts the
#   Secrets key, and CertificatePassword replaces CertificatePasswordFile
#   for a PFX: STARTTLS is offered with the right secret and not with a
#   wrong one (event 4131 names the certificate).
# The NTLM smart host with SmartHostPassword is test_secret.sh (winbind).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/wineprefix.sh
. tests/lib/assert.sh
trap wp_destroy EXIT
wp_create

PORT=2631
B=${B:-build}
exe_dir="$WINEPREFIX/drive_c/Program Files/IMSvc"
data='C:\ProgramData\IMSvc'
secrets='HKLM\SYSTEM\CurrentControlSet\Services\IMSvc\Parameters\Secrets'
mkdir -p "$exe_dir"
cp "$B/imsvc.exe" "$exe_dir/"
imsvc() { wine 'C:\Program Files\IMSvc\imsvc.exe' "$@"; }
svc_sid=$(python3 -c '
import hashlib, struct
d = hashlib.sha1("IMSVC".encode("utf-16-le")).digest()
print("S-1-5-80-" + "-".join(str(x) for x in struct.unpack("<5I", d)))')
sid_re=${svc_sid//-/\\-}

# The account ------------------------------------------------------------------

run imsvc install --account 'NT SERVICE\IMSvc' --password-file 'C:\nofile'
expect_status 2 "a password file for a missing file is refused"
printf 'x\n' >"$WINEPREFIX/drive_c/pw.txt"
run imsvc install --account 'NT SERVICE\IMSvc' --password-file 'C:\pw.txt'
expect_status 2 "a password for a virtual account is refused"
expect_err "NT SERVICE accounts have no password" "... saying why"

run imsvc install --account LocalSystem
expect_status 0 "install --account LocalSystem"
expect_out "as LocalSystem" "... says LocalSystem"
run imsvc acl account
expect_out_re "^Account: +LocalSystem$" "QueryServiceConfig reads back LocalSystem"
imsvc uninstall >/dev/null

run imsvc install
expect_status 0 "install with the default account"
expect_out "as NT SERVICE\\IMSvc" "the default account is NT SERVICE\\IMSvc"
expect_err "does not support the service SID (SERVICE_SID_TYPE_UNRESTRICTED) (ChangeServiceConfig2: ERROR_INVALID_LEVEL)" \
    "Wine's SCM refuses SERVICE_CONFIG_SERVICE_SID_INFO, and install says so"
expect_err "does not support the required privileges (SeChangeNotifyPrivilege only) (ChangeServiceConfig2: ERROR_INVALID_LEVEL)" \
    "Wine's SCM refuses SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO, and install says so"
expect_err "10 of 10 data folders (first: $data) did not keep the access rights" \
    "install says the folders did not keep their rights (Wine keeps no file DACL)"

run imsvc acl account
expect_status 0 "acl account"
expect_out_re "^Account: +NT SERVICE\\\\IMSvc$" "QueryServiceConfig reads back NT SERVICE\\IMSvc"
expect_out_re "^Service SID: +$sid_re NT SERVICE\\\\IMSvc$" \
    "the service SID is S-1-5-80 + SHA-1 of IMSVC ($svc_sid)"
expect_out "Service SID type: not known to this SCM (error 124)" \
    "QueryServiceConfig2 SERVICE_SID_INFO: ERROR_INVALID_LEVEL under Wine"
expect_out "Privileges:      not known to this SCM (error 124)" \
    "QueryServiceConfig2 REQUIRED_PRIVILEGES_INFO: ERROR_INVALID_LEVEL under Wine"
expect_out_re "^Certificate key: container imsvc-[0-9a-f]{16}, CryptoAPI" \
    "the certificate's key is a CryptoAPI container"
expect_out_re "^  allow -        0x80000000 $sid_re NT SERVICE\\\\IMSvc" \
    "its DACL lets the service SID read (use) the key"
expect_out_re "^  allow -        0x000F003F S-1-5-32-544 " "... and keeps the Administrators entry"

# The folders --------------------------------------------------------------------

imsvc config set PickupWriters Users >/dev/null
imsvc config set DropReaders 'S-1-5-32-545' >/dev/null
run imsvc config set PickupWriters nosuchgroup
expect_status 1 "PickupWriters must name a known account"
expect_err "there is no account or group 'nosuchgroup'" "... and says which"
run imsvc acl apply
expect_status 0 "acl apply"
expect_out "10 folders: 10 set, 0 already right" "acl apply sets all ten folders"
run imsvc acl check
expect_status 1 "acl check fails: Wine keeps no file DACL"
expect_out "0 of 10 folders as imsvc sets them" "no folder keeps its DACL under Wine"
for d in "" '\Queue' '\Queue\tmp' '\Queue\log' '\Queue\Hold' '\Queue\ctl' '\Queue\active' '\Drop' '\Pickup' '\Badmail'; do
    grep -qxF "$data$d: differs from what imsvc sets" <<<"$OUT" &&
        pass "acl check covers $data$d" || fail "acl check does not cover $data$d"
done
# From acl check's output: the DACL imsvc sets on folder $1, and the one
# the system read back.
sets_of() {
    P="$1: differs from what imsvc sets" awk 'index($0, ENVIRON["P"]) == 1 {on=1; next}
        /^ it has:/ || /: differs from/ {on=0} on' <<<"$OUT"
}
has_of() {
    P="$1: differs from what imsvc sets" awk 'index($0, ENVIRON["P"]) == 1 {f=1; next}
        f && /^ it has:/ {on=1; next} /: differs from/ {f=0; on=0} on' <<<"$OUT"
}
sets=$(sets_of "$data")
has=$(has_of "$data")
[ "$(grep -c '^  allow' <<<"$sets")" = 3 ] &&
    grep -qE '^  allow OI\|CI +0x001F01FF S-1-5-18 ' <<<"$sets" &&
    grep -qE '^  allow OI\|CI +0x001F01FF S-1-5-32-544 ' <<<"$sets" &&
    grep -qE "^  allow OI\\|CI +0x001F01FF $sid_re " <<<"$sets" &&
    grep -q '^  dacl  protected' <<<"$sets" &&
    pass "data directory: SYSTEM, Administrators, service SID, full control, inherited, protected" ||
    fail "data directory DACL: $sets"
grep -q '^  dacl  not protected' <<<"$has" && grep -qE '^  allow OI\|CI +0x001200A9 S-1-1-0 ' <<<"$has" &&
    ! grep -q "$svc_sid" <<<"$has" &&
    pass "Wine reads back its own DACL from the Unix mode (not protected, Everyone read, no service SID)" ||
    fail "Wine's read-back DACL: $has"
pickup=$(sets_of "$data\\Pickup")
grep -qE '^  allow - +0x001200A2 S-1-5-32-545 BUILTIN\\Users  # add files$' <<<"$pickup" &&
    grep -qE '^  allow OI\|IO +0x001F01FF S-1-3-0 ' <<<"$pickup" &&
    [ "$(grep -c '^  allow' <<<"$pickup")" = 5 ] &&
    pass "Pickup: PickupWriters may add files, CREATOR OWNER controls its own files" ||
    fail "Pickup DACL: $pickup"
drop=$(sets_of "$data\\Drop")
grep -qE '^  allow OI\|CI +0x001200A9 S-1-5-32-545 BUILTIN\\Users  # read and list$' <<<"$drop" &&
    grep -qE '^  allow OI\|IO +0x00010000 S-1-5-32-545 BUILTIN\\Users  # delete$' <<<"$drop" &&
    pass "Drop: DropReaders may read, list and take files" || fail "Drop DACL: $drop"
badmail=$(sets_of "$data\\Badmail")
[ "$(grep -c '^  allow' <<<"$badmail")" = 3 ] && ! grep -q 'S-1-5-32-545' <<<"$badmail" &&
    pass "Badmail: no PickupWriters or DropReaders entry" || fail "Badmail DACL: $badmail"
run imsvc acl show "$data"
expect_out_re "^  owner S-1-5-21-" "acl show reads the owner with GetNamedSecurityInfo"

# Secrets ----------------------------------------------------------------------

secret='Pfx-Secret-7734'
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n' | tr a-f A-F; }
hex16() { printf '%s' "$1" | iconv -t UTF-16LE | od -An -tx1 | tr -d ' \n' | tr a-f A-F; }
run imsvc config set-secret SmartHostPassword "$secret"
expect_status 2 "set-secret refuses a secret on the command line"
run wine reg query "$secrets"
[ "$STATUS" != 0 ] && pass "... and stored nothing" || fail "a secret given on the command line was stored"
run imsvc config set-secret NoSuchSecret </dev/null
expect_status 2 "set-secret refuses an unknown name"
run imsvc config set-secret SmartHostPassword </dev/null
expect_status 1 "set-secret with nothing on standard input fails"
expect_err "no secret on standard input" "... saying so"
run imsvc config set-secret SmartHostPassword <<<"$secret"
expect_status 0 "set-secret SmartHostPassword from standard input"
run wine reg query "$secrets" /v SmartHostPassword
blob1=$(awk '$1 == "SmartHostPassword" {print $3}' <<<"$OUT")
expect_out_re "SmartHostPassword +REG_BINARY +[0-9A-F]{100,}" "the value is REG_BINARY"
[ -n "$blob1" ] && ! grep -q "$(hex "$secret")" <<<"$blob1" && ! grep -q "$(hex16 "$secret")" <<<"$blob1" &&
    pass "the registry value holds the secret neither in UTF-8 nor in UTF-16" ||
    fail "the secret is in clear in the registry"
imsvc config set-secret SmartHostPassword <<<"$secret" >/dev/null
blob2=$(wine reg query "$secrets" /v SmartHostPassword | tr -d '\r' | awk '$1 == "SmartHostPassword" {print $3}')
[ -n "$blob2" ] && [ "$blob1" != "$blob2" ] && pass "the same secret stored twice gives two different blobs" ||
    fail "DPAPI blobs repeat"
run imsvc config show
expect_out_re "^SmartHostPassword +\(secret\) set: [0-9]+ bytes of DPAPI data, used instead of SmartHostPasswordFile$" \
    "config show says the secret is set"
expect_out_re "^CertificatePassword +\(secret\) not set$" "... and which is not"
! grep -qF "$secret" <<<"$OUT$ERR" && pass "config show never prints the secret" || fail "config show printed the secret"
run imsvc acl show "$secrets"
expect_out "dacl  protected (inherits nothing from its parent)" "the Secrets key is protected (RegSetKeySecurity kept)"
expect_out_re "^  allow CI +0x000F003F S-1-5-18 " "... SYSTEM full control"
expect_out_re "^  allow CI +0x000F003F S-1-5-32-544 " "... Administrators full control"
expect_out_re "^  allow CI +0x00020019 $sid_re NT SERVICE\\\\IMSvc  # read \(key\)$" "... the service SID read only"
[ "$(grep -c '^  allow' <<<"$OUT")" = 3 ] && pass "... and nobody else" || fail "Secrets key DACL: $OUT"

# CertificatePassword in place of CertificatePasswordFile, for a PFX.
tmpd=$(mktemp -d)
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=pfx.privilege.test \
    -keyout "$tmpd/key.pem" -out "$tmpd/cert.pem" 2>/dev/null
openssl pkcs12 -export -inkey "$tmpd/key.pem" -in "$tmpd/cert.pem" -passout "pass:$secret" \
    -out "$WINEPREFIX/drive_c/server.pfx"
rm -rf "$tmpd"
imsvc config set ListenPort $PORT >/dev/null
imsvc config set CertificateFile 'C:\server.pfx' >/dev/null
imsvc config set-secret CertificatePassword <<<"wrong-$secret" >/dev/null
run imsvc start
expect_status 0 "start"
ehlo() { swaks --server 127.0.0.1:$PORT --quit-after EHLO 2>&1 || true; }
! grep -q "250-STARTTLS" <<<"$(ehlo)" && pass "a wrong CertificatePassword secret: no STARTTLS" ||
    fail "STARTTLS offered with a wrong PFX password"
run imsvc events --id 4131
expect_out "cannot use the server certificate C:\\server.pfx" "event 4131 names the PFX"
run imsvc config set-secret CertificatePassword <<<"$secret"
expect_out "the running service was told to re-read its configuration" "set-secret tells the running service"
ok=
for _ in $(seq 1 50); do
    grep -q "250-STARTTLS" <<<"$(ehlo)" && { ok=1; break; }
    sleep 0.2
done
[ -n "$ok" ] && pass "the right CertificatePassword secret opens the PFX: STARTTLS offered" ||
    fail "no STARTTLS with the right PFX password secret"
run imsvc events --id "$(event_id MSG_CONFIG_CHANGED)"
expect_out "secrets: changed" "the re-read logs that a secret changed, not its value"
! grep -qF "$secret" <<<"$OUT" && pass "no event holds the secret" || fail "an event holds the secret"

# The service's start ------------------------------------------------------------

run imsvc events --id "$(event_id MSG_FOLDER_RIGHTS_NOT_KEPT)"
expect_out "10 of the data folders, among them $data, do not keep the access rights" \
    "at start the service reports that the folders did not keep their DACL (4171)"
expect_out "0000: 11 00 02 00 00 00 00 00" "... at location 0x00020011"

run imsvc stop
expect_status 0 "stop"
run imsvc uninstall
expect_status 0 "uninstall"
run wine reg query "$secrets"
[ "$STATUS" != 0 ] && pass "uninstall removes the secrets" || fail "secrets left after uninstall"
summary
