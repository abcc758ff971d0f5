/*
 * test_policy.c - the tls_policy and transport tables: tables of good and
 * bad lines with the exact "FILE:LINE: message" each must give, lookups on
 * built snapshots (exact, parent, sub-domains only, next hop, precedence,
 * default, case, long names, many entries), the relay_domains/mynetworks
 * lookups, and the policy set/del rewrite (comments kept, atomic replace,
 * a refused change leaves the file byte for byte).
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "conf.h"
#include "policy.h"
#include "policy_lookup.h"
#include "result.h"
#include "snap_build.h"
#include "transport.h"

#define DIR "/cfg"
#define PFILE DIR "/tls_policy"
#define TFILE DIR "/transport"
#define FP                                                                                         \
	"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:"  \
	"45:67:89"
#define BASE "port0_device = net_tap0\nport0_address = 198.18.0.1/24\n"

static char tmpdir[] = "/tmp/test_policy.XXXXXX";

static int setup_dir(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int remove_dir(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A self-signed CA certificate, as PEM, into fd (tafile= must hold one). */
static void write_ca(int fd)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();
	FILE *f = fdopen(fd, "w");

	assert_non_null(k);
	assert_non_null(x);
	assert_non_null(f);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"Pinned CA", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, k);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	assert_int_equal(PEM_write_X509(f, x), 1);
	assert_int_equal(fclose(f), 0);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* ---- tls_policy: bad lines ---- */

static const struct bad_case {
	const char *text;
	const char *want; /* exact message */
} bad_policy[] = {
    {"example.com\n", PFILE ":1: missing security level after \"example.com\""},
    {"example.com sure\n",
     PFILE ":1: unknown security level \"sure\" (none, may, encrypt, fingerprint, verify,"
           " secure)"},
    {"# c\nexample.com dane\n", PFILE ":2: dane requires DNSSEC lookups, not supported yet"},
    {"example.com dane-only\n", PFILE ":1: dane-only requires DNSSEC lookups, not supported yet"},
    {"example.com may\nEXAMPLE.com encrypt\n",
     PFILE ":2: duplicate key \"EXAMPLE.com\" (first at line 1)"},
    {"[h.test]:25 may\n[H.test] encrypt\n",
     PFILE ":2: duplicate key \"[H.test]\" (first at line 1)"},
    {"ex..com may\n", PFILE ":1: bad key \"ex..com\": empty label"},
    {"-ex.com may\n", PFILE ":1: bad key \"-ex.com\": label \"-ex\" starts or ends with '-'"},
    {"ex_1.com may\n",
     PFILE ":1: bad key \"ex_1.com\": invalid character '_' (letters, digits, '-' and '.' only)"},
    {"b\xc3\xbc"
     "cher.de may\n",
     PFILE ":1: bad key \"b\xc3\xbc"
           "cher.de\": not ASCII: write an internationalized domain in"
           " its A-label (xn--) form (RFC 5890); UTF-8 names are not supported yet"},
    {"1.2.3.4 may\n",
     PFILE ":1: bad key \"1.2.3.4\": the last label \"4\" is all digits (an IP address goes in"
           " [brackets])"},
    {"a.bcdefghijklmnopqrstuvwxyzbcdefghijklmnopqrstuvwxyzbcdefghijklmnopqrstuvwxyz.com may\n",
     PFILE
     ":1: bad key \"a.bcdefghijklmnopqrstuvwxyzbcdefghijklmnopqrstuvwxyzbcdefghijklmnopqrstuvwxyz"
     ".com\": label \"bcdefghijklmnopqrstu...\" longer than 63 characters"},
    {"example.com:587 may\n",
     PFILE ":1: bad key \"example.com:587\": a port needs the next-hop form [host]:port"},
    {"[mx.test:587 may\n", PFILE ":1: bad key \"[mx.test:587\": missing ']'"},
    {"[mx.test]:0 may\n", PFILE ":1: bad key \"[mx.test]:0\": port must be a number 1..65535"},
    {"[mx.test]:x may\n", PFILE ":1: bad key \"[mx.test]:x\": expected [host] or [host]:port"},
    {"[ipv6:2001:db8::g] may\n",
     PFILE ":1: bad key \"[ipv6:2001:db8::g]\": \"2001:db8::g\" is not an IPv6 address"},
    {"[1.2.3.400] may\n",
     PFILE ":1: bad key \"[1.2.3.400]\": \"1.2.3.400\" is not an IPv4 address"},
    {"* may\n",
     PFILE ":1: bad key \"*\": \"*\" is not a tls_policy key: the level for destinations without"
           " an entry is tls_default_level in postern.conf"},
    {"user@example.com may\n",
     PFILE ":1: bad key \"user@example.com\": keys are next-hop domains or [host]:port, not"
           " addresses"},
    {"example.com may match=hostname\n",
     PFILE ":1: attribute \"match\" is invalid at level may (fingerprint, verify and secure"
           " only)"},
    {"example.com encrypt match=hostname\n",
     PFILE ":1: attribute \"match\" is invalid at level encrypt (fingerprint, verify and secure"
           " only)"},
    {"example.com none ciphers=high\n",
     PFILE ":1: attribute \"ciphers=high\" has no effect at level none (Postfix ignores it with"
           " a warning; Postern refuses it)"},
    {"example.com may frobnicate=yes\n",
     PFILE ":1: unknown attribute \"frobnicate\" (match, protocols, ciphers, exclude,"
           " servername, tafile, mode)"},
    {"example.com may connection_reuse=yes\n",
     PFILE ":1: unknown attribute \"connection_reuse\" (match, protocols, ciphers, exclude,"
           " servername, tafile, mode)"},
    {"example.com may high\n", PFILE ":1: \"high\": expected NAME=VALUE"},
    {"example.com may # comment\n",
     PFILE ":1: \"#\": a comment must start its own line (Postfix tables have no trailing"
           " comments)"},
    {"example.com may { ciphers = high }\n",
     PFILE ":1: \"{\": brace-quoted attributes are not supported"},
    {"example.com may ciphers=\n", PFILE ":1: attribute \"ciphers\" has an empty value"},
    {"example.com may ciphers=ultra\n",
     PFILE ":1: bad ciphers=ultra: expected export, low, medium, high or null"},
    {"example.com may ciphers=high ciphers=medium\n",
     PFILE ":1: attribute \"ciphers\" is specified more than once"},
    {"example.com may protocols=TLSv9\n",
     PFILE ":1: bad protocols=TLSv9: unknown protocol \"TLSv9\" (SSLv2, SSLv3, TLSv1, TLSv1.1,"
           " TLSv1.2, TLSv1.3, each optionally after !, >= or <=)"},
    {"example.com may protocols=>=TLSv1.3:<=TLSv1.2\n",
     PFILE ":1: bad protocols=>=TLSv1.3:<=TLSv1.2: leaves no protocol version enabled"},
    {"example.com may protocols=!SSLv2 protocols=!SSLv3\n",
     PFILE ":1: attribute \"protocols\" is specified more than once"},
    {"example.com may exclude=3DES;rm\n",
     PFILE ":1: bad exclude=3DES;rm: not an OpenSSL cipher list"},
    {"example.com may servername=bad_name\n",
     PFILE ":1: bad servername=bad_name: invalid character '_' (letters, digits, '-' and '.'"
           " only)"},
    {"example.com encrypt tafile=/nonexistent/ta.pem\n",
     PFILE ":1: attribute \"tafile\" is invalid at level encrypt (verify and secure only)"},
    {"example.com verify tafile=/nonexistent/ta.pem\n",
     PFILE ":1: tafile /nonexistent/ta.pem: cannot read: No such file or directory"},
    {"example.com verify tafile=ta.pem\n",
     PFILE ":1: tafile " DIR "/ta.pem: cannot read: No such file or directory"},
    {"example.com fingerprint\n",
     PFILE ":1: level fingerprint needs at least one match=FINGERPRINT"},
    {"example.com fingerprint match=AB:CD\n",
     PFILE ":1: bad match= fingerprint \"AB:CD\": expected a SHA-256 digest, 32 hex bytes"
           " separated by ':'"},
    {"example.com fingerprint match=" FP "|zz\n",
     PFILE ":1: bad match= fingerprint \"zz\": expected a SHA-256 digest, 32 hex bytes"
           " separated by ':'"},
    {"example.com secure match=hostname:bad_name\n",
     PFILE ":1: bad match= name \"bad_name\": invalid character '_' (letters, digits, '-' and"
           " '.' only) (or hostname, nexthop, dot-nexthop)"},
    {"example.com secure mode=strict\n", PFILE ":1: bad mode=strict: the only mode is \"testing\""},
    {"example.com may mode=testing\n",
     PFILE ":1: mode=testing has no effect at level may: only levels that defer mail (encrypt,"
           " fingerprint, verify, secure) can be tested"},
    {"  example.com may\n",
     PFILE ":1: continuation line (starts with whitespace) without a preceding entry"},
    {"example.com may\n  ciphers=ultra\n",
     PFILE ":1: bad ciphers=ultra: expected export, low, medium, high or null"},
    {"example.com may\nfoo.test may\0x\n", PFILE ":2: NUL byte in line"},
};

static void test_policy_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_policy) / sizeof(bad_policy[0]); i++) {
		const struct bad_case *t = &bad_policy[i];
		struct pg_policy p;
		char err[1024] = "";
		size_t len = strlen(t->text);

		if (strstr(t->want, "NUL byte") != NULL)
			len += 3; /* the text continues past the NUL */
		if (policy_parse_text(DIR, t->text, len, &p, err, sizeof(err)) != PG_ERROR ||
		    strcmp(err, t->want) != 0)
			fail_msg("case %zu:\n  want: %s\n  got:  %s", i, t->want, err);
		assert_int_equal(p.n, 0);
	}
}

static void test_policy_good(void **state)
{
	static const char text[] =
	    "# Postfix-style policy table\n"
	    "\n"
	    "Example.COM    secure match=nexthop:Dot-Nexthop protocols=>=TLSv1.2\n"
	    ".example.com   encrypt\n"
	    "    ciphers=HIGH, exclude=3DES:aNULL\n"
	    "[MX.partner.test]:25 fingerprint match=" FP "\n"
	    "   match=abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789\n"
	    "[198.19.0.2]:587 verify match=hostname servername=hostname mode=testing\n"
	    "legacy.test    may protocols=!SSLv2:!SSLv3:!TLSv1 servername=sni.legacy.test\n"
	    "plain.test     NONE\n"
	    "ta.test        secure tafile=%s\n";
	char ta[] = "/tmp/test_policy_ta.XXXXXX", full[sizeof(text) + 64];
	struct pg_policy p;
	char err[1024];
	const struct policy_entry *e;
	int fd;

	(void)state;
	/* tafile= must name a PEM file of certificates: one of the test's own. */
	fd = mkstemp(ta);
	assert_true(fd >= 0);
	write_ca(fd);
	snprintf(full, sizeof(full), text, ta);
	if (policy_parse_text(DIR, full, strlen(full), &p, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	unlink(ta);
	assert_int_equal(p.n, 7);
	e = &p.entries[0];
	assert_string_equal(e->key, "example.com");
	assert_int_equal(e->kind, SNAP_NAME_DOMAIN);
	assert_int_equal(e->line, 3);
	assert_int_equal(e->level, SNAP_TLS_SECURE);
	assert_string_equal(e->match, "nexthop:dot-nexthop");
	assert_int_equal(e->protocols, SNAP_TLS_P_TLSV1_2 | SNAP_TLS_P_TLSV1_3);
	e = &p.entries[1];
	assert_string_equal(e->key, ".example.com");
	assert_int_equal(e->kind, SNAP_NAME_PARENT);
	assert_int_equal(e->ciphers, SNAP_TLS_GRADE_HIGH);
	assert_string_equal(e->exclude, "3DES:aNULL");
	assert_string_equal(e->text, ".example.com   encrypt ciphers=HIGH, exclude=3DES:aNULL");
	e = &p.entries[2];
	assert_string_equal(e->key, "[mx.partner.test]"); /* :25 is the default port */
	assert_int_equal(e->kind, SNAP_NAME_NEXTHOP);
	/* the match attribute repeats and accumulates (Postfix argv_split_append) */
	assert_string_equal(e->match,
	                    FP "|AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:"
	                       "01:23:45:67:89:AB:CD:EF:01:23:45:67:89");
	e = &p.entries[3];
	assert_string_equal(e->key, "[198.19.0.2]:587");
	assert_int_equal(e->flags, SNAP_TLS_F_TESTING | SNAP_TLS_F_SNI_HOSTNAME);
	assert_string_equal(e->servername, "");
	e = &p.entries[4];
	assert_int_equal(e->protocols,
	                 SNAP_TLS_P_TLSV1_1 | SNAP_TLS_P_TLSV1_2 | SNAP_TLS_P_TLSV1_3);
	assert_string_equal(e->servername, "sni.legacy.test");
	assert_int_equal(p.entries[5].level, SNAP_TLS_NONE);
	assert_string_equal(p.entries[6].tafile, ta);
	assert_int_equal(p.entries[6].tafile_bundle, 1); /* its certificates, read */
	assert_int_equal(p.entries[5].tafile_bundle, 0);
	assert_int_equal(p.ntafiles, 1);
	assert_int_equal(p.tafiles[0].n, 1);
	assert_non_null(policy_find(&p, "[mx.partner.test]"));
	assert_null(policy_find(&p, "partner.test"));
	policy_free(&p);

	/* absent file: an empty table */
	assert_int_equal(policy_load("/nonexistent", &p, err, sizeof(err)), PG_OK);
	assert_int_equal(p.n, 0);
	policy_free(&p);
}

/* ---- transport ---- */

static const struct bad_case bad_transport[] = {
    {"example.com\n", TFILE ":1: missing transport:nexthop after \"example.com\""},
    {"example.com lmtp:unix:/run/lmtp\n",
     TFILE ":1: transport \"lmtp\" is not supported (Postern delivers with smtp only)"},
    {"example.com error:5.1.1 no such domain\n",
     TFILE ":1: transport \"error\" is not supported (Postern delivers with smtp only)"},
    {"example.com discard:\n",
     TFILE ":1: transport \"discard\" is not supported (Postern delivers with smtp only)"},
    {"example.com [mx.test]\n",
     TFILE ":1: \"[mx.test]\": a next hop needs the transport first: smtp:NEXTHOP"},
    {"example.com smtp:198.19.0.2\n",
     TFILE ":1: next hop \"198.19.0.2\": an IP address must be in brackets: [198.19.0.2]"},
    {"example.com smtp:[198.19.0.2]:70000\n",
     TFILE ":1: next hop \"[198.19.0.2]:70000\": port must be a number 1..65535"},
    {"example.com smtp:[mx.test]:smtp\n",
     TFILE ":1: next hop \"[mx.test]:smtp\": port must be a number 1..65535"},
    {"example.com smtp:[a.test], smtp:[b.test]\n",
     TFILE ":1: \"smtp:[b.test]\": write the transport once: smtp:NEXTHOP, NEXTHOP"},
    {"example.com smtp:ipv6:2001:db8::1\n",
     TFILE ":1: next hop \"ipv6:2001:db8::1\": an IPv6 address must be in brackets:"
           " [ipv6:ADDRESS] or [ipv6:ADDRESS]:port"},
    {"example.com smtp:2001:db8::1\n",
     TFILE ":1: next hop \"2001:db8::1\": an IPv6 address must be in brackets:"
           " [ipv6:ADDRESS] or [ipv6:ADDRESS]:port"},
    {"example.com smtp:[ipv6:2001:db8::g]\n",
     TFILE ":1: next hop \"[ipv6:2001:db8::g]\": \"2001:db8::g\" is not an IPv6 address"},
    {"example.com smtp:[ipv6:fe80::1]\n",
     TFILE ":1: next hop \"[ipv6:fe80::1]\": not a routable unicast address (multicast,"
           " link-local, :: or ::1)"},
    {"example.com smtp:[ipv6:2001:db8::1]:0\n",
     TFILE ":1: next hop \"[ipv6:2001:db8::1]:0\": port must be a number 1..65535"},
    {"example.com smtp:[bad_host]\n",
     TFILE ":1: next hop \"[bad_host]\": invalid character '_' (letters, digits, '-' and '.'"
           " only)"},
    {"user@example.com smtp:\n",
     TFILE ":1: bad key \"user@example.com\": address keys (user@domain) are not supported:"
           " keys are domains, .domains or *"},
    {"[mx.test] smtp:\n",
     TFILE ":1: bad key \"[mx.test]\": keys are recipient domains, .domains or *, not next"
           " hops"},
    {"* smtp:\n*  smtp:[a.test]\n", TFILE ":2: duplicate key \"*\" (first at line 1)"},
    {"a.test smtp:[1.1.1.1],[1.1.1.2],[1.1.1.3],[1.1.1.4],[1.1.1.5],[1.1.1.6],[1.1.1.7],"
     "[1.1.1.8],[1.1.1.9],[1.1.1.10],[1.1.1.11],[1.1.1.12],[1.1.1.13],[1.1.1.14],[1.1.1.15],"
     "[1.1.1.16],[1.1.1.17]\n",
     TFILE ":1: more than 16 next hops"},
};

static void test_transport_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_transport) / sizeof(bad_transport[0]); i++) {
		const struct bad_case *t = &bad_transport[i];
		struct pg_transport tr;
		char err[1024] = "";

		if (transport_parse_text(DIR, t->text, strlen(t->text), &tr, err, sizeof(err)) !=
		        PG_ERROR ||
		    strcmp(err, t->want) != 0)
			fail_msg("case %zu:\n  want: %s\n  got:  %s", i, t->want, err);
	}
}

static void test_transport_good(void **state)
{
	static const char text[] = "# transport\n"
	                           "Partner.test  smtp:[MX.partner.test]:587, [198.19.0.2]\n"
	                           "   [198.19.0.3]:2525\n"
	                           ".partner.test smtp:relay.partner.test\n"
	                           "mx.test       smtp\n"
	                           "empty.test    :[198.19.0.9]\n"
	                           "*             smtp:[smarthost.test]\n";
	struct pg_transport tr;
	char err[1024];
	const struct transport_entry *e;

	(void)state;
	if (transport_parse_text(DIR, text, strlen(text), &tr, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	assert_int_equal(tr.n, 5);
	e = &tr.entries[0];
	assert_string_equal(e->key, "partner.test");
	assert_int_equal(e->nnexthops, 3);
	assert_string_equal(e->nexthops[0].dest, "[mx.partner.test]:587");
	assert_int_equal(e->nexthops[0].port, 587);
	assert_int_equal(e->nexthops[0].flags, SNAP_NH_F_NO_MX);
	assert_string_equal(e->nexthops[1].dest, "[198.19.0.2]");
	assert_int_equal(e->nexthops[1].flags, SNAP_NH_F_NO_MX | SNAP_NH_F_IP);
	assert_int_equal(e->nexthops[1].addr, inet_addr("198.19.0.2"));
	assert_string_equal(e->nexthops[2].dest, "[198.19.0.3]:2525");
	e = &tr.entries[1];
	assert_int_equal(e->kind, SNAP_NAME_PARENT);
	assert_string_equal(e->nexthops[0].dest, "relay.partner.test");
	assert_int_equal(e->nexthops[0].flags, 0);
	assert_int_equal(tr.entries[2].nnexthops, 0); /* "smtp": the domain's own MX */
	assert_int_equal(tr.entries[3].nnexthops, 1); /* empty transport = smtp */
	assert_int_equal(tr.entries[4].kind, SNAP_NAME_WILDCARD);
	transport_free(&tr);
}

/*
 * IPv6 literals (RFC 5321 §4.1.3 "[IPv6:...]", the tag in any case, or
 * bare in brackets as Postfix also takes them): the address in RFC 5952
 * text, no MX lookup, the destination named with its tag; relayhost too.
 */
static void test_transport_ipv6(void **state)
{
	static const char text[] = "v6.test smtp:[IPv6:2001:DB8:19:0::2]:2525, [198.19.0.2]\n"
	                           "bare.test smtp:[2001:db8:19::3]\n";
	struct pg_transport tr;
	char err[1024], why[256];
	const struct transport_entry *e;

	(void)state;
	if (transport_parse_text(DIR, text, strlen(text), &tr, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	assert_int_equal(tr.n, 2);
	e = &tr.entries[0];
	assert_int_equal(e->nnexthops, 2);
	assert_string_equal(e->nexthops[0].host, "2001:db8:19::2");
	assert_string_equal(e->nexthops[0].dest, "[ipv6:2001:db8:19::2]:2525");
	assert_int_equal(e->nexthops[0].port, 2525);
	assert_int_equal(e->nexthops[0].flags, SNAP_NH_F_NO_MX | SNAP_NH_F_IP6);
	assert_int_equal(e->nexthops[0].addr, 0);
	assert_int_equal(e->nexthops[1].flags, SNAP_NH_F_NO_MX | SNAP_NH_F_IP);
	e = &tr.entries[1];
	assert_string_equal(e->nexthops[0].host, "2001:db8:19::3");
	assert_string_equal(e->nexthops[0].dest, "[ipv6:2001:db8:19::3]");
	assert_int_equal(e->nexthops[0].port, 25);
	assert_int_equal(transport_add_relayhost(&tr, "[ipv6:2001:db8:19::2]", why, sizeof(why)),
	                 PG_OK);
	assert_int_equal(tr.n, 3);
	e = &tr.entries[2];
	assert_string_equal(e->key, "*");
	assert_string_equal(e->nexthops[0].dest, "[ipv6:2001:db8:19::2]");
	assert_int_equal(e->nexthops[0].flags, SNAP_NH_F_NO_MX | SNAP_NH_F_IP6);
	transport_free(&tr);
}

/* relayhost becomes the "*" entry, unless the table has its own (Postfix precedence). */
static void test_transport_relayhost(void **state)
{
	static const char with_star[] = "a.test smtp:[198.19.0.5]\n* smtp:[198.19.0.6]:26\n";
	static const char without[] = "a.test smtp:[198.19.0.5]\n";
	struct pg_transport tr;
	char err[1024], why[256];
	const struct transport_entry *e;

	(void)state;
	if (transport_parse_text(DIR, without, strlen(without), &tr, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	assert_int_equal(transport_add_relayhost(&tr, "[198.19.0.2]:2525", why, sizeof(why)), PG_OK);
	assert_int_equal(tr.n, 2);
	e = &tr.entries[1];
	assert_string_equal(e->key, "*");
	assert_int_equal(e->kind, SNAP_NAME_WILDCARD);
	assert_int_equal(e->nnexthops, 1);
	assert_string_equal(e->nexthops[0].dest, "[198.19.0.2]:2525");
	assert_int_equal(e->nexthops[0].port, 2525);
	assert_int_equal(e->nexthops[0].addr, inet_addr("198.19.0.2"));
	assert_non_null(strstr(e->text, "relayhost in postern.conf"));
	assert_int_equal(transport_add_relayhost(&tr, "[198.19.0.2", why, sizeof(why)), PG_DECLINED);
	transport_free(&tr);

	if (transport_parse_text(DIR, without, strlen(without), &tr, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	assert_int_equal(transport_add_relayhost(&tr, "[198.19.0.2", why, sizeof(why)), PG_ERROR);
	assert_string_equal(why, "next hop \"[198.19.0.2\": missing ']'");
	assert_int_equal(tr.n, 1);
	transport_free(&tr);

	if (transport_parse_text(DIR, with_star, strlen(with_star), &tr, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	assert_int_equal(transport_add_relayhost(&tr, "[198.19.0.2]", why, sizeof(why)), PG_DECLINED);
	assert_int_equal(tr.n, 2);
	assert_string_equal(tr.entries[1].nexthops[0].dest, "[198.19.0.6]:26");
	transport_free(&tr);
}

/* ---- lookups on a built snapshot ---- */

struct built {
	void *blob;
	struct pg_conf *conf;
	struct pg_policy pol;
	struct pg_transport tr;
};

static const struct snap_header *build(struct built *b, const char *conf_extra, const char *policy,
                                       const char *transport)
{
	char conf_text[4096], err[1024];
	size_t len;

	snprintf(conf_text, sizeof(conf_text), BASE "%s", conf_extra);
	b->conf = malloc(sizeof(*b->conf));
	assert_non_null(b->conf);
	if (conf_parse_text(DIR, conf_text, strlen(conf_text), b->conf, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	if (policy_parse_text(DIR, policy, strlen(policy), &b->pol, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	if (transport_parse_text(DIR, transport, strlen(transport), &b->tr, err, sizeof(err)) !=
	    PG_OK)
		fail_msg("%s", err);
	assert_int_equal(snap_build_all(b->conf, &b->pol, &b->tr, &b->blob, &len, err, sizeof(err)),
	                 PG_OK);
	((struct snap_header *)b->blob)->checksum = snap_checksum(b->blob, len);
	if (snap_validate(b->blob, len, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	return b->blob;
}

static void unbuild(struct built *b)
{
	free(b->blob);
	free(b->conf);
	policy_free(&b->pol);
	transport_free(&b->tr);
}

static const char lookup_policy[] = "example.com secure\n"
                                    ".example.com encrypt\n"
                                    "deep.sub.example.com verify\n"
                                    ".sub.example.com fingerprint match=" FP "\n"
                                    "[mx.example.net] none\n"
                                    "[mx.example.net]:587 may\n"
                                    "[198.19.0.2] secure\n"
                                    "[IPv6:2001:DB8:19:0::2]:2526 verify\n"
                                    "[2001:db8:19::3] encrypt\n"
                                    "relay.example.org encrypt\n"
                                    ".example.org verify\n";

static const struct lookup_case {
	const char *domain, *nexthop;
	enum policy_match match;
	const char *key; /* NULL: default */
	uint8_t level;
	bool via_nexthop;
} lookup_cases[] = {
    /* exact, and a "domain" entry does not cover sub-domains */
    {"example.com", NULL, POLICY_MATCH_EXACT, "example.com", SNAP_TLS_SECURE, false},
    {"EXAMPLE.Com", NULL, POLICY_MATCH_EXACT, "example.com", SNAP_TLS_SECURE, false},
    {"example.com.", NULL, POLICY_MATCH_EXACT, "example.com", SNAP_TLS_SECURE, false},
    {"a.example.com", NULL, POLICY_MATCH_PARENT, ".example.com", SNAP_TLS_ENCRYPT, false},
    /* ".domain" matches sub-domains only; nearest parent wins */
    {"x.sub.example.com", NULL, POLICY_MATCH_PARENT, ".sub.example.com", SNAP_TLS_FINGERPRINT,
     false},
    {"sub.example.com", NULL, POLICY_MATCH_PARENT, ".example.com", SNAP_TLS_ENCRYPT, false},
    {"deep.sub.example.com", NULL, POLICY_MATCH_EXACT, "deep.sub.example.com", SNAP_TLS_VERIFY,
     false},
    {"x.deep.sub.example.com", NULL, POLICY_MATCH_PARENT, ".sub.example.com", SNAP_TLS_FINGERPRINT,
     false},
    {"notexample.com", NULL, POLICY_MATCH_DEFAULT, NULL, SNAP_TLS_MAY, false},
    {"com", NULL, POLICY_MATCH_DEFAULT, NULL, SNAP_TLS_MAY, false},
    /* next hop first: [host] and [host]:port are distinct keys, :25 is [host] */
    {"example.com", "[mx.example.net]", POLICY_MATCH_NEXTHOP, "[mx.example.net]", SNAP_TLS_NONE,
     true},
    {"example.com", "[MX.example.net]:25", POLICY_MATCH_NEXTHOP, "[mx.example.net]", SNAP_TLS_NONE,
     true},
    {"example.com", "[mx.example.net]:587", POLICY_MATCH_NEXTHOP, "[mx.example.net]:587",
     SNAP_TLS_MAY, true},
    {"a.example.com", "[198.19.0.2]", POLICY_MATCH_NEXTHOP, "[198.19.0.2]", SNAP_TLS_SECURE, true},
    /* IPv6 literals, keys normalized as transport names its destinations */
    {"example.com", "[ipv6:2001:db8:19::2]:2526", POLICY_MATCH_NEXTHOP,
     "[ipv6:2001:db8:19::2]:2526", SNAP_TLS_VERIFY, true},
    {"example.com", "[ipv6:2001:db8:19::3]", POLICY_MATCH_NEXTHOP, "[ipv6:2001:db8:19::3]",
     SNAP_TLS_ENCRYPT, true},
    {"example.com", "[ipv6:2001:db8:19::2]", POLICY_MATCH_EXACT, "example.com", SNAP_TLS_SECURE,
     false},
    /* a next hop without an entry: the domain's entry still applies (Postern) */
    {"example.com", "[mx.other.test]:2525", POLICY_MATCH_EXACT, "example.com", SNAP_TLS_SECURE,
     false},
    {"a.example.com", "[198.19.0.9]", POLICY_MATCH_PARENT, ".example.com", SNAP_TLS_ENCRYPT, false},
    /* an MX-style next-hop domain: its own walk before the recipient domain */
    {"example.com", "relay.example.org", POLICY_MATCH_EXACT, "relay.example.org", SNAP_TLS_ENCRYPT,
     true},
    {"example.com", "mx1.example.org", POLICY_MATCH_PARENT, ".example.org", SNAP_TLS_VERIFY, true},
    {"example.com", "mx.unrelated.test", POLICY_MATCH_EXACT, "example.com", SNAP_TLS_SECURE, false},
    {"nothing.test", "[nothing.test]", POLICY_MATCH_DEFAULT, NULL, SNAP_TLS_MAY, false},
    /* unbracketed host:port: Postfix's literal key cannot exist; the domain decides */
    {"example.com", "mx.example.org:2525", POLICY_MATCH_EXACT, "example.com", SNAP_TLS_SECURE,
     false},
};

static void test_lookup(void **state)
{
	struct built b;
	const struct snap_header *h = build(&b, "", lookup_policy, "");

	(void)state;
	for (size_t i = 0; i < sizeof(lookup_cases) / sizeof(lookup_cases[0]); i++) {
		const struct lookup_case *t = &lookup_cases[i];
		struct policy_result r;

		assert_int_equal(policy_tls_lookup(h, t->domain, t->nexthop, &r), PG_OK);
		if (r.match != t->match || r.level != t->level || r.via_nexthop != t->via_nexthop ||
		    (t->key == NULL) != (r.entry == NULL) ||
		    (t->key != NULL && strcmp(snap_string(h, r.entry->key.name), t->key) != 0))
			fail_msg("case %zu (%s via %s): match %s level %s key %s", i, t->domain,
			         t->nexthop ? t->nexthop : "-", policy_match_name(r.match),
			         policy_level_name(r.level),
			         r.entry ? snap_string(h, r.entry->key.name) : "(none)");
	}
	unbuild(&b);
}

static void test_lookup_default_and_long(void **state)
{
	struct built b;
	const struct snap_header *h =
	    build(&b, "tls_default_level = encrypt\n",
	          ".a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a secure\n", "");
	char name[400];
	struct policy_result r;
	size_t o = 0;

	(void)state;
	assert_int_equal(policy_tls_lookup(h, "nothing.test", NULL, &r), PG_OK);
	assert_int_equal(r.level, SNAP_TLS_ENCRYPT);
	assert_int_equal(r.match, POLICY_MATCH_DEFAULT);
	/* 253 bytes, 127 labels: the parent walk reaches the entry */
	while (o + 2 < 253 - 40)
		o += (size_t)snprintf(name + o, sizeof(name) - o, "b.");
	snprintf(name + o, sizeof(name) - o, "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a");
	assert_int_equal(policy_tls_lookup(h, name, NULL, &r), PG_OK);
	assert_int_equal(r.match, POLICY_MATCH_PARENT);
	assert_int_equal(r.level, SNAP_TLS_SECURE);
	/* longer than any key: refused, the default applies */
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(policy_tls_lookup(h, name, NULL, &r), PG_ERROR);
	assert_null(r.entry);
	assert_int_equal(r.level, SNAP_TLS_ENCRYPT);
	unbuild(&b);
}

static void test_lookup_many(void **state)
{
	enum { N = 20000 };
	char *text = malloc((size_t)N * 40), name[64];
	size_t o = 0;
	struct built b;
	const struct snap_header *h;

	(void)state;
	assert_non_null(text);
	for (int i = 0; i < N; i++)
		o += (size_t)sprintf(text + o, "%sd%d.test %s\n", i % 2 ? "." : "", i,
		                     i % 3 ? "encrypt" : "verify");
	h = build(&b, "", text, "");
	for (int i = 0; i < N; i++) {
		struct policy_result r;

		snprintf(name, sizeof(name), "%sd%d.test", i % 2 ? "x." : "", i);
		assert_int_equal(policy_tls_lookup(h, name, NULL, &r), PG_OK);
		assert_non_null(r.entry);
		assert_int_equal(r.match, i % 2 ? POLICY_MATCH_PARENT : POLICY_MATCH_EXACT);
		assert_int_equal(r.level, i % 3 ? SNAP_TLS_ENCRYPT : SNAP_TLS_VERIFY);
		assert_int_equal(r.entry->key.line, (uint32_t)i + 1);
		/* and the odd ones do not match themselves (sub-domains only) */
		snprintf(name, sizeof(name), "d%d.test", i);
		assert_int_equal(policy_tls_lookup(h, name, NULL, &r), PG_OK);
		assert_int_equal(r.entry != NULL, i % 2 == 0);
	}
	free(text);
	unbuild(&b);
}

static void test_transport_lookup(void **state)
{
	struct built b;
	const struct snap_header *h =
	    build(&b, "", "",
	          "partner.test smtp:[mx.partner.test]:587, [198.19.0.2]\n"
	          ".partner.test smtp:relay.partner.test\n"
	          "mx.test smtp:\n");
	struct transport_result t;

	(void)state;
	assert_int_equal(transport_lookup(h, "Partner.TEST", &t), PG_OK);
	assert_int_equal(t.match, POLICY_MATCH_EXACT);
	assert_int_equal(t.nnexthops, 2);
	assert_string_equal(snap_string(h, t.nexthops[0].dest), "[mx.partner.test]:587");
	assert_string_equal(snap_string(h, t.nexthops[1].host), "198.19.0.2");
	assert_int_equal(transport_lookup(h, "a.b.partner.test", &t), PG_OK);
	assert_int_equal(t.match, POLICY_MATCH_PARENT);
	assert_string_equal(snap_string(h, t.nexthops[0].dest), "relay.partner.test");
	assert_int_equal(transport_lookup(h, "mx.test", &t), PG_OK);
	assert_int_equal(t.nnexthops, 0);
	assert_int_equal(transport_lookup(h, "other.test", &t), PG_OK);
	assert_null(t.entry);
	assert_int_equal(t.match, POLICY_MATCH_DEFAULT);
	unbuild(&b);
	h = build(&b, "", "", "* smtp:[smarthost.test]\n");
	assert_int_equal(transport_lookup(h, "other.test", &t), PG_OK);
	assert_int_equal(t.match, POLICY_MATCH_WILDCARD);
	assert_string_equal(snap_string(h, t.nexthops[0].dest), "[smarthost.test]");
	unbuild(&b);
}

static void test_relay_lookup(void **state)
{
	struct built b;
	const struct snap_header *h = build(&b,
	                                    "mynetworks = 198.18.0.0/24 10.1.2.3, 172.16.0.0/12\n"
	                                    "relay_domains = Example.com, .example.net\n",
	                                    "", "");

	(void)state;
	assert_true(relay_client_allowed(h, inet_addr("198.18.0.77")));
	assert_true(relay_client_allowed(h, inet_addr("10.1.2.3")));
	assert_false(relay_client_allowed(h, inet_addr("10.1.2.4")));
	assert_true(relay_client_allowed(h, inet_addr("172.31.255.255")));
	assert_false(relay_client_allowed(h, inet_addr("198.19.0.2")));
	assert_true(relay_domain_allowed(h, "example.com"));
	assert_true(relay_domain_allowed(h, "EXAMPLE.COM"));
	assert_false(relay_domain_allowed(h, "a.example.com")); /* exact only */
	assert_false(relay_domain_allowed(h, "example.net"));   /* sub-domains only */
	assert_true(relay_domain_allowed(h, "mx.example.net"));
	assert_false(relay_domain_allowed(h, "evil.test"));
	unbuild(&b);
	/* the defaults: nobody may relay anywhere */
	h = build(&b, "", "", "");
	assert_false(relay_client_allowed(h, inet_addr("198.18.0.2")));
	assert_false(relay_domain_allowed(h, "example.com"));
	unbuild(&b);
}

/* ---- inbound TLS requirements (ABI 1.6) ---- */

#define TLS12_13 (SNAP_TLS_P_TLSV1_2 | SNAP_TLS_P_TLSV1_3)

static const struct inbound_case {
	const char *client, *sender;
	enum policy_inbound_reason reason;
	const char *entry; /* network "A.B.C.D/N" or sender key; NULL: none */
	enum policy_match match;
	uint16_t protocols;
} inbound_cases[] = {
    /* none of them: TLS optional, smtpd_tls_protocols */
    {"203.0.113.5", NULL, INBOUND_TLS_NOT_REQUIRED, NULL, POLICY_MATCH_DEFAULT,
     SNAP_TLS_P_TLSV1_1 | TLS12_13},
    {"203.0.113.5", "other.test", INBOUND_TLS_NOT_REQUIRED, NULL, POLICY_MATCH_DEFAULT,
     SNAP_TLS_P_TLSV1_1 | TLS12_13},
    /* network: the longest prefix is named; mandatory protocols at connect */
    {"198.19.7.9", NULL, POLICY_INBOUND_NETWORK, "198.19.7.0/24", POLICY_MATCH_DEFAULT,
     SNAP_TLS_P_TLSV1_3},
    {"198.19.200.1", NULL, POLICY_INBOUND_NETWORK, "198.19.0.0/16", POLICY_MATCH_DEFAULT,
     SNAP_TLS_P_TLSV1_3},
    {"10.1.2.3", NULL, POLICY_INBOUND_NETWORK, "10.1.2.3/32", POLICY_MATCH_DEFAULT,
     SNAP_TLS_P_TLSV1_3},
    {"10.1.2.4", NULL, INBOUND_TLS_NOT_REQUIRED, NULL, POLICY_MATCH_DEFAULT,
     SNAP_TLS_P_TLSV1_1 | TLS12_13},
    {"198.20.0.1", NULL, INBOUND_TLS_NOT_REQUIRED, NULL, POLICY_MATCH_DEFAULT,
     SNAP_TLS_P_TLSV1_1 | TLS12_13},
    /* sender: "domain" exactly (any case, absolute form), ".domain" sub-domains only */
    {"203.0.113.5", "partner.test", POLICY_INBOUND_SENDER, "partner.test", POLICY_MATCH_EXACT,
     SNAP_TLS_P_TLSV1_1 | TLS12_13},
    {"203.0.113.5", "PARTNER.Test.", POLICY_INBOUND_SENDER, "partner.test", POLICY_MATCH_EXACT,
     SNAP_TLS_P_TLSV1_1 | TLS12_13},
    {"203.0.113.5", "mail.partner.test", INBOUND_TLS_NOT_REQUIRED, NULL, POLICY_MATCH_DEFAULT,
     SNAP_TLS_P_TLSV1_1 | TLS12_13},
    {"203.0.113.5", "partners.example", INBOUND_TLS_NOT_REQUIRED, NULL, POLICY_MATCH_DEFAULT,
     SNAP_TLS_P_TLSV1_1 | TLS12_13},
    {"203.0.113.5", "a.b.partners.example", POLICY_INBOUND_SENDER, ".partners.example",
     POLICY_MATCH_PARENT, SNAP_TLS_P_TLSV1_1 | TLS12_13},
    {"203.0.113.5", "x.eu.partners.example", POLICY_INBOUND_SENDER, ".eu.partners.example",
     POLICY_MATCH_PARENT, SNAP_TLS_P_TLSV1_1 | TLS12_13}, /* nearest parent */
    {"203.0.113.5", "notpartner.test", INBOUND_TLS_NOT_REQUIRED, NULL, POLICY_MATCH_DEFAULT,
     SNAP_TLS_P_TLSV1_1 | TLS12_13},
    {"203.0.113.5", "", INBOUND_TLS_NOT_REQUIRED, NULL, POLICY_MATCH_DEFAULT,
     SNAP_TLS_P_TLSV1_1 | TLS12_13}, /* MAIL FROM:<> */
    {"203.0.113.5", "[198.19.0.2]", INBOUND_TLS_NOT_REQUIRED, NULL, POLICY_MATCH_DEFAULT,
     SNAP_TLS_P_TLSV1_1 | TLS12_13},
    {"203.0.113.5", ".partners.example", INBOUND_TLS_NOT_REQUIRED, NULL, POLICY_MATCH_DEFAULT,
     SNAP_TLS_P_TLSV1_1 | TLS12_13},
    /* precedence: the network is named before the sender */
    {"198.19.7.9", "partner.test", POLICY_INBOUND_NETWORK, "198.19.7.0/24", POLICY_MATCH_DEFAULT,
     SNAP_TLS_P_TLSV1_3},
};

static const char inbound_conf[] = "tls_certificates = mx.pem\n"
                                   "smtpd_tls_required_networks = 198.19.0.0/16 198.19.7.0/24\n"
                                   "  10.1.2.3\n"
                                   "smtpd_tls_required_senders = partner.test .partners.example\n"
                                   "  .eu.partners.example\n"
                                   "smtpd_tls_protocols = >=TLSv1.1\n"
                                   "smtpd_tls_mandatory_protocols = TLSv1.3\n";

static void test_inbound_lookup(void **state)
{
	struct built b;
	const struct snap_header *h = build(&b, inbound_conf, "", "");

	(void)state;
	for (size_t i = 0; i < sizeof(inbound_cases) / sizeof(inbound_cases[0]); i++) {
		const struct inbound_case *t = &inbound_cases[i];
		struct policy_inbound_verdict v;
		char got[64] = "";
		bool req = policy_inbound_required(h, inet_addr(t->client), t->sender, &v);

		if (v.network != NULL) {
			struct in_addr a = {.s_addr = v.network->prefix};

			snprintf(got, sizeof(got), "%s/%u", inet_ntoa(a), v.network->len);
		} else if (v.sender != NULL) {
			snprintf(got, sizeof(got), "%s", snap_string(h, v.sender->name));
		}
		if (req != (t->reason != INBOUND_TLS_NOT_REQUIRED) || v.required != req ||
		    v.reason != t->reason || strcmp(got, t->entry ? t->entry : "") != 0 ||
		    v.sender_match != t->match || v.protocols != t->protocols ||
		    v.level != SNAP_TLS_MAY || v.settings == NULL)
			fail_msg(
			    "case %zu (%s, %s): reason %s entry \"%s\" match %s protocols 0x%x", i,
			    t->client, t->sender ? t->sender : "-",
			    policy_inbound_reason_name(v.reason), got,
			    policy_match_name(v.sender_match), v.protocols);
		/* the hot path needs no verdict */
		assert_int_equal(policy_inbound_required(h, inet_addr(t->client), t->sender, NULL),
		                 req);
	}
	/* the sender entry carries the postern.conf line for explanations */
	{
		struct policy_inbound_verdict v;

		assert_true(
		    policy_inbound_required(h, inet_addr("203.0.113.5"), "partner.test", &v));
		assert_int_equal(v.sender->line, 6); /* BASE is two lines */
		assert_int_equal(v.settings->networks_line, 4);
		assert_int_equal(v.settings->level_line, 0);
	}
	unbuild(&b);
}

static void test_inbound_listener_and_absent(void **state)
{
	struct built b;
	struct policy_inbound_verdict v;
	const struct snap_header *h;
	struct snap_header *w;
	char longname[400];

	(void)state;
	/* the listener level wins over a matching network and sender */
	h = build(&b,
	          "tls_certificates = mx.pem\nsmtpd_tls_security_level = encrypt\n"
	          "smtpd_tls_required_networks = 198.19.0.0/24\n"
	          "smtpd_tls_required_senders = partner.test\n",
	          "", "");
	assert_true(policy_inbound_required(h, inet_addr("198.19.0.9"), "partner.test", &v));
	assert_int_equal(v.reason, POLICY_INBOUND_LISTENER);
	assert_null(v.network);
	assert_null(v.sender);
	assert_int_equal(v.level, SNAP_TLS_ENCRYPT);
	assert_int_equal(v.protocols, TLS12_13);
	assert_true(policy_inbound_required(h, inet_addr("203.0.113.1"), NULL, &v));
	assert_int_equal(v.reason, POLICY_INBOUND_LISTENER);
	assert_int_equal(v.settings->level_line, 4);
	unbuild(&b);

	/* level none: STARTTLS not offered, nothing required */
	h = build(&b, "smtpd_tls_security_level = none\n", "", "");
	assert_false(policy_inbound_required(h, inet_addr("198.19.0.9"), "partner.test", &v));
	assert_int_equal(v.level, SNAP_TLS_NONE);
	assert_int_equal(v.reason, INBOUND_TLS_NOT_REQUIRED);
	unbuild(&b);

	/* defaults: may, nothing listed, TLS 1.2 and 1.3 */
	h = build(&b, "", "", "");
	assert_false(policy_inbound_required(h, inet_addr("198.19.0.9"), "partner.test", &v));
	assert_int_equal(v.level, SNAP_TLS_MAY);
	assert_int_equal(v.protocols, TLS12_13);
	assert_non_null(v.settings);
	/* a name longer than any key matches nothing */
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_false(policy_inbound_required(h, inet_addr("198.19.0.9"), longname, &v));
	unbuild(&b);

	/* a snapshot of minor < 6 (sections unknown to it): nothing required */
	h = build(&b, inbound_conf, "", "");
	w = (struct snap_header *)b.blob;
	for (uint32_t i = 0; i < w->nsections; i++)
		if (w->sections[i].kind >= SNAP_SEC_INBOUND_TLS &&
		    w->sections[i].kind <= SNAP_SEC_INBOUND_TLS_SENDERS_INDEX)
			w->sections[i].kind += 100;
	assert_false(policy_inbound_required(h, inet_addr("198.19.7.9"), "partner.test", &v));
	assert_null(v.settings);
	assert_int_equal(v.reason, INBOUND_TLS_NOT_REQUIRED);
	assert_int_equal(v.protocols, TLS12_13);
	unbuild(&b);
}

/* ---- policy set / del ---- */

static char *slurp(const char *path, size_t *len)
{
	char *text = NULL, err[256];

	if (policy_read_file(path, 1 << 20, &text, len, err, sizeof(err)) != PG_OK)
		return NULL;
	return text;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_edit(void **state)
{
	static const char orig[] = "# partners\n"
	                           "bank.test   secure match=nexthop\n"
	                           "    protocols=>=TLSv1.2\n"
	                           "\n"
	                           "# the rest\n"
	                           ".example.com encrypt\n"
	                           "last.test may"; /* no final newline */
	char path[256], err[1024], *out = NULL;
	size_t len;
	struct stat st;

	(void)state;
	/* replace: continuation lines go with the entry, comments stay */
	assert_int_equal(policy_edit(tmpdir, orig, strlen(orig), "Bank.Test", "verify", &out, &len,
	                             err, sizeof(err)),
	                 PG_OK);
	assert_string_equal(out, "# partners\n"
	                         "Bank.Test verify\n"
	                         "\n"
	                         "# the rest\n"
	                         ".example.com encrypt\n"
	                         "last.test may");
	free(out);
	/* add: appended, a newline supplied */
	assert_int_equal(policy_edit(tmpdir, orig, strlen(orig), "[mx.new.test]:587",
	                             "fingerprint match=" FP, &out, &len, err, sizeof(err)),
	                 PG_OK);
	assert_int_equal(len,
	                 strlen(orig) + 1 + strlen("[mx.new.test]:587 fingerprint match=" FP "\n"));
	assert_string_equal(out + strlen(orig), "\n[mx.new.test]:587 fingerprint match=" FP "\n");
	free(out);
	/* del */
	assert_int_equal(policy_edit(tmpdir, orig, strlen(orig), ".EXAMPLE.com", NULL, &out, &len,
	                             err, sizeof(err)),
	                 PG_OK);
	assert_string_equal(out, "# partners\n"
	                         "bank.test   secure match=nexthop\n"
	                         "    protocols=>=TLSv1.2\n"
	                         "\n"
	                         "# the rest\n"
	                         "last.test may");
	free(out);
	snprintf(path, sizeof(path), "%s/tls_policy", tmpdir);
	assert_int_equal(policy_edit(tmpdir, orig, strlen(orig), "nothere.test", NULL, &out, &len,
	                             err, sizeof(err)),
	                 PG_DECLINED);
	{
		char want[512];

		snprintf(want, sizeof(want), "%s: no entry for \"nothere.test\"", path);
		assert_string_equal(err, want);
	}
	/* invalid results are refused with the message of the whole-file check */
	assert_int_equal(policy_edit(tmpdir, orig, strlen(orig), "bank.test", "dane", &out, &len,
	                             err, sizeof(err)),
	                 PG_ERROR);
	{
		char want[512];

		snprintf(want, sizeof(want),
		         "%s:2: dane requires DNSSEC lookups, not supported yet", path);
		assert_string_equal(err, want);
	}
	assert_int_equal(policy_edit(tmpdir, orig, strlen(orig), "new.test", "may match=hostname",
	                             &out, &len, err, sizeof(err)),
	                 PG_ERROR);
	assert_int_equal(
	    policy_edit(tmpdir, orig, strlen(orig), "bad_key", "may", &out, &len, err, sizeof(err)),
	    PG_ERROR);
	assert_string_equal(err, "bad key \"bad_key\": invalid character '_' (letters, digits, '-'"
	                         " and '.' only)");

	/* atomic replace keeps the mode and leaves no temporary file */
	write_file(path, orig);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(policy_edit(tmpdir, orig, strlen(orig), "x.test", "encrypt", &out, &len,
	                             err, sizeof(err)),
	                 PG_OK);
	assert_int_equal(policy_write_file(path, out, len, err, sizeof(err)), PG_OK);
	free(out);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	{
		char *back = slurp(path, &len), tmp[300];

		assert_non_null(back);
		assert_string_equal(back + strlen(orig), "\nx.test encrypt\n");
		free(back);
		snprintf(tmp, sizeof(tmp), "%s/.tls_policy.tmp.%d", tmpdir, (int)getpid());
		assert_int_equal(access(tmp, F_OK), -1);
	}
	/* a refused set writes nothing: the file stays byte for byte */
	{
		size_t before_len, after_len;
		char *before = slurp(path, &before_len), *after;

		assert_int_equal(policy_edit(tmpdir, before, before_len, "x.test",
		                             "secure tafile=/nonexistent", &out, &len, err,
		                             sizeof(err)),
		                 PG_ERROR);
		after = slurp(path, &after_len);
		assert_int_equal(before_len, after_len);
		assert_memory_equal(before, after, before_len);
		free(before);
		free(after);
	}
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_policy_bad),
	    cmocka_unit_test(test_policy_good),
	    cmocka_unit_test(test_transport_bad),
	    cmocka_unit_test(test_transport_good),
	    cmocka_unit_test(test_transport_ipv6),
	    cmocka_unit_test(test_lookup),
	    cmocka_unit_test(test_lookup_default_and_long),
	    cmocka_unit_test(test_lookup_many),
	    cmocka_unit_test(test_transport_lookup),
	    cmocka_unit_test(test_transport_relayhost),
	    cmocka_unit_test(test_relay_lookup),
	    cmocka_unit_test(test_edit),
	    cmocka_unit_test(test_inbound_lookup),
	    cmocka_unit_test(test_inbound_listener_and_absent),
	};

	return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
