/* utf.c - see utf.h. */
#include "utf.h"

#include <windows.h>

void utf8_to_wide(const char *s, wchar_t *out, size_t cap)
{
    if (MultiByteToWideChar(CP_UTF8, 0, s, -1, out, (int)cap) <= 0)
        out[0] = 0;
    out[cap - 1] = 0;
}

void wide_to_utf8(const wchar_t *w, char *out, size_t cap)
{
    if (WideCharToMultiByte(CP_UTF8, 0, w, -1, out, (int)cap, NULL, NULL) <= 0)
        out[0] = 0;
    out[cap - 1] = 0;
}
