#!/usr/bin/env python3
"""tests/lab/tcppeer.py - the Linux side of the TCP interop tests: a client
of the dataplane's diagnostic services and a server for its diag client.
Every mode is bounded in bytes, connections and time, and prints one JSON
line with what it measured.

  tcppeer.py echo HOST PORT BYTES          send BYTES, read them back, compare sha256
  tcppeer.py discard HOST PORT BYTES       send BYTES, then close
  tcppeer.py source HOST PORT BYTES        request BYTES of the pattern, compare sha256
  tcppeer.py seq HOST PORT COUNT           COUNT sequential echo connections, 32 bytes each
  tcppeer.py conc HOST PORT COUNT          COUNT concurrent echo connections
  tcppeer.py steady HOST PORT SECONDS      one echo connection kept busy (16 KiB every 5 ms,
                                           each echo checked) until SECONDS pass or the file
                                           named by $PG_STOP_FILE appears
  tcppeer.py serve HOST PORT SECONDS       echo/discard/source server (same protocols) for
                                           the dataplane's diag client; exits after SECONDS.
                                           One JSON line per connection as it ends, the
                                           Linux side's own record of it: {"conn": kind,
                                           "rx", "rx_sha256", "tx", "tx_sha256"} (bytes
                                           received and sent, and their hashes)
  tcppeer.py simclose HOST PORT BYTES      ask the source for BYTES, send our FIN once data flows,
                                           then read to EOF; with FINs held back both ways
                                           (the test's nftables), both ends close at once
HOST may be an IPv4 or an IPv6 address.
"""
import hashlib
import json
import os
import resource
import selectors
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pattern import pattern_bytes  # noqa: E402  (the dataplane's diag pattern)

CHUNK = 1 << 16
TIMEOUT = 120


def connect(host, port):
    s = socket.create_connection((host, port), timeout=TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def pattern_stream(total):
    off = 0
    while off < total:
        n = min(CHUNK * 4, total - off)
        yield pattern_bytes(off, n)
        off += n


def echo(host, port, total):
    s = connect(host, port)
    sent_hash, recv_hash = hashlib.sha256(), hashlib.sha256()
    received = [0]
    err = []

    def reader():
        try:
            while True:
                b = s.recv(1 << 18)
                if not b:
                    break
                recv_hash.update(b)
                received[0] += len(b)
        except OSError as e:
            err.append(str(e))

    t = threading.Thread(target=reader)
    t.start()
    t0 = time.time()
    for block in pattern_stream(total):
        sent_hash.update(block)
        s.sendall(block)
    s.shutdown(socket.SHUT_WR)
    t.join(TIMEOUT)
    dt = time.time() - t0
    s.close()
    return {"sent": total, "received": received[0], "match": sent_hash.hexdigest() == recv_hash.hexdigest(),
            "sha256": recv_hash.hexdigest(), "seconds": round(dt, 3), "error": err[0] if err else None}


def discard(host, port, total):
    s = connect(host, port)
    t0 = time.time()
    h = hashlib.sha256()
    for block in pattern_stream(total):
        h.update(block)
        s.sendall(block)
    s.shutdown(socket.SHUT_WR)
    rest = s.recv(1)  # the server closes after our FIN
    s.close()
    return {"sent": total, "sha256": h.hexdigest(), "closed_cleanly": rest == b"",
            "seconds": round(time.time() - t0, 3)}


def source(host, port, total):
    s = connect(host, port)
    t0 = time.time()
    s.sendall(b"%d\n" % total)
    want, got = hashlib.sha256(), hashlib.sha256()
    for block in pattern_stream(total):
        want.update(block)
    n = 0
    while True:
        b = s.recv(1 << 18)
        if not b:
            break
        got.update(b)
        n += len(b)
    s.close()
    return {"requested": total, "received": n, "match": n == total and want.hexdigest() == got.hexdigest(),
            "seconds": round(time.time() - t0, 3)}


def seq(host, port, count):
    ok = 0
    t0 = time.time()
    errors = {}
    for i in range(count):
        msg = b"%031d\n" % i
        try:
            s = connect(host, port)
            s.sendall(msg)
            s.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                b = s.recv(64)
                if not b:
                    break
                got += b
            s.close()
            ok += got == msg
        except OSError as e:
            errors[str(e)] = errors.get(str(e), 0) + 1
        if time.time() - t0 > 600:
            break
    dt = time.time() - t0
    return {"count": count, "ok": ok, "seconds": round(dt, 3), "per_second": round(ok / dt, 1), "errors": errors}


def conc(host, port, count):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count + 64)), hard))
    sel = selectors.DefaultSelector()
    socks = {}
    t0 = time.time()
    errors = {}
    for i in range(count):
        try:
            s = connect(host, port)
        except OSError as e:
            errors[str(e)] = errors.get(str(e), 0) + 1
            continue
        socks[s] = [b"%031d\n" % i, b""]
    # All connections are open at once; now each echoes its message.
    for s, st in socks.items():
        s.sendall(st[0])
        s.shutdown(socket.SHUT_WR)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    ok = 0
    left = len(socks)
    while left and time.time() - t0 < TIMEOUT:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                b = s.recv(64)
            except OSError as e:
                errors[str(e)] = errors.get(str(e), 0) + 1
                b = b""
            if b:
                socks[s][1] += b
                continue
            sel.unregister(s)
            ok += socks[s][1] == socks[s][0]
            s.close()
            left -= 1
    return {"count": count, "opened": len(socks), "ok": ok, "seconds": round(time.time() - t0, 3),
            "errors": errors}


def steady(host, port, seconds):
    s = connect(host, port)
    stop = os.environ.get("PG_STOP_FILE", "")
    t0 = time.time()
    sent = received = rounds = 0
    error = None
    try:
        while time.time() - t0 < seconds and not (stop and os.path.exists(stop)):
            block = pattern_bytes(sent, 16384)
            s.sendall(block)
            got = b""
            while len(got) < len(block):
                b = s.recv(len(block) - len(got))
                if not b:
                    raise OSError("connection closed by the dataplane")
                got += b
            if got != block:
                raise OSError("echo differs at round %d" % rounds)
            sent += len(block)
            received += len(got)
            rounds += 1
            time.sleep(0.005)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
    except OSError as e:
        error = str(e)
    s.close()
    return {"rounds": rounds, "sent": sent, "received": received, "seconds": round(time.time() - t0, 3),
            "error": error}


def simclose(host, port, total):
    """Request, then FIN before the server's FIN can have arrived: a simultaneous close
    when the test holds both FINs back until both have been sent (RFC 9293 §3.6, figure 13)."""
    s = connect(host, port)
    local = s.getsockname()[1]
    t0 = time.time()
    s.sendall(b"%d\n" % total)
    want, got = hashlib.sha256(), hashlib.sha256()
    for block in pattern_stream(total):
        want.update(block)
    # The request must arrive on its own (a FIN on its segment would be held
    # with it); once data flows, our FIN goes out while the server's is held.
    first = s.recv(1 << 18)
    got.update(first)
    n = len(first)
    s.shutdown(socket.SHUT_WR)
    while first:
        b = s.recv(1 << 18)
        if not b:
            break
        got.update(b)
        n += len(b)
    s.close()
    return {"requested": total, "received": n, "local_port": local,
            "match": n == total and want.hexdigest() == got.hexdigest(), "seconds": round(time.time() - t0, 3)}


def serve(host, port, seconds):
    """Echo on PORT, discard on PORT+1, source on PORT+2, until SECONDS pass."""
    stats = {"echo_bytes": 0, "discard_bytes": 0, "source_bytes": 0, "conns": 0}
    lock = threading.Lock()

    def handle(kind, c):
        with lock:
            stats["conns"] += 1
        rx, tx = hashlib.sha256(), hashlib.sha256()
        nrx = ntx = 0
        try:
            if kind == "source":
                req = b""
                while not req.endswith(b"\n") and len(req) < 32:
                    b = c.recv(1)
                    if not b:
                        return
                    req += b
                for block in pattern_stream(int(req)):
                    c.sendall(block)
                    tx.update(block)
                    ntx += len(block)
                with lock:
                    stats["source_bytes"] += int(req)
                return
            while True:
                b = c.recv(1 << 18)
                if not b:
                    break
                rx.update(b)
                nrx += len(b)
                if kind == "echo":
                    c.sendall(b)
                    tx.update(b)
                    ntx += len(b)
                with lock:
                    stats[kind + "_bytes"] += len(b)
        except OSError:
            pass
        finally:
            c.close()
            with lock:
                print(json.dumps({"conn": kind, "rx": nrx, "rx_sha256": rx.hexdigest(), "tx": ntx,
                                  "tx_sha256": tx.hexdigest()}), flush=True)

    def listener(kind, p):
        ls = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((host, p))
        ls.listen(128)
        ls.settimeout(0.5)
        while time.time() < deadline:
            try:
                c, _ = ls.accept()
            except socket.timeout:
                continue
            threading.Thread(target=handle, args=(kind, c), daemon=True).start()
        ls.close()

    deadline = time.time() + seconds
    ts = [threading.Thread(target=listener, args=(k, port + i)) for i, k in enumerate(["echo", "discard", "source"])]
    for t in ts:
        t.start()
    print(json.dumps({"listening": [port, port + 1, port + 2]}), flush=True)
    for t in ts:
        t.join()
    return stats


def main():
    mode, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    fn = {"echo": echo, "discard": discard, "source": source, "seq": seq, "conc": conc, "serve": serve,
          "steady": steady, "simclose": simclose}[mode]
    print(json.dumps(fn(host, port, n)), flush=True)


if __name__ == "__main__":
    main()
