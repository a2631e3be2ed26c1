#!/usr/bin/env python3
"""libevt_shift.py - show where libevt's pyevt reads a record's data.

Builds one-record .evt files by hand (with two strings, one, none) whose
data is f3 03 15 00 0f 03 09 80 at DataOffset, and prints what pyevt returns
as the data. Run inside the root: python3 tests/integration/libevt_shift.py
With libevt 20200926 every line shows the data two bytes early
("00 00 f3 03 15 00 0f 03"), which is why compare_events.py shifts by two.
Exits 0 when libevt reads at DataOffset-2 (as compare_events.py assumes),
1 when it reads at DataOffset (then compare_events.py must stop shifting).
"""
import os
import struct
import sys
import tempfile

import pyevt

DATA = bytes.fromhex("f30315000f030980")


def u16z(s):
    return (s + "\0").encode("utf-16-le")


def one_record_file(path, strings):
    src, comp = u16z("IMSvc"), u16z("VM")
    text = b"".join(u16z(s) for s in strings)
    off = 0x38 + len(src) + len(comp)
    pad = (4 - off % 4) % 4
    str_off = off + pad
    data_off = str_off + len(text)
    end = data_off + len(DATA)
    pad2 = (4 - (end + 4) % 4) % 4
    length = end + pad2 + 4
    rec = struct.pack("<IIIIIIHHHHIIIIII", length, 0x654C664C, 1, 1700000000, 1700000000,
                      0xC0001023, 1, len(strings), 5, 0, 0, str_off, 0, str_off,
                      len(DATA), data_off)
    rec += src + comp + b"\0" * pad + text + DATA + b"\0" * pad2 + struct.pack("<I", length)
    start, eof_at = 0x30, 0x30 + len(rec)
    hdr = struct.pack("<12I", 0x30, 0x654C664C, 1, 1, start, eof_at, 2, 1, 0x10000, 0, 0, 0x30)
    eof = struct.pack("<10I", 0x28, 0x11111111, 0x22222222, 0x33333333, 0x44444444,
                      start, eof_at, 2, 1, 0x28)
    with open(path, "wb") as f:
        f.write(hdr + rec + eof)


def main():
    shifted = True
    with tempfile.TemporaryDirectory() as d:
        for strings in (["hello world", "second"], ["one"], []):
            path = os.path.join(d, "t.evt")
            one_record_file(path, strings)
            f = pyevt.file()
            f.open(path)
            got = bytes(f.get_record(0).data)
            f.close()
            print(f"{len(strings)} strings: pyevt data {got.hex(' ')}")
            shifted &= got[2:] == DATA[:-2]
    return 0 if shifted else 1


if __name__ == "__main__":
    sys.exit(main())
