#!/usr/bin/env python3
"""tls_probe.py PORT MODE N - a pipelined transaction over STARTTLS, shaped
to test the server's receive loop.

After STARTTLS (Python's ssl over MemoryBIO, so we decide how records reach
the socket), N messages are sent pipelined with every command line and every
body line in its own TLS record:

    records   all the records in ONE TCP write (the server reads many
              records in one recv and must decrypt them all, following
              every SECBUFFER_EXTRA)
    bytewise  the same records, one byte of ciphertext per TCP write
    corrupt   one EHLO record with one bit flipped in its last byte: the
              server must close this session (and only this one)

Prints every reply's code (one per line) and the negotiated protocol and
cipher. Talks to 127.0.0.1 only; the server certificate is not verified (it
is the service's self-signed one). Exits 1 on any socket or TLS error.
"""
import socket
import ssl
import sys


def read_plain_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise EOFError("connection closed")
        lines.append(line.decode("ascii", "replace").rstrip("\r\n"))
        if line[3:4] != b"-":
            return lines


class Tls:
    def __init__(self, sock):
        self.sock = sock
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="127.0.0.1")
        self.plain = b""

    def pump_out(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def pump_in(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed during TLS")
        self.inc.write(data)

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                self.pump_out()
                return
            except ssl.SSLWantReadError:
                self.pump_out()
                self.pump_in()

    def records(self, chunks):
        """Encrypt each chunk as its own record; return the ciphertext."""
        for c in chunks:
            self.obj.write(c)
        return self.out.read()

    def reply(self):
        while b"\n" not in self.plain or not self._complete():
            try:
                data = self.obj.read(65536)
            except ssl.SSLWantReadError:
                self.pump_in()
                continue
            if not data:
                raise EOFError("the server closed the secure channel")
            self.plain += data
        return self._take()

    def _complete(self):
        for line in self.plain.split(b"\r\n")[:-1]:
            if line[3:4] != b"-":
                return True
        return False

    def _take(self):
        lines = []
        while True:
            line, self.plain = self.plain.split(b"\r\n", 1)
            lines.append(line.decode("ascii", "replace"))
            if line[3:4] != b"-":
                return lines


def main():
    port, mode, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    to = "probe@imsvc.test"
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rb")
        read_plain_reply(f)
        s.sendall(b"EHLO probe.example\r\n")
        if not any("STARTTLS" in l for l in read_plain_reply(f)):
            sys.exit("tls_probe: the server does not offer STARTTLS")
        s.sendall(b"STARTTLS\r\n")
        print(read_plain_reply(f)[-1][:3])
        t = Tls(s)
        t.handshake()
        print(f"tls: {t.obj.version()} {t.obj.cipher()[0]}")
        if mode == "corrupt":
            wire = bytearray(t.records([b"EHLO probe.example\r\n"]))
            wire[-1] ^= 0x01
            s.sendall(bytes(wire))
            try:
                t.reply()
                print("corrupt: the server answered a corrupted record")
                sys.exit(1)
            except (EOFError, ConnectionResetError, ssl.SSLError):
                print("corrupt: the server closed the session")
                return
        chunks = [b"EHLO probe.example\r\n"]
        for i in range(n):
            chunks += [b"MAIL FROM:<probe@example.com>\r\n", f"RCPT TO:<{to}>\r\n".encode(),
                       b"DATA\r\n", f"Subject: tls {mode} {i}\r\n".encode(),
                       f"Message-ID: <tls-{mode}-{i}@example.com>\r\n".encode(), b"\r\n"]
            chunks += [f"line {k} of message {i} {'x' * (k % 50)}\r\n".encode() for k in range(20)]
            chunks += [b".\r\n"]
        chunks += [b"QUIT\r\n"]
        wire = t.records(chunks)
        if mode == "records":
            s.sendall(wire)
        elif mode == "bytewise":
            for b in wire:
                s.send(bytes([b]))
        else:
            sys.exit("tls_probe: unknown mode " + mode)
        print(f"records: {len(chunks)} in {len(wire)} bytes")
        for _ in range(1 + 4 * n + 1):
            print(t.reply()[-1][:3])
        s.close()
    except (OSError, EOFError, ssl.SSLError) as e:
        print(f"tls_probe: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
