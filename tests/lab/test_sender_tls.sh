#!/usr/bin/env bash
# tests/lab/test_sender_tls.sh - strict TLS by sender (issue 23): the sender
# floors of CONFIG_DIR/sender_tls_policy combined with the destination's
# own level, per recipient, at every delivery attempt, from the live
# snapshot. Next hops in pg-srv: a real Postfix without STARTTLS, smtpsink
# without STARTTLS, with STARTTLS and a certificate the lab CA signed, with
# a self-signed certificate, and the STARTTLS-stripping man in the middle
# (mitm_strip.py) in front of a STARTTLS sink. Each case is checked at the
# next hop (what it received, over what) and in the delivery record
# (tls_policy, tls_sender_policy, tls_decided_by). Also posternctl policy
# list|set|del --sender and policy test --sender, the per-sender-domain
# outcomes of stats and /metrics, and smtpd_tls_required_recipients (530
# 5.7.0 for the listed domain only, swaks). Prints TAP.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONF=$(mktemp -d /tmp/pg-sender-conf.XXXXXX)
SPOOL=$(mktemp -d /var/tmp/pg-sender-spool.XXXXXX)
PFX=$(mktemp -d /tmp/pg-sender-pfx.XXXXXX)
CERTS=$CONF/certs
PORT=9479
chmod 755 "$CONF" "$PFX"
SINKS="2801 2802 2803 2805 2806"
sink_stop() { pkill -TERM -f "smtpsink.py --listen $1 " 2>/dev/null; for _ in $(seq 50); do pgrep -f "smtpsink.py --listen $1 " >/dev/null || return 0; sleep 0.1; done; pkill -KILL -f "smtpsink.py --listen $1 "; }
cleanup() {
	"$LAB" stop >/dev/null 2>&1
	for p in $SINKS; do sink_stop "198.19.0.2:$p"; done
	pkill -TERM -f "mitm_strip.py --listen 198.19.0.2:2804" 2>/dev/null
	"$LAB" exec srv "$TOP/tests/lab/postfix-inst.sh" stop "$PFX" >/dev/null 2>&1
	ip -n pg-srv addr del 198.19.0.3/24 dev srv0 2>/dev/null
	rm -rf "$CONF" "$SPOOL" "$PFX"
}
trap cleanup EXIT

"$TOP/tests/lab/mkcerts.sh" "$CERTS" >/dev/null || { not_ok "mkcerts.sh"; tap_done; exit 1; }

# next hops: pfx (Postfix, no STARTTLS), notls 2801, valid 2802, self 2803,
# mitm 2804 -> 2805 (STARTTLS, valid), late 2806 (nothing listens at first)
cat >"$CONF/transport" <<'EOF'
pfx.snd.test	smtp:[198.19.0.3]:25
notls.snd.test	smtp:[198.19.0.2]:2801
valid.snd.test	smtp:[198.19.0.2]:2802
self.snd.test	smtp:[198.19.0.2]:2803
vself.snd.test	smtp:[198.19.0.2]:2803
mitm.snd.test	smtp:[198.19.0.2]:2804
late.snd.test	smtp:[198.19.0.2]:2806
EOF
# the destinations' own levels: tls_default_level may, except vself (verify)
cat >"$CONF/tls_policy" <<'EOF'
vself.snd.test	verify match=mx.tls.test
EOF
cat >"$CONF/sender_tls_policy" <<'EOF'
# the provider's own service mail: never in plaintext
strict.example		encrypt
# a customer whose mail must reach an authenticated peer
verify.example		verify
# a customer trying out strict: evaluated and recorded, never deferred
testing.example		encrypt mode=testing
EOF
sed -e "s#^spool_directory.*#spool_directory = $SPOOL#" \
	"$TOP/tools/lab-config/postern.conf" >"$CONF/postern.conf"
cat >>"$CONF/postern.conf" <<EOF
tls_certificates = $CERTS/postern-ecdsa.pem $CERTS/postern-rsa.pem
smtp_tls_CAfile = $CERTS/ca.pem
smtpd_tls_required_recipients = strictrcpt.snd.test
metrics_listen = 127.0.0.1:$PORT
log_file = $CONF/postern.log
EOF

sink_start() {
	local name=$1 port=$2 dir=$CONF/sink-$1
	shift 2
	mkdir -p "$dir"
	"$LAB" exec srv python3 "$TOP/tests/lab/smtpsink.py" --listen "198.19.0.2:$port" --dir "$dir" \
		--duration 900 "$@" >>"$dir.log" 2>&1 &
}
"$LAB" down >/dev/null 2>&1
"$LAB" start "$CONF" >/dev/null || { not_ok "lab start"; tap_done; exit 1; }
sink_start notls 2801
sink_start valid 2802 --starttls "$CERTS/valid.pem" "$CERTS/valid.key"
sink_start self 2803 --starttls "$CERTS/selfsigned.pem" "$CERTS/selfsigned.key"
sink_start behind 2805 --starttls "$CERTS/valid.pem" "$CERTS/valid.key"
mkdir -p "$CONF/mitm"
"$LAB" exec srv python3 "$TOP/tests/lab/mitm_strip.py" --listen 198.19.0.2:2804 \
	--upstream 198.19.0.2:2805 --dir "$CONF/mitm" >>"$CONF/mitm.log" 2>&1 &
pfx_ok=0
ip -n pg-srv addr add 198.19.0.3/24 dev srv0 2>/dev/null
"$LAB" exec srv "$TOP/tests/lab/postfix-inst.sh" start "$PFX" --listen 198.19.0.3:25 --mode sink \
	--hostname pfx.snd.test --set "smtpd_tls_security_level=none" >"$CONF/pfx.log" 2>&1 && pfx_ok=1
for _ in $(seq 100); do
	n=0
	for s in notls valid self behind; do [ -f "$CONF/sink-$s/ready" ] && n=$((n + 1)); done
	[ "$n" -eq 4 ] && [ -f "$CONF/mitm/ready" ] && break
	sleep 0.1
done
check "next hops ready: Postfix without STARTTLS, 3 sinks, the man in the middle" \
	test "$n" = 4 -a -f "$CONF/mitm/ready" -a "$pfx_ok" = 1

# send FROM SUBJECT RCPT...: one message over plaintext SMTP from pg-cli
send() {
	"$LAB" exec cli python3 - "$@" <<'PYEOF'
import smtplib, sys
frm, subj, rcpts = sys.argv[1], sys.argv[2], sys.argv[3:]
s = smtplib.SMTP("198.18.0.1", 25, timeout=30)
s.sendmail(frm, rcpts, "From: <%s>\r\nSubject: %s\r\n\r\nbody of %s\r\n" % (frm, subj, subj))
s.quit()
PYEOF
}
# at the next hops: "SINK MAIL_FROM RCPT plain|TLSv1.x" per recipient received
received() {
	python3 - "$CONF" "$PFX" <<'PYEOF'
import glob, json, os, re, sys
for f in glob.glob(sys.argv[1] + "/sink-*/[0-9]*.json"):
    j = json.load(open(f))
    for r in j.get("rcpts", []):
        print(f.split("/")[-2][5:], j.get("mail_from"), r, (j.get("tls") or {}).get("version", "plain"))
for f in glob.glob(sys.argv[2] + "/mail/*/new/*"):
    t = open(f, errors="replace").read()
    frm = re.search(r"^Return-Path: <([^>]*)>", t, re.M)
    to = re.search(r"^X-Original-To: (\S+)|^Delivered-To: (\S+)", t, re.M)
    tls = "TLS" if re.search(r"with ESMTPS|using TLSv", t) else "plain"
    print("pfx", frm.group(1) if frm else "?", (to.group(1) or to.group(2)) if to else "?", tls)
PYEOF
}
log_json() { "$LAB" ctl log --json --lines 100000 2>/dev/null; }
# rec RCPT STATUS [KEY=SUBSTRING...]: a delivery record of RCPT with that status and fields
rec() { python3 - "$CONF/log.json" "$@" <<'PYEOF'
import json, sys
path, rcpt, status = sys.argv[1:4]
want = dict(a.split("=", 1) for a in sys.argv[4:])
seen = []
for line in open(path):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") != "delivery attempt" or e.get("to") != rcpt:
        continue
    seen.append({k: e.get(k) for k in ("status", "dsn", "tls_policy", "tls_sender_policy",
                                        "tls_decided_by", "tls_level", "tls", "tls_outcome", "reply")})
    if e.get("status") == status and all(k in e and (v in str(e[k])) for k, v in want.items()):
        sys.exit(0)
print("no record for", rcpt, status, want, "; seen:", seen)
sys.exit(1)
PYEOF
}
# never_plain RCPT: no record of RCPT says plaintext, and no next hop got it in clear
never_plain() { python3 - "$CONF/log.json" "$CONF/received.txt" "$1" <<'PYEOF'
import json, sys
bad = [l for l in open(sys.argv[1]) if l.startswith("{") and json.loads(l).get("to") == sys.argv[3]
       and json.loads(l).get("tls_outcome") == "plaintext"]
bad += [l for l in open(sys.argv[2]) if l.split()[2] == sys.argv[3] and l.split()[3] == "plain"]
assert not bad, bad
PYEOF
}
# wait_for CMD...: up to 60 s for CMD to succeed, the log and next hops read anew each time
wait_for() {
	for _ in $(seq 120); do
		log_json >"$CONF/log.json"
		received >"$CONF/received.txt"
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	return 1
}
got() { grep -q "^$1 $2 $3 $4\$" "$CONF/received.txt"; }
export CONF
export -f rec never_plain got

# ---- operator surface -------------------------------------------------------
"$LAB" ctl policy list --sender >"$CONF/list.txt" 2>&1
check "policy list --sender: the three floors with their levels" bash -c \
	"grep -q 'strict.example *encrypt' '$CONF/list.txt' && grep -q 'verify.example *verify' '$CONF/list.txt' && grep -q 'testing.example *encrypt *testing' '$CONF/list.txt' && grep -q '3 sender floors' '$CONF/list.txt'"
"$LAB" ctl policy test notls.snd.test --sender ops@strict.example >"$CONF/test1.txt" 2>&1
check "policy test notls.snd.test --sender ops@strict.example: floor encrypt, decided by the sender rule" bash -c \
	"grep -q '^floor: *encrypt - .*sender_tls_policy:2: strict.example' '$CONF/test1.txt' && grep -q '^effective: *encrypt' '$CONF/test1.txt' && grep -q '^decided by: sender rule' '$CONF/test1.txt'"
"$LAB" ctl policy test vself.snd.test --sender ops@strict.example --json >"$CONF/test2.json" 2>&1
check "policy test vself.snd.test --sender ops@strict.example: the destination's verify decides" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
e = j["results"][0]["effective"]
assert j["sender_rule"]["entry"]["key"] == "strict.example", j
assert e["enforced"] == "verify" and e["decided_by"] == "destination", e' "$CONF/test2.json"
"$LAB" ctl policy test notls.snd.test --sender user@customer.example >"$CONF/test3.txt" 2>&1
check "policy test --sender user@customer.example: no floor, the destination's may" bash -c \
	"grep -q '^floor: *none' '$CONF/test3.txt' && grep -q '^effective: *may' '$CONF/test3.txt' && grep -q '^decided by: destination rule (no sender floor)' '$CONF/test3.txt'"
"$LAB" ctl policy set --sender bad..example encrypt >"$CONF/bad.txt" 2>&1
rc=$?
check "policy set --sender with a bad key: refused (exit 1), the file unchanged" bash -c \
	"[ $rc = 1 ] && ! grep -q bad '$CONF/sender_tls_policy'"
"$LAB" ctl policy set --sender x.example plaintext >"$CONF/bad2.txt" 2>&1
rc=$?
check "policy set --sender with a level that is no floor: refused (exit 1)" test "$rc" = 1

# ---- deliveries -------------------------------------------------------------
send ops@strict.example s-notls rcpt-a@notls.snd.test
send user@customer.example c-notls rcpt-b@notls.snd.test
send ops@strict.example s-pfx rcpt-a@pfx.snd.test
send user@customer.example c-pfx rcpt-b@pfx.snd.test
send ops@strict.example s-mitm rcpt-a@mitm.snd.test
send user@customer.example c-mitm rcpt-b@mitm.snd.test
send ops@strict.example s-self rcpt-a@self.snd.test
send ops@strict.example s-vself rcpt-a@vself.snd.test
send ops@verify.example v-self rcpt-v@self.snd.test
send ops@verify.example v-valid rcpt-v@valid.snd.test
send ops@strict.example s-split rcpt-s1@valid.snd.test rcpt-s2@notls.snd.test
send user@customer.example c-split rcpt-c1@valid.snd.test rcpt-c2@notls.snd.test
send news@testing.example t-notls rcpt-t@notls.snd.test
send late@later.example l-late rcpt-l@late.snd.test
both_done() {
	got notls user@customer.example rcpt-b@notls.snd.test plain &&
		got pfx user@customer.example rcpt-b@pfx.snd.test plain &&
		got behind user@customer.example rcpt-b@mitm.snd.test plain &&
		got valid ops@strict.example rcpt-s1@valid.snd.test 'TLSv1\.[23]' &&
		got notls user@customer.example rcpt-c2@notls.snd.test plain &&
		got notls news@testing.example rcpt-t@notls.snd.test plain &&
		rec rcpt-a@notls.snd.test deferred && rec rcpt-a@pfx.snd.test deferred &&
		rec rcpt-a@mitm.snd.test deferred && rec rcpt-a@vself.snd.test deferred &&
		rec rcpt-v@self.snd.test deferred && rec rcpt-s2@notls.snd.test deferred &&
		rec rcpt-l@late.snd.test deferred
}
check "the deliveries and deferrals of the first round are in" wait_for both_done
diag "received: $(tr '\n' ';' <"$CONF/received.txt")"

# strict sender vs another sender, same next hop
check "no STARTTLS (smtpsink): strict sender deferred 4.7.4, decided by the sender rule" \
	rec rcpt-a@notls.snd.test deferred dsn=4.7.4 tls_decided_by=sender \
	"tls_sender_policy=strict.example encrypt" tls_outcome=deferred "reply=sender_tls_policy: strict.example"
check "no STARTTLS (smtpsink): the strict sender's mail never went in plaintext" never_plain rcpt-a@notls.snd.test
check "no STARTTLS (smtpsink): another sender's mail to the same next hop went in plaintext" \
	bash -c "grep -q '^notls user@customer.example rcpt-b@notls.snd.test plain$' '$CONF/received.txt' && \
	rec rcpt-b@notls.snd.test sent tls_decided_by=destination tls_sender_policy=none tls_outcome=plaintext"
check "no STARTTLS (real Postfix): strict sender deferred 4.7.4, never in plaintext" bash -c \
	"rec rcpt-a@pfx.snd.test deferred dsn=4.7.4 tls_decided_by=sender && never_plain rcpt-a@pfx.snd.test"
check "no STARTTLS (real Postfix): another sender's mail delivered in plaintext" got pfx user@customer.example rcpt-b@pfx.snd.test plain
check "STARTTLS stripped by the man in the middle: strict sender deferred 4.7.4, never in plaintext" bash -c \
	"rec rcpt-a@mitm.snd.test deferred dsn=4.7.4 tls_decided_by=sender && never_plain rcpt-a@mitm.snd.test"
check "STARTTLS stripped: another sender's mail went on in plaintext (may)" \
	got behind user@customer.example rcpt-b@mitm.snd.test plain
check "mitm_strip did strip STARTTLS" python3 -c '
import json, sys; sys.exit(0 if json.load(open(sys.argv[1])).get("stripped", 0) >= 2 else 1)' "$CONF/mitm/state.json"

# encrypt floor, self-signed next hop: delivered over TLS; with a destination verify: 4.7.5
check "encrypt floor, self-signed next hop (destination may): delivered over TLS, decided by the sender" bash -c \
	"grep -q '^self ops@strict.example rcpt-a@self.snd.test TLSv1' '$CONF/received.txt' && \
	rec rcpt-a@self.snd.test sent tls_decided_by=sender tls_outcome=encrypted"
check "destination verify stricter than the encrypt floor wins: 4.7.5, decided by the destination" \
	rec rcpt-a@vself.snd.test deferred dsn=4.7.5 tls_decided_by=destination tls_policy=vself.snd.test \
	"tls_sender_policy=strict.example encrypt" tls_level=verify
check "... and the self-signed next hop got nothing for it" bash -c "! grep -q rcpt-a@vself '$CONF/received.txt'"

# verify floor
check "verify floor, self-signed next hop: deferred 4.7.5, decided by the sender" \
	rec rcpt-v@self.snd.test deferred dsn=4.7.5 tls_decided_by=sender "tls_sender_policy=verify.example verify" tls_level=verify
check "verify floor, self-signed next hop: nothing received" bash -c "! grep -q rcpt-v@self '$CONF/received.txt'"
check "verify floor, next hop with a certificate of the lab CA: delivered, verified" bash -c \
	"rec rcpt-v@valid.snd.test sent tls_decided_by=sender tls_outcome=verified && grep -q '^valid ops@verify.example rcpt-v@valid.snd.test TLSv1' '$CONF/received.txt'"

# one message, two destinations
check "split, strict sender: the STARTTLS recipient delivered over TLS" bash -c \
	"rec rcpt-s1@valid.snd.test sent tls_decided_by=sender && grep -q '^valid ops@strict.example rcpt-s1@valid.snd.test TLSv1' '$CONF/received.txt'"
check "split, strict sender: the plaintext-only recipient deferred 4.7.4, never sent" bash -c \
	"rec rcpt-s2@notls.snd.test deferred dsn=4.7.4 tls_decided_by=sender && never_plain rcpt-s2@notls.snd.test"
check "split, another sender: both recipients delivered (TLS and plaintext)" bash -c \
	"grep -q '^valid user@customer.example rcpt-c1@valid.snd.test TLSv1' '$CONF/received.txt' && grep -q '^notls user@customer.example rcpt-c2@notls.snd.test plain$' '$CONF/received.txt'"

# mode=testing
check "mode=testing floor: delivered in plaintext, recorded as would_defer with the floor" \
	rec rcpt-t@notls.snd.test sent tls_outcome=would_defer "tls_sender_policy=testing.example encrypt mode=testing" tls_level=encrypt/testing
check "mode=testing floor: the next hop received it (in plaintext)" got notls news@testing.example rcpt-t@notls.snd.test plain

# ---- a sender made strict while its mail waits in the queue ----------------
check "later.example's mail is deferred (nothing listens at its next hop yet)" \
	rec rcpt-l@late.snd.test deferred tls_sender_policy=none
"$LAB" ctl policy set --sender later.example encrypt --wait >"$CONF/set.txt" 2>&1
check "policy set --sender later.example encrypt --wait: published and adopted" bash -c \
	"grep -q 'later.example' '$CONF/sender_tls_policy' && grep -q 'generation' '$CONF/set.txt'"
sink_start late 2806
for _ in $(seq 100); do [ -f "$CONF/sink-late/ready" ] && break; sleep 0.1; done
"$LAB" ctl queue flush >/dev/null 2>&1
late_retried() { rec rcpt-l@late.snd.test deferred dsn=4.7.4 tls_decided_by=sender "tls_sender_policy=later.example encrypt"; }
check "after the switch its retry is deferred 4.7.4 by the sender rule (the live snapshot)" wait_for late_retried
sleep 3
"$LAB" ctl queue flush >/dev/null 2>&1
sleep 2
log_json >"$CONF/log.json"
received >"$CONF/received.txt"
check "... and no retry of it ever went in plaintext: the next hop received nothing" bash -c \
	"never_plain rcpt-l@late.snd.test && ! grep -q rcpt-l@late '$CONF/received.txt'"
check "the STARTTLS-less next hop saw connections but no message from it" python3 -c '
import json, sys
c = json.load(open(sys.argv[1])).get("counters", {})
assert c.get("connections", 0) >= 1 and c.get("messages", 0) == 0, c' "$CONF/sink-late/state.json"

# ---- client-network floors --------------------------------------------------
"$LAB" ctl policy set --sender '[198.18.0.2/32]' encrypt --wait >/dev/null 2>&1
check "policy test --client 198.18.0.2: the network floor applies to a sender without one" bash -c \
	"'$LAB' ctl policy test notls.snd.test --sender app@net.example --client 198.18.0.2 | grep -q 'floor: *encrypt - .*\\[198.18.0.2/32\\] encrypt (network match)'"
send app@net.example n-notls rcpt-n@notls.snd.test
send app@net.example n-valid rcpt-n@valid.snd.test
net_done() { rec rcpt-n@notls.snd.test deferred && got valid app@net.example rcpt-n@valid.snd.test 'TLSv1\.[23]'; }
check "client-network floor: the round is in" wait_for net_done
check "client-network floor: plaintext-only next hop deferred 4.7.4 by the network entry" \
	rec rcpt-n@notls.snd.test deferred dsn=4.7.4 tls_decided_by=sender "tls_sender_policy=[198.18.0.2/32] encrypt"
check "client-network floor: never in plaintext" never_plain rcpt-n@notls.snd.test
check "client-network floor: STARTTLS next hop delivered over TLS" \
	rec rcpt-n@valid.snd.test sent "tls_sender_policy=[198.18.0.2/32] encrypt"
"$LAB" ctl policy del --sender '[198.18.0.2/32]' --wait >/dev/null 2>&1
check "policy del --sender '[198.18.0.2/32]': gone from the file and from list --sender" bash -c \
	"! grep -q 198.18.0.2 '$CONF/sender_tls_policy' && ! '$LAB' ctl policy list --sender | grep -q 198.18.0.2"

# ---- inbound: smtpd_tls_required_recipients ---------------------------------
out=$("$LAB" exec cli swaks --server 198.18.0.1 --from a@customer.example --to x@strictrcpt.snd.test 2>&1)
check "plaintext RCPT TO the listed domain: 530 5.7.0" bash -c "echo \"\$0\" | grep -q '<\*\* 530 5.7.0 Must issue a STARTTLS command first'" "$out"
out=$("$LAB" exec cli swaks --server 198.18.0.1 --from a@customer.example --to x@notls.snd.test 2>&1)
check "plaintext RCPT TO another domain: accepted and queued" bash -c "echo \"\$0\" | grep -q '<-  250 2.0.0 Ok: queued'" "$out"
out=$("$LAB" exec cli swaks --server 198.18.0.1 --tls --from a@customer.example --to x@strictrcpt.snd.test 2>&1)
check "RCPT TO the listed domain over STARTTLS: 250" bash -c "echo \"\$0\" | grep -q '<~  250 2.1.5'" "$out"
out=$("$LAB" exec cli python3 - <<'PYEOF'
import smtplib
s = smtplib.SMTP("198.18.0.1", 25, timeout=30)
s.ehlo("cli.test")
s.mail("a@customer.example")
print("listed", s.rcpt("y@strictrcpt.snd.test")[0])
print("other", s.rcpt("y@notls.snd.test")[0])
s.rset()
s.quit()
PYEOF
)
check "one plaintext transaction: 530 for the listed domain only, 250 for the other" \
	bash -c "echo \"\$0\" | grep -qx 'listed 530' && echo \"\$0\" | grep -qx 'other 250'" "$out"

# ---- per-sender-domain outcomes: stats and /metrics --------------------------
"$LAB" ctl stats --json >"$CONF/stats.json" 2>/dev/null
python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$PORT/metrics', timeout=5).read().decode())" \
	>"$CONF/metrics.txt" 2>&1
check "stats: per sender domain - strict.example deferred, customer.example plaintext, testing.example would_defer" \
	python3 - "$CONF/stats.json" "$CONF/received.txt" <<'PYEOF'
import json, sys
t = json.load(open(sys.argv[1]))["tls_outcomes_by_sender"]
clear = sum(1 for l in open(sys.argv[2]) if l.split()[1] == "user@customer.example" and l.split()[3] == "plain")
assert t["strict.example"]["deferred"] >= 5 and t["strict.example"]["plaintext"] == 0, t["strict.example"]
assert t["customer.example"]["plaintext"] >= clear >= 4, (t["customer.example"], clear)
assert t["testing.example"]["would_defer"] >= 1 and t["verify.example"]["verified"] >= 1, t
PYEOF
check "/metrics: postern_delivery_tls_by_sender_total agrees with stats for every sender and outcome" \
	python3 - "$CONF/stats.json" "$CONF/metrics.txt" <<'PYEOF'
import json, re, sys
t = json.load(open(sys.argv[1]))["tls_outcomes_by_sender"]
m = {}
for line in open(sys.argv[2]):
    g = re.match(r'postern_delivery_tls_by_sender_total\{sender_domain="([^"]*)",outcome="([^"]*)"\} (\d+)', line)
    if g:
        m[(g.group(1), g.group(2))] = int(g.group(3))
assert ("strict.example", "deferred") in m, sorted(m)[:10]
# the records keep coming (retries): metrics were read after stats, so never less
bad = [(d, o, n, m.get((d, o))) for d, row in t.items() for o, n in row.items() if m.get((d, o), -1) < n]
assert not bad, bad
PYEOF
"$LAB" ctl stats >"$CONF/stats.txt" 2>&1
check "stats (text): the table per sender domain" grep -q "deliveries by TLS outcome per sender domain" "$CONF/stats.txt"
tap_done
