#!/usr/bin/env bash
# tests/lab/test_loop.sh - mail loops are stopped (issue 13, part 3; RFC
# 5321 §6.3): Postern routes loop.example to a real Postfix relay in
# pg-srv whose relayhost is Postern, so a message to loop.example goes back
# and forth, each relay adding its Received: header. Postern counts them
# (hopcount_limit, 50 as Postfix; Postfix's own limit is raised so that
# Postern is the one that stops the loop) and refuses the message
# 554 5.4.6 before any 250; Postfix then bounces it to the sender, and the
# DSN reaches the sender's next hop through Postern. Also: a message that
# arrives with more Received: fields than the limit is refused at once,
# over DATA and over BDAT, and one with exactly the limit is accepted.
# Prints TAP.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONF=$(mktemp -d /tmp/pg-loop-conf.XXXXXX)
SPOOL=$(mktemp -d /var/tmp/pg-loop-spool.XXXXXX)
PFX=$CONF/pfx
SINK=$CONF/sink
chmod 755 "$CONF"
sink_stop() { pkill -TERM -f "smtpsink.py --listen $1 " 2>/dev/null; for _ in $(seq 50); do pgrep -f "smtpsink.py --listen $1 " >/dev/null || return 0; sleep 0.1; done; pkill -KILL -f "smtpsink.py --listen $1 "; }
cleanup() {
	"$LAB" stop >/dev/null 2>&1
	sink_stop 198.19.0.2:25
	[ -d "$PFX" ] && "$LAB" exec srv "$TOP/tests/lab/postfix-inst.sh" stop "$PFX" >/dev/null 2>&1
	ip -n pg-srv addr del 198.19.0.3/24 dev srv0 2>/dev/null
	rm -rf "$CONF" "$SPOOL"
}
trap cleanup EXIT

sed -e "s#^spool_directory.*#spool_directory = $SPOOL#" \
	"$TOP/tools/lab-config/postern.conf" >"$CONF/postern.conf"
cat >>"$CONF/postern.conf" <<EOF
# Postfix in pg-srv relays back to Postern: its mail for these domains is
# accepted from anyone
relay_domains = loop.example sender.example
hopcount_limit = 50
# this run's records only (the lab's default log outlives runs)
log_file = $CONF/postern.log
EOF
cat >"$CONF/transport" <<'EOF'
loop.example	smtp:[198.19.0.3]:25
*	smtp:[198.19.0.2]:25
EOF

"$LAB" down >/dev/null 2>&1
"$LAB" start "$CONF" >/dev/null || { not_ok "lab start"; tap_done; exit 1; }
mkdir -p "$SINK"
"$LAB" exec srv python3 "$TOP/tests/lab/smtpsink.py" --listen 198.19.0.2:25 --dir "$SINK" \
	--duration 600 >>"$SINK.log" 2>&1 &
ip -n pg-srv addr add 198.19.0.3/24 dev srv0 2>/dev/null
check "a Postfix relay on 198.19.0.3 whose relayhost is Postern (hopcount_limit 100)" \
	"$LAB" exec srv "$TOP/tests/lab/postfix-inst.sh" start "$PFX" --listen 198.19.0.3:25 --mode relay \
	--relayhost '[198.19.0.1]:25' --mynetworks 198.19.0.0/24 --set hopcount_limit=100
for _ in $(seq 100); do [ -f "$SINK/ready" ] && break; sleep 0.1; done
check "the sender's next hop (smtpsink) is ready" test -f "$SINK/ready"
counters_json >"$CONF/c0.json"

# 1. the loop
"$LAB" exec cli swaks --server 198.18.0.1 --from sender@sender.example --to user@loop.example \
	--helo pg-cli.example --header "Subject: round and round" --body "loop test" >"$CONF/swaks.out" 2>&1
check "the first copy is accepted from pg-cli" grep -q "250 2.0.0 Ok: queued" "$CONF/swaks.out"
refused() { counters_json >"$CONF/c.json"; [ "$(counter "$CONF/c.json" smtp_loops_refused)" -ge 1 ]; }
for _ in $(seq 300); do refused && break; sleep 0.5; done
check "Postern refused the looping message (smtp_loops_refused)" refused
dsn_here() { grep -ls '"mail_from": ""' "$SINK"/[0-9]*.json 2>/dev/null | head -n 1; }
for _ in $(seq 200); do [ -n "$(dsn_here)" ] && break; sleep 0.5; done
"$LAB" ctl log --json --lines 100000 >"$CONF/log.json" 2>/dev/null
check "554 5.4.6 at the limit: Postern accepted the message exactly 25 times (0, 2, ..., 48 Received: fields, its own making 49) and refused the 26th (50 + its own = 51 > 50)" \
	python3 - "$CONF/log.json" <<'PYEOF'
import json, sys
acc = ref = 0
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") == "smtp message accepted" and e.get("sender") == "sender@sender.example":
        acc += 1
    if e.get("event") == "smtp mail loop refused":
        assert e.get("sender") == "sender@sender.example" and str(e.get("hopcount_limit")) == "50", e
        ref += 1
assert (acc, ref) == (25, 1), (acc, ref)
PYEOF
check "Postfix saw Postern's refusal: 554 5.4.6 Error: too many hops" \
	grep -q "554 5.4.6 Error: too many hops" "$PFX/maillog"
d=$(dsn_here)
check "the sender got a DSN (from <>, through Postern, at its next hop)" test -n "$d"
check "the DSN says 5.4.6 too many hops and quotes the looping message" python3 - "${d%.json}.eml" <<'PYEOF'
import sys
m = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
assert "Status: 5.4.6" in m and "too many hops" in m and "round and round" in m, m[:2000]
PYEOF
check "nothing for loop.example reached any other next hop" \
	python3 -c 'import glob,json,sys; sys.exit(any("user@loop.example" in json.load(open(f)).get("rcpts",[]) for f in glob.glob(sys.argv[1]+"/[0-9]*.json")))' "$SINK"

# 2. messages that arrive with too many hops already, straight from a client
hops_msg() { # N: a message with N Received: fields
	python3 - "$1" <<'PYEOF'
import sys
n = int(sys.argv[1])
hdr = "".join("Received: from hop%d by hop%d; Tue, 14 Nov 2023 22:00:00 +0000\r\n" % (i, i + 1)
              for i in range(n))
sys.stdout.write(hdr + "Subject: %d hops\r\n\r\nbody\r\n" % n)
PYEOF
}
send_hops() { # N MODE(data|bdat): the final reply code
	hops_msg "$1" >"$CONF/m$1.eml"
	"$LAB" exec cli python3 - "$CONF/m$1.eml" "$2" <<'PYEOF'
import smtplib, sys
data = open(sys.argv[1], "rb").read()
s = smtplib.SMTP("198.18.0.1", 25, timeout=30)
s.ehlo("pg-cli.example")
if sys.argv[2] == "bdat":
    s.mail("hops@pg-cli.example")
    s.rcpt("someone@example.org")
    half = len(data) // 2
    s.putcmd("BDAT %d" % half)
    s.send(data[:half])
    print(s.getreply()[0], end=" ")
    s.putcmd("BDAT %d LAST" % (len(data) - half))
    s.send(data[half:])
    code, msg = s.getreply()
else:
    try:
        s.sendmail("hops@pg-cli.example", ["someone@example.org"], data)
        code, msg = 250, b""
    except smtplib.SMTPDataError as e:
        code, msg = e.smtp_code, e.smtp_error
print(code, msg.decode())
s.quit()
PYEOF
}
check "49 Received: fields (50 with Postern's): accepted" test "$(send_hops 49 data | cut -d' ' -f1)" = 250
check "50 Received: fields over DATA: 554 5.4.6 too many hops" \
	test "$(send_hops 50 data)" = "554 5.4.6 Error: too many hops"
check "120 Received: fields over BDAT, split in two chunks: 554 5.4.6 at the last chunk" \
	test "$(send_hops 120 bdat)" = "250 554 5.4.6 Error: too many hops"
check "no refused message was queued or delivered" \
	python3 -c 'import glob,sys; sys.exit(any(("Subject: 50 hops" in open(f,errors="replace").read() or "Subject: 120 hops" in open(f,errors="replace").read()) for f in glob.glob(sys.argv[1]+"/*.eml")))' "$SINK"
counters_json >"$CONF/c1.json"
check "smtp_loops_refused counts 3 refusals in all" test "$(counter "$CONF/c1.json" smtp_loops_refused)" = 3
tap_done
