#!/usr/bin/python3
# tests/lab/dnslab.py - the lab's DNS (DESIGN.md, "The lab"): a lab root
# zone "." delegating the TLD test., which delegates the zones of one or
# more description files; keys made and zones signed at run time with
# ldns-keygen/ldns-signzone (ldnsutils), DS records in the parents, served
# by NSD in pg-srv on the management link (tools/lab's header), and a
# libunbound client (python3-unbound) to ask them from a namespace.
#
#   dnslab.py start DIR [ZONES_FILE...] [--certs CERTDIR]
#       builds keys, zones and configuration in DIR (made if missing, reused
#       for nothing: every start makes new keys) and starts the servers;
#       without ZONES_FILE, tests/lab/dnslab.zones. Prints dnslab.env.
#   dnslab.py stop DIR [SERVER...]     stop all servers of DIR, or some
#   dnslab.py serve DIR [SERVER...]    start (again) servers of a built DIR
#   dnslab.py status DIR
#   dnslab.py query DIR NAME TYPE [--netns NS] [--fresh]
#   dnslab.py query DIR --batch [--netns NS]   "NAME TYPE" lines on stdin
#       resolve with libunbound configured by DIR/unbound.conf, from
#       namespace NS (default pg-dp, so over the management link); one JSON
#       line per query: qname qtype rcode dnssec (secure|insecure|bogus)
#       why_bogus havedata nxdomain canonname ttl data (presentation form).
#   dnslab.py tlsa USAGE SELECTOR MTYPE CERT.pem   the TLSA data for CERT
#
# Servers (SERVER names): root 198.18.255.53 (a.root.test, zone "."),
# tld 198.18.255.54 (ns1.nic.test, test.), zones 198.18.255.55
# (ns2.nic.test, every zone of the description files), lame 198.18.255.56
# (lame.nic.test, NSD with no zone: REFUSED). dead.nic.test 198.18.255.57
# has no server (port unreachable), silent.nic.test 198.18.255.58 has its
# DNS dropped by tools/lab (timeouts).
#
# Files in DIR: root.key (trust anchor: the root KSK's DNSKEY), root.ds (the
# same as DS), root.hints, unbound.conf (an unbound/libunbound config:
# hints, anchor, local-zone "test." nodefault), dnslab.env (shell
# variables), zones.txt (one line per zone: name, kind, server, DS),
# zones/ (sources and signed zones), keys/, run/ (NSD configs, pids, logs).
# The format of the description files is in tests/lab/dnslab.zones.
#
# Exit: 0 done, 1 failed (a message says what), 2 usage.
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ZONES = os.path.join(HERE, "dnslab.zones")
MKCERTS = os.path.join(HERE, "mkcerts.sh")
NSD = "/usr/sbin/nsd"
# The lab's namespaces; the variables are for developing this tool in
# namespaces of one's own while the shared lab is busy.
SERVER_NS = os.environ.get("DNSLAB_SERVER_NS", "pg-srv")
CLIENT_NS = os.environ.get("DNSLAB_CLIENT_NS", "pg-dp")
# one directory at a time serves the lab; tools/lab down stops it
REGISTRY = os.environ.get("DNSLAB_REGISTRY", "/run/postern-lab/dnslab.dir")

# name -> (address, host name, what it serves)
SERVERS = {
    "root": ("198.18.255.53", "a.root.test.", "the lab root zone"),
    "tld": ("198.18.255.54", "ns1.nic.test.", "test."),
    "zones": ("198.18.255.55", "ns2.nic.test.", "the zones below test."),
    "lame": ("198.18.255.56", "lame.nic.test.", "no zone (REFUSED)"),
}
# lame=KIND -> the name server a lame delegation points at
LAME_NS = {
    "refused": ("lame.nic.test.", "198.18.255.56"),
    "dead": ("dead.nic.test.", "198.18.255.57"),
    "silent": ("silent.nic.test.", "198.18.255.58"),
}
SOA_TIMERS = "3600 900 604800"
KEY_ALG = "ECDSAP256SHA256"
# RRSIGs dated entirely in the past, for "expired" zones and $EXPIRE
EXPIRED_INCEPTION, EXPIRED_EXPIRATION = "20200101000000", "20200201000000"


class LabError(Exception):
    pass


def die(msg, code=1):
    print("dnslab: %s" % msg, file=sys.stderr)
    sys.exit(code)


def run(argv, **kw):
    """Run a tool; its failure is a LabError naming it and its stderr."""
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise LabError("%s failed (exit %d): %s" % (" ".join(argv[:3]), p.returncode, (p.stderr or p.stdout).strip()))
    return p.stdout


def fqdn(name, origin):
    """A zone-file owner or target name made absolute and lowercase."""
    if name == "@":
        return origin
    if name.endswith("."):
        return name.lower()
    return (name + "." + origin).lower() if origin != "." else (name + ".").lower()


def in_zone(name, zone):
    return zone == "." or name == zone or name.endswith("." + zone)


# --- description files -----------------------------------------------------

class Zone:
    def __init__(self, name, where):
        self.name = name  # absolute, lowercase, "." for the root
        self.where = where  # file:line of its first $ZONE
        self.signed = True
        self.nsec3 = False
        self.expired = False
        self.lame = None  # None or a key of LAME_NS
        self.ds_wrong = False
        self.ttl = 300
        self.negttl = 60
        self.records = []  # (owner, ttl or None, type, rdata, where)
        self.tamper = {}  # (owner, type) -> [rdata]
        self.expire = set()  # (owner, type)
        self.parent = None
        self.children = []
        self.ksk = self.zsk = None
        self.ds = []  # DS lines for the parent (presentation, absolute)

    @property
    def file(self):
        return "root" if self.name == "." else self.name.rstrip(".")

    def kind(self):
        if self.lame:
            return "lame-" + self.lame
        k = ["signed" if self.signed else "unsigned"]
        if self.signed:
            k.append("nsec3" if self.nsec3 else "nsec")
            if self.expired:
                k.append("expired")
            if self.ds_wrong:
                k.append("ds-wrong")
        return ",".join(k)


RR_TYPES = {"A", "AAAA", "MX", "TXT", "CNAME", "NS", "TLSA", "SRV", "PTR", "CAA", "DNAME", "SSHFP", "HINFO"}


def tlsa_data(usage, selector, mtype, pem):
    """TLSA certificate association data (RFC 6698 §2.1) for a PEM file."""
    if not os.path.isfile(pem):
        raise LabError("no certificate %s" % pem)
    if selector == 0:
        p = subprocess.run(["openssl", "x509", "-in", pem, "-outform", "DER"], capture_output=True)
    elif selector == 1:
        pub = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-pubkey"], capture_output=True)
        if pub.returncode != 0:
            raise LabError("openssl x509 -pubkey %s: %s" % (pem, pub.stderr.decode().strip()))
        p = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub.stdout, capture_output=True)
    else:
        raise LabError("TLSA selector %d: only 0 (certificate) and 1 (SubjectPublicKeyInfo)" % selector)
    if p.returncode != 0 or not p.stdout:
        raise LabError("openssl cannot read %s: %s" % (pem, p.stderr.decode().strip()))
    der = p.stdout
    if mtype == 0:
        return der.hex()
    if mtype == 1:
        return hashlib.sha256(der).hexdigest()
    if mtype == 2:
        return hashlib.sha512(der).hexdigest()
    raise LabError("TLSA matching type %d: only 0, 1, 2" % mtype)


def expand_rdata(rtype, rdata, certs, where):
    """TLSA 'U S M pem:FILE' -> the data computed from FILE (in certs)."""
    if rtype != "TLSA":
        return rdata
    f = rdata.split()
    if len(f) == 4 and f[3].startswith("pem:"):
        try:
            u, s, m = int(f[0]), int(f[1]), int(f[2])
        except ValueError:
            raise LabError("%s: TLSA usage, selector and type must be numbers" % where)
        path = f[3][4:]
        if not os.path.isabs(path):
            if certs is None:
                raise LabError("%s: pem:%s needs --certs" % (where, path))
            path = os.path.join(certs, path)
        try:
            return "%d %d %d %s" % (u, s, m, tlsa_data(u, s, m, path))
        except LabError as e:
            raise LabError("%s: %s" % (where, e))
    return rdata


def parse_record(words, origin, where):
    """owner [ttl] [IN] TYPE rdata... -> (owner, ttl, TYPE, rdata)."""
    if len(words) < 3:
        raise LabError("%s: a record needs owner, type and data" % where)
    owner = fqdn(words[0], origin)
    if not in_zone(owner, origin):
        raise LabError("%s: %s is not inside the zone %s" % (where, owner, origin))
    i, ttl = 1, None
    if words[i].isdigit():
        ttl, i = int(words[i]), i + 1
    if i < len(words) and words[i].upper() == "IN":
        i += 1
    if i + 1 >= len(words):
        raise LabError("%s: a record needs a type and data" % where)
    rtype = words[i].upper()
    if rtype not in RR_TYPES:
        raise LabError("%s: record type %s not supported here (%s; SOA and DNSSEC records are made by the tool)" % (where, rtype, " ".join(sorted(RR_TYPES))))
    rdata = " ".join(words[i + 1:])
    return owner, ttl, rtype, rdata


def tokens(line):
    """Zone-file words: "quoted strings" stay one word (with their quotes
    and inner spaces); a ; outside quotes starts a comment."""
    out = []
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"|;|[^\s";]+', line):
        if m.group(0) == ";":
            break
        out.append(m.group(0))
    return out


ZONE_OPTS = "signed unsigned nsec nsec3 expired lame=refused|dead|silent ds=wrong ttl=N negttl=N"


def apply_zone_options(z, opts, where):
    for o in opts:
        if o == "signed":
            z.signed = True
        elif o == "unsigned":
            z.signed = False
        elif o == "nsec":
            z.nsec3 = False
        elif o == "nsec3":
            z.nsec3 = True
        elif o == "expired":
            z.expired = True
        elif o.startswith("lame=") and o[5:] in LAME_NS:
            z.lame = o[5:]
        elif o == "ds=wrong":
            z.ds_wrong = True
        elif re.fullmatch(r"(ttl|negttl)=\d+", o):
            k, v = o.split("=")
            setattr(z, k, int(v))
        else:
            raise LabError("%s: unknown zone option %r (options: %s)" % (where, o, ZONE_OPTS))


def parse_descriptions(paths, certs):
    """Zones by name, root and test. included. Repeated $ZONE blocks of one
    name add to it (options too)."""
    zones = {".": Zone(".", "(built in)"), "test.": Zone("test.", "(built in)")}
    for path in paths:
        try:
            lines = open(path).read().splitlines()
        except OSError as e:
            raise LabError("cannot read %s: %s" % (path, e.strerror))
        cur = None
        for n, line in enumerate(lines, 1):
            where = "%s:%d" % (path, n)
            words = [] if line.lstrip().startswith("#") else tokens(line)
            if not words:
                continue
            d = words[0].upper()
            if d == "$ZONE":
                if len(words) < 2:
                    raise LabError("%s: $ZONE needs a name" % where)
                name = fqdn(words[1], ".") if words[1] != "." else "."
                if not re.fullmatch(r"([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\.)+|\.", name):
                    raise LabError("%s: bad zone name %r" % (where, words[1]))
                if name != "." and not in_zone(name, "test."):
                    raise LabError("%s: zone %s is not under test. (the lab root delegates only test.)" % (where, name))
                if in_zone(name, "nic.test."):
                    raise LabError("%s: nic.test. holds the lab's name servers" % where)
                cur = zones.setdefault(name, Zone(name, where))
                apply_zone_options(cur, words[2:], where)
                if cur.name in (".", "test.") and (cur.lame or not cur.signed or cur.expired or cur.ds_wrong):
                    raise LabError("%s: %s is always signed and served" % (where, cur.name))
            elif cur is None:
                raise LabError("%s: a record before the first $ZONE" % where)
            elif d in ("$TAMPER", "$EXPIRE"):
                if len(words) < 3 or (d == "$TAMPER" and len(words) < 4):
                    raise LabError("%s: %s OWNER TYPE%s" % (where, d, " RDATA" if d == "$TAMPER" else ""))
                owner, rtype = fqdn(words[1], cur.name), words[2].upper()
                if d == "$TAMPER":
                    rdata = expand_rdata(rtype, " ".join(words[3:]), certs, where)
                    cur.tamper.setdefault((owner, rtype), []).append(rdata)
                else:
                    cur.expire.add((owner, rtype))
            elif d.startswith("$"):
                raise LabError("%s: unknown directive %s ($ZONE, $TAMPER, $EXPIRE)" % (where, words[0]))
            else:
                owner, ttl, rtype, rdata = parse_record(words, cur.name, where)
                cur.records.append((owner, ttl, rtype, expand_rdata(rtype, rdata, certs, where), where))
    # the tree: each zone's parent is the closest zone above it
    for z in zones.values():
        if z.name == ".":
            continue
        labels = z.name.split(".")[1:]
        while True:
            up = ".".join(labels) or "."
            if up in zones:
                z.parent = zones[up]
                break
            labels = labels[1:]
        z.parent.children.append(z)
        if z.parent.lame:
            raise LabError("%s: zone %s lies below the lame delegation %s" % (z.where, z.name, z.parent.name))
    for z in zones.values():
        if z.lame and z.records:
            raise LabError("%s: %s is a lame delegation: it has no records" % (z.where, z.name))
        for (owner, rtype) in list(z.tamper) + list(z.expire):
            if not any(r[0] == owner and r[2] == rtype for r in z.records):
                raise LabError("%s: $TAMPER/$EXPIRE %s %s: no such record in %s" % (z.where, owner, rtype, z.name))
            if not z.signed:
                raise LabError("%s: $TAMPER/$EXPIRE in the unsigned zone %s means nothing" % (z.where, z.name))
        for c in z.children:
            for r in z.records:
                if in_zone(r[0], c.name):
                    raise LabError("%s: %s lies below the delegation of %s" % (r[4], r[0], c.name))
    return zones


# --- building ---------------------------------------------------------------

def served_by(z):
    return "root" if z.name == "." else "tld" if z.name == "test." else "zones"


def apex_ns(z):
    return SERVERS[served_by(z)][1]


def make_keys(z, keydir):
    """A KSK and a ZSK (ECDSA P-256, RFC 8624 §3.1), and the DS of the KSK."""
    origin = z.name
    ksk = run(["ldns-keygen", "-a", KEY_ALG, "-k", origin], cwd=keydir).strip()
    zsk = run(["ldns-keygen", "-a", KEY_ALG, origin], cwd=keydir).strip()
    z.ksk, z.zsk = os.path.join(keydir, ksk), os.path.join(keydir, zsk)
    out = run(["ldns-key2ds", "-n", "-2", z.ksk + ".key"])
    # "OWNER TTL IN DS TAG ALG DIGESTTYPE DIGEST" -> without the TTL: the
    # parent's default applies
    z.ds = []
    for l in out.splitlines():
        f = l.split()
        if len(f) == 8 and f[3] == "DS":
            if z.ds_wrong:
                # the KSK's tag and algorithm, the digest of nothing
                f[7] = secrets.token_hex(32)
            z.ds.append("%s\tDS\t%s" % (f[0], " ".join(f[4:])))
    if len(z.ds) != 1:
        raise LabError("ldns-key2ds gave no DS for %s: %r" % (origin, out))


def zone_source(z):
    """The unsigned zone file: SOA, apex NS, the description's records, the
    delegations of the children (NS, and DS when signed) and, in test.,
    the lab's name servers."""
    serial = int(time.time())
    out = ["$ORIGIN %s" % z.name, "$TTL %d" % z.ttl,
           "@\tSOA\t%s hostmaster.nic.test. %d %s %d" % (apex_ns(z), serial, SOA_TIMERS, z.negttl),
           "@\tNS\t%s" % apex_ns(z)]
    if z.name == ".":
        out.append("a.root.test.\tA\t%s" % SERVERS["root"][0])
    if z.name == "test.":
        out.append("a.root.test.\tA\t%s" % SERVERS["root"][0])
        for s in ("tld", "zones", "lame"):
            out.append("%s\tA\t%s" % (SERVERS[s][1], SERVERS[s][0]))
        for ns, addr in LAME_NS.values():
            if ns != SERVERS["lame"][1]:
                out.append("%s\tA\t%s" % (ns, addr))
    for owner, ttl, rtype, rdata, _ in z.records:
        out.append("%s\t%s%s\t%s" % (owner, "%d\t" % ttl if ttl is not None else "", rtype, rdata))
    for c in sorted(z.children, key=lambda c: c.name):
        ns = LAME_NS[c.lame][0] if c.lame else apex_ns(c)
        out.append("%s\tNS\t%s" % (c.name, ns))
        if c.name == "test.":
            out.append("%s\tA\t%s" % (SERVERS["tld"][1], SERVERS["tld"][0]))
        if c.signed and not c.lame:
            out.extend(c.ds)
    return "\n".join(out) + "\n"


def parse_rr(line):
    """A line of ldns-signzone's output -> (owner, type, covered, fields)."""
    f = line.split(";", 1)[0].split()
    if len(f) < 4:
        return None
    owner, rtype = f[0].lower(), f[3].upper()
    covered = f[4].upper() if rtype == "RRSIG" and len(f) > 4 else None
    return owner, rtype, covered, f


def sign(z, zonedir):
    src = os.path.join(zonedir, z.file + ".zone")
    out = src + ".signed"
    now = int(time.time())
    common = ["ldns-signzone", "-o", z.name]
    if z.nsec3:
        common += ["-n", "-t", "0"]  # RFC 9276 §3.1: no extra iterations, no salt
    dates = ["-i", EXPIRED_INCEPTION, "-e", EXPIRED_EXPIRATION] if z.expired else \
        ["-i", str(now - 3600), "-e", str(now + 30 * 86400)]
    run(common + dates + ["-f", out, src, z.ksk, z.zsk])
    lines = open(out).read().splitlines()
    if z.expire:
        # the same zone signed with the same keys in the past: those RRSIGs
        # are valid signatures, only expired (RFC 4035 §5.3.1)
        old = src + ".expired"
        run(common + ["-i", EXPIRED_INCEPTION, "-e", EXPIRED_EXPIRATION, "-f", old, src, z.ksk, z.zsk])
        stale = {}
        for l in open(old).read().splitlines():
            rr = parse_rr(l)
            if rr and rr[1] == "RRSIG" and (rr[0], rr[2]) in z.expire:
                stale.setdefault((rr[0], rr[2]), []).append(l)
        new = []
        for l in lines:
            rr = parse_rr(l)
            if rr and rr[1] == "RRSIG" and (rr[0], rr[2]) in z.expire:
                new.extend(stale.pop((rr[0], rr[2]), []))
                continue
            new.append(l)
        lines = new
        os.unlink(old)
    if z.tamper:
        # records altered after signing: their RRSIGs no longer verify
        new, done = [], set()
        for l in lines:
            rr = parse_rr(l)
            key = (rr[0], rr[1]) if rr else None
            if key in z.tamper:
                if key not in done:
                    f = rr[3]
                    new.extend("%s\t%s\t%s\t%s\t%s" % (f[0], f[1], f[2], f[3], rd) for rd in z.tamper[key])
                    done.add(key)
                continue
            new.append(l)
        lines = new
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    return out


def nsd_conf(dirname, server):
    addr = SERVERS[server][0]
    run_dir = os.path.join(dirname, "run")
    conf = os.path.join(run_dir, "nsd-%s.conf" % server)
    zones = []
    for z in ZONES.values():
        if z.lame or served_by(z) != server:
            continue
        zf = z.file + ".zone" + (".signed" if z.signed else "")
        zones.append('zone:\n\tname: "%s"\n\tzonefile: "%s"\n' % (z.name, zf))
    text = """# NSD for the DNS lab (tests/lab/dnslab.py): %(what)s
server:
\tip-address: %(addr)s
\tport: 53
\tdo-ip4: yes
\tdo-ip6: no
\tserver-count: 1
\ttcp-count: 32
\t# the lab's files belong to root; no chroot, no other user
\tusername: ""
\tchroot: ""
\tzonesdir: "%(zdir)s"
\tdatabase: ""
\tzonelistfile: "%(run)s/nsd-%(s)s.zonelist"
\txfrdfile: "%(run)s/nsd-%(s)s.xfrd"
\txfrdir: "%(run)s"
\tpidfile: "%(run)s/nsd-%(s)s.pid"
\tlogfile: "%(run)s/nsd-%(s)s.log"
\thide-version: yes
\trefuse-any: yes
\tverbosity: 1
remote-control:
\tcontrol-enable: no
%(zones)s""" % {"what": SERVERS[server][2], "addr": addr, "zdir": os.path.join(dirname, "zones"),
                "run": run_dir, "s": server, "zones": "".join(zones)}
    with open(conf, "w") as f:
        f.write(text)
    run(["nsd-checkconf", conf])
    return conf


ZONES = {}


def build(dirname, zones):
    """Keys, zones, client files and NSD configurations for the parsed
    zones, in dirname (its old keys and zones are removed)."""
    global ZONES
    ZONES = zones
    for sub in ("zones", "keys", "run"):
        os.makedirs(os.path.join(dirname, sub), exist_ok=True)
    for sub in ("zones", "keys"):
        for f in os.listdir(os.path.join(dirname, sub)):
            os.unlink(os.path.join(dirname, sub, f))
    keydir = os.path.join(dirname, "keys")
    for z in ZONES.values():
        if z.signed and not z.lame:
            make_keys(z, keydir)
    for z in ZONES.values():
        if z.lame:
            continue
        with open(os.path.join(dirname, "zones", z.file + ".zone"), "w") as f:
            f.write(zone_source(z))
        if z.signed:
            sign(z, os.path.join(dirname, "zones"))
    write_client_files(dirname)
    for s in SERVERS:
        nsd_conf(dirname, s)


def write_client_files(d):
    root = ZONES["."]
    ksk = open(root.ksk + ".key").read().split(";", 1)[0].strip()
    write(d, "root.key", "; the DNS lab's trust anchor: the lab root's KSK (DNSKEY)\n%s\n" % ksk)
    write(d, "root.ds", "; the DNS lab's trust anchor: the lab root's KSK (DS, SHA-256)\n%s\n" %
          "\n".join(l.replace("\tDS\t", "\tIN\tDS\t") for l in root.ds))
    write(d, "root.hints", "; root hints of the DNS lab (tests/lab/dnslab.py)\n"
          ".\t3600000\tIN\tNS\t%s\n%s\t3600000\tIN\tA\t%s\n" % (SERVERS["root"][1], SERVERS["root"][1], SERVERS["root"][0]))
    write(d, "unbound.conf", """# unbound / libunbound (ub_ctx_config) configuration for the DNS lab,
# written by tests/lab/dnslab.py. The lab's names live under test.: without
# the nodefault, unbound answers all of them NXDOMAIN itself (RFC 6761
# special-use zone, a built-in local zone).
server:
\troot-hints: "%(d)s/root.hints"
\ttrust-anchor-file: "%(d)s/root.key"
\tlocal-zone: "test." nodefault
\tdo-ip6: no
""" % {"d": d})
    env = {
        "DNSLAB_DIR": d,
        "DNSLAB_TRUST_ANCHOR": os.path.join(d, "root.key"),
        "DNSLAB_TRUST_ANCHOR_DS": os.path.join(d, "root.ds"),
        "DNSLAB_ROOT_HINTS": os.path.join(d, "root.hints"),
        "DNSLAB_UNBOUND_CONF": os.path.join(d, "unbound.conf"),
        "DNSLAB_ROOT": SERVERS["root"][0],
        "DNSLAB_TLD": SERVERS["tld"][0],
        "DNSLAB_ZONES": SERVERS["zones"][0],
        "DNSLAB_LAME": SERVERS["lame"][0],
        "DNSLAB_DEAD": LAME_NS["dead"][1],
        "DNSLAB_SILENT": LAME_NS["silent"][1],
        "DNSLAB_CLIENT_ADDR": "198.18.255.1",
    }
    write(d, "dnslab.env", "".join("%s=%s\n" % (k, shell_quote(v)) for k, v in env.items()))
    rows = []
    for z in sorted(ZONES.values(), key=lambda z: (z.name.count("."), z.name)):
        srv = LAME_NS[z.lame][0] if z.lame else apex_ns(z)
        ds = z.ds[0].split("\t")[2] if z.ds and z.signed and not z.lame else "-"
        rows.append("%s\t%s\t%s\t%s\n" % (z.name, z.kind(), srv, ds))
    write(d, "zones.txt", "# zone\tkind\tname server\tDS in the parent (tag alg digest-type digest)\n" + "".join(rows))


def shell_quote(v):
    return "'" + v.replace("'", "'\\''") + "'"


def write(d, name, text):
    with open(os.path.join(d, name), "w") as f:
        f.write(text)


# --- the servers --------------------------------------------------------------

def pid_of(d, server):
    """The pid of DIR's NSD for server, if that process is really it."""
    try:
        pid = int(open(os.path.join(d, "run", "nsd-%s.pid" % server)).read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if is_our_nsd(pid, d, server) else None


def is_our_nsd(pid, d, server):
    try:
        if not os.path.samefile("/proc/%d/exe" % pid, NSD):
            return False
        cmd = open("/proc/%d/cmdline" % pid, "rb").read().split(b"\0")
    except OSError:
        return False
    return os.path.join(d, "run", "nsd-%s.conf" % server).encode() in cmd


def nsd_pids(d, server):
    """Every process (NSD's main, xfrd and server children) of that config."""
    pids = []
    for e in os.listdir("/proc"):
        if e.isdigit() and is_our_nsd(int(e), d, server):
            pids.append(int(e))
    return pids


def stop_servers(d, servers):
    for s in servers:
        pids = nsd_pids(d, s)
        for p in pids:
            try:
                os.kill(p, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.time() + 5
        while pids and time.time() < deadline:
            pids = [p for p in pids if os.path.exists("/proc/%d" % p) and is_our_nsd(p, d, s)]
            time.sleep(0.05)
        for p in pids:
            print("dnslab: nsd %s (%d) ignored SIGTERM for 5 s, killing" % (s, p), file=sys.stderr)
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.unlink(os.path.join(d, "run", "nsd-%s.pid" % s))
        except FileNotFoundError:
            pass


def start_servers(d, servers):
    for s in servers:
        conf = os.path.join(d, "run", "nsd-%s.conf" % s)
        if not os.path.exists(conf):
            raise LabError("%s is not built (dnslab.py start first)" % d)
        if pid_of(d, s):
            continue
        p = subprocess.run(["ip", "netns", "exec", SERVER_NS, NSD, "-c", conf], capture_output=True, text=True)
        if p.returncode != 0:
            raise LabError("nsd %s did not start: %s %s" % (s, p.stderr.strip(), log_tail(d, s)))
    # ready when each answers a query over the management link (from pg-dp)
    probe = subprocess.run(["ip", "netns", "exec", CLIENT_NS, sys.executable, os.path.abspath(__file__), "probe", d] + servers,
                           capture_output=True, text=True)
    if probe.returncode != 0:
        raise LabError("servers not answering: %s" % (probe.stdout + probe.stderr).strip())


def log_tail(d, s):
    try:
        return "(log: %s)" % " | ".join(open(os.path.join(d, "run", "nsd-%s.log" % s)).read().splitlines()[-5:])
    except OSError:
        return ""


def dns_query(addr, qname, qtype, timeout):
    """One UDP query (RD clear); returns (rcode, aa) or None on timeout. Only
    for the readiness probe: answers are read by libunbound."""
    qid = secrets.randbits(16)
    wire = b"".join(bytes([len(l)]) + l.encode() for l in qname.rstrip(".").split(".") if l) + b"\0"
    pkt = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + wire + struct.pack("!HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as so:
        so.settimeout(timeout)
        so.connect((addr, 53))
        so.send(pkt)
        try:
            while True:
                r = so.recv(4096)
                if len(r) >= 12 and struct.unpack("!H", r[:2])[0] == qid:
                    flags = struct.unpack("!H", r[2:4])[0]
                    return flags & 0xF, bool(flags & 0x0400)
        except (socket.timeout, ConnectionRefusedError):
            return None


def cmd_probe(d, servers):
    """In pg-dp: each server answers its zone's SOA authoritatively (lame:
    REFUSED), within 5 s."""
    expect = {"root": (".", 0), "tld": ("test.", 0), "lame": ("test.", 5)}
    zones_one = None
    for l in open(os.path.join(d, "zones.txt")):
        f = l.split("\t")
        if not l.startswith("#") and f[2] == SERVERS["zones"][1]:
            zones_one = f[0]
            break
    bad = []
    for s in servers:
        name, rcode = expect.get(s, (zones_one, 0))
        if name is None:
            continue  # no zone below test.: the server serves nothing
        deadline = time.time() + 5
        got = None
        while time.time() < deadline:
            got = dns_query(SERVERS[s][0], name, 6, 0.3)
            if got is not None and got[0] == rcode and (rcode != 0 or got[1]):
                break
            time.sleep(0.1)
        else:
            bad.append("%s (%s, SOA %s): %s" % (s, SERVERS[s][0], name, "no answer" if got is None else "rcode %d aa %s" % got))
    if bad:
        print("; ".join(bad) + " " + " ".join(log_tail(d, s) for s in servers))
        return 1
    return 0


# --- the client: libunbound -------------------------------------------------

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28, "DS": 43, "DNSKEY": 48, "TLSA": 52}


def wire_name(b, i):
    labels = []
    while b[i]:
        n = b[i]
        labels.append(b[i + 1:i + 1 + n].decode("ascii", "backslashreplace"))
        i += 1 + n
    return ".".join(labels) + ".", i + 1


def rdata_text(qtype, rd):
    """Presentation form of the rdata libunbound returns (wire format, names
    uncompressed)."""
    if qtype == 1 and len(rd) == 4:
        return socket.inet_ntoa(rd)
    if qtype == 15:
        return "%d %s" % (struct.unpack("!H", rd[:2])[0], wire_name(rd, 2)[0])
    if qtype in (2, 5):
        return wire_name(rd, 0)[0]
    if qtype == 16:
        out, i = [], 0
        while i < len(rd):
            out.append('"%s"' % rd[i + 1:i + 1 + rd[i]].decode("utf-8", "backslashreplace").replace('"', '\\"'))
            i += 1 + rd[i]
        return " ".join(out)
    if qtype == 52 and len(rd) >= 3:
        return "%d %d %d %s" % (rd[0], rd[1], rd[2], rd[3:].hex())
    return "\\# %d %s" % (len(rd), rd.hex())


def resolver(d, conf=None, anchor=None):
    import unbound  # python3-unbound: imported here, the rest runs without it
    ctx = unbound.ub_ctx()
    err = ctx.config(conf or os.path.join(d, "unbound.conf"))
    if err:
        raise LabError("ub_ctx_config: %s" % unbound.ub_strerror(err))
    if anchor:
        err = ctx.add_ta_file(anchor)
        if err:
            raise LabError("ub_ctx_add_ta_file: %s" % unbound.ub_strerror(err))
    return ctx


def lookup(ctx, name, tname):
    import unbound
    qtype = TYPES.get(tname.upper())
    if qtype is None:
        raise LabError("type %s: one of %s" % (tname, " ".join(TYPES)))
    t0 = time.monotonic()
    status, res = ctx.resolve(name, qtype, 1)
    took = time.monotonic() - t0
    if status != 0:
        return {"qname": name, "qtype": tname.upper(), "error": unbound.ub_strerror(status)}
    data = [rdata_text(qtype, bytes(rd)) for rd in (res.data.data if res.havedata else [])]
    return {
        "qname": name, "qtype": tname.upper(),
        "rcode": RCODES.get(res.rcode, str(res.rcode)),
        "dnssec": "secure" if res.secure else "bogus" if res.bogus else "insecure",
        "why_bogus": res.why_bogus if res.bogus else None,
        "havedata": bool(res.havedata), "nxdomain": bool(res.nxdomain),
        "canonname": res.canonname, "ttl": res.ttl if res.havedata else None,
        "data": data, "seconds": round(took, 3),
    }


def cmd_query(d, args):
    conf = anchor = None
    fresh = "--fresh" in args
    args = [a for a in args if a != "--fresh"]
    if "--conf" in args:  # another unbound.conf (tests: without nodefault)
        i = args.index("--conf")
        conf = args[i + 1]
        del args[i:i + 2]
    if "--anchor" in args:  # an extra trust anchor file
        i = args.index("--anchor")
        anchor = args[i + 1]
        del args[i:i + 2]
    if args == ["--batch"]:
        queries = [l.split() for l in sys.stdin if l.strip() and not l.startswith("#")]
    elif len(args) == 2:
        queries = [args]
    else:
        die("usage: dnslab.py query DIR NAME TYPE | query DIR --batch", 2)
    ctx = resolver(d, conf, anchor)
    rc = 0
    for q in queries:
        if len(q) != 2:
            die("query: want NAME TYPE, got %r" % " ".join(q), 2)
        if fresh:
            ctx = resolver(d, conf, anchor)
        r = lookup(ctx, q[0], q[1])
        rc |= "error" in r
        print(json.dumps(r), flush=True)
    return 1 if rc else 0


# --- commands -----------------------------------------------------------------

def lab_addresses_present():
    p = subprocess.run(["ip", "-n", SERVER_NS, "-br", "addr", "show"], capture_output=True, text=True)
    missing = [a for a, _, _ in SERVERS.values() if a not in p.stdout]
    if p.returncode != 0 or missing:
        raise LabError("the lab's management link is not up (missing %s in %s): run tools/lab up" %
                       (" ".join(missing) or "the namespace", SERVER_NS))


def registered():
    try:
        return open(REGISTRY).read().strip() or None
    except OSError:
        return None


def cmd_start(d, args):
    certs = None
    if "--certs" in args:
        i = args.index("--certs")
        if i + 1 >= len(args):
            die("--certs needs a directory", 2)
        certs = os.path.abspath(args[i + 1])
        del args[i:i + 2]
    files = [os.path.abspath(a) for a in args] or [DEFAULT_ZONES]
    for f in files:
        if f.startswith("-"):
            die("unknown option %s" % f, 2)
    for tool in ("ldns-keygen", "ldns-signzone", "ldns-key2ds", "nsd-checkconf", "openssl"):
        if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode != 0:
            raise LabError("%s is missing (Debian packages nsd, ldnsutils, openssl; tools/deps.sh)" % tool)
    lab_addresses_present()
    os.makedirs(d, exist_ok=True)
    d = os.path.realpath(d)
    if certs is None and any("pem:" in open(f).read() for f in files if os.path.exists(f)):
        certs = os.path.join(d, "certs")
        run([MKCERTS, certs])
    zones = parse_descriptions(files, certs)  # errors here leave all running
    # one DNS lab at a time: the addresses are the lab's
    prev = registered()
    if prev:
        stop_servers(prev, list(SERVERS))
    stop_servers(d, list(SERVERS))
    build(d, zones)
    os.makedirs(os.path.dirname(REGISTRY), exist_ok=True)
    write(os.path.dirname(REGISTRY), os.path.basename(REGISTRY), d + "\n")
    try:
        start_servers(d, list(SERVERS))
    except LabError:
        stop_servers(d, list(SERVERS))
        raise
    sys.stdout.write(open(os.path.join(d, "dnslab.env")).read())
    return 0


def cmd_stop(d, servers):
    stop_servers(d, servers or list(SERVERS))
    if not servers and registered() == d:
        os.unlink(REGISTRY)
    return 0


def cmd_status(d):
    rc = 0
    for s, (addr, host, what) in SERVERS.items():
        pid = pid_of(d, s)
        print("%-6s %-15s %-15s %-28s %s" % (s, addr, host, what, "running (pid %d)" % pid if pid else "stopped"))
        rc |= pid is None
    return rc


def main(argv):
    if len(argv) >= 5 and argv[0] == "tlsa":
        try:
            print(tlsa_data(int(argv[1]), int(argv[2]), int(argv[3]), argv[4]))
        except ValueError:
            die("usage: dnslab.py tlsa USAGE SELECTOR MTYPE CERT.pem", 2)
        return 0
    if len(argv) < 2 or argv[0] not in ("start", "stop", "serve", "status", "query", "probe"):
        die("usage: dnslab.py start|stop|serve|status|query DIR ... | tlsa U S M CERT (see its header)", 2)
    cmd, d, rest = argv[0], os.path.abspath(argv[1]), argv[2:]
    if cmd != "start":
        if not os.path.isdir(d):
            die("no directory %s" % d, 2)
        d = os.path.realpath(d)
    for s in rest if cmd in ("stop", "serve", "probe") else []:
        if s not in SERVERS:
            die("unknown server %s (%s)" % (s, " ".join(SERVERS)), 2)
    if cmd == "query":
        ns = CLIENT_NS
        if "--netns" in rest:
            i = rest.index("--netns")
            if i + 1 >= len(rest):
                die("--netns needs a namespace", 2)
            ns = rest[i + 1]
            del rest[i:i + 2]
        if os.environ.get("DNSLAB_IN_NETNS") != ns:
            # libunbound's sockets are the namespace's: run there
            os.environ["DNSLAB_IN_NETNS"] = ns
            argv = ["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__), "query", d] + rest
            os.execvp("ip", argv)
    if cmd == "start":
        return cmd_start(d, rest)
    if cmd == "stop":
        return cmd_stop(d, rest)
    if cmd == "serve":
        start_servers(d, rest or list(SERVERS))
        return 0
    if cmd == "status":
        return cmd_status(d)
    if cmd == "probe":
        return cmd_probe(d, rest or list(SERVERS))
    return cmd_query(d, rest)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except LabError as e:
        die(str(e))
