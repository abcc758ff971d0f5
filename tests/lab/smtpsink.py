#!/usr/bin/env python3
"""tests/lab/smtpsink.py - a scriptable SMTP next hop for the relay's lab
tests: Postern delivers to it, the test reads what arrived. Python stdlib
only; one thread per connection; bounded by --timeout per connection and
by --duration (or a signal) overall.

Files in DIR (every write is tmp + fsync + rename, the directory fsynced):
  ready            written once listening: "HOST:PORT\\n" (the bound port, so
                   --listen 127.0.0.1:0 works); removed again on exit
  N.eml            the message as received: DATA after dot-unstuffing without
                   the final ".", or the BDAT chunks concatenated; CRLF, bare
                   LF and bare CR kept byte for byte (nothing is normalised)
  N.json           its envelope, written after N.eml (wait for the .json):
                   mail_from, rcpts (accepted), mail_params, rcpt_params
                   ({rcpt: {param: value|true}}), helo, peer, transport
                   ("DATA"|"BDAT"), conn, msg_in_conn, size, id, and tls:
                   null in plaintext, else {"version": "TLSv1.3", "cipher":
                   OpenSSL's name, "sni": the client's SNI name or null}
  state.json       what outlives a restart: how many --defer-first deferrals
                   were already given, and the next message number; and
                   "counters", this run's counters so far (as in summary.json),
                   rewritten (not fsynced) whenever a connection ends
  summary.json     on exit (SIGTERM, SIGINT, --duration): this run's counters
                   connections (accepted TCP connections, refused included),
                   messages and rcpts (accepted messages, their recipients),
                   deferred / rejected (4xx / 5xx end-of-data replies),
                   rcpt_deferred / rcpt_rejected (4xx / 5xx RCPT replies),
                   conns_refused (--max-conns), aborted (disconnect or timeout
                   mid-message), bytes, pipelining_violations (a command that
                   must end a group - or any command when PIPELINING is off -
                   followed by more input before its reply), bare_lf_commands,
                   and per connection one of tls_sessions (a TLS handshake
                   completed), tls_failed (STARTTLS got 220 but no TLS session
                   came of it: a failed handshake, --tls-break), or
                   plaintext_sessions (the others, conns_refused aside);
                   starttls_pipelined (plaintext after STARTTLS, discarded),
                   plaintext_mail_refused (--require-tls 530s)
STARTTLS (RFC 3207), offered last in the EHLO reply when one of these is given:
  --starttls CERT KEY (or --tls-cert [--tls-key]): "220 2.0.0 Ready to start
      TLS", any input pipelined after the command discarded unanswered, a
      server-side TLS 1.2+ handshake, then SMTP over TLS from scratch (the
      EHLO state is reset, STARTTLS no longer offered); --defer-first,
      --rcpt-reply and the rest apply over TLS as in plaintext; CERT may
      hold the chain, and the key too (--tls-cert alone); --tls-max-version
      1.2 keeps TLS 1.3 out
  --starttls-reply CODE TEXT: that reply, and the session stays in plaintext
  --tls-break: 220, then bytes that are not a TLS ServerHello, then close
--hangup-after-greeting: the greeting, then close (a next hop that goes away
  before EHLO).
--require-tls: MAIL outside TLS gets 530 5.7.0 Must issue a STARTTLS command first.
Message numbers N go on from the highest N.eml/N.json already in DIR.
The replies all the RFC 5321/3030/2920 state rules give: 502 5.5.2 unknown
command, 503 5.5.1 bad sequence, 501 5.5.4 syntax, 555 5.5.4 parameter
not offered, 500 5.5.2 line too long (--max-line). Exit status 0 after a
clean stop, 1 when DIR, the TLS certificate or the listening socket cannot
be set up, 2 usage.
"""
import argparse
import json
import os
import re
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
import traceback

EXTENSIONS = ("PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "CHUNKING", "DSN", "ENHANCEDSTATUSCODES")
# RFC 2920 3.1: these may only be the last command of a pipelined group.
GROUP_ENDERS = {"EHLO", "HELO", "DATA", "VRFY", "EXPN", "TURN", "NOOP", "STARTTLS"}
MAIL_RE = re.compile(rb"MAIL FROM: ?<([^<>]*)>( .*)?", re.I | re.S)
RCPT_RE = re.compile(rb"RCPT TO: ?<([^<>]*)>( .*)?", re.I | re.S)
BDAT_RE = re.compile(rb"([0-9]{1,18})( +LAST)? *", re.I)
REPLY_RE = re.compile(r"([2-5][0-9][0-9])(?:[ ]+(.*))?", re.S)
COUNTERS = ("connections", "messages", "rcpts", "deferred", "rejected", "rcpt_deferred",
            "rcpt_rejected", "conns_refused", "aborted", "bytes", "pipelining_violations",
            "bare_lf_commands", "tls_sessions", "plaintext_sessions", "tls_failed",
            "starttls_pipelined", "plaintext_mail_refused")
# --tls-break: what follows the 220 instead of a ServerHello (0x00 is no TLS record type)
TLS_GARBAGE = b"\x00\x01\x02 this is not a TLS ServerHello \xff\xfe\r\n" * 4


def die(msg):
    sys.stderr.write("smtpsink: %s\n" % msg)
    sys.exit(1)


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(directory, name, data, sync_dir=True, durable=True):
    """durable=False: still all or nothing for readers, but no fsync."""
    tmp = os.path.join(directory, ".%s.tmp" % name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, os.path.join(directory, name))
    if sync_dir and durable:
        fsync_dir(directory)


def json_bytes(obj):
    return (json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def printable(b):
    return b.decode("utf-8", "backslashreplace")


class Sink:
    """What the connections share: options, counters, the message numbers
    and the --defer-first state (one lock for all of it)."""

    def __init__(self, args):
        self.args = args
        self.dir = args.dir
        self.lock = threading.Lock()
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.conn_seq = 0
        self.active = {}  # thread -> socket
        self.exts = [e for e in EXTENSIONS if e not in args.no_ext]
        self.tls_ctx = None
        if args.starttls_mode == "tls":
            self.tls_ctx = tls_context(args)
        state = {}
        path = os.path.join(self.dir, "state.json")
        if os.path.exists(path):
            try:
                with open(path) as f:
                    state = json.load(f)
            except (OSError, ValueError) as e:
                die("%s: %s" % (path, e))
        self.defers_given = int(state.get("defer_first_given", 0))
        top = 0
        for name in os.listdir(self.dir):
            m = re.fullmatch(r"([0-9]+)\.(eml|json)", name)
            if m:
                top = max(top, int(m.group(1)))
        self.next_msg = max(top + 1, int(state.get("next_msg", 1)))

    def bump(self, key, n=1):
        with self.lock:
            self.counters[key] += n

    def save_state(self, durable=True):
        """Call with the lock held."""
        atomic_write(self.dir, "state.json",
                     json_bytes({"defer_first_given": self.defers_given, "next_msg": self.next_msg,
                                 "counters": self.counters}), durable=durable)

    def take_defer(self):
        """True while fewer than --defer-first deferrals were given (all runs)."""
        with self.lock:
            if self.defers_given >= self.args.defer_first:
                return False
            self.defers_given += 1
            self.save_state()  # durable before the 451 goes out
            return True

    def store(self, body, size, meta):
        with self.lock:
            n = self.next_msg
            self.next_msg += 1
        meta["id"], meta["size"] = n, size
        if not self.args.count_only:
            atomic_write(self.dir, "%d.eml" % n, body, sync_dir=False)
            atomic_write(self.dir, "%d.json" % n, json_bytes(meta))
        with self.lock:
            self.counters["messages"] += 1
            self.counters["rcpts"] += len(meta["rcpts"])
            self.counters["bytes"] += size
        return n

    def log(self, conn, direction, text):
        if self.args.verbose:
            sys.stderr.write("smtpsink %s %d %s %s\n" % (time.strftime("%H:%M:%S"), conn, direction, text))


class Session:
    """One SMTP connection. The input is a byte stream: every complete
    command in the buffer is answered before more is read, and the replies
    are sent together when the buffer runs dry (so pipelined groups get
    batched replies)."""

    def __init__(self, sink, sock, peer, conn):
        self.sink, self.args, self.sock, self.conn = sink, sink.args, sock, conn
        self.peer = "%s:%d" % (peer[0], peer[1])
        self.buf = bytearray()
        self.out = []
        self.closing = False
        self.discarding = False     # skipping the rest of an over-long line
        self.mode = "cmd"           # cmd | data | bdat
        self.reject_all = False     # after a 5xx greeting: only QUIT
        self.helo = None
        self.esmtp = False
        self.msg_in_conn = 0
        self.tls = None             # {version, cipher, sni} once TLS is up
        self.tls_failed = False     # STARTTLS answered 220, no TLS session came of it
        self.reset()

    # -- replies ------------------------------------------------------------
    def has(self, ext):
        return self.esmtp and ext in self.sink.exts

    def reply(self, code, enh, text):
        if enh and "ENHANCEDSTATUSCODES" in self.sink.exts:
            text = "%s %s" % (enh, text)
        self.raw_reply("%d %s" % (code, text))

    def raw_reply(self, line, delay=True):
        if delay and self.args.delay_ms:
            time.sleep(self.args.delay_ms / 1000.0)
        self.sink.log(self.conn, "S:", line)
        self.out.append(line.encode("utf-8") + b"\r\n")

    def flush(self):
        if self.out:
            data, self.out = b"".join(self.out), []
            self.sock.sendall(data)

    # -- the connection -------------------------------------------------------
    def run(self, refused):
        self.sock.settimeout(self.args.timeout)
        try:
            if refused:
                self.reply(421, "4.7.0", "%s too many connections, try later" % self.args.hostname)
                return self.finish()
            code, text = self.args.greeting
            self.raw_reply("%d %s" % (code, text))
            if (code >= 400 and code < 500) or self.args.hangup_after_greeting:
                return self.finish()
            self.reject_all = code >= 500
            while not self.closing:
                if self.step():
                    continue
                self.flush()
                try:
                    data = self.sock.recv(1 << 16)
                except socket.timeout:
                    self.reply(421, "4.4.2", "%s idle for %g s, closing" % (self.args.hostname, self.args.timeout))
                    self.abort_message()
                    return self.finish()
                if not data:
                    self.sink.log(self.conn, "--", "client closed")
                    break
                self.buf += data
            self.abort_message()
            self.finish()
        except OSError as e:
            self.sink.log(self.conn, "--", "socket error: %s" % e)
            self.abort_message()

    def finish(self):
        """Send what is queued, then half-close and drain briefly so that a
        client with unread input still gets the last reply (no RST)."""
        self.flush()
        if self.tls is not None:
            try:  # close_notify, so a TLS client sees a clean end rather than a truncation
                self.sock.settimeout(2)
                self.sock.unwrap()
            except (OSError, ValueError):
                pass
        try:
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(2)
            deadline = time.time() + 2
            while time.time() < deadline and self.sock.recv(1 << 16):
                pass
        except OSError:
            pass

    def abort_message(self):
        if self.mode in ("data", "bdat") or self.bdat_started:
            self.sink.bump("aborted")
            self.sink.log(self.conn, "--", "message abandoned, nothing stored")
        self.mode = "cmd"
        self.reset()

    def reset(self):
        self.mail = None
        self.mail_params = {}
        self.rcpts = []
        self.rcpt_params = {}
        self.body = bytearray()
        self.size = 0
        self.bdat_started = False

    # -- the input stream -------------------------------------------------------
    def step(self):
        """Consume one unit of input; False when more input is needed."""
        if self.mode == "data":
            return self.step_data()
        if self.mode == "bdat":
            return self.step_bdat()
        buf = self.buf
        i = buf.find(b"\n")
        if self.discarding:
            if i < 0:
                buf.clear()
                return False
            del buf[:i + 1]
            self.discarding = False
            return True
        if i < 0:
            if len(buf) >= self.args.max_line:
                self.reply(500, "5.5.2", "line too long")
                buf.clear()
                self.discarding = True
                return True
            return False
        line = bytes(buf[:i])
        del buf[:i + 1]
        if line.endswith(b"\r"):
            line = line[:-1]
        else:
            self.sink.bump("bare_lf_commands")
        if len(line) + 2 > self.args.max_line:
            self.sink.log(self.conn, "C:", "<%d octets>" % len(line))
            self.reply(500, "5.5.2", "line too long")
            return True
        self.sink.log(self.conn, "C:", printable(line))
        verb = self.command(line)
        if self.buf and self.mode == "cmd" and not self.closing and (
                verb in GROUP_ENDERS or not self.has("PIPELINING")):
            self.sink.bump("pipelining_violations")
            self.sink.log(self.conn, "--", "input after %s before its reply" % verb)
        elif self.buf and self.mode == "data":  # client did not wait for the 354
            self.sink.bump("pipelining_violations")
            self.sink.log(self.conn, "--", "message data before the 354")
        return True

    def body_add(self, chunk):
        self.size += len(chunk)
        if not self.args.count_only and self.size <= self.args.max_size:
            self.body += chunk

    def step_data(self):
        buf = self.buf
        if self.at_bol:  # at the start of a line: the end, or a stuffed dot
            if buf[:1] == b".":
                if buf[:3] == b".\r\n":
                    del buf[:3]
                    self.mode = "cmd"
                    self.sink.log(self.conn, "C:", "<%d octets of DATA> ." % self.size)
                    self.end_of_data("DATA")
                    return True
                if len(buf) < 3 and b".\r\n".startswith(bytes(buf)):
                    return False
                del buf[:1]
            elif not buf:
                return False
            self.at_bol = False
        i = buf.find(b"\r\n.")
        if i >= 0:
            self.body_add(buf[:i + 2])
            del buf[:i + 2]
            self.at_bol = True
            return True
        keep = 2 if buf.endswith(b"\r\n") else 1 if buf.endswith(b"\r") else 0
        n = len(buf) - keep
        if n <= 0:
            return False
        self.body_add(buf[:n])
        del buf[:n]
        return True

    def step_bdat(self):
        if self.chunk_left:
            if not self.buf:
                return False
            take = self.buf[:self.chunk_left]
            del self.buf[:len(take)]
            self.chunk_left -= len(take)
            if self.chunk_error is None:
                self.body_add(take)
            if self.chunk_left:
                return True
        self.mode = "cmd"
        self.sink.log(self.conn, "C:", "<%d octets of BDAT>" % self.chunk_size)
        if self.chunk_error:
            self.reply(*self.chunk_error)
        elif self.chunk_last:
            self.end_of_data("BDAT")
        else:
            self.reply(250, "2.0.0", "%d octets received" % self.chunk_size)
        if self.buf and not self.has("PIPELINING"):
            self.sink.bump("pipelining_violations")
        return True

    # -- commands -----------------------------------------------------------------
    def command(self, line):
        verb, _, arg = line.partition(b" ")
        verb = verb.decode("ascii", "replace").upper()
        if self.reject_all:
            if verb == "QUIT":
                self.reply(221, "2.0.0", "bye")
                self.closing = True
            else:
                self.reply(503, "5.5.1", "no SMTP service here, only QUIT")
            return verb
        handler = {"EHLO": self.cmd_ehlo, "HELO": self.cmd_helo, "MAIL": self.cmd_mail,
                   "RCPT": self.cmd_rcpt, "DATA": self.cmd_data, "BDAT": self.cmd_bdat,
                   "RSET": self.cmd_rset, "NOOP": self.cmd_noop, "QUIT": self.cmd_quit,
                   "VRFY": self.cmd_vrfy, "STARTTLS": self.cmd_starttls}.get(verb)
        if handler is None or (verb == "BDAT" and not self.has("CHUNKING")) or (
                verb == "STARTTLS" and not self.args.starttls_mode):
            self.reply(502, "5.5.2", "command not recognized")
        else:
            handler(line, arg.strip(b" "))
        return verb

    def cmd_ehlo(self, line, arg, esmtp=True):
        if not arg:
            return self.reply(501, "5.5.4", "%s needs a domain" % ("EHLO" if esmtp else "HELO"))
        self.reset()
        self.helo = printable(arg)
        self.esmtp = esmtp
        first = "%s greets %s" % (self.args.hostname, self.helo)
        if not esmtp:
            return self.raw_reply("250 " + first)
        lines = [first] + ["SIZE %d" % self.args.max_size if e == "SIZE" else e for e in self.sink.exts]
        if self.args.starttls_mode and self.tls is None:
            lines.append("STARTTLS")
        for k, text in enumerate(lines):
            self.raw_reply("250%s%s" % ("-" if k < len(lines) - 1 else " ", text), delay=k == 0)

    def cmd_helo(self, line, arg):
        self.cmd_ehlo(line, arg, esmtp=False)

    def cmd_starttls(self, line, arg):
        if self.tls is not None:
            return self.reply(503, "5.5.1", "TLS already active")
        if arg:
            return self.reply(501, "5.5.4", "STARTTLS takes no argument")
        if self.mail is not None:
            return self.reply(503, "5.5.1", "MAIL transaction in progress")
        if self.args.starttls_mode == "reply":
            return self.raw_reply("%d %s" % self.args.starttls_reply)
        self.reply(220, "2.0.0", "Ready to start TLS")
        if self.buf:  # RFC 3207 section 4.2: nothing sent in plaintext survives into TLS
            self.sink.bump("starttls_pipelined")
            self.sink.bump("pipelining_violations")
            self.sink.log(self.conn, "--", "%d octets after STARTTLS discarded unanswered" % len(self.buf))
            self.buf.clear()
        self.flush()
        if self.args.starttls_mode == "break":
            self.tls_failed = self.closing = True
            self.sink.log(self.conn, "--", "--tls-break: garbage instead of a ServerHello, closing")
            self.sock.sendall(TLS_GARBAGE)
            return
        self.start_tls()

    def start_tls(self):
        """The server side of the handshake on this connection's socket; on
        success SMTP starts over (RFC 3207 4.2), on failure the connection ends."""
        try:
            tls = self.sink.tls_ctx.wrap_socket(self.sock, server_side=True,
                                                do_handshake_on_connect=False)
        except (OSError, ValueError) as e:
            self.sink.log(self.conn, "--", "TLS: %s" % e)
            self.tls_failed = self.closing = True
            return
        self.sock = tls  # the plain socket object is detached now
        with self.sink.lock:
            if threading.current_thread() in self.sink.active:
                self.sink.active[threading.current_thread()] = tls
        try:
            tls.settimeout(self.args.timeout)
            tls.do_handshake()
        except (OSError, ValueError) as e:  # ssl.SSLError, timeouts, resets
            self.sink.log(self.conn, "--", "TLS handshake failed: %s" % e)
            self.tls_failed = self.closing = True
            return
        self.tls = {"version": tls.version(), "cipher": (tls.cipher() or ("",))[0],
                    "sni": getattr(tls, "sni_name", None)}
        self.sink.log(self.conn, "--", "TLS: %s %s, SNI %s" % (self.tls["version"], self.tls["cipher"],
                                                            self.tls["sni"]))
        self.helo, self.esmtp = None, False
        self.reset()

    def address(self, raw, utf8):
        """The address as str, or a reply tuple when it is refused."""
        if any(c >= 0x80 for c in raw) and not utf8:
            return (553, "5.6.7", "non-ASCII address needs SMTPUTF8")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return (501, "5.1.7", "address is not UTF-8")

    def params(self, raw, allowed):
        """{KEY: value or True} or a reply tuple."""
        out = {}
        for tok in printable(raw or b"").split():
            key, eq, val = tok.partition("=")
            key = key.upper()
            if not re.fullmatch(r"[A-Z0-9][A-Z0-9-]*", key) or key in out or (eq and not val):
                return (501, "5.5.4", "bad parameter %s" % tok)
            ext = allowed.get(key)
            if ext is None or not self.has(ext):
                return (555, "5.5.4", "parameter %s not supported" % key)
            out[key] = val if eq else True
        return out

    def cmd_mail(self, line, arg):
        if self.helo is None:
            return self.reply(503, "5.5.1", "send EHLO or HELO first")
        if self.mail is not None:
            return self.reply(503, "5.5.1", "nested MAIL command")
        if self.args.require_tls and self.tls is None:
            self.sink.bump("plaintext_mail_refused")
            return self.reply(530, "5.7.0", "Must issue a STARTTLS command first")
        m = MAIL_RE.fullmatch(line)
        if not m:
            return self.reply(501, "5.5.4", "syntax: MAIL FROM:<address> [parameters]")
        params = self.params(m.group(2), {"SIZE": "SIZE", "BODY": "8BITMIME", "SMTPUTF8": "SMTPUTF8",
                                          "RET": "DSN", "ENVID": "DSN"})
        if isinstance(params, tuple):
            return self.reply(*params)
        size, body, ret = params.get("SIZE"), params.get("BODY"), params.get("RET")
        if (size is not None and (size is True or not size.isdigit())) or \
                (body is not None and str(body).upper() not in ("7BIT", "8BITMIME")) or \
                (ret is not None and str(ret).upper() not in ("FULL", "HDRS")) or \
                params.get("SMTPUTF8", True) is not True or params.get("ENVID") is True:
            return self.reply(501, "5.5.4", "bad parameter value")
        if size is not None and int(size) > self.args.max_size:
            return self.reply(552, "5.3.4", "message size exceeds fixed limit")
        addr = self.address(m.group(1), "SMTPUTF8" in params)
        if isinstance(addr, tuple):
            return self.reply(*addr)
        self.mail, self.mail_params = addr, params
        self.reply(250, "2.1.0", "sender ok")

    def cmd_rcpt(self, line, arg):
        if self.mail is None:
            return self.reply(503, "5.5.1", "need MAIL before RCPT")
        m = RCPT_RE.fullmatch(line)
        if not m or not m.group(1):
            return self.reply(501, "5.5.4", "syntax: RCPT TO:<address> [parameters]")
        params = self.params(m.group(2), {"NOTIFY": "DSN", "ORCPT": "DSN"})
        if isinstance(params, tuple):
            return self.reply(*params)
        notify = params.get("NOTIFY")
        if notify is True or params.get("ORCPT") is True or (notify is not None and not (
                notify.upper() == "NEVER" or
                set(notify.upper().split(",")) <= {"SUCCESS", "FAILURE", "DELAY"})):
            return self.reply(501, "5.5.4", "bad parameter value")
        addr = self.address(m.group(1), "SMTPUTF8" in self.mail_params)
        if isinstance(addr, tuple):
            return self.reply(*addr)
        if len(self.rcpts) >= self.args.max_rcpts:
            self.sink.bump("rcpt_deferred")
            return self.reply(452, "4.5.3", "too many recipients")
        rule = next((r for r in self.args.rcpt_rules if r[0].fullmatch(addr)), None)
        if rule and rule[1] >= 400:
            self.sink.bump("rcpt_rejected" if rule[1] >= 500 else "rcpt_deferred")
            return self.raw_reply("%d %s" % rule[1:])
        self.rcpts.append(addr)
        self.rcpt_params[addr] = params
        if rule:
            self.raw_reply("%d %s" % rule[1:])
        else:
            self.reply(250, "2.1.5", "recipient ok")

    def cmd_data(self, line, arg):
        if arg:
            return self.reply(501, "5.5.4", "DATA takes no argument")
        if self.mail is None or self.bdat_started:
            return self.reply(503, "5.5.1", "need MAIL before DATA" if self.mail is None
                              else "DATA after BDAT")
        if not self.rcpts:
            return self.reply(554, "5.5.1", "no valid recipients")
        self.mode, self.at_bol = "data", True
        self.raw_reply("354 end data with <CR><LF>.<CR><LF>")

    def cmd_bdat(self, line, arg):
        m = BDAT_RE.fullmatch(arg)
        if not m:
            return self.reply(501, "5.5.4", "syntax: BDAT size [LAST]")
        self.chunk_size = self.chunk_left = int(m.group(1))
        self.chunk_last = m.group(2) is not None
        self.chunk_error = None
        if self.mail is None:
            self.chunk_error = (503, "5.5.1", "need MAIL before BDAT")
        elif not self.rcpts:
            self.chunk_error = (554, "5.5.1", "no valid recipients")
        else:
            self.bdat_started = True
        self.mode = "bdat"

    def cmd_rset(self, line, arg):
        self.reset()
        self.reply(250, "2.0.0", "reset")

    def cmd_noop(self, line, arg):
        self.reply(250, "2.0.0", "ok")

    def cmd_vrfy(self, line, arg):
        if not arg:
            return self.reply(501, "5.5.4", "VRFY needs an argument")
        self.reply(252, "2.5.0", "cannot VRFY, but will take a message for it")

    def cmd_quit(self, line, arg):
        self.reply(221, "2.0.0", "%s closing" % self.args.hostname)
        self.closing = True

    # -- end of data --------------------------------------------------------------------
    def end_of_data(self, transport):
        self.msg_in_conn += 1
        args, sink = self.args, self.sink
        if sink.take_defer():
            sink.bump("deferred")
            self.reply(451, "4.3.0", "try again later")
        elif self.size > args.max_size:
            sink.bump("rejected")
            self.reply(552, "5.3.4", "message size exceeds fixed limit")
        elif args.data_reply and args.data_reply[0] >= 400:
            sink.bump("deferred" if args.data_reply[0] < 500 else "rejected")
            self.raw_reply("%d %s" % args.data_reply)
        else:
            meta = {"mail_from": self.mail, "rcpts": self.rcpts, "mail_params": self.mail_params,
                    "rcpt_params": self.rcpt_params, "helo": self.helo, "peer": self.peer,
                    "transport": transport, "tls": self.tls, "conn": self.conn,
                    "msg_in_conn": self.msg_in_conn}
            n = sink.store(self.body, self.size, meta)
            if args.data_reply:
                self.raw_reply("%d %s" % args.data_reply)
            else:
                self.reply(250, "2.0.0", "ok: queued as %d" % n)
        self.reset()


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, addr, sink, family):
        self.address_family = family
        self.sink = sink
        super().__init__(addr, Handler)


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sink = self.server.sink
        me = threading.current_thread()
        with sink.lock:
            sink.conn_seq += 1
            conn = sink.conn_seq
            sink.counters["connections"] += 1
            refused = sink.args.max_conns is not None and len(sink.active) >= sink.args.max_conns
            if refused:
                sink.counters["conns_refused"] += 1
            else:
                sink.active[me] = self.request
        sink.log(conn, "--", "connection from %s:%d%s" % (self.client_address[0], self.client_address[1],
                                                          " (over --max-conns)" if refused else ""))
        session = None
        try:
            session = Session(sink, self.request, self.client_address, conn)
            session.run(refused)
        except Exception:  # a bug here must not take the sink down
            sys.stderr.write("smtpsink: connection %d: %s" % (conn, traceback.format_exc()))
        finally:
            if session is not None and session.sock is not self.request:
                session.sock.close()  # the TLS socket; socketserver closes the plain one
            with sink.lock:
                sink.active.pop(me, None)
                if not refused:
                    sink.counters["tls_sessions" if session and session.tls else "tls_failed"
                                  if session and session.tls_failed else "plaintext_sessions"] += 1
                try:
                    sink.save_state(durable=False)
                except OSError as e:
                    sys.stderr.write("smtpsink: state.json: %s\n" % e)


def tls_context(args):
    """The server context of --starttls: TLS 1.2 and up (--tls-max-version
    caps it), the client's SNI name noted on its socket."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if args.tls_max_version:
        ctx.maximum_version = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[args.tls_max_version]
    try:
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as e:
        die("TLS certificate %s (key %s): %s" % (args.tls_cert, args.tls_key or "in the same file", e))

    def note_sni(sock, name, _ctx):
        sock.sni_name = name
    ctx.sni_callback = note_sni
    return ctx


def code_text(words, what, default):
    s = " ".join(words)
    m = REPLY_RE.fullmatch(s)
    if not m:
        raise ValueError("%s: want CODE [TEXT] with CODE 200..599, got %r" % (what, s))
    code = int(m.group(1))
    return code, m.group(2) or "%s %s" % ("%c.0.0" % m.group(1)[0], default)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="smtpsink.py", description="A scriptable SMTP next hop for the lab tests; "
        "see the header of tests/lab/smtpsink.py for the files it writes in DIR.")
    p.add_argument("--listen", required=True, metavar="ADDR:PORT",
                   help="where to listen (PORT 0: any; the bound address goes to DIR/ready)")
    p.add_argument("--dir", required=True, help="where messages, state.json, summary.json and ready go")
    p.add_argument("--hostname", default="sink.test", help="name in the greeting and EHLO reply")
    p.add_argument("--no-ext", action="append", default=[], metavar="NAME", type=str.upper,
                   choices=EXTENSIONS, help="do not offer this EHLO extension (repeatable): "
                   + ", ".join(EXTENSIONS))
    p.add_argument("--greeting-code", type=int, default=220, metavar="CODE",
                   help="greeting reply code (default 220); 4xx: close after the greeting; "
                   "5xx: answer 503 to everything but QUIT")
    p.add_argument("--greeting-text", metavar="TEXT", help="greeting text (default by code)")
    p.add_argument("--hangup-after-greeting", action="store_true",
                   help="close the connection right after the greeting, whatever its code")
    p.add_argument("--rcpt-reply", action="append", nargs="+", default=[], metavar=("REGEX=CODE", "TEXT"),
                   help="RCPT whose address (without <>) fully matches REGEX (case-insensitive) "
                   "gets this reply; first match wins; 2xx accepts (repeatable; one word or several)")
    p.add_argument("--defer-first", type=int, default=0, metavar="N",
                   help="the first N end-of-data replies get 451 4.3.0, counted in DIR/state.json "
                   "across connections and restarts")
    p.add_argument("--data-reply", nargs="+", metavar=("CODE", "TEXT"),
                   help="end-of-data reply for every message (2xx: stored; 4xx/5xx: not stored)")
    p.add_argument("--delay-ms", type=int, default=0, metavar="N", help="sleep N ms before each reply")
    p.add_argument("--max-conns", type=int, metavar="N",
                   help="connections beyond N open at once get 421 4.7.0 at greeting")
    p.add_argument("--max-size", type=int, default=104857600, metavar="BYTES",
                   help="SIZE limit, advertised and enforced (default 104857600)")
    p.add_argument("--max-rcpts", type=int, default=1000, metavar="N",
                   help="RCPTs beyond N per message get 452 4.5.3 (default 1000)")
    p.add_argument("--max-line", type=int, default=1000, metavar="OCTETS",
                   help="command line limit including CRLF; longer gets 500 5.5.2 (default 1000)")
    p.add_argument("--timeout", type=float, default=300, metavar="SECONDS",
                   help="per-connection idle timeout (default 300)")
    p.add_argument("--duration", type=float, metavar="SECONDS",
                   help="exit after SECONDS (default: run until SIGTERM/SIGINT)")
    p.add_argument("--count-only", action="store_true", help="store no messages, only count them")
    tls = p.add_mutually_exclusive_group()
    tls.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"),
                     help="offer STARTTLS and do TLS with this certificate (chain) and key (PEM)")
    tls.add_argument("--tls-cert", metavar="CERT",
                     help="as --starttls, the key from --tls-key or else from CERT itself")
    tls.add_argument("--starttls-reply", nargs="+", metavar=("CODE", "TEXT"),
                     help="offer STARTTLS but answer it with this reply and stay in plaintext")
    tls.add_argument("--tls-break", action="store_true",
                     help="offer STARTTLS, answer 220, then send garbage and close")
    p.add_argument("--tls-key", metavar="KEY", help="the private key for --tls-cert")
    p.add_argument("--tls-max-version", choices=("1.2", "1.3"),
                   help="highest TLS version of --starttls (default: what OpenSSL has, 1.3)")
    p.add_argument("--require-tls", action="store_true",
                   help="MAIL outside TLS gets 530 5.7.0 Must issue a STARTTLS command first")
    p.add_argument("--verbose", action="store_true", help="log each command and reply to stderr")
    args = p.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or int(port) > 65535:
        p.error("--listen: want ADDR:PORT, got %r" % args.listen)
    args.addr = (host, int(port))
    if not 200 <= args.greeting_code <= 599:
        p.error("--greeting-code: want 200..599")
    default = {2: "%s ESMTP smtpsink" % args.hostname, 4: "%s service not available" % args.hostname,
               5: "%s no SMTP service here" % args.hostname}[args.greeting_code // 100]
    args.greeting = (args.greeting_code, args.greeting_text or default)
    args.rcpt_rules = []
    try:
        for words in args.rcpt_reply:
            m = re.fullmatch(r"(.+)=([2-5][0-9][0-9](?:[ ]+.*)?)", " ".join(words), re.S)
            if not m:
                raise ValueError("--rcpt-reply: want REGEX=CODE [TEXT], got %r" % " ".join(words))
            code, text = code_text([m.group(2)], "--rcpt-reply", "set by --rcpt-reply")
            args.rcpt_rules.append((re.compile(m.group(1), re.I), code, text))
        if args.data_reply:
            args.data_reply = code_text(args.data_reply, "--data-reply", "set by --data-reply")
        if args.starttls_reply:
            args.starttls_reply = code_text(args.starttls_reply, "--starttls-reply", "set by --starttls-reply")
    except (ValueError, re.error) as e:
        p.error(str(e))
    if args.starttls:
        args.tls_cert, args.tls_key = args.starttls
    elif args.tls_key and not args.tls_cert:
        p.error("--tls-key needs --tls-cert")
    args.starttls_mode = ("tls" if args.tls_cert else "reply" if args.starttls_reply else
                          "break" if args.tls_break else None)
    if args.tls_max_version and args.starttls_mode != "tls":
        p.error("--tls-max-version needs --starttls or --tls-cert")
    for name in ("defer_first", "delay_ms", "max_size", "max_rcpts"):
        if getattr(args, name) < 0:
            p.error("--%s must not be negative" % name.replace("_", "-"))
    if args.max_line < 16 or args.timeout <= 0 or (args.max_conns is not None and args.max_conns < 0):
        p.error("--max-line >= 16, --timeout > 0, --max-conns >= 0")
    return args


def main(argv):
    args = parse_args(argv)
    try:
        os.makedirs(args.dir, exist_ok=True)
        for name in ("ready", "summary.json"):
            if os.path.exists(os.path.join(args.dir, name)):
                os.unlink(os.path.join(args.dir, name))
    except OSError as e:
        die("--dir %s: %s" % (args.dir, e))
    sink = Sink(args)
    family = socket.AF_INET6 if ":" in args.addr[0] else socket.AF_INET
    try:
        server = Server(args.addr, sink, family)
    except OSError as e:
        die("cannot listen on %s: %s" % (args.listen, e))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    serving.start()
    bound = server.socket.getsockname()
    where = ("[%s]:%d" if family == socket.AF_INET6 else "%s:%d") % (bound[0], bound[1])
    atomic_write(args.dir, "ready", (where + "\n").encode())
    sink.log(0, "--", "listening on %s, files in %s" % (where, args.dir))
    deadline = None if args.duration is None else time.monotonic() + args.duration
    while not stop.wait(0.2):
        if deadline is not None and time.monotonic() >= deadline:
            break
    try:
        os.unlink(os.path.join(args.dir, "ready"))
    except OSError:
        pass
    server.shutdown()
    server.server_close()
    with sink.lock:
        active = list(sink.active.items())
    for _, sock in active:  # wake the connection threads; a message being stored completes
        try:  # socket.socket's own shutdown: SSLSocket.shutdown would pull the TLS state away
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass
    for thread, _ in active:
        thread.join(10)
    with sink.lock:
        sink.save_state()
        atomic_write(args.dir, "summary.json", json_bytes(sink.counters))
    sink.log(0, "--", "stopped: %s" % json.dumps(sink.counters))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
