#!/usr/bin/env bash
# tests/lab/test_tcp_interop.sh - the userspace TCP against Linux in the lab
# (issue 3): Linux clients in pg-cli against the dataplane's echo, discard
# and source services (100 MB each way, sha256 compared), 10,000 sequential
# and 1,000 concurrent connections, the dataplane's diag client against a
# Linux server in pg-srv, a Linux peer that stops sending timestamps
# mid-flow, and a bounded SYN flood during which a legitimate transfer still
# completes. Prints TAP.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MB=$((100 * 1024 * 1024))
CONF=$(mktemp -d /tmp/pg-tcp-conf.XXXXXX)
SRV_PID=
trap '[ -n "$SRV_PID" ] && kill $SRV_PID 2>/dev/null; "$LAB" stop >/dev/null 2>&1; rm -rf "$CONF"' EXIT
cp "$TOP/tools/lab-config/postern.conf" "$CONF/"
echo "log_file = $CONF/postern.log" >>"$CONF/postern.conf" # this run's records only
peer() { "$LAB" exec "$1" python3 "$TOP/tests/lab/tcppeer.py" "${@:2}"; }
# json_check FILE EXPR: python expression over the JSON object d
json_check() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"; }
# expect DESC FILE EXPR: ok if the peer's JSON result satisfies EXPR
expect() {
	if json_check "$2" "$3"; then ok "$1: $(cat "$2")"; else not_ok "$1: $(cat "$2" 2>/dev/null)"; fi
}
delta() { echo $(($(counter "$2" "$3") - $(counter "$1" "$3"))); }

"$LAB" down >/dev/null 2>&1
check "lab start with the diagnostic services on" "$LAB" start "$CONF"

# Linux client -> dataplane server.
counters_json >"$CONF/c0.json"
peer cli source 198.18.0.1 19 $MB >"$CONF/source.json" 2>&1
expect "source: 100 MB of the pattern from the dataplane, sha256 equal" "$CONF/source.json" \
	"d['match'] and d['received'] == $MB"
peer cli echo 198.18.0.1 7 $MB >"$CONF/echo.json" 2>&1
expect "echo: 100 MB to the dataplane and back, sha256 equal" "$CONF/echo.json" \
	"d['match'] and d['received'] == $MB"
peer cli discard 198.18.0.1 9 $MB >"$CONF/discard.json" 2>&1
sleep 0.3
counters_json >"$CONF/c1.json"
d=$(delta "$CONF/c0.json" "$CONF/c1.json" diag_discard_bytes)
if json_check "$CONF/discard.json" "d['closed_cleanly']" && [ "$d" -eq "$MB" ]; then
	ok "discard: 100 MB sent, the dataplane counted exactly $d bytes, clean close"
else
	not_ok "discard: counted $d of $MB bytes; $(cat "$CONF/discard.json")"
fi

peer cli seq 198.18.0.1 7 10000 >"$CONF/seq.json" 2>&1
expect "10,000 sequential connections, each echoed" "$CONF/seq.json" "d['ok'] == 10000"
peer cli conc 198.18.0.1 7 1000 >"$CONF/conc.json" 2>&1
expect "1,000 concurrent connections, each echoed" "$CONF/conc.json" "d['ok'] == 1000"

# Dataplane client -> Linux server in pg-srv (echo 5001, discard 5002, source 5003).
peer srv serve 198.19.0.2 5001 300 >"$CONF/serve.json" 2>&1 &
SRV_PID=$!
sleep 0.5
# The bytes and their hash as the Linux server saw them (tcppeer.py serve's
# line per connection), against the pattern's hash computed here; and the
# dataplane's own verdict from its "diag client run ok" record.
PATTERN_SHA=$(python3 -c '
import hashlib, sys
sys.path.insert(0, sys.argv[1])
from pattern import pattern_bytes
h = hashlib.sha256()
for off in range(0, int(sys.argv[2]), 1 << 20):
    h.update(pattern_bytes(off, min(1 << 20, int(sys.argv[2]) - off)))
print(h.hexdigest())' "$TOP/tests/lab" $MB)
run_client() { # MODE PORT BYTES
	local before runs
	counters_json >"$CONF/cl0.json"
	sed -i '/^diag_client/d' "$CONF/postern.conf"
	echo "diag_client = 198.19.0.2:$2 $1 $3 1" >>"$CONF/postern.conf"
	"$LAB" ctl reload >/dev/null || return 1
	for _ in $(seq 600); do
		counters_json >"$CONF/cl1.json"
		runs=$(delta "$CONF/cl0.json" "$CONF/cl1.json" diag_client_runs)
		[ "$runs" -ge 1 ] && break
		sleep 0.2
	done
	[ "$(delta "$CONF/cl0.json" "$CONF/cl1.json" diag_client_ok)" -eq 1 ] &&
		[ "$(delta "$CONF/cl0.json" "$CONF/cl1.json" diag_client_fail)" -eq 0 ] || return 1
	# the Linux side's record of this connection (written when it closed)
	for _ in $(seq 100); do
		[ "$(grep -c "\"conn\": \"$1\"" "$CONF/serve.json")" -ge 1 ] && break
		sleep 0.1
	done
	"$LAB" ctl log --json --lines 100000 >"$CONF/diaglog.json" 2>/dev/null
	python3 - "$1" "$3" "$PATTERN_SHA" "$CONF/serve.json" "$CONF/diaglog.json" <<'PYEOF'
import json, sys
mode, n, sha, serve, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
conns = [json.loads(l) for l in open(serve) if l.startswith('{"conn": "%s"' % mode)]
assert len(conns) == 1, ("connections of this kind seen by the Linux server", conns)
c = conns[0]
if mode in ("echo", "discard"):  # the dataplane sent the pattern: Linux received it whole
    assert c["rx"] == n and c["rx_sha256"] == sha, ("Linux received", c)
if mode in ("echo", "source"):  # Linux sent it (echoed, or as the source)
    assert c["tx"] == n and c["tx_sha256"] == sha, ("Linux sent", c)
runs = [json.loads(l) for l in open(log) if '"diag client run' in l]
runs = [e for e in runs if e.get("mode") == mode]
assert runs and runs[-1]["event"] == "diag client run ok" and runs[-1]["verified"] == "ok", runs[-1:]
e = runs[-1]
assert int(e["sent"]) == (n if mode != "source" else len(str(n)) + 1), e
assert int(e["received"]) == (n if mode != "discard" else 0), e
print("Linux: rx %d tx %d bytes, sha256 %s...; dataplane: sent %s received %s verified %s"
      % (c["rx"], c["tx"], sha[:16], e["sent"], e["received"], e["verified"]))
PYEOF
}
for m in "echo 5001" "discard 5002" "source 5003"; do
	set -- $m
	if run_client "$1" "$2" $MB >"$CONF/client-$1.txt" 2>&1; then
		ok "dataplane as client: $1 of 100 MB with a Linux server, verified on both ends ($(tail -n 1 "$CONF/client-$1.txt"))"
	else
		not_ok "dataplane as client: $1 with a Linux server: $(tail -n 3 "$CONF/client-$1.txt" | tr '\n' ' ') ($(grep -h "diag client" /run/postern-lab/postern-dp.log | tail -n 1))"
	fi
done
kill $SRV_PID 2>/dev/null; wait $SRV_PID 2>/dev/null; SRV_PID=

# Nothing leaks: after all of the above, every connection the workers still
# hold is in TIME_WAIT (ours to keep for 2 MSL); none is stuck half-closed.
sleep 0.5
if "$LAB" ctl sessions --json >"$CONF/sessions.json" && python3 - "$CONF/sessions.json" >"$CONF/sess.txt" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
states = {}
for w in d["workers"]:
    assert w["answered"] and not w["truncated"], w
    for s in w["sessions"]:
        states[s["state"]] = states.get(s["state"], 0) + 1
print(states)
sys.exit(0 if d["complete"] and set(states) <= {"TIME_WAIT"} else 1)
PY
then
	ok "after the transfers only TIME_WAIT connections remain: $(cat "$CONF/sess.txt")"
else
	not_ok "connections left behind: $(cat "$CONF/sess.txt" 2>/dev/null)"
fi

# A Linux peer that stops sending timestamps mid-flow: 0.2 s into a 400 MB
# echo transfer, nftables in pg-cli starts overwriting the timestamp option
# of every segment the client sends with NOPs (RFC 7323 §3.2 lets a receiver
# drop such segments; a robust stack must not stall).
ip netns exec pg-cli nft delete table inet pgts 2>/dev/null
peer cli echo 198.18.0.1 7 $((400 * 1024 * 1024)) >"$CONF/nots.json" 2>&1 &
NOTS=$!
sleep 0.2
ip netns exec pg-cli nft -f - <<'NFT'
table inet pgts {
	chain out {
		type filter hook output priority 0; policy accept;
		tcp dport 7 counter reset tcp option timestamp
	}
}
NFT
wait $NOTS
stripped=$(ip netns exec pg-cli nft list chain inet pgts out | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
ip netns exec pg-cli nft delete table inet pgts
if json_check "$CONF/nots.json" "d['match']" && [ "${stripped:-0}" -gt 1000 ]; then
	ok "echo of 400 MB completed byte-exact after the client stopped sending timestamps ($stripped segments without)"
else
	not_ok "transfer after timestamps stopped: ${stripped:-0} segments stripped; $(cat "$CONF/nots.json")"
fi

# SYN flood from pg-cli (bounded: 100,000 SYNs at 20,000/s) while a
# legitimate client moves 20 MB through echo.
MAC0=$(dp_mac dp0)
counters_json >"$CONF/f0.json"
peer cli echo 198.18.0.1 7 $((20 * 1024 * 1024)) >"$CONF/legit.json" 2>&1 &
LEGIT=$!
"$LAB" exec cli python3 "$TOP/tests/lab/synflood.py" cli0 "$MAC0" 198.18.0.1 7 100000 20000 >"$CONF/flood.json"
wait $LEGIT
counters_json >"$CONF/f1.json"
syn_rx=$(delta "$CONF/f0.json" "$CONF/f1.json" tcp_syn_rx)
cookies=$(delta "$CONF/f0.json" "$CONF/f1.json" tcp_syncookie_tx)
bdrops=$(delta "$CONF/f0.json" "$CONF/f1.json" tcp_drop_backlog)
# The flood happened: the flooder sent all 100,000, the dataplane's
# listener saw at least 90% of them (af_packet may drop under a burst) and
# its backlog overflowed into SYN cookies.
if json_check "$CONF/flood.json" "d['sent'] == 100000" && [ "$syn_rx" -ge 90000 ] && [ "$cookies" -gt 0 ]; then
	ok "the SYN flood reached the dataplane: $(cat "$CONF/flood.json"), syn_rx +$syn_rx, cookies sent +$cookies, backlog drops +$bdrops"
else
	not_ok "SYN flood not observed: $(cat "$CONF/flood.json"), syn_rx +$syn_rx (want >= 90000), cookies sent +$cookies (want > 0), backlog drops +$bdrops"
fi
expect "legitimate 20 MB echo completed during a SYN flood" "$CONF/legit.json" "d['match']"
check "dataplane alive after the flood" kill -0 "$(cat /run/postern-lab/postern-dp.pid)"
peer cli seq 198.18.0.1 7 100 >"$CONF/after.json" 2>&1
expect "new connections succeed after the flood" "$CONF/after.json" "d['ok'] == 100"

check "lab stop" "$LAB" stop
tap_done
