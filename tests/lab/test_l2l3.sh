#!/usr/bin/env bash
# tests/lab/test_l2l3.sh - the dataplane in the lab with real peers: ping
# and arping from the kernel in pg-cli/pg-srv, gratuitous ARP, ARP
# resolution by the dataplane, a stream of malformed frames that must leave
# it running with every drop counted, snapshot reload and refusal, the
# dataplane outliving posternd, and a clean stop. Prints TAP.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONF=$(mktemp -d /tmp/pg-lab-conf.XXXXXX)
trap '"$LAB" stop >/dev/null 2>&1; rm -rf "$CONF"' EXIT
cp "$TOP/tools/lab-config/postern.conf" "$CONF/"
# A short neighbour lifetime, so the dataplane has to resolve on its own.
sed -i 's/^arp_cache_timeout.*/arp_cache_timeout = 2s/' "$CONF/postern.conf"

# ping_intact NS ADDR COUNT [ping options]: every echo answered with the
# data it carried. ping exits 0 even when a reply's data differs ("wrong
# data byte") or comes twice, so its report is read, not its exit status;
# -p fills the data with a pattern that ping checks byte by byte.
ping_intact() {
	local ns=$1 addr=$2 n=$3 out
	shift 3
	out=$("$LAB" exec "$ns" ping -c "$n" -i 0.2 -W 2 -p a5c30f "$@" "$addr" 2>&1)
	echo "$out"
	! echo "$out" | grep -q "wrong data byte\|DUP!" && echo "$out" | grep -q "^$n packets transmitted, $n received,"
}
# ping_silent NS ADDR: one echo request went out and got no answer (not a ping that could not run)
ping_silent() {
	local out
	out=$("$LAB" exec "$1" ping -c 1 -W 1 "$2" 2>&1)
	echo "$out"
	echo "$out" | grep -q "^1 packets transmitted, 0 received,"
}

"$LAB" down >/dev/null 2>&1
check "lab up" "$LAB" up
check "lab up is idempotent" "$LAB" up
# Accept gratuitous ARP in pg-cli so the announcement is observable.
ip netns exec pg-cli sysctl -qw net.ipv4.conf.cli0.arp_accept=1
check "lab start CONFIG_DIR (bounded wait for readiness)" "$LAB" start "$CONF"
check "posternctl status: dataplane ready, workers on the published generation" "$LAB" ctl status
diag "$("$LAB" ctl status 2>&1 | head -n 20 | tr '\n' '|')"

MAC0=$(dp_mac dp0)
sleep 0.5
# pg-cli knows the MAC although it never asked for it (no ARP request
# reached the dataplane) and the dataplane announced itself.
counters_json >"$CONF/g0.json"
garp=$(counter "$CONF/g0.json" arp_gratuitous_tx) asked=$(counter "$CONF/g0.json" arp_request_rx)
if ip -n pg-cli neigh show 198.18.0.1 dev cli0 | grep -qi "$MAC0" && [ "$garp" -ge 1 ] && [ "$asked" -eq 0 ]; then
	ok "gratuitous ARP taught pg-cli the dataplane's MAC ($MAC0; announcements $garp, requests from pg-cli $asked)"
else
	not_ok "gratuitous ARP: pg-cli's entry '$(ip -n pg-cli neigh show 198.18.0.1 dev cli0)', announcements $garp (want >= 1), ARP requests received $asked (want 0)"
fi
check "ping 198.18.0.1 from pg-cli" ping_intact cli 198.18.0.1 3
check "ping 198.19.0.1 from pg-srv" ping_intact srv 198.19.0.1 3
check "arping 198.18.0.1 from pg-cli gets the dataplane's MAC" \
	bash -c "'$LAB' exec cli arping -c 2 -w 4 -I cli0 198.18.0.1 | grep -qi '$MAC0'"
check "large ping (1472 bytes of data) is echoed intact" \
	ping_intact cli 198.18.0.1 2 -s 1472 -M do
counters_json >"$CONF/n0.json"
check "ping to a non-local address in the dataplane's subnet gets no answer" \
	ping_silent cli 198.18.0.77
counters_json >"$CONF/n1.json"
n0=$(counter "$CONF/n0.json" arp_drop_not_for_us); n1=$(counter "$CONF/n1.json" arp_drop_not_for_us)
if [ "$n1" -gt "$n0" ]; then
	ok "the dataplane saw the ARP requests for 198.18.0.77 and refused them ($n0 -> $n1)"
else
	not_ok "no ARP request for 198.18.0.77 counted as arp_drop_not_for_us ($n0 -> $n1)"
fi

# ARP resolution by the dataplane: its entry for pg-cli expires after 2 s,
# pg-cli keeps ours, so the echo reply has to wait for the dataplane's own
# ARP request.
counters_json >"$CONF/c0.json"
sleep 3
check "ping after the dataplane's neighbour entry expired" \
	ping_intact cli 198.18.0.1 2
counters_json >"$CONF/c1.json"
req0=$(counter "$CONF/c0.json" arp_request_tx); req1=$(counter "$CONF/c1.json" arp_request_tx)
exp1=$(counter "$CONF/c1.json" arp_expired)
if [ "$req1" -gt "$req0" ] && [ "$exp1" -gt 0 ]; then
	ok "dataplane expired the entry and resolved again (arp_request_tx $req0 -> $req1, arp_expired $exp1)"
else
	not_ok "dataplane ARP resolution (arp_request_tx $req0 -> $req1, arp_expired $exp1)"
fi

# Malformed frames.
counters_json >"$CONF/before.json"
if "$LAB" exec cli python3 "$TOP/tests/lab/malformed.py" cli0 "$MAC0" 198.18.0.2 198.18.0.1 100 7 \
	>"$CONF/sent.json" 2>"$CONF/sent.err"; then
	ok "sent $(python3 -c 'import json,sys; print(sum(v["sent"] for v in json.load(open(sys.argv[1])).values()))' "$CONF/sent.json") malformed frames from pg-cli"
else
	not_ok "malformed frame generator"; sed 's/^/# /' "$CONF/sent.err"
fi
sleep 0.5
check "dataplane still running after malformed frames" kill -0 "$(cat /run/postern-lab/postern-dp.pid)"
check "dataplane still answers ping after malformed frames" ping_intact cli 198.18.0.1 2
sleep 0.2
counters_json >"$CONF/after.json"
# One TAP line per counter, through ok/not_ok so the plan counts them; a
# crash of the checker is a failure too.
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
    # af_packet may drop a frame under a burst (lower bound 90%); nothing
    # else is sent in this window, so more than n means misclassification.
    good = n > 0 and 0.9 * n <= delta <= n
    print(f"{'ok' if good else 'not_ok'} counter {name} grew by {delta} for {n} frames "
          f"({', '.join(k for k, _ in kinds)})")
PY
then
	while read -r verdict text; do
		if [ "$verdict" = ok ]; then ok "$text"; else not_ok "$text"; fi
	done <"$CONF/verdicts"
else
	not_ok "counter check crashed"
fi

# Pure noise after the classified frames: survival is what counts.
"$LAB" exec cli python3 "$TOP/tests/lab/malformed.py" cli0 "$MAC0" 198.18.0.2 198.18.0.1 500 11 noise \
	>/dev/null 2>"$CONF/noise.err" && ok "sent 500 frames of random noise" || not_ok "noise generator"
check "dataplane answers ping after the noise" ping_intact cli 198.18.0.1 2

# Snapshots: a reload is adopted by every worker; an invalid one is refused
# and the old generation stays live.
gen_of() { "$LAB" ctl status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["generation"], *sorted({w["generation"] for w in d["workers"]}))'; }
g0=$(gen_of) || g0="0 0"
sed -i 's/^idle_sleep .*/idle_sleep = 150us/' "$CONF/postern.conf"
check "posternctl reload publishes a new generation" "$LAB" ctl reload
sleep 0.3
g1=$(gen_of) || g1="0 0"
set -- $g0; p0=$1; set -- $g1
if [ "$1" -eq $((p0 + 1)) ] && [ "$#" -eq 2 ] && [ "$2" -eq "$1" ]; then
	ok "every worker adopted generation $1 (was $p0)"
else
	not_ok "workers on the reloaded generation (before: $g0, after: $g1)"
fi
echo "workerz = 3" >>"$CONF/postern.conf"
if out=$("$LAB" ctl reload 2>&1); then
	not_ok "an invalid configuration must be refused"
else
	echo "$out" | grep -q "postern.conf:[0-9]*:.*workerz" &&
		ok "invalid config refused, naming file and line: $out" ||
		not_ok "refusal names file and line: $out"
fi
sed -i '/^workerz/d' "$CONF/postern.conf"
g2=$(gen_of) || g2="0 0"
[ "$g2" = "$g1" ] && ok "old generation stays live after a refused reload ($g2)" ||
	not_ok "generation changed after refused reload ($g1 -> $g2)"

# Crashes. A dataplane killed with -9 leaves its reader records behind:
# publishing must go on (a dead pid's records do not count) and a new
# dataplane must take over cleanly, for more reloads than there are slots.
kill -KILL "$(cat /run/postern-lab/postern-dp.pid)"
sleep 0.2
reloads_ok=1
for i in 1 2 3 4 5 6; do "$LAB" ctl reload >/dev/null 2>&1 || reloads_ok=0; done
[ "$reloads_ok" = 1 ] && ok "6 reloads published while the dataplane is dead (stale readers ignored)" ||
	not_ok "reloads refused after the dataplane was killed"
check "restarted dataplane becomes ready" "$LAB" restart postern-dp
reloads_ok=1
for i in 1 2 3 4 5 6; do "$LAB" ctl reload >/dev/null 2>&1 || reloads_ok=0; sleep 0.05; done
sleep 0.3
g3=$(gen_of) || g3="0 0"
set -- $g3
[ "$reloads_ok" = 1 ] && [ "$#" -eq 2 ] && [ "$2" -eq "$1" ] &&
	ok "6 more reloads adopted by the new dataplane's workers (generation $1)" ||
	not_ok "reloads after the dataplane restart ($g3)"
check "ping answered by the restarted dataplane" ping_intact cli 198.18.0.1 2

# The dataplane outlives the control plane, and a restarted control plane
# re-attaches and goes on counting generations.
kill -KILL "$(cat /run/postern-lab/posternd.pid)"
sleep 0.3
check "ping still answered after kill -9 of posternd" ping_intact cli 198.18.0.1 2
check "restarted posternd re-attaches" "$LAB" restart posternd
sleep 0.3
g4=$(gen_of) || g4="0 0"
set -- $g4
p3=${g3%% *}
[ "$1" -eq $((p3 + 1)) ] && [ "$#" -eq 2 ] && [ "$2" -eq "$1" ] &&
	ok "restarted posternd published generation $1 after $p3, adopted by every worker" ||
	not_ok "generation after posternd restart: $g4 (before: $g3)"
check "posternctl status through the restarted posternd" "$LAB" ctl status

pids="$(cat /run/postern-lab/postern-dp.pid) $(cat /run/postern-lab/posternd.pid)"
check "lab stop" "$LAB" stop
gone=1
for pid in $pids; do kill -0 "$pid" 2>/dev/null && gone=0; done
[ "$gone" = 1 ] && ok "the lab's postern-dp and posternd are gone ($pids)" ||
	not_ok "a lab process survived stop ($pids)"
check "ping unanswered after stop" ping_silent cli 198.18.0.1
tap_done
