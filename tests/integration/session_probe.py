#!/usr/bin/env python3
"""session_probe.py - many SMTP sessions at once, and sessions that misbehave.

    session_probe.py PORT idle N [--addrs K] [--message] [--hold]
        N connections spread over K source addresses (127.0.2.1 onwards, so
        that the per-address limit does not apply); waits for every greeting
        and prints "connected C", "greeted G", "refused R" (421),
        "refused_line LINE" (the first), "silent S" (nothing by the
        deadline), "greet_s T" (first connect to last greeting); with
        --message, then times a whole message from 127.0.0.1 while they are
        open ("message_s T", "message_reply LINE"); with --hold, prints
        "holding" and keeps every connection open until killed.
    session_probe.py PORT perip ADDR N
        N connections from ADDR, one after another, each waiting for its
        greeting: prints "conn I CODE LINE" (CODE: 220, 421 or none),
        "eof_after_421 yes|no" for a refused one; then closes the first
        (without QUIT) and connects again until greeted (3 s): "after_close
        CODE SECONDS"; "refusals R" counts the 421s this client saw.
    session_probe.py PORT flood --src A --mbytes M --concurrent-src B --bound S
        From A: read the greeting, then write M MiB of NOOP lines as fast as
        the server takes them and never read a reply (a receive window of a
        few KiB). Meanwhile, from B, whole messages one after another; until
        the server closes A or S seconds pass. Prints "flood_sent BYTES",
        "stalled_at T" (last write progress, seconds from the start),
        "closed_at T HOW" (reset or eof; "closed_at none" if not by S),
        "concurrent_ok N", "concurrent_fail N", "concurrent_max_s T".
    session_probe.py PORT quiet --src A --wait S
        EHLO, then silence: prints "reply LINE" (or "reply none" after S
        seconds), "after_s T" from the EHLO reply, "eof yes|no".
    session_probe.py PORT errors --src A N
        EHLO, then N unknown or malformed commands, one at a time: "reply I LINE" for
        each reply line, then "eof yes|no" (EOF within 2 s of the last).
    session_probe.py PORT data --src A --plan RATExSECS[,RATExSECS...] [--subject S]
        A message whose content is sent at RATE bytes a second for SECS
        seconds, segment after segment (RATE 0: silence), watching for a
        reply. "closed_after T LINE" if the server spoke first (T from the
        354), else "ended T LINE" with the reply to the final dot; "eof
        yes|no" after a 421.

All connections go to 127.0.0.1:PORT. Stdlib only. Exit 0 unless the probe
itself could not run (a bad argument, the first connect refused).
"""
import argparse
import errno
import resource
import select
import selectors
import signal
import socket
import sys
import threading
import time

RCPT = "probe@imsvc.test"
SENDER = "probe@example.com"


def out(*words):
    print(*words, flush=True)


def readable(sock, timeout):
    """poll(), not select(): a thousand sockets go past FD_SETSIZE."""
    p = select.poll()
    p.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(p.poll(max(0, timeout) * 1000))


class Conn:
    """One client connection with a line reader that honours deadlines."""

    def __init__(self, port, src=None, rcvbuf=None, timeout=5.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if src:
            self.sock.bind((src, 0))
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.buf = b""
        self.eof = False

    def fileno(self):
        return self.sock.fileno()

    def pump(self):
        """Take what has arrived; False once the peer has closed or reset."""
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return True
        except OSError:
            self.eof = True
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def line(self, deadline):
        """The next reply line (str, no CRLF), or None at EOF or the deadline."""
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                return None
            if readable(self.sock, left) and not self.pump():
                if b"\n" not in self.buf:
                    return None
        raw, self.buf = self.buf.split(b"\n", 1)
        return raw.decode("ascii", "replace").rstrip("\r")

    def reply(self, timeout):
        """A whole (possibly multi-line) reply: its last line, or None."""
        deadline = time.monotonic() + timeout
        while True:
            ln = self.line(deadline)
            if ln is None or len(ln) < 4 or ln[3] != "-":
                return ln

    def send(self, data, timeout=10.0):
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(data)
        finally:
            self.sock.setblocking(False)

    def wait_eof(self, timeout):
        """True if the server closes (or resets) within timeout seconds."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if readable(self.sock, left):
                self.pump()
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, hard), max(want, hard)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def source_addr(i, count):
    """The i-th of count client addresses: 127.0.2.1, 127.0.2.2, ... 127.0.3.x."""
    k = i % count
    return f"127.0.{2 + k // 250}.{1 + k % 250}"


def transact(port, src, subject, timeout=10.0):
    """One whole message in lockstep, EHLO to QUIT. Returns (seconds, error or
    None, the reply to the final dot)."""
    t0 = time.monotonic()
    c = None
    final = None
    try:
        c = Conn(port, src, timeout=timeout)
        deadline = t0 + timeout
        steps = [(None, "220"), (b"EHLO client.example\r\n", "250"),
                 (f"MAIL FROM:<{SENDER}>\r\n".encode(), "250"),
                 (f"RCPT TO:<{RCPT}>\r\n".encode(), "250"), (b"DATA\r\n", "354"),
                 (f"Subject: {subject}\r\n\r\nA message sent while the service is busy.\r\n.\r\n"
                  .encode(), "250"), (b"QUIT\r\n", "221")]
        for data, want in steps:
            if data:
                c.send(data, max(0.1, deadline - time.monotonic()))
            ln = c.reply(max(0.0, deadline - time.monotonic()))
            if want == "250" and data and data.endswith(b".\r\n"):
                final = ln
            if ln is None or not ln.startswith(want):
                return time.monotonic() - t0, f"wanted {want}, got {ln!r}", final
        return time.monotonic() - t0, None, final
    except OSError as e:
        return time.monotonic() - t0, f"socket: {e}", final
    finally:
        if c:
            c.close()


# idle ------------------------------------------------------------------------

def cmd_idle(a):
    raise_nofile(a.n + 64)
    conns, failed = [], 0
    t0 = time.monotonic()
    for i in range(a.n):
        try:
            conns.append(Conn(a.port, source_addr(i, a.addrs), timeout=5.0))
        except OSError:
            failed += 1
    out("connected", len(conns), "connect_failed", failed)
    # Every greeting, waited for together.
    code = {}
    deadline = time.monotonic() + a.greet_secs
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
    while len(code) < len(conns) and time.monotonic() < deadline:
        for key, _ in sel.select(min(0.5, max(0, deadline - time.monotonic()))):
            c = key.data
            c.pump()
            if b"\n" in c.buf or c.eof:
                code[c] = c.buf[:3].decode("ascii", "replace") if c.buf else "eof"
                sel.unregister(c.sock)
    sel.close()
    pending = len(conns) - len(code)
    out("greet_s", f"{time.monotonic() - t0:.3f}")
    greeted = sum(1 for v in code.values() if v == "220")
    refused = sum(1 for v in code.values() if v == "421")
    out("greeted", greeted)
    out("refused", refused)
    for c in conns:
        if c in code and code[c] != "220":
            out("refused_line", c.buf.split(b"\n")[0].decode("ascii", "replace").rstrip("\r"))
            break
    out("silent", pending)
    if a.message:
        took, err, final = transact(a.port, None, "while idle sessions wait")
        out("message_s", f"{took:.3f}")
        out("message_reply", final if final else "none", "" if err is None else f"({err})")
    if a.hold:
        out("holding")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            time.sleep(3600)
    for c in conns:
        c.close()


# perip -----------------------------------------------------------------------

def cmd_perip(a):
    conns, refusals = [], 0
    wait = 3.0
    for i in range(a.n):
        c = Conn(a.port, a.addr)
        ln = c.reply(wait)
        codeword = ln[:3] if ln else "none"
        out("conn", i + 1, codeword, ln or "")
        if codeword == "421":
            refusals += 1
            out("eof_after_421", "yes" if c.wait_eof(2.0) else "no")
        if codeword == "none":
            wait = 0.5   # the rest would wait as long: do not wait for each
        conns.append(c)
    conns[0].close()   # no QUIT: the server must notice the close by itself
    t0 = time.monotonic()
    last = "none"
    while time.monotonic() - t0 < 3.0:
        c = Conn(a.port, a.addr)
        ln = c.reply(2.0)
        last = ln[:3] if ln else "none"
        if last == "421":
            refusals += 1
        if last == "220":
            conns.append(c)
            break
        c.close()
        time.sleep(0.2)
    out("after_close", last, f"{time.monotonic() - t0:.3f}")
    out("refusals", refusals)
    for c in conns:
        c.close()


# flood -----------------------------------------------------------------------

def cmd_flood(a):
    c = Conn(a.port, a.src, rcvbuf=4096)
    greeting = c.reply(5.0)
    out("flood_greeting", greeting or "none")
    payload = memoryview(b"NOOP\r\n" * (a.mbytes * 1024 * 1024 // 6))
    stop = threading.Event()
    times, fails = [], []

    def concurrent():
        i = 0
        while not stop.is_set():
            took, err, _ = transact(a.port, a.concurrent_src, f"beside a flood {i}")
            (fails if err else times).append(took)
            if err:
                out("concurrent_error", i, err)
            i += 1
            stop.wait(0.2)

    th = threading.Thread(target=concurrent, daemon=True)
    t0 = time.monotonic()
    th.start()
    sent, last_progress, closed, how = 0, t0, None, None
    extra = b"NOOP\r\n"
    while time.monotonic() - t0 < a.bound:
        _, w, _ = select.select([], [c.sock], [], 0.2)
        # A reset shows as an error on the socket; never read the replies.
        err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            closed, how = time.monotonic(), "reset"
            break
        if not w:
            continue
        # Once the payload is out, a line now and then keeps the server's
        # receive buffer non-empty, so that its close is a reset we can see
        # without reading.
        chunk = payload[sent:sent + 262144] if sent < len(payload) else extra
        try:
            n = c.sock.send(chunk)
        except BlockingIOError:
            continue
        except OSError as e:
            closed = time.monotonic()
            how = "reset" if e.errno in (errno.ECONNRESET, errno.EPIPE) else f"error-{e.errno}"
            break
        if n > 0:
            last_progress = time.monotonic()
            if sent < len(payload):
                sent += n
            else:
                time.sleep(0.2)
    if closed is None:
        # A graceful close is only visible by reading what is queued first.
        # A server still sending after five seconds of that has not closed.
        c.sock.setblocking(True)
        c.sock.settimeout(2.0)
        drain_end = time.monotonic() + 5.0
        try:
            while time.monotonic() < drain_end:
                if not c.sock.recv(1 << 20):
                    how = "eof-on-drain"
                    break
        except socket.timeout:
            pass
        except OSError:
            how = "reset-on-drain"
    stop.set()
    th.join(15)
    c.close()
    out("flood_sent", sent)
    out("stalled_at", f"{last_progress - t0:.3f}")
    if closed is not None:
        out("closed_at", f"{closed - t0:.3f}", how)
    else:
        out("closed_at", "none", how or "open")
    out("concurrent_ok", len(times))
    out("concurrent_fail", len(fails))
    out("concurrent_max_s", f"{max(times + fails, default=0):.3f}")


# quiet, errors, data ---------------------------------------------------------

def cmd_quiet(a):
    c = Conn(a.port, a.src)
    c.reply(5.0)
    c.send(b"EHLO client.example\r\n")
    ehlo = c.reply(5.0)
    t0 = time.monotonic()
    ln = c.reply(a.wait) if ehlo else None
    out("reply", ln or "none")
    out("after_s", f"{time.monotonic() - t0:.3f}")
    out("eof", "yes" if ln and c.wait_eof(2.0) else "no")
    c.close()


BAD = [b"XYZZY\r\n", b"MAIL FROM:<no-closing-bracket\r\n", b"FROBNICATE all\r\n",
       b"RCPT TO:<>>\r\n", b"HELLO there\r\n"]


def cmd_errors(a):
    c = Conn(a.port, a.src)
    c.reply(5.0)
    c.send(b"EHLO client.example\r\n")
    c.reply(5.0)
    for i in range(a.n):
        try:
            c.send(BAD[i % len(BAD)], 5.0)
        except OSError as e:
            out("reply", i + 1, f"send failed: {e}")
            break
        # The reply, and any line that follows it at once (a 421).
        ln = c.line(time.monotonic() + 5.0)
        out("reply", i + 1, ln if ln is not None else "none")
        while ln is not None:
            ln = c.line(time.monotonic() + 0.3)
            if ln is not None:
                out("reply", i + 1, ln)
        if c.eof:
            break
    out("eof", "yes" if c.wait_eof(1.5) else "no")
    c.close()


def cmd_data(a):
    plan = []
    for seg in a.plan.split(","):
        rate, secs = seg.split("x")
        plan.append((int(rate), float(secs)))
    c = Conn(a.port, a.src)
    c.reply(5.0)
    for cmd in [b"EHLO client.example\r\n", f"MAIL FROM:<{SENDER}>\r\n".encode(),
                f"RCPT TO:<{RCPT}>\r\n".encode(), b"DATA\r\n"]:
        c.send(cmd)
        ln = c.reply(5.0)
        if ln is None or ln[0] not in "23":
            out("setup_failed", cmd.decode().strip(), ln or "none")
            return
    t0 = time.monotonic()
    spoke = None
    head = f"Subject: {a.subject}\r\n\r\n".encode()
    c.send(head)
    for rate, secs in plan:
        end = time.monotonic() + secs
        line = (b"x" * (rate - 2) + b"\r\n") if rate >= 3 else b""
        tick = time.monotonic()
        while time.monotonic() < end and spoke is None:
            if line:
                try:
                    c.send(line, 5.0)
                except OSError:
                    spoke = "send failed (closed)"
                    break
            tick += 1.0
            while spoke is None and time.monotonic() < min(tick, end):
                if readable(c.sock, min(tick, end) - time.monotonic()):
                    ln = c.line(time.monotonic() + 2.0)
                    spoke = ln if ln is not None else "eof"
        if spoke is not None:
            break
    if spoke is not None:
        out("closed_after", f"{time.monotonic() - t0:.3f}", spoke)
        out("eof", "yes" if c.wait_eof(2.0) else "no")
    else:
        c.send(b".\r\n")
        ln = c.reply(30.0)
        out("ended", f"{time.monotonic() - t0:.3f}", ln or "none")
        c.send(b"QUIT\r\n")
        c.reply(5.0)
    c.close()


def main():
    p = argparse.ArgumentParser(description="SMTP session probes")
    p.add_argument("port", type=int)
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("idle")
    s.add_argument("n", type=int)
    s.add_argument("--addrs", type=int, default=100)
    s.add_argument("--greet-secs", type=float, default=20.0)
    s.add_argument("--message", action="store_true")
    s.add_argument("--hold", action="store_true")
    s = sub.add_parser("perip")
    s.add_argument("addr")
    s.add_argument("n", type=int)
    s = sub.add_parser("flood")
    s.add_argument("--src", required=True)
    s.add_argument("--mbytes", type=int, default=10)
    s.add_argument("--concurrent-src", required=True)
    s.add_argument("--bound", type=float, default=30.0)
    s = sub.add_parser("quiet")
    s.add_argument("--src", required=True)
    s.add_argument("--wait", type=float, default=15.0)
    s = sub.add_parser("errors")
    s.add_argument("--src", required=True)
    s.add_argument("n", type=int)
    s = sub.add_parser("data")
    s.add_argument("--src", required=True)
    s.add_argument("--plan", required=True)
    s.add_argument("--subject", default="data probe")
    a = p.parse_args()
    try:
        {"idle": cmd_idle, "perip": cmd_perip, "flood": cmd_flood, "quiet": cmd_quiet,
         "errors": cmd_errors, "data": cmd_data}[a.mode](a)
    except OSError as e:
        out("probe_error", e)
        sys.exit(1)


if __name__ == "__main__":
    main()
