#!/usr/bin/env python3
"""smtp_probe.py - raw SMTP conversations that real clients will not send.

    smtp_probe.py PORT pipeline N      N messages in one write, all commands
                                       pipelined; prints the reply codes
    smtp_probe.py PORT bytewise        one message, one byte per write
    smtp_probe.py PORT lockstep        one command at a time, each sent only
                                       after the last reply (as a client that
                                       does not pipeline); prints each reply's
                                       delay and the longest as "slowest S"
    smtp_probe.py PORT smuggle SEQ     a message whose body holds SEQ (a
                                       Python escape string such as '\\n.\\n')
                                       followed by a second MAIL FROM; prints
                                       every reply line

Talks to 127.0.0.1 only. Replies are printed one per line, so the shell test
can assert on them. Exits 1 on a socket error.
"""
import socket
import sys
import time


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    return s, s.makefile("rb")


def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise EOFError("connection closed")
        lines.append(line.decode("ascii", "replace").rstrip("\r\n"))
        if len(line) < 4 or line[3:4] != b"-":
            return lines


def message(i, to):
    return (f"From: <probe@example.com>\r\nTo: <{to}>\r\nSubject: probe {i}\r\n"
            f"Message-ID: <probe-{i}@example.com>\r\n\r\nbody of message {i}\r\n"
            f"..a dot-stuffed line\r\n").encode()


def pipeline(port, n, to):
    s, f = connect(port)
    read_reply(f)
    s.sendall(b"EHLO probe.example\r\n")
    read_reply(f)
    out = b""
    for i in range(n):
        out += (f"MAIL FROM:<probe@example.com>\r\nRCPT TO:<{to}>\r\nDATA\r\n").encode()
        out += message(i, to) + b".\r\n"
    out += b"QUIT\r\n"
    s.sendall(out)
    for _ in range(4 * n + 1):
        print(read_reply(f)[-1][:3])
    s.close()


def bytewise(port, to):
    s, f = connect(port)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    read_reply(f)
    convo = (b"EHLO probe.example\r\nMAIL FROM:<probe@example.com>\r\n"
             + f"RCPT TO:<{to}>\r\n".encode() + b"DATA\r\n" + message("bytewise", to)
             + b".\r\nQUIT\r\n")
    for b in convo:
        s.send(bytes([b]))
    time.sleep(0.05)
    s.shutdown(socket.SHUT_WR)
    while True:
        try:
            for line in read_reply(f):
                print(line)
        except EOFError:
            break
    s.close()


def smuggle(port, seq, to):
    s, f = connect(port)
    read_reply(f)
    s.sendall(b"EHLO probe.example\r\n")
    read_reply(f)
    body = (b"Subject: smuggle\r\n\r\nfirst part" + seq
            + b"MAIL FROM:<smuggled@example.com>\r\nRCPT TO:<" + to.encode()
            + b">\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n.\r\n")
    s.sendall(b"MAIL FROM:<probe@example.com>\r\nRCPT TO:<" + to.encode() + b">\r\nDATA\r\n"
              + body + b"QUIT\r\n")
    while True:
        try:
            for line in read_reply(f):
                print(line)
        except (EOFError, socket.timeout):
            break
    s.close()


def lockstep(port, to):
    s, f = connect(port)
    read_reply(f)
    slowest = 0.0
    for cmd in ["EHLO probe.example", "MAIL FROM:<probe@example.com>", f"RCPT TO:<{to}>",
                "RSET", "NOOP", "QUIT"]:
        t = time.monotonic()
        s.sendall(cmd.encode() + b"\r\n")
        reply = read_reply(f)
        took = time.monotonic() - t
        slowest = max(slowest, took)
        print(f"{cmd.split()[0]} {reply[-1][:3]} {took:.3f}")
    print(f"slowest {slowest:.3f}")
    s.close()


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    to = "probe@imsvc.test"
    try:
        if mode == "pipeline":
            pipeline(port, int(sys.argv[3]), to)
        elif mode == "bytewise":
            bytewise(port, to)
        elif mode == "lockstep":
            lockstep(port, to)
        elif mode == "smuggle":
            smuggle(port, sys.argv[3].encode().decode("unicode_escape").encode("latin-1"), to)
        else:
            sys.exit("unknown mode " + mode)
    except (OSError, EOFError) as e:
        print(f"smtp_probe: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
