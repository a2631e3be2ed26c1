/* hold_file.c - holds a file open, as a backup tool or a virus scanner
 * would, for test_recovery.sh, which builds it for Windows itself.
 *
 *   hold_file FILE none|delete FLAG
 *
 * Opens FILE for reading with share mode 0 (none) or FILE_SHARE_DELETE
 * (delete: nobody else may read or write it, but a delete succeeds and takes
 * effect once this handle closes), prints "held" and waits until the file
 * FLAG exists (or 600 s pass), then closes it and prints "released". Exit 0;
 * 1, with the Win32 error printed, when FILE cannot be opened; 2 on bad
 * arguments. It never writes to FILE. */
#include <windows.h>
#include <stdio.h>
#include <string.h>

#define HOLD_MAX_MS (600u * 1000u)
#define HOLD_POLL_MS 100u

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[2], "none") != 0 && strcmp(argv[2], "delete") != 0)) {
        fprintf(stderr, "usage: hold_file FILE none|delete FLAG\n");
        return 2;
    }
    DWORD share = strcmp(argv[2], "delete") == 0 ? FILE_SHARE_DELETE : 0;
    HANDLE h = CreateFileA(argv[1], GENERIC_READ, share, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        printf("cannot open %s: error %lu\n", argv[1], GetLastError());
        return 1;
    }
    printf("held\n");
    fflush(stdout);
    for (DWORD waited = 0; waited < HOLD_MAX_MS; waited += HOLD_POLL_MS) {
        if (GetFileAttributesA(argv[3]) != INVALID_FILE_ATTRIBUTES)
            break;
        Sleep(HOLD_POLL_MS);
    }
    CloseHandle(h);
    printf("released\n");
    fflush(stdout);
    return 0;
}
