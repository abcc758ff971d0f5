#!/usr/bin/env bash
# tests/lab/test_tls.sh - STARTTLS both ways in the lab (issue 6).
#
# Outbound: the policy matrix. Every level (none, may, encrypt,
# fingerprint, verify, secure, and mode=testing) against every next-hop
# behaviour: no STARTTLS, STARTTLS answered 454, a broken handshake, a
# self-signed certificate, a wrong name, an expired certificate, a valid
# chain and name, a certificate of another CA, and a man in the middle that
# strips STARTTLS from the EHLO reply (tests/lab/mitm_strip.py) - plus a real
# Postfix with TLS. Each cell's outcome (delivered with TLS, delivered in
# plaintext, deferred with 4.7.x) is asserted from what the next hop
# received and from the delivery records. The next hops are
# tests/lab/smtpsink.py (Python's ssl, i.e. OpenSSL) and Postfix;
# `openssl s_server` cannot speak SMTP before its handshake, so it serves
# as the client-side probe (s_client) instead.
#
# Inbound: swaks and Python smtplib with STARTTLS, the certificate chosen
# by SNI and by key type, the Received: header, STARTTLS injection
# (CVE-2011-0411), TLS required per sender, per network and per listener,
# session resumption across workers with the control plane's ticket keys,
# certificate rotation by reload with a session open, and testssl.sh.
# Prints TAP.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONF=$(mktemp -d /tmp/pg-tls-conf.XXXXXX)
SPOOL=$(mktemp -d /var/tmp/pg-tls-spool.XXXXXX)
CERTS=$CONF/certs
PFX=$CONF/pfx
chmod 755 "$CONF"
SINKS=()
sink_stop() { pkill -TERM -f "smtpsink.py --listen $1 " 2>/dev/null; for _ in $(seq 50); do pgrep -f "smtpsink.py --listen $1 " >/dev/null || return 0; sleep 0.1; done; pkill -KILL -f "smtpsink.py --listen $1 "; }
cleanup() {
	"$LAB" stop >/dev/null 2>&1
	for a in "${SINKS[@]}"; do sink_stop "$a"; done
	pkill -TERM -f "mitm_strip.py --listen 198.19.0.2:2608" 2>/dev/null
	[ -d "$PFX" ] && "$LAB" exec srv "$TOP/tests/lab/postfix-inst.sh" stop "$PFX" >/dev/null 2>&1
	ip -n pg-srv addr del 198.19.0.3/24 dev srv0 2>/dev/null
	rm -rf "$CONF" "$SPOOL"
}
trap cleanup EXIT

"$TOP/tests/lab/mkcerts.sh" "$CERTS" >/dev/null || { not_ok "mkcerts.sh"; tap_done; exit 1; }
fp() { awk -v n="$1" '$1 == n {print $3}' "$CERTS/fingerprints.txt"; }
FP_VALID=$(fp valid)
FP_SELF=$(fp selfsigned)

# ---- next hops: one sink per behaviour -------------------------------------
# name port smtpsink-options
BEHAVIOURS=(
	"notls 2601"
	"r454 2602 --starttls-reply 454 4.7.0 TLS not available due to local problem"
	"broken 2603 --tls-break"
	"selfsigned 2604 --starttls $CERTS/selfsigned.pem $CERTS/selfsigned.key"
	"wrongname 2605 --starttls $CERTS/wrongname.pem $CERTS/wrongname.key"
	"expired 2606 --starttls $CERTS/expired.pem $CERTS/expired.key"
	"valid 2607 --starttls $CERTS/valid.pem $CERTS/valid.key"
	"otherca 2610 --starttls $CERTS/otherca.pem $CERTS/otherca.key"
	"mitm 2608"
)
# the stripping man in the middle sits in front of a valid sink on 2609
sink_start() {
	local name=$1 port=$2 dir=$CONF/sink-$1
	shift 2
	mkdir -p "$dir"
	SINKS+=("198.19.0.2:$port")
	"$LAB" exec srv python3 "$TOP/tests/lab/smtpsink.py" --listen "198.19.0.2:$port" --dir "$dir" \
		--duration 900 "$@" >>"$dir.log" 2>&1 &
}
for b in "${BEHAVIOURS[@]}"; do
	set -- $b
	name=$1 port=$2
	shift 2
	case $name in
	r454) sink_start "$name" "$port" --starttls-reply 454 "4.7.0 TLS not available due to local problem" ;;
	mitm) sink_start "$name" 2609 --starttls "$CERTS/valid.pem" "$CERTS/valid.key" ;;
	*) sink_start "$name" "$port" "$@" ;;
	esac
done
mkdir -p "$CONF/mitm"
"$LAB" exec srv python3 "$TOP/tests/lab/mitm_strip.py" --listen 198.19.0.2:2608 \
	--upstream 198.19.0.2:2609 --dir "$CONF/mitm" >>"$CONF/mitm.log" 2>&1 &

# a real Postfix with TLS (the valid certificate) on 198.19.0.3
ip -n pg-srv addr add 198.19.0.3/24 dev srv0 2>/dev/null
pfx_ok=0
if "$LAB" exec srv "$TOP/tests/lab/postfix-inst.sh" start "$PFX" --listen 198.19.0.3:25 --mode sink \
	--hostname mx.tls.test --set "smtpd_tls_security_level=may" \
	--set "smtpd_tls_chain_files=$CERTS/valid.key,$CERTS/valid.pem" \
	--set "smtpd_tls_received_header=yes" >"$CONF/pfx.log" 2>&1; then
	pfx_ok=1
fi
check "a Postfix next hop with STARTTLS runs" test "$pfx_ok" = 1

# ---- the policy matrix ------------------------------------------------------
# level name -> tls_policy entry (after the domain)
LEVELS=(
	"none none"
	"may may"
	"encrypt encrypt"
	"fingerprint fingerprint match=$FP_VALID"
	"verify verify match=mx.tls.test"
	"secure secure match=mx.tls.test tafile=$CERTS/ca.pem"
	"testing verify match=mx.tls.test mode=testing"
)
# expected[level:behaviour] = T (delivered over TLS) | P (plaintext) | D (deferred 4.7.x)
declare -A EXPECT
set_row() { local lvl=$1; shift; local b; local v=("$@"); local i=0; for b in notls r454 broken selfsigned wrongname expired valid otherca mitm; do EXPECT[$lvl:$b]=${v[$i]}; i=$((i + 1)); done; }
#            notls r454 broken self wrong exp valid other mitm
set_row none P P P P P P P P P
set_row may P P P T T T T T P
set_row encrypt D D D T T T T T D
set_row fingerprint D D D D D D T D D
set_row verify D D D D D D T D D
set_row secure D D D D D D T D D
set_row testing P P P T T T T T P

: >"$CONF/transport"
: >"$CONF/tls_policy"
for l in "${LEVELS[@]}"; do
	set -- $l
	lname=$1
	shift
	for b in "${BEHAVIOURS[@]}"; do
		set -- $b
		echo "$lname-$1.tls.test	smtp:[198.19.0.2]:$2" >>"$CONF/transport"
	done
	set -- $l
	shift
	for b in "${BEHAVIOURS[@]}"; do
		set -- $b
		echo "$lname-$1.tls.test	${l#* }" >>"$CONF/tls_policy"
	done
done
# Postfix cells: verify (valid chain and name), fingerprint pinned to another certificate, may
cat >>"$CONF/transport" <<'EOF'
pfx-verify.tls.test	smtp:[198.19.0.3]:25
pfx-fpwrong.tls.test	smtp:[198.19.0.3]:25
pfx-may.tls.test	smtp:[198.19.0.3]:25
valid.tls.test	smtp:[198.19.0.2]:2607
EOF
cat >>"$CONF/tls_policy" <<EOF
pfx-verify.tls.test	verify match=mx.tls.test
pfx-fpwrong.tls.test	fingerprint match=$FP_SELF
pfx-may.tls.test	may
EOF
# the postern.conf of the lab, with certificates and trust anchors
sed -e "s#^spool_directory.*#spool_directory = $SPOOL#" \
	"$TOP/tools/lab-config/postern.conf" >"$CONF/postern.conf"
cat >>"$CONF/postern.conf" <<EOF
tls_certificates = $CERTS/postern-ecdsa.pem $CERTS/postern-rsa.pem
smtp_tls_CAfile = $CERTS/ca.pem
smtpd_tls_required_senders = partner.example
# a JSON log of this run only: the default file keeps every run's records,
# and a record of an earlier run must not pass for one of this run
log_file = $CONF/postern.log
EOF

"$LAB" start "$CONF" >/dev/null || { not_ok "lab start"; tap_done; exit 1; }
for _ in $(seq 100); do
	n=0
	for d in "$CONF"/sink-*; do [ -f "$d/ready" ] && n=$((n + 1)); done
	[ "$n" -eq 9 ] && [ -f "$CONF/mitm/ready" ] && break
	sleep 0.1
done
check "9 next-hop sinks and the man in the middle are ready" test "$n" = 9 -a -f "$CONF/mitm/ready"

# one message per cell, recipient rcpt@LEVEL-BEHAVIOUR.tls.test
send_one() {
	"$LAB" exec cli python3 - "$1" <<'PYEOF'
import smtplib, sys
rcpt = sys.argv[1]
s = smtplib.SMTP("198.18.0.1", 25, timeout=30)
s.sendmail("matrix@sender.example", [rcpt], "Subject: cell %s\r\nX-Cell: %s\r\n\r\nbody\r\n" % (rcpt, rcpt))
s.quit()
PYEOF
}
sent_ok=0
cells=()
for l in "${LEVELS[@]}"; do
	set -- $l
	for b in notls r454 broken selfsigned wrongname expired valid otherca mitm; do
		cells+=("$1:$b")
		send_one "rcpt@$1-$b.tls.test" && sent_ok=$((sent_ok + 1))
	done
done
for c in verify fpwrong may; do send_one "rcpt@pfx-$c.tls.test" && sent_ok=$((sent_ok + 1)); done
check "all $((${#cells[@]} + 3)) matrix messages accepted" test "$sent_ok" = $((${#cells[@]} + 3))

# delivered[rcpt] = tls version or "plain", from every sink's N.json
delivered() {
	python3 - "$CONF" <<'PYEOF'
import glob, json, sys
for f in glob.glob(sys.argv[1] + "/sink-*/*.json"):
    if f.endswith(("state.json", "summary.json")):
        continue
    j = json.load(open(f))
    for r in j.get("rcpts", []):
        print(r, (j.get("tls") or {}).get("version", "plain"))
PYEOF
}
log_json() { "$LAB" ctl log --json --lines 100000 2>/dev/null; }
# wait until every T/P cell is delivered and every D cell has a deferral record
expected_delivered=0
for c in "${cells[@]}"; do [ "${EXPECT[$c]}" != D ] && expected_delivered=$((expected_delivered + 1)); done
for _ in $(seq 120); do
	[ "$(delivered | wc -l)" -ge "$expected_delivered" ] && break
	sleep 0.5
done
sleep 2 # a deferral record for each D cell: the first attempt is done by now
delivered >"$CONF/delivered.txt"
log_json >"$CONF/log.json"

cell_result() { # LEVEL:BEHAVIOUR -> T P D or "?" with why
	local lvl=${1%%:*} b=${1#*:} rcpt v
	rcpt="rcpt@$lvl-$b.tls.test"
	v=$(awk -v r="$rcpt" '$1 == r {print $2}' "$CONF/delivered.txt" | head -1)
	if [ -n "$v" ]; then
		[ "$v" = plain ] && echo P || echo T
		return
	fi
	python3 - "$CONF/log.json" "$rcpt" <<'PYEOF'
import json, sys
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") == "delivery attempt" and e.get("to") == sys.argv[2] and \
       e.get("status") == "deferred" and e.get("dsn", "").startswith("4.7."):
        print("D")
        break
else:
    print("?")
PYEOF
}
bad=()
for c in "${cells[@]}"; do
	got=$(cell_result "$c")
	[ "$got" = "${EXPECT[$c]}" ] || bad+=("$c want ${EXPECT[$c]} got $got")
done
if [ ${#bad[@]} -eq 0 ]; then
	ok "policy matrix: ${#cells[@]} cells (7 levels x 9 next-hop behaviours) as expected"
else
	not_ok "policy matrix: ${#bad[@]} of ${#cells[@]} cells wrong"
	printf '# %s\n' "${bad[@]}"
fi
for row in none may encrypt fingerprint verify secure testing; do
	line=""
	for b in notls r454 broken selfsigned wrongname expired valid otherca mitm; do line+="$(cell_result "$row:$b") "; done
	diag "$(printf '%-12s %s' "$row" "$line")"
done
diag "columns: notls r454 broken selfsigned wrongname expired valid otherca mitm"

# nothing of a strict cell ever reached a next hop in plaintext
leak=$(python3 - "$CONF/delivered.txt" <<'PYEOF'
import sys
bad = [l for l in open(sys.argv[1]) if l.split()[1] == "plain" and
       l.split("@")[1].split("-")[0] in ("encrypt", "fingerprint", "verify", "secure")]
print(len(bad))
PYEOF
)
check "no strict cell delivered in plaintext" test "$leak" = 0
check "the man in the middle stripped STARTTLS" python3 -c '
import json,sys; s=json.load(open(sys.argv[1])); sys.exit(0 if s.get("stripped",0)>=1 else 1)' "$CONF/mitm/state.json"

# the delivery records: evidence for a verified delivery and the reasons for deferrals
rec() { python3 - "$CONF/log.json" "$@" <<'PYEOF'
import json, sys
path, rcpt, status = sys.argv[1:4]
want = dict(a.split("=", 1) for a in sys.argv[4:])
for line in open(path):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") != "delivery attempt" or e.get("to") != rcpt or e.get("status") != status:
        continue
    if all(k in e and (v in e[k]) for k, v in want.items()):
        sys.exit(0)
print("no record for", rcpt, status, want)
sys.exit(1)
PYEOF
}
check "verify/valid: record has policy, level, TLS version, cipher, subject, fingerprint, verdict" \
	rec rcpt@verify-valid.tls.test sent "tls_policy=verify-valid.tls.test" tls_level=verify tls=TLSv1 \
	tls_cipher=TLS_ peer_subject=CN=mx.tls.test "peer_fingerprint=$FP_VALID" tls_verdict=verified tls_outcome=verified
check "fingerprint/valid: pinned digest matched" \
	rec rcpt@fingerprint-valid.tls.test sent tls_verdict=fingerprint-matched tls_outcome=fingerprint
check "fingerprint/selfsigned: 4.7.5, fingerprint mismatch named" \
	rec rcpt@fingerprint-selfsigned.tls.test deferred dsn=4.7.5 "reply=fingerprint $FP_SELF matches no"
check "verify/expired: 4.7.5 certificate has expired" \
	rec rcpt@verify-expired.tls.test deferred dsn=4.7.5 "reply=certificate has expired"
check "verify/wrongname: 4.7.5 no name matches" \
	rec rcpt@verify-wrongname.tls.test deferred dsn=4.7.5 "reply=not verified"
check "verify/selfsigned: 4.7.5 not trusted" \
	rec rcpt@verify-selfsigned.tls.test deferred dsn=4.7.5 "reply=not trusted"
check "encrypt/notls: 4.7.4 STARTTLS not offered" \
	rec rcpt@encrypt-notls.tls.test deferred dsn=4.7.4 "reply=was not offered"
check "encrypt/mitm: 4.7.4 (the stripped STARTTLS is not offered)" \
	rec rcpt@encrypt-mitm.tls.test deferred dsn=4.7.4 "reply=was not offered"
check "encrypt/r454: 4.7.4 with the 454 reply" \
	rec rcpt@encrypt-r454.tls.test deferred dsn=4.7.4 "reply=refused to start TLS: 454"
check "encrypt/broken: 4.7.5 handshake failure, never plaintext" \
	rec rcpt@encrypt-broken.tls.test deferred dsn=4.7.5 "reply=Cannot start TLS"
# (the first of may/broken and testing/broken to fail marks the peer; the other goes plaintext at once)
check "may/broken: delivered in plaintext after the failed handshake" \
	rec rcpt@may-broken.tls.test sent tls=none tls_outcome=plaintext
check "testing/selfsigned: delivered over TLS, logged as would have deferred" \
	rec rcpt@testing-selfsigned.tls.test sent tls_outcome=would_defer "tls_note=would have deferred: Server certificate not trusted"
check "testing/notls: delivered in plaintext, logged as would have deferred" \
	rec rcpt@testing-notls.tls.test sent tls=none tls_outcome=would_defer
counters_json >"$CONF/c.json"
check "counters: would-defer, policy deferrals, plaintext fallbacks" python3 -c '
import json,sys; c=json.load(open(sys.argv[1]))
v=[c["delivery_tls_would_defer"], c["delivery_tls_policy_deferred"], c["delivery_tls_plaintext_fallbacks"]]
assert v[0] >= 7 and v[1] >= 20 and v[2] >= 1, v' "$CONF/c.json"

"$LAB" ctl stats --json >"$CONF/st.json" 2>/dev/null
check "posternctl stats: deliveries per TLS outcome per destination domain" python3 -c '
import json,sys; t=json.load(open(sys.argv[1]))["tls_outcomes"]
want={"verify-valid.tls.test":"verified","fingerprint-valid.tls.test":"fingerprint",
      "encrypt-selfsigned.tls.test":"encrypted","may-notls.tls.test":"plaintext",
      "encrypt-notls.tls.test":"deferred","testing-expired.tls.test":"would_defer"}
bad={d:t.get(d) for d,o in want.items() if t.get(d,{}).get(o,0) < 1}
assert not bad, bad
assert t["verify-valid.tls.test"]["deferred"] == 0 and t["encrypt-notls.tls.test"]["plaintext"] == 0' "$CONF/st.json"

# real Postfix as the next hop
if [ "$pfx_ok" = 1 ]; then
	"$LAB" exec srv "$TOP/tests/lab/postfix-inst.sh" wait "$PFX" 2 30 >/dev/null
	check "Postfix next hop, verify: delivered, verified" \
		rec rcpt@pfx-verify.tls.test sent tls_verdict=verified tls=TLSv1
	check "Postfix next hop, may: delivered over TLS" rec rcpt@pfx-may.tls.test sent tls=TLSv1
	check "Postfix next hop, fingerprint of another certificate: 4.7.5" \
		rec rcpt@pfx-fpwrong.tls.test deferred dsn=4.7.5
	check "Postfix received 2 messages, over TLS (its Received: header)" bash -c \
		"[ \$('$TOP/tests/lab/postfix-inst.sh' count '$PFX') = 2 ] && grep -l 'using TLSv1' -r '$PFX/mail' | wc -l | grep -qx 2"
fi

# ---- inbound ------------------------------------------------------------------
SWAKS_OUT=$CONF/swaks.out
"$LAB" exec cli swaks --server 198.18.0.1 --tls --tls-verify --tls-ca-path "$CERTS/ca.pem" \
	--tls-sni postern.lab.example --from in@x.example --to swaks@valid.tls.test >"$SWAKS_OUT" 2>&1
check "swaks: STARTTLS, certificate verified against the lab CA, 250" bash -c \
	"grep -q 'TLS started with cipher TLSv1.3' '$SWAKS_OUT' && grep -q '<~  250 2.0.0 Ok: queued' '$SWAKS_OUT'"
check "Received: header names TLS version and cipher" bash -c \
	"for _ in \$(seq 50); do f=\$(grep -l 'swaks@valid.tls.test' '$CONF'/sink-*/*.eml 2>/dev/null | head -1); [ -n \"\$f\" ] && break; sleep 0.2; done; [ -n \"\$f\" ] && grep -q 'using TLSv1.3 with cipher TLS_' \"\$f\" && grep -q 'with ESMTPS' \"\$f\""

PROBE=$CONF/probe.py
cat >"$PROBE" <<'PYEOF'
# probe.py CASE CA: inbound STARTTLS checks against 198.18.0.1:25
import smtplib, socket, ssl, sys
case, ca = sys.argv[1], sys.argv[2]
H = "198.18.0.1"

def ctx(sigalgs=None, verify=True):
    c = ssl.create_default_context(cafile=ca) if verify else ssl._create_unverified_context()
    if sigalgs:
        c.maximum_version = ssl.TLSVersion.TLSv1_2
        c.set_ciphers(sigalgs)
    return c

if case == "smtplib":
    s = smtplib.SMTP(H, 25, timeout=20)
    s.ehlo("probe.example")
    s._host = "postern.lab.example"  # the name smtplib verifies (server_hostname)
    s.starttls(context=ctx())
    s.ehlo("probe.example")
    s.sendmail("in@x.example", ["smtplib@valid.tls.test"], "Subject: smtplib\r\n\r\nover TLS\r\n")
    s.quit()
elif case in ("ecdsa", "rsa", "sni"):
    s = smtplib.SMTP(H, 25, timeout=20)
    s.ehlo("probe.example")
    c = ctx("ECDHE-RSA-AES128-GCM-SHA256" if case == "rsa" else None)
    s._host = "mail.lab.example" if case == "sni" else "postern.lab.example"
    s.starttls(context=c)
    der = s.sock.getpeercert(binary_form=True)
    cert = s.sock.getpeercert()
    names = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
    from hashlib import sha256
    print(s.sock.version(), s.sock.cipher()[0], ",".join(names), sha256(der).hexdigest())
    s.quit()
elif case == "inject":
    # RFC 3207 / CVE-2011-0411: RSET pipelined behind STARTTLS must be discarded
    raw = socket.create_connection((H, 25), timeout=20)
    f = raw.makefile("rb")
    assert f.readline().startswith(b"220")
    raw.sendall(b"EHLO probe.example\r\n")
    while True:
        l = f.readline()
        if l[3:4] == b" ":
            break
    raw.sendall(b"STARTTLS\r\nRSET\r\n")
    first = f.readline()
    assert first.startswith(b"220 2.0.0"), first
    t = ctx().wrap_socket(raw, server_hostname="postern.lab.example")
    tf = t.makefile("rb")
    t.sendall(b"NOOP\r\n")
    reply = tf.readline()
    # if RSET had been executed, its 250 2.0.0 Ok would come first and
    # be the same text; the engine answers NOOP "250 2.0.0 Ok" too, so
    # ask for something distinguishable: MAIL before EHLO must be refused
    t.sendall(b"MAIL FROM:<a@x.example>\r\n")
    r2 = tf.readline()
    print(reply.decode().strip(), "|", r2.decode().strip())
    assert reply.startswith(b"250"), reply
    assert r2.startswith(b"503"), r2  # EHLO state forgotten after TLS (RFC 3207 4.2)
    t.sendall(b"QUIT\r\n")
elif case in ("plain-partner", "tls-partner", "plain-other"):
    s = smtplib.SMTP(H, 25, timeout=20)
    s._host = "postern.lab.example"
    s.ehlo("probe.example")
    if case == "tls-partner":
        s.starttls(context=ctx())
        s.ehlo("probe.example")
    sender = "a@partner.example" if case.endswith("partner") else "a@other.example"
    code, text = s.mail(sender)
    print(code, text.decode())
    s.quit()
PYEOF
out=$("$LAB" exec cli python3 "$PROBE" smtplib "$CERTS/ca.pem" 2>&1)
check "smtplib: STARTTLS with a verified chain, message accepted" test -z "$out"
[ -n "$out" ] && diag "$out"
e=$("$LAB" exec cli python3 "$PROBE" ecdsa "$CERTS/ca.pem" 2>&1)
r=$("$LAB" exec cli python3 "$PROBE" rsa "$CERTS/ca.pem" 2>&1)
diag "ecdsa client: $e"
diag "rsa-only TLS 1.2 client: $r"
check "a client that can verify ECDSA gets the ECDSA certificate" \
	test "$(echo "$e" | awk '{print $4}')" = "$(openssl x509 -in "$CERTS/postern-ecdsa.pem" -outform DER | sha256sum | cut -d' ' -f1)"
check "an RSA-only TLS 1.2 client gets the RSA certificate" \
	test "$(echo "$r" | awk '{print $4}')" = "$(openssl x509 -in "$CERTS/postern-rsa.pem" -outform DER | sha256sum | cut -d' ' -f1)"
out=$("$LAB" exec cli python3 "$PROBE" inject "$CERTS/ca.pem" 2>&1)
check "STARTTLS injection: the pipelined RSET is discarded, EHLO state forgotten" \
	bash -c "echo '$out' | grep -q '^250.*| 503'"
diag "$out"
out=$("$LAB" exec cli python3 "$PROBE" plain-partner "$CERTS/ca.pem" 2>&1)
check "per-sender requirement: MAIL FROM a partner in plaintext gets 530 5.7.0" \
	bash -c "echo '$out' | grep -q '^530 5.7.0 Must issue a STARTTLS command first'"
out=$("$LAB" exec cli python3 "$PROBE" tls-partner "$CERTS/ca.pem" 2>&1)
check "per-sender requirement: the same over TLS gets 250" bash -c "echo '$out' | grep -q '^250'"
out=$("$LAB" exec cli python3 "$PROBE" plain-other "$CERTS/ca.pem" 2>&1)
check "other senders may still use plaintext (public MX behaviour)" bash -c "echo '$out' | grep -q '^250'"

# per network, then per listener: reload, plaintext MAIL refused. Each
# reload must publish a new generation that every worker adopted, and
# `policy inbound` must name the rule that now decides for the client, so a
# 530 cannot come from a rule left over from the step before.
gen_now() { "$LAB" ctl status --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])'; }
# reload_adopted: reload --wait; ok if a generation newer than before is adopted by every worker
reload_adopted() {
	local g0
	g0=$(gen_now)
	"$LAB" ctl reload --wait --json >"$CONF/reload.json" 2>&1
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] and d["generation"] > int(sys.argv[2]) and d["adoption"]["adopted"] and not d["adoption"]["lagging"], d' \
		"$CONF/reload.json" "$g0"
}
# inbound_reason CLIENT SENDER REASON yes|no: what policy inbound says on the live snapshot
inbound_reason() {
	"$LAB" ctl policy inbound "$1" "$2" --json 2>&1 | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d)
assert d["reason"] == sys.argv[1] and d["required"] == (sys.argv[2] == "yes"), d
if sys.argv[1] == "listener":  # the network rule of the step before is gone
    assert not d["checks"]["network"]["required"], d' "$3" "$4"
}
echo "smtpd_tls_required_networks = 198.18.0.0/24" >>"$CONF/postern.conf"
check "reload with smtpd_tls_required_networks: a new generation adopted by every worker" reload_adopted
check "policy inbound: 198.18.0.2 must use TLS because of its network" inbound_reason 198.18.0.2 a@other.example network yes
out=$("$LAB" exec cli swaks --server 198.18.0.1 --from a@other.example --to x@valid.tls.test 2>&1)
check "per-network requirement: plaintext MAIL gets 530 5.7.0" bash -c "echo \"\$0\" | grep -q '<\*\* 530 5.7.0'" "$out"
out=$("$LAB" exec cli swaks --server 198.18.0.1 --tls --from a@other.example --to x@valid.tls.test 2>&1)
check "per-network requirement: over TLS the mail goes" bash -c "echo \"\$0\" | grep -q '<~  250 2.0.0 Ok: queued'" "$out"
sed -i '/^smtpd_tls_required_networks/d' "$CONF/postern.conf"
echo "smtpd_tls_security_level = encrypt" >>"$CONF/postern.conf"
check "reload with smtpd_tls_security_level = encrypt (and no required network): a new generation adopted" reload_adopted
check "policy inbound: now the listener level decides, the network rule is gone" inbound_reason 198.18.0.2 a@other.example listener yes
out=$("$LAB" exec cli swaks --server 198.18.0.1 --from a@other.example --to x@valid.tls.test 2>&1)
check "listener requirement (encrypt): plaintext MAIL gets 530 5.7.0" bash -c "echo \"\$0\" | grep -q '<\*\* 530 5.7.0'" "$out"
sed -i '/^smtpd_tls_security_level/d' "$CONF/postern.conf"
check "reload back to optional TLS: a new generation adopted" reload_adopted
check "policy inbound: nothing required of 198.18.0.2 any more" inbound_reason 198.18.0.2 a@other.example none no

# session resumption across workers: one full handshake, then tickets
"$LAB" exec cli bash -c "echo QUIT | timeout 10 openssl s_client -starttls smtp -connect 198.18.0.1:25 \
	-CAfile '$CERTS/ca.pem' -sess_out '$CONF/sess.pem' -quiet >/dev/null 2>&1"
counters_json >"$CONF/r0.json"
reused=0
for i in $(seq 16); do
	"$LAB" exec cli bash -c "echo QUIT | timeout 10 openssl s_client -starttls smtp -connect 198.18.0.1:25 \
		-CAfile '$CERTS/ca.pem' -sess_in '$CONF/sess.pem' 2>/dev/null" | grep -q '^Reused, TLSv1' && reused=$((reused + 1))
done
"$LAB" ctl stats --all --json >"$CONF/r1.json" 2>/dev/null
check "16 of 16 reconnections resumed the session (tickets)" test "$reused" = 16
check "resumptions happened on both workers (ticket keys shared)" python3 -c '
import json,sys; s=json.load(open(sys.argv[1]))
r=s["counters"]["smtp_tls_resumed"]["per_worker"]
assert len(r)==2 and all(x>0 for x in r), r' "$CONF/r1.json"

# certificate rotation: a session open across the reload keeps working; new ones get the new cert
ROT=$CONF/rot.py
cat >"$ROT" <<'PYEOF'
import smtplib, ssl, sys, time, hashlib, os
ca, flag, done = sys.argv[1:4]
c = ssl.create_default_context(cafile=ca)
s = smtplib.SMTP("198.18.0.1", 25, timeout=30)
s.ehlo("rot.example"); s._host = "postern.lab.example"; s.starttls(context=c); s.ehlo("rot.example")
print(hashlib.sha256(s.sock.getpeercert(binary_form=True)).hexdigest(), flush=True)
open(flag, "w").close()
for _ in range(300):
    if os.path.exists(done):
        break
    time.sleep(0.1)
s.sendmail("rot@x.example", ["rot@valid.tls.test"], "Subject: rotation\r\n\r\nold session\r\n")
s.quit()
print("sent", flush=True)
PYEOF
rm -f "$CONF/rot.flag" "$CONF/rot.done"
"$LAB" exec cli python3 "$ROT" "$CERTS/ca.pem" "$CONF/rot.flag" "$CONF/rot.done" >"$CONF/rot.out" 2>&1 &
rotpid=$!
for _ in $(seq 100); do [ -f "$CONF/rot.flag" ] && break; sleep 0.1; done
MKCERTS_FORCE=1 "$TOP/tests/lab/mkcerts.sh" "$CONF/certs2" >/dev/null
sed -i "s#^tls_certificates.*#tls_certificates = $CONF/certs2/postern-ecdsa.pem $CERTS/postern-rsa.pem#" "$CONF/postern.conf"
check "reload with the rotated certificate: a new generation adopted by every worker" reload_adopted
new=$("$LAB" exec cli python3 "$PROBE" ecdsa "$CONF/certs2/ca.pem" 2>&1 | awk '{print $4}')
touch "$CONF/rot.done"
wait "$rotpid"
check "after reload a new connection gets the new certificate" \
	test "$new" = "$(openssl x509 -in "$CONF/certs2/postern-ecdsa.pem" -outform DER | sha256sum | cut -d' ' -f1)"
check "the session opened before the reload finished its mail on the old certificate" bash -c \
	"head -1 '$CONF/rot.out' | grep -qx '$(openssl x509 -in "$CERTS/postern-ecdsa.pem" -outform DER | sha256sum | cut -d' ' -f1)' && grep -qx sent '$CONF/rot.out'"

# testssl.sh against the listener
if command -v testssl >/dev/null; then
	"$LAB" exec cli timeout 600 testssl --quiet --color 0 --warnings off --starttls smtp \
		--protocols --std --vulnerable --jsonfile "$CONF/testssl.json" 198.18.0.1:25 >"$CONF/testssl.out" 2>&1
	check "testssl.sh: no protocol below TLS 1.2, no weak cipher, nothing vulnerable" python3 - "$CONF/testssl.json" <<'PYEOF'
import json, sys
items = json.load(open(sys.argv[1]))
bad = []
by = {i["id"]: i for i in items}
for p in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
    if "not offered" not in by.get(p, {}).get("finding", ""):
        bad.append((p, by.get(p, {}).get("finding")))
for p in ("TLS1_2", "TLS1_3"):
    if "offered" not in by.get(p, {}).get("finding", "") or "not offered" in by[p]["finding"]:
        bad.append((p, by.get(p, {}).get("finding")))
for i in items:
    sev = i.get("severity", "")
    if sev in ("HIGH", "CRITICAL", "MEDIUM"):
        bad.append((i["id"], sev, i.get("finding")))
    if i["id"].startswith("cipherlist_") and i["id"] in ("cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW", "cipherlist_3DES_IDEA", "cipherlist_OBSOLETED") and "not offered" not in i.get("finding", ""):
        bad.append((i["id"], i.get("finding")))
print("testssl findings checked:", len(items))
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
PYEOF
else
	not_ok "testssl.sh is not installed (tools/deps.sh installs it)"
fi

# ---- the strict cells again, after their retries ----------------------------
# The matrix above looked once, right after the first attempts. Every
# deferred (D) cell stays queued and is retried (2s, 4s, 8s ...): wait until
# the delivery records show at least two attempts for each, then look again
# at every next hop. Each attempt must be a 4.7.x deferral, and nothing of a
# D cell - nor any strict cell in plaintext - may have reached a next hop.
dcells=(rcpt@pfx-fpwrong.tls.test)
for c in "${cells[@]}"; do [ "${EXPECT[$c]}" = D ] && dcells+=("rcpt@${c%%:*}-${c#*:}.tls.test"); done
# d_attempts: "FEWEST RCPT NBAD DETAILS" over the delivery records of the D cells
d_attempts() {
	log_json >"$CONF/log2.json"
	python3 - "$CONF/log2.json" "${dcells[@]}" <<'PYEOF'
import json, sys
att = {r: [] for r in sys.argv[2:]}
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") == "delivery attempt" and e.get("to") in att:
        att[e["to"]].append((e.get("status"), e.get("dsn", "")))
fewest = min(att.items(), key=lambda kv: len(kv[1]))
bad = {r: a for r, a in att.items() if any(s != "deferred" or not d.startswith("4.7.") for s, d in a)}
print(len(fewest[1]), fewest[0], len(bad), json.dumps(dict(list(bad.items())[:3])))
PYEOF
}
for _ in $(seq 120); do
	set -- $(d_attempts)
	[ "${1:-0}" -ge 2 ] && break
	sleep 0.5
done
d_attempts >"$CONF/d_attempts.txt"
delivered >"$CONF/delivered2.txt"
read -r fewest fewest_rcpt nbad rest <"$CONF/d_attempts.txt"
arrived=$(python3 - "$CONF/delivered2.txt" "${dcells[@]}" <<'PYEOF'
import sys
d = set(sys.argv[2:])
print(sum(1 for l in open(sys.argv[1]) if l.split()[0] in d))
PYEOF
)
if [ "${fewest:-0}" -ge 2 ] && [ "${nbad:-1}" -eq 0 ] && [ "${arrived:-1}" -eq 0 ]; then
	ok "after the retries: each of the ${#dcells[@]} deferred cells tried at least $fewest times, every attempt deferred with 4.7.x, none of them at any next hop"
else
	not_ok "deferred cells after the retries: fewest attempts $fewest ($fewest_rcpt), $nbad with an attempt that was not a 4.7.x deferral $rest, $arrived arrived at a next hop"
fi
leak=$(python3 - "$CONF/delivered2.txt" <<'PYEOF'
import sys
bad = [l for l in open(sys.argv[1]) if l.split()[1] == "plain" and
       l.split("@")[1].split("-")[0] in ("encrypt", "fingerprint", "verify", "secure")]
print(len(bad))
PYEOF
)
check "at the end, still no strict cell delivered in plaintext" test "$leak" = 0
if [ "$pfx_ok" = 1 ]; then
	check "at the end, Postfix still has only its 2 messages (the pinned cell never went)" \
		test "$("$TOP/tests/lab/postfix-inst.sh" count "$PFX")" = 2
fi

tap_done

