/* folder_bench.c - what creating a file costs in a folder that already holds
 * many, as the service creates them in Drop (one .eml per message) and as an
 * application does in Pickup.
 *
 * Not a test: it prints numbers. In a new folder it creates files named
 * like the service's (a queue ID and .eml, 5 KiB each, written and closed),
 * and prints the milliseconds per file over a batch of BENCH_BATCH files
 * created when the folder holds 0, 2,000 and 10,000 files. Under Wine a
 * create looks through the whole folder for a name that differs only in
 * case; on NTFS it does not. Run with tools/bench-folder.sh.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_BATCH 500u
#define BENCH_SIZE  5120u

static char payload[BENCH_SIZE];

/* Create files first..first+n-1 in dir; returns the seconds it took. */
static double create_files(const wchar_t *dir, unsigned first, unsigned n)
{
    LARGE_INTEGER f, t0, t1;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&t0);
    for (unsigned i = first; i < first + n; i++) {
        wchar_t path[MAX_PATH];
        int k = _snwprintf(path, MAX_PATH, L"%ls\\01DD8203%08X.%08X.eml", dir, i * 2654435761u, i);
        if (k < 0 || k >= MAX_PATH) {
            fprintf(stderr, "folder_bench: path too long\n");
            exit(1);
        }
        HANDLE h = CreateFileW(path, GENERIC_WRITE, 0, NULL, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, NULL);
        DWORD w;
        if (h == INVALID_HANDLE_VALUE || !WriteFile(h, payload, sizeof payload, &w, NULL) ||
            w != sizeof payload) {
            fprintf(stderr, "folder_bench: cannot write %ls (error %lu)\n", path, GetLastError());
            exit(1);
        }
        CloseHandle(h);
    }
    QueryPerformanceCounter(&t1);
    return (double)(t1.QuadPart - t0.QuadPart) / (double)f.QuadPart;
}

int wmain(int argc, wchar_t **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: folder_bench DIR   (DIR must not exist)\n");
        return 2;
    }
    const wchar_t *dir = argv[1];
    if (!CreateDirectoryW(dir, NULL)) {
        fprintf(stderr, "folder_bench: cannot create %ls (error %lu)\n", dir, GetLastError());
        return 1;
    }
    memset(payload, 'x', sizeof payload);
    static const unsigned at[] = { 0, 2000, 10000 };
    unsigned have = 0;
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        if (have < at[i]) {
            create_files(dir, have, at[i] - have);
            have = at[i];
        }
        double s = create_files(dir, have, BENCH_BATCH);
        have += BENCH_BATCH;
        printf("%6u files in the folder: %.2f ms per file created (%u files, %.3f s)\n", at[i],
               s * 1000.0 / BENCH_BATCH, BENCH_BATCH, s);
    }
    return 0;
}
