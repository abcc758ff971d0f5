#!/usr/bin/env bash
# tests/lab/mkcerts.sh OUTDIR - the certificates of the lab's TLS tests, made
# with the openssl tool (OpenSSL 3.0 is enough). Names are fixed; a second run
# with every file present and valid.pem good for another 30 days changes
# nothing (MKCERTS_FORCE=1 makes everything anew). Files, all mode 0644 (the
# lab runs daemons as nobody; these keys protect nothing):
#   ca.pem ca.key             "Postern Lab CA" (ECDSA P-256, 10 years)
#   ca2.pem ca2.key           "Postern Lab CA 2", unrelated to ca (a wrong anchor)
#   valid.pem valid.key       leaf by ca, ECDSA P-256, 1 year from now, SAN
#                             DNS:mx.tls.test DNS:postern.lab.example IP:198.19.0.2
#   valid-rsa.pem valid-rsa.key   the same names, RSA-2048
#   wrongname.pem .key        leaf by ca, SAN DNS:other.example only
#   expired.pem .key          leaf by ca, SAN DNS:mx.tls.test, valid 2020-01-01
#                             to 2021-01-01 (entirely in the past)
#   selfsigned.pem .key       self-signed, SAN DNS:mx.tls.test
#   otherca.pem .key          leaf by ca2, SAN DNS:mx.tls.test (valid but untrusted
#                             by a client that trusts ca.pem only)
#   postern-ecdsa.pem         Postern's inbound certificates (tls_certificates):
#   postern-rsa.pem           each one file: private key (PKCS#8), leaf, ca.pem;
#                             SAN DNS:postern.lab.example DNS:mail.lab.example
#   fingerprints.txt          per leaf: NAME sha256-cert AB:.. sha256-pubkey AB:..
#                             (uppercase colon hex as Postfix smtp_tls_fingerprint
#                             wants; pubkey: SHA-256 of the DER SubjectPublicKeyInfo)
# Leaf .pem files hold the leaf only (no chain). Exit 0 done, 1 openssl failed,
# 2 usage.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
if ! command -v openssl >/dev/null; then
	echo "mkcerts.sh: the openssl tool is missing (Debian package openssl)" >&2
	exit 1
fi
OUT=$1
mkdir -p "$OUT"
chmod 0755 "$OUT"

LEAVES="valid valid-rsa wrongname expired selfsigned otherca postern-ecdsa postern-rsa"
FILES="ca.pem ca.key ca2.pem ca2.key fingerprints.txt postern-ecdsa.pem postern-rsa.pem"
for n in valid valid-rsa wrongname expired selfsigned otherca; do FILES="$FILES $n.pem $n.key"; done

# one run at a time per OUTDIR (the files are replaced one by one)
exec 9>"$OUT/.mkcerts.lock"
if command -v flock >/dev/null; then flock 9; fi

complete() {
	local f
	for f in $FILES; do [ -s "$OUT/$f" ] || return 1; done
	openssl x509 -noout -checkend 2592000 -in "$OUT/valid.pem" >/dev/null 2>&1 &&
		openssl verify -CAfile "$OUT/ca.pem" "$OUT/valid.pem" >/dev/null 2>&1
}
if [ "${MKCERTS_FORCE:-0}" != 1 ] && complete; then
	exit 0
fi

T=$(mktemp -d "$OUT/.mkcerts.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() {
	echo "mkcerts.sh: $*" >&2
	[ -s "$T/log" ] && sed 's/^/mkcerts.sh:   /' "$T/log" >&2
	exit 1
}
ossl() { openssl "$@" 2>>"$T/log" >/dev/null || fail "openssl $1 failed"; }

# A self-contained configuration: the system openssl.cnf adds nothing.
cat >"$T/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_self]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
subjectAltName = DNS:mx.tls.test
# for `openssl ca` (the expired leaf: it alone takes -startdate/-enddate on 3.0)
[ca]
default_ca = lab
[lab]
database = $ENV::MKCERTS_T/index.txt
serial = $ENV::MKCERTS_T/serial
new_certs_dir = $ENV::MKCERTS_T
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
email_in_dn = no
[any]
commonName = supplied
EOF
export MKCERTS_T=$T
CNF=$T/openssl.cnf
: >"$T/index.txt"
printf '%s\n' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n' | sed 's/^./1/')" >"$T/serial"

# key NAME ec|rsa: a PKCS#8 private key
key() {
	case $2 in
	ec) ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/$1.key" ;;
	rsa) ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/$1.key" ;;
	esac
}
# ca NAME "CN"
ca() {
	key "$1" ec
	ossl req -config "$CNF" -new -x509 -key "$T/$1.key" -subj "/CN=$2/O=Postern Lab" \
		-days 3650 -sha256 -extensions v3_ca -set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" \
		-out "$T/$1.pem"
}
# extfile NAME SAN: leaf extensions
extfile() {
	cat >"$T/$1.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature$([ "$3" = rsa ] && echo ", keyEncipherment")
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $2
EOF
}
# leaf NAME ec|rsa CA "CN" SAN: a leaf signed by CA for one year from now
leaf() {
	key "$1" "$2"
	extfile "$1" "$5" "$2"
	ossl req -config "$CNF" -new -key "$T/$1.key" -subj "/CN=$4" -out "$T/$1.csr"
	ossl x509 -req -in "$T/$1.csr" -CA "$T/$3.pem" -CAkey "$T/$3.key" \
		-set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" -days 365 -sha256 \
		-extfile "$T/$1.ext" -out "$T/$1.pem"
}

ca ca "Postern Lab CA"
ca ca2 "Postern Lab CA 2"
SAN_MX="DNS:mx.tls.test, DNS:postern.lab.example, IP:198.19.0.2"
leaf valid ec ca mx.tls.test "$SAN_MX"
leaf valid-rsa rsa ca mx.tls.test "$SAN_MX"
leaf wrongname ec ca other.example "DNS:other.example"
leaf otherca ec ca2 mx.tls.test "DNS:mx.tls.test"
leaf postern-ecdsa ec ca postern.lab.example "DNS:postern.lab.example, DNS:mail.lab.example"
leaf postern-rsa rsa ca postern.lab.example "DNS:postern.lab.example, DNS:mail.lab.example"

# expired: `openssl ca` with an explicit validity window in the past
key expired ec
extfile expired "DNS:mx.tls.test" ec
ossl req -config "$CNF" -new -key "$T/expired.key" -subj "/CN=mx.tls.test" -out "$T/expired.csr"
ossl ca -config "$CNF" -batch -notext -cert "$T/ca.pem" -keyfile "$T/ca.key" \
	-startdate 20200101000000Z -enddate 20210101000000Z -extfile "$T/expired.ext" \
	-in "$T/expired.csr" -out "$T/expired.pem"
if openssl x509 -noout -checkend 0 -in "$T/expired.pem" >/dev/null 2>&1; then
	fail "expired.pem is not expired"
fi

# self-signed leaf
key selfsigned ec
ossl req -config "$CNF" -new -x509 -key "$T/selfsigned.key" -subj "/CN=mx.tls.test" \
	-days 365 -sha256 -extensions v3_self -set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" \
	-out "$T/selfsigned.pem"

# Postern's combined files: key (PKCS#8), leaf, CA - as test_ctl_certs.sh makes them
for n in postern-ecdsa postern-rsa; do
	grep -q -- '-----BEGIN PRIVATE KEY-----' "$T/$n.key" || fail "$n.key is not PKCS#8"
	cat "$T/$n.key" "$T/$n.pem" "$T/ca.pem" >"$T/$n.combined"
	mv "$T/$n.combined" "$T/$n.pem"
	rm "$T/$n.key"
done

# fingerprints: SHA-256 of the DER certificate and of its DER SubjectPublicKeyInfo
colonhex() { tr -d ' \n' | tr a-f A-F | sed 's/../&:/g; s/:$//'; }
: >"$T/fingerprints.txt"
for n in $LEAVES; do
	ossl x509 -in "$T/$n.pem" -outform DER -out "$T/$n.der"
	ossl x509 -in "$T/$n.pem" -noout -pubkey -out "$T/$n.pub"
	ossl pkey -pubin -in "$T/$n.pub" -outform DER -out "$T/$n.spki"
	c=$(openssl dgst -sha256 -r "$T/$n.der" | cut -d' ' -f1 | colonhex)
	p=$(openssl dgst -sha256 -r "$T/$n.spki" | cut -d' ' -f1 | colonhex)
	if [ ${#c} -ne 95 ] || [ ${#p} -ne 95 ]; then fail "fingerprint of $n"; fi
	echo "$n sha256-cert $c sha256-pubkey $p" >>"$T/fingerprints.txt"
done

# sanity: what the names promise
openssl verify -CAfile "$T/ca.pem" -verify_hostname mx.tls.test "$T/valid.pem" >/dev/null 2>&1 ||
	fail "valid.pem does not verify"
openssl verify -CAfile "$T/ca.pem" -verify_hostname mx.tls.test "$T/wrongname.pem" >/dev/null 2>&1 &&
	fail "wrongname.pem verifies as mx.tls.test"

for f in $FILES; do
	chmod 0644 "$T/$f"
	mv -f "$T/$f" "$OUT/$f"
done
