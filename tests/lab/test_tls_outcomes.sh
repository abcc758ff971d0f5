#!/usr/bin/env bash
# tests/lab/test_tls_outcomes.sh - the TLS outcome of a delivery is true
# evidence (issue 13, part 2): an attempt that never sent the message - the
# next hop refused the connection, or closed it right after its greeting -
# is "not_sent", never "plaintext", at every strict level and at may; and
# "plaintext" counts exactly the messages a next hop received in clear,
# counted at the next hop. The delivery records (posternctl log), the
# per-domain table (posternctl stats) and /metrics must agree. Every
# refused or hung-up destination is observed over at least two attempts.
# Prints TAP.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONF=$(mktemp -d /tmp/pg-outcome-conf.XXXXXX)
SPOOL=$(mktemp -d /var/tmp/pg-outcome-spool.XXXXXX)
CERTS=$CONF/certs
PORT=9478
chmod 755 "$CONF"
sink_stop() { pkill -TERM -f "smtpsink.py --listen $1 " 2>/dev/null; for _ in $(seq 50); do pgrep -f "smtpsink.py --listen $1 " >/dev/null || return 0; sleep 0.1; done; pkill -KILL -f "smtpsink.py --listen $1 "; }
cleanup() {
	"$LAB" stop >/dev/null 2>&1
	for p in 2702 2703 2704; do sink_stop "198.19.0.2:$p"; done
	rm -rf "$CONF" "$SPOOL"
}
trap cleanup EXIT

"$TOP/tests/lab/mkcerts.sh" "$CERTS" >/dev/null || { not_ok "mkcerts.sh"; tap_done; exit 1; }
FP_VALID=$(awk '$1 == "valid" {print $3}' "$CERTS/fingerprints.txt")

# next hops: 2701 nothing listens (refused), 2702 greets and hangs up,
# 2703 plaintext only, 2704 STARTTLS with a certificate the lab CA signed
BEHAVIOURS="refused hangup notls valid"
port_of() { case $1 in refused) echo 2701 ;; hangup) echo 2702 ;; notls) echo 2703 ;; valid) echo 2704 ;; esac; }
LEVELS=(
	"may may"
	"encrypt encrypt"
	"fingerprint fingerprint match=$FP_VALID"
	"verify verify match=mx.tls.test"
	"secure secure match=mx.tls.test"
)
: >"$CONF/transport"
: >"$CONF/tls_policy"
for l in "${LEVELS[@]}"; do
	set -- $l
	for b in $BEHAVIOURS; do
		echo "$1-$b.out.test	smtp:[198.19.0.2]:$(port_of "$b")" >>"$CONF/transport"
		echo "$1-$b.out.test	${l#* }" >>"$CONF/tls_policy"
	done
done
sed -e "s#^spool_directory.*#spool_directory = $SPOOL#" \
	"$TOP/tools/lab-config/postern.conf" >"$CONF/postern.conf"
cat >>"$CONF/postern.conf" <<EOF
smtp_tls_CAfile = $CERTS/ca.pem
metrics_listen = 127.0.0.1:$PORT
# this run's records only (the lab's default log outlives runs)
log_file = $CONF/postern.log
EOF

sink_start() {
	local name=$1 port=$2 dir=$CONF/sink-$1
	shift 2
	mkdir -p "$dir"
	"$LAB" exec srv python3 "$TOP/tests/lab/smtpsink.py" --listen "198.19.0.2:$port" --dir "$dir" \
		--duration 600 "$@" >>"$dir.log" 2>&1 &
}
"$LAB" down >/dev/null 2>&1
"$LAB" start "$CONF" >/dev/null || { not_ok "lab start"; tap_done; exit 1; }
sink_start hangup 2702 --hangup-after-greeting
sink_start notls 2703
sink_start valid 2704 --starttls "$CERTS/valid.pem" "$CERTS/valid.key"
for _ in $(seq 100); do
	[ -f "$CONF/sink-hangup/ready" ] && [ -f "$CONF/sink-notls/ready" ] && [ -f "$CONF/sink-valid/ready" ] && break
	sleep 0.1
done
check "three next hops ready (hang-up, plaintext, STARTTLS); nothing on 2701" \
	test -f "$CONF/sink-hangup/ready" -a -f "$CONF/sink-notls/ready" -a -f "$CONF/sink-valid/ready"

# two messages to each may domain (so the plaintext count is not just 0 or 1), one to the others
send_one() {
	"$LAB" exec cli python3 - "$1" <<'PYEOF'
import smtplib, sys
rcpt = sys.argv[1]
s = smtplib.SMTP("198.18.0.1", 25, timeout=30)
s.sendmail("outcome@sender.example", [rcpt], "Subject: to %s\r\n\r\nbody\r\n" % rcpt)
s.quit()
PYEOF
}
sent=0
want_sent=0
for l in "${LEVELS[@]}"; do
	set -- $l
	for b in $BEHAVIOURS; do
		n=1
		[ "$1" = may ] && n=2
		for _ in $(seq $n); do
			want_sent=$((want_sent + 1))
			send_one "rcpt@$1-$b.out.test" && sent=$((sent + 1))
		done
	done
done
check "all $want_sent messages accepted by Postern" test "$sent" = "$want_sent"

# at the next hops: recipient -> "plain" or the TLS version, one line per message
received() {
	python3 - "$CONF" <<'PYEOF'
import glob, json, sys
for f in glob.glob(sys.argv[1] + "/sink-*/[0-9]*.json"):
    j = json.load(open(f))
    for r in j.get("rcpts", []):
        print(r, (j.get("tls") or {}).get("version", "plain"))
PYEOF
}
log_json() { "$LAB" ctl log --json --lines 100000 2>/dev/null; }
# attempts LOG RCPT: delivery records for RCPT
attempts() { python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    n += e.get("event") == "delivery attempt" and e.get("to") == sys.argv[2]
print(n)' "$1" "$2"; }

# delivered: may-notls (2, plain), may-valid (2), the strict -valid domains (4)
# deferred and retried: every -refused and -hangup domain, and the strict -notls ones
for _ in $(seq 120); do
	log_json >"$CONF/log.json"
	short=0
	for l in "${LEVELS[@]}"; do
		set -- $l
		for b in refused hangup; do
			[ "$(attempts "$CONF/log.json" "rcpt@$1-$b.out.test")" -ge 2 ] || short=$((short + 1))
		done
	done
	[ "$short" -eq 0 ] && [ "$(received | wc -l)" -ge 8 ] && break
	sleep 0.5
done
check "every refused and hung-up destination was attempted at least twice" test "$short" = 0
# one consistent view: the dataplane stops (no more attempts), then posternd's
# stats, metrics and log are read after it has drained the last records
kill -TERM "$(cat /run/postern-lab/postern-dp.pid)" 2>/dev/null
for _ in $(seq 100); do kill -0 "$(cat /run/postern-lab/postern-dp.pid)" 2>/dev/null || break; sleep 0.1; done
for _ in $(seq 20); do
	"$LAB" ctl stats --json >"$CONF/stats.json" 2>/dev/null
	sleep 0.5
	"$LAB" ctl stats --json >"$CONF/stats2.json" 2>/dev/null
	python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["tls_outcomes"] != json.load(open(sys.argv[2]))["tls_outcomes"])' \
		"$CONF/stats.json" "$CONF/stats2.json" && break
done
python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$PORT/metrics', timeout=5).read().decode())" \
	>"$CONF/metrics.txt" 2>&1
log_json >"$CONF/log.json"
received >"$CONF/received.txt"

# the delivery records of every attempt, per recipient
check "refused connection: 451 4.4.1, outcome not_sent, at every level and every attempt" python3 - "$CONF/log.json" <<'PYEOF'
import json, sys
bad, seen = [], 0
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") != "delivery attempt" or "-refused.out.test" not in e.get("to", ""):
        continue
    seen += 1
    if not (e["status"] == "deferred" and e["dsn"] == "4.4.1" and e["tls_outcome"] == "not_sent"
            and "refused" in e["reply"]):
        bad.append((e["to"], e["status"], e["dsn"], e["tls_outcome"], e["reply"]))
assert seen >= 12 and not bad, (seen, bad)
PYEOF
check "next hop closing after its greeting: deferred 4.x.x, outcome not_sent, every attempt" python3 - "$CONF/log.json" <<'PYEOF'
import json, sys
bad, seen = [], 0
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") != "delivery attempt" or "-hangup.out.test" not in e.get("to", ""):
        continue
    seen += 1
    if not (e["status"] == "deferred" and e["dsn"].startswith("4.") and e["tls_outcome"] == "not_sent"):
        bad.append((e["to"], e["status"], e["dsn"], e["tls_outcome"], e["reply"]))
assert seen >= 12 and not bad, (seen, bad)
PYEOF
check "no delivery record of a strict destination says plaintext" python3 - "$CONF/log.json" <<'PYEOF'
import json, sys
bad = []
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") == "delivery attempt" and e.get("to", "").split("@")[-1].split("-")[0] in \
            ("encrypt", "fingerprint", "verify", "secure") and e["tls_outcome"] == "plaintext":
        bad.append(e["to"])
assert not bad, bad
PYEOF
check "strict destinations without STARTTLS: deferred 4.7.4, outcome deferred, nothing at the next hop" python3 - "$CONF/log.json" "$CONF/received.txt" <<'PYEOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
for lvl in ("encrypt", "fingerprint", "verify", "secure"):
    to = "rcpt@%s-notls.out.test" % lvl
    mine = [e for e in recs if e.get("event") == "delivery attempt" and e.get("to") == to]
    assert mine and all(e["dsn"] == "4.7.4" and e["tls_outcome"] == "deferred" for e in mine), (to, mine)
    assert to not in open(sys.argv[2]).read(), to
PYEOF

# the per-domain figures against what each next hop received
check "plaintext per domain (stats) = messages the next hop received in clear; not_sent and TLS as expected" \
	python3 - "$CONF/stats.json" "$CONF/received.txt" <<'PYEOF'
import json, sys
t = json.load(open(sys.argv[1]))["tls_outcomes"]
clear, tls = {}, {}
for line in open(sys.argv[2]):
    rcpt, how = line.split()
    d = rcpt.split("@")[1]
    (clear if how == "plain" else tls)[d] = (clear if how == "plain" else tls).get(d, 0) + 1
bad = []
for lvl in ("may", "encrypt", "fingerprint", "verify", "secure"):
    for b in ("refused", "hangup", "notls", "valid"):
        d = "%s-%s.out.test" % (lvl, b)
        row = t.get(d, {})
        if row.get("plaintext", 0) != clear.get(d, 0):
            bad.append((d, "plaintext", row.get("plaintext", 0), "at next hop", clear.get(d, 0)))
        if b in ("refused", "hangup") and (row.get("not_sent", 0) < 2 or clear.get(d) or tls.get(d)):
            bad.append((d, row))
        if b == "valid" and tls.get(d, 0) != (2 if lvl == "may" else 1):
            bad.append((d, "over TLS at next hop", tls.get(d, 0)))
if clear.get("may-notls.out.test") != 2:
    bad.append(("may-notls.out.test received in clear", clear.get("may-notls.out.test")))
if set(clear) != {"may-notls.out.test"}:
    bad.append(("plaintext at next hops", clear))
assert not bad, bad
PYEOF
check "/metrics agrees with posternctl stats for every domain and outcome" \
	python3 - "$CONF/stats.json" "$CONF/metrics.txt" <<'PYEOF'
import json, re, sys
t = json.load(open(sys.argv[1]))["tls_outcomes"]
m = {}
for line in open(sys.argv[2]):
    g = re.match(r'postern_delivery_tls_total\{domain="([^"]*)",outcome="([^"]*)"\} (\d+)', line)
    if g:
        m[(g.group(1), g.group(2))] = int(g.group(3))
assert m, "no postern_delivery_tls_total series"
bad = [(d, o, n, m.get((d, o))) for d, row in t.items() for o, n in row.items() if m.get((d, o)) != n]
assert not bad and ("may-refused.out.test", "not_sent") in m, bad
PYEOF
check "the log agrees with stats: records per domain and outcome" python3 - "$CONF/log.json" "$CONF/stats.json" <<'PYEOF'
import json, sys
t = json.load(open(sys.argv[2]))["tls_outcomes"]
n = {}
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") == "delivery attempt" and e.get("to", "").endswith(".out.test"):
        k = (e["to"].split("@")[1], e["tls_outcome"])
        n[k] = n.get(k, 0) + 1
bad = [(k, v, t.get(k[0], {}).get(k[1])) for k, v in n.items() if t.get(k[0], {}).get(k[1], 0) != v]
bad += [(d, o, c) for d, row in t.items() if d.endswith(".out.test") for o, c in row.items()
        if c != n.get((d, o), 0)]
assert n and not bad, bad
PYEOF
tap_done
