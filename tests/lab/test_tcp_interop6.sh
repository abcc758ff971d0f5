#!/usr/bin/env bash
# tests/lab/test_tcp_interop6.sh - the userspace TCP over IPv6 against Linux
# in the lab, as test_tcp_interop.sh does over IPv4: Linux clients in pg-cli
# against the dataplane's echo, discard and source services (100 MB each
# way, sha256 compared at the Linux side), 2,000 sequential and 500
# concurrent connections, the dataplane's diag client against a Linux
# server in pg-srv; a simultaneous close (both FINs held back by nftables
# until both were sent, so each end's FIN crosses the other's: both end in
# TIME_WAIT); and transfers both ways through the lab's loss harness
# (`tools/lab loss`), every byte verified. Prints TAP.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MB=$((100 * 1024 * 1024))
DP0=2001:db8:18::1
SRV=2001:db8:19::2
CONF=$(mktemp -d /tmp/pg-tcp6-conf.XXXXXX)
SRV_PID=
cleanup() {
	[ -n "$SRV_PID" ] && kill $SRV_PID 2>/dev/null
	ip netns exec pg-cli nft delete table inet pgsim 2>/dev/null
	"$LAB" loss cli off 2>/dev/null
	"$LAB" loss srv off 2>/dev/null
	"$LAB" stop >/dev/null 2>&1
	rm -rf "$CONF"
}
trap cleanup EXIT
cp "$TOP/tools/lab-config/postern.conf" "$CONF/"
peer() { "$LAB" exec "$1" python3 "$TOP/tests/lab/tcppeer.py" "${@:2}"; }
json_check() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"; }
expect() {
	if json_check "$2" "$3"; then ok "$1: $(cat "$2")"; else not_ok "$1: $(cat "$2" 2>/dev/null)"; fi
}
delta() { echo $(($(counter "$2" "$3") - $(counter "$1" "$3"))); }
# sessions_json: the dataplane's connections as [{"state", "local", "remote"}, ...]
sessions_json() {
	"$LAB" ctl sessions --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(json.dumps([s for w in d["workers"] for s in w["sessions"]]))'
}

"$LAB" down >/dev/null 2>&1
check "lab start (IPv6 on both ports, diagnostic services on)" "$LAB" start "$CONF"
for _ in $(seq 50); do "$LAB" exec cli ping -6 -c 1 -W 1 $DP0 >/dev/null 2>&1 && break; sleep 0.1; done

# Linux client -> dataplane server.
counters_json >"$CONF/c0.json"
peer cli source $DP0 19 $MB >"$CONF/source.json" 2>&1
expect "source over IPv6: 100 MB of the pattern from the dataplane, sha256 equal" "$CONF/source.json" \
	"d['match'] and d['received'] == $MB"
peer cli echo $DP0 7 $MB >"$CONF/echo.json" 2>&1
expect "echo over IPv6: 100 MB to the dataplane and back, sha256 equal" "$CONF/echo.json" \
	"d['match'] and d['received'] == $MB"
peer cli discard $DP0 9 $MB >"$CONF/discard.json" 2>&1
sleep 0.3
counters_json >"$CONF/c1.json"
d=$(delta "$CONF/c0.json" "$CONF/c1.json" diag_discard_bytes)
if json_check "$CONF/discard.json" "d['closed_cleanly']" && [ "$d" -eq "$MB" ]; then
	ok "discard over IPv6: 100 MB sent, the dataplane counted exactly $d bytes, clean close"
else
	not_ok "discard over IPv6: counted $d of $MB bytes; $(cat "$CONF/discard.json")"
fi
r=$(delta "$CONF/c0.json" "$CONF/c1.json" ipv6_rx)
t4=$(delta "$CONF/c0.json" "$CONF/c1.json" ipv4_rx)
[ "$r" -gt 100000 ] && [ "$t4" -lt 100 ] && ok "the transfers went over IPv6 ($r IPv6 packets in, $t4 IPv4)" ||
	not_ok "IPv6 packets in: $r, IPv4: $t4"

peer cli seq $DP0 7 2000 >"$CONF/seq.json" 2>&1
expect "2,000 sequential IPv6 connections, each echoed" "$CONF/seq.json" "d['ok'] == 2000"
peer cli conc $DP0 7 500 >"$CONF/conc.json" 2>&1
expect "500 concurrent IPv6 connections, each echoed" "$CONF/conc.json" "d['ok'] == 500"

# Dataplane client -> Linux server in pg-srv (echo 5001, discard 5002, source 5003).
peer srv serve $SRV 5001 300 >"$CONF/serve.json" 2>&1 &
SRV_PID=$!
sleep 0.5
run_client() { # MODE PORT BYTES
	local runs
	counters_json >"$CONF/cl0.json"
	sed -i '/^diag_client/d' "$CONF/postern.conf"
	echo "diag_client = [$SRV]:$2 $1 $3 1" >>"$CONF/postern.conf"
	"$LAB" ctl reload >/dev/null || return 1
	for _ in $(seq 600); do
		counters_json >"$CONF/cl1.json"
		runs=$(delta "$CONF/cl0.json" "$CONF/cl1.json" diag_client_runs)
		[ "$runs" -ge 1 ] && break
		sleep 0.2
	done
	[ "$(delta "$CONF/cl0.json" "$CONF/cl1.json" diag_client_ok)" -eq 1 ] &&
		[ "$(delta "$CONF/cl0.json" "$CONF/cl1.json" diag_client_fail)" -eq 0 ]
}
last_run() { grep -h "diag client" /run/postern-lab/postern-dp.log | tail -n 1 | cut -c1-170; }
for m in "echo 5001" "discard 5002" "source 5003"; do
	set -- $m
	if run_client "$1" "$2" $MB; then
		ok "dataplane as IPv6 client: $1 of 100 MB with a Linux server, verified ($(last_run))"
	else
		not_ok "dataplane as IPv6 client: $1 with a Linux server ($(last_run))"
	fi
done

# Lost segments, the lab's loss harness: every 25th TCP segment of the port dropped, each way.
"$LAB" loss srv 25 5001
if run_client echo 5001 $((20 * 1024 * 1024)); then
	ok "dataplane as client through 4% loss (pg-srv drops every 25th segment each way: $("$LAB" loss srv show) dropped, $(delta "$CONF/cl0.json" "$CONF/cl1.json" tcp_retransmits) retransmissions): 20 MB echoed and verified"
else
	not_ok "dataplane as client with loss ($(last_run))"
fi
"$LAB" loss srv off
kill $SRV_PID 2>/dev/null; wait $SRV_PID 2>/dev/null; SRV_PID=
sed -i '/^diag_client/d' "$CONF/postern.conf"
"$LAB" ctl reload >/dev/null

counters_json >"$CONF/l0.json"
"$LAB" loss cli 25 7
peer cli echo $DP0 7 $((20 * 1024 * 1024)) >"$CONF/lossy.json" 2>&1
lost=$("$LAB" loss cli show)
"$LAB" loss cli off
counters_json >"$CONF/l1.json"
rtx=$(delta "$CONF/l0.json" "$CONF/l1.json" tcp_retransmits)
sack=$(delta "$CONF/l0.json" "$CONF/l1.json" tcp_sack_recovery)
if json_check "$CONF/lossy.json" "d['match'] and d['received'] == 20 * 1024 * 1024" && [ "$lost" -gt 100 ] && [ "$rtx" -gt 0 ]; then
	ok "Linux client through 4% loss: 20 MB echoed byte-exact; $lost segments dropped, the dataplane retransmitted $rtx ($sack SACK recoveries)"
else
	not_ok "echo with loss: lost $lost, retransmitted $rtx; $(cat "$CONF/lossy.json")"
fi

# Simultaneous close (RFC 9293 §3.6, figure 13): nftables in pg-cli holds back
# the FINs of both ends of the source connection until both have been sent;
# then each end receives a FIN while in FIN_WAIT_1 and both go through
# CLOSING to TIME_WAIT, which only a simultaneous close leaves on both sides.
ip netns exec pg-cli nft -f - <<NFT
table inet pgsim {
	chain in {
		type filter hook input priority 0; policy accept;
		ip6 saddr $DP0 tcp sport 19 tcp flags & fin == fin counter drop
	}
	chain out {
		type filter hook output priority 0; policy accept;
		ip6 daddr $DP0 tcp dport 19 tcp flags & fin == fin counter drop
	}
}
NFT
peer cli simclose $DP0 19 300000 >"$CONF/sim.json" 2>&1 &
SIM=$!
held() { ip netns exec pg-cli nft list chain inet pgsim "$1" | sed -n 's/.*counter packets \([0-9]*\).*/\1/p'; }
for _ in $(seq 100); do
	[ "$(held in)" -ge 1 ] && [ "$(held out)" -ge 1 ] && break
	sleep 0.05
done
fins="in $(held in), out $(held out)"
sessions_json >"$CONF/sim_before.json"
ip netns exec pg-cli nft delete table inet pgsim
wait $SIM
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["local_port"])' "$CONF/sim.json" 2>/dev/null)
sleep 0.3
sessions_json >"$CONF/sim_after.json"
linux_tw=$(ip netns exec pg-cli ss -6 -tan state time-wait "( sport = :${port:-0} )" | grep -c "$DP0")
dp_state=$(python3 -c '
import json, sys
port = sys.argv[2]
for s in json.load(open(sys.argv[1])):
    if s["local"] == "[2001:db8:18::1]:19" and s["remote"] == "[2001:db8:18::2]:" + port:
        print(s["state"])' "$CONF/sim_after.json" "${port:-0}")
dp_before=$(python3 -c '
import json, sys
port = sys.argv[2]
for s in json.load(open(sys.argv[1])):
    if s["remote"].endswith("]:" + port):
        print(s["state"])' "$CONF/sim_before.json" "${port:-0}")
if json_check "$CONF/sim.json" "d['match']" && [ "$linux_tw" -eq 1 ] && [ "$dp_state" = TIME_WAIT ] &&
	[ "$dp_before" = FIN_WAIT_1 ]; then
	ok "simultaneous close over IPv6: both FINs held ($fins) with the dataplane in $dp_before; afterwards both ends in TIME_WAIT; 300,000 bytes verified"
else
	not_ok "simultaneous close: FINs held ($fins), dataplane before: '$dp_before', after: '$dp_state', Linux TIME_WAIT: $linux_tw; $(cat "$CONF/sim.json")"
fi

# Nothing leaks: every connection left is in TIME_WAIT, and IPv6 ones are shown with their addresses.
sleep 0.5
if "$LAB" ctl sessions --json >"$CONF/sessions.json" && python3 - "$CONF/sessions.json" >"$CONF/sess.txt" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
states, v6 = {}, 0
for w in d["workers"]:
    assert w["answered"] and not w["truncated"], w
    for s in w["sessions"]:
        states[s["state"]] = states.get(s["state"], 0) + 1
        v6 += s["local"].startswith("[2001:db8:")
print(states, "IPv6:", v6)
sys.exit(0 if d["complete"] and set(states) <= {"TIME_WAIT"} and v6 > 0 else 1)
PY
then
	ok "after the transfers only TIME_WAIT connections remain: $(cat "$CONF/sess.txt")"
else
	not_ok "connections left behind: $(cat "$CONF/sess.txt" 2>/dev/null)"
fi
check "lab stop" "$LAB" stop
tap_done
