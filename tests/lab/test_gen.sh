#!/usr/bin/env bash
# tests/lab/test_gen.sh - postern-gen (issue 7) checked against itself and
# against Postern, over net_memif (no kernel in the path; nothing leaves
# userspace, addresses in 198.18.100.0/23):
#   - client -> sink: the client's counts equal the sink's (sent = accepted);
#   - a sink with an injected delay: the end-of-data latency the client
#     measures is that delay (histogram check);
#   - a sink refusing shares of messages / recipients: the shares come out
#     within tolerance and both sides count the same;
#   - STARTTLS with resumption, a sink without STARTTLS (an error kind);
#   - the open loop starts no faster than its rate;
#   - client -> Postern -> sink, plaintext and then STARTTLS on both legs
#     (tls_default_level = encrypt): generated = accepted by Postern =
#     delivered = accepted by the sink.
# Bounded: every run has a message count and a drain limit.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BUILD=${POSTERN_BUILD:-$TOP/build}
GEN=$BUILD/tools/postern-gen
W=$(mktemp -d /tmp/pg-gen.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 0.3
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$W" /dev/shm/pg-gen-test
}
trap cleanup EXIT

EAL_COMMON="--no-huge -m 128 --no-pci --log-level=*:warning"
# sink NAME SOCKET ADDR CPU ROLE ARGS... : start a sink in the background (memif ROLE)
sink() {
	local name=$1 sock=$2 addr=$3 cpu=$4 role=$5
	shift 5
	"$GEN" --lcores "0@$cpu" $EAL_COMMON --file-prefix "pg-gen-$name" \
		--vdev "net_memif0,role=$role,socket=$sock,id=0" -- \
		sink --addr "$addr" --duration 600 --json "$W/$name.json" "$@" >"$W/$name.log" 2>&1 &
	SINK_PID=$!
	pids+=("$SINK_PID")
}
# sink_stop: SIGTERM, wait for its JSON
sink_stop() {
	kill "$SINK_PID" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$SINK_PID" 2>/dev/null || break; sleep 0.1; done
}
# client NAME SOCKET ADDR SERVER CPU ARGS... : a bounded client run (memif client)
client() {
	local name=$1 sock=$2 addr=$3 server=$4 cpu=$5
	shift 5
	timeout 300 "$GEN" --lcores "0@$cpu" $EAL_COMMON --file-prefix "pg-gen-$name" \
		--vdev "net_memif0,role=client,socket=$sock,id=0" -- \
		client --addr "$addr" --server "$server" --no-progress --drain 60 \
		--json "$W/$name.json" "$@" >"$W/$name.log" 2>&1
}
# j FILE EXPR: a value from a result file (python expression over d)
j() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
show() { sed 's/^/# /' "$W/$1.log" | grep -v TELEMETRY | tail -n 25; }
# pair NAME "SINK ARGS" "CLIENT ARGS": a sink and a client on one memif link
pair() {
	sink "$1-sink" "$W/$1.sock" 198.18.100.1/24 1 server $2
	sleep 0.5
	client "$1-cli" "$W/$1.sock" 198.18.100.2/24 198.18.100.1 0 $3
	local rc=$?
	sink_stop
	[ "$rc" -eq 0 ] || { diag "$1: client exit $rc"; show "$1-cli"; show "$1-sink"; }
}

[ -x "$GEN" ] || { not_ok "postern-gen built ($GEN)"; tap_done; exit 1; }

# --- 1. client -> sink: counts agree --------------------------------------
pair basic "" "--messages 3000 --sessions 16 --per-conn 5 --rcpts 3 --size 1k:60,16k:30,100k:10"
C=$W/basic-cli.json S=$W/basic-sink.json
if [ -f "$C" ] && [ -f "$S" ] &&
	[ "$(j "$C" "d['counts']['msgs_accepted']")" = 3000 ] &&
	[ "$(j "$S" "d['counts']['msgs_accepted']")" = 3000 ] &&
	[ "$(j "$S" "d['counts']['rcpts_accepted']")" = 9000 ] &&
	[ "$(j "$C" "d['errors_total']")" = 0 ] && [ "$(j "$S" "d['errors_total']")" = 0 ] &&
	[ "$(j "$C" "d['counts']['conns_established']")" = "$(j "$S" "d['counts']['conns_established']")" ]; then
	ok "3000 messages, 3 recipients, mixed sizes: client sent = sink accepted = 3000 (9000 recipients), same connection count, no errors"
else
	not_ok "client and sink counts differ"; show basic-cli; show basic-sink
fi
check "client latency histograms: every phase of the session was measured" python3 - "$C" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
l = d["latency_us"]
# 5 per connection; the last of the 16 sessions may end early when the 3000 are out
conns = d["counts"]["conns_established"]
assert 600 <= conns <= 616, conns
need = {"connect": conns, "greeting": conns, "ehlo": conns, "mail": 3000, "rcpt": 9000,
        "data": 3000, "end_of_data": 3000, "quit": conns, "message": 3000, "rset": 3000 - conns}
bad = {k: l.get(k, {}).get("count") for k, v in need.items() if l.get(k, {}).get("count") != v}
assert not bad, (bad, need)
for k, v in l.items():
    assert v["min"] <= v["p50"] <= v["p99"] <= v["p99.9"] <= v["max"], (k, v)
EOF
check "pipelining: RCPT and DATA replies come with MAIL's (p50 of rcpt below mail's)" \
	python3 -c 'import json,sys; l=json.load(open(sys.argv[1]))["latency_us"]; assert l["rcpt"]["p50"] <= l["mail"]["p50"], l' "$C"

# --- 2. without pipelining: one round trip per command ---------------------
pair nopipe "" "--messages 300 --sessions 4 --per-conn 10 --rcpts 2 --no-pipelining"
C=$W/nopipe-cli.json
check "--no-pipelining: 300 delivered, every RCPT waits for its own reply (rcpt p50 > 0)" python3 - "$C" "$W/nopipe-sink.json" <<'EOF'
import json, sys
c, s = (json.load(open(f)) for f in sys.argv[1:3])
assert c["counts"]["msgs_accepted"] == 300 == s["counts"]["msgs_accepted"], (c["counts"], s["counts"])
assert c["latency_us"]["rcpt"]["p50"] > 1, c["latency_us"]["rcpt"]
EOF

# --- 3. a known delay: the histogram shows it ------------------------------
pair delay "--delay 25" "--messages 400 --sessions 8 --per-conn 10"
C=$W/delay-cli.json
# Correctness, not timing: every end-of-data reply waited the delay, the
# other phases did not (their fastest is below it), the message latency
# carries it. No upper bound: a loaded machine only makes things slower.
check "sink --delay 25: every end-of-data reply took >= 25 ms, MAIL replies did not (min < 25 ms), messages include it" python3 - "$C" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
e = d["latency_us"]["end_of_data"]
assert d["counts"]["msgs_accepted"] == 400 and e["count"] == 400, (d["counts"], e)
assert e["min"] >= 25000 * 63 / 64, e
assert d["latency_us"]["message"]["min"] >= 25000 * 63 / 64, d["latency_us"]["message"]
assert d["latency_us"]["mail"]["min"] < 25000, d["latency_us"]["mail"]
EOF
check "the sink counted 400 delayed replies" test "$(j "$W/delay-sink.json" "d['counts']['delayed']")" = 400

# --- 4. error injection: configured shares within tolerance ----------------
pair fail "--tempfail 10 --permfail 5 --seed 7" "--messages 4000 --sessions 16 --per-conn 20"
C=$W/fail-cli.json S=$W/fail-sink.json
check "sink --tempfail 10 --permfail 5: 4000 messages, shares 10 % and 5 % (+-2.5 points), client and sink agree" \
	python3 - "$C" "$S" <<'EOF'
import json, sys
c, s = (json.load(open(f))["counts"] for f in sys.argv[1:3])
n = c["msgs_started"]
assert n == 4000 and c["msgs_failed"] == 0, c
for k in ("msgs_accepted", "msgs_tempfail", "msgs_permfail"):
    assert c[k] == s[k], (k, c[k], s[k])
assert abs(100.0 * c["msgs_tempfail"] / n - 10) <= 2.5, c
assert abs(100.0 * c["msgs_permfail"] / n - 5) <= 2.5, c
assert c["msgs_accepted"] + c["msgs_tempfail"] + c["msgs_permfail"] == n, c
EOF
pair rcptfail "--fail-at rcpt --tempfail 20 --seed 9" "--messages 1000 --sessions 8 --per-conn 10 --rcpts 4"
check "sink --fail-at rcpt --tempfail 20: 20 % of 4000 recipients refused 4xx (+-3 points), counted alike" \
	python3 - "$W/rcptfail-cli.json" "$W/rcptfail-sink.json" <<'EOF'
import json, sys
c, s = (json.load(open(f))["counts"] for f in sys.argv[1:3])
t = c["rcpts_accepted"] + c["rcpts_tempfail"]
assert t == 4000 and c["rcpts_permfail"] == 0, c
assert c["rcpts_tempfail"] == s["rcpts_tempfail"] and c["rcpts_accepted"] == s["rcpts_accepted"], (c, s)
assert abs(100.0 * c["rcpts_tempfail"] / t - 20) <= 3, c
EOF

# --- 5. STARTTLS with resumption; STARTTLS wanted but not offered ----------
CERTS=$W/certs
"$TOP/tests/lab/mkcerts.sh" "$CERTS" >/dev/null 2>&1 || not_ok "mkcerts.sh"
pair tls "--cert $CERTS/postern-ecdsa.pem" "--messages 400 --sessions 4 --starttls --resume"
check "STARTTLS: 400 messages over 400 handshakes on both sides, at least 390 resumed, TLS phases timed" \
	python3 - "$W/tls-cli.json" "$W/tls-sink.json" <<'EOF'
import json, sys
c, s = (json.load(open(f)) for f in sys.argv[1:3])
cc, sc = c["counts"], s["counts"]
assert cc["msgs_accepted"] == 400 == sc["msgs_accepted"], (cc, sc)
assert cc["tls_handshakes"] == 400 == sc["tls_handshakes"], (cc, sc)
assert cc["tls_resumed"] == sc["tls_resumed"] >= 390, (cc, sc)
assert c["latency_us"]["tls_handshake"]["count"] == 400 and c["latency_us"]["starttls"]["count"] == 400
assert c["latency_us"]["ehlo"]["count"] == 800  # EHLO again after TLS
EOF
pair notls "" "--messages 20 --starttls"
check "--starttls against a sink without it: 20 failed as starttls_not_offered, none accepted" \
	python3 - "$W/notls-cli.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["counts"]["msgs_accepted"] == 0 and d["counts"]["msgs_failed"] == 20, d["counts"]
assert d["errors"]["starttls_not_offered"] == 20, d["errors"]
EOF

# --- 6. open loop -------------------------------------------------------------
pair open "" "--messages 600 --rate 300 --sessions 20 --per-conn 10"
check "open loop --rate 300: 600 messages, none started early (run >= 1.99 s), all accepted" \
	python3 - "$W/open-cli.json" "$W/open-sink.json" <<'EOF'
import json, sys
c, s = (json.load(open(f)) for f in sys.argv[1:3])
assert c["counts"]["msgs_accepted"] == 600 == s["counts"]["msgs_accepted"], (c["counts"], s["counts"])
assert c["elapsed_s"] >= 599 / 300.0, c["elapsed_s"]
assert c["errors_total"] == 0, c["errors"]
EOF

# --- 7. client -> Postern -> sink --------------------------------------------
# Postern: port0 198.18.100.1 (clients), port1 198.18.101.1 (next hop side);
# the sink is the relayhost 198.18.101.2. One worker on cpu 1.
P=$W/postern
mkdir -p "$P/spool"
cat >"$P/postern.conf" <<EOF
workers = 1
port0_device = net_memif0,role=server,socket=$W/in.sock,id=0
port0_address = 198.18.100.1/24
port1_device = net_memif1,role=server,socket=$W/out.sock,id=0
port1_address = 198.18.101.1/24
idle_polls = 200
idle_sleep = 50us
shm_name = pg-gen-test
control_socket = $W/posternd.sock
log_file = $W/posternd.log
smtp_service = yes
spool_directory = $P/spool
mynetworks = 198.18.100.0/24
relayhost = [198.18.101.2]:25
myhostname = postern.gen.test
delivery_retry_schedule = 1s 2s 4s
tls_certificates = $CERTS/postern-ecdsa.pem $CERTS/postern-rsa.pem
EOF
ctl() { "$BUILD/control/posternctl" -s "$W/posternd.sock" "$@"; }
pcounter() { ctl stats --all --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"].get(sys.argv[1], {}).get("total", 0))' "$1"; }
"$BUILD/control/posternd" -c "$P" --foreground >"$W/posternd.out" 2>&1 &
pids+=($!)
sleep 0.5
"$BUILD/dataplane/postern-dp" --lcores 0@0,1@1 --no-huge -m 256 --no-pci --file-prefix pg-gen-dp \
	--log-level=*:warning -- --shm pg-gen-test >"$W/dp.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do ctl status --json 2>/dev/null | grep -q "\"ready\":true" && break; sleep 0.1; done
if ! ctl status --json 2>/dev/null | grep -q "\"ready\":true"; then
	not_ok "Postern on two memif ports is ready"; sed 's/^/# /' "$W/dp.log" "$W/posternd.out" | tail -20
	tap_done; exit 1
fi
ok "Postern on two memif ports is ready"

# relay ROUND "SINK ARGS" "CLIENT ARGS" N: N messages through Postern; waits for the queue to empty
relay() {
	local d0 d
	d0=$(pcounter delivery_rcpts_delivered)
	sink "$1-sink" "$W/out.sock" 198.18.101.2/24 0 client $2
	sleep 0.5
	client "$1-cli" "$W/in.sock" 198.18.100.2/24 198.18.100.1 0 $3 || { diag "$1: client failed"; show "$1-cli"; }
	for _ in $(seq 600); do
		d=$(pcounter delivery_rcpts_delivered)
		[ $((d - d0)) -ge "$4" ] && break
		sleep 0.1
	done
	sleep 0.5
	sink_stop
	RELAYED=$((d - d0))
}
a0=$(pcounter smtp_messages_accepted)
relay relay-plain "" "--messages 1000 --sessions 8 --per-conn 10 --rcpts 2 --size 2k:80,50k:20" 2000
a1=$(pcounter smtp_messages_accepted)
check "through Postern: generated 1000 = accepted by Postern 1000 = delivered 2000 recipients = accepted by the sink 1000 (2000 recipients)" \
	python3 - "$W/relay-plain-cli.json" "$W/relay-plain-sink.json" "$((a1 - a0))" "$RELAYED" <<'EOF'
import json, sys
c, s = (json.load(open(f))["counts"] for f in sys.argv[1:3])
acc, rel = int(sys.argv[3]), int(sys.argv[4])
assert c["msgs_started"] == c["msgs_accepted"] == 1000, c
assert acc == 1000, ("postern accepted", acc)
assert rel == 2000, ("postern delivered", rel)
assert s["msgs_accepted"] == 1000 and s["rcpts_accepted"] == 2000, s
EOF

# STARTTLS on both legs: the client asks for it; Postern must use it to the sink
echo "tls_default_level = encrypt" >>"$P/postern.conf"
ctl reload >/dev/null || not_ok "posternctl reload (tls_default_level = encrypt)"
h0=$(pcounter smtp_tls_handshakes) o0=$(pcounter delivery_tls_handshakes)
relay relay-tls "--cert $CERTS/postern-ecdsa.pem" "--messages 300 --sessions 4 --per-conn 5 --starttls --resume" 300
h1=$(pcounter smtp_tls_handshakes) o1=$(pcounter delivery_tls_handshakes)
check "through Postern with STARTTLS both ways: 300 generated = delivered = accepted by the sink; $((h1 - h0)) inbound handshakes (all but the first per session resumed) and $((o1 - o0)) outbound, counted alike on both ends" \
	python3 - "$W/relay-tls-cli.json" "$W/relay-tls-sink.json" "$RELAYED" "$((h1 - h0))" "$((o1 - o0))" <<'EOF'
import json, sys
c, s = (json.load(open(f))["counts"] for f in sys.argv[1:3])
rel, hin, hout = (int(x) for x in sys.argv[3:6])
assert c["msgs_accepted"] == 300 and c["tls_handshakes"] == c["conns_established"] >= 60, c
assert hin == c["tls_handshakes"], ("postern inbound handshakes", hin)
# each ticket offered once: Postern must issue a new one after a resumption too
# (before the fix every other connection was a full handshake)
assert c["tls_resumed"] >= c["tls_handshakes"] - 8, ("resumed", c)
assert rel == 300 and s["msgs_accepted"] == 300, (rel, s)
assert hout >= 1 and s["tls_handshakes"] == hout, ("outbound handshakes", hout, s)
EOF
tap_done
