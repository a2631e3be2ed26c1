/* fuzz_protolog.c - the protocol log's pairing and its lines.
 *
 * Any sequence of commands, AUTH responses, content and replies: every
 * record stays within its bounds, an AUTH or XAUTH record never carries
 * more than its mechanism, and every formatted line is one line of the
 * header's number of fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protolog.h"

static struct plog p;

static void check(const struct plog_record *r)
{
    static char line[PLOG_LINE_MAX];
    if (strlen(r->verb) > PLOG_VERB_MAX || strlen(r->args) > PLOG_ARGS_MAX)
        abort();
    if ((!strcmp(r->verb, "AUTH") || !strcmp(r->verb, "XAUTH")) && strchr(r->args, ' '))
        abort();
    struct plog_where w = { "2026-12-02", "06:31:02", "127.0.0.1", r->args, "SMTP-IN",
                            r->verb, "::1", 25 };
    int n = plog_format(&w, r, line, sizeof line);
    if (n < 0)
        abort();
    int spaces = 0;
    for (int i = 0; i < n - 2; i++) {
        if (line[i] == '\r' || line[i] == '\n')
            abort();
        spaces += line[i] == ' ';
    }
    if (spaces != 13)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    plog_init(&p);
    uint64_t now = 0;
    while (size >= 2) {
        uint8_t op = data[0], len = data[1];
        data += 2;
        size -= 2;
        if (len > size)
            len = (uint8_t)size;
        struct plog_record r;
        now += op;
        switch (op & 3) {
        case 0:
            plog_command(&p, (const char *)data, len, now);
            break;
        case 1:
            if (plog_reply(&p, (const char *)data, len, now, &r))
                check(&r);
            break;
        case 2:
            plog_secret(&p, len);
            break;
        default:
            plog_content(&p, len);
            break;
        }
        data += len;
        size -= len;
    }
    return 0;
}
