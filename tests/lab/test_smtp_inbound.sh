#!/usr/bin/env bash
# tests/lab/test_smtp_inbound.sh - the inbound SMTP service with real
# senders in the lab (issue 5, receiving half): swaks and Python smtplib
# from pg-cli (PIPELINING, many recipients, SMTPUTF8 + 8BITMIME, BDAT), the
# 250 carrying a queue id only once the message is on disk, relay denied to
# a client outside mynetworks, an SMTP smuggling payload that must not end
# the data, and the queue surviving a dataplane restart. Prints TAP.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONF=$(mktemp -d /tmp/pg-smtp-conf.XXXXXX)
SPOOL=$(mktemp -d /var/tmp/pg-smtp-spool.XXXXXX)
trap '"$LAB" stop >/dev/null 2>&1; rm -rf "$CONF" "$SPOOL"' EXIT
sed "s#^spool_directory.*#spool_directory = $SPOOL#" "$TOP/tools/lab-config/postern.conf" >"$CONF/postern.conf"
send() { "$LAB" exec "$1" python3 "$TOP/tests/lab/smtpsend.py" "${@:2}"; }
json_ok() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"; }
expect() { if json_ok "$2" "$3"; then ok "$1: $(cut -c1-200 "$2")"; else not_ok "$1: $(cat "$2")"; fi; }

"$LAB" down >/dev/null 2>&1
check "lab start with the SMTP service on (spool $SPOOL)" "$LAB" start "$CONF"
counters_json >"$CONF/c0.json"

QID='Ok: queued as [0-9A-F]{16}'
if "$LAB" exec cli swaks --server 198.18.0.1 --from sender@pg-cli.example --to user@example.org \
	--pipeline --helo pg-cli.example >"$CONF/swaks.txt" 2>&1 && grep -Eq "<-  250 2.0.0 $QID" "$CONF/swaks.txt"; then
	ok "swaks with PIPELINING: $(grep -E "<-  250 2.0.0" "$CONF/swaks.txt" | tail -n 1)"
else
	not_ok "swaks: $(tail -n 5 "$CONF/swaks.txt" | tr '\n' '|')"
fi
send cli plain 198.18.0.1 example.org 100 >"$CONF/plain.json" 2>&1
expect "smtplib: one message to 100 recipients" "$CONF/plain.json" \
	"d['code'] == 250 and d['accepted_rcpts'] == 100 and 'PIPELINING' in ' '.join(d['esmtp']).upper()"
send cli utf8 198.18.0.1 example.org >"$CONF/utf8.json" 2>&1
expect "smtplib: SMTPUTF8 and 8BITMIME with UTF-8 addresses" "$CONF/utf8.json" "d['code'] == 250"
send cli bdat 198.18.0.1 example.org >"$CONF/bdat.json" 2>&1
expect "BDAT in three chunks (CHUNKING)" "$CONF/bdat.json" "d['code'] == 250 and 'queued as' in d['replies'][-2]"
send cli smuggle 198.18.0.1 example.org >"$CONF/smuggle.json" 2>&1
expect "SMTP smuggling (<LF>.<LF>) does not end the data; the message is refused" "$CONF/smuggle.json" \
	"d['replies'][4].startswith('354') and d['replies'][5].startswith('550 5.5.2') and d['replies'][6].startswith('221') and len(d['replies']) == 7"
send srv plain 198.19.0.1 example.org 1 >"$CONF/denied.json" 2>&1
expect "relay denied from pg-srv (outside mynetworks) to a foreign domain" "$CONF/denied.json" \
	"d['accepted_rcpts'] == 0 and d['rcpt_replies'] == ['554 5.7.1 <user0@example.org>: Relay access denied']"
sleep 0.2
counters_json >"$CONF/c1.json"
acc=$(( $(counter "$CONF/c1.json" smtp_messages_accepted) - $(counter "$CONF/c0.json" smtp_messages_accepted) ))
den=$(( $(counter "$CONF/c1.json" smtp_relay_denied) - $(counter "$CONF/c0.json" smtp_relay_denied) ))
q1=$(counter "$CONF/c1.json" spool_queued)
[ "$acc" -eq 4 ] && [ "$den" -ge 1 ] && [ "$q1" -ge 4 ] &&
	ok "counters: 4 messages accepted, $den relay denial(s), $q1 queued" ||
	not_ok "counters: accepted $acc (want 4), relay denied $den, queued $q1"

# Durability: the queue survives a dataplane restart (replayed from disk).
check "dataplane restart" "$LAB" restart postern-dp
sleep 0.3
counters_json >"$CONF/c2.json"
q2=$(counter "$CONF/c2.json" spool_queued)
[ "$q2" -eq "$q1" ] && ok "after the restart the spool replayed all $q2 queued messages" ||
	not_ok "queued after restart: $q2 (before: $q1)"
check "lab stop" "$LAB" stop
tap_done
