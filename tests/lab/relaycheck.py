#!/usr/bin/env python3
"""tests/lab/relaycheck.py - end-to-end checks of the relay in the lab: send
messages through Postern with Python smtplib (and raw BDAT), remember what
was sent and what got a 250, then find each message at the next hop (a
tests/lab/smtpsink.py directory) and compare it byte for byte.

  relaycheck.py send HOST LOG [--count N] [--threads T] [--per-conn K]
                [--rcpts R] [--kinds K1,K2,..] [--domain D] [--deadline S]
      Send N messages (kinds in rotation) over T threads, K messages per
      connection, R recipients each. Writes the plan, the ids of all N
      messages, to LOG.plan, and appends one JSON line per message to LOG:
      {"id", "kind", "rcpts", "code", "reply", "data" (hex of the bytes as
      the relay must store them), "refused" (recipients refused while
      others were accepted)}. Connection errors (a dataplane killed on
      purpose) are recorded as code 0 and the thread reconnects until its
      messages are done or the deadline passes. Prints a JSON summary.
  relaycheck.py compare LOG SINKDIR [--wait S] [--allow-unacked]
      Fails unless every message of the plan got a 250 with every recipient
      accepted, then waits (bounded) until each is in SINKDIR and compares:
      the delivered bytes must be Postern's one Received: header followed
      by exactly the bytes sent, the recipients at the next hop exactly the
      recipients sent, and no message delivered twice. --allow-unacked (a
      test that kills the relay on purpose): a message that never got a 250
      may be absent, and duplicates are allowed (at-least-once), but every
      message that got a 250 must be there, whole. Prints a JSON summary
      {planned, unsent, unacked, acked, delivered, missing, mismatched,
      wrong_rcpts, duplicates, extra}.

Kinds: plain, dots (lines starting with "." and ".."), 8bit (UTF-8 body,
BODY=8BITMIME), utf8 (SMTPUTF8 with a UTF-8 local part), big (200 KB,
several spool chunks), bdat (CHUNKING, three chunks), empty (headers only).
Every message carries "X-Pg-Id: <id>" to be found again.
"""
import argparse
import json
import os
import random
import re
import smtplib
import socket
import sys
import threading
import time

KINDS = ["plain", "dots", "8bit", "utf8", "big", "bdat", "empty"]


def body_for(kind, mid, rng):
    """The message as it must arrive (CRLF lines, no dot-stuffing)."""
    hdr = (f"From: <sender@pg-cli.example>\r\nTo: <rcpt@example.org>\r\n"
           f"Subject: relaycheck {kind} {mid}\r\nMessage-ID: <{mid}@pg-cli.example>\r\n"
           f"X-Pg-Id: {mid}\r\n")
    if kind == "empty":
        return (hdr + "\r\n").encode()
    if kind == "dots":
        text = ".\r\n..\r\n.leading dot\r\n...three\r\nend. \r\n.\r\n"
    elif kind in ("8bit", "utf8"):
        hdr += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n" \
               "Content-Transfer-Encoding: 8bit\r\n"
        text = "Grüße aus Köln – ½ € · 日本語のテキスト\r\n" * 20
    elif kind == "big":
        line = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(76))
        text = "".join(f"{i:06d} {line}\r\n" for i in range(200 * 1024 // 84))
    else:
        text = "".join(f"line {i} of message {mid}\r\n" for i in range(rng.randint(3, 40)))
    return (hdr + "\r\n" + text).encode("utf-8")


def stuff(data):
    out = re.sub(rb"(?m)^\.", b"..", data)
    return out


def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("connection closed")
        lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
        if len(lines[-1]) < 4 or lines[-1][3] != "-":
            return int(lines[-1][:3]), " ".join(lines)


def send_bdat(host, port, sender, rcpts, data):
    s = socket.create_connection((host, port), timeout=60)
    f = s.makefile("rb")
    try:
        read_reply(f)
        s.sendall(b"EHLO pg-cli.example\r\n")
        read_reply(f)
        s.sendall(f"MAIL FROM:<{sender}>\r\n".encode())
        code, text = read_reply(f)
        if code != 250:
            return code, text
        ok = 0
        for r in rcpts:
            s.sendall(f"RCPT TO:<{r}>\r\n".encode())
            code, text = read_reply(f)
            ok += code == 250
        if ok == 0:
            return code, text
        third = max(1, len(data) // 3)
        parts = [data[:third], data[third:2 * third], data[2 * third:]]
        for i, p in enumerate(parts):
            last = i == len(parts) - 1
            s.sendall(f"BDAT {len(p)}{' LAST' if last else ''}\r\n".encode() + p)
            code, text = read_reply(f)
            if code != 250:
                return code, text
        s.sendall(b"QUIT\r\n")
        return code, text
    finally:
        s.close()


class Sender:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.log = open(args.log, "a")
        self.stats = {"sent": 0, "acked": 0, "refused": 0, "errors": 0}

    def record(self, rec):
        with self.lock:
            self.log.write(json.dumps(rec) + "\n")
            self.log.flush()
            self.stats["sent"] += 1
            if rec["code"] == 250:
                self.stats["acked"] += 1
            elif rec["code"] == 0:
                self.stats["errors"] += 1
            else:
                self.stats["refused"] += 1

    def run(self, tid, todo):
        a = self.args
        rng = random.Random(tid * 7919 + a.seed)
        kinds = a.kinds.split(",")
        deadline = time.monotonic() + a.deadline
        i = 0
        smtp = None
        in_conn = 0
        while i < len(todo) and time.monotonic() < deadline:
            n = todo[i]
            kind = kinds[n % len(kinds)]
            mid = f"{a.prefix}{n:07d}"
            data = body_for(kind, mid, rng)
            utf8 = kind == "utf8"
            rcpts = [(f"rcpt{n}-{k}" if not utf8 else f"jürgen{n}-{k}") + f"@{a.domain}"
                     for k in range(a.rcpts)]
            sender = "sender@pg-cli.example"
            rec = {"id": mid, "kind": kind, "rcpts": rcpts, "code": 0, "reply": "",
                   "data": data.hex()}
            try:
                if kind == "bdat":
                    code, text = send_bdat(a.host, a.port, sender, rcpts, data)
                    rec["code"], rec["reply"] = code, text
                else:
                    if smtp is None or in_conn >= a.per_conn:
                        if smtp is not None:
                            try:
                                smtp.quit()
                            except Exception:
                                pass
                        smtp = smtplib.SMTP(a.host, a.port, local_hostname="pg-cli.example",
                                            timeout=60)
                        smtp.ehlo()
                        in_conn = 0
                    opts = ["BODY=8BITMIME"] if kind in ("8bit", "utf8", "big") else []
                    if utf8:
                        opts.append("SMTPUTF8")
                    # the bytes are CRLF already: smtplib only dot-stuffs them
                    refused = smtp.sendmail(sender, rcpts, data, mail_options=opts)
                    in_conn += 1
                    rec["code"] = 250
                    rec["reply"] = "250"
                    rec["refused"] = {k: list(map(str, v)) for k, v in refused.items()}
            except smtplib.SMTPResponseException as e:
                rec["code"], rec["reply"] = e.smtp_code, str(e.smtp_error)
                smtp = None
            except smtplib.SMTPRecipientsRefused as e:
                rec["code"], rec["reply"] = 554, str(e.recipients)
                smtp = None
            except (OSError, smtplib.SMTPException, ConnectionError) as e:
                rec["code"], rec["reply"] = 0, f"{type(e).__name__}: {e}"
                smtp = None
                time.sleep(0.2)  # the relay is down: reconnect after a moment
            self.record(rec)
            i += 1
        if smtp is not None:
            try:
                smtp.quit()
            except Exception:
                pass


def plan_ids(a):
    return [f"{a.prefix}{n:07d}" for n in range(a.count)]


def cmd_send(a):
    with open(a.log + ".plan", "w") as f:
        json.dump({"count": a.count, "ids": plan_ids(a)}, f)
    s = Sender(a)
    threads = []
    for t in range(a.threads):
        todo = list(range(t, a.count, a.threads))
        th = threading.Thread(target=s.run, args=(t, todo), daemon=True)
        th.start()
        threads.append(th)
    for th in threads:
        th.join(a.deadline + 120)
    print(json.dumps(s.stats))
    return 0


def strip_received(data):
    """Postern's Received: header (first, with its continuation lines) and the rest."""
    if not data.startswith(b"Received:"):
        return None, data
    pos = data.index(b"\r\n") + 2
    while data[pos:pos + 1] in (b" ", b"\t"):
        pos = data.index(b"\r\n", pos) + 2
    return data[:pos], data[pos:]


def cmd_compare(a):
    sent = {}
    for line in open(a.log):
        rec = json.loads(line)
        sent.setdefault(rec["id"], []).append(rec)
    try:
        planned = json.load(open(a.log + ".plan"))["ids"]
    except (OSError, ValueError, KeyError) as e:
        print(json.dumps({"error": f"no plan for {a.log}: {e}"}))
        return 1
    unsent = [k for k in planned if k not in sent]
    acked = {k: v for k, v in sent.items() if any(r["code"] == 250 for r in v)}
    unacked = {k: [r["code"] for r in v] for k, v in sent.items() if k not in acked}
    part_refused = {k: next(r for r in v if r["code"] == 250).get("refused")
                    for k, v in acked.items() if next(r for r in v if r["code"] == 250).get("refused")}
    deadline = time.monotonic() + a.wait
    while True:
        found = {}
        extra = 0
        for name in os.listdir(a.sinkdir):
            # the envelope (.json) is written after the message (.eml)
            if not name.endswith(".eml") or not os.path.exists(os.path.join(a.sinkdir, name[:-4] + ".json")):
                continue
            data = open(os.path.join(a.sinkdir, name), "rb").read()
            m = re.search(rb"\r\nX-Pg-Id: (\S+)\r\n", data)
            if m is None:
                extra += 1
                continue
            env = json.load(open(os.path.join(a.sinkdir, name[:-4] + ".json")))
            found.setdefault(m.group(1).decode(), []).append((name, data, env))
        missing = [k for k in acked if k not in found]
        if not missing or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    mismatched, wrong_rcpts, dups = [], [], 0
    for k in acked:
        rec = next(r for r in acked[k] if r["code"] == 250)
        want = bytes.fromhex(rec["data"])
        want_rcpts = sorted(r for r in rec["rcpts"] if r not in (rec.get("refused") or {}))
        got_rcpts = set()
        for name, data, env in found.get(k, []):
            rcv, rest = strip_received(data)
            if rcv is None or rest != want:
                mismatched.append(name)
            got_rcpts.update(env.get("rcpts", []))
        if k in found and sorted(got_rcpts) != want_rcpts:
            wrong_rcpts.append({"id": k, "want": want_rcpts, "got": sorted(got_rcpts)})
        dups += max(0, len(found.get(k, [])) - 1)
    out = {"planned": len(planned), "unsent": unsent[:20], "nunsent": len(unsent),
           "unacked": dict(list(unacked.items())[:20]), "nunacked": len(unacked),
           "partly_refused": dict(list(part_refused.items())[:5]), "npartly_refused": len(part_refused),
           "acked": len(acked), "delivered": len(acked) - len(missing), "missing": missing[:20],
           "nmissing": len(missing), "mismatched": mismatched[:20], "nmismatched": len(mismatched),
           "wrong_rcpts": wrong_rcpts[:5], "nwrong_rcpts": len(wrong_rcpts),
           "duplicates": dups, "extra": extra,
           "unacked_delivered": len([k for k in found if k not in acked and k in sent])}
    bad = missing or mismatched or wrong_rcpts
    if not a.allow_unacked:
        # every message of the plan sent, accepted whole, delivered once
        bad = bad or unsent or unacked or part_refused or dups
    print(json.dumps(out))
    return 1 if bad else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("host")
    s.add_argument("log")
    s.add_argument("--port", type=int, default=25)
    s.add_argument("--count", type=int, default=len(KINDS))
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--per-conn", type=int, default=1)
    s.add_argument("--rcpts", type=int, default=1)
    s.add_argument("--kinds", default=",".join(KINDS))
    s.add_argument("--domain", default="example.org")
    s.add_argument("--prefix", default="m")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--deadline", type=float, default=300)
    c = sub.add_parser("compare")
    c.add_argument("log")
    c.add_argument("sinkdir")
    c.add_argument("--wait", type=float, default=60)
    c.add_argument("--allow-unacked", action="store_true",
                   help="messages without a 250 may be absent, duplicates allowed (relay killed on purpose)")
    a = p.parse_args()
    return cmd_send(a) if a.cmd == "send" else cmd_compare(a)


if __name__ == "__main__":
    sys.exit(main())
