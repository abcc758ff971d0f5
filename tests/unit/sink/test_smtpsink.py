#!/usr/bin/env python3
"""tests/unit/sink/test_smtpsink.py - self-test of tests/lab/smtpsink.py, the
lab's SMTP next hop: starts it on 127.0.0.1 (random port above 20000) with a
temporary directory, talks to it with smtplib and raw sockets, and checks
what it stored and counted. Loopback only, no namespaces; bounded (every
socket 10 s, the whole run 170 s). Prints TAP.

The TLS part: tests/lab/mkcerts.sh makes the lab's certificates in the
temporary directory (checked with the openssl tool), then STARTTLS of the
sink (--starttls, --starttls-reply, --tls-break, --require-tls, pipelined
input after STARTTLS) and tests/lab/mitm_strip.py in front of a TLS sink.
Without the openssl tool those tests are skipped.

usage: test_smtpsink.py [PATH_TO_SMTPSINK_PY]
"""
import hashlib
import json
import os
import random
import re
import select
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SINK = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "lab", "smtpsink.py")
TIMEOUT = 10
LAB = os.path.dirname(os.path.abspath(SINK))
MKCERTS = os.path.join(LAB, "mkcerts.sh")
MITM = os.path.join(LAB, "mitm_strip.py")
WORK = tempfile.mkdtemp(prefix="smtpsink-test-")
CERTS = os.path.join(WORK, "certs")
SINKS = []
LOGS = []


class Skip(Exception):
    """A test that cannot run here (TAP # SKIP)."""


class Sink:
    """One smtpsink process on a random loopback port."""

    def __init__(self, name, *extra, prog=SINK, opts=("--timeout", "20")):
        self.dir = os.path.join(WORK, name)
        self.log = os.path.join(WORK, name + ".log")
        LOGS.append(self.log)
        for _ in range(10):
            self.port = random.randint(20001, 32767)  # below the ephemeral range
            with open(self.log, "a") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, prog, "--listen", "127.0.0.1:%d" % self.port, "--dir", self.dir,
                     "--verbose"] + list(opts) + list(extra),
                    stdout=log, stderr=log)
            SINKS.append(self.proc)
            deadline = time.time() + TIMEOUT
            while time.time() < deadline and self.proc.poll() is None:
                if os.path.exists(os.path.join(self.dir, "ready")):
                    return
                time.sleep(0.02)
            if self.proc.poll() is None:
                break
        raise AssertionError("smtpsink did not get ready (see %s)" % self.log)

    def stop(self, result="summary.json"):
        """SIGTERM, wait, and return summary.json."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(TIMEOUT)
        check(rc == 0, "%s exited with %s" % (os.path.basename(self.proc.args[1]), rc))
        check(not os.path.exists(os.path.join(self.dir, "ready")), "ready left behind")
        return load(self.dir, result)

    def smtp(self):
        return smtplib.SMTP("127.0.0.1", self.port, timeout=TIMEOUT)

    def raw(self):
        return Raw(self.port)

    def files(self, ext):
        return sorted(f for f in os.listdir(self.dir) if f.endswith(ext))


class Raw:
    """SMTP over a plain socket, for what smtplib will not say."""

    def __init__(self, port, greeting=True):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.f = self.s.makefile("rb")
        if greeting:
            self.expect(220)

    def send(self, data):
        self.s.sendall(data)

    def reply(self):
        lines = []
        while True:
            line = self.f.readline()
            check(line.endswith(b"\r\n"), "reply line %r (after %r)" % (line, lines))
            lines.append(line[:-2].decode("utf-8", "replace"))
            if len(line) < 6 or line[3:4] != b"-":
                return lines

    def expect(self, code, cmd=None):
        if cmd is not None:
            self.send(cmd)
        last = self.reply()[-1]
        check(last[:3] == str(code), "%r: want %d, got %r" % (cmd, code, last))
        return last

    def eof(self):
        return self.f.read() == b""

    def close(self):
        self.f.close()
        self.s.close()


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def load(directory, name):
    with open(os.path.join(directory, name)) as f:
        return json.load(f)


def stored(sink, reply_text):
    """(eml bytes, json dict) of the message a '250 ... queued as N' names."""
    n = int(reply_text.split()[-1])
    with open(os.path.join(sink.dir, "%d.eml" % n), "rb") as f:
        return f.read(), load(sink.dir, "%d.json" % n)


def text(b):
    return b.decode() if isinstance(b, bytes) else b


# ---- the tests (run in order; MAIN is shared by the first ones) ---------------
MAIN = None
EXPECT = dict(connections=0, messages=0, rcpts=0, rcpt_rejected=0, rcpt_deferred=0, aborted=0,
              deferred=0, rejected=0, pipelining_violations=0)


def t_start():
    global MAIN
    MAIN = Sink("main", "--rcpt-reply", "bounce@.*=550 5.1.1 user unknown",
                "--rcpt-reply", "later@.*=450", "4.2.0", "try", "later")
    with open(os.path.join(MAIN.dir, "ready")) as f:
        check(f.read().strip() == "127.0.0.1:%d" % MAIN.port, "ready names the address")


def t_ehlo():
    with MAIN.smtp() as c:
        EXPECT["connections"] += 1
        code, _ = c.ehlo("client.test")
        check(code == 250, "EHLO %d" % code)
        want = {"pipelining", "size", "8bitmime", "smtputf8", "chunking", "dsn", "enhancedstatuscodes"}
        check(set(c.esmtp_features) == want, "features %s" % sorted(c.esmtp_features))
        check(c.esmtp_features["size"] == "104857600", "SIZE %r" % c.esmtp_features["size"])


def t_plain():
    msg = (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: plain\r\n\r\nline one\r\n"
           b".single dot line\r\n..double dot line\r\n.\r\n...\r\nbare\nLF and bare\rCR\r\n"
           b"8bit \xc3\xa4\r\nlast\r\n")
    with MAIN.smtp() as c:
        EXPECT["connections"] += 1
        c.ehlo("client.test")
        c.mail("a@x.test", ["BODY=8BITMIME", "SIZE=%d" % len(msg)])
        c.rcpt("b@y.test", ["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;b@y.test"])
        code, resp = c.data(msg)  # smtplib dot-stuffs; the sink must undo exactly that
        check(code == 250, "DATA end %d %r" % (code, resp))
    EXPECT["messages"] += 1
    EXPECT["rcpts"] += 1
    eml, meta = stored(MAIN, text(resp))
    check(eml == msg, "stored bytes differ:\n# want %r\n# got  %r" % (msg, eml))
    want = {"mail_from": "a@x.test", "rcpts": ["b@y.test"],
            "mail_params": {"BODY": "8BITMIME", "SIZE": str(len(msg))},
            "rcpt_params": {"b@y.test": {"NOTIFY": "FAILURE,DELAY", "ORCPT": "rfc822;b@y.test"}},
            "helo": "client.test", "transport": "DATA", "tls": None, "msg_in_conn": 1,
            "size": len(msg)}
    for k, v in want.items():
        check(meta.get(k) == v, "json %s: want %r, got %r" % (k, v, meta.get(k)))
    check(meta["peer"].startswith("127.0.0.1:") and isinstance(meta["conn"], int), "peer/conn %r" % meta)


def t_pipelining():
    r = MAIN.raw()
    EXPECT["connections"] += 1
    r.expect(250, b"EHLO pipe.test\r\n")
    r.send(b"MAIL FROM:<>\r\nRCPT TO:<r1@y.test>\r\nRCPT TO:<bounce@y.test>\r\n"
           b"RCPT TO:<r2@y.test>\r\nRCPT TO:<r3@y.test>\r\nDATA\r\n")
    got = [r.reply()[-1][:3] for _ in range(6)]
    check(got == ["250", "250", "550", "250", "250", "354"], "pipelined replies %s" % got)
    body = b"Subject: pipe\r\n\r\nbare\n.not the end\n.\nstill body\r\n..x\r\n"
    last = r.expect(250, body.replace(b"\r\n..x", b"\r\n...x") + b".\r\n")
    # two more transactions in one write; the second one's replies come back batched
    r.send(b"RSET\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<later@y.test>\r\nRCPT TO:<r4@y.test>\r\nDATA\r\n")
    got = [r.reply()[-1][:3] for _ in range(5)]
    check(got == ["250", "250", "450", "250", "354"], "second group %s" % got)
    last2 = r.expect(250, b"x\r\n.\r\n")
    r.expect(221, b"QUIT\r\n")
    r.close()
    EXPECT.update(messages=EXPECT["messages"] + 2, rcpts=EXPECT["rcpts"] + 4,
                  rcpt_rejected=EXPECT["rcpt_rejected"] + 1, rcpt_deferred=EXPECT["rcpt_deferred"] + 1)
    eml, meta = stored(MAIN, last)
    want = b"Subject: pipe\r\n\r\nbare\n.not the end\n.\nstill body\r\n..x\r\n"
    check(eml == want, "stored %r" % eml)
    check(meta["rcpts"] == ["r1@y.test", "r2@y.test", "r3@y.test"] and meta["mail_from"] == "",
          "envelope %r" % meta)
    _, meta2 = stored(MAIN, last2)
    check(meta2["rcpts"] == ["r4@y.test"] and meta2["msg_in_conn"] == 2, "second %r" % meta2)


def t_bdat():
    r = MAIN.raw()
    EXPECT["connections"] += 1
    r.expect(250, b"EHLO bdat.test\r\n")
    c1 = b"Subject: bdat\r\n\r\n.leading dot kept\r\n"
    c2 = b".\r\nbare\nLF\r\n..\r\n"
    r.send(b"MAIL FROM:<b@x.test> BODY=8BITMIME\r\nRCPT TO:<c@y.test>\r\n"
           b"BDAT %d\r\n%sBDAT %d LAST\r\n%s" % (len(c1), c1, len(c2), c2))
    got = [r.reply()[-1] for _ in range(4)]
    check([g[:3] for g in got] == ["250"] * 4, "BDAT replies %s" % got)
    r.send(b"MAIL FROM:<b@x.test>\r\nRCPT TO:<e@y.test>\r\nBDAT 0 LAST\r\n")
    got2 = [r.reply()[-1] for _ in range(3)]
    check([g[:3] for g in got2] == ["250"] * 3, "BDAT 0 LAST replies %s" % got2)
    r.expect(503, b"BDAT 3 LAST\r\nabc")  # no MAIL: the chunk is read, then refused
    r.expect(250, b"NOOP\r\n")
    r.close()
    EXPECT["messages"] += 2
    EXPECT["rcpts"] += 2
    eml, meta = stored(MAIN, got[-1])
    check(eml == c1 + c2, "stored %r" % eml)
    check(meta["transport"] == "BDAT" and meta["rcpts"] == ["c@y.test"], "json %r" % meta)
    eml, meta = stored(MAIN, got2[-1])
    check(eml == b"" and meta["size"] == 0, "empty BDAT message %r" % eml)


def t_rcpt_reply():
    with MAIN.smtp() as c:
        EXPECT["connections"] += 1
        c.ehlo("rules.test")
        c.mail("a@x.test")
        r1, r2, r3 = c.rcpt("bounce@y.test"), c.rcpt("LATER@y.test"), c.rcpt("ok@y.test")
        check(r1 == (550, b"5.1.1 user unknown"), "bounce %r" % (r1,))
        check(r2 == (450, b"4.2.0 try later"), "later %r" % (r2,))
        check(r3[0] == 250, "ok %r" % (r3,))
        code, resp = c.data(b"Subject: rules\r\n\r\nx\r\n")
        check(code == 250, "data %d" % code)
        c.mail("a@x.test")
        check(c.rcpt("bounce@z.test")[0] == 550, "second bounce")
        check(c.docmd("DATA")[0] == 554, "DATA with no accepted recipient is 554")
    EXPECT.update(messages=EXPECT["messages"] + 1, rcpts=EXPECT["rcpts"] + 1,
                  rcpt_rejected=EXPECT["rcpt_rejected"] + 2, rcpt_deferred=EXPECT["rcpt_deferred"] + 1)
    _, meta = stored(MAIN, text(resp))
    check(meta["rcpts"] == ["ok@y.test"], "rcpts %r" % meta["rcpts"])


def t_rset():
    with MAIN.smtp() as c:
        EXPECT["connections"] += 1
        c.ehlo("rset.test")
        c.mail("first@x.test")
        c.rcpt("gone@y.test")
        check(c.rset()[0] == 250, "RSET")
        check(c.docmd("DATA")[0] == 503, "DATA after RSET is 503")
        check(c.docmd("RCPT TO:<a@b.test>")[0] == 503, "RCPT after RSET is 503")
        c.mail("second@x.test")
        c.rcpt("k1@y.test")
        c.rcpt("k2@y.test")
        code, resp = c.data(b"Subject: after rset\r\n\r\n")
        check(code == 250, "data %d" % code)
        c.mail("third@x.test")
        c.rcpt("k3@y.test")
        code, resp2 = c.data(b"third\r\n")
    EXPECT["messages"] += 2
    EXPECT["rcpts"] += 3
    _, meta = stored(MAIN, text(resp))
    check(meta["mail_from"] == "second@x.test" and meta["rcpts"] == ["k1@y.test", "k2@y.test"],
          "envelope %r" % meta)
    _, meta = stored(MAIN, text(resp2))
    check(meta["msg_in_conn"] == 2 and meta["mail_from"] == "third@x.test", "third %r" % meta)


def t_abandoned():
    before = MAIN.files(".eml") + MAIN.files(".json")
    r = MAIN.raw()
    r.expect(250, b"EHLO gone.test\r\n")
    r.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n")
    [r.reply() for _ in range(3)]
    r.send(b"Subject: never\r\n\r\npartial line\r\n")
    r.close()
    r = MAIN.raw()
    r.expect(250, b"EHLO gone.test\r\n")
    r.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nBDAT 5\r\nhello")
    [r.reply() for _ in range(3)]
    r.send(b"BDAT 100 LAST\r\nonly some")
    r.close()
    EXPECT["connections"] += 2
    EXPECT["aborted"] += 2
    time.sleep(0.5)
    after = MAIN.files(".eml") + MAIN.files(".json")
    check(before == after, "files appeared: %s" % sorted(set(after) - set(before)))
    check(not [f for f in os.listdir(MAIN.dir) if f.startswith(".")], "temporary files left")


def t_errors():
    r = MAIN.raw()
    EXPECT["connections"] += 1
    r.expect(250, b"NOOP\r\n")
    check("5.5.1" in r.expect(503, b"MAIL FROM:<a@x.test>\r\n"), "503 5.5.1")
    check("5.5.2" in r.expect(502, b"FROB x\r\n"), "502 5.5.2")
    r.expect(501, b"EHLO\r\n")
    r.expect(250, b"EHLO err.test\r\n")
    r.expect(503, b"RCPT TO:<a@b.test>\r\n")
    r.expect(555, b"MAIL FROM:<a@x.test> AUTH=<>\r\n")
    r.expect(552, b"MAIL FROM:<a@x.test> SIZE=999999999999\r\n")
    r.expect(553, "MAIL FROM:<ü@x.test>\r\n".encode())
    r.expect(501, b"MAIL FROM:a@x.test\r\n")
    r.expect(501, b"BDAT x\r\n")
    r.expect(500, b"A" * 5000 + b"\r\n")
    r.expect(502, b"\x00\xff\xfe\x80garbage\r\n")
    r.expect(250, "MAIL FROM:<ü@x.test> SMTPUTF8\r\n".encode())
    r.expect(250, "RCPT TO:<ö@y.test>\r\n".encode())
    r.expect(503, b"MAIL FROM:<nested@x.test>\r\n")
    r.send(b"NOOP\r\nNOOP\r\n")  # NOOP must end a pipelined group: one violation
    r.expect(250)
    r.expect(250)
    EXPECT["pipelining_violations"] += 1
    r.expect(252, b"VRFY someone\r\n")
    r.expect(221, b"QUIT\r\n")
    check(r.eof(), "connection not closed after QUIT")
    r.close()


def t_summary():
    summary = MAIN.stop()
    for k, v in EXPECT.items():
        check(summary.get(k) == v, "summary %s: want %d, got %r (%s)" % (k, v, summary.get(k), summary))
    n = len(MAIN.files(".eml"))
    check(n == EXPECT["messages"] and len(MAIN.files(".json")) == n + 2, "files %s" % os.listdir(MAIN.dir))


def send_one(sink, n):
    with sink.smtp() as c:
        c.ehlo("defer.test")
        c.mail("a@x.test")
        c.rcpt("b@y.test")
        return c.data(b"Subject: try %d\r\n\r\n" % n)


def t_defer_first():
    s = Sink("defer", "--defer-first", "2")
    got = [send_one(s, 1)]
    check(load(s.dir, "state.json")["defer_first_given"] == 1, "state after one deferral")
    sum1 = s.stop()
    s = Sink("defer", "--defer-first", "2")  # same DIR: keeps counting
    got += [send_one(s, 2), send_one(s, 3), send_one(s, 4)]
    sum2 = s.stop()
    codes = [g[0] for g in got]
    check(codes == [451, 451, 250, 250], "codes %s" % codes)
    check(got[0][1] == b"4.3.0 try again later", "defer text %r" % got[0][1])
    check(s.files(".eml") == ["1.eml", "2.eml"], "stored %s" % s.files(".eml"))
    check((sum1["deferred"], sum1["messages"], sum2["deferred"], sum2["messages"]) == (1, 0, 1, 2),
          "summaries %s %s" % (sum1, sum2))
    s = Sink("defer", "--defer-first", "2")  # message numbers go on after a restart
    check(text(send_one(s, 5)[1]).endswith("queued as 3"), "numbering after restart")
    s.stop()


def t_data_reply():
    s = Sink("reject", "--data-reply", "554 5.7.1 no thanks")
    code, resp = send_one(s, 1)
    summary = s.stop()
    check((code, resp) == (554, b"5.7.1 no thanks"), "reply %d %r" % (code, resp))
    check(s.files(".eml") == [] and summary["rejected"] == 1 and summary["messages"] == 0,
          "summary %s" % summary)


def t_greeting():
    s = Sink("greet554", "--greeting-code", "554")
    r = Raw(s.port, greeting=False)
    r.expect(554)
    r.expect(503, b"EHLO x.test\r\n")
    r.expect(221, b"QUIT\r\n")
    r.close()
    s.stop()
    s = Sink("greet421", "--greeting-code", "421")
    r = Raw(s.port, greeting=False)
    r.expect(421)
    check(r.eof(), "421 greeting keeps the connection")
    r.close()
    s.stop()
    s = Sink("hangup", "--hangup-after-greeting")
    r = Raw(s.port, greeting=False)
    r.expect(220)
    check(r.eof(), "--hangup-after-greeting keeps the connection")
    r.close()
    s.stop()


def t_limits():
    """--count-only, --max-conns, --no-ext, --delay-ms and --duration together."""
    s = Sink("load", "--count-only", "--max-conns", "1", "--no-ext", "chunking",
             "--no-ext", "ENHANCEDSTATUSCODES", "--delay-ms", "100", "--duration", "4")
    t0 = time.time()
    a = Raw(s.port)
    check(time.time() - t0 >= 0.1, "greeting not delayed")
    b = Raw(s.port, greeting=False)
    check(b.expect(421) == "421 sink.test too many connections, try later", "refusal text")
    b.close()
    a.send(b"EHLO load.test\r\n")
    ehlo = [line[4:] for line in a.reply()]
    check("CHUNKING" not in ehlo and "ENHANCEDSTATUSCODES" not in ehlo and "PIPELINING" in ehlo,
          "EHLO %s" % ehlo)
    check(a.expect(502, b"BDAT 0 LAST\r\n") == "502 command not recognized", "BDAT without CHUNKING")
    for i in range(2):
        a.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n")
        [a.reply() for _ in range(4)]
        a.expect(250, b"Subject: %d\r\n\r\nbody\r\n.\r\n" % i)
    a.close()
    rc = s.proc.wait(TIMEOUT)  # --duration ends it without a signal
    summary = load(s.dir, "summary.json")
    check(rc == 0 and os.path.exists(os.path.join(s.dir, "summary.json")), "exit %s" % rc)
    check(s.files(".eml") == [] and s.files(".json") == ["state.json", "summary.json"],
          "count-only wrote %s" % os.listdir(s.dir))
    want = {"connections": 2, "conns_refused": 1, "messages": 2, "rcpts": 4}
    check(all(summary[k] == v for k, v in want.items()), "summary %s" % summary)


# ---- TLS: the certificates, STARTTLS of the sink, the STARTTLS-stripping MITM ----
TLS = None  # the --starttls sink shared by t_starttls, t_starttls_injection, t_tls_summary
LEAVES = ("valid", "valid-rsa", "wrongname", "expired", "selfsigned", "otherca",
          "postern-ecdsa", "postern-rsa")


def cert(name):
    return os.path.join(CERTS, name)


def need_certs():
    if not os.path.exists(cert("fingerprints.txt")):
        raise Skip("no lab certificates (the openssl tool is missing or mkcerts.sh failed)")


def openssl(*args):
    """(exit status, stdout + stderr as text) of the openssl tool."""
    r = subprocess.run(("openssl",) + args, capture_output=True, timeout=30)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def verify(leaf, *opts, ca="ca.pem"):
    return openssl("verify", "-CAfile", cert(ca), *opts, cert(leaf + ".pem"))


def client_ctx():
    """A client context trusting the lab CA only (and checking the name)."""
    return ssl.create_default_context(cafile=cert("ca.pem"))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def colon_hex(digest):
    return ":".join("%02X" % b for b in digest)


def pem_blocks(path):
    with open(path) as f:
        return re.findall(r"-----BEGIN ([A-Z ]+)-----\n[^-]+-----END \1-----\n", f.read())


def t_mkcerts():
    if shutil.which("openssl") is None:
        raise Skip("the openssl tool is missing")
    r = subprocess.run(["bash", MKCERTS, CERTS], capture_output=True, timeout=60)
    check(r.returncode == 0, "mkcerts.sh exit %d: %s" % (r.returncode, r.stderr.decode(errors="replace")))
    names = ["ca.pem", "ca.key", "ca2.pem", "ca2.key", "fingerprints.txt", "postern-ecdsa.pem", "postern-rsa.pem"]
    names += [n + ext for n in LEAVES[:6] for ext in (".pem", ".key")]
    for n in names:
        st = os.stat(cert(n))
        check(st.st_size > 0 and st.st_mode & 0o444 == 0o444, "%s: size %d mode %o" % (n, st.st_size, st.st_mode))
    check(os.stat(CERTS).st_mode & 0o555 == 0o555, "OUTDIR not world-readable")
    for leaf in ("valid", "valid-rsa"):
        for opts in (("-verify_hostname", "mx.tls.test"), ("-verify_hostname", "postern.lab.example"),
                     ("-verify_ip", "198.19.0.2")):
            rc, out = verify(leaf, *opts)
            check(rc == 0, "%s %s does not verify: %s" % (leaf, opts, out))
    rc, out = openssl("x509", "-noout", "-text", "-in", cert("valid.pem"))
    check("prime256v1" in out and "Postern Lab CA" in out, "valid.pem is not ECDSA P-256 by the lab CA")
    rc, out = openssl("x509", "-noout", "-text", "-in", cert("valid-rsa.pem"))
    check("Public-Key: (2048 bit)" in out and "rsaEncryption" in out, "valid-rsa.pem is not RSA-2048")
    rc, out = verify("expired")
    check(rc != 0 and "expired" in out, "expired.pem: %d %s" % (rc, out))
    check(openssl("x509", "-noout", "-checkend", "0", "-in", cert("expired.pem"))[0] != 0, "expired: -checkend 0")
    check(verify("wrongname")[0] == 0, "wrongname.pem should chain to ca.pem")
    rc, out = verify("wrongname", "-verify_hostname", "mx.tls.test")
    check(rc != 0 and "hostname mismatch" in out, "wrongname as mx.tls.test: %d %s" % (rc, out))
    rc, out = verify("selfsigned", "-verify_hostname", "mx.tls.test")
    check(rc != 0 and "self-signed" in out, "selfsigned: %d %s" % (rc, out))
    check(verify("otherca")[0] != 0 and verify("otherca", ca="ca2.pem")[0] == 0, "otherca.pem: by ca2 only")
    check(verify("valid", ca="ca2.pem")[0] != 0, "ca2 must not vouch for valid.pem")
    with open(cert("ca.pem")) as f:
        ca_pem = f.read()
    for name, bits in (("postern-ecdsa", "256 bit"), ("postern-rsa", "2048 bit")):
        path = cert(name + ".pem")
        check(pem_blocks(path) == ["PRIVATE KEY", "CERTIFICATE", "CERTIFICATE"], "%s blocks %s" % (name, pem_blocks(path)))
        with open(path) as f:
            check(f.read().endswith(ca_pem), "%s does not end with ca.pem" % name)
        rc, out = openssl("x509", "-noout", "-text", "-in", path)
        check(bits in out and "DNS:postern.lab.example, DNS:mail.lab.example" in out, "%s: %s" % (name, out[:300]))
        key_pub = openssl("pkey", "-in", path, "-pubout")[1]
        cert_pub = openssl("x509", "-in", path, "-noout", "-pubkey")[1]
        check(key_pub == cert_pub and "PUBLIC KEY" in key_pub, "%s: the key does not match the leaf" % name)
        check(verify(name, "-verify_hostname", "mail.lab.example")[0] == 0, "%s does not verify" % name)
    with open(cert("fingerprints.txt")) as f:
        lines = [line.split() for line in f.read().splitlines()]
    check([ln[0] for ln in lines] == list(LEAVES), "fingerprints.txt names %s" % [ln[0] for ln in lines])
    for name, k1, fp, k2, pfp in lines:
        rc, out = openssl("x509", "-noout", "-fingerprint", "-sha256", "-in", cert(name + ".pem"))
        check(k1 == "sha256-cert" and out.strip().split("=", 1)[1] == fp, "%s cert: %s vs %s" % (name, fp, out))
        r = subprocess.run("openssl x509 -noout -pubkey -in '%s' | openssl pkey -pubin -outform DER"
                           % cert(name + ".pem"), shell=True, capture_output=True, timeout=30)
        check(k2 == "sha256-pubkey" and pfp == colon_hex(hashlib.sha256(r.stdout).digest()),
              "%s pubkey fingerprint %s" % (name, pfp))
    before = {n: (os.stat(cert(n)).st_mtime_ns, read(cert(n))) for n in names}
    r = subprocess.run(["bash", MKCERTS, CERTS], capture_output=True, timeout=60)
    after = {n: (os.stat(cert(n)).st_mtime_ns, read(cert(n))) for n in names}
    check(r.returncode == 0 and before == after, "a second mkcerts.sh run changed files")


def tls_smtp(sink, host="mx.tls.test"):
    """smtplib to the sink on 127.0.0.1, but STARTTLS sends SNI and checks this name."""
    c = sink.smtp()
    c._host = host
    return c


def t_starttls():
    global TLS
    need_certs()
    TLS = Sink("tls", "--starttls", cert("valid.pem"), cert("valid.key"), "--defer-first", "1",
               "--rcpt-reply", "bounce@.*=550 5.1.1 user unknown")
    with tls_smtp(TLS) as c:
        code, resp = c.ehlo("tls.test")
        check("starttls" in c.esmtp_features and resp.splitlines()[-1] == b"STARTTLS",
              "STARTTLS offered last: %r" % resp)
        check(c.docmd("STARTTLS x")[0] == 501, "STARTTLS with an argument")
        code, resp = c.starttls(context=client_ctx())
        check((code, resp) == (220, b"2.0.0 Ready to start TLS"), "STARTTLS %d %r" % (code, resp))
        check(c.docmd("MAIL FROM:<a@x.test>")[0] == 503, "MAIL right after TLS: the EHLO state is gone")
        c.ehlo("tls.test")
        want = {"pipelining", "size", "8bitmime", "smtputf8", "chunking", "dsn", "enhancedstatuscodes"}
        check(set(c.esmtp_features) == want, "features over TLS %s" % sorted(c.esmtp_features))
        check(c.docmd("STARTTLS")[0] == 503, "STARTTLS twice")
        c.mail("a@x.test")
        check(c.rcpt("bounce@y.test")[0] == 550, "--rcpt-reply over TLS")
        c.rcpt("ok@y.test")
        code, resp = c.data(b"Subject: deferred\r\n\r\nx\r\n")
        check((code, resp) == (451, b"4.3.0 try again later"), "--defer-first over TLS: %d %r" % (code, resp))
        c.mail("a@x.test")
        c.rcpt("ok@y.test")
        code, resp = c.data(b"Subject: over TLS\r\n\r\nsecret\r\n")
        check(code == 250, "DATA over TLS %d %r" % (code, resp))
    eml, meta = stored(TLS, text(resp))
    check(eml == b"Subject: over TLS\r\n\r\nsecret\r\n" and meta["helo"] == "tls.test", "stored %r %r" % (eml, meta))
    tls = meta["tls"]
    check(isinstance(tls, dict) and tls.get("version") == "TLSv1.3" and tls.get("cipher", "").startswith("TLS_")
          and tls.get("sni") == "mx.tls.test", "json tls %r" % (tls,))
    with TLS.smtp() as c:  # plaintext on the same sink
        c.ehlo("plain.test")
        c.mail("a@x.test")
        c.rcpt("ok@y.test")
        code, resp = c.data(b"Subject: plain\r\n\r\n")
    check(code == 250 and stored(TLS, text(resp))[1]["tls"] is None, "plaintext json tls not null")
    # the one-file form (key, leaf, CA) with RSA, TLS 1.2 at most, no SNI from the client
    s = Sink("tls-rsa", "--tls-cert", cert("postern-rsa.pem"), "--tls-max-version", "1.2")
    with tls_smtp(s, "postern.lab.example") as c:
        ctx = client_ctx()
        ctx.check_hostname = False  # so that smtplib sends no SNI for 127.0.0.1
        c._host = "127.0.0.1"
        c.starttls(context=ctx)
        cert_der = c.sock.getpeercert(binary_form=True)
        c.ehlo("rsa.test")
        c.mail("a@x.test")
        c.rcpt("ok@y.test")
        code, resp = c.data(b"x\r\n")
    tls = stored(s, text(resp))[1]["tls"]
    check(tls["version"] == "TLSv1.2" and "ECDHE-RSA" in tls["cipher"] and tls["sni"] is None, "rsa tls %r" % tls)
    fps = {ln.split()[0]: ln.split()[2] for ln in read(cert("fingerprints.txt")).decode().splitlines()}
    check(colon_hex(hashlib.sha256(cert_der).digest()) == fps["postern-rsa"], "served certificate not postern-rsa")
    summary = s.stop()
    check((summary["tls_sessions"], summary["plaintext_sessions"]) == (1, 0), "rsa summary %s" % summary)


def t_starttls_injection():
    """STARTTLS\\r\\nRSET\\r\\n in one write: the RSET is discarded, not answered in
    plaintext nor over TLS."""
    need_certs()
    s = socket.create_connection(("127.0.0.1", TLS.port), timeout=TIMEOUT)

    def line():  # unbuffered: nothing after the 220 may be read ahead
        b = b""
        while not b.endswith(b"\r\n"):
            c = s.recv(1)
            check(c, "EOF after %r" % b)
            b += c
        return b
    check(line().startswith(b"220 "), "greeting")
    s.sendall(b"EHLO inject.test\r\n")
    while not line().startswith(b"250 "):
        pass
    s.sendall(b"STARTTLS\r\nRSET\r\n")
    check(line() == b"220 2.0.0 Ready to start TLS\r\n", "STARTTLS reply")
    if select.select([s], [], [], 0.5)[0]:  # the sink must now wait for our ClientHello
        check(False, "answered in plaintext after the 220: %r" % s.recv(256, socket.MSG_PEEK))
    t = client_ctx().wrap_socket(s, server_hostname="mx.tls.test")
    r = Raw.__new__(Raw)
    r.s, r.f = t, t.makefile("rb")
    check(r.expect(250, b"NOOP\r\n") == "250 2.0.0 ok", "the first reply over TLS is not NOOP's")
    r.expect(503, b"MAIL FROM:<a@x.test>\r\n")
    r.send(b"EHLO inject.test\r\n")
    ehlo = r.reply()
    check(ehlo[0].startswith("250-sink.test greets") and "250 ENHANCEDSTATUSCODES" == ehlo[-1], "EHLO %s" % ehlo)
    r.expect(221, b"QUIT\r\n")
    r.close()
    deadline = time.time() + TIMEOUT  # state.json's counters follow each connection's end
    counters = {}
    while time.time() < deadline and counters.get("tls_sessions") != 2:
        time.sleep(0.05)
        if os.path.exists(os.path.join(TLS.dir, "state.json")):
            counters = load(TLS.dir, "state.json")["counters"]
    check(counters["starttls_pipelined"] == 1 and counters["tls_sessions"] == 2, "state.json %s" % counters)


def t_tls_summary():
    need_certs()
    summary = TLS.stop()
    want = dict(connections=3, tls_sessions=2, plaintext_sessions=1, tls_failed=0, starttls_pipelined=1,
                pipelining_violations=1, messages=2, deferred=1, rcpt_rejected=1)
    check(all(summary[k] == v for k, v in want.items()), "summary %s" % summary)
    check(load(TLS.dir, "state.json")["counters"] == summary, "state.json counters differ from summary.json")


def t_starttls_reply():
    need_certs()
    s = Sink("tls454", "--starttls-reply", "454", "4.7.0", "TLS", "not", "available")
    with tls_smtp(s) as c:
        c.ehlo("p.test")
        check("starttls" in c.esmtp_features, "STARTTLS not offered")
        try:
            c.starttls(context=client_ctx())
            check(False, "starttls() succeeded")
        except smtplib.SMTPResponseException as e:
            check((e.smtp_code, e.smtp_error) == (454, b"4.7.0 TLS not available"), "%r" % e)
        c.mail("a@x.test")  # still plaintext, still going
        c.rcpt("b@y.test")
        code, resp = c.data(b"x\r\n")
    check(code == 250 and stored(s, text(resp))[1]["tls"] is None, "after 454: %d %r" % (code, resp))
    summary = s.stop()
    check((summary["plaintext_sessions"], summary["tls_sessions"], summary["tls_failed"]) == (1, 0, 0),
          "summary %s" % summary)


def t_tls_break():
    need_certs()
    s = Sink("tlsbreak", "--tls-break")
    c = tls_smtp(s)
    try:
        c.ehlo("b.test")
        c.starttls(context=client_ctx())
        check(False, "the handshake succeeded")
    except ssl.SSLError as e:
        err = e
    finally:
        c.close()
    summary = s.stop()
    check((summary["tls_failed"], summary["tls_sessions"], summary["plaintext_sessions"]) == (1, 0, 0),
          "summary %s (%s)" % (summary, err))


def t_require_tls():
    need_certs()
    s = Sink("tlsreq", "--starttls", cert("valid-rsa.pem"), cert("valid-rsa.key"), "--require-tls")
    with tls_smtp(s) as c:
        c.ehlo("r.test")
        got = c.mail("a@x.test")
        check(got == (530, b"5.7.0 Must issue a STARTTLS command first"), "plaintext MAIL %r" % (got,))
        check(c.rcpt("b@y.test")[0] == 503, "RCPT after the 530")
        c.starttls(context=client_ctx())
        c.ehlo("r.test")
        check(c.mail("a@x.test")[0] == 250, "MAIL over TLS")
        c.rcpt("b@y.test")
        code, resp = c.data(b"x\r\n")
    check(code == 250 and stored(s, text(resp))[1]["tls"]["sni"] == "mx.tls.test", "DATA %d %r" % (code, resp))
    summary = s.stop()
    check((summary["plaintext_mail_refused"], summary["messages"], summary["tls_sessions"]) == (1, 1, 1),
          "summary %s" % summary)


def fake_upstream(replies):
    """A thread answering EHLO ARG with replies[ARG] (raw bytes), QUIT with
    221; the listening port. For EHLO replies the sink does not give."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    ls.settimeout(TIMEOUT * 3)

    def serve():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            c.settimeout(TIMEOUT)
            f = c.makefile("rb")
            c.sendall(b"220 fake.test ESMTP\r\n")
            try:
                for line in f:
                    word, _, arg = line.strip().partition(b" ")
                    if word.upper() == b"QUIT":
                        c.sendall(b"221 bye\r\n")
                        break
                    c.sendall(replies.get(arg, b"250 ok\r\n") if word.upper() == b"EHLO" else b"250 ok\r\n")
            except OSError:
                pass
            f.close()
            c.close()
    threading.Thread(target=serve, daemon=True).start()
    return ls


def t_mitm():
    need_certs()
    up = Sink("mitm-up", "--starttls", cert("valid.pem"), cert("valid.key"))
    m = Sink("mitm", "--upstream", "127.0.0.1:%d" % up.port, prog=MITM, opts=("--timeout", "20"))
    body = b"Subject: stripped\r\n\r\nSTARTTLS\r\n.STARTTLS\r\nend\r\n"
    with tls_smtp(m) as c:
        c.ehlo("mitm.test")
        want = {"pipelining", "size", "8bitmime", "smtputf8", "chunking", "dsn", "enhancedstatuscodes"}
        check(set(c.esmtp_features) == want, "features through the MITM %s" % sorted(c.esmtp_features))
        try:
            c.starttls(context=client_ctx())
            check(False, "starttls() through the MITM")
        except smtplib.SMTPNotSupportedError:
            pass
        c.mail("a@x.test")
        c.rcpt("b@y.test")
        code, resp = c.data(body)
    check(code == 250, "DATA through the MITM %d %r" % (code, resp))
    eml, meta = stored(up, text(resp))
    check(eml == body and meta["tls"] is None, "stored %r tls %r" % (eml, meta["tls"]))
    r = Raw(m.port)
    r.send(b"EHLO raw.test\r\n")
    ehlo = r.reply()
    check(not [x for x in ehlo if "STARTTLS" in x] and ehlo[-1] == "250 ENHANCEDSTATUSCODES"
          and all(x.startswith("250-") for x in ehlo[:-1]), "EHLO %s" % ehlo)
    check(r.expect(502, b"STARTTLS\r\n") == "502 5.5.1 not available", "STARTTLS answered by the MITM")
    r.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<c@y.test>\r\nSTARTTLS\r\nNOOP\r\n")  # in order
    check([r.reply()[-1][:3] for _ in range(4)] == ["250", "250", "502", "250"], "pipelined replies")
    chunk = b"STARTTLS\r\nDATA\r\n"
    r.send(b"BDAT %d LAST\r\n%s" % (len(chunk), chunk))
    last = r.expect(250)
    r.expect(221, b"QUIT\r\n")
    check(r.eof(), "no EOF after QUIT")
    r.close()
    check(stored(up, last)[0] == chunk, "BDAT chunk changed")
    fake = fake_upstream({b"middle": b"250-fake.test\r\n250-STARTTLS\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
                          b"last": b"250-fake.test\r\n250 starttls\r\n"})
    m2 = Sink("mitm-fake", "--upstream", "127.0.0.1:%d" % fake.getsockname()[1], prog=MITM, opts=())
    r = Raw(m2.port)
    r.send(b"EHLO middle\r\n")
    got = r.reply()
    check(got == ["250-fake.test", "250-PIPELINING", "250 SIZE 1000"], "STARTTLS in the middle: %s" % got)
    r.send(b"EHLO last\r\n")
    got = r.reply()
    check(got == ["250 fake.test"], "STARTTLS last: %s" % got)
    r.expect(221, b"QUIT\r\n")
    r.close()
    fake.close()
    state = m.stop("state.json")
    check((state["stripped"], state["starttls_refused"], state["connections"], state["active"]) == (2, 2, 2, 0),
          "mitm state %s" % state)
    state = m2.stop("state.json")
    check(state["stripped"] == 2, "mitm-fake state %s" % state)
    summary = up.stop()
    check((summary["plaintext_sessions"], summary["tls_sessions"], summary["messages"]) == (2, 0, 2),
          "upstream summary %s" % summary)


TESTS = [
    (t_start, "sink starts on 127.0.0.1 and writes DIR/ready with its address"),
    (t_ehlo, "EHLO offers PIPELINING SIZE 8BITMIME SMTPUTF8 CHUNKING DSN ENHANCEDSTATUSCODES"),
    (t_plain, "smtplib message stored byte for byte (dot-stuffed lines, bare LF/CR), .json envelope"),
    (t_pipelining, "pipelined MAIL/RCPT/DATA groups: replies in order, bare-LF dots kept, rejected RCPT dropped"),
    (t_bdat, "BDAT chunks with LAST concatenated without unstuffing; BDAT 0 LAST; BDAT without MAIL 503"),
    (t_rcpt_reply, "--rcpt-reply gives 550/450 by regex; only accepted recipients stored; DATA 554 with none"),
    (t_rset, "RSET drops the transaction; msg_in_conn counts"),
    (t_abandoned, "a client gone mid-DATA or mid-BDAT stores nothing"),
    (t_errors, "502/503/501/555/552/553/500 replies, garbage survives, NOOP;NOOP counted as pipelining violation"),
    (t_summary, "SIGTERM: clean exit, summary.json counters match, ready removed"),
    (t_defer_first, "--defer-first 2 counts across a restart (451 4.3.0 twice, then 250); numbering continues"),
    (t_data_reply, "--data-reply 554: rejected, nothing stored, counted"),
    (t_greeting, "--greeting-code 554 answers 503 until QUIT; 421 closes"),
    (t_limits, "--count-only, --max-conns 1 (421 4.7.0), --no-ext, --delay-ms, --duration"),
    (t_mkcerts, "mkcerts.sh: CAs, valid (ECDSA, RSA), wrongname, expired, selfsigned, otherca, "
     "postern-*.pem (key, leaf, CA), fingerprints.txt as openssl computes them; idempotent"),
    (t_starttls, "--starttls: 220 2.0.0, EHLO state reset, --defer-first/--rcpt-reply over TLS, json tls "
     "{TLSv1.3, cipher, sni}; --tls-cert one-file RSA with --tls-max-version 1.2"),
    (t_starttls_injection, "STARTTLS\\r\\nRSET\\r\\n in one write: RSET unanswered in plaintext and over TLS"),
    (t_tls_summary, "TLS sink summary: tls_sessions, plaintext_sessions, starttls_pipelined; state.json counters"),
    (t_starttls_reply, "--starttls-reply 454: smtplib.starttls raises 454, the session goes on in plaintext"),
    (t_tls_break, "--tls-break: the client's handshake fails with ssl.SSLError; tls_failed counted"),
    (t_require_tls, "--require-tls: plaintext MAIL gets 530 5.7.0, MAIL over TLS 250"),
    (t_mitm, "mitm_strip.py: STARTTLS stripped from EHLO (middle or last), client STARTTLS gets 502, "
     "message and BDAT with STARTTLS lines relayed, json tls null, stripped counted"),
]


def bail(*_):
    print("Bail out! self-test took longer than 170 s (work dir %s)" % WORK, flush=True)
    for p in SINKS:
        if p.poll() is None:
            p.kill()
    os._exit(1)


def main():
    signal.signal(signal.SIGALRM, bail)
    signal.alarm(170)
    print("1..%d" % len(TESTS), flush=True)
    failed = 0
    for n, (fn, desc) in enumerate(TESTS, 1):
        try:
            fn()
            print("ok %d - %s" % (n, desc), flush=True)
        except Skip as e:
            print("ok %d - %s # SKIP %s" % (n, desc, e), flush=True)
        except Exception as e:  # AssertionError, socket errors, smtplib errors alike
            failed += 1
            print("not ok %d - %s" % (n, desc))
            print("# %s: %s" % (type(e).__name__, e))
            if LOGS:
                with open(LOGS[-1], errors="replace") as f:
                    for line in f.read().splitlines()[-15:]:
                        print("#   " + line)
            sys.stdout.flush()
    for p in SINKS:
        if p.poll() is None:
            p.kill()
            p.wait()
    if failed:
        print("# work directory kept: %s" % WORK)
    else:
        shutil.rmtree(WORK, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
