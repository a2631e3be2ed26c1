/* fuzz_dsn.c - DSN composition with hostile remote text: the structure holds.
 *
 * The input is cut at NUL octets into: status, remote host, reply, our
 * sentence, the original message; bit 1 of the first byte asks for the
 * whole original (NdrContent=full), bit 2 says RET=HDRS. Whatever they
 * hold, the notice must be composed, every line must end in CRLF and be at
 * most 998 octets, the boundary delimiter must start exactly four lines
 * (three parts and the close), and nothing outside the original may be
 * 8-bit. With headers only, the third part holds nothing but header fields
 * (a name and ':', or a continuation), at most DSN_HEADERS_MAX octets of
 * them before folding: no content of the original ever goes back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"

static const uint8_t *piece(const uint8_t **p, const uint8_t *end, size_t *len)
{
    const uint8_t *s = *p;
    const uint8_t *z = memchr(s, 0, (size_t)(end - s));
    *len = (size_t)((z ? z : end) - s);
    *p = z ? z + 1 : end;
    return s;
}

static void fill(char *dst, size_t cap, const uint8_t *s, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char buf[64 * 1024];
    const uint8_t *p = data, *end = data + size;
    struct envelope e;
    struct addr_path rp;
    struct addr_error ae;
    size_t len, n;
    const uint8_t *s;

    env_init(&e);
    strcpy(e.id, "F1");
    if (addr_parse_path("<s@example.org>", 15, ADDR_MAIL, &e.from, &ae) != 0 ||
        addr_parse_path("<r@example.net>", 15, ADDR_RCPT, &rp, &ae) != 0 ||
        env_add_rcpt(&e, &rp, NULL) != 0)
        abort();
    struct env_rcpt *r = &e.rcpt[0];
    s = piece(&p, end, &n);
    fill(r->status, sizeof r->status, s, n);
    s = piece(&p, end, &n);
    fill(r->remote, sizeof r->remote, s, n);
    s = piece(&p, end, &n);
    fill(r->reply, sizeof r->reply, s, n);
    s = piece(&p, end, &n);
    fill(r->why, sizeof r->why, s, n);
    size_t hlen = (size_t)(end - p);

    size_t which[] = { 0 };
    struct dsn_request q = {
        .action = (size && (data[0] & 1)) ? DSN_DELAYED : DSN_FAILED,
        .env = &e, .which = which, .n_which = 1,
        .host = "gw.example.org", .date = "Mon, 23 Nov 2026 14:00:00 +0000",
        .arrival_date = "Mon, 23 Nov 2026 13:00:00 +0000", .message_id = "<d@gw.example.org>",
        .original = (const char *)p, .original_len = hlen,
        .content = (size && (data[0] & 2)) ? DSN_CONTENT_FULL : DSN_CONTENT_HEADERS,
    };
    if (size && (data[0] & 4))
        e.ret = ADDR_RET_HDRS;
    int full = q.content == DSN_CONTENT_FULL && e.ret != ADDR_RET_HDRS;
    if (dsn_compose(&q, buf, sizeof buf, &len) != DSN_OK)
        abort();

    const char *bnd = strstr(buf, "boundary=\"");
    if (!bnd)
        abort();
    bnd += 10;
    size_t blen = (size_t)(strchr(bnd, '"') - bnd);
    char marker[128];
    if (blen > 64)
        abort();
    memcpy(marker, "\r\n--", 4);
    memcpy(marker + 4, bnd, blen);
    strcpy(marker + 4 + blen, full ? "\r\nContent-Type: message/rfc822\r\n"
                                   : "\r\nContent-Type: text/rfc822-headers\r\n");
    const char *hdrpart = strstr(buf, marker);
    if (!hdrpart)
        abort();
    if (!full) {
        /* Header fields only, up to the empty line before the delimiter.
         * Our folds and CRLF line ends add a little: at most a third more
         * than the original octets. */
        char delim[80];
        memcpy(delim, marker, 4 + blen);
        delim[4 + blen] = '\0';
        const char *h = strstr(hdrpart + 2, "\r\n\r\n");
        const char *end = h ? strstr(h + 2, delim) : NULL;
        size_t emitted = 0;
        int in_field = 0;
        if (!end)
            abort();
        for (h += 4; h < end;) {
            const char *e = strstr(h, "\r\n");
            if (e == h)
                abort();                        /* an empty line: what follows is content */
            if (*h == ' ' || *h == '\t') {
                if (!in_field)
                    abort();
            } else {
                const char *c = h;
                while (c < e && *c != ':' && (unsigned char)*c >= 33 && (unsigned char)*c <= 126)
                    c++;
                if (c == h || c == e || *c != ':')
                    abort();
                in_field = 1;
            }
            emitted += (size_t)(e - h) + 2;
            h = e + 2;
        }
        if (h != end)
            abort();
        if (emitted > DSN_HEADERS_MAX / 3 * 4 + 4)
            abort();
    }
    unsigned delims = 0;
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (col == 0 && i + 2 + blen <= len && buf[i] == '-' && buf[i + 1] == '-' &&
            memcmp(buf + i + 2, bnd, blen) == 0)
            delims++;
        if (c >= 0x80 && buf + i < hdrpart)
            abort();
        if (c == '\r') {
            if (i + 1 >= len || buf[i + 1] != '\n')
                abort();
            i++;
            col = 0;
            continue;
        }
        if (c == '\n' || ++col > 998)
            abort();
    }
    if (col != 0 || delims != 4)
        abort();
    env_free(&e);
    return 0;
}
