/* protocol.c - one SMTP session's protocol log (see logs.h): the session's
 * lines paired into records by core/protolog, written as W3C lines.
 *
 * Runs on whatever thread drives the session (an I/O worker): it must only
 * format and hand the line to logs_append, never touch a file. It never
 * sees an AUTH response or message content, only their lengths.
 */
#include "logs.h"

#include <ws2tcpip.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protolog.h"

#define PROTOLOG_NAME_MAX 256u

struct protolog_session {
    struct plog p;
    const char *site;               /* "SMTP-IN" or "SMTP-OUT" */
    char c_ip[64], s_ip[64];
    char s_name[PROTOLOG_NAME_MAX];
    unsigned s_port;
};

struct protolog_session *protolog_inbound(const char *peer)
{
    if (!logs_enabled(LOG_PROTOCOL))
        return NULL;
    struct protolog_session *ps = calloc(1, sizeof *ps);
    if (!ps)
        return NULL;
    plog_init(&ps->p);
    ps->site = "SMTP-IN";
    snprintf(ps->c_ip, sizeof ps->c_ip, "%s", peer);
    logs_server(ps->s_name, sizeof ps->s_name, ps->s_ip, sizeof ps->s_ip, &ps->s_port);
    return ps;
}

struct protolog_session *protolog_outbound(const char *host, const char *port)
{
    if (!logs_enabled(LOG_PROTOCOL))
        return NULL;
    struct protolog_session *ps = calloc(1, sizeof *ps);
    if (!ps)
        return NULL;
    plog_init(&ps->p);
    ps->site = "SMTP-OUT";
    snprintf(ps->s_name, sizeof ps->s_name, "%s", host);
    ps->s_port = (unsigned)strtoul(port, NULL, 10);
    return ps;
}

void protolog_peer(struct protolog_session *ps, const struct sockaddr *sa, int len)
{
    if (!ps || !sa)
        return;
    if (getnameinfo(sa, (socklen_t)len, ps->s_ip, sizeof ps->s_ip, NULL, 0, NI_NUMERICHOST) != 0)
        ps->s_ip[0] = '\0';
}

static void write_record(struct protolog_session *ps, const struct plog_record *r,
                         const char *user)
{
    SYSTEMTIME t;
    GetSystemTime(&t);
    char date[16], time[16], line[PLOG_LINE_MAX];
    snprintf(date, sizeof date, "%04u-%02u-%02u", t.wYear, t.wMonth, t.wDay);
    snprintf(time, sizeof time, "%02u:%02u:%02u", t.wHour, t.wMinute, t.wSecond);
    struct plog_where w = { date, time, ps->c_ip, user, ps->site, ps->s_name, ps->s_ip,
                            ps->s_port };
    int n = plog_format(&w, r, line, sizeof line);
    if (n > 0)
        logs_append(LOG_PROTOCOL, line, (size_t)n);
}

void protolog_line(struct protolog_session *ps, enum protolog_dir d, const char *line,
                   size_t len, const char *user)
{
    if (!ps)
        return;
    ULONGLONG now = GetTickCount64();
    struct plog_record r;
    switch (d) {
    case PROTOLOG_COMMAND:
        plog_command(&ps->p, line, len, now);
        break;
    case PROTOLOG_SECRET:
        plog_secret(&ps->p, len);
        break;
    case PROTOLOG_CONTENT:
        plog_content(&ps->p, len);
        break;
    case PROTOLOG_REPLY:
        if (plog_reply(&ps->p, line, len, now, &r))
            write_record(ps, &r, user);
        break;
    }
}

void protolog_end(struct protolog_session *ps)
{
    free(ps);
}
