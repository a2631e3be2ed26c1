#!/usr/bin/env bash
# test_privilege.sh - least privilege: the service account, the data
# folders' rights.
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
#   DACL Wine derives from the Unix mode), which the service reports (4171).
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
expect_err "9 of 9 data folders (first: $data) did not keep the access rights" \
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
expect_out "9 folders: 9 set, 0 already right" "acl apply sets all nine folders"
run imsvc acl check
expect_status 1 "acl check fails: Wine keeps no file DACL"
expect_out "0 of 9 folders as imsvc sets them" "no folder keeps its DACL under Wine"
for d in "" '\Queue' '\Queue\tmp' '\Queue\log' '\Queue\Hold' '\Queue\ctl' '\Drop' '\Pickup' '\Badmail'; do
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

# The service's start ------------------------------------------------------------

imsvc config set ListenPort $PORT >/dev/null
run imsvc start
expect_status 0 "start"
run imsvc events --id "$(event_id MSG_FOLDER_RIGHTS_NOT_KEPT)"
expect_out "9 of the data folders, among them $data, do not keep the access rights" \
    "at start the service reports that the folders did not keep their DACL (4171)"
expect_out "0000: 11 00 02 00 00 00 00 00" "... at location 0x00020011"

run imsvc stop
expect_status 0 "stop"
run imsvc uninstall
expect_status 0 "uninstall"
summary
