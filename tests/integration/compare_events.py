#!/usr/bin/env python3
"""compare_events.py EVTEXPORT_OUT IMSVC_EVENTS_OUT JOURNAL

Checks that libevt, reading the journal on its own, sees the same records
that `imsvc events` prints: the same number of records, and for each, in
order, the same event ID (low 16 bits), source, every insertion string (each
must appear in imsvc's formatted description), and the same data bytes.
evtexport prints no data, so the bytes come from libevt's Python binding
(pyevt) reading the same file. Exits 1 with the first difference.

libevt 20200926 (Debian 13) returns a record's data starting two bytes
before the record's DataOffset: with or without strings, on any record, as a
hand-built record shows (tests/integration/libevt_shift.py). So its bytes
are compared shifted by two: libevt's data[2:] must equal the first
DataLength-2 bytes imsvc shows, and libevt's first two bytes must be the
zeros that precede the data (the last string's terminator or padding).
"""
import re
import sys

import pyevt


def parse_evtexport(text):
    records, cur = [], None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep:
            continue
        if key == "Event number":
            cur = {"strings": []}
            records.append(cur)
        elif cur is None:
            continue
        elif key == "Event identifier":
            cur["id"] = int(value.split()[0], 16) & 0xFFFF
        elif key == "Source name":
            cur["source"] = value
        elif key == "Event category":
            cur["category"] = int(value)
        elif key.startswith("String"):
            # "String: 1			: text" -- the text follows the second colon.
            cur["strings"].append(line.split(":", 2)[2].strip())
    return records


def parse_imsvc(text):
    records, cur, mode = [], None, None
    for line in text.splitlines():
        if line.startswith("Date:"):
            cur = {"desc": [], "data": bytearray()}
            records.append(cur)
            mode = None
            continue
        if cur is None:
            continue
        m = re.match(r"^(\w[\w ()]*):\s*(.*)$", line)
        if line.startswith("Event ID:"):
            cur["id"] = int(m.group(2))
        elif line.startswith("Source:"):
            cur["source"] = m.group(2)
        elif line.startswith("Description:"):
            mode = "desc"
        elif line.startswith("Data (Bytes):"):
            mode = "bytes"
        elif line.startswith("Data (Words):") or line.startswith("Data:"):
            mode = None
        elif mode == "desc":
            cur["desc"].append(line)
        elif mode == "bytes" and re.match(r"^[0-9a-f]{4}:", line):
            cur["data"] += bytes(int(b, 16) for b in line[5:].split())
    return records


def fail(msg):
    print("compare_events: " + msg)
    sys.exit(1)


def main():
    exported = parse_evtexport(open(sys.argv[1], encoding="utf-8").read())
    shown = parse_imsvc(open(sys.argv[2], encoding="utf-8").read())
    evt = pyevt.file()
    evt.open(sys.argv[3])
    # Each record's data is read at once: libevt keeps a small cache of
    # record values, and a record object held while many others are read
    # loses its values ("invalid record values") past about 16 records.
    raw = [bytes(evt.get_record(i).data or b"") for i in range(evt.number_of_records)]
    if not (len(exported) == len(shown) == len(raw)) or not shown:
        fail(f"record counts differ or are zero: evtexport {len(exported)}, "
             f"imsvc {len(shown)}, pyevt {len(raw)}")
    for n, (e, s, r) in enumerate(zip(exported, shown, raw), 1):
        if e.get("id") != s.get("id"):
            fail(f"record {n}: event ID {e.get('id')} (evtexport) vs {s.get('id')} (imsvc)")
        if e.get("source") != s.get("source"):
            fail(f"record {n}: source {e.get('source')!r} vs {s.get('source')!r}")
        desc = " ".join(s["desc"])
        for st in e["strings"]:
            if st not in desc:
                fail(f"record {n}: string {st!r} is not in imsvc's description {desc!r}")
        data, mine = r, bytes(s["data"])
        if len(data) != 8 or len(mine) != 8:
            fail(f"record {n}: data is {len(data)} (libevt) / {len(mine)} (imsvc) bytes, "
                 "not location + status")
        if data[2:] != mine[:-2] or data[:2] != b"\0\0":
            fail(f"record {n}: data {data.hex(' ')} (libevt, from DataOffset-2) vs "
                 f"{mine.hex(' ')} (imsvc)")
    print(f"compare_events: {len(shown)} records agree (ID, source, strings, data)")


if __name__ == "__main__":
    main()
