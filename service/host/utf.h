/* utf.h - bounded conversions between UTF-8 (the core's text) and UTF-16
 * (Windows'). The result is always NUL-terminated and cut to fit; text that
 * cannot be converted becomes "". */
#ifndef IMSVC_UTF_H
#define IMSVC_UTF_H

#include <stddef.h>
#include <wchar.h>

void utf8_to_wide(const char *s, wchar_t *out, size_t cap);
void wide_to_utf8(const wchar_t *w, char *out, size_t cap);

#endif
