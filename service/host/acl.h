/* acl.h - who may touch imsvc's folders and keys: the service SID, the
 * protected DACLs of the data folders, and `imsvc acl`.
 *
 * Every folder under DataDirectory (the data directory itself, Queue and
 * its subfolders, Drop, Pickup, Badmail) gets an explicit, protected DACL
 * (nothing inherited from ProgramData, which lets Users read and create):
 * SYSTEM, Administrators and the service SID NT SERVICE\IMSvc get full
 * control, inherited by everything below. Pickup also lets PickupWriters
 * add files (and each writer control the files it made); Drop lets
 * DropReaders read and take files. `imsvc install` and every service start
 * apply them; a folder whose DACL is already right is left alone, so a start
 * does not rewrite the rights of every queued file. This module never grants
 * anything to Everyone or Users on its own, and never takes ownership.
 */
#ifndef IMSVC_ACL_H
#define IMSVC_ACL_H

#include <windows.h>

#include "config.h"

/* The service SID of a service, S-1-5-80-<SHA-1 of the upper-case service
 * name in UTF-16LE, as five little-endian sub-authorities>: what Windows
 * gives NT SERVICE\<name> (sc showsid), computed here because that account
 * exists only once the SCM knows the service, and never under Wine. */
DWORD acl_service_sid(const wchar_t *service_name, BYTE sid[SECURITY_MAX_SID_SIZE]);

/* A SID from "S-1-..." or an account or group name (LookupAccountName). */
DWORD acl_account_sid(const wchar_t *name, BYTE sid[SECURITY_MAX_SID_SIZE]);

/* Which DACL a folder gets. */
enum acl_folder_kind { ACL_FOLDER_PLAIN, ACL_FOLDER_PICKUP, ACL_FOLDER_DROP };

/* Build the DACL imsvc sets on a folder of that kind; extra is the
 * PickupWriters or DropReaders SID (NULL: none). LocalFree the result. */
DWORD acl_folder_dacl(enum acl_folder_kind kind, PSID extra, PACL *out);

/* What acl_secure_data did. */
struct acl_result {
    unsigned folders;            /* folders looked at */
    unsigned changed;            /* ... whose DACL was set */
    unsigned not_kept;           /* ... that read back different after being set */
    wchar_t not_kept_first[MAX_PATH];
    DWORD error;                 /* the first failure, ERROR_SUCCESS if none */
    DWORD error_location;        /* its location code */
    wchar_t error_what[MAX_PATH + 200]; /* a sentence naming what failed */
};

/* Create every data folder that is missing and give each its DACL (from
 * PickupWriters and DropReaders in cfg). Goes on after a failure; returns
 * r->error. */
DWORD acl_secure_data(const struct imsvc_config *cfg, struct acl_result *r);

/* Give an open registry key (opened with WRITE_DAC) a protected DACL:
 * SYSTEM and Administrators full control, the service SID read only. */
DWORD acl_secure_key(HKEY key);

/* `imsvc acl show [PATH] | acl apply | acl account`. */
int acl_cmd(int argc, char **argv);

#endif
