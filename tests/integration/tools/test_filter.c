/* test_filter.c - a content filter for test_ops.sh, built for Windows by the
 * test itself. It reads the message (argv[1]) and its envelope (argv[2])
 * and answers by the message's "X-Test-Filter:" header: reject (exit 1 with
 * a reason), hold (exit 2), crash (exit 7), anything else or none: accept.
 * It also checks that the envelope file it was given is an imsvc envelope,
 * and fails (exit 9) if not, so the test sees a wrong path at once. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 3)
        return 8;
    FILE *e = fopen(argv[2], "rb");
    char line[1024];
    if (!e || !fgets(line, sizeof line, e) || strncmp(line, "imsvc-envelope 1", 16) != 0)
        return 9;
    fclose(e);
    FILE *f = fopen(argv[1], "rb");
    if (!f)
        return 9;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '\r' || line[0] == '\n')
            break;   /* end of the header */
        if (strncmp(line, "X-Test-Filter: ", 15) != 0)
            continue;
        if (strncmp(line + 15, "reject", 6) == 0) {
            printf("message refused by the test filter policy\n");
            rc = 1;
        } else if (strncmp(line + 15, "hold", 4) == 0) {
            printf("held for review\n");
            rc = 2;
        } else if (strncmp(line + 15, "crash", 5) == 0) {
            rc = 7;
        }
    }
    fclose(f);
    return rc;
}
