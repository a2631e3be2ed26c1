/* fuzz_ntlmmsg.c - libFuzzer harness for the NTLM message reader.
 *
 * Any bytes as an NTLM message, with the first four bytes also used as the
 * default flags: every call ends with a status, never reads outside the
 * input, and what it accepts is consistent: fields inside the message,
 * names that are NUL-terminated UTF-8 without control characters, and the
 * joined "DOMAIN\user" equal to its parts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ntlmmsg.h"

static void check_name(const char *s)
{
    size_t n = strlen(s);
    if (n >= NTLMMSG_NAME_UTF8_MAX)
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t defaults = 0;
    if (size >= 4)
        defaults = (uint32_t)data[0] | (uint32_t)data[1] << 8 |
                   (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;

    /* A copy of exactly size bytes, so ASan sees any read past the end. */
    unsigned char *msg = malloc(size ? size : 1);
    if (!msg)
        return 0;
    if (size)
        memcpy(msg, data, size);

    uint32_t flags;
    int t = ntlmmsg_type(msg, size);
    int rf = ntlmmsg_flags(msg, size, &flags);
    if (rf == NTLMMSG_OK && t < 0)
        abort();
    (void)ntlmmsg_key_bits(flags);

    struct ntlmmsg_auth a;
    if (ntlmmsg_parse_auth(msg, size, defaults, &a) == NTLMMSG_OK) {
        if (t != NTLMMSG_AUTHENTICATE)
            abort();
        const struct ntlmmsg_field *f[] = { &a.lm, &a.nt, &a.domain, &a.user, &a.workstation,
                                            &a.session_key };
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            if ((uint64_t)f[i]->offset + f[i]->len > size)
                abort();
        char dom[NTLMMSG_NAME_UTF8_MAX], user[NTLMMSG_NAME_UTF8_MAX], ws[NTLMMSG_NAME_UTF8_MAX];
        char both[2 * NTLMMSG_NAME_UTF8_MAX];
        int rd = ntlmmsg_name_utf8(msg, size, &a, &a.domain, dom, sizeof dom);
        int ru = ntlmmsg_name_utf8(msg, size, &a, &a.user, user, sizeof user);
        if (ntlmmsg_name_utf8(msg, size, &a, &a.workstation, ws, sizeof ws) == NTLMMSG_OK)
            check_name(ws);
        int rb = ntlmmsg_auth_user(msg, size, defaults, both, sizeof both);
        if (rb == NTLMMSG_OK) {
            if (rd != NTLMMSG_OK || ru != NTLMMSG_OK || user[0] == '\0')
                abort();
            check_name(dom);
            check_name(user);
            char expect[2 * NTLMMSG_NAME_UTF8_MAX];
            size_t dl = strlen(dom), ul = strlen(user), k = 0;
            if (dl) {
                memcpy(expect, dom, dl);
                expect[dl] = '\\';
                k = dl + 1;
            }
            memcpy(expect + k, user, ul + 1);
            if (strcmp(expect, both) != 0)
                abort();
        }
    }
    free(msg);
    return 0;
}
