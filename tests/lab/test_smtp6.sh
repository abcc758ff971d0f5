#!/usr/bin/env bash
# tests/lab/test_smtp6.sh - SMTP over IPv6 through the relay, both ways
# (issue 22). pg-cli sends over IPv6 to the dataplane's [2001:db8:18::1]:25
# (the listener on every IPv6 address) with Python smtplib and swaks -6;
# Postern delivers to IPv6-literal next hops in pg-srv ([ipv6:...] in
# relayhost and transport, RFC 5321 §4.1.3), the lab's sink, in plaintext
# and with STARTTLS verified against the lab CA. Checked: every message
# byte for byte, the Received: field with the client's [IPv6:...] literal
# (RFC 5321 §4.4), the next hop seeing Postern's IPv6 address, mynetworks
# and smtpd_tls_required_networks with IPv6 prefixes (relay refused outside,
# 530 before STARTTLS inside the required network), a dual-stack next-hop
# list (an IPv4 next hop that refuses, then the IPv6 one), IPv6 client to
# IPv4 next hop, posternctl sessions, the JSON log's client= and relay=,
# the IPv6 counters in /metrics, and a sender floor for an IPv6 client
# network. Delivery to AAAA records is not here yet. Prints TAP.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONF=$(mktemp -d /tmp/pg-smtp6-conf.XXXXXX)
SPOOL=$(mktemp -d /var/tmp/pg-smtp6-spool.XXXXXX)
CERTS=$CONF/certs
PFX=$CONF/pfx
PFX6=2001:db8:19::3
PORT=9486 # metrics
DP6=2001:db8:18::1
SRV6=2001:db8:19::2
CLI_TLS=2001:db8:18::102 # inside smtpd_tls_required_networks
CLI_OUT=2001:db8:18::1:2 # outside mynetworks
SINKS=()
# sink_stop ADDR:PORT: pkill takes a regex, so the brackets of [IPv6]:PORT are escaped
sink_stop() {
	local re=${1//[/\\[}
	re=${re//]/\\]}
	re="smtpsink.py --listen ${re//./\\.} "
	pkill -TERM -f "$re" 2>/dev/null
	for _ in $(seq 50); do pgrep -f "$re" >/dev/null || return 0; sleep 0.1; done
	pkill -KILL -f "$re"
}
cleanup() {
	"$LAB" stop >/dev/null 2>&1
	for a in "${SINKS[@]}"; do sink_stop "$a"; done
	ip -n pg-cli -6 addr del "$CLI_TLS/64" dev cli0 2>/dev/null
	ip -n pg-cli -6 addr del "$CLI_OUT/64" dev cli0 2>/dev/null
	[ -d "$PFX" ] && "$LAB" exec srv "$TOP/tests/lab/postfix-inst.sh" stop "$PFX" >/dev/null 2>&1
	ip -n pg-srv -6 addr del "$PFX6/64" dev srv0 2>/dev/null
	rm -rf "$CONF" "$SPOOL"
}
trap cleanup EXIT

"$TOP/tests/lab/mkcerts.sh" "$CERTS" >/dev/null || { not_ok "mkcerts.sh"; tap_done; exit 1; }
chmod 755 "$CONF"

sed -e "s#^spool_directory.*#spool_directory = $SPOOL#" \
	-e "s#^mynetworks.*#mynetworks = 198.18.0.0/24 [2001:db8:18::]/120, [2001:db8:18::100]/120#" \
	-e "s#^relayhost.*#relayhost = [ipv6:$SRV6]:25#" \
	"$TOP/tools/lab-config/postern.conf" >"$CONF/postern.conf"
cat >>"$CONF/postern.conf" <<EOF
smtpd_tls_required_networks = [2001:db8:18::100]/120
tls_certificates = $CERTS/postern-ecdsa.pem $CERTS/postern-rsa.pem
smtp_tls_CAfile = $CERTS/ca.pem
log_file = $CONF/postern.log
metrics_listen = 127.0.0.1:$PORT
EOF
cat >"$CONF/transport" <<EOF
tls6.example	smtp:[IPv6:$SRV6]:2526
dual.example	smtp:[198.19.0.2]:2599, [ipv6:$SRV6]:25
v4.example	smtp:[198.19.0.2]:25
pfx6.example	smtp:[ipv6:$PFX6]
EOF
cat >"$CONF/tls_policy" <<EOF
tls6.example	verify match=mx.tls.test
[ipv6:$PFX6]	verify match=mx.tls.test
EOF

sink_start() {
	local name=$1 listen=$2 dir=$CONF/sink-$1
	shift 2
	mkdir -p "$dir"
	SINKS+=("$listen")
	"$LAB" exec srv python3 "$TOP/tests/lab/smtpsink.py" --listen "$listen" --dir "$dir" \
		--duration 600 "$@" >>"$dir.log" 2>&1 &
}
"$LAB" down >/dev/null 2>&1
check "lab start: relayhost [ipv6:$SRV6]:25, IPv6 networks in mynetworks and smtpd_tls_required_networks" \
	"$LAB" start "$CONF"
# deprecated (preferred_lft 0): Linux then never picks them as a source by
# itself (RFC 6724 rule 3); the checks that want them bind to them
ip -n pg-cli -6 addr add "$CLI_TLS/64" dev cli0 nodad preferred_lft 0
ip -n pg-cli -6 addr add "$CLI_OUT/64" dev cli0 nodad preferred_lft 0
sink_start six "[$SRV6]:25"
sink_start tls6 "[$SRV6]:2526" --starttls "$CERTS/valid.pem" "$CERTS/valid.key"
sink_start four "198.19.0.2:25"
for _ in $(seq 100); do
	[ -f "$CONF/sink-six/ready" ] && [ -f "$CONF/sink-tls6/ready" ] && [ -f "$CONF/sink-four/ready" ] && break
	sleep 0.1
done
check "next hops ready: [$SRV6]:25, [$SRV6]:2526 with STARTTLS, 198.19.0.2:25" \
	test -f "$CONF/sink-six/ready" -a -f "$CONF/sink-tls6/ready" -a -f "$CONF/sink-four/ready"
# a real Postfix with STARTTLS on [2001:db8:19::3]:25
ip -n pg-srv -6 addr add "$PFX6/64" dev srv0 nodad
check "a Postfix next hop with STARTTLS on [$PFX6]:25" "$LAB" exec srv "$TOP/tests/lab/postfix-inst.sh" \
	start "$PFX" --listen "[$PFX6]:25" --mode sink --hostname mx.tls.test \
	--set "smtpd_tls_security_level=may" --set "smtpd_tls_chain_files=$CERTS/valid.key,$CERTS/valid.pem" \
	--set "smtpd_tls_received_header=yes"
# DAD of the dataplane's addresses ends about a second after start
for _ in $(seq 50); do
	"$LAB" exec cli ping -6 -c 1 -W 1 "$DP6" >/dev/null 2>&1 && break
	sleep 0.2
done
counters_json >"$CONF/c0.json"

eml_count() { find "$1" -maxdepth 1 -name '*.eml' 2>/dev/null | wc -l; }
wait_for() { local end=$((SECONDS + $1)); shift; while [ $SECONDS -lt "$end" ]; do "$@" && return 0; sleep 0.3; done; "$@"; }
emls_over() { [ "$(eml_count "$1")" -ge "$2" ]; }
ctr_delta() { counters_json >"$CONF/cd.json"; echo $(($(counter "$CONF/cd.json" "$1") - $(counter "$CONF/c0.json" "$1"))); }
log_json() { "$LAB" ctl log --json --lines 100000 2>/dev/null; }

# 1. The greeting and EHLO over IPv6.
check "220 greeting and EHLO with STARTTLS on [$DP6]:25" "$LAB" exec cli python3 - "$DP6" <<'EOF'
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], 25, local_hostname="pg-cli.example", timeout=20)
code, _ = s.ehlo()
assert code == 250 and s.has_extn("starttls"), (code, s.esmtp_features)
assert s.sock.family == 10, s.sock.family
s.quit()
EOF

# 2. Every kind of message in over IPv6, out over IPv6 (relayhost), byte for byte.
"$LAB" exec cli python3 "$TOP/tests/lab/relaycheck.py" send "$DP6" "$CONF/kinds.log" --count 14 \
	--threads 2 --per-conn 3 --prefix v6 >"$CONF/kinds.out" 2>&1
if python3 "$TOP/tests/lab/relaycheck.py" compare "$CONF/kinds.log" "$CONF/sink-six" --wait 60 >"$CONF/kinds.cmp"; then
	ok "14 messages of 7 kinds in over IPv6 and out to [ipv6:$SRV6]:25, byte for byte: $(cat "$CONF/kinds.cmp")"
else
	not_ok "IPv6 both ways: $(cat "$CONF/kinds.out") $(cat "$CONF/kinds.cmp")"
fi
check "Received: names the client [IPv6:2001:db8:18::2]; the next hop saw Postern's 2001:db8:19::1" \
	python3 - "$CONF/sink-six" <<'EOF'
import glob, json, re, sys
n = 0
for f in glob.glob(sys.argv[1] + "/[0-9]*.eml"):
    data = open(f, "rb").read()
    first = re.match(rb"Received: (.*?)\r\n(?![ \t])", data, re.S)
    assert first, f
    assert b"[IPv6:2001:db8:18::2]" in first.group(1), first.group(1)
    env = json.load(open(f[:-4] + ".json"))
    assert env["peer"].startswith("2001:db8:19::1:"), env["peer"]
    n += 1
assert n >= 14, n
print(n)
EOF

# 3. swaks -6 with STARTTLS in, verified TLS out to an [IPv6:...] next hop.
"$LAB" exec cli swaks -6 --server "[$DP6]:25" --tls --tls-verify --tls-ca-path "$CERTS/ca.pem" \
	--tls-sni postern.lab.example --ehlo pg-cli.example --from swaks6@pg-cli.example \
	--to rcpt@tls6.example --header "Subject: swaks over IPv6" >"$CONF/swaks.out" 2>&1
check "swaks -6: STARTTLS, the certificate verified, 250" grep -q "<~  250 2.0.0 Ok: queued" "$CONF/swaks.out"
if wait_for 30 emls_over "$CONF/sink-tls6" 1 && python3 - "$CONF/sink-tls6" <<'EOF'
import glob, json, sys
js = [json.load(open(f)) for f in glob.glob(sys.argv[1] + "/[0-9]*.json")]
assert len(js) == 1 and js[0]["rcpts"] == ["rcpt@tls6.example"], js
assert (js[0].get("tls") or {}).get("version", "").startswith("TLSv1."), js[0].get("tls")
assert js[0]["peer"].startswith("2001:db8:19::1:"), js[0]["peer"]
EOF
then ok "delivered over TLS (level verify) to [IPv6:$SRV6]:2526"; else not_ok "TLS to the IPv6 next hop: $(ls "$CONF/sink-tls6")"; fi

# 4. smtpd_tls_required_networks with an IPv6 prefix: 530 in plaintext, mail after STARTTLS.
check "from $CLI_TLS (in [2001:db8:18::100]/120): MAIL refused 530 5.7.0 before STARTTLS, accepted after" \
	"$LAB" exec cli python3 - "$DP6" "$CLI_TLS" "$CERTS/ca.pem" <<'EOF'
import smtplib, ssl, sys
dp, src, ca = sys.argv[1:4]
s = smtplib.SMTP(dp, 25, local_hostname="pg-cli.example", timeout=20, source_address=(src, 0))
s.ehlo()
code, text = s.mail("req@pg-cli.example")
assert code == 530 and b"5.7.0" in text, (code, text)
ctx = ssl.create_default_context(cafile=ca)
s._host = "postern.lab.example"  # smtplib's SNI and certificate name come from _host
s.starttls(context=ctx)
s.ehlo()
s.sendmail("req@pg-cli.example", ["required@example.org"], "Subject: required\r\n\r\nover TLS\r\n")
s.quit()
EOF

# 5. mynetworks with IPv6 prefixes: a client outside may not relay.
check "from $CLI_OUT (outside mynetworks): RCPT refused 554 5.7.1 relay access denied" \
	"$LAB" exec cli python3 - "$DP6" "$CLI_OUT" <<'EOF'
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], 25, local_hostname="pg-cli.example", timeout=20, source_address=(sys.argv[2], 0))
s.ehlo()
assert s.mail("out@pg-cli.example")[0] == 250
code, text = s.rcpt("someone@example.org")
assert code == 554 and b"5.7.1" in text, (code, text)
s.quit()
EOF
d=$(ctr_delta smtp_relay_denied)
check "smtp_relay_denied counted it ($d)" test "$d" -ge 1

# 6. A dual-stack next-hop list: [198.19.0.2]:2599 refuses, [ipv6:...]:25 takes it.
# 7. An IPv6 client, an IPv4 next hop.
n6=$(eml_count "$CONF/sink-six")
n4=$(eml_count "$CONF/sink-four")
check "two more messages accepted over IPv6 (dual.example, v4.example)" "$LAB" exec cli python3 - "$DP6" <<'EOF'
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], 25, local_hostname="pg-cli.example", timeout=20)
for d in ("dual.example", "v4.example"):
    s.sendmail("mix@pg-cli.example", ["rcpt@" + d], "Subject: to %s\r\n\r\nbody\r\n" % d)
s.quit()
EOF
if wait_for 30 emls_over "$CONF/sink-six" $((n6 + 1)) && grep -lq "Subject: to dual.example" "$CONF"/sink-six/*.eml; then
	ok "dual-stack next hops: IPv4 [198.19.0.2]:2599 refused, delivered to [ipv6:$SRV6]:25"
else not_ok "dual.example not at the IPv6 next hop"; fi
if wait_for 30 emls_over "$CONF/sink-four" $((n4 + 1)) && grep -q "Subject: to v4.example" "$CONF"/sink-four/*.eml &&
	grep -q "\[IPv6:2001:db8:18::2\]" "$CONF"/sink-four/*.eml; then
	ok "IPv6 client to an IPv4 next hop, Received: with the IPv6 literal"
else not_ok "v4.example: $(ls "$CONF/sink-four")"; fi

# 7b. A real Postfix as the IPv6 next hop, TLS verified by the tls_policy entry of [ipv6:...].
check "a message for pfx6.example accepted over IPv6" "$LAB" exec cli python3 - "$DP6" <<'EOF'
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], 25, local_hostname="pg-cli.example", timeout=20)
s.sendmail("pfx@pg-cli.example", ["rcpt@pfx6.example"], "Subject: to Postfix over IPv6\r\n\r\nbody\r\n")
s.quit()
EOF
pfx_got() { grep -rls "Subject: to Postfix over IPv6" "$PFX/mail" 2>/dev/null | head -1; }
pfx_has() { [ -n "$(pfx_got)" ]; }
if wait_for 30 pfx_has && f=$(pfx_got) &&
	grep -q "from postern.lab.example (.*\[IPv6:2001:db8:19::1\])" "$f" && grep -q "using TLSv1" "$f"; then
	ok "Postfix received it from [IPv6:2001:db8:19::1] over TLS (policy [ipv6:$PFX6] verify)"
else not_ok "Postfix over IPv6: $(pfx_got) $(tail -n 5 "$PFX/maillog" 2>/dev/null)"; fi

# 8. posternctl sessions: an open IPv6 session with both addresses.
"$LAB" exec cli python3 - "$DP6" <<'EOF' &
import smtplib, sys, time
s = smtplib.SMTP(sys.argv[1], 25, local_hostname="pg-cli.example", timeout=20)
s.ehlo()
time.sleep(4)
s.quit()
EOF
hold=$!
found=0
for _ in $(seq 20); do
	sleep 0.2
	"$LAB" ctl sessions --json >"$CONF/sessions.json" 2>/dev/null || continue
	python3 - "$CONF/sessions.json" <<'EOF' && found=1 && break
import json, sys
d = json.load(open(sys.argv[1]))
ok = any(c["local"] == "[2001:db8:18::1]:25" and c["remote"].startswith("[2001:db8:18::2]:")
         and c["state"] == "ESTABLISHED" for w in d["workers"] for c in w["sessions"])
sys.exit(0 if ok else 1)
EOF
done
wait $hold
check "posternctl sessions: [2001:db8:18::2]:PORT -> [2001:db8:18::1]:25 ESTABLISHED" test "$found" = 1

# 9. The log: client= and relay= with IPv6 addresses; the counters and /metrics.
for _ in $(seq 40); do
	log_json >"$CONF/log.json"
	[ "$(grep -c '"delivery attempt"' "$CONF/log.json")" -ge 18 ] && break
	sleep 0.5
done
check "log: messages accepted from client=2001:db8:18::2, delivered with relay=$SRV6 (and one refused at [198.19.0.2]:2599 first)" \
	python3 - "$CONF/log.json" "$SRV6" <<'EOF'
import json, sys
acc = dlv = refused = 0
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") == "smtp message accepted" and e.get("client") in ("2001:db8:18::2", "2001:db8:18::102"):
        acc += 1
    if e.get("event") == "delivery attempt" and e.get("relay") == sys.argv[2] and e.get("status") == "sent":
        dlv += 1
assert acc >= 18 and dlv >= 17, (acc, dlv)
EOF
s6=$(ctr_delta smtp_sessions_ipv6)
c6=$(ctr_delta delivery_connections_ipv6)
check "counters: smtp_sessions_ipv6 +$s6, delivery_connections_ipv6 +$c6" test "$s6" -ge 8 -a "$c6" -ge 3
python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$PORT/metrics', timeout=5).read().decode())" \
	>"$CONF/metrics.txt" 2>&1
check "/metrics: postern_smtp_sessions_ipv6_total and postern_delivery_connections_ipv6_total" python3 - "$CONF/metrics.txt" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
def total(name):
    return sum(float(m.group(1)) for m in re.finditer(r"^%s(?:\{[^}]*\})? (\S+)$" % name, text, re.M))
assert total("postern_smtp_sessions_ipv6_total") >= 8, text[:400]
assert total("postern_delivery_connections_ipv6_total") >= 3
EOF

# 10. A sender floor for an IPv6 client network (sender_tls_policy, ABI 2.3),
# set live: mail submitted from it is never sent in plaintext (the relayhost
# [ipv6:...]:25 offers no STARTTLS: deferred 4.7.4, decided by the sender
# rule), mail from an IPv4 client is not held by it, and policy test
# --client takes an IPv6 client.
"$LAB" ctl policy set --sender "[2001:db8:18::/120]" encrypt >"$CONF/set6.txt" 2>&1
check "policy set --sender [2001:db8:18::/120] encrypt: applied" grep -q "2001:db8:18::/120" "$CONF/sender_tls_policy"
"$LAB" ctl policy test far.example --sender app@pg-cli.example --client 2001:db8:18::2 --json >"$CONF/test6.json" 2>&1
check "policy test --client 2001:db8:18::2: the IPv6 network floor, network match" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
r = j["sender_rule"]
assert j["client"] == "2001:db8:18::2" and r["match"] == "network", j
assert r["entry"]["key"] == "[2001:db8:18::/120]", r' "$CONF/test6.json"
check "floor: one message over IPv6 (from 2001:db8:18::2), one over IPv4 (from 198.18.0.2), both to the relayhost" \
	"$LAB" exec cli python3 - "$DP6" <<'EOF'
import smtplib, sys
for host, rcpt in ((sys.argv[1], "floor6@example.org"), ("198.18.0.1", "floor4@example.org")):
    s = smtplib.SMTP(host, 25, local_hostname="pg-cli.example", timeout=20)
    s.sendmail("app@pg-cli.example", [rcpt], "Subject: floor %s\r\n\r\nbody\r\n" % rcpt)
    s.quit()
EOF
floor_seen() { python3 - "$CONF/log.json" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
tos = {e.get("to"): e.get("status") for e in recs if e.get("event") == "delivery attempt"}
sys.exit(0 if tos.get("floor6@example.org") == "deferred" and tos.get("floor4@example.org") == "sent" else 1)
EOF
}
for _ in $(seq 60); do
	log_json >"$CONF/log.json"
	floor_seen && break
	sleep 0.5
done
check "the IPv6-submitted message: deferred 4.7.4 by the sender rule, never sent in plaintext" \
	python3 - "$CONF/log.json" "$CONF/sink-six" <<'EOF'
import glob, json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
r6 = [e for e in recs if e.get("event") == "delivery attempt" and e.get("to") == "floor6@example.org"]
assert r6 and all(e.get("status") == "deferred" for e in r6), r6
assert any(e.get("dsn") == "4.7.4" and e.get("tls_decided_by") == "sender"
           and "2001:db8:18::/120" in str(e.get("tls_sender_policy")) for e in r6), r6
for f in glob.glob(sys.argv[2] + "/[0-9]*.json"):
    assert "floor6@example.org" not in json.load(open(f))["rcpts"], f
EOF
check "the IPv4-submitted message: no floor for it, delivered" \
	python3 - "$CONF/sink-six" <<'EOF'
import glob, json, sys
got = [f for f in glob.glob(sys.argv[1] + "/[0-9]*.json") if "floor4@example.org" in json.load(open(f))["rcpts"]]
assert len(got) == 1, got
EOF

tap_done
