/* cmd_send.c - `imsvc send` (see cmd_send.h): one message by hand.
 *
 * The command line around service/io/outbound, which owns the connection: this
 * file parses the options, reads the message file whole (at most
 * SEND_FILE_MAX octets) and the password, opens one connection, sends the
 * message (--repeat: several times over that connection), closes, and
 * prints every recipient's result. The password lives in one buffer here,
 * only until the connection is closed, and is zeroed then; it is never
 * printed. It never writes the service's journal (the running service owns
 * that file); outbound reports events to the event log.
 */
#include "cmd_send.h"

#include <winsock2.h>
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ioengine.h"
#include "outbound.h"
#include "smtpc.h"
#include "tls.h"
#include "utf.h"

#define SEND_DEFAULT_PORT      "25"
#define SEND_FILE_MAX          (1ull << 30)   /* octets of a message file: 1 GiB */
#define SEND_FILE_CHUNK        65536u  /* message file reads */
#define SEND_HOST_MAX          256u
#define SEND_PORT_MAX          16u
#define SEND_PASSWORD_MAX      256u    /* octets of the password file's first line */
#define SEND_PEER_MAX          (SEND_HOST_MAX + SEND_PORT_MAX + 4u)
#define SEND_REPEAT_MAX        100u    /* --repeat */
#define SEND_RESULTS_MAX       10000u  /* recipients x repeats, results kept to print */

struct send_opts {
    char host[SEND_HOST_MAX];
    char port[SEND_PORT_MAX];
    char peer[SEND_PEER_MAX];        /* "host:port", for messages */
    const char *from;
    const char **to;
    size_t n_to;
    enum smtpc_tls_policy tls;
    enum tls_trust trust;
    enum smtpc_auth_policy auth;
    unsigned mechs;                  /* SMTPC_MECH_* for --auth */
    const char *user;                /* DOMAIN\user, or NULL: the current account */
    const char *password_file;
    const char *helo;
    int verbose;
    unsigned repeat;                 /* messages over the one connection */
    const char *file;
};

/* Command line --------------------------------------------------------------- */

static int usage(const char *why)
{
    if (why)
        fprintf(stderr, "imsvc send: %s\n", why);
    fprintf(stderr,
            "usage: imsvc send --server HOST[:PORT] --from A --to B [--to C ...]\n"
            "                  [--tls required|opportunistic|off] [--trust verify|any]\n"
            "                  [--auth ntlm|plain|login|none] [--user DOMAIN\\user --password-file F]\n"
            "  --auth plain|login  send the user name and password (inside TLS only)\n"
            "                  [--helo NAME] [-v] FILE.eml\n"
            "  --repeat N  send the message N times over one connection (tests connection reuse)\n"
            "exit status: 0 every recipient accepted, 1 a permanent failure,\n"
            "             3 transient failures only (retry later), 2 bad usage\n");
    return SEND_EXIT_USAGE;
}

/* "host", "host:port", "[v6]" or "[v6]:port". */
static int parse_server(const char *arg, struct send_opts *o)
{
    const char *host = arg, *port = NULL;
    size_t hlen;
    if (arg[0] == '[') {
        const char *close = strchr(arg, ']');
        if (!close || (close[1] && close[1] != ':'))
            return -1;
        host = arg + 1;
        hlen = (size_t)(close - host);
        if (close[1] == ':')
            port = close + 2;
    } else {
        const char *colon = strchr(arg, ':');
        if (colon && strchr(colon + 1, ':'))
            return -1;    /* a bare IPv6 address needs brackets */
        hlen = colon ? (size_t)(colon - arg) : strlen(arg);
        if (colon)
            port = colon + 1;
    }
    if (hlen == 0 || hlen >= sizeof o->host)
        return -1;
    memcpy(o->host, host, hlen);
    o->host[hlen] = 0;
    if (!port)
        port = SEND_DEFAULT_PORT;
    char *end;
    unsigned long p = strtoul(port, &end, 10);
    if (!*port || *end || p == 0 || p > 65535)
        return -1;
    snprintf(o->port, sizeof o->port, "%lu", p);
    snprintf(o->peer, sizeof o->peer, strchr(o->host, ':') ? "[%s]:%s" : "%s:%s", o->host,
             o->port);
    return 0;
}

static int parse_args(int argc, char **argv, struct send_opts *o)
{
    memset(o, 0, sizeof *o);
    o->tls = SMTPC_TLS_OPPORTUNISTIC;
    o->trust = TLS_TRUST_VERIFY;
    o->auth = SMTPC_AUTH_NONE;
    o->repeat = 1;
    o->to = calloc((size_t)argc + 1, sizeof *o->to);
    if (!o->to)
        return usage("out of memory");
    int have_server = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return usage(NULL);
        if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            o->verbose = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (o->file)
                return usage("only one message file may be given");
            o->file = a;
            continue;
        }
        if (!v) {
            fprintf(stderr, "imsvc send: %s needs a value\n", a);
            return usage(NULL);
        }
        i++;
        if (strcmp(a, "--server") == 0) {
            if (parse_server(v, o) != 0)
                return usage("--server wants HOST, HOST:PORT or [IPv6]:PORT");
            have_server = 1;
        } else if (strcmp(a, "--from") == 0) {
            o->from = v;
        } else if (strcmp(a, "--to") == 0) {
            if (o->n_to >= SMTPC_MAX_RCPT)
                return usage("too many recipients");
            o->to[o->n_to++] = v;
        } else if (strcmp(a, "--tls") == 0) {
            if (strcmp(v, "required") == 0)
                o->tls = SMTPC_TLS_REQUIRED;
            else if (strcmp(v, "opportunistic") == 0)
                o->tls = SMTPC_TLS_OPPORTUNISTIC;
            else if (strcmp(v, "off") == 0)
                o->tls = SMTPC_TLS_OFF;
            else
                return usage("--tls wants required, opportunistic or off");
        } else if (strcmp(a, "--trust") == 0) {
            if (strcmp(v, "verify") == 0)
                o->trust = TLS_TRUST_VERIFY;
            else if (strcmp(v, "any") == 0)
                o->trust = TLS_TRUST_ANY;
            else
                return usage("--trust wants verify or any");
        } else if (strcmp(a, "--auth") == 0) {
            o->auth = SMTPC_AUTH_REQUIRED;
            if (_stricmp(v, "ntlm") == 0)
                o->mechs = SMTPC_MECH_NTLM;
            else if (_stricmp(v, "plain") == 0)
                o->mechs = SMTPC_MECH_PLAIN;
            else if (_stricmp(v, "login") == 0)
                o->mechs = SMTPC_MECH_LOGIN;
            else if (strcmp(v, "none") == 0)
                o->auth = SMTPC_AUTH_NONE;
            else
                return usage("--auth wants ntlm, plain, login or none");
        } else if (strcmp(a, "--user") == 0) {
            o->user = v;
        } else if (strcmp(a, "--password-file") == 0) {
            o->password_file = v;
        } else if (strcmp(a, "--helo") == 0) {
            o->helo = v;
        } else if (strcmp(a, "--repeat") == 0) {
            char *end;
            unsigned long n = strtoul(v, &end, 10);
            if (!*v || *end || n == 0 || n > SEND_REPEAT_MAX)
                return usage("--repeat wants a number from 1 to 100");
            o->repeat = (unsigned)n;
        } else {
            fprintf(stderr, "imsvc send: unknown option %s\n", a);
            return usage(NULL);
        }
    }
    if (!have_server)
        return usage("--server is required");
    if (!o->from)
        return usage("--from is required (\"\" for the null sender)");
    if (o->n_to == 0)
        return usage("at least one --to is required");
    if (!o->file)
        return usage("the message file is required");
    if (o->user && !o->password_file)
        return usage("--user needs --password-file");
    if (o->password_file && !o->user)
        return usage("--password-file needs --user");
    if (o->user && o->auth == SMTPC_AUTH_NONE)
        return usage("--user is used only with --auth ntlm, plain or login");
    if (o->auth != SMTPC_AUTH_NONE && (o->mechs & (SMTPC_MECH_PLAIN | SMTPC_MECH_LOGIN)) && !o->user)
        return usage("--auth plain and --auth login need --user and --password-file");
    if ((size_t)o->repeat * o->n_to > SEND_RESULTS_MAX)
        return usage("--repeat times the recipients may be at most 10000");
    if (o->helo) {
        /* the engine's own test of the name, before any connection */
        struct smtpc_config cfg = { .helo_name = o->helo };
        struct smtpc *s = smtpc_new(&cfg);
        if (!s)
            return usage("--helo wants a domain name or address literal");
        smtpc_free(s);
    }
    return 0;
}

/* The first line of the password file, as UTF-16. */
static int read_password(const char *path, wchar_t *out, size_t cap)
{
    wchar_t wpath[MAX_PATH];
    utf8_to_wide(path, wpath, ARRAYSIZE(wpath));
    FILE *f = _wfopen(wpath, L"rb");
    if (!f)
        return -1;
    char line[SEND_PASSWORD_MAX + 2];
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = 0;
    size_t len = strcspn(line, "\r\n");
    int rc = 0;
    if (len > SEND_PASSWORD_MAX)
        rc = -1;
    line[len] = 0;
    if (rc == 0 && MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, line, -1, out, (int)cap) <= 0)
        rc = -1;
    SecureZeroMemory(line, sizeof line);
    return rc;
}

/* DOMAIN\user (or user alone: the domain is left to the server). */
static int split_user(const char *user, wchar_t *domain, wchar_t *name_w, size_t cap)
{
    const char *bs = strchr(user, '\\');
    char dom[SEND_HOST_MAX] = "";
    const char *name = user;
    if (bs) {
        size_t dl = (size_t)(bs - user);
        if (dl >= sizeof dom)
            return -1;
        memcpy(dom, user, dl);
        dom[dl] = 0;
        name = bs + 1;
    }
    if (!*name || strlen(name) >= SEND_HOST_MAX)
        return -1;
    utf8_to_wide(dom, domain, cap);
    utf8_to_wide(name, name_w, cap);
    return 0;
}

static const char *outcome_name(enum smtpc_outcome o)
{
    switch (o) {
    case SMTPC_OK:        return "delivered";
    case SMTPC_TRANSIENT: return "transient failure";
    case SMTPC_PERMANENT: return "permanent failure";
    default:              return "not attempted";
    }
}

/* Print every recipient's result; return the exit status they make. */
static int print_results(const struct send_opts *o, const struct smtpc_result *r)
{
    int permanent = 0, transient = 0;
    for (size_t i = 0; i < o->n_to; i++) {
        if (r[i].outcome == SMTPC_OK) {
            printf("%s: delivered%s%s\n", o->to[i], r[i].reply.code ? ": " : "",
                   r[i].reply.code ? r[i].reply.text : "");
            continue;
        }
        if (r[i].outcome == SMTPC_PERMANENT)
            permanent++;
        else
            transient++;
        printf("%s: %s, status %s\n", o->to[i], outcome_name(r[i].outcome),
               r[i].status[0] ? r[i].status : "4.0.0");
        if (r[i].reply.code)
            printf("  reply: %s\n", r[i].reply.text);
        printf("  why: %s\n", r[i].why[0] ? r[i].why : "the session ended before this recipient");
    }
    if (permanent)
        return SEND_EXIT_PERMANENT;
    return transient ? SEND_EXIT_TRANSIENT : SEND_EXIT_OK;
}

/* The whole file, at most SEND_FILE_MAX octets. 0, or -1 with a message. */
static int read_message(const char *path, unsigned char **out, size_t *len)
{
    wchar_t wpath[MAX_PATH];
    utf8_to_wide(path, wpath, ARRAYSIZE(wpath));
    *out = NULL;
    *len = 0;
    FILE *f = _wfopen(wpath, L"rb");
    if (!f) {
        fprintf(stderr, "imsvc send: cannot read %s\n", path);
        return -1;
    }
    struct _stat64 st;
    if (_fstat64(_fileno(f), &st) == 0 && (unsigned long long)st.st_size > SEND_FILE_MAX) {
        fprintf(stderr, "imsvc send: %s is larger than 1 GiB (%llu octets); not sent\n", path,
                (unsigned long long)st.st_size);
        fclose(f);
        return -1;
    }
    size_t cap = 0, n = 0;
    unsigned char *buf = NULL;
    int rc = 0;
    for (;;) {
        if (cap - n < SEND_FILE_CHUNK) {
            size_t want = cap ? cap * 2 : SEND_FILE_CHUNK * 4;
            if (want > SEND_FILE_MAX + SEND_FILE_CHUNK)
                want = SEND_FILE_MAX + SEND_FILE_CHUNK;
            unsigned char *p = want > cap ? realloc(buf, want) : NULL;
            if (!p) {
                fprintf(stderr, "imsvc send: out of memory reading %s\n", path);
                rc = -1;
                break;
            }
            buf = p;
            cap = want;
        }
        size_t k = fread(buf + n, 1, SEND_FILE_CHUNK, f);
        n += k;
        if (n > SEND_FILE_MAX) {
            /* it grew since the size was read */
            fprintf(stderr, "imsvc send: %s is larger than 1 GiB; not sent\n", path);
            rc = -1;
            break;
        }
        if (k < SEND_FILE_CHUNK) {
            if (ferror(f)) {
                fprintf(stderr, "imsvc send: cannot read %s\n", path);
                rc = -1;
            }
            break;
        }
    }
    fclose(f);
    if (rc != 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

static int worse(int a, int b)
{
    if (a == SEND_EXIT_PERMANENT || b == SEND_EXIT_PERMANENT)
        return SEND_EXIT_PERMANENT;
    return a == SEND_EXIT_TRANSIENT || b == SEND_EXIT_TRANSIENT ? SEND_EXIT_TRANSIENT : SEND_EXIT_OK;
}

int send_cmd(int argc, char **argv)
{
    struct send_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0) {
        free(o.to);
        return rc;
    }
    unsigned char *content = NULL;
    size_t len = 0;
    wchar_t domain_w[SEND_HOST_MAX], user_w[SEND_HOST_MAX];
    wchar_t password_w[SEND_PASSWORD_MAX + 1];
    struct smtpc_result *results = calloc((size_t)o.repeat * o.n_to, sizeof *results);
    if (!results) {
        fprintf(stderr, "imsvc send: out of memory\n");
        free(o.to);
        return SEND_EXIT_TRANSIENT;
    }
    rc = SEND_EXIT_PERMANENT;
    if (read_message(o.file, &content, &len) != 0)
        goto out;
    struct smtpc_message m = { o.from, o.to, o.n_to, len, 0 };
    for (size_t i = 0; i < len && !m.eight_bit; i++)
        if (content[i] & 0x80)
            m.eight_bit = 1;
    if (o.user) {
        if (split_user(o.user, domain_w, user_w, ARRAYSIZE(user_w)) != 0) {
            rc = usage("--user wants DOMAIN\\user or user");
            goto out;
        }
        if (read_password(o.password_file, password_w, ARRAYSIZE(password_w)) != 0) {
            fprintf(stderr, "imsvc send: cannot read a password (one UTF-8 line of at most %u "
                            "octets) from %s\n", SEND_PASSWORD_MAX, o.password_file);
            goto out;
        }
    }

    /* The connection runs on the I/O engine, as the service's do: one
     * worker is enough for one connection. */
    DWORD err = io_engine_start(1);
    if (err != 0) {
        fprintf(stderr, "imsvc send: cannot start the I/O engine (error %lu)\n", err);
        rc = SEND_EXIT_TRANSIENT;
        goto out;
    }
    struct outbound_opts oo = {
        .host = o.host,
        .port = o.port,
        .helo = o.helo,
        .tls = o.tls,
        .trust = o.trust,
        .auth = o.auth,
        .mechs = o.mechs,
        .tls_missing = SMTPC_CLASS_DEFAULT,
        .auth_missing = SMTPC_CLASS_DEFAULT,
        .domain = o.user ? domain_w : NULL,
        .user = o.user ? user_w : NULL,
        .password = o.user ? password_w : NULL,
        .verbose = o.verbose,
        .who = L"imsvc send",
    };
    struct outbound *c = NULL;
    struct smtpc_result fail;
    unsigned sent = 0;
    if (outbound_open(&oo, &c, &fail) != 0) {
        for (size_t i = 0; i < o.n_to; i++)
            results[i] = fail;
        sent = 1;
    } else {
        /* Results are printed after QUIT, as the dialogue ends before them. */
        while (sent < o.repeat) {
            int closed = outbound_send(c, &m, content, len, results + (size_t)sent * o.n_to, NULL);
            sent++;
            if (closed)
                break;
        }
        outbound_close(c);
    }
    SecureZeroMemory(password_w, sizeof password_w);
    io_engine_stop();

    rc = SEND_EXIT_OK;
    for (unsigned k = 0; k < sent; k++) {
        if (o.repeat > 1)
            printf("message %u of %u:\n", k + 1, o.repeat);
        rc = worse(rc, print_results(&o, results + (size_t)k * o.n_to));
    }
    if (sent < o.repeat) {
        printf("the connection closed after %u of %u messages; the rest were not sent\n", sent,
               o.repeat);
        rc = worse(rc, SEND_EXIT_TRANSIENT);
    }

out:
    SecureZeroMemory(password_w, sizeof password_w);
    free(content);
    free(results);
    free(o.to);
    return rc;
}
