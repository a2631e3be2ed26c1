/* config.h - the service's configuration, read from the registry.
 *
 * Every value lives under HKLM\SYSTEM\CurrentControlSet\Services\IMSvc\
 * Parameters and has a documented default (docs/configuration.md), so an
 * empty key is a working configuration. One table (config.c) lists each value
 * with its type, default and check; `imsvc config show|set`, the service's
 * start-up and its PARAMCHANGE handler all go through it. This module never
 * decides what a change means for a running service: it only reads, writes
 * and describes differences.
 */
#ifndef IMSVC_CONFIG_H
#define IMSVC_CONFIG_H

#include <windows.h>

#include "domains.h"
#include "routelist.h"

#define IMSVC_SERVICE_NAME   L"IMSvc"
#define IMSVC_DISPLAY_NAME   L"Internet Mail Service (imsvc)"
#define IMSVC_PARAMETERS_KEY L"SYSTEM\\CurrentControlSet\\Services\\IMSvc\\Parameters"
/* Per-domain routes: one REG_SZ value per route, named by its domain, holding
 * what follows the domain in a route's text (core/routelist.h). */
#define IMSVC_ROUTES_KEY     IMSVC_PARAMETERS_KEY L"\\Routes"

#define CONFIG_STR_MAX 512
#define CONFIG_ROUTES_MAX 8192  /* characters of every route's text together */

/* LocalDomains and RelayAddresses, parsed once by config_load (core/
 * domains.h): the relay check, routing and IMCEA all match through these.
 * Immutable once made, and never freed while the process runs: a session
 * or a delivery thread may still hold the lists of an earlier load. */
struct config_lists {
    struct domain_list local_domains;
    struct range_list relay_ranges;
    struct route_list routes;          /* Parameters\Routes */
};

struct imsvc_config {
    wchar_t data_dir[MAX_PATH];        /* DataDirectory */
    DWORD journal_max_kb;              /* JournalMaxKB */
    wchar_t listen_address[64];        /* ListenAddress */
    DWORD listen_port;                 /* ListenPort */
    wchar_t host_name[256];            /* HostName: EHLO and Received name */
    wchar_t local_domains[CONFIG_STR_MAX]; /* LocalDomains (REG_MULTI_SZ, shown ';'-joined) */
    wchar_t address_map_file[MAX_PATH];    /* AddressMapFile, empty: none */
    DWORD rewrite_headers;             /* RewriteHeaders: 1 rewrites addresses in header fields */
    wchar_t relay_addresses[CONFIG_STR_MAX]; /* RelayAddresses (REG_MULTI_SZ of CIDR ranges) */
    DWORD max_sessions;                /* MaxSessions: concurrent inbound sessions */
    DWORD max_sessions_per_address;    /* MaxSessionsPerAddress: ... from one address (IPv6: /64) */
    DWORD io_threads;                  /* IoThreads: I/O worker threads; 0: two per CPU */
    DWORD inactivity_timeout;          /* InactivityTimeout: seconds waiting for a command */
    DWORD data_timeout;                /* DataTimeout: seconds of silence inside DATA */
    DWORD min_data_rate;               /* MinDataRate: octets/s during DATA after 30 s; 0: none */
    DWORD send_timeout;                /* SendTimeout: seconds a reply may wait to be taken */
    DWORD max_protocol_errors;         /* MaxProtocolErrors: errors before 421 and close */
    DWORD auth_requires_tls;           /* AuthRequiresTls: AUTH/XAUTH only after STARTTLS */
    DWORD max_message_kb;              /* MaxMessageKB: SIZE limit */
    DWORD xauth;                       /* XAuth: 0 AUTH only, 1 AUTH and XAUTH, 2 XAUTH only */
    wchar_t certificate[CONFIG_STR_MAX];   /* Certificate: thumbprint or subject */
    wchar_t certificate_store[64];         /* CertificateStore: a LocalMachine system store */
    wchar_t certificate_file[MAX_PATH];    /* CertificateFile: a PFX, instead of the store */
    wchar_t certificate_password_file[MAX_PATH]; /* CertificatePasswordFile: the PFX password */
    DWORD tls_min_version;             /* TlsMinVersion: 12 = TLS 1.2, 13 = TLS 1.3 */
    DWORD tls_min_cipher_bits;         /* TlsMinCipherBits */
    DWORD tls_aead_only;               /* TlsAeadOnly: 1 = GCM/CCM/ChaCha20-Poly1305 suites only */
    DWORD ntlm_min_key_bits;           /* NtlmMinKeyBits */
    /* delivery */
    wchar_t smart_host[300];           /* SmartHost: "host[:port]" or "[addr][:port]"; empty: MX */
    DWORD smart_host_tls;              /* SmartHostTls: 0 off, 1 opportunistic, 2 required */
    DWORD smart_host_trust;            /* SmartHostTrust: 0 verify the certificate, 1 any */
    DWORD smart_host_auth;             /* SmartHostAuth: 0 none, 1 if offered, 2 required */
    wchar_t smart_host_mechs[32];      /* SmartHostAuthMechanisms: "ntlm", "plain,login", ... */
    wchar_t smart_host_user[256];      /* SmartHostUser: DOMAIN\user; empty: the service account */
    wchar_t smart_host_password_file[MAX_PATH]; /* SmartHostPasswordFile */
    DWORD outbound_port;               /* OutboundPort: the port of MX hosts */
    DWORD max_outbound;                /* MaxOutbound: delivery connections in all */
    DWORD max_per_destination;         /* MaxPerDestination: ... to one destination */
    wchar_t retry_intervals[128];      /* RetryIntervals: "15m,30m,60m" */
    wchar_t retry_every[32];           /* RetryEvery: "240m" */
    wchar_t delay_notice[32];          /* DelayNotice: "12h"; "0": never */
    wchar_t expire[32];                /* Expire: "2d" */
    wchar_t content_filter[CONFIG_STR_MAX]; /* ContentFilter: a command line; empty: none */
    /* least privilege (service/host/acl.c, service/host/secret.c) */
    wchar_t pickup_writers[256];       /* PickupWriters: a group (or SID) that may add files to Pickup */
    wchar_t drop_readers[256];         /* DropReaders: a group (or SID) that may read and take Drop's files */
    DWORD secrets_stamp;               /* not a registry value: changes when a secret is set (secret_stamp) */
    wchar_t ndr_content[16];           /* NdrContent: "headers" (default) or "full" */
    DWORD protocol_log;                /* ProtocolLog: 1 writes Logs\SMTPyyyymmdd.log */
    DWORD tracking_log;                /* TrackingLog: 1 writes Logs\MSGTRKyyyymmdd.log */
    DWORD log_retention_days;          /* LogRetentionDays: older log files are deleted */
    /* submission listeners (RFC 6409, RFC 8314), limits, Drop, outbound envelope */
    wchar_t submission_address[64];    /* SubmissionAddress: "" = ListenAddress */
    DWORD submission_port;             /* SubmissionPort: STARTTLS then AUTH before MAIL; 0 off */
    wchar_t submission_tls_address[64]; /* SubmissionTlsAddress: "" = ListenAddress */
    DWORD submission_tls_port;         /* SubmissionTlsPort: implicit TLS, AUTH before MAIL; 0 off */
    DWORD max_recipients;              /* MaxRecipients: RCPT per message */
    DWORD max_messages_per_connection; /* MaxMessagesPerConnection: 0 no limit */
    DWORD max_hops;                    /* MaxHops: Received fields before 554 5.4.6 */
    wchar_t masquerade_domain[256];    /* MasqueradeDomain: outbound MAIL FROM domain; "" none */
    DWORD reverse_dns;                 /* ReverseDns: client's name in Received */
    DWORD reverse_dns_timeout_ms;      /* ReverseDnsTimeoutMs: how long the greeting waits for it */
    DWORD drop_envelope_lines;         /* DropEnvelopeLines: x-sender/x-receiver atop Drop files */
    const struct config_lists *lists;  /* not a registry value: LocalDomains and RelayAddresses
                                          parsed (NULL only when out of memory: none) */
    wchar_t bad_why[DOMAINS_WHY_MAX + 32]; /* not a registry value: why config_load refused
                                          the value it named, when a check said; else "" */
    wchar_t routes[CONFIG_ROUTES_MAX]; /* not a table value: the routes under IMSVC_ROUTES_KEY,
                                          one "DOMAIN SETTINGS" line each ("" when none) */
};

/* Fill cfg with defaults, then overlay what the registry holds, and parse
 * cfg->lists from the result. Returns ERROR_SUCCESS, or the Win32 error of
 * the first value that could not be read or is invalid; *bad_value (if not
 * NULL) then names it and cfg keeps that value's default. A missing key is
 * not an error. */
DWORD config_load(struct imsvc_config *cfg, const wchar_t **bad_value);

/* The routes under IMSVC_ROUTES_KEY as text, one "DOMAIN SETTINGS" line
 * each, into out. ERROR_SUCCESS (out "" when the key is missing), or the
 * Win32 error (ERROR_MORE_DATA: they do not fit). */
DWORD config_read_routes(wchar_t *out, size_t cap);

/* Validate text for NAME and write it to the registry. On failure, returns a
 * Win32 error and puts a sentence saying why in why (UTF-16). */
DWORD config_set(const wchar_t *name, const wchar_t *text, wchar_t *why, size_t why_len);

/* Print every value, its current setting, and whether it is the default. */
void config_print(const struct imsvc_config *cfg, FILE *out);

/* Describe what differs between a and b as "Name: old -> new" lines joined
 * by "; ". Returns the number of values that differ. */
int config_diff(const struct imsvc_config *a, const struct imsvc_config *b,
                wchar_t *out, size_t out_len);

/* The drop directory: <DataDirectory>\Drop. */
void config_drop_dir(const struct imsvc_config *cfg, wchar_t *out, size_t out_len);

/* <DataDirectory>\Queue, \Pickup, \Badmail. */
void config_queue_dir(const struct imsvc_config *cfg, wchar_t *out, size_t out_len);
void config_pickup_dir(const struct imsvc_config *cfg, wchar_t *out, size_t out_len);
void config_badmail_dir(const struct imsvc_config *cfg, wchar_t *out, size_t out_len);

/* A duration "90s", "15m", "12h", "2d" (a bare number is minutes, as IIS
 * counts them) in seconds. 0 or -1. */
int config_parse_duration(const wchar_t *text, unsigned long *secs);

struct retry_policy;
/* The retry schedule from RetryIntervals, RetryEvery, DelayNotice, Expire. */
void config_retry_policy(const struct imsvc_config *cfg, struct retry_policy *p);

/* The journal's full path: <DataDirectory>\IMSvc.evt. */
void config_journal_path(const struct imsvc_config *cfg, wchar_t *out, size_t out_len);

/* Create the data directory (and its parents). Returns a Win32 error. */
DWORD config_make_data_dir(const struct imsvc_config *cfg);

/* The TLS policy (TlsMinVersion, TlsMinCipherBits, TlsAeadOnly) for the
 * server's and the smart host's secure streams (sspi/tls.h). */
struct tls_policy;
void config_tls_policy(const struct imsvc_config *cfg, struct tls_policy *p);

#endif
