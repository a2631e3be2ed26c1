/* location.h - location codes for the event data payload.
 *
 * Every event carries two little-endian DWORDs: a location and a status. The
 * location's high word names the module, its low word the site within it.
 * These numbers are part of the product's interface: administrators and
 * support look them up in docs/locations.md, so a code, once released, is
 * never renumbered or reused. Add new sites at the end of their module.
 */
#ifndef IMSVC_LOCATION_H
#define IMSVC_LOCATION_H

#define LOC(module, site) ((unsigned long)(((module) << 16) | (site)))

/* Modules (high word). */
#define LOCMOD_SERVICE   0x0001u  /* service/: SCM glue, command line */
#define LOCMOD_CONFIG    0x0002u  /* service/host/config.c: registry parameters */
#define LOCMOD_INSTALLER 0x0003u  /* installer/ */
#define LOCMOD_EVENTLOG  0x0004u  /* eventlog/: ReportEvent, journal */
#define LOCMOD_ADDRESS   0x0005u  /* core/ address parsing and address map */
#define LOCMOD_SMTPD     0x0010u  /* SMTP server sessions */
#define LOCMOD_SMTPC     0x0011u  /* SMTP client sessions */
#define LOCMOD_QUEUE     0x0012u  /* spool and delivery */
#define LOCMOD_SSPI      0x0015u  /* sspi/: Schannel and NTLM contexts */

/* service/ */
#define LOC_SVC_DISPATCHER      LOC(LOCMOD_SERVICE, 0x0001) /* StartServiceCtrlDispatcher */
#define LOC_SVC_REGISTER_HANDLER LOC(LOCMOD_SERVICE, 0x0002) /* RegisterServiceCtrlHandlerEx */
#define LOC_SVC_SET_STATUS      LOC(LOCMOD_SERVICE, 0x0003) /* SetServiceStatus */
#define LOC_SVC_START           LOC(LOCMOD_SERVICE, 0x0004) /* service start-up */
#define LOC_SVC_STOP            LOC(LOCMOD_SERVICE, 0x0005) /* service stop */
#define LOC_SVC_PAUSE           LOC(LOCMOD_SERVICE, 0x0006)
#define LOC_SVC_CONTINUE        LOC(LOCMOD_SERVICE, 0x0007)

/* service/host/config.c */
#define LOC_CFG_READ            LOC(LOCMOD_CONFIG, 0x0001) /* reading Parameters */
#define LOC_CFG_CHANGE          LOC(LOCMOD_CONFIG, 0x0002) /* PARAMCHANGE re-read */
#define LOC_CFG_DATADIR         LOC(LOCMOD_CONFIG, 0x0003) /* creating the data directory */

/* service/host/acl.c and service/host/secret.c: least privilege (sites 0x0010-0x001F) */
#define LOC_CFG_FOLDER_ACL      LOC(LOCMOD_CONFIG, 0x0010) /* creating a data folder, setting its DACL */
#define LOC_CFG_FOLDER_KEPT     LOC(LOCMOD_CONFIG, 0x0011) /* a folder's DACL read back different */
#define LOC_CFG_ACCOUNT         LOC(LOCMOD_CONFIG, 0x0012) /* resolving PickupWriters or DropReaders */
#define LOC_CFG_SECRET          LOC(LOCMOD_CONFIG, 0x0013) /* reading a DPAPI secret or a password file */

/* eventlog/ */
#define LOC_EVL_REPORT          LOC(LOCMOD_EVENTLOG, 0x0001) /* ReportEventW */
#define LOC_EVL_JOURNAL_OPEN    LOC(LOCMOD_EVENTLOG, 0x0002)
#define LOC_EVL_JOURNAL_WRITE   LOC(LOCMOD_EVENTLOG, 0x0003)
/* eventlog/: the journal on a damaged file or a full disk (0x0010-0x001F) */
#define LOC_EVL_JOURNAL_REPAIR  LOC(LOCMOD_EVENTLOG, 0x0010) /* open found damage and repaired it */
#define LOC_EVL_JOURNAL_RESERVE LOC(LOCMOD_EVENTLOG, 0x0011) /* reserving JournalMaxKB on the disk */

/* The address map (service/host/mapfile.c, core/addrmap.c, core/rewrite.c) */
#define LOC_ADDR_MAP_LOAD       LOC(LOCMOD_ADDRESS, 0x0100) /* loading AddressMapFile at start */
#define LOC_ADDR_MAP_RELOAD     LOC(LOCMOD_ADDRESS, 0x0101) /* re-loading it on PARAMCHANGE */
#define LOC_ADDR_MAP_PICKUP     LOC(LOCMOD_ADDRESS, 0x0102) /* a pickup file's envelope through the map */

/* SMTP server sessions (service/listener/smtp_server.c) */
#define LOC_SMTPD_LISTEN        LOC(LOCMOD_SMTPD, 0x0001) /* bind/listen on the SMTP port */
#define LOC_SMTPD_SESSION       LOC(LOCMOD_SMTPD, 0x0002) /* creating a session */
#define LOC_SMTPD_SPOOL         LOC(LOCMOD_SMTPD, 0x0003) /* writing a message to disk */
#define LOC_SMTPD_NTLM_CREDS    LOC(LOCMOD_SMTPD, 0x0004) /* AcquireCredentialsHandle (NTLM, inbound) */
#define LOC_SMTPD_NTLM_ACCEPT   LOC(LOCMOD_SMTPD, 0x0005) /* AcceptSecurityContext for AUTH/XAUTH */
#define LOC_SMTPD_NTLM_POLICY   LOC(LOCMOD_SMTPD, 0x0006) /* NTLM session key below NtlmMinKeyBits */
#define LOC_SMTPD_SOCKET        LOC(LOCMOD_SMTPD, 0x0010) /* a session's socket failed (receive or send) */
#define LOC_SMTPD_STALLED       LOC(LOCMOD_SMTPD, 0x0011) /* the session engine took no input and wanted nothing */

/* SMTP client sessions (service/commands/cmd_send.c: imsvc send) */
#define LOC_SMTPC_CONNECT       LOC(LOCMOD_SMTPC, 0x0001) /* resolve and connect to the server */
#define LOC_SMTPC_SESSION       LOC(LOCMOD_SMTPC, 0x0002) /* the session failed (reply, policy, lost) */
#define LOC_SMTPC_TLS_CRED      LOC(LOCMOD_SMTPC, 0x0003) /* AcquireCredentialsHandle (Schannel, outbound) */
#define LOC_SMTPC_TLS_START     LOC(LOCMOD_SMTPC, 0x0004) /* creating the client stream (first ISC) */
#define LOC_SMTPC_NTLM_CREDS    LOC(LOCMOD_SMTPC, 0x0005) /* AcquireCredentialsHandle (NTLM, outbound) */
#define LOC_SMTPC_NTLM_INIT     LOC(LOCMOD_SMTPC, 0x0006) /* InitializeSecurityContext for AUTH/XAUTH NTLM */
#define LOC_SMTPC_AUTH_CLEAR    LOC(LOCMOD_SMTPC, 0x0300) /* AUTH PLAIN/LOGIN not sent: the session is not encrypted */

/* service/spool/spool.c and service/queue/queue.c */
#define LOC_SPOOL_OPEN          LOC(LOCMOD_QUEUE, 0x0001) /* creating the queue directories, threads */
#define LOC_SPOOL_COMMIT        LOC(LOCMOD_QUEUE, 0x0002) /* group commit: log, flush, rename */
#define LOC_SPOOL_CHECKPOINT    LOC(LOCMOD_QUEUE, 0x0003) /* flushing queue files, deleting a log */
#define LOC_SPOOL_RECOVER       LOC(LOCMOD_QUEUE, 0x0004) /* restoring messages from a commit log */
#define LOC_SPOOL_UPDATE        LOC(LOCMOD_QUEUE, 0x0005) /* rewriting an envelope after an attempt */
#define LOC_QUEUE_READ          LOC(LOCMOD_QUEUE, 0x0006) /* reading a queued message for delivery */
#define LOC_QUEUE_DROP          LOC(LOCMOD_QUEUE, 0x0007) /* writing to the drop directory */
#define LOC_QUEUE_DEFER         LOC(LOCMOD_QUEUE, 0x0008) /* a recipient deferred (retry threshold) */
#define LOC_QUEUE_EXPIRE        LOC(LOCMOD_QUEUE, 0x0009) /* a message expired */
#define LOC_QUEUE_NDR           LOC(LOCMOD_QUEUE, 0x000A) /* composing or queueing an NDR/DSN */
#define LOC_QUEUE_BADMAIL       LOC(LOCMOD_QUEUE, 0x000B) /* moving a message to the badmail directory */
#define LOC_QUEUE_DNS           LOC(LOCMOD_QUEUE, 0x000C) /* DnsQuery for MX */
#define LOC_QUEUE_PICKUP        LOC(LOCMOD_QUEUE, 0x000D) /* the pickup directory */
#define LOC_QUEUE_FILTER        LOC(LOCMOD_QUEUE, 0x000E) /* running the content filter */
#define LOC_QUEUE_CONVERT       LOC(LOCMOD_QUEUE, 0x000F) /* 8-bit to 7-bit conversion */
/* service/spool/spool.c recovery at start: what it keeps (sites 0x0020-0x002F) */
#define LOC_SPOOL_LOG_LIST      LOC(LOCMOD_QUEUE, 0x0020) /* listing the commit logs */
#define LOC_SPOOL_LOG_READ      LOC(LOCMOD_QUEUE, 0x0021) /* reading a commit log: it is kept */
#define LOC_SPOOL_LOG_RESTORE   LOC(LOCMOD_QUEUE, 0x0022) /* a log kept: messages not restored */
#define LOC_SPOOL_LOG_BLOCKED   LOC(LOCMOD_QUEUE, 0x0023) /* a log kept unreplayed: a later one unread */
#define LOC_SPOOL_LOG_DELETE    LOC(LOCMOD_QUEUE, 0x0024) /* deleting a replayed commit log */
#define LOC_SPOOL_REMOVALS      LOC(LOCMOD_QUEUE, 0x0025) /* the removal log that comes with kept logs */
/* service/spool/spool.c queue layout (sites 0x0030-0x003F) */
#define LOC_SPOOL_MIGRATE       LOC(LOCMOD_QUEUE, 0x0030) /* moving a flat queue into hash folders */
/* service/logs/: the protocol log and the message tracking log (0x0200-0x020F) */
#define LOC_LOGS_OPEN           LOC(LOCMOD_QUEUE, 0x0200) /* creating or opening a day's log file, starting the log thread */
#define LOC_LOGS_WRITE          LOC(LOCMOD_QUEUE, 0x0201) /* writing lines to a log file */
#define LOC_LOGS_DROPPED        LOC(LOCMOD_QUEUE, 0x0202) /* lines dropped: the buffer was full */
#define LOC_LOGS_RETENTION      LOC(LOCMOD_QUEUE, 0x0203) /* deleting a log file past LogRetentionDays */
/* service/listener/smtp_server.c submission listeners (sites 0x0300-0x030F) */
#define LOC_SMTPD_LISTEN_SUBMISSION LOC(LOCMOD_SMTPD, 0x0300) /* SubmissionPort / SubmissionTlsPort not served */

/* sspi/: 0x03F3 is the receive loop's DecryptMessage (the seed incident). */
#define LOC_SSPI_DECRYPT        LOC(LOCMOD_SSPI, 0x03F3)
/* sspi/tls.c and sspi/cert.c: the secure stream (sites 0x0101-0x01FF). */
#define LOC_SSPI_HANDSHAKE      LOC(LOCMOD_SSPI, 0x0101) /* Initialize/AcceptSecurityContext */
#define LOC_SSPI_RENEGOTIATE    LOC(LOCMOD_SSPI, 0x0102) /* handshake after SEC_I_RENEGOTIATE */
#define LOC_SSPI_ENCRYPT        LOC(LOCMOD_SSPI, 0x0103) /* EncryptMessage */
#define LOC_SSPI_SHUTDOWN       LOC(LOCMOD_SSPI, 0x0104) /* close_notify: ApplyControlToken + handshake call */
#define LOC_SSPI_ATTRIBUTES     LOC(LOCMOD_SSPI, 0x0105) /* QueryContextAttributes after a handshake */
#define LOC_SSPI_POLICY         LOC(LOCMOD_SSPI, 0x0106) /* negotiated protocol/strength below policy */
#define LOC_SSPI_CERT_VERIFY    LOC(LOCMOD_SSPI, 0x0107) /* outbound: server certificate rejected */
#define LOC_SSPI_INPUT_LIMIT    LOC(LOCMOD_SSPI, 0x0108) /* peer left over four records of unprocessable bytes */
#define LOC_SSPI_TLS_CRED       LOC(LOCMOD_SSPI, 0x0109) /* AcquireCredentialsHandle (Schannel) */
#define LOC_SSPI_CERT_LOAD      LOC(LOCMOD_SSPI, 0x010A) /* server certificate: PFX or store */
#define LOC_SSPI_CERT_NEW       LOC(LOCMOD_SSPI, 0x010B) /* imsvc cert new */
/* TLS decided at the handshake: renegotiation bounds */
#define LOC_SSPI_RENEGOTIATE_REFUSED LOC(LOCMOD_SSPI, 0x0110) /* server: client-initiated renegotiation */
#define LOC_SSPI_RENEGOTIATE_LIMIT   LOC(LOCMOD_SSPI, 0x0111) /* renegotiations/post-handshake messages beyond the bound */

#endif
