#!/usr/bin/env python3
"""tests/lab/smtpsend.py - Python smtplib (and raw SMTP for what smtplib
cannot say) against Postern in the lab. Bounded; prints one JSON line.

  smtpsend.py plain HOST RCPT_DOMAIN NRCPT      one message to NRCPT recipients
  smtpsend.py utf8 HOST RCPT_DOMAIN             SMTPUTF8 + 8BITMIME, UTF-8 addresses
  smtpsend.py bdat HOST RCPT_DOMAIN             CHUNKING: the body in three BDAT chunks
  smtpsend.py smuggle HOST RCPT_DOMAIN [VARIANT] an SMTP smuggling payload: a fake end
                                                of data lf (<LF>.<LF>), cr (<CR>.<CR>),
                                                crlf-lf, lf-crlf, cr-crlf or crlf-cr
"""
import json
import smtplib
import socket
import sys


def reply(f):
    lines = []
    while True:
        line = f.readline().decode("utf-8", "replace").rstrip("\r\n")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return lines


def raw_session(host, script):
    s = socket.create_connection((host, 25), timeout=30)
    f = s.makefile("rb")
    out = [reply(f)[-1]]
    for chunk in script:
        s.sendall(chunk)
        if chunk.startswith(b"EHLO"):
            out.append(reply(f)[-1])
        else:
            out.append(reply(f)[-1])
    s.close()
    return out


def main():
    mode, host, dom = sys.argv[1], sys.argv[2], sys.argv[3]
    res = {"mode": mode}
    if mode == "plain":
        n = int(sys.argv[4])
        rcpts = ["user%d@%s" % (i, dom) for i in range(n)]
        msg = "From: sender@pg-cli.example\r\nTo: user0@%s\r\nSubject: lab %d\r\n\r\nHello.\r\n.leading dot\r\n" % (dom, n)
        with smtplib.SMTP(host, 25, timeout=30) as c:
            c.ehlo("pg-cli.example")
            res["esmtp"] = sorted(c.esmtp_features)
            c.mail("sender@pg-cli.example")
            answers = [c.rcpt(r) for r in rcpts]
            ok = sum(1 for a in answers if a[0] == 250)
            res["rcpt_replies"] = sorted({"%d %s" % (a[0], a[1].decode()) for a in answers if a[0] != 250})
            if ok:
                code, text = c.data(msg)
                res.update(code=code, text=text.decode())
            res["accepted_rcpts"] = ok
    elif mode == "utf8":
        with smtplib.SMTP(host, 25, timeout=30) as c:
            c.ehlo("pg-cli.example")
            c.mail("sénder@pg-cli.example", ["SMTPUTF8", "BODY=8BITMIME"])
            r = c.rcpt("üser@%s" % dom)
            code, text = c.data("Subject: ünïcode\r\n\r\nGrüße aus dem Labor.\r\n".encode())
            res.update(rcpt=r[0], code=code, text=text.decode())
    elif mode == "bdat":
        body = b"Subject: chunks\r\n\r\nfirst chunk\r\n" + b"x" * 5000 + b"\r\nlast\r\n"
        parts = [body[:20], body[20:3000], body[3000:]]
        script = [b"EHLO pg-cli.example\r\n", b"MAIL FROM:<sender@pg-cli.example>\r\n",
                  b"RCPT TO:<user@%s>\r\n" % dom.encode()]
        for i, p in enumerate(parts):
            last = b" LAST" if i == len(parts) - 1 else b""
            script.append(b"BDAT %d%s\r\n" % (len(p), last) + p)
        script.append(b"QUIT\r\n")
        res["replies"] = raw_session(host, script)
        res["code"] = int(res["replies"][-2][:3])
    elif mode == "smuggle":
        # the fake end of data: <LF>.<LF> (default), or the variant named
        seps = {"lf": b"\n.\n", "cr": b"\r.\r", "crlf-lf": b"\r\n.\n", "lf-crlf": b"\n.\r\n",
                "cr-crlf": b"\r.\r\n", "crlf-cr": b"\r\n.\r"}
        sep = seps[sys.argv[4] if len(sys.argv) > 4 else "lf"]
        data = (b"Subject: smuggle\r\n\r\nfirst" + sep + b"MAIL FROM:<evil@attacker.example>\r\n"
                b"RCPT TO:<victim@%s>\r\nDATA\r\nsmuggled\r\n.\r\n" % dom.encode())
        script = [b"EHLO pg-cli.example\r\n", b"MAIL FROM:<sender@pg-cli.example>\r\n",
                  b"RCPT TO:<user@%s>\r\n" % dom.encode(), b"DATA\r\n", data, b"QUIT\r\n"]
        res["replies"] = raw_session(host, script)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
