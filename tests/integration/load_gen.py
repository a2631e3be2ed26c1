#!/usr/bin/env python3
"""load_gen.py - SMTP load that survives a server being killed under it.

    load_gen.py --port P --sessions N --count M --size BYTES --log FILE
                [--to ADDR] [--from ADDR] [--host H] [--deadline SECONDS]
                [--until FILE] [--no-pipelining]

N threads, each holding one SMTP session at a time, send M messages in all
(with --until FILE, M and then new ones until FILE exists, so that the load
lasts as long as the caller needs it).
Each has a unique Message-ID, a body of BYTES octets, and then one more line,
"-- end of <message-id>", so a receiver can tell a whole copy from one cut
off in the middle. A message whose final dot gets a 250 reply is written to
FILE as one line, "<message-id>", flushed at once, so a reader sees every
acknowledged message even if this program is killed too.

A refused connection, a reset, a timeout, a 4xx reply or a 421 all mean the
same: close the connection, pause a moment, and try that message again on a
new connection, until the deadline. Each attempt carries a Message-ID of its
own (the attempt number is part of it): a copy that reached the server
without its 250 reaching us is then never confused with a copy the server
delivered twice. A 5xx reply to MAIL, RCPT, DATA or the final dot is
permanent: the message is counted as refused and not retried. When the
server offers PIPELINING, MAIL, RCPT and DATA go in one write (RFC 2920).

Stdlib only. Prints one summary line on stdout; exit 0 when every message was
acknowledged, 1 otherwise, 2 on a usage error.
"""
import argparse
import os
import queue
import random
import socket
import sys
import threading
import time


class Transient(Exception):
    """Anything after which the message is tried again on a new connection."""


class Permanent(Exception):
    """A 5xx reply: the message is not tried again."""


def parse_args(argv):
    p = argparse.ArgumentParser(description="SMTP load generator that retries through crashes")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sessions", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--size", type=int, required=True, help="body size in octets")
    p.add_argument("--log", required=True, help="file to append acknowledged Message-IDs to")
    p.add_argument("--to", default="user@remote.example")
    p.add_argument("--from", dest="sender", default="loadgen@client.example")
    p.add_argument("--helo", default="loadgen.client.example")
    p.add_argument("--deadline", type=float, default=600.0,
                   help="seconds after start when retrying stops")
    p.add_argument("--until", default=None,
                   help="after the --count messages, go on with new ones until this file exists")
    p.add_argument("--timeout", type=float, default=30.0, help="per-reply timeout, seconds")
    p.add_argument("--pause", type=float, default=0.5, help="pause before a retry, seconds")
    p.add_argument("--no-pipelining", dest="pipelining", action="store_false",
                   help="one command at a time even when the server offers PIPELINING")
    a = p.parse_args(argv)
    if a.sessions < 1 or a.count < 0 or a.size < 0:
        p.error("--sessions must be >= 1, --count and --size >= 0")
    return a


def make_body(size):
    """size octets of printable lines (each ending CRLF), none starting with a dot."""
    line = b"".join(bytes([0x41 + (i % 26)]) for i in range(76)) + b"\r\n"
    n = size // len(line)
    body = line * n
    rest = size - len(body)
    if rest >= 2:
        body += b"x" * (rest - 2) + b"\r\n"
    elif rest == 1:
        body += b"\n"
    return body


class Session:
    def __init__(self, args):
        self.args = args
        self.sock = None
        self.buf = b""
        self.pipelining = False

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = b""

    def reply(self):
        """Read one (possibly multi-line) reply; return (code, text)."""
        lines = []
        while True:
            while b"\n" not in self.buf:
                try:
                    chunk = self.sock.recv(65536)
                except OSError as e:
                    raise Transient("recv: %s" % e)
                if not chunk:
                    raise Transient("connection closed by the server")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            line = line.rstrip(b"\r")
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                break
        try:
            code = int(lines[-1][:3])
        except ValueError:
            raise Transient("malformed reply %r" % lines[-1][:80])
        return code, b"\n".join(lines).decode("latin-1")

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise Transient("send: %s" % e)

    def expect(self, what, ok):
        code, text = self.reply()
        if code == ok:
            return text
        if 500 <= code < 600:
            raise Permanent("%s: %s" % (what, text))
        raise Transient("%s: %s" % (what, text))

    def open(self):
        a = self.args
        try:
            self.sock = socket.create_connection((a.host, a.port), timeout=a.timeout)
        except OSError as e:
            self.sock = None
            raise Transient("connect: %s" % e)
        try:
            self.expect("greeting", 220)
            self.send(b"EHLO " + a.helo.encode() + b"\r\n")
            ehlo = self.expect("EHLO", 250)
            self.pipelining = a.pipelining and any(
                l[4:].strip().upper() == "PIPELINING" for l in ehlo.split("\n"))
        except Permanent as e:
            # A 5xx greeting or EHLO is about the connection, not the message.
            raise Transient(str(e))

    def transaction(self, msgid, body):
        a = self.args
        cmds = [("MAIL", b"MAIL FROM:<" + a.sender.encode() + b">\r\n", 250),
                ("RCPT", b"RCPT TO:<" + a.to.encode() + b">\r\n", 250),
                ("DATA", b"DATA\r\n", 354)]
        if self.pipelining:
            # RFC 2920: the three commands in one write, then their replies.
            self.send(b"".join(c[1] for c in cmds))
            replies = [self.reply() for _ in cmds]
            for (what, _, ok), (code, text) in zip(cmds, replies):
                if code == ok:
                    continue
                if replies[-1][0] == 354:
                    self.send(b".\r\n")  # end the empty transaction
                    self.reply()
                if 500 <= code < 600:
                    raise Permanent("%s: %s" % (what, text))
                raise Transient("%s: %s" % (what, text))
        else:
            for what, line, ok in cmds:
                self.send(line)
                self.expect(what, ok)
        head = ("From: Load Generator <%s>\r\nTo: <%s>\r\nSubject: load %s\r\n"
                "Date: %s\r\nMessage-ID: %s\r\n\r\n"
                % (a.sender, a.to, msgid, time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
                   msgid)).encode()
        # The last line names the message again: a copy cut off in the middle
        # can be told from a whole one.
        self.send(head + body + b"-- end of " + msgid.encode() + b"\r\n.\r\n")
        self.expect("end of data", 250)


class Run:
    def __init__(self, args):
        self.args = args
        self.body = make_body(args.size)
        self.todo = queue.Queue()
        for i in range(args.count):
            self.todo.put(i)
        self.lock = threading.Lock()
        self.log = open(args.log, "a", buffering=1)
        self.tag = "%d.%d" % (int(time.time()), os.getpid())
        self.deadline = time.monotonic() + args.deadline
        self.total = args.count   # messages begun, --until's included
        self.acked = 0
        self.refused = 0
        self.given_up = 0
        self.retries = 0
        self.errors = {}

    def note_error(self, why):
        key = why.split(":")[0]
        with self.lock:
            self.retries += 1
            self.errors[key] = self.errors.get(key, 0) + 1

    def more(self):
        """With --until: the index of a new message, or None once FILE exists
        (or the deadline has passed)."""
        u = self.args.until
        if u is None or os.path.exists(u) or time.monotonic() >= self.deadline:
            return None
        with self.lock:
            self.total += 1
            return self.total - 1

    def worker(self):
        s = Session(self.args)
        rnd = random.Random()
        while True:
            try:
                idx = self.todo.get_nowait()
            except queue.Empty:
                idx = self.more()
                if idx is None:
                    break
            attempt = 0
            while True:
                attempt += 1
                msgid = "<lg.%s.%d.%d@loadgen.test>" % (self.tag, idx, attempt)
                try:
                    if s.sock is None:
                        s.open()
                    s.transaction(msgid, self.body)
                except Transient as e:
                    s.close()
                    self.note_error(str(e))
                    if time.monotonic() >= self.deadline:
                        with self.lock:
                            self.given_up += 1
                        break
                    time.sleep(self.args.pause * (0.5 + rnd.random()))
                    continue
                except Permanent as e:
                    # The session is still in step: RSET and go on with it.
                    with self.lock:
                        self.refused += 1
                        if self.refused <= 5:
                            print("load_gen: refused: %s" % e, file=sys.stderr)
                    try:
                        s.send(b"RSET\r\n")
                        s.reply()
                    except Transient:
                        s.close()
                    break
                with self.lock:
                    self.log.write(msgid + "\n")
                    self.acked += 1
                break
        if s.sock is not None:
            try:
                s.send(b"QUIT\r\n")
                s.reply()
            except Transient:
                pass
            s.close()

    def run(self):
        t0 = time.monotonic()
        threads = [threading.Thread(target=self.worker, daemon=True)
                   for _ in range(min(self.args.sessions, max(self.args.count, 1)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.log.close()
        took = time.monotonic() - t0
        errs = ", ".join("%s %d" % kv for kv in sorted(self.errors.items())) or "none"
        print("load_gen: %d of %d acknowledged, %d refused (5xx), %d given up, "
              "%d retries (%s), %.1f s"
              % (self.acked, self.total, self.refused, self.given_up,
                 self.retries, errs, took))
        return 0 if self.acked == self.total else 1


def main(argv):
    args = parse_args(argv)
    return Run(args).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
