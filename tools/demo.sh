#!/usr/bin/env bash
# tools/demo.sh - install, build, and run Postern in the lab with demo
# traffic, printing what happened. Run as root on Debian 12.
#   tools/demo.sh          run the demo and stop everything afterwards
#   tools/demo.sh --keep   leave the lab and Postern running to explore
set -euo pipefail
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$TOP"
. tools/deps.sh
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1

STEP="(start)"
step() { STEP=$*; printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Every failure says which step and why, and fails the demo.
demo_fail() {
	trap - ERR
	printf '\n\033[1;31mdemo FAILED in step "%s": %s\033[0m\n' "$STEP" "$*" >&2
	if [ "${DP_STARTED:-0}" = 1 ] && [ -f /run/postern-lab/postern-dp.log ]; then
		echo "last lines of the dataplane's log (/run/postern-lab/postern-dp.log):" >&2
		tail -n 5 /run/postern-lab/postern-dp.log | sed 's/^/    /' >&2
	fi
	exit 1
}
set -E
trap 'demo_fail "line $LINENO: \"$BASH_COMMAND\" exited with status $?"' ERR

step "1. Debian packages"
pg_install_deps || demo_fail "the packages above are missing or do not work"
step "2. build (meson + ninja into build/)"
pg_build build || demo_fail "the build failed (output above)"
echo "built: build/control/posternd build/control/posternctl build/dataplane/postern-dp"

step "3. the lab: network namespaces pg-cli, pg-dp, pg-srv joined by veth pairs"
tools/lab up
DCONF=$(mktemp -d /tmp/pg-demo-conf.XXXXXX)
chmod 755 "$DCONF"
cleanup() { [ "$KEEP" = 1 ] || { tools/lab stop >/dev/null 2>&1 || true; tools/lab down >/dev/null 2>&1 || true; rm -rf "$DCONF"; }; }
trap cleanup EXIT

step "4. start posternd (control plane) and postern-dp (DPDK dataplane on net_af_packet)"
# the lab's configuration (tools/lab-config), with TLS certificates made for the demo
cp tools/lab-config/postern.conf tools/lab-config/transport "$DCONF/"
tests/lab/mkcerts.sh "$DCONF/certs" >/dev/null
cat >>"$DCONF/postern.conf" <<EOF
tls_certificates = $DCONF/certs/postern-ecdsa.pem $DCONF/certs/postern-rsa.pem
smtp_tls_CAfile = $DCONF/certs/ca.pem
EOF
t0=$(date +%s%N)
tools/lab start "$DCONF"
DP_STARTED=1
echo "posternd published the configuration as a snapshot in shared memory; the dataplane"
echo "attached, took its ports, addresses and workers from it, and is ready ($(( ($(date +%s%N) - t0) / 1000000 )) ms)."
tools/lab ctl status

step "5. traffic: ping and arping from pg-cli (198.18.0.2) to the dataplane's userspace address 198.18.0.1"
tools/lab exec cli ping -c 4 -i 0.2 198.18.0.1
tools/lab exec cli arping -c 2 -I cli0 198.18.0.1
step "   ... and from pg-srv (198.19.0.2) to 198.19.0.1 on the second port"
tools/lab exec srv ping -c 2 -i 0.2 198.19.0.1
step "   ... and a few malformed frames (bad checksums, truncated headers, bad ARP)"
tools/lab exec cli python3 tests/lab/malformed.py cli0 "$(ip -n pg-dp -br link show dp0 | awk '{print $3}')" \
	198.18.0.2 198.18.0.1 5 1 >/dev/null
tools/lab exec cli ping -c 2 -i 0.2 198.18.0.1 | tail -n 2
sleep 0.2

step "6. TCP on Postern's own stack: a Linux client in pg-cli against the diagnostic services"
echo "echo (port 7), 10 MB there and back, sha256 compared:"
tools/lab exec cli python3 tests/lab/tcppeer.py echo 198.18.0.1 7 $((10 * 1024 * 1024))
echo "source (port 19), 10 MB of the dataplane's pattern, verified:"
tools/lab exec cli python3 tests/lab/tcppeer.py source 198.18.0.1 19 $((10 * 1024 * 1024))
echo "500 sequential connections (connect, echo 32 bytes, close):"
tools/lab exec cli python3 tests/lab/tcppeer.py seq 198.18.0.1 7 500
echo "the connections the workers hold now (posternctl sessions):"
tools/lab ctl sessions

step "7. mail: swaks in pg-cli sends a message through Postern to the next hop in pg-srv"
SINK=$(mktemp -d /tmp/pg-demo-sink.XXXXXX)
chmod 755 "$SINK"
tools/lab exec srv python3 tests/lab/smtpsink.py --listen 198.19.0.2:25 --dir "$SINK" --duration 300 \
	>/dev/null 2>&1 &
for _ in $(seq 50); do [ -f "$SINK/ready" ] && break; sleep 0.1; done
echo "a next hop listens on [198.19.0.2]:25 in pg-srv (tests/lab/smtpsink.py); tools/lab-config/transport"
echo "routes every domain there. The conversation between swaks and Postern:"
tools/lab exec cli swaks --server 198.18.0.1 --from demo@pg-cli.example --to someone@example.org \
	--helo pg-cli.example --pipeline --header "Subject: Postern demo" --body "Hello from the lab." |
	grep -E "^ ?(<-|->|<\*\*)" | grep -v -E -- "-> *([A-Za-z-]+: .*|Hello.*|\.)?\s*$" || true
echo "the 250 'queued as' above was sent only after the message reached disk (fdatasync);"
echo "a client outside mynetworks (pg-srv) is refused:"
tools/lab exec srv swaks --server 198.19.0.1 --from x@pg-srv.example --to someone@example.org \
	--helo pg-srv.example 2>&1 | grep -E "RCPT TO|554" | head -n 2 || true

for _ in $(seq 100); do ls "$SINK"/*.json >/dev/null 2>&1 && break; sleep 0.1; done
ls "$SINK"/*.json >/dev/null 2>&1 || demo_fail "the message did not reach the next hop in pg-srv within 10 s"
echo
echo "Postern delivered it to the next hop; the log (posternctl log) says:"
tools/lab ctl log | grep -E "smtp message accepted|delivery attempt" | tail -n 2
echo "and this is the message as the next hop received it, with Postern's Received: header:"
sed 's/^/    | /' "$(ls "$SINK"/*.eml | head -n 1)"
echo "the next hop's view of the envelope: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("MAIL FROM:<%s> RCPT TO:%s helo=%s" % (d["mail_from"], d["rcpts"], d["helo"]))' "$(ls "$SINK"/*.json | head -n 1)")"
step "   ... and a next hop that refuses a recipient: the sender gets a DSN (RFC 3464)"
pkill -f "smtpsink.py --listen 198.19.0.2:25 " || true
sleep 0.5
rm -f "$SINK/ready"
tools/lab exec srv python3 tests/lab/smtpsink.py --listen 198.19.0.2:25 --dir "$SINK" --duration 300 \
	--rcpt-reply 'nobody@.*=550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown' \
	>/dev/null 2>&1 &
for _ in $(seq 50); do [ -f "$SINK/ready" ] && break; sleep 0.1; done
tools/lab exec cli swaks --server 198.18.0.1 --from demo@pg-cli.example --to nobody@example.org \
	--helo pg-cli.example --header "Subject: to nobody" >/dev/null 2>&1 || true
for _ in $(seq 50); do grep -qs '"mail_from": ""' "$SINK"/*.json && break; sleep 0.1; done
dsn=$(grep -ls '"mail_from": ""' "$SINK"/*.json | head -n 1)
[ -n "$dsn" ] || demo_fail "no bounce (DSN) for nobody@example.org reached the next hop within 5 s"
echo "the bounce Postern sent back to demo@pg-cli.example (its delivery-status part):"
sed -n '/^Content-Type: message\/delivery-status/,/^--/p' "${dsn%.json}.eml" | sed 's/^/    | /'
tools/lab ctl log | grep -E "delivery attempt.*nobody" | tail -n 1
echo "the queue (posternctl queue list):"
tools/lab ctl queue list
pkill -f "smtpsink.py --listen 198.19.0.2:25 " || true
rm -rf "$SINK"

step "8. strict TLS per destination: verified, or deferred - never plaintext"
TSINK=$(mktemp -d /tmp/pg-demo-tls.XXXXXX)
chmod 755 "$TSINK"
mkdir -p "$TSINK/bank" "$TSINK/partner"
tools/lab exec srv python3 tests/lab/smtpsink.py --listen 198.19.0.2:2525 --dir "$TSINK/bank" \
	--duration 300 --starttls "$DCONF/certs/valid.pem" "$DCONF/certs/valid.key" >/dev/null 2>&1 &
tools/lab exec srv python3 tests/lab/smtpsink.py --listen 198.19.0.2:2526 --dir "$TSINK/partner" \
	--duration 300 >/dev/null 2>&1 &
cat >>"$DCONF/transport" <<'EOF'
bank.example	smtp:[198.19.0.2]:2525
partner.example	smtp:[198.19.0.2]:2526
EOF
cat >"$DCONF/tls_policy" <<'EOF'
bank.example	verify match=mx.tls.test
partner.example	encrypt
EOF
echo "two next hops in pg-srv: [198.19.0.2]:2525 offers STARTTLS with a certificate for mx.tls.test"
echo "signed by the lab CA (smtp_tls_CAfile); [198.19.0.2]:2526 offers no STARTTLS. tls_policy:"
sed 's/^/    | /' "$DCONF/tls_policy"
tools/lab ctl reload
for _ in $(seq 50); do [ -f "$TSINK/bank/ready" ] && [ -f "$TSINK/partner/ready" ] && break; sleep 0.1; done
echo "swaks sends one message to each over STARTTLS (the client side: Postern's certificate, verified):"
for to in alice@bank.example bob@partner.example; do
	tools/lab exec cli swaks --server 198.18.0.1 --tls --tls-verify --tls-ca-path "$DCONF/certs/ca.pem" \
		--tls-sni postern.lab.example --from demo@pg-cli.example --to "$to" --helo pg-cli.example \
		--header "Subject: strict TLS demo" 2>&1 | grep -E "TLS started|queued as" | sed "s/^/    $to: /" || true
done
for _ in $(seq 100); do ls "$TSINK"/bank/*.eml >/dev/null 2>&1 && break; sleep 0.1; done
ls "$TSINK"/bank/*.eml >/dev/null 2>&1 ||
	demo_fail "alice@bank.example's message did not reach bank.example's next hop within 10 s"
sleep 1
echo "the delivery records (posternctl log --json): policy, level, TLS version, cipher, peer, verdict:"
tools/lab ctl log --json --lines 40 | grep '"delivery attempt"' | grep -E 'bank|partner' | tail -n 2 |
	python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    print("    %s -> %s: %s %s %s" % (e["to"], e["relay"], e["status"], e["dsn"], e["reply"][:90]))
    print("      tls_policy=%r level=%s tls=%s cipher=%s verdict=%s outcome=%s" % (e["tls_policy"],
          e["tls_level"], e["tls"], e["tls_cipher"] or "-", e["tls_verdict"], e["tls_outcome"]))
    if e["peer_subject"]:
        print("      peer %s sha256 %s" % (e["peer_subject"], e["peer_fingerprint"]))'
echo "what bank.example's next hop received (Postern's Received: header names the inbound TLS):"
f=$(ls "$TSINK"/bank/*.eml | head -n 1)
sed -n '1,4p' "$f" | sed 's/^/    | /'
python3 -c 'import json, sys; sys.exit(not (json.load(open(sys.argv[1])).get("tls") or {}).get("version", "").startswith("TLSv1"))' \
	"${f%.eml}.json" || demo_fail "bank.example's next hop received the message without TLS"
echo "partner.example's mail waits in the queue instead of going out in plaintext:"
tools/lab ctl queue list
! ls "$TSINK"/partner/*.eml >/dev/null 2>&1 || demo_fail "partner.example's next hop received mail in plaintext"
tools/lab ctl queue list | grep -q "bob@partner.example" || demo_fail "bob@partner.example's message is not in the queue"
pkill -f "smtpsink.py --listen 198.19.0.2:252" || true
rm -rf "$TSINK"

step "9. what the dataplane counted (posternctl stats: total and per worker)"
tools/lab ctl stats
step "10. process footprint"
dp=$(cat /run/postern-lab/postern-dp.pid)
echo "postern-dp pid $dp: resident memory $(awk '/VmRSS/ {print $2, $3}' /proc/$dp/status)"
grep -h "ready:" /run/postern-lab/postern-dp.log | sed 's/^/postern-dp: /' | tail -n 1

if [ "$KEEP" = 1 ]; then
	step "left running: try 'tools/lab ctl stats', 'tools/lab exec cli ping 198.18.0.1'; end with 'tools/lab down'"
else
	step "11. stop"
	tools/lab stop
	tools/lab down
fi
