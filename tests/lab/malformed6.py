#!/usr/bin/env python3
"""tests/lab/malformed6.py - send malformed IPv6 frames at the dataplane from
a raw AF_PACKET socket (run inside pg-cli): bad lengths, sources and
destinations, extension header chains that break RFC 8200 or RFC 8504
limits, options that say discard, routing headers with segments left,
fragments, unknown upper layers, bad ICMPv6 checksums, invalid Neighbor
Discovery. Deterministic (seeded), bounded in count, paced.

usage: malformed6.py IFACE DST_MAC SRC_IP DST_IP [PER_KIND] [SEED] [noise]
Prints one JSON object: {kind: {"sent": n, "counter": name}}.
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


def ip6(src, dst, nh, payload, hop=64, version=6, plen=None):
    length = len(payload) if plen is None else plen
    return struct.pack("!IHBB", version << 28, length, nh, hop) + src + dst + payload


def icmp6(src, dst, msg, bad=False):
    """An ICMPv6 message with its checksum over the pseudo-header (RFC 4443 §2.3)."""
    ph = src + dst + struct.pack("!IxxxB", len(msg), 58)
    c = csum(ph + msg[:2] + b"\0\0" + msg[4:]) ^ (0x4321 if bad else 0)
    return msg[:2] + struct.pack("!H", c) + msg[4:]


def echo(src, dst, seq, bad=False):
    return icmp6(src, dst, struct.pack("!BBHHH", 128, 0, 0, 0x6666, seq) + b"malformed6", bad)


def opts_header(nh, opts):
    """A Hop-by-Hop or Destination Options header around `opts`, padded to 8 bytes."""
    body = bytes([nh, 0]) + opts
    pad = (-len(body)) % 8
    if pad == 1:
        body += b"\0"
    elif pad > 1:
        body += bytes([1, pad - 2]) + b"\0" * (pad - 2)
    return bytes([nh, len(body) // 8 - 1]) + body[2:]


def main():
    iface, dst_mac, src_ip, dst_ip = sys.argv[1:5]
    per_kind = int(sys.argv[5]) if len(sys.argv) > 5 else 100
    rnd = random.Random(int(sys.argv[6]) if len(sys.argv) > 6 else 1)
    dmac = bytes.fromhex(dst_mac.replace(":", ""))
    src = socket.inet_pton(socket.AF_INET6, src_ip)
    dst = socket.inet_pton(socket.AF_INET6, dst_ip)
    other = socket.inet_pton(socket.AF_INET6, "2001:db8:18::77")
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((iface, 0))
    smac = sock.getsockname()[4][:6]

    def eth(payload):
        return dmac + smac + struct.pack("!H", 0x86DD) + payload

    def seq():
        return rnd.randint(0, 65535)

    def bad_src():
        return rnd.choice([socket.inet_pton(socket.AF_INET6, a) for a in ("ff02::1", "::1", "::ffff:198.18.0.2")])

    def ns(hop=255, optlen=1):
        msg = struct.pack("!BBHI", 135, 0, 0, 0) + dst + bytes([1, optlen]) + smac
        return icmp6(src, dst, msg)

    E = lambda: echo(src, dst, seq())
    kinds = {
        "ipv6_short": ("ipv6_drop_short", lambda: eth(ip6(src, dst, 58, E())[:rnd.randint(1, 39)])),
        "ipv6_version": ("ipv6_drop_version", lambda: eth(ip6(src, dst, 58, E(), version=rnd.choice([0, 4, 7, 15])))),
        "ipv6_length": ("ipv6_drop_len", lambda: eth(ip6(src, dst, 58, E(), plen=rnd.choice([0, rnd.randint(19, 1400)])))),
        "ipv6_bad_source": ("ipv6_drop_bad_src", lambda: eth(ip6(bad_src(), dst, 58, echo(src, dst, seq())))),
        "ipv6_not_for_us": ("ipv6_drop_not_for_us", lambda: eth(ip6(src, other, 58, echo(src, other, seq())))),
        # Hop-by-Hop behind Destination Options (RFC 8200 §4.1)
        "ipv6_hbh_not_first": ("ipv6_drop_exthdr", lambda: eth(ip6(src, dst, 60, opts_header(0, b"") + opts_header(58, b"") + E()))),
        # nine headers: past the RFC 8504 §5.3 limit of this node
        "ipv6_chain_too_long": ("ipv6_drop_exthdr", lambda: eth(ip6(src, dst, 60, opts_header(60, b"") * 8 + opts_header(58, b"") + E()))),
        "ipv6_header_truncated": ("ipv6_drop_exthdr", lambda: eth(ip6(src, dst, 60, bytes([58, rnd.randint(3, 30)]) + b"\1\4\0\0\0\0" + E()))),
        "ipv6_option_discard": ("ipv6_drop_option", lambda: eth(ip6(src, dst, 60, opts_header(58, bytes([0x40 | rnd.randint(2, 0x3f), 2, 0, 0])) + E()))),
        "ipv6_padn_not_zero": ("ipv6_drop_option", lambda: eth(ip6(src, dst, 60, opts_header(58, bytes([1, 4, 0, rnd.randint(1, 255), 0, 0])) + E()))),
        "ipv6_routing_left": ("ipv6_drop_routing", lambda: eth(ip6(src, dst, 43, bytes([58, 2, rnd.choice([0, 2, 3, 4]), rnd.randint(1, 5), 0, 0, 0, 0]) + dst + other + E()))),
        "ipv6_fragment": ("ipv6_drop_fragment", lambda: eth(ip6(src, dst, 44, struct.pack("!BBHI", 58, 0, rnd.choice([1, 8 << 3, (64 << 3) | 1]), rnd.getrandbits(32)) + E()))),
        "ipv6_no_next": ("ipv6_drop_no_next", lambda: eth(ip6(src, dst, 59, bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 64)))))),
        "ipv6_udp": ("ipv6_drop_proto", lambda: eth(ip6(src, dst, 17, struct.pack("!HHHH", rnd.randint(1024, 65535), 53, 12, 0) + b"abcd"))),
        "icmp6_checksum": ("icmp6_drop_cksum", lambda: eth(ip6(src, dst, 58, echo(src, dst, seq(), bad=True)))),
        "nd_hop_limit": ("nd_drop_invalid", lambda: eth(ip6(src, dst, 58, ns(), hop=rnd.choice([1, 64, 254])))),
        "nd_option_length": ("nd_drop_invalid", lambda: eth(ip6(src, dst, 58, ns(optlen=0), hop=255))),
    }
    sent = {}
    if len(sys.argv) > 7 and sys.argv[7] == "noise":
        order = ["noise"] * per_kind
    else:
        order = [k for k in kinds for _ in range(per_kind)]
        rnd.shuffle(order)
    for i, k in enumerate(order):
        if k == "noise":
            frame = eth(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 1400))))
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
