/* fuzz_receipt.c - the hop and size count of the receive module over any
 * content, cut anywhere: the count is the same however the content is cut
 * (the first octet of the input chooses the cuts), octets are counted
 * exactly, and hops never exceed the header's lines. Every answer for every
 * source and outcome stays a bounded, printable reply text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "receipt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned step = 1u + data[0] % 17u;
    data++;
    size--;
    struct receipt_count whole, cut;
    receipt_count_init(&whole);
    receipt_count_init(&cut);
    receipt_count_feed(&whole, data, size);
    for (size_t o = 0; o < size; o += step)
        receipt_count_feed(&cut, data + o, size - o < step ? size - o : step);
    if (whole.octets != size || cut.octets != size || whole.hops != cut.hops ||
        whole.body != cut.body)
        abort();
    size_t lines = 0;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    if (whole.hops > lines)
        abort();
    for (int src = RECEIPT_SMTP; src <= RECEIPT_NOTICE; src++) {
        (void)receipt_check((enum receipt_source)src, &whole, size / 2, size % 7);
        for (int o = RECEIPT_QUEUED; o <= RECEIPT_STORE_FAILED; o++) {
            struct receipt_answer a;
            char reason[64];
            size_t rl = size < sizeof reason - 1 ? size : sizeof reason - 1;
            memcpy(reason, data, rl);
            reason[rl] = 0;
            receipt_answer((enum receipt_source)src, (enum receipt_outcome)o, whole.octets, reason,
                           &a);
            size_t tl = strnlen(a.text, sizeof a.text);
            if (tl >= sizeof a.text)
                abort();
            for (size_t i = 0; i < tl; i++)
                if ((unsigned char)a.text[i] < 0x20 || (unsigned char)a.text[i] >= 0x7f)
                    abort();
        }
    }
    return 0;
}
