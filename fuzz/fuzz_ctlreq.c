/* fuzz_ctlreq.c - file names in the queue's ctl folder, as the service
 * reads them (core/ctlreq.h).
 *
 * The input is a file name (cut at its first NUL). Whatever it is, the
 * parser answers one kind and never writes past the ID buffer; a request
 * names, through ctlreq_name, exactly the file it was read from (so the
 * command and the service can never disagree on a name), its answer file
 * parses as an answer, and a FLUSH destination is one ctlreq_dest_valid
 * takes: letters, digits, '-', '.', '_' and brackets only, nothing that
 * could leave the folder.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctlreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[CTLREQ_NAME_MAX + 64];
    size_t n = size < sizeof name - 1 ? size : sizeof name - 1;
    memcpy(name, data, n);
    name[n] = 0;
    char id[CTLREQ_TARGET_MAX + 1];
    enum ctlreq_action a = CTLREQ_RETRY;
    enum ctlreq_kind k = ctlreq_parse(name, &a, id, sizeof id);
    if (strlen(id) > CTLREQ_TARGET_MAX)
        abort();
    if (k != CTLREQ_REQUEST)
        return 0;
    if ((unsigned)a > CTLREQ_FLUSH)
        abort();
    char again[CTLREQ_NAME_MAX], done[CTLREQ_NAME_MAX];
    if (ctlreq_name(a, id, again, sizeof again) < 0 || strcmp(again, name) != 0)
        abort();
    if (ctlreq_answer_name(a, id, done, sizeof done) < 0)
        abort();
    enum ctlreq_action b;
    char id2[CTLREQ_TARGET_MAX + 1];
    if (ctlreq_parse(done, &b, id2, sizeof id2) != CTLREQ_ANSWER)
        abort();
    if (a == CTLREQ_FLUSH && id[0]) {
        if (!ctlreq_dest_valid(id))
            abort();
        if (strpbrk(id, "\\/:*?\"<>|"))
            abort();
    }
    return 0;
}
