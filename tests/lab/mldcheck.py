#!/usr/bin/env python3
"""tests/lab/mldcheck.py - watch the wire for the dataplane's MLDv2 reports
(run inside pg-cli on cli0): optionally send a general MLDv2 query first
(from cli0's link-local address, hop limit 1, Router Alert, to ff02::1, as
an MLD querier on the link would), then collect, for at most SECONDS, the
reports (ICMPv6 143) whose Ethernet source is DP_MAC.

usage: mldcheck.py IFACE DP_MAC SECONDS [query]
Prints one JSON object: {"reports": n, "records": [[type, group], ...]}.
"""
import ipaddress
import json
import select
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


def main():
    iface, dp_mac, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    want_query = len(sys.argv) > 4 and sys.argv[4] == "query"
    dp = bytes.fromhex(dp_mac.replace(":", ""))
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x86DD))
    sock.bind((iface, 0))
    smac = sock.getsockname()[4][:6]
    if want_query:
        src = b"\xfe\x80" + b"\0" * 6 + bytes([smac[0] ^ 2]) + smac[1:3] + b"\xff\xfe" + smac[3:6]
        dst = ipaddress.IPv6Address("ff02::1").packed
        # MLDv2 general query: max response 1000 ms, QRV 2, QQIC 125, no sources
        msg = struct.pack("!BBHHH16sBBH", 130, 0, 0, 1000, 0, b"\0" * 16, 2, 125, 0)
        ph = src + dst + struct.pack("!IxxxB", len(msg), 58)
        msg = msg[:2] + struct.pack("!H", csum(ph + msg)) + msg[4:]
        hbh = bytes([58, 0, 5, 2, 0, 0, 1, 0])
        ip = struct.pack("!IHBB", 6 << 28, len(hbh) + len(msg), 0, 1) + src + dst
        sock.send(b"\x33\x33\x00\x00\x00\x01" + smac + b"\x86\xdd" + ip + hbh + msg)
    reports, records = 0, []
    end = time.time() + seconds
    while time.time() < end:
        r, _, _ = select.select([sock], [], [], max(0.0, end - time.time()))
        if not r:
            break
        f = sock.recv(2048)
        # from the dataplane, IPv6, Hop-by-Hop first, ICMPv6 143 behind 8 bytes of it
        if len(f) < 70 or f[6:12] != dp or f[12:14] != b"\x86\xdd" or f[20] != 0 or f[62] != 143:
            continue
        reports += 1
        n = struct.unpack("!H", f[68:70])[0]
        for i in range(n):
            rec = f[70 + 20 * i:90 + 20 * i]
            records.append([rec[0], str(ipaddress.IPv6Address(rec[4:20]))])
    print(json.dumps({"reports": reports, "records": records}))


if __name__ == "__main__":
    main()
