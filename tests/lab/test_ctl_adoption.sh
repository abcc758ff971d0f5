#!/usr/bin/env bash
# tests/lab/test_ctl_adoption.sh - issue 4's end-to-end check: N policy
# changes with `posternctl policy set --wait` on a running dataplane, each
# adopted by every worker, while a TCP transfer keeps running through the
# dataplane without a single dropped connection. Reports p50/p99/max of the
# time from publication to the last worker's adoption (measured by the
# workers' own adoption timestamps). N = $PG_ADOPTION_CHANGES, default 200
# (1,000 for the measurement the issue asks for). Prints TAP.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${PG_ADOPTION_CHANGES:-200}
CONF=$(mktemp -d /tmp/pg-adopt-conf.XXXXXX)
STEADY=
trap '[ -n "$STEADY" ] && kill $STEADY 2>/dev/null; "$LAB" stop >/dev/null 2>&1; rm -rf "$CONF"' EXIT
cp "$TOP/tools/lab-config/postern.conf" "$CONF/"
printf '# tls_policy written by test_ctl_adoption.sh\n' >"$CONF/tls_policy"

"$LAB" down >/dev/null 2>&1
check "lab start" "$LAB" start "$CONF"

# A transfer that must survive every change: one echo connection, 16 KiB
# every 5 ms, each echo compared.
PG_STOP_FILE=$CONF/stop "$LAB" exec cli env PG_STOP_FILE="$CONF/stop" \
	python3 "$TOP/tests/lab/tcppeer.py" steady 198.18.0.1 7 600 >"$CONF/steady.json" 2>&1 &
STEADY=$!
sleep 0.5

levels=(may encrypt secure verify none)
fails=0
: >"$CONF/latency"
for i in $(seq "$N"); do
	lvl=${levels[$((i % 5))]}
	if "$LAB" ctl policy set "d$((i % 97)).example.com" "$lvl" --wait --json >"$CONF/reply.json" 2>&1; then
		python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["adoption"]; assert a["adopted"] and not a["lagging"]; print(a["latency_ns"])' \
			"$CONF/reply.json" >>"$CONF/latency" 2>/dev/null || fails=$((fails + 1))
	else
		fails=$((fails + 1))
		[ "$fails" -le 3 ] && diag "change $i: $(cat "$CONF/reply.json")"
	fi
done
touch "$CONF/stop"
wait $STEADY
STEADY=

n_ok=$(wc -l <"$CONF/latency")
if [ "$fails" -eq 0 ] && [ "$n_ok" -eq "$N" ]; then
	ok "$N policy changes, each adopted by every worker before the reply"
else
	not_ok "policy changes: $fails failed, $n_ok adopted of $N"
fi
diag "adoption latency (publication -> last worker): $(python3 -c '
import sys
v = sorted(int(x) / 1e6 for x in open(sys.argv[1]))
q = lambda p: v[min(len(v) - 1, int(p * len(v)))]
print(f"n={len(v)} p50={q(0.5):.3f} ms p99={q(0.99):.3f} ms max={v[-1]:.3f} ms")' "$CONF/latency")"
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["error"] is None and d["sent"] == d["received"] and d["rounds"] > 100 else 1)' "$CONF/steady.json"; then
	ok "the transfer ran through every change without a dropped connection: $(cat "$CONF/steady.json")"
else
	not_ok "transfer during the changes: $(cat "$CONF/steady.json")"
fi
gen=$("$LAB" ctl status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["generation"], *sorted({w["generation"] for w in d["workers"]}))')
set -- $gen
[ "$#" -eq 2 ] && [ "$1" -eq "$2" ] && [ "$1" -ge "$((N + 1))" ] &&
	ok "every worker runs the last generation ($1)" || not_ok "generations after the changes: $gen"
check "lab stop" "$LAB" stop
tap_done
