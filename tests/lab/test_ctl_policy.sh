#!/usr/bin/env bash
# tests/lab/test_ctl_policy.sh - posternctl policy/transport end to end
# against a real posternd: set/test/del/list, policy inbound (the smtpd_tls_*
# requirements, published by reload), refused changes leaving the
# file byte for byte and the generation unchanged, a refused reload with
# FILE:LINE. No dataplane and no network namespaces: posternd runs with a
# temporary configuration directory, its own shm_name and control socket, so
# this test runs alongside the namespace lab. Prints TAP.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD=${PG_BUILD:-$TOP/build}
PD=$BUILD/control/posternd
PC=$BUILD/control/posternctl
CFG=$(mktemp -d /tmp/pg-ctl-policy.XXXXXX)
SHM=pg-ctl-policy-$$
SOCK=$CFG/ctl.sock
PD_PID=

cleanup() {
	if [ -n "$PD_PID" ]; then kill "$PD_PID" 2>/dev/null; wait "$PD_PID" 2>/dev/null; fi
	rm -f "/dev/shm/$SHM"
	rm -rf "$CFG"
}
trap cleanup EXIT

cat >"$CFG/postern.conf" <<CONF
port0_device = net_tap0
port0_address = 198.18.0.1/24
shm_name = $SHM
control_socket = $SOCK
log_file = $CFG/postern.log
mynetworks = 198.18.0.0/24
relay_domains = example.com
CONF
cat >"$CFG/tls_policy" <<'POL'
# partner policies (kept by policy set/del)
example.com     secure match=nexthop:dot-nexthop
.example.com    encrypt
    ciphers=high

# pinned next hop
[mx.partner.test]:587 fingerprint match=AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89
POL
cat >"$CFG/transport" <<'TR'
partner.test  smtp:[mx.partner.test]:587, [198.19.0.2]
TR

ctl() { "$PC" -s "$SOCK" "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
gen() { ctl status --json | json 'd["generation"]'; }

check "posternd --check accepts the directory" "$PD" --check -c "$CFG"
"$PD" -c "$CFG" 2>"$CFG/posternd.log" &
PD_PID=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
ctl status >/dev/null 2>&1
rc=$?
if [ $rc -eq 4 ]; then ok "posternd up, status says not ready (no dataplane): exit 4"; else not_ok "status exit $rc, want 4"; cat "$CFG/posternd.log" | sed 's/^/# /'; fi

G0=$(gen)
check "policy list --json lists 3 entries in file order" \
	bash -c "$(declare -f ctl json); PC=$PC SOCK=$SOCK; ctl policy list --json | json '[e[\"key\"] for e in d[\"entries\"]] == [\"example.com\", \".example.com\", \"[mx.partner.test]:587\"] or sys.exit(1)'"

out=$(ctl policy test a.b.example.com --json)
if echo "$out" | json 'd["results"][0]["match"]=="parent" and d["results"][0]["level"]=="encrypt" and d["results"][0]["entry"]["line"]==3 or sys.exit(1)' >/dev/null; then
	ok "policy test: parent match .example.com at line 3, level encrypt"
else not_ok "policy test parent: $out"; fi

out=$(ctl policy test partner.test --json)
if echo "$out" | json '[r["match"] for r in d["results"]]==["nexthop","default"] and d["results"][0]["level"]=="fingerprint" and d["transport"]["match"]=="exact" or sys.exit(1)' >/dev/null; then
	ok "policy test follows the transport next hops: nexthop entry, then default"
else not_ok "policy test transport: $out"; fi

out=$(ctl policy test Example.COM --nexthop '[mx.other.test]:2525')
if echo "$out" | grep -q "^match:      exact" && echo "$out" | grep -q "tls_policy:2: example.com"; then
	ok "policy test --nexthop without its own entry falls back to the domain (text)"
else not_ok "policy test --nexthop: $out"; fi

out=$(ctl policy set bank.test secure match=hostname:nexthop protocols='>=TLSv1.2')
rc=$?
G1=$(gen)
if [ $rc -eq 0 ] && [ "$out" = "published generation $G1" ] && [ "$G1" -gt "$G0" ]; then
	ok "policy set publishes a new generation ($G0 -> $G1)"
else not_ok "policy set: rc $rc, '$out', generation $G0 -> $G1"; fi
if grep -q '^# partner policies (kept by policy set/del)$' "$CFG/tls_policy" && grep -q '^# pinned next hop$' "$CFG/tls_policy" \
	&& tail -n1 "$CFG/tls_policy" | grep -qx 'bank.test secure match=hostname:nexthop protocols=>=TLSv1.2'; then
	ok "policy set appended the entry and kept the comments"
else not_ok "tls_policy after set:"; sed 's/^/# /' "$CFG/tls_policy"; fi
out=$(ctl policy show bank.test --json)
if echo "$out" | json 'd["level"]=="secure" and d["attributes"]["protocols"]=="TLSv1.2:TLSv1.3" or sys.exit(1)' >/dev/null; then
	ok "policy show bank.test: the new entry is live"
else not_ok "policy show: $out"; fi

cp "$CFG/tls_policy" "$CFG/before"
err=$(ctl policy set bank.test dane 2>&1)
rc=$?
if [ $rc -eq 1 ] && [ "$err" = "$CFG/tls_policy:8: dane requires DNSSEC lookups, not supported yet" ] \
	&& cmp -s "$CFG/before" "$CFG/tls_policy" && [ "$(gen)" = "$G1" ]; then
	ok "policy set dane refused: exit 1, FILE:LINE message, file byte-identical, generation unchanged"
else not_ok "refused set: rc $rc, '$err', generation $(gen)"; fi
err=$(ctl policy set new.test verify tafile=/nonexistent/ta.pem 2>&1)
rc=$?
if [ $rc -eq 1 ] && echo "$err" | grep -q "tafile /nonexistent/ta.pem: cannot read" && cmp -s "$CFG/before" "$CFG/tls_policy"; then
	ok "policy set with an unreadable tafile refused, file unchanged"
else not_ok "tafile: rc $rc, '$err'"; fi

out=$(ctl policy set .example.com verify mode=testing --json)
if echo "$out" | json 'd["ok"] and d["generation"] > '"$G1"' or sys.exit(1)' >/dev/null \
	&& ! grep -q 'ciphers=high' "$CFG/tls_policy" && grep -qx '.example.com verify mode=testing' "$CFG/tls_policy"; then
	ok "policy set replaces an entry with its continuation lines"
else not_ok "replace: $out"; sed 's/^/# /' "$CFG/tls_policy"; fi

G2=$(gen)
out=$(ctl policy del bank.test)
if [ $? -eq 0 ] && ! grep -q bank.test "$CFG/tls_policy" && [ "$(gen)" -gt "$G2" ]; then
	ok "policy del removes the entry and publishes"
else not_ok "del: $out"; fi
ctl policy del bank.test >/dev/null 2>&1
rc=$?
if [ $rc -eq 1 ]; then ok "policy del of a missing entry: exit 1"; else not_ok "del missing: exit $rc"; fi
ctl policy show nothere.test >/dev/null 2>&1
rc=$?
if [ $rc -eq 1 ]; then ok "policy show of a missing entry: exit 1"; else not_ok "show missing: exit $rc"; fi

ctl policy test >/dev/null 2>&1; rc1=$?
ctl policy frob >/dev/null 2>&1; rc2=$?
ctl policy list --bogus >/dev/null 2>&1; rc3=$?
if [ $rc1 -eq 2 ] && [ $rc2 -eq 2 ] && [ $rc3 -eq 2 ]; then ok "usage errors exit 2"; else not_ok "usage exits $rc1 $rc2 $rc3"; fi
if ctl policy set --help | grep -q "validate the whole file" && ctl transport test --help | grep -q "next hops"; then
	ok "--help per sub-command"; else not_ok "--help"; fi
out=$(ctl policy test bad_domain 2>&1); rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "bad domain"; then ok "policy test of an invalid name: exit 1"; else not_ok "bad domain: $rc $out"; fi

out=$(ctl transport test partner.test --json)
if echo "$out" | json '[n["destination"] for n in d["transport"]["nexthops"]]==["[mx.partner.test]:587","[198.19.0.2]"] or sys.exit(1)' >/dev/null; then
	ok "transport test lists the next hops in order"
else not_ok "transport test: $out"; fi

# a refused reload: the generation stays, the message names file and line
G3=$(gen)
cp "$CFG/transport" "$CFG/transport.good"
printf 'partner.test  smtp:[mx.partner.test]:587\nbroken.test   lmtp:unix:/run/lmtp\n' >"$CFG/transport"
err=$(ctl reload 2>&1); rc=$?
if [ $rc -eq 1 ] && [ "$err" = "$CFG/transport:2: transport \"lmtp\" is not supported (Postern delivers with smtp only)" ] && [ "$(gen)" = "$G3" ]; then
	ok "invalid reload refused with FILE:LINE, generation $G3 stays"
else not_ok "reload: rc $rc, '$err', generation $(gen)"; fi
mv "$CFG/transport.good" "$CFG/transport"
echo 'dane.example.com  dane-only' >>"$CFG/tls_policy"
n=$(wc -l <"$CFG/tls_policy")
err=$(ctl reload 2>&1); rc=$?
if [ $rc -eq 1 ] && [ "$err" = "$CFG/tls_policy:$n: dane-only requires DNSSEC lookups, not supported yet" ] && [ "$(gen)" = "$G3" ]; then
	ok "reload of a dane-only entry refused with FILE:LINE, generation stays"
else not_ok "reload 2: rc $rc, '$err'"; fi
sed -i '$d' "$CFG/tls_policy"
out=$(ctl reload); rc=$?
if [ $rc -eq 0 ] && [ "$(gen)" -gt "$G3" ]; then ok "reload after the fix publishes ($out)"; else not_ok "reload fixed: $rc $out"; fi

# the live policy survives a posternd restart (it is in the files)
kill "$PD_PID"; wait "$PD_PID" 2>/dev/null
"$PD" -c "$CFG" 2>>"$CFG/posternd.log" &
PD_PID=$!
for _ in $(seq 50); do ctl status >/dev/null 2>&1; [ $? -ne 3 ] && break; sleep 0.1; done
out=$(ctl policy show .example.com --json)
if echo "$out" | json 'd["level"]=="verify" and d["testing"] or sys.exit(1)' >/dev/null; then
	ok "after a posternd restart the edited policy is live"
else not_ok "after restart: $out"; fi

# inbound TLS requirements (smtpd_tls_*): policy inbound on the live snapshot
out=$(ctl policy inbound 198.19.7.9 partner.test --json)
if echo "$out" | json 'not d["required"] and d["reason"]=="none" and d["level"]=="may" and d["protocols"]=="TLSv1.2:TLSv1.3" and d["reply"] is None or sys.exit(1)' >/dev/null; then
	ok "policy inbound with the defaults: nothing required, may, TLSv1.2:TLSv1.3"
else not_ok "policy inbound defaults: $out"; fi
if command -v openssl >/dev/null && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$CFG/mx.key" -out "$CFG/mx.crt" -days 30 -subj /CN=mx.example.com \
	-addext subjectAltName=DNS:mx.example.com 2>/dev/null; then
	cat "$CFG/mx.key" "$CFG/mx.crt" >"$CFG/mx.pem"
	cat >>"$CFG/postern.conf" <<'CONF'
# inbound TLS: partners must use STARTTLS
tls_certificates = mx.pem
smtpd_tls_required_networks = 198.19.0.0/16, 198.19.7.0/24, [2001:db8:7::]/48
smtpd_tls_required_senders = partner.test
	.partners.example
smtpd_tls_mandatory_protocols = TLSv1.3
CONF
	NL=$(grep -n '^smtpd_tls_required_networks' "$CFG/postern.conf" | cut -d: -f1)
	SL=$(grep -n '^smtpd_tls_required_senders' "$CFG/postern.conf" | cut -d: -f1)
	G4=$(gen)
	out=$(ctl reload); rc=$?
	if [ $rc -eq 0 ] && [ "$(gen)" -gt "$G4" ]; then ok "reload publishes the smtpd_tls_* keys"; else not_ok "reload inbound: $rc $out"; fi
	out=$(ctl policy inbound 198.19.7.9 partner.test --json)
	if echo "$out" | json 'd["required"] and d["reason"]=="network" and d["checks"]["network"]["entry"]=="198.19.7.0/24" and d["checks"]["network"]["line"]=='"$NL"' and d["checks"]["sender"]["required"] and d["protocols"]=="TLSv1.3" and d["reply"]=="530 5.7.0 Must issue a STARTTLS command first" or sys.exit(1)' >/dev/null; then
		ok "policy inbound: the client network (longest prefix) decides before the sender, mandatory protocols"
	else not_ok "policy inbound network: $out"; fi
	out=$(ctl policy inbound 2001:db8:7:1::9 --json)
	if echo "$out" | json 'd["client"]=="2001:db8:7:1::9" and d["required"] and d["reason"]=="network" and d["checks"]["network"]["entry"]=="[2001:db8:7::]/48" and d["checks"]["network"]["line"]=='"$NL"' or sys.exit(1)' >/dev/null; then
		ok "policy inbound: an IPv6 client inside an IPv6 required network"
	else not_ok "policy inbound IPv6 network: $out"; fi
	out=$(ctl policy inbound 2001:db8:8::9 --json)
	if echo "$out" | json 'not d["required"] and d["checks"]["network"]["entry"] is None or sys.exit(1)' >/dev/null; then
		ok "policy inbound: an IPv6 client outside every network: not required"
	else not_ok "policy inbound IPv6 outside: $out"; fi
	out=$(ctl policy inbound 203.0.113.5 Ops@A.Partners.Example --json)
	if echo "$out" | json 'd["required"] and d["reason"]=="sender" and d["sender"]=="a.partners.example" and d["checks"]["sender"]["entry"]==".partners.example" and d["checks"]["sender"]["match"]=="parent" and d["checks"]["sender"]["line"]=='"$SL"' and d["protocols"]=="TLSv1.2:TLSv1.3" or sys.exit(1)' >/dev/null; then
		ok "policy inbound: a sender address of a .parent partner entry, at its postern.conf line"
	else not_ok "policy inbound sender: $out"; fi
	out=$(ctl policy inbound 203.0.113.5 partner.test)
	if echo "$out" | grep -qx 'required:   yes, by the sender domain' \
		&& echo "$out" | grep -qx 'reply:      530 5.7.0 Must issue a STARTTLS command first' \
		&& echo "$out" | grep -qx "            $CFG/postern.conf:$SL: smtpd_tls_required_senders"; then
		ok "policy inbound explains in text: reason, reply, FILE:LINE"
	else not_ok "policy inbound text: $out"; fi
	out=$(ctl policy inbound 203.0.113.5); rc=$?
	if [ $rc -eq 0 ] && echo "$out" | grep -qx 'required:   no (STARTTLS offered, optional)' && echo "$out" | grep -q 'not known before MAIL FROM'; then
		ok "policy inbound before MAIL FROM: not required, exit 0"
	else not_ok "policy inbound before MAIL: $rc $out"; fi
	G5=$(gen)
	echo 'smtpd_tls_security_level = secure' >>"$CFG/postern.conf"
	n=$(wc -l <"$CFG/postern.conf")
	err=$(ctl reload 2>&1); rc=$?
	if [ $rc -eq 1 ] && [ "$err" = "$CFG/postern.conf:$n: bad value for smtpd_tls_security_level: \"secure\": expected none, may or encrypt (the SMTP server's levels)" ] && [ "$(gen)" = "$G5" ]; then
		ok "reload with smtpd_tls_security_level = secure refused with FILE:LINE, generation stays"
	else not_ok "reload secure: rc $rc, '$err'"; fi
	sed -i '$d' "$CFG/postern.conf"
	printf 'smtpd_tls_security_level = none\n' >>"$CFG/postern.conf"
	err=$(ctl reload 2>&1); rc=$?
	if [ $rc -eq 1 ] && [ "$err" = "$CFG/postern.conf:$NL: smtpd_tls_required_networks requires TLS, but smtpd_tls_security_level = none (line $n) does not offer STARTTLS" ] && [ "$(gen)" = "$G5" ]; then
		ok "reload with level none and required networks refused, generation stays"
	else not_ok "reload none: rc $rc, '$err'"; fi
	sed -i '$d' "$CFG/postern.conf"
else
	not_ok "policy inbound with requirements: the openssl tool is missing (Debian package openssl, tools/deps.sh)"
fi
ctl policy inbound 198.19.7.900 >/dev/null 2>&1; rc1=$?
ctl policy inbound 198.19.7.9 bad_domain >/dev/null 2>&1; rc2=$?
ctl policy inbound >/dev/null 2>&1; rc3=$?
ctl policy inbound 1.2.3.4 a.test b.test >/dev/null 2>&1; rc4=$?
ctl policy inbound 1.2.3.4 --nexthop x.test >/dev/null 2>&1; rc5=$?
if [ $rc1 -eq 1 ] && [ $rc2 -eq 1 ] && [ $rc3 -eq 2 ] && [ $rc4 -eq 2 ] && [ $rc5 -eq 2 ]; then
	ok "policy inbound: bad address or domain exit 1, usage errors exit 2"
else not_ok "policy inbound exits $rc1 $rc2 $rc3 $rc4 $rc5"; fi
if ctl policy inbound --help | grep -q "smtpd_tls_required_senders"; then ok "policy inbound --help"; else not_ok "policy inbound --help"; fi

tap_done
