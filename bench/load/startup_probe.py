#!/usr/bin/env python3
"""Time from exec of a proxy to its first proxied 200, used by startup.sh.

Runs the command given after `--` RUNS times. Each run: take the monotonic clock, spawn the
process, then try every 0.5 ms to connect to PORT and send `GET /` (a refused connect or a
closed connection is retried); the time of the first complete 200 answer is the run's figure.
The process is then killed (TERM, KILL after 5 s) before the next run. Prints one line per run
("run i ms cpu ms": wall time, and the CPU time the process (and its children) had run by then,
from schedstat) and "median ms min ms max ms cpu ms".
"""
import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time


def first_200(port: int, deadline: float) -> bool:
    req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(req)
                buf = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                if buf.startswith(b"HTTP/1.1 200"):
                    return True
        except OSError:
            pass
        time.sleep(0.0005)
    return False


def cpu_ms(pid: int) -> float:
    """CPU time the process (every thread, and for nginx its worker too) has run so far, in ms, from
    /proc/<pid>/task/*/schedstat (nanoseconds on a CPU; finer than utime/stime's 10 ms ticks)."""
    total = 0
    for p in [pid] + children(pid):
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
        except OSError:
            pass
    return total / 1e6


def children(pid: int) -> list:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        print("no command after --", file=sys.stderr)
        return 2
    times = []
    cpus = []
    for i in range(a.runs):
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        ok = first_200(a.port, t0 + a.timeout)
        ms = (time.monotonic() - t0) * 1000
        cpu = cpu_ms(p.pid) if ok else 0.0
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)
        if not ok:
            print(f"run {i + 1}: no 200 within {a.timeout}s", file=sys.stderr)
            return 1
        times.append(ms)
        cpus.append(cpu)
        print(f"run {i + 1} {ms:.1f} cpu {cpu:.1f}", flush=True)
        time.sleep(0.2)  # let the port and the previous process's pages go
    print(f"median {statistics.median(times):.1f} min {min(times):.1f} max {max(times):.1f} cpu {statistics.median(cpus):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
