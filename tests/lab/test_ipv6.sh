#!/usr/bin/env bash
# tests/lab/test_ipv6.sh - the dataplane's IPv6 with Linux as the peer:
# DAD of its four addresses, ping6 to global and link-local addresses
# (large ones too), Neighbor Discovery both ways, the dataplane defending
# its address against a Linux DAD probe and finding a duplicate itself,
# multicast echo left unanswered, MLD reports for its solicited-node groups
# (at start and to a query), an ICMPv6 Parameter Problem that Linux's
# own UDP reports to its socket, malformed frames from a raw socket (each
# dropped and counted), random noise, and pg-dp's kernel silent on the
# dataplane's links. Prints TAP.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONF=$(mktemp -d /tmp/pg-ipv6-conf.XXXXXX)
DP0=2001:db8:18::1
DP1=2001:db8:19::1
trap 'ip -n pg-cli -6 addr del $DP0/64 dev cli0 2>/dev/null; "$LAB" stop >/dev/null 2>&1; rm -rf "$CONF"' EXIT
cp "$TOP/tools/lab-config/postern.conf" "$CONF/"
delta() { echo $(($(counter "$2" "$3") - $(counter "$1" "$3"))); }
# json_has FILE EXPR: EXPR over d (mldcheck.py's JSON) and r (its records)
json_has() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); r=d['records']; sys.exit(0 if ($2) else 1)" "$1"; }
# ll6 MAC: the modified EUI-64 link-local address of a MAC (RFC 4291 Appendix A)
ll6() {
	python3 - "$1" <<'PY'
import ipaddress, sys
m = bytes.fromhex(sys.argv[1].replace(":", ""))
iid = bytes([m[0] ^ 2]) + m[1:3] + b"\xff\xfe" + m[3:6]
print(ipaddress.IPv6Address(b"\xfe\x80" + b"\0" * 6 + iid))
PY
}
# wait_dad: bounded wait until the dataplane's DAD has passed (nd_dad_ok counts addresses)
wait_dad() {
	local want=$1
	for _ in $(seq 50); do
		counters_json >"$CONF/dad.json"
		[ "$(counter "$CONF/dad.json" nd_dad_ok)" -ge "$want" ] && return 0
		sleep 0.1
	done
	return 1
}

"$LAB" down >/dev/null 2>&1
check "lab up" "$LAB" up
check "pg-cli has its IPv6 address" bash -c "ip -n pg-cli -6 addr show dev cli0 | grep -q '2001:db8:18::2/64'"
check "pg-srv has its IPv6 address" bash -c "ip -n pg-srv -6 addr show dev srv0 | grep -q '2001:db8:19::2/64'"
check "pg-dp's kernel has no IPv6 on dp0 and dp1 (silent on the dataplane's links)" \
	bash -c "[ -z \"\$(ip -n pg-dp -6 addr show dev dp0)\" ] && [ -z \"\$(ip -n pg-dp -6 addr show dev dp1)\" ] &&
		[ \"\$(ip netns exec pg-dp sysctl -n net.ipv6.conf.dp0.disable_ipv6)\" = 1 ]"
check "lab start with IPv6 addresses on both ports" "$LAB" start "$CONF"
if wait_dad 4; then
	ok "DAD passed for the link-local and global addresses of both ports (nd_dad_ok $(counter "$CONF/dad.json" nd_dad_ok), nd_ns_tx $(counter "$CONF/dad.json" nd_ns_tx))"
else
	not_ok "DAD did not complete: nd_dad_ok $(counter "$CONF/dad.json" nd_dad_ok)"
fi

# The dataplane resolves a neighbour by itself: TCP to pg-srv, which it has
# not heard from yet (nothing from pg-srv has reached it but multicast).
counters_json >"$CONF/n0.json"
"$LAB" exec srv python3 "$TOP/tests/lab/tcppeer.py" serve 2001:db8:19::2 5001 30 >"$CONF/serve.json" 2>&1 &
SRV=$!
for _ in $(seq 50); do ip netns exec pg-srv ss -ltn | grep -q ':5001 ' && break; sleep 0.1; done
echo "diag_client = [2001:db8:19::2]:5001 echo 1000000 1" >>"$CONF/postern.conf"
"$LAB" ctl reload >/dev/null
for _ in $(seq 100); do
	counters_json >"$CONF/n1.json"
	[ "$(delta "$CONF/n0.json" "$CONF/n1.json" diag_client_runs)" -ge 1 ] && break
	sleep 0.1
done
kill $SRV 2>/dev/null; wait $SRV 2>/dev/null
if [ "$(delta "$CONF/n0.json" "$CONF/n1.json" diag_client_ok)" -eq 1 ] &&
	[ "$(delta "$CONF/n0.json" "$CONF/n1.json" nd_ns_tx)" -ge 1 ] &&
	ip -n pg-srv -6 neigh show $DP1 dev srv0 | grep -qi "$(dp_mac dp1)"; then
	ok "the dataplane solicited pg-srv (nd_ns_tx +$(delta "$CONF/n0.json" "$CONF/n1.json" nd_ns_tx)), learned it, and echoed 1 MB to it over TCP; pg-srv learned the dataplane from the solicitation"
else
	not_ok "dataplane resolution of pg-srv: ok $(delta "$CONF/n0.json" "$CONF/n1.json" diag_client_ok), ns_tx $(delta "$CONF/n0.json" "$CONF/n1.json" nd_ns_tx); $(grep -h 'diag client' /run/postern-lab/postern-dp.log | tail -n 1)"
fi
sed -i '/^diag_client/d' "$CONF/postern.conf"
"$LAB" ctl reload >/dev/null

MAC0=$(dp_mac dp0)
LL0=$(ll6 "$MAC0")
check "ping6 $DP0 from pg-cli" "$LAB" exec cli ping -6 -c 3 -i 0.2 -W 2 $DP0
check "ping6 $DP1 from pg-srv" "$LAB" exec srv ping -6 -c 3 -i 0.2 -W 2 $DP1
check "ping6 the dataplane's link-local $LL0%cli0 (EUI-64 of $MAC0)" \
	"$LAB" exec cli ping -6 -c 2 -i 0.2 -W 2 "$LL0%cli0"
check "large ping6 (1452 bytes of data, 1500-byte packets, no fragmentation) echoed intact" \
	"$LAB" exec cli ping -6 -c 2 -i 0.2 -W 2 -s 1452 -M do -p a5 $DP0
check "Linux learned the dataplane's MAC by Neighbor Discovery" \
	bash -c "ip -n pg-cli -6 neigh show $DP0 dev cli0 | grep -qi 'lladdr $MAC0'"

# Multicast echo: RFC 4443 §4.1 would have a reply; the dataplane stays silent (amplification).
counters_json >"$CONF/m0.json"
"$LAB" exec cli ping -6 -c 2 -i 0.2 -W 1 -I cli0 ff02::1 >/dev/null 2>&1
sleep 0.2
counters_json >"$CONF/m1.json"
d=$(delta "$CONF/m0.json" "$CONF/m1.json" icmp6_drop_mcast_echo)
[ "$d" -ge 2 ] && ok "ping6 ff02::1: $d requests seen, none answered (icmp6_drop_mcast_echo)" ||
	not_ok "multicast echo: icmp6_drop_mcast_echo grew by $d"

# The dataplane defends its address: Linux's DAD for it fails (RFC 4862 §5.4.3, RFC 4861 §7.2.4).
ip -n pg-cli -6 addr add $DP0/64 dev cli0
for _ in $(seq 30); do
	ip -n pg-cli -6 addr show dev cli0 | grep "$DP0/64" | grep -q dadfailed && break
	sleep 0.1
done
if ip -n pg-cli -6 addr show dev cli0 | grep "$DP0/64" | grep -q dadfailed; then
	ok "Linux's DAD for $DP0 failed: the dataplane answered the probe ($(ip -n pg-cli -6 addr show dev cli0 | grep "$DP0/64" | xargs))"
else
	not_ok "Linux took $DP0 anyway: $(ip -n pg-cli -6 addr show dev cli0 | grep "$DP0/64" | xargs)"
fi
ip -n pg-cli -6 addr del $DP0/64 dev cli0

# ... and finds a duplicate itself: restarted while pg-cli holds its address.
ip -n pg-cli -6 addr add $DP0/64 dev cli0 nodad
check "restart postern-dp while pg-cli holds $DP0" "$LAB" restart postern-dp
sleep 1.5
counters_json >"$CONF/d1.json"
# the event reaches posternd's log (log_file, read by posternctl log) once posternd drains the ring
dup_logged() { "$LAB" ctl log --json --lines 1000 2>/dev/null | grep '"ipv6 address duplicate"' | grep -q "$DP0"; }
for _ in $(seq 25); do dup_logged && break; sleep 0.2; done
if [ "$(counter "$CONF/d1.json" nd_dad_duplicate)" -eq 1 ] && [ "$(counter "$CONF/d1.json" nd_dad_ok)" -eq 3 ] &&
	grep -q "IPv6 address $DP0 is a duplicate" /run/postern-lab/postern-dp.log && dup_logged; then
	ok "DAD found $DP0 taken: not used, logged, and reported to posternd's log; the other three addresses came up"
else
	not_ok "duplicate detection: nd_dad_duplicate $(counter "$CONF/d1.json" nd_dad_duplicate), nd_dad_ok $(counter "$CONF/d1.json" nd_dad_ok)"
fi
ip -n pg-cli -6 addr del $DP0/64 dev cli0
ip -n pg-cli -6 neigh flush dev cli0
# MLD (RFC 3810): the dataplane joins the solicited-node groups of dp0's
# addresses on the wire before its DAD probes, and answers a querier.
"$LAB" exec cli python3 "$TOP/tests/lab/mldcheck.py" cli0 "$MAC0" 12 >"$CONF/mld1.json" 2>&1 &
MLD=$!
sleep 0.3
check "restart postern-dp once $DP0 is free again" "$LAB" restart postern-dp
wait_dad 4 && ok "DAD passed again for all four addresses" || not_ok "DAD after the restart: $(counter "$CONF/dad.json" nd_dad_ok)"
check "ping6 $DP0 answered by the restarted dataplane" "$LAB" exec cli ping -6 -c 2 -i 0.2 -W 2 $DP0
SN_LL=$(python3 -c 'import ipaddress,sys; a=ipaddress.IPv6Address(sys.argv[1]).packed; print(ipaddress.IPv6Address(bytes.fromhex("ff0200000000000000000001ff") + a[13:]))' "$LL0")
SN_GL=ff02::1:ff00:1
wait $MLD
if json_has "$CONF/mld1.json" "[4, '$SN_LL'] in r and [4, '$SN_GL'] in r"; then
	ok "MLDv2 reports on the wire at start: CHANGE_TO_EXCLUDE for $SN_LL and $SN_GL ($(cat "$CONF/mld1.json"))"
else
	not_ok "no MLDv2 join report for $SN_LL, $SN_GL: $(cat "$CONF/mld1.json")"
fi
"$LAB" exec cli python3 "$TOP/tests/lab/mldcheck.py" cli0 "$MAC0" 3 query >"$CONF/mld2.json" 2>&1
if json_has "$CONF/mld2.json" "d['reports'] >= 1 and [2, '$SN_LL'] in r and [2, '$SN_GL'] in r"; then
	ok "a general MLD query from pg-cli is answered within its 1 s: MODE_IS_EXCLUDE for both groups"
else
	not_ok "MLD query not answered: $(cat "$CONF/mld2.json")"
fi

# An upper layer the dataplane does not run (UDP): Parameter Problem, code 1, pointer 6
# (RFC 8200 §4), which Linux hands to the UDP socket as EPROTO with the details.
if "$LAB" exec cli python3 - "$DP0" >"$CONF/udp.txt" 2>&1 <<'PY'; then
import socket, struct, sys
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)  # linux/in6.h
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
s.settimeout(3)
s.connect((sys.argv[1], 9999))
s.send(b"is anyone there")
try:
    s.recv(100)
    sys.exit("no error")
except OSError as e:
    assert e.errno == 71, e  # EPROTO
msg, anc, flags, addr = s.recvmsg(100, 512, MSG_ERRQUEUE)
for level, kind, data in anc:
    if level == socket.IPPROTO_IPV6 and kind == IPV6_RECVERR:
        errno_, origin, typ, code, _, info, _ = struct.unpack("=IBBBBII", data[:16])
        print("errno %d origin %d type %d code %d pointer %d" % (errno_, origin, typ, code, info))
        sys.exit(0 if (origin, typ, code, info) == (3, 4, 1, 6) else 1)
sys.exit("no extended error")
PY
	ok "UDP to the dataplane: Linux reports ICMPv6 Parameter Problem ($(cat "$CONF/udp.txt"))"
else
	not_ok "ICMPv6 error to Linux's UDP socket: $(cat "$CONF/udp.txt")"
fi

# Malformed IPv6 frames from a raw socket: each kind dropped by its own counter.
counters_json >"$CONF/before.json"
if "$LAB" exec cli python3 "$TOP/tests/lab/malformed6.py" cli0 "$MAC0" 2001:db8:18::2 $DP0 60 7 \
	>"$CONF/sent.json" 2>"$CONF/sent.err"; then
	ok "sent $(python3 -c 'import json,sys; print(sum(v["sent"] for v in json.load(open(sys.argv[1])).values()))' "$CONF/sent.json") malformed IPv6 frames from pg-cli"
else
	not_ok "malformed IPv6 frame generator"; sed 's/^/# /' "$CONF/sent.err"
fi
sleep 0.5
check "dataplane still running after malformed IPv6 frames" kill -0 "$(cat /run/postern-lab/postern-dp.pid)"
check "dataplane still answers ping6 after malformed frames" "$LAB" exec cli ping -6 -c 2 -i 0.2 -W 2 $DP0
counters_json >"$CONF/after.json"
if python3 - "$CONF/sent.json" "$CONF/before.json" "$CONF/after.json" >"$CONF/verdicts" <<'PY'
import json, sys
sent, before, after = (json.load(open(p)) for p in sys.argv[1:4])
by_counter = {}
for kind, v in sent.items():
    if v["counter"]:
        by_counter.setdefault(v["counter"], []).append((kind, v["sent"]))
for name, kinds in sorted(by_counter.items()):
    n = sum(s for _, s in kinds)
    delta = after.get(name, 0) - before.get(name, 0)
    # af_packet may drop a frame under a burst (lower bound 90%); more than n: misclassified
    good = n > 0 and 0.9 * n <= delta <= n
    print(f"{'ok' if good else 'not_ok'} counter {name} grew by {delta} for {n} frames "
          f"({', '.join(k for k, _ in kinds)})")
# The errors this provoked are rate limited, never more than allowed (10 + 100/s)
err = after.get("icmp6_error_tx", 0) - before.get("icmp6_error_tx", 0)
lim = after.get("icmp6_error_limited", 0) - before.get("icmp6_error_limited", 0)
print(f"{'ok' if err > 0 and lim > 0 else 'not_ok'} ICMPv6 errors sent {err}, held back by the rate limit {lim}")
PY
then
	while read -r verdict text; do
		if [ "$verdict" = ok ]; then ok "$text"; else not_ok "$text"; fi
	done <"$CONF/verdicts"
else
	not_ok "counter check crashed"
fi
"$LAB" exec cli python3 "$TOP/tests/lab/malformed6.py" cli0 "$MAC0" 2001:db8:18::2 $DP0 500 11 noise \
	>/dev/null 2>"$CONF/noise.err" && ok "sent 500 IPv6 frames of random noise" || not_ok "noise generator"
check "dataplane answers ping6 after the noise" "$LAB" exec cli ping -6 -c 2 -i 0.2 -W 2 $DP0
check "pg-dp's kernel still has no IPv6 on dp0 and dp1" \
	bash -c "[ -z \"\$(ip -n pg-dp -6 addr show dev dp0)\" ] && [ -z \"\$(ip -n pg-dp -6 addr show dev dp1)\" ]"
check "lab stop" "$LAB" stop
tap_done
