/* fuzz_imcea.c - IMCEA: encode/decode round trips and hostile decoding.
 *
 * Two checks per input: the input as a foreign address must encode and
 * decode back to itself exactly; the input as an encapsulated mailbox must
 * decode without harm, and what it decodes to must survive a round trip.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imcea.h"

/* LocalDomains, parsed on the first input and kept. */
static const struct domain_list *local_list(void)
{
    static struct domain_list l;
    static int parsed;
    if (!parsed && domains_parse(&l, "example.com;fab.example", NULL, 0) != 0)
        abort();
    parsed = 1;
    return &l;
}

static void round_trip(const char *type, const char *addr, size_t len)
{
    static char enc[16384], dec[8192];
    char t[IMCEA_TYPE_MAX + 1];
    size_t elen, dlen;
    enum imcea_status st = imcea_encode(type, addr, len, "example.com", enc, sizeof enc, &elen);
    if (st == IMCEA_BAD_ADDRESS && (len == 0 || memchr(addr, 0, len)))
        return;
    if (st != IMCEA_OK)
        abort();
    st = imcea_decode(enc, elen, local_list(), t, sizeof t, dec, sizeof dec, &dlen);
    if (st != IMCEA_OK || dlen != len || memcmp(dec, addr, len) != 0 || strcmp(t, type) != 0) {
        fprintf(stderr, "round trip failed (%d): %s\n", st, enc);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dec[8192];
    char type[IMCEA_TYPE_MAX + 1];
    size_t dlen;
    round_trip("X400", (const char *)data, size);

    enum imcea_status st = imcea_decode((const char *)data, size, local_list(), type, sizeof type, dec, sizeof dec, &dlen);
    if (st == IMCEA_OK) {
        if (strlen(dec) != dlen || !type[0])
            abort();
        round_trip(type, dec, dlen);
    } else if (dec[0] || !imcea_strerror(st)) {
        abort();
    }
    (void)imcea_looks_like((const char *)data, size);
    return 0;
}
