#!/usr/bin/env bash
# tests/lab/test_dns.sh - MX routing with a validating resolver (issue 15),
# end to end in the lab: a lab root and test zones served by NSD in pg-srv,
# DNSSEC-signed now with keys made now (tests/lab/dnslab.py, zones in
# tests/lab/dnslab.zones), postern-dp's libunbound pointed at the lab root
# with the lab's trust anchor over the management link, and real SMTP
# listeners on the MX next-hop pool (198.19.0.10-49). Each case delivers,
# defers or bounces as Postfix would, checked in the delivery record
# (status, DSN code, reason, relay, MX host, DNSSEC status) and at the
# listeners. Prints TAP.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONF=$(mktemp -d /tmp/pg-dns-conf.XXXXXX)
SPOOL=$(mktemp -d /var/tmp/pg-dns-spool.XXXXXX)
DNS=$CONF/dnslab
DNSLAB=$TOP/tests/lab/dnslab.py
SINKS=$CONF/sinks
# the listeners: prefs mx2 mx3, equal a b c, multi-a's third address,
# implicit, the unsigned/nsec3 host; prefs mx1 (.10) starts refusing, and
# multi-a's first two (.16 .17) refuse throughout (nothing listens: RST)
LISTEN="11 12 13 14 15 18 19 20"

sink_pid() { cat "$SINKS/$1.pid" 2>/dev/null; }
sink_stop() {
	local p
	p=$(sink_pid "$1")
	[ -n "$p" ] && kill -TERM "$p" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
	kill -KILL "$p" 2>/dev/null
}
sink_start() {
	local a=$1
	mkdir -p "$SINKS/$a"
	rm -f "$SINKS/$a/ready"
	ip netns exec pg-srv python3 "$TOP/tests/lab/smtpsink.py" --listen "198.19.0.$a:25" \
		--dir "$SINKS/$a" --hostname "sink$a.test" --duration 900 >>"$SINKS/$a.log" 2>&1 &
	echo $! >"$SINKS/$a.pid"
	for _ in $(seq 100); do [ -f "$SINKS/$a/ready" ] && return 0; sleep 0.1; done
	tail -n 5 "$SINKS/$a.log"
	return 1
}
cleanup() {
	"$LAB" stop >/dev/null 2>&1
	for a in $LISTEN 10; do sink_stop "$a"; done
	[ -d "$DNS" ] && "$DNSLAB" stop "$DNS" >/dev/null 2>&1
	rm -rf "$CONF" "$SPOOL"
}
trap cleanup EXIT

# wait_for SECONDS CMD...: until CMD succeeds (bounded)
wait_for() { local end=$((SECONDS + $1)); shift; while [ $SECONDS -lt "$end" ]; do "$@" && return 0; sleep 0.3; done; "$@"; }
n_at() { find "$SINKS/$1" -maxdepth 1 -name '[0-9]*.json' 2>/dev/null | wc -l; }
# has_rcpt ADDR RCPT: the listener on 198.19.0.ADDR got a message for RCPT
has_rcpt() { grep -lq "\"$2\"" "$SINKS/$1"/[0-9]*.json 2>/dev/null; }
log_text() { "$LAB" ctl log --lines 100000 2>/dev/null; }
# rec RCPT STATUS: the last delivery record for RCPT with that status
rec() { log_text | grep "to=$1 " | grep "status=$2" | tail -n 1; }
has_rec() { [ -n "$(rec "$1" "$2")" ]; }
send() { "$LAB" exec cli swaks --server 198.18.0.1 --from "dns-test@pg-cli.example" --to "$1" \
	--helo pg-cli.example --h-Subject "dns $1" >/dev/null 2>&1; }
ctr() { counters_json >"$CONF/c.json"; counter "$CONF/c.json" "$1"; }
# expect RCPT STATUS WORDS... : a record with every word (grep -F)
expect() {
	local r=$1 st=$2 line w
	shift 2
	wait_for 40 has_rec "$r" "$st"
	line=$(rec "$r" "$st")
	for w in "$@"; do
		if [[ $line != *"$w"* ]]; then
			echo "record of $r: ${line:-none with status=$st}; missing '$w'"
			echo "last: $(log_text | grep "to=$r " | tail -n 1)"
			return 1
		fi
	done
	echo "$line"
}
# case_check "description" RCPT STATUS WORDS...
case_check() {
	local d=$1 out
	shift
	if out=$(expect "$@"); then ok "$d"; else not_ok "$d"; echo "$out" | sed 's/^/# /'; fi
}

"$LAB" down >/dev/null 2>&1
check "lab up with the management link" "$LAB" up
# one zone of this test's own: a TTL of 1 s (the expiry case)
cat >"$CONF/ttl.zones" <<'EOF'
$ZONE ttl.test ttl=1 negttl=1
@	MX	10 mx
mx	A	198.19.0.20
# one host named by two MX records: its address is asked once (merged)
$ZONE dup.test
@	MX	10 mx
@	MX	20 mx
mx	A	198.19.0.20
# a domain first asked after posternd restarted
$ZONE restart.test
@	MX	10 mx
mx	A	198.19.0.20
# a domain asked for the first time while the servers are down
$ZONE later.test
@	MX	10 mx
mx	A	198.19.0.20
EOF
if "$DNSLAB" start "$DNS" "$TOP/tests/lab/dnslab.zones" "$CONF/ttl.zones" >"$CONF/dnslab.out" 2>&1; then
	ok "lab DNS: root, test. and $(grep -vc '^#' "$DNS/zones.txt") zones signed now, served by NSD in pg-srv"
else
	not_ok "lab DNS did not start: $(tail -n 5 "$CONF/dnslab.out")"
	tap_done
	exit 1
fi
# the resolver outside Postern agrees the lab is sound (secure, bogus as built)
"$DNSLAB" query "$DNS" prefs.test MX >"$CONF/q1.json" 2>&1
"$DNSLAB" query "$DNS" bogus.test MX >"$CONF/q2.json" 2>&1
grep -q '"dnssec": "secure"' "$CONF/q1.json" && grep -q '"dnssec": "bogus"' "$CONF/q2.json" &&
	ok "lab DNS: prefs.test MX secure, bogus.test MX bogus (python3-unbound from pg-dp)" ||
	not_ok "lab DNS answers: $(cat "$CONF/q1.json" "$CONF/q2.json")"

# libunbound: the lab root's hints and anchor; test. is a special-use name
# (RFC 6761) unbound answers itself unless told; forget a dead server fast
cat >"$CONF/unbound.conf" <<'EOF'
server:
	local-zone: "test." nodefault
	infra-host-ttl: 2
EOF
sed -e "s#^spool_directory.*#spool_directory = $SPOOL#" -e "/^relayhost/d" \
	"$TOP/tools/lab-config/postern.conf" >"$CONF/postern.conf"
cat >>"$CONF/postern.conf" <<EOF
log_file = $CONF/postern.log
dns_root_hints_file = $DNS/root.hints
dns_trust_anchor_file = $DNS/root.key
dns_unbound_conf = $CONF/unbound.conf
dns_timeout = 4s
EOF
cat >"$CONF/transport" <<'EOF'
viamx.example	smtp:prefs.test
viahost.example	smtp:[mx3.prefs.test]
EOF
check "lab start: no relayhost, DNS from the lab root" "$LAB" start "$CONF"
listening=0
for a in $LISTEN; do sink_start "$a" && listening=$((listening + 1)); done
[ "$listening" -eq 8 ] && ok "8 SMTP listeners on the MX next-hop pool" || not_ok "listeners: $listening of 8"
c0=$(ctr dns_queries)

# --- routes that deliver ---
send u1@prefs.test
case_check "prefs.test: mx1 (pref 10) refuses, delivered to mx2 (pref 20), DNSSEC secure" \
	u1@prefs.test sent "relay=198.19.0.11" "mx_host=mx2.prefs.test" "dnssec=secure"
has_rcpt 12 u1@prefs.test && not_ok "prefs.test: mx3 (pref 30) got the message too" ||
	ok "prefs.test: mx3 (pref 30) not used"
# one MX host, three addresses in random order (Postfix
# smtp_randomize_addresses), two refusing: each message fails over until .18
f0=$(ctr delivery_failovers)
for i in 1 2 3 4 5 6; do send "u$i@multi-a.test"; done
bad=""
for i in 1 2 3 4 5 6; do
	expect "u$i@multi-a.test" sent "relay=198.19.0.18" "mx_host=mx.multi-a.test" "dnssec=secure" >/dev/null ||
		bad="$bad u$i"
done
f1=$(ctr delivery_failovers)
[ -z "$bad" ] && [ "$f1" -gt "$f0" ] &&
	ok "multi-a.test: every address of the MX host in turn: 6 messages at the one listening address, $((f1 - f0)) failovers" ||
	not_ok "multi-a.test: not at .18:$bad; failovers $f0 -> $f1"
send u1@implicit.test
case_check "implicit.test: no MX, the domain's own A (implicit MX)" \
	u1@implicit.test sent "relay=198.19.0.19" "mx_host=implicit.test" "dnssec=secure"
send u1@unsigned.test
case_check "unsigned.test: an insecure delegation delivers, DNSSEC insecure" \
	u1@unsigned.test sent "relay=198.19.0.20" "mx_host=mx.unsigned.test" "dnssec=insecure"
send u1@nsec3.test
case_check "nsec3.test: NSEC3-signed zone, DNSSEC secure" \
	u1@nsec3.test sent "relay=198.19.0.20" "dnssec=secure"
send u1@viamx.example
case_check "transport smtp:prefs.test: the MX hosts of prefs.test" \
	u1@viamx.example sent "relay=198.19.0.11" "mx_host=mx2.prefs.test"
send u1@viahost.example
case_check "transport smtp:[mx3.prefs.test]: its A record only" \
	u1@viahost.example sent "relay=198.19.0.12" "mx_host=mx3.prefs.test"

m0=$(ctr dns_merged)
send u1@dup.test
case_check "dup.test: two MX records naming one host: delivered" \
	u1@dup.test sent "relay=198.19.0.20" "mx_host=mx.dup.test"
m1=$(ctr dns_merged)
[ "$m1" -gt "$m0" ] && ok "dup.test: the host's A asked once for both MX records (dns_merged $m0 -> $m1)" ||
	not_ok "dup.test: no merged lookup (dns_merged $m0 -> $m1)"

# equal preferences: 30 messages spread over the three hosts
pids=""
for i in $(seq 1 30); do
	send "e$i@equal.test" &
	pids="$pids $!"
	[ $((i % 6)) -eq 0 ] && { wait $pids; pids=""; } # 6 senders at a time (2 cores)
done
# (never a bare wait: the listeners are children too)
all_there() { [ $(($(n_at 13) + $(n_at 14) + $(n_at 15))) -ge 30 ]; }
if wait_for 60 all_there && [ "$(n_at 13)" -ge 1 ] && [ "$(n_at 14)" -ge 1 ] && [ "$(n_at 15)" -ge 1 ]; then
	ok "equal.test: 30 messages spread over the equal-preference hosts ($(n_at 13)/$(n_at 14)/$(n_at 15))"
else
	not_ok "equal.test: spread $(n_at 13)/$(n_at 14)/$(n_at 15)"
fi

# --- routes that bounce ---
send u1@nullmx.test
case_check "nullmx.test: null MX bounces 5.1.10 at once" \
	u1@nullmx.test bounced "dsn=5.1.10" "nullMX"
send u1@nx.test
case_check "nx.test: NXDOMAIN bounces 5.1.2" u1@nx.test bounced "dsn=5.1.2" "NXDOMAIN"
send u1@loop.test
case_check "loop.test: the MX is Postern itself: 5.4.6 mail loops back to myself" \
	u1@loop.test bounced "dsn=5.4.6" "loops back to myself"

# --- routes that defer ---
send u1@lame.test
case_check "lame.test (REFUSED delegation): deferred 4.4.3 with the reason" \
	u1@lame.test deferred "dsn=4.4.3" "name=lame.test"
send u1@silent.test
case_check "silent.test (server drops queries): deferred 4.4.3" \
	u1@silent.test deferred "dsn=4.4.3" "name=silent.test"
send u1@bogus.test
case_check "bogus.test (MX altered after signing): deferred 4.4.3, bogus" \
	u1@bogus.test deferred "dsn=4.4.3" "DNSSEC validation failed" "dnssec=bogus"
send u1@expired.test
case_check "expired.test (RRSIGs expired): deferred 4.4.3, bogus" \
	u1@expired.test deferred "dsn=4.4.3" "DNSSEC validation failed"
send u1@badds.test
case_check "badds.test (DS matches no key): deferred 4.4.3, bogus" \
	u1@badds.test deferred "dsn=4.4.3" "DNSSEC validation failed"
send u1@bogus-a.test
case_check "bogus-a.test (MX host's A bogus): deferred 4.4.3" \
	u1@bogus-a.test deferred "dsn=4.4.3" "mx.bogus-a.test"
# the CNAME'd MX target points at mx1.prefs.test, which refuses: deferred,
# then delivered once mx1 listens (and prefs.test then goes to mx1: preference)
send u1@cname.test
case_check "cname.test: MX -> CNAME -> mx1.prefs.test (refusing): deferred" \
	u1@cname.test deferred "dsn=4.4.1" "relay=198.19.0.10" "mx_host=alias.cname.test" "Connection refused"
sink_start 10 && LISTEN="$LISTEN 10"
case_check "cname.test: delivered through the alias once mx1 listens" \
	u1@cname.test sent "relay=198.19.0.10" "mx_host=alias.cname.test"
send u2@prefs.test
case_check "prefs.test with mx1 up: the preference-10 host takes it" \
	u2@prefs.test sent "relay=198.19.0.10" "mx_host=mx1.prefs.test"

# --- the cache (asked through posternctl: the counters also move with the
# retries of the deferred mail above, the lookup's own numbers do not) ---
send u3@prefs.test
wait_for 40 has_rec u3@prefs.test sent >/dev/null
"$LAB" ctl dns lookup prefs.test --json >"$CONF/c1.json" 2>&1
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["source"]=="cache" and d["queries"]==0 and d["cache_hits"]>=4 else 1)' "$CONF/c1.json" &&
	ok "a cached answer is used: prefs.test's route took no query ($(cat "$CONF/c1.json" | cut -c1-160))" ||
	not_ok "cached: $(cat "$CONF/c1.json")"
send u1@ttl.test
case_check "ttl.test (TTL 1 s) delivered" u1@ttl.test sent "relay=198.19.0.20"
sleep 2.5 # beyond ttl.test's TTL of 1 s
"$LAB" ctl dns lookup ttl.test --json >"$CONF/c2.json" 2>&1
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["source"]=="fresh" and d["queries"]>=2 and d["hops"][0]["address"]=="198.19.0.20" else 1)' "$CONF/c2.json" &&
	ok "TTL expiry: ttl.test asked again after 2.5 s ($(cat "$CONF/c2.json" | cut -c1-160))" ||
	not_ok "TTL expiry: $(cat "$CONF/c2.json")"
send u2@ttl.test
case_check "ttl.test delivered again after its TTL" u2@ttl.test sent "relay=198.19.0.20"

# --- the resolver stops answering: mail is deferred, kept, delivered later ---
"$DNSLAB" stop "$DNS" zones >/dev/null 2>&1
send u1@later.test
case_check "zone servers down: later.test deferred 4.4.3, not lost" \
	u1@later.test deferred "dsn=4.4.3"
"$LAB" ctl queue list >"$CONF/queue.txt" 2>&1
qid=$(rec u1@later.test deferred | sed -n 's/.*queue_id=\([0-9A-F]*\).*/\1/p')
[ -n "$qid" ] && grep -q "^$qid" "$CONF/queue.txt" && ok "later.test's message $qid stays queued" ||
	not_ok "later.test ($qid) not in the queue: $(head -n 20 "$CONF/queue.txt")"
"$DNSLAB" serve "$DNS" zones >/dev/null 2>&1
case_check "servers back: later.test delivered on a retry" \
	u1@later.test sent "relay=198.19.0.20" "mx_host=mx.later.test" "dnssec=secure"

# --- posternctl dns lookup / flush, transport test ---
"$LAB" ctl dns lookup prefs.test >"$CONF/lk1.txt" 2>&1
grep -q "^prefs.test: ok, DNSSEC secure" "$CONF/lk1.txt" &&
	grep -Eq "^ +10 mx1.prefs.test 198.19.0.10 secure" "$CONF/lk1.txt" &&
	grep -Eq "^ +30 mx3.prefs.test 198.19.0.12 secure" "$CONF/lk1.txt" &&
	ok "posternctl dns lookup prefs.test: the MX set in order with addresses and DNSSEC status" ||
	not_ok "dns lookup prefs.test: $(cat "$CONF/lk1.txt")"
"$LAB" ctl dns lookup nullmx.test >"$CONF/lk2.txt" 2>&1
"$LAB" ctl dns lookup bogus.test >"$CONF/lk3.txt" 2>&1
grep -q "^nullmx.test: nullmx" "$CONF/lk2.txt" && grep -q "^bogus.test: temp" "$CONF/lk3.txt" &&
	grep -q "DNSSEC validation failed" "$CONF/lk3.txt" &&
	ok "posternctl dns lookup: null MX and bogus answers shown as such" ||
	not_ok "dns lookup nullmx/bogus: $(cat "$CONF/lk2.txt" "$CONF/lk3.txt")"
"$LAB" ctl dns lookup prefs.test >"$CONF/lk4.txt" 2>&1
"$LAB" ctl dns flush prefs.test >"$CONF/fl.txt" 2>&1
"$LAB" ctl dns lookup prefs.test --json >"$CONF/lk5.json" 2>&1
grep -q "^prefs.test: ok, DNSSEC secure, cache" "$CONF/lk4.txt" && grep -Eq "^flushed [1-9]" "$CONF/fl.txt" &&
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["source"]=="fresh" and d["queries"]>=1 and d["hops"][0]["host"]=="mx1.prefs.test" else 1)' "$CONF/lk5.json" &&
	ok "posternctl dns: cached answer, then flush ($(cat "$CONF/fl.txt")), then a fresh lookup" ||
	not_ok "dns cache/flush: $(cat "$CONF/lk4.txt" "$CONF/fl.txt" "$CONF/lk5.json")"
"$LAB" ctl transport test equal.test >"$CONF/tt.txt" 2>&1
grep -q "MX route" "$CONF/tt.txt" && grep -Eq "^ +10 [abc].equal.test 198.19.0.1[345] secure" "$CONF/tt.txt" &&
	ok "posternctl transport test equal.test: no entry, and the MX route" ||
	not_ok "transport test: $(cat "$CONF/tt.txt")"

# --- the resolver lives in postern-dp: a posternd restart does not stop it ---
check "posternd restarted (postern-dp keeps running)" "$LAB" restart posternd
send u1@restart.test
case_check "after posternd's restart: restart.test looked up and delivered" \
	u1@restart.test sent "relay=198.19.0.20" "mx_host=mx.restart.test" "dnssec=secure"

# --- counters ---
counters_json >"$CONF/cend.json"
summary=""
for k in dns_routes dns_routes_cached dns_queries dns_cache_hits dns_merged dns_nxdomain dns_nullmx dns_servfail dns_timeouts dns_bogus dns_loops; do
	summary="$summary $k=$(counter "$CONF/cend.json" "$k")"
done
[ "$(counter "$CONF/cend.json" dns_nxdomain)" -ge 1 ] && [ "$(counter "$CONF/cend.json" dns_nullmx)" -ge 1 ] &&
	[ "$(counter "$CONF/cend.json" dns_bogus)" -ge 3 ] && [ "$(counter "$CONF/cend.json" dns_loops)" -ge 1 ] &&
	[ "$(counter "$CONF/cend.json" dns_queries)" -gt "$c0" ] &&
	ok "DNS counters count each kind:$summary" || not_ok "DNS counters:$summary"

tap_done
