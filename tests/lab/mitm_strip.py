#!/usr/bin/env python3
"""tests/lab/mitm_strip.py - a STARTTLS-stripping man in the middle for the
lab's TLS policy tests: relays SMTP between a client (Postern) and an
upstream server byte for byte, except that
  - every multi-line 250 reply (the EHLO reply) loses its STARTTLS line, the
    continuation markers rewritten so the reply stays valid ("250-" on all
    lines but the last, "250 " on the last, even when STARTTLS was the last);
  - a STARTTLS command from the client is not passed on: the MITM answers
    "502 5.5.1 not available" itself, in order with the upstream's replies.
The client's stream is followed as SMTP (pipelined groups, DATA after the
upstream's 354 up to the lone ".", BDAT chunks by their size), so "STARTTLS"
inside a message is relayed untouched. Python stdlib only; one thread per
connection (at most --max-conns at once, more get 421 4.7.0), each bounded
by --timeout of silence; SIGTERM or SIGINT ends it.

Files in DIR (--dir; tmp + rename, not fsynced):
  ready       "HOST:PORT\\n" once listening (PORT 0 picks one); removed on exit
  state.json  counters, rewritten as they change: connections, refused
              (over --max-conns), upstream_failed (no connection upstream),
              stripped (EHLO replies that lost STARTTLS), starttls_refused
              (STARTTLS commands answered 502 here), active
Exit status 0 after a signal, 1 when the listener or DIR cannot be set up,
2 usage.
"""
import argparse
import json
import os
import re
import select
import signal
import socket
import sys
import threading
import time

COUNTERS = ("connections", "refused", "upstream_failed", "stripped", "starttls_refused", "active")
BDAT_RE = re.compile(rb"BDAT +([0-9]{1,18})( +LAST)? *", re.I)
REFUSAL = b"502 5.5.1 not available\r\n"
LINE_MAX = 1 << 16  # a longer client "line" is relayed as is: it is no command


def die(msg):
    sys.stderr.write("mitm_strip: %s\n" % msg)
    sys.exit(1)


def addr(text, p):
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or int(port) > 65535:
        p.error("want ADDR:PORT, got %r" % text)
    return host, int(port)


def strip_starttls(lines):
    """lines: one reply, each line without CRLF. The reply without its
    STARTTLS line(s) and with valid continuation markers, or None when it
    has none (a single line, another code, no STARTTLS)."""
    if len(lines) < 2 or any(ln[:3] != b"250" for ln in lines):
        return None
    kept = [lines[0]] + [ln for ln in lines[1:] if ln[4:].strip().upper() != b"STARTTLS"]
    if len(kept) == len(lines):
        return None
    return [b"250" + (b"-" if k < len(kept) - 1 else b" ") + ln[4:] for k, ln in enumerate(kept)]


class Relay:
    """One client connection and its upstream connection."""

    def __init__(self, mitm, client, conn):
        self.m, self.args, self.c, self.conn = mitm, mitm.args, client, conn
        self.u = None
        self.cbuf = bytearray()   # client input not yet parsed
        self.ubuf = bytearray()   # upstream input: an incomplete reply
        self.reply_lines = []     # the reply being collected
        # what answers are due, in order: "up" (the upstream's) or bytes (ours)
        self.due = ["up"]         # the greeting
        self.wait_data = False    # DATA sent upstream: hold client input until its reply
        self.mode = "cmd"         # cmd | data | bdat
        self.tail = b""           # data mode: the last octets relayed (for CRLF.CRLF)
        self.bdat_left = 0

    def log(self, text):
        if self.args.verbose:
            sys.stderr.write("mitm_strip %s %d %s\n" % (time.strftime("%H:%M:%S"), self.conn, text))

    def run(self):
        try:
            self.u = socket.create_connection(self.args.upstream, timeout=self.args.timeout)
        except OSError as e:
            self.log("upstream %s:%d: %s" % (self.args.upstream + (e,)))
            self.m.bump("upstream_failed")
            try:
                self.c.sendall(b"421 4.4.1 upstream not reachable\r\n")
            except OSError:
                pass
            return
        with self.m.lock:
            self.m.socks[threading.current_thread()] = (self.c, self.u)
        self.c.settimeout(self.args.timeout)
        self.u.settimeout(self.args.timeout)
        watch = [self.c, self.u]
        try:
            while True:
                r, _, _ = select.select(watch, [], [], self.args.timeout)
                if not r:
                    self.log("idle for %g s, closing" % self.args.timeout)
                    return
                if self.u in r:
                    data = self.u.recv(1 << 16)
                    if not data:
                        self.log("upstream closed")
                        self.flush_partial()
                        return
                    self.ubuf += data
                    self.from_upstream()
                if self.c in r:
                    data = self.c.recv(1 << 16)
                    if not data:  # the upstream may still have a reply for it (QUIT)
                        self.log("client closed")
                        if self.cbuf:
                            self.u.sendall(bytes(self.cbuf))
                        self.u.shutdown(socket.SHUT_WR)
                        watch.remove(self.c)
                        continue
                    self.cbuf += data
                    self.from_client()
        except OSError as e:
            self.log("socket error: %s" % e)
        finally:
            self.u.close()

    # -- upstream to client: replies, line by line -----------------------------
    def from_upstream(self):
        while True:
            i = self.ubuf.find(b"\n")
            if i < 0:
                if len(self.ubuf) > LINE_MAX:  # no SMTP reply: pass it on
                    self.c.sendall(bytes(self.ubuf))
                    self.ubuf.clear()
                return
            line = bytes(self.ubuf[:i + 1])
            del self.ubuf[:i + 1]
            self.reply_lines.append(line)
            text = line.rstrip(b"\r\n")
            if len(text) >= 4 and text[3:4] == b"-":
                continue
            self.reply_done()

    def flush_partial(self):
        rest = b"".join(self.reply_lines) + bytes(self.ubuf)
        if rest:
            self.c.sendall(rest)

    def reply_done(self):
        lines, self.reply_lines = self.reply_lines, []
        out = b"".join(lines)
        stripped = strip_starttls([ln.rstrip(b"\r\n") for ln in lines])
        if stripped is not None:
            out = b"".join(ln + b"\r\n" for ln in stripped)
            self.m.bump("stripped")
            self.log("EHLO reply: STARTTLS removed")
        self.send_due()      # our own replies that come first
        self.c.sendall(out)
        what = self.due.pop(0) if self.due else "up"
        if what == "data?":  # the reply to DATA: 354 opens the message, else commands go on
            self.wait_data = False
            if lines[-1][:3] == b"354":
                self.mode, self.tail = "data", b"\r\n"
            self.send_due()
            if self.cbuf:
                self.from_client()  # what the client sent meanwhile (held back)
        self.send_due()

    def send_due(self):
        while self.due and isinstance(self.due[0], bytes):
            self.c.sendall(self.due.pop(0))

    # -- client to upstream: commands and message data --------------------------
    def from_client(self):
        out = bytearray()
        buf = self.cbuf
        while buf and not self.wait_data:
            if self.mode == "data":
                window = self.tail + bytes(buf)
                i = window.find(b"\r\n.\r\n")
                if i >= 0:
                    end = i + 5 - len(self.tail)
                    out += buf[:end]
                    del buf[:end]
                    self.mode = "cmd"
                    self.due.append("up")
                else:
                    out += buf
                    self.tail = window[-4:]
                    buf.clear()
                continue
            if self.mode == "bdat":
                take = buf[:self.bdat_left]
                out += take
                del buf[:len(take)]
                self.bdat_left -= len(take)
                if not self.bdat_left:
                    self.mode = "cmd"
                continue
            i = buf.find(b"\n")
            if i < 0:
                if len(buf) > LINE_MAX:
                    out += buf
                    buf.clear()
                break
            line = bytes(buf[:i + 1])
            del buf[:i + 1]
            verb = line.strip().split(b" ", 1)[0].upper()
            if verb == b"STARTTLS":
                self.m.bump("starttls_refused")
                self.log("client STARTTLS answered 502 here")
                self.due.append(REFUSAL)
                if out:
                    self.u.sendall(bytes(out))
                    out.clear()
                self.send_due()
                continue
            out += line
            if verb == b"DATA" and line.strip().upper() == b"DATA":
                self.due.append("data?")
                self.wait_data = True
                continue
            self.due.append("up")
            m = BDAT_RE.fullmatch(line.rstrip(b"\r\n"))
            if m:
                self.bdat_left = int(m.group(1))
                if self.bdat_left:
                    self.mode = "bdat"
        if out:
            self.u.sendall(bytes(out))


class Mitm:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.socks = {}  # thread -> (client, upstream), to wake them on exit
        self.conn_seq = 0

    def bump(self, key, n=1):
        with self.lock:
            self.counters[key] += n
            self.save()

    def save(self):
        """With the lock held."""
        if not self.args.dir:
            return
        try:
            write(self.args.dir, "state.json",
                  (json.dumps(self.counters, indent=1, sort_keys=True) + "\n").encode())
        except OSError as e:
            sys.stderr.write("mitm_strip: state.json: %s\n" % e)

    def serve(self, client, peer):
        me = threading.current_thread()
        with self.lock:
            self.conn_seq += 1
            conn = self.conn_seq
            self.counters["connections"] += 1
            refused = self.counters["active"] >= self.args.max_conns
            if refused:
                self.counters["refused"] += 1
            else:
                self.counters["active"] += 1
                self.socks[me] = (client,)
            self.save()
        try:
            if refused:
                client.sendall(b"421 4.7.0 too many connections, try later\r\n")
            else:
                Relay(self, client, conn).run()
        except OSError:
            pass
        finally:
            client.close()
            with self.lock:
                if not refused:
                    self.counters["active"] -= 1
                self.socks.pop(me, None)
                self.save()


def write(directory, name, data):
    tmp = os.path.join(directory, ".%s.tmp" % name)
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, os.path.join(directory, name))


def parse_args(argv):
    p = argparse.ArgumentParser(prog="mitm_strip.py",
                                description="A STARTTLS-stripping SMTP man in the middle for the lab; "
                                "see the header of tests/lab/mitm_strip.py.")
    p.add_argument("--listen", required=True, metavar="ADDR:PORT", help="where clients connect")
    p.add_argument("--upstream", required=True, metavar="ADDR:PORT", help="the real SMTP server")
    p.add_argument("--dir", help="where ready and state.json go")
    p.add_argument("--timeout", type=float, default=300, metavar="SECONDS",
                   help="close a connection silent this long, both ways (default 300)")
    p.add_argument("--max-conns", type=int, default=512, metavar="N",
                   help="connections at once; more get 421 4.7.0 (default 512)")
    p.add_argument("--verbose", action="store_true", help="log to stderr")
    args = p.parse_args(argv)
    args.listen_addr = addr(args.listen, p)
    args.upstream = addr(args.upstream, p)
    if args.timeout <= 0 or args.max_conns < 1:
        p.error("--timeout > 0, --max-conns >= 1")
    return args


def main(argv):
    args = parse_args(argv)
    if args.dir:
        try:
            os.makedirs(args.dir, exist_ok=True)
            if os.path.exists(os.path.join(args.dir, "ready")):
                os.unlink(os.path.join(args.dir, "ready"))
        except OSError as e:
            die("--dir %s: %s" % (args.dir, e))
    mitm = Mitm(args)
    family = socket.AF_INET6 if ":" in args.listen_addr[0] else socket.AF_INET
    try:
        ls = socket.socket(family, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(args.listen_addr)
        ls.listen(256)
    except OSError as e:
        die("cannot listen on %s: %s" % (args.listen, e))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    bound = ls.getsockname()
    where = ("[%s]:%d" if family == socket.AF_INET6 else "%s:%d") % (bound[0], bound[1])
    with mitm.lock:
        mitm.save()
    if args.dir:
        try:
            write(args.dir, "ready", (where + "\n").encode())
        except OSError as e:
            die("--dir %s: %s" % (args.dir, e))
    if args.verbose:
        sys.stderr.write("mitm_strip: %s -> %s:%d\n" % ((where,) + args.upstream))
    ls.settimeout(0.2)
    while not stop.is_set():
        try:
            client, peer = ls.accept()
        except socket.timeout:
            continue
        except OSError as e:
            if stop.is_set():
                break
            sys.stderr.write("mitm_strip: accept: %s\n" % e)
            time.sleep(0.1)
            continue
        client.settimeout(None)
        threading.Thread(target=mitm.serve, args=(client, peer), daemon=True).start()
    ls.close()
    if args.dir:
        try:
            os.unlink(os.path.join(args.dir, "ready"))
        except OSError:
            pass
    with mitm.lock:
        threads = list(mitm.socks.items())
    for _, socks in threads:
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    for thread, _ in threads:
        thread.join(5)
    with mitm.lock:
        mitm.save()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
