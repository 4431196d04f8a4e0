#!/usr/bin/env python3
"""Open N keep-alive HTTP/1.1 connections to HOST:PORT, send one GET on each, read its whole
response, and leave the connection open and idle. Used by idle.sh.

Prints "ready <n>" once every connection has had its answer, then waits for a line on stdin;
"check" prints "open <n> closed <m>" (a connection the server closed is readable with EOF),
EOF or "quit" exits (closing every socket). At most --concurrency requests are in flight, so
the proxy needs only a few upstream connections and its RSS delta is the client side's.
"""
import argparse
import resource
import select
import socket
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--path", default="/")
    ap.add_argument("--timeout", type=float, default=120.0)
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.connections + 64
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
        if min(need, hard) < need:
            print(f"RLIMIT_NOFILE hard limit {hard} < {need}", file=sys.stderr)
            return 2

    request = f"GET {a.path} HTTP/1.1\r\nHost: {a.host}:{a.port}\r\n\r\n".encode()
    done = []
    pending = {}  # fd -> (socket, bytearray)
    poller = select.epoll()
    deadline = time.monotonic() + a.timeout
    started = 0

    def start_one() -> None:
        s = socket.create_connection((a.host, a.port), timeout=10)
        s.sendall(request)
        s.setblocking(False)
        pending[s.fileno()] = (s, bytearray())
        poller.register(s.fileno(), select.EPOLLIN)

    while len(done) < a.connections:
        while started < a.connections and len(pending) < a.concurrency:
            start_one()
            started += 1
        if time.monotonic() > deadline:
            print(f"timeout: {len(done)} answered, {len(pending)} pending", file=sys.stderr)
            return 1
        for fd, _ in poller.poll(1.0):
            s, buf = pending[fd]
            chunk = s.recv(65536)
            if not chunk:
                print(f"server closed a connection before answering ({len(done)} done)", file=sys.stderr)
                return 1
            buf += chunk
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                continue
            head = bytes(buf[:head_end]).decode("latin-1")
            status = head.split(" ", 2)[1]
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
                if name.strip().lower() == "transfer-encoding":
                    print("chunked answers are not supported by this client", file=sys.stderr)
                    return 1
            if len(buf) - head_end - 4 < length:
                continue
            if status != "200":
                print(f"status {status}", file=sys.stderr)
                return 1
            poller.unregister(fd)
            del pending[fd]
            done.append(s)

    print(f"ready {len(done)}", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "check":
            closed = 0
            check = select.poll()  # select.select cannot take fds above 1023
            for s in done:
                check.register(s.fileno(), select.POLLIN)
            for fd, _ in check.poll(0):
                s = socket.socket(fileno=socket.dup(fd))
                try:
                    s.setblocking(False)
                    if s.recv(1, socket.MSG_PEEK) == b"":
                        closed += 1
                except BlockingIOError:
                    pass
                except OSError:
                    closed += 1
                finally:
                    s.close()
            print(f"open {len(done) - closed} closed {closed}", flush=True)
        elif cmd == "quit":
            break
    for s in done:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
