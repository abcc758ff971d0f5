#!/usr/bin/env python3
"""tools/bench/eodlat.py HOST PORT COUNT SIZE - end-of-data -> 250 latency:
COUNT messages of SIZE bytes, one after the other on one connection; the
clock runs from writing the final ".\\r\\n" to reading the 250. Prints
"p50_ms p99_ms" (bounded: a 30 s socket timeout per reply)."""
import socket
import sys
import time


def reply(f):
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("closed")
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3])


def main():
    host, port, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    body = b"Subject: eodlat\r\n\r\n" + (b"x" * 78 + b"\r\n") * max(1, size // 80)
    s = socket.create_connection((host, port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    reply(f)
    s.sendall(b"EHLO bench.example\r\n")
    reply(f)
    lat = []
    for _ in range(count):
        s.sendall(b"MAIL FROM:<lat@bench.example>\r\n")
        assert reply(f) == 250
        s.sendall(b"RCPT TO:<sink@example.org>\r\n")
        assert reply(f) == 250
        s.sendall(b"DATA\r\n")
        assert reply(f) == 354
        s.sendall(body)
        t0 = time.perf_counter()
        s.sendall(b".\r\n")
        code = reply(f)
        lat.append((time.perf_counter() - t0) * 1000)
        assert code == 250, code
    s.sendall(b"QUIT\r\n")
    lat.sort()
    print(f"{lat[len(lat) // 2]:.3f} {lat[min(len(lat) - 1, int(len(lat) * 0.99))]:.3f}")


if __name__ == "__main__":
    main()
