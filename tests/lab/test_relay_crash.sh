#!/usr/bin/env bash
# tests/lab/test_relay_crash.sh - crash consistency of the relay (issue 5):
# kill -9 of postern-dp at random moments while thousands of messages are
# being accepted and delivered, a restart after each, and then: every
# message that got a 250 reached the next hop at least once (byte for byte),
# none is lost, and the spool drains. Duplicates are allowed (a crash
# between the next hop's 250 and our "delivered" record repeats a delivery,
# as in every MTA) and counted. Prints TAP.
#
# PG_CRASH_MESSAGES (default 3000) and PG_CRASH_KILLS (default 4) size it.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${PG_CRASH_MESSAGES:-3000}
KILLS=${PG_CRASH_KILLS:-4}
CONF=$(mktemp -d /tmp/pg-crash-conf.XXXXXX)
SPOOL=$(mktemp -d /var/tmp/pg-crash-spool.XXXXXX)
SINK=$CONF/sink
sink_stop() { pkill -TERM -f "smtpsink.py --listen 198.19.0.2:25 " 2>/dev/null; sleep 0.5; pkill -KILL -f "smtpsink.py --listen 198.19.0.2:25 " 2>/dev/null; }
trap '"$LAB" stop >/dev/null 2>&1; sink_stop; kill $SENDER 2>/dev/null; rm -rf "$CONF" "$SPOOL"' EXIT
SENDER=
sed "s#^spool_directory.*#spool_directory = $SPOOL#" "$TOP/tools/lab-config/postern.conf" >"$CONF/postern.conf"
cp "$TOP/tools/lab-config/transport" "$CONF/transport"
queued() { counters_json >"$CONF/cq.json" 2>/dev/null && counter "$CONF/cq.json" spool_queued; }
drained() { [ "$(queued)" = 0 ] && [ "$(counter "$CONF/cq.json" delivery_active)" = 0 ]; }

"$LAB" down >/dev/null 2>&1
check "lab start (spool $SPOOL)" "$LAB" start "$CONF"
mkdir -p "$SINK"
"$LAB" exec srv python3 "$TOP/tests/lab/smtpsink.py" --listen 198.19.0.2:25 --dir "$SINK" \
	--duration 900 >"$CONF/sink.log" 2>&1 &
for _ in $(seq 100); do [ -f "$SINK/ready" ] && break; sleep 0.1; done
[ -f "$SINK/ready" ] && ok "sink on [198.19.0.2]:25" || not_ok "sink: $(tail -n 3 "$CONF/sink.log")"

# The load: N messages, 4 senders, 10 per connection; a sender that loses
# its connection records the message as not acknowledged and reconnects.
"$LAB" exec cli python3 "$TOP/tests/lab/relaycheck.py" send 198.18.0.1 "$CONF/load.log" \
	--count "$N" --threads 4 --per-conn 10 --kinds plain,dots,8bit,empty --prefix c \
	--deadline 240 >"$CONF/send.out" 2>&1 &
SENDER=$!
kills=0
for k in $(seq "$KILLS"); do
	sleep "$(python3 -c 'import random; print(round(random.uniform(0.8, 2.5), 2))')"
	pid=$(cat /run/postern-lab/postern-dp.pid 2>/dev/null)
	if [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; then
		kills=$((kills + 1))
		sent=$(wc -l <"$CONF/load.log" 2>/dev/null || echo 0)
		diag "kill -9 #$k of postern-dp after $sent messages sent"
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		"$LAB" restart postern-dp >/dev/null 2>&1 || diag "restart #$k failed"
	fi
done
[ "$kills" -eq "$KILLS" ] && ok "postern-dp killed with -9 $kills times during the load, restarted each time" ||
	not_ok "only $kills of $KILLS kills"
wait "$SENDER"
SENDER=
python3 - "$CONF/load.log" <"$CONF/send.out" >"$CONF/send.sum" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
acked = sum(r["code"] == 250 for r in recs)
errors = sum(r["code"] == 0 for r in recs)
print(json.dumps({"sent": len(recs), "acked": acked, "connection_errors": errors}))
sys.exit(0 if acked >= len(recs) // 2 and len(recs) > 0 else 1)
EOF
[ $? -eq 0 ] && ok "load done: $(cat "$CONF/send.sum")" || not_ok "load: $(cat "$CONF/send.sum") $(tail -n 2 "$CONF/send.out")"

# Every acknowledged message at the next hop, byte for byte.
if python3 "$TOP/tests/lab/relaycheck.py" compare "$CONF/load.log" "$SINK" --wait 180 --allow-unacked >"$CONF/cmp.json"; then
	ok "every message that got a 250 was delivered, none lost: $(cat "$CONF/cmp.json")"
else
	not_ok "lost or damaged after crashes: $(cut -c1-600 "$CONF/cmp.json")"
fi
end=$((SECONDS + 60))
until drained || [ $SECONDS -ge $end ]; do sleep 0.5; done
drained && ok "the spool drained: 0 queued, 0 in delivery" ||
	not_ok "spool not drained: $(queued) queued; $("$LAB" ctl queue list 2>&1 | tail -n 3 | tr '\n' '|')"
check "lab stop" "$LAB" stop
tap_done
