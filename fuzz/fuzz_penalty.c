/* fuzz_penalty.c - the AUTH throttle and the event limiter under any
 * sequence of keys, lengths and clock values: delays stay within their
 * bound, a first report of a key never claims suppressed events, and the
 * limiter never reports twice for one key inside its window.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "penalty.h"

static struct penalty_throttle thr;
static struct penalty_limiter lim;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    penalty_throttle_init(&thr, 1000, 5000, 900000);
    penalty_limiter_init(&lim, 60000);
    uint64_t now = 0;
    uint64_t last_report[4] = { 0 };
    int reported[4] = { 0 };
    while (size >= 3) {
        uint8_t op = data[0], k = data[1] & 3, step = data[2];
        data += 3;
        size -= 3;
        now += (uint64_t)step * 997u;
        /* keys of several lengths, beyond the table's key size too */
        unsigned char key[40];
        memset(key, k, sizeof key);
        size_t klen = 1 + (size_t)(op >> 3) % sizeof key;
        switch (op & 3) {
        case 0:
            if (penalty_fail(&thr, key, klen, now) > 5000)
                abort();
            break;
        case 1:
            penalty_success(&thr, key, klen);
            break;
        default: {
            unsigned long n = 0;
            /* one fixed length per key id, so the window check below holds */
            int r = penalty_report(&lim, key, 8, now, &n);
            if (r) {
                if (reported[k] && now - last_report[k] < 60000)
                    abort();
                if (!reported[k] && n != 0)
                    abort();
                reported[k] = 1;
                last_report[k] = now;
            }
            break;
        }
        }
    }
    return 0;
}
