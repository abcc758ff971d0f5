#!/usr/bin/env bash
# tests/lab/test_relay.sh - the relay end to end in the lab (issue 5): mail
# from pg-cli through Postern to next hops in pg-srv - the scriptable sink
# (tests/lab/smtpsink.py), Postfix's smtp-sink, and a real Postfix - and
# every message compared byte for byte with what was sent. Retries against
# a next hop that answers 4xx and then recovers; bounces (RFC 3464 DSNs) for
# 5xx and for expiry, none for the null sender; next hops tried in order;
# Postfix smtp-source as a sender; the queue while the next hop is down,
# and `posternctl queue` on it. Prints TAP.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONF=$(mktemp -d /tmp/pg-relay-conf.XXXXXX)
SPOOL=$(mktemp -d /var/tmp/pg-relay-spool.XXXXXX)
SINK=$CONF/sink
PFX=$CONF/pfx
sink_stop() { pkill -TERM -f "smtpsink.py --listen $1 " 2>/dev/null; for _ in $(seq 50); do pgrep -f "smtpsink.py --listen $1 " >/dev/null || return 0; sleep 0.1; done; pkill -KILL -f "smtpsink.py --listen $1 "; }
cleanup() {
	"$LAB" stop >/dev/null 2>&1
	sink_stop 198.19.0.2:25
	sink_stop 198.19.0.2:2526
	pkill -f "smtp-sink .*198.19.0.2:2527" 2>/dev/null
	[ -d "$PFX" ] && "$LAB" exec srv "$TOP/tests/lab/postfix-inst.sh" stop "$PFX" >/dev/null 2>&1
	ip -n pg-srv addr del 198.19.0.3/24 dev srv0 2>/dev/null
	rm -rf "$CONF" "$SPOOL"
}
trap cleanup EXIT

sed -e "s#^spool_directory.*#spool_directory = $SPOOL#" \
	-e "s#^maximal_queue_lifetime.*#maximal_queue_lifetime = 1h#" \
	"$TOP/tools/lab-config/postern.conf" >"$CONF/postern.conf"
# a JSON log of this run only: the default file keeps every run's records,
# and a record of an earlier run must not pass for one of this run
echo "log_file = $CONF/postern.log" >>"$CONF/postern.conf"
cat >"$CONF/transport" <<'EOF'
failover.example	smtp:[198.19.0.2]:2526, [198.19.0.2]:2528, [198.19.0.2]:25
psink.example	smtp:[198.19.0.2]:2527
pfx.example	smtp:[198.19.0.3]:25
nodns.example	smtp:mx.nodns.example
*	smtp:[198.19.0.2]:25
EOF

# sink_start DIR [smtpsink options]: the scriptable next hop on 198.19.0.2:25
sink_start() {
	local dir=$1
	shift
	sink_stop 198.19.0.2:25
	mkdir -p "$dir"
	rm -f "$dir/ready"
	"$LAB" exec srv python3 "$TOP/tests/lab/smtpsink.py" --listen 198.19.0.2:25 --dir "$dir" \
		--duration 600 "$@" >>"$dir.log" 2>&1 &
	for _ in $(seq 100); do [ -f "$dir/ready" ] && return 0; sleep 0.1; done
	tail -n 5 "$dir.log"
	return 1
}
send() { "$LAB" exec cli python3 "$TOP/tests/lab/relaycheck.py" send 198.18.0.1 "$@"; }
eml_count() { find "$1" -maxdepth 1 -name '*.eml' 2>/dev/null | wc -l; }
# wait_for SECONDS CMD...: until CMD succeeds, evaluated again each time (bounded in time)
wait_for() { local end=$((SECONDS + $1)); shift; while [ $SECONDS -lt "$end" ]; do "$@" && return 0; sleep 0.3; done; "$@"; }
emls_over() { [ "$(eml_count "$SINK")" -ge "$1" ]; }
delta_ge() { [ "$(ctr_delta "$1" "$2")" -ge "$3" ]; }
log_has() { "$LAB" ctl log --json 2>/dev/null | grep -c "$1"; }
queued() { counters_json >"$CONF/cq.json"; counter "$CONF/cq.json" spool_queued; }
drained() { [ "$(queued)" -eq 0 ] && [ "$(counter "$CONF/cq.json" delivery_active)" -eq 0 ]; }
ctr_delta() { counters_json >"$CONF/cd.json"; echo $(( $(counter "$CONF/cd.json" "$1") - $(counter "$2" "$1") )); }

chmod 755 "$CONF" # the Postfix instance delivers as nobody under it
"$LAB" down >/dev/null 2>&1
check "lab start with delivery to the lab's next hops (spool $SPOOL)" "$LAB" start "$CONF"
check "sink on [198.19.0.2]:25" sink_start "$SINK"
counters_json >"$CONF/c0.json"

# 1. Every kind of message, byte for byte (plus the Received header).
send "$CONF/kinds.log" --count 28 --threads 3 --per-conn 4 --rcpts 2 --prefix k >"$CONF/kinds.out" 2>&1
if python3 "$TOP/tests/lab/relaycheck.py" compare "$CONF/kinds.log" "$SINK" --wait 60 >"$CONF/kinds.cmp"; then
	ok "28 messages of 7 kinds (plain, dots, 8bit, SMTPUTF8, 200 KB, BDAT, empty) delivered byte for byte: $(cat "$CONF/kinds.cmp")"
else
	not_ok "byte-for-byte delivery: $(cat "$CONF/kinds.out") $(cat "$CONF/kinds.cmp")"
fi
python3 - "$SINK" >"$CONF/params.txt" <<'EOF'
import glob, json, sys
seen = {"utf8": False, "8bit": False, "size": True, "one_txn": True}
for f in glob.glob(sys.argv[1] + "/[0-9]*.json"):
    d = json.load(open(f))
    if d["mail_params"].get("SMTPUTF8"):
        seen["utf8"] = True
    if d["mail_params"].get("BODY") == "8BITMIME":
        seen["8bit"] = True
    if "SIZE" not in d["mail_params"]:
        seen["size"] = False
    if len(d["rcpts"]) != 2 and d["mail_from"] == "sender@pg-cli.example":
        seen["one_txn"] = False
print(json.dumps(seen))
EOF
grep -q '"utf8": true, "8bit": true, "size": true, "one_txn": true' "$CONF/params.txt" &&
	ok "ESMTP parameters carried to the next hop (SMTPUTF8, BODY=8BITMIME, SIZE), both recipients in one transaction" ||
	not_ok "parameters at the next hop: $(cat "$CONF/params.txt")"
reuse=$(ctr_delta delivery_connection_reuses "$CONF/c0.json")
[ "$reuse" -gt 0 ] && ok "connections to the next hop reused ($reuse transactions on a cached connection)" ||
	not_ok "no connection reuse"

# 2. One message to 100 recipients: one transaction at the next hop.
n0=$(eml_count "$SINK")
send "$CONF/many.log" --count 1 --rcpts 100 --kinds plain --prefix many >/dev/null 2>&1
if wait_for 30 emls_over $((n0 + 1)) && python3 - "$SINK" <<'EOF'
import glob, json, sys
sys.exit(0 if any(len(json.load(open(f))["rcpts"]) == 100 for f in glob.glob(sys.argv[1] + "/[0-9]*.json")) else 1)
EOF
then ok "100 recipients delivered in one transaction"; else not_ok "100 recipients: not one transaction"; fi

# 3. Postfix smtp-source as the sender: 50 messages over 5 sessions.
n0=$(eml_count "$SINK")
if "$LAB" exec cli timeout 60 smtp-source -c -m 50 -s 5 -l 4096 -f source@pg-cli.example \
	-t sink@example.org 198.18.0.1:25 >"$CONF/source.out" 2>&1 &&
	wait_for 30 emls_over $((n0 + 50)); then
	ok "Postfix smtp-source: 50 messages of 4 KB relayed ($(($(eml_count "$SINK") - n0)) at the next hop)"
else
	not_ok "smtp-source: $(tail -n 3 "$CONF/source.out") at the sink: $(($(eml_count "$SINK") - n0))"
fi

# 3b. SMTP smuggling (CVE-2023-51764 class): no fake end of data ends the
#     data, nothing after it becomes a message, nothing reaches the next hop.
for v in lf cr crlf-lf lf-crlf cr-crlf crlf-cr; do
	"$LAB" exec cli python3 "$TOP/tests/lab/smtpsend.py" smuggle 198.18.0.1 example.org "$v" >"$CONF/sm-$v.json" 2>&1
done
python3 - "$CONF" <<'EOF' >"$CONF/smuggle.txt" 2>&1
import json, sys
bad = []
for v in ["lf", "cr", "crlf-lf", "lf-crlf", "cr-crlf", "crlf-cr"]:
    d = json.load(open(f"{sys.argv[1]}/sm-{v}.json"))
    r = d["replies"]
    # 354 for DATA, then exactly one reply for the whole payload: a refusal
    if not (r[4].startswith("354") and r[5][:1] == "5" and r[6].startswith("221") and len(r) == 7):
        bad.append((v, r))
print(json.dumps(bad) if bad else "all 6 refused as one message")
sys.exit(1 if bad else 0)
EOF
[ $? -eq 0 ] && ok "smuggling: fake end of data (LF.LF, CR.CR, CRLF.LF, LF.CRLF, CR.CRLF, CRLF.CR) never ends the data: $(cat "$CONF/smuggle.txt")" ||
	not_ok "smuggling: $(cat "$CONF/smuggle.txt")"
# once the queue is empty, whatever Postern had queued has been delivered
wait_for 20 drained
if drained && ! grep -qs "victim@\|evil@attacker" "$SINK"/*.json; then
	ok "no smuggled message (evil@attacker.example -> victim@) reached the next hop (the queue empty)"
else
	not_ok "smuggling: queued $(queued); at the next hop: $(grep -ls "victim@\|evil@attacker" "$SINK"/*.json | head -n 3 | tr '\n' ' ')"
fi

# 3c. smtp_destination_concurrency_limit: never more connections to one next
#     hop per worker than the limit (the sink answers slowly to make them pile up).
sink_stop 198.19.0.2:25
sed -i "s#^maximal_queue_lifetime.*#maximal_queue_lifetime = 1h\nsmtp_destination_concurrency_limit = 2#" "$CONF/postern.conf"
"$LAB" ctl reload --wait >/dev/null
check "sink restarted with 300 ms per reply" sink_start "$SINK" --delay-ms 300
send "$CONF/conc.log" --count 24 --threads 8 --kinds plain --prefix conc >/dev/null 2>&1 &
spid=$!
maxc=0
for _ in $(seq 40); do
	c=$("$LAB" ctl sessions --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
per = [sum(1 for c in w["sessions"] if c["remote"] == "198.19.0.2:25" and c["state"] == "ESTABLISHED")
       for w in d["workers"]]
print(max(per) if per else 0)' 2>/dev/null || echo 0)
	[ "$c" -gt "$maxc" ] && maxc=$c
	sleep 0.25
done
wait $spid
if python3 "$TOP/tests/lab/relaycheck.py" compare "$CONF/conc.log" "$SINK" --wait 60 >"$CONF/conc.cmp" &&
	[ "$maxc" -ge 1 ] && [ "$maxc" -le 2 ]; then
	ok "concurrency limit 2: at most $maxc connections per worker to the next hop; all 24 delivered"
else
	not_ok "concurrency: max $maxc per worker (limit 2); $(cat "$CONF/conc.cmp")"
fi
sed -i "/^smtp_destination_concurrency_limit/d" "$CONF/postern.conf"
"$LAB" ctl reload --wait >/dev/null

# 4. Bounces: 550 for one recipient of two -> a DSN to the sender for that one.
sink_stop 198.19.0.2:25
check "sink restarted with 550 for bounce-* and 450 for later-*" \
	sink_start "$SINK" --rcpt-reply 'bounce-.*=550 5.1.1 user unknown' --rcpt-reply 'later-.*=450 4.2.0 try later'
"$LAB" exec cli swaks --server 198.18.0.1 --from orig@pg-cli.example --to ok-1@example.org,bounce-1@example.org \
	--header "X-Pg-Id: bounce1" --helo pg-cli.example >"$CONF/b1.txt" 2>&1
python3 - "$SINK" >"$CONF/dsn.txt" 2>&1 <<'EOF'
import email, email.policy, glob, json, sys, time
deadline = time.time() + 30
while time.time() < deadline:
    for f in glob.glob(sys.argv[1] + "/[0-9]*.json"):
        d = json.load(open(f))
        if d["mail_from"] != "" or d["rcpts"] != ["orig@pg-cli.example"]:
            continue
        raw = open(f[:-5] + ".eml", "rb").read()
        m = email.message_from_bytes(raw, policy=email.policy.default)
        parts = list(m.iter_parts())
        ds = parts[1].get_payload()
        recips = [dict(p.items()) for p in ds[1:]] if isinstance(ds, list) else []
        checks = {
            "multipart/report": m.get_content_type() == "multipart/report"
                                and m.get_param("report-type") == "delivery-status",
            "three parts": len(parts) == 3 and parts[1].get_content_type() == "message/delivery-status",
            "one recipient": len(recips) == 1,
            "failed 5.1.1": recips and recips[0].get("Action") == "failed"
                            and recips[0].get("Status") == "5.1.1",
            "final recipient": recips and "bounce-1@example.org" in recips[0].get("Final-Recipient", ""),
            "diagnostic": recips and "user unknown" in recips[0].get("Diagnostic-Code", ""),
            "remote mta": recips and "198.19.0.2" in recips[0].get("Remote-MTA", ""),
            "original quoted": b"X-Pg-Id: bounce1" in raw,
            "auto-submitted": m["Auto-Submitted"] == "auto-replied",
        }
        print(json.dumps(checks))
        sys.exit(0 if all(checks.values()) else 1)
    time.sleep(0.3)
print("no DSN for orig@pg-cli.example arrived")
sys.exit(1)
EOF
[ $? -eq 0 ] && ok "550 for one of two recipients: a DSN (multipart/report, failed 5.1.1, the original) to the sender" ||
	not_ok "DSN: $(cat "$CONF/dsn.txt") swaks: $(grep '<-' "$CONF/b1.txt" | tail -n 2 | tr '\n' '|')"
grep -q '"ok-1@example.org"' "$SINK"/*.json && ok "the other recipient was delivered" || not_ok "ok-1 not delivered"

# 5. No DSN to the null sender (RFC 5321 6.1): the 5xx is counted as a
#    discarded DSN, no DSN is counted as sent, and once the queue is empty
#    no new message from <> has reached the next hop.
null_msgs() { python3 - "$SINK" <<'PYEOF'
import glob, json, sys
print(sum(1 for f in glob.glob(sys.argv[1] + "/[0-9]*.json") if json.load(open(f)).get("mail_from") == ""))
PYEOF
}
c1=$CONF/c1.json
counters_json >"$c1"
null0=$(null_msgs)
"$LAB" exec cli swaks --server 198.18.0.1 --from '<>' --to bounce-2@example.org --helo pg-cli.example >"$CONF/null.txt" 2>&1
wait_for 20 delta_ge dsn_discarded "$c1" 1
wait_for 20 drained
nd=$(ctr_delta dsn_discarded "$c1") ns=$(ctr_delta dsn_sent "$c1") null1=$(null_msgs)
if [ "$nd" -eq 1 ] && [ "$ns" -eq 0 ] && [ "$null1" -eq "$null0" ] && drained &&
	"$LAB" ctl log 2>/dev/null | grep -q "to=bounce-2@example.org.*status=bounced dsn=5.1.1"; then
	ok "a 5xx for mail from <> is not bounced: dsn_discarded +$nd, dsn_sent +$ns, no message from <> at the next hop, the queue empty"
else
	not_ok "null sender bounce: dsn_discarded +$nd (want 1), dsn_sent +$ns (want 0), messages from <> at the next hop $null0 -> $null1, queued $(queued); $(grep '<-' "$CONF/null.txt" | tail -n 2 | tr '\n' '|')"
fi

# 6. 450 -> retried on the schedule (2s 4s ...) until the lifetime; with a
#    short lifetime the message bounces with 4.4.7.
counters_json >"$c1"
"$LAB" exec cli swaks --server 198.18.0.1 --from late@pg-cli.example --to later-1@example.org \
	--header "X-Pg-Id: later1" --helo pg-cli.example >/dev/null 2>&1
if wait_for 20 delta_ge delivery_rcpts_deferred "$c1" 2; then
	ok "450 deferred and retried ($(ctr_delta delivery_rcpts_deferred "$c1") deferrals so far)"
else
	not_ok "450: deferrals $(ctr_delta delivery_rcpts_deferred "$c1")"
fi
sed -i "s#^maximal_queue_lifetime.*#maximal_queue_lifetime = 3s#" "$CONF/postern.conf"
check "reload with maximal_queue_lifetime = 3s" "$LAB" ctl reload --wait
expired_dsn() { grep -l '"late@pg-cli.example"' "$SINK"/*.json 2>/dev/null | sed 's/json$/eml/' | xargs -r grep -q "Status: 4.4.7"; }
if wait_for 30 expired_dsn; then
	ok "past maximal_queue_lifetime the 4xx recipient bounces with 4.4.7"
else
	not_ok "expiry bounce not seen"
fi
sed -i "s#^maximal_queue_lifetime.*#maximal_queue_lifetime = 1h#" "$CONF/postern.conf"
"$LAB" ctl reload --wait >/dev/null

# 7. A next hop that answers 451 twice, then recovers (state kept across
#    sink restarts): the delivery records of the message are exactly 451,
#    451, sent - in that order, each retry no earlier than the schedule
#    (2s, then 4s) - and the sink gave exactly 2 deferrals.
# attempts RCPT: the delivery records of RCPT as "status dsn epoch_seconds", in log order
attempts() { "$LAB" ctl log --json --lines 100000 2>/dev/null | python3 -c '
import datetime, json, sys
for line in sys.stdin:
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") == "delivery attempt" and e.get("to") == sys.argv[1]:
        ts = datetime.datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
        print(e["status"], e.get("dsn", ""), e.get("relay", ""), "%.3f" % ts.timestamp())' "$1"; }
# the sink's durable count of the 451s it gave (written before each 451 goes out)
sink_state() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["defer_first_given"])' "$SINK/state.json"; }
sink_stop 198.19.0.2:25
check "sink restarted: 451 for the first 2 messages" sink_start "$SINK" --defer-first 2
counters_json >"$c1"
send "$CONF/retry.log" --count 1 --kinds plain --prefix retry --domain retry.example >/dev/null 2>&1
python3 "$TOP/tests/lab/relaycheck.py" compare "$CONF/retry.log" "$SINK" --wait 40 >"$CONF/retry.cmp"
rc=$?
attempts rcpt0-0@retry.example >"$CONF/retry.att"
if [ $rc -eq 0 ] && python3 - "$CONF/retry.att" <<'PYEOF'
import sys
a = [l.split() for l in open(sys.argv[1])]
assert [(x[0], x[1]) for x in a] == [("deferred", "4.3.0"), ("deferred", "4.3.0"), ("sent", "2.0.0")], a
t = [float(x[3]) for x in a]
# delivery_retry_schedule = 2s 4s: never earlier (the log's ms clock, 0.1 s of slack)
assert t[1] - t[0] >= 1.9 and t[2] - t[1] >= 3.9, t
PYEOF
then
	[ "$(sink_state)" = 2 ] && ok "451, 451, then delivered on the retry schedule: $(tr '\n' ';' <"$CONF/retry.att") the sink gave $(sink_state) 451s; $(cat "$CONF/retry.cmp")" ||
		not_ok "retry: the sink gave $(sink_state) 451s (want 2)"
else
	not_ok "retry: records $(tr '\n' ';' <"$CONF/retry.att") (want 451 4.3.0, 451 4.3.0, sent, 2 s then 4 s apart); $(cat "$CONF/retry.cmp")"
fi

# 8. Next hops in order: two that refuse the connection, then the sink.
#    nftables in pg-srv counts the SYNs to the two refusing ports and
#    remembers who tried 2526, so a SYN to 2528 counts as "in order" only
#    from an address that tried 2526 before; the delivery record names the
#    next hop that took the message.
ip netns exec pg-srv nft delete table inet pgfo 2>/dev/null
ip netns exec pg-srv nft -f - <<'NFT'
table inet pgfo {
	set tried2526 { type ipv4_addr; flags dynamic; }
	counter syn2526 { }
	counter syn2528 { }
	counter syn2528_after_2526 { }
	chain in {
		type filter hook input priority 0; policy accept;
		tcp dport 2526 tcp flags & (syn | ack) == syn counter name "syn2526" add @tried2526 { ip saddr }
		tcp dport 2528 tcp flags & (syn | ack) == syn counter name "syn2528"
		tcp dport 2528 tcp flags & (syn | ack) == syn ip saddr @tried2526 counter name "syn2528_after_2526"
	}
}
NFT
counters_json >"$c1"
send "$CONF/fo.log" --count 1 --kinds plain --prefix fo --domain failover.example >/dev/null 2>&1
python3 "$TOP/tests/lab/relaycheck.py" compare "$CONF/fo.log" "$SINK" --wait 30 >"$CONF/fo.cmp"
rc=$?
syns=$(ip netns exec pg-srv nft -j list counters table inet pgfo | python3 -c '
import json, sys
c = {x["counter"]["name"]: x["counter"]["packets"] for x in json.load(sys.stdin)["nftables"] if "counter" in x}
print(c["syn2526"], c["syn2528"], c["syn2528_after_2526"])')
ip netns exec pg-srv nft delete table inet pgfo
fo_att=$(attempts rcpt0-0@failover.example | tr '\n' ';')
fov=$(ctr_delta delivery_failovers "$c1")
if [ $rc -eq 0 ] && [ "$syns" = "1 1 1" ] && [ "$fov" -eq 2 ] && [[ "$fo_att" =~ ^sent\ 2\.0\.0\ 198\.19\.0\.2\ [0-9.]+\;$ ]]; then
	ok "next hops tried in order: 2526 refused, then 2528 refused, then delivered by :25 (SYNs 2526/2528/2528-after-2526: $syns, failovers +$fov, record: $fo_att)"
else
	not_ok "failover: SYNs 2526/2528/2528-after-2526 '$syns' (want 1 1 1), failovers +$fov (want 2), records '$fo_att' (want one, sent by 198.19.0.2:25); $(cat "$CONF/fo.cmp")"
fi

# 9. A next hop that needs DNS: deferred with 4.4.3, never dropped.
"$LAB" exec cli swaks --server 198.18.0.1 --from dns@pg-cli.example --to x@nodns.example --helo pg-cli.example >/dev/null 2>&1
if wait_for 10 sh -c "'$LAB' ctl log 2>/dev/null | grep -q 'to=x@nodns.example.*status=deferred dsn=4.4.3'"; then
	ok "a host-name next hop is deferred with 4.4.3 (no resolver yet)"
else
	not_ok "nodns: $("$LAB" ctl log 2>/dev/null | grep nodns | tail -n 1)"
fi

# 10. The next hop down: mail waits in the queue, `queue` shows it, flush delivers it.
sink_stop 198.19.0.2:25
counters_json >"$c1"
send "$CONF/down.log" --count 3 --kinds plain --prefix down >/dev/null 2>&1
wait_for 10 delta_ge delivery_connect_failures "$c1" 1 &&
	ok "next hop down: connection refused, deferred ($(ctr_delta delivery_rcpts_deferred "$c1") deferrals)" ||
	not_ok "next hop down: no connect failure counted"
"$LAB" ctl queue list >"$CONF/qlist.txt" 2>&1
n=$(grep -c "<sender@pg-cli.example>" "$CONF/qlist.txt")
[ "$n" -eq 3 ] && grep -q "in 4 Requests" "$CONF/qlist.txt" &&
	ok "posternctl queue list: the 3 deferred messages and the one for nodns.example" ||
	not_ok "queue list: $(head -c 600 "$CONF/qlist.txt")"
qid=$(grep "<sender@pg-cli.example>" "$CONF/qlist.txt" | head -n 1 | cut -c1-16)
"$LAB" ctl queue show "$qid" >"$CONF/qshow.txt" 2>&1
grep -q "last reply:.*Connection refused" "$CONF/qshow.txt" && grep -q "pending  <rcpt" "$CONF/qshow.txt" &&
	ok "posternctl queue show $qid says why: $(grep 'last reply' "$CONF/qshow.txt")" ||
	not_ok "queue show: $(head -c 600 "$CONF/qshow.txt")"
check "queue hold $qid" "$LAB" ctl queue hold "$qid"
"$LAB" ctl queue list >"$CONF/qlist2.txt" 2>&1
grep -q "^$qid!" "$CONF/qlist2.txt" && ok "held: marked ! in the list" || not_ok "hold: $(grep "$qid" "$CONF/qlist2.txt")"
check "sink back" sink_start "$SINK"
check "posternctl queue flush" "$LAB" ctl queue flush
down_n() { grep -l "X-Pg-Id: down" "$SINK"/*.eml 2>/dev/null | wc -l; }
down_ge() { [ "$(down_n)" -ge "$1" ]; }
wait_for 15 down_ge 2
sleep 1 # the held one must not follow
n=$(down_n)
[ "$n" -eq 2 ] && ok "after the flush the 2 messages not held are delivered, the held one waits" ||
	not_ok "flush with one held: $n delivered (want 2)"
check "queue release $qid" "$LAB" ctl queue release "$qid"
"$LAB" ctl queue flush "$qid" >/dev/null 2>&1
if python3 "$TOP/tests/lab/relaycheck.py" compare "$CONF/down.log" "$SINK" --wait 20 >"$CONF/down.cmp"; then
	ok "released and flushed: all 3 delivered byte for byte: $(cat "$CONF/down.cmp")"
else
	not_ok "release + flush: $(cat "$CONF/down.cmp")"
fi

# 11. Postfix smtp-sink as a next hop; it dumps every transaction it takes
#     (-d) so the count is the next hop's, not Postern's.
mkdir -p "$CONF/psink" && chmod 777 "$CONF/psink"
"$LAB" exec srv timeout 120 smtp-sink -u nobody -d "$CONF/psink/%H%M%S." 198.19.0.2:2527 64 >/dev/null 2>&1 &
sleep 0.5
counters_json >"$c1"
send "$CONF/psink.log" --count 10 --threads 2 --per-conn 5 --kinds plain,dots,8bit,big --prefix ps --domain psink.example >/dev/null 2>&1
psink_ids() { cat "$CONF"/psink/* 2>/dev/null | sed -n 's/^X-Pg-Id: \(ps[0-9]*\)\r\{0,1\}$/\1/p' | sort -u | wc -l; }
psink_done() { [ "$(psink_ids)" -ge 10 ]; }
wait_for 30 psink_done
if [ "$(grep -c '"code": 250' "$CONF/psink.log")" -eq 10 ] && [ "$(psink_ids)" -eq 10 ] &&
	[ "$(find "$CONF/psink" -type f | wc -l)" -eq 10 ]; then
	ok "Postfix smtp-sink as the next hop: 10 messages accepted, 10 transactions dumped by smtp-sink, each message once (delivered +$(ctr_delta delivery_rcpts_delivered "$c1"))"
else
	not_ok "smtp-sink: $(grep -c '"code": 250' "$CONF/psink.log") accepted, $(find "$CONF/psink" -type f | wc -l) transactions at smtp-sink, $(psink_ids) distinct messages (want 10 of each)"
fi
pkill -f "smtp-sink .*198.19.0.2:2527" 2>/dev/null

# 12. A real Postfix as the next hop (198.19.0.3 in pg-srv), Maildir delivery.
if ip -n pg-srv addr add 198.19.0.3/24 dev srv0 2>/dev/null &&
	"$LAB" exec srv "$TOP/tests/lab/postfix-inst.sh" start "$PFX" --listen 198.19.0.3:25 --mode sink >"$CONF/pfx.out" 2>&1; then
	ok "a Postfix instance listens in pg-srv on 198.19.0.3:25"
	send "$CONF/pfx.log" --count 6 --threads 2 --per-conn 3 --kinds plain,dots,8bit,big,bdat,empty --prefix pf --domain pfx.example >/dev/null 2>&1
	if "$TOP/tests/lab/postfix-inst.sh" wait "$PFX" 6 60 >/dev/null 2>&1 &&
		"$TOP/tests/lab/postfix-inst.sh" extract "$PFX" "$CONF/pfx.d" >/dev/null 2>&1 &&
		python3 - "$CONF/pfx.log" "$CONF/pfx.d" >"$CONF/pfx.cmp" 2>&1 <<'EOF'
import glob, json, re, sys
sent = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["code"] == 250:
        sent[r["id"]] = bytes.fromhex(r["data"])
good = 0
for f in glob.glob(sys.argv[2] + "/*.eml"):
    data = open(f, "rb").read()
    m = re.search(rb"\r\nX-Pg-Id: (\S+)\r\n", data)
    if not m or not data.startswith(b"Received: from pg-cli.example"):
        continue
    pos = data.index(b"\r\n") + 2
    while data[pos:pos + 1] in (b" ", b"\t"):
        pos = data.index(b"\r\n", pos) + 2
    good += data[pos:] == sent.get(m.group(1).decode())
print(f"{good} of {len(sent)} identical after Postfix's own headers")
sys.exit(0 if good == len(sent) == 6 else 1)
EOF
	then
		ok "6 messages delivered to a real Postfix (Maildir): $(cat "$CONF/pfx.cmp")"
	else
		not_ok "real Postfix: $(cat "$CONF/pfx.cmp" 2>/dev/null) $(tail -n 5 "$PFX/maillog" 2>/dev/null | tr '\n' '|')"
	fi
	"$LAB" exec srv "$TOP/tests/lab/postfix-inst.sh" stop "$PFX" >/dev/null 2>&1
else
	not_ok "Postfix instance: $(tail -n 5 "$CONF/pfx.out" | tr '\n' '|')"
fi

# 13. Everything drains; nothing stays active.
sink_stop 198.19.0.2:25
check "sink for the rest" sink_start "$SINK"
"$LAB" ctl queue flush >/dev/null 2>&1
# what stays: x@nodns.example (no resolver) - delete it by id, then all is drained
id=$("$LAB" ctl queue list --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join(m["id"] for m in d["messages"] if m["sender"] == "dns@pg-cli.example"))')
[ -n "$id" ] && "$LAB" ctl queue delete $id >"$CONF/qdel.txt" 2>&1 && grep -q "deleted" "$CONF/qdel.txt" &&
	ok "queue delete $id: $(cat "$CONF/qdel.txt")" || not_ok "queue delete '$id': $(cat "$CONF/qdel.txt" 2>/dev/null)"
if wait_for 30 drained; then
	ok "the queue drains: 0 queued, 0 in delivery"
else
	not_ok "not drained: $(queued) queued; $("$LAB" ctl queue list 2>&1 | head -n 5 | tr '\n' '|')"
fi
check "lab stop" "$LAB" stop
tap_done
