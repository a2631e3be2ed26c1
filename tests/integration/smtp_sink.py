#!/usr/bin/env python3
"""smtp_sink.py - an SMTP server that stores what it is given, for tests.

    smtp_sink.py --port P --dir D [--no-8bitmime] [--rule REGEX=CODE TEXT ...]
                 [--pidfile F] [--host H] [--name N] [--trace]

Listens on 127.0.0.1:P (stdlib only, asyncio: any number of concurrent
sessions). EHLO offers PIPELINING, SIZE, ENHANCEDSTATUSCODES and, unless
--no-8bitmime, 8BITMIME; HELO, MAIL, RCPT, DATA, RSET, NOOP and QUIT are
understood, anything else gets 502.

--rule REGEX=CODE TEXT (repeatable, first match wins) answers a RCPT whose
address (without the angle brackets) matches REGEX in full, ignoring case,
with "CODE TEXT" instead of 250; e.g. 'defer@.*=451 4.2.0 try later' or
'reject@.*=550 5.1.1 no such user'. A 2xx code accepts the recipient.

What it writes into D:
  rcpt.log    one line per RCPT attempt, "<address> <code>", appended as it
              happens (address without brackets; "<>" stays "<>"), so tests
              can count attempts
  sessions.log  one line per session as it opens, "<peer address> <port>",
              and one per MAIL, "MAIL <address> <code>", so tests can count
              connections and attempts that ended before RCPT
  N.env       for each accepted message: "MAIL FROM:<addr> [params]" then one
              "RCPT TO:<addr>" line per accepted recipient
  N.eml       the message exactly as it came between DATA and the final dot,
              dot-stuffing undone, line ends untouched (CRLF on the wire)
N counts from 1. Each file is written under a temporary name and renamed into
place, .env before .eml: when N.eml exists, both are complete.

  trace.log   with --trace: every command line in ("N< line") and reply out
              ("N> line"), N the session's number; message data is not logged

A MAIL with BODY=8BITMIME when 8BITMIME was not offered is refused with
555 5.5.4 (a client must not send it then). The process writes its PID to
--pidfile once it listens (so a test can wait for that file), and removes it
on SIGTERM or SIGINT.
"""
import argparse
import asyncio
import os
import re
import signal
import sys

MAX_SIZE = 52428800
LINE_LIMIT = 4 * 1024 * 1024


class Sink:
    def __init__(self, args):
        self.dir = args.dir
        self.eightbit = not args.no_8bitmime
        self.name = args.name
        self.trace = args.trace
        self.sessions = 0
        self.rules = []
        for r in args.rule or []:
            m = re.match(r"^(.*)=([2-5][0-9][0-9])(?:[ -](.*))?$", r, re.S)
            if not m:
                raise SystemExit(f"smtp_sink: bad --rule {r!r}: want REGEX=CODE TEXT")
            self.rules.append((re.compile(m.group(1), re.I | re.S), m.group(2), m.group(3) or ""))
        self.count = 0
        os.makedirs(self.dir, exist_ok=True)
        self.rcpt_log = os.path.join(self.dir, "rcpt.log")
        self.session_log = os.path.join(self.dir, "sessions.log")
        self.trace_log = os.path.join(self.dir, "trace.log")
        # Continue numbering after files an earlier sink left in D.
        for f in os.listdir(self.dir):
            m = re.fullmatch(r"([0-9]+)\.(eml|env)", f)
            if m:
                self.count = max(self.count, int(m.group(1)))

    def log_rcpt(self, addr, code):
        self.append(self.rcpt_log, f"{addr} {code}\n")

    def append(self, path, text):
        line = text.encode("utf-8", "surrogateescape")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def write_atomic(self, name, data):
        path = os.path.join(self.dir, name)
        tmp = os.path.join(self.dir, f".tmp.{os.getpid()}.{name}")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)

    def store(self, mail_from, mail_params, rcpts, data):
        self.count += 1
        n = self.count
        env = f"MAIL FROM:<{mail_from}>" + (f" {mail_params}" if mail_params else "") + "\n"
        env += "".join(f"RCPT TO:<{r}>\n" for r in rcpts)
        self.write_atomic(f"{n}.env", env.encode("utf-8", "surrogateescape"))
        self.write_atomic(f"{n}.eml", data)
        return n

    def rule_for(self, addr):
        for rx, code, text in self.rules:
            if rx.fullmatch(addr):
                return code, text
        return None

    def ehlo_lines(self):
        ext = ["PIPELINING", f"SIZE {MAX_SIZE}", "ENHANCEDSTATUSCODES"]
        if self.eightbit:
            ext.append("8BITMIME")
        return ext


def parse_path(arg, verb):
    """'FROM:<a@b> X=Y' -> ('a@b', 'X=Y'), or None when malformed."""
    m = re.match(verb + r":\s*<([^<>]*)>\s*(.*)$", arg, re.I | re.S)
    if not m:
        return None
    return m.group(1), m.group(2).strip()


async def session(sink, reader, writer):
    out = []
    sink.sessions += 1
    sno = sink.sessions

    def trace(direction, text):
        if sink.trace:
            sink.append(sink.trace_log, f"{sno}{direction} {text}\n")

    def reply(text):
        trace(">", text)
        out.append(text.encode("utf-8", "replace") + b"\r\n")

    async def flush():
        if out:
            writer.write(b"".join(out))
            out.clear()
            await writer.drain()

    state = {"helo": False}
    mail_from = None
    mail_params = ""
    rcpts = []

    def reset():
        nonlocal mail_from, mail_params, rcpts
        mail_from, mail_params, rcpts = None, "", []

    try:
        peer = writer.get_extra_info("peername") or ("?", 0)
        sink.append(sink.session_log, f"{peer[0]} {peer[1]}\n")
        reply(f"220 {sink.name} ESMTP smtp_sink ready")
        await flush()
        while True:
            try:
                raw = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError:
                trace("<", "(connection closed)")
                break
            except asyncio.LimitOverrunError:
                reply("500 5.5.2 line too long")
                break
            line = raw.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
            trace("<", line)
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                reset()
                state["helo"] = True
                ext = sink.ehlo_lines()
                lines = [f"{sink.name} hello {arg}"] + ext
                for i, l in enumerate(lines):
                    reply(("250 " if i == len(lines) - 1 else "250-") + l)
            elif verb == "HELO":
                reset()
                state["helo"] = True
                reply(f"250 {sink.name} hello {arg}")
            elif verb == "MAIL":
                p = parse_path(arg, "FROM")
                if not state["helo"]:
                    reply("503 5.5.1 EHLO or HELO first")
                elif mail_from is not None:
                    reply("503 5.5.1 nested MAIL command")
                elif p is None:
                    reply("501 5.5.4 syntax: MAIL FROM:<address>")
                else:
                    params = p[1].upper().split()
                    size = [x for x in params if x.startswith("SIZE=")]
                    if not sink.eightbit and "BODY=8BITMIME" in params:
                        r = "555 5.5.4 BODY=8BITMIME not offered"
                    elif size and size[0][5:].isdigit() and int(size[0][5:]) > MAX_SIZE:
                        r = "552 5.3.4 message too big"
                    else:
                        mail_from, mail_params = p
                        r = "250 2.1.0 sender ok"
                    sink.append(sink.session_log, f"MAIL {p[0] or '<>'} {r[:3]}\n")
                    reply(r)
            elif verb == "RCPT":
                p = parse_path(arg, "TO")
                if mail_from is None:
                    reply("503 5.5.1 MAIL first")
                elif p is None:
                    reply("501 5.5.4 syntax: RCPT TO:<address>")
                else:
                    addr = p[0]
                    r = sink.rule_for(addr)
                    code, text = r if r else ("250", "2.1.5 recipient ok")
                    sink.log_rcpt(addr if addr else "<>", code)
                    if code.startswith("2"):
                        rcpts.append(addr)
                    reply(f"{code} {text}".rstrip())
            elif verb == "DATA" and mail_from is None:
                reply("503 5.5.1 MAIL first")
            elif verb == "DATA" and not rcpts:
                reply("554 5.5.1 no valid recipients")
            elif verb == "DATA":
                reply("354 end data with <CR><LF>.<CR><LF>")
                await flush()
                chunks = []
                ended = False
                while True:
                    try:
                        l = await reader.readuntil(b"\n")
                    except asyncio.IncompleteReadError:
                        break
                    if l == b".\r\n":
                        ended = True
                        break
                    if l.startswith(b"."):
                        l = l[1:]
                    chunks.append(l)
                if not ended:
                    break
                n = sink.store(mail_from, mail_params, rcpts, b"".join(chunks))
                reply(f"250 2.0.0 queued as {n}")
                reset()
            elif verb == "RSET":
                reset()
                reply("250 2.0.0 ok")
            elif verb == "NOOP":
                reply("250 2.0.0 ok")
            elif verb == "QUIT":
                reply("221 2.0.0 bye")
                await flush()
                break
            else:
                reply("502 5.5.2 command not implemented")
            await flush()
        await flush()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def main_async(args):
    sink = Sink(args)
    server = await asyncio.start_server(
        lambda r, w: session(sink, r, w), args.host, args.port,
        limit=LINE_LIMIT, reuse_address=True, backlog=128)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    if args.pidfile:
        tmp = args.pidfile + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(tmp, args.pidfile)
    try:
        async with server:
            await stop.wait()
    finally:
        if args.pidfile:
            try:
                os.unlink(args.pidfile)
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser(description="SMTP sink for tests")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--name", default="sink.test")
    ap.add_argument("--no-8bitmime", action="store_true")
    ap.add_argument("--rule", action="append", metavar="REGEX=CODE TEXT")
    ap.add_argument("--pidfile")
    ap.add_argument("--trace", action="store_true", help="log the dialogue to D/trace.log")
    args = ap.parse_args()
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
