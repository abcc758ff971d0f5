#!/usr/bin/env bash
# tests/lab/test_ctl_certs.sh - tls_certificates and posternctl cert end to
# end against a real posternd: certificates made with the openssl tool,
# `cert list|show` (text and JSON, fingerprints compared with openssl's),
# certificate rotation by `reload` (new generation, new fingerprint), a
# refused reload (FILE: message (from postern.conf:LINE), generation and
# certificate unchanged), the shared memory object mode 0600. No dataplane
# and no network namespaces: posternd runs with a temporary configuration
# directory, its own shm_name and control socket, so this test runs
# alongside the namespace lab. Prints TAP.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD=${PG_BUILD:-$TOP/build}
PD=$BUILD/control/posternd
PC=$BUILD/control/posternctl
CFG=$(mktemp -d /tmp/pg-ctl-certs.XXXXXX)
SHM=pg-ctl-certs-$$
SOCK=$CFG/ctl.sock
PD_PID=

cleanup() {
	if [ -n "$PD_PID" ]; then kill "$PD_PID" 2>/dev/null; wait "$PD_PID" 2>/dev/null; fi
	rm -f "/dev/shm/$SHM"
	rm -rf "$CFG"
}
trap cleanup EXIT

if ! command -v openssl >/dev/null; then
	# a skipped test is a failed one (tests/runner.py): say which package
	not_ok "the openssl tool is missing (Debian package openssl, tools/deps.sh)"
	tap_done
	exit 1
fi

# A CA, then leaves signed by it: leaf NAME DAYS NEWKEY-ARGS -> $CFG/NAME.pem (key, leaf, CA)
SSL="$CFG/ssl"
mkdir -p "$SSL"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$SSL/ca.key" \
	-out "$SSL/ca.crt" -days 60 -subj "/CN=Postern Lab CA" 2>/dev/null
printf 'subjectAltName=DNS:mail.example.com,DNS:*.example.com\n' >"$SSL/ext"
leaf() {
	local name=$1 days=$2
	shift 2
	openssl req -newkey "$@" -nodes -keyout "$SSL/$name.key" -out "$SSL/$name.csr" \
		-subj "/CN=mail.example.com" 2>/dev/null &&
		openssl x509 -req -in "$SSL/$name.csr" -CA "$SSL/ca.crt" -CAkey "$SSL/ca.key" \
			-CAcreateserial -days "$days" -extfile "$SSL/ext" -out "$SSL/$name.crt" 2>/dev/null &&
		cat "$SSL/$name.key" "$SSL/$name.crt" "$SSL/ca.crt" >"$CFG/$name.pem"
}
fp() { openssl x509 -noout -fingerprint -sha256 -in "$SSL/$1.crt" | sed 's/^.*=//'; }
leaf ecdsa 30 ec -pkeyopt ec_paramgen_curve:P-256
leaf rsa 40 rsa:2048

cat >"$CFG/postern.conf" <<CONF
port0_device = net_tap0
port0_address = 198.18.0.1/24
shm_name = $SHM
control_socket = $SOCK
# inbound TLS: ECDSA and RSA side by side
tls_certificates = ecdsa.pem, rsa.pem
CONF

ctl() { "$PC" -s "$SOCK" "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
gen() { ctl status --json | json 'd["generation"]'; }

check "posternd --check accepts the certificates" "$PD" --check -c "$CFG"
"$PD" -c "$CFG" 2>"$CFG/posternd.log" &
PD_PID=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
ctl status >/dev/null 2>&1
rc=$?
if [ $rc -eq 4 ]; then ok "posternd up (no dataplane: status exit 4)"; else not_ok "status exit $rc, want 4"; sed 's/^/# /' "$CFG/posternd.log"; fi

mode=$(stat -c %a "/dev/shm/$SHM")
if [ "$mode" = 600 ]; then ok "/dev/shm/$SHM is mode 0600 (it carries private keys)"; else not_ok "shm mode $mode"; fi

FP_EC=$(fp ecdsa)
FP_RSA=$(fp rsa)
out=$(ctl cert list --json)
if echo "$out" | json '[(c["key"], c["names"], c["sha256"], c["default"], c["line"]) for c in d["certificates"]] == [("ECDSA-P256", ["mail.example.com", "*.example.com"], "'"$FP_EC"'", True, 6), ("RSA-2048", ["mail.example.com", "*.example.com"], "'"$FP_RSA"'", True, 6)] and 28 <= d["certificates"][0]["days_left"] <= 30 and d["certificates"][0]["file"] == "'"$CFG"'/ecdsa.pem" or sys.exit(1)' >/dev/null; then
	ok "cert list --json: ECDSA then RSA, names, line, days left, fingerprints as openssl computes them"
else not_ok "cert list --json: $out"; fi
out=$(ctl cert list)
if echo "$out" | grep -q '^ECDSA-P256  '"$CFG"'/ecdsa.pem (default)$' && echo "$out" | grep -q "sha256:    $FP_RSA"; then
	ok "cert list (text)"
else not_ok "cert list text: $out"; fi

out=$(ctl cert show Mail.Example.COM)
if echo "$out" | grep -qx 'match: exact (a certificate names mail.example.com)' && echo "$out" | grep -q 'ecdsa.pem (default): for clients that verify ECDSA$'; then
	ok "cert show mail.example.com: exact, ECDSA first (text)"
else not_ok "cert show exact: $out"; fi
out=$(ctl cert show a.example.com --json)
if echo "$out" | json 'd["match"]=="wildcard" and d["matched"]=="*.example.com" and [c["key_type"] for c in d["certificates"]]==["ECDSA","RSA"] or sys.exit(1)' >/dev/null; then
	ok "cert show a.example.com --json: wildcard *.example.com, ECDSA then RSA"
else not_ok "cert show wildcard: $out"; fi
out=$(ctl cert show a.b.example.com --json)
if echo "$out" | json 'd["match"]=="default" and d["matched"] is None or sys.exit(1)' >/dev/null; then
	ok "cert show a.b.example.com: the wildcard covers one label only, default"
else not_ok "cert show two labels: $out"; fi

ctl cert show bad_name >/dev/null 2>&1; rc1=$?
ctl cert >/dev/null 2>&1; rc2=$?
ctl cert frob >/dev/null 2>&1; rc3=$?
ctl cert show >/dev/null 2>&1; rc4=$?
ctl cert list --bogus >/dev/null 2>&1; rc5=$?
if [ $rc1 -eq 1 ] && [ $rc2 -eq 2 ] && [ $rc3 -eq 2 ] && [ $rc4 -eq 2 ] && [ $rc5 -eq 2 ]; then
	ok "cert show of a non-host name exits 1; usage errors exit 2"
else not_ok "exits $rc1 $rc2 $rc3 $rc4 $rc5"; fi
if ctl cert show --help | grep -q "wildcard" && ctl cert list --help | grep -q "days left" && "$PC" help cert | grep -q "cert show NAME"; then
	ok "--help for cert and its sub-commands"
else not_ok "--help"; fi

# rotation: a new ECDSA key and certificate, then reload
G0=$(gen)
leaf ecdsa 50 ec -pkeyopt ec_paramgen_curve:P-256
FP_EC2=$(fp ecdsa)
out=$(ctl reload); rc=$?
G1=$(gen)
if [ $rc -eq 0 ] && [ "$out" = "published generation $G1" ] && [ "$G1" -gt "$G0" ] && [ "$FP_EC2" != "$FP_EC" ]; then
	ok "reload with a rotated certificate publishes generation $G1 (was $G0)"
else not_ok "rotation reload: rc $rc '$out' $G0 -> $G1"; fi
out=$(ctl cert show mail.example.com --json)
if echo "$out" | json 'd["generation"]=='"$G1"' and d["certificates"][0]["sha256"]=="'"$FP_EC2"'" and d["certificates"][0]["days_left"] >= 48 and d["certificates"][1]["sha256"]=="'"$FP_RSA"'" or sys.exit(1)' >/dev/null; then
	ok "the new ECDSA certificate is live (new fingerprint, 49 days), RSA unchanged"
else not_ok "after rotation: $out"; fi

# a refused reload: a key that does not match its certificate
cp "$CFG/rsa.pem" "$CFG/rsa.pem.good"
cat "$SSL/ecdsa.key" "$SSL/rsa.crt" >"$CFG/rsa.pem"
err=$(ctl reload 2>&1); rc=$?
if [ $rc -eq 1 ] && [ "$err" = "$CFG/rsa.pem: the private key does not match the certificate (CN=mail.example.com) (from $CFG/postern.conf:6)" ] && [ "$(gen)" = "$G1" ]; then
	ok "reload with a mismatched key refused: PEMFILE: message (from postern.conf:6), generation stays"
else not_ok "mismatched reload: rc $rc '$err' generation $(gen)"; fi
rm "$CFG/rsa.pem"
err=$(ctl reload --json); rc=$?
if [ $rc -eq 1 ] && echo "$err" | json 'not d["ok"] and d["message"]=="'"$CFG"'/rsa.pem: cannot open: No such file or directory (from '"$CFG"'/postern.conf:6)" or sys.exit(1)' >/dev/null; then
	ok "reload with a missing file refused with the OS error (JSON)"
else not_ok "missing file reload: rc $rc '$err'"; fi
out=$(ctl cert list --json)
if echo "$out" | json 'd["certificates"][1]["sha256"]=="'"$FP_RSA"'" or sys.exit(1)' >/dev/null; then
	ok "after refused reloads the live certificates are unchanged"
else not_ok "after refusal: $out"; fi
mv "$CFG/rsa.pem.good" "$CFG/rsa.pem"
out=$(ctl reload); rc=$?
if [ $rc -eq 0 ] && [ "$(gen)" -gt "$G1" ]; then ok "reload after the fix publishes ($out)"; else not_ok "reload fixed: $rc $out"; fi

tap_done
