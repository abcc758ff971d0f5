#!/usr/bin/env python3
"""tests/lab/malformed.py - send malformed frames at the dataplane from a
raw AF_PACKET socket (run inside pg-cli). Deterministic (seeded), bounded
in count and paced so the af_packet rings do not overflow.

usage: malformed.py IFACE DST_MAC SRC_IP DST_IP [PER_KIND] [SEED] [noise]
Prints one JSON object: {kind: {"sent": n, "counter": name}}.

No IP fragments here: DPDK's af_packet PMD joins a PACKET_FANOUT group with
the defrag flag, so the kernel reassembles (or holds) fragments before the
dataplane sees them. Fragment drops are covered by tests/unit/net.
"""
import json
import random
import socket
import struct
import sys
import time


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload, ttl=64, frag=0, ihl=5, version=4, totlen=None,
         bad_cksum=False, ident=1):
    opts = b"\0" * ((ihl - 5) * 4) if ihl > 5 else b""
    tl = totlen if totlen is not None else 20 + len(opts) + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", (version << 4) | (ihl & 0xF), 0, tl, ident, frag, ttl,
                      proto, 0, socket.inet_aton(src), socket.inet_aton(dst)) + opts
    c = csum(hdr)
    if bad_cksum:
        c ^= 0x5A5A
    hdr = hdr[:10] + struct.pack("!H", c) + hdr[12:]
    return hdr + payload


def icmp_echo(ident, seq, data, bad=False):
    h = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + data
    c = csum(h) ^ (0x1234 if bad else 0)
    return h[:2] + struct.pack("!H", c) + h[4:]


def arp(op, smac, sip, tip, hrd=1, pro=0x0800, hln=6, pln=4, truncate=None):
    body = struct.pack("!HHBBH", hrd, pro, hln, pln, op) + smac + socket.inet_aton(sip) + \
        b"\0" * 6 + socket.inet_aton(tip)
    return body[:truncate] if truncate is not None else body


def main():
    iface, dst_mac, src_ip, dst_ip = sys.argv[1:5]
    per_kind = int(sys.argv[5]) if len(sys.argv) > 5 else 100
    rnd = random.Random(int(sys.argv[6]) if len(sys.argv) > 6 else 1)
    dmac = bytes.fromhex(dst_mac.replace(":", ""))
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((iface, 0))
    smac = sock.getsockname()[4][:6]

    def eth(etype, payload, to=dmac):
        return to + smac + struct.pack("!H", etype) + payload

    P = 0x0800
    kinds = {
        "ipv4_short": ("ipv4_drop_short", lambda: eth(P, ipv4(src_ip, dst_ip, 1, b"")[:rnd.randint(1, 19)])),
        "ipv4_version": ("ipv4_drop_version", lambda: eth(P, ipv4(src_ip, dst_ip, 1, b"x" * 8, version=rnd.choice([0, 5, 6, 15])))),
        "ipv4_hdrlen": ("ipv4_drop_hdrlen", lambda: eth(P, ipv4(src_ip, dst_ip, 1, b"x" * 8, ihl=rnd.randint(0, 4)))),
        "ipv4_totlen": ("ipv4_drop_totlen", lambda: eth(P, ipv4(src_ip, dst_ip, 1, b"x" * 8, totlen=rnd.choice([rnd.randint(0, 19), rnd.randint(100, 65535)])))),
        "ipv4_cksum": ("ipv4_drop_cksum", lambda: eth(P, ipv4(src_ip, dst_ip, 1, icmp_echo(7, 1, b"abc"), bad_cksum=True))),
        "ipv4_ttl": ("ipv4_drop_ttl", lambda: eth(P, ipv4(src_ip, dst_ip, 1, icmp_echo(7, 2, b"abc"), ttl=0))),
        "ipv4_not_for_us": ("ipv4_drop_not_for_us", lambda: eth(P, ipv4(src_ip, "198.18.0.77", 1, icmp_echo(7, 4, b"abc")))),
        "icmp_cksum": ("icmp_drop_cksum", lambda: eth(P, ipv4(src_ip, dst_ip, 1, icmp_echo(7, 5, b"abcdef", bad=True)))),
        "icmp_short": ("icmp_drop_short", lambda: eth(P, ipv4(src_ip, dst_ip, 1, b"\x08\x00\x00"))),
        "arp_truncated": ("arp_drop_malformed", lambda: eth(0x0806, arp(1, smac, src_ip, dst_ip, truncate=rnd.randint(0, 27)))),
        "arp_bad_hln": ("arp_drop_malformed", lambda: eth(0x0806, arp(1, smac, src_ip, dst_ip, hln=rnd.choice([0, 4, 8]), pro=rnd.choice([0x0800, 0x86DD])))),
        "arp_bad_op": ("arp_drop_op", lambda: eth(0x0806, arp(rnd.randint(3, 200), smac, src_ip, dst_ip))),
        # 802.1Q: af_packet moves the tag into the mbuf's metadata; the
        # dataplane must still refuse the frame (its ports are untagged).
        "eth_vlan": ("eth_drop_vlan", lambda: eth(0x8100, struct.pack("!HH", rnd.randint(1, 4094), 0x0800) + ipv4(src_ip, dst_ip, 1, icmp_echo(7, 8, b"v")))),
        # (not 0x86DD: the lab's ports speak IPv6; tests/lab/malformed6.py covers it)
        "eth_type": ("eth_drop_type", lambda: eth(rnd.choice([0x8035, 0x88CC, 0x1234]), bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 200))))),
        "eth_other_mac": ("eth_drop_not_for_us", lambda: eth(P, ipv4(src_ip, dst_ip, 1, icmp_echo(7, 6, b"x")), to=b"\x02\x00\x00\x00\x00\x99")),
    }
    sent = {}
    if len(sys.argv) > 7 and sys.argv[7] == "noise":
        # Pure noise addressed to us: counted by whatever it hits.
        order = ["noise"] * per_kind
    else:
        order = [k for k in kinds for _ in range(per_kind)]
        rnd.shuffle(order)
    for i, k in enumerate(order):
        if k == "noise":
            frame = eth(rnd.choice([0x0800, 0x0806]), bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 1500))))
        else:
            frame = kinds[k][1]()
        try:
            sock.send(frame)
        except OSError as e:
            print(f"send {k}: {e}", file=sys.stderr)
            continue
        sent[k] = sent.get(k, 0) + 1
        if i % 20 == 19:
            time.sleep(0.002)
    out = {k: {"sent": sent.get(k, 0), "counter": kinds[k][0]} for k in kinds}
    out["noise"] = {"sent": sent.get("noise", 0), "counter": None}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
